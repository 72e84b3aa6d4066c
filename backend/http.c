#include "http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

/*
 * Easy handles are kept in a small free list so that their connection
 * caches (and TLS sessions) survive between calls.  Handles are never
 * curl_easy_reset(): every option that matters is set again on each use.
 */
#define HTTP_POOL_MAX 8

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[HTTP_POOL_MAX];	/* pool_lock */
static size_t pool_len;			/* pool_lock */

/* libcurl's built-in CA locations, restored when a request has no ca_file
 * (setting NULL would drop them instead).  Written once by
 * http_global_init(). */
static char *default_cainfo;
static char *default_capath;

static http_transport_fn transport;
/* Bumped by http_abort_all(): transfers started before end at once. */
static unsigned long abort_epoch;

/* libcurl's progress callback: a non-zero answer aborts the transfer. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	const unsigned long *started = user;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return __atomic_load_n(&abort_epoch, __ATOMIC_ACQUIRE) != *started;
}

void http_abort_all(void)
{
	__atomic_add_fetch(&abort_epoch, 1, __ATOMIC_ACQ_REL);
}

int http_global_init(void)
{
	CURL *c;
	char *info = NULL;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	c = curl_easy_init();
	if (!c)
		goto fail;
	if (curl_easy_getinfo(c, CURLINFO_CAINFO, &info) == CURLE_OK && info) {
		default_cainfo = strdup(info);
		if (!default_cainfo)
			goto fail_handle;
	}
	info = NULL;
	if (curl_easy_getinfo(c, CURLINFO_CAPATH, &info) == CURLE_OK && info) {
		default_capath = strdup(info);
		if (!default_capath)
			goto fail_handle;
	}
	curl_easy_cleanup(c);
	return 0;

fail_handle:
	curl_easy_cleanup(c);
fail:
	free(default_cainfo);
	free(default_capath);
	default_cainfo = NULL;
	default_capath = NULL;
	curl_global_cleanup();
	return -1;
}

void http_global_cleanup(void)
{
	pthread_mutex_lock(&pool_lock);
	while (pool_len)
		curl_easy_cleanup(pool[--pool_len]);
	pthread_mutex_unlock(&pool_lock);
	free(default_cainfo);
	free(default_capath);
	default_cainfo = NULL;
	default_capath = NULL;
	curl_global_cleanup();
}

/* A handle from the pool, or a new one; NULL when out of memory. */
static CURL *handle_take(void)
{
	CURL *c = NULL;

	pthread_mutex_lock(&pool_lock);
	if (pool_len)
		c = pool[--pool_len];
	pthread_mutex_unlock(&pool_lock);
	return c ? c : curl_easy_init();
}

/* Back to the pool, or cleaned up when the pool is full. */
static void handle_give(CURL *c)
{
	pthread_mutex_lock(&pool_lock);
	if (pool_len < HTTP_POOL_MAX) {
		pool[pool_len++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

struct sink {
	struct buf *body;
	int too_big;
	unsigned long epoch;	/* abort_epoch when the transfer started */
};

/* Appends to the capped body; returning 0 makes curl fail the transfer
 * with CURLE_WRITE_ERROR, which http_post reports as HTTP_ERR_TOO_BIG. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct sink *s = user;
	size_t n = size * nmemb;

	if (buf_append(s->body, data, n)) {
		s->too_big = 1;
		return 0;
	}
	return n;
}

static int map_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
		return HTTP_ERR_TLS;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_FAILED_INIT:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
		return HTTP_ERR_INTERNAL;
	default:
		/* Connect, resolve, reset, timeout, empty reply, proxy... */
		return HTTP_ERR_TRANSPORT;
	}
}

/* "Name: value" lines for curl, plus "Expect:" so a large body (a JWT is
 * often over 1 KiB) is not held back waiting for 100-continue.  The list
 * may carry a session token: it is wiped by headers_free. */
static struct curl_slist *headers_build(const struct http_request *req)
{
	struct curl_slist *list = NULL, *l;
	struct buf line;

	for (size_t i = 0; i < req->n_headers; i++) {
		const char *v = req->headers[i].value;

		buf_init(&line, 64 * 1024);
		/* "Name:" alone would make curl drop the header; "Name;"
		 * sends it empty. */
		if (v[0] ? buf_printf(&line, "%s: %s", req->headers[i].name, v) :
			   buf_printf(&line, "%s;", req->headers[i].name))
			goto fail;
		l = curl_slist_append(list, line.data);
		buf_free(&line);
		if (!l)
			goto fail;
		list = l;
	}
	l = curl_slist_append(list, "Expect:");
	if (!l)
		goto fail;
	return l;

fail:
	for (l = list; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(list);
	return NULL;
}

static void headers_free(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

/* Sets every option a request depends on; handles come from the pool with
 * the previous request's options still in place. */
static CURLcode set_options(CURL *c, const struct http_request *req,
			    struct curl_slist *headers, struct sink *sink,
			    char *curl_err)
{
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                    \
	do {                                                             \
		if (rc == CURLE_OK)                                      \
			rc = curl_easy_setopt(c, opt, val);              \
	} while (0)
	SET(CURLOPT_VERBOSE, 0L);	/* never: it would log headers */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, &sink->epoch);
	SET(CURLOPT_ERRORBUFFER, curl_err);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	/* Redirects are never followed.  libcurl refuses an empty list, so
	 * name the one that would be least harmful. */
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXREDIRS, 0L);
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_CAINFO, req->ca_file ? req->ca_file : default_cainfo);
	SET(CURLOPT_CAPATH, req->ca_file ? NULL : default_capath);
	SET(CURLOPT_CONNECTTIMEOUT_MS,
	    req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 0L);
	SET(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
	SET(CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)(req->body ? req->body_len : 0));
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, sink);
#undef SET
	return rc;
}

/* Leaves no pointer to this call's stack or headers in a pooled handle. */
static void clear_options(CURL *c)
{
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, NULL);
}

static int curl_post(const struct http_request *req,
		     struct http_response *resp, char *errbuf, size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE];
	struct curl_slist *headers;
	struct sink sink = {
		.body = &resp->body,
		.epoch = __atomic_load_n(&abort_epoch, __ATOMIC_ACQUIRE),
	};
	CURLcode rc;
	CURL *c;
	long status = 0;
	int ret = HTTP_ERR_INTERNAL;

	curl_err[0] = '\0';
	headers = headers_build(req);
	if (!headers) {
		snprintf(errbuf, errlen, "out of memory");
		return HTTP_ERR_INTERNAL;
	}
	c = handle_take();
	if (!c) {
		snprintf(errbuf, errlen, "cannot create a curl handle");
		goto out_headers;
	}
	rc = set_options(c, req, headers, &sink, curl_err);
	if (rc != CURLE_OK) {
		snprintf(errbuf, errlen, "curl option: %s",
			 curl_easy_strerror(rc));
		goto out_handle;
	}
	rc = curl_easy_perform(c);
	if (sink.too_big) {
		snprintf(errbuf, errlen, "response larger than %d KiB",
			 HTTP_BODY_MAX / 1024);
		ret = HTTP_ERR_TOO_BIG;
		goto out_handle;
	}
	if (rc != CURLE_OK) {
		snprintf(errbuf, errlen, "%s",
			 curl_err[0] ? curl_err : curl_easy_strerror(rc));
		ret = map_curl_error(rc);
		goto out_handle;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status;
	ret = HTTP_OK;

out_handle:
	clear_options(c);
	handle_give(c);
out_headers:
	headers_free(headers);
	if (ret != HTTP_OK)
		http_response_free(resp);
	return ret;
}

int http_post(const struct http_request *req, struct http_response *resp,
	      char *errbuf, size_t errlen)
{
	http_transport_fn fn = __atomic_load_n(&transport, __ATOMIC_ACQUIRE);

	resp->status = 0;
	buf_init(&resp->body, HTTP_BODY_MAX);
	if (errlen)
		errbuf[0] = '\0';
	if (fn)
		return fn(req, resp, errbuf, errlen);
	return curl_post(req, resp, errbuf, errlen);
}

void http_response_free(struct http_response *resp)
{
	buf_free(&resp->body);
	resp->status = 0;
}

void http_set_transport(http_transport_fn fn)
{
	__atomic_store_n(&transport, fn, __ATOMIC_RELEASE);
}
