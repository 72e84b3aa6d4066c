#include "kind_azure.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"
#include "percent.h"

#define ASSERTION_TYPE_JWT "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define BODY_MAX (64 * 1024)
#define URL_MAX 4096

static const struct oauth_answer entra_answer = {
	.label = "Entra ID",
	.dialect = OAUTH_ENTRA,
	.token_field = "access_token",
	.expires_in_field = "expires_in",
	/* The v1 endpoints and some sovereign clouds send it as a string. */
	.expires_in_text = 1,
};

char *azure_token_url(const struct cfg_role *role)
{
	const struct cfg_azure *a = &role->x.azure;
	struct buf b;

	/* authority_host ends with "/" and the tenant is a GUID: neither
	 * needs escaping. */
	buf_init(&b, URL_MAX);
	if (buf_printf(&b, "%s%s/oauth2/v2.0/token", a->authority_host,
		       a->tenant_id))
		return NULL;
	return buf_steal(&b);
}

char *azure_token_request_body(const struct cfg_role *role,
			       const char *assertion)
{
	const struct cfg_azure *a = &role->x.azure;
	struct buf b;
	int r;

	buf_init(&b, BODY_MAX);
	r = percent_form_add(&b, "client_id", a->client_id);
	r = r ? r : percent_form_add(&b, "scope", a->scope);
	r = r ? r : percent_form_add(&b, "client_assertion_type",
				     ASSERTION_TYPE_JWT);
	r = r ? r : percent_form_add(&b, "client_assertion", assertion);
	r = r ? r : percent_form_add(&b, "grant_type", "client_credentials");
	if (r) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

int azure_parse_token_response(const char *body, size_t len, int http_status,
			       int64_t now, struct oauth_token *out,
			       struct exchange_error *err)
{
	return oauth_parse_answer(body, len, http_status, now, &entra_answer,
				  out, err);
}

/* The one request of a renewal: the role's token as the client's
 * assertion, for an access token to scope. */
static int client_credentials(const struct kind_request *req,
			      struct oauth_token *got,
			      struct exchange_error *err)
{
	static const struct http_header headers[] = {
		{ "Content-Type", OAUTH_FORM_TYPE },
		{ "Accept", "application/json" },
		{ "User-Agent", OAUTH_USER_AGENT },
	};
	struct http_request hr = {
		.headers = headers,
		.n_headers = ARRAY_SIZE(headers),
		.ca_file = req->role->x.ca_file,
		.connect_timeout_ms = req->connect_timeout_ms,
		.timeout_ms = req->timeout_ms,
	};
	char *assertion = NULL, *body = NULL, *url = NULL;
	int rc = -1;

	if (!req->token) {
		exchange_error_set(err, "Internal", "no web identity token to present");
		return -1;
	}
	assertion = oauth_subject_token(req->token);
	body = assertion ? azure_token_request_body(req->role, assertion) : NULL;
	url = azure_token_url(req->role);
	if (!body || !url) {
		exchange_error_set(err, "NoMemory", "out of memory");
		goto out;
	}
	hr.url = url;
	hr.body = body;
	hr.body_len = strlen(body);
	rc = oauth_exchange(&hr, &entra_answer, assertion, got, err);
out:
	secret_free(body);
	secret_free(assertion);
	free(url);
	return rc;
}

static enum kind_result azure_request(struct kind_request *req,
				      struct creds *out,
				      struct exchange_error *err)
{
	struct oauth_token got = { 0 };

	if (req->step != 0) {
		exchange_error_set(err, "Internal", "no step %d in an azure exchange",
				   req->step);
		return KIND_FAILED;
	}
	if (client_credentials(req, &got, err))
		return KIND_FAILED;
	memset(out, 0, sizeof(*out));
	out->access_token = got.access_token;
	out->expires = got.expires;
	return KIND_DONE;
}

const struct kind_ops kind_azure = {
	.name = "azure",
	.request = azure_request,
};
