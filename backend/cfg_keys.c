/*
 * The key table (SPEC.md "Configuration (INI)"), and storing values where
 * the table says.
 *
 * A row names the key, the sections it may be written in, its type and
 * bounds, and where its value goes: a part of struct cfg and a field in
 * it.  The field's C type is taken from the
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

#define ROLE(f) .at = CFG_PLACE(struct cfg_role, f)
#define ROLE_LIST(f, n) .at = CFG_LIST_PLACE(struct cfg_role, f, n)
#define SIGNER(f) .part = PART_SIGNER, .at = CFG_PLACE(struct cfg_signer, f)

static const char *const config_style_words[] = {
	[CFG_STYLE_REGION] = "region",
	[CFG_STYLE_PROCESS] = "process",
	[CFG_STYLE_WEB_IDENTITY] = "web_identity",
	NULL
};

const struct key_def cfg_keys[K_COUNT] = {
	/* [credfs] defaults a role may override */
	[K_REGION] = { "region", SECT_DEFAULTABLE, V_REGION,
		       ROLE(x.aws.region) },
	[K_STS_ENDPOINT] = { "sts_endpoint", SECT_DEFAULTABLE, V_URL_BASE,
			     ROLE(x.aws.sts_endpoint) },
	[K_CA_FILE] = { "ca_file", SECT_DEFAULTABLE, V_CA_FILE,
			ROLE(x.ca_file) },
	[K_USE_FIPS] = { "use_fips_endpoint", SECT_DEFAULTABLE, V_BOOL,
			 ROLE(x.aws.use_fips_endpoint) },
	[K_DURATION] = { "duration_seconds", SECT_DEFAULTABLE, V_INT, 900, 43200,
			 ROLE(x.aws.duration_seconds) },
	[K_REFRESH_FRACTION] = { "refresh_fraction", SECT_DEFAULTABLE,
				 V_FRACTION, 0, 1, "0.8",
				 ROLE(sched.refresh_fraction) },
	[K_MIN_VALIDITY] = { "min_validity", SECT_DEFAULTABLE, V_INT, 0, 43200,
			     ROLE(sched.min_validity) },
	[K_WAIT_TIMEOUT] = { "wait_timeout", SECT_DEFAULTABLE, V_INT, 1, 300,
			     ROLE(sched.wait_timeout) },
	[K_CONFIG_STYLE] = { "config_style", SECT_DEFAULTABLE, V_CHOICE,
			     .words = config_style_words,
			     ROLE(pres.config_style) },

	/* [role NAME]: what the token endpoint needs */
	[K_ROLE_ARN] = { "role_arn", SECT_ROLE, V_ROLE_ARN,
			 ROLE(x.aws.role_arn) },
	[K_SUBJECT] = { "subject", SECT_ROLE, V_TEXT, 1, 1024,
			ROLE(x.subject) },
	[K_TOKEN_FILE] = { "web_identity_token_file", SECT_ROLE, V_PATH,
			   ROLE(x.web_identity_token_file) },
	[K_SOURCE_ROLE] = { "source_role", SECT_ROLE, V_ROLE_REF,
			    ROLE(x.source_role) },
	[K_SESSION_NAME] = { "session_name", SECT_ROLE, V_AWS_NAME, 2, 64,
			     ROLE(x.aws.session_name) },
	[K_EXTERNAL_ID] = { "external_id", SECT_ROLE, V_EXTERNAL_ID, 2, 1224,
			    ROLE(x.aws.extras.external_id) },
	[K_POLICY] = { "policy", SECT_ROLE, V_POLICY, 0, 2048,
		       ROLE(x.aws.extras.policy) },
	[K_POLICY_ARNS] = { "policy_arns", SECT_ROLE, V_POLICY_ARNS, 0, 10,
			    ROLE_LIST(x.aws.extras.policy_arns,
				      x.aws.extras.n_policy_arns) },
	[K_TAGS] = { "tags", SECT_ROLE, V_TAGS, 0, 50,
		     ROLE_LIST(x.aws.extras.tags, x.aws.extras.n_tags) },
	[K_TRANSITIVE] = { "transitive_tag_keys", SECT_ROLE, V_TAG_KEYS, 0, 50,
			   ROLE_LIST(x.aws.extras.transitive_tag_keys,
				     x.aws.extras.n_transitive_tag_keys) },
	[K_SOURCE_IDENTITY] = { "source_identity", SECT_ROLE, V_AWS_NAME, 2, 64,
				ROLE(x.aws.extras.source_identity) },

	/* [role NAME]: who may read the files and what they say */
	[K_UID] = { "uid", SECT_ROLE, V_ID, ROLE(pres.uid) },
	[K_GID] = { "gid", SECT_ROLE, V_ID, ROLE(pres.gid) },
	[K_MODE] = { "mode", SECT_ROLE, V_MODE, ROLE(pres.mode) },
	[K_CONSUMER_PATH] = { "consumer_path", SECT_ROLE, V_CONSUMER_PATH, 1,
			      1024, ROLE(pres.consumer_path) },

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
			      .at = CFG_LIST_PLACE(struct cfg_signer,
						   previous_keys,
						   n_previous_keys) },
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
	else
		*(struct cfg_tag **)(void *)at = v->tags;
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
		    cfg_store(p, &cfg_keys[k].at, base, &s->v[k], true))
			return -1;
	return 0;
}

