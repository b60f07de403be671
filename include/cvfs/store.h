/*
 * chuk-vfs store contract: the header for backend authors.
 *
 * A store keeps things; the core gives them meaning. A backend stores inode
 * records, directory entries, file bytes and extended attributes, and knows
 * nothing of POSIX rules (link counts, rename over a target, ENOTEMPTY,
 * timestamps): the core applies those, once, for every backend.
 *
 * Calling rules
 *  - Every method except open/free/statfs/sync is called between txn_begin and
 *    txn_end, by the thread that began the transaction.  The core never nests
 *    transactions on one thread.  A store that is not CVFS_CAP_THREADS-safe
 *    in its transactions must serialise them itself (a mutex taken in
 *    txn_begin is enough).
 *  - txn_begin(write=0) transactions only read.  txn_end(commit=1) may fail
 *    with -EAGAIN to say "another writer got in first": the core then runs the
 *    whole operation again from the start (optimistic stores such as Redis
 *    WATCH/MULTI use this).
 *  - Every method returns 0 (or a byte count) on success and -errno on
 *    failure.  A backend maps its own errors to errno in one function.
 *  - Names are byte strings of 1..255 bytes, not NUL-terminated (len given),
 *    never "." or "..", never containing '/' or NUL.
 *  - Optional methods may be NULL; the core then uses a generic fallback
 *    (noted on each).
 */
#ifndef CVFS_STORE_H
#define CVFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CVFS_STORE_ABI 1
#define CVFS_ROOT_INO 1
#define CVFS_NAME_MAX 255

/* What a store can do; the core adapts to what is missing. */
enum cvfs_store_caps {
	CVFS_CAP_HARDLINKS = 1u << 0,  /* more than one name per file */
	CVFS_CAP_PERSISTENT = 1u << 1, /* survives the process */
	CVFS_CAP_SHARED = 1u << 2,     /* other processes may change it */
	CVFS_CAP_XATTR = 1u << 3,      /* extended attributes */
	CVFS_CAP_SPECIAL = 1u << 4,    /* fifos, sockets, device nodes */
	CVFS_CAP_THREADS = 1u << 5,    /* concurrent read transactions ok */
	CVFS_CAP_SPARSE = 1u << 6,     /* holes cost no space */
};

/* The record of one inode.  Times are nanoseconds since the epoch. */
struct cvfs_attr {
	uint64_t ino;
	uint64_t size;    /* bytes; for a symlink, the target's length */
	uint64_t parent;  /* directories: the parent's inode (root: itself) */
	uint64_t rdev;
	uint64_t generation;
	int64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
	uint32_t mode;  /* type and permission bits, as st_mode */
	uint32_t nlink;
	uint32_t uid, gid;
	uint32_t flags; /* reserved, 0 */
};

/* One directory entry handed to a dir_list callback.  name is borrowed for
 * the duration of the call.  cookie is where to resume listing *after* this
 * entry: a value in 1 .. 2^62, stable while the entry exists. */
struct cvfs_dirent {
	const char *name;
	size_t namelen;
	uint64_t ino;
	uint32_t type; /* S_IFMT bits of the target's mode */
	uint64_t cookie;
};
/* Return nonzero to stop listing (the entry was NOT consumed then). */
typedef int (*cvfs_dirent_cb)(void *arg, const struct cvfs_dirent *ent);

struct cvfs_statfs {
	uint64_t bsize, blocks, bfree, bavail;
	uint64_t files, ffree;
};

struct cvfs_store;

/* Changes made by other clients of a shared store (CVFS_CAP_SHARED), so the
 * mount can drop what the kernel cached.  kind: CVFS_CHANGE_INODE (attributes
 * or data of ino changed; ino deleted), CVFS_CHANGE_ENTRY (name in parent was
 * added, removed or repointed; ino is the old target if known, else 0). */
enum { CVFS_CHANGE_INODE = 1, CVFS_CHANGE_ENTRY = 2 };
typedef void (*cvfs_change_cb)(void *arg, int kind, uint64_t ino, uint64_t parent,
			       const char *name, size_t len);

/* A lock (see setlk below).  Bytes [start, end], both included; end
 * CVFS_LOCK_EOF means "to the end of the file, however far it grows".
 * owner is the kernel's lock owner (a process's table of descriptors, or an
 * open file description for flock and OFD locks): unique within one client
 * of the store; the store qualifies it with its own client identity. */
#define CVFS_LOCK_EOF UINT64_MAX
struct cvfs_lock {
	uint32_t type; /* F_RDLCK, F_WRLCK or F_UNLCK (<fcntl.h>) */
	uint32_t pid;  /* of the process that asked: reported by getlk */
	uint64_t start, end;
	uint64_t owner;
};

struct cvfs_store_ops {
	const char *name;
	uint32_t abi; /* CVFS_STORE_ABI */

	int (*txn_begin)(struct cvfs_store *st, int write);
	/* commit=0 aborts: the store must undo what the transaction changed
	 * (stores with no undo log make every method's effect all-or-nothing
	 * and the core only aborts before its first change). */
	int (*txn_end)(struct cvfs_store *st, int commit);

	/* A fresh inode number, never 0 or 1, never reused while the store
	 * holds the old inode. */
	int (*ino_alloc)(struct cvfs_store *st, uint64_t *ino);
	int (*inode_get)(struct cvfs_store *st, uint64_t ino, struct cvfs_attr *out);
	/* Create or replace the record a->ino. */
	int (*inode_put)(struct cvfs_store *st, const struct cvfs_attr *a);
	/* Remove the record, its data and its xattrs. */
	int (*inode_del)(struct cvfs_store *st, uint64_t ino);

	int (*dent_get)(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
			uint64_t *ino);
	/* Create, or point an existing name at ino. */
	int (*dent_put)(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
			uint64_t ino, uint32_t type);
	int (*dent_del)(struct cvfs_store *st, uint64_t dir, const char *name, size_t len);
	/* Entries after cookie (0 = from the start), in a stable order; entries
	 * added or removed meanwhile may or may not show, none twice. */
	int (*dir_list)(struct cvfs_store *st, uint64_t dir, uint64_t cookie, cvfs_dirent_cb cb,
			void *arg);
	/* Optional: 1 if dir has no entries, 0 if it has.  Fallback: dir_list. */
	int (*dir_empty)(struct cvfs_store *st, uint64_t dir);

	/* Bytes [off, off+len) of ino's data.  Fills all len bytes: data never
	 * written (holes) reads as zeros.  The core never reads past the size. */
	ssize_t (*read)(struct cvfs_store *st, uint64_t ino, void *buf, size_t len, uint64_t off);
	/* Optional: the same bytes handed to emit as iovecs that point into the
	 * store's own memory (holes at zeros), valid only during the call: a
	 * reply straight from the store, no copy.  Returns emit's result. */
	int (*read_iov)(struct cvfs_store *st, uint64_t ino, uint64_t off, size_t len,
			int (*emit)(void *arg, const struct iovec *iov, int n), void *arg);
	ssize_t (*write)(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len,
			 uint64_t off);
	/* Forget data at and beyond size, so a later extension reads zeros. */
	int (*truncate)(struct cvfs_store *st, uint64_t ino, uint64_t size);
	/* Optional: make [off, off+len) read as zeros and free its space.
	 * Fallback: write zeros. */
	int (*punch)(struct cvfs_store *st, uint64_t ino, uint64_t off, uint64_t len);

	/* Extended attributes (optional as a group: NULL = ENOTSUP).
	 * getx: value size when size is 0, else copies (ERANGE if too small).
	 * setx flags: XATTR_CREATE / XATTR_REPLACE semantics.
	 * listx: NUL-separated names, size/ERANGE as getx. */
	ssize_t (*getx)(struct cvfs_store *st, uint64_t ino, const char *name, void *val,
			size_t size);
	int (*setx)(struct cvfs_store *st, uint64_t ino, const char *name, const void *val,
		    size_t size, int flags);
	ssize_t (*listx)(struct cvfs_store *st, uint64_t ino, char *list, size_t size);
	int (*removex)(struct cvfs_store *st, uint64_t ino, const char *name);

	/* Optional, outside transactions.  statfs fallback: large constants.
	 * sync: make all committed transactions durable (fsync). */
	int (*statfs)(struct cvfs_store *st, struct cvfs_statfs *out);
	int (*sync)(struct cvfs_store *st, uint64_t ino, int datasync);

	/* Optional, outside transactions: the life of open files, for stores
	 * that stage data (S3).  open: a file is opened (open(2) flags); flush:
	 * a descriptor is closed (may upload; its error reaches close(2));
	 * release: the last reference of that open is gone. */
	int (*open)(struct cvfs_store *st, uint64_t ino, int flags);
	int (*flush)(struct cvfs_store *st, uint64_t ino);
	int (*release)(struct cvfs_store *st, uint64_t ino);

	/* Optional, outside transactions: start delivering changes made by other
	 * clients to cb, from a thread of the store's own.  Called once, after
	 * the process daemonised (a store starts no threads before this). */
	int (*watch)(struct cvfs_store *st, cvfs_change_cb cb, void *arg);

	/* Optional as a group, outside transactions: locks that every client of
	 * the store sees (struct cvfs_lock below), so two processes on two mounts
	 * of one shared filesystem cannot both hold a write lock.  Without them a
	 * mount leaves locking to its kernel, local to that mount.
	 *  flock=0: fcntl(2) byte-range locks.  flock=1: flock(2) locks, always
	 *  the whole file (start 0, end CVFS_LOCK_EOF).  The two kinds are
	 *  independent: a lock of one kind never conflicts with one of the other.
	 *  setlk: owner's locks in [start, end] become lk->type: F_RDLCK or
	 *  F_WRLCK replaces what owner held there (upgrade, downgrade, ranges
	 *  split and merged as POSIX says), F_UNLCK removes them (holding nothing
	 *  there is not an error).  Locks of one owner never conflict with each
	 *  other.  Never waits: -EAGAIN if a lock of another owner conflicts
	 *  (then nothing changed).  F_UNLCK over [0, CVFS_LOCK_EOF] drops all of
	 *  owner's locks of that kind on ino (what the core does at close).
	 *  getlk: a lock of another owner that conflicts with *lk (type, start,
	 *  end, pid filled; owner 0 if it is another client's), or type F_UNLCK
	 *  if none.  Locks die with their client: free drops them, and a store
	 *  must not let the locks of a client that vanished (killed, cut off)
	 *  block the others for ever (the Redis store uses a lease). */
	int (*setlk)(struct cvfs_store *st, uint64_t ino, const struct cvfs_lock *lk, int flock);
	int (*getlk)(struct cvfs_store *st, uint64_t ino, struct cvfs_lock *lk, int flock);

	void (*free)(struct cvfs_store *st);

	/* Optional, outside transactions (added after free; ABI 1 stores that
	 * predate them are built with them NULL).
	 *  finish: the clean end of a mount, before free: send what is owed (a
	 *  store that queues changes waits for them, for a bounded time).
	 *  Returns 0, or -EIO after saying on stderr what was not sent (and
	 *  whether it is kept for the next open); free must not repeat it.
	 *  status: the store's own state (queues, failures) as one JSON object,
	 *  malloc'd; `chuk-vfs status` shows it under "store_status". */
	int (*finish)(struct cvfs_store *st);
	char *(*status)(struct cvfs_store *st);
};

/* Every store begins with this.  Backends embed it as their first member. */
struct cvfs_store {
	const struct cvfs_store_ops *ops;
	uint32_t caps;
};

/* Options as key=value pairs, so callers need no per-backend code. */
struct cvfs_opt {
	const char *key;
	const char *value;
};

/* A backend's constructor.  On failure returns -errno and may set *errmsg to a
 * malloc'd readable message (the caller frees it). */
typedef int (*cvfs_store_open_fn)(const struct cvfs_opt *opts, size_t nopts,
				  struct cvfs_store **out, char **errmsg);

/* Helpers for backends. */
const char *cvfs_opt_get(const struct cvfs_opt *opts, size_t nopts, const char *key);

#ifdef __cplusplus
}
#endif
#endif
