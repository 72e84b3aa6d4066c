/*
 * The configuration file: an INI document parsed with inih and validated
 * into plain structs.  Every problem is reported through struct cfg_error
 * with the file and line it stands on; nothing here prints.
 *
 * After cfg_load() succeeds every role is complete: [credfs] defaults are
 * applied, session_name and sts_endpoint are filled in, and source_role
 * references are resolved and free of cycles.  A role without sts_endpoint
 * (neither its own nor [credfs]'s) takes AWS_ENDPOINT_URL_STS, then
 * AWS_ENDPOINT_URL, from the environment, as the AWS SDKs do, and only then
 * the default endpoint of its region.
 */
#ifndef CREDFS_CONFIG_H
#define CREDFS_CONFIG_H

#include <stddef.h>
#include <sys/types.h>
#include "compiler.h"

#define CFG_ROLE_NAME_MAX 64
#define CFG_ERROR_TEXT_MAX 512

struct cfg_error {
	char file[4096];
	int line;			/* 0 when the error has no line */
	char text[CFG_ERROR_TEXT_MAX];	/* a plain sentence, no secret in it */
};

/* Where a role's web identity token comes from. */
enum cfg_token_source {
	CFG_TOKEN_SIGNED,	/* subject =: credfs signs it with [signer] */
	CFG_TOKEN_FILE,		/* web_identity_token_file =: read afresh */
	CFG_TOKEN_CHAINED,	/* source_role =: AssumeRole, no token */
};

/* What a role's config file holds (config_style =), for the consumer's SDK. */
enum cfg_config_style {
	CFG_STYLE_REGION,	/* region only; credentials come from credentials */
	CFG_STYLE_PROCESS,	/* + credential_process = cat DIR/process.json */
	CFG_STYLE_WEB_IDENTITY,	/* + role_arn, web_identity_token_file = DIR/token */
};

struct cfg_tag {
	char *key;
	char *value;
};

struct cfg_role {
	char name[CFG_ROLE_NAME_MAX + 1];
	int line;			/* line of the [role NAME] header */

	char *role_arn;
	enum cfg_token_source token_source;
	char *subject;			/* CFG_TOKEN_SIGNED */
	char *web_identity_token_file;	/* CFG_TOKEN_FILE */
	char *source_role;		/* CFG_TOKEN_CHAINED */
	size_t source_index;		/* CFG_TOKEN_CHAINED: index into cfg.roles */
	char *session_name;		/* default credfs-NAME */

	/* AssumeRole extras (also sent with web identity where STS takes them). */
	char *external_id;
	char *policy;			/* inline session policy JSON */
	char **policy_arns;
	size_t n_policy_arns;
	struct cfg_tag *tags;
	size_t n_tags;
	char **transitive_tag_keys;
	size_t n_transitive_tag_keys;
	char *source_identity;

	/* [credfs] defaults, possibly overridden per role. */
	char *region;
	char *sts_endpoint;		/* always set after load */
	char *ca_file;			/* NULL: system CAs */
	int use_fips_endpoint;
	int duration_seconds;
	double refresh_fraction;
	int min_validity;
	int wait_timeout;

	uid_t uid;
	gid_t gid;
	mode_t mode;			/* 0400 or 0440 */

	/* What config says, and where the consumer sees this directory
	 * (consumer_path; NULL: MOUNTPOINT/NAME, known only at mount time). */
	enum cfg_config_style config_style;
	char *consumer_path;		/* absolute, no trailing "/" */
};

struct cfg_signer {
	int present;			/* a [signer] section exists */
	int line;			/* its header line */
	char *key;
	int key_line;
	char *issuer;
	char *audience;
	int token_lifetime;
	int clock_skew;			/* seconds iat/nbf are backdated */
	char **previous_keys;
	int *previous_key_lines;
	size_t n_previous_keys;
};

struct cfg {
	char *path;
	struct cfg_signer signer;
	struct cfg_role *roles;
	size_t n_roles;
};

/* Parses and validates path.  On success returns 0 and *out (free with
 * cfg_free).  On failure returns -1, fills err, and *out is NULL. */
int cfg_load(const char *path, struct cfg **out, struct cfg_error *err) WUR;

/* Same, from a string (for tests and fuzzing); name is used in errors. */
int cfg_load_string(const char *text, const char *name, struct cfg **out,
		    struct cfg_error *err) WUR;

void cfg_free(struct cfg *cfg);

/* Whether two roles have the same settings (name included; where they
 * stand in their files and source_index are not settings).  A chained
 * role's source is compared by name only. */
int cfg_role_equal(const struct cfg_role *a, const struct cfg_role *b);

/* The hash credfs indexes role names with (FNV-1a). */
size_t cfg_name_hash(const char *name);

/* The role called name, or NULL. */
const struct cfg_role *cfg_find_role(const struct cfg *cfg, const char *name);

/* "FILE:LINE: text" (or "FILE: text" without a line) into out. */
void cfg_error_format(const struct cfg_error *err, char *out, size_t outlen);

/* The default STS endpoint for a region: regional, with the China and
 * GovCloud partitions and FIPS where it exists.  Caller frees. */
char *cfg_default_endpoint(const char *region, int use_fips) WUR;

#endif
