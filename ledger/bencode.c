/* Canonical bencode: a strict checker, zero-copy accessors and an encoder that can
 * only produce canonical output. Hashes and signatures are taken over the bytes
 * received, so the checker must accept exactly one encoding of each value. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ben_parser {
	const uint8_t *p, *end;
	const struct ben_limits *lim;
	size_t elems;
};

/* Digits of a non-negative decimal without leading zeros; stops at the first
 * non-digit. Returns false on an empty run, a leading zero or overflow. */
static bool parse_uint(struct ben_parser *ps, uint64_t max, uint64_t *out)
{
	const uint8_t *s = ps->p;
	uint64_t v = 0;

	if (s >= ps->end || *s < '0' || *s > '9')
		return false;
	if (*s == '0' && s + 1 < ps->end && s[1] >= '0' && s[1] <= '9')
		return false;
	while (s < ps->end && *s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	ps->p = s;
	*out = v;
	return true;
}

static bool parse_str(struct ben_parser *ps, const uint8_t **out_p, size_t *out_len)
{
	uint64_t n;

	if (!parse_uint(ps, SIZE_MAX, &n) || ps->p >= ps->end || *ps->p != ':')
		return false;
	ps->p++;
	if (n > (uint64_t)(ps->end - ps->p))
		return false;
	*out_p = ps->p;
	*out_len = (size_t)n;
	ps->p += n;
	return true;
}

static bool parse_value(struct ben_parser *ps, unsigned depth)
{
	const uint8_t *kp, *prev_key = NULL;
	size_t kl, prev_len = 0;
	uint64_t mag;

	if (ps->p >= ps->end || ++ps->elems > ps->lim->max_elems)
		return false;
	switch (*ps->p) {
	case 'i':
		ps->p++;
		if (ps->p < ps->end && *ps->p == '-') {
			ps->p++;
			/* "-0" and "-" alone are not canonical */
			if (!parse_uint(ps, (uint64_t)INT64_MAX + 1, &mag) || mag == 0)
				return false;
		} else if (!parse_uint(ps, INT64_MAX, &mag)) {
			return false;
		}
		if (ps->p >= ps->end || *ps->p != 'e')
			return false;
		ps->p++;
		return true;
	case 'l':
		if (depth >= ps->lim->max_depth)
			return false;
		ps->p++;
		while (ps->p < ps->end && *ps->p != 'e')
			if (!parse_value(ps, depth + 1))
				return false;
		if (ps->p >= ps->end)
			return false;
		ps->p++;
		return true;
	case 'd':
		if (depth >= ps->lim->max_depth)
			return false;
		ps->p++;
		while (ps->p < ps->end && *ps->p != 'e') {
			if (++ps->elems > ps->lim->max_elems || !parse_str(ps, &kp, &kl))
				return false;
			if (prev_key) {
				int c = memcmp(prev_key, kp, prev_len < kl ? prev_len : kl);

				/* strictly increasing: unsorted or duplicate keys fail */
				if (c > 0 || (c == 0 && prev_len >= kl))
					return false;
			}
			prev_key = kp;
			prev_len = kl;
			if (!parse_value(ps, depth + 1))
				return false;
		}
		if (ps->p >= ps->end)
			return false;
		ps->p++;
		return true;
	default: {
		const uint8_t *sp;
		size_t sl;

		return parse_str(ps, &sp, &sl);
	}
	}
}

int ben_check(const uint8_t *buf, size_t len, const struct ben_limits *lim)
{
	struct ben_parser ps = { buf, buf + len, lim, 0 };

	if (len > lim->max_len)
		return -EMSGSIZE;
	if (!parse_value(&ps, 0) || ps.p != ps.end)
		return -EBADMSG;
	return 0;
}

/* End of the value at p in checked data, or NULL if it does not fit before end. */
static const uint8_t *skip(const uint8_t *p, const uint8_t *end)
{
	size_t n = 0;

	if (p >= end)
		return NULL;
	switch (*p) {
	case 'i': p = memchr(p, 'e', (size_t)(end - p)); return p ? p + 1 : NULL;
	case 'l':
	case 'd':
		p++;
		while (p && p < end && *p != 'e')
			p = skip(p, end);
		return p && p < end ? p + 1 : NULL;
	default:
		while (p < end && *p >= '0' && *p <= '9') {
			if (n > SIZE_MAX / 10 - 10)
				return NULL;
			n = n * 10 + (size_t)(*p++ - '0');
		}
		if (p >= end || *p != ':' || n > (size_t)(end - p - 1))
			return NULL;
		return p + 1 + n;
	}
}

char ben_type(struct ben v)
{
	if (!v.len)
		return 0;
	if (v.p[0] == 'i' || v.p[0] == 'l' || v.p[0] == 'd')
		return (char)v.p[0];
	return 's';
}

bool ben_int(struct ben v, int64_t *out)
{
	const uint8_t *s = v.p + 1, *end = v.p + v.len - 1;
	bool neg = false;
	uint64_t m = 0;

	if (ben_type(v) != 'i' || v.len < 3)
		return false;
	if (*s == '-') {
		neg = true;
		s++;
	}
	for (; s < end; s++)
		m = m * 10 + (uint64_t)(*s - '0');
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return true;
}

bool ben_str(struct ben v, const uint8_t **out_p, size_t *out_len)
{
	const uint8_t *c;

	if (ben_type(v) != 's')
		return false;
	c = memchr(v.p, ':', v.len);
	if (!c)
		return false;
	*out_p = c + 1;
	*out_len = v.len - (size_t)(c + 1 - v.p);
	return true;
}

bool ben_iter_init(struct ben v, struct ben_iter *it)
{
	char t = ben_type(v);

	if (t != 'l' && t != 'd')
		return false;
	it->p = v.p + 1;
	it->end = v.p + v.len - 1;
	return true;
}

bool ben_iter_next(struct ben_iter *it, struct ben *out)
{
	const uint8_t *e;

	if (it->p >= it->end)
		return false;
	e = skip(it->p, it->end);
	if (!e)
		return false;
	out->p = it->p;
	out->len = (size_t)(e - it->p);
	it->p = e;
	return true;
}

bool ben_dict_get(struct ben dict, const char *key, struct ben *out)
{
	struct ben_iter it;
	struct ben k, v;
	size_t kl = strlen(key);

	if (ben_type(dict) != 'd' || !ben_iter_init(dict, &it))
		return false;
	while (ben_iter_next(&it, &k) && ben_iter_next(&it, &v)) {
		const uint8_t *s;
		size_t sl;

		if (!ben_str(k, &s, &sl))
			return false;
		if (sl == kl && !memcmp(s, key, kl)) {
			*out = v;
			return true;
		}
	}
	return false;
}

bool ben_get_int(struct ben dict, const char *key, int64_t *out)
{
	struct ben v;

	return ben_dict_get(dict, key, &v) && ben_int(v, out);
}

bool ben_get_bytes(struct ben dict, const char *key, const uint8_t **p, size_t *len)
{
	struct ben v;

	return ben_dict_get(dict, key, &v) && ben_str(v, p, len);
}

bool ben_get_fixed(struct ben dict, const char *key, uint8_t *out, size_t len)
{
	const uint8_t *p;
	size_t n;

	if (!ben_get_bytes(dict, key, &p, &n) || n != len)
		return false;
	memcpy(out, p, len);
	return true;
}

/* ---- encoder ---- */

void ben_buf_init(struct ben_buf *b)
{
	memset(b, 0, sizeof *b);
}

void ben_buf_release(struct ben_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static void put(struct ben_buf *b, const void *p, size_t len)
{
	if (b->err)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->p, cap);
		if (!n) {
			b->err = -ENOMEM;
			return;
		}
		b->p = n;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, p, len);
	b->len += len;
}

void ben_put_raw(struct ben_buf *b, const void *p, size_t len)
{
	put(b, p, len);
}

void ben_put_int(struct ben_buf *b, int64_t v)
{
	char s[32];
	int n = snprintf(s, sizeof s, "i%llde", (long long)v);

	put(b, s, (size_t)n);
}

void ben_put_str(struct ben_buf *b, const void *p, size_t len)
{
	char s[32];
	int n = snprintf(s, sizeof s, "%zu:", len);

	put(b, s, (size_t)n);
	put(b, p, len);
}

void ben_put_cstr(struct ben_buf *b, const char *s)
{
	ben_put_str(b, s, strlen(s));
}

void ben_put_key(struct ben_buf *b, const char *key)
{
	size_t kl = strlen(key), d = b->depth;

	if (b->err)
		return;
	if (!d || !b->is_dict[d - 1]) {
		b->err = -EINVAL;
		return;
	}
	if (b->last_key[d - 1] != SIZE_MAX) {
		const uint8_t *prev = b->p + b->last_key[d - 1];
		size_t pl = b->last_key_len[d - 1];
		int c = memcmp(prev, key, pl < kl ? pl : kl);

		if (c > 0 || (c == 0 && pl >= kl)) {
			b->err = -EINVAL;
			return;
		}
	}
	ben_put_str(b, key, kl);
	b->last_key[d - 1] = b->len - kl;
	b->last_key_len[d - 1] = kl;
}

static void open_container(struct ben_buf *b, char c, bool dict)
{
	if (b->err)
		return;
	if (b->depth >= BEN_MAX_DEPTH) {
		b->err = -EINVAL;
		return;
	}
	put(b, &c, 1);
	b->is_dict[b->depth] = dict;
	b->last_key[b->depth] = SIZE_MAX;
	b->depth++;
}

void ben_dict_begin(struct ben_buf *b)
{
	open_container(b, 'd', true);
}

void ben_list_begin(struct ben_buf *b)
{
	open_container(b, 'l', false);
}

void ben_end(struct ben_buf *b)
{
	if (b->err)
		return;
	if (!b->depth) {
		b->err = -EINVAL;
		return;
	}
	b->depth--;
	put(b, "e", 1);
}
