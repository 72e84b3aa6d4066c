/*
 * One role, from its [role NAME] section and the [credfs] defaults.
 *
 * The key table puts every value where it goes (apply_keys); what is left
 * is done by concern, one function each, in this order:
 *   - the endpoint: the region, the STS endpoint, role_arn;
 *   - the token source: exactly one of subject, web_identity_token_file
 *     and source_role, each with what it needs;
 *   - the audience of a signed token;
 *   - the session (duration, chaining, name, config_style) and the
 *     chaining extras.
 * An error about a key that is wrong is reported at the key's line; one
 * about a key that is missing at the role's header line.
 */
#include "cfg_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "endpoints.h"

#define CHAINED_DURATION_MAX 3600	/* STS limit for role chaining */
#define SESSION_NAME_MAX 64

static const struct cfg_schedule schedule_defaults = {
	.refresh_fraction = 0.8,
	.min_validity = 900,
	.wait_timeout = 10,
	.refresh_jitter = 0,
};

static const struct cfg_aws aws_defaults = {
	.duration_seconds = 3600,
};

static const struct cfg_presentation presentation_defaults = {
	.mode = 0400,
	.config_style = CFG_STYLE_REGION,
	/* uid and gid: the daemon's, filled in at load time */
};

/* The first line among keys a and b, of the role then of [credfs], that
 * explains a problem; the header's when neither is written. */
static int blame_line(const struct parser *p, const struct section *r,
		      enum key_id a, enum key_id b)
{
	if (r->v[a].line)
		return r->v[a].line;
	if (r->v[b].line)
		return r->v[b].line;
	if (p->credfs.v[a].line)
		return p->credfs.v[a].line;
	if (p->credfs.v[b].line)
		return p->credfs.v[b].line;
	return r->line;
}

/* Sets *field to a copy of dflt unless a key set it.  0 or -1 (OOM). */
static int fill_default(struct parser *p, char **field, const char *dflt)
{
	if (!*field)
		*field = cfg_strdup(p, dflt);
	return *field ? 0 : -1;
}

/* Every key of a role, from the role or else from [credfs], into its
 * place.  The role's own values move; defaults are copied, as every role
 * may take them. */
static int apply_keys(struct parser *p, struct section *r,
		      struct cfg_role *role)
{
	for (int k = 0; k < K_COUNT; k++) {
		bool own = r->v[k].line;
		struct val *v = own ? &r->v[k] : &p->credfs.v[k];

		if (cfg_keys[k].part != PART_ROLE || !v->line)
			continue;
		if (cfg_store(p, &cfg_keys[k].at, role, v, own))
			return -1;
	}
	return 0;
}

static void init_role(struct cfg_role *role)
{
	role->x.aws = aws_defaults;
	role->sched = schedule_defaults;
	role->pres = presentation_defaults;
	role->pres.uid = getuid();
	role->pres.gid = getgid();
}

/* ---- where STS is ---- */

/* The STS endpoint the AWS SDKs take from the environment when nothing
 * else names one: AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL (an empty
 * value counts as unset), neither if AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
 * is true.  Checked like sts_endpoint, the error naming the variable and
 * no line; a trailing "/" is dropped.  Looked up once per load.  Sets
 * *out (owned by p; NULL when none is set) and returns 0, or returns -1
 * with the error recorded. */
static int env_endpoint(struct parser *p, const char **out)
{
	static const char *const vars[] = { "AWS_ENDPOINT_URL_STS",
					    "AWS_ENDPOINT_URL" };
	const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	char label[64], msg[CFG_ERROR_TEXT_MAX];

	*out = p->env_endpoint;
	if (p->env_endpoint_done)
		return 0;
	p->env_endpoint_done = true;
	if (ignore && !strcasecmp(ignore, "true"))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		const char *url = getenv(vars[i]);
		size_t len;
		int rc;

		if (!url || !*url)
			continue;
		snprintf(label, sizeof(label), "environment variable %s",
			 vars[i]);
		rc = cfg_url_check(label, url, CFG_URL_ENDPOINT, msg,
				   sizeof(msg));
		if (rc == -ENOMEM)
			return cfg_fail_oom(p);
		if (rc)
			return cfg_fail(p, 0, "%s", msg);
		len = strlen(url);
		while (len && url[len - 1] == '/')
			len--;
		p->env_endpoint = strndup(url, len);
		if (!p->env_endpoint)
			return cfg_fail_oom(p);
		*out = p->env_endpoint;
		return 0;
	}
	return 0;
}

static int aws_region(struct parser *p, const struct section *r,
		      const struct cfg_role *role)
{
	if (!role->x.aws.region)
		return cfg_fail(p, r->line,
				"role \"%s\": region is not set; set it in [credfs] or in [role %s]",
				r->name, r->name);
	return 0;
}

/* sts_endpoint (the role's, then [credfs]'s), else the environment's,
 * else the default of the region, FIPS if asked. */
static int aws_endpoint(struct parser *p, const struct section *r,
			struct cfg_role *role)
{
	struct cfg_aws *aws = &role->x.aws;
	const char *env_url;

	if (aws->sts_endpoint)
		return 0;
	if (env_endpoint(p, &env_url))
		return -1;
	if (env_url)
		return fill_default(p, &aws->sts_endpoint, env_url);
	if (aws->use_fips_endpoint && !aws_fips_supported(aws->region))
		return cfg_fail(p, blame_line(p, r, K_USE_FIPS, K_REGION),
				"role \"%s\": no FIPS STS endpoint in region %s",
				r->name, aws->region);
	aws->sts_endpoint = aws_default_sts_endpoint(aws->region,
						     aws->use_fips_endpoint);
	return aws->sts_endpoint ? 0 : cfg_fail_oom(p);
}

static int aws_role_arn(struct parser *p, const struct section *r,
			const struct cfg_role *role)
{
	if (!role->x.aws.role_arn)
		return cfg_fail(p, r->line, "role \"%s\": role_arn is required",
				r->name);
	return 0;
}

/* ---- the token ---- */

/* Exactly one token source, with what it needs: a signer for subject, a
 * role of this file for source_role. */
static int token_source(struct parser *p, const struct section *r,
			const struct cfg_signer *signer, struct cfg_role *role)
{
	static const enum key_id sources[] = { K_SUBJECT, K_TOKEN_FILE,
					       K_SOURCE_ROLE };
	const char *which = "subject, web_identity_token_file or source_role";
	int n = 0, last_line = 0, j;

	for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
		int line = r->v[sources[i]].line;

		n += line > 0;
		if (line > last_line)
			last_line = line;
	}
	if (!n)
		return cfg_fail(p, r->line, "role \"%s\": one of %s is required",
				r->name, which);
	if (n > 1)
		return cfg_fail(p, last_line, "role \"%s\": set only one of %s",
				r->name, which);
	if (role->x.subject) {
		if (!signer->present)
			return cfg_fail(p, r->v[K_SUBJECT].line,
					"role \"%s\": subject needs a [signer] section to sign its token",
					r->name);
		role->x.token_source = CFG_TOKEN_SIGNED;
		return 0;
	}
	if (role->x.web_identity_token_file) {
		role->x.token_source = CFG_TOKEN_FILE;
		return 0;
	}
	j = cfg_role_index(p, role->x.source_role);
	if (j < 0)
		return cfg_fail(p, r->v[K_SOURCE_ROLE].line,
				"role \"%s\": source_role \"%s\" is not a [role] in this file",
				r->name, role->x.source_role);
	role->x.token_source = CFG_TOKEN_CHAINED;
	role->source_index = (size_t)j;
	return 0;
}

/* A signed token's aud: the signer's. */
static int token_audience(struct parser *p, const struct cfg_signer *signer,
			  struct cfg_role *role)
{
	if (role->x.token_source != CFG_TOKEN_SIGNED)
		return 0;
	role->x.audience = cfg_strdup(p, signer->audience);
	return role->x.audience ? 0 : -1;
}

/* ---- the session ---- */

/* Duration (capped for a chained role) against min_validity, the
 * session name, config_style and the chaining extras. */
static int aws_session(struct parser *p, const struct section *r,
		       struct cfg_role *role)
{
	struct cfg_aws *aws = &role->x.aws;
	bool chained = role->x.token_source == CFG_TOKEN_CHAINED;

	/* STS refuses more than an hour for role chaining. */
	if (chained && aws->duration_seconds > CHAINED_DURATION_MAX)
		aws->duration_seconds = CHAINED_DURATION_MAX;
	if (role->sched.min_validity >= aws->duration_seconds)
		return cfg_fail(p, blame_line(p, r, K_MIN_VALIDITY, K_DURATION),
				"role \"%s\": min_validity (%d) must be less than duration_seconds (%d%s)",
				r->name, role->sched.min_validity,
				aws->duration_seconds,
				chained ? ", the most for a chained role" : "");
	if (!aws->session_name) {
		if (asprintf(&aws->session_name, "credfs-%s", r->name) < 0) {
			aws->session_name = NULL;
			return cfg_fail_oom(p);
		}
		if (strlen(aws->session_name) > SESSION_NAME_MAX)
			aws->session_name[SESSION_NAME_MAX] = '\0';
	}
	if (role->pres.config_style == CFG_STYLE_WEB_IDENTITY && chained)
		return cfg_fail(p, blame_line(p, r, K_CONFIG_STYLE, K_CONFIG_STYLE),
				"role \"%s\": config_style = web_identity needs a token, and a source_role role has none; set config_style = process for it",
				r->name);
	return 0;
}

/* Every transitive tag key must be one of the role's tags. */
static int aws_extras(struct parser *p, const struct section *r,
		      const struct cfg_role *role)
{
	const struct cfg_session_extras *e = &role->x.aws.extras;

	for (size_t i = 0; i < e->n_transitive_tag_keys; i++) {
		const char *key = e->transitive_tag_keys[i];
		bool found = false;

		for (size_t j = 0; j < e->n_tags && !found; j++)
			found = !strcasecmp(e->tags[j].key, key);
		if (!found)
			return cfg_fail(p, r->v[K_TRANSITIVE].line,
					"role \"%s\": transitive tag key \"%s\" is not one of its tags",
					r->name, key);
	}
	return 0;
}

int cfg_build_role(struct parser *p, struct section *r,
		   const struct cfg_signer *signer, struct cfg_role *role)
{
	memcpy(role->name, r->name, sizeof(role->name));
	role->line = r->line;
	init_role(role);
	if (apply_keys(p, r, role))
		return -1;
	if (aws_region(p, r, role) || aws_endpoint(p, r, role) ||
	    aws_role_arn(p, r, role))
		return -1;
	if (token_source(p, r, signer, role) ||
	    token_audience(p, signer, role))
		return -1;
	return aws_session(p, r, role) || aws_extras(p, r, role) ? -1 : 0;
}
