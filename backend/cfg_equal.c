/*
 * Whether two roles' parts are the same (config.h): what a reload compares
 * to know what a change means.  Every field of each part is compared; a
 * field added to a part must be added here too.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int extras_equal(const struct cfg_session_extras *a,
			const struct cfg_session_extras *b)
{
	if (a->n_tags != b->n_tags)
		return 0;
	for (size_t i = 0; i < a->n_tags; i++)
		if (!str_eq(a->tags[i].key, b->tags[i].key) ||
		    !str_eq(a->tags[i].value, b->tags[i].value))
			return 0;
	return str_eq(a->policy, b->policy) &&
	       strv_eq(a->policy_arns, a->n_policy_arns, b->policy_arns,
		       b->n_policy_arns) &&
	       str_eq(a->external_id, b->external_id) &&
	       strv_eq(a->transitive_tag_keys, a->n_transitive_tag_keys,
		       b->transitive_tag_keys, b->n_transitive_tag_keys) &&
	       str_eq(a->source_identity, b->source_identity);
}

static int aws_equal(const struct cfg_aws *a, const struct cfg_aws *b)
{
	return str_eq(a->role_arn, b->role_arn) &&
	       str_eq(a->session_name, b->session_name) &&
	       str_eq(a->region, b->region) &&
	       str_eq(a->sts_endpoint, b->sts_endpoint) &&
	       a->use_fips_endpoint == b->use_fips_endpoint &&
	       a->duration_seconds == b->duration_seconds &&
	       extras_equal(&a->extras, &b->extras);
}

int cfg_exchange_equal(const struct cfg_exchange *a, const struct cfg_exchange *b)
{
	return a->cloud == b->cloud && a->token_source == b->token_source &&
	       str_eq(a->subject, b->subject) &&
	       str_eq(a->audience, b->audience) &&
	       str_eq(a->web_identity_token_file, b->web_identity_token_file) &&
	       str_eq(a->source_role, b->source_role) &&
	       str_eq(a->ca_file, b->ca_file) && aws_equal(&a->aws, &b->aws) &&
	       str_eq(a->gcp.service_account, b->gcp.service_account) &&
	       str_eq(a->gcp.token_url, b->gcp.token_url) &&
	       str_eq(a->gcp.impersonation_url, b->gcp.impersonation_url) &&
	       str_eq(a->gcp.scope, b->gcp.scope) &&
	       str_eq(a->azure.tenant_id, b->azure.tenant_id) &&
	       str_eq(a->azure.client_id, b->azure.client_id) &&
	       str_eq(a->azure.authority_host, b->azure.authority_host) &&
	       str_eq(a->azure.scope, b->azure.scope);
}

int cfg_schedule_equal(const struct cfg_schedule *a, const struct cfg_schedule *b)
{
	return a->refresh_fraction == b->refresh_fraction &&
	       a->min_validity == b->min_validity &&
	       a->wait_timeout == b->wait_timeout &&
	       a->refresh_jitter == b->refresh_jitter;
}

int cfg_presentation_equal(const struct cfg_presentation *a,
			   const struct cfg_presentation *b)
{
	return a->uid == b->uid && a->gid == b->gid && a->mode == b->mode &&
	       a->config_style == b->config_style &&
	       str_eq(a->consumer_path, b->consumer_path) &&
	       a->authorization_token_rotation == b->authorization_token_rotation;
}

/* ---- the fingerprint of exchange settings --------------------------- */

#include <openssl/evp.h>

/* Feeds s and its length (NULL differs from ""). */
static void feed_str(EVP_MD_CTX *ctx, const char *s)
{
	uint64_t n = s ? strlen(s) : UINT64_MAX;

	EVP_DigestUpdate(ctx, &n, sizeof(n));
	if (s)
		EVP_DigestUpdate(ctx, s, strlen(s));
}

static void feed_num(EVP_MD_CTX *ctx, int64_t v)
{
	EVP_DigestUpdate(ctx, &v, sizeof(v));
}

static void feed_strv(EVP_MD_CTX *ctx, char *const *v, size_t n)
{
	feed_num(ctx, (int64_t)n);
	for (size_t i = 0; i < n; i++)
		feed_str(ctx, v[i]);
}

static void feed_extras(EVP_MD_CTX *ctx, const struct cfg_session_extras *x)
{
	feed_str(ctx, x->policy);
	feed_strv(ctx, x->policy_arns, x->n_policy_arns);
	feed_str(ctx, x->external_id);
	feed_num(ctx, (int64_t)x->n_tags);
	for (size_t i = 0; i < x->n_tags; i++) {
		feed_str(ctx, x->tags[i].key);
		feed_str(ctx, x->tags[i].value);
	}
	feed_strv(ctx, x->transitive_tag_keys, x->n_transitive_tag_keys);
	feed_str(ctx, x->source_identity);
}

int cfg_exchange_fingerprint(const struct cfg_exchange *x,
			     unsigned char out[CFG_FINGERPRINT_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	int rc = -1;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	/* The fields of cfg_exchange_equal, in order. */
	feed_num(ctx, x->cloud);
	feed_num(ctx, x->token_source);
	feed_str(ctx, x->subject);
	feed_str(ctx, x->audience);
	feed_str(ctx, x->web_identity_token_file);
	feed_str(ctx, x->source_role);
	feed_str(ctx, x->ca_file);
	feed_str(ctx, x->aws.role_arn);
	feed_str(ctx, x->aws.session_name);
	feed_str(ctx, x->aws.region);
	feed_str(ctx, x->aws.sts_endpoint);
	feed_num(ctx, x->aws.use_fips_endpoint);
	feed_num(ctx, x->aws.duration_seconds);
	feed_extras(ctx, &x->aws.extras);
	feed_str(ctx, x->gcp.service_account);
	feed_str(ctx, x->gcp.token_url);
	feed_str(ctx, x->gcp.impersonation_url);
	feed_str(ctx, x->gcp.scope);
	feed_str(ctx, x->azure.tenant_id);
	feed_str(ctx, x->azure.client_id);
	feed_str(ctx, x->azure.authority_host);
	feed_str(ctx, x->azure.scope);
	if (EVP_DigestFinal_ex(ctx, out, &len) && len == CFG_FINGERPRINT_LEN)
		rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}
