/*
 * The Prometheus text exposition of the engine, built in this one place
 * for both faces (MOUNTPOINT/metrics and GET /metrics).  Every name starts
 * with credfs_.  Per role only roles in use appear (a role nobody read has
 * nothing to say), and request latency is one daemon-wide histogram, so a
 * scrape stays modest with many roles.  No secret, no token.
 */
#ifndef CREDFS_METRICS_H
#define CREDFS_METRICS_H

#include "buf.h"
#include "engine.h"

/* Appends the text to out.  0 or a negative errno. */
int metrics_render(struct engine *e, struct buf *out) WUR;

#endif
