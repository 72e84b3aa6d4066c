#include "cloudfiles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "jsonout.h"
#include "render.h"

int consumer_dir(const char *mountpoint, const struct cfg_role *role,
		 struct buf *dir)
{
	if (role->pres.consumer_path)
		return buf_append_str(dir, role->pres.consumer_path);
	return buf_printf(dir, "%s%s%s", mountpoint,
			  strcmp(mountpoint, "/") ? "/" : "", role->name);
}

int cloud_gcp_credentials_json(const char *mountpoint,
			       const struct cfg_role *role, struct buf *out)
{
	const struct cfg_gcp *g = &role->x.gcp;
	struct buf dir, url;
	json_t *o;
	char *text = NULL;
	int r;

	buf_init(&dir, RENDER_MAX);
	buf_init(&url, RENDER_MAX);
	r = consumer_dir(mountpoint, role, &dir);
	if (!r)
		r = buf_append_str(&dir, "/token");
	if (!r && g->service_account)
		r = buf_printf(&url, "%s/projects/-/serviceAccounts/%s:generateAccessToken",
			       g->impersonation_url, g->service_account);
	if (r)
		goto out;
	o = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}}}",
		      "type", "external_account",
		      "audience", role->x.audience,
		      "subject_token_type", "urn:ietf:params:oauth:token-type:jwt",
		      "token_url", g->token_url,
		      "credential_source", "file", dir.data, "format", "type", "text");
	if (o && g->service_account)
		json_object_set_new(o, "service_account_impersonation_url",
				    json_string(url.data));
	text = json_document(o);
	r = text ? buf_append_str(out, text) : -ENOMEM;
out:
	free(text);
	buf_free(&dir);
	buf_free(&url);
	return r;
}

int cloud_azure_env(const char *mountpoint, const struct cfg_role *role,
		    struct buf *out)
{
	const struct cfg_azure *a = &role->x.azure;
	struct buf dir;
	int r;

	buf_init(&dir, RENDER_MAX);
	r = consumer_dir(mountpoint, role, &dir);
	if (!r)
		r = buf_printf(out,
			       "AZURE_CLIENT_ID=%s\n"
			       "AZURE_TENANT_ID=%s\n"
			       "AZURE_FEDERATED_TOKEN_FILE=%s/token\n"
			       "AZURE_AUTHORITY_HOST=%s\n",
			       a->client_id, a->tenant_id, dir.data,
			       a->authority_host);
	buf_free(&dir);
	return r;
}
