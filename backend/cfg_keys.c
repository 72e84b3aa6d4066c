/*
 * The key table (every key of credfs.conf(5) and docs/configuration.md),
 * and storing values where the table says.
 *
 * A row names the key, the sections it may be written in, its type and
 * bounds, and where its value goes: a part of struct cfg and a field in
 * it, per cloud for a role's keys.  The field's C type is taken from the
 * field itself (CFG_PLACE), so a row cannot store into a field of another
 * type.  Each type has one validator (cfg_values.c), which looks at one
 * value only; what needs several keys (defaults, required keys, one token
 * source, the cloud's own rules) is checked when the roles are built
 * (cfg_role.c).
 */
#include "cfg_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the table ---- */

#define ROLE(f) CFG_PLACE(struct cfg_role, f)
#define ROLE_LIST(f, n) CFG_LIST_PLACE(struct cfg_role, f, n)
#define EVERY_CLOUD(f)							\
	{ [CFG_CLOUD_AWS] = ROLE(f), [CFG_CLOUD_GCP] = ROLE(f),		\
	  [CFG_CLOUD_AZURE] = ROLE(f) }
#define AWS(f) { [CFG_CLOUD_AWS] = ROLE(f) }
#define AWS_LIST(f, n) { [CFG_CLOUD_AWS] = ROLE_LIST(f, n) }
#define GCP(f) { [CFG_CLOUD_GCP] = ROLE(f) }
#define AZURE(f) { [CFG_CLOUD_AZURE] = ROLE(f) }
#define SIGNER(f) .part = PART_SIGNER, .at = { CFG_PLACE(struct cfg_signer, f) }
#define FLEET(f) .part = PART_FLEET, .at = { CFG_PLACE(struct cfg_fleet, f) }
#define ENDPOINT(f) .part = PART_ENDPOINT, .at = { CFG_PLACE(struct cfg_endpoint, f) }

static const char *const config_style_words[] = {
	[CFG_STYLE_REGION] = "region",
	[CFG_STYLE_PROCESS] = "process",
	[CFG_STYLE_WEB_IDENTITY] = "web_identity",
	NULL
};

static const char *const cloud_words[] = {
	[CFG_CLOUD_AWS] = "aws",
	[CFG_CLOUD_GCP] = "gcp",
	[CFG_CLOUD_AZURE] = "azure",
	NULL
};

const struct key_def cfg_keys[K_COUNT] = {
	/* [credfs] defaults a role may override */
	[K_REGION] = { "region", SECT_DEFAULTABLE, V_REGION,
		       .at = AWS(x.aws.region), .inert_elsewhere = true },
	[K_STS_ENDPOINT] = { "sts_endpoint", SECT_DEFAULTABLE, V_URL_BASE,
			     .at = AWS(x.aws.sts_endpoint) },
	[K_CA_FILE] = { "ca_file", SECT_DEFAULTABLE, V_CA_FILE,
			.at = EVERY_CLOUD(x.ca_file) },
	[K_USE_FIPS] = { "use_fips_endpoint", SECT_DEFAULTABLE, V_BOOL,
			 .at = AWS(x.aws.use_fips_endpoint) },
	[K_DURATION] = { "duration_seconds", SECT_DEFAULTABLE, V_INT, 900, 43200,
			 .at = AWS(x.aws.duration_seconds) },
	[K_REFRESH_FRACTION] = { "refresh_fraction", SECT_DEFAULTABLE,
				 V_FRACTION, 0, 1, "0.8",
				 .at = EVERY_CLOUD(sched.refresh_fraction) },
	[K_MIN_VALIDITY] = { "min_validity", SECT_DEFAULTABLE, V_INT, 0, 43200,
			     .at = EVERY_CLOUD(sched.min_validity) },
	[K_WAIT_TIMEOUT] = { "wait_timeout", SECT_DEFAULTABLE, V_INT, 1, 300,
			     .at = EVERY_CLOUD(sched.wait_timeout) },
	[K_REFRESH_JITTER] = { "refresh_jitter", SECT_DEFAULTABLE, V_NUMBER,
			       0, 0.5, "0.1",
			       .at = EVERY_CLOUD(sched.refresh_jitter) },
	[K_CONFIG_STYLE] = { "config_style", SECT_DEFAULTABLE, V_CHOICE,
			     .words = config_style_words,
			     .at = AWS(pres.config_style) },
	[K_TOKEN_ROTATION] = { "authorization_token_rotation",
			       SECT_DEFAULTABLE, V_INT, 0, 1000000,
			       .at = EVERY_CLOUD(pres.authorization_token_rotation) },

	/* [credfs] only: bounds for the whole daemon */
	[K_MAX_STS_RATE] = { "max_sts_rate", SECT_CREDFS, V_NUMBER, 0, 100000,
			     "20", FLEET(max_sts_rate) },
	[K_MAX_STS_INFLIGHT] = { "max_sts_inflight", SECT_CREDFS, V_INT, 0,
				 10000, FLEET(max_sts_inflight) },
	[K_HOST_ID] = { "host_id", SECT_CREDFS, V_TEXT, 1, 256,
			FLEET(host_id) },

	/* [role NAME]: what the token endpoint needs */
	[K_CLOUD] = { "cloud", SECT_ROLE, V_CHOICE, .words = cloud_words,
		      .at = EVERY_CLOUD(x.cloud) },
	[K_ROLE_ARN] = { "role_arn", SECT_ROLE, V_ROLE_ARN,
			 .at = AWS(x.aws.role_arn) },
	[K_SUBJECT] = { "subject", SECT_ROLE, V_TEXT, 1, 1024,
			.at = EVERY_CLOUD(x.subject) },
	[K_TOKEN_FILE] = { "web_identity_token_file", SECT_ROLE, V_PATH,
			   .at = EVERY_CLOUD(x.web_identity_token_file) },
	[K_SOURCE_ROLE] = { "source_role", SECT_ROLE, V_ROLE_REF,
			    .at = AWS(x.source_role) },
	[K_AUDIENCE] = { "audience", SECT_ROLE, V_TEXT, 1, 1024,
			 .at = EVERY_CLOUD(x.audience) },
	[K_SESSION_NAME] = { "session_name", SECT_ROLE, V_AWS_NAME, 2, 64,
			     .at = AWS(x.aws.session_name) },
	[K_EXTERNAL_ID] = { "external_id", SECT_ROLE, V_EXTERNAL_ID, 2, 1224,
			    .at = AWS(x.aws.extras.external_id) },
	[K_POLICY] = { "policy", SECT_ROLE, V_POLICY, 0, 2048,
		       .at = AWS(x.aws.extras.policy) },
	[K_POLICY_ARNS] = { "policy_arns", SECT_ROLE, V_POLICY_ARNS, 0, 10,
			    .at = AWS_LIST(x.aws.extras.policy_arns,
					   x.aws.extras.n_policy_arns) },
	[K_TAGS] = { "tags", SECT_ROLE, V_TAGS, 0, 50,
		     .at = AWS_LIST(x.aws.extras.tags, x.aws.extras.n_tags) },
	[K_TRANSITIVE] = { "transitive_tag_keys", SECT_ROLE, V_TAG_KEYS, 0, 50,
			   .at = AWS_LIST(x.aws.extras.transitive_tag_keys,
					  x.aws.extras.n_transitive_tag_keys) },
	[K_SOURCE_IDENTITY] = { "source_identity", SECT_ROLE, V_AWS_NAME, 2, 64,
				.at = AWS(x.aws.extras.source_identity) },
	[K_SERVICE_ACCOUNT] = { "service_account", SECT_ROLE, V_EMAIL, 3, 254,
				.at = GCP(x.gcp.service_account) },
	[K_TOKEN_URL] = { "token_url", SECT_ROLE, V_URL,
			  .at = GCP(x.gcp.token_url) },
	[K_IMPERSONATION_URL] = { "impersonation_url", SECT_ROLE, V_URL_BASE,
				  .at = GCP(x.gcp.impersonation_url) },
	[K_TENANT_ID] = { "tenant_id", SECT_ROLE, V_GUID,
			  .at = AZURE(x.azure.tenant_id) },
	[K_CLIENT_ID] = { "client_id", SECT_ROLE, V_GUID,
			  .at = AZURE(x.azure.client_id) },
	[K_AUTHORITY_HOST] = { "authority_host", SECT_ROLE, V_URL_DIR,
			       .at = AZURE(x.azure.authority_host) },
	[K_SCOPE] = { "scope", SECT_ROLE, V_SCOPES, 1, 32,
		      .at = { [CFG_CLOUD_GCP] = ROLE(x.gcp.scope),
			      [CFG_CLOUD_AZURE] = ROLE(x.azure.scope) } },

	/* [role NAME]: who may read the files and what they say */
	[K_UID] = { "uid", SECT_ROLE, V_ID, .at = EVERY_CLOUD(pres.uid) },
	[K_GID] = { "gid", SECT_ROLE, V_ID, .at = EVERY_CLOUD(pres.gid) },
	[K_MODE] = { "mode", SECT_ROLE, V_MODE, .at = EVERY_CLOUD(pres.mode) },
	[K_CONSUMER_PATH] = { "consumer_path", SECT_ROLE, V_CONSUMER_PATH, 1,
			      1024, .at = EVERY_CLOUD(pres.consumer_path) },

	/* [signer] */
	[K_KEY] = { "key", SECT_SIGNER, V_PATH, SIGNER(key) },
	[K_ISSUER] = { "issuer", SECT_SIGNER, V_ISSUER, SIGNER(issuer) },
	[K_SIGNER_AUDIENCE] = { "audience", SECT_SIGNER, V_TEXT, 1, 1024,
				SIGNER(audience) },
	[K_TOKEN_LIFETIME] = { "token_lifetime", SECT_SIGNER, V_INT, 600, 86400,
			       SIGNER(token_lifetime) },
	[K_CLOCK_SKEW] = { "clock_skew", SECT_SIGNER, V_INT, 0, 300,
			   SIGNER(clock_skew) },
	[K_PREVIOUS_KEYS] = { "previous_keys", SECT_SIGNER, V_PATH_LIST,
			      .part = PART_SIGNER,
			      .at = { CFG_LIST_PLACE(struct cfg_signer,
						     previous_keys,
						     n_previous_keys) } },

	/* [endpoint] */
	[K_LISTEN] = { "listen", SECT_ENDPOINT, V_LISTEN, 1, 16,
		       .part = PART_ENDPOINT,
		       .at = { CFG_LIST_PLACE(struct cfg_endpoint, listen,
					      n_listen) } },
	[K_IMDS_ROLE] = { "imds_role", SECT_ENDPOINT, V_ROLE_REF,
			  ENDPOINT(imds_role) },
};

/* The C types a field may have for a value of each form. */
static bool form_fits(enum val_form form, enum c_type ctype)
{
	switch (form) {
	case F_STR:
		return ctype == C_STR;
	case F_NUM:
		return ctype == C_INT || ctype == C_UINT;
	case F_DBL:
		return ctype == C_DOUBLE;
	case F_STR_LIST:
		return ctype == C_STR_LIST;
	case F_TAG_LIST:
		return ctype == C_TAG_LIST;
	case F_LISTEN_LIST:
		return ctype == C_LISTEN_LIST;
	case F_NONE:
		break;
	}
	return false;
}

int cfg_find_key(const char *name, enum sect_kind kind, enum key_id *id,
		 unsigned *sections)
{
	unsigned found = 0;

	for (int k = 0; k < K_COUNT; k++) {
		if (strcmp(cfg_keys[k].name, name))
			continue;
		if (cfg_keys[k].sections & kind) {
			*id = (enum key_id)k;
			return 0;
		}
		found |= cfg_keys[k].sections;
	}
	*sections = found;
	return found ? -2 : -1;
}

/* ---- values ---- */

static void free_list(char **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void free_tags(struct cfg_tag *tags, size_t n)
{
	if (!tags)
		return;
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

void cfg_val_free(struct val *v)
{
	switch (v->form) {
	case F_STR:
		free(v->str);
		break;
	case F_STR_LIST:
		free_list(v->list, v->n);
		break;
	case F_TAG_LIST:
		free_tags(v->tags, v->n);
		break;
	case F_LISTEN_LIST:
		free(v->listen);
		break;
	case F_NONE:
	case F_NUM:
	case F_DBL:
		break;
	}
	memset(v, 0, sizeof(*v));
}

void cfg_section_free(struct section *s)
{
	for (int k = 0; k < K_COUNT; k++)
		cfg_val_free(&s->v[k]);
}

void cfg_section_label(const struct section *s, char *out, size_t len)
{
	switch (s->kind) {
	case SECT_CREDFS:
		snprintf(out, len, "[credfs]");
		break;
	case SECT_SIGNER:
		snprintf(out, len, "[signer]");
		break;
	case SECT_ENDPOINT:
		snprintf(out, len, "[endpoint]");
		break;
	case SECT_ROLE:
		snprintf(out, len, "[role %s]", s->name);
		break;
	}
}

/* Moves the list of v into the field at and its length into count. */
static void move_list(enum c_type ctype, char *at, size_t *count,
		      struct val *v)
{
	if (ctype == C_STR_LIST)
		*(char ***)(void *)at = v->list;
	else if (ctype == C_TAG_LIST)
		*(struct cfg_tag **)(void *)at = v->tags;
	else
		*(struct cfg_listen **)(void *)at = v->listen;
	*count = v->n;
	v->list = NULL;
	v->n = 0;
}

int cfg_store(struct parser *p, const struct cfg_place *pl, void *base,
	      struct val *v, bool move)
{
	char *at = (char *)base + pl->offset;
	char **str = (char **)(void *)at;

	if (!form_fits(v->form, pl->ctype))
		return cfg_fail(p, v->line,
				"internal error: a value of the wrong type");
	switch (pl->ctype) {
	case C_STR:
		free(*str);
		*str = move ? v->str : cfg_strdup(p, v->str);
		if (move)
			v->str = NULL;
		return *str ? 0 : -1;
	case C_INT:
		*(int *)(void *)at = (int)v->num;
		return 0;
	case C_UINT:
		*(unsigned *)(void *)at = (unsigned)v->num;
		return 0;
	case C_DOUBLE:
		*(double *)(void *)at = v->dbl;
		return 0;
	case C_STR_LIST:
	case C_TAG_LIST:
	case C_LISTEN_LIST:
		/* A list has one owner: it moves, and is never a default. */
		if (!move)
			return cfg_fail(p, v->line,
					"internal error: a list cannot be shared");
		move_list(pl->ctype, at,
			  (size_t *)(void *)((char *)base + pl->count_offset), v);
		return 0;
	case C_NONE:
		break;
	}
	return 0;
}

int cfg_store_section(struct parser *p, struct section *s, enum cfg_part part,
		      void *base)
{
	for (int k = 0; k < K_COUNT; k++)
		if (cfg_keys[k].part == part && s->v[k].line &&
		    cfg_store(p, &cfg_keys[k].at[0], base, &s->v[k], true))
			return -1;
	return 0;
}

