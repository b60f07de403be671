/*
 * The Redis store's process-wide cache of what the server holds: inode
 * records, directory entries (present or absent), and which directories are
 * known whole (then a name not in the cache is absent).  It is only used
 * while the change feed is connected (other clients' changes evict entries)
 * and for at most ttl ms.  Write transactions take what they read from it on
 * trust and the commit script checks it (docs/redis.md), so a stale entry
 * costs a rerun, never a lost update.
 *
 * Fills race with evictions: take a token (rc_*_snap) before asking the
 * server and pass it to the fill; a fill whose answer may be older than an
 * eviction or a change of ours made since is dropped.
 */
#ifndef CVFS_REDIS_CACHE_H
#define CVFS_REDIS_CACHE_H
#include <stddef.h>
#include <stdint.h>

#include "cvfs/store.h"

struct rcache;

/* A directory entry as the server keeps it: d:DIR field -> "INO TYPE EID". */
struct rc_dent {
	int present;
	uint64_t ino, eid;
	uint32_t type; /* S_IFMT bits */
};

struct rc_tok {
	uint64_t seq, epoch;
	int any; /* taken by rc_inode_snap_any */
};

struct rcache *rc_new(int ttl_ms, size_t max_entries);
void rc_free(struct rcache *c);
/* The feed went up (live=1) or down: start from nothing either way. */
void rc_live(struct rcache *c, int live);

/* inode records */
int rc_inode_get(struct rcache *c, uint64_t ino, struct cvfs_attr *a); /* 1: hit */
void rc_inode_snap(struct rcache *c, uint64_t ino, struct rc_tok *tok);
/* before reading records not known yet: any change since drops the fill */
void rc_inode_snap_any(struct rcache *c, struct rc_tok *tok);
void rc_inode_fill(struct rcache *c, const struct rc_tok *tok, const struct cvfs_attr *a);
/* our commit: the new record, or NULL when deleted */
void rc_inode_set(struct rcache *c, uint64_t ino, const struct cvfs_attr *a);
void rc_inode_inval(struct rcache *c, uint64_t ino);
/* ino is known to have no xattrs (until its record changes or goes) */
int rc_inode_noxattr(struct rcache *c, uint64_t ino);
/* it has none: tok from rc_inode_snap before asking (or after our commit) */
void rc_inode_set_noxattr(struct rcache *c, const struct rc_tok *tok, uint64_t ino);

/* entries.  rc_dent_get: 1 hit (d->present says which), 0 unknown. */
int rc_dent_get(struct rcache *c, uint64_t dir, const char *name, size_t len, struct rc_dent *d);
void rc_dir_snap(struct rcache *c, uint64_t dir, struct rc_tok *tok);
void rc_dent_fill(struct rcache *c, const struct rc_tok *tok, uint64_t dir, const char *name,
		  size_t len, const struct rc_dent *d);
/* A whole directory from the server: begin (drops what was known of it),
 * add each entry, then end (it is whole).  Nothing is kept if the token is
 * stale. */
int rc_dir_load_begin(struct rcache *c, const struct rc_tok *tok, uint64_t dir);
void rc_dir_load_add(struct rcache *c, uint64_t dir, const char *name, size_t len,
		     const struct rc_dent *d);
void rc_dir_load_end(struct rcache *c, uint64_t dir);
/* A directory we just made: whole and empty. */
void rc_dir_new(struct rcache *c, uint64_t dir);
/* The number of entries of a whole directory (-1: not known whole). */
long rc_dir_count(struct rcache *c, uint64_t dir);
/* our commit */
void rc_dent_set(struct rcache *c, uint64_t dir, const char *name, size_t len,
		 const struct rc_dent *d);
/* another client changed (dir, name): forget it (in a whole directory it is
 * marked unknown: the other names stay known) */
void rc_dent_inval(struct rcache *c, uint64_t dir, const char *name, size_t len);
/* Is dir known whole (but for names marked unknown)? */
int rc_dir_whole(struct rcache *c, uint64_t dir);
/* forget all of dir */
void rc_dir_inval(struct rcache *c, uint64_t dir);

#endif
