/*
 * What the unit tests of the Google Cloud and Azure kinds share: the
 * answer cases of tests/data/<parser>/<case>/{body,status,expected}
 * (README.md there) run through a parser, and a scripted fake transport
 * (http_set_transport) that records what each request carried.
 */
#ifndef CREDFS_TEST_CLOUD_CASES_H
#define CREDFS_TEST_CLOUD_CASES_H

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "check.h"
#include "http.h"
#include "oauth.h"

#define CASES_NOW 1800000000LL	/* the wall time every case is parsed at */

typedef int (*cloud_parser_fn)(const char *body, size_t len, int http_status,
			       int64_t now, struct oauth_token *out,
			       struct exchange_error *err);

/* One case: expected is "ok EXPIRES TOKEN" (the token is compared, never
 * printed) or "error CODE RETRYABLE THROTTLED [TEXT]", TEXT being words
 * the message must hold, so a case proves it failed for its own reason. */
static void run_cloud_case(const char *dir, const char *name,
			   cloud_parser_fn parse)
{
	char path[4096], code[64];
	char *body, *status_s, *expected, *p;
	size_t body_len, n;
	struct oauth_token tok;
	struct exchange_error err;
	long long expires;
	int retryable, throttled, used = 0, rc, before = check_failures_in_test;

	snprintf(path, sizeof(path), "%s/%s/body", dir, name);
	body = check_read_file(path, &body_len);
	snprintf(path, sizeof(path), "%s/%s/status", dir, name);
	status_s = check_read_file(path, &n);
	snprintf(path, sizeof(path), "%s/%s/expected", dir, name);
	expected = check_read_file(path, &n);
	CHECK(body && status_s && expected);
	if (!body || !status_s || !expected)
		goto out;
	expected[strcspn(expected, "\n")] = '\0';
	rc = parse(body, body_len, atoi(status_s), CASES_NOW, &tok, &err);
	if (!strncmp(expected, "ok ", 3)) {
		expires = strtoll(expected + 3, &p, 10);
		CHECK(rc == 0);
		if (rc) {
			fprintf(stderr, "    error %s: %s\n", err.code, err.message);
		} else {
			CHECK(tok.expires == expires);
			CHECK(*p == ' ' && tok.access_token &&
			      !strcmp(tok.access_token, p + 1));
		}
	} else {
		CHECK(sscanf(expected, "error %63s %d %d %n", code, &retryable,
			     &throttled, &used) == 3);
		CHECK(rc == -1);
		CHECK_STR(err.code, code);
		CHECK(err.retryable == retryable);
		CHECK(err.throttled == throttled);
		CHECK(err.http_status == atoi(status_s));
		CHECK(err.message[0] != '\0');
		if (used > 0 && expected[used] &&
		    !strstr(err.message, expected + used)) {
			fprintf(stderr, "    message \"%s\" lacks \"%s\"\n",
				err.message, expected + used);
			CHECK(!"message names what was refused");
		}
		CHECK(tok.access_token == NULL);
	}
	if (check_failures_in_test != before)
		fprintf(stderr, "    in case %s\n", name);
	oauth_token_clear(&tok);
out:
	free(body);
	free(status_s);
	free(expected);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every folder of dir, in name order; at least min of them. */
static void run_cloud_cases(const char *dir, cloud_parser_fn parse, size_t min)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *names[512];
	size_t n = 0;

	CHECK(d != NULL);
	if (!d)
		return;
	while ((de = readdir(d)) && n < ARRAY_SIZE(names)) {
		struct stat st;
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_name[0] == '.' || stat(path, &st) || !S_ISDIR(st.st_mode))
			continue;
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	CHECK(n >= min);
	for (size_t i = 0; i < n; i++) {
		run_cloud_case(dir, names[i], parse);
		free(names[i]);
	}
}

/* ---- the fake transport ---- */

enum fake_kind {
	FAKE_ANSWER,		/* status and body */
	FAKE_TRANSPORT,		/* no answer */
	FAKE_TLS,
	FAKE_TOO_BIG,
};

struct fake_answer {
	enum fake_kind kind;
	int status;
	const char *body;
};

struct fake_request {
	char url[1024];
	char headers[8][256];	/* "Name: value" */
	size_t n_headers;
	char *body;		/* malloc'd */
};

#define FAKE_MAX 16

static struct {
	pthread_mutex_t lock;
	struct fake_answer script[FAKE_MAX];
	size_t n_script, next;
	struct fake_request log[FAKE_MAX];
	size_t n_log;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fake_reset(void)
{
	pthread_mutex_lock(&fake.lock);
	for (size_t i = 0; i < fake.n_log; i++)
		free(fake.log[i].body);
	memset(fake.script, 0, sizeof(fake.script));
	memset(fake.log, 0, sizeof(fake.log));
	fake.n_script = fake.next = fake.n_log = 0;
	pthread_mutex_unlock(&fake.lock);
}

/* The answers of the next requests, in order (the last one repeats). */
static void fake_script(const struct fake_answer *a, size_t n)
{
	fake_reset();
	pthread_mutex_lock(&fake.lock);
	memcpy(fake.script, a, n * sizeof(*a));
	fake.n_script = n;
	pthread_mutex_unlock(&fake.lock);
}

static size_t fake_requests(void)
{
	size_t n;

	pthread_mutex_lock(&fake.lock);
	n = fake.n_log;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

/* The value of header name in request i, or NULL. */
static const char *fake_header(size_t i, const char *name)
{
	size_t n = strlen(name);

	for (size_t h = 0; i < fake.n_log && h < fake.log[i].n_headers; h++)
		if (!strncasecmp(fake.log[i].headers[h], name, n) &&
		    fake.log[i].headers[h][n] == ':')
			return fake.log[i].headers[h] + n + 2;
	return NULL;
}

static int fake_transport(const struct http_request *req,
			  struct http_response *resp, char *errbuf,
			  size_t errlen)
{
	struct fake_answer a = { FAKE_TRANSPORT, 0, NULL };
	int rc = HTTP_OK;

	pthread_mutex_lock(&fake.lock);
	if (fake.n_log < FAKE_MAX) {
		struct fake_request *r = &fake.log[fake.n_log++];

		snprintf(r->url, sizeof(r->url), "%s", req->url);
		for (size_t i = 0; i < req->n_headers && i < 8; i++)
			snprintf(r->headers[r->n_headers++], sizeof(r->headers[0]),
				 "%s: %s", req->headers[i].name,
				 req->headers[i].value);
		r->body = strndup(req->body, req->body_len);
	}
	if (fake.n_script)
		a = fake.script[fake.next < fake.n_script ? fake.next++ :
							     fake.n_script - 1];
	pthread_mutex_unlock(&fake.lock);
	switch (a.kind) {
	case FAKE_ANSWER:
		resp->status = a.status;
		if (a.body && buf_append_str(&resp->body, a.body))
			rc = HTTP_ERR_INTERNAL;
		break;
	case FAKE_TRANSPORT:
		snprintf(errbuf, errlen, "Connection refused");
		rc = HTTP_ERR_TRANSPORT;
		break;
	case FAKE_TLS:
		snprintf(errbuf, errlen, "SSL certificate problem: unable to get local issuer certificate");
		rc = HTTP_ERR_TLS;
		break;
	case FAKE_TOO_BIG:
		rc = HTTP_ERR_TOO_BIG;
		break;
	}
	if (rc != HTTP_OK)
		http_response_free(resp);
	return rc;
}

#endif
