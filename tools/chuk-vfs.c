/*
 * chuk-vfs: work on a chuk-vfs store without mounting it, and show a live
 * mount's status.  Built on the public library API (include/cvfs/cvfs.h).
 *
 *   chuk-vfs [-b STORE] [store options] [-o key=value]... COMMAND ARGS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cvfs/cvfs.h"
#include "store_flags.h"

#define MAX_OPTS 64
#define STATUS_XATTR "user.chuk-vfs.status"

static const char *prog = "chuk-vfs";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options] COMMAND ARGS\n"
		"\n"
		"commands (on the store, no mount needed):\n"
		"  ls [-l] PATH            list a directory (or show one entry)\n"
		"  cat PATH                write a file's contents to standard output\n"
		"  put LOCALFILE|- PATH    copy a local file (or standard input) into the store\n"
		"  get PATH LOCALFILE|-    copy a file out of the store (or to standard output)\n"
		"  rm [-r] PATH            remove a file, symlink or empty directory (-r: a tree)\n"
		"  mv FROM TO              rename\n"
		"  stat PATH               show an entry's attributes\n"
		"  mkdir [-p] PATH         make a directory (-p: with its parents, no error if it exists)\n"
		"commands on a mount:\n"
		"  status [--json] MOUNTPOINT   show a live mount's status and counters\n"
		"\n"
		"options:\n"
		"  -b, --backend NAME      memory (default; empty each run), sqlite, redis or s3\n"
		"      --db-path FILE      sqlite: the database\n"
		"      --redis-url URL     redis: redis://[user:pass@]host[:port][/db] or unix:///path\n"
		"      --redis-prefix P    redis: key prefix\n"
		"      --bucket NAME       s3: the bucket\n"
		"      --s3-prefix P       s3: key prefix inside the bucket\n"
		"      --region R          s3: region\n"
		"      --endpoint-url URL  s3: a non-AWS endpoint\n"
		"  -r, --readonly          open the store read-only\n"
		"  -o key=value            a store option (path=, url=, prefix=, umask=, ... or the\n"
		"                          long names above: db_path=, redis_url=, ...)\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n",
		prog);
}

/* ---- store options ---- */

struct opts {
	const char *backend;
	const char *kv[MAX_OPTS + 1];
	char *owned[MAX_OPTS];
	size_t n;
};

static int add_opt(struct opts *o, const char *key, const char *val)
{
	if (o->n >= MAX_OPTS) {
		fprintf(stderr, "%s: too many store options\n", prog);
		return -1;
	}
	char *s;
	if (asprintf(&s, "%s=%s", key, val) < 0)
		return -1;
	o->owned[o->n] = s;
	o->kv[o->n++] = s;
	o->kv[o->n] = NULL;
	return 0;
}

static int add_o(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "%s: -o %s: expected key=value\n", prog, arg);
		return -1;
	}
	size_t klen = (size_t)(eq - arg);
	const char *sk = store_flag_o(arg, klen);
	if (sk)
		return add_opt(o, sk, eq + 1);
	if (klen == 7 && !strncmp(arg, "backend", 7)) {
		o->backend = eq + 1;
		return 0;
	}
	char *key = strndup(arg, klen);
	if (!key)
		return -1;
	int rc = add_opt(o, key, eq + 1);
	free(key);
	return rc;
}

/* ---- helpers ---- */

static int fail(const char *what, const char *path, int err)
{
	if (path)
		fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(err));
	else
		fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
	return 1;
}

static void mode_string(mode_t m, char out[11])
{
	out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's'
		: S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : '-';
	const char *rwx = "rwxrwxrwx";
	for (int i = 0; i < 9; i++)
		out[1 + i] = (m & (0400 >> i)) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = (m & S_IXOTH) ? 't' : 'T';
	out[10] = 0;
}

static const char *user_name(uid_t u, char *buf, size_t n)
{
	struct passwd *pw = getpwuid(u);
	if (pw)
		return pw->pw_name;
	snprintf(buf, n, "%u", (unsigned)u);
	return buf;
}

static const char *group_name(gid_t g, char *buf, size_t n)
{
	struct group *gr = getgrgid(g);
	if (gr)
		return gr->gr_name;
	snprintf(buf, n, "%u", (unsigned)g);
	return buf;
}

static char *join(const char *dir, const char *name)
{
	char *s;
	size_t dl = strlen(dir);
	if (asprintf(&s, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name) < 0)
		return NULL;
	return s;
}

static void long_line(cvfs_fs *fs, const char *path, const char *name, const struct stat *st)
{
	char ms[11], ub[16], gb[16], tb[32];
	mode_string(st->st_mode, ms);
	struct tm tm;
	time_t t = st->st_mtim.tv_sec;
	localtime_r(&t, &tm);
	strftime(tb, sizeof(tb), "%Y-%m-%d %H:%M", &tm);
	printf("%s %3lu %-8s %-8s %10lld %s %s", ms, (unsigned long)st->st_nlink,
	       user_name(st->st_uid, ub, sizeof(ub)), group_name(st->st_gid, gb, sizeof(gb)),
	       (long long)st->st_size, tb, name);
	if (S_ISLNK(st->st_mode)) {
		char target[4097];
		ssize_t n = cvfs_readlink(fs, path, target, sizeof(target) - 1);
		if (n >= 0) {
			target[n] = 0;
			printf(" -> %s", target);
		}
	}
	putchar('\n');
}

struct ls_ent {
	char *name;
	struct stat st;
};
struct ls_list {
	struct ls_ent *v;
	size_t n, cap;
	int err;
};

static int ls_collect(void *arg, const char *name, const struct stat *st)
{
	struct ls_list *l = arg;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct ls_ent *v = realloc(l->v, nc * sizeof(*v));
		if (!v) {
			l->err = ENOMEM;
			return 1;
		}
		l->v = v;
		l->cap = nc;
	}
	l->v[l->n].name = strdup(name);
	l->v[l->n].st = *st;
	if (!l->v[l->n].name) {
		l->err = ENOMEM;
		return 1;
	}
	l->n++;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ls_ent *)a)->name, ((const struct ls_ent *)b)->name);
}

/* ---- commands ---- */

static int cmd_ls(cvfs_fs *fs, int longfmt, const char *path)
{
	struct stat st;
	int rc = cvfs_lstat(fs, path, &st);
	if (rc == 0 && S_ISLNK(st.st_mode) && !longfmt) {
		struct stat t;
		if (cvfs_stat(fs, path, &t) == 0 && S_ISDIR(t.st_mode))
			st = t;
	}
	if (rc)
		return fail("ls", path, -rc);
	if (!S_ISDIR(st.st_mode)) {
		if (longfmt)
			long_line(fs, path, path, &st);
		else
			printf("%s\n", path);
		return 0;
	}
	struct ls_list l = {0};
	rc = cvfs_ls(fs, path, ls_collect, &l);
	if (rc == 0 && l.err)
		rc = -l.err;
	if (rc == 0) {
		if (l.n)
			qsort(l.v, l.n, sizeof(*l.v), by_name);
		for (size_t i = 0; i < l.n; i++) {
			if (longfmt) {
				char *full = join(path, l.v[i].name);
				long_line(fs, full ? full : path, l.v[i].name, &l.v[i].st);
				free(full);
			} else {
				printf("%s%s\n", l.v[i].name, S_ISDIR(l.v[i].st.st_mode) ? "/" : "");
			}
		}
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	return rc ? fail("ls", path, -rc) : 0;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies a store file to fd. */
static int copy_out(cvfs_fs *fs, const char *path, int fd, const char *dest)
{
	struct stat st;
	int rc = cvfs_stat(fs, path, &st);
	if (rc == 0 && S_ISDIR(st.st_mode))
		rc = -EISDIR;
	cvfs_file *f = NULL;
	if (rc == 0)
		rc = cvfs_file_open(fs, path, O_RDONLY, 0, &f);
	if (rc)
		return fail("cannot read", path, -rc);
	char *buf = malloc(1 << 20);
	if (!buf) {
		cvfs_file_close(f);
		return fail("cannot read", path, ENOMEM);
	}
	int ret = 0;
	for (;;) {
		ssize_t r = cvfs_file_read(f, buf, 1 << 20);
		if (r < 0) {
			ret = fail("cannot read", path, (int)-r);
			break;
		}
		if (r == 0)
			break;
		int w = write_all(fd, buf, (size_t)r);
		if (w) {
			ret = fail("cannot write", dest, -w);
			break;
		}
	}
	free(buf);
	cvfs_file_close(f);
	return ret;
}

static int cmd_get(cvfs_fs *fs, const char *path, const char *local)
{
	if (strcmp(local, "-") == 0)
		return copy_out(fs, path, STDOUT_FILENO, "standard output");
	struct stat st;
	int rc = cvfs_stat(fs, path, &st);
	if (rc)
		return fail("cannot read", path, -rc);
	if (S_ISDIR(st.st_mode))
		return fail("cannot read", path, EISDIR);
	int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 0777);
	if (fd < 0)
		return fail("cannot create", local, errno);
	int ret = copy_out(fs, path, fd, local);
	if (close(fd) != 0 && ret == 0)
		ret = fail("cannot write", local, errno);
	return ret;
}

static int cmd_put(cvfs_fs *fs, const char *local, const char *path)
{
	int fd = STDIN_FILENO;
	mode_t mode = 0644;
	const char *src = "standard input";
	if (strcmp(local, "-") != 0) {
		src = local;
		fd = open(local, O_RDONLY);
		if (fd < 0)
			return fail("cannot open", local, errno);
		struct stat st;
		if (fstat(fd, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				close(fd);
				return fail("cannot read", local, EISDIR);
			}
			mode = st.st_mode & 0777;
		}
	}
	cvfs_file *f;
	int rc = cvfs_file_open(fs, path, O_WRONLY | O_CREAT | O_TRUNC, mode, &f);
	if (rc) {
		if (fd != STDIN_FILENO)
			close(fd);
		return fail("cannot write", path, -rc);
	}
	char *buf = malloc(1 << 20);
	int ret = buf ? 0 : fail("cannot write", path, ENOMEM);
	while (ret == 0) {
		ssize_t r = read(fd, buf, 1 << 20);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = fail("cannot read", src, errno);
			break;
		}
		if (r == 0)
			break;
		for (ssize_t done = 0; done < r && ret == 0;) {
			ssize_t w = cvfs_file_write(f, buf + done, (size_t)(r - done));
			if (w < 0)
				ret = fail("cannot write", path, (int)-w);
			else
				done += w;
		}
	}
	free(buf);
	rc = cvfs_file_close(f);
	if (rc && ret == 0)
		ret = fail("cannot write", path, -rc);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}

static void print_time(const char *label, const struct timespec *ts)
{
	char b[64];
	struct tm tm;
	time_t t = ts->tv_sec;
	localtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S", &tm);
	char z[16];
	strftime(z, sizeof(z), "%z", &tm);
	printf("%s: %s.%09ld %s\n", label, b, ts->tv_nsec, z);
}

static int cmd_stat(cvfs_fs *fs, const char *path)
{
	struct stat st;
	int rc = cvfs_lstat(fs, path, &st);
	if (rc)
		return fail("stat", path, -rc);
	const char *type = S_ISREG(st.st_mode) ? (st.st_size ? "regular file" : "regular empty file")
			   : S_ISDIR(st.st_mode)  ? "directory"
			   : S_ISLNK(st.st_mode)  ? "symbolic link"
			   : S_ISFIFO(st.st_mode) ? "fifo"
			   : S_ISSOCK(st.st_mode) ? "socket"
			   : S_ISCHR(st.st_mode)  ? "character special file"
			   : S_ISBLK(st.st_mode)  ? "block special file"
						  : "unknown";
	char ms[11], ub[16], gb[16];
	mode_string(st.st_mode, ms);
	printf("  File: %s", path);
	if (S_ISLNK(st.st_mode)) {
		char target[4097];
		ssize_t n = cvfs_readlink(fs, path, target, sizeof(target) - 1);
		if (n >= 0) {
			target[n] = 0;
			printf(" -> %s", target);
		}
	}
	printf("\n  Size: %-12lld Blocks: %-8lld %s\n", (long long)st.st_size,
	       (long long)st.st_blocks, type);
	printf(" Inode: %-12llu Links: %lu\n", (unsigned long long)st.st_ino,
	       (unsigned long)st.st_nlink);
	printf("Access: (%04o/%s)  Uid: (%u/%s)  Gid: (%u/%s)\n", st.st_mode & 07777, ms,
	       (unsigned)st.st_uid, user_name(st.st_uid, ub, sizeof(ub)), (unsigned)st.st_gid,
	       group_name(st.st_gid, gb, sizeof(gb)));
	print_time("Access", &st.st_atim);
	print_time("Modify", &st.st_mtim);
	print_time("Change", &st.st_ctim);
	ssize_t n = cvfs_listxattr(fs, path, NULL, 0);
	if (n > 0) {
		char *list = malloc((size_t)n);
		if (list && (n = cvfs_listxattr(fs, path, list, (size_t)n)) > 0) {
			printf("Xattrs:");
			for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
				printf(" %s", list + i);
			putchar('\n');
		}
		free(list);
	}
	return 0;
}

/* ---- status: the mount's JSON, flattened to "a.b: value" lines ---- */

struct jp {
	const char *s;
	size_t i;
};

static void jskip(struct jp *p)
{
	while (p->s[p->i] == ' ' || p->s[p->i] == '\n' || p->s[p->i] == '\t' || p->s[p->i] == '\r')
		p->i++;
}

/* Reads a JSON string (at its opening quote) into out (unescaped simply). */
static int jstring(struct jp *p, char *out, size_t n)
{
	if (p->s[p->i] != '"')
		return -1;
	p->i++;
	size_t o = 0;
	while (p->s[p->i] && p->s[p->i] != '"') {
		char c = p->s[p->i++];
		if (c == '\\' && p->s[p->i]) {
			c = p->s[p->i++];
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
			else if (c == 'u') {
				p->i += 4 <= strlen(p->s + p->i) ? 4 : 0;
				c = '?';
			}
		}
		if (o + 1 < n)
			out[o++] = c;
	}
	out[o] = 0;
	if (p->s[p->i] != '"')
		return -1;
	p->i++;
	return 0;
}

static int jvalue(struct jp *p, const char *prefix, int depth);

static int jobject(struct jp *p, const char *prefix, int depth)
{
	p->i++; /* { */
	jskip(p);
	if (p->s[p->i] == '}') {
		p->i++;
		return 0;
	}
	for (;;) {
		char key[256], full[1024];
		jskip(p);
		if (jstring(p, key, sizeof(key)))
			return -1;
		jskip(p);
		if (p->s[p->i++] != ':')
			return -1;
		snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (jvalue(p, full, depth + 1))
			return -1;
		jskip(p);
		char c = p->s[p->i++];
		if (c == '}')
			return 0;
		if (c != ',')
			return -1;
	}
}

static int jvalue(struct jp *p, const char *prefix, int depth)
{
	if (depth > 32)
		return -1;
	jskip(p);
	char c = p->s[p->i];
	if (c == '{')
		return jobject(p, prefix, depth);
	if (c == '"') {
		char v[4096];
		if (jstring(p, v, sizeof(v)))
			return -1;
		printf("%-24s %s\n", prefix, v);
		return 0;
	}
	if (c == '[') { /* printed raw */
		size_t start = p->i;
		int level = 0;
		do {
			if (p->s[p->i] == '[')
				level++;
			else if (p->s[p->i] == ']')
				level--;
			else if (!p->s[p->i])
				return -1;
			p->i++;
		} while (level);
		printf("%-24s %.*s\n", prefix, (int)(p->i - start), p->s + start);
		return 0;
	}
	size_t start = p->i;
	while (p->s[p->i] && !strchr(",}] \n\t\r", p->s[p->i]))
		p->i++;
	if (p->i == start)
		return -1;
	printf("%-24s %.*s\n", prefix, (int)(p->i - start), p->s + start);
	return 0;
}

static int cmd_status(const char *mnt, int raw)
{
	ssize_t n = getxattr(mnt, STATUS_XATTR, NULL, 0);
	char *buf = NULL;
	for (int tries = 0; n >= 0 && tries < 5; tries++) {
		free(buf);
		buf = malloc((size_t)n + 1024);
		if (!buf)
			return fail("status", mnt, ENOMEM);
		n = getxattr(mnt, STATUS_XATTR, buf, (size_t)n + 1023);
		if (n >= 0 || errno != ERANGE)
			break;
		n = getxattr(mnt, STATUS_XATTR, NULL, 0);
	}
	if (n < 0) {
		int e = errno;
		free(buf);
		if (e == ENODATA || e == ENOTSUP)
			fprintf(stderr, "%s: %s is not the root of a chuk-vfs mount\n", prog, mnt);
		else
			fail("status", mnt, e);
		return 1;
	}
	buf[n] = 0;
	if (raw) {
		fputs(buf, stdout);
		if (n == 0 || buf[n - 1] != '\n')
			putchar('\n');
	} else {
		struct jp p = {buf, 0};
		jskip(&p);
		if (p.s[p.i] != '{' || jvalue(&p, "", 0)) {
			fprintf(stderr, "%s: %s: unreadable status; raw:\n%s\n", prog, mnt, buf);
			free(buf);
			return 1;
		}
	}
	free(buf);
	return 0;
}

/* ---- main ---- */

/* Parses a command's own flags: letters in flags ("lrp"), --json as 'j'. */
static int sub_flags(int argc, char **argv, const char *allowed, int *seen, int *first)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--json") == 0 && strchr(allowed, 'j')) {
			seen['j'] = 1;
			continue;
		}
		if (a[0] != '-' || a[1] == 0)
			break;
		if (a[1] == '-') {
			fprintf(stderr, "%s %s: unknown option '%s'\n", prog, argv[0], a);
			return -1;
		}
		for (const char *c = a + 1; *c; c++) {
			if (!strchr(allowed, *c) || *c == 'j') {
				fprintf(stderr, "%s %s: unknown option '-%c'\n", prog, argv[0], *c);
				return -1;
			}
			seen[(unsigned char)*c] = 1;
		}
	}
	*first = i;
	return 0;
}

static int need(int have, int want, const char *cmd, const char *args)
{
	if (have == want)
		return 0;
	fprintf(stderr, "%s: usage: %s %s %s\n", prog, prog, cmd, args);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option base_opts[] = {
		{"backend", required_argument, NULL, 'b'},
		{"readonly", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *p = strrchr(argv[0], '/');
	prog = p ? p + 1 : argv[0];
	struct opts o;
	memset(&o, 0, sizeof(o));
	o.backend = "memory";
	int ch, rc = 0;
	opterr = 0;
	struct option longopts[24];
	if (!with_store_flags(base_opts, longopts, sizeof(longopts) / sizeof(longopts[0]))) {
		fprintf(stderr, "%s: internal: option table too small\n", prog);
		return 2;
	}
	while ((ch = getopt_long(argc, argv, "+:b:ro:hV", longopts, NULL)) != -1) {
		if (ch >= STORE_FLAG_BASE && ch < STORE_FLAG_BASE + (int)N_STORE_FLAGS) {
			rc = add_opt(&o, store_flags[ch - STORE_FLAG_BASE].key, optarg);
			if (rc) {
				rc = 2;
				goto out;
			}
			continue;
		}
		switch (ch) {
		case 'b': o.backend = optarg; break;
		case 'r': rc = add_opt(&o, "readonly", "1"); break;
		case 'o': rc = add_o(&o, optarg); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("chuk-vfs %s\n", cvfs_version()); return 0;
		case ':':
			fprintf(stderr, "%s: option '%s' needs a value\n", prog, argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[optind - 1]);
			usage(stderr);
			return 2;
		}
		if (rc) {
			rc = 2;
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no command given\n", prog);
		usage(stderr);
		rc = 2;
		goto out;
	}
	char **cargv = argv + optind;
	int cargc = argc - optind;
	const char *cmd = cargv[0];
	int seen[256] = {0}, first = 1;
	const char *flags = !strcmp(cmd, "ls") ? "l" : !strcmp(cmd, "rm") ? "rf" : !strcmp(cmd, "mkdir") ? "p"
			    : !strcmp(cmd, "status") ? "j" : "";
	static const char *const known[] = {"ls", "cat", "put", "get", "rm", "mv", "stat", "mkdir",
					    "status", NULL};
	int ok = 0;
	for (int i = 0; known[i]; i++)
		ok |= strcmp(cmd, known[i]) == 0;
	if (!ok) {
		fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (sub_flags(cargc, cargv, flags, seen, &first)) {
		rc = 2;
		goto out;
	}
	char **args = cargv + first;
	int nargs = cargc - first;

	if (!strcmp(cmd, "status")) {
		rc = need(nargs, 1, cmd, "[--json] MOUNTPOINT") ? 2 : cmd_status(args[0], seen['j']);
		goto out;
	}
	static const struct {
		const char *cmd, *args;
		int n;
	} shapes[] = {
		{"ls", "[-l] PATH", 1},   {"cat", "PATH", 1},       {"put", "LOCALFILE|- PATH", 2},
		{"get", "PATH LOCALFILE|-", 2}, {"rm", "[-r] PATH", 1}, {"mv", "FROM TO", 2},
		{"stat", "PATH", 1},      {"mkdir", "[-p] PATH", 1},
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		if (strcmp(cmd, shapes[i].cmd))
			continue;
		/* ls with no path lists the root */
		if (!strcmp(cmd, "ls") && nargs == 0) {
			static char *root[] = {"/"};
			args = root;
			nargs = 1;
		}
		if (need(nargs, shapes[i].n, cmd, shapes[i].args)) {
			rc = 2;
			goto out;
		}
	}

	cvfs_fs *fs;
	char *err = NULL;
	int e = cvfs_open(o.backend, o.kv, &fs, &err);
	if (e) {
		fprintf(stderr, "%s: cannot open the %s store: %s\n", prog, o.backend,
			err ? err : strerror(-e));
		free(err);
		rc = 1;
		goto out;
	}
	if (!strcmp(cmd, "ls")) {
		rc = cmd_ls(fs, seen['l'], args[0]);
	} else if (!strcmp(cmd, "cat")) {
		rc = copy_out(fs, args[0], STDOUT_FILENO, "standard output");
	} else if (!strcmp(cmd, "put")) {
		rc = cmd_put(fs, args[0], args[1]);
	} else if (!strcmp(cmd, "get")) {
		rc = cmd_get(fs, args[0], args[1]);
	} else if (!strcmp(cmd, "rm")) {
		e = cvfs_remove(fs, args[0], seen['r']);
		if (e == -ENOENT && seen['f'])
			e = 0;
		rc = e ? fail("cannot remove", args[0], -e) : 0;
	} else if (!strcmp(cmd, "mv")) {
		e = cvfs_rename(fs, args[0], args[1], 0);
		if (e) {
			fprintf(stderr, "%s: cannot move %s to %s: %s\n", prog, args[0], args[1],
				strerror(-e));
			rc = 1;
		}
	} else if (!strcmp(cmd, "stat")) {
		rc = cmd_stat(fs, args[0]);
	} else if (!strcmp(cmd, "mkdir")) {
		e = cvfs_mkdir(fs, args[0], 0777, seen['p']);
		rc = e ? fail("cannot create directory", args[0], -e) : 0;
	}
	cvfs_close(fs);
	if (fflush(stdout) != 0 && rc == 0)
		rc = fail("standard output", NULL, errno);
out:
	for (size_t i = 0; i < o.n; i++)
		free(o.owned[i]);
	return rc;
}
