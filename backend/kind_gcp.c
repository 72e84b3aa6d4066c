#include "kind_gcp.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "buf.h"
#include "http.h"
#include "percent.h"

#define GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define TOKEN_TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"
#define SCOPE_CLOUD_PLATFORM "https://www.googleapis.com/auth/cloud-platform"
#define BODY_MAX (64 * 1024)
#define URL_MAX 4096

enum step {
	STEP_EXCHANGE = 0,		/* Google STS */
	STEP_IMPERSONATE = 1,		/* IAM Credentials */
};

static const struct oauth_answer sts_answer = {
	.label = "Google STS",
	.dialect = OAUTH_GOOGLE,
	.token_field = "access_token",
	.expires_in_field = "expires_in",
	.issued_token_type = TOKEN_TYPE_ACCESS,
};

static const struct oauth_answer iam_answer = {
	.label = "generateAccessToken",
	.dialect = OAUTH_GOOGLE,
	.token_field = "accessToken",
	.expire_time_field = "expireTime",
};

/* ---- requests ----------------------------------------------------------- */

char *gcp_token_request_body(const struct cfg_role *role,
			     const char *subject_token)
{
	const struct cfg_gcp *g = &role->x.gcp;
	struct buf b;
	int r;

	/* The order google-auth-library sends them in. */
	buf_init(&b, BODY_MAX);
	r = percent_form_add(&b, "grant_type", GRANT_TOKEN_EXCHANGE);
	r = r ? r : percent_form_add(&b, "audience", role->x.audience);
	r = r ? r : percent_form_add(&b, "scope", g->service_account ?
					  SCOPE_CLOUD_PLATFORM : g->scope);
	r = r ? r : percent_form_add(&b, "requested_token_type",
				     TOKEN_TYPE_ACCESS);
	r = r ? r : percent_form_add(&b, "subject_token", subject_token);
	r = r ? r : percent_form_add(&b, "subject_token_type", TOKEN_TYPE_JWT);
	if (r) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

char *gcp_iam_url(const struct cfg_role *role)
{
	const struct cfg_gcp *g = &role->x.gcp;
	struct buf b;

	/* The e-mail address needs no escaping in a path: the configuration
	 * allows letters, digits, . + _ - and @ only. */
	buf_init(&b, URL_MAX);
	if (buf_printf(&b, "%s/projects/-/serviceAccounts/%s:generateAccessToken",
		       g->impersonation_url, g->service_account))
		return NULL;
	return buf_steal(&b);
}

char *gcp_iam_request_body(const struct cfg_role *role)
{
	json_t *scopes = json_array(), *doc = NULL;
	const char *p = role->x.gcp.scope;
	char *text = NULL;

	/* The configuration keeps scopes separated by one space each. */
	while (scopes && *p) {
		size_t n = strcspn(p, " ");

		if (n && json_array_append_new(scopes, json_stringn(p, n)))
			goto out;
		p += n + (p[n] == ' ');
	}
	doc = json_pack("{s:O, s:s}", "scope", scopes, "lifetime",
			GCP_SA_LIFETIME);
	if (doc)
		text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(doc);
	json_decref(scopes);
	return text;
}

/* ---- answers ------------------------------------------------------------ */

int gcp_parse_token_response(const char *body, size_t len, int http_status,
			     int64_t now, struct oauth_token *out,
			     struct exchange_error *err)
{
	return oauth_parse_answer(body, len, http_status, now, &sts_answer,
				  out, err);
}

int gcp_parse_iam_response(const char *body, size_t len, int http_status,
			   int64_t now, struct oauth_token *out,
			   struct exchange_error *err)
{
	return oauth_parse_answer(body, len, http_status, now, &iam_answer,
				  out, err);
}

/* ---- the kind ----------------------------------------------------------- */

/* POSTs body to url with headers and parses the answer as a describes:
 * 0 with *out, or -1 with err (never quoting secret, the request's
 * credential). */
static int post(const struct kind_request *req, const char *url,
		const struct http_header *headers, size_t n_headers,
		const char *body, const struct oauth_answer *a,
		const char *secret, struct oauth_token *out,
		struct exchange_error *err)
{
	struct http_request hr = {
		.url = url,
		.headers = headers,
		.n_headers = n_headers,
		.body = body,
		.body_len = strlen(body),
		.ca_file = req->role->x.ca_file,
		.connect_timeout_ms = req->connect_timeout_ms,
		.timeout_ms = req->timeout_ms,
	};

	return oauth_exchange(&hr, a, secret, out, err);
}

/* Step 0: the role's token for a federated access token. */
static int token_exchange(const struct kind_request *req,
			  struct oauth_token *got, struct exchange_error *err)
{
	static const struct http_header headers[] = {
		{ "Content-Type", OAUTH_FORM_TYPE },
		{ "Accept", "application/json" },
		{ "User-Agent", OAUTH_USER_AGENT },
	};
	char *subject, *body = NULL;
	int rc = -1;

	if (!req->token) {
		exchange_error_set(err, "Internal", "no web identity token to exchange");
		return -1;
	}
	subject = oauth_subject_token(req->token);
	body = subject ? gcp_token_request_body(req->role, subject) : NULL;
	if (!body)
		exchange_error_set(err, "NoMemory", "out of memory");
	else
		rc = post(req, req->role->x.gcp.token_url, headers,
			  ARRAY_SIZE(headers), body, &sts_answer, subject, got,
			  err);
	secret_free(body);
	secret_free(subject);
	return rc;
}

/* Step 1: the federated token (the carry) for the service account's. */
static int impersonate(const struct kind_request *req,
		       struct oauth_token *got, struct exchange_error *err)
{
	char *url = NULL, *body = NULL;
	struct http_header headers[4];
	struct buf auth;
	int rc = -1;

	if (!req->carry || !oauth_token_ok(req->carry, strlen(req->carry))) {
		exchange_error_set(err, "Internal",
				   "generateAccessToken: no token from the token exchange to call it with");
		return -1;
	}
	buf_init(&auth, OAUTH_TOKEN_MAX + 16);
	url = gcp_iam_url(req->role);
	body = gcp_iam_request_body(req->role);
	if (!url || !body || buf_printf(&auth, "Bearer %s", req->carry)) {
		exchange_error_set(err, "NoMemory", "out of memory");
		goto out;
	}
	headers[0] = (struct http_header){ "Content-Type", "application/json" };
	headers[1] = (struct http_header){ "Accept", "application/json" };
	headers[2] = (struct http_header){ "Authorization", auth.data };
	headers[3] = (struct http_header){ "User-Agent", OAUTH_USER_AGENT };
	rc = post(req, url, headers, ARRAY_SIZE(headers), body, &iam_answer,
		  req->carry, got, err);
	if (rc)
		oauth_withhold(err, req->token);
out:
	buf_free(&auth);
	free(url);
	free(body);
	return rc;
}

static enum kind_result gcp_request(struct kind_request *req,
				    struct creds *out,
				    struct exchange_error *err)
{
	struct oauth_token got = { 0 };

	switch (req->step) {
	case STEP_EXCHANGE:
		if (token_exchange(req, &got, err))
			return KIND_FAILED;
		if (req->role->x.gcp.service_account) {
			secret_free(req->carry);
			req->carry = got.access_token;
			return KIND_NEXT;
		}
		break;
	case STEP_IMPERSONATE:
		if (impersonate(req, &got, err))
			return KIND_FAILED;
		break;
	default:
		exchange_error_set(err, "Internal", "no step %d in a gcp exchange",
				   req->step);
		return KIND_FAILED;
	}
	memset(out, 0, sizeof(*out));
	out->access_token = got.access_token;
	out->expires = got.expires;
	return KIND_DONE;
}

const struct kind_ops kind_gcp = {
	.name = "gcp",
	.request = gcp_request,
};
