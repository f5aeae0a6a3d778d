/* File keys of a private drive's content (DESIGN §9): each claim or update of content
 * carries the content's file key and the nonce of its IV, sealed with ChaCha20-Poly1305
 * under the epoch key that was current when it was made. The associated data binds the
 * wrap to its record without being the record id (a hash over the wrap itself): the
 * drive, the author, the record's nonce and the epoch. Epoch keys never leave ledger/;
 * fs/ gets the file key of a record it is about to read, and nothing else. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AD_LEN    (32 + 32 + 8 + 8)
#define PLAIN_LEN (LEDGER_FILE_KEY_LEN + 8)
#define MAX_HOPS  4096 /* moves and transfers walked back to the content's record */

_Static_assert(LEDGER_FILE_WRAP_LEN == LEDGER_AEAD_NONCE + PLAIN_LEN + LEDGER_AEAD_TAG, "wrap");

static void put_be64(uint8_t *p, int64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)((uint64_t)v >> (8 * i));
}

static int64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static void ad_of(const struct rec *r, uint8_t ad[AD_LEN])
{
	memcpy(ad, r->drive, 32);
	memcpy(ad + 32, r->author, 32);
	put_be64(ad + 64, r->nonce);
	put_be64(ad + 72, r->epoch);
}

/* Seal key and the IV's nonce into r->wrap under the epoch key ekey (r->epoch set). */
static int wrap_seal(struct rec *r, const uint8_t ekey[LEDGER_EPOCH_KEY_LEN],
                     const uint8_t key[LEDGER_FILE_KEY_LEN], int64_t iv_nonce)
{
	uint8_t ad[AD_LEN], plain[PLAIN_LEN];
	int rc;

	/* a random AEAD nonce: many wraps share one epoch key, and the record nonce alone
	 * (63 random bits) could repeat */
	if ((rc = ledger_random(r->wrap, LEDGER_AEAD_NONCE)))
		return rc;
	memcpy(plain, key, LEDGER_FILE_KEY_LEN);
	put_be64(plain + LEDGER_FILE_KEY_LEN, iv_nonce);
	ad_of(r, ad);
	rc = seal_aead(ekey, r->wrap, ad, sizeof ad, plain, sizeof plain,
	               r->wrap + LEDGER_AEAD_NONCE);
	seal_wipe(plain, sizeof plain);
	if (!rc)
		r->has_wrap = true;
	return rc;
}

/* Open r's wrap (lock held). */
static int wrap_open_locked(struct ledger *l, const struct rec *r,
                            uint8_t out_key[LEDGER_FILE_KEY_LEN], int64_t *out_nonce)
{
	uint8_t ekey[LEDGER_EPOCH_KEY_LEN], ad[AD_LEN], plain[PLAIN_LEN];
	int rc;

	if (!r->has_wrap)
		return -EINVAL;
	if (!l->cfg.key)
		return -ENOKEY;
	if ((rc = access_epoch_key_locked(l, r->epoch, ekey)))
		return rc == -ENOENT ? -ENOKEY : rc;
	ad_of(r, ad);
	rc = seal_aead_open(ekey, r->wrap, ad, sizeof ad, r->wrap + LEDGER_AEAD_NONCE,
	                    LEDGER_FILE_WRAP_LEN - LEDGER_AEAD_NONCE, plain);
	seal_wipe(ekey, sizeof ekey);
	if (!rc) {
		memcpy(out_key, plain, LEDGER_FILE_KEY_LEN);
		*out_nonce = get_be64(plain + LEDGER_FILE_KEY_LEN);
	}
	seal_wipe(plain, sizeof plain);
	return rc;
}

/* The record id as stored: in the chain's raw records or this node's mempool. */
static int record_load_locked(struct ledger *l, const uint8_t id[32], struct rec *out)
{
	static const char q_raw[] = "SELECT raw FROM raw_records WHERE id = ?";
	static const char q_mem[] = "SELECT raw FROM mempool WHERE id = ?";
	const char *qs[] = { q_raw, q_mem };
	int rc = -ENOENT;

	for (size_t i = 0; i < 2 && rc == -ENOENT; i++) {
		sqlite3_stmt *st = store_stmt(l, qs[i]);

		if (!st)
			return -EIO;
		sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			/* stored only after its signature and hash were checked */
			rc = rec_parse(sqlite3_column_blob(st, 0),
			               (size_t)sqlite3_column_bytes(st, 0), SIZE_MAX, out)
			         ? -EBADMSG
			         : 0;
		sqlite3_reset(st);
	}
	return rc;
}

/* The claim or update that brought the content of record id (lock held). */
static int content_record_locked(struct ledger *l, const uint8_t id[32], struct rec *out)
{
	uint8_t cur[32];

	memcpy(cur, id, 32);
	for (int hop = 0; hop < MAX_HOPS; hop++) {
		int rc = record_load_locked(l, cur, out);

		if (rc)
			return rc;
		if (out->type == LEDGER_REC_CLAIM || out->type == LEDGER_REC_UPDATE)
			return 0;
		if (out->type != LEDGER_REC_MOVE && out->type != LEDGER_REC_TRANSFER)
			return -EINVAL;
		memcpy(cur, out->prev, 32);
	}
	return -ELOOP;
}

int ledger_file_key_open(struct ledger *l, const uint8_t record_id[LEDGER_ID_LEN],
                         uint8_t out_key[LEDGER_FILE_KEY_LEN], int64_t *out_nonce)
{
	struct rec *r;
	int64_t nonce = 0;
	int rc;

	if (!l->params.private_drive)
		return -EINVAL;
	if (!(r = malloc(sizeof *r)))
		return -ENOMEM;
	ledger_lock(l);
	rc = content_record_locked(l, record_id, r);
	if (!rc)
		rc = wrap_open_locked(l, r, out_key, &nonce);
	ledger_unlock(l);
	free(r);
	if (!rc && out_nonce)
		*out_nonce = nonce;
	return rc;
}

int filekey_open_locked(struct ledger *l, const struct rec *r, uint8_t out_key[LEDGER_FILE_KEY_LEN],
                        int64_t *out_nonce)
{
	if (!l->params.private_drive ||
	    (r->type != LEDGER_REC_CLAIM && r->type != LEDGER_REC_UPDATE))
		return -EINVAL;
	return wrap_open_locked(l, r, out_key, out_nonce);
}

int filekey_attach(struct ledger *l, const struct ledger_op *op, struct rec *r)
{
	uint8_t ekey[LEDGER_EPOCH_KEY_LEN], key[LEDGER_FILE_KEY_LEN];
	int64_t iv_nonce;
	int rc;

	if (!l->params.private_drive ||
	    (r->type != LEDGER_REC_CLAIM && r->type != LEDGER_REC_UPDATE))
		return op->file_key ? -EINVAL : 0;
	if (r->content.length == 0)
		return 0; /* nothing to encrypt: no torrent, no key */
	if (op->file_key) {
		iv_nonce = op->iv_nonce ? op->iv_nonce : op->nonce;
		if (!iv_nonce)
			return -EINVAL; /* the IV was made of a nonce the wrap must carry */
		memcpy(key, op->file_key, sizeof key);
	} else if (op->key_from) {
		struct rec *src = malloc(sizeof *src);

		if (!src)
			return -ENOMEM;
		rc = content_record_locked(l, op->key_from, src);
		if (!rc)
			rc = wrap_open_locked(l, src, key, &iv_nonce);
		free(src);
		if (rc)
			return rc;
	} else {
		L_WARN(l, "a private drive's content needs its file key: %s not submitted",
		       r->path);
		return -EINVAL;
	}
	/* new content always goes under the newest epoch key */
	r->epoch = access_epoch_current(l);
	rc = r->epoch ? access_epoch_key_locked(l, r->epoch, ekey) : -ENOKEY;
	if (rc == -ENOENT)
		rc = -ENOKEY;
	if (!rc)
		rc = wrap_seal(r, ekey, key, iv_nonce);
	seal_wipe(ekey, sizeof ekey);
	seal_wipe(key, sizeof key);
	return rc;
}

/* When epoch began: its block's time, INT64_MAX while it is pending (lock held). */
static int64_t epoch_began(struct ledger *l, int64_t epoch)
{
	static const char q[] = "SELECT b.time FROM epochs e JOIN chain c ON c.height = e.born"
	                        " JOIN blocks b ON b.id = c.id WHERE e.epoch = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int64_t t = INT64_MAX;

	if (!st)
		return INT64_MAX;
	sqlite3_bind_int64(st, 1, epoch);
	if (sqlite3_step(st) == SQLITE_ROW)
		t = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return t;
}

int filekey_check(struct ledger *l, const struct rec *r)
{
	int64_t cur;

	/* a public drive's content is plaintext; empty content has nothing to hide */
	if (!l->params.private_drive || r->content.length == 0)
		return r->has_wrap ? -EINVAL : 0;
	if (!r->has_wrap)
		return -EINVAL;
	cur = access_epoch_current(l);
	if (r->epoch < 1 || r->epoch > cur)
		return -EINVAL;
	/* the epoch current when the record was made: one that ended before it was dated
	 * would let a removed member read what came after its removal */
	if (r->epoch < cur && epoch_began(l, r->epoch + 1) < r->time)
		return -ESTALE;
	return 0;
}
