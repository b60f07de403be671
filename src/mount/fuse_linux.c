/*
 * Linux FUSE adapter over the libfuse3 low-level API: each request becomes
 * one core call.  Inode numbers are the store's own (root is 1 on both
 * sides), so they are stable for the life of a file and hard links work.
 *
 * Kernel caches: entry, attribute and negative-entry timeouts from
 * cache_timeout; writeback cache; readdirplus; keep_cache on open; 1 MiB
 * reads and writes.  Changes made outside the kernel (the API, other
 * clients of a shared store) invalidate what the kernel cached, never from
 * inside a request handler.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/policy.h"
#include "mount/mount.h"
#include "util/block.h"

#ifdef CVFS_VERSION
#define CVFS_VERSION_STR CVFS_VERSION
#else
#define CVFS_VERSION_STR "0.0.0"
#endif

enum {
	SC_LOOKUP, SC_GETATTR, SC_SETATTR, SC_CREATE, SC_REMOVE, SC_RENAME, SC_LINK, SC_OPEN,
	SC_READ, SC_WRITE, SC_READDIR, SC_XATTR, SC_FSYNC, SC_STATFS, SC__N
};
static const char *const st_names[SC__N] = {
	"lookup", "getattr", "setattr", "create", "remove", "rename", "link", "open",
	"read", "write", "readdir", "xattr", "fsync", "statfs",
};

struct cvfs_mount {
	struct cvfs_fs *fs;
	int notifying; /* the core's notify callbacks point at us */
	int64_t started_ns;
	/* Request counters for `chuk-vfs status`: relaxed atomics, no lock. */
	_Atomic uint64_t nops[SC__N];
	_Atomic uint64_t nerr, rbytes, wbytes;

	struct cvfs_mount_opts o;
	char *mountpoint;
	struct fuse_session *se;
	double timeout;
	int threads; /* request workers */
	long spin_ns; /* see receive() */
	atomic_int spinning; /* a worker is polling the device */
	/* Leader and followers (see serve()): lf_mu guards the rest. */
	int handoff;          /* 0: every worker waits on the device */
	pthread_mutex_t lf_mu;
	pthread_cond_t lf_cv;
	int lf_leader;        /* a worker holds the device */
	int lf_idle;          /* followers waiting for it */
	int lf_stop;
	_Atomic uint64_t lf_handoffs; /* for status */
	/* CPU wake-up latency while busy: see qos_*(). */
	int qos_fd;            /* /dev/cpu_dma_latency, or -1 */
	int qos_hold_ms;       /* 0: never ask */
	atomic_int qos_on;     /* our request asks for 0 us now */
	_Atomic int64_t qos_last_ns; /* when the last request was received */
	_Atomic uint64_t qos_bursts; /* times turned on, for status */
	pthread_mutex_t qos_mu;
	/* Lock requests wait for the RELEASEs read before them: see rx(). */
	pthread_mutex_t rx_mu, rel_mu;
	pthread_cond_t rel_cv;
	int rel_pending;
	int stop_efd; /* readable once the loop is to end: wakes every worker */
	useconds_t release_delay_us; /* CVFS_TEST_RELEASE_DELAY_MS, for tests */
	int mounted;
	int shared; /* the store may change behind our back */
	int no_open; /* the kernel opens files and directories without asking us */

	/* Names unlinked, whose negative dentries a thread drops: see neg_*(). */
	int drop_neg;
	pthread_mutex_t neg_mu;
	pthread_cond_t neg_cv;
	struct negent *neg_q; /* NEG_Q entries */
	unsigned neg_n;
	int neg_active, neg_stop, neg_started;
	pthread_t neg_thr;
	_Atomic uint64_t neg_sent;

	/* Locks kept by the store (cvfs_fs_has_locks): the lock requests are
	 * registered, and blocked ones (F_SETLKW, flock without LOCK_NB) wait
	 * here, retried by one thread, so no request worker is held by them. */
	int locks;
	pthread_mutex_t lk_mu;
	pthread_cond_t lk_cv;
	struct lkwait *lk_waits; /* protected by lk_mu */
	int lk_kick;             /* retry every waiter now */
	int lk_stop;
	int lk_started;
	pthread_t lk_thr;
};

static inline struct cvfs_mount *mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void count(fuse_req_t req, int op, int rc)
{
	struct cvfs_mount *m = mnt(req);
	atomic_fetch_add_explicit(&m->nops[op], 1, memory_order_relaxed);
	if (rc < 0 && !(op == SC_LOOKUP && rc == -ENOENT))
		atomic_fetch_add_explicit(&m->nerr, 1, memory_order_relaxed);
}

static void cred_of(fuse_req_t req, struct cvfs_cred *cr)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	cr->uid = c->uid;
	cr->gid = c->gid;
	cr->pid = c->pid;
	cr->umask = c->umask;
}


static int64_t ts_to_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void to_stat(const struct cvfs_mount *m, const struct cvfs_attr *a, struct stat *st)
{
	cvfs_attr_to_stat(a, st);
	if (m->o.set_uid)
		st->st_uid = m->o.uid;
	if (m->o.set_gid)
		st->st_gid = m->o.gid;
	if (m->o.set_umask)
		st->st_mode &= ~(mode_t)m->o.umask;
}

static void reply_entry(fuse_req_t req, const struct cvfs_attr *a)
{
	struct cvfs_mount *m = mnt(req);
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = a->ino;
	e.generation = a->generation;
	e.attr_timeout = m->timeout;
	e.entry_timeout = m->timeout;
	to_stat(m, a, &e.attr);
	if (fuse_reply_entry(req, &e) == -ENOENT) {
		/* The kernel did not take it (request interrupted): undo the count. */
		cvfs_fs_forget(m->fs, a->ino, 1);
	}
}

static void reply_attr(fuse_req_t req, const struct cvfs_attr *a)
{
	struct stat st;
	to_stat(mnt(req), a, &st);
	fuse_reply_attr(req, &st, mnt(req)->timeout);
}

/* ---- requests ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cvfs_mount *m = userdata;
	if (m->o.writeback == 1 && (conn->capable & FUSE_CAP_WRITEBACK_CACHE) && !m->o.readonly)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Let the kernel clear setuid/setgid on write and chown itself. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* Without OPEN requests O_TRUNC must come as a SETATTR of the size. */
	if (m->no_open)
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* Data changes of shared stores are noticed through attributes. */
	if (m->shared && (conn->capable & FUSE_CAP_AUTO_INVAL_DATA))
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	else
		conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_attr a;
	int rc = cvfs_fs_lookup(m->fs, parent, name, &a);
	count(req, SC_LOOKUP, rc);
	if (rc == -ENOENT && m->timeout > 0) {
		/* A negative entry: cached by the kernel for the timeout. */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = m->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	cvfs_fs_forget(mnt(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		cvfs_fs_forget(mnt(req)->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct cvfs_attr a;
	int rc = cvfs_fs_getattr(mnt(req)->fs, ino, &a);
	count(req, SC_GETATTR, rc);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_attr(req, &a);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct cvfs_cred cr;
	cred_of(req, &cr);
	struct cvfs_attr in, out;
	memset(&in, 0, sizeof(in));
	int mask = 0;
	if (to_set & FUSE_SET_ATTR_MODE) {
		mask |= CVFS_SET_MODE;
		in.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		mask |= CVFS_SET_UID;
		in.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		mask |= CVFS_SET_GID;
		in.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		mask |= CVFS_SET_SIZE;
		in.size = (uint64_t)attr->st_size;
		/* open(O_TRUNC) and ftruncate(2) mark mtime and ctime even when the
		 * size stays (POSIX), and the kernel leaves that to the filesystem:
		 * it sends only the size (and the handle only for ftruncate, not for
		 * O_TRUNC when it opens files without us).  So a size change always
		 * marks them; truncate(2) to the same size then does too. */
		if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
			mask |= CVFS_SET_MTIME_NOW;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		mask |= CVFS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		mask |= CVFS_SET_ATIME;
		in.atime_ns = ts_to_ns(&attr->st_atim);
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		mask |= CVFS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		mask |= CVFS_SET_MTIME;
		in.mtime_ns = ts_to_ns(&attr->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		mask |= CVFS_SET_CTIME;
		in.ctime_ns = ts_to_ns(&attr->st_ctim);
	}
	int rc = cvfs_fs_setattr(mnt(req)->fs, &cr, ino, &in, mask, &out);
	count(req, SC_SETATTR, rc);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_attr(req, &out);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = cvfs_fs_readlink(mnt(req)->fs, ino, buf, PATH_MAX);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct cvfs_cred cr;
	cred_of(req, &cr);
	struct cvfs_attr a;
	int rc = cvfs_fs_mknod(mnt(req)->fs, &cr, parent, name, mode, rdev, &a);
	count(req, SC_CREATE, rc);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	op_mknod(req, parent, name, S_IFDIR | (mode & 07777), 0);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct cvfs_cred cr;
	cred_of(req, &cr);
	struct cvfs_attr a;
	int rc = cvfs_fs_symlink(mnt(req)->fs, &cr, parent, name, link, &a);
	count(req, SC_CREATE, rc);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct cvfs_attr a;
	int rc = cvfs_fs_link(mnt(req)->fs, ino, newparent, newname, &a);
	count(req, SC_LINK, rc);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

/*
 * Dropping the dentries that unlink leaves.  The kernel keeps the dentry of
 * an unlinked name, negative, in its cache (FUSE never marks them for
 * deletion; only virtiofs does), and removing a directory later kills every
 * one of them under the directory lock: on this kernel an rmdir of a
 * directory whose 100 files were just unlinked took ~100 us against ~16 us
 * for one that never held files, on every store, and `rm -rf` pays it once
 * per directory.  So a thread of ours invalidates the unlinked names
 * (FUSE_NOTIFY_INVAL_ENTRY) shortly after the unlink was answered: off the
 * request path (a worker doing it itself would wait for the directory lock
 * the program's next unlink holds), in batches (the thread is woken when
 * the queue was empty and it was idle, then drains what came meanwhile
 * every millisecond until none comes).  Losing an entry (a full queue)
 * only loses the optimisation.  `-o drop_negative=0` turns it off.
 */
#define NEG_Q 1024
struct negent {
	uint64_t parent;
	uint16_t len;
	char name[256];
};

static void neg_push(struct cvfs_mount *m, uint64_t parent, const char *name)
{
	size_t len = strlen(name);
	if (!m->drop_neg || len == 0 || len > 255)
		return;
	pthread_mutex_lock(&m->neg_mu);
	if (m->neg_q && m->neg_n < NEG_Q) {
		struct negent *e = &m->neg_q[m->neg_n++];
		e->parent = parent;
		e->len = (uint16_t)len;
		memcpy(e->name, name, len);
		e->name[len] = 0; /* libfuse sends the name with its NUL */
		if (!m->neg_active)
			pthread_cond_signal(&m->neg_cv);
	}
	pthread_mutex_unlock(&m->neg_mu);
}

static void *neg_thread(void *arg)
{
	struct cvfs_mount *m = arg;
	struct negent *batch = malloc(NEG_Q * sizeof(*batch));
	pthread_mutex_lock(&m->neg_mu);
	while (!m->neg_stop) {
		if (m->neg_n == 0 || !batch) {
			m->neg_active = 0;
			pthread_cond_wait(&m->neg_cv, &m->neg_mu);
			continue;
		}
		m->neg_active = 1;
		/* take the queue; pushes go on into the other buffer */
		struct negent *q = m->neg_q;
		m->neg_q = batch;
		batch = q;
		unsigned n = m->neg_n;
		m->neg_n = 0;
		pthread_mutex_unlock(&m->neg_mu);
		for (unsigned i = 0; i < n; i++)
			fuse_lowlevel_notify_inval_entry(m->se, batch[i].parent, batch[i].name,
							 batch[i].len);
		atomic_fetch_add_explicit(&m->neg_sent, n, memory_order_relaxed);
		struct timespec ms = {0, 1000000L};
		nanosleep(&ms, NULL);
		pthread_mutex_lock(&m->neg_mu);
	}
	pthread_mutex_unlock(&m->neg_mu);
	free(batch);
	return NULL;
}

static void neg_start(struct cvfs_mount *m)
{
	if (!m->drop_neg || m->neg_started)
		return;
	m->neg_q = malloc(NEG_Q * sizeof(*m->neg_q));
	if (!m->neg_q)
		return;
	m->neg_stop = 0;
	m->neg_n = 0;
	m->neg_started = pthread_create(&m->neg_thr, NULL, neg_thread, m) == 0;
	if (!m->neg_started) {
		free(m->neg_q);
		m->neg_q = NULL;
	}
}

static void neg_stop(struct cvfs_mount *m)
{
	if (!m->neg_started)
		return;
	pthread_mutex_lock(&m->neg_mu);
	m->neg_stop = 1;
	pthread_cond_signal(&m->neg_cv);
	pthread_mutex_unlock(&m->neg_mu);
	pthread_join(m->neg_thr, NULL);
	m->neg_started = 0;
	free(m->neg_q);
	m->neg_q = NULL;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cvfs_mount *m = mnt(req);
	int rc = cvfs_fs_unlink(m->fs, parent, name);
	count(req, SC_REMOVE, rc);
	fuse_reply_err(req, -rc);
	if (rc == 0)
		neg_push(m, parent, name);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cvfs_mount *m = mnt(req);
	int rc = cvfs_fs_rmdir(m->fs, parent, name);
	count(req, SC_REMOVE, rc);
	fuse_reply_err(req, -rc);
	if (rc == 0)
		neg_push(m, parent, name);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int rc = cvfs_fs_rename(mnt(req)->fs, parent, name, newparent, newname, flags);
	count(req, SC_RENAME, rc);
	fuse_reply_err(req, -rc);
}

/* The handle of a request: ours, or (opened without us, see no_open) one
 * made for the call; put_h frees the latter. */
static struct cvfs_handle *get_h(struct fuse_file_info *fi, fuse_ino_t ino, struct cvfs_handle *tmp)
{
	if (fi && fi->fh)
		return (struct cvfs_handle *)(uintptr_t)fi->fh;
	memset(tmp, 0, sizeof(*tmp));
	tmp->ino = ino;
	tmp->flags = O_RDWR;
	return tmp;
}

static void put_h(struct cvfs_handle *h, struct cvfs_handle *tmp)
{
	if (h == tmp)
		free(tmp->path);
}

static void set_fi(struct cvfs_mount *m, struct fuse_file_info *fi, struct cvfs_handle *h)
{
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Only we change the data of an exclusive store, and the API's changes
	 * invalidate pages explicitly: the page cache stays valid across opens. */
	fi->keep_cache = 1; /* shared stores: AUTO_INVAL_DATA drops pages when mtime/size change */
	/* Nothing to do at close(2) unless the store stages data (S3) or keeps
	 * the locks (a close drops the closing process's locks, and the kernel
	 * says so only with FLUSH): no FLUSH round trip per close. */
	fi->noflush = !cvfs_fs_store(m->fs)->ops->flush && !m->locks;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_cred cr;
	cred_of(req, &cr);
	struct cvfs_attr a;
	struct cvfs_handle *h;
	int rc = cvfs_fs_create(m->fs, &cr, parent, name, mode, fi->flags, &a, &h);
	count(req, SC_CREATE, rc);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_fi(m, fi, h);
	if (m->no_open) {
		/* The kernel sends no RELEASE once it knows we do not open files:
		 * keep no handle (its lookup reference keeps the inode alive). */
		cvfs_fs_release(m->fs, h);
		h = NULL;
		fi->fh = 0;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	e.generation = a.generation;
	e.attr_timeout = e.entry_timeout = m->timeout;
	to_stat(m, &a, &e.attr);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		cvfs_fs_release(m->fs, h);
		cvfs_fs_forget(m->fs, a.ino, 1);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_handle *h;
	int flags = fi->flags;
	if (m->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* With the writeback cache the kernel may read through a write-only
	 * handle, and appends at its own idea of the end: drop both. */
	if (m->o.writeback == 1 && !m->o.readonly) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	int rc = cvfs_fs_open(m->fs, ino, flags, &h);
	count(req, SC_OPEN, rc);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_fi(m, fi, h);
	if (fuse_reply_open(req, fi) == -ENOENT)
		cvfs_fs_release(m->fs, h);
}

/* A read answered from the store's memory with one writev (no copy). */
struct read_reply {
	fuse_req_t req;
	uint64_t bytes;
};

static int emit_read(void *arg, const struct iovec *iov, int n)
{
	struct read_reply *rr = arg;
	for (int i = 0; i < n; i++)
		rr->bytes += iov[i].iov_len;
	return fuse_reply_iov(rr->req, iov, n);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct cvfs_handle tmp, *h = get_h(fi, ino, &tmp);
	struct cvfs_mount *m = mnt(req);
	struct read_reply rr = {req, 0};
	int sent;
	int r = cvfs_fs_read_iov(m->fs, h, size, (uint64_t)off, emit_read, &rr, &sent);
	if (sent || r != -ENOSYS) {
		/* req may be gone (answered): count through m */
		atomic_fetch_add_explicit(&m->nops[SC_READ], 1, memory_order_relaxed);
		if (r < 0)
			atomic_fetch_add_explicit(&m->nerr, 1, memory_order_relaxed);
		if (rr.bytes > 0)
			atomic_fetch_add_explicit(&m->rbytes, rr.bytes, memory_order_relaxed);
		if (!sent)
			fuse_reply_err(req, -r);
		put_h(h, &tmp);
		return;
	}
	char stackbuf[16384];
	char *buf = size <= sizeof(stackbuf) ? stackbuf : malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = cvfs_fs_read(mnt(req)->fs, h, buf, size, (uint64_t)off);
	count(req, SC_READ, n < 0 ? (int)n : 0);
	if (n > 0)
		atomic_fetch_add_explicit(&mnt(req)->rbytes, (uint64_t)n, memory_order_relaxed);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	if (buf != stackbuf)
		free(buf);
	put_h(h, &tmp);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct cvfs_handle tmp, *h = get_h(fi, ino, &tmp);
	ssize_t n = cvfs_fs_write(mnt(req)->fs, h, buf, size, (uint64_t)off, 0);
	put_h(h, &tmp);
	count(req, SC_WRITE, n < 0 ? (int)n : 0);
	if (n > 0)
		atomic_fetch_add_explicit(&mnt(req)->wbytes, (uint64_t)n, memory_order_relaxed);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void lk_kick(struct cvfs_mount *m);

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cvfs_mount *m = mnt(req);
	if (m->no_open && !fi->fh) {
		/* opened without us (no_open): nothing to do at close, and ENOSYS
		 * tells the kernel not to send FLUSH again */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	struct cvfs_handle *h = (struct cvfs_handle *)(uintptr_t)fi->fh;
	if (m->locks && cvfs_fs_lock_flush(m->fs, h, ino, fi->lock_owner))
		lk_kick(m);
	fuse_reply_err(req, -cvfs_fs_flush(m->fs, h));
}

static void release_done(struct cvfs_mount *m);
static void wait_releases(struct cvfs_mount *m);

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_handle *h = (struct cvfs_handle *)(uintptr_t)fi->fh;
	if (m->release_delay_us) /* tests: widen the close/RELEASE race */
		usleep(m->release_delay_us);
	if (m->locks && cvfs_fs_lock_release(m->fs, h, ino, fi->flock_release, fi->lock_owner))
		lk_kick(m);
	cvfs_fs_release(m->fs, h);
	fuse_reply_err(req, 0);
	if (m->locks)
		release_done(m);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cvfs_handle tmp, *h = get_h(fi, ino, &tmp);
	int rc = cvfs_fs_fsync(mnt(req)->fs, h, datasync);
	put_h(h, &tmp);
	count(req, SC_FSYNC, rc);
	fuse_reply_err(req, -rc);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_handle *h;
	if (m->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	int rc = cvfs_fs_opendir(m->fs, ino, &h);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	/* The kernel may keep listings of a local store: its own changes drop
	 * them, and the API's changes invalidate the directory explicitly. */
	fi->cache_readdir = !m->shared;
	fi->keep_cache = !m->shared;
	if (fuse_reply_open(req, fi) == -ENOENT)
		cvfs_fs_releasedir(m->fs, h);
}

struct dirbuf {
	fuse_req_t req;
	struct cvfs_mount *m;
	char *buf;
	size_t size, used;
	int plus;
};

static int fill_one(void *arg, const char *name, size_t len, const struct cvfs_attr *a,
		    uint64_t next)
{
	struct dirbuf *d = arg;
	char nm[CVFS_NAME_MAX + 1];
	memcpy(nm, name, len);
	nm[len] = 0;
	size_t n;
	if (d->plus) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.ino = a->ino;
		e.generation = a->generation;
		e.attr_timeout = e.entry_timeout = d->m->timeout;
		to_stat(d->m, a, &e.attr);
		/* "." and ".." must not count a lookup: ino 0 tells the kernel so. */
		if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
			e.ino = 0, e.attr.st_ino = a->ino;
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, nm, &e,
					   (off_t)next);
	} else {
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = a->ino;
		st.st_mode = a->mode;
		n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, nm, &st,
				      (off_t)next);
	}
	if (n > d->size - d->used)
		return 1;
	d->used += n;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct dirbuf d = {.req = req, .m = mnt(req), .size = size, .plus = plus};
	d.buf = malloc(size);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = cvfs_fs_readdir(d.m->fs, ino, (uint64_t)off, plus, fill_one, &d);
	count(req, SC_READDIR, rc);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cvfs_fs_releasedir(mnt(req)->fs, (struct cvfs_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, -cvfs_fs_fsync(mnt(req)->fs, NULL, datasync));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct cvfs_statfs s;
	int rc = cvfs_fs_statfs(mnt(req)->fs, &s);
	count(req, SC_STATFS, rc);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct statvfs v;
	memset(&v, 0, sizeof(v));
	v.f_bsize = s.bsize;
	v.f_frsize = s.bsize;
	v.f_blocks = s.blocks;
	v.f_bfree = s.bfree;
	v.f_bavail = s.bavail;
	v.f_files = s.files;
	v.f_ffree = s.ffree;
	v.f_favail = s.ffree;
	v.f_namemax = CVFS_NAME_MAX;
	fuse_reply_statfs(req, &v);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int rc = cvfs_fs_setxattr(mnt(req)->fs, ino, name, value, size, flags);
	count(req, SC_XATTR, rc);
	fuse_reply_err(req, -rc);
}

#define STATUS_XATTR "user.chuk-vfs.status"
#define VIOL_XATTR "user.chuk-vfs.violations"

/* The status of this mount as JSON: `chuk-vfs status MOUNT` reads it with
 * getxattr(MOUNT, "user.chuk-vfs.status"). */
static char *status_json(struct cvfs_mount *m)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	struct cvfs_statfs sf;
	memset(&sf, 0, sizeof(sf));
	cvfs_fs_statfs(m->fs, &sf);
	fprintf(f, "{\"version\":\"%s\",\"store\":\"%s\",\"mountpoint\":\"%s\",\"pid\":%d,",
		CVFS_VERSION_STR, cvfs_fs_store(m->fs)->ops->name, m->mountpoint, (int)getpid());
	fprintf(f, "\"uptime_s\":%.3f,", (double)(cvfs_now_ns() - m->started_ns) / 1e9);
	fprintf(f, "\"options\":{\"readonly\":%s,\"allow_other\":%s,\"cache_timeout\":%g,"
		   "\"writeback\":%s,\"threads\":%d,\"spin_us\":%ld,\"cpu_poll_ms\":%d,"
		   "\"handoff\":%s},",
		m->o.readonly ? "true" : "false", m->o.allow_other ? "true" : "false", m->timeout,
		m->o.writeback == 1 && !m->o.readonly ? "true" : "false", m->threads,
		m->spin_ns / 1000, m->qos_hold_ms, m->handoff ? "true" : "false");
	fprintf(f, "\"handoffs\":%llu,\"negative_dropped\":%llu,",
		(unsigned long long)atomic_load(&m->lf_handoffs),
		(unsigned long long)atomic_load(&m->neg_sent));
	fprintf(f, "\"cpu_poll\":{\"available\":%s,\"on\":%s,\"bursts\":%llu},",
		m->qos_fd >= 0 ? "true" : "false", atomic_load(&m->qos_on) ? "true" : "false",
		(unsigned long long)atomic_load(&m->qos_bursts));
	fprintf(f, "\"ops\":{");
	for (int i = 0; i < SC__N; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", st_names[i],
			(unsigned long long)atomic_load_explicit(&m->nops[i], memory_order_relaxed));
	fprintf(f, "},\"errors\":%llu,\"bytes_read\":%llu,\"bytes_written\":%llu,",
		(unsigned long long)atomic_load(&m->nerr), (unsigned long long)atomic_load(&m->rbytes),
		(unsigned long long)atomic_load(&m->wbytes));
	struct cvfs_policy *pol = cvfs_fs_policy(m->fs);
	char *pd = pol ? cvfs_policy_describe(pol) : NULL;
	fprintf(f, "\"policy\":%s,", pd ? pd : "null");
	free(pd);
	struct cvfs_store *st = cvfs_fs_store(m->fs);
	char *ss = st->ops->status ? st->ops->status(st) : NULL;
	if (ss)
		fprintf(f, "\"store_status\":%s,", ss);
	free(ss);
	fprintf(f, "\"statfs\":{\"bsize\":%llu,\"blocks\":%llu,\"bfree\":%llu,\"files\":%llu,"
		   "\"ffree\":%llu}}\n",
		(unsigned long long)sf.bsize, (unsigned long long)sf.blocks,
		(unsigned long long)sf.bfree, (unsigned long long)sf.files,
		(unsigned long long)sf.ffree);
	fclose(f);
	return s;
}

/* getxattr (name) and listxattr (name NULL) answer alike: the size needed
 * when asked with size 0, else the bytes. */
static void reply_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct cvfs_fs *fs = mnt(req)->fs;
	ssize_t n = name ? cvfs_fs_getxattr(fs, ino, name, buf, size)
			 : cvfs_fs_listxattr(fs, ino, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	count(req, SC_XATTR, 0);
	int is_viol = strcmp(name, VIOL_XATTR) == 0;
	if (ino == CVFS_ROOT_INO && (strcmp(name, STATUS_XATTR) == 0 || is_viol)) {
		struct cvfs_policy *pol = cvfs_fs_policy(mnt(req)->fs);
		char *js = !is_viol ? status_json(mnt(req))
			   : pol    ? cvfs_policy_violations(pol)
				    : strdup("");
		size_t n = js ? strlen(js) : 0;
		if (!js)
			fuse_reply_err(req, ENOMEM);
		else if (size == 0)
			fuse_reply_xattr(req, n);
		else if (size < n)
			fuse_reply_err(req, ERANGE);
		else
			fuse_reply_buf(req, js, n);
		free(js);
		return;
	}
	reply_xattr(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	reply_xattr(req, ino, NULL, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -cvfs_fs_removexattr(mnt(req)->fs, ino, name));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -cvfs_fs_fallocate(mnt(req)->fs, ino, mode, (uint64_t)off,
					       (uint64_t)len));
}

/* ---- locks kept by the store ----
 *
 * Registered only for stores with lock methods (see cvfs_mount_new).  The
 * core never waits; a request that must (F_SETLKW, flock without LOCK_NB)
 * is parked on m->lk_waits without a reply, and one thread retries the
 * parked requests with backoff (5 ms doubling to 100 ms), at once when a
 * lock is dropped through this mount, and answers EINTR when the kernel
 * interrupts one (a signal to the waiting process): FUSE has no way to tell
 * the kernel "granted" later except by replying. */

struct lkwait {
	struct lkwait *next;
	fuse_req_t req;
	uint64_t ino;
	struct cvfs_handle *fh;
	struct cvfs_lock lk;
	int flock_op; /* 0: fcntl lock; else LOCK_SH or LOCK_EX */
	int64_t due_ms;
	int backoff_ms;
};

static int64_t lk_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lk_kick(struct cvfs_mount *m)
{
	pthread_mutex_lock(&m->lk_mu);
	m->lk_kick = 1;
	pthread_cond_signal(&m->lk_cv);
	pthread_mutex_unlock(&m->lk_mu);
}

/* libfuse calls it when the kernel interrupts a parked request. */
static void lk_interrupted(fuse_req_t req, void *arg)
{
	(void)req;
	lk_kick(arg);
}

static int lk_try(struct cvfs_mount *m, struct lkwait *w)
{
	if (w->flock_op)
		return cvfs_fs_flock(m->fs, w->fh, w->ino, w->lk.owner, w->flock_op, w->lk.pid);
	return cvfs_fs_setlk(m->fs, w->fh, w->ino, &w->lk);
}

/* *ts = the clock's time now plus ms, for a timed condition wait. */
static void ts_after_ms(clockid_t clk, int64_t ms, struct timespec *ts)
{
	clock_gettime(clk, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *lk_thread(void *arg)
{
	struct cvfs_mount *m = arg;
	pthread_mutex_lock(&m->lk_mu);
	while (!m->lk_stop) {
		int64_t now = lk_now_ms(), next = now + 1000;
		struct lkwait *due = NULL;
		for (struct lkwait **p = &m->lk_waits; *p;) {
			struct lkwait *w = *p;
			if (m->lk_kick || w->due_ms <= now) {
				*p = w->next;
				w->next = due;
				due = w;
			} else {
				if (w->due_ms < next)
					next = w->due_ms;
				p = &w->next;
			}
		}
		m->lk_kick = 0;
		if (!due) {
			struct timespec ts;
			ts_after_ms(CLOCK_REALTIME, next - now, &ts);
			pthread_cond_timedwait(&m->lk_cv, &m->lk_mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&m->lk_mu);
		while (due) {
			struct lkwait *w = due;
			due = w->next;
			int rc = fuse_req_interrupted(w->req) ? -EINTR : lk_try(m, w);
			if (rc == -EAGAIN) {
				w->due_ms = lk_now_ms() + w->backoff_ms;
				w->backoff_ms = w->backoff_ms < 50 ? w->backoff_ms * 2 : 100;
				pthread_mutex_lock(&m->lk_mu);
				w->next = m->lk_waits;
				m->lk_waits = w;
				pthread_mutex_unlock(&m->lk_mu);
				continue;
			}
			fuse_reply_err(w->req, -rc);
			free(w);
		}
		pthread_mutex_lock(&m->lk_mu);
	}
	pthread_mutex_unlock(&m->lk_mu);
	return NULL;
}

/* Parks a blocked request (the first try said -EAGAIN). */
static void lk_park(fuse_req_t req, uint64_t ino, struct cvfs_handle *fh,
		    const struct cvfs_lock *lk, int flock_op)
{
	struct cvfs_mount *m = mnt(req);
	struct lkwait *w = calloc(1, sizeof(*w));
	if (!w) {
		fuse_reply_err(req, ENOLCK);
		return;
	}
	w->req = req;
	w->ino = ino;
	w->fh = fh;
	w->lk = *lk;
	w->flock_op = flock_op;
	w->backoff_ms = 5;
	w->due_ms = lk_now_ms() + w->backoff_ms;
	/* Before the request is on the list (the thread may answer it, which
	 * frees it, at once).  Calls lk_interrupted at once if the request is
	 * interrupted already: lk_mu must not be held here. */
	fuse_req_interrupt_func(req, lk_interrupted, m);
	pthread_mutex_lock(&m->lk_mu);
	int ok = m->lk_started && !m->lk_stop;
	if (ok) {
		w->next = m->lk_waits;
		m->lk_waits = w;
		pthread_cond_signal(&m->lk_cv);
	}
	pthread_mutex_unlock(&m->lk_mu);
	if (!ok) {
		free(w);
		fuse_reply_err(req, EINTR);
	}
}

static void lk_of(fuse_req_t req, const struct flock *fl, uint64_t owner, struct cvfs_lock *lk)
{
	memset(lk, 0, sizeof(*lk));
	lk->type = (uint32_t)fl->l_type;
	lk->start = fl->l_start > 0 ? (uint64_t)fl->l_start : 0;
	lk->end = fl->l_len <= 0 ? CVFS_LOCK_EOF : lk->start + (uint64_t)fl->l_len - 1;
	lk->owner = owner;
	lk->pid = fl->l_pid > 0 ? (uint32_t)fl->l_pid : (uint32_t)fuse_req_ctx(req)->pid;
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_lock lk;
	lk_of(req, lock, fi->lock_owner, &lk);
	wait_releases(m);
	int rc = cvfs_fs_getlk(m->fs, (struct cvfs_handle *)(uintptr_t)fi->fh, ino, &lk);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct flock out;
	memset(&out, 0, sizeof(out));
	out.l_type = (short)lk.type;
	out.l_whence = SEEK_SET;
	if (lk.type != F_UNLCK) {
		out.l_start = (off_t)(lk.start > (uint64_t)INT64_MAX ? INT64_MAX : lk.start);
		out.l_len = lk.end >= (uint64_t)INT64_MAX ? 0 : (off_t)(lk.end - lk.start + 1);
		out.l_pid = (pid_t)lk.pid;
	}
	fuse_reply_lock(req, &out);
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_handle *h = (struct cvfs_handle *)(uintptr_t)fi->fh;
	struct cvfs_lock lk;
	lk_of(req, lock, fi->lock_owner, &lk);
	wait_releases(m);
	int rc = cvfs_fs_setlk(m->fs, h, ino, &lk);
	if (rc == -EAGAIN && sleep && lk.type != F_UNLCK) {
		lk_park(req, ino, h, &lk, 0);
		return;
	}
	if (rc == 0 && lk.type == F_UNLCK)
		lk_kick(m);
	fuse_reply_err(req, -rc);
}

static void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct cvfs_mount *m = mnt(req);
	struct cvfs_handle *h = (struct cvfs_handle *)(uintptr_t)fi->fh;
	uint32_t pid = (uint32_t)fuse_req_ctx(req)->pid;
	int kind = op & (LOCK_SH | LOCK_EX | LOCK_UN);
	wait_releases(m);
	int rc = cvfs_fs_flock(m->fs, h, ino, fi->lock_owner, kind, pid);
	if (rc == -EAGAIN && !(op & LOCK_NB) && kind != LOCK_UN) {
		struct cvfs_lock lk = {.owner = fi->lock_owner, .pid = pid};
		lk_park(req, ino, h, &lk, kind);
		return;
	}
	if (rc == 0 || kind == LOCK_UN)
		lk_kick(m); /* a conversion that failed dropped the old lock too */
	fuse_reply_err(req, -rc);
}

static const struct fuse_lowlevel_ops ll_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
};

/* ---- kernel invalidation ----
 *
 * Called from threads that are not FUSE request handlers (the API's callers,
 * a shared store's change-feed thread), so the kernel can be told directly
 * and the caller returns only once the kernel has dropped what it cached:
 * the next access through the mount sees the change.  libfuse documents the
 * deadlock of calling these from inside a handler; nothing in chuk-vfs does.
 * -ENOENT means the kernel had nothing cached. */

static void inval_inode(void *arg, uint64_t ino, int64_t off, int64_t len)
{
	struct cvfs_mount *m = arg;
	fuse_lowlevel_notify_inval_inode(m->se, ino, off, len);
}

static void inval_entry(void *arg, uint64_t parent, const char *name, size_t len)
{
	struct cvfs_mount *m = arg;
	if (len)
		fuse_lowlevel_notify_inval_entry(m->se, parent, name, len);
}

/* ---- mounting ---- */

static void set_err(char **errmsg, const char *fmt, const char *a, const char *b)
{
	if (errmsg && asprintf(errmsg, fmt, a, b) < 0)
		*errmsg = NULL;
}

static int is_mount_point(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return 0;
	char line[8192];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint ... ; octal escapes for spaces */
		char *p = line;
		for (int i = 0; i < 4 && p; i++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (!p)
			continue;
		char *e = strchr(p, ' ');
		if (e)
			*e = 0;
		char un[4096];
		size_t k = 0;
		for (char *s = p; *s && k + 1 < sizeof(un); s++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
				un[k++] = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
				s += 3;
			} else {
				un[k++] = *s;
			}
		}
		un[k] = 0;
		found = strcmp(un, path) == 0;
	}
	fclose(f);
	return found;
}

static int lazy_unmount(const char *path)
{
	if (umount2(path, MNT_DETACH) == 0)
		return 0;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", path, (char *)NULL);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

int cvfs_mount_prepare(const char *mountpoint, char **errmsg)
{
	struct stat st;
	if (stat(mountpoint, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			set_err(errmsg, "mount point %s is not a directory%s", mountpoint, "");
			return -ENOTDIR;
		}
		char *real = realpath(mountpoint, NULL);
		int busy = real && is_mount_point(real);
		struct statfs sfs;
		/* stat() of a dead FUSE mount can succeed from the attribute
		 * cache; statfs always asks the daemon. */
		if (busy && statfs(real, &sfs) != 0 && errno == ENOTCONN) {
			free(real);
			if (lazy_unmount(mountpoint) == 0 && stat(mountpoint, &st) == 0 &&
			    S_ISDIR(st.st_mode))
				return 0;
			set_err(errmsg, "%s: a dead mount is in the way and could not be cleared%s",
				mountpoint, " (try: fusermount3 -uz DIR)");
			return -ENOTCONN;
		}
		free(real);
		if (busy) {
			set_err(errmsg, "%s is already mounted (unmount it first: fusermount3 -u %s)",
				mountpoint, mountpoint);
			return -EBUSY;
		}
		return 0;
	}
	int e = errno;
	if (e == ENOTCONN) {
		/* A daemon that died left its mount behind: clear it. */
		int rc = lazy_unmount(mountpoint);
		if (rc == 0 && stat(mountpoint, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		set_err(errmsg, "%s: a dead mount is in the way and could not be cleared%s",
			mountpoint, " (try: fusermount3 -uz DIR)");
		return -ENOTCONN;
	}
	if (e == ENOENT) {
		if (mkdir(mountpoint, 0755) == 0 || errno == EEXIST)
			return 0;
		e = errno;
	}
	set_err(errmsg, "mount point %s: %s", mountpoint, strerror(e));
	return -e;
}

int cvfs_mount_new(struct cvfs_fs *fs, const struct cvfs_mount_opts *o, struct cvfs_mount **out,
		   char **errmsg)
{
	*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	struct cvfs_mount *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fs = fs;
	m->o = *o;

	m->shared = (cvfs_fs_store(fs)->caps & CVFS_CAP_SHARED) != 0;
	const struct cvfs_store_ops *sops = cvfs_fs_store(fs)->ops;
	/* A local store that keeps no per-open state needs no OPEN, OPENDIR,
	 * RELEASE or RELEASEDIR round trips: the first open answers ENOSYS and
	 * the kernel stops asking (keeping page and listing caches, as for
	 * keep_cache/cache_readdir).  An unlinked open file stays alive through
	 * the kernel's lookup reference. */
	m->no_open = !m->shared && !sops->open && !sops->flush && !sops->release &&
		     !cvfs_fs_has_locks(fs) &&
		     getenv("CVFS_FORCE_OPEN") == NULL;
	cvfs_fs_set_opens_seen(fs, !m->no_open);
	m->timeout = o->cache_timeout >= 0 ? o->cache_timeout : (m->shared ? 1.0 : 60.0);
	m->threads = o->threads > 0 ? o->threads : m->shared ? 8 : 1;
	m->spin_ns = (o->spin_us >= 0 ? o->spin_us : 50) * 1000L;
	m->handoff = o->handoff != 0 && m->threads > 1;
	m->drop_neg = o->drop_negative != 0;
	m->qos_fd = -1;
	m->qos_hold_ms = o->cpu_poll_ms >= 0 ? o->cpu_poll_ms : 20;
	m->started_ns = cvfs_now_ns();
	m->mountpoint = realpath(o->mountpoint, NULL);
	if (!m->mountpoint) {
		int e = errno;
		set_err(errmsg, "mount point %s: %s", o->mountpoint, strerror(e));
		free(m);
		return -e;
	}

	char *opts = NULL;
	if (asprintf(&opts, "default_permissions,fsname=%s,subtype=chuk-vfs%s%s%s%s",
		     o->fsname ? o->fsname : "chuk-vfs", o->allow_other ? ",allow_other" : "",
		     o->readonly ? ",ro" : "", o->fuse_opts && *o->fuse_opts ? "," : "",
		     o->fuse_opts ? o->fuse_opts : "") < 0) {
		free(m->mountpoint);
		free(m);
		return -ENOMEM;
	}
	/* libfuse tells the kernel at INIT which lock requests this session
	 * serves (the ones with an op): lock ops only for stores that keep
	 * locks, else the kernel keeps them, local to this mount. */
	struct fuse_lowlevel_ops ops = ll_ops;
	m->locks = cvfs_fs_has_locks(fs);
	const char *rd = getenv("CVFS_TEST_RELEASE_DELAY_MS");
	if (rd && atoi(rd) > 0 && atoi(rd) <= 10000)
		m->release_delay_us = (useconds_t)atoi(rd) * 1000;
	if (m->locks) {
		ops.getlk = op_getlk;
		ops.setlk = op_setlk;
		ops.flock = op_flock;
	}
	/* No CREATE either where the kernel opens files without us: it then
	 * creates with MKNOD and opens without asking, and a file created
	 * that way needs no RELEASE at its last close (one request fewer per
	 * new file).  The cost: O_CREAT without O_EXCL of a name that the
	 * library API creates in this process between the kernel's LOOKUP and
	 * its MKNOD fails with EEXIST (the kernel's own creators are
	 * serialised by the directory's lock, so only the API can race). */
	if (m->no_open && !getenv("CVFS_FORCE_CREATE"))
		ops.create = NULL;
	pthread_mutex_init(&m->lk_mu, NULL);
	pthread_cond_init(&m->lk_cv, NULL);
	m->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&m->rx_mu, NULL);
	pthread_mutex_init(&m->qos_mu, NULL);
	pthread_mutex_init(&m->rel_mu, NULL);
	pthread_mutex_init(&m->lf_mu, NULL);
	pthread_mutex_init(&m->neg_mu, NULL);
	pthread_cond_init(&m->neg_cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->rel_cv, &ca);
	pthread_cond_init(&m->lf_cv, &ca);
	pthread_condattr_destroy(&ca);
	char *argv[] = {"chuk-vfs", "-o", opts, o->debug ? "-d" : NULL, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
	m->se = fuse_session_new(&args, &ops, sizeof(ops), m);
	fuse_opt_free_args(&args);
	free(opts);
	if (!m->se) {
		set_err(errmsg, "FUSE refused the options (see above)%s%s", "", "");
		free(m->mountpoint);
		free(m);
		return -EINVAL;
	}
	if (fuse_session_mount(m->se, m->mountpoint) != 0) {
		int e = access("/dev/fuse", R_OK | W_OK) ? errno : 0;
		if (e)
			set_err(errmsg, "cannot mount %s: /dev/fuse: %s", m->mountpoint, strerror(e));
		else
			set_err(errmsg, "cannot mount %s (see the message above)%s", m->mountpoint, "");
		fuse_session_destroy(m->se);
		free(m->mountpoint);
		free(m);
		return e ? -e : -EIO;
	}
	m->mounted = 1;
	*out = m;
	return 0;
}

/*
 * The request loop: a fixed pool of workers, each receiving and processing
 * requests on the session's one /dev/fuse descriptor.  libfuse 3.14's own
 * multithreaded loop starts (and clones a descriptor for) a new thread for
 * nearly every request on this kind of machine, which cost 3-6x in latency;
 * a fixed pool does not.  Workers block the termination signals so that the
 * calling thread receives them and leaves its wait with EINTR; the end of
 * the loop (a signal, unmount, cvfs_mount_exit) is an eventfd every worker
 * waits on beside the device, so each one finishes the request it holds and
 * returns.  No thread cancellation: ASan's unwinder tripped on it.
 */
struct worker {
	struct cvfs_mount *m;
	pthread_t tid;
	int started;
	int ep; /* this worker's epoll descriptor, or -1 */
	int leading; /* holds the device (handoff mode) */
	int signals; /* the thread that receives the loop's signals */
};

/*
 * Waiting for the next request.  On a VM, a thread sleeping in read() that
 * a request from another CPU wakes costs an inter-processor interrupt into
 * an idle vCPU: measured here 100-300 us per request, 3-7x the cost of the
 * request itself.  A process doing file I/O sends its next request a few
 * microseconds after our answer, so the worker that has just answered polls
 * the device (non-blocking) for spin_ns before it sleeps: a burst of
 * requests then costs one wake-up, not one each (create: 320 -> 110 us here,
 * `-o spin=0` turns it off).  One worker spins at a time; the others sleep in
 * epoll with EPOLLEXCLUSIVE, so a request wakes one of them, not all.
 */
/*
 * close(2) returns before the kernel's RELEASE reaches us (it is sent in the
 * background), and RELEASE is what drops a flock lock.  A process that
 * closes a locked file and locks it again through another descriptor may
 * have its lock request served by another worker before the RELEASE:
 * EAGAIN from a lock that is already gone.  So, when the store keeps locks,
 * requests are read one at a time (the device is non-blocking: that is a
 * short critical section) and every RELEASE is counted as it is read; lock
 * requests wait until the RELEASEs read before them are done (at most 2 s).
 */
static int rx(struct cvfs_mount *m, struct fuse_buf *buf)
{
	if (!m->locks)
		return fuse_session_receive_buf(m->se, buf);
	pthread_mutex_lock(&m->rx_mu);
	int res = fuse_session_receive_buf(m->se, buf);
	if (res > 0 && !(buf->flags & FUSE_BUF_IS_FD) &&
	    (size_t)res >= sizeof(struct fuse_in_header) &&
	    ((const struct fuse_in_header *)buf->mem)->opcode == FUSE_RELEASE) {
		pthread_mutex_lock(&m->rel_mu);
		m->rel_pending++;
		pthread_mutex_unlock(&m->rel_mu);
	}
	pthread_mutex_unlock(&m->rx_mu);
	return res;
}

static void release_done(struct cvfs_mount *m)
{
	pthread_mutex_lock(&m->rel_mu);
	if (m->rel_pending > 0 && --m->rel_pending == 0)
		pthread_cond_broadcast(&m->rel_cv);
	pthread_mutex_unlock(&m->rel_mu);
}

static void wait_releases(struct cvfs_mount *m)
{
	struct timespec until;
	ts_after_ms(CLOCK_MONOTONIC, 2000, &until);
	pthread_mutex_lock(&m->rel_mu);
	if (m->rel_pending > 0)
		cvfs_about_to_block();
	while (m->rel_pending > 0)
		if (pthread_cond_timedwait(&m->rel_cv, &m->rel_mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&m->rel_mu);
}

/* Ends the loop: every worker leaves its wait and sees the session exited. */
static void stop_all(struct cvfs_mount *m)
{
	fuse_session_exit(m->se);
	if (m->stop_efd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(m->stop_efd, &one, sizeof(one));
		(void)r;
	}
	pthread_mutex_lock(&m->lf_mu);
	m->lf_stop = 1;
	pthread_cond_broadcast(&m->lf_cv);
	pthread_mutex_unlock(&m->lf_mu);
}

/*
 * Keeping idle CPUs awake while requests flow.  Every synchronous request
 * ends with our answer waking the thread that asked, which slept while we
 * worked; if its CPU went idle, the wake-up is an interrupt into a halted
 * CPU: on these VMs (cpuidle haltpoll with guest_halt_poll_ns=0) a trip
 * through the hypervisor, and on bare metal a deep C-state exit.  That, not
 * our work, is most of a create's cost.  So while requests come close
 * together (one less than QOS_DENSE_NS after another) we hold a CPU latency
 * request of 0 us through /dev/cpu_dma_latency (the kernel's PM QoS
 * interface, as tuned's latency-performance profile and DPDK use it): idle
 * CPUs poll instead of halting, and a wake-up is a flag they see at once.
 * The request is dropped after qos_hold_ms without any request, so an idle
 * or lightly used mount changes nothing.  Needs write access to the device
 * (root); elsewhere, and with `-o cpu_poll=0`, nothing is asked.
 */
#define QOS_DENSE_NS 1000000L
#define QOS_NO_CONSTRAINT 2000000000 /* PM_QOS_CPU_LATENCY_DEFAULT_VALUE */

static void qos_open(struct cvfs_mount *m)
{
	if (m->qos_hold_ms <= 0 || m->qos_fd >= 0)
		return;
	m->qos_fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
	if (m->qos_fd < 0 && m->o.debug)
		fprintf(stderr, "chuk-vfs: cpu_poll off: /dev/cpu_dma_latency: %s\n", strerror(errno));
}

static void qos_close(struct cvfs_mount *m)
{
	if (m->qos_fd >= 0)
		close(m->qos_fd); /* drops the request */
	m->qos_fd = -1;
	atomic_store(&m->qos_on, 0);
}

static void qos_set(struct cvfs_mount *m, int on)
{
	pthread_mutex_lock(&m->qos_mu);
	if (m->qos_fd >= 0 && atomic_load(&m->qos_on) != on) {
		int32_t v = on ? 0 : QOS_NO_CONSTRAINT;
		if (write(m->qos_fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
			atomic_store(&m->qos_on, on);
			if (on)
				atomic_fetch_add_explicit(&m->qos_bursts, 1, memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&m->qos_mu);
}

/* A request arrived. */
static inline void qos_busy(struct cvfs_mount *m)
{
	if (m->qos_fd < 0)
		return;
	int64_t now = cvfs_now_ns();
	int64_t prev = atomic_exchange_explicit(&m->qos_last_ns, now, memory_order_relaxed);
	if (now - prev < QOS_DENSE_NS && !atomic_load_explicit(&m->qos_on, memory_order_relaxed))
		qos_set(m, 1);
}

/* How long a worker may sleep before it checks whether to drop the request. */
static inline int qos_timeout_ms(struct cvfs_mount *m)
{
	return atomic_load_explicit(&m->qos_on, memory_order_relaxed) ? m->qos_hold_ms : -1;
}

/* A worker slept qos_timeout_ms() without a request. */
static void qos_idle(struct cvfs_mount *m)
{
	int64_t last = atomic_load_explicit(&m->qos_last_ns, memory_order_relaxed);
	if (cvfs_now_ns() - last >= (int64_t)m->qos_hold_ms * 1000000L)
		qos_set(m, 0);
}

static int receive(struct worker *w, struct fuse_buf *buf)
{
	struct cvfs_mount *m = w->m;
	struct fuse_session *se = m->se;
	int expect = 0;
	if (m->spin_ns > 0 &&
	    atomic_compare_exchange_strong_explicit(&m->spinning, &expect, 1, memory_order_acquire,
						    memory_order_relaxed)) {
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int res;
		for (;;) {
			res = rx(m, buf);
			if (res != -EAGAIN)
				break;
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > m->spin_ns)
				break;
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		}
		atomic_store_explicit(&m->spinning, 0, memory_order_release);
		if (res != -EAGAIN)
			return res;
	} else {
		int res = rx(m, buf);
		if (res != -EAGAIN)
			return res;
	}
	/* Sleep until the device is readable or the loop is to end. */
	int n, to = qos_timeout_ms(m);
	if (w->ep >= 0) {
		struct epoll_event ev;
		n = epoll_wait(w->ep, &ev, 1, to);
	} else {
		struct pollfd p[2] = {{.fd = fuse_session_fd(se), .events = POLLIN},
				      {.fd = m->stop_efd, .events = POLLIN}};
		n = poll(p, m->stop_efd >= 0 ? 2 : 1, to);
	}
	if (n < 0 && errno != EINTR)
		return -errno;
	if (n == 0)
		qos_idle(m);
	return -EAGAIN;
}

/*
 * Leader and followers.  With several workers all waiting on the device, a
 * request that arrives while one worker spins for it (receive()) also wakes
 * a sleeping one (EPOLLEXCLUSIVE wakes a waiter whatever the spinner does):
 * two threads race for it, and the loser's wake-up was an interrupt into an
 * idle vCPU for nothing.  Measured on S3, where 8 workers are the default:
 * tree unlink 27-30k/s with 8 workers, 53-75k/s with one (HACKING.md).  One
 * worker is not the answer either: a request that waits on the network
 * would stop every other.  So only one worker, the leader, waits on the
 * device and serves what it reads itself; the others sleep on lf_cv.  When
 * the request the leader serves is about to wait (the store calls
 * cvfs_about_to_block() before a network round trip or a wait for another
 * thread), the leader gives the device up and wakes one follower, which
 * becomes the leader; the old leader finishes its request and then waits
 * as a follower (or leads again if nobody does).  A burst of quick requests
 * thus costs no wake-up at all, and a slow one costs one, hidden behind
 * its own wait.  `-o handoff=0` brings back the old pool.
 */
static void lf_hint(void *arg, int brief)
{
	struct worker *w = arg;
	if (!w->leading)
		return;
	struct cvfs_mount *m = w->m;
	if (brief) {
		/* a short wait: hand on only if a request is waiting already */
		struct pollfd p = {.fd = fuse_session_fd(m->se), .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			return;
	}
	w->leading = 0;
	pthread_mutex_lock(&m->lf_mu);
	m->lf_leader = 0;
	if (m->lf_idle)
		pthread_cond_signal(&m->lf_cv);
	pthread_mutex_unlock(&m->lf_mu);
	atomic_fetch_add_explicit(&m->lf_handoffs, 1, memory_order_relaxed);
}

/* Waits until the device is free and takes it; -1 when the loop is to end.
 * The thread that receives the loop's signals (they only set the session's
 * exit flag) looks at the flag every 100 ms. */
static int lf_lead(struct worker *w)
{
	struct cvfs_mount *m = w->m;
	pthread_mutex_lock(&m->lf_mu);
	while (m->lf_leader && !m->lf_stop && !fuse_session_exited(m->se)) {
		m->lf_idle++;
		if (w->signals) {
			struct timespec t;
			ts_after_ms(CLOCK_MONOTONIC, 100, &t);
			pthread_cond_timedwait(&m->lf_cv, &m->lf_mu, &t);
		} else {
			pthread_cond_wait(&m->lf_cv, &m->lf_mu);
		}
		m->lf_idle--;
	}
	int ok = !m->lf_stop && !fuse_session_exited(m->se);
	if (ok)
		m->lf_leader = 1;
	pthread_mutex_unlock(&m->lf_mu);
	w->leading = ok;
	return ok ? 0 : -1;
}

static int serve(struct worker *w)
{
	struct cvfs_mount *m = w->m;
	struct fuse_session *se = m->se;
	struct fuse_buf buf;
	memset(&buf, 0, sizeof(buf));
	int rc = 0;
	if (m->handoff)
		cvfs_tl_block = (struct cvfs_block_hook){lf_hint, w};
	while (!fuse_session_exited(se)) {
		if (m->handoff && !w->leading && lf_lead(w) != 0)
			break;
		int res = receive(w, &buf);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (res <= 0) {
			if (res < 0 && res != -ENODEV)
				rc = res;
			stop_all(m);
			break;
		}
		qos_busy(m);
		fuse_session_process_buf(se, &buf);
	}
	if (m->handoff) {
		lf_hint(w, 0); /* a follower sees the end */
		cvfs_tl_block = (struct cvfs_block_hook){NULL, NULL};
	}
	free(buf.mem);
	return rc;
}

static void *worker_main(void *arg)
{
	serve(arg);
	return NULL;
}

int cvfs_mount_loop(struct cvfs_mount *m, int install_signals)
{
	if (install_signals && fuse_set_signal_handlers(m->se) != 0)
		return -EIO;
	if (!m->notifying) {
		struct cvfs_fs_notify n = {inval_inode, inval_entry, m};
		cvfs_fs_set_notify(m->fs, &n);
		m->notifying = 1;
	}
	int src = cvfs_fs_start(m->fs);
	if (src)
		fprintf(stderr, "chuk-vfs: cannot follow the store's changes: %s\n", strerror(-src));

	/* One worker serves a local store fastest (see above); stores that wait
	 * on a network get a pool so slow requests overlap. */
	int n = m->threads;
	struct worker *ws = calloc((size_t)n, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	int dfd = fuse_session_fd(m->se);
	fcntl(dfd, F_SETFL, fcntl(dfd, F_GETFL) | O_NONBLOCK);
	for (int i = 0; i < n; i++) {
		ws[i].m = m;
		ws[i].ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
		struct epoll_event se = {.events = EPOLLIN};
		if (ws[i].ep >= 0 && (epoll_ctl(ws[i].ep, EPOLL_CTL_ADD, dfd, &ev) != 0 ||
				      (m->stop_efd >= 0 &&
				       epoll_ctl(ws[i].ep, EPOLL_CTL_ADD, m->stop_efd, &se) != 0))) {
			close(ws[i].ep);
			ws[i].ep = -1; /* poll() then */
		}
	}
	ws[0].signals = 1;
	m->lf_leader = 0;
	m->lf_stop = 0;
	qos_open(m);
	neg_start(m);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 1; i < n; i++) {
		ws[i].started = pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (m->locks && !m->lk_started) {
		pthread_sigmask(SIG_BLOCK, &all, &old);
		m->lk_stop = 0;
		m->lk_started = pthread_create(&m->lk_thr, NULL, lk_thread, m) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	int rc = serve(&ws[0]);
	stop_all(m);
	for (int i = 1; i < n; i++)
		if (ws[i].started)
			pthread_join(ws[i].tid, NULL);
	for (int i = 0; i < n; i++)
		if (ws[i].ep >= 0)
			close(ws[i].ep);
	free(ws);
	neg_stop(m);
	qos_close(m);
	if (m->lk_started) {
		/* Requests still parked get EINTR (the kernel is gone or going). */
		pthread_mutex_lock(&m->lk_mu);
		m->lk_stop = 1;
		pthread_cond_signal(&m->lk_cv);
		pthread_mutex_unlock(&m->lk_mu);
		pthread_join(m->lk_thr, NULL);
		m->lk_started = 0;
		pthread_mutex_lock(&m->lk_mu);
		struct lkwait *w = m->lk_waits;
		m->lk_waits = NULL;
		pthread_mutex_unlock(&m->lk_mu);
		while (w) {
			struct lkwait *nx = w->next;
			fuse_reply_err(w->req, EINTR);
			free(w);
			w = nx;
		}
	}
	if (install_signals)
		fuse_remove_signal_handlers(m->se);
	return rc;
}

void cvfs_mount_exit(struct cvfs_mount *m)
{
	if (m && m->se)
		stop_all(m);
}

void cvfs_mount_unmount(struct cvfs_mount *m)
{
	if (!m || !m->mounted)
		return;
	stop_all(m);
	fuse_session_unmount(m->se);
	m->mounted = 0;
}

void cvfs_mount_free(struct cvfs_mount *m)
{
	if (!m)
		return;
	if (m->notifying)
		cvfs_fs_set_notify(m->fs, NULL);
	if (m->locks)
		cvfs_fs_locks_forget(m->fs);
	if (m->mounted)
		fuse_session_unmount(m->se);
	fuse_session_destroy(m->se);
	pthread_mutex_destroy(&m->lk_mu);
	pthread_cond_destroy(&m->lk_cv);
	pthread_mutex_destroy(&m->rx_mu);
	pthread_mutex_destroy(&m->rel_mu);
	pthread_cond_destroy(&m->rel_cv);
	pthread_mutex_destroy(&m->qos_mu);
	pthread_mutex_destroy(&m->lf_mu);
	pthread_mutex_destroy(&m->neg_mu);
	pthread_cond_destroy(&m->neg_cv);
	pthread_cond_destroy(&m->lf_cv);
	if (m->stop_efd >= 0)
		close(m->stop_efd);
	free(m->mountpoint);
	free(m);
}

int cvfs_mount_daemonize(void)
{
	return fuse_daemonize(0) == 0 ? 0 : -EIO;
}

int cvfs_mount_fuse_version(void)
{
	return fuse_version();
}
