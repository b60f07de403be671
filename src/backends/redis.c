/*
 * The Redis store: the whole filesystem (metadata and data) in one Redis
 * database under a key prefix, so several mounts on one server and prefix
 * share one filesystem.  The key scheme, atomicity and coherence rules are in
 * docs/redis.md; in short (P is the prefix):
 *
 *   P format          "chuk-vfs/redis 1 chunk=N": refuses foreign prefixes
 *   P ino, P eid      counters: inode numbers and listing cookies, handed out
 *                     in batches of ALLOC_BATCH per client (INCRBY)
 *   P nfiles          how many inodes exist (statfs)
 *   P clients         counter giving each client its id
 *   P i:INO           hash: the inode record (mode nlink uid ... btime)
 *   P d:DIR           hash: name -> "INO TYPE COOKIE" (names binary-safe)
 *   P l:DIR           sorted set: score COOKIE, member "INO:TYPE:NAME"
 *   P c:INO:IDX       string: bytes [IDX*N, (IDX+1)*N) of the file; missing or
 *                     short chunks read as zeros (holes)
 *   P k:INO           sorted set of the chunk indexes that exist
 *   P x:INO           hash: xattr name -> value
 *   P lk:INO          hash: lock owner -> its lock ranges (see "locks")
 *   P alive:CLIENT    set, expiring: a client's lock lease
 *   P chg             pub/sub channel of the change feed
 *
 * Transactions are optimistic.  A write transaction reads records and entries
 * from a process-wide cache (backends/redis/cache.h, kept coherent by the
 * change feed) or, on a miss, from the server without WATCH (a lookup is one
 * script call that also brings the record and, if small, the whole
 * directory); it keeps its writes in a local overlay that its own reads see,
 * and commits with one script call (EVALSHA) that checks that everything it
 * read is as it read it and applies the writes and a PUBLISH of what
 * changed.  A failed check means someone else got in first: txn_end returns
 * -EAGAIN, the cache forgets what the transaction read, and the core runs
 * the operation again.  Reads the script cannot check (listings, data,
 * xattrs, counts) are WATCHed in their round trip, and the script call then
 * goes inside MULTI/EXEC.  So one file operation costs one round trip when
 * its reads are cached.  Write transactions of this process are serialised
 * by a mutex (they would only conflict on the parent directories anyway);
 * read transactions run concurrently on a small pool of connections.
 *
 * Failures: every connection has a connect and a command timeout; a dead or
 * stopped server makes the current call fail with -ETIMEDOUT or -EIO, and
 * then a breaker fails further transactions at once for a short while, with
 * one transaction at a time probing the server, so no call waits more than
 * about one command timeout.  Broken connections are re-made at the next
 * transaction.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "backends.h"
#include "backends/redis/cache.h"
#include "cvfs/store.h"
#include "util/block.h"

#define FORMAT_TAG "chuk-vfs/redis"
#define FORMAT_VERSION 1
#define DEF_CHUNK 65536u
#define ALLOC_BATCH 1024
#define LIST_BATCH 256
#define PREFETCH_MAX 64
#define ENUM_MAX 256 /* chunks enumerated from the size; beyond, read P k:INO */
#define DEF_POOL 8
#define BREAKER_MS 1000
#define DEF_DC_TTL_MS 2000
#define CACHE_MAX 262144 /* cached records and names; past it the cache starts again */
#define LOAD_MAX 4096    /* a lookup brings the whole directory along up to this size */

typedef unsigned long long ull;

/* the Lua scripts (loaded at first use) */
enum { SC_LOCK, SC_LKDROP, SC_APPLY, SC_LOOKUP, NSCRIPTS };

/* ---- small buffers ---- */

/* Commands in Redis protocol, formatted and waiting to be sent. */
struct obuf {
	char *p;
	size_t n, cap;
	int ncmd;
};

static int ob_raw(struct obuf *b, const char *s, size_t n)
{
	if (b->n + n > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + n)
			nc *= 2;
		char *p = realloc(b->p, nc);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	return 0;
}

static int ob_vcmd(struct obuf *b, const char *fmt, va_list ap)
{
	char *cmd = NULL;
	int len = redisvFormatCommand(&cmd, fmt, ap);
	if (len < 0)
		return -ENOMEM;
	int rc = ob_raw(b, cmd, (size_t)len);
	redisFreeCommand(cmd);
	if (rc == 0)
		b->ncmd++;
	return rc;
}

static int ob_cmd(struct obuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = ob_vcmd(b, fmt, ap);
	va_end(ap);
	return rc;
}

static int ob_argv(struct obuf *b, int argc, const char **argv, const size_t *lens)
{
	char *cmd = NULL;
	int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (len < 0)
		return -ENOMEM;
	int rc = ob_raw(b, cmd, (size_t)len);
	redisFreeCommand(cmd);
	if (rc == 0)
		b->ncmd++;
	return rc;
}

static void ob_reset(struct obuf *b)
{
	b->n = 0;
	b->ncmd = 0;
	if (b->cap > (4u << 20)) { /* do not keep a big write's buffer */
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

static int grow(void **arr, size_t *cap, size_t need, size_t elsz)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	void *p = realloc(*arr, nc * elsz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_after(const struct timeval *tv)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += tv->tv_sec;
	ts.tv_nsec += (long)tv->tv_usec * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* ---- the store ---- */

struct rurl {
	int is_unix;
	char host[256];
	int port;
	char path[PATH_MAX];
	char user[256];
	char pass[512];
	int db;
};

struct rconn {
	redisContext *c;
	int in_use;
	int used;         /* has served a transaction: may have gone stale */
	int need_unwatch; /* left WATCHes behind (an aborted or read-only write txn) */
};

struct rstore {
	struct cvfs_store base;
	struct rurl url;
	char where[PATH_MAX + 300]; /* for messages, no password */
	char *prefix;
	size_t plen;
	struct timeval cto, cmdto;
	uint32_t chunk;
	int readonly;
	ull client_id;

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cv;
	struct rconn *conns;
	int nconns;

	pthread_mutex_t wlock; /* serialises write transactions */
	/* Read transactions hold it shared; a commit (EXEC) holds it exclusive:
	 * no reader of this process sees another thread's commit land between
	 * its reads.  Other clients' commits are caught by the record check in
	 * data_read (-EAGAIN). */
	pthread_rwlock_t iso;

	pthread_mutex_t brk_lock; /* the breaker */
	int down, down_err, probing;
	int64_t next_probe;

	pthread_mutex_t alloc_lock;
	ull ino_next, ino_end, eid_next, eid_end;

	/* the change feed */
	pthread_t wthr;
	int wstarted;
	atomic_int wstop;
	cvfs_change_cb cb;
	void *cbarg;

	atomic_ullong roundtrips, txns; /* CVFS_REDIS_STATS=1 prints them at the end */

	struct rcache *rc; /* records and names (backends/redis/cache.h); NULL: none */
	int dc_ttl_ms;     /* 0: no cache */
	int read_cache;    /* reads outside write transactions may use it */
	atomic_int feed_up; /* the feed thread is subscribed */

	/* locks (see "locks" below) */
	pthread_mutex_t lk_lock;
	pthread_cond_t lk_cv;  /* sync_seen moved; lstop set */
	char sha[NSCRIPTS][41]; /* the loaded scripts ("" until loaded) */
	int lease_ms;
	pthread_t lthr;        /* the lease thread */
	int lthr_started, lstop;
	uint64_t sync_sent, sync_seen;
	struct lkretry {
		uint64_t ino, owner;
		int flock;
	} *retry; /* unlocks to do again */
	size_t nretry, capretry;
};

static inline struct rstore *rs(struct cvfs_store *st)
{
	return (struct rstore *)st;
}

#define PFX(s) (s)->prefix, (s)->plen

/* ---- transactions: the per-thread state ---- */

struct ient { /* an inode seen or changed by this transaction */
	uint64_t ino;
	uint8_t present, orig, dirty;
	uint8_t checked; /* read (from the server or the cache): the commit checks it */
	uint64_t orig_size;
	struct cvfs_attr a;  /* as this transaction sees it */
	struct cvfs_attr oa; /* as read (orig) */
};

struct dent { /* a directory entry seen or changed */
	uint64_t dir;
	uint8_t present, orig, dirty;
	uint16_t len;
	uint64_t ino, oino, cookie, ocookie;
	uint32_t type, otype;
	char name[CVFS_NAME_MAX];
};

struct xent { /* an xattr seen or changed */
	uint64_t ino;
	char *name;
	uint8_t present, orig, dirty;
	size_t vlen;
	char *val;
};

enum { DOP_SETRANGE, DOP_SET, DOP_DEL, DOP_CUT };
struct dop { /* a data change, in order */
	int kind;
	uint64_t ino, idx; /* DOP_CUT: every chunk >= idx goes */
	uint32_t off;      /* SETRANGE */
	size_t len;
	char *buf;
	uint64_t *idxs; /* DOP_CUT: the chunk keys to delete */
	size_t nidx;
};

struct idel { /* an inode to delete at commit */
	uint64_t ino;
	uint64_t *idxs;
	size_t nidx;
};

struct rtxn {
	struct rstore *s;
	struct rconn *k;
	int write, probe, sent_ok;
	int unwatch; /* send UNWATCH first: the connection kept an earlier txn's WATCHes */
	int watched; /* this write transaction WATCHed keys: its commit goes in MULTI */
	int stale;   /* a read transaction saw a record change under it: -EAGAIN */
	/* directories assumed to hold exactly cnt entries on the server (the
	 * commit script checks it) */
	struct hchk {
		uint64_t dir;
		long cnt;
	} *hc;
	size_t nhc, caphc;
	/* kept across the reruns of one operation (not cleared by txn_clear): a
	 * directory whose count check failed is counted for real next time */
	uint64_t noopt_dir;
	int noopt_keep;
	struct obuf pre;
	struct ient *in;
	size_t nin, capin;
	struct dent *de;
	size_t nde, capde;
	struct xent *xe;
	size_t nxe, capxe;
	struct dop *dops;
	size_t ndop, capdop;
	struct idel *dels;
	size_t ndel, capdel;
	uint64_t *pf; /* inodes of the listing batch (readdirplus prefetch) */
	size_t npf, cappf;
	uint64_t empty_dir;
	struct obuf ob;
};

static pthread_key_t txn_key;
static pthread_once_t txn_once = PTHREAD_ONCE_INIT;

static void txn_clear(struct rtxn *t);

static void txn_destroy(void *p)
{
	struct rtxn *t = p;
	txn_clear(t);
	free(t->in);
	free(t->de);
	free(t->xe);
	free(t->dops);
	free(t->dels);
	free(t->pf);
	free(t->ob.p);
	free(t->pre.p);
	free(t->hc);
	free(t);
}

static void txn_key_init(void)
{
	pthread_key_create(&txn_key, txn_destroy);
}

static struct rtxn *thread_txn(void)
{
	pthread_once(&txn_once, txn_key_init);
	struct rtxn *t = pthread_getspecific(txn_key);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (t && pthread_setspecific(txn_key, t)) {
			free(t);
			t = NULL;
		}
	}
	return t;
}

/* The transaction this thread runs on st, or NULL. */
static struct rtxn *cur(struct cvfs_store *st)
{
	struct rtxn *t = pthread_getspecific(txn_key);
	return t && t->s == rs(st) ? t : NULL;
}

#define TXN_OR_FAIL(t, st)                                                            \
	struct rtxn *t = cur(st);                                                     \
	if (!t)                                                                       \
	return -EINVAL

/* ...and it may write */
#define WTXN_OR_FAIL(t, st)                                                           \
	TXN_OR_FAIL(t, st);                                                           \
	if (!t->write || t->s->readonly)                                              \
	return -EROFS

/* ---- errors: the one mapping ---- */

static int is_transport(int e)
{
	return e == -EIO || e == -ETIMEDOUT || e == -ECONNREFUSED || e == -ECONNRESET ||
	       e == -EHOSTUNREACH || e == -ENETUNREACH || e == -ENOENT;
}

/* A connection error (ctx->err, with saved_errno from the failing call) or an
 * error reply, as -errno. */
static int map_err(const redisContext *c, int saved_errno, const redisReply *r)
{
	if (c && c->err) {
		switch (c->err) {
		case REDIS_ERR_IO:
			if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
			    saved_errno == ETIMEDOUT || strstr(c->errstr, "temporarily unavailable") ||
			    strstr(c->errstr, "timed out"))
				return -ETIMEDOUT;
			if (saved_errno == ECONNREFUSED)
				return -ECONNREFUSED;
			return -EIO;
		case REDIS_ERR_OOM:
			return -ENOMEM;
		default: /* EOF, protocol, other */
			return -EIO;
		}
	}
	if (r && r->type == REDIS_REPLY_ERROR && r->str) {
		static const struct {
			const char *pfx;
			int e;
		} map[] = {
			{"OOM", -ENOSPC},     {"NOAUTH", -EACCES}, {"WRONGPASS", -EACCES},
			{"NOPERM", -EACCES},  {"READONLY", -EROFS}, {"MISCONF", -EIO},
			{"LOADING", -EIO},    {"BUSY", -EIO},       {"MASTERDOWN", -EIO},
			{"WRONGTYPE", -EIO},  {"EXECABORT", -EIO},
		};
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strncmp(r->str, map[i].pfx, strlen(map[i].pfx)) == 0)
				return map[i].e;
		return -EIO;
	}
	return -EIO;
}

/* ---- the breaker ---- */

/* Whether a transaction may talk to the server.  While it is down, one
 * transaction at a time (and only one that did not already wait long for a
 * connection) probes it; the others fail at once. */
static int breaker_enter(struct rstore *s, int *probe, int may_probe)
{
	*probe = 0;
	pthread_mutex_lock(&s->brk_lock);
	int rc = 0;
	if (s->down) {
		if (s->probing || mono_ms() < s->next_probe)
			rc = s->down_err;
		else if (may_probe < 0)
			rc = 0; /* a peek: a probe is due, let it come */
		else if (!may_probe)
			rc = s->down_err;
		else
			s->probing = *probe = 1;
	}
	pthread_mutex_unlock(&s->brk_lock);
	return rc;
}

static void breaker_note(struct rstore *s, int err, int probe)
{
	pthread_mutex_lock(&s->brk_lock);
	if (err == 0) {
		s->down = 0;
	} else if (is_transport(err)) {
		s->down = 1;
		s->down_err = err == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
		s->next_probe = mono_ms() + BREAKER_MS;
	}
	if (probe)
		s->probing = 0;
	pthread_mutex_unlock(&s->brk_lock);
}

/* ---- connections ---- */

static int reply_ok(const redisReply *r)
{
	return r && r->type != REDIS_REPLY_ERROR;
}

/* A new connection, authenticated, on the right database.  On failure
 * returns -errno and, if msg, a readable message. */
static redisContext *connect_one(struct rstore *s, int *err, char **msg)
{
	redisContext *c = s->url.is_unix ? redisConnectUnixWithTimeout(s->url.path, s->cto)
					 : redisConnectWithTimeout(s->url.host, s->url.port, s->cto);
	int se = errno;
	*err = 0;
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	if (c->err) {
		*err = map_err(c, se, NULL);
		if (c->err == REDIS_ERR_IO && (se == EINPROGRESS || *err == -ETIMEDOUT))
			*err = -ETIMEDOUT;
		if (msg && asprintf(msg, "cannot connect to redis at %s: %s%s", s->where,
				    *err == -ETIMEDOUT ? "timed out" : c->errstr,
				    *err == -ETIMEDOUT ? " (connect_timeout)" : "") < 0)
			*msg = NULL;
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, s->cmdto);
	if (!s->url.is_unix)
		redisEnableKeepAlive(c);
	int n = 0;
	if (s->url.pass[0]) {
		if (s->url.user[0])
			redisAppendCommand(c, "AUTH %s %s", s->url.user, s->url.pass);
		else
			redisAppendCommand(c, "AUTH %s", s->url.pass);
		n++;
	}
	if (s->url.db)
		redisAppendCommand(c, "SELECT %d", s->url.db), n++;
	redisAppendCommand(c, "PING"), n++;
	for (int i = 0; i < n; i++) {
		redisReply *r = NULL;
		if (redisGetReply(c, (void **)&r) != REDIS_OK) {
			*err = map_err(c, errno, NULL);
			if (msg && asprintf(msg, "redis at %s: %s", s->where,
					    *err == -ETIMEDOUT ? "no answer within the timeout"
							       : c->errstr) < 0)
				*msg = NULL;
			redisFree(c);
			return NULL;
		}
		if (!reply_ok(r) && !*err) {
			*err = map_err(NULL, 0, r);
			if (msg) {
				const char *what = "error";
				if (s->url.pass[0] && i == 0)
					what = "authentication failed";
				else if (!strncmp(r->str, "NOAUTH", 6))
					what = "the server needs a password";
				else if (s->url.db && i == n - 2)
					what = "cannot select the database";
				if (asprintf(msg, "redis at %s: %s (%s)", s->where, what, r->str) < 0)
					*msg = NULL;
			}
		}
		freeReplyObject(r);
	}
	if (*err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static void conn_drop(struct rconn *k)
{
	if (k->c)
		redisFree(k->c);
	k->c = NULL;
	k->used = 0;
	k->need_unwatch = 0;
}

static int pool_get(struct rstore *s, struct rconn **out, const struct timespec *deadline)
{
	struct timespec dl = *deadline;
	pthread_mutex_lock(&s->pool_lock);
	for (;;) {
		for (int i = 0; i < s->nconns; i++) {
			if (!s->conns[i].in_use) {
				s->conns[i].in_use = 1;
				pthread_mutex_unlock(&s->pool_lock);
				*out = &s->conns[i];
				return 0;
			}
		}
		cvfs_about_to_block();
		if (pthread_cond_timedwait(&s->pool_cv, &s->pool_lock, &dl) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->pool_lock);
			return -ETIMEDOUT;
		}
	}
}

static void pool_put(struct rstore *s, struct rconn *k)
{
	pthread_mutex_lock(&s->pool_lock);
	k->in_use = 0;
	pthread_cond_signal(&s->pool_cv);
	pthread_mutex_unlock(&s->pool_lock);
}

static int attr_same(const struct cvfs_attr *x, const struct cvfs_attr *y)
{
	return x->ino == y->ino && x->size == y->size && x->parent == y->parent &&
	       x->rdev == y->rdev && x->generation == y->generation && x->atime_ns == y->atime_ns &&
	       x->mtime_ns == y->mtime_ns && x->ctime_ns == y->ctime_ns &&
	       x->btime_ns == y->btime_ns && x->mode == y->mode && x->nlink == y->nlink &&
	       x->uid == y->uid && x->gid == y->gid && x->flags == y->flags;
}

static int parse_inode(const redisReply *r, uint64_t ino, struct cvfs_attr *a);

/* Sends the transaction's buffered commands and reads their replies into
 * *out (t->ob.ncmd of them; free with replies_free).  UNWATCH goes first in
 * the same round trip if the connection kept WATCHes.  A connection that went stale
 * between transactions (the server restarted) is re-made once,
 * transparently, if nothing was sent on it in this transaction yet. */
static int roundtrip(struct rtxn *t, redisReply ***out, int *nout)
{
	struct rstore *s = t->s;
	struct rconn *k = t->k;
	struct obuf *pre = &t->pre;
	int rc = 0;
	ob_reset(pre);
	if (t->unwatch)
		rc = ob_cmd(pre, "UNWATCH");
	int n = pre->ncmd + t->ob.ncmd;
	redisReply **rv = rc ? NULL : calloc((size_t)(n ? n : 1), sizeof(*rv));
	if (!rv) {
		ob_reset(&t->ob);
		return rc ? rc : -ENOMEM;
	}
	for (int attempt = 0;; attempt++) {
		int stale = k->used && !t->sent_ok;
		if (!k->c) {
			k->c = connect_one(s, &rc, NULL);
			if (!k->c)
				break;
			stale = 0;
		}
		atomic_fetch_add_explicit(&s->roundtrips, 1, memory_order_relaxed);
		cvfs_about_to_wait_briefly(); /* a round trip: see util/block.h */
		if ((pre->n && redisAppendFormattedCommand(k->c, pre->p, pre->n) != REDIS_OK) ||
		    (t->ob.n && redisAppendFormattedCommand(k->c, t->ob.p, t->ob.n) != REDIS_OK)) {
			rc = -ENOMEM;
			conn_drop(k);
			break;
		}
		int i;
		for (i = 0; i < n; i++) {
			if (redisGetReply(k->c, (void **)&rv[i]) != REDIS_OK) {
				rc = map_err(k->c, errno, NULL);
				break;
			}
		}
		if (i == n) {
			rc = 0;
			break;
		}
		for (int j = 0; j < i; j++)
			freeReplyObject(rv[j]), rv[j] = NULL;
		conn_drop(k);
		if (!(stale && attempt == 0 && rc != -ETIMEDOUT))
			break;
	}
	ob_reset(&t->ob);
	if (rc) {
		free(rv);
		breaker_note(s, rc, t->probe);
		t->probe = 0;
		return rc;
	}
	if (t->probe || !t->sent_ok)
		breaker_note(s, 0, t->probe);
	t->probe = 0;
	t->sent_ok = 1;
	k->used = 1;
	int at = 0;
	if (t->unwatch)
		freeReplyObject(rv[at++]);
	t->unwatch = 0;
	memmove(rv, rv + at, (size_t)(n - at) * sizeof(*rv));
	*nout = n - at;
	*out = rv;
	return 0;
}

static void replies_free(redisReply **rv, int n)
{
	if (!rv)
		return;
	for (int i = 0; i < n; i++)
		freeReplyObject(rv[i]);
	free(rv);
}

/* The commands buffered so far, in one round trip (roundtrip); rc, an
 * error met while buffering them, drops them instead. */
static int send_cmds(struct rtxn *t, int rc, redisReply ***rv, int *nr)
{
	if (rc) {
		ob_reset(&t->ob);
		return rc;
	}
	return roundtrip(t, rv, nr);
}

/* One read of the server that the commit script cannot check (a listing,
 * a count, a set, xattrs): in a write transaction its key is WATCHed in the
 * same round trip, and the commit then goes inside MULTI/EXEC.  key is the
 * key's name after the prefix.  *out: the read's reply (freeReplyObject). */
static int read_watched(struct rtxn *t, const char *key, redisReply **out, const char *fmt, ...)
{
	struct rstore *s = t->s;
	int rc = 0;
	*out = NULL;
	if (t->write) {
		rc = ob_cmd(&t->ob, "WATCH %b%s", PFX(s), key);
		t->watched = 1;
	}
	if (rc == 0) {
		va_list ap;
		va_start(ap, fmt);
		rc = ob_vcmd(&t->ob, fmt, ap);
		va_end(ap);
	}
	redisReply **rv;
	int nr;
	rc = send_cmds(t, rc, &rv, &nr);
	if (rc)
		return rc;
	*out = rv[nr - 1];
	rv[nr - 1] = NULL;
	replies_free(rv, nr);
	return 0;
}

/* ---- command words, scripts ---- */

/* Words of a command line under construction: copied into an arena, or
 * borrowed (data buffers). */
struct words {
	char *buf;
	size_t n, cap;
	struct word {
		const char *ext; /* borrowed, or NULL: at buf + off */
		size_t off, len;
	} *w;
	size_t nw, capw;
	int err;
};

static struct word *w_new(struct words *b)
{
	if (b->err || grow((void **)&b->w, &b->capw, b->nw + 1, sizeof(*b->w))) {
		b->err = 1;
		return NULL;
	}
	return &b->w[b->nw++];
}

static void w_ext(struct words *b, const void *p, size_t len)
{
	struct word *w = w_new(b);
	if (w) {
		w->ext = p ? p : "";
		w->len = len;
	}
}

static void w_vfmt(struct words *b, const struct rstore *s, const char *fmt, va_list ap)
{
	struct word *w = w_new(b);
	if (!w)
		return;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	size_t pl = s ? s->plen : 0;
	if (n < 0 || grow((void **)&b->buf, &b->cap, b->n + pl + (size_t)n + 1, 1)) {
		b->err = 1;
		b->nw--;
		return;
	}
	if (pl)
		memcpy(b->buf + b->n, s->prefix, pl);
	vsnprintf(b->buf + b->n + pl, (size_t)n + 1, fmt, ap);
	w->ext = NULL;
	w->off = b->n;
	w->len = pl + (size_t)n;
	b->n += w->len;
}

/* a word copied */
static void w_str(struct words *b, const void *p, size_t len)
{
	struct word *w = w_new(b);
	if (!w)
		return;
	if (grow((void **)&b->buf, &b->cap, b->n + len + 1, 1)) {
		b->err = 1;
		b->nw--;
		return;
	}
	memcpy(b->buf + b->n, p, len);
	w->ext = NULL;
	w->off = b->n;
	w->len = len;
	b->n += len;
}

/* a word from printf */
static void w_fmt(struct words *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	w_vfmt(b, NULL, fmt, ap);
	va_end(ap);
}

/* a key: the prefix, then printf */
static void w_key(struct words *b, const struct rstore *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	w_vfmt(b, s, fmt, ap);
	va_end(ap);
}

/* A counted group: w_count_begin leaves room for the count, w_count_end
 * writes the number of words since. */
static size_t w_count_begin(struct words *b)
{
	w_fmt(b, "%20s", "");
	return b->nw - 1;
}

static void w_count_end(struct words *b, size_t at)
{
	if (b->err)
		return;
	struct word *w = &b->w[at];
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%zu", b->nw - at - 1);
	memcpy(b->buf + w->off, tmp, (size_t)n);
	w->len = (size_t)n;
}

static void w_free(struct words *b)
{
	free(b->buf);
	free(b->w);
}

/* Appends a call of script `which` to the transaction's commands: EVALSHA,
 * or, while its sha is not known, SCRIPT LOAD (to learn it) and EVAL.
 * nkeys of the words are keys.  Returns how many replies come before the
 * script's (0 or 1; script_learn takes that one), or -errno. */
static const char *script_body(int which);

static int script_append(struct rtxn *t, int which, int nkeys, const struct words *b)
{
	struct rstore *s = t->s;
	char sha[41], nk[16];
	pthread_mutex_lock(&s->lk_lock);
	memcpy(sha, s->sha[which], sizeof(sha));
	pthread_mutex_unlock(&s->lk_lock);
	int pre = 0, rc = 0;
	if (!sha[0]) {
		rc = ob_cmd(&t->ob, "SCRIPT LOAD %s", script_body(which));
		pre = 1;
	}
	size_t n = 3 + b->nw;
	const char **av = malloc(n * sizeof(*av));
	size_t *al = malloc(n * sizeof(*al));
	if (!av || !al)
		rc = -ENOMEM;
	if (rc == 0) {
		snprintf(nk, sizeof(nk), "%d", nkeys);
		av[0] = pre ? "EVAL" : "EVALSHA";
		av[1] = pre ? script_body(which) : sha;
		av[2] = nk;
		for (size_t i = 0; i < b->nw; i++) {
			av[3 + i] = b->w[i].ext ? b->w[i].ext : b->buf + b->w[i].off;
			al[3 + i] = b->w[i].len;
		}
		for (int i = 0; i < 3; i++)
			al[i] = strlen(av[i]);
		rc = ob_argv(&t->ob, (int)n, av, al);
	}
	free(av);
	free(al);
	return rc ? rc : pre;
}

static void script_learn(struct rstore *s, int which, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len != 40)
		return;
	pthread_mutex_lock(&s->lk_lock);
	memcpy(s->sha[which], r->str, 40);
	s->sha[which][40] = 0;
	pthread_mutex_unlock(&s->lk_lock);
}

/* A NOSCRIPT answer (the server restarted or flushed its scripts): 1, and
 * the sha is forgotten, so the next call loads it again. */
static int script_lost(struct rstore *s, int which, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0)
		return 0;
	pthread_mutex_lock(&s->lk_lock);
	s->sha[which][0] = 0;
	pthread_mutex_unlock(&s->lk_lock);
	return 1;
}

/* ---- id allocation (batches per client, no round trip most times) ---- */

static int alloc_id(struct rtxn *t, const char *key, ull *next, ull *end, ull *out)
{
	struct rstore *s = t->s;
	pthread_mutex_lock(&s->alloc_lock);
	if (*next >= *end) {
		redisReply **rv;
		int n;
		int rc = ob_cmd(&t->ob, "INCRBY %b%s %d", PFX(s), key, ALLOC_BATCH);
		if (rc == 0)
			rc = roundtrip(t, &rv, &n);
		if (rc) {
			pthread_mutex_unlock(&s->alloc_lock);
			return rc;
		}
		if (rv[0]->type != REDIS_REPLY_INTEGER) {
			rc = map_err(NULL, 0, rv[0]);
			replies_free(rv, n);
			pthread_mutex_unlock(&s->alloc_lock);
			return rc;
		}
		ull hi = (ull)rv[0]->integer;
		replies_free(rv, n);
		*next = hi - ALLOC_BATCH + 1;
		*end = hi + 1;
	}
	*out = (*next)++;
	pthread_mutex_unlock(&s->alloc_lock);
	return 0;
}

/* ---- transaction begin / end ---- */

static void txn_clear(struct rtxn *t)
{
	for (size_t i = 0; i < t->nxe; i++) {
		free(t->xe[i].name);
		free(t->xe[i].val);
	}
	for (size_t i = 0; i < t->ndop; i++) {
		free(t->dops[i].buf);
		free(t->dops[i].idxs);
	}
	for (size_t i = 0; i < t->ndel; i++)
		free(t->dels[i].idxs);
	t->nin = t->nde = t->nxe = t->ndop = t->ndel = t->npf = 0;
	t->empty_dir = 0;
	t->unwatch = 0;
	t->watched = 0;
	t->stale = 0;
	t->nhc = 0;
	t->sent_ok = 0;
	ob_reset(&t->ob);
}

static int r_txn_begin(struct cvfs_store *st, int write)
{
	struct rstore *s = rs(st);
	struct rtxn *t = thread_txn();
	if (!t)
		return -ENOMEM;
	if (t->s)
		return -EDEADLK; /* nested: the core never does this */
	int probe;
	int rc = breaker_enter(s, &probe, -1); /* down: fail now, before any wait */
	if (rc)
		return rc;
	/* every wait below shares one deadline: a command timeout */
	int64_t t0 = mono_ms();
	struct timespec dl = deadline_after(&s->cmdto);
	if (write) {
		rc = -pthread_mutex_timedlock(&s->wlock, &dl);
		if (rc)
			return rc;
	}
	struct rconn *k;
	rc = pool_get(s, &k, &dl);
	if (rc == 0 && !write) {
		rc = -pthread_rwlock_timedrdlock(&s->iso, &dl);
		if (rc)
			pool_put(s, k);
	}
	if (rc == 0) {
		rc = breaker_enter(s, &probe, mono_ms() - t0 < 1000);
		if (rc) {
			if (!write)
				pthread_rwlock_unlock(&s->iso);
			pool_put(s, k);
		}
	}
	if (rc) {
		if (write)
			pthread_mutex_unlock(&s->wlock);
		return rc;
	}
	txn_clear(t);
	t->s = s;
	t->k = k;
	t->write = write;
	t->probe = probe;
	t->unwatch = k->need_unwatch && k->c;
	k->need_unwatch = 0;
	atomic_fetch_add_explicit(&s->txns, 1, memory_order_relaxed);
	return 0;
}

static int commit(struct rtxn *t);

static int r_txn_end(struct cvfs_store *st, int do_commit)
{
	struct rtxn *t = cur(st);
	if (!t)
		return -EINVAL;
	struct rstore *s = t->s;
	int rc = 0;
	if (t->write && do_commit)
		rc = commit(t);
	else if (!t->write && do_commit && t->stale)
		rc = -EAGAIN; /* a read saw a record change under it: run it again */
	else if (t->write && t->watched)
		t->k->need_unwatch = 1; /* sent with the next transaction's first command */
	if (!t->noopt_keep)
		t->noopt_dir = 0;
	t->noopt_keep = 0;
	if (t->probe) {
		breaker_note(s, 1, 1);
		t->probe = 0;
	}
	struct rconn *k = t->k;
	int write = t->write;
	txn_clear(t);
	t->s = NULL;
	t->k = NULL;
	if (!write)
		pthread_rwlock_unlock(&s->iso);
	pool_put(s, k);
	if (write)
		pthread_mutex_unlock(&s->wlock);
	return rc;
}

/* ---- inodes ---- */

static struct ient *ient_find(struct rtxn *t, uint64_t ino)
{
	for (size_t i = t->nin; i-- > 0;)
		if (t->in[i].ino == ino)
			return &t->in[i];
	return NULL;
}

static struct ient *ient_add(struct rtxn *t, uint64_t ino)
{
	if (grow((void **)&t->in, &t->capin, t->nin + 1, sizeof(*t->in)))
		return NULL;
	struct ient *e = &t->in[t->nin++];
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->a.ino = ino;
	return e;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
	uint64_t v;
	if (n && s[0] == '-') {
		if (parse_u64(s + 1, n - 1, &v))
			return -1;
		*out = -(int64_t)v;
		return 0;
	}
	if (parse_u64(s, n, &v))
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* HGETALL of P i:INO -> attr.  0, -ENOENT (no record) or -EIO (garbage). */
static int parse_inode(const redisReply *r, uint64_t ino, struct cvfs_attr *a)
{
	if (r->type == REDIS_REPLY_ERROR)
		return map_err(NULL, 0, r);
	if (r->type != REDIS_REPLY_ARRAY)
		return -EIO;
	if (r->elements == 0)
		return -ENOENT;
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			return -EIO;
		uint64_t u = 0;
		int64_t sv = 0;
		int bad;
		const char *n = f->str;
		if (n[0] == 'a' || n[0] == 'b' || (n[0] == 'm' && n[1] == 't') || n[0] == 'c') {
			bad = parse_i64(v->str, v->len, &sv);
			if (!strcmp(n, "atime"))
				a->atime_ns = sv;
			else if (!strcmp(n, "btime"))
				a->btime_ns = sv;
			else if (!strcmp(n, "mtime"))
				a->mtime_ns = sv;
			else if (!strcmp(n, "ctime"))
				a->ctime_ns = sv;
		} else {
			bad = parse_u64(v->str, v->len, &u);
			if (!strcmp(n, "mode"))
				a->mode = (uint32_t)u;
			else if (!strcmp(n, "nlink"))
				a->nlink = (uint32_t)u;
			else if (!strcmp(n, "uid"))
				a->uid = (uint32_t)u;
			else if (!strcmp(n, "gid"))
				a->gid = (uint32_t)u;
			else if (!strcmp(n, "size"))
				a->size = u;
			else if (!strcmp(n, "parent"))
				a->parent = u;
			else if (!strcmp(n, "rdev"))
				a->rdev = u;
			else if (!strcmp(n, "gen"))
				a->generation = u;
			else if (!strcmp(n, "flags"))
				a->flags = (uint32_t)u;
		}
		if (bad)
			return -EIO;
	}
	return a->mode ? 0 : -EIO;
}

/* The record a was read (from the server or the cache): this transaction's
 * view of it, checked at commit.  a NULL: read as absent. */
static struct ient *ient_read(struct rtxn *t, uint64_t ino, const struct cvfs_attr *a)
{
	struct ient *e = ient_add(t, ino);
	if (!e)
		return NULL;
	e->checked = 1;
	if (a) {
		e->a = e->oa = *a;
		e->present = e->orig = 1;
		e->orig_size = a->size;
	}
	return e;
}

/* Reads the records of n inodes (one round trip).  In a write transaction
 * no WATCH: the commit script checks them. */
static int fetch_inodes(struct rtxn *t, const uint64_t *inos, size_t n)
{
	struct rstore *s = t->s;
	int rc = 0;
	struct rc_tok toks[PREFETCH_MAX];
	for (size_t i = 0; i < n && i < PREFETCH_MAX; i++)
		rc_inode_snap(s->rc, inos[i], &toks[i]);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = ob_cmd(&t->ob, "HGETALL %bi:%llu", PFX(s), (ull)inos[i]);
	redisReply **rv;
	int nr;
	rc = send_cmds(t, rc, &rv, &nr);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ient_find(t, inos[i]))
			continue;
		struct cvfs_attr a;
		int r = parse_inode(rv[i], inos[i], &a);
		if (r && r != -ENOENT) {
			rc = r;
			break;
		}
		if (!ient_read(t, inos[i], r == 0 ? &a : NULL)) {
			rc = -ENOMEM;
			break;
		}
		if (r == 0 && i < PREFETCH_MAX)
			rc_inode_fill(s->rc, &toks[i], &a);
	}
	replies_free(rv, nr);
	return rc;
}

static int ient_get(struct rtxn *t, uint64_t ino, struct ient **out)
{
	struct ient *e = ient_find(t, ino);
	struct cvfs_attr ca;
	if (!e && (t->write || t->s->read_cache) && rc_inode_get(t->s->rc, ino, &ca)) {
		e = ient_read(t, ino, &ca);
		if (!e)
			return -ENOMEM;
	}
	if (!e) {
		size_t n = 1;
		const uint64_t *list = &ino;
		/* readdirplus: fetch the rest of the listing batch along */
		if (!t->write) {
			for (size_t i = 0; i < t->npf; i++) {
				if (t->pf[i] == ino) {
					list = &t->pf[i];
					n = t->npf - i < PREFETCH_MAX ? t->npf - i : PREFETCH_MAX;
					break;
				}
			}
		}
		int rc = fetch_inodes(t, list, n);
		if (rc)
			return rc;
		e = ient_find(t, ino);
		if (!e)
			return -EIO;
	}
	*out = e;
	return 0;
}

/* ient_get, and the inode exists */
static int ient_live(struct rtxn *t, uint64_t ino, struct ient **out)
{
	int rc = ient_get(t, ino, out);
	return rc ? rc : (*out)->present ? 0 : -ENOENT;
}

static int r_inode_get(struct cvfs_store *st, uint64_t ino, struct cvfs_attr *out)
{
	TXN_OR_FAIL(t, st);
	struct ient *e;
	int rc = ient_live(t, ino, &e);
	if (rc)
		return rc;
	*out = e->a;
	return 0;
}

static int r_ino_alloc(struct cvfs_store *st, uint64_t *ino)
{
	TXN_OR_FAIL(t, st);
	struct rstore *s = t->s;
	if (!t->write || s->readonly)
		return -EROFS;
	ull v;
	int rc = alloc_id(t, "ino", &s->ino_next, &s->ino_end, &v);
	if (rc)
		return rc;
	if (v <= CVFS_ROOT_INO)
		return -EIO;
	*ino = v;
	/* known not to exist: a put needs no read */
	return ient_add(t, v) ? 0 : -ENOMEM;
}

static int r_inode_put(struct cvfs_store *st, const struct cvfs_attr *a)
{
	WTXN_OR_FAIL(t, st);
	if (a->ino == 0 || (a->mode & S_IFMT) == 0)
		return -EINVAL;
	struct ient *e;
	int rc = ient_get(t, a->ino, &e);
	if (rc)
		return rc;
	if (e->present && (e->a.mode & S_IFMT) != (a->mode & S_IFMT))
		return -EINVAL;
	e->a = *a;
	e->present = 1;
	e->dirty = 1;
	return 0;
}

/* ---- data ---- */

static uint64_t nchunks(struct rstore *s, uint64_t size)
{
	return (size + s->chunk - 1) / s->chunk;
}

static int dop_add(struct rtxn *t, int kind, uint64_t ino, uint64_t idx, uint32_t off,
		   const void *buf, size_t len, struct dop **out)
{
	if (grow((void **)&t->dops, &t->capdop, t->ndop + 1, sizeof(*t->dops)))
		return -ENOMEM;
	struct dop *d = &t->dops[t->ndop];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->ino = ino;
	d->idx = idx;
	d->off = off;
	d->len = len;
	if (len) {
		d->buf = malloc(len);
		if (!d->buf)
			return -ENOMEM;
		if (buf)
			memcpy(d->buf, buf, len);
		else
			memset(d->buf, 0, len);
	}
	t->ndop++;
	if (out)
		*out = d;
	return 0;
}

static int dop_hits(const struct dop *d, uint64_t ino, uint64_t idx)
{
	if (d->ino != ino)
		return 0;
	return d->kind == DOP_CUT ? idx >= d->idx : d->idx == idx;
}

/* Applies d to [in, in+n) of chunk bytes held in dst. */
static void dop_apply(const struct dop *d, uint32_t in, size_t n, unsigned char *dst)
{
	switch (d->kind) {
	case DOP_DEL:
	case DOP_CUT:
		memset(dst, 0, n);
		break;
	case DOP_SET:
		memset(dst, 0, n);
		if (d->len > in)
			memcpy(dst, d->buf + in, d->len - in < n ? d->len - in : n);
		break;
	case DOP_SETRANGE: {
		uint64_t a = d->off > in ? d->off : in;
		uint64_t b = d->off + d->len < in + n ? d->off + d->len : in + n;
		if (a < b)
			memcpy(dst + (a - in), d->buf + (a - d->off), (size_t)(b - a));
		break;
	}
	}
}

/* Bytes [off, off+len) as this transaction sees them: the server's, then the
 * transaction's own changes on top. */
static ssize_t data_read(struct rtxn *t, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct rstore *s = t->s;
	unsigned char *dst = buf;
	const uint32_t cs = s->chunk;
	size_t npieces = 0;
	int rc = 0;
	/* A read transaction reads the pieces and, if it read the inode before,
	 * the inode record again, in one MULTI: the data and the record are of
	 * one instant, and a record that changed meanwhile (writers always put
	 * the record with the data) makes txn_end say -EAGAIN.  So a reader never
	 * sees a size from one write and bytes from another. */
	struct ient *ie = t->write ? NULL : ient_find(t, ino);
	int check = ie && ie->orig;
	int wrap = !t->write && (check || (off + len - 1) / cs != off / cs);
	if (wrap) {
		rc = ob_cmd(&t->ob, "MULTI");
		if (rc == 0 && check)
			rc = ob_cmd(&t->ob, "HGETALL %bi:%llu", PFX(s), (ull)ino);
	}
	/* which pieces need the server: those no whole-chunk change of ours covers */
	for (size_t done = 0; done < len && rc == 0;) {
		uint64_t pos = off + done;
		uint64_t idx = pos / cs;
		uint32_t in = (uint32_t)(pos % cs);
		size_t n = cs - in < len - done ? cs - in : len - done;
		int local = 0;
		for (size_t j = t->ndop; j-- > 0;) {
			const struct dop *d = &t->dops[j];
			if (dop_hits(d, ino, idx) && d->kind != DOP_SETRANGE) {
				local = 1;
				break;
			}
		}
		if (!local) {
			if (t->write) {
				rc = ob_cmd(&t->ob, "WATCH %bc:%llu:%llu", PFX(s), (ull)ino, (ull)idx);
				t->watched = 1;
			}
			if (rc == 0)
				rc = ob_cmd(&t->ob, "GETRANGE %bc:%llu:%llu %u %llu", PFX(s), (ull)ino,
					    (ull)idx, in, (ull)(in + n - 1));
			npieces++;
		}
		done += n;
	}
	if (rc == 0 && wrap)
		rc = ob_cmd(&t->ob, "EXEC");
	redisReply **rv = NULL;
	int nr = 0;
	if (rc == 0 && npieces)
		rc = roundtrip(t, &rv, &nr);
	if (rc) {
		ob_reset(&t->ob);
		return rc;
	}
	/* the GETRANGE answers, whatever the framing */
	const redisReply **pc = calloc(npieces ? npieces : 1, sizeof(*pc));
	if (!pc) {
		replies_free(rv, nr);
		return -ENOMEM;
	}
	if (npieces && wrap) {
		const redisReply *ex = rv[nr - 1];
		size_t base = check ? 1 : 0;
		if (ex->type != REDIS_REPLY_ARRAY || ex->elements != base + npieces) {
			rc = ex->type == REDIS_REPLY_ERROR ? map_err(NULL, 0, ex) : -EIO;
		} else {
			struct cvfs_attr a;
			if (check && (parse_inode(ex->element[0], ino, &a) || !attr_same(&a, &ie->a))) {
				t->stale = 1;
				rc_inode_inval(s->rc, ino); /* the rerun reads it afresh */
			}
			for (size_t i = 0; i < npieces; i++)
				pc[i] = ex->element[base + i];
		}
	} else {
		for (size_t i = 0; i < npieces; i++)
			pc[i] = rv[t->write ? 2 * i + 1 : i];
	}
	if (rc) {
		free(pc);
		replies_free(rv, nr);
		return rc;
	}
	size_t r = 0;
	for (size_t done = 0; done < len;) {
		uint64_t pos = off + done;
		uint64_t idx = pos / cs;
		uint32_t in = (uint32_t)(pos % cs);
		size_t n = cs - in < len - done ? cs - in : len - done;
		size_t from = 0; /* first of our changes to apply */
		int local = 0;
		for (size_t j = t->ndop; j-- > 0;) {
			const struct dop *d = &t->dops[j];
			if (dop_hits(d, ino, idx) && d->kind != DOP_SETRANGE) {
				local = 1;
				from = j;
				break;
			}
		}
		memset(dst + done, 0, n);
		if (!local) {
			const redisReply *x = pc[r++];
			if (x->type == REDIS_REPLY_ERROR) {
				rc = map_err(NULL, 0, x);
				break;
			}
			if (x->type == REDIS_REPLY_STRING && x->len)
				memcpy(dst + done, x->str, x->len < n ? x->len : n);
		}
		for (size_t j = from; j < t->ndop; j++)
			if (dop_hits(&t->dops[j], ino, idx))
				dop_apply(&t->dops[j], in, n, dst + done);
		done += n;
	}
	free(pc);
	replies_free(rv, nr);
	return rc ? rc : (ssize_t)len;
}

static ssize_t r_read(struct cvfs_store *st, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	TXN_OR_FAIL(t, st);
	if (len == 0)
		return 0;
	return data_read(t, ino, buf, len, off);
}

static ssize_t r_write(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len,
		       uint64_t off)
{
	WTXN_OR_FAIL(t, st);
	const uint32_t cs = t->s->chunk;
	const char *src = buf;
	for (size_t done = 0; done < len;) {
		uint64_t pos = off + done;
		uint32_t in = (uint32_t)(pos % cs);
		size_t n = cs - in < len - done ? cs - in : len - done;
		int rc = dop_add(t, (in == 0 && n == cs) ? DOP_SET : DOP_SETRANGE, ino, pos / cs, in,
				 src + done, n, NULL);
		if (rc)
			return rc;
		done += n;
	}
	return (ssize_t)len;
}

/* The chunk indexes in [first, last) that may exist: enumerated when few, else
 * read from P k:INO (and those this transaction wrote). */
static int chunk_list(struct rtxn *t, uint64_t ino, uint64_t first, uint64_t last, uint64_t **out,
		      size_t *nout)
{
	struct rstore *s = t->s;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (last <= first) {
		/* nothing by the size; still, what we wrote ourselves */
	} else if (last - first <= ENUM_MAX) {
		if (grow((void **)&v, &cap, (size_t)(last - first), sizeof(*v)))
			return -ENOMEM;
		for (uint64_t i = first; i < last; i++)
			v[n++] = i;
	} else {
		char key[32];
		snprintf(key, sizeof(key), "k:%llu", (ull)ino);
		redisReply *x;
		rc = read_watched(t, key, &x, "ZRANGEBYSCORE %bk:%llu %llu %llu", PFX(s), (ull)ino,
				  (ull)first, (ull)(last - 1));
		if (rc)
			return rc;
		if (x->type != REDIS_REPLY_ARRAY) {
			rc = map_err(NULL, 0, x);
		} else if (grow((void **)&v, &cap, x->elements + 1, sizeof(*v))) {
			rc = -ENOMEM;
		} else {
			for (size_t i = 0; i < x->elements; i++) {
				uint64_t u;
				if (x->element[i]->type == REDIS_REPLY_STRING &&
				    !parse_u64(x->element[i]->str, x->element[i]->len, &u))
					v[n++] = u;
			}
		}
		freeReplyObject(x);
		if (rc) {
			free(v);
			return rc;
		}
	}
	for (size_t j = 0; j < t->ndop; j++) {
		const struct dop *d = &t->dops[j];
		if (d->ino == ino && d->kind != DOP_CUT && d->idx >= first && d->idx < last) {
			if (grow((void **)&v, &cap, n + 1, sizeof(*v))) {
				free(v);
				return -ENOMEM;
			}
			v[n++] = d->idx; /* duplicates are harmless in DEL */
		}
	}
	*out = v;
	*nout = n;
	return 0;
}

static int r_truncate(struct cvfs_store *st, uint64_t ino, uint64_t size)
{
	WTXN_OR_FAIL(t, st);
	struct rstore *s = t->s;
	struct ient *e;
	int rc = ient_live(t, ino, &e);
	if (rc)
		return rc;
	uint64_t old = e->a.size > e->orig_size ? e->a.size : e->orig_size;
	uint64_t first = nchunks(s, size);
	uint32_t in = (uint32_t)(size % s->chunk);
	if (in && size < old) {
		/* keep [0, in) of the last chunk, drop the rest of it */
		unsigned char *b = malloc(in);
		if (!b)
			return -ENOMEM;
		ssize_t r = data_read(t, ino, b, in, size - in);
		if (r < 0) {
			free(b);
			return (int)r;
		}
		size_t keep = in;
		while (keep && b[keep - 1] == 0)
			keep--;
		rc = dop_add(t, keep ? DOP_SET : DOP_DEL, ino, size / s->chunk, 0, b, keep, NULL);
		free(b);
		if (rc)
			return rc;
	}
	uint64_t *idxs;
	size_t n;
	rc = chunk_list(t, ino, first, nchunks(s, old) > first ? nchunks(s, old) : first, &idxs,
			&n);
	if (rc)
		return rc;
	struct dop *d;
	rc = dop_add(t, DOP_CUT, ino, first, 0, NULL, 0, &d);
	if (rc) {
		free(idxs);
		return rc;
	}
	d->idxs = idxs;
	d->nidx = n;
	return 0;
}

static int r_punch(struct cvfs_store *st, uint64_t ino, uint64_t off, uint64_t len)
{
	WTXN_OR_FAIL(t, st);
	struct rstore *s = t->s;
	const uint32_t cs = s->chunk;
	uint64_t end = off + len;
	uint64_t first = (off + cs - 1) / cs, last = end / cs; /* whole chunks [first, last) */
	int rc = 0;
	if (first >= last) {
		/* inside one chunk, or across one boundary with no whole chunk */
		for (uint64_t pos = off; pos < end && rc == 0;) {
			uint32_t in = (uint32_t)(pos % cs);
			uint64_t n = cs - in < end - pos ? cs - in : end - pos;
			rc = dop_add(t, DOP_SETRANGE, ino, pos / cs, in, NULL, (size_t)n, NULL);
			pos += n;
		}
		return rc;
	}
	if (off < first * cs)
		rc = dop_add(t, DOP_SETRANGE, ino, off / cs, (uint32_t)(off % cs), NULL,
			     (size_t)(first * cs - off), NULL);
	if (rc == 0 && end > last * cs)
		rc = dop_add(t, DOP_SETRANGE, ino, last, 0, NULL, (size_t)(end - last * cs), NULL);
	uint64_t *idxs = NULL;
	size_t n = 0;
	if (rc == 0)
		rc = chunk_list(t, ino, first, last, &idxs, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = dop_add(t, DOP_DEL, ino, idxs[i], 0, NULL, 0, NULL);
	free(idxs);
	return rc;
}

static int dir_empty_impl(struct rtxn *t, uint64_t dir);

static int r_inode_del(struct cvfs_store *st, uint64_t ino)
{
	WTXN_OR_FAIL(t, st);
	struct rstore *s = t->s;
	struct ient *e;
	int rc = ient_live(t, ino, &e);
	if (rc)
		return rc;
	if (S_ISDIR(e->a.mode) && t->empty_dir != ino) {
		rc = dir_empty_impl(t, ino);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ENOTEMPTY;
	}
	uint64_t *idxs = NULL;
	size_t n = 0;
	if (!S_ISDIR(e->a.mode)) {
		uint64_t sz = e->a.size > e->orig_size ? e->a.size : e->orig_size;
		rc = chunk_list(t, ino, 0, nchunks(s, sz), &idxs, &n);
		if (rc)
			return rc;
	}
	if (grow((void **)&t->dels, &t->capdel, t->ndel + 1, sizeof(*t->dels))) {
		free(idxs);
		return -ENOMEM;
	}
	t->dels[t->ndel].ino = ino;
	t->dels[t->ndel].idxs = idxs;
	t->dels[t->ndel].nidx = n;
	t->ndel++;
	e->present = 0;
	e->dirty = 1;
	/* its xattrs go with it */
	for (size_t i = 0; i < t->nxe; i++)
		if (t->xe[i].ino == ino)
			t->xe[i].dirty = 0;
	return 0;
}

/* ---- directory entries ---- */

static struct dent *dent_find(struct rtxn *t, uint64_t dir, const char *name, size_t len)
{
	for (size_t i = t->nde; i-- > 0;) {
		struct dent *d = &t->de[i];
		if (d->dir == dir && d->len == len && memcmp(d->name, name, len) == 0)
			return d;
	}
	return NULL;
}

/* "INO TYPE COOKIE" */
static int parse_dval(const char *v, size_t n, uint64_t *ino, uint32_t *type, uint64_t *cookie)
{
	char tmp[80];
	if (n >= sizeof(tmp))
		return -EIO;
	memcpy(tmp, v, n);
	tmp[n] = 0;
	unsigned long long a, c;
	unsigned b;
	if (sscanf(tmp, "%llu %u %llu", &a, &b, &c) != 3)
		return -EIO;
	*ino = a;
	*type = (b & 017) << 12;
	*cookie = c;
	return 0;
}

/* A lookup that misses the cache: one script call brings the entry, the
 * record it names, and (when the cache is live) the whole directory if it
 * has at most LOAD_MAX entries, so later lookups there, present or absent,
 * are answered here.  KEYS: none.  ARGV: prefix, dir, name, most.
 * Returns {entry or nil, HGETALL of its inode, HGETALL of the directory or
 * nil}. */
static const char lookup_script[] =
	"local dk = ARGV[1] .. 'd:' .. ARGV[2]\n"
	"local v = redis.call('HGET', dk, ARGV[3])\n"
	"local rec = {}\n"
	"if v then\n"
	"  local ino = string.match(v, '^(%d+) ')\n"
	"  if ino then rec = redis.call('HGETALL', ARGV[1] .. 'i:' .. ino) end\n"
	"end\n"
	"local most, all = tonumber(ARGV[4]), false\n"
	"if most > 0 and redis.call('HLEN', dk) <= most then all = redis.call('HGETALL', dk) end\n"
	"return {v, rec, all}\n";

/* The entry (dir, name) from the server, with what comes along (see above)
 * into the transaction and the cache. */
static int lookup_remote(struct rtxn *t, uint64_t dir, const char *name, size_t len,
			 struct rc_dent *v)
{
	struct rstore *s = t->s;
	struct rc_tok dtok = {0}, itok = {0};
	rc_dir_snap(s->rc, dir, &dtok);
	rc_inode_snap_any(s->rc, &itok);
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct words b = {0};
		w_str(&b, s->prefix, s->plen);
		w_fmt(&b, "%llu", (ull)dir);
		w_ext(&b, name, len);
		/* the whole directory, unless known already (a name changed by
		 * another client) */
		w_fmt(&b, "%d",
		      s->rc && atomic_load(&s->feed_up) && !rc_dir_whole(s->rc, dir) ? LOAD_MAX : 0);
		int pre = b.err ? -ENOMEM : script_append(t, SC_LOOKUP, 0, &b);
		w_free(&b);
		redisReply **rv;
		int nr;
		rc = pre < 0 ? pre : roundtrip(t, &rv, &nr);
		if (rc) {
			ob_reset(&t->ob);
			return rc;
		}
		if (pre)
			script_learn(s, SC_LOOKUP, rv[0]);
		const redisReply *r = rv[nr - 1];
		if (script_lost(s, SC_LOOKUP, r)) {
			replies_free(rv, nr);
			continue;
		}
		memset(v, 0, sizeof(*v));
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
			rc = r->type == REDIS_REPLY_ERROR ? map_err(NULL, 0, r) : -EIO;
			replies_free(rv, nr);
			return rc;
		}
		const redisReply *e = r->element[0], *rec = r->element[1], *all = r->element[2];
		if (e->type == REDIS_REPLY_STRING) {
			rc = parse_dval(e->str, e->len, &v->ino, &v->type, &v->eid);
			v->present = 1;
		} else if (e->type != REDIS_REPLY_NIL) {
			rc = -EIO;
		}
		if (rc == 0 && v->present && rec->type == REDIS_REPLY_ARRAY &&
		    !ient_find(t, v->ino)) {
			struct cvfs_attr a;
			int pr = parse_inode(rec, v->ino, &a);
			if (pr == 0 || pr == -ENOENT) {
				if (!ient_read(t, v->ino, pr == 0 ? &a : NULL))
					rc = -ENOMEM;
				else if (pr == 0)
					rc_inode_fill(s->rc, &itok, &a);
			}
		}
		if (rc == 0 && all->type == REDIS_REPLY_ARRAY) {
			if (rc_dir_load_begin(s->rc, &dtok, dir)) {
				for (size_t i = 0; i + 1 < all->elements; i += 2) {
					const redisReply *f = all->element[i], *x = all->element[i + 1];
					struct rc_dent dv = {1, 0, 0, 0};
					if (f->type == REDIS_REPLY_STRING && x->type == REDIS_REPLY_STRING &&
					    f->len && f->len <= CVFS_NAME_MAX &&
					    parse_dval(x->str, x->len, &dv.ino, &dv.type, &dv.eid) == 0)
						rc_dir_load_add(s->rc, dir, f->str, f->len, &dv);
				}
				rc_dir_load_end(s->rc, dir);
			}
		} else if (rc == 0) {
			rc_dent_fill(s->rc, &dtok, dir, name, len, v);
		}
		replies_free(rv, nr);
		return rc;
	}
	return -EIO;
}

static int dent_lookup(struct rtxn *t, uint64_t dir, const char *name, size_t len,
		       struct dent **out)
{
	struct dent *d = dent_find(t, dir, name, len);
	if (d) {
		*out = d;
		return 0;
	}
	struct rc_dent v;
	if (!((t->write || t->s->read_cache) && rc_dent_get(t->s->rc, dir, name, len, &v))) {
		int rc = lookup_remote(t, dir, name, len, &v);
		if (rc)
			return rc;
	}
	if (grow((void **)&t->de, &t->capde, t->nde + 1, sizeof(*t->de)))
		return -ENOMEM;
	d = &t->de[t->nde++];
	memset(d, 0, offsetof(struct dent, name));
	d->dir = dir;
	d->len = (uint16_t)len;
	memcpy(d->name, name, len);
	d->present = d->orig = (uint8_t)v.present;
	d->ino = d->oino = v.ino;
	d->type = d->otype = v.type;
	d->cookie = d->ocookie = v.eid;
	*out = d;
	return 0;
}

static int r_dent_get(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t *ino)
{
	TXN_OR_FAIL(t, st);
	if (len == 0 || len > CVFS_NAME_MAX)
		return -ENOENT;
	struct dent *d;
	int rc = dent_lookup(t, dir, name, len, &d);
	if (rc)
		return rc;
	if (!d->present)
		return -ENOENT;
	*ino = d->ino;
	return 0;
}

static int r_dent_put(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		      uint64_t ino, uint32_t type)
{
	WTXN_OR_FAIL(t, st);
	if (len == 0 || len > CVFS_NAME_MAX)
		return -ENAMETOOLONG;
	struct ient *p = ient_find(t, dir);
	if (p && !p->present)
		return -ENOENT;
	if (p && !S_ISDIR(p->a.mode))
		return -ENOTDIR;
	struct dent *d;
	int rc = dent_lookup(t, dir, name, len, &d);
	if (rc)
		return rc;
	if (!d->present) {
		if (d->orig) {
			d->cookie = d->ocookie; /* deleted and put back: the same place */
		} else {
			ull c;
			rc = alloc_id(t, "eid", &t->s->eid_next, &t->s->eid_end, &c);
			if (rc)
				return rc;
			d->cookie = c;
		}
	}
	d->present = 1;
	d->ino = ino;
	d->type = type & S_IFMT;
	d->dirty = 1;
	if (t->empty_dir == dir)
		t->empty_dir = 0;
	return 0;
}

static int r_dent_del(struct cvfs_store *st, uint64_t dir, const char *name, size_t len)
{
	WTXN_OR_FAIL(t, st);
	if (len == 0 || len > CVFS_NAME_MAX)
		return -ENOENT;
	struct dent *d;
	int rc = dent_lookup(t, dir, name, len, &d);
	if (rc)
		return rc;
	if (!d->present)
		return -ENOENT;
	d->present = 0;
	d->dirty = 1;
	return 0;
}

/* 1 if dir has no entries, 0 if it has (as this transaction sees it).  In
 * a write transaction the server's count is taken from the cache when the
 * directory is known whole, else assumed (no entries but ours), and the
 * commit script checks it; a directory whose check failed is counted on
 * the server, under WATCH, when the operation runs again. */
static int dir_empty_impl(struct rtxn *t, uint64_t dir)
{
	struct rstore *s = t->s;
	long long delta = 0; /* our own changes */
	for (size_t i = 0; i < t->nde; i++)
		if (t->de[i].dir == dir)
			delta += (long long)t->de[i].present - (long long)t->de[i].orig;
	long long n = -1;
	if (t->write && t->noopt_dir != dir) {
		long known = rc_dir_count(s->rc, dir);
		long long server = known >= 0 ? known : -delta;
		if (server >= 0) {
			if (grow((void **)&t->hc, &t->caphc, t->nhc + 1, sizeof(*t->hc)))
				return -ENOMEM;
			t->hc[t->nhc].dir = dir;
			t->hc[t->nhc].cnt = (long)server;
			t->nhc++;
			n = server;
		}
	}
	if (n < 0) {
		char key[32];
		snprintf(key, sizeof(key), "d:%llu", (ull)dir);
		redisReply *r;
		int rc = read_watched(t, key, &r, "HLEN %bd:%llu", PFX(s), (ull)dir);
		if (rc)
			return rc;
		if (r->type == REDIS_REPLY_INTEGER)
			n = r->integer;
		else
			rc = map_err(NULL, 0, r);
		freeReplyObject(r);
		if (rc)
			return rc;
	}
	n += delta;
	if (n == 0)
		t->empty_dir = dir;
	return n == 0;
}

static int r_dir_empty(struct cvfs_store *st, uint64_t dir)
{
	TXN_OR_FAIL(t, st);
	return dir_empty_impl(t, dir);
}

/* "INO:TYPE:NAME" (the sorted-set member) */
static size_t member_fmt(char *out, uint64_t ino, uint32_t type, const char *name, size_t len)
{
	int n = snprintf(out, 48, "%llu:%u:", (ull)ino, (type >> 12) & 017);
	memcpy(out + n, name, len);
	return (size_t)n + len;
}

static int member_parse(const char *m, size_t n, uint64_t *ino, uint32_t *type, const char **name,
			size_t *len)
{
	const char *c1 = memchr(m, ':', n);
	if (!c1)
		return -EIO;
	const char *c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - m));
	if (!c2)
		return -EIO;
	uint64_t t;
	if (parse_u64(m, (size_t)(c1 - m), ino) || parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), &t))
		return -EIO;
	*type = (uint32_t)(t & 017) << 12;
	*name = c2 + 1;
	*len = n - (size_t)(c2 + 1 - m);
	return *len ? 0 : -EIO;
}

static int r_dir_list(struct cvfs_store *st, uint64_t dir, uint64_t cookie, cvfs_dirent_cb cb,
		      void *arg)
{
	TXN_OR_FAIL(t, st);
	struct rstore *s = t->s;
	uint64_t pos = cookie;
	int batch = 128;
	/* is it a directory?  Known from this transaction, else asked along */
	struct ient *de_ = ient_find(t, dir);
	int ask = !de_;
	if (de_ && !de_->present)
		return -ENOENT;
	if (de_ && !S_ISDIR(de_->a.mode))
		return -ENOTDIR;
	for (;;) {
		int rc = 0;
		if (ask)
			rc = ob_cmd(&t->ob, "HGET %bi:%llu mode", PFX(s), (ull)dir);
		if (rc == 0 && t->write) {
			rc = ob_cmd(&t->ob, "WATCH %bl:%llu", PFX(s), (ull)dir);
			t->watched = 1;
		}
		if (rc == 0)
			rc = ob_cmd(&t->ob, "ZRANGEBYSCORE %bl:%llu (%llu +inf WITHSCORES LIMIT 0 %d",
				    PFX(s), (ull)dir, (ull)pos, batch);
		redisReply **rv;
		int nr;
		rc = send_cmds(t, rc, &rv, &nr);
		if (rc)
			return rc;
		const redisReply *x = rv[nr - 1];
		if (ask) {
			const redisReply *m = rv[0];
			uint64_t mode = 0;
			if (m->type == REDIS_REPLY_NIL)
				rc = -ENOENT;
			else if (m->type != REDIS_REPLY_STRING || parse_u64(m->str, m->len, &mode))
				rc = m->type == REDIS_REPLY_ERROR ? map_err(NULL, 0, m) : -EIO;
			else if (!S_ISDIR(mode))
				rc = -ENOTDIR;
			ask = 0;
		}
		if (rc == 0 && x->type != REDIS_REPLY_ARRAY)
			rc = map_err(NULL, 0, x);
		if (rc) {
			replies_free(rv, nr);
			return rc;
		}
		size_t cnt = x->elements / 2;
		t->npf = 0;
		if (grow((void **)&t->pf, &t->cappf, cnt + 1, sizeof(*t->pf)) == 0) {
			for (size_t i = 0; i < cnt; i++) {
				uint64_t ino;
				uint32_t type;
				const char *nm;
				size_t nl;
				const redisReply *m = x->element[2 * i];
				if (m->type == REDIS_REPLY_STRING &&
				    !member_parse(m->str, m->len, &ino, &type, &nm, &nl))
					t->pf[t->npf++] = ino;
			}
		}
		int stop = 0;
		for (size_t i = 0; i < cnt && !stop; i++) {
			const redisReply *m = x->element[2 * i], *sc = x->element[2 * i + 1];
			struct cvfs_dirent de;
			if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING ||
			    member_parse(m->str, m->len, &de.ino, &de.type, &de.name, &de.namelen) ||
			    parse_u64(sc->str, sc->len, &de.cookie)) {
				rc = -EIO;
				break;
			}
			pos = de.cookie;
			if (t->write) { /* our own changes first */
				struct dent *d = dent_find(t, dir, de.name, de.namelen);
				if (d && !d->present)
					continue;
				if (d) {
					de.ino = d->ino;
					de.type = d->type;
				}
			}
			if (cb(arg, &de))
				stop = 1;
		}
		replies_free(rv, nr);
		t->npf = 0;
		if (rc || stop)
			return rc;
		if (cnt < (size_t)batch)
			break;
		batch = LIST_BATCH * 2;
	}
	/* a write transaction's new entries, after the server's */
	if (t->write) {
		for (;;) {
			struct dent *best = NULL;
			for (size_t i = 0; i < t->nde; i++) {
				struct dent *d = &t->de[i];
				if (d->dir == dir && d->present && !d->orig && d->cookie > cookie &&
				    (!best || d->cookie < best->cookie))
					best = d;
			}
			if (!best)
				break;
			struct cvfs_dirent de = {best->name, best->len, best->ino, best->type,
						 best->cookie};
			cookie = best->cookie;
			if (cb(arg, &de))
				break;
		}
	}
	return 0;
}

/* ---- xattrs ---- */

static struct xent *xent_find(struct rtxn *t, uint64_t ino, const char *name)
{
	for (size_t i = t->nxe; i-- > 0;)
		if (t->xe[i].ino == ino && strcmp(t->xe[i].name, name) == 0)
			return &t->xe[i];
	return NULL;
}

static int xent_lookup(struct rtxn *t, uint64_t ino, const char *name, struct xent **out)
{
	struct xent *x = xent_find(t, ino, name);
	if (x) {
		*out = x;
		return 0;
	}
	struct rstore *s = t->s;
	char key[32];
	snprintf(key, sizeof(key), "x:%llu", (ull)ino);
	redisReply *all = NULL, *r;
	int rc;
	if (t->write) {
		rc = read_watched(t, key, &r, "HGET %bx:%llu %s", PFX(s), (ull)ino, name);
	} else {
		/* all of them: a file with none (most) is then known to have
		 * none, and the kernel's getxattr at every write costs nothing */
		struct rc_tok tok;
		rc_inode_snap(s->rc, ino, &tok);
		rc = read_watched(t, key, &all, "HGETALL %bx:%llu", PFX(s), (ull)ino);
		if (rc)
			return rc;
		static const redisReply nil = {.type = REDIS_REPLY_NIL};
		r = (redisReply *)&nil;
		if (all->type == REDIS_REPLY_ARRAY) {
			for (size_t i = 0; i + 1 < all->elements; i += 2)
				if (all->element[i]->type == REDIS_REPLY_STRING &&
				    strcmp(all->element[i]->str, name) == 0)
					r = all->element[i + 1];
			if (all->elements == 0)
				rc_inode_set_noxattr(s->rc, &tok, ino);
		} else {
			r = all;
		}
	}
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)
		rc = map_err(NULL, 0, r);
	if (rc == 0 && grow((void **)&t->xe, &t->capxe, t->nxe + 1, sizeof(*t->xe)))
		rc = -ENOMEM;
	if (rc == 0) {
		x = &t->xe[t->nxe];
		memset(x, 0, sizeof(*x));
		x->ino = ino;
		x->name = strdup(name);
		if (!x->name)
			rc = -ENOMEM;
	}
	if (rc == 0 && r->type == REDIS_REPLY_STRING) {
		x->val = malloc(r->len ? r->len : 1);
		if (!x->val) {
			free(x->name);
			rc = -ENOMEM;
		} else {
			memcpy(x->val, r->str, r->len);
			x->vlen = r->len;
			x->present = x->orig = 1;
		}
	}
	freeReplyObject(all ? all : r);
	if (rc)
		return rc;
	t->nxe++;
	*out = x;
	return 0;
}

static ssize_t r_getx(struct cvfs_store *st, uint64_t ino, const char *name, void *val, size_t size)
{
	TXN_OR_FAIL(t, st);
	if (!t->write && t->s->read_cache && rc_inode_noxattr(t->s->rc, ino))
		return -ENODATA;
	struct xent *x;
	int rc = xent_lookup(t, ino, name, &x);
	if (rc)
		return rc;
	if (!x->present)
		return -ENODATA;
	if (size == 0)
		return (ssize_t)x->vlen;
	if (size < x->vlen)
		return -ERANGE;
	memcpy(val, x->val, x->vlen);
	return (ssize_t)x->vlen;
}

static int r_setx(struct cvfs_store *st, uint64_t ino, const char *name, const void *val,
		  size_t size, int flags)
{
	WTXN_OR_FAIL(t, st);
	struct ient *e;
	int rc = ient_live(t, ino, &e);
	if (rc)
		return rc;
	struct xent *x;
	rc = xent_lookup(t, ino, name, &x);
	if (rc)
		return rc;
	if (x->present && (flags & XATTR_CREATE))
		return -EEXIST;
	if (!x->present && (flags & XATTR_REPLACE))
		return -ENODATA;
	char *v = malloc(size ? size : 1);
	if (!v)
		return -ENOMEM;
	if (size)
		memcpy(v, val, size);
	free(x->val);
	x->val = v;
	x->vlen = size;
	x->present = 1;
	x->dirty = 1;
	return 0;
}

static ssize_t r_listx(struct cvfs_store *st, uint64_t ino, char *list, size_t size)
{
	TXN_OR_FAIL(t, st);
	struct rstore *s = t->s;
	char key[32];
	snprintf(key, sizeof(key), "x:%llu", (ull)ino);
	redisReply *r;
	int rc = read_watched(t, key, &r, "HKEYS %bx:%llu", PFX(s), (ull)ino);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY) {
		rc = map_err(NULL, 0, r);
		freeReplyObject(r);
		return rc;
	}
	size_t need = 0;
	/* two passes: count, then copy */
	for (int pass = 0; pass < 2; pass++) {
		char *p = list;
		if (pass == 1) {
			if (size == 0)
				break;
			if (size < need) {
				freeReplyObject(r);
				return -ERANGE;
			}
		}
		for (size_t i = 0; i < r->elements; i++) {
			const redisReply *k = r->element[i];
			if (k->type != REDIS_REPLY_STRING)
				continue;
			struct xent *x = xent_find(t, ino, k->str);
			if (x && !x->present)
				continue;
			if (pass == 0)
				need += k->len + 1;
			else {
				memcpy(p, k->str, k->len);
				p[k->len] = 0;
				p += k->len + 1;
			}
		}
		for (size_t i = 0; i < t->nxe; i++) {
			const struct xent *x = &t->xe[i];
			if (x->ino != ino || !x->present || x->orig)
				continue;
			size_t l = strlen(x->name) + 1;
			if (pass == 0)
				need += l;
			else {
				memcpy(p, x->name, l);
				p += l;
			}
		}
	}
	freeReplyObject(r);
	return (ssize_t)need;
}

static int r_removex(struct cvfs_store *st, uint64_t ino, const char *name)
{
	WTXN_OR_FAIL(t, st);
	struct xent *x;
	int rc = xent_lookup(t, ino, name, &x);
	if (rc)
		return rc;
	if (!x->present)
		return -ENODATA;
	x->present = 0;
	x->dirty = 1;
	return 0;
}

/* ---- commit ----
 *
 * A write transaction's reads were taken on trust (from the cache, or from
 * the server without WATCH): the commit is one script call that checks them
 * and applies the writes, atomically, in one round trip.  Reads that are not
 * single records (listings, data, xattrs) were WATCHed instead; then the
 * script call goes inside MULTI/EXEC, still one round trip. */

/* KEYS: none (a transaction's keys are named in ARGV).  ARGV: the number of
 * checks, then each check as 4 values (kind, key, field, wanted), then the
 * commands, each as its number of words and the words.  Checks: i: the inode
 * record at key, as "mode nlink ... flags" ("" for none); d: field of the
 * hash key ("" for none); h: the number of fields of key.  Returns {1}, or
 * {0, N} when check N failed (then nothing was changed). */
static const char apply_script[] =
	"local F = {'mode', 'nlink', 'uid', 'gid', 'size', 'parent', 'rdev', 'gen',\n"
	"  'atime', 'mtime', 'ctime', 'btime', 'flags'}\n"
	"local n, a = tonumber(ARGV[1]), 2\n"
	"for i = 1, n do\n"
	"  local kind, key, want = ARGV[a], ARGV[a + 1], ARGV[a + 3]\n"
	"  local have\n"
	"  if kind == 'i' then\n"
	"    local r = redis.call('HMGET', key, unpack(F))\n"
	"    if r[1] then\n"
	"      for j = 1, #F do r[j] = r[j] or '0' end\n"
	"      have = table.concat(r, ' ')\n"
	"    else\n"
	"      have = ''\n"
	"    end\n"
	"  elseif kind == 'd' then\n"
	"    have = redis.call('HGET', key, ARGV[a + 2]) or ''\n"
	"  else\n"
	"    have = tostring(redis.call('HLEN', key))\n"
	"  end\n"
	"  if have ~= want then return {0, i} end\n"
	"  a = a + 4\n"
	"end\n"
	"while a <= #ARGV do\n"
	"  local c = tonumber(ARGV[a])\n"
	"  redis.call(unpack(ARGV, a + 1, a + c))\n"
	"  a = a + c + 1\n"
	"end\n"
	"return {1}\n";

struct msgbuf {
	char *p;
	size_t n, cap;
	int err;
};

static void msg_add(struct msgbuf *m, const char *s, size_t n)
{
	if (m->err)
		return;
	if (m->n + n > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		while (nc < m->n + n)
			nc *= 2;
		char *p = realloc(m->p, nc);
		if (!p) {
			m->err = 1;
			return;
		}
		m->p = p;
		m->cap = nc;
	}
	memcpy(m->p + m->n, s, n);
	m->n += n;
}

static void msg_inode(struct msgbuf *m, uint64_t ino)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "I %llu\n", (ull)ino);
	msg_add(m, b, (size_t)n);
}

/* DEL of keys P c:INO:IDX, in commands of at most 512 keys. */
static void del_chunks(struct words *b, struct rstore *s, uint64_t ino, const uint64_t *idxs,
		       size_t n)
{
	for (size_t at = 0; at < n;) {
		size_t k = n - at < 512 ? n - at : 512;
		size_t c = w_count_begin(b);
		w_fmt(b, "DEL");
		for (size_t i = 0; i < k; i++)
			w_key(b, s, "c:%llu:%llu", (ull)ino, (ull)idxs[at + i]);
		w_count_end(b, c);
		at += k;
	}
}

static int inode_reported(struct rtxn *t, uint64_t ino)
{
	const struct ient *e = ient_find(t, ino);
	return e && e->dirty;
}

/* The record as the commit script compares it. */
static int attr_words(char *out, size_t cap, const struct cvfs_attr *a)
{
	return snprintf(out, cap, "%u %u %u %u %llu %llu %llu %llu %lld %lld %lld %lld %u", a->mode,
			a->nlink, a->uid, a->gid, (ull)a->size, (ull)a->parent, (ull)a->rdev,
			(ull)a->generation, (long long)a->atime_ns, (long long)a->mtime_ns,
			(long long)a->ctime_ns, (long long)a->btime_ns, a->flags);
}

/* "INO TYPE COOKIE", the value of an entry */
static int dval_fmt(char *out, size_t cap, uint64_t ino, uint32_t type, uint64_t cookie)
{
	return snprintf(out, cap, "%llu %u %llu", (ull)ino, (type >> 12) & 017, (ull)cookie);
}

/* After the commit: the cache learns the new records and entries; when the
 * outcome is a conflict or unknown, it forgets everything the transaction
 * read or wrote, so a rerun reads it afresh. */
static void commit_done(struct rtxn *t, int ok)
{
	struct rcache *c = t->s->rc;
	for (size_t i = 0; i < t->nin; i++) {
		const struct ient *e = &t->in[i];
		if (!ok) {
			if (e->dirty || e->checked)
				rc_inode_inval(c, e->ino);
			if (e->dirty && !e->present)
				rc_dir_inval(c, e->ino);
			continue;
		}
		if (!e->dirty)
			continue;
		rc_inode_set(c, e->ino, e->present ? &e->a : NULL);
		int xdirty = 0;
		for (size_t j = 0; j < t->nxe && !xdirty; j++)
			xdirty = t->xe[j].ino == e->ino && t->xe[j].dirty;
		if (e->present && !e->orig && !xdirty) { /* made here: no xattrs */
			struct rc_tok tok;
			rc_inode_snap(c, e->ino, &tok);
			rc_inode_set_noxattr(c, &tok, e->ino);
		}
		if (e->present && !e->orig && S_ISDIR(e->a.mode))
			rc_dir_new(c, e->ino); /* made here: empty */
		else if (!e->present && S_ISDIR(e->a.mode))
			rc_dir_inval(c, e->ino);
	}
	for (size_t i = 0; i < t->nde; i++) {
		const struct dent *d = &t->de[i];
		if (!ok) {
			rc_dir_inval(c, d->dir);
		} else if (d->dirty) {
			struct rc_dent v = {d->present, d->ino, d->cookie, d->type};
			rc_dent_set(c, d->dir, d->name, d->len, &v);
		}
	}
	if (!ok)
		for (size_t i = 0; i < t->nhc; i++)
			rc_dir_inval(c, t->hc[i].dir);
}

/* The checks: every record and entry this transaction read, as it read it. */
static int commit_checks(struct rtxn *t, struct words *b)
{
	struct rstore *s = t->s;
	size_t c = w_count_begin(b);
	int n = 0;
	char v[256];
	for (size_t i = 0; i < t->nin; i++) {
		const struct ient *e = &t->in[i];
		if (!e->checked)
			continue;
		w_fmt(b, "i");
		w_key(b, s, "i:%llu", (ull)e->ino);
		w_fmt(b, "");
		if (e->orig) {
			attr_words(v, sizeof(v), &e->oa); /* as read, not as changed */
			w_fmt(b, "%s", v);
		} else {
			w_fmt(b, "");
		}
		n++;
	}
	for (size_t i = 0; i < t->nde; i++) {
		const struct dent *d = &t->de[i];
		w_fmt(b, "d");
		w_key(b, s, "d:%llu", (ull)d->dir);
		w_ext(b, d->name, d->len);
		if (d->orig) {
			dval_fmt(v, sizeof(v), d->oino, d->otype, d->ocookie);
			w_fmt(b, "%s", v);
		} else {
			w_fmt(b, "");
		}
		n++;
	}
	for (size_t i = 0; i < t->nhc; i++) {
		w_fmt(b, "h");
		w_key(b, s, "d:%llu", (ull)t->hc[i].dir);
		w_fmt(b, "");
		w_fmt(b, "%ld", t->hc[i].cnt);
		n++;
	}
	/* the count is of checks, not of words */
	if (!b->err) {
		char tmp[24];
		int l = snprintf(tmp, sizeof(tmp), "%d", n);
		memcpy(b->buf + b->w[c].off, tmp, (size_t)l);
		b->w[c].len = (size_t)l;
	}
	return n;
}

/* The writes, and the PUBLISH that tells the other clients. */
static void commit_writes(struct rtxn *t, struct words *b)
{
	struct rstore *s = t->s;
	struct msgbuf m = {0};
	char hdr[40];
	int hl = snprintf(hdr, sizeof(hdr), "%llu\n", s->client_id);
	msg_add(&m, hdr, (size_t)hl);
	size_t c;
	/* 1. data */
	for (size_t i = 0; i < t->ndop; i++) {
		const struct dop *d = &t->dops[i];
		/* the chunk, then its index in k:INO */
		if (d->kind == DOP_CUT) {
			del_chunks(b, s, d->ino, d->idxs, d->nidx);
		} else {
			c = w_count_begin(b);
			w_fmt(b, d->kind == DOP_SET ? "SET" : d->kind == DOP_DEL ? "DEL" : "SETRANGE");
			w_key(b, s, "c:%llu:%llu", (ull)d->ino, (ull)d->idx);
			if (d->kind == DOP_SETRANGE)
				w_fmt(b, "%u", d->off);
			if (d->kind != DOP_DEL)
				w_ext(b, d->buf, d->len);
			w_count_end(b, c);
		}
		c = w_count_begin(b);
		w_fmt(b, d->kind == DOP_CUT	? "ZREMRANGEBYSCORE"
			 : d->kind == DOP_DEL ? "ZREM"
					      : "ZADD");
		w_key(b, s, "k:%llu", (ull)d->ino);
		if (d->kind == DOP_SETRANGE || d->kind == DOP_SET)
			w_fmt(b, "%llu", (ull)d->idx); /* the score */
		w_fmt(b, "%llu", (ull)d->idx);
		if (d->kind == DOP_CUT)
			w_fmt(b, "+inf");
		w_count_end(b, c);
		int seen = 0; /* tell about each inode once */
		for (size_t j = 0; j < i && !seen; j++)
			seen = t->dops[j].ino == d->ino;
		if (!seen && !inode_reported(t, d->ino))
			msg_inode(&m, d->ino);
	}
	/* 2. xattrs */
	for (size_t i = 0; i < t->nxe; i++) {
		const struct xent *x = &t->xe[i];
		if (!x->dirty || (!x->present && !x->orig))
			continue;
		c = w_count_begin(b);
		w_fmt(b, x->present ? "HSET" : "HDEL");
		w_key(b, s, "x:%llu", (ull)x->ino);
		w_ext(b, x->name, strlen(x->name));
		if (x->present)
			w_ext(b, x->val, x->vlen);
		w_count_end(b, c);
		if (!inode_reported(t, x->ino))
			msg_inode(&m, x->ino);
	}
	/* 3. deleted inodes */
	for (size_t i = 0; i < t->ndel; i++) {
		const struct idel *d = &t->dels[i];
		static const char *const kinds[] = {"i", "x", "d", "l", "k"};
		c = w_count_begin(b);
		w_fmt(b, "DEL");
		for (size_t j = 0; j < 5; j++)
			w_key(b, s, "%s:%llu", kinds[j], (ull)d->ino);
		w_count_end(b, c);
		del_chunks(b, s, d->ino, d->idxs, d->nidx);
	}
	/* 4. inode records */
	long long nfiles = 0;
	for (size_t i = 0; i < t->nin; i++) {
		const struct ient *e = &t->in[i];
		if (!e->dirty)
			continue;
		const struct cvfs_attr *a = &e->a;
		if (e->present) {
			c = w_count_begin(b);
			w_fmt(b, "HSET");
			w_key(b, s, "i:%llu", (ull)a->ino);
			w_fmt(b, "mode"), w_fmt(b, "%u", a->mode);
			w_fmt(b, "nlink"), w_fmt(b, "%u", a->nlink);
			w_fmt(b, "uid"), w_fmt(b, "%u", a->uid);
			w_fmt(b, "gid"), w_fmt(b, "%u", a->gid);
			w_fmt(b, "size"), w_fmt(b, "%llu", (ull)a->size);
			w_fmt(b, "parent"), w_fmt(b, "%llu", (ull)a->parent);
			w_fmt(b, "rdev"), w_fmt(b, "%llu", (ull)a->rdev);
			w_fmt(b, "gen"), w_fmt(b, "%llu", (ull)a->generation);
			w_fmt(b, "atime"), w_fmt(b, "%lld", (long long)a->atime_ns);
			w_fmt(b, "mtime"), w_fmt(b, "%lld", (long long)a->mtime_ns);
			w_fmt(b, "ctime"), w_fmt(b, "%lld", (long long)a->ctime_ns);
			w_fmt(b, "btime"), w_fmt(b, "%lld", (long long)a->btime_ns);
			w_fmt(b, "flags"), w_fmt(b, "%u", a->flags);
			w_count_end(b, c);
		}
		nfiles += (long long)e->present - (long long)e->orig;
		msg_inode(&m, e->ino);
	}
	/* 5. directory entries */
	for (size_t i = 0; i < t->nde; i++) {
		const struct dent *d = &t->de[i];
		if (!d->dirty)
			continue;
		char om[64 + CVFS_NAME_MAX], nm[64 + CVFS_NAME_MAX], val[80];
		size_t oml = 0, nml = 0;
		if (d->orig)
			oml = member_fmt(om, d->oino, d->otype, d->name, d->len);
		if (d->present)
			nml = member_fmt(nm, d->ino, d->type, d->name, d->len);
		int changed = !d->orig || !d->present || oml != nml || memcmp(om, nm, oml) ||
			      d->cookie != d->ocookie;
		if (d->orig && changed) {
			c = w_count_begin(b);
			w_fmt(b, "ZREM");
			w_key(b, s, "l:%llu", (ull)d->dir);
			w_str(b, om, oml);
			w_count_end(b, c);
		}
		if (d->present) {
			int vl = dval_fmt(val, sizeof(val), d->ino, d->type, d->cookie);
			c = w_count_begin(b);
			w_fmt(b, "HSET");
			w_key(b, s, "d:%llu", (ull)d->dir);
			w_ext(b, d->name, d->len);
			w_str(b, val, (size_t)vl);
			w_count_end(b, c);
			if (changed) {
				c = w_count_begin(b);
				w_fmt(b, "ZADD");
				w_key(b, s, "l:%llu", (ull)d->dir);
				w_fmt(b, "%llu", (ull)d->cookie);
				w_str(b, nm, nml);
				w_count_end(b, c);
			}
		} else if (d->orig) {
			c = w_count_begin(b);
			w_fmt(b, "HDEL");
			w_key(b, s, "d:%llu", (ull)d->dir);
			w_ext(b, d->name, d->len);
			w_count_end(b, c);
		}
		char mb[64];
		int n = snprintf(mb, sizeof(mb), "E %llu %llu %u\n", (ull)d->dir,
				 (ull)(d->orig ? d->oino : 0), (unsigned)d->len);
		msg_add(&m, mb, (size_t)n);
		msg_add(&m, d->name, d->len);
		msg_add(&m, "\n", 1);
	}
	if (nfiles) {
		c = w_count_begin(b);
		w_fmt(b, "INCRBY");
		w_key(b, s, "nfiles");
		w_fmt(b, "%lld", nfiles);
		w_count_end(b, c);
	}
	if (m.err) {
		b->err = 1;
	} else {
		c = w_count_begin(b);
		w_fmt(b, "PUBLISH");
		w_key(b, s, "chg");
		w_str(b, m.p, m.n);
		w_count_end(b, c);
	}
	free(m.p);
}

static int commit(struct rtxn *t)
{
	struct rstore *s = t->s;
	struct obuf *ob = &t->ob;
	int dirty = t->ndop || t->ndel;
	for (size_t i = 0; i < t->nin && !dirty; i++)
		dirty = t->in[i].dirty;
	for (size_t i = 0; i < t->nde && !dirty; i++)
		dirty = t->de[i].dirty;
	for (size_t i = 0; i < t->nxe && !dirty; i++)
		dirty = t->xe[i].dirty;
	if (!dirty) {
		if (t->watched)
			t->k->need_unwatch = 1;
		return 0;
	}
	if (s->readonly)
		return -EROFS; /* (the methods refuse already) */
	struct words b = {0};
	int nchk = commit_checks(t, &b);
	size_t nin_chk = 0;
	for (size_t i = 0; i < t->nin; i++)
		nin_chk += t->in[i].checked;
	commit_writes(t, &b);
	int rc = b.err ? -ENOMEM : 0;
	if (rc == 0 && t->watched)
		rc = ob_cmd(ob, "MULTI");
	int pre = 0;
	if (rc == 0) {
		pre = script_append(t, SC_APPLY, 0, &b);
		if (pre < 0)
			rc = pre;
	}
	w_free(&b);
	if (rc == 0 && t->watched)
		rc = ob_cmd(ob, "EXEC");
	if (rc) {
		ob_reset(ob);
		if (t->watched)
			t->k->need_unwatch = 1;
		return rc;
	}
	redisReply **rv;
	int nr;
	struct timespec dl = deadline_after(&s->cmdto);
	rc = -pthread_rwlock_timedwrlock(&s->iso, &dl);
	if (rc) {
		ob_reset(ob);
		if (t->watched)
			t->k->need_unwatch = 1;
		return rc;
	}
	rc = roundtrip(t, &rv, &nr);
	pthread_rwlock_unlock(&s->iso);
	if (rc) {
		commit_done(t, 0);
		return rc;
	}
	if (pre)
		script_learn(s, SC_APPLY, rv[0]);
	const redisReply *r = rv[nr - 1];
	if (t->watched) { /* MULTI's answer to the script is inside EXEC's */
		if (r->type == REDIS_REPLY_NIL) {
			r = NULL;
			rc = -EAGAIN; /* a watched key changed */
		} else if (r->type == REDIS_REPLY_ERROR) {
			rc = map_err(NULL, 0, r); /* (the script call failed to queue) */
			for (int i = pre; i < nr - 1; i++)
				if (rv[i]->type == REDIS_REPLY_ERROR)
					rc = map_err(NULL, 0, rv[i]);
			r = NULL;
		} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			r = r->element[0];
		} else {
			r = NULL;
			rc = -EIO;
		}
	}
	if (r && script_lost(s, SC_APPLY, r)) {
		rc = -EAGAIN; /* nothing ran: again, loading the script */
	} else if (r && r->type == REDIS_REPLY_ERROR) {
		/* a command inside the script failed (corrupted keys): what came
		 * before it in the script is applied */
		rc = map_err(NULL, 0, r);
		fprintf(stderr, "chuk-vfs redis: a command failed inside the commit script: %s\n",
			r->str);
	} else if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		   r->element[0]->type == REDIS_REPLY_INTEGER) {
		if (r->element[0]->integer == 0) {
			rc = -EAGAIN; /* something read changed */
			long long which = r->elements > 1 && r->element[1]->type ==
							     REDIS_REPLY_INTEGER
						  ? r->element[1]->integer
						  : 0;
			long long h0 = (long long)(nin_chk + t->nde);
			if (which > h0 && which <= nchk) {
				t->noopt_dir = t->hc[which - h0 - 1].dir;
				t->noopt_keep = 1;
			}
		}
	} else if (r) {
		rc = -EIO;
	}
	replies_free(rv, nr);
	commit_done(t, rc == 0);
	return rc;
}

/* ---- outside transactions ---- */

static uint64_t info_field(const char *info, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = info; p && *p;) {
		if (strncmp(p, name, nl) == 0 && p[nl] == ':')
			return strtoull(p + nl + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

static int r_statfs(struct cvfs_store *st, struct cvfs_statfs *out)
{
	struct rstore *s = rs(st);
	int rc = r_txn_begin(st, 0);
	if (rc)
		return rc;
	struct rtxn *t = cur(st);
	redisReply **rv = NULL;
	int nr = 0;
	rc = ob_cmd(&t->ob, "INFO memory");
	if (rc == 0)
		rc = ob_cmd(&t->ob, "GET %bnfiles", PFX(s));
	if (rc == 0)
		rc = roundtrip(t, &rv, &nr);
	uint64_t used = 0, max = 0, sys = 0, nfiles = 0;
	if (rc == 0) {
		const redisReply *i = rv[nr - 2], *f = rv[nr - 1];
		if (i->type == REDIS_REPLY_STRING || i->type == REDIS_REPLY_STATUS) {
			used = info_field(i->str, "used_memory");
			max = info_field(i->str, "maxmemory");
			sys = info_field(i->str, "total_system_memory");
		}
		if (f->type == REDIS_REPLY_STRING)
			nfiles = strtoull(f->str, NULL, 10);
	}
	replies_free(rv, nr);
	r_txn_end(st, 0);
	if (rc)
		return rc;
	uint64_t total = max ? max : sys ? sys : (1ull << 40);
	out->bsize = 4096;
	out->blocks = total / 4096;
	uint64_t ub = (used + 4095) / 4096;
	out->bfree = out->bavail = ub < out->blocks ? out->blocks - ub : 0;
	out->files = 1ull << 32;
	out->ffree = nfiles < out->files ? out->files - nfiles : 0;
	return 0;
}

static int r_sync(struct cvfs_store *st, uint64_t ino, int datasync)
{
	(void)st;
	(void)ino;
	(void)datasync;
	return 0; /* committed means on the server; persistence is its configuration */
}

/* ---- the change feed ---- */

static void feed_parse(struct rstore *s, const char *p, size_t n)
{
	const char *end = p + n, *nl = memchr(p, '\n', n);
	if (!nl)
		return;
	uint64_t id;
	if (parse_u64(p, (size_t)(nl - p), &id))
		return; /* garbage */
	if (id == s->client_id) {
		/* ours: only a lock's sync message matters (see "locks") */
		ull sn;
		if ((size_t)(end - nl) > 3 && nl[1] == 'S' &&
		    sscanf(nl + 1, "S %llu", &sn) == 1) {
			pthread_mutex_lock(&s->lk_lock);
			if (sn > s->sync_seen)
				s->sync_seen = sn;
			pthread_cond_broadcast(&s->lk_cv);
			pthread_mutex_unlock(&s->lk_lock);
		}
		return;
	}
	p = nl + 1;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return;
		char line[96];
		size_t ll = (size_t)(nl - p);
		if (ll >= sizeof(line))
			return;
		memcpy(line, p, ll);
		line[ll] = 0;
		p = nl + 1;
		ull a, b;
		unsigned len;
		if (line[0] == 'I' && sscanf(line, "I %llu", &a) == 1) {
			rc_inode_inval(s->rc, a);
			if (s->cb)
				s->cb(s->cbarg, CVFS_CHANGE_INODE, a, 0, NULL, 0);
		} else if (line[0] == 'E' && sscanf(line, "E %llu %llu %u", &a, &b, &len) == 3) {
			if (len == 0 || len > CVFS_NAME_MAX || (size_t)(end - p) < (size_t)len + 1)
				return;
			rc_dent_inval(s->rc, a, p, len);
			if (s->cb)
				s->cb(s->cbarg, CVFS_CHANGE_ENTRY, b, a, p, len);
			p += len + 1;
		} else {
			return;
		}
	}
}

static int sleep_unless_stopped(struct rstore *s, int ms)
{
	for (int i = 0; i < ms && !atomic_load(&s->wstop); i += 100)
		usleep(100000);
	return atomic_load(&s->wstop);
}

static void *feed_thread(void *arg)
{
	struct rstore *s = arg;
	int backoff = 200;
	while (!atomic_load(&s->wstop)) {
		int err;
		redisContext *c = connect_one(s, &err, NULL);
		if (!c) {
			if (sleep_unless_stopped(s, backoff))
				break;
			backoff = backoff < 2000 ? backoff * 2 : 2000;
			continue;
		}
		redisReply *r = redisCommand(c, "SUBSCRIBE %bchg", PFX(s));
		if (!r || r->type == REDIS_REPLY_ERROR) {
			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (sleep_unless_stopped(s, backoff))
				break;
			continue;
		}
		freeReplyObject(r);
		rc_live(s->rc, 1);
		atomic_store(&s->feed_up, 1);
		backoff = 200;
		int64_t last_rx = mono_ms(), ping_sent = 0;
		const int64_t idle_ms = 5000;
		const int64_t to_ms = s->cmdto.tv_sec * 1000 + s->cmdto.tv_usec / 1000;
		while (!atomic_load(&s->wstop)) {
			struct pollfd pfd = {c->fd, POLLIN, 0};
			int pr = poll(&pfd, 1, 200);
			int64_t now = mono_ms();
			if (pr < 0 && errno != EINTR)
				break;
			if (pr > 0) {
				if (redisBufferRead(c) != REDIS_OK)
					break;
				int bad = 0;
				for (;;) {
					r = NULL;
					if (redisGetReplyFromReader(c, (void **)&r) != REDIS_OK) {
						bad = 1;
						break;
					}
					if (!r)
						break;
					last_rx = now;
					ping_sent = 0;
					if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
					    r->element[0]->type == REDIS_REPLY_STRING &&
					    strcmp(r->element[0]->str, "message") == 0 &&
					    r->element[2]->type == REDIS_REPLY_STRING)
						feed_parse(s, r->element[2]->str, r->element[2]->len);
					freeReplyObject(r);
				}
				if (bad)
					break;
			} else if (ping_sent && now - ping_sent > to_ms) {
				break; /* the server stopped answering: start again */
			} else if (!ping_sent && now - last_rx > idle_ms) {
				int done = 0;
				redisAppendCommand(c, "PING");
				if (redisBufferWrite(c, &done) != REDIS_OK)
					break;
				ping_sent = now;
			}
		}
		atomic_store(&s->feed_up, 0);
		rc_live(s->rc, 0);
		pthread_mutex_lock(&s->lk_lock);
		pthread_cond_broadcast(&s->lk_cv); /* lock syncs stop waiting for us */
		pthread_mutex_unlock(&s->lk_lock);
		redisFree(c);
		if (!atomic_load(&s->wstop))
			sleep_unless_stopped(s, 100);
	}
	return NULL;
}

static int r_watch(struct cvfs_store *st, cvfs_change_cb cb, void *arg)
{
	struct rstore *s = rs(st);
	if (s->wstarted)
		return -EBUSY;
	s->cb = cb;
	s->cbarg = arg;
	atomic_store(&s->wstop, 0);
	int rc = pthread_create(&s->wthr, NULL, feed_thread, s);
	if (rc)
		return -rc;
	s->wstarted = 1;
	return 0;
}

/* ---- locks ----
 *
 * P lk:INO is a hash: one field per lock owner, "K:CLIENT:OWNER" (K is p for
 * fcntl locks, f for flock; OWNER the kernel's lock owner in hex), valued
 * "T START END PID ..." (T is R or W; ranges sorted, disjoint, merged).
 * P alive:CLIENT is the client's lease: a set of the inodes where it may hold
 * locks (and "0"), expiring lease_ms after its last refresh.  A lock script
 * takes a field whose client has no lease as dead, and deletes it.  Every
 * change is one Lua script: atomic, one round trip, no retries.
 *
 * Lua numbers are doubles: offsets are clamped to 2^53 (LK_INF), which
 * stands for "to the end"; ranges beyond 8 PiB are coarser than asked (they
 * may conflict more, never less).
 *
 * A lock granted while the change feed is up also PUBLISHes "CLIENT\nS N\n"
 * on the feed, and the grant returns once our own feed thread has seen it:
 * by then every change committed before the lock (whose publish came
 * before) has invalidated the kernel's caches, so a process that reads
 * after taking a lock (SQLite) never reads pages older than the last
 * writer's commit. */

#define LK_INF 9007199254740992ull /* 2^53 */
#define DEF_LEASE_MS 10000
#define SYNC_WAIT_MS 2000

/* KEYS: lk:INO, alive:CLIENT, chg.  ARGV: prefix, field, op (R W U: set;
 * r w: test), start, end, pid, lease ms, ino, sync message ("" for none).
 * Returns {1} (done, or no conflict) or {0, T, START, END, PID}. */
static const char lk_script[] =
	"local lk, alive, chg = KEYS[1], KEYS[2], KEYS[3]\n"
	"local pfx, me, op = ARGV[1], ARGV[2], ARGV[3]\n"
	"local s, e, pid = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]\n"
	"local kind = string.sub(me, 1, 2)\n"
	"local myc = string.match(me, '^%a:(%d+):')\n"
	"local want = string.upper(op)\n"
	"local function ranges(v)\n"
	"  local r = {}\n"
	"  for t, a, b, p in string.gmatch(v, '(%a) (%d+) (%d+) (%d+)') do\n"
	"    r[#r + 1] = {t, tonumber(a), tonumber(b), p}\n"
	"  end\n"
	"  return r\n"
	"end\n"
	"local function num(x) return string.format('%.0f', x) end\n"
	"local live = {}\n"
	"live[myc] = true\n"
	"local all = redis.call('HGETALL', lk)\n"
	"local mine, others = '', 0\n"
	"for i = 1, #all, 2 do\n"
	"  local f, v = all[i], all[i + 1]\n"
	"  if f == me then\n"
	"    mine = v\n"
	"  else\n"
	"    local c = string.match(f, '^%a:(%d+):')\n"
	"    if c and live[c] == nil then\n"
	"      live[c] = redis.call('EXISTS', pfx .. 'alive:' .. c) == 1\n"
	"    end\n"
	"    if not c or not live[c] then\n"
	"      redis.call('HDEL', lk, f)\n"
	"    else\n"
	"      if c == myc then others = others + 1 end\n"
	"      if want ~= 'U' and string.sub(f, 1, 2) == kind then\n"
	"        for _, r in ipairs(ranges(v)) do\n"
	"          if r[2] <= e and s <= r[3] and (want == 'W' or r[1] == 'W') then\n"
	"            return {0, r[1], num(r[2]), num(r[3]), r[4]}\n"
	"          end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if op == 'r' or op == 'w' then return {1} end\n"
	"local out = {}\n"
	"for _, r in ipairs(ranges(mine)) do\n"
	"  if r[3] < s or r[2] > e then\n"
	"    out[#out + 1] = r\n"
	"  else\n"
	"    if r[2] < s then out[#out + 1] = {r[1], r[2], s - 1, r[4]} end\n"
	"    if r[3] > e then out[#out + 1] = {r[1], e + 1, r[3], r[4]} end\n"
	"  end\n"
	"end\n"
	"if want ~= 'U' then out[#out + 1] = {want, s, e, pid} end\n"
	"table.sort(out, function(x, y) return x[2] < y[2] end)\n"
	"local m, parts = {}, {}\n"
	"for _, r in ipairs(out) do\n"
	"  local l = m[#m]\n"
	"  if l and l[1] == r[1] and l[3] + 1 >= r[2] then\n"
	"    if r[3] > l[3] then l[3] = r[3] end\n"
	"  else\n"
	"    m[#m + 1] = r\n"
	"  end\n"
	"end\n"
	"for _, r in ipairs(m) do\n"
	"  parts[#parts + 1] = r[1] .. ' ' .. num(r[2]) .. ' ' .. num(r[3]) .. ' ' .. r[4]\n"
	"end\n"
	"if #parts > 0 then\n"
	"  redis.call('HSET', lk, me, table.concat(parts, ' '))\n"
	"  redis.call('SADD', alive, '0', ARGV[8])\n"
	"  redis.call('PEXPIRE', alive, ARGV[7])\n"
	"else\n"
	"  if mine ~= '' then redis.call('HDEL', lk, me) end\n"
	"  if others == 0 then redis.call('SREM', alive, ARGV[8]) end\n"
	"end\n"
	"if want ~= 'U' and ARGV[9] ~= '' then redis.call('PUBLISH', chg, ARGV[9]) end\n"
	"return {1}\n";

/* KEYS: alive:CLIENT.  ARGV: prefix, client.  Drops every lock of the
 * client (a clean unmount) and its lease. */
static const char lk_drop_script[] =
	"local pat = '^%a:' .. ARGV[2] .. ':'\n"
	"for _, ino in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	"  if ino ~= '0' then\n"
	"    local k = ARGV[1] .. 'lk:' .. ino\n"
	"    for _, f in ipairs(redis.call('HKEYS', k)) do\n"
	"      if string.match(f, pat) then redis.call('HDEL', k, f) end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"redis.call('DEL', KEYS[1])\n"
	"return 1\n";

static const char *script_body(int which)
{
	switch (which) {
	case SC_LOCK:
		return lk_script;
	case SC_LKDROP:
		return lk_drop_script;
	case SC_APPLY:
		return apply_script;
	default:
		return lookup_script;
	}
}

static uint64_t lk_clamp(uint64_t x)
{
	return x >= LK_INF ? LK_INF : x;
}

/* Runs script `which` with its arguments (keys first; nkeys of them) in a
 * read transaction of its own (one round trip; the script is loaded along
 * at first use, and again after NOSCRIPT).  *out: the reply (free it). */
static int lk_eval(struct rstore *s, int which, int nkeys, int argc, const char **argv,
		   const size_t *lens, redisReply **out)
{
	*out = NULL;
	int rc = r_txn_begin(&s->base, 0);
	if (rc)
		return rc;
	struct rtxn *t = cur(&s->base);
	for (int attempt = 0; attempt < 2 && rc == 0 && !*out; attempt++) {
		struct words b = {0};
		for (int i = 0; i < argc; i++)
			w_ext(&b, argv[i], lens[i]);
		int pre = b.err ? -ENOMEM : script_append(t, which, nkeys, &b);
		w_free(&b);
		redisReply **rv = NULL;
		int n = 0;
		rc = pre < 0 ? pre : roundtrip(t, &rv, &n);
		if (rc) {
			ob_reset(&t->ob);
			break;
		}
		if (pre)
			script_learn(s, which, rv[0]);
		redisReply *r = rv[n - 1];
		if (script_lost(s, which, r)) {
			/* again, loading it */
		} else if (r->type == REDIS_REPLY_ERROR) {
			rc = map_err(NULL, 0, r);
		} else {
			*out = r;
			rv[n - 1] = NULL;
		}
		replies_free(rv, n);
	}
	r_txn_end(&s->base, 0);
	if (rc == 0 && !*out)
		rc = -EIO;
	return rc;
}

static void *lease_thread(void *arg);

/* The lease: refreshed by a thread of ours from the first lock on. */
static void lease_start(struct rstore *s)
{
	pthread_mutex_lock(&s->lk_lock);
	if (!s->lthr_started && !s->lstop) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		s->lthr_started = pthread_create(&s->lthr, NULL, lease_thread, s) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_mutex_unlock(&s->lk_lock);
}

struct lkarg {
	char lk[64], alive[64], field[80], op[2], start[24], end[24], pid[16], lease[16],
		ino[24], msg[64];
};

/* One lock script call.  op: R W U (set), r w (test).  On a conflict
 * returns -EAGAIN and fills *conf (if not NULL). */
static int lk_call(struct rstore *s, uint64_t ino, int flock, uint64_t owner, char op,
		   uint64_t start, uint64_t end, uint32_t pid, uint64_t sync, struct cvfs_lock *conf)
{
	struct lkarg a;
	const char *av[12];
	size_t al[12];
	snprintf(a.lk, sizeof(a.lk), "lk:%llu", (ull)ino);
	snprintf(a.alive, sizeof(a.alive), "alive:%llu", s->client_id);
	snprintf(a.field, sizeof(a.field), "%c:%llu:%llx", flock ? 'f' : 'p', s->client_id,
		 (ull)owner);
	a.op[0] = op;
	a.op[1] = 0;
	snprintf(a.start, sizeof(a.start), "%llu", (ull)lk_clamp(start));
	snprintf(a.end, sizeof(a.end), "%llu", (ull)lk_clamp(end));
	snprintf(a.pid, sizeof(a.pid), "%u", pid);
	snprintf(a.lease, sizeof(a.lease), "%d", s->lease_ms);
	snprintf(a.ino, sizeof(a.ino), "%llu", (ull)ino);
	a.msg[0] = 0;
	if (sync)
		snprintf(a.msg, sizeof(a.msg), "%llu\nS %llu\n", s->client_id, (ull)sync);
	/* the keys carry the prefix (binary-safe): build them whole */
	size_t l1 = strlen(a.lk), l2 = strlen(a.alive);
	char *keys = malloc(3 * s->plen + l1 + l2 + 3);
	if (!keys)
		return -ENOMEM;
	char *k1 = keys, *k2 = k1 + s->plen + l1, *k3 = k2 + s->plen + l2;
	memcpy(k1, s->prefix, s->plen);
	memcpy(k1 + s->plen, a.lk, l1);
	memcpy(k2, s->prefix, s->plen);
	memcpy(k2 + s->plen, a.alive, l2);
	memcpy(k3, s->prefix, s->plen);
	memcpy(k3 + s->plen, "chg", 3);
	int n = 0;
	av[n] = k1, al[n++] = s->plen + l1;
	av[n] = k2, al[n++] = s->plen + l2;
	av[n] = k3, al[n++] = s->plen + 3;
	av[n] = s->prefix, al[n++] = s->plen;
	const char *rest[] = {a.field, a.op, a.start, a.end, a.pid, a.lease, a.ino, a.msg};
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
		av[n] = rest[i], al[n++] = strlen(rest[i]);
	redisReply *r;
	int rc = lk_eval(s, 0, 3, n, av, al, &r);
	free(keys);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		rc = -EIO;
	} else if (r->element[0]->integer == 0 && r->elements == 5) {
		rc = -EAGAIN;
		if (conf) {
			memset(conf, 0, sizeof(*conf));
			conf->type = r->element[1]->str && r->element[1]->str[0] == 'W' ? F_WRLCK
											  : F_RDLCK;
			conf->start = strtoull(r->element[2]->str ? r->element[2]->str : "0", NULL, 10);
			conf->end = strtoull(r->element[3]->str ? r->element[3]->str : "0", NULL, 10);
			if (conf->end >= LK_INF)
				conf->end = CVFS_LOCK_EOF;
			conf->pid = (uint32_t)strtoul(r->element[4]->str ? r->element[4]->str : "0",
						      NULL, 10);
		}
	}
	freeReplyObject(r);
	return rc;
}

/* Unlocks that failed (the server was away) are done later, before any
 * other lock call and by the lease thread: a close never reports them. */
static int lk_retry_pending(struct rstore *s)
{
	for (;;) {
		pthread_mutex_lock(&s->lk_lock);
		if (!s->nretry) {
			pthread_mutex_unlock(&s->lk_lock);
			return 0;
		}
		struct lkretry r = s->retry[s->nretry - 1];
		pthread_mutex_unlock(&s->lk_lock);
		int rc = lk_call(s, r.ino, r.flock, r.owner, 'U', 0, CVFS_LOCK_EOF, 0, 0, NULL);
		if (rc)
			return rc;
		pthread_mutex_lock(&s->lk_lock);
		for (size_t i = 0; i < s->nretry; i++) {
			if (s->retry[i].ino == r.ino && s->retry[i].owner == r.owner &&
			    s->retry[i].flock == r.flock) {
				s->retry[i] = s->retry[--s->nretry];
				break;
			}
		}
		pthread_mutex_unlock(&s->lk_lock);
	}
}

static int feed_is_up(struct rstore *s)
{
	return atomic_load(&s->feed_up);
}

/* Waits until our feed thread has seen our sync message n (see above). */
static void lk_sync_wait(struct rstore *s, uint64_t n)
{
	int64_t end = mono_ms() + SYNC_WAIT_MS;
	pthread_mutex_lock(&s->lk_lock);
	while (s->sync_seen < n && feed_is_up(s) && mono_ms() < end) {
		struct timeval tv = {0, 50000};
		struct timespec ts = deadline_after(&tv);
		pthread_cond_timedwait(&s->lk_cv, &s->lk_lock, &ts);
	}
	pthread_mutex_unlock(&s->lk_lock);
}

static int r_setlk(struct cvfs_store *st, uint64_t ino, const struct cvfs_lock *lk, int flock)
{
	struct rstore *s = rs(st);
	if (!s->client_id)
		return -ENOLCK; /* a read-only replica gave us no id */
	char op = lk->type == F_RDLCK ? 'R' : lk->type == F_WRLCK ? 'W' : 'U';
	int whole_unlock = op == 'U' && lk->start == 0 && lk->end == CVFS_LOCK_EOF;
	int rc = lk_retry_pending(s);
	if (rc && !whole_unlock)
		return rc == -EROFS ? -ENOLCK : rc;
	uint64_t sync = 0;
	if (op != 'U') {
		lease_start(s);
		if (feed_is_up(s)) {
			pthread_mutex_lock(&s->lk_lock);
			sync = ++s->sync_sent;
			pthread_mutex_unlock(&s->lk_lock);
		}
	}
	if (rc == 0)
		rc = lk_call(s, ino, flock, lk->owner, op, lk->start, lk->end, lk->pid, sync, NULL);
	if (rc && rc != -EAGAIN && whole_unlock && is_transport(rc)) {
		/* a close dropping its locks: done when the server is back */
		pthread_mutex_lock(&s->lk_lock);
		int dup = 0;
		for (size_t i = 0; i < s->nretry; i++)
			dup |= s->retry[i].ino == ino && s->retry[i].owner == lk->owner &&
			       s->retry[i].flock == flock;
		if (!dup && grow((void **)&s->retry, &s->capretry, s->nretry + 1,
				 sizeof(*s->retry)) == 0)
			s->retry[s->nretry++] = (struct lkretry){ino, lk->owner, flock};
		pthread_mutex_unlock(&s->lk_lock);
		return 0;
	}
	if (rc == 0 && sync)
		lk_sync_wait(s, sync);
	return rc == -EROFS ? -ENOLCK : rc;
}

static int r_getlk(struct cvfs_store *st, uint64_t ino, struct cvfs_lock *lk, int flock)
{
	struct rstore *s = rs(st);
	if (!s->client_id)
		return -ENOLCK;
	int rc = lk_retry_pending(s);
	if (rc)
		return rc;
	struct cvfs_lock conf;
	rc = lk_call(s, ino, flock, lk->owner, lk->type == F_WRLCK ? 'w' : 'r', lk->start, lk->end,
		     lk->pid, 0, &conf);
	if (rc == -EAGAIN) {
		*lk = conf;
		return 0;
	}
	if (rc == 0)
		lk->type = F_UNLCK;
	return rc == -EROFS ? -ENOLCK : rc;
}

static int lease_sleep(struct rstore *s, int ms)
{
	int64_t end = mono_ms() + ms;
	pthread_mutex_lock(&s->lk_lock);
	while (!s->lstop && mono_ms() < end) {
		struct timeval tv = {0, 100000};
		struct timespec ts = deadline_after(&tv);
		pthread_cond_timedwait(&s->lk_cv, &s->lk_lock, &ts);
	}
	int stop = s->lstop;
	pthread_mutex_unlock(&s->lk_lock);
	return stop;
}

/* Keeps P alive:CLIENT from expiring while this client lives. */
static void *lease_thread(void *arg)
{
	struct rstore *s = arg;
	int first = 1;
	while (!lease_sleep(s, first ? 0 : s->lease_ms / 4)) {
		lk_retry_pending(s);
		if (r_txn_begin(&s->base, 0) != 0)
			continue;
		struct rtxn *t = cur(&s->base);
		redisReply **rv = NULL;
		int n = 0;
		int rc = ob_cmd(&t->ob, "SADD %balive:%llu 0", PFX(s), s->client_id);
		if (rc == 0)
			rc = ob_cmd(&t->ob, "PEXPIRE %balive:%llu %d", PFX(s), s->client_id, s->lease_ms);
		if (rc == 0)
			rc = roundtrip(t, &rv, &n);
		if (rc == 0 && !first && n >= 1 && rv[0]->type == REDIS_REPLY_INTEGER &&
		    rv[0]->integer == 1)
			fprintf(stderr,
				"chuk-vfs redis: the lock lease of this client had expired (no refresh "
				"for %d ms); its locks may have been taken by others\n",
				s->lease_ms);
		if (rc == 0)
			first = 0;
		replies_free(rv, n);
		r_txn_end(&s->base, 0);
	}
	return NULL;
}

/* A clean end: our locks go at once, not at the lease's expiry. */
static void lk_shutdown(struct rstore *s)
{
	pthread_mutex_lock(&s->lk_lock);
	s->lstop = 1;
	pthread_cond_broadcast(&s->lk_cv);
	int started = s->lthr_started;
	pthread_mutex_unlock(&s->lk_lock);
	if (!started)
		return;
	pthread_join(s->lthr, NULL);
	char k[64], c[24];
	snprintf(k, sizeof(k), "alive:%llu", s->client_id);
	snprintf(c, sizeof(c), "%llu", s->client_id);
	char *key = malloc(s->plen + sizeof(k));
	if (!key)
		return;
	memcpy(key, s->prefix, s->plen);
	memcpy(key + s->plen, k, strlen(k));
	const char *av[] = {key, s->prefix, c};
	size_t al[] = {s->plen + strlen(k), s->plen, strlen(c)};
	redisReply *r = NULL;
	if (lk_eval(s, 1, 1, 3, av, al, &r) == 0)
		freeReplyObject(r);
	free(key);
}

/* ---- open and free ---- */

static void r_free(struct cvfs_store *st)
{
	struct rstore *s = rs(st);
	if (!s)
		return;
	lk_shutdown(s);
	if (s->wstarted) {
		atomic_store(&s->wstop, 1);
		pthread_join(s->wthr, NULL);
	}
	if (getenv("CVFS_REDIS_STATS"))
		fprintf(stderr, "chuk-vfs redis: %llu transactions, %llu round trips\n",
			(ull)atomic_load(&s->txns), (ull)atomic_load(&s->roundtrips));
	for (int i = 0; i < s->nconns; i++)
		conn_drop(&s->conns[i]);
	free(s->conns);
	rc_free(s->rc);
	free(s->prefix);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_cond_destroy(&s->pool_cv);
	pthread_mutex_destroy(&s->wlock);
	pthread_rwlock_destroy(&s->iso);
	pthread_mutex_destroy(&s->brk_lock);
	pthread_mutex_destroy(&s->alloc_lock);
	pthread_mutex_destroy(&s->lk_lock);
	pthread_cond_destroy(&s->lk_cv);
	free(s->retry);
	free(s);
}

static const struct cvfs_store_ops redis_ops = {
	.name = "redis",
	.abi = CVFS_STORE_ABI,
	.txn_begin = r_txn_begin,
	.txn_end = r_txn_end,
	.ino_alloc = r_ino_alloc,
	.inode_get = r_inode_get,
	.inode_put = r_inode_put,
	.inode_del = r_inode_del,
	.dent_get = r_dent_get,
	.dent_put = r_dent_put,
	.dent_del = r_dent_del,
	.dir_list = r_dir_list,
	.dir_empty = r_dir_empty,
	.read = r_read,
	.write = r_write,
	.truncate = r_truncate,
	.punch = r_punch,
	.getx = r_getx,
	.setx = r_setx,
	.listx = r_listx,
	.removex = r_removex,
	.statfs = r_statfs,
	.sync = r_sync,
	.watch = r_watch,
	.setlk = r_setlk,
	.getlk = r_getlk,
	.free = r_free,
};

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	out[o] = 0;
	return 0;
}

static int set_msg(char **errmsg, const char *fmt, const char *a, const char *b)
{
	if (errmsg && asprintf(errmsg, fmt, a, b) < 0)
		*errmsg = NULL;
	return -EINVAL;
}

/* redis://[user:password@]host[:port][/db] or unix://[user:password@]/path[?db=N] */
static int parse_url(const char *u, struct rurl *o, char **errmsg)
{
	memset(o, 0, sizeof(*o));
	o->port = 6379;
	strcpy(o->host, "127.0.0.1");
	const char *rest;
	if (!strncmp(u, "redis://", 8)) {
		rest = u + 8;
	} else if (!strncmp(u, "unix://", 7)) {
		rest = u + 7;
		o->is_unix = 1;
	} else if (!strncmp(u, "rediss://", 9)) {
		return set_msg(errmsg, "bad redis URL '%s': TLS (rediss://) is not supported%s", u,
			       "");
	} else {
		return set_msg(errmsg,
			       "bad redis URL '%s': expected redis://[user:password@]host[:port][/db] "
			       "or unix:///path/to/redis.sock[?db=N]%s",
			       u, "");
	}
	/* userinfo: up to the last '@' before the path */
	const char *slash = o->is_unix ? strstr(rest, "@/") : strchr(rest, '/');
	const char *at = NULL;
	if (o->is_unix) {
		at = slash; /* "user:pass@/path" */
	} else {
		const char *lim = slash ? slash : rest + strlen(rest);
		for (const char *p = rest; p < lim; p++)
			if (*p == '@')
				at = p;
	}
	if (at) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon) {
			if (pct_decode(rest, (size_t)(colon - rest), o->user, sizeof(o->user)) ||
			    pct_decode(colon + 1, (size_t)(at - colon - 1), o->pass, sizeof(o->pass)))
				return set_msg(errmsg, "bad redis URL '%s': bad user or password%s", u,
					       "");
		} else if (pct_decode(rest, (size_t)(at - rest), o->pass, sizeof(o->pass))) {
			return set_msg(errmsg, "bad redis URL '%s': bad password%s", u, "");
		}
		rest = at + 1;
	}
	if (o->is_unix) {
		const char *q = strchr(rest, '?');
		size_t pl = q ? (size_t)(q - rest) : strlen(rest);
		if (pl == 0 || rest[0] != '/' || pl >= sizeof(o->path))
			return set_msg(errmsg, "bad redis URL '%s': expected unix:///path/to/socket%s",
				       u, "");
		memcpy(o->path, rest, pl);
		o->path[pl] = 0;
		if (q) {
			char *e;
			if (strncmp(q + 1, "db=", 3) != 0)
				return set_msg(errmsg, "bad redis URL '%s': unknown parameter (only db=N)%s",
					       u, "");
			long v = strtol(q + 4, &e, 10);
			if (*e || e == q + 4 || v < 0 || v > 100000)
				return set_msg(errmsg, "bad redis URL '%s': bad db%s", u, "");
			o->db = (int)v;
		}
		return 0;
	}
	const char *hend;
	if (*rest == '[') {
		const char *rb = strchr(rest, ']');
		if (!rb || (size_t)(rb - rest - 1) >= sizeof(o->host) || rb == rest + 1)
			return set_msg(errmsg, "bad redis URL '%s': bad IPv6 address%s", u, "");
		memcpy(o->host, rest + 1, (size_t)(rb - rest - 1));
		o->host[rb - rest - 1] = 0;
		hend = rb + 1;
	} else {
		hend = rest + strcspn(rest, ":/?");
		if (hend != rest) {
			if ((size_t)(hend - rest) >= sizeof(o->host))
				return set_msg(errmsg, "bad redis URL '%s': host too long%s", u, "");
			memcpy(o->host, rest, (size_t)(hend - rest));
			o->host[hend - rest] = 0;
		}
	}
	if (*hend == ':') {
		char *e;
		long v = strtol(hend + 1, &e, 10);
		if (e == hend + 1 || v <= 0 || v > 65535 || (*e && *e != '/' && *e != '?'))
			return set_msg(errmsg, "bad redis URL '%s': bad port%s", u, "");
		o->port = (int)v;
		hend = e;
	}
	if (*hend == '/' && hend[1] && hend[1] != '?') {
		char *e;
		long v = strtol(hend + 1, &e, 10);
		if (e == hend + 1 || v < 0 || v > 100000 || (*e && *e != '?'))
			return set_msg(errmsg, "bad redis URL '%s': bad database number%s", u, "");
		o->db = (int)v;
		hend = e;
	} else if (*hend == '/') {
		hend++;
	}
	if (*hend == '?') {
		char *e;
		if (strncmp(hend + 1, "db=", 3) != 0)
			return set_msg(errmsg, "bad redis URL '%s': unknown parameter (only db=N)%s", u,
				       "");
		long v = strtol(hend + 4, &e, 10);
		if (*e || e == hend + 4 || v < 0 || v > 100000)
			return set_msg(errmsg, "bad redis URL '%s': bad db%s", u, "");
		o->db = (int)v;
	} else if (*hend) {
		return set_msg(errmsg, "bad redis URL '%s': unexpected '%s'", u, hend);
	}
	return 0;
}

static int parse_secs(const char *v, struct timeval *tv)
{
	char *e;
	double d = strtod(v, &e);
	if (e == v || *e || !(d > 0) || d > 86400)
		return -1;
	tv->tv_sec = (time_t)d;
	tv->tv_usec = (suseconds_t)((d - (double)tv->tv_sec) * 1e6);
	return 0;
}

/* Characters SCAN MATCH treats specially, escaped. */
static char *glob_escape(const char *p, size_t n)
{
	char *o = malloc(2 * n + 2), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?[]\\", p[i]))
			*q++ = '\\';
		*q++ = p[i];
	}
	*q++ = '*';
	*q = 0;
	return o;
}

/* Checks the format marker; creates it under an unused prefix. */
static int check_format(struct rstore *s, redisContext *c, char **errmsg)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		redisReply *r = redisCommand(c, "GET %bformat", PFX(s));
		if (!r)
			goto io;
		if (r->type == REDIS_REPLY_STRING) {
			char tag[64];
			unsigned ver = 0, chunk = 0;
			int ok = sscanf(r->str, "%63s %u chunk=%u", tag, &ver, &chunk) == 3 &&
				 strcmp(tag, FORMAT_TAG) == 0;
			freeReplyObject(r);
			if (!ok) {
				if (errmsg && asprintf(errmsg,
						       "redis at %s: prefix '%s' holds something that is "
						       "not a chuk-vfs filesystem (see its 'format' key)",
						       s->where, s->prefix) < 0)
					*errmsg = NULL;
				return -EINVAL;
			}
			if (ver != FORMAT_VERSION || chunk == 0 || chunk > (64u << 20)) {
				if (errmsg && asprintf(errmsg,
						       "redis at %s: prefix '%s' holds a chuk-vfs "
						       "filesystem of format %u, this build reads %u",
						       s->where, s->prefix, ver, FORMAT_VERSION) < 0)
					*errmsg = NULL;
				return -EINVAL;
			}
			s->chunk = chunk;
			return 0;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			int e = map_err(NULL, 0, r);
			if (errmsg &&
			    asprintf(errmsg, "redis at %s: %s", s->where, r->str) < 0)
				*errmsg = NULL;
			freeReplyObject(r);
			return e;
		}
		freeReplyObject(r);
		if (s->readonly) {
			if (errmsg && asprintf(errmsg,
					       "redis at %s: no chuk-vfs filesystem under prefix '%s' "
					       "(and read-only: not creating one)",
					       s->where, s->prefix) < 0)
				*errmsg = NULL;
			return -ENOENT;
		}
		/* a new filesystem: only where nothing else lives */
		char *pat = glob_escape(s->prefix, s->plen);
		if (!pat)
			return -ENOMEM;
		char cursor[32] = "0";
		int found = 0;
		do {
			r = redisCommand(c, "SCAN %s MATCH %s COUNT 10000", cursor, pat);
			if (!r) {
				free(pat);
				goto io;
			}
			if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
				freeReplyObject(r);
				free(pat);
				if (errmsg && asprintf(errmsg, "redis at %s: SCAN failed", s->where) < 0)
					*errmsg = NULL;
				return -EIO;
			}
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
			found = r->element[1]->elements > 0;
			freeReplyObject(r);
		} while (!found && strcmp(cursor, "0") != 0);
		free(pat);
		if (found) {
			if (errmsg && asprintf(errmsg,
					       "redis at %s: keys under prefix '%s' exist but are not a "
					       "chuk-vfs filesystem; refusing to use it",
					       s->where, s->prefix) < 0)
				*errmsg = NULL;
			return -EEXIST;
		}
		char fmt[64];
		snprintf(fmt, sizeof(fmt), "%s %u chunk=%u", FORMAT_TAG, FORMAT_VERSION, s->chunk);
		redisAppendCommand(c, "MULTI");
		redisAppendCommand(c, "SET %bino 1 NX", PFX(s));
		redisAppendCommand(c, "SET %bformat %s NX", PFX(s), fmt);
		redisAppendCommand(c, "EXEC");
		for (int i = 0; i < 4; i++) {
			if (redisGetReply(c, (void **)&r) != REDIS_OK)
				goto io;
			freeReplyObject(r);
		}
	}
	if (errmsg && asprintf(errmsg, "redis at %s: cannot create the format marker", s->where) < 0)
		*errmsg = NULL;
	return -EIO;
io:
	if (errmsg && asprintf(errmsg, "redis at %s: %s", s->where, c->errstr) < 0)
		*errmsg = NULL;
	return map_err(c, errno, NULL);
}

int cvfs_redis_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		    char **errmsg)
{
	*out = NULL;
	struct rstore *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	const char *url = cvfs_opt_get(opts, nopts, "url");
	const char *pfx = cvfs_opt_get(opts, nopts, "prefix");
	const char *v;
	int rc = parse_url(url ? url : "redis://127.0.0.1:6379/0", &s->url, errmsg);
	if (rc) {
		free(s);
		return rc;
	}
	if (s->url.is_unix)
		snprintf(s->where, sizeof(s->where), "unix:%s%s%.0d", s->url.path,
			 s->url.db ? "?db=" : "", s->url.db);
	else
		snprintf(s->where, sizeof(s->where), "%s:%d%s%.0d", s->url.host, s->url.port,
			 s->url.db ? "/" : "", s->url.db);
	s->prefix = strdup(pfx ? pfx : "chuk_vfs:");
	s->plen = s->prefix ? strlen(s->prefix) : 0;
	s->cto.tv_sec = 2;
	s->cmdto.tv_sec = 5;
	s->chunk = DEF_CHUNK;
	s->nconns = DEF_POOL;
	if (!s->prefix) {
		free(s);
		return -ENOMEM;
	}
	if ((v = cvfs_opt_get(opts, nopts, "connect_timeout")) && parse_secs(v, &s->cto))
		rc = set_msg(errmsg, "redis store: bad connect_timeout '%s' (seconds)%s", v, "");
	if (!rc && (v = cvfs_opt_get(opts, nopts, "timeout")) && parse_secs(v, &s->cmdto))
		rc = set_msg(errmsg, "redis store: bad timeout '%s' (seconds)%s", v, "");
	if (!rc && (v = cvfs_opt_get(opts, nopts, "connections"))) {
		char *e;
		long n = strtol(v, &e, 10);
		if (*e || n < 1 || n > 256)
			rc = set_msg(errmsg, "redis store: bad connections '%s' (1..256)%s", v, "");
		else
			s->nconns = (int)n;
	}
	if (!rc && (v = cvfs_opt_get(opts, nopts, "chunk_size"))) {
		char *e;
		unsigned long n = strtoul(v, &e, 10);
		if (*e || n < 512 || n > (64ul << 20))
			rc = set_msg(errmsg, "redis store: bad chunk_size '%s' (512..64M bytes)%s", v,
				     "");
		else
			s->chunk = (uint32_t)n;
	}
	s->dc_ttl_ms = DEF_DC_TTL_MS;
	if (!rc && (v = cvfs_opt_get(opts, nopts, "dir_cache"))) {
		char *e;
		double d = strtod(v, &e);
		if (e == v || *e || d < 0 || d > 3600)
			rc = set_msg(errmsg, "redis store: bad dir_cache '%s' (seconds, 0 = off)%s", v,
				     "");
		else
			s->dc_ttl_ms = (int)(d * 1000);
	}
	/* The mount's cache_timeout (a hint chuk-vfs-mount passes): at 0 the
	 * user wants every stat and lookup to ask the server, so plain reads
	 * do not use the cache; write transactions still do (their commit
	 * script checks what they read). */
	s->read_cache = 1;
	if (!rc && (v = cvfs_opt_get(opts, nopts, "cache_timeout")) && strtod(v, NULL) <= 0)
		s->read_cache = 0;
	s->lease_ms = DEF_LEASE_MS;
	if (!rc && (v = cvfs_opt_get(opts, nopts, "lock_lease"))) {
		char *e;
		double d = strtod(v, &e);
		if (e == v || *e || d < 1 || d > 3600)
			rc = set_msg(errmsg, "redis store: bad lock_lease '%s' (seconds, 1..3600)%s", v,
				     "");
		else
			s->lease_ms = (int)(d * 1000);
	}
	if (!rc && (v = cvfs_opt_get(opts, nopts, "readonly")))
		s->readonly = strcmp(v, "0") != 0;
	if (rc) {
		free(s->prefix);
		free(s);
		return rc;
	}
	s->conns = calloc((size_t)s->nconns, sizeof(*s->conns));
	if (!s->conns) {
		free(s->prefix);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_cond_init(&s->pool_cv, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->iso, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->brk_lock, NULL);
	pthread_mutex_init(&s->alloc_lock, NULL);
	pthread_mutex_init(&s->lk_lock, NULL);
	pthread_cond_init(&s->lk_cv, NULL);
	if (s->dc_ttl_ms > 0)
		s->rc = rc_new(s->dc_ttl_ms, CACHE_MAX); /* no memory: no cache */
	s->base.ops = &redis_ops;
	s->base.caps = CVFS_CAP_HARDLINKS | CVFS_CAP_PERSISTENT | CVFS_CAP_SHARED | CVFS_CAP_XATTR |
		       CVFS_CAP_SPECIAL | CVFS_CAP_SPARSE | CVFS_CAP_THREADS;

	/* the first connection: checks the URL, credentials and the prefix */
	int err;
	redisContext *c = connect_one(s, &err, errmsg);
	if (!c) {
		r_free(&s->base);
		return err ? err : -EIO;
	}
	rc = check_format(s, c, errmsg);
	if (rc == 0) {
		redisReply *r = redisCommand(c, "INCR %bclients", PFX(s));
		if (!r || r->type != REDIS_REPLY_INTEGER) {
			rc = r ? map_err(NULL, 0, r) : map_err(c, errno, NULL);
			if (errmsg && asprintf(errmsg, "redis at %s: %s", s->where,
					       r && r->str ? r->str : c->errstr) < 0)
				*errmsg = NULL;
			if (rc == -EROFS && s->readonly)
				rc = 0; /* a read-only replica: no id needed, we publish nothing */
		} else {
			s->client_id = (ull)r->integer;
		}
		if (r)
			freeReplyObject(r);
	}
	if (rc) {
		redisFree(c);
		r_free(&s->base);
		return rc;
	}
	s->conns[0].c = c;
	*out = &s->base;
	return 0;
}
