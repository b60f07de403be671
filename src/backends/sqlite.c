/*
 * The SQLite store: the whole filesystem in one SQLite database file.
 *
 * Schema (see docs/sqlite.md for the user-facing description):
 *   meta(key, value)                       format, chunk size, creation time
 *   inodes(ino INTEGER PRIMARY KEY, ...)   every field of struct cvfs_attr
 *   dentries(parent, name BLOB, ino, type, cookie)
 *                                          PRIMARY KEY (parent, name), WITHOUT ROWID;
 *                                          index (parent, cookie, ino, type) lists a
 *                                          directory in cookie order (covering)
 *   chunks(ino, idx, data BLOB)            PRIMARY KEY (ino, idx); 64 KiB chunks,
 *                                          missing chunks are holes
 *   xattrs(ino, name, value BLOB)          PRIMARY KEY (ino, name), WITHOUT ROWID
 * PRAGMA application_id = 0x43564653 ("CVFS"), PRAGMA user_version = schema
 * version; migrate() upgrades older versions one step at a time.
 *
 * Concurrency: one connection, one mutex held from txn_begin to txn_end, so
 * transactions are serial (no CVFS_CAP_THREADS).  One mount per file: an
 * flock(2) on the database file itself (exclusive read-write, shared
 * read-only), taken at open and inherited across the daemon's fork.
 *
 * Fork: a SQLite connection must not be used across fork(), and its POSIX
 * locks do not survive one.  chuk-vfs-mount opens the store and then
 * daemonises (fork), so a pthread_atfork handler closes every connection
 * before a fork and each process reopens its own on the next transaction.
 *
 * Durability: WAL, synchronous=NORMAL: a commit survives a crash of this
 * process at once, and an OS crash or power loss once it has been synced
 * (fsync on any file, a checkpoint, or unmount).  sync() fsyncs the WAL.
 * Write operations are savepoints in a group committed within GROUP_NS.
 *
 * Speed: a write-through inode cache (ic_*), blob I/O straight into the
 * caller's buffer for reads, 16 KiB pages for new databases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "backends.h"
#include "cvfs/store.h"

#ifndef CVFS_VERSION
#define CVFS_VERSION "0.0.0"
#endif

#define APP_ID 0x43564653 /* "CVFS" */
#define SCHEMA_VERSION 2
#define DEFAULT_PATH "virtual_fs.db"
#define DEFAULT_CHUNK_SHIFT 16 /* 64 KiB */
/* The page size of new databases (older ones keep theirs: it cannot change in
 * WAL mode).  16 KiB: a 64 KiB chunk takes 5 pages instead of 17, so a
 * sequential write puts a quarter of the WAL frames through the WAL and the
 * checkpoints, and a cold read follows a quarter of the overflow chain; the
 * metadata tables are no slower (measured, docs/sqlite.md). */
#define NEW_PAGE_SIZE "16384"
/* The inode cache: ICACHE_SLOTS records, direct-mapped by inode number. */
#define ICACHE_BITS 15
#define ICACHE_SLOTS (1u << ICACHE_BITS)
#define ICACHE_UNDO 32

/* ---- the schema and its history ---- */

/* Version 1: the tables. */
static const char schema_v1[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE inodes("
	" ino INTEGER PRIMARY KEY,"
	" mode INTEGER NOT NULL, nlink INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	" size INTEGER NOT NULL, parent INTEGER NOT NULL, rdev INTEGER NOT NULL,"
	" generation INTEGER NOT NULL, flags INTEGER NOT NULL,"
	" atime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
	" ctime_ns INTEGER NOT NULL, btime_ns INTEGER NOT NULL);"
	"CREATE TABLE dentries("
	" parent INTEGER NOT NULL, name BLOB NOT NULL,"
	" ino INTEGER NOT NULL, type INTEGER NOT NULL, cookie INTEGER NOT NULL,"
	" PRIMARY KEY (parent, name)) WITHOUT ROWID;"
	"CREATE INDEX dentries_by_cookie ON dentries(parent, cookie, ino, type);"
	"CREATE TABLE chunks("
	" ino INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL,"
	" PRIMARY KEY (ino, idx));"
	"CREATE TABLE xattrs("
	" ino INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY (ino, name)) WITHOUT ROWID;";

/* Version 2: a partial index so orphans are found at open without a scan. */
static const char schema_v2[] = "CREATE INDEX inodes_orphans ON inodes(ino) WHERE nlink = 0;";

/* steps[v] upgrades version v to v + 1. */
static const char *const steps[SCHEMA_VERSION] = {schema_v1, schema_v2};

/* ---- statements, prepared once per connection ---- */

enum {
	Q_BEGIN_R, Q_BEGIN_W, Q_COMMIT, Q_ROLLBACK, Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO,
	Q_INO_GET, Q_INO_UPD, Q_INO_INS, Q_INO_DEL,
	Q_DENT_GET, Q_DENT_INS, Q_DENT_DEL, Q_DIR_LIST, Q_DIR_ANY,
	Q_CH_RANGE, Q_CH_GET, Q_CH_ROWID, Q_CH_PUT, Q_CH_DEL_FROM, Q_CH_DEL_RANGE, Q_CH_TRIM,
	Q_CH_DEL_INO,
	Q_X_GET, Q_X_PUT, Q_X_LIST, Q_X_DEL, Q_X_DEL_INO, Q_FREELIST,
	NQ
};

#define ATTR_COLS "mode, nlink, uid, gid, size, parent, rdev, generation, flags, " \
		  "atime_ns, mtime_ns, ctime_ns, btime_ns"

static const char *const sql[NQ] = {
	[Q_BEGIN_R] = "BEGIN",
	[Q_BEGIN_W] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT op",
	[Q_RELEASE] = "RELEASE op",
	[Q_ROLLBACK_TO] = "ROLLBACK TO op",
	[Q_INO_GET] = "SELECT " ATTR_COLS " FROM inodes WHERE ino = ?1",
	[Q_INO_UPD] = "UPDATE inodes SET mode = ?2, nlink = ?3, uid = ?4, gid = ?5, size = ?6, "
		      "parent = ?7, rdev = ?8, generation = ?9, flags = ?10, atime_ns = ?11, "
		      "mtime_ns = ?12, ctime_ns = ?13, btime_ns = ?14 WHERE ino = ?1",
	[Q_INO_INS] = "INSERT INTO inodes(ino, " ATTR_COLS ") "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[Q_INO_DEL] = "DELETE FROM inodes WHERE ino = ?1",
	[Q_DENT_GET] = "SELECT ino FROM dentries WHERE parent = ?1 AND name = ?2",
	/* a new name gets the cookie after the directory's last; an existing
	 * name keeps its cookie and is pointed at ino */
	[Q_DENT_INS] = "INSERT INTO dentries(parent, name, ino, type, cookie) "
		       "VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(cookie), 0) + 1 "
		       "FROM dentries WHERE parent = ?1)) "
		       "ON CONFLICT(parent, name) DO UPDATE SET ino = excluded.ino, "
		       "type = excluded.type",
	[Q_DENT_DEL] = "DELETE FROM dentries WHERE parent = ?1 AND name = ?2",
	[Q_DIR_LIST] = "SELECT name, ino, type, cookie FROM dentries "
		       "WHERE parent = ?1 AND cookie > ?2 ORDER BY cookie",
	[Q_DIR_ANY] = "SELECT 1 FROM dentries WHERE parent = ?1 LIMIT 1",
	/* length(data) does not load the blob: sq_read copies it with blob I/O */
	[Q_CH_RANGE] = "SELECT idx, rowid, length(data) FROM chunks "
		       "WHERE ino = ?1 AND idx >= ?2 AND idx <= ?3 ORDER BY idx",
	[Q_CH_GET] = "SELECT data FROM chunks WHERE ino = ?1 AND idx = ?2",
	[Q_CH_ROWID] = "SELECT rowid, length(data) FROM chunks WHERE ino = ?1 AND idx = ?2",
	[Q_CH_PUT] = "INSERT INTO chunks(ino, idx, data) VALUES (?1, ?2, ?3) "
		     "ON CONFLICT(ino, idx) DO UPDATE SET data = excluded.data",
	[Q_CH_DEL_FROM] = "DELETE FROM chunks WHERE ino = ?1 AND idx >= ?2",
	[Q_CH_DEL_RANGE] = "DELETE FROM chunks WHERE ino = ?1 AND idx >= ?2 AND idx < ?3",
	[Q_CH_TRIM] = "UPDATE chunks SET data = substr(data, 1, ?3) "
		      "WHERE ino = ?1 AND idx = ?2 AND length(data) > ?3",
	[Q_CH_DEL_INO] = "DELETE FROM chunks WHERE ino = ?1",
	[Q_X_GET] = "SELECT value FROM xattrs WHERE ino = ?1 AND name = ?2",
	[Q_X_PUT] = "INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES (?1, ?2, ?3)",
	[Q_X_LIST] = "SELECT name FROM xattrs WHERE ino = ?1 ORDER BY name",
	[Q_X_DEL] = "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2",
	[Q_X_DEL_INO] = "DELETE FROM xattrs WHERE ino = ?1",
	[Q_FREELIST] = "PRAGMA freelist_count",
};

struct sq_store {
	struct cvfs_store base;
	pthread_mutex_t lock; /* held from txn_begin to txn_end; guards all below */
	sqlite3 *db;          /* NULL after a fork until the next transaction */
	sqlite3_stmt *q[NQ];
	char *path;           /* absolute */
	int ro;
	int immutable;        /* read-only media: opened with immutable=1 */
	int lockfd;           /* holds the flock */
	unsigned cshift;
	uint32_t csize;
	unsigned char *buf;   /* one chunk of scratch */
	uint64_t next_ino;
	uint64_t alloc_ino;   /* handed out by ino_alloc, not stored yet (or 0) */
	int64_t inode_delta;  /* inodes added in the open transaction */
	int saw_full;         /* the open transaction hit SQLITE_FULL */
	int ckpt_recheck;     /* WAL frames at which wal_hook looks again */
	uint64_t page_size;
	uint64_t host_free;   /* statvfs of the host filesystem, cached ... */
	struct timespec host_when; /* ... as of then */
	uint64_t reserve;     /* bytes kept free on the host filesystem (see space_ok) */
	_Atomic uint64_t ninodes;
	struct sq_store *next; /* the list of open stores, for the fork handler */
	/* Group commit (see sq_txn_begin).  Under lock. */
	int group;            /* a write transaction holds finished operations */
	int op_write;         /* the running operation is a savepoint in it */
	unsigned group_ops;
	int commit_err;       /* a group commit failed: told at the next sync */
	pthread_cond_t wake;  /* the committer waits for a group */
	pthread_t committer;
	unsigned committer_gen; /* == proc_gen: this process runs the committer */
	int stop;
	/* Inode cache (see ic_slot).  Under lock. */
	struct cvfs_attr *icache;
	uint64_t touched[ICACHE_UNDO]; /* slots the running write operation filled */
	unsigned ntouched;             /* > ICACHE_UNDO: too many, drop them all */
};

/* A group is committed at most this long after its first operation. */
#define GROUP_NS 3000000
#define GROUP_MAX_OPS 512
/* The WAL is checkpointed once it holds this much (see wal_hook). */
#ifndef WAL_CKPT_BYTES
#define WAL_CKPT_BYTES (32ull << 20)
#endif

static inline struct sq_store *sq(struct cvfs_store *st)
{
	return (struct sq_store *)st;
}

static const unsigned char zeros[1u << 16];

/* ---- messages and errors ---- */

static void set_err(char **errmsg, const char *fmt, ...)
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

static void logmsg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "chuk-vfs sqlite store: %s\n", line);
	syslog(LOG_ERR, "chuk-vfs sqlite store: %s", line);
}

/* The one place SQLite result codes become errno values. */
static int sq_errno(struct sq_store *s, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY; /* busy_timeout already waited */
	case SQLITE_FULL:
		s->saw_full = 1;
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		logmsg("%s: the database is damaged (%s during %s); check it with: "
		       "sqlite3 '%s' 'PRAGMA integrity_check'",
		       s->path, sqlite3_errstr(rc), what, s->path);
		return -EIO;
	case SQLITE_IOERR: {
		int e = s->db ? sqlite3_system_errno(s->db) : 0;
		if (e == ENOSPC || e == EDQUOT) {
			s->saw_full = 1;
			return -e;
		}
		if (rc == SQLITE_IOERR_NOMEM)
			return -ENOMEM;
		logmsg("%s: I/O error during %s: %s (%s)", s->path, what,
		       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), e ? strerror(e) : "-");
		return -EIO;
	}
	default:
		logmsg("%s: %s failed: %s", s->path, what,
		       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		return -EIO;
	}
}

/* Steps a statement that returns no rows, resets it; 0 or -errno. */
static int run(struct sq_store *s, int id)
{
	sqlite3_stmt *q = s->q[id];
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_errno(s, rc, sql[id]);
}

/* Runs SQL text (no rows wanted); 0 or an SQLite code with the message in *err. */
static int exec(sqlite3 *db, const char *text, char **errmsg, const char *path)
{
	char *e = NULL;
	int rc = sqlite3_exec(db, text, NULL, NULL, &e);
	if (rc != SQLITE_OK)
		set_err(errmsg, "%s: %s: %s", path, text, e ? e : sqlite3_errstr(rc));
	sqlite3_free(e);
	return rc;
}

/* One integer from a query (0 when it returns no row). */
static int query_i64(sqlite3 *db, const char *text, int64_t *out)
{
	sqlite3_stmt *q;
	*out = 0;
	int rc = sqlite3_prepare_v2(db, text, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(q, 0);
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	sqlite3_finalize(q);
	return rc;
}

/* ---- connections ---- */

static void disconnect(struct sq_store *s)
{
	if (!s->db)
		return;
	for (int i = 0; i < NQ; i++) {
		sqlite3_finalize(s->q[i]);
		s->q[i] = NULL;
	}
	sqlite3_close(s->db);
	s->db = NULL;
}

static int open_db(struct sq_store *s, int ro, sqlite3 **out, char **errmsg)
{
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
	flags |= ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	char *name = NULL;
	if (s->immutable) {
		/* file: URI; the path needs % ? # escaped */
		size_t n = strlen(s->path);
		name = malloc(n * 3 + 32);
		if (!name)
			return SQLITE_NOMEM;
		char *p = stpcpy(name, "file:");
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s->path[i];
			if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f)
				p += sprintf(p, "%%%02X", c);
			else
				*p++ = (char)c;
		}
		strcpy(p, "?immutable=1");
	}
	int rc = sqlite3_open_v2(name ? name : s->path, out, flags, NULL);
	free(name);
	if (rc != SQLITE_OK) {
		set_err(errmsg, "%s: cannot open: %s", s->path,
			*out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
		sqlite3_close(*out);
		*out = NULL;
		return rc;
	}
	sqlite3_extended_result_codes(*out, 1);
	sqlite3_busy_timeout(*out, 5000);
	return SQLITE_OK;
}

/* Checkpoints, in place of SQLite's wal_autocheckpoint: when the WAL holds
 * WAL_CKPT_BYTES of pages, or a quarter of the free space of the filesystem
 * if that is less.  A WAL that outgrew the free space could never be copied
 * into the database again, and the disk would stay full even for deletes. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_store *s = arg;
	if (frames < s->ckpt_recheck)
		return SQLITE_OK;
	uint64_t pg = s->page_size ? s->page_size : 4096;
	int64_t limit = (int64_t)(WAL_CKPT_BYTES / pg);
	struct statvfs v;
	if (statvfs(s->path, &v) == 0) {
		int64_t quarter = (int64_t)((uint64_t)v.f_bavail * v.f_frsize / pg / 4);
		if (quarter < limit)
			limit = quarter;
	}
	if (frames >= limit) {
		int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		s->ckpt_recheck = rc == SQLITE_OK ? 64 : frames + 256;
	} else {
		s->ckpt_recheck = frames + 64 < (int)limit ? frames + 64 : (int)limit;
	}
	return SQLITE_OK;
}

/* Opens this process's connection: pragmas and the prepared statements. */
static int connect_db(struct sq_store *s, char **errmsg)
{
	if (s->db)
		return 0;
	sqlite3 *db;
	int rc = open_db(s, s->ro, &db, errmsg);
	if (rc != SQLITE_OK)
		return sq_errno(s, rc, "open");
	s->db = db;
	rc = exec(db,
		  s->ro ? "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"
			  "PRAGMA temp_store = MEMORY;"
			: "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			  "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;"
			  "PRAGMA journal_size_limit = 67108864; PRAGMA secure_delete = FAST;",
		  errmsg, s->path);
	if (!s->ro) {
		s->ckpt_recheck = 64;
		sqlite3_wal_hook(db, wal_hook, s);
	}
	for (int i = 0; rc == SQLITE_OK && i < NQ; i++) {
		rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
		if (rc != SQLITE_OK)
			set_err(errmsg, "%s: preparing \"%s\": %s", s->path, sql[i],
				sqlite3_errmsg(db));
	}
	if (rc != SQLITE_OK) {
		int e = sq_errno(s, rc, "connect");
		disconnect(s);
		return e;
	}
	return 0;
}

/* ---- the inode cache ----
 *
 * A write-through copy of recently used rows of `inodes`, so that the
 * lookups every operation makes (the inode, its parent) cost no SQL.  The
 * store is the only writer of the file (flock), so a record only changes
 * through inode_put/inode_del, which update the cache too.  What a cache slot
 * holds must match the database as the running operation sees it: when an
 * operation is rolled back to its savepoint, the slots it filled are dropped;
 * when a whole group is rolled back (a failed commit), everything is. */

static inline struct cvfs_attr *ic_slot(struct sq_store *s, uint64_t ino)
{
	return &s->icache[(ino * 0x9E3779B97F4A7C15ull) >> (64 - ICACHE_BITS)];
}

static void ic_clear(struct sq_store *s)
{
	if (s->icache)
		memset(s->icache, 0, sizeof(*s->icache) * ICACHE_SLOTS);
	s->ntouched = 0;
}

/* Remembers that the running write operation changed ino's slot. */
static void ic_touch(struct sq_store *s, uint64_t ino)
{
	if (!s->op_write)
		return;
	if (s->ntouched < ICACHE_UNDO)
		s->touched[s->ntouched] = ino;
	if (s->ntouched <= ICACHE_UNDO)
		s->ntouched++;
}

static void ic_put(struct sq_store *s, const struct cvfs_attr *a)
{
	if (!s->icache)
		return;
	ic_touch(s, a->ino);
	*ic_slot(s, a->ino) = *a;
}

static void ic_drop(struct sq_store *s, uint64_t ino)
{
	if (!s->icache)
		return;
	struct cvfs_attr *c = ic_slot(s, ino);
	if (c->ino == ino)
		c->ino = 0;
}

/* The running operation was rolled back: forget what it cached. */
static void ic_undo(struct sq_store *s)
{
	if (s->ntouched > ICACHE_UNDO) {
		ic_clear(s);
		return;
	}
	for (unsigned i = 0; i < s->ntouched; i++)
		ic_drop(s, s->touched[i]);
	s->ntouched = 0;
}

static int group_commit(struct sq_store *s);

/* Every open store, so a fork can close their connections first. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sq_store *reg_head;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
/* Counts forks (in the child), so a store knows whether its committer thread
 * belongs to this process without a getpid() per operation.  Starts at 1: a
 * committer_gen of 0 is "none". */
static unsigned proc_gen = 1;

static void fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (struct sq_store *s = reg_head; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		if (s->db)
			group_commit(s);
		disconnect(s);
	}
}

static void fork_parent(void)
{
	for (struct sq_store *s = reg_head; s; s = s->next)
		pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&reg_lock);
}

/* The child has none of the parent's threads.  The committer's condition
 * variable may still count the parent's committer as a waiter, and then the
 * child's first pthread_cond_signal would wait for it forever: start it over. */
static void fork_child(void)
{
	proc_gen++;
	for (struct sq_store *s = reg_head; s; s = s->next) {
		pthread_cond_init(&s->wake, NULL);
		s->stop = 0;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&reg_lock);
}

static void fork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- transactions ----
 *
 * Group commit.  Each write operation of the core is a SAVEPOINT inside one
 * SQLite write transaction that stays open for at most GROUP_NS (or
 * GROUP_MAX_OPS operations): an operation that fails rolls back to its
 * savepoint, so every operation is still all-or-nothing, and a crash loses
 * whole operations only — the last few milliseconds of those not fsynced.
 * A committer thread commits the group; sync (fsync on the mount), a fork
 * and close commit at once.  One commit then writes each touched page once
 * for many operations, instead of once per operation.  Read transactions
 * run inside the open group (they see its changes) or on their own.
 */

static int group_commit(struct sq_store *s)
{
	if (!s->group)
		return 0;
	int rc = run(s, Q_COMMIT);
	if (rc) {
		if (!sqlite3_get_autocommit(s->db))
			run(s, Q_ROLLBACK);
		ic_clear(s); /* it may hold records of the lost group */
		s->commit_err = rc;
		logmsg("%s: a group of %u operations could not be committed: %s", s->path,
		       s->group_ops, strerror(-rc));
	}
	s->group = 0;
	s->group_ops = 0;
	if (s->saw_full) {
		/* Let the WAL start over, so its (allocated) space is reused. */
		s->saw_full = 0;
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	}
	return rc;
}

static void *committer_main(void *arg)
{
	struct sq_store *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		if (!s->group) {
			pthread_cond_wait(&s->wake, &s->lock);
			continue;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += GROUP_NS;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
			;
		if (s->db)
			group_commit(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Under lock: a committer thread of this process, started on first need. */
static int committer_running(struct sq_store *s)
{
	if (s->committer_gen == proc_gen)
		return 1;
	s->stop = 0;
	if (pthread_create(&s->committer, NULL, committer_main, s) != 0)
		return 0;
	s->committer_gen = proc_gen;
	return 1;
}

/* The host filesystem has less than 64 MiB above four reserves left (as of
 * the last statvfs of free_bytes). */
static int near_full(const struct sq_store *s)
{
	return s->host_free < 4 * s->reserve + (64u << 20);
}

static int sq_txn_begin(struct cvfs_store *st, int write)
{
	struct sq_store *s = sq(st);
	pthread_mutex_lock(&s->lock);
	int rc = connect_db(s, NULL);
	if (rc == 0 && write && !s->ro) {
		if (!s->group) {
			rc = run(s, Q_BEGIN_W);
			if (rc == 0) {
				s->group = 1;
				pthread_cond_signal(&s->wake);
			}
		}
		if (rc == 0)
			rc = run(s, Q_SAVEPOINT);
		s->op_write = rc == 0;
	} else if (rc == 0 && !s->group) {
		rc = run(s, Q_BEGIN_R);
	}
	if (rc) {
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	s->inode_delta = 0;
	s->ntouched = 0;
	return 0;
}

static int sq_txn_end(struct cvfs_store *st, int commit)
{
	struct sq_store *s = sq(st);
	int rc = 0;
	if (s->op_write) {
		s->op_write = 0;
		if (commit)
			rc = run(s, Q_RELEASE);
		if (!commit || rc) {
			if (run(s, Q_ROLLBACK_TO) != 0)
				ic_clear(s);
			else
				ic_undo(s);
			run(s, Q_RELEASE);
		}
		if (commit && rc == 0) {
			if (s->inode_delta)
				atomic_fetch_add(&s->ninodes, (uint64_t)s->inode_delta);
			s->group_ops++;
		}
		/* Near a full disk, every operation commits at once: the WAL
		 * then never holds more than wal_hook allows, so it can always be
		 * checkpointed (see space_ok). */
		if (s->saw_full || s->group_ops >= GROUP_MAX_OPS || near_full(s) ||
		    !committer_running(s)) {
			int crc = group_commit(s);
			if (rc == 0)
				rc = crc;
		}
	} else if (!s->group) {
		/* a read transaction of its own */
		if (commit)
			rc = run(s, Q_COMMIT);
		if ((!commit || rc) && !sqlite3_get_autocommit(s->db))
			run(s, Q_ROLLBACK);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- inodes ---- */

static int space_ok(struct sq_store *s, uint64_t need);

static int sq_ino_alloc(struct cvfs_store *st, uint64_t *ino)
{
	struct sq_store *s = sq(st);
	*ino = s->alloc_ino = s->next_ino++;
	return 0;
}

static int sq_inode_get(struct cvfs_store *st, uint64_t ino, struct cvfs_attr *a)
{
	struct sq_store *s = sq(st);
	if (s->icache) {
		const struct cvfs_attr *c = ic_slot(s, ino);
		if (c->ino == ino && ino) {
			*a = *c;
			return 0;
		}
	}
	sqlite3_stmt *q = s->q[Q_INO_GET];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	int rc = sqlite3_step(q);
	int r;
	if (rc == SQLITE_ROW) {
		a->ino = ino;
		a->mode = (uint32_t)sqlite3_column_int64(q, 0);
		a->nlink = (uint32_t)sqlite3_column_int64(q, 1);
		a->uid = (uint32_t)sqlite3_column_int64(q, 2);
		a->gid = (uint32_t)sqlite3_column_int64(q, 3);
		a->size = (uint64_t)sqlite3_column_int64(q, 4);
		a->parent = (uint64_t)sqlite3_column_int64(q, 5);
		a->rdev = (uint64_t)sqlite3_column_int64(q, 6);
		a->generation = (uint64_t)sqlite3_column_int64(q, 7);
		a->flags = (uint32_t)sqlite3_column_int64(q, 8);
		a->atime_ns = sqlite3_column_int64(q, 9);
		a->mtime_ns = sqlite3_column_int64(q, 10);
		a->ctime_ns = sqlite3_column_int64(q, 11);
		a->btime_ns = sqlite3_column_int64(q, 12);
		r = 0;
		ic_put(s, a);
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sq_errno(s, rc, "inode_get");
	}
	sqlite3_reset(q);
	return r;
}

static void bind_attr(sqlite3_stmt *q, const struct cvfs_attr *a)
{
	sqlite3_bind_int64(q, 1, (int64_t)a->ino);
	sqlite3_bind_int64(q, 2, a->mode);
	sqlite3_bind_int64(q, 3, a->nlink);
	sqlite3_bind_int64(q, 4, a->uid);
	sqlite3_bind_int64(q, 5, a->gid);
	sqlite3_bind_int64(q, 6, (int64_t)a->size);
	sqlite3_bind_int64(q, 7, (int64_t)a->parent);
	sqlite3_bind_int64(q, 8, (int64_t)a->rdev);
	sqlite3_bind_int64(q, 9, (int64_t)a->generation);
	sqlite3_bind_int64(q, 10, a->flags);
	sqlite3_bind_int64(q, 11, a->atime_ns);
	sqlite3_bind_int64(q, 12, a->mtime_ns);
	sqlite3_bind_int64(q, 13, a->ctime_ns);
	sqlite3_bind_int64(q, 14, a->btime_ns);
}

static int sq_inode_put(struct cvfs_store *st, const struct cvfs_attr *a)
{
	struct sq_store *s = sq(st);
	if (a->ino == 0 || a->ino > INT64_MAX)
		return -EINVAL;
	const struct cvfs_attr *c = s->icache ? ic_slot(s, a->ino) : NULL;
	int known = c && c->ino == a->ino; /* the row exists */
	if (known && memcmp(c, a, sizeof(*a)) == 0)
		return 0; /* unchanged */
	int rc;
	if (known || a->ino != s->alloc_ino) {
		bind_attr(s->q[Q_INO_UPD], a);
		rc = run(s, Q_INO_UPD);
		if (rc == 0 && sqlite3_changes(s->db) > 0) {
			ic_put(s, a);
			return 0;
		}
		if (rc)
			return rc;
	}
	/* A new record.  (A number just handed out by ino_alloc was never
	 * stored, so the UPDATE would find nothing: skipped.) */
	rc = space_ok(s, 4096);
	if (rc)
		return rc;
	bind_attr(s->q[Q_INO_INS], a);
	rc = run(s, Q_INO_INS);
	if (rc == 0) {
		s->inode_delta++;
		if (a->ino >= s->next_ino)
			s->next_ino = a->ino + 1;
		if (a->ino == s->alloc_ino)
			s->alloc_ino = 0;
		ic_put(s, a);
	}
	return rc;
}

static int sq_inode_del(struct cvfs_store *st, uint64_t ino)
{
	struct sq_store *s = sq(st);
	sqlite3_bind_int64(s->q[Q_CH_DEL_INO], 1, (int64_t)ino);
	sqlite3_bind_int64(s->q[Q_X_DEL_INO], 1, (int64_t)ino);
	sqlite3_bind_int64(s->q[Q_INO_DEL], 1, (int64_t)ino);
	int rc = run(s, Q_CH_DEL_INO);
	if (rc == 0)
		rc = run(s, Q_X_DEL_INO);
	if (rc == 0)
		rc = run(s, Q_INO_DEL);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = -ENOENT;
	if (rc == 0)
		s->inode_delta--;
	ic_drop(s, ino);
	return rc;
}

/* ---- directory entries ---- */

static int sq_dent_get(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		       uint64_t *ino)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_DENT_GET];
	sqlite3_bind_int64(q, 1, (int64_t)dir);
	sqlite3_bind_blob(q, 2, name, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	int r;
	if (rc == SQLITE_ROW) {
		*ino = (uint64_t)sqlite3_column_int64(q, 0);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sq_errno(s, rc, "dent_get");
	}
	sqlite3_reset(q);
	return r;
}

static int sq_dent_put(struct cvfs_store *st, uint64_t dir, const char *name, size_t len,
		       uint64_t ino, uint32_t type)
{
	struct sq_store *s = sq(st);
	if (len == 0 || len > CVFS_NAME_MAX)
		return -ENAMETOOLONG;
	sqlite3_stmt *q = s->q[Q_DENT_INS];
	sqlite3_bind_int64(q, 1, (int64_t)dir);
	sqlite3_bind_blob(q, 2, name, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (int64_t)ino);
	sqlite3_bind_int64(q, 4, type);
	return run(s, Q_DENT_INS);
}

static int sq_dent_del(struct cvfs_store *st, uint64_t dir, const char *name, size_t len)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_DENT_DEL];
	sqlite3_bind_int64(q, 1, (int64_t)dir);
	sqlite3_bind_blob(q, 2, name, (int)len, SQLITE_STATIC);
	int rc = run(s, Q_DENT_DEL);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = -ENOENT;
	return rc;
}

static int sq_dir_list(struct cvfs_store *st, uint64_t dir, uint64_t cookie, cvfs_dirent_cb cb,
		       void *arg)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_DIR_LIST];
	sqlite3_bind_int64(q, 1, (int64_t)dir);
	sqlite3_bind_int64(q, 2, (int64_t)cookie);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct cvfs_dirent e;
		e.name = sqlite3_column_blob(q, 0);
		e.namelen = (size_t)sqlite3_column_bytes(q, 0);
		e.ino = (uint64_t)sqlite3_column_int64(q, 1);
		e.type = (uint32_t)sqlite3_column_int64(q, 2);
		e.cookie = (uint64_t)sqlite3_column_int64(q, 3);
		if (cb(arg, &e)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : sq_errno(s, rc, "dir_list");
}

static int sq_dir_empty(struct cvfs_store *st, uint64_t dir)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_DIR_ANY];
	sqlite3_bind_int64(q, 1, (int64_t)dir);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? 1 : sq_errno(s, rc, "dir_empty");
}

/* ---- space ---- */

/* Free bytes: the host filesystem's plus the database's own free pages
 * (reused before the file grows).  Inside a transaction. */
static uint64_t free_bytes(struct sq_store *s)
{
	/* statvfs at most every 50 ms while far from full */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	int64_t age_ms = (now.tv_sec - s->host_when.tv_sec) * 1000 +
			 (now.tv_nsec - s->host_when.tv_nsec) / 1000000;
	if (age_ms > 50 || age_ms < 0 || s->host_free < 4 * s->reserve) {
		struct statvfs v;
		s->host_free = statvfs(s->path, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : 0;
		s->host_when = now;
	}
	uint64_t host = s->host_free;
	if (host >= 4 * s->reserve + (64u << 20))
		return host; /* plenty: skip the free-page count */
	sqlite3_stmt *q = s->q[Q_FREELIST];
	uint64_t pages = 0;
	if (sqlite3_step(q) == SQLITE_ROW)
		pages = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return host + pages * s->page_size;
}

/* Writes that make the database grow stop `reserve` bytes short of a full
 * disk, so the WAL can still be copied into the database (a checkpoint) and
 * deletes, which need a little WAL, still work: a disk filled to the last
 * byte could never be freed again.  0 or -ENOSPC. */
static int space_ok(struct sq_store *s, uint64_t need)
{
	uint64_t want = need + need / 8;
	if (free_bytes(s) < s->reserve + want)
		return -ENOSPC;
	/* count it against the cached figure until the next statvfs */
	s->host_free = s->host_free > want ? s->host_free - want : 0;
	return 0;
}

/* ---- data ---- */

/* Bytes [off, off+len): the chunks in range are found by one query, and
 * each is copied straight from its pages into buf with one blob handle moved
 * from row to row (sqlite3_column_blob would first assemble the whole chunk
 * in a buffer of its own, for a 4 KiB read too). */
static ssize_t sq_read(struct cvfs_store *st, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct sq_store *s = sq(st);
	if (len == 0)
		return 0;
	unsigned char *dst = buf;
	uint64_t end = off + len;
	sqlite3_stmt *q = s->q[Q_CH_RANGE];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_int64(q, 2, (int64_t)(off >> s->cshift));
	sqlite3_bind_int64(q, 3, (int64_t)((end - 1) >> s->cshift));
	uint64_t filled = off; /* bytes before this offset are in buf */
	sqlite3_blob *b = NULL;
	int rc, brc = SQLITE_OK;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		uint64_t base = (uint64_t)sqlite3_column_int64(q, 0) << s->cshift;
		int64_t rowid = sqlite3_column_int64(q, 1);
		uint64_t dlen = (uint64_t)sqlite3_column_int64(q, 2);
		if (dlen > s->csize)
			dlen = s->csize;
		uint64_t lo = base > off ? base : off;
		uint64_t hi = base + dlen < end ? base + dlen : end;
		if (lo > filled)
			memset(dst + (filled - off), 0, lo - filled);
		if (hi > lo) {
			brc = b ? sqlite3_blob_reopen(b, rowid)
				: sqlite3_blob_open(s->db, "main", "chunks", "data", rowid, 0, &b);
			if (brc == SQLITE_OK)
				brc = sqlite3_blob_read(b, dst + (lo - off), (int)(hi - lo),
							(int)(lo - base));
			if (brc != SQLITE_OK)
				break;
			filled = hi;
		} else if (lo > filled) {
			filled = lo;
		}
	}
	sqlite3_reset(q);
	if (b)
		sqlite3_blob_close(b);
	if (brc != SQLITE_OK)
		return sq_errno(s, brc, "read");
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_errno(s, rc, "read");
	if (filled < end)
		memset(dst + (filled - off), 0, end - filled);
	return (ssize_t)len;
}

static int put_chunk(struct sq_store *s, uint64_t ino, uint64_t idx, const void *data, size_t n)
{
	sqlite3_stmt *q = s->q[Q_CH_PUT];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_int64(q, 2, (int64_t)idx);
	sqlite3_bind_blob(q, 3, data, (int)n, SQLITE_STATIC);
	return run(s, Q_CH_PUT);
}

/* rowid and stored length of chunk idx; -ENOENT if it is a hole. */
static int chunk_rowid(struct sq_store *s, uint64_t ino, uint64_t idx, int64_t *rowid,
		       uint32_t *blen)
{
	sqlite3_stmt *q = s->q[Q_CH_ROWID];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_int64(q, 2, (int64_t)idx);
	int rc = sqlite3_step(q);
	int r = 0;
	if (rc == SQLITE_ROW) {
		*rowid = sqlite3_column_int64(q, 0);
		*blen = (uint32_t)sqlite3_column_int64(q, 1);
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sq_errno(s, rc, "chunk lookup");
	}
	sqlite3_reset(q);
	return r;
}

/* Overwrites bytes inside a chunk's stored length: only the pages touched. */
static int blob_patch(struct sq_store *s, int64_t rowid, const void *data, uint32_t n, uint32_t at)
{
	sqlite3_blob *b;
	int rc = sqlite3_blob_open(s->db, "main", "chunks", "data", rowid, 1, &b);
	if (rc == SQLITE_OK) {
		rc = sqlite3_blob_write(b, data, (int)n, (int)at);
		int rc2 = sqlite3_blob_close(b);
		if (rc == SQLITE_OK)
			rc = rc2;
	}
	return rc == SQLITE_OK ? 0 : sq_errno(s, rc, "blob write");
}

/* Writes n bytes at in within chunk idx (a partial chunk). */
static int write_part(struct sq_store *s, uint64_t ino, uint64_t idx, const unsigned char *src,
		      uint32_t n, uint32_t in)
{
	int64_t rowid;
	uint32_t blen = 0;
	int rc = chunk_rowid(s, ino, idx, &rowid, &blen);
	if (rc && rc != -ENOENT)
		return rc;
	if (rc == 0 && in + n <= blen)
		return blob_patch(s, rowid, src, n, in);
	/* The chunk grows (or is new): rewrite it whole. */
	uint32_t have = 0;
	if (rc == 0 && blen) {
		sqlite3_stmt *q = s->q[Q_CH_GET];
		sqlite3_bind_int64(q, 1, (int64_t)ino);
		sqlite3_bind_int64(q, 2, (int64_t)idx);
		int r = sqlite3_step(q);
		if (r == SQLITE_ROW) {
			have = (uint32_t)sqlite3_column_bytes(q, 0);
			if (have > in)
				have = in; /* the rest is overwritten */
			if (have)
				memcpy(s->buf, sqlite3_column_blob(q, 0), have);
		}
		sqlite3_reset(q);
		if (r != SQLITE_ROW && r != SQLITE_DONE)
			return sq_errno(s, r, "read chunk");
	}
	if (in > have)
		memset(s->buf + have, 0, in - have);
	memcpy(s->buf + in, src, n);
	return put_chunk(s, ino, idx, s->buf, in + n);
}

static ssize_t sq_write(struct cvfs_store *st, uint64_t ino, const void *buf, size_t len,
			uint64_t off)
{
	struct sq_store *s = sq(st);
	const unsigned char *src = buf;
	size_t done = 0;
	if (off + len < off || off + len > (uint64_t)INT64_MAX)
		return -EFBIG;
	int sp = space_ok(s, len);
	if (sp)
		return sp;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t idx = pos >> s->cshift;
		uint32_t in = (uint32_t)(pos & (s->csize - 1));
		size_t n = s->csize - in;
		if (n > len - done)
			n = len - done;
		int rc;
		if (in == 0 && n == s->csize)
			rc = put_chunk(s, ino, idx, src + done, n);
		else
			rc = write_part(s, ino, idx, src + done, (uint32_t)n, in);
		if (rc)
			return rc; /* the transaction is rolled back: all or nothing */
		done += n;
	}
	return (ssize_t)len;
}

/* Cuts chunk idx's stored data to keep bytes. */
static int trim_chunk(struct sq_store *s, uint64_t ino, uint64_t idx, uint32_t keep)
{
	sqlite3_stmt *q = s->q[Q_CH_TRIM];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_int64(q, 2, (int64_t)idx);
	sqlite3_bind_int64(q, 3, keep);
	return run(s, Q_CH_TRIM);
}

static int del_chunks(struct sq_store *s, uint64_t ino, uint64_t first, uint64_t last)
{
	sqlite3_stmt *q = s->q[Q_CH_DEL_RANGE];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_int64(q, 2, (int64_t)first);
	sqlite3_bind_int64(q, 3, (int64_t)last);
	return run(s, Q_CH_DEL_RANGE);
}

static int sq_truncate(struct cvfs_store *st, uint64_t ino, uint64_t size)
{
	struct sq_store *s = sq(st);
	uint64_t first = (size + s->csize - 1) >> s->cshift;
	if (first > (uint64_t)INT64_MAX)
		return 0;
	sqlite3_stmt *q = s->q[Q_CH_DEL_FROM];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_int64(q, 2, (int64_t)first);
	int rc = run(s, Q_CH_DEL_FROM);
	uint32_t in = (uint32_t)(size & (s->csize - 1));
	if (rc == 0 && in)
		rc = trim_chunk(s, ino, size >> s->cshift, in);
	return rc;
}

/* Zeros [in, in+n) of chunk idx, a part of one chunk. */
static int zero_part(struct sq_store *s, uint64_t ino, uint64_t idx, uint32_t in, uint32_t n)
{
	int64_t rowid;
	uint32_t blen;
	int rc = chunk_rowid(s, ino, idx, &rowid, &blen);
	if (rc == -ENOENT || (rc == 0 && blen <= in))
		return 0; /* a hole already */
	if (rc)
		return rc;
	if (in + n >= blen)
		return in ? trim_chunk(s, ino, idx, in) : del_chunks(s, ino, idx, idx + 1);
	return blob_patch(s, rowid, zeros, n, in);
}

static int sq_punch(struct cvfs_store *st, uint64_t ino, uint64_t off, uint64_t len)
{
	struct sq_store *s = sq(st);
	uint64_t end = off + len;
	if (len == 0)
		return 0;
	if (end < off || end > (uint64_t)INT64_MAX)
		end = (uint64_t)INT64_MAX;
	uint64_t first = (off + s->csize - 1) >> s->cshift; /* first whole chunk */
	uint64_t last = end >> s->cshift;                   /* after the last whole chunk */
	int rc = 0;
	if (first < last)
		rc = del_chunks(s, ino, first, last);
	if (rc)
		return rc;
	if (first > last) { /* inside one chunk */
		return zero_part(s, ino, off >> s->cshift, (uint32_t)(off & (s->csize - 1)),
				 (uint32_t)len);
	}
	if (off < (first << s->cshift))
		rc = zero_part(s, ino, off >> s->cshift, (uint32_t)(off & (s->csize - 1)),
			       (uint32_t)((first << s->cshift) - off));
	if (rc == 0 && end > (last << s->cshift))
		rc = zero_part(s, ino, last, 0, (uint32_t)(end - (last << s->cshift)));
	return rc;
}

/* ---- xattrs ---- */

static ssize_t sq_getx(struct cvfs_store *st, uint64_t ino, const char *name, void *val, size_t size)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_X_GET];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	ssize_t r;
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		if (size == 0) {
			r = (ssize_t)n;
		} else if (size < n) {
			r = -ERANGE;
		} else {
			if (n)
				memcpy(val, sqlite3_column_blob(q, 0), n);
			r = (ssize_t)n;
		}
	} else {
		r = rc == SQLITE_DONE ? -ENODATA : sq_errno(s, rc, "getxattr");
	}
	sqlite3_reset(q);
	return r;
}

static int sq_setx(struct cvfs_store *st, uint64_t ino, const char *name, const void *val,
		   size_t size, int flags)
{
	struct sq_store *s = sq(st);
	if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
		ssize_t n = sq_getx(st, ino, name, NULL, 0);
		if (n < 0 && n != -ENODATA)
			return (int)n;
		if (n >= 0 && (flags & XATTR_CREATE))
			return -EEXIST;
		if (n == -ENODATA && (flags & XATTR_REPLACE))
			return -ENODATA;
	}
	int sp = space_ok(s, size);
	if (sp)
		return sp;
	sqlite3_stmt *q = s->q[Q_X_PUT];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	/* a zero-length blob, not NULL, for an empty value */
	sqlite3_bind_blob(q, 3, size ? val : "", (int)size, SQLITE_STATIC);
	return run(s, Q_X_PUT);
}

static ssize_t sq_listx(struct cvfs_store *st, uint64_t ino, char *list, size_t size)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_X_LIST];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	size_t need = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(q, 0);
		size_t l = (size_t)sqlite3_column_bytes(q, 0) + 1;
		if (size && need + l <= size)
			memcpy(list + need, n, l);
		need += l;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return sq_errno(s, rc, "listxattr");
	if (size && size < need)
		return -ERANGE;
	return (ssize_t)need;
}

static int sq_removex(struct cvfs_store *st, uint64_t ino, const char *name)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->q[Q_X_DEL];
	sqlite3_bind_int64(q, 1, (int64_t)ino);
	sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	int rc = run(s, Q_X_DEL);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = -ENODATA;
	return rc;
}

/* ---- outside transactions ---- */

static int sq_statfs(struct cvfs_store *st, struct cvfs_statfs *out)
{
	struct sq_store *s = sq(st);
	struct statvfs v;
	if (statvfs(s->path, &v) != 0)
		return -errno;
	uint64_t bs = v.f_frsize ? v.f_frsize : v.f_bsize;
	/* The database's free pages count as free; the reserve does not. */
	uint64_t dbfree = 0;
	if (sq_txn_begin(st, 0) == 0) {
		sqlite3_stmt *q = s->q[Q_FREELIST];
		if (sqlite3_step(q) == SQLITE_ROW)
			dbfree = (uint64_t)sqlite3_column_int64(q, 0) * s->page_size / bs;
		sqlite3_reset(q);
		sq_txn_end(st, 1);
	}
	uint64_t res = s->ro ? 0 : s->reserve / bs;
	out->bsize = bs;
	out->blocks = v.f_blocks;
	out->bfree = v.f_bfree + dbfree;
	out->bavail = v.f_bavail + dbfree > res ? v.f_bavail + dbfree - res : 0;
	/* An inode costs a row of about 100 bytes: what the free space could hold. */
	uint64_t used = atomic_load(&s->ninodes);
	uint64_t room = (uint64_t)v.f_bavail * bs / 256;
	if (room > (1ull << 40))
		room = 1ull << 40;
	out->ffree = room;
	out->files = used + room;
	return 0;
}

/* Makes every committed transaction durable: fsync the WAL (the commits live
 * there until a checkpoint copies them, and checkpoints sync the database). */
static int sq_sync(struct cvfs_store *st, uint64_t ino, int datasync)
{
	(void)ino;
	struct sq_store *s = sq(st);
	if (s->ro)
		return 0;
	pthread_mutex_lock(&s->lock);
	int rc = connect_db(s, NULL);
	if (rc == 0 && s->group)
		rc = group_commit(s);
	if (rc == 0 && s->commit_err)
		rc = s->commit_err;
	s->commit_err = 0;
	if (rc == 0) {
		sqlite3_file *f = NULL;
		int r = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
		if (r == SQLITE_OK && f && f->pMethods)
			r = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL |
						      (datasync ? SQLITE_SYNC_DATAONLY : 0));
		else /* no WAL open: whatever was committed went through a checkpoint */
			r = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
						      NULL);
		rc = sq_errno(s, r, "sync");
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void sq_free(struct cvfs_store *st)
{
	struct sq_store *s = sq(st);
	if (!s)
		return;
	pthread_mutex_lock(&reg_lock);
	for (struct sq_store **pp = &reg_head; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (s->committer_gen == proc_gen) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->committer, NULL);
	}
	if (s->db)
		group_commit(s);
	if (s->db && !s->ro) {
		/* Copy the WAL into the database (fsynced) and empty it: after an
		 * unmount the file alone holds everything. */
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	}
	disconnect(s);
	if (s->lockfd >= 0)
		close(s->lockfd); /* after SQLite's own descriptors: its locks stay intact */
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s->buf);
	free(s->icache);
	free(s->path);
	free(s);
}

static const struct cvfs_store_ops sq_ops = {
	.name = "sqlite",
	.abi = CVFS_STORE_ABI,
	.txn_begin = sq_txn_begin,
	.txn_end = sq_txn_end,
	.ino_alloc = sq_ino_alloc,
	.inode_get = sq_inode_get,
	.inode_put = sq_inode_put,
	.inode_del = sq_inode_del,
	.dent_get = sq_dent_get,
	.dent_put = sq_dent_put,
	.dent_del = sq_dent_del,
	.dir_list = sq_dir_list,
	.dir_empty = sq_dir_empty,
	.read = sq_read,
	.write = sq_write,
	.truncate = sq_truncate,
	.punch = sq_punch,
	.getx = sq_getx,
	.setx = sq_setx,
	.listx = sq_listx,
	.removex = sq_removex,
	.statfs = sq_statfs,
	.sync = sq_sync,
	.free = sq_free,
};

/* ---- opening: checks, classification, migration ---- */

/* Upgrades the schema from version `from` to SCHEMA_VERSION, one step per
 * transaction, so a crash leaves some complete version behind. */
static int migrate(sqlite3 *db, int from, const char *path, char **errmsg)
{
	for (int v = from; v < SCHEMA_VERSION; v++) {
		char tail[128];
		snprintf(tail, sizeof(tail), "PRAGMA user_version = %d;", v + 1);
		int rc = exec(db, "BEGIN IMMEDIATE", errmsg, path);
		if (rc == SQLITE_OK)
			rc = exec(db, steps[v], errmsg, path);
		if (rc == SQLITE_OK && v == 0) {
			char meta[512];
			snprintf(meta, sizeof(meta),
				 "PRAGMA application_id = %d;"
				 "INSERT INTO meta VALUES ('format', 'chuk-vfs'),"
				 " ('chunk_size', %u), ('created_ns', %lld),"
				 " ('created_by', 'chuk-vfs " CVFS_VERSION "');",
				 APP_ID, 1u << DEFAULT_CHUNK_SHIFT, (long long)time(NULL) * 1000000000LL);
			rc = exec(db, meta, errmsg, path);
		}
		if (rc == SQLITE_OK)
			rc = exec(db, tail, errmsg, path);
		if (rc == SQLITE_OK)
			rc = exec(db, "COMMIT", errmsg, path);
		if (rc != SQLITE_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			if (errmsg && *errmsg) {
				char *m = *errmsg;
				*errmsg = NULL;
				set_err(errmsg, "upgrading the schema from version %d to %d failed "
					"(the file is unchanged at version %d): %s", v, v + 1, v, m);
				free(m);
			}
			return rc;
		}
	}
	return SQLITE_OK;
}

enum kind { K_FRESH, K_OURS, K_FOREIGN };

/* Looks at an existing database without changing it. */
static int classify(struct sq_store *s, enum kind *kind, int *version, char **errmsg)
{
	sqlite3 *db;
	int rc = open_db(s, 1, &db, errmsg);
	if (rc != SQLITE_OK)
		return rc;
	int64_t app = 0, ver = 0, nobj = 0;
	rc = query_i64(db, "SELECT count(*) FROM sqlite_schema", &nobj);
	if (rc == SQLITE_OK)
		rc = query_i64(db, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = query_i64(db, "PRAGMA user_version", &ver);
	if (rc != SQLITE_OK) {
		int prim = rc & 0xff;
		if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
			set_err(errmsg, "%s is not a SQLite database, or is damaged (%s)", s->path,
				sqlite3_errmsg(db));
		else
			set_err(errmsg, "%s: cannot read the database: %s", s->path,
				sqlite3_errmsg(db));
		sqlite3_close(db);
		return rc;
	}
	*version = (int)ver;
	if (app == APP_ID) {
		*kind = K_OURS;
	} else if (app == 0 && ver == 0 && nobj == 0) {
		*kind = K_FRESH;
	} else {
		*kind = K_FOREIGN;
		char names[256] = "";
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema WHERE type = 'table' "
					   "ORDER BY name LIMIT 6",
				       -1, &q, NULL) == SQLITE_OK) {
			int i = 0;
			while (sqlite3_step(q) == SQLITE_ROW) {
				size_t l = strlen(names);
				snprintf(names + l, sizeof(names) - l, "%s%s", i ? ", " : "",
					 i < 5 ? (const char *)sqlite3_column_text(q, 0) : "...");
				i++;
			}
			sqlite3_finalize(q);
		}
		set_err(errmsg,
			"%s is a SQLite database of another program (application_id %#llx, not "
			"chuk-vfs's %#x; tables: %s); refusing to use it",
			s->path, (unsigned long long)(uint32_t)app, APP_ID, *names ? names : "none");
	}
	sqlite3_close(db);
	return SQLITE_OK;
}

/* Deletes inodes with no names left (a crash between unlink and close). */
static int delete_orphans(struct sq_store *s, int *count, char **errmsg)
{
	*count = 0;
	sqlite3 *db = s->db;
	int rc = exec(db, "BEGIN IMMEDIATE", errmsg, s->path);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_stmt *q;
	rc = sqlite3_prepare_v2(db, "SELECT ino FROM inodes WHERE nlink = 0 AND ino <> 1", -1, &q,
				NULL);
	while (rc == SQLITE_OK) {
		int r = sqlite3_step(q);
		if (r == SQLITE_DONE)
			break;
		if (r != SQLITE_ROW) {
			rc = r;
			break;
		}
		int64_t ino = sqlite3_column_int64(q, 0);
		sqlite3_bind_int64(s->q[Q_CH_DEL_INO], 1, ino);
		sqlite3_bind_int64(s->q[Q_X_DEL_INO], 1, ino);
		sqlite3_bind_int64(s->q[Q_INO_DEL], 1, ino);
		int e = run(s, Q_CH_DEL_INO);
		if (e == 0)
			e = run(s, Q_X_DEL_INO);
		if (e == 0)
			e = run(s, Q_INO_DEL);
		if (e) {
			rc = e == -ENOSPC ? SQLITE_FULL : SQLITE_ERROR;
			break;
		}
		(*count)++;
	}
	sqlite3_finalize(q);
	if (rc == SQLITE_OK)
		rc = exec(db, "COMMIT", errmsg, s->path);
	if (rc != SQLITE_OK) {
		set_err(errmsg, "%s: removing orphaned inodes failed: %s", s->path,
			sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

static int load_state(struct sq_store *s, char **errmsg)
{
	int64_t v;
	int rc = query_i64(s->db, "SELECT value FROM meta WHERE key = 'chunk_size'", &v);
	if (rc == SQLITE_OK && (v < 4096 || v > (1 << 20) || (v & (v - 1)))) {
		set_err(errmsg, "%s: unsupported chunk_size %lld in table meta", s->path,
			(long long)v);
		return SQLITE_ERROR;
	}
	if (rc == SQLITE_OK) {
		s->csize = (uint32_t)v;
		s->cshift = (unsigned)__builtin_ctz(s->csize);
		rc = query_i64(s->db, "SELECT max(ino) FROM inodes", &v);
	}
	if (rc == SQLITE_OK) {
		s->next_ino = v >= 1 ? (uint64_t)v + 1 : 2;
		rc = query_i64(s->db, "SELECT count(*) FROM inodes", &v);
	}
	if (rc == SQLITE_OK) {
		atomic_store(&s->ninodes, (uint64_t)v);
		rc = query_i64(s->db, "PRAGMA page_size", &v);
		s->page_size = v > 0 ? (uint64_t)v : 4096;
	}
	else if (errmsg && !*errmsg)
		set_err(errmsg, "%s: reading the database: %s", s->path, sqlite3_errmsg(s->db));
	return rc;
}

/* The absolute path, for a file that may not exist yet. */
static char *abs_path(const char *path, char **errmsg)
{
	char *r = realpath(path, NULL);
	if (r)
		return r;
	if (errno != ENOENT) {
		set_err(errmsg, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *dup = strdup(path);
	if (!dup)
		return NULL;
	char *slash = strrchr(dup, '/');
	const char *dir = slash ? (slash == dup ? "/" : dup) : ".";
	const char *base = slash ? slash + 1 : dup;
	if (slash)
		*slash = 0;
	char *rd = realpath(dir, NULL);
	if (!rd) {
		set_err(errmsg, "%s: directory %s: %s", path, dir, strerror(errno));
		free(dup);
		return NULL;
	}
	if (!*base) {
		set_err(errmsg, "%s: not a file name", path);
		free(rd);
		free(dup);
		return NULL;
	}
	char *out = NULL;
	if (asprintf(&out, "%s/%s", strcmp(rd, "/") ? rd : "", base) < 0)
		out = NULL;
	free(rd);
	free(dup);
	return out;
}

static int opt_true(const char *v)
{
	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
		     !strcasecmp(v, "on"));
}

int cvfs_sqlite_open(const struct cvfs_opt *opts, size_t nopts, struct cvfs_store **out,
		     char **errmsg)
{
	*out = NULL;
	const char *given = cvfs_opt_get(opts, nopts, "path");
	if (!given || !*given)
		given = DEFAULT_PATH;
	int ro = opt_true(cvfs_opt_get(opts, nopts, "readonly"));

	if (sqlite3_threadsafe() == 0) {
		set_err(errmsg, "this SQLite library was built without thread support");
		return -ENOTSUP;
	}
	struct sq_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lockfd = -1;
	s->ro = ro;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	int err = 0, created = 0;

	s->path = abs_path(given, errmsg);
	if (!s->path) {
		err = -ENOENT;
		goto fail;
	}

	/* What is at the path? */
	struct stat sb;
	int existed = 0;
	if (stat(s->path, &sb) == 0) {
		existed = 1;
		if (S_ISDIR(sb.st_mode)) {
			set_err(errmsg, "%s is a directory; --db-path wants a database file "
				"(e.g. %s/virtual_fs.db)", given, given);
			err = -EISDIR;
			goto fail;
		}
		if (!S_ISREG(sb.st_mode)) {
			set_err(errmsg, "%s is not a regular file", given);
			err = -EINVAL;
			goto fail;
		}
		int werr = ro || access(s->path, W_OK) == 0 ? 0 : errno;
		if (werr == EROFS) {
			set_err(errmsg, "%s is on a read-only filesystem; mount it with -r "
				"(--readonly)", given);
			err = -EROFS;
			goto fail;
		}
		if (!ro && ((sb.st_mode & 0222) == 0 || werr)) {
			set_err(errmsg, "%s is read-only (mode %04o); mount it with -r (--readonly), "
				"or make it writable", given, (unsigned)(sb.st_mode & 07777));
			err = -EROFS;
			goto fail;
		}
	} else if (errno == ENOENT) {
		if (ro) {
			set_err(errmsg, "%s does not exist (a read-only mount cannot create it)",
				given);
			err = -ENOENT;
			goto fail;
		}
	} else {
		err = -errno;
		set_err(errmsg, "%s: %s", given, strerror(errno));
		goto fail;
	}

	/* One mount per file: an flock on the file itself (see docs/sqlite.md). */
	s->lockfd = open(s->path, (ro ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC | O_NOCTTY, 0644);
	if (s->lockfd < 0 && errno == EROFS && !ro) {
		set_err(errmsg, "%s is on a read-only filesystem; mount it with -r (--readonly)",
			given);
		err = -EROFS;
		goto fail;
	}
	if (s->lockfd < 0) {
		err = -errno;
		set_err(errmsg, "%s: %s", given, strerror(errno));
		goto fail;
	}
	if (fstat(s->lockfd, &sb) != 0) {
		err = -errno;
		goto fail;
	}
	created = !existed && !ro;
	if (flock(s->lockfd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		created = 0;
		if (err == -EBUSY)
			set_err(errmsg, "%s is in use by another chuk-vfs mount%s; unmount it "
				"first", given, ro ? " (mounted read-write)" : "");
		else
			set_err(errmsg, "%s: cannot lock: %s", given, strerror(-err));
		goto fail;
	}

	/* Is it a SQLite file at all?  Checked before SQLite sees it. */
	if (sb.st_size > 0) {
		char hdr[16];
		ssize_t n = pread(s->lockfd, hdr, sizeof(hdr), 0);
		if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, "SQLite format 3", 16) != 0) {
			set_err(errmsg, "%s is not a SQLite database (no SQLite header); "
				"refusing to touch it", given);
			err = -EINVAL;
			goto fail;
		}
	} else if (ro) {
		set_err(errmsg, "%s is empty; a read-only mount needs an existing chuk-vfs "
			"database", given);
		err = -EINVAL;
		goto fail;
	}

	if (!ro) {
		char *dir = strdup(s->path);
		if (!dir) {
			err = -ENOMEM;
			goto fail;
		}
		char *sl = strrchr(dir, '/');
		if (sl)
			sl[sl == dir ? 1 : 0] = 0;
		int ok = access(dir, W_OK | X_OK) == 0;
		if (!ok)
			set_err(errmsg, "directory %s is not writable: SQLite keeps %s-wal and "
				"%s-shm beside the database (or mount with -r)", dir, given, given);
		free(dir);
		if (!ok) {
			err = -EACCES;
			goto fail;
		}
	}

	enum kind kind = K_FRESH;
	int version = 0;
	if (sb.st_size > 0) {
		int rc = classify(s, &kind, &version, errmsg);
		if (rc != SQLITE_OK && ro && (rc & 0xff) == SQLITE_CANTOPEN) {
			/* Read-only media where -shm cannot be created: immutable. */
			char wal[PATH_MAX];
			struct stat ws;
			snprintf(wal, sizeof(wal), "%s-wal", s->path);
			if (stat(wal, &ws) != 0 || ws.st_size == 0) {
				s->immutable = 1;
				free(*errmsg);
				*errmsg = NULL;
				rc = classify(s, &kind, &version, errmsg);
			}
		}
		if (rc != SQLITE_OK) {
			err = -EINVAL;
			goto fail;
		}
	}
	if (kind == K_FOREIGN) {
		err = -EINVAL;
		goto fail;
	}
	if (kind == K_FRESH && ro) {
		set_err(errmsg, "%s holds no chuk-vfs filesystem; a read-only mount cannot create "
			"one", given);
		err = -EINVAL;
		goto fail;
	}
	if (kind == K_OURS && version > SCHEMA_VERSION) {
		set_err(errmsg, "%s has schema version %d, newer than this chuk-vfs "
			"(" CVFS_VERSION ") understands (%d); use a newer chuk-vfs",
			given, version, SCHEMA_VERSION);
		err = -EPROTO;
		goto fail;
	}
	if (kind == K_OURS && version < 1) {
		set_err(errmsg, "%s has chuk-vfs's application_id but no schema version; "
			"refusing to guess", given);
		err = -EINVAL;
		goto fail;
	}
	if (kind == K_OURS && version < SCHEMA_VERSION && ro) {
		set_err(errmsg, "%s has schema version %d and needs an upgrade to %d; mount it "
			"read-write once", given, version, SCHEMA_VERSION);
		err = -EROFS;
		goto fail;
	}

	if (kind == K_FRESH || version < SCHEMA_VERSION) {
		/* Schema work on a plain connection before the statements exist. */
		sqlite3 *db;
		int rc = open_db(s, 0, &db, errmsg);
		if (rc == SQLITE_OK && kind == K_FRESH)
			rc = exec(db, "PRAGMA page_size = " NEW_PAGE_SIZE "; PRAGMA journal_mode = WAL;",
				  errmsg, s->path);
		if (rc == SQLITE_OK)
			rc = migrate(db, kind == K_FRESH ? 0 : version, s->path, errmsg);
		sqlite3_close(db);
		if (rc != SQLITE_OK) {
			err = (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
			goto fail;
		}
		created = 0; /* it holds a filesystem now */
	}

	err = connect_db(s, errmsg);
	if (err)
		goto fail;
	if (load_state(s, errmsg) != SQLITE_OK) {
		err = -EIO;
		goto fail;
	}
	if (!ro) {
		int n;
		int rc = delete_orphans(s, &n, errmsg);
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_FULL) {
			err = -EIO;
			goto fail;
		}
		if (rc != SQLITE_OK) {
			/* A full disk: they go at a later mount, no reason to refuse this one. */
			logmsg("%s: orphaned inodes kept for now: the disk is full", s->path);
			free(*errmsg);
			*errmsg = NULL;
		}
		if (n)
			atomic_fetch_sub(&s->ninodes, (uint64_t)n);
	}
	struct statvfs hv;
	uint64_t fsz = statvfs(s->path, &hv) == 0 ? (uint64_t)hv.f_blocks * hv.f_frsize : 0;
	s->reserve = fsz / 16;
	if (s->reserve < (1u << 20))
		s->reserve = 1u << 20;
	if (s->reserve > (64u << 20))
		s->reserve = 64u << 20;
	s->host_free = fsz ? (uint64_t)hv.f_bavail * hv.f_frsize : 0;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &s->host_when);
	s->buf = malloc(s->csize);
	s->icache = calloc(ICACHE_SLOTS, sizeof(*s->icache));
	if (!s->buf || !s->icache) {
		err = -ENOMEM;
		goto fail;
	}

	s->base.ops = &sq_ops;
	s->base.caps = CVFS_CAP_HARDLINKS | CVFS_CAP_PERSISTENT | CVFS_CAP_XATTR |
		       CVFS_CAP_SPECIAL | CVFS_CAP_SPARSE;
	pthread_once(&fork_once, fork_register);
	pthread_mutex_lock(&reg_lock);
	s->next = reg_head;
	reg_head = s;
	pthread_mutex_unlock(&reg_lock);
	*out = &s->base;
	return 0;

fail:
	disconnect(s);
	if (created && s->path) {
		/* We made the file and could not make it a filesystem. */
		char side[PATH_MAX];
		unlink(s->path);
		snprintf(side, sizeof(side), "%s-wal", s->path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", s->path);
		unlink(side);
	}
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (errmsg && !*errmsg)
		set_err(errmsg, "%s: %s", given, strerror(-err));
	pthread_mutex_destroy(&s->lock);
	free(s->buf);
	free(s->icache);
	free(s->path);
	free(s);
	return err ? err : -EIO;
}
