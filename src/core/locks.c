/*
 * Locks kept by the store (fcntl byte ranges and flock), for stores shared
 * by several clients: the mount registers its lock requests only when the
 * store has the lock methods, and the kernel then sends every lock, unlock
 * and lock test here instead of keeping them itself.
 *
 * What the kernel does not send: an unlock when a descriptor is closed.  It
 * sends FLUSH with the closing process's lock owner (POSIX: any close drops
 * the process's locks on the file) and RELEASE, at the last close of an open
 * file, with the owner of its flock lock.  OFD locks (owned by the open file)
 * get neither, so they are dropped at RELEASE through the handle they were
 * taken with.  To spare a store round trip on every close(2), this file
 * remembers which (file, owner, kind) may hold locks through this process;
 * a close that matches none costs nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>

#include "core/core.h"

struct lkrec {
	struct lkrec *next;
	const struct cvfs_fs *fs;
	uint64_t ino, owner;
	const struct cvfs_handle *fh; /* the open it was last taken through */
	int flock;
};

#define LK_BUCKETS 256
static pthread_mutex_t lk_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lkrec *lk_tab[LK_BUCKETS];

static struct lkrec **bucket(uint64_t ino)
{
	return &lk_tab[(ino * 0x9e3779b97f4a7c15ull) >> 56];
}

/* owner may hold locks of this kind on ino (taken through fh) */
static void rec_note(const struct cvfs_fs *fs, uint64_t ino, uint64_t owner,
		     const struct cvfs_handle *fh, int flock)
{
	pthread_mutex_lock(&lk_mu);
	struct lkrec **b = bucket(ino), *r;
	for (r = *b; r; r = r->next)
		if (r->fs == fs && r->ino == ino && r->owner == owner && r->flock == flock)
			break;
	if (!r && (r = calloc(1, sizeof(*r)))) {
		r->fs = fs;
		r->ino = ino;
		r->owner = owner;
		r->flock = flock;
		r->next = *b;
		*b = r;
	}
	if (r && fh)
		r->fh = fh;
	pthread_mutex_unlock(&lk_mu);
}

/* Forgets the record; 1 if there was one. */
static int rec_take(const struct cvfs_fs *fs, uint64_t ino, uint64_t owner, int flock)
{
	int found = 0;
	pthread_mutex_lock(&lk_mu);
	for (struct lkrec **p = bucket(ino); *p; p = &(*p)->next) {
		struct lkrec *r = *p;
		if (r->fs == fs && r->ino == ino && r->owner == owner && r->flock == flock) {
			*p = r->next;
			free(r);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&lk_mu);
	return found;
}

int cvfs_fs_has_locks(struct cvfs_fs *fs)
{
	const struct cvfs_store_ops *o = cvfs_fs_store(fs)->ops;
	return o->setlk && o->getlk;
}

static int check(const struct cvfs_lock *lk, int unlock_ok)
{
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && !(unlock_ok && lk->type == F_UNLCK))
		return -EINVAL;
	if (lk->start > lk->end)
		return -EINVAL;
	return 0;
}

int cvfs_fs_getlk(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino, struct cvfs_lock *lk)
{
	(void)fh;
	struct cvfs_store *st = cvfs_fs_store(fs);
	if (!cvfs_fs_has_locks(fs))
		return -ENOSYS;
	int rc = check(lk, 0);
	if (rc)
		return rc;
	return st->ops->getlk(st, ino, lk, 0);
}

/* owner's locks of one kind on ino: all gone */
static int unlock_all(struct cvfs_fs *fs, uint64_t ino, uint64_t owner, int flock)
{
	struct cvfs_store *st = cvfs_fs_store(fs);
	struct cvfs_lock lk = {.type = F_UNLCK, .start = 0, .end = CVFS_LOCK_EOF, .owner = owner};
	return st->ops->setlk(st, ino, &lk, flock);
}

int cvfs_fs_setlk(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino,
		  const struct cvfs_lock *lk)
{
	struct cvfs_store *st = cvfs_fs_store(fs);
	if (!cvfs_fs_has_locks(fs))
		return -ENOSYS;
	int rc = check(lk, 1);
	if (rc)
		return rc;
	rc = st->ops->setlk(st, ino, lk, 0);
	if (rc == 0 && lk->type != F_UNLCK)
		rec_note(fs, ino, lk->owner, fh, 0);
	else if (rc == 0 && lk->start == 0 && lk->end == CVFS_LOCK_EOF)
		rec_take(fs, ino, lk->owner, 0);
	return rc;
}

int cvfs_fs_flock(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino, uint64_t owner,
		  int op, uint32_t pid)
{
	struct cvfs_store *st = cvfs_fs_store(fs);
	if (!cvfs_fs_has_locks(fs))
		return -ENOSYS;
	struct cvfs_lock lk = {.start = 0, .end = CVFS_LOCK_EOF, .owner = owner, .pid = pid};
	switch (op & (LOCK_SH | LOCK_EX | LOCK_UN)) {
	case LOCK_SH:
		lk.type = F_RDLCK;
		break;
	case LOCK_EX:
		lk.type = F_WRLCK;
		break;
	case LOCK_UN:
		lk.type = F_UNLCK;
		break;
	default:
		return -EINVAL;
	}
	int rc = st->ops->setlk(st, ino, &lk, 1);
	if (rc == 0 && lk.type != F_UNLCK) {
		rec_note(fs, ino, owner, fh, 1);
	} else if (rc == 0) {
		rec_take(fs, ino, owner, 1);
	} else if (rc == -EAGAIN && rec_take(fs, ino, owner, 1)) {
		/* Linux drops the old lock before converting it, so two holders of
		 * shared locks that both wait for an exclusive one do not deadlock:
		 * do the same. */
		int urc = unlock_all(fs, ino, owner, 1);
		if (urc)
			rec_note(fs, ino, owner, fh, 1);
	}
	return rc;
}

int cvfs_fs_lock_flush(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino, uint64_t owner)
{
	(void)fh;
	if (!cvfs_fs_has_locks(fs) || !rec_take(fs, ino, owner, 0))
		return 0;
	unlock_all(fs, ino, owner, 0); /* a store that fails here must retry itself */
	return 1;
}

int cvfs_fs_lock_release(struct cvfs_fs *fs, struct cvfs_handle *fh, uint64_t ino,
			 int has_flock_owner, uint64_t flock_owner)
{
	if (!cvfs_fs_has_locks(fs))
		return 0;
	int did = 0;
	if (has_flock_owner && rec_take(fs, ino, flock_owner, 1)) {
		unlock_all(fs, ino, flock_owner, 1);
		did = 1;
	}
	if (!fh)
		return did;
	/* Every lock taken through this open: OFD locks (owned by it), and its
	 * flock lock if the kernel did not name it.  A process's fcntl locks
	 * taken through it are gone already: the close that dropped the last
	 * descriptor flushed them. */
	for (;;) {
		struct lkrec *hit = NULL;
		pthread_mutex_lock(&lk_mu);
		for (struct lkrec **p = bucket(ino); *p; p = &(*p)->next) {
			if ((*p)->fs == fs && (*p)->ino == ino && (*p)->fh == fh) {
				hit = *p;
				*p = hit->next;
				break;
			}
		}
		pthread_mutex_unlock(&lk_mu);
		if (!hit)
			break;
		unlock_all(fs, ino, hit->owner, hit->flock);
		free(hit);
		did = 1;
	}
	return did;
}

void cvfs_fs_locks_forget(struct cvfs_fs *fs)
{
	pthread_mutex_lock(&lk_mu);
	for (size_t i = 0; i < LK_BUCKETS; i++) {
		for (struct lkrec **p = &lk_tab[i]; *p;) {
			struct lkrec *r = *p;
			if (r->fs == fs) {
				*p = r->next;
				free(r);
			} else {
				p = &r->next;
			}
		}
	}
	pthread_mutex_unlock(&lk_mu);
}
