/*
 * SigV4 against AWS's own test suite (tests/data/aws4, one folder per case:
 * raw request, canonical request, string to sign, Authorization header),
 * plus an STS AssumeRole request checked against botocore's signer.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "buf.h"
#include "http.h"
#include "sigv4.h"
#include "check.h"

#ifndef AWS4_SUITE_DIR
#error "AWS4_SUITE_DIR must name the AWS SigV4 test suite folder"
#endif

#define SUITE_ACCESS_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_REGION "us-east-1"
#define SUITE_SERVICE "service"
#define SUITE_MIN_CASES 25
#define REQ_MAX_HEADERS 32

/*
 * get-vanilla-with-session-token has no token in its .req: the token belongs
 * to the credentials and the signer's caller adds the X-Amz-Security-Token
 * header, as botocore and the other SDKs' suite runners do with this value.
 */
#define SUITE_VANILLA_TOKEN_CASE "get-vanilla-with-session-token"
#define SUITE_VANILLA_TOKEN \
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

/* The cases botocore skips, skipped here too (and not counted as passed). */
static const char *const suite_skips[] = {
	"normalize-path/get-space",
	"get-vanilla-query-order-key-case",
	"get-vanilla-query-order-key",
	"get-vanilla-query-order-value",
};

/* A request parsed from a .req file; every string is owned. */
struct raw_request {
	char *method;
	char *path;
	char *query;			/* NULL if the target has no '?' */
	struct http_header headers[REQ_MAX_HEADERS];
	size_t n_headers;
	char *body;
	size_t body_len;
};

/* A growable list of case names relative to the suite folder. */
struct case_list {
	char **names;
	size_t n;
	size_t cap;
};

/* snprintf for file paths: -1 if the result did not fit in n bytes. */
static int PRINTF_LIKE(3, 4) path_fmt(char *out, size_t n, const char *fmt,
				      ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* Whole file as a NUL-terminated string (length in *len), or NULL. */
static void raw_request_free(struct raw_request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	for (size_t i = 0; i < r->n_headers; i++) {
		free((char *)r->headers[i].name);
		free((char *)r->headers[i].value);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Next line of text from *p (CR before LF dropped) into a new string;
 * *p moves past the LF.  NULL at the end of text. */
static char *next_line(const char **p)
{
	const char *s = *p, *nl;
	size_t n;

	if (!*s)
		return NULL;
	nl = strchr(s, '\n');
	n = nl ? (size_t)(nl - s) : strlen(s);
	*p = nl ? nl + 1 : s + n;
	if (n && s[n - 1] == '\r')
		n--;
	return strndup(s, n);
}

/* Appends "\n" and cont to the last header value (a folded line). */
static int header_fold(struct raw_request *r, const char *cont)
{
	const char *old = r->headers[r->n_headers - 1].value;
	size_t ol = strlen(old), cl = strlen(cont);
	char *v = malloc(ol + 1 + cl + 1);

	if (!v)
		return -1;
	memcpy(v, old, ol);
	v[ol] = '\n';
	memcpy(v + ol + 1, cont, cl + 1);
	free((char *)old);
	r->headers[r->n_headers - 1].value = v;
	return 0;
}

/* Parses "METHOD TARGET HTTP/1.1", header lines "Name:value" (lines that
 * start with whitespace continue the previous value), a blank line, and the
 * body.  Header values are kept raw: trimming is the signer's job.  0 or -1
 * (r freed). */
static int parse_request(const char *text, struct raw_request *r)
{
	const char *p = text, *sp1, *sp2, *q;
	char *line = next_line(&p);

	memset(r, 0, sizeof(*r));
	if (!line)
		return -1;
	sp1 = strchr(line, ' ');
	sp2 = strrchr(line, ' ');
	if (!sp1 || sp2 == sp1)
		goto fail_line;
	r->method = strndup(line, (size_t)(sp1 - line));
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if (q) {
		r->path = strndup(sp1 + 1, (size_t)(q - sp1 - 1));
		r->query = strndup(q + 1, (size_t)(sp2 - q - 1));
	} else {
		r->path = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	}
	free(line);

	while ((line = next_line(&p)) != NULL) {
		char *colon;

		if (!*line)
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			if (!r->n_headers || header_fold(r, line))
				goto fail_line;
			free(line);
			continue;
		}
		colon = strchr(line, ':');
		if (!colon || r->n_headers == REQ_MAX_HEADERS)
			goto fail_line;
		r->headers[r->n_headers].name =
			strndup(line, (size_t)(colon - line));
		r->headers[r->n_headers].value = strdup(colon + 1);
		r->n_headers++;
		free(line);
	}
	free(line);
	r->body_len = strlen(p);
	r->body = strdup(p);
	return r->method && r->path && r->body ? 0 : -1;
fail_line:
	free(line);
	raw_request_free(r);
	return -1;
}

/* Value of header name (case-insensitive) in r, or NULL. */
static const char *raw_header(const struct raw_request *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (!strcasecmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

static int case_list_add(struct case_list *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		char **n = realloc(l->names, cap * sizeof(*n));

		if (!n)
			return -1;
		l->names = n;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n])
		return -1;
	l->n++;
	return 0;
}

static void case_list_free(struct case_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds rel (a folder under the suite) if it holds <basename>.req, then
 * walks its subfolders.  0 or -1. */
static int collect_cases(const char *rel, struct case_list *l)
{
	char dir[4096], probe[4096];
	const char *base = strrchr(rel, '/');
	struct dirent *de;
	struct stat st;
	DIR *d;
	int ret = 0;

	base = base ? base + 1 : rel;
	if (path_fmt(dir, sizeof(dir), "%s%s%s", AWS4_SUITE_DIR,
		     *rel ? "/" : "", rel))
		return -1;
	if (*rel) {
		if (path_fmt(probe, sizeof(probe), "%s/%s.req", dir, base))
			return -1;
		if (!stat(probe, &st) && S_ISREG(st.st_mode) &&
		    case_list_add(l, rel))
			return -1;
	}
	d = opendir(dir);
	if (!d)
		return *rel ? 0 : -1;
	while (!ret && (de = readdir(d)) != NULL) {
		char sub[4096];

		if (de->d_name[0] == '.')
			continue;
		if (path_fmt(probe, sizeof(probe), "%s/%s", dir, de->d_name) ||
		    path_fmt(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
			     de->d_name)) {
			ret = -1;
			break;
		}
		if (stat(probe, &st) || !S_ISDIR(st.st_mode))
			continue;
		ret = collect_cases(sub, l);
	}
	closedir(d);
	return ret;
}

static int is_skipped(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(suite_skips); i++)
		if (!strcmp(suite_skips[i], name))
			return 1;
	return 0;
}

/* Compares got with the expected file <case>/<base>.<ext>.  On a mismatch
 * says which line differs; the texts themselves are printed only when no
 * session token is involved (tokens are never printed). */
static int expect_file(const char *name, const char *ext, const char *got,
		       int has_token)
{
	char path[4096];
	const char *base = strrchr(name, '/');
	char *want;
	int ok;

	base = base ? base + 1 : name;
	want = path_fmt(path, sizeof(path), "%s/%s/%s.%s", AWS4_SUITE_DIR, name,
			base, ext) ? NULL : check_read_file(path, NULL);
	if (!want) {
		fprintf(stderr, "    %s: cannot read .%s\n", name, ext);
		return 0;
	}
	ok = got && !strcmp(got, want);
	if (!ok && got) {
		size_t i = 0, line = 1;

		while (got[i] && got[i] == want[i]) {
			if (got[i] == '\n')
				line++;
			i++;
		}
		fprintf(stderr, "    %s: .%s differs at line %zu\n", name, ext,
			line);
		if (!has_token)
			fprintf(stderr, "    want:\n%s\n    got:\n%s\n", want,
				got);
	}
	free(want);
	return ok;
}

/* Signs one suite case with the suite constants; 1 if the canonical
 * request, string to sign and Authorization all match byte for byte. */
static int run_suite_case(const char *name)
{
	struct sigv4_result res = { 0 };
	struct raw_request r;
	struct sigv4_request req;
	char path[4096];
	const char *base = strrchr(name, '/'), *token;
	char *text;
	int ok = 0;

	base = base ? base + 1 : name;
	text = path_fmt(path, sizeof(path), "%s/%s/%s.req", AWS4_SUITE_DIR,
			name, base) ? NULL : check_read_file(path, NULL);
	if (!text || parse_request(text, &r)) {
		fprintf(stderr, "    %s: cannot parse .req\n", name);
		free(text);
		return 0;
	}
	free(text);

	token = raw_header(&r, "X-Amz-Security-Token");
	if (!token && !strcmp(base, SUITE_VANILLA_TOKEN_CASE)) {
		if (r.n_headers == REQ_MAX_HEADERS)
			goto out;
		r.headers[r.n_headers].name = strdup("X-Amz-Security-Token");
		r.headers[r.n_headers].value = strdup(SUITE_VANILLA_TOKEN);
		r.n_headers++;
		token = SUITE_VANILLA_TOKEN;
	}

	req = (struct sigv4_request){
		.method = r.method,
		.path = r.path,
		.query = r.query,
		.headers = r.headers,
		.n_headers = r.n_headers,
		.payload = r.body,
		.payload_len = r.body_len,
		.region = SUITE_REGION,
		.service = SUITE_SERVICE,
		.amz_date = SUITE_DATE,
		.access_key_id = SUITE_ACCESS_KEY,
		.secret_access_key = SUITE_SECRET,
		.session_token = token,
	};
	if (sigv4_sign(&req, &res)) {
		fprintf(stderr, "    %s: sigv4_sign failed\n", name);
		goto out;
	}
	ok = expect_file(name, "creq", res.canonical_request, token != NULL);
	ok &= expect_file(name, "sts", res.string_to_sign, token != NULL);
	ok &= expect_file(name, "authz", res.authorization, token != NULL);
	sigv4_result_free(&res);
out:
	raw_request_free(&r);
	return ok;
}

/* Every case of the suite but botocore's four skips, one line each. */
static void test_aws4_suite(void)
{
	struct case_list l = { 0 };
	size_t run = 0, passed = 0, skipped = 0;

	CHECK(collect_cases("", &l) == 0);
	qsort(l.names, l.n, sizeof(*l.names), name_cmp);
	for (size_t i = 0; i < l.n; i++) {
		if (is_skipped(l.names[i])) {
			printf("skip %s\n", l.names[i]);
			skipped++;
			continue;
		}
		run++;
		if (run_suite_case(l.names[i])) {
			printf("ok   aws4/%s\n", l.names[i]);
			passed++;
		} else {
			printf("FAIL aws4/%s\n", l.names[i]);
		}
		fflush(stdout);
	}
	printf("aws4 suite: %zu cases run, %zu passed, %zu skipped\n", run,
	       passed, skipped);
	CHECK(run >= SUITE_MIN_CASES);
	CHECK(passed == run);
	CHECK(skipped == ARRAY_SIZE(suite_skips));
	case_list_free(&l);
}

#define STS_HOST "sts.us-east-1.amazonaws.com"
#define STS_BODY                                                         \
	"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole" \
	"%2Fdemo&RoleSessionName=credfs-demo&Version=2011-06-15"
#define STS_TOKEN "EXAMPLE-SESSION-TOKEN-FOR-ROLE-CHAINING"

static const struct http_header sts_headers[] = {
	{ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
	{ "Host", STS_HOST },
	{ "X-Amz-Date", SUITE_DATE },
	{ "X-Amz-Security-Token", STS_TOKEN },
};

static struct sigv4_request sts_request(void)
{
	return (struct sigv4_request){
		.method = "POST",
		.path = "/",
		.headers = sts_headers,
		.n_headers = ARRAY_SIZE(sts_headers),
		.payload = STS_BODY,
		.payload_len = strlen(STS_BODY),
		.region = "us-east-1",
		.service = "sts",
		.amz_date = SUITE_DATE,
		.access_key_id = SUITE_ACCESS_KEY,
		.secret_access_key = SUITE_SECRET,
		.session_token = STS_TOKEN,
	};
}

/*
 * A role-chaining AssumeRole as sts.c sends it.  The expected Authorization
 * was computed once with botocore 1.43.11's SigV4Auth(Credentials(
 * "AKIDEXAMPLE", <suite secret>, STS_TOKEN), "sts", "us-east-1").add_auth()
 * on an AWSRequest POST https://sts.us-east-1.amazonaws.com/ with the same
 * Content-Type and body, botocore.auth.get_current_datetime patched to
 * 2015-08-30 12:36:00.
 */
static void test_sts_assume_role_matches_botocore(void)
{
	struct sigv4_request req = sts_request();
	struct sigv4_result res = { 0 };

	CHECK(sigv4_sign(&req, &res) == 0);
	CHECK_STR(res.authorization,
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
		  "sts/aws4_request, SignedHeaders=content-type;host;"
		  "x-amz-date;x-amz-security-token, Signature=1055975f7871767d"
		  "606421f183bbdb578d64fbf5c57498bdf47f0f7ffd9ed282");
	/* botocore's canonical request ends with the body hash. */
	CHECK(res.canonical_request &&
	      strstr(res.canonical_request, "\n668a89cd93d42eab8f8b111a88ef9641"
					    "c80eec410289231748b8b8cb9d8ce3cb"));
	sigv4_result_free(&res);
	CHECK(res.canonical_request == NULL && res.authorization == NULL);
}

/* A different secret, body or date must change the signature. */
static void test_signature_depends_on_inputs(void)
{
	struct sigv4_request req = sts_request();
	struct sigv4_result a = { 0 }, b = { 0 }, c = { 0 };

	CHECK(sigv4_sign(&req, &a) == 0);
	req.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz";
	CHECK(sigv4_sign(&req, &b) == 0);
	req = sts_request();
	req.payload_len--;
	CHECK(sigv4_sign(&req, &c) == 0);
	CHECK(a.authorization && b.authorization && c.authorization);
	if (a.authorization && b.authorization && c.authorization) {
		CHECK(strcmp(a.authorization, b.authorization) != 0);
		CHECK(strcmp(a.authorization, c.authorization) != 0);
	}
	sigv4_result_free(&a);
	sigv4_result_free(&b);
	sigv4_result_free(&c);
}

/* Requests that break the header's contract are refused, not signed. */
static void test_rejects_bad_requests(void)
{
	static const struct http_header no_host[] = {
		{ "X-Amz-Date", SUITE_DATE },
	};
	static const struct http_header no_token[] = {
		{ "Host", STS_HOST },
		{ "X-Amz-Date", SUITE_DATE },
	};
	static const struct http_header other_date[] = {
		{ "Host", STS_HOST },
		{ "X-Amz-Date", "20150830T123601Z" },
	};
	struct sigv4_request req;
	struct sigv4_result res = { 0 };

	req = sts_request();
	req.headers = no_host;
	req.n_headers = ARRAY_SIZE(no_host);
	req.session_token = NULL;
	CHECK(sigv4_sign(&req, &res) == -1);
	CHECK(res.authorization == NULL);

	req = sts_request();
	req.headers = no_token;
	req.n_headers = ARRAY_SIZE(no_token);
	CHECK(sigv4_sign(&req, &res) == -1);

	req = sts_request();
	req.session_token = "a-different-token";
	CHECK(sigv4_sign(&req, &res) == -1);

	req = sts_request();
	req.headers = other_date;
	req.n_headers = ARRAY_SIZE(other_date);
	req.session_token = NULL;
	CHECK(sigv4_sign(&req, &res) == -1);

	req = sts_request();
	req.amz_date = "2015-08-30T12:36";
	CHECK(sigv4_sign(&req, &res) == -1);

	req = sts_request();
	req.region = "";
	CHECK(sigv4_sign(&req, &res) == -1);
}

/* Paths and queries the suite does not cover: percent signs are encoded
 * again, '+' is literal, a ".." never climbs above the root. */
static void test_canonical_uri_and_query(void)
{
	static const struct http_header hdrs[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", SUITE_DATE },
	};
	struct sigv4_request req = {
		.method = "GET",
		.path = "/../a%2Fb/c d/",
		.query = "b=2&a=x+y&&a=%7e&c",
		.headers = hdrs,
		.n_headers = ARRAY_SIZE(hdrs),
		.region = SUITE_REGION,
		.service = SUITE_SERVICE,
		.amz_date = SUITE_DATE,
		.access_key_id = SUITE_ACCESS_KEY,
		.secret_access_key = SUITE_SECRET,
	};
	struct sigv4_result res = { 0 };

	CHECK(sigv4_sign(&req, &res) == 0);
	CHECK_STR(res.canonical_request,
		  "GET\n/a%252Fb/c%20d/\na=x%2By&a=~&b=2&c=\n"
		  "host:example.amazonaws.com\nx-amz-date:" SUITE_DATE "\n\n"
		  "host;x-amz-date\n"
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sigv4_result_free(&res);
}

static void test_format_date(void)
{
	char out[17];

	sigv4_format_date(1440938160LL, out);
	CHECK_STR(out, "20150830T123600Z");
	sigv4_format_date(0, out);
	CHECK_STR(out, "19700101T000000Z");
	sigv4_format_date(951782400LL, out);	/* leap day 2000 */
	CHECK_STR(out, "20000229T000000Z");
	sigv4_format_date(4102444799LL, out);
	CHECK_STR(out, "20991231T235959Z");
}

static const struct check_case cases[] = {
	CHECK_CASE(test_aws4_suite),
	CHECK_CASE(test_sts_assume_role_matches_botocore),
	CHECK_CASE(test_signature_depends_on_inputs),
	CHECK_CASE(test_rejects_bad_requests),
	CHECK_CASE(test_canonical_uri_and_query),
	CHECK_CASE(test_format_date),
};

int main(void)
{
	return CHECK_RUN(cases);
}
