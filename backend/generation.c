#include "generation.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct generation_box {
	atomic_uint refs;
	struct generation g;
};

static atomic_uint_fast64_t last_number;
static atomic_ulong live;

static struct generation_box *box_of(struct generation *g)
{
	return (struct generation_box *)((char *)g -
					 offsetof(struct generation_box, g));
}

struct generation *generation_new(struct cfg *cfg, struct signer *signer)
{
	struct generation_box *b = calloc(1, sizeof(*b));

	if (!b) {
		signer_free(signer);
		cfg_free(cfg);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->g.cfg = cfg;
	b->g.signer = signer;
	b->g.number = atomic_fetch_add(&last_number, 1) + 1;
	atomic_fetch_add(&live, 1);
	return &b->g;
}

/* The generation of a parsed cfg: its signer loaded (cfg is taken). */
static int generation_of(struct cfg *cfg, const char *path, struct generation **out,
			 struct cfg_error *err)
{
	struct signer *signer = NULL;

	if (cfg->signer.present && signer_load(cfg, &signer, err)) {
		cfg_free(cfg);
		return -1;
	}
	*out = generation_new(cfg, signer);
	if (!*out) {
		snprintf(err->file, sizeof(err->file), "%s", path);
		err->line = 0;
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -1;
	}
	return 0;
}

int generation_load(const char *path, struct generation **out,
		    struct cfg_error *err)
{
	struct cfg *cfg;

	*out = NULL;
	return cfg_load(path, &cfg, err) ? -1 : generation_of(cfg, path, out, err);
}

int generation_load_snapshot(const char *path, struct generation **out,
			     int *snapshot, struct cfg_error *err)
{
	struct cfg *cfg;

	*out = NULL;
	if (cfg_load_snapshot(path, &cfg, snapshot, err))
		return -1;
	if (generation_of(cfg, path, out, err)) {
		close(*snapshot);
		*snapshot = -1;
		return -1;
	}
	return 0;
}

int generation_load_kept(int snapshot, const char *path, struct generation **out,
			 struct cfg_error *err)
{
	struct cfg *cfg;

	*out = NULL;
	return cfg_load_kept(snapshot, path, &cfg, err) ? -1 :
	       generation_of(cfg, path, out, err);
}

struct generation *generation_ref(struct generation *g)
{
	if (g)
		atomic_fetch_add(&box_of(g)->refs, 1);
	return g;
}

void generation_unref(struct generation *g)
{
	struct generation_box *b;

	if (!g)
		return;
	b = box_of(g);
	if (atomic_fetch_sub(&b->refs, 1) == 1) {
		signer_free(g->signer);
		cfg_free(g->cfg);
		free(b);
		atomic_fetch_sub(&live, 1);
		/* A configuration replaced by a reload was made before the one
		 * that replaced it, so it leaves a hole low in the heap that
		 * free() never gives back: 100 000 roles grew the daemon by
		 * 70 MB at every reload until it is returned here. */
		malloc_trim(0);
	}
}

unsigned long generation_live_count(void)
{
	return atomic_load(&live);
}
