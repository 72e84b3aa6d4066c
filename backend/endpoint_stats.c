#include "endpoint_stats.h"

#include <stdatomic.h>
#include <string.h>

#include "compiler.h"

const unsigned endpoint_stats_statuses[8] = { 200, 400, 401, 403, 404, 405, 503, 0 };

static atomic_int active;
static _Atomic uint64_t requests[ENDPOINT_ROUTES][8];
static _Atomic int64_t connections;
static _Atomic uint64_t deadline_cuts;
static _Atomic int64_t waiting;

const char *endpoint_route_name(enum endpoint_route r)
{
	static const char *const names[ENDPOINT_ROUTES] = {
		[ENDPOINT_ROUTE_CONTAINER] = "container",
		[ENDPOINT_ROUTE_IMDS_TOKEN] = "imds_token",
		[ENDPOINT_ROUTE_IMDS] = "imds",
		[ENDPOINT_ROUTE_METRICS] = "metrics",
		[ENDPOINT_ROUTE_OTHER] = "other",
	};

	return (unsigned)r < ENDPOINT_ROUTES ? names[r] : "other";
}

void endpoint_stats_activate(void)
{
	atomic_store(&active, 1);
}

void endpoint_stats_request(enum endpoint_route r, unsigned status)
{
	size_t i = 0;

	if ((unsigned)r >= ENDPOINT_ROUTES)
		r = ENDPOINT_ROUTE_OTHER;
	while (i < ARRAY_SIZE(endpoint_stats_statuses) - 1 &&
	       endpoint_stats_statuses[i] != status)
		i++;
	atomic_fetch_add_explicit(&requests[r][i], 1, memory_order_relaxed);
}

void endpoint_stats_connection(int delta)
{
	atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

void endpoint_stats_deadline_cut(void)
{
	atomic_fetch_add_explicit(&deadline_cuts, 1, memory_order_relaxed);
}

void endpoint_stats_waiting(int delta)
{
	atomic_fetch_add_explicit(&waiting, delta, memory_order_relaxed);
}

void endpoint_stats_read(struct endpoint_figures *out)
{
	memset(out, 0, sizeof(*out));
	out->active = atomic_load(&active);
	for (int r = 0; r < ENDPOINT_ROUTES; r++)
		for (int i = 0; i < 8; i++)
			out->requests[r][i] = atomic_load_explicit(&requests[r][i],
								   memory_order_relaxed);
	out->connections = atomic_load(&connections);
	out->deadline_cuts = atomic_load(&deadline_cuts);
	out->waiting = atomic_load(&waiting);
}
