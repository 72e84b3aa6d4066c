/*
 * The Azure kind: every answer case of tests/data/azure_token, the
 * request byte for byte as the Azure SDKs' workload identity credential
 * sends it, its one step, transport failures and credentials never
 * quoted back; and a renewal through the engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloud_cases.h"
#include "config.h"
#include "engine.h"
#include "generation.h"
#include "kind_azure.h"

#define JWT "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhcHAifQ." \
	"c2lnbmF0dXJlLW9mLXRoZS1yb2xlcy10b2tlbi0wMTIzNDU2Nzg5"
#define AT "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQifQ.c2ln"
#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT "11111111-2222-3333-4444-555555555555"
#define OK_BODY "{\"token_type\":\"Bearer\",\"expires_in\":3599," \
	"\"ext_expires_in\":3599,\"access_token\":\"" AT "\"}"

#define ROLE(token_file)						\
	"[role a]\n"							\
	"cloud = azure\n"						\
	"web_identity_token_file = " token_file "\n"			\
	"tenant_id = 72F988BF-86F1-41AF-91AB-2D7CD011DB47\n"		\
	"client_id = " CLIENT "\n"					\
	"authority_host = http://127.0.0.1:9\n"

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

static enum kind_result request(const struct cfg *cfg, int step,
				const char *token, struct creds *out,
				struct exchange_error *err)
{
	struct kind_request req = {
		.role = &cfg->roles[0],
		.token = token,
		.step = step,
		.connect_timeout_ms = 1000,
		.timeout_ms = 1000,
	};
	enum kind_result res;

	memset(out, 0, sizeof(*out));
	res = kind_azure.request(&req, out, err);
	CHECK(req.carry == NULL);
	return res;
}

static void test_cases(void)
{
	run_cloud_cases(TEST_DATA_DIR "/azure_token", azure_parse_token_response,
			55);
}

/* A body, a value or a refused token never reaches a message. */
static void test_message_never_echoes_body(void)
{
	static const char *const bodies[] = {
		"SECRETMARKER",
		"{\"access_token\":\"SECRETMARKER\\n\",\"expires_in\":3599}",
		"{\"access_token\":\"x\",\"expires_in\":\"SECRETMARKER\"}",
		"{\"access_token\":\"x\",\"expires_in\":1,\"token_type\":\"SECRETMARKER\"}",
		"{\"error_codes\":[\"SECRETMARKER\"]}",
	};
	struct oauth_token tok;
	struct exchange_error err;

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		CHECK(azure_parse_token_response(bodies[i], strlen(bodies[i]), 200,
						 CASES_NOW, &tok, &err) == -1);
		CHECK(!strstr(err.message, "SECRETMARKER"));
		CHECK(!strstr(err.code, "SECRETMARKER"));
	}
}

/* The URL and form the Azure SDKs send (tenant in lower case, the
 * default scope), and the token file's trailing newline left out. */
static void test_request(void)
{
	static const struct fake_answer ok[] = { { FAKE_ANSWER, 200, OK_BODY } };
	struct cfg *cfg = load(ROLE("/nonexistent/token"));
	struct exchange_error err;
	struct creds out;
	int64_t t0 = time(NULL);
	char *url, *body;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	url = azure_token_url(&cfg->roles[0]);
	CHECK_STR(url, "http://127.0.0.1:9/" TENANT "/oauth2/v2.0/token");
	body = azure_token_request_body(&cfg->roles[0], JWT);
	CHECK_STR(body, "client_id=" CLIENT
		  "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
		  "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
		  "&client_assertion=" JWT
		  "&grant_type=client_credentials");
	fake_script(ok, 1);
	CHECK(request(cfg, 0, JWT "\r\n", &out, &err) == KIND_DONE);
	CHECK(out.access_token && !strcmp(out.access_token, AT));
	CHECK(out.expires >= t0 + 3599 && out.expires <= time(NULL) + 3599);
	CHECK(fake_requests() == 1);
	CHECK_STR(fake.log[0].url, url);
	CHECK_STR(fake.log[0].body, body);
	CHECK_STR(fake_header(0, "Content-Type"),
		  "application/x-www-form-urlencoded; charset=utf-8");
	CHECK(fake_header(0, "Authorization") == NULL);
	creds_clear(&out);
	secret_free(body);
	free(url);
	cfg_free(cfg);
}

/* Failures keep their codes; an echo of the assertion is withheld; a
 * second step or a missing token is refused without a request. */
static void test_failures(void)
{
	static const struct {
		struct fake_answer a;
		const char *code;
		int retryable, throttled;
		const char *text;
	} cases[] = {
		{ { FAKE_TRANSPORT, 0, NULL }, "Transport", 1, 0, "Entra ID: Connection refused" },
		{ { FAKE_TLS, 0, NULL }, "TLS", 0, 0, "certificate" },
		{ { FAKE_TOO_BIG, 0, NULL }, "Malformed", 0, 0, "larger than 256 KiB" },
		{ { FAKE_ANSWER, 401, "{\"error\":\"invalid_client\",\"error_codes\":[700211],"
		    "\"error_description\":\"AADSTS700211: No matching federated identity record\"}" },
		  "AADSTS700211", 0, 0, "No matching federated identity record" },
		{ { FAKE_ANSWER, 400, "{\"error\":\"invalid_request\",\"error_codes\":[50027],"
		    "\"error_description\":\"AADSTS50027: JWT token is invalid: " JWT "\"}" },
		  "AADSTS50027", 0, 0, "withheld" },
		{ { FAKE_ANSWER, 429, "{\"error\":\"temporarily_unavailable\"}" },
		  "temporarily_unavailable", 1, 1, "(no description)" },
	};
	struct cfg *cfg = load(ROLE("/nonexistent/token"));
	struct exchange_error err;
	struct creds out;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		fake_script(&cases[i].a, 1);
		CHECK(request(cfg, 0, JWT, &out, &err) == KIND_FAILED);
		CHECK_STR(err.code, cases[i].code);
		CHECK(err.retryable == cases[i].retryable);
		CHECK(err.throttled == cases[i].throttled);
		CHECK(strstr(err.message, cases[i].text) != NULL);
		CHECK(!strstr(err.message, "c2lnbmF0dXJl"));
		CHECK(out.access_token == NULL);
	}
	fake_reset();
	CHECK(request(cfg, 1, JWT, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "Internal");
	CHECK(request(cfg, 0, NULL, &out, &err) == KIND_FAILED);
	CHECK_STR(err.code, "Internal");
	CHECK(fake_requests() == 0);
	cfg_free(cfg);
}

/* Through the engine: a 503, then the token; one renewal, two requests,
 * and the answer's token is the role's. */
static void test_engine_renewal(void)
{
	static const struct fake_answer answers[] = {
		{ FAKE_ANSWER, 503, "{\"error\":\"server_error\",\"error_codes\":[90033]}" },
		{ FAKE_ANSWER, 200, OK_BODY },
	};
	char dir[] = "/tmp/credfs-azure-XXXXXX", token[64], text[1024];
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
	fputs(JWT "\n", f);
	fclose(f);
	snprintf(text, sizeof(text), "[credfs]\nmax_sts_rate = 0\n" ROLE("%s"),
		 token);
	cfg = load(text);
	CHECK(cfg != NULL);
	if (!cfg)
		goto out;
	gen = generation_new(cfg, NULL);
	fake_script(answers, ARRAY_SIZE(answers));
	e = gen ? engine_new(gen, &opt) : NULL;
	r = e ? engine_role(e, "a") : NULL;
	CHECK(r != NULL);
	if (!r)
		goto out;
	CHECK(engine_credentials(r, ENGINE_WAIT, &c) == 0);
	CHECK(c && c->access_token && !strcmp(c->access_token, AT));
	CHECK(fake_requests() == 2);
	CHECK(strstr(fake.log[1].body, "&client_assertion=" JWT "&") != NULL);
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
		CHECK_CASE(test_cases),
		CHECK_CASE(test_message_never_echoes_body),
		CHECK_CASE(test_request),
		CHECK_CASE(test_failures),
		CHECK_CASE(test_engine_renewal),
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
