/*
 * Credentials handed from one worker to its successor during a takeover,
 * memory to memory over a socket the two supervisors passed along (they
 * only ever hold the descriptor, never what goes through it), so that a
 * rollout does not send every role in use to its token endpoint at once.
 * Nothing is written to disk.  The successor keeps a set only for a role
 * whose exchange settings are the same (cfg_exchange_fingerprint) and that
 * has none yet, and only while it is valid.
 *
 * The stream: "CRFSHOV1", then per role a record (name, fingerprint,
 * obtained, expires, five strings), then a record with an empty name.
 * Strings are a 32-bit length (0xffffffff: none) and bytes.
 */
#include "engine_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "fdio.h"
#include "log.h"

#define MAGIC "CRFSHOV1"
#define NONE 0xffffffffu
#define STRING_MAX (64 * 1024)

/* ---- writing ------------------------------------------------------------ */

static int put(int fd, const void *p, size_t n)
{
	return fd_write_all(fd, p, n);
}

static int put_str(int fd, const char *s)
{
	uint32_t n = s ? (uint32_t)strlen(s) : NONE;

	return put(fd, &n, sizeof(n)) || (s && put(fd, s, n));
}

struct export {
	int fd;
	int failed;
	size_t sent;
};

static int put_record(int fd, const char *name, const unsigned char *fp,
		      const struct creds *c)
{
	uint32_t n = (uint32_t)strlen(name);

	return put(fd, &n, sizeof(n)) || put(fd, name, n) ||
	       put(fd, fp, CFG_FINGERPRINT_LEN) ||
	       put(fd, &c->obtained, sizeof(c->obtained)) ||
	       put(fd, &c->expires, sizeof(c->expires)) ||
	       put_str(fd, c->access_key_id) || put_str(fd, c->secret_access_key) ||
	       put_str(fd, c->session_token) || put_str(fd, c->assumed_role_arn) ||
	       put_str(fd, c->access_token);
}

static void export_role(void *arg, struct role *r)
{
	struct export *x = arg;
	unsigned char fp[CFG_FINGERPRINT_LEN];
	struct creds *c = NULL;
	int ok;

	if (x->failed)
		return;
	pthread_mutex_lock(&r->lock);
	ok = role_valid_locked(r, clock_boot_ms()) &&
	     !cfg_exchange_fingerprint(&r->cfg->x, fp);
	if (ok)
		c = creds_ref(r->current);
	pthread_mutex_unlock(&r->lock);
	if (!c)
		return;
	if (put_record(x->fd, r->name, fp, c))
		x->failed = 1;
	else
		x->sent++;
	creds_unref(c);
}

int engine_export(struct engine *e, int fd)
{
	struct export x = { .fd = fd };
	uint32_t end = 0;

	if (put(fd, MAGIC, 8))
		return -1;
	engine_each_role(e, export_role, &x);
	if (x.failed || put(fd, &end, sizeof(end)))
		return -1;
	log_info("handover: %zu role%s of credentials handed to the successor",
		 x.sent, x.sent == 1 ? "" : "s");
	return (int)x.sent;
}

/* ---- reading ------------------------------------------------------------ */

struct reader {
	int fd;
	int64_t deadline;	/* monotonic ms */
};

static int get(struct reader *rd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		struct pollfd pf = { .fd = rd->fd, .events = POLLIN };
		int64_t left = rd->deadline - clock_mono_ms();
		ssize_t got;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return -1;
		got = read(rd->fd, c, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		c += got;
		n -= (size_t)got;
	}
	return 0;
}

/* A string in secure memory (NULL for none). */
static int get_str(struct reader *rd, char **out)
{
	uint32_t n;
	char *s;

	*out = NULL;
	if (get(rd, &n, sizeof(n)))
		return -1;
	if (n == NONE)
		return 0;
	if (n > STRING_MAX)
		return -1;
	s = malloc((size_t)n + 1);
	if (!s || get(rd, s, n)) {
		secret_free_n(s, s ? (size_t)n + 1 : 0);
		return -1;
	}
	s[n] = '\0';
	*out = secret_strdup(s);
	secret_free_n(s, (size_t)n + 1);
	return *out ? 0 : -1;
}

static int get_creds(struct reader *rd, struct creds *c)
{
	return get(rd, &c->obtained, sizeof(c->obtained)) ||
	       get(rd, &c->expires, sizeof(c->expires)) ||
	       get_str(rd, &c->access_key_id) || get_str(rd, &c->secret_access_key) ||
	       get_str(rd, &c->session_token) || get_str(rd, &c->assumed_role_arn) ||
	       get_str(rd, &c->access_token);
}

/* Gives r the set got (taken over) if it may have it.  1 if kept. */
static int adopt(struct role *r, const unsigned char *fp, struct creds *got)
{
	unsigned char mine[CFG_FINGERPRINT_LEN];
	int64_t wall = clock_wall(), boot = clock_boot_ms(), point;
	const struct cfg_schedule *s;
	struct creds *c;
	int kept = 0;

	pthread_mutex_lock(&r->lock);
	if (r->removed || r->current || got->expires <= wall + 1 ||
	    cfg_exchange_fingerprint(&r->cfg->x, mine) ||
	    memcmp(mine, fp, CFG_FINGERPRINT_LEN) || role_use_locked(r))
		goto out;
	c = creds_publish(got);
	if (!c)
		goto out;
	s = &r->cfg->sched;
	point = engine_refresh_point(c->obtained, c->expires, s->refresh_fraction,
				     s->min_validity, s->refresh_jitter, r->use->jitter_u);
	creds_set_refresh_at(c, point);
	r->current = c;
	r->expires_boot = boot + (c->expires - wall) * 1000;
	r->refresh_boot = boot + (point - wall) * 1000;
	r->refresh_wall = point;
	r->use->last_refresh = c->obtained;
	timers_arm_locked(r, RT_REFRESH, r->refresh_boot);
	timers_arm_locked(r, RT_EXPIRY, r->expires_boot - EXPIRY_MARGIN_MS);
	kept = 1;
out:
	pthread_mutex_unlock(&r->lock);
	creds_clear(got);
	return kept;
}

int engine_import(struct engine *e, int fd, int timeout_ms)
{
	struct reader rd = { fd, clock_mono_ms() + timeout_ms };
	char magic[8], name[CFG_ROLE_NAME_MAX + 1];
	unsigned char fp[CFG_FINGERPRINT_LEN];
	int kept = 0, seen = 0;

	if (get(&rd, magic, sizeof(magic)) || memcmp(magic, MAGIC, 8))
		return -1;
	for (;;) {
		struct creds got = {0};
		struct role *r;
		uint32_t n;

		if (get(&rd, &n, sizeof(n)) || n > CFG_ROLE_NAME_MAX)
			return -1;
		if (n == 0)
			break;
		if (get(&rd, name, n) || get(&rd, fp, sizeof(fp)) ||
		    get_creds(&rd, &got)) {
			creds_clear(&got);
			return -1;
		}
		name[n] = '\0';
		seen++;
		r = engine_role(e, name);
		if (r) {
			kept += adopt(r, fp, &got);
			role_unref(r);
		}
		creds_clear(&got);
	}
	log_info("handover: %d role%s of credentials taken over (%d offered)", kept,
		 kept == 1 ? "" : "s", seen);
	return kept;
}
