/* Credit (DESIGN §11): receipts a downloader signs, sent to the uploader over the sealed
 * channel, rolled into credit records that every node checks when it applies a block.
 * Each hostile case says what was tried; forged records go through the real block
 * import of another node, the path a producer's block takes. */
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

static void pub(const struct ledger_key *k, uint8_t out[32])
{
	ledger_key_public(k, out);
}

/* A receipt signed by key (as its downloader) with every other field chosen by the
 * test: what a hostile node could make. malloc'd. */
static uint8_t *receipt(const struct ledger_key *key, const uint8_t drive[32], const uint8_t up[32],
                        const uint8_t down[32], int64_t bytes, int64_t seq, size_t *out_len)
{
	uint8_t ih[32] = { 7 }, *out, *at;

	ck_assert_int_eq(credit_receipt_sign(key, drive, up, ih, bytes, seq, &out, out_len), 0);
	/* a downloader other than key: its key goes in after signing, as a forger would
	 * put it (the signature is key's, over other bytes) */
	at = memmem(out, *out_len, "4:down32:", 9);
	ck_assert_ptr_nonnull(at);
	memcpy(at + 9, down, 32);
	return out;
}

/* A credit record by author over the given receipts; totals from the receipts unless
 * extra (added to the first downloader's total) is non-zero. malloc'd raw. */
static uint8_t *credit_rec(struct ledger *l, const struct ledger_key *author, uint8_t **rc,
                           const size_t *lens, size_t n, int64_t extra, size_t *out_len)
{
	struct rec *r = calloc(1, sizeof *r);
	uint8_t ids[LEDGER_CREDIT_RECEIPTS][32], *raw;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(ledger_rec_init(l, LEDGER_REC_CREDIT, r), 0);
	for (size_t i = 0; i < n; i++) {
		struct receipt p;
		size_t j = 0;

		ck_assert_int_eq(credit_receipt_parse(rc[i], lens[i], &p), 0);
		memcpy(r->rcpt[i], rc[i], lens[i]);
		r->rcpt_len[i] = (uint16_t)lens[i];
		memcpy(ids[i], p.id, 32);
		while (j < r->n_tot && memcmp(r->tot[j].key, p.down, 32))
			j++;
		if (j == r->n_tot) {
			memcpy(r->tot[j].key, p.down, 32);
			r->n_tot++;
		}
		r->tot[j].bytes += p.bytes;
	}
	r->n_rcpt = n;
	r->tot[0].bytes += extra;
	ck_assert_int_eq(merkle_root_of_ids((const uint8_t(*)[32])ids, n, r->commit), 0);
	ck_assert_int_eq(rec_sign(r, author, &raw, out_len), 0);
	free(r);
	return raw;
}

/* Import into `to` a block by producer on top of from's head holding one record. */
static int import_one(struct ledger *from, struct ledger *to, const struct ledger_key *producer,
                      uint8_t *raw, size_t len)
{
	size_t bl;
	uint8_t *blk = tu_block(from, producer, NULL, 0, 0, 2, &raw, &len, 1, &bl);
	int rc = ledger_block_import(to, blk, bl);

	free(blk);
	return rc;
}

static void credit_of(struct ledger *l, const uint8_t key[32], uint64_t *up, uint64_t *down)
{
	struct ledger_credit *v;
	size_t n;

	*up = *down = 0;
	ck_assert_int_eq(ledger_credit_list(l, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (!memcmp(v[i].member, key, 32)) {
			*up = v[i].uploaded;
			*down = v[i].downloaded;
		}
	free(v);
}

struct drive3 {
	struct ledger_key *adm, *bob, *eve;
	uint8_t ka[32], kb[32], ke[32], id[32];
	struct net net;
};

/* A private drive: the admin (producer, node 0) and bob (member, node 1) on the
 * in-memory channel; eve has a key and the ledger but is no member. */
static void drive3_start(struct drive3 *d)
{
	struct ledger *a;
	struct ledger_op op = { .type = LEDGER_REC_MEMBER };

	memset(d, 0, sizeof *d);
	d->adm = tu_key(1);
	d->bob = tu_key(2);
	d->eve = tu_key(3);
	pub(d->adm, d->ka);
	pub(d->bob, d->kb);
	pub(d->eve, d->ke);
	a = tu_create_ex("a.db", d->adm, (const struct ledger_key *const[]){ d->adm }, 1, true,
	                 true);
	ck_assert_int_eq(ledger_epoch_rotate(a), 1);
	memcpy(op.member, d->kb, 32);
	ck_assert_int_eq(ledger_submit(a, &op, NULL), 0);
	ledger_drive_id(a, d->id);
	node_add(&d->net, a);
	node_add(&d->net, tu_join("b.db", a, d->bob, false));
	connect_nodes(&d->net, 0, 1);
	pump(&d->net);
	ck_assert_int_eq(tu_height(d->net.nodes[1].l), tu_height(a));
}

static void drive3_free(struct drive3 *d)
{
	net_free(&d->net);
	ledger_key_free(d->adm);
	ledger_key_free(d->bob);
	ledger_key_free(d->eve);
}

/* bob signs receipts for what he got from the admin and sends them on the channel; the
 * admin keeps them, rolls them into a credit record, and both ledgers show it. */
START_TEST(test_receipts_to_credit)
{
	struct drive3 d;
	struct ledger *a, *b;
	uint8_t ih[32] = { 1 }, *rc;
	uint64_t up, down;
	size_t len;

	drive3_start(&d);
	a = d.net.nodes[0].l;
	b = d.net.nodes[1].l;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(ledger_receipt_make(b, d.ka, ih, 16 << 20, &rc, &len), 0);
		ck_assert_int_eq(ledger_sync_send_receipt(d.net.nodes[1].s, 0, rc, len), 0);
		free(rc);
	}
	pump(&d.net);
	ck_assert_int_eq(ledger_credit_unrolled(a), 3);
	/* not yet: fewer than the batch and younger than the age */
	ck_assert_int_eq(ledger_credit_roll(a, 8, 60), 0);
	tu_clock += 61;
	ck_assert_int_eq(ledger_credit_roll(a, 8, 60), 1);
	ck_assert_int_eq(ledger_credit_unrolled(a), 0);
	ck_assert_int_eq(ledger_credit_roll(a, 1, 0), 0); /* rolled once */
	ck_assert_int_eq(ledger_sync_announce(d.net.nodes[0].s), 0);
	pump(&d.net);
	for (int n = 0; n < 2; n++) {
		credit_of(d.net.nodes[n].l, d.ka, &up, &down);
		ck_assert_uint_eq(up, 48u << 20);
		ck_assert_uint_eq(down, 0);
		credit_of(d.net.nodes[n].l, d.kb, &up, &down);
		ck_assert_uint_eq(up, 0);
		ck_assert_uint_eq(down, 48u << 20);
	}
	/* the state survives a rebuild by replay: credit is derived from the chain */
	ck_assert_int_ge(ledger_rebuild(b), 1);
	credit_of(b, d.ka, &up, &down);
	ck_assert_uint_eq(up, 48u << 20);
	/* nobody signs a receipt to itself, nor for nothing */
	ck_assert_int_eq(ledger_receipt_make(b, d.kb, ih, 1, &rc, &len), -EINVAL);
	ck_assert_int_eq(ledger_receipt_make(b, d.ka, ih, 0, &rc, &len), -EINVAL);
	drive3_free(&d);
}
END_TEST

/* A receipt replayed: sent again to the uploader (kept once), then, once counted,
 * carried by a second credit record (refused by another node's block import). */
START_TEST(test_replayed_receipt_refused)
{
	struct drive3 d;
	struct ledger *a, *b;
	uint8_t ih[32] = { 2 }, *rc, *raw;
	uint64_t up, down;
	size_t len, rl;

	drive3_start(&d);
	a = d.net.nodes[0].l;
	b = d.net.nodes[1].l;
	ck_assert_int_eq(ledger_receipt_make(b, d.ka, ih, 1000, &rc, &len), 0);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), 0);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EEXIST);
	/* over the channel too: ignored, the peer is not dropped (a resend is no crime) */
	ck_assert_int_eq(ledger_sync_send_receipt(d.net.nodes[1].s, 0, rc, len), 0);
	pump(&d.net);
	ck_assert_int_eq(d.net.dropped[0][1], 0);
	ck_assert_int_eq(ledger_credit_unrolled(a), 1);
	ck_assert_int_eq(ledger_credit_roll(a, 1, 0), 1);
	ck_assert_int_eq(ledger_sync_announce(d.net.nodes[0].s), 0);
	pump(&d.net);
	credit_of(b, d.ka, &up, &down);
	ck_assert_uint_eq(up, 1000);
	/* counted: the uploader will not keep it again */
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EEXIST);
	/* the admin makes a second credit record with the same receipt: bob's node refuses
	 * the block that carries it, and the credit stays 1000 */
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EEXIST);
	free(raw);
	/* and twice in one record */
	uint8_t *two[2] = { rc, rc };
	size_t lens[2] = { len, len };
	ck_assert_int_eq(ledger_receipt_make(b, d.ka, ih, 5, &two[0], &lens[0]), 0);
	two[1] = two[0];
	lens[1] = lens[0];
	raw = credit_rec(a, d.adm, two, lens, 2, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EEXIST);
	free(raw);
	free(two[0]);
	credit_of(b, d.ka, &up, &down);
	ck_assert_uint_eq(up, 1000);
	free(rc);
	drive3_free(&d);
}
END_TEST

/* Receipts forged: signed by eve, who is no member; bob's receipt with its byte count
 * raised after he signed it; a receipt for another drive. */
START_TEST(test_forged_receipts_refused)
{
	struct drive3 d;
	struct ledger *a, *b;
	uint8_t other[32], *rc, *raw;
	uint64_t up, down;
	size_t len, rl;

	drive3_start(&d);
	a = d.net.nodes[0].l;
	b = d.net.nodes[1].l;
	/* eve, no member, vouches that the admin sent her 1 GiB */
	rc = receipt(d.eve, d.id, d.ka, d.ke, 1 << 30, 1, &len);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EPERM);
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EPERM);
	free(raw);
	free(rc);
	/* bob's receipt in bob's name, but signed by eve's key */
	rc = receipt(d.eve, d.id, d.ka, d.kb, 1000, 2, &len);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EBADMSG);
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EBADMSG);
	free(raw);
	free(rc);
	/* bob signed 1000 bytes; the admin makes it 9000 */
	rc = receipt(d.bob, d.id, d.ka, d.kb, 1000, 3, &len);
	ck_assert_ptr_nonnull(memmem(rc, len, "i1000e", 6));
	memcpy(memmem(rc, len, "i1000e", 6), "i9000e", 6);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EBADMSG);
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EBADMSG);
	free(raw);
	free(rc);
	/* a real receipt of bob's, for another drive */
	memcpy(other, d.id, 32);
	other[0] ^= 1;
	rc = receipt(d.bob, other, d.ka, d.kb, 1000, 4, &len);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EBADMSG);
	free(rc);
	/* a forged receipt over the channel drops the peer that sent it */
	rc = receipt(d.eve, d.id, d.ka, d.kb, 1000, 5, &len);
	ck_assert_int_eq(ledger_sync_send_receipt(d.net.nodes[1].s, 0, rc, len), 0);
	pump(&d.net);
	ck_assert_int_ge(d.net.banned[0][1], 1);
	free(rc);
	credit_of(b, d.ka, &up, &down);
	ck_assert_uint_eq(up, 0);
	credit_of(a, d.ka, &up, &down);
	ck_assert_uint_eq(up, 0);
	drive3_free(&d);
}
END_TEST

/* The admin credits itself: a receipt it signed to itself, in its own credit record;
 * and bob's genuine receipt to the admin, rolled by bob into bob's own credit. */
START_TEST(test_self_credit_refused)
{
	struct drive3 d;
	struct ledger *a, *b;
	uint8_t *rc, *raw;
	size_t len, rl;

	drive3_start(&d);
	a = d.net.nodes[0].l;
	b = d.net.nodes[1].l;
	rc = receipt(d.adm, d.id, d.ka, d.ka, 1 << 20, 1, &len);
	ck_assert_int_eq(ledger_receipt_accept(a, rc, len), -EPERM);
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EPERM);
	free(raw);
	free(rc);
	/* a receipt addressed to the admin claimed by bob as his upload */
	rc = receipt(d.bob, d.id, d.ka, d.kb, 1 << 20, 2, &len);
	ck_assert_int_eq(ledger_receipt_accept(b, rc, len), -ENOENT);
	raw = credit_rec(a, d.bob, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EPERM);
	free(raw);
	free(rc);
	drive3_free(&d);
}
END_TEST

/* A credit record whose totals say more than its receipts, or whose commitment is not
 * the root of its receipt ids: refused; the honest one over the same receipt applies. */
START_TEST(test_totals_checked)
{
	struct drive3 d;
	struct ledger *a, *b;
	uint8_t *rc, *raw;
	uint64_t up, down;
	size_t len, rl;
	struct rec *r = calloc(1, sizeof *r);

	drive3_start(&d);
	a = d.net.nodes[0].l;
	b = d.net.nodes[1].l;
	rc = receipt(d.bob, d.id, d.ka, d.kb, 4096, 1, &len);
	raw = credit_rec(a, d.adm, &rc, &len, 1, 1, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EBADMSG);
	free(raw);
	/* the commitment: built right, then one bit of it flipped and signed again */
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(rec_parse(raw, rl, 1 << 20, r), 0);
	free(raw);
	r->commit[0] ^= 1;
	ck_assert_int_eq(rec_sign(r, d.adm, &raw, &rl), 0);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), -EBADMSG);
	free(raw);
	raw = credit_rec(a, d.adm, &rc, &len, 1, 0, &rl);
	ck_assert_int_eq(import_one(a, b, d.adm, raw, rl), 1);
	free(raw);
	credit_of(b, d.ka, &up, &down);
	ck_assert_uint_eq(up, 4096);
	credit_of(b, d.kb, &up, &down);
	ck_assert_uint_eq(down, 4096);
	free(rc);
	free(r);
	drive3_free(&d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_credit");
	TCase *tc = tcase_create("credit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_receipts_to_credit);
	tcase_add_test(tc, test_replayed_receipt_refused);
	tcase_add_test(tc, test_forged_receipts_refused);
	tcase_add_test(tc, test_self_credit_refused);
	tcase_add_test(tc, test_totals_checked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
