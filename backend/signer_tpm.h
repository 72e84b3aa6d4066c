/*
 * Signing keys that live in a TPM 2.0, used through the tpm2-openssl
 * provider in an OpenSSL library context of their own, so that ordinary
 * keys never route through it.  A key file holds the TPM-wrapped form
 * ("TSS2 PRIVATE KEY" PEM): useless without the TPM that made it, and not
 * secret on its own, though anyone on this host who can reach the TPM can
 * sign with it.
 *
 * The TPM is found as the provider finds it: TPM2OPENSSL_TCTI in the
 * environment (e.g. "swtpm:host=127.0.0.1,port=2321"), otherwise the TSS
 * default, the kernel's /dev/tpmrm0 first.
 *
 * All TPM use in the process is serialised by one lock: the TSS contexts
 * are not thread-safe, and a TPM without a resource manager (swtpm,
 * /dev/tpm0) serves one client at a time.  The TPM is reached only while
 * there is work: a connection is opened, the key loaded, the work done, and
 * the key flushed and the connection closed once no other signature waits.
 * So an idle credfs holds no TPM object a SIGKILL could leak, and leaves
 * the TPM to other programs.  After a failure, signing is refused at once,
 * with the reason, until a back-off (1 s doubling to 8 s) has passed; then
 * the next signature reconnects and reloads the wrapped key.
 *
 * Every function that can fail fills why (a sentence with no secret in it;
 * why may be NULL when whylen is 0).
 */
#ifndef CREDFS_SIGNER_TPM_H
#define CREDFS_SIGNER_TPM_H

#include <stddef.h>
#include <openssl/evp.h>
#include "compiler.h"

/* The PEM label of a TPM-wrapped key. */
#define TPM_KEY_PEM_LABEL "TSS2 PRIVATE KEY"
/* Longest a signature waits for another TPM operation to finish. */
#define TPM_WAIT_MS 10000

struct tpm_key;

/* 1 if data (a key file's content, len bytes) holds a TPM-wrapped key:
 * a "TSS2 PRIVATE KEY" PEM block.  Reads nothing else. */
int tpm_key_is_wrapped(const char *data, size_t len);

/* The public half of a TPM-wrapped key, read from the file alone (no TPM
 * is needed): a new EVP_PKEY of the default library context, owned by the
 * caller.  Refuses what is not a loadable, unrestricted, signing-capable
 * RSA or ECC key whose scheme (if fixed) is RSASSA or ECDSA with SHA-256.
 * NULL with why on error. */
EVP_PKEY *tpm_key_public(const char *data, size_t len, char *why,
			 size_t whylen) WUR;

/* A key for signing: keeps a copy of the wrapped form (data, len) and pub
 * (its public half, from tpm_key_public; not taken over), and checks now
 * that the TPM loads it and that the TPM's public half is pub.  path only
 * names the key in messages.  NULL with why on error. */
struct tpm_key *tpm_key_open(const char *path, const char *data, size_t len,
			     EVP_PKEY *pub, char *why, size_t whylen) WUR;
/* Frees k; touches no TPM.  NULL is fine. */
void tpm_key_free(struct tpm_key *k);

/* Signs in with k in the TPM, SHA-256: an ECDSA signature in DER, or an
 * RSASSA-PKCS1-v1_5 signature.  Returns 0 and *sig (OPENSSL_malloc'd,
 * *siglen bytes; wipe and free with OPENSSL_clear_free), or -1 with why.
 * Thread-safe; waits at most TPM_WAIT_MS for another TPM operation. */
int tpm_key_sign(struct tpm_key *k, const unsigned char *in, size_t inlen,
		 unsigned char **sig, size_t *siglen, char *why,
		 size_t whylen) WUR;

/* Creates a key inside the TPM under the owner hierarchy's storage
 * primary: type "ec" (P-256) or "rsa" (2048 bits), no password, and hands
 * back its wrapped form as PEM (malloc'd, NUL-terminated, *len bytes).
 * Returns 0, or -1 with why. */
int tpm_keygen(const char *type, char **pem, size_t *len, char *why,
	       size_t whylen) WUR;

#endif
