/*
 * The S3 store: one object per file, so a bucket other tools wrote mounts as
 * it is (docs/s3.md has the whole mapping).
 *
 *   file      object  PREFIX + path            body = the bytes
 *   symlink   object  PREFIX + path            body = the target, mode S_IFLNK|0777
 *   directory common prefix PREFIX + path + "/", and a "path/" marker object
 *             when we made it (mkdir) or must keep it (it became empty)
 *   attributes user metadata as s3fs writes it: x-amz-meta-mode (decimal
 *             st_mode), -uid, -gid, -mtime/-atime/-ctime (seconds.nanoseconds)
 *
 * The inode contract is met with a table in memory: every name seen gets an
 * inode number (stable for the life of the mount, not across mounts), every
 * directory a listing fetched with ListObjectsV2 and cached for ttl seconds.
 * Our own changes update the cached listings in place.
 *
 * Data: reads are ranged GETs.  Writes go to a stage file (one temporary file
 * per inode being changed, in cache_dir); a write into an existing object
 * first fetches it.  The stage is uploaded with one PUT at flush (close),
 * fsync and release; a failed upload is reported there and retried later,
 * and S3 never shows a partial object.
 *
 * Namespace: mkdir and symlink write their object at once; a new regular
 * file is written at its first flush (or at the end of a later transaction if
 * nobody opened it).  rename is CopyObject + DeleteObject per object, run
 * when the transaction commits; not atomic.  No hard links (the core answers
 * EPERM).
 *
 * Locking.  lk (rwlock): write transactions take it exclusive; read
 * transactions and the outside-transaction hooks (open, flush, release,
 * sync) take it shared.  mu (mutex): every field of the store and the nodes,
 * held briefly; it is dropped around network requests in shared mode, which
 * is safe because nodes are only freed with lk held exclusive.  io (per
 * node): serialises uploads of one node.  Order: lk -> io -> mu.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "backends/s3/s3_client.h"
#include "cvfs/store.h"
#include "util/htab.h"

#define KEY_MAX 1024
#define DIR_MARKER_CT "Content-Type: application/x-directory"
#define FILE_CT "Content-Type: application/octet-stream"

struct s3dir {
	struct s3n **slots;
	size_t nslots, cap;
	size_t *freel;
	size_t nfree, freecap;
	size_t count;    /* live entries */
	size_t nsubdirs; /* of them directories */
	int listed;      /* the listing below is complete as of listed_at */
	int64_t listed_at;
};

struct s3n {
	struct cvfs_hnode hi; /* by ino */
	struct cvfs_hnode hd; /* by (parent, name), while named */
	uint64_t ino;
	uint64_t parent; /* 0: no name (new, removed, or displaced) */
	char *name;
	size_t nlen, slot;
	struct cvfs_attr a;
	unsigned remote : 1;    /* S3 has it (object, marker or common prefix) */
	unsigned marker : 1;    /* directories: a "dir/" marker object exists */
	unsigned meta : 1;      /* a carries what HEAD said (or what we wrote) */
	unsigned pending : 1;   /* a new file, not uploaded yet */
	unsigned dirty : 1;     /* the stage differs from the object */
	unsigned metadirty : 1; /* attributes differ from the object's metadata */
	unsigned gone : 1;      /* vanished from S3: ENOENT */
	unsigned inpend : 1;    /* on the store's pending list */
	uint64_t rsize;         /* size and ETag the listing or HEAD reported */
	char etag[48];
	uint32_t pmode, puid, pgid; /* attributes as S3 has them */
	int64_t pmtime;
	int64_t meta_at;        /* when meta was read (monotonic ns) */
	int64_t retry_at;       /* a failed upload is not retried before this */
	int fd;                 /* the stage, or -1 */
	char *link;             /* symlinks: the target once known */
	int nopen;
	uint64_t chg;           /* store change count at our last change to S3 */
	uint64_t pend_seq;      /* transaction that queued it */
	uint64_t seen;          /* listing generation that last saw it */
	struct s3n *pnext, *pprev;
	struct s3dir *dir;
	pthread_mutex_t io;
};

/* A rename waiting for the commit: src_key's objects go to the node's key. */
struct move {
	uint64_t ino;
	char *src_key; /* directories end in '/' */
	int isdir;
	uint64_t src_parent;
	char *src_name;
	size_t src_nlen;
};

struct s3s {
	struct cvfs_store base;
	struct s3c *c;
	char *prefix; /* "" or "some/prefix/" */
	char *cache_dir;
	int64_t ttl_ns;
	uint32_t uid, gid;
	int readonly;

	pthread_rwlock_t lk;
	pthread_mutex_t mu; /* protects everything below and all nodes */
	struct cvfs_htab byino, byname;
	struct s3n *root;
	uint64_t next_ino;
	uint64_t chg;     /* bumped by each change we make to S3 */
	uint64_t gen;     /* listing generations */
	uint64_t txn_seq; /* write transactions begun */
	struct s3n *pend; /* nodes with an upload owed and nobody holding them open */
	struct move *moves;
	size_t nmoves, capmoves;
	struct s3n **gone;  /* detached by listings, freed at a write txn_begin */
	size_t ngone, capgone;
};

static __thread int tl_write; /* this thread holds lk exclusive */

static inline struct s3s *S(struct cvfs_store *st)
{
	return (struct s3s *)st;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- tables ---- */

static int ino_eq(const struct cvfs_hnode *h, const void *key)
{
	return ((const struct s3n *)h)->ino == *(const uint64_t *)key;
}

static struct s3n *by_ino(struct s3s *s, uint64_t ino)
{
	return (struct s3n *)cvfs_htab_find(&s->byino, cvfs_hash_u64(ino), ino_eq, &ino);
}

struct nkey {
	uint64_t dir;
	const char *name;
	size_t len;
};

static int name_eq(const struct cvfs_hnode *h, const void *key)
{
	const struct s3n *n = (const struct s3n *)((const char *)h - offsetof(struct s3n, hd));
	const struct nkey *k = key;
	return n->parent == k->dir && n->nlen == k->len && memcmp(n->name, k->name, k->len) == 0;
}

static uint64_t name_hash(uint64_t dir, const char *name, size_t len)
{
	return cvfs_hash_bytes(name, len, dir);
}

static struct s3n *by_name(struct s3s *s, uint64_t dir, const char *name, size_t len)
{
	struct nkey k = {dir, name, len};
	struct cvfs_hnode *h = cvfs_htab_find(&s->byname, name_hash(dir, name, len), name_eq, &k);
	return h ? (struct s3n *)((char *)h - offsetof(struct s3n, hd)) : NULL;
}

static struct s3n *node_new(struct s3s *s, uint64_t ino, uint32_t mode)
{
	struct s3n *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	if (S_ISDIR(mode)) {
		n->dir = calloc(1, sizeof(*n->dir));
		if (!n->dir) {
			free(n);
			return NULL;
		}
	}
	n->ino = ino;
	n->fd = -1;
	n->a.ino = ino;
	n->a.mode = mode;
	pthread_mutex_init(&n->io, NULL);
	n->hi.hash = cvfs_hash_u64(ino);
	cvfs_htab_insert(&s->byino, &n->hi);
	if (ino >= s->next_ino)
		s->next_ino = ino + 1;
	return n;
}

static void stage_close(struct s3n *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

static void pend_del(struct s3s *s, struct s3n *n)
{
	if (!n->inpend)
		return;
	if (n->pprev)
		n->pprev->pnext = n->pnext;
	else
		s->pend = n->pnext;
	if (n->pnext)
		n->pnext->pprev = n->pprev;
	n->pnext = n->pprev = NULL;
	n->inpend = 0;
}

static void pend_add(struct s3s *s, struct s3n *n)
{
	if (n->inpend)
		return;
	n->pnext = s->pend;
	n->pprev = NULL;
	if (s->pend)
		s->pend->pprev = n;
	s->pend = n;
	n->inpend = 1;
	n->pend_seq = s->txn_seq;
}

static void node_free(struct s3s *s, struct s3n *n)
{
	pend_del(s, n);
	stage_close(n);
	if (n->dir) {
		free(n->dir->slots);
		free(n->dir->freel);
		free(n->dir);
	}
	pthread_mutex_destroy(&n->io);
	free(n->name);
	free(n->link);
	free(n);
}

static int attach(struct s3s *s, struct s3n *dir, struct s3n *n, const char *name, size_t len)
{
	struct s3dir *d = dir->dir;
	char *nm = malloc(len + 1);
	if (!nm)
		return -ENOMEM;
	memcpy(nm, name, len);
	nm[len] = 0;
	size_t slot;
	if (d->nfree) {
		slot = d->freel[--d->nfree];
	} else {
		if (d->nslots == d->cap) {
			size_t nc = d->cap ? d->cap * 2 : 16;
			struct s3n **t = realloc(d->slots, nc * sizeof(*t));
			if (!t) {
				free(nm);
				return -ENOMEM;
			}
			d->slots = t;
			d->cap = nc;
		}
		slot = d->nslots++;
	}
	free(n->name);
	n->name = nm;
	n->nlen = len;
	n->parent = dir->ino;
	n->slot = slot;
	d->slots[slot] = n;
	d->count++;
	if (n->dir)
		d->nsubdirs++;
	n->hd.hash = name_hash(dir->ino, name, len);
	cvfs_htab_insert(&s->byname, &n->hd);
	if (n->dir)
		n->a.parent = dir->ino;
	return 0;
}

static void detach(struct s3s *s, struct s3n *n)
{
	if (!n->parent)
		return;
	struct s3n *dir = by_ino(s, n->parent);
	cvfs_htab_remove(&s->byname, &n->hd);
	if (dir && dir->dir && n->slot < dir->dir->nslots && dir->dir->slots[n->slot] == n) {
		struct s3dir *d = dir->dir;
		d->slots[n->slot] = NULL;
		d->count--;
		if (n->dir)
			d->nsubdirs--;
		if (n->slot + 1 == d->nslots) {
			d->nslots--;
		} else {
			if (d->nfree == d->freecap) {
				size_t nc = d->freecap ? d->freecap * 2 : 16;
				size_t *t = realloc(d->freel, nc * sizeof(*t));
				if (t) {
					d->freel = t;
					d->freecap = nc;
				}
			}
			if (d->nfree < d->freecap)
				d->freel[d->nfree++] = n->slot;
		}
	}
	n->parent = 0;
}

/* The object key of n: prefix + path (+ '/' for directories).  malloc'd. */
static char *key_of(struct s3s *s, struct s3n *n, int *err)
{
	const char *parts[4096];
	size_t lens[4096];
	size_t np = 0, total = strlen(s->prefix);
	struct s3n *p = n;
	while (p != s->root) {
		if (!p->parent || np == 4096) {
			*err = -ENOENT;
			return NULL;
		}
		parts[np] = p->name;
		lens[np] = p->nlen;
		total += p->nlen + 1;
		np++;
		p = by_ino(s, p->parent);
		if (!p) {
			*err = -ENOENT;
			return NULL;
		}
	}
	if (total > KEY_MAX) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	char *k = malloc(total + 1), *q = k;
	if (!k) {
		*err = -ENOMEM;
		return NULL;
	}
	size_t pl = strlen(s->prefix);
	memcpy(q, s->prefix, pl);
	q += pl;
	while (np--) {
		memcpy(q, parts[np], lens[np]);
		q += lens[np];
		*q++ = '/';
	}
	if (!n->dir && q > k + pl)
		q--; /* a file: no trailing slash */
	*q = 0;
	return k;
}

/* ---- attributes and metadata ---- */

static void defaults(struct s3s *s, struct s3n *n, int64_t mtime)
{
	uint32_t type = n->a.mode & S_IFMT;
	n->a.mode = type | (type == S_IFDIR ? 0755 : 0644);
	n->a.uid = s->uid;
	n->a.gid = s->gid;
	if (mtime == INT64_MIN)
		mtime = real_ns();
	n->a.atime_ns = n->a.mtime_ns = n->a.ctime_ns = n->a.btime_ns = mtime;
	n->a.generation = 1;
	n->pmode = n->a.mode;
	n->puid = n->a.uid;
	n->pgid = n->a.gid;
	n->pmtime = n->a.mtime_ns;
}

/* "sec.frac" (s3fs, rclone) or RFC 3339; INT64_MIN if neither. */
static int64_t parse_time(const char *v)
{
	if (!v || !*v)
		return INT64_MIN;
	if (strchr(v, 'T'))
		return s3_parse_iso8601(v);
	char *end;
	errno = 0;
	long long sec = strtoll(v, &end, 10);
	if (errno || end == v)
		return INT64_MIN;
	int64_t ns = 0;
	if (*end == '.') {
		int64_t scale = 100000000;
		for (const char *p = end + 1; *p >= '0' && *p <= '9'; p++) {
			ns += (*p - '0') * scale;
			scale /= 10;
		}
	}
	return (int64_t)sec * 1000000000 + (sec < 0 ? -ns : ns);
}

static int parse_u32(const char *v, uint32_t *out)
{
	if (!v || !*v)
		return -1;
	char *end;
	errno = 0;
	/* s3fs writes decimal; rclone's mode is octal with a leading 0 */
	unsigned long x = strtoul(v, &end, v[0] == '0' && v[1] ? 8 : 10);
	if (errno || *end || x > 0xffffffffu)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* Applies a HEAD answer to n. */
static void apply_head(struct s3s *s, struct s3n *n, const struct s3_resp *rs)
{
	int64_t lm = s3_parse_http_date(s3_resp_hdr(rs, "last-modified"));
	defaults(s, n, lm);
	const char *v;
	uint32_t x;
	if (!n->dir && (v = s3_resp_hdr(rs, "content-length")))
		n->a.size = n->rsize = strtoull(v, NULL, 10);
	if ((v = s3_resp_hdr(rs, "etag")))
		snprintf(n->etag, sizeof(n->etag), "%s", v);
	if (parse_u32(s3_resp_hdr(rs, "x-amz-meta-mode"), &x) == 0) {
		uint32_t type = n->a.mode & S_IFMT;
		if (!n->dir && (x & S_IFMT) == S_IFLNK)
			type = S_IFLNK;
		n->a.mode = type | (x & 07777);
	}
	if (parse_u32(s3_resp_hdr(rs, "x-amz-meta-uid"), &x) == 0)
		n->a.uid = x;
	if (parse_u32(s3_resp_hdr(rs, "x-amz-meta-gid"), &x) == 0)
		n->a.gid = x;
	int64_t t = parse_time(s3_resp_hdr(rs, "x-amz-meta-mtime"));
	if (t != INT64_MIN)
		n->a.mtime_ns = t;
	t = parse_time(s3_resp_hdr(rs, "x-amz-meta-atime"));
	n->a.atime_ns = t != INT64_MIN ? t : n->a.mtime_ns;
	t = parse_time(s3_resp_hdr(rs, "x-amz-meta-ctime"));
	n->a.ctime_ns = t != INT64_MIN ? t : n->a.mtime_ns;
	n->a.btime_ns = n->a.mtime_ns;
	n->pmode = n->a.mode;
	n->puid = n->a.uid;
	n->pgid = n->a.gid;
	n->pmtime = n->a.mtime_ns;
	n->meta = 1;
	n->meta_at = mono_ns();
	if (!S_ISLNK(n->a.mode)) {
		free(n->link);
		n->link = NULL;
	}
}

/* Metadata headers for a, in out[] (static storage in buf). */
struct metahdrs {
	char b[6][96];
	const char *h[10];
};

static void fmt_time(char *dst, size_t sz, const char *name, int64_t ns)
{
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;
	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	snprintf(dst, sz, "x-amz-meta-%s: %" PRId64 ".%09" PRId64, name, sec, rem);
}

static void meta_headers(const struct cvfs_attr *a, struct metahdrs *m, const char *extra1,
			 const char *extra2)
{
	snprintf(m->b[0], sizeof(m->b[0]), "x-amz-meta-mode: %u", a->mode);
	snprintf(m->b[1], sizeof(m->b[1]), "x-amz-meta-uid: %u", a->uid);
	snprintf(m->b[2], sizeof(m->b[2]), "x-amz-meta-gid: %u", a->gid);
	fmt_time(m->b[3], sizeof(m->b[3]), "mtime", a->mtime_ns);
	fmt_time(m->b[4], sizeof(m->b[4]), "atime", a->atime_ns);
	fmt_time(m->b[5], sizeof(m->b[5]), "ctime", a->ctime_ns);
	int i = 0;
	for (; i < 6; i++)
		m->h[i] = m->b[i];
	m->h[i++] = S_ISDIR(a->mode) ? DIR_MARKER_CT : FILE_CT;
	if (extra1)
		m->h[i++] = extra1;
	if (extra2)
		m->h[i++] = extra2;
	m->h[i] = NULL;
}

static void persisted(struct s3n *n)
{
	n->pmode = n->a.mode;
	n->puid = n->a.uid;
	n->pgid = n->a.gid;
	n->pmtime = n->a.mtime_ns;
}

static int meta_differs(const struct s3n *n)
{
	return n->pmode != n->a.mode || n->puid != n->a.uid || n->pgid != n->a.gid ||
	       n->pmtime != n->a.mtime_ns;
}

/* ---- requests (called with mu held; mu is dropped meanwhile) ---- */

static int req(struct s3s *s, struct s3_req *rq, struct s3_resp *rs)
{
	pthread_mutex_unlock(&s->mu);
	int rc = s3c_do(s->c, rq, rs);
	pthread_mutex_lock(&s->mu);
	return rc;
}

static int simple(struct s3s *s, const char *method, const char *key, const char *const *hdrs,
		  const void *body, size_t blen)
{
	struct s3_req rq = S3_REQ_INIT;
	rq.method = method;
	rq.key = key;
	rq.hdrs = hdrs;
	rq.body = body;
	rq.blen = blen;
	struct s3_resp rs;
	int rc = req(s, &rq, &rs);
	s3_resp_free(&rs);
	if (rc == -ENOENT && !strcmp(method, "DELETE"))
		rc = 0;
	return rc;
}

static int put_meta_object(struct s3s *s, const char *key, const struct cvfs_attr *a,
			   const void *body, size_t blen)
{
	struct metahdrs m;
	meta_headers(a, &m, NULL, NULL);
	return simple(s, "PUT", key, m.h, body, blen);
}

/* Server-side copy of src to dst; REPLACE gives dst the metadata of a. */
static int copy_object(struct s3s *s, const char *src, const char *dst, const struct cvfs_attr *a)
{
	char *es = s3_uri_encode(src, strlen(src), 1);
	char *cs = NULL;
	if (!es || asprintf(&cs, "x-amz-copy-source: /%s/%s", s->c->bucket, es) < 0) {
		free(es);
		return -ENOMEM;
	}
	free(es);
	int rc;
	if (a) {
		struct metahdrs m;
		meta_headers(a, &m, cs, "x-amz-metadata-directive: REPLACE");
		rc = simple(s, "PUT", dst, m.h, NULL, 0);
	} else {
		const char *h[] = {cs, NULL};
		rc = simple(s, "PUT", dst, h, NULL, 0);
	}
	free(cs);
	return rc;
}

/* Fetches the metadata of n with HEAD. */
static int head_node(struct s3s *s, struct s3n *n)
{
	int err = 0;
	char *key = key_of(s, n, &err);
	if (!key)
		return err;
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "HEAD";
	rq.key = key;
	struct s3_resp rs;
	int rc = req(s, &rq, &rs);
	free(key);
	if (rc == 0) {
		if (n->dir)
			n->marker = 1;
		if (!(n->pending || n->dirty || n->metadirty || n->nopen))
			apply_head(s, n, &rs);
		else
			n->meta = 1;
	} else if (rc == -ENOENT && n->dir) {
		/* no marker: an implied directory keeps its defaults */
		n->marker = 0;
		n->meta = 1;
		n->meta_at = mono_ns();
		rc = 0;
	}
	s3_resp_free(&rs);
	return rc;
}

/* ---- listings ---- */

static int busy(const struct s3n *n)
{
	return n->pending || n->dirty || n->metadirty || n->nopen > 0;
}

static void gone_add(struct s3s *s, struct s3n *n)
{
	detach(s, n);
	n->gone = 1;
	if (s->ngone == s->capgone) {
		size_t nc = s->capgone ? s->capgone * 2 : 64;
		struct s3n **t = realloc(s->gone, nc * sizeof(*t));
		if (!t)
			return; /* leaks the node until free */
		s->gone = t;
		s->capgone = nc;
	}
	s->gone[s->ngone++] = n;
}

static int valid_name(const char *name, size_t len)
{
	if (len == 0 || len > CVFS_NAME_MAX)
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	if (memchr(name, '/', len) || memchr(name, 0, len))
		return 0;
	/* s3fs's old directory markers "name_$folder$" are not files */
	if (len > 9 && memcmp(name + len - 9, "_$folder$", 9) == 0)
		return 0;
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void merge(struct s3s *s, struct s3n *dir, struct s3_list *l, uint64_t chg0)
{
	uint64_t gen = ++s->gen;
	/* a name both a file ("a") and a directory ("a/..."): the directory wins */
	const char **dirs = malloc((l->n ? l->n : 1) * sizeof(*dirs));
	size_t nd = 0;
	for (size_t i = 0; dirs && i < l->n; i++)
		if (l->e[i].isdir)
			dirs[nd++] = l->e[i].name;
	if (dirs)
		qsort(dirs, nd, sizeof(*dirs), cmp_str);
	for (size_t i = 0; i < l->n; i++) {
		struct s3_list_ent *e = &l->e[i];
		size_t len = strlen(e->name);
		if (!valid_name(e->name, len))
			continue;
		if (!e->isdir && dirs && nd &&
		    bsearch(&e->name, dirs, nd, sizeof(*dirs), cmp_str))
			continue;
		struct s3n *c = by_name(s, dir->ino, e->name, len);
		if (c && (c->dir != NULL) != (e->isdir != 0)) {
			if (busy(c) || c->chg > chg0) {
				c->seen = gen;
				continue;
			}
			gone_add(s, c);
			c = NULL;
		}
		if (c) {
			c->seen = gen;
			c->remote = 1;
			if (!e->isdir && !busy(c) && c->chg <= chg0 &&
			    (c->rsize != e->size || strcmp(c->etag, e->etag) != 0)) {
				/* changed by someone else: forget what we knew */
				c->meta = 0;
				c->a.size = c->rsize = e->size;
				snprintf(c->etag, sizeof(c->etag), "%s", e->etag);
				stage_close(c);
				free(c->link);
				c->link = NULL;
			}
			continue;
		}
		c = node_new(s, s->next_ino, e->isdir ? S_IFDIR : S_IFREG);
		if (!c)
			break;
		if (attach(s, dir, c, e->name, len)) {
			cvfs_htab_remove(&s->byino, &c->hi);
			node_free(s, c);
			break;
		}
		c->remote = 1;
		c->seen = gen;
		c->a.nlink = e->isdir ? 2 : 1;
		defaults(s, c, e->isdir ? INT64_MIN : e->mtime_ns);
		if (!e->isdir) {
			c->a.size = c->rsize = e->size;
			snprintf(c->etag, sizeof(c->etag), "%s", e->etag);
		}
	}
	free(dirs);
	struct s3dir *d = dir->dir;
	for (size_t i = 0; i < d->nslots; i++) {
		struct s3n *c = d->slots[i];
		if (c && c->seen != gen && !busy(c) && c->chg <= chg0)
			gone_add(s, c);
	}
	if (l->marker)
		dir->marker = 1;
	d->listed = 1;
	d->listed_at = mono_ns();
}

/* Makes dir's listing current (within ttl).  A failed refresh of a listing
 * we had keeps serving the old one. */
static int ensure_listed(struct s3s *s, struct s3n *dir)
{
	struct s3dir *d = dir->dir;
	if (d->listed && mono_ns() - d->listed_at < s->ttl_ns)
		return 0;
	if (!dir->remote && d->listed)
		return 0; /* made by us, not in S3 yet */
	int err = 0;
	char *key = key_of(s, dir, &err);
	if (!key)
		return err;
	uint64_t chg0 = s->chg;
	struct s3_list l;
	pthread_mutex_unlock(&s->mu);
	int rc = s3c_list(s->c, key, 0, &l);
	pthread_mutex_lock(&s->mu);
	free(key);
	if (rc) {
		if (d->listed) {
			d->listed_at = mono_ns(); /* try again after ttl */
			return 0;
		}
		return rc;
	}
	if (!dir->gone)
		merge(s, dir, &l, chg0);
	s3_list_free(&l);
	return 0;
}

/* ---- the stage ---- */

static int stage_open(struct s3s *s, struct s3n *n)
{
	if (n->fd >= 0)
		return 0;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/stage-XXXXXX", s->cache_dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	unlink(path);
	n->fd = fd;
	return 0;
}

/* Makes sure n has a stage holding its current bytes (size n->a.size). */
static int ensure_stage(struct s3s *s, struct s3n *n)
{
	if (n->fd >= 0)
		return 0;
	int rc = stage_open(s, n);
	if (rc)
		return rc;
	if (n->remote && !n->pending && n->a.size > 0) {
		int err = 0;
		char *key = key_of(s, n, &err);
		if (!key) {
			stage_close(n);
			return err;
		}
		struct s3_req rq = S3_REQ_INIT;
		rq.method = "GET";
		rq.key = key;
		rq.sink_fd = n->fd;
		struct s3_resp rs;
		rc = req(s, &rq, &rs);
		free(key);
		s3_resp_free(&rs);
		if (rc) {
			stage_close(n);
			return rc;
		}
	}
	if (ftruncate(n->fd, (off_t)n->a.size) < 0) {
		rc = -errno;
		stage_close(n);
		return rc;
	}
	return 0;
}

/* Uploads what n owes S3.  mu and n->io held (or lk exclusive). */
static int upload(struct s3s *s, struct s3n *n)
{
	if (!(n->pending || n->dirty || n->metadirty))
		return 0;
	if (!n->parent || n->gone) { /* no name any more: nothing to write */
		n->pending = n->dirty = n->metadirty = 0;
		pend_del(s, n);
		return 0;
	}
	int err = 0;
	char *key = key_of(s, n, &err);
	if (!key)
		return err;
	struct cvfs_attr a = n->a;
	int rc;
	if (!n->pending && !n->dirty) {
		rc = meta_differs(n) ? copy_object(s, key, key, &a) : 0;
	} else if (S_ISLNK(a.mode)) {
		rc = put_meta_object(s, key, &a, n->link, n->link ? strlen(n->link) : 0);
	} else {
		struct metahdrs m;
		meta_headers(&a, &m, NULL, NULL);
		struct s3_req rq = S3_REQ_INIT;
		rq.method = "PUT";
		rq.key = key;
		rq.hdrs = m.h;
		if (n->fd >= 0) {
			rq.body_fd = n->fd;
			rq.body_len = a.size;
		}
		struct s3_resp rs;
		rc = rq.body_fd < 0 && a.size ? -EIO : req(s, &rq, &rs);
		if (rq.body_fd >= 0 || !a.size) {
			if (rc == 0) {
				const char *et = s3_resp_hdr(&rs, "etag");
				snprintf(n->etag, sizeof(n->etag), "%s", et ? et : "");
			}
			s3_resp_free(&rs);
		}
	}
	free(key);
	if (rc) {
		n->retry_at = mono_ns() + 2000000000LL;
		return rc;
	}
	n->pending = n->dirty = n->metadirty = 0;
	n->remote = 1;
	n->rsize = a.size;
	n->pmode = a.mode;
	n->puid = a.uid;
	n->pgid = a.gid;
	n->pmtime = a.mtime_ns;
	n->meta = 1;
	n->meta_at = mono_ns();
	n->chg = ++s->chg;
	pend_del(s, n);
	return 0;
}

/* Keeps an emptied implied directory alive with a marker. */
static int keep_dir(struct s3s *s, struct s3n *dir)
{
	if (dir == s->root || dir->marker || dir->dir->count || !dir->remote || !dir->parent)
		return 0;
	int err = 0;
	char *key = key_of(s, dir, &err);
	if (!key)
		return err;
	int rc = put_meta_object(s, key, &dir->a, NULL, 0);
	free(key);
	if (rc == 0) {
		dir->marker = 1;
		persisted(dir);
		dir->chg = ++s->chg;
	}
	return rc;
}

/* ---- transactions ---- */

static void free_gone(struct s3s *s)
{
	for (size_t i = 0; i < s->ngone; i++) {
		struct s3n *n = s->gone[i];
		if (n->parent || busy(n) || (n->dir && n->dir->count))
			continue; /* came back, or still in use */
		cvfs_htab_remove(&s->byino, &n->hi);
		node_free(s, n);
	}
	s->ngone = 0;
}

static int s_txn_begin(struct cvfs_store *st, int write)
{
	struct s3s *s = S(st);
	if (write) {
		pthread_rwlock_wrlock(&s->lk);
		tl_write = 1;
		pthread_mutex_lock(&s->mu);
		s->txn_seq++;
		/* keep gone nodes the kernel may still ask about for one txn */
		pthread_mutex_unlock(&s->mu);
	} else {
		pthread_rwlock_rdlock(&s->lk);
	}
	return 0;
}

static void move_free(struct move *m)
{
	free(m->src_key);
	free(m->src_name);
}

/* Copies every object below src (a directory key) to dst, or one object. */
static int copy_tree(struct s3s *s, const char *src, const char *dst, int isdir)
{
	if (!isdir)
		return copy_object(s, src, dst, NULL);
	struct s3_list l;
	pthread_mutex_unlock(&s->mu);
	int rc = s3c_list(s->c, src, 1, &l);
	pthread_mutex_lock(&s->mu);
	if (rc)
		return rc;
	size_t dl = strlen(dst);
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		if (l.e[i].isdir)
			continue;
		char *sk = NULL, *dk = NULL;
		if (asprintf(&sk, "%s%s", src, l.e[i].name) < 0 ||
		    asprintf(&dk, "%.*s%s", (int)dl, dst, l.e[i].name) < 0)
			rc = -ENOMEM;
		else
			rc = copy_object(s, sk, dk, NULL);
		free(sk);
		free(dk);
	}
	if (rc == 0 && l.marker)
		rc = copy_object(s, src, dst, NULL);
	s3_list_free(&l);
	return rc;
}

static int delete_tree(struct s3s *s, const char *src, int isdir)
{
	if (!isdir)
		return simple(s, "DELETE", src, NULL, NULL, 0);
	struct s3_list l;
	pthread_mutex_unlock(&s->mu);
	int rc = s3c_list(s->c, src, 1, &l);
	pthread_mutex_lock(&s->mu);
	if (rc)
		return rc;
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		char *sk = NULL;
		if (asprintf(&sk, "%s%s", src, l.e[i].name) < 0)
			rc = -ENOMEM;
		else
			rc = simple(s, "DELETE", sk, NULL, NULL, 0);
		free(sk);
	}
	if (rc == 0)
		rc = simple(s, "DELETE", src, NULL, NULL, 0);
	s3_list_free(&l);
	return rc;
}

/* Runs the renames of this transaction: copy each source to its node's new
 * key, then delete the source.  When a destination is another move's source
 * (RENAME_EXCHANGE), everything goes through temporary keys first. */
static int run_moves(struct s3s *s)
{
	size_t nm = s->nmoves;
	char **dst = calloc(nm ? nm : 1, sizeof(*dst));
	char **tmp = calloc(nm ? nm : 1, sizeof(*tmp));
	int rc = dst && tmp ? 0 : -ENOMEM;
	int conflict = 0;
	for (size_t i = 0; i < nm && rc == 0; i++) {
		struct s3n *n = by_ino(s, s->moves[i].ino);
		if (!n || !n->parent || n->gone)
			continue; /* no name any more: the source just goes */
		int err = 0;
		dst[i] = key_of(s, n, &err);
		if (!dst[i])
			rc = err;
	}
	for (size_t i = 0; i < nm && rc == 0; i++)
		for (size_t j = 0; j < nm; j++)
			if (i != j && dst[i] && !strcmp(dst[i], s->moves[j].src_key))
				conflict = 1;
	for (size_t i = 0; i < nm && rc == 0; i++) {
		struct move *m = &s->moves[i];
		struct s3n *n = by_ino(s, m->ino);
		int has = n && (n->remote && !n->pending);
		if (!dst[i] || !has)
			continue;
		if (conflict) {
			if (asprintf(&tmp[i], "%s.chuk-vfs-tmp/%d-%" PRIu64 "%s", s->prefix, getpid(),
				     m->ino, m->isdir ? "/" : "") < 0) {
				tmp[i] = NULL;
				rc = -ENOMEM;
				break;
			}
			rc = copy_tree(s, m->src_key, tmp[i], m->isdir);
		} else {
			rc = copy_tree(s, m->src_key, dst[i], m->isdir);
		}
	}
	for (size_t i = 0; i < nm && rc == 0; i++) {
		struct s3n *n = by_ino(s, s->moves[i].ino);
		if (n && n->remote && !n->pending)
			rc = delete_tree(s, s->moves[i].src_key, s->moves[i].isdir);
	}
	for (size_t i = 0; i < nm && rc == 0 && conflict; i++) {
		if (!tmp[i])
			continue;
		rc = copy_tree(s, tmp[i], dst[i], s->moves[i].isdir);
		if (rc == 0)
			rc = delete_tree(s, tmp[i], s->moves[i].isdir);
	}
	/* a moved directory gets a marker with its attributes at the new place */
	for (size_t i = 0; i < nm && rc == 0; i++) {
		struct s3n *n = by_ino(s, s->moves[i].ino);
		if (n && dst[i] && n->dir && n->remote) {
			rc = put_meta_object(s, dst[i], &n->a, NULL, 0);
			if (rc == 0) {
				n->marker = 1;
				persisted(n);
			}
		}
		if (n)
			n->chg = ++s->chg;
		/* the old parent may have lost its last entry */
		struct s3n *op = by_ino(s, s->moves[i].src_parent);
		if (rc == 0 && op && op->dir)
			rc = keep_dir(s, op);
	}
	for (size_t i = 0; i < nm; i++) {
		free(dst ? dst[i] : NULL);
		free(tmp ? tmp[i] : NULL);
	}
	free(dst);
	free(tmp);
	return rc;
}

/* After a failure the cached view may be wrong: list again. */
static void forget_listings_of_moves(struct s3s *s)
{
	for (size_t i = 0; i < s->nmoves; i++) {
		struct s3n *n = by_ino(s, s->moves[i].ino);
		struct s3n *op = by_ino(s, s->moves[i].src_parent);
		if (op && op->dir)
			op->dir->listed = 0;
		if (n && n->parent) {
			struct s3n *np = by_ino(s, n->parent);
			if (np && np->dir)
				np->dir->listed = 0;
		}
	}
}

/* Uploads owed by files nobody opened (mknod, truncate(2)): those queued by
 * an earlier transaction.  Errors stay with the node and are retried later. */
static void run_pending(struct s3s *s)
{
	int64_t now = mono_ns();
	struct s3n *n = s->pend;
	while (n) {
		struct s3n *next = n->pnext;
		if (n->nopen == 0 && n->pend_seq < s->txn_seq && n->retry_at <= now)
			(void)upload(s, n);
		n = next;
	}
}

static int s_txn_end(struct cvfs_store *st, int commit)
{
	struct s3s *s = S(st);
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (tl_write) {
		if (s->nmoves) {
			if (commit)
				rc = run_moves(s);
			if (!commit || rc)
				forget_listings_of_moves(s);
			for (size_t i = 0; i < s->nmoves; i++)
				move_free(&s->moves[i]);
			s->nmoves = 0;
		}
		if (s->pend)
			run_pending(s);
		free_gone(s);
	}
	pthread_mutex_unlock(&s->mu);
	tl_write = 0;
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

/* ---- inodes ---- */

static int s_ino_alloc(struct cvfs_store *st, uint64_t *ino)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	*ino = s->next_ino++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static void fill(struct s3s *s, struct s3n *n, struct cvfs_attr *out)
{
	*out = n->a;
	out->ino = n->ino;
	if (n->parent || n == s->root) {
		if (n->dir)
			out->nlink = 2 + (uint32_t)n->dir->nsubdirs;
		else
			out->nlink = 1;
	}
	if (n->dir)
		out->size = 4096;
}

static int s_inode_get(struct cvfs_store *st, uint64_t ino, struct cvfs_attr *out)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	int rc = 0;
	if (!n || n->gone) {
		rc = -ENOENT;
	} else if (!n->meta && n->remote && n != s->root && n->parent && !busy(n)) {
		rc = head_node(s, n);
		if (rc == -ENOENT && !n->dir && !busy(n) && n->parent) {
			gone_add(s, n);
		}
	}
	if (rc == 0)
		fill(s, n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int s_inode_put(struct cvfs_store *st, const struct cvfs_attr *a)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, a->ino);
	int rc = 0;
	if (!n) {
		n = node_new(s, a->ino, a->mode);
		if (!n) {
			rc = -ENOMEM;
		} else {
			n->a = *a;
			n->meta = 1;
			n->meta_at = mono_ns();
			if (n->dir) {
				n->dir->listed = 1;
				n->dir->listed_at = mono_ns();
			}
		}
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	if ((n->a.mode & S_IFMT) != (a->mode & S_IFMT)) {
		pthread_mutex_unlock(&s->mu);
		return -EINVAL;
	}
	struct cvfs_attr old = n->a;
	n->a = *a;
	if (n->dir) {
		n->a.size = 0;
		/* a directory's own attributes: kept when chmod/chown/utimes set them
		 * (not when the core touches mtime for a change inside) */
		int named = n->parent && n != s->root && !n->gone;
		int set_time = a->mtime_ns != n->pmtime && a->mtime_ns != a->ctime_ns;
		if (named && n->remote &&
		    (a->mode != n->pmode || a->uid != n->puid || a->gid != n->pgid || set_time)) {
			int err = 0;
			char *key = key_of(s, n, &err);
			rc = key ? put_meta_object(s, key, &n->a, NULL, 0) : err;
			free(key);
			if (rc == 0) {
				n->marker = 1;
				persisted(n);
				n->chg = ++s->chg;
			} else {
				n->a = old;
			}
		}
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	if (S_ISREG(a->mode) && a->size != old.size) {
		/* truncate(2)/O_TRUNC/growth: the stage takes the new size */
		n->a.size = old.size;
		rc = ensure_stage(s, n);
		n->a.size = a->size;
		if (rc == 0 && ftruncate(n->fd, (off_t)a->size) < 0)
			rc = -errno;
		if (rc) {
			n->a = old;
			pthread_mutex_unlock(&s->mu);
			return rc;
		}
		n->dirty = 1;
	}
	if (!n->parent || n->gone || n->pending) {
		/* no object to change (yet): the upload will carry it */
	} else if (n->dirty || n->nopen > 0) {
		if (meta_differs(n))
			n->metadirty = 1;
		if (n->nopen == 0)
			pend_add(s, n); /* uploaded at the end of a later transaction */
	} else if (meta_differs(n) && n->remote) {
		int moving = 0;
		for (size_t i = 0; i < s->nmoves; i++)
			moving |= s->moves[i].ino == n->ino;
		if (!moving) {
			int err = 0;
			char *key = key_of(s, n, &err);
			rc = key ? copy_object(s, key, key, &n->a) : err;
			free(key);
			if (rc == 0) {
				persisted(n);
				n->chg = ++s->chg;
			} else {
				n->a = old;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int s_inode_del(struct cvfs_store *st, uint64_t ino)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	int rc = 0;
	if (!n || n == s->root) {
		rc = n ? -EBUSY : -ENOENT;
	} else if (n->dir && n->dir->count) {
		rc = -ENOTEMPTY;
	} else {
		detach(s, n);
		for (size_t i = 0; i < s->ngone; i++)
			if (s->gone[i] == n)
				s->gone[i] = s->gone[--s->ngone];
		cvfs_htab_remove(&s->byino, &n->hi);
		node_free(s, n);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- directory entries ---- */

static int s_dent_get(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t *ino)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *d = by_ino(s, dir);
	int rc = 0;
	if (!d || d->gone)
		rc = -ENOENT;
	else if (!d->dir)
		rc = -ENOTDIR;
	else
		rc = ensure_listed(s, d);
	if (rc == 0) {
		struct s3n *n = by_name(s, dir, name, len);
		if (n)
			*ino = n->ino;
		else
			rc = -ENOENT;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* An open file about to lose its object keeps its bytes in a stage. */
static int keep_bytes(struct s3s *s, struct s3n *n)
{
	if (n->dir || n->nopen == 0 || n->fd >= 0 || !S_ISREG(n->a.mode))
		return 0;
	return ensure_stage(s, n);
}

static int s_dent_put(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t ino, uint32_t type)
{
	struct s3s *s = S(st);
	if (len == 0 || len > CVFS_NAME_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&s->mu);
	struct s3n *d = by_ino(s, dir), *n = by_ino(s, ino);
	int rc = 0;
	if (!d || d->gone || !n) {
		rc = -ENOENT;
		goto out;
	}
	if (!d->dir) {
		rc = -ENOTDIR;
		goto out;
	}
	rc = ensure_listed(s, d);
	if (rc)
		goto out;
	struct s3n *x = by_name(s, dir, name, len);
	if (x == n)
		goto out;
	int renamed = n->parent != 0;
	struct move mv = {0};
	if (renamed) {
		int err = 0;
		mv.ino = n->ino;
		mv.isdir = n->dir != NULL;
		mv.src_key = key_of(s, n, &err);
		mv.src_parent = n->parent;
		mv.src_name = strndup(n->name, n->nlen);
		mv.src_nlen = n->nlen;
		if (!mv.src_key || !mv.src_name) {
			move_free(&mv);
			rc = mv.src_key ? -ENOMEM : err;
			goto out;
		}
		if (s->nmoves == s->capmoves) {
			size_t nc = s->capmoves ? s->capmoves * 2 : 4;
			struct move *t = realloc(s->moves, nc * sizeof(*t));
			if (!t) {
				move_free(&mv);
				rc = -ENOMEM;
				goto out;
			}
			s->moves = t;
			s->capmoves = nc;
		}
	}
	if (x) {
		/* displaced (rename over it): its object is overwritten */
		rc = keep_bytes(s, x);
		if (rc) {
			move_free(&mv);
			goto out;
		}
		detach(s, x);
	}
	if (renamed)
		detach(s, n);
	rc = attach(s, d, n, name, len);
	if (rc == 0) {
		int err = 0;
		char *key = key_of(s, n, &err);
		if (!key)
			rc = err;
		else if (!renamed && n->dir)
			rc = put_meta_object(s, key, &n->a, NULL, 0);
		else if (!renamed && S_ISLNK(n->a.mode))
			rc = put_meta_object(s, key, &n->a, n->link, n->link ? strlen(n->link) : 0);
		free(key);
		if (rc)
			detach(s, n);
	}
	if (rc) {
		move_free(&mv);
		goto out;
	}
	(void)type;
	if (renamed) {
		s->moves[s->nmoves++] = mv;
	} else if (n->dir || S_ISLNK(n->a.mode)) {
		n->remote = 1;
		n->marker = n->dir != NULL;
		persisted(n);
		n->chg = ++s->chg;
	} else if (!n->remote) {
		n->pending = 1;
		pend_add(s, n);
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int s_dent_del(struct cvfs_store *st, uint64_t dir, const char *name, size_t len)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *d = by_ino(s, dir);
	int rc = 0;
	if (!d || !d->dir) {
		rc = d ? -ENOTDIR : -ENOENT;
		goto out;
	}
	struct s3n *n = by_name(s, dir, name, len);
	if (!n) {
		/* the second half of a rename: the move runs at commit */
		rc = -ENOENT;
		for (size_t i = 0; i < s->nmoves; i++)
			if (s->moves[i].src_parent == dir && s->moves[i].src_nlen == len &&
			    !memcmp(s->moves[i].src_name, name, len))
				rc = 0;
		goto out;
	}
	if (n->remote && !n->pending) {
		rc = keep_bytes(s, n);
		int err = 0;
		char *key = rc ? NULL : key_of(s, n, &err);
		if (!rc && !key)
			rc = err;
		if (rc == 0)
			rc = simple(s, "DELETE", key, NULL, NULL, 0);
		free(key);
		if (rc)
			goto out;
		n->remote = 0;
		n->marker = 0;
	}
	n->pending = 0;
	n->chg = ++s->chg;
	detach(s, n);
	rc = keep_dir(s, d);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

struct lent {
	char *name;
	size_t len;
	uint64_t ino, cookie;
	uint32_t type;
};

static int s_dir_list(struct cvfs_store *st, uint64_t dir, uint64_t cookie, cvfs_dirent_cb cb,
		      void *arg)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *d = by_ino(s, dir);
	int rc = 0;
	if (!d || d->gone)
		rc = -ENOENT;
	else if (!d->dir)
		rc = -ENOTDIR;
	else if (cookie == 0)
		rc = ensure_listed(s, d);
	else if (!d->dir->listed)
		rc = ensure_listed(s, d);
	/* Entries go to cb in batches copied out under mu: cb calls inode_get. */
	enum { BATCH = 256 };
	struct lent b[BATCH];
	while (rc == 0) {
		size_t k = 0;
		for (size_t i = cookie; i < d->dir->nslots && k < BATCH; i++) {
			struct s3n *c = d->dir->slots[i];
			if (!c)
				continue;
			b[k].name = strndup(c->name, c->nlen);
			if (!b[k].name) {
				rc = -ENOMEM;
				break;
			}
			b[k].len = c->nlen;
			b[k].ino = c->ino;
			b[k].cookie = i + 1;
			b[k].type = c->a.mode & S_IFMT;
			k++;
		}
		pthread_mutex_unlock(&s->mu);
		int stop = 0;
		for (size_t i = 0; i < k; i++) {
			if (!stop && rc == 0) {
				struct cvfs_dirent e = {b[i].name, b[i].len, b[i].ino, b[i].type,
							b[i].cookie};
				stop = cb(arg, &e);
				cookie = b[i].cookie;
			}
			free(b[i].name);
		}
		pthread_mutex_lock(&s->mu);
		if (stop || k < BATCH)
			break;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int s_dir_empty(struct cvfs_store *st, uint64_t dir)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *d = by_ino(s, dir);
	int rc;
	if (!d || d->gone)
		rc = -ENOENT;
	else if (!d->dir)
		rc = -ENOTDIR;
	else {
		/* before removing a directory, look again: others may have filled it */
		if (d->remote)
			d->dir->listed_at = 0;
		rc = ensure_listed(s, d);
		if (rc == 0)
			rc = d->dir->count == 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- data ---- */

static ssize_t s_read(struct cvfs_store *st, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	ssize_t rc = 0;
	if (!n) {
		rc = -ENOENT;
		goto out;
	}
	if (len == 0)
		goto out;
	if (S_ISLNK(n->a.mode) && !n->link && n->remote) {
		int err = 0;
		char *key = key_of(s, n, &err);
		if (!key) {
			rc = err;
			goto out;
		}
		char tb[4097];
		struct s3_req rq = S3_REQ_INIT;
		rq.method = "GET";
		rq.key = key;
		rq.sink_buf = tb;
		rq.sink_cap = sizeof(tb) - 1;
		struct s3_resp rs;
		rc = req(s, &rq, &rs);
		free(key);
		if (rc == 0 && !n->link) {
			tb[rs.got] = 0;
			n->link = strndup(tb, rs.got);
		}
		s3_resp_free(&rs);
		if (rc)
			goto out;
	}
	if (S_ISLNK(n->a.mode)) {
		size_t tl = n->link ? strlen(n->link) : 0;
		size_t k = off < tl ? tl - off : 0;
		if (k > len)
			k = len;
		if (k)
			memcpy(buf, n->link + off, k);
		memset((char *)buf + k, 0, len - k);
		rc = (ssize_t)len;
		goto out;
	}
	if (n->fd >= 0) {
		ssize_t r;
		size_t done = 0;
		while (done < len) {
			r = pread(n->fd, (char *)buf + done, len - done, (off_t)(off + done));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			done += (size_t)r;
		}
		memset((char *)buf + done, 0, len - done);
		rc = (ssize_t)len;
		goto out;
	}
	if (!n->remote || n->pending || off >= n->rsize) {
		memset(buf, 0, len);
		rc = (ssize_t)len;
		goto out;
	}
	int err = 0;
	char *key = key_of(s, n, &err);
	if (!key) {
		rc = err;
		goto out;
	}
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "GET";
	rq.key = key;
	rq.sink_buf = buf;
	rq.sink_cap = len;
	rq.range_off = off;
	rq.range_len = len;
	struct s3_resp rs;
	int r = req(s, &rq, &rs);
	free(key);
	if (r == 0 || rs.status == 416) {
		size_t got = r == 0 ? (size_t)rs.got : 0;
		if (r == 0 && rs.status == 200 && off > 0) {
			/* the server ignored Range: should not happen with S3 */
			r = -EIO;
		} else {
			memset((char *)buf + got, 0, len - got);
			rc = (ssize_t)len;
		}
	}
	if (r && rs.status != 416)
		rc = r;
	s3_resp_free(&rs);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static ssize_t s_write(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len,
		       uint64_t off)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	ssize_t rc;
	if (!n) {
		rc = -ENOENT;
	} else if (S_ISLNK(n->a.mode)) {
		/* make_node writes a new symlink's target; nothing else does */
		char *t = malloc(off + len + 1);
		if (!t) {
			rc = -ENOMEM;
		} else {
			size_t have = n->link ? strlen(n->link) : 0;
			memset(t, 0, off + len + 1);
			if (n->link)
				memcpy(t, n->link, have < off ? have : off);
			memcpy(t + off, buf, len);
			free(n->link);
			n->link = t;
			rc = (ssize_t)len;
		}
	} else if (n->dir) {
		rc = -EISDIR;
	} else {
		rc = ensure_stage(s, n);
		if (rc == 0) {
			size_t done = 0;
			while (done < len) {
				ssize_t w = pwrite(n->fd, (const char *)buf + done, len - done,
						   (off_t)(off + done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					rc = errno == ENOSPC ? -ENOSPC : -EIO;
					break;
				}
				done += (size_t)w;
			}
			if (rc == 0) {
				rc = (ssize_t)len;
				n->dirty = 1;
				if (n->nopen == 0 && n->parent && !n->gone)
					pend_add(s, n);
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int s_truncate(struct cvfs_store *st, uint64_t ino, uint64_t size)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	int rc = 0;
	if (!n) {
		rc = -ENOENT;
	} else if (!S_ISREG(n->a.mode)) {
		rc = -EINVAL;
	} else {
		if (n->fd < 0 && size == 0) {
			rc = stage_open(s, n); /* nothing to fetch for an empty file */
		} else {
			rc = ensure_stage(s, n);
		}
		if (rc == 0 && ftruncate(n->fd, (off_t)size) < 0)
			rc = -errno;
		if (rc == 0)
			n->dirty = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- open files ---- */

static int s_open(struct cvfs_store *st, uint64_t ino, int flags)
{
	struct s3s *s = S(st);
	(void)flags;
	pthread_rwlock_rdlock(&s->lk);
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	int rc = 0;
	if (!n || n->gone) {
		rc = -ENOENT;
	} else {
		/* close-to-open: a clean file whose metadata is old is checked again */
		if (!busy(n) && n->remote && n->parent && n->fd < 0 &&
		    mono_ns() - n->meta_at >= s->ttl_ns) {
			rc = head_node(s, n);
			if (rc == -ENOENT)
				n->gone = 1;
		}
		if (rc == 0 && !n->gone) {
			n->nopen++;
			pend_del(s, n); /* the flush of this open will upload */
		}
	}
	pthread_mutex_unlock(&s->mu);
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

static int flush_node(struct s3s *s, uint64_t ino, int closing)
{
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	if (!n) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&n->io);
	pthread_mutex_lock(&s->mu);
	int rc = upload(s, n);
	if (closing) {
		if (n->nopen > 0)
			n->nopen--;
		if (n->nopen == 0) {
			if (rc == 0 && !busy(n))
				stage_close(n);
			else if (busy(n))
				pend_add(s, n); /* retried later (sync, a later txn, unmount) */
		}
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&n->io);
	return rc;
}

static int s_flush(struct cvfs_store *st, uint64_t ino)
{
	struct s3s *s = S(st);
	pthread_rwlock_rdlock(&s->lk);
	int rc = flush_node(s, ino, 0);
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

static int s_release(struct cvfs_store *st, uint64_t ino)
{
	struct s3s *s = S(st);
	pthread_rwlock_rdlock(&s->lk);
	int rc = flush_node(s, ino, 1);
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

static int sync_all(struct s3s *s)
{
	int first = 0;
	pthread_mutex_lock(&s->mu);
	size_t cap = 0, k = 0;
	uint64_t *inos = NULL;
	size_t pos = 0;
	for (struct cvfs_hnode *h = cvfs_htab_next(&s->byino, &pos, NULL); h;
	     h = cvfs_htab_next(&s->byino, &pos, h)) {
		struct s3n *n = (struct s3n *)h;
		if (!(n->pending || n->dirty || n->metadirty))
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *t = realloc(inos, cap * sizeof(*t));
			if (!t)
				break;
			inos = t;
		}
		inos[k++] = n->ino;
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < k; i++) {
		int rc = flush_node(s, inos[i], 0);
		if (rc && !first)
			first = rc;
	}
	free(inos);
	return first;
}

static int s_sync(struct cvfs_store *st, uint64_t ino, int datasync)
{
	struct s3s *s = S(st);
	(void)datasync;
	pthread_rwlock_rdlock(&s->lk);
	int rc = ino ? flush_node(s, ino, 0) : sync_all(s);
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

static int s_statfs(struct cvfs_store *st, struct cvfs_statfs *out)
{
	(void)st;
	/* S3 has no size: report a large, mostly free filesystem */
	out->bsize = 4096;
	out->blocks = 1ull << 40;
	out->bfree = out->bavail = 1ull << 40;
	out->files = 1ull << 32;
	out->ffree = 1ull << 32;
	return 0;
}

static void s_free(struct cvfs_store *st)
{
	struct s3s *s = S(st);
	if (!s)
		return;
	if (s->root && !s->readonly) {
		pthread_rwlock_rdlock(&s->lk);
		(void)sync_all(s);
		pthread_rwlock_unlock(&s->lk);
	}
	size_t pos = 0;
	struct cvfs_hnode *h = s->byino.b ? cvfs_htab_next(&s->byino, &pos, NULL) : NULL;
	while (h) {
		struct cvfs_hnode *nx = cvfs_htab_next(&s->byino, &pos, h);
		node_free(s, (struct s3n *)h);
		h = nx;
	}
	cvfs_htab_fini(&s->byino);
	cvfs_htab_fini(&s->byname);
	for (size_t i = 0; i < s->nmoves; i++)
		move_free(&s->moves[i]);
	free(s->moves);
	free(s->gone);
	if (s->cache_dir)
		rmdir(s->cache_dir);
	free(s->cache_dir);
	free(s->prefix);
	s3c_free(s->c);
	pthread_rwlock_destroy(&s->lk);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const struct cvfs_store_ops s3_ops = {
	.name = "s3",
	.abi = CVFS_STORE_ABI,
	.txn_begin = s_txn_begin,
	.txn_end = s_txn_end,
	.ino_alloc = s_ino_alloc,
	.inode_get = s_inode_get,
	.inode_put = s_inode_put,
	.inode_del = s_inode_del,
	.dent_get = s_dent_get,
	.dent_put = s_dent_put,
	.dent_del = s_dent_del,
	.dir_list = s_dir_list,
	.dir_empty = s_dir_empty,
	.read = s_read,
	.write = s_write,
	.truncate = s_truncate,
	.statfs = s_statfs,
	.sync = s_sync,
	.open = s_open,
	.flush = s_flush,
	.release = s_release,
	.free = s_free,
};

static void set_errmsg(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_errmsg(char **errmsg, const char *fmt, ...)
{
	if (!errmsg)
		return;
	free(*errmsg);
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(errmsg, fmt, ap) < 0)
		*errmsg = NULL;
	va_end(ap);
}

static long opt_long(const struct cvfs_opt *opts, size_t nopts, const char *key, long def)
{
	const char *v = cvfs_opt_get(opts, nopts, key);
	if (!v || !*v)
		return def;
	char *end;
	double d = strtod(v, &end);
	return *end ? def : (long)d;
}

/* Checks at open that the bucket answers, so a bad bucket, credentials or
 * endpoint fail the mount with a clear message rather than later requests. */
static int check_bucket(struct s3s *s, char **errmsg)
{
	char *ep = s3_uri_encode(s->prefix, strlen(s->prefix), 0);
	char *q = NULL;
	/* The request listing the root makes anyway (no max-keys: s3rver 3.7.1
	 * on OpenSSL 3 fails to make continuation tokens without a legacy flag). */
	if (!ep || asprintf(&q, "delimiter=%%2F&list-type=2&prefix=%s", ep) < 0) {
		free(ep);
		return -ENOMEM;
	}
	free(ep);
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "GET";
	rq.query = q;
	struct s3_resp rs;
	int rc = s3c_do(s->c, &rq, &rs);
	free(q);
	if (rc) {
		struct s3c *c = s->c;
		const char *where = c->path_style ? c->base : "AWS S3";
		if (rs.curl_rc)
			set_errmsg(errmsg, "s3 store: cannot reach %s: %s", c->base, rs.msg);
		else if ((rs.status == 301 || rs.status == 400) &&
			 s3_resp_hdr(&rs, "x-amz-bucket-region"))
			set_errmsg(errmsg, "s3 store: bucket '%s' is in region %s, not %s (use --region %s)",
				   c->bucket, s3_resp_hdr(&rs, "x-amz-bucket-region"), c->region,
				   s3_resp_hdr(&rs, "x-amz-bucket-region"));
		else if (rc == -ENOENT)
			set_errmsg(errmsg, "s3 store: bucket '%s' does not exist at %s (%s)", c->bucket,
				   where, rs.code[0] ? rs.code : "404");
		else if (rc == -EACCES)
			set_errmsg(errmsg,
				   "s3 store: access to bucket '%s' at %s denied: %s%s%s "
				   "(credentials from %s, region %s)",
				   c->bucket, where, rs.code[0] ? rs.code : "HTTP 403",
				   rs.msg[0] ? ": " : "", rs.msg, c->cred_src, c->region);
		else
			set_errmsg(errmsg, "s3 store: bucket '%s' at %s: HTTP %ld %s%s%s", c->bucket,
				   where, rs.status, rs.code, rs.msg[0] ? ": " : "", rs.msg);
	}
	s3_resp_free(&rs);
	return rc;
}

int cvfs_s3_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		 char **errmsg)
{
	*out = NULL;
	struct s3s *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* writers first: readers come in a steady stream and must not starve
	 * them (no thread ever takes lk shared twice) */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->lk, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->mu, NULL);
	s->base.ops = &s3_ops;
	s->base.caps = CVFS_CAP_PERSISTENT | CVFS_CAP_SHARED | CVFS_CAP_THREADS;
	s->uid = getuid();
	s->gid = getgid();
	s->next_ino = 2;
	s->ttl_ns = (int64_t)(opt_long(opts, nopts, "list_ttl", 5) * 1000000000LL);
	const char *ro = cvfs_opt_get(opts, nopts, "readonly");
	s->readonly = ro && strcmp(ro, "0") != 0;

	/* the prefix without slashes at either end, then one at the end */
	const char *p = cvfs_opt_get(opts, nopts, "prefix");
	p = p ? p : "";
	while (*p == '/')
		p++;
	size_t pl = strlen(p);
	while (pl && p[pl - 1] == '/')
		pl--;
	if (asprintf(&s->prefix, "%.*s%s", (int)pl, p, pl ? "/" : "") < 0) {
		s->prefix = NULL;
		s_free(&s->base);
		return -ENOMEM;
	}

	struct s3c_conf conf = {
		.bucket = cvfs_opt_get(opts, nopts, "bucket"),
		.region = cvfs_opt_get(opts, nopts, "region"),
		.endpoint = cvfs_opt_get(opts, nopts, "endpoint"),
		.profile = cvfs_opt_get(opts, nopts, "profile"),
		.connect_ms = opt_long(opts, nopts, "connect_timeout", 5) * 1000,
		.lowspeed_s = opt_long(opts, nopts, "timeout", 30),
		.retries = (int)opt_long(opts, nopts, "retries", 4),
		.verbose = (int)opt_long(opts, nopts, "s3_debug", 0),
	};
	int rc = s3c_new(&conf, &s->c, errmsg);
	if (rc) {
		s_free(&s->base);
		return rc;
	}
	if (cvfs_htab_init(&s->byino, 1024) || cvfs_htab_init(&s->byname, 1024)) {
		s_free(&s->base);
		return -ENOMEM;
	}

	const char *cd = cvfs_opt_get(opts, nopts, "cache_dir");
	if (!cd)
		cd = getenv("TMPDIR");
	if (!cd || !*cd)
		cd = "/tmp";
	if (asprintf(&s->cache_dir, "%s/chuk-vfs-s3-XXXXXX", cd) < 0 || !mkdtemp(s->cache_dir)) {
		rc = -errno;
		set_errmsg(errmsg, "s3 store: cannot make a cache directory in %s: %s", cd,
			   strerror(errno));
		free(s->cache_dir);
		s->cache_dir = NULL;
		s_free(&s->base);
		return rc ? rc : -EIO;
	}

	rc = check_bucket(s, errmsg);
	if (rc) {
		s_free(&s->base);
		return rc;
	}

	struct s3n *r = node_new(s, CVFS_ROOT_INO, S_IFDIR | 0755);
	if (!r) {
		s_free(&s->base);
		return -ENOMEM;
	}
	defaults(s, r, INT64_MIN);
	r->a.nlink = 2;
	r->a.parent = CVFS_ROOT_INO;
	r->remote = 1;
	r->meta = 1;
	r->meta_at = mono_ns();
	s->root = r;
	*out = &s->base;
	return 0;
}
