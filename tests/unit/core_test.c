/*
 * Unit tests of the core (src/core/core.h) over a fake store.
 *
 * The fake is a struct cvfs_store whose methods forward to a real memory store
 * and count the calls per method.  It can
 *  - fail the Nth call of a chosen method with a chosen errno,
 *  - answer txn_end(commit=1) with -EAGAIN the first K times,
 *  - keep an undo journal, so txn_end(commit=0) (and a refused commit) undo the
 *    transaction as a transactional store would,
 *  - hide optional methods (punch, dir_empty, statfs) to exercise fallbacks.
 * A fsck-like walk over the memory store checks the invariants after each
 * test: every entry points at an inode of its type, a file's nlink is its
 * number of names, a directory's nlink is 2 + its subdirectories, ".." is
 * right, and no inode is left without a name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/core.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* ---- reporting ---- */

static int npass, nfail, ntest, cur_fail;

static void failf(int line, const char *fmt, ...)
{
	va_list ap;
	printf("#   line %d: ", line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	cur_fail++;
}

static void note(const char *fmt, ...)
{
	va_list ap;
	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond))                                                               \
			failf(__LINE__, __VA_ARGS__);                                      \
	} while (0)
#define REQUIRE(cond, ...)                                                                 \
	do {                                                                               \
		if (!(cond)) {                                                             \
			failf(__LINE__, __VA_ARGS__);                                      \
			goto out;                                                          \
		}                                                                          \
	} while (0)
/* expr must return 0 (or a byte count) */
#define OK(expr)                                                                           \
	do {                                                                               \
		long long r__ = (long long)(expr);                                         \
		if (r__ < 0) {                                                             \
			failf(__LINE__, "%s -> %s", #expr, strerror((int)-r__));           \
			goto out;                                                          \
		}                                                                          \
	} while (0)
/* expr must fail with -err */
#define ERR(expr, err)                                                                     \
	do {                                                                               \
		long long r__ = (long long)(expr);                                         \
		if (r__ != -(err))                                                         \
			failf(__LINE__, "%s -> %lld (%s), want -%s", #expr, r__,           \
			      r__ < 0 ? strerror((int)-r__) : "success", #err);            \
	} while (0)

static void run(const char *name, void (*fn)(void))
{
	cur_fail = 0;
	fn();
	ntest++;
	if (cur_fail)
		nfail++;
	else
		npass++;
	printf("%s %d - %s\n", cur_fail ? "not ok" : "ok", ntest, name);
	fflush(stdout);
}

/* ---- the fake store ---- */

enum meth {
	M_TXN_BEGIN, M_TXN_END, M_INO_ALLOC, M_INODE_GET, M_INODE_PUT, M_INODE_DEL,
	M_DENT_GET, M_DENT_PUT, M_DENT_DEL, M_DIR_LIST, M_DIR_EMPTY, M_READ, M_WRITE,
	M_TRUNCATE, M_PUNCH, M_GETX, M_SETX, M_LISTX, M_REMOVEX, M_STATFS, M_SYNC, M_N
};
static const char *const mname[M_N] = {
	"txn_begin", "txn_end", "ino_alloc", "inode_get", "inode_put", "inode_del",
	"dent_get", "dent_put", "dent_del", "dir_list", "dir_empty", "read", "write",
	"truncate", "punch", "getx", "setx", "listx", "removex", "statfs", "sync",
};

enum jkind { J_INODE, J_INODE_DEL, J_DENT, J_DATA, J_XATTR };

struct jent {
	enum jkind kind;
	uint64_t ino, dir;
	char name[CVFS_NAME_MAX + 1];
	size_t len;
	int had;
	uint64_t pino;
	uint32_t ptype;
	struct cvfs_attr a;
	unsigned char *data;
	size_t dlen;
	uint64_t off;
	char *xnames; /* J_INODE_DEL: NUL-separated names of its xattrs */
	size_t xnlen;
	unsigned char **xvals; /* and their values */
	size_t *xlens;
	size_t nx;
};

struct fake {
	struct cvfs_store base;
	struct cvfs_store_ops ops;
	struct cvfs_store *in;
	const struct cvfs_store_ops *io;
	long calls[M_N];
	long wtxns; /* write transactions begun */
	int fail_m;  /* -1: none */
	long fail_at; /* fail the call whose per-method count reaches this */
	int fail_err;
	int failed; /* the injection fired */
	int eagain;  /* commits to refuse with -EAGAIN */
	int undo;
	int keep_inner;
	int in_write;
	struct jent *j;
	size_t nj, capj;
	uint64_t dels[4096]; /* inode_del calls, in order */
	size_t ndel;
	uint64_t allocs[65536]; /* inode numbers handed out */
	size_t nalloc;
};

static struct fake *F(struct cvfs_store *st)
{
	return (struct fake *)st;
}

static int hit(struct fake *f, enum meth m)
{
	f->calls[m]++;
	if (f->fail_m == (int)m && f->calls[m] == f->fail_at) {
		f->failed = 1;
		return f->fail_err;
	}
	return 0;
}

static struct jent *jpush(struct fake *f, enum jkind k)
{
	if (f->nj == f->capj) {
		f->capj = f->capj ? f->capj * 2 : 32;
		f->j = realloc(f->j, f->capj * sizeof(*f->j));
		if (!f->j)
			abort();
	}
	struct jent *e = &f->j[f->nj++];
	memset(e, 0, sizeof(*e));
	e->kind = k;
	return e;
}

static void jclear(struct fake *f)
{
	for (size_t i = 0; i < f->nj; i++) {
		free(f->j[i].data);
		free(f->j[i].xnames);
		for (size_t k = 0; k < f->j[i].nx; k++)
			free(f->j[i].xvals[k]);
		free(f->j[i].xvals);
		free(f->j[i].xlens);
	}
	f->nj = 0;
}

static unsigned char *save_bytes(struct fake *f, uint64_t ino, uint64_t off, size_t len)
{
	unsigned char *b = malloc(len ? len : 1);
	if (!b)
		abort();
	if (len && f->io->read(f->in, ino, b, len, off) < 0)
		memset(b, 0, len);
	return b;
}

struct type_find {
	const char *name;
	size_t len;
	uint32_t type;
};

static int type_cb(void *arg, const struct cvfs_dirent *e)
{
	struct type_find *t = arg;
	if (e->namelen == t->len && memcmp(e->name, t->name, t->len) == 0) {
		t->type = e->type;
		return 1;
	}
	return 0;
}

static void journal_dent(struct fake *f, uint64_t dir, const char *name, size_t len)
{
	if (!f->undo || len > CVFS_NAME_MAX)
		return;
	struct jent *e = jpush(f, J_DENT);
	e->dir = dir;
	memcpy(e->name, name, len);
	e->len = len;
	e->had = f->io->dent_get(f->in, dir, name, len, &e->pino) == 0;
	if (e->had) {
		struct type_find t = {name, len, 0};
		f->io->dir_list(f->in, dir, 0, type_cb, &t);
		e->ptype = t.type;
	}
}

static void journal_data(struct fake *f, uint64_t ino, uint64_t off, size_t len)
{
	if (!f->undo)
		return;
	struct jent *e = jpush(f, J_DATA);
	e->ino = ino;
	e->off = off;
	e->dlen = len;
	e->data = save_bytes(f, ino, off, len);
}

static void journal_xattr(struct fake *f, uint64_t ino, const char *name)
{
	if (!f->undo)
		return;
	struct jent *e = jpush(f, J_XATTR);
	e->ino = ino;
	snprintf(e->name, sizeof(e->name), "%s", name);
	ssize_t n = f->io->getx(f->in, ino, name, NULL, 0);
	e->had = n >= 0;
	if (e->had) {
		e->dlen = (size_t)n;
		e->data = malloc(n ? (size_t)n : 1);
		f->io->getx(f->in, ino, name, e->data, (size_t)n);
	}
}

static void jundo(struct fake *f)
{
	struct cvfs_store *in = f->in;
	const struct cvfs_store_ops *io = f->io;
	for (size_t i = f->nj; i-- > 0;) {
		struct jent *e = &f->j[i];
		switch (e->kind) {
		case J_INODE:
			if (e->had)
				io->inode_put(in, &e->a);
			else
				io->inode_del(in, e->ino);
			break;
		case J_INODE_DEL:
			io->inode_put(in, &e->a);
			if (e->dlen)
				io->write(in, e->ino, e->data, e->dlen, 0);
			for (size_t p = 0, k = 0; p < e->xnlen && k < e->nx;
			     p += strlen(e->xnames + p) + 1, k++)
				io->setx(in, e->ino, e->xnames + p, e->xvals[k], e->xlens[k], 0);
			break;
		case J_DENT:
			if (e->had)
				io->dent_put(in, e->dir, e->name, e->len, e->pino, e->ptype);
			else
				io->dent_del(in, e->dir, e->name, e->len);
			break;
		case J_DATA:
			io->write(in, e->ino, e->data, e->dlen, e->off);
			break;
		case J_XATTR:
			if (e->had)
				io->setx(in, e->ino, e->name, e->data, e->dlen, 0);
			else
				io->removex(in, e->ino, e->name);
			break;
		}
	}
	jclear(f);
}

static int f_txn_begin(struct cvfs_store *st, int write)
{
	struct fake *f = F(st);
	int rc = hit(f, M_TXN_BEGIN);
	if (rc)
		return rc;
	rc = f->io->txn_begin(f->in, write);
	if (rc == 0) {
		f->in_write = write;
		if (write)
			f->wtxns++;
	}
	return rc;
}

static int f_txn_end(struct cvfs_store *st, int commit)
{
	struct fake *f = F(st);
	int rc = hit(f, M_TXN_END);
	if (rc == 0 && commit && f->in_write && f->eagain > 0) {
		f->eagain--;
		rc = -EAGAIN;
	}
	if (rc || !commit)
		jundo(f); /* not committed: nothing of it may stay */
	else
		jclear(f);
	f->io->txn_end(f->in, rc == 0 && commit);
	return rc;
}

static int f_ino_alloc(struct cvfs_store *st, uint64_t *ino)
{
	struct fake *f = F(st);
	int rc = hit(f, M_INO_ALLOC);
	if (rc)
		return rc;
	rc = f->io->ino_alloc(f->in, ino);
	if (rc == 0 && f->nalloc < sizeof(f->allocs) / sizeof(f->allocs[0]))
		f->allocs[f->nalloc++] = *ino;
	return rc;
}

static int f_inode_get(struct cvfs_store *st, uint64_t ino, struct cvfs_attr *out)
{
	struct fake *f = F(st);
	int rc = hit(f, M_INODE_GET);
	return rc ? rc : f->io->inode_get(f->in, ino, out);
}

static int f_inode_put(struct cvfs_store *st, const struct cvfs_attr *a)
{
	struct fake *f = F(st);
	int rc = hit(f, M_INODE_PUT);
	if (rc)
		return rc;
	if (f->undo) {
		struct jent *e = jpush(f, J_INODE);
		e->ino = a->ino;
		e->had = f->io->inode_get(f->in, a->ino, &e->a) == 0;
	}
	return f->io->inode_put(f->in, a);
}

static int f_inode_del(struct cvfs_store *st, uint64_t ino)
{
	struct fake *f = F(st);
	int rc = hit(f, M_INODE_DEL);
	if (rc)
		return rc;
	if (f->undo) {
		struct cvfs_attr a;
		if (f->io->inode_get(f->in, ino, &a) == 0) {
			struct jent *e = jpush(f, J_INODE_DEL);
			e->ino = ino;
			e->a = a;
			e->dlen = S_ISDIR(a.mode) ? 0 : (size_t)a.size;
			e->data = save_bytes(f, ino, 0, e->dlen);
			/* xattrs come back through J_XATTR entries journaled now */
			ssize_t n = f->io->listx ? f->io->listx(f->in, ino, NULL, 0) : 0;
			if (n > 0) {
				char *names = malloc((size_t)n);
				f->io->listx(f->in, ino, names, (size_t)n);
				e->xnames = names;
				e->xnlen = (size_t)n;
				e->xvals = calloc((size_t)n, sizeof(*e->xvals));
				e->xlens = calloc((size_t)n, sizeof(*e->xlens));
				for (ssize_t p = 0; p < n; p += (ssize_t)strlen(names + p) + 1) {
					ssize_t vl = f->io->getx(f->in, ino, names + p, NULL, 0);
					size_t k = e->nx++;
					e->xvals[k] = malloc(vl > 0 ? (size_t)vl : 1);
					e->xlens[k] = vl > 0 ? (size_t)vl : 0;
					if (vl > 0)
						f->io->getx(f->in, ino, names + p, e->xvals[k],
							    (size_t)vl);
				}
			}
		}
	}
	rc = f->io->inode_del(f->in, ino);
	if (rc == 0 && f->ndel < sizeof(f->dels) / sizeof(f->dels[0]))
		f->dels[f->ndel++] = ino;
	return rc;
}

static int f_dent_get(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t *ino)
{
	struct fake *f = F(st);
	int rc = hit(f, M_DENT_GET);
	return rc ? rc : f->io->dent_get(f->in, dir, name, len, ino);
}

static int f_dent_put(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t ino, uint32_t type)
{
	struct fake *f = F(st);
	int rc = hit(f, M_DENT_PUT);
	if (rc)
		return rc;
	journal_dent(f, dir, name, len);
	return f->io->dent_put(f->in, dir, name, len, ino, type);
}

static int f_dent_del(struct cvfs_store *st, uint64_t dir, const char *name, size_t len)
{
	struct fake *f = F(st);
	int rc = hit(f, M_DENT_DEL);
	if (rc)
		return rc;
	journal_dent(f, dir, name, len);
	return f->io->dent_del(f->in, dir, name, len);
}

static int f_dir_list(struct cvfs_store *st, uint64_t dir, uint64_t cookie, cvfs_dirent_cb cb,
		      void *arg)
{
	struct fake *f = F(st);
	int rc = hit(f, M_DIR_LIST);
	return rc ? rc : f->io->dir_list(f->in, dir, cookie, cb, arg);
}

static int f_dir_empty(struct cvfs_store *st, uint64_t dir)
{
	struct fake *f = F(st);
	int rc = hit(f, M_DIR_EMPTY);
	return rc ? rc : f->io->dir_empty(f->in, dir);
}

static ssize_t f_read(struct cvfs_store *st, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct fake *f = F(st);
	int rc = hit(f, M_READ);
	return rc ? rc : f->io->read(f->in, ino, buf, len, off);
}

static ssize_t f_write(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len,
		       uint64_t off)
{
	struct fake *f = F(st);
	int rc = hit(f, M_WRITE);
	if (rc)
		return rc;
	journal_data(f, ino, off, len);
	return f->io->write(f->in, ino, buf, len, off);
}

static int f_truncate(struct cvfs_store *st, uint64_t ino, uint64_t size)
{
	struct fake *f = F(st);
	int rc = hit(f, M_TRUNCATE);
	if (rc)
		return rc;
	struct cvfs_attr a;
	if (f->undo && f->io->inode_get(f->in, ino, &a) == 0 && a.size > size)
		journal_data(f, ino, size, (size_t)(a.size - size));
	return f->io->truncate(f->in, ino, size);
}

static int f_punch(struct cvfs_store *st, uint64_t ino, uint64_t off, uint64_t len)
{
	struct fake *f = F(st);
	int rc = hit(f, M_PUNCH);
	if (rc)
		return rc;
	journal_data(f, ino, off, (size_t)len);
	return f->io->punch(f->in, ino, off, len);
}

static ssize_t f_getx(struct cvfs_store *st, uint64_t ino, const char *name, void *val, size_t size)
{
	struct fake *f = F(st);
	int rc = hit(f, M_GETX);
	return rc ? rc : f->io->getx(f->in, ino, name, val, size);
}

static int f_setx(struct cvfs_store *st, uint64_t ino, const char *name, const void *val,
		  size_t size, int flags)
{
	struct fake *f = F(st);
	int rc = hit(f, M_SETX);
	if (rc)
		return rc;
	journal_xattr(f, ino, name);
	return f->io->setx(f->in, ino, name, val, size, flags);
}

static ssize_t f_listx(struct cvfs_store *st, uint64_t ino, char *list, size_t size)
{
	struct fake *f = F(st);
	int rc = hit(f, M_LISTX);
	return rc ? rc : f->io->listx(f->in, ino, list, size);
}

static int f_removex(struct cvfs_store *st, uint64_t ino, const char *name)
{
	struct fake *f = F(st);
	int rc = hit(f, M_REMOVEX);
	if (rc)
		return rc;
	journal_xattr(f, ino, name);
	return f->io->removex(f->in, ino, name);
}

static int f_statfs(struct cvfs_store *st, struct cvfs_statfs *out)
{
	struct fake *f = F(st);
	int rc = hit(f, M_STATFS);
	return rc ? rc : f->io->statfs(f->in, out);
}

static int f_sync(struct cvfs_store *st, uint64_t ino, int datasync)
{
	struct fake *f = F(st);
	int rc = hit(f, M_SYNC);
	return rc ? rc : f->io->sync ? f->io->sync(f->in, ino, datasync) : 0;
}

static void f_free(struct cvfs_store *st)
{
	struct fake *f = F(st);
	jclear(f);
	free(f->j);
	if (!f->keep_inner)
		f->io->free(f->in);
	free(f);
}

static const struct cvfs_store_ops fake_ops = {
	.name = "fake",
	.abi = CVFS_STORE_ABI,
	.txn_begin = f_txn_begin,
	.txn_end = f_txn_end,
	.ino_alloc = f_ino_alloc,
	.inode_get = f_inode_get,
	.inode_put = f_inode_put,
	.inode_del = f_inode_del,
	.dent_get = f_dent_get,
	.dent_put = f_dent_put,
	.dent_del = f_dent_del,
	.dir_list = f_dir_list,
	.dir_empty = f_dir_empty,
	.read = f_read,
	.write = f_write,
	.truncate = f_truncate,
	.punch = f_punch,
	.getx = f_getx,
	.setx = f_setx,
	.listx = f_listx,
	.removex = f_removex,
	.statfs = f_statfs,
	.sync = f_sync,
	.free = f_free,
};

enum { NO_PUNCH = 1, NO_DIR_EMPTY = 2, NO_STATFS = 4, NO_XATTR = 8 };

static struct fake *fake_new(struct cvfs_store *inner, int hide)
{
	struct fake *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	if (!inner) {
		char *msg = NULL;
		int rc = cvfs_store_open("memory", NULL, 0, &inner, &msg);
		if (rc) {
			fprintf(stderr, "memory store: %s\n", msg ? msg : strerror(-rc));
			exit(1);
		}
	}
	f->in = inner;
	f->io = inner->ops;
	f->ops = fake_ops;
	if (hide & NO_PUNCH)
		f->ops.punch = NULL;
	if (hide & NO_DIR_EMPTY)
		f->ops.dir_empty = NULL;
	if (hide & NO_STATFS)
		f->ops.statfs = NULL;
	if (hide & NO_XATTR)
		f->ops.getx = NULL, f->ops.setx = NULL, f->ops.listx = NULL, f->ops.removex = NULL;
	f->base.ops = &f->ops;
	f->base.caps = inner->caps;
	f->fail_m = -1;
	return f;
}

static void fake_reset_counts(struct fake *f)
{
	memset(f->calls, 0, sizeof(f->calls));
	f->wtxns = 0;
	f->ndel = 0;
}

static int count_dels(struct fake *f, uint64_t ino)
{
	int n = 0;
	for (size_t i = 0; i < f->ndel; i++)
		n += f->dels[i] == ino;
	return n;
}

/* ---- fsck over the inner store ---- */

struct seen_ino {
	uint64_t ino;
	uint32_t names, subdirs, mode;
	uint32_t nlink;
	uint64_t parent;
	int is_dir_visited;
};

struct fsck {
	struct fake *f;
	struct seen_ino *v;
	size_t n, cap;
	int problems;
	int quiet;
};

static struct seen_ino *seen_get(struct fsck *k, uint64_t ino)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].ino == ino)
			return &k->v[i];
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		k->v = realloc(k->v, k->cap * sizeof(*k->v));
	}
	struct seen_ino *s = &k->v[k->n++];
	memset(s, 0, sizeof(*s));
	s->ino = ino;
	return s;
}

static void fproblem(struct fsck *k, const char *fmt, ...)
{
	k->problems++;
	if (k->quiet)
		return;
	va_list ap;
	fputs("#   fsck: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

struct dl {
	struct cvfs_dirent *e;
	char (*names)[CVFS_NAME_MAX + 1];
	size_t n, cap;
};

static int dl_cb(void *arg, const struct cvfs_dirent *e)
{
	struct dl *d = arg;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 32;
		d->e = realloc(d->e, d->cap * sizeof(*d->e));
		d->names = realloc(d->names, d->cap * sizeof(*d->names));
	}
	memcpy(d->names[d->n], e->name, e->namelen);
	d->names[d->n][e->namelen] = 0;
	d->e[d->n] = *e;
	d->e[d->n].name = NULL;
	d->n++;
	return 0;
}

static void fsck_dir(struct fsck *k, uint64_t dir, int depth)
{
	struct fake *f = k->f;
	struct cvfs_attr da;
	if (f->io->inode_get(f->in, dir, &da)) {
		fproblem(k, "directory %" PRIu64 " missing", dir);
		return;
	}
	struct seen_ino *ds = seen_get(k, dir);
	if (ds->is_dir_visited) {
		fproblem(k, "directory %" PRIu64 " reached twice", dir);
		return;
	}
	ds->is_dir_visited = 1;
	ds->mode = da.mode;
	ds->nlink = da.nlink;
	struct dl l = {0};
	f->io->dir_list(f->in, dir, 0, dl_cb, &l);
	uint32_t subdirs = 0;
	for (size_t i = 0; i < l.n; i++) {
		struct cvfs_attr a;
		uint64_t ino = l.e[i].ino;
		if (f->io->inode_get(f->in, ino, &a)) {
			fproblem(k, "entry %s in %" PRIu64 " points at missing inode %" PRIu64,
				 l.names[i], dir, ino);
			continue;
		}
		if ((a.mode & S_IFMT) != l.e[i].type)
			fproblem(k, "entry %s: type %o, inode mode %o", l.names[i], l.e[i].type,
				 a.mode);
		if (a.nlink == 0)
			fproblem(k, "entry %s points at inode %" PRIu64 " with nlink 0", l.names[i],
				 ino);
		struct seen_ino *s = seen_get(k, ino);
		s->names++;
		s->mode = a.mode;
		s->nlink = a.nlink;
		if (S_ISDIR(a.mode)) {
			subdirs++;
			if (a.parent != dir)
				fproblem(k, "directory %s (%" PRIu64 "): parent %" PRIu64
					    ", listed in %" PRIu64,
					 l.names[i], ino, a.parent, dir);
			if (depth < 64)
				fsck_dir(k, ino, depth + 1);
		}
	}
	if (da.nlink != 2 + subdirs)
		fproblem(k, "directory %" PRIu64 ": nlink %u, want 2 + %u subdirectories", dir,
			 da.nlink, subdirs);
	free(l.e);
	free(l.names);
}

/* Returns the number of problems found.  No references may be outstanding
 * (or allow_orphans: inodes with nlink 0 and no name are fine). */
static int fsck(struct fake *f, int allow_orphans, int quiet)
{
	struct fsck k = {.f = f, .quiet = quiet};
	f->io->txn_begin(f->in, 0);
	struct cvfs_attr ra;
	if (f->io->inode_get(f->in, CVFS_ROOT_INO, &ra) || !S_ISDIR(ra.mode) ||
	    ra.parent != CVFS_ROOT_INO)
		fproblem(&k, "root missing or wrong");
	else
		fsck_dir(&k, CVFS_ROOT_INO, 0);
	for (size_t i = 0; i < k.n; i++) {
		struct seen_ino *s = &k.v[i];
		if (!S_ISDIR(s->mode) && s->names != s->nlink)
			fproblem(&k, "inode %" PRIu64 ": nlink %u but %u names", s->ino, s->nlink,
				 s->names);
		if (S_ISDIR(s->mode) && s->ino != CVFS_ROOT_INO && s->names != 1)
			fproblem(&k, "directory %" PRIu64 " has %u names", s->ino, s->names);
	}
	/* every inode handed out is either reachable or gone */
	for (size_t i = 0; i < f->nalloc; i++) {
		uint64_t ino = f->allocs[i];
		int reached = 0;
		for (size_t j = 0; j < k.n && !reached; j++)
			reached = k.v[j].ino == ino;
		struct cvfs_attr a;
		if (!reached && f->io->inode_get(f->in, ino, &a) == 0 &&
		    !(allow_orphans && a.nlink == 0))
			fproblem(&k, "inode %" PRIu64 " (nlink %u) is unreachable", ino, a.nlink);
	}
	f->io->txn_end(f->in, 1);
	free(k.v);
	return k.problems;
}

/* A textual dump of the tree (sorted), for before/after comparisons. */
struct dump {
	char *s;
	size_t n, cap;
};

static void dprintf_(struct dump *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (d->n + (size_t)need + 1 > d->cap) {
		d->cap = (d->n + (size_t)need + 1) * 2;
		d->s = realloc(d->s, d->cap);
	}
	va_start(ap, fmt);
	vsnprintf(d->s + d->n, d->cap - d->n, fmt, ap);
	va_end(ap);
	d->n += (size_t)need;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void dump_ino(struct fake *f, struct dump *d, uint64_t ino, const char *path, int depth)
{
	struct cvfs_attr a;
	if (f->io->inode_get(f->in, ino, &a)) {
		dprintf_(d, "%s -> %" PRIu64 " MISSING\n", path, ino);
		return;
	}
	uint64_t sum = 1469598103934665603ull;
	if (!S_ISDIR(a.mode) && a.size && a.size < (1u << 20)) {
		unsigned char *b = malloc(a.size);
		f->io->read(f->in, ino, b, a.size, 0);
		for (uint64_t i = 0; i < a.size; i++)
			sum = (sum ^ b[i]) * 1099511628211ull;
		free(b);
	}
	char xl[1024] = "";
	ssize_t xn = f->io->listx(f->in, ino, xl, sizeof(xl) - 1);
	for (ssize_t i = 0; i < xn; i++)
		if (!xl[i])
			xl[i] = ',';
	if (xn >= 0)
		xl[xn] = 0;
	dprintf_(d, "%s ino %" PRIu64 " mode %o nlink %u size %" PRIu64 " uid %u gid %u m %" PRId64
		    " c %" PRId64 " a %" PRId64 " parent %" PRIu64 " sum %" PRIx64 " x %s\n",
		 path, ino, a.mode, a.nlink, a.size, a.uid, a.gid, a.mtime_ns, a.ctime_ns, a.atime_ns,
		 a.parent, sum, xl);
	if (!S_ISDIR(a.mode) || depth > 64)
		return;
	struct dl l = {0};
	f->io->dir_list(f->in, ino, 0, dl_cb, &l);
	/* sort by name, carrying inos */
	struct pair {
		char name[CVFS_NAME_MAX + 1];
		uint64_t ino;
	} *p = calloc(l.n + 1, sizeof(*p));
	for (size_t i = 0; i < l.n; i++) {
		strcpy(p[i].name, l.names[i]);
		p[i].ino = l.e[i].ino;
	}
	qsort(p, l.n, sizeof(*p), name_cmp);
	for (size_t i = 0; i < l.n; i++) {
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/%s", path, p[i].name);
		dump_ino(f, d, p[i].ino, sub, depth + 1);
	}
	free(p);
	free(l.e);
	free(l.names);
}

static char *dump_tree(struct fake *f)
{
	struct dump d = {0};
	f->io->txn_begin(f->in, 0);
	dump_ino(f, &d, CVFS_ROOT_INO, "", 0);
	f->io->txn_end(f->in, 1);
	return d.s;
}

/* ---- helpers over the core ---- */

static const struct cvfs_cred cred = {1000, 1000, 0, 022};

static struct cvfs_fs *fs_open(struct fake *f, const struct cvfs_fs_config *cfg)
{
	struct cvfs_fs *fs = NULL;
	int rc = cvfs_fs_new(&f->base, cfg, &fs);
	if (rc) {
		failf(__LINE__, "cvfs_fs_new -> %s", strerror(-rc));
		return NULL;
	}
	return fs;
}

static uint64_t mkd(struct cvfs_fs *fs, uint64_t parent, const char *name)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_mknod(fs, &cred, parent, name, S_IFDIR | 0755, 0, &a);
	if (rc) {
		failf(__LINE__, "mkdir %s -> %s", name, strerror(-rc));
		return 0;
	}
	cvfs_fs_forget(fs, a.ino, 1);
	return a.ino;
}

/* A file with data; no references left. */
static uint64_t mkf(struct cvfs_fs *fs, uint64_t parent, const char *name, const char *data)
{
	struct cvfs_attr a;
	struct cvfs_handle *h = NULL;
	int rc = cvfs_fs_create(fs, &cred, parent, name, 0644, O_CREAT | O_RDWR, &a, &h);
	if (rc) {
		failf(__LINE__, "create %s -> %s", name, strerror(-rc));
		return 0;
	}
	if (data && *data) {
		ssize_t n = cvfs_fs_write(fs, h, data, strlen(data), 0, 0);
		if (n != (ssize_t)strlen(data))
			failf(__LINE__, "write %s -> %zd", name, n);
	}
	cvfs_fs_release(fs, h);
	cvfs_fs_forget(fs, a.ino, 1);
	return a.ino;
}

static int attr_of(struct cvfs_fs *fs, uint64_t ino, struct cvfs_attr *a)
{
	return cvfs_fs_getattr(fs, ino, a);
}

static uint32_t nlink_of(struct cvfs_fs *fs, uint64_t ino)
{
	struct cvfs_attr a;
	return attr_of(fs, ino, &a) ? 0xdead : a.nlink;
}

/* lookup without keeping the reference */
static int look(struct cvfs_fs *fs, uint64_t parent, const char *name, uint64_t *ino)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_lookup(fs, parent, name, &a);
	if (rc == 0) {
		cvfs_fs_forget(fs, a.ino, 1);
		if (ino)
			*ino = a.ino;
	}
	return rc;
}

static void expect_fsck(struct fake *f, int line)
{
	int p = fsck(f, 0, 0);
	if (p)
		failf(line, "fsck found %d problem(s)", p);
}
#define FSCK(f) expect_fsck(f, __LINE__)

/* ---- tests ---- */

static void t_root(void)
{
	struct fake *f = fake_new(NULL, 0);
	f->keep_inner = 1;
	struct cvfs_store *inner = f->in;
	struct cvfs_fs_config cfg = {.root_mode = 0750, .root_uid = 123, .root_gid = 456};
	struct cvfs_fs *fs = fs_open(f, &cfg);
	struct cvfs_attr a;
	REQUIRE(fs, "fs");
	OK(cvfs_fs_getattr(fs, CVFS_ROOT_INO, &a));
	CHECK(a.mode == (S_IFDIR | 0750), "root mode %o", a.mode);
	CHECK(a.nlink == 2, "root nlink %u", a.nlink);
	CHECK(a.uid == 123 && a.gid == 456, "root owner %u:%u", a.uid, a.gid);
	CHECK(a.parent == CVFS_ROOT_INO, "root parent %" PRIu64, a.parent);
	CHECK(a.ctime_ns > 0 && a.btime_ns == a.ctime_ns, "root times");
	CHECK(f->calls[M_INODE_PUT] == 1, "root creation did %ld inode_put", f->calls[M_INODE_PUT]);
	uint64_t d = mkd(fs, 1, "keep");
	cvfs_fs_free(fs);
	/* a second fs over the same store keeps the root as it is */
	f = fake_new(inner, 0);
	f->keep_inner = 1;
	fs = fs_open(f, NULL);
	REQUIRE(fs, "fs");
	CHECK(f->calls[M_INODE_PUT] == 0, "an existing root was rewritten");
	OK(cvfs_fs_getattr(fs, CVFS_ROOT_INO, &a));
	CHECK(a.mode == (S_IFDIR | 0750) && a.uid == 123 && a.nlink == 3, "existing root changed");
	uint64_t x = 0;
	OK(look(fs, 1, "keep", &x));
	CHECK(x == d, "keep");
	cvfs_fs_free(fs);
	fs = NULL;
	/* defaults: 0755, the process's owner */
	f = fake_new(NULL, 0);
	fs = fs_open(f, NULL);
	REQUIRE(fs, "fs");
	OK(cvfs_fs_getattr(fs, CVFS_ROOT_INO, &a));
	CHECK(a.mode == (S_IFDIR | 0755) && a.nlink == 2, "default root mode %o nlink %u", a.mode,
	      a.nlink);
	CHECK(a.uid == getuid() && a.gid == getgid(), "default root owner %u:%u", a.uid, a.gid);
	FSCK(f);
out:
	cvfs_fs_free(fs);
	inner->ops->free(inner);
}

static void t_lookup_forget(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a, b;
	REQUIRE(fs, "fs");
	OK(cvfs_fs_mknod(fs, &cred, 1, "f", S_IFREG | 0644, 0, &a)); /* 1 reference */
	uint64_t ino = a.ino;
	OK(cvfs_fs_lookup(fs, 1, "f", &b)); /* 2 */
	OK(cvfs_fs_lookup(fs, 1, "f", &b)); /* 3 */
	fake_reset_counts(f);
	OK(cvfs_fs_unlink(fs, 1, "f"));
	CHECK(f->calls[M_INODE_DEL] == 0, "inode deleted with lookups outstanding");
	ERR(look(fs, 1, "f", NULL), ENOENT);
	OK(cvfs_fs_getattr(fs, ino, &b));
	CHECK(b.nlink == 0, "orphan nlink %u", b.nlink);
	/* still usable through its inode number */
	struct cvfs_handle *h = NULL;
	OK(cvfs_fs_open(fs, ino, O_RDWR, &h));
	OK(cvfs_fs_write(fs, h, "abc", 3, 0, 0));
	char buf[8];
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 3 && memcmp(buf, "abc", 3) == 0,
	      "orphan read");
	cvfs_fs_release(fs, h);
	CHECK(f->calls[M_INODE_DEL] == 0, "inode deleted at release with lookups outstanding");
	cvfs_fs_forget(fs, ino, 2);
	CHECK(f->calls[M_INODE_DEL] == 0, "inode deleted with one lookup left");
	OK(cvfs_fs_getattr(fs, ino, &b));
	cvfs_fs_forget(fs, ino, 1);
	CHECK(count_dels(f, ino) == 1, "inode_del called %d times at the last forget",
	      count_dels(f, ino));
	ERR(cvfs_fs_getattr(fs, ino, &b), ENOENT);
	cvfs_fs_forget(fs, ino, 5); /* too many: harmless */
	CHECK(count_dels(f, ino) == 1, "inode_del called again");
	/* without references the inode goes at unlink, once */
	uint64_t g = mkf(fs, 1, "g", "data");
	fake_reset_counts(f);
	OK(cvfs_fs_unlink(fs, 1, "g"));
	CHECK(count_dels(f, g) == 1, "unreferenced unlink: inode_del %d times", count_dels(f, g));
	/* forget with the name still there deletes nothing */
	OK(cvfs_fs_mknod(fs, &cred, 1, "k", S_IFREG | 0644, 0, &a));
	fake_reset_counts(f);
	cvfs_fs_forget(fs, a.ino, 1);
	CHECK(f->calls[M_INODE_DEL] == 0, "forget of a named inode deleted it");
	/* a directory held by lookups survives rmdir until forget */
	OK(cvfs_fs_mknod(fs, &cred, 1, "dd", S_IFDIR | 0755, 0, &a));
	fake_reset_counts(f);
	OK(cvfs_fs_rmdir(fs, 1, "dd"));
	CHECK(f->calls[M_INODE_DEL] == 0, "held directory deleted at rmdir");
	OK(cvfs_fs_getattr(fs, a.ino, &b));
	ERR(cvfs_fs_mknod(fs, &cred, a.ino, "in", S_IFREG | 0644, 0, &b), ENOENT);
	cvfs_fs_forget(fs, a.ino, 1);
	CHECK(count_dels(f, a.ino) == 1, "removed directory inode_del %d", count_dels(f, a.ino));
	FSCK(f);
	/* orphans held at unmount go at cvfs_fs_free */
	OK(cvfs_fs_mknod(fs, &cred, 1, "late", S_IFREG | 0644, 0, &a));
	OK(cvfs_fs_unlink(fs, 1, "late"));
	f->keep_inner = 1;
	struct cvfs_store *inner = f->in;
	fake_reset_counts(f);
	cvfs_fs_free(fs);
	fs = NULL;
	inner->ops->txn_begin(inner, 0);
	int gone = inner->ops->inode_get(inner, a.ino, &b) == -ENOENT;
	inner->ops->txn_end(inner, 1);
	CHECK(gone, "orphan left in the store after cvfs_fs_free");
	inner->ops->free(inner);
out:
	cvfs_fs_free(fs);
}

static void t_open_unlinked(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a, b;
	struct cvfs_handle *h = NULL, *h2 = NULL;
	REQUIRE(fs, "fs");
	OK(cvfs_fs_create(fs, &cred, 1, "f", 0644, O_CREAT | O_RDWR, &a, &h));
	OK(cvfs_fs_write(fs, h, "hello", 5, 0, 0));
	OK(cvfs_fs_open(fs, a.ino, O_RDONLY, &h2));
	cvfs_fs_forget(fs, a.ino, 1); /* the kernel forgets; handles stay */
	fake_reset_counts(f);
	OK(cvfs_fs_unlink(fs, 1, "f"));
	CHECK(f->calls[M_INODE_DEL] == 0, "open file deleted at unlink");
	char buf[16];
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 5 && memcmp(buf, "hello", 5) == 0,
	      "read of an open unlinked file");
	CHECK(cvfs_fs_write(fs, h, " world", 6, 5, 0) == 6, "write of an open unlinked file");
	OK(cvfs_fs_getattr(fs, a.ino, &b));
	CHECK(b.nlink == 0 && b.size == 11, "orphan attrs nlink %u size %" PRIu64, b.nlink, b.size);
	cvfs_fs_release(fs, h);
	h = NULL;
	CHECK(f->calls[M_INODE_DEL] == 0, "deleted with a handle still open");
	CHECK(cvfs_fs_read(fs, h2, buf, sizeof(buf), 0) == 11, "second handle reads");
	cvfs_fs_release(fs, h2);
	h2 = NULL;
	CHECK(count_dels(f, a.ino) == 1, "inode_del %d times at the last release",
	      count_dels(f, a.ino));
	ERR(cvfs_fs_getattr(fs, a.ino, &b), ENOENT);
	/* the same through rename over it */
	uint64_t t = mkf(fs, 1, "target", "T");
	mkf(fs, 1, "src", "S");
	OK(cvfs_fs_open(fs, t, O_RDONLY, &h));
	fake_reset_counts(f);
	OK(cvfs_fs_rename(fs, 1, "src", 1, "target", 0));
	CHECK(f->calls[M_INODE_DEL] == 0, "replaced open file deleted at rename");
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 1 && buf[0] == 'T', "replaced file read");
	cvfs_fs_release(fs, h);
	h = NULL;
	CHECK(count_dels(f, t) == 1, "replaced file inode_del %d", count_dels(f, t));
	FSCK(f);
out:
	if (h)
		cvfs_fs_release(fs, h);
	if (h2)
		cvfs_fs_release(fs, h2);
	cvfs_fs_free(fs);
}

static void t_link_counts(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	uint64_t x = 0;
	REQUIRE(fs, "fs");
	uint64_t A = mkd(fs, 1, "a"), B = mkd(fs, 1, "b");
	CHECK(nlink_of(fs, 1) == 4, "root nlink %u after 2 mkdir", nlink_of(fs, 1));
	uint64_t X = mkd(fs, A, "x");
	CHECK(nlink_of(fs, A) == 3 && nlink_of(fs, X) == 2, "a %u x %u", nlink_of(fs, A),
	      nlink_of(fs, X));
	/* rename a directory across parents */
	OK(cvfs_fs_rename(fs, A, "x", B, "x", 0));
	CHECK(nlink_of(fs, A) == 2 && nlink_of(fs, B) == 3, "after move: a %u b %u",
	      nlink_of(fs, A), nlink_of(fs, B));
	OK(look(fs, X, "..", &x));
	CHECK(x == B, "x/.. is %" PRIu64 ", want b", x);
	FSCK(f);
	OK(cvfs_fs_rmdir(fs, B, "x"));
	CHECK(nlink_of(fs, B) == 2, "b %u after rmdir", nlink_of(fs, B));
	/* hard links */
	uint64_t F1 = mkf(fs, A, "f", "1");
	OK(cvfs_fs_link(fs, F1, B, "f2", &a));
	cvfs_fs_forget(fs, F1, 1);
	CHECK(a.nlink == 2 && nlink_of(fs, F1) == 2, "link: nlink %u", a.nlink);
	CHECK(nlink_of(fs, B) == 2, "a file link changed the directory's nlink");
	OK(cvfs_fs_link(fs, F1, A, "f3", &a));
	cvfs_fs_forget(fs, F1, 1);
	CHECK(nlink_of(fs, F1) == 3, "3 names: nlink %u", nlink_of(fs, F1));
	OK(cvfs_fs_unlink(fs, A, "f"));
	CHECK(nlink_of(fs, F1) == 2, "after unlink nlink %u", nlink_of(fs, F1));
	/* rename a file over one of its own names' siblings */
	uint64_t G = mkf(fs, B, "g", "g");
	OK(cvfs_fs_rename(fs, B, "g", A, "f3", 0)); /* replaces a name of F1 */
	CHECK(nlink_of(fs, F1) == 1, "F1 after losing a name to rename: %u", nlink_of(fs, F1));
	CHECK(nlink_of(fs, G) == 1, "G %u", nlink_of(fs, G));
	FSCK(f);
	/* RENAME_EXCHANGE of a directory and a file across parents */
	uint64_t D1 = mkd(fs, A, "d1");
	CHECK(nlink_of(fs, A) == 3, "a %u", nlink_of(fs, A));
	OK(cvfs_fs_rename(fs, A, "d1", B, "f2", RENAME_EXCHANGE));
	CHECK(nlink_of(fs, A) == 2 && nlink_of(fs, B) == 3, "exchange dir<->file: a %u b %u",
	      nlink_of(fs, A), nlink_of(fs, B));
	OK(look(fs, B, "f2", &x));
	CHECK(x == D1, "b/f2 is now the directory");
	OK(look(fs, D1, "..", &x));
	CHECK(x == B, "exchanged directory's .. is %" PRIu64, x);
	OK(look(fs, A, "d1", &x));
	CHECK(x == F1, "a/d1 is now the file");
	FSCK(f);
	/* exchange two directories across parents: counts unchanged */
	uint64_t D2 = mkd(fs, A, "d2");
	uint64_t na = nlink_of(fs, A), nb = nlink_of(fs, B);
	OK(cvfs_fs_rename(fs, A, "d2", B, "f2", RENAME_EXCHANGE));
	CHECK(nlink_of(fs, A) == na && nlink_of(fs, B) == nb, "exchange dir<->dir changed counts");
	OK(look(fs, D2, "..", &x));
	CHECK(x == B, "d2/.. %" PRIu64, x);
	OK(look(fs, D1, "..", &x));
	CHECK(x == A, "d1/.. %" PRIu64, x);
	FSCK(f);
	/* rename a directory over an empty directory across parents */
	uint64_t E = mkd(fs, B, "empty");
	na = nlink_of(fs, A);
	nb = nlink_of(fs, B);
	fake_reset_counts(f);
	OK(cvfs_fs_rename(fs, A, "d2", B, "empty", 0)); /* a/d2 is D1 now */
	CHECK(nlink_of(fs, A) == na - 1 && nlink_of(fs, B) == nb,
	      "dir over empty dir across parents: a %u (want %" PRIu64 ") b %u (want %" PRIu64 ")",
	      nlink_of(fs, A), na - 1, nlink_of(fs, B), nb);
	CHECK(count_dels(f, E) == 1, "replaced directory deleted %d times", count_dels(f, E));
	FSCK(f);
	/* ...and within one parent */
	mkd(fs, A, "p");
	mkd(fs, A, "q");
	na = nlink_of(fs, A);
	OK(cvfs_fs_rename(fs, A, "p", A, "q", 0));
	CHECK(nlink_of(fs, A) == na - 1,
	      "dir over empty dir in the same parent: parent nlink %u, want %" PRIu64,
	      nlink_of(fs, A), na - 1);
	FSCK(f);
	/* a file over a file: the old one loses its name */
	uint64_t o1 = mkf(fs, A, "o1", "1"), o2 = mkf(fs, A, "o2", "2");
	fake_reset_counts(f);
	OK(cvfs_fs_rename(fs, A, "o1", A, "o2", 0));
	CHECK(count_dels(f, o2) == 1, "replaced file deleted %d times", count_dels(f, o2));
	OK(look(fs, A, "o2", &x));
	CHECK(x == o1, "o2 is o1");
	ERR(look(fs, A, "o1", NULL), ENOENT);
	/* two names of the same inode: a no-op */
	OK(cvfs_fs_link(fs, o1, A, "o3", &a));
	cvfs_fs_forget(fs, o1, 1);
	OK(cvfs_fs_rename(fs, A, "o2", A, "o3", 0));
	OK(look(fs, A, "o2", &x));
	OK(look(fs, A, "o3", &x));
	CHECK(nlink_of(fs, o1) == 2, "rename between two names of one file: nlink %u",
	      nlink_of(fs, o1));
	OK(cvfs_fs_rename(fs, A, "o2", A, "o3", RENAME_EXCHANGE));
	CHECK(nlink_of(fs, o1) == 2, "exchange of two names of one file: nlink %u", nlink_of(fs, o1));
	/* same name: no-op */
	OK(cvfs_fs_rename(fs, A, "o2", A, "o2", 0));
	OK(look(fs, A, "o2", &x));
	/* mkdir/rmdir in a subdirectory touch only its parent */
	uint64_t s = mkd(fs, B, "s");
	uint32_t nr = nlink_of(fs, 1);
	mkd(fs, s, "t");
	CHECK(nlink_of(fs, s) == 3 && nlink_of(fs, 1) == nr, "nested mkdir counts");
	OK(cvfs_fs_rmdir(fs, s, "t"));
	CHECK(nlink_of(fs, s) == 2, "nested rmdir: %u", nlink_of(fs, s));
	FSCK(f);
out:
	cvfs_fs_free(fs);
}

static void t_rename_errors(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	REQUIRE(fs, "fs");
	uint64_t A = mkd(fs, 1, "a"), B = mkd(fs, 1, "b");
	uint64_t AS = mkd(fs, A, "sub");
	uint64_t ASS = mkd(fs, AS, "deep");
	mkf(fs, B, "full-file", "x");
	mkd(fs, 1, "empty");
	mkf(fs, 1, "file", "f");
	mkf(fs, 1, "file2", "g");
	char *before = dump_tree(f);
	ERR(cvfs_fs_rename(fs, 1, "a", 1, "b", 0), ENOTEMPTY);
	ERR(cvfs_fs_rename(fs, 1, "file", 1, "empty", 0), EISDIR);
	ERR(cvfs_fs_rename(fs, 1, "empty", 1, "file", 0), ENOTDIR);
	ERR(cvfs_fs_rename(fs, 1, "a", A, "a", 0), EINVAL);
	ERR(cvfs_fs_rename(fs, 1, "a", ASS, "x", 0), EINVAL);
	ERR(cvfs_fs_rename(fs, A, "sub", ASS, "x", 0), EINVAL);
	ERR(cvfs_fs_rename(fs, 1, "a", AS, "a", RENAME_EXCHANGE), ENOENT); /* no target */
	ERR(cvfs_fs_rename(fs, A, "sub", 1, "a", RENAME_EXCHANGE), EINVAL); /* a into its subtree */
	ERR(cvfs_fs_rename(fs, 1, "file", 1, "file2", RENAME_NOREPLACE), EEXIST);
	ERR(cvfs_fs_rename(fs, 1, "empty", 1, "a", RENAME_NOREPLACE), EEXIST);
	ERR(cvfs_fs_rename(fs, 1, "nope", 1, "x", 0), ENOENT);
	ERR(cvfs_fs_rename(fs, 1, "file", 77777, "x", 0), ENOENT);
	ERR(cvfs_fs_rename(fs, 1, "file", 1, "file2", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
	ERR(cvfs_fs_rename(fs, 1, "file", 1, "file2", 1u << 7), EINVAL);
	ERR(cvfs_fs_rename(fs, 1, "file", 1, ".", 0), EBUSY);
	ERR(cvfs_fs_rename(fs, 1, "file", 1, "a/b", 0), EINVAL);
	char *after = dump_tree(f);
	CHECK(strcmp(before, after) == 0, "a failed rename changed the tree");
	free(before);
	free(after);
	/* NOREPLACE to a free name works */
	OK(cvfs_fs_rename(fs, 1, "file", B, "moved", RENAME_NOREPLACE));
	FSCK(f);
out:
	cvfs_fs_free(fs);
}

static void t_create_trunc(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a, b;
	struct cvfs_handle *h = NULL, *h2 = NULL;
	char buf[64];
	REQUIRE(fs, "fs");
	OK(cvfs_fs_create(fs, &cred, 1, "c", 0640, O_CREAT | O_EXCL | O_RDWR, &a, &h));
	CHECK(a.mode == (S_IFREG | 0640) && a.nlink == 1 && a.size == 0, "new file attrs mode %o",
	      a.mode);
	CHECK(a.uid == cred.uid && a.gid == cred.gid, "owner %u:%u", a.uid, a.gid);
	CHECK(h && h->ino == a.ino, "handle");
	OK(cvfs_fs_write(fs, h, "0123456789", 10, 0, 0));
	cvfs_fs_release(fs, h);
	h = NULL;
	ERR(cvfs_fs_create(fs, &cred, 1, "c", 0640, O_CREAT | O_EXCL | O_RDWR, &b, &h), EEXIST);
	CHECK(h == NULL, "handle set on failure");
	/* without O_EXCL: the existing file, untouched */
	OK(cvfs_fs_create(fs, &cred, 1, "c", 0600, O_CREAT | O_RDWR, &b, &h));
	CHECK(b.ino == a.ino && b.size == 10 && b.mode == (S_IFREG | 0640),
	      "create of an existing file: ino %" PRIu64 " size %" PRIu64 " mode %o", b.ino, b.size,
	      b.mode);
	cvfs_fs_release(fs, h);
	h = NULL;
	/* with O_TRUNC: emptied */
	OK(cvfs_fs_create(fs, &cred, 1, "c", 0600, O_CREAT | O_RDWR | O_TRUNC, &b, &h));
	CHECK(b.ino == a.ino && b.size == 0, "O_TRUNC: size %" PRIu64, b.size);
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 0, "data after O_TRUNC");
	OK(cvfs_fs_write(fs, h, "xy", 2, 6, 0));
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 8 && memcmp(buf, "\0\0\0\0\0\0xy", 8) == 0,
	      "re-extended after O_TRUNC must read zeros");
	cvfs_fs_release(fs, h);
	h = NULL;
	/* open with O_TRUNC */
	OK(cvfs_fs_open(fs, a.ino, O_WRONLY | O_TRUNC, &h));
	OK(cvfs_fs_getattr(fs, a.ino, &b));
	CHECK(b.size == 0, "open O_TRUNC: size %" PRIu64, b.size);
	cvfs_fs_release(fs, h);
	h = NULL;
	/* create over a directory, through a non-directory, in a missing directory */
	mkd(fs, 1, "d");
	ERR(cvfs_fs_create(fs, &cred, 1, "d", 0644, O_CREAT | O_RDWR, &b, &h), EISDIR);
	ERR(cvfs_fs_create(fs, &cred, a.ino, "x", 0644, O_CREAT | O_RDWR, &b, &h), ENOTDIR);
	ERR(cvfs_fs_create(fs, &cred, 999999, "x", 0644, O_CREAT | O_RDWR, &b, &h), ENOENT);
	ERR(cvfs_fs_create(fs, &cred, 1, ".", 0644, O_CREAT | O_RDWR, &b, &h), EEXIST);
	char longname[300];
	memset(longname, 'n', 256);
	longname[256] = 0;
	ERR(cvfs_fs_create(fs, &cred, 1, longname, 0644, O_CREAT, &b, &h), ENAMETOOLONG);
	longname[255] = 0;
	OK(cvfs_fs_create(fs, &cred, 1, longname, 0644, O_CREAT | O_RDWR, &b, &h));
	cvfs_fs_release(fs, h);
	h = NULL;
	cvfs_fs_forget(fs, b.ino, 1);
	/* create counts a reference: unlink keeps it until forget */
	OK(cvfs_fs_create(fs, &cred, 1, "r", 0644, O_CREAT | O_RDWR, &b, &h));
	cvfs_fs_release(fs, h);
	h = NULL;
	fake_reset_counts(f);
	OK(cvfs_fs_unlink(fs, 1, "r"));
	CHECK(f->calls[M_INODE_DEL] == 0, "create did not count a lookup reference");
	cvfs_fs_forget(fs, b.ino, 1);
	CHECK(count_dels(f, b.ino) == 1, "inode_del %d", count_dels(f, b.ino));
	cvfs_fs_forget(fs, a.ino, 3);
	/* symlinks and special files */
	OK(cvfs_fs_symlink(fs, &cred, 1, "ln", "some/where", &b));
	CHECK(S_ISLNK(b.mode) && b.size == 10, "symlink attrs");
	CHECK(cvfs_fs_readlink(fs, b.ino, buf, sizeof(buf)) == 10 && memcmp(buf, "some/where", 10) == 0,
	      "readlink");
	ERR(cvfs_fs_open(fs, b.ino, O_RDONLY, &h), ELOOP);
	cvfs_fs_forget(fs, b.ino, 1);
	OK(cvfs_fs_mknod(fs, &cred, 1, "fifo", S_IFIFO | 0600, 0, &b));
	cvfs_fs_forget(fs, b.ino, 1);
	OK(cvfs_fs_mknod(fs, &cred, 1, "chr", S_IFCHR | 0600, 0x0103, &b));
	CHECK(b.rdev == 0x0103, "rdev");
	cvfs_fs_forget(fs, b.ino, 1);
	FSCK(f);
out:
	if (h)
		cvfs_fs_release(fs, h);
	if (h2)
		cvfs_fs_release(fs, h2);
	cvfs_fs_free(fs);
}

static void t_read_write(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a, b;
	struct cvfs_handle *h = NULL, *dh = NULL;
	char buf[64];
	REQUIRE(fs, "fs");
	OK(cvfs_fs_create(fs, &cred, 1, "f", 0644, O_CREAT | O_RDWR, &a, &h));
	CHECK(cvfs_fs_write(fs, h, "hello", 5, 0, 0) == 5, "write");
	CHECK(cvfs_fs_write(fs, h, "world", 5, 10, 0) == 5, "write past the end");
	OK(cvfs_fs_getattr(fs, a.ino, &b));
	CHECK(b.size == 15, "size %" PRIu64, b.size);
	CHECK(b.mtime_ns >= a.mtime_ns && b.ctime_ns == b.mtime_ns, "write sets mtime and ctime");
	memset(buf, 'x', sizeof(buf));
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 15 &&
		      memcmp(buf, "hello\0\0\0\0\0world", 15) == 0,
	      "read with a gap");
	CHECK(cvfs_fs_write(fs, h, "!", 1, 0, 1) == 1, "append");
	CHECK(cvfs_fs_write(fs, h, "?", 1, 3, 1) == 1, "append ignores off");
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 17 && memcmp(buf + 15, "!?", 2) == 0,
	      "appended bytes at the end");
	CHECK(cvfs_fs_read(fs, h, buf, 4, 14) == 3, "short read at the end");
	CHECK(cvfs_fs_read(fs, h, buf, 4, 17) == 0, "read at EOF");
	CHECK(cvfs_fs_read(fs, h, buf, 4, 1000) == 0, "read past EOF");
	CHECK(cvfs_fs_write(fs, h, "", 0, 100, 0) == 0, "empty write");
	OK(cvfs_fs_getattr(fs, a.ino, &b));
	CHECK(b.size == 17, "an empty write changed the size to %" PRIu64, b.size);
	ERR(cvfs_fs_write(fs, h, "x", 1, UINT64_MAX, 0), EFBIG);
	/* a large write across chunks */
	static char big[300000], back[300000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 13 + 1);
	CHECK(cvfs_fs_write(fs, h, big, sizeof(big), 65530, 0) == (ssize_t)sizeof(big), "big write");
	CHECK(cvfs_fs_read(fs, h, back, sizeof(back), 65530) == (ssize_t)sizeof(back) &&
		      memcmp(big, back, sizeof(big)) == 0,
	      "big read");
	/* directories */
	OK(cvfs_fs_opendir(fs, 1, &dh));
	ERR(cvfs_fs_read(fs, dh, buf, 4, 0), EISDIR);
	ERR(cvfs_fs_write(fs, dh, buf, 4, 0, 0), EISDIR);
	ERR(cvfs_fs_open(fs, 1, O_WRONLY, &h), EISDIR);
	ERR(cvfs_fs_opendir(fs, a.ino, &dh), ENOTDIR);
	OK(cvfs_fs_fsync(fs, h, 0));
	OK(cvfs_fs_flush(fs, h));
	FSCK(f);
out:
	if (h)
		cvfs_fs_release(fs, h);
	if (dh)
		cvfs_fs_releasedir(fs, dh);
	if (fs)
		cvfs_fs_forget(fs, a.ino, 1);
	cvfs_fs_free(fs);
}

static void t_setattr(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr in, out, cur;
	struct cvfs_handle *h = NULL;
	REQUIRE(fs, "fs");
	uint64_t ino = mkf(fs, 1, "f", "0123456789");
	memset(&in, 0, sizeof(in));
	int64_t t0 = cvfs_now_ns();
	in.mode = S_IFDIR | 04711; /* the type bits are ignored */
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_MODE, &out));
	CHECK(out.mode == (S_IFREG | 04711), "mode %o", out.mode);
	CHECK(out.ctime_ns >= t0, "mode change did not update ctime");
	in.uid = 4000000000u;
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_UID, &out));
	CHECK(out.uid == 4000000000u && out.gid == cred.gid, "uid %u gid %u", out.uid, out.gid);
	in.gid = 77;
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_GID, &out));
	CHECK(out.uid == 4000000000u && out.gid == 77, "gid %u", out.gid);
	in.atime_ns = -1234567890123456789LL;
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_ATIME, &out));
	OK(cvfs_fs_getattr(fs, ino, &cur));
	CHECK(cur.atime_ns == in.atime_ns, "atime %" PRId64, cur.atime_ns);
	int64_t mt = cur.mtime_ns;
	CHECK(cur.mtime_ns == mt, "mtime changed by SET_ATIME");
	in.mtime_ns = 1700000000123456789LL;
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_MTIME, &out));
	OK(cvfs_fs_getattr(fs, ino, &cur));
	CHECK(cur.mtime_ns == 1700000000123456789LL, "mtime kept to the nanosecond: %" PRId64,
	      cur.mtime_ns);
	CHECK(cur.atime_ns == in.atime_ns, "atime changed by SET_MTIME");
	CHECK(cur.ctime_ns >= t0, "ctime not updated by a time change");
	int64_t t1 = cvfs_now_ns();
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_ATIME_NOW | CVFS_SET_ATIME, &out));
	CHECK(out.atime_ns >= t1 && out.atime_ns <= cvfs_now_ns(), "ATIME_NOW");
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_MTIME_NOW | CVFS_SET_MTIME, &out));
	CHECK(out.mtime_ns >= t1 && out.mtime_ns <= cvfs_now_ns(), "MTIME_NOW");
	in.ctime_ns = 5;
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_CTIME, &out));
	OK(cvfs_fs_getattr(fs, ino, &cur));
	CHECK(cur.ctime_ns == 5, "explicit ctime %" PRId64, cur.ctime_ns);
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, 0, &out));
	CHECK(out.ctime_ns >= t1, "an empty setattr left ctime %" PRId64, out.ctime_ns);
	/* size */
	in.size = 4;
	t1 = cvfs_now_ns();
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_SIZE, &out));
	CHECK(out.size == 4 && out.mtime_ns >= t1, "shrink: size %" PRIu64, out.size);
	in.size = 70000;
	OK(cvfs_fs_setattr(fs, &cred, ino, &in, CVFS_SET_SIZE, &out));
	CHECK(out.size == 70000, "grow: size %" PRIu64, out.size);
	OK(cvfs_fs_open(fs, ino, O_RDONLY, &h));
	static char buf[70000];
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 70000, "read grown file");
	CHECK(memcmp(buf, "0123", 4) == 0, "kept bytes");
	int z = 1;
	for (size_t i = 4; i < sizeof(buf); i++)
		z &= buf[i] == 0;
	CHECK(z, "bytes cut by a shrink came back after a grow");
	uint64_t d = mkd(fs, 1, "d");
	in.size = 0;
	ERR(cvfs_fs_setattr(fs, &cred, d, &in, CVFS_SET_SIZE, &out), EISDIR);
	OK(cvfs_fs_mknod(fs, &cred, 1, "p", S_IFIFO | 0600, 0, &out));
	cvfs_fs_forget(fs, out.ino, 1);
	ERR(cvfs_fs_setattr(fs, &cred, out.ino, &in, CVFS_SET_SIZE, &out), EINVAL);
	ERR(cvfs_fs_setattr(fs, &cred, 99999, &in, CVFS_SET_MODE, &out), ENOENT);
	/* a directory's mode */
	in.mode = 0700;
	OK(cvfs_fs_setattr(fs, &cred, d, &in, CVFS_SET_MODE, &out));
	CHECK(out.mode == (S_IFDIR | 0700) && out.nlink == 2, "dir mode %o", out.mode);
	FSCK(f);
out:
	if (h)
		cvfs_fs_release(fs, h);
	cvfs_fs_free(fs);
}

static void fallocate_cases(int hide)
{
	struct fake *f = fake_new(NULL, hide);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	struct cvfs_handle *h = NULL;
	static char buf[200000];
	REQUIRE(fs, "fs");
	uint64_t ino = mkf(fs, 1, "f", "");
	OK(cvfs_fs_open(fs, ino, O_RDWR, &h));
	memset(buf, 'a', sizeof(buf));
	OK(cvfs_fs_write(fs, h, buf, 150000, 0, 0));
	OK(cvfs_fs_fallocate(fs, ino, 0, 140000, 20000));
	OK(cvfs_fs_getattr(fs, ino, &a));
	CHECK(a.size == 160000, "plain fallocate extends: %" PRIu64, a.size);
	OK(cvfs_fs_fallocate(fs, ino, FALLOC_FL_KEEP_SIZE, 0, 500000));
	OK(cvfs_fs_getattr(fs, ino, &a));
	CHECK(a.size == 160000, "KEEP_SIZE changed the size: %" PRIu64, a.size);
	memset(buf, 1, sizeof(buf));
	CHECK(cvfs_fs_read(fs, h, buf, 160000, 0) == 160000, "read");
	int okb = 1;
	for (int i = 0; i < 160000; i++)
		okb &= buf[i] == (i < 150000 ? 'a' : 0);
	CHECK(okb, "fallocate changed data or the new range is not zeros");
	fake_reset_counts(f);
	OK(cvfs_fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65000, 70000));
	CHECK((hide & NO_PUNCH) ? f->calls[M_WRITE] > 0 : f->calls[M_PUNCH] == 1,
	      "punch %ld write %ld", f->calls[M_PUNCH], f->calls[M_WRITE]);
	OK(cvfs_fs_getattr(fs, ino, &a));
	CHECK(a.size == 160000, "punch changed the size");
	CHECK(cvfs_fs_read(fs, h, buf, 160000, 0) == 160000, "read");
	okb = 1;
	for (int i = 0; i < 160000; i++)
		okb &= buf[i] == ((i < 65000 || i >= 135000) && i < 150000 ? 'a' : 0);
	CHECK(okb, "punch did not zero exactly [65000, 135000)");
	OK(cvfs_fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 10, 10));
	CHECK(cvfs_fs_read(fs, h, buf, 30, 0) == 30, "read");
	okb = 1;
	for (int i = 0; i < 30; i++)
		okb &= buf[i] == ((i >= 10 && i < 20) ? 0 : 'a');
	CHECK(okb, "ZERO_RANGE");
	OK(cvfs_fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 159990, 20));
	OK(cvfs_fs_getattr(fs, ino, &a));
	CHECK(a.size == 160010, "ZERO_RANGE past the end extends: %" PRIu64, a.size);
	/* punch past the end: nothing changes */
	OK(cvfs_fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 500000, 10));
	OK(cvfs_fs_getattr(fs, ino, &a));
	CHECK(a.size == 160010, "punch past the end changed the size");
	ERR(cvfs_fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
	ERR(cvfs_fs_fallocate(fs, ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
	ERR(cvfs_fs_fallocate(fs, ino, FALLOC_FL_INSERT_RANGE, 0, 4096), EOPNOTSUPP);
	ERR(cvfs_fs_fallocate(fs, ino, 0, UINT64_MAX - 5, 10), EFBIG);
	ERR(cvfs_fs_fallocate(fs, 1, 0, 0, 10), EISDIR);
	FSCK(f);
out:
	if (h)
		cvfs_fs_release(fs, h);
	cvfs_fs_free(fs);
}

static void t_fallocate(void)
{
	fallocate_cases(0);
}

static void t_fallocate_nopunch(void)
{
	fallocate_cases(NO_PUNCH);
}

struct rd_ent {
	char name[CVFS_NAME_MAX + 1];
	struct cvfs_attr a;
	uint64_t next;
};
struct rd {
	struct rd_ent v[256];
	int n;
	int take;      /* stop after taking this many (-1: all) */
	int refuse_at; /* refuse the entry with this index (-1: none) */
	int seen;      /* entries offered */
};

static int rd_fill(void *arg, const char *name, size_t len, const struct cvfs_attr *a,
		   uint64_t next)
{
	struct rd *r = arg;
	int idx = r->seen++;
	if (r->refuse_at == idx || (r->take >= 0 && r->n >= r->take) || r->n >= 256)
		return 1;
	memcpy(r->v[r->n].name, name, len);
	r->v[r->n].name[len] = 0;
	r->v[r->n].a = *a;
	r->v[r->n].next = next;
	r->n++;
	return 0;
}

static int readdir_all(struct cvfs_fs *fs, uint64_t dir, uint64_t off, int plus, int take,
		       struct rd *r)
{
	memset(r, 0, sizeof(*r));
	r->take = take;
	r->refuse_at = -1;
	return cvfs_fs_readdir(fs, dir, off, plus, rd_fill, r);
}

static void t_readdir(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	static struct rd r, r2;
	REQUIRE(fs, "fs");
	uint64_t D = mkd(fs, 1, "d");
	const char *names[] = {"e1", "e2", "e3", "sub", "e5"};
	uint64_t inos[5];
	for (int i = 0; i < 5; i++)
		inos[i] = i == 3 ? mkd(fs, D, names[i]) : mkf(fs, D, names[i], "abc");
	for (int plus = 0; plus < 2; plus++) {
		OK(readdir_all(fs, D, 0, plus, -1, &r));
		CHECK(r.n == 7, "plus=%d: %d entries, want 7", plus, r.n);
		CHECK(strcmp(r.v[0].name, ".") == 0 && r.v[0].a.ino == D && r.v[0].next == 1,
		      "plus=%d: first is . (next %" PRIu64 ")", plus, r.v[0].next);
		CHECK(strcmp(r.v[1].name, "..") == 0 && r.v[1].a.ino == 1 && r.v[1].next == 2,
		      "plus=%d: second is ..", plus);
		CHECK(S_ISDIR(r.v[0].a.mode) && S_ISDIR(r.v[1].a.mode), "dots are directories");
		for (int i = 0; i < 5; i++) {
			int seen = 0;
			for (int j = 2; j < r.n; j++)
				if (strcmp(r.v[j].name, names[i]) == 0) {
					seen++;
					CHECK(r.v[j].a.ino == inos[i], "%s ino", names[i]);
					CHECK((r.v[j].a.mode & S_IFMT) == (i == 3 ? S_IFDIR : S_IFREG),
					      "%s type %o", names[i], r.v[j].a.mode);
					if (plus)
						CHECK(r.v[j].a.nlink == (i == 3 ? 2u : 1u) &&
							      r.v[j].a.size == (i == 3 ? 0u : 3u),
						      "plus attrs of %s: nlink %u size %" PRIu64,
						      names[i], r.v[j].a.nlink, r.v[j].a.size);
				}
			CHECK(seen == 1, "plus=%d: %s listed %d times", plus, names[i], seen);
		}
		for (int j = 1; j < r.n; j++)
			CHECK(r.v[j].next > r.v[j - 1].next, "offsets not increasing");
		/* resume from every offset */
		for (int k = 0; k < r.n; k++) {
			OK(readdir_all(fs, D, r.v[k].next, plus, -1, &r2));
			CHECK(r2.n == r.n - k - 1, "plus=%d from off %" PRIu64 ": %d entries, want %d",
			      plus, r.v[k].next, r2.n, r.n - k - 1);
			for (int j = 0; j < r2.n && j + k + 1 < r.n; j++)
				CHECK(strcmp(r2.v[j].name, r.v[k + 1 + j].name) == 0,
				      "resume order differs");
		}
		/* a full buffer after each entry: paging gives the same list */
		uint64_t off = 0;
		int got = 0;
		for (int guard = 0; guard < 50; guard++) {
			OK(readdir_all(fs, D, off, plus, 1, &r2));
			if (r2.n == 0)
				break;
			CHECK(strcmp(r2.v[0].name, r.v[got].name) == 0, "paging differs at %d", got);
			off = r2.v[0].next;
			got++;
		}
		CHECK(got == r.n, "paging one entry at a time gave %d of %d", got, r.n);
		if (plus) /* drop the references the plus listings took */
			for (int i = 0; i < 5; i++)
				cvfs_fs_forget(fs, inos[i], (uint64_t)(1 + r.n + r.n - 2));
	}
	/* plus counts a reference for each entry taken, not for refused ones */
	uint64_t P = mkd(fs, 1, "p");
	uint64_t p1 = mkf(fs, P, "p1", "x");
	uint64_t p2 = mkf(fs, P, "p2", "x");
	memset(&r, 0, sizeof(r));
	r.take = -1;
	r.refuse_at = 3; /* ".", "..", the first entry taken; the second refused */
	OK(cvfs_fs_readdir(fs, P, 0, 1, rd_fill, &r));
	REQUIRE(r.n == 3, "took %d", r.n);
	uint64_t taken = strcmp(r.v[2].name, "p1") == 0 ? p1 : p2;
	uint64_t refused = taken == p1 ? p2 : p1;
	fake_reset_counts(f);
	OK(cvfs_fs_unlink(fs, P, "p1"));
	OK(cvfs_fs_unlink(fs, P, "p2"));
	CHECK(count_dels(f, refused) == 1, "a refused plus entry counted a reference");
	CHECK(count_dels(f, taken) == 0, "a taken plus entry did not count a reference");
	cvfs_fs_forget(fs, taken, 1);
	CHECK(count_dels(f, taken) == 1, "forget after plus: inode_del %d", count_dels(f, taken));
	/* plain mode counts nothing */
	uint64_t q = mkf(fs, P, "q", "x");
	OK(readdir_all(fs, P, 0, 0, -1, &r));
	fake_reset_counts(f);
	OK(cvfs_fs_unlink(fs, P, "q"));
	CHECK(count_dels(f, q) == 1, "plain readdir counted a reference");
	/* a full buffer at "." or ".." */
	OK(readdir_all(fs, D, 0, 0, 0, &r));
	CHECK(r.n == 0, "nothing fits, %d taken", r.n);
	OK(readdir_all(fs, D, 1, 0, -1, &r));
	CHECK(r.n == 6 && strcmp(r.v[0].name, "..") == 0, "from 1: ..");
	OK(readdir_all(fs, D, 2, 0, -1, &r));
	CHECK(r.n == 5, "from 2: %d entries", r.n);
	/* the root's ".." is itself */
	OK(readdir_all(fs, 1, 0, 1, 2, &r));
	CHECK(r.n == 2 && r.v[1].a.ino == 1 && r.v[1].a.nlink == nlink_of(fs, 1), "root ..");
	ERR(readdir_all(fs, inos[0], 0, 0, -1, &r), ENOTDIR);
	/* an empty directory: just the dots */
	uint64_t E = mkd(fs, 1, "empty");
	OK(readdir_all(fs, E, 0, 1, -1, &r));
	CHECK(r.n == 2, "empty directory: %d entries", r.n);
	FSCK(f);
out:
	cvfs_fs_free(fs);
}

static void t_readonly(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_store *inner = f->in;
	f->keep_inner = 1;
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	struct cvfs_handle *h = NULL;
	char buf[16];
	REQUIRE(fs, "fs");
	uint64_t D = mkd(fs, 1, "d");
	uint64_t F1 = mkf(fs, 1, "f", "data");
	mkd(fs, D, "sub");
	OK(cvfs_fs_setxattr(fs, F1, "user.k", "v", 1, 0));
	cvfs_fs_free(fs);
	f = fake_new(inner, 0);
	f->keep_inner = 1;
	struct cvfs_fs_config ro = {.readonly = 1};
	fs = fs_open(f, &ro);
	REQUIRE(fs, "fs");
	CHECK(cvfs_fs_readonly(fs), "cvfs_fs_readonly");
	char *before = dump_tree(f);
	fake_reset_counts(f);
	struct cvfs_attr in = {0};
	ERR(cvfs_fs_setattr(fs, &cred, F1, &in, CVFS_SET_MODE, &a), EROFS);
	ERR(cvfs_fs_setattr(fs, &cred, F1, &in, CVFS_SET_SIZE, &a), EROFS);
	ERR(cvfs_fs_setattr(fs, &cred, F1, &in, CVFS_SET_ATIME_NOW, &a), EROFS);
	ERR(cvfs_fs_mknod(fs, &cred, 1, "n", S_IFREG | 0644, 0, &a), EROFS);
	ERR(cvfs_fs_mknod(fs, &cred, 1, "n", S_IFDIR | 0755, 0, &a), EROFS);
	ERR(cvfs_fs_symlink(fs, &cred, 1, "s", "t", &a), EROFS);
	ERR(cvfs_fs_link(fs, F1, 1, "l", &a), EROFS);
	ERR(cvfs_fs_unlink(fs, 1, "f"), EROFS);
	ERR(cvfs_fs_rmdir(fs, D, "sub"), EROFS);
	ERR(cvfs_fs_rename(fs, 1, "f", 1, "g", 0), EROFS);
	ERR(cvfs_fs_rename(fs, 1, "f", 1, "d", RENAME_EXCHANGE), EROFS);
	ERR(cvfs_fs_create(fs, &cred, 1, "c", 0644, O_CREAT | O_RDWR, &a, &h), EROFS);
	ERR(cvfs_fs_open(fs, F1, O_WRONLY, &h), EROFS);
	ERR(cvfs_fs_open(fs, F1, O_RDWR, &h), EROFS);
	ERR(cvfs_fs_open(fs, F1, O_WRONLY | O_TRUNC, &h), EROFS);
	ERR(cvfs_fs_fallocate(fs, F1, 0, 0, 100), EROFS);
	ERR(cvfs_fs_setxattr(fs, F1, "user.k", "w", 1, 0), EROFS);
	ERR(cvfs_fs_removexattr(fs, F1, "user.k"), EROFS);
	OK(cvfs_fs_open(fs, F1, O_RDONLY, &h));
	ERR(cvfs_fs_write(fs, h, "x", 1, 0, 0), EROFS);
	ERR(cvfs_fs_write(fs, h, "x", 1, 0, 1), EROFS);
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 4, "read on a readonly fs");
	cvfs_fs_release(fs, h);
	h = NULL;
	CHECK(f->wtxns == 0, "%ld write transactions on a readonly fs", f->wtxns);
	CHECK(f->calls[M_INODE_PUT] + f->calls[M_DENT_PUT] + f->calls[M_DENT_DEL] +
			      f->calls[M_WRITE] + f->calls[M_SETX] + f->calls[M_INODE_DEL] ==
		      0,
	      "a store mutation on a readonly fs");
	/* reads still work */
	OK(look(fs, 1, "d", NULL));
	static struct rd r;
	OK(readdir_all(fs, 1, 0, 1, -1, &r));
	CHECK(r.n == 4, "readdir %d", r.n);
	for (int i = 2; i < r.n; i++)
		cvfs_fs_forget(fs, r.v[i].a.ino, 1);
	CHECK(cvfs_fs_getxattr(fs, F1, "user.k", buf, sizeof(buf)) == 1, "getxattr");
	CHECK(cvfs_fs_listxattr(fs, F1, buf, sizeof(buf)) == 7, "listxattr");
	char *after = dump_tree(f);
	CHECK(strcmp(before, after) == 0, "the readonly fs changed the tree");
	free(before);
	free(after);
	cvfs_fs_free(fs);
	fs = NULL;
	/* readonly over an empty store (a fresh memory store with -r): the root
	 * is made, and it is an empty directory that refuses changes */
	f = fake_new(NULL, 0);
	struct cvfs_fs *fs2 = NULL;
	int rc = cvfs_fs_new(&f->base, &ro, &fs2);
	CHECK(rc == 0 && fs2 != NULL, "readonly over an empty store -> %d", rc);
	if (fs2) {
		struct cvfs_attr ra;
		CHECK(cvfs_fs_getattr(fs2, 1, &ra) == 0 && S_ISDIR(ra.mode) && ra.nlink == 2,
		      "root of a readonly empty store");
		CHECK(cvfs_fs_mknod(fs2, &cred, 1, "x", S_IFREG | 0644, 0, &ra) == -EROFS,
		      "mknod on a readonly empty store");
		cvfs_fs_free(fs2);
	}
out:
	if (h)
		cvfs_fs_release(fs, h);
	cvfs_fs_free(fs);
	inner->ops->free(inner);
}

static void t_xattr(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	char buf[64];
	REQUIRE(fs, "fs");
	uint64_t ino = mkf(fs, 1, "f", "x");
	ERR(cvfs_fs_setxattr(fs, ino, "system.posix_acl_access", "\2\0\0\0", 4, 0), EOPNOTSUPP);
	ERR(cvfs_fs_getxattr(fs, ino, "system.posix_acl_access", buf, sizeof(buf)), ENODATA);
	ERR(cvfs_fs_removexattr(fs, ino, "system.posix_acl_default"), ENODATA);
	ERR(cvfs_fs_setxattr(fs, ino, "", "v", 1, 0), EINVAL);
	char longn[300];
	memset(longn, 'u', sizeof(longn));
	memcpy(longn, "user.", 5);
	longn[256] = 0;
	ERR(cvfs_fs_setxattr(fs, ino, longn, "v", 1, 0), ERANGE);
	static char big[70000];
	ERR(cvfs_fs_setxattr(fs, ino, "user.big", big, sizeof(big), 0), E2BIG);
	struct cvfs_attr b;
	OK(cvfs_fs_getattr(fs, ino, &a));
	OK(cvfs_fs_setxattr(fs, ino, "user.a", "1", 1, XATTR_CREATE));
	OK(cvfs_fs_getattr(fs, ino, &b));
	CHECK(b.ctime_ns >= a.ctime_ns && b.mtime_ns == a.mtime_ns, "setxattr: ctime, not mtime");
	ERR(cvfs_fs_setxattr(fs, ino, "user.a", "2", 1, XATTR_CREATE), EEXIST);
	ERR(cvfs_fs_setxattr(fs, ino, "user.b", "2", 1, XATTR_REPLACE), ENODATA);
	CHECK(cvfs_fs_getxattr(fs, ino, "user.a", NULL, 0) == 1, "size query");
	OK(cvfs_fs_setxattr(fs, ino, "user.b", "22", 2, 0));
	CHECK(cvfs_fs_listxattr(fs, ino, NULL, 0) == 14, "listxattr size");
	ERR(cvfs_fs_listxattr(fs, ino, buf, 5), ERANGE);
	OK(cvfs_fs_removexattr(fs, ino, "user.a"));
	ERR(cvfs_fs_removexattr(fs, ino, "user.a"), ENODATA);
	CHECK(cvfs_fs_listxattr(fs, ino, buf, sizeof(buf)) == 7 && strcmp(buf, "user.b") == 0,
	      "list after remove");
	/* a store without xattrs */
	cvfs_fs_free(fs);
	f = fake_new(NULL, NO_XATTR);
	fs = fs_open(f, NULL);
	REQUIRE(fs, "fs");
	ERR(cvfs_fs_setxattr(fs, 1, "user.a", "1", 1, 0), EOPNOTSUPP);
	ERR(cvfs_fs_getxattr(fs, 1, "user.a", buf, sizeof(buf)), EOPNOTSUPP);
	CHECK(cvfs_fs_listxattr(fs, 1, buf, sizeof(buf)) == 0, "listxattr without xattrs");
	ERR(cvfs_fs_removexattr(fs, 1, "user.a"), EOPNOTSUPP);
out:
	cvfs_fs_free(fs);
}

static void t_statfs(void)
{
	struct fake *f = fake_new(NULL, 0);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_statfs s, s2;
	REQUIRE(fs, "fs");
	OK(cvfs_fs_statfs(fs, &s));
	CHECK(s.bsize > 0 && s.blocks > 0 && s.bfree <= s.blocks && s.bavail <= s.blocks,
	      "statfs blocks");
	CHECK(s.files > 0 && s.ffree <= s.files, "statfs files");
	CHECK(f->calls[M_STATFS] == 1, "statfs forwarded %ld times", f->calls[M_STATFS]);
	mkf(fs, 1, "f", "data");
	OK(cvfs_fs_statfs(fs, &s2));
	CHECK(s2.ffree < s.ffree, "ffree did not go down after a create");
	cvfs_fs_free(fs);
	f = fake_new(NULL, NO_STATFS);
	fs = fs_open(f, NULL);
	REQUIRE(fs, "fs");
	OK(cvfs_fs_statfs(fs, &s));
	CHECK(s.bsize > 0 && s.blocks > 0 && s.files > 0, "statfs fallback");
out:
	cvfs_fs_free(fs);
}

static void t_caps(void)
{
	struct fake *f = fake_new(NULL, NO_DIR_EMPTY);
	f->base.caps &= ~(uint32_t)(CVFS_CAP_HARDLINKS | CVFS_CAP_SPECIAL);
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	REQUIRE(fs, "fs");
	uint64_t ino = mkf(fs, 1, "f", "x");
	ERR(cvfs_fs_link(fs, ino, 1, "g", &a), EPERM);
	ERR(cvfs_fs_mknod(fs, &cred, 1, "p", S_IFIFO | 0600, 0, &a), EPERM);
	OK(cvfs_fs_symlink(fs, &cred, 1, "s", "t", &a));
	cvfs_fs_forget(fs, a.ino, 1);
	/* dir_empty missing: rmdir falls back to dir_list */
	uint64_t D = mkd(fs, 1, "d");
	mkf(fs, D, "x", "");
	ERR(cvfs_fs_rmdir(fs, 1, "d"), ENOTEMPTY);
	OK(cvfs_fs_unlink(fs, D, "x"));
	fake_reset_counts(f);
	OK(cvfs_fs_rmdir(fs, 1, "d"));
	CHECK(f->calls[M_DIR_LIST] >= 1, "fallback did not use dir_list");
	ERR(cvfs_fs_rmdir(fs, 1, "f"), ENOTDIR);
	ERR(cvfs_fs_unlink(fs, 1, "nope"), ENOENT);
	mkd(fs, 1, "d2");
	ERR(cvfs_fs_unlink(fs, 1, "d2"), EISDIR);
	ERR(cvfs_fs_rmdir(fs, 1, "."), EINVAL);
	ERR(cvfs_fs_rmdir(fs, 1, ".."), ENOTEMPTY);
	FSCK(f);
out:
	cvfs_fs_free(fs);
}

/* ---- injected failures ---- */

struct fixture {
	uint64_t A, B, E, N, Z, F1, G;
};

static void build(struct cvfs_fs *fs, struct fixture *x)
{
	x->A = mkd(fs, 1, "a");
	x->B = mkd(fs, 1, "b");
	x->Z = mkd(fs, 1, "z");
	x->E = mkd(fs, x->B, "e");
	x->N = mkd(fs, x->B, "n");
	mkf(fs, x->N, "inside", "i");
	x->F1 = mkf(fs, x->A, "f", "file data");
	x->G = mkf(fs, x->A, "g", "gee");
	struct cvfs_attr a;
	if (cvfs_fs_link(fs, x->F1, x->B, "f-link", &a) == 0)
		cvfs_fs_forget(fs, x->F1, 1);
	cvfs_fs_setxattr(fs, x->G, "user.x", "1", 1, 0);
}

static int op_run(struct cvfs_fs *fs, struct fixture *x, int op)
{
	struct cvfs_attr a, in;
	struct cvfs_handle *h = NULL;
	int rc;
	memset(&in, 0, sizeof(in));
	switch (op) {
	case 0:
		rc = cvfs_fs_mknod(fs, &cred, 1, "new", S_IFDIR | 0755, 0, &a);
		break;
	case 1:
		rc = cvfs_fs_create(fs, &cred, x->A, "c", 0644, O_CREAT | O_RDWR, &a, &h);
		if (rc == 0)
			cvfs_fs_release(fs, h);
		break;
	case 2:
		rc = cvfs_fs_symlink(fs, &cred, 1, "s", "target", &a);
		break;
	case 3:
		rc = cvfs_fs_link(fs, x->F1, x->Z, "f2", &a);
		break;
	case 4:
		return cvfs_fs_unlink(fs, x->A, "g");
	case 5:
		return cvfs_fs_rmdir(fs, x->B, "e");
	case 6:
		return cvfs_fs_rename(fs, x->A, "g", x->B, "g3", 0);
	case 7:
		return cvfs_fs_rename(fs, x->A, "g", x->A, "f", 0);
	case 8:
		return cvfs_fs_rename(fs, 1, "a", x->Z, "a2", 0);
	case 9:
		return cvfs_fs_rename(fs, x->B, "e", 1, "z", 0);
	case 10:
		return cvfs_fs_rename(fs, x->A, "g", x->B, "n", RENAME_EXCHANGE);
	case 11:
		rc = cvfs_fs_open(fs, x->G, O_RDWR, &h);
		if (rc == 0) {
			ssize_t n = cvfs_fs_write(fs, h, "0123456789", 10, 70000, 0);
			rc = n < 0 ? (int)n : 0;
			cvfs_fs_release(fs, h);
		}
		return rc;
	case 12:
		in.size = 1;
		return cvfs_fs_setattr(fs, &cred, x->F1, &in, CVFS_SET_SIZE | CVFS_SET_MODE, &a);
	case 13:
		return cvfs_fs_fallocate(fs, x->F1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3);
	case 14:
		return cvfs_fs_setxattr(fs, x->G, "user.y", "2", 1, 0);
	case 15:
		return cvfs_fs_removexattr(fs, x->G, "user.x");
	case 16:
		return cvfs_fs_rmdir(fs, 1, "b"); /* ENOTEMPTY anyway */
	default:
		return -EINVAL;
	}
	if (rc == 0)
		cvfs_fs_forget(fs, a.ino, 1);
	return rc;
}
static const char *const op_name[] = {
	"mkdir", "create", "symlink", "link", "unlink", "rmdir", "rename across",
	"rename over a file", "rename a dir", "rename dir over empty dir", "exchange",
	"write", "setattr size", "punch", "setxattr", "removexattr", "rmdir non-empty",
};
enum { NOPS = 17 };

/* One sweep: every op, every method it calls, every call of it failing. */
static int inject_sweep(int undo, int err, int *trials, int verbose)
{
	int bad = 0;
	*trials = 0;
	for (int op = 0; op < NOPS; op++) {
		/* count the calls once */
		struct fake *f = fake_new(NULL, 0);
		struct cvfs_fs *fs = NULL;
		if (cvfs_fs_new(&f->base, NULL, &fs))
			return -1;
		struct fixture x;
		build(fs, &x);
		fake_reset_counts(f);
		int want = op_run(fs, &x, op);
		long calls[M_N];
		memcpy(calls, f->calls, sizeof(calls));
		cvfs_fs_free(fs);
		for (int m = M_TXN_BEGIN; m < M_N; m++) {
			for (long nth = 1; nth <= calls[m] && nth <= 8; nth++) {
				f = fake_new(NULL, 0);
				f->undo = undo;
				if (cvfs_fs_new(&f->base, NULL, &fs))
					return -1;
				build(fs, &x);
				char *before = dump_tree(f);
				fake_reset_counts(f);
				f->fail_m = m;
				f->fail_at = nth;
				f->fail_err = err;
				int rc = op_run(fs, &x, op);
				f->fail_m = -1;
				(*trials)++;
				int problems = 0;
				if (f->failed && rc != err && !(want < 0 && rc == want)) {
					problems++;
					if (verbose)
						note("%s, %s #%ld failing: returned %d, want %d",
						     op_name[op], mname[m], nth, rc, err);
				} else if (!f->failed && rc != want) {
					problems++;
				}
				int fp = fsck(f, 0, !verbose);
				char *after = dump_tree(f);
				/* a failed operation changes nothing (for a store that undoes) */
				int changed = rc < 0 && undo && strcmp(before, after) != 0;
				if (changed && verbose)
					note("%s, %s #%ld failing: the tree changed", op_name[op],
					     mname[m], nth);
				if (fp && verbose)
					note("%s, %s #%ld failing -> %d: %d fsck problem(s)",
					     op_name[op], mname[m], nth, rc, fp);
				problems += fp + changed;
				bad += problems != 0;
				free(before);
				free(after);
				cvfs_fs_free(fs);
			}
		}
	}
	return bad;
}

static void t_inject_undo(void)
{
	int trials = 0;
	int bad = inject_sweep(1, -EIO, &trials, 1);
	CHECK(bad == 0, "%d of %d trials (-EIO, undoing store) went wrong", bad, trials);
	int trials2 = 0;
	bad = inject_sweep(1, -ENOSPC, &trials2, 0);
	CHECK(bad == 0, "%d of %d trials (-ENOSPC, undoing store) went wrong", bad, trials2);
	note("%d + %d injected failures, store undoes aborted transactions", trials, trials2);
}

static void t_inject_noundo(void)
{
	int trials = 0;
	int bad = inject_sweep(0, -ENOSPC, &trials, 1);
	note("%d of %d injected failures left the fs inconsistent with a store that cannot undo",
	     bad, trials);
	CHECK(bad == 0, "%d of %d trials (-ENOSPC, store without undo: the memory store) went wrong",
	      bad, trials);
}

/* An injected failure deep in an operation returns that errno to the caller. */
static void t_inject_errno(void)
{
	struct fake *f = fake_new(NULL, 0);
	f->undo = 1;
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	REQUIRE(fs, "fs");
	struct fixture x;
	build(fs, &x);
	f->fail_m = M_DENT_PUT;
	f->fail_at = f->calls[M_DENT_PUT] + 1;
	f->fail_err = -ENOSPC;
	ERR(cvfs_fs_mknod(fs, &cred, 1, "x", S_IFREG | 0644, 0, &a), ENOSPC);
	ERR(look(fs, 1, "x", NULL), ENOENT);
	f->fail_m = M_INODE_GET;
	f->fail_at = f->calls[M_INODE_GET] + 1;
	f->fail_err = -EIO;
	ERR(cvfs_fs_getattr(fs, x.F1, &a), EIO);
	OK(cvfs_fs_getattr(fs, x.F1, &a));
	f->fail_m = M_TXN_BEGIN;
	f->fail_at = f->calls[M_TXN_BEGIN] + 1;
	ERR(cvfs_fs_unlink(fs, x.A, "g"), EIO);
	f->fail_m = M_TXN_END;
	f->fail_at = f->calls[M_TXN_END] + 1;
	ERR(cvfs_fs_unlink(fs, x.A, "g"), EIO);
	OK(look(fs, x.A, "g", NULL)); /* the failed commit left the name */
	f->fail_m = M_DIR_LIST;
	f->fail_at = f->calls[M_DIR_LIST] + 1;
	static struct rd r;
	ERR(readdir_all(fs, x.A, 0, 0, -1, &r), EIO);
	FSCK(f);
out:
	cvfs_fs_free(fs);
}

static void t_txn_retry(void)
{
	struct fake *f = fake_new(NULL, 0);
	f->undo = 1; /* a refused commit changed nothing, as an optimistic store */
	struct cvfs_fs *fs = fs_open(f, NULL);
	struct cvfs_attr a;
	struct cvfs_handle *h = NULL;
	char buf[32];
	REQUIRE(fs, "fs");
	for (int k = 0; k <= 5; k += 5) {
		char nm[16];
		snprintf(nm, sizeof(nm), "r%d", k);
		fake_reset_counts(f);
		f->eagain = k;
		OK(cvfs_fs_mknod(fs, &cred, 1, nm, S_IFDIR | 0755, 0, &a));
		cvfs_fs_forget(fs, a.ino, 1);
		CHECK(f->calls[M_TXN_BEGIN] == k + 1, "mkdir with %d refused commits: %ld runs", k,
		      f->calls[M_TXN_BEGIN]);
		CHECK(f->calls[M_INO_ALLOC] == k + 1, "ino_alloc %ld", f->calls[M_INO_ALLOC]);
		OK(look(fs, 1, nm, NULL));
	}
	FSCK(f);
	/* an append rerun appends once */
	OK(cvfs_fs_create(fs, &cred, 1, "log", 0644, O_CREAT | O_RDWR, &a, &h));
	cvfs_fs_forget(fs, a.ino, 1);
	OK(cvfs_fs_write(fs, h, "one.", 4, 0, 1));
	fake_reset_counts(f);
	f->eagain = 3;
	CHECK(cvfs_fs_write(fs, h, "two.", 4, 0, 1) == 4, "append with refused commits");
	CHECK(f->calls[M_TXN_BEGIN] == 4, "append ran %ld times, want 4", f->calls[M_TXN_BEGIN]);
	CHECK(cvfs_fs_read(fs, h, buf, sizeof(buf), 0) == 8 && memcmp(buf, "one.two.", 8) == 0,
	      "append rerun wrote twice: %.*s", 8, buf);
	/* rename, unlink with retries */
	f->eagain = 2;
	OK(cvfs_fs_rename(fs, 1, "log", 1, "log2", 0));
	f->eagain = 2;
	fake_reset_counts(f);
	OK(cvfs_fs_rmdir(fs, 1, "r0"));
	CHECK(f->calls[M_TXN_BEGIN] == 3, "rmdir ran %ld times", f->calls[M_TXN_BEGIN]);
	ERR(cvfs_fs_rmdir(fs, 1, "r0"), ENOENT);
	/* a refused read transaction is rerun too */
	fake_reset_counts(f);
	f->eagain = 0;
	FSCK(f);
	/* a store that never lets the commit in: the core gives up with EAGAIN */
	fake_reset_counts(f);
	f->eagain = 1000;
	ERR(cvfs_fs_mknod(fs, &cred, 1, "never", S_IFREG | 0644, 0, &a), EAGAIN);
	note("refused forever: the core ran mkdir %ld times, then returned EAGAIN",
	     f->calls[M_TXN_BEGIN]);
	CHECK(f->calls[M_TXN_BEGIN] > 1 && f->calls[M_TXN_BEGIN] < 1000, "gave up after %ld",
	      f->calls[M_TXN_BEGIN]);
	f->eagain = 0;
	ERR(look(fs, 1, "never", NULL), ENOENT);
	FSCK(f);
out:
	if (h)
		cvfs_fs_release(fs, h);
	cvfs_fs_free(fs);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	run("root created on an empty store", t_root);
	run("lookup/forget counting, orphans", t_lookup_forget);
	run("open handle keeps an unlinked file", t_open_unlinked);
	run("link counts: mkdir/rmdir/rename/exchange", t_link_counts);
	run("rename errors", t_rename_errors);
	run("create O_EXCL, O_TRUNC, mknod, symlink", t_create_trunc);
	run("write/read/append through handles", t_read_write);
	run("setattr mask bits", t_setattr);
	run("fallocate modes", t_fallocate);
	run("fallocate modes, store without punch", t_fallocate_nopunch);
	run("readdir offsets, plus references", t_readdir);
	run("readonly gives EROFS", t_readonly);
	run("xattrs, system.* refused", t_xattr);
	run("statfs", t_statfs);
	run("caps: no hardlinks/special, no dir_empty", t_caps);
	run("injected failure returns its errno", t_inject_errno);
	run("injected failures with an undoing store: consistent", t_inject_undo);
	run("injected failures with a store without undo: consistent", t_inject_noundo);
	run("txn_end -EAGAIN reruns the operation", t_txn_retry);
	printf("1..%d\n", ntest);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
