/*
 * The STS exchange: AssumeRoleWithWebIdentity (unsigned) and AssumeRole
 * (SigV4-signed, for role chaining), form-encoded POSTs whose XML answers are
 * parsed with expat by element name.  What is worth retrying and the
 * backoff follow the AWS SDKs' "standard" mode (docs/engine.md, "A renewal").
 */
#ifndef CREDFS_STS_H
#define CREDFS_STS_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "exchange_error.h"

#define STS_MAX_ATTEMPTS 3
/* The longest session token accepted (tags and policies make them long). */
#define STS_SESSION_TOKEN_MAX 16384

/* Temporary credentials; the three secrets are wiped by sts_credentials_clear. */
struct sts_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	int64_t expiration;		/* seconds since the epoch */
	char *assumed_role_arn;		/* may be NULL */
	char *assumed_role_id;		/* may be NULL */
};


struct sts_tag {
	const char *key;
	const char *value;
};

/* What STS is sent beside the role: a session policy (also with web
 * identity) and, for AssumeRole only, the chaining extras. */
struct sts_extras {
	const char *policy;
	const char *const *policy_arns;
	size_t n_policy_arns;
	const char *external_id;
	const struct sts_tag *tags;
	size_t n_tags;
	const char *const *transitive_tag_keys;
	size_t n_transitive_tag_keys;
	const char *source_identity;
};

enum sts_action {
	STS_ASSUME_ROLE_WITH_WEB_IDENTITY,
	STS_ASSUME_ROLE,
};

struct sts_request {
	enum sts_action action;
	const char *endpoint;		/* "https://sts.REGION.amazonaws.com" */
	const char *region;		/* signing region (AssumeRole) */
	const char *ca_file;
	const char *role_arn;
	const char *session_name;
	int duration_seconds;
	const char *web_identity_token;	/* AssumeRoleWithWebIdentity */
	const struct sts_credentials *source;	/* AssumeRole: who signs */
	const struct sts_extras *extras;	/* may be NULL */
	long connect_timeout_ms;
	long timeout_ms;		/* per attempt */
};

/* Builds the form body of req into a malloc'd string (secret: free with
 * secret_free).  NULL on allocation failure. */
char *sts_build_body(const struct sts_request *req) WUR;

/* Parses an STS response body.  Returns 0 with *out filled on a success
 * document; -1 with err filled for an error document or anything else
 * (garbage, truncated, missing fields: code "Malformed").  http_status is
 * copied into err and decides retryable together with the code. */
int sts_parse_response(const char *body, size_t len, int http_status,
		       struct sts_credentials *out, struct exchange_error *err) WUR;

/* Whether an error is worth another attempt, as the AWS SDKs decide. */
int sts_is_retryable(int http_status, const char *code);

/* Delay in ms before retry n (1-based): rand01 * min(2^(n-1), 20) s. */
long sts_backoff_ms(int retry, double rand01);

/* One request to STS (retries are the engine's: engine_renew.c).
 * Returns 0 with *out, or -1 with err filled (retryable set as
 * sts_is_retryable says). */
int sts_send(const struct sts_request *req, struct sts_credentials *out,
	     struct exchange_error *err) WUR;

void sts_credentials_clear(struct sts_credentials *c);
/* Deep copy; 0 or -1. */
int sts_credentials_copy(struct sts_credentials *dst,
			 const struct sts_credentials *src) WUR;

#endif
