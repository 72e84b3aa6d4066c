/*
 * The configuration file (credfs.conf(5)): loading it, and
 * the checks that need the whole file.
 *
 * The file is read into sections by cfg_parse.c, every value checked by
 * the validator of its type (cfg_values.c); then struct cfg is built here,
 * each value stored where the key table says (cfg_keys.c):
 * [signer], the fleet bounds of [credfs], each role (cfg_role.c), the
 * role chains, and [endpoint] (cfg_http.c).  See cfg_internal.h.
 *
 * Relative paths (key, previous_keys, ca_file, web_identity_token_file)
 * are taken relative to the directory of the configuration file, because
 * the daemon changes to "/" when it detaches.  cfg_load_string() keeps
 * them as written.
 */
#include "cfg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memfd.h"

#define DEFAULT_SIGNER_AUDIENCE "sts.amazonaws.com"

static const struct cfg_signer signer_defaults = {
	.token_lifetime = 3600,
	.clock_skew = 30,
	/* audience: DEFAULT_SIGNER_AUDIENCE */
};

/* ---- errors and small helpers ---- */

int cfg_fail(struct parser *p, int line, const char *fmt, ...)
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

int cfg_fail_oom(struct parser *p)
{
	return cfg_fail(p, 0, "out of memory");
}

char *cfg_strdup(struct parser *p, const char *s)
{
	char *d = strdup(s);

	if (!d)
		cfg_fail_oom(p);
	return d;
}

int cfg_role_index(const struct parser *p, const char *name)
{
	size_t i;

	return name_index_find(&p->role_names, name, &i) ? -1 : (int)i;
}

int cfg_open_regular(const char *path, mode_t *type)
{
	struct stat st;
	int fd;

	/* Looked at first, so that a device is never even opened. */
	if (stat(path, &st))
		return -1;
	*type = st.st_mode & S_IFMT;
	if (!S_ISREG(st.st_mode))
		return -2;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	/* It may have been replaced in between. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		*type = st.st_mode & S_IFMT;
		close(fd);
		return -2;
	}
	return fd;
}

/* What a file that is not a regular one is, for messages. */
static const char *file_type_name(mode_t type)
{
	switch (type) {
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	}
	return "not a regular file";
}

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

/* ---- the whole file ---- */

static int build_signer(struct parser *p, struct cfg_signer *sg)
{
	struct section *s = &p->signer;
	size_t n = s->v[K_PREVIOUS_KEYS].n;

	if (!s->line)
		return 0;
	*sg = signer_defaults;
	sg->present = 1;
	sg->line = s->line;
	if (!s->v[K_KEY].line)
		return cfg_fail(p, s->line,
				"[signer] needs key (the signing key's path)");
	if (!s->v[K_ISSUER].line)
		return cfg_fail(p, s->line,
				"[signer] needs issuer (an https:// URL)");
	sg->key_line = s->v[K_KEY].line;
	if (n) {
		sg->previous_key_lines = calloc(n, sizeof(int));
		if (!sg->previous_key_lines)
			return cfg_fail_oom(p);
		for (size_t i = 0; i < n; i++)
			sg->previous_key_lines[i] = s->v[K_PREVIOUS_KEYS].line;
	}
	if (cfg_store_section(p, s, PART_SIGNER, sg))
		return -1;
	if (!sg->audience)
		sg->audience = cfg_strdup(p, DEFAULT_SIGNER_AUDIENCE);
	return sg->audience ? 0 : -1;
}

/* Reports the first role (in file order) that lies on a source_role loop,
 * at its source_role line, naming the roles around it. */
static int check_cycles(struct parser *p, const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->n_roles; i++) {
		size_t j = i, steps;
		struct buf b;

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
			return cfg_fail_oom(p);
		do {
			j = cfg->roles[j].source_index;
			if (buf_printf(&b, " -> %s", cfg->roles[j].name))
				break;	/* too long: the start says enough */
		} while (j != i);
		cfg_fail(p, p->roles[i]->v[K_SOURCE_ROLE].line,
			 "role \"%s\": source_role chain loops: %s",
			 cfg->roles[i].name, b.data ? b.data : cfg->roles[i].name);
		buf_free(&b);
		return -1;
	}
	return 0;
}

static int build(struct parser *p, struct cfg **out)
{
	struct cfg *cfg;

	if (!p->n_roles)
		return cfg_fail(p, 0, "no [role NAME] section");
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return cfg_fail_oom(p);
	*out = cfg;
	cfg->path = cfg_strdup(p, p->file);
	cfg->roles = calloc(p->n_roles, sizeof(*cfg->roles));
	if (!cfg->path || !cfg->roles)
		return cfg_fail_oom(p);
	if (build_signer(p, &cfg->signer) ||
	    cfg_store_section(p, &p->credfs, PART_FLEET, &cfg->fleet))
		return -1;
	for (size_t i = 0; i < p->n_roles; i++) {
		cfg->n_roles++;
		if (cfg_build_role(p, p->roles[i], &cfg->signer, &cfg->roles[i]))
			return -1;
		if (name_index_add(&cfg->names, cfg->roles[i].name, i, NULL))
			return cfg_fail_oom(p);
	}
	return check_cycles(p, cfg) || cfg_build_endpoint(p, cfg) ? -1 : 0;
}

/* Reads the input set up in p and builds *out from it; frees p. */
static int load(struct parser *p, struct cfg **out)
{
	struct cfg *cfg = NULL;

	if (!cfg_parse_input(p))
		build(p, &cfg);
	if (p->failed) {
		cfg_free(cfg);
		cfg = NULL;
	}
	cfg_parser_free(p);
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

/* The configuration is opened without blocking and only if it is a
 * regular file: a FIFO or a device given by mistake is refused at once,
 * never waited on.  fd >= 0 or -1 with err filled. */
static int open_config(struct parser *p, const char *path)
{
	char eb[128];
	mode_t type = 0;
	int fd = cfg_open_regular(path, &type);

	if (fd == -1)
		return cfg_fail(p, 0, "cannot open: %s",
				strerror_r(errno, eb, sizeof(eb)));
	if (fd < 0 && type == S_IFDIR)
		return cfg_fail(p, 0, "cannot read: %s",
				strerror_r(EISDIR, eb, sizeof(eb)));
	if (fd < 0)
		return cfg_fail(p, 0, "is %s, not a regular file",
				file_type_name(type));
	return fd;
}

/* Parses what fd holds from its start (fd is closed), relative paths
 * resolved beside path. */
static int load_fd(struct parser *p, int fd, const char *path, struct cfg **out)
{
	char *real;
	int rc;

	p->fp = fdopen(fd, "r");
	if (!p->fp) {
		close(fd);
		return cfg_fail_oom(p);
	}
	/* Relative paths are beside the file.  One that is gone (a snapshot
	 * of it is being parsed) is taken by its name, absolute in the
	 * daemon. */
	real = realpath(path, NULL);
	if (!real && path[0] == '/')
		real = strdup(path);
	if (real) {
		p->base_dir = strdup(dirname(real));
		free(real);
	}
	rc = load(p, out);
	fclose(p->fp);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_error *err)
{
	struct parser p;
	int fd;

	*out = NULL;
	parser_init(&p, path, err);
	fd = open_config(&p, path);
	return fd < 0 ? -1 : load_fd(&p, fd, path, out);
}

/* A descriptor of its own on what snap holds, read from the start. */
static int reopen_snapshot(int snap)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", snap);
	return open(proc, O_RDONLY | O_CLOEXEC);
}

int cfg_load_snapshot(const char *path, struct cfg **out, int *snapshot,
		      struct cfg_error *err)
{
	struct parser p;
	char eb[128];
	int fd, snap;

	*out = NULL;
	*snapshot = -1;
	parser_init(&p, path, err);
	fd = open_config(&p, path);
	if (fd < 0)
		return -1;
	snap = memfd_sealed_copy("credfs-config", fd);
	fd = snap >= 0 ? reopen_snapshot(snap) : -1;
	if (fd < 0) {
		if (snap >= 0)
			close(snap);
		return cfg_fail(&p, 0, "cannot read: %s",
				strerror_r(errno, eb, sizeof(eb)));
	}
	if (load_fd(&p, fd, path, out)) {
		close(snap);
		return -1;
	}
	*snapshot = snap;
	return 0;
}

int cfg_load_kept(int snapshot, const char *path, struct cfg **out,
		  struct cfg_error *err)
{
	struct parser p;
	char eb[128];
	int fd;

	*out = NULL;
	parser_init(&p, path, err);
	fd = reopen_snapshot(snapshot);
	if (fd < 0)
		return cfg_fail(&p, 0, "cannot read the configuration kept: %s",
				strerror_r(errno, eb, sizeof(eb)));
	return load_fd(&p, fd, path, out);
}

int cfg_load_string(const char *text, const char *name, struct cfg **out,
		    struct cfg_error *err)
{
	struct parser p;

	*out = NULL;
	parser_init(&p, name, err);
	p.text = text ? text : "";
	return load(&p, out);
}

/* ---- the result ---- */

static void free_list(char **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void free_extras(struct cfg_session_extras *x)
{
	free(x->policy);
	free_list(x->policy_arns, x->n_policy_arns);
	free(x->external_id);
	if (x->tags)
		for (size_t i = 0; i < x->n_tags; i++) {
			free(x->tags[i].key);
			free(x->tags[i].value);
		}
	free(x->tags);
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
