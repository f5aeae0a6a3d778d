/* File keys of a private drive's content: wrapped under the epoch key in the claim or
 * update, opened by members only, refused when missing, stale or misplaced. Each
 * hostile case says what was tried. */
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

static struct ledger *drive(const char *file, const struct ledger_key *admin, bool priv)
{
	struct ledger *l =
	    tu_create_ex(file, admin, (const struct ledger_key *const[]){ admin }, 1, true, priv);

	if (priv)
		ck_assert_int_eq(ledger_epoch_rotate(l), 1);
	return l;
}

static int publish(struct ledger *l, const char *path, const uint8_t key[32], int64_t nonce,
                   uint8_t out_id[32])
{
	struct ledger_op op = {
		.type = LEDGER_REC_CLAIM, .path = path, .nonce = nonce, .file_key = key
	};

	tu_content(&op.content, (uint32_t)nonce);
	return ledger_submit(l, &op, out_id);
}

static int member_op(struct ledger *l, const struct ledger_key *who, bool remove)
{
	struct ledger_op op = { .type = LEDGER_REC_MEMBER, .remove = remove };

	ledger_key_public(who, op.member);
	return ledger_submit(l, &op, NULL);
}

/* The raw record of id as a parsed struct (white box). */
static void load(struct ledger *l, const uint8_t id[32], struct rec *out)
{
	uint8_t *buf;
	size_t len, got = 0;
	int64_t h = tu_height(l);

	for (int64_t i = 1; i <= h && !got; i++) {
		struct blk_wire w;

		ck_assert_int_eq(ledger_block_get(l, (uint64_t)i, &buf, &len), 0);
		ck_assert_int_eq(blk_wire_parse(buf, len, SIZE_MAX, SIZE_MAX, &w), 0);
		for (size_t j = 0; j < w.n_recs; j++) {
			ck_assert_int_eq(rec_parse(w.recs[j].p, w.recs[j].len, SIZE_MAX, out), 0);
			if (!memcmp(out->id, id, 32)) {
				got = 1;
				break;
			}
		}
		free(w.recs);
		free(buf);
	}
	ck_assert_msg(got, "record not in the chain");
}

START_TEST(test_members_open_file_keys)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *a = drive("a.db", adm, true), *b;
	uint8_t fk[32], got[32], id[32], mv[32], up[32];
	int64_t nonce = 0;
	struct rec r;

	memset(fk, 0xa5, sizeof fk);
	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_eq(ledger_keys_tend(a), 1);
	ck_assert_int_eq(publish(a, "/plans.txt", fk, 77, id), 0);
	load(a, id, &r);
	ck_assert(r.has_wrap);
	ck_assert_int_eq(r.epoch, 1);
	ck_assert_int_eq(r.nonce, 77);
	/* the record holds no plaintext key */
	ck_assert(!memmem(r.wrap, sizeof r.wrap, fk, 8));

	b = tu_join("b.db", a, bob, false);
	tu_copy_blocks(a, b);
	ck_assert_int_eq(ledger_file_key_open(b, id, got, &nonce), 0);
	ck_assert_mem_eq(got, fk, 32);
	ck_assert_int_eq(nonce, 77);

	/* a move and a chmod-like update carry the key on */
	struct ledger_op m = { .type = LEDGER_REC_MOVE, .path = "/plans.txt", .dest = "/p2" };
	ck_assert_int_eq(ledger_submit(a, &m, mv), 0);
	struct ledger_entry e;
	ck_assert_int_eq(ledger_lookup(a, "/p2", &e), 0);
	struct ledger_op u = { .type = LEDGER_REC_UPDATE,
		               .path = "/p2",
		               .content = e.content,
		               .key_from = e.record_id };
	u.content.mode = 0600;
	ck_assert_int_eq(ledger_submit(a, &u, up), 0);
	tu_copy_blocks(a, b);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(ledger_file_key_open(b, mv, got, &nonce), 0);
	ck_assert_mem_eq(got, fk, 32);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(ledger_file_key_open(b, up, got, &nonce), 0);
	ck_assert_mem_eq(got, fk, 32);
	ck_assert_int_eq(nonce, 77); /* the content's IV, not the update's own nonce */
	/* an update of content without its key is refused on a private drive */
	u.key_from = NULL;
	u.content.mode = 0644;
	ck_assert_int_eq(ledger_submit(a, &u, NULL), -EINVAL);
	ledger_free(b);
	ledger_free(a);
	ledger_key_free(adm);
	ledger_key_free(bob);
}
END_TEST

/* bob was a member, then removed; the admin publishes afterwards. bob is handed the
 * admin's whole ledger (the record, its wrap) and keeps the epoch key he had: he can
 * neither open the new file's key through the library nor with the old epoch key. */
START_TEST(test_removed_member_cannot_open_later_content)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *a = drive("a.db", adm, true), *as_bob;
	uint8_t fk_old[32], fk_new[32], old_id[32], new_id[32], got[32], e1[32], plain[40], ad[80];
	struct ledger_config cfg;
	struct rec r;
	char *path;

	memset(fk_old, 0x11, 32);
	memset(fk_new, 0x22, 32);
	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_eq(ledger_keys_tend(a), 1);
	ck_assert_int_eq(publish(a, "/before", fk_old, 5, old_id), 0);
	ck_assert_int_eq(member_op(a, bob, true), 0);
	ck_assert_int_eq(ledger_epoch_rotate(a), 2);
	ck_assert_int_eq(publish(a, "/after", fk_new, 6, new_id), 0);
	load(a, new_id, &r);
	ck_assert_int_eq(r.epoch, 2);

	path = tu_path("a.db");
	tu_config(&cfg, path, bob, false);
	ck_assert_int_eq(ledger_open(&cfg, &as_bob), 0);
	/* what he could read before, he still can */
	ck_assert_int_eq(ledger_file_key_open(as_bob, old_id, got, NULL), 0);
	ck_assert_mem_eq(got, fk_old, 32);
	/* what came after: no key of epoch 2 for him */
	ck_assert_int_eq(ledger_file_key_open(as_bob, new_id, got, NULL), -ENOKEY);
	/* nor does his epoch 1 key open the wrap, whatever epoch he claims it is */
	ck_assert_int_eq(ledger_epoch_key(as_bob, 1, e1, NULL), 0);
	for (int64_t ep = 1; ep <= 2; ep++) {
		memcpy(ad, r.drive, 32);
		memcpy(ad + 32, r.author, 32);
		for (int i = 0; i < 8; i++) {
			ad[64 + i] = (uint8_t)((uint64_t)r.nonce >> (56 - 8 * i));
			ad[72 + i] = (uint8_t)((uint64_t)ep >> (56 - 8 * i));
		}
		ck_assert_int_eq(seal_aead_open(e1, r.wrap, ad, sizeof ad,
		                                r.wrap + LEDGER_AEAD_NONCE,
		                                sizeof r.wrap - LEDGER_AEAD_NONCE, plain),
		                 -EBADMSG);
	}
	ledger_free(as_bob);
	ledger_free(a);
	free(path);
	ledger_key_free(adm);
	ledger_key_free(bob);
}
END_TEST

/* Records the validator must refuse: a private drive's content without a wrap (it
 * would be plaintext in the swarm or unreadable), a public drive's with one, a wrap
 * under an epoch that had ended when the record was made (a removed member could read
 * it), and a wrap moved into another author's record (its associated data differs). */
START_TEST(test_wraps_validated)
{
	struct ledger_key *adm = tu_key(1), *bob = tu_key(2);
	struct ledger *p = drive("p.db", adm, false), *a = drive("a.db", adm, true);
	uint8_t fk[32] = { 1 }, id[32], *raw, *blk, got[32];
	struct rec r, good;
	size_t len, blen;

	/* public: no wrap, byte for byte as before (no epoch, no wrap key) */
	ck_assert_int_eq(publish(p, "/x", fk, 9, id), -EINVAL);
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = "/x" };
	tu_content(&op.content, 9);
	ck_assert_int_eq(ledger_submit(p, &op, id), 0);
	load(p, id, &r);
	ck_assert(!r.has_wrap);
	ck_assert_int_eq(ledger_file_key_open(p, id, got, NULL), -EINVAL);

	/* a hand-made claim with a wrap on the public drive */
	raw = tu_record(p, adm, LEDGER_REC_CLAIM, "/y", NULL, NULL, NULL, &r, &len);
	free(raw);
	r.has_wrap = true;
	r.epoch = 1;
	ck_assert_int_eq(rec_sign(&r, adm, &raw, &len), 0);
	blk = tu_block(p, adm, NULL, 0, 0, 2, &raw, &len, 1, &blen);
	ck_assert_int_eq(ledger_block_import(p, blk, blen), -EINVAL);
	free(blk);
	free(raw);

	/* private: a claim without a wrap */
	raw = tu_record(a, adm, LEDGER_REC_CLAIM, "/plain", NULL, NULL, NULL, &r, &len);
	blk = tu_block(a, adm, NULL, 0, 0, 2, &raw, &len, 1, &blen);
	ck_assert_int_eq(ledger_block_import(a, blk, blen), -EINVAL);
	free(blk);
	free(raw);

	/* a valid one, then its wrap in another author's record: bob is a member */
	ck_assert_int_eq(member_op(a, bob, false), 0);
	ck_assert_int_eq(ledger_keys_tend(a), 1);
	ck_assert_int_eq(publish(a, "/good", fk, 10, id), 0);
	load(a, id, &good);
	raw = tu_record(a, bob, LEDGER_REC_CLAIM, "/stolen", NULL, NULL, NULL, &r, &len);
	free(raw);
	r.has_wrap = true;
	r.epoch = good.epoch;
	r.nonce = good.nonce;
	memcpy(r.wrap, good.wrap, sizeof r.wrap);
	ck_assert_int_eq(rec_sign(&r, bob, &raw, &len), 0);
	blk = tu_block(a, adm, NULL, 0, 0, 2, &raw, &len, 1, &blen);
	ck_assert_int_eq(ledger_block_import(a, blk, blen), 1); /* well-formed */
	free(blk);
	free(raw);
	ck_assert_int_eq(ledger_file_key_open(a, r.id, got, NULL), -EBADMSG);
	/* a flipped byte of a wrap: not opened */
	ck_assert_int_eq(ledger_file_key_open(a, id, got, NULL), 0);

	/* an epoch that had ended: epoch 2 begins, then a record dated later says 1 */
	tu_clock += 10;
	ck_assert_int_eq(ledger_epoch_rotate(a), 2);
	tu_clock += 10;
	raw = tu_record(a, adm, LEDGER_REC_CLAIM, "/late", NULL, NULL, NULL, &r, &len);
	free(raw);
	r.has_wrap = true;
	r.epoch = 1;
	ck_assert_int_eq(rec_sign(&r, adm, &raw, &len), 0);
	blk = tu_block(a, adm, NULL, 0, 0, 2, &raw, &len, 1, &blen);
	ck_assert_int_eq(ledger_block_import(a, blk, blen), -ESTALE);
	free(blk);
	free(raw);
	ledger_free(p);
	ledger_free(a);
	ledger_key_free(adm);
	ledger_key_free(bob);
}
END_TEST

/* A flipped byte in a stored wrap never yields a key. */
START_TEST(test_altered_wrap_refused)
{
	struct ledger_key *adm = tu_key(1);
	struct ledger *a = drive("a.db", adm, true);
	uint8_t fk[32] = { 3 }, id[32], got[32], *raw, *blk;
	struct rec r;
	size_t len, blen;

	ck_assert_int_eq(publish(a, "/f", fk, 12, id), 0);
	load(a, id, &r);
	r.wrap[LEDGER_AEAD_NONCE + 3] ^= 1;
	snprintf(r.path, sizeof r.path, "/f2");
	ck_assert_int_eq(rec_sign(&r, adm, &raw, &len), 0);
	blk = tu_block(a, adm, NULL, 0, 0, 2, &raw, &len, 1, &blen);
	ck_assert_int_eq(ledger_block_import(a, blk, blen), 1);
	ck_assert_int_eq(ledger_file_key_open(a, r.id, got, NULL), -EBADMSG);
	free(blk);
	free(raw);
	ledger_free(a);
	ledger_key_free(adm);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_filekey");
	TCase *tc = tcase_create("filekey");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_members_open_file_keys);
	tcase_add_test(tc, test_removed_member_cannot_open_later_content);
	tcase_add_test(tc, test_wraps_validated);
	tcase_add_test(tc, test_altered_wrap_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
