/*
 * The S3 store: one object per file, so a bucket other tools wrote mounts as
 * it is (docs/s3.md has the whole mapping).
 *
 *   file      object  PREFIX + path            body = the bytes
 *   symlink   object  PREFIX + path            body = the target, mode S_IFLNK|0777
 *   directory common prefix PREFIX + path + "/", and a "path/" marker object
 *             when we made it (mkdir) or must keep it (it became empty)
 *   attributes user metadata under the names s3fs and rclone use:
 *             x-amz-meta-mode (octal st_mode with a leading 0, read by both),
 *             -uid, -gid, -mtime/-atime/-ctime (seconds.nanoseconds)
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
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "backends/backends.h"
#include "backends/s3/s3_client.h"
#include "cvfs/store.h"
#include "util/htab.h"
#include "util/block.h"

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
	int64_t rlm;            /* LastModified the listing reported ... */
	uint64_t rlm_chg;       /* ... when our last change was chg == rlm_chg */
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
	struct ra *ra;          /* read-ahead window, made at the first read */
	uint64_t ra_gen;        /* bumped when the bytes may have changed */
	/* the content cache: a clean stage kept after the upload, or a small
	 * object fetched whole; on the LRU while nobody has it open */
	struct s3n *lprev, *lnext;
	uint64_t csize;         /* bytes charged to the cache while on the LRU */
	unsigned inlru : 1;
	unsigned filling : 1;   /* a read is fetching the whole object */
	unsigned memfd : 1;     /* the stage is in memory (memfd), msize bytes charged */
	uint64_t msize;
	unsigned dead : 1;      /* deleted while write-back ops held it */
	uint64_t wgen;          /* bumped by every change to the stage's bytes */
	/* write-back (docs/s3.md): ops that hold this node */
	int wbref;              /* queued or running ops naming it */
	int nread;              /* reads waiting without lk (see read_unlocked) */
	int ncancel;            /* of them, cancelled (they will send nothing) */
	int wb_moves;           /* of them, renames not done (the key moves) */
	int uploading;          /* uploads running from (a dup of) the stage */
	struct wop *upq;        /* its upload, queued and not started */
	struct wop *metaq;      /* its metadata copy, queued and not started */
	uint64_t errseq;        /* bumped by each failed attempt of its ops */
	int wb_err;             /* the last error of its ops */
	int wb_perm;            /* an op given up on, until fsync reports it */
	/* extended attributes, kept in x-amz-meta-xattr as s3fs does (known
	 * with the metadata: meta) */
	struct s3x *xa;
	size_t nxa;
	uint64_t xgen, pxgen;   /* bumped by each change; the one S3 has */
};

struct s3x {
	char *name;
	unsigned char *val;
	size_t len;
};

/* Write-back (docs/s3.md, "Write-back").  One op per S3 change; ops that
 * touch the same key run in the order they were queued (each waits for the
 * previous op on each of its keys: at most two keys, so at most two
 * successors). */
enum { W_UPLOAD = 1, W_DELETE, W_RENAME, W_META };

struct kst {
	struct cvfs_hnode h;
	char *key;
	struct wop *last;  /* the last op queued on the key, until it is done */
	int nops;          /* ops not done that touch the key */
	int absent;        /* after them the key does not exist */
	uint64_t done_chg; /* s->chg when the last of them finished */
	struct kst *inext; /* on the idle list */
	unsigned inidle : 1;
};

struct wop {
	int type;
	char *key; /* the object written or deleted; RENAME: the destination */
	char *src; /* RENAME: the source */
	struct s3n *n;
	struct kst *k[2];
	struct wop *succ[2];
	int nsucc, ndeps;
	int running, cancel, attempts, copied, logged;
	int metacopy; /* UPLOAD: this attempt was a copy onto itself (attributes) */
	int64_t not_before;
	uint64_t bytes;
	uint64_t jid; /* its number in the journal, or 0 */
	int jdata;    /* logged with its bytes (J/s-ID) */
	struct wop *next, *prev;   /* on the ready, delayed or retry list */
	int lst;                   /* which of them (L_*) */
	struct wop *anext, *aprev; /* on the list of all ops */
};

/* One window of bytes read ahead: [off, off + len) of the object as it was
 * at generation gen, in a buffer of cap bytes that is kept for the next
 * window when this one is dropped (a fresh 32 MiB buffer costs a page fault
 * per 4 KiB, and a munmap, at every window). */
enum { RA_EMPTY, RA_FETCH, RA_READY };
#define RA_SLOTS 6

struct rawin {
	char *p;
	size_t cap;
	uint64_t off;
	size_t len;
	uint64_t gen;
	int state; /* RA_EMPTY, RA_FETCH (a thread fills it), RA_READY */
	int drop;  /* RA_FETCH: the file closed meanwhile; the thread frees it */
	uint64_t used; /* ra->tick when it was last started or read */
};

/* The read-ahead of one file (docs/s3.md, "Reads").  m protects the
 * slots and the fields below; a window is filled by a thread of its own,
 * without m, and cv signals the end of each fetch.  A sequential reader
 * has the window it reads, the one before (the kernel's reads come a little
 * out of order) and up to ra_ahead windows after it, each fetched while it
 * reads the others: RA_SLOTS = 2 + the deepest read-ahead. */
struct ra {
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct rawin w[RA_SLOTS];
	int nfetch;    /* fetch threads running */
	uint64_t next; /* where a sequential reader reads next; UINT64_MAX: none yet */
	size_t win;    /* the window: 0 (random), then ra_min doubling to ra_max */
	uint64_t tick;
	struct s3s *s;
};

/* A multipart upload that could not be aborted yet (S3 down). */
struct owed_abort {
	char *key, *id;
};

/* A rename waiting for the commit: src_key's objects go to the node's key. */
struct move {
	uint64_t ino;
	char *src_key; /* directories end in '/' */
	int isdir;
	uint64_t src_parent;
	char *src_name;
	size_t src_nlen;
	int disp; /* only displaced so far (rename over it): a move if it is
		   * named again in this transaction (RENAME_EXCHANGE) */
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
	struct owed_abort *aborts; /* retried at sync, later transactions, unmount */
	size_t naborts, capaborts;
	int64_t aborts_at; /* not retried before this */

	/* data path tunables (store options) */
	uint64_t mp_threshold; /* files at least this big go up in parts */
	uint64_t mp_part;      /* part size (grown so there are at most 10000) */
	int mp_threads;        /* parts in flight at once */
	uint64_t copy_max;     /* bigger objects are copied with UploadPartCopy */
	size_t ra_min, ra_max; /* read-ahead window */
	uint64_t ra_mem;       /* all read-ahead buffers together */
	uint64_t ra_used;      /* atomic */
	int head_threads;      /* parallel HEADs for a directory listing */
	int ra_streams;        /* GETs that fill one window together */
	int ra_ahead;          /* windows fetched ahead of a sequential reader */
	size_t meta_max;       /* user metadata of an object, as S3 counts it, at most */

	/* the content cache (under mu) */
	uint64_t cache_max;   /* bytes on the LRU at most; 0: no cache */
	uint64_t cache_whole; /* objects up to this size are fetched whole at a read */
	uint64_t cache_used;
	struct s3n *lru_head, *lru_tail; /* most recent first */
	uint64_t stage_mem;      /* memory stages (memfd) hold this much at most ... */
	uint64_t stage_mem_file; /* ... each at most this big; beyond: a file on disk */
	uint64_t mem_used;

	/* write-back (under mu) */
	int wb;                 /* 1: write-back; 0: sync=close (upload at close) */
	int wb_threads;
	int64_t wb_delay_ns;    /* uploads wait this long first (coalescing) */
	int wb_delay_all;       /* every op does (tests: ops stay queued) */
	int64_t wb_drain_ns;    /* unmount waits at most this long */
	int64_t wb_retry_min_ns, wb_retry_max_ns; /* backoff of a failed op */
	int64_t wb_wait_ns;     /* fsync/syncfs: EIO after this with nothing on the wire */
	int wb_draining;        /* unmount: retries at most 1 s apart */
	size_t wb_failing;      /* queued ops that failed an attempt */
	int wb_last_err;        /* the last failed attempt: its error, */
	int wb_last_type;       /* its kind, */
	int wb_last_transient;  /* whether S3 or the network said "later", */
	char *wb_last_key;      /* its key, */
	int64_t wb_last_at;     /* when (mono_ns) */
	int finished, finish_rc; /* s_finish ran, and what it returned */
	size_t wb_max_ops;      /* back-pressure: ops queued at most ... */
	uint64_t wb_max_bytes;  /* ... and bytes of uploads queued */
	pthread_t *wbt;
	int wb_nthr;            /* threads started (lazily, after the daemon forked) */
	int wb_stop;
	int wb_hurry;           /* a sync waits: no delays */
	struct wop *rd_head, *rd_tail; /* ready */
	struct wop *dl_head, *dl_tail; /* ready after not_before (first uploads, FIFO) */
	struct wop *rt_head, *rt_tail; /* waiting to be retried (unordered) */
	struct wop *all;
	size_t wb_n;            /* ops not done */
	uint64_t wb_bytes;
	pthread_cond_t wb_cv;   /* work for the threads */
	pthread_cond_t wb_done; /* an op finished or failed an attempt */
	struct cvfs_htab kmap;  /* key -> struct kst */
	struct kst *kidle;      /* keys with no ops left, freed when no listing runs */
	int nlisting;           /* listings in flight */
	uint64_t wb_errseq;
	unsigned long long wb_ok, wb_retries, wb_failed, wb_cancelled;

	/* the journal (journal=1): under mu */
	int jfd, jlock; /* J/log, J/lock; -1: no journal */
	char *jdir;
	uint64_t jid;
	/* made durable by a thread of its own (journal_sync=, "Journal" in
	 * docs/s3.md): lines written and data files renamed since its last
	 * fsync, which it makes at most jsync_ns after the first of them */
	int64_t jsync_ns;  /* 0: never fsynced */
	int jdirty;
	int64_t jdirty_at;
	uint64_t *jfiles;  /* ids whose data file (s-ID) was written since */
	size_t njfiles, capjfiles;
	int jfiles_lost;
	int js_started, js_stop;
	pthread_t jst;
	pthread_cond_t js_cv;
	unsigned long long js_syncs;
};

static __thread int tl_write; /* this thread holds lk exclusive */

static int wb_queue_upload(struct s3s *s, struct s3n *n);
static int wb_wait_node(struct s3s *s, struct s3n *n);
static void jlog_op(struct s3s *s, struct wop *op);
static void jlog_done(struct s3s *s, struct wop *op);
static void jlog_refresh(struct s3s *s, struct s3n *n);
static void js_start(struct s3s *s);
static void js_finish(struct s3s *s);
static int stage_mod(struct s3s *s, struct s3n *n);
static void xattr_clear(struct s3n *n);
static void xattr_parse(struct s3n *n, const char *v);
static char *xattr_value(const struct s3n *n);

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

/* ---- the content cache: an LRU of clean stages ---- */

static void lru_del(struct s3s *s, struct s3n *n)
{
	if (!n->inlru)
		return;
	if (n->lprev)
		n->lprev->lnext = n->lnext;
	else
		s->lru_head = n->lnext;
	if (n->lnext)
		n->lnext->lprev = n->lprev;
	else
		s->lru_tail = n->lprev;
	n->lprev = n->lnext = NULL;
	n->inlru = 0;
	s->cache_used -= n->csize;
	n->csize = 0;
}

static void lru_front(struct s3s *s, struct s3n *n)
{
	n->lprev = NULL;
	n->lnext = s->lru_head;
	if (s->lru_head)
		s->lru_head->lprev = n;
	else
		s->lru_tail = n;
	s->lru_head = n;
}

/* A read hit: n becomes the most recently used. */
static void lru_touch(struct s3s *s, struct s3n *n)
{
	if (!n->inlru || s->lru_head == n)
		return;
	uint64_t c = n->csize;
	lru_del(s, n);
	lru_front(s, n);
	n->inlru = 1;
	n->csize = c;
	s->cache_used += c;
}

static void stage_close(struct s3s *s, struct s3n *n);

/* Drops least recently used clean stages until the cache fits. */
static void cache_trim(struct s3s *s)
{
	struct s3n *n = s->lru_tail;
	while (n && s->cache_used > s->cache_max) {
		struct s3n *p = n->lprev;
		if (n->nopen == 0 && !n->uploading && !n->filling)
			stage_close(s, n);
		n = p;
	}
}

static int clean(const struct s3n *n)
{
	return !(n->pending || n->dirty || n->metadirty);
}

/* n was closed for the last time, or its last op finished: a clean stage
 * stays as a cache of the object (validated by ETag, size and
 * LastModified like any metadata), or goes. */
static void cache_keep(struct s3s *s, struct s3n *n)
{
	if (n->fd < 0 || n->inlru || !clean(n) || n->nopen > 0 || n->wbref > 0)
		return;
	if (!s->cache_max || n->a.size > s->cache_max || !n->parent || n->gone || n->dead) {
		stage_close(s, n);
		return;
	}
	lru_front(s, n);
	n->inlru = 1;
	n->csize = n->a.size;
	s->cache_used += n->csize;
	cache_trim(s);
}

static void stage_close(struct s3s *s, struct s3n *n)
{
	lru_del(s, n);
	if (n->memfd) {
		s->mem_used -= n->msize;
		n->msize = 0;
		n->memfd = 0;
	}
	if (n->fd >= 0) {
		close(n->fd);
		n->ra_gen++; /* what was read ahead may predate the stage */
	}
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

/* Frees a window's buffer.  ra->m held, not RA_FETCH. */
static void rawin_free(struct s3s *s, struct rawin *w)
{
	if (w->p) {
		free(w->p);
		__atomic_sub_fetch(&s->ra_used, w->cap, __ATOMIC_RELAXED);
	}
	memset(w, 0, sizeof(*w));
}

/* Frees n's read-ahead buffers: at the file's last close (a window being
 * fetched is freed by its thread when it is done), and for good (destroy:
 * waits for the fetches).  Without mu. */
static void ra_release(struct s3s *s, struct s3n *n, int destroy)
{
	struct ra *r = n->ra;
	if (!r)
		return;
	pthread_mutex_lock(&r->m);
	while (destroy && r->nfetch)
		pthread_cond_wait(&r->cv, &r->m);
	for (int i = 0; i < RA_SLOTS; i++) {
		if (r->w[i].state == RA_FETCH)
			r->w[i].drop = 1;
		else
			rawin_free(s, &r->w[i]);
	}
	r->next = UINT64_MAX;
	r->win = 0;
	pthread_mutex_unlock(&r->m);
	if (destroy) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->m);
		free(r);
		n->ra = NULL;
	}
}

static void ra_free(struct s3s *s, struct s3n *n)
{
	ra_release(s, n, 1);
}

static void node_free(struct s3s *s, struct s3n *n)
{
	pend_del(s, n);
	stage_close(s, n);
	if (n->dir) {
		free(n->dir->slots);
		free(n->dir->freel);
		free(n->dir);
	}
	pthread_mutex_destroy(&n->io);
	ra_free(s, n);
	xattr_clear(n);
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
	if (type == S_IFDIR)
		n->a.size = 4096; /* what ext4 shows; ours keep the size they were given */
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

/* The metadata of other tools is read strictly: a value that is not one of
 * the forms below is garbage, and the attribute keeps the mount's default
 * (0644/0755, the mounting user, LastModified), never a value made up from
 * part of it. */

/* 9999-12-31T23:59:59Z: later (or negative) times are garbage */
#define META_MAX_SEC 253402300799LL

/* Exactly k decimal digits at *p (advanced past them); -1 otherwise. */
static long take_digits(const char **p, int k)
{
	long v = 0;
	for (int i = 0; i < k; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += k;
	return v;
}

/* Nanoseconds of a fraction's digits at *p (advanced past all of them:
 * digits after the ninth are dropped); -1 when there are none. */
static int64_t take_frac(const char **p)
{
	size_t n = strspn(*p, "0123456789");
	if (n == 0)
		return -1;
	int64_t ns = 0;
	for (size_t i = 0; i < 9; i++)
		ns = ns * 10 + (i < n ? (*p)[i] - '0' : 0);
	*p += n;
	return ns;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;                              /* [0, 399] */
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;      /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

/* RFC 3339 (rclone's atime and btime, "2021-01-02T03:04:05.123456789Z"). */
static int64_t parse_rfc3339(const char *v)
{
	const char *p = v;
	long y = take_digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return INT64_MIN;
	long mo = take_digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return INT64_MIN;
	long d = take_digits(&p, 2);
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (d < 1 || d > mdays[mo - 1] || (*p != 'T' && *p != 't' && *p != ' '))
		return INT64_MIN;
	p++;
	long h = take_digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return INT64_MIN;
	long mi = take_digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return INT64_MIN;
	long sec = take_digits(&p, 2);
	if (sec < 0 || sec > 60) /* 60: a leap second */
		return INT64_MIN;
	int64_t ns = 0;
	if (*p == '.') {
		p++;
		if ((ns = take_frac(&p)) < 0)
			return INT64_MIN;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		long oh = take_digits(&p, 2);
		if (oh < 0 || oh > 23 || *p++ != ':')
			return INT64_MIN;
		long om = take_digits(&p, 2);
		if (om < 0 || om > 59)
			return INT64_MIN;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return INT64_MIN;
	}
	if (*p)
		return INT64_MIN;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	if (t < 0 || t > META_MAX_SEC)
		return INT64_MIN;
	return t * 1000000000 + ns;
}

/* x-amz-meta-mtime/-atime/-ctime: "sec[.frac]" (s3fs writes nanoseconds,
 * rclone as many digits as it has, awscli users whole seconds) or RFC 3339.
 * INT64_MIN for anything else: negative, NaN, exponents, past year 9999. */
static int64_t parse_time(const char *v)
{
	if (!v || !*v)
		return INT64_MIN;
	if (strpbrk(v, "Tt"))
		return parse_rfc3339(v);
	const char *p = v;
	size_t n = strspn(p, "0123456789");
	if (n == 0 || n > 12)
		return INT64_MIN;
	int64_t sec = 0;
	for (size_t i = 0; i < n; i++)
		sec = sec * 10 + (p[i] - '0');
	p += n;
	int64_t ns = 0;
	if (*p == '.') {
		p++;
		if ((ns = take_frac(&p)) < 0)
			return INT64_MIN;
	}
	if (*p || sec > META_MAX_SEC)
		return INT64_MIN;
	return sec * 1000000000 + ns;
}

/* x-amz-meta-uid / -gid: decimal, below 2^32 - 1 ((uid_t)-1 means "none"). */
static int parse_id(const char *v, uint32_t *out)
{
	if (!v)
		return -1;
	size_t n = strspn(v, "0123456789");
	if (n == 0 || n > 10 || v[n])
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	if (x >= 0xffffffffu)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* A mode whose type an object can have: the type of its key (dir), or a
 * symlink for a file key. */
static int mode_fits(uint64_t m, int dir)
{
	if (m > 0177777)
		return 0;
	uint32_t t = (uint32_t)m & S_IFMT;
	return dir ? t == S_IFDIR : t == S_IFREG || t == S_IFLNK;
}

/* x-amz-meta-mode in the forms the tools write it:
 *   s3fs     decimal st_mode with the type ("33188"); "493" (no type) on
 *            directories; it reads a leading 0 as octal
 *   rclone   octal st_mode without a leading 0 ("100644"), and reads octal
 *   ours     octal with a leading 0 ("0100644"), which both read right
 * A value that reads as a mode of the key's type in decimal, else in octal,
 * is taken; else one without type bits (the permissions only) in the same
 * order; anything else is garbage (-1).  *out keeps the type bits. */
static int parse_mode(const char *v, int dir, uint32_t *out)
{
	if (!v)
		return -1;
	size_t n = strspn(v, "0123456789");
	if (n == 0 || n > 12 || v[n])
		return -1;
	uint64_t c[2];
	int nc = 0;
	int oct = strspn(v, "01234567") == n;
	if (!(v[0] == '0' && n > 1)) { /* a leading 0 means octal only */
		uint64_t x = 0;
		for (size_t i = 0; i < n; i++)
			x = x * 10 + (uint64_t)(v[i] - '0');
		c[nc++] = x;
	}
	if (oct) {
		uint64_t x = 0;
		for (size_t i = 0; i < n; i++)
			x = x * 8 + (uint64_t)(v[i] - '0');
		c[nc++] = x;
	}
	for (int i = 0; i < nc; i++)
		if (mode_fits(c[i], dir)) {
			*out = (uint32_t)c[i];
			return 0;
		}
	for (int i = 0; i < nc; i++)
		if (c[i] <= 07777) {
			*out = (uint32_t)c[i];
			return 0;
		}
	return -1;
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
	if ((v = s3_resp_hdr(rs, "etag"))) {
		if (strcmp(n->etag, v) != 0) {
			n->ra_gen++;
			if (clean(n))
				stage_close(s, n); /* the cached bytes are another version */
		}
		snprintf(n->etag, sizeof(n->etag), "%s", v);
	}
	if (parse_mode(s3_resp_hdr(rs, "x-amz-meta-mode"), n->dir != NULL, &x) == 0) {
		uint32_t type = n->a.mode & S_IFMT;
		if (!n->dir && (x & S_IFMT) == S_IFLNK)
			type = S_IFLNK;
		n->a.mode = type | (x & 07777);
	}
	if (parse_id(s3_resp_hdr(rs, "x-amz-meta-uid"), &x) == 0)
		n->a.uid = x;
	if (parse_id(s3_resp_hdr(rs, "x-amz-meta-gid"), &x) == 0)
		n->a.gid = x;
	int64_t t = parse_time(s3_resp_hdr(rs, "x-amz-meta-mtime"));
	if (t != INT64_MIN)
		n->a.mtime_ns = t;
	t = parse_time(s3_resp_hdr(rs, "x-amz-meta-atime"));
	n->a.atime_ns = t != INT64_MIN ? t : n->a.mtime_ns;
	t = parse_time(s3_resp_hdr(rs, "x-amz-meta-ctime"));
	n->a.ctime_ns = t != INT64_MIN ? t : n->a.mtime_ns;
	n->a.btime_ns = n->a.mtime_ns;
	xattr_parse(n, s3_resp_hdr(rs, "x-amz-meta-xattr"));
	n->pxgen = ++n->xgen;
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
	const char *h[11];
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

/* The metadata headers of an object with attributes a and (xh, a header
 * line from xattr_hdr, or NULL) extended attributes. */
static void meta_headers(const struct cvfs_attr *a, const char *xh, struct metahdrs *m,
			 const char *extra1, const char *extra2)
{
	/* octal with a leading 0: s3fs (strtol base 0) and rclone (octal) both
	 * read it; s3fs's own decimal would be wrong in rclone, rclone's octal
	 * without the 0 wrong in s3fs */
	snprintf(m->b[0], sizeof(m->b[0]), "x-amz-meta-mode: 0%o", (unsigned)a->mode);
	snprintf(m->b[1], sizeof(m->b[1]), "x-amz-meta-uid: %u", a->uid);
	snprintf(m->b[2], sizeof(m->b[2]), "x-amz-meta-gid: %u", a->gid);
	fmt_time(m->b[3], sizeof(m->b[3]), "mtime", a->mtime_ns);
	fmt_time(m->b[4], sizeof(m->b[4]), "atime", a->atime_ns);
	fmt_time(m->b[5], sizeof(m->b[5]), "ctime", a->ctime_ns);
	int i = 0;
	for (; i < 6; i++)
		m->h[i] = m->b[i];
	m->h[i++] = S_ISDIR(a->mode) ? DIR_MARKER_CT : FILE_CT;
	if (xh)
		m->h[i++] = xh;
	if (extra1)
		m->h[i++] = extra1;
	if (extra2)
		m->h[i++] = extra2;
	m->h[i] = NULL;
}

static void persisted(struct s3n *n)
{
	n->pxgen = n->xgen;
	n->pmode = n->a.mode;
	n->puid = n->a.uid;
	n->pgid = n->a.gid;
	n->pmtime = n->a.mtime_ns;
}

static int meta_differs(const struct s3n *n)
{
	return n->pxgen != n->xgen || n->pmode != n->a.mode || n->puid != n->a.uid || n->pgid != n->a.gid ||
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

/* ---- extended attributes: x-amz-meta-xattr, as s3fs writes it ----
 *
 *   x-amz-meta-xattr: urlencode({"user.a":"base64(value)","user.b":"..."})
 *
 * Names are written as they are (s3fs's reader splits at ',' and ':', so
 * names with those or '"' are refused); values are standard base64. */

static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_enc(const unsigned char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = b64c[(v >> 18) & 63];
		out[o++] = b64c[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64c[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64c[v & 63] : '=';
	}
	out[o] = 0;
}

/* Decodes base64 (characters outside the alphabet are skipped, '=' ends
 * it) into out, which has room for 3 * n / 4 + 3 bytes; the length. */
static size_t b64_dec(const char *s, size_t n, unsigned char *out)
{
	uint32_t v = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *c = s[i] ? strchr(b64c, s[i]) : NULL;
		if (!c)
			continue;
		v = v << 6 | (uint32_t)(c - b64c);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	return o;
}

static void xattr_clear(struct s3n *n)
{
	for (size_t i = 0; i < n->nxa; i++) {
		free(n->xa[i].name);
		free(n->xa[i].val);
	}
	free(n->xa);
	n->xa = NULL;
	n->nxa = 0;
}

/* The header's value for n's extended attributes: NULL when it has none
 * (or without memory). */
static char *xattr_value(const struct s3n *n)
{
	if (!n->nxa)
		return NULL;
	size_t raw = 2;
	for (size_t i = 0; i < n->nxa; i++)
		raw += strlen(n->xa[i].name) + (n->xa[i].len + 2) / 3 * 4 + 6;
	char *j = malloc(raw + 1), *out = malloc(3 * raw + 1);
	char *b = malloc(raw + 1);
	if (!j || !out || !b) {
		free(j);
		free(out);
		free(b);
		return NULL;
	}
	size_t k = 0;
	j[k++] = '{';
	for (size_t i = 0; i < n->nxa; i++) {
		b64_enc(n->xa[i].val, n->xa[i].len, b);
		k += (size_t)sprintf(j + k, "%s\"%s\":\"%s\"", i ? "," : "", n->xa[i].name, b);
	}
	j[k++] = '}';
	size_t o = 0;
	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)j[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			out[o++] = (char)c;
		else
			o += (size_t)sprintf(out + o, "%%%02X", c);
	}
	out[o] = 0;
	free(j);
	free(b);
	return out;
}

/* "x-amz-meta-xattr: VALUE" for n, or NULL (none, or no memory). */
static char *xattr_hdr(const struct s3n *n)
{
	char *v = xattr_value(n), *h = NULL;
	if (v && asprintf(&h, "x-amz-meta-xattr: %s", v) < 0)
		h = NULL;
	free(v);
	return h;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Adds name = value to n (replacing the value of the same name).  0 or
 * -ENOMEM. */
static int xattr_put(struct s3n *n, const char *name, size_t nlen, const void *val, size_t len)
{
	for (size_t i = 0; i < n->nxa; i++) {
		if (strlen(n->xa[i].name) == nlen && !memcmp(n->xa[i].name, name, nlen)) {
			unsigned char *v = malloc(len ? len : 1);
			if (!v)
				return -ENOMEM;
			memcpy(v, val, len);
			free(n->xa[i].val);
			n->xa[i].val = v;
			n->xa[i].len = len;
			return 0;
		}
	}
	struct s3x *nx = realloc(n->xa, (n->nxa + 1) * sizeof(*nx));
	if (!nx)
		return -ENOMEM;
	n->xa = nx;
	struct s3x *x = &n->xa[n->nxa];
	x->name = strndup(name, nlen);
	x->val = malloc(len ? len : 1);
	if (!x->name || !x->val) {
		free(x->name);
		free(x->val);
		return -ENOMEM;
	}
	memcpy(x->val, val, len);
	x->len = len;
	n->nxa++;
	return 0;
}

/* n's extended attributes from a header's value (another client's too):
 * what cannot be read is left out. */
static void xattr_parse(struct s3n *n, const char *v)
{
	xattr_clear(n);
	if (!v)
		return;
	size_t l = strlen(v), k = 0;
	char *j = malloc(l + 1);
	unsigned char *val = malloc(l + 3);
	if (!j || !val) {
		free(j);
		free(val);
		return;
	}
	for (size_t i = 0; i < l; i++) {
		int h1, h2;
		if (v[i] == '%' && i + 2 < l && (h1 = hexval(v[i + 1])) >= 0 &&
		    (h2 = hexval(v[i + 2])) >= 0) {
			j[k++] = (char)(h1 << 4 | h2);
			i += 2;
		} else {
			j[k++] = v[i];
		}
	}
	j[k] = 0;
	char *a = strchr(j, '{'), *z = strrchr(j, '}');
	if (a && z && z > a) {
		*z = 0;
		for (char *p = a + 1; p && *p;) {
			char *comma = strchr(p, ',');
			if (comma)
				*comma = 0;
			char *colon = strchr(p, ':');
			if (colon) {
				*colon = 0;
				char *nm = p, *vv = colon + 1;
				while (*nm == ' ' || *nm == '"')
					nm++;
				size_t nl = strlen(nm);
				while (nl && (nm[nl - 1] == ' ' || nm[nl - 1] == '"'))
					nl--;
				while (*vv == ' ' || *vv == '"')
					vv++;
				size_t vl = strlen(vv);
				while (vl && (vv[vl - 1] == ' ' || vv[vl - 1] == '"'))
					vl--;
				if (nl)
					(void)xattr_put(n, nm, nl, val, b64_dec(vv, vl, val));
			}
			p = comma ? comma + 1 : NULL;
		}
	}
	free(j);
	free(val);
}

static int put_meta_object(struct s3s *s, const char *key, const struct cvfs_attr *a,
			   const char *xh, const void *body, size_t blen)
{
	struct metahdrs m;
	meta_headers(a, xh, &m, NULL, NULL);
	return simple(s, "PUT", key, m.h, body, blen);
}

/* ---- parallel requests ---- */

/* Runs fn(arg, 0 .. n-1) on up to threads threads (this one included). */
struct par {
	void (*fn)(void *arg, size_t i);
	void *arg;
	size_t n, next;
	pthread_mutex_t m;
};

static void *par_main(void *p)
{
	struct par *r = p;
	for (;;) {
		pthread_mutex_lock(&r->m);
		size_t i = r->next++;
		pthread_mutex_unlock(&r->m);
		if (i >= r->n)
			break;
		r->fn(r->arg, i);
	}
	return NULL;
}

static void par_run(size_t n, int threads, void (*fn)(void *arg, size_t i), void *arg)
{
	struct par r = {.fn = fn, .arg = arg, .n = n};
	pthread_mutex_init(&r.m, NULL);
	if (threads < 1)
		threads = 1;
	if ((size_t)threads > n)
		threads = (int)n;
	pthread_t t[64];
	int nt = 0;
	for (int i = 1; i < threads && i < 64; i++)
		if (pthread_create(&t[nt], NULL, par_main, &r) == 0)
			nt++;
	par_main(&r);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&r.m);
}

/* ---- multipart uploads (called without mu) ---- */

static int copy_source_hdr(struct s3s *s, const char *src, char **out)
{
	char *es = s3_uri_encode(src, strlen(src), 1);
	if (!es || asprintf(out, "x-amz-copy-source: /%s/%s", s->c->bucket, es) < 0) {
		free(es);
		*out = NULL;
		return -ENOMEM;
	}
	free(es);
	return 0;
}

static void owe_abort(struct s3s *s, const char *key, const char *id)
{
	pthread_mutex_lock(&s->mu);
	if (s->naborts == s->capaborts) {
		size_t nc = s->capaborts ? s->capaborts * 2 : 8;
		struct owed_abort *t = realloc(s->aborts, nc * sizeof(*t));
		if (t) {
			s->aborts = t;
			s->capaborts = nc;
		}
	}
	if (s->naborts < s->capaborts) {
		s->aborts[s->naborts].key = strdup(key);
		s->aborts[s->naborts].id = strdup(id);
		if (s->aborts[s->naborts].key && s->aborts[s->naborts].id)
			s->naborts++;
	}
	pthread_mutex_unlock(&s->mu);
}

/* AbortMultipartUpload.  0 when done or when retrying is pointless (the
 * upload is gone, or the server cannot abort: s3rver 3.7.1 answers 405). */
static int abort_upload(struct s3s *s, const char *key, const char *id, int remember)
{
	char *eid = s3_uri_encode(id, strlen(id), 0), *q = NULL;
	if (!eid || asprintf(&q, "uploadId=%s", eid) < 0) {
		free(eid);
		return -ENOMEM;
	}
	free(eid);
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "DELETE";
	rq.key = key;
	rq.query = q;
	struct s3_resp rs;
	int rc = s3c_do(s->c, &rq, &rs);
	int transient = rc && (rs.curl_rc || rs.status >= 500 || rs.status == 429);
	if (rc && !transient)
		fprintf(stderr, "chuk-vfs s3: abort of upload %s of %s refused (HTTP %ld %s)\n", id,
			key, rs.status, rs.code);
	s3_resp_free(&rs);
	free(q);
	if (transient && remember)
		owe_abort(s, key, id);
	return transient ? rc : 0;
}

/* Aborts the uploads a failure left behind, now that S3 may answer again. */
static void run_aborts(struct s3s *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->naborts;
	struct owed_abort *a = s->aborts;
	s->aborts = NULL;
	s->naborts = s->capaborts = 0;
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		(void)abort_upload(s, a[i].key, a[i].id, 1);
		free(a[i].key);
		free(a[i].id);
	}
	free(a);
}

struct mp {
	struct s3s *s;
	const char *key;
	char *eid;       /* the upload id, URI-encoded */
	int fd;          /* parts from this file ... */
	const char *csrc; /* ... or copied from this object (UploadPartCopy) */
	uint64_t size, psize;
	char (*etags)[80];
	int rc; /* the first error; later parts are not sent */
	pthread_mutex_t m;
};

static void mp_part(void *arg, size_t i)
{
	struct mp *m = arg;
	pthread_mutex_lock(&m->m);
	int stop = m->rc != 0;
	pthread_mutex_unlock(&m->m);
	if (stop)
		return;
	uint64_t off = (uint64_t)i * m->psize;
	uint64_t len = m->size - off < m->psize ? m->size - off : m->psize;
	char q[320], range[96];
	snprintf(q, sizeof(q), "partNumber=%zu&uploadId=%s", i + 1, m->eid);
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "PUT";
	rq.key = m->key;
	rq.query = q;
	const char *h[3] = {NULL, NULL, NULL};
	if (m->csrc) {
		snprintf(range, sizeof(range), "x-amz-copy-source-range: bytes=%" PRIu64 "-%" PRIu64,
			 off, off + len - 1);
		h[0] = m->csrc;
		h[1] = range;
		rq.hdrs = h;
	} else {
		rq.body_fd = m->fd;
		rq.body_off = off;
		rq.body_len = len;
	}
	struct s3_resp rs;
	int rc = s3c_do(m->s->c, &rq, &rs);
	if (rc == 0) {
		char *et = m->csrc ? s3_xml_find(rs.body, rs.blen, "ETag") : NULL;
		const char *v = m->csrc ? et : s3_resp_hdr(&rs, "etag");
		if (v && *v)
			snprintf(m->etags[i], sizeof(m->etags[i]), "%s", v);
		else
			rc = -EIO;
		free(et);
	}
	s3_resp_free(&rs);
	if (rc) {
		pthread_mutex_lock(&m->m);
		if (!m->rc)
			m->rc = rc;
		pthread_mutex_unlock(&m->m);
	}
}

/* The body of CompleteMultipartUpload, built by libxml2 (which escapes
 * what needs it: ETags are quoted, and servers may put anything there):
 *   <CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
 *     <Part><PartNumber>1</PartNumber><ETag>"..."</ETag></Part>...
 * malloc'd in *body (*blen bytes). */
static int complete_body(char (*etags)[80], size_t nparts, char **body, size_t *blen)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr root = doc ? xmlNewNode(NULL, BAD_CAST "CompleteMultipartUpload") : NULL;
	int rc = root ? 0 : -ENOMEM;
	if (root) {
		xmlDocSetRootElement(doc, root);
		if (!xmlNewNs(root, BAD_CAST "http://s3.amazonaws.com/doc/2006-03-01/", NULL))
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < nparts; i++) {
		char num[24];
		snprintf(num, sizeof(num), "%zu", i + 1);
		xmlNodePtr part = xmlNewChild(root, NULL, BAD_CAST "Part", NULL);
		/* xmlNewTextChild escapes its content (xmlNewChild would take
		 * it as markup) */
		if (!part || !xmlNewTextChild(part, NULL, BAD_CAST "PartNumber", BAD_CAST num) ||
		    !xmlNewTextChild(part, NULL, BAD_CAST "ETag", BAD_CAST etags[i]))
			rc = -ENOMEM;
	}
	xmlChar *mem = NULL;
	int len = 0;
	if (rc == 0) {
		xmlDocDumpMemoryEnc(doc, &mem, &len, "UTF-8");
		if (!mem || len <= 0)
			rc = -ENOMEM;
	}
	*body = NULL;
	*blen = 0;
	if (rc == 0 && !(*body = malloc((size_t)len)))
		rc = -ENOMEM;
	if (rc == 0) {
		memcpy(*body, mem, (size_t)len);
		*blen = (size_t)len;
	}
	xmlFree(mem);
	xmlFreeDoc(doc);
	return rc;
}

/* Puts key in parts: from fd (csrc NULL) or copied from another object
 * (csrc = "x-amz-copy-source: ..." header).  hdrs go with the initiation
 * (metadata, content type).  Any failure aborts the upload, so no parts are
 * left behind; an abort S3 does not take now is owed and retried later. */
static int multipart(struct s3s *s, const char *key, int fd, const char *csrc, uint64_t size,
		     const char *const *hdrs, char *etag, size_t etagsz)
{
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "POST";
	rq.key = key;
	rq.query = "uploads=";
	rq.hdrs = hdrs;
	struct s3_resp rs;
	int rc = s3c_do(s->c, &rq, &rs);
	char *id = rc == 0 ? s3_xml_find(rs.body, rs.blen, "UploadId") : NULL;
	s3_resp_free(&rs);
	if (rc)
		return rc;
	if (!id)
		return -EIO;
	uint64_t psize = s->mp_part;
	if (csrc && psize < size / 64)
		psize = size / 64; /* copies: fewer, bigger parts */
	if (psize < size / 10000 + 1)
		psize = size / 10000 + 1;
	if (psize < (5u << 20))
		psize = 5u << 20; /* S3's smallest part (but the last) */
	size_t nparts = size ? (size_t)((size + psize - 1) / psize) : 1;
	struct mp m = {.s = s, .key = key, .fd = fd, .csrc = csrc, .size = size, .psize = psize};
	pthread_mutex_init(&m.m, NULL);
	m.eid = s3_uri_encode(id, strlen(id), 0);
	m.etags = calloc(nparts, sizeof(*m.etags));
	char *body = NULL;
	if (!m.eid || !m.etags) {
		rc = -ENOMEM;
	} else if (size == 0) {
		rc = -EINVAL; /* never asked: empty objects are one PUT */
	} else {
		par_run(nparts, s->mp_threads, mp_part, &m);
		rc = m.rc;
	}
	size_t bl = 0;
	if (rc == 0)
		rc = complete_body(m.etags, nparts, &body, &bl);
	if (rc == 0) {
		char q[320];
		snprintf(q, sizeof(q), "uploadId=%s", m.eid);
		struct s3_req cq = S3_REQ_INIT;
		const char *ch[] = {"Content-Type: application/xml", NULL};
		cq.method = "POST";
		cq.key = key;
		cq.query = q;
		cq.hdrs = ch;
		cq.body = body;
		cq.blen = bl;
		rc = s3c_do(s->c, &cq, &rs);
		/* S3 may answer 200 and still fail the completion: an <Error>
		 * body (with a Code) instead of the result */
		char *code = rc == 0 ? s3_xml_find(rs.body, rs.blen, "Code") : NULL;
		if (code) {
			fprintf(stderr, "chuk-vfs s3: completion of %s failed: %s\n", key, code);
			rc = -EIO;
		}
		free(code);
		if (rc == 0 && etag) {
			char *et = s3_xml_find(rs.body, rs.blen, "ETag");
			snprintf(etag, etagsz, "%s", et ? et : "");
			free(et);
		}
		s3_resp_free(&rs);
	}
	if (rc)
		(void)abort_upload(s, key, id, 1);
	free(body);
	free(m.eid);
	free(m.etags);
	free(id);
	pthread_mutex_destroy(&m.m);
	return rc;
}

/* The metadata headers of object key (x-amz-meta-*, Content-Type), for a
 * copy in parts, which does not carry them over by itself.  NULL-terminated,
 * malloc'd strings in a malloc'd array. */
static char **source_meta(struct s3s *s, const char *key, int *err)
{
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "HEAD";
	rq.key = key;
	struct s3_resp rs;
	*err = s3c_do(s->c, &rq, &rs);
	char **h = NULL;
	if (*err == 0) {
		h = calloc(rs.nhdrs + 1, sizeof(*h));
		size_t k = 0;
		for (size_t i = 0; h && i < rs.nhdrs; i++) {
			const char *nm = rs.hdrs[i].name;
			if (strncmp(nm, "x-amz-meta-", 11) && strcmp(nm, "content-type"))
				continue;
			if (asprintf(&h[k], "%s: %s", nm, rs.hdrs[i].value) >= 0)
				k++;
			else
				h[k] = NULL;
		}
		if (!h)
			*err = -ENOMEM;
	}
	s3_resp_free(&rs);
	return h;
}

/* Server-side copy of src (size bytes) to dst; REPLACE gives dst the
 * metadata of a.  Objects over copy_max (CopyObject's limit, 5 GiB) are
 * copied in parts with UploadPartCopy.  mu held (dropped meanwhile). */
static int copy_object(struct s3s *s, const char *src, const char *dst, uint64_t size,
		       const struct cvfs_attr *a, const char *xh)
{
	char *cs = NULL;
	if (copy_source_hdr(s, src, &cs))
		return -ENOMEM;
	int rc;
	if (size > s->copy_max) {
		pthread_mutex_unlock(&s->mu);
		struct metahdrs m;
		char **sm = NULL;
		const char *const *h;
		if (a) {
			meta_headers(a, xh, &m, NULL, NULL);
			h = m.h;
			rc = 0;
		} else {
			sm = source_meta(s, src, &rc);
			h = (const char *const *)sm;
		}
		if (rc == 0)
			rc = multipart(s, dst, -1, cs, size, h, NULL, 0);
		for (size_t i = 0; sm && sm[i]; i++)
			free(sm[i]);
		free(sm);
		pthread_mutex_lock(&s->mu);
	} else if (a) {
		struct metahdrs m;
		meta_headers(a, xh, &m, cs, "x-amz-metadata-directive: REPLACE");
		rc = simple(s, "PUT", dst, m.h, NULL, 0);
	} else {
		const char *h[] = {cs, NULL};
		rc = simple(s, "PUT", dst, h, NULL, 0);
	}
	free(cs);
	return rc;
}

static int head_apply(struct s3s *s, struct s3n *n, int rc, const struct s3_resp *rs);

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
	rc = head_apply(s, n, rc, &rs);
	s3_resp_free(&rs);
	return rc;
}

/* Applies the answer (rc, rs) to a HEAD of n.  mu held. */
static int head_apply(struct s3s *s, struct s3n *n, int rc, const struct s3_resp *rs)
{
	if (rc == 0) {
		if (n->dir)
			n->marker = 1;
		if (!(n->pending || n->dirty || n->metadirty || n->nopen))
			apply_head(s, n, rs);
		else
			n->meta = 1;
	} else if (rc == -ENOENT && n->dir) {
		/* no marker: an implied directory keeps its defaults */
		n->marker = 0;
		n->meta = 1;
		n->meta_at = mono_ns();
		rc = 0;
	}
	return rc;
}

/* ---- write-back: what the queued ops do to each key ---- */

static int kst_eq(const struct cvfs_hnode *h, const void *key)
{
	return strcmp(((const struct kst *)h)->key, (const char *)key) == 0;
}

static struct kst *kst_find(struct s3s *s, const char *key)
{
	if (!s->kmap.b)
		return NULL;
	return (struct kst *)cvfs_htab_find(&s->kmap, cvfs_hash_bytes(key, strlen(key), 7), kst_eq,
					    key);
}

static struct kst *kst_get(struct s3s *s, const char *key)
{
	struct kst *k = kst_find(s, key);
	if (k)
		return k;
	k = calloc(1, sizeof(*k));
	if (!k || !(k->key = strdup(key))) {
		free(k);
		return NULL;
	}
	k->h.hash = cvfs_hash_bytes(key, strlen(key), 7);
	cvfs_htab_insert(&s->kmap, &k->h);
	return k;
}

/* Frees the keys no op needs any more, unless a listing is in flight: its
 * merge must know which keys changed while it was on the wire. */
static void kst_sweep(struct s3s *s)
{
	if (s->nlisting)
		return;
	struct kst *k = s->kidle;
	s->kidle = NULL;
	while (k) {
		struct kst *nx = k->inext;
		k->inidle = 0;
		if (k->nops == 0) {
			cvfs_htab_remove(&s->kmap, &k->h);
			free(k->key);
			free(k);
		}
		k = nx;
	}
}

/* Whether a listing fetched since chg0 must not show key: a delete (or the
 * source of a rename) is queued, or finished after the listing began. */
static int wb_hidden(struct s3s *s, const char *key, uint64_t chg0)
{
	struct kst *k = kst_find(s, key);
	if (!k || !k->absent)
		return 0;
	return k->nops > 0 || k->done_chg > chg0;
}

/* ---- listings ---- */

static int busy(const struct s3n *n)
{
	return n->pending || n->dirty || n->metadirty || n->nopen > 0 || n->wbref > 0 ||
	       n->nread > 0;
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

/* Whether a name we make can be a key: S3 keys are UTF-8, and listings
 * come back as XML 1.0, which cannot carry the C0 controls other than tab,
 * newline and carriage return.  (A name that fails could be sent, but S3
 * refuses it or lists it so that nobody reads it back.) */
static int key_name_ok(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	for (size_t i = 0; i < len;) {
		unsigned c = p[i];
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2
			 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
		if (k == 0 || i + k >= len)
			return 0; /* not a lead byte, or cut short */
		unsigned c1 = p[i + 1];
		/* no overlong forms, no surrogates, nothing past U+10FFFF */
		if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
		    (c == 0xf4 && c1 > 0x8f))
			return 0;
		for (size_t j = 1; j <= k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
		i += k + 1;
	}
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
	/* keys with a delete queued (or done while the listing was on the
	 * wire) are not shown: the listing is older than our view */
	int err = 0;
	char *dkey = s->all || s->kidle ? key_of(s, dir, &err) : NULL;
	size_t dkl = dkey ? strlen(dkey) : 0;
	char kb[KEY_MAX + 2];
	for (size_t i = 0; i < l->n; i++) {
		struct s3_list_ent *e = &l->e[i];
		size_t len = strlen(e->name);
		if (!valid_name(e->name, len))
			continue;
		if (dkey && dkl + len + 1 <= KEY_MAX) {
			memcpy(kb, dkey, dkl);
			memcpy(kb + dkl, e->name, len);
			kb[dkl + len] = '/';
			kb[dkl + len + (e->isdir ? 1 : 0)] = 0;
			if (wb_hidden(s, kb, chg0))
				continue;
		}
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
			int lm_changed = 0;
			if (!e->isdir && c->rlm_chg == c->chg && c->rlm && e->mtime_ns != INT64_MIN &&
			    c->rlm != e->mtime_ns)
				lm_changed = 1; /* e.g. new metadata, same bytes */
			if (!e->isdir && !busy(c) && c->chg <= chg0) {
				c->rlm = e->mtime_ns;
				c->rlm_chg = c->chg;
			}
			if (!e->isdir && !busy(c) && c->chg <= chg0 &&
			    (lm_changed || c->rsize != e->size || strcmp(c->etag, e->etag) != 0)) {
				/* changed by someone else: forget what we knew */
				c->meta = 0;
				c->ra_gen++;
				c->a.size = c->rsize = e->size;
				snprintf(c->etag, sizeof(c->etag), "%s", e->etag);
				stage_close(s, c);
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
			c->rlm = e->mtime_ns;
			c->rlm_chg = c->chg;
		}
	}
	free(dirs);
	free(dkey);
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
	s->nlisting++;
	pthread_mutex_unlock(&s->mu);
	int rc = s3c_list(s->c, key, 0, &l);
	pthread_mutex_lock(&s->mu);
	free(key);
	if (!rc && !dir->gone)
		merge(s, dir, &l, chg0);
	s->nlisting--;
	kst_sweep(s);
	if (rc) {
		if (d->listed) {
			d->listed_at = mono_ns(); /* try again after ttl */
			return 0;
		}
		return rc;
	}
	s3_list_free(&l);
	return 0;
}

/* ---- the stage ---- */

/* Stages (and cached copies) live in memory (memfd) while they are small
 * (stage_mem_file, 1 MiB) and all of them fit in stage_mem (256 MiB); others
 * are unlinked files in cache_dir.  Creating and dropping a small file on a
 * journaled disk filesystem costs a millisecond or more (ext4 here: inode,
 * journal, discard at free), which bounded small-file writes at ~1000/s. */
static int disk_fd(struct s3s *s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/stage-XXXXXX", s->cache_dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

/* Makes room for need bytes of memory stages by dropping clean cached
 * copies in memory, least recently used first.  mu held. */
static void mem_evict(struct s3s *s, uint64_t need)
{
	struct s3n *n = s->lru_tail;
	for (int k = 0; n && k < 256 && s->mem_used + need > s->stage_mem; k++) {
		struct s3n *p = n->lprev;
		if (n->memfd && n->nopen == 0 && !n->uploading && !n->filling)
			stage_close(s, n);
		n = p;
	}
}

/* A new empty stage for about hint bytes; *mem says where it is. */
static int stage_new_fd(struct s3s *s, uint64_t hint, int *mem)
{
	*mem = 0;
	if (s->stage_mem && hint <= s->stage_mem_file) {
		if (s->mem_used + hint + s->stage_mem_file > s->stage_mem)
			mem_evict(s, hint + s->stage_mem_file);
		if (s->mem_used + hint <= s->stage_mem) {
			int fd = memfd_create("chuk-vfs-s3-stage", MFD_CLOEXEC);
			if (fd >= 0) {
				*mem = 1;
				return fd;
			}
		}
	}
	return disk_fd(s);
}

static void stage_adopt(struct s3s *s, struct s3n *n, int fd, int mem, uint64_t size)
{
	n->fd = fd;
	n->memfd = mem != 0;
	n->msize = mem ? size : 0;
	s->mem_used += n->msize;
	n->ra_gen++;
}

static int stage_open_hint(struct s3s *s, struct s3n *n, uint64_t hint)
{
	if (n->fd >= 0)
		return 0;
	int mem;
	int fd = stage_new_fd(s, hint, &mem);
	if (fd < 0)
		return fd;
	stage_adopt(s, n, fd, mem, 0);
	return 0;
}

static int stage_open(struct s3s *s, struct s3n *n)
{
	return stage_open_hint(s, n, 0);
}

/* Copies all of src into dst: only its data, holes stay holes (a stage of
 * 5 GiB with 300 bytes in it moves from memory to disk in no time). */
static int copy_fd(int src, int dst, uint64_t size)
{
	loff_t pos = 0;
	int by_hand = 0;
	while (pos < (loff_t)size) {
		loff_t d = lseek(src, pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break; /* no data after pos */
		if (d < 0)
			d = pos; /* no SEEK_DATA here: all of it */
		if (d >= (loff_t)size)
			break;
		loff_t h = lseek(src, d, SEEK_HOLE);
		if (h < 0 || h > (loff_t)size)
			h = (loff_t)size;
		loff_t in = d, out = d;
		while (in < h) {
			ssize_t c = by_hand ? -1 : copy_file_range(src, &in, dst, &out, (size_t)(h - in), 0);
			if (c < 0 && errno == EINTR)
				continue;
			if (c > 0)
				continue;
			/* no copy_file_range between these two (memfd to disk): by hand */
			by_hand = 1;
			char buf[65536];
			size_t want = h - in < (loff_t)sizeof(buf) ? (size_t)(h - in) : sizeof(buf);
			ssize_t r = pread(src, buf, want, in);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				break; /* src ends here: the rest reads as zeros */
			ssize_t w = pwrite(dst, buf, (size_t)r, out);
			if (w != r)
				return w < 0 ? -errno : -EIO;
			in += r;
			out += r;
		}
		pos = h;
	}
	return ftruncate(dst, (off_t)size) < 0 ? -errno : 0;
}

/* n's stage moves to a copy of itself: on disk (to_disk), or where a new
 * stage of its size would go.  mu held. */
static int stage_copy(struct s3s *s, struct s3n *n, int to_disk)
{
	struct stat st;
	if (fstat(n->fd, &st) < 0)
		return -errno;
	int mem = 0;
	int fd = to_disk ? disk_fd(s) : stage_new_fd(s, (uint64_t)st.st_size, &mem);
	if (fd < 0)
		return fd;
	int rc = copy_fd(n->fd, fd, (uint64_t)st.st_size);
	if (rc) {
		close(fd);
		return rc;
	}
	if (n->memfd)
		s->mem_used -= n->msize;
	close(n->fd);
	n->fd = fd;
	n->memfd = mem != 0;
	n->msize = mem ? (uint64_t)st.st_size : 0;
	s->mem_used += n->msize;
	return 0;
}

/* A memory stage now holds size bytes: charged; too big, or memory short,
 * and it moves to disk.  mu held. */
static int stage_charge(struct s3s *s, struct s3n *n, uint64_t size)
{
	if (!n->memfd)
		return 0;
	s->mem_used = s->mem_used - n->msize + size;
	n->msize = size;
	if (size <= s->stage_mem_file && s->mem_used <= s->stage_mem)
		return 0;
	return stage_copy(s, n, 1);
}

/* Makes sure n has a stage holding its current bytes (size n->a.size). */
static int ensure_stage(struct s3s *s, struct s3n *n)
{
	if (n->fd >= 0)
		return 0;
	if (n->wb_moves > 0) {
		/* a rename is queued: S3 has the bytes at the new key once it ran */
		int rc = wb_wait_node(s, n);
		if (rc)
			return rc;
		if (n->fd >= 0)
			return 0;
	}
	int rc = stage_open_hint(s, n, n->a.size);
	if (rc)
		return rc;
	if (n->remote && !n->pending && n->a.size > 0) {
		int err = 0;
		char *key = key_of(s, n, &err);
		if (!key) {
			stage_close(s, n);
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
			stage_close(s, n);
			return rc;
		}
	}
	if (ftruncate(n->fd, (off_t)n->a.size) < 0 || (rc = stage_charge(s, n, n->a.size))) {
		rc = rc ? rc : -errno;
		stage_close(s, n);
		return rc;
	}
	return 0;
}

/* The stage is about to change: it leaves the cache, and if an upload is
 * reading it (write-back), the node moves to a copy so the upload sends one
 * version.  mu held, after ensure_stage. */
static int stage_mod(struct s3s *s, struct s3n *n)
{
	lru_del(s, n);
	n->wgen++;
	n->ra_gen++; /* windows read from the stage are out of date */
	if (!n->uploading || n->fd < 0)
		return 0;
	return stage_copy(s, n, 0);
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
	char *xh = xattr_hdr(n);
	uint64_t xg = n->xgen;
	int rc;
	if (!n->pending && !n->dirty) {
		rc = meta_differs(n) ? copy_object(s, key, key, n->rsize, &a, xh) : 0;
	} else if (S_ISLNK(a.mode)) {
		rc = put_meta_object(s, key, &a, xh, n->link, n->link ? strlen(n->link) : 0);
	} else {
		struct metahdrs m;
		meta_headers(&a, xh, &m, NULL, NULL);
		if (n->fd >= 0 && a.size >= s->mp_threshold && a.size > 0) {
			/* big: in parts, several at once; the stage does not change
			 * meanwhile (writers need lk exclusive, we hold io) */
			char et[48];
			int fd = n->fd;
			pthread_mutex_unlock(&s->mu);
			rc = multipart(s, key, fd, NULL, a.size, m.h, et, sizeof(et));
			pthread_mutex_lock(&s->mu);
			if (rc == 0)
				snprintf(n->etag, sizeof(n->etag), "%s", et);
			goto uploaded;
		}
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
uploaded:
	free(key);
	free(xh);
	if (rc) {
		n->retry_at = mono_ns() + 2000000000LL;
		return rc;
	}
	n->pending = n->dirty = n->metadirty = 0;
	n->remote = 1;
	n->rsize = a.size;
	n->pxgen = xg;
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
	if (s->wb) {
		dir->marker = 1;
		return wb_queue_upload(s, dir);
	}
	int err = 0;
	char *key = key_of(s, dir, &err);
	if (!key)
		return err;
	char *xh = xattr_hdr(dir);
	int rc = put_meta_object(s, key, &dir->a, xh, NULL, 0);
	free(xh);
	free(key);
	if (rc == 0) {
		dir->marker = 1;
		persisted(dir);
		dir->chg = ++s->chg;
	}
	return rc;
}

/* ---- write-back: the queue and its threads (docs/s3.md) ---- */

enum { L_NONE, L_READY, L_DELAYED, L_RETRY };

static struct wop **list_head(struct s3s *s, int l, struct wop ***tail)
{
	switch (l) {
	case L_READY:
		*tail = &s->rd_tail;
		return &s->rd_head;
	case L_DELAYED:
		*tail = &s->dl_tail;
		return &s->dl_head;
	default:
		*tail = &s->rt_tail;
		return &s->rt_head;
	}
}

static void list_del(struct s3s *s, struct wop *op)
{
	if (op->lst == L_NONE)
		return;
	struct wop **tail, **head = list_head(s, op->lst, &tail);
	if (op->prev)
		op->prev->next = op->next;
	else
		*head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		*tail = op->prev;
	op->next = op->prev = NULL;
	op->lst = L_NONE;
}

static void list_add(struct s3s *s, struct wop *op, int l)
{
	struct wop **tail, **head = list_head(s, l, &tail);
	op->next = NULL;
	op->prev = *tail;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
	op->lst = l;
}

/* op may run (nothing before it on its keys): onto a list, a thread wakes. */
static void wb_ready(struct s3s *s, struct wop *op)
{
	int l = L_READY;
	if (!op->cancel && op->not_before > mono_ns())
		l = op->attempts ? L_RETRY : L_DELAYED;
	list_add(s, op, l);
	pthread_cond_signal(&s->wb_cv);
}

/* Makes a waiting op run now (fsync, cancel). */
static void wb_now(struct s3s *s, struct wop *op)
{
	op->not_before = 0;
	if (op->lst == L_DELAYED || (op->lst == L_RETRY && op->cancel)) {
		list_del(s, op);
		list_add(s, op, L_READY);
		pthread_cond_signal(&s->wb_cv);
	}
}

static struct wop *wb_pick(struct s3s *s, int64_t now, int64_t *wake)
{
	struct wop *op = s->rd_head;
	if (!op && s->dl_head) {
		if (s->wb_hurry || s->dl_head->not_before <= now)
			op = s->dl_head;
		else
			*wake = s->dl_head->not_before;
	}
	for (struct wop *r = s->rt_head; !op && r; r = r->next) {
		if (r->not_before <= now)
			op = r;
		else if (r->not_before < *wake)
			*wake = r->not_before;
	}
	if (op)
		list_del(s, op);
	return op;
}

static const char *wop_name(int t)
{
	return t == W_UPLOAD ? "upload" : t == W_DELETE ? "delete" : t == W_RENAME ? "rename" : "chmod";
}

static void *wb_main(void *arg);

static int wb_start(struct s3s *s)
{
	if (s->wb_nthr)
		return 0;
	s->wbt = calloc((size_t)s->wb_threads, sizeof(*s->wbt));
	for (int i = 0; s->wbt && i < s->wb_threads; i++)
		if (pthread_create(&s->wbt[s->wb_nthr], NULL, wb_main, s) == 0)
			s->wb_nthr++;
	return s->wb_nthr ? 0 : -EAGAIN;
}

/* Back-pressure: waits (mu dropped) until the queue has room for an op of
 * bytes.  Called before looking at what to queue, never while holding
 * anything a thread of the queue needs (they take mu only). */
static void wb_room(struct s3s *s, uint64_t bytes)
{
	while (s->wb_nthr && !s->wb_stop &&
	       (s->wb_n >= s->wb_max_ops ||
		(bytes && s->wb_n && s->wb_bytes + bytes > s->wb_max_bytes))) {
		s->wb_hurry++;
		pthread_cond_broadcast(&s->wb_cv);
		cvfs_about_to_block();
		pthread_cond_wait(&s->wb_done, &s->mu);
		s->wb_hurry--;
	}
}

static void kst_release(struct s3s *s, struct kst *k)
{
	if (k && k->nops == 0 && !k->inidle) {
		k->inidle = 1;
		k->inext = s->kidle;
		s->kidle = k;
	}
}

/* Queues an op (mu held).  delay: an upload, which waits wb_delay first so
 * that a rename or unlink soon after can change or cancel it. */
static struct wop *wb_enqueue(struct s3s *s, int type, const char *key, const char *src,
			      struct s3n *n, uint64_t bytes, int delay)
{
	if (wb_start(s))
		return NULL;
	struct wop *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->type = type;
	op->key = strdup(key);
	op->src = src ? strdup(src) : NULL;
	if (op->key)
		op->k[0] = kst_get(s, key);
	if (op->src)
		op->k[1] = kst_get(s, src);
	if (!op->k[0] || (src && !op->k[1])) {
		kst_release(s, op->k[0]);
		kst_release(s, op->k[1]);
		free(op->key);
		free(op->src);
		free(op);
		return NULL;
	}
	if (op->k[1] == op->k[0])
		op->k[1] = NULL;
	for (int i = 0; i < 2; i++) {
		struct kst *k = op->k[i];
		if (!k)
			continue;
		if (k->last && k->last->nsucc < 2) {
			k->last->succ[k->last->nsucc++] = op;
			op->ndeps++;
		}
		k->last = op;
		k->nops++;
	}
	op->k[0]->absent = type == W_DELETE;
	if (op->k[1])
		op->k[1]->absent = 1;
	op->n = n;
	if (n) {
		n->wbref++;
		if (type == W_RENAME)
			n->wb_moves++;
	}
	op->bytes = bytes;
	s->wb_n++;
	s->wb_bytes += bytes;
	op->anext = s->all;
	if (s->all)
		s->all->aprev = op;
	s->all = op;
	op->not_before =
		(delay || s->wb_delay_all) && s->wb_delay_ns > 0 ? mono_ns() + s->wb_delay_ns : 0;
	jlog_op(s, op);
	if (op->ndeps == 0)
		wb_ready(s, op);
	return op;
}

static void wb_finish(struct s3s *s, struct wop *op, int rc, int transient);

/* An op that has not started will send nothing.  May free nothing the
 * caller holds: a node is freed by its last op only once it is dead. */
static void wb_cancel(struct s3s *s, struct wop *op)
{
	if (!op || op->cancel || op->running)
		return;
	op->cancel = 1;
	struct s3n *n = op->n;
	if (n) {
		n->ncancel++;
		if (n->upq == op)
			n->upq = NULL;
		if (n->metaq == op)
			n->metaq = NULL;
	}
	if (op->k[0]->last == op && op->type == W_UPLOAD)
		op->k[0]->absent = 1; /* it never reaches S3 */
	if (op->ndeps == 0) {
		/* nothing before it: done here, without waking a thread */
		list_del(s, op);
		wb_finish(s, op, 0, 0);
	} else {
		wb_now(s, op);
	}
}

/* Ops of n that will send something. */
static int wb_live(const struct s3n *n)
{
	return n->wbref - n->ncancel;
}

/* Queues n's upload (stage, symlink target or directory marker with its
 * attributes) unless one is queued and not started: that one reads n when
 * it starts, so it carries every change made meanwhile. */
static int wb_queue_upload(struct s3s *s, struct s3n *n)
{
	if (n->upq || !n->parent || n->gone || n->dead)
		return 0;
	int err = 0;
	char *key = key_of(s, n, &err);
	if (!key)
		return err;
	uint64_t bytes = n->dir || S_ISLNK(n->a.mode) ? 0 : n->a.size;
	n->upq = wb_enqueue(s, W_UPLOAD, key, NULL, n, bytes, 1);
	free(key);
	return n->upq ? 0 : -ENOMEM;
}

static void persisted_from(struct s3n *n, const struct cvfs_attr *a, uint64_t xg)
{
	n->pxgen = xg;
	n->pmode = a->mode;
	n->puid = a->uid;
	n->pgid = a->gid;
	n->pmtime = a->mtime_ns;
}

/* Runs an upload op (mu held; dropped while on the wire).  The stage is
 * read through a dup of its descriptor: a write meanwhile moves the node to
 * a copy of the stage (stage_cow), so what goes up is one version. */
static int wb_upload(struct s3s *s, struct wop *op, int *transient)
{
	struct s3n *n = op->n;
	if (n->upq == op)
		n->upq = NULL;
	if (n->dead || !n->parent || n->gone)
		return 0;
	struct cvfs_attr a = n->a;
	uint64_t xg = n->xgen;
	int rc;
	op->metacopy = 0;
	if (!n->dir && !S_ISLNK(a.mode) && !n->pending && !n->dirty) {
		/* only the attributes changed: a copy onto itself */
		op->metacopy = 1;
		if (!meta_differs(n)) {
			n->metadirty = 0;
			return 0;
		}
		char *xh = xattr_hdr(n);
		rc = copy_object(s, op->key, op->key, n->rsize, &a, xh);
		free(xh);
		*transient = s3c_last_transient();
		if (rc == 0) {
			persisted_from(n, &a, xg);
			n->metadirty = meta_differs(n);
			n->chg = ++s->chg;
		}
		return rc;
	}
	uint64_t gen = n->wgen;
	struct metahdrs m;
	char *xh = xattr_hdr(n);
	meta_headers(&a, xh, &m, NULL, NULL);
	int fd = -1;
	char *body = NULL;
	size_t blen = 0;
	if (S_ISLNK(a.mode)) {
		body = n->link ? strdup(n->link) : NULL;
		blen = body ? strlen(body) : 0;
	} else if (!n->dir && a.size > 0) {
		fd = n->fd < 0 ? -1 : dup(n->fd);
		if (fd < 0) {
			rc = n->fd < 0 ? -EIO : -errno;
			free(xh);
			return rc;
		}
	}
	n->uploading++;
	char et[48] = "";
	pthread_mutex_unlock(&s->mu);
	if (fd >= 0 && a.size >= s->mp_threshold) {
		rc = multipart(s, op->key, fd, NULL, a.size, m.h, et, sizeof(et));
		*transient = rc == -EIO || rc == -ETIMEDOUT;
	} else {
		struct s3_req rq = S3_REQ_INIT;
		rq.method = "PUT";
		rq.key = op->key;
		rq.hdrs = m.h;
		if (fd >= 0) {
			rq.body_fd = fd;
			rq.body_len = a.size;
		} else {
			rq.body = body;
			rq.blen = blen;
		}
		struct s3_resp rs;
		rc = s3c_do(s->c, &rq, &rs);
		*transient = s3c_last_transient();
		const char *v = rc == 0 ? s3_resp_hdr(&rs, "etag") : NULL;
		snprintf(et, sizeof(et), "%s", v ? v : "");
		s3_resp_free(&rs);
	}
	pthread_mutex_lock(&s->mu);
	n->uploading--;
	if (fd >= 0)
		close(fd);
	free(body);
	free(xh);
	if (rc)
		return rc;
	/* renamed while this upload waited (its first attempts failed) and
	 * no queued rename carries the object to the new key: what went up
	 * is at the old key only (a DELETE of it follows), n is still owed
	 * at its key, by the upload queued there or by one queued now */
	int kerr = 0;
	char *cur = key_of(s, n, &kerr);
	int elsewhere = cur && strcmp(cur, op->key) != 0 && n->wb_moves == 0;
	free(cur);
	if (elsewhere) {
		n->chg = ++s->chg;
		if (n->nopen == 0)
			(void)wb_queue_upload(s, n);
		return 0;
	}
	if (n->dir)
		n->marker = 1;
	n->remote = 1;
	n->pending = 0;
	if (n->wgen == gen)
		n->dirty = 0;
	snprintf(n->etag, sizeof(n->etag), "%s", et);
	n->rsize = a.size;
	persisted_from(n, &a, xg);
	n->metadirty = !n->dir && meta_differs(n);
	n->meta = 1;
	n->meta_at = mono_ns();
	n->chg = ++s->chg;
	if (!clean(n) && n->nopen == 0)
		(void)wb_queue_upload(s, n); /* changed while on the wire: again */
	return 0;
}

/* Runs one op (mu held; dropped while on the wire). */
static int wb_run(struct s3s *s, struct wop *op, int *transient)
{
	*transient = 0;
	if (op->cancel)
		return 0;
	struct s3n *n = op->n;
	int rc = 0;
	switch (op->type) {
	case W_UPLOAD:
		return wb_upload(s, op, transient);
	case W_DELETE:
		rc = simple(s, "DELETE", op->key, NULL, NULL, 0);
		*transient = s3c_last_transient();
		return rc == -ENOENT ? 0 : rc; /* gone already: what was wanted */
	case W_META: {
		if (n->metaq == op)
			n->metaq = NULL;
		if (n->dead || !meta_differs(n))
			return 0;
		struct cvfs_attr a = n->a;
		uint64_t xg = n->xgen;
		char *xh = xattr_hdr(n);
		rc = copy_object(s, op->key, op->key, n->rsize, &a, xh);
		free(xh);
		*transient = s3c_last_transient();
		if (rc == 0) {
			persisted_from(n, &a, xg);
			n->chg = ++s->chg;
		}
		return rc;
	}
	case W_RENAME:
		if (!op->copied) {
			rc = copy_object(s, op->src, op->key, n->rsize, NULL, NULL);
			*transient = s3c_last_transient();
			if (rc)
				return rc;
			op->copied = 1;
		}
		rc = simple(s, "DELETE", op->src, NULL, NULL, 0);
		*transient = s3c_last_transient();
		if (rc == -ENOENT)
			rc = 0;
		if (rc == 0)
			n->chg = ++s->chg;
		return rc;
	}
	return -EINVAL;
}

static void node_free(struct s3s *s, struct s3n *n);

/* The ops waiting behind a failing one fail with it (their fsync reports
 * it rather than waiting for ever). */
static void wb_blame(struct s3s *s, struct wop *op, int rc, int depth)
{
	for (int i = 0; i < op->nsucc && depth < 32; i++) {
		struct wop *x = op->succ[i];
		if (x->n) {
			x->n->errseq++;
			x->n->wb_err = rc;
		}
		wb_blame(s, x, rc, depth + 1);
	}
}

/* Answers no retry can change: the op is dropped (said on stderr, counted,
 * reported by the next fsync of the file).  Everything else (S3 down,
 * 5xx, 403, a missing bucket...) is retried until it goes through: a
 * change is never dropped because S3 refused it for a while. */
static int wb_permanent(const struct wop *op, int rc)
{
	switch (rc) {
	case -ENAMETOOLONG: /* KeyTooLongError */
	case -EFBIG:        /* EntityTooLarge */
		return 1;
	case -ENOENT: /* the object to copy is gone (another client deleted it) */
		return op->type == W_META || (op->type == W_RENAME && !op->copied) ||
		       (op->type == W_UPLOAD && op->metacopy);
	}
	return 0;
}

/* The path on the mount of a key, for messages: "/" + the key without
 * the prefix. */
static const char *wb_path(const struct s3s *s, const char *key)
{
	size_t pl = strlen(s->prefix);
	return strncmp(key, s->prefix, pl) == 0 ? key + pl : key;
}

static void wb_note_err(struct s3s *s, const struct wop *op, int rc, int transient)
{
	char *k = strdup(op->key);
	if (k) {
		free(s->wb_last_key);
		s->wb_last_key = k;
	}
	s->wb_last_err = rc;
	s->wb_last_type = op->type;
	s->wb_last_transient = transient;
	s->wb_last_at = mono_ns();
}

/* The wait before the next attempt of an op that failed attempts times:
 * wb_retry_min doubling to wb_retry_max (1 s at most while unmounting). */
static int64_t wb_backoff(const struct s3s *s, int attempts)
{
	int64_t max = s->wb_retry_max_ns;
	if (s->wb_draining && max > 1000000000LL)
		max = 1000000000LL;
	int64_t d = s->wb_retry_min_ns;
	for (int i = 1; i < attempts && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

static void wb_finish(struct s3s *s, struct wop *op, int rc, int transient)
{
	op->running = 0;
	struct s3n *n = op->n;
	if (rc && !wb_permanent(op, rc)) {
		/* kept, with its bytes (the node's stage, the journal's copy),
		 * and tried again later; also while stopping: the drain then
		 * names it as not sent rather than dropping it */
		if (op->attempts++ == 0)
			s->wb_failing++;
		s->wb_retries++;
		s->wb_errseq++;
		wb_note_err(s, op, rc, transient);
		if (n) {
			n->errseq++;
			n->wb_err = rc;
		}
		wb_blame(s, op, rc, 0);
		if (!op->logged)
			fprintf(stderr,
				"chuk-vfs s3: %s of /%s failed (%s%s); kept, retrying in the "
				"background\n",
				wop_name(op->type), wb_path(s, op->key), strerror(-rc),
				transient ? "" : ", refused by S3");
		op->logged = 1;
		/* like one not started: its next attempt reads the node, so it
		 * carries what changes meanwhile (no second upload queued) */
		if (n && !n->dead && !op->cancel && op->type == W_UPLOAD && !n->upq)
			n->upq = op;
		if (n && !n->dead && !op->cancel && op->type == W_META && !n->metaq)
			n->metaq = op;
		op->not_before = mono_ns() + wb_backoff(s, op->attempts);
		list_add(s, op, L_RETRY);
		pthread_cond_broadcast(&s->wb_cv);
		pthread_cond_broadcast(&s->wb_done);
		return;
	}
	if (op->attempts)
		s->wb_failing--;
	if (rc) {
		s->wb_failed++;
		s->wb_errseq++;
		wb_note_err(s, op, rc, 0);
		fprintf(stderr, "chuk-vfs s3: %s of /%s failed for good (%s); dropped\n",
			wop_name(op->type), wb_path(s, op->key), strerror(-rc));
		if (n) {
			n->errseq++;
			n->wb_err = rc;
			n->wb_perm = rc;
		}
		wb_blame(s, op, rc, 0);
	} else if (op->cancel) {
		s->wb_cancelled++;
	} else {
		s->wb_ok++;
		if (n && op->type == W_UPLOAD)
			n->wb_err = 0;
		if (op->logged)
			fprintf(stderr, "chuk-vfs s3: %s of /%s went through after %d failed "
					"attempts\n",
				wop_name(op->type), wb_path(s, op->key), op->attempts);
	}
	if (!op->cancel)
		s->chg++;
	jlog_done(s, op);
	for (int i = 0; i < 2; i++) {
		struct kst *k = op->k[i];
		if (!k)
			continue;
		k->nops--;
		if (k->last == op)
			k->last = NULL;
		k->done_chg = s->chg;
		kst_release(s, k);
	}
	for (int i = 0; i < op->nsucc; i++)
		if (--op->succ[i]->ndeps == 0)
			wb_ready(s, op->succ[i]);
	if (n) {
		n->wbref--;
		if (op->cancel)
			n->ncancel--;
		if (op->type == W_RENAME)
			n->wb_moves--;
		if (n->upq == op)
			n->upq = NULL;
		if (n->metaq == op)
			n->metaq = NULL;
		if (n->wbref == 0 && n->dead)
			node_free(s, n);
		else if (n->wbref == 0)
			cache_keep(s, n);
	}
	if (op->aprev)
		op->aprev->anext = op->anext;
	else
		s->all = op->anext;
	if (op->anext)
		op->anext->aprev = op->aprev;
	s->wb_n--;
	s->wb_bytes -= op->bytes;
	free(op->key);
	free(op->src);
	free(op);
	kst_sweep(s);
	pthread_cond_broadcast(&s->wb_done);
}

static void *wb_main(void *arg)
{
	struct s3s *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->wb_stop) {
		int64_t wake = INT64_MAX;
		struct wop *op = wb_pick(s, mono_ns(), &wake);
		if (!op) {
			if (wake == INT64_MAX) {
				pthread_cond_wait(&s->wb_cv, &s->mu);
			} else {
				struct timespec ts = {wake / 1000000000, wake % 1000000000};
				pthread_cond_timedwait(&s->wb_cv, &s->mu, &ts);
			}
			continue;
		}
		op->running = 1;
		int tr = 0;
		int rc = wb_run(s, op, &tr);
		wb_finish(s, op, rc, tr);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* An op waiting for a later attempt (or for wb_delay) runs now. */
static void wb_kick(struct s3s *s, struct wop *op)
{
	if (op->running || (op->lst != L_RETRY && op->lst != L_DELAYED))
		return;
	op->not_before = 0;
	list_del(s, op);
	list_add(s, op, L_READY);
}

static int kst_in(const struct kst *k, struct kst *const *ks, size_t nk)
{
	for (size_t i = 0; i < nk; i++)
		if (ks[i] == k)
			return 1;
	return 0;
}

static int wb_touches(const struct wop *op, struct kst *const *ks, size_t nk)
{
	return kst_in(op->k[0], ks, nk) || (op->k[1] && kst_in(op->k[1], ks, nk));
}

/* The ops an fsync of n waits for: n's own, and every op on their keys, and
 * on the keys of those (a rename joins two), so the ops n's wait behind.
 * kick: they run now (those in backoff or wb_delay).  Returns how many of
 * them are on the wire.  mu held. */
static size_t wb_related(struct s3s *s, struct s3n *n, int kick)
{
	struct kst **ks = NULL;
	size_t nk = 0, cap = 0, running = 0;
	int changed = 1;
	for (int round = 0; changed && round < 16; round++) {
		changed = 0;
		for (struct wop *op = s->all; op; op = op->anext) {
			if (op->n != n && !wb_touches(op, ks, nk))
				continue;
			for (int i = 0; i < 2; i++) {
				if (!op->k[i] || kst_in(op->k[i], ks, nk))
					continue;
				if (nk == cap) {
					size_t nc = cap ? cap * 2 : 8;
					struct kst **t = realloc(ks, nc * sizeof(*t));
					if (!t)
						goto out;
					ks = t;
					cap = nc;
				}
				ks[nk++] = op->k[i];
				changed = 1;
			}
		}
	}
out:
	for (struct wop *op = s->all; op; op = op->anext) {
		if (op->n != n && !wb_touches(op, ks, nk))
			continue;
		if (op->running)
			running++;
		else if (kick)
			wb_kick(s, op);
	}
	free(ks);
	if (kick)
		pthread_cond_broadcast(&s->wb_cv);
	return running;
}

static size_t wb_running(const struct s3s *s)
{
	size_t k = 0;
	for (const struct wop *op = s->all; op; op = op->anext)
		k += op->running != 0;
	return k;
}

static void wb_deadline(int64_t end, struct timespec *ts)
{
	int64_t now = mono_ns(), w = now + 1000000000LL;
	if (end > now && end < w)
		w = end;
	ts->tv_sec = w / 1000000000;
	ts->tv_nsec = w % 1000000000;
}

/* fsync of a file: its ops, and those they wait behind, run now (also
 * those waiting to be retried); waits until they are done (0), or until
 * one of them fails an attempt, or until wb_wait passed with none of them
 * on the wire (EIO; they stay queued and the next fsync tries again).
 * mu held. */
static int wb_wait_node(struct s3s *s, struct s3n *n)
{
	uint64_t e0 = n->errseq;
	int64_t end = mono_ns() + s->wb_wait_ns;
	int rc = 0;
	s->wb_hurry++;
	if (wb_live(n) > 0)
		(void)wb_related(s, n, 1);
	cvfs_about_to_block();
	while (wb_live(n) > 0 && !s->wb_stop) {
		if (n->errseq != e0) {
			rc = -EIO;
			break;
		}
		if (mono_ns() >= end) {
			if (wb_related(s, n, 0) == 0) {
				rc = -EIO;
				break;
			}
			end = mono_ns() + 1000000000LL; /* an upload still going: let it */
		}
		struct timespec ts;
		wb_deadline(end, &ts);
		pthread_cond_timedwait(&s->wb_done, &s->mu, &ts);
	}
	s->wb_hurry--;
	if (!rc && n->wb_perm) {
		rc = -EIO;
		n->wb_perm = 0;
	}
	return rc;
}

/* Every op waiting for a later attempt runs now. */
static void wb_kick_all(struct s3s *s)
{
	while (s->rt_head)
		wb_kick(s, s->rt_head);
	pthread_cond_broadcast(&s->wb_cv);
}

/* syncfs (fsync of a directory), a directory rename: waits until the queue
 * is empty (ops in backoff are tried at once), or until an op failed an
 * attempt, or wb_wait passed with nothing on the wire (-EIO).  mu held. */
static int wb_wait_all(struct s3s *s)
{
	uint64_t e0 = s->wb_errseq;
	int64_t end = mono_ns() + s->wb_wait_ns;
	int rc = 0;
	s->wb_hurry++;
	wb_kick_all(s);
	cvfs_about_to_block();
	while (s->wb_n > 0 && s->wb_nthr && !s->wb_stop) {
		if (s->wb_errseq != e0) {
			rc = -EIO;
			break;
		}
		if (mono_ns() >= end) {
			if (wb_running(s) == 0) {
				rc = -EIO;
				break;
			}
			end = mono_ns() + 1000000000LL;
		}
		struct timespec ts;
		wb_deadline(end, &ts);
		pthread_cond_timedwait(&s->wb_done, &s->mu, &ts);
	}
	s->wb_hurry--;
	return rc;
}

/* Unmount: waits for the queue (failed ops are retried at once, then at
 * most 1 s apart) at most wb_drain, then stops the threads and names every
 * change not sent.  Returns how many.  mu held. */
static size_t wb_drain(struct s3s *s)
{
	if (!s->wb_nthr)
		return 0;
	int64_t end = mono_ns() + s->wb_drain_ns, logged = 0;
	s->wb_hurry++;
	s->wb_draining = 1;
	wb_kick_all(s);
	cvfs_about_to_block();
	while (s->wb_n > 0) {
		int64_t now = mono_ns();
		if (now >= end)
			break;
		if (now >= logged + 5000000000LL) {
			if (logged)
				fprintf(stderr, "chuk-vfs s3: unmount: %zu changes still to send\n", s->wb_n);
			logged = now;
		}
		int64_t w = end < now + 1000000000LL ? end : now + 1000000000LL;
		struct timespec ts = {w / 1000000000, w % 1000000000};
		pthread_cond_timedwait(&s->wb_done, &s->mu, &ts);
	}
	s->wb_hurry--;
	s->wb_stop = 1;
	pthread_cond_broadcast(&s->wb_cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->wb_nthr; i++)
		pthread_join(s->wbt[i], NULL);
	pthread_mutex_lock(&s->mu);
	size_t left = 0;
	for (struct wop *op = s->all; op; op = op->anext)
		left += !op->cancel;
	if (left) {
		fprintf(stderr,
			"chuk-vfs s3: unmount: gave up after %.0f s (wb_drain) on %zu changes S3 "
			"did not take; not sent:\n",
			(double)s->wb_drain_ns / 1e9, left);
		if (s->wb_last_err)
			fprintf(stderr, "chuk-vfs s3:   (last error: %s of /%s: %s)\n",
				wop_name(s->wb_last_type),
				s->wb_last_key ? wb_path(s, s->wb_last_key) : "?",
				strerror(-s->wb_last_err));
	}
	/* oldest first: the order they would have gone in */
	struct wop *last = s->all;
	while (last && last->anext)
		last = last->anext;
	for (struct wop *op = last; op; op = op->aprev)
		if (!op->cancel) {
			if (op->src)
				fprintf(stderr, "chuk-vfs s3:   %s /%s -> /%s (not sent)\n",
					wop_name(op->type), wb_path(s, op->src), wb_path(s, op->key));
			else
				fprintf(stderr, "chuk-vfs s3:   %s /%s (not sent)\n",
					wop_name(op->type), wb_path(s, op->key));
		}
	if (left && s->jfd >= 0)
		fprintf(stderr, "chuk-vfs s3: unmount: they stay in the journal (%s); the next "
				"mount of this bucket and prefix with the same cache_dir and "
				"journal=1 sends them\n",
			s->jdir ? s->jdir : "?");
	else if (left)
		fprintf(stderr, "chuk-vfs s3: unmount: they are lost (no journal: journal=1 "
				"keeps them for the next mount)\n");
	while (s->all) {
		struct wop *op = s->all;
		s->all = op->anext;
		list_del(s, op);
		struct s3n *n = op->n;
		if (n && --n->wbref == 0 && n->dead)
			node_free(s, n);
		free(op->key);
		free(op->src);
		free(op);
	}
	s->wb_n = 0;
	s->wb_failing = 0;
	return left;
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
static int copy_tree(struct s3s *s, const char *src, const char *dst, int isdir, uint64_t size)
{
	if (!isdir)
		return copy_object(s, src, dst, size, NULL, NULL);
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
			rc = copy_object(s, sk, dk, l.e[i].size, NULL, NULL);
		free(sk);
		free(dk);
	}
	if (rc == 0 && l.marker)
		rc = copy_object(s, src, dst, 0, NULL, NULL);
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
			rc = copy_tree(s, m->src_key, tmp[i], m->isdir, n->rsize);
		} else {
			rc = copy_tree(s, m->src_key, dst[i], m->isdir, n->rsize);
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
		struct s3n *tn = by_ino(s, s->moves[i].ino);
		rc = copy_tree(s, tmp[i], dst[i], s->moves[i].isdir, tn ? tn->rsize : 0);
		if (rc == 0)
			rc = delete_tree(s, tmp[i], s->moves[i].isdir);
	}
	/* a moved directory gets a marker with its attributes at the new place */
	for (size_t i = 0; i < nm && rc == 0; i++) {
		struct s3n *n = by_ino(s, s->moves[i].ino);
		if (n && dst[i] && n->dir && n->remote) {
			char *xh = xattr_hdr(n);
			rc = put_meta_object(s, dst[i], &n->a, xh, NULL, 0);
			free(xh);
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

/* A file rename, write-back: an upload not started yet goes to the new key
 * instead; otherwise a copy and a delete, after what is queued on either
 * key.  mu held. */
static int wb_move(struct s3s *s, struct move *m)
{
	struct s3n *n = by_ino(s, m->ino);
	int rc = 0;
	if (n && n->parent && !n->gone) {
		int err = 0;
		char *dst = key_of(s, n, &err);
		if (!dst)
			return err;
		if (n->upq) {
			/* an attempt that failed may still have reached S3 */
			int tried = n->upq->attempts > 0;
			wb_cancel(s, n->upq);
			if ((n->remote || wb_live(n) > 0 || tried) &&
			    !wb_enqueue(s, W_DELETE, m->src_key, NULL, NULL, 0, 0))
				rc = -ENOMEM;
			if (rc == 0)
				rc = wb_queue_upload(s, n);
		} else if (n->remote || wb_live(n) > 0) {
			if (!wb_enqueue(s, W_RENAME, dst, m->src_key, n, 0, 0))
				rc = -ENOMEM;
		}
		free(dst);
		n->chg = ++s->chg;
	} else if (n && (n->remote || wb_live(n) > 0)) {
		/* no name any more: the source just goes */
		if (!wb_enqueue(s, W_DELETE, m->src_key, NULL, NULL, 0, 0))
			rc = -ENOMEM;
	}
	struct s3n *op = by_ino(s, m->src_parent);
	if (rc == 0 && op && op->dir)
		rc = keep_dir(s, op);
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
		if (n->nopen == 0 && n->pend_seq < s->txn_seq && s->wb) {
			pend_del(s, n);
			(void)wb_queue_upload(s, n);
		} else if (n->nopen == 0 && n->pend_seq < s->txn_seq && n->retry_at <= now) {
			(void)upload(s, n);
		}
		n = next;
	}
}

static int s_txn_end(struct cvfs_store *st, int commit)
{
	struct s3s *s = S(st);
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (tl_write) {
		/* names only displaced (rename over them) are not moves */
		size_t k = 0;
		for (size_t i = 0; i < s->nmoves; i++) {
			if (s->moves[i].disp)
				move_free(&s->moves[i]);
			else
				s->moves[k++] = s->moves[i];
		}
		s->nmoves = k;
		if (s->nmoves) {
			if (commit && s->wb && s->nmoves == 1 && !s->moves[0].isdir) {
				rc = wb_move(s, &s->moves[0]);
			} else if (commit) {
				/* a directory (every key below it) or an exchange: on
				 * S3 as it is once everything queued is done */
				if (s->wb)
					rc = wb_wait_all(s);
				if (rc == 0)
					rc = run_moves(s);
				/* an exchanged file whose upload was cancelled when
				 * it was displaced goes up again, at its new key */
				for (size_t i = 0; s->wb && i < s->nmoves; i++) {
					struct s3n *n = by_ino(s, s->moves[i].ino);
					if (n && !clean(n) && n->nopen == 0)
						(void)wb_queue_upload(s, n);
				}
			}
			if (!commit || rc)
				forget_listings_of_moves(s);
			for (size_t i = 0; i < s->nmoves; i++)
				move_free(&s->moves[i]);
			s->nmoves = 0;
		}
		if (s->pend)
			run_pending(s);
		if (s->naborts && mono_ns() >= s->aborts_at) {
			pthread_mutex_unlock(&s->mu);
			run_aborts(s);
			pthread_mutex_lock(&s->mu);
			s->aborts_at = mono_ns() + 2000000000LL;
		}
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
	if (s->wb)
		wb_room(s, 0);
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
		/* a directory's own attributes: kept when chmod/chown/utimes set them
		 * (not when the core touches mtime for a change inside) */
		int named = n->parent && n != s->root && !n->gone;
		int set_time = a->mtime_ns != n->pmtime && a->mtime_ns != a->ctime_ns;
		int differs = a->mode != n->pmode || a->uid != n->puid || a->gid != n->pgid ||
			      set_time || n->xgen != n->pxgen;
		if (s->wb && named && (n->remote || n->wbref) && differs) {
			/* the marker goes up later, with the attributes of then */
			n->marker = 1;
			if (n->upq)
				jlog_refresh(s, n);
			rc = wb_queue_upload(s, n);
			if (rc == 0)
				persisted(n);
			else
				n->a = old;
		} else if (named && n->remote && differs) {
			int err = 0;
			char *key = key_of(s, n, &err);
			char *xh = xattr_hdr(n);
			rc = key ? put_meta_object(s, key, &n->a, xh, NULL, 0) : err;
			free(xh);
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
		if (rc == 0)
			rc = stage_mod(s, n);
		n->a.size = a->size;
		if (rc == 0 && ftruncate(n->fd, (off_t)a->size) < 0)
			rc = -errno;
		if (rc == 0)
			rc = stage_charge(s, n, a->size);
		if (rc) {
			n->a = old;
			pthread_mutex_unlock(&s->mu);
			return rc;
		}
		n->dirty = 1;
	}
	if (!n->parent || n->gone || n->pending) {
		/* no object to change (yet): the upload will carry it (the
		 * journal's copy of it too) */
		if (n->upq && n->parent && !n->gone)
			jlog_refresh(s, n);
	} else if (n->dirty || n->nopen > 0) {
		if (meta_differs(n))
			n->metadirty = 1;
		if (n->nopen == 0)
			pend_add(s, n); /* uploaded at the end of a later transaction */
	} else if (meta_differs(n) && n->remote) {
		int moving = 0;
		for (size_t i = 0; i < s->nmoves; i++)
			moving |= s->moves[i].ino == n->ino;
		if (!moving && s->wb) {
			/* a copy onto itself later, with the attributes of then */
			int err = 0;
			if (n->metaq || n->upq)
				jlog_refresh(s, n);
			char *key = n->metaq || n->upq ? NULL : key_of(s, n, &err);
			if (key && !(n->metaq = wb_enqueue(s, W_META, key, NULL, n, 0, 0)))
				rc = -ENOMEM;
			else if (!key && err)
				rc = err;
			free(key);
			if (rc)
				n->a = old;
		} else if (!moving) {
			int err = 0;
			char *key = key_of(s, n, &err);
			char *xh = xattr_hdr(n);
			rc = key ? copy_object(s, key, key, n->rsize, &n->a, xh) : err;
			free(xh);
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
		wb_cancel(s, n->upq);
		wb_cancel(s, n->metaq);
		if (n->wbref > 0) {
			/* queued ops still point at it: the last one frees it */
			pend_del(s, n);
			n->dead = 1;
		} else {
			node_free(s, n);
		}
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
	if (!key_name_ok(name, len))
		return -EILSEQ;
	pthread_mutex_lock(&s->mu);
	if (s->wb)
		wb_room(s, 0);
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
	if (s->nmoves + 2 > s->capmoves) {
		size_t nc = s->capmoves ? s->capmoves * 2 : 4;
		struct move *t = realloc(s->moves, nc * sizeof(*t));
		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		s->moves = t;
		s->capmoves = nc;
	}
	/* displaced earlier in this transaction and named again: the second
	 * half of an exchange, a move from where it was */
	int exch = 0;
	for (size_t i = 0; !renamed && i < s->nmoves; i++) {
		if (s->moves[i].disp && s->moves[i].ino == n->ino) {
			exch = 1;
			s->moves[i].disp = 0;
		}
	}
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
	}
	if (x) {
		/* displaced (rename over it): its object is overwritten */
		rc = keep_bytes(s, x);
		if (rc) {
			move_free(&mv);
			goto out;
		}
		if (s->wb) {
			wb_cancel(s, x->upq);
			wb_cancel(s, x->metaq);
		}
		int err = 0;
		struct move dm = {.ino = x->ino, .isdir = x->dir != NULL, .src_parent = x->parent,
				  .src_nlen = x->nlen, .disp = 1};
		dm.src_key = key_of(s, x, &err);
		dm.src_name = strndup(x->name, x->nlen);
		if (dm.src_key && dm.src_name)
			s->moves[s->nmoves++] = dm;
		else
			move_free(&dm);
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
		else if (!renamed && s->wb && (n->dir || S_ISLNK(n->a.mode)))
			rc = wb_queue_upload(s, n); /* the marker or the target, later */
		else if (!renamed && n->dir)
			rc = put_meta_object(s, key, &n->a, NULL, NULL, 0);
		else if (!renamed && S_ISLNK(n->a.mode))
			rc = put_meta_object(s, key, &n->a, NULL, n->link,
					     n->link ? strlen(n->link) : 0);
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
	} else if (exch) {
		/* the move was recorded when it was displaced */
	} else if (s->wb && (n->dir || S_ISLNK(n->a.mode))) {
		n->pending = 1; /* until the upload is done */
		n->marker = n->dir != NULL;
		persisted(n);
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
	if (s->wb)
		wb_room(s, 0);
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
			if (!s->moves[i].disp && s->moves[i].src_parent == dir &&
			    s->moves[i].src_nlen == len &&
			    !memcmp(s->moves[i].src_name, name, len))
				rc = 0;
		goto out;
	}
	if (s->wb) {
		rc = keep_bytes(s, n);
		if (rc)
			goto out;
		int err = 0;
		char *key = key_of(s, n, &err);
		if (!key) {
			rc = err;
			goto out;
		}
		/* an upload or chmod not started yet is not needed any more;
		 * S3 may have the key (now, or once a running op is done):
		 * delete it after them */
		int tried = n->upq && n->upq->attempts > 0; /* it may have reached S3 */
		wb_cancel(s, n->upq);
		wb_cancel(s, n->metaq);
		if (n->remote || wb_live(n) > 0 || tried) {
			if (!wb_enqueue(s, W_DELETE, key, NULL, NULL, 0, 0))
				rc = -ENOMEM;
		}
		free(key);
		if (rc)
			goto out;
		n->remote = 0;
		n->marker = 0;
	} else if (n->remote && !n->pending) {
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

struct hjob {
	struct s3s *s;
	uint64_t *ino;
	char **key;
	struct s3_resp *rs;
	int *rc;
};

static void hjob_one(void *arg, size_t i)
{
	struct hjob *h = arg;
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "HEAD";
	rq.key = h->key[i];
	h->rc[i] = s3c_do(h->s->c, &rq, &h->rs[i]);
}

/* The metadata of the entries of a listing batch that have none yet, with
 * HEADs in parallel: the core asks for every entry's attributes right
 * after (readdirplus, `ls -l`), and one HEAD after the other costs a round
 * trip each.  mu held; dropped meanwhile. */
static void heads(struct s3s *s, const struct lent *b, size_t k)
{
	struct hjob h = {.s = s};
	size_t m = 0;
	h.ino = calloc(k ? k : 1, sizeof(*h.ino));
	h.key = calloc(k ? k : 1, sizeof(*h.key));
	h.rs = calloc(k ? k : 1, sizeof(*h.rs));
	h.rc = calloc(k ? k : 1, sizeof(*h.rc));
	for (size_t i = 0; h.ino && h.key && h.rs && h.rc && i < k; i++) {
		struct s3n *c = by_ino(s, b[i].ino);
		if (!c || c->meta || !c->remote || busy(c) || !c->parent || c->gone)
			continue;
		int err = 0;
		h.key[m] = key_of(s, c, &err);
		if (h.key[m])
			h.ino[m++] = c->ino;
	}
	if (m >= 2) {
		pthread_mutex_unlock(&s->mu);
		par_run(m, s->head_threads, hjob_one, &h);
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < m; i++) {
			struct s3n *c = by_ino(s, h.ino[i]);
			if (c && !c->meta && !c->gone && c->parent && (h.rc[i] == 0 || h.rc[i] == -ENOENT))
				(void)head_apply(s, c, h.rc[i], &h.rs[i]);
			s3_resp_free(&h.rs[i]);
		}
	}
	for (size_t i = 0; i < m; i++)
		free(h.key[i]);
	free(h.ino);
	free(h.key);
	free(h.rs);
	free(h.rc);
}

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
		if (rc == 0)
			heads(s, b, k);
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
		/* before removing a directory, look again: others may have filled
		 * it (write-back: unless the listing is younger than list_ttl) */
		if (d->remote && !s->wb)
			d->dir->listed_at = 0;
		rc = ensure_listed(s, d);
		if (rc == 0)
			rc = d->dir->count == 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- data ---- */

/* ---- reads ---- */

/* GETs [off, off+len) of key into buf; bytes past the object's end (it
 * shrank) read as zeros.  Without mu. */
static ssize_t ranged_get(struct s3s *s, const char *key, void *buf, size_t len, uint64_t off)
{
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "GET";
	rq.key = key;
	rq.sink_buf = buf;
	rq.sink_cap = len;
	rq.range_off = off;
	rq.range_len = len;
	struct s3_resp rs;
	int r = s3c_do(s->c, &rq, &rs);
	ssize_t rc = r;
	if (r == 0 || rs.status == 416) {
		size_t got = r == 0 ? (size_t)rs.got : 0;
		if (r == 0 && rs.status == 200 && off > 0) {
			rc = -EIO; /* the server ignored Range: should not happen with S3 */
		} else {
			memset((char *)buf + got, 0, len - got);
			rc = (ssize_t)len;
		}
	}
	s3_resp_free(&rs);
	return rc;
}

struct rfetch {
	struct s3s *s;
	const char *key;
	char *buf;
	uint64_t off;
	size_t len, piece;
	int rc;
	pthread_mutex_t m;
};

static void rfetch_piece(void *arg, size_t i)
{
	struct rfetch *f = arg;
	size_t o = i * f->piece;
	size_t l = f->len - o < f->piece ? f->len - o : f->piece;
	ssize_t r = ranged_get(f->s, f->key, f->buf + o, l, f->off + o);
	if (r < 0) {
		pthread_mutex_lock(&f->m);
		if (!f->rc)
			f->rc = (int)r;
		pthread_mutex_unlock(&f->m);
	}
}

/* Fills buf with [off, off+len): one GET, or several at once for a big
 * window (s3rver and S3 both serve parallel ranges faster than one). */
static int fetch_window(struct s3s *s, const char *key, char *buf, size_t len, uint64_t off)
{
	size_t piece = s->ra_streams > 1 ? len / (size_t)s->ra_streams + 1 : len;
	if (piece < (1u << 20))
		piece = 1u << 20;
	if (len <= piece) {
		ssize_t r = ranged_get(s, key, buf, len, off);
		return r < 0 ? (int)r : 0;
	}
	struct rfetch f = {.s = s, .key = key, .buf = buf, .off = off, .len = len, .piece = piece};
	pthread_mutex_init(&f.m, NULL);
	par_run((len + piece - 1) / piece, s->ra_streams, rfetch_piece, &f);
	pthread_mutex_destroy(&f.m);
	return f.rc;
}

/* A buffer of at least len bytes for window w (its own if big enough),
 * counted in ra_used; 0, or -ENOMEM past readahead_mem.  ra->m held. */
static int rawin_buf(struct s3s *s, struct rawin *w, size_t len)
{
	if (w->p && w->cap >= len)
		return 0;
	if (w->p) {
		free(w->p);
		__atomic_sub_fetch(&s->ra_used, w->cap, __ATOMIC_RELAXED);
		w->p = NULL;
		w->cap = 0;
	}
	if (__atomic_add_fetch(&s->ra_used, len, __ATOMIC_RELAXED) > s->ra_mem ||
	    !(w->p = malloc(len))) {
		__atomic_sub_fetch(&s->ra_used, len, __ATOMIC_RELAXED);
		return -ENOMEM;
	}
	w->cap = len;
	return 0;
}

struct ra_job {
	struct ra *ra;
	struct rawin *w;
	char *key; /* the object, or NULL: ... */
	int fd;    /* ... a dup of the local copy (stage or cached copy) */
	char *p;
	uint64_t off;
	size_t len;
};

/* Reads [off, off+len) of a local copy into buf; bytes past its end read
 * as zeros.  0 or -errno. */
static int pread_full(int fd, char *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	memset(buf + done, 0, len - done);
	return 0;
}

static void *ra_fetch_main(void *arg)
{
	struct ra_job *j = arg;
	struct ra *ra = j->ra;
	struct s3s *s = ra->s;
	if (!j->key) /* all of the window on its way from the disk at once */
		(void)posix_fadvise(j->fd, (off_t)j->off, (off_t)j->len, POSIX_FADV_WILLNEED);
	int rc = j->key ? fetch_window(s, j->key, j->p, j->len, j->off)
			: pread_full(j->fd, j->p, j->len, j->off);
	if (j->fd >= 0)
		close(j->fd);
	pthread_mutex_lock(&ra->m);
	struct rawin *w = j->w;
	if (w->drop)
		rawin_free(s, w);
	else
		w->state = rc == 0 ? RA_READY : RA_EMPTY;
	ra->nfetch--;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->m);
	free(j->key);
	free(j);
	return NULL;
}

/* Starts filling w with [off, off+len) on a thread of its own, from key
 * or (key NULL) from a dup of fd.  ra->m held; w is not RA_FETCH.  0 or
 * -errno (then w is empty). */
static int ra_start(struct s3s *s, struct ra *ra, struct rawin *w, const char *key, int fd,
		    uint64_t gen, uint64_t off, size_t len)
{
	w->state = RA_EMPTY;
	if (rawin_buf(s, w, len))
		return -ENOMEM;
	struct ra_job *j = malloc(sizeof(*j));
	char *k = key ? strdup(key) : NULL;
	int jfd = key ? -1 : dup(fd);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = -ENOMEM;
	if (j && (key ? k != NULL : jfd >= 0)) {
		*j = (struct ra_job){.ra = ra, .w = w, .key = k, .fd = jfd, .p = w->p, .off = off,
				     .len = len};
		w->off = off;
		w->len = len;
		w->gen = gen;
		w->drop = 0;
		w->state = RA_FETCH;
		w->used = ++ra->tick;
		ra->nfetch++;
		pthread_t t;
		rc = -pthread_create(&t, &at, ra_fetch_main, j);
		if (rc == 0) {
			j = NULL;
			k = NULL;
			jfd = -1;
		} else {
			w->state = RA_EMPTY;
			ra->nfetch--;
		}
	}
	pthread_attr_destroy(&at);
	free(j);
	free(k);
	if (jfd >= 0)
		close(jfd);
	return rc;
}

/* The window of generation gen holding [off, off+len), or NULL. */
static struct rawin *ra_find(struct ra *ra, uint64_t gen, uint64_t off, size_t len)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct rawin *w = &ra->w[i];
		if (w->state != RA_EMPTY && w->gen == gen && off >= w->off &&
		    off + len <= w->off + w->len)
			return w;
	}
	return NULL;
}

/* A slot for a new window: an empty one, else the ready window used least
 * recently other than keep (the reader's).  NULL if none may go. */
static struct rawin *ra_slot(struct ra *ra, const struct rawin *keep)
{
	struct rawin *best = NULL;
	for (int i = 0; i < RA_SLOTS; i++) {
		struct rawin *w = &ra->w[i];
		if (w->state == RA_EMPTY)
			return w;
		if (w->state == RA_READY && w != keep && (!best || w->used < best->used))
			best = w;
	}
	return best;
}

/* Keeps up to ra_ahead windows fetching or fetched after the window
 * [from, end) the reader is in.  ra->m held. */
static void ra_prefetch(struct s3s *s, struct ra *ra, const char *key, int fd, uint64_t gen,
			uint64_t rsize, const struct rawin *cur)
{
	uint64_t end = cur->off + cur->len;
	for (int d = 0; d < s->ra_ahead && ra->win && end < rsize; d++) {
		struct rawin *w = ra_find(ra, gen, end, 1);
		if (w && w->off == end) {
			end = w->off + w->len;
			continue;
		}
		if (w)
			break; /* a window overlaps from elsewhere: leave it */
		w = ra_slot(ra, cur);
		if (!w)
			break;
		size_t len = ra->win * 2 > s->ra_max ? s->ra_max : ra->win * 2;
		if (len > rsize - end)
			len = (size_t)(rsize - end);
		if (ra_start(s, ra, w, key, fd, gen, end, len))
			break;
		ra->win = len > ra->win ? len : ra->win;
		end += len;
	}
}

/* A read through the file's read-ahead windows.  Sequential reads (near
 * where the last one ended: the kernel sends a few at once, not always in
 * order) double the window from ra_min to ra_max and are served from
 * memory while the next ra_ahead windows are fetched meanwhile, each with
 * its own GET; a jump elsewhere closes the window, and such reads fetch just
 * what they ask for, without holding the window's lock while on the wire.
 * The source is the object (key), or (key NULL) the local copy fd: one big
 * read of it per window, on a thread, ahead of the kernel's reads. */
static ssize_t ra_read(struct s3s *s, struct ra *ra, const char *key, int fd, uint64_t gen,
		       uint64_t rsize, void *buf, size_t len, uint64_t off)
{
	pthread_mutex_lock(&ra->m);
	for (int i = 0; i < RA_SLOTS; i++) {
		struct rawin *w = &ra->w[i];
		if (w->state == RA_READY && w->gen != gen)
			w->state = RA_EMPTY; /* the bytes changed: keep only the buffer */
	}
	struct rawin *w;
	for (;;) {
		w = ra_find(ra, gen, off, len);
		if (!w || w->state == RA_READY)
			break;
		cvfs_about_to_block();
		pthread_cond_wait(&ra->cv, &ra->m);
	}
	if (!w) {
		uint64_t slack = (uint64_t)ra->win + (4u << 20);
		int seq = (ra->next == UINT64_MAX && off == 0) ||
			  (ra->next != UINT64_MAX && off + slack >= ra->next &&
			   off <= ra->next + slack);
		if (seq)
			ra->win = ra->win ? (ra->win * 2 > s->ra_max ? s->ra_max : ra->win * 2)
					  : s->ra_min;
		else
			ra->win = 0;
		size_t want = len > ra->win ? len : ra->win;
		if (want > rsize - off)
			want = (size_t)(rsize - off);
		if (want < len)
			want = len;
		/* a sequential read as big as the window still opens one (the
		 * windows after it are what it is for) */
		w = ra->win ? ra_slot(ra, NULL) : NULL;
		if (w && ra_start(s, ra, w, key, fd, gen, off, want) == 0) {
			/* the windows after it go on the wire at the same time */
			ra_prefetch(s, ra, key, fd, gen, rsize, w);
			cvfs_about_to_block();
			while (w->state == RA_FETCH && w->gen == gen && w->off == off)
				pthread_cond_wait(&ra->cv, &ra->m);
			if (w->state != RA_READY || w->gen != gen || w->off != off)
				w = NULL; /* failed: the plain GET below says why */
		} else {
			w = NULL;
		}
		if (!w) {
			/* random access (or no memory to spare): straight into buf */
			ra->win = 0;
			ra->next = off + len;
			pthread_mutex_unlock(&ra->m);
			if (!key) {
				int r = pread_full(fd, buf, len, off);
				return r ? r : (ssize_t)len;
			}
			return ranged_get(s, key, buf, len, off);
		}
	}
	memcpy(buf, w->p + (off - w->off), len);
	w->used = ++ra->tick;
	if (off + len > ra->next || ra->next == UINT64_MAX)
		ra->next = off + len;
	ra_prefetch(s, ra, key, fd, gen, rsize, w);
	pthread_mutex_unlock(&ra->m);
	return (ssize_t)len;
}

/* n's read-ahead, made at its first read (NULL without memory).  mu held. */
static struct ra *ra_get(struct s3s *s, struct s3n *n)
{
	if (!n->ra) {
		n->ra = calloc(1, sizeof(*n->ra));
		if (n->ra) {
			pthread_cond_init(&n->ra->cv, NULL);
			n->ra->s = s;
			pthread_mutex_init(&n->ra->m, NULL);
			n->ra->next = UINT64_MAX;
		}
	}
	return n->ra;
}

/*
 * A read that waits (the network, a cold disk) lets writers in meanwhile.
 * Reads run in a shared transaction (lk held shared), and lk prefers
 * writers: a read waiting seconds for S3 would hold back every create,
 * write and rename on the mount, and through the waiting writer every
 * later read too.  So around the wait the read drops lk (and mu), with the
 * node pinned (nread: busy, never freed), and takes both again after; what
 * it knew before is checked again by the caller (ra_gen, fd, gone).  A
 * write that runs meanwhile races with the read as it would on a local
 * file system: the read sees the bytes before or after it.
 */
static void read_unlocked(struct s3s *s, struct s3n *n)
{
	n->nread++;
	pthread_mutex_unlock(&s->mu);
	pthread_rwlock_unlock(&s->lk);
}

static void read_relock(struct s3s *s, struct s3n *n)
{
	pthread_rwlock_rdlock(&s->lk);
	pthread_mutex_lock(&s->mu);
	n->nread--;
}

/* A small object read for the first time is fetched whole into a cache
 * file (one GET, the size of a read-ahead window anyway): later reads, after
 * the kernel dropped its pages or at the next open, are served from it.
 * mu held (dropped while on the wire); errors leave the usual path. */
static void fill_whole(struct s3s *s, struct s3n *n)
{
	int err = 0;
	char *key = key_of(s, n, &err);
	if (!key)
		return;
	int mem;
	int fd = stage_new_fd(s, n->rsize, &mem);
	if (fd < 0) {
		free(key);
		return;
	}
	uint64_t gen = n->ra_gen, size = n->rsize;
	n->filling = 1;
	struct s3_req rq = S3_REQ_INIT;
	rq.method = "GET";
	rq.key = key;
	rq.sink_fd = fd;
	struct s3_resp rs;
	read_unlocked(s, n);
	int rc = s3c_do(s->c, &rq, &rs);
	read_relock(s, n);
	n->filling = 0;
	if (rc == 0 && rs.got == size && n->fd < 0 && n->ra_gen == gen && !n->gone && clean(n)) {
		stage_adopt(s, n, fd, mem, size);
		fd = -1;
		cache_keep(s, n);
	}
	s3_resp_free(&rs);
	if (fd >= 0)
		close(fd);
	free(key);
}

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
	if (n->fd < 0 && n->wb_moves > 0) {
		/* a rename is queued: the bytes are at the new key once it ran */
		rc = wb_wait_node(s, n);
		if (rc)
			goto out;
	}
	if (n->fd < 0 && s->cache_max && S_ISREG(n->a.mode) && n->remote && !n->pending &&
	    !n->filling && n->parent && n->rsize > 0 && n->rsize <= s->cache_whole &&
	    n->rsize <= s->cache_max)
		fill_whole(s, n);
	if (n->fd >= 0) {
		lru_touch(s, n);
		if (n->memfd) {
			rc = pread_full(n->fd, buf, len, off);
			if (rc == 0)
				rc = (ssize_t)len;
			goto out;
		}
		/* a disk stage or cached copy is read without mu (a cold read
		 * waits for the disk; the kernel sends several reads at once):
		 * through a dup, which stays valid whatever happens to the stage
		 * meanwhile (writers may run: see read_unlocked), and through
		 * the read-ahead windows: a sequential reader gets one big read
		 * of the file per window, on a thread, ahead of its reads (the
		 * kernel's 256 KiB reads of it, from several threads and a little
		 * out of order, defeat the disk's own read-ahead) */
		int fd = dup(n->fd);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		struct ra *ra = ra_get(s, n);
		uint64_t gen = n->ra_gen, size = n->a.size;
		read_unlocked(s, n);
		if (ra && off < size) {
			rc = ra_read(s, ra, NULL, fd, gen, size, buf, len, off);
		} else {
			rc = pread_full(fd, buf, len, off);
			if (rc == 0)
				rc = (ssize_t)len;
		}
		close(fd);
		read_relock(s, n);
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
	struct ra *ra = ra_get(s, n);
	uint64_t gen = n->ra_gen, rsize = n->rsize;
	/* the node lives on (pinned); its ra lock comes before mu */
	read_unlocked(s, n);
	rc = ra ? ra_read(s, ra, key, -1, gen, rsize, buf, len, off)
		: ranged_get(s, key, buf, len, off);
	read_relock(s, n);
	free(key);
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
		if (rc == 0)
			rc = stage_mod(s, n);
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
			if (rc == 0 && n->memfd && off + len > n->msize)
				rc = stage_charge(s, n, off + len);
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
		if (rc == 0)
			rc = stage_mod(s, n);
		if (rc == 0 && ftruncate(n->fd, (off_t)size) < 0)
			rc = -errno;
		if (rc == 0)
			rc = stage_charge(s, n, size);
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
		/* close-to-open: a clean file whose metadata is old is checked
		 * again, through its directory's listing (one request per
		 * directory and list_ttl, not one per file): a changed size, ETag
		 * or LastModified drops what we knew, and the HEAD follows */
		if (!busy(n) && n->remote && n->parent && n->fd < 0 &&
		    mono_ns() - n->meta_at >= s->ttl_ns) {
			struct s3n *d = by_ino(s, n->parent);
			if (d && d->dir)
				rc = ensure_listed(s, d);
			if (rc == 0 && (n->gone || !n->parent))
				rc = -ENOENT;
			else if (rc == 0 && !n->meta)
				rc = head_node(s, n);
			else if (rc == 0)
				n->meta_at = mono_ns();
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

/* close, fsync and the last release, write-back: the upload is queued
 * (fsync waits for it).  lk held shared. */
static int wb_flush(struct s3s *s, uint64_t ino, int closing, int wait)
{
	pthread_mutex_lock(&s->mu);
	struct s3n *n = by_ino(s, ino);
	if (!n) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	int rc = 0, last = 0;
	if (!clean(n) && n->parent && !n->gone) {
		wb_room(s, n->upq ? 0 : n->a.size);
		if (n->upq && !closing)
			jlog_refresh(s, n); /* the bytes and attributes of this close */
		rc = wb_queue_upload(s, n);
	}
	if (wait && rc == 0)
		rc = wb_wait_node(s, n);
	if (closing && n->nopen > 0 && --n->nopen == 0) {
		last = 1;
		cache_keep(s, n);
	}
	pthread_mutex_unlock(&s->mu);
	if (last)
		ra_release(s, n, 0); /* the window lives while the file is open */
	return rc;
}

static int flush_node(struct s3s *s, uint64_t ino, int closing)
{
	if (s->wb)
		return wb_flush(s, ino, closing, 0);
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
	if (rc && rc != -ENOMEM) {
		/* the bytes stay staged and go up later (a later close, fsync,
		 * syncfs, unmount); close and fsync say EIO, the log says why */
		int err = 0;
		char *key = key_of(s, n, &err);
		fprintf(stderr, "chuk-vfs s3: upload of /%s failed (%s); kept, sent again later\n",
			key ? wb_path(s, key) : "?", strerror(-rc));
		free(key);
		rc = -EIO;
	}
	int last = 0;
	if (closing) {
		if (n->nopen > 0)
			n->nopen--;
		if (n->nopen == 0) {
			last = 1;
			if (rc == 0 && !busy(n))
				cache_keep(s, n);
			else if (busy(n))
				pend_add(s, n); /* retried later (sync, a later txn, unmount) */
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (last)
		ra_release(s, n, 0); /* the window lives while the file is open */
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

/* Uploads (or, write-back, queues) everything owed; then, write-back,
 * waits for the queue: until it is empty or an op failed (sync), or as
 * long as wb_drain allows (unmount). */
static void print_stats(struct s3s *s)
{
	char b[256];
	s3c_stats(s->c, b, sizeof(b));
	pthread_mutex_lock(&s->mu);
	fprintf(stderr, "chuk-vfs s3 stats: requests %s; write-back ops %llu done, %llu cancelled, "
			"%llu retried, %llu failed, %zu queued; journal syncs %llu\n",
		b, s->wb_ok, s->wb_cancelled, s->wb_retries, s->wb_failed, s->wb_n, s->js_syncs);
	pthread_mutex_unlock(&s->mu);
}

static int sync_all(struct s3s *s, int unmount)
{
	int first = 0;
	run_aborts(s);
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
	if (s->wb) {
		pthread_mutex_lock(&s->mu);
		int rc = 0;
		if (unmount)
			rc = wb_drain(s) ? -EIO : 0;
		else
			rc = wb_wait_all(s);
		pthread_mutex_unlock(&s->mu);
		if (rc && !first)
			first = rc;
	} else if (unmount && first) {
		/* sync=close: name the files whose upload failed just now */
		pthread_mutex_lock(&s->mu);
		pos = 0;
		for (struct cvfs_hnode *h = cvfs_htab_next(&s->byino, &pos, NULL); h;
		     h = cvfs_htab_next(&s->byino, &pos, h)) {
			struct s3n *n = (struct s3n *)h;
			if (!(n->pending || n->dirty || n->metadirty) || !n->parent || n->gone ||
			    n->dead)
				continue;
			int err = 0;
			char *key = key_of(s, n, &err);
			fprintf(stderr, "chuk-vfs s3: unmount: upload /%s (not sent, lost)\n",
				key ? wb_path(s, key) : "?");
			free(key);
		}
		pthread_mutex_unlock(&s->mu);
	}
	if (!unmount && getenv("CVFS_S3_STATS"))
		print_stats(s); /* tests count requests around a syncfs */
	return first;
}

static int s_sync(struct cvfs_store *st, uint64_t ino, int datasync)
{
	struct s3s *s = S(st);
	(void)datasync;
	pthread_rwlock_rdlock(&s->lk);
	int rc = ino ? (s->wb ? wb_flush(s, ino, 0, 1) : flush_node(s, ino, 0)) : sync_all(s, 0);
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

/* ---- extended attributes (the store's side) ---- */

/* n with its metadata known (a HEAD if not yet: the xattrs come with it).
 * mu held. */
static int x_node(struct s3s *s, uint64_t ino, struct s3n **out)
{
	struct s3n *n = by_ino(s, ino);
	if (!n || n->gone)
		return -ENOENT;
	if (!n->meta && n->remote && n != s->root && n->parent && !busy(n)) {
		int rc = head_node(s, n);
		if (rc)
			return rc;
	}
	*out = n;
	return 0;
}

static struct s3x *x_find(struct s3n *n, const char *name)
{
	for (size_t i = 0; i < n->nxa; i++)
		if (!strcmp(n->xa[i].name, name))
			return &n->xa[i];
	return NULL;
}

static ssize_t s_getx(struct cvfs_store *st, uint64_t ino, const char *name, void *val,
		      size_t size)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n;
	ssize_t rc = x_node(s, ino, &n);
	struct s3x *x = rc ? NULL : x_find(n, name);
	if (rc == 0 && !x)
		rc = -ENODATA;
	else if (rc == 0 && size && size < x->len)
		rc = -ERANGE;
	else if (rc == 0) {
		if (size)
			memcpy(val, x->val, x->len);
		rc = (ssize_t)x->len;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* The user metadata of n as S3 counts it (keys after x-amz-meta- and
 * values), with its extended attributes as they are now. */
static size_t meta_size(const struct s3n *n)
{
	struct metahdrs m;
	char *xh = xattr_hdr(n);
	meta_headers(&n->a, xh, &m, NULL, NULL);
	size_t t = 0;
	for (int i = 0; m.h[i]; i++)
		if (!strncmp(m.h[i], "x-amz-meta-", 11))
			t += strlen(m.h[i]) - 11 - 2;
	free(xh);
	return t;
}

static int s_setx(struct cvfs_store *st, uint64_t ino, const char *name, const void *val,
		  size_t size, int flags)
{
	struct s3s *s = S(st);
	/* s3fs's reader splits the header at these */
	if (strpbrk(name, "\",:{}") || !key_name_ok(name, strlen(name)))
		return -ENOTSUP;
	pthread_mutex_lock(&s->mu);
	struct s3n *n;
	int rc = x_node(s, ino, &n);
	if (rc == 0 && n == s->root)
		rc = -ENOTSUP; /* the root's attributes are not stored */
	struct s3x *x = rc ? NULL : x_find(n, name);
	if (rc == 0 && x && (flags & XATTR_CREATE))
		rc = -EEXIST;
	else if (rc == 0 && !x && (flags & XATTR_REPLACE))
		rc = -ENODATA;
	if (rc == 0) {
		/* kept aside until the new set is known to fit */
		struct s3x *old = n->xa;
		size_t nold = n->nxa;
		n->xa = NULL;
		n->nxa = 0;
		for (size_t i = 0; rc == 0 && i < nold; i++)
			rc = xattr_put(n, old[i].name, strlen(old[i].name), old[i].val, old[i].len);
		if (rc == 0)
			rc = xattr_put(n, name, strlen(name), val, size);
		if (rc == 0 && meta_size(n) > s->meta_max)
			rc = -ENOSPC; /* S3: 2 KiB of user metadata per object */
		struct s3x *fresh = n->xa;
		size_t nfresh = n->nxa;
		if (rc) {
			n->xa = fresh;
			n->nxa = nfresh;
			xattr_clear(n);
			n->xa = old;
			n->nxa = nold;
		} else {
			n->xa = old;
			n->nxa = nold;
			xattr_clear(n);
			n->xa = fresh;
			n->nxa = nfresh;
			n->xgen++; /* sent with the next metadata (the core's inode_put) */
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static ssize_t s_listx(struct cvfs_store *st, uint64_t ino, char *list, size_t size)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n;
	ssize_t rc = x_node(s, ino, &n);
	if (rc == 0) {
		size_t need = 0;
		for (size_t i = 0; i < n->nxa; i++)
			need += strlen(n->xa[i].name) + 1;
		if (size && size < need) {
			rc = -ERANGE;
		} else {
			if (size) {
				size_t o = 0;
				for (size_t i = 0; i < n->nxa; i++) {
					size_t l = strlen(n->xa[i].name) + 1;
					memcpy(list + o, n->xa[i].name, l);
					o += l;
				}
			}
			rc = (ssize_t)need;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int s_removex(struct cvfs_store *st, uint64_t ino, const char *name)
{
	struct s3s *s = S(st);
	pthread_mutex_lock(&s->mu);
	struct s3n *n;
	int rc = x_node(s, ino, &n);
	struct s3x *x = rc ? NULL : x_find(n, name);
	if (rc == 0 && !x) {
		rc = -ENODATA;
	} else if (rc == 0) {
		free(x->name);
		free(x->val);
		*x = n->xa[--n->nxa];
		if (!n->nxa) {
			free(n->xa);
			n->xa = NULL;
		}
		n->xgen++;
	}
	pthread_mutex_unlock(&s->mu);
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

/* The clean end (unmount): everything owed is sent, waiting at most
 * wb_drain; -EIO if something was not (named on stderr by the drain). */
static int s_finish(struct cvfs_store *st)
{
	struct s3s *s = S(st);
	if (s->finished)
		return s->finish_rc;
	s->finished = 1;
	int rc = 0;
	if (s->root && !s->readonly) {
		pthread_rwlock_rdlock(&s->lk);
		rc = sync_all(s, 1);
		pthread_rwlock_unlock(&s->lk);
	}
	if (s->wb_nthr && !s->wb_stop) { /* readonly, or no root: stop the threads */
		pthread_mutex_lock(&s->mu);
		if (wb_drain(s))
			rc = -EIO;
		pthread_mutex_unlock(&s->mu);
	}
	s->finish_rc = rc ? -EIO : 0;
	return s->finish_rc;
}

static void json_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* For `chuk-vfs status`: the write-back queue and its failures. */
static char *s_status(struct cvfs_store *st)
{
	struct s3s *s = S(st);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	char req[256];
	s3c_stats(s->c, req, sizeof(req));
	pthread_mutex_lock(&s->mu);
	size_t running = wb_running(s);
	fprintf(f, "{\"write_back\":%s,\"journal\":%s,\"queued\":%zu,\"queued_bytes\":%llu,"
		   "\"sending\":%zu,\"failing\":%zu,\"done\":%llu,\"cancelled\":%llu,"
		   "\"retried\":%llu,\"dropped\":%llu,\"requests\":",
		s->wb ? "true" : "false", s->jfd >= 0 ? "true" : "false", s->wb_n,
		(unsigned long long)s->wb_bytes, running, s->wb_failing, s->wb_ok,
		s->wb_cancelled, s->wb_retries, s->wb_failed);
	json_str(f, req);
	fprintf(f, ",\"last_error\":");
	if (s->wb_last_err) {
		char what[64];
		snprintf(what, sizeof(what), "%s", wop_name(s->wb_last_type));
		fprintf(f, "{\"op\":\"%s\",\"path\":", what);
		char *path = NULL;
		if (asprintf(&path, "/%s", s->wb_last_key ? wb_path(s, s->wb_last_key) : "") < 0)
			path = NULL;
		json_str(f, path ? path : "?");
		free(path);
		fprintf(f, ",\"error\":");
		json_str(f, strerror(-s->wb_last_err));
		fprintf(f, ",\"by\":\"%s\",\"age_s\":%.1f}",
			s->wb_last_transient ? "network or S3 5xx/429" : "S3 refused",
			(double)(mono_ns() - s->wb_last_at) / 1e9);
	} else {
		fprintf(f, "null");
	}
	fprintf(f, "}");
	pthread_mutex_unlock(&s->mu);
	fclose(f);
	return out;
}

static void s_free(struct cvfs_store *st)
{
	struct s3s *s = S(st);
	if (!s)
		return;
	(void)s_finish(st);
	if (s->c && getenv("CVFS_S3_STATS"))
		print_stats(s);
	size_t pos = 0;
	struct cvfs_hnode *h = s->byino.b ? cvfs_htab_next(&s->byino, &pos, NULL) : NULL;
	while (h) {
		struct cvfs_hnode *nx = cvfs_htab_next(&s->byino, &pos, h);
		node_free(s, (struct s3n *)h);
		h = nx;
	}
	cvfs_htab_fini(&s->byino);
	cvfs_htab_fini(&s->byname);
	if (s->kmap.b) {
		pos = 0;
		h = cvfs_htab_next(&s->kmap, &pos, NULL);
		while (h) {
			struct cvfs_hnode *nx = cvfs_htab_next(&s->kmap, &pos, h);
			free(((struct kst *)h)->key);
			free(h);
			h = nx;
		}
		cvfs_htab_fini(&s->kmap);
	}
	free(s->wbt);
	js_finish(s); /* after the drain: its last lines are synced too */
	free(s->jfiles);
	pthread_cond_destroy(&s->js_cv);
	if (s->jfd >= 0)
		close(s->jfd);
	if (s->jlock >= 0)
		close(s->jlock);
	free(s->jdir);
	free(s->wb_last_key);
	pthread_cond_destroy(&s->wb_cv);
	pthread_cond_destroy(&s->wb_done);
	for (size_t i = 0; i < s->nmoves; i++)
		move_free(&s->moves[i]);
	free(s->moves);
	free(s->gone);
	for (size_t i = 0; i < s->naborts; i++) {
		free(s->aborts[i].key);
		free(s->aborts[i].id);
	}
	free(s->aborts);
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
	.getx = s_getx,
	.setx = s_setx,
	.listx = s_listx,
	.removex = s_removex,
	.write = s_write,
	.truncate = s_truncate,
	.statfs = s_statfs,
	.sync = s_sync,
	.open = s_open,
	.flush = s_flush,
	.release = s_release,
	.free = s_free,
	.finish = s_finish,
	.status = s_status,
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

/* Seconds, fractions allowed ("0.2"), as nanoseconds; def if unset or bad. */
static int64_t opt_secs(const struct cvfs_opt *opts, size_t nopts, const char *key, double def)
{
	const char *v = cvfs_opt_get(opts, nopts, key);
	char *end = NULL;
	double d = v && *v ? strtod(v, &end) : def;
	if (end && (*end || d < 0 || d > 1e7))
		d = def;
	return (int64_t)(d * 1e9);
}

/* ---- write-back journal (journal=1; docs/s3.md, "Crash window") ----
 *
 * J/log: one line per queued op ("U", "X", "R", "C"), per later change of
 * its attributes ("A") and per op done or cancelled ("D"); J/s-ID: the bytes
 * of upload ID, copied from the stage when it is queued and again at every
 * close while it waits.  Keys are hex.  The log is written (not fsynced): it
 * survives the daemon being killed, not the machine losing power.  The next
 * mount with the same cache_dir, bucket and prefix sends what is not "D". */

/* A time in seconds (fractions allowed, 0 up to a day), in ns; def when
 * missing or not such a number. */
static int64_t opt_seconds(const struct cvfs_opt *opts, size_t nopts, const char *key, int64_t def)
{
	const char *v = cvfs_opt_get(opts, nopts, key);
	if (!v || !*v)
		return def;
	char *end;
	double d = strtod(v, &end);
	if (*end || !(d >= 0 && d <= 86400))
		return def;
	return (int64_t)(d * 1e9);
}

static void hexs(char *dst, const char *src)
{
	static const char hx[] = "0123456789abcdef";
	for (; *src; src++) {
		*dst++ = hx[(unsigned char)*src >> 4];
		*dst++ = hx[(unsigned char)*src & 15];
	}
	*dst = 0;
}

static char *unhex(const char *h)
{
	size_t l = strlen(h) / 2;
	char *o = malloc(l + 1);
	if (!o)
		return NULL;
	for (size_t i = 0; i < l; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1) {
			free(o);
			return NULL;
		}
		o[i] = (char)v;
	}
	o[l] = 0;
	return o;
}

/* Something was written to the journal: the sync thread makes it durable
 * within jsync_ns.  mu held. */
static void jdirty(struct s3s *s)
{
	if (!s->jsync_ns)
		return;
	if (!s->jdirty) {
		s->jdirty = 1;
		s->jdirty_at = mono_ns();
		pthread_cond_signal(&s->js_cv);
	}
}

static void jwrite(struct s3s *s, const char *line)
{
	size_t l = strlen(line), done = 0;
	while (done < l) {
		ssize_t w = write(s->jfd, line + done, l - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "chuk-vfs s3: journal write failed: %s\n", strerror(errno));
			return;
		}
		done += (size_t)w;
	}
	jdirty(s);
}

/* The attributes, the size of the bytes kept with them (the replay sends
 * a data file only at a size the log recorded for it; a journal written
 * before the size was logged has 6 fields: no check), and the extended
 * attributes (x-amz-meta-xattr's value, or "-").  Allocated; NULL without
 * memory. */
static char *jattrs(const struct s3n *n)
{
	const struct cvfs_attr *a = &n->a;
	char *xv = xattr_value(n), *b = NULL;
	if (asprintf(&b, "%u %u %u %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu64 " %s", a->mode,
		     a->uid, a->gid, a->mtime_ns, a->atime_ns, a->ctime_ns, a->size,
		     xv ? xv : "-") < 0)
		b = NULL;
	free(xv);
	return b;
}

/* The bytes of upload op, from n's stage, into J/s-ID. */
static void jdata(struct s3s *s, struct wop *op, struct s3n *n)
{
	char p[PATH_MAX], t[PATH_MAX];
	snprintf(p, sizeof(p), "%s/s-%" PRIu64, s->jdir, op->jid);
	snprintf(t, sizeof(t), "%s/t-%" PRIu64, s->jdir, op->jid);
	int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int rc = n->fd >= 0 ? copy_fd(n->fd, fd, n->a.size) : 0;
	close(fd);
	/* a rename, so a daemon killed meanwhile leaves the old bytes whole */
	if (rc || rename(t, p) < 0) {
		fprintf(stderr, "chuk-vfs s3: journal: cannot keep the bytes of %s\n", op->key);
		unlink(t);
		return;
	}
	if (s->jsync_ns) {
		if (s->njfiles == s->capjfiles) {
			size_t nc = s->capjfiles ? s->capjfiles * 2 : 64;
			uint64_t *v = realloc(s->jfiles, nc * sizeof(*v));
			if (v) {
				s->jfiles = v;
				s->capjfiles = nc;
			}
		}
		if (s->njfiles < s->capjfiles)
			s->jfiles[s->njfiles++] = op->jid;
		else
			s->jfiles_lost = 1; /* no memory: the next sync takes the whole disk */
		jdirty(s);
	}
}

static void jlog_op(struct s3s *s, struct wop *op)
{
	if (s->jfd < 0)
		return;
	js_start(s);
	op->jid = ++s->jid;
	size_t kl = strlen(op->key), sl = op->src ? strlen(op->src) : 0;
	size_t ll = op->n && op->n->link ? strlen(op->n->link) : 0;
	char *at = op->n ? jattrs(op->n) : strdup("");
	char *line = malloc(2 * (kl + sl + ll) + 256 + (at ? strlen(at) : 0));
	char *hk = malloc(2 * kl + 1), *hs = malloc(2 * sl + 1), *hl = malloc(2 * ll + 1);
	if (!at || !line || !hk || !hs || !hl)
		goto out;
	hexs(hk, op->key);
	hexs(hs, op->src ? op->src : "");
	hexs(hl, op->n && op->n->link ? op->n->link : "");
	switch (op->type) {
	case W_UPLOAD: {
		struct s3n *n = op->n;
		char kind = n->dir ? 'd' : S_ISLNK(n->a.mode) ? 'l' : 'f';
		if (kind == 'f' && !n->pending && !n->dirty) {
			/* the attributes only: a copy onto itself */
			sprintf(line, "C %" PRIu64 " %s %s\n", op->jid, hk, at);
			break;
		}
		if (kind == 'f')
			jdata(s, op, n);
		op->jdata = kind == 'f';
		sprintf(line, "U %" PRIu64 " %s %c %s %s\n", op->jid, hk, kind, at, hl[0] ? hl : "-");
		break;
	}
	case W_DELETE:
		sprintf(line, "X %" PRIu64 " %s\n", op->jid, hk);
		break;
	case W_RENAME:
		sprintf(line, "R %" PRIu64 " %s %s\n", op->jid, hs, hk);
		break;
	default:
		sprintf(line, "C %" PRIu64 " %s %s\n", op->jid, hk, at);
	}
	jwrite(s, line);
out:
	free(at);
	free(line);
	free(hk);
	free(hs);
	free(hl);
}

/* A queued upload or chmod of n will carry n's attributes (and bytes) of
 * when it starts: the journal follows. */
static void jlog_refresh(struct s3s *s, struct s3n *n)
{
	if (s->jfd < 0)
		return;
	struct wop *ops[2] = {n->upq, n->metaq};
	for (int i = 0; i < 2; i++) {
		if (!ops[i] || !ops[i]->jid)
			continue;
		char *at = jattrs(n), *line = NULL;
		if (!at || asprintf(&line, "A %" PRIu64 " %s\n", ops[i]->jid, at) < 0)
			line = NULL;
		if (line)
			jwrite(s, line);
		free(line);
		if (!at || ops[i]->type != W_UPLOAD || n->dir || S_ISLNK(n->a.mode)) {
			free(at);
			continue;
		}
		jdata(s, ops[i], n);
		if (!ops[i]->jdata && (n->pending || n->dirty)) {
			/* logged as a chmod, now with bytes: logged again */
			struct wop *op = ops[i];
			char *hk = malloc(2 * strlen(op->key) + 1), *l2 = NULL;
			if (hk) {
				hexs(hk, op->key);
				if (asprintf(&l2, "U %" PRIu64 " %s f %s -\n", op->jid, hk, at) >= 0)
					jwrite(s, l2);
				free(l2);
			}
			free(hk);
			op->jdata = 1;
		}
		free(at);
	}
}

static void jlog_done(struct s3s *s, struct wop *op)
{
	if (s->jfd < 0 || !op->jid)
		return;
	char line[64];
	snprintf(line, sizeof(line), "D %" PRIu64 "\n", op->jid);
	jwrite(s, line);
	snprintf(line, sizeof(line), "%s/s-%" PRIu64, s->jdir, op->jid);
	unlink(line);
	if (s->wb_n == 1 && ftruncate(s->jfd, 0) == 0) /* this was the last: all sent */
		s->jid = 0;
}

/* The journal's sync thread: every data file written since its last turn
 * (fdatasync), the directory (the renames and unlinks), then the log, at
 * most jsync_ns after the first change: one round of fsyncs for all the
 * closes, unlinks and renames of that time.  A log line can reach the disk
 * before the data file it names (the kernel writes back when it likes):
 * the replay knows such a file by its trailer and does not send it. */
struct jsync_job {
	struct s3s *s;
	const uint64_t *ids;
};

/* fdatasyncs of many files at once: the disk's journal commits them
 * together (ext4 takes every fsync waiting at a commit into it), where one
 * after the other each waits for a commit of its own */
#define JSYNC_THREADS 16

static void jsync_one(void *arg, size_t i)
{
	struct jsync_job *j = arg;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/s-%" PRIu64, j->s->jdir, j->ids[i]);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) { /* gone: sent meanwhile */
		(void)fdatasync(fd);
		close(fd);
	}
}

static void *js_main(void *arg)
{
	struct s3s *s = arg;
	int dfd = open(s->jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->jdirty && !s->js_stop)
			pthread_cond_wait(&s->js_cv, &s->mu);
		if (!s->jdirty)
			break; /* stopping, all synced */
		int64_t due = s->jdirty_at + s->jsync_ns;
		while (!s->js_stop && mono_ns() < due) {
			struct timespec ts = {due / 1000000000, due % 1000000000};
			pthread_cond_timedwait(&s->js_cv, &s->mu, &ts); /* CLOCK_MONOTONIC */
		}
		uint64_t *files = s->jfiles;
		size_t nf = s->njfiles;
		int all = s->jfiles_lost;
		s->jfiles = NULL;
		s->njfiles = s->capjfiles = 0;
		s->jfiles_lost = 0;
		s->jdirty = 0;
		int jfd = dup(s->jfd);
		pthread_mutex_unlock(&s->mu);
		if (all && jfd >= 0)
			(void)syncfs(jfd);
		struct jsync_job jj = {.s = s, .ids = files};
		par_run(nf, JSYNC_THREADS, jsync_one, &jj);
		free(files);
		if (dfd >= 0)
			(void)fsync(dfd);
		if (jfd >= 0) {
			(void)fdatasync(jfd);
			close(jfd);
		}
		pthread_mutex_lock(&s->mu);
		s->js_syncs++;
	}
	pthread_mutex_unlock(&s->mu);
	if (dfd >= 0)
		close(dfd);
	return NULL;
}

/* Starts the sync thread (lazily, after the daemon forked).  mu held. */
static void js_start(struct s3s *s)
{
	if (s->js_started || s->jfd < 0 || !s->jsync_ns)
		return;
	if (pthread_create(&s->jst, NULL, js_main, s) == 0)
		s->js_started = 1;
	else
		fprintf(stderr, "chuk-vfs s3: journal: no sync thread; not fsynced\n");
}

/* Syncs what is left and stops the thread.  Without mu. */
static void js_finish(struct s3s *s)
{
	if (!s->js_started)
		return;
	pthread_mutex_lock(&s->mu);
	s->js_stop = 1;
	pthread_cond_signal(&s->js_cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->jst, NULL);
	s->js_started = 0;
}

struct jop {
	uint64_t id;
	char t, kind;
	char *key, *src, *link;
	char *xh; /* the x-amz-meta-xattr header line, or NULL */
	struct cvfs_attr a;
	int done;
	int nsizes;        /* sizes the log recorded for its bytes (the last ones) */
	uint64_t sizes[8];
};

/* Parses attributes (and the size, when the line has it) into o. */
static int jparse_attrs(const char *p, struct jop *o)
{
	struct cvfs_attr *a = &o->a;
	uint64_t size;
	int at = 0;
	int k = sscanf(p, "%u %u %u %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNu64 " %n", &a->mode,
		       &a->uid, &a->gid, &a->mtime_ns, &a->atime_ns, &a->ctime_ns, &size, &at);
	if (k < 6)
		return -1;
	if (k == 7 && at > 0) {
		/* the extended attributes: a token without spaces, "-" for none */
		size_t l = strcspn(p + at, " \n");
		free(o->xh);
		o->xh = NULL;
		if (l && !(l == 1 && p[at] == '-') &&
		    asprintf(&o->xh, "x-amz-meta-xattr: %.*s", (int)l, p + at) < 0)
			o->xh = NULL;
	}
	if (k == 7) {
		if (o->nsizes == 8)
			memmove(o->sizes, o->sizes + 1, 7 * sizeof(o->sizes[0]));
		else
			o->nsizes++;
		o->sizes[o->nsizes - 1] = size;
	}
	return 0;
}

/* Sends what the log of an earlier mount left, in order.  Stops at the
 * first failure (the journal stays for the next mount).  Before any thread
 * runs; mu held. */
static int jreplay(struct s3s *s, char **errmsg)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/log", s->jdir);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	struct jop *v = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	while (getline(&line, &lcap, f) > 0) {
		char t = line[0], w1[2100] = "", w2[2100] = "", w3[8] = "";
		uint64_t id = 0;
		if (sscanf(line + 1, "%" SCNu64, &id) != 1)
			continue;

		if (t == 'D' || t == 'A') {
			for (size_t i = n; i-- > 0;) {
				if (v[i].id != id)
					continue;
				if (t == 'D')
					v[i].done = 1;
				else
					(void)jparse_attrs(strchr(line + 2, ' ') + 1, &v[i]);
				break;
			}
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct jop *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		struct jop *o = &v[n];
		for (size_t i = n; i-- > 0;) {
			if (v[i].id == id) { /* logged again (a chmod that got bytes) */
				o = &v[i];
				free(o->key);
				free(o->src);
				free(o->link);
				free(o->xh);
				break;
			}
		}
		int again = o != &v[n];
		memset(o, 0, sizeof(*o));
		o->id = id;
		o->t = t;
		int k = 0, off = 0;
		if (t == 'U' && sscanf(line + 1, "%*u %2099s %1s %n", w1, w3, &off) == 2 && off) {
			o->kind = w3[0];
			const char *q = line + 1 + off;
			const char *last = strrchr(line, ' ');
			/* the attributes, without the last token (the link) */
			char *qa = last > q ? strndup(q, (size_t)(last - q)) : NULL;
			int pa = qa ? jparse_attrs(qa, o) : -1;
			free(qa);
			if (pa == 0) {
				char lk[2100] = "";
				sscanf(last + 1, "%2099s", lk);
				o->link = strcmp(lk, "-") ? unhex(lk) : NULL;
				k = 1;
			}
		} else if (t == 'X' && sscanf(line + 1, "%*u %2099s", w1) == 1) {
			k = 1;
		} else if (t == 'R' && sscanf(line + 1, "%*u %2099s %2099s", w2, w1) == 2) {
			o->src = unhex(w2);
			k = o->src != NULL;
		} else if (t == 'C' && sscanf(line + 1, "%*u %2099s %n", w1, &off) == 1 && off) {
			k = jparse_attrs(line + 1 + off, o) == 0;
		}
		if (k)
			o->key = unhex(w1);
		if (k && o->key) {
			if (!again)
				n++;
		} else if (again) {
			o->done = 1; /* unreadable: the old entry goes too */
		} else {
			free(o->src);
			free(o->link);
			free(o->xh);
		}
	}
	free(line);
	fclose(f);
	int rc = 0;
	size_t sent = 0, left = 0;
	for (size_t i = 0; i < n; i++)
		left += !v[i].done;
	if (left)
		fprintf(stderr, "chuk-vfs s3: journal: sending %zu changes an earlier mount left\n",
			left);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct jop *o = &v[i];
		if (o->done)
			continue;
		if (o->t == 'U' && o->kind == 'f') {
			snprintf(p, sizeof(p), "%s/s-%" PRIu64, s->jdir, o->id);
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			struct stat st;
			if (fd < 0 || fstat(fd, &st) < 0) {
				if (fd >= 0)
					close(fd);
				continue; /* no bytes kept: nothing to send */
			}
			int whole = o->nsizes == 0; /* an older journal: no sizes */
			for (int k = 0; k < o->nsizes; k++)
				whole |= o->sizes[k] == (uint64_t)st.st_size;
			if (!whole) {
				/* the machine went down before the file was synced:
				 * its bytes are not all there (S3 keeps what it had) */
				fprintf(stderr, "chuk-vfs s3: journal: the bytes of %s did not all reach "
						"the disk before the crash; not sent\n", o->key);
				close(fd);
				continue;
			}
			struct metahdrs m;
			meta_headers(&o->a, o->xh, &m, NULL, NULL);
			pthread_mutex_unlock(&s->mu);
			if ((uint64_t)st.st_size >= s->mp_threshold) {
				rc = multipart(s, o->key, fd, NULL, (uint64_t)st.st_size, m.h, NULL, 0);
			} else {
				struct s3_req rq = S3_REQ_INIT;
				rq.method = "PUT";
				rq.key = o->key;
				rq.hdrs = m.h;
				rq.body_fd = fd;
				rq.body_len = (uint64_t)st.st_size;
				struct s3_resp rs;
				rc = s3c_do(s->c, &rq, &rs);
				s3_resp_free(&rs);
			}
			pthread_mutex_lock(&s->mu);
			close(fd);
		} else if (o->t == 'U') {
			rc = put_meta_object(s, o->key, &o->a, o->xh, o->link,
					     o->link ? strlen(o->link) : 0);
		} else if (o->t == 'X') {
			rc = simple(s, "DELETE", o->key, NULL, NULL, 0);
		} else if (o->t == 'R') {
			rc = copy_object(s, o->src, o->key, 0, NULL, NULL);
			if (rc == -ENOENT)
				rc = 0; /* the copy was done, the source deleted, before the end */
			else if (rc == 0)
				rc = simple(s, "DELETE", o->src, NULL, NULL, 0);
		} else {
			rc = copy_object(s, o->key, o->key, 0, &o->a, o->xh);
			if (rc == -ENOENT)
				rc = 0;
		}
		if (rc == 0)
			sent++;
		else
			set_errmsg(errmsg, "s3 store: journal %s: %s of %s failed (%s); %zu changes "
					   "still to send, kept for the next mount",
				   s->jdir, o->t == 'X' ? "delete" : o->t == 'R' ? "rename" : "upload",
				   o->key, strerror(-rc), left - sent);
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].src);
		free(v[i].link);
		free(v[i].xh);
	}
	free(v);
	if (rc == 0) {
		if (left)
			fprintf(stderr, "chuk-vfs s3: journal: %zu changes sent\n", sent);
		snprintf(p, sizeof(p), "%s/log", s->jdir);
		unlink(p);
		DIR *d = opendir(s->jdir);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strncmp(e->d_name, "s-", 2) || !strncmp(e->d_name, "t-", 2)) {
				snprintf(p, sizeof(p), "%s/%s", s->jdir, e->d_name);
				unlink(p);
			}
		}
		if (d)
			closedir(d);
	}
	return rc;
}

/* The journal directory for this bucket and prefix in cache_dir, locked. */
static int jopen(struct s3s *s, const char *cd, const char *endpoint, char **errmsg)
{
	char id[2200];
	snprintf(id, sizeof(id), "%s|%s|%s", endpoint ? endpoint : "", s->c->bucket, s->prefix);
	if (asprintf(&s->jdir, "%s/chuk-vfs-s3-journal-%016" PRIx64, cd,
		     cvfs_hash_bytes(id, strlen(id), 1)) < 0) {
		s->jdir = NULL;
		return -ENOMEM;
	}
	if (mkdir(s->jdir, 0700) < 0 && errno != EEXIST) {
		set_errmsg(errmsg, "s3 store: journal %s: %s", s->jdir, strerror(errno));
		return -errno;
	}
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/lock", s->jdir);
	s->jlock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->jlock < 0 || flock(s->jlock, LOCK_EX | LOCK_NB) < 0) {
		set_errmsg(errmsg, "s3 store: journal %s is in use by another mount", s->jdir);
		return -EBUSY;
	}
	pthread_mutex_lock(&s->mu);
	int rc = jreplay(s, errmsg);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return rc;
	snprintf(p, sizeof(p), "%s/log", s->jdir);
	s->jfd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (s->jfd < 0) {
		set_errmsg(errmsg, "s3 store: journal %s: %s", p, strerror(errno));
		return -errno;
	}
	return 0;
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
	rq.total_ms = s->c->check_ms; /* retries included: a mount never hangs here */
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
	s->jfd = s->jlock = -1;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wb_cv, &ca);
	pthread_cond_init(&s->wb_done, &ca);
	pthread_cond_init(&s->js_cv, &ca);
	pthread_condattr_destroy(&ca);
	s->base.ops = &s3_ops;
	s->base.caps = CVFS_CAP_PERSISTENT | CVFS_CAP_SHARED | CVFS_CAP_THREADS | CVFS_CAP_XATTR;
	s->uid = getuid();
	s->gid = getgid();
	s->next_ino = 2;
	/* listings live as long as the kernel caches names: the mount's
	 * cache_timeout (a hint chuk-vfs-mount passes when given; its default
	 * for shared stores is 1 s), unless list_ttl says otherwise */
	s->ttl_ns = opt_seconds(opts, nopts, "list_ttl",
				opt_seconds(opts, nopts, "cache_timeout", 1000000000LL));
	s->mp_threshold = (uint64_t)opt_long(opts, nopts, "multipart_threshold", 16 << 20);
	s->mp_part = (uint64_t)opt_long(opts, nopts, "multipart_part", 8 << 20);
	s->mp_threads = (int)opt_long(opts, nopts, "multipart_threads", 4);
	s->copy_max = (uint64_t)opt_long(opts, nopts, "copy_max", 5LL << 30);
	s->ra_min = (size_t)opt_long(opts, nopts, "readahead_min", 1 << 20);
	s->ra_max = (size_t)opt_long(opts, nopts, "readahead_max", 32 << 20);
	s->ra_mem = (uint64_t)opt_long(opts, nopts, "readahead_mem", 512 << 20);
	s->head_threads = (int)opt_long(opts, nopts, "head_threads", 16);
	s->ra_streams = (int)opt_long(opts, nopts, "readahead_streams", 2);
	s->ra_ahead = (int)opt_long(opts, nopts, "readahead_ahead", 2);
	s->meta_max = (size_t)opt_long(opts, nopts, "meta_max", 2048);
	if (s->ra_ahead < 0 || s->ra_ahead > RA_SLOTS - 2)
		s->ra_ahead = RA_SLOTS - 2;
	if (s->ra_streams < 1 || s->ra_streams > 16)
		s->ra_streams = 1;
	if (s->mp_threads < 1 || s->mp_threads > 64)
		s->mp_threads = 4;
	if (s->head_threads < 1 || s->head_threads > 64)
		s->head_threads = 16;
	if (s->ra_max < s->ra_min)
		s->ra_max = s->ra_min;
	s->cache_max = (uint64_t)opt_long(opts, nopts, "cache_max", 1L << 30);
	s->cache_whole = (uint64_t)opt_long(opts, nopts, "cache_whole", 1 << 20);
	s->stage_mem = (uint64_t)opt_long(opts, nopts, "stage_mem", 256 << 20);
	s->stage_mem_file = (uint64_t)opt_long(opts, nopts, "stage_mem_file", 1 << 20);
	const char *sy = cvfs_opt_get(opts, nopts, "sync");
	if (sy && strcmp(sy, "close") && strcmp(sy, "fsync") && strcmp(sy, "writeback")) {
		set_errmsg(errmsg, "s3 store: sync=%s: use sync=fsync (write-back, the default) or "
				   "sync=close", sy);
		s_free(&s->base);
		return -EINVAL;
	}
	s->wb = !(sy && !strcmp(sy, "close"));
	s->wb_threads = (int)opt_long(opts, nopts, "wb_threads", 8);
	if (s->wb_threads < 1 || s->wb_threads > 64)
		s->wb_threads = 8;
	s->wb_delay_ns = opt_long(opts, nopts, "wb_delay", 2000) * 1000000LL;
	s->wb_drain_ns = opt_secs(opts, nopts, "wb_drain", 120);
	s->wb_retry_min_ns = opt_secs(opts, nopts, "wb_retry_min", 0.5);
	s->wb_retry_max_ns = opt_secs(opts, nopts, "wb_retry_max", 60);
	if (s->wb_retry_min_ns < 1000000)
		s->wb_retry_min_ns = 1000000;
	if (s->wb_retry_max_ns < s->wb_retry_min_ns)
		s->wb_retry_max_ns = s->wb_retry_min_ns;
	s->wb_wait_ns = opt_secs(opts, nopts, "fsync_timeout", 60);
	s->wb_delay_all = opt_long(opts, nopts, "wb_delay_all", 0) != 0;
	s->wb_max_ops = (size_t)opt_long(opts, nopts, "wb_max_ops", 20000);
	s->wb_max_bytes = (uint64_t)opt_long(opts, nopts, "wb_max_bytes", 1L << 30);
	if (s->wb_max_ops < 1)
		s->wb_max_ops = 1;
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
		.check_ms = opt_long(opts, nopts, "mount_timeout", 10) * 1000,
		.retries = (int)opt_long(opts, nopts, "retries", 4),
		.verbose = (int)opt_long(opts, nopts, "s3_debug", 0),
	};
	int rc = s3c_new(&conf, &s->c, errmsg);
	if (rc) {
		s_free(&s->base);
		return rc;
	}
	if (cvfs_htab_init(&s->byino, 1024) || cvfs_htab_init(&s->byname, 1024) ||
	    cvfs_htab_init(&s->kmap, 1024)) {
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
	s->jsync_ns = opt_long(opts, nopts, "journal_sync", 100) * 1000000LL;
	if (s->jsync_ns < 0)
		s->jsync_ns = 0;
	if (s->wb && !s->readonly && opt_long(opts, nopts, "journal", 0)) {
		rc = jopen(s, cd, conf.endpoint, errmsg);
		if (rc) {
			s_free(&s->base);
			return rc;
		}
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
