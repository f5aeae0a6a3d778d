/* Finality and equivocation (DESIGN.md §10): which blocks of the best chain no reorg may
 * undo, which producers may sign a block on top of a given height, the evidence of a
 * producer that signed two blocks at one height, and this node's own "last signed
 * height" that keeps it from ever doing so.
 *
 * A block at height k is final once blocks by more than half of the producers in force
 * after it (distinct keys; the block's own producer counts) are on the best chain at
 * heights >= k; with one producer, at once. Every ancestor of a final block is final.
 * Callers hold the ledger lock; the functions that change state run inside the
 * caller's transaction. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char fin_schema[] =
    /* derived: the producer of every best-chain block, and the highest final one */
    "CREATE TABLE IF NOT EXISTS chain_signers(height INTEGER PRIMARY KEY,"
    " producer BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS chain_signers_producer ON chain_signers(producer, height);"
    "CREATE TABLE IF NOT EXISTS final_block(k INTEGER PRIMARY KEY CHECK(k = 0),"
    " height INTEGER NOT NULL);"
    /* kept: two validly signed headers at one height by one producer, and final
     * blocks a peer offered against ours (a reorg across our final block refused) */
    "CREATE TABLE IF NOT EXISTS evidence(producer BLOB NOT NULL, height INTEGER NOT NULL,"
    " a BLOB NOT NULL, b BLOB NOT NULL, hdr_a BLOB NOT NULL, hdr_b BLOB NOT NULL,"
    " PRIMARY KEY(producer, height, a, b)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS final_conflicts(id BLOB PRIMARY KEY, height INTEGER NOT NULL,"
    " fork INTEGER NOT NULL, final INTEGER NOT NULL);";

void ledger_step(struct ledger *l, const char *step)
{
	if (l->step_hook)
		l->step_hook(step, l->step_ctx);
}

/* A one-integer query with one optional int64 and one optional blob parameter;
 * *out keeps def when there is no row or the value is NULL. */
static int int_query(struct ledger *l, const char *sql, const int64_t *a, const uint8_t *key,
                     int64_t def, int64_t *out)
{
	sqlite3_stmt *st = store_stmt(l, sql);
	int rc, i = 1;

	if (!st)
		return -EIO;
	if (key)
		sqlite3_bind_blob(st, i++, key, 32, SQLITE_STATIC);
	if (a)
		sqlite3_bind_int64(st, i, *a);
	*out = def;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_err(l, rc, sql);
}

int finality_height(struct ledger *l, int64_t *out)
{
	static const char q[] = "SELECT height FROM final_block WHERE k = 0";

	return int_query(l, q, NULL, NULL, 0, out);
}

static int final_put(struct ledger *l, int64_t height)
{
	static const char q[] = "INSERT OR REPLACE INTO final_block(k, height) VALUES(0, ?)";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	return store_step_done(l, st, "final put");
}

/* Producer rows of the members table (a key may have several over time). */
struct prow {
	uint8_t key[32];
	int64_t born, spent; /* spent: INT64_MAX while live */
};

static int prod_rows(struct ledger *l, struct prow **out, size_t *out_n)
{
	static const char q[] = "SELECT key, born, spent FROM members WHERE producer = 1";
	sqlite3_stmt *st = store_stmt(l, q);
	struct prow *v = NULL;
	size_t n = 0;
	int rc;

	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct prow *nv = realloc(v, (n + 1) * sizeof *v);

		if (!nv) {
			free(v);
			sqlite3_reset(st);
			return -ENOMEM;
		}
		v = nv;
		memset(&v[n], 0, sizeof v[n]);
		if (sqlite3_column_bytes(st, 0) == 32)
			memcpy(v[n].key, sqlite3_column_blob(st, 0), 32);
		v[n].born = sqlite3_column_int64(st, 1);
		v[n].spent = sqlite3_column_type(st, 2) == SQLITE_NULL
		                 ? INT64_MAX
		                 : sqlite3_column_int64(st, 2);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_err(l, rc, "producer rows");
	}
	*out = v;
	*out_n = n;
	return 0;
}

/* The distinct keys producing after block k: rows born at or before k, spent after. */
static size_t set_after(const struct prow *rows, size_t n, int64_t k, uint8_t (*out)[32])
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		if (rows[i].born > k || rows[i].spent <= k)
			continue;
		for (size_t j = 0; j < m && !dup; j++)
			dup = !memcmp(out[j], rows[i].key, 32);
		if (!dup)
			memcpy(out[m++], rows[i].key, 32);
	}
	return m;
}

bool finality_producer_at(struct ledger *l, const uint8_t key[32], int64_t height)
{
	static const char q[] = "SELECT 1 FROM members WHERE key = ? AND producer = 1 AND"
	                        " born <= ? AND (spent IS NULL OR spent > ?)";
	sqlite3_stmt *st = store_stmt(l, q);
	bool yes;

	if (!st)
		return false;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, height);
	sqlite3_bind_int64(st, 3, height);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return yes;
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Recompute the final height after the best chain grew to head (it only rises).
 * Heights (f, head] split where the producer set changes; within a stretch whose set
 * S needs m = |S|/2 + 1 signers, block k is final iff m of S signed at heights >= k,
 * that is k <= the m-th latest "last signed height" among S. */
static int final_update(struct ledger *l, int64_t head)
{
	static const char q_last[] = "SELECT MAX(height) FROM chain_signers WHERE producer = ?";
	struct prow *rows = NULL;
	uint8_t(*set)[32] = NULL;
	int64_t f, *bounds = NULL, *last = NULL;
	size_t nr = 0, nb = 0;
	int rc;

	if ((rc = finality_height(l, &f)) || f >= head)
		return rc;
	if ((rc = prod_rows(l, &rows, &nr)))
		return rc;
	bounds = malloc((2 * nr + 1) * sizeof *bounds);
	set = malloc((nr ? nr : 1) * 32);
	last = malloc((nr ? nr : 1) * sizeof *last);
	if (!bounds || !set || !last) {
		rc = -ENOMEM;
		goto out;
	}
	bounds[nb++] = f + 1;
	for (size_t i = 0; i < nr; i++) {
		if (rows[i].born > f + 1 && rows[i].born <= head)
			bounds[nb++] = rows[i].born;
		if (rows[i].spent > f + 1 && rows[i].spent <= head)
			bounds[nb++] = rows[i].spent;
	}
	qsort(bounds, nb, sizeof *bounds, cmp_desc); /* highest stretch first */
	for (size_t b = 0; b < nb; b++) {
		int64_t lo = bounds[b], hi = b == 0 ? head : bounds[b - 1] - 1;
		size_t ns, need;

		if (b > 0 && bounds[b] == bounds[b - 1])
			continue;
		ns = set_after(rows, nr, lo, set);
		need = ns / 2 + 1;
		if (!ns)
			continue;
		for (size_t i = 0; i < ns; i++)
			if ((rc = int_query(l, q_last, NULL, set[i], -1, &last[i])))
				goto out;
		qsort(last, ns, sizeof *last, cmp_desc);
		if (last[need - 1] >= lo) {
			int64_t k = last[need - 1] < hi ? last[need - 1] : hi;

			rc = final_put(l, k);
			if (!rc)
				L_DEBUG(l, "final: height %lld", (long long)k);
			break;
		}
	}
out:
	free(rows);
	free(set);
	free(last);
	free(bounds);
	return rc;
}

int finality_on_apply(struct ledger *l, int64_t height, const uint8_t producer[32])
{
	static const char q[] =
	    "INSERT OR REPLACE INTO chain_signers(height, producer) VALUES(?,?)";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	sqlite3_bind_blob(st, 2, producer, 32, SQLITE_STATIC);
	rc = store_step_done(l, st, "chain signer");
	return rc ? rc : final_update(l, height);
}

int finality_on_rollback(struct ledger *l, int64_t height)
{
	static const char q[] = "DELETE FROM chain_signers WHERE height > ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int64_t f;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	rc = store_step_done(l, st, "chain signers rollback");
	if (!rc)
		rc = finality_height(l, &f);
	if (!rc && f > height) {
		/* switch_to refuses such a reorg before it gets here */
		L_ERR(l, "final: rolled back below final height %lld to %lld", (long long)f,
		      (long long)height);
		rc = final_put(l, height);
	}
	return rc;
}

/* The producer of a stored block, from its raw header. */
static int stored_producer(struct ledger *l, const uint8_t id[32], uint8_t out[32])
{
	static const char q[] = "SELECT hdr FROM raw_blocks WHERE id = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	struct blk_hdr h;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "stored producer");
	}
	rc = blk_hdr_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &h,
	                    false);
	sqlite3_reset(st);
	if (!rc)
		memcpy(out, h.producer, 32);
	return rc;
}

int finality_reorg_check(struct ledger *l, int64_t fork, const uint8_t (*branch)[32], size_t n,
                         const uint8_t tip_producer[32], int64_t tip_height)
{
	struct prow *rows = NULL;
	uint8_t(*set)[32] = NULL, p[32];
	bool *seen = NULL;
	size_t nr = 0, ns, signers = 0;
	int64_t f;
	int rc;

	if ((rc = finality_height(l, &f)))
		return rc;
	if (fork >= f)
		return 0;
	/* refused; is the other branch final by its own producers? judged by the set
	 * in force at the fork, which both branches share */
	if ((rc = prod_rows(l, &rows, &nr)))
		return rc;
	set = malloc((nr ? nr : 1) * 32);
	seen = calloc(nr ? nr : 1, sizeof *seen);
	if (!set || !seen) {
		rc = -ENOMEM;
		goto out;
	}
	ns = set_after(rows, nr, fork, set);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 && tip_producer)
			memcpy(p, tip_producer, 32);
		else if (stored_producer(l, branch[i], p))
			continue;
		for (size_t j = 0; j < ns; j++)
			if (!seen[j] && !memcmp(set[j], p, 32)) {
				seen[j] = true;
				signers++;
			}
	}
	l->fin_refused.set = true;
	memcpy(l->fin_refused.id, branch[0], 32);
	l->fin_refused.height = tip_height;
	l->fin_refused.fork = fork;
	l->fin_refused.final = f;
	l->fin_refused.conflict = ns && signers > ns / 2;
	if (l->fin_refused.conflict)
		L_ERR(
		    l,
		    "final: a peer offers a conflicting FINAL chain: %zu of %zu producers signed a"
		    " branch from height %lld that undoes our final block %lld; keeping ours",
		    signers, ns, (long long)fork, (long long)f);
	else
		L_WARN(l, "final: refused a fork from height %lld: it would undo final block %lld",
		       (long long)fork, (long long)f);
	rc = -EPERM;
out:
	free(rows);
	free(set);
	free(seen);
	return rc;
}

int finality_note_refused(struct ledger *l)
{
	static const char q[] = "INSERT OR IGNORE INTO final_conflicts(id, height, fork, final)"
	                        " VALUES(?,?,?,?)";
	sqlite3_stmt *st;

	if (!l->fin_refused.set)
		return 0;
	l->fin_refused.set = false;
	if (!l->fin_refused.conflict)
		return 0;
	if (!(st = store_stmt(l, q)))
		return -EIO;
	sqlite3_bind_blob(st, 1, l->fin_refused.id, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, l->fin_refused.height);
	sqlite3_bind_int64(st, 3, l->fin_refused.fork);
	sqlite3_bind_int64(st, 4, l->fin_refused.final);
	return store_step_done(l, st, "final conflict");
}

int finality_evidence_check(struct ledger *l, const struct blk_hdr *h, const uint8_t *hdr,
                            size_t hdr_len)
{
	static const char q[] = "SELECT id, hdr FROM raw_blocks WHERE height = ?";
	static const char q_ins[] = "INSERT OR IGNORE INTO evidence(producer, height, a, b, hdr_a,"
	                            " hdr_b) VALUES(?,?,?,?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q);
	uint8_t *other = NULL, other_id[32];
	size_t other_len = 0;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, h->height);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *b = sqlite3_column_blob(st, 1);
		size_t bl = (size_t)sqlite3_column_bytes(st, 1);
		struct blk_hdr o;

		if (sqlite3_column_bytes(st, 0) != 32 ||
		    !memcmp(sqlite3_column_blob(st, 0), h->id, 32))
			continue;
		if (blk_hdr_decode(b, bl, &o, false) || memcmp(o.producer, h->producer, 32))
			continue;
		memcpy(other_id, o.id, 32);
		other = malloc(bl ? bl : 1);
		if (!other) {
			sqlite3_reset(st);
			return -ENOMEM;
		}
		memcpy(other, b, bl);
		other_len = bl;
		break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_err(l, rc, "evidence scan");
	if (!other)
		return 0;
	{
		char hex[LEDGER_HEX_LEN];
		bool lower = memcmp(other_id, h->id, 32) < 0;

		ledger_hex(h->producer, 32, hex);
		L_ERR(l, "equivocation: producer %.16s signed two blocks at height %lld", hex,
		      (long long)h->height);
		st = store_stmt(l, q_ins);
		if (!st) {
			free(other);
			return -EIO;
		}
		/* one row per pair: a is the lower id */
		sqlite3_bind_blob(st, 1, h->producer, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, h->height);
		sqlite3_bind_blob(st, 3, lower ? other_id : h->id, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, lower ? h->id : other_id, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, lower ? other : hdr, (int)(lower ? other_len : hdr_len),
		                  SQLITE_STATIC);
		sqlite3_bind_blob(st, 6, lower ? hdr : other, (int)(lower ? hdr_len : other_len),
		                  SQLITE_STATIC);
		rc = store_step_done(l, st, "evidence");
	}
	free(other);
	return rc;
}

int finality_evidence_list(struct ledger *l, struct fin_evidence **out, size_t *out_n)
{
	static const char q[] = "SELECT hdr_a, hdr_b FROM evidence ORDER BY height, producer";
	sqlite3_stmt *st = store_stmt(l, q);
	struct fin_evidence *v = NULL;
	size_t n = 0;
	int rc;

	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct blk_hdr a, b;
		struct fin_evidence *nv;

		/* re-checked from the raw headers: both signed by one key, one height */
		if (blk_hdr_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
		                   &a, true) ||
		    blk_hdr_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
		                   &b, true) ||
		    a.height != b.height || memcmp(a.producer, b.producer, 32) ||
		    !memcmp(a.id, b.id, 32))
			continue;
		if (!(nv = realloc(v, (n + 1) * sizeof *v))) {
			free(v);
			sqlite3_reset(st);
			return -ENOMEM;
		}
		v = nv;
		v[n].height = a.height;
		memcpy(v[n].producer, a.producer, 32);
		memcpy(v[n].a, a.id, 32);
		memcpy(v[n].b, b.id, 32);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_err(l, rc, "evidence list");
	}
	*out = v;
	*out_n = n;
	return 0;
}

int finality_last_signed(struct ledger *l, int64_t *out)
{
	uint8_t *v;
	size_t n;
	int rc = store_meta_get(l, "last_signed", &v, &n);

	*out = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (n == 8)
		for (size_t i = 0; i < 8; i++)
			*out = (int64_t)(((uint64_t)*out << 8) | v[i]);
	free(v);
	return 0;
}

int finality_signed_put(struct ledger *l, int64_t height)
{
	uint8_t v[8];

	for (size_t i = 0; i < 8; i++)
		v[i] = (uint8_t)((uint64_t)height >> (56 - 8 * i));
	return store_meta_put(l, "last_signed", v, sizeof v);
}

int finality_open(struct ledger *l)
{
	static const char q_missing[] =
	    "SELECT c.height, c.id FROM chain c LEFT JOIN chain_signers s ON s.height = c.height"
	    " WHERE c.height > 0 AND s.height IS NULL ORDER BY c.height";
	sqlite3_stmt *st;
	int64_t *hs = NULL;
	uint8_t(*ids)[32] = NULL;
	size_t n = 0;
	int rc = store_exec(l, fin_schema);

	if (rc)
		return rc;
	/* a ledger from before finality: fill the signers in from the raw headers */
	if (!(st = store_stmt(l, q_missing)))
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		void *a = realloc(hs, (n + 1) * sizeof *hs),
		     *b = a ? realloc(ids, (n + 1) * 32) : NULL;

		if (a)
			hs = a;
		if (b)
			ids = b;
		if (!a || !b) {
			rc = -ENOMEM;
			break;
		}
		hs[n] = sqlite3_column_int64(st, 0);
		memset(ids[n], 0, 32);
		if (sqlite3_column_bytes(st, 1) == 32)
			memcpy(ids[n], sqlite3_column_blob(st, 1), 32);
		n++;
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : rc < 0 ? rc : store_err(l, rc, "signers backfill");
	if (!rc && n) {
		rc = store_begin(l);
		for (size_t i = 0; !rc && i < n; i++) {
			uint8_t p[32];

			rc = stored_producer(l, ids[i], p);
			if (!rc)
				rc = finality_on_apply(l, hs[i], p);
		}
		if (!rc)
			rc = store_commit(l);
		else
			store_rollback(l);
	}
	free(hs);
	free(ids);
	return rc;
}

int ledger_finality_get(struct ledger *l, struct ledger_finality *out)
{
	static const char q_conf[] =
	    "SELECT id, height FROM final_conflicts ORDER BY rowid LIMIT 1";
	static const char q_ev[] = "SELECT COUNT(*) FROM evidence";
	sqlite3_stmt *st;
	int64_t f, nev = 0;
	int rc;

	memset(out, 0, sizeof *out);
	ledger_lock_read(l);
	rc = finality_height(l, &f);
	if (!rc) {
		out->height = (uint64_t)f;
		rc = chain_id_at(l, f, out->id);
	}
	if (!rc && !(st = store_stmt(l, q_conf)))
		rc = -EIO;
	if (!rc) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			out->conflict = true;
			if (sqlite3_column_bytes(st, 0) == 32)
				memcpy(out->conflict_id, sqlite3_column_blob(st, 0), 32);
			out->conflict_height = (uint64_t)sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		rc = int_query(l, q_ev, NULL, NULL, 0, &nev);
		out->evidence = (uint64_t)nev;
	}
	ledger_unlock(l);
	return rc;
}
