#include "oauth.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "clock.h"

#define WITHHOLD_WINDOW 16	/* characters of a credential worth hiding */

/* ---- jansson's memory --------------------------------------------------- */

static void json_wipe_free(void *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

/* Runs before main, while the process has one thread, so no jansson call
 * can see the allocator change under it.  Memory jansson got before (none)
 * or gets later comes from malloc either way. */
__attribute__((constructor)) static void json_wipe_on_free(void)
{
	json_set_alloc_funcs(malloc, json_wipe_free);
}

/* ---- values ------------------------------------------------------------- */

void oauth_token_clear(struct oauth_token *t)
{
	secret_free(t->access_token);
	memset(t, 0, sizeof(*t));
}

int oauth_token_ok(const char *s, size_t len)
{
	size_t i = 0;

	if (!s || len < 1 || len > OAUTH_TOKEN_MAX)
		return 0;
	while (i < len && ((s[i] >= 'A' && s[i] <= 'Z') ||
			   (s[i] >= 'a' && s[i] <= 'z') ||
			   (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
			   s[i] == '.' || s[i] == '_' || s[i] == '~' ||
			   s[i] == '+' || s[i] == '/'))
		i++;
	if (i == 0)
		return 0;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

char *oauth_subject_token(const char *token)
{
	size_t n = strlen(token);

	if (n && token[n - 1] == '\n')
		n--;
	if (n && token[n - 1] == '\r')
		n--;
	return secret_strndup(token, n);
}

/* ---- errors ------------------------------------------------------------- */

static int is_2xx(int status)
{
	return status >= 200 && status <= 299;
}

void oauth_classify(struct exchange_error *err)
{
	static const char *const retry_codes[] = {
		"Transport", "server_error", "temporarily_unavailable",
		"UNAVAILABLE", "RESOURCE_EXHAUSTED",
	};
	int s = err->http_status;

	err->retryable = (s >= 500 && s <= 599) || s == 429;
	for (size_t i = 0; !err->retryable && i < ARRAY_SIZE(retry_codes); i++)
		err->retryable = !strcmp(err->code, retry_codes[i]);
	err->throttled = s == 429 || !strcmp(err->code, "RESOURCE_EXHAUSTED");
}

/* err for an answer that is not a usable one (why is credfs's own text,
 * never input).  A non-2xx status says more than "Malformed", so it
 * becomes the code. */
static void set_malformed(struct exchange_error *err, int http_status,
			  const char *label, const char *why)
{
	char code[16];

	if (http_status > 0 && !is_2xx(http_status)) {
		snprintf(code, sizeof(code), "HTTP%d", http_status);
		exchange_error_set(err, code, "%s answered HTTP %d (%s)", label,
				   http_status, why);
	} else {
		exchange_error_set(err, "Malformed", "unusable %s answer: %s",
				   label, why);
	}
	err->http_status = http_status;
	oauth_classify(err);
}

/* A string member of o, or NULL when absent or not a non-empty string. */
static const char *string_member(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	return s && *s ? s : NULL;
}

/* The code of an Entra ID error: "AADSTS" and the first of error_codes,
 * or NULL when there is none.  Into buf (size bytes). */
static const char *entra_code(const json_t *doc, char *buf, size_t size)
{
	const json_t *codes = json_object_get(doc, "error_codes");
	const json_t *first = json_is_array(codes) ? json_array_get(codes, 0) : NULL;

	if (!json_is_integer(first) || json_integer_value(first) < 0)
		return NULL;
	snprintf(buf, size, "AADSTS%lld", (long long)json_integer_value(first));
	return buf;
}

/* Fills err from an error answer of either Google shape or Entra ID's.
 * Returns 0, or -1 when doc holds no error code (err untouched). */
static int cloud_error(const json_t *doc, int http_status,
		       const struct oauth_answer *a, struct exchange_error *err)
{
	const json_t *e = json_object_get(doc, "error");
	const char *code = NULL, *message = NULL;
	char status_code[32], aad[32];

	if (json_is_string(e)) {
		/* OAuth 2.0 (RFC 6749 5.2), which both clouds' token
		 * endpoints speak. */
		code = string_member(doc, "error");
		message = string_member(doc, "error_description");
		if (a->dialect == OAUTH_ENTRA && entra_code(doc, aad, sizeof(aad)))
			code = aad;
	} else if (json_is_object(e) && a->dialect == OAUTH_GOOGLE) {
		/* Google APIs: {"error":{"code","message","status"}}. */
		const json_t *n = json_object_get(e, "code");

		code = string_member(e, "status");
		message = string_member(e, "message");
		if (!code && json_is_integer(n)) {
			snprintf(status_code, sizeof(status_code), "HTTP%lld",
				 (long long)json_integer_value(n));
			code = status_code;
		}
	}
	if (!code)
		return -1;
	memset(err, 0, sizeof(*err));
	exchange_copy_text(err->code, sizeof(err->code), code);
	exchange_copy_text(err->message, sizeof(err->message),
			   message ? message : "(no description)");
	err->http_status = http_status;
	oauth_classify(err);
	return 0;
}

/* ---- success answers ---------------------------------------------------- */

/* The lifetime of a success answer as an absolute wall time.  NULL, or
 * why it is not usable. */
static const char *answer_expiry(const json_t *doc, int64_t now,
				 const struct oauth_answer *a, int64_t *expires)
{
	const json_t *v;
	int64_t t, in;

	if (a->expire_time_field) {
		v = json_object_get(doc, a->expire_time_field);
		if (!json_is_string(v))
			return "no expiry time, or not a string";
		if (clock_parse_iso8601(json_string_value(v), &t))
			return "the expiry time is not an RFC 3339 UTC time";
		if (t - now > OAUTH_LIFETIME_MAX)
			return "the expiry time is more than 7 days away";
		*expires = t;
		return NULL;
	}
	v = json_object_get(doc, a->expires_in_field);
	if (json_is_integer(v)) {
		in = (int64_t)json_integer_value(v);
	} else if (json_is_string(v) && a->expires_in_text) {
		const char *s = json_string_value(v);
		size_t n = strlen(s);

		/* At most 9 digits, so the number cannot overflow. */
		if (n < 1 || n > 9 || strspn(s, "0123456789") != n)
			return "the lifetime is not a number of seconds";
		in = strtoll(s, NULL, 10);
	} else {
		return "no lifetime (expires_in), or not a number";
	}
	if (in < 1 || in > OAUTH_LIFETIME_MAX)
		return "the lifetime is not between 1 second and 7 days";
	*expires = now + in;
	return NULL;
}

/* Checks a success answer and takes its token.  NULL, or why not. */
static const char *answer_token(const json_t *doc, int64_t now,
				const struct oauth_answer *a,
				struct oauth_token *out)
{
	const json_t *tok = json_object_get(doc, a->token_field);
	const char *type = string_member(doc, "token_type");
	const char *issued = string_member(doc, "issued_token_type");
	const char *why;
	int64_t expires = 0;

	if (!json_is_string(tok))
		return "no access token, or not a string";
	if (!oauth_token_ok(json_string_value(tok), json_string_length(tok)))
		return "the access token has characters or a length no bearer token has";
	if (json_object_get(doc, "token_type") &&
	    (!type || strcasecmp(type, "Bearer")))
		return "the token type is not Bearer";
	if (a->issued_token_type && json_object_get(doc, "issued_token_type") &&
	    (!issued || strcmp(issued, a->issued_token_type)))
		return "the issued token type is not an access token";
	why = answer_expiry(doc, now, a, &expires);
	if (why)
		return why;
	out->access_token = secret_strdup(json_string_value(tok));
	if (!out->access_token)
		return "out of memory";
	out->expires = expires;
	return NULL;
}

int oauth_parse_answer(const char *body, size_t len, int http_status,
		       int64_t now, const struct oauth_answer *a,
		       struct oauth_token *out, struct exchange_error *err)
{
	json_error_t jerr;
	const char *why;
	char where[64];
	json_t *doc;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	if (!body || !len) {
		set_malformed(err, http_status, a->label, "empty body");
		return -1;
	}
	if (len > HTTP_BODY_MAX) {
		set_malformed(err, http_status, a->label, "body too large");
		return -1;
	}
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		/* jansson's text may quote the input: only the place. */
		snprintf(where, sizeof(where), "not JSON (line %d, column %d)",
			 jerr.line, jerr.column);
		set_malformed(err, http_status, a->label, where);
		return -1;
	}
	if (!json_is_object(doc)) {
		set_malformed(err, http_status, a->label, "not a JSON object");
		json_decref(doc);
		return -1;
	}
	if (json_object_get(doc, "error") || !is_2xx(http_status)) {
		if (cloud_error(doc, http_status, a, err))
			set_malformed(err, http_status, a->label,
				      is_2xx(http_status) ?
					      "an error without a code" :
					      "no error code in the answer");
		json_decref(doc);
		return -1;
	}
	why = answer_token(doc, now, a, out);
	json_decref(doc);
	if (why) {
		oauth_token_clear(out);
		set_malformed(err, http_status, a->label, why);
		return -1;
	}
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

static void transport_error(struct exchange_error *err, const char *code,
			    const char *label, const char *what)
{
	char text[sizeof(err->message)];

	snprintf(text, sizeof(text), "%s: %s", label, what);
	memset(err, 0, sizeof(*err));
	exchange_copy_text(err->code, sizeof(err->code), code);
	exchange_copy_text(err->message, sizeof(err->message), text);
	oauth_classify(err);
}

int oauth_send(const struct http_request *hr, const char *label,
	       struct http_response *resp, struct exchange_error *err)
{
	char errbuf[256];

	memset(err, 0, sizeof(*err));
	switch (http_post(hr, resp, errbuf, sizeof(errbuf))) {
	case HTTP_OK:
		return 0;
	case HTTP_ERR_TRANSPORT:
		transport_error(err, "Transport", label,
				errbuf[0] ? errbuf : "transport error");
		break;
	case HTTP_ERR_TLS:
		transport_error(err, "TLS", label,
				errbuf[0] ? errbuf : "TLS error");
		break;
	case HTTP_ERR_TOO_BIG:
		transport_error(err, "Malformed", label,
				"the answer was larger than 256 KiB");
		break;
	default:
		transport_error(err, "Internal", label,
				errbuf[0] ? errbuf : "internal HTTP error");
		break;
	}
	return -1;
}

int oauth_exchange(const struct http_request *hr, const struct oauth_answer *a,
		   const char *secret, struct oauth_token *out,
		   struct exchange_error *err)
{
	struct http_response resp;
	int rc;

	memset(out, 0, sizeof(*out));
	if (oauth_send(hr, a->label, &resp, err))
		return -1;
	rc = oauth_parse_answer(resp.body.data, resp.body.len, (int)resp.status,
				clock_wall(), a, out, err);
	http_response_free(&resp);
	if (rc)
		oauth_withhold(err, secret);
	return rc;
}

/* ---- credentials in messages -------------------------------------------- */

/* Whether any WITHHOLD_WINDOW characters in a row of text occur in
 * secret (n bytes). */
static int quotes(const char *text, const char *secret, size_t n)
{
	size_t len = strlen(text);

	for (size_t i = 0; i + WITHHOLD_WINDOW <= len; i++)
		if (memmem(secret, n, text + i, WITHHOLD_WINDOW))
			return 1;
	return 0;
}

void oauth_withhold(struct exchange_error *err, const char *secret)
{
	const char *part, *dot;
	size_t n;

	if (!secret)
		return;
	/* Of a JWT only the signature makes it usable; its header and
	 * claims (issuer, subject, audience) may well be quoted. */
	part = secret;
	dot = strrchr(secret, '.');
	if (dot && strchr(secret, '.') != dot)
		part = dot + 1;
	n = strcspn(part, "\r\n");
	if (n < WITHHOLD_WINDOW)
		return;
	if (quotes(err->message, part, n) || quotes(err->code, part, n)) {
		snprintf(err->message, sizeof(err->message),
			 "(the endpoint's message quoted a credential of the request; withheld)");
		if (quotes(err->code, part, n))
			snprintf(err->code, sizeof(err->code), "Withheld");
	}
}
