/* The store flags both programs take (--db-path FILE, ...), their -o forms
 * (-o db_path=FILE: the flag with '_' for '-') and the store option each
 * sets.  One table, so chuk-vfs-mount and chuk-vfs always agree. */
#ifndef CVFS_TOOLS_STORE_FLAGS_H
#define CVFS_TOOLS_STORE_FLAGS_H

#include <getopt.h>
#include <string.h>

static const struct {
	const char *flag, *key;
} store_flags[] = {
	{"db-path", "path"},  {"redis-url", "url"}, {"redis-prefix", "prefix"},
	{"bucket", "bucket"}, {"s3-prefix", "prefix"}, {"region", "region"},
	{"endpoint-url", "endpoint"},
};
#define N_STORE_FLAGS (sizeof(store_flags) / sizeof(store_flags[0]))
/* getopt_long answers STORE_FLAG_BASE + i for store_flags[i] */
#define STORE_FLAG_BASE 1000

/* Copies opts (ended by a zero entry) and the store flags into out, which
 * has room for n entries; returns out, or NULL when it is too small. */
static inline struct option *with_store_flags(const struct option *opts, struct option *out,
					      size_t n)
{
	size_t k = 0;
	while (opts[k].name)
		k++;
	if (k + N_STORE_FLAGS + 1 > n)
		return NULL;
	memcpy(out, opts, k * sizeof(*out));
	for (size_t i = 0; i < N_STORE_FLAGS; i++)
		out[k + i] = (struct option){store_flags[i].flag, required_argument, NULL,
					     STORE_FLAG_BASE + (int)i};
	memset(&out[k + N_STORE_FLAGS], 0, sizeof(*out));
	return out;
}

/* The store option of "-o NAME=..." (NAME of len bytes, e.g. "db_path"),
 * or NULL when NAME is not a store flag. */
static inline const char *store_flag_o(const char *name, size_t len)
{
	for (size_t i = 0; i < N_STORE_FLAGS; i++) {
		const char *f = store_flags[i].flag;
		if (strlen(f) != len)
			continue;
		size_t j = 0;
		while (j < len && (name[j] == f[j] || (name[j] == '_' && f[j] == '-')))
			j++;
		if (j == len)
			return store_flags[i].key;
	}
	return NULL;
}

#endif
