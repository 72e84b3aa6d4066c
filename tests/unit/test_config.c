/*
 * Unit tests of the configuration loader: the data-driven cases under
 * tests/data/config (one folder per case, see its README.md) and the
 * defaults, endpoints and role chains a user relies on.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_internal.h"
#include "check.h"
#include "config.h"
#include "endpoints.h"

#define CASE_DIR TEST_DATA_DIR "/config"
#define DOCS_DIR TEST_DATA_DIR "/../../docs"
#define MAN_DIR TEST_DATA_DIR "/../../man"

static const char minimal[] =
	"[credfs]\n"
	"region = ap-northeast-1\n"
	"\n"
	"[signer]\n"
	"key = /etc/credfs/signer.pem\n"
	"issuer = https://oidc.example.com\n"
	"\n"
	"[role app]\n"
	"role_arn = arn:aws:iam::123456789012:role/app\n"
	"subject = system:serviceaccount:prod:app\n";

/* Loads text; returns the cfg or NULL and prints the error on failure. */
static struct cfg *load(const char *text)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;
	char msg[1024];

	if (cfg_load_string(text, "test.conf", &cfg, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "    unexpected error: %s\n", msg);
		return NULL;
	}
	return cfg;
}

/* Loads text that must fail; returns "LINE: text" in out. */
static void load_error(const char *text, char *out, size_t len)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	if (!cfg_load_string(text, "test.conf", &cfg, &err)) {
		cfg_free(cfg);
		snprintf(out, len, "(loaded)");
		return;
	}
	CHECK(cfg == NULL);
	CHECK_STR(err.file, "test.conf");
	snprintf(out, len, "%d: %s", err.line, err.text);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case folder names under CASE_DIR starting with prefix, sorted. */
static size_t list_cases(const char *prefix, char ***out)
{
	DIR *d = opendir(CASE_DIR);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	CHECK(d != NULL);
	if (!d) {
		*out = NULL;
		return 0;
	}
	while ((e = readdir(d))) {
		char **grown;

		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown)
			break;
		names = grown;
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	return n;
}

/* The first line of path, without its newline, into out. */
static int read_expected(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* Runs every case folder with the given prefix; each prints a line. */
static size_t run_cases(const char *prefix)
{
	char **names;
	size_t n = list_cases(prefix, &names);

	for (size_t i = 0; i < n; i++) {
		char conf[PATH_MAX], expfile[PATH_MAX];
		char expected[1024], got[1024];
		struct cfg *cfg = NULL;
		struct cfg_error err;
		int ok;

		snprintf(conf, sizeof(conf), "%s/%s/credfs.conf", CASE_DIR,
			 names[i]);
		snprintf(expfile, sizeof(expfile), "%s/%s/expected", CASE_DIR,
			 names[i]);
		if (read_expected(expfile, expected, sizeof(expected))) {
			snprintf(expected, sizeof(expected), "(no expected file)");
		}
		if (cfg_load(conf, &cfg, &err)) {
			snprintf(got, sizeof(got), "%d: %s", err.line, err.text);
			/* The file named in the error is the one loaded. */
			CHECK_STR(err.file, conf);
			CHECK(cfg == NULL);
		} else {
			snprintf(got, sizeof(got), "ok");
			CHECK(cfg != NULL);
			cfg_free(cfg);
		}
		ok = !strcmp(got, expected);
		printf("    %s config/%s\n", ok ? "ok  " : "FAIL", names[i]);
		if (!ok) {
			fprintf(stderr, "    config/%s:\n      expected: %s\n      got:      %s\n",
				names[i], expected, got);
			check_failures_in_test++;
		}
		free(names[i]);
	}
	free(names);
	return n;
}

static void test_data_good_cases(void)
{
	CHECK(run_cases("good-") >= 6);
}

static void test_data_bad_cases(void)
{
	CHECK(run_cases("bad-") >= 25);
}

static void test_defaults(void)
{
	struct cfg *cfg = load(minimal);
	const struct cfg_role *r;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK_STR(cfg->path, "test.conf");
	CHECK(cfg->n_roles == 1);
	r = &cfg->roles[0];
	CHECK_STR(r->name, "app");
	CHECK(r->line == 8);
	CHECK_STR(r->x.aws.role_arn, "arn:aws:iam::123456789012:role/app");
	CHECK(r->x.token_source == CFG_TOKEN_SIGNED);
	CHECK_STR(r->x.subject, "system:serviceaccount:prod:app");
	CHECK(r->x.web_identity_token_file == NULL);
	CHECK(r->x.source_role == NULL);
	CHECK_STR(r->x.aws.region, "ap-northeast-1");
	CHECK_STR(r->x.aws.sts_endpoint, "https://sts.ap-northeast-1.amazonaws.com");
	CHECK(r->x.ca_file == NULL);
	CHECK(r->x.aws.use_fips_endpoint == 0);
	CHECK(r->x.aws.duration_seconds == 3600);
	CHECK(r->sched.refresh_fraction == 0.8);
	CHECK(r->sched.min_validity == 900);
	CHECK(r->sched.wait_timeout == 10);
	CHECK_STR(r->x.aws.session_name, "credfs-app");
	CHECK(r->pres.mode == 0400);
	CHECK(r->pres.uid == getuid());
	CHECK(r->pres.gid == getgid());
	CHECK(r->x.aws.extras.external_id == NULL && r->x.aws.extras.policy == NULL);
	CHECK(r->x.aws.extras.n_policy_arns == 0 && r->x.aws.extras.n_tags == 0);
	CHECK(r->x.aws.extras.n_transitive_tag_keys == 0 && r->x.aws.extras.source_identity == NULL);

	CHECK(cfg->signer.present);
	CHECK(cfg->signer.line == 4);
	CHECK_STR(cfg->signer.key, "/etc/credfs/signer.pem");
	CHECK(cfg->signer.key_line == 5);
	CHECK_STR(cfg->signer.issuer, "https://oidc.example.com");
	CHECK_STR(cfg->signer.audience, "sts.amazonaws.com");
	CHECK(cfg->signer.token_lifetime == 3600);
	CHECK(cfg->signer.clock_skew == 30);
	CHECK(cfg->signer.n_previous_keys == 0);
	cfg_free(cfg);
}

static void test_no_signer_section(void)
{
	struct cfg *cfg = load("[role x]\nregion = eu-west-1\n"
			       "role_arn = arn:aws:iam::123456789012:role/x\n"
			       "web_identity_token_file = /run/token\n");

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK(!cfg->signer.present);
	CHECK(cfg->signer.key == NULL);
	CHECK(cfg->roles[0].x.token_source == CFG_TOKEN_FILE);
	CHECK_STR(cfg->roles[0].x.web_identity_token_file, "/run/token");
	CHECK_STR(cfg->roles[0].x.aws.sts_endpoint,
		  "https://sts.eu-west-1.amazonaws.com");
	cfg_free(cfg);
}

static void test_role_overrides(void)
{
	struct cfg *cfg = load(
		"[credfs]\nregion = us-east-1\nduration_seconds = 7200\n"
		"refresh_fraction = 0.5\nmin_validity = 600\nwait_timeout = 20\n"
		"use_fips_endpoint = true\n"
		"[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		"web_identity_token_file = /t\n"
		"[role b]\nrole_arn = arn:aws:iam::123456789012:role/b\n"
		"web_identity_token_file = /t\nregion = eu-central-1\n"
		"use_fips_endpoint = false\nduration_seconds = 1800\n"
		"refresh_fraction = 0.9\nmin_validity = 60\nwait_timeout = 5\n"
		"uid = 1234\ngid = 5678\nmode = 0440\nsession_name = bee\n"
		"sts_endpoint = https://sts.example.com:8443/\n");
	const struct cfg_role *a, *b;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	a = cfg_find_role(cfg, "a");
	b = cfg_find_role(cfg, "b");
	CHECK(a == &cfg->roles[0] && b == &cfg->roles[1]);
	if (!a || !b)
		goto out;
	CHECK_STR(a->x.aws.region, "us-east-1");
	CHECK_STR(a->x.aws.sts_endpoint, "https://sts-fips.us-east-1.amazonaws.com");
	CHECK(a->x.aws.use_fips_endpoint == 1);
	CHECK(a->x.aws.duration_seconds == 7200 && a->sched.min_validity == 600);
	CHECK(a->sched.refresh_fraction == 0.5 && a->sched.wait_timeout == 20);

	CHECK_STR(b->x.aws.region, "eu-central-1");
	CHECK(b->x.aws.use_fips_endpoint == 0);
	/* A trailing "/" on an endpoint is dropped. */
	CHECK_STR(b->x.aws.sts_endpoint, "https://sts.example.com:8443");
	CHECK(b->x.aws.duration_seconds == 1800 && b->sched.min_validity == 60);
	CHECK(b->sched.refresh_fraction == 0.9 && b->sched.wait_timeout == 5);
	CHECK(b->pres.uid == 1234 && b->pres.gid == 5678 && b->pres.mode == 0440);
	CHECK_STR(b->x.aws.session_name, "bee");
out:
	cfg_free(cfg);
}

static void test_default_endpoints(void)
{
	static const struct {
		const char *region;
		int fips;
		const char *url;
	} t[] = {
		{ "ap-northeast-1", 0, "https://sts.ap-northeast-1.amazonaws.com" },
		{ "cn-north-1", 0, "https://sts.cn-north-1.amazonaws.com.cn" },
		{ "us-gov-west-1", 0, "https://sts.us-gov-west-1.amazonaws.com" },
		{ "us-gov-west-1", 1, "https://sts.us-gov-west-1.amazonaws.com" },
		{ "us-east-1", 1, "https://sts-fips.us-east-1.amazonaws.com" },
		{ "us-west-2", 1, "https://sts-fips.us-west-2.amazonaws.com" },
		{ "ca-central-1", 1, "https://sts-fips.ca-central-1.amazonaws.com" },
		{ "us-east-1", 0, "https://sts.us-east-1.amazonaws.com" },
		/* No FIPS endpoint there: the regular one. */
		{ "eu-west-1", 1, "https://sts.eu-west-1.amazonaws.com" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		char *url = aws_default_sts_endpoint(t[i].region, t[i].fips);

		CHECK_STR(url, t[i].url);
		free(url);
	}
	CHECK(aws_default_sts_endpoint("EU_WEST_1", 0) == NULL);
	CHECK(aws_default_sts_endpoint("", 0) == NULL);
	CHECK(aws_default_sts_endpoint("a/b", 0) == NULL);
}

static void test_chain_resolution(void)
{
	struct cfg *cfg = load(
		"[credfs]\nregion = us-west-2\nduration_seconds = 43200\n"
		"[role top]\nrole_arn = arn:aws:iam::123456789012:role/top\n"
		"source_role = mid\n"
		"[role base]\nrole_arn = arn:aws:iam::123456789012:role/base\n"
		"web_identity_token_file = /t\n"
		"[role mid]\nrole_arn = arn:aws:iam::123456789012:role/mid\n"
		"source_role = base\nduration_seconds = 1800\n");
	const struct cfg_role *top, *base, *mid;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	/* Roles keep the order of the file. */
	CHECK(cfg->n_roles == 3);
	CHECK_STR(cfg->roles[0].name, "top");
	CHECK_STR(cfg->roles[1].name, "base");
	CHECK_STR(cfg->roles[2].name, "mid");
	top = cfg_find_role(cfg, "top");
	base = cfg_find_role(cfg, "base");
	mid = cfg_find_role(cfg, "mid");
	CHECK(top && base && mid);
	if (!top || !base || !mid)
		goto out;
	CHECK(top->x.token_source == CFG_TOKEN_CHAINED);
	CHECK_STR(top->x.source_role, "mid");
	CHECK(top->source_index == 2);
	CHECK(mid->source_index == 1);
	/* Chained roles last at most an hour; others keep theirs. */
	CHECK(top->x.aws.duration_seconds == 3600);
	CHECK(mid->x.aws.duration_seconds == 1800);
	CHECK(base->x.aws.duration_seconds == 43200);
	CHECK(cfg_find_role(cfg, "nope") == NULL);
	CHECK(cfg_find_role(cfg, "") == NULL);
out:
	cfg_free(cfg);
}

static void test_extras(void)
{
	struct cfg *cfg = load(
		"[role app]\nregion = eu-west-1\n"
		"role_arn = arn:aws:iam::123456789012:role/app\n"
		"web_identity_token_file = /t\n"
		"external_id = ext-123\n"
		"policy = { \"Version\" : \"2012-10-17\",  \"Statement\": [] }\n"
		"policy_arns = arn:aws:iam::aws:policy/ReadOnlyAccess,"
		"arn:aws:iam::123456789012:policy/a  arn:aws:iam::123456789012:policy/b\n"
		"tags = Project = credfs , Team=Platform Eng,Empty=\n"
		"transitive_tag_keys = project, Team\n"
		"source_identity = alice\n");
	const struct cfg_role *r;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	r = &cfg->roles[0];
	CHECK_STR(r->x.aws.extras.external_id, "ext-123");
	/* Kept compact, as STS counts it. */
	CHECK_STR(r->x.aws.extras.policy, "{\"Version\":\"2012-10-17\",\"Statement\":[]}");
	CHECK(r->x.aws.extras.n_policy_arns == 3);
	if (r->x.aws.extras.n_policy_arns == 3) {
		CHECK_STR(r->x.aws.extras.policy_arns[0], "arn:aws:iam::aws:policy/ReadOnlyAccess");
		CHECK_STR(r->x.aws.extras.policy_arns[2], "arn:aws:iam::123456789012:policy/b");
	}
	CHECK(r->x.aws.extras.n_tags == 3);
	if (r->x.aws.extras.n_tags == 3) {
		CHECK_STR(r->x.aws.extras.tags[0].key, "Project");
		CHECK_STR(r->x.aws.extras.tags[0].value, "credfs");
		CHECK_STR(r->x.aws.extras.tags[1].key, "Team");
		CHECK_STR(r->x.aws.extras.tags[1].value, "Platform Eng");
		CHECK_STR(r->x.aws.extras.tags[2].key, "Empty");
		CHECK_STR(r->x.aws.extras.tags[2].value, "");
	}
	CHECK(r->x.aws.extras.n_transitive_tag_keys == 2);
	CHECK_STR(r->x.aws.extras.source_identity, "alice");
	cfg_free(cfg);
}

static void test_session_name_default_truncated(void)
{
	char text[512], name[65];
	struct cfg *cfg;

	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text),
		 "[role %s]\nregion = eu-west-1\n"
		 "role_arn = arn:aws:iam::123456789012:role/x\n"
		 "web_identity_token_file = /t\n", name);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK_STR(cfg->roles[0].name, name);
	CHECK(strlen(cfg->roles[0].x.aws.session_name) == 64);
	CHECK(!strncmp(cfg->roles[0].x.aws.session_name, "credfs-nnnn", 11));
	cfg_free(cfg);
}

static void test_previous_keys_and_relative_paths(void)
{
	const char *path = CASE_DIR "/good-signer-previous-keys/credfs.conf";
	struct cfg *cfg = NULL;
	struct cfg_error err;
	char dir[PATH_MAX], want[PATH_MAX + 32];

	CHECK(cfg_load(path, &cfg, &err) == 0);
	if (!cfg)
		return;
	CHECK(realpath(CASE_DIR "/good-signer-previous-keys", dir) != NULL);
	/* Relative paths are taken from the configuration's directory. */
	snprintf(want, sizeof(want), "%s/signer.pem", dir);
	CHECK_STR(cfg->signer.key, want);
	CHECK(cfg->signer.key_line == 5);
	CHECK_STR(cfg->signer.issuer, "https://oidc.example.com/cluster-1");
	CHECK(cfg->signer.token_lifetime == 600);
	CHECK(cfg->signer.clock_skew == 0);
	CHECK(cfg->signer.n_previous_keys == 3);
	if (cfg->signer.n_previous_keys == 3) {
		snprintf(want, sizeof(want), "%s/old-1.pem", dir);
		CHECK_STR(cfg->signer.previous_keys[0], want);
		CHECK_STR(cfg->signer.previous_keys[1], "/etc/credfs/old-2.pem");
		snprintf(want, sizeof(want), "%s/old-3.pem", dir);
		CHECK_STR(cfg->signer.previous_keys[2], want);
		for (int i = 0; i < 3; i++)
			CHECK(cfg->signer.previous_key_lines[i] == 10);
	}
	cfg_free(cfg);

	/* From a string, paths stay as written. */
	cfg = load("[signer]\nkey = k.pem\nissuer = https://i.example\n"
		   "[role a]\nregion = eu-west-1\nsubject = a\n"
		   "role_arn = arn:aws:iam::123456789012:role/a\n");
	CHECK(cfg != NULL);
	if (cfg)
		CHECK_STR(cfg->signer.key, "k.pem");
	cfg_free(cfg);
}

static void test_ca_file(void)
{
	char text[PATH_MAX + 256];
	struct cfg *cfg;

	snprintf(text, sizeof(text),
		 "[credfs]\nregion = eu-west-1\nca_file = %s\n"
		 "[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		 "web_identity_token_file = /t\n",
		 CASE_DIR "/README.md");
	cfg = load(text);
	CHECK(cfg != NULL);
	if (cfg)
		CHECK_STR(cfg->roles[0].x.ca_file, CASE_DIR "/README.md");
	cfg_free(cfg);

	snprintf(text, sizeof(text),
		 "[credfs]\nregion = eu-west-1\nca_file = %s\n"
		 "[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		 "web_identity_token_file = /t\n", CASE_DIR);
	{
		char got[1024], want[PATH_MAX + 128];

		load_error(text, got, sizeof(got));
		snprintf(want, sizeof(want),
			 "3: ca_file \"%s\" is not a regular file", CASE_DIR);
		CHECK_STR(got, want);
	}
}

static void test_long_lines(void)
{
	static char text[20000];
	char stmt[] = "{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"},";
	char got[1024];
	size_t len;
	struct cfg *cfg;

	/* A policy line far beyond inih's default 200 bytes loads whole. */
	len = (size_t)snprintf(text, sizeof(text),
			       "[role a]\nregion = eu-west-1\n"
			       "role_arn = arn:aws:iam::123456789012:role/a\n"
			       "web_identity_token_file = /t\n"
			       "policy = {\"Version\":\"2012-10-17\",\"Statement\":[");
	for (int i = 0; i < 25; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s", stmt);
	text[len - 1] = ']';
	snprintf(text + len, sizeof(text) - len, "}\nexternal_id = after\n");
	cfg = load(text);
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(strlen(cfg->roles[0].x.aws.extras.policy) > 1400);
		CHECK_STR(cfg->roles[0].x.aws.extras.external_id, "after");
		cfg_free(cfg);
	}

	/* Too long for STS: refused, and the policy is not echoed. */
	len = (size_t)snprintf(text, sizeof(text),
			       "[role a]\nregion = eu-west-1\n"
			       "role_arn = arn:aws:iam::123456789012:role/a\n"
			       "web_identity_token_file = /t\n"
			       "policy = {\"Version\":\"2012-10-17\",\"Statement\":[");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s", stmt);
	text[len - 1] = ']';
	snprintf(text + len, sizeof(text) - len, "}\n");
	load_error(text, got, sizeof(got));
	CHECK(!strncmp(got, "5: policy is ", 13));
	CHECK(strstr(got, "at most 2048") != NULL);
	CHECK(strstr(got, "s3:GetObject") == NULL);

	/* A line beyond 8192 characters is an error at its line. */
	len = (size_t)snprintf(text, sizeof(text), "[credfs]\n; ");
	memset(text + len, 'x', 9000);
	snprintf(text + len + 9000, sizeof(text) - len - 9000,
		 "\n[role a]\n");
	load_error(text, got, sizeof(got));
	CHECK_STR(got, "2: line is longer than 8192 characters");
}

static void test_policy_error_is_short(void)
{
	char got[1024];

	load_error("[role a]\nregion = eu-west-1\n"
		   "role_arn = arn:aws:iam::123456789012:role/a\n"
		   "web_identity_token_file = /t\n"
		   "policy = {\"Version\": \"2012-10-17\", \"Statement\": SECRETISH}\n",
		   got, sizeof(got));
	CHECK(!strncmp(got, "5: policy is not valid JSON", 27));
	CHECK(strstr(got, "SECRETISH") == NULL);
}

static void test_error_format(void)
{
	struct cfg_error err = { .line = 12 };
	char out[256];

	snprintf(err.file, sizeof(err.file), "/etc/credfs.conf");
	snprintf(err.text, sizeof(err.text), "unknown key \"regoin\" in [credfs]");
	cfg_error_format(&err, out, sizeof(out));
	CHECK_STR(out, "/etc/credfs.conf:12: unknown key \"regoin\" in [credfs]");

	err.line = 0;
	snprintf(err.text, sizeof(err.text), "no [role NAME] section");
	cfg_error_format(&err, out, sizeof(out));
	CHECK_STR(out, "/etc/credfs.conf: no [role NAME] section");

	/* Truncated, never overrun. */
	cfg_error_format(&err, out, 8);
	CHECK_STR(out, "/etc/cr");
}

static void test_missing_file(void)
{
	struct cfg *cfg = (struct cfg *)&cfg;	/* must be reset to NULL */
	struct cfg_error err;
	char out[512], want[512];

	CHECK(cfg_load("/nonexistent/credfs.conf", &cfg, &err) == -1);
	CHECK(cfg == NULL);
	CHECK(err.line == 0);
	CHECK_STR(err.file, "/nonexistent/credfs.conf");
	snprintf(want, sizeof(want), "cannot open: %s", strerror(ENOENT));
	CHECK_STR(err.text, want);
	cfg_error_format(&err, out, sizeof(out));
	snprintf(want, sizeof(want), "/nonexistent/credfs.conf: cannot open: %s",
		 strerror(ENOENT));
	CHECK_STR(out, want);

	/* A directory opens but cannot be read as a file. */
	CHECK(cfg_load(CASE_DIR, &cfg, &err) == -1);
	CHECK(cfg == NULL);
	CHECK(err.line == 0);
	CHECK(strstr(err.text, strerror(EISDIR)) != NULL);
}

static void test_first_error_wins(void)
{
	char got[1024];

	/* Both a syntax error and an unknown key: the earlier line. */
	load_error("[credfs]\nregoin = x\nno equals here\n", got, sizeof(got));
	CHECK_STR(got, "2: unknown key \"regoin\" in [credfs]");
	load_error("[credfs]\nno equals here\nregoin = x\n", got, sizeof(got));
	CHECK_STR(got, "2: syntax error: expected \"key = value\", a [section] header or a comment");
	/* An error in a section header stops before later keys. */
	load_error("[credfs]\n[nope]\nregoin = x\n", got, sizeof(got));
	CHECK(!strncmp(got, "2: unknown section [nope]", 25));
}

static void test_load_string_reusable(void)
{
	/* inih options are process-wide; loading twice gives the same. */
	for (int i = 0; i < 3; i++) {
		struct cfg *cfg = load(minimal);

		CHECK(cfg != NULL);
		if (cfg)
			CHECK(cfg->roles[0].line == 8);
		cfg_free(cfg);
	}
}

static void test_config_style(void)
{
	static const char text[] =
		"[credfs]\n"
		"region = eu-west-1\n"
		"config_style = process\n"
		"[signer]\n"
		"key = /k.pem\n"
		"issuer = https://oidc.example.com\n"
		"[role a]\n"
		"role_arn = arn:aws:iam::123456789012:role/a\n"
		"subject = s\n"
		"[role b]\n"
		"role_arn = arn:aws:iam::123456789012:role/b\n"
		"subject = s\n"
		"config_style = web_identity\n"
		"consumer_path = /root/.aws/\n"
		"[role c]\n"
		"role_arn = arn:aws:iam::123456789012:role/c\n"
		"source_role = a\n";
	struct cfg *cfg = load(text);

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	/* The [credfs] default applies; a role's own value wins. */
	CHECK(cfg->roles[0].pres.config_style == CFG_STYLE_PROCESS);
	CHECK(cfg->roles[0].pres.consumer_path == NULL);
	CHECK(cfg->roles[1].pres.config_style == CFG_STYLE_WEB_IDENTITY);
	CHECK_STR(cfg->roles[1].pres.consumer_path, "/root/.aws");
	CHECK(cfg->roles[2].pres.config_style == CFG_STYLE_PROCESS);
	cfg_free(cfg);

	cfg = load(minimal);
	CHECK(cfg != NULL);
	if (cfg)
		CHECK(cfg->roles[0].pres.config_style == CFG_STYLE_REGION);
	cfg_free(cfg);
}

static void test_config_style_errors(void)
{
	static const struct {
		const char *lines;	/* appended to [role app] of minimal */
		const char *error;
	} bad[] = {
		{ "config_style = Process\n",
		  "11: config_style must be region, process or web_identity, not \"Process\"" },
		{ "consumer_path = root/.aws\n",
		  "11: consumer_path must be an absolute path of letters, digits and / . _ - + @ = , : ~ %, not \"root/.aws\"" },
		{ "consumer_path = /my dir\n",
		  "11: consumer_path must be an absolute path of letters, digits and / . _ - + @ = , : ~ %, not \"/my dir\"" },
		{ "consumer_path = /a'b\n",
		  "11: consumer_path must be an absolute path of letters, digits and / . _ - + @ = , : ~ %, not \"/a'b\"" },
		{ "consumer_path = //\n",
		  "11: consumer_path must be a directory below \"/\", such as /root/.aws" },
	};
	char text[2048], got[1024];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "%s%s", minimal, bad[i].lines);
		load_error(text, got, sizeof(got));
		CHECK_STR(got, bad[i].error);
	}
}


/* ---- keys for fleets, the HTTP endpoint and other clouds ---- */

static const char gcp_audience[] =
	"//iam.googleapis.com/projects/123456789/locations/global/"
	"workloadIdentityPools/pool/providers/prov";

/* The defaults of every newer key, on the minimal configuration. */
static void test_new_defaults(void)
{
	struct cfg *cfg = load(minimal);
	const struct cfg_role *r;
	size_t i = 99;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	r = &cfg->roles[0];
	CHECK(r->x.cloud == CFG_CLOUD_AWS);
	CHECK_STR(cfg_cloud_name(r->x.cloud), "aws");
	/* A signed AWS role's audience is the signer's. */
	CHECK_STR(r->x.audience, "sts.amazonaws.com");
	CHECK(r->sched.refresh_jitter == 0);
	CHECK(r->pres.authorization_token_rotation == 0);
	CHECK(r->x.gcp.token_url == NULL && r->x.azure.tenant_id == NULL);
	CHECK(cfg->fleet.max_sts_rate == 0);
	CHECK(cfg->fleet.max_sts_inflight == 0);
	CHECK(cfg->fleet.host_id == NULL);
	CHECK(!cfg->endpoint.present);
	CHECK(cfg->endpoint.n_listen == 0 && cfg->endpoint.listen == NULL);
	CHECK(cfg->endpoint.imds_role == NULL);
	/* The name index is filled. */
	CHECK(name_index_find(&cfg->names, "app", &i) == 0 && i == 0);
	CHECK(name_index_find(&cfg->names, "nope", &i) == -ENOENT);
	cfg_free(cfg);
}

static void test_fleet_and_schedule_keys(void)
{
	char text[2048];
	struct cfg *cfg;

	snprintf(text, sizeof(text),
		 "[credfs]\nregion = eu-west-1\nrefresh_jitter = 0.25\n"
		 "max_sts_rate = 0.5\nmax_sts_inflight = 16\n"
		 "host_id = rack 7 / host 12\n"
		 "authorization_token_rotation = 4\n"
		 "[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		 "web_identity_token_file = /t\n"
		 "[role b]\nrole_arn = arn:aws:iam::123456789012:role/b\n"
		 "web_identity_token_file = /t\nrefresh_jitter = 0.5\n"
		 "authorization_token_rotation = 1000000\n"
		 "[role c]\nrole_arn = arn:aws:iam::123456789012:role/c\n"
		 "web_identity_token_file = /t\nrefresh_jitter = 0\n");
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK(cfg->fleet.max_sts_rate == 0.5);
	CHECK(cfg->fleet.max_sts_inflight == 16);
	CHECK_STR(cfg->fleet.host_id, "rack 7 / host 12");
	/* The [credfs] default applies; a role's own value wins. */
	CHECK(cfg->roles[0].sched.refresh_jitter == 0.25);
	CHECK(cfg->roles[1].sched.refresh_jitter == 0.5);
	CHECK(cfg->roles[2].sched.refresh_jitter == 0);
	CHECK(cfg->roles[0].pres.authorization_token_rotation == 4);
	CHECK(cfg->roles[1].pres.authorization_token_rotation == 1000000);
	cfg_free(cfg);

	cfg = load("[credfs]\nregion = eu-west-1\nmax_sts_rate = 100000\n"
		   "max_sts_inflight = 10000\nrefresh_jitter = .5\n"
		   "[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		   "web_identity_token_file = /t\n");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->fleet.max_sts_rate == 100000);
		CHECK(cfg->fleet.max_sts_inflight == 10000);
		CHECK(cfg->roles[0].sched.refresh_jitter == 0.5);
	}
	cfg_free(cfg);
}

static void test_endpoint_section(void)
{
	static const char text[] =
		"[credfs]\nregion = eu-west-1\n"
		"[endpoint]\n"
		"listen = 127.0.0.1:9911, [::1]:9912,169.254.170.23:80,"
		" [fd00:ec2::254]:80, 127.8.9.10:1\n"
		"imds_role = b\n"
		"[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		"web_identity_token_file = /t\n"
		"[role b]\nrole_arn = arn:aws:iam::123456789012:role/b\n"
		"web_identity_token_file = /t\n";
	struct cfg *cfg = load(text);
	const struct cfg_endpoint *e;
	const struct sockaddr_in *v4;
	const struct sockaddr_in6 *v6;
	char addr[64];

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	e = &cfg->endpoint;
	CHECK(e->present && e->line == 3);
	CHECK(e->n_listen == 5);
	CHECK_STR(e->imds_role, "b");
	CHECK(e->imds_role_index == 1);
	if (e->n_listen != 5)
		goto out;
	/* Kept as written, and as socket addresses. */
	CHECK_STR(e->listen[0].text, "127.0.0.1:9911");
	CHECK_STR(e->listen[1].text, "[::1]:9912");
	CHECK_STR(e->listen[3].text, "[fd00:ec2::254]:80");
	v4 = (const struct sockaddr_in *)&e->listen[0].addr;
	CHECK(v4->sin_family == AF_INET && ntohs(v4->sin_port) == 9911);
	CHECK(e->listen[0].addr_len == sizeof(struct sockaddr_in));
	CHECK(inet_ntop(AF_INET, &v4->sin_addr, addr, sizeof(addr)) != NULL);
	CHECK_STR(addr, "127.0.0.1");
	v6 = (const struct sockaddr_in6 *)&e->listen[1].addr;
	CHECK(v6->sin6_family == AF_INET6 && ntohs(v6->sin6_port) == 9912);
	CHECK(e->listen[1].addr_len == sizeof(struct sockaddr_in6));
	CHECK(!memcmp(&v6->sin6_addr, &in6addr_loopback, 16));
	v6 = (const struct sockaddr_in6 *)&e->listen[3].addr;
	CHECK(inet_ntop(AF_INET6, &v6->sin6_addr, addr, sizeof(addr)) != NULL);
	CHECK_STR(addr, "fd00:ec2::254");
	v4 = (const struct sockaddr_in *)&e->listen[4].addr;
	CHECK(ntohs(v4->sin_port) == 1);
out:
	cfg_free(cfg);

	/* Without imds_role. */
	cfg = load("[endpoint]\nlisten = 169.254.170.2:80\n"
		   "[role a]\nregion = eu-west-1\n"
		   "role_arn = arn:aws:iam::123456789012:role/a\n"
		   "web_identity_token_file = /t\n");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->endpoint.present && cfg->endpoint.n_listen == 1);
		CHECK(cfg->endpoint.imds_role == NULL);
	}
	cfg_free(cfg);
}

static void test_gcp_role(void)
{
	char text[2048];
	struct cfg *cfg;
	const struct cfg_role *r;

	/* Defaults; the [credfs] defaults of AWS keys are not used. */
	snprintf(text, sizeof(text),
		 "[credfs]\nregion = eu-west-1\nduration_seconds = 7200\n"
		 "sts_endpoint = https://sts.example.com\nconfig_style = process\n"
		 "ca_file = %s\nmin_validity = 300\n"
		 "[signer]\nkey = /k.pem\nissuer = https://oidc.example.com\n"
		 "[role g]\ncloud = gcp\nsubject = system:serviceaccount:a:b\n"
		 "audience = %s\n",
		 CASE_DIR "/README.md", gcp_audience);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	r = &cfg->roles[0];
	CHECK(r->x.cloud == CFG_CLOUD_GCP);
	CHECK_STR(cfg_cloud_name(r->x.cloud), "gcp");
	CHECK(r->x.token_source == CFG_TOKEN_SIGNED);
	CHECK_STR(r->x.subject, "system:serviceaccount:a:b");
	CHECK_STR(r->x.audience, gcp_audience);
	CHECK(r->x.gcp.service_account == NULL);
	CHECK_STR(r->x.gcp.token_url, "https://sts.googleapis.com/v1/token");
	CHECK_STR(r->x.gcp.impersonation_url, "https://iamcredentials.googleapis.com/v1");
	CHECK_STR(r->x.gcp.scope, "https://www.googleapis.com/auth/cloud-platform");
	/* ca_file and the schedule apply to every cloud. */
	CHECK_STR(r->x.ca_file, CASE_DIR "/README.md");
	CHECK(r->sched.min_validity == 300);
	/* Only the part of its cloud is filled in. */
	CHECK(r->x.aws.region == NULL && r->x.aws.sts_endpoint == NULL);
	CHECK(r->x.aws.role_arn == NULL && r->x.aws.session_name == NULL);
	CHECK(r->x.aws.duration_seconds == 0);
	CHECK(r->x.azure.authority_host == NULL);
	CHECK(r->pres.config_style == CFG_STYLE_REGION);
	cfg_free(cfg);

	/* Every key set; a token file; region is accepted and unused. */
	snprintf(text, sizeof(text),
		 "[role g]\ncloud = gcp\nweb_identity_token_file = /run/token\n"
		 "audience = %s\n"
		 "service_account = app@my-project.iam.gserviceaccount.com\n"
		 "token_url = http://127.0.0.1:8080/v1/token/\n"
		 "impersonation_url = https://iam.example.com/v1//\n"
		 "scope = https://www.googleapis.com/auth/cloud-platform \t openid\n"
		 "region = us-central1\nuid = 7\nconsumer_path = /var/run/gcp\n",
		 gcp_audience);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	r = &cfg->roles[0];
	CHECK(r->x.token_source == CFG_TOKEN_FILE);
	CHECK_STR(r->x.web_identity_token_file, "/run/token");
	/* A GCP role names its provider whatever its token source. */
	CHECK_STR(r->x.audience, gcp_audience);
	CHECK_STR(r->x.gcp.service_account, "app@my-project.iam.gserviceaccount.com");
	/* token_url is kept as written; the base drops its "/". */
	CHECK_STR(r->x.gcp.token_url, "http://127.0.0.1:8080/v1/token/");
	CHECK_STR(r->x.gcp.impersonation_url, "https://iam.example.com/v1");
	CHECK_STR(r->x.gcp.scope, "https://www.googleapis.com/auth/cloud-platform openid");
	CHECK(r->x.aws.region == NULL);
	CHECK(r->pres.uid == 7);
	CHECK_STR(r->pres.consumer_path, "/var/run/gcp");
	cfg_free(cfg);
}

static void test_azure_role(void)
{
	static const char base[] =
		"[signer]\nkey = /k.pem\nissuer = https://oidc.example.com\n"
		"audience = sts.amazonaws.com\n"
		"[role z]\ncloud = azure\nsubject = s\n"
		"tenant_id = 72F988BF-86F1-41AF-91AB-2D7CD011DB47\n"
		"client_id = 11111111-aaaa-BBBB-1111-111111111111\n";
	char text[2048];
	struct cfg *cfg = load(base);
	const struct cfg_role *r;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	r = &cfg->roles[0];
	CHECK(r->x.cloud == CFG_CLOUD_AZURE);
	CHECK_STR(cfg_cloud_name(r->x.cloud), "azure");
	/* GUIDs are kept lower case. */
	CHECK_STR(r->x.azure.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
	CHECK_STR(r->x.azure.client_id, "11111111-aaaa-bbbb-1111-111111111111");
	CHECK_STR(r->x.azure.authority_host, "https://login.microsoftonline.com/");
	CHECK_STR(r->x.azure.scope, "https://management.azure.com/.default");
	/* Not the signer's audience: Entra ID's. */
	CHECK_STR(r->x.audience, "api://AzureADTokenExchange");
	CHECK(r->x.aws.region == NULL && r->x.gcp.token_url == NULL);
	cfg_free(cfg);

	snprintf(text, sizeof(text),
		 "%saudience = api://AzureADTokenExchangeUSGov\n"
		 "authority_host = https://login.microsoftonline.us\n"
		 "scope = api://11111111-1111-1111-1111-111111111111/.default\n",
		 base);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	r = &cfg->roles[0];
	CHECK_STR(r->x.audience, "api://AzureADTokenExchangeUSGov");
	/* Always one trailing "/". */
	CHECK_STR(r->x.azure.authority_host, "https://login.microsoftonline.us/");
	CHECK_STR(r->x.azure.scope, "api://11111111-1111-1111-1111-111111111111/.default");
	cfg_free(cfg);

	cfg = load("[role z]\ncloud = azure\nweb_identity_token_file = /t\n"
		   "tenant_id = 00000000-0000-0000-0000-000000000000\n"
		   "client_id = 11111111-1111-1111-1111-111111111111\n"
		   "authority_host = http://[::1]:8443///\n");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->roles[0].x.token_source == CFG_TOKEN_FILE);
		CHECK(cfg->roles[0].x.audience == NULL);
		CHECK_STR(cfg->roles[0].x.azure.authority_host, "http://[::1]:8443/");
	}
	cfg_free(cfg);
}

/* An AWS role may set its own audience; it wins over [signer]'s. */
static void test_aws_audience(void)
{
	char text[2048];
	struct cfg *cfg;

	snprintf(text, sizeof(text), "%saudience = my-client-id\n", minimal);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK_STR(cfg->roles[0].x.audience, "my-client-id");
		CHECK_STR(cfg->signer.audience, "sts.amazonaws.com");
	}
	cfg_free(cfg);
}

/* Errors of the newer keys, each at the line of the key that is wrong
 * (the data cases have one of each as a file; these vary them). */
static void test_new_key_errors(void)
{
	static const struct {
		const char *lines;	/* appended to [role app] of minimal */
		const char *error;
	} bad[] = {
		{ "refresh_jitter = 0.50001\n",
		  "11: refresh_jitter must be from 0 to 0.5, not 0.50001" },
		{ "refresh_jitter = 1e-3\n",
		  "11: refresh_jitter must be a number from 0 to 0.5, such as 0.1, not \"1e-3\"" },
		{ "refresh_jitter = .\n",
		  "11: refresh_jitter must be a number from 0 to 0.5, such as 0.1, not \".\"" },
		{ "max_sts_inflight = 4\n",
		  "11: key \"max_sts_inflight\" does not belong in [role app]; it is a [credfs] key" },
		{ "listen = 127.0.0.1:1\n",
		  "11: key \"listen\" does not belong in [role app]; it is an [endpoint] key" },
		{ "imds_role = app\n",
		  "11: key \"imds_role\" does not belong in [role app]; it is an [endpoint] key" },
		{ "authorization_token_rotation = 1.0\n",
		  "11: authorization_token_rotation must be a whole number between 0 and 1000000, not \"1.0\"" },
		{ "cloud = AWS\n", "11: cloud must be aws, gcp or azure, not \"AWS\"" },
		{ "tenant_id = 00000000-0000-0000-0000-000000000000\n",
		  "11: role \"app\": tenant_id is a key of azure roles, and this role is cloud = aws" },
		{ "service_account = a@b.c\n",
		  "11: role \"app\": service_account is a key of gcp roles, and this role is cloud = aws" },
		{ "token_url = https://sts.googleapis.com/v1/token\n",
		  "11: role \"app\": token_url is a key of gcp roles, and this role is cloud = aws" },
		{ "audience = a\x01z\n",
		  "11: audience must not contain control characters" },
	};
	char text[2048], got[1024];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "%s%s", minimal, bad[i].lines);
		load_error(text, got, sizeof(got));
		CHECK_STR(got, bad[i].error);
	}
}

/* On a gcp or azure role, AWS keys are errors when the role sets them
 * and unused when [credfs] does; the first in file order is reported. */
static void test_cloud_keys(void)
{
	char text[2048], got[1024];

	snprintf(text, sizeof(text),
		 "[credfs]\nsts_endpoint = https://sts.example.com\n"
		 "[role g]\ncloud = gcp\n"
		 "external_id = xyz\n"		/* line 5 */
		 "web_identity_token_file = /t\naudience = %s\n"
		 "role_arn = arn:aws:iam::123456789012:role/a\n",
		 gcp_audience);
	load_error(text, got, sizeof(got));
	CHECK_STR(got, "5: role \"g\": external_id is a key of aws roles, and this role is cloud = gcp");

	/* cloud may come after the keys it rules on. */
	load_error("[role z]\nsource_role = x\ncloud = azure\n", got, sizeof(got));
	CHECK_STR(got, "2: role \"z\": source_role is a key of aws roles, and this role is cloud = azure: give it subject or web_identity_token_file");
}

/* A source_role error points at the source_role line. */
static void test_source_role_lines(void)
{
	char got[1024];

	load_error("[credfs]\nregion = eu-west-1\n"
		   "[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		   "uid = 1\nsource_role = b\n"
		   "[role b]\nsource_role = a\nrole_arn = arn:aws:iam::123456789012:role/b\n",
		   got, sizeof(got));
	CHECK_STR(got, "6: role \"a\": source_role chain loops: a -> b -> a");
	load_error("[credfs]\nregion = eu-west-1\n"
		   "[role a]\nsource_role = nope\n"
		   "role_arn = arn:aws:iam::123456789012:role/a\n",
		   got, sizeof(got));
	CHECK_STR(got, "4: role \"a\": source_role \"nope\" is not a [role] in this file");
}

static void test_reserved_and_clashing_names(void)
{
	char got[1024];

	load_error("[role metrics]\n", got, sizeof(got));
	CHECK_STR(got, "1: role name \"metrics\" is reserved: MOUNTPOINT/metrics is a file of credfs");
	/* Other names that start the same are fine. */
	CHECK(name_id("c9LfFdOKnvD") == name_id("cWIlWO-7ngA"));
	load_error("[role metrics2]\n[role cWIlWO-7ngA]\n[role c9LfFdOKnvD]\n",
		   got, sizeof(got));
	CHECK_STR(got, "3: role name \"c9LfFdOKnvD\" has the same identity as \"cWIlWO-7ngA\" (line 2), so their inode numbers would clash; rename one");
}

/* A FIFO, a device or a directory given as the configuration, or as
 * ca_file, is refused at once: never opened for a blocking read. */
static void test_not_regular_files(void)
{
	char dir[] = "/tmp/credfs-test-XXXXXX", fifo[64], text[256], got[1024];
	struct cfg *cfg = NULL;
	struct cfg_error err;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	alarm(10);	/* a hang is a failure, not a stuck test */
	CHECK(cfg_load(fifo, &cfg, &err) == -1);
	CHECK(cfg == NULL && err.line == 0);
	CHECK_STR(err.text, "is a FIFO, not a regular file");
	CHECK(cfg_load("/dev/null", &cfg, &err) == -1);
	CHECK_STR(err.text, "is a character device, not a regular file");
	snprintf(text, sizeof(text),
		 "[credfs]\nregion = eu-west-1\n"
		 "[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
		 "web_identity_token_file = /t\nca_file = %s\n", fifo);
	load_error(text, got, sizeof(got));
	snprintf(text, sizeof(text), "6: ca_file \"%s\" is not a regular file",
		 fifo);
	CHECK_STR(got, text);
	alarm(0);
	unlink(fifo);
	rmdir(dir);
}

/* Every field of each part counts in its comparison. */
static void test_exchange_equal(void)
{
	struct cfg *a = load(minimal), *b = load(minimal);
	struct cfg_exchange *x;
	char *saved;

	CHECK(a && b);
	if (!a || !b)
		goto out;
	x = &b->roles[0].x;
	CHECK(cfg_exchange_equal(&a->roles[0].x, x));
#define X_DIFFERS(field, other)						\
	do {								\
		__typeof__(x->field) keep_ = x->field;			\
		x->field = other;					\
		CHECK(!cfg_exchange_equal(&a->roles[0].x, x));		\
		x->field = keep_;					\
	} while (0)
	saved = (char *)"something else";
	X_DIFFERS(cloud, CFG_CLOUD_GCP);
	X_DIFFERS(token_source, CFG_TOKEN_FILE);
	X_DIFFERS(subject, saved);
	X_DIFFERS(audience, saved);
	X_DIFFERS(web_identity_token_file, saved);
	X_DIFFERS(source_role, saved);
	X_DIFFERS(ca_file, saved);
	X_DIFFERS(aws.role_arn, saved);
	X_DIFFERS(aws.session_name, saved);
	X_DIFFERS(aws.region, saved);
	X_DIFFERS(aws.sts_endpoint, saved);
	X_DIFFERS(aws.use_fips_endpoint, 1);
	X_DIFFERS(aws.duration_seconds, 900);
	X_DIFFERS(aws.extras.policy, saved);
	X_DIFFERS(aws.extras.n_policy_arns, 1);
	X_DIFFERS(aws.extras.external_id, saved);
	X_DIFFERS(aws.extras.n_tags, 1);
	X_DIFFERS(aws.extras.n_transitive_tag_keys, 1);
	X_DIFFERS(aws.extras.source_identity, saved);
	X_DIFFERS(gcp.service_account, saved);
	X_DIFFERS(gcp.token_url, saved);
	X_DIFFERS(gcp.impersonation_url, saved);
	X_DIFFERS(gcp.scope, saved);
	X_DIFFERS(azure.tenant_id, saved);
	X_DIFFERS(azure.client_id, saved);
	X_DIFFERS(azure.authority_host, saved);
	X_DIFFERS(azure.scope, saved);
#undef X_DIFFERS
	CHECK(cfg_exchange_equal(&a->roles[0].x, x));
out:
	cfg_free(a);
	cfg_free(b);
}

static void test_schedule_and_presentation_equal(void)
{
	struct cfg *a = load(minimal), *b = load(minimal);
	struct cfg_schedule *s;
	struct cfg_presentation *pr;

	CHECK(a && b);
	if (!a || !b)
		goto out;
	s = &b->roles[0].sched;
	pr = &b->roles[0].pres;
	CHECK(cfg_schedule_equal(&a->roles[0].sched, s));
	CHECK(cfg_presentation_equal(&a->roles[0].pres, pr));
	s->refresh_fraction = 0.5;
	CHECK(!cfg_schedule_equal(&a->roles[0].sched, s));
	*s = a->roles[0].sched;
	s->min_validity = 1;
	CHECK(!cfg_schedule_equal(&a->roles[0].sched, s));
	*s = a->roles[0].sched;
	s->wait_timeout = 1;
	CHECK(!cfg_schedule_equal(&a->roles[0].sched, s));
	*s = a->roles[0].sched;
	s->refresh_jitter = 0.1;
	CHECK(!cfg_schedule_equal(&a->roles[0].sched, s));
	*s = a->roles[0].sched;

	pr->uid++;
	CHECK(!cfg_presentation_equal(&a->roles[0].pres, pr));
	pr->uid--;
	pr->gid++;
	CHECK(!cfg_presentation_equal(&a->roles[0].pres, pr));
	pr->gid--;
	pr->mode = 0440;
	CHECK(!cfg_presentation_equal(&a->roles[0].pres, pr));
	pr->mode = 0400;
	pr->config_style = CFG_STYLE_PROCESS;
	CHECK(!cfg_presentation_equal(&a->roles[0].pres, pr));
	pr->config_style = CFG_STYLE_REGION;
	pr->consumer_path = (char *)"/elsewhere";
	CHECK(!cfg_presentation_equal(&a->roles[0].pres, pr));
	pr->consumer_path = NULL;
	pr->authorization_token_rotation = 1;
	CHECK(!cfg_presentation_equal(&a->roles[0].pres, pr));
	pr->authorization_token_rotation = 0;
	CHECK(cfg_presentation_equal(&a->roles[0].pres, pr));
out:
	cfg_free(a);
	cfg_free(b);
}


/* A file with every key of the table, each where it belongs. */
static const char every_key[] =
	"[credfs]\n"
	"region = eu-west-1\nsts_endpoint = https://sts.example.com\n"
	"ca_file = " CASE_DIR "/README.md\nuse_fips_endpoint = false\n"
	"duration_seconds = 3600\nrefresh_fraction = 0.8\nmin_validity = 900\n"
	"wait_timeout = 10\nrefresh_jitter = 0.1\nconfig_style = process\n"
	"authorization_token_rotation = 1\nmax_sts_rate = 20\n"
	"max_sts_inflight = 16\nhost_id = h\n"
	"[signer]\nkey = /k.pem\nissuer = https://oidc.example.com\n"
	"audience = sts.amazonaws.com\ntoken_lifetime = 3600\nclock_skew = 30\n"
	"previous_keys = /old.pem\n"
	"[endpoint]\nlisten = 127.0.0.1:9911\nimds_role = base\n"
	"[role base]\ncloud = aws\nrole_arn = arn:aws:iam::123456789012:role/b\n"
	"subject = s\naudience = a\nuid = 1\ngid = 2\nmode = 0440\n"
	"consumer_path = /c\n"
	"[role up]\nrole_arn = arn:aws:iam::123456789012:role/u\n"
	"source_role = base\nsession_name = up\nexternal_id = ext\n"
	"policy = {}\npolicy_arns = arn:aws:iam::aws:policy/ReadOnlyAccess\n"
	"tags = team=ops\ntransitive_tag_keys = team\nsource_identity = alice\n"
	"[role g]\ncloud = gcp\nweb_identity_token_file = /t\n"
	"audience = //iam.googleapis.com/projects/1/locations/global/"
	"workloadIdentityPools/p/providers/r\n"
	"service_account = a@p.iam.gserviceaccount.com\n"
	"token_url = https://sts.googleapis.com/v1/token\n"
	"impersonation_url = https://iamcredentials.googleapis.com/v1\n"
	"scope = openid\n"
	"[role z]\ncloud = azure\nsubject = s\n"
	"tenant_id = 00000000-0000-0000-0000-000000000000\n"
	"client_id = 11111111-1111-1111-1111-111111111111\n"
	"authority_host = https://login.microsoftonline.com/\n"
	"scope = https://management.azure.com/.default\n";

/* Whether the file at path contains text. */
static int file_mentions(const char *path, const char *text)
{
	static char buf[256 * 1024];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

/* Every key of the table loads into its place, and is documented in the
 * reference and the manual page. */
static void test_every_key(void)
{
	struct cfg *cfg = load(every_key);
	char needle[128];

	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->n_roles == 4 && cfg->endpoint.n_listen == 1);
		CHECK(cfg->roles[1].x.aws.extras.n_tags == 1);
		CHECK(cfg->roles[2].x.gcp.service_account != NULL);
		CHECK(cfg->roles[3].x.azure.scope != NULL);
		CHECK(cfg->signer.n_previous_keys == 1);
	}
	cfg_free(cfg);
	for (int k = 0; k < K_COUNT; k++) {
		const char *name = cfg_keys[k].name;

		/* A list moves into its one place: never a [credfs] default. */
		for (int c = 0; c < CFG_CLOUDS; c++)
			if ((cfg_keys[k].sections & SECT_CREDFS) &&
			    cfg_keys[k].part == PART_ROLE &&
			    cfg_keys[k].at[c].ctype >= C_STR_LIST) {
				fprintf(stderr, "    key %s is a defaultable list\n", name);
				check_failures_in_test++;
			}

		snprintf(needle, sizeof(needle), "\n%s = ", name);
		if (!strstr(every_key, needle)) {
			fprintf(stderr, "    key %s is not in every_key\n", name);
			check_failures_in_test++;
		}
		snprintf(needle, sizeof(needle), "`%s`", name);
		if (!file_mentions(DOCS_DIR "/configuration.md", needle)) {
			fprintf(stderr, "    key %s is not in docs/configuration.md\n", name);
			check_failures_in_test++;
		}
		snprintf(needle, sizeof(needle), "%s \" = ", name);
		if (!file_mentions(MAN_DIR "/credfs.conf.5", needle)) {
			fprintf(stderr, "    key %s is not in man/credfs.conf.5\n", name);
			check_failures_in_test++;
		}
	}
}

/* A large file leaves nothing behind in the heap but the configuration:
 * the parser's per-role sections (a slot for every key) are mapped and
 * unmapped on their own.  From the heap, 10 000 roles left about 12 MB of
 * freed sections among the strings kept, which no page could be given
 * back from (117 MB at 100 000 roles). */
static void test_large_file_leaves_no_holes(void)
{
	enum { N = 10000 };
	struct buf text;
	struct cfg *cfg;
	struct mallinfo2 before, after;

	buf_init(&text, 8 * 1024 * 1024);
	CHECK(buf_append_str(&text, minimal) == 0);
	for (int i = 0; i < N; i++)
		CHECK(buf_printf(&text, "[role r%05d]\n"
				 "role_arn = arn:aws:iam::123456789012:role/r%05d\n"
				 "subject = system:serviceaccount:bench:r%05d\n",
				 i, i, i) == 0);
	malloc_trim(0);
	before = mallinfo2();
	cfg = load(text.data);
	after = mallinfo2();
	CHECK(cfg && cfg->n_roles == N + 1);
	if (after.fordblks > before.fordblks + 2 * 1024 * 1024)
		fprintf(stderr, "    %zu KB free in the heap after parsing\n",
			(after.fordblks - before.fordblks) / 1024);
	CHECK(after.fordblks <= before.fordblks + 2 * 1024 * 1024);
	cfg_free(cfg);
	buf_free(&text);
}

static const struct check_case cases[] = {
	CHECK_CASE(test_data_good_cases),
	CHECK_CASE(test_data_bad_cases),
	CHECK_CASE(test_defaults),
	CHECK_CASE(test_no_signer_section),
	CHECK_CASE(test_role_overrides),
	CHECK_CASE(test_default_endpoints),
	CHECK_CASE(test_chain_resolution),
	CHECK_CASE(test_extras),
	CHECK_CASE(test_session_name_default_truncated),
	CHECK_CASE(test_previous_keys_and_relative_paths),
	CHECK_CASE(test_ca_file),
	CHECK_CASE(test_long_lines),
	CHECK_CASE(test_policy_error_is_short),
	CHECK_CASE(test_error_format),
	CHECK_CASE(test_missing_file),
	CHECK_CASE(test_first_error_wins),
	CHECK_CASE(test_load_string_reusable),
	CHECK_CASE(test_config_style),
	CHECK_CASE(test_config_style_errors),
	CHECK_CASE(test_new_defaults),
	CHECK_CASE(test_fleet_and_schedule_keys),
	CHECK_CASE(test_endpoint_section),
	CHECK_CASE(test_gcp_role),
	CHECK_CASE(test_azure_role),
	CHECK_CASE(test_aws_audience),
	CHECK_CASE(test_new_key_errors),
	CHECK_CASE(test_cloud_keys),
	CHECK_CASE(test_source_role_lines),
	CHECK_CASE(test_reserved_and_clashing_names),
	CHECK_CASE(test_not_regular_files),
	CHECK_CASE(test_exchange_equal),
	CHECK_CASE(test_schedule_and_presentation_equal),
	CHECK_CASE(test_every_key),
	CHECK_CASE(test_large_file_leaves_no_holes),
};

int main(void)
{
	return CHECK_RUN(cases);
}
