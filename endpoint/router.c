#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

#include "clock.h"

#define NAME_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
#define JSON "application/json"
#define TEXT "text/plain"
#define IMDS_ADDRESS "169.254.169.254"
#define ROLES_PREFIX "/roles/"
#define ROLES_SUFFIX "/credentials"
#define IMDS_PREFIX "/latest/"
#define IMDS_TOKEN_PATH "/latest/api/token"
#define IMDS_IAM "/latest/meta-data/iam/"
#define IMDS_CREDS "/latest/meta-data/iam/security-credentials"

/* ---- fixed answers ------------------------------------------------------- */

struct fixed {
	unsigned status;
	const char *json;
	const char *text;	/* what the IMDS paths say, as EC2 does */
};

static const struct fixed fixed_answers[] = {
	{ 400, "{\"code\":\"BadRequest\",\"message\":\"Bad request\"}\n",
	  "Bad Request\n" },
	{ 401, "{\"code\":\"Unauthorized\",\"message\":\"Authorization required\"}\n",
	  "Unauthorized\n" },
	{ 403, "{\"code\":\"AccessDenied\",\"message\":\"Access denied\"}\n",
	  "Forbidden\n" },
	{ 404, "{\"code\":\"NotFound\",\"message\":\"Not found\"}\n",
	  "Not Found\n" },
	{ 405, "{\"code\":\"MethodNotAllowed\",\"message\":\"Method not allowed\"}\n",
	  "Method Not Allowed\n" },
	{ 500, "{\"code\":\"InternalError\",\"message\":\"Internal error\"}\n",
	  "Internal Server Error\n" },
	{ 503, "{\"code\":\"Unavailable\",\"message\":\"Credentials are not available now, try again later\"}\n",
	  "Service Unavailable\n" },
};

static const struct fixed *fixed_for(unsigned status)
{
	for (size_t i = 0; i < ARRAY_SIZE(fixed_answers); i++)
		if (fixed_answers[i].status == status)
			return &fixed_answers[i];
	return &fixed_answers[5];	/* 500 */
}

void ep_error(struct ep_decision *d, unsigned status)
{
	const struct fixed *f = fixed_for(status);

	d->action = EP_ANSWER;
	d->status = f->status;
	d->content_type = JSON;
	d->body = f->json;
	d->allow = f->status == 405 ? "GET" : NULL;
}

/* The IMDS flavour of the same answer. */
static void imds_error(struct ep_decision *d, unsigned status, const char *allow)
{
	const struct fixed *f = fixed_for(status);

	d->action = EP_ANSWER;
	d->status = f->status;
	d->content_type = TEXT;
	d->body = f->text;
	d->allow = allow;
}

void ep_decision_clear(struct ep_decision *d)
{
	OPENSSL_cleanse(d->token, sizeof(d->token));
}

/* ---- pieces of a request ------------------------------------------------- */

static int is_get(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}

/* Splits "HOST[:PORT]" (HOST may be "[V6]") into its host part (pointer
 * and length) and its port (0 when absent, -1 when not a number). */
static void split_host(const char *s, const char **host, size_t *hlen, long *port)
{
	const char *colon = NULL;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		colon = end && end[1] == ':' ? end + 1 : NULL;
		*hlen = end ? (size_t)(end + 1 - s) : strlen(s);
	} else {
		colon = strchr(s, ':');
		*hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	*host = s;
	*port = 0;
	if (colon) {
		const char *p = colon + 1;

		*port = *p && strlen(p) <= 5 && strspn(p, "0123456789") == strlen(p) ?
				strtol(p, NULL, 10) : -1;
	}
}

int ep_host_allowed(const char *host, const char *listen)
{
	const char *h, *lh;
	size_t hl, lhl;
	long hp, lp;

	if (!host)
		return 0;
	split_host(host, &h, &hl, &hp);
	split_host(listen, &lh, &lhl, &lp);
	if (hp < 0 || (h[0] != '[' && memchr(h, ':', hl)))
		return 0;
	if (hl == strlen(IMDS_ADDRESS) && !memcmp(h, IMDS_ADDRESS, hl))
		return 1;
	return hl == lhl && !strncasecmp(h, lh, hl) &&
	       (hp == lp || (hp == 0 && lp == 80));
}

/* The NAME of "/roles/NAME/credentials" into name, or -1. */
static int role_of_path(const char *path, char name[static CFG_ROLE_NAME_MAX + 1])
{
	const char *p = path + strlen(ROLES_PREFIX), *slash = strchr(p, '/');
	size_t n;

	if (!slash || strcmp(slash, ROLES_SUFFIX))
		return -1;
	n = (size_t)(slash - p);
	if (n < 1 || n > CFG_ROLE_NAME_MAX)
		return -1;
	memcpy(name, p, n);
	name[n] = '\0';
	return strspn(name, NAME_CHARS) == n ? 0 : -1;
}

/* ---- the routes ---------------------------------------------------------- */

/* /roles/NAME/credentials: the token of NAME is compared whether NAME is
 * a role or not, so both refusals cost the same and look the same. */
static void route_container(const struct ep_context *c,
			    const struct ep_request *rq, struct ep_decision *d)
{
	unsigned rotation = 0;
	int known, match;

	if (role_of_path(rq->path, d->role)) {
		ep_error(d, 404);
		return;
	}
	if (!is_get(rq->method)) {
		ep_error(d, 405);
		return;
	}
	if (!rq->authorization) {
		ep_error(d, 401);
		return;
	}
	known = c->role_rotation(c->arg, d->role, &rotation) == 0;
	match = endpoint_role_token_matches(c->secret, d->role, rotation,
					    rq->authorization,
					    rq->authorization_len);
	if (!(known & match)) {
		ep_error(d, 403);
		return;
	}
	d->action = EP_CONTAINER;
	d->status = 200;
	d->content_type = JSON;
}

/* A TTL header: 1 to 21600, digits only. */
static int parse_ttl(const char *s)
{
	if (!s || !*s || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s))
		return -1;
	long n = strtol(s, NULL, 10);

	return n >= 1 && n <= ENDPOINT_IMDS_TTL_MAX ? (int)n : -1;
}

static void route_imds_token(const struct ep_context *c,
			     const struct ep_request *rq, struct ep_decision *d)
{
	int ttl;

	if (strcmp(rq->method, "PUT")) {
		imds_error(d, 405, "PUT");
		return;
	}
	/* EC2 refuses a token PUT that went through a proxy. */
	if (rq->forwarded) {
		imds_error(d, 403, NULL);
		return;
	}
	ttl = parse_ttl(rq->imds_ttl);
	if (ttl < 0) {
		imds_error(d, 400, NULL);
		return;
	}
	if (endpoint_imds_token(c->secret, c->now + ttl, d->token)) {
		imds_error(d, 500, NULL);
		return;
	}
	d->action = EP_IMDS_TOKEN;
	d->status = 200;
	d->content_type = TEXT;
	d->ttl = ttl;
}

/* The credentials paths, for a request that holds a valid session token. */
static void route_imds_credentials(const struct ep_context *c,
				   const struct ep_request *rq,
				   struct ep_decision *d)
{
	const char *rest = rq->path + strlen(IMDS_CREDS);

	if (!strcmp(rest, "") || !strcmp(rest, "/")) {
		d->action = EP_ANSWER;
		d->status = 200;
		d->content_type = TEXT;
		d->body = c->imds_role;
		return;
	}
	if (rest[0] != '/' || strcmp(rest + 1, c->imds_role)) {
		imds_error(d, 404, NULL);
		return;
	}
	snprintf(d->role, sizeof(d->role), "%s", c->imds_role);
	d->action = EP_IMDS_CREDENTIALS;
	d->status = 200;
	d->content_type = TEXT;	/* as EC2 labels it */
}

/* Everything under /latest/: a Host that is neither the address listened
 * on nor the IMDS address is refused first (DNS rebinding: a page that
 * made its own name resolve to this host). */
static void route_imds(const struct ep_context *c, const struct ep_request *rq,
		       struct ep_decision *d)
{
	if (!c->imds_role) {
		ep_error(d, 404);
		return;
	}
	if (!ep_host_allowed(rq->host, c->listen)) {
		imds_error(d, 403, NULL);
		return;
	}
	if (!strcmp(rq->path, IMDS_TOKEN_PATH)) {
		route_imds_token(c, rq, d);
		return;
	}
	if (!is_get(rq->method)) {
		imds_error(d, 405, "GET");
		return;
	}
	if (!rq->imds_token ||
	    !endpoint_imds_token_valid(c->secret, rq->imds_token,
				       rq->imds_token_len, c->now)) {
		imds_error(d, 401, NULL);
		return;
	}
	/* security-credentials-extended and other paths SDKs probe first:
	 * 404, so they fall back to what is served. */
	if (!strncmp(rq->path, IMDS_CREDS, strlen(IMDS_CREDS)) &&
	    (rq->path[strlen(IMDS_CREDS)] == '\0' || rq->path[strlen(IMDS_CREDS)] == '/'))
		route_imds_credentials(c, rq, d);
	else
		imds_error(d, 404, NULL);
}

void ep_route(const struct ep_context *c, const struct ep_request *rq,
	      struct ep_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (!rq->method || !rq->path) {
		ep_error(d, 400);
		d->close = 1;
		return;
	}
	/* Nothing here takes a body: refuse it and stop reading. */
	if (rq->has_body) {
		ep_error(d, 400);
		d->close = 1;
		return;
	}
	if (!strncmp(rq->path, ROLES_PREFIX, strlen(ROLES_PREFIX))) {
		route_container(c, rq, d);
	} else if (!strncmp(rq->path, IMDS_PREFIX, strlen(IMDS_PREFIX))) {
		route_imds(c, rq, d);
	} else if (!strcmp(rq->path, "/metrics")) {
		if (is_get(rq->method)) {
			d->action = EP_METRICS;
			d->status = 200;
			d->content_type = "text/plain; version=0.0.4; charset=utf-8";
		} else {
			ep_error(d, 405);
		}
	} else {
		ep_error(d, 404);
	}
}

/* ---- documents ----------------------------------------------------------- */

/* Every value is checked (sts.c) to be base64 or a key id: nothing needs
 * escaping. */
int ep_container_json(const struct creds *c, struct buf *out)
{
	char exp[21];

	if (!c->access_key_id || !c->secret_access_key || !c->session_token)
		return -EIO;
	clock_format_rfc3339(c->expires, exp);
	return buf_printf(out,
			  "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\","
			  "\"Token\":\"%s\",\"Expiration\":\"%s\"}\n",
			  c->access_key_id, c->secret_access_key,
			  c->session_token, exp);
}

int ep_imds_json(const struct creds *c, struct buf *out)
{
	char exp[21], updated[21];

	if (!c->access_key_id || !c->secret_access_key || !c->session_token)
		return -EIO;
	clock_format_rfc3339(c->expires, exp);
	clock_format_rfc3339(c->obtained, updated);
	return buf_printf(out,
			  "{\n  \"Code\" : \"Success\",\n"
			  "  \"LastUpdated\" : \"%s\",\n"
			  "  \"Type\" : \"AWS-HMAC\",\n"
			  "  \"AccessKeyId\" : \"%s\",\n"
			  "  \"SecretAccessKey\" : \"%s\",\n"
			  "  \"Token\" : \"%s\",\n"
			  "  \"Expiration\" : \"%s\"\n}\n",
			  updated, c->access_key_id, c->secret_access_key,
			  c->session_token, exp);
}
