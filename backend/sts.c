#include "sts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <expat.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "buf.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "percent.h"
#include "sigv4.h"

#define STS_VERSION "2011-06-15"
#define STS_BODY_MAX (256 * 1024)
#define STS_TEXT_MAX (64 * 1024)	/* longest element text accepted */
#define STS_DEPTH_MAX 32		/* deepest element nesting accepted */
#define STS_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"
#define STS_USER_AGENT "credfs/0.1"

/* ------------------------------------------------------------------ */
/* Request body                                                        */

/* percent_form_add for "Prefix.member.N[.suffix]". */
static int form_add_member(struct buf *b, const char *prefix, size_t n,
			   const char *suffix, const char *value)
{
	char key[96];

	snprintf(key, sizeof(key), "%s.member.%zu%s", prefix, n, suffix);
	return percent_form_add(b, key, value);
}

static int form_add_extras(struct buf *b, const struct sts_request *req)
{
	const struct sts_extras *x = req->extras;
	int r = 0;

	if (!x)
		return 0;
	if (x->policy)
		r = r ? r : percent_form_add(b, "Policy", x->policy);
	for (size_t i = 0; !r && i < x->n_policy_arns; i++)
		r = form_add_member(b, "PolicyArns", i + 1, ".arn",
				    x->policy_arns[i]);
	if (req->action != STS_ASSUME_ROLE)
		return r;
	if (x->external_id)
		r = r ? r : percent_form_add(b, "ExternalId", x->external_id);
	if (x->source_identity)
		r = r ? r : percent_form_add(b, "SourceIdentity",
					     x->source_identity);
	for (size_t i = 0; !r && i < x->n_tags; i++) {
		r = form_add_member(b, "Tags", i + 1, ".Key", x->tags[i].key);
		if (!r)
			r = form_add_member(b, "Tags", i + 1, ".Value",
					    x->tags[i].value);
	}
	for (size_t i = 0; !r && i < x->n_transitive_tag_keys; i++)
		r = form_add_member(b, "TransitiveTagKeys", i + 1, "",
				    x->transitive_tag_keys[i]);
	return r;
}

char *sts_build_body(const struct sts_request *req)
{
	int web = req->action == STS_ASSUME_ROLE_WITH_WEB_IDENTITY;
	char duration[16];
	struct buf b;
	int r;

	buf_init(&b, STS_BODY_MAX);
	r = percent_form_add(&b, "Action", web ? "AssumeRoleWithWebIdentity" :
						 "AssumeRole");
	r = r ? r : percent_form_add(&b, "Version", STS_VERSION);
	r = r ? r : percent_form_add(&b, "RoleArn",
				     req->role_arn ? req->role_arn : "");
	r = r ? r : percent_form_add(&b, "RoleSessionName",
				     req->session_name ? req->session_name : "");
	if (!r && req->duration_seconds > 0) {
		snprintf(duration, sizeof(duration), "%d",
			 req->duration_seconds);
		r = percent_form_add(&b, "DurationSeconds", duration);
	}
	if (!r && web)
		r = percent_form_add(&b, "WebIdentityToken",
				     req->web_identity_token ?
					     req->web_identity_token : "");
	r = r ? r : form_add_extras(&b, req);
	if (r) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* ------------------------------------------------------------------ */
/* Response parsing                                                    */

enum field {
	F_ACCESS_KEY_ID,
	F_SECRET_ACCESS_KEY,
	F_SESSION_TOKEN,
	F_EXPIRATION,
	F_ROLE_ARN,
	F_ROLE_ID,
	F_ERR_TYPE,
	F_ERR_CODE,
	F_ERR_MESSAGE,
	F_COUNT,
};

static const char *const field_names[F_COUNT] = {
	[F_ACCESS_KEY_ID] = "AccessKeyId",
	[F_SECRET_ACCESS_KEY] = "SecretAccessKey",
	[F_SESSION_TOKEN] = "SessionToken",
	[F_EXPIRATION] = "Expiration",
	[F_ROLE_ARN] = "Arn",
	[F_ROLE_ID] = "AssumedRoleId",
	[F_ERR_TYPE] = "Type",
	[F_ERR_CODE] = "Code",
	[F_ERR_MESSAGE] = "Message",
};

enum doc_kind {
	DOC_UNKNOWN,
	DOC_SUCCESS,
	DOC_ERROR,
};

struct parse_state {
	XML_Parser parser;
	char *path[STS_DEPTH_MAX];	/* local names of open elements */
	int depth;			/* may exceed STS_DEPTH_MAX briefly */
	enum doc_kind kind;
	char result_name[64];		/* "<Action>Result" for a success root */
	struct buf text;		/* character data of the open element */
	char *fields[F_COUNT];		/* secret_free'd */
	const char *fail;		/* why parsing was stopped, static */
};

/* The local part of an expat NS name ("uri name" or "name"). */
static const char *local_name(const char *name)
{
	const char *sep = strrchr(name, ' ');

	return sep ? sep + 1 : name;
}

static void stop(struct parse_state *st, const char *why)
{
	if (!st->fail)
		st->fail = why;
	XML_StopParser(st->parser, XML_FALSE);
}

static int path_is(const struct parse_state *st, int depth, const char *name)
{
	return st->depth > depth && depth < STS_DEPTH_MAX &&
	       strcmp(st->path[depth], name) == 0;
}

/* Which field the element just closed is, or -1.  Depth counts the
 * element itself (it is still on the path). */
static int field_at_close(const struct parse_state *st)
{
	const char *leaf;
	int d = st->depth;

	if (d < 2 || d > 4)
		return -1;
	leaf = st->path[d - 1];
	if (st->kind == DOC_SUCCESS && d == 4 &&
	    path_is(st, 1, st->result_name)) {
		if (path_is(st, 2, "Credentials")) {
			for (int f = F_ACCESS_KEY_ID; f <= F_EXPIRATION; f++)
				if (!strcmp(leaf, field_names[f]))
					return f;
		} else if (path_is(st, 2, "AssumedRoleUser")) {
			for (int f = F_ROLE_ARN; f <= F_ROLE_ID; f++)
				if (!strcmp(leaf, field_names[f]))
					return f;
		}
		return -1;
	}
	if (st->kind != DOC_ERROR)
		return -1;
	/* ErrorResponse/Error/X, ErrorResponse/Errors/Error/X, Error/X */
	if (!((d == 3 && path_is(st, 0, "ErrorResponse") &&
	       path_is(st, 1, "Error")) ||
	      (d == 4 && path_is(st, 0, "ErrorResponse") &&
	       path_is(st, 1, "Errors") && path_is(st, 2, "Error")) ||
	      (d == 2 && path_is(st, 0, "Error"))))
		return -1;
	for (int f = F_ERR_TYPE; f < F_COUNT; f++)
		if (!strcmp(leaf, field_names[f]))
			return f;
	return -1;
}

static void classify_root(struct parse_state *st, const char *name)
{
	size_t n = strlen(name);

	if (!strcmp(name, "AssumeRoleWithWebIdentityResponse") ||
	    !strcmp(name, "AssumeRoleResponse")) {
		st->kind = DOC_SUCCESS;
		snprintf(st->result_name, sizeof(st->result_name), "%.*sResult",
			 (int)(n - strlen("Response")), name);
	} else if (!strcmp(name, "ErrorResponse") || !strcmp(name, "Error")) {
		st->kind = DOC_ERROR;
	}
}

static void XMLCALL on_start(void *user, const XML_Char *name,
			     const XML_Char **attrs)
{
	struct parse_state *st = user;
	const char *local = local_name(name);

	(void)attrs;
	if (st->fail)
		return;
	if (st->depth >= STS_DEPTH_MAX) {
		stop(st, "elements nested too deeply");
		return;
	}
	st->path[st->depth] = strdup(local);
	if (!st->path[st->depth]) {
		stop(st, "out of memory");
		return;
	}
	if (st->depth == 0)
		classify_root(st, local);
	st->depth++;
	buf_free(&st->text);
}

/* Trims ASCII whitespace in place and returns the start. */
static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
		     s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static void XMLCALL on_end(void *user, const XML_Char *name)
{
	struct parse_state *st = user;
	int f;

	(void)name;
	if (st->fail || st->depth == 0)
		return;
	f = field_at_close(st);
	if (f >= 0) {
		if (st->fields[f]) {
			stop(st, "an element appears twice");
			return;
		}
		st->fields[f] = secret_strdup(st->text.data ?
					      trim(st->text.data) : "");
		if (!st->fields[f]) {
			stop(st, "out of memory");
			return;
		}
	}
	buf_free(&st->text);
	st->depth--;
	free(st->path[st->depth]);
	st->path[st->depth] = NULL;
}

static void XMLCALL on_text(void *user, const XML_Char *s, int len)
{
	struct parse_state *st = user;

	if (st->fail)
		return;
	if (buf_append(&st->text, s, (size_t)len))
		stop(st, "element text over 64 KiB");
}

static void XMLCALL on_doctype(void *user, const XML_Char *name,
			       const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal_subset)
{
	stop(user, "a DOCTYPE is not allowed");
}

static void XMLCALL on_entity(void *user, const XML_Char *name, int is_param,
			      const XML_Char *value, int value_length,
			      const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	stop(user, "an entity declaration is not allowed");
}

static void parse_state_free(struct parse_state *st)
{
	for (int i = 0; i < STS_DEPTH_MAX; i++)
		free(st->path[i]);
	for (int f = 0; f < F_COUNT; f++)
		secret_free(st->fields[f]);
	buf_free(&st->text);
	if (st->parser)
		XML_ParserFree(st->parser);
}

static int is_2xx(int status)
{
	return status >= 200 && status <= 299;
}

/* Fills err for a document that is not a usable STS answer.  A non-2xx
 * status says more than "Malformed", so it becomes the code. */
static void set_malformed(struct exchange_error *err, int http_status,
			  const char *why)
{
	if (!is_2xx(http_status) && http_status > 0) {
		snprintf(err->code, sizeof(err->code), "HTTP%d", http_status);
		snprintf(err->message, sizeof(err->message),
			 "STS answered HTTP %d (%s)", http_status, why);
	} else {
		snprintf(err->code, sizeof(err->code), "Malformed");
		snprintf(err->message, sizeof(err->message),
			 "unusable STS response: %s", why);
	}
	err->retryable = sts_is_retryable(http_status, err->code);
}

/* Whether s is min..max characters, all from set. */
static int made_of(const char *s, const char *set, size_t min, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	return s && n >= min && n <= max && strspn(s, set) == n;
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* The character sets AWS uses for each value: anything else is refused
 * before it can reach a document (an env file is sourced by a shell,
 * process.json is parsed as JSON).  The reason never quotes the value. */
static const char *check_values(struct parse_state *st)
{
	if (!made_of(st->fields[F_ACCESS_KEY_ID], ALNUM "_", 16, 128))
		return "AccessKeyId has characters or a length AWS never uses";
	if (!made_of(st->fields[F_SECRET_ACCESS_KEY], ALNUM "/+=", 16, 128))
		return "SecretAccessKey has characters or a length AWS never uses";
	if (!made_of(st->fields[F_SESSION_TOKEN], ALNUM "/+=", 1,
		     STS_SESSION_TOKEN_MAX))
		return "SessionToken has characters or a length AWS never uses";
	if (st->fields[F_ROLE_ARN] &&
	    !made_of(st->fields[F_ROLE_ARN], ALNUM "+=,.@_/:-", 1, 2048))
		return "AssumedRoleUser/Arn is not an ARN";
	if (st->fields[F_ROLE_ID] &&
	    !made_of(st->fields[F_ROLE_ID], ALNUM "+=,.@_:-", 1, 256))
		return "AssumedRoleUser/AssumedRoleId has characters AWS never uses";
	return NULL;
}

/* Moves the parsed fields of a success document into out; -1 with the
 * reason in *why if one is missing or bad. */
static int take_credentials(struct parse_state *st, struct sts_credentials *out,
			    const char **why)
{
	int64_t exp;

	for (int f = F_ACCESS_KEY_ID; f <= F_EXPIRATION; f++) {
		if (!st->fields[f] || !st->fields[f][0]) {
			*why = f == F_ACCESS_KEY_ID ? "no AccessKeyId" :
			       f == F_SECRET_ACCESS_KEY ? "no SecretAccessKey" :
			       f == F_SESSION_TOKEN ? "no SessionToken" :
						      "no Expiration";
			return -1;
		}
	}
	if (clock_parse_iso8601(st->fields[F_EXPIRATION], &exp)) {
		*why = "Expiration is not an ISO 8601 UTC time";
		return -1;
	}
	*why = check_values(st);
	if (*why)
		return -1;
	memset(out, 0, sizeof(*out));
	out->access_key_id = st->fields[F_ACCESS_KEY_ID];
	out->secret_access_key = st->fields[F_SECRET_ACCESS_KEY];
	out->session_token = st->fields[F_SESSION_TOKEN];
	out->assumed_role_arn = st->fields[F_ROLE_ARN];
	out->assumed_role_id = st->fields[F_ROLE_ID];
	out->expiration = exp;
	st->fields[F_ACCESS_KEY_ID] = NULL;
	st->fields[F_SECRET_ACCESS_KEY] = NULL;
	st->fields[F_SESSION_TOKEN] = NULL;
	st->fields[F_ROLE_ARN] = NULL;
	st->fields[F_ROLE_ID] = NULL;
	return 0;
}

/* What a parsed document says: credentials (0) or the error it carries,
 * or why it is not one STS would send (-1, err filled). */
static int take_document(struct parse_state *st, int http_status,
			 struct sts_credentials *out, struct exchange_error *err)
{
	const char *reason = NULL;

	switch (st->kind) {
	case DOC_SUCCESS:
		if (!is_2xx(http_status)) {
			set_malformed(err, http_status,
				      "a success document with an error status");
			return -1;
		}
		if (take_credentials(st, out, &reason)) {
			set_malformed(err, http_status, reason);
			return -1;
		}
		return 0;
	case DOC_ERROR:
		if (!st->fields[F_ERR_CODE] || !st->fields[F_ERR_CODE][0]) {
			set_malformed(err, http_status,
				      "an error document without a Code");
			return -1;
		}
		exchange_copy_text(err->code, sizeof(err->code),
				   st->fields[F_ERR_CODE]);
		exchange_copy_text(err->message, sizeof(err->message),
				   st->fields[F_ERR_MESSAGE] ?
					   st->fields[F_ERR_MESSAGE] :
					   "(no message)");
		err->retryable = sts_is_retryable(http_status, err->code);
		return -1;
	default:
		set_malformed(err, http_status, "not an STS document");
		return -1;
	}
}

int sts_parse_response(const char *body, size_t len, int http_status,
		       struct sts_credentials *out, struct exchange_error *err)
{
	struct parse_state st = { 0 };
	char why[128];
	const char *reason = NULL;
	int ret = -1;

	memset(err, 0, sizeof(*err));
	err->http_status = http_status;
	buf_init(&st.text, STS_TEXT_MAX);
	if (!body || len == 0) {
		set_malformed(err, http_status, "empty body");
		return -1;
	}
	if (len > HTTP_BODY_MAX) {
		set_malformed(err, http_status, "body too large");
		return -1;
	}
	st.parser = XML_ParserCreateNS(NULL, ' ');
	if (!st.parser) {
		set_malformed(err, http_status, "out of memory");
		return -1;
	}
	XML_SetUserData(st.parser, &st);
	XML_SetElementHandler(st.parser, on_start, on_end);
	XML_SetCharacterDataHandler(st.parser, on_text);
	XML_SetStartDoctypeDeclHandler(st.parser, on_doctype);
	XML_SetEntityDeclHandler(st.parser, on_entity);
	XML_SetParamEntityParsing(st.parser, XML_PARAM_ENTITY_PARSING_NEVER);

	if (XML_Parse(st.parser, body, (int)len, XML_TRUE) != XML_STATUS_OK ||
	    st.fail) {
		if (st.fail) {
			reason = st.fail;
		} else {
			/* expat's messages are fixed strings, never input. */
			snprintf(why, sizeof(why),
				 "not well-formed XML (%s at line %lu)",
				 XML_ErrorString(XML_GetErrorCode(st.parser)),
				 (unsigned long)XML_GetCurrentLineNumber(
					 st.parser));
			reason = why;
		}
		set_malformed(err, http_status, reason);
		goto out;
	}

	ret = take_document(&st, http_status, out, err);

out:
	parse_state_free(&st);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Retries                                                             */

int sts_is_retryable(int http_status, const char *code)
{
	static const char *const codes[] = {
		"RequestTimeout", "RequestTimeoutException",
		"PriorRequestNotComplete", "IDPCommunicationError",
		"Throttling", "ThrottlingException", "ThrottledException",
		"RequestThrottledException", "TooManyRequestsException",
		"RequestLimitExceeded", "SlowDown", "LimitExceededException",
		"Transport",
	};

	if (http_status == 500 || http_status == 502 || http_status == 503 ||
	    http_status == 504)
		return 1;
	if (!code)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (!strcmp(code, codes[i]))
			return 1;
	return 0;
}

long sts_backoff_ms(int retry, double rand01)
{
	long cap_s = 20, base_s;

	if (retry < 1)
		retry = 1;
	if (!(rand01 >= 0.0))	/* also catches NaN */
		rand01 = 0.0;
	if (rand01 > 1.0)
		rand01 = 1.0;
	base_s = retry - 1 >= 5 ? cap_s : 1L << (retry - 1);
	if (base_s > cap_s)
		base_s = cap_s;
	return (long)(rand01 * (double)base_s * 1000.0);
}

/* ------------------------------------------------------------------ */
/* The exchange                                                        */

/* The endpoint with a trailing '/'; NULL when out of memory. */
static char *endpoint_url(const char *endpoint)
{
	size_t n = strlen(endpoint);
	char *url = malloc(n + 2);

	if (!url)
		return NULL;
	memcpy(url, endpoint, n + 1);
	if (n == 0 || endpoint[n - 1] != '/') {
		url[n] = '/';
		url[n + 1] = '\0';
	}
	return url;
}

/* The Host header and path the request will carry, as libcurl would write
 * them: "host" for a default port, "host:port" otherwise. */
static int url_host_path(const char *url, char **host, char **path)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL, *p = NULL;
	struct buf b;
	int ret = -1;

	*host = NULL;
	*path = NULL;
	if (!u)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &p, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (port && ((!strcmp(scheme, "https") && !strcmp(port, "443")) ||
		     (!strcmp(scheme, "http") && !strcmp(port, "80")))) {
		curl_free(port);
		port = NULL;
	}
	buf_init(&b, 4096);
	if (buf_printf(&b, "%s%s%s", h, port ? ":" : "", port ? port : ""))
		goto out;
	*host = buf_steal(&b);
	*path = strdup(p);
	if (!*host || !*path) {
		free(*host);
		free(*path);
		*host = NULL;
		*path = NULL;
		goto out;
	}
	ret = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_free(p);
	curl_url_cleanup(u);
	return ret;
}

static void set_error(struct exchange_error *err, const char *code, int retryable,
		      const char *message)
{
	memset(err, 0, sizeof(*err));
	exchange_copy_text(err->code, sizeof(err->code), code);
	exchange_copy_text(err->message, sizeof(err->message), message);
	err->retryable = retryable;
}

/* The headers of one attempt.  For AssumeRole they are SigV4-signed at
 * the current time; *auth then owns the Authorization value. */
#define STS_MAX_HEADERS 8
struct attempt_headers {
	struct http_header h[STS_MAX_HEADERS];
	size_t n;
	char date[17];
	struct sigv4_result sig;
	int signed_;
};

static int build_headers(const struct sts_request *req, const char *host,
			 const char *path, const char *body,
			 struct attempt_headers *ah, struct exchange_error *err)
{
	const struct sts_credentials *src = req->source;
	struct sigv4_request sr;

	memset(ah, 0, sizeof(*ah));
	if (req->action != STS_ASSUME_ROLE) {
		ah->h[ah->n++] = (struct http_header){ "Content-Type",
						       STS_CONTENT_TYPE };
		ah->h[ah->n++] = (struct http_header){ "User-Agent",
						       STS_USER_AGENT };
		return 0;
	}
	if (!src || !src->access_key_id || !src->secret_access_key) {
		set_error(err, "Internal", 0,
			  "AssumeRole needs source credentials to sign with");
		return -1;
	}
	sigv4_format_date((long long)clock_wall(), ah->date);
	ah->h[ah->n++] = (struct http_header){ "host", host };
	ah->h[ah->n++] = (struct http_header){ "content-type",
					       STS_CONTENT_TYPE };
	ah->h[ah->n++] = (struct http_header){ "x-amz-date", ah->date };
	if (src->session_token)
		ah->h[ah->n++] = (struct http_header){ "x-amz-security-token",
						       src->session_token };
	sr = (struct sigv4_request){
		.method = "POST",
		.path = path,
		.query = NULL,
		.headers = ah->h,
		.n_headers = ah->n,
		.payload = body,
		.payload_len = strlen(body),
		.region = req->region ? req->region : "us-east-1",
		.service = "sts",
		.amz_date = ah->date,
		.access_key_id = src->access_key_id,
		.secret_access_key = src->secret_access_key,
		.session_token = src->session_token,
	};
	if (sigv4_sign(&sr, &ah->sig)) {
		set_error(err, "Internal", 0, "SigV4 signing failed");
		return -1;
	}
	ah->signed_ = 1;
	ah->h[ah->n++] = (struct http_header){ "authorization",
					       ah->sig.authorization };
	ah->h[ah->n++] = (struct http_header){ "user-agent", STS_USER_AGENT };
	return 0;
}

static void free_headers(struct attempt_headers *ah)
{
	if (ah->signed_)
		sigv4_result_free(&ah->sig);
	memset(ah, 0, sizeof(*ah));
}

/* One HTTP attempt: 0 with *out, or -1 with err. */
static int attempt(const struct sts_request *req, const char *url,
		   const char *host, const char *path, const char *body,
		   struct sts_credentials *out, struct exchange_error *err)
{
	struct attempt_headers ah;
	struct http_request hr;
	struct http_response resp;
	char errbuf[256];
	int rc, ret = -1;

	if (build_headers(req, host, path, body, &ah, err))
		return -1;
	hr = (struct http_request){
		.url = url,
		.headers = ah.h,
		.n_headers = ah.n,
		.body = body,
		.body_len = strlen(body),
		.ca_file = req->ca_file,
		.connect_timeout_ms = req->connect_timeout_ms,
		.timeout_ms = req->timeout_ms,
	};
	rc = http_post(&hr, &resp, errbuf, sizeof(errbuf));
	switch (rc) {
	case HTTP_OK:
		ret = sts_parse_response(resp.body.data, resp.body.len,
					 (int)resp.status, out, err);
		http_response_free(&resp);
		break;
	case HTTP_ERR_TRANSPORT:
		set_error(err, "Transport", 1,
			  errbuf[0] ? errbuf : "transport error");
		break;
	case HTTP_ERR_TLS:
		set_error(err, "TLS", 0, errbuf[0] ? errbuf : "TLS error");
		break;
	case HTTP_ERR_TOO_BIG:
		set_error(err, "Malformed", 0, "response larger than 256 KiB");
		break;
	default:
		set_error(err, "Internal", 0,
			  errbuf[0] ? errbuf : "internal HTTP error");
		break;
	}
	free_headers(&ah);
	return ret;
}

int sts_send(const struct sts_request *req, struct sts_credentials *out,
	     struct exchange_error *err)
{
	char *body = NULL, *url = NULL, *host = NULL, *path = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	if (!req->endpoint) {
		set_error(err, "Internal", 0, "no STS endpoint");
		return -1;
	}
	body = sts_build_body(req);
	url = endpoint_url(req->endpoint);
	if (!body || !url) {
		set_error(err, "Internal", 0, "out of memory");
		goto out;
	}
	if (req->action == STS_ASSUME_ROLE &&
	    url_host_path(url, &host, &path)) {
		set_error(err, "Internal", 0, "STS endpoint is not a valid URL");
		goto out;
	}
	ret = attempt(req, url, host, path, body, out, err);
out:
	secret_free(body);
	free(url);
	free(host);
	free(path);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Credentials                                                         */

void sts_credentials_clear(struct sts_credentials *c)
{
	secret_free(c->access_key_id);
	secret_free(c->secret_access_key);
	secret_free(c->session_token);
	/* Parsed like the secrets, so possibly in the secure heap. */
	secret_free(c->assumed_role_arn);
	secret_free(c->assumed_role_id);
	memset(c, 0, sizeof(*c));
}

int sts_credentials_copy(struct sts_credentials *dst,
			 const struct sts_credentials *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->expiration = src->expiration;
	if ((src->access_key_id &&
	     !(dst->access_key_id = secret_strdup(src->access_key_id))) ||
	    (src->secret_access_key &&
	     !(dst->secret_access_key =
		       secret_strdup(src->secret_access_key))) ||
	    (src->session_token &&
	     !(dst->session_token = secret_strdup(src->session_token))) ||
	    (src->assumed_role_arn &&
	     !(dst->assumed_role_arn = strdup(src->assumed_role_arn))) ||
	    (src->assumed_role_id &&
	     !(dst->assumed_role_id = strdup(src->assumed_role_id)))) {
		sts_credentials_clear(dst);
		return -1;
	}
	return 0;
}
