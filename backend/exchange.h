/*
 * The interface of a role kind (kind_aws.c, kind_gcp.c, kind_azure.c):
 * how one request to the cloud's token endpoint is made and what comes
 * back.  The engine schedules renewals the same way for every kind; a kind
 * only says how to exchange and what it got.  What a failed request leaves
 * behind is exchange_error.h.
 */
#ifndef CREDFS_EXCHANGE_H
#define CREDFS_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "config.h"
#include "creds.h"
#include "exchange_error.h"

/* One request of an exchange.  A kind may need more than one request per
 * renewal (Google: the token exchange, then generateAccessToken); the
 * engine makes each one a separate request through its limiter and keeps
 * what a step produced in `carry` for the next. */
struct kind_request {
	const struct cfg_role *role;	/* settings in force */
	const char *token;		/* the web identity token, or NULL (chained) */
	const struct creds *source;	/* chained: the source role's credentials */
	int step;			/* 0 for the first request of a renewal */
	char *carry;			/* what the previous step produced (secret) */
	long connect_timeout_ms;
	long timeout_ms;
};

enum kind_result {
	KIND_DONE = 0,			/* *out holds the new credentials */
	KIND_NEXT = 1,			/* carry set: make request step + 1 */
	KIND_FAILED = -1,		/* err filled */
};

struct kind_ops {
	const char *name;		/* "aws", "gcp", "azure" */
	/* Makes request req->step.  On KIND_NEXT it replaces req->carry
	 * (secret_free the old one).  Never logs a secret. */
	enum kind_result (*request)(struct kind_request *req, struct creds *out,
				    struct exchange_error *err);
};

/* The kind of a cloud. */
const struct kind_ops *kind_of(enum cfg_cloud cloud);

#endif
