/*
 * Fuzzes the signing-key loading path of the signer (signer_load): the
 * input is the content of a key file, loaded both as [signer] key (a
 * private key, mode 0600) and as one of previous_keys (private or public)
 * next to a valid key; whatever loads is published as a JWKS.  The file is
 * a memfd reached through /proc/self/fd, so nothing touches the disk.
 * Input without a PEM header is DER, wrapped in a PRIVATE KEY block.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"
#include "signer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int input_fd = -1;
static char good_key[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	int fd;

	(void)argc;
	(void)argv;
	input_fd = memfd_create("fuzz-key", MFD_CLOEXEC);
	if (input_fd < 0 || fchmod(input_fd, 0600))
		abort();
	/* A valid current key, so the input can be tried as a previous key. */
	fd = memfd_create("fuzz-good-key", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	snprintf(good_key, sizeof(good_key), "/proc/self/fd/%d", fd);
	/* keygen never overwrites: give it a path that does not exist yet,
	 * then move the key into the memfd. */
	{
		char tmp[] = "/tmp/credfs-fuzz-keyXXXXXX";
		char path[64], buf[8192];
		int dfd;
		ssize_t n;

		if (!mkdtemp(tmp))
			abort();
		snprintf(path, sizeof(path), "%s/k.pem", tmp);
		if (signer_keygen(path, "ec", 0, err, sizeof(err)))
			abort();
		dfd = open(path, O_RDONLY);
		n = dfd < 0 ? -1 : read(dfd, buf, sizeof(buf));
		if (n <= 0 || write(fd, buf, (size_t)n) != n || fchmod(fd, 0600))
			abort();
		close(dfd);
		unlink(path);
		rmdir(tmp);
	}
	return 0;
}

static void try_load(const char *key, const char *previous)
{
	char text[512];
	struct cfg *cfg = NULL;
	struct signer *s = NULL;
	struct cfg_error err;
	char *jwks;

	snprintf(text, sizeof(text),
		 "[credfs]\nregion = ap-northeast-1\n"
		 "[signer]\nkey = %s\n%s%s%s"
		 "issuer = https://oidc.example.com\n"
		 "[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\n"
		 "subject = app\n",
		 key, previous ? "previous_keys = " : "",
		 previous ? previous : "", previous ? "\n" : "");
	if (cfg_load_string(text, "fuzz.conf", &cfg, &err))
		abort();
	if (signer_load(cfg, &s, &err) == 0) {
		jwks = signer_jwks(s);
		if (!jwks)
			abort();
		free(jwks);
		signer_free(s);
	} else if (err.line <= 0) {
		abort();	/* key errors always name the key's line */
	}
	cfg_free(cfg);
}

/* Input without a PEM header is taken as DER and wrapped in one, so that
 * mutations reach the ASN.1 decoders instead of breaking the base64. */
static void write_input(const uint8_t *data, size_t size)
{
	static const char head[] = "-----BEGIN PRIVATE KEY-----\n";
	static const char tail[] = "\n-----END PRIVATE KEY-----\n";
	unsigned char *b64;
	int n;

	if (ftruncate(input_fd, 0))
		abort();
	if (memmem(data, size, "-----BEGIN", 10) || size > 3000) {
		if (pwrite(input_fd, data, size, 0) != (ssize_t)size)
			abort();
		return;
	}
	b64 = malloc(4 * (size / 3 + 1) + 1);
	if (!b64)
		abort();
	n = EVP_EncodeBlock(b64, data, (int)size);
	if (pwrite(input_fd, head, sizeof(head) - 1, 0) != (ssize_t)sizeof(head) - 1 ||
	    pwrite(input_fd, b64, (size_t)n, sizeof(head) - 1) != n ||
	    pwrite(input_fd, tail, sizeof(tail) - 1, (off_t)(sizeof(head) - 1 + (size_t)n)) !=
		    (ssize_t)sizeof(tail) - 1)
		abort();
	free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char input[64];

	write_input(data, size);
	snprintf(input, sizeof(input), "/proc/self/fd/%d", input_fd);
	try_load(input, NULL);
	try_load(good_key, input);
	return 0;
}
