/*
 * The benchmark's reference for the HTTP face (scripts/bench, figure 8):
 * the same bytes credfs answers, served as a static buffer by the same
 * library in the same threading model (one epoll thread, the same memory
 * per connection), so the ratio shows what credfs adds: routing, the token
 * check, the engine and a response built per request.
 * usage: staticserve PORT FILE    serves FILE's content at every path
 *                                 on 127.0.0.1:PORT until killed
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *answer;

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version,
			     const char *upload_data, size_t *upload_data_size,
			     void **req_cls)
{
	(void)cls; (void)url; (void)method; (void)version; (void)upload_data;
	(void)upload_data_size;
	if (!*req_cls) {
		*req_cls = (void *)1;
		return MHD_YES;
	}
	return MHD_queue_response(c, MHD_HTTP_OK, answer);
}

int main(int argc, char **argv)
{
	static char body[65536];
	struct MHD_Daemon *d;
	size_t n;
	FILE *f;
	struct sockaddr_in sin;
	sigset_t set;
	int sig;

	if (argc != 3 || !(f = fopen(argv[2], "rb"))) {
		fprintf(stderr, "usage: staticserve PORT FILE\n");
		return 2;
	}
	n = fread(body, 1, sizeof(body), f);
	fclose(f);
	answer = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_PERSISTENT);
	if (!answer ||
	    MHD_add_response_header(answer, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME,
			     0, NULL, NULL, serve, NULL,
			     MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&sin,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
			     MHD_OPTION_END);
	if (!d)
		return 1;
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	MHD_destroy_response(answer);
	return 0;
}
