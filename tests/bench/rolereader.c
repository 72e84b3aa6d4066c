/*
 * rolereader: consumers that keep many roles in use, as a fleet's tools
 * do, and check what they are served.
 *
 * usage: rolereader -d SECONDS [-t THREADS] [-p PERIOD_MS] [-s SLOW_MS] [-1]
 *                   [-l LISTFILE | ROLEDIR...]
 *   THREADS threads (default 4) share the role directories (one per line
 *   of LISTFILE, or the arguments): thread k reads every THREADS-th one.
 *   Each thread reads its roles in turn, spread evenly over PERIOD_MS
 *   (default 1000), so every role is read once per period; a read that
 *   blocks delays the thread, which then catches up without sleeping.
 *   A read is open + read to EOF + close of ROLEDIR/process.json, timed
 *   alone, its "Expiration" compared with the wall clock at the end of
 *   the read.  With -1 each thread reads its roles once, all threads
 *   starting together, and the run ends when they are done (or after
 *   SECONDS).
 *
 * Prints, after SECONDS (or SIGTERM / SIGINT), on standard output:
 *   error ROLEDIR START_NS END_NS ERRNO     a failed open or read, or a
 *                                           document without Expiration
 *                                           (ERRNO 0)
 *   expired ROLEDIR START_NS END_NS         credentials served expired
 *   slow ROLEDIR START_NS END_NS            a read longer than SLOW_MS
 *                                           (default 20)
 *   role ROLEDIR reads=N errors=N expired=N versions=N first_ok_ns=N
 *   total reads=N errors=N expired=N slow=N lost=N
 * Times are on CLOCK_MONOTONIC, as Python's time.monotonic() reads them;
 * first_ok_ns is 0 when no read of the role ever succeeded.  At most
 * EVENTS_MAX events are kept per thread; lost counts the rest.
 * Exit status: 0; 2 on usage, when out of memory, or when a thread
 * cannot be started.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_MAX 262144
#define DOC_MAX 65536

enum event_kind { EV_ERROR, EV_EXPIRED, EV_SLOW };

struct event {
	enum event_kind kind;
	int role;
	int err;
	int64_t start, end;
};

struct role_tally {
	const char *dir;
	char path[4096];
	uint64_t reads, errors, expired, versions, last_hash;
	int64_t first_ok;
};

struct worker {
	pthread_t thread;
	int index;
	struct event *events;		/* grown as needed, up to EVENTS_MAX */
	size_t n_events, cap_events;
	uint64_t lost;
};

static struct role_tally *roles;
static int n_roles, n_threads = 4, once;
static pthread_barrier_t start_line;
static int64_t period_ns = 1000000000, slow_ns = 20000000, stop_at;
static volatile sig_atomic_t stopping;

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps until at, or until the end of the run if that comes first. */
static void sleep_until(int64_t at)
{
	struct timespec ts;

	if (at > stop_at)
		at = stop_at;
	ts.tv_sec = at / 1000000000;
	ts.tv_nsec = at % 1000000000;

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
	       !stopping)
		;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The "Expiration" of a process.json document as Unix seconds, or -1. */
static int64_t expiration_of(const char *doc)
{
	const char *p = strstr(doc, "\"Expiration\"");
	int y, mo, d, h, mi, s;

	if (!p || !(p = strchr(p + 12, '"')))
		return -1;
	if (sscanf(p + 1, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6)
		return -1;
	return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static uint64_t content_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* One full read of path into buf (NUL-terminated).  The bytes read, or
 * -1 with errno set. */
static ssize_t read_whole(const char *path, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf + got, size - 1 - got)) > 0) {
		got += (size_t)r;
		if (got == size - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	return r < 0 ? -1 : (ssize_t)got;
}

static void note(struct worker *w, enum event_kind k, int role, int err,
		 int64_t start, int64_t end)
{
	if (w->n_events == w->cap_events) {
		size_t cap = w->cap_events ? w->cap_events * 2 : 64;
		struct event *grown = cap <= EVENTS_MAX ?
			realloc(w->events, cap * sizeof(*grown)) : NULL;

		if (!grown) {
			w->lost++;
			return;
		}
		w->events = grown;
		w->cap_events = cap;
	}
	w->events[w->n_events++] = (struct event){ k, role, err, start, end };
}

/* Reads role i once and records what it was served.  Only this thread
 * touches roles[i]. */
static void read_role(struct worker *w, int i, char *buf)
{
	struct role_tally *r = &roles[i];
	int64_t t0 = clock_ns(CLOCK_MONOTONIC), t1, exp;
	ssize_t n = read_whole(r->path, buf, DOC_MAX);
	int err = n < 0 ? errno : 0;
	uint64_t h;

	t1 = clock_ns(CLOCK_MONOTONIC);
	r->reads++;
	if (t1 - t0 > slow_ns)
		note(w, EV_SLOW, i, 0, t0, t1);
	exp = n > 0 ? expiration_of(buf) : -1;
	if (exp < 0) {
		r->errors++;
		note(w, EV_ERROR, i, err, t0, t1);
		return;
	}
	if (exp * 1000000000 <= clock_ns(CLOCK_REALTIME)) {
		r->expired++;
		note(w, EV_EXPIRED, i, 0, t0, t1);
		return;
	}
	if (!r->first_ok)
		r->first_ok = t1;
	h = content_hash(buf, (size_t)n);
	if (h != r->last_hash) {
		r->last_hash = h;
		r->versions++;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int mine = 0;
	int64_t t0 = clock_ns(CLOCK_MONOTONIC), step;
	char *buf = malloc(DOC_MAX);

	if (!buf)
		return NULL;
	for (int i = w->index; i < n_roles; i += n_threads)
		mine++;
	if (!mine) {
		free(buf);
		return NULL;
	}
	step = period_ns / mine;
	if (once) {
		pthread_barrier_wait(&start_line);
		for (int k = 0; k < mine && !stopping &&
				clock_ns(CLOCK_MONOTONIC) < stop_at; k++)
			read_role(w, w->index + k * n_threads, buf);
		free(buf);
		return NULL;
	}
	for (int64_t k = 0; !stopping; k++) {
		int i = w->index + (int)(k % mine) * n_threads;

		if (clock_ns(CLOCK_MONOTONIC) >= stop_at)
			break;
		sleep_until(t0 + k * step);
		if (stopping || clock_ns(CLOCK_MONOTONIC) >= stop_at)
			break;
		read_role(w, i, buf);
	}
	free(buf);
	return NULL;
}

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Reads the role directories of listfile (one per line).  0 or -1. */
static int load_list(const char *listfile, char ***out, int *n)
{
	FILE *f = fopen(listfile, "r");
	char line[4096], **v = NULL;
	int cap = 0;

	*n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (*n == cap) {
			char **grown;

			cap = cap ? cap * 2 : 1024;
			grown = realloc(v, (size_t)cap * sizeof(*v));
			if (!grown)
				goto fail;
			v = grown;
		}
		if (!(v[*n] = strdup(line)))
			goto fail;
		(*n)++;
	}
	fclose(f);
	*out = v;
	return 0;
fail:
	fclose(f);
	while (*n > 0)
		free(v[--*n]);
	free(v);
	return -1;
}

static void print_results(struct worker *w)
{
	uint64_t reads = 0, errors = 0, expired = 0, slow = 0, lost = 0;
	static const char *const names[] = { "error", "expired", "slow" };

	for (int t = 0; t < n_threads; t++) {
		for (size_t k = 0; k < w[t].n_events; k++) {
			const struct event *e = &w[t].events[k];

			slow += e->kind == EV_SLOW;
			printf("%s %s %lld %lld", names[e->kind], roles[e->role].dir,
			       (long long)e->start, (long long)e->end);
			if (e->kind == EV_ERROR)
				printf(" %d", e->err);
			putchar('\n');
		}
		lost += w[t].lost;
	}
	for (int i = 0; i < n_roles; i++) {
		const struct role_tally *r = &roles[i];

		printf("role %s reads=%llu errors=%llu expired=%llu versions=%llu first_ok_ns=%lld\n",
		       r->dir, (unsigned long long)r->reads,
		       (unsigned long long)r->errors,
		       (unsigned long long)r->expired,
		       (unsigned long long)r->versions, (long long)r->first_ok);
		reads += r->reads;
		errors += r->errors;
		expired += r->expired;
	}
	printf("total reads=%llu errors=%llu expired=%llu slow=%llu lost=%llu\n",
	       (unsigned long long)reads, (unsigned long long)errors,
	       (unsigned long long)expired, (unsigned long long)slow,
	       (unsigned long long)lost);
}

static int usage(void)
{
	fprintf(stderr, "usage: rolereader -d SECONDS [-t THREADS] [-p PERIOD_MS] "
		"[-s SLOW_MS] [-1] [-l LISTFILE | ROLEDIR...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *listfile = NULL;
	double seconds = 0;
	char **dirs;
	struct worker *w;
	struct sigaction sa;
	int opt;

	while ((opt = getopt(argc, argv, "d:t:p:s:l:1")) != -1) {
		switch (opt) {
		case 'd':
			seconds = atof(optarg);
			break;
		case 't':
			n_threads = atoi(optarg);
			break;
		case 'p':
			period_ns = (int64_t)(atof(optarg) * 1e6);
			break;
		case 's':
			slow_ns = (int64_t)(atof(optarg) * 1e6);
			break;
		case 'l':
			listfile = optarg;
			break;
		case '1':
			once = 1;
			break;
		default:
			return usage();
		}
	}
	if (seconds <= 0 || n_threads < 1 || n_threads > 1024 || period_ns <= 0 ||
	    slow_ns <= 0)
		return usage();
	if (listfile) {
		if (load_list(listfile, &dirs, &n_roles)) {
			fprintf(stderr, "rolereader: %s: %s\n", listfile, strerror(errno));
			return 2;
		}
	} else {
		dirs = argv + optind;
		n_roles = argc - optind;
	}
	if (n_roles < 1)
		return usage();
	if (n_threads > n_roles)
		n_threads = n_roles;	/* every thread has a role to read */
	roles = calloc((size_t)n_roles, sizeof(*roles));
	w = calloc((size_t)n_threads, sizeof(*w));
	if (!roles || !w)
		return 2;
	for (int i = 0; i < n_roles; i++) {
		roles[i].dir = dirs[i];
		snprintf(roles[i].path, sizeof(roles[i].path), "%s/process.json", dirs[i]);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	stop_at = clock_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);
	pthread_barrier_init(&start_line, NULL, (unsigned)n_threads);
	for (int t = 0; t < n_threads; t++) {
		w[t].index = t;
		if (pthread_create(&w[t].thread, NULL, worker_main, &w[t])) {
			fprintf(stderr, "rolereader: cannot start thread %d\n", t);
			return 2;
		}
	}
	for (int t = 0; t < n_threads; t++)
		pthread_join(w[t].thread, NULL);
	print_results(w);
	fflush(stdout);
	for (int t = 0; t < n_threads; t++)
		free(w[t].events);
	free(w);
	free(roles);
	if (listfile) {
		for (int i = 0; i < n_roles; i++)
			free(dirs[i]);
		free(dirs);
	}
	pthread_barrier_destroy(&start_line);
	return 0;
}
