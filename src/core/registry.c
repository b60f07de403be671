/* The registry of stores by name.  A store that was not built in is still
 * listed, so the user hears "not built in" rather than "unknown". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backends/backends.h"
#include "core/core.h"

#ifndef CVFS_HAVE_SQLITE
#define cvfs_sqlite_open NULL
#endif
#ifndef CVFS_HAVE_REDIS
#define cvfs_redis_open NULL
#endif
#ifndef CVFS_HAVE_S3
#define cvfs_s3_open NULL
#endif

static const struct {
	const char *name;
	cvfs_store_open_fn open;
	const char *what;
} stores[] = {
	{"memory", cvfs_memory_open, "this process's memory (gone at unmount)"},
	{"sqlite", cvfs_sqlite_open, "one SQLite database file"},
	{"redis", cvfs_redis_open, "a Redis server, shared by many mounts"},
	{"s3", cvfs_s3_open, "an S3 bucket, one object per file"},
};

const char *cvfs_opt_get(const struct cvfs_opt *opts, size_t nopts, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < nopts; i++)
		if (strcmp(opts[i].key, key) == 0)
			v = opts[i].value; /* the last one wins */
	return v;
}

int cvfs_store_open(const char *name, const struct cvfs_opt *opts, size_t nopts,
		    struct cvfs_store **out, char **errmsg)
{
	*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
		if (strcmp(stores[i].name, name) != 0)
			continue;
		if (!stores[i].open) {
			if (errmsg && asprintf(errmsg, "the %s store is not built into this chuk-vfs",
					       name) < 0)
				*errmsg = NULL;
			return -ENOTSUP;
		}
		int rc = stores[i].open(opts, nopts, out, errmsg);
		if (rc == 0 && ((*out)->ops->abi != CVFS_STORE_ABI)) {
			(*out)->ops->free(*out);
			*out = NULL;
			rc = -EINVAL;
		}
		return rc;
	}
	if (errmsg && asprintf(errmsg, "unknown store '%s' (known: memory, sqlite, redis, s3)",
			       name) < 0)
		*errmsg = NULL;
	return -ENOENT;
}

int cvfs_store_built(const char *name)
{
	for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
		if (strcmp(stores[i].name, name) == 0)
			return stores[i].open != NULL;
	return 0;
}
