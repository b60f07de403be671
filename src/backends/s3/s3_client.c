/*
 * The S3 client: credentials and region lookup, signed requests over a pool
 * of libcurl easy handles, retries, XML answers (libxml2).
 *
 * Signing: libcurl's CURLOPT_AWS_SIGV4 ("aws:amz:REGION:s3").  libcurl 7.88
 * signs S3 requests correctly only when the request carries an
 * x-amz-content-sha256 header; every request sends UNSIGNED-PAYLOAD (which
 * S3 accepts for every operation used here), so bodies are never hashed.
 * libcurl signs every header of CURLOPT_HTTPHEADER, including one given
 * only to remove a header of its own ("Expect:" would be signed as
 * "expect:" and never sent: SignatureDoesNotMatch on AWS), so the list
 * holds only headers that are sent; libcurl's own "Expect: 100-continue"
 * (sent, not signed) is kept, with CURLOPT_EXPECT_100_TIMEOUT_MS 0 so the
 * body follows at once.  Query strings are built with their parameters
 * already sorted by name and encoded once, the canonical form SigV4 wants
 * (libcurl 7.88 signs the query as given).  tests/s3/sigv4.sh checks every
 * kind of request against botocore's signer.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "backends/s3/s3_client.h"
#include "util/block.h"

#define BODY_MAX (64u << 20) /* an answer collected in memory is never bigger */

/* ---- errno ---- */

int s3_errno(int curl_rc, long status, const char *code)
{
	if (curl_rc != CURLE_OK) {
		switch (curl_rc) {
		case CURLE_OPERATION_TIMEDOUT:
			return -ETIMEDOUT;
		case CURLE_OUT_OF_MEMORY:
			return -ENOMEM;
		case CURLE_WRITE_ERROR: /* our sink failed (disk full...) */
			return -EIO;
		default:
			return -EIO;
		}
	}
	if (status >= 200 && status < 300)
		return 0;
	if (code && *code) {
		if (!strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchBucket"))
			return -ENOENT;
		if (!strcmp(code, "KeyTooLongError"))
			return -ENAMETOOLONG;
		if (!strcmp(code, "EntityTooLarge"))
			return -EFBIG;
		if (!strcmp(code, "AccessDenied") || !strcmp(code, "InvalidAccessKeyId") ||
		    !strcmp(code, "SignatureDoesNotMatch"))
			return -EACCES;
		if (!strcmp(code, "RequestTimeout"))
			return -ETIMEDOUT;
	}
	switch (status) {
	case 404:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 408:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* ---- small helpers ---- */

char *s3_uri_encode(const char *s, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	char *p = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
		    (keep_slash && ch == '/')) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = 0;
	return out;
}

static void set_err(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **errmsg, const char *fmt, ...)
{
	if (!errmsg)
		return;
	free(*errmsg);
	*errmsg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(errmsg, fmt, ap) < 0)
		*errmsg = NULL;
	va_end(ap);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* Reads key from [section] of an ini-style AWS file; malloc'd or NULL. */
static char *ini_get(const char *path, const char *section, const char *key)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return NULL;
	char line[4096];
	int in = 0;
	char *val = NULL;
	while (!val && fgets(line, sizeof(line), f)) {
		char *l = trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (e)
				*e = 0;
			in = strcmp(trim(l + 1), section) == 0;
			continue;
		}
		if (!in)
			continue;
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = 0;
		if (strcmp(trim(l), key) == 0)
			val = strdup(trim(eq + 1));
	}
	fclose(f);
	return val;
}

static char *home_file(const char *env, const char *rel)
{
	const char *e = getenv(env);
	if (e && *e)
		return strdup(e);
	const char *h = getenv("HOME");
	char *p = NULL;
	if (h && asprintf(&p, "%s/%s", h, rel) < 0)
		p = NULL;
	return p;
}

static const char *envs(const char *a)
{
	const char *v = getenv(a);
	return v && *v ? v : NULL;
}

static int ini_has_section(const char *path, const char *section)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return 0;
	char line[4096];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *l = trim(line);
		if (*l != '[')
			continue;
		char *e = strchr(l, ']');
		if (e)
			*e = 0;
		found = strcmp(trim(l + 1), section) == 0;
	}
	fclose(f);
	return found;
}

/* Looks the credentials up as the AWS tools do: the environment (unless a
 * profile was named by option), else the profile's section of the shared
 * credentials file, else its section of the config file; none at all means
 * anonymous requests (*userpwd NULL).  src says where, for messages. */
static int creds_load(const struct s3c *c, char **userpwd, char **token_hdr, char *src,
		      size_t srclen)
{
	char *ak = NULL, *sk = NULL, *tok = NULL;
	*userpwd = *token_hdr = NULL;
	if (!c->profile_forced && envs("AWS_ACCESS_KEY_ID") && envs("AWS_SECRET_ACCESS_KEY")) {
		ak = strdup(envs("AWS_ACCESS_KEY_ID"));
		sk = strdup(envs("AWS_SECRET_ACCESS_KEY"));
		tok = envs("AWS_SESSION_TOKEN") ? strdup(envs("AWS_SESSION_TOKEN")) : NULL;
		snprintf(src, srclen, "the environment (AWS_ACCESS_KEY_ID)");
	} else {
		const char *files[2] = {c->cred_file, c->conf_file};
		const char *secs[2] = {c->profile, c->conf_sec};
		for (int i = 0; i < 2 && !ak; i++) {
			ak = ini_get(files[i], secs[i], "aws_access_key_id");
			sk = ini_get(files[i], secs[i], "aws_secret_access_key");
			tok = ini_get(files[i], secs[i], "aws_session_token");
			if (!ak || !sk || !*ak || !*sk) {
				free(ak), free(sk), free(tok);
				ak = sk = tok = NULL;
			} else {
				snprintf(src, srclen, "%s, profile %s", files[i], c->profile);
			}
		}
		if (!ak)
			snprintf(src, srclen, "nowhere (anonymous requests)");
	}
	int rc = 0;
	if (ak && asprintf(userpwd, "%s:%s", ak, sk) < 0) {
		*userpwd = NULL;
		rc = -ENOMEM;
	}
	if (!rc && tok && *tok && asprintf(token_hdr, "x-amz-security-token: %s", tok) < 0) {
		*token_hdr = NULL;
		rc = -ENOMEM;
	}
	if (sk)
		explicit_bzero(sk, strlen(sk));
	free(ak), free(sk), free(tok);
	return rc;
}

static void secret_free(char *p)
{
	if (p)
		explicit_bzero(p, strlen(p));
	free(p);
}

/* After S3 refused the credentials of generation gen: looks them up again
 * (a rotated credentials file, as aws-vault or SSO tooling leave).  1 when
 * the request is worth sending again (other credentials now, found by this
 * call or by another thread's), else 0. */
static int creds_reload(struct s3c *c, unsigned gen)
{
	pthread_mutex_lock(&c->cred_mu);
	int again = c->cred_gen != gen;
	if (!again) {
		char *up = NULL, *th = NULL, src[sizeof(c->cred_src)];
		if (creds_load(c, &up, &th, src, sizeof(src)) == 0 && up &&
		    (!c->userpwd || strcmp(up, c->userpwd) ||
		     strcmp(th ? th : "", c->token_hdr ? c->token_hdr : ""))) {
			secret_free(c->userpwd);
			secret_free(c->token_hdr);
			c->userpwd = up;
			c->token_hdr = th;
			memcpy(c->cred_src, src, sizeof(src));
			c->cred_gen++;
			up = th = NULL;
			again = 1;
		}
		secret_free(up);
		secret_free(th);
	}
	pthread_mutex_unlock(&c->cred_mu);
	return again;
}

/* ---- the client ---- */

static void init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
}

int s3c_new(const struct s3c_conf *conf, struct s3c **out, char **errmsg)
{
	*out = NULL;
	if (!conf->bucket || !*conf->bucket) {
		set_err(errmsg, "s3 store: no bucket given (--bucket NAME)");
		return -EINVAL;
	}
	if (strchr(conf->bucket, '/')) {
		set_err(errmsg, "s3 store: bad bucket name '%s'", conf->bucket);
		return -EINVAL;
	}
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_once);

	struct s3c *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->pool_mu, NULL);
	pthread_mutex_init(&c->cred_mu, NULL);
	c->connect_ms = conf->connect_ms > 0 ? conf->connect_ms : 5000;
	c->check_ms = conf->check_ms > 0 ? conf->check_ms : 10000;
	c->lowspeed_s = conf->lowspeed_s > 0 ? conf->lowspeed_s : 30;
	c->retries = conf->retries >= 0 ? conf->retries : 4;
	c->verbose = conf->verbose;
	c->bucket = strdup(conf->bucket);

	const char *profile = conf->profile && *conf->profile ? conf->profile : envs("AWS_PROFILE");
	if (!profile)
		profile = envs("AWS_DEFAULT_PROFILE");
	c->profile_forced = conf->profile && *conf->profile;
	c->profile = strdup(profile ? profile : "default");
	c->cred_file = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	c->conf_file = home_file("AWS_CONFIG_FILE", ".aws/config");
	if (c->profile && strcmp(c->profile, "default") == 0)
		c->conf_sec = strdup("default");
	else if (!c->profile || asprintf(&c->conf_sec, "profile %s", c->profile) < 0)
		c->conf_sec = NULL;
	if (!c->profile || !c->conf_sec) {
		s3c_free(c);
		return -ENOMEM;
	}
	/* A profile asked for by name must exist (as the AWS CLI says). */
	if (profile && !(envs("AWS_ACCESS_KEY_ID") && envs("AWS_SECRET_ACCESS_KEY") &&
			 !c->profile_forced) &&
	    !ini_has_section(c->cred_file, c->profile) && !ini_has_section(c->conf_file, c->conf_sec)) {
		set_err(errmsg, "s3 store: the AWS profile '%s' is in neither %s nor %s", c->profile,
			c->cred_file ? c->cred_file : "~/.aws/credentials",
			c->conf_file ? c->conf_file : "~/.aws/config");
		s3c_free(c);
		return -EINVAL;
	}
	int rc = creds_load(c, &c->userpwd, &c->token_hdr, c->cred_src, sizeof(c->cred_src));
	if (rc) {
		s3c_free(c);
		return rc;
	}

	/* Region: option, environment, profile, default. */
	if (conf->region && *conf->region)
		c->region = strdup(conf->region);
	else if (envs("AWS_REGION"))
		c->region = strdup(envs("AWS_REGION"));
	else if (envs("AWS_DEFAULT_REGION"))
		c->region = strdup(envs("AWS_DEFAULT_REGION"));
	else
		c->region = ini_get(c->conf_file, c->conf_sec, "region");
	if (!c->region)
		c->region = strdup("us-east-1");

	const char *ep = conf->endpoint;
	if (!ep || !*ep)
		ep = envs("AWS_ENDPOINT_URL_S3");
	if (!ep)
		ep = envs("AWS_ENDPOINT_URL");
	if (ep) {
		if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)) {
			set_err(errmsg, "s3 store: bad endpoint URL '%s' (want http:// or https://)",
				ep);
			s3c_free(c);
			return -EINVAL;
		}
		c->base = strdup(ep);
		size_t l = strlen(c->base);
		while (l > 8 && c->base[l - 1] == '/')
			c->base[--l] = 0;
		c->path_style = 1;
	} else if (strchr(c->bucket, '.')) {
		/* Dotted names break the wildcard certificate: path style. */
		if (asprintf(&c->base, "https://s3.%s.amazonaws.com", c->region) < 0)
			c->base = NULL;
		c->path_style = 1;
	} else if (asprintf(&c->base, "https://%s.s3.%s.amazonaws.com", c->bucket, c->region) < 0) {
		c->base = NULL;
	}
	if (asprintf(&c->sigv4, "aws:amz:%s:s3", c->region) < 0)
		c->sigv4 = NULL;
	if (!c->base || !c->sigv4 || !c->bucket || !c->region) {
		s3c_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void s3c_free(struct s3c *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	pthread_mutex_destroy(&c->pool_mu);
	pthread_mutex_destroy(&c->cred_mu);
	free(c->profile);
	free(c->cred_file);
	free(c->conf_file);
	free(c->conf_sec);
	free(c->base);
	free(c->bucket);
	free(c->region);
	free(c->sigv4);
	secret_free(c->userpwd);
	secret_free(c->token_hdr);
	free(c);
}

#define S3C_RECV_BUF (256L << 10)

static CURL *pool_get(struct s3c *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->pool_mu);
	if (c->npool)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_mu);
	if (h)
		curl_easy_reset(h); /* keeps the connection and DNS caches */
	else
		h = curl_easy_init();
	return h;
}

static void pool_put(struct s3c *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_mu);
	if (c->npool < (int)(sizeof(c->pool) / sizeof(c->pool[0]))) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_mu);
	if (h)
		curl_easy_cleanup(h);
}

void s3_resp_free(struct s3_resp *rs)
{
	free(rs->body);
	for (size_t i = 0; i < rs->nhdrs; i++) {
		free(rs->hdrs[i].name);
		free(rs->hdrs[i].value);
	}
	free(rs->hdrs);
	memset(rs, 0, sizeof(*rs));
}

const char *s3_resp_hdr(const struct s3_resp *rs, const char *lname)
{
	for (size_t i = 0; i < rs->nhdrs; i++)
		if (strcmp(rs->hdrs[i].name, lname) == 0)
			return rs->hdrs[i].value;
	return NULL;
}

struct xfer {
	const struct s3_req *rq;
	struct s3_resp *rs;
	CURL *h;
	uint64_t sent;
	int sink_err;
};

static size_t on_header(char *buf, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = sz * n;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a 100 or a redirect): forget the old headers. */
		for (size_t i = 0; i < x->rs->nhdrs; i++) {
			free(x->rs->hdrs[i].name);
			free(x->rs->hdrs[i].value);
		}
		x->rs->nhdrs = 0;
		return len;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	struct s3_resp *rs = x->rs;
	if (rs->nhdrs == rs->hcap) {
		size_t nc = rs->hcap ? rs->hcap * 2 : 16;
		struct s3_hdr *t = realloc(rs->hdrs, nc * sizeof(*t));
		if (!t)
			return 0;
		rs->hdrs = t;
		rs->hcap = nc;
	}
	size_t nl = (size_t)(colon - buf);
	const char *v = colon + 1;
	size_t vl = len - nl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	char *name = strndup(buf, nl), *val = strndup(v, vl);
	if (!name || !val) {
		free(name);
		free(val);
		return 0;
	}
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	rs->hdrs[rs->nhdrs].name = name;
	rs->hdrs[rs->nhdrs].value = val;
	rs->nhdrs++;
	return len;
}

static int body_append(struct s3_resp *rs, const char *p, size_t len)
{
	if (rs->blen + len + 1 > rs->bcap) {
		size_t nc = rs->bcap ? rs->bcap : 4096;
		while (nc < rs->blen + len + 1)
			nc *= 2;
		if (nc > BODY_MAX + 1)
			return -1;
		char *t = realloc(rs->body, nc);
		if (!t)
			return -1;
		rs->body = t;
		rs->bcap = nc;
	}
	memcpy(rs->body + rs->blen, p, len);
	rs->blen += len;
	rs->body[rs->blen] = 0;
	return 0;
}

static size_t on_body(char *buf, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = sz * n;
	long code = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	const struct s3_req *rq = x->rq;
	int ok = code >= 200 && code < 300;
	if (ok && rq->sink_fd >= 0) {
		size_t done = 0;
		while (done < len) {
			ssize_t w = pwrite(rq->sink_fd, buf + done, len - done,
					   (off_t)(rq->sink_off + x->rs->got + done));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				x->sink_err = errno;
				return 0;
			}
			done += (size_t)w;
		}
		x->rs->got += len;
		return len;
	}
	if (ok && rq->sink_buf) {
		size_t room = rq->sink_cap > x->rs->got ? rq->sink_cap - (size_t)x->rs->got : 0;
		size_t k = len < room ? len : room;
		memcpy((char *)rq->sink_buf + x->rs->got, buf, k);
		x->rs->got += k;
		return len; /* more than asked for: dropped */
	}
	if (body_append(x->rs, buf, len))
		return 0;
	return len;
}

static size_t on_read(char *buf, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	const struct s3_req *rq = x->rq;
	size_t want = sz * n;
	uint64_t total = rq->body_fd >= 0 ? rq->body_len : rq->blen;
	if (x->sent >= total)
		return 0;
	if (want > total - x->sent)
		want = (size_t)(total - x->sent);
	if (rq->body_fd >= 0) {
		ssize_t r;
		do
			r = pread(rq->body_fd, buf, want, (off_t)(rq->body_off + x->sent));
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return CURL_READFUNC_ABORT;
		if (r == 0) { /* the file shrank: pad, the length was promised */
			memset(buf, 0, want);
			r = (ssize_t)want;
		}
		want = (size_t)r;
	} else {
		memcpy(buf, (const char *)rq->body + x->sent, want);
	}
	x->sent += want;
	return want;
}

/* S3 error codes worth another attempt whatever the status they came with
 * (S3 answers RequestTimeout with 400, a failed copy with 200). */
static const char *const throttle_codes[] = {
	"SlowDown", "Throttling", "ThrottlingException", "ThrottledException",
	"RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
	"RequestLimitExceeded", "BandwidthLimitExceeded", "ProvisionedThroughputExceededException",
	"EC2ThrottledException", "PriorRequestNotComplete", NULL};
static const char *const transient_codes[] = {
	"InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException",
	"TransactionInProgressException", NULL};

static int in_list(const char *const *l, const char *code)
{
	for (; code && *code && *l; l++)
		if (!strcmp(*l, code))
			return 1;
	return 0;
}

int s3c_retry_kind(int curl_rc, long status, const char *code)
{
	if (curl_rc != CURLE_OK) {
		switch (curl_rc) {
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_SEND_FAIL_REWIND:
			return S3C_TRANSIENT;
		default:
			return S3C_FINAL;
		}
	}
	if (status >= 200 && status < 300)
		return S3C_FINAL;
	if (status == 501) /* NotImplemented: it will not be, next time either */
		return S3C_FINAL;
	if (status == 429 || in_list(throttle_codes, code))
		return S3C_THROTTLED;
	if (in_list(transient_codes, code))
		return S3C_TRANSIENT;
	switch (status) {
	case 500:
	case 502:
	case 503:
	case 504:
		return S3C_TRANSIENT;
	default: /* 400, 403, 404, 409, 412, 416...: the same answer again */
		return S3C_FINAL;
	}
}

/* S3 refused the credentials themselves (not what they may do): worth
 * looking them up again once. */
static int creds_refused(long status, const char *code)
{
	static const char *const codes[] = {"InvalidAccessKeyId", "SignatureDoesNotMatch",
					    "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
					    "ExpiredTokenException", "InvalidClientTokenId", NULL};
	return (status == 400 || status == 403) && in_list(codes, code);
}

static void parse_error_body(struct s3_resp *rs)
{
	if (!rs->body || !rs->blen)
		return;
	xmlDocPtr doc = xmlReadMemory(rs->body, (int)rs->blen, NULL, NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (root && !xmlStrcmp(root->name, (const xmlChar *)"Error")) {
		for (xmlNodePtr n = root->children; n; n = n->next) {
			if (n->type != XML_ELEMENT_NODE)
				continue;
			xmlChar *t = xmlNodeGetContent(n);
			if (!t)
				continue;
			if (!xmlStrcmp(n->name, (const xmlChar *)"Code"))
				snprintf(rs->code, sizeof(rs->code), "%s", (const char *)t);
			else if (!xmlStrcmp(n->name, (const xmlChar *)"Message"))
				snprintf(rs->msg, sizeof(rs->msg), "%s", (const char *)t);
			xmlFree(t);
		}
	}
	xmlFreeDoc(doc);
}

static char *make_url(struct s3c *c, const char *key, const char *query)
{
	char *ek = key ? s3_uri_encode(key, strlen(key), 1) : strdup("");
	if (!ek)
		return NULL;
	char *url = NULL;
	int r;
	if (c->path_style)
		r = asprintf(&url, "%s/%s%s%s%s%s", c->base, c->bucket, key ? "/" : "", ek,
			     query ? "?" : "", query ? query : "");
	else
		r = asprintf(&url, "%s/%s%s%s", c->base, ek, query ? "?" : "", query ? query : "");
	free(ek);
	return r < 0 ? NULL : url;
}

static __thread int tl_transient;

int s3c_last_transient(void)
{
	return tl_transient;
}

static const char *const stat_names[6] = {"GET", "HEAD", "PUT", "DELETE", "POST", "LIST"};

void s3c_stats(struct s3c *c, char *buf, size_t sz)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < 6 && o < sz; i++) {
		int w = snprintf(buf + o, sz - o, "%s%s %llu", i ? " " : "", stat_names[i],
				 __atomic_load_n(&c->nreq[i], __ATOMIC_RELAXED));
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static int stat_slot(const struct s3_req *rq)
{
	if (!rq->key && !strcmp(rq->method, "GET"))
		return 5;
	for (int i = 0; i < 5; i++)
		if (!strcmp(rq->method, stat_names[i]))
			return i;
	return 4;
}

/* A rewind of the body (libcurl resends it on a connection that died as it
 * was reused, or after an early answer): on_read starts again from there. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;
	const struct s3_req *rq = x->rq;
	uint64_t total = rq->body_fd >= 0 ? rq->body_len : rq->blen;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > total)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A uniform number below n, per thread (xorshift64). */
static unsigned long jitter(unsigned long n)
{
	static __thread uint64_t st;
	if (!st) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		st = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&st ^ (uint64_t)ts.tv_sec;
		st |= 1;
	}
	st ^= st << 13;
	st ^= st >> 7;
	st ^= st << 17;
	return n ? (unsigned long)(st % n) : 0;
}

/* The wait before attempt number attempt+1: exponential from 100 ms (500 ms
 * when throttled), capped at 10 s, half of it random ("equal jitter"), so
 * many clients that failed together do not come back together. */
static long backoff_ms(int attempt, int kind)
{
	long base = kind == S3C_THROTTLED ? 500 : 100;
	long cap = 10000;
	long d = attempt >= 10 ? cap : base << attempt;
	if (d > cap)
		d = cap;
	return d / 2 + (long)jitter((unsigned long)(d / 2) + 1);
}

int s3c_do(struct s3c *c, const struct s3_req *rq, struct s3_resp *rs)
{
	cvfs_about_to_block(); /* a network round trip: see util/block.h */
	tl_transient = 0;
	memset(rs, 0, sizeof(*rs));
	char *url = make_url(c, rq->key, rq->query);
	if (!url)
		return -ENOMEM;
	/* Only headers that are sent: libcurl signs every one of this list. */
	struct curl_slist *hl = NULL;
	hl = curl_slist_append(hl, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	for (size_t i = 0; rq->hdrs && rq->hdrs[i]; i++)
		hl = curl_slist_append(hl, rq->hdrs[i]);
	char range[64];
	if (rq->range_len) {
		snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, rq->range_off,
			 rq->range_off + rq->range_len - 1);
		hl = curl_slist_append(hl, range);
	}
	int is_put = !strcmp(rq->method, "PUT"), is_post = !strcmp(rq->method, "POST");
	int is_head = !strcmp(rq->method, "HEAD");
	uint64_t blen = rq->body_fd >= 0 ? rq->body_len : rq->blen;
	int rc = -EIO, kind = S3C_FINAL;
	int tries = rq->no_retry ? 0 : c->retries;
	int reloaded = 0; /* credentials looked up again (once per call) */
	int64_t deadline = rq->total_ms > 0 ? now_ms() + rq->total_ms : 0;
	for (int attempt = 0;; attempt++) {
		CURL *h = pool_get(c);
		if (!h) {
			rc = -ENOMEM;
			break;
		}
		/* the credentials of this attempt (another thread may renew them) */
		pthread_mutex_lock(&c->cred_mu);
		char *userpwd = c->userpwd ? strdup(c->userpwd) : NULL;
		char *tok = c->token_hdr ? strdup(c->token_hdr) : NULL;
		unsigned gen = c->cred_gen;
		int anon = !c->userpwd, oom = (c->userpwd && !userpwd) || (c->token_hdr && !tok);
		pthread_mutex_unlock(&c->cred_mu);
		struct curl_slist tokl = {.data = tok, .next = hl};
		if (oom) {
			secret_free(userpwd);
			free(tok);
			pool_put(c, h);
			rc = -ENOMEM;
			break;
		}
		/* a fresh response for every attempt */
		s3_resp_free(rs);
		struct xfer x = {.rq = rq, .rs = rs, .h = h};
		char errbuf[CURL_ERROR_SIZE] = "";
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, tok ? &tokl : hl);
		curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		long conn_ms = c->connect_ms;
		if (deadline) {
			long left = (long)(deadline - now_ms());
			if (left < 1)
				left = 1;
			if (conn_ms > left)
				conn_ms = left;
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
		}
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, conn_ms);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->lowspeed_s);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
		/* one receive buffer size for every request (a handle keeps its
		 * buffer): 16 KiB, the default, is a recv(2) and a callback per
		 * 16 KiB of a window being read ahead */
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, S3C_RECV_BUF);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
		if (c->verbose)
			curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
		if (userpwd) {
			curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
			curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
		}
		if (is_put || is_post) {
			if (is_put) {
				curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
				curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)blen);
			} else {
				curl_easy_setopt(h, CURLOPT_POST, 1L);
				curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
			}
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, &x);
			curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
			/* libcurl's own Expect: 100-continue is sent (unsigned), but
			 * the body follows without waiting for the 100 */
			curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
		} else if (is_head) {
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		} else if (strcmp(rq->method, "GET") != 0) {
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
		}
		__atomic_add_fetch(&c->nreq[stat_slot(rq)], 1, __ATOMIC_RELAXED);
		CURLcode cr = curl_easy_perform(h);
		/* libcurl copied it; the easy handle keeps its copy until the reset
		 * of its next use: wipe ours now */
		secret_free(userpwd);
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		rs->status = status;
		rs->curl_rc = (int)cr;
		if (cr != CURLE_OK) {
			/* curl's detail ("Operation timed out after 10001
			 * milliseconds with 0 bytes received") when it has one */
			snprintf(rs->msg, sizeof(rs->msg), "%s",
				 errbuf[0] ? errbuf : curl_easy_strerror(cr));
			if (x.sink_err)
				snprintf(rs->msg, sizeof(rs->msg), "local cache: %s",
					 strerror(x.sink_err));
			/* a broken connection is not worth keeping */
			curl_easy_cleanup(h);
		} else {
			pool_put(c, h);
		}
		free(tok);
		if (cr == CURLE_OK && status >= 300)
			parse_error_body(rs);
		/* CopyObject may answer 200 with an error in the body. */
		if (cr == CURLE_OK && status == 200 && rs->body && !rq->sink_buf && rq->sink_fd < 0 &&
		    strstr(rs->body, "<Error>")) {
			parse_error_body(rs);
			if (rs->code[0]) {
				rs->status = status = 500;
			}
		}
		if (x.sink_err) {
			rc = -x.sink_err;
			kind = S3C_FINAL;
			break;
		}
		rc = s3_errno((int)cr, status, rs->code);
		kind = rc ? s3c_retry_kind((int)cr, status, rs->code) : S3C_FINAL;
		if (rc && !anon && !reloaded && creds_refused(status, rs->code)) {
			/* once per call, not counted as a retry */
			reloaded = 1;
			if (creds_reload(c, gen)) {
				attempt--;
				continue;
			}
		}
		if (rc == 0 || attempt >= tries || kind == S3C_FINAL)
			break;
		long ms = backoff_ms(attempt, kind);
		if (deadline && now_ms() + ms >= deadline)
			break;
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	tl_transient = rc && kind != S3C_FINAL;
	curl_slist_free_all(hl);
	free(url);
	return rc;
}

/* ---- dates ---- */

int64_t s3_parse_iso8601(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int y, mo, d, h, mi;
	double sec;
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6)
		return INT64_MIN;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = 0;
	time_t t = timegm(&tm);
	int64_t ns = (int64_t)t * 1000000000 + (int64_t)(sec * 1e9 + 0.5);
	/* a zone offset: +hh:mm / -hh:mm after the seconds */
	const char *z = strpbrk(s + 19, "Z+-");
	if (z && (*z == '+' || *z == '-')) {
		int oh = 0, om = 0;
		if (sscanf(z + 1, "%d:%d", &oh, &om) >= 1) {
			int64_t off = ((int64_t)oh * 3600 + om * 60) * 1000000000;
			ns += *z == '+' ? -off : off;
		}
	}
	return ns;
}

int64_t s3_parse_http_date(const char *s)
{
	if (!s)
		return INT64_MIN;
	time_t t = curl_getdate(s, NULL);
	return t == (time_t)-1 ? INT64_MIN : (int64_t)t * 1000000000;
}

/* ---- XML ---- */

static xmlNodePtr find_elem(xmlNodePtr n, const char *name)
{
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (!xmlStrcmp(n->name, (const xmlChar *)name))
			return n;
		xmlNodePtr k = find_elem(n->children, name);
		if (k)
			return k;
	}
	return NULL;
}

char *s3_xml_find(const char *body, size_t len, const char *elem)
{
	if (!body || !len)
		return NULL;
	xmlDocPtr doc = xmlReadMemory(body, (int)len, NULL, NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return NULL;
	char *out = NULL;
	xmlNodePtr n = find_elem(xmlDocGetRootElement(doc), elem);
	if (n) {
		xmlChar *t = xmlNodeGetContent(n);
		if (t) {
			out = strdup((const char *)t);
			xmlFree(t);
		}
	}
	xmlFreeDoc(doc);
	return out;
}

/* ---- ListObjectsV2 ---- */

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr k = n ? n->children : NULL; k; k = k->next)
		if (k->type == XML_ELEMENT_NODE && !xmlStrcmp(k->name, (const xmlChar *)name))
			return k;
	return NULL;
}

static char *text(xmlNodePtr n)
{
	if (!n)
		return NULL;
	xmlChar *t = xmlNodeGetContent(n);
	if (!t)
		return NULL;
	char *s = strdup((const char *)t);
	xmlFree(t);
	return s;
}

static int list_add(struct s3_list *l, const char *name, size_t nlen, int isdir)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct s3_list_ent *t = realloc(l->e, nc * sizeof(*t));
		if (!t)
			return -ENOMEM;
		l->e = t;
		l->cap = nc;
	}
	struct s3_list_ent *e = &l->e[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, nlen);
	if (!e->name)
		return -ENOMEM;
	e->isdir = isdir;
	l->n++;
	return 0;
}

void s3_list_free(struct s3_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	memset(l, 0, sizeof(*l));
}

int s3c_list(struct s3c *c, const char *prefix, int recursive, struct s3_list *out)
{
	memset(out, 0, sizeof(*out));
	size_t plen = strlen(prefix);
	char *eprefix = s3_uri_encode(prefix, plen, 0);
	if (!eprefix)
		return -ENOMEM;
	char *token = NULL;
	int rc = 0;
	for (;;) {
		char *etok = token ? s3_uri_encode(token, strlen(token), 0) : NULL;
		char *q = NULL;
		/* parameters in name order: the canonical query of SigV4 */
		int r = asprintf(&q, "%s%s%s%slist-type=2&prefix=%s", etok ? "continuation-token=" : "",
				 etok ? etok : "", etok ? "&" : "", recursive ? "" : "delimiter=%2F&",
				 eprefix);
		free(etok);
		free(token);
		token = NULL;
		if (r < 0) {
			rc = -ENOMEM;
			break;
		}
		struct s3_req rq = S3_REQ_INIT;
		rq.method = "GET";
		rq.query = q;
		struct s3_resp rs;
		rc = s3c_do(c, &rq, &rs);
		free(q);
		if (rc) {
			s3_resp_free(&rs);
			break;
		}
		xmlDocPtr doc = rs.body ? xmlReadMemory(rs.body, (int)rs.blen, NULL, NULL,
							XML_PARSE_NONET | XML_PARSE_NOERROR |
								XML_PARSE_NOWARNING | XML_PARSE_HUGE)
					: NULL;
		s3_resp_free(&rs);
		xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!root) {
			if (doc)
				xmlFreeDoc(doc);
			rc = -EIO;
			break;
		}
		for (xmlNodePtr n = root->children; n && !rc; n = n->next) {
			if (n->type != XML_ELEMENT_NODE)
				continue;
			if (!xmlStrcmp(n->name, (const xmlChar *)"Contents")) {
				char *key = text(child(n, "Key"));
				if (!key || strncmp(key, prefix, plen) != 0) {
					free(key);
					continue;
				}
				if (key[plen] == 0) {
					out->marker = 1;
					free(key);
					continue;
				}
				rc = list_add(out, key + plen, strlen(key + plen), 0);
				free(key);
				if (rc)
					break;
				struct s3_list_ent *e = &out->e[out->n - 1];
				char *sz = text(child(n, "Size"));
				char *lm = text(child(n, "LastModified"));
				char *et = text(child(n, "ETag"));
				e->size = sz ? strtoull(sz, NULL, 10) : 0;
				e->mtime_ns = lm ? s3_parse_iso8601(lm) : INT64_MIN;
				if (et)
					snprintf(e->etag, sizeof(e->etag), "%s", et);
				free(sz), free(lm), free(et);
			} else if (!xmlStrcmp(n->name, (const xmlChar *)"CommonPrefixes")) {
				char *p = text(child(n, "Prefix"));
				size_t l = p ? strlen(p) : 0;
				if (p && l > plen + 1 && strncmp(p, prefix, plen) == 0 && p[l - 1] == '/')
					rc = list_add(out, p + plen, l - plen - 1, 1);
				free(p);
			}
		}
		char *trunc = text(child(root, "IsTruncated"));
		int more = trunc && !strcmp(trunc, "true");
		free(trunc);
		if (more)
			token = text(child(root, "NextContinuationToken"));
		xmlFreeDoc(doc);
		if (rc || !more)
			break;
		if (!token) {
			rc = -EIO;
			break;
		}
	}
	free(token);
	free(eprefix);
	if (rc)
		s3_list_free(out);
	return rc;
}
