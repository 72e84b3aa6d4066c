/*
 * What the HTTP face answers, decided from a parsed request alone: no
 * sockets, no HTTP library, so unit tests and the fuzzer drive it
 * directly.
 *
 *   GET /roles/NAME/credentials              Authorization: NAME's token
 *   PUT /latest/api/token                    X-aws-ec2-metadata-token-ttl-seconds
 *   GET /latest/meta-data/iam/security-credentials/        X-aws-ec2-metadata-token
 *   GET /latest/meta-data/iam/security-credentials/NAME    X-aws-ec2-metadata-token
 *   GET /metrics
 *
 * Every refusal is one of a few fixed answers that name no role and give
 * no hint: a wrong token and an unknown role get the same 403, after the
 * same token comparison.  No request carries a body; one that does is
 * refused and its connection closed.
 */
#ifndef CREDFS_ENDPOINT_ROUTER_H
#define CREDFS_ENDPOINT_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "creds.h"
#include "endpoint_token.h"

/* A request as parsed by the HTTP library.  Header values are NULL when
 * absent. */
struct ep_request {
	const char *method;
	const char *path;		/* decoded, without the query */
	const char *host;
	const char *authorization;
	size_t authorization_len;
	const char *imds_token;		/* X-aws-ec2-metadata-token */
	size_t imds_token_len;
	const char *imds_ttl;		/* X-aws-ec2-metadata-token-ttl-seconds */
	int forwarded;			/* X-Forwarded-For is present */
	int has_body;			/* Content-Length other than 0, or
					 * Transfer-Encoding */
};

/* What the router may ask of the daemon. */
struct ep_context {
	const struct endpoint_secret *secret;
	const char *listen;		/* the listen address as configured,
					 * "127.0.0.1:9911", "[::1]:80" */
	const char *imds_role;		/* NULL: no IMDS */
	int64_t now;			/* wall seconds */
	/* 0 and the role's authorization_token_rotation when name is a
	 * configured AWS role, else -ENOENT. */
	int (*role_rotation)(void *arg, const char *name, unsigned *rotation);
	void *arg;
};

enum ep_action {
	EP_ANSWER,		/* status, content_type, body */
	EP_CONTAINER,		/* role's credentials, container format */
	EP_IMDS_CREDENTIALS,	/* role's credentials, IMDS format */
	EP_IMDS_TOKEN,		/* a new session token: token, ttl */
	EP_METRICS,
};

struct ep_decision {
	enum ep_action action;
	unsigned status;
	const char *content_type;
	const char *body;		/* EP_ANSWER: static, or the context's
					 * imds_role */
	const char *allow;		/* 405: the Allow header */
	int close;			/* close the connection after answering */
	char role[CFG_ROLE_NAME_MAX + 1];
	char token[ENDPOINT_IMDS_TOKEN_LEN + 1];	/* EP_IMDS_TOKEN (wipe it) */
	int ttl;
};

/* Decides the answer to rq.  Always fills d. */
void ep_route(const struct ep_context *c, const struct ep_request *rq,
	      struct ep_decision *d);

/* Wipes what d may hold of a secret. */
void ep_decision_clear(struct ep_decision *d);

/* The fixed answer for status (401, 403, 404, 405, 400, 503, 500) in the
 * container endpoint's JSON ({"code","message"}) into d. */
void ep_error(struct ep_decision *d, unsigned status);

/* {"AccessKeyId","SecretAccessKey","Token","Expiration"} of c. */
int ep_container_json(const struct creds *c, struct buf *out) WUR;
/* The IMDS document of c: Code Success, LastUpdated, Type AWS-HMAC,
 * AccessKeyId, SecretAccessKey, Token, Expiration. */
int ep_imds_json(const struct creds *c, struct buf *out) WUR;

/* Whether host (a Host header) names the listen address listen (with its
 * port, or none when that is 80) or the IMDS address 169.254.169.254. */
int ep_host_allowed(const char *host, const char *listen);

#endif
