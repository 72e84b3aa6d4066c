/*
 * The AWS kind: AssumeRoleWithWebIdentity with the role's token, or, for a
 * chained role, AssumeRole signed with its source role's credentials.  One
 * request per renewal.
 */
#include <string.h>

#include "buf.h"
#include "exchange.h"
#include "sts.h"

#define TAGS_MAX 50	/* the most STS takes; the configuration enforces it */

static enum kind_result aws_request(struct kind_request *req, struct creds *out,
				    struct exchange_error *err)
{
	const struct cfg_exchange *x = &req->role->x;
	const struct cfg_session_extras *cx = &x->aws.extras;
	struct sts_tag tags[TAGS_MAX];
	struct sts_extras extras = {
		.policy = cx->policy,
		.policy_arns = (const char *const *)cx->policy_arns,
		.n_policy_arns = cx->n_policy_arns,
		.external_id = cx->external_id,
		.tags = tags,
		.n_tags = cx->n_tags < TAGS_MAX ? cx->n_tags : TAGS_MAX,
		.transitive_tag_keys = (const char *const *)cx->transitive_tag_keys,
		.n_transitive_tag_keys = cx->n_transitive_tag_keys,
		.source_identity = cx->source_identity,
	};
	struct sts_request sr = {
		.endpoint = x->aws.sts_endpoint,
		.region = x->aws.region,
		.ca_file = x->ca_file,
		.role_arn = x->aws.role_arn,
		.session_name = x->aws.session_name,
		.duration_seconds = x->aws.duration_seconds,
		.extras = &extras,
		.connect_timeout_ms = req->connect_timeout_ms,
		.timeout_ms = req->timeout_ms,
	};
	struct sts_credentials got;
	struct sts_credentials source = {0};

	for (size_t k = 0; k < extras.n_tags; k++)
		tags[k] = (struct sts_tag){ cx->tags[k].key, cx->tags[k].value };
	if (x->token_source == CFG_TOKEN_CHAINED) {
		if (!req->source) {
			exchange_error_set(err, "SourceRole",
					   "no source credentials to sign with");
			return KIND_FAILED;
		}
		source.access_key_id = req->source->access_key_id;
		source.secret_access_key = req->source->secret_access_key;
		source.session_token = req->source->session_token;
		sr.action = STS_ASSUME_ROLE;
		sr.source = &source;
	} else {
		sr.action = STS_ASSUME_ROLE_WITH_WEB_IDENTITY;
		sr.web_identity_token = req->token;
	}
	if (sts_send(&sr, &got, err))
		return KIND_FAILED;
	memset(out, 0, sizeof(*out));
	out->access_key_id = got.access_key_id;
	out->secret_access_key = got.secret_access_key;
	out->session_token = got.session_token;
	out->assumed_role_arn = got.assumed_role_arn;
	out->expires = got.expiration;
	secret_free(got.assumed_role_id);
	return KIND_DONE;
}

const struct kind_ops kind_aws = {
	.name = "aws",
	.request = aws_request,
};
