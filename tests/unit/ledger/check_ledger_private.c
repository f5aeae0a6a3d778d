/* Private drives in the ledger: invites, redeems, epoch keys and their wraps, and the
 * members-only sync channel (handshake, sealed messages) over the in-memory transport.
 * Each hostile case says what a peer tried. */
#include "sync_net.h"

#include <errno.h>
#include <fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static void setup(void)
{
	fixture_test_setup();
	tu_clock = TU_T0;
}

static void teardown(void)
{
	tu_cleanup();
}

static struct ledger *private_drive(const char *file, const struct ledger_key *admin)
{
	struct ledger *l =
	    tu_create_ex(file, admin, (const struct ledger_key *const[]){ admin }, 1, true, true);

	ck_assert(ledger_is_private(l));
	ck_assert_int_eq(ledger_epoch_rotate(l), 1);
	return l;
}

static int claim(struct ledger *l, const char *path, uint32_t seed)
{
	/* a private drive's content carries its file key, wrapped under the epoch key */
	uint8_t fkey[LEDGER_FILE_KEY_LEN] = { (uint8_t)seed };
	struct ledger_op op = {
		.type = LEDGER_REC_CLAIM, .path = path, .nonce = seed + 1, .file_key = fkey
	};

	tu_content(&op.content, seed);
	return ledger_submit(l, &op, NULL);
}

static int member_op(struct ledger *l, const struct ledger_key *who, bool remove)
{
	struct ledger_op op = { .type = LEDGER_REC_MEMBER, .remove = remove };

	ledger_key_public(who, op.member);
	return ledger_submit(l, &op, NULL);
}

static void pub(const struct ledger_key *k, uint8_t out[32])
{
	ledger_key_public(k, out);
}

/* What a node logged: its warnings (and worse) and its notices, the last of each kept. */
struct logcap {
	int warnings, notices;
	char warning[256], notice[256];
};

static void log_cap(int level, const char *module, const char *msg, void *ctx)
{
	struct logcap *c = ctx;

	(void)module;
	if (level <= LOG_WARNING) {
		c->warnings++;
		snprintf(c->warning, sizeof c->warning, "%s", msg);
	} else if (level == LOG_NOTICE) {
		c->notices++;
		snprintf(c->notice, sizeof c->notice, "%s", msg);
	}
}

static struct ledger *logged(struct ledger *l, struct logcap *c)
{
	l->cfg.log = log_cap;
	l->cfg.log_ctx = c;
	l->cfg.log_level = LOG_NOTICE;
	return l;
}

START_TEST(test_invite_redeem_and_epoch_keys)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2), *carol = tu_key(3);
	struct ledger *a = private_drive("a.db", adm);
	struct net net = { 0 };
	uint8_t secret[32], secret2[32], ka[32], kb[32], bk[32];
	struct ledger_member *ms;
	size_t n;
	int64_t e;

	ck_assert_int_eq(ledger_epoch_key(a, 0, ka, &e), 0);
	ck_assert_int_eq(e, 1);
	ck_assert_int_eq(ledger_invite_create(a, false, tu_clock + 3600, "bob", secret), 0);
	/* bob joins with the invite: the handshake admits him, he syncs and redeems */
	node_add(&net, a);
	node_add(&net, tu_join("b.db", a, bob, false));
	ledger_sync_set_invite(net.nodes[1].s, secret);
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_eq(tu_height(net.nodes[1].l), tu_height(a));
	ck_assert_int_eq(ledger_invite_redeem(net.nodes[1].l, secret), 0);
	ck_assert_int_eq(ledger_sync_announce(net.nodes[1].s), 0);
	pump(&net);
	pub(bob, bk);
	ck_assert_int_eq(ledger_member_role(a, bk), 1);
	ck_assert_int_eq(ledger_members(a, &ms, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(ms[0].admin);
	ck_assert_str_eq(ms[1].name, "bob");
	free(ms);
	/* no wrap for bob yet: a member's node seals the epoch key to him */
	ck_assert_int_eq(ledger_epoch_key(net.nodes[1].l, 0, kb, NULL), -ENOKEY);
	ck_assert_int_eq(ledger_keys_tend(a), 1);
	ck_assert_int_eq(ledger_keys_tend(a), 0); /* once */
	ck_assert_int_eq(ledger_sync_announce(net.nodes[0].s), 0);
	pump(&net);
	ck_assert_int_eq(ledger_epoch_key(net.nodes[1].l, 0, kb, &e), 0);
	ck_assert_int_eq(e, 1);
	ck_assert_mem_eq(ka, kb, 32);

	/* carol tries bob's invite again: used */
	struct ledger *c = tu_join("c.db", a, carol, false);

	tu_copy_blocks(a, c);
	ck_assert_int_eq(ledger_invite_redeem(c, secret), -ESTALE);
	/* an invite that expired */
	ck_assert_int_eq(ledger_invite_create(a, false, tu_clock + 10, NULL, secret2), 0);
	tu_copy_blocks(a, c);
	tu_clock += 100;
	ck_assert_int_eq(ledger_invite_redeem(c, secret2), -EKEYEXPIRED);
	/* a secret nobody invited */
	secret2[0] ^= 1;
	ck_assert_int_eq(ledger_invite_redeem(c, secret2), -ENOENT);
	ledger_free(c);
	net_free(&net);
	ledger_key_free(adm);
	ledger_key_free(bob);
	ledger_key_free(carol);
}
END_TEST

/* A redeem whose invite signature is not the invite key's (carol saw an invite record
 * and tries to redeem it without the secret): refused by every node's check. */
START_TEST(test_forged_redeem_refused)
{
	struct ledger_key *adm = tu_key(1), *carol = tu_key(3), *fake = tu_key(9);
	struct ledger *a = private_drive("a.db", adm);
	uint8_t secret[32], msg[64];
	struct ledger_key *ik;
	struct rec r;

	ck_assert_int_eq(ledger_invite_create(a, true, tu_clock + 3600, NULL, secret), 0);
	ck_assert_int_eq(ledger_invite_key(secret, &ik), 0);
	ck_assert_int_eq(ledger_rec_init(a, LEDGER_REC_REDEEM, &r), 0);
	memcpy(r.ikey, ik->pub, 32);
	memcpy(r.author, carol->pub, 32);
	memcpy(msg, r.drive, 32);
	memcpy(msg + 32, carol->pub, 32);
	ck_assert_int_eq(ledger_key_sign(fake, LEDGER_REDEEM_TAG, LEDGER_TAG_LEN(LEDGER_REDEEM_TAG),
	                                 msg, 64, r.isig),
	                 0);
	ledger_lock(a);
	ck_assert_int_eq(chain_record_check_pending(a, &r), -EBADMSG);
	/* with the real invite key it would pass: the check is the signature */
	ck_assert_int_eq(ledger_key_sign(ik, LEDGER_REDEEM_TAG, LEDGER_TAG_LEN(LEDGER_REDEEM_TAG),
	                                 msg, 64, r.isig),
	                 0);
	ck_assert_int_eq(chain_record_check_pending(a, &r), 0);
	ledger_unlock(a);
	/* only the admin (or a producer, for members) invites */
	struct ledger *c = tu_join("c.db", a, carol, false);

	tu_copy_blocks(a, c);
	ck_assert_int_eq(ledger_invite_create(c, false, tu_clock + 3600, NULL, secret), -EPERM);
	/* only the admin starts an epoch */
	ck_assert_int_eq(ledger_epoch_rotate(c), -EPERM);
	ledger_free(c);
	ledger_key_free(ik);
	ledger_free(a);
	ledger_key_free(adm);
	ledger_key_free(carol);
	ledger_key_free(fake);
}
END_TEST

/* A stranger who has the genesis (the drive id is in every URI) but no membership and no
 * invite connects: it is refused after the handshake and receives nothing else. */
START_TEST(test_stranger_refused)
{
	struct ledger_key *adm = tu_key(1), *eve = tu_key(5);
	struct ledger *a = private_drive("a.db", adm);
	struct ledger_sync_progress pr;
	struct net net = { 0 };

	ck_assert_int_eq(claim(a, "/secret-plans.txt", 1), 0);
	node_add(&net, a);
	node_add(&net, tu_join("e.db", a, eve, false));
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 1); /* it read why, and hung up */
	ck_assert_int_eq(tu_height(net.nodes[1].l), 0);
	/* hello, auth and the refusal: not one message of the ledger */
	ck_assert_int_eq(net.got[1][0], 3);
	ck_assert_int_eq(ledger_sync_progress(net.nodes[1].s, &pr), 0);
	ck_assert_str_eq(pr.refused, "not a member of this drive");
	net_free(&net);
	ledger_key_free(adm);
	ledger_key_free(eve);
}
END_TEST

/* A drive of adm's with bob, a member at his node's head, and carol, admitted after
 * `extra` more blocks in a block his node lacks; her node holds it all. Without copy,
 * both nodes hold only the genesis. */
struct behind {
	struct ledger_key *adm, *bob, *carol;
	struct ledger *a, *b, *c;
	struct logcap lb, lc;
	struct net net;
};

static void behind_setup(struct behind *t, int extra, bool copy)
{
	char path[32];

	memset(t, 0, sizeof *t);
	t->adm = tu_key(1);
	t->bob = tu_key(2);
	t->carol = tu_key(3);
	t->a = private_drive("a.db", t->adm);
	ck_assert_int_eq(member_op(t->a, t->bob, false), 0);
	t->b = logged(tu_join("b.db", t->a, t->bob, false), &t->lb);
	if (copy)
		tu_copy_blocks(t->a, t->b);
	for (int i = 0; i < extra; i++) {
		tu_clock++; /* block times rise strictly */
		snprintf(path, sizeof path, "/f%d", i);
		ck_assert_int_eq(claim(t->a, path, 100 + (uint32_t)i), 0);
	}
	tu_clock++;
	ck_assert_int_eq(member_op(t->a, t->carol, false), 0);
	ck_assert_int_ge(ledger_keys_tend(t->a), 1);
	t->c = logged(tu_join("c.db", t->a, t->carol, false), &t->lc);
	if (copy) {
		tu_copy_blocks(t->a, t->c);
		ck_assert_int_lt(tu_height(t->b), tu_height(t->c));
	}
	node_add(&t->net, t->b); /* node 0 */
	node_add(&t->net, t->c); /* node 1 */
}

/* Once the net is quiet: nobody was refused or dropped, he caught up with her and
 * admitted her (his node trusts bob_peers peers in all), and neither node warned. */
static void behind_check_admitted(struct behind *t, size_t bob_peers)
{
	struct ledger_sync_progress pr;

	ck_assert_int_eq(t->net.dropped[0][1], 0);
	ck_assert_int_eq(t->net.dropped[1][0], 0);
	ck_assert_int_eq(tu_height(t->b), tu_height(t->c));
	ck_assert_int_eq(ledger_sync_progress(t->net.nodes[0].s, &pr), 0);
	ck_assert_uint_eq(pr.peers, bob_peers); /* he admitted her */
	ck_assert_int_eq(ledger_sync_progress(t->net.nodes[1].s, &pr), 0);
	ck_assert_uint_eq(pr.peers, 1);
	ck_assert_str_eq(pr.refused, "");
	ck_assert_msg(t->lb.warnings == 0, "bob warned: %s", t->lb.warning);
	ck_assert_msg(t->lc.warnings == 0, "carol warned: %s", t->lc.warning);
	ck_assert_msg(t->lc.notices == 0, "carol: %s", t->lc.notice); /* not even a notice */
}

static void behind_free(struct behind *t)
{
	bool a_on_net = t->net.n > 2 && t->net.nodes[2].l == t->a;

	net_free(&t->net);
	if (!a_on_net)
		ledger_free(t->a);
	ledger_key_free(t->adm);
	ledger_key_free(t->bob);
	ledger_key_free(t->carol);
}

/* The sync race of check_credit: carol was admitted in a block bob's node has not
 * applied yet, and her node dials his with a record of hers waiting to be gossiped. She
 * trusts him (he is a member at her head) and sends her status and the record at once;
 * he does not know her yet. Tried before the fix: bob refused her on the record ("not a
 * member of this drive") and she logged a warning, though she is a member and he was
 * about to learn it from her own blocks. Now he sets the record aside, fetches her
 * blocks, admits her, and neither side warns; her record reaches him on her next
 * announce. A receipt (which is sent once) waits on her side until he has admitted her:
 * before, it went out as soon as she trusted him, and he refused her for it. */
START_TEST(test_member_unknown_to_a_peer_behind)
{
	struct ledger_sync_progress pr;
	uint8_t k[LEDGER_KEY_LEN], bk[LEDGER_KEY_LEN];
	struct behind t;

	behind_setup(&t, 0, true);
	ck_assert_int_eq(claim(t.c, "/carol-notes", 3), 0);
	ck_assert_int_eq(ledger_mempool_count(t.c), 1);
	connect_nodes(&t.net, 0, 1);
	/* up to her admitting him: he has not admitted her, her receipts wait */
	do
		ck_assert_int_eq(ledger_sync_progress(t.net.nodes[1].s, &pr), 0);
	while (!pr.peers && pump_one(&t.net));
	ck_assert_uint_eq(pr.peers, 1);
	ck_assert_int_eq(ledger_sync_peer_key(t.net.nodes[1].s, 0, k), -ENOENT);
	ck_assert_int_eq(ledger_sync_send_receipt(t.net.nodes[1].s, 0, k, sizeof k), -ENOENT);
	pump(&t.net);
	behind_check_admitted(&t, 1);
	ck_assert_int_eq(ledger_sync_peer_key(t.net.nodes[1].s, 0, k), 0);
	pub(t.bob, bk);
	ck_assert_mem_eq(k, bk, sizeof k);
	ck_assert_int_eq(ledger_mempool_count(t.b), 0); /* set aside, not taken */
	ck_assert_int_eq(ledger_sync_announce(t.net.nodes[1].s), 0);
	pump(&t.net);
	ck_assert_int_eq(ledger_mempool_count(t.b), 1);
	ck_assert_int_eq(t.lb.notices, 0); /* he refused nobody */
	behind_free(&t);
}
END_TEST

/* Each message delivered to node 0 costs it 20 s (a node that applies slowly, as under
 * ASan): a long catch-up outlasts LEDGER_SYNC_PROVISIONAL_S. */
static void slow_receiver(struct net *net, const struct msg *m, void *ctx)
{
	(void)net;
	(void)ctx;
	if (m->to == 0)
		tu_clock += 20;
}

/* Carol was admitted after 300 blocks bob's node lacks, and dials it: bob fetches them
 * from her in batches, each slow. Tried before the fix: the provisional window ran from
 * the handshake, so after the first batch (without her member record) bob refused her
 * as not a member while she was still feeding him the chain that admits her. Now each
 * batch that moves his head restarts her window, and he admits her at the end. */
START_TEST(test_member_unknown_to_a_slow_peer)
{
	struct behind t;

	behind_setup(&t, 300, true);
	ck_assert_int_gt(tu_height(t.c) - tu_height(t.b), LEDGER_SYNC_BATCH);
	int64_t t0 = tu_clock;

	t.net.tap = slow_receiver;
	connect_nodes(&t.net, 0, 1);
	pump(&t.net);
	ck_assert_int_gt(tu_clock - t0, LEDGER_SYNC_PROVISIONAL_S);
	behind_check_admitted(&t, 1);
	behind_free(&t);
}
END_TEST

/* The first minutes of check_credit's drive: bob and carol were admitted in a block of
 * the admin's, and their nodes, holding only the genesis, find each other before the
 * admin: each is a stranger to the other (provisional both ways, so neither sends a
 * thing), and the admin's node answers late. Tried before the fix: after
 * LEDGER_SYNC_PROVISIONAL_S each refused the other as not a member, and both warned.
 * Now a node that is not even a member at its own head times nobody out; bob syncs from
 * the admin when it comes, admits carol, and she fetches the chain from him. */
START_TEST(test_members_both_at_genesis)
{
	struct behind t;

	behind_setup(&t, 0, false);
	node_add(&t.net, t.a); /* node 2, not connected yet */
	connect_nodes(&t.net, 0, 1);
	pump(&t.net);
	tu_clock += LEDGER_SYNC_PROVISIONAL_S + 1;
	ck_assert_int_eq(ledger_sync_announce(t.net.nodes[0].s), 0);
	ck_assert_int_eq(ledger_sync_announce(t.net.nodes[1].s), 0);
	pump(&t.net);
	ck_assert_msg(t.lb.notices == 0, "bob: %s", t.lb.notice); /* refused nobody */
	ck_assert_msg(t.lc.notices == 0, "carol: %s", t.lc.notice);
	ck_assert(t.net.link[0][1]);
	connect_nodes(&t.net, 2, 0);
	pump(&t.net);
	ck_assert_int_eq(tu_height(t.b), tu_height(t.a));
	behind_check_admitted(&t, 2); /* bob: the admin and carol */
	behind_free(&t);
}
END_TEST

/* The attack on that leniency: eve, no member, holds a copy of the whole chain (more
 * than bob's node has) and a record of her own to gossip. Her node dials bob's, sends
 * its status (ahead of his) and her record, as a member's would. Bob may fetch blocks
 * from her (they are the drive's own, checked as any), but her record is not taken, he
 * sends her nothing of the ledger (not his status, not his blocks, not his pending
 * record), and once he has caught up with her she is refused at once, not left
 * connected; her node says why and warns. */
START_TEST(test_stranger_ahead_still_refused)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2), *eve = tu_key(5);
	struct ledger *a = private_drive("a.db", adm), *b, *e;
	struct logcap lb = { 0 }, le = { 0 };
	struct ledger_sync_progress pr;
	struct net net = { 0 };
	struct rec r;
	uint8_t *raw;
	size_t len;
	int64_t eh;

	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_ge(ledger_keys_tend(a), 1);
	b = logged(tu_join("b.db", a, bob, false), &lb);
	tu_copy_blocks(a, b);
	ck_assert_int_eq(claim(b, "/bobs-pending", 2), 0); /* his record to gossip */
	tu_clock += 20;
	ck_assert_int_eq(claim(a, "/secret-plans.txt", 1), 0);
	e = logged(tu_join("e.db", a, eve, false), &le);
	tu_copy_blocks(a, e);
	raw = tu_record(e, eve, LEDGER_REC_CLAIM, "/eve", NULL, NULL, NULL, &r, &len);
	tu_inject(e, &r, raw, len);
	free(raw);
	eh = tu_height(e);
	ck_assert_int_lt(tu_height(b), eh);
	node_add(&net, b);
	node_add(&net, e);
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 1); /* she read why, and hung up */
	ck_assert(!net.link[0][1]);
	ck_assert_int_eq(ledger_sync_progress(net.nodes[1].s, &pr), 0);
	ck_assert_str_eq(pr.refused, "not a member of this drive");
	ck_assert_msg(le.warnings >= 1 && strstr(le.warning, "refused us"), "eve: %s", le.warning);
	ck_assert_msg(strstr(lb.notice, "refused peer"), "bob: %s", lb.notice);
	/* from him: hello, auth, his getblocks and the refusal; no status, block or record */
	ck_assert_int_eq(net.got[1][0], 4);
	ck_assert_int_eq(ledger_mempool_count(b), 1); /* his own only: hers was not taken */
	ck_assert_int_eq(ledger_mempool_count(e), 1); /* hers only: his never reached her */
	ck_assert_int_eq(tu_height(e), eh);           /* nothing of his chain either */
	ck_assert_msg(lb.warnings == 0, "bob warned: %s", lb.warning);
	net_free(&net);
	ledger_free(a);
	ledger_key_free(adm);
	ledger_key_free(bob);
	ledger_key_free(eve);
}
END_TEST

struct tap_scan {
	const char *needle;
	uint8_t key[32];
	int hits;
	int plain; /* messages that were not sealed (hellos) */
};

static void scan(struct net *net, const struct msg *m, void *ctx)
{
	struct tap_scan *t = ctx;

	(void)net;
	if (memmem(m->buf, m->len, t->needle, strlen(t->needle)) ||
	    memmem(m->buf, m->len, t->key, 32))
		t->hits++;
	if (m->len && m->buf[0] == 'd')
		t->plain++;
}

/* What a passive observer of the channel sees: no path, no member key, no record. */
START_TEST(test_channel_is_sealed)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *a = private_drive("a.db", adm);
	struct tap_scan t = { .needle = "secret-plans" };
	struct net net = { 0 };
	struct ledger_entry e;

	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_eq(claim(a, "/secret-plans.txt", 1), 0);
	pub(adm, t.key);
	net.tap = scan;
	net.tap_ctx = &t;
	node_add(&net, a);
	node_add(&net, tu_join("b.db", a, bob, false));
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_eq(ledger_lookup(net.nodes[1].l, "/secret-plans.txt", &e), 0);
	ck_assert_int_eq(t.hits, 0);
	ck_assert_int_eq(t.plain, 2); /* the two hellos: ephemeral keys only */
	ck_assert_int_gt((int)net.delivered, 4);
	net_free(&net);
	ledger_key_free(adm);
	ledger_key_free(bob);
}
END_TEST

/* Removal holds: bob is removed, the admin starts a new epoch; bob's open session is
 * closed, records made after the removal never reach him, a new session is refused, and
 * the new epoch's key was never sealed to him. His node, which never got the block that
 * removed him, still thinks it a member: the first "not a member" is a notice (the peer
 * may only be behind), and once such refusals have gone on for the provisional window,
 * a warning; his status shows the refusal either way, until he is admitted again. */
START_TEST(test_removed_member)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *a = private_drive("a.db", adm), *as_bob;
	struct ledger_sync_progress pr;
	struct ledger_config cfg;
	struct logcap lb = { 0 };
	struct net net = { 0 };
	struct ledger_entry e;
	uint8_t k[32];
	char *path;

	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_eq(ledger_keys_tend(a), 1);
	node_add(&net, a);
	node_add(&net, logged(tu_join("b.db", a, bob, false), &lb));
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_eq(ledger_epoch_key(net.nodes[1].l, 1, k, NULL), 0);
	ck_assert_int_eq(member_op(a, bob, true), 0);
	ck_assert_int_eq(ledger_epoch_rotate(a), 2);
	ck_assert_int_eq(claim(a, "/after-removal", 7), 0);
	ck_assert_int_eq(ledger_sync_announce(net.nodes[0].s), 0);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 1);
	ck_assert_int_eq(ledger_lookup(net.nodes[1].l, "/after-removal", &e), -ENOENT);
	ck_assert_int_eq(ledger_sync_progress(net.nodes[1].s, &pr), 0);
	ck_assert_str_eq(pr.refused, "removed from this drive");
	ck_assert_int_eq(lb.warnings, 1);
	/* he comes back: refused at once */
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 2);
	ck_assert_int_eq(ledger_lookup(net.nodes[1].l, "/after-removal", &e), -ENOENT);
	ck_assert_int_lt(tu_height(net.nodes[1].l), tu_height(a));
	ck_assert_msg(lb.warnings == 1, "bob: %s", lb.warning);
	ck_assert_msg(strstr(lb.notice, "does not know us as a member yet"), "bob: %s", lb.notice);
	ck_assert_int_eq(ledger_sync_progress(net.nodes[1].s, &pr), 0);
	ck_assert_str_eq(pr.refused, "not a member of this drive");
	/* and again, past the window: it persists, and says so */
	tu_clock += LEDGER_SYNC_PROVISIONAL_S;
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 3);
	ck_assert_msg(lb.warnings == 2 && strstr(lb.warning, "refused us: not a member"), "bob: %s",
	              lb.warning);
	ck_assert_int_eq(ledger_sync_progress(net.nodes[1].s, &pr), 0);
	ck_assert_str_eq(pr.refused, "not a member of this drive");
	ck_assert_int_eq(ledger_lookup(net.nodes[1].l, "/after-removal", &e), -ENOENT);
	/* admitted again: the refusal is over */
	tu_clock += 20;
	ck_assert_int_eq(member_op(a, bob, false), 0);
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_eq(ledger_lookup(net.nodes[1].l, "/after-removal", &e), 0);
	ck_assert_int_eq(ledger_sync_progress(net.nodes[1].s, &pr), 0);
	ck_assert_str_eq(pr.refused, "");
	ck_assert_uint_eq(pr.peers, 1);
	ck_assert_int_eq(lb.warnings, 2);
	/* even reading the admin's own ledger with bob's key: epoch 2 is not his */
	path = tu_path("a.db");
	tu_config(&cfg, path, bob, false);
	ck_assert_int_eq(ledger_open(&cfg, &as_bob), 0);
	ck_assert_int_eq(ledger_epoch_key(as_bob, 2, k, NULL), -ENOKEY);
	ck_assert_int_eq(ledger_epoch_key(as_bob, 1, k, NULL), 0); /* what he had, he keeps */
	ledger_free(as_bob);
	free(path);
	net_free(&net);
	ledger_key_free(adm);
	ledger_key_free(bob);
}
END_TEST

/* Two handshakes side by side, x and y, for one drive. */
struct pair {
	struct ledger_hs *x, *y;
	uint8_t *xauth, *yauth;
	size_t xal, yal;
};

static void pair_start(struct pair *p, const uint8_t drive[32], const struct ledger_key *kx,
                       const struct ledger_key *ky)
{
	uint8_t *hx, *hy;
	size_t lx, ly;

	ck_assert_int_eq(ledger_hs_new(drive, kx, NULL, &p->x), 0);
	ck_assert_int_eq(ledger_hs_new(drive, ky, NULL, &p->y), 0);
	ck_assert_int_eq(ledger_hs_hello(p->x, &hx, &lx), 0);
	ck_assert_int_eq(ledger_hs_hello(p->y, &hy, &ly), 0);
	ck_assert_int_eq(ledger_hs_on_hello(p->x, hy, ly, &p->xauth, &p->xal), 0);
	ck_assert_int_eq(ledger_hs_on_hello(p->y, hx, lx, &p->yauth, &p->yal), 0);
	/* a second hello is a replay */
	uint8_t *dummy;
	size_t dl;

	ck_assert_int_eq(ledger_hs_on_hello(p->x, hy, ly, &dummy, &dl), -EBADMSG);
	free(hx);
	free(hy);
}

static void pair_free(struct pair *p)
{
	ledger_hs_free(p->x);
	ledger_hs_free(p->y);
	free(p->xauth);
	free(p->yauth);
}

START_TEST(test_handshake_hostile)
{
	struct ledger_key *kx = tu_key(1), *ky = tu_key(2), *evil = tu_key(6);
	uint8_t drive[32] = { 7 }, other[32] = { 8 };
	struct pair p = { 0 }, q = { 0 }, r = { 0 };
	uint8_t *box, *m1, *m2, *out;
	size_t bl, l1, l2, ol;

	/* the honest exchange */
	pair_start(&p, drive, kx, ky);
	ck_assert_int_eq(ledger_hs_on_auth(p.x, p.yauth, p.yal), 0);
	ck_assert_int_eq(ledger_hs_on_auth(p.y, p.xauth, p.xal), 0);
	ck_assert_mem_eq(ledger_hs_peer(p.x)->key, ky->pub, 32);
	/* messages: in order they open; replayed, reordered or altered they do not */
	ck_assert_int_eq(ledger_hs_seal(p.y, (const uint8_t *)"one", 3, &m1, &l1), 0);
	ck_assert_int_eq(ledger_hs_seal(p.y, (const uint8_t *)"two", 3, &m2, &l2), 0);
	ck_assert_int_eq(ledger_hs_open(p.x, m2, l2, &out, &ol), -EBADMSG); /* reordered */
	ck_assert_int_eq(ledger_hs_open(p.x, m1, l1, &out, &ol), 0);
	ck_assert_mem_eq(out, "one", 3);
	free(out);
	ck_assert_int_eq(ledger_hs_open(p.x, m1, l1, &out, &ol), -EBADMSG); /* replayed */
	m2[5] ^= 1;
	ck_assert_int_eq(ledger_hs_open(p.x, m2, l2, &out, &ol), -EBADMSG); /* altered */
	m2[5] ^= 1;
	ck_assert_int_eq(ledger_hs_open(p.x, m2, l2, &out, &ol), 0);
	free(out);
	free(m1);
	free(m2);

	/* a replayed transcript: y's auth of session p offered in a new session q */
	pair_start(&q, drive, kx, ky);
	ck_assert_int_eq(ledger_hs_on_auth(q.x, p.yauth, p.yal), -EBADMSG);
	pair_free(&q);

	/* a wrong signature: a well-sealed auth that claims ky but is signed by evil */
	pair_start(&q, drive, kx, evil);
	{
		struct ben_buf b;
		uint8_t data[33], sig[64];

		memcpy(data, q.y->th, 32);
		data[32] = q.y->client ? 'c' : 's';
		ck_assert_int_eq(ledger_key_sign(evil, "swarmfs-hs-auth-v1", 19, data, 33, sig), 0);
		ben_buf_init(&b);
		ben_dict_begin(&b);
		ben_put_key(&b, "k");
		ben_put_str(&b, ky->pub, 32); /* claims to be the member ky */
		ben_put_key(&b, "m");
		ben_put_cstr(&b, "auth");
		ben_put_key(&b, "s");
		ben_put_str(&b, sig, 64);
		ben_end(&b);
		q.y->tx_n = 0; /* seal it where the honest auth was */
		ck_assert_int_eq(ledger_hs_seal(q.y, b.p, b.len, &box, &bl), 0);
		ben_buf_release(&b);
		ck_assert_int_eq(ledger_hs_on_auth(q.x, box, bl), -EBADMSG);
		free(box);
	}
	pair_free(&q);

	/* another drive's handshake: its transcript and sealing do not match */
	ck_assert_int_eq(ledger_hs_new(drive, kx, NULL, &r.x), 0);
	ck_assert_int_eq(ledger_hs_new(other, ky, NULL, &r.y), 0);
	{
		uint8_t *hx, *hy;
		size_t lx, ly;

		ck_assert_int_eq(ledger_hs_hello(r.x, &hx, &lx), 0);
		ck_assert_int_eq(ledger_hs_hello(r.y, &hy, &ly), 0);
		ck_assert_int_eq(ledger_hs_on_hello(r.x, hy, ly, &r.xauth, &r.xal), 0);
		ck_assert_int_eq(ledger_hs_on_hello(r.y, hx, lx, &r.yauth, &r.yal), 0);
		ck_assert_int_eq(ledger_hs_on_auth(r.x, r.yauth, r.yal), -EBADMSG);
		/* our own hello reflected back */
		struct ledger_hs *z;

		ck_assert_int_eq(ledger_hs_new(drive, kx, NULL, &z), 0);
		ck_assert_int_eq(ledger_hs_on_hello(z, hx, lx, &out, &ol), 0); /* z != x */
		free(out);
		ledger_hs_free(z);
		ck_assert_int_eq(ledger_hs_new(drive, kx, NULL, &z), 0);
		free(hx);
		ck_assert_int_eq(ledger_hs_hello(z, &hx, &lx), 0);
		ck_assert_int_eq(ledger_hs_on_hello(z, hx, lx, &out, &ol), -EBADMSG);
		ledger_hs_free(z);
		free(hx);
		free(hy);
	}
	pair_free(&r);
	pair_free(&p);
	ledger_key_free(kx);
	ledger_key_free(ky);
	ledger_key_free(evil);
}
END_TEST

/* Over the sync machines: a sealed message delivered twice (a replay on the wire)
 * drops the peer that sent it. */
static void duplicate_third(struct net *net, const struct msg *m, void *ctx)
{
	int *seen = ctx;

	if (m->from == 0 && m->to == 1 && ++*seen == 3)
		enqueue(net, m->from, m->to, m->buf, m->len);
}

START_TEST(test_sync_replay_drops)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *a = private_drive("a.db", adm);
	struct net net = { 0 };
	int seen = 0;

	ck_assert_int_eq(member_op(a, bob, false), 0);
	net.tap = duplicate_third;
	net.tap_ctx = &seen;
	node_add(&net, a);
	node_add(&net, tu_join("b.db", a, bob, false));
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 1);
	net_free(&net);
	ledger_key_free(adm);
	ledger_key_free(bob);
}
END_TEST

/* What a node heard of its own dropped record. */
struct dropped_key {
	int n;
	bool has_key;
	uint8_t key[LEDGER_FILE_KEY_LEN];
	int64_t iv_nonce;
	struct ledger_content content;
};

static void on_dropped_key(const struct ledger_dropped *x, void *ctx)
{
	struct dropped_key *dk = ctx;

	dk->n++;
	dk->has_key = x->has_file_key;
	memcpy(dk->key, x->file_key, sizeof dk->key);
	dk->iv_nonce = x->iv_nonce;
	dk->content = x->content;
}

/* Tried: two producers of a private drive apart both claim /same; b's chain is
 * heavier, so a's claim is dropped. a is told the content's file key and IV nonce, and
 * a conflict copy claimed with them, as fs/ claims one, opens to the very key and
 * nonce the ciphertext was made with. Without them the copy cannot be claimed at all:
 * a private claim with no file key is refused (EINVAL), and the wrap of the dropped
 * record is gone with it. */
START_TEST(test_dropped_private_claim_kept_as_conflict_copy)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2);
	const struct ledger_key *const ps[] = { p0, p1 };
	struct ledger *a = tu_create_ex("a.db", p0, ps, 2, false, true), *b;
	struct dropped_key dk = { 0 };
	struct ledger_config cfg;
	uint8_t id[LEDGER_ID_LEN], key[LEDGER_FILE_KEY_LEN];
	int64_t nonce = 0;
	char *apath = tu_path("a.db");

	/* epoch 1, sealed to both producers, in a block b copies */
	ck_assert_int_eq(ledger_epoch_rotate(a), 1);
	tu_clock += 20;
	ck_assert_int_eq(ledger_produce(a), 1);
	b = tu_join("b.db", a, p1, false);
	tu_copy_blocks(a, b);
	ledger_free(a);
	tu_config(&cfg, apath, p0, false);
	cfg.on_dropped = on_dropped_key;
	cfg.change_ctx = &dk;
	ck_assert_int_eq(ledger_open(&cfg, &a), 0);

	/* apart: a's claim (file key 0x41.., IV nonce 77) in a block of a's own; b's two */
	uint8_t fkey[LEDGER_FILE_KEY_LEN];
	memset(fkey, 0x41, sizeof fkey);
	struct ledger_op mine = {
		.type = LEDGER_REC_CLAIM, .path = "/same", .nonce = 77, .file_key = fkey
	};
	tu_content(&mine.content, 1);
	ck_assert_int_eq(ledger_submit(a, &mine, NULL), 0);
	tu_clock += 20;
	ck_assert_int_eq(ledger_produce(a), 1);
	ck_assert_int_eq(claim(b, "/same", 10), 0);
	for (int i = 0; i < 2; i++) {
		tu_clock += 20;
		ck_assert_int_eq(ledger_produce(b), 1);
		if (!i)
			ck_assert_int_eq(claim(b, "/other", 11), 0);
	}
	tu_copy_blocks(b, a);
	ck_assert_int_eq(ledger_mempool_count(a), 0);
	ck_assert_int_eq(dk.n, 1);
	ck_assert_msg(dk.has_key, "the dropped claim came without its file key");
	ck_assert_mem_eq(dk.key, fkey, sizeof fkey);
	ck_assert_int_eq(dk.iv_nonce, 77);

	/* the conflict copy, as fs/drive.c claims it: a new record, the same ciphertext */
	struct ledger_op copy = { .type = LEDGER_REC_CLAIM,
		                  .path = "/same.conflict",
		                  .content = dk.content,
		                  .file_key = dk.key,
		                  .iv_nonce = dk.iv_nonce };
	ck_assert_int_eq(ledger_submit(a, &copy, id), 0);
	ck_assert_int_eq(ledger_file_key_open(a, id, key, &nonce), 0);
	ck_assert_mem_eq(key, fkey, sizeof fkey);
	ck_assert_int_eq(nonce, 77);
	/* and without the key, the claim is refused, not made unreadable */
	copy.path = "/same.nokey";
	copy.file_key = NULL;
	ck_assert_int_eq(ledger_submit(a, &copy, NULL), -EINVAL);
	ledger_free(a);
	ledger_free(b);
	free(apath);
	ledger_key_free(p0);
	ledger_key_free(p1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_private");
	TCase *tc = tcase_create("private");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_invite_redeem_and_epoch_keys);
	tcase_add_test(tc, test_forged_redeem_refused);
	tcase_add_test(tc, test_stranger_refused);
	tcase_add_test(tc, test_member_unknown_to_a_peer_behind);
	tcase_add_test(tc, test_member_unknown_to_a_slow_peer);
	tcase_add_test(tc, test_members_both_at_genesis);
	tcase_add_test(tc, test_stranger_ahead_still_refused);
	tcase_add_test(tc, test_channel_is_sealed);
	tcase_add_test(tc, test_removed_member);
	tcase_add_test(tc, test_handshake_hostile);
	tcase_add_test(tc, test_sync_replay_drops);
	tcase_add_test(tc, test_dropped_private_claim_kept_as_conflict_copy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
