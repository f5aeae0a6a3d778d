/* Ownership nobody can rewrite (issue 12, DESIGN.md §10): finality, producer rights
 * judged at the parent, strictly rising block times, the equivocation guard and its
 * evidence, the rights of removed members, control characters in names, and kill -9
 * during a block import, a reorg and a produce. Each test says what it tried. */
#include "ledger_testutil.h"

#include <fixture.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void setup(void)
{
	fixture_test_setup();
	tu_clock = TU_T0;
}

static void teardown(void)
{
	tu_cleanup();
}

/* The id of a block in wire form. */
static void wire_id(const uint8_t *wire, size_t len, uint8_t out[32])
{
	struct blk_wire w;
	struct blk_hdr h;

	ck_assert_int_eq(blk_wire_parse(wire, len, len, 100000, &w), 0);
	ck_assert_int_eq(blk_hdr_decode(w.hdr.p, w.hdr.len, &h, false), 0);
	memcpy(out, h.id, 32);
	free(w.recs);
}

/* An empty block by key on l's head (time: a second past the head), imported. */
static void empty_block(struct ledger *l, const struct ledger_key *key, int64_t weight)
{
	size_t bl;
	uint8_t *blk = tu_block(l, key, NULL, 0, 0, weight, NULL, NULL, 0, &bl);

	ck_assert_int_eq(ledger_block_import(l, blk, bl), 1);
	free(blk);
}

static int member_op(struct ledger *l, const uint8_t key[32], bool producer, bool remove)
{
	struct ledger_op op = { .type = LEDGER_REC_MEMBER, .producer = producer, .remove = remove };

	memcpy(op.member, key, 32);
	return ledger_submit(l, &op, NULL);
}

static int transfer_op(struct ledger *l, const char *path, const uint8_t to[32])
{
	struct ledger_op op = { .type = LEDGER_REC_TRANSFER, .path = path };

	memcpy(op.to, to, 32);
	return ledger_submit(l, &op, NULL);
}

static int claim_op(struct ledger *l, const char *path, uint32_t seed)
{
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = path };

	tu_content(&op.content, seed);
	return ledger_submit(l, &op, NULL);
}

/* Tried: producers p0 (the admin) and p1 take turns for 7 blocks, p1 holding /p1file;
 * at height 8 the admin removes p1 (as producer and member) and reassigns /p1file to
 * itself; the drive then idles for a day. p1 signs a 50-block fork from height 7,
 * back-dated (every time in the past, in-turn blocks weight 2 a second apart,
 * out-of-turn ones weight 1 a grace delay apart: weight 75 against the real chain's
 * 16). Before finality the node rolled back, p1 was a producer again and /p1file
 * went back to it. Now block 8 is final (its one remaining producer signed it), the
 * fork is refused, the head and the state do not move. */
START_TEST(test_removed_producer_backdated_fork_refused)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2);
	const struct ledger_key *const ps[] = { p0, p1 };
	struct ledger *l = tu_create("a.db", p0, ps, 2, false);
	struct ledger_head before, after;
	struct ledger_finality fin;
	struct ledger_entry e;
	uint8_t parent[32], d1[32], d2[32], *raw, *blk;
	struct rec r;
	size_t len, bl;
	int64_t t;
	int head_moves = 0, refused = 0;

	for (int h = 1; h <= 7; h++) {
		if (h == 1) { /* p1's turn: its claim */
			raw = tu_record(l, p1, LEDGER_REC_CLAIM, "/p1file", NULL, NULL, NULL, &r,
			                &len);
			blk = tu_block(l, p1, NULL, 0, 0, 2, &raw, &len, 1, &bl);
			ck_assert_int_eq(ledger_block_import(l, blk, bl), 1);
			free(blk);
			free(raw);
			continue;
		}
		empty_block(l, ps[h % 2], 2);
	}
	ck_assert_int_eq(ledger_finality_get(l, &fin), 0);
	ck_assert_uint_eq(fin.height, 6); /* both signed at 6 and later */
	ck_assert_int_eq(chain_id_at(l, 7, parent), 0);
	ck_assert_int_eq(member_op(l, p1->pub, true, true), 0);
	ck_assert_int_eq(member_op(l, p1->pub, false, true), 0);
	ck_assert_int_eq(transfer_op(l, "/p1file", p0->pub), 0);
	ck_assert_int_eq(ledger_produce(l), 1); /* height 8, p0's turn */
	ck_assert_int_eq(ledger_lookup(l, "/p1file", &e), 0);
	ck_assert_mem_eq(e.owner, p0->pub, 32);
	ck_assert_int_eq(ledger_finality_get(l, &fin), 0);
	ck_assert_uint_eq(fin.height, 8);
	ck_assert_int_eq(ledger_head_get(l, &before), 0);
	tu_digest(l, d1);

	tu_clock += 86400;
	t = TU_T0 + 7;
	for (int i = 0; i < 50; i++) {
		int64_t height = 8 + i;
		bool in_turn = height % 2 == 1;
		int rc;

		t += in_turn ? 1 : 10;
		blk = tu_block(l, p1, parent, height, t, in_turn ? 2 : 1, NULL, NULL, 0, &bl);
		wire_id(blk, bl, parent);
		rc = ledger_block_import(l, blk, bl);
		free(blk);
		ck_assert_int_le(rc, 1);
		head_moves += rc == 1;
		refused += rc < 0;
	}
	ck_assert_int_eq(head_moves, 0);
	ck_assert_int_gt(refused, 0);
	ck_assert_int_eq(ledger_head_get(l, &after), 0);
	ck_assert_mem_eq(after.id, before.id, 32);
	tu_digest(l, d2);
	ck_assert_mem_eq(d1, d2, 32);
	ck_assert_int_eq(ledger_lookup(l, "/p1file", &e), 0);
	ck_assert_mem_eq(e.owner, p0->pub, 32);
	ck_assert(!chain_is_producer(l, p1->pub));
	/* one producer of two on the fork: refused, but no conflicting final branch */
	ck_assert_int_eq(ledger_finality_get(l, &fin), 0);
	ck_assert(!fin.conflict);
	/* and a replay takes the same decisions */
	ck_assert_int_eq(ledger_rebuild(l), 8);
	tu_digest(l, d2);
	ck_assert_mem_eq(d1, d2, 32);
	ledger_free(l);
	ledger_key_free(p0);
	ledger_key_free(p1);
}
END_TEST

static void on_problem(const struct ledger_problem *p, void *ctx)
{
	int *n = ctx;

	if (p->what && !strcmp(p->what, LEDGER_PROBLEM_EQUIVOCATION))
		(*n)++;
}

/* Tried: three producers; our chain has blocks by p1 and p2 (height 1 final). p1 and
 * p2 also sign a heavier branch from genesis, at the same heights: two producers of
 * three on it, so it is final by its own producers and conflicts with ours. The node
 * keeps its chain, says so (status flag), and verify lists the two equivocations. */
START_TEST(test_conflicting_final_branch_and_evidence)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2), *p2 = tu_key(3);
	const struct ledger_key *const ps[] = { p0, p1, p2 };
	struct ledger *l = tu_create("a.db", p0, ps, 3, false);
	struct ledger_finality fin;
	struct ledger_head before, after;
	uint8_t parent[32], *blk;
	size_t bl;
	int64_t t = TU_T0;
	int equiv = 0, rc = 0;

	empty_block(l, p1, 2); /* height 1: p1's turn */
	empty_block(l, p2, 2); /* height 2: p2's turn */
	ck_assert_int_eq(ledger_finality_get(l, &fin), 0);
	ck_assert_uint_eq(fin.height, 1);
	ck_assert_uint_eq(fin.evidence, 0);
	ck_assert_int_eq(ledger_head_get(l, &before), 0);
	ledger_drive_id(l, parent);
	for (int h = 1; h <= 3 && rc >= 0; h++) {
		t += 5; /* other times: other blocks */
		blk = tu_block(l, ps[h % 3], parent, h, t, 2, NULL, NULL, 0, &bl);
		wire_id(blk, bl, parent);
		rc = ledger_block_import(l, blk, bl);
		free(blk);
		ck_assert_int_ne(rc, 1);
	}
	ck_assert_int_eq(rc, -EPERM);
	ck_assert_int_eq(ledger_head_get(l, &after), 0);
	ck_assert_mem_eq(after.id, before.id, 32);
	ck_assert_int_eq(ledger_finality_get(l, &fin), 0);
	ck_assert(fin.conflict);
	ck_assert_uint_eq(fin.evidence, 2);
	ck_assert_int_eq(ledger_verify_chain(l, on_problem, &equiv), 2);
	ck_assert_int_eq(equiv, 2);
	ledger_free(l);
	ledger_key_free(p0);
	ledger_key_free(p1);
	ledger_key_free(p2);
}
END_TEST

/* Tried: p1 signs a second block at height 1 (another time), stored on the side of a
 * longer chain:
 * evidence, shown by verify as an equivocation even though the chain is sound. */
START_TEST(test_equivocation_evidence_verify)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2);
	const struct ledger_key *const ps[] = { p0, p1 };
	struct ledger *l = tu_create("a.db", p0, ps, 2, false);
	struct ledger_finality fin;
	uint8_t *blk;
	size_t bl;
	int equiv = 0;

	empty_block(l, p1, 2);
	empty_block(l, p0, 2);
	ck_assert_int_eq(ledger_verify_chain(l, NULL, NULL), 0);
	blk = tu_block(l, p1, l->drive, 1, TU_T0 + 5, 2, NULL, NULL, 0, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), 0);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), 0); /* once is enough */
	free(blk);
	ck_assert_int_eq(ledger_finality_get(l, &fin), 0);
	ck_assert_uint_eq(fin.evidence, 1);
	ck_assert_int_eq(ledger_verify_chain(l, on_problem, &equiv), 1);
	ck_assert_int_eq(equiv, 1);
	ledger_free(l);
	ledger_key_free(p0);
	ledger_key_free(p1);
}
END_TEST

/* Tried: this node's key already signed height 2 (its last signed height says so)
 * but that block is not in its chain (it left before a crash that lost it, or a reorg
 * took it): asked to produce at height 2 again, it waits, and a second producer
 * makes height 2; it produces at 3. */
START_TEST(test_never_two_blocks_at_one_height)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2);
	const struct ledger_key *const ps[] = { p0, p1 };
	struct ledger *l = tu_create("a.db", p0, ps, 2, false);
	int64_t last;

	empty_block(l, p1, 2);
	ck_assert_int_eq(claim_op(l, "/x", 1), 0);
	ledger_lock(l);
	ck_assert_int_eq(finality_signed_put(l, 2), 0);
	ledger_unlock(l);
	ck_assert_int_eq(ledger_produce(l), 0);
	ck_assert_int_eq(tu_height(l), 1);
	tu_clock += 20;
	empty_block(l, p1, 1); /* height 2, p1 out of turn */
	tu_clock += 20;        /* height 3 is p1's turn too: p0 after the grace delay */
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(tu_height(l), 3);
	ledger_lock(l);
	ck_assert_int_eq(finality_last_signed(l, &last), 0);
	ledger_unlock(l);
	ck_assert_int_eq(last, 3);
	ledger_free(l);
	ledger_key_free(p0);
	ledger_key_free(p1);
}
END_TEST

/* The produce commit: synchronous=FULL, and the last signed height in it. */
struct sync_seen {
	struct ledger *l;
	int sync_mode;
	int64_t last_signed;
	int calls;
};

static void see_produce(const char *step, void *ctx)
{
	struct sync_seen *s = ctx;
	sqlite3_stmt *st;

	if (strcmp(step, "produce:before-commit"))
		return;
	s->calls++;
	ck_assert_int_eq(sqlite3_prepare_v2(s->l->db, "PRAGMA synchronous", -1, &st, NULL),
	                 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	s->sync_mode = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	ck_assert_int_eq(finality_last_signed(s->l, &s->last_signed), 0);
}

/* Tried: a durable node (not fast_unsafe) produces: the transaction that stores its
 * block and its last signed height commits with synchronous=FULL (2), so the block
 * is on disk before it can leave. */
START_TEST(test_produce_durable_before_it_leaves)
{
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, false);
	struct ledger_config cfg;
	struct sync_seen s = { 0 };
	char *path = tu_path("a.db");

	ledger_free(l);
	tu_config(&cfg, path, k, false);
	cfg.fast_unsafe = false;
	ck_assert_int_eq(ledger_open(&cfg, &l), 0);
	s.l = l;
	l->step_hook = see_produce;
	l->step_ctx = &s;
	ck_assert_int_eq(claim_op(l, "/x", 1), 0);
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_int_eq(s.sync_mode, 2);
	ck_assert_int_eq(s.last_signed, 1);
	ledger_free(l);
	free(path);
	ledger_key_free(k);
}
END_TEST

/* Tried: member m holds /m/doc; the admin removes m. Then m's update, move, revoke
 * and transfer of its own path are refused in a block and by submit; so is a record
 * m signed while still a member that reaches a block after the removal. A transfer to
 * a key that is no member is refused (-ENOKEY). The admin reassigns /m/doc to a live
 * member; a non-admin may not reassign. */
START_TEST(test_removed_member_rights)
{
	struct ledger_key *k = tu_key(1), *m = tu_key(2), *o = tu_key(3), *x = tu_key(4);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, false);
	struct ledger *lm;
	struct ledger_entry e, doc;
	struct rec r, early;
	uint8_t *raw, *early_raw, *blk;
	size_t len, early_len, bl;

	ck_assert_int_eq(member_op(l, m->pub, false, false), 0);
	ck_assert_int_eq(member_op(l, o->pub, false, false), 0);
	ck_assert_int_eq(ledger_produce(l), 1);
	raw = tu_record(l, m, LEDGER_REC_CLAIM, "/m/doc", NULL, NULL, NULL, &r, &len);
	tu_inject(l, &r, raw, len);
	free(raw);
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(ledger_lookup(l, "/m/doc", &doc), 0);
	ck_assert_mem_eq(doc.owner, m->pub, 32);
	/* while a member, m may give to members only */
	raw = tu_record(l, m, LEDGER_REC_TRANSFER, "/m/doc", NULL, doc.record_id, x->pub, &r, &len);
	blk = tu_block(l, k, NULL, 0, 0, 2, &raw, &len, 1, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), -ENOKEY);
	free(blk);
	free(raw);
	/* a record m signs now, as a member, and that reaches a block only later */
	early_raw = tu_record(l, m, LEDGER_REC_UPDATE, "/m/doc", NULL, doc.record_id, NULL, &early,
	                      &early_len);
	ck_assert_int_eq(member_op(l, m->pub, false, true), 0);
	ck_assert_int_eq(ledger_produce(l), 1);
	blk = tu_block(l, k, NULL, 0, 0, 2, &early_raw, &early_len, 1, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), -EPERM);
	free(blk);
	free(early_raw);
	for (int t = LEDGER_REC_UPDATE; t <= LEDGER_REC_REVOKE; t++) {
		raw = tu_record(l, m, (enum ledger_rec_type)t, "/m/doc", "/m/moved", doc.record_id,
		                o->pub, &r, &len);
		blk = tu_block(l, k, NULL, 0, 0, 2, &raw, &len, 1, &bl);
		ck_assert_msg(ledger_block_import(l, blk, bl) == -EPERM, "%s by a removed member",
		              ledger_rec_type_name((enum ledger_rec_type)t));
		free(blk);
		free(raw);
	}
	lm = tu_join("m.db", l, m, false);
	tu_copy_blocks(l, lm);
	ck_assert_int_eq(transfer_op(lm, "/m/doc", o->pub), -EPERM);
	ck_assert_int_eq(
	    ledger_submit(lm, &(struct ledger_op){ .type = LEDGER_REC_REVOKE, .path = "/m/doc" },
	                  NULL),
	    -EPERM);
	/* another member may not reassign it; the admin may, to a live member only */
	raw = tu_record(l, o, LEDGER_REC_TRANSFER, "/m/doc", NULL, doc.record_id, o->pub, &r, &len);
	blk = tu_block(l, k, NULL, 0, 0, 2, &raw, &len, 1, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), -EPERM);
	free(blk);
	free(raw);
	ck_assert_int_eq(transfer_op(l, "/m/doc", x->pub), -ENOKEY);
	ck_assert_int_eq(transfer_op(l, "/m/doc", o->pub), 0);
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(ledger_lookup(l, "/m/doc", &e), 0);
	ck_assert_mem_eq(e.owner, o->pub, 32);
	/* the admin may not take a live member's path */
	ck_assert_int_eq(transfer_op(l, "/m/doc", k->pub), -EPERM);
	ledger_free(lm);
	ledger_free(l);
	ledger_key_free(k);
	ledger_key_free(m);
	ledger_key_free(o);
	ledger_key_free(x);
}
END_TEST

/* Tried: names with a newline (forges `swarmfs log` lines), ESC (terminal escapes),
 * DEL, a C0 TAB, a C1 NEL (U+0085) and CSI (U+009B), in a claim, as a move's target and
 * in a record inside a block: each refused with -EINVAL (in a block: -EBADMSG, the
 * record does not decode). U+00A0 and U+00E9 next to them are fine. */
START_TEST(test_control_characters_refused)
{
	static const char *const bad[] = { "/a\nb",     "/x\x1b[31mred", "/del\x7f",
		                           "/d/tab\tx", "/nel\xc2\x85",  "/csi\xc2\x9b" };
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger_entry e;
	struct rec r;
	uint8_t *raw, *blk;
	size_t len, bl;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(claim_op(l, bad[i], 1) == -EINVAL, "claim %zu", i);
		ck_assert_int_eq(ledger_lookup(l, bad[i], &e), -EINVAL);
		raw = tu_record(l, k, LEDGER_REC_CLAIM, bad[i], NULL, NULL, NULL, &r, &len);
		blk = tu_block(l, k, NULL, 0, 0, 2, &raw, &len, 1, &bl);
		ck_assert_msg(ledger_block_import(l, blk, bl) == -EBADMSG, "block %zu", i);
		free(blk);
		free(raw);
	}
	ck_assert_int_eq(claim_op(l,
	                          "/nbsp\xc2\xa0"
	                          "caf\xc3\xa9",
	                          1),
	                 0);
	ck_assert_int_eq(ledger_submit(l,
	                               &(struct ledger_op){ .type = LEDGER_REC_MOVE,
	                                                    .path = "/nbsp\xc2\xa0"
	                                                            "caf\xc3\xa9",
	                                                    .dest = "/esc\x1b" },
	                               NULL),
	                 -EINVAL);
	ck_assert_int_eq(tu_height(l), 1);
	ledger_free(l);
	ledger_key_free(k);
}
END_TEST

/* Tried: a block dated at its parent's time (times must rise strictly); an
 * out-of-turn block dated a grace delay after its parent while this node's clock says
 * only 1 s passed (-EAGAIN, not marked bad: it imports once the clock has passed the
 * grace delay); a removed producer's block on a side branch above its removal, refused
 * at once instead of stored. */
START_TEST(test_block_times_and_rights_at_the_parent)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2);
	const struct ledger_key *const ps[] = { p0, p1 };
	struct ledger *l = tu_create("a.db", p0, ps, 2, false);
	struct ledger_head head;
	uint8_t *blk, at[32];
	size_t bl;

	blk = tu_block(l, p1, NULL, 0, TU_T0, 2, NULL, NULL, 0, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), -EINVAL);
	free(blk);
	empty_block(l, p1, 2); /* height 1 at T0 + 1 */
	ck_assert_int_eq(ledger_head_get(l, &head), 0);
	tu_clock = head.time + 1;
	blk = tu_block(l, p1, NULL, 0, head.time + 10, 1, NULL, NULL, 0, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), -EAGAIN);
	tu_clock = head.time + 10;
	ck_assert_int_eq(ledger_block_import(l, blk, bl), 1);
	free(blk);
	/* p1 removed at height 3; the chain goes on to 4 */
	ck_assert_int_eq(member_op(l, p1->pub, true, true), 0);
	tu_clock += 20;
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(claim_op(l, "/x", 1), 0);
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(tu_height(l), 4);
	ck_assert_int_eq(chain_id_at(l, 3, at), 0);
	tu_clock += 20;
	blk = tu_block(l, p1, at, 4, tu_clock, 1, NULL, NULL, 0, &bl);
	ck_assert_int_eq(ledger_block_import(l, blk, bl), -EPERM);
	free(blk);
	ledger_free(l);
	ledger_key_free(p0);
	ledger_key_free(p1);
}
END_TEST

/* ---- kill -9 at a chosen step ---- */

struct crash_at {
	const char *step;
	int after; /* this many passes first */
};

static void crash_hook(const char *step, void *ctx)
{
	struct crash_at *c = ctx;

	if (!strcmp(step, c->step) && c->after-- <= 0)
		kill(getpid(), SIGKILL);
}

static void open_durable(const char *file, const struct ledger_key *k, struct ledger **out)
{
	struct ledger_config cfg;
	char *path = tu_path(file);

	tu_config(&cfg, path, k, false);
	cfg.fast_unsafe = false;
	ck_assert_int_eq(ledger_open(&cfg, out), 0);
	free(path);
}

/* Run fn(arg) in a child that dies by SIGKILL at the step; assert it did. */
static void run_until_killed(void (*fn)(void *), void *arg)
{
	int st;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fn(arg);
		_exit(3); /* the step never came */
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
}

/* After a crash: consistent (replay equals the state as reopened), verified. */
static void assert_consistent(struct ledger *l)
{
	uint8_t d1[32], d2[32];
	int64_t h = tu_height(l);

	ck_assert_int_eq(ledger_verify_chain(l, NULL, NULL), 0);
	tu_digest(l, d1);
	ck_assert_int_eq(ledger_rebuild(l), h);
	tu_digest(l, d2);
	ck_assert_mem_eq(d1, d2, 32);
}

struct import_job {
	const char *src, *dst;
	const struct ledger_key *k;
	struct crash_at at;
};

static void import_all(void *arg)
{
	struct import_job *j = arg;
	struct ledger *src, *dst;

	open_durable(j->src, j->k, &src);
	open_durable(j->dst, NULL, &dst);
	dst->step_hook = crash_hook;
	dst->step_ctx = &j->at;
	tu_copy_blocks(src, dst);
}

/* Tried: a node importing a 40-block chain of every kind of record is killed -9 in
 * the middle of block 25's transaction (after it applied, before its commit). It
 * reopens at height 24, consistent (replay equals the state as reopened), every path
 * of those blocks there; the rest then imports to the source's exact state. */
START_TEST(test_kill9_during_import)
{
	struct ledger_key *k = tu_key(1), *o = tu_key(2);
	struct ledger *src =
	    tu_create("src.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger *dst = tu_join("dst.db", src, o, false);
	struct import_job j = { "src.db", "dst.db", k, { "block:before-commit", 24 } };
	struct ledger_entry e;
	uint8_t want[32], got[32];
	char p[32];

	ck_assert_int_eq(member_op(src, o->pub, false, false), 0);
	for (int i = 0; i < 39; i++) {
		snprintf(p, sizeof p, "/f%d", i);
		ck_assert_int_eq(claim_op(src, p, (uint32_t)i), 0);
		if (i % 3 == 1)
			ck_assert_int_eq(transfer_op(src, p, o->pub), 0);
	}
	tu_digest(src, want);
	ledger_free(dst);
	ledger_free(src);
	run_until_killed(import_all, &j);
	open_durable("dst.db", NULL, &dst);
	ck_assert_int_eq(tu_height(dst), 24);
	assert_consistent(dst);
	for (int i = 0; i < 39; i++) {
		struct ledger_entry in_src;

		snprintf(p, sizeof p, "/f%d", i);
		if (ledger_lookup(dst, p, &e) == 0)
			continue;
		open_durable("src.db", k, &src);
		ck_assert_int_eq(ledger_lookup(src, p, &in_src), 0);
		ck_assert_msg(in_src.height > 24, "%s of height %lld lost", p,
		              (long long)in_src.height);
		ledger_free(src);
	}
	open_durable("src.db", k, &src);
	tu_copy_blocks(src, dst);
	tu_digest(dst, got);
	ck_assert_mem_eq(want, got, 32);
	ledger_free(src);
	ledger_free(dst);
	ledger_key_free(k);
	ledger_key_free(o);
}
END_TEST

/* A fresh node's sync of src's blocks above dst's head, as one blocks message brings
 * them (sync_apply_blocks: one run, applied with the bulk page cache). */
static void sync_rest(void *arg)
{
	struct import_job *j = arg;
	struct ledger *src, *dst;
	struct blk_wire *w;
	struct ben *raw;
	int64_t from, to;
	bool moved;

	open_durable(j->src, j->k, &src);
	open_durable(j->dst, NULL, &dst);
	dst->step_hook = j->at.step ? crash_hook : NULL;
	dst->step_ctx = &j->at;
	from = tu_height(dst) + 1;
	to = tu_height(src);
	w = calloc((size_t)(to - from + 1), sizeof *w);
	raw = calloc((size_t)(to - from + 1), sizeof *raw);
	for (int64_t h = from; h <= to; h++) {
		struct ben *r = &raw[h - from];
		uint8_t *b;

		ck_assert_int_eq(ledger_block_get(src, (uint64_t)h, &b, &r->len), 0);
		r->p = b;
		ck_assert_int_eq(blk_wire_parse(r->p, r->len, (size_t)dst->params.max_block_bytes,
		                                (size_t)dst->params.max_block_records,
		                                &w[h - from]),
		                 0);
	}
	ck_assert_int_eq(sync_apply_blocks(dst, w, raw, (size_t)(to - from + 1), false, &moved), 0);
	for (int64_t h = from; h <= to; h++) {
		free(w[h - from].recs);
		free((void *)raw[h - from].p);
	}
	free(w);
	free(raw);
	ledger_free(dst);
	ledger_free(src);
}

/* Tried: a fresh node syncing a run of 5 blocks of 1000 claims (one blocks message, so
 * one run applied with the bulk page cache, its groups in one transaction held over
 * releases of the lock) is killed -9 after its third block applied, before the commit.
 * It reopens consistent (replay equals the state as reopened) at a height below the
 * run's end, and the sync then resumes to the source's exact state. */
START_TEST(test_kill9_during_bulk_sync)
{
	enum { PER = 1000, BLOCKS = 5 };
	struct ledger_key *k = tu_key(1), *o = tu_key(2);
	struct ledger *src =
	    tu_create("src.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger *dst = tu_join("dst.db", src, o, false);
	struct import_job j = { "src.db", "dst.db", k, { "block:before-commit", 2 } };
	struct ledger_op *ops = calloc(PER, sizeof *ops);
	char(*paths)[32] = calloc(PER, 32);
	int *rcs = calloc(PER, sizeof *rcs);
	uint8_t want[32], got[32];

	for (int b = 0; b < BLOCKS; b++) {
		for (int i = 0; i < PER; i++) {
			snprintf(paths[i], 32, "/d%d/f%04d", i % 7, b * PER + i);
			ops[i] = (struct ledger_op){ .type = LEDGER_REC_CLAIM, .path = paths[i] };
			tu_content(&ops[i].content, (uint32_t)(b * PER + i));
		}
		tu_clock++;
		ck_assert_int_eq(ledger_submit_batch(src, ops, PER, rcs, NULL), PER);
	}
	ck_assert_int_eq(tu_height(src), BLOCKS);
	tu_digest(src, want);
	ledger_free(dst);
	ledger_free(src);
	run_until_killed(sync_rest, &j);
	open_durable("dst.db", NULL, &dst);
	ck_assert_int_lt(tu_height(dst), BLOCKS);
	assert_consistent(dst);
	ledger_free(dst);
	j.at.step = NULL;
	sync_rest(&j);
	open_durable("dst.db", NULL, &dst);
	ck_assert_int_eq(tu_height(dst), BLOCKS);
	tu_digest(dst, got);
	ck_assert_mem_eq(want, got, 32);
	ledger_free(dst);
	free(ops);
	free(paths);
	free(rcs);
	ledger_key_free(k);
	ledger_key_free(o);
}
END_TEST

/* Tried: a node on a chain of 6 blocks (p0 out of turn, with its claims) hears of p1's
 * heavier chain of 4 blocks and is killed -9 in the reorg, right after it rolled its
 * state back to the fork point. It reopens on its old chain, consistent, no path
 * lost; the reorg then completes to p1's exact state. */
START_TEST(test_kill9_during_reorg)
{
	struct ledger_key *p0 = tu_key(1), *p1 = tu_key(2);
	const struct ledger_key *const ps[] = { p0, p1 };
	struct ledger *a = tu_create("a.db", p0, ps, 2, false);
	struct ledger *b = tu_join("b.db", a, p1, false);
	struct import_job j = { "b.db", "a.db", p1, { "reorg:rolled-back", 0 } };
	struct ledger_entry e;
	uint8_t before[32], want[32], got[32];
	char p[32];

	/* a: 3 blocks out of turn (weight 1 each) */
	for (int i = 0; i < 3; i++) {
		tu_clock += 20;
		snprintf(p, sizeof p, "/a%d", i);
		ck_assert_int_eq(claim_op(a, p, (uint32_t)i), 0);
		ck_assert_int_eq(ledger_produce(a), 1);
	}
	/* b: in turn where it can, heavier */
	for (int i = 0; i < 4; i++) {
		tu_clock += 20;
		snprintf(p, sizeof p, "/b%d", i);
		ck_assert_int_eq(claim_op(b, p, 100u + (uint32_t)i), 0);
		ck_assert_int_eq(ledger_produce(b), 1);
	}
	tu_digest(a, before);
	tu_digest(b, want);
	ledger_free(a);
	ledger_free(b);
	run_until_killed(import_all, &j);
	open_durable("a.db", p0, &a);
	tu_digest(a, got);
	ck_assert_mem_eq(before, got, 32);
	assert_consistent(a);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "/a%d", i);
		ck_assert_int_eq(ledger_lookup(a, p, &e), 0);
	}
	open_durable("b.db", p1, &b);
	tu_copy_blocks(b, a);
	tu_digest(a, got);
	ck_assert_mem_eq(want, got, 32);
	assert_consistent(a);
	/* a's own claims lost the race: back in its mempool, not lost */
	ck_assert_int_eq(ledger_mempool_count(a), 3);
	ledger_free(a);
	ledger_free(b);
	ledger_key_free(p0);
	ledger_key_free(p1);
}
END_TEST

struct produce_job {
	const struct ledger_key *k;
	struct crash_at at;
};

static void produce_once(void *arg)
{
	struct produce_job *j = arg;
	struct ledger *l;

	open_durable("a.db", j->k, &l);
	l->step_hook = crash_hook;
	l->step_ctx = &j->at;
	ck_assert_int_eq(claim_op(l, "/x", 1), 0);
	ledger_produce(l);
}

/* Tried: kill -9 in the produce commit (the block signed, not yet durable, so it never
 * left): the node reopens at the old height, its record still pending and its last
 * signed height unchanged, and then produces that height (the first block never
 * existed outside the dead process). */
START_TEST(test_kill9_during_produce)
{
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, false);
	struct produce_job j = { k, { "produce:before-commit", 0 } };
	int64_t last;

	ck_assert_int_eq(claim_op(l, "/a", 1), 0);
	ck_assert_int_eq(ledger_produce(l), 1);
	ledger_free(l);
	run_until_killed(produce_once, &j);
	open_durable("a.db", k, &l);
	ck_assert_int_eq(tu_height(l), 1);
	ck_assert_int_eq(ledger_mempool_count(l), 1);
	ledger_lock(l);
	ck_assert_int_eq(finality_last_signed(l, &last), 0);
	ledger_unlock(l);
	ck_assert_int_eq(last, 1);
	assert_consistent(l);
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(tu_height(l), 2);
	ledger_free(l);
	ledger_key_free(k);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("finality");
	TCase *tc = tcase_create("finality");

	tcase_add_checked_fixture(tc, setup, teardown);
	/* the kill -9 tests sign and apply thousands of records: Check's 4 s default was
	 * passed on a loaded machine (test_kill9_during_bulk_sync, 5.1 s at load 15) */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_removed_producer_backdated_fork_refused);
	tcase_add_test(tc, test_conflicting_final_branch_and_evidence);
	tcase_add_test(tc, test_equivocation_evidence_verify);
	tcase_add_test(tc, test_never_two_blocks_at_one_height);
	tcase_add_test(tc, test_produce_durable_before_it_leaves);
	tcase_add_test(tc, test_removed_member_rights);
	tcase_add_test(tc, test_control_characters_refused);
	tcase_add_test(tc, test_block_times_and_rights_at_the_parent);
	tcase_add_test(tc, test_kill9_during_import);
	tcase_add_test(tc, test_kill9_during_bulk_sync);
	tcase_add_test(tc, test_kill9_during_reorg);
	tcase_add_test(tc, test_kill9_during_produce);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
