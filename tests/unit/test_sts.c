/*
 * The STS client and its HTTP transport: response cases from
 * tests/data/sts/<case>/{body.xml,status,expected} (README.md there), the
 * form body, the retry table and backoff bounds, sts_send (one request per
 * call: retries are the engine's) over a fake transport, the SigV4
 * signature of AssumeRole recomputed independently, and http_post against
 * a tiny local HTTP server.
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
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "check.h"
#include "clock.h"
#include "http.h"
#include "sts.h"

#define STS_DIR TEST_DATA_DIR "/sts"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one response case, naming it when a check fails.  expected is
 * "ok EPOCH ACCESS_KEY_ID" or "error CODE RETRYABLE [TEXT]", TEXT being
 * words the message must contain (which value was refused, say). */
static void run_case(const char *name)
{
	char path[4096], kind[16], code[64], akid[256];
	char *body, *status_s, *expected;
	size_t body_len, n;
	struct sts_credentials cred;
	struct exchange_error err;
	long long exp_epoch;
	int status, retryable, rc, used = 0, before = check_failures_in_test;

	snprintf(path, sizeof(path), "%s/%s/body.xml", STS_DIR, name);
	body = check_read_file(path, &body_len);
	snprintf(path, sizeof(path), "%s/%s/status", STS_DIR, name);
	status_s = check_read_file(path, &n);
	snprintf(path, sizeof(path), "%s/%s/expected", STS_DIR, name);
	expected = check_read_file(path, &n);
	CHECK(body && status_s && expected);
	if (!body || !status_s || !expected)
		goto out;
	status = atoi(status_s);
	expected[strcspn(expected, "\n")] = '\0';

	memset(&cred, 0, sizeof(cred));
	rc = sts_parse_response(body, body_len, status, &cred, &err);
	if (sscanf(expected, "%15s", kind) != 1) {
		CHECK(!"expected file is empty");
	} else if (!strcmp(kind, "ok")) {
		CHECK(sscanf(expected, "ok %lld %255s", &exp_epoch, akid) == 2);
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
		CHECK(sscanf(expected, "error %63s %d %n", code, &retryable,
			     &used) == 2);
		CHECK(rc == -1);
		CHECK_STR(err.code, code);
		CHECK(err.retryable == retryable);
		CHECK(err.http_status == status);
		CHECK(err.message[0] != '\0');
		if (used > 0 && expected[used] &&
		    !strstr(err.message, expected + used)) {
			fprintf(stderr, "    message \"%s\" lacks \"%s\"\n",
				err.message, expected + used);
			CHECK(!"message names what was refused");
		}
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

/* Every folder under tests/data/sts is a case; at least 60 must exist. */
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
		struct stat st;
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", STS_DIR, de->d_name);
		if (de->d_name[0] == '.' || stat(path, &st) || !S_ISDIR(st.st_mode))
			continue;	/* README.md */
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	CHECK(n >= 60);
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
	struct exchange_error err;

	snprintf(path, sizeof(path), "%s/web_identity_aws/body.xml", STS_DIR);
	body = check_read_file(path, &len);
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
		/* Values refused for their characters are not quoted either. */
		"<AssumeRoleResponse><AssumeRoleResult><Credentials>"
		"<AccessKeyId>ASIAVALUECHECK0001</AccessKeyId>"
		"<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
		"</SecretAccessKey><SessionToken>AQoD$(SECRETMARKER)</SessionToken>"
		"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
		"</AssumeRoleResult></AssumeRoleResponse>",
		"<AssumeRoleResponse><AssumeRoleResult><Credentials>"
		"<AccessKeyId>ASIA SECRETMARKER</AccessKeyId>"
		"<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
		"</SecretAccessKey><SessionToken>AQoDYXdz</SessionToken>"
		"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
		"</AssumeRoleResult></AssumeRoleResponse>",
	};
	static const int statuses[] = { 200, 503, 400 };
	struct sts_credentials c = { 0 };
	struct exchange_error err;

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
	struct exchange_error err;
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

/* The session token cap is STS_SESSION_TOKEN_MAX itself (the data cases
 * values_session_token_max and _over_max hold today's value). */
static void test_parse_session_token_cap(void)
{
	static const char pre[] =
		"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
		"<Credentials><AccessKeyId>ASIAVALUECHECK0001</AccessKeyId>"
		"<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
		"</SecretAccessKey><SessionToken>";
	static const char post[] =
		"</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"
		"</Credentials></AssumeRoleWithWebIdentityResult>"
		"</AssumeRoleWithWebIdentityResponse>";
	struct sts_credentials c = { 0 };
	struct exchange_error err;

	for (size_t len = STS_SESSION_TOKEN_MAX - 1;
	     len <= STS_SESSION_TOKEN_MAX + 1; len++) {
		struct buf b;
		int rc;

		buf_init(&b, 64 * 1024);
		CHECK(!buf_append_str(&b, pre));
		for (size_t i = 0; i < len; i++)
			CHECK(!buf_append(&b, i % 3 ? "A" : "/", 1));
		CHECK(!buf_append_str(&b, post));
		rc = sts_parse_response(b.data, b.len, 200, &c, &err);
		if (len <= STS_SESSION_TOKEN_MAX) {
			CHECK(rc == 0);
			CHECK(c.session_token && strlen(c.session_token) == len);
		} else {
			CHECK(rc == -1);
			CHECK_STR(err.code, "Malformed");
			CHECK(strstr(err.message, "SessionToken") != NULL);
		}
		sts_credentials_clear(&c);
		buf_free(&b);
	}
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
/* sts_send over a fake transport: one request per call                */

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
	long connect_timeout_ms, timeout_ms;
} fake;

static const char ok_body[] =
	"<AssumeRoleWithWebIdentityResponse "
	"xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	"<AssumeRoleWithWebIdentityResult><Credentials>"
	"<AccessKeyId>ASIAFAKE00000001</AccessKeyId>"
	"<SecretAccessKey>fakeSecret/0000+0000=</SecretAccessKey>"
	"<SessionToken>FwoGZXIvYXdzFakeSessionToken==</SessionToken>"
	"<Expiration>2030-01-01T00:00:00Z</Expiration>"
	"</Credentials><AssumedRoleUser>"
	"<Arn>arn:aws:sts::123456789012:assumed-role/demo/credfs-demo</Arn>"
	"<AssumedRoleId>AROAFAKE:credfs-demo</AssumedRoleId>"
	"</AssumedRoleUser></AssumeRoleWithWebIdentityResult>"
	"</AssumeRoleWithWebIdentityResponse>";
static const char ar_ok_body[] =
	"<AssumeRoleResponse><AssumeRoleResult><Credentials>"
	"<AccessKeyId>ASIACHAINED00001</AccessKeyId>"
	"<SecretAccessKey>chainedSecret0000000</SecretAccessKey>"
	"<SessionToken>chainedSessionToken</SessionToken>"
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
static const char throttling_body[] =
	"<ErrorResponse><Error><Type>Sender</Type>"
	"<Code>Throttling</Code><Message>Rate exceeded</Message>"
	"</Error></ErrorResponse>";
static const char access_denied_body[] =
	"<ErrorResponse><Error><Type>Sender</Type>"
	"<Code>AccessDenied</Code><Message>Not authorized</Message>"
	"</Error></ErrorResponse>";
/* Well-formed, but a session token a shell would run. */
static const char shell_token_body[] =
	"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
	"<Credentials><AccessKeyId>ASIAFAKE00000001</AccessKeyId>"
	"<SecretAccessKey>fakeSecret/0000+0000=</SecretAccessKey>"
	"<SessionToken>x\"; $(touch /tmp/pwned) #</SessionToken>"
	"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
	"</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";

static int fake_transport(const struct http_request *req,
			  struct http_response *resp, char *errbuf,
			  size_t errlen)
{
	const struct fake_reply *r;

	snprintf(fake.url, sizeof(fake.url), "%s", req->url);
	snprintf(fake.body, sizeof(fake.body), "%.*s", (int)req->body_len,
		 req->body);
	fake.connect_timeout_ms = req->connect_timeout_ms;
	fake.timeout_ms = req->timeout_ms;
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
	buf_init(&resp->body, HTTP_BODY_MAX);
	if (buf_append_str(&resp->body, r->body))
		return HTTP_ERR_TOO_BIG;
	return HTTP_OK;
}

static void fake_setup(const struct fake_reply *replies, size_t n)
{
	memset(&fake, 0, sizeof(fake));
	memcpy(fake.replies, replies, n * sizeof(*replies));
	fake.n_replies = n;
	http_set_transport(fake_transport);
}

static void fake_teardown(void)
{
	http_set_transport(NULL);
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

/* One call, one request, whatever the answer: a success. */
static void test_send_success(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 200, ok_body },
		{ HTTP_OK, 200, ok_body },
	};
	struct sts_credentials c;
	struct exchange_error err;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&web_req, &c, &err) == 0);
	CHECK(fake.calls == 1);
	CHECK_STR(c.access_key_id, "ASIAFAKE00000001");
	CHECK(c.expiration == 1893456000);
	CHECK_STR(c.assumed_role_arn,
		  "arn:aws:sts::123456789012:assumed-role/demo/credfs-demo");
	CHECK_STR(c.assumed_role_id, "AROAFAKE:credfs-demo");
	/* The timeouts are the request's. */
	CHECK(fake.connect_timeout_ms == 1000);
	CHECK(fake.timeout_ms == 5000);
	sts_credentials_clear(&c);
	fake_teardown();
}

/* A retryable answer is returned after one request, flagged retryable:
 * the engine decides when to try again. */
static void test_send_503_is_one_attempt(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 503, unavailable_body },
		{ HTTP_OK, 200, ok_body },	/* never reached */
	};
	static const struct fake_reply html[] = {
		{ HTTP_OK, 503, "<html>busy</html>" },
		{ HTTP_OK, 200, ok_body },
	};
	struct sts_credentials c;
	struct exchange_error err;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&web_req, &c, &err) == -1);
	CHECK(fake.calls == 1);
	CHECK_STR(err.code, "ServiceUnavailable");
	CHECK_STR(err.message, "try later");
	CHECK(err.http_status == 503);
	CHECK(err.retryable == 1);
	CHECK(exchange_is_throttling(err.http_status, err.code));
	CHECK(c.access_key_id == NULL);

	fake_setup(html, ARRAY_SIZE(html));
	CHECK(sts_send(&web_req, &c, &err) == -1);
	CHECK(fake.calls == 1);
	CHECK_STR(err.code, "HTTP503");
	CHECK(err.retryable == 1);
	fake_teardown();
}

static void test_send_throttling_flagged(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 400, throttling_body },
	};
	struct sts_credentials c;
	struct exchange_error err;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&web_req, &c, &err) == -1);
	CHECK(fake.calls == 1);
	CHECK_STR(err.code, "Throttling");
	CHECK(err.http_status == 400);
	CHECK(err.retryable == 1);
	CHECK(exchange_is_throttling(err.http_status, err.code));
	fake_teardown();
}

static void test_send_final_errors(void)
{
	static const struct fake_reply invalid[] = {
		{ HTTP_OK, 400, invalid_token_body },
	};
	static const struct fake_reply denied[] = {
		{ HTTP_OK, 403, access_denied_body },
	};
	struct sts_credentials c;
	struct exchange_error err;

	fake_setup(invalid, ARRAY_SIZE(invalid));
	CHECK(sts_send(&web_req, &c, &err) == -1);
	CHECK(fake.calls == 1);
	CHECK_STR(err.code, "InvalidIdentityToken");
	CHECK_STR(err.message, "bad token");
	CHECK(err.retryable == 0);
	CHECK(!exchange_is_throttling(err.http_status, err.code));
	/* The token is not in the error. */
	CHECK(!strstr(err.message, "eyJ"));

	fake_setup(denied, ARRAY_SIZE(denied));
	CHECK(sts_send(&web_req, &c, &err) == -1);
	CHECK(fake.calls == 1);
	CHECK_STR(err.code, "AccessDenied");
	CHECK(err.http_status == 403);
	CHECK(err.retryable == 0);
	fake_teardown();
}

/* A session token a shell or a JSON reader would misread is refused as
 * Malformed, not retried, and not quoted. */
static void test_send_refuses_bad_values(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 200, shell_token_body },
	};
	struct sts_credentials c;
	struct exchange_error err;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&web_req, &c, &err) == -1);
	CHECK(fake.calls == 1);
	CHECK_STR(err.code, "Malformed");
	CHECK(err.retryable == 0);
	CHECK(err.http_status == 200);
	CHECK(strstr(err.message, "SessionToken") != NULL);
	CHECK(!strstr(err.message, "pwned"));
	CHECK(c.access_key_id == NULL && c.session_token == NULL);
	fake_teardown();
}

/* What the transport says becomes the error code: Transport (retryable),
 * TLS (final), a body over the cap (Malformed, final), anything else
 * Internal. */
static void test_send_transport_mapping(void)
{
	static const struct {
		int result;
		const char *code;
		int retryable;
	} t[] = {
		{ HTTP_ERR_TRANSPORT, "Transport", 1 },
		{ HTTP_ERR_TLS, "TLS", 0 },
		{ HTTP_ERR_TOO_BIG, "Malformed", 0 },
		{ HTTP_ERR_INTERNAL, "Internal", 0 },
	};
	struct sts_credentials c;
	struct exchange_error err;

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct fake_reply r[] = {
			{ t[i].result, 0, NULL },
			{ HTTP_OK, 200, ok_body },
		};

		fake_setup(r, ARRAY_SIZE(r));
		CHECK(sts_send(&web_req, &c, &err) == -1);
		CHECK(fake.calls == 1);
		CHECK_STR(err.code, t[i].code);
		CHECK(err.retryable == t[i].retryable);
		CHECK(err.http_status == 0);
		CHECK(err.message[0] != '\0');
		CHECK(c.access_key_id == NULL);
	}
	/* The transport's own words are kept where they help. */
	{
		static const struct fake_reply r[] = {
			{ HTTP_ERR_TRANSPORT, 0, NULL },
		};

		fake_setup(r, ARRAY_SIZE(r));
		CHECK(sts_send(&web_req, &c, &err) == -1);
		CHECK(strstr(err.message, "refused") != NULL);
	}
	{
		static const struct fake_reply r[] = {
			{ HTTP_ERR_TOO_BIG, 0, NULL },
		};

		fake_setup(r, ARRAY_SIZE(r));
		CHECK(sts_send(&web_req, &c, &err) == -1);
		CHECK_STR(err.message, "response larger than 256 KiB");
	}
	fake_teardown();
}

/* What goes on the wire for web identity: unsigned, form-encoded, to
 * ENDPOINT/. */
static void test_send_request_shape(void)
{
	static const struct fake_reply r[] = { { HTTP_OK, 200, ok_body } };
	struct sts_request req = web_req;
	struct sts_credentials c;
	struct exchange_error err;
	const char *ct;

	req.endpoint = "https://sts.eu-west-1.amazonaws.com";
	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&req, &c, &err) == 0);
	sts_credentials_clear(&c);
	CHECK_STR(fake.url, "https://sts.eu-west-1.amazonaws.com/");
	ct = fake_header("Content-Type");
	CHECK_STR(ct, "application/x-www-form-urlencoded; charset=utf-8");
	CHECK(fake_header("User-Agent") != NULL);
	CHECK(fake_header("Authorization") == NULL);
	CHECK(fake_header("x-amz-date") == NULL);
	CHECK(fake_header("Accept") == NULL ||
	      !strstr(fake_header("Accept"), "json"));
	CHECK(!strncmp(fake.body, "Action=AssumeRoleWithWebIdentity&", 33));
	CHECK(strstr(fake.body, "&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9."
				"eyJzdWIiOiJ4In0.c2ln") != NULL);
	CHECK(strstr(fake.body, "&DurationSeconds=3600") != NULL);
	CHECK(!strstr(fake.body, "ProviderId"));

	/* An endpoint that already ends in '/' keeps a single one. */
	fake_setup(r, ARRAY_SIZE(r));
	req.endpoint = "http://127.0.0.1:5000/";
	CHECK(sts_send(&req, &c, &err) == 0);
	sts_credentials_clear(&c);
	CHECK_STR(fake.url, "http://127.0.0.1:5000/");

	/* No endpoint: nothing is sent. */
	fake_setup(r, ARRAY_SIZE(r));
	req.endpoint = NULL;
	CHECK(sts_send(&req, &c, &err) == -1);
	CHECK(fake.calls == 0);
	CHECK_STR(err.code, "Internal");
	CHECK(err.retryable == 0);
	fake_teardown();
}

static int64_t fixed_wall(void)
{
	return 1440938160;	/* 2015-08-30T12:36:00Z */
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
	hex(md, 32, out);
}

static void hmac(const void *key, size_t klen, const char *msg,
		 unsigned char out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	     strlen(msg), out, &len);
}

/*
 * The signature of the last request, computed here from what went on the
 * wire (headers, body) by the rules of AWS's documentation rather than by
 * backend/sigv4.c: canonical request, string to sign, the derived key.
 * 0 if the Authorization header carries exactly that signature.
 */
static int verify_sigv4(const char *secret, const char *region)
{
	const char *auth = fake_header("authorization");
	const char *date = fake_header("x-amz-date");
	char signed_list[512], creq[8192], sts_text[1024], scope[128];
	char body_hash[65], creq_hash[65], want[65], key0[128];
	const char *sh, *sig;
	unsigned char k[32];
	size_t n = 0;

	if (!auth || !date || strlen(date) != 16)
		return -1;
	sh = strstr(auth, "SignedHeaders=");
	sig = strstr(auth, "Signature=");
	if (!sh || !sig)
		return -1;
	sh += strlen("SignedHeaders=");
	snprintf(signed_list, sizeof(signed_list), "%.*s",
		 (int)strcspn(sh, ","), sh);
	sha256_hex(fake.body, body_hash);
	n += (size_t)snprintf(creq + n, sizeof(creq) - n, "POST\n/\n\n");
	for (const char *p = signed_list; *p;) {
		size_t len = strcspn(p, ";");
		char name[64];
		const char *v;

		snprintf(name, sizeof(name), "%.*s", (int)len, p);
		v = fake_header(name);
		if (!v)
			return -1;
		n += (size_t)snprintf(creq + n, sizeof(creq) - n, "%s:%s\n",
				      name, v);
		p += len;
		if (*p == ';')
			p++;
	}
	snprintf(creq + n, sizeof(creq) - n, "\n%s\n%s", signed_list,
		 body_hash);
	sha256_hex(creq, creq_hash);
	snprintf(scope, sizeof(scope), "%.8s/%s/sts/aws4_request", date,
		 region);
	snprintf(sts_text, sizeof(sts_text), "AWS4-HMAC-SHA256\n%s\n%s\n%s",
		 date, scope, creq_hash);
	snprintf(key0, sizeof(key0), "AWS4%s", secret);
	{
		char day[9];

		snprintf(day, sizeof(day), "%.8s", date);
		hmac(key0, strlen(key0), day, k);
	}
	hmac(k, 32, region, k);
	hmac(k, 32, "sts", k);
	hmac(k, 32, "aws4_request", k);
	{
		unsigned char s[32];

		hmac(k, 32, sts_text, s);
		hex(s, 32, want);
	}
	sig += strlen("Signature=");
	return strncmp(sig, want, 64) == 0 && strlen(sig) == 64 ? 0 : -1;
}

/* AssumeRole is signed: host (with a non-default port), x-amz-date, the
 * session token of the source credentials, Authorization, and the
 * signature is the one SigV4 gives for that request. */
static void test_send_assume_role_signed(void)
{
	static const struct fake_reply r[] = {
		{ HTTP_OK, 200, ar_ok_body },
		{ HTTP_OK, 200, ar_ok_body },
	};
	static const char secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	struct sts_credentials src = {
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = (char *)secret,
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
	struct exchange_error err;
	const char *auth;

	clock_set_source(fixed_wall, NULL);
	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&req, &c, &err) == 0);
	CHECK(fake.calls == 1);
	CHECK_STR(c.access_key_id, "ASIACHAINED00001");
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
	CHECK(verify_sigv4(secret, "us-west-2") == 0);
	/* The check itself tells a wrong key or scope apart. */
	CHECK(verify_sigv4("wrong", "us-west-2") == -1);
	CHECK(verify_sigv4(secret, "us-west-1") == -1);
	CHECK(!strncmp(fake.body, "Action=AssumeRole&", 18));
	CHECK(!strstr(fake.body, "WebIdentityToken"));
	/* The secret itself never goes on the wire. */
	CHECK(!strstr(fake.body, secret));
	for (size_t i = 0; i < fake.n_headers; i++)
		CHECK(!strstr(fake.headers[i][1], secret));

	/* The default port is not part of the signed host; without a
	 * session token there is no x-amz-security-token; a missing region
	 * signs as us-east-1. */
	req.endpoint = "https://sts.us-west-2.amazonaws.com:443";
	req.region = NULL;
	src.session_token = NULL;
	CHECK(sts_send(&req, &c, &err) == 0);
	CHECK(fake.calls == 2);
	sts_credentials_clear(&c);
	CHECK_STR(fake_header("host"), "sts.us-west-2.amazonaws.com");
	CHECK(fake_header("x-amz-security-token") == NULL);
	auth = fake_header("authorization");
	CHECK(auth && strstr(auth, "/20150830/us-east-1/sts/aws4_request"));
	CHECK(verify_sigv4(secret, "us-east-1") == 0);
	fake_teardown();
	clock_set_source(NULL, NULL);
}

static void test_send_assume_role_needs_source(void)
{
	static const struct fake_reply r[] = { { HTTP_OK, 200, ar_ok_body } };
	struct sts_request req = {
		.action = STS_ASSUME_ROLE,
		.endpoint = "https://sts.us-west-2.amazonaws.com",
		.region = "us-west-2",
		.role_arn = "arn:aws:iam::123456789012:role/next",
		.session_name = "s",
	};
	struct sts_credentials src = { .access_key_id = "AKIDEXAMPLE" };
	struct sts_credentials c;
	struct exchange_error err;

	fake_setup(r, ARRAY_SIZE(r));
	CHECK(sts_send(&req, &c, &err) == -1);
	CHECK(fake.calls == 0);
	CHECK(err.retryable == 0);
	CHECK_STR(err.code, "Internal");

	/* A source without its secret cannot sign either. */
	req.source = &src;
	CHECK(sts_send(&req, &c, &err) == -1);
	CHECK(fake.calls == 0);

	/* Nor can an endpoint that is not a URL. */
	src.secret_access_key = "secret";
	req.endpoint = "not a url";
	CHECK(sts_send(&req, &c, &err) == -1);
	CHECK(fake.calls == 0);
	CHECK_STR(err.code, "Internal");
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
	CHECK_CASE(test_parse_session_token_cap),
	CHECK_CASE(test_body_web_identity),
	CHECK_CASE(test_body_assume_role_extras),
	CHECK_CASE(test_body_web_identity_extras),
	CHECK_CASE(test_is_retryable),
	CHECK_CASE(test_backoff),
	CHECK_CASE(test_send_success),
	CHECK_CASE(test_send_503_is_one_attempt),
	CHECK_CASE(test_send_throttling_flagged),
	CHECK_CASE(test_send_final_errors),
	CHECK_CASE(test_send_refuses_bad_values),
	CHECK_CASE(test_send_transport_mapping),
	CHECK_CASE(test_send_request_shape),
	CHECK_CASE(test_send_assume_role_signed),
	CHECK_CASE(test_send_assume_role_needs_source),
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
