#include "jsonout.h"

#include <stdlib.h>
#include <string.h>

char *json_document(json_t *j)
{
	char *text, *out = NULL;
	size_t n;

	if (!j)
		return NULL;
	text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!text)
		return NULL;
	n = strlen(text);
	out = malloc(n + 2);
	if (out) {
		memcpy(out, text, n);
		out[n] = '\n';
		out[n + 1] = '\0';
	}
	free(text);
	return out;
}
