/*
 * readloop: the cost of a warm read of a file, as a consumer does it
 * (open + read to EOF + close), measured in rounds so a noisy machine
 * gives a usable median.
 *
 * usage: readloop [-r ROUNDS] [-n READS] PATH [PATH...]
 * Paths are measured interleaved, round by round; for each it prints the
 * median nanoseconds per read over the rounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATHS 8

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One round: n full reads of path.  Returns ns per read, or -1. */
static double round_of(const char *path, int n)
{
	char buf[65536];
	double t0 = now_ns();

	for (int i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		ssize_t r;

		if (fd < 0)
			return -1;
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			;
		close(fd);
		if (r < 0)
			return -1;
	}
	return (now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	int rounds = 21, n = 2000, opt, npaths;
	double *samples[MAX_PATHS];

	while ((opt = getopt(argc, argv, "r:n:")) != -1) {
		if (opt == 'r')
			rounds = atoi(optarg);
		else if (opt == 'n')
			n = atoi(optarg);
		else
			return 2;
	}
	npaths = argc - optind;
	if (npaths < 1 || npaths > MAX_PATHS || rounds < 1 || n < 1) {
		fprintf(stderr, "usage: readloop [-r ROUNDS] [-n READS] PATH...\n");
		return 2;
	}
	for (int p = 0; p < npaths; p++) {
		samples[p] = calloc((size_t)rounds, sizeof(double));
		if (!samples[p] || round_of(argv[optind + p], 10) < 0) {
			fprintf(stderr, "readloop: %s: %s\n", argv[optind + p], strerror(errno));
			return 1;
		}
	}
	for (int r = 0; r < rounds; r++)
		for (int p = 0; p < npaths; p++)
			samples[p][r] = round_of(argv[optind + p], n);
	for (int p = 0; p < npaths; p++) {
		qsort(samples[p], (size_t)rounds, sizeof(double), cmp_double);
		printf("%s %.0f\n", argv[optind + p], samples[p][rounds / 2]);
		free(samples[p]);
	}
	return 0;
}
