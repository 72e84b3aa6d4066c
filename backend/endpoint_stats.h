/*
 * What the HTTP face did, for metrics: counters kept here, in the backend,
 * so that metrics.c renders them for both faces without including either.
 * Process-wide, lock-free; nothing here names a role, a token or a client.
 */
#ifndef CREDFS_ENDPOINT_STATS_H
#define CREDFS_ENDPOINT_STATS_H

#include <stdint.h>

/* What a request asked for (the route), as counted. */
enum endpoint_route {
	ENDPOINT_ROUTE_CONTAINER,	/* /roles/NAME/credentials */
	ENDPOINT_ROUTE_IMDS_TOKEN,	/* PUT /latest/api/token */
	ENDPOINT_ROUTE_IMDS,		/* the other /latest/ paths */
	ENDPOINT_ROUTE_METRICS,
	ENDPOINT_ROUTE_OTHER,
	ENDPOINT_ROUTES,
};

struct endpoint_figures {
	int active;			/* the face has listened at all */
	uint64_t requests[ENDPOINT_ROUTES][8];	/* by route and status class */
	int64_t connections;		/* open now */
	uint64_t deadline_cuts;		/* connections cut at the deadline */
	int64_t waiting;		/* requests with the workers now */
};

/* The statuses counted apart, in the order of requests[route][i]; the
 * last slot counts any other. */
extern const unsigned endpoint_stats_statuses[8];
const char *endpoint_route_name(enum endpoint_route r);

void endpoint_stats_activate(void);
void endpoint_stats_request(enum endpoint_route r, unsigned status);
void endpoint_stats_connection(int delta);
void endpoint_stats_deadline_cut(void);
void endpoint_stats_waiting(int delta);
void endpoint_stats_read(struct endpoint_figures *out);

#endif
