/*
 * The [endpoint] section: credentials over HTTP (docs/configuration.md,
 * docs/endpoint.md).  Not to be confused with endpoints.c, the table of STS
 * endpoints.
 *
 * Credentials are served over plain HTTP, so an address to listen on must
 * be one that no other host can reach, or one of the link-local metadata
 * addresses that the AWS SDKs accept over plain HTTP (the container
 * credentials and instance metadata services); nothing else.
 */
#include "cfg_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The link-local addresses of the AWS container credentials service
 * (ECS, EKS Pod Identity) and instance metadata service (IMDS). */
static const char *const metadata_addresses[] = {
	"169.254.170.2", "169.254.170.23", "169.254.169.254",
	"fd00:ec2::23", "fd00:ec2::254",
};

#define LISTEN_EXAMPLE "an address:port such as 127.0.0.1:9911 or [::1]:9911"

/* Whether addr (of family) may serve credentials over plain HTTP. */
static bool listen_allowed(int family, const unsigned char *addr)
{
	unsigned char known[16];

	if (family == AF_INET && addr[0] == 127)
		return true;
	if (family == AF_INET6 && !memcmp(addr, &in6addr_loopback, 16))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(metadata_addresses); i++)
		if (inet_pton(family, metadata_addresses[i], known) == 1 &&
		    !memcmp(addr, known, family == AF_INET ? 4 : 16))
			return true;
	return false;
}

/* Splits "A.B.C.D:PORT" or "[V6]:PORT" into host (copied, at most len - 1
 * characters) and the port's text.  0, or -1 if it has neither shape. */
static int split_host_port(const char *item, char *host, size_t len,
			   int *family, const char **port)
{
	const char *end;

	if (item[0] == '[') {
		end = strchr(item, ']');
		if (!end || end[1] != ':')
			return -1;
		item++;
		*family = AF_INET6;
		*port = end + 2;
	} else {
		end = strrchr(item, ':');
		if (!end || memchr(item, ':', (size_t)(end - item)))
			return -1;
		*family = AF_INET;
		*port = end + 1;
	}
	if (end == item || (size_t)(end - item) >= len)
		return -1;
	memcpy(host, item, (size_t)(end - item));
	host[end - item] = '\0';
	return 0;
}

int cfg_listen_parse(const char *item, struct cfg_listen *out, char *msg,
		     size_t len)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];
	const char *port;
	int family;
	long n;

	memset(out, 0, sizeof(*out));
	if (strlen(item) >= sizeof(out->text) ||
	    split_host_port(item, host, sizeof(host), &family, &port) ||
	    inet_pton(family, host, addr) != 1) {
		snprintf(msg, len, "\"%s\" is not %s", item, LISTEN_EXAMPLE);
		return -1;
	}
	n = *port && strlen(port) <= 5 &&
			    strspn(port, "0123456789") == strlen(port) ?
		    strtol(port, NULL, 10) : 0;
	if (n < 1 || n > 65535) {
		snprintf(msg, len, "the port of \"%s\" must be from 1 to 65535",
			 item);
		return -1;
	}
	if (!listen_allowed(family, addr)) {
		snprintf(msg, len,
			 "\"%s\": credentials are served over plain HTTP, so only on loopback (127.0.0.0/8, ::1) or on an AWS metadata address (169.254.170.2, 169.254.170.23, 169.254.169.254, fd00:ec2::23, fd00:ec2::254)",
			 item);
		return -1;
	}
	snprintf(out->text, sizeof(out->text), "%s", item);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)n);
		memcpy(&sin->sin_addr, addr, 4);
		out->addr_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)n);
		memcpy(&sin6->sin6_addr, addr, 16);
		out->addr_len = sizeof(*sin6);
	}
	return 0;
}

bool cfg_listen_same(const struct cfg_listen *a, const struct cfg_listen *b)
{
	return a->addr_len == b->addr_len &&
	       !memcmp(&a->addr, &b->addr, a->addr_len);
}

int cfg_build_endpoint(struct parser *p, struct cfg *cfg)
{
	struct section *s = &p->endpoint;
	struct cfg_endpoint *e = &cfg->endpoint;
	int line = s->v[K_IMDS_ROLE].line;
	size_t i;

	if (!s->line)
		return 0;
	e->present = 1;
	e->line = s->line;
	if (!s->v[K_LISTEN].line)
		return cfg_fail(p, s->line, "[endpoint] needs listen (%s)",
				LISTEN_EXAMPLE);
	if (cfg_store_section(p, s, PART_ENDPOINT, e))
		return -1;
	if (!e->imds_role)
		return 0;
	if (name_index_find(&cfg->names, e->imds_role, &i))
		return cfg_fail(p, line,
				"imds_role \"%s\" is not a [role] in this file",
				e->imds_role);
	if (cfg->roles[i].x.cloud != CFG_CLOUD_AWS)
		return cfg_fail(p, line,
				"imds_role \"%s\" is a cloud = %s role; IMDS serves AWS credentials only",
				e->imds_role, cfg_cloud_name(cfg->roles[i].x.cloud));
	e->imds_role_index = i;
	return 0;
}
