/*
 * Fuzzes the Google Cloud answer parsers: the token exchange's
 * (gcp_parse_token_response) and generateAccessToken's
 * (gcp_parse_iam_response), under the statuses that lead to different
 * paths (success, client error, throttling, retryable server error).
 * Neither may crash, leak or read out of bounds; what one accepts must be
 * a bearer token fit for a file and a header, with an expiry in range;
 * what one refuses leaves terminated text and no token.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kind_gcp.h"

#define NOW 1800000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, const struct oauth_token *t,
		  const struct exchange_error *err)
{
	if (rc == 0) {
		if (!t->access_token ||
		    !oauth_token_ok(t->access_token, strlen(t->access_token)) ||
		    t->expires > NOW + OAUTH_LIFETIME_MAX)
			abort();
		return;
	}
	if (t->access_token || !memchr(err->code, '\0', sizeof(err->code)) ||
	    !memchr(err->message, '\0', sizeof(err->message)) ||
	    !err->code[0] || !err->message[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 400, 429, 503 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct oauth_token t;
		struct exchange_error err;
		int rc;

		rc = gcp_parse_token_response((const char *)data, size,
					      statuses[i], NOW, &t, &err);
		check(rc, &t, &err);
		oauth_token_clear(&t);
		rc = gcp_parse_iam_response((const char *)data, size,
					    statuses[i], NOW, &t, &err);
		check(rc, &t, &err);
		oauth_token_clear(&t);
	}
	return 0;
}
