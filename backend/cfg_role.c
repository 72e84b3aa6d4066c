/*
 * One role, from its [role NAME] section and the [credfs] defaults.
 *
 * The key table puts every value where it goes (apply_keys); what is left
 * is done by concern, one function each, in this order:
 *   - the cloud: which keys a role of that cloud may have at all;
 *   - AWS: the region, the STS endpoint, role_arn;
 *   - the token source: exactly one of subject, web_identity_token_file
 *     and source_role (AWS only), each with what it needs;
 *   - the audience of the token;
 *   - AWS: the session (duration, chaining, name, config_style) and the
 *     chaining extras; GCP: the workload identity provider and Google's
 *     endpoints; Azure: the tenant, the client and Entra ID's endpoint.
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

#define GCP_TOKEN_URL "https://sts.googleapis.com/v1/token"
#define GCP_IMPERSONATION_URL "https://iamcredentials.googleapis.com/v1"
#define GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define GCP_PROVIDER_SHAPE						\
	"//iam.googleapis.com/projects/NUMBER/locations/global/"	\
	"workloadIdentityPools/POOL/providers/PROVIDER"
#define AZURE_AUTHORITY_HOST "https://login.microsoftonline.com/"
#define AZURE_SCOPE "https://management.azure.com/.default"
#define AZURE_AUDIENCE "api://AzureADTokenExchange"

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

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* ---- the cloud ---- */

/* "aws", "gcp and azure", ...: the clouds whose roles take key k. */
static void clouds_of(enum key_id k, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int c = 0; c < CFG_CLOUDS && used < len; c++)
		if (cfg_keys[k].at[c].ctype)
			used += (size_t)snprintf(out + used, len - used, "%s%s",
						 used ? " and " : "",
						 cfg_cloud_name((enum cfg_cloud)c));
}

/* A key the role sets for itself must be one of its cloud's; the first
 * that is not, in file order, is the error.  (A [credfs] default for
 * another cloud is simply not used.) */
static int check_cloud_keys(struct parser *p, const struct section *r,
			    enum cfg_cloud cloud)
{
	enum key_id bad = K_COUNT;
	char clouds[64];

	for (int k = 0; k < K_COUNT; k++) {
		const struct key_def *d = &cfg_keys[k];

		if (d->part != PART_ROLE || !r->v[k].line ||
		    d->at[cloud].ctype || d->inert_elsewhere)
			continue;
		if (bad == K_COUNT || r->v[k].line < r->v[bad].line)
			bad = (enum key_id)k;
	}
	if (bad == K_COUNT)
		return 0;
	clouds_of(bad, clouds, sizeof(clouds));
	return cfg_fail(p, r->v[bad].line,
			"role \"%s\": %s is a key of %s roles, and this role is cloud = %s%s",
			r->name, cfg_keys[bad].name, clouds,
			cfg_cloud_name(cloud),
			bad == K_SOURCE_ROLE ?
				": give it subject or web_identity_token_file" :
				"");
}

/* Every key of the role's cloud, from the role or else from [credfs],
 * into its place.  The role's own values move; defaults are copied, as
 * every role may take them. */
static int apply_keys(struct parser *p, struct section *r,
		      struct cfg_role *role)
{
	for (int k = 0; k < K_COUNT; k++) {
		const struct cfg_place *pl = &cfg_keys[k].at[role->x.cloud];
		bool own = r->v[k].line;
		struct val *v = own ? &r->v[k] : &p->credfs.v[k];

		if (cfg_keys[k].part != PART_ROLE || !pl->ctype || !v->line)
			continue;
		if (cfg_store(p, pl, role, v, own))
			return -1;
	}
	return 0;
}

static void init_role(struct cfg_role *role, enum cfg_cloud cloud)
{
	role->x.cloud = cloud;
	if (cloud == CFG_CLOUD_AWS)
		role->x.aws = aws_defaults;
	role->sched = schedule_defaults;
	role->pres = presentation_defaults;
	role->pres.uid = getuid();
	role->pres.gid = getgid();
}

/* ---- AWS: where STS is ---- */

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

/* Exactly one token source, with what it needs: a signer for subject, an
 * AWS role of this file for source_role. */
static int token_source(struct parser *p, const struct section *r,
			const struct cfg_signer *signer, struct cfg_role *role)
{
	static const enum key_id sources[] = { K_SUBJECT, K_TOKEN_FILE,
					       K_SOURCE_ROLE };
	const char *which = role->x.cloud == CFG_CLOUD_AWS ?
		"subject, web_identity_token_file or source_role" :
		"subject or web_identity_token_file";
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
	if (p->roles[j]->v[K_CLOUD].line &&
	    p->roles[j]->v[K_CLOUD].num != CFG_CLOUD_AWS)
		return cfg_fail(p, r->v[K_SOURCE_ROLE].line,
				"role \"%s\": source_role \"%s\" is a cloud = %s role; AssumeRole needs AWS credentials",
				r->name, role->x.source_role,
				cfg_cloud_name((enum cfg_cloud)p->roles[j]->v[K_CLOUD].num));
	role->x.token_source = CFG_TOKEN_CHAINED;
	role->source_index = (size_t)j;
	return 0;
}

/* "//iam.googleapis.com/projects/NUMBER/locations/global/
 * workloadIdentityPools/POOL/providers/PROVIDER". */
static bool gcp_provider_ok(const char *s)
{
	static const char *const steps[] = {
		"//iam.googleapis.com/projects/",
		"/locations/global/workloadIdentityPools/", "/providers/",
	};
	static const char id_chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789_-";

	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		size_t n;

		if (!starts_with(s, steps[i]))
			return false;
		s += strlen(steps[i]);
		n = strspn(s, i ? id_chars : "0123456789");
		if (n < 1 || n > 64)
			return false;
		s += n;
	}
	return !*s;
}

/* A signed token's aud: the role's audience, else its cloud's default.
 * A GCP role always names its workload identity provider, whatever its
 * token source, because Google's STS takes it with every exchange. */
static int token_audience(struct parser *p, const struct section *r,
			  const struct cfg_signer *signer, struct cfg_role *role)
{
	struct cfg_exchange *x = &role->x;
	int line = r->v[K_AUDIENCE].line;

	if (x->cloud == CFG_CLOUD_GCP) {
		if (!x->audience)
			return cfg_fail(p, r->line,
					"role \"%s\": audience is required for a gcp role: its workload identity provider, " GCP_PROVIDER_SHAPE,
					r->name);
		if (!gcp_provider_ok(x->audience))
			return cfg_fail(p, line,
					"role \"%s\": audience must be a workload identity provider, " GCP_PROVIDER_SHAPE ", not \"%s\"",
					r->name, x->audience);
		return 0;
	}
	if (x->token_source != CFG_TOKEN_SIGNED) {
		if (line)
			return cfg_fail(p, line,
					"role \"%s\": audience is only for a role with subject, whose token credfs signs",
					r->name);
		return 0;
	}
	return fill_default(p, &x->audience, x->cloud == CFG_CLOUD_AZURE ?
				     AZURE_AUDIENCE : signer->audience);
}

/* ---- each cloud's own ---- */

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

static int gcp_part(struct parser *p, struct cfg_role *role)
{
	struct cfg_gcp *g = &role->x.gcp;

	return fill_default(p, &g->token_url, GCP_TOKEN_URL) ||
	       fill_default(p, &g->impersonation_url, GCP_IMPERSONATION_URL) ||
	       fill_default(p, &g->scope, GCP_SCOPE) ? -1 : 0;
}

static int azure_part(struct parser *p, const struct section *r,
		      struct cfg_role *role)
{
	struct cfg_azure *a = &role->x.azure;

	if (!a->tenant_id)
		return cfg_fail(p, r->line,
				"role \"%s\": tenant_id is required for an azure role (the directory's GUID)",
				r->name);
	if (!a->client_id)
		return cfg_fail(p, r->line,
				"role \"%s\": client_id is required for an azure role (the application's GUID)",
				r->name);
	return fill_default(p, &a->authority_host, AZURE_AUTHORITY_HOST) ||
	       fill_default(p, &a->scope, AZURE_SCOPE) ? -1 : 0;
}

int cfg_build_role(struct parser *p, struct section *r,
		   const struct cfg_signer *signer, struct cfg_role *role)
{
	enum cfg_cloud cloud = r->v[K_CLOUD].line ?
		(enum cfg_cloud)r->v[K_CLOUD].num : CFG_CLOUD_AWS;

	memcpy(role->name, r->name, sizeof(role->name));
	role->line = r->line;
	if (check_cloud_keys(p, r, cloud))
		return -1;
	init_role(role, cloud);
	if (apply_keys(p, r, role))
		return -1;
	if (cloud == CFG_CLOUD_AWS &&
	    (aws_region(p, r, role) || aws_endpoint(p, r, role) ||
	     aws_role_arn(p, r, role)))
		return -1;
	if (token_source(p, r, signer, role) ||
	    token_audience(p, r, signer, role))
		return -1;
	switch (cloud) {
	case CFG_CLOUD_AWS:
		return aws_session(p, r, role) || aws_extras(p, r, role) ? -1 : 0;
	case CFG_CLOUD_GCP:
		return gcp_part(p, role);
	case CFG_CLOUD_AZURE:
		return azure_part(p, r, role);
	}
	return 0;
}
