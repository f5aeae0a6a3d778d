/* Hosting (DESIGN §11): host claims keyed by content, the publisher's implicit claim,
 * the admin's replica target, and the list of files under it. Each hostile case says
 * what was tried; hand-made records go through another node's real block import, the
 * path a producer's block takes. */
#include "ledger_testutil.h"

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

struct drive {
	struct ledger_key *adm, *bob, *eve;
	uint8_t ka[32], kb[32], ke[32];
	struct ledger *a, *b; /* a: the admin's (producer); b: bob's, a validator */
	struct ledger_content c;
	uint8_t key[32]; /* the content key of /f */
};

/* A public drive: the admin publishes /f, bob is a member, eve has a key only. */
static void drive_start(struct drive *d)
{
	struct ledger_op op = { .type = LEDGER_REC_MEMBER };

	memset(d, 0, sizeof *d);
	d->adm = tu_key(1);
	d->bob = tu_key(2);
	d->eve = tu_key(3);
	ledger_key_public(d->adm, d->ka);
	ledger_key_public(d->bob, d->kb);
	ledger_key_public(d->eve, d->ke);
	d->a = tu_create("a.db", d->adm, (const struct ledger_key *const[]){ d->adm }, 1, true);
	memcpy(op.member, d->kb, 32);
	ck_assert_int_eq(ledger_submit(d->a, &op, NULL), 0);
	tu_clock++;
	tu_content(&d->c, 42);
	op = (struct ledger_op){ .type = LEDGER_REC_CLAIM, .path = "/f", .content = d->c };
	ck_assert_int_eq(ledger_submit(d->a, &op, NULL), 0);
	ledger_content_key(&d->c, d->key);
	d->b = tu_join("b.db", d->a, d->bob, false);
	tu_copy_blocks(d->a, d->b);
	tu_clock++;
}

static void drive_free(struct drive *d)
{
	ledger_free(d->a);
	ledger_free(d->b);
	ledger_key_free(d->adm);
	ledger_key_free(d->bob);
	ledger_key_free(d->eve);
}

/* A record's raw bytes (malloc'd) and length. */
struct blob {
	uint8_t *p;
	size_t n;
};

/* A host record signed by key, every field chosen by the test. */
static struct blob host_rec(struct ledger *l, const struct ledger_key *key,
                            const uint8_t content[32], bool remove)
{
	struct blob b;
	struct rec *r = calloc(1, sizeof *r);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(ledger_rec_init(l, LEDGER_REC_HOST, r), 0);
	memcpy(r->content.root, content, 32);
	r->remove = remove;
	ck_assert_int_eq(rec_sign(r, key, &b.p, &b.n), 0);
	free(r);
	return b;
}

static struct blob setting_rec(struct ledger *l, const struct ledger_key *key, const char *name,
                               int64_t value)
{
	struct blob b;
	struct rec *r = calloc(1, sizeof *r);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(ledger_rec_init(l, LEDGER_REC_SETTING, r), 0);
	snprintf(r->setting, sizeof r->setting, "%s", name);
	r->value = value;
	ck_assert_int_eq(rec_sign(r, key, &b.p, &b.n), 0);
	free(r);
	return b;
}

/* Import into d->b a block by the admin on top of b's head holding one record. */
static int import_one(struct drive *d, struct blob rec)
{
	uint8_t *raw = rec.p;
	size_t bl, len = rec.n;
	uint8_t *blk;
	int rc;

	tu_clock++;
	blk = tu_block(d->b, d->adm, NULL, 0, 0, 2, &raw, &len, 1, &bl);
	rc = ledger_block_import(d->b, blk, bl);
	free(blk);
	free(raw);
	return rc > 0 ? 0 : rc; /* 1: the head moved */
}

static size_t holders(struct ledger *l, const uint8_t key[32], const uint8_t *who)
{
	uint8_t(*v)[32];
	size_t n;
	bool found = false;

	ck_assert_int_eq(ledger_holders(l, key, &v, &n), 0);
	for (size_t i = 0; who && i < n; i++)
		found |= !memcmp(v[i], who, 32);
	free(v);
	if (who)
		ck_assert_msg(found, "the expected holder is not listed");
	return n;
}

/* The publisher holds its content from the start; bob's claim makes two; the list of
 * files under the target (2 by default) has /f, then not; a move keeps the claims. */
START_TEST(test_host_counted)
{
	struct drive d;
	struct ledger_health *h;
	struct ledger_entry e;
	struct ledger_op op = { .type = LEDGER_REC_MOVE, .path = "/f", .dest = "/g" };
	size_t n;

	drive_start(&d);
	ck_assert_int_eq(ledger_replicas(d.b), LEDGER_REPLICAS_DEFAULT);
	ck_assert_uint_eq(holders(d.b, d.key, d.ka), 1);
	ck_assert_int_eq(ledger_health_list(d.b, true, 0, &h, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(h[0].path, "/f");
	ck_assert_uint_eq(h[0].holders, 1);
	ck_assert(!h[0].mine);
	ck_assert_mem_eq(h[0].key, d.key, 32);
	ledger_health_free(h, n);
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, d.key, false)), 0);
	ck_assert_uint_eq(holders(d.b, d.key, d.kb), 2);
	ck_assert_int_eq(ledger_health_list(d.b, true, 0, &h, &n), 0);
	ck_assert_uint_eq(n, 0);
	ledger_health_free(h, n);
	ck_assert_int_eq(ledger_health_list(d.b, false, 0, &h, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].holders, 2);
	ck_assert(h[0].mine); /* b's key is bob's */
	ledger_health_free(h, n);
	/* the claim names the content: the admin moves /f, the holders stay */
	tu_copy_blocks(d.b, d.a);
	tu_clock++;
	ck_assert_int_eq(ledger_submit(d.a, &op, NULL), 0);
	ck_assert_int_eq(ledger_lookup(d.a, "/g", &e), 0);
	ck_assert_uint_eq(holders(d.a, d.key, d.kb), 2);
	/* the state is derived: a rebuild by replay gives the same */
	ck_assert_int_ge(ledger_rebuild(d.a), 1);
	ck_assert_uint_eq(holders(d.a, d.key, d.kb), 2);
	drive_free(&d);
}
END_TEST

/* Attacks on the claim: what a non-member, a forger and a replayer tried, each refused
 * by the real block import of a validating node, and nothing counted. */
START_TEST(test_host_refused)
{
	struct drive d;
	uint8_t nowhere[32] = { 0xee, 1, 2, 3 }, *at;
	struct blob raw, copy;

	drive_start(&d);
	/* eve, no member, claims /f's content: refused */
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.eve, d.key, false)), -EPERM);
	/* eve signs a claim and writes bob's key in as its author: the signature is not
	 * bob's */
	raw = host_rec(d.b, d.eve, d.key, false);
	at = memmem(raw.p, raw.n, "6:author32:", 11);
	ck_assert_ptr_nonnull(at);
	memcpy(at + 11, d.kb, 32);
	ck_assert_int_eq(import_one(&d, raw), -EBADMSG);
	/* bob's real claim with one bit of its signature flipped */
	raw = host_rec(d.b, d.bob, d.key, false);
	at = memmem(raw.p, raw.n, "3:sig64:", 8);
	ck_assert_ptr_nonnull(at);
	at[8 + 5] ^= 1;
	ck_assert_int_eq(import_one(&d, raw), -EBADMSG);
	/* a content no live file has: nothing to host */
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, nowhere, false)), -ENOENT);
	ck_assert_int_eq(ledger_host_claim(d.a, nowhere, true), -ENOENT);
	/* withdrawing a claim never made */
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, d.key, true)), -EEXIST);
	ck_assert_uint_eq(holders(d.b, d.key, d.ka), 1);
	/* bob's claim, then the same bytes again in the next block (a replay), then the
	 * same claim freshly signed (a duplicate): neither changes anything */
	raw = host_rec(d.b, d.bob, d.key, false);
	copy.n = raw.n;
	copy.p = malloc(raw.n);
	ck_assert_ptr_nonnull(copy.p);
	memcpy(copy.p, raw.p, raw.n);
	ck_assert_int_eq(import_one(&d, raw), 0);
	ck_assert_int_eq(import_one(&d, copy), -EALREADY);
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, d.key, false)), -EEXIST);
	ck_assert_uint_eq(holders(d.b, d.key, d.kb), 2);
	drive_free(&d);
}
END_TEST

struct orphans {
	struct ledger *l;
	struct ledger_health *h;
	size_t n;
	int rc;
};

static void list_orphans(void *ctx)
{
	struct orphans *o = ctx;

	o->rc = ledger_health_orphans(o->l, NULL, &o->h, &o->n);
}

/* A removed member's claim stays in the chain and counts for nothing; the publisher
 * that withdraws is no holder either, and the file is an orphan then. Tried too: the
 * orphans listed while another thread holds the ledger's lock (issue 18: the hosting
 * sweep's scan of every file must not stall lookups). */
START_TEST(test_removed_and_withdrawn)
{
	struct drive d;
	struct ledger_op op = { .type = LEDGER_REC_MEMBER, .remove = true };
	struct orphans o = { 0 };

	drive_start(&d);
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, d.key, false)), 0);
	tu_copy_blocks(d.b, d.a);
	ck_assert_uint_eq(holders(d.a, d.key, d.kb), 2);
	tu_clock++;
	memcpy(op.member, d.kb, 32);
	ck_assert_int_eq(ledger_submit(d.a, &op, NULL), 0);
	ck_assert_uint_eq(holders(d.a, d.key, d.ka), 1);
	/* and a removed member can no longer claim */
	tu_copy_blocks(d.a, d.b);
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, d.key, true)), -EPERM);
	/* the admin, publisher of /f, withdraws: no holder is left */
	tu_clock++;
	o.l = d.a;
	list_orphans(&o);
	ck_assert_int_eq(o.rc, 0);
	ck_assert_uint_eq(o.n, 0);
	ledger_health_free(o.h, o.n);
	ck_assert_int_eq(ledger_host_claim(d.a, d.key, false), 0);
	ck_assert_uint_eq(holders(d.a, d.key, NULL), 0);
	tu_without_lock(d.a, list_orphans, &o, "ledger_health_orphans");
	ck_assert_int_eq(o.rc, 0);
	ck_assert_uint_eq(o.n, 1);
	ck_assert_str_eq(o.h[0].path, "/f");
	ck_assert_uint_eq(o.h[0].holders, 0);
	ck_assert_mem_eq(o.h[0].key, d.key, 32);
	ledger_health_free(o.h, o.n);
	ck_assert_int_eq(ledger_host_claim(d.a, d.key, false), -EEXIST);
	tu_clock++;
	ck_assert_int_eq(ledger_host_claim(d.a, d.key, true), 0);
	ck_assert_uint_eq(holders(d.a, d.key, d.ka), 1);
	list_orphans(&o);
	ck_assert_int_eq(o.rc, 0);
	ck_assert_uint_eq(o.n, 0);
	ledger_health_free(o.h, o.n);
	drive_free(&d);
}
END_TEST

/* The publisher's implicit claim when its content is published again (host_on_content,
 * which a fresh node's sync runs for every file: one INSERT OR IGNORE when there is no
 * live claim): after the admin withdrew from /f's content, a new file with that
 * content makes it a holder again, once; a third file changes nothing; a validator
 * that imports the blocks agrees. */
START_TEST(test_published_again_after_withdrawal)
{
	struct drive d;
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = "/g" };

	drive_start(&d);
	ck_assert_int_eq(ledger_host_claim(d.a, d.key, false), 0);
	ck_assert_uint_eq(holders(d.a, d.key, NULL), 0);
	tu_clock++;
	op.content = d.c;
	ck_assert_int_eq(ledger_submit(d.a, &op, NULL), 0);
	ck_assert_uint_eq(holders(d.a, d.key, d.ka), 1);
	tu_clock++;
	op.path = "/h";
	ck_assert_int_eq(ledger_submit(d.a, &op, NULL), 0);
	ck_assert_uint_eq(holders(d.a, d.key, d.ka), 1);
	ck_assert_int_eq(ledger_host_claim(d.a, d.key, true), -EEXIST);
	tu_copy_blocks(d.a, d.b);
	ck_assert_uint_eq(holders(d.b, d.key, d.ka), 1);
	drive_free(&d);
}
END_TEST

static void since(struct ledger *l, const struct ledger_head *at, int want, size_t want_n,
                  struct ledger_head *now)
{
	struct ledger_health *h = NULL;
	size_t n = 0;

	ck_assert_int_eq(ledger_health_orphans_since(l, at, now, &h, &n), want);
	if (want == 0) {
		ck_assert_uint_eq(n, want_n);
		ledger_health_free(h, n);
	}
}

/* The hosting sweep's shortcut (issue 18): from a head with no orphan, only files
 * published since are looked at. Each way a file loses its last holder after that head
 * must come out as an orphan or as "scan it all" (-ESTALE), never as "none": tried a
 * file of the window with no live holder, the only holder
 * withdrawing, a holder removed as a member, a head of a branch this chain does not
 * hold, and a head above ours. A claim that gains a holder is no orphan. */
START_TEST(test_orphans_since)
{
	struct drive d;
	struct ledger_head h0, now, bogus;
	struct ledger_op op = { .type = LEDGER_REC_MEMBER, .remove = true };
	struct ledger_health *h = NULL;
	struct blob claim;
	struct rec r;
	size_t n;

	drive_start(&d);
	ck_assert_int_eq(ledger_head_get(d.b, &h0), 0);
	since(d.b, &h0, 0, 0, &now);
	ck_assert_mem_eq(now.id, h0.id, 32);
	/* a head this chain never had, and one above ours */
	bogus = h0;
	bogus.id[0] ^= 1;
	since(d.b, &bogus, -ESTALE, 0, &now);
	bogus = h0;
	bogus.height++;
	since(d.b, &bogus, -ESTALE, 0, &now);
	/* bob's own claim of a new file: he holds it; no orphan */
	claim.p = tu_record(d.b, d.bob, LEDGER_REC_CLAIM, "/bob", NULL, NULL, NULL, &r, &claim.n);
	ck_assert_int_eq(import_one(&d, claim), 0);
	since(d.b, &h0, 0, 0, &now);
	ck_assert_uint_eq(now.height, h0.height + 1);
	/* a file of the window with no live holder. No record makes one without a
	 * removal or a withdrawal (each -ESTALE below; eve, no member, cannot claim at
	 * all): bob's implicit hold is taken out of the state by hand */
	ck_assert_int_eq(store_exec(d.b, "DELETE FROM hosts WHERE member != (SELECT key FROM"
	                                 " members WHERE producer = 1 LIMIT 1) AND spent IS NULL"),
	                 0);
	ck_assert_int_eq(ledger_health_orphans_since(d.b, &h0, &now, &h, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(h[0].path, "/bob");
	ledger_health_free(h, n);
	/* ... the same answer as a whole scan, which says the head it is of */
	ck_assert_int_eq(ledger_health_orphans(d.b, &bogus, &h, &n), 0);
	ck_assert_mem_eq(bogus.id, now.id, 32);
	ck_assert_uint_eq(bogus.height, now.height);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(h[0].path, "/bob");
	ledger_health_free(h, n);
	ck_assert_int_ge(ledger_rebuild(d.b), 1); /* the state from the blocks again */
	since(d.b, &h0, 0, 0, &now);
	/* from the head now: nothing new */
	ck_assert_int_eq(ledger_head_get(d.b, &h0), 0);
	since(d.b, &h0, 0, 0, &now);
	/* the admin, /f's only holder, withdraws: only a whole scan can tell */
	tu_copy_blocks(d.b, d.a);
	tu_clock++;
	ck_assert_int_eq(ledger_host_claim(d.a, d.key, false), 0);
	since(d.a, &h0, -ESTALE, 0, &now);
	ck_assert_int_eq(ledger_head_get(d.a, &h0), 0);
	since(d.a, &h0, 0, 0, &now);
	/* bob, who holds /bob, is removed */
	tu_clock++;
	memcpy(op.member, d.kb, 32);
	ck_assert_int_eq(ledger_submit(d.a, &op, NULL), 0);
	since(d.a, &h0, -ESTALE, 0, &now);
	ck_assert_int_eq(ledger_health_orphans(d.a, NULL, &h, &n), 0);
	ck_assert_uint_eq(n, 2); /* /bob, /f */
	ledger_health_free(h, n);
	drive_free(&d);
}
END_TEST

/* The replica target is the admin's: bob's setting record is refused, values out of
 * range and unknown settings are refused, and the list under the target follows it. */
START_TEST(test_replicas_setting)
{
	struct drive d;
	struct ledger_health *h;
	size_t n;

	drive_start(&d);
	ck_assert_int_eq(import_one(&d, setting_rec(d.b, d.bob, "replicas", 5)), -EPERM);
	ck_assert_int_eq(ledger_replicas_set(d.b, 5), -EPERM); /* bob's own node says so too */
	ck_assert_int_eq(import_one(&d, setting_rec(d.b, d.adm, "replicas", 0)), -EINVAL);
	ck_assert_int_eq(import_one(&d, setting_rec(d.b, d.adm, "colour", 3)), -EINVAL);
	ck_assert_int_eq(
	    import_one(&d, setting_rec(d.b, d.adm, "replicas", LEDGER_REPLICAS_MAX + 1)), -EINVAL);
	ck_assert_int_eq(ledger_replicas(d.b), LEDGER_REPLICAS_DEFAULT);
	ck_assert_int_eq(import_one(&d, host_rec(d.b, d.bob, d.key, false)), 0);
	ck_assert_int_eq(import_one(&d, setting_rec(d.b, d.adm, "replicas", 3)), 0);
	ck_assert_int_eq(ledger_replicas(d.b), 3);
	ck_assert_int_eq(ledger_health_list(d.b, true, 0, &h, &n), 0);
	ck_assert_uint_eq(n, 1); /* 2 holders, 3 wanted */
	ledger_health_free(h, n);
	ck_assert_int_eq(import_one(&d, setting_rec(d.b, d.adm, "replicas", 3)), -EEXIST);
	/* through the API, on the admin's node */
	ck_assert_int_eq(ledger_replicas_set(d.a, 0), -EINVAL);
	ck_assert_int_eq(ledger_replicas_set(d.a, 1), 0);
	ck_assert_int_eq(ledger_replicas(d.a), 1);
	drive_free(&d);
}
END_TEST

/* Records of the new types survive the strict decoder's round trip, and an unknown
 * field in one is refused. */
START_TEST(test_codec)
{
	struct drive d;
	struct rec r;
	struct blob raw;

	drive_start(&d);
	raw = host_rec(d.b, d.bob, d.key, true);
	ck_assert_int_eq(rec_decode(NULL, raw.p, raw.n, 4096, &r), 0);
	ck_assert_int_eq(r.type, LEDGER_REC_HOST);
	ck_assert(r.remove);
	ck_assert_mem_eq(r.content.root, d.key, 32);
	free(raw.p);
	raw = setting_rec(d.b, d.adm, "replicas", 7);
	ck_assert_int_eq(rec_decode(NULL, raw.p, raw.n, 4096, &r), 0);
	ck_assert_int_eq(r.type, LEDGER_REC_SETTING);
	ck_assert_str_eq(r.setting, "replicas");
	ck_assert_int_eq(r.value, 7);
	free(raw.p);
	drive_free(&d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_host");
	TCase *tc = tcase_create("host");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_host_counted);
	tcase_add_test(tc, test_host_refused);
	tcase_add_test(tc, test_removed_and_withdrawn);
	tcase_add_test(tc, test_published_again_after_withdrawal);
	tcase_add_test(tc, test_orphans_since);
	tcase_add_test(tc, test_replicas_setting);
	tcase_add_test(tc, test_codec);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
