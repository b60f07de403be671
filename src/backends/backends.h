/* Constructors of the backends built into the library (see registry.c). */
#ifndef CVFS_BACKENDS_H
#define CVFS_BACKENDS_H
#include "cvfs/store.h"

int cvfs_memory_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		     char **errmsg);
int cvfs_sqlite_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		     char **errmsg);
int cvfs_redis_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		    char **errmsg);
int cvfs_s3_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		 char **errmsg);
#endif
