/*
 * Every call of the public C API (include/cvfs/cvfs.h) on its error paths:
 * the -errno each returns, that a failed call changes nothing, and the
 * mount calls: cvfs_mount_start on a bad directory fails with a message,
 * cvfs_mount_stop unmounts cleanly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cvfs/cvfs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef ENODATA
#define ENODATA ENOATTR
#endif

static int failures, checks;

static const char *ename(long rc)
{
	static char buf[64];
	if (rc >= 0) {
		snprintf(buf, sizeof(buf), "%ld (success)", rc);
		return buf;
	}
	snprintf(buf, sizeof(buf), "-%s", strerrorname_np((int)-rc) ? strerrorname_np((int)-rc) : "?");
	return buf;
}

/* EXPECT(call, -ERR): the call returns exactly -ERR. */
#define EXPECT(call, want)                                                                \
	do {                                                                              \
		long _r = (long)(call);                                                   \
		checks++;                                                                 \
		if (_r != (long)(want)) {                                                 \
			char _w[64];                                                      \
			snprintf(_w, sizeof(_w), "%s", ename(want));                     \
			fprintf(stderr, "FAIL %s:%d: %s\n    returned %s, expected %s\n", \
				__FILE__, __LINE__, #call, ename(_r), _w);                \
			failures++;                                                       \
		}                                                                         \
	} while (0)
#define OK(call) EXPECT(call, 0)
/* For calls returning a byte count. */
#define OKN(call, n) EXPECT(call, n)

static void test_open(void)
{
	cvfs_fs *fs = (cvfs_fs *)1;
	char *err = NULL;
	/* The code for an unknown store is the registry's choice; what matters:
	 * it fails, says so, and leaves *out NULL. */
	int rc = cvfs_open("no-such-store", NULL, &fs, &err);
	checks++;
	if (rc >= 0 || fs != NULL || err == NULL) {
		fprintf(stderr, "FAIL: cvfs_open(no-such-store): %s, out %p, message %s\n", ename(rc),
			(void *)fs, err ? err : "(none)");
		failures++;
	} else {
		printf("unknown store: %s (%s)\n", err, ename(rc));
	}
	free(err);
	err = NULL;

	const char *bad[] = {"novalue", NULL};
	EXPECT(cvfs_open("memory", bad, &fs, &err), -EINVAL);
	checks++;
	if (!err || !strstr(err, "novalue")) {
		fprintf(stderr, "FAIL: cvfs_open(memory, novalue): message %s\n", err ? err : "(none)");
		failures++;
	}
	free(err);
	err = NULL;
	const char *badmask[] = {"umask=999", NULL};
	EXPECT(cvfs_open("memory", badmask, &fs, &err), -EINVAL);
	free(err);
	err = NULL;
	/* A NULL errmsg is fine. */
	EXPECT(cvfs_open("memory", bad, &fs, NULL), -EINVAL);
	cvfs_close(NULL);
	checks++;
	if (!cvfs_version() || !*cvfs_version()) {
		fprintf(stderr, "FAIL: cvfs_version() is empty\n");
		failures++;
	}
}

static int count_entries(void *arg, const char *name, const struct stat *st)
{
	(void)name;
	(void)st;
	++*(int *)arg;
	return 0;
}

static int stop_at_first(void *arg, const char *name, const struct stat *st)
{
	(void)name;
	(void)st;
	++*(int *)arg;
	return 1;
}

static void test_paths(cvfs_fs *fs)
{
	struct stat st;
	/* The fixture: /dir/file ("hello"), /dir/sub/inner, /empty, /link -> dir/file */
	OK(cvfs_mkdir(fs, "/dir/sub", 0755, 1));
	OKN(cvfs_write_file(fs, "/dir/file", "hello", 5, 0644, 0), 5);
	OKN(cvfs_write_file(fs, "/dir/sub/inner", "x", 1, 0644, 0), 1);
	OK(cvfs_mkdir(fs, "/empty", 0755, 0));
	OK(cvfs_symlink(fs, "dir/file", "/link"));

	/* mkdir */
	EXPECT(cvfs_mkdir(fs, "/dir", 0755, 0), -EEXIST);
	EXPECT(cvfs_mkdir(fs, "/dir/file", 0755, 0), -EEXIST);
	EXPECT(cvfs_mkdir(fs, "/nope/x", 0755, 0), -ENOENT);
	EXPECT(cvfs_mkdir(fs, "/dir/file/x", 0755, 0), -ENOTDIR);
	EXPECT(cvfs_mkdir(fs, "/dir/file/x/y", 0755, 1), -ENOTDIR);
	OK(cvfs_mkdir(fs, "/dir/sub", 0755, 1)); /* -p: existing is fine */
	OK(cvfs_mkdir(fs, "dir//sub/", 0755, 1));
	EXPECT(cvfs_mkdir(fs, "/", 0755, 0), -EEXIST);
	{
		char longname[300];
		memset(longname, 'n', sizeof(longname) - 1);
		longname[0] = '/';
		longname[sizeof(longname) - 1] = 0;
		EXPECT(cvfs_mkdir(fs, longname, 0755, 0), -ENAMETOOLONG);
	}

	/* write_file / read_file */
	EXPECT(cvfs_write_file(fs, "/dir", "x", 1, 0644, 0), -EISDIR);
	EXPECT(cvfs_write_file(fs, "/nope/f", "x", 1, 0644, 0), -ENOENT);
	EXPECT(cvfs_write_file(fs, "/dir/file/f", "x", 1, 0644, 0), -ENOTDIR);
	EXPECT(cvfs_write_file(fs, "/dir/file", "x", 1, 0644, CVFS_EXCL), -EEXIST);
	OKN(cvfs_write_file(fs, "/dir/file", " world", 6, 0644, CVFS_APPEND), 6);
	void *data;
	size_t len;
	EXPECT(cvfs_read_file(fs, "/nope", &data, &len), -ENOENT);
	EXPECT(cvfs_read_file(fs, "/dir", &data, &len), -EISDIR);
	EXPECT(cvfs_read_file(fs, "/dir/file/x", &data, &len), -ENOTDIR);
	OK(cvfs_read_file(fs, "/link", &data, &len));
	checks++;
	if (len != 11 || memcmp(data, "hello world", 11) || ((char *)data)[11] != 0) {
		fprintf(stderr, "FAIL: read_file(/link) = %zu '%.*s'\n", len, (int)len, (char *)data);
		failures++;
	}
	cvfs_free(data);

	/* stat / lstat */
	EXPECT(cvfs_stat(fs, "/nope", &st), -ENOENT);
	EXPECT(cvfs_stat(fs, "/dir/file/x", &st), -ENOTDIR);
	EXPECT(cvfs_lstat(fs, "/nope", &st), -ENOENT);
	OK(cvfs_lstat(fs, "/link", &st));
	checks++;
	if (!S_ISLNK(st.st_mode)) {
		fprintf(stderr, "FAIL: lstat(/link) is not a symlink\n");
		failures++;
	}
	OK(cvfs_symlink(fs, "nowhere", "/dangling"));
	EXPECT(cvfs_stat(fs, "/dangling", &st), -ENOENT);
	OK(cvfs_lstat(fs, "/dangling", &st));
	OK(cvfs_symlink(fs, "loop2", "/loop1"));
	OK(cvfs_symlink(fs, "loop1", "/loop2"));
	EXPECT(cvfs_stat(fs, "/loop1", &st), -ELOOP);

	/* ls */
	int n = 0;
	EXPECT(cvfs_ls(fs, "/nope", count_entries, &n), -ENOENT);
	EXPECT(cvfs_ls(fs, "/dir/file", count_entries, &n), -ENOTDIR);
	n = 0;
	OK(cvfs_ls(fs, "/dir", count_entries, &n));
	checks++;
	if (n != 2) {
		fprintf(stderr, "FAIL: ls /dir: %d entries, expected 2\n", n);
		failures++;
	}
	n = 0;
	OK(cvfs_ls(fs, "/", stop_at_first, &n));
	checks++;
	if (n != 1) {
		fprintf(stderr, "FAIL: ls / with a callback that stops: called %d times\n", n);
		failures++;
	}

	/* rename */
	EXPECT(cvfs_rename(fs, "/nope", "/x", 0), -ENOENT);
	EXPECT(cvfs_rename(fs, "/dir/file", "/nope/x", 0), -ENOENT);
	EXPECT(cvfs_rename(fs, "/dir/file", "/dir/file/x", 0), -ENOTDIR);
	EXPECT(cvfs_rename(fs, "/empty", "/dir", 0), -ENOTEMPTY);
	EXPECT(cvfs_rename(fs, "/dir/file", "/empty", 0), -EISDIR);
	EXPECT(cvfs_rename(fs, "/empty", "/dir/file", 0), -ENOTDIR);
	EXPECT(cvfs_rename(fs, "/dir", "/dir/sub/inside", 0), -EINVAL);
	EXPECT(cvfs_rename(fs, "/dir/file", "/link", RENAME_NOREPLACE), -EEXIST);
	EXPECT(cvfs_rename(fs, "/dir/file", "/nope2", RENAME_EXCHANGE), -ENOENT);
	OK(cvfs_stat(fs, "/dir/file", &st)); /* nothing moved */
	checks++;
	if (st.st_size != 11) {
		fprintf(stderr, "FAIL: /dir/file changed by failed renames\n");
		failures++;
	}

	/* remove */
	EXPECT(cvfs_remove(fs, "/nope", 0), -ENOENT);
	EXPECT(cvfs_remove(fs, "/nope", 1), -ENOENT);
	EXPECT(cvfs_remove(fs, "/dir", 0), -ENOTEMPTY);
	EXPECT(cvfs_remove(fs, "/dir/file/x", 0), -ENOTDIR);
	OK(cvfs_stat(fs, "/dir/sub/inner", &st));

	/* copy */
	EXPECT(cvfs_copy(fs, "/nope", "/x", 0), -ENOENT);
	EXPECT(cvfs_copy(fs, "/dir", "/dircopy", 0), -EISDIR);
	EXPECT(cvfs_copy(fs, "/dir/file", "/nope/x", 0), -ENOENT);
	EXPECT(cvfs_copy(fs, "/dir", "/empty", 1), -EEXIST);
	OK(cvfs_copy(fs, "/dir", "/dircopy", 1));
	OK(cvfs_stat(fs, "/dircopy/sub/inner", &st));

	/* symlink / readlink / link */
	EXPECT(cvfs_symlink(fs, "x", "/link"), -EEXIST);
	EXPECT(cvfs_symlink(fs, "x", "/nope/l"), -ENOENT);
	char buf[64];
	EXPECT(cvfs_readlink(fs, "/dir/file", buf, sizeof(buf)), -EINVAL);
	EXPECT(cvfs_readlink(fs, "/nope", buf, sizeof(buf)), -ENOENT);
	OKN(cvfs_readlink(fs, "/link", buf, sizeof(buf)), 8);
	EXPECT(cvfs_link(fs, "/dir", "/dirlink"), -EPERM);
	EXPECT(cvfs_link(fs, "/nope", "/l2"), -ENOENT);
	EXPECT(cvfs_link(fs, "/dir/file", "/empty"), -EEXIST);
	EXPECT(cvfs_link(fs, "/dir/file", "/nope/l"), -ENOENT);

	/* attributes */
	EXPECT(cvfs_chmod(fs, "/nope", 0644), -ENOENT);
	EXPECT(cvfs_chown(fs, "/nope", 0, 0), -ENOENT);
	struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
	EXPECT(cvfs_utimens(fs, "/nope", ts), -ENOENT);
	EXPECT(cvfs_truncate(fs, "/nope", 0), -ENOENT);
	EXPECT(cvfs_truncate(fs, "/dir", 0), -EISDIR);
	OK(cvfs_chmod(fs, "/dangling", 0644) == -ENOENT ? 0 : -1); /* follows the link */

	/* xattrs */
	EXPECT(cvfs_getxattr(fs, "/dir/file", "user.none", buf, sizeof(buf)), -ENODATA);
	EXPECT(cvfs_getxattr(fs, "/nope", "user.x", buf, sizeof(buf)), -ENOENT);
	OK(cvfs_setxattr(fs, "/dir/file", "user.k", "value", 5, 0));
	EXPECT(cvfs_setxattr(fs, "/dir/file", "user.k", "v", 1, XATTR_CREATE), -EEXIST);
	EXPECT(cvfs_setxattr(fs, "/dir/file", "user.other", "v", 1, XATTR_REPLACE), -ENODATA);
	EXPECT(cvfs_setxattr(fs, "/nope", "user.k", "v", 1, 0), -ENOENT);
	EXPECT(cvfs_getxattr(fs, "/dir/file", "user.k", buf, 2), -ERANGE);
	OKN(cvfs_getxattr(fs, "/dir/file", "user.k", NULL, 0), 5);
	OKN(cvfs_getxattr(fs, "/dir/file", "user.k", buf, sizeof(buf)), 5);
	OKN(cvfs_listxattr(fs, "/dir/file", NULL, 0), 7);
	EXPECT(cvfs_listxattr(fs, "/dir/file", buf, 3), -ERANGE);
	EXPECT(cvfs_listxattr(fs, "/nope", buf, sizeof(buf)), -ENOENT);
	EXPECT(cvfs_removexattr(fs, "/dir/file", "user.none"), -ENODATA);
	EXPECT(cvfs_removexattr(fs, "/nope", "user.k"), -ENOENT);
	OK(cvfs_removexattr(fs, "/dir/file", "user.k"));

	/* streaming */
	cvfs_file *f = NULL;
	EXPECT(cvfs_file_open(fs, "/nope", O_RDONLY, 0, &f), -ENOENT);
	EXPECT(cvfs_file_open(fs, "/nope/x", O_WRONLY | O_CREAT, 0644, &f), -ENOENT);
	EXPECT(cvfs_file_open(fs, "/dir/file", O_WRONLY | O_CREAT | O_EXCL, 0644, &f), -EEXIST);
	EXPECT(cvfs_file_open(fs, "/dir/file", O_RDONLY | O_DIRECTORY, 0, &f), -ENOTDIR);
	EXPECT(cvfs_file_open(fs, "/dir", O_WRONLY, 0, &f), -EISDIR);
	EXPECT(cvfs_file_open(fs, "/dir/file/x", O_RDONLY, 0, &f), -ENOTDIR);
	checks++;
	if (f != NULL) {
		fprintf(stderr, "FAIL: a failed cvfs_file_open left *out set\n");
		failures++;
	}
	OK(cvfs_file_open(fs, "/dir/file", O_RDONLY, 0, &f));
	if (f) {
		EXPECT(cvfs_file_write(f, "x", 1), -EBADF);
		EXPECT(cvfs_file_pwrite(f, "x", 1, 0), -EBADF);
		EXPECT(cvfs_file_seek(f, -1, SEEK_SET), -EINVAL);
		EXPECT(cvfs_file_seek(f, 0, 42), -EINVAL);
		OKN(cvfs_file_seek(f, -5, SEEK_END), 6);
		OKN(cvfs_file_read(f, buf, sizeof(buf)), 5);
		OKN(cvfs_file_read(f, buf, sizeof(buf)), 0);
		OKN(cvfs_file_pread(f, buf, 5, 0), 5);
		OK(cvfs_file_close(f));
	}
	OK(cvfs_file_open(fs, "/w", O_WRONLY | O_CREAT | O_TRUNC, 0600, &f));
	if (f) {
		EXPECT(cvfs_file_read(f, buf, 1), -EBADF);
		EXPECT(cvfs_file_pread(f, buf, 1, 0), -EBADF);
		OKN(cvfs_file_write(f, "abc", 3), 3);
		OK(cvfs_file_sync(f));
		OK(cvfs_file_close(f));
	}
	OK(cvfs_file_close(NULL));
	OK(cvfs_stat(fs, "/w", &st));
	checks++;
	if ((st.st_mode & 0777) != 0600 || st.st_size != 3) {
		fprintf(stderr, "FAIL: /w mode %o size %lld\n", st.st_mode & 0777, (long long)st.st_size);
		failures++;
	}

	/* The successful recursive remove, last. */
	OK(cvfs_remove(fs, "/dir", 1));
	EXPECT(cvfs_stat(fs, "/dir/sub/inner", &st), -ENOENT);
	OK(cvfs_remove(fs, "/empty", 0));
	EXPECT(cvfs_remove(fs, "/", 1), -EBUSY);

	struct statvfs sv;
	OK(cvfs_statvfs(fs, &sv));
}

/* readonly=1 over a store with contents (sqlite, when built in: a
 * read-only memory store is empty and has no root to open). */
static void test_readonly(void)
{
	const char *tmp = getenv("TMPDIR");
	char db[4096], opt[4200];
	snprintf(db, sizeof(db), "%s/cvfs-api-ro-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(db);
	if (fd < 0)
		return;
	close(fd);
	unlink(db);
	snprintf(opt, sizeof(opt), "path=%s", db);
	const char *rw[] = {opt, NULL};
	const char *ro[] = {opt, "readonly=1", NULL};
	cvfs_fs *fs;
	char *err = NULL;
	int rc = cvfs_open("sqlite", rw, &fs, &err);
	free(err);
	if (rc == -ENOTSUP) {
		printf("(sqlite not built in: readonly checks skipped)\n");
		return;
	}
	OK(rc);
	if (rc)
		return;
	OKN(cvfs_write_file(fs, "/f", "data", 4, 0644, 0), 4);
	cvfs_close(fs);
	OK(cvfs_open("sqlite", ro, &fs, NULL));
	struct stat st;
	EXPECT(cvfs_mkdir(fs, "/d", 0755, 0), -EROFS);
	EXPECT(cvfs_write_file(fs, "/f", "x", 1, 0644, 0), -EROFS);
	EXPECT(cvfs_write_file(fs, "/g", "x", 1, 0644, 0), -EROFS);
	EXPECT(cvfs_chmod(fs, "/f", 0700), -EROFS);
	EXPECT(cvfs_setxattr(fs, "/f", "user.k", "v", 1, 0), -EROFS);
	EXPECT(cvfs_symlink(fs, "x", "/l"), -EROFS);
	EXPECT(cvfs_remove(fs, "/f", 0), -EROFS);
	EXPECT(cvfs_rename(fs, "/f", "/h", 0), -EROFS);
	cvfs_file *f = NULL;
	EXPECT(cvfs_file_open(fs, "/f", O_WRONLY, 0, &f), -EROFS);
	OK(cvfs_stat(fs, "/f", &st));
	void *data;
	size_t len;
	OK(cvfs_read_file(fs, "/f", &data, &len));
	if (data)
		cvfs_free(data);
	cvfs_close(fs);
	unlink(db);
	snprintf(opt, sizeof(opt), "%s-wal", db);
	unlink(opt);
	snprintf(opt, sizeof(opt), "%s-shm", db);
	unlink(opt);
}

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL: a mount call hung for 30 s (cvfs_mount_stop with a file "
				  "open through the mount?)\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

static int in_mounts(const char *dir)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	char line[8192], want[4200];
	snprintf(want, sizeof(want), " %s ", dir);
	int found = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found = 1;
	if (f)
		fclose(f);
	return found;
}

static void test_mount(void)
{
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "(no /dev/fuse: mount checks skipped)\n");
		return;
	}
	cvfs_fs *fs;
	OK(cvfs_open("memory", NULL, &fs, NULL));
	const char *tmp = getenv("TMPDIR");
	char dir[4096], file[4200], sub[4200];
	snprintf(dir, sizeof(dir), "%s/cvfs-api-errors-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	char *real = realpath(dir, NULL);
	snprintf(dir, sizeof(dir), "%s", real);
	free(real);

	/* A regular file as the mount point. */
	snprintf(file, sizeof(file), "%s/plain", dir);
	FILE *f = fopen(file, "w");
	if (f)
		fclose(f);
	cvfs_mounted *m = (cvfs_mounted *)1;
	char *err = NULL;
	struct cvfs_mount_config mc = {.cache_timeout = -1};
	EXPECT(cvfs_mount_start(fs, file, &mc, &m, &err), -ENOTDIR);
	checks++;
	if (m != NULL || !err || !strstr(err, file)) {
		fprintf(stderr, "FAIL: cvfs_mount_start(<a file>): out %p, message %s\n", (void *)m,
			err ? err : "(none)");
		failures++;
	} else {
		printf("mount on a file: %s\n", err);
	}
	free(err);
	err = NULL;
	/* Below a file. */
	snprintf(sub, sizeof(sub), "%s/plain/below", dir);
	EXPECT(cvfs_mount_start(fs, sub, &mc, &m, &err), -ENOTDIR);
	checks++;
	if (!err) {
		fprintf(stderr, "FAIL: cvfs_mount_start(<below a file>): no message\n");
		failures++;
	} else {
		printf("mount below a file: %s\n", err);
	}
	free(err);
	err = NULL;
	EXPECT(cvfs_mount_blocking(fs, file, &mc, &err), -ENOTDIR);
	free(err);
	err = NULL;

	/* A good mount; a second one on the same directory is refused. */
	snprintf(sub, sizeof(sub), "%s/mnt", dir); /* created by the call */
	OK(cvfs_mount_start(fs, sub, NULL, &m, &err));
	if (err) {
		fprintf(stderr, "mount_start: %s\n", err);
		free(err);
		err = NULL;
	}
	checks++;
	if (in_mounts(sub) != 1) {
		fprintf(stderr, "FAIL: %s not in /proc/self/mounts after cvfs_mount_start\n", sub);
		failures++;
	}
	cvfs_mounted *m2 = NULL;
	EXPECT(cvfs_mount_start(fs, sub, NULL, &m2, &err), -EBUSY);
	if (err)
		printf("second mount: %s\n", err);
	free(err);
	err = NULL;
	/* Through the mount: the status xattr answers. */
	char js[8192];
	ssize_t n = getxattr(sub, "user.chuk-vfs.status", js, sizeof(js) - 1);
	checks++;
	if (n <= 0 || js[0] != '{') {
		fprintf(stderr, "FAIL: status xattr of %s: %s\n", sub, n < 0 ? strerror(errno) : "empty");
		failures++;
	}
	/* Stop while a file is open through the mount: it must return (the
	 * header: "unmounts lazily if busy") rather than wait for the file's
	 * close, which here would never come.  A watchdog turns a hang into a
	 * failure. */
	signal(SIGALRM, watchdog);
	alarm(30);
	char inside[4300];
	snprintf(inside, sizeof(inside), "%s/held", sub);
	int fd = open(inside, O_RDWR | O_CREAT, 0644);
	checks++;
	if (fd < 0) {
		fprintf(stderr, "FAIL: create %s: %s\n", inside, strerror(errno));
		failures++;
	}
	OK(cvfs_mount_stop(m));
	alarm(0);
	if (fd >= 0)
		close(fd);
	checks++;
	if (in_mounts(sub) != 0) {
		fprintf(stderr, "FAIL: %s still mounted after cvfs_mount_stop\n", sub);
		failures++;
	}
	OK(cvfs_mount_stop(NULL));
	/* The filesystem outlives its mount and can be mounted again. */
	struct stat st;
	OK(cvfs_stat(fs, "/held", &st));
	OK(cvfs_mount_start(fs, sub, NULL, &m, NULL));
	checks++;
	if (stat(inside, &st) != 0) {
		fprintf(stderr, "FAIL: %s after remounting: %s\n", inside, strerror(errno));
		failures++;
	}
	OK(cvfs_mount_stop(m));
	checks++;
	if (in_mounts(sub) != 0 || rmdir(sub) != 0) {
		fprintf(stderr, "FAIL: %s still mounted or busy after the second stop\n", sub);
		failures++;
	}
	unlink(file);
	rmdir(dir);
	cvfs_close(fs);
}

int main(void)
{
	test_open();
	cvfs_fs *fs = NULL;
	char *err = NULL;
	int rc = cvfs_open("memory", NULL, &fs, &err);
	if (rc) {
		fprintf(stderr, "cvfs_open(memory): %s\n", err ? err : strerror(-rc));
		return 1;
	}
	test_paths(fs);
	cvfs_close(fs);
	test_readonly();
	test_mount();
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
