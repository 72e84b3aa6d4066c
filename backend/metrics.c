#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "endpoint_stats.h"

/* What a scrape says about one role in use. */
struct role_line {
	char name[CFG_ROLE_NAME_MAX + 1];
	int64_t expiration, next_refresh;
	unsigned long renewals, failures, other;
	int valid;
	struct role_outcome outcomes[ENGINE_OUTCOMES];
	size_t n_outcomes;
};

struct pass {
	struct role_line *lines;
	size_t n, cap;
	int rc;
	int64_t now;
};

/* Appends v as a label value: backslash, double quote and newline are
 * escaped (error codes come from outside). */
static int label(struct buf *out, const char *v)
{
	int r = 0;

	for (; !r && *v; v++) {
		if (*v == '\\' || *v == '"')
			r = buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			r = buf_append_str(out, "\\n");
		else
			r = buf_append(out, v, 1);
	}
	return r;
}

static void collect(void *arg, struct role *r)
{
	struct pass *p = arg;
	struct role_snapshot s;
	struct role_line *l;

	if (p->rc || engine_snapshot(r, &s))
		return;
	if (!(s.renewals || s.renewal_failures || s.requests))
		goto out;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct role_line *grown = realloc(p->lines, cap * sizeof(*grown));

		if (!grown) {
			p->rc = -ENOMEM;
			goto out;
		}
		p->lines = grown;
		p->cap = cap;
	}
	l = &p->lines[p->n++];
	snprintf(l->name, sizeof(l->name), "%s", role_name(r));
	l->expiration = s.expiration;
	l->next_refresh = s.next_refresh;
	l->renewals = s.renewals;
	l->failures = s.renewal_failures;
	l->other = s.other_outcomes;
	l->valid = s.state == ROLE_VALID || s.state == ROLE_STALE ||
		   (s.state == ROLE_RENEWING && s.expiration > p->now);
	memcpy(l->outcomes, s.outcomes, sizeof(l->outcomes));
	l->n_outcomes = s.n_outcomes;
out:
	role_snapshot_clear(&s);
}

static int family(struct buf *o, const char *name, const char *type,
		  const char *help)
{
	return buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The per-role families, each one group of lines. */
static int role_families(struct buf *o, const struct pass *p)
{
	int r = family(o, "credfs_credentials_expiry_timestamp_seconds", "gauge",
		       "When the role's current credentials expire (Unix time).");

	for (size_t i = 0; !r && i < p->n; i++)
		if (p->lines[i].expiration)
			r = buf_printf(o, "credfs_credentials_expiry_timestamp_seconds{role=\"%s\"} %lld\n",
				       p->lines[i].name, (long long)p->lines[i].expiration);
	if (!r)
		r = family(o, "credfs_credentials_refresh_seconds", "gauge",
			   "Seconds until the role's credentials are due for renewal (negative: overdue).");
	for (size_t i = 0; !r && i < p->n; i++)
		if (p->lines[i].next_refresh)
			r = buf_printf(o, "credfs_credentials_refresh_seconds{role=\"%s\"} %lld\n",
				       p->lines[i].name,
				       (long long)(p->lines[i].next_refresh - p->now));
	if (!r)
		r = family(o, "credfs_role_valid", "gauge",
			   "1 while the role holds valid credentials.");
	for (size_t i = 0; !r && i < p->n; i++)
		r = buf_printf(o, "credfs_role_valid{role=\"%s\"} %d\n",
			       p->lines[i].name, p->lines[i].valid);
	if (!r)
		r = family(o, "credfs_renewals_total", "counter",
			   "Renewals of the role's credentials, by result.");
	for (size_t i = 0; !r && i < p->n; i++)
		r = buf_printf(o, "credfs_renewals_total{role=\"%s\",result=\"success\"} %lu\n"
			       "credfs_renewals_total{role=\"%s\",result=\"failure\"} %lu\n",
			       p->lines[i].name, p->lines[i].renewals,
			       p->lines[i].name, p->lines[i].failures);
	if (!r)
		r = family(o, "credfs_requests_total", "counter",
			   "Requests to the role's token endpoint, by outcome (HTTP status or error code).");
	for (size_t i = 0; !r && i < p->n; i++) {
		const struct role_line *l = &p->lines[i];

		for (size_t k = 0; !r && k < l->n_outcomes; k++) {
			r = buf_printf(o, "credfs_requests_total{role=\"%s\",outcome=\"", l->name);
			if (!r)
				r = label(o, l->outcomes[k].code);
			if (!r)
				r = buf_printf(o, "\"} %lu\n", l->outcomes[k].count);
		}
		if (!r && l->other)
			r = buf_printf(o, "credfs_requests_total{role=\"%s\",outcome=\"other\"} %lu\n",
				       l->name, l->other);
	}
	return r;
}

static int histogram(struct buf *o, const struct engine_stats *st)
{
	const char *n = "credfs_request_duration_seconds";
	int r = buf_printf(o, "# HELP %s Latency of requests to token endpoints, every role and cloud.\n"
			   "# TYPE %s histogram\n", n, n);

	for (int i = 0; !r && i < ENGINE_LATENCY_BUCKETS; i++)
		r = buf_printf(o, "%s_bucket{le=\"%g\"} %lu\n", n,
			       engine_latency_bounds[i], st->latency_buckets[i]);
	if (!r)
		r = buf_printf(o, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %.6f\n%s_count %lu\n",
			       n, st->latency_count, n, st->latency_sum, n,
			       st->latency_count);
	return r;
}

static int daemon_lines(struct buf *o, const struct engine_stats *st)
{
	return buf_printf(o,
		"# HELP credfs_build_info The running credfs.\n"
		"# TYPE credfs_build_info gauge\n"
		"credfs_build_info{version=\"%s\"} 1\n"
		"# HELP credfs_roles_configured Roles in the configuration in force.\n"
		"# TYPE credfs_roles_configured gauge\n"
		"credfs_roles_configured %zu\n"
		"# HELP credfs_roles_in_use Roles holding credentials or a token.\n"
		"# TYPE credfs_roles_in_use gauge\n"
		"credfs_roles_in_use %zu\n"
		"# HELP credfs_requests_queued Requests waiting for max_sts_rate or max_sts_inflight.\n"
		"# TYPE credfs_requests_queued gauge\n"
		"credfs_requests_queued %zu\n"
		"# HELP credfs_renewals_behind Queued renewals already past their min_validity point.\n"
		"# TYPE credfs_renewals_behind gauge\n"
		"credfs_renewals_behind %zu\n"
		"# HELP credfs_requests_in_flight Requests to token endpoints in flight.\n"
		"# TYPE credfs_requests_in_flight gauge\n"
		"credfs_requests_in_flight %u\n"
		"# HELP credfs_request_rate_limit Requests per second allowed now (0: no limit).\n"
		"# TYPE credfs_request_rate_limit gauge\n"
		"credfs_request_rate_limit %g\n"
		"# HELP credfs_throttled_total Answers that asked credfs to slow down.\n"
		"# TYPE credfs_throttled_total counter\n"
		"credfs_throttled_total %lu\n",
		CREDFS_VERSION, st->roles_configured, st->roles_in_use,
		st->queued, st->behind, st->in_flight, st->rate_in_force,
		st->throttle_events);
}

/* The HTTP face's families, once it has listened: requests by route and
 * status (the last status slot is "other"), connections open, connections
 * cut at the request deadline, requests waiting with the workers. */
static int endpoint_lines(struct buf *o)
{
	struct endpoint_figures f;
	int r;

	endpoint_stats_read(&f);
	if (!f.active)
		return 0;
	r = family(o, "credfs_endpoint_requests_total", "counter",
		   "HTTP requests answered by the endpoint, by route and status.");
	for (int k = 0; !r && k < ENDPOINT_ROUTES; k++)
		for (int i = 0; !r && i < 8; i++)
			if (f.requests[k][i]) {
				char code[12];

				if (endpoint_stats_statuses[i])
					snprintf(code, sizeof(code), "%u", endpoint_stats_statuses[i]);
				else
					snprintf(code, sizeof(code), "other");
				r = buf_printf(o, "credfs_endpoint_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
					       endpoint_route_name((enum endpoint_route)k), code,
					       (unsigned long long)f.requests[k][i]);
			}
	if (!r)
		r = buf_printf(o,
			"# HELP credfs_endpoint_connections HTTP connections open now.\n"
			"# TYPE credfs_endpoint_connections gauge\n"
			"credfs_endpoint_connections %lld\n"
			"# HELP credfs_endpoint_deadline_cuts_total Connections cut because a request did not arrive whole in time.\n"
			"# TYPE credfs_endpoint_deadline_cuts_total counter\n"
			"credfs_endpoint_deadline_cuts_total %llu\n"
			"# HELP credfs_endpoint_requests_waiting HTTP requests waiting for credentials or a scrape.\n"
			"# TYPE credfs_endpoint_requests_waiting gauge\n"
			"credfs_endpoint_requests_waiting %lld\n",
			(long long)f.connections, (unsigned long long)f.deadline_cuts,
			(long long)f.waiting);
	return r;
}

int metrics_render(struct engine *e, struct buf *out)
{
	struct engine_stats st;
	struct pass p = { .now = clock_wall() };
	int rc;

	engine_stats(e, &st);
	rc = daemon_lines(out, &st);
	if (!rc)
		rc = histogram(out, &st);
	if (!rc)
		rc = endpoint_lines(out);
	if (!rc) {
		engine_each_role(e, collect, &p);
		rc = p.rc;
	}
	if (!rc)
		rc = role_families(out, &p);
	free(p.lines);
	return rc;
}
