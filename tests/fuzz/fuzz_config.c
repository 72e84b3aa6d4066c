/*
 * Fuzzes the configuration parser and validator (cfg_load_string): any
 * text either loads into a complete configuration or fails with an error
 * that can be formatted; never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_error err;
	struct cfg *cfg = NULL;
	char msg[CFG_ERROR_TEXT_MAX + 4200];
	char *text;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&err, 0, sizeof(err));
	if (cfg_load_string(text, "fuzz.conf", &cfg, &err) == 0) {
		for (size_t i = 0; i < cfg->n_roles; i++) {
			if (!cfg->roles[i].role_arn || !cfg->roles[i].sts_endpoint)
				abort();
			(void)cfg_find_role(cfg, cfg->roles[i].name);
		}
		cfg_free(cfg);
	} else {
		if (cfg)
			abort();
		cfg_error_format(&err, msg, sizeof(msg));
	}
	free(text);
	return 0;
}
