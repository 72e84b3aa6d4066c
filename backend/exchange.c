#include "exchange.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const struct kind_ops kind_aws;

void exchange_error_set(struct exchange_error *err, const char *code,
			const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

int exchange_is_throttling(int http_status, const char *code)
{
	static const char *const codes[] = {
		"Throttling", "ThrottlingException", "ThrottledException",
		"RequestThrottledException", "TooManyRequestsException",
		"RequestLimitExceeded", "SlowDown", "LimitExceededException",
		"RESOURCE_EXHAUSTED", "temporarily_unavailable",
	};

	if (http_status == 429 || http_status == 503)
		return 1;
	for (size_t i = 0; code && i < ARRAY_SIZE(codes); i++)
		if (!strcmp(code, codes[i]))
			return 1;
	return 0;
}

const struct kind_ops *kind_of(enum cfg_cloud cloud)
{
	switch (cloud) {
	case CFG_CLOUD_AWS:
		return &kind_aws;
	case CFG_CLOUD_GCP:
	case CFG_CLOUD_AZURE:
		break;
	}
	return NULL;
}
