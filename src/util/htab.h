/* An intrusive chained hash table.  Not locked: the owner's lock protects it. */
#ifndef CVFS_UTIL_HTAB_H
#define CVFS_UTIL_HTAB_H
#include <stddef.h>
#include <stdint.h>

struct cvfs_hnode {
	struct cvfs_hnode *next;
	uint64_t hash;
};

struct cvfs_htab {
	struct cvfs_hnode **b;
	size_t mask; /* buckets - 1 */
	size_t n;
};

typedef int (*cvfs_heq_fn)(const struct cvfs_hnode *node, const void *key);

int cvfs_htab_init(struct cvfs_htab *t, size_t buckets);
void cvfs_htab_fini(struct cvfs_htab *t); /* frees the buckets, not the nodes */
struct cvfs_hnode *cvfs_htab_find(const struct cvfs_htab *t, uint64_t hash, cvfs_heq_fn eq,
				  const void *key);
/* Grows the table as needed; if growing fails the node is still inserted. */
void cvfs_htab_insert(struct cvfs_htab *t, struct cvfs_hnode *node);
void cvfs_htab_remove(struct cvfs_htab *t, struct cvfs_hnode *node);
/* Iteration: start with *pos = 0 and prev = NULL. */
struct cvfs_hnode *cvfs_htab_next(const struct cvfs_htab *t, size_t *pos, struct cvfs_hnode *prev);

uint64_t cvfs_hash_u64(uint64_t x);
uint64_t cvfs_hash_bytes(const void *p, size_t len, uint64_t seed);
#endif
