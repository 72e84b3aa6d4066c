#include "percent.h"

#include <string.h>

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int percent_encode(struct buf *b, const char *s, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i = 0;
	int r;

	while (i < n) {
		size_t run = i;

		/* Runs of kept characters go in one append. */
		while (run < n && is_unreserved((unsigned char)s[run]))
			run++;
		if (run > i) {
			r = buf_append(b, s + i, run - i);
			if (r)
				return r;
			i = run;
			continue;
		}
		char esc[3] = { '%', digits[(unsigned char)s[i] >> 4],
				digits[(unsigned char)s[i] & 0x0f] };
		r = buf_append(b, esc, sizeof(esc));
		if (r)
			return r;
		i++;
	}
	return 0;
}

int percent_form_add(struct buf *b, const char *key, const char *value)
{
	int r = 0;

	if (b->len)
		r = buf_append(b, "&", 1);
	r = r ? r : percent_encode(b, key, strlen(key));
	r = r ? r : buf_append(b, "=", 1);
	return r ? r : percent_encode(b, value, strlen(value));
}
