#include "htab.h"

#include <errno.h>
#include <stdlib.h>

int cvfs_htab_init(struct cvfs_htab *t, size_t buckets)
{
	size_t n = 16;
	while (n < buckets)
		n <<= 1;
	t->b = calloc(n, sizeof(*t->b));
	if (!t->b)
		return -ENOMEM;
	t->mask = n - 1;
	t->n = 0;
	return 0;
}

void cvfs_htab_fini(struct cvfs_htab *t)
{
	free(t->b);
	t->b = NULL;
	t->n = 0;
}

struct cvfs_hnode *cvfs_htab_find(const struct cvfs_htab *t, uint64_t hash, cvfs_heq_fn eq,
				  const void *key)
{
	for (struct cvfs_hnode *p = t->b[hash & t->mask]; p; p = p->next)
		if (p->hash == hash && eq(p, key))
			return p;
	return NULL;
}

static void ht_grow(struct cvfs_htab *t)
{
	size_t nb = (t->mask + 1) * 2;
	struct cvfs_hnode **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* keep working with longer chains */
	for (size_t i = 0; i <= t->mask; i++) {
		struct cvfs_hnode *p = t->b[i];
		while (p) {
			struct cvfs_hnode *nx = p->next;
			size_t k = p->hash & (nb - 1);
			p->next = b[k];
			b[k] = p;
			p = nx;
		}
	}
	free(t->b);
	t->b = b;
	t->mask = nb - 1;
}

void cvfs_htab_insert(struct cvfs_htab *t, struct cvfs_hnode *node)
{
	if (t->n >= t->mask + 1)
		ht_grow(t);
	size_t k = node->hash & t->mask;
	node->next = t->b[k];
	t->b[k] = node;
	t->n++;
}

void cvfs_htab_remove(struct cvfs_htab *t, struct cvfs_hnode *node)
{
	struct cvfs_hnode **pp = &t->b[node->hash & t->mask];
	while (*pp) {
		if (*pp == node) {
			*pp = node->next;
			t->n--;
			return;
		}
		pp = &(*pp)->next;
	}
}

struct cvfs_hnode *cvfs_htab_next(const struct cvfs_htab *t, size_t *pos, struct cvfs_hnode *prev)
{
	if (prev && prev->next)
		return prev->next;
	size_t i = prev ? *pos + 1 : *pos;
	for (; i <= t->mask; i++) {
		if (t->b[i]) {
			*pos = i;
			return t->b[i];
		}
	}
	*pos = i;
	return NULL;
}

uint64_t cvfs_hash_u64(uint64_t x)
{
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t cvfs_hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull ^ cvfs_hash_u64(seed);
	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return cvfs_hash_u64(h);
}
