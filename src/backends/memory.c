/*
 * The memory store: everything in this process's memory.
 *
 * Inodes and directory entries live in two hash tables (by inode number, and
 * by (directory, name)), so lookups are O(1) whatever a directory holds.  Each
 * directory also keeps a slot array of its entries; a listing cookie is a slot
 * index + 1, and freed slots are reused, so a listing never returns an entry
 * twice and resumes in O(1).  File data is a radix tree of 64 KiB chunks that
 * grow as written: a 4 KiB write into a 1 GiB file touches one chunk, holes
 * cost nothing and read as zeros.
 *
 * Locking: one rwlock, taken shared by read transactions and exclusive by
 * write transactions (txn_begin/txn_end); writers are preferred.  Write
 * transactions keep an undo journal, so an abort takes back every change.  Every field below is protected by
 * it; `bytes` is also read without it by statfs (a relaxed atomic).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backends.h"
#include "cvfs/store.h"
#include "util/htab.h"

#define CHUNK_SHIFT 16
#define CHUNK_SIZE (1u << CHUNK_SHIFT)
#define FAN_SHIFT 8
#define FAN (1u << FAN_SHIFT)

struct chunk {
	uint32_t cap; /* bytes allocated in d; bytes past cap read as zero */
	unsigned char d[];
};

struct radix {
	void *root; /* height 1: void*[FAN] of struct chunk*; height h: of height h-1 nodes */
	int height;
};

struct xattr {
	struct xattr *next;
	size_t vlen;
	char *name;
	unsigned char val[];
};

struct mdent;

struct mdir {
	struct mdent **slots;
	size_t nslots, cap; /* slots in use (live or free) and allocated */
	size_t *freel;
	size_t nfree, freecap;
	size_t count; /* live entries */
};

struct mnode {
	struct cvfs_hnode h;
	struct cvfs_attr a;
	struct radix data;
	struct xattr *xattrs;
	struct mdir *dir; /* directories only */
};

struct mdent {
	struct cvfs_hnode h;
	uint64_t dir, ino;
	uint32_t type;
	size_t slot;
	uint16_t len;
	char name[];
};

struct mem_store {
	struct cvfs_store base;
	pthread_rwlock_t lock;
	struct cvfs_htab inodes;  /* struct mnode by ino */
	struct cvfs_htab dents;   /* struct mdent by (dir, name) */
	uint64_t next_ino;
	_Atomic uint64_t bytes;   /* data bytes allocated */
	uint64_t limit;           /* size reported by statfs, 0 = RAM size */
	/* The undo journal of the running write transaction, newest first. */
	int wtxn;
	unsigned nmut; /* changes made by this transaction so far */
	struct undo *journal;
};

/* One change of a write transaction, and what undoes it (txn_end(0)). */
enum {
	U_INODE_NEW, U_INODE_OLD, U_INODE_DEL, U_DENT_NEW, U_DENT_OLD, U_DENT_DEL, U_XATTR, U_DATA,
	U_CHUNKS
};
struct undo {
	struct undo *next;
	int kind;
	uint64_t ino;
	struct cvfs_attr attr;   /* U_INODE_OLD */
	struct mnode *node;      /* U_INODE_DEL: unhooked, freed at commit */
	struct mdent *dent;      /* U_DENT_*: U_DENT_DEL unhooked, freed at commit */
	uint64_t old_ino;        /* U_DENT_OLD */
	uint32_t old_type;
	char *xname;             /* U_XATTR */
	int had;                 /* U_XATTR: the attribute existed */
	uint64_t off;            /* U_DATA */
	size_t len;
	unsigned char *bytes;    /* U_XATTR value, U_DATA old bytes */
	uint64_t old_size;       /* U_DATA: data past it did not exist */
	uint64_t *cidx;          /* U_CHUNKS: chunks taken out of the tree */
	struct chunk **cptr;
	size_t nc, capc;
};

static inline struct mem_store *ms(struct cvfs_store *st)
{
	return (struct mem_store *)st;
}

/* ---- lookups ---- */

static int ino_eq(const struct cvfs_hnode *n, const void *key)
{
	return ((const struct mnode *)n)->a.ino == *(const uint64_t *)key;
}

static struct mnode *node_find(struct mem_store *m, uint64_t ino)
{
	return (struct mnode *)cvfs_htab_find(&m->inodes, cvfs_hash_u64(ino), ino_eq, &ino);
}

struct dkey {
	uint64_t dir;
	const char *name;
	size_t len;
};

static int dent_eq(const struct cvfs_hnode *n, const void *key)
{
	const struct mdent *d = (const struct mdent *)n;
	const struct dkey *k = key;
	return d->dir == k->dir && d->len == k->len && memcmp(d->name, k->name, k->len) == 0;
}

static uint64_t dent_hash(uint64_t dir, const char *name, size_t len)
{
	return cvfs_hash_bytes(name, len, dir);
}

static struct mdent *dent_find(struct mem_store *m, uint64_t dir, const char *name, size_t len)
{
	struct dkey k = {dir, name, len};
	return (struct mdent *)cvfs_htab_find(&m->dents, dent_hash(dir, name, len), dent_eq, &k);
}

/* ---- data: a radix tree of chunks ---- */

static void **radix_slot(struct radix *r, uint64_t idx, int create)
{
	if (r->height == 0) {
		if (!create)
			return NULL;
		r->root = calloc(FAN, sizeof(void *));
		if (!r->root)
			return NULL;
		r->height = 1;
	}
	while ((r->height * FAN_SHIFT) < 64 && (idx >> (r->height * FAN_SHIFT)) != 0) {
		if (!create)
			return NULL;
		void **n = calloc(FAN, sizeof(void *));
		if (!n)
			return NULL;
		n[0] = r->root;
		r->root = n;
		r->height++;
	}
	void **node = r->root;
	for (int h = r->height; h > 1; h--) {
		unsigned k = (idx >> ((h - 1) * FAN_SHIFT)) & (FAN - 1);
		if (!node[k]) {
			if (!create)
				return NULL;
			node[k] = calloc(FAN, sizeof(void *));
			if (!node[k])
				return NULL;
		}
		node = node[k];
	}
	return &node[idx & (FAN - 1)];
}

static struct chunk *chunk_get(struct radix *r, uint64_t idx)
{
	void **s = radix_slot(r, idx, 0);
	return s ? *s : NULL;
}

/* Frees chunks with index >= first in a subtree; returns 1 if the subtree is now empty. */
static int radix_trim(struct mem_store *m, void **node, int h, uint64_t base, uint64_t first)
{
	uint64_t span = (uint64_t)1 << ((h - 1) * FAN_SHIFT); /* chunks per slot */
	int empty = 1;
	for (unsigned k = 0; k < FAN; k++) {
		if (!node[k])
			continue;
		uint64_t lo = base + k * span;
		if (h == 1) {
			if (lo >= first) {
				struct chunk *c = node[k];
				atomic_fetch_sub_explicit(&m->bytes, c->cap, memory_order_relaxed);
				free(c);
				node[k] = NULL;
			} else {
				empty = 0;
			}
		} else if (lo + span > first) {
			if (radix_trim(m, node[k], h - 1, lo, first)) {
				free(node[k]);
				node[k] = NULL;
			} else {
				empty = 0;
			}
		} else {
			empty = 0;
		}
	}
	return empty;
}

static void radix_free_from(struct mem_store *m, struct radix *r, uint64_t first)
{
	if (r->height == 0)
		return;
	if (radix_trim(m, r->root, r->height, 0, first)) {
		free(r->root);
		r->root = NULL;
		r->height = 0;
	}
}

static uint32_t cap_for(uint32_t need)
{
	uint32_t c = 4096;
	while (c < need)
		c <<= 1;
	return c > CHUNK_SIZE ? CHUNK_SIZE : c;
}

static ssize_t raw_write(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	struct mem_store *m = ms(st);
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	const unsigned char *src = buf;
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t idx = pos >> CHUNK_SHIFT;
		uint32_t in = pos & (CHUNK_SIZE - 1);
		size_t n_ = CHUNK_SIZE - in;
		if (n_ > len - done)
			n_ = len - done;
		void **slot = radix_slot(&n->data, idx, 1);
		if (!slot)
			return done ? (ssize_t)done : -ENOSPC;
		struct chunk *c = *slot;
		uint32_t need = in + (uint32_t)n_;
		if (!c || c->cap < need) {
			uint32_t old = c ? c->cap : 0;
			uint32_t cap = cap_for(need);
			struct chunk *nc = realloc(c, sizeof(*nc) + cap);
			if (!nc)
				return done ? (ssize_t)done : -ENOSPC;
			memset(nc->d + old, 0, cap - old);
			nc->cap = cap;
			*slot = nc;
			c = nc;
			atomic_fetch_add_explicit(&m->bytes, cap - old, memory_order_relaxed);
		}
		memcpy(c->d + in, src + done, n_);
		done += n_;
	}
	return (ssize_t)len;
}

static const unsigned char zeros[CHUNK_SIZE];

/* The bytes [off, off+len) of n as pieces: pointers into its chunks, or at
 * zeros where nothing was written.  iov has room for max_pieces(len). */
static size_t max_pieces(size_t len)
{
	return 2 * (len / CHUNK_SIZE + 2);
}

static int pieces(struct mnode *n, uint64_t off, size_t len, struct iovec *iov)
{
	int cnt = 0;
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint32_t in = pos & (CHUNK_SIZE - 1);
		size_t n_ = CHUNK_SIZE - in;
		if (n_ > len - done)
			n_ = len - done;
		struct chunk *c = chunk_get(&n->data, pos >> CHUNK_SHIFT);
		size_t have = 0;
		if (c && c->cap > in) {
			have = c->cap - in < n_ ? c->cap - in : n_;
			iov[cnt++] = (struct iovec){c->d + in, have};
		}
		if (n_ > have)
			iov[cnt++] = (struct iovec){(void *)zeros, n_ - have};
		done += n_;
	}
	return cnt;
}

/* Calls fn with the pieces of [off, off+len) of ino. */
static int with_pieces(struct mem_store *m, uint64_t ino, uint64_t off, size_t len,
		       int (*fn)(void *arg, const struct iovec *iov, int n), void *arg)
{
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	struct iovec small[40], *iov = small;
	if (max_pieces(len) > sizeof(small) / sizeof(small[0])) {
		iov = malloc(max_pieces(len) * sizeof(*iov));
		if (!iov)
			return -ENOMEM;
	}
	int rc = fn(arg, iov, pieces(n, off, len, iov));
	if (iov != small)
		free(iov);
	return rc;
}

static int copy_out(void *arg, const struct iovec *iov, int n)
{
	unsigned char *dst = arg;
	for (int i = 0; i < n; i++) {
		if (iov[i].iov_base == zeros)
			memset(dst, 0, iov[i].iov_len);
		else
			memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
	return 0;
}

static ssize_t m_read(struct cvfs_store *st, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	int rc = with_pieces(ms(st), ino, off, len, copy_out, buf);
	return rc < 0 ? rc : (ssize_t)len;
}

static int m_read_iov(struct cvfs_store *st, uint64_t ino, uint64_t off, size_t len,
		      int (*emit)(void *arg, const struct iovec *iov, int n), void *arg)
{
	return with_pieces(ms(st), ino, off, len, emit, arg);
}

static void zero_range(struct mnode *n, uint64_t off, uint64_t len)
{
	while (len) {
		uint32_t in = off & (CHUNK_SIZE - 1);
		uint64_t n_ = CHUNK_SIZE - in;
		if (n_ > len)
			n_ = len;
		struct chunk *c = chunk_get(&n->data, off >> CHUNK_SHIFT);
		if (c && c->cap > in)
			memset(c->d + in, 0, (c->cap - in < n_) ? c->cap - in : n_);
		off += n_;
		len -= n_;
	}
}

static int raw_truncate(struct cvfs_store *st, uint64_t ino, uint64_t size)
{
	struct mem_store *m = ms(st);
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	uint64_t first = (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
	radix_free_from(m, &n->data, first);
	uint32_t in = size & (CHUNK_SIZE - 1);
	if (in)
		zero_range(n, size, CHUNK_SIZE - in);
	return 0;
}

static int raw_punch(struct cvfs_store *st, uint64_t ino, uint64_t off, uint64_t len)
{
	struct mem_store *m = ms(st);
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	uint64_t end = off + len;
	/* free the whole chunks inside, zero the partial ends */
	uint64_t first = (off + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
	uint64_t last = end >> CHUNK_SHIFT; /* exclusive */
	for (uint64_t i = first; i < last; i++) {
		void **s = radix_slot(&n->data, i, 0);
		if (s && *s) {
			atomic_fetch_sub_explicit(&m->bytes, ((struct chunk *)*s)->cap,
						  memory_order_relaxed);
			free(*s);
			*s = NULL;
		}
	}
	if (first > last) {
		zero_range(n, off, len);
	} else {
		zero_range(n, off, (first << CHUNK_SHIFT) - off);
		zero_range(n, last << CHUNK_SHIFT, end - (last << CHUNK_SHIFT));
	}
	return 0;
}

/* ---- inodes ---- */

static void dir_free(struct mdir *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d->freel);
	free(d);
}

static void node_free(struct mem_store *m, struct mnode *n)
{
	radix_free_from(m, &n->data, 0);
	for (struct xattr *x = n->xattrs, *nx; x; x = nx) {
		nx = x->next;
		free(x->name);
		free(x);
	}
	dir_free(n->dir);
	free(n);
}

static int m_ino_alloc(struct cvfs_store *st, uint64_t *ino)
{
	*ino = ms(st)->next_ino++;
	return 0;
}

static int m_inode_get(struct cvfs_store *st, uint64_t ino, struct cvfs_attr *out)
{
	struct mnode *n = node_find(ms(st), ino);
	if (!n)
		return -ENOENT;
	*out = n->a;
	return 0;
}

static int raw_inode_put(struct cvfs_store *st, const struct cvfs_attr *a)
{
	struct mem_store *m = ms(st);
	struct mnode *n = node_find(m, a->ino);
	if (n) {
		if ((n->a.mode & S_IFMT) != (a->mode & S_IFMT))
			return -EINVAL;
		n->a = *a;
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	if (S_ISDIR(a->mode)) {
		n->dir = calloc(1, sizeof(*n->dir));
		if (!n->dir) {
			free(n);
			return -ENOMEM;
		}
	}
	n->a = *a;
	n->h.hash = cvfs_hash_u64(a->ino);
	cvfs_htab_insert(&m->inodes, &n->h);
	if (a->ino >= m->next_ino)
		m->next_ino = a->ino + 1;
	return 0;
}

static int raw_inode_del(struct cvfs_store *st, uint64_t ino)
{
	struct mem_store *m = ms(st);
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	if (n->dir && n->dir->count)
		return -ENOTEMPTY;
	cvfs_htab_remove(&m->inodes, &n->h);
	node_free(m, n);
	return 0;
}

/* ---- directory entries ---- */

static int m_dent_get(struct cvfs_store *st, uint64_t dir, const char *name, size_t len, uint64_t *ino)
{
	struct mdent *d = dent_find(ms(st), dir, name, len);
	if (!d)
		return -ENOENT;
	*ino = d->ino;
	return 0;
}

static int slot_take(struct mdir *d, size_t *slot)
{
	if (d->nfree) {
		*slot = d->freel[--d->nfree];
		return 0;
	}
	if (d->nslots == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 8;
		struct mdent **s = realloc(d->slots, nc * sizeof(*s));
		if (!s)
			return -ENOMEM;
		d->slots = s;
		d->cap = nc;
	}
	*slot = d->nslots++;
	return 0;
}

static int slot_give(struct mdir *d, size_t slot)
{
	d->slots[slot] = NULL;
	if (slot + 1 == d->nslots) {
		d->nslots--;
		return 0;
	}
	if (d->nfree == d->freecap) {
		size_t nc = d->freecap ? d->freecap * 2 : 8;
		size_t *f = realloc(d->freel, nc * sizeof(*f));
		if (!f)
			return 0; /* the slot just stays empty */
		d->freel = f;
		d->freecap = nc;
	}
	d->freel[d->nfree++] = slot;
	return 0;
}

static int raw_dent_put(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t ino, uint32_t type)
{
	struct mem_store *m = ms(st);
	if (len == 0 || len > CVFS_NAME_MAX)
		return -ENAMETOOLONG;
	struct mdent *e = dent_find(m, dir, name, len);
	if (e) {
		e->ino = ino;
		e->type = type;
		return 0;
	}
	struct mnode *p = node_find(m, dir);
	if (!p)
		return -ENOENT;
	if (!p->dir)
		return -ENOTDIR;
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	size_t slot;
	if (slot_take(p->dir, &slot)) {
		free(e);
		return -ENOMEM;
	}
	e->dir = dir;
	e->ino = ino;
	e->type = type;
	e->len = (uint16_t)len;
	e->slot = slot;
	memcpy(e->name, name, len);
	e->name[len] = 0;
	e->h.hash = dent_hash(dir, name, len);
	p->dir->slots[slot] = e;
	p->dir->count++;
	cvfs_htab_insert(&m->dents, &e->h);
	return 0;
}

static int raw_dent_del(struct cvfs_store *st, uint64_t dir, const char *name, size_t len)
{
	struct mem_store *m = ms(st);
	struct mdent *e = dent_find(m, dir, name, len);
	if (!e)
		return -ENOENT;
	struct mnode *p = node_find(m, dir);
	if (p && p->dir) {
		slot_give(p->dir, e->slot);
		p->dir->count--;
	}
	cvfs_htab_remove(&m->dents, &e->h);
	free(e);
	return 0;
}

static int m_dir_list(struct cvfs_store *st, uint64_t dir, uint64_t cookie, cvfs_dirent_cb cb,
		      void *arg)
{
	struct mnode *p = node_find(ms(st), dir);
	if (!p)
		return -ENOENT;
	if (!p->dir)
		return -ENOTDIR;
	for (size_t i = cookie; i < p->dir->nslots; i++) {
		struct mdent *e = p->dir->slots[i];
		if (!e)
			continue;
		struct cvfs_dirent de = {e->name, e->len, e->ino, e->type, i + 1};
		if (cb(arg, &de))
			break;
	}
	return 0;
}

static int m_dir_empty(struct cvfs_store *st, uint64_t dir)
{
	struct mnode *p = node_find(ms(st), dir);
	if (!p)
		return -ENOENT;
	if (!p->dir)
		return -ENOTDIR;
	return p->dir->count == 0;
}

/* ---- xattrs ---- */

static struct xattr **x_find(struct mnode *n, const char *name)
{
	struct xattr **pp = &n->xattrs;
	while (*pp && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

static ssize_t m_getx(struct cvfs_store *st, uint64_t ino, const char *name, void *val, size_t size)
{
	struct mnode *n = node_find(ms(st), ino);
	if (!n)
		return -ENOENT;
	struct xattr *x = *x_find(n, name);
	if (!x)
		return -ENODATA;
	if (size == 0)
		return (ssize_t)x->vlen;
	if (size < x->vlen)
		return -ERANGE;
	memcpy(val, x->val, x->vlen);
	return (ssize_t)x->vlen;
}

static int raw_setx(struct cvfs_store *st, uint64_t ino, const char *name, const void *val, size_t size,
		  int flags)
{
	struct mnode *n = node_find(ms(st), ino);
	if (!n)
		return -ENOENT;
	struct xattr **pp = x_find(n, name);
	if (*pp && (flags & XATTR_CREATE))
		return -EEXIST;
	if (!*pp && (flags & XATTR_REPLACE))
		return -ENODATA;
	struct xattr *x = malloc(sizeof(*x) + size);
	if (!x)
		return -ENOMEM;
	x->name = strdup(name);
	if (!x->name) {
		free(x);
		return -ENOMEM;
	}
	x->vlen = size;
	if (size)
		memcpy(x->val, val, size);
	if (*pp) {
		struct xattr *old = *pp;
		x->next = old->next;
		free(old->name);
		free(old);
	} else {
		x->next = NULL;
	}
	*pp = x;
	return 0;
}

static ssize_t m_listx(struct cvfs_store *st, uint64_t ino, char *list, size_t size)
{
	struct mnode *n = node_find(ms(st), ino);
	if (!n)
		return -ENOENT;
	size_t need = 0;
	for (struct xattr *x = n->xattrs; x; x = x->next)
		need += strlen(x->name) + 1;
	if (size == 0)
		return (ssize_t)need;
	if (size < need)
		return -ERANGE;
	char *p = list;
	for (struct xattr *x = n->xattrs; x; x = x->next) {
		size_t l = strlen(x->name) + 1;
		memcpy(p, x->name, l);
		p += l;
	}
	return (ssize_t)need;
}

static int raw_removex(struct cvfs_store *st, uint64_t ino, const char *name)
{
	struct mnode *n = node_find(ms(st), ino);
	if (!n)
		return -ENOENT;
	struct xattr **pp = x_find(n, name);
	if (!*pp)
		return -ENODATA;
	struct xattr *x = *pp;
	*pp = x->next;
	free(x->name);
	free(x);
	return 0;
}

/* ---- the rest ---- */

static void raw_truncate_data(struct mem_store *m, uint64_t ino, uint64_t size)
{
	raw_truncate(&m->base, ino, size);
}

/* ---- the undo journal ----
 *
 * Every change of a write transaction records how to take it back, so an
 * aborted transaction (txn_end(0)) leaves the store as it was: the core
 * aborts after its first change when a later one fails.  Deletions are
 * deferred to the commit (the object is unhooked and kept); old bytes of
 * data are saved only when the data change is not the transaction's first
 * change (the core always writes data first, so this costs nothing). */

static struct undo *j_push(struct mem_store *m, int kind, uint64_t ino)
{
	if (!m->wtxn)
		return NULL;
	struct undo *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->kind = kind;
	u->ino = ino;
	u->next = m->journal;
	m->journal = u;
	return u;
}

/* Saves what a data change overwrites: the old bytes of [off, off+len) below
 * the recorded size (data past the size is zeros by contract; undo cuts it
 * back to old_size). */
static int j_data(struct mem_store *m, uint64_t ino, uint64_t off, uint64_t len)
{
	if (!m->wtxn || len == 0)
		return 0;
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	uint64_t keep = off < n->a.size ? (n->a.size - off < len ? n->a.size - off : len) : 0;
	if (keep > (1u << 30))
		return -EFBIG; /* cannot promise to take back more */
	unsigned char *b = keep ? malloc(keep) : NULL;
	if (keep && !b)
		return -ENOMEM;
	struct undo *u = j_push(m, U_DATA, ino);
	if (!u) {
		free(b);
		return -ENOMEM;
	}
	if (keep)
		m_read(&m->base, ino, b, keep, off);
	u->off = off;
	u->len = keep;
	u->bytes = b;
	u->old_size = n->a.size;
	return 0;
}

static int collect(struct undo *u, uint64_t idx, struct chunk *c)
{
	if (u->nc == u->capc) {
		size_t nc = u->capc ? u->capc * 2 : 16;
		uint64_t *i2 = realloc(u->cidx, nc * sizeof(*i2));
		if (!i2)
			return -ENOMEM;
		u->cidx = i2;
		struct chunk **p2 = realloc(u->cptr, nc * sizeof(*p2));
		if (!p2)
			return -ENOMEM;
		u->cptr = p2;
		u->capc = nc;
	}
	u->cidx[u->nc] = idx;
	u->cptr[u->nc] = c;
	u->nc++;
	return 0;
}

/* Moves the chunks with index in [lo, hi) out of the tree into u. */
static int detach(void **node, int h, uint64_t base, uint64_t lo, uint64_t hi, struct undo *u)
{
	uint64_t span = (uint64_t)1 << ((h - 1) * FAN_SHIFT);
	for (unsigned k = 0; k < FAN; k++) {
		uint64_t first = base + k * span;
		if (!node[k] || first >= hi || first + span <= lo)
			continue;
		if (h == 1) {
			if (collect(u, first, node[k]))
				return -ENOMEM;
			node[k] = NULL;
		} else if (detach(node[k], h - 1, first, lo, hi, u)) {
			return -ENOMEM;
		}
	}
	return 0;
}

/* Before cutting [off, end) out of ino's data: whole chunks inside move to
 * the journal, the partial ones at the edges are saved as bytes. */
static int j_cut(struct mem_store *m, uint64_t ino, uint64_t off, uint64_t end)
{
	if (!m->wtxn)
		return 0;
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	if (end > n->a.size)
		end = n->a.size;
	if (off >= end)
		return 0;
	uint64_t lo = (off + CHUNK_SIZE - 1) >> CHUNK_SHIFT, hi = end >> CHUNK_SHIFT;
	if (lo >= hi) /* no whole chunk: save the bytes */
		return j_data(m, ino, off, end - off);
	int rc = j_data(m, ino, off, (lo << CHUNK_SHIFT) - off);
	if (rc == 0)
		rc = j_data(m, ino, hi << CHUNK_SHIFT, end - (hi << CHUNK_SHIFT));
	struct undo *u = rc ? NULL : j_push(m, U_CHUNKS, ino);
	if (!u)
		return rc ? rc : -ENOMEM;
	if (n->data.height)
		rc = detach(n->data.root, n->data.height, 0, lo, hi, u);
	return rc;
}

static void slot_back(struct mdir *d, struct mdent *e)
{
	if (e->slot == d->nslots) {
		d->nslots++;
	} else {
		for (size_t i = d->nfree; i-- > 0;) {
			if (d->freel[i] == e->slot) {
				memmove(&d->freel[i], &d->freel[i + 1], (d->nfree - i - 1) * sizeof(size_t));
				d->nfree--;
				break;
			}
		}
	}
	d->slots[e->slot] = e;
	d->count++;
}

static void j_undo(struct mem_store *m, struct undo *u)
{
	struct mnode *n;
	switch (u->kind) {
	case U_INODE_NEW:
		if ((n = node_find(m, u->ino))) {
			cvfs_htab_remove(&m->inodes, &n->h);
			node_free(m, n);
		}
		break;
	case U_INODE_OLD:
		if ((n = node_find(m, u->ino)))
			n->a = u->attr;
		break;
	case U_INODE_DEL:
		cvfs_htab_insert(&m->inodes, &u->node->h);
		u->node = NULL;
		break;
	case U_DENT_NEW:
		raw_dent_del(&m->base, u->dent->dir, u->dent->name, u->dent->len);
		break;
	case U_DENT_OLD:
		u->dent->ino = u->old_ino;
		u->dent->type = u->old_type;
		break;
	case U_DENT_DEL:
		if ((n = node_find(m, u->dent->dir)) && n->dir)
			slot_back(n->dir, u->dent);
		cvfs_htab_insert(&m->dents, &u->dent->h);
		u->dent = NULL;
		break;
	case U_XATTR:
		if (u->had)
			raw_setx(&m->base, u->ino, u->xname, u->bytes, u->len, 0);
		else
			raw_removex(&m->base, u->ino, u->xname);
		break;
	case U_DATA:
		/* data past the old size did not exist: cut it back */
		raw_truncate_data(m, u->ino, u->old_size);
		if (u->len)
			raw_write(&m->base, u->ino, u->bytes, u->len, u->off);
		break;
	case U_CHUNKS:
		if ((n = node_find(m, u->ino))) {
			for (size_t i = 0; i < u->nc; i++) {
				void **slot = radix_slot(&n->data, u->cidx[i], 1);
				if (slot && !*slot) {
					*slot = u->cptr[i];
					u->cptr[i] = NULL;
				}
			}
		}
		break;
	}
}

static void j_free(struct mem_store *m, struct undo *u)
{
	if (u->kind == U_INODE_DEL && u->node)
		node_free(m, u->node);
	if (u->kind == U_DENT_DEL && u->dent)
		free(u->dent);
	for (size_t i = 0; i < u->nc; i++) {
		if (u->cptr[i]) {
			atomic_fetch_sub_explicit(&m->bytes, u->cptr[i]->cap, memory_order_relaxed);
			free(u->cptr[i]);
		}
	}
	free(u->cidx);
	free(u->cptr);
	free(u->xname);
	free(u->bytes);
	free(u);
}

static void j_end(struct mem_store *m, int commit)
{
	struct undo *u = m->journal;
	while (u) {
		struct undo *nx = u->next;
		if (!commit)
			j_undo(m, u);
		j_free(m, u);
		u = nx;
	}
	m->journal = NULL;
	m->nmut = 0;
	m->wtxn = 0;
}

static ssize_t m_write(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	struct mem_store *m = ms(st);
	int rc = j_data(m, ino, off, len);
	if (rc)
		return rc;
	ssize_t n = raw_write(st, ino, buf, len, off);
	if (n >= 0)
		m->nmut++;
	return n;
}

static int m_truncate(struct cvfs_store *st, uint64_t ino, uint64_t size)
{
	struct mem_store *m = ms(st);
	int rc = j_cut(m, ino, size, UINT64_MAX);
	if (rc == 0 && (rc = raw_truncate(st, ino, size)) == 0)
		m->nmut++;
	return rc;
}

static int m_punch(struct cvfs_store *st, uint64_t ino, uint64_t off, uint64_t len)
{
	struct mem_store *m = ms(st);
	int rc = j_cut(m, ino, off, off + len);
	if (rc == 0 && (rc = raw_punch(st, ino, off, len)) == 0)
		m->nmut++;
	return rc;
}

static int m_inode_put(struct cvfs_store *st, const struct cvfs_attr *a)
{
	struct mem_store *m = ms(st);
	struct mnode *n = node_find(m, a->ino);
	struct undo *u = NULL;
	if (m->wtxn && !(u = j_push(m, n ? U_INODE_OLD : U_INODE_NEW, a->ino)))
		return -ENOMEM;
	if (u && n)
		u->attr = n->a;
	int rc = raw_inode_put(st, a);
	if (rc && u) { /* nothing happened: drop the record */
		m->journal = u->next;
		free(u);
	}
	if (rc == 0)
		m->nmut++;
	return rc;
}

static int m_inode_del(struct cvfs_store *st, uint64_t ino)
{
	struct mem_store *m = ms(st);
	if (!m->wtxn)
		return raw_inode_del(st, ino);
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	if (n->dir && n->dir->count)
		return -ENOTEMPTY;
	struct undo *u = j_push(m, U_INODE_DEL, ino);
	if (!u)
		return -ENOMEM;
	cvfs_htab_remove(&m->inodes, &n->h);
	u->node = n;
	m->nmut++;
	return 0;
}

static int m_dent_put(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t ino, uint32_t type)
{
	struct mem_store *m = ms(st);
	struct mdent *e = dent_find(m, dir, name, len);
	struct undo *u = NULL;
	if (m->wtxn && !(u = j_push(m, e ? U_DENT_OLD : U_DENT_NEW, ino)))
		return -ENOMEM;
	if (u && e) {
		u->dent = e;
		u->old_ino = e->ino;
		u->old_type = e->type;
	}
	int rc = raw_dent_put(st, dir, name, len, ino, type);
	if (rc && u) {
		m->journal = u->next;
		free(u);
	} else if (u && !e) {
		u->dent = dent_find(m, dir, name, len);
	}
	if (rc == 0)
		m->nmut++;
	return rc;
}

static int m_dent_del(struct cvfs_store *st, uint64_t dir, const char *name, size_t len)
{
	struct mem_store *m = ms(st);
	if (!m->wtxn)
		return raw_dent_del(st, dir, name, len);
	struct mdent *e = dent_find(m, dir, name, len);
	if (!e)
		return -ENOENT;
	struct undo *u = j_push(m, U_DENT_DEL, e->ino);
	if (!u)
		return -ENOMEM;
	struct mnode *p = node_find(m, dir);
	if (p && p->dir) {
		slot_give(p->dir, e->slot);
		p->dir->count--;
	}
	cvfs_htab_remove(&m->dents, &e->h);
	u->dent = e;
	m->nmut++;
	return 0;
}

/* Records the old value of an xattr before it changes. */
static int j_xattr(struct mem_store *m, uint64_t ino, const char *name)
{
	if (!m->wtxn)
		return 0;
	struct mnode *n = node_find(m, ino);
	if (!n)
		return -ENOENT;
	struct undo *u = j_push(m, U_XATTR, ino);
	if (!u || !(u->xname = strdup(name)))
		return -ENOMEM;
	struct xattr *x = *x_find(n, name);
	if (x) {
		u->had = 1;
		u->len = x->vlen;
		u->bytes = malloc(x->vlen ? x->vlen : 1);
		if (!u->bytes)
			return -ENOMEM;
		memcpy(u->bytes, x->val, x->vlen);
	}
	return 0;
}

static int m_setx(struct cvfs_store *st, uint64_t ino, const char *name, const void *val, size_t size,
		  int flags)
{
	struct mem_store *m = ms(st);
	int rc = j_xattr(m, ino, name);
	if (rc == 0 && (rc = raw_setx(st, ino, name, val, size, flags)) == 0)
		m->nmut++;
	return rc;
}

static int m_removex(struct cvfs_store *st, uint64_t ino, const char *name)
{
	struct mem_store *m = ms(st);
	int rc = j_xattr(m, ino, name);
	if (rc == 0 && (rc = raw_removex(st, ino, name)) == 0)
		m->nmut++;
	return rc;
}

static int m_txn_begin(struct cvfs_store *st, int write)
{
	struct mem_store *m = ms(st);
	int rc = write ? pthread_rwlock_wrlock(&m->lock) : pthread_rwlock_rdlock(&m->lock);
	if (rc == 0 && write) {
		m->wtxn = 1;
		m->nmut = 0;
	}
	return -rc;
}

static int m_txn_end(struct cvfs_store *st, int commit)
{
	struct mem_store *m = ms(st);
	if (m->wtxn)
		j_end(m, commit);
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int m_statfs(struct cvfs_store *st, struct cvfs_statfs *out)
{
	struct mem_store *m = ms(st);
	uint64_t used = atomic_load_explicit(&m->bytes, memory_order_relaxed);
	uint64_t total = m->limit;
	if (!total) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
		total = (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz : (1ull << 34);
	}
	out->bsize = 4096;
	out->blocks = total / 4096;
	uint64_t ub = (used + 4095) / 4096;
	out->bfree = out->bavail = ub < out->blocks ? out->blocks - ub : 0;
	out->files = 1ull << 32;
	pthread_rwlock_rdlock(&m->lock);
	size_t n = m->inodes.n;
	pthread_rwlock_unlock(&m->lock);
	out->ffree = out->files - n;
	return 0;
}

static void m_free(struct cvfs_store *st)
{
	struct mem_store *m = ms(st);
	if (!m)
		return;
	size_t pos = 0;
	struct cvfs_hnode *p = cvfs_htab_next(&m->dents, &pos, NULL);
	while (p) {
		struct cvfs_hnode *nx = cvfs_htab_next(&m->dents, &pos, p);
		free(p);
		p = nx;
	}
	pos = 0;
	p = cvfs_htab_next(&m->inodes, &pos, NULL);
	while (p) {
		struct cvfs_hnode *nx = cvfs_htab_next(&m->inodes, &pos, p);
		node_free(m, (struct mnode *)p);
		p = nx;
	}
	cvfs_htab_fini(&m->dents);
	cvfs_htab_fini(&m->inodes);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

static const struct cvfs_store_ops mem_ops = {
	.name = "memory",
	.abi = CVFS_STORE_ABI,
	.txn_begin = m_txn_begin,
	.txn_end = m_txn_end,
	.ino_alloc = m_ino_alloc,
	.inode_get = m_inode_get,
	.inode_put = m_inode_put,
	.inode_del = m_inode_del,
	.dent_get = m_dent_get,
	.dent_put = m_dent_put,
	.dent_del = m_dent_del,
	.dir_list = m_dir_list,
	.dir_empty = m_dir_empty,
	.read = m_read,
	.read_iov = m_read_iov,
	.write = m_write,
	.truncate = m_truncate,
	.punch = m_punch,
	.getx = m_getx,
	.setx = m_setx,
	.listx = m_listx,
	.removex = m_removex,
	.statfs = m_statfs,
	.free = m_free,
};

int cvfs_memory_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		     char **errmsg)
{
	(void)errmsg;
	struct mem_store *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	const char *lim = cvfs_opt_get(opts, nopts, "size");
	if (lim) {
		char *end;
		unsigned long long v = strtoull(lim, &end, 10);
		switch (*end) {
		case 'k': case 'K': v <<= 10; end++; break;
		case 'm': case 'M': v <<= 20; end++; break;
		case 'g': case 'G': v <<= 30; end++; break;
		case 't': case 'T': v <<= 40; end++; break;
		}
		if (*end || end == lim) {
			free(m);
			if (errmsg && asprintf(errmsg, "memory store: bad size '%s'", lim) < 0)
				*errmsg = NULL;
			return -EINVAL;
		}
		m->limit = v;
	}
	/* Writers first: with the default (reader-preferring) lock a steady
	 * stream of read transactions keeps every writer out forever. */
	pthread_rwlockattr_t la;
	pthread_rwlockattr_init(&la);
	pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int lrc = pthread_rwlock_init(&m->lock, &la);
	pthread_rwlockattr_destroy(&la);
	if (lrc || cvfs_htab_init(&m->inodes, 1024) ||
	    cvfs_htab_init(&m->dents, 1024)) {
		cvfs_htab_fini(&m->inodes);
		free(m);
		return -ENOMEM;
	}
	m->base.ops = &mem_ops;
	m->base.caps = CVFS_CAP_HARDLINKS | CVFS_CAP_XATTR | CVFS_CAP_SPECIAL | CVFS_CAP_THREADS |
		       CVFS_CAP_SPARSE;
	m->next_ino = 2;
	*out = &m->base;
	return 0;
}
