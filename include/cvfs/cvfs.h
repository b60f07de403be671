/*
 * chuk-vfs: the public C API.
 *
 * Open a filesystem on a store, work on it by path, and mount it so other
 * programs see the same files.  A change made through this API while the
 * filesystem is mounted is seen through the mount on the next access (the
 * kernel's cached names, attributes and pages are dropped before the call
 * returns); a change made through the mount is seen here at once (data
 * written through the mount reaches the store when the writer closes,
 * fsyncs or the kernel writes back).
 *
 * Conventions: every call returns 0 (or a byte count) on success and -errno
 * on failure.  Paths are absolute inside the filesystem ("/a/b"; a missing
 * leading '/' is allowed); symlinks are followed except where noted.  The
 * API does no permission checks: its caller acts as the owner.  All calls are
 * thread-safe; a cvfs_file may be used by one thread at a time.  Strings and
 * buffers returned to you are malloc'd: release them with cvfs_free.
 */
#ifndef CVFS_CVFS_H
#define CVFS_CVFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cvfs_fs cvfs_fs;
typedef struct cvfs_file cvfs_file;
typedef struct cvfs_mounted cvfs_mounted;

const char *cvfs_version(void);
void cvfs_free(void *p);

/* Opens a filesystem on store "memory", "sqlite", "redis" or "s3" with
 * options "key=value" (NULL-terminated array, or NULL): sqlite: path=FILE;
 * redis: url=URL, prefix=P; s3: bucket=, prefix=, region=, endpoint=; all:
 * readonly=1, umask=022 (applied to modes given here; default 022);
 * policy.KEY=VALUE: the security policy, enforced on the API and on mounts
 * alike (policy.profile=strict, policy.config=FILE, policy.max_file_size=10M,
 * policy.block_path=/secrets, ... as the chuk-vfs-mount flags; see
 * docs/security.md).
 * On failure *errmsg (if not NULL) gets a readable message. */
int cvfs_open(const char *store, const char *const *options, cvfs_fs **out, char **errmsg);
/* Unmounts nothing: stop mounts first.  NULL is fine. */
void cvfs_close(cvfs_fs *fs);

int cvfs_mkdir(cvfs_fs *fs, const char *path, mode_t mode, int parents);
/* Creates or replaces path's contents (flags: CVFS_APPEND appends,
 * CVFS_EXCL fails with -EEXIST if it exists).  mode for a new file. */
enum { CVFS_APPEND = 1, CVFS_EXCL = 2 };
ssize_t cvfs_write_file(cvfs_fs *fs, const char *path, const void *data, size_t len, mode_t mode,
			int flags);
/* *data: malloc'd copy (NUL-terminated past len for convenience). */
int cvfs_read_file(cvfs_fs *fs, const char *path, void **data, size_t *len);
int cvfs_stat(cvfs_fs *fs, const char *path, struct stat *st);
int cvfs_lstat(cvfs_fs *fs, const char *path, struct stat *st); /* no final symlink follow */
/* Calls fn for each entry of directory path (not "." or ".."); fn returns
 * nonzero to stop.  st is borrowed for the call. */
typedef int (*cvfs_ls_fn)(void *arg, const char *name, const struct stat *st);
int cvfs_ls(cvfs_fs *fs, const char *path, cvfs_ls_fn fn, void *arg);
/* flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE (from <linux/fs.h>/<stdio.h>) */
int cvfs_rename(cvfs_fs *fs, const char *from, const char *to, unsigned flags);
/* A file, symlink or empty directory; recursive: a whole tree. */
int cvfs_remove(cvfs_fs *fs, const char *path, int recursive);
/* Copies a file (contents, mode, times, xattrs), or a tree with recursive. */
int cvfs_copy(cvfs_fs *fs, const char *from, const char *to, int recursive);
int cvfs_symlink(cvfs_fs *fs, const char *target, const char *linkpath);
ssize_t cvfs_readlink(cvfs_fs *fs, const char *path, char *buf, size_t size);
int cvfs_link(cvfs_fs *fs, const char *from, const char *to);
int cvfs_chmod(cvfs_fs *fs, const char *path, mode_t mode);
int cvfs_chown(cvfs_fs *fs, const char *path, uid_t uid, gid_t gid);
/* times[0] atime, times[1] mtime; UTIME_NOW / UTIME_OMIT as utimensat. */
int cvfs_utimens(cvfs_fs *fs, const char *path, const struct timespec times[2]);
int cvfs_truncate(cvfs_fs *fs, const char *path, uint64_t size);
ssize_t cvfs_getxattr(cvfs_fs *fs, const char *path, const char *name, void *val, size_t size);
int cvfs_setxattr(cvfs_fs *fs, const char *path, const char *name, const void *val, size_t size,
		  int flags);
ssize_t cvfs_listxattr(cvfs_fs *fs, const char *path, char *list, size_t size);
int cvfs_removexattr(cvfs_fs *fs, const char *path, const char *name);
int cvfs_statvfs(cvfs_fs *fs, struct statvfs *out);

/* Streaming: flags as open(2) (O_RDONLY, O_WRONLY|O_CREAT|O_TRUNC, O_APPEND...). */
int cvfs_file_open(cvfs_fs *fs, const char *path, int flags, mode_t mode, cvfs_file **out);
ssize_t cvfs_file_read(cvfs_file *f, void *buf, size_t n);
ssize_t cvfs_file_write(cvfs_file *f, const void *buf, size_t n);
ssize_t cvfs_file_pread(cvfs_file *f, void *buf, size_t n, uint64_t off);
ssize_t cvfs_file_pwrite(cvfs_file *f, const void *buf, size_t n, uint64_t off);
/* whence: SEEK_SET, SEEK_CUR, SEEK_END; returns the new offset. */
int64_t cvfs_file_seek(cvfs_file *f, int64_t off, int whence);
int cvfs_file_sync(cvfs_file *f);
/* Returns the flush error, if any (as close(2)). */
int cvfs_file_close(cvfs_file *f);

/* Mounting. */
struct cvfs_mount_config {
	int readonly;
	int allow_other;
	int debug;
	double cache_timeout; /* < 0: the store's default */
	int threads;          /* 0: default */
	const char *fuse_opts; /* extra -o options, or NULL */
};
/* Mounts and serves until SIGINT/SIGTERM/SIGHUP or an external unmount. */
int cvfs_mount_blocking(cvfs_fs *fs, const char *dir, const struct cvfs_mount_config *cfg,
			char **errmsg);
/* Mounts and serves from a thread of its own; returns once the mount is live. */
int cvfs_mount_start(cvfs_fs *fs, const char *dir, const struct cvfs_mount_config *cfg,
		     cvfs_mounted **out, char **errmsg);
/* Unmounts (lazily if busy) and waits for the serving thread. */
int cvfs_mount_stop(cvfs_mounted *m);

#ifdef __cplusplus
}
#endif
#endif
