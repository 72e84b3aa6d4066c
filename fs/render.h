/*
 * What each file of a role directory says.  Every call renders one whole
 * document from one snapshot of the role's state, so a reader never sees
 * half of an old and half of a new document.
 */
#ifndef CREDFS_RENDER_H
#define CREDFS_RENDER_H

#include "buf.h"
#include "engine.h"
#include "tree.h"

#define RENDER_MAX (64 * 1024)

/* Renders file f of role i into out (initialised by the caller with
 * RENDER_MAX).  mountpoint (absolute) places the role directory in config
 * when the role sets no consumer_path.  config and status never wait on
 * STS; credentials, expiry, process.json and env may, for up to the role's
 * wait_timeout, in RENDER_WAIT mode.  Returns 0 or a negative errno (-EIO
 * when no valid credentials; -EAGAIN in RENDER_PEEK mode when the document
 * would need STS or signing). */
enum render_mode {
	RENDER_WAIT,	/* a read: renew or sign as needed, waiting */
	RENDER_PEEK,	/* a stat: only what is at hand, never STS or signing */
};

int render_role_file(struct engine *e, const struct cfg_role *role, size_t i,
		     enum role_file f, const char *mountpoint,
		     enum render_mode mode, struct buf *out);

/* Whether file f is padded to a steady size (see render_pad). */
int render_is_padded(enum role_file f);

/* Pads document b of file f to exactly `to` bytes (to >= b->len) in a way
 * its readers ignore: a trailing comment line for credentials and env,
 * blanks before the final newline for JSON.  Keeping a file's size steady
 * across renewals is what lets the kernel cache it without ever pairing
 * one generation's size with another's bytes (docs/caching.md). */
int render_pad(enum role_file f, struct buf *b, size_t to);

#endif
