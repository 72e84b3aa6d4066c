/*
 * readloop: the cost of a read of a file, as a consumer does it
 * (open + read to EOF + close).
 *
 * usage: readloop [-r ROUNDS] [-n READS] PATH [PATH...]
 *   Cost mode.  Paths are measured interleaved, round by round (ROUNDS
 *   rounds of READS reads of each path), so a noisy machine gives a usable
 *   median.  Prints one line per path: "PATH MEDIAN_NS" (nanoseconds per
 *   read, median over the rounds).
 *
 * usage: readloop -d SECONDS [-t THREADS] [-s SLOW_MS] [-v] PATH [PATH...]
 *   Latency mode.  THREADS threads read for SECONDS seconds; each thread
 *   reads the paths in turn, over and over, and times every read alone.
 *   Prints one line per path:
 *     PATH reads=N errors=N versions=N p50_ns=N p99_ns=N p999_ns=N
 *          max_ns=N slow=N
 *   errors counts failed opens or reads and empty documents; versions the
 *   distinct contents seen (a renewal makes a new one); slow the reads that
 *   took longer than SLOW_MS milliseconds (default 50).  Percentiles have
 *   a resolution of 1 us below 4 ms, 64 us below 266 ms and 4 ms above
 *   (they are bucket floors); max is exact.  With -v, then one line per
 *   slow read (the first MAX_SLOW_LOG of each thread):
 *     slow PATH START_NS DURATION_NS
 *   START_NS on CLOCK_MONOTONIC, as Python's time.monotonic() reads it.
 *
 * Exit status: 0, 1 when a path cannot be read at the start, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATHS 8
#define MAX_THREADS 256
#define MAX_VERSIONS 4096
#define MAX_SLOW_LOG 256

/* Latency histogram: 1 us buckets up to 4 ms, 64 us buckets up to about
 * 266 ms, 4 ms buckets up to about 16.6 s, then one overflow bucket. */
#define FINE_US 4096
#define MID_US 64
#define MID_BUCKETS 4096
#define MID_END_US (FINE_US + MID_BUCKETS * MID_US)
#define COARSE_US 4096
#define COARSE_BUCKETS 4096
#define N_BUCKETS (FINE_US + MID_BUCKETS + COARSE_BUCKETS + 1)

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One full read of path into buf.  Returns the bytes read, or -1 with
 * errno set. */
static ssize_t read_whole(const char *path, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf + got, size - got)) > 0) {
		got += (size_t)r;
		if (got == size)
			break;
	}
	close(fd);
	return r < 0 ? -1 : (ssize_t)got;
}

/* One round: n full reads of path.  Returns ns per read, or -1. */
static double round_of(const char *path, int n)
{
	char buf[65536];
	int64_t t0 = now_ns();

	for (int i = 0; i < n; i++)
		if (read_whole(path, buf, sizeof(buf)) < 0)
			return -1;
	return (double)(now_ns() - t0) / n;
}

static int cost_mode(int rounds, int n, int npaths, char **paths)
{
	double *samples[MAX_PATHS] = {0};
	int ret = 1;

	for (int p = 0; p < npaths; p++) {
		samples[p] = calloc((size_t)rounds, sizeof(double));
		if (!samples[p])
			goto out;
		/* Warms the caches; also fails early on a bad path. */
		if (round_of(paths[p], 10) < 0) {
			fprintf(stderr, "readloop: %s: %s\n", paths[p], strerror(errno));
			goto out;
		}
	}
	for (int r = 0; r < rounds; r++)
		for (int p = 0; p < npaths; p++)
			samples[p][r] = round_of(paths[p], n);
	for (int p = 0; p < npaths; p++) {
		for (int r = 0; r < rounds; r++) {
			if (samples[p][r] < 0) {
				fprintf(stderr, "readloop: %s: a read failed\n", paths[p]);
				goto out;
			}
		}
		qsort(samples[p], (size_t)rounds, sizeof(double), cmp_double);
		printf("%s %.0f\n", paths[p], samples[p][rounds / 2]);
	}
	ret = 0;
out:
	for (int p = 0; p < npaths; p++)
		free(samples[p]);
	return ret;
}

/* What the threads of latency mode share. */
struct shared {
	char **paths;
	int npaths;
	int64_t stop_at;		/* monotonic ns */
	int64_t slow_ns;

	pthread_mutex_t lock;
	/* Protected by lock: distinct content hashes seen per path. */
	uint64_t versions[MAX_PATHS][MAX_VERSIONS];
	int n_versions[MAX_PATHS];
};

/* One thread's findings for one path. */
struct tally {
	uint64_t hist[N_BUCKETS];
	uint64_t reads, errors, slow;
	int64_t max_ns;
	int64_t slow_start[MAX_SLOW_LOG], slow_dur[MAX_SLOW_LOG];
	int n_slow_log;
};

struct worker {
	pthread_t thread;
	struct shared *sh;
	struct tally *tallies;		/* one per path */
};

static size_t bucket_of(int64_t ns)
{
	int64_t us = ns / 1000;

	if (us < FINE_US)
		return (size_t)us;
	if (us < MID_END_US)
		return (size_t)(FINE_US + (us - FINE_US) / MID_US);
	us = (us - MID_END_US) / COARSE_US;
	return us < COARSE_BUCKETS ? (size_t)(FINE_US + MID_BUCKETS + us) :
				     N_BUCKETS - 1;
}

/* The lower bound of bucket b, in ns. */
static int64_t bucket_floor_ns(size_t b)
{
	if (b < FINE_US)
		return (int64_t)b * 1000;
	if (b < FINE_US + MID_BUCKETS)
		return ((int64_t)FINE_US + (int64_t)(b - FINE_US) * MID_US) * 1000;
	b -= FINE_US + MID_BUCKETS;
	return ((int64_t)MID_END_US + (int64_t)b * COARSE_US) * 1000;
}

/* FNV-1a over the document. */
static uint64_t content_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void note_version(struct shared *sh, int p, uint64_t h)
{
	pthread_mutex_lock(&sh->lock);
	for (int i = 0; i < sh->n_versions[p]; i++) {
		if (sh->versions[p][i] == h)
			goto out;
	}
	if (sh->n_versions[p] < MAX_VERSIONS)
		sh->versions[p][sh->n_versions[p]++] = h;
out:
	pthread_mutex_unlock(&sh->lock);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint64_t last[MAX_PATHS] = {0};
	char buf[65536];

	/* Touch the histograms now, not on a timed read's first fault. */
	for (int p = 0; p < sh->npaths; p++)
		memset(w->tallies[p].hist, 0, sizeof(w->tallies[p].hist));
	while (now_ns() < sh->stop_at) {
		for (int p = 0; p < sh->npaths; p++) {
			struct tally *t = &w->tallies[p];
			int64_t t0 = now_ns(), dt;
			ssize_t n = read_whole(sh->paths[p], buf, sizeof(buf));
			uint64_t h;

			dt = now_ns() - t0;
			t->reads++;
			t->hist[bucket_of(dt)]++;
			if (dt > t->max_ns)
				t->max_ns = dt;
			if (dt > sh->slow_ns) {
				if (t->n_slow_log < MAX_SLOW_LOG) {
					t->slow_start[t->n_slow_log] = t0;
					t->slow_dur[t->n_slow_log++] = dt;
				}
				t->slow++;
			}
			if (n <= 0) {
				t->errors++;
				continue;
			}
			h = content_hash(buf, (size_t)n);
			if (h != last[p]) {
				last[p] = h;
				note_version(sh, p, h);
			}
		}
	}
	return NULL;
}

/* The smallest bucket floor below which at least q of the reads fall. */
static int64_t percentile_ns(const uint64_t *hist, uint64_t total, double q)
{
	uint64_t want = (uint64_t)((double)total * q), seen = 0;

	if (want == 0)
		want = 1;
	for (size_t b = 0; b < N_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= want)
			return bucket_floor_ns(b);
	}
	return bucket_floor_ns(N_BUCKETS - 1);
}

static int latency_mode(double seconds, int threads, double slow_ms,
			int verbose, int npaths, char **paths)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	struct tally *sum = calloc((size_t)npaths, sizeof(*sum));
	char buf[65536];
	int started = 0, ret = 1;

	if (!sh || !w || !sum)
		goto out;
	for (int p = 0; p < npaths; p++) {
		if (read_whole(paths[p], buf, sizeof(buf)) < 0) {
			fprintf(stderr, "readloop: %s: %s\n", paths[p], strerror(errno));
			goto out;
		}
	}
	sh->paths = paths;
	sh->npaths = npaths;
	sh->slow_ns = (int64_t)(slow_ms * 1e6);
	sh->stop_at = now_ns() + (int64_t)(seconds * 1e9);
	pthread_mutex_init(&sh->lock, NULL);
	for (; started < threads; started++) {
		w[started].sh = sh;
		w[started].tallies = calloc((size_t)npaths, sizeof(struct tally));
		if (!w[started].tallies ||
		    pthread_create(&w[started].thread, NULL, worker_main, &w[started])) {
			free(w[started].tallies);
			fprintf(stderr, "readloop: cannot start thread %d\n", started);
			sh->stop_at = 0;
			break;
		}
	}
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		for (int p = 0; p < npaths; p++) {
			struct tally *t = &w[i].tallies[p];

			for (size_t b = 0; b < N_BUCKETS; b++)
				sum[p].hist[b] += t->hist[b];
			sum[p].reads += t->reads;
			sum[p].errors += t->errors;
			sum[p].slow += t->slow;
			if (t->max_ns > sum[p].max_ns)
				sum[p].max_ns = t->max_ns;
			for (int k = 0; verbose && k < t->n_slow_log; k++)
				printf("slow %s %lld %lld\n", paths[p],
				       (long long)t->slow_start[k],
				       (long long)t->slow_dur[k]);
		}
		free(w[i].tallies);
	}
	pthread_mutex_destroy(&sh->lock);
	if (started < threads)
		goto out;
	for (int p = 0; p < npaths; p++) {
		struct tally *t = &sum[p];

		printf("%s reads=%llu errors=%llu versions=%d p50_ns=%lld "
		       "p99_ns=%lld p999_ns=%lld max_ns=%lld slow=%llu\n",
		       paths[p], (unsigned long long)t->reads,
		       (unsigned long long)t->errors, sh->n_versions[p],
		       (long long)percentile_ns(t->hist, t->reads, 0.50),
		       (long long)percentile_ns(t->hist, t->reads, 0.99),
		       (long long)percentile_ns(t->hist, t->reads, 0.999),
		       (long long)t->max_ns, (unsigned long long)t->slow);
	}
	ret = 0;
out:
	free(sum);
	free(w);
	free(sh);
	return ret;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: readloop [-r ROUNDS] [-n READS] PATH...\n"
		"       readloop -d SECONDS [-t THREADS] [-s SLOW_MS] [-v] PATH...\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rounds = 21, n = 2000, threads = 1, verbose = 0, opt, npaths;
	double seconds = 0, slow_ms = 50;

	while ((opt = getopt(argc, argv, "r:n:d:t:s:v")) != -1) {
		switch (opt) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 's':
			slow_ms = atof(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			return usage();
		}
	}
	npaths = argc - optind;
	if (npaths < 1 || npaths > MAX_PATHS || rounds < 1 || n < 1 ||
	    threads < 1 || threads > MAX_THREADS || seconds < 0 || slow_ms <= 0)
		return usage();
	if (seconds > 0)
		return latency_mode(seconds, threads, slow_ms, verbose, npaths,
				    argv + optind);
	return cost_mode(rounds, n, npaths, argv + optind);
}
