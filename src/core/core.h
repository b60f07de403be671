/*
 * The core: POSIX semantics over any store.  Inode-level calls shaped like the
 * kernel's requests, so the mount adapter maps each FUSE request to one call
 * here; the path-level API (api.c) is built on the same calls.  Nothing here
 * knows FUSE.
 *
 * Every call returns 0 or a byte count on success, -errno on failure.  All
 * calls are thread-safe.
 *
 * Lookup counts: a call that hands out an inode to the kernel (lookup, create,
 * mknod, mkdir, symlink, link, readdir in plus mode) counts one reference,
 * dropped by cvfs_fs_forget.  An inode whose last name is removed is kept
 * (an orphan) until its references and open handles are gone.
 *
 * Lock order: store transaction -> fs->ref_lock.  Never the other way.
 */
#ifndef CVFS_CORE_H
#define CVFS_CORE_H

#include <stdint.h>
#include <sys/uio.h>
#include <sys/types.h>

#include "cvfs/store.h"

struct cvfs_fs;
struct cvfs_policy;

/* Who is asking: for ownership of new files and the API's permission checks. */
struct cvfs_cred {
	uint32_t uid, gid;
	pid_t pid;
	uint32_t umask; /* applied by the core only when the caller says so */
};

struct cvfs_fs_config {
	int readonly;
	uint32_t root_mode; /* 0: 0755 */
	uint32_t root_uid, root_gid; /* of a new root; default: the process's */
	uint32_t umask; /* the API applies it to the modes it is given */
	struct cvfs_policy *policy; /* owned by the fs from cvfs_fs_new on (NULL: none) */
};

/* Takes ownership of st (freed by cvfs_fs_free, also when this fails). */
int cvfs_fs_new(struct cvfs_store *st, const struct cvfs_fs_config *cfg, struct cvfs_fs **out);
/* The clean end: releases what is still open and has the store send what
 * it owes (its optional finish).  0, or -EIO when the store says changes
 * were left unsent (it printed which).  cvfs_fs_free must still be called. */
int cvfs_fs_finish(struct cvfs_fs *fs);
void cvfs_fs_free(struct cvfs_fs *fs);
struct cvfs_store *cvfs_fs_store(struct cvfs_fs *fs);
int cvfs_fs_readonly(const struct cvfs_fs *fs);
uint32_t cvfs_fs_umask(const struct cvfs_fs *fs);
struct cvfs_policy *cvfs_fs_policy(struct cvfs_fs *fs); /* NULL: none */
/* The mount adapter says whether every open of fs reaches cvfs_fs_open /
 * cvfs_fs_opendir (it does not when the kernel opens without asking). */
void cvfs_fs_set_opens_seen(struct cvfs_fs *fs, int all);

/* Called after a change made by the API (not by the kernel), so the mount can
 * invalidate the kernel's caches.  Must not block; see mount adapter. */
struct cvfs_fs_notify {
	void (*inval_inode)(void *arg, uint64_t ino, int64_t off, int64_t len);
	void (*inval_entry)(void *arg, uint64_t parent, const char *name, size_t len);
	void *arg;
};
void cvfs_fs_set_notify(struct cvfs_fs *fs, const struct cvfs_fs_notify *n);
/* Starts what needs threads (a shared store's change feed), after the process
 * daemonised.  Changes other clients make reach the notify callbacks. */
int cvfs_fs_start(struct cvfs_fs *fs);

/* setattr mask */
enum {
	CVFS_SET_MODE = 1 << 0,
	CVFS_SET_UID = 1 << 1,
	CVFS_SET_GID = 1 << 2,
	CVFS_SET_SIZE = 1 << 3,
	CVFS_SET_ATIME = 1 << 4,
	CVFS_SET_MTIME = 1 << 5,
	CVFS_SET_ATIME_NOW = 1 << 6,
	CVFS_SET_MTIME_NOW = 1 << 7,
	CVFS_SET_CTIME = 1 << 8,
};

/* An open file or directory. */
struct cvfs_handle {
	uint64_t ino;
	int flags;  /* open(2) flags */
	char *path; /* with a policy: the path writes were checked against */
};

int cvfs_fs_lookup(struct cvfs_fs *fs, uint64_t parent, const char *name, struct cvfs_attr *out);
void cvfs_fs_forget(struct cvfs_fs *fs, uint64_t ino, uint64_t nlookup);
int cvfs_fs_getattr(struct cvfs_fs *fs, uint64_t ino, struct cvfs_attr *out);
int cvfs_fs_setattr(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t ino,
		    const struct cvfs_attr *in, int mask, struct cvfs_attr *out);

/* mode carries the file type; symlink targets go through cvfs_fs_symlink. */
int cvfs_fs_mknod(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		  const char *name, uint32_t mode, uint64_t rdev, struct cvfs_attr *out);
int cvfs_fs_symlink(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		    const char *name, const char *target, struct cvfs_attr *out);
ssize_t cvfs_fs_readlink(struct cvfs_fs *fs, uint64_t ino, char *buf, size_t size);
int cvfs_fs_link(struct cvfs_fs *fs, uint64_t ino, uint64_t newparent, const char *newname,
		 struct cvfs_attr *out);
int cvfs_fs_unlink(struct cvfs_fs *fs, uint64_t parent, const char *name);
int cvfs_fs_rmdir(struct cvfs_fs *fs, uint64_t parent, const char *name);
/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE */
int cvfs_fs_rename(struct cvfs_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		   const char *newname, unsigned flags);

/* create: O_EXCL honoured; an existing file is opened (and truncated with
 * O_TRUNC).  Both count a reference like lookup. */
int cvfs_fs_create(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		   const char *name, uint32_t mode, int flags, struct cvfs_attr *out,
		   struct cvfs_handle **fh);
int cvfs_fs_open(struct cvfs_fs *fs, uint64_t ino, int flags, struct cvfs_handle **fh);
/* A read answered straight from the store's memory: emit gets the bytes as
 * iovecs valid only during the call.  *sent says whether emit was called
 * (then the request is answered; the result is emit's).  -ENOSYS (not
 * sent): the store cannot; use cvfs_fs_read. */
int cvfs_fs_read_iov(struct cvfs_fs *fs, struct cvfs_handle *fh, size_t size, uint64_t off,
		     int (*emit)(void *arg, const struct iovec *iov, int n), void *arg, int *sent);
ssize_t cvfs_fs_read(struct cvfs_fs *fs, struct cvfs_handle *fh, void *buf, size_t size,
		     uint64_t off);
/* append: write at the end whatever off says (the API's O_APPEND). */
ssize_t cvfs_fs_write(struct cvfs_fs *fs, struct cvfs_handle *fh, const void *buf, size_t size,
		      uint64_t off, int append);
int cvfs_fs_fsync(struct cvfs_fs *fs, struct cvfs_handle *fh, int datasync);
int cvfs_fs_flush(struct cvfs_fs *fs, struct cvfs_handle *fh);
void cvfs_fs_release(struct cvfs_fs *fs, struct cvfs_handle *fh);
int cvfs_fs_fallocate(struct cvfs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);

int cvfs_fs_opendir(struct cvfs_fs *fs, uint64_t ino, struct cvfs_handle **fh);
void cvfs_fs_releasedir(struct cvfs_fs *fs, struct cvfs_handle *fh);
/* Entries from offset off ("." is 0, ".." is 1).  cb returns nonzero when it
 * cannot take the entry; next is the offset to resume after it.  With plus,
 * attr is filled and an entry the callback took counts a reference (not "."
 * or ".."); without plus only attr->ino and the type bits of attr->mode are. */
typedef int (*cvfs_fill_fn)(void *arg, const char *name, size_t len, const struct cvfs_attr *attr,
			    uint64_t next);
int cvfs_fs_readdir(struct cvfs_fs *fs, uint64_t ino, uint64_t off, int plus, cvfs_fill_fn cb,
		    void *arg);

int cvfs_fs_statfs(struct cvfs_fs *fs, struct cvfs_statfs *out);

ssize_t cvfs_fs_getxattr(struct cvfs_fs *fs, uint64_t ino, const char *name, void *val,
			 size_t size);
int cvfs_fs_setxattr(struct cvfs_fs *fs, uint64_t ino, const char *name, const void *val,
		     size_t size, int flags);
ssize_t cvfs_fs_listxattr(struct cvfs_fs *fs, uint64_t ino, char *list, size_t size);
int cvfs_fs_removexattr(struct cvfs_fs *fs, uint64_t ino, const char *name);

/* Paths, for the API.  No references are counted.  resolve_parent gives the
 * directory that holds the last component (links followed) and its name
 * (CVFS_NAME_MAX + 1 bytes). */
int cvfs_fs_resolve(struct cvfs_fs *fs, const char *path, int follow, struct cvfs_attr *out);
int cvfs_fs_resolve_parent(struct cvfs_fs *fs, const char *path, uint64_t *parent, char *name);
/* Tell the mount (if any) that the API changed something. */
void cvfs_fs_changed(struct cvfs_fs *fs, uint64_t ino, uint64_t parent, const char *name);

/* ---- locks (locks.c) ----
 * fcntl(2) and flock(2) locks kept by the store, so that they hold across
 * every client of a shared store.  Only when the store has the lock methods
 * (cvfs_fs_has_locks); otherwise a mount leaves locking to its kernel.
 * owner is the kernel's lock owner (a process's, or an open file
 * description's for flock and OFD locks), unique within this fs.  None of
 * these waits: a conflict is -EAGAIN and a caller that must wait asks again
 * (the mount polls, see fuse_linux.c).  ino is the file's (fh may be NULL). */
int cvfs_fs_has_locks(struct cvfs_fs *fs);
/* lk: the test; filled with a conflicting lock of another owner, or type
 * F_UNLCK. */
int cvfs_fs_getlk(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino, struct cvfs_lock *lk);
int cvfs_fs_setlk(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino,
		  const struct cvfs_lock *lk);
/* op: LOCK_SH, LOCK_EX or LOCK_UN (LOCK_NB ignored: never waits).  Like
 * Linux, a conversion that conflicts leaves the old lock dropped. */
int cvfs_fs_flock(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino, uint64_t owner,
		  int op, uint32_t pid);
/* close(2) of a descriptor of the file by owner: drops owner's fcntl locks on
 * it.  Returns 1 if it released something (waiters may go on), else 0. */
int cvfs_fs_lock_flush(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino, uint64_t owner);
/* The last close of an open file (before cvfs_fs_release): drops its flock
 * lock (flock_owner, when has_flock_owner) and the locks taken through it
 * (OFD locks).  Returns 1 if it released something. */
int cvfs_fs_lock_release(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino,
			 int has_flock_owner, uint64_t flock_owner);
/* Forget this fs's bookkeeping of held locks (the mount goes away). */
void cvfs_fs_locks_forget(struct cvfs_fs *fs);

/* Registry (registry.c) */
int cvfs_store_open(const char *name, const struct cvfs_opt *opts, size_t nopts,
		    struct cvfs_store **out, char **errmsg);
int cvfs_store_built(const char *name);

int64_t cvfs_now_ns(void);
struct stat;
/* An inode record as struct stat (times before 1970 too). */
void cvfs_attr_to_stat(const struct cvfs_attr *a, struct stat *st);
#endif
