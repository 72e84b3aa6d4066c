/*
 * The one writer of pretty JSON documents (status, keys.json, the OIDC
 * discovery document, credentials.json): two-space indent, keys in the
 * order they were added, a trailing newline.  Never used for documents
 * that hold a secret (jansson's memory is not wiped); those are written
 * by hand from values checked to need no escaping (render.c).
 */
#ifndef CREDFS_JSONOUT_H
#define CREDFS_JSONOUT_H

#include <jansson.h>
#include "compiler.h"

/* The text of j, malloc'd, or NULL (also when j is NULL).  Steals the
 * reference to j. */
char *json_document(json_t *j) WUR;

#endif
