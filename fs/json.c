/* A JSON writer: escaping and nesting, nothing else (see json.h). */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fs_json_init(struct fs_json *j)
{
	memset(j, 0, sizeof *j);
}

void fs_json_release(struct fs_json *j)
{
	free(j->buf);
	memset(j, 0, sizeof *j);
}

static void put(struct fs_json *j, const char *s, size_t n)
{
	if (j->err)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		char *nb;

		while (cap < j->len + n + 1)
			cap *= 2;
		if (!(nb = realloc(j->buf, cap))) {
			j->err = -ENOMEM;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void puts_(struct fs_json *j, const char *s)
{
	put(j, s, strlen(s));
}

static void newline(struct fs_json *j)
{
	put(j, "\n", 1);
	for (int i = 0; i < j->depth; i++)
		put(j, "  ", 2);
}

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are refused (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void fs_json_quote(struct fs_json *j, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	put(j, "\"", 1);
	while (i < n && p[i]) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char u[8];
		size_t l;

		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20) {
				snprintf(u, sizeof u, "\\u%04x", c);
				esc = u;
			}
		}
		if (esc) {
			put(j, s + i - run, run);
			run = 0;
			puts_(j, esc);
			i++;
			continue;
		}
		l = utf8_len(p + i, n - i); /* a NUL is no continuation byte */
		if (l == 0) {               /* not UTF-8: the replacement character, one per byte */
			put(j, s + i - run, run);
			run = 0;
			puts_(j, "\\ufffd");
			i++;
			continue;
		}
		run += l;
		i += l;
	}
	put(j, s + i - run, run);
	put(j, "\"", 1);
}

/* Before any value: the comma after the previous item, the indent, the key. */
static void item(struct fs_json *j, const char *key)
{
	if (j->depth > 0) {
		if (j->has_items[j->depth])
			put(j, ",", 1);
		newline(j);
	}
	j->has_items[j->depth] = true;
	if (key) {
		fs_json_quote(j, key, strlen(key));
		put(j, ": ", 2);
	}
}

static void open_(struct fs_json *j, const char *key, const char *bracket)
{
	item(j, key);
	puts_(j, bracket);
	if (j->depth >= FS_JSON_MAX_DEPTH) {
		j->err = j->err ? j->err : -EINVAL;
		return;
	}
	j->has_items[++j->depth] = false;
}

static void close_(struct fs_json *j, const char *bracket)
{
	if (j->depth <= 0) {
		j->err = j->err ? j->err : -EINVAL;
		return;
	}
	bool had = j->has_items[j->depth--];
	if (had)
		newline(j);
	puts_(j, bracket);
}

void fs_json_object_begin(struct fs_json *j, const char *key)
{
	open_(j, key, "{");
}

void fs_json_object_end(struct fs_json *j)
{
	close_(j, "}");
}

void fs_json_array_begin(struct fs_json *j, const char *key)
{
	open_(j, key, "[");
}

void fs_json_array_end(struct fs_json *j)
{
	close_(j, "]");
}

void fs_json_strn(struct fs_json *j, const char *key, const char *s, size_t n)
{
	item(j, key);
	if (s)
		fs_json_quote(j, s, n);
	else
		puts_(j, "null");
}

void fs_json_str(struct fs_json *j, const char *key, const char *s)
{
	fs_json_strn(j, key, s, s ? strlen(s) : 0);
}

void fs_json_hex(struct fs_json *j, const char *key, const uint8_t *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	item(j, key);
	put(j, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char two[2] = { digits[bytes[i] >> 4], digits[bytes[i] & 15] };

		put(j, two, 2);
	}
	put(j, "\"", 1);
}

void fs_json_int(struct fs_json *j, const char *key, int64_t v)
{
	char num[24];

	item(j, key);
	snprintf(num, sizeof num, "%lld", (long long)v);
	puts_(j, num);
}

void fs_json_uint(struct fs_json *j, const char *key, uint64_t v)
{
	char num[24];

	item(j, key);
	snprintf(num, sizeof num, "%llu", (unsigned long long)v);
	puts_(j, num);
}

void fs_json_bool(struct fs_json *j, const char *key, bool v)
{
	item(j, key);
	puts_(j, v ? "true" : "false");
}

void fs_json_null(struct fs_json *j, const char *key)
{
	item(j, key);
	puts_(j, "null");
}

int fs_json_finish(struct fs_json *j, char **out)
{
	int err = j->err;

	if (!err && (j->depth != 0 || j->len == 0))
		err = -EINVAL;
	put(j, "\n", 1);
	if (!err && j->err)
		err = j->err;
	if (err < 0) {
		fs_json_release(j);
		return err;
	}
	*out = j->buf;
	err = (int)j->len;
	j->buf = NULL;
	fs_json_release(j);
	return err;
}

int fs_json_print(struct fs_json *j)
{
	char *text;
	int n = fs_json_finish(j, &text);

	if (n < 0)
		return n;
	fwrite(text, 1, (size_t)n, stdout);
	free(text);
	return fflush(stdout) == 0 ? 0 : -EIO;
}
