/*
 * The engine's only way onto the network: an HTTP POST over libcurl.
 * TLS peer and host verification are always on for https; plain http is
 * the caller's decision (the config allows it only on loopback).  Easy
 * handles are pooled so connections to STS are reused.  Response bodies are
 * capped.  Tests may replace the transport with http_set_transport().
 */
#ifndef CREDFS_HTTP_H
#define CREDFS_HTTP_H

#include <stddef.h>
#include "buf.h"
#include "compiler.h"

#define HTTP_BODY_MAX (256 * 1024)

struct http_header {
	const char *name;
	const char *value;
};

struct http_request {
	const char *url;
	const struct http_header *headers;
	size_t n_headers;
	const char *body;
	size_t body_len;
	const char *ca_file;		/* NULL: system CAs */
	long connect_timeout_ms;
	long timeout_ms;		/* whole request */
};

struct http_response {
	long status;			/* HTTP status, 0 if none was received */
	struct buf body;		/* capped at HTTP_BODY_MAX */
};

enum http_result {
	HTTP_OK = 0,			/* a response arrived (any status) */
	HTTP_ERR_TRANSPORT = -1,	/* connect, reset, timeout: retryable */
	HTTP_ERR_TLS = -2,		/* certificate or handshake: not retryable */
	HTTP_ERR_TOO_BIG = -3,		/* body over the cap */
	HTTP_ERR_INTERNAL = -4,
};

int http_global_init(void) WUR;
void http_global_cleanup(void);

/* Sends req.  On HTTP_OK *resp holds status and body (free with
 * http_response_free); otherwise errbuf says what failed and resp is empty. */
int http_post(const struct http_request *req, struct http_response *resp,
	      char *errbuf, size_t errlen) WUR;
void http_response_free(struct http_response *resp);

/* Ends every transfer in progress and refuses new ones (shutdown). */
void http_abort_all(void);

typedef int (*http_transport_fn)(const struct http_request *req,
				 struct http_response *resp, char *errbuf,
				 size_t errlen);
/* Tests: route http_post through fn (NULL restores libcurl). */
void http_set_transport(http_transport_fn fn);

#endif
