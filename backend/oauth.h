/*
 * What the OAuth 2.0 token endpoints of Google Cloud and Entra ID have in
 * common, for their kinds (kind_gcp.c, kind_azure.c): one request through
 * http.c, a JSON answer read strictly and within caps, the error shapes
 * both clouds use and which of them are worth another attempt, and the
 * checks a bearer token passes before it can reach a file or a header.
 *
 * Nothing here logs.  No message made here quotes a body, a token or a
 * value that was refused; a message the endpoint wrote is shown as it
 * is (control characters replaced), unless it quotes a credential of the
 * request (oauth_withhold).
 *
 * Process-wide, from before main: jansson's memory is wiped before it is
 * freed, because its parser copies the access tokens it reads (and the
 * text around them) into memory of its own.
 */
#ifndef CREDFS_OAUTH_H
#define CREDFS_OAUTH_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "compiler.h"
#include "exchange_error.h"
#include "http.h"

#define OAUTH_TOKEN_MAX 32768		/* longest access token accepted */
#define OAUTH_LIFETIME_MAX (7 * 86400)	/* longest lifetime believed, seconds */
#define OAUTH_USER_AGENT "credfs/" CREDFS_VERSION
#define OAUTH_FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"

/* Which error shapes an endpoint answers with. */
enum oauth_dialect {
	/* {"error":"invalid_grant","error_description":...} (STS) and
	 * {"error":{"code":403,"message":...,"status":"PERMISSION_DENIED"}}
	 * (Google APIs): the code is the error string, or the status. */
	OAUTH_GOOGLE,
	/* {"error":...,"error_description":"AADSTS700211: ...",
	 * "error_codes":[700211],...}: the code is "AADSTS700211" when
	 * error_codes says so, else the error string. */
	OAUTH_ENTRA,
};

/* How a success answer looks. */
struct oauth_answer {
	const char *label;		/* the endpoint, in messages: "Google STS" */
	enum oauth_dialect dialect;
	const char *token_field;	/* "access_token" or "accessToken" */
	/* The lifetime: relative in seconds (a JSON integer, or also a
	 * string of digits when expires_in_text), or absolute (RFC 3339).
	 * Exactly one is set. */
	const char *expires_in_field;
	int expires_in_text;
	const char *expire_time_field;
	/* When present in the answer it must be this (RFC 8693); NULL:
	 * not looked at. */
	const char *issued_token_type;
};

/* A bearer token and when it expires. */
struct oauth_token {
	char *access_token;		/* secret (secret_strdup) */
	int64_t expires;		/* wall seconds */
};

/* Wipes and frees t's token, leaving t empty. */
void oauth_token_clear(struct oauth_token *t);

/* Whether s (len bytes) is a bearer token fit for an Authorization
 * header and a file: RFC 6750 b64token (letters, digits, - . _ ~ + /,
 * then '=' padding only), 1 to OAUTH_TOKEN_MAX bytes.  Spaces, quotes,
 * newlines, control characters and anything not ASCII are refused. */
int oauth_token_ok(const char *s, size_t len);

/*
 * Parses an answer of the endpoint a describes, received with
 * http_status at wall time now.  0 with *out filled (free with
 * oauth_token_clear) for a success answer whose values all pass; -1 with
 * err filled otherwise: the cloud's error for an error answer, or
 * "Malformed" (2xx) / "HTTP<status>" for anything else (empty, too big,
 * not JSON, not an object, a field missing or of the wrong type, a token
 * refused by oauth_token_ok, a lifetime out of range).  err->retryable and
 * err->throttled are set as oauth_classify says.
 */
int oauth_parse_answer(const char *body, size_t len, int http_status,
		       int64_t now, const struct oauth_answer *a,
		       struct oauth_token *out, struct exchange_error *err) WUR;

/* Sets retryable and throttled of err from its HTTP status and code:
 * retryable for no answer (Transport), HTTP 5xx and 429, and the codes
 * server_error, temporarily_unavailable, UNAVAILABLE, RESOURCE_EXHAUSTED;
 * throttled for 429 and RESOURCE_EXHAUSTED. */
void oauth_classify(struct exchange_error *err);

/*
 * One POST of hr.  0 when an answer arrived (any status; free *resp with
 * http_response_free); -1 with err filled when none did: "Transport"
 * (retryable), "TLS", "Malformed" (the body was over HTTP_BODY_MAX) or
 * "Internal".  label names the endpoint in the message.
 */
int oauth_send(const struct http_request *hr, const char *label,
	       struct http_response *resp, struct exchange_error *err) WUR;

/* oauth_send, then oauth_parse_answer of what came back (at the wall
 * time it came): 0 with *out (oauth_token_clear it), or -1 with err.  An
 * error that quotes secret (the request's credential) is withheld
 * (oauth_withhold). */
int oauth_exchange(const struct http_request *hr, const struct oauth_answer *a,
		   const char *secret, struct oauth_token *out,
		   struct exchange_error *err) WUR;

/* Replaces err's message (and code) when it quotes any 16 consecutive
 * characters of secret (of its signature when secret is a JWT), so an
 * endpoint that echoes a credential back cannot put it in status or
 * the log.  secret may be NULL. */
void oauth_withhold(struct exchange_error *err, const char *secret);

/* The web identity token as it goes on the wire: a copy without the one
 * trailing newline a token file may end with (a JWT never holds
 * whitespace).  Secret: free with secret_free.  NULL when out of memory. */
char *oauth_subject_token(const char *token) WUR;

#endif
