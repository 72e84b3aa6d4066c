/*
 * The Google Cloud kind (workload identity federation): the RFC 8693
 * token exchange at token_url with the role's token, then, when the role
 * impersonates a service account, generateAccessToken with the exchange's
 * token as the bearer (a second request, the engine's step 1).  Requests
 * are built as Google's client libraries build them.  The parts are
 * exposed for the unit tests and the fuzzer.
 */
#ifndef CREDFS_KIND_GCP_H
#define CREDFS_KIND_GCP_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "config.h"
#include "exchange.h"
#include "oauth.h"

extern const struct kind_ops kind_gcp;

#define GCP_SA_LIFETIME "3600s"	/* what generateAccessToken is asked for */

/* The form body of the token exchange for role with subject_token (the
 * JWT as sent).  With impersonation the scope is cloud-platform, which
 * generateAccessToken needs; the role's scopes go to that call.  Secret:
 * free with secret_free.  NULL when out of memory. */
char *gcp_token_request_body(const struct cfg_role *role,
			     const char *subject_token) WUR;

/* IMPERSONATION_URL/projects/-/serviceAccounts/EMAIL:generateAccessToken
 * (malloc'd), or NULL. */
char *gcp_iam_url(const struct cfg_role *role) WUR;

/* {"scope":[the role's scopes],"lifetime":"3600s"} (malloc'd), or NULL. */
char *gcp_iam_request_body(const struct cfg_role *role) WUR;

/* The token exchange's answer ({"access_token","expires_in",...}) and
 * generateAccessToken's ({"accessToken","expireTime"}), received with
 * http_status at wall time now: as oauth_parse_answer. */
int gcp_parse_token_response(const char *body, size_t len, int http_status,
			     int64_t now, struct oauth_token *out,
			     struct exchange_error *err) WUR;
int gcp_parse_iam_response(const char *body, size_t len, int http_status,
			   int64_t now, struct oauth_token *out,
			   struct exchange_error *err) WUR;

#endif
