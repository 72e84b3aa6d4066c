/*
 * Fuzzes the HTTP face whole, libmicrohttpd's parser included: each input
 * is sent as is, over loopback TCP, to a real endpoint (endpoint_start)
 * over a real engine whose STS is a function answering at once
 * (http_set_transport).  Whatever arrives, the daemon must not crash, leak
 * or hang, every answer must be HTTP, and credentials may only come back
 * to an input that carries the role's authorization token or an IMDS
 * session token header.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "endpoint_token.h"
#include "engine.h"
#include "generation.h"
#include "http.h"

#define ANSWER_MAX (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char sts_answer[] =
	"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	"<AssumeRoleWithWebIdentityResult><Credentials>"
	"<SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>"
	"<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
	"<Expiration>2099-01-01T00:00:00Z</Expiration>"
	"<AccessKeyId>ASIAFUZZFUZZFUZZFUZZ</AccessKeyId>"
	"</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";

static struct endpoint_secret *the_secret;
static struct engine *the_engine;
static struct endpoint *the_endpoint;
static int port;
static char token[ENDPOINT_ROLE_TOKEN_LEN + 1];

static int fake_sts(const struct http_request *req, struct http_response *resp,
		    char *errbuf, size_t errlen)
{
	(void)req;
	(void)errbuf;
	(void)errlen;
	resp->status = 200;
	buf_init(&resp->body, HTTP_BODY_MAX);
	return buf_append_str(&resp->body, sts_answer) ? HTTP_ERR_INTERNAL : HTTP_OK;
}

/* A loopback port nobody uses now. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p = 0;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		p = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

/* The configuration: one role reading a token file, IMDS for it. */
static struct generation *make_generation(void)
{
	static const char jwt[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmdXp6In0.c2ln";
	char path[] = "/tmp/credfs-fuzz-token-XXXXXX", text[1024];
	struct cfg_error err;
	struct cfg *cfg = NULL;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, jwt, strlen(jwt)) != (ssize_t)strlen(jwt))
		abort();
	close(fd);
	port = free_port();
	snprintf(text, sizeof(text),
		 "[credfs]\nregion = ap-northeast-1\nsts_endpoint = http://127.0.0.1:1\n"
		 "wait_timeout = 2\n[endpoint]\nlisten = 127.0.0.1:%d\nimds_role = app\n"
		 "[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\n"
		 "web_identity_token_file = %s\n", port, path);
	if (cfg_load_string(text, "fuzz.conf", &cfg, &err))
		abort();
	return generation_new(cfg, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char key[ENDPOINT_SECRET_LEN] = { 42 };
	struct engine_options eo = { 0 };
	struct generation *gen;
	char why[256];

	(void)argc;
	(void)argv;
	if (http_global_init())
		abort();
	http_set_transport(fake_sts);
	the_secret = endpoint_secret_from(key, sizeof(key));
	gen = make_generation();
	if (!the_secret || !gen || !(the_engine = engine_new(gen, &eo)))
		abort();
	the_endpoint = endpoint_start(the_engine, gen, the_secret, NULL, why, sizeof(why));
	generation_unref(gen);
	if (!the_endpoint || endpoint_role_token(the_secret, "app", 0, token)) {
		fprintf(stderr, "fuzz_endpoint_http: %s\n", why);
		abort();
	}
	return 0;
}

/* Sends data, half-closes, and reads what comes back until the daemon
 * closes, or FIRST_MS pass before the first byte, or IDLE_MS after the
 * last (libmicrohttpd does not always notice a half-close at once; what
 * it leaves open, the request deadline cuts). */
#define FIRST_MS 100
#define IDLE_MS 20
static size_t exchange(const uint8_t *data, size_t size, char *out, size_t cap)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct pollfd p = { .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		abort();
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (size && send(fd, data, size, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		abort();
	shutdown(fd, SHUT_WR);
	p.fd = fd;
	while (got < cap && poll(&p, 1, got ? IDLE_MS : FIRST_MS) == 1 &&
	       (n = recv(fd, out + got, cap - got, 0)) > 0)
		got += (size_t)n;
	close(fd);
	return got;
}

/* Whether what (lower case) occurs in data, ignoring case. */
static int has_ci(const uint8_t *data, size_t size, const char *what)
{
	size_t n = strlen(what);

	for (size_t i = 0; i + n <= size; i++) {
		size_t k = 0;

		while (k < n && (data[i + k] | 0x20) == (unsigned char)what[k])
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char answer[ANSWER_MAX + 1];
	size_t n = exchange(data, size, answer, ANSWER_MAX);

	answer[n] = '\0';
	if (n && strncmp(answer, "HTTP/1.", 7))
		abort();
	if (memmem(answer, n, "ASIAFUZZ", 8) &&
	    !memmem(data, size, token, ENDPOINT_ROLE_TOKEN_LEN) &&
	    !has_ci(data, size, "metadata-token"))
		abort();
	return 0;
}
