/* Private drives in the ledger: invites, redeems, epoch keys and their wraps, and the
 * members-only sync channel (handshake, sealed messages) over the in-memory transport.
 * Each hostile case says what a peer tried. */
#include "sync_net.h"

#include <errno.h>
#include <fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * the new epoch's key was never sealed to him. */
START_TEST(test_removed_member)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *a = private_drive("a.db", adm), *as_bob;
	struct ledger_sync_progress pr;
	struct ledger_config cfg;
	struct net net = { 0 };
	struct ledger_entry e;
	uint8_t k[32];
	char *path;

	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_eq(ledger_keys_tend(a), 1);
	node_add(&net, a);
	node_add(&net, tu_join("b.db", a, bob, false));
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
	/* he comes back: refused at once */
	connect_nodes(&net, 0, 1);
	pump(&net);
	ck_assert_int_ge(net.dropped[1][0], 2);
	ck_assert_int_eq(ledger_lookup(net.nodes[1].l, "/after-removal", &e), -ENOENT);
	ck_assert_int_lt(tu_height(net.nodes[1].l), tu_height(a));
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

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_private");
	TCase *tc = tcase_create("private");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_invite_redeem_and_epoch_keys);
	tcase_add_test(tc, test_forged_redeem_refused);
	tcase_add_test(tc, test_stranger_refused);
	tcase_add_test(tc, test_channel_is_sealed);
	tcase_add_test(tc, test_removed_member);
	tcase_add_test(tc, test_handshake_hostile);
	tcase_add_test(tc, test_sync_replay_drops);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
