#include "render.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "clock.h"
#include "cloudfiles.h"
#include "endpoint_token.h"
#include "metrics.h"
#include "status.h"

/* Padded sizes grow in these steps (docs.c adds headroom). */
#define PAD_STEP 512
/* A consumer needs a moment to use what it read. */
#define VALID_MARGIN_MS 1000

/* ---- documents and their lifetimes ---------------------------------- */

/* How long the kernel may keep attributes until wall time t: never past
 * TIMEOUT_STEADY, never negative. */
static double timeout_until(int64_t t)
{
	int64_t left = t - clock_wall();

	if (left <= 0)
		return 0.0;
	return left < (int64_t)TIMEOUT_STEADY ? (double)left : TIMEOUT_STEADY;
}

/* The boot-clock moment a wall time t is reached, less the margin. */
static int64_t boot_of_wall(int64_t t)
{
	return clock_boot_ms() + (t - clock_wall()) * 1000 - VALID_MARGIN_MS;
}

/* A document from b (taken over), with mtime sec.nsec. */
static int make_doc(struct buf *b, int64_t sec, uint64_t nsec,
		    struct doc **out)
{
	size_t len = b->len;
	char *data = buf_steal(b);

	*out = NULL;
	if (!data)
		return -ENOMEM;
	*out = doc_new(data, len);
	if (!*out)
		return -ENOMEM;
	(*out)->mtime.tv_sec = (time_t)sec;
	(*out)->mtime.tv_nsec = (long)(nsec % 1000000000ULL);
	return 0;
}

/* A document that changes only on reload. */
static int steady_doc(struct credfs *fs, struct buf *b, struct doc **out)
{
	int r = make_doc(b, fs->started, 0, out);

	if (!r)
		(*out)->attr_timeout = TIMEOUT_STEADY;
	return r;
}

/* A document showing credentials c: valid while they are, attributes
 * kept until their refresh point. */
static int creds_doc(struct buf *b, const struct creds *c, struct doc **out)
{
	int r = make_doc(b, c->obtained, c->version, out);

	if (!r) {
		(*out)->version = c->version;
		(*out)->valid_until_boot = boot_of_wall(c->expires);
		(*out)->attr_timeout = timeout_until(creds_refresh_at(c));
	}
	return r;
}

int render_is_padded(enum role_file f)
{
	return f == ROLE_CREDENTIALS || f == ROLE_ENV ||
	       f == ROLE_PROCESS_JSON || f == ROLE_STATUS;
}

/* Pads b of file f to the steady size of ino in a way its readers ignore:
 * a trailing comment line for credentials and env, blanks before the
 * final newline for JSON. */
static int pad(struct credfs *fs, struct buf *b, enum role_file f,
	       fuse_ino_t ino)
{
	size_t to = docs_steady_size(&fs->docs, ino, b->len, PAD_STEP), n;
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
		fill[0] = n == 1 ? '\n' : '#';
		fill[n - 1] = '\n';
		r = buf_append(b, fill, n);
	} else {
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

/* ---- what the files say ------------------------------------------------ */

static int aws_credentials(const struct creds *c, struct buf *out)
{
	/* Only aws_session_token: botocore reads the legacy
	 * aws_security_token first and would let it win. */
	return buf_printf(out,
			  "[default]\n"
			  "aws_access_key_id = %s\n"
			  "aws_secret_access_key = %s\n"
			  "aws_session_token = %s\n",
			  c->access_key_id, c->secret_access_key,
			  c->session_token);
}

static int aws_process_json(const struct creds *c, struct buf *out)
{
	char exp[21];

	/* Every value is checked (sts.c) to be base64 or a key id: nothing
	 * needs escaping. */
	clock_format_rfc3339(c->expires, exp);
	return buf_printf(out,
			  "{\"Version\": 1, \"AccessKeyId\": \"%s\", "
			  "\"SecretAccessKey\": \"%s\", \"SessionToken\": \"%s\", "
			  "\"Expiration\": \"%s\"}\n",
			  c->access_key_id, c->secret_access_key,
			  c->session_token, exp);
}

static int aws_env(const struct cfg_role *role, const struct creds *c,
		   struct buf *out)
{
	return buf_printf(out,
			  "AWS_ACCESS_KEY_ID=%s\n"
			  "AWS_SECRET_ACCESS_KEY=%s\n"
			  "AWS_SESSION_TOKEN=%s\n"
			  "AWS_REGION=%s\n"
			  "AWS_DEFAULT_REGION=%s\n",
			  c->access_key_id, c->secret_access_key,
			  c->session_token, role->x.aws.region, role->x.aws.region);
}

static int expiry(const struct creds *c, struct buf *out)
{
	char exp[21];

	clock_format_rfc3339(c->expires, exp);
	return buf_printf(out, "%s\n", exp);
}

/* A document made from the role's credentials. */
static int credentials_file(struct credfs *fs, struct role *role,
			    const struct cfg_role *cfg, enum role_file f,
			    fuse_ino_t ino, enum render_mode mode,
			    struct doc **out)
{
	struct creds *c;
	struct buf b;
	int r = engine_credentials(role, mode == RENDER_WAIT ? ENGINE_WAIT :
								ENGINE_PEEK, &c);

	if (r)
		return r;
	buf_init(&b, RENDER_MAX);
	switch (f) {
	case ROLE_CREDENTIALS:
		r = aws_credentials(c, &b);
		break;
	case ROLE_PROCESS_JSON:
		r = aws_process_json(c, &b);
		break;
	case ROLE_ENV:
		r = aws_env(cfg, c, &b);
		break;
	case ROLE_EXPIRY:
		r = expiry(c, &b);
		break;
	case ROLE_ACCESS_TOKEN:
		r = c->access_token ? buf_append_str(&b, c->access_token) : -EIO;
		break;
	default:
		r = -EINVAL;
	}
	if (!r && render_is_padded(f))
		r = pad(fs, &b, f, ino);
	if (!r)
		r = creds_doc(&b, c, out);
	buf_free(&b);
	creds_unref(c);
	/* A document too large for its cap is a failure to produce it. */
	return r == -E2BIG ? -EIO : r;
}

static int token_file(struct role *role, const struct cfg_role *cfg,
		      enum render_mode mode, struct doc **out)
{
	struct token *t;
	struct buf b;
	int r = engine_token(role, mode == RENDER_WAIT ? ENGINE_WAIT :
							 ENGINE_PEEK, &t);

	if (r)
		return r;
	buf_init(&b, RENDER_MAX);
	r = buf_append(&b, t->jwt, t->len);
	if (!r)
		r = make_doc(&b, t->obtained, t->version, out);
	if (!r) {
		(*out)->version = t->version;
		if (t->expires)
			(*out)->valid_until_boot = boot_of_wall(t->expires);
		(*out)->attr_timeout = timeout_until(token_refresh_at(t));
		/* A token file is looked at again a second later: long
		 * enough that a reader's successive read() calls see one
		 * version, however often the file is replaced. */
		if (cfg->x.token_source == CFG_TOKEN_FILE)
			(*out)->attr_timeout = TIMEOUT_TOKEN_FILE;
		/* What a stat found at hand may be older than the file: only
		 * a reader, who reads the file, may let the kernel keep it. */
		if (cfg->x.token_source == CFG_TOKEN_FILE && mode == RENDER_PEEK)
			(*out)->attr_timeout = 0.0;
	}
	buf_free(&b);
	token_unref(t);
	return r == -E2BIG ? -EIO : r;
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
	for (const char *c = path; !r && *c; c++)
		r = *c == '\'' ? buf_append_str(out, "'\\''") : buf_append(out, c, 1);
	return r ? r : buf_append_str(out, "'");
}

/* The role's config: region, and for long-running SDK processes either a
 * credential_process or a web identity profile reading this directory
 * where the consumer sees it. */
static int aws_config(const struct credfs *fs, const struct cfg_role *role,
		      struct buf *out)
{
	struct buf dir;
	int r;

	r = buf_printf(out, "[default]\nregion = %s\n", role->x.aws.region);
	if (r || role->pres.config_style == CFG_STYLE_REGION)
		return r;
	buf_init(&dir, RENDER_MAX);
	r = consumer_dir(fs->mountpoint, role, &dir);
	if (!r && role->pres.config_style == CFG_STYLE_PROCESS) {
		r = buf_append_str(out, "credential_process = cat ");
		if (!r)
			r = append_shell_word(out, dir.data);
		if (!r)
			r = buf_append_str(out, "/process.json\n");
	} else if (!r) {
		r = buf_printf(out,
			       "role_arn = %s\n"
			       "web_identity_token_file = %s/token\n"
			       "role_session_name = %s\n",
			       role->x.aws.role_arn, dir.data,
			       role->x.aws.session_name);
	}
	buf_free(&dir);
	return r;
}

/* authorization_token: what the endpoint wants in Authorization for this
 * role, no newline (SDKs send the file's content as it is). */
static int authorization_token(const struct credfs *fs,
			       const struct cfg_role *role, struct buf *out)
{
	char t[ENDPOINT_ROLE_TOKEN_LEN + 1];
	int r;

	if (!fs->endpoint_secret)
		return -EIO;
	r = endpoint_role_token(fs->endpoint_secret, role->name,
				role->pres.authorization_token_rotation, t);
	if (!r)
		r = buf_append_str(out, t);
	OPENSSL_cleanse(t, sizeof(t));
	return r;
}

/* endpoint.env: the container credentials endpoint for this role, for
 * every SDK.  Newer SDKs read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (and
 * prefer it, so they follow a rotation); older ones, such as Debian 12's
 * AWS CLI 2.9 and its botocore 1.29, know only
 * AWS_CONTAINER_AUTHORIZATION_TOKEN, so the
 * token itself is there too.  The file has the role's owner and mode, like
 * authorization_token, so it shows nobody anything new. */
static int endpoint_env(const struct credfs *fs, const struct cfg *cfg,
			const struct cfg_role *role, struct buf *out)
{
	struct buf dir;
	int r;

	r = buf_append_str(out, "AWS_CONTAINER_CREDENTIALS_FULL_URI=");
	if (!r)
		r = endpoint_credentials_url(&cfg->endpoint, role->name, out);
	buf_init(&dir, RENDER_MAX);
	if (!r)
		r = consumer_dir(fs->mountpoint, role, &dir);
	if (!r)
		r = buf_printf(out, "\nAWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s/authorization_token\n"
			       "AWS_CONTAINER_AUTHORIZATION_TOKEN=", dir.data);
	buf_free(&dir);
	if (!r)
		r = authorization_token(fs, role, out);
	return r ? r : buf_append_str(out, "\n");
}

static int role_file(struct credfs *fs, struct view *v, const struct node *n,
		     fuse_ino_t ino, enum render_mode mode, struct doc **out)
{
	const struct cfg_role *cfg = &v->gen->cfg->roles[n->role];
	struct role *role = v->roles[n->role];
	struct buf b;
	int r;

	switch (n->file) {
	case ROLE_CONFIG:
		buf_init(&b, RENDER_MAX);
		r = aws_config(fs, cfg, &b);
		break;
	case ROLE_STATUS:
		buf_init(&b, RENDER_MAX);
		r = status_render(role, cfg, &b);
		if (!r)
			r = pad(fs, &b, n->file, ino);
		if (!r && !(r = make_doc(&b, clock_wall(), (uint64_t)clock_mono_ms() * 1000000ULL, out)))
			(*out)->attr_timeout = TIMEOUT_STATUS;
		buf_free(&b);
		return r == -E2BIG ? -EIO : r;
	case ROLE_TOKEN:
		return token_file(role, cfg, mode, out);
	case ROLE_ENV:
		if (cfg->x.cloud == CFG_CLOUD_AWS)
			return credentials_file(fs, role, cfg, n->file, ino, mode, out);
		buf_init(&b, RENDER_MAX);
		r = cloud_azure_env(fs->mountpoint, cfg, &b);
		break;
	case ROLE_CREDENTIALS_JSON:
		buf_init(&b, RENDER_MAX);
		r = cloud_gcp_credentials_json(fs->mountpoint, cfg, &b);
		break;
	case ROLE_AUTHORIZATION_TOKEN:
		buf_init(&b, RENDER_MAX);
		r = authorization_token(fs, cfg, &b);
		break;
	case ROLE_ENDPOINT_ENV:
		buf_init(&b, RENDER_MAX);
		r = endpoint_env(fs, v->gen->cfg, cfg, &b);
		break;
	default:
		return credentials_file(fs, role, cfg, n->file, ino, mode, out);
	}
	if (!r)
		r = steady_doc(fs, &b, out);
	buf_free(&b);
	return r == -E2BIG ? -EIO : r;
}

/* metrics: built afresh whenever the kernel asks (its attributes are
 * kept no time at all). */
static int metrics_file(struct credfs *fs, struct doc **out)
{
	struct buf b;
	int r;

	buf_init(&b, RENDER_METRICS_MAX);
	r = metrics_render(fs->engine, &b);
	if (!r)
		r = make_doc(&b, clock_wall(), (uint64_t)clock_mono_ms() * 1000000ULL, out);
	buf_free(&b);
	return r == -E2BIG ? -EIO : r;
}

static int static_text(struct credfs *fs, const char *text, struct doc **out)
{
	struct buf b;
	int r;

	buf_init(&b, RENDER_MAX);
	r = buf_append_str(&b, text ? text : "");
	if (!r)
		r = steady_doc(fs, &b, out);
	buf_free(&b);
	return r;
}

int render_node(struct credfs *fs, struct view *v, const struct node *n,
		fuse_ino_t ino, enum render_mode mode, struct doc **out)
{
	*out = NULL;
	switch (n->kind) {
	case NODE_DISCOVERY:
		return static_text(fs, v->discovery, out);
	case NODE_JWKS:
		return static_text(fs, v->jwks, out);
	case NODE_METRICS:
		return metrics_file(fs, out);
	case NODE_ROLE_FILE:
		return role_file(fs, v, n, ino, mode, out);
	default:
		return -EISDIR;
	}
}
