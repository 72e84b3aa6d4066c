#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int load_config(const char *path, struct generation **gen)
{
	struct cfg_error err;
	char msg[sizeof(err.file) + CFG_ERROR_TEXT_MAX + 32];

	if (!generation_load(path, gen, &err))
		return 0;
	cfg_error_format(&err, msg, sizeof(msg));
	fprintf(stderr, "credfs: %s\n", msg);
	return EXIT_USAGE;
}

#define KEYGEN_USAGE \
	"usage: credfs keygen [--tpm] [--type ec|rsa] [--bits N] OUTFILE\n"

/* credfs keygen: a new signing key in OUTFILE, as PEM, or with --tpm made
 * inside the TPM and written in its TPM-wrapped form.  Never overwrites. */
int cmd_keygen(int argc, char **argv)
{
	const char *type = "ec", *out = NULL;
	char err[512];
	int bits = 0, tpm = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
			type = argv[++i];
		} else if (strcmp(argv[i], "--tpm") == 0) {
			tpm = 1;
		} else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v <= 0 || v > 16384) {
				fprintf(stderr, "credfs keygen: --bits takes a number, not \"%s\"\n",
					argv[i]);
				return EXIT_USAGE;
			}
			bits = (int)v;
		} else if (argv[i][0] == '-' || out) {
			fprintf(stderr, KEYGEN_USAGE);
			return EXIT_USAGE;
		} else {
			out = argv[i];
		}
	}
	if (!out) {
		fprintf(stderr, KEYGEN_USAGE);
		return EXIT_USAGE;
	}
	if (strcmp(type, "ec") && strcmp(type, "rsa")) {
		fprintf(stderr, "credfs keygen: --type is ec or rsa, not \"%s\"\n", type);
		return EXIT_USAGE;
	}
	if (strcmp(type, "ec") == 0 && bits) {
		fprintf(stderr, "credfs keygen: --bits applies to rsa keys only\n");
		return EXIT_USAGE;
	}
	if (strcmp(type, "rsa") == 0 && bits && bits < 2048) {
		fprintf(stderr, "credfs keygen: RSA keys need at least 2048 bits\n");
		return EXIT_USAGE;
	}
	if (tpm && bits && bits != 2048) {
		fprintf(stderr, "credfs keygen: RSA keys made in a TPM have 2048 bits\n");
		return EXIT_USAGE;
	}
	if (tpm ? signer_keygen_tpm(out, type, bits, err, sizeof(err))
		: signer_keygen(out, type, bits, err, sizeof(err))) {
		fprintf(stderr, "credfs keygen: %s\n", err);
		return EXIT_RUNTIME;
	}
	return 0;
}

/* Writes text to path (created or replaced, mode 0644): these are public
 * documents.  Returns 0 or -1 with a message printed. */
static int write_public(const char *path, const char *text)
{
	size_t len = strlen(text);
	FILE *f = fopen(path, "w");

	if (!f || fwrite(text, 1, len, f) != len) {
		fprintf(stderr, "credfs oidc: cannot write %s: %s\n", path,
			strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (fclose(f)) {
		fprintf(stderr, "credfs oidc: cannot write %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "credfs oidc: cannot create %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_oidc(int argc, char **argv)
{
	struct generation *gen = NULL;
	struct signer *signer;
	char *jwks = NULL, *disc = NULL;
	char path[4096];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: credfs oidc CONFIG OUTDIR\n");
		return EXIT_USAGE;
	}
	rc = load_config(argv[1], &gen);
	if (rc)
		return rc;
	signer = gen->signer;
	if (!signer) {
		fprintf(stderr, "credfs oidc: %s has no [signer] section\n", argv[1]);
		rc = EXIT_USAGE;
		goto out;
	}
	rc = EXIT_RUNTIME;
	jwks = signer_jwks(signer);
	disc = signer_discovery(signer);
	if (!jwks || !disc)
		goto out;
	snprintf(path, sizeof(path), "%s/.well-known", argv[2]);
	if (make_dir(argv[2]) || make_dir(path))
		goto out;
	snprintf(path, sizeof(path), "%s/.well-known/openid-configuration", argv[2]);
	if (write_public(path, disc))
		goto out;
	snprintf(path, sizeof(path), "%s/keys.json", argv[2]);
	if (write_public(path, jwks))
		goto out;
	rc = 0;
out:
	free(disc);
	free(jwks);
	generation_unref(gen);
	return rc;
}

/* What the role gets credentials for, per cloud. */
static const char *role_target(const struct cfg_role *r)
{
	switch (r->x.cloud) {
	case CFG_CLOUD_GCP:
		return r->x.gcp.service_account ? r->x.gcp.service_account :
						  r->x.audience;
	case CFG_CLOUD_AZURE:
		return r->x.azure.client_id;
	case CFG_CLOUD_AWS:
		break;
	}
	return r->x.aws.role_arn;
}

/* The token endpoint a role talks to first. */
static const char *role_endpoint(const struct cfg_role *r)
{
	switch (r->x.cloud) {
	case CFG_CLOUD_GCP:
		return r->x.gcp.token_url;
	case CFG_CLOUD_AZURE:
		return r->x.azure.authority_host;
	case CFG_CLOUD_AWS:
		break;
	}
	return r->x.aws.sts_endpoint;
}

static const char *source_text(const struct cfg_role *r, char *buf, size_t n)
{
	switch (r->x.token_source) {
	case CFG_TOKEN_SIGNED:
		snprintf(buf, n, "signed token, sub %s", r->x.subject);
		break;
	case CFG_TOKEN_FILE:
		snprintf(buf, n, "token file %s", r->x.web_identity_token_file);
		break;
	case CFG_TOKEN_CHAINED:
		snprintf(buf, n, "chained from %s", r->x.source_role);
		break;
	}
	return buf;
}

int cmd_check(int argc, char **argv)
{
	struct generation *gen;
	const struct cfg *cfg;
	struct signer *signer;
	char src[600];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: credfs check CONFIG\n");
		return EXIT_USAGE;
	}
	rc = load_config(argv[1], &gen);
	if (rc)
		return rc;
	cfg = gen->cfg;
	signer = gen->signer;
	printf("%s: ok, %zu role%s\n", argv[1], cfg->n_roles,
	       cfg->n_roles == 1 ? "" : "s");
	if (signer)
		printf("signer: %s key %s, issuer %s\n", signer_alg(signer),
		       signer_kid(signer), cfg->signer.issuer);
	for (size_t i = 0; i < cfg->n_roles; i++) {
		const struct cfg_role *r = &cfg->roles[i];

		printf("%s\t%s\t%s\t%s\n", r->name, role_target(r),
		       source_text(r, src, sizeof(src)), role_endpoint(r));
	}
	generation_unref(gen);
	return 0;
}
