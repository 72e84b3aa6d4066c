/*
 * Fuzzes the STS response parser (sts_parse_response): any body, under the
 * statuses that lead to different paths (success, client error, retryable
 * server error).  The parser must never crash, leak or read out of bounds,
 * and whatever it accepts must be a complete set of credentials.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 403, 503 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct sts_credentials c;
		struct exchange_error err;

		memset(&c, 0, sizeof(c));
		memset(&err, 0, sizeof(err));
		if (sts_parse_response((const char *)data, size, statuses[i],
				       &c, &err) == 0) {
			if (!c.access_key_id || !c.secret_access_key ||
			    !c.session_token)
				abort();
			sts_credentials_clear(&c);
		} else {
			/* Error text is always a terminated string. */
			if (!memchr(err.code, '\0', sizeof(err.code)) ||
			    !memchr(err.message, '\0', sizeof(err.message)))
				abort();
		}
	}
	return 0;
}
