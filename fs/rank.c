/* Credit ranks: members with more credit are served first (see rank.h). */
#include "rank.h"

#include "drive.h"
#include "fs.h"
#include "json.h"
#include "status.h"

#include <swarm.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEERS_SHOWN 64 /* a report must fit an xattr value (64 KiB) */

struct ranked {
	uint8_t key[LEDGER_KEY_LEN];
	char host[64];
	uint16_t port;
	int rank;
};

struct fs_rank {
	pthread_mutex_t mu; /* guards v, n */
	struct ranked *v;
	size_t n;
};

int fs_rank_new(struct fs_rank **out)
{
	struct fs_rank *r = calloc(1, sizeof *r);

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

void fs_rank_free(struct fs_rank *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->v);
	free(r);
}

int fs_rank_of(uint64_t uploaded, uint64_t downloaded)
{
	return uploaded > downloaded ? 3 : uploaded == downloaded ? 2 : 1;
}

static const struct ledger_credit *credit_of(const struct ledger_credit *c, size_t n,
                                             const uint8_t key[LEDGER_KEY_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(c[i].member, key, LEDGER_KEY_LEN))
			return &c[i];
	return NULL;
}

void fs_rank_update(struct fs_rank *r, struct fs_drive *d, const struct fs_rank_member *v, size_t n)
{
	struct ledger_credit *c = NULL;
	size_t nc = 0;
	struct ranked *nv = n ? calloc(n, sizeof *nv) : NULL;
	struct swarm_rank *sr = n ? calloc(n, sizeof *sr) : NULL;
	size_t ns = 0;
	int err;

	if (n && (!nv || !sr)) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = ledger_credit_list(d->ledger, &c, &nc)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct ledger_credit *m = credit_of(c, nc, v[i].key);

		memcpy(nv[i].key, v[i].key, LEDGER_KEY_LEN);
		memcpy(nv[i].host, v[i].host, sizeof nv[i].host);
		nv[i].port = v[i].port;
		nv[i].rank = m ? fs_rank_of(m->uploaded, m->downloaded) : 2;
	}
	/* one rank an address: the lowest of the members behind it */
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		while (k < ns && strcmp(sr[k].host, nv[i].host))
			k++;
		if (k == ns) {
			snprintf(sr[ns].host, sizeof sr[ns].host, "%.*s",
			         (int)sizeof sr[ns].host - 1, nv[i].host);
			sr[ns++].rank = nv[i].rank;
		} else if (nv[i].rank < sr[k].rank)
			sr[k].rank = nv[i].rank;
	}
	if (d->swarm && (err = swarm_session_set_ranks(d->swarm, sr, ns)) < 0)
		goto out;
	pthread_mutex_lock(&r->mu);
	free(r->v);
	r->v = nv;
	r->n = n;
	nv = NULL;
	pthread_mutex_unlock(&r->mu);
out:
	if (err < 0)
		fs_warn("credit: cannot rank the members: %s", strerror(-err));
	free(c);
	free(nv);
	free(sr);
}

/* ---- status: one row a peer ---- */

struct row {
	struct swarm_peer_info p;
	bool member;
	int rank; /* its credit rank now (0: not a member on the channel) */
	uint8_t key[LEDGER_KEY_LEN];
	char name[LEDGER_DISPLAY_NAME_MAX + 1];
};

/* The session's peers, each matched with the member at its address and port. */
static size_t rows_take(struct fs_rank *r, struct fs_drive *d, struct row **out)
{
	struct swarm_peer_info *p = NULL;
	struct row *rows;
	int got = 0;

	*out = NULL;
	if (!d->swarm)
		return 0;
	for (size_t cap = 32;; cap *= 2) {
		free(p);
		if (!(p = malloc(cap * sizeof *p)))
			return 0;
		got = swarm_session_peers(d->swarm, p, cap);
		if (got < 0 || (size_t)got <= cap)
			break;
	}
	if (got <= 0 || !(rows = calloc((size_t)got, sizeof *rows))) {
		free(p);
		return 0;
	}
	for (int i = 0; i < got; i++) {
		rows[i].p = p[i];
		if (!r)
			continue;
		pthread_mutex_lock(&r->mu);
		for (size_t k = 0; k < r->n && !rows[i].member; k++) {
			if (r->v[k].port != p[i].port || strcmp(r->v[k].host, p[i].host))
				continue;
			rows[i].member = true;
			rows[i].rank = r->v[k].rank;
			memcpy(rows[i].key, r->v[k].key, LEDGER_KEY_LEN);
		}
		pthread_mutex_unlock(&r->mu);
		if (rows[i].member)
			ledger_member_name(d->ledger, rows[i].key, rows[i].name);
	}
	free(p);
	*out = rows;
	return (size_t)got;
}

static void who(const struct row *w, char *buf, size_t len)
{
	char hex[LEDGER_HEX_LEN];

	if (!w->member) {
		snprintf(buf, len, "-");
		return;
	}
	ledger_hex(w->key, LEDGER_KEY_LEN, hex);
	if (*w->name)
		snprintf(buf, len, "%.16s (%s)", hex, w->name);
	else
		snprintf(buf, len, "%.16s", hex);
}

void fs_rank_status_text(struct fs_rank *r, struct fs_drive *d, char **buf, size_t *len)
{
	struct row *rows;
	size_t n = rows_take(r, d, &rows);
	char w[LEDGER_HEX_LEN + LEDGER_DISPLAY_NAME_MAX + 8];

	for (size_t i = 0; i < n && i < MAX_PEERS_SHOWN; i++) {
		who(&rows[i], w, sizeof w);
		fs_text_add(buf, len,
		            "peer: %s port %u, member %s, credit rank %d, down %llu B/s, up %llu "
		            "B/s\n",
		            rows[i].p.host, rows[i].p.port, w, rows[i].rank,
		            (unsigned long long)rows[i].p.download_rate,
		            (unsigned long long)rows[i].p.upload_rate);
	}
	free(rows);
}

void fs_rank_status_json(struct fs_rank *r, struct fs_drive *d, struct fs_json *j)
{
	struct row *rows;
	size_t n = rows_take(r, d, &rows);

	fs_json_array_begin(j, "peer_list");
	for (size_t i = 0; i < n && i < MAX_PEERS_SHOWN; i++) {
		const struct row *w = &rows[i];

		fs_json_object_begin(j, NULL);
		fs_json_str(j, "host", w->p.host);
		fs_json_uint(j, "port", w->p.port);
		if (w->member)
			fs_json_hex(j, "member", w->key, LEDGER_KEY_LEN);
		else
			fs_json_null(j, "member");
		fs_json_str(j, "name", w->name);
		fs_json_int(j, "rank", w->rank);
		fs_json_int(j, "connection_rank", w->p.rank);
		fs_json_uint(j, "connections", w->p.connections);
		fs_json_uint(j, "download_rate", w->p.download_rate);
		fs_json_uint(j, "upload_rate", w->p.upload_rate);
		fs_json_uint(j, "downloaded", w->p.total_downloaded);
		fs_json_uint(j, "uploaded", w->p.total_uploaded);
		fs_json_object_end(j);
	}
	fs_json_array_end(j);
	free(rows);
}

void fs_rank_status_watch(struct fs_rank *r, struct fs_drive *d, char **buf, size_t *len)
{
	struct row *rows;
	size_t n = rows_take(r, d, &rows);
	char w[LEDGER_HEX_LEN + LEDGER_DISPLAY_NAME_MAX + 8], a[16], b[16], addr[80];

	if (!n)
		return;
	fs_text_add(buf, len, "\n%-22s %4s %9s %9s  %s\n", "PEER", "RANK", "DOWN/s", "UP/s",
	            "MEMBER");
	for (size_t i = 0; i < n && i < 20; i++) {
		who(&rows[i], w, sizeof w);
		fs_human(rows[i].p.download_rate, a, sizeof a);
		fs_human(rows[i].p.upload_rate, b, sizeof b);
		snprintf(addr, sizeof addr, "%s:%u", rows[i].p.host, rows[i].p.port);
		fs_text_add(buf, len, "%-22s %4d %9s %9s  %s\n", addr, rows[i].rank, a, b, w);
	}
	if (n > 20)
		fs_text_add(buf, len, "(%zu more)\n", n - 20);
	free(rows);
}
