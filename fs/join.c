/* A private drive's door: the genesis over the members-only channel, and a newcomer's
 * first steps inside (see join.h). */
#include "join.h"

#include "drive.h"
#include "fs.h"
#include "sync.h"
#include "uri.h"

#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOIN_PEERS_MAX  64         /* members handshaking at once; more are ignored */
#define JOIN_MSG_MAX    (1u << 20) /* what a joiner takes in one message (a genesis) */
#define REFUSED_WAIT_MS 2000       /* after a refusal, how long another member may still admit us */

struct join_event {
	struct join_event *next;
	uint64_t peer;
	int kind; /* 0 up, 1 down, 2 message */
	size_t len;
	uint8_t msg[];
};

struct join_peer {
	uint64_t id;
	struct ledger_hs *hs;
	bool asked;
};

struct fs_join {
	uint8_t id[32];
	const struct ledger_key *key;
	uint8_t invite[32];
	bool has_invite;
	pthread_mutex_t mu; /* guards the event queue */
	struct join_event *head, *tail;
	size_t queued; /* bytes queued: a flooding peer is cut off, not buffered */
	struct join_peer peers[JOIN_PEERS_MAX];
	size_t n_peers;
	char refused[128]; /* the last reason a member gave */
	size_t n_refused;
};

int fs_join_new(const uint8_t id[32], const struct ledger_key *key, const uint8_t *invite,
                struct fs_join **out)
{
	struct fs_join *j = calloc(1, sizeof *j);

	if (!j)
		return -ENOMEM;
	memcpy(j->id, id, 32);
	j->key = key;
	if (invite) {
		memcpy(j->invite, invite, 32);
		j->has_invite = true;
	}
	pthread_mutex_init(&j->mu, NULL);
	*out = j;
	return 0;
}

void fs_join_free(struct fs_join *j)
{
	if (!j)
		return;
	for (struct join_event *e = j->head, *n; e; e = n) {
		n = e->next;
		free(e);
	}
	for (size_t i = 0; i < j->n_peers; i++)
		ledger_hs_free(j->peers[i].hs);
	pthread_mutex_destroy(&j->mu);
	memset(j->invite, 0, sizeof j->invite);
	free(j);
}

static void push(struct fs_join *j, int kind, uint64_t peer, const void *msg, size_t len)
{
	struct join_event *e;

	pthread_mutex_lock(&j->mu);
	if (j->queued + len > 4 * JOIN_MSG_MAX) {
		pthread_mutex_unlock(&j->mu);
		return;
	}
	if (!(e = malloc(sizeof *e + len))) {
		pthread_mutex_unlock(&j->mu);
		return;
	}
	e->next = NULL;
	e->peer = peer;
	e->kind = kind;
	e->len = len;
	if (len)
		memcpy(e->msg, msg, len);
	j->queued += len;
	if (j->tail)
		j->tail->next = e;
	else
		j->head = e;
	j->tail = e;
	pthread_mutex_unlock(&j->mu);
}

void fs_join_on_peer(struct swarm_torrent *t, void *tctx, uint64_t peer, bool up, void *ctx)
{
	(void)t;
	(void)ctx;
	if (tctx)
		push(tctx, up ? 0 : 1, peer, NULL, 0);
}

void fs_join_on_message(struct swarm_torrent *t, void *tctx, uint64_t peer, const void *msg,
                        size_t len, void *ctx)
{
	(void)t;
	(void)ctx;
	if (tctx && len <= JOIN_MSG_MAX + 1)
		push(tctx, 2, peer, msg, len);
}

static struct join_peer *peer_of(struct fs_join *j, uint64_t id)
{
	for (size_t i = 0; i < j->n_peers; i++)
		if (j->peers[i].id == id)
			return &j->peers[i];
	return NULL;
}

static void peer_forget(struct fs_join *j, struct join_peer *p)
{
	ledger_hs_free(p->hs);
	*p = j->peers[--j->n_peers];
}

/* Seal and send a small dict {m: name}. */
static int ask(struct swarm_torrent *t, struct join_peer *p, const char *name)
{
	char plain[64];
	uint8_t *box;
	size_t len;
	int n = snprintf(plain, sizeof plain, "d1:m%zu:%se", strlen(name), name), rc;

	rc = ledger_hs_seal(p->hs, (const uint8_t *)plain, (size_t)n, &box, &len);
	if (rc)
		return rc;
	rc = fs_sync_send(t, p->id, box, len);
	free(box);
	return rc;
}

/* The value of a bencoded string key in a small flat dict, by a plain scan (the joiner
 * has no ledger decoder of its own: the genesis is checked by hash, the rest is text). */
static bool dict_str(const uint8_t *d, size_t len, const char *key, const uint8_t **out,
                     size_t *out_len)
{
	char pat[32];
	int pl = snprintf(pat, sizeof pat, "%zu:%s", strlen(key), key);
	const uint8_t *p = memmem(d, len, pat, (size_t)pl), *end = d + len;
	size_t n = 0;

	if (!p || p == d || (p[-1] != 'd' && p[-1] != 'e' && (p[-1] < '0' || p[-1] > '9')))
		return false;
	for (p += pl; p < end && *p >= '0' && *p <= '9' && n < JOIN_MSG_MAX; p++)
		n = n * 10 + (size_t)(*p - '0');
	if (p >= end || *p != ':' || (size_t)(end - p - 1) < n)
		return false;
	*out = p + 1;
	*out_len = n;
	return true;
}

/* One message from a member. 1 with the genesis, 0 to go on, <0 for this peer's end. */
static int on_message(struct fs_join *j, struct swarm_torrent *t, struct join_peer *p,
                      const uint8_t *frag, size_t flen, uint8_t **out, size_t *out_len)
{
	const uint8_t *msg = frag + 1, *v;
	size_t len = flen - 1, vl;
	uint8_t *reply, *plain = NULL, h[32];
	size_t rl, pl;
	int rc = 0;

	if (flen < 1 || frag[0] != 0)
		return -EBADMSG; /* nothing a joiner is sent comes in pieces */
	if (!ledger_hs_peer(p->hs) && ledger_hs_is_hello(msg, len)) {
		if ((rc = ledger_hs_on_hello(p->hs, msg, len, &reply, &rl)))
			return rc;
		rc = fs_sync_send(t, p->id, reply, rl);
		free(reply);
		return rc < 0 ? rc : 0;
	}
	if (!ledger_hs_established(p->hs)) {
		if ((rc = ledger_hs_on_auth(p->hs, msg, len)))
			return rc;
		p->asked = true;
		return ask(t, p, "getgenesis");
	}
	if ((rc = ledger_hs_open(p->hs, msg, len, &plain, &pl)))
		return rc;
	if (dict_str(plain, pl, "m", &v, &vl) && vl == 7 && !memcmp(v, "genesis", 7) &&
	    dict_str(plain, pl, "g", &v, &vl)) {
		ledger_digest(v, vl, h);
		if (memcmp(h, j->id, 32)) {
			rc = -EBADMSG; /* not this drive's: whoever sent it is no member */
		} else if ((*out = malloc(vl))) {
			memcpy(*out, v, vl);
			*out_len = vl;
			rc = 1;
		} else {
			rc = -ENOMEM;
		}
	} else if (dict_str(plain, pl, "m", &v, &vl) && vl == 7 && !memcmp(v, "refused", 7)) {
		if (dict_str(plain, pl, "why", &v, &vl)) {
			snprintf(j->refused, sizeof j->refused, "%.*s", (int)(vl < 100 ? vl : 100),
			         v);
			for (char *c = j->refused; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?'; /* a peer's words reach the terminal */
		}
		j->n_refused++;
		rc = -EACCES;
	}
	/* anything else (a member's status, sent to one it admits) waits for the genesis */
	free(plain);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fs_join_run(struct fs_join *j, struct swarm_torrent *t, const struct fs_uri *u, int timeout_ms,
                uint8_t **out, size_t *out_len)
{
	int64_t end = now_ms() + timeout_ms, refused_at = 0;
	int rc = 0;

	while (rc != 1 && now_ms() < end &&
	       !(refused_at && now_ms() > refused_at + REFUSED_WAIT_MS)) {
		struct join_event *e;

		pthread_mutex_lock(&j->mu);
		e = j->head;
		if (e) {
			j->head = e->next;
			if (!j->head)
				j->tail = NULL;
			j->queued -= e->len;
		}
		pthread_mutex_unlock(&j->mu);
		if (!e) {
			usleep(10 * 1000);
			continue;
		}
		struct join_peer *p = peer_of(j, e->peer);

		if (e->kind == 0 && !p && j->n_peers < JOIN_PEERS_MAX) {
			uint8_t *hello;
			size_t hl;

			p = &j->peers[j->n_peers];
			*p = (struct join_peer){ .id = e->peer };
			if (ledger_hs_new(j->id, j->key, j->has_invite ? j->invite : NULL,
			                  &p->hs) == 0 &&
			    ledger_hs_hello(p->hs, &hello, &hl) == 0) {
				j->n_peers++;
				fs_sync_send(t, p->id, hello, hl);
				free(hello);
			} else {
				ledger_hs_free(p->hs);
			}
		} else if (e->kind == 1 && p) {
			peer_forget(j, p);
		} else if (e->kind == 2 && p) {
			int r = on_message(j, t, p, e->msg, e->len, out, out_len);

			if (r == 1)
				rc = 1;
			else if (r < 0) {
				if (r == -EACCES && !refused_at)
					refused_at = now_ms();
				else if (r != -EACCES)
					fs_info("join: member %llu: %s", (unsigned long long)p->id,
					        strerror(-r));
				swarm_ext_drop(t, p->id);
				peer_forget(j, p);
			}
		}
		free(e);
	}
	if (rc == 1)
		return 0;
	if (j->n_refused) {
		char id8[9];

		snprintf(id8, sizeof id8, "%.8s", u->drive_id);
		if (!strcmp(j->refused, "not a member of this drive"))
			fs_err("not a member of drive %s (%s): ask a member for an invite (swarmfs "
			       "invite)",
			       u->name ? u->name : "?", id8);
		else
			fs_err("drive %s (%s) refused us: %s%s", u->name ? u->name : "?", id8,
			       j->refused,
			       strstr(j->refused, "invite")
			           ? ": ask a member for a new one (swarmfs "
			             "invite)"
			           : "");
		return -EACCES;
	}
	fs_err("no member of drive %s gave its genesis block within %d s (are its trackers and "
	       "peers right, and is a member mounted?)",
	       u->drive_id, timeout_ms / 1000);
	return -ETIMEDOUT;
}

/* ---- the invite, kept until redeemed ---- */

int fs_join_invite_save(const char *dir, const uint8_t secret[32])
{
	char path[4200], hex[65];

	snprintf(path, sizeof path, "%s/invite", dir);
	ledger_hex(secret, 32, hex);
	hex[64] = '\n';
	/* 0600 from the start: fs_write_file makes a temporary and renames it */
	mode_t old = umask(077);
	int rc = fs_write_file(path, hex, 65);

	umask(old);
	return rc;
}

int fs_join_invite_load(const char *dir, uint8_t out[32])
{
	char path[4200], hex[65];
	void *buf = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof path, "%s/invite", dir);
	if ((rc = fs_read_file(path, 128, &buf, &len)) < 0)
		return rc;
	if (len < 64) {
		free(buf);
		return -EINVAL;
	}
	memcpy(hex, buf, 64);
	hex[64] = '\0';
	free(buf);
	return ledger_unhex(hex, out, 32);
}

bool fs_join_tend(struct fs_drive *d, const uint8_t *invite)
{
	bool still = false;
	int rc;

	if (invite && d->key) {
		struct ledger_key *ik = NULL;
		uint8_t ikey[32];

		if (ledger_member_role(d->ledger, d->me)) {
			char path[4200];

			snprintf(path, sizeof path, "%s/invite", d->dir);
			unlink(path);
			fs_notice("drive %s: this node is a member now (invite redeemed)",
			          d->id_hex);
		} else if (ledger_invite_key(invite, &ik) == 0) {
			still = true;
			ledger_key_public(ik, ikey);
			ledger_key_free(ik);
			rc = ledger_invite_status(d->ledger, ikey, (int64_t)time(NULL), NULL);
			if (rc == 0 && (rc = ledger_invite_redeem(d->ledger, invite)) == 0)
				fs_info("drive %s: invite redeemed; waiting for a producer's block",
				        d->id_hex);
			else if (rc == -ESTALE || rc == -EKEYEXPIRED)
				fs_warn("drive %s: the invite cannot be redeemed: %s", d->id_hex,
				        rc == -ESTALE ? "it was used" : "it expired");
		}
	}
	rc = ledger_keys_tend(d->ledger);
	if (rc < 0)
		fs_warn("drive %s: cannot seal the epoch key to new members: %s", d->id_hex,
		        strerror(-rc));
	return still;
}
