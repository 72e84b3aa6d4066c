/*
 * The Azure kind (Entra ID workload identity federation): the OAuth 2.0
 * client-credentials grant at AUTHORITY_HOST/TENANT/oauth2/v2.0/token,
 * with the role's token as client_assertion, as the Azure SDKs' workload
 * identity credential sends it.  One request per renewal.  The parts are
 * exposed for the unit tests and the fuzzer.
 */
#ifndef CREDFS_KIND_AZURE_H
#define CREDFS_KIND_AZURE_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "config.h"
#include "exchange.h"
#include "oauth.h"

extern const struct kind_ops kind_azure;

/* AUTHORITY_HOST + TENANT + "/oauth2/v2.0/token" (malloc'd), or NULL. */
char *azure_token_url(const struct cfg_role *role) WUR;

/* The form body for role with assertion (the JWT as sent).  Secret: free
 * with secret_free.  NULL when out of memory. */
char *azure_token_request_body(const struct cfg_role *role,
			       const char *assertion) WUR;

/* Entra ID's answer ({"access_token","expires_in" (a number or a string of
 * digits),...}), received with http_status at wall time now: as
 * oauth_parse_answer, the code of an error being "AADSTS<n>" when the
 * answer has error_codes. */
int azure_parse_token_response(const char *body, size_t len, int http_status,
			       int64_t now, struct oauth_token *out,
			       struct exchange_error *err) WUR;

#endif
