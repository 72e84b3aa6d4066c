/*
 * Fuzzes Entra ID's answer parser (azure_parse_token_response) under the
 * statuses that lead to different paths (success, client error,
 * throttling, retryable server error).  It may not crash, leak or read out
 * of bounds; what it accepts must be a bearer token fit for a file and a
 * header, with an expiry in range; what it refuses leaves terminated text
 * and no token.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kind_azure.h"

#define NOW 1800000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 401, 429, 500 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct oauth_token t;
		struct exchange_error err;

		if (azure_parse_token_response((const char *)data, size,
					       statuses[i], NOW, &t, &err) == 0) {
			if (!t.access_token ||
			    !oauth_token_ok(t.access_token, strlen(t.access_token)) ||
			    t.expires < NOW + 1 || t.expires > NOW + OAUTH_LIFETIME_MAX)
				abort();
		} else if (t.access_token ||
			   !memchr(err.code, '\0', sizeof(err.code)) ||
			   !memchr(err.message, '\0', sizeof(err.message)) ||
			   !err.code[0] || !err.message[0]) {
			abort();
		}
		oauth_token_clear(&t);
	}
	return 0;
}
