#include "uri.h"

#include <ledger.h>

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char SCHEME[] = "swarmfs://";

int fs_uri_is_uri(const char *text)
{
	return text && strncasecmp(text, SCHEME, sizeof SCHEME - 1) == 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [s, s+len) into a new string; '+' stays '+' (RFC 3986, not forms).
 * A NUL byte or a broken escape is refused: the value becomes a path or a URL. */
static char *pct_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *w = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			*w++ = s[i];
			continue;
		}
		int a = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
		int b = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;

		if (a < 0 || b < 0 || (a == 0 && b == 0)) {
			free(out);
			return NULL;
		}
		*w++ = (char)(a * 16 + b);
		i += 2;
	}
	*w = '\0';
	return out;
}

int fs_uri_peer_valid(const char *peer)
{
	const char *colon;
	char *end;
	long port;

	if (!peer || !*peer)
		return -EINVAL;
	for (const char *p = peer; *p; p++)
		if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20 || *p == '/')
			return -EINVAL;
	if (peer[0] == '[') {
		const char *close = strchr(peer, ']');

		if (!close || close == peer + 1 || close[1] != ':')
			return -EINVAL;
		colon = close + 1;
	} else {
		colon = strrchr(peer, ':');
		if (!colon || colon == peer || strchr(peer, ':') != colon)
			return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port < 1 || port > 65535)
		return -EINVAL;
	return 0;
}

void fs_uri_release(struct fs_uri *u)
{
	free(u->name);
	for (size_t i = 0; i < u->n_trackers; i++)
		free(u->trackers[i]);
	for (size_t i = 0; i < u->n_peers; i++)
		free(u->peers[i]);
	memset(u, 0, sizeof *u);
}

#define FAIL(why)                                                                                  \
	do {                                                                                       \
		reason = (why);                                                                    \
		goto fail;                                                                         \
	} while (0)

int fs_uri_parse(const char *text, struct fs_uri *out, const char **out_why)
{
	struct fs_uri u = { 0 };
	const char *p, *reason = NULL;
	size_t i;

	if (!fs_uri_is_uri(text))
		FAIL("not a swarmfs:// URI");
	p = text + sizeof SCHEME - 1;
	for (i = 0; i < 64; i++) {
		if (hexval((unsigned char)p[i]) < 0)
			FAIL("the drive id must be 64 hex digits");
		u.drive_id[i] = (char)tolower((unsigned char)p[i]);
	}
	u.drive_id[64] = '\0';
	p += 64;
	if (*p == '/')
		p++; /* tolerate swarmfs://<id>/?tr=... */
	if (*p == '\0')
		goto done;
	if (*p != '?')
		FAIL("the drive id must be 64 hex digits");
	p++;
	while (*p) {
		const char *amp = strchr(p, '&'), *eq;
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		char *val;

		eq = memchr(p, '=', len);
		if (len == 0) {
			p += 1;
			continue;
		}
		if (!eq)
			FAIL("a query parameter has no value");
		val = pct_decode(eq + 1, len - (size_t)(eq + 1 - p));
		if (!val)
			FAIL("bad percent-encoding (or an encoded NUL)");
		size_t klen = (size_t)(eq - p);
		if (klen == 2 && !strncmp(p, "tr", 2)) {
			if (u.n_trackers == FS_URI_MAX_LIST || !*val) {
				reason = *val ? "too many trackers" : "an empty tracker";
				free(val);
				goto fail;
			}
			u.trackers[u.n_trackers++] = val;
		} else if (klen == 4 && !strncmp(p, "peer", 4)) {
			if (u.n_peers == FS_URI_MAX_LIST || fs_uri_peer_valid(val) < 0) {
				reason = u.n_peers == FS_URI_MAX_LIST ? "too many peers"
				                                      : "a peer is not HOST:PORT";
				free(val);
				goto fail;
			}
			u.peers[u.n_peers++] = val;
		} else if (klen == 2 && !strncmp(p, "gl", 2)) {
			char *end;
			unsigned long long gl = strtoull(val, &end, 10);
			bool bad = *end || !isdigit((unsigned char)val[0]) || gl == 0 ||
			           gl > FS_URI_GENESIS_MAX;

			free(val);
			if (bad)
				FAIL("gl= (the genesis length) must be 1..16384");
			u.genesis_len = (uint32_t)gl;
		} else if (klen == 2 && !strncmp(p, "dn", 2)) {
			free(u.name);
			u.name = val;
		} else if (klen == 4 && !strncmp(p, "priv", 4)) {
			bool bad = strcmp(val, "1") != 0;

			free(val);
			if (bad)
				FAIL("priv= must be 1");
			u.private_drive = true;
		} else if (klen == 3 && !strncmp(p, "inv", 3)) {
			int bad = strlen(val) != 2 * sizeof u.invite ||
			          ledger_unhex(val, u.invite, sizeof u.invite) < 0;

			free(val);
			if (bad)
				FAIL("inv= (an invite) must be 64 hex digits");
			u.has_invite = u.private_drive = true;
		} else
			free(val); /* unknown: a newer writer's extension */
		p += len + (amp ? 1 : 0);
	}
done:
	*out = u;
	return 0;
fail:
	fs_uri_release(&u);
	memset(out, 0, sizeof *out);
	if (out_why)
		*out_why = reason;
	return -EINVAL;
}

/* Unreserved characters plus those a tracker URL needs to stay readable. */
static bool keep_char(unsigned char c)
{
	return isalnum(c) || strchr("-._~:/[]@!$'()*,;", c);
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, bool encode)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (*len + 4 > *cap) {
			size_t ncap = *cap ? *cap * 2 : 128;
			char *nb = realloc(*buf, ncap);

			if (!nb)
				return -ENOMEM;
			*buf = nb;
			*cap = ncap;
		}
		if (encode && !keep_char(c))
			*len += (size_t)sprintf(*buf + *len, "%%%02X", c);
		else
			(*buf)[(*len)++] = (char)c;
		(*buf)[*len] = '\0';
	}
	return 0;
}

int fs_uri_format(const struct fs_uri *u, char **out_text)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char sep = '?';
	int err = append(&buf, &len, &cap, SCHEME, false);

	err = err ? err : append(&buf, &len, &cap, u->drive_id, false);
	if (!err && u->genesis_len && !u->private_drive) {
		char k[32];

		snprintf(k, sizeof k, "%cgl=%u", sep, (unsigned)u->genesis_len);
		sep = '&';
		err = append(&buf, &len, &cap, k, false);
	}
	if (!err && u->has_invite) {
		char k[8 + 2 * sizeof u->invite + 1];

		snprintf(k, sizeof k, "%cinv=", sep);
		ledger_hex(u->invite, sizeof u->invite, k + 5);
		sep = '&';
		err = append(&buf, &len, &cap, k, false);
	} else if (!err && u->private_drive) {
		char k[8] = { sep, 'p', 'r', 'i', 'v', '=', '1', 0 };

		sep = '&';
		err = append(&buf, &len, &cap, k, false);
	}
	for (size_t i = 0; !err && i < u->n_trackers; i++, sep = '&') {
		char k[5] = { sep, 't', 'r', '=', 0 };

		err = append(&buf, &len, &cap, k, false);
		err = err ? err : append(&buf, &len, &cap, u->trackers[i], true);
	}
	for (size_t i = 0; !err && i < u->n_peers; i++, sep = '&') {
		char k[7] = { sep, 'p', 'e', 'e', 'r', '=', 0 };

		err = append(&buf, &len, &cap, k, false);
		err = err ? err : append(&buf, &len, &cap, u->peers[i], true);
	}
	if (!err && u->name) {
		char k[5] = { sep, 'd', 'n', '=', 0 };

		err = append(&buf, &len, &cap, k, false);
		err = err ? err : append(&buf, &len, &cap, u->name, true);
	}
	if (err) {
		free(buf);
		return err;
	}
	*out_text = buf;
	return 0;
}

uint32_t fs_uri_genesis_len(struct ledger *l)
{
	uint8_t *g;
	size_t len;

	if (ledger_genesis_raw(l, &g, &len) < 0)
		return 0;
	free(g);
	return len <= FS_URI_GENESIS_MAX ? (uint32_t)len : 0;
}
