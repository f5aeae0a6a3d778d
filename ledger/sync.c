/* The sync state machine: status, getblocks, blocks and tx over an opaque transport.
 * A node asks a peer that announces a heavier chain for the blocks after the last
 * block they share (found with a locator of exponentially spaced ids), applies them
 * in batches and asks again until it has caught up. Anything invalid or oversized
 * drops the peer. Messages to send are collected while the ledger lock is held and
 * handed to the transport after it is released. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DENIED_MAX     8 /* peers whose "not a member" refusals of us are remembered */
#define LOCATOR_MAX    64
#define REFUSE_GRACE_S 2    /* seconds a refused peer has to read why before we drop it */
#define TX_MAX         1024 /* records per tx message */

/* How far a peer of a private drive is trusted (public drives: TRUSTED at once). */
enum trust {
	HANDSHAKE,   /* hello/auth under way: only those two messages are taken */
	PROVISIONAL, /* authenticated, but not a member at our head: maybe one we do not know
	              * yet (we are behind). We take its status and the blocks we ask it
	              * for, and send it nothing of the ledger; while it is ahead of us its
	              * gossip (tx, receipt) is set aside, anything else refuses it. It is
	              * refused when we have caught up with it and it is still no member,
	              * or when it gave us no block we lacked for LEDGER_SYNC_PROVISIONAL_S
	              * (counted while we are a member at our own head) */
	TRUSTED,     /* a live member at our head, or holder of a usable invite */
	REFUSED,     /* told why; dropped by itself on reading it, or by us soon after */
};

struct sync_peer {
	uint64_t id;
	struct ledger_hs *hs; /* private drives: the handshake and sealed channel */
	enum trust trust;
	int64_t since; /* when it became PROVISIONAL or last moved our head (seconds) */
	bool have_status;
	int64_t weight;
	int64_t height;
	uint8_t head[32];
	bool inflight;  /* a getblocks is unanswered */
	bool pipelined; /* the next batch was asked for before this one was applied */
};

struct outmsg {
	uint64_t peer;
	uint8_t *buf; /* NULL: drop the peer */
	size_t len;
	const char *why;
	bool ban; /* dropped for misbehaving */
};

struct ledger_sync {
	struct ledger *l;
	struct ledger_sync_ops ops;
	void *ctx;
	bool private_drive;
	uint8_t invite[LEDGER_INVITE_SECRET_LEN]; /* the invite this node proves, if any */
	bool has_invite;
	char refused[128]; /* the last refusal a peer gave us since one admitted us, or "" */
	/* peers that refused us as no member while we are one at our head (they are
	 * behind): since when, until one of them admits us */
	struct denied {
		uint8_t key[LEDGER_KEY_LEN];
		int64_t since;
	} denied[DENIED_MAX];
	size_t n_denied;
	struct sync_peer *peers;
	size_t n_peers, cap_peers;
	struct outmsg *out;
	size_t n_out, cap_out;
};

int ledger_sync_new(struct ledger *l, const struct ledger_sync_ops *ops, void *ctx,
                    struct ledger_sync **out_sync)
{
	struct ledger_sync *s = calloc(1, sizeof *s);

	if (!s)
		return -ENOMEM;
	s->l = l;
	s->ops = *ops;
	s->ctx = ctx;
	s->private_drive = ledger_is_private(l);
	*out_sync = s;
	return 0;
}

void ledger_sync_set_invite(struct ledger_sync *s, const uint8_t *secret)
{
	if (secret) {
		memcpy(s->invite, secret, sizeof s->invite);
		s->has_invite = true;
	} else {
		seal_wipe(s->invite, sizeof s->invite);
		s->has_invite = false;
	}
}

static void flush(struct ledger_sync *s)
{
	struct outmsg *out = s->out;
	size_t n = s->n_out;

	s->out = NULL;
	s->n_out = s->cap_out = 0;
	for (size_t i = 0; i < n; i++) {
		if (out[i].buf)
			s->ops.send(out[i].peer, out[i].buf, out[i].len, s->ctx);
		else
			s->ops.drop(out[i].peer, out[i].why, out[i].ban, s->ctx);
		free(out[i].buf);
	}
	free(out);
}

void ledger_sync_free(struct ledger_sync *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_out; i++)
		free(s->out[i].buf);
	free(s->out);
	for (size_t i = 0; i < s->n_peers; i++)
		ledger_hs_free(s->peers[i].hs);
	free(s->peers);
	seal_wipe(s->invite, sizeof s->invite);
	free(s);
}

static struct sync_peer *peer_find(struct ledger_sync *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].id == id)
			return &s->peers[i];
	return NULL;
}

static void peer_remove(struct ledger_sync *s, uint64_t id)
{
	struct sync_peer *p = peer_find(s, id);

	if (p) {
		ledger_hs_free(p->hs);
		*p = s->peers[--s->n_peers];
	}
}

/* Queue a message; takes ownership of b's buffer (released either way). On a private
 * drive it is sealed for the peer now, in queue order, which is the order sent. */
static void queue(struct ledger_sync *s, uint64_t peer, struct ben_buf *b, const char *why)
{
	struct sync_peer *p;

	if (b && b->err) {
		ben_buf_release(b);
		return;
	}
	if (b && (p = peer_find(s, peer)) && p->hs) {
		uint8_t *sealed;
		size_t len;
		int rc = ledger_hs_seal(p->hs, b->p, b->len, &sealed, &len);

		ben_buf_release(b);
		if (rc)
			return;
		b->p = sealed;
		b->len = len;
	}
	if (s->n_out == s->cap_out) {
		size_t nc = s->cap_out ? s->cap_out * 2 : 8;
		struct outmsg *n = realloc(s->out, nc * sizeof *n);

		if (!n) {
			if (b)
				ben_buf_release(b);
			return;
		}
		s->out = n;
		s->cap_out = nc;
	}
	s->out[s->n_out++] = (struct outmsg){ peer, b ? b->p : NULL, b ? b->len : 0, why, !b };
	if (b)
		ben_buf_init(b); /* the buffer now belongs to the queue */
}

static void drop(struct ledger_sync *s, uint64_t peer, const char *why)
{
	char msg[64];

	snprintf(msg, sizeof msg, "%llu", (unsigned long long)peer);
	L_WARN(s->l, "sync: dropping peer %s: %s", msg, why);
	peer_remove(s, peer);
	queue(s, peer, NULL, why);
}

/* Queue the drop of a peer that was refused (no ban) rather than misbehaving. */
static void queue_drop(struct ledger_sync *s, uint64_t peer, const char *why, bool ban)
{
	queue(s, peer, NULL, why);
	if (s->n_out && !s->out[s->n_out - 1].buf && s->out[s->n_out - 1].peer == peer)
		s->out[s->n_out - 1].ban = ban;
}

/* Queue bytes as they are (a hello, or an auth sealed by the handshake); takes buf. */
static void queue_bytes(struct ledger_sync *s, uint64_t peer, uint8_t *buf, size_t len)
{
	struct ben_buf b;

	ben_buf_init(&b);
	b.p = buf;
	b.len = b.cap = len;
	if (s->n_out == s->cap_out) {
		size_t nc = s->cap_out ? s->cap_out * 2 : 8;
		struct outmsg *n = realloc(s->out, nc * sizeof *n);

		if (!n) {
			free(buf);
			return;
		}
		s->out = n;
		s->cap_out = nc;
	}
	s->out[s->n_out++] = (struct outmsg){ peer, buf, len, NULL, false };
}

/* Tell a peer of a private drive why it is refused (sealed: only it can read it), then
 * drop it. Nothing of the ledger went to it before. */
static void refuse(struct ledger_sync *s, struct sync_peer *p, const char *why)
{
	char key[LEDGER_HEX_LEN] = "?";
	const struct ledger_hs_peer *hp = p->hs ? ledger_hs_peer(p->hs) : NULL;
	struct ben_buf b;
	uint64_t id = p->id;

	if (hp)
		ledger_hex(hp->key, 8, key);
	L_NOTICE(s->l, "sync: refused peer %llu (key %s): %s", (unsigned long long)id, key, why);
	if (!hp) {
		peer_remove(s, id);
		queue_drop(s, id, why, false);
		return;
	}
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "refused");
	ben_put_key(&b, "why");
	ben_put_cstr(&b, why);
	ben_end(&b);
	queue(s, id, &b, NULL);
	/* a drop now could cut the refusal off in the transport's send buffer: the peer
	 * drops itself when it reads it, and rejudge_all drops it after REFUSE_GRACE_S */
	p->trust = REFUSED;
	p->since = ledger_now(s->l);
}

/* How far a peer that completed the handshake is trusted at our head, and when it is
 * not, why (lock held). */
static enum trust judge(struct ledger_sync *s, const struct sync_peer *p, const char **why)
{
	const struct ledger_hs_peer *hp = p->hs ? ledger_hs_peer(p->hs) : NULL; /* public: none */
	int rc;

	*why = "not a member of this drive";
	if (chain_member_role(s->l, hp->key))
		return TRUSTED;
	if (!hp->has_invite)
		return PROVISIONAL; /* a member we may not know of yet: we may be behind */
	rc = access_invite_usable(s->l, hp->invite, ledger_now(s->l));
	if (rc == 0)
		return TRUSTED;
	*why = rc == -ESTALE        ? "invite already used"
	       : rc == -EKEYEXPIRED ? "invite expired"
	       : rc == -ENOENT      ? "invite unknown to this member"
	                            : "invite not usable";
	return HANDSHAKE; /* refuse */
}

/* This node is a member at its own head (lock held). */
static bool self_member(struct ledger_sync *s)
{
	return s->l->cfg.key && chain_member_role(s->l, s->l->cfg.key->pub);
}

static void queue_status(struct ledger_sync *s, uint64_t peer);
static void queue_tx(struct ledger_sync *s, uint64_t peer);

/* Judge an authenticated peer again (after the handshake, and whenever our head moved):
 * promote, keep, or refuse it. Returns false if it was refused (lock held). */
static bool rejudge(struct ledger_sync *s, struct sync_peer *p)
{
	const char *why;
	enum trust t = judge(s, p, &why);

	if (t == TRUSTED && p->trust != TRUSTED) {
		char key[LEDGER_HEX_LEN];

		ledger_hex(ledger_hs_peer(p->hs)->key, 8, key);
		L_INFO(s->l, "sync: admitted peer %llu (key %s)", (unsigned long long)p->id, key);
		p->trust = TRUSTED;
		queue_status(s, p->id);
		queue_tx(s, p->id);
		return true;
	}
	if (t == TRUSTED)
		return true;
	if (t == PROVISIONAL && p->trust == HANDSHAKE) {
		p->trust = PROVISIONAL;
		p->since = ledger_now(s->l);
		return true;
	}
	/* not even a member at our own head (a joiner that has the genesis only): we are
	 * behind, and judge nobody by it; the window starts once we know ourselves */
	if (t == PROVISIONAL && p->trust == PROVISIONAL && !self_member(s))
		p->since = ledger_now(s->l);
	if (t == PROVISIONAL && p->trust == PROVISIONAL &&
	    ledger_now(s->l) - p->since < LEDGER_SYNC_PROVISIONAL_S)
		return true;
	/* an invite that no longer admits it, a member removed meanwhile, or a stranger
	 * that showed us nothing we lacked in time */
	refuse(s, p, p->trust == TRUSTED && t == PROVISIONAL ? "removed from this drive" : why);
	return false;
}

static void rejudge_all(struct ledger_sync *s)
{
	for (size_t i = 0; i < s->n_peers;) {
		struct sync_peer *p = &s->peers[i];

		if (p->trust == REFUSED) {
			if (ledger_now(s->l) - p->since < REFUSE_GRACE_S) {
				i++;
				continue;
			}
			uint64_t id = p->id;

			peer_remove(s, id); /* its slot now holds another: look at it again */
			queue_drop(s, id, "refused", false);
			continue;
		}
		if (p->hs && p->trust != HANDSHAKE)
			rejudge(s, p);
		i++;
	}
}

static void queue_status(struct ledger_sync *s, uint64_t peer)
{
	struct ledger_head head;
	struct ben_buf b;

	if (chain_head(s->l, &head))
		return;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "g");
	ben_put_str(&b, s->l->drive, 32);
	ben_put_key(&b, "h");
	ben_put_int(&b, (int64_t)head.height);
	ben_put_key(&b, "id");
	ben_put_str(&b, head.id, 32);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "status");
	ben_put_key(&b, "w");
	ben_put_int(&b, (int64_t)head.weight);
	ben_end(&b);
	queue(s, peer, &b, NULL);
}

static void queue_getblocks(struct ledger_sync *s, struct sync_peer *p)
{
	struct ledger_head head;
	struct ben_buf b;
	uint64_t step = 1, h;
	int n = 0;

	if (chain_head(s->l, &head))
		return;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "loc");
	ben_list_begin(&b);
	/* head, head-1, head-2, head-4 ... genesis: finds the fork point in one trip */
	for (h = head.height;; h = h > step ? h - step : 0) {
		uint8_t id[32];

		if (chain_id_at(s->l, (int64_t)h, id) == 0) {
			ben_put_str(&b, id, 32);
			n++;
		}
		if (h == 0 || n >= LOCATOR_MAX - 1)
			break;
		if (n > 1)
			step *= 2;
	}
	if (h != 0) {
		uint8_t id[32];

		if (chain_id_at(s->l, 0, id) == 0)
			ben_put_str(&b, id, 32);
	}
	ben_end(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "getblocks");
	ben_put_key(&b, "n");
	ben_put_int(&b, LEDGER_SYNC_BATCH);
	ben_end(&b);
	p->inflight = true;
	queue(s, p->id, &b, NULL);
}

static bool peer_is_ahead(struct ledger_sync *s, const struct sync_peer *p)
{
	struct ledger_head head;

	if (!p->have_status || chain_head(s->l, &head))
		return false;
	return p->weight > (int64_t)head.weight ||
	       (p->weight == (int64_t)head.weight && memcmp(p->head, head.id, 32) < 0);
}

int ledger_sync_peer_connected(struct ledger_sync *s, uint64_t peer)
{
	if (!peer_find(s, peer)) {
		if (s->n_peers == s->cap_peers) {
			size_t nc = s->cap_peers ? s->cap_peers * 2 : 8;
			struct sync_peer *n = realloc(s->peers, nc * sizeof *n);

			if (!n)
				return -ENOMEM;
			s->peers = n;
			s->cap_peers = nc;
		}
		struct sync_peer *p = &s->peers[s->n_peers];

		memset(p, 0, sizeof *p);
		p->id = peer;
		p->trust = TRUSTED;
		if (s->private_drive) {
			uint8_t *hello;
			size_t len;
			int rc = s->l->cfg.key
			             ? ledger_hs_new(s->l->drive, s->l->cfg.key,
			                             s->has_invite ? s->invite : NULL, &p->hs)
			             : -ENOKEY;

			if (rc)
				return rc; /* no key, no channel: a read-only node cannot sync */
			if ((rc = ledger_hs_hello(p->hs, &hello, &len))) {
				ledger_hs_free(p->hs);
				return rc;
			}
			p->trust = HANDSHAKE;
			s->n_peers++;
			queue_bytes(s, peer, hello, len);
			flush(s);
			return 0;
		}
		s->n_peers++;
	}
	ledger_lock(s->l);
	queue_status(s, peer);
	ledger_unlock(s->l);
	flush(s);
	return 0;
}

/* A private drive's peer's hello or auth. 0 when handled, -EBADMSG to drop the peer
 * (lock held). */
static int private_message(struct ledger_sync *s, struct sync_peer *p, const uint8_t *buf,
                           size_t len)
{
	uint8_t *auth;
	size_t alen;
	int rc;

	if (!ledger_hs_peer(p->hs) && ledger_hs_is_hello(buf, len)) {
		rc = ledger_hs_on_hello(p->hs, buf, len, &auth, &alen);
		if (rc)
			return -EBADMSG;
		queue_bytes(s, p->id, auth, alen);
		return 0;
	}
	if (ledger_hs_on_auth(p->hs, buf, len))
		return -EBADMSG;
	rejudge(s, p);
	return 0;
}

void ledger_sync_peer_gone(struct ledger_sync *s, uint64_t peer)
{
	peer_remove(s, peer);
}

/* The entry of denied for key, or NULL. */
static struct denied *denied_find(struct ledger_sync *s, const uint8_t *key)
{
	for (size_t i = 0; i < s->n_denied; i++)
		if (!memcmp(s->denied[i].key, key, LEDGER_KEY_LEN))
			return &s->denied[i];
	return NULL;
}

/* The peer with key admitted us: its past refusals are forgotten (lock held). */
static void denied_forget(struct ledger_sync *s, const uint8_t *key)
{
	struct denied *d = denied_find(s, key);

	if (d)
		memmove(d, d + 1, (size_t)(s->denied + --s->n_denied - d) * sizeof *d);
}

/* The peer with key refused us as no member while we are one at our head: it has not
 * applied the block that admitted us (it is behind us, or we dialled it before that
 * block reached it). True once its refusals have gone on for LEDGER_SYNC_PROVISIONAL_S
 * with no admission between: time enough to catch up, so something else is wrong (it
 * is on a branch without us, or we were removed and do not know it yet). The oldest
 * entry makes room for a new one (lock held). */
static bool denied_persists(struct ledger_sync *s, const uint8_t *key)
{
	struct denied *d = denied_find(s, key);
	int64_t now = ledger_now(s->l);

	if (d)
		return now - d->since >= LEDGER_SYNC_PROVISIONAL_S;
	if (s->n_denied == DENIED_MAX)
		denied_forget(s, s->denied[0].key);
	memcpy(s->denied[s->n_denied].key, key, LEDGER_KEY_LEN);
	s->denied[s->n_denied++].since = now;
	return false;
}

static int on_status(struct ledger_sync *s, struct sync_peer *p, struct ben d)
{
	uint8_t g[32];

	if (!ben_get_fixed(d, "g", g, 32) || !ben_get_fixed(d, "id", p->head, 32) ||
	    !ben_get_int(d, "w", &p->weight) || p->weight < 0)
		return -EBADMSG;
	if (memcmp(g, s->l->drive, 32))
		return -EBADMSG; /* another drive: this peer has no business here */
	if (!ben_get_int(d, "h", &p->height) || p->height < 0)
		p->height = 0; /* optional: only progress reports use it */
	p->have_status = true;
	if (p->hs) { /* a private drive's peer sends its status only to peers it admitted */
		denied_forget(s, ledger_hs_peer(p->hs)->key);
		s->refused[0] = '\0'; /* whatever refused us before, we are in now */
	}
	if (!p->inflight && peer_is_ahead(s, p))
		queue_getblocks(s, p);
	else if (p->trust == PROVISIONAL && !p->inflight)
		refuse(s, p, "not a member of this drive"); /* it has nothing we lack */
	return 0;
}

static int on_getgenesis(struct ledger_sync *s, struct sync_peer *p)
{
	struct ben_buf b;

	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "g");
	ben_put_str(&b, s->l->genesis, s->l->genesis_len);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "genesis");
	ben_end(&b);
	queue(s, p->id, &b, NULL);
	return 0;
}

static int on_refused(struct ledger_sync *s, struct sync_peer *p, struct ben d)
{
	const struct ledger_hs_peer *hp = p->hs ? ledger_hs_peer(p->hs) : NULL; /* public: none */
	char why[sizeof s->refused];
	const uint8_t *w;
	size_t wl;

	if (!ben_get_bytes(d, "why", &w, &wl))
		return -EBADMSG;
	snprintf(why, sizeof why, "%.*s", (int)(wl < 100 ? wl : 100), w);
	for (char *c = why; *c; c++) /* a peer's words reach our log: no controls */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	memcpy(s->refused, why, sizeof s->refused);
	/* a member refused as no member by a peer that has not caught up with us: no
	 * alarm, unless it goes on; the peer is dialled again (the transport's peer list)
	 * and admits us once it has the block with our member record */
	if (hp && self_member(s) && !strcmp(why, "not a member of this drive") &&
	    !denied_persists(s, hp->key)) {
		char key[LEDGER_HEX_LEN];

		ledger_hex(hp->key, 8, key);
		L_NOTICE(s->l,
		         "sync: peer %llu (key %s) does not know us as a member yet (it is "
		         "behind us): dropped until it catches up",
		         (unsigned long long)p->id, key);
	} else {
		L_WARN(s->l, "sync: peer %llu refused us: %s", (unsigned long long)p->id, why);
	}
	uint64_t id = p->id;

	peer_remove(s, id);
	queue_drop(s, id, "it refused us", false);
	return 0;
}

static int on_getblocks(struct ledger_sync *s, struct sync_peer *p, struct ben d)
{
	struct ledger_head head;
	struct ben loc, v;
	struct ben_iter it;
	struct ben_buf b;
	int64_t n, start = 1, h;
	size_t total = 0, count = 0;

	if (!ben_dict_get(d, "loc", &loc) || ben_type(loc) != 'l' || !ben_get_int(d, "n", &n) ||
	    n < 0)
		return -EBADMSG;
	if (n > LEDGER_SYNC_BATCH)
		n = LEDGER_SYNC_BATCH;
	ben_iter_init(loc, &it);
	while (ben_iter_next(&it, &v)) {
		const uint8_t *id;
		size_t len;
		uint8_t at[32];

		if (++count > LOCATOR_MAX || !ben_str(v, &id, &len) || len != 32)
			return -EBADMSG;
		/* the first locator id on our best chain is where the peer forked off */
		{
			static const char q[] = "SELECT height FROM blocks WHERE id = ?";
			sqlite3_stmt *st = store_stmt(s->l, q);
			int64_t bh = -1;

			if (!st)
				return -EIO;
			sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW)
				bh = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			if (bh >= 0 && chain_id_at(s->l, bh, at) == 0 && !memcmp(at, id, 32)) {
				start = bh + 1;
				break;
			}
		}
	}
	if (chain_head(s->l, &head))
		return -EIO;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "b");
	ben_list_begin(&b);
	for (h = start; h <= (int64_t)head.height && h < start + n; h++) {
		uint8_t id[32], *wire;
		size_t len;

		if (chain_id_at(s->l, h, id) || chain_block_wire(s->l, id, &wire, &len))
			break;
		if (total && total + len + 1024 > LEDGER_SYNC_MAX_MSG) {
			free(wire);
			break;
		}
		ben_put_raw(&b, wire, len);
		total += len;
		free(wire);
	}
	ben_end(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "blocks");
	ben_end(&b);
	queue(s, p->id, &b, NULL);
	return 0;
}

/* A full batch means more to come, and so does a short one (cut by the message size
 * cap) whose last block is below the height the peer's status gave: ask for the blocks
 * after its last one now, before applying it, so the peer gathers and sends the next
 * batch while this one applies. Sent before the ledger lock is taken for the apply. A
 * batch that turns out not to apply only makes that answer useless (its blocks are
 * orphans; we ask again); a peer that lies about its height gets one getblocks more. */
static void ask_next(struct ledger_sync *s, struct sync_peer *p, struct ben list)
{
	struct ben v, last = { NULL, 0 };
	struct ben_iter it;
	struct blk_wire w;
	struct blk_hdr h;
	struct ben_buf b;
	size_t n = 0;

	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v)) {
		last = v;
		n++;
	}
	if (!n || blk_wire_parse(last.p, last.len, s->l->params.max_block_bytes,
	                         s->l->params.max_block_records, &w))
		return;
	free(w.recs);
	if (blk_hdr_decode(w.hdr.p, w.hdr.len, &h, false))
		return;
	if (n != LEDGER_SYNC_BATCH && !(p->have_status && h.height < p->height))
		return;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "loc");
	ben_list_begin(&b);
	ben_put_str(&b, h.id, 32);
	ben_end(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "getblocks");
	ben_put_key(&b, "n");
	ben_put_int(&b, LEDGER_SYNC_BATCH);
	ben_end(&b);
	if (!b.err && p->hs) {
		uint8_t *sealed;
		size_t len;

		if (ledger_hs_seal(p->hs, b.p, b.len, &sealed, &len) == 0) {
			s->ops.send(p->id, sealed, len, s->ctx);
			p->pipelined = true;
			free(sealed);
		}
	} else if (!b.err) {
		s->ops.send(p->id, b.p, b.len, s->ctx);
		p->pipelined = true;
	}
	ben_buf_release(&b);
}

/* A blocks message (called without the ledger lock): the blocks are parsed, then
 * applied by sync_apply_blocks (their records' signatures on every core, several
 * blocks to a transaction, the lock held about 50 ms at a time). */
static int on_blocks(struct ledger_sync *s, struct sync_peer *p, struct ben d, bool *changed)
{
	struct blk_wire w[LEDGER_SYNC_BATCH];
	struct ben list, v, raw[LEDGER_SYNC_BATCH];
	struct ben_iter it;
	size_t n = 0;
	bool head = false, bad = false;
	int rc = 0;

	if (!ben_dict_get(d, "b", &list) || ben_type(list) != 'l')
		return -EBADMSG;
	if (!p->inflight)
		return -EBADMSG; /* blocks only ever answer our getblocks */
	p->inflight = false;
	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v)) {
		if (n == LEDGER_SYNC_BATCH ||
		    blk_wire_parse(v.p, v.len, s->l->params.max_block_bytes,
		                   s->l->params.max_block_records, &w[n])) {
			bad = true; /* the blocks before it still apply */
			break;
		}
		raw[n++] = v;
	}
	if (n)
		rc = sync_apply_blocks(s->l, w, raw, n, p->pipelined, &head);
	*changed |= head;
	for (size_t i = 0; i < n; i++)
		free(w[i].recs);
	if (rc == 0 && bad)
		rc = -EBADMSG;
	if (rc == -EAGAIN)
		rc = 2; /* a block before its time by our clock (an out-of-turn producer's
		         * grace): the next status asks again, not now */
	else if (rc == -ENOENT)
		rc = 0; /* the peer's chain moved meanwhile: ask again below */
	else if (rc == -ENOMEM || rc == -EIO || rc == -EBUSY || rc == -ENOSPC)
		rc = 1; /* our problem, not the peer's */
	else if (rc < 0)
		rc = -EBADMSG;
	return rc;
}

/* After a blocks message: ask for more if the peer is still ahead (lock held). */
static void blocks_next(struct ledger_sync *s, struct sync_peer *p, int rc)
{
	if (p->pipelined)
		p->inflight = true; /* its answer is on the way */
	else if (rc == 0 && peer_is_ahead(s, p))
		queue_getblocks(s, p);
}

/* A tx message (called without the ledger lock). Cheap checks first: the records parse
 * and name this drive; each author is a member (or redeems a usable invite) and within
 * the mempool's quotas. Then the signatures, without the lock. A record by a
 * non-member or with a bad signature drops the peer; one that does not apply now may be
 * a race, not malice, and is left out. */
static int on_tx(struct ledger_sync *s, struct ben d, bool *added, const char **why)
{
	struct ben list, v, *raws = NULL;
	struct ben_iter it;
	struct rec *recs = NULL;
	size_t n = 0;
	int64_t total = 0, mine = 0;
	int rc = 0;

	if (!ben_dict_get(d, "r", &list) || ben_type(list) != 'l')
		return -EBADMSG;
	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v))
		n++;
	if (n > TX_MAX)
		return -EBADMSG;
	if (!n)
		return 0;
	recs = malloc(n * sizeof *recs);
	raws = malloc(n * sizeof *raws);
	if (!recs || !raws) {
		free(recs);
		free(raws);
		return -ENOMEM;
	}
	n = 0;
	ben_iter_init(list, &it);
	while (rc == 0 && ben_iter_next(&it, &v)) {
		raws[n] = v;
		if (rec_parse(v.p, v.len, s->l->params.max_record_bytes, &recs[n]) ||
		    memcmp(recs[n].drive, s->l->drive, 32))
			rc = -EBADMSG;
		n++;
	}
	ledger_lock(s->l);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct rec *r = &recs[i];

		if (!chain_member_role(s->l, r->author) &&
		    !(r->type == LEDGER_REC_REDEEM &&
		      access_invite_usable(s->l, r->ikey, ledger_now(s->l)) == 0)) {
			*why = "a record by a non-member";
			rc = -EBADMSG;
		} else if ((rc = chain_mempool_counts(s->l, r->author, &total, &mine)) == 0 &&
		           (total + (int64_t)n > LEDGER_MEMPOOL_MAX ||
		            mine + (int64_t)n > LEDGER_MEMPOOL_QUOTA)) {
			*why = "the mempool's quota is full";
			rc = -ENOSPC;
		}
	}
	ledger_unlock(s->l);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!ledger_dict_sig_verify(raws[i], recs[i].author, LEDGER_REC_TAG,
		                            LEDGER_TAG_LEN(LEDGER_REC_TAG))) {
			*why = "a record with a bad signature";
			rc = -EBADMSG;
		}
	if (rc == 0) {
		ledger_lock(s->l);
		rc = chain_mempool_add_batch(s->l, recs, raws, n);
		ledger_unlock(s->l);
		*added = rc > 0;
		rc = rc < 0 ? 1 : 0; /* a store error is ours, not the peer's */
	}
	free(recs);
	free(raws);
	return rc;
}

static void queue_tx(struct ledger_sync *s, uint64_t peer)
{
	static const char q[] = "SELECT raw FROM mempool ORDER BY seq LIMIT 1024";
	sqlite3_stmt *st = store_stmt(s->l, q);
	struct ben_buf b;
	size_t n = 0;

	if (!st)
		return;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "tx");
	ben_put_key(&b, "r");
	ben_list_begin(&b);
	while (sqlite3_step(st) == SQLITE_ROW) {
		ben_put_raw(&b, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
		n++;
	}
	sqlite3_reset(st);
	ben_end(&b);
	ben_end(&b);
	if (n)
		queue(s, peer, &b, NULL);
	else
		ben_buf_release(&b);
}

/* After a blocks message applied: a provisional peer we have caught up with (nothing
 * asked of it, not ahead of us) that is still no member at our head showed us all it
 * had: refused now, not at the end of its window (lock held). */
static void judge_caught_up(struct ledger_sync *s, uint64_t peer)
{
	struct sync_peer *p = peer_find(s, peer); /* rejudge_all may have moved it */

	if (p && p->trust == PROVISIONAL && !p->inflight && !peer_is_ahead(s, p))
		refuse(s, p, "not a member of this drive");
}

static void announce_locked(struct ledger_sync *s, uint64_t except)
{
	for (size_t i = 0; i < s->n_peers; i++) {
		if (s->peers[i].id == except || s->peers[i].trust != TRUSTED)
			continue;
		queue_status(s, s->peers[i].id);
	}
}

int ledger_sync_message(struct ledger_sync *s, uint64_t peer, const uint8_t *buf, size_t len)
{
	static const struct ben_limits lim = { LEDGER_SYNC_MAX_MSG, 8, 16u << 20 };
	struct ben d = { buf, len };
	struct sync_peer *p = peer_find(s, peer);
	const uint8_t *m;
	size_t ml;
	bool changed = false, added = false, settled = false, trusted, gossip, is_blocks, is_tx;
	const char *why = "invalid data";
	uint8_t *opened = NULL;
	int rc;

	if (!p) {
		rc = ledger_sync_peer_connected(s, peer);
		if (rc)
			return rc;
		p = peer_find(s, peer);
	}
	if (len > LEDGER_SYNC_MAX_MSG) {
		ledger_lock(s->l);
		drop(s, peer, "oversized message");
		rc = -EBADMSG;
		goto out;
	}
	/* a private drive's peer past its handshake: open the message (the channel needs no
	 * ledger lock); a forged, replayed or reordered one drops the peer */
	if (p->hs && ledger_hs_established(p->hs)) {
		rc = ledger_hs_open(p->hs, buf, len, &opened, &len);
		if (rc) {
			/* dropped, not banned: the member at the other end proved who it is,
			 * and whoever altered the message may sit on the path between us */
			ledger_lock(s->l);
			L_WARN(s->l, "sync: dropping peer %llu: %s", (unsigned long long)peer,
			       rc == -EBADMSG
			           ? "a sealed message did not open (forged, replayed or "
			             "reordered)"
			           : "out of memory");
			peer_remove(s, peer);
			queue_drop(s, peer, "a sealed message did not open", false);
			rc = -EBADMSG;
			goto out;
		}
		buf = opened;
		d = (struct ben){ buf, len };
	}
	/* the answer to our getblocks: ask for the next batch at once (pipelining) */
	p->pipelined = false;
	if ((!p->hs || opened) && p->inflight && !ben_check(buf, len, &lim) && ben_type(d) == 'd' &&
	    ben_get_bytes(d, "m", &m, &ml) && ml == 6 && !memcmp(m, "blocks", 6)) {
		struct ben list;

		if (ben_dict_get(d, "b", &list) && ben_type(list) == 'l')
			ask_next(s, p, list);
	}
	if (p->trust == REFUSED) { /* whatever it says now, it was told why */
		ledger_lock(s->l);
		rc = 0;
		goto out;
	}
	if (p->hs && !opened) { /* hello, auth */
		ledger_lock(s->l);
		rc = private_message(s, p, buf, len);
		if (rc < 0)
			drop(s, peer, "handshake failed");
		goto out;
	}
	if (ben_check(buf, len, &lim) || ben_type(d) != 'd' || !ben_get_bytes(d, "m", &m, &ml)) {
		ledger_lock(s->l);
		drop(s, peer, "malformed message");
		rc = -EBADMSG;
		goto out;
	}
	trusted = p->trust == TRUSTED;
	gossip = (ml == 2 && !memcmp(m, "tx", 2)) || (ml == 7 && !memcmp(m, "receipt", 7));
	is_blocks = ml == 6 && !memcmp(m, "blocks", 6);
	is_tx = ml == 2 && !memcmp(m, "tx", 2) && trusted;
	/* these two take the lock themselves, in short holds: signatures need none */
	if (is_blocks)
		rc = on_blocks(s, p, d, &changed);
	else if (is_tx)
		rc = on_tx(s, d, &added, &why);
	ledger_lock(s->l);
	if (is_blocks)
		blocks_next(s, p, rc);
	else if (is_tx)
		;
	else if (ml == 6 && !memcmp(m, "status", 6))
		rc = on_status(s, p, d);
	else if (ml == 9 && !memcmp(m, "getblocks", 9) && trusted)
		rc = on_getblocks(s, p, d);
	else if (ml == 10 && !memcmp(m, "getgenesis", 10) && trusted && p->hs)
		rc = on_getgenesis(s, p);
	else if (ml == 7 && !memcmp(m, "refused", 7) && p->hs)
		rc = on_refused(s, p, d);
	else if (ml == 7 && !memcmp(m, "receipt", 7) && trusted && p->hs)
		rc = credit_on_receipt(s->l, d);
	else if (gossip && p->trust == PROVISIONAL && (p->inflight || peer_is_ahead(s, p))) {
		/* a member admitted in blocks we lack trusts us and gossips at once: set
		 * aside, not refused (it is sent again once we admitted it) */
		L_DEBUG(s->l, "sync: peer %llu's %.*s set aside: not a member at our head yet",
		        (unsigned long long)peer, (int)ml, (const char *)m);
		rc = 0;
	} else if (!trusted && p->hs) {
		refuse(s, p, "not a member of this drive");
		rc = 0;
		goto out;
	} else
		rc = -EBADMSG;
	if (rc == -EBADMSG || rc == -ENOSPC) {
		/* a full quota is no misbehaviour: dropped, not banned */
		if (rc == -ENOSPC) {
			L_WARN(s->l, "sync: dropping peer %llu: %s", (unsigned long long)peer, why);
			peer_remove(s, peer);
			queue_drop(s, peer, why, false);
		} else {
			drop(s, peer, why);
		}
		rc = -EBADMSG;
		if (changed)
			announce_locked(s, peer);
		goto out;
	}
	settled = is_blocks && rc == 0;
	rc = rc < 0 ? rc : 0;
	if (added && s->l->cfg.auto_produce && s->l->cfg.key &&
	    chain_is_producer(s->l, s->l->cfg.key->pub) && chain_produce(s->l) > 0)
		changed = true;
	if (is_blocks && changed && p->trust == PROVISIONAL)
		p->since = ledger_now(s->l); /* it gave us blocks we lacked: a new window */
	if (changed && s->private_drive)
		rejudge_all(s); /* a removal may have applied; a provisional peer may be known */
	if (settled)
		judge_caught_up(s, peer);
	if (changed)
		announce_locked(s, changed && !added ? peer : UINT64_MAX);
out:
	ledger_unlock(s->l);
	flush(s);
	free(opened);
	return rc;
}

int ledger_sync_announce(struct ledger_sync *s)
{
	bool inflight = false;

	ledger_lock(s->l);
	/* a bulk page cache kept for blocks asked for: back once none are on their way
	 * (the peer went, or its answer did not come) */
	for (size_t i = 0; i < s->n_peers; i++)
		inflight |= s->peers[i].inflight;
	if (!inflight)
		sync_apply_idle(s->l);
	if (s->private_drive)
		rejudge_all(s);
	for (size_t i = 0; i < s->n_peers; i++) {
		if (s->peers[i].trust != TRUSTED)
			continue;
		queue_status(s, s->peers[i].id);
		queue_tx(s, s->peers[i].id);
	}
	ledger_unlock(s->l);
	flush(s);
	return 0;
}

int ledger_sync_progress(struct ledger_sync *s, struct ledger_sync_progress *out)
{
	memset(out, 0, sizeof *out);
	ledger_lock_read(s->l);
	snprintf(out->refused, sizeof out->refused, "%s", s->refused);
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct sync_peer *p = &s->peers[i];

		if (p->trust != TRUSTED)
			continue;
		out->peers++;
		if (!p->have_status)
			continue;
		if ((uint64_t)p->height > out->best_height)
			out->best_height = (uint64_t)p->height;
		if (peer_is_ahead(s, p))
			out->behind = true;
	}
	ledger_unlock(s->l);
	return 0;
}

/* ---- credit receipts over the sealed channel (DESIGN §11) ---- */

int ledger_sync_peer_key(struct ledger_sync *s, uint64_t peer, uint8_t out[LEDGER_KEY_LEN])
{
	struct sync_peer *p = peer_find(s, peer);
	const struct ledger_hs_peer *hp = p && p->hs ? ledger_hs_peer(p->hs) : NULL;

	if (!hp || p->trust != TRUSTED || !p->have_status)
		return -ENOENT; /* no status: it has not admitted us (yet) */
	memcpy(out, hp->key, LEDGER_KEY_LEN);
	return 0;
}

int ledger_sync_send_receipt(struct ledger_sync *s, uint64_t peer, const uint8_t *receipt,
                             size_t len)
{
	struct sync_peer *p = peer_find(s, peer);
	struct ben_buf b;

	if (!p || !p->hs || p->trust != TRUSTED || !p->have_status)
		return -ENOENT;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "receipt");
	ben_put_key(&b, "r");
	ben_put_str(&b, receipt, len);
	ben_end(&b);
	ledger_lock(s->l);
	queue(s, peer, &b, NULL);
	ledger_unlock(s->l);
	flush(s);
	return 0;
}
