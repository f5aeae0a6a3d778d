/* Who may read a private drive: invites (the public key of a one-time secret), their
 * redemption by a joiner's own record, epochs (the admin's commitment to each epoch key)
 * and the epoch keys sealed to members. Validation and state of those records, and the
 * calls that make them. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ledger_is_private(const struct ledger *l)
{
	return l->params.private_drive;
}

/* ---- state queries (lock held) ---- */

struct invite_row {
	bool producer;
	int64_t expires;
	bool spent;
	char name[LEDGER_DISPLAY_NAME_MAX + 1];
};

static int invite_get(struct ledger *l, const uint8_t ikey[32], struct invite_row *out)
{
	static const char q[] = "SELECT producer, expires, spent IS NOT NULL, name FROM invites"
	                        " WHERE ikey = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, ikey, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->producer = sqlite3_column_int(st, 0);
		out->expires = sqlite3_column_int64(st, 1);
		out->spent = sqlite3_column_int(st, 2);
		snprintf(out->name, sizeof out->name, "%s",
		         (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "invite");
}

static int invite_usable(struct ledger *l, const uint8_t ikey[32], int64_t now,
                         struct invite_row *out)
{
	int rc = invite_get(l, ikey, out);

	if (rc)
		return rc;
	if (out->spent)
		return -ESTALE;
	if (now >= out->expires) /* valid strictly before its expiry */
		return -EKEYEXPIRED;
	return 0;
}

int access_invite_usable(struct ledger *l, const uint8_t ikey[32], int64_t now)
{
	struct invite_row inv;

	return invite_usable(l, ikey, now, &inv);
}

int64_t access_epoch_current(struct ledger *l)
{
	static const char q[] = "SELECT COALESCE(MAX(epoch), 0) FROM epochs";
	sqlite3_stmt *st = store_stmt(l, q);
	int64_t e = 0;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		e = sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	return e;
}

static int epoch_commit(struct ledger *l, int64_t epoch, uint8_t out[32])
{
	static const char q[] = "SELECT commit_ FROM epochs WHERE epoch = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, epoch);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32)
		memcpy(out, sqlite3_column_blob(st, 0), 32);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -ENOENT;
}

static bool wrap_exists(struct ledger *l, int64_t epoch, const uint8_t member[32],
                        const uint8_t *author)
{
	static const char q_any[] = "SELECT 1 FROM wraps WHERE epoch = ? AND member = ?";
	static const char q_by[] = "SELECT 1 FROM wraps WHERE epoch = ? AND member = ?"
	                           " AND author = ?";
	sqlite3_stmt *st = store_stmt(l, author ? q_by : q_any);
	bool any;

	if (!st)
		return false;
	sqlite3_bind_int64(st, 1, epoch);
	sqlite3_bind_blob(st, 2, member, 32, SQLITE_STATIC);
	if (author)
		sqlite3_bind_blob(st, 3, author, 32, SQLITE_STATIC);
	any = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return any;
}

/* The commitment to an epoch key: H(tag || drive || epoch (8 bytes, big-endian) || key). */
static void commit_of(const uint8_t drive[32], int64_t epoch, const uint8_t key[32],
                      uint8_t out[32])
{
	uint8_t buf[LEDGER_TAG_LEN(LEDGER_EPOCH_TAG) + 32 + 8 + 32];
	size_t o = LEDGER_TAG_LEN(LEDGER_EPOCH_TAG);

	memcpy(buf, LEDGER_EPOCH_TAG, o);
	memcpy(buf + o, drive, 32);
	o += 32;
	for (int i = 7; i >= 0; i--)
		buf[o++] = (uint8_t)((uint64_t)epoch >> (8 * i));
	memcpy(buf + o, key, 32);
	ledger_sha256(buf, sizeof buf, out);
	seal_wipe(buf, sizeof buf);
}

/* What the invite key signs in a redeem: the drive and the joiner's key. */
static void redeem_msg(const uint8_t drive[32], const uint8_t joiner[32], uint8_t out[64])
{
	memcpy(out, drive, 32);
	memcpy(out + 32, joiner, 32);
}

/* ---- validation and state ---- */

int access_check(struct ledger *l, const struct rec *r, int64_t now)
{
	struct invite_row inv;
	uint8_t msg[64];
	int role = chain_member_role(l, r->author), rc;

	switch (r->type) {
	case LEDGER_REC_INVITE:
		/* the admin invites anyone; a producer, members only */
		if (memcmp(r->author, l->params.admin, 32) && !(role == 2 && !r->producer))
			return -EPERM;
		if (r->expires <= r->time)
			return -EINVAL;
		rc = invite_get(l, r->ikey, &inv);
		return rc == -ENOENT ? 0 : rc ? rc : -EEXIST;
	case LEDGER_REC_REDEEM:
		rc = invite_usable(l, r->ikey, now, &inv);
		if (rc)
			return rc;
		if (role)
			return -EEXIST;
		redeem_msg(l->drive, r->author, msg);
		if (!ledger_sig_verify(r->ikey, LEDGER_REDEEM_TAG,
		                       LEDGER_TAG_LEN(LEDGER_REDEEM_TAG), msg, sizeof msg, r->isig))
			return -EBADMSG;
		return 0;
	case LEDGER_REC_KEYS:
		if (!l->params.private_drive)
			return -EINVAL;
		if (memcmp(r->author, l->params.admin, 32))
			return -EPERM;
		return r->epoch == access_epoch_current(l) + 1 ? 0 : -ESTALE;
	case LEDGER_REC_KEYWRAP:
		if (!l->params.private_drive)
			return -EINVAL;
		if (!role)
			return -EPERM;
		if (!chain_member_role(l, r->member))
			return -ENOENT;
		/* any epoch that began: a newcomer is sealed the older keys too, to read
		 * what the drive held before it came (removal bars only the removed) */
		if (r->epoch < 1 || r->epoch > access_epoch_current(l))
			return -ESTALE;
		return wrap_exists(l, r->epoch, r->member, r->author) ? -EEXIST : 0;
	default: return -EINVAL;
	}
}

int access_apply(struct ledger *l, const struct rec *r, int64_t height)
{
	static const char q_inv[] = "INSERT INTO invites(ikey, producer, expires, name, author,"
	                            " born) VALUES(?,?,?,?,?,?)";
	static const char q_spend[] = "UPDATE invites SET spent = ?, redeemer = ? WHERE ikey = ?";
	static const char q_epoch[] = "INSERT INTO epochs(epoch, commit_, born) VALUES(?,?,?)";
	static const char q_wrap[] = "INSERT INTO wraps(epoch, member, author, box, born)"
	                             " VALUES(?,?,?,?,?)";
	struct invite_row inv;
	sqlite3_stmt *st;
	int rc;

	switch (r->type) {
	case LEDGER_REC_INVITE:
		if (!(st = store_stmt(l, q_inv)))
			return -EIO;
		sqlite3_bind_blob(st, 1, r->ikey, 32, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, r->producer);
		sqlite3_bind_int64(st, 3, r->expires);
		sqlite3_bind_text(st, 4, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, r->author, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, height);
		return store_step_done(l, st, "invite");
	case LEDGER_REC_REDEEM:
		if ((rc = invite_get(l, r->ikey, &inv)))
			return rc;
		if (!(st = store_stmt(l, q_spend)))
			return -EIO;
		sqlite3_bind_int64(st, 1, height);
		sqlite3_bind_blob(st, 2, r->author, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, r->ikey, 32, SQLITE_STATIC);
		if ((rc = store_step_done(l, st, "redeem")))
			return rc;
		/* the admin's invite record is the delegation: its role and name */
		return chain_member_set(l, r->author, inv.producer ? 2 : 1, inv.name, height);
	case LEDGER_REC_KEYS:
		if (!(st = store_stmt(l, q_epoch)))
			return -EIO;
		sqlite3_bind_int64(st, 1, r->epoch);
		sqlite3_bind_blob(st, 2, r->commit, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, height);
		return store_step_done(l, st, "epoch");
	case LEDGER_REC_KEYWRAP:
		if (!(st = store_stmt(l, q_wrap)))
			return -EIO;
		sqlite3_bind_int64(st, 1, r->epoch);
		sqlite3_bind_blob(st, 2, r->member, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, r->author, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, r->box, sizeof r->box, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, height);
		return store_step_done(l, st, "keywrap");
	default: return -EINVAL;
	}
}

/* ---- members ---- */

int ledger_member_role(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN])
{
	int role;

	ledger_lock_read(l);
	role = chain_member_role(l, key);
	ledger_unlock(l);
	return role;
}

/* Live members into a malloc'd array, the admin first (lock held). */
static int members_locked(struct ledger *l, struct ledger_member **out, size_t *out_n)
{
	static const char q[] = "SELECT key, producer, name, born FROM members WHERE spent IS"
	                        " NULL ORDER BY seq";
	sqlite3_stmt *st = store_stmt(l, q);
	struct ledger_member *v = NULL, admin = { .admin = true };
	size_t n = 1, cap = 0;
	int rc;

	if (!st)
		return -EIO;
	memcpy(admin.key, l->params.admin, 32);
	if (!(v = malloc((cap = 16) * sizeof *v))) {
		sqlite3_reset(st);
		return -ENOMEM;
	}
	v[0] = admin;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_member m = { 0 };

		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		memcpy(m.key, sqlite3_column_blob(st, 0), 32);
		m.producer = sqlite3_column_int(st, 1);
		snprintf(m.name, sizeof m.name, "%s", (const char *)sqlite3_column_text(st, 2));
		m.since = sqlite3_column_int64(st, 3);
		if (!memcmp(m.key, admin.key, 32)) { /* the admin's own row: its role */
			m.admin = true;
			v[0] = m;
			continue;
		}
		if (n == cap) {
			void *nv = realloc(v, (cap *= 2) * sizeof *v);

			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = m;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_err(l, rc, "members");
	}
	*out = v;
	*out_n = n;
	return 0;
}

int ledger_members(struct ledger *l, struct ledger_member **out, size_t *out_n)
{
	int rc;

	ledger_lock_read(l);
	rc = members_locked(l, out, out_n);
	ledger_unlock(l);
	return rc;
}

void ledger_member_name(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN],
                        char out[LEDGER_DISPLAY_NAME_MAX + 1])
{
	static const char q[] = "SELECT name FROM members WHERE key = ? ORDER BY born DESC"
	                        " LIMIT 1";
	sqlite3_stmt *st;

	out[0] = '\0';
	ledger_lock_read(l);
	if ((st = store_stmt(l, q))) {
		sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(out, LEDGER_DISPLAY_NAME_MAX + 1, "%s",
			         (const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
	}
	ledger_unlock(l);
}

/* ---- invites ---- */

/* Sign and queue r, and produce a block at once where this node may. */
int ledger_invite_key(const uint8_t secret[LEDGER_INVITE_SECRET_LEN], struct ledger_key **out_key)
{
	uint8_t buf[LEDGER_TAG_LEN(LEDGER_INVITE_TAG) + LEDGER_INVITE_SECRET_LEN], seed[32];
	int rc;

	memcpy(buf, LEDGER_INVITE_TAG, LEDGER_TAG_LEN(LEDGER_INVITE_TAG));
	memcpy(buf + LEDGER_TAG_LEN(LEDGER_INVITE_TAG), secret, LEDGER_INVITE_SECRET_LEN);
	ledger_sha256(buf, sizeof buf, seed);
	rc = ledger_key_from_seed(seed, out_key);
	seal_wipe(buf, sizeof buf);
	seal_wipe(seed, sizeof seed);
	return rc;
}

int ledger_invite_create(struct ledger *l, bool producer, int64_t expires, const char *name,
                         uint8_t out_secret[LEDGER_INVITE_SECRET_LEN])
{
	uint8_t secret[LEDGER_INVITE_SECRET_LEN];
	struct ledger_key *ik = NULL;
	struct rec r;
	int rc;

	if (!l->cfg.key)
		return -EPERM;
	if (name && *name && !ledger_display_name_ok(name))
		return -EINVAL;
	rc = ledger_random(secret, sizeof secret);
	if (!rc)
		rc = ledger_invite_key(secret, &ik);
	if (!rc)
		rc = ledger_rec_init(l, LEDGER_REC_INVITE, &r);
	if (!rc) {
		memcpy(r.ikey, ik->pub, 32);
		r.producer = producer;
		r.expires = expires;
		snprintf(r.name, sizeof r.name, "%s", name ? name : "");
		rc = ledger_submit_one(l, &r);
	}
	ledger_key_free(ik);
	if (!rc)
		memcpy(out_secret, secret, sizeof secret);
	seal_wipe(secret, sizeof secret);
	return rc;
}

int ledger_invite_status(struct ledger *l, const uint8_t ikey[LEDGER_KEY_LEN], int64_t now,
                         int *out_role)
{
	struct invite_row inv;
	int rc;

	ledger_lock(l);
	rc = invite_usable(l, ikey, now, &inv);
	ledger_unlock(l);
	if (!rc && out_role)
		*out_role = inv.producer ? 2 : 1;
	return rc;
}

int ledger_invite_redeem(struct ledger *l, const uint8_t secret[LEDGER_INVITE_SECRET_LEN])
{
	struct ledger_key *ik = NULL;
	uint8_t msg[64];
	struct rec r;
	int rc;

	if (!l->cfg.key)
		return -EPERM;
	rc = ledger_invite_key(secret, &ik);
	if (!rc)
		rc = ledger_rec_init(l, LEDGER_REC_REDEEM, &r);
	if (!rc) {
		memcpy(r.ikey, ik->pub, 32);
		redeem_msg(l->drive, l->cfg.key->pub, msg);
		rc = ledger_key_sign(ik, LEDGER_REDEEM_TAG, LEDGER_TAG_LEN(LEDGER_REDEEM_TAG), msg,
		                     sizeof msg, r.isig);
	}
	if (!rc)
		rc = ledger_submit_one(l, &r);
	ledger_key_free(ik);
	return rc;
}

/* ---- epochs ---- */

/* Seal key (of epoch) to member and queue the keywrap record (lock held). */
static int wrap_submit(struct ledger *l, int64_t epoch, const uint8_t key[32],
                       const uint8_t member[32])
{
	struct rec r;
	int rc = ledger_rec_init(l, LEDGER_REC_KEYWRAP, &r);

	if (!rc)
		rc = seal_box(member, key, LEDGER_EPOCH_KEY_LEN, r.box);
	if (!rc) {
		r.epoch = epoch;
		memcpy(r.member, member, 32);
		rc = ledger_submit_locked(l, &r, NULL);
	}
	return rc;
}

int ledger_epoch_rotate(struct ledger *l)
{
	uint8_t key[LEDGER_EPOCH_KEY_LEN];
	struct ledger_member *ms = NULL;
	size_t n = 0;
	struct rec r;
	int rc;

	if (!l->params.private_drive)
		return -EINVAL;
	if (!l->cfg.key || memcmp(l->cfg.key->pub, l->params.admin, 32))
		return -EPERM;
	rc = ledger_random(key, sizeof key);
	if (!rc)
		rc = ledger_rec_init(l, LEDGER_REC_KEYS, &r);
	if (rc)
		return rc;
	ledger_lock(l);
	/* the epoch after the newest one, pending records of ours included */
	r.epoch = access_epoch_current(l) + 1;
	rc = members_locked(l, &ms, &n);
	for (int tries = 0; !rc && tries < 8; tries++) {
		commit_of(l->drive, r.epoch, key, r.commit);
		rc = ledger_submit_locked(l, &r, NULL);
		if (rc != -ESTALE)
			break;
		r.epoch++; /* a rotation of ours still pending: go past it */
		rc = 0;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		int wr = wrap_submit(l, r.epoch, key, ms[i].key);

		if (wr == -EINVAL)
			L_WARN(l, "epoch %lld: a member key has no X25519 form: not wrapped",
			       (long long)r.epoch);
		else
			rc = wr;
	}
	if (!rc)
		ledger_produce_locked(l);
	ledger_unlock(l);
	free(ms);
	seal_wipe(key, sizeof key);
	return rc ? rc : (int)r.epoch;
}

/* The key of epoch as sealed to this node, checked against the commitment (lock held). */
int access_epoch_key_locked(struct ledger *l, int64_t epoch, uint8_t out[32])
{
	static const char q[] = "SELECT box FROM wraps WHERE epoch = ? AND member = ?";
	uint8_t commit[32], key[LEDGER_EPOCH_KEY_LEN], c2[32];
	sqlite3_stmt *st;
	int rc = epoch_commit(l, epoch, commit);

	if (rc)
		return rc;
	if (!(st = store_stmt(l, q)))
		return -EIO;
	sqlite3_bind_int64(st, 1, epoch);
	sqlite3_bind_blob(st, 2, l->cfg.key->pub, 32, SQLITE_STATIC);
	rc = -ENOKEY;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != LEDGER_WRAP_LEN ||
		    seal_box_open(l->cfg.key, sqlite3_column_blob(st, 0), LEDGER_WRAP_LEN, key))
			continue;
		/* a wrap by any member counts only if it holds the admin's key */
		commit_of(l->drive, epoch, key, c2);
		if (!memcmp(c2, commit, 32)) {
			memcpy(out, key, sizeof key);
			rc = 0;
			break;
		}
	}
	sqlite3_reset(st);
	seal_wipe(key, sizeof key);
	return rc;
}

int ledger_epoch_key(struct ledger *l, int64_t epoch, uint8_t out_key[LEDGER_EPOCH_KEY_LEN],
                     int64_t *out_epoch)
{
	int rc;

	if (!l->cfg.key)
		return -ENOKEY;
	ledger_lock(l);
	if (epoch <= 0)
		epoch = access_epoch_current(l);
	rc = epoch ? access_epoch_key_locked(l, epoch, out_key) : -ENOENT;
	ledger_unlock(l);
	if (!rc && out_epoch)
		*out_epoch = epoch;
	return rc;
}

int ledger_keys_tend(struct ledger *l)
{
	uint8_t key[LEDGER_EPOCH_KEY_LEN];
	struct ledger_member *ms = NULL;
	size_t n = 0;
	int rc, made = 0;

	if (!l->params.private_drive || !l->cfg.key)
		return 0;
	ledger_lock(l);
	rc = members_locked(l, &ms, &n);
	/* every epoch's key this node holds, to every live member without one: the newest
	 * first (what is published now), then the older ones (what was) */
	for (int64_t epoch = access_epoch_current(l); !rc && epoch >= 1; epoch--) {
		if (access_epoch_key_locked(l, epoch, key))
			continue; /* not ours to give (yet) */
		for (size_t i = 0; !rc && i < n; i++) {
			int wr;

			if (wrap_exists(l, epoch, ms[i].key, NULL))
				continue;
			wr = wrap_submit(l, epoch, key, ms[i].key);
			if (wr == 0) {
				made++;
				L_INFO(l, "epoch %lld: key sealed to a new member",
				       (long long)epoch);
			} else if (wr != -EEXIST && wr != -EINVAL) { /* -EEXIST: ours is pending */
				rc = wr;
			}
		}
	}
	if (made)
		ledger_produce_locked(l);
	ledger_unlock(l);
	free(ms);
	seal_wipe(key, sizeof key);
	return rc ? rc : made;
}
