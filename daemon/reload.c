#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct reloader {
	const char *config_path;
	struct engine *engine;
	struct engine_face faces[ENGINE_FACES_MAX];
	size_t n_faces;
	void (*after)(void *arg, int snapshot);
	void *after_arg;
	void (*done)(void *arg, unsigned long asked);
	atomic_ulong asked;		/* the last reload_ask number */
	pthread_t thread;
};

static int hup_pipe[2] = { -1, -1 };

/* Async-signal-safe: only a write to the pipe the reload thread reads. */
static void on_sighup(int sig)
{
	int saved = errno;
	char c = 'h';

	(void)sig;
	if (write(hup_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a reload is pending anyway. */
	}
	errno = saved;
}

int reload_now(struct reloader *rl)
{
	struct cfg_error err;
	struct generation *gen;
	char msg[sizeof(err.file) + CFG_ERROR_TEXT_MAX + 32];
	int snapshot;

	if (generation_load_snapshot(rl->config_path, &gen, &snapshot, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		log_error("reload refused, the configuration in force is unchanged: %s",
			  msg);
		return -1;
	}
	if (engine_reload_faces(rl->engine, gen, rl->faces, rl->n_faces)) {
		/* Each part said why. */
		generation_unref(gen);
		close(snapshot);
		return -1;
	}
	log_info("reloaded %s: %zu role%s", rl->config_path, gen->cfg->n_roles,
		 gen->cfg->n_roles == 1 ? "" : "s");
	generation_unref(gen);
	if (rl->after)
		rl->after(rl->after_arg, snapshot);
	close(snapshot);
	return 0;
}

/* One reload per wake-up, however many signals arrived meanwhile: the
 * pipe is drained before reloading. */
static void *reload_main(void *arg)
{
	struct reloader *rl = arg;
	unsigned long asked;
	char buf[256];
	ssize_t n;

	while ((n = read(hup_pipe[0], buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (memchr(buf, 'q', (size_t)n))
			break;
		fcntl(hup_pipe[0], F_SETFL, O_NONBLOCK);
		while ((n = read(hup_pipe[0], buf, sizeof(buf))) > 0)
			if (memchr(buf, 'q', (size_t)n))
				return NULL;
		fcntl(hup_pipe[0], F_SETFL, 0);
		asked = atomic_load(&rl->asked);
		reload_now(rl);
		if (asked && rl->done)
			rl->done(rl->after_arg, asked);
	}
	return NULL;
}

void reload_ask(struct reloader *rl, unsigned long number)
{
	char c = 'h';

	atomic_store(&rl->asked, number);
	if (write(hup_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a reload is pending anyway. */
	}
}

struct reloader *reloader_start(const char *config_path, struct engine *e,
				const struct reload_hooks *hooks)
{
	struct reloader *rl = calloc(1, sizeof(*rl));
	struct sigaction sa;
	sigset_t hup;

	if (!rl || hooks->n_faces > ENGINE_FACES_MAX || pipe2(hup_pipe, O_CLOEXEC)) {
		free(rl);
		return NULL;
	}
	fcntl(hup_pipe[1], F_SETFL, O_NONBLOCK);
	rl->config_path = config_path;
	rl->engine = e;
	memcpy(rl->faces, hooks->faces, hooks->n_faces * sizeof(rl->faces[0]));
	rl->n_faces = hooks->n_faces;
	rl->after = hooks->after;
	rl->after_arg = hooks->after_arg;
	rl->done = hooks->done;
	if (pthread_create(&rl->thread, NULL, reload_main, rl)) {
		close(hup_pipe[0]);
		close(hup_pipe[1]);
		free(rl);
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	/* A SIGHUP that came while the worker started was held: it is
	 * taken now, on this thread. */
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_UNBLOCK, &hup, NULL);
	return rl;
}

void reloader_stop(struct reloader *rl)
{
	struct sigaction sa;
	char q = 'q';

	if (!rl)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	while (write(hup_pipe[1], &q, 1) < 0 && errno == EAGAIN)
		usleep(1000);
	pthread_join(rl->thread, NULL);
	close(hup_pipe[0]);
	close(hup_pipe[1]);
	free(rl);
}
