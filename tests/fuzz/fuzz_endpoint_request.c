/*
 * Fuzzes the HTTP face's request path past libmicrohttpd's parser (which
 * is fuzzed upstream): the router, the token checks and the Host rule.
 * The input is a request as libmicrohttpd hands it over, one field per
 * line: method, path, Host, Authorization, X-aws-ec2-metadata-token,
 * X-aws-ec2-metadata-token-ttl-seconds, then flags ('f' X-Forwarded-For,
 * 'b' a body, 'i' IMDS configured, and a digit picking which field is
 * absent).  Any input either routes or is refused with one of the fixed
 * answers, and the promises hold: credentials only with the role's own
 * token or a live session token under an allowed Host, never a body on a
 * refusal that names what was asked for.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint_token.h"
#include "router.h"

#define NOW 1800000000LL
#define FIELDS 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct endpoint_secret *the_secret;

static int rotation_of(void *arg, const char *name, unsigned *rotation)
{
	(void)arg;
	if (!strcmp(name, "app") || !strcmp(name, "a-b_9")) {
		*rotation = 1;
		return 0;
	}
	return -ENOENT;
}

/* Splits text (NUL-terminated, modified) into at most FIELDS lines. */
static size_t split(char *text, char *field[FIELDS])
{
	size_t n = 0;

	while (n < FIELDS) {
		char *nl = strchr(text, '\n');

		field[n++] = text;
		if (!nl)
			break;
		*nl = '\0';
		text = nl + 1;
	}
	return n;
}

static void check(const struct ep_context *c, const struct ep_request *rq,
		  const struct ep_decision *d)
{
	static const unsigned known[] = { 200, 400, 401, 403, 404, 405, 500, 503 };
	int ok = 0;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= d->status == known[i];
	if (!ok || !d->content_type)
		abort();
	if (d->action == EP_ANSWER && (!d->body || strlen(d->body) > 200))
		abort();
	if (d->action == EP_ANSWER && d->status != 200 && rq->path &&
	    strlen(rq->path) > 8 && strstr(d->body, rq->path))
		abort();
	if (d->action == EP_CONTAINER &&
	    (!rq->authorization ||
	     !endpoint_role_token_matches(the_secret, d->role, 1, rq->authorization,
					  rq->authorization_len) ||
	     rotation_of(NULL, d->role, &(unsigned){ 0 })))
		abort();
	if (d->action == EP_IMDS_CREDENTIALS &&
	    (!c->imds_role || strcmp(d->role, c->imds_role) || !rq->imds_token ||
	     !ep_host_allowed(rq->host, c->listen) ||
	     !endpoint_imds_token_valid(the_secret, rq->imds_token,
					rq->imds_token_len, c->now)))
		abort();
	if (d->action == EP_IMDS_TOKEN &&
	    (rq->forwarded || !endpoint_imds_token_valid(the_secret, d->token,
							 strlen(d->token), c->now)))
		abort();
	if (rq->has_body && (d->action != EP_ANSWER || !d->close))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ep_context c = {
		.listen = "127.0.0.1:9911", .now = NOW, .role_rotation = rotation_of,
	};
	char *field[FIELDS] = { 0 }, *text, *flags;
	struct ep_request rq = { 0 };
	struct ep_decision d;
	size_t n;

	if (!the_secret) {
		unsigned char key[ENDPOINT_SECRET_LEN] = { 42 };

		the_secret = endpoint_secret_from(key, sizeof(key));
		if (!the_secret)
			abort();
	}
	c.secret = the_secret;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	n = split(text, field);
	flags = n == FIELDS ? field[6] : "";
	c.imds_role = strchr(flags, 'i') ? "app" : NULL;
	rq.forwarded = strchr(flags, 'f') != NULL;
	rq.has_body = strchr(flags, 'b') != NULL;
	rq.method = field[0];
	rq.path = field[1];
	rq.host = field[2];
	rq.authorization = field[3];
	rq.authorization_len = field[3] ? strlen(field[3]) : 0;
	rq.imds_token = field[4];
	rq.imds_token_len = field[4] ? strlen(field[4]) : 0;
	rq.imds_ttl = field[5];
	for (const char *f = flags; *f; f++) {
		if (*f >= '0' && *f <= '5') {
			const char **absent[] = { &rq.method, &rq.path, &rq.host,
						  &rq.authorization, &rq.imds_token,
						  &rq.imds_ttl };

			*absent[*f - '0'] = NULL;
		}
	}
	if (!rq.authorization)
		rq.authorization_len = 0;
	if (!rq.imds_token)
		rq.imds_token_len = 0;
	ep_route(&c, &rq, &d);
	check(&c, &rq, &d);
	ep_decision_clear(&d);
	free(text);
	return 0;
}
