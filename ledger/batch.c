/* Group commit (ledger_submit_batch): many local records checked in order on top of the
 * pending state, signed and stored in one transaction, then one block for them all.
 * Validation is per record, as ledger_submit does it: a bad op is refused alone. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The record a change must cite: the live one, pending records of this node and the
 * batch's earlier ops included (they are applied in the savepoint). */
static bool cites_prev(const struct rec *r)
{
	return r->type != LEDGER_REC_CLAIM && r->type != LEDGER_REC_MKDIR && rec_has_path(r->type);
}

/* Check, sign and apply one op inside the savepoint; its raw bytes to *out_raw. */
static int batch_one(struct ledger *l, const struct chain_pending *p, const struct ledger_op *op,
                     struct rec *r, uint8_t **out_raw, size_t *out_len)
{
	int rc;

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
		out_rcs[i] = ledger_op_to_rec(l, &ops[i], &recs[i]);
	ledger_lock(l);
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
		uint8_t(*mine)[32] = malloc((size_t)added * 32);
		size_t m = 0;

		/* these very bytes were signed here a moment ago: the block made of them
		 * need not check their signatures again (the ids hash the whole record) */
		for (size_t i = 0; mine && i < n; i++)
			if (!out_rcs[i])
				memcpy(mine[m++], recs[i].id, 32);
		if (mine && ledger_pk_cache_preverified_set(l->pkc, (const uint8_t(*)[32])mine, m))
			m = 0;
		ledger_produce_locked(l);
		if (m)
			ledger_pk_cache_preverified_clear(l->pkc);
		free(mine);
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
