/*
 * AWS Signature Version 4 over OpenSSL HMAC/SHA-256.  Proven byte for byte
 * against AWS's own test suite (tests/unit/test_sigv4.c).
 */
#ifndef CREDFS_SIGV4_H
#define CREDFS_SIGV4_H

#include <stddef.h>
#include "compiler.h"
#include "http.h"

struct sigv4_request {
	const char *method;		/* "POST" */
	const char *path;		/* raw path as sent, e.g. "/" */
	const char *query;		/* raw query without '?', or NULL */
	const struct http_header *headers;	/* must include host and x-amz-date */
	size_t n_headers;
	const void *payload;
	size_t payload_len;
	const char *region;
	const char *service;		/* "sts" */
	const char *amz_date;		/* "20150830T123600Z" */
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;	/* NULL, or sent as X-Amz-Security-Token
					 * (must then be among headers) */
};

struct sigv4_result {
	char *canonical_request;
	char *string_to_sign;
	char *authorization;		/* the Authorization header value */
};

/* Computes the signature.  Returns 0 and fills out (free with
 * sigv4_result_free), or -1. */
int sigv4_sign(const struct sigv4_request *req, struct sigv4_result *out) WUR;
void sigv4_result_free(struct sigv4_result *r);

/* "YYYYMMDDTHHMMSSZ" for t (seconds since the epoch). */
void sigv4_format_date(long long t, char out[static 17]);

#endif
