/*
 * A generation: one loaded configuration and the signer made from it, the
 * unit a reload replaces.  It has one owner: whoever holds a reference.
 * The engine's roles hold one each (the settings in force for them), and
 * so do a face's view of the tree and every renewal in flight; the last
 * reference dropped frees configuration, keys and all.  Nothing is freed
 * on a timer.
 */
#ifndef CREDFS_GENERATION_H
#define CREDFS_GENERATION_H

#include <stdint.h>
#include "compiler.h"
#include "config.h"
#include "signer.h"

struct generation {
	struct cfg *cfg;
	struct signer *signer;		/* NULL without [signer] */
	uint64_t number;		/* 1 for the first load, then 2, ... */
};

/* Loads and validates path and its signer: the one place credfs reads a
 * configuration.  0 and *out with one reference, or -1 with err filled. */
int generation_load(const char *path, struct generation **out,
		    struct cfg_error *err) WUR;

/* generation_load, and a snapshot of the text parsed (cfg_load_snapshot),
 * and the same from a snapshot kept (cfg_load_kept). */
int generation_load_snapshot(const char *path, struct generation **out,
			     int *snapshot, struct cfg_error *err) WUR;
int generation_load_kept(int snapshot, const char *path, struct generation **out,
			 struct cfg_error *err) WUR;

/* A generation of cfg and signer (may be NULL), taking both over; NULL
 * when out of memory (both are freed). */
struct generation *generation_new(struct cfg *cfg, struct signer *signer) WUR;

struct generation *generation_ref(struct generation *g);
void generation_unref(struct generation *g);

/* Live generations in the process (loaded and not yet freed), for the
 * tests that prove reloads free what they replace. */
unsigned long generation_live_count(void);

#endif
