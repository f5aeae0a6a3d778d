/* Receipts for the bytes this node received, and credit records for what it sent (see
 * credit.h). */
#include "credit.h"

#include "drive.h"
#include "fs.h"

#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What was receipted of one (torrent, peer) count. */
struct owed {
	uint8_t ih[32];
	char host[46];
	uint16_t port;
	uint64_t receipted; /* bytes of libtorrent's count already in receipts */
	int64_t since_ms;   /* when the bytes not receipted yet were first seen, 0: none */
	uint64_t last;      /* libtorrent's count at the last tick ... */
	int64_t last_ms;    /* ... and when it last grew */
};

struct fs_credit {
	struct owed *v;
	size_t n, cap;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fs_credit_new(struct fs_credit **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : -ENOMEM;
}

void fs_credit_free(struct fs_credit *c)
{
	if (c)
		free(c->v);
	free(c);
}

static struct owed *owed_get(struct fs_credit *c, const struct swarm_peer_bytes *b)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].port == b->port && !memcmp(c->v[i].ih, b->ih, 32) &&
		    !strcmp(c->v[i].host, b->host))
			return &c->v[i];
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		struct owed *nv = realloc(c->v, nc * sizeof *nv);

		if (!nv)
			return NULL;
		c->v = nv;
		c->cap = nc;
	}
	memset(&c->v[c->n], 0, sizeof c->v[c->n]);
	memcpy(c->v[c->n].ih, b->ih, 32);
	snprintf(c->v[c->n].host, sizeof c->v[c->n].host, "%s", b->host);
	c->v[c->n].port = b->port;
	return &c->v[c->n++];
}

/* Sign and send one receipt for what o's count holds beyond its receipts. */
static void receipt_send(struct fs_drive *d, struct ledger_sync *ls, struct owed *o,
                         uint64_t counted, const struct fs_credit_peer *peers, size_t n,
                         int64_t now)
{
	uint8_t up[LEDGER_KEY_LEN], *rc;
	int64_t bytes = (int64_t)(counted - o->receipted);
	size_t len, i = 0;
	int err;

	while (i < n && !(peers[i].port == o->port && !strcmp(peers[i].host, o->host)))
		i++;
	if (i == n || ledger_sync_peer_key(ls, peers[i].peer, up))
		return; /* not a member on the channel now: the bytes wait */
	if (bytes > LEDGER_RECEIPT_MAX_BYTES)
		bytes = LEDGER_RECEIPT_MAX_BYTES;
	err = ledger_receipt_make(d->ledger, up, o->ih, bytes, &rc, &len);
	if (!err) {
		err = ledger_sync_send_receipt(ls, peers[i].peer, rc, len);
		free(rc);
	}
	if (err) {
		fs_warn("credit: no receipt for %lld bytes from %s:%u: %s", (long long)bytes,
		        o->host, o->port, strerror(-err));
		return;
	}
	o->receipted += (uint64_t)bytes;
	o->since_ms = o->receipted < counted ? now : 0;
	fs_debug("credit: a receipt for %lld bytes to %s:%u", (long long)bytes, o->host, o->port);
}

void fs_credit_tick(struct fs_credit *c, struct fs_drive *d, struct ledger_sync *ls,
                    const struct fs_credit_peer *peers, size_t n)
{
	struct swarm_peer_bytes *b = NULL;
	int64_t now = now_ms();
	int got = 0, rolled;

	if (!d->key || !d->swarm || d->opts.no_receipts)
		goto roll;
	for (size_t cap = 64;; cap *= 2) {
		free(b);
		if (!(b = malloc(cap * sizeof *b)))
			return;
		got = swarm_session_peer_bytes(d->swarm, b, cap);
		if (got < 0 || (size_t)got <= cap)
			break;
	}
	for (int i = 0; i < got; i++) {
		struct owed *o = owed_get(c, &b[i]);

		if (!o || !b[i].port || b[i].downloaded <= o->receipted)
			continue;
		if (!o->since_ms)
			o->since_ms = now;
		if (b[i].downloaded != o->last) {
			o->last = b[i].downloaded;
			o->last_ms = now;
		}
		if ((int64_t)(b[i].downloaded - o->receipted) >= FS_CREDIT_RECEIPT_BYTES ||
		    now - o->since_ms >= FS_CREDIT_RECEIPT_S * 1000 ||
		    now - o->last_ms >= FS_CREDIT_IDLE_S * 1000)
			receipt_send(d, ls, o, b[i].downloaded, peers, n, now);
	}
	free(b);
roll:
	rolled = ledger_credit_roll(d->ledger, FS_CREDIT_ROLL_BATCH, FS_CREDIT_ROLL_AGE_S);
	if (rolled > 0)
		fs_debug("credit: %d credit record(s) queued", rolled);
	else if (rolled < 0)
		fs_warn("credit: cannot roll receipts into a credit record: %s", strerror(-rolled));
}

int fs_credit_text(struct ledger *l, char **out)
{
	struct ledger_credit *v = NULL;
	size_t n = 0, len = 0;
	char hex[LEDGER_HEX_LEN], *buf = NULL;
	FILE *f;
	int rc = ledger_credit_list(l, &v, &n);

	if (rc < 0)
		return rc;
	if (!(f = open_memstream(&buf, &len))) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		ledger_hex(v[i].member, LEDGER_KEY_LEN, hex);
		fprintf(f, "%s %llu %llu\n", hex, (unsigned long long)v[i].uploaded,
		        (unsigned long long)v[i].downloaded);
	}
	free(v);
	if (fclose(f) || !buf)
		return -ENOMEM;
	*out = buf;
	return (int)len;
}

void fs_credit_print(const char *text, bool json)
{
	bool first = true;

	if (json)
		printf("[");
	else
		printf("%-16s  %14s  %14s  %s\n", "member", "uploaded", "downloaded", "ratio");
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		char line[LEDGER_HEX_LEN + 48], key[LEDGER_HEX_LEN], ratio[32] = "-";
		unsigned long long up, down;

		snprintf(line, sizeof line, "%.*s", (int)ll, p);
		p = nl ? nl + 1 : p + ll;
		if (sscanf(line, "%64s %llu %llu", key, &up, &down) != 3)
			continue;
		if (down)
			snprintf(ratio, sizeof ratio, "%.2f", (double)up / (double)down);
		if (json)
			printf("%s{\"member\":\"%s\",\"uploaded\":%llu,\"downloaded\":%llu,"
			       "\"ratio\":%s}",
			       first ? "" : ",", key, up, down, down ? ratio : "null");
		else
			printf("%.16s  %14llu  %14llu  %s\n", key, up, down, ratio);
		first = false;
	}
	if (json)
		printf("]\n");
}
