/*
 * AWS Signature Version 4 (header signing, generic non-S3 rules).
 *
 * The canonical request follows botocore's SigV4Auth: the path has "." and
 * ".." segments and empty segments removed and each segment is URI-encoded
 * once as given; the query is decoded and re-encoded strictly, then sorted;
 * header names are lowercased, values trimmed with inner whitespace runs
 * folded to one space, repeated names joined with ',' in their order.  All
 * headers handed in are signed.
 */
#include "sigv4.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "buf.h"
#include "percent.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_TEXT_MAX (256 * 1024)	/* cap on each text we build */
#define SHA256_LEN 32
#define SHA256_HEX_LEN 64
#define AMZ_DATE_LEN 16
#define SCOPE_DATE_LEN 8

/* One query parameter, both halves already in canonical (encoded) form. */
struct query_param {
	char *key;
	char *value;
};

/* One header as handed in: lowercased name, canonical value, input order. */
struct canon_header {
	char *name;
	char *value;
	size_t order;
};

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Lowercase hex of n bytes into out, which must hold 2n + 1 bytes. */
static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* Hex SHA-256 of len bytes at data into out.  0 or -1. */
static int sha256_hex(const void *data, size_t len,
		      char out[static SHA256_HEX_LEN + 1])
{
	unsigned char md[SHA256_LEN];
	unsigned int md_len = 0;

	if (!EVP_Digest(data ? data : "", len, md, &md_len, EVP_sha256(),
			NULL) || md_len != SHA256_LEN)
		return -1;
	hex_encode(md, SHA256_LEN, out);
	return 0;
}

/* HMAC-SHA256(key, data) into out (32 bytes) with the fetched HMAC mac.
 * 0 or -1.  The context holding the key is freed (OpenSSL wipes it). */
static int hmac_sha256(EVP_MAC *mac, const void *key, size_t key_len,
		       const void *data, size_t data_len,
		       unsigned char out[static SHA256_LEN])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;
	size_t out_len = 0;
	int ret = -1;

	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx)
		return -1;
	if (!EVP_MAC_init(ctx, key, key_len, params))
		goto out;
	if (!EVP_MAC_update(ctx, data, data_len))
		goto out;
	if (!EVP_MAC_final(ctx, out, &out_len, SHA256_LEN) ||
	    out_len != SHA256_LEN)
		goto out;
	ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return ret;
}

/* Percent-decodes n bytes of s ("%XX" only; '+' and malformed escapes are
 * kept literally) and appends them strictly re-encoded to b. */
static int query_part_canonical(struct buf *b, const char *s, size_t n)
{
	struct buf raw;
	int r;

	buf_init(&raw, SIGV4_TEXT_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (c == '%' && i + 2 < n &&
		    (hi = hex_value((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hex_value((unsigned char)s[i + 2])) >= 0) {
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		r = buf_append(&raw, &c, 1);
		if (r)
			return r;
	}
	r = percent_encode(b, raw.data ? raw.data : "", raw.len);
	buf_free(&raw);
	return r;
}

/* Appends the canonical URI of path: dot and empty segments resolved away
 * (".." never climbs above the root), each segment encoded, a trailing '/'
 * kept when anything is left.  An empty result is "/". */
static int append_canonical_uri(struct buf *b, const char *path)
{
	const char **seg = NULL;
	size_t *seg_len = NULL;
	size_t n_seg = 0, max_seg = 1, len = strlen(path);
	int r = -ENOMEM;

	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			max_seg++;
	seg = calloc(max_seg, sizeof(*seg));
	seg_len = calloc(max_seg, sizeof(*seg_len));
	if (!seg || !seg_len)
		goto out;

	for (size_t i = 0; i <= len;) {
		size_t end = i;

		while (end < len && path[end] != '/')
			end++;
		size_t sl = end - i;

		if (sl == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (n_seg)
				n_seg--;
		} else if (sl && !(sl == 1 && path[i] == '.')) {
			seg[n_seg] = path + i;
			seg_len[n_seg] = sl;
			n_seg++;
		}
		i = end + 1;
	}

	r = buf_append_str(b, "/");
	for (size_t i = 0; !r && i < n_seg; i++) {
		if (i)
			r = buf_append_str(b, "/");
		if (!r)
			r = percent_encode(b, seg[i], seg_len[i]);
	}
	if (!r && n_seg && len && path[len - 1] == '/')
		r = buf_append_str(b, "/");
out:
	free(seg);
	free(seg_len);
	return r;
}

static int query_param_cmp(const void *a, const void *b)
{
	const struct query_param *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

/* Canonical form of one "k=v" (or "k") piece of n bytes into *p.  0 or
 * -errno; on failure nothing is left allocated. */
static int query_param_parse(struct query_param *p, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	size_t key_len = eq ? (size_t)(eq - s) : n;
	struct buf k, v;
	int r;

	buf_init(&k, SIGV4_TEXT_MAX);
	buf_init(&v, SIGV4_TEXT_MAX);
	r = query_part_canonical(&k, s, key_len);
	if (!r && eq)
		r = query_part_canonical(&v, eq + 1, n - key_len - 1);
	if (r)
		goto fail;
	p->key = buf_steal(&k);
	p->value = buf_steal(&v);
	if (!p->key || !p->value) {
		free(p->key);
		free(p->value);
		r = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	buf_free(&k);
	buf_free(&v);
	return r;
}

/* Appends the canonical query string of query (may be NULL or empty):
 * parameters split on '&' (empty pieces dropped), each side decoded and
 * re-encoded, sorted by key then value, joined as "k=v&k=v". */
static int append_canonical_query(struct buf *b, const char *query)
{
	struct query_param *params = NULL;
	size_t n = 0, max = 1, len;
	int r = 0;

	if (!query || !*query)
		return 0;
	len = strlen(query);
	for (size_t i = 0; i < len; i++)
		if (query[i] == '&')
			max++;
	params = calloc(max, sizeof(*params));
	if (!params)
		return -ENOMEM;

	for (size_t i = 0; i <= len;) {
		size_t end = i;

		while (end < len && query[end] != '&')
			end++;
		if (end > i) {
			r = query_param_parse(&params[n], query + i, end - i);
			if (r)
				goto out;
			n++;
		}
		i = end + 1;
	}
	qsort(params, n, sizeof(*params), query_param_cmp);
	for (size_t i = 0; !r && i < n; i++) {
		if (i)
			r = buf_append_str(b, "&");
		if (!r)
			r = buf_printf(b, "%s=%s", params[i].key,
				       params[i].value);
	}
out:
	for (size_t i = 0; i < n; i++) {
		free(params[i].key);
		free(params[i].value);
	}
	free(params);
	return r;
}

/* Canonical value of a header: leading and trailing whitespace removed and
 * every inner run of whitespace (folded lines included) made one space.
 * Returns a new string (wiped on free: it may carry the session token) or
 * NULL on allocation failure. */
static char *header_value_canonical(const char *v)
{
	size_t len = strlen(v), o = 0;
	char *out = malloc(len + 1);
	int pending_space = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (is_space(c)) {
			pending_space = o > 0;
			continue;
		}
		if (pending_space)
			out[o++] = ' ';
		pending_space = 0;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static int canon_header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void canon_headers_free(struct canon_header *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		secret_free(h[i].value);
	}
	free(h);
}

/* Builds the sorted canonical header list from req's headers.  Returns
 * NULL on allocation failure or an empty or whitespace-bearing name. */
static struct canon_header *canon_headers_build(const struct sigv4_request *req)
{
	struct canon_header *h = calloc(req->n_headers ? req->n_headers : 1,
					sizeof(*h));
	size_t i;

	if (!h)
		return NULL;
	for (i = 0; i < req->n_headers; i++) {
		const char *name = req->headers[i].name;
		const char *value = req->headers[i].value;
		size_t nl = name ? strlen(name) : 0;

		if (!nl || !value)
			goto fail;
		h[i].order = i;
		h[i].name = malloc(nl + 1);
		if (!h[i].name)
			goto fail;
		for (size_t j = 0; j <= nl; j++) {
			if (is_space((unsigned char)name[j]) || name[j] == ':')
				goto fail;
			h[i].name[j] = (char)ascii_lower((unsigned char)name[j]);
		}
		h[i].value = header_value_canonical(value);
		if (!h[i].value)
			goto fail;
	}
	qsort(h, req->n_headers, sizeof(*h), canon_header_cmp);
	return h;
fail:
	canon_headers_free(h, req->n_headers);	/* calloc'd: unset are NULL */
	return NULL;
}

/* The canonical value of header lname (lowercase) in h, first if repeated;
 * NULL if absent. */
static const char *canon_header_find(const struct canon_header *h, size_t n,
				     const char *lname)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(h[i].name, lname))
			return h[i].value;
	return NULL;
}

/* Appends "name:v1,v2\n" per distinct name to creq and "name;name" to
 * signed_headers. */
static int append_canonical_headers(struct buf *creq, struct buf *signed_hdrs,
				    const struct canon_header *h, size_t n)
{
	int r = 0;

	for (size_t i = 0; !r && i < n; i++) {
		int same = i && !strcmp(h[i].name, h[i - 1].name);

		if (same) {
			r = buf_printf(creq, ",%s", h[i].value);
			continue;
		}
		if (i)
			r = buf_append_str(creq, "\n");
		if (!r)
			r = buf_printf(creq, "%s:%s", h[i].name, h[i].value);
		if (!r && signed_hdrs->len)
			r = buf_append_str(signed_hdrs, ";");
		if (!r)
			r = buf_append_str(signed_hdrs, h[i].name);
	}
	if (!r && n)
		r = buf_append_str(creq, "\n");
	return r;
}

/* True if s has the shape "YYYYMMDDTHHMMSSZ". */
static int amz_date_valid(const char *s)
{
	if (!s || strlen(s) != AMZ_DATE_LEN)
		return 0;
	for (size_t i = 0; i < AMZ_DATE_LEN; i++) {
		if (i == 8) {
			if (s[i] != 'T')
				return 0;
		} else if (i == 15) {
			if (s[i] != 'Z')
				return 0;
		} else if (s[i] < '0' || s[i] > '9') {
			return 0;
		}
	}
	return 1;
}

/* True if s is non-empty and safe inside a credential scope. */
static int scope_part_valid(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (*s == '/' || is_space((unsigned char)*s) || *s == ',')
			return 0;
	return 1;
}

/* The contract checks: required fields present, host and x-amz-date
 * headers given (the latter equal to amz_date), and when a session token is used it is the value of the
 * X-Amz-Security-Token header. */
static int request_valid(const struct sigv4_request *req,
			 const struct canon_header *h)
{
	const char *tok, *date;

	if (!req->method || !*req->method || !req->path ||
	    !amz_date_valid(req->amz_date) || !scope_part_valid(req->region) ||
	    !scope_part_valid(req->service) ||
	    !scope_part_valid(req->access_key_id) ||
	    !req->secret_access_key || (!req->payload && req->payload_len))
		return 0;
	if (!canon_header_find(h, req->n_headers, "host"))
		return 0;
	date = canon_header_find(h, req->n_headers, "x-amz-date");
	if (!date || strcmp(date, req->amz_date))
		return 0;
	if (req->session_token) {
		tok = canon_header_find(h, req->n_headers,
					"x-amz-security-token");
		if (!tok || strcmp(tok, req->session_token))
			return 0;
	}
	return 1;
}

/* Hex signature of sts under the key derived from secret for scope
 * date/region/service.  Every derived key is wiped before returning. */
static int compute_signature(const struct sigv4_request *req,
			     const char *scope_date, const char *sts,
			     char out[static SHA256_HEX_LEN + 1])
{
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
	EVP_MAC *mac = NULL;
	struct buf secret;
	int ret = -1;

	buf_init(&secret, SIGV4_TEXT_MAX);
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		goto out;
	if (buf_append_str(&secret, "AWS4") ||
	    buf_append_str(&secret, req->secret_access_key))
		goto out;
	if (hmac_sha256(mac, secret.data, secret.len, scope_date,
			SCOPE_DATE_LEN, k1) ||
	    hmac_sha256(mac, k1, SHA256_LEN, req->region, strlen(req->region),
			k2) ||
	    hmac_sha256(mac, k2, SHA256_LEN, req->service,
			strlen(req->service), k1) ||
	    hmac_sha256(mac, k1, SHA256_LEN, SIGV4_TERMINATOR,
			strlen(SIGV4_TERMINATOR), k2) ||
	    hmac_sha256(mac, k2, SHA256_LEN, sts, strlen(sts), sig))
		goto out;
	hex_encode(sig, SHA256_LEN, out);
	ret = 0;
out:
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(sig, sizeof(sig));
	buf_free(&secret);
	EVP_MAC_free(mac);
	return ret;
}

/* Fills out from req.  On failure out is left all NULL. */
int sigv4_sign(const struct sigv4_request *req, struct sigv4_result *out)
{
	struct canon_header *h = NULL;
	struct buf creq, signed_hdrs, sts, authz;
	char scope_date[SCOPE_DATE_LEN + 1];
	char hash[SHA256_HEX_LEN + 1], sig[SHA256_HEX_LEN + 1];
	int ret = -1;

	out->canonical_request = NULL;
	out->string_to_sign = NULL;
	out->authorization = NULL;
	buf_init(&creq, SIGV4_TEXT_MAX);
	buf_init(&signed_hdrs, SIGV4_TEXT_MAX);
	buf_init(&sts, SIGV4_TEXT_MAX);
	buf_init(&authz, SIGV4_TEXT_MAX);
	sig[0] = '\0';

	if (!req->headers && req->n_headers)
		goto out;
	h = canon_headers_build(req);
	if (!h || !request_valid(req, h))
		goto out;
	memcpy(scope_date, req->amz_date, SCOPE_DATE_LEN);
	scope_date[SCOPE_DATE_LEN] = '\0';

	if (buf_printf(&creq, "%s\n", req->method) ||
	    append_canonical_uri(&creq, req->path) ||
	    buf_append_str(&creq, "\n") ||
	    append_canonical_query(&creq, req->query) ||
	    buf_append_str(&creq, "\n") ||
	    append_canonical_headers(&creq, &signed_hdrs, h, req->n_headers) ||
	    sha256_hex(req->payload, req->payload_len, hash) ||
	    buf_printf(&creq, "\n%s\n%s", signed_hdrs.data, hash))
		goto out;

	if (sha256_hex(creq.data, creq.len, hash) ||
	    buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/" SIGV4_TERMINATOR
		       "\n%s", req->amz_date, scope_date, req->region,
		       req->service, hash))
		goto out;

	if (compute_signature(req, scope_date, sts.data, sig) ||
	    buf_printf(&authz, SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/"
		       SIGV4_TERMINATOR ", SignedHeaders=%s, Signature=%s",
		       req->access_key_id, scope_date, req->region,
		       req->service, signed_hdrs.data, sig))
		goto out;

	out->canonical_request = buf_steal(&creq);
	out->string_to_sign = buf_steal(&sts);
	out->authorization = buf_steal(&authz);
	if (!out->canonical_request || !out->string_to_sign ||
	    !out->authorization) {
		sigv4_result_free(out);
		goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	buf_free(&authz);
	buf_free(&sts);
	buf_free(&signed_hdrs);
	buf_free(&creq);
	canon_headers_free(h, req->n_headers);
	return ret;
}

/* Wipes and frees every text (the canonical request may hold the session
 * token) and leaves r all NULL. */
void sigv4_result_free(struct sigv4_result *r)
{
	if (!r)
		return;
	secret_free(r->canonical_request);
	secret_free(r->string_to_sign);
	secret_free(r->authorization);
	r->canonical_request = NULL;
	r->string_to_sign = NULL;
	r->authorization = NULL;
}

/* Writes t as "YYYYMMDDTHHMMSSZ" in UTC.  A time gmtime_r cannot represent
 * (or a year past 9999) gives the epoch. */
void sigv4_format_date(long long t, char out[static 17])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((long long)tt != t || !gmtime_r(&tt, &tm) ||
	    strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) !=
		    AMZ_DATE_LEN) {
		memcpy(out, "19700101T000000Z", AMZ_DATE_LEN + 1);
	}
}
