/* The Redis store's cache: see cache.h.  One mutex; three hash tables
 * (inodes, directories, and each directory's names).  Every function accepts
 * c == NULL (no cache: all misses). */
#define _GNU_SOURCE
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/htab.h"

#define SEQ_SLOTS 4096 /* fill guards, by hash of the inode or directory */

struct cino {
	struct cvfs_hnode h;
	uint64_t ino;
	int64_t expires;
	int noxattr; /* known to have no xattrs */
	struct cvfs_attr a;
};

struct cname {
	struct cvfs_hnode h;
	int unknown; /* another client changed it: ask the server */
	struct rc_dent d;
	size_t len;
	char name[];
};

struct cdir {
	struct cvfs_hnode h;
	uint64_t dir;
	int whole;        /* every entry of dir is in names */
	int64_t expires;  /* for the names too */
	size_t npresent;  /* names that exist */
	size_t nunknown;  /* names that another client changed */
	struct cvfs_htab names;
};

struct rcache {
	pthread_mutex_t mu; /* protects everything below */
	int ttl_ms;
	size_t max, n; /* entries (inodes + names): all go when n passes max */
	int live;
	uint64_t epoch;
	struct cvfs_htab inodes, dirs;
	uint64_t iseq[SEQ_SLOTS], dseq[SEQ_SLOTS];
	uint64_t ichg; /* every change of an inode entry */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t slot(uint64_t x)
{
	return (size_t)(cvfs_hash_u64(x) & (SEQ_SLOTS - 1));
}

static int ino_eq(const struct cvfs_hnode *n, const void *k)
{
	return ((const struct cino *)n)->ino == *(const uint64_t *)k;
}

static int dir_eq(const struct cvfs_hnode *n, const void *k)
{
	return ((const struct cdir *)n)->dir == *(const uint64_t *)k;
}

struct nkey {
	const char *name;
	size_t len;
};

static int name_eq(const struct cvfs_hnode *n, const void *k)
{
	const struct cname *c = (const struct cname *)n;
	const struct nkey *key = k;
	return c->len == key->len && memcmp(c->name, key->name, key->len) == 0;
}

static uint64_t name_hash(const char *name, size_t len)
{
	return cvfs_hash_bytes(name, len, 0x6e616d65);
}

static void dir_free(struct rcache *c, struct cdir *d)
{
	size_t pos = 0;
	struct cvfs_hnode *p = NULL, *nx;
	/* collect first: removing while iterating is not allowed */
	while ((nx = cvfs_htab_next(&d->names, &pos, p)) != NULL) {
		if (p)
			free(p);
		p = nx;
		c->n--;
	}
	free(p);
	cvfs_htab_fini(&d->names);
	free(d);
}

static void clear_all(struct rcache *c)
{
	size_t pos = 0;
	struct cvfs_hnode *p = NULL, *nx;
	while ((nx = cvfs_htab_next(&c->inodes, &pos, p)) != NULL) {
		free(p);
		p = nx;
	}
	free(p);
	pos = 0;
	p = NULL;
	while ((nx = cvfs_htab_next(&c->dirs, &pos, p)) != NULL) {
		if (p)
			dir_free(c, (struct cdir *)p);
		p = nx;
	}
	if (p)
		dir_free(c, (struct cdir *)p);
	cvfs_htab_fini(&c->inodes);
	cvfs_htab_fini(&c->dirs);
	cvfs_htab_init(&c->inodes, 1024);
	cvfs_htab_init(&c->dirs, 64);
	c->n = 0;
	c->epoch++;
}

struct rcache *rc_new(int ttl_ms, size_t max_entries)
{
	if (ttl_ms <= 0)
		return NULL;
	struct rcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (cvfs_htab_init(&c->inodes, 1024) || cvfs_htab_init(&c->dirs, 64)) {
		cvfs_htab_fini(&c->inodes);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->ttl_ms = ttl_ms;
	c->max = max_entries;
	return c;
}

void rc_free(struct rcache *c)
{
	if (!c)
		return;
	clear_all(c);
	cvfs_htab_fini(&c->inodes);
	cvfs_htab_fini(&c->dirs);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void rc_live(struct rcache *c, int live)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	clear_all(c);
	c->live = live;
	pthread_mutex_unlock(&c->mu);
}

/* ---- inodes ---- */

static struct cino *ino_find(struct rcache *c, uint64_t ino)
{
	return (struct cino *)cvfs_htab_find(&c->inodes, cvfs_hash_u64(ino), ino_eq, &ino);
}

static void ino_drop(struct rcache *c, uint64_t ino)
{
	struct cino *e = ino_find(c, ino);
	if (e) {
		cvfs_htab_remove(&c->inodes, &e->h);
		free(e);
		c->n--;
	}
}

static void ino_store(struct rcache *c, const struct cvfs_attr *a)
{
	struct cino *e = ino_find(c, a->ino);
	if (!e) {
		if (c->n >= c->max)
			clear_all(c);
		e = malloc(sizeof(*e));
		if (!e)
			return;
		e->ino = a->ino;
		e->h.hash = cvfs_hash_u64(a->ino);
		cvfs_htab_insert(&c->inodes, &e->h);
		c->n++;
	}
	e->a = *a;
	e->noxattr = 0;
	e->expires = now_ms() + c->ttl_ms;
}

int rc_inode_get(struct rcache *c, uint64_t ino, struct cvfs_attr *a)
{
	if (!c)
		return 0;
	int hit = 0;
	pthread_mutex_lock(&c->mu);
	struct cino *e = c->live ? ino_find(c, ino) : NULL;
	if (e && e->expires > now_ms()) {
		*a = e->a;
		hit = 1;
	} else if (e) {
		ino_drop(c, ino);
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void rc_inode_snap(struct rcache *c, uint64_t ino, struct rc_tok *tok)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	tok->seq = c->iseq[slot(ino)];
	tok->epoch = c->epoch;
	tok->any = 0;
	pthread_mutex_unlock(&c->mu);
}

void rc_inode_snap_any(struct rcache *c, struct rc_tok *tok)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	tok->seq = c->ichg;
	tok->epoch = c->epoch;
	tok->any = 1;
	pthread_mutex_unlock(&c->mu);
}

void rc_inode_fill(struct rcache *c, const struct rc_tok *tok, const struct cvfs_attr *a)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->live && tok->epoch == c->epoch &&
	    tok->seq == (tok->any ? c->ichg : c->iseq[slot(a->ino)]))
		ino_store(c, a);
	pthread_mutex_unlock(&c->mu);
}

void rc_inode_set(struct rcache *c, uint64_t ino, const struct cvfs_attr *a)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->iseq[slot(ino)]++;
	c->ichg++;
	if (a && c->live)
		ino_store(c, a);
	else
		ino_drop(c, ino);
	pthread_mutex_unlock(&c->mu);
}

void rc_inode_inval(struct rcache *c, uint64_t ino)
{
	rc_inode_set(c, ino, NULL);
}

int rc_inode_noxattr(struct rcache *c, uint64_t ino)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	struct cino *e = c->live ? ino_find(c, ino) : NULL;
	int r = e && e->expires > now_ms() && e->noxattr;
	pthread_mutex_unlock(&c->mu);
	return r;
}

void rc_inode_set_noxattr(struct rcache *c, const struct rc_tok *tok, uint64_t ino)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	struct cino *e = ino_find(c, ino);
	if (e && c->live && tok->epoch == c->epoch && !tok->any && tok->seq == c->iseq[slot(ino)])
		e->noxattr = 1;
	pthread_mutex_unlock(&c->mu);
}

/* ---- directories and names ---- */

static struct cdir *dir_find(struct rcache *c, uint64_t dir)
{
	struct cdir *d = (struct cdir *)cvfs_htab_find(&c->dirs, cvfs_hash_u64(dir), dir_eq, &dir);
	if (d && d->expires <= now_ms()) {
		cvfs_htab_remove(&c->dirs, &d->h);
		dir_free(c, d);
		d = NULL;
	}
	return d;
}

static struct cdir *dir_get(struct rcache *c, uint64_t dir)
{
	struct cdir *d = dir_find(c, dir);
	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	if (cvfs_htab_init(&d->names, 16)) {
		free(d);
		return NULL;
	}
	d->dir = dir;
	d->h.hash = cvfs_hash_u64(dir);
	d->expires = now_ms() + c->ttl_ms;
	cvfs_htab_insert(&c->dirs, &d->h);
	return d;
}

static struct cname *name_find(struct cdir *d, const char *name, size_t len)
{
	struct nkey k = {name, len};
	return (struct cname *)cvfs_htab_find(&d->names, name_hash(name, len), name_eq, &k);
}

static void name_drop(struct rcache *c, struct cdir *d, const char *name, size_t len)
{
	struct cname *e = name_find(d, name, len);
	if (e) {
		if (e->d.present)
			d->npresent--;
		if (e->unknown)
			d->nunknown--;
		cvfs_htab_remove(&d->names, &e->h);
		free(e);
		c->n--;
	}
}

/* v NULL: unknown (in a whole directory).  May clear the whole cache (too
 * many entries): then d is gone; returns 0. */
static int name_store(struct rcache *c, struct cdir *d, const char *name, size_t len,
		      const struct rc_dent *v)
{
	struct cname *e = name_find(d, name, len);
	if (!e) {
		if (c->n >= c->max) {
			clear_all(c);
			return 0;
		}
		e = malloc(sizeof(*e) + len);
		if (!e) {
			d->whole = 0; /* it would be wrong to say absent now */
			return 1;
		}
		e->len = len;
		memcpy(e->name, name, len);
		e->h.hash = name_hash(name, len);
		e->d.present = 0;
		e->unknown = 0;
		cvfs_htab_insert(&d->names, &e->h);
		c->n++;
	}
	if (e->d.present)
		d->npresent--;
	if (e->unknown)
		d->nunknown--;
	e->unknown = !v;
	if (v) {
		e->d = *v;
		if (v->present)
			d->npresent++;
	} else {
		memset(&e->d, 0, sizeof(e->d));
		d->nunknown++;
	}
	return 1;
}

int rc_dent_get(struct rcache *c, uint64_t dir, const char *name, size_t len, struct rc_dent *v)
{
	if (!c)
		return 0;
	int hit = 0;
	pthread_mutex_lock(&c->mu);
	struct cdir *d = c->live ? dir_find(c, dir) : NULL;
	if (d) {
		struct cname *e = name_find(d, name, len);
		if (e) {
			*v = e->d;
			hit = !e->unknown;
		} else if (d->whole) {
			memset(v, 0, sizeof(*v));
			hit = 1;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void rc_dir_snap(struct rcache *c, uint64_t dir, struct rc_tok *tok)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	tok->seq = c->dseq[slot(dir)];
	tok->epoch = c->epoch;
	tok->any = 0;
	pthread_mutex_unlock(&c->mu);
}

static int tok_ok(struct rcache *c, const struct rc_tok *tok, uint64_t dir)
{
	return c->live && tok->epoch == c->epoch && tok->seq == c->dseq[slot(dir)];
}

void rc_dent_fill(struct rcache *c, const struct rc_tok *tok, uint64_t dir, const char *name,
		  size_t len, const struct rc_dent *v)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	struct cdir *d = tok_ok(c, tok, dir) ? dir_get(c, dir) : NULL;
	if (d)
		name_store(c, d, name, len, v);
	pthread_mutex_unlock(&c->mu);
}

int rc_dir_load_begin(struct rcache *c, const struct rc_tok *tok, uint64_t dir)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (!tok_ok(c, tok, dir)) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	struct cdir *d = dir_find(c, dir);
	if (d) {
		cvfs_htab_remove(&c->dirs, &d->h);
		dir_free(c, d);
	}
	if (!dir_get(c, dir)) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	return 1; /* the mutex stays held until rc_dir_load_end */
}

void rc_dir_load_add(struct rcache *c, uint64_t dir, const char *name, size_t len,
		     const struct rc_dent *v)
{
	struct cdir *d = dir_find(c, dir);
	if (d && !name_store(c, d, name, len, v))
		c->epoch++; /* (cleared: nothing of this load is kept) */
}

void rc_dir_load_end(struct rcache *c, uint64_t dir)
{
	struct cdir *d = dir_find(c, dir);
	if (d)
		d->whole = 1;
	pthread_mutex_unlock(&c->mu);
}

void rc_dir_new(struct rcache *c, uint64_t dir)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->dseq[slot(dir)]++;
	struct cdir *d = NULL;
	if (c->live) {
		d = dir_find(c, dir);
		if (d) {
			cvfs_htab_remove(&c->dirs, &d->h);
			dir_free(c, d);
		}
		d = dir_get(c, dir);
	}
	if (d)
		d->whole = 1;
	pthread_mutex_unlock(&c->mu);
}

long rc_dir_count(struct rcache *c, uint64_t dir)
{
	if (!c)
		return -1;
	long n = -1;
	pthread_mutex_lock(&c->mu);
	struct cdir *d = c->live ? dir_find(c, dir) : NULL;
	if (d && d->whole && !d->nunknown)
		n = (long)d->npresent;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void rc_dent_set(struct rcache *c, uint64_t dir, const char *name, size_t len,
		 const struct rc_dent *v)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->dseq[slot(dir)]++;
	struct cdir *d = c->live ? dir_get(c, dir) : NULL;
	if (d)
		name_store(c, d, name, len, v);
	pthread_mutex_unlock(&c->mu);
}

void rc_dent_inval(struct rcache *c, uint64_t dir, const char *name, size_t len)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->dseq[slot(dir)]++;
	struct cdir *d = dir_find(c, dir);
	if (d && d->whole) {
		if (!name_store(c, d, name, len, NULL)) /* the rest stays known */
			c->epoch++;
	} else if (d) {
		name_drop(c, d, name, len);
	}
	pthread_mutex_unlock(&c->mu);
}

int rc_dir_whole(struct rcache *c, uint64_t dir)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	struct cdir *d = c->live ? dir_find(c, dir) : NULL;
	int r = d && d->whole;
	pthread_mutex_unlock(&c->mu);
	return r;
}

void rc_dir_inval(struct rcache *c, uint64_t dir)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->dseq[slot(dir)]++;
	struct cdir *d = dir_find(c, dir);
	if (d) {
		cvfs_htab_remove(&c->dirs, &d->h);
		dir_free(c, d);
	}
	pthread_mutex_unlock(&c->mu);
}
