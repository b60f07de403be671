/*
 * apiread ENDPOINT BUCKET PATH LOCALFILE [CHUNK]: reads PATH of the S3 store
 * through the library (cvfs_file_read, CHUNK bytes at a time, 1 MiB by
 * default) and compares it with LOCALFILE.  Exit 0 if byte-exact.  The S3
 * tests use it to read without FUSE (the kernel splits reads; the library
 * does not).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvfs/cvfs.h"

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s ENDPOINT BUCKET PATH LOCALFILE [CHUNK]\n", argv[0]);
		return 2;
	}
	char ep[512], bk[512];
	snprintf(ep, sizeof(ep), "endpoint=%s", argv[1]);
	snprintf(bk, sizeof(bk), "bucket=%s", argv[2]);
	const char *opts[] = {ep, bk, NULL};
	size_t chunk = argc > 5 ? (size_t)strtoul(argv[5], NULL, 10) : 1u << 20;
	cvfs_fs *fs;
	char *err = NULL;
	if (cvfs_open("s3", opts, &fs, &err)) {
		fprintf(stderr, "apiread: %s\n", err ? err : "cannot open the store");
		cvfs_free(err);
		return 1;
	}
	FILE *ref = fopen(argv[4], "rb");
	cvfs_file *f = NULL;
	char *buf = malloc(chunk), *want = malloc(chunk);
	int rc = 1;
	if (!ref || !buf || !want || cvfs_file_open(fs, argv[3], O_RDONLY, 0, &f)) {
		fprintf(stderr, "apiread: cannot open %s or %s\n", argv[3], argv[4]);
		goto out;
	}
	long long at = 0;
	for (;;) {
		ssize_t n = cvfs_file_read(f, buf, chunk);
		size_t w = fread(want, 1, chunk, ref);
		if (n < 0 || (size_t)n != w || memcmp(buf, want, w) != 0) {
			fprintf(stderr, "apiread: %s differs at %lld (read %zd, want %zu)\n", argv[3], at,
				n, w);
			goto out;
		}
		if (n == 0)
			break;
		at += n;
	}
	rc = 0;
out:
	if (f)
		cvfs_file_close(f);
	if (ref)
		fclose(ref);
	free(buf);
	free(want);
	cvfs_close(fs);
	return rc;
}
