/*
 * The syscall battery: one set of POSIX/Linux checks, run unchanged on a plain
 * directory and on a chuk-vfs mount.
 *
 *   battery DIR [--only NAME] [--list]
 *
 * Each case runs in a forked process, with its own fresh directory under DIR
 * as the working directory (removed afterwards), and prints a TAP-like line:
 *   ok N - name
 *   not ok N - name: what differed [battery.c:LINE]
 *   ok N - name # SKIP reason
 * and the run ends with "battery: N passed, N failed".  Exit status 0 only if
 * nothing failed.
 *
 * Expected values are those POSIX or Linux specifies, never "whatever this
 * filesystem does".  A case may skip for a missing filesystem feature only
 * after probing for it, and never on a FUSE filesystem (the system under
 * test): there a missing feature is a failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

enum { T_PASS = 0, T_FAIL = 1, T_SKIP = 2 };

#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

static char g_msg[2048];   /* why the current case failed or skipped */
static int g_on_fuse;      /* the directory under test is on FUSE: never skip */
static const char *g_dir; /* DIR as given */

/* ---- errno names ---- */

static const char *ename(int e)
{
	switch (e) {
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
	E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV)
	E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ETXTBSY) E(EFBIG)
	E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOLCK)
	E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA) E(EOVERFLOW) E(EOPNOTSUPP) E(ENOTCONN)
	E(ESTALE) E(EDQUOT) E(ECONNABORTED) E(ETIMEDOUT) E(ENOTSOCK) E(EDEADLK)
#undef E
	case 0: return "success";
	default: break;
	}
	static char buf[32];
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

/* ---- reporting ---- */

static void setmsg(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void setmsg(int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(g_msg, sizeof(g_msg) - 40, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(g_msg) - 40)
		n = (int)sizeof(g_msg) - 40;
	snprintf(g_msg + n, 40, " [battery.c:%d]", line);
}

static int skip_fs(int line, const char *what)
{
	if (g_on_fuse) {
		setmsg(line, "unsupported on the FUSE filesystem under test: %s", what);
		return T_FAIL;
	}
	snprintf(g_msg, sizeof(g_msg), "%s", what);
	return T_SKIP;
}

#define FAIL(...)                                                                    \
	do {                                                                         \
		setmsg(__LINE__, __VA_ARGS__);                                       \
		return T_FAIL;                                                       \
	} while (0)

#define SKIP_FS(what) return skip_fs(__LINE__, what)

#define SKIP_ENV(...)                                                                \
	do {                                                                         \
		snprintf(g_msg, sizeof(g_msg), __VA_ARGS__);                         \
		return T_SKIP;                                                       \
	} while (0)

/* expr must succeed (not return -1). */
#define OK(expr)                                                                     \
	do {                                                                         \
		errno = 0;                                                           \
		long long r_ = (long long)(expr);                                    \
		if (r_ == -1)                                                        \
			FAIL("%s: got -1 %s, expected success", #expr, ename(errno)); \
	} while (0)

/* expr must fail with errno e. */
#define ERR(expr, e)                                                                 \
	do {                                                                         \
		errno = 0;                                                           \
		long long r_ = (long long)(expr);                                    \
		int e_ = errno;                                                      \
		if (r_ != -1 || e_ != (e))                                           \
			FAIL("%s: expected -1 %s, got %lld %s", #expr, ename(e), r_,  \
			     r_ == -1 ? ename(e_) : "(no error)");                  \
	} while (0)

/* expr must fail with errno e1 or e2 (both allowed by POSIX/Linux). */
#define ERR2(expr, e1, e2)                                                           \
	do {                                                                         \
		errno = 0;                                                           \
		long long r_ = (long long)(expr);                                    \
		int e_ = errno;                                                      \
		if (r_ != -1 || (e_ != (e1) && e_ != (e2)))                          \
			FAIL("%s: expected -1 %s or %s, got %lld %s", #expr, ename(e1), \
			     ename(e2), r_, r_ == -1 ? ename(e_) : "(no error)");      \
	} while (0)

#define EQ(a, b)                                                                     \
	do {                                                                         \
		long long a_ = (long long)(a), b_ = (long long)(b);                  \
		if (a_ != b_)                                                        \
			FAIL("%s is %lld, expected %lld (%s)", #a, a_, b_, #b);       \
	} while (0)

#define EQO(a, b)                                                                    \
	do {                                                                         \
		long long a_ = (long long)(a), b_ = (long long)(b);                  \
		if (a_ != b_)                                                        \
			FAIL("%s is 0%llo, expected 0%llo", #a, a_, b_);             \
	} while (0)

#define TRUE(cond, ...)                                                              \
	do {                                                                         \
		if (!(cond))                                                         \
			FAIL(__VA_ARGS__);                                           \
	} while (0)

#define TRY(x)                                                                       \
	do {                                                                         \
		int t_ = (x);                                                        \
		if (t_ != T_PASS)                                                    \
			return t_;                                                   \
	} while (0)

/* ---- helpers ---- */

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static long long tsns(struct timespec t)
{
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return tsns(t);
}

static uint64_t g_rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	g_rng = seed ? seed : 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rnd() >> 32);
}

static void fmt_bytes(char *out, size_t outsz, const unsigned char *p, size_t n)
{
	size_t k = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && k + 5 < outsz; i++) {
		if (p[i] >= 32 && p[i] < 127 && p[i] != '\\')
			out[k++] = (char)p[i];
		else
			k += (size_t)snprintf(out + k, outsz - k, "\\x%02x", p[i]);
	}
	out[k < outsz ? k : outsz - 1] = 0;
}

static ssize_t write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -1 : (ssize_t)done;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static ssize_t pread_all(int fd, void *buf, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Creates (or truncates) path with exactly these bytes. */
static int put_file(const char *path, const void *data, size_t len)
{
	int fd;
	OK(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
	ssize_t w = write_all(fd, data, len);
	int e = errno;
	close(fd);
	if (w != (ssize_t)len)
		FAIL("writing %zu bytes to %s: got %zd %s", len, path, w, ename(e));
	return T_PASS;
}

static int put_str(const char *path, const char *s)
{
	return put_file(path, s, strlen(s));
}

/* Bytes [off, off+len) of fd must equal want. */
static int check_fd(int fd, off_t off, const void *want, size_t len, const char *what)
{
	unsigned char *got = malloc(len ? len : 1);
	if (!got)
		FAIL("out of memory");
	ssize_t r = pread_all(fd, got, len, off);
	if (r < 0) {
		int e = errno;
		free(got);
		FAIL("%s: pread(%zu at %lld) failed: %s", what, len, (long long)off, ename(e));
	}
	if ((size_t)r != len) {
		free(got);
		FAIL("%s: pread(%zu at %lld) returned %zd bytes", what, len, (long long)off, r);
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char w = ((const unsigned char *)want)[i];
		if (got[i] != w) {
			char g[64], x[64];
			size_t n = len - i < 12 ? len - i : 12;
			fmt_bytes(g, sizeof(g), got + i, n);
			fmt_bytes(x, sizeof(x), (const unsigned char *)want + i, n);
			free(got);
			FAIL("%s: byte %lld differs: got \"%s\", expected \"%s\"", what,
			     (long long)off + (long long)i, g, x);
		}
	}
	free(got);
	return T_PASS;
}

static int check_zeros(int fd, off_t off, size_t len, const char *what)
{
	unsigned char *buf = malloc(1 << 20);
	if (!buf)
		FAIL("out of memory");
	while (len) {
		size_t n = len < (1u << 20) ? len : (1u << 20);
		ssize_t r = pread_all(fd, buf, n, off);
		if (r != (ssize_t)n) {
			int e = errno;
			free(buf);
			FAIL("%s: pread(%zu at %lld) returned %zd %s", what, n, (long long)off, r,
			     r < 0 ? ename(e) : "");
		}
		for (size_t i = 0; i < n; i++) {
			if (buf[i]) {
				int v = buf[i];
				free(buf);
				FAIL("%s: byte %lld is 0x%02x, expected 0 (hole)", what,
				     (long long)off + (long long)i, v);
			}
		}
		off += (off_t)n;
		len -= n;
	}
	free(buf);
	return T_PASS;
}

/* The whole of path must equal want (size and bytes). */
static int check_file(const char *path, const void *want, size_t len)
{
	int fd;
	struct stat st;
	OK(fd = open(path, O_RDONLY));
	if (fstat(fd, &st)) {
		int e = errno;
		close(fd);
		FAIL("fstat(%s): %s", path, ename(e));
	}
	if (st.st_size != (off_t)len) {
		close(fd);
		FAIL("%s: size %lld, expected %zu", path, (long long)st.st_size, len);
	}
	int rc = check_fd(fd, 0, want, len, path);
	/* and nothing past the end */
	char extra;
	ssize_t r = pread(fd, &extra, 1, (off_t)len);
	close(fd);
	if (rc)
		return rc;
	if (r != 0)
		FAIL("%s: pread at EOF (%zu) returned %zd, expected 0", path, len, r);
	return T_PASS;
}

static int check_str(const char *path, const char *s)
{
	return check_file(path, s, strlen(s));
}

static int xstat(const char *path, struct stat *st)
{
	if (stat(path, st))
		FAIL("stat(\"%s\"): %s", path, ename(errno));
	return T_PASS;
}

static int xlstat(const char *path, struct stat *st)
{
	if (lstat(path, st))
		FAIL("lstat(\"%s\"): %s", path, ename(errno));
	return T_PASS;
}

static int gone(const char *path)
{
	struct stat st;
	errno = 0;
	if (lstat(path, &st) == 0)
		FAIL("\"%s\" still exists (ino %llu), expected ENOENT", path,
		     (unsigned long long)st.st_ino);
	if (errno != ENOENT)
		FAIL("lstat(\"%s\"): %s, expected ENOENT", path, ename(errno));
	return T_PASS;
}

/* ---- children ---- */

typedef int (*child_fn)(void *arg);
struct child {
	pid_t pid;
	int rd;
};

static int child_start(struct child *c, child_fn fn, void *arg)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		FAIL("pipe: %s", ename(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", ename(errno));
	if (pid == 0) {
		close(p[0]);
		alarm(60);
		g_msg[0] = 0;
		int r = fn(arg);
		if (write(p[1], g_msg, strlen(g_msg)) < 0)
			r = T_FAIL;
		_exit(r);
	}
	close(p[1]);
	c->pid = pid;
	c->rd = p[0];
	return T_PASS;
}

static int child_join(struct child *c)
{
	char buf[sizeof(g_msg)];
	size_t k = 0;
	for (;;) {
		ssize_t r = read(c->rd, buf + k, sizeof(buf) - 1 - k);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		k += (size_t)r;
		if (k == sizeof(buf) - 1)
			break;
	}
	buf[k] = 0;
	close(c->rd);
	int st;
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == T_PASS)
		return T_PASS;
	if (WIFEXITED(st) && WEXITSTATUS(st) == T_SKIP) {
		snprintf(g_msg, sizeof(g_msg), "%s", buf);
		return T_SKIP;
	}
	if (WIFSIGNALED(st))
		snprintf(g_msg, sizeof(g_msg), "child killed by signal %d (%s)%s%.1900s",
			 WTERMSIG(st), strsignal(WTERMSIG(st)), k ? ": " : "", buf);
	else
		snprintf(g_msg, sizeof(g_msg), "in child: %.1900s", buf);
	return T_FAIL;
}

static int in_child(child_fn fn, void *arg)
{
	struct child c;
	TRY(child_start(&c, fn, arg));
	return child_join(&c);
}

/* ================================================================ cases */

static int t_open_creat(void)
{
	struct stat st, dot;
	int fd;
	long long t0 = now_ns();
	OK(fd = open("f", O_CREAT | O_WRONLY, 0666));
	long long t1 = now_ns();
	OK(fstat(fd, &st));
	TRY(xstat(".", &dot));
	/* a new file's times are "now" */
	TRUE(tsns(st.st_mtim) >= t0 - 50000000LL && tsns(st.st_mtim) <= t1 + 50000000LL,
	     "new file's mtime %lld not within [%lld, %lld]", tsns(st.st_mtim), t0, t1);
	TRUE(tsns(st.st_ctim) >= t0 - 50000000LL && tsns(st.st_ctim) <= t1 + 50000000LL,
	     "new file's ctime %lld not within [%lld, %lld]", tsns(st.st_ctim), t0, t1);
	TRUE(tsns(st.st_atim) >= t0 - 50000000LL && tsns(st.st_atim) <= t1 + 50000000LL,
	     "new file's atime %lld not within [%lld, %lld]", tsns(st.st_atim), t0, t1);
	TRUE(S_ISREG(st.st_mode), "new file is not S_IFREG: mode 0%o", st.st_mode);
	EQO(st.st_mode & 07777, 0644); /* 0666 & ~umask 022 */
	EQ(st.st_size, 0);
	EQ(st.st_nlink, 1);
	EQ(st.st_uid, geteuid());
	EQ(st.st_gid, (dot.st_mode & S_ISGID) ? dot.st_gid : getegid());
	OK(write_all(fd, "hello", 5));
	OK(close(fd));
	/* O_CREAT on an existing file opens it, data and mode untouched. */
	OK(fd = open("f", O_CREAT | O_RDWR, 0600));
	OK(fstat(fd, &st));
	EQO(st.st_mode & 07777, 0644);
	TRY(check_fd(fd, 0, "hello", 5, "f after O_CREAT of existing"));
	OK(close(fd));
	ERR(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	ERR(open("f", O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST);
	OK(mkdir("d", 0755));
	ERR(open("d", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	ERR(open("d", O_CREAT | O_WRONLY, 0644), EISDIR);
	/* O_EXCL fails on a dangling symlink; without it, the target is created. */
	OK(symlink("target", "dl"));
	ERR(open("dl", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	TRY(gone("target"));
	OK(fd = open("dl", O_CREAT | O_WRONLY, 0640));
	OK(close(fd));
	TRY(xlstat("target", &st));
	TRUE(S_ISREG(st.st_mode), "target created through a symlink is not a file");
	EQO(st.st_mode & 07777, 0640);
	ERR(open("missing", O_RDONLY), ENOENT);
	ERR(open("f/x", O_CREAT | O_WRONLY, 0644), ENOTDIR);
	ERR(open("nodir/x", O_CREAT | O_WRONLY, 0644), ENOENT);
	ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	/* A new file's mode is exactly mode & ~umask, also with odd bits. */
	OK(fd = open("g", O_CREAT | O_WRONLY | O_EXCL, 0751));
	OK(fstat(fd, &st));
	EQO(st.st_mode & 07777, 0751 & ~022);
	OK(close(fd));
	/* access modes */
	char c;
	OK(fd = open("f", O_WRONLY));
	ERR(read(fd, &c, 1), EBADF);
	OK(close(fd));
	OK(fd = open("f", O_RDONLY));
	ERR(write(fd, "x", 1), EBADF);
	OK(close(fd));
	return T_PASS;
}

static int t_open_trunc(void)
{
	struct stat a, b;
	int fd;
	TRY(put_str("f", "0123456789"));
	TRY(xstat("f", &a));
	msleep(30);
	OK(fd = open("f", O_WRONLY | O_TRUNC));
	OK(fstat(fd, &b));
	EQ(b.st_size, 0);
	TRUE(tsns(b.st_mtim) > tsns(a.st_mtim), "mtime did not advance on O_TRUNC");
	TRUE(tsns(b.st_ctim) > tsns(a.st_ctim), "ctime did not advance on O_TRUNC");
	OK(write_all(fd, "ab", 2));
	OK(close(fd));
	TRY(check_str("f", "ab"));
	/* POSIX: O_TRUNC of an existing (even empty) file marks mtime and ctime. */
	TRY(put_str("e", ""));
	TRY(xstat("e", &a));
	msleep(30);
	OK(fd = open("e", O_WRONLY | O_TRUNC));
	OK(fstat(fd, &b));
	OK(close(fd));
	TRUE(tsns(b.st_mtim) > tsns(a.st_mtim),
	     "mtime did not advance on O_TRUNC of an empty file (POSIX open: shall mark for update)");
	TRUE(tsns(b.st_ctim) > tsns(a.st_ctim),
	     "ctime did not advance on O_TRUNC of an empty file (POSIX open: shall mark for update)");
	/* O_TRUNC with O_CREAT on an existing file */
	TRY(put_str("g", "long contents here"));
	OK(fd = open("g", O_CREAT | O_RDWR | O_TRUNC, 0644));
	OK(fstat(fd, &b));
	EQ(b.st_size, 0);
	char c;
	EQ(read(fd, &c, 1), 0);
	OK(close(fd));
	TRY(check_str("g", ""));
	return T_PASS;
}

static int t_open_append(void)
{
	int a, b, c;
	OK(a = open("f", O_WRONLY | O_APPEND | O_CREAT, 0644));
	OK(b = open("f", O_WRONLY | O_APPEND));
	OK(c = open("f", O_WRONLY));
	EQ(write(a, "A1", 2), 2);
	EQ(lseek(a, 0, SEEK_CUR), 2);
	EQ(write(b, "B1", 2), 2);
	EQ(lseek(b, 0, SEEK_CUR), 4);
	EQ(write(a, "A2", 2), 2);
	EQ(lseek(a, 0, SEEK_CUR), 6);
	/* a plain fd writes where its offset says: at 0 */
	EQ(write(c, "zz", 2), 2);
	EQ(write(b, "B2", 2), 2);
	EQ(lseek(b, 0, SEEK_CUR), 8);
	/* seeking an O_APPEND fd does not stop it appending */
	EQ(lseek(a, 0, SEEK_SET), 0);
	EQ(write(a, "A3", 2), 2);
	EQ(lseek(a, 0, SEEK_CUR), 10);
	OK(close(a));
	OK(close(b));
	OK(close(c));
	TRY(check_str("f", "zzB1A2B2A3"));
	/* O_RDWR|O_APPEND: reads from the offset, writes at the end */
	OK(a = open("f", O_RDWR | O_APPEND));
	char buf[4];
	EQ(read(a, buf, 4), 4);
	TRUE(memcmp(buf, "zzB1", 4) == 0, "read through O_APPEND fd got wrong data");
	EQ(write(a, "!", 1), 1);
	EQ(lseek(a, 0, SEEK_CUR), 11);
	OK(close(a));
	TRY(check_str("f", "zzB1A2B2A3!"));
	/* many alternating appends from two descriptions: nothing lost */
	OK(a = open("g", O_WRONLY | O_APPEND | O_CREAT, 0644));
	OK(b = open("g", O_WRONLY | O_APPEND));
	char want[2000];
	for (int i = 0; i < 1000; i++) {
		int fd = (i & 1) ? b : a;
		char ch = (char)('a' + i % 26);
		char two[2] = {ch, (i & 1) ? '1' : '0'};
		EQ(write(fd, two, 2), 2);
		memcpy(want + 2 * i, two, 2);
	}
	OK(close(a));
	OK(close(b));
	TRY(check_file("g", want, sizeof(want)));
	return T_PASS;
}

static int t_rw_offsets(void)
{
	int fd;
	char buf[64];
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	EQ(write(fd, "0123456789", 10), 10);
	EQ(lseek(fd, 0, SEEK_CUR), 10);
	EQ(lseek(fd, 3, SEEK_SET), 3);
	EQ(write(fd, "AB", 2), 2);
	EQ(lseek(fd, 0, SEEK_CUR), 5);
	EQ(read(fd, buf, 3), 3);
	TRUE(memcmp(buf, "567", 3) == 0, "read after write at offset 3 got wrong bytes");
	EQ(lseek(fd, -2, SEEK_END), 8);
	EQ(read(fd, buf, 10), 2); /* short read at EOF */
	TRUE(memcmp(buf, "89", 2) == 0, "short read at EOF got wrong bytes");
	EQ(read(fd, buf, 10), 0);
	ERR(lseek(fd, -1, SEEK_SET), EINVAL);
	/* writing past EOF leaves a zero gap */
	EQ(lseek(fd, 20, SEEK_SET), 20);
	EQ(write(fd, "Z", 1), 1);
	struct stat st;
	OK(fstat(fd, &st));
	EQ(st.st_size, 21);
	TRY(check_fd(fd, 0, "012AB56789", 10, "head"));
	TRY(check_zeros(fd, 10, 10, "gap"));
	TRY(check_fd(fd, 20, "Z", 1, "tail"));
	/* a write across page boundaries, read back in pieces */
	unsigned char big[10000];
	fill_random(big, sizeof(big), 7);
	EQ(lseek(fd, 4000, SEEK_SET), 4000);
	EQ(write_all(fd, big, sizeof(big)), (long long)sizeof(big));
	EQ(lseek(fd, 4090, SEEK_SET), 4090);
	EQ(read(fd, buf, 20), 20);
	TRUE(memcmp(buf, big + 90, 20) == 0, "read across page boundary at 4090 differs");
	TRY(check_fd(fd, 4000, big, sizeof(big), "big write"));
	TRY(check_fd(fd, 0, "012AB56789", 10, "head after big write"));
	/* overwrite in the middle without changing the size */
	EQ(pwrite(fd, "MID", 3, 8190), 3);
	OK(fstat(fd, &st));
	EQ(st.st_size, 14000);
	TRY(check_fd(fd, 8188, big + 4188, 2, "before overwrite"));
	TRY(check_fd(fd, 8190, "MID", 3, "overwrite"));
	TRY(check_fd(fd, 8193, big + 4193, 7, "after overwrite"));
	OK(close(fd));
	return T_PASS;
}

static int t_pread_pwrite(void)
{
	int fd;
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	static const struct {
		off_t off;
		const char *s;
	} w[] = {{0, "start"}, {100, "hundred"}, {4095, "page-edge"}, {65537, "past-64k"}, {70, "seventy"}};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		EQ(pwrite(fd, w[i].s, strlen(w[i].s), w[i].off), (long long)strlen(w[i].s));
	EQ(lseek(fd, 0, SEEK_CUR), 0); /* pwrite leaves the offset alone */
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		TRY(check_fd(fd, w[i].off, w[i].s, strlen(w[i].s), w[i].s));
	EQ(lseek(fd, 0, SEEK_CUR), 0);
	TRY(check_zeros(fd, 5, 65, "gap 5..70"));
	TRY(check_zeros(fd, 107, 4095 - 107, "gap 107..4095"));
	struct stat st;
	OK(fstat(fd, &st));
	EQ(st.st_size, 65537 + 8);
	char buf[32];
	EQ(pread(fd, buf, sizeof(buf), 65537 + 8), 0);
	EQ(pread(fd, buf, sizeof(buf), 1 << 20), 0);
	EQ(pread(fd, buf, sizeof(buf), 65537 + 4), 4);
	TRUE(memcmp(buf, "-64k", 4) == 0, "pread crossing EOF got wrong bytes");
	ERR(pread(fd, buf, 1, -1), EINVAL);
	ERR(pwrite(fd, buf, 1, -1), EINVAL);
	/* read() continues from the offset set by lseek, unaffected by pread */
	EQ(lseek(fd, 100, SEEK_SET), 100);
	EQ(pread(fd, buf, 5, 0), 5);
	EQ(read(fd, buf, 7), 7);
	TRUE(memcmp(buf, "hundred", 7) == 0, "read after pread got wrong bytes");
	OK(close(fd));
	int d;
	OK(d = open(".", O_RDONLY | O_DIRECTORY));
	ERR(pread(d, buf, 1, 0), EISDIR);
	ERR(read(d, buf, 1), EISDIR);
	OK(close(d));
	return T_PASS;
}

static int t_sparse(void)
{
	int fd;
	struct stat st;
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	const off_t far = 10 * MiB + 7;
	EQ(pwrite(fd, "end", 3, far), 3);
	OK(fstat(fd, &st));
	EQ(st.st_size, far + 3);
	TRY(check_zeros(fd, 0, (size_t)far, "hole before 10 MiB"));
	TRY(check_fd(fd, far, "end", 3, "data past hole"));
	EQ(pwrite(fd, "mid", 3, 3 * MiB + 1), 3);
	TRY(check_zeros(fd, 0, (size_t)(3 * MiB + 1), "hole before mid"));
	TRY(check_fd(fd, 3 * MiB + 1, "mid", 3, "mid"));
	TRY(check_zeros(fd, 3 * MiB + 4, (size_t)(far - (3 * MiB + 4)), "hole after mid"));
	OK(fstat(fd, &st));
	EQ(st.st_size, far + 3);
	OK(close(fd));
	/* a hole made by lseek past EOF then write */
	OK(fd = open("g", O_WRONLY | O_CREAT, 0644));
	EQ(lseek(fd, 200000, SEEK_SET), 200000);
	EQ(write(fd, "x", 1), 1);
	OK(close(fd));
	OK(fd = open("g", O_RDONLY));
	TRY(check_zeros(fd, 0, 200000, "lseek hole"));
	TRY(check_fd(fd, 200000, "x", 1, "after lseek hole"));
	OK(close(fd));
	return T_PASS;
}

static int t_truncate(void)
{
	char x[100];
	memset(x, 'x', sizeof(x));
	struct stat st;
	int fd;
	TRY(put_file("f", x, sizeof(x)));
	OK(truncate("f", 10));
	TRY(xstat("f", &st));
	EQ(st.st_size, 10);
	TRY(check_file("f", x, 10));
	OK(truncate("f", 100));
	TRY(xstat("f", &st));
	EQ(st.st_size, 100);
	OK(fd = open("f", O_RDONLY));
	TRY(check_fd(fd, 0, x, 10, "kept head"));
	TRY(check_zeros(fd, 10, 90, "re-extended by truncate"));
	OK(close(fd));
	/* cut inside the second 64 KiB, re-extend by a write beyond the old size */
	unsigned char *data = malloc(300 * 1024);
	TRUE(data != NULL, "out of memory");
	fill_random(data, 300 * 1024, 11);
	TRY(put_file("g", data, 300 * 1024));
	OK(truncate("g", 70000));
	OK(fd = open("g", O_RDWR));
	EQ(pwrite(fd, "E", 1, 300 * 1024 + 5), 1);
	OK(fstat(fd, &st));
	EQ(st.st_size, 300 * 1024 + 6);
	int rc = check_fd(fd, 0, data, 70000, "kept data");
	free(data);
	TRY(rc);
	TRY(check_zeros(fd, 70000, 300 * 1024 + 5 - 70000, "re-extended by write"));
	TRY(check_fd(fd, 300 * 1024 + 5, "E", 1, "written past"));
	OK(close(fd));
	/* to zero and up again */
	OK(truncate("g", 0));
	TRY(xstat("g", &st));
	EQ(st.st_size, 0);
	OK(truncate("g", 4097));
	OK(fd = open("g", O_RDONLY));
	TRY(check_zeros(fd, 0, 4097, "zero then re-extended"));
	OK(close(fd));
	/* mtime and ctime change when the size changes */
	struct stat a, b;
	TRY(xstat("g", &a));
	msleep(30);
	OK(truncate("g", 10));
	TRY(xstat("g", &b));
	TRUE(tsns(b.st_mtim) > tsns(a.st_mtim), "mtime did not advance on truncate");
	TRUE(tsns(b.st_ctim) > tsns(a.st_ctim), "ctime did not advance on truncate");
	OK(mkdir("d", 0755));
	ERR(truncate("d", 0), EISDIR);
	ERR(truncate("missing", 0), ENOENT);
	ERR(truncate("g", -1), EINVAL);
	return T_PASS;
}

static int t_ftruncate(void)
{
	int fd, ro;
	struct stat st;
	char buf[1000];
	memset(buf, 'q', sizeof(buf));
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	EQ(write_all(fd, buf, sizeof(buf)), 1000);
	OK(ftruncate(fd, 100));
	OK(fstat(fd, &st));
	EQ(st.st_size, 100);
	EQ(lseek(fd, 0, SEEK_CUR), 1000); /* the offset is not moved */
	OK(ftruncate(fd, 5000));
	OK(fstat(fd, &st));
	EQ(st.st_size, 5000);
	TRY(check_fd(fd, 0, buf, 100, "kept"));
	TRY(check_zeros(fd, 100, 4900, "extended"));
	OK(ftruncate(fd, 100));
	/* writing at the old offset leaves a hole after the cut */
	EQ(write(fd, "Q", 1), 1);
	OK(fstat(fd, &st));
	EQ(st.st_size, 1001);
	TRY(check_zeros(fd, 100, 900, "hole between cut and write"));
	TRY(check_fd(fd, 1000, "Q", 1, "written"));
	OK(ro = open("f", O_RDONLY));
	ERR2(ftruncate(ro, 0), EINVAL, EBADF);
	OK(close(ro));
	ERR(ftruncate(fd, -1), EINVAL);
	/* ftruncate to the same size still updates mtime and ctime (POSIX) */
	struct stat a;
	OK(fstat(fd, &a));
	msleep(30);
	OK(ftruncate(fd, 1001));
	OK(fstat(fd, &st));
	TRUE(tsns(st.st_mtim) > tsns(a.st_mtim), "mtime did not advance on ftruncate");
	TRUE(tsns(st.st_ctim) > tsns(a.st_ctim), "ctime did not advance on ftruncate");
	OK(close(fd));
	TRY(xstat("f", &st));
	EQ(st.st_size, 1001);
	return T_PASS;
}

static int t_rename_file(void)
{
	struct stat a, b;
	TRY(put_str("a", "content of a"));
	TRY(xstat("a", &a));
	OK(rename("a", "b"));
	TRY(gone("a"));
	TRY(xstat("b", &b));
	EQ(b.st_ino, a.st_ino);
	EQ(b.st_nlink, 1);
	TRY(check_str("b", "content of a"));
	OK(mkdir("sub", 0755));
	OK(rename("b", "sub/c"));
	TRY(gone("b"));
	TRY(xstat("sub/c", &b));
	EQ(b.st_ino, a.st_ino);
	TRY(check_str("sub/c", "content of a"));
	OK(rename("sub/c", "sub/c")); /* same name: no-op */
	TRY(check_str("sub/c", "content of a"));
	ERR(rename("missing", "x"), ENOENT);
	ERR(rename("sub/c", "nodir/x"), ENOENT);
	ERR(rename("sub/c/", "x"), ENOTDIR);
	ERR(rename("sub/c", "sub/c/x"), ENOTDIR);
	/* back up and down again */
	OK(rename("sub/c", "a"));
	TRY(check_str("a", "content of a"));
	TRY(xstat("a", &b));
	EQ(b.st_ino, a.st_ino);
	return T_PASS;
}

static int t_rename_over_file(void)
{
	struct stat a, b, st;
	int fd;
	TRY(put_str("a", "AAA"));
	TRY(put_str("b", "BBBBB"));
	TRY(xstat("a", &a));
	TRY(xstat("b", &b));
	TRUE(a.st_ino != b.st_ino, "two files share inode %llu", (unsigned long long)a.st_ino);
	OK(fd = open("b", O_RDONLY));
	OK(rename("a", "b"));
	TRY(gone("a"));
	TRY(xstat("b", &st));
	EQ(st.st_ino, a.st_ino);
	EQ(st.st_nlink, 1);
	TRY(check_str("b", "AAA"));
	/* the replaced file lives on through its descriptor */
	OK(fstat(fd, &st));
	EQ(st.st_ino, b.st_ino);
	EQ(st.st_nlink, 0);
	EQ(st.st_size, 5);
	TRY(check_fd(fd, 0, "BBBBB", 5, "replaced file via open fd"));
	OK(close(fd));
	/* replacing one name of a hard-linked file leaves the other */
	TRY(put_str("c", "CC"));
	OK(link("c", "c2"));
	TRY(put_str("n", "NEW"));
	OK(rename("n", "c"));
	TRY(check_str("c", "NEW"));
	TRY(check_str("c2", "CC"));
	TRY(xstat("c2", &st));
	EQ(st.st_nlink, 1);
	/* rename across directories over an existing file */
	OK(mkdir("d", 0755));
	TRY(put_str("d/t", "old target"));
	OK(rename("b", "d/t"));
	TRY(check_str("d/t", "AAA"));
	TRY(xstat("d/t", &st));
	EQ(st.st_ino, a.st_ino);
	TRY(gone("b"));
	return T_PASS;
}

static int t_rename_dir(void)
{
	struct stat d, st, p1, p2;
	OK(mkdir("p1", 0755));
	OK(mkdir("p2", 0755));
	OK(mkdir("p1/d", 0755));
	OK(mkdir("p1/d/sub", 0755));
	TRY(put_str("p1/d/sub/f", "deep"));
	TRY(put_str("p1/d/g", "shallow"));
	TRY(xstat("p1/d", &d));
	TRY(xstat("p1", &p1));
	TRY(xstat("p2", &p2));
	EQ(p1.st_nlink, 3);
	EQ(p2.st_nlink, 2);
	OK(rename("p1/d", "p2/e"));
	TRY(gone("p1/d"));
	TRY(check_str("p2/e/sub/f", "deep"));
	TRY(check_str("p2/e/g", "shallow"));
	TRY(xstat("p2/e", &st));
	EQ(st.st_ino, d.st_ino);
	EQ(st.st_nlink, 3);
	TRY(xstat("p2/e/..", &st));
	EQ(st.st_ino, p2.st_ino);
	TRY(xstat("p1", &st));
	EQ(st.st_nlink, 2);
	TRY(xstat("p2", &st));
	EQ(st.st_nlink, 3);
	/* within one parent: counts unchanged */
	OK(rename("p2/e", "p2/e2"));
	TRY(xstat("p2", &st));
	EQ(st.st_nlink, 3);
	TRY(check_str("p2/e2/sub/f", "deep"));
	/* and a file inside the moved tree can be opened and renamed */
	OK(rename("p2/e2/sub/f", "p1/f"));
	TRY(check_str("p1/f", "deep"));
	TRY(xstat("p1", &st));
	EQ(st.st_nlink, 2);
	return T_PASS;
}

static int t_rename_dir_over_dir(void)
{
	struct stat a, st, dot0;
	TRY(xstat(".", &dot0));
	OK(mkdir("a", 0755));
	TRY(put_str("a/f", "in a"));
	OK(mkdir("empty", 0755));
	TRY(xstat("a", &a));
	TRY(xstat(".", &st));
	EQ(st.st_nlink, dot0.st_nlink + 2);
	OK(rename("a", "empty"));
	TRY(gone("a"));
	TRY(xstat("empty", &st));
	EQ(st.st_ino, a.st_ino);
	TRY(check_str("empty/f", "in a"));
	TRY(xstat(".", &st));
	EQ(st.st_nlink, dot0.st_nlink + 1);
	/* onto a non-empty directory */
	OK(mkdir("x", 0755));
	TRY(put_str("x/y", "y"));
	OK(mkdir("z", 0755));
	TRY(put_str("z/w", "w"));
	ERR2(rename("x", "z"), ENOTEMPTY, EEXIST);
	OK(mkdir("z2", 0755));
	OK(mkdir("z2/only-a-dir", 0755));
	ERR2(rename("x", "z2"), ENOTEMPTY, EEXIST);
	TRY(check_str("x/y", "y"));
	TRY(check_str("z/w", "w"));
	TRY(xstat("z2/only-a-dir", &st));
	/* across parents onto an empty directory */
	OK(mkdir("p", 0755));
	OK(mkdir("p/e", 0755));
	OK(rename("x", "p/e"));
	TRY(check_str("p/e/y", "y"));
	TRY(xstat("p", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat(".", &st));
	EQ(st.st_nlink, dot0.st_nlink + 4); /* empty, z, z2, p */
	return T_PASS;
}

static int t_rename_errors(void)
{
	struct stat st;
	TRY(put_str("f", "file"));
	OK(mkdir("d", 0755));
	OK(mkdir("d/sub", 0755));
	OK(mkdir("e", 0755));
	OK(mkdir("ne", 0755));
	TRY(put_str("ne/x", "x"));
	ERR(rename("f", "e"), EISDIR);
	ERR(rename("f", "ne"), EISDIR);
	ERR(rename("d", "f"), ENOTDIR);
	ERR(rename("d", "d/sub/x"), EINVAL);
	ERR(rename("d", "d/x"), EINVAL);
	ERR(rename("d", "d/sub"), EINVAL);
	ERR(rename("f", "f/x"), ENOTDIR);
	ERR(rename("d/sub", "e/x/y"), ENOENT);
	/* nothing moved */
	TRY(check_str("f", "file"));
	TRY(xstat("d/sub", &st));
	TRUE(S_ISDIR(st.st_mode), "d/sub is no longer a directory");
	TRY(xstat("e", &st));
	EQ(st.st_nlink, 2);
	TRY(xstat("d", &st));
	EQ(st.st_nlink, 3);
	TRY(check_str("ne/x", "x"));
	return T_PASS;
}

static int t_rename_noreplace(void)
{
	TRY(put_str("a", "A"));
	TRY(put_str("b", "B"));
	errno = 0;
	if (renameat2(AT_FDCWD, "a", AT_FDCWD, "c", RENAME_NOREPLACE) != 0) {
		if (errno == EINVAL || errno == ENOSYS)
			SKIP_FS("renameat2(RENAME_NOREPLACE) not supported here");
		FAIL("renameat2(a, c, RENAME_NOREPLACE): %s", ename(errno));
	}
	TRY(gone("a"));
	TRY(check_str("c", "A"));
	ERR(renameat2(AT_FDCWD, "c", AT_FDCWD, "b", RENAME_NOREPLACE), EEXIST);
	TRY(check_str("c", "A"));
	TRY(check_str("b", "B"));
	OK(mkdir("d1", 0755));
	OK(mkdir("d2", 0755));
	ERR(renameat2(AT_FDCWD, "d1", AT_FDCWD, "d2", RENAME_NOREPLACE), EEXIST);
	ERR(renameat2(AT_FDCWD, "c", AT_FDCWD, "d2", RENAME_NOREPLACE), EEXIST);
	OK(renameat2(AT_FDCWD, "d1", AT_FDCWD, "d2/d1", RENAME_NOREPLACE));
	struct stat st;
	TRY(xstat("d2", &st));
	EQ(st.st_nlink, 3);
	ERR(renameat2(AT_FDCWD, "c", AT_FDCWD, "b", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
	return T_PASS;
}

static int t_rename_exchange(void)
{
	struct stat a, b, st, A, B, s;
	TRY(put_str("a", "AAA"));
	TRY(put_str("b", "BB"));
	TRY(xstat("a", &a));
	TRY(xstat("b", &b));
	errno = 0;
	if (renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE) != 0) {
		if (errno == EINVAL || errno == ENOSYS)
			SKIP_FS("renameat2(RENAME_EXCHANGE) not supported here");
		FAIL("renameat2(a, b, RENAME_EXCHANGE): %s", ename(errno));
	}
	TRY(check_str("a", "BB"));
	TRY(check_str("b", "AAA"));
	TRY(xstat("a", &st));
	EQ(st.st_ino, b.st_ino);
	TRY(xstat("b", &st));
	EQ(st.st_ino, a.st_ino);
	ERR(renameat2(AT_FDCWD, "a", AT_FDCWD, "missing", RENAME_EXCHANGE), ENOENT);
	/* a file and a directory, across directories */
	OK(mkdir("A", 0755));
	OK(mkdir("B", 0755));
	TRY(put_str("A/f", "file"));
	OK(mkdir("B/s", 0755));
	OK(mkdir("B/s/inner", 0755));
	TRY(put_str("B/s/inner/x", "x"));
	TRY(xstat("A", &A));
	TRY(xstat("B", &B));
	TRY(xstat("B/s", &s));
	EQ(A.st_nlink, 2);
	EQ(B.st_nlink, 3);
	OK(renameat2(AT_FDCWD, "A/f", AT_FDCWD, "B/s", RENAME_EXCHANGE));
	TRY(xstat("A/f", &st));
	TRUE(S_ISDIR(st.st_mode), "A/f is not the directory after the exchange");
	EQ(st.st_ino, s.st_ino);
	EQ(st.st_nlink, 3);
	TRY(check_str("A/f/inner/x", "x"));
	TRY(xstat("A/f/..", &st));
	EQ(st.st_ino, A.st_ino);
	TRY(xlstat("B/s", &st));
	TRUE(S_ISREG(st.st_mode), "B/s is not the file after the exchange");
	TRY(check_str("B/s", "file"));
	TRY(xstat("A", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("B", &st));
	EQ(st.st_nlink, 2);
	/* and back */
	OK(renameat2(AT_FDCWD, "B/s", AT_FDCWD, "A/f", RENAME_EXCHANGE));
	TRY(xstat("A", &st));
	EQ(st.st_nlink, 2);
	TRY(xstat("B", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("B/s/..", &st));
	EQ(st.st_ino, B.st_ino);
	TRY(check_str("A/f", "file"));
	/* two directories across parents: counts stay */
	OK(mkdir("A/d", 0755));
	OK(renameat2(AT_FDCWD, "A/d", AT_FDCWD, "B/s", RENAME_EXCHANGE));
	TRY(xstat("A", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("B", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("A/d/inner", &st));
	/* a directory with its own descendant */
	ERR(renameat2(AT_FDCWD, "A/d", AT_FDCWD, "A/d/inner", RENAME_EXCHANGE), EINVAL);
	return T_PASS;
}

static int t_rename_hardlink_sibling(void)
{
	struct stat a, b;
	TRY(put_str("a", "shared"));
	OK(link("a", "b"));
	OK(rename("a", "b"));
	TRY(xstat("a", &a));
	TRY(xstat("b", &b));
	EQ(a.st_ino, b.st_ino);
	EQ(a.st_nlink, 2);
	TRY(check_str("a", "shared"));
	TRY(check_str("b", "shared"));
	OK(mkdir("d", 0755));
	OK(link("a", "d/c"));
	OK(rename("d/c", "a"));
	TRY(xstat("d/c", &b));
	EQ(b.st_nlink, 3);
	ERR(renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE), EEXIST);
	int n = 0;
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	struct dirent *e;
	while ((e = readdir(d)))
		n += !strcmp(e->d_name, "a") || !strcmp(e->d_name, "b");
	closedir(d);
	EQ(n, 2);
	return T_PASS;
}

static int t_unlink_open(void)
{
	struct stat st, orig;
	int fd;
	TRY(put_str("f", "hello world"));
	TRY(xstat("f", &orig));
	OK(fd = open("f", O_RDWR));
	OK(unlink("f"));
	TRY(gone("f"));
	OK(fstat(fd, &st));
	EQ(st.st_nlink, 0);
	EQ(st.st_size, 11);
	EQ(st.st_ino, orig.st_ino);
	TRY(check_fd(fd, 0, "hello world", 11, "unlinked file"));
	EQ(pwrite(fd, "XYZ", 3, 20), 3);
	OK(fstat(fd, &st));
	EQ(st.st_size, 23);
	TRY(check_zeros(fd, 11, 9, "gap in unlinked file"));
	TRY(check_fd(fd, 20, "XYZ", 3, "write to unlinked file"));
	OK(ftruncate(fd, 5));
	TRY(check_fd(fd, 0, "hello", 5, "unlinked file after ftruncate"));
	/* a new file under the same name is a different file */
	TRY(put_str("f", "new"));
	TRY(xstat("f", &st));
	TRUE(st.st_ino != orig.st_ino, "new file reuses the open unlinked file's inode");
	TRY(check_fd(fd, 0, "hello", 5, "unlinked file after recreate"));
	OK(fsync(fd));
	OK(close(fd));
	TRY(check_str("f", "new"));
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	EQ(n, 1);
	/* mmap of an unlinked file keeps working too */
	OK(fd = open("g", O_RDWR | O_CREAT, 0644));
	OK(ftruncate(fd, 4096));
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TRUE(p != MAP_FAILED, "mmap: %s", ename(errno));
	OK(unlink("g"));
	memcpy(p, "mapped", 6);
	OK(msync(p, 4096, MS_SYNC));
	int rc = check_fd(fd, 0, "mapped", 6, "mmap of unlinked file");
	munmap(p, 4096);
	close(fd);
	return rc;
}

static int t_rename_open(void)
{
	struct stat st;
	int fd;
	TRY(put_str("f", "abc"));
	OK(fd = open("f", O_RDWR));
	OK(rename("f", "g"));
	EQ(lseek(fd, 0, SEEK_END), 3);
	EQ(write(fd, "12345", 5), 5);
	OK(fstat(fd, &st));
	EQ(st.st_nlink, 1);
	TRY(check_str("g", "abc12345"));
	OK(mkdir("d", 0755));
	OK(rename("g", "d/h"));
	EQ(pwrite(fd, "Z", 1, 0), 1);
	TRY(check_str("d/h", "Zbc12345"));
	TRY(check_fd(fd, 0, "Zbc12345", 8, "renamed open file"));
	OK(close(fd));
	TRY(gone("f"));
	TRY(gone("g"));
	return T_PASS;
}

static int t_mkdir_rmdir(void)
{
	struct stat st;
	OK(mkdir("d", 0750));
	TRY(xstat("d", &st));
	TRUE(S_ISDIR(st.st_mode), "mkdir made mode 0%o", st.st_mode);
	EQO(st.st_mode & 07777, 0750);
	EQ(st.st_nlink, 2);
	EQ(st.st_uid, geteuid());
	ERR(mkdir("d", 0755), EEXIST);
	TRY(put_str("f", "file"));
	ERR(mkdir("f", 0755), EEXIST);
	OK(symlink("d", "sl"));
	ERR(mkdir("sl", 0755), EEXIST);
	ERR(mkdir("missing/x", 0755), ENOENT);
	ERR(mkdir("f/x", 0755), ENOTDIR);
	OK(mkdir("d/x", 0755));
	ERR2(rmdir("d"), ENOTEMPTY, EEXIST);
	ERR(rmdir("f"), ENOTDIR);
	ERR(rmdir("sl"), ENOTDIR);
	ERR(rmdir("missing"), ENOENT);
	ERR(rmdir("."), EINVAL);
	ERR(rmdir("d/x/."), EINVAL);
	ERR(rmdir("d/.."), ENOTEMPTY);
	ERR(unlink("d"), EISDIR);
	ERR(open("d", O_WRONLY), EISDIR);
	ERR(open("d", O_RDWR), EISDIR);
	ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	/* an open directory that is removed */
	int dfd;
	OK(dfd = open("d/x", O_RDONLY | O_DIRECTORY));
	OK(rmdir("d/x"));
	TRY(gone("d/x"));
	OK(fstat(dfd, &st));
	EQ(st.st_nlink, 0);
	ERR(openat(dfd, "new", O_CREAT | O_WRONLY, 0644), ENOENT);
	ERR(mkdirat(dfd, "new", 0755), ENOENT);
	/* readdir of the removed directory is empty (no "." / ".." required) */
	DIR *dd = fdopendir(dfd);
	TRUE(dd != NULL, "fdopendir: %s", ename(errno));
	struct dirent *e;
	while ((e = readdir(dd)))
		TRUE(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."),
		     "removed directory lists \"%s\"", e->d_name);
	closedir(dd);
	TRY(xstat("d", &st));
	EQ(st.st_nlink, 2);
	OK(rmdir("d"));
	TRY(gone("d"));
	/* mkdir applies the umask */
	OK(mkdir("m", 0777));
	TRY(xstat("m", &st));
	EQO(st.st_mode & 07777, 0755);
	return T_PASS;
}

static int t_dir_nlink(void)
{
	struct stat st, dot0;
	TRY(xstat(".", &dot0));
	EQ(dot0.st_nlink, 2);
	OK(mkdir("top", 0755));
	TRY(xstat(".", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 2);
	TRY(put_str("top/f", "f"));
	OK(symlink("f", "top/l"));
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 2);
	OK(mkdir("top/a", 0755));
	OK(mkdir("top/b", 0755));
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 4);
	OK(mkdir("top/a/x", 0755));
	TRY(xstat("top/a", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 4);
	OK(rmdir("top/b"));
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 3);
	OK(mkdir("other", 0755));
	OK(rename("top/a", "other/a"));
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 2);
	TRY(xstat("other", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat("other/a", &st));
	EQ(st.st_nlink, 3);
	OK(rename("other/a", "other/a2"));
	TRY(xstat("other", &st));
	EQ(st.st_nlink, 3);
	OK(rename("top/f", "other/f"));
	TRY(xstat("other", &st));
	EQ(st.st_nlink, 3);
	TRY(xstat(".", &st));
	EQ(st.st_nlink, 4);
	/* many subdirectories */
	char name[32];
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "top/s%d", i);
		OK(mkdir(name, 0755));
	}
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 52);
	for (int i = 0; i < 50; i += 2) {
		snprintf(name, sizeof(name), "top/s%d", i);
		OK(rmdir(name));
	}
	TRY(xstat("top", &st));
	EQ(st.st_nlink, 27);
	return T_PASS;
}

static int t_symlink(void)
{
	struct stat st, tgt;
	char buf[8192], cwd[PATH_MAX], abs[PATH_MAX + 16];
	TRY(put_str("target", "T"));
	TRY(xstat("target", &tgt));
	OK(symlink("target", "rel"));
	TRY(xlstat("rel", &st));
	TRUE(S_ISLNK(st.st_mode), "lstat(rel) is not S_IFLNK: 0%o", st.st_mode);
	EQ(st.st_size, 6);
	TRUE(st.st_ino != tgt.st_ino, "symlink shares the target's inode");
	memset(buf, '#', sizeof(buf));
	EQ(readlink("rel", buf, sizeof(buf)), 6);
	TRUE(memcmp(buf, "target#", 7) == 0, "readlink(rel) wrote \"%.7s\"", buf);
	TRY(xstat("rel", &st));
	TRUE(S_ISREG(st.st_mode), "stat(rel) does not follow");
	EQ(st.st_ino, tgt.st_ino);
	TRY(check_str("rel", "T"));
	/* absolute */
	TRUE(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd: %s", ename(errno));
	snprintf(abs, sizeof(abs), "%s/target", cwd);
	OK(symlink(abs, "abs"));
	TRY(xlstat("abs", &st));
	EQ(st.st_size, (long long)strlen(abs));
	EQ(readlink("abs", buf, sizeof(buf)), (long long)strlen(abs));
	TRUE(memcmp(buf, abs, strlen(abs)) == 0, "readlink(abs) differs");
	TRY(check_str("abs", "T"));
	/* dangling */
	OK(symlink("nowhere", "dangling"));
	ERR(stat("dangling", &st), ENOENT);
	TRY(xlstat("dangling", &st));
	TRUE(S_ISLNK(st.st_mode), "dangling is not a symlink");
	EQ(st.st_size, 7);
	ERR(open("dangling", O_RDONLY), ENOENT);
	/* relative to the link's directory */
	OK(mkdir("sub", 0755));
	OK(symlink("../target", "sub/up"));
	TRY(check_str("sub/up", "T"));
	/* no-follow */
	ERR(open("rel", O_RDONLY | O_NOFOLLOW), ELOOP);
	ERR(open("rel", O_WRONLY | O_NOFOLLOW | O_CREAT, 0644), ELOOP);
	/* short buffer: truncated, no NUL */
	memset(buf, '#', sizeof(buf));
	EQ(readlink("rel", buf, 3), 3);
	TRUE(memcmp(buf, "tar#", 4) == 0, "readlink with a 3-byte buffer wrote \"%.4s\"", buf);
	ERR(readlink("target", buf, sizeof(buf)), EINVAL);
	ERR(readlink("missing", buf, sizeof(buf)), ENOENT);
	ERR(symlink("x", "target"), EEXIST);
	ERR(symlink("x", "rel"), EEXIST);
	ERR(symlink("", "empty"), ENOENT);
	/* loops */
	OK(symlink("loop2", "loop1"));
	OK(symlink("loop1", "loop2"));
	ERR(stat("loop1", &st), ELOOP);
	ERR(open("loop1", O_RDONLY), ELOOP);
	/* a long target, exactly */
	char *lt = malloc(4096);
	TRUE(lt != NULL, "out of memory");
	for (int i = 0; i < 4095; i++)
		lt[i] = (i % 10 == 9) ? '/' : (char)('a' + i % 26);
	lt[4095] = 0;
	if (symlink(lt, "long")) {
		int e = errno;
		free(lt);
		FAIL("symlink with a 4095-byte target: %s", ename(e));
	}
	struct stat ls;
	ssize_t n = readlink("long", buf, sizeof(buf));
	int bad = n != 4095 || memcmp(buf, lt, 4095) != 0;
	int lst = lstat("long", &ls);
	free(lt);
	TRUE(!bad, "readlink of a 4095-byte target returned %zd bytes (or different ones)", n);
	TRUE(lst == 0 && ls.st_size == 4095, "lstat size of a 4095-byte symlink: %lld",
	     (long long)ls.st_size);
	/* a 4096-byte target is longer than PATH_MAX allows */
	char *lt2 = malloc(4097);
	TRUE(lt2 != NULL, "out of memory");
	memset(lt2, 'z', 4096);
	lt2[4096] = 0;
	errno = 0;
	int r = symlink(lt2, "toolong");
	int e = errno;
	free(lt2);
	TRUE(r == -1 && e == ENAMETOOLONG, "symlink with a 4096-byte target: %d %s, expected ENAMETOOLONG",
	     r, ename(e));
	/* removing the link leaves the target */
	OK(unlink("rel"));
	TRY(gone("rel"));
	TRY(check_str("target", "T"));
	/* lchown/lutimes touch the link itself: checked elsewhere; readdir type */
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	struct dirent *de;
	int seen = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, "abs")) {
			seen = 1;
			if (de->d_type != DT_LNK) {
				int t = de->d_type;
				closedir(d);
				FAIL("d_type of a symlink is %d, expected DT_LNK", t);
			}
		}
	}
	closedir(d);
	TRUE(seen, "symlink not listed");
	return T_PASS;
}

static int t_hardlink(void)
{
	struct stat a, b, st;
	TRY(put_str("a", "data"));
	TRY(xstat("a", &a));
	msleep(30);
	OK(link("a", "b"));
	TRY(xstat("a", &st));
	EQ(st.st_nlink, 2);
	TRUE(tsns(st.st_ctim) > tsns(a.st_ctim), "ctime did not advance on link()");
	TRY(xstat("b", &b));
	EQ(b.st_nlink, 2);
	EQ(b.st_ino, a.st_ino);
	int fd;
	OK(fd = open("b", O_WRONLY | O_APPEND));
	EQ(write(fd, "more", 4), 4);
	OK(fstat(fd, &st));
	EQ(st.st_nlink, 2);
	OK(close(fd));
	TRY(check_str("a", "datamore"));
	struct stat pre;
	TRY(xstat("b", &pre));
	msleep(30);
	OK(unlink("a"));
	TRY(gone("a"));
	TRY(xstat("b", &st));
	EQ(st.st_nlink, 1);
	TRUE(tsns(st.st_ctim) > tsns(pre.st_ctim),
	     "ctime of the remaining link did not advance on unlink (POSIX unlink)");
	TRY(check_str("b", "datamore"));
	OK(mkdir("sub", 0755));
	OK(link("b", "sub/c"));
	TRY(xstat("sub/c", &st));
	EQ(st.st_nlink, 2);
	EQ(st.st_ino, a.st_ino);
	ERR(link("b", "sub/c"), EEXIST);
	ERR(link("missing", "x"), ENOENT);
	ERR(link("b", "nodir/x"), ENOENT);
	ERR(link("sub", "sub2"), EPERM);
	/* many links */
	char name[32];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		OK(link("b", name));
	}
	TRY(xstat("sub/c", &st));
	EQ(st.st_nlink, 22);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		OK(unlink(name));
	}
	TRY(xstat("b", &st));
	EQ(st.st_nlink, 2);
	/* link() does not follow a symlink (Linux) */
	OK(symlink("b", "sym"));
	OK(link("sym", "sym2"));
	struct stat s1, s2;
	TRY(xlstat("sym", &s1));
	TRY(xlstat("sym2", &s2));
	TRUE(S_ISLNK(s2.st_mode), "link to a symlink is not a symlink");
	EQ(s2.st_ino, s1.st_ino);
	EQ(s2.st_nlink, 2);
	/* both names deleted while open: data stays readable */
	OK(fd = open("b", O_RDONLY));
	OK(unlink("b"));
	OK(unlink("sub/c"));
	OK(fstat(fd, &st));
	EQ(st.st_nlink, 0);
	TRY(check_fd(fd, 0, "datamore", 8, "file after removing all names"));
	OK(close(fd));
	return T_PASS;
}

static int t_chmod(void)
{
	struct stat a, st;
	TRY(put_str("f", "x"));
	TRY(xstat("f", &a));
	msleep(30);
	OK(chmod("f", 0600));
	TRY(xstat("f", &st));
	EQO(st.st_mode & 07777, 0600);
	TRUE(S_ISREG(st.st_mode), "chmod changed the file type");
	TRUE(tsns(st.st_ctim) > tsns(a.st_ctim), "ctime did not advance on chmod");
	EQ(tsns(st.st_mtim), tsns(a.st_mtim));
	int fd;
	OK(fd = open("f", O_RDONLY));
	OK(fchmod(fd, 0755));
	OK(fstat(fd, &st));
	EQO(st.st_mode & 07777, 0755);
	OK(close(fd));
	OK(chmod("f", 04755));
	TRY(xstat("f", &st));
	EQO(st.st_mode & 07777, 04755);
	OK(chmod("f", 02755));
	TRY(xstat("f", &st));
	EQO(st.st_mode & 07777, 02755);
	OK(chmod("f", 0));
	TRY(xstat("f", &st));
	EQO(st.st_mode & 07777, 0);
	OK(mkdir("d", 0755));
	OK(chmod("d", 01777));
	TRY(xstat("d", &st));
	EQO(st.st_mode & 07777, 01777);
	TRUE(S_ISDIR(st.st_mode), "chmod changed the directory's type");
	/* chmod follows a symlink */
	TRY(put_str("t", "t"));
	OK(symlink("t", "l"));
	OK(chmod("l", 0640));
	TRY(xstat("t", &st));
	EQO(st.st_mode & 07777, 0640);
	TRY(xlstat("l", &st));
	EQO(st.st_mode & 07777, 0777);
	ERR(chmod("missing", 0644), ENOENT);
	return T_PASS;
}

static int t_chown(void)
{
	if (geteuid() != 0)
		SKIP_ENV("not root");
	struct stat a, st;
	TRY(put_str("f", "x"));
	TRY(xstat("f", &a));
	msleep(30);
	OK(chown("f", 1234, 5678));
	TRY(xstat("f", &st));
	EQ(st.st_uid, 1234);
	EQ(st.st_gid, 5678);
	TRUE(tsns(st.st_ctim) > tsns(a.st_ctim), "ctime did not advance on chown");
	OK(chown("f", (uid_t)-1, (gid_t)-1));
	TRY(xstat("f", &st));
	EQ(st.st_uid, 1234);
	EQ(st.st_gid, 5678);
	OK(chown("f", (uid_t)-1, 42));
	TRY(xstat("f", &st));
	EQ(st.st_uid, 1234);
	EQ(st.st_gid, 42);
	int fd;
	OK(fd = open("f", O_RDONLY));
	OK(fchown(fd, 7, (gid_t)-1));
	OK(fstat(fd, &st));
	EQ(st.st_uid, 7);
	EQ(st.st_gid, 42);
	OK(close(fd));
	/* lchown changes the link, chown the target */
	TRY(put_str("t", "t"));
	OK(symlink("t", "l"));
	OK(lchown("l", 4321, 8765));
	TRY(xlstat("l", &st));
	EQ(st.st_uid, 4321);
	EQ(st.st_gid, 8765);
	TRY(xstat("t", &st));
	EQ(st.st_uid, 0);
	OK(chown("l", 99, 98));
	TRY(xstat("t", &st));
	EQ(st.st_uid, 99);
	EQ(st.st_gid, 98);
	TRY(xlstat("l", &st));
	EQ(st.st_uid, 4321);
	/* Linux clears set-user-ID (and set-group-ID with group exec) on chown of a
	 * regular file, also by root (chown(2) NOTES) */
	TRY(put_str("s", "s"));
	OK(chmod("s", 06755));
	OK(chown("s", 1000, 1000));
	TRY(xstat("s", &st));
	EQO(st.st_mode & 07777, 0755);
	/* directories keep theirs */
	OK(mkdir("d", 0755));
	OK(chmod("d", 02755));
	OK(chown("d", 1000, 1000));
	TRY(xstat("d", &st));
	EQO(st.st_mode & 07777, 02755);
	return T_PASS;
}

static int t_utimens(void)
{
	struct stat st, a;
	TRY(put_str("f", "x"));
	struct timespec ts[2];
	/* atime in 1970, mtime past 2038, nanoseconds exactly */
	ts[0].tv_sec = 86400 * 100 + 7;
	ts[0].tv_nsec = 123456789;
	ts[1].tv_sec = 4102444800LL + 42; /* 2100-01-01 */
	ts[1].tv_nsec = 987654321;
	TRY(xstat("f", &a));
	msleep(30);
	long long t0 = now_ns();
	OK(utimensat(AT_FDCWD, "f", ts, 0));
	TRY(xstat("f", &st));
	EQ(st.st_atim.tv_sec, ts[0].tv_sec);
	EQ(st.st_atim.tv_nsec, ts[0].tv_nsec);
	EQ(st.st_mtim.tv_sec, ts[1].tv_sec);
	EQ(st.st_mtim.tv_nsec, ts[1].tv_nsec);
	TRUE(tsns(st.st_ctim) > tsns(a.st_ctim), "ctime did not advance on utimensat");
	TRUE(tsns(st.st_ctim) >= t0 - 50000000LL, "ctime is older than the call");
	/* swapped: mtime in 1970, atime past 2038 */
	ts[0].tv_sec = 4294967296LL + 5; /* past 2106, needs more than 32 bits */
	ts[0].tv_nsec = 1;
	ts[1].tv_sec = 1;
	ts[1].tv_nsec = 999999999;
	OK(utimensat(AT_FDCWD, "f", ts, 0));
	TRY(xstat("f", &st));
	EQ(st.st_atim.tv_sec, ts[0].tv_sec);
	EQ(st.st_atim.tv_nsec, ts[0].tv_nsec);
	EQ(st.st_mtim.tv_sec, ts[1].tv_sec);
	EQ(st.st_mtim.tv_nsec, ts[1].tv_nsec);
	/* before the epoch */
	ts[0].tv_sec = -86400LL * 365 - 1;
	ts[0].tv_nsec = 500000000;
	ts[1].tv_sec = -1;
	ts[1].tv_nsec = 5;
	OK(utimensat(AT_FDCWD, "f", ts, 0));
	TRY(xstat("f", &st));
	EQ(st.st_atim.tv_sec, ts[0].tv_sec);
	EQ(st.st_atim.tv_nsec, ts[0].tv_nsec);
	EQ(st.st_mtim.tv_sec, ts[1].tv_sec);
	EQ(st.st_mtim.tv_nsec, ts[1].tv_nsec);
	/* UTIME_OMIT leaves a field exactly as it was */
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = 1000;
	ts[1].tv_nsec = 1;
	OK(utimensat(AT_FDCWD, "f", ts, 0));
	TRY(xstat("f", &st));
	EQ(st.st_atim.tv_sec, -86400LL * 365 - 1);
	EQ(st.st_atim.tv_nsec, 500000000);
	EQ(st.st_mtim.tv_sec, 1000);
	EQ(st.st_mtim.tv_nsec, 1);
	ts[0].tv_sec = 2000;
	ts[0].tv_nsec = 2;
	ts[1].tv_sec = 0;
	ts[1].tv_nsec = UTIME_OMIT;
	OK(utimensat(AT_FDCWD, "f", ts, 0));
	TRY(xstat("f", &st));
	EQ(st.st_atim.tv_sec, 2000);
	EQ(st.st_atim.tv_nsec, 2);
	EQ(st.st_mtim.tv_sec, 1000);
	EQ(st.st_mtim.tv_nsec, 1);
	/* UTIME_NOW for one, OMIT for the other */
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_NOW;
	long long b0 = now_ns();
	OK(utimensat(AT_FDCWD, "f", ts, 0));
	long long b1 = now_ns();
	TRY(xstat("f", &st));
	EQ(st.st_atim.tv_sec, 2000);
	EQ(st.st_atim.tv_nsec, 2);
	TRUE(tsns(st.st_mtim) >= b0 - 50000000LL && tsns(st.st_mtim) <= b1 + 50000000LL,
	     "UTIME_NOW mtime %lld not within [%lld, %lld]", tsns(st.st_mtim), b0, b1);
	/* NULL: both now */
	b0 = now_ns();
	OK(utimensat(AT_FDCWD, "f", NULL, 0));
	b1 = now_ns();
	TRY(xstat("f", &st));
	TRUE(tsns(st.st_atim) >= b0 - 50000000LL && tsns(st.st_atim) <= b1 + 50000000LL,
	     "utimensat(NULL) atime %lld not within [%lld, %lld]", tsns(st.st_atim), b0, b1);
	TRUE(tsns(st.st_mtim) >= b0 - 50000000LL && tsns(st.st_mtim) <= b1 + 50000000LL,
	     "utimensat(NULL) mtime %lld not within [%lld, %lld]", tsns(st.st_mtim), b0, b1);
	/* futimens */
	int fd;
	OK(fd = open("f", O_RDWR));
	ts[0].tv_sec = 1234567890;
	ts[0].tv_nsec = 111111111;
	ts[1].tv_sec = 1234567891;
	ts[1].tv_nsec = 222222222;
	OK(futimens(fd, ts));
	OK(fstat(fd, &st));
	EQ(tsns(st.st_atim), 1234567890111111111LL);
	EQ(tsns(st.st_mtim), 1234567891222222222LL);
	/* write, then set the mtime (as tar and cp -p do), then close: kept */
	EQ(write(fd, "more data", 9), 9);
	OK(futimens(fd, ts));
	OK(close(fd));
	TRY(xstat("f", &st));
	EQ(tsns(st.st_mtim), 1234567891222222222LL);
	EQ(st.st_size, 9);
	/* on a symlink itself */
	OK(symlink("f", "l"));
	ts[0].tv_sec = 300;
	ts[0].tv_nsec = 3;
	ts[1].tv_sec = 400;
	ts[1].tv_nsec = 4;
	errno = 0;
	if (utimensat(AT_FDCWD, "l", ts, AT_SYMLINK_NOFOLLOW) == 0) {
		TRY(xlstat("l", &st));
		EQ(tsns(st.st_mtim), 400000000004LL);
		TRY(xstat("f", &st));
		EQ(tsns(st.st_mtim), 1234567891222222222LL);
	} else {
		FAIL("utimensat(symlink, AT_SYMLINK_NOFOLLOW): %s", ename(errno));
	}
	/* a directory */
	OK(mkdir("d", 0755));
	OK(utimensat(AT_FDCWD, "d", ts, 0));
	TRY(xstat("d", &st));
	EQ(tsns(st.st_atim), 300000000003LL);
	EQ(tsns(st.st_mtim), 400000000004LL);
	ts[0].tv_nsec = 1000000000;
	ERR(utimensat(AT_FDCWD, "f", ts, 0), EINVAL);
	return T_PASS;
}

static int has_name(const char *list, ssize_t n, const char *name)
{
	int count = 0;
	for (ssize_t i = 0; i < n;) {
		size_t l = strnlen(list + i, (size_t)(n - i));
		if (strcmp(list + i, name) == 0)
			count++;
		i += (ssize_t)l + 1;
	}
	return count;
}

static int t_xattr(void)
{
	char buf[4096];
	TRY(put_str("f", "x"));
	errno = 0;
	if (setxattr("f", "user.probe", "1", 1, 0) != 0) {
		if (errno == ENOTSUP)
			SKIP_FS("user xattrs not supported here");
		FAIL("setxattr(user.probe): %s", ename(errno));
	}
	OK(removexattr("f", "user.probe"));
	OK(setxattr("f", "user.a", "alpha", 5, 0));
	EQ(getxattr("f", "user.a", NULL, 0), 5);
	memset(buf, 0, sizeof(buf));
	EQ(getxattr("f", "user.a", buf, sizeof(buf)), 5);
	TRUE(memcmp(buf, "alpha", 5) == 0, "user.a reads \"%.5s\"", buf);
	ERR(getxattr("f", "user.a", buf, 2), ERANGE);
	ERR(setxattr("f", "user.a", "x", 1, XATTR_CREATE), EEXIST);
	ERR(setxattr("f", "user.b", "x", 1, XATTR_REPLACE), ENODATA);
	ERR(getxattr("f", "user.b", buf, sizeof(buf)), ENODATA);
	OK(setxattr("f", "user.a", "be", 2, XATTR_REPLACE));
	EQ(getxattr("f", "user.a", buf, sizeof(buf)), 2);
	TRUE(memcmp(buf, "be", 2) == 0, "replaced user.a reads \"%.2s\"", buf);
	OK(setxattr("f", "user.a", "a longer value", 14, 0));
	EQ(getxattr("f", "user.a", buf, sizeof(buf)), 14);
	TRUE(memcmp(buf, "a longer value", 14) == 0, "user.a after overwrite differs");
	/* binary value with every byte, NULs included */
	unsigned char bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)(255 - i);
	OK(setxattr("f", "user.bin", bin, sizeof(bin), XATTR_CREATE));
	EQ(getxattr("f", "user.bin", NULL, 0), 256);
	EQ(getxattr("f", "user.bin", buf, 256), 256);
	TRUE(memcmp(buf, bin, 256) == 0, "binary xattr value differs");
	/* empty value */
	OK(setxattr("f", "user.empty", "", 0, 0));
	EQ(getxattr("f", "user.empty", buf, sizeof(buf)), 0);
	EQ(getxattr("f", "user.empty", NULL, 0), 0);
	/* a bigger value */
	unsigned char big[2000];
	fill_random(big, sizeof(big), 3);
	OK(setxattr("f", "user.big", big, sizeof(big), 0));
	EQ(getxattr("f", "user.big", buf, sizeof(buf)), 2000);
	TRUE(memcmp(buf, big, 2000) == 0, "2000-byte xattr value differs");
	/* list */
	ssize_t n = listxattr("f", NULL, 0);
	TRUE(n > 0, "listxattr size query: %zd %s", n, ename(errno));
	char list[4096];
	ssize_t m = listxattr("f", list, sizeof(list));
	EQ(m, n);
	TRUE(list[m - 1] == 0, "listxattr list is not NUL-terminated");
	EQ(has_name(list, m, "user.a"), 1);
	EQ(has_name(list, m, "user.bin"), 1);
	EQ(has_name(list, m, "user.empty"), 1);
	EQ(has_name(list, m, "user.big"), 1);
	EQ(has_name(list, m, "user.probe"), 0);
	int users = 0;
	for (ssize_t i = 0; i < m; i += (ssize_t)strlen(list + i) + 1)
		users += strncmp(list + i, "user.", 5) == 0;
	EQ(users, 4);
	ERR(listxattr("f", list, 1), ERANGE);
	/* remove */
	OK(removexattr("f", "user.a"));
	ERR(getxattr("f", "user.a", buf, sizeof(buf)), ENODATA);
	ERR(removexattr("f", "user.a"), ENODATA);
	ERR(removexattr("f", "user.never"), ENODATA);
	m = listxattr("f", list, sizeof(list));
	EQ(has_name(list, m, "user.a"), 0);
	EQ(has_name(list, m, "user.bin"), 1);
	/* through a descriptor, on a directory */
	int fd;
	OK(fd = open("f", O_RDONLY));
	EQ(fgetxattr(fd, "user.bin", buf, sizeof(buf)), 256);
	OK(fsetxattr(fd, "user.fd", "viafd", 5, 0));
	OK(close(fd));
	EQ(getxattr("f", "user.fd", buf, sizeof(buf)), 5);
	OK(mkdir("d", 0755));
	OK(setxattr("d", "user.dir", "D", 1, 0));
	EQ(getxattr("d", "user.dir", buf, sizeof(buf)), 1);
	/* user.* on a symlink itself is not allowed (Linux xattr(7)) */
	OK(symlink("f", "l"));
	ERR(lsetxattr("l", "user.x", "1", 1, 0), EPERM);
	EQ(getxattr("l", "user.fd", buf, sizeof(buf)), 5); /* follows */
	/* xattrs go with the inode: rename and hard link */
	OK(rename("f", "g"));
	EQ(getxattr("g", "user.bin", buf, sizeof(buf)), 256);
	OK(link("g", "h"));
	EQ(getxattr("h", "user.fd", buf, sizeof(buf)), 5);
	ERR(getxattr("missing", "user.x", buf, sizeof(buf)), ENOENT);
	/* a name longer than 255 bytes */
	char lname[300];
	memcpy(lname, "user.", 5);
	memset(lname + 5, 'n', 260);
	lname[265] = 0;
	ERR(setxattr("g", lname, "1", 1, 0), ERANGE);
	return T_PASS;
}

static int fifo_writer(void *arg)
{
	(void)arg;
	int fd;
	OK(fd = open("fifo", O_WRONLY));
	EQ(write(fd, "through the fifo\n", 17), 17);
	EQ(write(fd, "second\n", 7), 7);
	OK(close(fd));
	return T_PASS;
}

static int t_fifo(void)
{
	struct stat st;
	errno = 0;
	if (mknod("fifo", S_IFIFO | 0644, 0) != 0) {
		if (errno == EPERM || errno == EOPNOTSUPP)
			SKIP_FS("mknod of a FIFO is not supported here");
		FAIL("mknod(fifo, S_IFIFO): %s", ename(errno));
	}
	TRY(xlstat("fifo", &st));
	TRUE(S_ISFIFO(st.st_mode), "mknod(S_IFIFO) made mode 0%o", st.st_mode);
	EQO(st.st_mode & 07777, 0644);
	EQ(st.st_size, 0);
	struct child c;
	TRY(child_start(&c, fifo_writer, NULL));
	int fd = open("fifo", O_RDONLY);
	if (fd < 0) {
		int e = errno;
		kill(c.pid, SIGKILL);
		child_join(&c);
		FAIL("open(fifo, O_RDONLY): %s", ename(e));
	}
	char buf[64];
	size_t k = 0;
	for (;;) {
		ssize_t r = read(fd, buf + k, sizeof(buf) - k);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		k += (size_t)r;
	}
	close(fd);
	TRY(child_join(&c));
	EQ(k, 24);
	TRUE(memcmp(buf, "through the fifo\nsecond\n", 24) == 0, "fifo carried different bytes");
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	struct dirent *e;
	int type = -1;
	while ((e = readdir(d)))
		if (!strcmp(e->d_name, "fifo"))
			type = e->d_type;
	closedir(d);
	EQ(type, DT_FIFO);
	OK(mkfifo("fifo2", 0600));
	TRY(xlstat("fifo2", &st));
	TRUE(S_ISFIFO(st.st_mode), "mkfifo made mode 0%o", st.st_mode);
	ERR(mknod("fifo", S_IFIFO | 0644, 0), EEXIST);
	OK(unlink("fifo"));
	TRY(gone("fifo"));
	return T_PASS;
}

static int t_statfs(void)
{
	struct statfs sf;
	struct statvfs sv;
	OK(statfs(".", &sf));
	OK(statvfs(".", &sv));
	EQ(sf.f_namelen, 255);
	EQ(sv.f_namemax, 255);
	TRUE(sf.f_blocks > 0, "f_blocks is 0");
	TRUE(sf.f_bsize > 0, "f_bsize is 0");
	TRUE(sv.f_frsize > 0, "f_frsize is 0");
	TRUE(sf.f_bfree <= sf.f_blocks, "f_bfree %llu > f_blocks %llu",
	     (unsigned long long)sf.f_bfree, (unsigned long long)sf.f_blocks);
	TRUE(sf.f_bavail <= sf.f_blocks, "f_bavail %llu > f_blocks %llu",
	     (unsigned long long)sf.f_bavail, (unsigned long long)sf.f_blocks);
	TRUE(sf.f_ffree <= sf.f_files, "f_ffree %llu > f_files %llu",
	     (unsigned long long)sf.f_ffree, (unsigned long long)sf.f_files);
	int fd;
	TRY(put_str("f", "x"));
	OK(fd = open("f", O_RDONLY));
	struct statfs sf2;
	OK(fstatfs(fd, &sf2));
	OK(close(fd));
	EQ(sf2.f_type, sf.f_type);
	EQ(sf2.f_namelen, 255);
	return T_PASS;
}

static int t_fsync(void)
{
	int fd, ro, d;
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	EQ(write(fd, "data", 4), 4);
	OK(fsync(fd));
	OK(fdatasync(fd));
	EQ(pwrite(fd, "more", 4, 1 << 20), 4);
	OK(fdatasync(fd));
	OK(fsync(fd));
	OK(ro = open("f", O_RDONLY));
	OK(fsync(ro));
	OK(fdatasync(ro));
	OK(close(ro));
	OK(d = open(".", O_RDONLY | O_DIRECTORY));
	OK(fsync(d));
	OK(fdatasync(d));
	OK(syncfs(d));
	OK(close(d));
	OK(close(fd));
	TRY(xstat("f", &(struct stat){0}));
	return T_PASS;
}

static int t_flock(void)
{
	int a, b, c;
	TRY(put_str("f", "x"));
	OK(a = open("f", O_RDWR));
	OK(b = open("f", O_RDONLY));
	OK(flock(a, LOCK_EX));
	ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	OK(c = dup(a)); /* same open file description: same lock */
	OK(flock(c, LOCK_EX | LOCK_NB));
	OK(close(c));
	OK(flock(a, LOCK_UN));
	OK(flock(b, LOCK_SH | LOCK_NB));
	OK(flock(a, LOCK_SH | LOCK_NB)); /* shared locks are compatible */
	ERR(flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	OK(close(b)); /* closing the last descriptor releases its lock */
	OK(flock(a, LOCK_EX | LOCK_NB));
	/* flock is per file: another file is unaffected */
	TRY(put_str("g", "y"));
	OK(b = open("g", O_RDONLY));
	OK(flock(b, LOCK_EX | LOCK_NB));
	OK(close(b));
	OK(close(a));
	return T_PASS;
}

static pid_t g_lock_holder;

static int lock_child_conflict(void *arg)
{
	(void)arg;
	int fd;
	OK(fd = open("f", O_RDWR));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};
	ERR2(fcntl(fd, F_SETLK, &fl), EAGAIN, EACCES);
	fl.l_type = F_RDLCK;
	fl.l_start = 0;
	fl.l_len = 1;
	ERR2(fcntl(fd, F_SETLK, &fl), EAGAIN, EACCES);
	fl.l_type = F_WRLCK;
	fl.l_start = 10;
	fl.l_len = 5;
	OK(fcntl(fd, F_GETLK, &fl));
	EQ(fl.l_type, F_WRLCK);
	EQ(fl.l_pid, g_lock_holder);
	EQ(fl.l_whence, SEEK_SET);
	EQ(fl.l_start, 0);
	EQ(fl.l_len, 100);
	/* beyond the held range */
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 50};
	OK(fcntl(fd, F_SETLK, &fl));
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 150, .l_len = 10};
	OK(fcntl(fd, F_GETLK, &fl));
	EQ(fl.l_type, F_UNLCK);
	OK(close(fd));
	return T_PASS;
}

static int lock_child_free(void *arg)
{
	(void)arg;
	int fd;
	OK(fd = open("f", O_RDWR));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	OK(fcntl(fd, F_SETLK, &fl));
	OK(close(fd));
	return T_PASS;
}

static int lock_child_wait(void *arg)
{
	volatile int *unlocked = arg; /* shared with the holder */
	int fd;
	OK(fd = open("f", O_RDWR));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	OK(fcntl(fd, F_SETLKW, &fl));
	TRUE(*unlocked, "F_SETLKW returned while the holder still held the lock");
	OK(close(fd));
	return T_PASS;
}

static int t_fcntl_locks(void)
{
	int fd, other;
	char buf[200];
	memset(buf, 'l', sizeof(buf));
	TRY(put_file("f", buf, sizeof(buf)));
	OK(fd = open("f", O_RDWR));
	g_lock_holder = getpid();
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	OK(fcntl(fd, F_SETLK, &fl));
	TRY(in_child(lock_child_conflict, NULL));
	/* closing any descriptor of the file drops the process's locks */
	OK(other = open("f", O_RDONLY));
	OK(close(other));
	TRY(in_child(lock_child_free, NULL));
	/* re-lock, then a blocked F_SETLKW waits for the unlock */
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	OK(fcntl(fd, F_SETLK, &fl));
	volatile int *unlocked = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TRUE(unlocked != MAP_FAILED, "mmap: %s", ename(errno));
	*unlocked = 0;
	struct child c;
	TRY(child_start(&c, lock_child_wait, (void *)unlocked));
	msleep(200);
	*unlocked = 1;
	fl.l_type = F_UNLCK;
	OK(fcntl(fd, F_SETLK, &fl));
	int rc = child_join(&c);
	munmap((void *)unlocked, sizeof(int));
	TRY(rc);
	/* open file description locks conflict between two opens in one process */
	int a, b;
	OK(a = open("f", O_RDWR));
	OK(b = open("f", O_RDWR));
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	OK(fcntl(a, F_OFD_SETLK, &fl));
	ERR(fcntl(b, F_OFD_SETLK, &fl), EAGAIN);
	fl.l_type = F_UNLCK;
	OK(fcntl(a, F_OFD_SETLK, &fl));
	fl.l_type = F_WRLCK;
	OK(fcntl(b, F_OFD_SETLK, &fl));
	OK(close(a));
	OK(close(b));
	OK(close(fd));
	return T_PASS;
}

static int t_mmap_shared(void)
{
	const size_t len = 3 * 4096 + 100;
	int fd;
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	OK(ftruncate(fd, (off_t)len));
	struct stat a, st;
	OK(fstat(fd, &a));
	msleep(30);
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TRUE(p != MAP_FAILED, "mmap: %s", ename(errno));
	unsigned char *want = malloc(len);
	TRUE(want != NULL, "out of memory");
	fill_random(want, len, 99);
	memcpy(p, want, len);
	OK(msync(p, len, MS_SYNC));
	/* read() sees what the map wrote */
	unsigned char *got = malloc(len);
	TRUE(got != NULL, "out of memory");
	EQ(lseek(fd, 0, SEEK_SET), 0);
	size_t k = 0;
	while (k < len) {
		ssize_t r = read(fd, got + k, len - k);
		if (r <= 0)
			break;
		k += (size_t)r;
	}
	EQ(k, len);
	TRUE(memcmp(got, want, len) == 0, "read() after msync differs from what was written to the map");
	OK(fstat(fd, &st));
	EQ(st.st_size, (long long)len);
	TRUE(tsns(st.st_mtim) > tsns(a.st_mtim), "mtime did not advance after writing through the map and msync");
	/* write() is seen in the map */
	EQ(pwrite(fd, "written by write()", 18, 5000), 18);
	TRUE(memcmp(p + 5000, "written by write()", 18) == 0, "map does not show data from write()");
	EQ(pwrite(fd, "tail", 4, (off_t)len - 4), 4);
	TRUE(memcmp(p + len - 4, "tail", 4) == 0, "map does not show write() in the last page");
	munmap(p, len);
	OK(close(fd));
	memcpy(want + 5000, "written by write()", 18);
	memcpy(want + len - 4, "tail", 4);
	int rc = check_file("f", want, len);
	/* a second, read-only shared map through another descriptor */
	int fd2;
	if (rc == T_PASS) {
		OK(fd = open("f", O_RDWR));
		OK(fd2 = open("f", O_RDONLY));
		unsigned char *w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		unsigned char *r = mmap(NULL, len, PROT_READ, MAP_SHARED, fd2, 0);
		TRUE(w != MAP_FAILED && r != MAP_FAILED, "second mmap: %s", ename(errno));
		memcpy(w + 100, "shared!", 7);
		TRUE(memcmp(r + 100, "shared!", 7) == 0, "two shared maps of one file differ");
		munmap(w, len);
		munmap(r, len);
		close(fd2);
		close(fd);
	}
	free(want);
	free(got);
	return rc;
}

static int t_fallocate(void)
{
	int fd;
	struct stat st;
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	errno = 0;
	if (fallocate(fd, 0, 0, MiB) != 0) {
		int e = errno;
		close(fd);
		if (e == EOPNOTSUPP || e == ENOSYS)
			SKIP_FS("fallocate not supported here");
		FAIL("fallocate(0, 0, 1 MiB): %s", ename(e));
	}
	OK(fstat(fd, &st));
	EQ(st.st_size, MiB);
	TRY(check_zeros(fd, 0, (size_t)MiB, "fallocated range"));
	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, MiB, MiB));
	OK(fstat(fd, &st));
	EQ(st.st_size, MiB);
	char a[65536];
	memset(a, 'a', sizeof(a));
	EQ(pwrite(fd, a, sizeof(a), 0), (long long)sizeof(a));
	errno = 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192) != 0) {
		int e = errno;
		close(fd);
		if (e == EOPNOTSUPP)
			SKIP_FS("FALLOC_FL_PUNCH_HOLE not supported here");
		FAIL("fallocate(PUNCH_HOLE|KEEP_SIZE): %s", ename(e));
	}
	OK(fstat(fd, &st));
	EQ(st.st_size, MiB);
	TRY(check_fd(fd, 0, a, 4096, "before punched hole"));
	TRY(check_zeros(fd, 4096, 8192, "punched hole"));
	TRY(check_fd(fd, 12288, a, 65536 - 12288, "after punched hole"));
	/* an unaligned punch zeros exactly its bytes */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20000, 50));
	TRY(check_fd(fd, 19990, a, 10, "before unaligned punch"));
	TRY(check_zeros(fd, 20000, 50, "unaligned punch"));
	TRY(check_fd(fd, 20050, a, 10, "after unaligned punch"));
	/* punching past EOF does not grow the file */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB - 10, 100));
	OK(fstat(fd, &st));
	EQ(st.st_size, MiB);
	ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
	/* mode 0 over existing data keeps it */
	OK(fallocate(fd, 0, 0, 65536));
	TRY(check_fd(fd, 0, a, 4096, "data after fallocate over it"));
	/* mode 0 across EOF extends */
	OK(fallocate(fd, 0, MiB - 10, 100));
	OK(fstat(fd, &st));
	EQ(st.st_size, MiB + 90);
	TRY(check_zeros(fd, MiB - 10, 100, "extension"));
	ERR(fallocate(fd, 0, 0, 0), EINVAL);
	ERR(fallocate(fd, 0, -1, 10), EINVAL);
	OK(close(fd));
	OK(fd = open("f", O_RDONLY));
	ERR(fallocate(fd, 0, 0, 10), EBADF);
	OK(close(fd));
	return T_PASS;
}

static int t_binary(void)
{
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	TRY(put_file("bytes", all, sizeof(all)));
	TRY(check_file("bytes", all, sizeof(all)));
	const size_t n = (size_t)MiB;
	unsigned char *buf = malloc(n);
	unsigned char *back = malloc(n);
	TRUE(buf && back, "out of memory");
	fill_random(buf, n, 12345);
	int fd;
	OK(fd = open("rand", O_RDWR | O_CREAT | O_TRUNC, 0644));
	static const size_t wsz[] = {1, 7, 4096, 65539, 3, 131072, 999, 500000};
	size_t done = 0;
	for (int i = 0; done < n; i++) {
		size_t k = wsz[i % 8];
		if (k > n - done)
			k = n - done;
		ssize_t w = write(fd, buf + done, k);
		TRUE(w == (ssize_t)k, "write of %zu bytes at %zu returned %zd %s", k, done, w,
		     ename(errno));
		done += k;
	}
	EQ(lseek(fd, 0, SEEK_SET), 0);
	static const size_t rsz[] = {13, 8191, 1, 70000, 4096, 262144};
	done = 0;
	for (int i = 0; done < n; i++) {
		size_t k = rsz[i % 6];
		if (k > n - done)
			k = n - done;
		ssize_t r = read(fd, back + done, k);
		TRUE(r > 0, "read at %zu returned %zd %s", done, r, ename(errno));
		done += (size_t)r;
	}
	char c;
	EQ(read(fd, &c, 1), 0);
	for (size_t i = 0; i < n; i++)
		TRUE(back[i] == buf[i], "byte %zu of the 1 MiB random file differs: 0x%02x, expected 0x%02x",
		     i, back[i], buf[i]);
	/* random preads */
	g_rng = 777;
	for (int i = 0; i < 200; i++) {
		size_t off = (size_t)(rnd() % n);
		size_t len = (size_t)(rnd() % 9000) + 1;
		if (len > n - off)
			len = n - off;
		TRY(check_fd(fd, (off_t)off, buf + off, len, "random pread"));
	}
	OK(close(fd));
	free(buf);
	free(back);
	return T_PASS;
}

static int t_names_long(void)
{
	char n255[256], n256[257], other[256];
	memset(n255, 'n', 255);
	n255[255] = 0;
	memset(n256, 'n', 256);
	n256[256] = 0;
	memset(other, 'o', 255);
	other[255] = 0;
	struct stat st;
	int fd;
	OK(fd = open(n255, O_CREAT | O_WRONLY | O_EXCL, 0644));
	EQ(write(fd, "long", 4), 4);
	OK(close(fd));
	TRY(xstat(n255, &st));
	TRY(check_str(n255, "long"));
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	struct dirent *e;
	int seen = 0;
	while ((e = readdir(d)))
		seen += strcmp(e->d_name, n255) == 0;
	closedir(d);
	EQ(seen, 1);
	ERR(open(n256, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(stat(n256, &st), ENAMETOOLONG);
	ERR(mkdir(n256, 0755), ENAMETOOLONG);
	ERR(rename(n255, n256), ENAMETOOLONG);
	ERR(link(n255, n256), ENAMETOOLONG);
	ERR(symlink(n255, n256), ENAMETOOLONG);
	ERR(mknod(n256, S_IFIFO | 0644, 0), ENAMETOOLONG);
	TRY(check_str(n255, "long"));
	OK(rename(n255, other));
	TRY(check_str(other, "long"));
	OK(mkdir(n255, 0755));
	OK(symlink(other, "d255"));
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", n255, other);
	OK(link(other, path));
	TRY(check_str(path, "long"));
	char l255[256];
	memset(l255, 'l', 255);
	l255[255] = 0;
	OK(symlink(other, l255));
	TRY(check_str(l255, "long"));
	OK(unlink(l255));
	OK(unlink("d255"));
	/* a 255-byte name of 3-byte UTF-8 characters */
	char u[256];
	for (int i = 0; i < 85; i++)
		memcpy(u + 3 * i, "\xe2\x82\xac", 3); /* euro sign */
	u[255] = 0;
	TRY(put_str(u, "euro"));
	TRY(check_str(u, "euro"));
	char u2[259];
	memcpy(u2, u, 255);
	memcpy(u2 + 255, "\xc3\xa9", 2);
	u2[257] = 0;
	ERR(open(u2, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	OK(unlink(u));
	OK(unlink(path));
	OK(rmdir(n255));
	return T_PASS;
}

static const char *const odd_names[] = {
	"with space", " leading space", "trailing space ", "tab\there", "new\nline",
	"h\xc3\xa9llo w\xc3\xb6rld", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "emoji \xf0\x9f\x98\x80",
	"-dash", "*?[]{}", "back\\slash", "quote\"'", "...", "..a", ".hidden", "\x01\x02\x7f ctl",
	"\xff\xfe not utf-8", "colon:semi;", "percent%s%n", "#hash", "~tilde", "a=b&c",
};
#define N_ODD (sizeof(odd_names) / sizeof(odd_names[0]))

/* Valid UTF-8 with no control characters but tab and newline. */
static int plain_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int k = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
		      : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (k < 0 || (*p < 0x20 && *p != '\t' && *p != '\n'))
			return 0;
		for (int j = 1; j <= k; j++)
			if ((p[j] & 0xc0) != 0x80)
				return 0;
		p += k + 1;
	}
	return 1;
}

static int t_names_odd(void)
{
	struct stat st;
	/* A filesystem that takes only UTF-8 names (ZFS utf8only, APFS, the S3
	 * store: keys are UTF-8) may refuse the others with EILSEQ: with
	 * CVFS_BATTERY_UTF8_NAMES=1 such names are left out of the rest (every
	 * name it takes is still checked); everywhere else every name must
	 * work. */
	const char *u8 = getenv("CVFS_BATTERY_UTF8_NAMES");
	int utf8_only = u8 && strcmp(u8, "1") == 0;
	int refused[N_ODD] = {0};
	for (size_t i = 0; i < N_ODD; i++) {
		if (utf8_only && !plain_utf8(odd_names[i])) {
			errno = 0;
			int fd = open(odd_names[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 && errno == EILSEQ) {
				refused[i] = 1;
				continue;
			}
			if (fd >= 0)
				close(fd);
		}
		TRY(put_str(odd_names[i], odd_names[i]));
	}
	int seen[N_ODD] = {0};
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	struct dirent *e;
	char bad[300] = "";
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		size_t i;
		for (i = 0; i < N_ODD; i++)
			if (!strcmp(e->d_name, odd_names[i]))
				break;
		if (i == N_ODD)
			fmt_bytes(bad, sizeof(bad), (const unsigned char *)e->d_name,
				  strlen(e->d_name));
		else
			seen[i]++;
	}
	closedir(d);
	TRUE(!bad[0], "readdir returned an unexpected name \"%s\"", bad);
	for (size_t i = 0; i < N_ODD; i++) {
		char nm[300];
		fmt_bytes(nm, sizeof(nm), (const unsigned char *)odd_names[i], strlen(odd_names[i]));
		if (refused[i]) {
			TRUE(seen[i] == 0, "\"%s\" refused (EILSEQ) but listed", nm);
			continue;
		}
		TRUE(seen[i] == 1, "\"%s\" listed %d times", nm, seen[i]);
		TRY(xstat(odd_names[i], &st));
		TRY(check_str(odd_names[i], odd_names[i]));
	}
	/* rename each, then remove */
	for (size_t i = 0; i < N_ODD; i++) {
		char to[300];
		if (refused[i])
			continue;
		snprintf(to, sizeof(to), "%s\n2 \xc3\xa9", odd_names[i]);
		OK(rename(odd_names[i], to));
		TRY(gone(odd_names[i]));
		TRY(check_str(to, odd_names[i]));
		OK(unlink(to));
	}
	OK(mkdir("dir with space \xe2\x98\x83", 0755));
	TRY(put_str("dir with space \xe2\x98\x83/file\nnl", "nested"));
	TRY(check_str("dir with space \xe2\x98\x83/file\nnl", "nested"));
	return T_PASS;
}

static int t_big_file(void)
{
	int fd;
	struct stat st;
	const off_t at = 5 * GiB;
	OK(fd = open("f", O_RDWR | O_CREAT, 0644));
	errno = 0;
	if (pwrite(fd, "hello 5G", 8, at) != 8) {
		int e = errno;
		close(fd);
		if (e == EFBIG)
			SKIP_FS("files past 4 GiB not supported here");
		FAIL("pwrite at 5 GiB: %s", ename(e));
	}
	OK(fstat(fd, &st));
	EQ(st.st_size, at + 8);
	TRY(check_fd(fd, at, "hello 5G", 8, "data at 5 GiB"));
	TRY(check_zeros(fd, 0, 65536, "hole at 0"));
	TRY(check_zeros(fd, 4 * GiB - 32768, 65536, "hole across 4 GiB"));
	TRY(check_zeros(fd, at - 65536, 65536, "hole just before 5 GiB"));
	char buf[16];
	EQ(pread(fd, buf, 12, at - 4), 12);
	TRUE(memcmp(buf, "\0\0\0\0hello 5G", 12) == 0, "read across the start of the data differs");
	EQ(lseek(fd, 0, SEEK_END), at + 8);
	/* a write across the 4 GiB boundary */
	EQ(pwrite(fd, "0123456789", 10, 4 * GiB - 5), 10);
	TRY(check_fd(fd, 4 * GiB - 5, "0123456789", 10, "across 4 GiB"));
	TRY(check_zeros(fd, 4 * GiB - 4096, 4091, "before the 4 GiB write"));
	/* and across 2 GiB */
	EQ(pwrite(fd, "abcdefghij", 10, 2 * GiB - 5), 10);
	TRY(check_fd(fd, 2 * GiB - 5, "abcdefghij", 10, "across 2 GiB"));
	/* truncate to just past 4 GiB */
	OK(ftruncate(fd, 4 * GiB + 2));
	OK(fstat(fd, &st));
	EQ(st.st_size, 4 * GiB + 2);
	TRY(check_fd(fd, 4 * GiB - 5, "0123456", 7, "kept after truncate"));
	EQ(pread(fd, buf, 10, 4 * GiB + 2), 0);
	OK(ftruncate(fd, 6 * GiB));
	TRY(check_zeros(fd, 4 * GiB + 2, 65536, "re-extended past 4 GiB"));
	TRY(check_zeros(fd, at, 8, "old data after cut and re-extend"));
	OK(close(fd));
	TRY(xstat("f", &st));
	EQ(st.st_size, 6 * GiB);
	OK(unlink("f"));
	return T_PASS;
}

static int dtype_of(mode_t m)
{
	if (S_ISREG(m))
		return DT_REG;
	if (S_ISDIR(m))
		return DT_DIR;
	if (S_ISLNK(m))
		return DT_LNK;
	if (S_ISFIFO(m))
		return DT_FIFO;
	return DT_UNKNOWN;
}

static int t_readdir(void)
{
	enum { N = 1000 };
	char name[32];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "e%04d", i);
		switch (i % 10) {
		case 0: OK(mkdir(name, 0755)); break;
		case 1: OK(symlink("target-of-link", name)); break;
		case 2: OK(mkfifo(name, 0644)); break;
		default: {
			int fd;
			OK(fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644));
			OK(close(fd));
		}
		}
	}
	struct stat dot, dotdot;
	TRY(xstat(".", &dot));
	TRY(xstat("..", &dotdot));
	for (int pass = 0; pass < 2; pass++) {
		static unsigned char seen[N];
		memset(seen, 0, sizeof(seen));
		int ndot = 0, ndotdot = 0;
		DIR *d = opendir(".");
		TRUE(d != NULL, "opendir: %s", ename(errno));
		struct dirent *e;
		char msg[400] = "";
		while ((e = readdir(d)) && !msg[0]) {
			if (!strcmp(e->d_name, ".")) {
				ndot++;
				if (e->d_ino != dot.st_ino)
					snprintf(msg, sizeof(msg), "\".\" d_ino %llu, stat says %llu",
						 (unsigned long long)e->d_ino, (unsigned long long)dot.st_ino);
				continue;
			}
			if (!strcmp(e->d_name, "..")) {
				ndotdot++;
				if (e->d_ino != dotdot.st_ino)
					snprintf(msg, sizeof(msg), "\"..\" d_ino %llu, stat says %llu",
						 (unsigned long long)e->d_ino,
						 (unsigned long long)dotdot.st_ino);
				continue;
			}
			int i;
			char junk;
			if (sscanf(e->d_name, "e%4d%c", &i, &junk) != 1 || i < 0 || i >= N ||
			    strlen(e->d_name) != 5) {
				snprintf(msg, sizeof(msg), "unexpected name \"%.40s\"", e->d_name);
				break;
			}
			if (pass == 1 && i % 2 == 0) {
				snprintf(msg, sizeof(msg), "removed entry \"%s\" still listed", e->d_name);
				break;
			}
			seen[i]++;
			struct stat st;
			if (lstat(e->d_name, &st)) {
				snprintf(msg, sizeof(msg), "lstat(%s): %s", e->d_name, ename(errno));
				break;
			}
			if (e->d_ino != st.st_ino)
				snprintf(msg, sizeof(msg), "%s: d_ino %llu, lstat st_ino %llu", e->d_name,
					 (unsigned long long)e->d_ino, (unsigned long long)st.st_ino);
			else if (e->d_type != dtype_of(st.st_mode))
				snprintf(msg, sizeof(msg), "%s: d_type %d, expected %d (mode 0%o)",
					 e->d_name, e->d_type, dtype_of(st.st_mode), st.st_mode);
		}
		closedir(d);
		TRUE(!msg[0], "pass %d: %s", pass, msg);
		EQ(ndot, 1);
		EQ(ndotdot, 1);
		for (int i = 0; i < N; i++) {
			int want = pass == 0 || i % 2 == 1;
			TRUE(seen[i] == want, "pass %d: e%04d listed %d times, expected %d", pass, i, seen[i],
			     want);
		}
		if (pass == 0) {
			for (int i = 0; i < N; i += 2) {
				snprintf(name, sizeof(name), "e%04d", i);
				if (i % 10 == 0)
					OK(rmdir(name));
				else
					OK(unlink(name));
			}
		}
	}
	return T_PASS;
}

static int t_seekdir(void)
{
	enum { N = 600 };
	char name[32];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "s%04d", i);
		int fd;
		OK(fd = open(name, O_CREAT | O_WRONLY, 0644));
		OK(close(fd));
	}
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	/* remember where every entry starts */
	static long pos[N + 2];
	static char names[N + 2][32];
	int n = 0;
	for (;;) {
		long p = telldir(d);
		struct dirent *e = readdir(d);
		if (!e)
			break;
		if (n >= N + 2) {
			closedir(d);
			FAIL("more than %d entries listed", N + 2);
		}
		pos[n] = p;
		snprintf(names[n], sizeof(names[n]), "%.31s", e->d_name);
		n++;
	}
	if (n != N + 2) {
		closedir(d);
		FAIL("%d entries listed, expected %d", n, N + 2);
	}
	/* seek back to positions and resume from there */
	static const int at[] = {300, 0, 599, 1, 2, 450, 601, 37, 250};
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		int i = at[k];
		seekdir(d, pos[i]);
		for (int j = i; j < i + 40 && j < n; j++) {
			struct dirent *e = readdir(d);
			if (!e || strcmp(e->d_name, names[j]) != 0) {
				char got[64];
				snprintf(got, sizeof(got), "%.60s", e ? e->d_name : "(end)");
				closedir(d);
				FAIL("after seekdir to entry %d, entry %d is \"%s\", expected \"%s\"", i,
				     j, got, names[j]);
			}
		}
	}
	/* telldir after seekdir reports the same position */
	seekdir(d, pos[123]);
	long again = telldir(d);
	if (again != pos[123]) {
		closedir(d);
		FAIL("telldir after seekdir is %ld, expected %ld", again, pos[123]);
	}
	/* rewinddir starts over with everything */
	rewinddir(d);
	int m = 0;
	while (readdir(d))
		m++;
	closedir(d);
	EQ(m, N + 2);
	return T_PASS;
}

static int ino_of(const char *path, ino_t *ino)
{
	struct stat st;
	TRY(xlstat(path, &st));
	*ino = st.st_ino;
	return T_PASS;
}

static int dir_ino(const char *dir, const char *name, ino_t *ino)
{
	DIR *d = opendir(dir);
	TRUE(d != NULL, "opendir(%s): %s", dir, ename(errno));
	struct dirent *e;
	*ino = 0;
	while ((e = readdir(d)))
		if (!strcmp(e->d_name, name))
			*ino = e->d_ino;
	closedir(d);
	TRUE(*ino != 0, "\"%s\" not listed in \"%s\"", name, dir);
	return T_PASS;
}

static int t_inode_stable(void)
{
	ino_t i0, i, dino;
	TRY(put_str("f", "x"));
	TRY(ino_of("f", &i0));
	TRY(dir_ino(".", "f", &dino));
	EQ(dino, i0);
	OK(chmod("f", 0600));
	TRY(ino_of("f", &i));
	EQ(i, i0);
	OK(truncate("f", 100));
	TRY(put_file("f", "yy", 2));
	TRY(ino_of("f", &i));
	EQ(i, i0);
	OK(utimensat(AT_FDCWD, "f", NULL, 0));
	OK(rename("f", "g"));
	TRY(ino_of("g", &i));
	EQ(i, i0);
	TRY(dir_ino(".", "g", &dino));
	EQ(dino, i0);
	OK(mkdir("d", 0755));
	OK(rename("g", "d/h"));
	TRY(ino_of("d/h", &i));
	EQ(i, i0);
	TRY(dir_ino("d", "h", &dino));
	EQ(dino, i0);
	OK(link("d/h", "k"));
	TRY(ino_of("k", &i));
	EQ(i, i0);
	int fd;
	struct stat st;
	OK(fd = open("k", O_RDONLY));
	OK(fstat(fd, &st));
	OK(close(fd));
	EQ(st.st_ino, i0);
	/* the directory and its children across a rename of the directory */
	ino_t di, ci;
	TRY(ino_of("d", &di));
	OK(mkdir("d/sub", 0755));
	TRY(ino_of("d/sub", &ci));
	OK(rename("d", "e"));
	TRY(ino_of("e", &i));
	EQ(i, di);
	TRY(ino_of("e/sub", &i));
	EQ(i, ci);
	TRY(ino_of("e/h", &i));
	EQ(i, i0);
	TRY(dir_ino("e", "sub", &dino));
	EQ(dino, ci);
	/* other files keep theirs when files come and go */
	ino_t many[50];
	char name[32];
	for (int j = 0; j < 50; j++) {
		snprintf(name, sizeof(name), "m%d", j);
		TRY(put_str(name, name));
		TRY(ino_of(name, &many[j]));
		for (int q = 0; q < j; q++)
			TRUE(many[q] != many[j], "m%d and m%d share inode %llu", q, j,
			     (unsigned long long)many[j]);
		TRUE(many[j] != i0 && many[j] != di && many[j] != ci, "m%d reuses a live inode", j);
	}
	for (int j = 0; j < 50; j += 2) {
		snprintf(name, sizeof(name), "m%d", j);
		OK(unlink(name));
	}
	for (int j = 1; j < 50; j += 2) {
		snprintf(name, sizeof(name), "m%d", j);
		TRY(ino_of(name, &i));
		EQ(i, many[j]);
	}
	TRY(ino_of("k", &i));
	EQ(i, i0);
	return T_PASS;
}

static int t_timestamps(void)
{
	struct stat a, b, d0, d1;
	int fd;
	TRY(put_str("f", "x"));
	OK(fd = open("f", O_RDWR));
	OK(fstat(fd, &a));
	msleep(30);
	EQ(write(fd, "data", 4), 4);
	OK(fstat(fd, &b));
	TRUE(tsns(b.st_mtim) > tsns(a.st_mtim), "mtime did not advance on write");
	TRUE(tsns(b.st_ctim) > tsns(a.st_ctim), "ctime did not advance on write");
	/* reading changes neither mtime nor ctime */
	a = b;
	msleep(30);
	char buf[8];
	EQ(pread(fd, buf, 4, 0), 4);
	OK(fstat(fd, &b));
	EQ(tsns(b.st_mtim), tsns(a.st_mtim));
	EQ(tsns(b.st_ctim), tsns(a.st_ctim));
	/* a zero-length write changes nothing */
	EQ(write(fd, "", 0), 0);
	OK(fstat(fd, &b));
	EQ(tsns(b.st_mtim), tsns(a.st_mtim));
	/* pwrite too */
	msleep(30);
	EQ(pwrite(fd, "Z", 1, 100), 1);
	OK(fstat(fd, &b));
	TRUE(tsns(b.st_mtim) > tsns(a.st_mtim), "mtime did not advance on pwrite");
	OK(close(fd));
	/* and after close the values stay */
	struct stat c;
	TRY(xstat("f", &c));
	EQ(tsns(c.st_mtim), tsns(b.st_mtim));
	/* parent directory: create, unlink, mkdir, rmdir, rename, link, symlink */
	static const char *const what[] = {"create", "unlink", "mkdir", "rmdir", "rename", "link",
					   "symlink", "mknod"};
	for (int k = 0; k < 8; k++) {
		TRY(xstat(".", &d0));
		msleep(30);
		switch (k) {
		case 0: TRY(put_str("g", "g")); break;
		case 1: OK(unlink("g")); break;
		case 2: OK(mkdir("d", 0755)); break;
		case 3: OK(rmdir("d")); break;
		case 4: OK(rename("f", "h")); break;
		case 5: OK(link("h", "h2")); break;
		case 6: OK(symlink("h", "s")); break;
		case 7: OK(mkfifo("p", 0644)); break;
		}
		TRY(xstat(".", &d1));
		TRUE(tsns(d1.st_mtim) > tsns(d0.st_mtim), "parent mtime did not advance on %s", what[k]);
		TRUE(tsns(d1.st_ctim) > tsns(d0.st_ctim), "parent ctime did not advance on %s", what[k]);
	}
	/* rename across directories: both parents */
	OK(mkdir("x", 0755));
	OK(mkdir("y", 0755));
	TRY(put_str("x/f", "f"));
	struct stat x0, y0, x1, y1;
	TRY(xstat("x", &x0));
	TRY(xstat("y", &y0));
	msleep(30);
	OK(rename("x/f", "y/f"));
	TRY(xstat("x", &x1));
	TRY(xstat("y", &y1));
	TRUE(tsns(x1.st_mtim) > tsns(x0.st_mtim), "source parent mtime did not advance on rename");
	TRUE(tsns(y1.st_mtim) > tsns(y0.st_mtim), "target parent mtime did not advance on rename");
	/* a file's own mtime is not changed by renaming or linking it */
	TRY(xstat("y/f", &a));
	msleep(30);
	OK(rename("y/f", "x/f"));
	OK(link("x/f", "x/f2"));
	TRY(xstat("x/f", &b));
	EQ(tsns(b.st_mtim), tsns(a.st_mtim));
	TRUE(tsns(b.st_ctim) > tsns(a.st_ctim), "ctime did not advance on link");
	return T_PASS;
}

/* ---- permissions, as an unprivileged user ---- */

static int nobody_checks(void *arg)
{
	(void)arg;
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		FAIL("cannot become uid/gid 65534: %s", ename(errno));
	umask(022);
	int fd;
	struct stat st;
	/* control: what is allowed works (if not, the filesystem turns away other
	 * users altogether, e.g. a FUSE mount without allow_other) */
	OK(stat(".", &st));
	OK(fd = open("ro", O_RDONLY));
	OK(close(fd));
	OK(fd = open("rw", O_WRONLY));
	EQ(write(fd, "w", 1), 1);
	OK(close(fd));
	/* 0444 */
	ERR(open("ro", O_WRONLY), EACCES);
	ERR(open("ro", O_RDWR), EACCES);
	ERR(open("ro", O_WRONLY | O_TRUNC), EACCES);
	ERR(truncate("ro", 0), EACCES);
	ERR(access("ro", W_OK), EACCES);
	OK(access("ro", R_OK));
	TRY(check_str("ro", "read only"));
	/* 0555 directory */
	DIR *d = opendir("d555");
	TRUE(d != NULL, "opendir(d555): %s", ename(errno));
	closedir(d);
	ERR(open("d555/new", O_CREAT | O_WRONLY, 0644), EACCES);
	ERR(mkdir("d555/x", 0755), EACCES);
	ERR(unlink("d555/f"), EACCES);
	ERR(rename("d555/f", "d1777/f"), EACCES);
	ERR(symlink("x", "d555/l"), EACCES);
	/* the group class applies to a member even when "other" would allow */
	ERR(open("grp0604", O_RDONLY), EACCES);
	OK(fd = open("grp0640", O_RDONLY));
	OK(close(fd));
	/* 0700 directory of another user: no search */
	ERR(stat("priv/f", &st), EACCES);
	ERR(open("priv/f", O_RDONLY), EACCES);
	/* sticky directory: own files can go, others' cannot */
	OK(fd = open("d1777/mine", O_CREAT | O_WRONLY | O_EXCL, 0644));
	OK(fstat(fd, &st));
	EQ(st.st_uid, 65534);
	EQ(st.st_gid, 65534);
	OK(close(fd));
	OK(rename("d1777/mine", "d1777/mine2"));
	OK(unlink("d1777/mine2"));
	ERR2(unlink("d1777/rootfile"), EPERM, EACCES);
	ERR2(rename("d1777/rootfile", "d1777/x"), EPERM, EACCES);
	OK(fd = open("d1777/rootfile", O_WRONLY)); /* 0666: writing is fine */
	OK(close(fd));
	OK(mkdir("d1777/mydir", 0755));
	TRY(xstat("d1777/mydir", &st));
	EQ(st.st_uid, 65534);
	/* attributes of a file one does not own */
	ERR(chmod("rw", 0600), EPERM);
	ERR(chown("rw", 65534, (gid_t)-1), EPERM);
	struct timespec ts[2] = {{1, 0}, {2, 0}};
	ERR(utimensat(AT_FDCWD, "rw", ts, 0), EPERM);
	OK(utimensat(AT_FDCWD, "rw", NULL, 0)); /* write access allows "now" */
	ERR(utimensat(AT_FDCWD, "ro", NULL, 0), EACCES);
	/* chmod of one's own file */
	OK(chmod("d1777/mydir", 0700));
	/* writing to a set-user-ID file clears the bit (Linux) */
	OK(fd = open("suid", O_WRONLY));
	EQ(write(fd, "x", 1), 1);
	OK(close(fd));
	TRY(xstat("suid", &st));
	TRUE(!(st.st_mode & S_ISUID), "S_ISUID still set (mode 0%o) after a write by another user",
	     st.st_mode & 07777);
	return T_PASS;
}

static int t_permissions(void)
{
	if (geteuid() != 0)
		SKIP_ENV("not root: cannot switch users");
	OK(chmod(".", 0755));
	TRY(put_str("ro", "read only"));
	OK(chmod("ro", 0444));
	TRY(put_str("rw", "rw"));
	OK(chmod("rw", 0666));
	OK(mkdir("d555", 0755));
	TRY(put_str("d555/f", "f"));
	OK(chmod("d555", 0555));
	OK(mkdir("d1777", 0755));
	OK(chmod("d1777", 01777));
	TRY(put_str("d1777/rootfile", "root's"));
	OK(chmod("d1777/rootfile", 0666));
	OK(mkdir("priv", 0700));
	TRY(put_str("priv/f", "secret"));
	TRY(put_str("suid", "s"));
	OK(chmod("suid", 04777));
	TRY(put_str("grp0604", "g"));
	OK(chown("grp0604", 0, 65534));
	OK(chmod("grp0604", 0604));
	TRY(put_str("grp0640", "g"));
	OK(chown("grp0640", 0, 65534));
	OK(chmod("grp0640", 0640));
	TRY(in_child(nobody_checks, NULL));
	/* nothing the child was refused changed */
	TRY(check_str("d555/f", "f"));
	TRY(check_str("d1777/rootfile", "root's"));
	struct stat st;
	TRY(xstat("rw", &st));
	EQO(st.st_mode & 07777, 0666);
	EQ(st.st_uid, 0);
	return T_PASS;
}

/* ---- getdents under concurrent changes ---- */

struct churn {
	int go;  /* read end: wait for a byte */
	int mode; /* 0: unlink evens; 1: also create new names */
	int n;
};

static int churn_child(void *arg)
{
	struct churn *c = arg;
	char b;
	if (read(c->go, &b, 1) != 1)
		FAIL("no go signal");
	char name[32];
	for (int i = c->n - 2; i >= 0; i -= 2) {
		snprintf(name, sizeof(name), "g%05d", i);
		OK(unlink(name));
		if (c->mode == 1 && i % 4 == 0) {
			snprintf(name, sizeof(name), "new%05d", i);
			int fd;
			OK(fd = open(name, O_CREAT | O_WRONLY, 0644));
			OK(close(fd));
		}
	}
	return T_PASS;
}

static int t_getdents_churn(void)
{
	enum { N = 3000 };
	static unsigned char seen[N], seen_new[N];
	char name[32];
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			snprintf(name, sizeof(name), "g%05d", i);
			int fd = open(name, O_CREAT | O_WRONLY, 0644);
			TRUE(fd >= 0, "creating %s: %s", name, ename(errno));
			close(fd);
		}
		memset(seen, 0, sizeof(seen));
		memset(seen_new, 0, sizeof(seen_new));
		int dfd;
		OK(dfd = open(".", O_RDONLY | O_DIRECTORY));
		int p[2];
		OK(pipe(p));
		struct churn c = {.go = p[0], .mode = round, .n = N};
		struct child ch;
		TRY(child_start(&ch, churn_child, &c));
		close(p[0]);
		char buf[1024] __attribute__((aligned(8)));
		int calls = 0, ndot = 0;
		char msg[300] = "";
		for (;;) {
			ssize_t n = getdents64(dfd, buf, sizeof(buf));
			if (calls++ == 0 && write(p[1], "g", 1) != 1)
				snprintf(msg, sizeof(msg), "cannot signal the child");
			if (n < 0) {
				snprintf(msg, sizeof(msg), "getdents64: %s", ename(errno));
				break;
			}
			if (n == 0)
				break;
			for (ssize_t off = 0; off < n;) {
				struct dirent64 *e = (struct dirent64 *)(void *)(buf + off);
				off += e->d_reclen;
				int i;
				if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
					ndot++;
				} else if (sscanf(e->d_name, "g%5d", &i) == 1 && i >= 0 && i < N) {
					if (seen[i]++ && !msg[0])
						snprintf(msg, sizeof(msg), "\"%s\" returned twice", e->d_name);
				} else if (sscanf(e->d_name, "new%5d", &i) == 1 && i >= 0 && i < N) {
					if (seen_new[i]++ && !msg[0])
						snprintf(msg, sizeof(msg), "\"%s\" returned twice", e->d_name);
				} else if (!msg[0]) {
					snprintf(msg, sizeof(msg), "unexpected name \"%.40s\"", e->d_name);
				}
			}
			if (calls % 8 == 0)
				usleep(200);
		}
		close(p[1]);
		close(dfd);
		int rc = child_join(&ch);
		TRY(rc);
		TRUE(!msg[0], "round %d: %s", round, msg);
		EQ(ndot, 2);
		for (int i = 1; i < N; i += 2)
			TRUE(seen[i] == 1, "round %d: untouched g%05d returned %d times", round, i, seen[i]);
		/* clean up for the next round */
		for (int i = 1; i < N; i += 2) {
			snprintf(name, sizeof(name), "g%05d", i);
			OK(unlink(name));
		}
		for (int i = 0; i < N; i++) {
			if (round == 1 && i % 4 == 0 && i <= N - 2) {
				snprintf(name, sizeof(name), "new%05d", i);
				OK(unlink(name));
			}
		}
	}
	DIR *d = opendir(".");
	TRUE(d != NULL, "opendir: %s", ename(errno));
	struct dirent *e;
	int left = 0;
	while ((e = readdir(d)))
		left += e->d_name[0] != '.';
	closedir(d);
	EQ(left, 0);
	return T_PASS;
}

/* ---- set-group-ID directories ---- */

static int t_setgid_dir(void)
{
	if (geteuid() != 0)
		SKIP_ENV("not root: cannot chown");
	struct stat st;
	OK(mkdir("g", 0755));
	OK(chown("g", 0, 4242));
	OK(chmod("g", 02775));
	TRY(xstat("g", &st));
	EQO(st.st_mode & 07777, 02775);
	/* new entries take the directory's group; subdirectories keep S_ISGID */
	TRY(put_str("g/f", "f"));
	TRY(xstat("g/f", &st));
	EQ(st.st_gid, 4242);
	EQ(st.st_uid, 0);
	TRUE(!(st.st_mode & S_ISGID), "a new file in a setgid directory got S_ISGID");
	OK(mkdir("g/sub", 0755));
	TRY(xstat("g/sub", &st));
	EQ(st.st_gid, 4242);
	TRUE(st.st_mode & S_ISGID, "a new directory in a setgid directory lacks S_ISGID: 0%o",
	     st.st_mode & 07777);
	TRY(put_str("g/sub/deeper", "d"));
	TRY(xstat("g/sub/deeper", &st));
	EQ(st.st_gid, 4242);
	OK(symlink("f", "g/l"));
	TRY(xlstat("g/l", &st));
	EQ(st.st_gid, 4242);
	OK(mkfifo("g/p", 0644));
	TRY(xlstat("g/p", &st));
	EQ(st.st_gid, 4242);
	/* outside it, the creator's group */
	TRY(put_str("h", "h"));
	TRY(xstat("h", &st));
	EQ(st.st_gid, getegid());
	return T_PASS;
}

/* ---- several processes writing one file ---- */

enum { REC = 32, NREC = 400, NWRITERS = 4 };

static int appender(void *arg)
{
	int id = (int)(intptr_t)arg;
	int fd;
	OK(fd = open("log", O_WRONLY | O_APPEND));
	char rec[REC + 1];
	for (int i = 0; i < NREC; i++) {
		snprintf(rec, sizeof(rec), "writer %d record %05d ........", id, i);
		rec[REC - 1] = '\n';
		EQ(write(fd, rec, REC), REC);
	}
	OK(close(fd));
	return T_PASS;
}

static int striper(void *arg)
{
	int id = (int)(intptr_t)arg;
	int fd;
	OK(fd = open("striped", O_WRONLY));
	unsigned char blk[4096];
	for (int b = id; b < 256; b += NWRITERS) {
		memset(blk, 'A' + id, sizeof(blk));
		memcpy(blk, &b, sizeof(b));
		EQ(pwrite(fd, blk, sizeof(blk), (off_t)b * 4096), 4096);
	}
	OK(close(fd));
	return T_PASS;
}

static int t_concurrent_writers(void)
{
	struct child c[NWRITERS];
	/* O_APPEND from several processes: every record whole, none lost */
	TRY(put_str("log", ""));
	for (int i = 0; i < NWRITERS; i++)
		TRY(child_start(&c[i], appender, (void *)(intptr_t)i));
	int rc = T_PASS;
	for (int i = 0; i < NWRITERS; i++) {
		int r = child_join(&c[i]);
		if (r && rc == T_PASS)
			rc = r;
	}
	TRY(rc);
	struct stat st;
	TRY(xstat("log", &st));
	EQ(st.st_size, (long long)REC * NREC * NWRITERS);
	int fd;
	OK(fd = open("log", O_RDONLY));
	static char data[REC * NREC * NWRITERS];
	EQ(pread_all(fd, data, sizeof(data), 0), (long long)sizeof(data));
	OK(close(fd));
	int next[NWRITERS] = {0};
	for (size_t off = 0; off < sizeof(data); off += REC) {
		int id, n;
		char want[REC + 1];
		if (sscanf(data + off, "writer %d record %5d", &id, &n) != 2 || id < 0 ||
		    id >= NWRITERS)
			FAIL("record at %zu is garbled: \"%.31s\"", off, data + off);
		snprintf(want, sizeof(want), "writer %d record %05d ........", id, n);
		want[REC - 1] = '\n';
		TRUE(memcmp(data + off, want, REC) == 0, "record at %zu is torn", off);
		TRUE(n == next[id], "writer %d: record %d where %d was expected", id, n, next[id]);
		next[id]++;
	}
	/* pwrite of interleaved 4 KiB blocks from several processes */
	OK(fd = open("striped", O_WRONLY | O_CREAT, 0644));
	OK(ftruncate(fd, 256 * 4096));
	OK(close(fd));
	for (int i = 0; i < NWRITERS; i++)
		TRY(child_start(&c[i], striper, (void *)(intptr_t)i));
	for (int i = 0; i < NWRITERS; i++) {
		int r = child_join(&c[i]);
		if (r && rc == T_PASS)
			rc = r;
	}
	TRY(rc);
	OK(fd = open("striped", O_RDONLY));
	OK(fstat(fd, &st));
	EQ(st.st_size, 256 * 4096);
	unsigned char blk[4096], want[4096];
	for (int b = 0; b < 256; b++) {
		EQ(pread_all(fd, blk, sizeof(blk), (off_t)b * 4096), 4096);
		memset(want, 'A' + b % NWRITERS, sizeof(want));
		memcpy(want, &b, sizeof(b));
		if (memcmp(blk, want, sizeof(blk)) != 0) {
			close(fd);
			FAIL("block %d of the striped file is wrong", b);
		}
	}
	OK(close(fd));
	return T_PASS;
}

/* ================================================================ runner */

struct tcase {
	const char *name;
	int (*fn)(void);
};

static const struct tcase cases[] = {
	{"open_creat_excl", t_open_creat},
	{"open_trunc", t_open_trunc},
	{"open_append", t_open_append},
	{"rw_offsets", t_rw_offsets},
	{"pread_pwrite", t_pread_pwrite},
	{"sparse", t_sparse},
	{"truncate", t_truncate},
	{"ftruncate", t_ftruncate},
	{"rename_file", t_rename_file},
	{"rename_over_file", t_rename_over_file},
	{"rename_dir_nonempty", t_rename_dir},
	{"rename_dir_over_dir", t_rename_dir_over_dir},
	{"rename_errors", t_rename_errors},
	{"rename_noreplace", t_rename_noreplace},
	{"rename_exchange", t_rename_exchange},
	{"rename_hardlink_sibling", t_rename_hardlink_sibling},
	{"unlink_open_file", t_unlink_open},
	{"rename_open_file", t_rename_open},
	{"mkdir_rmdir", t_mkdir_rmdir},
	{"dir_nlink", t_dir_nlink},
	{"symlink", t_symlink},
	{"hardlink", t_hardlink},
	{"chmod", t_chmod},
	{"chown", t_chown},
	{"utimensat", t_utimens},
	{"xattr", t_xattr},
	{"fifo", t_fifo},
	{"statfs", t_statfs},
	{"fsync", t_fsync},
	{"flock", t_flock},
	{"fcntl_locks", t_fcntl_locks},
	{"mmap_shared", t_mmap_shared},
	{"fallocate", t_fallocate},
	{"binary_data", t_binary},
	{"names_long", t_names_long},
	{"names_odd", t_names_odd},
	{"big_file_5g", t_big_file},
	{"readdir_1000", t_readdir},
	{"telldir_seekdir", t_seekdir},
	{"inode_stable", t_inode_stable},
	{"timestamps", t_timestamps},
	{"permissions", t_permissions},
	{"setgid_dir", t_setgid_dir},
	{"concurrent_writers", t_concurrent_writers},
	{"getdents_concurrent_unlink", t_getdents_churn},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static char g_rm_err[512];

static int rm_open(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D && (sb->st_mode & 0700) != 0700)
		chmod(path, 0755);
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
	if (r && !g_rm_err[0]) {
		char nm[300];
		fmt_bytes(nm, sizeof(nm), (const unsigned char *)path, strlen(path));
		snprintf(g_rm_err, sizeof(g_rm_err), "%s(\"%s\"): %s", flag == FTW_DP ? "rmdir" : "unlink",
			 nm, ename(errno));
	}
	if (flag == FTW_DNR || flag == FTW_NS) {
		if (!g_rm_err[0])
			snprintf(g_rm_err, sizeof(g_rm_err), "cannot read \"%s\"", path);
	}
	return 0;
}

/* rm -rf; returns 0 or -1 with g_rm_err set */
static int rm_rf(const char *path)
{
	g_rm_err[0] = 0;
	struct stat st;
	if (lstat(path, &st) && errno == ENOENT)
		return 0;
	nftw(path, rm_open, 32, FTW_PHYS | FTW_MOUNT);
	nftw(path, rm_one, 32, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
	if (!g_rm_err[0] && lstat(path, &st) == 0)
		snprintf(g_rm_err, sizeof(g_rm_err), "\"%s\" still exists", path);
	return g_rm_err[0] ? -1 : 0;
}

static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Runs one case in a child process; returns T_* and fills msg. */
static int run_case(const struct tcase *tc, int num, char *msg, size_t msgsz)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/b%d-%02d-%s", g_dir, (int)getpid(), num, tc->name);
	msg[0] = 0;
	if (rm_rf(dir)) {
		snprintf(msg, msgsz, "cannot clear stale %.1000s: %s", dir, g_rm_err);
		return T_FAIL;
	}
	if (mkdir(dir, 0755) || chmod(dir, 0755)) {
		snprintf(msg, msgsz, "cannot create %.1000s: %s", dir, ename(errno));
		return T_FAIL;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(msg, msgsz, "pipe: %s", ename(errno));
		return T_FAIL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(msg, msgsz, "fork: %s", ename(errno));
		return T_FAIL;
	}
	if (pid == 0) {
		close(p[0]);
		setpgid(0, 0);
		umask(022);
		alarm(120);
		int r;
		g_msg[0] = 0;
		if (chdir(dir)) {
			setmsg(__LINE__, "chdir(%s): %s", dir, ename(errno));
			r = T_FAIL;
		} else {
			r = tc->fn();
		}
		if (write(p[1], g_msg, strlen(g_msg)) < 0)
			r = T_FAIL;
		_exit(r);
	}
	close(p[1]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* stragglers of the case */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	ssize_t n = read(p[0], msg, msgsz - 1);
	msg[n > 0 ? n : 0] = 0;
	close(p[0]);
	usleep(1000);
	reap_orphans();
	int r;
	if (WIFEXITED(st) && WEXITSTATUS(st) <= T_SKIP) {
		r = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		char m2[sizeof(g_msg)];
		snprintf(m2, sizeof(m2), "%.1500s", msg);
		snprintf(msg, msgsz, "killed by signal %d (%s)%s%s", WTERMSIG(st),
			 WTERMSIG(st) == SIGALRM ? "timed out after 120 s" : strsignal(WTERMSIG(st)),
			 m2[0] ? " after: " : "", m2);
		r = T_FAIL;
	} else {
		snprintf(msg, msgsz, "exited with status %d", WEXITSTATUS(st));
		r = T_FAIL;
	}
	if (rm_rf(dir)) {
		size_t l = strlen(msg);
		snprintf(msg + l, msgsz - l, "%sremoving the case directory failed: %s",
			 l ? "; " : "", g_rm_err);
		r = T_FAIL;
	}
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: battery DIR [--only NAME] [--list]\n");
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int list = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strncmp(argv[i], "--only=", 7)) {
			only = argv[i] + 7;
		} else if (!strcmp(argv[i], "--list")) {
			list = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || g_dir) {
			usage(stderr);
			return 2;
		} else {
			g_dir = argv[i];
		}
	}
	if (list) {
		for (size_t i = 0; i < N_CASES; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (!g_dir) {
		usage(stderr);
		return 2;
	}
	static char absdir[PATH_MAX];
	if (!realpath(g_dir, absdir)) {
		fprintf(stderr, "battery: %s: %s\n", g_dir, strerror(errno));
		return 2;
	}
	g_dir = absdir;
	struct statfs sf;
	if (statfs(g_dir, &sf)) {
		fprintf(stderr, "battery: statfs(%s): %s\n", g_dir, strerror(errno));
		return 2;
	}
	g_on_fuse = sf.f_type == FUSE_SUPER_MAGIC;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	int nsel = 0;
	for (size_t i = 0; i < N_CASES; i++)
		nsel += !only || !strcmp(only, cases[i].name);
	if (nsel == 0) {
		fprintf(stderr, "battery: no case named '%s' (see --list)\n", only);
		return 2;
	}
	printf("# battery in %s (filesystem type 0x%lx%s, %s)\n", g_dir, (unsigned long)sf.f_type,
	       g_on_fuse ? ", FUSE: no skips" : "", geteuid() == 0 ? "root" : "not root");
	printf("1..%d\n", nsel);
	int num = 0, passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < N_CASES; i++) {
		if (only && strcmp(only, cases[i].name))
			continue;
		num++;
		char msg[sizeof(g_msg) + 600];
		long long t0 = now_ns();
		int r = run_case(&cases[i], num, msg, sizeof(msg));
		long long ms = (now_ns() - t0) / 1000000;
		for (char *c = msg; *c; c++)
			if (*c == '\n')
				*c = ' ';
		if (r == T_PASS) {
			printf("ok %d - %s\n", num, cases[i].name);
			passed++;
		} else if (r == T_SKIP) {
			printf("ok %d - %s # SKIP %s\n", num, cases[i].name, msg);
			passed++;
			skipped++;
		} else {
			printf("not ok %d - %s: %s\n", num, cases[i].name, msg);
			failed++;
		}
		if (ms > 3000)
			printf("# %s took %lld ms\n", cases[i].name, ms);
	}
	if (skipped)
		printf("# %d skipped\n", skipped);
	printf("battery: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
