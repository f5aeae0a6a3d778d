/* Group commit (ledger_submit_batch): many local records checked in order on top of the
 * pending state, signed and stored in one transaction, then one block for them all.
 * Validation is per record, as ledger_submit does it: a bad op is refused alone. */
#include "ledger_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIGN_MIN_PARALLEL 64 /* fewer records than this: signed on the calling thread */
#define SIGNERS_MAX       8

/* The record a change must cite: the live one, pending records of this node and the
 * batch's earlier ops included (they are applied in the savepoint). */
static bool cites_prev(const struct rec *r)
{
	return r->type != LEDGER_REC_CLAIM && r->type != LEDGER_REC_MKDIR && rec_has_path(r->type);
}

/* Whether r is whole before the lock is taken: nothing in it comes from the state (no
 * cited record; no file key wrap, which needs the drive's current epoch). Such records
 * are signed first, on every core, without the lock. */
static bool presignable(const struct ledger *l, const struct rec *r)
{
	return !cites_prev(r) && !l->params.private_drive;
}

struct signers {
	struct ledger *l;
	struct rec *recs;
	uint8_t **raws;
	size_t *lens;
	int *rcs;
	size_t n;
	atomic_size_t next;
};

/* Sign the presignable records not taken yet, one at a time, until none are left. */
static void *signer_main(void *arg)
{
	struct signers *s = arg;
	size_t i;

	while ((i = atomic_fetch_add(&s->next, 1)) < s->n)
		if (!s->rcs[i] && presignable(s->l, &s->recs[i]))
			s->rcs[i] = rec_sign(&s->recs[i], s->l->cfg.key, &s->raws[i], &s->lens[i]);
	return NULL;
}

/* Sign what can be signed before the lock (raws[i] set, or rcs[i] the error), on as
 * many threads as there are cores. Lock not held. */
static void presign(struct ledger *l, struct rec *recs, uint8_t **raws, size_t *lens, int *rcs,
                    size_t n)
{
	struct signers s = { .l = l, .recs = recs, .raws = raws, .lens = lens, .rcs = rcs, .n = n };
	pthread_t th[SIGNERS_MAX];
	long cpus = n >= SIGN_MIN_PARALLEL ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
	size_t nt = cpus > SIGNERS_MAX ? SIGNERS_MAX : cpus > 1 ? (size_t)cpus : 1, started = 0;

	atomic_init(&s.next, 0);
	/* this thread is one of the signers */
	for (size_t t = 0; t + 1 < nt; t++)
		if (pthread_create(&th[started], NULL, signer_main, &s) == 0)
			started++;
	signer_main(&s);
	for (size_t t = 0; t < started; t++)
		pthread_join(th[t], NULL);
}

/* Check, sign (unless presign did) and apply one op inside the savepoint; its raw bytes
 * to *out_raw. */
static int batch_one(struct ledger *l, const struct chain_pending *p, const struct ledger_op *op,
                     struct rec *r, uint8_t **out_raw, size_t *out_len)
{
	int rc;

	if (*out_raw) {
		/* signed before the lock: the same checks, on the state as it is now */
		rc = chain_pending_check(l, p, r);
		goto signed_;
	}
	memcpy(r->author, l->cfg.key->pub, 32);
	if (cites_prev(r)) {
		struct ledger_entry e;

		if ((rc = ledger_lookup_locked(l, r->path, &e)) < 0)
			return rc;
		memcpy(r->prev, e.record_id, 32);
	}
	if ((rc = filekey_attach(l, op, r)) < 0 || (rc = chain_pending_check(l, p, r)) < 0 ||
	    (rc = rec_sign(r, l->cfg.key, out_raw, out_len)) < 0)
		return rc;
signed_:
	if (rc < 0) {
		free(*out_raw);
		*out_raw = NULL;
		return rc;
	}
	if (*out_len > l->params.max_record_bytes)
		rc = -ENAMETOOLONG;
	else
		rc = chain_pending_apply(l, p, r);
	if (rc < 0) {
		free(*out_raw);
		*out_raw = NULL;
	}
	return rc;
}

int ledger_submit_batch(struct ledger *l, const struct ledger_op *ops, size_t n, int *out_rcs,
                        uint8_t (*out_ids)[LEDGER_ID_LEN])
{
	struct rec *recs;
	uint8_t **raws;
	size_t *lens;
	struct chain_pending p;
	int64_t before = 0, mine;
	int rc, added = 0;

	if (!l->cfg.key)
		return -EPERM;
	if (!n)
		return 0;
	recs = calloc(n, sizeof *recs);
	raws = calloc(n, sizeof *raws);
	lens = calloc(n, sizeof *lens);
	if (!recs || !raws || !lens) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!(out_rcs[i] = ledger_op_to_rec(l, &ops[i], &recs[i])) &&
		    presignable(l, &recs[i]))
			out_rcs[i] =
			    filekey_attach(l, &ops[i], &recs[i]); /* a public drive: no key */
	presign(l, recs, raws, lens, out_rcs, n);
	ledger_lock(l);
	if ((rc = chain_mempool_counts(l, l->drive, &before, &mine)) < 0)
		goto unlock;
	rc = chain_pending_begin(l, &p);
	if (rc < 0)
		goto unlock;
	for (size_t i = 0; i < n; i++)
		if (!out_rcs[i])
			out_rcs[i] = batch_one(l, &p, &ops[i], &recs[i], &raws[i], &lens[i]);
	chain_pending_undo(l, &p);
	/* what passed goes into the mempool in the savepoint's one transaction */
	for (size_t i = 0; !(rc < 0) && i < n; i++)
		if (!out_rcs[i])
			rc = chain_mempool_add(l, &recs[i], raws[i], lens[i]);
	if (rc < 0) {
		chain_pending_undo(l, &p);
		chain_pending_end(l);
		goto unlock;
	}
	if ((rc = chain_pending_end(l)) < 0) {
		store_exec(l, "ROLLBACK"); /* the release failed: the transaction is still open */
		goto unlock;
	}
	for (size_t i = 0; i < n; i++) {
		if (out_rcs[i])
			continue;
		added++;
		if (out_ids)
			memcpy(out_ids[i], recs[i].id, 32);
		ledger_note_change(l, recs[i].path[0] ? recs[i].path : NULL);
		if (recs[i].type == LEDGER_REC_MOVE)
			ledger_note_change(l, recs[i].dest);
	}
	if (added) {
		uint8_t(*ids)[32] = malloc((size_t)added * 32);
		uint8_t **braws = malloc((size_t)added * sizeof *braws);
		size_t *blens = malloc((size_t)added * sizeof *blens);
		struct ledger_head head;
		size_t m = 0;
		bool later_ok = true;

		for (size_t i = 0; ids && braws && blens && i < n; i++)
			if (!out_rcs[i]) {
				later_ok = later_ok && chain_rec_time_free(recs[i].type);
				memcpy(ids[m], recs[i].id, 32);
				braws[m] = raws[i];
				blens[m++] = lens[i];
			}
		/* the mempool is these records alone, checked in order on the state at
		 * this head at p.time_limit: the block need not walk it to find them */
		if (m == (size_t)added && before == 0 && chain_head(l, &head) == 0) {
			l->hint = (struct produce_hint){ .set = true,
				                         .time_limit = p.time_limit,
				                         .later_ok = later_ok,
				                         .n = m,
				                         .ids = (const uint8_t(*)[32])ids,
				                         .raws = braws,
				                         .lens = blens };
			memcpy(l->hint.head, head.id, 32);
		}
		/* these very bytes were signed here a moment ago: the block made of them
		 * need not check their signatures again (the ids hash the whole record) */
		if (m != (size_t)added ||
		    ledger_pk_cache_preverified_set(l->pkc, (const uint8_t(*)[32])ids, m))
			m = 0;
		ledger_produce_locked(l);
		l->hint.set = false;
		if (m)
			ledger_pk_cache_preverified_clear(l->pkc);
		free(ids);
		free(braws);
		free(blens);
	}
unlock:
	ledger_unlock(l);
out:
	for (size_t i = 0; raws && i < n; i++)
		free(raws[i]);
	free(raws);
	free(lens);
	free(recs);
	return rc < 0 ? rc : added;
}
