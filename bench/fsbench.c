/*
 * fsbench: a small, self-contained file-system benchmark for chuk-vfs.
 *
 *   fsbench DIR [N] [SEQ_MB]
 *
 * In DIR (which must exist and be empty of fsbench's names) it times, one
 * thread, one syscall pattern at a time:
 *   create   N empty files (open O_CREAT|O_EXCL|O_WRONLY, close)
 *   stat     each of them (stat)
 *   write4k  N new files of 4 KiB (open O_CREAT, write, close)
 *   read4k   each of them after dropping the kernel's caches (root only)
 *   rename   each empty file to a new name
 *   unlink   every file
 *   seqwrite one SEQ_MB MiB file in 1 MiB writes, then fsync
 *   seqread  it back after dropping the caches (cold)
 * and prints "PHASE VALUE UNIT" lines (ops/s or MB/s).  It checks what it
 * reads (sizes and bytes) and exits 1 on any mismatch or error: a figure
 * from a broken run is never printed as a result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fsbench: %s %s: %s\n", what, path ? path : "", strerror(errno));
	exit(1);
}

static void drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return; /* not root: "cold" reads are then warm, said below */
	if (write(fd, "3", 1) != 1)
		fprintf(stderr, "fsbench: drop_caches: %s\n", strerror(errno));
	close(fd);
}

static void name(char *buf, size_t n, const char *dir, const char *pfx, int i)
{
	snprintf(buf, n, "%s/%s%07d", dir, pfx, i);
}

static void report(const char *phase, double value, const char *unit)
{
	printf("%-9s %12.1f %s\n", phase, value, unit);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s DIR [N (2000)] [SEQ_MB (256)]\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	int n = argc > 2 ? atoi(argv[2]) : 2000;
	int seq_mb = argc > 3 ? atoi(argv[3]) : 256;
	if (n <= 0 || n > 10000000 || seq_mb <= 0 || seq_mb > 65536) {
		fprintf(stderr, "fsbench: bad N or SEQ_MB\n");
		return 2;
	}
	char p[4096], q[4096];
	char blk[4096];
	for (size_t i = 0; i < sizeof(blk); i++)
		blk[i] = (char)(i * 31 + 7);

	double t = now_s();
	for (int i = 0; i < n; i++) {
		name(p, sizeof(p), dir, "c", i);
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || close(fd) != 0)
			die("create", p);
	}
	report("create", n / (now_s() - t), "ops/s");

	t = now_s();
	for (int i = 0; i < n; i++) {
		struct stat st;
		name(p, sizeof(p), dir, "c", i);
		if (stat(p, &st) != 0)
			die("stat", p);
		if (!S_ISREG(st.st_mode) || st.st_size != 0) {
			fprintf(stderr, "fsbench: %s: not an empty file\n", p);
			return 1;
		}
	}
	report("stat", n / (now_s() - t), "ops/s");

	t = now_s();
	for (int i = 0; i < n; i++) {
		name(p, sizeof(p), dir, "w", i);
		int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0)
			die("open", p);
		blk[0] = (char)i;
		if (write(fd, blk, sizeof(blk)) != (ssize_t)sizeof(blk))
			die("write", p);
		if (close(fd) != 0)
			die("close", p);
	}
	report("write4k", n / (now_s() - t), "files/s");

	drop_caches();
	t = now_s();
	for (int i = 0; i < n; i++) {
		char got[sizeof(blk) + 1];
		name(p, sizeof(p), dir, "w", i);
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			die("open", p);
		ssize_t r = read(fd, got, sizeof(got));
		close(fd);
		blk[0] = (char)i;
		if (r != (ssize_t)sizeof(blk) || memcmp(got, blk, sizeof(blk)) != 0) {
			fprintf(stderr, "fsbench: %s: wrong content (%zd bytes)\n", p, r);
			return 1;
		}
	}
	report("read4k", n / (now_s() - t), "files/s");

	t = now_s();
	for (int i = 0; i < n; i++) {
		name(p, sizeof(p), dir, "c", i);
		name(q, sizeof(q), dir, "r", i);
		if (rename(p, q) != 0)
			die("rename", p);
	}
	report("rename", n / (now_s() - t), "ops/s");

	t = now_s();
	for (int i = 0; i < n; i++) {
		name(p, sizeof(p), dir, "r", i);
		name(q, sizeof(q), dir, "w", i);
		if (unlink(p) != 0)
			die("unlink", p);
		if (unlink(q) != 0)
			die("unlink", q);
	}
	report("unlink", 2.0 * n / (now_s() - t), "ops/s");

	size_t mb = 1 << 20;
	char *big = malloc(mb), *back = malloc(mb);
	if (!big || !back)
		die("malloc", NULL);
	snprintf(p, sizeof(p), "%s/seqfile", dir);
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0)
		die("create", p);
	t = now_s();
	for (int i = 0; i < seq_mb; i++) {
		for (size_t k = 0; k < mb; k += 4096)
			memset(big + k, (int)(i * 7 + k / 4096), 4096);
		if (write(fd, big, mb) != (ssize_t)mb)
			die("write", p);
	}
	if (fsync(fd) != 0)
		die("fsync", p);
	close(fd);
	report("seqwrite", seq_mb / (now_s() - t), "MB/s");

	drop_caches();
	fd = open(p, O_RDONLY);
	if (fd < 0)
		die("open", p);
	t = now_s();
	double check = 0;
	for (int i = 0; i < seq_mb; i++) {
		size_t got = 0;
		while (got < mb) {
			ssize_t r = read(fd, back + got, mb - got);
			if (r <= 0)
				die("read", p);
			got += (size_t)r;
		}
		double c0 = now_s(); /* the check is not part of the figure */
		for (size_t k = 0; k < mb; k += 4096)
			memset(big + k, (int)(i * 7 + k / 4096), 4096);
		if (memcmp(big, back, mb) != 0) {
			fprintf(stderr, "fsbench: %s: wrong bytes in MiB %d\n", p, i);
			return 1;
		}
		check += now_s() - c0;
	}
	close(fd);
	report("seqread", seq_mb / (now_s() - t - check), "MB/s");
	if (unlink(p) != 0)
		die("unlink", p);
	free(big);
	free(back);
	return 0;
}
