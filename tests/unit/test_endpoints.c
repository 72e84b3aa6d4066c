/*
 * Unit tests of endpoint resolution: which STS URL a role ends up with for
 * its region, partition and FIPS setting, and how an explicit sts_endpoint,
 * AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL in the daemon's environment
 * rank against each other (the order the AWS SDKs use).  One table row per
 * case: configuration keys, environment, and the expected endpoint or the
 * expected error.  Then the URL rule that every endpoint key of every cloud
 * follows, on what libcurl's URL parser makes of the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "endpoints.h"

#define ARN "arn:aws:iam::123456789012:role/app"

struct endpoint_case {
	const char *name;
	const char *credfs;	/* keys of [credfs] */
	const char *role;	/* keys of [role app] */
	const char *env_sts;	/* AWS_ENDPOINT_URL_STS, NULL: unset */
	const char *env_any;	/* AWS_ENDPOINT_URL, NULL: unset */
	const char *ignore;	/* AWS_IGNORE_CONFIGURED_ENDPOINT_URLS */
	const char *want;	/* the role's sts_endpoint, or NULL ... */
	const char *error;	/* ... and a part of the error instead */
	int error_line;		/* the error's line (0: none) */
};

static const struct endpoint_case cases[] = {
	/* Regions and partitions. */
	{ "regional", "region = ap-northeast-1\n", "", NULL, NULL, NULL,
	  "https://sts.ap-northeast-1.amazonaws.com", NULL, 0 },
	{ "regional us-east-1", "region = us-east-1\n", "", NULL, NULL, NULL,
	  "https://sts.us-east-1.amazonaws.com", NULL, 0 },
	{ "china", "region = cn-north-1\n", "", NULL, NULL, NULL,
	  "https://sts.cn-north-1.amazonaws.com.cn", NULL, 0 },
	{ "china northwest", "region = cn-northwest-1\n", "", NULL, NULL, NULL,
	  "https://sts.cn-northwest-1.amazonaws.com.cn", NULL, 0 },
	{ "govcloud", "region = us-gov-west-1\n", "", NULL, NULL, NULL,
	  "https://sts.us-gov-west-1.amazonaws.com", NULL, 0 },
	{ "region per role", "region = eu-west-1\n", "region = sa-east-1\n",
	  NULL, NULL, NULL, "https://sts.sa-east-1.amazonaws.com", NULL, 0 },

	/* FIPS. */
	{ "fips us-east-1", "region = us-east-1\nuse_fips_endpoint = true\n",
	  "", NULL, NULL, NULL, "https://sts-fips.us-east-1.amazonaws.com",
	  NULL, 0 },
	{ "fips us-west-2", "region = us-west-2\nuse_fips_endpoint = yes\n",
	  "", NULL, NULL, NULL, "https://sts-fips.us-west-2.amazonaws.com",
	  NULL, 0 },
	{ "fips ca-central-1", "region = ca-central-1\n",
	  "use_fips_endpoint = 1\n", NULL, NULL, NULL,
	  "https://sts-fips.ca-central-1.amazonaws.com", NULL, 0 },
	{ "fips govcloud is the regular endpoint",
	  "region = us-gov-east-1\nuse_fips_endpoint = true\n", "", NULL, NULL,
	  NULL, "https://sts.us-gov-east-1.amazonaws.com", NULL, 0 },
	{ "fips off", "region = us-east-1\nuse_fips_endpoint = false\n", "",
	  NULL, NULL, NULL, "https://sts.us-east-1.amazonaws.com", NULL, 0 },
	{ "fips unsupported region",
	  "region = eu-west-1\nuse_fips_endpoint = true\n", "", NULL, NULL,
	  NULL, NULL, "no FIPS STS endpoint in region eu-west-1", 3 },
	{ "fips unsupported china", "region = cn-north-1\n",
	  "use_fips_endpoint = true\n", NULL, NULL, NULL, NULL,
	  "no FIPS STS endpoint in region cn-north-1", 7 },
	{ "fips with explicit endpoint",
	  "region = eu-west-1\nuse_fips_endpoint = true\n"
	  "sts_endpoint = https://sts.internal.example\n", "", NULL, NULL, NULL,
	  "https://sts.internal.example", NULL, 0 },

	/* An explicit sts_endpoint. */
	{ "explicit in credfs",
	  "region = eu-west-1\nsts_endpoint = https://sts.example.com\n", "",
	  NULL, NULL, NULL, "https://sts.example.com", NULL, 0 },
	{ "explicit in role", "region = eu-west-1\n",
	  "sts_endpoint = https://sts.example.com:8443/base\n", NULL, NULL,
	  NULL, "https://sts.example.com:8443/base", NULL, 0 },
	{ "explicit trailing slash", "region = eu-west-1\n",
	  "sts_endpoint = https://sts.example.com/\n", NULL, NULL, NULL,
	  "https://sts.example.com", NULL, 0 },
	{ "explicit loopback http", "region = eu-west-1\n",
	  "sts_endpoint = http://127.0.0.1:5000\n", NULL, NULL, NULL,
	  "http://127.0.0.1:5000", NULL, 0 },

	/* The environment, as the SDKs read it. */
	{ "env sts", "region = eu-west-1\n", "", "https://sts.env.example",
	  NULL, NULL, "https://sts.env.example", NULL, 0 },
	{ "env generic", "region = eu-west-1\n", "", NULL,
	  "https://all.env.example", NULL, "https://all.env.example", NULL, 0 },
	{ "env sts wins over env generic", "region = eu-west-1\n", "",
	  "https://sts.env.example", "https://all.env.example", NULL,
	  "https://sts.env.example", NULL, 0 },
	{ "env empty sts falls to generic", "region = eu-west-1\n", "", "",
	  "https://all.env.example", NULL, "https://all.env.example", NULL, 0 },
	{ "env both empty: regional", "region = eu-west-1\n", "", "", "", NULL,
	  "https://sts.eu-west-1.amazonaws.com", NULL, 0 },
	{ "env trailing slashes dropped", "region = eu-west-1\n", "",
	  "http://127.0.0.1:4566//", NULL, NULL, "http://127.0.0.1:4566", NULL,
	  0 },
	{ "env with a path", "region = eu-west-1\n", "",
	  "https://gw.example.com/sts/", NULL, NULL,
	  "https://gw.example.com/sts", NULL, 0 },
	{ "env ipv6 loopback", "region = eu-west-1\n", "",
	  "http://[::1]:4566", NULL, NULL, "http://[::1]:4566", NULL, 0 },
	{ "env overrides fips", "region = eu-west-1\nuse_fips_endpoint = true\n",
	  "", "https://sts.env.example", NULL, NULL, "https://sts.env.example",
	  NULL, 0 },
	{ "explicit credfs wins over env",
	  "region = eu-west-1\nsts_endpoint = https://sts.example.com\n", "",
	  "https://sts.env.example", "https://all.env.example", NULL,
	  "https://sts.example.com", NULL, 0 },
	{ "explicit role wins over env", "region = eu-west-1\n",
	  "sts_endpoint = https://role.example.com\n", "https://sts.env.example",
	  NULL, NULL, "https://role.example.com", NULL, 0 },
	{ "ignore configured endpoint urls", "region = eu-west-1\n", "",
	  "https://sts.env.example", "https://all.env.example", "TRUE",
	  "https://sts.eu-west-1.amazonaws.com", NULL, 0 },
	{ "ignore set to false", "region = eu-west-1\n", "",
	  "https://sts.env.example", NULL, "false", "https://sts.env.example",
	  NULL, 0 },

	/* A bad value in the environment is an error naming the variable,
	 * with no line: it is not in the file. */
	{ "env sts plain http", "region = eu-west-1\n", "",
	  "http://sts.example.com", NULL, NULL, NULL,
	  "environment variable AWS_ENDPOINT_URL_STS \"http://sts.example.com\": http:// is only allowed for a loopback address",
	  0 },
	{ "env generic plain http", "region = eu-west-1\n", "", NULL,
	  "http://10.0.0.1:4566", NULL, NULL,
	  "environment variable AWS_ENDPOINT_URL \"http://10.0.0.1:4566\": http:// is only allowed for a loopback address",
	  0 },
	{ "env sts not a url", "region = eu-west-1\n", "", "sts.example.com",
	  NULL, NULL, NULL,
	  "environment variable AWS_ENDPOINT_URL_STS must start with https://",
	  0 },
	{ "env sts with a query", "region = eu-west-1\n", "",
	  "https://sts.example.com/?a=b", NULL, NULL, NULL,
	  "environment variable AWS_ENDPOINT_URL_STS \"https://sts.example.com/?a=b\" must not have a query",
	  0 },
	{ "bad env unused when explicit", "region = eu-west-1\n"
	  "sts_endpoint = https://sts.example.com\n", "", "ftp://nope", NULL,
	  NULL, "https://sts.example.com", NULL, 0 },
};

static void set_env(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

static void clear_env(void)
{
	unsetenv("AWS_ENDPOINT_URL_STS");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
}

/* Loads the case; returns 0 if it came out as the table says. */
static int run_case(const struct endpoint_case *c)
{
	char text[2048], msg[1024];
	struct cfg *cfg = NULL;
	struct cfg_error err;
	int ok = 1;

	snprintf(text, sizeof(text),
		 "[credfs]\n%s\n[role app]\nrole_arn = " ARN "\n"
		 "web_identity_token_file = /run/token\n%s",
		 c->credfs, c->role);
	set_env("AWS_ENDPOINT_URL_STS", c->env_sts);
	set_env("AWS_ENDPOINT_URL", c->env_any);
	set_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", c->ignore);
	if (cfg_load_string(text, "e.conf", &cfg, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		if (c->want || !strstr(err.text, c->error) ||
		    err.line != c->error_line) {
			fprintf(stderr, "    %s: unexpected error: %s\n",
				c->name, msg);
			ok = 0;
		}
	} else {
		const char *got = cfg->roles[0].x.aws.sts_endpoint;

		if (!c->want || strcmp(got, c->want)) {
			fprintf(stderr, "    %s: endpoint %s, expected %s\n",
				c->name, got, c->want ? c->want : c->error);
			ok = 0;
		}
		cfg_free(cfg);
	}
	clear_env();
	return ok ? 0 : -1;
}

static void test_endpoint_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(run_case(&cases[i]) == 0);
}

/* The pure function, without any configuration or environment. */
static void test_default_endpoint_pure(void)
{
	static const struct {
		const char *region;
		int fips;
		const char *want;
	} t[] = {
		{ "eu-central-1", 0, "https://sts.eu-central-1.amazonaws.com" },
		{ "eu-central-1", 1, "https://sts.eu-central-1.amazonaws.com" },
		{ "us-east-2", 1, "https://sts-fips.us-east-2.amazonaws.com" },
		{ "cn-north-1", 0, "https://sts.cn-north-1.amazonaws.com.cn" },
		{ "us-gov-west-1", 1, "https://sts.us-gov-west-1.amazonaws.com" },
	};

	setenv("AWS_ENDPOINT_URL_STS", "https://sts.env.example", 1);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *url = aws_default_sts_endpoint(t[i].region, t[i].fips);

		CHECK_STR(url, t[i].want);
		free(url);
	}
	CHECK(aws_default_sts_endpoint("not a region", 0) == NULL);
	clear_env();
}

/* Every role without sts_endpoint takes the environment's; a role with
 * its own keeps it. */
static void test_env_applies_per_role(void)
{
	static const char text[] =
		"[credfs]\nregion = eu-west-1\n"
		"[role a]\nrole_arn = " ARN "\nweb_identity_token_file = /t\n"
		"[role b]\nrole_arn = " ARN "\nsource_role = a\n"
		"sts_endpoint = https://b.example.com\n"
		"[role c]\nrole_arn = " ARN "\nsource_role = b\n";
	struct cfg *cfg = NULL;
	struct cfg_error err;

	setenv("AWS_ENDPOINT_URL", "http://localhost:4566/", 1);
	CHECK(cfg_load_string(text, "e.conf", &cfg, &err) == 0);
	if (cfg) {
		CHECK_STR(cfg->roles[0].x.aws.sts_endpoint, "http://localhost:4566");
		CHECK_STR(cfg->roles[1].x.aws.sts_endpoint, "https://b.example.com");
		CHECK_STR(cfg->roles[2].x.aws.sts_endpoint, "http://localhost:4566");
	}
	cfg_free(cfg);
	clear_env();
}


/* The URL rule, as libcurl parses the URL, for every key that follows it:
 * the value goes into a role of the key's cloud; error NULL means it
 * loads. */
static const struct url_case {
	const char *key;
	const char *value;
	const char *error;	/* the whole error text after "LINE: " */
} url_cases[] = {
	{ "sts_endpoint", "HTTPS://STS.EXAMPLE.COM", NULL },
	{ "sts_endpoint", "http://127.1:5000", NULL },	/* 127.0.0.1 */
	{ "sts_endpoint", "http://localhost/sts", NULL },
	{ "sts_endpoint", "https://[2001:db8::1]:8443/", NULL },
	{ "sts_endpoint", "https:/sts.example.com",
	  "sts_endpoint must start with https:// (or http:// for a loopback address), not \"https:/sts.example.com\"" },
	{ "sts_endpoint", "https://sts.example.com:/x",
	  "sts_endpoint \"https://sts.example.com:/x\" has an invalid port" },
	{ "sts_endpoint", "https://sts.example.com:0",
	  "sts_endpoint \"https://sts.example.com:0\" has an invalid port" },
	{ "sts_endpoint", "https://sts.example.com:65536",
	  "sts_endpoint \"https://sts.example.com:65536\" has an invalid port" },
	{ "sts_endpoint", "https://sts.example.com/#",
	  "sts_endpoint \"https://sts.example.com/#\" must not have a fragment" },
	{ "sts_endpoint", "https://sts.example.com/?",
	  "sts_endpoint \"https://sts.example.com/?\" must not have a query" },
	{ "sts_endpoint", "https://@sts.example.com/",
	  "sts_endpoint must not contain a user name or password" },
	/* Never echoed: a password may be in it, and a fragment or a space
	 * after it does not change that. */
	{ "sts_endpoint", "https://u:SECRET@sts.example.com/#x",
	  "sts_endpoint must not contain a user name or password" },
	{ "sts_endpoint", "https://u:SE CRET@sts.example.com/",
	  "sts_endpoint must not contain a user name or password" },
	{ "sts_endpoint", "u:SECRET@sts.example.com",
	  "sts_endpoint must not contain a user name or password" },
	{ "sts_endpoint", "http://[::1",
	  "sts_endpoint \"http://[::1\" has no closing \"]\"" },
	{ "sts_endpoint", "http://[zz::1]/",
	  "sts_endpoint \"http://[zz::1]/\" has an invalid IPv6 address" },
	{ "sts_endpoint", "https://st~s.example.com/",
	  "sts_endpoint \"https://st~s.example.com/\" has an invalid host name" },
	{ "sts_endpoint", "https://sts.example.com;x/",
	  "sts_endpoint \"https://sts.example.com;x/\" has an invalid host name" },
	{ "sts_endpoint", "http://[::ffff:127.0.0.1]/",
	  "sts_endpoint \"http://[::ffff:127.0.0.1]/\": http:// is only allowed for a loopback address; use https://" },
	{ "token_url", "http://127.0.0.1:8080/v1/token", NULL },
	{ "token_url", "http://sts.googleapis.com/v1/token",
	  "token_url \"http://sts.googleapis.com/v1/token\": http:// is only allowed for a loopback address; use https://" },
	{ "token_url", "https://sts.googleapis.com/v1/token#x",
	  "token_url \"https://sts.googleapis.com/v1/token#x\" must not have a fragment" },
	{ "impersonation_url", "https://iam.example.com:8443/v1", NULL },
	{ "impersonation_url", "ftp://iam.example.com/",
	  "impersonation_url must start with https:// (or http:// for a loopback address), not \"ftp://iam.example.com/\"" },
	{ "authority_host", "http://[::1]:9000/", NULL },
	{ "authority_host", "http://10.1.2.3/",
	  "authority_host \"http://10.1.2.3/\": http:// is only allowed for a loopback address; use https://" },
	{ "authority_host", "https://login.example.com/?p=1",
	  "authority_host \"https://login.example.com/?p=1\" must not have a query" },
};

/* A role of the cloud the key belongs to, with key = value added. */
static void url_case_text(const struct url_case *c, char *text, size_t len)
{
	if (!strcmp(c->key, "token_url") || !strcmp(c->key, "impersonation_url"))
		snprintf(text, len,
			 "[role g]\ncloud = gcp\nweb_identity_token_file = /t\n"
			 "audience = //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/r\n"
			 "%s = %s\n", c->key, c->value);
	else if (!strcmp(c->key, "authority_host"))
		snprintf(text, len,
			 "[role z]\ncloud = azure\nweb_identity_token_file = /t\n"
			 "tenant_id = 00000000-0000-0000-0000-000000000000\n"
			 "client_id = 11111111-1111-1111-1111-111111111111\n"
			 "%s = %s\n", c->key, c->value);
	else
		snprintf(text, len,
			 "[role app]\nregion = eu-west-1\nrole_arn = " ARN "\n"
			 "web_identity_token_file = /t\n%s = %s\n", c->key,
			 c->value);
}

static void test_url_rules(void)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *c = &url_cases[i];
		char text[1024];
		struct cfg *cfg = NULL;
		struct cfg_error err;
		int rc;

		url_case_text(c, text, sizeof(text));
		rc = cfg_load_string(text, "u.conf", &cfg, &err);
		if (!c->error && rc) {
			fprintf(stderr, "    %s = %s: unexpected error: %d: %s\n",
				c->key, c->value, err.line, err.text);
			check_failures_in_test++;
		} else if (c->error && !rc) {
			fprintf(stderr, "    %s = %s: loaded\n", c->key, c->value);
			check_failures_in_test++;
		} else if (c->error) {
			CHECK_STR(err.text, c->error);
			CHECK(err.line == 5 || err.line == 6);
		}
		cfg_free(cfg);
	}
}

/* The environment names an STS endpoint for AWS roles only; a bad one is
 * not even looked at when only other clouds are configured. */
static void test_env_is_for_aws_only(void)
{
	static const char text[] =
		"[role g]\ncloud = gcp\nweb_identity_token_file = /t\n"
		"audience = //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/r\n"
		"[role z]\ncloud = azure\nweb_identity_token_file = /t\n"
		"tenant_id = 00000000-0000-0000-0000-000000000000\n"
		"client_id = 11111111-1111-1111-1111-111111111111\n";
	struct cfg *cfg = NULL;
	struct cfg_error err;

	setenv("AWS_ENDPOINT_URL_STS", "http://sts.example.com", 1);
	CHECK(cfg_load_string(text, "e.conf", &cfg, &err) == 0);
	if (cfg) {
		CHECK(cfg->roles[0].x.aws.sts_endpoint == NULL);
		CHECK_STR(cfg->roles[0].x.gcp.token_url, "https://sts.googleapis.com/v1/token");
		CHECK(cfg->roles[1].x.aws.sts_endpoint == NULL);
		CHECK_STR(cfg->roles[1].x.azure.authority_host, "https://login.microsoftonline.com/");
	}
	cfg_free(cfg);
	clear_env();
}

int main(void)
{
	static const struct check_case all[] = {
		CHECK_CASE(test_endpoint_table),
		CHECK_CASE(test_default_endpoint_pure),
		CHECK_CASE(test_env_applies_per_role),
		CHECK_CASE(test_url_rules),
		CHECK_CASE(test_env_is_for_aws_only),
	};

	clear_env();
	return check_main(all, sizeof(all) / sizeof(all[0]));
}
