#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <jansson.h>

#include "clock.h"
#include "jsonout.h"

static json_t *time_or_null(int64_t t)
{
	char s[21];

	if (!t)
		return json_null();
	clock_format_rfc3339(t, s);
	return json_string(s);
}

static const char *source_name(enum cfg_token_source s)
{
	switch (s) {
	case CFG_TOKEN_SIGNED:
		return "signed";
	case CFG_TOKEN_FILE:
		return "token_file";
	case CFG_TOKEN_CHAINED:
		return "source_role";
	}
	return "unknown";
}

/* What the role is set up to do. */
static void add_settings(json_t *o, const struct cfg_role *cfg)
{
	const struct cfg_exchange *x = &cfg->x;

	json_object_set_new(o, "cloud", json_string(cfg_cloud_name(x->cloud)));
	json_object_set_new(o, "token_source",
			    json_string(source_name(x->token_source)));
	if (x->token_source == CFG_TOKEN_CHAINED)
		json_object_set_new(o, "source_role", json_string(x->source_role));
	switch (x->cloud) {
	case CFG_CLOUD_AWS:
		json_object_set_new(o, "role_arn", json_string(x->aws.role_arn));
		json_object_set_new(o, "session_name",
				    json_string(x->aws.session_name));
		json_object_set_new(o, "sts_endpoint",
				    json_string(x->aws.sts_endpoint));
		json_object_set_new(o, "duration_seconds",
				    json_integer(x->aws.duration_seconds));
		if (x->token_source == CFG_TOKEN_CHAINED)
			json_object_set_new(o, "note", json_string(
				"role chaining: STS caps chained sessions at 3600 seconds"));
		break;
	case CFG_CLOUD_GCP:
		json_object_set_new(o, "audience", json_string(x->audience));
		json_object_set_new(o, "token_url", json_string(x->gcp.token_url));
		if (x->gcp.service_account)
			json_object_set_new(o, "service_account",
					    json_string(x->gcp.service_account));
		break;
	case CFG_CLOUD_AZURE:
		json_object_set_new(o, "tenant_id", json_string(x->azure.tenant_id));
		json_object_set_new(o, "client_id", json_string(x->azure.client_id));
		json_object_set_new(o, "authority_host",
				    json_string(x->azure.authority_host));
		break;
	}
}

/* What the role is waiting for, when it is. */
static json_t *waiting(const struct role_snapshot *s)
{
	if (s->waiting == WAITING_NOTHING)
		return json_null();
	return json_pack("{s:s, s:o, s:i, s:i, s:i, s:b}",
			 "on", role_waiting_name(s->waiting),
			 "since", time_or_null(s->waiting_since),
			 "attempt", s->attempt,
			 "requests_in_flight", (int)s->in_flight,
			 "readers_waiting", (int)s->readers_waiting,
			 "behind", s->behind);
}

static json_t *last_error(const struct role_snapshot *s)
{
	if (!s->has_error)
		return json_null();
	return json_pack("{s:s, s:s, s:i}", "code", s->error.code, "message",
			 s->error.message, "http_status", s->error.http_status);
}

static json_t *failed_read(const struct role_snapshot *s)
{
	if (!s->last_failed_read)
		return json_null();
	return json_pack("{s:o, s:s}", "at", time_or_null(s->last_failed_read),
			 "reason", s->failed_read_reason);
}

int status_render(struct role *r, const struct cfg_role *cfg, struct buf *out)
{
	struct role_snapshot s;
	json_t *o;
	char *text;
	int rc = engine_snapshot(r, &s);

	if (rc)
		return rc;
	o = json_object();
	if (!o) {
		role_snapshot_clear(&s);
		return -ENOMEM;
	}
	json_object_set_new(o, "role", json_string(cfg->name));
	json_object_set_new(o, "state", json_string(role_state_name(s.state)));
	add_settings(o, cfg);
	if (s.assumed_role_arn)
		json_object_set_new(o, "assumed_role_arn",
				    json_string(s.assumed_role_arn));
	json_object_set_new(o, "expiration", time_or_null(s.expiration));
	json_object_set_new(o, "next_refresh", time_or_null(s.next_refresh));
	json_object_set_new(o, "last_refresh", time_or_null(s.last_refresh));
	json_object_set_new(o, "last_attempt", time_or_null(s.last_attempt));
	json_object_set_new(o, "last_error", last_error(&s));
	json_object_set_new(o, "waiting", waiting(&s));
	json_object_set_new(o, "last_failed_read", failed_read(&s));
	json_object_set_new(o, "renewals", json_integer((json_int_t)s.renewals));
	json_object_set_new(o, "renewal_failures",
			    json_integer((json_int_t)s.renewal_failures));
	json_object_set_new(o, "sts_calls", json_integer((json_int_t)s.requests));
	role_snapshot_clear(&s);
	text = json_document(o);
	if (!text)
		return -ENOMEM;
	rc = buf_append_str(out, text);
	free(text);
	return rc;
}
