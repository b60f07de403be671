/*
 * The library API and a live mount of the same filesystem stay coherent.
 *
 * One memory store, mounted in this process with cvfs_mount_start and a
 * 100-second kernel cache timeout: names, attributes, negative entries and
 * pages stay cached for the whole run unless the library invalidates them.
 * Every iteration first looks through the mount (so the kernel caches the old
 * state), changes something through the API and checks at once, with plain
 * syscalls, that the mount shows the change; or changes something through
 * the mount and checks at once that the API sees it.
 *
 *   api_coherence [ITERATIONS [SEED]]      (default 3000, 1)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvfs/cvfs.h"

#define NDIRS 4
#define NSLOTS 8 /* per directory */

static cvfs_fs *fs;
static cvfs_mounted *live; /* stopped at exit, even after a failure */
static char mnt[4096];
static long iter;
static int failures;

/* The model: what each slot /dK/fJ holds (NULL: absent). */
static struct slot {
	unsigned char *data;
	size_t len;
	mode_t mode;
} model[NDIRS][NSLOTS];

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL (iteration %ld): ", iter);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (++failures >= 10) {
		fprintf(stderr, "too many failures; stopping\n");
		exit(1);
	}
}

#define CHECK_API(call)                                                                     \
	do {                                                                                \
		long _r = (long)(call);                                                     \
		if (_r < 0) {                                                               \
			fprintf(stderr, "%s:%d: %s: %s (iteration %ld)\n", __FILE__, __LINE__, #call, \
				strerror((int)-_r), iter);                                  \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

static uint64_t rng_state = 1;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void api_path(char *buf, size_t n, int d, int s)
{
	snprintf(buf, n, "/d%d/f%d", d, s);
}

static void mnt_path(char *buf, size_t n, const char *p)
{
	snprintf(buf, n, "%s%s", mnt, p);
}

/* Sizes that exercise growth, shrinking, empty files, page boundaries and
 * multi-page files. */
static size_t pick_size(void)
{
	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return 1 + rnd() % 100;
	case 2: return 4095 + rnd() % 3;
	case 3: return 4096 * (1 + rnd() % 8) + rnd() % 4096;
	case 4: return 65536 + rnd() % 65536;
	case 5: return 200000 + rnd() % 200000;
	default: return 1 + rnd() % 9000;
	}
}

static unsigned char *make_data(size_t len)
{
	unsigned char *b = malloc(len ? len : 1);
	if (!b)
		abort();
	uint64_t x = (uint64_t)iter * 0x9e3779b97f4a7c15ull + rnd();
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
	return b;
}

/* Reads a whole file through the mount. */
static int mount_read(const char *p, unsigned char **out, size_t *len)
{
	char mp[8192];
	mnt_path(mp, sizeof(mp), p);
	int fd = open(mp, O_RDONLY);
	if (fd < 0)
		return -errno;
	size_t cap = 65536, used = 0;
	unsigned char *b = malloc(cap);
	for (;;) {
		if (used == cap)
			b = realloc(b, cap *= 2);
		ssize_t r = read(fd, b + used, cap - used);
		if (r < 0) {
			int e = errno;
			close(fd);
			free(b);
			return -e;
		}
		if (r == 0)
			break;
		used += (size_t)r;
	}
	close(fd);
	*out = b;
	*len = used;
	return 0;
}

static void diff_report(const char *what, const char *p, const unsigned char *want, size_t wlen,
			const unsigned char *got, size_t glen)
{
	size_t i = 0;
	while (i < wlen && i < glen && want[i] == got[i])
		i++;
	fail("%s %s: expected %zu bytes, got %zu; first difference at byte %zu", what, p, wlen,
	     glen, i);
}

/* The mount shows slot (d,s) exactly as the model says. */
static void verify_mount_slot(int d, int s)
{
	char p[64], mp[8192];
	api_path(p, sizeof(p), d, s);
	mnt_path(mp, sizeof(mp), p);
	struct slot *sl = &model[d][s];
	struct stat st;
	int rc = stat(mp, &st) == 0 ? 0 : -errno;
	if (!sl->data) {
		if (rc != -ENOENT)
			fail("mount: stat %s: expected ENOENT, got %s", p, rc ? strerror(-rc) : "success");
		if (access(mp, F_OK) == 0 || errno != ENOENT)
			fail("mount: access %s: expected ENOENT", p);
		return;
	}
	if (rc) {
		fail("mount: stat %s: %s", p, strerror(-rc));
		return;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != sl->len)
		fail("mount: stat %s: mode %o size %lld, expected a file of %zu bytes", p,
		     st.st_mode, (long long)st.st_size, sl->len);
	if ((st.st_mode & 07777) != sl->mode)
		fail("mount: stat %s: permissions %o, expected %o", p, st.st_mode & 07777, sl->mode);
	unsigned char *b = NULL;
	size_t n = 0;
	rc = mount_read(p, &b, &n);
	if (rc) {
		fail("mount: read %s: %s", p, strerror(-rc));
		return;
	}
	if (n != sl->len || memcmp(b, sl->data, n) != 0)
		diff_report("mount: read", p, sl->data, sl->len, b, n);
	free(b);
}

/* The API shows slot (d,s) exactly as the model says. */
static void verify_api_slot(int d, int s)
{
	char p[64];
	api_path(p, sizeof(p), d, s);
	struct slot *sl = &model[d][s];
	struct stat st;
	int rc = cvfs_stat(fs, p, &st);
	if (!sl->data) {
		if (rc != -ENOENT)
			fail("api: stat %s: expected ENOENT, got %s", p, rc ? strerror(-rc) : "success");
		return;
	}
	if (rc) {
		fail("api: stat %s: %s", p, strerror(-rc));
		return;
	}
	if ((size_t)st.st_size != sl->len)
		fail("api: stat %s: size %lld, expected %zu", p, (long long)st.st_size, sl->len);
	void *b = NULL;
	size_t n = 0;
	rc = cvfs_read_file(fs, p, &b, &n);
	if (rc) {
		fail("api: read %s: %s", p, strerror(-rc));
		return;
	}
	if (n != sl->len || memcmp(b, sl->data, n) != 0)
		diff_report("api: read", p, sl->data, sl->len, b, n);
	cvfs_free(b);
}

/* Directory listing through the mount matches the model. */
static void verify_mount_dir(int d)
{
	char p[64], mp[8192];
	snprintf(p, sizeof(p), "/d%d", d);
	mnt_path(mp, sizeof(mp), p);
	DIR *dir = opendir(mp);
	if (!dir) {
		fail("mount: opendir %s: %s", p, strerror(errno));
		return;
	}
	int seen[NSLOTS] = {0};
	struct dirent *e;
	while ((e = readdir(dir))) {
		int s;
		char tail;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (sscanf(e->d_name, "f%d%c", &s, &tail) == 1 && s >= 0 && s < NSLOTS)
			seen[s] = 1;
	}
	closedir(dir);
	for (int s = 0; s < NSLOTS; s++)
		if (seen[s] != (model[d][s].data != NULL))
			fail("mount: readdir %s: f%d %s", p, s,
			     seen[s] ? "listed but deleted" : "missing from the listing");
}

static void set_slot(int d, int s, unsigned char *data, size_t len, mode_t mode)
{
	free(model[d][s].data);
	model[d][s].data = data;
	model[d][s].len = len;
	model[d][s].mode = mode;
}

/* ---- operations through the API, checked through the mount ---- */

static void api_write(int d, int s)
{
	char p[64];
	api_path(p, sizeof(p), d, s);
	verify_mount_slot(d, s); /* the kernel now caches the old state */
	size_t len = pick_size();
	unsigned char *b = make_data(len);
	mode_t mode = model[d][s].data ? model[d][s].mode : 0644;
	int append = model[d][s].data && rnd() % 5 == 0;
	if (append) {
		CHECK_API(cvfs_write_file(fs, p, b, len, 0644, CVFS_APPEND));
		unsigned char *nb = malloc(model[d][s].len + len + 1);
		memcpy(nb, model[d][s].data, model[d][s].len);
		memcpy(nb + model[d][s].len, b, len);
		size_t nl = model[d][s].len + len;
		free(b);
		set_slot(d, s, nb, nl, mode);
	} else {
		CHECK_API(cvfs_write_file(fs, p, b, len, 0644, 0));
		set_slot(d, s, b, len, mode);
	}
	verify_mount_slot(d, s);
}

/* Partial overwrite through a streaming handle: the kernel's cached pages
 * of an unchanged size must still go. */
static void api_pwrite(int d, int s)
{
	struct slot *sl = &model[d][s];
	if (!sl->data || sl->len == 0) {
		api_write(d, s);
		return;
	}
	char p[64];
	api_path(p, sizeof(p), d, s);
	verify_mount_slot(d, s);
	size_t off = rnd() % sl->len;
	size_t n = 1 + rnd() % 5000;
	if (off + n > sl->len)
		n = sl->len - off;
	unsigned char *b = make_data(n);
	cvfs_file *f;
	CHECK_API(cvfs_file_open(fs, p, O_WRONLY, 0, &f));
	CHECK_API(cvfs_file_pwrite(f, b, n, off));
	CHECK_API(cvfs_file_close(f));
	memcpy(sl->data + off, b, n);
	free(b);
	verify_mount_slot(d, s);
}

static void api_truncate(int d, int s)
{
	struct slot *sl = &model[d][s];
	if (!sl->data) {
		api_write(d, s);
		return;
	}
	char p[64];
	api_path(p, sizeof(p), d, s);
	verify_mount_slot(d, s);
	size_t nl = rnd() % (sl->len + 5000);
	CHECK_API(cvfs_truncate(fs, p, nl));
	sl->data = realloc(sl->data, nl + 1);
	if (nl > sl->len)
		memset(sl->data + sl->len, 0, nl - sl->len);
	sl->len = nl;
	verify_mount_slot(d, s);
}

static void api_rename(int d1, int s1, int d2, int s2)
{
	if (d1 == d2 && s1 == s2)
		return;
	char a[64], b[64];
	api_path(a, sizeof(a), d1, s1);
	api_path(b, sizeof(b), d2, s2);
	verify_mount_slot(d1, s1);
	verify_mount_slot(d2, s2);
	int rc = cvfs_rename(fs, a, b, 0);
	if (!model[d1][s1].data) {
		if (rc != -ENOENT)
			fail("api: rename %s (absent) -> %s: expected ENOENT, got %d", a, b, rc);
		return;
	}
	CHECK_API(rc);
	struct slot moved = model[d1][s1];
	model[d1][s1].data = NULL;
	set_slot(d2, s2, moved.data, moved.len, moved.mode);
	verify_mount_slot(d1, s1);
	verify_mount_slot(d2, s2);
	verify_mount_dir(d1);
	if (d2 != d1)
		verify_mount_dir(d2);
}

static void api_delete(int d, int s)
{
	char p[64];
	api_path(p, sizeof(p), d, s);
	verify_mount_slot(d, s);
	int rc = cvfs_remove(fs, p, 0);
	if (!model[d][s].data) {
		if (rc != -ENOENT)
			fail("api: remove %s (absent): expected ENOENT, got %d", p, rc);
		return;
	}
	CHECK_API(rc);
	set_slot(d, s, NULL, 0, 0);
	verify_mount_slot(d, s);
	verify_mount_dir(d);
}

static void api_chmod(int d, int s)
{
	if (!model[d][s].data) {
		api_write(d, s);
		return;
	}
	char p[64], mp[8192];
	api_path(p, sizeof(p), d, s);
	mnt_path(mp, sizeof(mp), p);
	verify_mount_slot(d, s);
	static const mode_t modes[] = {0644, 0600, 0444, 0755, 0640, 0000, 0666};
	mode_t m = modes[rnd() % (sizeof(modes) / sizeof(modes[0]))];
	CHECK_API(cvfs_chmod(fs, p, m));
	model[d][s].mode = m;
	verify_mount_slot(d, s);
	/* The kernel checks modes (default_permissions) from cached attributes;
	 * root passes read/write checks, so check execute, which root needs a
	 * bit for. */
	int x = access(mp, X_OK) == 0;
	int want_x = (m & 0111) != 0 || getuid() != 0;
	if (getuid() == 0 && x != want_x)
		fail("mount: access(%s, X_OK) = %d after chmod %o", p, x, m);
	(void)want_x;
	if (m == 0) { /* leave it readable for the next reads as non-root */
		CHECK_API(cvfs_chmod(fs, p, 0644));
		model[d][s].mode = 0644;
	}
}

static void api_utimens(int d, int s)
{
	if (!model[d][s].data) {
		api_write(d, s);
		return;
	}
	char p[64], mp[8192];
	api_path(p, sizeof(p), d, s);
	mnt_path(mp, sizeof(mp), p);
	verify_mount_slot(d, s);
	struct timespec ts[2] = {{.tv_sec = 1000000000 + iter, .tv_nsec = (long)(rnd() % 1000000000)},
				 {.tv_sec = 1500000000 + iter, .tv_nsec = (long)(rnd() % 1000000000)}};
	CHECK_API(cvfs_utimens(fs, p, ts));
	struct stat st;
	if (stat(mp, &st) != 0) {
		fail("mount: stat %s after utimens: %s", p, strerror(errno));
		return;
	}
	if (st.st_mtim.tv_sec != ts[1].tv_sec || st.st_mtim.tv_nsec != ts[1].tv_nsec)
		fail("mount: %s mtime %lld.%09ld, expected %lld.%09ld", p, (long long)st.st_mtim.tv_sec,
		     st.st_mtim.tv_nsec, (long long)ts[1].tv_sec, ts[1].tv_nsec);
	if (st.st_atim.tv_sec != ts[0].tv_sec || st.st_atim.tv_nsec != ts[0].tv_nsec)
		fail("mount: %s atime %lld.%09ld, expected %lld.%09ld", p, (long long)st.st_atim.tv_sec,
		     st.st_atim.tv_nsec, (long long)ts[0].tv_sec, ts[0].tv_nsec);
}

static void api_mkdir_p(void)
{
	char p[128], mp[8192];
	snprintf(p, sizeof(p), "/deep/i%ld/a/b/c", iter);
	mnt_path(mp, sizeof(mp), p);
	struct stat st;
	if (stat(mp, &st) == 0 || errno != ENOENT) /* a cached negative entry */
		fail("mount: %s exists before mkdir", p);
	char mp2[8192];
	snprintf(mp2, sizeof(mp2), "%s/deep/i%ld", mnt, iter);
	if (stat(mp2, &st) == 0 || errno != ENOENT)
		fail("mount: %s exists before mkdir", mp2);
	CHECK_API(cvfs_mkdir(fs, p, 0755, 1));
	if (stat(mp, &st) != 0 || !S_ISDIR(st.st_mode))
		fail("mount: stat %s after mkdir -p: %s", p, strerror(errno));
	/* And a file in it, written through the mount, read by the API. */
	char fp[8300];
	snprintf(fp, sizeof(fp), "%s/x.txt", mp);
	FILE *f = fopen(fp, "w");
	if (!f) {
		fail("mount: create %s: %s", fp, strerror(errno));
		return;
	}
	fprintf(f, "iteration %ld\n", iter);
	fclose(f);
	char ap[160], want[64];
	snprintf(ap, sizeof(ap), "%s/x.txt", p);
	snprintf(want, sizeof(want), "iteration %ld\n", iter);
	void *b;
	size_t n;
	int rc = cvfs_read_file(fs, ap, &b, &n);
	if (rc || n != strlen(want) || memcmp(b, want, n))
		fail("api: read %s after mount write: %s", ap, rc ? strerror(-rc) : "wrong content");
	if (!rc)
		cvfs_free(b);
	/* Remove the whole tree through the API; the mount must forget it. */
	snprintf(p, sizeof(p), "/deep/i%ld", iter);
	CHECK_API(cvfs_remove(fs, p, 1));
	if (stat(mp, &st) == 0 || errno != ENOENT)
		fail("mount: %s still visible after the API removed its tree", mp);
	if (stat(mp2, &st) == 0 || errno != ENOENT)
		fail("mount: %s still visible after the API removed it", mp2);
}

/* ---- operations through the mount, checked through the API ---- */

static void mount_write(int d, int s)
{
	char p[64], mp[8192];
	api_path(p, sizeof(p), d, s);
	mnt_path(mp, sizeof(mp), p);
	verify_api_slot(d, s);
	size_t len = pick_size();
	unsigned char *b = make_data(len);
	int fd = open(mp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fail("mount: open %s for writing: %s", p, strerror(errno));
		free(b);
		return;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, b + done, len - done);
		if (w <= 0) {
			fail("mount: write %s: %s", p, strerror(errno));
			break;
		}
		done += (size_t)w;
	}
	if (close(fd) != 0)
		fail("mount: close %s: %s", p, strerror(errno));
	mode_t mode = model[d][s].data ? model[d][s].mode : 0644;
	set_slot(d, s, b, len, mode);
	verify_api_slot(d, s);
}

static void mount_rename(int d1, int s1, int d2, int s2)
{
	if (d1 == d2 && s1 == s2)
		return;
	if (!model[d1][s1].data) {
		mount_write(d1, s1);
		return;
	}
	char a[64], b[64], ma[8192], mb[8192];
	api_path(a, sizeof(a), d1, s1);
	api_path(b, sizeof(b), d2, s2);
	mnt_path(ma, sizeof(ma), a);
	mnt_path(mb, sizeof(mb), b);
	if (rename(ma, mb) != 0) {
		fail("mount: rename %s %s: %s", a, b, strerror(errno));
		return;
	}
	struct slot moved = model[d1][s1];
	model[d1][s1].data = NULL;
	set_slot(d2, s2, moved.data, moved.len, moved.mode);
	verify_api_slot(d1, s1);
	verify_api_slot(d2, s2);
	/* and the mount agrees with itself */
	verify_mount_slot(d1, s1);
	verify_mount_slot(d2, s2);
}

static void mount_unlink(int d, int s)
{
	if (!model[d][s].data) {
		mount_write(d, s);
		return;
	}
	char p[64], mp[8192];
	api_path(p, sizeof(p), d, s);
	mnt_path(mp, sizeof(mp), p);
	if (unlink(mp) != 0) {
		fail("mount: unlink %s: %s", p, strerror(errno));
		return;
	}
	set_slot(d, s, NULL, 0, 0);
	verify_api_slot(d, s);
}

static void mount_mkdir(void)
{
	char p[128], mp[8192];
	snprintf(p, sizeof(p), "/m%ld", iter);
	mnt_path(mp, sizeof(mp), p);
	struct stat st;
	if (cvfs_stat(fs, p, &st) != -ENOENT)
		fail("api: %s exists before mkdir", p);
	if (mkdir(mp, 0750) != 0) {
		fail("mount: mkdir %s: %s", p, strerror(errno));
		return;
	}
	int rc = cvfs_stat(fs, p, &st);
	if (rc || !S_ISDIR(st.st_mode) || (st.st_mode & 0777) != 0750)
		fail("api: stat %s after mount mkdir: %s mode %o", p, rc ? strerror(-rc) : "ok",
		     rc ? 0 : st.st_mode);
	/* The API removes it; the mount must see that at once. */
	if (stat(mp, &st) != 0)
		fail("mount: stat %s: %s", p, strerror(errno));
	CHECK_API(cvfs_remove(fs, p, 0));
	if (stat(mp, &st) == 0 || errno != ENOENT)
		fail("mount: %s still there after the API removed it", p);
}

static int in_mounts(const char *dir)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	if (!f)
		return -1;
	char line[8192], want[8192];
	snprintf(want, sizeof(want), " %s ", dir);
	int found = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found = 1;
	fclose(f);
	return found;
}

static void stop_live(void)
{
	if (live) {
		cvfs_mount_stop(live);
		live = NULL;
		rmdir(mnt);
	}
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 3000;
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
	if (!rng_state)
		rng_state = 1;
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "SKIP: /dev/fuse is not usable\n");
		return 77;
	}
	char *err = NULL;
	int rc = cvfs_open("memory", NULL, &fs, &err);
	if (rc) {
		fprintf(stderr, "cvfs_open: %s\n", err ? err : strerror(-rc));
		return 1;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(mnt, sizeof(mnt), "%s/cvfs-coherence-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(mnt)) {
		perror("mkdtemp");
		return 1;
	}
	char *real = realpath(mnt, NULL);
	snprintf(mnt, sizeof(mnt), "%s", real);
	free(real);
	struct cvfs_mount_config mc = {.cache_timeout = 100};
	cvfs_mounted *m;
	rc = cvfs_mount_start(fs, mnt, &mc, &m, &err);
	live = m;
	atexit(stop_live);
	if (rc) {
		fprintf(stderr, "cvfs_mount_start %s: %s\n", mnt, err ? err : strerror(-rc));
		return 1;
	}
	for (int d = 0; d < NDIRS; d++) {
		char p[32];
		snprintf(p, sizeof(p), "/d%d", d);
		CHECK_API(cvfs_mkdir(fs, p, 0755, 0));
	}
	long counts[16] = {0};
	int trace = getenv("CVFS_TRACE") != NULL;
	for (iter = 0; iter < iters; iter++) {
		int d = (int)(rnd() % NDIRS), s = (int)(rnd() % NSLOTS);
		int d2 = (int)(rnd() % NDIRS), s2 = (int)(rnd() % NSLOTS);
		int op = (int)(rnd() % 14);
		counts[op]++;
		if (trace)
			fprintf(stderr, "[%ld] op %d d%d/f%d d%d/f%d\n", iter, op, d, s, d2, s2);
		switch (op) {
		case 0: case 1: api_write(d, s); break;
		case 2: api_pwrite(d, s); break;
		case 3: api_truncate(d, s); break;
		case 4: api_rename(d, s, d2, s2); break;
		case 5: api_delete(d, s); break;
		case 6: api_chmod(d, s); break;
		case 7: api_utimens(d, s); break;
		case 8: api_mkdir_p(); break;
		case 9: case 10: mount_write(d, s); break;
		case 11: mount_rename(d, s, d2, s2); break;
		case 12: mount_unlink(d, s); break;
		case 13: mount_mkdir(); break;
		}
		if (iter % 97 == 0)
			for (int k = 0; k < NDIRS; k++)
				verify_mount_dir(k);
	}
	/* A final full sweep, both ways. */
	for (int d = 0; d < NDIRS; d++) {
		verify_mount_dir(d);
		for (int s = 0; s < NSLOTS; s++) {
			verify_mount_slot(d, s);
			verify_api_slot(d, s);
		}
	}
	printf("%ld iterations: api write %ld, pwrite %ld, truncate %ld, rename %ld, delete %ld, "
	       "chmod %ld, utimens %ld, mkdir -p %ld; mount write %ld, rename %ld, unlink %ld, "
	       "mkdir %ld\n",
	       iters, counts[0] + counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
	       counts[7], counts[8], counts[9] + counts[10], counts[11], counts[12], counts[13]);

	live = NULL;
	rc = cvfs_mount_stop(m);
	if (rc)
		fail("cvfs_mount_stop: %s", strerror(-rc));
	if (in_mounts(mnt) != 0)
		fail("%s is still in /proc/self/mounts after cvfs_mount_stop", mnt);
	if (rmdir(mnt) != 0)
		fail("rmdir %s after unmount: %s", mnt, strerror(errno));
	for (int d = 0; d < NDIRS; d++)
		for (int s = 0; s < NSLOTS; s++)
			free(model[d][s].data);
	cvfs_close(fs);
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
