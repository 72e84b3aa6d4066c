/*
 * The configuration file: an INI document parsed with inih and validated
 * into plain structs.  Every problem is reported through struct cfg_error
 * with the file and line of the key that is wrong; nothing here prints.
 *
 * A role's settings come in three parts, so that a reload can tell what a
 * change means:
 *   - exchange (struct cfg_exchange): what the token endpoint needs.  A
 *     change makes the role renew on its next read.
 *   - schedule (struct cfg_schedule): when to renew and how long a reader
 *     may wait.  A change moves the refresh point; credentials are kept.
 *   - presentation (struct cfg_presentation): who may read the files and
 *     how they look.  A change keeps the credentials and makes no call.
 *
 * After cfg_load() succeeds every role is complete: [credfs] defaults are
 * applied, session_name, audience and the endpoints are filled in, and
 * source_role references are resolved and free of cycles.  An AWS role
 * without sts_endpoint (neither its own nor [credfs]'s) takes
 * AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL, from the environment, as the
 * AWS SDKs do, and only then the default endpoint of its region.
 */
#ifndef CREDFS_CONFIG_H
#define CREDFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "compiler.h"
#include "names.h"

#define CFG_ROLE_NAME_MAX 64
#define CFG_ERROR_TEXT_MAX 512

struct cfg_error {
	char file[4096];
	int line;			/* 0 when the error has no line */
	char text[CFG_ERROR_TEXT_MAX];	/* a plain sentence, no secret in it */
};

/* Which cloud a role's credentials are for (cloud =). */
enum cfg_cloud {
	CFG_CLOUD_AWS,
	CFG_CLOUD_GCP,
	CFG_CLOUD_AZURE,
};

/* Where a role's web identity token comes from. */
enum cfg_token_source {
	CFG_TOKEN_SIGNED,	/* subject =: credfs signs it with [signer] */
	CFG_TOKEN_FILE,		/* web_identity_token_file =: read afresh */
	CFG_TOKEN_CHAINED,	/* source_role =: AssumeRole, no token (AWS) */
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

/* What STS is sent beside the role: a session policy (also with web
 * identity) and, for AssumeRole, the chaining extras. */
struct cfg_session_extras {
	char *policy;			/* inline session policy JSON, compact */
	char **policy_arns;
	size_t n_policy_arns;
	char *external_id;		/* AssumeRole only */
	struct cfg_tag *tags;		/* AssumeRole only */
	size_t n_tags;
	char **transitive_tag_keys;	/* AssumeRole only */
	size_t n_transitive_tag_keys;
	char *source_identity;		/* AssumeRole only */
};

struct cfg_aws {
	char *role_arn;
	char *session_name;		/* default credfs-NAME */
	char *region;
	char *sts_endpoint;		/* always set after load, no trailing "/" */
	int use_fips_endpoint;
	int duration_seconds;		/* capped at 3600 for a chained role */
	struct cfg_session_extras extras;
};

struct cfg_gcp {
	char *service_account;		/* NULL: no impersonation */
	char *token_url;		/* always set: Google's STS by default */
	char *impersonation_url;	/* always set, no trailing "/" */
	char *scope;			/* always set */
};

struct cfg_azure {
	char *tenant_id;		/* a GUID, lower case */
	char *client_id;		/* a GUID, lower case */
	char *authority_host;		/* always set, ends with "/" */
	char *scope;			/* always set */
};

/* Everything the token endpoint needs.  Only the part of the role's cloud
 * is filled in; the others are zero. */
struct cfg_exchange {
	enum cfg_cloud cloud;
	enum cfg_token_source token_source;
	char *subject;			/* CFG_TOKEN_SIGNED */
	char *audience;			/* CFG_TOKEN_SIGNED: always set after load */
	char *web_identity_token_file;	/* CFG_TOKEN_FILE: absolute after cfg_load */
	char *source_role;		/* CFG_TOKEN_CHAINED: the source's name */
	char *ca_file;			/* NULL: system CAs */
	struct cfg_aws aws;		/* CFG_CLOUD_AWS */
	struct cfg_gcp gcp;		/* CFG_CLOUD_GCP */
	struct cfg_azure azure;		/* CFG_CLOUD_AZURE */
};

/* When to renew and how long a read may wait. */
struct cfg_schedule {
	double refresh_fraction;	/* 0 < f < 1 */
	int min_validity;		/* seconds */
	int wait_timeout;		/* seconds */
	double refresh_jitter;		/* 0 .. 0.5 */
};

/* Who may read the role's files, and what they say about where they are. */
struct cfg_presentation {
	uid_t uid;
	gid_t gid;
	mode_t mode;			/* 0400 or 0440 */
	enum cfg_config_style config_style;
	char *consumer_path;		/* absolute, no trailing "/"; NULL: MOUNTPOINT/NAME */
	unsigned authorization_token_rotation;	/* bump to replace the endpoint token */
};

struct cfg_role {
	char name[CFG_ROLE_NAME_MAX + 1];
	int line;			/* line of the [role NAME] header */
	struct cfg_exchange x;
	struct cfg_schedule sched;
	struct cfg_presentation pres;
	size_t source_index;		/* CFG_TOKEN_CHAINED: index into cfg.roles */
};

struct cfg_signer {
	int present;			/* a [signer] section exists */
	int line;			/* its header line */
	char *key;
	int key_line;
	char *issuer;
	char *audience;			/* default sts.amazonaws.com */
	int token_lifetime;
	int clock_skew;			/* seconds iat/nbf are backdated */
	char **previous_keys;
	int *previous_key_lines;
	size_t n_previous_keys;
};

/* Daemon-wide bounds on token-endpoint requests ([credfs]). */
struct cfg_fleet {
	double max_sts_rate;		/* requests per second, 0: no limit */
	unsigned max_sts_inflight;	/* 0: no limit */
	char *host_id;			/* NULL: /etc/machine-id */
};

/* One listen address of [endpoint]. */
struct cfg_listen {
	char text[64];			/* as written: "127.0.0.1:9911", "[::1]:9911" */
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct cfg_endpoint {
	int present;			/* an [endpoint] section exists */
	int line;
	struct cfg_listen *listen;	/* at least one when present */
	size_t n_listen;
	char *imds_role;		/* NULL: no IMDSv2 */
	size_t imds_role_index;		/* index into cfg.roles */
};

struct cfg {
	char *path;
	struct cfg_signer signer;
	struct cfg_fleet fleet;
	struct cfg_endpoint endpoint;
	struct cfg_role *roles;
	size_t n_roles;
	struct name_index names;	/* role name -> index into roles */
};

/* Parses and validates path.  On success returns 0 and *out (free with
 * cfg_free).  On failure returns -1, fills err, and *out is NULL. */
int cfg_load(const char *path, struct cfg **out, struct cfg_error *err) WUR;

/* Same, and *snapshot: a sealed memfd holding exactly the text parsed, so
 * that a process that must start again while the file does not load can
 * go on with the configuration in force (cfg_load_kept).  The caller owns
 * it; -1 on failure. */
int cfg_load_snapshot(const char *path, struct cfg **out, int *snapshot,
		      struct cfg_error *err) WUR;
/* Parses what a snapshot of cfg_load_snapshot holds (it stays open and
 * unchanged), relative paths resolved beside path, errors naming path. */
int cfg_load_kept(int snapshot, const char *path, struct cfg **out,
		  struct cfg_error *err) WUR;

/* Same, from a string (for tests and fuzzing); name is used in errors. */
int cfg_load_string(const char *text, const char *name, struct cfg **out,
		    struct cfg_error *err) WUR;

void cfg_free(struct cfg *cfg);

/* Whether two roles' parts are the same.  A chained role's source is
 * compared by name. */
int cfg_exchange_equal(const struct cfg_exchange *a, const struct cfg_exchange *b);
int cfg_schedule_equal(const struct cfg_schedule *a, const struct cfg_schedule *b);
int cfg_presentation_equal(const struct cfg_presentation *a,
			   const struct cfg_presentation *b);

/* A digest of every exchange setting (the fields cfg_exchange_equal
 * compares), stable across processes and versions of the same
 * configuration, so that a successor can tell whether credentials handed
 * over (daemon/takeover.c) were obtained with the settings it has.
 * 0 or -1. */
#define CFG_FINGERPRINT_LEN 32
int cfg_exchange_fingerprint(const struct cfg_exchange *x,
			     unsigned char out[CFG_FINGERPRINT_LEN]) WUR;

/* The role called name, or NULL. */
const struct cfg_role *cfg_find_role(const struct cfg *cfg, const char *name);

/* "FILE:LINE: text" (or "FILE: text" without a line) into out. */
void cfg_error_format(const struct cfg_error *err, char *out, size_t outlen);

/* "aws", "gcp" or "azure". */
const char *cfg_cloud_name(enum cfg_cloud c);

#endif
