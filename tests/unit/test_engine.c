/*
 * The engine against a fake STS transport and a fake clock: the refresh
 * rule, one exchange for many readers, background renewal, never serving
 * expired credentials, and bounded waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "sts.h"

#define LIFETIME 3600

static _Atomic int64_t fake_wall_s = 1800000000;
static _Atomic int64_t fake_mono_ms = 1000000;
static atomic_int transport_calls;
static atomic_int transport_fail;	/* answer AccessDenied */
static atomic_int transport_delay_ms;

static int64_t fake_wall(void) { return fake_wall_s; }
static int64_t fake_mono(void) { return fake_mono_ms; }

static void advance(int64_t seconds)
{
	fake_wall_s += seconds;
	fake_mono_ms += seconds * 1000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int fake_sts(const struct http_request *req, struct http_response *resp,
		    char *errbuf, size_t errlen)
{
	int n = atomic_fetch_add(&transport_calls, 1) + 1;
	char exp[21], body[2048];

	if (transport_delay_ms)
		sleep_ms(transport_delay_ms);
	buf_init(&resp->body, HTTP_BODY_MAX);
	if (!strstr(req->body, "Action=AssumeRoleWithWebIdentity") ||
	    !strstr(req->body, "WebIdentityToken=header.claims.sig")) {
		resp->status = 400;
		return buf_append_str(&resp->body, "<ErrorResponse><Error><Code>ValidationError</Code>"
				      "<Message>bad request</Message></Error></ErrorResponse>") ? -1 : HTTP_OK;
	}
	if (transport_fail) {
		resp->status = 403;
		return buf_append_str(&resp->body, "<ErrorResponse><Error><Type>Sender</Type>"
				      "<Code>AccessDenied</Code><Message>Not authorized</Message>"
				      "</Error></ErrorResponse>") ? -1 : HTTP_OK;
	}
	clock_format_rfc3339(fake_wall_s + LIFETIME, exp);
	snprintf(body, sizeof(body),
		 "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		 "<AssumeRoleWithWebIdentityResult><Credentials>"
		 "<AccessKeyId>ASIAFAKE%04d</AccessKeyId><SecretAccessKey>secret%d</SecretAccessKey>"
		 "<SessionToken>session%d</SessionToken><Expiration>%s</Expiration>"
		 "</Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/app/s</Arn>"
		 "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>"
		 "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
		 n, n, n, exp);
	resp->status = 200;
	return buf_append_str(&resp->body, body) ? -1 : HTTP_OK;
}

static void no_sleep(long ms)
{
	(void)ms;
}

struct fixture {
	char dir[64];
	char token[128];
	struct cfg *cfg;
	struct engine *e;
};

static int setup(struct fixture *f, int wait_timeout)
{
	struct cfg_error err;
	char text[1024];
	FILE *fp;

	atomic_store(&transport_calls, 0);
	atomic_store(&transport_fail, 0);
	atomic_store(&transport_delay_ms, 0);
	http_set_transport(fake_sts);
	sts_set_sleep(no_sleep);
	clock_set_source(fake_wall, fake_mono);
	snprintf(f->dir, sizeof(f->dir), "/tmp/credfs-engine-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->token, sizeof(f->token), "%s/token", f->dir);
	fp = fopen(f->token, "w");
	if (!fp)
		return -1;
	fputs("header.claims.sig", fp);
	fclose(fp);
	snprintf(text, sizeof(text),
		 "[credfs]\nregion = us-east-1\nsts_endpoint = http://127.0.0.1:9\n"
		 "wait_timeout = %d\n\n[role app]\n"
		 "role_arn = arn:aws:iam::123456789012:role/app\n"
		 "web_identity_token_file = %s\n",
		 wait_timeout, f->token);
	if (cfg_load_string(text, "engine.conf", &f->cfg, &err)) {
		fprintf(stderr, "    config: %d: %s\n", err.line, err.text);
		return -1;
	}
	f->e = engine_new(f->cfg, NULL);
	return f->e ? 0 : -1;
}

static void teardown(struct fixture *f)
{
	engine_free(f->e);
	cfg_free(f->cfg);
	unlink(f->token);
	rmdir(f->dir);
	clock_set_source(NULL, NULL);
	http_set_transport(NULL);
}

static void refresh_point_rule(void)
{
	CHECK(engine_refresh_point(0, 3600, 0.8, 900) == 2700);
	CHECK(engine_refresh_point(0, 3600, 0.5, 900) == 1800);
	CHECK(engine_refresh_point(0, 43200, 0.8, 900) == 34560);
	CHECK(engine_refresh_point(1000, 1600, 0.8, 900) == 1000);
	CHECK(engine_refresh_point(1000, 1000, 0.8, 900) == 1000);
	CHECK(engine_refresh_point(1000, 900, 0.8, 900) == 1000);
	CHECK(engine_refresh_point(0, 3600, 0.8, 0) == 2880);
}

static struct engine *shared_engine;
static struct creds *seen[16];

static void *reader(void *arg)
{
	size_t i = (size_t)arg;

	if (engine_get_credentials(shared_engine, 0, &seen[i]))
		seen[i] = NULL;
	return NULL;
}

static void many_readers_one_exchange(void)
{
	struct fixture f;
	pthread_t t[16];

	if (setup(&f, 5)) {
		CHECK(!"setup");
		return;
	}
	atomic_store(&transport_delay_ms, 200);
	shared_engine = f.e;
	for (size_t i = 0; i < 16; i++)
		pthread_create(&t[i], NULL, reader, (void *)i);
	for (size_t i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	CHECK(transport_calls == 1);
	CHECK(engine_sts_calls(f.e, 0) == 1);
	for (size_t i = 0; i < 16; i++) {
		CHECK(seen[i] != NULL);
		CHECK(seen[i] == seen[0]);
		creds_unref(seen[i]);
	}
	teardown(&f);
}

static void renews_in_background_after_refresh_point(void)
{
	struct fixture f;
	struct creds *c;

	if (setup(&f, 5)) {
		CHECK(!"setup");
		return;
	}
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	CHECK_STR(c->sts.access_key_id, "ASIAFAKE0001");
	creds_unref(c);

	/* Before the refresh point: served from cache, no call. */
	advance(2699);
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	CHECK_STR(c->sts.access_key_id, "ASIAFAKE0001");
	creds_unref(c);
	CHECK(transport_calls == 1);

	/* Past it (3600 - 900 = 2700): the old credentials are served at
	 * once and a renewal runs in the background. */
	atomic_store(&transport_delay_ms, 300);
	advance(2);
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	CHECK_STR(c->sts.access_key_id, "ASIAFAKE0001");
	creds_unref(c);
	for (int i = 0; i < 100 && engine_sts_calls(f.e, 0) < 2; i++)
		sleep_ms(20);
	CHECK(engine_sts_calls(f.e, 0) == 2);
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	CHECK_STR(c->sts.access_key_id, "ASIAFAKE0002");
	creds_unref(c);
	teardown(&f);
}

static void never_serves_expired_credentials(void)
{
	struct fixture f;
	struct creds *c;
	char *status;

	if (setup(&f, 2)) {
		CHECK(!"setup");
		return;
	}
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	creds_unref(c);
	atomic_store(&transport_fail, 1);

	/* Renewal fails, the last good credentials are still served. */
	advance(3000);
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	CHECK_STR(c->sts.access_key_id, "ASIAFAKE0001");
	creds_unref(c);
	for (int i = 0; i < 100 && engine_sts_calls(f.e, 0) < 2; i++)
		sleep_ms(20);
	sleep_ms(50);
	status = engine_status(f.e, 0);
	CHECK(status && strstr(status, "\"state\": \"stale\""));
	CHECK(status && strstr(status, "AccessDenied"));
	free(status);

	/* Past expiry: EIO, and status says why. */
	advance(700);
	CHECK(engine_get_credentials(f.e, 0, &c) == -EIO);
	status = engine_status(f.e, 0);
	CHECK(status && strstr(status, "\"code\": \"AccessDenied\""));
	CHECK(status && strstr(status, "Not authorized"));
	CHECK(status && !strstr(status, "secret1") && !strstr(status, "session1"));
	free(status);
	teardown(&f);
}

static void failure_with_nothing_cached_is_eio(void)
{
	struct fixture f;
	struct creds *c;
	char *status;

	if (setup(&f, 2)) {
		CHECK(!"setup");
		return;
	}
	atomic_store(&transport_fail, 1);
	CHECK(engine_get_credentials(f.e, 0, &c) == -EIO);
	CHECK(transport_calls == 1);	/* AccessDenied is not retried */
	/* A second read within the hold-off gets EIO without a new call. */
	CHECK(engine_get_credentials(f.e, 0, &c) == -EIO);
	CHECK(transport_calls == 1);
	status = engine_status(f.e, 0);
	CHECK(status && strstr(status, "\"state\": \"error\""));
	free(status);
	teardown(&f);
}

static void waits_are_bounded(void)
{
	struct fixture f;
	struct creds *c;
	struct timespec a, b;
	double took;

	if (setup(&f, 1)) {
		CHECK(!"setup");
		return;
	}
	atomic_store(&transport_delay_ms, 2500);
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK(engine_get_credentials(f.e, 0, &c) == -EIO);
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	CHECK(took >= 0.9 && took < 1.8);
	/* The renewal goes on and its result is kept for the next reader. */
	sleep_ms(2000);
	CHECK(engine_get_credentials(f.e, 0, &c) == 0);
	creds_unref(c);
	CHECK(transport_calls == 1);
	teardown(&f);
}

static void token_file_is_read_afresh(void)
{
	struct fixture f;
	char *tok;
	FILE *fp;

	if (setup(&f, 2)) {
		CHECK(!"setup");
		return;
	}
	CHECK(engine_get_token(f.e, 0, &tok) == 0);
	CHECK_STR(tok, "header.claims.sig");
	free(tok);
	fp = fopen(f.token, "w");
	fputs("other.token.value", fp);
	fclose(fp);
	CHECK(engine_get_token(f.e, 0, &tok) == 0);
	CHECK_STR(tok, "other.token.value");
	free(tok);
	fp = fopen(f.token, "w");
	fclose(fp);
	CHECK(engine_get_token(f.e, 0, &tok) == -EIO);
	tok = engine_status(f.e, 0);
	CHECK(tok && strstr(tok, "is empty"));
	free(tok);
	teardown(&f);
}

static const struct check_case cases[] = {
	CHECK_CASE(refresh_point_rule),
	CHECK_CASE(many_readers_one_exchange),
	CHECK_CASE(renews_in_background_after_refresh_point),
	CHECK_CASE(never_serves_expired_credentials),
	CHECK_CASE(failure_with_nothing_cached_is_eio),
	CHECK_CASE(waits_are_bounded),
	CHECK_CASE(token_file_is_read_afresh),
};

int main(void)
{
	return CHECK_RUN(cases);
}
