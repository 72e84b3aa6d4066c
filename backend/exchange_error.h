/*
 * The error a failed request to a token endpoint leaves behind, the same
 * for every cloud: shown in status and the log, never holding a secret.
 * Knows nothing of the configuration, so the wire clients (sts.h, oauth.h)
 * stay apart from it.
 */
#ifndef CREDFS_EXCHANGE_ERROR_H
#define CREDFS_EXCHANGE_ERROR_H

#include <stddef.h>
#include "compiler.h"

struct exchange_error {
	int http_status;		/* 0 if no response */
	char code[64];			/* the cloud's code, or "Transport", "TLS", "Malformed" */
	char message[512];		/* never holds a secret */
	int retryable;			/* worth another attempt */
	int throttled;			/* the endpoint asked us to slow down */
};

/* Fills err (code and a printf-style message; retryable and throttled 0). */
void exchange_error_set(struct exchange_error *err, const char *code,
			const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Copies src into dst (size bytes) as text fit for status and the log:
 * control characters become '?', and a src that does not fit is cut on a
 * UTF-8 character boundary, so valid UTF-8 stays valid. */
void exchange_copy_text(char *dst, size_t size, const char *src);

/* Whether an HTTP status or an error code means "slow down": HTTP 429 and
 * 503, and the throttling codes the AWS SDKs treat so ("Throttling",
 * "ThrottlingException", "RequestLimitExceeded", ...). */
int exchange_is_throttling(int http_status, const char *code);

#endif
