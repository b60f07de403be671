/*
 * The public path-level API (include/cvfs/cvfs.h) over the core's inode-level
 * calls.  Each call that changes something tells the mount (if any) which
 * names and inodes to drop from the kernel's caches before it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/policy.h"
#include "cvfs/cvfs.h"
#include "mount/mount.h"

#ifndef CVFS_VERSION
#define CVFS_VERSION "0.0.0"
#endif

struct cvfs_file {
	struct cvfs_fs *fs;
	struct cvfs_handle *h;
	uint64_t pos;
	int flags;
};

struct cvfs_mounted {
	struct cvfs_mount *m;
	pthread_t thread;
	int rc;
};

const char *cvfs_version(void)
{
	return CVFS_VERSION;
}

void cvfs_free(void *p)
{
	free(p);
}

static void cred(struct cvfs_cred *c)
{
	c->uid = getuid();
	c->gid = getgid();
	c->pid = getpid();
	c->umask = 0;
}

int cvfs_open(const char *store, const char *const *options, cvfs_fs **out, char **errmsg)
{
	*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	size_t n = 0;
	while (options && options[n])
		n++;
	struct cvfs_opt *opts = calloc(n + 1, sizeof(*opts));
	char **keys = calloc(n + 1, sizeof(*keys));
	if (!opts || !keys) {
		free(opts);
		free(keys);
		return -ENOMEM;
	}
	struct cvfs_fs_config cfg = {.root_uid = getuid(), .root_gid = getgid(), .umask = 022};
	int rc = 0;
	/* policy.KEY=VALUE options build the security policy: profile and
	 * config first, then the rest in order (see src/core/policy.h). */
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (strncmp(options[i], "policy.", 7) != 0)
				continue;
			const char *kv = options[i] + 7, *eq = strchr(kv, '=');
			if (!eq) {
				rc = -EINVAL;
				if (errmsg && asprintf(errmsg, "option '%s' is not key=value", options[i]) < 0)
					*errmsg = NULL;
				break;
			}
			char key[64];
			size_t kl = (size_t)(eq - kv);
			if (kl >= sizeof(key)) {
				rc = -EINVAL;
				break;
			}
			memcpy(key, kv, kl);
			key[kl] = 0;
			int first = strcmp(key, "profile") == 0 || strcmp(key, "config") == 0;
			if (first != (pass == 0))
				continue;
			if (!cfg.policy && (rc = cvfs_policy_new(&cfg.policy)))
				break;
			if (strcmp(key, "profile") == 0)
				rc = cvfs_policy_profile(cfg.policy, eq + 1, errmsg);
			else if (strcmp(key, "config") == 0)
				rc = cvfs_policy_load(cfg.policy, eq + 1, errmsg);
			else
				rc = cvfs_policy_set(cfg.policy, key, eq + 1, errmsg);
		}
	}
	size_t no = 0; /* store options kept (policy.* are not the store's) */
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (strncmp(options[i], "policy.", 7) == 0)
			continue;
		const char *eq = strchr(options[i], '=');
		if (!eq) {
			if (errmsg && asprintf(errmsg, "option '%s' is not key=value", options[i]) < 0)
				*errmsg = NULL;
			rc = -EINVAL;
			break;
		}
		keys[no] = strndup(options[i], (size_t)(eq - options[i]));
		if (!keys[no]) {
			rc = -ENOMEM;
			break;
		}
		opts[no].key = keys[no];
		opts[no].value = eq + 1;
		no++;
		if (strcmp(keys[no - 1], "readonly") == 0)
			cfg.readonly = strcmp(eq + 1, "0") != 0;
		if (strcmp(keys[no - 1], "umask") == 0) {
			char *end;
			unsigned long u = strtoul(eq + 1, &end, 8);
			if (*end || end == eq + 1 || u > 0777) {
				if (errmsg && asprintf(errmsg, "bad umask '%s'", eq + 1) < 0)
					*errmsg = NULL;
				rc = -EINVAL;
			}
			cfg.umask = (uint32_t)u;
		}
	}
	struct cvfs_store *st = NULL;
	if (rc == 0)
		rc = cvfs_store_open(store, opts, no, &st, errmsg);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(opts);
	if (rc) {
		cvfs_policy_free(cfg.policy);
		return rc;
	}
	rc = cvfs_fs_new(st, &cfg, out); /* takes the policy */
	if (rc && errmsg && !*errmsg &&
	    asprintf(errmsg, "cannot start the filesystem: %s", strerror(-rc)) < 0)
		*errmsg = NULL;
	return rc;
}

void cvfs_close(cvfs_fs *fs)
{
	cvfs_fs_free(fs);
}

/* ---- helpers ---- */

static int parent_of(cvfs_fs *fs, const char *path, uint64_t *parent, char *name)
{
	return cvfs_fs_resolve_parent(fs, path, parent, name);
}

/* A created name: the kernel may hold a negative entry and the parent's
 * attributes. */
static void created(cvfs_fs *fs, uint64_t parent, const char *name, uint64_t ino)
{
	cvfs_fs_changed(fs, parent, parent, name);
	(void)ino;
}

static mode_t masked(cvfs_fs *fs, mode_t mode)
{
	return mode & ~(mode_t)cvfs_fs_umask(fs) & 07777;
}

/* ---- namespace ---- */

static int mkdir_one(cvfs_fs *fs, const char *path, mode_t mode)
{
	uint64_t parent;
	char name[CVFS_NAME_MAX + 1];
	int rc = parent_of(fs, path, &parent, name);
	if (rc)
		return rc;
	struct cvfs_cred c;
	cred(&c);
	struct cvfs_attr a;
	rc = cvfs_fs_mknod(fs, &c, parent, name, S_IFDIR | masked(fs, mode), 0, &a);
	if (rc)
		return rc;
	cvfs_fs_forget(fs, a.ino, 1);
	created(fs, parent, name, a.ino);
	return 0;
}

static int is_root(const char *p)
{
	while (*p == '/')
		p++;
	return *p == 0;
}

int cvfs_mkdir(cvfs_fs *fs, const char *path, mode_t mode, int parents)
{
	if (is_root(path))
		return parents ? 0 : -EEXIST;
	if (!parents)
		return mkdir_one(fs, path, mode);
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	int rc = 0;
	size_t len = strlen(p);
	for (size_t i = 1; i <= len && rc == 0; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		if (p[i - 1] == '/')
			continue;
		char save = p[i];
		p[i] = 0;
		struct cvfs_attr a;
		rc = cvfs_fs_resolve(fs, p, 1, &a);
		if (rc == 0 && !S_ISDIR(a.mode))
			rc = -ENOTDIR;
		else if (rc == -ENOENT)
			rc = mkdir_one(fs, p, mode);
		if (rc == -EEXIST) /* made meanwhile by someone else */
			rc = 0;
		p[i] = save;
	}
	free(p);
	return rc;
}

int cvfs_stat(cvfs_fs *fs, const char *path, struct stat *st)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 1, &a);
	if (rc == 0)
		cvfs_attr_to_stat(&a, st);
	return rc;
}

int cvfs_lstat(cvfs_fs *fs, const char *path, struct stat *st)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 0, &a);
	if (rc == 0)
		cvfs_attr_to_stat(&a, st);
	return rc;
}

struct ls_ent {
	char *name;
	struct stat st;
};

struct ls_ctx {
	struct ls_ent *v;
	size_t n, cap;
	uint64_t next;
	int err;
};

static int ls_take(void *arg, const char *name, size_t len, const struct cvfs_attr *a,
		   uint64_t next)
{
	struct ls_ctx *c = arg;
	c->next = next;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct ls_ent *v = realloc(c->v, nc * sizeof(*v));
		if (!v) {
			c->err = -ENOMEM;
			return 1;
		}
		c->v = v;
		c->cap = nc;
	}
	c->v[c->n].name = strndup(name, len);
	if (!c->v[c->n].name) {
		c->err = -ENOMEM;
		return 1;
	}
	cvfs_attr_to_stat(a, &c->v[c->n].st);
	c->n++;
	return 0;
}

/* Lists a directory (by inode) into c; the caller frees c->v. */
static int list_dir(cvfs_fs *fs, uint64_t ino, struct ls_ctx *c)
{
	memset(c, 0, sizeof(*c));
	/* Plus mode gives attributes and counts a reference per entry: drop
	 * them, the kernel is not holding these. */
	int rc = cvfs_fs_readdir(fs, ino, 0, 1, ls_take, c);
	for (size_t i = 0; i < c->n; i++)
		cvfs_fs_forget(fs, c->v[i].st.st_ino, 1);
	return rc ? rc : c->err;
}

static void list_free(struct ls_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
}

int cvfs_ls(cvfs_fs *fs, const char *path, cvfs_ls_fn fn, void *arg)
{
	struct cvfs_attr d;
	int rc = cvfs_fs_resolve(fs, path, 1, &d);
	if (rc)
		return rc;
	if (!S_ISDIR(d.mode))
		return -ENOTDIR;
	struct ls_ctx c;
	rc = list_dir(fs, d.ino, &c);
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		if (fn(arg, c.v[i].name, &c.v[i].st))
			break;
	list_free(&c);
	return rc;
}

int cvfs_rename(cvfs_fs *fs, const char *from, const char *to, unsigned flags)
{
	uint64_t op, np;
	char on[CVFS_NAME_MAX + 1], nn[CVFS_NAME_MAX + 1];
	int rc = parent_of(fs, from, &op, on);
	if (rc == 0)
		rc = parent_of(fs, to, &np, nn);
	if (rc)
		return rc;
	struct cvfs_attr src, dst;
	int had_dst = cvfs_fs_resolve(fs, to, 0, &dst) == 0;
	rc = cvfs_fs_resolve(fs, from, 0, &src);
	if (rc == 0)
		rc = cvfs_fs_rename(fs, op, on, np, nn, flags);
	if (rc)
		return rc;
	cvfs_fs_changed(fs, src.ino, op, on);
	cvfs_fs_changed(fs, np, np, nn);
	if (op != np)
		cvfs_fs_changed(fs, op, 0, NULL);
	if (had_dst)
		cvfs_fs_changed(fs, dst.ino, 0, NULL);
	return 0;
}

static int remove_at(cvfs_fs *fs, uint64_t parent, const char *name, int recursive)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_lookup(fs, parent, name, &a);
	if (rc)
		return rc;
	cvfs_fs_forget(fs, a.ino, 1);
	if (S_ISDIR(a.mode)) {
		if (recursive) {
			struct ls_ctx c;
			rc = list_dir(fs, a.ino, &c);
			for (size_t i = 0; rc == 0 && i < c.n; i++)
				rc = remove_at(fs, a.ino, c.v[i].name, 1);
			list_free(&c);
		}
		if (rc == 0)
			rc = cvfs_fs_rmdir(fs, parent, name);
	} else {
		rc = cvfs_fs_unlink(fs, parent, name);
	}
	if (rc == 0)
		cvfs_fs_changed(fs, a.ino, parent, name);
	return rc;
}

int cvfs_remove(cvfs_fs *fs, const char *path, int recursive)
{
	if (is_root(path))
		return -EBUSY;
	uint64_t parent;
	char name[CVFS_NAME_MAX + 1];
	int rc = parent_of(fs, path, &parent, name);
	if (rc)
		return rc;
	rc = remove_at(fs, parent, name, recursive);
	if (rc == 0)
		cvfs_fs_changed(fs, parent, 0, NULL);
	return rc;
}

int cvfs_symlink(cvfs_fs *fs, const char *target, const char *linkpath)
{
	uint64_t parent;
	char name[CVFS_NAME_MAX + 1];
	int rc = parent_of(fs, linkpath, &parent, name);
	if (rc)
		return rc;
	struct cvfs_cred c;
	cred(&c);
	struct cvfs_attr a;
	rc = cvfs_fs_symlink(fs, &c, parent, name, target, &a);
	if (rc)
		return rc;
	cvfs_fs_forget(fs, a.ino, 1);
	created(fs, parent, name, a.ino);
	return 0;
}

ssize_t cvfs_readlink(cvfs_fs *fs, const char *path, char *buf, size_t size)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 0, &a);
	if (rc)
		return rc;
	return cvfs_fs_readlink(fs, a.ino, buf, size);
}

int cvfs_link(cvfs_fs *fs, const char *from, const char *to)
{
	struct cvfs_attr a;
	uint64_t parent;
	char name[CVFS_NAME_MAX + 1];
	int rc = cvfs_fs_resolve(fs, from, 0, &a);
	if (rc == 0)
		rc = parent_of(fs, to, &parent, name);
	if (rc == 0)
		rc = cvfs_fs_link(fs, a.ino, parent, name, &a);
	if (rc)
		return rc;
	cvfs_fs_forget(fs, a.ino, 1);
	cvfs_fs_changed(fs, a.ino, parent, name);
	cvfs_fs_changed(fs, parent, 0, NULL);
	return 0;
}

static int setattr_path(cvfs_fs *fs, const char *path, int follow, const struct cvfs_attr *in,
			int mask)
{
	struct cvfs_attr a, out;
	int rc = cvfs_fs_resolve(fs, path, follow, &a);
	if (rc)
		return rc;
	struct cvfs_cred c;
	cred(&c);
	rc = cvfs_fs_setattr(fs, &c, a.ino, in, mask, &out);
	if (rc == 0)
		cvfs_fs_changed(fs, a.ino, 0, NULL);
	return rc;
}

int cvfs_chmod(cvfs_fs *fs, const char *path, mode_t mode)
{
	struct cvfs_attr in = {.mode = mode & 07777};
	return setattr_path(fs, path, 1, &in, CVFS_SET_MODE);
}

int cvfs_chown(cvfs_fs *fs, const char *path, uid_t uid, gid_t gid)
{
	struct cvfs_attr in = {.uid = uid, .gid = gid};
	int mask = (uid != (uid_t)-1 ? CVFS_SET_UID : 0) | (gid != (gid_t)-1 ? CVFS_SET_GID : 0);
	return setattr_path(fs, path, 1, &in, mask);
}

int cvfs_utimens(cvfs_fs *fs, const char *path, const struct timespec times[2])
{
	struct cvfs_attr in;
	memset(&in, 0, sizeof(in));
	int mask = 0;
	if (!times) {
		mask = CVFS_SET_ATIME_NOW | CVFS_SET_MTIME_NOW;
	} else {
		if (times[0].tv_nsec == UTIME_NOW)
			mask |= CVFS_SET_ATIME_NOW;
		else if (times[0].tv_nsec != UTIME_OMIT) {
			mask |= CVFS_SET_ATIME;
			in.atime_ns = (int64_t)times[0].tv_sec * 1000000000 + times[0].tv_nsec;
		}
		if (times[1].tv_nsec == UTIME_NOW)
			mask |= CVFS_SET_MTIME_NOW;
		else if (times[1].tv_nsec != UTIME_OMIT) {
			mask |= CVFS_SET_MTIME;
			in.mtime_ns = (int64_t)times[1].tv_sec * 1000000000 + times[1].tv_nsec;
		}
	}
	return setattr_path(fs, path, 1, &in, mask);
}

int cvfs_truncate(cvfs_fs *fs, const char *path, uint64_t size)
{
	struct cvfs_attr in = {.size = size};
	return setattr_path(fs, path, 1, &in, CVFS_SET_SIZE | CVFS_SET_MTIME_NOW);
}

ssize_t cvfs_getxattr(cvfs_fs *fs, const char *path, const char *name, void *val, size_t size)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 1, &a);
	return rc ? rc : cvfs_fs_getxattr(fs, a.ino, name, val, size);
}

int cvfs_setxattr(cvfs_fs *fs, const char *path, const char *name, const void *val, size_t size,
		  int flags)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 1, &a);
	if (rc == 0)
		rc = cvfs_fs_setxattr(fs, a.ino, name, val, size, flags);
	if (rc == 0)
		cvfs_fs_changed(fs, a.ino, 0, NULL);
	return rc;
}

ssize_t cvfs_listxattr(cvfs_fs *fs, const char *path, char *list, size_t size)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 1, &a);
	return rc ? rc : cvfs_fs_listxattr(fs, a.ino, list, size);
}

int cvfs_removexattr(cvfs_fs *fs, const char *path, const char *name)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, 1, &a);
	if (rc == 0)
		rc = cvfs_fs_removexattr(fs, a.ino, name);
	if (rc == 0)
		cvfs_fs_changed(fs, a.ino, 0, NULL);
	return rc;
}

int cvfs_statvfs(cvfs_fs *fs, struct statvfs *out)
{
	struct cvfs_statfs s;
	int rc = cvfs_fs_statfs(fs, &s);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	out->f_bsize = out->f_frsize = s.bsize;
	out->f_blocks = s.blocks;
	out->f_bfree = s.bfree;
	out->f_bavail = s.bavail;
	out->f_files = s.files;
	out->f_ffree = out->f_favail = s.ffree;
	out->f_namemax = CVFS_NAME_MAX;
	return 0;
}

/* ---- files ---- */

int cvfs_file_open(cvfs_fs *fs, const char *path, int flags, mode_t mode, cvfs_file **out)
{
	*out = NULL;
	struct cvfs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fs = fs;
	f->flags = flags;
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, path, !(flags & O_NOFOLLOW), &a);
	if (rc == 0 && (flags & O_CREAT) && (flags & O_EXCL))
		rc = -EEXIST;
	if (rc == 0 && (flags & O_DIRECTORY) && !S_ISDIR(a.mode))
		rc = -ENOTDIR;
	if (rc == 0) {
		rc = cvfs_fs_open(fs, a.ino, flags, &f->h);
		if (rc == 0 && (flags & O_TRUNC))
			cvfs_fs_changed(fs, a.ino, 0, NULL);
	} else if (rc == -ENOENT && (flags & O_CREAT)) {
		uint64_t parent;
		char name[CVFS_NAME_MAX + 1];
		rc = parent_of(fs, path, &parent, name);
		if (rc == 0) {
			struct cvfs_cred c;
			cred(&c);
			rc = cvfs_fs_create(fs, &c, parent, name, masked(fs, mode), flags, &a, &f->h);
			if (rc == 0) {
				cvfs_fs_forget(fs, a.ino, 1);
				created(fs, parent, name, a.ino);
				cvfs_fs_changed(fs, a.ino, 0, NULL);
			}
		}
	}
	if (rc) {
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

ssize_t cvfs_file_pread(cvfs_file *f, void *buf, size_t n, uint64_t off)
{
	if ((f->flags & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	return cvfs_fs_read(f->fs, f->h, buf, n, off);
}

ssize_t cvfs_file_pwrite(cvfs_file *f, const void *buf, size_t n, uint64_t off)
{
	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	ssize_t w = cvfs_fs_write(f->fs, f->h, buf, n, off, 0);
	if (w > 0)
		cvfs_fs_changed(f->fs, f->h->ino, 0, NULL);
	return w;
}

ssize_t cvfs_file_read(cvfs_file *f, void *buf, size_t n)
{
	ssize_t r = cvfs_file_pread(f, buf, n, f->pos);
	if (r > 0)
		f->pos += (uint64_t)r;
	return r;
}

ssize_t cvfs_file_write(cvfs_file *f, const void *buf, size_t n)
{
	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	int append = (f->flags & O_APPEND) != 0;
	ssize_t w = cvfs_fs_write(f->fs, f->h, buf, n, f->pos, append);
	if (w < 0)
		return w;
	if (append) {
		struct cvfs_attr a;
		if (cvfs_fs_getattr(f->fs, f->h->ino, &a) == 0)
			f->pos = a.size;
	} else {
		f->pos += (uint64_t)w;
	}
	if (w > 0)
		cvfs_fs_changed(f->fs, f->h->ino, 0, NULL);
	return w;
}

int64_t cvfs_file_seek(cvfs_file *f, int64_t off, int whence)
{
	int64_t base = 0;
	if (whence == SEEK_CUR) {
		base = (int64_t)f->pos;
	} else if (whence == SEEK_END) {
		struct cvfs_attr a;
		int rc = cvfs_fs_getattr(f->fs, f->h->ino, &a);
		if (rc)
			return rc;
		base = (int64_t)a.size;
	} else if (whence != SEEK_SET) {
		return -EINVAL;
	}
	if (base + off < 0)
		return -EINVAL;
	f->pos = (uint64_t)(base + off);
	return (int64_t)f->pos;
}

int cvfs_file_sync(cvfs_file *f)
{
	int rc = cvfs_fs_flush(f->fs, f->h);
	return rc ? rc : cvfs_fs_fsync(f->fs, f->h, 0);
}

int cvfs_file_close(cvfs_file *f)
{
	if (!f)
		return 0;
	int rc = cvfs_fs_flush(f->fs, f->h);
	cvfs_fs_release(f->fs, f->h);
	free(f);
	return rc;
}

ssize_t cvfs_write_file(cvfs_fs *fs, const char *path, const void *data, size_t len, mode_t mode,
			int flags)
{
	int of = O_WRONLY | O_CREAT | ((flags & CVFS_APPEND) ? O_APPEND : O_TRUNC) |
		 ((flags & CVFS_EXCL) ? O_EXCL : 0);
	cvfs_file *f;
	int rc = cvfs_file_open(fs, path, of, mode, &f);
	if (rc)
		return rc;
	size_t done = 0;
	while (done < len) {
		size_t n = len - done > (1u << 20) ? (1u << 20) : len - done;
		ssize_t w = cvfs_file_write(f, (const char *)data + done, n);
		if (w < 0) {
			cvfs_file_close(f);
			return w;
		}
		done += (size_t)w;
	}
	rc = cvfs_file_close(f);
	return rc ? rc : (ssize_t)done;
}

int cvfs_read_file(cvfs_fs *fs, const char *path, void **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	cvfs_file *f;
	int rc = cvfs_file_open(fs, path, O_RDONLY, 0, &f);
	if (rc)
		return rc;
	struct cvfs_attr a;
	rc = cvfs_fs_getattr(fs, f->h->ino, &a);
	if (rc == 0 && S_ISDIR(a.mode))
		rc = -EISDIR;
	size_t cap = rc == 0 ? (size_t)a.size + 1 : 0;
	char *buf = rc == 0 ? malloc(cap) : NULL;
	if (rc == 0 && !buf)
		rc = -ENOMEM;
	size_t used = 0;
	while (rc == 0) {
		if (used + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = cvfs_file_read(f, buf + used, cap - used - 1);
		if (r < 0)
			rc = (int)r;
		if (r <= 0)
			break;
		used += (size_t)r;
	}
	cvfs_file_close(f);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[used] = 0;
	*data = buf;
	*len = used;
	return 0;
}

/* ---- copy ---- */

static int copy_xattrs(cvfs_fs *fs, uint64_t from, uint64_t to)
{
	ssize_t n = cvfs_fs_listxattr(fs, from, NULL, 0);
	if (n <= 0)
		return (int)n;
	char *list = malloc((size_t)n);
	char *val = malloc(65536);
	int rc = (!list || !val) ? -ENOMEM : 0;
	if (rc == 0)
		n = cvfs_fs_listxattr(fs, from, list, (size_t)n);
	for (ssize_t i = 0; rc == 0 && n > 0 && i < n; i += (ssize_t)strlen(list + i) + 1) {
		ssize_t v = cvfs_fs_getxattr(fs, from, list + i, val, 65536);
		if (v >= 0)
			rc = cvfs_fs_setxattr(fs, to, list + i, val, (size_t)v, 0);
	}
	free(list);
	free(val);
	return rc;
}

static int copy_one(cvfs_fs *fs, const char *from, const char *to, int recursive)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_resolve(fs, from, 0, &a);
	if (rc)
		return rc;
	if (S_ISLNK(a.mode)) {
		char target[4097];
		ssize_t n = cvfs_fs_readlink(fs, a.ino, target, sizeof(target) - 1);
		if (n < 0)
			return (int)n;
		target[n] = 0;
		return cvfs_symlink(fs, target, to);
	}
	if (S_ISDIR(a.mode)) {
		if (!recursive)
			return -EISDIR;
		rc = cvfs_mkdir(fs, to, a.mode & 07777, 0);
		struct ls_ctx c;
		if (rc == 0)
			rc = list_dir(fs, a.ino, &c);
		if (rc)
			return rc;
		for (size_t i = 0; rc == 0 && i < c.n; i++) {
			char *f2 = NULL, *t2 = NULL;
			if (asprintf(&f2, "%s/%s", from, c.v[i].name) < 0)
				f2 = NULL;
			if (asprintf(&t2, "%s/%s", to, c.v[i].name) < 0)
				t2 = NULL;
			rc = (f2 && t2) ? copy_one(fs, f2, t2, 1) : -ENOMEM;
			free(f2);
			free(t2);
		}
		list_free(&c);
		return rc;
	}
	if (!S_ISREG(a.mode))
		return -EOPNOTSUPP;
	cvfs_file *in, *out;
	rc = cvfs_file_open(fs, from, O_RDONLY, 0, &in);
	if (rc)
		return rc;
	rc = cvfs_file_open(fs, to, O_WRONLY | O_CREAT | O_TRUNC, 0600, &out);
	if (rc) {
		cvfs_file_close(in);
		return rc;
	}
	char *buf = malloc(1 << 20);
	if (!buf)
		rc = -ENOMEM;
	while (rc == 0) {
		ssize_t r = cvfs_file_read(in, buf, 1 << 20);
		if (r <= 0) {
			rc = (int)r;
			break;
		}
		ssize_t w = cvfs_file_write(out, buf, (size_t)r);
		if (w < 0)
			rc = (int)w;
	}
	free(buf);
	uint64_t dst = out->h->ino;
	cvfs_file_close(in);
	int crc = cvfs_file_close(out);
	if (rc == 0)
		rc = crc;
	if (rc == 0)
		rc = copy_xattrs(fs, a.ino, dst);
	if (rc == 0) {
		struct cvfs_attr set = a, res;
		struct cvfs_cred c;
		cred(&c);
		rc = cvfs_fs_setattr(fs, &c, dst, &set, CVFS_SET_MODE | CVFS_SET_ATIME | CVFS_SET_MTIME,
				     &res);
		cvfs_fs_changed(fs, dst, 0, NULL);
	}
	return rc;
}

int cvfs_copy(cvfs_fs *fs, const char *from, const char *to, int recursive)
{
	return copy_one(fs, from, to, recursive);
}

/* ---- mounting ---- */

static void mount_opts(const struct cvfs_mount_config *cfg, const char *dir,
		       struct cvfs_mount_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mountpoint = dir;
	o->cache_timeout = -1;
	o->writeback = -1;
	o->spin_us = -1;
	o->cpu_poll_ms = -1;
	o->handoff = -1;
	o->drop_negative = -1;
	if (cfg) {
		o->readonly = cfg->readonly;
		o->allow_other = cfg->allow_other;
		o->debug = cfg->debug;
		o->cache_timeout = cfg->cache_timeout;
		o->threads = cfg->threads;
		o->fuse_opts = cfg->fuse_opts;
	}
	o->fsname = "chuk-vfs";
}

static int mount_begin(cvfs_fs *fs, const char *dir, const struct cvfs_mount_config *cfg,
		       struct cvfs_mount **m, char **errmsg)
{
	if (errmsg)
		*errmsg = NULL;
	int rc = cvfs_mount_prepare(dir, errmsg);
	if (rc)
		return rc;
	struct cvfs_mount_opts o;
	mount_opts(cfg, dir, &o);
	return cvfs_mount_new(fs, &o, m, errmsg);
}

int cvfs_mount_blocking(cvfs_fs *fs, const char *dir, const struct cvfs_mount_config *cfg,
			char **errmsg)
{
	struct cvfs_mount *m;
	int rc = mount_begin(fs, dir, cfg, &m, errmsg);
	if (rc)
		return rc;
	rc = cvfs_mount_loop(m, 1);
	cvfs_mount_free(m);
	return rc;
}

static void *serve_thread(void *arg)
{
	struct cvfs_mounted *mt = arg;
	mt->rc = cvfs_mount_loop(mt->m, 0);
	return NULL;
}

int cvfs_mount_start(cvfs_fs *fs, const char *dir, const struct cvfs_mount_config *cfg,
		     cvfs_mounted **out, char **errmsg)
{
	*out = NULL;
	struct cvfs_mounted *mt = calloc(1, sizeof(*mt));
	if (!mt)
		return -ENOMEM;
	int rc = mount_begin(fs, dir, cfg, &mt->m, errmsg);
	if (rc) {
		free(mt);
		return rc;
	}
	rc = -pthread_create(&mt->thread, NULL, serve_thread, mt);
	if (rc) {
		cvfs_mount_free(mt->m);
		free(mt);
		return rc;
	}
	*out = mt;
	return 0;
}

static void wake_handler(int sig)
{
	(void)sig;
}

int cvfs_mount_stop(cvfs_mounted *mt)
{
	if (!mt)
		return 0;
	cvfs_mount_unmount(mt->m);
	/* libfuse unmounts lazily: while a file is still open through the mount
	 * the serving thread's read of /dev/fuse never returns.  Interrupt it
	 * (a handler without SA_RESTART makes the read fail with EINTR; the loop
	 * sees the session ended); cvfs_mount_free then closes /dev/fuse, which
	 * aborts the connection: files still open get ENOTCONN. */
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 1;
	if (pthread_timedjoin_np(mt->thread, NULL, &dl) != 0) {
		struct sigaction sa, old;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = wake_handler;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGRTMAX - 1, &sa, &old);
		while (pthread_kill(mt->thread, SIGRTMAX - 1) == 0) {
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_nsec += 100000000;
			if (dl.tv_nsec >= 1000000000) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(mt->thread, NULL, &dl) == 0)
				break;
		}
		sigaction(SIGRTMAX - 1, &old, NULL);
	}
	cvfs_mount_free(mt->m);
	int rc = mt->rc;
	free(mt);
	return rc;
}
