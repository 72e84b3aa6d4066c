/*
 * What authorises a request to the HTTP face, shared by both faces: the
 * per-role authorization token (shown as NAME/authorization_token by the
 * files, checked by the endpoint) and the IMDSv2 session token.
 *
 * Both derive from one daemon secret of 32 bytes, so nothing is stored
 * and nothing is lost by a restart that keeps the secret:
 *
 *   role token    base64url(HMAC-SHA256(secret,
 *                     "credfs endpoint v1" 0x00 NAME 0x00 ROTATION(u32 BE)))
 *                 43 characters, no padding, no newline
 *   IMDS token    base64url(EXPIRES(u64 BE) | HMAC-SHA256(secret,
 *                     "credfs imds v1" 0x00 EXPIRES(u64 BE)))
 *                 54 characters; valid until EXPIRES (wall seconds)
 *
 * The labels keep the two kinds apart: no role token is ever a valid IMDS
 * token or the other way round.  Bumping a role's
 * authorization_token_rotation gives it a new token and refuses the old.
 * The secret is the supervisor's (daemon/supervisor.c: made at a fresh
 * start, else taken from a takeover's OFFER or the descriptor store), kept
 * across worker restarts and handed to each worker in CTL_START
 * (docs/lifecycle.md); the worker copies it (endpoint_secret_from) and the
 * faces borrow that copy, as this module does.  Nothing here logs, and
 * every comparison of a token against what was sent takes the same time
 * whatever was sent.
 */
#ifndef CREDFS_ENDPOINT_TOKEN_H
#define CREDFS_ENDPOINT_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "compiler.h"
#include "config.h"

#define ENDPOINT_SECRET_LEN 32
#define ENDPOINT_ROLE_TOKEN_LEN 43	/* base64url of 32 bytes, unpadded */
#define ENDPOINT_IMDS_TOKEN_LEN 54	/* base64url of 8 + 32 bytes, unpadded */
#define ENDPOINT_IMDS_TTL_MAX 21600	/* seconds, as EC2 */

/* The daemon secret, in the secure heap when there is one. */
struct endpoint_secret {
	unsigned char key[ENDPOINT_SECRET_LEN];
};

/* A secret of 32 fresh random bytes; NULL when out of memory or when the
 * system has no randomness to give.  Free with endpoint_secret_free. */
struct endpoint_secret *endpoint_secret_random(void) WUR;
/* A secret holding key (len must be ENDPOINT_SECRET_LEN), as the
 * supervisor hands it to a worker.  NULL on a wrong length or out of
 * memory. */
struct endpoint_secret *endpoint_secret_from(const void *key, size_t len) WUR;
/* Wipes and frees; NULL is fine. */
void endpoint_secret_free(struct endpoint_secret *s);

/* The token of role name at rotation into out (NUL-terminated).  0, or
 * -EIO when HMAC fails (never expected). */
int endpoint_role_token(const struct endpoint_secret *s, const char *name,
			unsigned rotation,
			char out[static ENDPOINT_ROLE_TOKEN_LEN + 1]) WUR;

/* Whether given (len bytes, not necessarily NUL-terminated) is the token
 * of name at rotation: 1 or 0.  The comparison takes the same time for
 * any given of any length; a name that no role has is compared all the
 * same (the caller decides afterwards), so a wrong token and an unknown
 * role cost the same. */
int endpoint_role_token_matches(const struct endpoint_secret *s,
				const char *name, unsigned rotation,
				const char *given, size_t len);

/* An IMDS session token valid until expires (wall seconds). */
int endpoint_imds_token(const struct endpoint_secret *s, int64_t expires,
			char out[static ENDPOINT_IMDS_TOKEN_LEN + 1]) WUR;

/* Whether given is an IMDS session token of s that is still valid at now:
 * 1 or 0.  A token claiming to last longer than ENDPOINT_IMDS_TTL_MAX past
 * now (made before the wall clock was set back) is refused too. */
int endpoint_imds_token_valid(const struct endpoint_secret *s,
			      const char *given, size_t len, int64_t now);

/* The URL of role name's credentials as a consumer should use it, into
 * out: http://HOST:PORT/roles/NAME/credentials, HOST the first listen
 * address of e that every AWS SDK accepts over plain HTTP (127.0.0.1 or
 * 169.254.170.2), else the first listen address.  0 or -ENOMEM/-E2BIG. */
int endpoint_credentials_url(const struct cfg_endpoint *e, const char *name,
			     struct buf *out) WUR;

/* Whether listen address l is one that even the oldest SDKs still in use
 * (botocore 1.29, AWS CLI 2.9) accept for AWS_CONTAINER_CREDENTIALS_FULL_URI:
 * 127.0.0.1 or 169.254.170.2. */
int endpoint_listen_for_every_sdk(const struct cfg_listen *l);

#endif
