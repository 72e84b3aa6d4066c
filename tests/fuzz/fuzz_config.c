/*
 * Fuzzes the configuration parser and validator (cfg_load_string): any
 * text either loads into a complete configuration or fails with an error
 * that can be formatted; never a crash or a leak.  A configuration that
 * loads must keep config.h's promises: every role's part of its cloud
 * filled in, the others empty, the name index complete, references in
 * range.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless role i of cfg is complete. */
static void check_role(const struct cfg *cfg, size_t i)
{
	const struct cfg_role *r = &cfg->roles[i];
	const struct cfg_exchange *x = &r->x;

	if (cfg_find_role(cfg, r->name) != r)
		abort();
	if (x->token_source == CFG_TOKEN_SIGNED && (!x->subject || !x->audience))
		abort();
	if (x->token_source == CFG_TOKEN_FILE && !x->web_identity_token_file)
		abort();
	if (x->token_source == CFG_TOKEN_CHAINED &&
	    (!x->source_role || r->source_index >= cfg->n_roles ||
	     x->cloud != CFG_CLOUD_AWS))
		abort();
	switch (x->cloud) {
	case CFG_CLOUD_AWS:
		if (!x->aws.role_arn || !x->aws.sts_endpoint ||
		    !x->aws.session_name || !x->aws.region || x->gcp.token_url ||
		    x->azure.tenant_id)
			abort();
		break;
	case CFG_CLOUD_GCP:
		if (!x->audience || !x->gcp.token_url ||
		    !x->gcp.impersonation_url || !x->gcp.scope ||
		    x->aws.role_arn || x->aws.region)
			abort();
		break;
	case CFG_CLOUD_AZURE:
		if (!x->azure.tenant_id || !x->azure.client_id ||
		    !x->azure.authority_host || !x->azure.scope ||
		    x->aws.role_arn)
			abort();
		break;
	}
	if (r->sched.refresh_jitter < 0 || r->sched.refresh_jitter > 0.5)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_error err;
	struct cfg *cfg = NULL;
	char msg[CFG_ERROR_TEXT_MAX + 4200];
	char *text;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&err, 0, sizeof(err));
	if (cfg_load_string(text, "fuzz.conf", &cfg, &err) == 0) {
		if (cfg->names.n != cfg->n_roles)
			abort();
		for (size_t i = 0; i < cfg->n_roles; i++)
			check_role(cfg, i);
		if (cfg->endpoint.present &&
		    (!cfg->endpoint.n_listen ||
		     (cfg->endpoint.imds_role &&
		      cfg->endpoint.imds_role_index >= cfg->n_roles)))
			abort();
		cfg_free(cfg);
	} else {
		if (cfg)
			abort();
		cfg_error_format(&err, msg, sizeof(msg));
	}
	free(text);
	return 0;
}
