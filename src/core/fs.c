/*
 * The core: POSIX rules, written once, over the store contract.
 *
 * Each operation runs in one store transaction (see TXN below).  The table of
 * references (kernel lookups and open handles) decides when an inode whose
 * last name went away can be deleted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/policy.h"
#include "util/htab.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define TXN_TRIES 64

/* References the kernel and open handles hold on one inode. */
struct iref {
	struct cvfs_hnode h;
	uint64_t ino;
	uint64_t nlookup;
	uint64_t nopen;
	int orphan; /* its last name is gone: delete when unreferenced */
};

struct cvfs_fs {
	struct cvfs_store *st;
	const struct cvfs_store_ops *ops;
	struct cvfs_fs_config cfg;

	pthread_mutex_t ref_lock;
	struct cvfs_htab refs; /* struct iref by ino; protected by ref_lock */
	struct ohandle *open;  /* every handle not yet released; protected by ref_lock */
	atomic_int opens_seen; /* every open of this fs comes through cvfs_fs_open/opendir */

	pthread_mutex_t notify_lock;
	struct cvfs_fs_notify notify; /* protected by notify_lock, held while calling it */

	/* The security policy (NULL: none) and, only with one, the last known
	 * name of each inode seen, to give the policy full paths. */
	struct cvfs_policy *pol;
	pthread_mutex_t name_lock;
	struct cvfs_htab names; /* struct iname by ino; protected by name_lock */

	int wound_down; /* open handles released and orphans deleted (wind_down) */
};

/* A handle, on the list of open ones: the kernel may never send the release
 * of some (a daemon stopped by a signal), and cvfs_fs_free releases those. */
struct ohandle {
	struct cvfs_handle h; /* first: a struct cvfs_handle * is a struct ohandle * */
	struct ohandle *prev, *next;
};

static void release(struct cvfs_fs *fs, struct cvfs_handle *fh, int file);

struct iname {
	struct cvfs_hnode h;
	uint64_t ino, parent;
	size_t len;
	char name[];
};

int64_t cvfs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) { /* times before 1970 */
		ts->tv_nsec += 1000000000;
		ts->tv_sec--;
	}
}

void cvfs_attr_to_stat(const struct cvfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = 65536;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	ns_to_ts(a->atime_ns, &st->st_atim);
	ns_to_ts(a->mtime_ns, &st->st_mtim);
	ns_to_ts(a->ctime_ns, &st->st_ctim);
}

/* ---- transactions ---- */

/* Runs BODY (which sets rc) in a transaction, again from the start when the
 * store reports a conflict at commit. */
#define TXN(fs, write, ...)                                                          \
	do {                                                                          \
		for (int try_ = 0;; try_++) {                                         \
			rc = (fs)->ops->txn_begin((fs)->st, (write));                 \
			if (rc)                                                       \
				break;                                                \
			__VA_ARGS__;                                                  \
			int c_ = (fs)->ops->txn_end((fs)->st, rc >= 0);               \
			if (rc >= 0 && c_ == -EAGAIN && try_ < TXN_TRIES)             \
				continue;                                             \
			if (rc >= 0 && c_ < 0)                                        \
				rc = c_;                                              \
			break;                                                        \
		}                                                                     \
	} while (0)

static void name_drop(struct cvfs_fs *fs, uint64_t ino);

/* ---- references ---- */

static int ref_eq(const struct cvfs_hnode *n, const void *key)
{
	return ((const struct iref *)n)->ino == *(const uint64_t *)key;
}

static struct iref *ref_find(struct cvfs_fs *fs, uint64_t ino)
{
	return (struct iref *)cvfs_htab_find(&fs->refs, cvfs_hash_u64(ino), ref_eq, &ino);
}

static int ref_get(struct cvfs_fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen)
{
	pthread_mutex_lock(&fs->ref_lock);
	struct iref *r = ref_find(fs, ino);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			pthread_mutex_unlock(&fs->ref_lock);
			return -ENOMEM;
		}
		r->ino = ino;
		r->h.hash = cvfs_hash_u64(ino);
		cvfs_htab_insert(&fs->refs, &r->h);
	}
	r->nlookup += nlookup;
	r->nopen += nopen;
	pthread_mutex_unlock(&fs->ref_lock);
	return 0;
}

/* Drops references; deletes the inode if it was an orphan and nothing holds it. */
static void ref_put(struct cvfs_fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen)
{
	int del = 0;
	pthread_mutex_lock(&fs->ref_lock);
	struct iref *r = ref_find(fs, ino);
	if (r) {
		r->nlookup = r->nlookup > nlookup ? r->nlookup - nlookup : 0;
		r->nopen = r->nopen > nopen ? r->nopen - nopen : 0;
		if (r->nlookup == 0 && r->nopen == 0) {
			del = r->orphan;
			cvfs_htab_remove(&fs->refs, &r->h);
			free(r);
			name_drop(fs, ino); /* lock order: ref_lock -> name_lock */
		}
	}
	pthread_mutex_unlock(&fs->ref_lock);
	if (!del)
		return;
	int rc;
	TXN(fs, 1, {
		struct cvfs_attr a;
		rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0 && a.nlink == 0) {
			pthread_mutex_lock(&fs->ref_lock);
			int held = ref_find(fs, ino) != NULL;
			pthread_mutex_unlock(&fs->ref_lock);
			if (!held)
				rc = fs->ops->inode_del(fs->st, ino);
		}
	});
	(void)rc;
}

/* Inside a write transaction: a's link count reached zero.  Delete it now, or
 * mark it an orphan if the kernel or a handle still holds it.
 *
 * eager (unlink, rmdir): a reference of the kernel's alone (its cached inode)
 * does not keep the record when every open is seen here (the adapter says
 * so): it saves a shared store a second transaction at FORGET.  An open that
 * raced with the unlink then fails with ENOENT, as if it came after it.  Not
 * for a rename over the inode: there an open of the name must find the old
 * file or the new one, never nothing, and the kernel's reference (taken by
 * the opener's lookup) is what keeps the old one. */
static int drop_inode(struct cvfs_fs *fs, struct cvfs_attr *a, int eager)
{
	pthread_mutex_lock(&fs->ref_lock);
	struct iref *r = ref_find(fs, a->ino);
	if (eager && r && r->nopen == 0 && atomic_load(&fs->opens_seen))
		r = NULL;
	if (r)
		r->orphan = 1;
	pthread_mutex_unlock(&fs->ref_lock);
	if (r)
		return fs->ops->inode_put(fs->st, a);
	return fs->ops->inode_del(fs->st, a->ino);
}

/* ---- names and policy ----
 *
 * With a policy, the core remembers (parent, name) of every inode it hands
 * out or creates, so it can give the policy the full path of a request on an
 * inode number.  Never called inside a transaction (the fallback for an
 * unknown directory runs its own). */

static int iname_eq(const struct cvfs_hnode *n, const void *key)
{
	return ((const struct iname *)n)->ino == *(const uint64_t *)key;
}

static void name_set(struct cvfs_fs *fs, uint64_t ino, uint64_t parent, const char *name,
		     size_t len)
{
	if (!fs->pol || ino == CVFS_ROOT_INO)
		return;
	struct iname *n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return;
	n->ino = ino;
	n->parent = parent;
	n->len = len;
	memcpy(n->name, name, len);
	n->name[len] = 0;
	n->h.hash = cvfs_hash_u64(ino);
	pthread_mutex_lock(&fs->name_lock);
	struct cvfs_hnode *old = cvfs_htab_find(&fs->names, n->h.hash, iname_eq, &ino);
	if (old) {
		cvfs_htab_remove(&fs->names, old);
		free(old);
	}
	cvfs_htab_insert(&fs->names, &n->h);
	pthread_mutex_unlock(&fs->name_lock);
}

static void name_drop(struct cvfs_fs *fs, uint64_t ino)
{
	if (!fs->pol)
		return;
	pthread_mutex_lock(&fs->name_lock);
	struct cvfs_hnode *old = cvfs_htab_find(&fs->names, cvfs_hash_u64(ino), iname_eq, &ino);
	if (old) {
		cvfs_htab_remove(&fs->names, old);
		free(old);
	}
	pthread_mutex_unlock(&fs->name_lock);
}

struct scan_arg {
	uint64_t ino;
	char name[CVFS_NAME_MAX + 1];
	size_t len;
};

static int scan_one(void *arg, const struct cvfs_dirent *e)
{
	struct scan_arg *a = arg;
	if (e->ino != a->ino)
		return 0;
	memcpy(a->name, e->name, e->namelen);
	a->len = e->namelen;
	return 1;
}

/* The full path of ino ("/" for the root), malloc'd; NULL if unknown. */
static char *path_of(struct cvfs_fs *fs, uint64_t ino)
{
	char *parts[256];
	int n = 0;
	while (ino != CVFS_ROOT_INO && n < 256) {
		pthread_mutex_lock(&fs->name_lock);
		struct iname *nm = (struct iname *)cvfs_htab_find(&fs->names, cvfs_hash_u64(ino),
								  iname_eq, &ino);
		char *part = nm ? strndup(nm->name, nm->len) : NULL;
		uint64_t parent = nm ? nm->parent : 0;
		pthread_mutex_unlock(&fs->name_lock);
		if (!nm) {
			/* A directory we never saw named: find it from its parent. */
			struct cvfs_attr a;
			struct scan_arg sa = {.ino = ino};
			int rc;
			TXN(fs, 0, {
				sa.len = 0;
				rc = fs->ops->inode_get(fs->st, ino, &a);
				if (rc == 0 && !S_ISDIR(a.mode))
					rc = -ENOENT;
				if (rc == 0)
					rc = fs->ops->dir_list(fs->st, a.parent, 0, scan_one, &sa);
			});
			if (rc || !sa.len)
				break;
			part = strndup(sa.name, sa.len);
			parent = a.parent;
			name_set(fs, ino, parent, sa.name, sa.len);
		}
		if (!part)
			break;
		parts[n++] = part;
		ino = parent;
	}
	char *out = NULL;
	if (ino == CVFS_ROOT_INO) {
		size_t total = 2;
		for (int i = 0; i < n; i++)
			total += strlen(parts[i]) + 1;
		out = malloc(total);
		if (out) {
			char *p = out;
			*p = 0;
			for (int i = n - 1; i >= 0; i--)
				p += sprintf(p, "/%s", parts[i]);
			if (n == 0)
				strcpy(out, "/");
		}
	}
	for (int i = 0; i < n; i++)
		free(parts[i]);
	return out;
}

static char *path_at(struct cvfs_fs *fs, uint64_t dir, const char *name, size_t len)
{
	char *d = path_of(fs, dir);
	if (!d)
		return NULL;
	size_t dl = strlen(d);
	char *out = malloc(dl + len + 2);
	if (out) {
		memcpy(out, d, dl);
		size_t k = dl;
		if (dl != 1)
			out[k++] = '/';
		else
			k = 1;
		memcpy(out + k, name, len);
		out[k + len] = 0;
	}
	free(d);
	return out;
}

/* Policy check of (dir, name); 0 without a policy.  An unknown path fails
 * closed (EACCES). */
static int pol_at(struct cvfs_fs *fs, enum cvfs_pol_op op, uint64_t dir, const char *name,
		  size_t len, uint32_t type, const struct cvfs_cred *cr)
{
	if (!fs->pol)
		return 0;
	char *path = path_at(fs, dir, name, len);
	if (!path)
		return -EACCES;
	int rc = cvfs_policy_check(fs->pol, op, path, type, cr);
	free(path);
	return rc;
}

static int pol_ino(struct cvfs_fs *fs, enum cvfs_pol_op op, uint64_t ino, uint32_t type,
		   const struct cvfs_cred *cr)
{
	if (!fs->pol)
		return 0;
	char *path = path_of(fs, ino);
	if (!path)
		return -EACCES;
	int rc = cvfs_policy_check(fs->pol, op, path, type, cr);
	free(path);
	return rc;
}

static int pol_size(struct cvfs_fs *fs, uint64_t ino, uint64_t size, const struct cvfs_cred *cr)
{
	if (!fs->pol)
		return 0;
	char *path = path_of(fs, ino);
	int rc = cvfs_policy_check_size(fs->pol, path ? path : "?", size, cr);
	free(path);
	return rc;
}

/* What a quota refusal names: the path of ino, or of name in directory ino
 * (NULL name); built only when quotas are on (free it). */
static char *quota_path(struct cvfs_fs *fs, uint64_t ino, const char *name, size_t len)
{
	if (!cvfs_policy_has_quota(fs->pol))
		return NULL;
	return name ? path_at(fs, ino, name, len) : path_of(fs, ino);
}

/* Quota charge (counters only, no store access); path and cr name the
 * caller in a refusal. */
static int charge(struct cvfs_fs *fs, int64_t dbytes, int64_t dfiles, const char *path,
		  const struct cvfs_cred *cr)
{
	if (!fs->pol || (!dbytes && !dfiles))
		return 0;
	return cvfs_policy_charge(fs->pol, dbytes, dfiles, path ? path : "?", cr);
}

/* charge() of a new name, dir/name */
static int charge_at(struct cvfs_fs *fs, int64_t dbytes, uint64_t dir, const char *name,
		     size_t len, const struct cvfs_cred *cr)
{
	if (!fs->pol)
		return 0;
	char *path = quota_path(fs, dir, name, len);
	int rc = charge(fs, dbytes, 1, path, cr);
	free(path);
	return rc;
}

/* Quota charge from inside a transaction body that may run more than once:
 * *held is what an earlier run charged; the new run's amount replaces it.
 * path names the file in a refusal (from quota_path, taken before the
 * transaction: finding a path may need one of its own). */
static int recharge(struct cvfs_fs *fs, int64_t *held_b, int64_t *held_f, int64_t b, int64_t f,
		    const char *path)
{
	if (!fs->pol)
		return 0;
	int rc = charge(fs, b - *held_b, f - *held_f, path, NULL);
	if (rc == 0) {
		*held_b = b;
		*held_f = f;
	}
	return rc;
}

static void refund(struct cvfs_fs *fs, int64_t held_b, int64_t held_f)
{
	if (fs->pol && (held_b || held_f))
		cvfs_policy_charge(fs->pol, -held_b, -held_f, "", NULL); /* never refused */
}

/* ---- helpers ---- */

static int check_name(const char *name, size_t *len)
{
	size_t n = strlen(name);
	if (n == 0)
		return -ENOENT;
	if (n > CVFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n))
		return -EINVAL;
	*len = n;
	return 0;
}

static int is_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

static int get_dir(struct cvfs_fs *fs, uint64_t ino, struct cvfs_attr *a)
{
	int rc = fs->ops->inode_get(fs->st, ino, a);
	if (rc == 0 && !S_ISDIR(a->mode))
		rc = -ENOTDIR;
	return rc;
}

static void touch_mc(struct cvfs_attr *a, int64_t now)
{
	a->mtime_ns = a->ctime_ns = now;
}

static int dir_is_empty(struct cvfs_fs *fs, uint64_t ino);

/* ---- create and lifecycle ---- */

static int do_init_root(struct cvfs_fs *fs)
{
	int rc;
	struct cvfs_attr a;
	/* Look first, read-only: a read-only store refuses write transactions. */
	TXN(fs, 0, { rc = fs->ops->inode_get(fs->st, CVFS_ROOT_INO, &a); });
	if (rc == 0)
		return S_ISDIR(a.mode) ? 0 : -ENOTDIR;
	if (rc != -ENOENT)
		return rc;
	/* A new store gets its root even for a read-only mount (the memory store
	 * always starts empty); a store that cannot take it says EROFS. */
	TXN(fs, 1, {
		rc = fs->ops->inode_get(fs->st, CVFS_ROOT_INO, &a);
		if (rc == -ENOENT) {
			int64_t now = cvfs_now_ns();
			memset(&a, 0, sizeof(a));
			a.ino = CVFS_ROOT_INO;
			a.parent = CVFS_ROOT_INO;
			a.mode = S_IFDIR | (fs->cfg.root_mode ? fs->cfg.root_mode & 07777 : 0755);
			a.nlink = 2;
			a.uid = fs->cfg.root_uid;
			a.gid = fs->cfg.root_gid;
			a.atime_ns = a.mtime_ns = a.ctime_ns = a.btime_ns = now;
			a.generation = 1;
			rc = fs->ops->inode_put(fs->st, &a);
		} else if (rc == 0 && !S_ISDIR(a.mode)) {
			rc = -ENOTDIR;
		}
	});
	return rc;
}

/* Quota counters at start: every inode but the root, and the bytes of
 * regular files (a file with several names counted once). */
struct usage {
	uint64_t *dirs;
	size_t ndirs, cap;
	uint64_t bytes, files;
	struct cvfs_htab seen; /* multi-link files already counted */
	struct cvfs_fs *fs;
	int err;
};

struct seen_ino {
	struct cvfs_hnode h;
	uint64_t ino;
};

static int seen_eq(const struct cvfs_hnode *n, const void *key)
{
	return ((const struct seen_ino *)n)->ino == *(const uint64_t *)key;
}

static int usage_one(void *arg, const struct cvfs_dirent *e)
{
	struct usage *u = arg;
	struct cvfs_attr a;
	int rc = u->fs->ops->inode_get(u->fs->st, e->ino, &a);
	if (rc) {
		u->err = rc;
		return 1;
	}
	if (S_ISDIR(a.mode)) {
		if (u->ndirs == u->cap) {
			size_t nc = u->cap ? u->cap * 2 : 64;
			uint64_t *d = realloc(u->dirs, nc * sizeof(*d));
			if (!d) {
				u->err = -ENOMEM;
				return 1;
			}
			u->dirs = d;
			u->cap = nc;
		}
		u->dirs[u->ndirs++] = e->ino;
	} else if (a.nlink > 1) {
		uint64_t h = cvfs_hash_u64(a.ino);
		if (cvfs_htab_find(&u->seen, h, seen_eq, &a.ino))
			return 0;
		struct seen_ino *si = malloc(sizeof(*si));
		if (!si) {
			u->err = -ENOMEM;
			return 1;
		}
		si->ino = a.ino;
		si->h.hash = h;
		cvfs_htab_insert(&u->seen, &si->h);
	}
	u->files++;
	if (S_ISREG(a.mode) || S_ISLNK(a.mode))
		u->bytes += a.size;
	return 0;
}

static int usage_scan(struct cvfs_fs *fs)
{
	struct usage u = {.fs = fs};
	int rc = cvfs_htab_init(&u.seen, 64);
	if (rc)
		return rc;
	uint64_t dir = CVFS_ROOT_INO;
	for (;;) {
		TXN(fs, 0, {
			u.err = 0;
			rc = fs->ops->dir_list(fs->st, dir, 0, usage_one, &u);
		});
		if (rc == 0)
			rc = u.err;
		if (rc || u.ndirs == 0)
			break;
		dir = u.dirs[--u.ndirs];
	}
	size_t pos = 0;
	struct cvfs_hnode *p = cvfs_htab_next(&u.seen, &pos, NULL);
	while (p) {
		struct cvfs_hnode *nx = cvfs_htab_next(&u.seen, &pos, p);
		free(p);
		p = nx;
	}
	cvfs_htab_fini(&u.seen);
	free(u.dirs);
	if (rc == 0)
		cvfs_policy_init_usage(fs->pol, u.bytes, u.files);
	return rc;
}

int cvfs_fs_new(struct cvfs_store *st, const struct cvfs_fs_config *cfg, struct cvfs_fs **out)
{
	*out = NULL;
	struct cvfs_fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		st->ops->free(st);
		return -ENOMEM;
	}
	fs->st = st;
	fs->ops = st->ops;
	if (cfg)
		fs->cfg = *cfg;
	else {
		fs->cfg.root_uid = getuid();
		fs->cfg.root_gid = getgid();
	}
	pthread_mutex_init(&fs->ref_lock, NULL);
	pthread_mutex_init(&fs->notify_lock, NULL);
	pthread_mutex_init(&fs->name_lock, NULL);
	int rc = cvfs_htab_init(&fs->refs, 1024);
	if (rc == 0 && fs->cfg.policy) {
		fs->pol = fs->cfg.policy;
		if (!cvfs_policy_active(fs->pol)) {
			cvfs_policy_free(fs->pol);
			fs->pol = NULL;
		} else if (cvfs_policy_readonly(fs->pol)) {
			fs->cfg.readonly = 1;
		}
		fs->cfg.policy = NULL;
		if (fs->pol)
			rc = cvfs_htab_init(&fs->names, 1024);
	}
	if (rc == 0)
		rc = do_init_root(fs);
	if (rc == 0 && fs->pol && cvfs_policy_has_quota(fs->pol))
		rc = usage_scan(fs);
	if (rc) {
		cvfs_fs_free(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

/* The end of the fs's life, before the store's: handles whose release
 * never came (stopped by a signal, forced unmount) are released, and
 * orphans still referenced go.  Once. */
static void wind_down(struct cvfs_fs *fs)
{
	if (fs->wound_down)
		return;
	fs->wound_down = 1;
	while (fs->open)
		release(fs, &fs->open->h, !(fs->open->h.flags & O_DIRECTORY));
	size_t pos = 0;
	struct cvfs_hnode *p = fs->refs.b ? cvfs_htab_next(&fs->refs, &pos, NULL) : NULL;
	while (p) {
		struct cvfs_hnode *nx = cvfs_htab_next(&fs->refs, &pos, p);
		struct iref *r = (struct iref *)p;
		if (r->orphan) {
			int rc;
			TXN(fs, 1, {
				struct cvfs_attr a;
				rc = fs->ops->inode_get(fs->st, r->ino, &a);
				if (rc == 0 && a.nlink == 0)
					rc = fs->ops->inode_del(fs->st, r->ino);
			});
			r->orphan = 0;
		}
		p = nx;
	}
}

int cvfs_fs_finish(struct cvfs_fs *fs)
{
	if (!fs)
		return 0;
	wind_down(fs);
	return fs->ops->finish ? fs->ops->finish(fs->st) : 0;
}

void cvfs_fs_free(struct cvfs_fs *fs)
{
	if (!fs)
		return;
	wind_down(fs);
	size_t pos = 0;
	struct cvfs_hnode *p = fs->refs.b ? cvfs_htab_next(&fs->refs, &pos, NULL) : NULL;
	while (p) {
		struct cvfs_hnode *nx = cvfs_htab_next(&fs->refs, &pos, p);
		free(p);
		p = nx;
	}
	cvfs_htab_fini(&fs->refs);
	if (fs->names.b) {
		pos = 0;
		p = cvfs_htab_next(&fs->names, &pos, NULL);
		while (p) {
			struct cvfs_hnode *nx = cvfs_htab_next(&fs->names, &pos, p);
			free(p);
			p = nx;
		}
		cvfs_htab_fini(&fs->names);
	}
	cvfs_policy_free(fs->pol);
	cvfs_policy_free(fs->cfg.policy);
	pthread_mutex_destroy(&fs->name_lock);
	pthread_mutex_destroy(&fs->ref_lock);
	pthread_mutex_destroy(&fs->notify_lock);
	if (fs->st)
		fs->st->ops->free(fs->st);
	free(fs);
}

struct cvfs_store *cvfs_fs_store(struct cvfs_fs *fs)
{
	return fs->st;
}

int cvfs_fs_readonly(const struct cvfs_fs *fs)
{
	return fs->cfg.readonly;
}

uint32_t cvfs_fs_umask(const struct cvfs_fs *fs)
{
	return fs->cfg.umask;
}

void cvfs_fs_set_opens_seen(struct cvfs_fs *fs, int all)
{
	atomic_store(&fs->opens_seen, all);
}

struct cvfs_policy *cvfs_fs_policy(struct cvfs_fs *fs)
{
	return fs->pol;
}

void cvfs_fs_set_notify(struct cvfs_fs *fs, const struct cvfs_fs_notify *n)
{
	pthread_mutex_lock(&fs->notify_lock);
	if (n)
		fs->notify = *n;
	else
		memset(&fs->notify, 0, sizeof(fs->notify));
	pthread_mutex_unlock(&fs->notify_lock);
}

void cvfs_fs_changed(struct cvfs_fs *fs, uint64_t ino, uint64_t parent, const char *name)
{
	/* Called under notify_lock, so the mount cannot go away meanwhile. */
	pthread_mutex_lock(&fs->notify_lock);
	struct cvfs_fs_notify *n = &fs->notify;
	if (parent && name && n->inval_entry)
		n->inval_entry(n->arg, parent, name, strlen(name));
	if (ino && n->inval_inode)
		n->inval_inode(n->arg, ino, 0, 0);
	pthread_mutex_unlock(&fs->notify_lock);
}

/* From the store's own thread: another client changed something. */
static void on_store_change(void *arg, int kind, uint64_t ino, uint64_t parent, const char *name,
			    size_t len)
{
	struct cvfs_fs *fs = arg;
	pthread_mutex_lock(&fs->notify_lock);
	struct cvfs_fs_notify *n = &fs->notify;
	if (kind == CVFS_CHANGE_ENTRY && n->inval_entry)
		n->inval_entry(n->arg, parent, name, len);
	if (ino && n->inval_inode)
		n->inval_inode(n->arg, ino, 0, 0);
	pthread_mutex_unlock(&fs->notify_lock);
}

int cvfs_fs_start(struct cvfs_fs *fs)
{
	if (fs->ops->watch && (fs->st->caps & CVFS_CAP_SHARED))
		return fs->ops->watch(fs->st, on_store_change, fs);
	return 0;
}

#define RO_CHECK(fs)                                                                  \
	do {                                                                          \
		if ((fs)->cfg.readonly)                                               \
			return -EROFS;                                                \
	} while (0)

/* ---- lookups and attributes ---- */

static int lookup_noref(struct cvfs_fs *fs, uint64_t parent, const char *name,
			struct cvfs_attr *out)
{
	size_t len;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	TXN(fs, 0, {
		struct cvfs_attr p;
		rc = get_dir(fs, parent, &p);
		if (rc == 0) {
			uint64_t ino;
			if (len == 1 && name[0] == '.')
				ino = parent;
			else if (len == 2 && name[0] == '.' && name[1] == '.')
				ino = p.parent ? p.parent : CVFS_ROOT_INO;
			else
				rc = fs->ops->dent_get(fs->st, parent, name, len, &ino);
			if (rc == 0)
				rc = fs->ops->inode_get(fs->st, ino, out);
		}
	});
	if (rc == 0 && fs->pol && !is_dot(name, len)) {
		rc = pol_at(fs, CVFS_POL_LOOKUP, parent, name, len, out->mode & S_IFMT, NULL);
		if (rc == 0)
			name_set(fs, out->ino, parent, name, len);
	}
	return rc;
}

int cvfs_fs_lookup(struct cvfs_fs *fs, uint64_t parent, const char *name, struct cvfs_attr *out)
{
	int rc = lookup_noref(fs, parent, name, out);
	if (rc == 0)
		rc = ref_get(fs, out->ino, 1, 0);
	return rc;
}

/* Path resolution for the API.  Symlinks inside the path are followed (an
 * absolute target starts again at the filesystem's root, a relative one in the
 * directory holding the link); the last one only with follow.  At most 40
 * links, as Linux. */
static int resolve(struct cvfs_fs *fs, const char *path, int follow, struct cvfs_attr *out)
{
	struct cvfs_attr cur;
	int rc = cvfs_fs_getattr(fs, CVFS_ROOT_INO, &cur);
	if (rc)
		return rc;
	char *buf = strdup(path); /* what is left to walk; replaced at each link */
	if (!buf)
		return -ENOMEM;
	const char *p = buf;
	int hops = 0;
	while (rc == 0) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n > CVFS_NAME_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		char name[CVFS_NAME_MAX + 1];
		memcpy(name, p, n);
		name[n] = 0;
		p += n;
		int final = 1;
		for (const char *q = p; *q; q++)
			if (*q != '/')
				final = 0;
		if (!S_ISDIR(cur.mode)) {
			rc = -ENOTDIR;
			break;
		}
		struct cvfs_attr dir = cur;
		rc = lookup_noref(fs, dir.ino, name, &cur);
		if (rc || !S_ISLNK(cur.mode) || (final && !follow && !*p))
			continue;
		if (++hops > 40) {
			rc = -ELOOP;
			break;
		}
		char target[4097];
		ssize_t tl = cvfs_fs_readlink(fs, cur.ino, target, sizeof(target) - 1);
		if (tl < 0) {
			rc = (int)tl;
			break;
		}
		size_t rest = strlen(p);
		char *nb = malloc((size_t)tl + rest + 2);
		if (!nb) {
			rc = -ENOMEM;
			break;
		}
		memcpy(nb, target, (size_t)tl);
		nb[tl] = '/';
		memcpy(nb + tl + 1, p, rest + 1);
		if (!*p)
			nb[tl] = 0;
		free(buf);
		buf = nb;
		p = buf;
		if (target[0] == '/')
			rc = cvfs_fs_getattr(fs, CVFS_ROOT_INO, &cur);
		else
			cur = dir;
	}
	free(buf);
	if (rc == 0)
		*out = cur;
	return rc;
}

int cvfs_fs_resolve(struct cvfs_fs *fs, const char *path, int follow, struct cvfs_attr *out)
{
	return resolve(fs, path, follow, out);
}

int cvfs_fs_resolve_parent(struct cvfs_fs *fs, const char *path, uint64_t *parent, char *name)
{
	/* Resolve the directory part (following links), keep the last name. */
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t cut = len;
	while (cut > 0 && path[cut - 1] != '/')
		cut--;
	size_t nl = len - cut;
	if (nl == 0)
		return -EINVAL; /* the root has no parent entry */
	if (nl > CVFS_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, path + cut, nl);
	name[nl] = 0;
	if (is_dot(name, nl))
		return -EINVAL;
	char *dpath = strndup(path, cut);
	if (!dpath)
		return -ENOMEM;
	struct cvfs_attr d;
	int rc = resolve(fs, dpath, 1, &d);
	free(dpath);
	if (rc == 0 && !S_ISDIR(d.mode))
		rc = -ENOTDIR;
	if (rc == 0)
		*parent = d.ino;
	return rc;
}



void cvfs_fs_forget(struct cvfs_fs *fs, uint64_t ino, uint64_t nlookup)
{
	ref_put(fs, ino, nlookup, 0);
}

int cvfs_fs_getattr(struct cvfs_fs *fs, uint64_t ino, struct cvfs_attr *out)
{
	int rc;
	TXN(fs, 0, rc = fs->ops->inode_get(fs->st, ino, out));
	return rc;
}

static int set_size(struct cvfs_fs *fs, struct cvfs_attr *a, uint64_t size, int64_t now)
{
	if (S_ISDIR(a->mode))
		return -EISDIR;
	if (!S_ISREG(a->mode))
		return -EINVAL;
	if (size < a->size) {
		int rc = fs->ops->truncate(fs->st, a->ino, size);
		if (rc)
			return rc;
	}
	if (size != a->size) {
		a->size = size;
		touch_mc(a, now);
	}
	return 0;
}

int cvfs_fs_setattr(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t ino,
		    const struct cvfs_attr *in, int mask, struct cvfs_attr *out)
{
	RO_CHECK(fs);
	int rc = 0;
	if (fs->pol) {
		rc = pol_ino(fs, (mask & CVFS_SET_SIZE) ? CVFS_POL_WRITE : CVFS_POL_SETATTR, ino,
			     (mask & CVFS_SET_SIZE) ? S_IFREG : 0, cr);
		if (rc == 0 && (mask & CVFS_SET_SIZE))
			rc = pol_size(fs, ino, in->size, cr);
		if (rc)
			return rc;
	}
	char *qpath = (mask & CVFS_SET_SIZE) ? quota_path(fs, ino, NULL, 0) : NULL;
	int64_t held_b = 0, held_f = 0;
	TXN(fs, 1, {
		int64_t now = cvfs_now_ns();
		rc = fs->ops->inode_get(fs->st, ino, out);
		if (rc == 0 && (mask & CVFS_SET_SIZE) && S_ISREG(out->mode))
			rc = recharge(fs, &held_b, &held_f, (int64_t)in->size - (int64_t)out->size, 0,
				      qpath);
		if (rc == 0 && (mask & CVFS_SET_SIZE))
			rc = set_size(fs, out, in->size, now);
		if (rc == 0) {
			if (mask & CVFS_SET_MODE)
				out->mode = (out->mode & S_IFMT) | (in->mode & 07777);
			if (mask & CVFS_SET_UID)
				out->uid = in->uid;
			if (mask & CVFS_SET_GID)
				out->gid = in->gid;
			if (mask & CVFS_SET_ATIME_NOW)
				out->atime_ns = now;
			else if (mask & CVFS_SET_ATIME)
				out->atime_ns = in->atime_ns;
			if (mask & CVFS_SET_MTIME_NOW)
				out->mtime_ns = now;
			else if (mask & CVFS_SET_MTIME)
				out->mtime_ns = in->mtime_ns;
			if (mask & CVFS_SET_CTIME)
				out->ctime_ns = in->ctime_ns;
			else
				out->ctime_ns = now;
			rc = fs->ops->inode_put(fs->st, out);
		}
	});
	free(qpath);
	if (rc)
		refund(fs, held_b, held_f);
	return rc;
}

/* ---- making names ---- */

/* Inside a write transaction: create an inode named name in parent. */
static int make_node(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		     const char *name, size_t len, uint32_t mode, uint64_t rdev, const char *target,
		     struct cvfs_attr *out)
{
	struct cvfs_attr p;
	int rc = get_dir(fs, parent, &p);
	if (rc)
		return rc;
	if (p.nlink == 0)
		return -ENOENT; /* a removed directory */
	uint64_t ino;
	rc = fs->ops->dent_get(fs->st, parent, name, len, &ino);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	if (!S_ISREG(mode) && !S_ISDIR(mode) && !S_ISLNK(mode) &&
	    !(fs->st->caps & CVFS_CAP_SPECIAL))
		return -EPERM;
	rc = fs->ops->ino_alloc(fs->st, &ino);
	if (rc)
		return rc;
	int64_t now = cvfs_now_ns();
	memset(out, 0, sizeof(*out));
	out->ino = ino;
	out->mode = mode;
	out->uid = cr->uid;
	out->gid = cr->gid;
	if (p.mode & S_ISGID) {
		out->gid = p.gid;
		if (S_ISDIR(mode))
			out->mode |= S_ISGID;
	}
	out->nlink = S_ISDIR(mode) ? 2 : 1;
	out->parent = S_ISDIR(mode) ? parent : 0;
	out->rdev = rdev;
	out->generation = 1;
	out->atime_ns = out->mtime_ns = out->ctime_ns = out->btime_ns = now;
	if (target) {
		out->size = strlen(target);
		rc = fs->ops->inode_put(fs->st, out);
		if (rc == 0) {
			ssize_t w = fs->ops->write(fs->st, ino, target, out->size, 0);
			rc = w < 0 ? (int)w : 0;
		}
	} else {
		rc = fs->ops->inode_put(fs->st, out);
	}
	if (rc == 0)
		rc = fs->ops->dent_put(fs->st, parent, name, len, ino, mode & S_IFMT);
	if (rc == 0) {
		touch_mc(&p, now);
		if (S_ISDIR(mode))
			p.nlink++;
		rc = fs->ops->inode_put(fs->st, &p);
	}
	return rc;
}

static int new_name(struct cvfs_fs *fs, const char *name, size_t *len)
{
	RO_CHECK(fs);
	int rc = check_name(name, len);
	if (rc == 0 && is_dot(name, *len))
		rc = -EEXIST;
	return rc;
}

int cvfs_fs_mknod(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		  const char *name, uint32_t mode, uint64_t rdev, struct cvfs_attr *out)
{
	size_t len;
	int rc = new_name(fs, name, &len);
	if (rc)
		return rc;
	if (S_ISLNK(mode))
		return -EINVAL;
	if ((mode & S_IFMT) == 0)
		mode |= S_IFREG;
	rc = pol_at(fs, S_ISDIR(mode) ? CVFS_POL_MKDIR : CVFS_POL_CREATE, parent, name, len,
		    mode & S_IFMT, cr);
	if (rc == 0)
		rc = charge_at(fs, 0, parent, name, len, cr);
	if (rc)
		return rc;
	TXN(fs, 1, rc = make_node(fs, cr, parent, name, len, mode, rdev, NULL, out));
	if (rc) {
		refund(fs, 0, 1);
		return rc;
	}
	name_set(fs, out->ino, parent, name, len);
	return ref_get(fs, out->ino, 1, 0);
}

int cvfs_fs_symlink(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		    const char *name, const char *target, struct cvfs_attr *out)
{
	size_t len;
	int rc = new_name(fs, name, &len);
	if (rc)
		return rc;
	size_t tl = strlen(target);
	if (tl == 0)
		return -ENOENT;
	if (tl >= 4096)
		return -ENAMETOOLONG;
	rc = pol_at(fs, CVFS_POL_SYMLINK, parent, name, len, S_IFLNK, cr);
	if (rc == 0)
		rc = charge_at(fs, (int64_t)tl, parent, name, len, cr);
	if (rc)
		return rc;
	TXN(fs, 1, rc = make_node(fs, cr, parent, name, len, S_IFLNK | 0777, 0, target, out));
	if (rc) {
		refund(fs, (int64_t)tl, 1);
		return rc;
	}
	name_set(fs, out->ino, parent, name, len);
	return ref_get(fs, out->ino, 1, 0);
}

ssize_t cvfs_fs_readlink(struct cvfs_fs *fs, uint64_t ino, char *buf, size_t size)
{
	int rc;
	ssize_t n = 0;
	TXN(fs, 0, {
		struct cvfs_attr a;
		rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0 && !S_ISLNK(a.mode))
			rc = -EINVAL;
		if (rc == 0) {
			n = a.size < size ? (ssize_t)a.size : (ssize_t)size;
			ssize_t r = fs->ops->read(fs->st, ino, buf, (size_t)n, 0);
			if (r < 0)
				rc = (int)r;
		}
	});
	return rc ? rc : n;
}

int cvfs_fs_link(struct cvfs_fs *fs, uint64_t ino, uint64_t newparent, const char *newname,
		 struct cvfs_attr *out)
{
	size_t len;
	int rc = new_name(fs, newname, &len);
	if (rc)
		return rc;
	if (!(fs->st->caps & CVFS_CAP_HARDLINKS))
		return -EPERM;
	if (fs->pol) {
		struct cvfs_attr src;
		rc = cvfs_fs_getattr(fs, ino, &src);
		if (rc == 0)
			rc = pol_ino(fs, CVFS_POL_LOOKUP, ino, src.mode & S_IFMT, NULL);
		if (rc == 0)
			rc = pol_at(fs, CVFS_POL_LINK, newparent, newname, len, src.mode & S_IFMT,
				    NULL);
		if (rc)
			return rc;
	}
	TXN(fs, 1, {
		struct cvfs_attr p;
		uint64_t other;
		rc = get_dir(fs, newparent, &p);
		if (rc == 0 && p.nlink == 0)
			rc = -ENOENT;
		if (rc == 0)
			rc = fs->ops->inode_get(fs->st, ino, out);
		if (rc == 0 && S_ISDIR(out->mode))
			rc = -EPERM;
		if (rc == 0 && out->nlink == 0)
			rc = -ENOENT;
		if (rc == 0 && out->nlink >= 65000)
			rc = -EMLINK;
		if (rc == 0) {
			rc = fs->ops->dent_get(fs->st, newparent, newname, len, &other);
			rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
		}
		if (rc == 0)
			rc = fs->ops->dent_put(fs->st, newparent, newname, len, ino,
					       out->mode & S_IFMT);
		if (rc == 0) {
			int64_t now = cvfs_now_ns();
			out->nlink++;
			out->ctime_ns = now;
			rc = fs->ops->inode_put(fs->st, out);
			touch_mc(&p, now);
			if (rc == 0)
				rc = fs->ops->inode_put(fs->st, &p);
		}
	});
	if (rc == 0)
		rc = ref_get(fs, ino, 1, 0);
	return rc;
}

/* ---- removing names ---- */

static int dir_is_empty(struct cvfs_fs *fs, uint64_t ino);

static int remove_name(struct cvfs_fs *fs, uint64_t parent, const char *name, int dir)
{
	RO_CHECK(fs);
	size_t len;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	if (is_dot(name, len))
		return dir ? (len == 1 ? -EINVAL : -ENOTEMPTY) : -EISDIR;
	rc = pol_at(fs, CVFS_POL_REMOVE, parent, name, len, dir ? S_IFDIR : 0, NULL);
	if (rc)
		return rc;
	int64_t freed_b = 0, freed_f = 0;
	uint64_t gone = 0;
	TXN(fs, 1, {
		struct cvfs_attr p, a;
		uint64_t ino = 0;
		freed_b = freed_f = 0;
		gone = 0;
		rc = get_dir(fs, parent, &p);
		if (rc == 0)
			rc = fs->ops->dent_get(fs->st, parent, name, len, &ino);
		if (rc == 0)
			rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0) {
			if (dir && !S_ISDIR(a.mode))
				rc = -ENOTDIR;
			else if (!dir && S_ISDIR(a.mode))
				rc = -EISDIR;
		}
		if (rc == 0 && dir) {
			rc = dir_is_empty(fs, ino);
			rc = rc == 1 ? 0 : rc == 0 ? -ENOTEMPTY : rc;
		}
		if (rc == 0)
			rc = fs->ops->dent_del(fs->st, parent, name, len);
		if (rc == 0) {
			int64_t now = cvfs_now_ns();
			touch_mc(&p, now);
			if (dir)
				p.nlink--;
			rc = fs->ops->inode_put(fs->st, &p);
			a.ctime_ns = now;
			a.nlink = dir ? 0 : a.nlink - 1;
			if (rc == 0)
				rc = a.nlink ? fs->ops->inode_put(fs->st, &a) : drop_inode(fs, &a, 1);
			if (rc == 0 && a.nlink == 0) {
				freed_b = S_ISDIR(a.mode) ? 0 : (int64_t)a.size;
				freed_f = 1;
				gone = a.ino;
			}
		}
	});
	if (rc == 0 && gone) {
		refund(fs, freed_b, freed_f);
		name_drop(fs, gone);
	}
	return rc;
}

int cvfs_fs_unlink(struct cvfs_fs *fs, uint64_t parent, const char *name)
{
	return remove_name(fs, parent, name, 0);
}

int cvfs_fs_rmdir(struct cvfs_fs *fs, uint64_t parent, const char *name)
{
	return remove_name(fs, parent, name, 1);
}

static int stop_at_first(void *arg, const struct cvfs_dirent *e)
{
	(void)e;
	*(int *)arg = 1;
	return 1;
}

static int dir_is_empty(struct cvfs_fs *fs, uint64_t ino)
{
	if (fs->ops->dir_empty)
		return fs->ops->dir_empty(fs->st, ino);
	int any = 0;
	int rc = fs->ops->dir_list(fs->st, ino, 0, stop_at_first, &any);
	return rc ? rc : !any;
}

/* ---- rename ---- */

/* Is dir equal to anc or below it?  Walks up from dir. */
static int is_within(struct cvfs_fs *fs, uint64_t dir, uint64_t anc)
{
	for (int depth = 0; depth < 4096; depth++) {
		if (dir == anc)
			return 1;
		if (dir == CVFS_ROOT_INO)
			return 0;
		struct cvfs_attr a;
		int rc = fs->ops->inode_get(fs->st, dir, &a);
		if (rc)
			return rc;
		dir = a.parent;
	}
	return -ELOOP;
}

/* Move directory d (attr da) from parent op to parent np: link counts, "..". */
static void move_dir(struct cvfs_attr *da, struct cvfs_attr *op, struct cvfs_attr *np)
{
	if (op->ino == np->ino)
		return;
	da->parent = np->ino;
	op->nlink--;
	np->nlink++;
}

struct rn_out {
	uint64_t sino, dino, gone;
	int64_t freed_b;
};

static int do_rename(struct cvfs_fs *fs, uint64_t opar, const char *on, size_t ol, uint64_t npar,
		     const char *nn, size_t nl, unsigned flags, struct rn_out *ro)
{
	memset(ro, 0, sizeof(*ro));
	struct cvfs_attr op, np, sa, da;
	uint64_t sino, dino = 0;
	int rc = get_dir(fs, opar, &op);
	if (rc == 0)
		rc = opar == npar ? (np = op, 0) : get_dir(fs, npar, &np);
	if (rc == 0)
		rc = fs->ops->dent_get(fs->st, opar, on, ol, &sino);
	if (rc)
		return rc;
	rc = fs->ops->dent_get(fs->st, npar, nn, nl, &dino);
	int have_dst = rc == 0;
	if (rc && rc != -ENOENT)
		return rc;
	if (np.nlink == 0)
		return -ENOENT;
	if ((flags & RENAME_NOREPLACE) && have_dst)
		return -EEXIST;
	if ((flags & RENAME_EXCHANGE) && !have_dst)
		return -ENOENT;
	rc = fs->ops->inode_get(fs->st, sino, &sa);
	if (rc)
		return rc;
	ro->sino = sino;
	ro->dino = have_dst ? dino : 0;
	if (have_dst && dino == sino)
		return 0; /* two names of one file: nothing to do */
	if (have_dst && (rc = fs->ops->inode_get(fs->st, dino, &da)))
		return rc;
	/* A directory may not move into itself or below itself. */
	if (S_ISDIR(sa.mode) && opar != npar) {
		rc = is_within(fs, npar, sino);
		if (rc)
			return rc < 0 ? rc : -EINVAL;
	}
	if ((flags & RENAME_EXCHANGE) && S_ISDIR(da.mode) && opar != npar) {
		rc = is_within(fs, opar, dino);
		if (rc)
			return rc < 0 ? rc : -EINVAL;
	}
	int64_t now = cvfs_now_ns();
	if (flags & RENAME_EXCHANGE) {
		rc = fs->ops->dent_put(fs->st, opar, on, ol, dino, da.mode & S_IFMT);
		if (rc == 0)
			rc = fs->ops->dent_put(fs->st, npar, nn, nl, sino, sa.mode & S_IFMT);
		if (rc)
			return rc;
		if (S_ISDIR(sa.mode))
			move_dir(&sa, &op, &np);
		if (S_ISDIR(da.mode))
			move_dir(&da, &np, &op);
		sa.ctime_ns = da.ctime_ns = now;
		touch_mc(&op, now);
		touch_mc(&np, now);
		rc = fs->ops->inode_put(fs->st, &sa);
		if (rc == 0)
			rc = fs->ops->inode_put(fs->st, &da);
	} else {
		if (have_dst) {
			if (S_ISDIR(sa.mode) && !S_ISDIR(da.mode))
				return -ENOTDIR;
			if (!S_ISDIR(sa.mode) && S_ISDIR(da.mode))
				return -EISDIR;
			if (S_ISDIR(da.mode)) {
				rc = dir_is_empty(fs, dino);
				if (rc != 1)
					return rc < 0 ? rc : -ENOTEMPTY;
			}
		}
		rc = fs->ops->dent_put(fs->st, npar, nn, nl, sino, sa.mode & S_IFMT);
		if (rc == 0)
			rc = fs->ops->dent_del(fs->st, opar, on, ol);
		if (rc)
			return rc;
		if (S_ISDIR(sa.mode))
			move_dir(&sa, &op, &np);
		sa.ctime_ns = now;
		touch_mc(&op, now);
		touch_mc(&np, now);
		if (have_dst) {
			da.ctime_ns = now;
			if (S_ISDIR(da.mode)) {
				da.nlink = 0;
				/* the replaced directory's "..".  np is only a copy of
				 * op when both names are in one directory, and only op
				 * is written back then. */
				if (opar == npar)
					op.nlink--;
				else
					np.nlink--;
			} else {
				da.nlink--;
			}
		}
		rc = fs->ops->inode_put(fs->st, &sa);
		if (rc == 0 && have_dst)
			rc = da.nlink ? fs->ops->inode_put(fs->st, &da) : drop_inode(fs, &da, 0);
		if (rc == 0 && have_dst && da.nlink == 0) {
			ro->gone = da.ino;
			ro->freed_b = S_ISDIR(da.mode) ? 0 : (int64_t)da.size;
		}
	}
	if (rc == 0)
		rc = fs->ops->inode_put(fs->st, &op);
	if (rc == 0 && opar != npar)
		rc = fs->ops->inode_put(fs->st, &np);
	return rc;
}

int cvfs_fs_rename(struct cvfs_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		   const char *newname, unsigned flags)
{
	RO_CHECK(fs);
	size_t ol, nl;
	int rc = check_name(name, &ol);
	if (rc == 0)
		rc = check_name(newname, &nl);
	if (rc)
		return rc;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (is_dot(name, ol) || is_dot(newname, nl))
		return -EBUSY;
	if (fs->pol) {
		struct cvfs_attr sa, da;
		int have_dst;
		rc = lookup_noref(fs, parent, name, &sa);
		have_dst = lookup_noref(fs, newparent, newname, &da) == 0;
		if (rc == 0)
			rc = pol_at(fs, CVFS_POL_RENAME_FROM, parent, name, ol, sa.mode & S_IFMT, NULL);
		if (rc == 0)
			rc = pol_at(fs, CVFS_POL_RENAME_TO, newparent, newname, nl, sa.mode & S_IFMT,
				    NULL);
		if (rc == 0 && have_dst && (flags & RENAME_EXCHANGE)) {
			rc = pol_at(fs, CVFS_POL_RENAME_FROM, newparent, newname, nl,
				    da.mode & S_IFMT, NULL);
			if (rc == 0)
				rc = pol_at(fs, CVFS_POL_RENAME_TO, parent, name, ol, da.mode & S_IFMT,
					    NULL);
		}
		if (rc)
			return rc;
	}
	struct rn_out ro;
	TXN(fs, 1, rc = do_rename(fs, parent, name, ol, newparent, newname, nl, flags, &ro));
	if (rc == 0 && fs->pol) {
		if (ro.gone) {
			refund(fs, ro.freed_b, 1);
			name_drop(fs, ro.gone);
		}
		name_set(fs, ro.sino, newparent, newname, nl);
		if ((flags & RENAME_EXCHANGE) && ro.dino)
			name_set(fs, ro.dino, parent, name, ol);
	}
	return rc;
}

/* ---- files ---- */

static struct cvfs_handle *handle_new(struct cvfs_fs *fs, uint64_t ino, int flags)
{
	struct ohandle *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->h.ino = ino;
	o->h.flags = flags;
	pthread_mutex_lock(&fs->ref_lock);
	o->next = fs->open;
	if (fs->open)
		fs->open->prev = o;
	fs->open = o;
	pthread_mutex_unlock(&fs->ref_lock);
	return &o->h;
}

static void handle_free(struct cvfs_fs *fs, struct cvfs_handle *h)
{
	struct ohandle *o = (struct ohandle *)h;
	pthread_mutex_lock(&fs->ref_lock);
	if (o->prev)
		o->prev->next = o->next;
	else
		fs->open = o->next;
	if (o->next)
		o->next->prev = o->prev;
	pthread_mutex_unlock(&fs->ref_lock);
	free(h->path);
	free(o);
}

static int open_mode_ok(struct cvfs_fs *fs, const struct cvfs_attr *a, int flags)
{
	int acc = flags & O_ACCMODE;
	if (S_ISDIR(a->mode) && (acc != O_RDONLY || (flags & O_TRUNC)))
		return -EISDIR;
	if (fs->cfg.readonly && (acc != O_RDONLY || (flags & O_TRUNC)))
		return -EROFS;
	if (S_ISLNK(a->mode))
		return -ELOOP;
	return 0;
}

int cvfs_fs_create(struct cvfs_fs *fs, const struct cvfs_cred *cr, uint64_t parent,
		   const char *name, uint32_t mode, int flags, struct cvfs_attr *out,
		   struct cvfs_handle **fh)
{
	size_t len;
	int rc = new_name(fs, name, &len);
	if (rc)
		return rc;
	mode = S_IFREG | (mode & 07777);
	rc = pol_at(fs, CVFS_POL_CREATE, parent, name, len, S_IFREG, cr);
	if (rc == 0)
		rc = charge_at(fs, 0, parent, name, len, cr);
	if (rc)
		return rc;
	int made = 0;
	uint64_t cut = 0; /* bytes an O_TRUNC of an existing file dropped */
	TXN(fs, 1, {
		cut = 0;
		rc = make_node(fs, cr, parent, name, len, mode, 0, NULL, out);
		made = rc == 0;
		if (rc == -EEXIST && !(flags & O_EXCL)) {
			uint64_t ino;
			rc = fs->ops->dent_get(fs->st, parent, name, len, &ino);
			if (rc == 0)
				rc = fs->ops->inode_get(fs->st, ino, out);
			if (rc == 0)
				rc = open_mode_ok(fs, out, flags);
			if (rc == 0 && (flags & O_TRUNC) && S_ISREG(out->mode)) {
				/* POSIX: O_TRUNC marks mtime and ctime, also of an
				 * already empty file. */
				int64_t now = cvfs_now_ns();
				cut = out->size;
				rc = set_size(fs, out, 0, now);
				touch_mc(out, now);
				if (rc == 0)
					rc = fs->ops->inode_put(fs->st, out);
			}
		}
	});
	if (!made)
		refund(fs, (int64_t)cut, 1);
	if (rc)
		return rc;
	name_set(fs, out->ino, parent, name, len);
	if (fs->ops->open && (rc = fs->ops->open(fs->st, out->ino, flags)))
		return rc;
	*fh = handle_new(fs, out->ino, flags);
	if (!*fh)
		return -ENOMEM;
	rc = ref_get(fs, out->ino, 1, 1);
	if (rc) {
		handle_free(fs, *fh);
		*fh = NULL;
	}
	return rc;
}

/* A new handle on ino that holds a reference on it. */
static int handle_open(struct cvfs_fs *fs, uint64_t ino, int flags, struct cvfs_handle **fh)
{
	*fh = handle_new(fs, ino, flags);
	if (!*fh)
		return -ENOMEM;
	int rc = ref_get(fs, ino, 0, 1);
	if (rc) {
		handle_free(fs, *fh);
		*fh = NULL;
	}
	return rc;
}

int cvfs_fs_open(struct cvfs_fs *fs, uint64_t ino, int flags, struct cvfs_handle **fh)
{
	int rc = 0;
	int trunc = (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY;
	if (fs->pol)
		rc = pol_ino(fs, trunc ? CVFS_POL_WRITE : CVFS_POL_OPEN, ino, S_IFREG, NULL);
	if (rc)
		return rc;
	uint64_t cut = 0;
	/* readonly: open_mode_ok refuses, from a read transaction */
	TXN(fs, trunc && !fs->cfg.readonly, {
		struct cvfs_attr a;
		cut = 0;
		rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0)
			rc = open_mode_ok(fs, &a, flags);
		if (rc == 0 && trunc && S_ISREG(a.mode)) {
			/* POSIX: O_TRUNC marks mtime and ctime, also of an already
			 * empty file. */
			int64_t now = cvfs_now_ns();
			cut = a.size;
			rc = set_size(fs, &a, 0, now);
			touch_mc(&a, now);
			if (rc == 0)
				rc = fs->ops->inode_put(fs->st, &a);
		}
	});
	if (rc)
		return rc;
	refund(fs, (int64_t)cut, 0);
	if (fs->ops->open && (rc = fs->ops->open(fs->st, ino, flags)))
		return rc;
	return handle_open(fs, ino, flags, fh);
}

int cvfs_fs_read_iov(struct cvfs_fs *fs, struct cvfs_handle *fh, size_t size, uint64_t off,
		     int (*emit)(void *arg, const struct iovec *iov, int n), void *arg, int *sent)
{
	*sent = 0;
	if (!fs->ops->read_iov)
		return -ENOSYS;
	int rc, res = 0;
	TXN(fs, 0, {
		if (!*sent) {
			struct cvfs_attr a;
			rc = fs->ops->inode_get(fs->st, fh->ino, &a);
			if (rc == 0 && S_ISDIR(a.mode))
				rc = -EISDIR;
			if (rc == 0) {
				size_t want = off < a.size ? (a.size - off < size ? (size_t)(a.size - off)
										    : size)
							   : 0;
				*sent = 1; /* emit answers the request, whatever it returns */
				res = want ? fs->ops->read_iov(fs->st, fh->ino, off, want, emit, arg)
					   : emit(arg, NULL, 0);
				rc = res < 0 ? res : (int)want;
			}
		}
	});
	return *sent ? res : rc;
}

ssize_t cvfs_fs_read(struct cvfs_fs *fs, struct cvfs_handle *fh, void *buf, size_t size,
		     uint64_t off)
{
	int rc;
	ssize_t n = 0;
	TXN(fs, 0, {
		struct cvfs_attr a;
		rc = fs->ops->inode_get(fs->st, fh->ino, &a);
		if (rc == 0 && S_ISDIR(a.mode))
			rc = -EISDIR;
		n = 0;
		if (rc == 0 && off < a.size) {
			size_t want = a.size - off < size ? (size_t)(a.size - off) : size;
			n = fs->ops->read(fs->st, fh->ino, buf, want, off);
			if (n < 0)
				rc = (int)n;
		}
	});
	return rc ? rc : n;
}

ssize_t cvfs_fs_write(struct cvfs_fs *fs, struct cvfs_handle *fh, const void *buf, size_t size,
		      uint64_t off, int append)
{
	RO_CHECK(fs);
	int rc;
	ssize_t n = 0;
	if (!append && off + size < off)
		return -EFBIG;
	if (fs->pol && !fh->path) {
		/* Checked once per handle; the path is kept for the size rule. */
		fh->path = path_of(fs, fh->ino);
		rc = fh->path ? cvfs_policy_check(fs->pol, CVFS_POL_WRITE, fh->path, S_IFREG, NULL)
			      : -EACCES;
		if (rc) {
			free(fh->path);
			fh->path = NULL;
			return rc;
		}
	}
	int64_t held_b = 0, held_f = 0;
	TXN(fs, 1, {
		struct cvfs_attr a;
		rc = fs->ops->inode_get(fs->st, fh->ino, &a);
		if (rc == 0 && !S_ISREG(a.mode))
			rc = S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
		uint64_t at = append ? a.size : off;
		if (rc == 0 && fs->pol && at + size > a.size) {
			rc = cvfs_policy_check_size(fs->pol, fh->path, at + size, NULL);
			if (rc == 0)
				rc = recharge(fs, &held_b, &held_f, (int64_t)(at + size - a.size), 0,
					      fh->path);
		}
		if (rc == 0 && size) {
			n = fs->ops->write(fs->st, fh->ino, buf, size, at);
			if (n < 0)
				rc = (int)n;
		}
		if (rc == 0 && n > 0) { /* POSIX: a 0-byte write changes nothing */
			if (at + (uint64_t)n > a.size)
				a.size = at + (uint64_t)n;
			touch_mc(&a, cvfs_now_ns());
			rc = fs->ops->inode_put(fs->st, &a);
		}
	});
	if (rc)
		refund(fs, held_b, held_f);
	return rc ? rc : n;
}

int cvfs_fs_fsync(struct cvfs_fs *fs, struct cvfs_handle *fh, int datasync)
{
	if (!fs->ops->sync)
		return 0;
	return fs->ops->sync(fs->st, fh ? fh->ino : 0, datasync);
}

int cvfs_fs_flush(struct cvfs_fs *fs, struct cvfs_handle *fh)
{
	return fs->ops->flush ? fs->ops->flush(fs->st, fh->ino) : 0;
}

static void release(struct cvfs_fs *fs, struct cvfs_handle *fh, int file)
{
	if (!fh)
		return;
	if (file && fs->ops->release)
		fs->ops->release(fs->st, fh->ino);
	ref_put(fs, fh->ino, 0, 1);
	handle_free(fs, fh);
}

void cvfs_fs_release(struct cvfs_fs *fs, struct cvfs_handle *fh)
{
	release(fs, fh, 1);
}

int cvfs_fs_fallocate(struct cvfs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	RO_CHECK(fs);
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (off + len < off)
		return -EFBIG;
	int rc = pol_ino(fs, CVFS_POL_WRITE, ino, S_IFREG, NULL);
	if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE))
		rc = pol_size(fs, ino, off + len, NULL);
	if (rc)
		return rc;
	char *qpath = (mode & FALLOC_FL_KEEP_SIZE) ? NULL : quota_path(fs, ino, NULL, 0);
	int64_t held_b = 0, held_f = 0;
	TXN(fs, 1, {
		struct cvfs_attr a;
		rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0 && !S_ISREG(a.mode))
			rc = S_ISDIR(a.mode) ? -EISDIR : -ENODEV;
		if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && off + len > a.size)
			rc = recharge(fs, &held_b, &held_f, (int64_t)(off + len - a.size), 0, qpath);
		if (rc == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) &&
		    off < a.size) {
			uint64_t n = off + len > a.size ? a.size - off : len;
			if (fs->ops->punch) {
				rc = fs->ops->punch(fs->st, ino, off, n);
			} else {
				static const char zeros[65536];
				for (uint64_t done = 0; rc == 0 && done < n;) {
					size_t k = n - done < sizeof(zeros) ? (size_t)(n - done)
									    : sizeof(zeros);
					ssize_t w = fs->ops->write(fs->st, ino, zeros, k, off + done);
					rc = w < 0 ? (int)w : 0;
					done += k;
				}
			}
		}
		int64_t now = cvfs_now_ns();
		if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && off + len > a.size) {
			a.size = off + len;
			touch_mc(&a, now);
		} else if (rc == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
			touch_mc(&a, now);
		}
		if (rc == 0)
			rc = fs->ops->inode_put(fs->st, &a);
	});
	free(qpath);
	if (rc)
		refund(fs, held_b, held_f);
	return rc;
}

/* ---- directories ---- */

int cvfs_fs_opendir(struct cvfs_fs *fs, uint64_t ino, struct cvfs_handle **fh)
{
	int rc;
	TXN(fs, 0, {
		struct cvfs_attr a;
		rc = get_dir(fs, ino, &a);
	});
	if (rc)
		return rc;
	return handle_open(fs, ino, O_RDONLY | O_DIRECTORY, fh);
}

void cvfs_fs_releasedir(struct cvfs_fs *fs, struct cvfs_handle *fh)
{
	release(fs, fh, 0);
}

struct rd_ctx {
	struct cvfs_fs *fs;
	int plus;
	cvfs_fill_fn cb;
	void *arg;
	int err;
	uint64_t *taken; /* inodes handed out in plus mode */
	size_t ntaken, captaken;
	const char *dpath; /* with a policy: the directory's path */
	uint64_t dir;
};

/* With a policy: may this entry be shown?  (Pure: no store access.) */
static int rd_visible(struct rd_ctx *c, const struct cvfs_dirent *e)
{
	if (!c->fs->pol)
		return 1;
	size_t dl = strlen(c->dpath);
	char *path = malloc(dl + e->namelen + 2);
	if (!path)
		return 0;
	memcpy(path, c->dpath, dl);
	size_t k = dl == 1 ? 1 : dl + 1;
	path[k - 1] = '/';
	memcpy(path + k, e->name, e->namelen);
	path[k + e->namelen] = 0;
	int ok = cvfs_policy_check(c->fs->pol, CVFS_POL_LIST, path, e->type, NULL) == 0;
	free(path);
	return ok;
}

static int rd_one(void *arg, const struct cvfs_dirent *e)
{
	struct rd_ctx *c = arg;
	struct cvfs_attr a;
	if (!rd_visible(c, e))
		return 0;
	if (c->plus) {
		int rc = c->fs->ops->inode_get(c->fs->st, e->ino, &a);
		if (rc) {
			if (rc == -ENOENT)
				return 0; /* removed meanwhile (shared stores) */
			c->err = rc;
			return 1;
		}
		if (c->ntaken == c->captaken) {
			size_t nc = c->captaken ? c->captaken * 2 : 64;
			uint64_t *t = realloc(c->taken, nc * sizeof(*t));
			if (!t) {
				c->err = -ENOMEM;
				return 1;
			}
			c->taken = t;
			c->captaken = nc;
		}
	} else {
		memset(&a, 0, sizeof(a));
		a.ino = e->ino;
		a.mode = e->type;
	}
	if (c->cb(c->arg, e->name, e->namelen, &a, e->cookie + 2))
		return 1;
	if (c->plus) {
		c->taken[c->ntaken++] = e->ino;
		name_set(c->fs, e->ino, c->dir, e->name, e->namelen);
	}
	return 0;
}

int cvfs_fs_readdir(struct cvfs_fs *fs, uint64_t ino, uint64_t off, int plus, cvfs_fill_fn cb,
		    void *arg)
{
	int rc;
	struct rd_ctx c = {.fs = fs, .plus = plus, .cb = cb, .arg = arg, .dir = ino};
	char *dpath = NULL;
	if (fs->pol) {
		dpath = path_of(fs, ino);
		if (!dpath)
			return -EACCES;
		c.dpath = dpath;
	}
	TXN(fs, 0, {
		struct cvfs_attr d, pa;
		c.ntaken = 0;
		c.err = 0;
		rc = get_dir(fs, ino, &d);
		int full = 0;
		if (rc == 0 && off == 0) {
			full = cb(arg, ".", 1, &d, 1);
			off = full ? 0 : 1;
		}
		if (rc == 0 && !full && off == 1) {
			uint64_t pino = d.parent ? d.parent : CVFS_ROOT_INO;
			if (pino == ino)
				pa = d;
			else if (plus)
				rc = fs->ops->inode_get(fs->st, pino, &pa);
			else {
				memset(&pa, 0, sizeof(pa));
				pa.ino = pino;
				pa.mode = S_IFDIR;
			}
			if (rc == 0) {
				full = cb(arg, "..", 2, &pa, 2);
				off = full ? 1 : 2;
			}
		}
		if (rc == 0 && !full && off >= 2) {
			rc = fs->ops->dir_list(fs->st, ino, off - 2, rd_one, &c);
			if (rc == 0)
				rc = c.err;
		}
	});
	if (rc == 0) {
		for (size_t i = 0; i < c.ntaken; i++)
			ref_get(fs, c.taken[i], 1, 0);
	}
	free(c.taken);
	free(dpath);
	return rc;
}

/* ---- the rest ---- */

int cvfs_fs_statfs(struct cvfs_fs *fs, struct cvfs_statfs *out)
{
	memset(out, 0, sizeof(*out));
	int rc = 0;
	if (fs->ops->statfs) {
		rc = fs->ops->statfs(fs->st, out);
	} else {
		out->bsize = 4096;
		out->blocks = out->bfree = out->bavail = 1ull << 30;
		out->files = out->ffree = 1ull << 30;
	}
	if (rc == 0 && fs->pol)
		cvfs_policy_statfs(fs->pol, out);
	return rc;
}

static int xattr_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255)
		return n ? -ERANGE : -EINVAL;
	/* ACLs and other system.* names need kernel support we do not claim. */
	if (strncmp(name, "system.", 7) == 0)
		return -EOPNOTSUPP;
	return 0;
}

ssize_t cvfs_fs_getxattr(struct cvfs_fs *fs, uint64_t ino, const char *name, void *val,
			 size_t size)
{
	if (!fs->ops->getx)
		return -EOPNOTSUPP;
	int rc = xattr_name_ok(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	ssize_t n = 0;
	TXN(fs, 0, {
		n = fs->ops->getx(fs->st, ino, name, val, size);
		rc = n < 0 ? (int)n : 0;
	});
	return rc ? rc : n;
}

int cvfs_fs_setxattr(struct cvfs_fs *fs, uint64_t ino, const char *name, const void *val,
		     size_t size, int flags)
{
	RO_CHECK(fs);
	if (!fs->ops->setx)
		return -EOPNOTSUPP;
	int rc = xattr_name_ok(name);
	if (rc)
		return rc;
	if (size > 65536)
		return -E2BIG;
	rc = pol_ino(fs, CVFS_POL_XATTR, ino, 0, NULL);
	if (rc)
		return rc;
	TXN(fs, 1, {
		struct cvfs_attr a;
		rc = fs->ops->setx(fs->st, ino, name, val, size, flags);
		if (rc == 0)
			rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0) {
			a.ctime_ns = cvfs_now_ns();
			rc = fs->ops->inode_put(fs->st, &a);
		}
	});
	return rc;
}

ssize_t cvfs_fs_listxattr(struct cvfs_fs *fs, uint64_t ino, char *list, size_t size)
{
	if (!fs->ops->listx)
		return 0;
	int rc;
	ssize_t n = 0;
	TXN(fs, 0, {
		n = fs->ops->listx(fs->st, ino, list, size);
		rc = n < 0 ? (int)n : 0;
	});
	return rc ? rc : n;
}

int cvfs_fs_removexattr(struct cvfs_fs *fs, uint64_t ino, const char *name)
{
	RO_CHECK(fs);
	if (!fs->ops->removex)
		return -EOPNOTSUPP;
	int rc = xattr_name_ok(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	rc = pol_ino(fs, CVFS_POL_XATTR, ino, 0, NULL);
	if (rc)
		return rc;
	TXN(fs, 1, {
		struct cvfs_attr a;
		rc = fs->ops->removex(fs->st, ino, name);
		if (rc == 0)
			rc = fs->ops->inode_get(fs->st, ino, &a);
		if (rc == 0) {
			a.ctime_ns = cvfs_now_ns();
			rc = fs->ops->inode_put(fs->st, &a);
		}
	});
	return rc;
}
