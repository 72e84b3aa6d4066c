/*
 * signbench: the cost of signing one token (signer_sign) with a key file,
 * PEM or TPM-wrapped, as the daemon signs it.
 *
 * usage: signbench [-n SIGNATURES] [-t THREADS] KEY [KEY...]
 *   For each key: load it as [signer] key (a TPM key is loaded into the
 *   TPM once, as credfs check does), then sign SIGNATURES tokens, every
 *   signature timed alone.  With THREADS > 1 the threads sign at once and
 *   share the signatures between them (a signature's time then includes
 *   its wait for the TPM).  Prints one line per key:
 *     KEY alg=ES256 tpm=0|1 n=N threads=N median_us=N p10_us=N p90_us=N
 *         min_us=N max_us=N wall_us_per_signature=N
 *   The TPM is found as credfs finds it (TPM2OPENSSL_TCTI, else the TSS
 *   default).  Tokens are never printed.
 *
 * Exit status: 0, 1 when a key cannot be loaded or a signature fails,
 * 2 on usage.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "signer.h"

#define MAX_SIGNATURES 100000
#define MAX_THREADS 64

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct run {
	struct signer *s;
	int64_t *ns;		/* one per signature */
	int n;
	int next;		/* the next signature to make, under lock */
	int failed;
	char why[384];
	pthread_mutex_t lock;
};

/* Signs until the run's signatures are all made; each timed alone. */
static void *signer_thread(void *p)
{
	struct run *r = p;

	for (;;) {
		char *jwt = NULL, why[384];
		int64_t t0;
		int i, rc;

		pthread_mutex_lock(&r->lock);
		i = r->next < r->n && !r->failed ? r->next++ : -1;
		pthread_mutex_unlock(&r->lock);
		if (i < 0)
			return NULL;
		t0 = now_ns();
		rc = signer_sign(r->s, "system:serviceaccount:bench:sign", NULL,
				 (int64_t)time(NULL), &jwt, why, sizeof(why));
		r->ns[i] = now_ns() - t0;
		secret_free(jwt);
		if (rc) {
			pthread_mutex_lock(&r->lock);
			r->failed = 1;
			snprintf(r->why, sizeof(r->why), "%s", why);
			pthread_mutex_unlock(&r->lock);
		}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Loads path as the current key of a minimal [signer]; NULL on error
 * (printed). */
static struct signer *load(const char *path)
{
	struct cfg cfg = { 0 };
	struct cfg_error err;
	struct signer *s = NULL;

	cfg.path = (char *)"signbench";
	cfg.signer.present = 1;
	cfg.signer.key = (char *)path;
	cfg.signer.issuer = (char *)"https://oidc.example.com";
	cfg.signer.audience = (char *)"sts.amazonaws.com";
	cfg.signer.token_lifetime = 3600;
	cfg.signer.clock_skew = 30;
	if (signer_load(&cfg, &s, &err)) {
		fprintf(stderr, "signbench: %s\n", err.text);
		return NULL;
	}
	return s;
}

/* Measures one key; 0, or 1 on failure (printed). */
static int measure(const char *path, int n, int threads)
{
	pthread_t th[MAX_THREADS];
	struct run r = { .n = n, .lock = PTHREAD_MUTEX_INITIALIZER };
	int started = 0;
	int64_t wall;

	r.s = load(path);
	if (!r.s)
		return 1;
	r.ns = calloc((size_t)n, sizeof(*r.ns));
	if (!r.ns) {
		signer_free(r.s);
		return 1;
	}
	wall = now_ns();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, signer_thread, &r) == 0)
			started++;
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	wall = now_ns() - wall;
	if (r.failed || !started) {
		fprintf(stderr, "signbench: signing with %s failed: %s\n", path,
			started ? r.why : "no thread");
		free(r.ns);
		signer_free(r.s);
		return 1;
	}
	qsort(r.ns, (size_t)n, sizeof(*r.ns), cmp_i64);
	printf("%s alg=%s tpm=%d n=%d threads=%d median_us=%lld p10_us=%lld p90_us=%lld "
	       "min_us=%lld max_us=%lld wall_us_per_signature=%lld\n",
	       path, signer_alg(r.s), signer_uses_tpm(r.s), n, threads,
	       (long long)(r.ns[n / 2] / 1000), (long long)(r.ns[n / 10] / 1000),
	       (long long)(r.ns[n * 9 / 10] / 1000), (long long)(r.ns[0] / 1000),
	       (long long)(r.ns[n - 1] / 1000), (long long)(wall / n / 1000));
	fflush(stdout);
	free(r.ns);
	signer_free(r.s);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 101, threads = 1, opt, rc = 0;

	while ((opt = getopt(argc, argv, "n:t:")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (optind >= argc || n < 1 || n > MAX_SIGNATURES || threads < 1 ||
	    threads > MAX_THREADS)
		goto usage;
	for (int i = optind; i < argc; i++)
		rc |= measure(argv[i], n, threads);
	return rc;
usage:
	fprintf(stderr, "usage: signbench [-n SIGNATURES] [-t THREADS] KEY [KEY...]\n");
	return 2;
}
