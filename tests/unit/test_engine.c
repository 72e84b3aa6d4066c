/*
 * The credential engine against a fake clock (wall, monotonic and boot
 * time moved by hand; timers fired with engine_run_timers), a fake STS
 * (http_set_transport: scripted answers, a gate that holds requests, a log
 * of what each one carried) and tokenfile_read wrapped (the link option
 * --wrap in tests/unit/meson.build) to count reads, see which thread makes
 * them and play a token file on a mount that never answers.
 *
 * Covered: the refresh rule and jitter, laziness, one request for many
 * first readers, background renewal, never serving expired credentials
 * (expiry, a wall-clock step, a suspend), bounded waits and what the
 * snapshot says about them, retries and the failure hold-off, the
 * daemon-wide limiter, chained roles, reloads and the life of generations,
 * token files and signed tokens.
 *
 * Waits for the engine's threads poll with a real-time deadline; nothing
 * sleeps to let time pass, the fake clock is moved instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "check.h"
#include "clock.h"
#include "config.h"
#include "engine.h"
#include "generation.h"
#include "http.h"
#include "log.h"
#include "signer.h"
#include "tokenfile.h"

#define LIFETIME 3600		/* what the fake STS hands out, seconds */
#define JWT1 "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvbmUifQ.c2lnbmF0dXJlMQ"
#define JWT2 "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0d28ifQ.c2lnbmF0dXJlMg"
#define WAIT_MS 10000		/* longest a poll waits for the engine */

/* ---- time --------------------------------------------------------------- */

static _Atomic int64_t wall_ms = 1800000000000LL;
static _Atomic int64_t mono_ms = 5000000;
static _Atomic int64_t boot_ms = 7000000;

static int64_t fake_wall(void) { return atomic_load(&wall_ms) / 1000; }
static int64_t fake_mono(void) { return atomic_load(&mono_ms); }
static int64_t fake_boot(void) { return atomic_load(&boot_ms); }

/* Time passes: every clock moves. */
static void advance_ms(int64_t ms)
{
	atomic_fetch_add(&wall_ms, ms);
	atomic_fetch_add(&mono_ms, ms);
	atomic_fetch_add(&boot_ms, ms);
}

static void fake_clock(void)
{
	clock_set_source(fake_wall, fake_mono);
	clock_set_boot_source(fake_boot);
}

static void real_clock(void)
{
	clock_set_source(NULL, NULL);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls cond until it holds or WAIT_MS pass, then checks it. */
#define WAIT_FOR(cond)                                                       \
	do {                                                                 \
		int64_t wf_end_ = real_ms() + WAIT_MS;                       \
		while (!(cond) && real_ms() < wf_end_)                       \
			sleep_ms(1);                                         \
		CHECK(cond);                                                 \
	} while (0)

/* ---- the fake STS ---------------------------------------------------------- */

enum answer {
	ANSWER_OK,
	ANSWER_503,		/* ServiceUnavailable: retried; 503 also slows */
	ANSWER_DENIED,		/* AccessDenied: final */
	ANSWER_THROTTLE,	/* Throttling (HTTP 400): retried, slows down */
	ANSWER_TRANSPORT,	/* no answer at all: retried */
};

struct sts_call {
	int web;		/* AssumeRoleWithWebIdentity, else AssumeRole */
	char arn[160];		/* RoleArn, decoded */
	char token[4096];	/* WebIdentityToken, decoded */
	char signer[64];	/* AssumeRole: the access key id that signed */
	char akid[32];		/* what it was given, on success */
	int64_t boot_ms;	/* when it arrived */
};

#define CALLS_MAX 512

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int gate;		/* requests wait while it is closed */
	int waiting;		/* requests held at the gate */
	int inflight, max_inflight;
	int calls;
	enum answer script[16];
	int n_script;
	enum answer otherwise;
	long delay_ms;		/* real time each request takes */
	struct sts_call log[CALLS_MAX];
} sts = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void sts_reset(void)
{
	pthread_mutex_lock(&sts.lock);
	sts.gate = sts.waiting = sts.inflight = sts.max_inflight = 0;
	sts.calls = sts.n_script = 0;
	sts.otherwise = ANSWER_OK;
	sts.delay_ms = 0;
	memset(sts.log, 0, sizeof(sts.log));
	pthread_mutex_unlock(&sts.lock);
}

static void sts_script(const enum answer *r, int n)
{
	pthread_mutex_lock(&sts.lock);
	memcpy(sts.script, r, (size_t)n * sizeof(*r));
	sts.n_script = n;
	pthread_mutex_unlock(&sts.lock);
}

static void sts_otherwise(enum answer r)
{
	pthread_mutex_lock(&sts.lock);
	sts.otherwise = r;
	pthread_mutex_unlock(&sts.lock);
}

static void gate_close(void)
{
	pthread_mutex_lock(&sts.lock);
	sts.gate = 1;
	pthread_mutex_unlock(&sts.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&sts.lock);
	sts.gate = 0;
	pthread_cond_broadcast(&sts.cond);
	pthread_mutex_unlock(&sts.lock);
}

static void sts_delay(long ms)
{
	pthread_mutex_lock(&sts.lock);
	sts.delay_ms = ms;
	pthread_mutex_unlock(&sts.lock);
}

static int sts_calls(void)
{
	int n;

	pthread_mutex_lock(&sts.lock);
	n = sts.calls;
	pthread_mutex_unlock(&sts.lock);
	return n;
}

static int sts_waiting(void)
{
	int n;

	pthread_mutex_lock(&sts.lock);
	n = sts.waiting;
	pthread_mutex_unlock(&sts.lock);
	return n;
}

static struct sts_call call_log(int i)
{
	struct sts_call c;

	pthread_mutex_lock(&sts.lock);
	c = sts.log[i];
	pthread_mutex_unlock(&sts.lock);
	return c;
}

/* The form value of key in body, %-decoded, into out. */
static void form_value(const char *body, const char *key, char *out, size_t size)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "%s=", key);
	for (p = strstr(body, pat); p && p != body && p[-1] != '&';)
		p = strstr(p + 1, pat);
	if (!p)
		return;
	for (p += strlen(pat); *p && *p != '&' && n + 1 < size; p++) {
		if (*p == '%' && p[1] && p[2]) {
			char hex[3] = { p[1], p[2], 0 };

			out[n++] = (char)strtol(hex, NULL, 16);
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

static int reply_text(struct http_response *resp, long status, const char *text)
{
	resp->status = status;
	return buf_append_str(&resp->body, text) ? HTTP_ERR_INTERNAL : HTTP_OK;
}

static int fake_sts(const struct http_request *req, struct http_response *resp,
		    char *errbuf, size_t errlen)
{
	struct sts_call c = { 0 };
	char body[8192], exp[21], text[4096];
	const char *auth = NULL;
	enum answer r;
	long delay;
	int n;

	snprintf(body, sizeof(body), "%.*s", (int)req->body_len, req->body);
	c.web = strstr(body, "Action=AssumeRoleWithWebIdentity&") == body;
	form_value(body, "RoleArn", c.arn, sizeof(c.arn));
	form_value(body, "WebIdentityToken", c.token, sizeof(c.token));
	for (size_t i = 0; i < req->n_headers; i++)
		if (!strcasecmp(req->headers[i].name, "authorization"))
			auth = req->headers[i].value;
	if (auth && strstr(auth, "Credential="))
		snprintf(c.signer, sizeof(c.signer), "%.*s",
			 (int)strcspn(strstr(auth, "Credential=") + 11, "/"),
			 strstr(auth, "Credential=") + 11);
	c.boot_ms = clock_boot_ms();

	pthread_mutex_lock(&sts.lock);
	n = sts.calls++;
	if (n < CALLS_MAX)
		sts.log[n] = c;
	r = n < sts.n_script ? sts.script[n] : sts.otherwise;
	if (++sts.inflight > sts.max_inflight)
		sts.max_inflight = sts.inflight;
	if (sts.gate) {
		sts.waiting++;
		while (sts.gate)
			pthread_cond_wait(&sts.cond, &sts.lock);
		sts.waiting--;
	}
	delay = sts.delay_ms;
	pthread_mutex_unlock(&sts.lock);
	if (delay)
		sleep_ms(delay);

	pthread_mutex_lock(&sts.lock);
	sts.inflight--;
	if (r == ANSWER_OK && n < CALLS_MAX)
		snprintf(sts.log[n].akid, sizeof(sts.log[n].akid),
			 "ASIAFAKE%012d", n + 1);
	pthread_mutex_unlock(&sts.lock);

	switch (r) {
	case ANSWER_TRANSPORT:
		snprintf(errbuf, errlen, "Failed to connect: Connection refused");
		return HTTP_ERR_TRANSPORT;
	case ANSWER_503:
		return reply_text(resp, 503,
				  "<ErrorResponse><Error><Type>Receiver</Type>"
				  "<Code>ServiceUnavailable</Code><Message>try later"
				  "</Message></Error></ErrorResponse>");
	case ANSWER_DENIED:
		return reply_text(resp, 403,
				  "<ErrorResponse><Error><Type>Sender</Type>"
				  "<Code>AccessDenied</Code><Message>Not authorized"
				  "</Message></Error></ErrorResponse>");
	case ANSWER_THROTTLE:
		return reply_text(resp, 400,
				  "<ErrorResponse><Error><Type>Sender</Type>"
				  "<Code>Throttling</Code><Message>Rate exceeded"
				  "</Message></Error></ErrorResponse>");
	case ANSWER_OK:
		break;
	}
	clock_format_rfc3339(clock_wall() + LIFETIME, exp);
	snprintf(text, sizeof(text),
		 "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		 "<%sResult><Credentials>"
		 "<AccessKeyId>ASIAFAKE%012d</AccessKeyId>"
		 "<SecretAccessKey>fakeSecret%030d</SecretAccessKey>"
		 "<SessionToken>FakeSessionToken%d</SessionToken>"
		 "<Expiration>%s</Expiration></Credentials>"
		 "<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/fake/credfs-%d</Arn>"
		 "<AssumedRoleId>AROAFAKE:credfs-%d</AssumedRoleId></AssumedRoleUser>"
		 "</%sResult></%sResponse>",
		 c.web ? "AssumeRoleWithWebIdentity" : "AssumeRole",
		 c.web ? "AssumeRoleWithWebIdentity" : "AssumeRole", n + 1, n + 1,
		 n + 1, exp, n + 1, n + 1,
		 c.web ? "AssumeRoleWithWebIdentity" : "AssumeRole",
		 c.web ? "AssumeRoleWithWebIdentity" : "AssumeRole");
	return reply_text(resp, 200, text);
}

/* ---- token files: tokenfile_read wrapped -------------------------------------- */

int __real_tokenfile_read(const char *path, char **out,
			  struct exchange_error *err);
int __wrap_tokenfile_read(const char *path, char **out,
			  struct exchange_error *err);

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long reads;
	pthread_t last_thread;
	char hang_path[PATH_MAX];	/* reads of it wait for release */
	int hanging;
	int release;
} tf = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

int __wrap_tokenfile_read(const char *path, char **out,
			  struct exchange_error *err)
{
	pthread_mutex_lock(&tf.lock);
	tf.reads++;
	tf.last_thread = pthread_self();
	if (tf.hang_path[0] && !strcmp(path, tf.hang_path)) {
		tf.hanging++;
		pthread_cond_broadcast(&tf.cond);
		while (!tf.release)
			pthread_cond_wait(&tf.cond, &tf.lock);
		tf.hanging--;
	}
	pthread_mutex_unlock(&tf.lock);
	return __real_tokenfile_read(path, out, err);
}

static unsigned long tf_reads(void)
{
	unsigned long n;

	pthread_mutex_lock(&tf.lock);
	n = tf.reads;
	pthread_mutex_unlock(&tf.lock);
	return n;
}

static int tf_hanging(void)
{
	int n;

	pthread_mutex_lock(&tf.lock);
	n = tf.hanging;
	pthread_mutex_unlock(&tf.lock);
	return n;
}

static void tf_hang(const char *path)
{
	pthread_mutex_lock(&tf.lock);
	snprintf(tf.hang_path, sizeof(tf.hang_path), "%s", path);
	tf.release = 0;
	pthread_mutex_unlock(&tf.lock);
}

static void tf_release(void)
{
	pthread_mutex_lock(&tf.lock);
	tf.release = 1;
	tf.hang_path[0] = '\0';
	pthread_cond_broadcast(&tf.cond);
	pthread_mutex_unlock(&tf.lock);
}

/* ---- the listener ------------------------------------------------------------ */

#define HEARD_MAX 4096

static struct {
	pthread_mutex_t lock;
	struct {
		char role[CFG_ROLE_NAME_MAX + 1];
		unsigned what;
	} log[HEARD_MAX];
	size_t n;
} heard_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void listener(void *arg, struct role *r, unsigned what,
		     uint64_t version)
{
	(void)arg;
	pthread_mutex_lock(&heard_log.lock);
	if (heard_log.n < HEARD_MAX) {
		snprintf(heard_log.log[heard_log.n].role,
			 sizeof(heard_log.log[0].role), "%s", role_name(r));
		heard_log.log[heard_log.n++].what = what;
	}
	pthread_mutex_unlock(&heard_log.lock);
}

static void heard_reset(void)
{
	pthread_mutex_lock(&heard_log.lock);
	heard_log.n = 0;
	pthread_mutex_unlock(&heard_log.lock);
}

/* How many times role was told something with bit in it. */
static int heard(const char *role, unsigned bit)
{
	int n = 0;

	pthread_mutex_lock(&heard_log.lock);
	for (size_t i = 0; i < heard_log.n; i++)
		n += !strcmp(heard_log.log[i].role, role) &&
		     (heard_log.log[i].what & bit);
	pthread_mutex_unlock(&heard_log.lock);
	return n;
}

/* ---- a fixture: a directory, a token file, a generation, an engine ------------ */

struct fx {
	char dir[64];			/* /tmp/credfs-engine-XXXXXX */
	char token[PATH_MAX];		/* DIR/token, holding JWT1 */
	struct engine *e;
	unsigned long gens_before;
};

static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int rc;

	/* Written aside and renamed in, as a kubelet or an editor would. */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	rc = fputs(text, f) < 0;
	rc |= fclose(f) != 0;
	return rc || rename(tmp, path) ? -1 : 0;
}

/* text with @DIR@ and @TOKEN@ replaced; malloc'd. */
static char *expand(const struct fx *f, const char *text)
{
	struct buf b;

	buf_init(&b, 1024 * 1024);
	for (const char *p = text; *p;) {
		if (!strncmp(p, "@DIR@", 5)) {
			if (buf_append_str(&b, f->dir))
				return NULL;
			p += 5;
		} else if (!strncmp(p, "@TOKEN@", 7)) {
			if (buf_append_str(&b, f->token))
				return NULL;
			p += 7;
		} else {
			if (buf_append(&b, p++, 1))
				return NULL;
		}
	}
	return buf_steal(&b);
}

/* [credfs] without max_sts_rate: the default, 20 requests a second. */
#define HEAD_LIMITED							\
	"[credfs]\n"							\
	"region = us-east-1\n"						\
	"sts_endpoint = http://127.0.0.1:9\n"				\
	"refresh_jitter = 0\n"
/* No rate limit unless a case wants one: the fake clock stands still,
 * and the limiter counts on it. */
#define HEAD HEAD_LIMITED "max_sts_rate = 0\n"

/* A one-role configuration reading @TOKEN@; extra goes in [credfs]. */
#define ONE_ROLE(extra)							\
	HEAD extra "\n[role app]\n"					\
	"role_arn = arn:aws:iam::123456789012:role/app\n"		\
	"web_identity_token_file = @TOKEN@\n"

/* A generation of text (written to DIR/credfs.conf and loaded, so that a
 * [signer] key next to it is found).  NULL on failure. */
static struct generation *gen_of(struct fx *f, const char *text)
{
	char path[PATH_MAX + 16], *t = expand(f, text);
	struct generation *g = NULL;
	struct cfg_error err;

	snprintf(path, sizeof(path), "%s/credfs.conf", f->dir);
	if (!t || write_file(path, t)) {
		free(t);
		return NULL;
	}
	free(t);
	if (generation_load(path, &g, &err)) {
		fprintf(stderr, "    config line %d: %s\n", err.line, err.text);
		return NULL;
	}
	return g;
}

enum {
	FX_KEY = 1,		/* a fresh signing key at DIR/signer.pem */
	FX_REAL_CLOCK = 2,	/* the real clocks, not the fake one */
};

static int fx_start_ex(struct fx *f, const char *text, unsigned flags)
{
	struct engine_options opt = {
		.listener = listener,
		.no_timer_thread = 1,
	};
	struct generation *g;

	memset(f, 0, sizeof(*f));
	sts_reset();
	heard_reset();
	tf_release();
	if (flags & FX_REAL_CLOCK)
		real_clock();
	else
		fake_clock();
	http_set_transport(fake_sts);
	f->gens_before = generation_live_count();
	snprintf(f->dir, sizeof(f->dir), "/tmp/credfs-engine-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->token, sizeof(f->token), "%s/token", f->dir);
	if (write_file(f->token, JWT1))
		return -1;
	if (flags & FX_KEY) {
		char key[PATH_MAX + 16], err[256];

		snprintf(key, sizeof(key), "%s/signer.pem", f->dir);
		if (signer_keygen(key, "ec", 0, err, sizeof(err))) {
			fprintf(stderr, "    keygen: %s\n", err);
			return -1;
		}
	}
	g = gen_of(f, text);
	if (!g)
		return -1;
	f->e = engine_new(g, &opt);
	generation_unref(g);
	return f->e ? 0 : -1;
}


static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Frees the engine and proves everything it held went with it: no
 * generation outlives it (a leak across reloads would show here). */
static void fx_stop(struct fx *f)
{
	gate_open();
	tf_release();
	if (f->e) {
		WAIT_FOR(!engine_busy(f->e));
		engine_free(f->e);
	}
	/* Token-file threads may still be finishing their read. */
	WAIT_FOR(generation_live_count() == f->gens_before);
	if (f->dir[0])
		nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	http_set_transport(NULL);
	real_clock();
}

/* Waits until the engine's workers are idle, so that whatever they were
 * telling the listener has been told. */
static void settle(struct fx *f)
{
	WAIT_FOR(!engine_busy(f->e));
}

/* Reloads e with text; 0 or -1. */
static int reload(struct fx *f, const char *text)
{
	struct generation *g = gen_of(f, text);
	int rc;

	if (!g)
		return -1;
	rc = engine_reload(f->e, g);
	generation_unref(g);
	return rc;
}

#define START_EX(f, text, flags)                                             \
	do {                                                                 \
		if (fx_start_ex((f), (text), (flags))) {                     \
			CHECK(!"fixture");                                   \
			fx_stop(f);                                          \
			return;                                              \
		}                                                            \
	} while (0)
#define START(f, text) START_EX(f, text, 0)

/* ---- role helpers -------------------------------------------------------------- */

/* r's snapshot without its strings (all zero for a removed role). */
static struct role_snapshot snap(struct role *r)
{
	struct role_snapshot s;

	if (engine_snapshot(r, &s))
		memset(&s, 0, sizeof(s));
	free(s.assumed_role_arn);
	s.assumed_role_arn = NULL;
	return s;
}

static enum role_waiting waiting_of(struct role *r)
{
	return snap(r).waiting;
}

static unsigned long renewals_of(struct role *r)
{
	return snap(r).renewals;
}

static unsigned long outcome(const struct role_snapshot *s, const char *code)
{
	for (size_t i = 0; i < s->n_outcomes; i++)
		if (!strcmp(s->outcomes[i].code, code))
			return s->outcomes[i].count;
	return 0;
}

/* Waits until r backs off after its n-th request, and the request is
 * done with (the limiter has heard how it went) before time is moved. */
static void wait_retry(struct fx *f, struct role *r, unsigned long n)
{
	WAIT_FOR(waiting_of(r) == WAITING_RETRY && snap(r).requests == n);
	WAIT_FOR(!engine_busy(f->e));
}

/* A WAIT read: 0 and *c, or the error (c NULL). */
static int get(struct role *r, struct creds **c)
{
	return engine_credentials(r, ENGINE_WAIT, c);
}

static int peek(struct role *r, struct creds **c)
{
	return engine_credentials(r, ENGINE_PEEK, c);
}

/* A reader on its own thread. */
struct reader {
	struct role *role;
	pthread_t thread;
	int rc;
	struct creds *c;
	int64_t took_ms;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	int64_t t0 = real_ms();

	rd->rc = engine_credentials(rd->role, ENGINE_WAIT, &rd->c);
	rd->took_ms = real_ms() - t0;
	return NULL;
}

static void reader_start(struct reader *rd, struct role *r)
{
	memset(rd, 0, sizeof(*rd));
	rd->role = r;
	if (pthread_create(&rd->thread, NULL, reader_main, rd))
		abort();
}

static void reader_join(struct reader *rd)
{
	pthread_join(rd->thread, NULL);
}

/* ---- the refresh rule ------------------------------------------------------------ */

static void refresh_point_arithmetic(void)
{
	/* Without jitter: the earlier of fraction and min_validity. */
	CHECK(engine_refresh_point(0, 3600, 0.8, 900, 0, 0) == 2700);
	CHECK(engine_refresh_point(0, 3600, 0.5, 900, 0, 0) == 1800);
	CHECK(engine_refresh_point(0, 43200, 0.8, 900, 0, 0) == 34560);
	CHECK(engine_refresh_point(0, 3600, 0.8, 0, 0, 0) == 2880);
	CHECK(engine_refresh_point(1000, 1600, 0.8, 900, 0, 0) == 1000);
	CHECK(engine_refresh_point(1000, 1000, 0.8, 900, 0, 0) == 1000);
	CHECK(engine_refresh_point(1000, 900, 0.8, 900, 0, 0) == 1000);
	/* Jitter moves the point earlier by jitter * u * lifetime. */
	CHECK(engine_refresh_point(0, 3600, 0.8, 900, 0.1, 0.5) == 2520);
	CHECK(engine_refresh_point(0, 3600, 0.8, 900, 0.5, 0) == 2700);
	CHECK(engine_refresh_point(0, 3600, 0.8, 900, 0.5, 0.999) == 902);
	CHECK(engine_refresh_point(100, 3700, 0.8, 900, 0.25, 0.5) == 2350);
	/* Never before obtained + L/20 ... */
	CHECK(engine_refresh_point(0, 3600, 0.1, 0, 0.5, 0.99) == 180);
	CHECK(engine_refresh_point(5000, 8600, 0.1, 0, 0.5, 0.9) == 5180);
	/* ... unless the rule itself says earlier. */
	CHECK(engine_refresh_point(0, 1000, 0.8, 990, 0.5, 0.9) == 10);
	CHECK(engine_refresh_point(0, 1000, 0.8, 1000, 0.5, 0.9) == 0);
}

static uint64_t rng_state = 0x243F6A8885A308D3ULL;

static double rnd01(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* For any input: never after the rule without jitter (so never later
 * than min_validity allows), never before obtained + L/20 unless that
 * rule is earlier, and moved by no more than jitter * u * L. */
static void refresh_point_bounds(void)
{
	int bad = 0;

	for (int i = 0; i < 200000 && !bad; i++) {
		int64_t obtained = (int64_t)(rnd01() * 2e9);
		int64_t lifetime = 1 + (int64_t)(rnd01() * 43200);
		int64_t expires = obtained + lifetime;
		double fraction = 0.01 + rnd01() * 0.98;
		int64_t mv = (int64_t)(rnd01() * 1.2 * (double)lifetime);
		double jitter = rnd01() * 0.5, u = rnd01();
		int64_t base = obtained + (int64_t)((double)lifetime * fraction);
		int64_t floor_at = obtained + lifetime / 20;
		int64_t p = engine_refresh_point(obtained, expires, fraction, mv,
						 jitter, u);

		if (expires - mv < base)
			base = expires - mv;
		if (base < obtained)
			base = obtained;
		if (p > base || p < obtained ||
		    (p < floor_at && p != base) ||
		    p < base - (int64_t)((double)lifetime * jitter * u) ||
		    engine_refresh_point(obtained, expires, fraction, mv, 0, u) != base) {
			fprintf(stderr, "    obtained %lld L %lld f %g mv %lld j %g u %g: %lld (base %lld)\n",
				(long long)obtained, (long long)lifetime, fraction,
				(long long)mv, jitter, u, (long long)p,
				(long long)base);
			bad = 1;
		}
		/* The min_validity rule holds whenever it can. */
		if (expires - mv >= obtained && p > expires - mv)
			bad = 1;
	}
	CHECK(!bad);
}

/* u is the host's and role's own, stable, and spread over [0, 1). */
static void jitter_u_stable_and_spread(void)
{
	enum { N = 4000, BUCKETS = 10 };
	int buckets[BUCKETS] = { 0 };
	double sum = 0, u = engine_jitter_u("host-a", "app");
	char name[32];

	CHECK(u >= 0 && u < 1);
	CHECK(engine_jitter_u("host-a", "app") == u);
	CHECK(engine_jitter_u("host-b", "app") != u);
	CHECK(engine_jitter_u("host-a", "app2") != u);
	CHECK(engine_jitter_u("", "app") >= 0);
	for (int i = 0; i < N; i++) {
		double v;

		snprintf(name, sizeof(name), "role-%d", i);
		v = engine_jitter_u("host-a", name);
		CHECK(v >= 0 && v < 1);
		CHECK(v == engine_jitter_u("host-a", name));
		buckets[(int)(v * BUCKETS)]++;
		sum += v;
	}
	for (int b = 0; b < BUCKETS; b++)
		CHECK(buckets[b] > N / BUCKETS * 3 / 4 &&
		      buckets[b] < N / BUCKETS * 5 / 4);
	CHECK(fabs(sum / N - 0.5) < 0.03);
	/* The same role on many hosts spreads too. */
	memset(buckets, 0, sizeof(buckets));
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "host-%d", i);
		buckets[(int)(engine_jitter_u(name, "app") * BUCKETS)]++;
	}
	for (int b = 0; b < BUCKETS; b++)
		CHECK(buckets[b] > N / BUCKETS * 3 / 4 &&
		      buckets[b] < N / BUCKETS * 5 / 4);
}

/* The engine applies the rule with the role's u for the configured
 * host_id. */
static void jitter_in_the_engine(void)
{
	struct fx f;
	struct role *r;
	struct creds *c = NULL;
	struct role_snapshot s;
	int64_t want;

	START(&f, HEAD "host_id = host-a\n"
		  "\n[role app]\n"
		  "role_arn = arn:aws:iam::123456789012:role/app\n"
		  "web_identity_token_file = @TOKEN@\n"
		  "refresh_jitter = 0.5\n");
	r = engine_role(f.e, "app");
	CHECK(r && get(r, &c) == 0);
	s = snap(r);
	want = engine_refresh_point(s.last_refresh, s.expiration, 0.8, 900, 0.5,
				    engine_jitter_u("host-a", "app"));
	CHECK(s.expiration == s.last_refresh + LIFETIME);
	CHECK(s.next_refresh == want);
	CHECK(c && creds_refresh_at(c) == want);
	CHECK(want < s.last_refresh + 2700);
	creds_unref(c);
	role_unref(r);
	fx_stop(&f);
}

/* A configured role nobody reads costs its name, settings and lock: what a
 * renewal, a token, timers and readers need is made at its first use.
 * 5 000 roles cost less than 512 bytes each (it was 1.9 KB, and 100 000
 * roles took 182 MB); only the role read holds more; status of the others
 * says idle; reloads (another host identity, half the roles gone) leave
 * them so and move the used role's refresh point. */
static void idle_roles_cost_little(void)
{
	enum { N = 5000 };
	struct engine_options opt = { .no_timer_thread = 1 };
	struct fx f;
	struct buf text;
	struct generation *g;
	struct engine *e = NULL;
	struct engine_stats st;
	struct mallinfo2 m0, m1;
	struct role *used = NULL, *idle = NULL;
	struct creds *c = NULL;
	struct role_snapshot s;
	int64_t first = 0;

	START(&f, ONE_ROLE(""));
	buf_init(&text, 4 * 1024 * 1024);
	for (int pass = 0; pass < 3; pass++) {
		text.len = 0;
		CHECK(buf_printf(&text, "[credfs]\nregion = us-east-1\n"
				 "sts_endpoint = http://127.0.0.1:9\nmax_sts_rate = 0\n"
				 "refresh_jitter = 0.5\nhost_id = host-%s\n",
				 pass ? "b" : "a") == 0);
		for (int i = 0; i < N; i++) {
			if (pass == 2 && i % 2 && i != 7)
				continue;	/* the last reload drops half */
			CHECK(buf_printf(&text, "[role r%05d]\n"
					 "role_arn = arn:aws:iam::123456789012:role/r%05d\n"
					 "web_identity_token_file = @TOKEN@\n", i, i) == 0);
		}
		if (!pass) {
			g = gen_of(&f, text.data);
			CHECK(g != NULL);
			if (!g)
				goto out;
			malloc_trim(0);
			m0 = mallinfo2();
			e = engine_new(g, &opt);
			m1 = mallinfo2();
			generation_unref(g);
			CHECK(e != NULL);
			if (!e)
				goto out;
			if (m1.uordblks - m0.uordblks > (size_t)N * 512)
				fprintf(stderr, "    %zu bytes per idle role\n",
					(m1.uordblks - m0.uordblks) / N);
			CHECK(m1.uordblks - m0.uordblks <= (size_t)N * 512);
			used = engine_role(e, "r00007");
			idle = engine_role(e, "r00009");
			CHECK(used && idle);
			if (!used || !idle)
				goto out;
			CHECK(get(used, &c) == 0);
			creds_unref(c);
			first = snap(used).next_refresh;
		} else {
			CHECK((g = gen_of(&f, text.data)) != NULL);
			CHECK(g && engine_reload(e, g) == 0);
			generation_unref(g);
		}
		engine_stats(e, &st);
		CHECK(st.roles_configured == (pass == 2 ? N / 2 + 1 : N));
		CHECK(st.roles_in_use == 1);
		s = snap(idle);
		CHECK(s.state == ROLE_IDLE && s.requests == 0 &&
		      s.next_refresh == 0 && s.waiting == WAITING_NOTHING);
		s = snap(used);
		CHECK(s.state == ROLE_VALID);
		/* Another host, another refresh point, as the rule says. */
		CHECK(s.next_refresh == engine_refresh_point(
			      s.last_refresh, s.expiration, 0.8, 900, 0.5,
			      engine_jitter_u(pass ? "host-b" : "host-a", "r00007")));
		if (pass == 1)
			CHECK(s.next_refresh != first);
	}
	/* Removed by the last reload: a handle that was never used. */
	CHECK(peek(idle, &c) == -ENOENT);
	CHECK(get(idle, &c) == -ENOENT);
	CHECK(sts_calls() == 1);
out:
	role_unref(used);
	role_unref(idle);
	if (e)
		engine_free(e);
	buf_free(&text);
	fx_stop(&f);
}

/* ---- reads ------------------------------------------------------------------------- */

/* Nothing is asked of STS, and no token file is read, before a read. */
static void lazy_until_read(void)
{
	struct fx f;
	struct role *r;
	struct creds *c = NULL;
	struct token *t = NULL;
	struct engine_stats st;
	unsigned long reads = tf_reads();

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	CHECK(r != NULL);
	advance_ms(3600 * 1000);
	engine_run_timers(f.e);
	CHECK(snap(r).state == ROLE_IDLE);
	CHECK(peek(r, &c) == -EAGAIN && c == NULL);
	CHECK(engine_token(r, ENGINE_PEEK, &t) == -EAGAIN && t == NULL);
	CHECK(engine_role(f.e, "nobody") == NULL);
	engine_stats(f.e, &st);
	CHECK(st.roles_configured == 1 && st.roles_in_use == 0);
	sleep_ms(20);
	CHECK(sts_calls() == 0);
	CHECK(tf_reads() == reads);
	CHECK(snap(r).requests == 0);
	/* The first read does it. */
	CHECK(get(r, &c) == 0 && c);
	CHECK(sts_calls() == 1);
	CHECK(tf_reads() == reads + 1);
	creds_unref(c);
	role_unref(r);
	fx_stop(&f);
}

/* However many first readers arrive together, one request. */
static void one_request_for_32_first_readers(void)
{
	enum { N = 32 };
	static struct reader rd[N];
	struct fx f;
	struct role *r;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	gate_close();
	for (int i = 0; i < N; i++)
		reader_start(&rd[i], r);
	WAIT_FOR(snap(r).readers_waiting == N && sts_waiting() == 1);
	gate_open();
	for (int i = 0; i < N; i++) {
		reader_join(&rd[i]);
		CHECK(rd[i].rc == 0);
		CHECK(rd[i].c != NULL && rd[i].c == rd[0].c);
	}
	CHECK(sts_calls() == 1);
	CHECK(snap(r).requests == 1 && snap(r).renewals == 1);
	CHECK(rd[0].c && !strcmp(rd[0].c->access_key_id, "ASIAFAKE000000000001"));
	for (int i = 0; i < N; i++)
		creds_unref(rd[i].c);
	role_unref(r);
	fx_stop(&f);
}

/* Past the refresh point the current credentials are returned at once
 * (while the renewal is held at the gate) and renewed behind them. */
static void background_renewal_after_refresh_point(void)
{
	struct fx f;
	struct role *r;
	struct creds *c1 = NULL, *c = NULL;
	struct role_snapshot s;
	int64_t obtained;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0 && c1);
	if (!c1)
		goto out;
	obtained = c1->obtained;
	CHECK(c1->expires == obtained + LIFETIME);
	CHECK(creds_refresh_at(c1) == obtained + 2700);
	s = snap(r);
	CHECK(s.state == ROLE_VALID && s.next_refresh == obtained + 2700);

	/* Just before the point: served, nothing asked. */
	advance_ms(2699 * 1000);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	CHECK(sts_calls() == 1);

	/* At the point: served at once, renewed in the background. */
	advance_ms(1000);
	gate_close();
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	WAIT_FOR(sts_waiting() == 1);
	s = snap(r);
	CHECK(s.state == ROLE_RENEWING);
	CHECK(s.waiting == WAITING_ENDPOINT && s.in_flight == 1 && s.attempt == 1);
	/* More readers meanwhile: still the old set, still one request. */
	for (int i = 0; i < 10; i++) {
		CHECK(get(r, &c) == 0 && c == c1);
		creds_unref(c);
	}
	CHECK(peek(r, &c) == 0 && c == c1);
	creds_unref(c);
	/* The refresh point's timer tells the faces. */
	engine_run_timers(f.e);
	CHECK(heard("app", ENGINE_CHANGED_CREDS) >= 1);
	gate_open();
	WAIT_FOR(renewals_of(r) == 2);
	CHECK(sts_calls() == 2);
	CHECK(get(r, &c) == 0 && c && c != c1);
	if (c) {
		CHECK(c->version > c1->version);
		CHECK_STR(c->access_key_id, "ASIAFAKE000000000002");
		CHECK(c->obtained == obtained + 2700);
	}
	/* Whoever still holds the old set holds it whole. */
	CHECK_STR(c1->access_key_id, "ASIAFAKE000000000001");
	WAIT_FOR(heard("app", ENGINE_CHANGED_CREDS) >= 2);
	creds_unref(c);
out:
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* A margin before expiry and after, credentials are not handed out:
 * with STS failing the read fails, with STS working it renews. */
static void never_expired(void)
{
	struct fx f;
	struct role *r;
	struct creds *c1 = NULL, *c = NULL;
	struct role_snapshot s;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0);
	sts_otherwise(ANSWER_DENIED);
	/* 1001 ms before expiry: still valid (PEEK starts nothing). */
	advance_ms(LIFETIME * 1000 - 1001);
	CHECK(peek(r, &c) == 0 && c == c1);
	creds_unref(c);
	/* Within the last second: expired for every purpose. */
	advance_ms(2);
	CHECK(peek(r, &c) == -EAGAIN && c == NULL);
	CHECK(snap(r).state == ROLE_EXPIRED);
	engine_run_timers(f.e);
	CHECK(heard("app", ENGINE_CHANGED_STATUS) >= 1);
	CHECK(get(r, &c) == -EIO && c == NULL);
	CHECK(sts_calls() == 2);
	s = snap(r);
	CHECK(s.state == ROLE_ERROR);
	CHECK(s.has_error && !strcmp(s.error.code, "AccessDenied"));
	CHECK(s.error.http_status == 403);
	CHECK(strstr(s.error.message, "Not authorized") != NULL);
	CHECK(s.renewal_failures == 1);
	/* Never the old set, whatever the mode. */
	advance_ms(10000);
	CHECK(peek(r, &c) == -EAGAIN);
	CHECK(get(r, &c) == -EIO && c == NULL);

	/* STS back: the next read renews and gets a fresh set. */
	sts_otherwise(ANSWER_OK);
	advance_ms(10000);
	CHECK(get(r, &c) == 0 && c && c != c1);
	if (c) {
		CHECK(c->expires == fake_wall() + LIFETIME);
		CHECK(snap(r).state == ROLE_VALID);
	}
	creds_unref(c);
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* The wall clock stepped past the expiration: not valid, though no boot
 * time passed. */
static void wall_clock_step_past_expiry(void)
{
	struct fx f;
	struct role *r;
	struct creds *c1 = NULL, *c = NULL;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0);
	atomic_fetch_add(&wall_ms, (int64_t)(LIFETIME + 1) * 1000);
	CHECK(peek(r, &c) == -EAGAIN && c == NULL);
	CHECK(snap(r).state == ROLE_EXPIRED);
	CHECK(get(r, &c) == 0 && c && c != c1);
	if (c)
		CHECK(c->expires > fake_wall());
	CHECK(sts_calls() == 2);
	/* A step backwards leaves the current set valid and asks nothing;
	 * its end, counted on the boot clock, still comes on time. */
	atomic_fetch_sub(&wall_ms, (int64_t)2 * LIFETIME * 1000);
	{
		struct creds *again = NULL;

		CHECK(peek(r, &again) == 0 && again == c);
		creds_unref(again);
		CHECK(get(r, &again) == 0 && again == c);
		creds_unref(again);
		CHECK(sts_calls() == 2);
		atomic_fetch_add(&boot_ms, (int64_t)LIFETIME * 1000);
		CHECK(peek(r, &again) == -EAGAIN);
	}
	creds_unref(c);
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* A suspend: boot time jumped past the expiration while the wall and
 * monotonic clocks show nothing of it. */
static void suspend_past_expiry(void)
{
	struct fx f;
	struct role *r;
	struct creds *c1 = NULL, *c = NULL;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0);
	/* A short suspend within the lifetime changes nothing. */
	atomic_fetch_add(&boot_ms, 60 * 1000);
	CHECK(peek(r, &c) == 0 && c == c1);
	creds_unref(c);
	atomic_fetch_add(&boot_ms, (int64_t)LIFETIME * 1000);
	CHECK(peek(r, &c) == -EAGAIN && c == NULL);
	CHECK(snap(r).state == ROLE_EXPIRED);
	engine_run_timers(f.e);
	CHECK(heard("app", ENGINE_CHANGED_CREDS) >= 1);
	CHECK(get(r, &c) == 0 && c && c != c1);
	CHECK(sts_calls() == 2);
	creds_unref(c);
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* A read waits wait_timeout and no more; the snapshot then says what
 * the role waits on, and the renewal goes on for the next reader. */
static void wait_bounded_and_said(void)
{
	struct fx f;
	struct role *a, *b;
	struct reader ra, rb;
	struct role_snapshot s;
	struct creds *c = NULL;
	int64_t started_wall;

	START(&f, HEAD "max_sts_inflight = 1\nwait_timeout = 1\n"
		  "\n[role a]\n"
		  "role_arn = arn:aws:iam::123456789012:role/a\n"
		  "web_identity_token_file = @TOKEN@\n"
		  "\n[role b]\n"
		  "role_arn = arn:aws:iam::123456789012:role/b\n"
		  "web_identity_token_file = @TOKEN@\n");
	a = engine_role(f.e, "a");
	b = engine_role(f.e, "b");
	started_wall = fake_wall();
	gate_close();
	reader_start(&ra, a);
	WAIT_FOR(sts_waiting() == 1);
	/* b queues behind a's request: max_sts_inflight = 1. */
	reader_start(&rb, b);
	WAIT_FOR(waiting_of(b) == WAITING_LIMITER);
	reader_join(&ra);
	reader_join(&rb);
	CHECK(ra.rc == -EIO && ra.c == NULL);
	CHECK(rb.rc == -EIO && rb.c == NULL);
	CHECK(ra.took_ms >= 900 && ra.took_ms < 4000);
	CHECK(rb.took_ms >= 900 && rb.took_ms < 4000);

	s = snap(a);
	CHECK(s.state == ROLE_RENEWING);
	CHECK(s.waiting == WAITING_ENDPOINT);
	CHECK(s.attempt == 1 && s.in_flight == 1);
	CHECK(s.waiting_since == started_wall);
	CHECK(s.readers_waiting == 0);
	CHECK(s.requests == 1);
	CHECK(s.last_failed_read == fake_wall());
	CHECK(strstr(s.failed_read_reason, "did not answer") != NULL);
	CHECK(strstr(s.failed_read_reason, "(1 s)") != NULL);

	s = snap(b);
	CHECK(s.state == ROLE_RENEWING);
	CHECK(s.waiting == WAITING_LIMITER);
	CHECK(s.in_flight == 0 && s.requests == 0);
	CHECK(s.last_failed_read == fake_wall());
	CHECK(strstr(s.failed_read_reason, "queued") != NULL);
	CHECK(sts_calls() == 1);

	/* The renewals went on: once STS answers, both are served without
	 * another request each. */
	gate_open();
	WAIT_FOR(renewals_of(a) == 1 && renewals_of(b) == 1);
	CHECK(get(a, &c) == 0 && c);
	creds_unref(c);
	CHECK(get(b, &c) == 0 && c);
	creds_unref(c);
	CHECK(sts_calls() == 2);
	CHECK(snap(a).waiting == WAITING_NOTHING);
	role_unref(a);
	role_unref(b);
	fx_stop(&f);
}

/* ---- retries ------------------------------------------------------------------------ */

/* 503, then success after the backoff: two requests, one renewal. */
static void retry_503_then_success(void)
{
	static const enum answer script[] = { ANSWER_503, ANSWER_OK };
	struct fx f;
	struct role *r;
	struct reader rd;
	struct role_snapshot s;

	START(&f, ONE_ROLE(""));
	sts_script(script, 2);
	r = engine_role(f.e, "app");
	reader_start(&rd, r);
	wait_retry(&f, r, 1);
	s = snap(r);
	CHECK(s.attempt == 2 && s.requests == 1 && s.in_flight == 0);
	CHECK(outcome(&s, "ServiceUnavailable") == 1);
	CHECK(sts_calls() == 1);
	/* The retry is a timer on the boot clock: nothing until it is due. */
	sleep_ms(20);
	CHECK(sts_calls() == 1);
	advance_ms(1000);	/* full jitter: at most 1 s */
	engine_run_timers(f.e);
	reader_join(&rd);
	CHECK(rd.rc == 0 && rd.c != NULL);
	CHECK(sts_calls() == 2);
	s = snap(r);
	CHECK(s.renewals == 1 && s.renewal_failures == 0 && s.requests == 2);
	CHECK(outcome(&s, "200") == 1);
	CHECK(!s.has_error);
	creds_unref(rd.c);
	role_unref(r);
	fx_stop(&f);
}

/* AccessDenied is final: one request, the read fails at once. */
static void access_denied_is_final(void)
{
	struct fx f;
	struct role *r;
	struct creds *c = NULL;
	struct role_snapshot s;
	int64_t t0;

	START(&f, ONE_ROLE(""));
	sts_otherwise(ANSWER_DENIED);
	r = engine_role(f.e, "app");
	t0 = real_ms();
	CHECK(get(r, &c) == -EIO && c == NULL);
	CHECK(real_ms() - t0 < 5000);
	CHECK(sts_calls() == 1);
	s = snap(r);
	CHECK(s.state == ROLE_ERROR);
	CHECK(!strcmp(s.error.code, "AccessDenied") && !s.error.retryable);
	CHECK(s.requests == 1 && s.renewal_failures == 1);
	CHECK(s.waiting == WAITING_NOTHING);
	/* Timers have nothing to retry. */
	advance_ms(30000);
	engine_run_timers(f.e);
	sleep_ms(20);
	CHECK(sts_calls() == 1);
	role_unref(r);
	fx_stop(&f);
}

/* Throttling is retried, and slows the daemon down: the rate in force
 * halves. */
static void throttling_is_retried(void)
{
	static const enum answer script[] = { ANSWER_THROTTLE, ANSWER_OK };
	struct fx f;
	struct role *r;
	struct reader rd;
	struct engine_stats st;

	START(&f, HEAD_LIMITED "max_sts_rate = 10\n"
		  "\n[role app]\n"
		  "role_arn = arn:aws:iam::123456789012:role/app\n"
		  "web_identity_token_file = @TOKEN@\n");
	sts_script(script, 2);
	r = engine_role(f.e, "app");
	engine_stats(f.e, &st);
	CHECK(st.rate_in_force == 10);
	reader_start(&rd, r);
	wait_retry(&f, r, 1);
	engine_stats(f.e, &st);
	CHECK(st.throttle_events == 1);
	CHECK(st.rate_in_force == 5);
	advance_ms(2000);
	engine_run_timers(f.e);
	reader_join(&rd);
	CHECK(rd.rc == 0);
	CHECK(sts_calls() == 2);
	{
		struct role_snapshot s = snap(r);

		CHECK(outcome(&s, "Throttling") == 1 && outcome(&s, "200") == 1);
	}
	/* It recovers as time passes without throttling. */
	engine_stats(f.e, &st);
	CHECK(st.rate_in_force > 5 && st.rate_in_force <= 10);
	advance_ms(60000);
	engine_stats(f.e, &st);
	CHECK(st.rate_in_force == 10);
	creds_unref(rd.c);
	role_unref(r);
	fx_stop(&f);
}

/* Three attempts per renewal, no more; then the hold-off. */
static void three_attempts_at_most(void)
{
	static const enum answer script[] = { ANSWER_503, ANSWER_TRANSPORT, ANSWER_503 };
	struct fx f;
	struct role *r;
	struct reader rd;
	struct role_snapshot s;

	START(&f, ONE_ROLE(""));
	sts_script(script, 3);		/* a fourth would succeed */
	r = engine_role(f.e, "app");
	reader_start(&rd, r);
	wait_retry(&f, r, 1);
	advance_ms(1000);
	engine_run_timers(f.e);
	wait_retry(&f, r, 2);
	CHECK(snap(r).attempt == 3);
	advance_ms(2000);	/* retry 2: at most 2 s */
	engine_run_timers(f.e);
	reader_join(&rd);
	CHECK(rd.rc == -EIO && rd.c == NULL);
	CHECK(sts_calls() == 3);
	s = snap(r);
	CHECK(s.state == ROLE_ERROR);
	CHECK(!strcmp(s.error.code, "ServiceUnavailable") && s.error.retryable);
	CHECK(s.renewal_failures == 1 && s.requests == 3);
	CHECK(outcome(&s, "Transport") == 1 && outcome(&s, "ServiceUnavailable") == 2);
	/* Nothing more on its own, nor for a reader inside the hold-off. */
	advance_ms(500);
	engine_run_timers(f.e);
	CHECK(get(r, &rd.c) == -EIO);
	sleep_ms(20);
	CHECK(sts_calls() == 3);
	role_unref(r);
	fx_stop(&f);
}

/* After a failed renewal no new one starts for a while, doubling per
 * failure, for readers without credentials and for background renewals
 * alike; after it, exactly one more. */
static void failure_holdoff(void)
{
	struct fx f;
	struct role *r;
	struct creds *c = NULL, *c1 = NULL;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	sts_otherwise(ANSWER_DENIED);
	CHECK(get(r, &c) == -EIO);
	CHECK(sts_calls() == 1);
	CHECK(get(r, &c) == -EIO);		/* in the hold-off: at once */
	advance_ms(999);
	CHECK(get(r, &c) == -EIO);
	CHECK(sts_calls() == 1);
	advance_ms(1);				/* 1 s after the failure */
	CHECK(get(r, &c) == -EIO);
	CHECK(sts_calls() == 2);
	/* Second failure: two seconds. */
	advance_ms(1999);
	CHECK(get(r, &c) == -EIO);
	CHECK(sts_calls() == 2);
	advance_ms(1);
	CHECK(get(r, &c) == -EIO);
	CHECK(sts_calls() == 3);
	/* Third: four; then STS heals and the hold-off is forgotten. */
	sts_otherwise(ANSWER_OK);
	advance_ms(3999);
	CHECK(get(r, &c) == -EIO);
	CHECK(sts_calls() == 3);
	advance_ms(1);
	CHECK(get(r, &c1) == 0 && c1);
	CHECK(sts_calls() == 4);

	/* Background: past the refresh point, renewals fail; the valid set
	 * is still served, and renewals wait out the hold-off too. */
	sts_otherwise(ANSWER_DENIED);
	advance_ms(2700 * 1000);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	WAIT_FOR(snap(r).renewal_failures == 4 && waiting_of(r) == WAITING_NOTHING);
	CHECK(sts_calls() == 5);
	CHECK(snap(r).state == ROLE_STALE);
	for (int i = 0; i < 5; i++) {
		CHECK(get(r, &c) == 0 && c == c1);
		creds_unref(c);
	}
	advance_ms(999);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	sleep_ms(20);
	CHECK(sts_calls() == 5);
	advance_ms(1);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	WAIT_FOR(sts_calls() == 6);
	WAIT_FOR(waiting_of(r) == WAITING_NOTHING);
	CHECK(sts_calls() == 6);
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* ---- the limiter through the engine --------------------------------------------------- */

#define FOUR_ROLES							\
	"\n[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"	\
	"web_identity_token_file = @TOKEN@\n"				\
	"\n[role b]\nrole_arn = arn:aws:iam::123456789012:role/b\n"	\
	"web_identity_token_file = @TOKEN@\n"				\
	"\n[role c]\nrole_arn = arn:aws:iam::123456789012:role/c\n"	\
	"web_identity_token_file = @TOKEN@\n"				\
	"\n[role d]\nrole_arn = arn:aws:iam::123456789012:role/d\n"	\
	"web_identity_token_file = @TOKEN@\n"

static const char *const four[] = { "a", "b", "c", "d" };

/* max_sts_inflight = 1: cold roles read together are served one request
 * at a time. */
static void inflight_cap_through_engine(void)
{
	struct fx f;
	struct role *r[4];
	struct reader rd[4];
	struct engine_stats st;

	START(&f, HEAD "max_sts_inflight = 1\n" FOUR_ROLES);
	sts_delay(30);
	for (int i = 0; i < 4; i++)
		r[i] = engine_role(f.e, four[i]);
	for (int i = 0; i < 4; i++)
		reader_start(&rd[i], r[i]);
	WAIT_FOR(sts_calls() >= 1);
	engine_stats(f.e, &st);
	CHECK(st.in_flight <= 1);
	for (int i = 0; i < 4; i++) {
		reader_join(&rd[i]);
		CHECK(rd[i].rc == 0);
		creds_unref(rd[i].c);
		role_unref(r[i]);
	}
	CHECK(sts_calls() == 4);
	pthread_mutex_lock(&sts.lock);
	CHECK(sts.max_inflight == 1);
	pthread_mutex_unlock(&sts.lock);
	fx_stop(&f);
}

/* max_sts_rate: requests are spaced 1 / rate apart (on the real clock:
 * the limiter's waits are real waits). */
static void rate_spacing_through_engine(void)
{
	enum { N = 5 };
	struct fx f;
	struct role *r[N];
	struct reader rd[N];
	int64_t at[N];
	char name[8];
	struct buf b;

	buf_init(&b, 64 * 1024);
	CHECK(!buf_append_str(&b, HEAD_LIMITED "max_sts_rate = 10\n"));
	for (int i = 0; i < N; i++)
		CHECK(!buf_printf(&b, "\n[role r%d]\nrole_arn = arn:aws:iam::123456789012:role/r%d\n"
				  "web_identity_token_file = @TOKEN@\n", i, i));
	START_EX(&f, b.data, FX_REAL_CLOCK);
	buf_free(&b);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		r[i] = engine_role(f.e, name);
	}
	/* The bucket holds one: spend it, so every request below waits. */
	{
		struct creds *c = NULL;

		CHECK(get(r[0], &c) == 0);
		creds_unref(c);
	}
	for (int i = 1; i < N; i++)
		reader_start(&rd[i], r[i]);
	for (int i = 1; i < N; i++) {
		reader_join(&rd[i]);
		CHECK(rd[i].rc == 0);
		creds_unref(rd[i].c);
	}
	CHECK(sts_calls() == N);
	for (int i = 0; i < N; i++)
		at[i] = call_log(i).boot_ms;
	/* The limiter spaces its permits exactly; what the transport sees
	 * is that plus however late each worker thread got to run, so a
	 * gap may look shorter by that much (tens of ms on a loaded
	 * machine), never by the whole interval. */
	for (int i = 1; i < N; i++) {
		int64_t gap = at[i] - at[i - 1];

		if (gap < 60) {
			fprintf(stderr, "    request %d came %lld ms after the one before\n",
				i, (long long)gap);
			CHECK(gap >= 60);
		}
	}
	CHECK(at[N - 1] - at[0] >= (N - 1) * 100 - 40);
	CHECK(at[N - 1] - at[0] < 10000);
	for (int i = 0; i < N; i++)
		role_unref(r[i]);
	fx_stop(&f);
}

/* A reader with nothing to serve goes before renewals that only keep
 * valid credentials fresh. */
static void cold_read_before_queued_renewals(void)
{
	struct fx f;
	struct role *r[4];
	struct creds *c = NULL;
	struct reader rd;
	int order_c = -1;

	START(&f, HEAD "max_sts_inflight = 1\n" FOUR_ROLES);
	for (int i = 0; i < 4; i++)
		r[i] = engine_role(f.e, four[i]);
	for (int i = 0; i < 3; i++) {
		CHECK(get(r[i], &c) == 0);
		creds_unref(c);
	}
	CHECK(sts_calls() == 3);
	advance_ms(2700 * 1000);
	gate_close();
	/* a's renewal holds the only permit; b's and c's queue. */
	CHECK(get(r[0], &c) == 0 && c);
	creds_unref(c);
	WAIT_FOR(sts_waiting() == 1);
	for (int i = 1; i < 3; i++) {
		CHECK(get(r[i], &c) == 0 && c);
		creds_unref(c);
	}
	WAIT_FOR(waiting_of(r[1]) == WAITING_LIMITER &&
		 waiting_of(r[2]) == WAITING_LIMITER);
	/* d has nothing: its reader waits, and goes first. */
	reader_start(&rd, r[3]);
	WAIT_FOR(waiting_of(r[3]) == WAITING_LIMITER);
	{
		struct engine_stats st;

		engine_stats(f.e, &st);
		CHECK(st.queued == 3 && st.in_flight == 1);
	}
	gate_open();
	reader_join(&rd);
	CHECK(rd.rc == 0);
	creds_unref(rd.c);
	WAIT_FOR(sts_calls() == 7);
	WAIT_FOR(renewals_of(r[1]) == 2 && renewals_of(r[2]) == 2);
	for (int i = 3; i < 7; i++)
		if (!strcmp(call_log(i).arn, "arn:aws:iam::123456789012:role/d"))
			order_c = i;
	CHECK_STR(call_log(3).arn, "arn:aws:iam::123456789012:role/a");
	CHECK(order_c == 4);
	for (int i = 0; i < 4; i++)
		role_unref(r[i]);
	fx_stop(&f);
}

/* ---- chained roles ----------------------------------------------------------------------- */

#define CHAIN_OF_THREE(base_token)					\
	HEAD "wait_timeout = 5\n"					\
	"\n[role base]\nrole_arn = arn:aws:iam::123456789012:role/base\n" \
	"web_identity_token_file = " base_token "\n"			\
	"\n[role middle]\nrole_arn = arn:aws:iam::210987654321:role/middle\n" \
	"source_role = base\n"						\
	"\n[role top]\nrole_arn = arn:aws:iam::111122223333:role/top\n"	\
	"source_role = middle\n"

/* Reading the top of a chain renews each role once, each signed with
 * the credentials of the one below. */
static void chain_of_three(void)
{
	struct fx f;
	struct role *base, *middle, *top;
	struct creds *c = NULL;
	struct token *t = NULL;

	START(&f, CHAIN_OF_THREE("@TOKEN@"));
	base = engine_role(f.e, "base");
	middle = engine_role(f.e, "middle");
	top = engine_role(f.e, "top");
	CHECK(get(top, &c) == 0 && c);
	CHECK(c && !strcmp(c->access_key_id, "ASIAFAKE000000000003"));
	creds_unref(c);
	CHECK(sts_calls() == 3);
	CHECK(call_log(0).web && !strcmp(call_log(0).arn, "arn:aws:iam::123456789012:role/base"));
	CHECK_STR(call_log(0).token, JWT1);
	CHECK(!call_log(1).web && !strcmp(call_log(1).arn, "arn:aws:iam::210987654321:role/middle"));
	CHECK_STR(call_log(1).signer, "ASIAFAKE000000000001");
	CHECK(!call_log(2).web && !strcmp(call_log(2).arn, "arn:aws:iam::111122223333:role/top"));
	CHECK_STR(call_log(2).signer, "ASIAFAKE000000000002");
	CHECK(snap(base).renewals == 1 && snap(middle).renewals == 1 &&
	      snap(top).renewals == 1);
	/* Everything is at hand now. */
	CHECK(get(middle, &c) == 0 && c);
	creds_unref(c);
	CHECK(get(base, &c) == 0 && c);
	creds_unref(c);
	CHECK(sts_calls() == 3);
	/* A chained role has no token of its own. */
	CHECK(engine_token(top, ENGINE_WAIT, &t) == -ENOENT && t == NULL);
	role_unref(base);
	role_unref(middle);
	role_unref(top);
	fx_stop(&f);
}

/* A source that fails makes its dependents fail with SourceRole, at
 * once rather than at wait_timeout. */
static void chain_source_fails(void)
{
	static const enum answer script[] = { ANSWER_DENIED };
	struct fx f;
	struct role *base, *middle, *top;
	struct creds *c = NULL;
	struct role_snapshot s;
	int64_t t0;

	START(&f, CHAIN_OF_THREE("@TOKEN@"));
	sts_script(script, 1);
	base = engine_role(f.e, "base");
	middle = engine_role(f.e, "middle");
	top = engine_role(f.e, "top");
	t0 = real_ms();
	CHECK(get(top, &c) == -EIO && c == NULL);
	CHECK(real_ms() - t0 < 2500);
	CHECK(sts_calls() == 1);
	CHECK(!strcmp(snap(base).error.code, "AccessDenied"));
	s = snap(middle);
	CHECK(s.has_error && !strcmp(s.error.code, "SourceRole"));
	CHECK(strstr(s.error.message, "base") != NULL);
	s = snap(top);
	CHECK(s.state == ROLE_ERROR);
	CHECK(s.has_error && !strcmp(s.error.code, "SourceRole"));
	CHECK(strstr(s.error.message, "middle") != NULL);
	CHECK(s.waiting == WAITING_NOTHING);
	/* Once the hold-offs pass and STS answers, the chain heals. */
	advance_ms(1000);
	CHECK(get(top, &c) == 0 && c);
	creds_unref(c);
	CHECK(sts_calls() == 4);
	role_unref(base);
	role_unref(middle);
	role_unref(top);
	fx_stop(&f);
}

/* The same when the source fails before any request: its token file
 * cannot be read. */
static void chain_source_token_fails(void)
{
	struct fx f;
	struct role *top, *base;
	struct creds *c = NULL;
	int64_t t0;

	START(&f, CHAIN_OF_THREE("@DIR@/missing-token"));
	top = engine_role(f.e, "top");
	base = engine_role(f.e, "base");
	t0 = real_ms();
	CHECK(get(top, &c) == -EIO && c == NULL);
	CHECK(real_ms() - t0 < 2500);
	CHECK(sts_calls() == 0);
	CHECK(!strcmp(snap(base).error.code, "TokenFile"));
	CHECK(!strcmp(snap(top).error.code, "SourceRole"));
	CHECK(waiting_of(top) == WAITING_NOTHING);
	role_unref(top);
	role_unref(base);
	fx_stop(&f);
}

/* And when the source's token file never answers: the source's renewal
 * gives up at its deadline, and so do its dependents. */
static void chain_source_token_hangs(void)
{
	struct fx f;
	struct role *top, *base;
	struct reader rd;

	START(&f, CHAIN_OF_THREE("@TOKEN@"));
	top = engine_role(f.e, "top");
	base = engine_role(f.e, "base");
	tf_hang(f.token);
	reader_start(&rd, top);
	WAIT_FOR(tf_hanging() == 1 && waiting_of(base) == WAITING_TOKEN);
	advance_ms(5000);	/* base's wait_timeout, on the boot clock */
	engine_run_timers(f.e);
	reader_join(&rd);
	CHECK(rd.rc == -EIO && rd.took_ms < 4000);
	CHECK(!strcmp(snap(base).error.code, "TokenFile"));
	CHECK(!strcmp(snap(top).error.code, "SourceRole"));
	CHECK(sts_calls() == 0);
	tf_release();
	role_unref(top);
	role_unref(base);
	fx_stop(&f);
}

/* A reload that discards the source's renewal in flight does not
 * strand the dependent waiting on it: the source is renewed with its
 * new settings and the dependent's reader served. */
static void chain_source_reloaded_in_flight(void)
{
	struct fx f;
	struct role *top;
	struct reader rd;

	START(&f, CHAIN_OF_THREE("@TOKEN@"));
	top = engine_role(f.e, "top");
	gate_close();
	reader_start(&rd, top);
	WAIT_FOR(sts_waiting() == 1);
	CHECK(reload(&f, HEAD "wait_timeout = 5\n"
		     "\n[role base]\nrole_arn = arn:aws:iam::123456789012:role/base2\n"
		     "web_identity_token_file = @TOKEN@\n"
		     "\n[role middle]\nrole_arn = arn:aws:iam::210987654321:role/middle\n"
		     "source_role = base\n"
		     "\n[role top]\nrole_arn = arn:aws:iam::111122223333:role/top\n"
		     "source_role = middle\n") == 0);
	WAIT_FOR(sts_waiting() == 2);
	gate_open();
	reader_join(&rd);
	CHECK(rd.rc == 0 && rd.c);
	CHECK(rd.took_ms < 4000);
	CHECK(sts_calls() == 4);
	CHECK_STR(call_log(0).arn, "arn:aws:iam::123456789012:role/base");
	CHECK_STR(call_log(1).arn, "arn:aws:iam::123456789012:role/base2");
	/* middle was signed with what the new base got, not the old. */
	CHECK_STR(call_log(2).signer, "ASIAFAKE000000000002");
	creds_unref(rd.c);
	role_unref(top);
	fx_stop(&f);
}

/* ---- reload -------------------------------------------------------------------------------- */

#define TWO_ROLES(arn, extra)						\
	HEAD "\n[role app]\n"						\
	"role_arn = " arn "\n"						\
	"web_identity_token_file = @TOKEN@\n" extra			\
	"\n[role other]\n"						\
	"role_arn = arn:aws:iam::123456789012:role/other\n"		\
	"web_identity_token_file = @TOKEN@\n"

#define ARN_APP "arn:aws:iam::123456789012:role/app"
#define ARN_APP2 "arn:aws:iam::123456789012:role/app2"

static void reload_unchanged_keeps(void)
{
	struct fx f;
	struct role *r, *again;
	struct creds *c1 = NULL, *c = NULL;
	struct generation *g1, *g2;
	int64_t next;

	START(&f, TWO_ROLES(ARN_APP, ""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0);
	next = snap(r).next_refresh;
	g1 = engine_generation(f.e);
	settle(&f);
	heard_reset();
	CHECK(reload(&f, TWO_ROLES(ARN_APP, "")) == 0);
	g2 = engine_generation(f.e);
	CHECK(g1 != g2 && g2->number > g1->number);
	again = engine_role(f.e, "app");
	CHECK(again == r);	/* the same handle */
	role_unref(again);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	CHECK(sts_calls() == 1);
	CHECK(snap(r).next_refresh == next);
	CHECK(heard("app", ENGINE_CHANGED_CREDS | ENGINE_CHANGED_PRESENTATION |
			   ENGINE_CHANGED_REMOVED) == 0);
	/* The settings in force are the new generation's. */
	{
		struct generation *g = NULL;
		const struct cfg_role *cr = role_settings(r, &g);

		CHECK(cr && g == g2);
		CHECK(cr && !strcmp(cr->x.aws.role_arn, ARN_APP));
		generation_unref(g);
	}
	generation_unref(g1);
	generation_unref(g2);
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* A changed exchange drops what the role had: the next read renews with
 * the new settings, and a request in flight for the old ones is
 * discarded when it answers. */
static void reload_exchange_change(void)
{
	struct fx f;
	struct role *r, *other;
	struct creds *c1 = NULL, *c = NULL, *o1 = NULL;
	struct reader rd;
	int first_new = -1;

	START(&f, TWO_ROLES(ARN_APP, ""));
	r = engine_role(f.e, "app");
	other = engine_role(f.e, "other");
	CHECK(get(r, &c1) == 0);
	CHECK(get(other, &o1) == 0);
	CHECK(sts_calls() == 2);
	settle(&f);
	heard_reset();
	CHECK(reload(&f, TWO_ROLES(ARN_APP2, "")) == 0);
	CHECK(heard("app", ENGINE_CHANGED_CREDS) == 1);
	CHECK(heard("other", ENGINE_CHANGED_CREDS) == 0);
	CHECK(peek(r, &c) == -EAGAIN);
	CHECK(snap(r).state == ROLE_IDLE);
	/* The other role is untouched. */
	CHECK(peek(other, &c) == 0 && c == o1);
	creds_unref(c);
	CHECK(get(r, &c) == 0 && c && c != c1);
	creds_unref(c);
	CHECK(sts_calls() == 3);
	CHECK_STR(call_log(2).arn, ARN_APP2);

	/* In flight: a reader waits on a request for ARN_APP2 ... */
	CHECK(reload(&f, TWO_ROLES(ARN_APP2, "duration_seconds = 1800\n")) == 0);
	gate_close();
	reader_start(&rd, r);
	WAIT_FOR(sts_waiting() == 1);
	/* ... when the role changes to ARN_APP.  The reader goes on
	 * waiting, for a request with the new settings. */
	CHECK(reload(&f, TWO_ROLES(ARN_APP, "")) == 0);
	WAIT_FOR(sts_waiting() == 2);
	gate_open();
	reader_join(&rd);
	CHECK(rd.rc == 0 && rd.c);
	CHECK(sts_calls() == 5);
	CHECK_STR(call_log(3).arn, ARN_APP2);
	CHECK_STR(call_log(4).arn, ARN_APP);
	for (int i = 3; i < 5; i++)
		if (!strcmp(call_log(i).arn, ARN_APP))
			first_new = i;
	/* What the reader got, and what the role keeps, came from the new
	 * request; the old answer was dropped. */
	WAIT_FOR(!engine_busy(f.e));
	CHECK(first_new == 4);
	CHECK(rd.c && !strcmp(rd.c->access_key_id, call_log(4).akid));
	CHECK(peek(r, &c) == 0 && c == rd.c);
	creds_unref(c);
	/* Three renewals: the first set, after the first reload, and the
	 * last; the discarded answer is not one. */
	CHECK(snap(r).renewals == 3);

	/* A background renewal in flight when the settings change: its
	 * answer is dropped, and the next read renews afresh. */
	advance_ms(2700 * 1000);
	gate_close();
	CHECK(get(r, &c) == 0 && c == rd.c);
	creds_unref(c);
	WAIT_FOR(sts_waiting() == 1);
	CHECK(reload(&f, TWO_ROLES(ARN_APP2, "")) == 0);
	CHECK(peek(r, &c) == -EAGAIN);
	gate_open();
	WAIT_FOR(sts_calls() == 6 && !engine_busy(f.e));
	CHECK_STR(call_log(5).arn, ARN_APP);
	CHECK(peek(r, &c) == -EAGAIN);
	CHECK(snap(r).state == ROLE_IDLE && snap(r).renewals == 3);
	CHECK(get(r, &c) == 0 && c && c != rd.c);
	CHECK(c && !strcmp(c->access_key_id, call_log(6).akid));
	CHECK_STR(call_log(6).arn, ARN_APP2);
	creds_unref(c);
	creds_unref(rd.c);
	creds_unref(c1);
	creds_unref(o1);
	role_unref(r);
	role_unref(other);
	fx_stop(&f);
}

/* A reload that changes a role whose renewal waits in the limiter's queue
 * takes it out of that queue and no other: the engine goes on serving
 * (the renewal with the new settings, and a third role queued after).
 * Taking the job out used to try the preparation queue first, which took
 * an item out of that (empty) heap: its count wrapped around and the
 * write went before its array. */
static void reload_cancels_a_queued_renewal(void)
{
#define QUEUED_ROLES(b_arn)						\
	HEAD "max_sts_inflight = 1\nwait_timeout = 10\n"		\
	"\n[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"	\
	"web_identity_token_file = @TOKEN@\n"				\
	"\n[role b]\nrole_arn = arn:aws:iam::123456789012:role/" b_arn "\n" \
	"web_identity_token_file = @TOKEN@\n"				\
	"\n[role c]\nrole_arn = arn:aws:iam::123456789012:role/c\n"	\
	"web_identity_token_file = @TOKEN@\n"
	struct fx f;
	struct role *a, *b, *c;
	struct reader ra, rb, rc;
	int saw_b2 = 0;

	START(&f, QUEUED_ROLES("b"));
	a = engine_role(f.e, "a");
	b = engine_role(f.e, "b");
	c = engine_role(f.e, "c");
	gate_close();
	reader_start(&ra, a);
	WAIT_FOR(sts_waiting() == 1);
	reader_start(&rb, b);
	WAIT_FOR(waiting_of(b) == WAITING_LIMITER);
	CHECK(reload(&f, QUEUED_ROLES("b2")) == 0);
	reader_start(&rc, c);
	WAIT_FOR(waiting_of(c) == WAITING_LIMITER);
	gate_open();
	reader_join(&ra);
	reader_join(&rb);
	reader_join(&rc);
	CHECK(ra.rc == 0 && rb.rc == 0 && rc.rc == 0);
	creds_unref(ra.c);
	creds_unref(rb.c);
	creds_unref(rc.c);
	CHECK(sts_calls() == 3);
	for (int i = 0; i < 3; i++) {
		CHECK(strcmp(call_log(i).arn, "arn:aws:iam::123456789012:role/b") != 0);
		saw_b2 |= !strcmp(call_log(i).arn, "arn:aws:iam::123456789012:role/b2");
	}
	CHECK(saw_b2);
	role_unref(a);
	role_unref(b);
	role_unref(c);
	fx_stop(&f);
#undef QUEUED_ROLES
}

/* A schedule change keeps the credentials and moves the refresh point. */
static void reload_schedule_change(void)
{
	struct fx f;
	struct role *r;
	struct creds *c1 = NULL, *c = NULL;
	int64_t obtained;

	START(&f, TWO_ROLES(ARN_APP, ""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0 && c1);
	if (!c1)
		goto out;
	obtained = c1->obtained;
	CHECK(snap(r).next_refresh == obtained + 2700);
	advance_ms(600 * 1000);
	CHECK(reload(&f, TWO_ROLES(ARN_APP, "refresh_fraction = 0.5\n")) == 0);
	CHECK(peek(r, &c) == 0 && c == c1);
	creds_unref(c);
	CHECK(snap(r).next_refresh == obtained + 1800);
	CHECK(creds_refresh_at(c1) == obtained + 1800);
	CHECK(sts_calls() == 1);
	/* The engine renews at the new point. */
	advance_ms(1199 * 1000);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	sleep_ms(20);
	CHECK(sts_calls() == 1);
	advance_ms(1000);
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	WAIT_FOR(renewals_of(r) == 2);
	CHECK(sts_calls() == 2);
	/* wait_timeout and min_validity are schedule too. */
	CHECK(get(r, &c) == 0 && c && c != c1);
	creds_unref(c);
	CHECK(reload(&f, TWO_ROLES(ARN_APP, "min_validity = 3000\nwait_timeout = 3\n")) == 0);
	CHECK(peek(r, &c) == 0 && c);
	if (c)
		CHECK(snap(r).next_refresh == c->obtained + 600);
	creds_unref(c);
	CHECK(sts_calls() == 2);
out:
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* A presentation change keeps everything; the listener is told. */
static void reload_presentation_change(void)
{
	struct fx f;
	struct role *r;
	struct creds *c1 = NULL, *c = NULL;
	struct token *t1 = NULL, *t = NULL;

	START(&f, TWO_ROLES(ARN_APP, ""));
	r = engine_role(f.e, "app");
	CHECK(get(r, &c1) == 0);
	CHECK(engine_token(r, ENGINE_PEEK, &t1) == 0 && t1);
	settle(&f);
	heard_reset();
	CHECK(reload(&f, TWO_ROLES(ARN_APP, "mode = 0440\n")) == 0);
	CHECK(heard("app", ENGINE_CHANGED_PRESENTATION) == 1);
	CHECK(heard("app", ENGINE_CHANGED_CREDS | ENGINE_CHANGED_TOKEN) == 0);
	CHECK(heard("other", ENGINE_CHANGED_PRESENTATION) == 0);
	CHECK(peek(r, &c) == 0 && c == c1);
	creds_unref(c);
	CHECK(engine_token(r, ENGINE_PEEK, &t) == 0 && t == t1);
	token_unref(t);
	CHECK(sts_calls() == 1);
	{
		struct generation *g = NULL;
		const struct cfg_role *cr = role_settings(r, &g);

		CHECK(cr && cr->pres.mode == 0440);
		generation_unref(g);
	}
	token_unref(t1);
	creds_unref(c1);
	role_unref(r);
	fx_stop(&f);
}

/* A removed role answers -ENOENT through the handles still held, and
 * its listener is told; the others carry on. */
static void reload_removed_role(void)
{
	struct fx f;
	struct role *r, *other, *back;
	struct creds *c1 = NULL, *o = NULL, *c = NULL;
	struct token *t = NULL;
	struct role_snapshot s;
	struct generation *held, *g;

	START(&f, TWO_ROLES(ARN_APP, ""));
	r = engine_role(f.e, "app");
	other = engine_role(f.e, "other");
	CHECK(get(r, &c1) == 0);
	CHECK(get(other, &o) == 0);
	settle(&f);
	heard_reset();
	CHECK(reload(&f, HEAD "\n[role app]\nrole_arn = " ARN_APP "\n"
		     "web_identity_token_file = @TOKEN@\n") == 0);
	CHECK(heard("other", ENGINE_CHANGED_REMOVED) == 1);
	CHECK(heard("app", ENGINE_CHANGED_REMOVED) == 0);
	CHECK(get(other, &c) == -ENOENT && c == NULL);
	CHECK(peek(other, &c) == -ENOENT);
	CHECK(engine_token(other, ENGINE_WAIT, &t) == -ENOENT && t == NULL);
	CHECK(engine_snapshot(other, &s) == -ENOENT);
	held = g = engine_generation(f.e);
	CHECK(role_settings(other, &g) == NULL && g == NULL);
	generation_unref(held);
	CHECK_STR(role_name(other), "other");
	CHECK(engine_role(f.e, "other") == NULL);
	/* What a reader took before stays whole. */
	CHECK_STR(o->access_key_id, "ASIAFAKE000000000002");
	/* app carries on. */
	CHECK(get(r, &c) == 0 && c == c1);
	creds_unref(c);
	CHECK(sts_calls() == 2);
	/* Configured again: a new role, starting cold. */
	CHECK(reload(&f, TWO_ROLES(ARN_APP, "")) == 0);
	back = engine_role(f.e, "other");
	CHECK(back && back != other);
	CHECK(back && snap(back).state == ROLE_IDLE);
	CHECK(get(other, &c) == -ENOENT);
	role_unref(back);
	creds_unref(o);
	creds_unref(c1);
	role_unref(other);
	role_unref(r);
	fx_stop(&f);
}

/* A generation lives as long as someone holds it: after any number of
 * reloads only the one in force is left, and after the engine none. */
static void generations_freed(void)
{
	static const char *const texts[] = {
		TWO_ROLES(ARN_APP, ""),
		TWO_ROLES(ARN_APP, "mode = 0440\n"),
		TWO_ROLES(ARN_APP2, ""),
		TWO_ROLES(ARN_APP2, "refresh_fraction = 0.5\n"),
		HEAD "\n[role app]\nrole_arn = " ARN_APP "\n"
		"web_identity_token_file = @TOKEN@\n",
	};
	struct fx f;
	struct role *r;
	struct creds *c = NULL;
	unsigned long base;

	START(&f, texts[0]);
	base = f.gens_before;
	CHECK(generation_live_count() == base + 1);
	r = engine_role(f.e, "app");
	for (int i = 1; i <= 200; i++) {
		CHECK(reload(&f, texts[i % ARRAY_SIZE(texts)]) == 0);
		if (i % 10 == 0) {
			CHECK(get(r, &c) == 0);
			creds_unref(c);
			c = NULL;
		}
		if (i % 50 == 0)
			WAIT_FOR(generation_live_count() == base + 1);
	}
	CHECK(sts_calls() >= 2);
	WAIT_FOR(!engine_busy(f.e));
	WAIT_FOR(generation_live_count() == base + 1);
	/* A handle held past the engine keeps its settings alive ... */
	engine_free(f.e);
	f.e = NULL;
	CHECK(generation_live_count() == base + 1);
	CHECK(get(r, &c) == -ENOENT);
	/* ... until it goes. */
	role_unref(r);
	WAIT_FOR(generation_live_count() == base);
	fx_stop(&f);
}

/* ---- token files ------------------------------------------------------------------------------ */

/* engine_token reads the file afresh for every WAIT, on a thread of its
 * own, and a replaced file is seen at once. */
static void token_file_read_afresh(void)
{
	struct fx f;
	struct role *r;
	struct token *t1 = NULL, *t = NULL;
	struct creds *c = NULL;
	unsigned long reads;

	START(&f, ONE_ROLE(""));
	r = engine_role(f.e, "app");
	reads = tf_reads();
	CHECK(engine_token(r, ENGINE_WAIT, &t1) == 0 && t1);
	CHECK(t1 && !strcmp(t1->jwt, JWT1) && t1->len == strlen(JWT1));
	CHECK(tf_reads() == reads + 1);
	pthread_mutex_lock(&tf.lock);
	CHECK(!pthread_equal(tf.last_thread, pthread_self()));
	pthread_mutex_unlock(&tf.lock);

	/* Replaced (a new file renamed over it): the next WAIT sees it,
	 * though no time passed. */
	CHECK(write_file(f.token, JWT2 "\n") == 0);
	CHECK(engine_token(r, ENGINE_WAIT, &t) == 0 && t);
	CHECK(t && !strcmp(t->jwt, JWT2 "\n"));
	CHECK(tf_reads() == reads + 2);
	/* PEEK takes what is at hand and reads nothing. */
	{
		struct token *p = NULL;

		CHECK(engine_token(r, ENGINE_PEEK, &p) == 0 && p == t);
		token_unref(p);
		CHECK(tf_reads() == reads + 2);
	}
	/* The same content again keeps its version. */
	CHECK(write_file(f.token, JWT2 "\n") == 0);
	{
		struct token *same = NULL;

		CHECK(engine_token(r, ENGINE_WAIT, &same) == 0 && same);
		CHECK(same && t && same->version == t->version);
		token_unref(same);
	}
	/* A renewal takes the copy read within the last second ... */
	CHECK(get(r, &c) == 0);
	creds_unref(c);
	CHECK(tf_reads() == reads + 3);
	CHECK_STR(call_log(0).token, JWT2 "\n");
	/* ... and reads again when it is older. */
	CHECK(write_file(f.token, JWT1) == 0);
	advance_ms(LIFETIME * 1000);
	CHECK(get(r, &c) == 0);
	creds_unref(c);
	CHECK(tf_reads() == reads + 4);
	CHECK_STR(call_log(1).token, JWT1);
	token_unref(t);
	token_unref(t1);
	role_unref(r);
	fx_stop(&f);
}

/* A FIFO as token file: refused at once, without a request. */
static void token_file_fifo(void)
{
	struct fx f;
	struct role *r;
	struct token *t = NULL;
	struct creds *c = NULL;
	struct role_snapshot s;
	char fifo[PATH_MAX + 8];
	int64_t t0;

	START(&f, HEAD "wait_timeout = 5\n"
		  "\n[role app]\nrole_arn = " ARN_APP "\n"
		  "web_identity_token_file = @DIR@/fifo\n");
	snprintf(fifo, sizeof(fifo), "%s/fifo", f.dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	r = engine_role(f.e, "app");
	t0 = real_ms();
	CHECK(engine_token(r, ENGINE_WAIT, &t) == -EIO && t == NULL);
	CHECK(real_ms() - t0 < 1000);
	s = snap(r);
	CHECK(s.has_error && !strcmp(s.error.code, "TokenFile"));
	CHECK(strstr(s.error.message, fifo) != NULL);
	CHECK(strstr(s.error.message, "not a regular file") != NULL);
	t0 = real_ms();
	CHECK(get(r, &c) == -EIO && c == NULL);
	CHECK(real_ms() - t0 < 1000);
	CHECK(sts_calls() == 0);
	CHECK(!strcmp(snap(r).error.code, "TokenFile"));
	role_unref(r);
	fx_stop(&f);
}

/* A token file on a mount that never answers: readers wait no longer
 * than wait_timeout, one read is in flight however many ask, and the
 * role says what it waits on. */
static void token_file_hung(void)
{
	struct fx f;
	struct role *r;
	struct token *t = NULL;
	struct creds *c = NULL;
	struct role_snapshot s;
	unsigned long reads;
	int64_t t0, took;

	START(&f, HEAD "wait_timeout = 1\n"
		  "\n[role app]\nrole_arn = " ARN_APP "\n"
		  "web_identity_token_file = @TOKEN@\n");
	r = engine_role(f.e, "app");
	tf_hang(f.token);
	reads = tf_reads();
	t0 = real_ms();
	CHECK(engine_token(r, ENGINE_WAIT, &t) == -EIO && t == NULL);
	took = real_ms() - t0;
	CHECK(took >= 900 && took < 4000);
	CHECK(tf_hanging() == 1);
	s = snap(r);
	CHECK(s.waiting == WAITING_TOKEN);
	CHECK(s.last_failed_read == fake_wall());
	CHECK(strstr(s.failed_read_reason, "token was not ready") != NULL);

	/* Credentials wait for the same read, no longer. */
	t0 = real_ms();
	CHECK(get(r, &c) == -EIO && c == NULL);
	took = real_ms() - t0;
	CHECK(took >= 900 && took < 4000);
	CHECK(tf_reads() == reads + 1);
	CHECK(tf_hanging() == 1);
	s = snap(r);
	CHECK(s.state == ROLE_RENEWING && s.waiting == WAITING_TOKEN);
	CHECK(strstr(s.failed_read_reason, "web identity token was not ready") != NULL);
	CHECK(sts_calls() == 0);
	/* The renewal gives up at its own deadline. */
	advance_ms(1000);
	engine_run_timers(f.e);
	s = snap(r);
	CHECK(s.has_error && !strcmp(s.error.code, "TokenFile"));
	CHECK(s.renewal_failures == 1);

	/* The mount answers: the read ends, and the role works again. */
	tf_release();
	WAIT_FOR(tf_hanging() == 0 && waiting_of(r) == WAITING_NOTHING);
	advance_ms(1000);
	CHECK(get(r, &c) == 0 && c);
	creds_unref(c);
	CHECK(sts_calls() == 1);
	CHECK_STR(call_log(0).token, JWT1);
	role_unref(r);
	fx_stop(&f);
}

/* ---- signed tokens ----------------------------------------------------------------------------- */

/* The claims of a JWT (its payload decoded), or NULL. */
static json_t *claims_of(const char *jwt)
{
	const char *p = strchr(jwt, '.'), *end;
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char out[4096];
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (!p || !(end = strchr(p + 1, '.')))
		return NULL;
	for (const char *q = p + 1; q < end && n < sizeof(out) - 1; q++) {
		const char *k = strchr(abc, *q);

		if (!k || !*q)
			return NULL;
		acc = acc << 6 | (uint32_t)(k - abc);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return json_loadb((const char *)out, n, 0, NULL);
}

static const char *claim(json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

#define SIGNED_ROLES							\
	HEAD								\
	"\n[signer]\nkey = @DIR@/signer.pem\n"				\
	"issuer = https://oidc.example.com\n"				\
	"\n[role a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"	\
	"subject = system:serviceaccount:ns:a\n"			\
	"\n[role b]\nrole_arn = arn:aws:iam::123456789012:role/b\n"	\
	"subject = system:serviceaccount:ns:b\n"			\
	"audience = api://credfs-test\n"

static void signed_token_cached_until_refresh_point(void)
{
	struct fx f;
	struct role *a;
	struct token *t1 = NULL, *t = NULL;
	struct creds *c = NULL;
	json_t *cl;

	START_EX(&f, SIGNED_ROLES, FX_KEY);
	a = engine_role(f.e, "a");
	CHECK(engine_token(a, ENGINE_PEEK, &t) == -EAGAIN);
	CHECK(engine_token(a, ENGINE_WAIT, &t1) == 0 && t1);
	if (!t1)
		goto out;
	CHECK(t1->obtained == fake_wall());
	CHECK(t1->expires == t1->obtained + 3600);
	CHECK(token_refresh_at(t1) == t1->obtained + 2700);
	cl = claims_of(t1->jwt);
	CHECK(cl != NULL);
	CHECK(cl && !strcmp(claim(cl, "sub"), "system:serviceaccount:ns:a"));
	CHECK(cl && !strcmp(claim(cl, "aud"), "sts.amazonaws.com"));
	CHECK(cl && !strcmp(claim(cl, "iss"), "https://oidc.example.com"));
	json_decref(cl);
	/* Cached: the same token for readers and for the renewal. */
	CHECK(engine_token(a, ENGINE_WAIT, &t) == 0 && t == t1);
	token_unref(t);
	CHECK(get(a, &c) == 0);
	creds_unref(c);
	CHECK_STR(call_log(0).token, t1->jwt);
	advance_ms(2699 * 1000);
	CHECK(engine_token(a, ENGINE_WAIT, &t) == 0 && t == t1);
	token_unref(t);
	settle(&f);
	heard_reset();
	engine_run_timers(f.e);
	CHECK(heard("a", ENGINE_CHANGED_TOKEN) == 0);
	/* At its refresh point: signed again, and the faces are told. */
	advance_ms(1000);
	engine_run_timers(f.e);
	CHECK(heard("a", ENGINE_CHANGED_TOKEN) >= 1);
	CHECK(engine_token(a, ENGINE_WAIT, &t) == 0 && t && t != t1);
	if (t) {
		CHECK(t->version > t1->version);
		CHECK(t->obtained == t1->obtained + 2700);
		CHECK(strcmp(t->jwt, t1->jwt) != 0);
	}
	token_unref(t);
out:
	token_unref(t1);
	role_unref(a);
	fx_stop(&f);
}

/* Each role's audience goes into its own token, and to STS. */
static void signed_per_role_audience(void)
{
	struct fx f;
	struct role *a, *b;
	struct token *ta = NULL, *tb = NULL;
	struct creds *c = NULL;
	json_t *cl;

	START_EX(&f, SIGNED_ROLES, FX_KEY);
	a = engine_role(f.e, "a");
	b = engine_role(f.e, "b");
	CHECK(get(b, &c) == 0 && c);
	creds_unref(c);
	CHECK(engine_token(b, ENGINE_PEEK, &tb) == 0 && tb);
	CHECK(engine_token(a, ENGINE_WAIT, &ta) == 0 && ta);
	if (!ta || !tb)
		goto out;
	cl = claims_of(tb->jwt);
	CHECK(cl && !strcmp(claim(cl, "aud"), "api://credfs-test"));
	CHECK(cl && !strcmp(claim(cl, "sub"), "system:serviceaccount:ns:b"));
	json_decref(cl);
	cl = claims_of(ta->jwt);
	CHECK(cl && !strcmp(claim(cl, "aud"), "sts.amazonaws.com"));
	json_decref(cl);
	CHECK(sts_calls() == 1);
	CHECK_STR(call_log(0).token, tb->jwt);
	CHECK_STR(call_log(0).arn, "arn:aws:iam::123456789012:role/b");
out:
	token_unref(ta);
	token_unref(tb);
	role_unref(a);
	role_unref(b);
	fx_stop(&f);
}

static void init(void)
{
	CHECK(http_global_init() == 0);
	if (!getenv("CREDFS_TEST_LOG"))
		log_open("test_engine", 0, LOG_LEVEL_ERROR);
}

static void cleanup(void)
{
	http_global_cleanup();
}

static const struct check_case cases[] = {
	CHECK_CASE(init),
	CHECK_CASE(refresh_point_arithmetic),
	CHECK_CASE(refresh_point_bounds),
	CHECK_CASE(jitter_u_stable_and_spread),
	CHECK_CASE(jitter_in_the_engine),
	CHECK_CASE(lazy_until_read),
	CHECK_CASE(idle_roles_cost_little),
	CHECK_CASE(one_request_for_32_first_readers),
	CHECK_CASE(background_renewal_after_refresh_point),
	CHECK_CASE(never_expired),
	CHECK_CASE(wall_clock_step_past_expiry),
	CHECK_CASE(suspend_past_expiry),
	CHECK_CASE(wait_bounded_and_said),
	CHECK_CASE(retry_503_then_success),
	CHECK_CASE(access_denied_is_final),
	CHECK_CASE(throttling_is_retried),
	CHECK_CASE(three_attempts_at_most),
	CHECK_CASE(failure_holdoff),
	CHECK_CASE(inflight_cap_through_engine),
	CHECK_CASE(rate_spacing_through_engine),
	CHECK_CASE(cold_read_before_queued_renewals),
	CHECK_CASE(chain_of_three),
	CHECK_CASE(chain_source_fails),
	CHECK_CASE(chain_source_token_fails),
	CHECK_CASE(chain_source_token_hangs),
	CHECK_CASE(chain_source_reloaded_in_flight),
	CHECK_CASE(reload_unchanged_keeps),
	CHECK_CASE(reload_exchange_change),
	CHECK_CASE(reload_cancels_a_queued_renewal),
	CHECK_CASE(reload_schedule_change),
	CHECK_CASE(reload_presentation_change),
	CHECK_CASE(reload_removed_role),
	CHECK_CASE(generations_freed),
	CHECK_CASE(token_file_read_afresh),
	CHECK_CASE(token_file_fifo),
	CHECK_CASE(token_file_hung),
	CHECK_CASE(signed_token_cached_until_refresh_point),
	CHECK_CASE(signed_per_role_audience),
	CHECK_CASE(cleanup),
};

int main(void)
{
	return CHECK_RUN(cases);
}
