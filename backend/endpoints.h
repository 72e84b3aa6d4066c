/*
 * The table of AWS STS endpoints: which host serves a region in which
 * partition (commercial, China, GovCloud, ISO), and where FIPS endpoints
 * exist (docs/configuration.md, "Endpoints").  Pure functions, no configuration.
 */
#ifndef CREDFS_ENDPOINTS_H
#define CREDFS_ENDPOINTS_H

#include "compiler.h"

/* Whether s is a region name: lower-case letters, digits and inner
 * hyphens, 1 to 50 characters. */
int aws_region_valid(const char *s);

/* Whether STS has a FIPS endpoint in region (GovCloud's regular one is). */
int aws_fips_supported(const char *region);

/* The default STS endpoint of a region, regional, in its partition, FIPS
 * where asked and it exists (asked where it does not: the regular one;
 * the configuration refuses that combination before).  malloc'd; NULL with
 * errno EINVAL for a bad region or ENOMEM. */
char *aws_default_sts_endpoint(const char *region, int use_fips) WUR;

#endif
