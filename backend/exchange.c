#include "exchange.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const struct kind_ops kind_aws;
extern const struct kind_ops kind_gcp;
extern const struct kind_ops kind_azure;

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

void exchange_copy_text(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (!size)
		return;
	if (n >= size) {
		n = size - 1;
		while (n && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[n] = '\0';
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
		return &kind_gcp;
	case CFG_CLOUD_AZURE:
		return &kind_azure;
	}
	return NULL;
}
