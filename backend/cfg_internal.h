/*
 * Private to the configuration loader (config.c and the cfg_*.c modules);
 * nothing outside backend/ includes this.
 *
 * The loader works in two passes over one struct parser:
 *   1. cfg_parse.c reads the file line by line and feeds it to inih.  Each
 *      "key = value" is looked up in the key table (cfg_keys.c), checked by
 *      the one validator of its type (cfg_values.c), and kept, with its
 *      line, in the struct section of its [section].
 *   2. config.c builds struct cfg from the sections: the key table says
 *      where every value goes (cfg_store), then each concern fills in its
 *      defaults and checks what needs more than one key: cfg_role.c for a
 *      role, cfg_http.c for [endpoint], config.c for [signer], [credfs] and
 *      the role chains.
 * The first error recorded wins (cfg_fail); every later call is a no-op,
 * so the error reported is the first one in file order for pass 1, and the
 * first one by role, in file order, for pass 2.
 */
#ifndef CREDFS_CFG_INTERNAL_H
#define CREDFS_CFG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "compiler.h"
#include "config.h"
#include "names.h"

#define CFG_LINE_MAX 8192		/* longest line, without its newline */
#define CFG_CLOUDS 3			/* the values of enum cfg_cloud */

_Static_assert(CFG_CLOUD_AZURE + 1 == CFG_CLOUDS, "one place per cloud");

enum sect_kind {
	SECT_CREDFS = 1,
	SECT_SIGNER = 2,
	SECT_ROLE = 4,
	SECT_ENDPOINT = 8,
};

/* A key of [credfs] that a role may also set for itself; the role's wins. */
#define SECT_DEFAULTABLE (SECT_CREDFS | SECT_ROLE)

/* Every key, by what it is; the index into cfg_keys[]. */
enum key_id {
	/* [credfs] defaults a role may override */
	K_REGION,
	K_STS_ENDPOINT,
	K_CA_FILE,
	K_USE_FIPS,
	K_DURATION,
	K_REFRESH_FRACTION,
	K_MIN_VALIDITY,
	K_WAIT_TIMEOUT,
	K_REFRESH_JITTER,
	K_CONFIG_STYLE,
	K_TOKEN_ROTATION,
	/* [credfs] only: the fleet */
	K_MAX_STS_RATE,
	K_MAX_STS_INFLIGHT,
	K_HOST_ID,
	/* [role NAME]: the exchange */
	K_CLOUD,
	K_ROLE_ARN,
	K_SUBJECT,
	K_TOKEN_FILE,
	K_SOURCE_ROLE,
	K_AUDIENCE,
	K_SESSION_NAME,
	K_EXTERNAL_ID,
	K_POLICY,
	K_POLICY_ARNS,
	K_TAGS,
	K_TRANSITIVE,
	K_SOURCE_IDENTITY,
	K_SERVICE_ACCOUNT,
	K_TOKEN_URL,
	K_IMPERSONATION_URL,
	K_TENANT_ID,
	K_CLIENT_ID,
	K_AUTHORITY_HOST,
	K_SCOPE,
	/* [role NAME]: the presentation */
	K_UID,
	K_GID,
	K_MODE,
	K_CONSUMER_PATH,
	/* [signer] */
	K_KEY,
	K_ISSUER,
	K_SIGNER_AUDIENCE,
	K_TOKEN_LIFETIME,
	K_CLOCK_SKEW,
	K_PREVIOUS_KEYS,
	/* [endpoint] */
	K_LISTEN,
	K_IMDS_ROLE,
	K_COUNT
};

/* How a value is written and checked; one validator each (cfg_values.c). */
enum val_type {
	V_TEXT,		/* no control characters, at most max characters */
	V_PATH,		/* relative: to the configuration's directory */
	V_PATH_LIST,	/* V_PATHs, separated by commas or spaces */
	V_CA_FILE,	/* a V_PATH that is a readable regular file */
	V_BOOL,
	V_INT,		/* a whole number, min..max */
	V_FRACTION,	/* a decimal number, min < n < max */
	V_NUMBER,	/* a decimal number, min <= n <= max */
	V_CHOICE,	/* one of the row's words; the value is its index */
	V_REGION,
	V_URL,		/* the endpoint rule (cfg_url.c), kept as written */
	V_URL_BASE,	/* the endpoint rule, trailing "/" dropped */
	V_URL_DIR,	/* the endpoint rule, ending with exactly one "/" */
	V_ISSUER,	/* the issuer rule (cfg_url.c) */
	V_ROLE_ARN,
	V_ROLE_REF,	/* a role name (resolved when the whole file is read) */
	V_ID,		/* a uid or gid */
	V_MODE,		/* 0400 or 0440 */
	V_AWS_NAME,	/* min..max of [A-Za-z0-9+=,.@_-] */
	V_EXTERNAL_ID,	/* min..max of [A-Za-z0-9+=,.@:/_-]; never echoed */
	V_POLICY,	/* a JSON object, at most max characters compacted */
	V_POLICY_ARNS,	/* at most max, separated by commas or spaces */
	V_TAGS,		/* Key=Value, ..., at most max */
	V_TAG_KEYS,	/* at most max, separated by commas or spaces */
	V_CONSUMER_PATH, /* absolute, safe in a command line and an INI value */
	V_EMAIL,	/* a service account's e-mail address */
	V_SCOPES,	/* OAuth scopes, separated by spaces, at most max */
	V_GUID,		/* stored lower case */
	V_LISTEN,	/* address:port, ..., at most max (cfg_http.c) */
	V_COUNT
};

/* What a checked value holds (struct val), by type. */
enum val_form {
	F_NONE,
	F_STR,
	F_NUM,
	F_DBL,
	F_STR_LIST,
	F_TAG_LIST,
	F_LISTEN_LIST,
};

/* The C type of the field a value is stored in. */
enum c_type {
	C_NONE,		/* nowhere: not a key of that cloud */
	C_STR,
	C_INT,
	C_UINT,		/* also uid_t, gid_t, mode_t and the enums */
	C_DOUBLE,
	C_STR_LIST,
	C_TAG_LIST,
	C_LISTEN_LIST,
};

#define CFG_CTYPE_OF(lvalue) _Generic((lvalue),				\
	char *: C_STR, int: C_INT, unsigned: C_UINT, double: C_DOUBLE,	\
	char **: C_STR_LIST, struct cfg_tag *: C_TAG_LIST,		\
	struct cfg_listen *: C_LISTEN_LIST)

/* Which struct of struct cfg a key's value lands in. */
enum cfg_part {
	PART_ROLE,	/* struct cfg_role (for every role, from its own key or
			 * the [credfs] default) */
	PART_SIGNER,	/* struct cfg_signer */
	PART_FLEET,	/* struct cfg_fleet */
	PART_ENDPOINT,	/* struct cfg_endpoint */
};

/* Where in its part a value goes; lists also store their length. */
struct cfg_place {
	enum c_type ctype;
	size_t offset;
	size_t count_offset;
};

#define CFG_PLACE(type, field)						\
	{ CFG_CTYPE_OF(((type *)0)->field), offsetof(type, field), 0 }
#define CFG_LIST_PLACE(type, field, count)				\
	{ CFG_CTYPE_OF(((type *)0)->field), offsetof(type, field),	\
	  offsetof(type, count) }

/* One row of the key table. */
struct key_def {
	const char *name;
	unsigned sections;		/* mask of enum sect_kind */
	enum val_type type;
	double min, max;		/* bounds: of a number, of a text's
					 * length, of a list's count */
	const char *example;		/* V_FRACTION, V_NUMBER: for messages */
	const char *const *words;	/* V_CHOICE: NULL-terminated */
	enum cfg_part part;
	/* PART_ROLE: the place for a role of each cloud; C_NONE means the
	 * key is not one of that cloud's (an error in the role itself,
	 * unused when it comes from [credfs]).  Other parts: at[0]. */
	struct cfg_place at[CFG_CLOUDS];
	bool inert_elsewhere;		/* in a role of another cloud: unused,
					 * not an error */
};

extern const struct key_def cfg_keys[K_COUNT];

/* One key as written, after its validator. */
struct val {
	int line;			/* 0: not set */
	enum val_form form;
	size_t n;			/* the lists' length */
	union {
		char *str;
		long num;
		double dbl;
		char **list;
		struct cfg_tag *tags;
		struct cfg_listen *listen;
	};
};

struct section {
	enum sect_kind kind;
	int line;			/* 0: the section is absent */
	char name[CFG_ROLE_NAME_MAX + 1];
	struct val v[K_COUNT];
};

/* Role sections are carved from chunks of their own (cfg_parse.c). */
struct section_chunk;

/* Role name_id()s seen so far -> index into parser.roles. */
struct id_index {
	struct { uint64_t id; size_t value; bool used; } *tab;
	size_t cap, n;
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
	struct section endpoint;
	struct section **roles;
	size_t n_roles, cap_roles;
	struct section_chunk *chunks;	/* where roles[] live */
	struct name_index role_names;	/* name -> index into roles */
	struct id_index role_ids;	/* name_id -> index into roles */
	struct section *cur;		/* NULL before the first header */

	/* The STS endpoint named by the environment, looked up once, when
	 * the first AWS role without sts_endpoint needs it. */
	bool env_endpoint_done;
	char *env_endpoint;		/* NULL: none */
};

/* ---- errors and small helpers (config.c) ---- */

/* Records the error unless one is recorded already.  Always -1. */
int cfg_fail(struct parser *p, int line, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
int cfg_fail_oom(struct parser *p);
/* strdup that records out-of-memory. */
char *cfg_strdup(struct parser *p, const char *s) WUR;
/* The role index of name, or -1. */
int cfg_role_index(const struct parser *p, const char *name);
/* Opens path for reading, without blocking (a FIFO or a device must never
 * hang the loader), if it is a regular file.  Returns the descriptor; -1
 * with errno set when it cannot be opened; -2 when it is no regular file
 * (*type then says what it is, as S_IFMT bits). */
int cfg_open_regular(const char *path, mode_t *type) WUR;

/* ---- the key table (cfg_keys.c) ---- */

/* The row for name in a section of kind: 0 and *id, or -1 when the name
 * is no key at all, or -2 when it is a key of other sections (*sections
 * then says which). */
int cfg_find_key(const char *name, enum sect_kind kind, enum key_id *id,
		 unsigned *sections);
/* Writes v at place pl of base (the struct of the key's part).  Strings
 * and numbers are moved out of v when move, copied otherwise; lists are
 * always moved (no list key is defaultable).  0, or -1 with the error
 * recorded. */
int cfg_store(struct parser *p, const struct cfg_place *pl, void *base,
	      struct val *v, bool move);
/* Stores every key of section s whose part is part into base (moving). */
int cfg_store_section(struct parser *p, struct section *s, enum cfg_part part,
		      void *base);
void cfg_val_free(struct val *v);
void cfg_section_free(struct section *s);
/* "[credfs]", "[role NAME]", ... into out. */
void cfg_section_label(const struct section *s, char *out, size_t len);

/* ---- the validators (cfg_values.c) ---- */

/* Checks value against the type of key k, filling v.  0, or -1 with the
 * error recorded at the current line. */
int cfg_check_value(struct parser *p, enum key_id k, const char *value,
		    struct val *v);

/* ---- URLs (cfg_url.c) ---- */

enum cfg_url_rule {
	CFG_URL_ENDPOINT,	/* https://, or http:// to a loopback address */
	CFG_URL_ISSUER,		/* https://, no port, no trailing "/" */
};

/* Checks url against rule; label names it in the message ("sts_endpoint",
 * "environment variable AWS_ENDPOINT_URL").  0; -1 with a sentence in
 * msg; -ENOMEM. */
int cfg_url_check(const char *label, const char *url, enum cfg_url_rule rule,
		  char *msg, size_t len) WUR;

/* ---- [endpoint] (cfg_http.c) ---- */

/* Parses one listen address ("127.0.0.1:9911", "[::1]:9911") and checks
 * that it may serve plain HTTP.  0, or -1 with a sentence in msg. */
int cfg_listen_parse(const char *item, struct cfg_listen *out, char *msg,
		     size_t len);
/* Whether two listen addresses are the same address and port. */
bool cfg_listen_same(const struct cfg_listen *a, const struct cfg_listen *b);
/* Fills cfg->endpoint from [endpoint]; needs the roles built. */
int cfg_build_endpoint(struct parser *p, struct cfg *cfg);

/* ---- roles (cfg_role.c) ---- */

/* Fills role from its section r, the [credfs] defaults and the signer
 * (already built).  0, or -1 with the error recorded. */
int cfg_build_role(struct parser *p, struct section *r,
		   const struct cfg_signer *signer, struct cfg_role *role);

/* ---- the reader (cfg_parse.c) ---- */

/* Reads the whole input set up in p (fp or text) into its sections.  0,
 * or -1 with the error recorded. */
int cfg_parse_input(struct parser *p);
void cfg_parser_free(struct parser *p);

#endif
