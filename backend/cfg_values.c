/*
 * The validators: one for each type of value (enum val_type), driven by
 * the bounds of the key's row.  Each checks one value as written and turns
 * it into what is stored (struct val); an error names the key and, unless
 * the value may be a secret, the value, at the key's line.
 */
#include "cfg_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "endpoints.h"

#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256
#define SCOPE_MAX 512			/* one scope's length */

/* ---- helpers ---- */

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
/* A service account's address goes into a URL path: nothing here needs
 * escaping there. */
static const char email_local_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-";
static const char email_domain_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";

/* True if s is min..max characters, all from set. */
static bool only_chars(const char *s, const char *set, size_t min, size_t max)
{
	size_t len = strlen(s);

	return len >= min && len <= max && strspn(s, set) == len;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* A path as written, or joined to the configuration's directory when it is
 * relative.  NULL (and an error) only when out of memory. */
static char *resolve_path(struct parser *p, const char *path)
{
	char *out;

	if (path[0] == '/' || !p->base_dir)
		return cfg_strdup(p, path);
	if (asprintf(&out, "%s/%s", p->base_dir, path) < 0) {
		cfg_fail_oom(p);
		return NULL;
	}
	return out;
}

/* Splits s at any character of seps into trimmed, non-empty items, into
 * v->list and v->n.  0, or -1 when out of memory (error recorded). */
static int split_list(struct parser *p, const char *s, const char *seps,
		      struct val *v)
{
	v->form = F_STR_LIST;
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
			grown = realloc(v->list, (v->n + 1) * sizeof(*grown));
			if (!grown)
				return cfg_fail_oom(p);
			v->list = grown;
			v->list[v->n] = strndup(s, len);
			if (!v->list[v->n])
				return cfg_fail_oom(p);
			v->n++;
		}
		s += strcspn(s, seps);
	}
	return 0;
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

/* A decimal number as people write one: digits with at most one ".", no
 * sign, no exponent. */
static bool decimal_ok(const char *s)
{
	size_t dots = 0, digits = 0;

	for (; *s; s++) {
		if (*s == '.')
			dots++;
		else if (isdigit((unsigned char)*s))
			digits++;
		else
			return false;
	}
	return dots <= 1 && digits;
}

/* ---- the validators: one per enum val_type ---- */

typedef int validator(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v);

static int check_text(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	for (const char *c = value; *c; c++)
		if (iscntrl((unsigned char)*c))
			return cfg_fail(p, p->lineno,
					"%s must not contain control characters",
					k->name);
	if (strlen(value) > (size_t)k->max)
		return cfg_fail(p, p->lineno, "%s is longer than %.0f characters",
				k->name, k->max);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

static int check_path(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	v->str = resolve_path(p, value);
	return v->str ? 0 : -1;
}

static int check_path_list(struct parser *p, const struct key_def *k,
			   const char *value, struct val *v)
{
	if (split_list(p, value, ", \t", v))
		return -1;
	for (size_t i = 0; i < v->n; i++) {
		char *item = v->list[i];

		v->list[i] = resolve_path(p, item);
		free(item);
		if (!v->list[i])
			return -1;
	}
	return 0;
}

/* The file is opened, not just looked at, so that what is checked is what
 * a read would get; without blocking, so a FIFO cannot hang the loader. */
static int check_ca_file(struct parser *p, const struct key_def *k,
			 const char *value, struct val *v)
{
	char eb[128];
	mode_t type;
	int fd;

	v->str = resolve_path(p, value);
	if (!v->str)
		return -1;
	fd = cfg_open_regular(v->str, &type);
	if (fd == -1)
		return cfg_fail(p, p->lineno, "%s \"%s\" cannot be read: %s",
				k->name, value, strerror_r(errno, eb, sizeof(eb)));
	if (fd < 0)
		return cfg_fail(p, p->lineno, "%s \"%s\" is not a regular file",
				k->name, value);
	close(fd);
	return 0;
}

static int check_bool(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
	    !strcmp(value, "1"))
		v->num = 1;
	else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
		 !strcmp(value, "0"))
		v->num = 0;
	else
		return cfg_fail(p, p->lineno,
				"%s must be true or false, not \"%s\"", k->name,
				value);
	return 0;
}

static int check_int(struct parser *p, const struct key_def *k,
		     const char *value, struct val *v)
{
	long min = (long)k->min, max = (long)k->max, n;

	if (!*value || strspn(value, "0123456789") != strlen(value))
		return cfg_fail(p, p->lineno,
				"%s must be a whole number between %ld and %ld, not \"%s\"",
				k->name, min, max, value);
	n = strlen(value) > 9 ? max + 1 : strtol(value, NULL, 10);
	if (n < min || n > max)
		return cfg_fail(p, p->lineno,
				"%s must be between %ld and %ld, not %s",
				k->name, min, max, value);
	v->num = n;
	return 0;
}

static int check_fraction(struct parser *p, const struct key_def *k,
			  const char *value, struct val *v)
{
	if (!decimal_ok(value))
		return cfg_fail(p, p->lineno,
				"%s must be a number between %g and %g, such as %s, not \"%s\"",
				k->name, k->min, k->max, k->example, value);
	v->dbl = strtod(value, NULL);
	if (!(v->dbl > k->min && v->dbl < k->max))
		return cfg_fail(p, p->lineno,
				"%s must be greater than %g and less than %g, not %s",
				k->name, k->min, k->max, value);
	return 0;
}

static int check_number(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	if (!decimal_ok(value))
		return cfg_fail(p, p->lineno,
				"%s must be a number from %g to %g, such as %s, not \"%s\"",
				k->name, k->min, k->max, k->example, value);
	v->dbl = strtod(value, NULL);
	if (!(v->dbl >= k->min && v->dbl <= k->max))
		return cfg_fail(p, p->lineno,
				"%s must be from %g to %g, not %s", k->name,
				k->min, k->max, value);
	return 0;
}

/* "a, b or c", the words of k, into out. */
static void words_text(const struct key_def *k, char *out, size_t len)
{
	size_t used = 0, n = 0;

	out[0] = '\0';
	while (k->words[n])
		n++;
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 !i ? "" : i + 1 == n ? " or " : ", ",
					 k->words[i]);
}

static int check_choice(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	char words[128];

	for (long i = 0; k->words[i]; i++)
		if (!strcmp(value, k->words[i])) {
			v->num = i;
			return 0;
		}
	words_text(k, words, sizeof(words));
	return cfg_fail(p, p->lineno, "%s must be %s, not \"%s\"", k->name,
			words, value);
}

static int check_region(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	if (!aws_region_valid(value))
		return cfg_fail(p, p->lineno,
				"%s must be a region name like \"ap-northeast-1\", not \"%s\"",
				k->name, value);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

/* The URL types differ only in the rule and in what is done with a
 * trailing "/": kept, dropped ("https://host/" and "https://host" are the
 * same endpoint base), or made exactly one (a base that paths are
 * appended to). */
static int check_url(struct parser *p, const struct key_def *k,
		     const char *value, struct val *v)
{
	enum cfg_url_rule rule = k->type == V_ISSUER ? CFG_URL_ISSUER :
						       CFG_URL_ENDPOINT;
	char msg[CFG_ERROR_TEXT_MAX];
	size_t len;
	int rc = cfg_url_check(k->name, value, rule, msg, sizeof(msg));

	if (rc == -ENOMEM)
		return cfg_fail_oom(p);
	if (rc)
		return cfg_fail(p, p->lineno, "%s", msg);
	len = strlen(value);
	if (k->type == V_URL_BASE || k->type == V_URL_DIR)
		while (len && value[len - 1] == '/')
			len--;
	if (asprintf(&v->str, "%.*s%s", (int)len, value,
		     k->type == V_URL_DIR ? "/" : "") < 0) {
		v->str = NULL;
		return cfg_fail_oom(p);
	}
	return 0;
}

static int check_role_arn(struct parser *p, const struct key_def *k,
			  const char *value, struct val *v)
{
	if (!arn_ok(value, "role", false))
		return cfg_fail(p, p->lineno,
				"%s must look like arn:aws:iam::123456789012:role/NAME, not \"%s\"",
				k->name, value);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

static int check_role_ref(struct parser *p, const struct key_def *k,
			  const char *value, struct val *v)
{
	if (!only_chars(value, role_name_chars, 1, CFG_ROLE_NAME_MAX))
		return cfg_fail(p, p->lineno,
				"%s \"%s\" is not a role name (1 to %d characters of A-Z a-z 0-9 _ -)",
				k->name, value, CFG_ROLE_NAME_MAX);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

static int check_id(struct parser *p, const struct key_def *k,
		    const char *value, struct val *v)
{
	unsigned long long id = ~0ULL;

	if (strlen(value) <= 10 && strspn(value, "0123456789") == strlen(value))
		id = strtoull(value, NULL, 10);
	/* (uid_t)-1 means "no change" to chown(): not an owner. */
	if (id >= 0xffffffffULL)
		return cfg_fail(p, p->lineno,
				"%s must be a number from 0 to 4294967294, not \"%s\"",
				k->name, value);
	v->num = (long)id;
	return 0;
}

static int check_mode(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	if (!strcmp(value, "0400"))
		v->num = 0400;
	else if (!strcmp(value, "0440"))
		v->num = 0440;
	else
		return cfg_fail(p, p->lineno, "%s must be 0400 or 0440, not \"%s\"",
				k->name, value);
	return 0;
}

static int check_aws_name(struct parser *p, const struct key_def *k,
			  const char *value, struct val *v)
{
	if (!only_chars(value, aws_name_chars, (size_t)k->min, (size_t)k->max))
		return cfg_fail(p, p->lineno,
				"%s must be %.0f to %.0f characters of A-Z a-z 0-9 + = , . @ _ -, not \"%s\"",
				k->name, k->min, k->max, value);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

/* An external ID is shared with the role's owner: never echoed. */
static int check_external_id(struct parser *p, const struct key_def *k,
			     const char *value, struct val *v)
{
	if (!only_chars(value, external_id_chars, (size_t)k->min,
			(size_t)k->max))
		return cfg_fail(p, p->lineno,
				"%s must be %.0f to %.0f characters of A-Z a-z 0-9 + = , . @ : / _ -",
				k->name, k->min, k->max);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

/* A JSON session policy, kept compact as STS counts it.  An error names
 * the column but never echoes the policy. */
static int check_policy(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	json_error_t jerr;
	json_t *j = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
	const char *line = p->line.data ? p->line.data : "";
	const char *eq = strchr(line, '='), *at;
	char *near;

	if (!j) {
		/* jansson quotes the offending token; keep the message short. */
		near = strstr(jerr.text, " near ");
		if (near)
			*near = '\0';
		/* jansson counts within the value; count within the line. */
		at = eq ? strstr(eq, value) : NULL;
		return cfg_fail(p, p->lineno,
				"%s is not valid JSON: %s (column %d)", k->name,
				jerr.text,
				jerr.column + (at ? (int)(at - line) : 0));
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return cfg_fail(p, p->lineno, "%s must be a JSON object ({...})",
				k->name);
	}
	v->str = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!v->str)
		return cfg_fail_oom(p);
	if (strlen(v->str) > (size_t)k->max)
		return cfg_fail(p, p->lineno,
				"%s is %zu characters long without spaces; STS takes at most %.0f",
				k->name, strlen(v->str), k->max);
	return 0;
}

static int check_policy_arns(struct parser *p, const struct key_def *k,
			     const char *value, struct val *v)
{
	if (split_list(p, value, ", \t", v))
		return -1;
	if (v->n > (size_t)k->max)
		return cfg_fail(p, p->lineno,
				"%s lists %zu ARNs; STS takes at most %.0f",
				k->name, v->n, k->max);
	for (size_t i = 0; i < v->n; i++)
		if (!arn_ok(v->list[i], "policy", true))
			return cfg_fail(p, p->lineno,
					"%s: \"%s\" is not a policy ARN like arn:aws:iam::123456789012:policy/NAME",
					k->name, v->list[i]);
	return 0;
}

static int check_tag_keys(struct parser *p, const struct key_def *k,
			  const char *value, struct val *v)
{
	if (split_list(p, value, ", \t", v))
		return -1;
	if (v->n > (size_t)k->max)
		return cfg_fail(p, p->lineno,
				"%s lists %zu keys; STS takes at most %.0f",
				k->name, v->n, k->max);
	for (size_t i = 0; i < v->n; i++)
		if (strlen(v->list[i]) > TAG_KEY_MAX || !tag_text_ok(v->list[i]))
			return cfg_fail(p, p->lineno, "%s: \"%s\" is not a tag key",
					k->name, v->list[i]);
	return 0;
}

/* One "Key = Value" item of tags into tag (both trimmed).  0, or -1 with
 * the error recorded. */
static int parse_tag(struct parser *p, const struct key_def *k,
		     const char *item, struct cfg_tag *tag)
{
	const char *eq = strchr(item, '='), *value;
	size_t klen;

	if (!eq || eq == item)
		return cfg_fail(p, p->lineno, "%s: \"%s\" is not Key=Value",
				k->name, item);
	klen = (size_t)(eq - item);
	while (klen && isspace((unsigned char)item[klen - 1]))
		klen--;
	value = eq + 1;
	while (isspace((unsigned char)*value))
		value++;
	tag->key = strndup(item, klen);
	tag->value = strdup(value);
	if (!tag->key || !tag->value)
		return cfg_fail_oom(p);
	if (klen > TAG_KEY_MAX || strlen(value) > TAG_VALUE_MAX)
		return cfg_fail(p, p->lineno,
				"%s: tag \"%s\" is too long (keys up to %d characters, values up to %d)",
				k->name, tag->key, TAG_KEY_MAX, TAG_VALUE_MAX);
	if (!tag_text_ok(tag->key) || !tag_text_ok(tag->value))
		return cfg_fail(p, p->lineno,
				"%s: tag \"%s\" may only contain letters, digits, spaces and _ . : / = + - @",
				k->name, item);
	return 0;
}

/* "K=V, K=V": the items are split like a list, then each becomes a tag
 * in place of its text. */
static int check_tags(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	struct val items = { 0 };
	int rc = -1;

	if (split_list(p, value, ",", &items))
		goto out;
	if (items.n > (size_t)k->max) {
		cfg_fail(p, p->lineno, "%s has %zu tags; STS takes at most %.0f",
			 k->name, items.n, k->max);
		goto out;
	}
	v->form = F_TAG_LIST;
	v->tags = calloc(items.n ? items.n : 1, sizeof(*v->tags));
	if (!v->tags) {
		cfg_fail_oom(p);
		goto out;
	}
	for (size_t i = 0; i < items.n; i++) {
		v->n++;
		if (parse_tag(p, k, items.list[i], &v->tags[i]))
			goto out;
		for (size_t j = 0; j < i; j++)
			if (!strcasecmp(v->tags[j].key, v->tags[i].key)) {
				cfg_fail(p, p->lineno,
					 "%s: tag key \"%s\" appears twice",
					 k->name, v->tags[i].key);
				goto out;
			}
	}
	rc = 0;
out:
	cfg_val_free(&items);
	return rc;
}

static int check_consumer_path(struct parser *p, const struct key_def *k,
			       const char *value, struct val *v)
{
	size_t len = strlen(value);

	if (value[0] != '/' ||
	    !only_chars(value, consumer_path_chars, 1, (size_t)k->max))
		return cfg_fail(p, p->lineno,
				"%s must be an absolute path of letters, digits and / . _ - + @ = , : ~ %%, not \"%s\"",
				k->name, value);
	while (len > 1 && value[len - 1] == '/')
		len--;
	if (len == 1)
		return cfg_fail(p, p->lineno,
				"%s must be a directory below \"/\", such as /root/.aws",
				k->name);
	v->str = strndup(value, len);
	return v->str ? 0 : cfg_fail_oom(p);
}

/* LOCAL@DOMAIN: a local part of letters, digits and . + _ -, a domain of
 * at least two labels. */
static int check_email(struct parser *p, const struct key_def *k,
		       const char *value, struct val *v)
{
	const char *at = strchr(value, '@');
	const char *domain = at ? at + 1 : "";
	size_t local = at ? (size_t)(at - value) : 0;
	bool ok = local >= 1 && local <= 64 && strlen(value) <= (size_t)k->max &&
		  strspn(value, email_local_chars) == local &&
		  only_chars(domain, email_domain_chars, 3, 253) &&
		  strchr(domain, '.') && domain[0] != '.' && domain[0] != '-' &&
		  domain[strlen(domain) - 1] != '.' && !strstr(domain, "..");

	if (!ok)
		return cfg_fail(p, p->lineno,
				"%s must be an e-mail address like app@project.iam.gserviceaccount.com, not \"%s\"",
				k->name, value);
	v->str = cfg_strdup(p, value);
	return v->str ? 0 : -1;
}

/* Scopes are printable ASCII words; they are kept separated by one space
 * each, as the token endpoints take them. */
static int check_scopes(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	struct val words = { 0 };
	struct buf b;
	int rc = -1;

	buf_init(&b, CFG_LINE_MAX + 1);
	if (split_list(p, value, " \t", &words))
		goto out;
	if (words.n > (size_t)k->max) {
		cfg_fail(p, p->lineno, "%s lists %zu scopes; at most %.0f",
			 k->name, words.n, k->max);
		goto out;
	}
	for (size_t i = 0; i < words.n; i++) {
		const char *w = words.list[i];

		for (const char *c = w; *c; c++)
			if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\') {
				cfg_fail(p, p->lineno,
					 "%s: scopes are printable ASCII without quotes or backslashes, separated by spaces",
					 k->name);
				goto out;
			}
		if (strlen(w) > SCOPE_MAX) {
			cfg_fail(p, p->lineno,
				 "%s: a scope is longer than %d characters",
				 k->name, SCOPE_MAX);
			goto out;
		}
		if (buf_printf(&b, "%s%s", i ? " " : "", w)) {
			cfg_fail_oom(p);
			goto out;
		}
	}
	v->str = buf_steal(&b);
	rc = v->str ? 0 : cfg_fail_oom(p);
out:
	buf_free(&b);
	cfg_val_free(&words);
	return rc;
}

/* 8-4-4-4-12 hexadecimal digits, as Entra ID shows tenant and client IDs;
 * stored lower case so that the same ID is always the same text. */
static int check_guid(struct parser *p, const struct key_def *k,
		      const char *value, struct val *v)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	bool ok = strlen(value) == sizeof(shape) - 1;

	for (size_t i = 0; ok && value[i]; i++)
		ok = shape[i] == '-' ? value[i] == '-' :
				       isxdigit((unsigned char)value[i]);
	if (!ok)
		return cfg_fail(p, p->lineno,
				"%s must be a GUID like 00000000-0000-0000-0000-000000000000, not \"%s\"",
				k->name, value);
	v->str = cfg_strdup(p, value);
	if (!v->str)
		return -1;
	for (char *c = v->str; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;
}

static int check_listen(struct parser *p, const struct key_def *k,
			const char *value, struct val *v)
{
	struct val items = { 0 };
	char msg[CFG_ERROR_TEXT_MAX];
	int rc = -1;

	if (split_list(p, value, ",", &items))
		goto out;
	if (items.n > (size_t)k->max) {
		cfg_fail(p, p->lineno, "%s lists %zu addresses; at most %.0f",
			 k->name, items.n, k->max);
		goto out;
	}
	v->form = F_LISTEN_LIST;
	v->listen = calloc(items.n ? items.n : 1, sizeof(*v->listen));
	if (!v->listen) {
		cfg_fail_oom(p);
		goto out;
	}
	for (size_t i = 0; i < items.n; i++) {
		if (cfg_listen_parse(items.list[i], &v->listen[i], msg,
				     sizeof(msg))) {
			cfg_fail(p, p->lineno, "%s: %s", k->name, msg);
			goto out;
		}
		v->n++;
		for (size_t j = 0; j < i; j++)
			if (cfg_listen_same(&v->listen[j], &v->listen[i])) {
				cfg_fail(p, p->lineno,
					 "%s: \"%s\" is the same address as \"%s\"",
					 k->name, v->listen[i].text,
					 v->listen[j].text);
				goto out;
			}
	}
	rc = 0;
out:
	cfg_val_free(&items);
	return rc;
}

static const struct {
	validator *check;
	enum val_form form;
} types[V_COUNT] = {
	[V_TEXT] = { check_text, F_STR },
	[V_PATH] = { check_path, F_STR },
	[V_PATH_LIST] = { check_path_list, F_STR_LIST },
	[V_CA_FILE] = { check_ca_file, F_STR },
	[V_BOOL] = { check_bool, F_NUM },
	[V_INT] = { check_int, F_NUM },
	[V_FRACTION] = { check_fraction, F_DBL },
	[V_NUMBER] = { check_number, F_DBL },
	[V_CHOICE] = { check_choice, F_NUM },
	[V_REGION] = { check_region, F_STR },
	[V_URL] = { check_url, F_STR },
	[V_URL_BASE] = { check_url, F_STR },
	[V_URL_DIR] = { check_url, F_STR },
	[V_ISSUER] = { check_url, F_STR },
	[V_ROLE_ARN] = { check_role_arn, F_STR },
	[V_ROLE_REF] = { check_role_ref, F_STR },
	[V_ID] = { check_id, F_NUM },
	[V_MODE] = { check_mode, F_NUM },
	[V_AWS_NAME] = { check_aws_name, F_STR },
	[V_EXTERNAL_ID] = { check_external_id, F_STR },
	[V_POLICY] = { check_policy, F_STR },
	[V_POLICY_ARNS] = { check_policy_arns, F_STR_LIST },
	[V_TAGS] = { check_tags, F_TAG_LIST },
	[V_TAG_KEYS] = { check_tag_keys, F_STR_LIST },
	[V_CONSUMER_PATH] = { check_consumer_path, F_STR },
	[V_EMAIL] = { check_email, F_STR },
	[V_SCOPES] = { check_scopes, F_STR },
	[V_GUID] = { check_guid, F_STR },
	[V_LISTEN] = { check_listen, F_LISTEN_LIST },
};

int cfg_check_value(struct parser *p, enum key_id k, const char *value,
		    struct val *v)
{
	const struct key_def *def = &cfg_keys[k];

	/* Set before the validator runs, so that what it allocated before
	 * failing is freed with the section. */
	v->form = types[def->type].form;
	if (types[def->type].check(p, def, value, v))
		return -1;
	return p->failed ? -1 : 0;
}
