/*
 * credfs as an OIDC issuer: signing keys, JWTs, the JWKS and the discovery
 * document.  Private keys are EC P-256 (ES256) or RSA >= 2048 (RS256), as
 * PEM files or inside a TPM 2.0 (a TPM-wrapped "TSS2 PRIVATE KEY" file,
 * see signer_tpm.h).  kid = base64url(SHA-256(DER SubjectPublicKeyInfo)),
 * as kube-apiserver and ccoctl compute it.
 */
#ifndef CREDFS_SIGNER_H
#define CREDFS_SIGNER_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "config.h"

struct signer;

/* Writes a new private key (PKCS#8 PEM, mode 0600) to path; never
 * overwrites.  type is "ec" (P-256; bits ignored) or "rsa" (bits >= 2048,
 * 0 means 2048).  Returns 0, or -1 with a sentence in err. */
int signer_keygen(const char *path, const char *type, int bits, char *err,
		  size_t errlen) WUR;

/* Creates a key inside the TPM and writes its TPM-wrapped form ("TSS2
 * PRIVATE KEY" PEM, mode 0600) to path; never overwrites.  type is "ec"
 * (P-256) or "rsa" (2048 bits: bits must be 0 or 2048).  Returns 0, or -1
 * with a sentence in err (nothing is left at path then). */
int signer_keygen_tpm(const char *path, const char *type, int bits,
		      char *err, size_t errlen) WUR;

/* Loads [signer] of cfg: the key (must be a regular file, not group- or
 * world-readable, EC P-256 or RSA >= 2048; a PEM private key, or a
 * TPM-wrapped key, which is loaded into the TPM once here to prove it can
 * sign) and previous_keys (private or public PEM, or TPM-wrapped; only the
 * public half is read and published, no TPM is needed).  Errors carry the
 * config file and the line of the offending key.  cfg->signer.present must
 * be set. */
int signer_load(const struct cfg *cfg, struct signer **out,
		struct cfg_error *err) WUR;
void signer_free(struct signer *s);

/* Whether a and b sign the same tokens: same current key, issuer,
 * audience, lifetime and skew (previous keys do not matter).  NULL equals
 * only NULL. */
int signer_same_tokens(const struct signer *a, const struct signer *b);

/* "ES256" or "RS256". */
const char *signer_alg(const struct signer *s);
/* kid of the current key. */
const char *signer_kid(const struct signer *s);
int signer_token_lifetime(const struct signer *s);
/* 1 if the current key lives in a TPM (signing may then fail while the TPM
 * is absent, busy or failing), 0 if it is a file key or s is NULL. */
int signer_uses_tpm(const struct signer *s);

/* Signs a JWT for subject with iat = nbf = now - clock_skew,
 * exp = now + token_lifetime, iss from the config, aud = audience (NULL:
 * the [signer] audience), and a random jti.  Returns 0 and a malloc'd
 * token (free with secret_free), or -1 with why filled (a sentence fit
 * for status and the log, never a secret: e.g. why the TPM failed; why may
 * be NULL if whylen is 0).  Thread-safe; with a TPM key, signatures are
 * serialised and may wait for the TPM (at most 10 s for another
 * TPM operation). */
int signer_sign(struct signer *s, const char *subject, const char *audience,
		int64_t now, char **jwt_out, char *why, size_t whylen) WUR;

/* JWKS {"keys":[current, previous...]}; malloc'd JSON text, NULL on error. */
char *signer_jwks(const struct signer *s) WUR;
/* OIDC discovery document; malloc'd JSON text, NULL on error. */
char *signer_discovery(const struct signer *s) WUR;

/* base64url without padding; malloc'd, NULL on error. */
char *b64url_encode(const unsigned char *data, size_t len) WUR;

#endif
