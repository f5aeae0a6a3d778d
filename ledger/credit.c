/* Credit (DESIGN §11): receipts a downloading member signs for the bytes it received
 * from another member, kept by their uploader, and the `credit` records that roll them
 * into the chain. What a producer checks of a credit record: every receipt signed by a
 * live member other than the author, for this drive and to the author, counted in the
 * chain only once; the Merkle root of the receipt ids and the totals per downloader
 * exactly those of the receipts. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* credits: derived, one row per receipt counted in the best chain (rolled back with the
 * blocks); receipts_in: local and durable, the receipts this node was given as uploader
 * and the credit record that carries each (NULL: none yet) */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS credits(receipt BLOB PRIMARY KEY, record BLOB NOT NULL,"
    " up BLOB NOT NULL, down BLOB NOT NULL, bytes INTEGER NOT NULL, born INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS credits_born ON credits(born);"
    "CREATE TABLE IF NOT EXISTS receipts_in(id BLOB PRIMARY KEY, raw BLOB NOT NULL,"
    " kept INTEGER NOT NULL, record BLOB) WITHOUT ROWID;";

int credit_open(struct ledger *l)
{
	return store_exec(l, schema);
}

int credit_receipt_parse(const uint8_t *buf, size_t len, struct receipt *out)
{
	static const struct ben_limits lim = { LEDGER_RECEIPT_MAX, 1, 16 };
	struct ben d = { buf, len }, k, v;
	struct ben_iter it;
	size_t n = 0;

	if (len > LEDGER_RECEIPT_MAX || ben_check(buf, len, &lim) || ben_type(d) != 'd')
		return -EBADMSG;
	memset(out, 0, sizeof *out);
	if (!ben_get_int(d, "bytes", &out->bytes) || !ben_get_fixed(d, "down", out->down, 32) ||
	    !ben_get_fixed(d, "drive", out->drive, 32) || !ben_get_fixed(d, "ih", out->ih, 32) ||
	    !ben_get_int(d, "seq", &out->seq) || !ben_get_fixed(d, "sig", out->sig, 64) ||
	    !ben_get_fixed(d, "up", out->up, 32) || out->seq < 0)
		return -EBADMSG;
	ben_iter_init(d, &it);
	while (ben_iter_next(&it, &k) && ben_iter_next(&it, &v))
		n++;
	if (n != 7)
		return -EBADMSG; /* exactly these fields: an unknown one could carry anything */
	ledger_sha256(buf, len, out->id);
	return 0;
}

static bool counted(struct ledger *l, const uint8_t id[32])
{
	return store_has(l, "SELECT 1 FROM credits WHERE receipt = ?", id);
}

/* One receipt as the uploader `up` would roll it (lock held): 0, -EBADMSG (malformed,
 * another drive, bad signature), -ENOENT (to another uploader), -EPERM (signed by a
 * non-member or by up itself), -EINVAL (bytes out of range), -EEXIST (counted). */
static int receipt_check(struct ledger *l, const uint8_t up[32], const uint8_t *buf, size_t len,
                         struct receipt *r)
{
	int rc = credit_receipt_parse(buf, len, r);

	if (rc)
		return rc;
	if (memcmp(r->drive, l->drive, 32))
		return -EBADMSG;
	if (memcmp(r->up, up, 32))
		return -ENOENT;
	if (!memcmp(r->down, up, 32) || !chain_member_role(l, r->down))
		return -EPERM; /* no member credits itself; a stranger's word counts for nothing */
	if (r->bytes <= 0 || r->bytes > LEDGER_RECEIPT_MAX_BYTES)
		return -EINVAL;
	if (!ledger_dict_sig_verify((struct ben){ buf, len }, r->down, LEDGER_RECEIPT_TAG,
	                            LEDGER_TAG_LEN(LEDGER_RECEIPT_TAG)))
		return -EBADMSG;
	return counted(l, r->id) ? -EEXIST : 0;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

int credit_check(struct ledger *l, const struct rec *r)
{
	struct receipt rc_[LEDGER_CREDIT_RECEIPTS];
	uint8_t ids[LEDGER_CREDIT_RECEIPTS][32], root[32];
	struct {
		uint8_t key[32];
		int64_t bytes;
	} sum[LEDGER_CREDIT_RECEIPTS];
	size_t n_sum = 0;
	int rc;

	if (!chain_member_role(l, r->author))
		return -EPERM;
	if (!r->n_rcpt || r->n_rcpt > LEDGER_CREDIT_RECEIPTS)
		return -EINVAL;
	for (size_t i = 0; i < r->n_rcpt; i++) {
		rc = receipt_check(l, r->author, r->rcpt[i], r->rcpt_len[i], &rc_[i]);
		if (rc == -ENOENT)
			rc = -EPERM; /* a receipt to someone else is not the author's credit */
		if (rc)
			return rc;
		memcpy(ids[i], rc_[i].id, 32);
		for (size_t j = 0; j < i; j++)
			if (!memcmp(ids[j], ids[i], 32))
				return -EEXIST; /* counted once, within one record too */
	}
	if ((rc = merkle_root_of_ids((const uint8_t(*)[32])ids, r->n_rcpt, root)))
		return rc;
	if (memcmp(root, r->commit, 32))
		return -EBADMSG;
	for (size_t i = 0; i < r->n_rcpt; i++) {
		size_t j = 0;

		while (j < n_sum && memcmp(sum[j].key, rc_[i].down, 32))
			j++;
		if (j == n_sum) {
			memcpy(sum[n_sum].key, rc_[i].down, 32);
			sum[n_sum++].bytes = 0;
		}
		sum[j].bytes += rc_[i].bytes;
	}
	qsort(sum, n_sum, sizeof sum[0], cmp_key);
	if (n_sum != r->n_tot)
		return -EBADMSG;
	for (size_t j = 0; j < n_sum; j++)
		if (memcmp(sum[j].key, r->tot[j].key, 32) || sum[j].bytes != r->tot[j].bytes)
			return -EBADMSG; /* the totals say other than the receipts */
	return 0;
}

int credit_apply(struct ledger *l, const struct rec *r, int64_t height)
{
	static const char q[] = "INSERT INTO credits(receipt, record, up, down, bytes, born)"
	                        " VALUES(?,?,?,?,?,?)";
	for (size_t i = 0; i < r->n_rcpt; i++) {
		struct receipt rc_;
		sqlite3_stmt *st;
		int rc = credit_receipt_parse(r->rcpt[i], r->rcpt_len[i], &rc_);

		if (rc)
			return rc;
		if (!(st = store_stmt(l, q)))
			return -EIO;
		sqlite3_bind_blob(st, 1, rc_.id, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, r->id, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, rc_.up, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, rc_.down, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, rc_.bytes);
		sqlite3_bind_int64(st, 6, height);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_err(l, rc, "credit");
	}
	return 0;
}

/* ---- the downloader: signing ---- */

int credit_receipt_sign(const struct ledger_key *key, const uint8_t drive[32], const uint8_t up[32],
                        const uint8_t ih[32], int64_t bytes, int64_t seq, uint8_t **out,
                        size_t *out_len)
{
	struct ben_buf b;
	uint8_t sig[64];
	int rc;

	for (int pass = 0; pass < 2; pass++) {
		ben_buf_init(&b);
		ben_dict_begin(&b);
		ben_put_key(&b, "bytes");
		ben_put_int(&b, bytes);
		ben_put_key(&b, "down");
		ben_put_str(&b, key->pub, 32);
		ben_put_key(&b, "drive");
		ben_put_str(&b, drive, 32);
		ben_put_key(&b, "ih");
		ben_put_str(&b, ih, 32);
		ben_put_key(&b, "seq");
		ben_put_int(&b, seq);
		if (pass) {
			ben_put_key(&b, "sig");
			ben_put_str(&b, sig, 64);
		}
		ben_put_key(&b, "up");
		ben_put_str(&b, up, 32);
		ben_end(&b);
		if (b.err) {
			rc = b.err;
			ben_buf_release(&b);
			return rc;
		}
		if (pass)
			break;
		rc = ledger_key_sign(key, LEDGER_RECEIPT_TAG, LEDGER_TAG_LEN(LEDGER_RECEIPT_TAG),
		                     b.p, b.len, sig);
		ben_buf_release(&b);
		if (rc)
			return rc;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

int ledger_receipt_make(struct ledger *l, const uint8_t up[LEDGER_KEY_LEN],
                        const uint8_t ih[LEDGER_ID_LEN], int64_t bytes, uint8_t **out,
                        size_t *out_len)
{
	struct timespec ts;
	int64_t seq;

	if (!l->cfg.key)
		return -EPERM;
	if (bytes <= 0 || bytes > LEDGER_RECEIPT_MAX_BYTES || !memcmp(up, l->cfg.key->pub, 32))
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	seq = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	ledger_lock(l);
	if (seq <= l->receipt_seq)
		seq = l->receipt_seq + 1;
	l->receipt_seq = seq;
	ledger_unlock(l);
	return credit_receipt_sign(l->cfg.key, l->drive, up, ih, bytes, seq, out, out_len);
}

/* ---- the uploader: keeping and rolling ---- */

static int accept_locked(struct ledger *l, const uint8_t *buf, size_t len)
{
	static const char q[] = "INSERT OR IGNORE INTO receipts_in(id, raw, kept) VALUES(?,?,?)";
	struct receipt r;
	sqlite3_stmt *st;
	int rc;

	if (!l->cfg.key)
		return -EPERM;
	if ((rc = receipt_check(l, l->cfg.key->pub, buf, len, &r)))
		return rc;
	if (!(st = store_stmt(l, q)))
		return -EIO;
	sqlite3_bind_blob(st, 1, r.id, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, ledger_now(l));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(l, rc, "receipt");
	if (!sqlite3_changes(l->db))
		return -EEXIST; /* kept already: a replay */
	L_DEBUG(l, "credit: kept a receipt for %lld bytes", (long long)r.bytes);
	return 0;
}

int ledger_receipt_accept(struct ledger *l, const uint8_t *buf, size_t len)
{
	int rc;

	ledger_lock(l);
	rc = accept_locked(l, buf, len);
	ledger_unlock(l);
	return rc;
}

int credit_on_receipt(struct ledger *l, struct ben d)
{
	const uint8_t *p;
	size_t n;
	int rc;

	if (!ben_get_bytes(d, "r", &p, &n))
		return -EBADMSG;
	rc = accept_locked(l, p, n);
	if (rc == -EBADMSG || rc == -EINVAL) {
		L_WARN(l, "credit: a peer sent a forged or malformed receipt");
		return -EBADMSG;
	}
	if (rc && rc != -EEXIST)
		L_INFO(l, "credit: a receipt not kept: %s", strerror(-rc));
	return 0;
}

/* Receipts kept and in no record of the chain or the mempool (lock held). */
static const char q_unrolled[] =
    "SELECT id, raw, kept FROM receipts_in i WHERE NOT EXISTS(SELECT 1 FROM credits c"
    " WHERE c.receipt = i.id) AND (record IS NULL OR NOT EXISTS(SELECT 1 FROM mempool m"
    " WHERE m.id = i.record)) ORDER BY kept, id";

int ledger_credit_unrolled(struct ledger *l)
{
	sqlite3_stmt *st;
	int n = 0;

	ledger_lock(l);
	if ((st = store_stmt(l, q_unrolled))) {
		while (sqlite3_step(st) == SQLITE_ROW)
			n++;
		sqlite3_reset(st);
	}
	ledger_unlock(l);
	return n;
}

/* Fill r (a credit record) from the receipts raws[0..n) and queue it (lock held). */
static int roll_one(struct ledger *l, uint8_t (*raws)[LEDGER_RECEIPT_MAX], const uint16_t *lens,
                    size_t n, uint8_t out_id[32])
{
	uint8_t ids[LEDGER_CREDIT_RECEIPTS][32];
	struct rec *r = malloc(sizeof *r);
	int rc;

	if (!r)
		return -ENOMEM;
	rc = ledger_rec_init(l, LEDGER_REC_CREDIT, r);
	for (size_t i = 0; !rc && i < n; i++) {
		struct receipt rr;
		size_t j = 0;

		memcpy(r->rcpt[i], raws[i], lens[i]);
		r->rcpt_len[i] = lens[i];
		rc = credit_receipt_parse(raws[i], lens[i], &rr);
		memcpy(ids[i], rr.id, 32);
		while (j < r->n_tot && memcmp(r->tot[j].key, rr.down, 32))
			j++;
		if (j == r->n_tot) {
			memcpy(r->tot[r->n_tot].key, rr.down, 32);
			r->tot[r->n_tot++].bytes = 0;
		}
		r->tot[j].bytes += rr.bytes;
	}
	r->n_rcpt = n;
	if (!rc) {
		qsort(r->tot, r->n_tot, sizeof r->tot[0], cmp_key);
		rc = merkle_root_of_ids((const uint8_t(*)[32])ids, n, r->commit);
	}
	if (!rc)
		rc = ledger_submit_locked(l, r, out_id);
	free(r);
	return rc;
}

int ledger_credit_roll(struct ledger *l, int batch, int64_t min_age_s)
{
	static const char q_mark[] = "UPDATE receipts_in SET record = ? WHERE id = ?";
	static const char q_dead[] = "UPDATE receipts_in SET record = zeroblob(32) WHERE id = ?";
	uint8_t(*raws)[LEDGER_RECEIPT_MAX] = NULL, (*ids)[32] = NULL;
	uint16_t *lens = NULL;
	size_t n = 0, cap = 0, at;
	int64_t oldest = INT64_MAX;
	sqlite3_stmt *st;
	int rc = 0, made = 0;

	if (!l->cfg.key)
		return -EPERM;
	ledger_lock(l);
	if (!(st = store_stmt(l, q_unrolled))) {
		ledger_unlock(l);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct receipt r;
		int len = sqlite3_column_bytes(st, 1), ck;

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			void *a = realloc(raws, nc * sizeof *raws), *b, *c;

			if (a)
				raws = a;
			b = realloc(ids, nc * sizeof *ids);
			if (b)
				ids = b;
			c = realloc(lens, nc * sizeof *lens);
			if (c)
				lens = c;
			if (!a || !b || !c) {
				rc = -ENOMEM;
				break;
			}
			cap = nc;
		}
		if (len <= 0 || len > LEDGER_RECEIPT_MAX || sqlite3_column_bytes(st, 0) != 32)
			continue;
		memcpy(raws[n], sqlite3_column_blob(st, 1), (size_t)len);
		memcpy(ids[n], sqlite3_column_blob(st, 0), 32);
		/* still good? (its signer may have been removed meanwhile) */
		ck = receipt_check(l, l->cfg.key->pub, raws[n], (size_t)len, &r);
		if (ck && ck != -EEXIST) {
			sqlite3_stmt *d = store_stmt(l, q_dead);

			if (d) {
				sqlite3_bind_blob(d, 1, ids[n], 32, SQLITE_TRANSIENT);
				sqlite3_step(d);
				sqlite3_reset(d);
			}
			continue;
		}
		if (ck)
			continue;
		if (sqlite3_column_int64(st, 2) < oldest)
			oldest = sqlite3_column_int64(st, 2);
		lens[n++] = (uint16_t)len;
	}
	sqlite3_reset(st);
	if (!rc && n && ((int64_t)n < batch && ledger_now(l) - oldest < min_age_s))
		n = 0; /* not yet: wait for more, or for the oldest to age */
	for (at = 0; !rc && at < n;) {
		size_t k = n - at < LEDGER_CREDIT_RECEIPTS ? n - at : LEDGER_CREDIT_RECEIPTS;
		uint8_t id[32];

		/* a record over the drive's size cap: fewer receipts in it */
		while ((rc = roll_one(l, raws + at, lens + at, k, id)) == -EMSGSIZE && k > 1)
			k /= 2;
		if (rc)
			break;
		for (size_t i = at; i < at + k; i++) {
			sqlite3_stmt *m = store_stmt(l, q_mark);

			if (!m) {
				rc = -EIO;
				break;
			}
			sqlite3_bind_blob(m, 1, id, 32, SQLITE_TRANSIENT);
			sqlite3_bind_blob(m, 2, ids[i], 32, SQLITE_TRANSIENT);
			sqlite3_step(m);
			sqlite3_reset(m);
		}
		at += k;
		made++;
	}
	if (made)
		ledger_produce_locked(l);
	ledger_unlock(l);
	free(raws);
	free(ids);
	free(lens);
	if (made)
		L_INFO(l, "credit: %d credit record(s) queued", made);
	return rc ? rc : made;
}

/* ---- reading ---- */

int ledger_credit_list(struct ledger *l, struct ledger_credit **out, size_t *out_n)
{
	static const char q[] = "SELECT up, SUM(bytes), 0 FROM credits GROUP BY up UNION ALL"
	                        " SELECT down, 0, SUM(bytes) FROM credits GROUP BY down";
	struct ledger_member *ms = NULL;
	struct ledger_credit *v = NULL;
	size_t n_ms = 0, n = 0, cap;
	sqlite3_stmt *st;
	int rc = ledger_members(l, &ms, &n_ms);

	if (rc)
		return rc;
	cap = n_ms + 16;
	if (!(v = calloc(cap, sizeof *v))) {
		free(ms);
		return -ENOMEM;
	}
	for (; n < n_ms; n++)
		memcpy(v[n].member, ms[n].key, 32);
	free(ms);
	ledger_lock(l);
	if (!(st = store_stmt(l, q))) {
		ledger_unlock(l);
		free(v);
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t i = 0;

		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		while (i < n && memcmp(v[i].member, sqlite3_column_blob(st, 0), 32))
			i++;
		if (i == n) { /* a former member: its credit stays a fact */
			if (n == cap) {
				void *nv = realloc(v, (cap *= 2) * sizeof *v);

				if (!nv) {
					rc = SQLITE_NOMEM;
					break;
				}
				v = nv;
			}
			memset(&v[n], 0, sizeof v[n]);
			memcpy(v[n++].member, sqlite3_column_blob(st, 0), 32);
		}
		v[i].uploaded += (uint64_t)sqlite3_column_int64(st, 1);
		v[i].downloaded += (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	ledger_unlock(l);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	*out = v;
	*out_n = n;
	return 0;
}
