#include "render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

static int render_credentials(const struct creds *c, struct buf *out)
{
	/* Only aws_session_token: botocore reads the legacy
	 * aws_security_token first and would let it win. */
	return buf_printf(out,
			  "[default]\n"
			  "aws_access_key_id = %s\n"
			  "aws_secret_access_key = %s\n"
			  "aws_session_token = %s\n",
			  c->sts.access_key_id, c->sts.secret_access_key,
			  c->sts.session_token);
}

static int render_process_json(const struct creds *c, struct buf *out)
{
	char exp[21];

	/* Every value is base64 or a timestamp: nothing needs escaping. */
	clock_format_rfc3339(c->sts.expiration, exp);
	return buf_printf(out,
			  "{\"Version\": 1, \"AccessKeyId\": \"%s\", "
			  "\"SecretAccessKey\": \"%s\", \"SessionToken\": \"%s\", "
			  "\"Expiration\": \"%s\"}\n",
			  c->sts.access_key_id, c->sts.secret_access_key,
			  c->sts.session_token, exp);
}

static int render_env(const struct cfg_role *role, const struct creds *c,
		      struct buf *out)
{
	return buf_printf(out,
			  "AWS_ACCESS_KEY_ID=%s\n"
			  "AWS_SECRET_ACCESS_KEY=%s\n"
			  "AWS_SESSION_TOKEN=%s\n"
			  "AWS_REGION=%s\n"
			  "AWS_DEFAULT_REGION=%s\n",
			  c->sts.access_key_id, c->sts.secret_access_key,
			  c->sts.session_token, role->region, role->region);
}

static int render_expiry(const struct creds *c, struct buf *out)
{
	char exp[21];

	clock_format_rfc3339(c->sts.expiration, exp);
	return buf_printf(out, "%s\n", exp);
}

static int render_with_credentials(struct engine *e,
				   const struct cfg_role *role, size_t i,
				   enum role_file f, struct buf *out)
{
	struct creds *c;
	int r = engine_get_credentials(e, i, &c);

	if (r)
		return r;
	switch (f) {
	case ROLE_CREDENTIALS:
		r = render_credentials(c, out);
		break;
	case ROLE_PROCESS_JSON:
		r = render_process_json(c, out);
		break;
	case ROLE_ENV:
		r = render_env(role, c, out);
		break;
	case ROLE_EXPIRY:
		r = render_expiry(c, out);
		break;
	default:
		r = -EINVAL;
	}
	creds_unref(c);
	return r;
}

int render_role_file(struct engine *e, const struct cfg_role *role, size_t i,
		     enum role_file f, struct buf *out)
{
	char *text;
	int r;

	switch (f) {
	case ROLE_CONFIG:
		return buf_printf(out, "[default]\nregion = %s\n", role->region);
	case ROLE_STATUS:
		text = engine_status(e, i);
		if (!text)
			return -ENOMEM;
		r = buf_append_str(out, text);
		free(text);
		return r;
	case ROLE_TOKEN:
		r = engine_get_token(e, i, &text);
		if (r)
			return r;
		r = buf_append_str(out, text);
		secret_free(text);
		return r;
	default:
		return render_with_credentials(e, role, i, f, out);
	}
}
