/*
 * The rules for the URLs of a configuration, checked on what libcurl's URL
 * parser makes of them, so that what is judged is what libcurl will
 * connect to (curl_url_set() turns "http://127.1" into host 127.0.0.1, for
 * one):
 *   - an endpoint (sts_endpoint, token_url, impersonation_url,
 *     authority_host, AWS_ENDPOINT_URL*): https://, or http:// only to a
 *     loopback address (127.0.0.0/8, [::1], localhost); a port and a path
 *     may follow;
 *   - an issuer ([signer] issuer): https://, no port, no trailing "/";
 *   - both: a host name of letters, digits, "." "-" "_" or an IP address;
 *     no user name or password (and then the URL is not echoed in the
 *     error, as it may hold a password), query or fragment; no space.
 * libcurl is lenient in a few places where these rules are not: it takes
 * "https:///path" as host "path", "https:/host" as "https://host", an
 * empty ":" port as the default one, and "#" with nothing after it as no
 * fragment.  Those few are checked on
 * the text before libcurl sees it.
 */
#include "cfg_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

static const char host_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_";

/* Whether host, as libcurl gives it ("[::1]" with brackets), is a
 * loopback address. */
static bool loopback_host(const char *host)
{
	unsigned char addr[16];
	char tmp[64];
	size_t len = strlen(host);

	if (!strcasecmp(host, "localhost"))
		return true;
	if (host[0] == '[' && len >= 2 && len - 2 < sizeof(tmp)) {
		memcpy(tmp, host + 1, len - 2);
		tmp[len - 2] = '\0';
		return inet_pton(AF_INET6, tmp, addr) == 1 &&
		       !memcmp(addr, &in6addr_loopback, 16);
	}
	return inet_pton(AF_INET, host, addr) == 1 && addr[0] == 127;
}

/* The sentence for a URL libcurl refused. */
static void parse_error(const char *label, const char *url,
			enum cfg_url_rule rule, CURLUcode rc, char *msg,
			size_t len)
{
	switch (rc) {
	case CURLUE_BAD_SCHEME:
	case CURLUE_BAD_SLASHES:
		if (rule == CFG_URL_ISSUER)
			snprintf(msg, len, "%s must be an https:// URL, not \"%s\"",
				 label, url);
		else
			snprintf(msg, len,
				 "%s must start with https:// (or http:// for a loopback address), not \"%s\"",
				 label, url);
		break;
	case CURLUE_NO_HOST:
		snprintf(msg, len, "%s \"%s\" has no host", label, url);
		break;
	case CURLUE_BAD_PORT_NUMBER:
		snprintf(msg, len, "%s \"%s\" has an invalid port", label, url);
		break;
	case CURLUE_BAD_IPV6:
		if (strchr(url, '[') && !strchr(url, ']'))
			snprintf(msg, len, "%s \"%s\" has no closing \"]\"",
				 label, url);
		else
			snprintf(msg, len, "%s \"%s\" has an invalid IPv6 address",
				 label, url);
		break;
	case CURLUE_BAD_LOGIN:
	case CURLUE_BAD_USER:
	case CURLUE_BAD_PASSWORD:
		snprintf(msg, len, "%s must not contain a user name or password",
			 label);
		break;
	default:
		snprintf(msg, len, "%s \"%s\" has an invalid host name", label,
			 url);
		break;
	}
}

/* The checks on the text itself; see the top of the file.  0, or -1 with
 * msg filled. */
static int check_text(const char *label, const char *url,
		      enum cfg_url_rule rule, char *msg, size_t len)
{
	const char *sep = strstr(url, "://");
	const char *authority = sep ? sep + 3 : url;
	size_t alen = strcspn(authority, "/?#");

	/* A password may follow the user name: the URL is not echoed. */
	if (memchr(authority, '@', alen)) {
		snprintf(msg, len, "%s must not contain a user name or password",
			 label);
		return -1;
	}
	for (const char *c = url; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c)) {
			snprintf(msg, len, "%s \"%s\" must not contain spaces",
				 label, url);
			return -1;
		}
	if (!sep) {
		/* libcurl would take "https:/host" too. */
		parse_error(label, url, rule, CURLUE_BAD_SCHEME, msg, len);
		return -1;
	}
	if (!alen) {
		snprintf(msg, len, "%s \"%s\" has no host", label, url);
		return -1;
	}
	if (authority[alen - 1] == ':') {
		snprintf(msg, len, "%s \"%s\" has an invalid port", label, url);
		return -1;
	}
	if (strchr(url, '#')) {
		snprintf(msg, len, "%s \"%s\" must not have a fragment", label,
			 url);
		return -1;
	}
	if (rule == CFG_URL_ISSUER && url[strlen(url) - 1] == '/') {
		snprintf(msg, len, "%s \"%s\" must not end with \"/\"", label,
			 url);
		return -1;
	}
	return 0;
}

/* Whether libcurl found part in u. */
static bool has_part(CURLU *u, CURLUPart part)
{
	char *s = NULL;
	bool found = curl_url_get(u, part, &s, 0) == CURLUE_OK;

	curl_free(s);
	return found;
}

/* The rules on the parts of a URL libcurl parsed. */
static int check_parts(CURLU *u, const char *label, const char *url,
		       enum cfg_url_rule rule, char *msg, size_t len)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0)) {
		snprintf(msg, len, "%s \"%s\" has no host", label, url);
		goto out;
	}
	if (strcmp(scheme, "https") &&
	    (strcmp(scheme, "http") || rule == CFG_URL_ISSUER)) {
		parse_error(label, url, rule, CURLUE_BAD_SCHEME, msg, len);
		goto out;
	}
	if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
	    has_part(u, CURLUPART_OPTIONS)) {
		snprintf(msg, len, "%s must not contain a user name or password",
			 label);
		goto out;
	}
	if (host[0] != '[' && strspn(host, host_chars) != strlen(host)) {
		snprintf(msg, len, "%s \"%s\" has an invalid host name", label,
			 url);
		goto out;
	}
	if (!curl_url_get(u, CURLUPART_PORT, &port, 0)) {
		long n = strtol(port, NULL, 10);

		if (rule == CFG_URL_ISSUER) {
			snprintf(msg, len, "%s \"%s\" must not have a port",
				 label, url);
			goto out;
		}
		if (n < 1 || n > 65535) {
			snprintf(msg, len, "%s \"%s\" has an invalid port",
				 label, url);
			goto out;
		}
	}
	if (has_part(u, CURLUPART_QUERY)) {
		snprintf(msg, len, "%s \"%s\" must not have a query", label, url);
		goto out;
	}
	if (!strcmp(scheme, "http") && !loopback_host(host)) {
		snprintf(msg, len,
			 "%s \"%s\": http:// is only allowed for a loopback address; use https://",
			 label, url);
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	return rc;
}

int cfg_url_check(const char *label, const char *url, enum cfg_url_rule rule,
		  char *msg, size_t len)
{
	CURLU *u;
	CURLUcode rc;
	int ret;

	if (check_text(label, url, rule, msg, len))
		return -1;
	u = curl_url();
	if (!u)
		return -ENOMEM;
	/* Any scheme parses, so that "ftp://" is refused by name. */
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OUT_OF_MEMORY) {
		ret = -ENOMEM;
	} else if (rc) {
		parse_error(label, url, rule, rc, msg, len);
		ret = -1;
	} else {
		ret = check_parts(u, label, url, rule, msg, len);
	}
	curl_url_cleanup(u);
	return ret;
}
