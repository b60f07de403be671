/*
 * chuk-vfs-mount: mount a chuk-vfs filesystem.
 *
 *   chuk-vfs-mount -m DIR [-b memory|sqlite|redis|s3] [-r] [--allow-other] [-d] [-f] [-o opt,...]
 *   chuk-vfs-mount SOURCE DIR -o opt,...        (as mount.fuse3's helper, from fstab)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/policy.h"
#include "mount/mount.h"
#include "store_flags.h"

#ifndef CVFS_VERSION
#define CVFS_VERSION "0.0.0"
#endif

#define MAX_OPTS 64

static const char *prog = "chuk-vfs-mount";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s -m DIR [options]\n"
		"       %s SOURCE DIR [-o opt,...]   (mount helper form)\n"
		"\n"
		"  -m, --mount DIR        where to mount (created if missing)\n"
		"  -b, --backend NAME     memory (default), sqlite, redis or s3\n"
		"  -r, --readonly         mount read-only\n"
		"      --allow-other      let other users in (needs user_allow_other or root)\n"
		"  -d, --debug            log every request (implies -f)\n"
		"  -f, --foreground       do not daemonise\n"
		"  -o opt[,opt...]        options: cache_timeout=SECONDS, uid=N, gid=N, umask=OOO,\n"
		"                         writeback / no_writeback, threads=N, spin=US, cpu_poll=MS, handoff=0|1,\n"
		"                         drop_negative=0|1,\n"
		"                         size=BYTES (memory), backend=NAME, db_path=, redis_url=,\n"
		"                         redis_prefix=, bucket=,\n"
		"                         s3_prefix=, region=, endpoint_url=, store.KEY=VALUE (any\n"
		"                         option of the store, see docs/); others go to FUSE\n"
		"      --db-path FILE     sqlite: the database (default virtual_fs.db)\n"
		"      --redis-url URL    redis: redis://[user:pass@]host[:port][/db] or unix:///path\n"
		"      --redis-prefix P   redis: key prefix (default chuk_vfs:)\n"
		"      --bucket NAME      s3: the bucket\n"
		"      --s3-prefix P      s3: key prefix inside the bucket\n"
		"      --region R         s3: region\n"
		"      --endpoint-url URL s3: a non-AWS endpoint (path-style addressing)\n"
		"security policy (see docs/security.md):\n"
		"      --profile NAME     default, strict, readonly, untrusted or testing\n"
		"      --config FILE      a JSON policy file\n"
		"      --max-file-size N  largest file (10M, 1G...)\n"
		"      --allow-ext LIST   only these extensions (.py,.txt)\n"
		"      --deny-ext LIST    never these extensions\n"
		"      --block-path P     hide P and everything under it (repeatable)\n"
		"      --readonly-path P  P and below read-only (repeatable)\n"
		"      --allow-root P     changes only under P (repeatable)\n"
		"      --deny-name GLOB   refuse names matching GLOB (repeatable)\n"
		"      --max-total-bytes N, --max-files N, --max-depth N   quotas\n"
		"      --policy-log FILE  append every refusal to FILE\n"
		"  -h, --help             this text\n"
		"  -V, --version          the version\n",
		prog, prog);
}

struct cfg {
	const char *mountpoint;
	const char *backend;
	int readonly, allow_other, debug, foreground;
	struct cvfs_mount_opts mo;
	struct cvfs_opt sopts[MAX_OPTS];
	size_t nsopts;
	char fuse_opts[4096];
	char *owned[MAX_OPTS * 2];
	size_t nowned;
	/* policy settings in the order given; profile and config go first */
	const char *pkeys[MAX_OPTS], *pvals[MAX_OPTS];
	size_t npol;
	const char *profile, *config;
};

static void add_pol(struct cfg *c, const char *key, const char *val)
{
	if (c->npol < MAX_OPTS) {
		c->pkeys[c->npol] = key;
		c->pvals[c->npol] = val;
		c->npol++;
	}
}

/* Builds the policy the flags describe, or NULL when none was asked for. */
static int make_policy(struct cfg *c, struct cvfs_policy **out)
{
	*out = NULL;
	if (!c->profile && !c->config && c->npol == 0)
		return 0;
	struct cvfs_policy *p;
	char *err = NULL;
	int rc = cvfs_policy_new(&p);
	if (rc) {
		fprintf(stderr, "%s: the security policy is not available: %s\n", prog,
			strerror(-rc));
		return rc;
	}
	if (c->profile)
		rc = cvfs_policy_profile(p, c->profile, &err);
	if (rc == 0 && c->config)
		rc = cvfs_policy_load(p, c->config, &err);
	for (size_t i = 0; rc == 0 && i < c->npol; i++)
		rc = cvfs_policy_set(p, c->pkeys[i], c->pvals[i], &err);
	if (rc) {
		fprintf(stderr, "%s: bad security policy: %s\n", prog, err ? err : strerror(-rc));
		free(err);
		cvfs_policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

static int die(const char *fmt, const char *a)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, a);
	fputc('\n', stderr);
	return 2;
}

static void add_sopt(struct cfg *c, const char *key, const char *val)
{
	if (c->nsopts < MAX_OPTS) {
		c->sopts[c->nsopts].key = key;
		c->sopts[c->nsopts].value = val;
		c->nsopts++;
	}
}

static int add_fuse_opt(struct cfg *c, const char *o)
{
	size_t used = strlen(c->fuse_opts);
	if (used + strlen(o) + 2 >= sizeof(c->fuse_opts))
		return -1;
	if (used)
		strcat(c->fuse_opts, ",");
	strcat(c->fuse_opts, o);
	return 0;
}

static int parse_uint(const char *s, int base, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > 0xffffffffu)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Store options by their flag name, mapped to the keys the stores read. */
static const struct {
	const char *opt, *key;
} store_keys[] = {
	{"size", "size"},
	{"redis_connect_timeout", "connect_timeout"}, {"redis_timeout", "timeout"},
	{"redis_connections", "connections"}, {"redis_dir_cache", "dir_cache"},
};

/* Options the mount(8) helper passes that mean nothing to FUSE. */
static const char *ignored[] = {"defaults", "auto", "noauto", "nofail", "_netdev", "user",
				"users",    "nouser", "owner", "noowner", "rw", NULL};

static int parse_o(struct cfg *c, const char *list)
{
	char *dup = strdup(list);
	if (!dup)
		return die("out of memory%s", "");
	c->owned[c->nowned++] = dup;
	for (char *save = NULL, *o = strtok_r(dup, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(o, '=');
		const char *val = eq ? eq + 1 : NULL;
		size_t klen = eq ? (size_t)(eq - o) : strlen(o);
#define KEY(k) (klen == strlen(k) && strncmp(o, k, klen) == 0)
		int done = 0;
		for (size_t i = 0; ignored[i]; i++)
			if (KEY(ignored[i]) && !val)
				done = 1;
		if (done)
			continue;
		if (KEY("ro") && !val) {
			c->readonly = 1;
		} else if (KEY("allow_other") && !val) {
			c->allow_other = 1;
		} else if (KEY("debug") && !val) {
			c->debug = 1;
		} else if (KEY("writeback") && !val) {
			c->mo.writeback = 1;
		} else if (KEY("no_writeback") && !val) {
			c->mo.writeback = 0;
		} else if (KEY("backend") && val) {
			c->backend = val;
		} else if (KEY("cache_timeout") && val) {
			char *end;
			double t = strtod(val, &end);
			if (end == val || *end || t < 0 || t > 1e9)
				return die("bad cache_timeout '%s' (seconds, 0 or more)", val);
			c->mo.cache_timeout = t;
			add_sopt(c, "cache_timeout", val); /* a hint: stores with caches of their own */
		} else if (KEY("uid") && val) {
			if (parse_uint(val, 10, &c->mo.uid))
				return die("bad uid '%s'", val);
			c->mo.set_uid = 1;
		} else if (KEY("gid") && val) {
			if (parse_uint(val, 10, &c->mo.gid))
				return die("bad gid '%s'", val);
			c->mo.set_gid = 1;
		} else if (KEY("umask") && val) {
			if (parse_uint(val, 8, &c->mo.umask) || c->mo.umask > 0777)
				return die("bad umask '%s' (octal, e.g. 022)", val);
			c->mo.set_umask = 1;
		} else if (KEY("spin") && val) {
			uint32_t t;
			if (parse_uint(val, 10, &t) || t > 100000)
				return die("bad spin '%s' (microseconds, 0..100000)", val);
			c->mo.spin_us = (int)t;
		} else if (KEY("cpu_poll") && val) {
			uint32_t t;
			if (parse_uint(val, 10, &t) || t > 60000)
				return die("bad cpu_poll '%s' (milliseconds, 0..60000)", val);
			c->mo.cpu_poll_ms = (int)t;
		} else if (KEY("handoff") && val) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				return die("bad handoff '%s' (0 or 1)", val);
			c->mo.handoff = val[0] == '1';
		} else if (KEY("drop_negative") && val) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				return die("bad drop_negative '%s' (0 or 1)", val);
			c->mo.drop_negative = val[0] == '1';
		} else if (KEY("threads") && val) {
			uint32_t t;
			if (parse_uint(val, 10, &t) || t == 0 || t > 1024)
				return die("bad threads '%s' (1..1024)", val);
			c->mo.threads = (int)t;
		} else if (klen > 6 && strncmp(o, "store.", 6) == 0 && val) {
			/* -o store.KEY=VALUE: any option of the store, as is */
			*eq = 0;
			add_sopt(c, o + 6, val);
		} else {
			int store = 0;
			const char *sk = store_flag_o(o, klen);
			if (sk && val) {
				add_sopt(c, sk, val);
				store = 1;
			}
			for (size_t i = 0; i < sizeof(store_keys) / sizeof(store_keys[0]); i++) {
				if (KEY(store_keys[i].opt) && val) {
					add_sopt(c, store_keys[i].key, val);
					store = 1;
				}
			}
			if (!store && add_fuse_opt(c, o))
				return die("too many -o options%s", "");
		}
#undef KEY
	}
	return 0;
}

/* SOURCE in the helper form: a store name, "sqlite:PATH", a redis or unix URL,
 * or s3://BUCKET[/PREFIX]. */
static int parse_source(struct cfg *c, const char *src)
{
	if (!strncmp(src, "redis://", 8) || !strncmp(src, "rediss://", 9) ||
	    !strncmp(src, "unix://", 7)) {
		c->backend = "redis";
		add_sopt(c, "url", src);
	} else if (!strncmp(src, "s3://", 5)) {
		char *b = strdup(src + 5);
		if (!b)
			return die("out of memory%s", "");
		c->owned[c->nowned++] = b;
		char *slash = strchr(b, '/');
		if (slash) {
			*slash = 0;
			if (slash[1])
				add_sopt(c, "prefix", slash + 1);
		}
		c->backend = "s3";
		add_sopt(c, "bucket", b);
	} else if (!strncmp(src, "sqlite:", 7)) {
		c->backend = "sqlite";
		add_sopt(c, "path", src + 7);
	} else if (strcmp(src, "chuk-vfs") != 0 && strcmp(src, "none") != 0) {
		c->backend = src;
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum {
		O_ALLOW_OTHER = 256, O_PROFILE, O_CONFIG, O_POL
	};
	static const struct option base_opts[] = {
		{"mount", required_argument, NULL, 'm'},
		{"backend", required_argument, NULL, 'b'},
		{"readonly", no_argument, NULL, 'r'},
		{"allow-other", no_argument, NULL, O_ALLOW_OTHER},
		{"debug", no_argument, NULL, 'd'},
		{"foreground", no_argument, NULL, 'f'},
		{"profile", required_argument, NULL, O_PROFILE},
		{"config", required_argument, NULL, O_CONFIG},
		{"max-file-size", required_argument, NULL, O_POL},
		{"allow-ext", required_argument, NULL, O_POL},
		{"deny-ext", required_argument, NULL, O_POL},
		{"block-path", required_argument, NULL, O_POL},
		{"readonly-path", required_argument, NULL, O_POL},
		{"allow-root", required_argument, NULL, O_POL},
		{"deny-name", required_argument, NULL, O_POL},
		{"max-total-bytes", required_argument, NULL, O_POL},
		{"max-files", required_argument, NULL, O_POL},
		{"max-depth", required_argument, NULL, O_POL},
		{"policy-log", required_argument, NULL, O_POL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct cfg c;
	memset(&c, 0, sizeof(c));
	c.backend = "memory";
	c.mo.cache_timeout = -1;
	c.mo.writeback = -1;
	c.mo.spin_us = -1;
	c.mo.cpu_poll_ms = -1;
	c.mo.handoff = -1;
	c.mo.drop_negative = -1;
	const char *p = strrchr(argv[0], '/');
	prog = p ? p + 1 : argv[0];

	int ch, rc = 0, li = -1;
	opterr = 0;
	struct option longopts[48];
	if (!with_store_flags(base_opts, longopts, sizeof(longopts) / sizeof(longopts[0])))
		return die("internal: option table too small%s", "");
	while ((ch = getopt_long(argc, argv, ":m:b:rdfo:hV", longopts, &li)) != -1) {
		if (ch >= STORE_FLAG_BASE && ch < STORE_FLAG_BASE + (int)N_STORE_FLAGS) {
			add_sopt(&c, store_flags[ch - STORE_FLAG_BASE].key, optarg);
			continue;
		}
		switch (ch) {
		case 'm': c.mountpoint = optarg; break;
		case 'b': c.backend = optarg; break;
		case 'r': c.readonly = 1; break;
		case O_ALLOW_OTHER: c.allow_other = 1; break;
		case 'd': c.debug = 1; break;
		case 'f': c.foreground = 1; break;
		case 'o': rc = parse_o(&c, optarg); break;
		case O_PROFILE: c.profile = optarg; break;
		case O_CONFIG: c.config = optarg; break;
		case O_POL: {
			/* --max-file-size -> max_file_size, --policy-log -> log */
			const char *n = longopts[li].name;
			char *key = strdup(strcmp(n, "policy-log") == 0 ? "log" : n);
			if (!key)
				return die("out of memory%s", "");
			for (char *k = key; *k; k++)
				if (*k == '-')
					*k = '_';
			c.owned[c.nowned++] = key;
			add_pol(&c, key, optarg);
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V': printf("chuk-vfs-mount %s (libfuse %d)\n", CVFS_VERSION, cvfs_mount_fuse_version()); return 0;
		case ':':
			fprintf(stderr, "%s: option '%s' needs a value\n", prog, argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[optind - 1]);
			usage(stderr);
			return 2;
		}
		if (rc)
			goto out;
	}
	int npos = argc - optind;
	if (npos == 2) {
		if ((rc = parse_source(&c, argv[optind])))
			goto out;
		c.mountpoint = argv[optind + 1];
	} else if (npos == 1 && !c.mountpoint) {
		c.mountpoint = argv[optind];
	} else if (npos > 0) {
		rc = die("unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!c.mountpoint) {
		fprintf(stderr, "%s: no mount point: give -m DIR\n", prog);
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (c.debug)
		c.foreground = 1;

	if (c.readonly)
		add_sopt(&c, "readonly", "1");
	struct cvfs_policy *pol = NULL;
	if (make_policy(&c, &pol)) {
		rc = 2;
		goto out;
	}
	char *err = NULL;
	int e = cvfs_mount_prepare(c.mountpoint, &err);
	if (e) {
		rc = die("%s", err ? err : strerror(-e));
		free(err);
		cvfs_policy_free(pol);
		goto out;
	}

	struct cvfs_store *st;
	e = cvfs_store_open(c.backend, c.sopts, c.nsopts, &st, &err);
	if (e) {
		fprintf(stderr, "%s: cannot open the %s store: %s\n", prog, c.backend,
			err ? err : strerror(-e));
		free(err);
		cvfs_policy_free(pol);
		rc = 1;
		goto out;
	}
	struct cvfs_fs_config fc = {.readonly = c.readonly,
				    .root_uid = getuid(),
				    .root_gid = getgid(),
				    .umask = 022,
				    .policy = pol};
	struct cvfs_fs *fs;
	e = cvfs_fs_new(st, &fc, &fs);
	if (e) {
		fprintf(stderr, "%s: cannot start the filesystem on the %s store: %s\n", prog,
			c.backend, strerror(-e));
		rc = 1;
		goto out;
	}

	char fsname[256];
	snprintf(fsname, sizeof(fsname), "chuk-vfs:%s", c.backend);
	c.mo.mountpoint = c.mountpoint;
	c.mo.readonly = c.readonly;
	c.mo.allow_other = c.allow_other;
	c.mo.debug = c.debug;
	c.mo.fsname = fsname;
	c.mo.fuse_opts = c.fuse_opts;
	struct cvfs_mount *m;
	e = cvfs_mount_new(fs, &c.mo, &m, &err);
	if (e) {
		fprintf(stderr, "%s: %s\n", prog, err ? err : strerror(-e));
		free(err);
		cvfs_fs_free(fs);
		rc = 1;
		goto out;
	}
	if (!c.foreground && cvfs_mount_daemonize() != 0) {
		fprintf(stderr, "%s: cannot daemonise\n", prog);
		cvfs_mount_free(m);
		cvfs_fs_free(fs);
		rc = 1;
		goto out;
	}
	e = cvfs_mount_loop(m, 1);
	cvfs_mount_free(m);
	/* a store that could not send everything (S3 down at unmount) says
	 * what on stderr; the exit status says that something was left */
	int fe = cvfs_fs_finish(fs);
	if (fe)
		fprintf(stderr, "%s: unmounted, but the %s store could not send every change "
				"(above): %s\n", prog, c.backend, strerror(-fe));
	cvfs_fs_free(fs);
	rc = e || fe ? 1 : 0;
out:
	for (size_t i = 0; i < c.nowned; i++)
		free(c.owned[i]);
	return rc;
}
