#include "endpoints.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

int aws_region_valid(const char *s)
{
	size_t len = strlen(s);

	return len >= 1 && len <= 50 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == len &&
	       s[0] != '-' && s[len - 1] != '-';
}

/* Regions with an sts-fips endpoint, outside GovCloud (where the regular
 * endpoint is FIPS). */
static const char *const fips_regions[] = {
	"us-east-1", "us-east-2", "us-west-1", "us-west-2",
	"ca-central-1", "ca-west-1",
};

/* Partitions by region prefix; the first match wins, the last is the
 * commercial partition. */
static const struct {
	const char *prefix;
	const char *domain;
} partitions[] = {
	{ "cn-", "amazonaws.com.cn" },
	{ "us-isob-", "sc2s.sgov.gov" },
	{ "us-iso-", "c2s.ic.gov" },
	{ "", "amazonaws.com" },
};

int aws_fips_supported(const char *region)
{
	if (starts_with(region, "us-gov-"))
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(fips_regions); i++)
		if (!strcmp(region, fips_regions[i]))
			return 1;
	return 0;
}

char *aws_default_sts_endpoint(const char *region, int use_fips)
{
	const char *service = "sts", *domain = NULL;
	char *url;

	if (!region || !aws_region_valid(region)) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; !domain; i++)
		if (starts_with(region, partitions[i].prefix))
			domain = partitions[i].domain;
	if (use_fips && aws_fips_supported(region) &&
	    !starts_with(region, "us-gov-") && !strcmp(domain, "amazonaws.com"))
		service = "sts-fips";
	if (asprintf(&url, "https://%s.%s.%s", service, region, domain) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return url;
}
