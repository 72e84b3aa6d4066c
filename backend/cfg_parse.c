/*
 * Reading a configuration: lines, sections and keys.
 *
 * inih does the lexing.  It is fed through our own reader so that we know
 * the line of every key (Debian's inih is built without
 * INI_HANDLER_LINENO) and see every section header ourselves, even one
 * with no keys under it.  Each value is checked as it arrives, so the first
 * error in file order is the one reported.
 */
#include "cfg_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include <ini.h>

/* Reserved role names: files of the mount's root (credfs(8), "THE TREE"). */
static const char *const reserved_names[] = { "metrics" };

static const char role_name_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* ---- role identities ---- */

/* Adds id -> value to ix.  0; -EEXIST with *existing set; -ENOMEM.  An
 * open-addressing table kept at most half full, like names.c's. */
static int id_index_add(struct id_index *ix, uint64_t id, size_t value,
			size_t *existing)
{
	size_t mask, i;

	if ((ix->n + 1) * 2 > ix->cap) {
		struct id_index bigger = { .cap = ix->cap ? ix->cap * 2 : 64 };

		bigger.tab = calloc(bigger.cap, sizeof(*bigger.tab));
		if (!bigger.tab)
			return -ENOMEM;
		for (size_t j = 0; j < ix->cap; j++)
			if (ix->tab[j].used &&
			    id_index_add(&bigger, ix->tab[j].id,
					 ix->tab[j].value, NULL))
				return -ENOMEM;	/* cannot happen: it fits */
		free(ix->tab);
		*ix = bigger;
	}
	mask = ix->cap - 1;
	for (i = (size_t)id & mask; ix->tab[i].used; i = (i + 1) & mask)
		if (ix->tab[i].id == id) {
			if (existing)
				*existing = ix->tab[i].value;
			return -EEXIST;
		}
	ix->tab[i].used = true;
	ix->tab[i].id = id;
	ix->tab[i].value = value;
	ix->n++;
	return 0;
}

/* ---- sections ---- */

/*
 * Role sections (each with a slot for every key, about 1.2 KB) come from
 * chunks mapped for them and unmapped whole when parsing ends.  From the
 * heap, the sections of a large file were interleaved with the strings the
 * configuration keeps, and once freed left holes no page could be given
 * back from: 100 000 roles kept 117 MB of freed sections resident beside
 * 61 MB of configuration.
 */
#define SECTIONS_PER_CHUNK 512

struct section_chunk {
	struct section_chunk *next;
	size_t used;
	size_t bytes;			/* the mapping's length */
	struct section s[];
};

/* A zeroed section from p's chunks, or NULL when out of memory. */
static struct section *section_new(struct parser *p)
{
	struct section_chunk *c = p->chunks;

	if (!c || c->used == SECTIONS_PER_CHUNK) {
		size_t bytes = sizeof(*c) + SECTIONS_PER_CHUNK * sizeof(c->s[0]);
		void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return NULL;
		c = m;		/* zeroed by the kernel */
		c->bytes = bytes;
		c->next = p->chunks;
		p->chunks = c;
	}
	return &c->s[c->used++];
}

static void section_chunks_free(struct parser *p)
{
	while (p->chunks) {
		struct section_chunk *c = p->chunks;

		p->chunks = c->next;
		munmap(c, c->bytes);
	}
}

/* Checks the NAME of a [role NAME] header (len bytes, trimmed) and copies
 * it into out.  0, or -1 with the error recorded. */
static int check_role_name(struct parser *p, const char *name, size_t len,
			   char out[CFG_ROLE_NAME_MAX + 1])
{
	if (!len)
		return cfg_fail(p, p->lineno,
				"[role] needs a name, as in [role app]");
	if (len > CFG_ROLE_NAME_MAX)
		return cfg_fail(p, p->lineno,
				"role name \"%.*s\" is longer than %d characters",
				(int)len, name, CFG_ROLE_NAME_MAX);
	memcpy(out, name, len);
	out[len] = '\0';
	if (strspn(out, role_name_chars) != len)
		return cfg_fail(p, p->lineno,
				"role name \"%s\" may only contain A-Z a-z 0-9 _ -",
				out);
	for (size_t i = 0; i < ARRAY_SIZE(reserved_names); i++)
		if (!strcmp(out, reserved_names[i]))
			return cfg_fail(p, p->lineno,
					"role name \"%s\" is reserved: MOUNTPOINT/%s is a file of credfs",
					out, out);
	return 0;
}

/* Starts the section of a [role NAME] header: refuses a name that is
 * there already or whose name_id() (which inode numbers derive from) is
 * another role's. */
static int begin_role(struct parser *p, const char *name, size_t len)
{
	char rname[CFG_ROLE_NAME_MAX + 1];
	struct section *s, **grown;
	size_t other;
	int rc;

	if (check_role_name(p, name, len, rname))
		return -1;
	if (!name_index_find(&p->role_names, rname, &other))
		return cfg_fail(p, p->lineno,
				"duplicate section [role %s] (first on line %d)",
				rname, p->roles[other]->line);
	if (p->n_roles == p->cap_roles) {
		size_t cap = p->cap_roles ? p->cap_roles * 2 : 16;

		grown = realloc(p->roles, cap * sizeof(*grown));
		if (!grown)
			return cfg_fail_oom(p);
		p->roles = grown;
		p->cap_roles = cap;
	}
	s = section_new(p);
	if (!s)
		return cfg_fail_oom(p);
	p->roles[p->n_roles++] = s;
	s->kind = SECT_ROLE;
	s->line = p->lineno;
	memcpy(s->name, rname, len + 1);
	p->cur = s;
	rc = id_index_add(&p->role_ids, name_id(s->name), p->n_roles - 1,
			  &other);
	if (rc == -EEXIST)
		return cfg_fail(p, p->lineno,
				"role name \"%s\" has the same identity as \"%s\" (line %d), so their inode numbers would clash; rename one",
				s->name, p->roles[other]->name,
				p->roles[other]->line);
	if (rc || name_index_add(&p->role_names, s->name, p->n_roles - 1, NULL))
		return cfg_fail_oom(p);
	return 0;
}

/* Starts the section named in a header (text between the brackets, len
 * bytes).  Records an error for unknown, malformed or repeated ones. */
static int begin_section(struct parser *p, const char *name, size_t len)
{
	static const struct {
		const char *name;
		enum sect_kind kind;
		size_t offset;
	} single[] = {
		{ "credfs", SECT_CREDFS, offsetof(struct parser, credfs) },
		{ "signer", SECT_SIGNER, offsetof(struct parser, signer) },
		{ "endpoint", SECT_ENDPOINT, offsetof(struct parser, endpoint) },
	};

	while (len && isspace((unsigned char)*name)) {
		name++;
		len--;
	}
	while (len && isspace((unsigned char)name[len - 1]))
		len--;
	for (size_t i = 0; i < ARRAY_SIZE(single); i++) {
		struct section *s;

		if (len != strlen(single[i].name) ||
		    memcmp(name, single[i].name, len))
			continue;
		s = (struct section *)(void *)((char *)p + single[i].offset);
		if (s->line)
			return cfg_fail(p, p->lineno,
					"duplicate section [%s] (first on line %d)",
					single[i].name, s->line);
		s->kind = single[i].kind;
		s->line = p->lineno;
		p->cur = s;
		return 0;
	}
	/* [endpoint] is left out of the list, which names the sections
	 * every file uses, unless the name is close to it. */
	if (len >= 8 && !strncasecmp(name, "endpoint", 8))
		return cfg_fail(p, p->lineno,
				"unknown section [%.*s]; did you mean [endpoint]?",
				(int)len, name);
	if (len < 4 || memcmp(name, "role", 4) ||
	    (len > 4 && !isspace((unsigned char)name[4])))
		return cfg_fail(p, p->lineno,
				"unknown section [%.*s]; expected [credfs], [signer] or [role NAME]",
				(int)len, name);
	name += 4;
	len -= 4;
	while (len && isspace((unsigned char)*name)) {
		name++;
		len--;
	}
	return begin_role(p, name, len);
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
		cfg_fail(p, p->lineno, "unexpected text after the section header");
		return;
	}
	begin_section(p, start, (size_t)(end - start));
}

/* ---- the reader inih pulls from ---- */

static int next_byte(struct parser *p)
{
	if (p->fp)
		return getc_unlocked(p->fp);	/* the parser's own FILE */
	if (!*p->text)
		return EOF;
	return (unsigned char)*p->text++;
}

/* Keeps the piece str (n bytes) as part of the current line; inspects the
 * line once it is complete.  0, or -1 with the error recorded. */
static int keep_piece(struct parser *p, const char *str, size_t n, int c)
{
	size_t len;

	if (buf_append(&p->line, str, n))
		return cfg_fail_oom(p);
	p->line_done = c == '\n' || c == EOF;
	len = p->line.len;
	if (p->line_done)
		while (len && (p->line.data[len - 1] == '\n' ||
			       p->line.data[len - 1] == '\r'))
			len--;
	if (len > CFG_LINE_MAX)
		return cfg_fail(p, p->lineno, "line is longer than %d characters",
				CFG_LINE_MAX);
	if (p->line_done)
		inspect_line(p);
	return p->failed ? -1 : 0;
}

/* inih's reader: copies the next piece of a line (at most num - 1 bytes,
 * up to and including a newline) into str.  Counts lines, keeps the whole
 * current line and inspects it once complete.  Returns NULL at the end of
 * the input, and for good once an error is recorded. */
static char *read_piece(char *str, int num, void *stream)
{
	struct parser *p = stream;
	size_t n = 0;
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
			cfg_fail(p, p->lineno, "line contains a NUL byte");
			return NULL;
		}
		str[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (c == EOF) {
		p->eof = true;
		if (p->fp && ferror(p->fp)) {
			cfg_fail(p, 0, "cannot read: %s",
				 strerror_r(errno, eb, sizeof(eb)));
			return NULL;
		}
		if (!n)
			return NULL;
	}
	str[n] = '\0';
	return keep_piece(p, str, n, c) ? NULL : str;
}

/* ---- keys ---- */

/* "; it is a [role NAME] key" and the like, for a key written in the
 * wrong section. */
static void where_it_belongs(unsigned sections, char *out, size_t len)
{
	static const struct {
		enum sect_kind kind;
		const char *article, *label;
	} order[] = {
		{ SECT_ROLE, "a", "[role NAME]" },
		{ SECT_SIGNER, "a", "[signer]" },
		{ SECT_ENDPOINT, "an", "[endpoint]" },
		{ SECT_CREDFS, "a", "[credfs]" },
	};
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(order) && used < len; i++)
		if (sections & order[i].kind)
			used += (size_t)snprintf(out + used, len - used,
						 "%s%s%s%s", used ? " or " : "; it is ",
						 used ? "" : order[i].article,
						 used ? "" : " ",
						 order[i].label);
	if (used && used < len)
		snprintf(out + used, len - used, " key");
}

/* One "name = value" of the current section into it.  0, or -1 with the
 * error recorded. */
static int take_key(struct parser *p, const char *name, const char *value)
{
	struct section *s = p->cur;
	char label[CFG_ROLE_NAME_MAX + 16], belongs[96];
	unsigned sections;
	enum key_id k;
	int found;

	if (!name || !*name)
		return cfg_fail(p, p->lineno,
				"\"=\" without a key name before it");
	if (!s)
		return cfg_fail(p, p->lineno,
				"key \"%s\" is outside any section; put it under [credfs], [signer] or [role NAME]",
				name);
	cfg_section_label(s, label, sizeof(label));
	found = cfg_find_key(name, s->kind, &k, &sections);
	if (found == -1)
		return cfg_fail(p, p->lineno, "unknown key \"%s\" in %s", name,
				label);
	if (found == -2) {
		where_it_belongs(sections, belongs, sizeof(belongs));
		return cfg_fail(p, p->lineno, "key \"%s\" does not belong in %s%s",
				name, label, belongs);
	}
	if (s->v[k].line)
		return cfg_fail(p, p->lineno,
				"duplicate key \"%s\" in %s (first on line %d)",
				name, label, s->v[k].line);
	if (!value || !*value)
		return cfg_fail(p, p->lineno, "%s has no value", name);
	if (cfg_check_value(p, k, value, &s->v[k]))
		return -1;
	s->v[k].line = p->lineno;
	return 0;
}

/* inih's handler: 1 to go on, 0 to stop. */
static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct parser *p = user;

	return !p->failed && take_key(p, name, value) == 0;
}

/* ---- the whole input ---- */

/* The message for a line inih could not parse (the current line). */
static void fail_syntax(struct parser *p, int line)
{
	const char *s = p->line.data ? p->line.data : "";

	while (isspace((unsigned char)*s))
		s++;
	if (line == p->lineno && *s == '[')
		cfg_fail(p, line, "syntax error: \"[\" without a closing \"]\"");
	else
		cfg_fail(p, line,
			 "syntax error: expected \"key = value\", a [section] header or a comment");
}

/* inih's options are process-wide; they are set here on every load (the
 * configuration is loaded from one thread at a time). */
int cfg_parse_input(struct parser *p)
{
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
			cfg_fail_oom(p);
		else if (rc < 0)
			cfg_fail(p, 0, "cannot be parsed");
	}
	return p->failed ? -1 : 0;
}

void cfg_parser_free(struct parser *p)
{
	cfg_section_free(&p->credfs);
	cfg_section_free(&p->signer);
	cfg_section_free(&p->endpoint);
	for (size_t i = 0; i < p->n_roles; i++)
		cfg_section_free(p->roles[i]);
	section_chunks_free(p);
	free(p->roles);
	name_index_free(&p->role_names);
	free(p->role_ids.tab);
	free(p->base_dir);
	free(p->env_endpoint);
	buf_free(&p->line);
}
