/*
 * The configuration file (SPEC.md "Configuration (INI)").
 *
 * inih does the lexing.  It is fed through our own reader so that we know
 * the line of every key (Debian's inih is built without
 * INI_HANDLER_LINENO) and see every section header ourselves, even one
 * with no keys under it.  Each value is checked as it arrives, so the first
 * error in file order is the one reported; the checks that need the whole
 * file (defaults, required keys, role chains) run afterwards, role by role.
 *
 * Relative paths (key, previous_keys, ca_file, web_identity_token_file)
 * are taken relative to the directory of the configuration file, because
 * the daemon changes to "/" when it detaches.  cfg_load_string() keeps
 * them as written.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <jansson.h>

#include "buf.h"
#include "endpoints.h"

#define CFG_LINE_MAX 8192		/* longest line, without its newline */

#define DEFAULT_DURATION 3600
#define DEFAULT_REFRESH_FRACTION 0.8
#define DEFAULT_MIN_VALIDITY 900
#define DEFAULT_WAIT_TIMEOUT 10
#define DEFAULT_AUDIENCE "sts.amazonaws.com"
#define DEFAULT_TOKEN_LIFETIME 3600
#define DEFAULT_CLOCK_SKEW 30
#define CHAINED_DURATION_MAX 3600	/* STS limit for role chaining */

#define POLICY_MAX 2048
#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256

enum sect_kind {
	SECT_CREDFS = 1,
	SECT_SIGNER = 2,
	SECT_ROLE = 4,
};

enum key_id {
	K_REGION,
	K_STS_ENDPOINT,
	K_CA_FILE,
	K_USE_FIPS,
	K_DURATION,
	K_REFRESH_FRACTION,
	K_MIN_VALIDITY,
	K_WAIT_TIMEOUT,
	K_ROLE_ARN,
	K_SUBJECT,
	K_TOKEN_FILE,
	K_SOURCE_ROLE,
	K_SESSION_NAME,
	K_UID,
	K_GID,
	K_MODE,
	K_EXTERNAL_ID,
	K_POLICY,
	K_POLICY_ARNS,
	K_TAGS,
	K_TRANSITIVE,
	K_SOURCE_IDENTITY,
	K_KEY,
	K_ISSUER,
	K_AUDIENCE,
	K_TOKEN_LIFETIME,
	K_CLOCK_SKEW,
	K_PREVIOUS_KEYS,
	K_CONFIG_STYLE,
	K_CONSUMER_PATH,
	K_COUNT
};

enum val_type {
	V_TEXT,		/* printable text, min..max characters */
	V_PATH,
	V_CA_FILE,	/* a path that must be a readable regular file */
	V_BOOL,
	V_INT,		/* decimal, min..max */
	V_FRACTION,	/* 0 < f < 1 */
	V_REGION,
	V_ENDPOINT,
	V_ISSUER,
	V_ROLE_ARN,
	V_ROLE_REF,
	V_ID,		/* uid or gid */
	V_MODE,
	V_AWS_NAME,	/* [A-Za-z0-9+=,.@_-], min..max */
	V_EXTERNAL_ID,	/* [A-Za-z0-9+=,.@:/_-], min..max */
	V_POLICY,
	V_POLICY_ARNS,	/* at most max */
	V_TAGS,		/* at most max */
	V_TAG_KEYS,	/* at most max */
	V_PATH_LIST,
	V_CONFIG_STYLE,	/* region, process or web_identity */
	V_CONSUMER_PATH,	/* absolute, safe in a command line and an INI value */
};

struct key_def {
	const char *name;
	unsigned int sections;	/* mask of enum sect_kind */
	enum val_type type;
	long min, max;
};

#define DEFAULTABLE (SECT_CREDFS | SECT_ROLE)

static const struct key_def keys[K_COUNT] = {
	[K_REGION] = { "region", DEFAULTABLE, V_REGION, 0, 0 },
	[K_STS_ENDPOINT] = { "sts_endpoint", DEFAULTABLE, V_ENDPOINT, 0, 0 },
	[K_CA_FILE] = { "ca_file", DEFAULTABLE, V_CA_FILE, 0, 0 },
	[K_USE_FIPS] = { "use_fips_endpoint", DEFAULTABLE, V_BOOL, 0, 0 },
	[K_DURATION] = { "duration_seconds", DEFAULTABLE, V_INT, 900, 43200 },
	[K_REFRESH_FRACTION] = { "refresh_fraction", DEFAULTABLE, V_FRACTION,
				 0, 0 },
	[K_MIN_VALIDITY] = { "min_validity", DEFAULTABLE, V_INT, 0, 43200 },
	[K_WAIT_TIMEOUT] = { "wait_timeout", DEFAULTABLE, V_INT, 1, 300 },
	[K_ROLE_ARN] = { "role_arn", SECT_ROLE, V_ROLE_ARN, 0, 0 },
	[K_SUBJECT] = { "subject", SECT_ROLE, V_TEXT, 1, 1024 },
	[K_TOKEN_FILE] = { "web_identity_token_file", SECT_ROLE, V_PATH, 0, 0 },
	[K_SOURCE_ROLE] = { "source_role", SECT_ROLE, V_ROLE_REF, 0, 0 },
	[K_SESSION_NAME] = { "session_name", SECT_ROLE, V_AWS_NAME, 2, 64 },
	[K_UID] = { "uid", SECT_ROLE, V_ID, 0, 0 },
	[K_GID] = { "gid", SECT_ROLE, V_ID, 0, 0 },
	[K_MODE] = { "mode", SECT_ROLE, V_MODE, 0, 0 },
	[K_EXTERNAL_ID] = { "external_id", SECT_ROLE, V_EXTERNAL_ID, 2, 1224 },
	[K_POLICY] = { "policy", SECT_ROLE, V_POLICY, 0, POLICY_MAX },
	[K_POLICY_ARNS] = { "policy_arns", SECT_ROLE, V_POLICY_ARNS, 0, 10 },
	[K_TAGS] = { "tags", SECT_ROLE, V_TAGS, 0, 50 },
	[K_TRANSITIVE] = { "transitive_tag_keys", SECT_ROLE, V_TAG_KEYS, 0, 50 },
	[K_SOURCE_IDENTITY] = { "source_identity", SECT_ROLE, V_AWS_NAME,
				2, 64 },
	[K_KEY] = { "key", SECT_SIGNER, V_PATH, 0, 0 },
	[K_ISSUER] = { "issuer", SECT_SIGNER, V_ISSUER, 0, 0 },
	[K_AUDIENCE] = { "audience", SECT_SIGNER, V_TEXT, 1, 1024 },
	[K_TOKEN_LIFETIME] = { "token_lifetime", SECT_SIGNER, V_INT, 600,
			       86400 },
	[K_CLOCK_SKEW] = { "clock_skew", SECT_SIGNER, V_INT, 0, 300 },
	[K_PREVIOUS_KEYS] = { "previous_keys", SECT_SIGNER, V_PATH_LIST, 0, 0 },
	[K_CONFIG_STYLE] = { "config_style", DEFAULTABLE, V_CONFIG_STYLE, 0, 0 },
	[K_CONSUMER_PATH] = { "consumer_path", SECT_ROLE, V_CONSUMER_PATH, 1,
			      1024 },
};

/* One key as written, after its own checks. */
struct val {
	int line;		/* 0: not set */
	char *str;
	long num;
	double dbl;
	char **list;
	size_t n;
	struct cfg_tag *tags;
};

struct section {
	enum sect_kind kind;
	int line;		/* 0: the section is absent */
	char name[CFG_ROLE_NAME_MAX + 1];
	struct val v[K_COUNT];
};

struct parser {
	const char *file;		/* name used in errors */
	char *base_dir;			/* for relative paths; NULL: as written */
	struct cfg_error *err;
	bool failed;

	/* The reader: one of fp or text. */
	FILE *fp;
	const char *text;
	bool eof;
	int lineno;			/* line of the last piece handed out */
	bool line_done;			/* that piece ended its line */
	struct buf line;		/* the current line so far */

	struct section credfs;
	struct section signer;
	struct section **roles;
	size_t n_roles;
	struct name_index role_names;	/* name -> index into roles */
	struct section *cur;		/* NULL before the first header */

	/* The STS endpoint named by the environment, looked up once, when
	 * the first role without sts_endpoint needs it. */
	bool env_endpoint_done;
	char *env_endpoint;		/* NULL: none */
};

static const char aws_name_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	"+=,.@_-";
static const char external_id_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	"+=,.@:/_-";
static const char role_name_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
/* consumer_path ends up in "credential_process = cat PATH/process.json",
 * which SDKs split like a shell: nothing here needs quoting. */
static const char consumer_path_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	"/._-+@=,:~%";

/* Fills err unless an error is already recorded (the first one wins).
 * Always returns -1 so callers can "return fail(...)". */
static int PRINTF_LIKE(3, 4) fail(struct parser *p, int line,
				  const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return -1;
	p->failed = true;
	snprintf(p->err->file, sizeof(p->err->file), "%s", p->file);
	p->err->line = line;
	va_start(ap, fmt);
	vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_oom(struct parser *p)
{
	return fail(p, 0, "out of memory");
}

static char *xstrdup(struct parser *p, const char *s)
{
	char *d = strdup(s);

	if (!d)
		fail_oom(p);
	return d;
}

/* True if s is 1..max characters, all from set. */
static bool only_chars(const char *s, const char *set, size_t min, size_t max)
{
	size_t len = strlen(s);

	return len >= min && len <= max && strspn(s, set) == len;
}

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

static bool role_name_ok(const char *s)
{
	return only_chars(s, role_name_chars, 1, CFG_ROLE_NAME_MAX);
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static bool region_ok(const char *s)
{
	return s && aws_region_valid(s);
}

/* "FILE:LINE: text", or "FILE: text" for an error without a line. */
void cfg_error_format(const struct cfg_error *err, char *out, size_t outlen)
{
	if (!outlen)
		return;
	if (err->line > 0)
		snprintf(out, outlen, "%s:%d: %s", err->file, err->line,
			 err->text);
	else
		snprintf(out, outlen, "%s: %s", err->file, err->text);
}

/* ---- values ------------------------------------------------------------ */

static void free_list(char **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void free_tags(struct cfg_tag *tags, size_t n)
{
	if (!tags)
		return;
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

static void free_val(struct val *v)
{
	free(v->str);
	free_list(v->list, v->n);
	free_tags(v->tags, v->n);
	memset(v, 0, sizeof(*v));
}

static void free_section(struct section *s)
{
	for (int k = 0; k < K_COUNT; k++)
		free_val(&s->v[k]);
}

/* A path as written, or joined to the configuration's directory when it is
 * relative.  NULL (and an error) only when out of memory. */
static char *resolve_path(struct parser *p, const char *path)
{
	char *out;

	if (path[0] == '/' || !p->base_dir)
		return xstrdup(p, path);
	if (asprintf(&out, "%s/%s", p->base_dir, path) < 0) {
		fail_oom(p);
		return NULL;
	}
	return out;
}

/* Splits s at any character of seps into trimmed, non-empty items.
 * Returns the count, or -1 when out of memory (error recorded). */
static long split_list(struct parser *p, const char *s, const char *seps,
		       char ***out)
{
	char **list = NULL;
	size_t n = 0;

	while (*s) {
		size_t len;
		char **grown;

		s += strspn(s, seps);
		len = strcspn(s, seps);
		if (!len)
			break;
		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		while (len && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		if (len) {
			grown = realloc(list, (n + 1) * sizeof(*list));
			if (!grown)
				goto oom;
			list = grown;
			list[n] = strndup(s, len);
			if (!list[n])
				goto oom;
			n++;
		}
		s += strcspn(s, seps);
	}
	*out = list;
	return (long)n;
oom:
	free_list(list, n);
	*out = NULL;
	return fail_oom(p);
}

/* "arn:PARTITION:iam::ACCOUNT:TYPE/NAME": ACCOUNT is 12 digits, or "aws"
 * if aws_account (AWS managed policies); NAME may carry a path. */
static bool arn_ok(const char *arn, const char *type, bool aws_account)
{
	const char *s = arn;
	size_t len;

	if (strlen(arn) > 2048 || !starts_with(s, "arn:aws"))
		return false;
	s += 4;
	len = strspn(s, "abcdefghijklmnopqrstuvwxyz-");
	if (s[len - 1] == '-')
		return false;
	s += len;
	if (!starts_with(s, ":iam::"))
		return false;
	s += 6;
	len = strspn(s, "0123456789");
	if (len == 12)
		s += 12;
	else if (aws_account && !len && starts_with(s, "aws"))
		s += 3;
	else
		return false;
	if (*s++ != ':' || !starts_with(s, type))
		return false;
	s += strlen(type);
	if (*s++ != '/')
		return false;
	len = strlen(s);
	return len && s[len - 1] != '/' && !strstr(s, "//") &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789+=,.@_-/") == len;
}

enum url_kind { URL_ENDPOINT, URL_ISSUER };

static bool loopback_host(const char *host, size_t len, bool bracketed)
{
	char tmp[64];
	unsigned char addr[16];

	if (len >= sizeof(tmp))
		return false;
	memcpy(tmp, host, len);
	tmp[len] = '\0';
	if (bracketed)
		return inet_pton(AF_INET6, tmp, addr) == 1 &&
		       !memcmp(addr, &in6addr_loopback, 16);
	if (!strcasecmp(tmp, "localhost"))
		return true;
	return inet_pton(AF_INET, tmp, addr) == 1 && addr[0] == 127;
}

/* Checks an sts_endpoint or issuer URL: https:// (or, for an endpoint,
 * http:// to a loopback address), a host, an optional port (not for an
 * issuer), an optional path, no user name, query or fragment. */
static int check_url(struct parser *p, const char *key, const char *url,
		     enum url_kind kind)
{
	const char *host, *end, *colon = NULL;
	size_t alen, hlen;
	bool http = false, bracketed = false;

	for (const char *c = url; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
			return fail(p, p->lineno,
				    "%s \"%s\" must not contain spaces", key,
				    url);
	if (!strncasecmp(url, "https://", 8)) {
		host = url + 8;
	} else if (!strncasecmp(url, "http://", 7) && kind == URL_ENDPOINT) {
		host = url + 7;
		http = true;
	} else if (kind == URL_ENDPOINT) {
		return fail(p, p->lineno,
			    "%s must start with https:// (or http:// for a loopback address), not \"%s\"",
			    key, url);
	} else {
		return fail(p, p->lineno,
			    "%s must be an https:// URL, not \"%s\"", key, url);
	}
	alen = strcspn(host, "/?#");
	if (memchr(host, '@', alen))
		return fail(p, p->lineno,
			    "%s \"%s\" must not contain a user name", key, url);
	if (host[0] == '[') {
		end = memchr(host, ']', alen);
		if (!end)
			return fail(p, p->lineno,
				    "%s \"%s\" has no closing \"]\"", key, url);
		host++;
		hlen = (size_t)(end - host);
		bracketed = true;
		end++;
		if (!loopback_host(host, hlen, true)) {
			char tmp[64];
			unsigned char addr[16];

			if (hlen >= sizeof(tmp))
				hlen = sizeof(tmp) - 1;
			memcpy(tmp, host, hlen);
			tmp[hlen] = '\0';
			if (inet_pton(AF_INET6, tmp, addr) != 1)
				return fail(p, p->lineno,
					    "%s \"%s\" has an invalid IPv6 address",
					    key, url);
		}
	} else {
		hlen = strcspn(host, ":/?#");
		end = host + hlen;
		if (hlen && strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "abcdefghijklmnopqrstuvwxyz0123456789.-_") <
				    hlen)
			return fail(p, p->lineno,
				    "%s \"%s\" has an invalid host name", key,
				    url);
	}
	if (!hlen)
		return fail(p, p->lineno, "%s \"%s\" has no host", key, url);
	if (*end == ':') {
		const char *port = end + 1;
		size_t plen = strcspn(port, "/?#");

		colon = end;
		if (plen < 1 || plen > 5 || strspn(port, "0123456789") != plen ||
		    atoi(port) < 1 || atoi(port) > 65535)
			return fail(p, p->lineno,
				    "%s \"%s\" has an invalid port", key, url);
		end = port + plen;
	} else if (*end && *end != '/' && *end != '?' && *end != '#') {
		return fail(p, p->lineno, "%s \"%s\" has an invalid host name",
			    key, url);
	}
	if (strchr(end, '?'))
		return fail(p, p->lineno, "%s \"%s\" must not have a query",
			    key, url);
	if (strchr(end, '#'))
		return fail(p, p->lineno, "%s \"%s\" must not have a fragment",
			    key, url);
	if (kind == URL_ISSUER) {
		if (colon)
			return fail(p, p->lineno,
				    "%s \"%s\" must not have a port", key, url);
		if (url[strlen(url) - 1] == '/')
			return fail(p, p->lineno,
				    "%s \"%s\" must not end with \"/\"", key,
				    url);
	}
	if (http && !loopback_host(host, hlen, bracketed))
		return fail(p, p->lineno,
			    "%s \"%s\": http:// is only allowed for a loopback address; use https://",
			    key, url);
	return 0;
}

/* Tag keys and values: letters, digits, spaces and _ . : / = + - @ (any
 * non-ASCII byte is taken as part of a UTF-8 letter). */
static bool tag_text_ok(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x80 && !isalnum(c) && !strchr(" _.:/=+-@", c))
			return false;
	}
	return true;
}

/* Parses "K=V, K=V" into v->tags / v->n. */
static int parse_tags(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	char **items;
	long n = split_list(p, value, ",", &items);
	int rc = -1;

	if (n < 0)
		return -1;
	if (n > k->max) {
		fail(p, p->lineno, "%s has %ld tags; STS takes at most %ld",
		     k->name, n, k->max);
		goto out;
	}
	v->tags = calloc(n ? (size_t)n : 1, sizeof(*v->tags));
	if (!v->tags) {
		fail_oom(p);
		goto out;
	}
	for (long i = 0; i < n; i++) {
		char *eq = strchr(items[i], '=');
		char *key, *val;
		size_t klen;

		if (!eq || eq == items[i]) {
			fail(p, p->lineno, "%s: \"%s\" is not Key=Value",
			     k->name, items[i]);
			goto out;
		}
		klen = (size_t)(eq - items[i]);
		while (klen && isspace((unsigned char)items[i][klen - 1]))
			klen--;
		val = eq + 1;
		while (isspace((unsigned char)*val))
			val++;
		key = strndup(items[i], klen);
		if (!key) {
			fail_oom(p);
			goto out;
		}
		v->tags[v->n].key = key;
		v->tags[v->n].value = strdup(val);
		v->n++;
		if (!v->tags[v->n - 1].value) {
			fail_oom(p);
			goto out;
		}
		if (klen > TAG_KEY_MAX || strlen(val) > TAG_VALUE_MAX) {
			fail(p, p->lineno,
			     "%s: tag \"%s\" is too long (keys up to %d characters, values up to %d)",
			     k->name, key, TAG_KEY_MAX, TAG_VALUE_MAX);
			goto out;
		}
		if (!tag_text_ok(key) || !tag_text_ok(val)) {
			fail(p, p->lineno,
			     "%s: tag \"%s\" may only contain letters, digits, spaces and _ . : / = + - @",
			     k->name, items[i]);
			goto out;
		}
		for (size_t j = 0; j + 1 < v->n; j++)
			if (!strcasecmp(v->tags[j].key, key)) {
				fail(p, p->lineno,
				     "%s: tag key \"%s\" appears twice",
				     k->name, key);
				goto out;
			}
	}
	rc = 0;
out:
	free_list(items, (size_t)n);
	return rc;
}

/* Parses a JSON session policy; keeps it compact in v->str. */
static int parse_policy(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	json_error_t jerr;
	json_t *j = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
	const char *line = p->line.data ? p->line.data : "";
	const char *eq = strchr(line, '='), *at;
	char *near;
	int rc = -1, column;

	if (!j) {
		/* jansson quotes the offending token; keep the message short. */
		near = strstr(jerr.text, " near ");
		if (near)
			*near = '\0';
		/* jansson counts within the value; count within the line. */
		at = eq ? strstr(eq, value) : NULL;
		column = jerr.column + (at ? (int)(at - line) : 0);
		return fail(p, p->lineno,
			    "%s is not valid JSON: %s (column %d)", k->name,
			    jerr.text, column);
	}
	if (!json_is_object(j)) {
		fail(p, p->lineno, "%s must be a JSON object ({...})", k->name);
		goto out;
	}
	v->str = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!v->str) {
		fail_oom(p);
		goto out;
	}
	if (strlen(v->str) > (size_t)k->max) {
		fail(p, p->lineno,
		     "%s is %zu characters long without spaces; STS takes at most %ld",
		     k->name, strlen(v->str), k->max);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* Checks value against k's type; fills v.  Returns 0, or -1 with the error
 * recorded at the current line. */
static int parse_value(struct parser *p, const struct key_def *k,
		       const char *value, struct val *v)
{
	const char *name = k->name;
	int line = p->lineno;
	long n;

	switch (k->type) {
	case V_TEXT:
		for (const char *c = value; *c; c++)
			if (iscntrl((unsigned char)*c))
				return fail(p, line,
					    "%s must not contain control characters",
					    name);
		if (strlen(value) > (size_t)k->max)
			return fail(p, line,
				    "%s is longer than %ld characters", name,
				    k->max);
		v->str = xstrdup(p, value);
		break;
	case V_PATH:
		v->str = resolve_path(p, value);
		break;
	case V_CA_FILE: {
		struct stat st;
		char eb[128];

		v->str = resolve_path(p, value);
		if (!v->str)
			return -1;
		if (stat(v->str, &st) || access(v->str, R_OK))
			return fail(p, line, "%s \"%s\" cannot be read: %s",
				    name, value,
				    strerror_r(errno, eb, sizeof(eb)));
		if (!S_ISREG(st.st_mode))
			return fail(p, line, "%s \"%s\" is not a regular file",
				    name, value);
		break;
	}
	case V_BOOL:
		if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
		    !strcmp(value, "1"))
			v->num = 1;
		else if (!strcasecmp(value, "false") ||
			 !strcasecmp(value, "no") || !strcmp(value, "0"))
			v->num = 0;
		else
			return fail(p, line, "%s must be true or false, not \"%s\"",
				    name, value);
		break;
	case V_INT:
		if (!all_digits(value))
			return fail(p, line,
				    "%s must be a whole number between %ld and %ld, not \"%s\"",
				    name, k->min, k->max, value);
		n = strlen(value) > 9 ? k->max + 1 : strtol(value, NULL, 10);
		if (n < k->min || n > k->max)
			return fail(p, line,
				    "%s must be between %ld and %ld, not %s",
				    name, k->min, k->max, value);
		v->num = n;
		break;
	case V_FRACTION: {
		size_t dots = 0, digits = 0;

		for (const char *c = value; *c; c++) {
			if (*c == '.')
				dots++;
			else if (isdigit((unsigned char)*c))
				digits++;
			else
				dots = 2;
		}
		if (dots > 1 || !digits)
			return fail(p, line,
				    "%s must be a number between 0 and 1, such as 0.8, not \"%s\"",
				    name, value);
		v->dbl = strtod(value, NULL);
		if (!(v->dbl > 0.0 && v->dbl < 1.0))
			return fail(p, line,
				    "%s must be greater than 0 and less than 1, not %s",
				    name, value);
		break;
	}
	case V_REGION:
		if (!region_ok(value))
			return fail(p, line,
				    "%s must be a region name like \"ap-northeast-1\", not \"%s\"",
				    name, value);
		v->str = xstrdup(p, value);
		break;
	case V_ENDPOINT:
		if (check_url(p, name, value, URL_ENDPOINT))
			return -1;
		v->str = xstrdup(p, value);
		/* "https://host/" and "https://host" are the same endpoint. */
		if (v->str) {
			size_t len = strlen(v->str);

			while (len && v->str[len - 1] == '/')
				v->str[--len] = '\0';
		}
		break;
	case V_ISSUER:
		if (check_url(p, name, value, URL_ISSUER))
			return -1;
		v->str = xstrdup(p, value);
		break;
	case V_ROLE_ARN:
		if (!arn_ok(value, "role", false))
			return fail(p, line,
				    "%s must look like arn:aws:iam::123456789012:role/NAME, not \"%s\"",
				    name, value);
		v->str = xstrdup(p, value);
		break;
	case V_ROLE_REF:
		if (!role_name_ok(value))
			return fail(p, line,
				    "%s \"%s\" is not a role name (1 to %d characters of A-Z a-z 0-9 _ -)",
				    name, value, CFG_ROLE_NAME_MAX);
		v->str = xstrdup(p, value);
		break;
	case V_ID: {
		unsigned long long id;

		id = all_digits(value) && strlen(value) <= 10 ?
			     strtoull(value, NULL, 10) : ~0ULL;
		if (id >= 0xffffffffULL)
			return fail(p, line,
				    "%s must be a number from 0 to 4294967294, not \"%s\"",
				    name, value);
		v->num = (long)id;
		break;
	}
	case V_MODE:
		if (!strcmp(value, "0400"))
			v->num = 0400;
		else if (!strcmp(value, "0440"))
			v->num = 0440;
		else
			return fail(p, line, "%s must be 0400 or 0440, not \"%s\"",
				    name, value);
		break;
	case V_AWS_NAME:
		if (!only_chars(value, aws_name_chars, (size_t)k->min,
				(size_t)k->max))
			return fail(p, line,
				    "%s must be %ld to %ld characters of A-Z a-z 0-9 + = , . @ _ -, not \"%s\"",
				    name, k->min, k->max, value);
		v->str = xstrdup(p, value);
		break;
	case V_EXTERNAL_ID:
		if (!only_chars(value, external_id_chars, (size_t)k->min,
				(size_t)k->max))
			return fail(p, line,
				    "%s must be %ld to %ld characters of A-Z a-z 0-9 + = , . @ : / _ -",
				    name, k->min, k->max);
		v->str = xstrdup(p, value);
		break;
	case V_CONFIG_STYLE:
		if (!strcmp(value, "region"))
			v->num = CFG_STYLE_REGION;
		else if (!strcmp(value, "process"))
			v->num = CFG_STYLE_PROCESS;
		else if (!strcmp(value, "web_identity"))
			v->num = CFG_STYLE_WEB_IDENTITY;
		else
			return fail(p, line,
				    "%s must be region, process or web_identity, not \"%s\"",
				    name, value);
		break;
	case V_CONSUMER_PATH: {
		size_t len = strlen(value);

		if (value[0] != '/' || len > (size_t)k->max ||
		    !only_chars(value, consumer_path_chars, 1, (size_t)k->max))
			return fail(p, line,
				    "%s must be an absolute path of letters, digits and / . _ - + @ = , : ~ %%, not \"%s\"",
				    name, value);
		while (len > 1 && value[len - 1] == '/')
			len--;
		if (len == 1)
			return fail(p, line,
				    "%s must be a directory below \"/\", such as /root/.aws",
				    name);
		v->str = strndup(value, len);
		if (!v->str)
			return fail_oom(p);
		break;
	}
	case V_POLICY:
		return parse_policy(p, k, value, v);
	case V_TAGS:
		return parse_tags(p, k, value, v);
	case V_POLICY_ARNS:
	case V_TAG_KEYS:
	case V_PATH_LIST:
		n = split_list(p, value, ", \t", &v->list);
		if (n < 0)
			return -1;
		v->n = (size_t)n;
		if (k->type == V_POLICY_ARNS && n > k->max)
			return fail(p, line,
				    "%s lists %ld ARNs; STS takes at most %ld",
				    name, n, k->max);
		if (k->type == V_TAG_KEYS && n > k->max)
			return fail(p, line,
				    "%s lists %ld keys; STS takes at most %ld",
				    name, n, k->max);
		for (size_t i = 0; i < v->n; i++) {
			char *item = v->list[i];

			if (k->type == V_POLICY_ARNS &&
			    !arn_ok(item, "policy", true))
				return fail(p, line,
					    "%s: \"%s\" is not a policy ARN like arn:aws:iam::123456789012:policy/NAME",
					    name, item);
			if (k->type == V_TAG_KEYS &&
			    (strlen(item) > TAG_KEY_MAX || !tag_text_ok(item)))
				return fail(p, line,
					    "%s: \"%s\" is not a tag key", name,
					    item);
			if (k->type == V_PATH_LIST) {
				v->list[i] = resolve_path(p, item);
				free(item);
				if (!v->list[i])
					return -1;
			}
		}
		break;
	}
	return p->failed ? -1 : 0;
}

/* ---- sections and keys ----------------------------------------------- */

static void section_label(const struct section *s, char *out, size_t len)
{
	if (s->kind == SECT_CREDFS)
		snprintf(out, len, "[credfs]");
	else if (s->kind == SECT_SIGNER)
		snprintf(out, len, "[signer]");
	else
		snprintf(out, len, "[role %s]", s->name);
}

static int find_key(const char *name)
{
	for (int k = 0; k < K_COUNT; k++)
		if (!strcmp(keys[k].name, name))
			return k;
	return -1;
}

static int find_role_index(const struct parser *p, const char *name)
{
	size_t i;

	return name_index_find(&p->role_names, name, &i) ? -1 : (int)i;
}

/* Starts the section named in a header (text between the brackets, len
 * bytes).  Records an error for unknown, malformed or repeated ones. */
static int begin_section(struct parser *p, const char *name, size_t len)
{
	struct section *s, **grown;
	char rname[CFG_ROLE_NAME_MAX + 1];
	int dup;

	while (len && isspace((unsigned char)*name)) {
		name++;
		len--;
	}
	while (len && isspace((unsigned char)name[len - 1]))
		len--;

	if ((len == 6 && !memcmp(name, "credfs", 6)) ||
	    (len == 6 && !memcmp(name, "signer", 6))) {
		s = name[0] == 'c' ? &p->credfs : &p->signer;
		if (s->line)
			return fail(p, p->lineno,
				    "duplicate section [%.*s] (first on line %d)",
				    (int)len, name, s->line);
		s->kind = name[0] == 'c' ? SECT_CREDFS : SECT_SIGNER;
		s->line = p->lineno;
		p->cur = s;
		return 0;
	}
	if (len < 4 || memcmp(name, "role", 4) ||
	    (len > 4 && !isspace((unsigned char)name[4])))
		return fail(p, p->lineno,
			    "unknown section [%.*s]; expected [credfs], [signer] or [role NAME]",
			    (int)len, name);
	name += 4;
	len -= 4;
	while (len && isspace((unsigned char)*name)) {
		name++;
		len--;
	}
	if (!len)
		return fail(p, p->lineno,
			    "[role] needs a name, as in [role app]");
	if (len > CFG_ROLE_NAME_MAX)
		return fail(p, p->lineno,
			    "role name \"%.*s\" is longer than %d characters",
			    (int)len, name, CFG_ROLE_NAME_MAX);
	memcpy(rname, name, len);
	rname[len] = '\0';
	if (!role_name_ok(rname))
		return fail(p, p->lineno,
			    "role name \"%s\" may only contain A-Z a-z 0-9 _ -",
			    rname);
	dup = find_role_index(p, rname);
	if (dup >= 0)
		return fail(p, p->lineno,
			    "duplicate section [role %s] (first on line %d)",
			    rname, p->roles[dup]->line);

	s = calloc(1, sizeof(*s));
	grown = s ? realloc(p->roles, (p->n_roles + 1) * sizeof(*grown)) :
		    NULL;
	if (!grown) {
		free(s);
		return fail_oom(p);
	}
	p->roles = grown;
	p->roles[p->n_roles++] = s;
	s->kind = SECT_ROLE;
	s->line = p->lineno;
	memcpy(s->name, rname, len + 1);
	p->cur = s;
	return name_index_add(&p->role_names, s->name, p->n_roles - 1, NULL) ?
		       fail_oom(p) : 0;
}

/* Looks at one complete raw line before inih parses it: a section header
 * is started here, so an empty or unknown section is still seen.  A "["
 * without its "]" is left to inih, which reports it. */
static void inspect_line(struct parser *p)
{
	const char *s = p->line.data ? p->line.data : "";
	const char *start, *end;
	bool was_space = false;

	if (p->lineno == 1 && starts_with(s, "\xEF\xBB\xBF"))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '[')
		return;
	start = s + 1;
	/* As inih does: "]" ends it, and so does an inline ";" comment. */
	for (end = start; *end && *end != ']'; end++) {
		if (was_space && *end == ';')
			return;
		was_space = isspace((unsigned char)*end);
	}
	if (*end != ']')
		return;
	for (s = end + 1; isspace((unsigned char)*s); s++)
		;
	if (*s && *s != ';' && *s != '#') {
		fail(p, p->lineno, "unexpected text after the section header");
		return;
	}
	begin_section(p, start, (size_t)(end - start));
}

static int next_byte(struct parser *p)
{
	if (p->fp)
		return getc(p->fp);
	if (!*p->text)
		return EOF;
	return (unsigned char)*p->text++;
}

/* inih's reader: copies the next piece of a line (at most num - 1 bytes,
 * up to and including a newline) into str.  Counts lines, keeps the whole
 * current line and inspects it once complete.  Returns NULL at the end of
 * the input, and for good once an error is recorded. */
static char *read_piece(char *str, int num, void *stream)
{
	struct parser *p = stream;
	size_t n = 0, len;
	int c = 0;
	char eb[128];

	if (p->failed || p->eof || num < 2)
		return NULL;
	if (p->line_done) {
		p->lineno++;
		p->line.len = 0;
		if (p->line.data)
			p->line.data[0] = '\0';
		p->line_done = false;
	}
	while (n < (size_t)num - 1) {
		c = next_byte(p);
		if (c == EOF)
			break;
		if (c == '\0') {
			fail(p, p->lineno, "line contains a NUL byte");
			return NULL;
		}
		str[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (c == EOF) {
		p->eof = true;
		if (p->fp && ferror(p->fp)) {
			fail(p, 0, "cannot read: %s",
			     strerror_r(errno, eb, sizeof(eb)));
			return NULL;
		}
		if (!n)
			return NULL;
	}
	str[n] = '\0';
	if (buf_append(&p->line, str, n)) {
		fail_oom(p);
		return NULL;
	}
	p->line_done = c == '\n' || c == EOF;
	len = p->line.len;
	if (p->line_done) {
		while (len && (p->line.data[len - 1] == '\n' ||
			       p->line.data[len - 1] == '\r'))
			len--;
	}
	if (len > CFG_LINE_MAX) {
		fail(p, p->lineno, "line is longer than %d characters",
		     CFG_LINE_MAX);
		return NULL;
	}
	if (p->line_done)
		inspect_line(p);
	return p->failed ? NULL : str;
}

/* inih's handler: one "name = value" of the current section. */
static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct parser *p = user;
	struct section *s = p->cur;
	char label[CFG_ROLE_NAME_MAX + 16];
	int k;

	if (p->failed)
		return 0;
	if (!name || !*name) {
		fail(p, p->lineno, "\"=\" without a key name before it");
		return 0;
	}
	if (!s) {
		fail(p, p->lineno,
		     "key \"%s\" is outside any section; put it under [credfs], [signer] or [role NAME]",
		     name);
		return 0;
	}
	section_label(s, label, sizeof(label));
	k = find_key(name);
	if (k < 0) {
		fail(p, p->lineno, "unknown key \"%s\" in %s", name, label);
		return 0;
	}
	if (!(keys[k].sections & s->kind)) {
		fail(p, p->lineno, "key \"%s\" does not belong in %s%s", name,
		     label,
		     keys[k].sections & SECT_ROLE ? "; it is a [role NAME] key" :
		     keys[k].sections & SECT_SIGNER ? "; it is a [signer] key" :
						      "");
		return 0;
	}
	if (s->v[k].line) {
		fail(p, p->lineno, "duplicate key \"%s\" in %s (first on line %d)",
		     name, label, s->v[k].line);
		return 0;
	}
	if (!value || !*value) {
		fail(p, p->lineno, "%s has no value", name);
		return 0;
	}
	if (parse_value(p, &keys[k], value, &s->v[k]))
		return 0;
	s->v[k].line = p->lineno;
	return 1;
}

/* ---- whole-file checks ----------------------------------------------- */

/* The role's own value of key k, else the [credfs] default, else NULL. */
static const struct val *effective(const struct parser *p,
				   const struct section *r, enum key_id k)
{
	if (r->v[k].line)
		return &r->v[k];
	if (p->credfs.v[k].line)
		return &p->credfs.v[k];
	return NULL;
}

static long effective_num(const struct parser *p, const struct section *r,
			  enum key_id k, long dflt)
{
	const struct val *v = effective(p, r, k);

	return v ? v->num : dflt;
}

/* The first line among keys of r and [credfs] that explains a problem. */
static int blame_line(const struct parser *p, const struct section *r,
		      enum key_id a, enum key_id b)
{
	if (r->v[a].line)
		return r->v[a].line;
	if (r->v[b].line)
		return r->v[b].line;
	if (p->credfs.v[a].line)
		return p->credfs.v[a].line;
	if (p->credfs.v[b].line)
		return p->credfs.v[b].line;
	return r->line;
}

static int build_signer(struct parser *p, struct cfg_signer *sg)
{
	struct section *s = &p->signer;

	if (!s->line)
		return 0;
	sg->present = 1;
	sg->line = s->line;
	if (!s->v[K_KEY].line)
		return fail(p, s->line, "[signer] needs key (the signing key's path)");
	if (!s->v[K_ISSUER].line)
		return fail(p, s->line, "[signer] needs issuer (an https:// URL)");
	sg->key = s->v[K_KEY].str;
	s->v[K_KEY].str = NULL;
	sg->key_line = s->v[K_KEY].line;
	sg->issuer = s->v[K_ISSUER].str;
	s->v[K_ISSUER].str = NULL;
	if (s->v[K_AUDIENCE].line) {
		sg->audience = s->v[K_AUDIENCE].str;
		s->v[K_AUDIENCE].str = NULL;
	} else {
		sg->audience = xstrdup(p, DEFAULT_AUDIENCE);
	}
	sg->token_lifetime = s->v[K_TOKEN_LIFETIME].line ?
				     (int)s->v[K_TOKEN_LIFETIME].num :
				     DEFAULT_TOKEN_LIFETIME;
	sg->clock_skew = s->v[K_CLOCK_SKEW].line ? (int)s->v[K_CLOCK_SKEW].num :
						   DEFAULT_CLOCK_SKEW;
	if (s->v[K_PREVIOUS_KEYS].n) {
		size_t n = s->v[K_PREVIOUS_KEYS].n;

		sg->previous_key_lines = calloc(n, sizeof(int));
		if (!sg->previous_key_lines)
			return fail_oom(p);
		for (size_t i = 0; i < n; i++)
			sg->previous_key_lines[i] = s->v[K_PREVIOUS_KEYS].line;
		sg->previous_keys = s->v[K_PREVIOUS_KEYS].list;
		sg->n_previous_keys = n;
		s->v[K_PREVIOUS_KEYS].list = NULL;
		s->v[K_PREVIOUS_KEYS].n = 0;
	}
	return p->failed ? -1 : 0;
}

/* Moves a role-only string out of r (NULL if the key is not set). */
static char *take(struct section *r, enum key_id k)
{
	char *s = r->v[k].str;

	r->v[k].str = NULL;
	return s;
}

/* The STS endpoint the AWS SDKs take from the environment when nothing
 * else names one: AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL (an empty
 * value counts as unset), neither if AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
 * is true.  Checked like sts_endpoint, the error naming the variable; a
 * trailing "/" is dropped.  Sets *out (owned by p, NULL when none is set)
 * and returns 0, or returns -1 with the error recorded. */
static int env_endpoint(struct parser *p, const char **out)
{
	static const char *const vars[] = { "AWS_ENDPOINT_URL_STS",
					    "AWS_ENDPOINT_URL" };
	const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	char label[64];

	*out = NULL;
	if (p->env_endpoint_done) {
		*out = p->env_endpoint;
		return 0;
	}
	p->env_endpoint_done = true;
	if (ignore && !strcasecmp(ignore, "true"))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		const char *url = getenv(vars[i]);
		size_t len;
		int rc;

		if (!url || !*url)
			continue;
		snprintf(label, sizeof(label), "environment variable %s",
			 vars[i]);
		/* The value stands on no line of the file. */
		p->lineno = 0;
		rc = check_url(p, label, url, URL_ENDPOINT);
		if (rc)
			return rc;
		p->env_endpoint = xstrdup(p, url);
		if (!p->env_endpoint)
			return -1;
		len = strlen(p->env_endpoint);
		while (len && p->env_endpoint[len - 1] == '/')
			p->env_endpoint[--len] = '\0';
		*out = p->env_endpoint;
		return 0;
	}
	return 0;
}

/* Fills role from its section r and the [credfs] defaults. */
static int build_role(struct parser *p, struct section *r,
		      struct cfg_role *role)
{
	const char *nm = r->name;
	const struct val *v;
	static const enum key_id sources[] = { K_SUBJECT, K_TOKEN_FILE,
					       K_SOURCE_ROLE };
	int n_sources = 0, last_line = 0;
	const char *env_url = NULL;

	memcpy(role->name, r->name, sizeof(role->name));
	role->line = r->line;

	v = effective(p, r, K_REGION);
	if (!v)
		return fail(p, r->line,
			    "role \"%s\": region is not set; set it in [credfs] or in [role %s]",
			    nm, nm);
	role->x.aws.region = xstrdup(p, v->str);
	if (!role->x.aws.region)
		return -1;
	role->x.aws.use_fips_endpoint = (int)effective_num(p, r, K_USE_FIPS, 0);
	v = effective(p, r, K_STS_ENDPOINT);
	if (!v && env_endpoint(p, &env_url))
		return -1;
	if (v) {
		role->x.aws.sts_endpoint = xstrdup(p, v->str);
	} else if (env_url) {
		role->x.aws.sts_endpoint = xstrdup(p, env_url);
	} else {
		if (role->x.aws.use_fips_endpoint && !aws_fips_supported(role->x.aws.region))
			return fail(p, blame_line(p, r, K_USE_FIPS, K_REGION),
				    "role \"%s\": no FIPS STS endpoint in region %s",
				    nm, role->x.aws.region);
		role->x.aws.sts_endpoint = aws_default_sts_endpoint(role->x.aws.region,
							  role->x.aws.use_fips_endpoint);
		if (!role->x.aws.sts_endpoint)
			fail_oom(p);
	}
	v = effective(p, r, K_CA_FILE);
	if (v)
		role->x.ca_file = xstrdup(p, v->str);
	if (p->failed)
		return -1;
	role->x.aws.duration_seconds = (int)effective_num(p, r, K_DURATION,
						    DEFAULT_DURATION);
	v = effective(p, r, K_REFRESH_FRACTION);
	role->sched.refresh_fraction = v ? v->dbl : DEFAULT_REFRESH_FRACTION;
	role->sched.min_validity = (int)effective_num(p, r, K_MIN_VALIDITY,
						DEFAULT_MIN_VALIDITY);
	role->sched.wait_timeout = (int)effective_num(p, r, K_WAIT_TIMEOUT,
						DEFAULT_WAIT_TIMEOUT);

	if (!r->v[K_ROLE_ARN].line)
		return fail(p, r->line, "role \"%s\": role_arn is required", nm);
	role->x.aws.role_arn = take(r, K_ROLE_ARN);

	for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
		if (!r->v[sources[i]].line)
			continue;
		n_sources++;
		if (r->v[sources[i]].line > last_line)
			last_line = r->v[sources[i]].line;
	}
	if (!n_sources)
		return fail(p, r->line,
			    "role \"%s\": one of subject, web_identity_token_file or source_role is required",
			    nm);
	if (n_sources > 1)
		return fail(p, last_line,
			    "role \"%s\": set only one of subject, web_identity_token_file or source_role",
			    nm);
	if (r->v[K_SUBJECT].line) {
		if (!p->signer.line)
			return fail(p, r->v[K_SUBJECT].line,
				    "role \"%s\": subject needs a [signer] section to sign its token",
				    nm);
		role->x.token_source = CFG_TOKEN_SIGNED;
		role->x.subject = take(r, K_SUBJECT);
	} else if (r->v[K_TOKEN_FILE].line) {
		role->x.token_source = CFG_TOKEN_FILE;
		role->x.web_identity_token_file = take(r, K_TOKEN_FILE);
	} else {
		int j = find_role_index(p, r->v[K_SOURCE_ROLE].str);

		if (j < 0)
			return fail(p, r->v[K_SOURCE_ROLE].line,
				    "role \"%s\": source_role \"%s\" is not a [role] in this file",
				    nm, r->v[K_SOURCE_ROLE].str);
		role->x.token_source = CFG_TOKEN_CHAINED;
		role->source_index = (size_t)j;
		role->x.source_role = take(r, K_SOURCE_ROLE);
		/* STS refuses more than an hour for role chaining. */
		if (role->x.aws.duration_seconds > CHAINED_DURATION_MAX)
			role->x.aws.duration_seconds = CHAINED_DURATION_MAX;
	}
	if (role->sched.min_validity >= role->x.aws.duration_seconds)
		return fail(p, blame_line(p, r, K_MIN_VALIDITY, K_DURATION),
			    "role \"%s\": min_validity (%d) must be less than duration_seconds (%d%s)",
			    nm, role->sched.min_validity, role->x.aws.duration_seconds,
			    role->x.token_source == CFG_TOKEN_CHAINED ?
				    ", the most for a chained role" : "");

	if (r->v[K_SESSION_NAME].line) {
		role->x.aws.session_name = take(r, K_SESSION_NAME);
	} else {
		if (asprintf(&role->x.aws.session_name, "credfs-%s", nm) < 0) {
			role->x.aws.session_name = NULL;
			return fail_oom(p);
		}
		if (strlen(role->x.aws.session_name) > 64)
			role->x.aws.session_name[64] = '\0';
	}
	role->pres.config_style = (enum cfg_config_style)effective_num(
		p, r, K_CONFIG_STYLE, CFG_STYLE_REGION);
	if (role->pres.config_style == CFG_STYLE_WEB_IDENTITY &&
	    role->x.token_source == CFG_TOKEN_CHAINED)
		return fail(p, r->v[K_CONFIG_STYLE].line ?
				       r->v[K_CONFIG_STYLE].line :
				       p->credfs.v[K_CONFIG_STYLE].line,
			    "role \"%s\": config_style = web_identity needs a token, and a source_role role has none; set config_style = process for it",
			    nm);
	role->pres.consumer_path = take(r, K_CONSUMER_PATH);
	role->pres.uid = r->v[K_UID].line ? (uid_t)r->v[K_UID].num : getuid();
	role->pres.gid = r->v[K_GID].line ? (gid_t)r->v[K_GID].num : getgid();
	role->pres.mode = r->v[K_MODE].line ? (mode_t)r->v[K_MODE].num : 0400;

	role->x.aws.extras.external_id = take(r, K_EXTERNAL_ID);
	role->x.aws.extras.policy = take(r, K_POLICY);
	role->x.aws.extras.source_identity = take(r, K_SOURCE_IDENTITY);
	role->x.aws.extras.policy_arns = r->v[K_POLICY_ARNS].list;
	role->x.aws.extras.n_policy_arns = r->v[K_POLICY_ARNS].n;
	r->v[K_POLICY_ARNS].list = NULL;
	r->v[K_POLICY_ARNS].n = 0;
	role->x.aws.extras.tags = r->v[K_TAGS].tags;
	role->x.aws.extras.n_tags = r->v[K_TAGS].n;
	r->v[K_TAGS].tags = NULL;
	r->v[K_TAGS].n = 0;
	role->x.aws.extras.transitive_tag_keys = r->v[K_TRANSITIVE].list;
	role->x.aws.extras.n_transitive_tag_keys = r->v[K_TRANSITIVE].n;
	r->v[K_TRANSITIVE].list = NULL;
	r->v[K_TRANSITIVE].n = 0;
	for (size_t i = 0; i < role->x.aws.extras.n_transitive_tag_keys; i++) {
		const char *key = role->x.aws.extras.transitive_tag_keys[i];
		bool found = false;

		for (size_t j = 0; j < role->x.aws.extras.n_tags && !found; j++)
			found = !strcasecmp(role->x.aws.extras.tags[j].key, key);
		if (!found)
			return fail(p, r->v[K_TRANSITIVE].line,
				    "role \"%s\": transitive tag key \"%s\" is not one of its tags",
				    nm, key);
	}
	return 0;
}

/* Reports the first role (in file order) that lies on a source_role loop,
 * naming the roles around it. */
static int check_cycles(struct parser *p, const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->n_roles; i++) {
		size_t j = i, steps;
		struct buf b;
		char *text;

		for (steps = 0; steps < cfg->n_roles; steps++) {
			if (cfg->roles[j].x.token_source != CFG_TOKEN_CHAINED)
				break;
			j = cfg->roles[j].source_index;
			if (j == i)
				break;
		}
		if (j != i || cfg->roles[j].x.token_source != CFG_TOKEN_CHAINED)
			continue;
		buf_init(&b, CFG_ERROR_TEXT_MAX * 4);
		if (buf_append_str(&b, cfg->roles[i].name))
			return fail_oom(p);
		j = i;
		do {
			j = cfg->roles[j].source_index;
			if (buf_printf(&b, " -> %s", cfg->roles[j].name))
				break;	/* too long: the start says enough */
		} while (j != i);
		text = b.data;
		fail(p, cfg->roles[i].line,
		     "role \"%s\": source_role chain loops: %s",
		     cfg->roles[i].name, text ? text : cfg->roles[i].name);
		buf_free(&b);
		return -1;
	}
	return 0;
}

static int build(struct parser *p, struct cfg **out)
{
	struct cfg *cfg;

	if (!p->n_roles)
		return fail(p, 0, "no [role NAME] section");
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return fail_oom(p);
	*out = cfg;
	cfg->path = xstrdup(p, p->file);
	cfg->roles = calloc(p->n_roles, sizeof(*cfg->roles));
	if (!cfg->path || !cfg->roles)
		return fail_oom(p);
	if (build_signer(p, &cfg->signer))
		return -1;
	for (size_t i = 0; i < p->n_roles; i++) {
		cfg->n_roles++;
		if (build_role(p, p->roles[i], &cfg->roles[i]))
			return -1;
		if (name_index_add(&cfg->names, cfg->roles[i].name, i, NULL))
			return fail_oom(p);
		if (cfg->roles[i].x.token_source == CFG_TOKEN_SIGNED &&
		    !(cfg->roles[i].x.audience = xstrdup(p, cfg->signer.audience)))
			return -1;
	}
	return check_cycles(p, cfg);
}

/* The message for a line inih could not parse (the current line). */
static void fail_syntax(struct parser *p, int line)
{
	const char *s = p->line.data ? p->line.data : "";

	while (isspace((unsigned char)*s))
		s++;
	if (line == p->lineno && *s == '[')
		fail(p, line, "syntax error: \"[\" without a closing \"]\"");
	else
		fail(p, line,
		     "syntax error: expected \"key = value\", a [section] header or a comment");
}

static void parser_free(struct parser *p)
{
	free_section(&p->credfs);
	free_section(&p->signer);
	for (size_t i = 0; i < p->n_roles; i++) {
		free_section(p->roles[i]);
		free(p->roles[i]);
	}
	free(p->roles);
	name_index_free(&p->role_names);
	free(p->base_dir);
	free(p->env_endpoint);
	buf_free(&p->line);
}

/* Runs inih over the reader set up in p, then the whole-file checks.
 * inih's options are process-wide; they are set here on every load (the
 * configuration is loaded from one thread at a time). */
static int parse(struct parser *p, struct cfg **out)
{
	struct cfg *cfg = NULL;
	int rc;

	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_initial_alloc = 256;
	ini_max_line = CFG_LINE_MAX + 3;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_allow_no_value = false;
	ini_stop_on_first_error = true;

	p->line_done = true;
	buf_init(&p->line, CFG_LINE_MAX + 8);
	rc = ini_parse_stream(read_piece, p, on_key, p);
	if (!p->failed) {
		if (rc > 0)
			fail_syntax(p, rc);
		else if (rc == -2)
			fail_oom(p);
		else if (rc < 0)
			fail(p, 0, "cannot be parsed");
	}
	if (!p->failed)
		build(p, &cfg);
	if (p->failed) {
		cfg_free(cfg);
		cfg = NULL;
	}
	parser_free(p);
	*out = cfg;
	return cfg ? 0 : -1;
}

static void parser_init(struct parser *p, const char *name,
			struct cfg_error *err)
{
	memset(p, 0, sizeof(*p));
	memset(err, 0, sizeof(*err));
	p->file = name ? name : "(config)";
	p->err = err;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_error *err)
{
	struct parser p;
	char eb[128];
	char *real;
	int rc;

	*out = NULL;
	parser_init(&p, path, err);
	p.fp = fopen(path, "re");
	if (!p.fp)
		return fail(&p, 0, "cannot open: %s",
			    strerror_r(errno, eb, sizeof(eb)));
	real = realpath(path, NULL);
	if (real) {
		p.base_dir = strdup(dirname(real));
		free(real);
	}
	rc = parse(&p, out);
	fclose(p.fp);
	return rc;
}

int cfg_load_string(const char *text, const char *name, struct cfg **out,
		    struct cfg_error *err)
{
	struct parser p;

	*out = NULL;
	parser_init(&p, name, err);
	p.text = text ? text : "";
	return parse(&p, out);
}

static void free_extras(struct cfg_session_extras *x)
{
	free(x->policy);
	free_list(x->policy_arns, x->n_policy_arns);
	free(x->external_id);
	free_tags(x->tags, x->n_tags);
	free_list(x->transitive_tag_keys, x->n_transitive_tag_keys);
	free(x->source_identity);
}

static void free_role(struct cfg_role *r)
{
	struct cfg_exchange *x = &r->x;

	free(x->subject);
	free(x->audience);
	free(x->web_identity_token_file);
	free(x->source_role);
	free(x->ca_file);
	free(x->aws.role_arn);
	free(x->aws.session_name);
	free(x->aws.region);
	free(x->aws.sts_endpoint);
	free_extras(&x->aws.extras);
	free(x->gcp.service_account);
	free(x->gcp.token_url);
	free(x->gcp.impersonation_url);
	free(x->gcp.scope);
	free(x->azure.tenant_id);
	free(x->azure.client_id);
	free(x->azure.authority_host);
	free(x->azure.scope);
	free(r->pres.consumer_path);
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_roles; i++)
		free_role(&cfg->roles[i]);
	free(cfg->roles);
	name_index_free(&cfg->names);
	free(cfg->endpoint.listen);
	free(cfg->endpoint.imds_role);
	free(cfg->fleet.host_id);
	free(cfg->signer.key);
	free(cfg->signer.issuer);
	free(cfg->signer.audience);
	free_list(cfg->signer.previous_keys, cfg->signer.n_previous_keys);
	free(cfg->signer.previous_key_lines);
	free(cfg->path);
	free(cfg);
}

const struct cfg_role *cfg_find_role(const struct cfg *cfg, const char *name)
{
	size_t i;

	if (!cfg || !name || name_index_find(&cfg->names, name, &i))
		return NULL;
	return &cfg->roles[i];
}

const char *cfg_cloud_name(enum cfg_cloud c)
{
	switch (c) {
	case CFG_CLOUD_AWS:
		return "aws";
	case CFG_CLOUD_GCP:
		return "gcp";
	case CFG_CLOUD_AZURE:
		return "azure";
	}
	return "unknown";
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int extras_equal(const struct cfg_session_extras *a,
			const struct cfg_session_extras *b)
{
	if (a->n_tags != b->n_tags)
		return 0;
	for (size_t i = 0; i < a->n_tags; i++)
		if (!str_eq(a->tags[i].key, b->tags[i].key) ||
		    !str_eq(a->tags[i].value, b->tags[i].value))
			return 0;
	return str_eq(a->policy, b->policy) &&
	       strv_eq(a->policy_arns, a->n_policy_arns, b->policy_arns,
		       b->n_policy_arns) &&
	       str_eq(a->external_id, b->external_id) &&
	       strv_eq(a->transitive_tag_keys, a->n_transitive_tag_keys,
		       b->transitive_tag_keys, b->n_transitive_tag_keys) &&
	       str_eq(a->source_identity, b->source_identity);
}

static int aws_equal(const struct cfg_aws *a, const struct cfg_aws *b)
{
	return str_eq(a->role_arn, b->role_arn) &&
	       str_eq(a->session_name, b->session_name) &&
	       str_eq(a->region, b->region) &&
	       str_eq(a->sts_endpoint, b->sts_endpoint) &&
	       a->use_fips_endpoint == b->use_fips_endpoint &&
	       a->duration_seconds == b->duration_seconds &&
	       extras_equal(&a->extras, &b->extras);
}

int cfg_exchange_equal(const struct cfg_exchange *a, const struct cfg_exchange *b)
{
	return a->cloud == b->cloud && a->token_source == b->token_source &&
	       str_eq(a->subject, b->subject) &&
	       str_eq(a->audience, b->audience) &&
	       str_eq(a->web_identity_token_file, b->web_identity_token_file) &&
	       str_eq(a->source_role, b->source_role) &&
	       str_eq(a->ca_file, b->ca_file) && aws_equal(&a->aws, &b->aws) &&
	       str_eq(a->gcp.service_account, b->gcp.service_account) &&
	       str_eq(a->gcp.token_url, b->gcp.token_url) &&
	       str_eq(a->gcp.impersonation_url, b->gcp.impersonation_url) &&
	       str_eq(a->gcp.scope, b->gcp.scope) &&
	       str_eq(a->azure.tenant_id, b->azure.tenant_id) &&
	       str_eq(a->azure.client_id, b->azure.client_id) &&
	       str_eq(a->azure.authority_host, b->azure.authority_host) &&
	       str_eq(a->azure.scope, b->azure.scope);
}

int cfg_schedule_equal(const struct cfg_schedule *a, const struct cfg_schedule *b)
{
	return a->refresh_fraction == b->refresh_fraction &&
	       a->min_validity == b->min_validity &&
	       a->wait_timeout == b->wait_timeout &&
	       a->refresh_jitter == b->refresh_jitter;
}

int cfg_presentation_equal(const struct cfg_presentation *a,
			   const struct cfg_presentation *b)
{
	return a->uid == b->uid && a->gid == b->gid && a->mode == b->mode &&
	       a->config_style == b->config_style &&
	       str_eq(a->consumer_path, b->consumer_path) &&
	       a->authorization_token_rotation == b->authorization_token_rotation;
}
