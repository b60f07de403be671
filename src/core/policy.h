/*
 * The security policy: limits the owner sets once and the core enforces on
 * every operation, whatever tool or API call makes it.
 *
 * Paths are absolute inside the filesystem ("/src/a.py"), already resolved
 * (no "..", no symlinks): the core resolves them.  Checks return 0 or -errno
 * and record every refusal in the violation log:
 *   hidden (blocked path)            -ENOENT for LOOKUP/LIST, -EACCES for changes
 *   outside allowed roots            -EACCES
 *   read-only (whole or subtree)     -EROFS
 *   extension / name pattern denied  -EACCES
 *   max file size                    -EFBIG
 *   quotas (bytes, files)            -EDQUOT
 *   max path depth                   -ENAMETOOLONG
 * A policy is immutable once the filesystem runs, except its counters and
 * log, which are thread-safe (atomics and an internal lock).
 */
#ifndef CVFS_POLICY_H
#define CVFS_POLICY_H

#include <stdint.h>
#include <sys/types.h>

#include "cvfs/store.h"

struct cvfs_policy;
struct cvfs_cred;

/* A policy that allows everything.  Then adjust it (in any order; later
 * settings override earlier ones, list settings add up). */
int cvfs_policy_new(struct cvfs_policy **out);
void cvfs_policy_free(struct cvfs_policy *p);
/* Profiles: default, strict, readonly, untrusted, testing. */
int cvfs_policy_profile(struct cvfs_policy *p, const char *name, char **errmsg);
/* One setting by name (the CLI's and config file's keys):
 *   readonly=1|0, readonly_path=/x (repeatable), block_path=/x (repeatable),
 *   allow_root=/x (repeatable), allow_ext=.py,.txt, deny_ext=.exe,.so,
 *   deny_name=*.pem (glob, repeatable or comma list), max_file_size=10M,
 *   max_total_bytes=1G, max_files=N, max_depth=N, log=PATH (violation log file)
 * Unknown key, bad number, negative size: -EINVAL and a message. */
int cvfs_policy_set(struct cvfs_policy *p, const char *key, const char *value, char **errmsg);
/* A config file (JSON: an object of the keys above; lists as arrays;
 * "profile": NAME applied first). */
int cvfs_policy_load(struct cvfs_policy *p, const char *file, char **errmsg);
/* Nonzero when anything is restricted (the core skips all checks if not). */
int cvfs_policy_active(const struct cvfs_policy *p);
int cvfs_policy_readonly(const struct cvfs_policy *p);

enum cvfs_pol_op {
	CVFS_POL_LOOKUP,   /* reveal a name (lookup, readdir entry, stat) */
	CVFS_POL_CREATE,   /* new regular file, fifo, device (type gives which) */
	CVFS_POL_MKDIR,
	CVFS_POL_SYMLINK,  /* path: the link's own path */
	CVFS_POL_LINK,     /* path: the new name */
	CVFS_POL_RENAME_FROM,
	CVFS_POL_RENAME_TO,
	CVFS_POL_REMOVE,   /* unlink, rmdir */
	CVFS_POL_WRITE,    /* write, truncate, fallocate (data of path) */
	CVFS_POL_SETATTR,  /* chmod, chown, utimens */
	CVFS_POL_XATTR,    /* setxattr, removexattr */
	CVFS_POL_OPEN,     /* open for reading */
	CVFS_POL_LIST,     /* a listing shows a name: as LOOKUP, but hiding it is no violation */
};

/* type: the S_IFMT bits of the object (extension rules apply to regular
 * files only).  cr may be NULL (the API). */
int cvfs_policy_check(struct cvfs_policy *p, enum cvfs_pol_op op, const char *path, uint32_t type,
		      const struct cvfs_cred *cr);
/* A regular file at path would become new_size bytes long. */
int cvfs_policy_check_size(struct cvfs_policy *p, const char *path, uint64_t new_size,
			   const struct cvfs_cred *cr);

/* Quotas: O(1) counters.  charge() adds dbytes (may be negative) and dfiles
 * (+1 create, -1 delete) atomically, refusing (-EDQUOT, nothing charged) a
 * positive change that would pass a limit; many writers at once can never
 * pass it.  init() sets the counters from a scan at start. */
int cvfs_policy_charge(struct cvfs_policy *p, int64_t dbytes, int64_t dfiles, const char *path,
		       const struct cvfs_cred *cr);
void cvfs_policy_init_usage(struct cvfs_policy *p, uint64_t bytes, uint64_t files);
int cvfs_policy_has_quota(const struct cvfs_policy *p);
/* statfs: the quota becomes the filesystem's size. */
void cvfs_policy_statfs(const struct cvfs_policy *p, struct cvfs_statfs *sf);

/* The violation log as JSON lines (time, pid, uid, op, path, rule, errno),
 * newest last, at most the last 1000; malloc'd. */
char *cvfs_policy_violations(struct cvfs_policy *p);
/* The policy itself as JSON (for status). */
char *cvfs_policy_describe(const struct cvfs_policy *p);
#endif
