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
			  c->sts.session_token, role->x.aws.region, role->x.aws.region);
}

static int render_expiry(const struct creds *c, struct buf *out)
{
	char exp[21];

	clock_format_rfc3339(c->sts.expiration, exp);
	return buf_printf(out, "%s\n", exp);
}

/* Appends path as one shell word: as is when it needs no quoting (always
 * so for a consumer_path), else in single quotes. */
static int append_shell_word(struct buf *out, const char *path)
{
	static const char plain[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"/._-+@=,:~%";
	int r;

	if (strspn(path, plain) == strlen(path))
		return buf_append_str(out, path);
	r = buf_append_str(out, "'");
	if (r)
		return r;
	for (const char *c = path; *c; c++) {
		r = *c == '\'' ? buf_append_str(out, "'\\''") :
				 buf_append(out, c, 1);
		if (r)
			return r;
	}
	return buf_append_str(out, "'");
}

/* The role's config: region, and for long-running SDK processes either a
 * credential_process or a web identity profile that reads this directory
 * where the consumer sees it (consumer_path, else MOUNTPOINT/NAME). */
static int render_config(const struct cfg_role *role, const char *mountpoint,
			 struct buf *out)
{
	struct buf dir;
	int r;

	r = buf_printf(out, "[default]\nregion = %s\n", role->x.aws.region);
	if (r || role->pres.config_style == CFG_STYLE_REGION)
		return r;
	buf_init(&dir, RENDER_MAX);
	if (role->pres.consumer_path)
		r = buf_append_str(&dir, role->pres.consumer_path);
	else
		r = buf_printf(&dir, "%s%s%s", mountpoint,
			       strcmp(mountpoint, "/") ? "/" : "", role->name);
	if (r)
		goto out;
	if (role->pres.config_style == CFG_STYLE_PROCESS) {
		r = buf_append_str(out, "credential_process = cat ");
		if (!r)
			r = append_shell_word(out, dir.data);
		if (!r)
			r = buf_append_str(out, "/process.json\n");
	} else {
		r = buf_printf(out,
			       "role_arn = %s\n"
			       "web_identity_token_file = %s/token\n"
			       "role_session_name = %s\n",
			       role->x.aws.role_arn, dir.data, role->x.aws.session_name);
	}
out:
	buf_free(&dir);
	return r;
}

static int render_with_credentials(struct engine *e,
				   const struct cfg_role *role, size_t i,
				   enum role_file f, enum render_mode mode,
				   struct buf *out)
{
	struct creds *c;
	int r = mode == RENDER_WAIT ? engine_get_credentials(e, i, &c)
				    : engine_peek_credentials(e, i, &c);

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
		     enum role_file f, const char *mountpoint,
		     enum render_mode mode, struct buf *out)
{
	char *text;
	int r;

	switch (f) {
	case ROLE_CONFIG:
		return render_config(role, mountpoint, out);
	case ROLE_STATUS:
		text = engine_status(e, i);
		if (!text)
			return -ENOMEM;
		r = buf_append_str(out, text);
		free(text);
		return r;
	case ROLE_TOKEN:
		if (mode == RENDER_PEEK &&
		    role->x.token_source == CFG_TOKEN_SIGNED)
			r = engine_peek_token(e, i, &text);
		else
			r = engine_get_token(e, i, &text);
		if (r)
			return r;
		r = buf_append_str(out, text);
		secret_free(text);
		return r;
	default:
		return render_with_credentials(e, role, i, f, mode, out);
	}
}

int render_is_padded(enum role_file f)
{
	return f == ROLE_CREDENTIALS || f == ROLE_ENV ||
	       f == ROLE_PROCESS_JSON || f == ROLE_STATUS;
}

int render_pad(enum role_file f, struct buf *b, size_t to)
{
	size_t n;
	char *fill;
	int r;

	if (to <= b->len)
		return 0;
	n = to - b->len;
	fill = malloc(n);
	if (!fill)
		return -ENOMEM;
	memset(fill, ' ', n);
	if (f == ROLE_CREDENTIALS || f == ROLE_ENV) {
		/* A comment line: "#", blanks, newline (or a lone newline). */
		fill[0] = n == 1 ? '\n' : '#';
		fill[n - 1] = '\n';
		r = buf_append(b, fill, n);
	} else {
		/* JSON: blanks before the final newline. */
		if (b->len && b->data[b->len - 1] == '\n')
			b->len--;
		else
			n--;
		r = buf_append(b, fill, n);
		if (!r)
			r = buf_append(b, "\n", 1);
	}
	free(fill);
	return r;
}
