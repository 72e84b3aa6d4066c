/*
 * The HTTP face's decisions without a socket: the tokens (derivation,
 * rotation, stateless IMDS session tokens, constant-length comparison),
 * the router (every route, every refusal, and that refusals look the same
 * whatever was wrong), the Host rule, and the documents it serves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "endpoint_token.h"
#include "router.h"

#define NOW 1800000000LL	/* 2027-01-15T08:00:00Z */
/* Computed apart from credfs (Python hmac): see test_role_token_is_pinned. */
#define PINNED_APP_TOKEN "Yu7VSV5l5obSg7yNC4ZL0JuqruQWYKYa3BVQpusxp9s"

static struct endpoint_secret *secret(unsigned char fill)
{
	unsigned char key[ENDPOINT_SECRET_LEN];

	memset(key, fill, sizeof(key));
	return endpoint_secret_from(key, sizeof(key));
}

/* ---- tokens --------------------------------------------------------------- */

static void test_role_token_shape_and_stability(void)
{
	struct endpoint_secret *s = secret(7), *other = secret(8);
	char a[ENDPOINT_ROLE_TOKEN_LEN + 1], b[ENDPOINT_ROLE_TOKEN_LEN + 1];

	CHECK(!endpoint_role_token(s, "app", 0, a));
	CHECK(strlen(a) == ENDPOINT_ROLE_TOKEN_LEN);
	CHECK(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	      ENDPOINT_ROLE_TOKEN_LEN);
	CHECK(!endpoint_role_token(s, "app", 0, b));
	CHECK_STR(a, b);		/* the same secret, the same token */
	CHECK(!endpoint_role_token(s, "app", 1, b));
	CHECK(strcmp(a, b));		/* rotation replaces it */
	CHECK(!endpoint_role_token(s, "apps", 0, b));
	CHECK(strcmp(a, b));
	CHECK(!endpoint_role_token(other, "app", 0, b));
	CHECK(strcmp(a, b));		/* another secret, another token */
	endpoint_secret_free(s);
	endpoint_secret_free(other);
}

/* The derivation is fixed: tokens must survive upgrades as well as
 * restarts.  HMAC-SHA256(32 x 0x07, "credfs endpoint v1\0app\0\0\0\0\0"). */
static void test_role_token_is_pinned(void)
{
	struct endpoint_secret *s = secret(7);
	char t[ENDPOINT_ROLE_TOKEN_LEN + 1];

	CHECK(!endpoint_role_token(s, "app", 0, t));
	CHECK_STR(t, PINNED_APP_TOKEN);
	endpoint_secret_free(s);
}

static void test_role_token_matches(void)
{
	struct endpoint_secret *s = secret(1);
	char t[ENDPOINT_ROLE_TOKEN_LEN + 1], longer[64];

	CHECK(!endpoint_role_token(s, "app", 3, t));
	CHECK(endpoint_role_token_matches(s, "app", 3, t, strlen(t)));
	CHECK(!endpoint_role_token_matches(s, "app", 2, t, strlen(t)));
	CHECK(!endpoint_role_token_matches(s, "other", 3, t, strlen(t)));
	CHECK(!endpoint_role_token_matches(s, "app", 3, t, strlen(t) - 1));
	snprintf(longer, sizeof(longer), "%sx", t);
	CHECK(!endpoint_role_token_matches(s, "app", 3, longer, strlen(longer)));
	CHECK(!endpoint_role_token_matches(s, "app", 3, "", 0));
	t[5] ^= 1;
	CHECK(!endpoint_role_token_matches(s, "app", 3, t, strlen(t)));
	CHECK(endpoint_secret_from("short", 5) == NULL);
	endpoint_secret_free(s);
}

static void test_imds_token(void)
{
	struct endpoint_secret *s = secret(2), *other = secret(3);
	char t[ENDPOINT_IMDS_TOKEN_LEN + 1], r[ENDPOINT_ROLE_TOKEN_LEN + 1];

	CHECK(!endpoint_imds_token(s, NOW + 60, t));
	CHECK(strlen(t) == ENDPOINT_IMDS_TOKEN_LEN);
	CHECK(endpoint_imds_token_valid(s, t, strlen(t), NOW));
	CHECK(endpoint_imds_token_valid(s, t, strlen(t), NOW + 59));
	CHECK(!endpoint_imds_token_valid(s, t, strlen(t), NOW + 60));	/* expired */
	CHECK(!endpoint_imds_token_valid(other, t, strlen(t), NOW));
	CHECK(!endpoint_imds_token_valid(s, t, strlen(t) - 1, NOW));
	/* Made before the clock was set back past the longest TTL. */
	CHECK(!endpoint_imds_token_valid(s, t, strlen(t), NOW - ENDPOINT_IMDS_TTL_MAX - 1));
	t[10] = t[10] == 'A' ? 'B' : 'A';
	CHECK(!endpoint_imds_token_valid(s, t, strlen(t), NOW));
	CHECK(!endpoint_imds_token_valid(s, "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
					 ENDPOINT_IMDS_TOKEN_LEN, NOW));
	/* A role token is never a session token. */
	CHECK(!endpoint_role_token(s, "app", 0, r));
	CHECK(!endpoint_imds_token_valid(s, r, strlen(r), NOW));
	endpoint_secret_free(s);
	endpoint_secret_free(other);
}

static void test_credentials_url(void)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;
	struct buf b;

	CHECK(!cfg_load_string("[credfs]\nregion = ap-northeast-1\n"
			       "[endpoint]\nlisten = [::1]:80, 127.0.0.2:81, 169.254.170.2:80, 127.0.0.1:9911\n"
			       "[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\n"
			       "web_identity_token_file = /t\n", "t.conf", &cfg, &err));
	if (!cfg)
		return;
	buf_init(&b, 4096);
	CHECK(!endpoint_credentials_url(&cfg->endpoint, "app", &b));
	CHECK_STR(b.data, "http://169.254.170.2:80/roles/app/credentials");
	buf_free(&b);
	cfg->endpoint.n_listen = 2;	/* none that every SDK accepts: the first */
	CHECK(!endpoint_credentials_url(&cfg->endpoint, "app", &b));
	CHECK_STR(b.data, "http://[::1]:80/roles/app/credentials");
	buf_free(&b);
	cfg->endpoint.n_listen = 4;
	cfg_free(cfg);
}

/* ---- the router ------------------------------------------------------------ */

static int rotation_of(void *arg, const char *name, unsigned *rotation)
{
	(void)arg;
	if (!strcmp(name, "app")) {
		*rotation = 4;
		return 0;
	}
	if (!strcmp(name, "other")) {
		*rotation = 0;
		return 0;
	}
	return -ENOENT;
}

static struct endpoint_secret *the_secret;

static struct ep_context context(const char *imds_role)
{
	return (struct ep_context){
		.secret = the_secret, .listen = "127.0.0.1:9911",
		.imds_role = imds_role, .now = NOW, .role_rotation = rotation_of,
	};
}

static struct ep_request get(const char *path, const char *auth)
{
	return (struct ep_request){
		.method = "GET", .path = path, .host = "127.0.0.1:9911",
		.authorization = auth, .authorization_len = auth ? strlen(auth) : 0,
	};
}

static void test_container_route(void)
{
	struct ep_context c = context(NULL);
	char app[ENDPOINT_ROLE_TOKEN_LEN + 1], old[ENDPOINT_ROLE_TOKEN_LEN + 1],
		other[ENDPOINT_ROLE_TOKEN_LEN + 1];
	struct ep_decision d, ref;
	struct ep_request rq;

	CHECK(!endpoint_role_token(the_secret, "app", 4, app));
	CHECK(!endpoint_role_token(the_secret, "app", 3, old));
	CHECK(!endpoint_role_token(the_secret, "other", 0, other));
	rq = get("/roles/app/credentials", app);
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_CONTAINER && d.status == 200);
	CHECK_STR(d.role, "app");
	rq.method = "HEAD";
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_CONTAINER);

	rq = get("/roles/app/credentials", NULL);
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_ANSWER && d.status == 401);
	CHECK(strstr(d.body, "\"code\"") && strstr(d.body, "\"message\""));

	/* Every wrong token, and an unknown role, get the very same answer. */
	rq = get("/roles/app/credentials", old);
	ep_route(&c, &rq, &ref);
	CHECK(ref.status == 403);
	{
		const char *paths[] = { "/roles/app/credentials", "/roles/app/credentials",
					"/roles/nosuch/credentials", "/roles/other/credentials" };
		const char *auths[] = { other, "", app, app };

		for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
			rq = get(paths[i], auths[i]);
			ep_route(&c, &rq, &d);
			CHECK(d.action == EP_ANSWER && d.status == 403);
			CHECK(d.body == ref.body);
			CHECK(!strstr(d.body, "app") && !strstr(d.body, "nosuch"));
		}
	}
	rq = get("/roles/app/credentials", app);
	rq.method = "POST";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 405 && d.allow && !strcmp(d.allow, "GET"));
	rq.method = "GET";
	rq.has_body = 1;
	ep_route(&c, &rq, &d);
	CHECK(d.status == 400 && d.close);
}

static void test_container_paths(void)
{
	struct ep_context c = context(NULL);
	char app[ENDPOINT_ROLE_TOKEN_LEN + 1];
	const char *bad[] = {
		"/roles/app/credentials/", "/roles/app", "/roles//credentials",
		"/roles/a.b/credentials", "/roles/app/credentials/x", "/roles/app/token",
		"/roles/../app/credentials", "/", "/roles", "/roles/",
		"/roles/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/credentials",
		"/ROLES/app/credentials", "/latest", "/metrics/",
	};
	struct ep_decision d;
	struct ep_request rq;

	CHECK(!endpoint_role_token(the_secret, "app", 4, app));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		rq = get(bad[i], app);
		ep_route(&c, &rq, &d);
		if (d.action != EP_ANSWER || d.status != 404)
			fprintf(stderr, "    %s: %u\n", bad[i], d.status);
		CHECK(d.action == EP_ANSWER && d.status == 404);
	}
	rq = get("/metrics", NULL);
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_METRICS);
	rq.method = "DELETE";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 405);
	rq.method = NULL;
	ep_route(&c, &rq, &d);
	CHECK(d.status == 400);
}

static struct ep_request imds(const char *method, const char *path, const char *token)
{
	struct ep_request rq = get(path, NULL);

	rq.method = method;
	rq.imds_token = token;
	rq.imds_token_len = token ? strlen(token) : 0;
	return rq;
}

static void test_imds_routes(void)
{
	struct ep_context c = context("app");
	struct ep_decision d;
	struct ep_request rq;
	char tok[ENDPOINT_IMDS_TOKEN_LEN + 1];

	rq = imds("PUT", "/latest/api/token", NULL);
	rq.imds_ttl = "21600";
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_IMDS_TOKEN && d.ttl == 21600);
	CHECK(endpoint_imds_token_valid(the_secret, d.token, strlen(d.token), NOW + 21599));
	snprintf(tok, sizeof(tok), "%s", d.token);
	ep_decision_clear(&d);
	CHECK(d.token[0] == '\0');

	rq = imds("GET", "/latest/meta-data/iam/security-credentials/", tok);
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_ANSWER && d.status == 200 && !strcmp(d.body, "app"));
	rq.path = "/latest/meta-data/iam/security-credentials";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 200 && !strcmp(d.body, "app"));
	rq.path = "/latest/meta-data/iam/security-credentials/app";
	ep_route(&c, &rq, &d);
	CHECK(d.action == EP_IMDS_CREDENTIALS && !strcmp(d.role, "app"));
	rq.path = "/latest/meta-data/iam/security-credentials/apps";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 404);
	rq.path = "/latest/meta-data/iam/security-credentials-extended/";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 404);
	rq.path = "/latest/meta-data/iam/info";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 404);

	rq = imds("GET", "/latest/meta-data/iam/security-credentials/", NULL);
	ep_route(&c, &rq, &d);
	CHECK(d.status == 401);
	c.now = NOW + 21600;		/* the token expired */
	rq = imds("GET", "/latest/meta-data/iam/security-credentials/", tok);
	ep_route(&c, &rq, &d);
	CHECK(d.status == 401);
	c.imds_role = NULL;
	ep_route(&c, &rq, &d);
	CHECK(d.status == 404);
}

static void test_imds_refusals(void)
{
	struct ep_context c = context("app");
	const char *ttls[] = { NULL, "", "0", "21601", "-5", "1e3", " 60", "60 ", "999999" };
	struct ep_decision d;
	struct ep_request rq;

	for (size_t i = 0; i < ARRAY_SIZE(ttls); i++) {
		rq = imds("PUT", "/latest/api/token", NULL);
		rq.imds_ttl = ttls[i];
		ep_route(&c, &rq, &d);
		CHECK(d.status == 400);
	}
	rq = imds("PUT", "/latest/api/token", NULL);
	rq.imds_ttl = "1";
	rq.forwarded = 1;
	ep_route(&c, &rq, &d);
	CHECK(d.status == 403);
	rq.forwarded = 0;
	rq.host = "attacker.example:9911";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 403);
	rq.host = NULL;
	ep_route(&c, &rq, &d);
	CHECK(d.status == 403);
	rq.method = "GET";
	rq.host = "127.0.0.1:9911";
	ep_route(&c, &rq, &d);
	CHECK(d.status == 405 && !strcmp(d.allow, "PUT"));
	rq = imds("POST", "/latest/meta-data/iam/security-credentials/", NULL);
	ep_route(&c, &rq, &d);
	CHECK(d.status == 405);
}

static void test_host_rule(void)
{
	CHECK(ep_host_allowed("127.0.0.1:9911", "127.0.0.1:9911"));
	CHECK(ep_host_allowed("169.254.169.254", "127.0.0.1:9911"));
	CHECK(ep_host_allowed("169.254.169.254:80", "127.0.0.1:9911"));
	CHECK(ep_host_allowed("169.254.169.254", "169.254.169.254:80"));
	CHECK(ep_host_allowed("127.0.0.1", "127.0.0.1:80"));
	CHECK(ep_host_allowed("[::1]:9911", "[::1]:9911"));
	CHECK(ep_host_allowed("[FD00:EC2::254]", "[fd00:ec2::254]:80"));
	CHECK(!ep_host_allowed("127.0.0.1", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("127.0.0.1:80", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("localhost:9911", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("127.0.0.1.evil:9911", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("127.0.0.1:9911x", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("127.0.0.1:99110", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("::1:9911", "[::1]:9911"));
	CHECK(!ep_host_allowed("", "127.0.0.1:9911"));
	CHECK(!ep_host_allowed(NULL, "127.0.0.1:9911"));
	CHECK(!ep_host_allowed("[::1]", "[::1]:9911"));
}

static void test_documents(void)
{
	struct creds c = {
		.obtained = NOW, .expires = NOW + 3600,
		.access_key_id = "ASIAEXAMPLEEXAMPLE12",
		.secret_access_key = "c2VjcmV0", .session_token = "dG9rZW4=",
	};
	struct buf b;

	buf_init(&b, 4096);
	CHECK(!ep_container_json(&c, &b));
	CHECK_STR(b.data, "{\"AccessKeyId\":\"ASIAEXAMPLEEXAMPLE12\",\"SecretAccessKey\":\"c2VjcmV0\","
			  "\"Token\":\"dG9rZW4=\",\"Expiration\":\"2027-01-15T09:00:00Z\"}\n");
	buf_free(&b);
	CHECK(!ep_imds_json(&c, &b));
	CHECK(strstr(b.data, "\"Code\" : \"Success\""));
	CHECK(strstr(b.data, "\"Type\" : \"AWS-HMAC\""));
	CHECK(strstr(b.data, "\"LastUpdated\" : \"2027-01-15T08:00:00Z\""));
	CHECK(strstr(b.data, "\"Expiration\" : \"2027-01-15T09:00:00Z\""));
	buf_free(&b);
	c.session_token = NULL;
	CHECK(ep_container_json(&c, &b) == -EIO);
	buf_free(&b);
}

int main(void)
{
	static const struct check_case cases[] = {
		CHECK_CASE(test_role_token_shape_and_stability),
		CHECK_CASE(test_role_token_is_pinned),
		CHECK_CASE(test_role_token_matches),
		CHECK_CASE(test_imds_token),
		CHECK_CASE(test_credentials_url),
		CHECK_CASE(test_container_route),
		CHECK_CASE(test_container_paths),
		CHECK_CASE(test_imds_routes),
		CHECK_CASE(test_imds_refusals),
		CHECK_CASE(test_host_rule),
		CHECK_CASE(test_documents),
	};
	int rc;

	the_secret = secret(9);
	rc = CHECK_RUN(cases);
	endpoint_secret_free(the_secret);
	return rc;
}
