/*
 * A small S3 client over libcurl: signed requests (SigV4 by libcurl), a pool
 * of reusable easy handles (keep-alive), bounded timeouts, retries with
 * backoff on transient failures only (connection errors, 500/502/503/504,
 * 429, S3's throttling codes), credentials re-read once when S3 refuses them,
 * one errno mapping.  Used only by the S3 store (s3.c).
 */
#ifndef CVFS_S3_CLIENT_H
#define CVFS_S3_CLIENT_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct s3_hdr {
	char *name; /* lower case */
	char *value;
};

struct s3_resp {
	long status;
	char *body; /* the body when no sink was given, or an error body */
	size_t blen, bcap;
	uint64_t got; /* bytes delivered to the sink */
	struct s3_hdr *hdrs;
	size_t nhdrs, hcap;
	int curl_rc;
	char code[64]; /* S3 error code ("NoSuchKey"), or "" */
	char msg[256]; /* S3's or curl's message, or "" */
};

struct s3_req {
	const char *method;       /* GET HEAD PUT DELETE POST */
	const char *key;          /* raw object key; NULL: the bucket itself */
	const char *query;        /* encoded, parameters sorted by name; NULL: none */
	const char *const *hdrs;  /* "Name: value" lines, NULL-terminated; may be NULL */
	const void *body;         /* request body from memory ... */
	size_t blen;
	int body_fd;              /* ... or from a file when >= 0 */
	uint64_t body_off, body_len;
	int sink_fd;              /* response body into a file at sink_off when >= 0 ... */
	uint64_t sink_off;
	void *sink_buf;           /* ... or into a buffer of sink_cap bytes */
	size_t sink_cap;
	uint64_t range_off, range_len; /* range_len > 0: ask for these bytes only */
	int no_retry;
	long total_ms;            /* > 0: every attempt and backoff ends within this */
};
#define S3_REQ_INIT {.body_fd = -1, .sink_fd = -1}

struct s3c {
	char *base;      /* scheme://host[:port][/path] */
	char *bucket;
	int path_style;  /* base/bucket/key rather than bucket.host/key */
	char *region;
	char *sigv4;     /* "aws:amz:REGION:s3" */
	/* where credentials are looked up again when S3 refuses them */
	char *profile, *cred_file, *conf_file, *conf_sec;
	int profile_forced; /* a profile option: the environment's keys are not used */
	pthread_mutex_t cred_mu; /* protects userpwd, token_hdr, cred_gen, cred_src */
	char *userpwd;   /* "KEY:SECRET"; NULL: anonymous (unsigned) */
	char *token_hdr; /* "x-amz-security-token: ..." or NULL */
	unsigned cred_gen; /* bumped when a re-read found other credentials */
	char cred_src[PATH_MAX + 64]; /* where the credentials came from, for messages */
	long connect_ms;
	long check_ms;   /* the mount-time check: all its attempts together */
	long lowspeed_s; /* abort a transfer slower than 1 B/s for this long */
	int retries;
	int verbose;
	/* requests sent (each retry counts), by method: GET HEAD PUT DELETE POST
	 * LIST (a GET of the bucket); CVFS_S3_STATS=1 prints them at the end */
	unsigned long long nreq[6]; /* atomic */
	pthread_mutex_t pool_mu; /* protects pool, npool */
	void *pool[48];
	int npool;
};

/* Settings read from options, the environment and ~/.aws. */
struct s3c_conf {
	const char *bucket, *region, *endpoint, *profile;
	long connect_ms, lowspeed_s, check_ms;
	int retries, verbose;
};

int s3c_new(const struct s3c_conf *conf, struct s3c **out, char **errmsg);
void s3c_free(struct s3c *c);

/* Runs one request (with retries).  0 on a 2xx answer, else -errno; rs is
 * filled in either case and must be released with s3_resp_free. */
int s3c_do(struct s3c *c, const struct s3_req *rq, struct s3_resp *rs);
void s3_resp_free(struct s3_resp *rs);
const char *s3_resp_hdr(const struct s3_resp *rs, const char *lname);

/* Whether the last failed s3c_do of this thread is worth trying again
 * later (connection error, timeout, 500/502/503/504, 429, a throttling or
 * transient S3 code) rather than refused for good (other 4xx, 501). */
int s3c_last_transient(void);
/* "GET 12 HEAD 3 ..." for CVFS_S3_STATS. */
void s3c_stats(struct s3c *c, char *buf, size_t sz);

/* What a failed attempt is worth: S3C_FINAL (never retried), S3C_TRANSIENT
 * (connection error, timeout, 500/502/503/504, RequestTimeout...) or
 * S3C_THROTTLED (429, SlowDown, Throttling...: a longer backoff). */
enum { S3C_FINAL, S3C_TRANSIENT, S3C_THROTTLED };
int s3c_retry_kind(int curl_rc, long status, const char *code);

/* The one mapping from transport/HTTP/S3 errors to errno. */
int s3_errno(int curl_rc, long status, const char *code);

/* URI-encodes s as SigV4 wants (unreserved kept; '/' kept when keep_slash). */
char *s3_uri_encode(const char *s, size_t len, int keep_slash);

/* ---- XML ---- */
struct s3_list_ent {
	char *name;   /* below the listed prefix, without a trailing '/' */
	int isdir;    /* a common prefix */
	uint64_t size;
	int64_t mtime_ns;
	char etag[48];
};
struct s3_list {
	struct s3_list_ent *e;
	size_t n, cap;
	int marker; /* the prefix itself exists as an object (a "dir/" marker) */
};
/* Lists prefix (delimiter '/' unless recursive), all pages.  For recursive
 * listings name is the key below prefix with its slashes. */
int s3c_list(struct s3c *c, const char *prefix, int recursive, struct s3_list *out);
void s3_list_free(struct s3_list *l);

/* The text of the first element named elem anywhere in an XML body
 * (malloc'd), or NULL. */
char *s3_xml_find(const char *body, size_t len, const char *elem);

int64_t s3_parse_iso8601(const char *s); /* ns since the epoch, or INT64_MIN */
int64_t s3_parse_http_date(const char *s);

#endif
