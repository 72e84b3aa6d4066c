/*
 * A reload that runs out of memory at any step changes nothing.
 *
 * The reload path (generation_load, then engine_reload_faces with the FUSE
 * face's tree) is run again and again with the Nth allocation made on this
 * thread failing, N = 1, 2, ... until a run makes no more allocations than
 * N.  Allocations are counted in credfs's own code (linked with
 * --wrap=malloc and friends), in OpenSSL (CRYPTO_set_mem_functions), in
 * jansson (json_set_alloc_funcs) and in libcurl (curl_global_init_mem).
 * After every failed run the old configuration must still be the one in
 * force, in the engine and in the tree, and still serve; after the whole
 * loop no generation may be left alive.  Under the sanitizer build a leak
 * or a use after free in any failure path fails the program.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "credfs.h"
#include "engine.h"
#include "face.h"
#include "generation.h"
#include "signer.h"

/* ---- failing allocations --------------------------------------------- */

/* Two kinds of allocations are counted apart: credfs's own (its calls to
 * malloc and friends) and those of the libraries it calls.  On the thread
 * that armed it, a countdown reaches 0 at the allocation that fails (-1:
 * off); made counts the allocations since arming. */
enum { OWN, LIB };
static __thread long countdown[2] = { -1, -1 };
static __thread long made[2];
static __thread int failed_one;

static void arm(int kind, long n)
{
	made[OWN] = made[LIB] = 0;
	failed_one = 0;
	countdown[kind] = n;
}

static void disarm(void)
{
	countdown[OWN] = countdown[LIB] = -1;
}

/* Whether this allocation is the one to fail. */
static int fail_now(int kind)
{
	made[kind]++;
	if (countdown[kind] < 0)
		return 0;
	if (countdown[kind]-- == 0) {
		failed_one = 1;
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **out, const char *fmt, ...) PRINTF_LIKE(2, 3);

void *__wrap_malloc(size_t n)
{
	return fail_now(OWN) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
	return fail_now(OWN) ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now(OWN) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fail_now(OWN) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fail_now(OWN) ? NULL : __real_strndup(s, n);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (fail_now(OWN)) {
		*out = NULL;
		return -1;
	}
	va_start(ap, fmt);
	r = vasprintf(out, fmt, ap);
	va_end(ap);
	return r;
}

static void *lib_malloc(size_t n)
{
	return fail_now(LIB) ? NULL : __real_malloc(n);
}

static void *lib_realloc(void *p, size_t n)
{
	return fail_now(LIB) ? NULL : __real_realloc(p, n);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return lib_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return lib_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

static char *curl_strdup(const char *s)
{
	return fail_now(LIB) ? NULL : __real_strdup(s);
}

static void *curl_calloc(size_t k, size_t n)
{
	return fail_now(LIB) ? NULL : __real_calloc(k, n);
}

/* ---- the configurations ------------------------------------------------ */

static char dir[PATH_MAX];

/* Two roles signed, one from a token file. */
#define CONFIG_OLD \
	"[credfs]\nregion = ap-northeast-1\nsts_endpoint = http://127.0.0.1:9\n" \
	"[signer]\nkey = %s/signer.pem\nissuer = https://oidc.example.com\n" \
	"[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsubject = s:app\n" \
	"[role old]\nrole_arn = arn:aws:iam::123456789012:role/old\n" \
	"web_identity_token_file = %s/token\n"

/* app changed (exchange and presentation), old gone, two chained roles
 * with every extra, fleet settings and another previous key. */
#define CONFIG_NEW \
	"[credfs]\nregion = eu-west-1\nsts_endpoint = http://127.0.0.1:9\n" \
	"max_sts_rate = 5\nmax_sts_inflight = 3\n" \
	"[signer]\nkey = %s/signer.pem\nprevious_keys = %s/previous.pem\n" \
	"issuer = https://oidc.example.com\naudience = sts.amazonaws.com\n" \
	"[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsubject = s:app\n" \
	"duration_seconds = 1800\nmode = 0440\nconfig_style = process\n" \
	"consumer_path = /root/.aws\n" \
	"[role deploy]\nrole_arn = arn:aws:iam::210987654321:role/deploy\n" \
	"source_role = app\nexternal_id = x-1\nsource_identity = me\n" \
	"tags = team=core, env=prod\ntransitive_tag_keys = team\n" \
	"policy_arns = arn:aws:iam::aws:policy/ReadOnlyAccess\n" \
	"policy = {\"Version\":\"2012-10-17\"}\n" \
	"[role audit]\nrole_arn = arn:aws:iam::111111111111:role/audit\n" \
	"source_role = deploy\nsession_name = audit-1\n"

static int write_text(const char *name, const char *text)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* The configuration at DIR/credfs.conf: CONFIG_OLD or CONFIG_NEW. */
static int write_config(int new)
{
	char text[3 * PATH_MAX + 2048];

	if (new)
		snprintf(text, sizeof(text), CONFIG_NEW, dir, dir);
	else
		snprintf(text, sizeof(text), CONFIG_OLD, dir, dir);
	return write_text("credfs.conf", text);
}

static char *config_path(void)
{
	static char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/credfs.conf", dir);
	return path;
}

/* ---- the fixture: an engine and the FUSE face, with no mount ---------- */

struct fx {
	struct engine *e;
	struct fs_face *face;
};

static int fx_start(struct fx *f)
{
	struct engine_options opt = { .no_timer_thread = 1 };
	struct fs_face_opts fo = {
		.mountpoint = "/credfs-test-nowhere",
		.config_path = config_path(),
		.serve = { .fd = open("/dev/null", O_RDWR | O_CLOEXEC) },
		.no_push = 1,
	};
	struct generation *g;
	struct cfg_error err;

	if (write_config(0) ||
	    generation_load(config_path(), &g, &err)) {
		fprintf(stderr, "    line %d: %s\n", err.line, err.text);
		return -1;
	}
	f->face = fs_face_new(&fo);
	if (f->face)
		opt.listener = fs_face_listener, opt.listener_arg = f->face;
	f->e = f->face ? engine_new(g, &opt) : NULL;
	if (!f->e || fs_face_attach(f->face, f->e, g)) {
		generation_unref(g);
		return -1;
	}
	generation_unref(g);
	return 0;
}

static void fx_stop(struct fx *f)
{
	engine_stop(f->e);
	fs_face_free(f->face);
	engine_free(f->e);
}

/* The reload path of the daemon (daemon/reload.c), its log (a line for
 * every refusal) sent nowhere. */
static int reload(struct fx *f)
{
	struct engine_face faces[1] = { fs_face_reloader(f->face) };
	struct generation *g;
	struct cfg_error err;
	int r = -1, saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	fflush(stderr);
	dup2(null, 2);
	if (!generation_load(config_path(), &g, &err)) {
		r = engine_reload_faces(f->e, g, faces, 1);
		generation_unref(g);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(null);
	return r;
}

/* Whether the configuration in force, in the engine and in the tree, is
 * the one with role `present` (and not `absent`), and it still serves. */
static int in_force(struct fx *f, const char *present, const char *absent)
{
	struct generation *g = engine_generation(f->e);
	struct role *p = engine_role(f->e, present), *a = engine_role(f->e, absent);
	struct view *v = view_get(&fs_face_credfs(f->face)->views);
	struct role_snapshot snap;
	int ok = g && p && !a && v->gen == g && cfg_find_role(v->gen->cfg, present) &&
		 !cfg_find_role(v->gen->cfg, absent);

	if (ok) {
		ok = engine_snapshot(p, &snap) == 0;
		if (ok)
			role_snapshot_clear(&snap);
	}
	view_unref(v);
	role_unref(p);
	role_unref(a);
	generation_unref(g);
	return ok;
}

/* One reload with allocation n of kind failing.  Returns 1 if that
 * allocation was made (and failed), 0 if the reload made fewer.  Either
 * way, what is in force afterwards is checked. */
static int reload_failing(struct fx *f, int kind, long n, long *refused)
{
	int r, hit;

	arm(kind, n);
	r = reload(f);
	hit = failed_one;
	disarm();
	if (!hit || r == 0) {
		/* It went through: whole.  (A failure some code absorbs,
		 * such as a cache OpenSSL could not fill, is no failure.) */
		CHECK(r == 0);
		CHECK(in_force(f, "deploy", "old"));
		CHECK(write_config(0) == 0);
		CHECK(reload(f) == 0);
		CHECK(write_config(1) == 0);
		return hit;
	}
	++*refused;
	if (!in_force(f, "app", "deploy")) {
		CHECK(!"the old configuration is not in force");
		fprintf(stderr, "    after failing allocation %ld of kind %d\n", n + 1, kind);
		return 0;
	}
	return 1;
}

static void every_own_allocation_failing_leaves_the_old_configuration(void)
{
	struct fx f;
	long n, refused = 0;

	CHECK(fx_start(&f) == 0);
	CHECK(write_config(1) == 0);
	for (n = 0; n < 100000 && reload_failing(&f, OWN, n, &refused); n++)
		;
	printf("    %ld allocations of credfs's own in a reload, %ld failures refused it\n",
	       n, refused);
	CHECK(n > 50);
	CHECK(refused > n / 2);
	fx_stop(&f);
	CHECK(generation_live_count() == 0);
}

/* The libraries allocate thousands of times in a reload (OpenSSL most,
 * loading keys): a failure at 400 points spread over all of them. */
static void library_allocations_failing_leave_the_old_configuration(void)
{
	struct fx f;
	long total, step, n, points = 0, refused = 0;

	CHECK(fx_start(&f) == 0);
	CHECK(write_config(1) == 0);
	arm(LIB, -1);
	CHECK(reload(&f) == 0);
	total = made[LIB];
	CHECK(write_config(0) == 0);
	CHECK(reload(&f) == 0);
	CHECK(write_config(1) == 0);
	step = total / 400 > 0 ? total / 400 : 1;
	for (n = 0; n < total; n += step, points++)
		if (!reload_failing(&f, LIB, n, &refused))
			break;
	printf("    %ld library allocations in a reload, %ld tried, %ld refused it\n",
	       total, points, refused);
	CHECK(total > 100);
	CHECK(refused > 0);
	fx_stop(&f);
	CHECK(generation_live_count() == 0);
}

static const struct check_case cases[] = {
	CHECK_CASE(every_own_allocation_failing_leaves_the_old_configuration),
	CHECK_CASE(library_allocations_failing_leave_the_old_configuration),
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	char err[256], key[PATH_MAX + 32];
	int r;

	/* Before anything allocates. */
	CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
	json_set_alloc_funcs(lib_malloc, free);
	curl_global_init_mem(CURL_GLOBAL_DEFAULT, lib_malloc, free, lib_realloc,
			     curl_strdup, curl_calloc);
	snprintf(dir, sizeof(dir), "/tmp/credfs-reload-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(key, sizeof(key), "%s/signer.pem", dir);
	if (signer_keygen(key, "ec", 0, err, sizeof(err)))
		return 1;
	snprintf(key, sizeof(key), "%s/previous.pem", dir);
	if (signer_keygen(key, "ec", 0, err, sizeof(err)) ||
	    write_text("token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"))
		return 1;
	r = CHECK_RUN(cases);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	curl_global_cleanup();
	return r;
}
