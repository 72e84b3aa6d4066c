#include "session.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

/* The kernel's message headers (include/uapi/linux/fuse.h), written out
 * here because Debian 12's headers predate FUSE_NOTIFY_RESEND. */
struct k_in_header {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};
struct k_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};
struct k_init_in {
	uint32_t major, minor, max_readahead, flags, flags2, unused[11];
};
_Static_assert(sizeof(struct k_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct k_out_header) == 16, "fuse_out_header");

#define K_OP_INIT 26
#define K_NOTIFY_RESEND 7		/* protocol 7.40, Linux 6.9 */
#define K_HAS_RESEND_FLAGS2 (1u << 7)	/* FUSE_HAS_RESEND >> 32 */
/* Kernel ids are even: an odd one can never be a real request's. */
#define SYNTH_UNIQUE 0x7e57000000000001ULL

#define THREADS_MAX 512
#define IDLE_MAX 8

struct fs_session {
	struct fuse_session *se;
	int fd;
	int stop_fd;			/* eventfd: stop reading */
	atomic_int stopping;
	atomic_int gone;		/* the connection ended */

	struct fs_init_blob init;	/* captured, or to replay */
	int replay;			/* init holds a copy to replay */
	atomic_int synth_pending;	/* the next read returns the copy */
	atomic_int init_answered;	/* the INIT's reply passed writev */
	uint64_t init_unique;
	int resend;
	fs_init_fn on_init;
	void *on_init_arg;
	unsigned long crash_after;
	atomic_ulong reads;

	pthread_mutex_t lock;
	pthread_cond_t done;		/* a thread left */
	unsigned threads, idle;		/* lock */
	int failed;			/* lock */
};

/* ---- custom io ------------------------------------------------------- */

static void capture_init(struct fs_session *s, const void *buf, size_t n)
{
	const struct k_in_header *h = buf;

	if (n < sizeof(*h) || h->opcode != K_OP_INIT || s->init.len)
		return;
	s->init.len = n < FS_INIT_MAX ? n : FS_INIT_MAX;
	memcpy(s->init.bytes, buf, s->init.len);
	s->init_unique = h->unique;
}

/* Reads one request: the INIT copy first when resuming, then from the
 * descriptor, polling it with the stop eventfd.  EINTR when stopping. */
/* libfuse passes its custom io the session's userdata: the credfs. */
static struct fs_session *session_of(void *ud)
{
	return ((struct credfs *)ud)->session;
}

static ssize_t session_read(int fd, void *buf, size_t len, void *ud)
{
	struct fs_session *s = session_of(ud);
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { s->stop_fd, POLLIN, 0 } };

	if (atomic_exchange(&s->synth_pending, 0)) {
		struct k_in_header h;

		if (len < s->init.len) {
			errno = EINVAL;
			return -1;
		}
		memcpy(buf, s->init.bytes, s->init.len);
		memcpy(&h, buf, sizeof(h));
		h.unique = SYNTH_UNIQUE;
		memcpy(buf, &h, sizeof(h));
		s->init_unique = SYNTH_UNIQUE;
		return (ssize_t)s->init.len;
	}
	for (;;) {
		ssize_t n;

		if (atomic_load(&s->stopping)) {
			errno = EINTR;
			return -1;
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (p[1].revents) {
			errno = EINTR;
			return -1;
		}
		if (!p[0].revents)
			continue;
		n = read(fd, buf, len);
		if (n >= 0) {
			if (!s->replay)
				capture_init(s, buf, (size_t)n);
			return n;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;	/* ENODEV: the connection ended */
	}
}

/* Writes a reply; the reply to a replayed INIT goes nowhere. */
static ssize_t session_writev(int fd, struct iovec *iov, int count, void *ud)
{
	struct fs_session *s = session_of(ud);
	struct k_out_header h;

	if (count > 0 && iov[0].iov_len >= sizeof(h)) {
		memcpy(&h, iov[0].iov_base, sizeof(h));
		if (h.unique == s->init_unique && s->init_unique) {
			atomic_store(&s->init_answered, h.error == 0 ? 1 : -1);
			if (h.unique == SYNTH_UNIQUE) {
				ssize_t total = 0;

				for (int i = 0; i < count; i++)
					total += (ssize_t)iov[i].iov_len;
				return total;
			}
		}
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io session_io = {
	.read = session_read,
	.writev = session_writev,
};

/* ---- life ------------------------------------------------------------- */

struct fs_session *fs_session_new(struct credfs *fs, const struct fs_serve_opts *o)
{
	struct fs_session *s = calloc(1, sizeof(*s));
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);

	if (!s)
		goto fail;
	s->fd = o->fd;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->done, NULL);
	s->resend = o->resend;
	s->on_init = o->on_init;
	s->on_init_arg = o->on_init_arg;
	s->crash_after = o->crash_after;
	if (o->resume) {
		s->init = *o->resume;
		s->replay = 1;
	}
	if (s->stop_fd < 0 || fuse_opt_add_arg(&args, "credfs") ||
	    (o->debug && fuse_opt_add_arg(&args, "-d")))
		goto fail_args;
	fs->session = s;
	s->se = fuse_session_new(&args, &credfs_ops, sizeof(credfs_ops), fs);
	fuse_opt_free_args(&args);
	if (!s->se)
		goto fail_session;
	/* From here the session owns the descriptor. */
	if (fuse_session_custom_io(s->se, &session_io, s->fd)) {
		close(s->fd);
		s->fd = -1;
		goto fail_session;
	}
	s->fd = -1;
	return s;
fail_args:
	fuse_opt_free_args(&args);
fail_session:
	fs_session_free(s);
	return NULL;
fail:
	if (o->fd >= 0)
		close(o->fd);
	return NULL;
}

int fs_session_has_resend(const struct fs_session *s)
{
	struct k_init_in in;

	if (s->init.len < sizeof(struct k_in_header) + sizeof(in))
		return 0;
	memcpy(&in, s->init.bytes + sizeof(struct k_in_header), sizeof(in));
	return (in.flags2 & K_HAS_RESEND_FLAGS2) != 0;
}

/* Asks the kernel to queue again what was read and never answered. */
static void ask_resend(struct fs_session *s)
{
	struct k_out_header n = { .len = sizeof(n), .error = K_NOTIFY_RESEND };
	int fd = fuse_session_fd(s->se);

	if (!fs_session_has_resend(s)) {
		log_warn("this kernel cannot resend requests: reads that were in flight when the worker died stay blocked (docs/lifecycle.md)");
		return;
	}
	if (write(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		log_warn("asking the kernel to resend requests failed: error %d", errno);
	else
		log_debug("asked the kernel to resend requests in flight");
}

int fs_session_init(struct fs_session *s)
{
	struct fuse_buf buf = { .mem = NULL };
	int r;

	if (s->replay)
		atomic_store(&s->synth_pending, 1);
	do {
		r = fuse_session_receive_buf(s->se, &buf);
	} while (r == -EINTR || r == -EAGAIN);
	if (r <= 0) {
		free(buf.mem);
		return -1;
	}
	fuse_session_process_buf(s->se, &buf);
	free(buf.mem);
	if (atomic_load(&s->init_answered) != 1) {
		log_error("the FUSE connection could not be %s",
			  s->replay ? "resumed" : "initialised");
		return -1;
	}
	if (!s->replay && s->on_init)
		s->on_init(s->on_init_arg, &s->init);
	if (s->replay && s->resend)
		ask_resend(s);
	return 0;
}

static void *serve_thread(void *arg);

/* Starts another serving thread if none is idle.  With lock. */
static void grow_locked(struct fs_session *s)
{
	pthread_attr_t attr;
	pthread_t tid;

	if (s->idle || s->threads >= THREADS_MAX || atomic_load(&s->stopping))
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, serve_thread, s) == 0) {
		s->threads++;
		s->idle++;
	}
	pthread_attr_destroy(&attr);
}

/* The end of the connection (or an error) stops every thread. */
static void connection_ended(struct fs_session *s, int error)
{
	pthread_mutex_lock(&s->lock);
	if (error)
		s->failed = 1;
	pthread_mutex_unlock(&s->lock);
	if (!error)
		atomic_store(&s->gone, 1);
	fs_session_stop(s);
}

static void *serve_thread(void *arg)
{
	struct fs_session *s = arg;
	struct fuse_buf buf = { .mem = NULL };

	while (!atomic_load(&s->stopping)) {
		int r = fuse_session_receive_buf(s->se, &buf);
		int leave = 0;

		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0) {
			connection_ended(s, r < 0);
			break;
		}
		pthread_mutex_lock(&s->lock);
		s->idle--;
		grow_locked(s);
		pthread_mutex_unlock(&s->lock);
		if (s->crash_after && atomic_fetch_add(&s->reads, 1) + 1 > s->crash_after)
			abort();	/* tests: die holding a request */
		fuse_session_process_buf(s->se, &buf);
		pthread_mutex_lock(&s->lock);
		if (++s->idle > IDLE_MAX) {
			s->idle--;
			leave = 1;
		}
		pthread_mutex_unlock(&s->lock);
		if (leave)
			goto out;
	}
	pthread_mutex_lock(&s->lock);
	s->idle--;
	pthread_mutex_unlock(&s->lock);
out:
	free(buf.mem);
	secret_thread_end();	/* detached: done with OpenSSL */
	pthread_mutex_lock(&s->lock);
	s->threads--;
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int fs_session_serve(struct fs_session *s)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	grow_locked(s);
	while (s->threads)
		pthread_cond_wait(&s->done, &s->lock);
	rc = s->failed ? -1 : atomic_load(&s->gone) ? 1 : 0;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void fs_session_stop(struct fs_session *s)
{
	uint64_t one = 1;

	atomic_store(&s->stopping, 1);
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter is full: everyone has been told already. */
	}
}

struct fuse_session *fs_session_fuse(struct fs_session *s)
{
	return s->se;
}

void fs_session_free(struct fs_session *s)
{
	if (!s)
		return;
	if (s->se)
		fuse_session_destroy(s->se);	/* closes the descriptor */
	else if (s->fd >= 0)
		close(s->fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
