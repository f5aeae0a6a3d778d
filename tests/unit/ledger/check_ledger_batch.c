/* Group commit (ledger_submit_batch, cfg.gather_blocks): a batch of records lands in one
 * block; every record of it is validated as a single submit is, in order, on top of the
 * pending state; a bad record is refused alone and does not sink the good ones; a burst
 * gathers into one block a second instead of running the chain's clock ahead. */
#include "ledger_testutil.h"

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

static void claim_op(struct ledger_op *op, const char *path, uint32_t seed)
{
	memset(op, 0, sizeof *op);
	op->type = LEDGER_REC_CLAIM;
	op->path = path;
	tu_content(&op->content, seed);
}

/* The chain verifies from its raw bytes (every signature again), and a replay of its
 * blocks from them reaches the same state. */
static void assert_verifies_and_replays(struct ledger *l, int blocks)
{
	uint8_t before[32], after[32];

	ck_assert_int_eq(ledger_verify_chain(l, NULL, NULL), 0);
	tu_digest(l, before);
	ck_assert_int_eq(ledger_rebuild(l), blocks);
	tu_digest(l, after);
	ck_assert_mem_eq(before, after, 32);
}

/* Every step-th op of [from, to] that was taken (rcs[i] == 0) is at its path in the
 * block at height, under the id the batch returned, and its record verifies. */
static void assert_landed(struct ledger *l, char (*paths)[64], uint8_t (*ids)[LEDGER_ID_LEN],
                          const int *rcs, int from, int to, int step, int64_t height)
{
	struct ledger_entry e;

	for (int i = from; i <= to; i += step) {
		if (rcs[i])
			continue;
		ck_assert_int_eq(ledger_lookup(l, paths[i], &e), 0);
		ck_assert_int_eq(e.height, height);
		ck_assert_mem_eq(e.record_id, ids[i], LEDGER_ID_LEN);
		ck_assert_int_eq(ledger_verify_record(l, ids[i]), 0);
	}
}

START_TEST(test_batch_lands_in_one_block)
{
	enum { N = 600 };
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger_op *ops = calloc(N + 1, sizeof *ops);
	char(*paths)[64] = calloc(N + 1, 64);
	uint8_t(*ids)[LEDGER_ID_LEN] = calloc(N + 1, LEDGER_ID_LEN);
	int *rcs = calloc(N + 1, sizeof *rcs);

	/* a directory, then files beneath it: each sees the ones before it */
	ops[0].type = LEDGER_REC_MKDIR;
	ops[0].path = "/src";
	ops[0].content.mode = 0755;
	for (int i = 1; i <= N; i++) {
		snprintf(paths[i], 64, "/src/f%04d", i);
		claim_op(&ops[i], paths[i], (uint32_t)i);
	}
	tu_clock++;
	ck_assert_int_eq(ledger_submit_batch(l, ops, N + 1, rcs, ids), N + 1);
	for (int i = 0; i <= N; i++)
		ck_assert_msg(rcs[i] == 0, "op %d: %d", i, rcs[i]);
	ck_assert_int_eq(tu_height(l), 1); /* one block for all of them */
	ck_assert_int_eq(ledger_mempool_count(l), 0);
	assert_landed(l, paths, ids, rcs, 1, N, 97, 1);
	assert_verifies_and_replays(l, 1);
	free(ops);
	free(paths);
	free(ids);
	free(rcs);
	ledger_free(l);
	ledger_key_free(k);
}
END_TEST

START_TEST(test_bad_records_refused_alone)
{
	/* Tried: a claim of a path already taken (in the chain, and earlier in the same
	 * batch), a claim beneath a file, a name with a control character, a transfer to a
	 * key that is no member, a move onto a taken path, an update citing a path nobody
	 * holds, content with a bad piece length. Each is refused with the error a single
	 * submit gives; the good records around them land, in one block. */
	struct ledger_key *k = tu_key(1), *stranger = tu_key(9);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger_op ops[12];
	int rcs[12];
	uint8_t ids[12][LEDGER_ID_LEN];
	struct ledger_entry e;

	claim_op(&ops[0], "/taken", 1);
	ck_assert_int_eq(ledger_submit(l, &ops[0], NULL), 0);
	ck_assert_int_eq(tu_height(l), 1);
	tu_clock++;
	claim_op(&ops[0], "/good1", 2);
	claim_op(&ops[1], "/taken", 3); /* -EEXIST: in the chain */
	claim_op(&ops[2], "/good2", 4);
	claim_op(&ops[3], "/good2", 5);       /* -EEXIST: earlier in this batch */
	claim_op(&ops[4], "/good1/x", 6);     /* -ENOTDIR: beneath a file of this batch */
	claim_op(&ops[5], "/bad\x01name", 7); /* -EINVAL: control character */
	memset(&ops[6], 0, sizeof ops[6]);
	ops[6].type = LEDGER_REC_TRANSFER; /* -ENOKEY: the recipient is no member */
	ops[6].path = "/good1";
	ledger_key_public(stranger, ops[6].to);
	memset(&ops[7], 0, sizeof ops[7]);
	ops[7].type = LEDGER_REC_MOVE; /* -EEXIST: onto a taken path */
	ops[7].path = "/good2";
	ops[7].dest = "/taken";
	claim_op(&ops[8], "/nothing", 8);
	ops[8].type = LEDGER_REC_UPDATE; /* -ENOENT: nothing live there */
	claim_op(&ops[9], "/badpiece", 9);
	ops[9].content.piece_length = 1000; /* -EINVAL */
	memset(&ops[10], 0, sizeof ops[10]);
	ops[10].type = LEDGER_REC_MOVE; /* good: cites /good2 of this batch */
	ops[10].path = "/good2";
	ops[10].dest = "/good3";
	claim_op(&ops[11], "/good2", 10); /* good again: the move freed it */
	ck_assert_int_eq(ledger_submit_batch(l, ops, 12, rcs, ids), 4);
	ck_assert_int_eq(rcs[0], 0);
	ck_assert_int_eq(rcs[1], -EEXIST);
	ck_assert_int_eq(rcs[2], 0);
	ck_assert_int_eq(rcs[3], -EEXIST);
	ck_assert_int_eq(rcs[4], -ENOTDIR);
	ck_assert_int_eq(rcs[5], -EINVAL);
	ck_assert_int_eq(rcs[6], -ENOKEY);
	ck_assert_int_eq(rcs[7], -EEXIST);
	ck_assert_int_eq(rcs[8], -ENOENT);
	ck_assert_int_eq(rcs[9], -EINVAL);
	ck_assert_int_eq(rcs[10], 0);
	ck_assert_int_eq(rcs[11], 0);
	ck_assert_int_eq(tu_height(l), 2);
	ck_assert_int_eq(ledger_mempool_count(l), 0);
	ck_assert_int_eq(ledger_lookup(l, "/good1", &e), 0);
	ck_assert_int_eq(e.height, 2);
	ck_assert_int_eq(ledger_lookup(l, "/good3", &e), 0);
	ck_assert_int_eq(e.type, LEDGER_REC_MOVE);
	ck_assert_mem_eq(e.record_id, ids[10], LEDGER_ID_LEN);
	ck_assert_int_eq(ledger_lookup(l, "/good2", &e), 0);
	ck_assert_mem_eq(e.record_id, ids[11], LEDGER_ID_LEN);
	ck_assert_uint_eq(e.content.length, 1010);
	ck_assert_int_eq(ledger_lookup(l, "/taken", &e), 0);
	ck_assert_uint_eq(e.content.length, 1001); /* not moved over, not re-claimed */
	ck_assert_int_eq(ledger_lookup(l, "/badpiece", &e), -ENOENT);
	ck_assert_int_eq(ledger_lookup(l, "/good1/x", &e), -ENOENT);
	ck_assert_int_eq(ledger_verify_chain(l, NULL, NULL), 0);
	ledger_free(l);
	ledger_key_free(k);
	ledger_key_free(stranger);
}
END_TEST

/* A batch big enough to be signed on several threads before the lock, its block built
 * from the records it checked (no walk of the mempool), and the same when the mempool
 * held a record before: then the block is made by the walk and carries it too. Tried:
 * claims refused among the presigned ones (a path in the chain, a path twice in the
 * batch, a control character, beneath a file): each refused alone with a single
 * submit's error, the others land, and the chain verifies from its raw bytes (every
 * signature made on another thread checked again) and replays to the same state. */
START_TEST(test_batch_presigned)
{
	enum { N = 300 };
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, false);
	struct ledger_op *ops = calloc(N, sizeof *ops);
	char(*paths)[64] = calloc(N, 64);
	uint8_t(*ids)[LEDGER_ID_LEN] = calloc(N, LEDGER_ID_LEN);
	int *rcs = calloc(N, sizeof *rcs);
	struct ledger_entry e;
	struct ledger_op op;

	/* in the mempool before the batch: auto_produce was off */
	claim_op(&op, "/early", 1);
	ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
	ck_assert_int_eq(ledger_mempool_count(l), 1);
	l->cfg.auto_produce = true;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			snprintf(paths[i], 64, "/r%d/f%04d", round, i);
			claim_op(&ops[i], paths[i], (uint32_t)(1000 * round + i + 2));
		}
		snprintf(paths[10], 64, "/early"); /* -EEXIST: pending (round 0), in the chain */
		snprintf(paths[20], 64, "/r%d/f0005", round);   /* -EEXIST: earlier in the batch */
		snprintf(paths[30], 64, "/r%d/bad\x02", round); /* -EINVAL */
		snprintf(paths[40], 64, "/r%d/f0006/x", round); /* -ENOTDIR */
		tu_clock++;
		ck_assert_int_eq(ledger_submit_batch(l, ops, N, rcs, ids), N - 4);
		for (int i = 0; i < N; i++) {
			int want = i == 20 || i == 10 ? -EEXIST
			           : i == 30          ? -EINVAL
			           : i == 40          ? -ENOTDIR
			                              : 0;

			ck_assert_msg(rcs[i] == want, "round %d op %d: %d", round, i, rcs[i]);
		}
		ck_assert_int_eq(tu_height(l), round + 1); /* one block each */
		ck_assert_int_eq(ledger_mempool_count(l), 0);
		assert_landed(l, paths, ids, rcs, 0, N - 1, 7, round + 1);
		/* round 0: the record from before the batch went into the same block */
		ck_assert_int_eq(ledger_lookup(l, "/early", &e), 0);
		ck_assert_int_eq(e.height, 1);
	}
	assert_verifies_and_replays(l, 2);
	free(ops);
	free(paths);
	free(ids);
	free(rcs);
	ledger_free(l);
	ledger_key_free(k);
}
END_TEST

START_TEST(test_batch_of_a_stranger)
{
	/* Tried: a key that is no member of the drive submits a batch of claims. Every
	 * record is refused (-EPERM), nothing enters the mempool; a read-only handle (no
	 * key) is refused as a whole. */
	struct ledger_key *k = tu_key(1), *stranger = tu_key(9);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger *s = tu_join("s.db", l, stranger, true),
	              *ro = tu_join("r.db", l, NULL, false);
	struct ledger_op ops[3];
	int rcs[3];

	claim_op(&ops[0], "/a", 1);
	claim_op(&ops[1], "/b", 2);
	claim_op(&ops[2], "/c", 3);
	ck_assert_int_eq(ledger_submit_batch(s, ops, 3, rcs, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(rcs[i], -EPERM);
	ck_assert_int_eq(ledger_mempool_count(s), 0);
	ck_assert_int_eq(ledger_submit_batch(ro, ops, 3, rcs, NULL), -EPERM);
	ck_assert_int_eq(ledger_mempool_count(ro), 0);
	ledger_free(ro);
	ledger_free(s);
	ledger_free(l);
	ledger_key_free(k);
	ledger_key_free(stranger);
}
END_TEST

START_TEST(test_gather_blocks_one_a_second)
{
	/* A burst of single submits within one second, with gather_blocks: the first
	 * record of a second gets a block at once; the rest wait for the next second's
	 * block, all in one, and no block is ever dated after the clock (without gathering
	 * each record got its own block, a second apart, running ahead of the clock). */
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger_head head;
	struct ledger_op op;
	char path[32];

	l->cfg.gather_blocks = true;
	tu_clock++;
	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof path, "/f%02d", i);
		claim_op(&op, path, (uint32_t)i);
		ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
		ck_assert_int_eq(ledger_head_get(l, &head), 0);
		ck_assert_int_le(head.time, tu_clock);
	}
	ck_assert_int_eq(tu_height(l), 1); /* the first one's block */
	ck_assert_int_eq(ledger_mempool_count(l), 49);
	ck_assert_int_eq(ledger_produce(l), 0); /* same second: nothing yet */
	tu_clock++;
	ck_assert_int_eq(ledger_produce(l), 1);
	ck_assert_int_eq(tu_height(l), 2);
	ck_assert_int_eq(ledger_mempool_count(l), 0);
	ck_assert_int_eq(ledger_head_get(l, &head), 0);
	ck_assert_int_eq(head.time, tu_clock);
	/* a batch in a new second: one block at once */
	tu_clock++;
	{
		struct ledger_op ops[20];
		char paths[20][32];
		int rcs[20];

		for (int i = 0; i < 20; i++) {
			snprintf(paths[i], sizeof paths[i], "/g%02d", i);
			claim_op(&ops[i], paths[i], (uint32_t)(100 + i));
		}
		ck_assert_int_eq(ledger_submit_batch(l, ops, 20, rcs, NULL), 20);
	}
	ck_assert_int_eq(tu_height(l), 3);
	ck_assert_int_eq(ledger_mempool_count(l), 0);
	ledger_free(l);
	ledger_key_free(k);
}
END_TEST

static void count_walks(const char *step, void *ctx)
{
	if (!strcmp(step, "produce:walk"))
		(*(int *)ctx)++;
}

START_TEST(test_batch_ahead_of_the_clock_not_walked)
{
	/* Single submits without gathering (mkdir's at once, as a mount makes them) date
	 * their blocks a second apart and run the chain ahead of the clock; a batch then
	 * still lands in one block made of the records it just checked, with no walk of
	 * the mempool checking and applying each of them again (it did whenever the block
	 * was dated after the clock: the batch was judged at the clock's bound) */
	struct ledger_key *k = tu_key(1);
	struct ledger *l = tu_create("a.db", k, (const struct ledger_key *const[]){ k }, 1, true);
	struct ledger_head head;
	struct ledger_op op, ops[30];
	char path[32], paths[30][32];
	int rcs[30], walks = 0;

	tu_clock++;
	for (int i = 0; i < 5; i++) {
		memset(&op, 0, sizeof op);
		snprintf(path, sizeof path, "/d%d", i);
		op.type = LEDGER_REC_MKDIR;
		op.path = path;
		op.content.mode = 0755;
		ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
	}
	ck_assert_int_eq(ledger_head_get(l, &head), 0);
	ck_assert_int_eq(head.height, 5);
	ck_assert_int_gt(head.time, tu_clock + 3); /* ahead of the clock */
	l->step_hook = count_walks;
	l->step_ctx = &walks;
	for (int i = 0; i < 30; i++) {
		snprintf(paths[i], sizeof paths[i], "/d%d/f%02d", i % 5, i);
		claim_op(&ops[i], paths[i], (uint32_t)i);
	}
	ck_assert_int_eq(ledger_submit_batch(l, ops, 30, rcs, NULL), 30);
	ck_assert_int_eq(walks, 0);
	ck_assert_int_eq(tu_height(l), 6);
	ck_assert_int_eq(ledger_mempool_count(l), 0);
	l->step_hook = NULL;
	assert_verifies_and_replays(l, 6);
	ledger_free(l);
	ledger_key_free(k);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_batch");
	TCase *tc = tcase_create("batch");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_batch_lands_in_one_block);
	tcase_add_test(tc, test_bad_records_refused_alone);
	tcase_add_test(tc, test_batch_presigned);
	tcase_add_test(tc, test_batch_of_a_stranger);
	tcase_add_test(tc, test_gather_blocks_one_a_second);
	tcase_add_test(tc, test_batch_ahead_of_the_clock_not_walked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
