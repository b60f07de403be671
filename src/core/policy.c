/*
 * The security policy (see policy.h and docs/security.md).
 *
 * Settings are plain fields, written only while the policy is built (before
 * the filesystem runs) and read without locks afterwards.  The quota
 * counters are atomics changed by compare-and-swap loops, so concurrent
 * charges can never pass a limit.  The violation log (a ring of the last
 * CVFS_POL_RING entries, plus stderr and an optional file) has its own mutex.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/policy.h"

#define CVFS_POL_RING 1000
#define MAX_DEPTH_LIMIT 4096
#define MAX_LIST 4096 /* entries per list: a guard against runaway configs */

struct strlist {
	char **v;
	size_t n, cap;
};

struct viol {
	char time[32];
	pid_t pid;
	uint32_t uid;
	enum cvfs_pol_op op;
	int quota_op; /* 0: op; 1: "write" (size/bytes); 2: "create" (files) */
	char *path;
	char *rule;
	int err;
};

struct cvfs_policy {
	/* settings */
	int readonly;
	struct strlist ro_paths, block_paths, allow_roots;
	struct strlist allow_ext, deny_ext; /* lower case, without the dot; "" = none */
	struct strlist deny_name;           /* fnmatch globs, matched FNM_CASEFOLD */
	uint64_t max_file_size, max_total_bytes, max_files; /* 0: no limit */
	unsigned max_depth;                                  /* 0: no limit */
	char *log_path;
	int log_fd;
	char *profile; /* the last profile applied, for describe() */

	/* counters */
	_Atomic uint64_t used_bytes, used_files;
	_Atomic uint64_t nviol;

	/* the violation log */
	pthread_mutex_t log_lock;
	struct viol ring[CVFS_POL_RING];
	size_t ring_head; /* index of the oldest entry */
	size_t ring_n;
};

/* ---- small helpers ---- */

static int fail(char **errmsg, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **errmsg, int rc, const char *fmt, ...)
{
	if (errmsg) {
		free(*errmsg);
		*errmsg = NULL;
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(errmsg, fmt, ap) < 0)
			*errmsg = NULL;
		va_end(ap);
	}
	return rc;
}

static void list_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int list_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

/* Takes ownership of s.  Duplicates are dropped. */
static int list_add(struct strlist *l, char *s)
{
	if (list_has(l, s)) {
		free(s);
		return 0;
	}
	if (l->n >= MAX_LIST) {
		free(s);
		return -E2BIG;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			free(s);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
	return 0;
}

/* A growing string for the JSON we hand out. */
struct buf {
	char *s;
	size_t len, cap;
	int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = 1;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		min = 0x80;
		c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		min = 0x800;
		c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		min = 0x10000;
		c &= 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

/* The body of a JSON string (no quotes).  Control characters and '"' '\'
 * are escaped; bytes that are not valid UTF-8 become \u00XX (their Latin-1
 * reading), so the output is always valid JSON. */
static void buf_json_body(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	while (*s) {
		if (*s == '"' || *s == '\\') {
			char e[2] = {'\\', (char)*s};
			buf_add(b, e, 2);
			s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			buf_fmt(b, "\\u%04x", *s);
			s++;
		} else {
			size_t n = utf8_len(s);
			if (n == 0) {
				buf_fmt(b, "\\u%04x", *s);
				s++;
			} else {
				buf_add(b, (const char *)s, n);
				s += n;
			}
		}
	}
}

static void buf_json_str(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	buf_json_body(b, s);
	buf_add(b, "\"", 1);
}

static const char *errno_name(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EROFS: return "EROFS";
	case EFBIG: return "EFBIG";
	case EDQUOT: return "EDQUOT";
	case ENOSPC: return "ENOSPC";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EINVAL: return "EINVAL";
	default: return "EIO";
	}
}

static const char *op_name(enum cvfs_pol_op op)
{
	switch (op) {
	case CVFS_POL_LOOKUP: return "lookup";
	case CVFS_POL_LIST: return "list";
	case CVFS_POL_CREATE: return "create";
	case CVFS_POL_MKDIR: return "mkdir";
	case CVFS_POL_SYMLINK: return "symlink";
	case CVFS_POL_LINK: return "link";
	case CVFS_POL_RENAME_FROM: return "rename_from";
	case CVFS_POL_RENAME_TO: return "rename_to";
	case CVFS_POL_REMOVE: return "remove";
	case CVFS_POL_WRITE: return "write";
	case CVFS_POL_SETATTR: return "setattr";
	case CVFS_POL_XATTR: return "xattr";
	case CVFS_POL_OPEN: return "open";
	}
	return "unknown";
}

/* ---- new / free ---- */

int cvfs_policy_new(struct cvfs_policy **out)
{
	*out = NULL;
	struct cvfs_policy *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->log_fd = -1;
	atomic_init(&p->used_bytes, 0);
	atomic_init(&p->used_files, 0);
	atomic_init(&p->nviol, 0);
	if (pthread_mutex_init(&p->log_lock, NULL)) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void cvfs_policy_free(struct cvfs_policy *p)
{
	if (!p)
		return;
	list_free(&p->ro_paths);
	list_free(&p->block_paths);
	list_free(&p->allow_roots);
	list_free(&p->allow_ext);
	list_free(&p->deny_ext);
	list_free(&p->deny_name);
	for (size_t i = 0; i < p->ring_n; i++) {
		struct viol *v = &p->ring[(p->ring_head + i) % CVFS_POL_RING];
		free(v->path);
		free(v->rule);
	}
	if (p->log_fd >= 0)
		close(p->log_fd);
	free(p->log_path);
	free(p->profile);
	pthread_mutex_destroy(&p->log_lock);
	free(p);
}

/* ---- parsing values ---- */

/* Sizes: digits, optionally K, M, G or T (powers of 1024; "KB"/"KiB" too). */
static int parse_size(const char *key, const char *v, uint64_t *out, char **errmsg)
{
	const char *s = v;
	uint64_t n = 0;
	if (!v || !*v)
		return fail(errmsg, -EINVAL, "%s: empty value (want bytes, e.g. 10M)", key);
	if (!isdigit((unsigned char)*s))
		return fail(errmsg, -EINVAL, "%s: '%s' is not a size (want bytes with an optional "
					    "K/M/G/T suffix, e.g. 10M; no sign)", key, v);
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return fail(errmsg, -EINVAL, "%s: '%s' is too large", key, v);
		n = n * 10 + d;
	}
	unsigned shift = 0;
	if (*s) {
		switch (toupper((unsigned char)*s)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: shift = 99; break;
		}
		if (shift != 99) {
			s++;
			if (strcmp(s, "B") == 0 || strcmp(s, "b") == 0 || strcmp(s, "iB") == 0)
				s += strlen(s);
		}
		if (shift == 99 || *s)
			return fail(errmsg, -EINVAL, "%s: '%s' is not a size (want bytes with an "
						    "optional K/M/G/T suffix, e.g. 10M)", key, v);
	}
	if (shift && n > (UINT64_MAX >> shift))
		return fail(errmsg, -EINVAL, "%s: '%s' is too large", key, v);
	*out = n << shift;
	return 0;
}

/* Counts: plain decimal digits. */
static int parse_count(const char *key, const char *v, uint64_t max, uint64_t *out, char **errmsg)
{
	uint64_t n = 0;
	if (!v || !*v)
		return fail(errmsg, -EINVAL, "%s: empty value (want a number)", key);
	for (const char *s = v; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return fail(errmsg, -EINVAL, "%s: '%s' is not a non-negative whole number",
				    key, v);
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return fail(errmsg, -EINVAL, "%s: '%s' is too large", key, v);
		n = n * 10 + d;
	}
	if (n > max)
		return fail(errmsg, -EINVAL, "%s: '%s' is too large (at most %" PRIu64 ")", key, v,
			    max);
	*out = n;
	return 0;
}

/* Limits accept "none"/"unlimited" for 0 (no limit), to lift a profile's. */
static int is_none(const char *v)
{
	return v && (strcasecmp(v, "none") == 0 || strcasecmp(v, "unlimited") == 0);
}

static int parse_bool(const char *key, const char *v, int *out, char **errmsg)
{
	static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; v && i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return fail(errmsg, -EINVAL, "%s: '%s' is not a boolean (want 1 or 0)", key,
		    v ? v : "");
}

/* An absolute path: "//" collapsed, a trailing "/" dropped; "." and ".."
 * refused (rules are on resolved paths). */
static int norm_path(const char *key, const char *v, char **out, char **errmsg)
{
	if (!v || v[0] != '/')
		return fail(errmsg, -EINVAL, "%s: '%s' is not an absolute path inside the "
					    "filesystem (start it with /)", key, v ? v : "");
	size_t len = strlen(v);
	if (len >= PATH_MAX)
		return fail(errmsg, -EINVAL, "%s: path too long", key);
	char *r = malloc(len + 2);
	if (!r)
		return -ENOMEM;
	size_t o = 0;
	const char *s = v;
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
			free(r);
			return fail(errmsg, -EINVAL, "%s: '%s' has a '.' or '..' component", key, v);
		}
		r[o++] = '/';
		memcpy(r + o, s, n);
		o += n;
		s += n;
	}
	if (o == 0)
		r[o++] = '/';
	r[o] = 0;
	*out = r;
	return 0;
}

/* An extension entry: ".py", "py", ".PY" -> "py"; "" or "." -> "" (files
 * without an extension).  A dot inside ("tar.gz") could never match. */
static int norm_ext(const char *key, const char *v, char **out, char **errmsg)
{
	const char *s = v;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '.')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (memchr(s, '.', n) || memchr(s, '/', n))
		return fail(errmsg, -EINVAL,
			    "%s: '%s' can never match: an extension is what follows the last dot "
			    "of a name (give '.gz', not '.tar.gz')", key, v);
	char *r = strndup(s, n);
	if (!r)
		return -ENOMEM;
	for (char *c = r; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	*out = r;
	return 0;
}

static int norm_glob(const char *key, const char *v, char **out, char **errmsg)
{
	const char *s = v;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return fail(errmsg, -EINVAL, "%s: empty pattern", key);
	if (memchr(s, '/', n))
		return fail(errmsg, -EINVAL, "%s: '%s' contains '/': patterns match a file's "
					    "name, not its path (use block_path for paths)", key, v);
	*out = strndup(s, n);
	return *out ? 0 : -ENOMEM;
}

enum kind { K_BOOL, K_PATHS, K_EXTS, K_GLOBS, K_SIZE, K_COUNT, K_DEPTH, K_FILE };

static const struct keydef {
	const char *key;
	enum kind kind;
	int comma; /* a list value may be a comma list */
} keys[] = {
	{"readonly", K_BOOL, 0},
	{"readonly_path", K_PATHS, 0},
	{"block_path", K_PATHS, 0},
	{"allow_root", K_PATHS, 0},
	{"allow_ext", K_EXTS, 1},
	{"deny_ext", K_EXTS, 1},
	{"deny_name", K_GLOBS, 1},
	{"max_file_size", K_SIZE, 0},
	{"max_total_bytes", K_SIZE, 0},
	{"max_files", K_COUNT, 0},
	{"max_depth", K_DEPTH, 0},
	{"log", K_FILE, 0},
};

static const struct keydef *find_key(const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].key, key) == 0)
			return &keys[i];
	return NULL;
}

static struct strlist *list_of(struct cvfs_policy *p, const char *key)
{
	if (!strcmp(key, "readonly_path"))
		return &p->ro_paths;
	if (!strcmp(key, "block_path"))
		return &p->block_paths;
	if (!strcmp(key, "allow_root"))
		return &p->allow_roots;
	if (!strcmp(key, "allow_ext"))
		return &p->allow_ext;
	if (!strcmp(key, "deny_ext"))
		return &p->deny_ext;
	return &p->deny_name;
}

static int norm_item(const struct keydef *k, const char *v, char **out, char **errmsg)
{
	switch (k->kind) {
	case K_PATHS: {
		int rc = norm_path(k->key, v, out, errmsg);
		if (rc == 0 && strcmp(k->key, "block_path") == 0 && strcmp(*out, "/") == 0) {
			free(*out);
			*out = NULL;
			return fail(errmsg, -EINVAL, "block_path: '/' would hide everything");
		}
		return rc;
	}
	case K_EXTS:
		return norm_ext(k->key, v, out, errmsg);
	default:
		return norm_glob(k->key, v, out, errmsg);
	}
}

/* A list value: every element is checked before any is added. */
static int set_list(struct cvfs_policy *p, const struct keydef *k, const char *value,
		    char **errmsg)
{
	char *items[256];
	size_t n = 0;
	int rc = 0;
	if (!k->comma) {
		rc = norm_item(k, value, &items[0], errmsg);
		if (rc)
			return rc;
		n = 1;
	} else {
		const char *s = value;
		for (;;) {
			const char *e = strchr(s, ',');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			if (n == sizeof(items) / sizeof(items[0])) {
				rc = fail(errmsg, -EINVAL, "%s: too many entries in one value", k->key);
				break;
			}
			char *one = strndup(s, len);
			if (!one) {
				rc = -ENOMEM;
				break;
			}
			rc = norm_item(k, one, &items[n], errmsg);
			free(one);
			if (rc)
				break;
			n++;
			if (!e)
				break;
			s = e + 1;
		}
		if (rc) {
			for (size_t i = 0; i < n; i++)
				free(items[i]);
			return rc;
		}
	}
	struct strlist *l = list_of(p, k->key);
	for (size_t i = 0; i < n; i++) {
		if (rc) {
			free(items[i]);
			continue;
		}
		rc = list_add(l, items[i]); /* takes items[i] */
		if (rc == -E2BIG)
			rc = fail(errmsg, -EINVAL, "%s: more than %d entries", k->key, MAX_LIST);
	}
	return rc;
}

static int set_log(struct cvfs_policy *p, const char *value, char **errmsg)
{
	if (!value || !*value)
		return fail(errmsg, -EINVAL, "log: empty path");
	int fd = open(value, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		int e = errno;
		return fail(errmsg, -e, "log: cannot open '%s': %s", value, strerror(e));
	}
	struct stat sb;
	if (fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) &&
	    !S_ISCHR(sb.st_mode)) {
		close(fd);
		return fail(errmsg, -EINVAL, "log: '%s' is not a file", value);
	}
	char *path = realpath(value, NULL);
	if (!path)
		path = strdup(value);
	if (!path) {
		close(fd);
		return -ENOMEM;
	}
	if (p->log_fd >= 0)
		close(p->log_fd);
	free(p->log_path);
	p->log_fd = fd;
	p->log_path = path;
	return 0;
}

int cvfs_policy_set(struct cvfs_policy *p, const char *key, const char *value, char **errmsg)
{
	if (errmsg)
		*errmsg = NULL;
	if (!key)
		return fail(errmsg, -EINVAL, "policy: no key");
	const struct keydef *k = find_key(key);
	if (!k)
		return fail(errmsg, -EINVAL,
			    "policy: unknown setting '%s' (known: readonly, readonly_path, "
			    "block_path, allow_root, allow_ext, deny_ext, deny_name, max_file_size, "
			    "max_total_bytes, max_files, max_depth, log)",
			    key);
	if (!value)
		return fail(errmsg, -EINVAL, "%s: no value", key);
	uint64_t n = 0;
	int rc;
	switch (k->kind) {
	case K_BOOL:
		return parse_bool(key, value, &p->readonly, errmsg);
	case K_PATHS:
	case K_EXTS:
	case K_GLOBS:
		return set_list(p, k, value, errmsg);
	case K_SIZE:
		if (is_none(value))
			n = 0;
		else if ((rc = parse_size(key, value, &n, errmsg)))
			return rc;
		if (!strcmp(key, "max_file_size"))
			p->max_file_size = n;
		else
			p->max_total_bytes = n;
		return 0;
	case K_COUNT:
		if (is_none(value))
			n = 0;
		else if ((rc = parse_count(key, value, UINT64_MAX, &n, errmsg)))
			return rc;
		p->max_files = n;
		return 0;
	case K_DEPTH:
		if (is_none(value))
			n = 0;
		else if ((rc = parse_count(key, value, MAX_DEPTH_LIMIT, &n, errmsg)))
			return rc;
		p->max_depth = (unsigned)n;
		return 0;
	case K_FILE:
		return set_log(p, value, errmsg);
	}
	return -EINVAL;
}

/* ---- profiles ---- */

struct kv {
	const char *k, *v;
};

/* Executables and shared libraries of the common systems.  Versioned
 * libraries (libz.so.1) have extension "1": deny_name catches those. */
#define STRICT_EXT ".exe,.dll,.com,.scr,.msi,.bat,.cmd,.ps1,.vbs,.so,.dylib,.ko,.sys"

static const struct kv prof_default[] = {
	{"max_file_size", "1G"},
	{NULL, NULL},
};
static const struct kv prof_strict[] = {
	{"max_file_size", "100M"},
	{"deny_ext", STRICT_EXT},
	{"deny_name", "*.so.[0-9]*"},
	{"block_path", "/.ssh"},
	{"block_path", "/.aws"},
	{"block_path", "/.gnupg"},
	{"block_path", "/.netrc"},
	{"block_path", "/.git-credentials"},
	{"block_path", "/.pgpass"},
	{NULL, NULL},
};
static const struct kv prof_readonly[] = {
	{"readonly", "1"},
	{NULL, NULL},
};
static const struct kv prof_untrusted[] = {
	{"max_total_bytes", "1G"},
	{"max_files", "100000"},
	{"max_depth", "32"},
	{"deny_name", "*.pem,*.key,*.p12,*.pfx,id_rsa*,id_dsa*,id_ecdsa*,id_ed25519*"},
	{NULL, NULL},
};
static const struct kv prof_testing[] = {
	{"max_file_size", "1M"},
	{"max_total_bytes", "10M"},
	{"max_files", "1000"},
	{NULL, NULL},
};

static int apply(struct cvfs_policy *p, const struct kv *kv, char **errmsg)
{
	for (; kv->k; kv++) {
		int rc = cvfs_policy_set(p, kv->k, kv->v, errmsg);
		if (rc)
			return rc;
	}
	return 0;
}

int cvfs_policy_profile(struct cvfs_policy *p, const char *name, char **errmsg)
{
	if (errmsg)
		*errmsg = NULL;
	int rc;
	if (!name)
		name = "";
	if (!strcmp(name, "default"))
		rc = apply(p, prof_default, errmsg);
	else if (!strcmp(name, "strict"))
		rc = apply(p, prof_strict, errmsg);
	else if (!strcmp(name, "readonly"))
		rc = apply(p, prof_readonly, errmsg);
	else if (!strcmp(name, "untrusted")) {
		rc = apply(p, prof_strict, errmsg);
		if (!rc)
			rc = apply(p, prof_untrusted, errmsg);
	} else if (!strcmp(name, "testing"))
		rc = apply(p, prof_testing, errmsg);
	else
		return fail(errmsg, -EINVAL,
			    "policy: unknown profile '%s' (known: default, strict, readonly, "
			    "untrusted, testing)",
			    name);
	if (rc)
		return rc;
	char *dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	free(p->profile);
	p->profile = dup;
	return 0;
}

/* ---- the config file ---- */

static int load_value(struct cvfs_policy *p, const char *file, const char *key,
		      struct json_object *v, char **errmsg)
{
	const struct keydef *k = find_key(key);
	if (!k)
		return fail(errmsg, -EINVAL,
			    "%s: unknown setting '%s' (known: profile, readonly, readonly_path, "
			    "block_path, allow_root, allow_ext, deny_ext, deny_name, max_file_size, "
			    "max_total_bytes, max_files, max_depth, log)",
			    file, key);
	enum json_type t = json_object_get_type(v);
	char num[32];
	const char *s = NULL;
	int rc;
	int list = k->kind == K_PATHS || k->kind == K_EXTS || k->kind == K_GLOBS;

	if (list && t == json_type_array) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			if (json_object_get_type(e) != json_type_string)
				return fail(errmsg, -EINVAL, "%s: %s[%zu]: expected a string", file,
					    key, i);
			/* One element is one setting (a comma list for the extension
			 * and pattern keys; "" in allow_ext: files without one). */
			rc = cvfs_policy_set(p, key, json_object_get_string(e), errmsg);
			if (rc)
				goto prefix;
		}
		return 0;
	}
	switch (t) {
	case json_type_string:
		s = json_object_get_string(v);
		break;
	case json_type_boolean:
		if (k->kind != K_BOOL)
			return fail(errmsg, -EINVAL, "%s: %s: expected %s, not a boolean", file, key,
				    list ? "a string or an array of strings" : "a number or string");
		s = json_object_get_boolean(v) ? "1" : "0";
		break;
	case json_type_int:
		if (k->kind != K_BOOL && k->kind != K_SIZE && k->kind != K_COUNT &&
		    k->kind != K_DEPTH)
			return fail(errmsg, -EINVAL, "%s: %s: expected %s, not a number", file, key,
				    list ? "a string or an array of strings" : "a string");
		errno = 0;
		int64_t iv = json_object_get_int64(v);
		if (iv < 0)
			return fail(errmsg, -EINVAL, "%s: %s: %" PRId64 " is negative", file, key,
				    iv);
		if (errno || iv == INT64_MAX)
			return fail(errmsg, -EINVAL, "%s: %s: number too large (give a string "
						    "like \"16T\")", file, key);
		snprintf(num, sizeof(num), "%" PRId64, iv);
		s = num;
		break;
	default:
		return fail(errmsg, -EINVAL, "%s: %s: expected %s", file, key,
			    k->kind == K_BOOL ? "true or false"
			    : list	      ? "a string or an array of strings"
			    : k->kind == K_FILE ? "a string"
						: "a number or a string");
	}
	rc = cvfs_policy_set(p, key, s, errmsg);
	if (rc == 0)
		return 0;
prefix:
	if (errmsg && *errmsg) {
		char *m = *errmsg;
		*errmsg = NULL;
		fail(errmsg, rc, "%s: %s", file, m);
		free(m);
	}
	return rc;
}

static int load_obj(struct cvfs_policy *p, const char *file, struct json_object *obj,
		    char **errmsg)
{
	struct json_object *prof;
	int rc;
	if (json_object_object_get_ex(obj, "profile", &prof)) {
		if (json_object_get_type(prof) != json_type_string)
			return fail(errmsg, -EINVAL, "%s: profile: expected a string", file);
		rc = cvfs_policy_profile(p, json_object_get_string(prof), errmsg);
		if (rc) {
			if (errmsg && *errmsg) {
				char *m = *errmsg;
				*errmsg = NULL;
				fail(errmsg, rc, "%s: %s", file, m);
				free(m);
			}
			return rc;
		}
	}
	json_object_object_foreach(obj, key, val)
	{
		if (strcmp(key, "profile") == 0)
			continue;
		rc = load_value(p, file, key, val, errmsg);
		if (rc)
			return rc;
	}
	return 0;
}

#define MAX_CONFIG (1 << 20)

int cvfs_policy_load(struct cvfs_policy *p, const char *file, char **errmsg)
{
	if (errmsg)
		*errmsg = NULL;
	if (!file || !*file)
		return fail(errmsg, -EINVAL, "policy config: no file name");
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return fail(errmsg, -e, "%s: cannot open: %s", file, strerror(e));
	}
	struct stat sb;
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		close(fd);
		return fail(errmsg, -EISDIR, "%s: is a directory", file);
	}
	char *text = malloc(MAX_CONFIG + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, text + len, MAX_CONFIG + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(text);
			close(fd);
			return fail(errmsg, -e, "%s: cannot read: %s", file, strerror(e));
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > MAX_CONFIG) {
			free(text);
			close(fd);
			return fail(errmsg, -EINVAL, "%s: larger than %d bytes", file, MAX_CONFIG);
		}
	}
	close(fd);
	text[len] = 0;
	if (strlen(text) != len) {
		free(text);
		return fail(errmsg, -EINVAL, "%s: bad JSON: contains a NUL byte", file);
	}

	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		free(text);
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	int rc = 0;
	if (!obj) {
		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			rc = fail(errmsg, -EINVAL, "%s: bad JSON: unexpected end of file", file);
		else
			rc = fail(errmsg, -EINVAL, "%s: bad JSON at byte %zu: %s", file, used,
				  json_tokener_error_desc(jerr));
		free(text);
		return rc;
	}
	for (size_t i = used; i < len; i++) {
		if (!isspace((unsigned char)text[i])) {
			rc = fail(errmsg, -EINVAL, "%s: bad JSON: unexpected text at byte %zu "
						  "after the object", file, i);
			break;
		}
	}
	free(text);
	if (!rc && json_object_get_type(obj) != json_type_object)
		rc = fail(errmsg, -EINVAL, "%s: expected a JSON object of settings", file);

	/* Check it all on a scratch policy first, so a bad file changes nothing. */
	if (!rc) {
		struct cvfs_policy *scratch;
		rc = cvfs_policy_new(&scratch);
		if (!rc) {
			rc = load_obj(scratch, file, obj, errmsg);
			cvfs_policy_free(scratch);
		}
	}
	if (!rc)
		rc = load_obj(p, file, obj, errmsg);
	json_object_put(obj);
	return rc;
}

/* ---- queries ---- */

int cvfs_policy_active(const struct cvfs_policy *p)
{
	return p && (p->readonly || p->ro_paths.n || p->block_paths.n || p->allow_roots.n ||
		     p->allow_ext.n || p->deny_ext.n || p->deny_name.n || p->max_file_size ||
		     p->max_total_bytes || p->max_files || p->max_depth);
}

int cvfs_policy_readonly(const struct cvfs_policy *p)
{
	return p && p->readonly;
}

int cvfs_policy_has_quota(const struct cvfs_policy *p)
{
	return p && (p->max_total_bytes || p->max_files);
}

/* ---- the violation log ---- */

static void fmt_time(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void viol_json(struct buf *b, const struct viol *v)
{
	buf_str(b, "{\"time\":\"");
	buf_str(b, v->time);
	buf_fmt(b, "\",\"pid\":%ld,\"uid\":%" PRIu32 ",\"op\":\"%s\",\"path\":", (long)v->pid,
		v->uid,
		v->quota_op == 1   ? "write"
		: v->quota_op == 2 ? "create"
				   : op_name(v->op));
	buf_json_str(b, v->path);
	buf_str(b, ",\"rule\":");
	buf_json_str(b, v->rule);
	buf_fmt(b, ",\"errno\":\"%s\"}\n", errno_name(v->err));
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Records a refusal; returns err (negative). */
static int violation(struct cvfs_policy *p, enum cvfs_pol_op op, int quota_op, const char *path,
		     const struct cvfs_cred *cr, int err, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static int violation(struct cvfs_policy *p, enum cvfs_pol_op op, int quota_op, const char *path,
		     const struct cvfs_cred *cr, int err, const char *fmt, ...)
{
	if (op == CVFS_POL_LIST) /* a listing leaving out a hidden name: no attempt */
		return -err;
	struct viol v = {
		.pid = cr ? cr->pid : getpid(),
		.uid = cr ? cr->uid : (uint32_t)geteuid(),
		.op = op,
		.quota_op = quota_op,
		.err = err,
	};
	fmt_time(v.time, sizeof(v.time));
	v.path = strdup(path ? path : "");
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&v.rule, fmt, ap) < 0)
		v.rule = NULL;
	va_end(ap);
	atomic_fetch_add_explicit(&p->nviol, 1, memory_order_relaxed);

	/* The lines, built outside the lock. */
	struct buf human = {0}, json = {0};
	buf_str(&human, "chuk-vfs: policy: ");
	buf_str(&human, v.time);
	buf_fmt(&human, " pid=%ld uid=%" PRIu32 " %s ", (long)v.pid, v.uid,
		quota_op == 1 ? "write" : quota_op == 2 ? "create" : op_name(op));
	buf_json_body(&human, v.path ? v.path : path);
	buf_str(&human, ": refused by ");
	buf_json_body(&human, v.rule ? v.rule : "?");
	buf_fmt(&human, " (%s)\n", errno_name(err));
	viol_json(&json, &v);

	pthread_mutex_lock(&p->log_lock);
	if (!human.oom)
		write_all(STDERR_FILENO, human.s, human.len);
	if (p->log_fd >= 0 && !json.oom)
		write_all(p->log_fd, json.s, json.len);
	if (v.path && v.rule) {
		struct viol *slot;
		if (p->ring_n == CVFS_POL_RING) {
			slot = &p->ring[p->ring_head];
			free(slot->path);
			free(slot->rule);
			p->ring_head = (p->ring_head + 1) % CVFS_POL_RING;
		} else {
			slot = &p->ring[(p->ring_head + p->ring_n) % CVFS_POL_RING];
			p->ring_n++;
		}
		*slot = v;
	} else {
		free(v.path);
		free(v.rule);
	}
	pthread_mutex_unlock(&p->log_lock);
	free(human.s);
	free(json.s);
	return -err;
}

char *cvfs_policy_violations(struct cvfs_policy *p)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	if (p) {
		pthread_mutex_lock(&p->log_lock);
		for (size_t i = 0; i < p->ring_n; i++)
			viol_json(&b, &p->ring[(p->ring_head + i) % CVFS_POL_RING]);
		pthread_mutex_unlock(&p->log_lock);
	}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* ---- the checks ---- */

/* Is path prefix itself or below it?  Both absolute and normalised. */
static int under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 1 && prefix[0] == '/')
		return 1;
	return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static const char *find_under(const struct strlist *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (under(path, l->v[i]))
			return l->v[i];
	return NULL;
}

static unsigned depth_of(const char *path)
{
	unsigned d = 0;
	for (const char *s = path; *s;) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		d++;
		while (*s && *s != '/')
			s++;
	}
	return d;
}

static const char *base_of(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* The extension of a name: what follows its last dot, lower-cased, ignoring
 * leading dots (".gitignore" has none; ".bashrc.exe" has "exe"). */
static void ext_of(const char *name, char *out, size_t size)
{
	const char *s = name;
	while (*s == '.')
		s++;
	const char *dot = strrchr(s, '.');
	out[0] = 0;
	if (!dot)
		return;
	size_t i = 0;
	for (dot++; *dot && i + 1 < size; dot++)
		out[i++] = (char)tolower((unsigned char)*dot);
	out[i] = 0;
}

static int is_change(enum cvfs_pol_op op)
{
	return op != CVFS_POL_LOOKUP && op != CVFS_POL_OPEN && op != CVFS_POL_LIST;
}

/* Operations that bring a new name into being (depth and name rules). */
static int is_new_name(enum cvfs_pol_op op)
{
	return op == CVFS_POL_CREATE || op == CVFS_POL_MKDIR || op == CVFS_POL_SYMLINK ||
	       op == CVFS_POL_LINK || op == CVFS_POL_RENAME_TO;
}

int cvfs_policy_check(struct cvfs_policy *p, enum cvfs_pol_op op, const char *path, uint32_t type,
		      const struct cvfs_cred *cr)
{
	if (!p)
		return 0;
	if (!path)
		path = "/";
	const char *hit;
	int change = is_change(op);

	if (change && p->readonly)
		return violation(p, op, 0, path, cr, EROFS, "readonly");
	if (change && (hit = find_under(&p->ro_paths, path)))
		return violation(p, op, 0, path, cr, EROFS, "readonly_path=%s", hit);
	if ((hit = find_under(&p->block_paths, path)))
		return violation(p, op, 0, path, cr, change ? EACCES : ENOENT, "block_path=%s",
				 hit);
	if (!change)
		return 0;

	/* Moving a directory that holds a protected path (or moving one into
	 * place above it) would carry that path out from under its rule, or
	 * plant content in it: "mv /pub/dir /pub/x" must not reveal a blocked
	 * /pub/dir/key, nor make /a/ro writable by "mv /a /b". */
	if (op == CVFS_POL_RENAME_FROM || op == CVFS_POL_RENAME_TO) {
		for (size_t i = 0; i < p->ro_paths.n; i++)
			if (strcmp(p->ro_paths.v[i], path) != 0 && under(p->ro_paths.v[i], path))
				return violation(p, op, 0, path, cr, EROFS, "readonly_path=%s (inside)",
						 p->ro_paths.v[i]);
		for (size_t i = 0; i < p->block_paths.n; i++)
			if (strcmp(p->block_paths.v[i], path) != 0 && under(p->block_paths.v[i], path))
				return violation(p, op, 0, path, cr, EACCES, "block_path=%s (inside)",
						 p->block_paths.v[i]);
	}

	if (p->allow_roots.n && !find_under(&p->allow_roots, path)) {
		/* mkdir of an ancestor of an allowed root ("mkdir -p /work/out") */
		int ok = 0;
		if (op == CVFS_POL_MKDIR)
			for (size_t i = 0; i < p->allow_roots.n && !ok; i++)
				ok = under(p->allow_roots.v[i], path);
		if (!ok)
			return violation(p, op, 0, path, cr, EACCES, "allow_root");
	}
	if (op == CVFS_POL_REMOVE || op == CVFS_POL_RENAME_FROM) {
		/* An allowed root itself stays where it is. */
		for (size_t i = 0; i < p->allow_roots.n; i++)
			if (strcmp(p->allow_roots.v[i], path) == 0 && strcmp(path, "/") != 0)
				return violation(p, op, 0, path, cr, EACCES, "allow_root=%s (the root "
									     "itself)", path);
	}
	if (!is_new_name(op))
		return 0;

	if (p->max_depth && depth_of(path) > p->max_depth)
		return violation(p, op, 0, path, cr, ENAMETOOLONG, "max_depth=%u", p->max_depth);

	uint32_t fmt = type & S_IFMT;
	if (fmt == S_IFDIR)
		return 0; /* name and extension rules are for files, not directories */
	const char *name = base_of(path);
	for (size_t i = 0; i < p->deny_name.n; i++)
		if (fnmatch(p->deny_name.v[i], name, FNM_CASEFOLD) == 0)
			return violation(p, op, 0, path, cr, EACCES, "deny_name=%s",
					 p->deny_name.v[i]);
	if (fmt != S_IFREG)
		return 0;
	char ext[NAME_MAX + 1];
	ext_of(name, ext, sizeof(ext));
	if (p->deny_ext.n && *ext && list_has(&p->deny_ext, ext))
		return violation(p, op, 0, path, cr, EACCES, "deny_ext=.%s", ext);
	if (p->allow_ext.n && !list_has(&p->allow_ext, ext)) {
		if (*ext)
			return violation(p, op, 0, path, cr, EACCES, "allow_ext (.%s not allowed)",
					 ext);
		return violation(p, op, 0, path, cr, EACCES, "allow_ext (no extension)");
	}
	return 0;
}

int cvfs_policy_check_size(struct cvfs_policy *p, const char *path, uint64_t new_size,
			   const struct cvfs_cred *cr)
{
	if (!p || !p->max_file_size || new_size <= p->max_file_size)
		return 0;
	return violation(p, CVFS_POL_WRITE, 1, path, cr, EFBIG,
			 "max_file_size=%" PRIu64 " (size %" PRIu64 ")", p->max_file_size, new_size);
}

/* ---- quotas ---- */

/* Adds d (> 0) unless the result passes limit (0: none). */
static int counter_add(_Atomic uint64_t *c, uint64_t d, uint64_t limit)
{
	uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
	for (;;) {
		uint64_t nv = old + d;
		if (nv < old)
			nv = UINT64_MAX;
		if (limit && nv > limit)
			return -EDQUOT;
		if (atomic_compare_exchange_weak_explicit(c, &old, nv, memory_order_acq_rel,
							  memory_order_relaxed))
			return 0;
	}
}

/* Subtracts d, stopping at zero. */
static void counter_sub(_Atomic uint64_t *c, uint64_t d)
{
	uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
	for (;;) {
		uint64_t nv = old > d ? old - d : 0;
		if (atomic_compare_exchange_weak_explicit(c, &old, nv, memory_order_acq_rel,
							  memory_order_relaxed))
			return;
	}
}

static uint64_t mag(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

int cvfs_policy_charge(struct cvfs_policy *p, int64_t dbytes, int64_t dfiles, const char *path,
		       const struct cvfs_cred *cr)
{
	if (!p)
		return 0;
	if (dbytes > 0 && counter_add(&p->used_bytes, (uint64_t)dbytes, p->max_total_bytes))
		return violation(p, CVFS_POL_WRITE, 1, path, cr, EDQUOT,
				 "max_total_bytes=%" PRIu64 " (used %" PRIu64 ", +%" PRId64 ")",
				 p->max_total_bytes, atomic_load(&p->used_bytes), dbytes);
	if (dfiles > 0 && counter_add(&p->used_files, (uint64_t)dfiles, p->max_files)) {
		if (dbytes > 0)
			counter_sub(&p->used_bytes, (uint64_t)dbytes);
		return violation(p, CVFS_POL_CREATE, 2, path, cr, EDQUOT,
				 "max_files=%" PRIu64 " (used %" PRIu64 ")", p->max_files,
				 atomic_load(&p->used_files));
	}
	if (dbytes < 0)
		counter_sub(&p->used_bytes, mag(dbytes));
	if (dfiles < 0)
		counter_sub(&p->used_files, mag(dfiles));
	return 0;
}

void cvfs_policy_init_usage(struct cvfs_policy *p, uint64_t bytes, uint64_t files)
{
	if (!p)
		return;
	atomic_store(&p->used_bytes, bytes);
	atomic_store(&p->used_files, files);
}

void cvfs_policy_statfs(const struct cvfs_policy *p, struct cvfs_statfs *sf)
{
	if (!p || !sf)
		return;
	struct cvfs_policy *mp = (struct cvfs_policy *)p; /* atomics: loads only */
	if (p->max_total_bytes) {
		if (!sf->bsize)
			sf->bsize = 4096;
		uint64_t used = atomic_load(&mp->used_bytes);
		uint64_t left = used < p->max_total_bytes ? p->max_total_bytes - used : 0;
		uint64_t blocks = p->max_total_bytes / sf->bsize;
		uint64_t free_b = left / sf->bsize;
		if (sf->blocks && sf->bavail < free_b)
			free_b = sf->bavail; /* the store has less room than the quota */
		sf->blocks = blocks;
		sf->bfree = free_b;
		sf->bavail = free_b;
	}
	if (p->max_files) {
		uint64_t used = atomic_load(&mp->used_files);
		uint64_t left = used < p->max_files ? p->max_files - used : 0;
		if (sf->files && sf->ffree < left)
			left = sf->ffree;
		sf->files = p->max_files;
		sf->ffree = left;
	}
}

/* ---- describe ---- */

static void desc_list(struct buf *b, const char *key, const struct strlist *l, int ext)
{
	buf_fmt(b, ",\"%s\":[", key);
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			buf_str(b, ",");
		if (ext) {
			buf_str(b, "\"");
			if (l->v[i][0])
				buf_str(b, ".");
			buf_json_body(b, l->v[i]);
			buf_str(b, "\"");
		} else {
			buf_json_str(b, l->v[i]);
		}
	}
	buf_str(b, "]");
}

char *cvfs_policy_describe(const struct cvfs_policy *p)
{
	struct buf b = {0};
	if (!p) {
		buf_str(&b, "{\"active\":false}");
		return b.oom ? (free(b.s), NULL) : b.s;
	}
	struct cvfs_policy *mp = (struct cvfs_policy *)p; /* atomics: loads only */
	buf_fmt(&b, "{\"active\":%s,\"profile\":", cvfs_policy_active(p) ? "true" : "false");
	if (p->profile)
		buf_json_str(&b, p->profile);
	else
		buf_str(&b, "null");
	buf_fmt(&b, ",\"readonly\":%s", p->readonly ? "true" : "false");
	desc_list(&b, "readonly_path", &p->ro_paths, 0);
	desc_list(&b, "block_path", &p->block_paths, 0);
	desc_list(&b, "allow_root", &p->allow_roots, 0);
	desc_list(&b, "allow_ext", &p->allow_ext, 1);
	desc_list(&b, "deny_ext", &p->deny_ext, 1);
	desc_list(&b, "deny_name", &p->deny_name, 0);
	buf_fmt(&b,
		",\"max_file_size\":%" PRIu64 ",\"max_total_bytes\":%" PRIu64
		",\"max_files\":%" PRIu64 ",\"max_depth\":%u,\"log\":",
		p->max_file_size, p->max_total_bytes, p->max_files, p->max_depth);
	if (p->log_path)
		buf_json_str(&b, p->log_path);
	else
		buf_str(&b, "null");
	buf_fmt(&b, ",\"used_bytes\":%" PRIu64 ",\"used_files\":%" PRIu64 ",\"violations\":%" PRIu64
		    "}",
		atomic_load(&mp->used_bytes), atomic_load(&mp->used_files),
		atomic_load(&mp->nviol));
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
