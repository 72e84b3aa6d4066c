/*
 * The Google Cloud kind: every answer case of tests/data/gcp_token (the
 * token exchange) and tests/data/gcp_iam (generateAccessToken), the
 * requests byte for byte as google-auth-library sends them, the two
 * steps and what passes between them, transport failures, credentials
 * never quoted back, and a renewal through the engine whose second step
 * is retried with the first step's token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cloud_cases.h"
#include "config.h"
#include "engine.h"
#include "generation.h"
#include "kind_gcp.h"

#define JWT "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhcHAifQ." \
	"c2lnbmF0dXJlLW9mLXRoZS1yb2xlcy10b2tlbi0wMTIzNDU2Nzg5"
#define FED "ya29.d.federated-token-0123456789"
#define SA_TOKEN "ya29.c.service-account-token-0123456789"
#define PROVIDER "//iam.googleapis.com/projects/123456789012/locations/global/" \
	"workloadIdentityPools/pool/providers/prov"
#define STS_OK "{\"access_token\":\"" FED "\",\"issued_token_type\":" \
	"\"urn:ietf:params:oauth:token-type:access_token\"," \
	"\"token_type\":\"Bearer\",\"expires_in\":3599}"
#define IAM_503 "{\"error\":{\"code\":503,\"message\":\"The service is " \
	"currently unavailable.\",\"status\":\"UNAVAILABLE\"}}"

#define ROLE_HEAD							\
	"[role g]\n"							\
	"cloud = gcp\n"							\
	"audience = " PROVIDER "\n"					\
	"token_url = http://127.0.0.1:9/v1/token\n"			\
	"impersonation_url = http://127.0.0.1:9/v1/\n"

static struct cfg *load(const char *text)
{
	struct cfg_error err;
	struct cfg *cfg = NULL;

	if (cfg_load_string(text, "test.conf", &cfg, &err)) {
		fprintf(stderr, "    config line %d: %s\n", err.line, err.text);
		return NULL;
	}
	return cfg;
}

static struct cfg *plain_role(void)
{
	return load(ROLE_HEAD "web_identity_token_file = /nonexistent/token\n");
}

static struct cfg *impersonating_role(void)
{
	return load(ROLE_HEAD
		    "web_identity_token_file = /nonexistent/token\n"
		    "service_account = app@project.iam.gserviceaccount.com\n"
		    "scope = https://www.googleapis.com/auth/cloud-platform "
		    "https://www.googleapis.com/auth/devstorage.read_only\n");
}

/* generateAccessToken's answer, expiring an hour from now (a quarter
 * of a second after the hour, as Google's have fractions); *expires is
 * the hour. */
static const char *iam_ok(int64_t *expires)
{
	static char body[256];
	char when[21];

	*expires = time(NULL) + 3600;
	clock_format_rfc3339(*expires, when);
	when[19] = '\0';
	snprintf(body, sizeof(body),
		 "{\"accessToken\":\"" SA_TOKEN "\",\"expireTime\":\"%s.250Z\"}",
		 when);
	return body;
}

/* One request of kind_gcp, as the engine makes it. */
static enum kind_result request(const struct cfg *cfg, int step,
				const char *token, char **carry,
				struct creds *out, struct exchange_error *err)
{
	struct kind_request req = {
		.role = &cfg->roles[0],
		.token = token,
		.step = step,
		.carry = *carry,
		.connect_timeout_ms = 1000,
		.timeout_ms = 1000,
	};
	enum kind_result res;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	res = kind_gcp.request(&req, out, err);
	*carry = req.carry;
	return res;
}

/* ---- answers ------------------------------------------------------------ */

static void test_token_cases(void)
{
	run_cloud_cases(TEST_DATA_DIR "/gcp_token", gcp_parse_token_response, 60);
}

static void test_iam_cases(void)
{
	run_cloud_cases(TEST_DATA_DIR "/gcp_iam", gcp_parse_iam_response, 35);
}

/* A body over the cap is refused before it is parsed. */
static void test_body_cap(void)
{
	struct oauth_token tok;
	struct exchange_error err;
	size_t n = HTTP_BODY_MAX + 1;
	char *big = malloc(n);

	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, ' ', n);
	memcpy(big, STS_OK, strlen(STS_OK));
	CHECK(gcp_parse_token_response(big, n, 200, CASES_NOW, &tok, &err) == -1);
	CHECK_STR(err.code, "Malformed");
	CHECK(strstr(err.message, "too large") != NULL);
	CHECK(gcp_parse_iam_response(big, n, 503, CASES_NOW, &tok, &err) == -1);
	CHECK_STR(err.code, "HTTP503");
	CHECK(err.retryable == 1);
	free(big);
}

/* A body, a value or a refused token never reaches a message. */
static void test_message_never_echoes_body(void)
{
	static const char *const bodies[] = {
		"SECRETMARKER not json",
		"{\"access_token\":\"SECRETMARKER \",\"expires_in\":3599}",
		"{\"access_token\":\"ya29.x\",\"expires_in\":\"SECRETMARKER\"}",
		"{\"accessToken\":\"ya29.x\",\"expireTime\":\"SECRETMARKER\"}",
		("{\"access_token\":\"SECRETMARKER\",\"token_type\":\"SECRETMARKER\","
		 "\"expires_in\":1}"),
		"{\"SECRETMARKER\":1,\"SECRETMARKER\":2}",
		"[\"SECRETMARKER\"]",
		"{\"access_token\":\"SECRETMARKER",
	};
	static const int statuses[] = { 200, 400, 503 };
	struct oauth_token tok;
	struct exchange_error err;

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		for (size_t s = 0; s < ARRAY_SIZE(statuses); s++) {
			CHECK(gcp_parse_token_response(bodies[i], strlen(bodies[i]),
						       statuses[s], CASES_NOW,
						       &tok, &err) == -1);
			CHECK(!strstr(err.message, "SECRETMARKER"));
			CHECK(!strstr(err.code, "SECRETMARKER"));
			CHECK(gcp_parse_iam_response(bodies[i], strlen(bodies[i]),
						     statuses[s], CASES_NOW,
						     &tok, &err) == -1);
			CHECK(!strstr(err.message, "SECRETMARKER"));
		}
}

/* ---- requests ----------------------------------------------------------- */

/* What google-auth-library sends: the form below, without impersonation
 * the role's scopes go to STS. */
static void test_token_request_body(void)
{
	struct cfg *cfg = plain_role();
	char *body;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	body = gcp_token_request_body(&cfg->roles[0], JWT);
	CHECK_STR(body,
		  "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
		  "&audience=%2F%2Fiam.googleapis.com%2Fprojects%2F123456789012%2Flocations"
		  "%2Fglobal%2FworkloadIdentityPools%2Fpool%2Fproviders%2Fprov"
		  "&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"
		  "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
		  "&subject_token=" JWT
		  "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt");
	secret_free(body);
	cfg_free(cfg);
}

/* With impersonation STS is asked for cloud-platform (generateAccessToken
 * needs it) and the role's scopes go to generateAccessToken. */
static void test_impersonation_requests(void)
{
	struct cfg *cfg = impersonating_role();
	char *body, *url, *iam;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	body = gcp_token_request_body(&cfg->roles[0], JWT);
	CHECK(body && strstr(body, "&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth"
			     "%2Fcloud-platform&requested_token_type=") != NULL);
	url = gcp_iam_url(&cfg->roles[0]);
	CHECK_STR(url, "http://127.0.0.1:9/v1/projects/-/serviceAccounts/"
		  "app@project.iam.gserviceaccount.com:generateAccessToken");
	iam = gcp_iam_request_body(&cfg->roles[0]);
	CHECK_STR(iam, "{\"scope\":[\"https://www.googleapis.com/auth/cloud-platform\","
		  "\"https://www.googleapis.com/auth/devstorage.read_only\"],"
		  "\"lifetime\":\"3600s\"}");
	secret_free(body);
	free(url);
	free(iam);
	cfg_free(cfg);
}

/* ---- steps -------------------------------------------------------------- */

/* Without a service account one request gives the credentials; the
 * token file's trailing newline is not sent. */
static void test_plain_exchange(void)
{
	static const struct fake_answer answers[] = { { FAKE_ANSWER, 200, STS_OK } };
	struct cfg *cfg = plain_role();
	struct exchange_error err;
	struct creds out;
	char *carry = NULL;
	int64_t t0 = time(NULL);

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	fake_script(answers, 1);
	CHECK(request(cfg, 0, JWT "\n", &carry, &out, &err) == KIND_DONE);
	CHECK(out.access_token && !strcmp(out.access_token, FED));
	CHECK(out.expires >= t0 + 3599 && out.expires <= time(NULL) + 3599);
	CHECK(carry == NULL);
	CHECK(fake_requests() == 1);
	CHECK_STR(fake.log[0].url, "http://127.0.0.1:9/v1/token");
	CHECK(strstr(fake.log[0].body, "&subject_token=" JWT "&") != NULL);
	CHECK(strstr(fake.log[0].body, "%0A") == NULL);
	CHECK_STR(fake_header(0, "Content-Type"),
		  "application/x-www-form-urlencoded; charset=utf-8");
	CHECK_STR(fake_header(0, "Accept"), "application/json");
	CHECK(fake_header(0, "Authorization") == NULL);
	creds_clear(&out);
	cfg_free(cfg);
}

/* With one: step 0 hands its token on, step 1 sends it as the bearer and
 * its answer is what the role gets. */
static void test_impersonation_steps(void)
{
	int64_t expires;
	const struct fake_answer answers[] = {
		{ FAKE_ANSWER, 200, STS_OK },
		{ FAKE_ANSWER, 200, iam_ok(&expires) },
	};
	struct cfg *cfg = impersonating_role();
	struct exchange_error err;
	struct creds out;
	char *carry = NULL;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	fake_script(answers, 2);
	CHECK(request(cfg, 0, JWT, &carry, &out, &err) == KIND_NEXT);
	CHECK(carry && !strcmp(carry, FED));
	CHECK(out.access_token == NULL);
	CHECK(request(cfg, 1, JWT, &carry, &out, &err) == KIND_DONE);
	CHECK(out.access_token && !strcmp(out.access_token, SA_TOKEN));
	CHECK(out.expires == expires);
	CHECK(fake_requests() == 2);
	CHECK_STR(fake.log[1].url, "http://127.0.0.1:9/v1/projects/-/serviceAccounts/"
		  "app@project.iam.gserviceaccount.com:generateAccessToken");
	CHECK_STR(fake_header(1, "Authorization"), "Bearer " FED);
	CHECK_STR(fake_header(1, "Content-Type"), "application/json");
	CHECK(fake.log[1].body && strstr(fake.log[1].body, "\"lifetime\":\"3600s\""));
	creds_clear(&out);
	secret_free(carry);
	cfg_free(cfg);
}

/* A step without what it needs fails cleanly, and so does a step that
 * does not exist; a token refused at step 0 never becomes a carry. */
static void test_steps_without_their_input(void)
{
	static const struct fake_answer bad_token[] = {
		{ FAKE_ANSWER, 200, "{\"access_token\":\"ya29 x\",\"expires_in\":60}" },
	};
	struct cfg *cfg = impersonating_role();
	struct exchange_error err;
	struct creds out;
	char *carry = NULL;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	fake_reset();
	CHECK(request(cfg, 1, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "Internal");
	CHECK(request(cfg, 2, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "Internal");
	CHECK(request(cfg, 0, NULL, &carry, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "Internal");
	CHECK(fake_requests() == 0);
	fake_script(bad_token, 1);
	CHECK(request(cfg, 0, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "Malformed");
	CHECK(carry == NULL);
	/* A carry with characters no bearer token has is not sent. */
	carry = strdup("ya29.x\r\nX-Injected: 1");
	fake_reset();
	CHECK(request(cfg, 1, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK(fake_requests() == 0);
	free(carry);
	cfg_free(cfg);
}

/* No answer, a TLS failure, a body over the cap, an error answer: each
 * with its code, retried or not, and an error of step 1 names it. */
static void test_failures(void)
{
	static const struct {
		struct fake_answer a;
		int step;
		const char *code;
		int retryable, throttled;
		const char *text;
	} cases[] = {
		{ { FAKE_TRANSPORT, 0, NULL }, 0, "Transport", 1, 0, "Google STS: Connection refused" },
		{ { FAKE_TLS, 0, NULL }, 0, "TLS", 0, 0, "certificate" },
		{ { FAKE_TOO_BIG, 0, NULL }, 0, "Malformed", 0, 0, "larger than 256 KiB" },
		{ { FAKE_TRANSPORT, 0, NULL }, 1, "Transport", 1, 0, "generateAccessToken: " },
		{ { FAKE_ANSWER, 503, IAM_503 }, 1, "UNAVAILABLE", 1, 0, "currently unavailable" },
		{ { FAKE_ANSWER, 429, "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}" },
		  1, "RESOURCE_EXHAUSTED", 1, 1, "(no description)" },
		{ { FAKE_ANSWER, 502, "<html>bad gateway</html>" }, 1, "HTTP502", 1, 0,
		  "generateAccessToken answered HTTP 502" },
	};
	struct cfg *cfg = impersonating_role();
	struct exchange_error err;
	struct creds out;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *carry = cases[i].step ? strdup(FED) : NULL;

		fake_script(&cases[i].a, 1);
		CHECK(request(cfg, cases[i].step, JWT, &carry, &out, &err) ==
		      KIND_FAILED);
		CHECK_STR(err.code, cases[i].code);
		CHECK(err.retryable == cases[i].retryable);
		CHECK(err.throttled == cases[i].throttled);
		CHECK(strstr(err.message, cases[i].text) != NULL);
		if (!strstr(err.message, cases[i].text))
			fprintf(stderr, "    case %zu: %s\n", i, err.message);
		CHECK(out.access_token == NULL);
		/* The carry stays the engine's, for a retry. */
		CHECK(!cases[i].step || (carry && !strcmp(carry, FED)));
		free(carry);
	}
	cfg_free(cfg);
}

/* An endpoint that quotes the token it was sent (or the bearer it was
 * called with) does not get it into status or the log. */
static void test_quoted_credentials_withheld(void)
{
	static const struct fake_answer echo_jwt[] = { {
		FAKE_ANSWER, 400,
		"{\"error\":\"invalid_grant\",\"error_description\":\"bad token " JWT "\"}" } };
	static const struct fake_answer echo_sig[] = { {
		FAKE_ANSWER, 400,
		"{\"error\":\"invalid_grant\",\"error_description\":\"signature "
		"c2lnbmF0dXJlLW9mLXRoZS1y is wrong\"}" } };
	static const struct fake_answer echo_claims[] = { {
		FAKE_ANSWER, 400,
		"{\"error\":\"invalid_grant\",\"error_description\":\"claims "
		"eyJzdWIiOiJhcHAifQ rejected\"}" } };
	static const struct fake_answer echo_bearer[] = { {
		FAKE_ANSWER, 401,
		"{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\","
		"\"message\":\"bad bearer " FED "\"}}" } };
	struct cfg *cfg = impersonating_role();
	struct exchange_error err;
	struct creds out;
	char *carry = NULL;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	fake_script(echo_jwt, 1);
	CHECK(request(cfg, 0, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "invalid_grant");
	CHECK(strstr(err.message, "withheld") && !strstr(err.message, "c2lnbmF0"));
	fake_script(echo_sig, 1);
	CHECK(request(cfg, 0, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK(strstr(err.message, "withheld") != NULL);
	/* The claims part of a JWT says who, not how: it may be quoted. */
	fake_script(echo_claims, 1);
	CHECK(request(cfg, 0, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK(strstr(err.message, "eyJzdWIiOiJhcHAifQ rejected") != NULL);
	carry = strdup(FED);
	fake_script(echo_bearer, 1);
	CHECK(request(cfg, 1, JWT, &carry, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "UNAUTHENTICATED");
	CHECK(strstr(err.message, "withheld") && !strstr(err.message, FED));
	free(carry);
	cfg_free(cfg);
}

/* ---- through the engine ------------------------------------------------- */

/* A renewal of an impersonating role: generateAccessToken answers 503
 * once; the engine retries that step with the token of step 0 (which is
 * not asked for again), and the role gets the service account's token. */
static void test_engine_retries_second_step(void)
{
	int64_t expires;
	const struct fake_answer answers[] = {
		{ FAKE_ANSWER, 200, STS_OK },
		{ FAKE_ANSWER, 503, IAM_503 },
		{ FAKE_ANSWER, 200, iam_ok(&expires) },
	};
	char dir[] = "/tmp/credfs-gcp-XXXXXX", token[64], text[1024];
	struct engine_options opt = { 0 };
	struct generation *gen = NULL;
	struct engine *e = NULL;
	struct role *r = NULL;
	struct creds *c = NULL;
	struct cfg *cfg;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(token, sizeof(token), "%s/token", dir);
	f = fopen(token, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(JWT, f);
	fclose(f);
	snprintf(text, sizeof(text),
		 "[credfs]\nmax_sts_rate = 0\n" ROLE_HEAD
		 "web_identity_token_file = %s\n"
		 "service_account = app@project.iam.gserviceaccount.com\n",
		 token);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		goto out;
	gen = generation_new(cfg, NULL);
	fake_script(answers, ARRAY_SIZE(answers));
	e = gen ? engine_new(gen, &opt) : NULL;
	r = e ? engine_role(e, "g") : NULL;
	CHECK(r != NULL);
	if (!r)
		goto out;
	CHECK(engine_credentials(r, ENGINE_WAIT, &c) == 0);
	CHECK(c && c->access_token && !strcmp(c->access_token, SA_TOKEN));
	CHECK(c && c->expires == expires);
	CHECK(fake_requests() == 3);
	CHECK_STR(fake.log[0].url, "http://127.0.0.1:9/v1/token");
	CHECK_STR(fake_header(1, "Authorization"), "Bearer " FED);
	CHECK_STR(fake_header(2, "Authorization"), "Bearer " FED);
out:
	creds_unref(c);
	role_unref(r);
	engine_free(e);
	generation_unref(gen);
	unlink(token);
	rmdir(dir);
}

int main(void)
{
	static const struct check_case cases[] = {
		CHECK_CASE(test_token_cases),
		CHECK_CASE(test_iam_cases),
		CHECK_CASE(test_body_cap),
		CHECK_CASE(test_message_never_echoes_body),
		CHECK_CASE(test_token_request_body),
		CHECK_CASE(test_impersonation_requests),
		CHECK_CASE(test_plain_exchange),
		CHECK_CASE(test_impersonation_steps),
		CHECK_CASE(test_steps_without_their_input),
		CHECK_CASE(test_failures),
		CHECK_CASE(test_quoted_credentials_withheld),
		CHECK_CASE(test_engine_retries_second_step),
	};
	int rc;

	if (http_global_init())
		return 1;
	http_set_transport(fake_transport);
	rc = CHECK_RUN(cases);
	fake_reset();
	http_set_transport(NULL);
	http_global_cleanup();
	return rc;
}
