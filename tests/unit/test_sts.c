/*
 * The STS client and its HTTP transport: response cases from
 * tests/data/sts/<case>/{body.xml,status,expected}, the form body, the retry
 * policy, sts_exchange over a fake transport, and http_post against a tiny
 * local HTTP server.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "clock.h"
#include "http.h"
#include "sts.h"

#define STS_DIR TEST_DATA_DIR "/sts"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	buf_init(&b, 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n)) {
			fclose(f);
			return NULL;
		}
	}
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one response case, naming it when a check fails. */
static void run_case(const char *name)
{
	char path[4096], kind[16], code[64], akid[128];
	char *body, *status_s, *expected;
	size_t body_len, n;
	struct sts_credentials cred;
	struct sts_error err;
	long long exp_epoch;
	int status, retryable, rc, before = check_failures_in_test;

	snprintf(path, sizeof(path), "%s/%s/body.xml", STS_DIR, name);
	body = read_file(path, &body_len);
	snprintf(path, sizeof(path), "%s/%s/status", STS_DIR, name);
	status_s = read_file(path, &n);
	snprintf(path, sizeof(path), "%s/%s/expected", STS_DIR, name);
	expected = read_file(path, &n);
	CHECK(body && status_s && expected);
	if (!body || !status_s || !expected)
		goto out;
	status = atoi(status_s);

	memset(&cred, 0, sizeof(cred));
	rc = sts_parse_response(body, body_len, status, &cred, &err);
	if (sscanf(expected, "%15s", kind) != 1) {
		CHECK(!"expected file is empty");
	} else if (!strcmp(kind, "ok")) {
		CHECK(sscanf(expected, "ok %lld %127s", &exp_epoch, akid) == 2);
		CHECK(rc == 0);
		if (rc == 0) {
			CHECK(cred.expiration == exp_epoch);
			CHECK_STR(cred.access_key_id, akid);
			/* Secrets are checked without being printed. */
			CHECK(cred.secret_access_key &&
			      cred.secret_access_key[0]);
			CHECK(cred.session_token && cred.session_token[0]);
		} else {
			fprintf(stderr, "    error %s: %s\n", err.code,
				err.message);
		}
	} else {
		CHECK(sscanf(expected, "error %63s %d", code, &retryable) == 2);
		CHECK(rc == -1);
		CHECK_STR(err.code, code);
		CHECK(err.retryable == retryable);
		CHECK(err.http_status == status);
		CHECK(err.message[0] != '\0');
		CHECK(cred.access_key_id == NULL);
	}
	if (check_failures_in_test != before)
		fprintf(stderr, "    in case %s\n", name);
	sts_credentials_clear(&cred);
out:
	free(body);
	free(status_s);
	free(expected);
}

/* Every folder under tests/data/sts is a case; at least 20 must exist. */
static void test_response_cases(void)
{
	DIR *d = opendir(STS_DIR);
	struct dirent *de;
	char *names[256];
	size_t n = 0;

	CHECK(d != NULL);
	if (!d)
		return;
	while ((de = readdir(d)) && n < ARRAY_SIZE(names)) {
		if (de->d_name[0] == '.')
			continue;
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	CHECK(n >= 20);
	for (size_t i = 0; i < n; i++) {
		run_case(names[i]);
		free(names[i]);
	}
}

/* The exact values of the AWS documentation example, role user included. */
static void test_parse_fields(void)
{
	char path[4096], *body;
	size_t len;
	struct sts_credentials c;
	struct sts_error err;

	snprintf(path, sizeof(path), "%s/web_identity_aws/body.xml", STS_DIR);
	body = read_file(path, &len);
	CHECK(body != NULL);
	if (!body)
		return;
	CHECK(sts_parse_response(body, len, 200, &c, &err) == 0);
	CHECK(c.secret_access_key &&
	      !strcmp(c.secret_access_key,
		      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"));
	CHECK(c.session_token &&
	      !strcmp(c.session_token,
		      "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE"));
	CHECK_STR(c.assumed_role_arn,
		  "arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1");
	CHECK_STR(c.assumed_role_id, "AROACLKWSDQRAOEXAMPLE:app1");
	sts_credentials_clear(&c);
	CHECK(c.access_key_id == NULL && c.expiration == 0);
	free(body);
}

/* A body that is cut, garbage, or a bad field never reaches the message. */
static void test_message_never_echoes_body(void)
{
	static const char *const bodies[] = {
		"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
		"<Credentials><SecretAccessKey>SECRETMARKER",
		"SECRETMARKER not xml",
		"<AssumeRoleResponse><AssumeRoleResult><Credentials>"
		"<AccessKeyId>A</AccessKeyId><SecretAccessKey>SECRETMARKER"
		"</SecretAccessKey><SessionToken>t</SessionToken>"
		"<Expiration>SECRETMARKER</Expiration></Credentials>"
		"</AssumeRoleResult></AssumeRoleResponse>",
		"<html><body>SECRETMARKER</body></html>",
		"<SECRETMARKER/>",
	};
	static const int statuses[] = { 200, 503, 400 };
	struct sts_credentials c = { 0 };
	struct sts_error err;

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		for (size_t s = 0; s < ARRAY_SIZE(statuses); s++) {
			CHECK(sts_parse_response(bodies[i], strlen(bodies[i]),
						 statuses[s], &c, &err) == -1);
			CHECK(!strstr(err.message, "SECRETMARKER"));
			CHECK(!strstr(err.code, "SECRETMARKER"));
			CHECK(err.message[0] != '\0');
		}
	}
}

/* Element text over 64 KiB is refused even inside an error document. */
static void test_parse_text_cap(void)
{
	struct sts_credentials c = { 0 };
	struct sts_error err;
	struct buf b;

	buf_init(&b, 200 * 1024);
	CHECK(!buf_append_str(&b, "<ErrorResponse><Error><Code>Throttling"
				  "</Code><Message>"));
	for (int i = 0; i < 70 * 1024 / 16; i++)
		CHECK(!buf_append_str(&b, "0123456789abcdef"));
	CHECK(!buf_append_str(&b, "</Message></Error></ErrorResponse>"));
	CHECK(sts_parse_response(b.data, b.len, 200, &c, &err) == -1);
	CHECK_STR(err.code, "Malformed");
	CHECK(strstr(err.message, "64 KiB") != NULL);
	/* With an error status the status is the code. */
	CHECK(sts_parse_response(b.data, b.len, 400, &c, &err) == -1);
	CHECK_STR(err.code, "HTTP400");
	CHECK(err.retryable == 0);
	CHECK(strstr(err.message, "64 KiB") != NULL);
	buf_free(&b);

	/* Just under the cap is fine; the message is truncated to fit. */
	buf_init(&b, 200 * 1024);
	CHECK(!buf_append_str(&b, "<ErrorResponse><Error><Code>Throttling"
				  "</Code><Message>"));
	for (int i = 0; i < 60 * 1024 / 16; i++)
		CHECK(!buf_append_str(&b, "0123456789abcdef"));
	CHECK(!buf_append_str(&b, "</Message></Error></ErrorResponse>"));
	CHECK(sts_parse_response(b.data, b.len, 400, &c, &err) == -1);
	CHECK_STR(err.code, "Throttling");
	CHECK(err.retryable == 1);
	CHECK(strlen(err.message) == sizeof(err.message) - 1);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Request body                                                        */

static void test_body_web_identity(void)
{
	struct sts_request req = {
		.action = STS_ASSUME_ROLE_WITH_WEB_IDENTITY,
		.role_arn = "arn:aws:iam::123456789012:role/demo",
		.session_name = "app@example.com=1",
		.duration_seconds = 3600,
		.web_identity_token = "eyJ-h_b.eyJ~p.s+g/x=",
	};
	char *body = sts_build_body(&req);

	CHECK_STR(body,
		  "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
		  "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo"
		  "&RoleSessionName=app%40example.com%3D1"
		  "&DurationSeconds=3600"
		  "&WebIdentityToken=eyJ-h_b.eyJ~p.s%2Bg%2Fx%3D");
	secret_free(body);
}

static const char *const policy_arns[] = {
	"arn:aws:iam::aws:policy/ReadOnlyAccess",
	"arn:aws:iam::123456789012:policy/p 2",
};
static const struct sts_tag tags[] = {
	{ "Project", "Blue Sky" },
	{ "Team", "a&b" },
};
static const char *const transitive[] = { "Project" };

static void fill_extras(struct sts_extras *x)
{
	memset(x, 0, sizeof(*x));
	x->external_id = "ext-ID:42";
	x->policy = "{\"Version\":\"2012-10-17\"}";
	x->policy_arns = policy_arns;
	x->n_policy_arns = ARRAY_SIZE(policy_arns);
	x->tags = tags;
	x->n_tags = ARRAY_SIZE(tags);
	x->transitive_tag_keys = transitive;
	x->n_transitive_tag_keys = ARRAY_SIZE(transitive);
	x->source_identity = "alice";
}

static void test_body_assume_role_extras(void)
{
	struct sts_extras x;
	struct sts_request req = {
		.action = STS_ASSUME_ROLE,
		.role_arn = "arn:aws:iam::123456789012:role/next",
		.session_name = "credfs-next",
		.duration_seconds = 900,
		.web_identity_token = "must-not-appear",
		.extras = &x,
	};
	char *body;

	fill_extras(&x);
	body = sts_build_body(&req);
	CHECK_STR(body,
		  "Action=AssumeRole&Version=2011-06-15"
		  "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fnext"
		  "&RoleSessionName=credfs-next&DurationSeconds=900"
		  "&Policy=%7B%22Version%22%3A%222012-10-17%22%7D"
		  "&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess"
		  "&PolicyArns.member.2.arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fp%202"
		  "&ExternalId=ext-ID%3A42&SourceIdentity=alice"
		  "&Tags.member.1.Key=Project&Tags.member.1.Value=Blue%20Sky"
		  "&Tags.member.2.Key=Team&Tags.member.2.Value=a%26b"
		  "&TransitiveTagKeys.member.1=Project");
	secret_free(body);
}

/* Web identity takes Policy and PolicyArns only; never ProviderId. */
static void test_body_web_identity_extras(void)
{
	struct sts_extras x;
	struct sts_request req = {
		.action = STS_ASSUME_ROLE_WITH_WEB_IDENTITY,
		.role_arn = "r",
		.session_name = "s",
		.web_identity_token = "tok",
		.extras = &x,
	};
	char *body;

	fill_extras(&x);
	body = sts_build_body(&req);
	CHECK(body != NULL);
	if (!body)
		return;
	CHECK(strstr(body, "&Policy=") != NULL);
	CHECK(strstr(body, "&PolicyArns.member.2.arn=") != NULL);
	CHECK(!strstr(body, "ExternalId"));
	CHECK(!strstr(body, "Tags"));
	CHECK(!strstr(body, "SourceIdentity"));
	CHECK(!strstr(body, "ProviderId"));
	CHECK(!strstr(body, "DurationSeconds"));	/* 0: STS default */
	secret_free(body);
}

/* ------------------------------------------------------------------ */
/* Retry policy                                                        */

static void test_is_retryable(void)
{
	static const struct {
		int status;
		const char *code;
		int want;
	} t[] = {
		{ 500, "InternalFailure", 1 },
		{ 502, "HTTP502", 1 },
		{ 503, "ServiceUnavailable", 1 },
		{ 504, "HTTP504", 1 },
		{ 501, "HTTP501", 0 },
		{ 429, "HTTP429", 0 },
		{ 400, "Throttling", 1 },
		{ 400, "ThrottlingException", 1 },
		{ 400, "ThrottledException", 1 },
		{ 400, "RequestThrottledException", 1 },
		{ 400, "TooManyRequestsException", 1 },
		{ 400, "RequestLimitExceeded", 1 },
		{ 503, "SlowDown", 1 },
		{ 400, "LimitExceededException", 1 },
		{ 400, "RequestTimeout", 1 },
		{ 400, "RequestTimeoutException", 1 },
		{ 400, "PriorRequestNotComplete", 1 },
		{ 400, "IDPCommunicationError", 1 },
		{ 0, "Transport", 1 },
		{ 400, "InvalidIdentityToken", 0 },
		{ 400, "ExpiredTokenException", 0 },
		{ 403, "AccessDenied", 0 },
		{ 403, "IDPRejectedClaim", 0 },
		{ 400, "ValidationError", 0 },
		{ 400, "MalformedPolicyDocument", 0 },
		{ 0, "TLS", 0 },
		{ 200, "Malformed", 0 },
		{ 400, "throttling", 0 },	/* codes are case-sensitive */
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (sts_is_retryable(t[i].status, t[i].code) != t[i].want) {
			fprintf(stderr, "    %d %s\n", t[i].status, t[i].code);
			CHECK(!"sts_is_retryable");
		}
	}
	CHECK(sts_is_retryable(503, NULL) == 1);
	CHECK(sts_is_retryable(400, NULL) == 0);
}

static void test_backoff(void)
{
	static const struct {
		int retry;
		long max;
	} t[] = {
		{ 1, 1000 }, { 2, 2000 }, { 3, 4000 }, { 4, 8000 },
		{ 5, 16000 }, { 6, 20000 }, { 10, 20000 }, { 1000, 20000 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		CHECK(sts_backoff_ms(t[i].retry, 0.0) == 0);
		CHECK(sts_backoff_ms(t[i].retry, 1.0) == t[i].max);
		for (int k = 0; k < 100; k++) {
			long ms = sts_backoff_ms(t[i].retry, k / 100.0);

			CHECK(ms >= 0 && ms <= t[i].max);
		}
	}
	CHECK(sts_backoff_ms(1, 0.5) == 500);
	CHECK(sts_backoff_ms(10, 0.5) == 10000);
	CHECK(sts_backoff_ms(0, 1.0) == 1000);	/* clamped to retry 1 */
	CHECK(sts_backoff_ms(2, 7.0) == 2000);	/* rand clamped to 1 */
	CHECK(sts_backoff_ms(2, -1.0) == 0);
}

/* ------------------------------------------------------------------ */
/* sts_exchange over a fake transport                                  */

#define FAKE_MAX 8

struct fake_reply {
	int result;		/* enum http_result */
	long status;
	const char *body;
};

static struct {
	struct fake_reply replies[FAKE_MAX];
	size_t n_replies;
	size_t calls;
	/* Copies of what the last request carried. */
	char url[512];
	char body[4096];
	char headers[FAKE_MAX * 2][2][1024];
	size_t n_headers;
	long sleeps[FAKE_MAX];
	size_t n_sleeps;
} fake;

static const char ok_body[] =
	"<AssumeRoleWithWebIdentityResponse "
	"xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	"<AssumeRoleWithWebIdentityResult><Credentials>"
	"<AccessKeyId>ASIAFAKE</AccessKeyId>"
	"<SecretAccessKey>fake-secret</SecretAccessKey>"
	"<SessionToken>fake-token</SessionToken>"
	"<Expiration>2030-01-01T00:00:00Z</Expiration>"
	"</Credentials></AssumeRoleWithWebIdentityResult>"
	"</AssumeRoleWithWebIdentityResponse>";
static const char ar_ok_body[] =
	"<AssumeRoleResponse><AssumeRoleResult><Credentials>"
	"<AccessKeyId>ASIACHAINED</AccessKeyId>"
	"<SecretAccessKey>s</SecretAccessKey>"
	"<SessionToken>t</SessionToken>"
	"<Expiration>2030-01-01T00:00:00Z</Expiration>"
	"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
static const char unavailable_body[] =
	"<ErrorResponse><Error><Type>Receiver</Type>"
	"<Code>ServiceUnavailable</Code><Message>try later</Message>"
	"</Error></ErrorResponse>";
static const char invalid_token_body[] =
	"<ErrorResponse><Error><Type>Sender</Type>"
	"<Code>InvalidIdentityToken</Code><Message>bad token</Message>"
	"</Error></ErrorResponse>";

static int fake_transport(const struct http_request *req,
			  struct http_response *resp, char *errbuf,
			  size_t errlen)
{
	const struct fake_reply *r;

	snprintf(fake.url, sizeof(fake.url), "%s", req->url);
	snprintf(fake.body, sizeof(fake.body), "%.*s", (int)req->body_len,
		 req->body);
	fake.n_headers = 0;
	for (size_t i = 0; i < req->n_headers && i < FAKE_MAX * 2; i++) {
		snprintf(fake.headers[i][0], sizeof(fake.headers[i][0]), "%s",
			 req->headers[i].name);
		snprintf(fake.headers[i][1], sizeof(fake.headers[i][1]), "%s",
			 req->headers[i].value);
		fake.n_headers++;
	}
	if (fake.calls >= fake.n_replies) {
		fake.calls++;
		snprintf(errbuf, errlen, "no more fake replies");
		return HTTP_ERR_INTERNAL;
	}
	r = &fake.replies[fake.calls++];
	if (r->result != HTTP_OK) {
		snprintf(errbuf, errlen, "Failed to connect to sts: refused");
		return r->result;
	}
	resp->status = r->status;
	if (buf_append_str(&resp->body, r->body))
		return HTTP_ERR_TOO_BIG;
	return HTTP_OK;
}

static void fake_sleep(long ms)
{
	if (fake.n_sleeps < FAKE_MAX)
		fake.sleeps[fake.n_sleeps++] = ms;
}

static void fake_setup(const struct fake_reply *replies, size_t n)
{
	memset(&fake, 0, sizeof(fake));
	memcpy(fake.replies, replies, n * sizeof(*replies));
	fake.n_replies = n;
	http_set_transport(fake_transport);
	sts_set_sleep(fake_sleep);
}

static void fake_teardown(void)
{
	http_set_transport(NULL);
	sts_set_sleep(NULL);
}

static const char *fake_header(const char *name)
{
	for (size_t i = 0; i < fake.n_headers; i++)
		if (!strcasecmp(fake.headers[i][0], name))
			return fake.headers[i][1];
	return NULL;
}

static const struct sts_request web_req = {
	.action = STS_ASSUME_ROLE_WITH_WEB_IDENTITY,
	.endpoint = "https://sts.eu-west-1.amazonaws.com",
	.region = "eu-west-1",
	.role_arn = "arn:aws:iam::123456789012:role/demo",
	.session_name = "credfs-demo",
	.duration_seconds = 3600,
	.web_identity_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
	.connect_timeout_ms = 1000,
	.timeout_ms = 5000,
};

static void test_exchange_retries_then_succeeds(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 503, unavailable_body },
		{ HTTP_OK, 503, "<html>busy</html>" },
		{ HTTP_OK, 200, ok_body },
	};
	struct sts_credentials c;
	struct sts_error err;
	unsigned long calls = 0;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&web_req, &c, &err, &calls) == 0);
	CHECK(calls == 3);
	CHECK(fake.calls == 3);
	CHECK_STR(c.access_key_id, "ASIAFAKE");
	CHECK(c.expiration == 1893456000);
	/* Two sleeps, full jitter within retry 1 and retry 2 bounds. */
	CHECK(fake.n_sleeps == 2);
	CHECK(fake.sleeps[0] >= 0 && fake.sleeps[0] <= 1000);
	CHECK(fake.sleeps[1] >= 0 && fake.sleeps[1] <= 2000);
	sts_credentials_clear(&c);
	fake_teardown();
}

static void test_exchange_gives_up_after_three(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 503, unavailable_body },
		{ HTTP_OK, 503, unavailable_body },
		{ HTTP_OK, 503, unavailable_body },
		{ HTTP_OK, 200, ok_body },	/* never reached */
	};
	struct sts_credentials c;
	struct sts_error err;
	unsigned long calls = 0;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&web_req, &c, &err, &calls) == -1);
	CHECK(calls == 3);
	CHECK(fake.calls == 3);
	CHECK_STR(err.code, "ServiceUnavailable");
	CHECK(err.http_status == 503);
	CHECK(err.retryable == 1);
	CHECK(c.access_key_id == NULL);
	fake_teardown();
}

static void test_exchange_invalid_token_not_retried(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 400, invalid_token_body },
		{ HTTP_OK, 200, ok_body },
	};
	struct sts_credentials c;
	struct sts_error err;
	unsigned long calls = 0;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&web_req, &c, &err, &calls) == -1);
	CHECK(calls == 1);
	CHECK(fake.n_sleeps == 0);
	CHECK_STR(err.code, "InvalidIdentityToken");
	CHECK_STR(err.message, "bad token");
	CHECK(err.retryable == 0);
	/* The token is not in the error. */
	CHECK(!strstr(err.message, "eyJ"));
	fake_teardown();
}

static void test_exchange_transport_error_then_success(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_ERR_TRANSPORT, 0, NULL },
		{ HTTP_OK, 200, ok_body },
	};
	struct sts_credentials c;
	struct sts_error err;
	unsigned long calls = 0;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&web_req, &c, &err, &calls) == 0);
	CHECK(calls == 2);
	CHECK_STR(c.access_key_id, "ASIAFAKE");
	sts_credentials_clear(&c);
	fake_teardown();
}

static void test_exchange_transport_errors_exhaust(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_ERR_TRANSPORT, 0, NULL },
		{ HTTP_ERR_TRANSPORT, 0, NULL },
		{ HTTP_ERR_TRANSPORT, 0, NULL },
	};
	struct sts_credentials c;
	struct sts_error err;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&web_req, &c, &err, NULL) == -1);
	CHECK(fake.calls == 3);
	CHECK_STR(err.code, "Transport");
	CHECK(err.retryable == 1);
	CHECK(err.http_status == 0);
	CHECK(strstr(err.message, "refused") != NULL);
	fake_teardown();
}

static void test_exchange_tls_and_too_big_final(void)
{
	static const struct fake_reply tls[] = {
		{ HTTP_ERR_TLS, 0, NULL },
		{ HTTP_OK, 200, ok_body },
	};
	static const struct fake_reply big[] = {
		{ HTTP_ERR_TOO_BIG, 0, NULL },
		{ HTTP_OK, 200, ok_body },
	};
	struct sts_credentials c;
	struct sts_error err;
	unsigned long calls = 0;

	fake_setup(tls, ARRAY_SIZE(tls));
	CHECK(sts_exchange(&web_req, &c, &err, &calls) == -1);
	CHECK(calls == 1);
	CHECK_STR(err.code, "TLS");
	CHECK(err.retryable == 0);

	fake_setup(big, ARRAY_SIZE(big));
	calls = 0;
	CHECK(sts_exchange(&web_req, &c, &err, &calls) == -1);
	CHECK(calls == 1);
	CHECK_STR(err.code, "Malformed");
	CHECK_STR(err.message, "response larger than 256 KiB");
	fake_teardown();
}

/* What goes on the wire for web identity: unsigned, form-encoded, to
 * ENDPOINT/. */
static void test_exchange_request_shape(void)
{
	static const struct fake_reply r[] = { { HTTP_OK, 200, ok_body } };
	struct sts_request req = web_req;
	struct sts_credentials c;
	struct sts_error err;
	const char *ct;

	req.endpoint = "https://sts.eu-west-1.amazonaws.com";
	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&req, &c, &err, NULL) == 0);
	sts_credentials_clear(&c);
	CHECK_STR(fake.url, "https://sts.eu-west-1.amazonaws.com/");
	ct = fake_header("Content-Type");
	CHECK_STR(ct, "application/x-www-form-urlencoded; charset=utf-8");
	CHECK(fake_header("User-Agent") != NULL);
	CHECK(fake_header("Authorization") == NULL);
	CHECK(fake_header("Accept") == NULL ||
	      !strstr(fake_header("Accept"), "json"));
	CHECK(!strncmp(fake.body, "Action=AssumeRoleWithWebIdentity&", 33));
	CHECK(strstr(fake.body, "&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9."
				"eyJzdWIiOiJ4In0.c2ln") != NULL);
	CHECK(strstr(fake.body, "&DurationSeconds=3600") != NULL);

	/* An endpoint that already ends in '/' keeps a single one. */
	fake_setup(r, ARRAY_SIZE(r));
	req.endpoint = "http://127.0.0.1:5000/";
	CHECK(sts_exchange(&req, &c, &err, NULL) == 0);
	sts_credentials_clear(&c);
	CHECK_STR(fake.url, "http://127.0.0.1:5000/");
	fake_teardown();
}

static int64_t fixed_wall(void)
{
	return 1440938160;	/* 2015-08-30T12:36:00Z */
}

/* AssumeRole is signed: host (with a non-default port), x-amz-date, the
 * session token of the source credentials, Authorization. */
static void test_exchange_assume_role_signed(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 200, ar_ok_body },
		{ HTTP_OK, 200, ar_ok_body },
	};
	struct sts_credentials src = {
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		.session_token = "source-session-token",
	};
	struct sts_request req = {
		.action = STS_ASSUME_ROLE,
		.endpoint = "http://127.0.0.1:5000",
		.region = "us-west-2",
		.role_arn = "arn:aws:iam::123456789012:role/next",
		.session_name = "credfs-next",
		.duration_seconds = 900,
		.source = &src,
	};
	struct sts_credentials c;
	struct sts_error err;
	const char *auth;

	clock_set_source(fixed_wall, NULL);
	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&req, &c, &err, NULL) == 0);
	CHECK_STR(c.access_key_id, "ASIACHAINED");
	sts_credentials_clear(&c);
	CHECK_STR(fake.url, "http://127.0.0.1:5000/");
	CHECK_STR(fake_header("host"), "127.0.0.1:5000");
	CHECK_STR(fake_header("x-amz-date"), "20150830T123600Z");
	CHECK(fake_header("x-amz-security-token") &&
	      !strcmp(fake_header("x-amz-security-token"),
		      "source-session-token"));
	CHECK_STR(fake_header("content-type"),
		  "application/x-www-form-urlencoded; charset=utf-8");
	auth = fake_header("authorization");
	CHECK(auth && !strncmp(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
				     "20150830/us-west-2/sts/aws4_request", 74));
	CHECK(auth && strstr(auth, "x-amz-security-token") &&
	      strstr(auth, "host") && strstr(auth, "x-amz-date"));
	CHECK(!strncmp(fake.body, "Action=AssumeRole&", 18));
	CHECK(!strstr(fake.body, "WebIdentityToken"));

	/* The default port is not part of the signed host. */
	req.endpoint = "https://sts.us-west-2.amazonaws.com:443";
	src.session_token = NULL;
	CHECK(sts_exchange(&req, &c, &err, NULL) == 0);
	sts_credentials_clear(&c);
	CHECK_STR(fake_header("host"), "sts.us-west-2.amazonaws.com");
	CHECK(fake_header("x-amz-security-token") == NULL);
	fake_teardown();
	clock_set_source(NULL, NULL);
}

static void test_exchange_assume_role_needs_source(void)
{
	static const struct fake_reply r[] = { { HTTP_OK, 200, ar_ok_body } };
	struct sts_request req = {
		.action = STS_ASSUME_ROLE,
		.endpoint = "https://sts.us-west-2.amazonaws.com",
		.region = "us-west-2",
		.role_arn = "arn:aws:iam::123456789012:role/next",
		.session_name = "s",
	};
	struct sts_credentials c;
	struct sts_error err;
	unsigned long calls = 0;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_exchange(&req, &c, &err, &calls) == -1);
	CHECK(calls == 0);
	CHECK(err.retryable == 0);
	fake_teardown();
}

static void test_credentials_copy(void)
{
	struct sts_credentials src = {
		.access_key_id = "AKID",
		.secret_access_key = "SECRET",
		.session_token = "TOKEN",
		.expiration = 42,
		.assumed_role_arn = "arn",
		.assumed_role_id = NULL,
	};
	struct sts_credentials dst;

	CHECK(sts_credentials_copy(&dst, &src) == 0);
	CHECK_STR(dst.access_key_id, "AKID");
	CHECK(dst.secret_access_key != src.secret_access_key &&
	      !strcmp(dst.secret_access_key, "SECRET"));
	CHECK(dst.session_token != src.session_token &&
	      !strcmp(dst.session_token, "TOKEN"));
	CHECK(dst.expiration == 42);
	CHECK_STR(dst.assumed_role_arn, "arn");
	CHECK(dst.assumed_role_id == NULL);
	sts_credentials_clear(&dst);
	CHECK(!dst.access_key_id && !dst.secret_access_key &&
	      !dst.session_token && !dst.assumed_role_arn && !dst.expiration);
}

/* ------------------------------------------------------------------ */
/* http_post against a one-shot local server                           */

struct server {
	int fd;
	int port;
	const char *reply;	/* written after the request is read */
	size_t reply_len;
	size_t pad;		/* extra 'x' bytes after reply */
	int no_read;		/* answer at once, without reading */
	char request[16384];
	size_t request_len;
	pthread_t thread;
};

/* Reads one request (headers plus Content-Length bytes), answers, closes. */
static void *server_run(void *arg)
{
	struct server *s = arg;
	char pad[4096];
	ssize_t n;
	int c = accept(s->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	for (; !s->no_read;) {
		char *end, *cl;
		size_t want;

		n = read(c, s->request + s->request_len,
			 sizeof(s->request) - 1 - s->request_len);
		if (n <= 0)
			break;
		s->request_len += (size_t)n;
		s->request[s->request_len] = '\0';
		end = strstr(s->request, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(s->request, "Content-Length:");
		want = (size_t)(end + 4 - s->request) +
		       (cl ? strtoul(cl + 15, NULL, 10) : 0);
		if (s->request_len >= want)
			break;
	}
	if (write(c, s->reply, s->reply_len) < 0)
		goto out;
	memset(pad, 'x', sizeof(pad));
	for (size_t left = s->pad; left;) {
		size_t k = left < sizeof(pad) ? left : sizeof(pad);

		n = write(c, pad, k);
		if (n <= 0)
			break;
		left -= (size_t)n;
	}
out:
	close(c);
	return NULL;
}

static int server_start_ex(struct server *s, const char *reply, size_t pad,
			   int no_read)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->reply_len = strlen(reply);
	s->pad = pad;
	s->no_read = no_read;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(s->fd, 4) ||
	    getsockname(s->fd, (struct sockaddr *)&a, &alen))
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thread, NULL, server_run, s) ? -1 : 0;
}

static int server_start(struct server *s, const char *reply, size_t pad)
{
	return server_start_ex(s, reply, pad, 0);
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void test_http_post_roundtrip(void)
{
	static const struct http_header h[] = {
		{ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
		{ "User-Agent", "credfs/0.1" },
		{ "X-Empty", "" },
	};
	struct server s;
	struct http_request req = {
		.headers = h,
		.n_headers = ARRAY_SIZE(h),
		.connect_timeout_ms = 2000,
		.timeout_ms = 5000,
	};
	struct http_response resp;
	char url[64], errbuf[256], body[3000];
	int rc;

	/* A body over 1 KiB must not wait for 100-continue. */
	memset(body, 'a', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	memcpy(body, "Action=x&", 9);
	req.body = body;
	req.body_len = strlen(body);
	CHECK(server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
			       "Connection: close\r\n\r\nhello", 0) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	req.url = url;
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	server_stop(&s);
	CHECK(rc == HTTP_OK);
	CHECK(resp.status == 200);
	CHECK_STR(resp.body.data, "hello");
	CHECK(!strncmp(s.request, "POST / HTTP/1.1\r\n", 17));
	CHECK(strstr(s.request, "\r\nContent-Type: application/x-www-form-"
				"urlencoded; charset=utf-8\r\n") != NULL);
	CHECK(strstr(s.request, "\r\nContent-Length: 2999\r\n") != NULL);
	CHECK(!strcasestr(s.request, "Expect:"));
	CHECK(strstr(s.request, "\r\nX-Empty:") != NULL);
	CHECK(strstr(s.request, "\r\n\r\nAction=x&aaaa") != NULL);
	http_response_free(&resp);
}

static void test_http_post_no_redirect(void)
{
	struct server s;
	struct http_request req = { .body = "a=b", .body_len = 3,
				    .timeout_ms = 5000 };
	struct http_response resp;
	char url[64], errbuf[256];
	int rc;

	CHECK(server_start(&s, "HTTP/1.1 302 Found\r\nLocation: "
			       "http://127.0.0.1:1/elsewhere\r\n"
			       "Content-Length: 0\r\nConnection: close\r\n\r\n",
			   0) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	req.url = url;
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	server_stop(&s);
	CHECK(rc == HTTP_OK);
	CHECK(resp.status == 302);
	http_response_free(&resp);
}

static void test_http_post_body_cap(void)
{
	struct server s;
	struct http_request req = { .body = "a=b", .body_len = 3,
				    .timeout_ms = 5000 };
	struct http_response resp;
	char url[64], errbuf[256];
	int rc;

	CHECK(server_start(&s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
			   HTTP_BODY_MAX + 1) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	req.url = url;
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	server_stop(&s);
	CHECK(rc == HTTP_ERR_TOO_BIG);
	CHECK(resp.body.data == NULL && resp.body.len == 0);

	/* Exactly at the cap is fine. */
	CHECK(server_start(&s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
			   HTTP_BODY_MAX) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	server_stop(&s);
	CHECK(rc == HTTP_OK);
	CHECK(resp.body.len == HTTP_BODY_MAX);
	http_response_free(&resp);
}

static void test_http_post_errors(void)
{
	struct server s;
	struct http_request req = { .body = "a=b", .body_len = 3,
				    .connect_timeout_ms = 2000,
				    .timeout_ms = 5000 };
	struct http_response resp;
	char url[64], errbuf[256];
	int port, rc;

	/* Nothing listens on a port we just closed. */
	CHECK(server_start(&s, "", 0) == 0);
	port = s.port;
	server_stop(&s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	req.url = url;
	CHECK(http_post(&req, &resp, errbuf, sizeof(errbuf)) ==
	      HTTP_ERR_TRANSPORT);
	CHECK(errbuf[0] != '\0');

	/* TLS spoken to a plain HTTP server fails as TLS, not transport. */
	CHECK(server_start_ex(&s, "HTTP/1.1 400 Bad Request\r\n"
				  "Connection: close\r\n\r\n", 0, 1) == 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	server_stop(&s);
	CHECK(rc == HTTP_ERR_TLS);

	/* Only http and https. */
	req.url = "ftp://127.0.0.1/";
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	CHECK(rc != HTTP_OK && rc != HTTP_ERR_TRANSPORT);
	req.url = "file:///etc/passwd";
	rc = http_post(&req, &resp, errbuf, sizeof(errbuf));
	CHECK(rc != HTTP_OK && rc != HTTP_ERR_TRANSPORT);
}

static void test_http_init(void)
{
	CHECK(http_global_init() == 0);
}

static void test_http_cleanup(void)
{
	http_global_cleanup();
}

static const struct check_case cases[] = {
	CHECK_CASE(test_http_init),
	CHECK_CASE(test_response_cases),
	CHECK_CASE(test_parse_fields),
	CHECK_CASE(test_message_never_echoes_body),
	CHECK_CASE(test_parse_text_cap),
	CHECK_CASE(test_body_web_identity),
	CHECK_CASE(test_body_assume_role_extras),
	CHECK_CASE(test_body_web_identity_extras),
	CHECK_CASE(test_is_retryable),
	CHECK_CASE(test_backoff),
	CHECK_CASE(test_exchange_retries_then_succeeds),
	CHECK_CASE(test_exchange_gives_up_after_three),
	CHECK_CASE(test_exchange_invalid_token_not_retried),
	CHECK_CASE(test_exchange_transport_error_then_success),
	CHECK_CASE(test_exchange_transport_errors_exhaust),
	CHECK_CASE(test_exchange_tls_and_too_big_final),
	CHECK_CASE(test_exchange_request_shape),
	CHECK_CASE(test_exchange_assume_role_signed),
	CHECK_CASE(test_exchange_assume_role_needs_source),
	CHECK_CASE(test_credentials_copy),
	CHECK_CASE(test_http_post_roundtrip),
	CHECK_CASE(test_http_post_no_redirect),
	CHECK_CASE(test_http_post_body_cap),
	CHECK_CASE(test_http_post_errors),
	CHECK_CASE(test_http_cleanup),
};

int main(void)
{
	return CHECK_RUN(cases);
}
