/*
 * Unit tests of the security policy (src/core/policy.c) alone: every rule,
 * the profiles, setting and config-file parsing, the quota counters under
 * concurrency, statfs, the violation log and describe().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/policy.h"

static int failures, checks;

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		checks++;                                                                \
		if (!(cond)) {                                                           \
			failures++;                                                      \
			fprintf(stdout, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stdout, __VA_ARGS__);                                    \
			fputc('\n', stdout);                                             \
		}                                                                        \
	} while (0)

#define EQ(got, want) CHECK((got) == (want), "got %d, want %d", (int)(got), (int)(want))

static char tmpdir[] = "/tmp/cvfs-policy-unit.XXXXXX";

static struct cvfs_policy *mk(void)
{
	struct cvfs_policy *p;
	if (cvfs_policy_new(&p) != 0) {
		printf("cvfs_policy_new failed\n");
		exit(1);
	}
	return p;
}

/* Sets key=value, expecting success. */
static void set(struct cvfs_policy *p, const char *k, const char *v)
{
	char *msg = NULL;
	int rc = cvfs_policy_set(p, k, v, &msg);
	CHECK(rc == 0, "set %s=%s: %d %s", k, v, rc, msg ? msg : "");
	free(msg);
}

/* Expects -EINVAL and a message naming the key (and the value, if given). */
static void bad(const char *k, const char *v, const char *must_mention)
{
	struct cvfs_policy *p = mk();
	char *msg = NULL;
	int rc = cvfs_policy_set(p, k, v, &msg);
	CHECK(rc == -EINVAL, "set %s=%s gave %d, want -EINVAL", k, v ? v : "(null)", rc);
	CHECK(msg && strstr(msg, k), "message for %s=%s does not name the key: %s", k,
	      v ? v : "(null)", msg ? msg : "(none)");
	if (must_mention)
		CHECK(msg && strstr(msg, must_mention), "message for %s=%s lacks '%s': %s", k,
		      v ? v : "", must_mention, msg ? msg : "(none)");
	CHECK(!cvfs_policy_active(p), "a refused setting left the policy active (%s=%s)", k,
	      v ? v : "");
	free(msg);
	cvfs_policy_free(p);
}

static const struct cvfs_cred cred = {.uid = 1234, .gid = 1234, .pid = 4321};

static int chk(struct cvfs_policy *p, enum cvfs_pol_op op, const char *path, uint32_t type)
{
	return cvfs_policy_check(p, op, path, type, &cred);
}

/* The describe() JSON contains needle? */
static int desc_has(struct cvfs_policy *p, const char *needle)
{
	char *d = cvfs_policy_describe(p);
	int r = d && strstr(d, needle);
	if (!r)
		printf("  describe: %s\n  (looking for %s)\n", d ? d : "(null)", needle);
	free(d);
	return r;
}

static const enum cvfs_pol_op changes[] = {
	CVFS_POL_CREATE,    CVFS_POL_MKDIR,  CVFS_POL_SYMLINK, CVFS_POL_LINK,
	CVFS_POL_RENAME_FROM, CVFS_POL_RENAME_TO, CVFS_POL_REMOVE, CVFS_POL_WRITE,
	CVFS_POL_SETATTR,   CVFS_POL_XATTR,
};
#define NCHANGES (sizeof(changes) / sizeof(changes[0]))

static void test_empty(void)
{
	struct cvfs_policy *p = mk();
	CHECK(!cvfs_policy_active(p), "new policy active");
	CHECK(!cvfs_policy_readonly(p), "new policy readonly");
	CHECK(!cvfs_policy_has_quota(p), "new policy has quota");
	for (size_t i = 0; i < NCHANGES; i++)
		EQ(chk(p, changes[i], "/a/b.exe", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/x", S_IFREG), 0);
	EQ(cvfs_policy_check_size(p, "/x", UINT64_MAX, &cred), 0);
	EQ(cvfs_policy_charge(p, INT64_MAX / 2, 1000000, "/x", NULL), 0);
	char *v = cvfs_policy_violations(p);
	CHECK(v && *v == 0, "violations of an empty policy: '%s'", v ? v : "(null)");
	free(v);
	CHECK(desc_has(p, "\"active\":false"), "describe");
	cvfs_policy_free(p);
	cvfs_policy_free(NULL);
}

static void test_readonly(void)
{
	struct cvfs_policy *p = mk();
	set(p, "readonly", "1");
	CHECK(cvfs_policy_active(p) && cvfs_policy_readonly(p), "readonly=1");
	for (size_t i = 0; i < NCHANGES; i++)
		EQ(chk(p, changes[i], "/a", S_IFREG), -EROFS);
	EQ(chk(p, CVFS_POL_LOOKUP, "/a", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_OPEN, "/a", S_IFREG), 0);
	set(p, "readonly", "0");
	CHECK(!cvfs_policy_readonly(p), "readonly=0 after 1 (later overrides)");
	EQ(chk(p, CVFS_POL_CREATE, "/a", S_IFREG), 0);
	set(p, "readonly", "true");
	CHECK(cvfs_policy_readonly(p), "readonly=true");
	bad("readonly", "2", "'2'");
	bad("readonly", "", NULL);
	cvfs_policy_free(p);

	p = mk();
	set(p, "readonly_path", "/docs/");
	set(p, "readonly_path", "//vendor//lib");
	CHECK(cvfs_policy_active(p) && !cvfs_policy_readonly(p), "readonly_path");
	for (size_t i = 0; i < NCHANGES; i++) {
		EQ(chk(p, changes[i], "/docs", S_IFDIR), -EROFS);
		EQ(chk(p, changes[i], "/docs/a/b.txt", S_IFREG), -EROFS);
		EQ(chk(p, changes[i], "/vendor/lib/x", S_IFREG), -EROFS);
		EQ(chk(p, changes[i], "/docs2/a", S_IFREG), 0);
		EQ(chk(p, changes[i], "/doc", S_IFREG), 0);
		EQ(chk(p, changes[i], "/vendor/x", S_IFREG), 0);
		EQ(chk(p, changes[i], "/a/docs/x", S_IFREG), 0);
	}
	EQ(chk(p, CVFS_POL_LOOKUP, "/docs/a", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_OPEN, "/docs/a", S_IFREG), 0);
	/* "mv /vendor /v2" would carry /vendor/lib out of its rule */
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/vendor", S_IFDIR), -EROFS);
	EQ(chk(p, CVFS_POL_RENAME_TO, "/vendor", S_IFDIR), -EROFS);
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/vendor/other", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/vendor/x", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_REMOVE, "/vendor/x", S_IFREG), 0);
	CHECK(desc_has(p, "\"readonly_path\":[\"/docs\",\"/vendor/lib\"]"), "normalised paths");
	bad("readonly_path", "docs", "absolute");
	bad("readonly_path", "/a/../b", "..");
	bad("readonly_path", "/a/./b", NULL);
	bad("readonly_path", "", NULL);
	cvfs_policy_free(p);
}

static void test_block(void)
{
	struct cvfs_policy *p = mk();
	set(p, "block_path", "/secrets");
	set(p, "block_path", "/home/u/.ssh");
	EQ(chk(p, CVFS_POL_LOOKUP, "/secrets", S_IFDIR), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/secrets/x", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/secrets/a/b/c", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_OPEN, "/secrets/x", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/secrets2", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/secret", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/a/secrets", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/Secrets", S_IFREG), 0); /* paths are case-sensitive */
	EQ(chk(p, CVFS_POL_LOOKUP, "/home/u", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/home/u/.ssh/id_rsa", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/", S_IFDIR), 0);
	for (size_t i = 0; i < NCHANGES; i++) {
		EQ(chk(p, changes[i], "/secrets", S_IFDIR), -EACCES);
		EQ(chk(p, changes[i], "/secrets/new", S_IFREG), -EACCES);
		EQ(chk(p, changes[i], "/secrets2/new", S_IFREG), 0);
	}
	/* moving a directory that holds a blocked path, or into place above one */
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/home/u", S_IFDIR), -EACCES);
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/home", S_IFDIR), -EACCES);
	EQ(chk(p, CVFS_POL_RENAME_TO, "/home", S_IFDIR), -EACCES);
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/home/v", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/hom", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_SETATTR, "/home/u", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/home/u/a", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/home/u", S_IFDIR), 0);
	bad("block_path", "/", "hide everything");
	bad("block_path", "secrets", NULL);
	cvfs_policy_free(p);

	/* readonly wins over block (EROFS for every change, whatever the path) */
	p = mk();
	set(p, "block_path", "/s");
	set(p, "readonly", "1");
	EQ(chk(p, CVFS_POL_CREATE, "/s/x", S_IFREG), -EROFS);
	EQ(chk(p, CVFS_POL_LOOKUP, "/s/x", S_IFREG), -ENOENT);
	cvfs_policy_free(p);
}

static void test_allow_root(void)
{
	struct cvfs_policy *p = mk();
	set(p, "allow_root", "/work/out");
	set(p, "allow_root", "/tmp");
	for (size_t i = 0; i < NCHANGES; i++) {
		EQ(chk(p, changes[i], "/work/out/a/b.c", S_IFREG), 0);
		EQ(chk(p, changes[i], "/tmp/x", S_IFREG), 0);
		EQ(chk(p, changes[i], "/work/outside", S_IFREG), -EACCES);
		EQ(chk(p, changes[i], "/etc/x", S_IFREG), -EACCES);
		EQ(chk(p, changes[i], "/x", S_IFREG), -EACCES);
	}
	/* Everything stays readable. */
	EQ(chk(p, CVFS_POL_LOOKUP, "/etc/x", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_OPEN, "/etc/x", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/work", S_IFDIR), 0);
	/* mkdir -p of the root's ancestors and of the root itself */
	EQ(chk(p, CVFS_POL_MKDIR, "/work", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_MKDIR, "/work/out", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/work", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_MKDIR, "/wor", S_IFDIR), -EACCES);
	/* the root itself cannot be removed or moved away, but can be chmod'ed */
	EQ(chk(p, CVFS_POL_REMOVE, "/work/out", S_IFDIR), -EACCES);
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/work/out", S_IFDIR), -EACCES);
	EQ(chk(p, CVFS_POL_SETATTR, "/work/out", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_REMOVE, "/work/out/x", S_IFREG), 0);
	cvfs_policy_free(p);
}

static void test_ext(void)
{
	struct cvfs_policy *p = mk();
	set(p, "deny_ext", ".exe,.SO");
	set(p, "deny_ext", "dll");
	const enum cvfs_pol_op named[] = {CVFS_POL_CREATE, CVFS_POL_RENAME_TO, CVFS_POL_LINK};
	for (size_t i = 0; i < 3; i++) {
		enum cvfs_pol_op op = named[i];
		EQ(chk(p, op, "/a.exe", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/A.EXE", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/a.Exe", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/lib.so", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/x.dll", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/.exe", S_IFREG), 0); /* a dotfile: a name, no extension */
		EQ(chk(p, op, "/d/..exe", S_IFREG), 0);
		EQ(chk(p, op, "/d/.hidden.exe", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/a.exe.txt", S_IFREG), 0);
		EQ(chk(p, op, "/d/a.txt.exe", S_IFREG), -EACCES);
		EQ(chk(p, op, "/d/exe", S_IFREG), 0);
		EQ(chk(p, op, "/d/a.exe.", S_IFREG), 0); /* extension "" */
		EQ(chk(p, op, "/x.exe/a.txt", S_IFREG), 0); /* only the final component */
		/* directories and symlinks are not files: extension rules skip them */
		EQ(chk(p, op, "/d/a.exe", S_IFDIR), 0);
	}
	EQ(chk(p, CVFS_POL_MKDIR, "/d/a.exe", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_SYMLINK, "/d/a.exe", S_IFLNK), 0);
	/* existing files stay usable */
	EQ(chk(p, CVFS_POL_WRITE, "/d/a.exe", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_REMOVE, "/d/a.exe", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_RENAME_FROM, "/d/a.exe", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_OPEN, "/d/a.exe", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_LOOKUP, "/d/a.exe", S_IFREG), 0);
	CHECK(desc_has(p, "\"deny_ext\":[\".exe\",\".so\",\".dll\"]"), "deny_ext normalised");
	cvfs_policy_free(p);

	p = mk();
	set(p, "allow_ext", ".py, .TXT");
	EQ(chk(p, CVFS_POL_CREATE, "/a.py", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/a.PY", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/a.b.txt", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/a.c", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/Makefile", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/.gitignore", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_RENAME_TO, "/a.c", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_MKDIR, "/src.d", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/fifo", S_IFIFO), 0);
	set(p, "allow_ext", ""); /* "" : files without an extension */
	EQ(chk(p, CVFS_POL_CREATE, "/Makefile", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/.gitignore", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/a.c", S_IFREG), -EACCES);
	cvfs_policy_free(p);
	p = mk();
	set(p, "allow_ext", ".md,.");
	EQ(chk(p, CVFS_POL_CREATE, "/README", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/x.md", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/x.mdx", S_IFREG), -EACCES);
	cvfs_policy_free(p);

	/* deny wins over allow */
	p = mk();
	set(p, "allow_ext", ".exe,.txt");
	set(p, "deny_ext", ".exe");
	EQ(chk(p, CVFS_POL_CREATE, "/a.exe", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/a.txt", S_IFREG), 0);
	cvfs_policy_free(p);

	bad("deny_ext", ".tar.gz", "last dot");
	bad("allow_ext", ".py,.a/b", NULL);
}

static void test_name(void)
{
	struct cvfs_policy *p = mk();
	set(p, "deny_name", "*.pem,id_rsa*");
	set(p, "deny_name", "secret?.txt");
	EQ(chk(p, CVFS_POL_CREATE, "/a/cert.pem", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/a/CERT.PEM", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/a/.hidden.pem", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/id_rsa", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_RENAME_TO, "/x/ID_RSA.pub", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_LINK, "/x/id_rsa", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_SYMLINK, "/x/id_rsa", S_IFLNK), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/x/secret1.txt", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/x/secret12.txt", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/pem/x", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/x/my_id_rsa", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_MKDIR, "/x/id_rsa.d", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_OPEN, "/x/id_rsa", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_REMOVE, "/x/id_rsa", S_IFREG), 0);
	bad("deny_name", "a/*.pem", "'/'");
	bad("deny_name", "", NULL);
	bad("deny_name", "*.pem,,*.key", NULL);
	cvfs_policy_free(p);
}

static void test_depth(void)
{
	struct cvfs_policy *p = mk();
	set(p, "max_depth", "3");
	EQ(chk(p, CVFS_POL_MKDIR, "/a/b/c", S_IFDIR), 0);
	EQ(chk(p, CVFS_POL_MKDIR, "/a/b/c/d", S_IFDIR), -ENAMETOOLONG);
	EQ(chk(p, CVFS_POL_CREATE, "/a/b/c/d", S_IFREG), -ENAMETOOLONG);
	EQ(chk(p, CVFS_POL_SYMLINK, "/a/b/c/d", S_IFLNK), -ENAMETOOLONG);
	EQ(chk(p, CVFS_POL_LINK, "/a/b/c/d", S_IFREG), -ENAMETOOLONG);
	EQ(chk(p, CVFS_POL_RENAME_TO, "/a/b/c/d", S_IFDIR), -ENAMETOOLONG);
	EQ(chk(p, CVFS_POL_LOOKUP, "/a/b/c/d/e", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_WRITE, "/a/b/c/d/e", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_REMOVE, "/a/b/c/d/e", S_IFREG), 0);
	bad("max_depth", "-1", NULL);
	bad("max_depth", "99999", "too large");
	bad("max_depth", "3x", "'3x'");
	cvfs_policy_free(p);
}

static void test_sizes(void)
{
	static const struct {
		const char *v;
		uint64_t want;
	} ok[] = {
		{"0", 0},	     {"1", 1},		    {"1000", 1000},
		{"1K", 1024},	     {"1k", 1024},	    {"10M", 10 << 20},
		{"2G", 2ull << 30},  {"3T", 3ull << 40},    {"1KiB", 1024},
		{"1MB", 1 << 20},    {"18446744073709551615", UINT64_MAX},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cvfs_policy *p = mk();
		set(p, "max_file_size", ok[i].v);
		if (ok[i].want) {
			EQ(cvfs_policy_check_size(p, "/f", ok[i].want, &cred), 0);
			EQ(cvfs_policy_check_size(p, "/f", ok[i].want - 1, &cred), 0);
			if (ok[i].want != UINT64_MAX)
				EQ(cvfs_policy_check_size(p, "/f", ok[i].want + 1, &cred),
				   -EFBIG);
		} else {
			CHECK(!cvfs_policy_active(p), "max_file_size=0 means no limit");
		}
		cvfs_policy_free(p);
	}
	const char *junk[] = {"-1", "", "abc", "10X", "1.5M", " 10", "10 ", "+5", "1MM",
			      "18446744073709551616", "16777216T", "0x10", "1Ki"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		bad("max_file_size", junk[i], NULL);
		bad("max_total_bytes", junk[i], NULL);
	}
	bad("max_file_size", "-5M", "'-5M'");
	bad("max_files", "1K", "'1K'");
	bad("max_files", "-1", NULL);
	bad("max_file_size", NULL, NULL);

	struct cvfs_policy *p = mk();
	set(p, "max_file_size", "10M");
	set(p, "max_file_size", "none"); /* lifts a profile's limit */
	CHECK(!cvfs_policy_active(p), "max_file_size=none");
	cvfs_policy_free(p);
}

static void test_keys(void)
{
	bad("no_such_key", "1", "'no_such_key'");
	bad("Readonly", "1", NULL);
	struct cvfs_policy *p = mk();
	char *msg = NULL;
	EQ(cvfs_policy_set(p, "bogus", "1", NULL), -EINVAL); /* errmsg optional */
	EQ(cvfs_policy_set(p, NULL, "1", &msg), -EINVAL);
	free(msg);
	cvfs_policy_free(p);
}

static void test_profiles(void)
{
	const char *names[] = {"default", "strict", "readonly", "untrusted", "testing"};
	for (size_t i = 0; i < 5; i++) {
		struct cvfs_policy *p = mk();
		char *msg = NULL;
		int rc = cvfs_policy_profile(p, names[i], &msg);
		CHECK(rc == 0, "profile %s: %d %s", names[i], rc, msg ? msg : "");
		free(msg);
		CHECK(cvfs_policy_active(p), "profile %s inactive", names[i]);
		char want[64];
		snprintf(want, sizeof(want), "\"profile\":\"%s\"", names[i]);
		CHECK(desc_has(p, want), "describe names the profile");
		int ro = !strcmp(names[i], "readonly");
		EQ(cvfs_policy_readonly(p), ro);
		/* What a normal project needs works under every writable profile. */
		const char *fine[] = {"/proj/.gitignore", "/proj/.git/objects/ab/cdef",
				      "/proj/node_modules/left-pad/index.js", "/proj/a.b.c.txt",
				      "/proj/Makefile", "/proj/.env", "/proj/src/main.c",
				      "/proj/.github/workflows/ci.yml", "/proj/x.tar.gz"};
		for (size_t j = 0; j < sizeof(fine) / sizeof(fine[0]); j++) {
			EQ(chk(p, CVFS_POL_CREATE, fine[j], S_IFREG), ro ? -EROFS : 0);
			EQ(chk(p, CVFS_POL_WRITE, fine[j], S_IFREG), ro ? -EROFS : 0);
			EQ(chk(p, CVFS_POL_LOOKUP, fine[j], S_IFREG), 0);
		}
		EQ(chk(p, CVFS_POL_MKDIR, "/proj/node_modules/.bin", S_IFDIR), ro ? -EROFS : 0);
		EQ(cvfs_policy_check_size(p, "/proj/f", 512 * 1024, &cred), 0);
		cvfs_policy_free(p);
	}

	struct cvfs_policy *p = mk();
	cvfs_policy_profile(p, "default", NULL);
	EQ(cvfs_policy_check_size(p, "/f", 1ull << 30, &cred), 0);
	EQ(cvfs_policy_check_size(p, "/f", (1ull << 30) + 1, &cred), -EFBIG);
	CHECK(!cvfs_policy_has_quota(p), "default has no quota");
	cvfs_policy_free(p);

	p = mk();
	cvfs_policy_profile(p, "strict", NULL);
	EQ(chk(p, CVFS_POL_CREATE, "/a.exe", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/lib/libz.so", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/lib/libz.so.1", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/lib/libz.so.1.2.13", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/A.DLL", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_LOOKUP, "/.ssh/id_rsa", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/.aws", S_IFDIR), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/proj/.ssh", S_IFDIR), 0);
	EQ(cvfs_policy_check_size(p, "/f", 100ull << 20, &cred), 0);
	EQ(cvfs_policy_check_size(p, "/f", (100ull << 20) + 1, &cred), -EFBIG);
	CHECK(!cvfs_policy_has_quota(p), "strict has no quota");
	cvfs_policy_free(p);

	p = mk();
	cvfs_policy_profile(p, "untrusted", NULL);
	CHECK(cvfs_policy_has_quota(p), "untrusted has quota");
	EQ(chk(p, CVFS_POL_CREATE, "/a.exe", S_IFREG), -EACCES); /* strict's rules */
	EQ(chk(p, CVFS_POL_LOOKUP, "/.ssh", S_IFDIR), -ENOENT);
	EQ(chk(p, CVFS_POL_CREATE, "/k/server.key", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/k/cert.PEM", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/k/id_ed25519", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/k/id_rsa.pub", S_IFREG), -EACCES);
	char deep[256] = "";
	for (int i = 0; i < 32; i++)
		strcat(deep, "/d");
	EQ(chk(p, CVFS_POL_MKDIR, deep, S_IFDIR), 0);
	strcat(deep, "/d");
	EQ(chk(p, CVFS_POL_MKDIR, deep, S_IFDIR), -ENAMETOOLONG);
	CHECK(desc_has(p, "\"max_total_bytes\":1073741824"), "untrusted bytes");
	CHECK(desc_has(p, "\"max_files\":100000"), "untrusted files");
	cvfs_policy_free(p);

	p = mk();
	cvfs_policy_profile(p, "testing", NULL);
	EQ(cvfs_policy_check_size(p, "/f", 1 << 20, &cred), 0);
	EQ(cvfs_policy_check_size(p, "/f", (1 << 20) + 1, &cred), -EFBIG);
	CHECK(desc_has(p, "\"max_total_bytes\":10485760"), "testing bytes");
	CHECK(desc_has(p, "\"max_files\":1000"), "testing files");
	/* later settings override a profile */
	set(p, "max_files", "5");
	CHECK(desc_has(p, "\"max_files\":5,"), "override");
	cvfs_policy_free(p);

	p = mk();
	char *msg = NULL;
	EQ(cvfs_policy_profile(p, "paranoid", &msg), -EINVAL);
	CHECK(msg && strstr(msg, "paranoid"), "unknown profile message: %s", msg ? msg : "");
	free(msg);
	CHECK(!cvfs_policy_active(p), "unknown profile changed the policy");
	EQ(cvfs_policy_profile(p, NULL, NULL), -EINVAL);
	cvfs_policy_free(p);
}

/* ---- quotas ---- */

static void test_charge(void)
{
	struct cvfs_policy *p = mk();
	set(p, "max_total_bytes", "1000");
	set(p, "max_files", "3");
	CHECK(cvfs_policy_has_quota(p), "quota");
	EQ(cvfs_policy_charge(p, 600, 1, "/a", &cred), 0);
	EQ(cvfs_policy_charge(p, 400, 1, "/b", &cred), 0);
	EQ(cvfs_policy_charge(p, 1, 0, "/b", &cred), -EDQUOT);
	EQ(cvfs_policy_charge(p, 0, 1, "/c", &cred), 0);
	EQ(cvfs_policy_charge(p, 0, 1, "/d", &cred), -EDQUOT);
	/* a refused charge charges nothing, bytes included */
	EQ(cvfs_policy_charge(p, -500, 0, "/a", &cred), 0);
	EQ(cvfs_policy_charge(p, 100, 1, "/d", &cred), -EDQUOT);
	CHECK(desc_has(p, "\"used_bytes\":500,\"used_files\":3"), "refused charge rolled back");
	/* negative charges always succeed, and stop at zero */
	EQ(cvfs_policy_charge(p, -100000, -100, "/", &cred), 0);
	CHECK(desc_has(p, "\"used_bytes\":0,\"used_files\":0"), "clamped at zero");
	EQ(cvfs_policy_charge(p, 1000, 3, "/", &cred), 0);
	EQ(cvfs_policy_charge(p, -1, -1, "/", &cred), 0);
	EQ(cvfs_policy_charge(p, 1, 1, "/", &cred), 0);
	/* usage over the limit at start (init): only decreases pass */
	cvfs_policy_init_usage(p, 5000, 10);
	EQ(cvfs_policy_charge(p, 1, 0, "/", &cred), -EDQUOT);
	EQ(cvfs_policy_charge(p, 0, 1, "/", &cred), -EDQUOT);
	EQ(cvfs_policy_charge(p, -10, -1, "/", &cred), 0);
	EQ(cvfs_policy_charge(p, INT64_MAX, 0, "/", &cred), -EDQUOT);
	cvfs_policy_free(p);

	/* counting without limits (for describe/statfs) */
	p = mk();
	set(p, "max_file_size", "1M");
	EQ(cvfs_policy_charge(p, INT64_MAX, 1, "/", NULL), 0);
	EQ(cvfs_policy_charge(p, INT64_MAX, 1, "/", NULL), 0); /* saturates, no wrap */
	cvfs_policy_free(p);
}

#define NTHREADS 8
#define LIMIT_BYTES 1000003ull
#define LIMIT_FILES 5003ull

struct racer {
	struct cvfs_policy *p;
	pthread_barrier_t *bar;
	uint64_t got_bytes, got_files, refused;
	int id;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->bar);
	for (int i = 0; i < 200000; i++) {
		int64_t db = 1 + (i * 7 + r->id) % 97;
		int64_t df = (i % 3 == 0);
		if (cvfs_policy_charge(r->p, db, df, "/race", NULL) == 0) {
			r->got_bytes += (uint64_t)db;
			r->got_files += (uint64_t)df;
			/* give some back now and then, to keep the counters moving */
			if (i % 5 == 0 && cvfs_policy_charge(r->p, -db, -df, "/race", NULL) == 0) {
				r->got_bytes -= (uint64_t)db;
				r->got_files -= (uint64_t)df;
			}
		} else {
			r->refused++;
		}
	}
	return NULL;
}

static void test_concurrent_charge(void)
{
	struct cvfs_policy *p = mk();
	set(p, "max_total_bytes", "1000003");
	set(p, "max_files", "5003");
	int devnull = open("/dev/null", O_WRONLY);
	int saved = dup(STDERR_FILENO);
	dup2(devnull, STDERR_FILENO); /* tens of thousands of refusals */
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, NTHREADS);
	pthread_t t[NTHREADS];
	struct racer r[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){.p = p, .bar = &bar, .id = i};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	uint64_t bytes = 0, files = 0, refused = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		bytes += r[i].got_bytes;
		files += r[i].got_files;
		refused += r[i].refused;
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(devnull);
	pthread_barrier_destroy(&bar);
	CHECK(bytes <= LIMIT_BYTES, "bytes %llu passed the limit", (unsigned long long)bytes);
	CHECK(files <= LIMIT_FILES, "files %llu passed the limit", (unsigned long long)files);
	CHECK(refused > 0, "no refusals: the race did not reach the limits");
	CHECK(bytes > LIMIT_BYTES - 100, "bytes %llu: far from the limit",
	      (unsigned long long)bytes);
	char want[128];
	snprintf(want, sizeof(want), "\"used_bytes\":%llu,\"used_files\":%llu",
		 (unsigned long long)bytes, (unsigned long long)files);
	CHECK(desc_has(p, want), "counters equal the sum of what the threads were granted");
	struct cvfs_statfs sf = {.bsize = 1};
	cvfs_policy_statfs(p, &sf);
	CHECK(sf.blocks == LIMIT_BYTES && sf.bfree == LIMIT_BYTES - bytes &&
		      sf.files == LIMIT_FILES && sf.ffree == LIMIT_FILES - files,
	      "statfs after the race");
	/* The ring holds the last 1000, and still works after many. */
	char *v = cvfs_policy_violations(p);
	size_t lines = 0;
	for (char *c = v; c && *c; c++)
		lines += *c == '\n';
	CHECK(lines == 1000, "ring has %zu lines, want 1000", lines);
	free(v);
	printf("race: %d threads granted %llu bytes, %llu files; %llu refusals\n", NTHREADS,
	       (unsigned long long)bytes, (unsigned long long)files,
	       (unsigned long long)refused);
	cvfs_policy_free(p);
}

static void test_statfs(void)
{
	struct cvfs_policy *p = mk();
	struct cvfs_statfs sf = {.bsize = 4096, .blocks = 1 << 30, .bfree = 1 << 29,
				 .bavail = 1 << 29, .files = 1 << 30, .ffree = 1 << 29};
	struct cvfs_statfs orig = sf;
	cvfs_policy_statfs(p, &sf);
	CHECK(!memcmp(&sf, &orig, sizeof(sf)), "no quota: statfs unchanged");

	set(p, "max_total_bytes", "1M");
	set(p, "max_files", "100");
	cvfs_policy_charge(p, 4096 * 10 + 1, 7, "/", NULL);
	cvfs_policy_statfs(p, &sf);
	EQ(sf.bsize, 4096);
	EQ(sf.blocks, 256);
	EQ(sf.bfree, (1048576 - 40961) / 4096);
	EQ(sf.bavail, sf.bfree);
	EQ(sf.files, 100);
	EQ(sf.ffree, 93);
	/* a store with less room than the quota: the smaller wins */
	struct cvfs_statfs small = {.bsize = 4096, .blocks = 100, .bfree = 5, .bavail = 5,
				    .files = 1000, .ffree = 3};
	cvfs_policy_statfs(p, &small);
	EQ(small.blocks, 256);
	EQ(small.bavail, 5);
	EQ(small.ffree, 3);
	/* used past the quota (init): zero free, no underflow */
	cvfs_policy_init_usage(p, 5 << 20, 500);
	struct cvfs_statfs z = {0};
	cvfs_policy_statfs(p, &z);
	EQ(z.bsize, 4096);
	EQ(z.blocks, 256);
	EQ(z.bfree, 0);
	EQ(z.files, 100);
	EQ(z.ffree, 0);
	cvfs_policy_free(p);
}

/* ---- config files ---- */

static char *write_tmp(const char *name, const char *text)
{
	char *path;
	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		exit(1);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void load_bad(const char *name, const char *text, int want, const char *mention)
{
	char *path = write_tmp(name, text);
	struct cvfs_policy *p = mk();
	set(p, "max_files", "7");
	char *before = cvfs_policy_describe(p);
	char *msg = NULL;
	int rc = cvfs_policy_load(p, path, &msg);
	CHECK(rc == want, "load %s gave %d, want %d (%s)", name, rc, want, msg ? msg : "");
	CHECK(msg && strstr(msg, path), "message does not name the file: %s", msg ? msg : "");
	if (mention)
		CHECK(msg && strstr(msg, mention), "load %s: message lacks '%s': %s", name,
		      mention, msg ? msg : "");
	char *after = cvfs_policy_describe(p);
	CHECK(before && after && !strcmp(before, after), "a bad file %s changed the policy:\n %s\n %s",
	      name, before, after);
	free(before);
	free(after);
	free(msg);
	cvfs_policy_free(p);
	free(path);
}

static void test_load(void)
{
	char *path = write_tmp("good.json",
			       "{\n"
			       "  \"max_file_size\": \"10M\",\n"
			       "  \"profile\": \"strict\",\n"
			       "  \"block_path\": [\"/secrets\", \"/private/keys\"],\n"
			       "  \"readonly_path\": \"/docs\",\n"
			       "  \"deny_ext\": [\".EXE\", \".bat,.cmd\"],\n"
			       "  \"allow_ext\": [\".py\", \".txt\", \"\"],\n"
			       "  \"deny_name\": [\"*.pem\"],\n"
			       "  \"max_total_bytes\": 1048576,\n"
			       "  \"max_files\": 50,\n"
			       "  \"max_depth\": \"8\",\n"
			       "  \"readonly\": false\n"
			       "}\n");
	struct cvfs_policy *p = mk();
	char *msg = NULL;
	int rc = cvfs_policy_load(p, path, &msg);
	CHECK(rc == 0, "load good.json: %d %s", rc, msg ? msg : "");
	free(msg);
	/* profile first, whatever the key order: 10M beats strict's 100M */
	EQ(cvfs_policy_check_size(p, "/f", (10 << 20) + 1, &cred), -EFBIG);
	EQ(chk(p, CVFS_POL_LOOKUP, "/secrets/a", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/private/keys", S_IFDIR), -ENOENT);
	EQ(chk(p, CVFS_POL_LOOKUP, "/.ssh", S_IFDIR), -ENOENT); /* from strict */
	EQ(chk(p, CVFS_POL_WRITE, "/docs/x", S_IFREG), -EROFS);
	EQ(chk(p, CVFS_POL_CREATE, "/x.Cmd", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/x.py", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/Makefile", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/x.c", S_IFREG), -EACCES);
	EQ(chk(p, CVFS_POL_CREATE, "/a/b/c/d/e/f/g/h.py", S_IFREG), 0);
	EQ(chk(p, CVFS_POL_CREATE, "/a/b/c/d/e/f/g/h/i.py", S_IFREG), -ENAMETOOLONG);
	CHECK(desc_has(p, "\"profile\":\"strict\""), "profile recorded");
	CHECK(desc_has(p, "\"max_total_bytes\":1048576,\"max_files\":50"), "numbers");
	cvfs_policy_free(p);
	free(path);

	path = write_tmp("empty-obj.json", "  {}  \n");
	p = mk();
	EQ(cvfs_policy_load(p, path, NULL), 0);
	CHECK(!cvfs_policy_active(p), "{} is no policy");
	cvfs_policy_free(p);
	free(path);

	load_bad("bad1.json", "{\"max_file_size\": \"10M\",}", -EINVAL, "JSON");
	load_bad("bad2.json", "{\"max_file_size\": ", -EINVAL, "JSON");
	load_bad("bad3.json", "", -EINVAL, "JSON");
	load_bad("bad4.json", "[1,2]", -EINVAL, "object");
	load_bad("bad5.json", "{} {}", -EINVAL, "JSON");
	load_bad("bad6.json", "{\"max_file_size\": -1}", -EINVAL, "max_file_size");
	load_bad("bad7.json", "{\"max_file_size\": 1.5}", -EINVAL, "max_file_size");
	load_bad("bad8.json", "{\"max_file_size\": \"ten\"}", -EINVAL, "'ten'");
	load_bad("bad9.json", "{\"unknown_key\": 1}", -EINVAL, "unknown_key");
	load_bad("bad10.json", "{\"readonly\": \"maybe\"}", -EINVAL, "readonly");
	load_bad("bad11.json", "{\"block_path\": [\"/a\", 5]}", -EINVAL, "block_path[1]");
	load_bad("bad12.json", "{\"block_path\": {\"a\": 1}}", -EINVAL, "block_path");
	load_bad("bad13.json", "{\"profile\": \"nope\"}", -EINVAL, "nope");
	load_bad("bad14.json", "{\"profile\": 3}", -EINVAL, "profile");
	load_bad("bad15.json", "{\"deny_ext\": true}", -EINVAL, "deny_ext");
	/* a good profile, then a bad key: nothing at all applied */
	load_bad("bad16.json", "{\"profile\": \"strict\", \"block_path\": \"rel\"}", -EINVAL,
		 "block_path");
	load_bad("bad17.json", "{\"max_files\": 99999999999999999999}", -EINVAL, "max_files");
	load_bad("bad18.json", "{\"log\": \"/nonexistent-dir/x/y.log\"}", -ENOENT, "log");
	load_bad("bad19.json", "{\"max_depth\": null}", -EINVAL, "max_depth");
	load_bad("bad20.json", "{\"a\" 1}", -EINVAL, "JSON");
	load_bad("bad21.json", "{\"max_files\": 1} trailing", -EINVAL, "JSON");

	char *missing;
	if (asprintf(&missing, "%s/does-not-exist.json", tmpdir) < 0)
		exit(1);
	p = mk();
	msg = NULL;
	EQ(cvfs_policy_load(p, missing, &msg), -ENOENT);
	CHECK(msg && strstr(msg, missing), "missing file message: %s", msg ? msg : "");
	free(msg);
	msg = NULL;
	EQ(cvfs_policy_load(p, tmpdir, &msg), -EISDIR);
	CHECK(msg && strstr(msg, tmpdir), "directory message: %s", msg ? msg : "");
	free(msg);
	msg = NULL;
	if (geteuid() != 0) { /* root reads anything */
		char *unread = write_tmp("unreadable.json", "{}");
		chmod(unread, 0);
		EQ(cvfs_policy_load(p, unread, &msg), -EACCES);
		free(msg);
		msg = NULL;
		free(unread);
	}
	CHECK(!cvfs_policy_active(p), "failed loads changed the policy");
	cvfs_policy_free(p);
	free(missing);
}

/* ---- the violation log ---- */

static void test_log(void)
{
	char *logpath;
	if (asprintf(&logpath, "%s/violations.log", tmpdir) < 0)
		exit(1);
	struct cvfs_policy *p = mk();
	set(p, "block_path", "/secrets");
	set(p, "deny_ext", ".exe");
	set(p, "log", logpath);
	CHECK(desc_has(p, logpath), "describe shows the log");

	/* stderr to a file, to see the lines */
	char *errpath;
	if (asprintf(&errpath, "%s/stderr.txt", tmpdir) < 0)
		exit(1);
	int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int saved = dup(STDERR_FILENO);
	dup2(efd, STDERR_FILENO);
	EQ(chk(p, CVFS_POL_LOOKUP, "/secrets/x", S_IFREG), -ENOENT);
	EQ(chk(p, CVFS_POL_CREATE, "/dir/a \"quoted\"\n.exe", S_IFREG), -EACCES);
	EQ(cvfs_policy_check(p, CVFS_POL_CREATE, "/bad\xff.exe", S_IFREG, NULL), -EACCES);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(efd);

	char *v = cvfs_policy_violations(p);
	CHECK(v != NULL, "violations");
	printf("violations:\n%s", v ? v : "");
	CHECK(v && strstr(v, "\"pid\":4321,\"uid\":1234,\"op\":\"lookup\",\"path\":\"/secrets/x\","
			     "\"rule\":\"block_path=/secrets\",\"errno\":\"ENOENT\"}\n"),
	      "lookup entry");
	CHECK(v && strstr(v, "\"path\":\"/dir/a \\\"quoted\\\"\\u000a.exe\""), "escaping");
	CHECK(v && strstr(v, "\"path\":\"/bad\\u00ff.exe\""), "invalid UTF-8 escaped");
	CHECK(v && strstr(v, "\"errno\":\"EACCES\""), "EACCES");
	/* time: 2024-01-02T03:04:05.678Z */
	const char *t = v ? strstr(v, "\"time\":\"") : NULL;
	CHECK(t && strlen(t) > 32 && t[8 + 4] == '-' && t[8 + 10] == 'T' && t[8 + 19] == '.' &&
		      t[8 + 23] == 'Z',
	      "ISO-8601 time with ms");
	free(v);

	char buf[8192];
	int fd = open(logpath, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	int lines = 0;
	for (char *c = buf; *c; c++)
		lines += *c == '\n';
	EQ(lines, 3);
	CHECK(strstr(buf, "\"rule\":\"block_path=/secrets\""), "log file: %s", buf);

	fd = open(errpath, O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	lines = 0;
	for (char *c = buf; *c; c++)
		lines += *c == '\n';
	EQ(lines, 3);
	CHECK(strncmp(buf, "chuk-vfs: policy: ", 18) == 0, "stderr prefix: %s", buf);
	CHECK(strstr(buf, "/secrets/x") && strstr(buf, "ENOENT"), "stderr line: %s", buf);
	CHECK(desc_has(p, "\"violations\":3"), "count");
	cvfs_policy_free(p);

	/* appends, never truncates */
	p = mk();
	set(p, "deny_ext", ".exe");
	set(p, "log", logpath);
	saved = dup(STDERR_FILENO);
	int dn = open("/dev/null", O_WRONLY);
	dup2(dn, STDERR_FILENO);
	EQ(chk(p, CVFS_POL_CREATE, "/again.exe", S_IFREG), -EACCES);
	/* and the ring keeps the last 1000, newest last */
	for (int i = 0; i < 1500; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/f%d.exe", i);
		chk(p, CVFS_POL_CREATE, path, S_IFREG);
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(dn);
	v = cvfs_policy_violations(p);
	int vl = 0;
	for (char *c = v; c && *c; c++)
		vl += *c == '\n';
	EQ(vl, 1000);
	CHECK(v && strstr(v, "\"/f500.exe\"") && !strstr(v, "\"/f499.exe\"") &&
		      strstr(v, "/f1499.exe\",\"rule\":\"deny_ext=.exe\",\"errno\":\"EACCES\"}\n") ==
			      v + strlen(v) - strlen("/f1499.exe\",\"rule\":\"deny_ext=.exe\","
						     "\"errno\":\"EACCES\"}\n"),
	      "ring order");
	free(v);
	fd = open(logpath, O_RDONLY);
	struct stat sb;
	fstat(fd, &sb);
	close(fd);
	CHECK(sb.st_size > 1500 * 50, "log file appended (size %lld)", (long long)sb.st_size);
	cvfs_policy_free(p);

	char *m = NULL;
	p = mk();
	EQ(cvfs_policy_set(p, "log", "/nonexistent-dir/v.log", &m), -ENOENT);
	CHECK(m && strstr(m, "/nonexistent-dir/v.log"), "log open error: %s", m ? m : "");
	free(m);
	cvfs_policy_free(p);
	unlink(logpath);
	unlink(errpath);
	free(logpath);
	free(errpath);
}

static void test_describe(void)
{
	struct cvfs_policy *p = mk();
	cvfs_policy_profile(p, "strict", NULL);
	set(p, "allow_ext", ".py,");
	set(p, "allow_root", "/work");
	char *d = cvfs_policy_describe(p);
	printf("describe(strict + allow_ext .py,\"\" + allow_root /work):\n%s\n", d ? d : "");
	CHECK(d && d[0] == '{' && d[strlen(d) - 1] == '}', "an object");
	CHECK(d && strstr(d, "\"allow_ext\":[\".py\",\"\"]"), "allow_ext with the no-extension entry");
	CHECK(d && strstr(d, "\"allow_root\":[\"/work\"]"), "allow_root");
	CHECK(d && strstr(d, "\"max_file_size\":104857600"), "max_file_size");
	CHECK(d && !strstr(d, "\\/"), "slashes are not escaped");
	free(d);
	cvfs_policy_free(p);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	/* The refusals these tests provoke go to stderr: keep it quiet unless
	 * asked (CVFS_VERBOSE=1). */
	int saved = -1;
	if (!getenv("CVFS_VERBOSE")) {
		saved = dup(STDERR_FILENO);
		int dn = open("/dev/null", O_WRONLY);
		dup2(dn, STDERR_FILENO);
		close(dn);
	}
	test_empty();
	test_readonly();
	test_block();
	test_allow_root();
	test_ext();
	test_name();
	test_depth();
	test_sizes();
	test_keys();
	test_profiles();
	test_charge();
	test_concurrent_charge();
	test_statfs();
	test_load();
	test_log();
	test_describe();
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
