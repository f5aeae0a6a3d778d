/* Hosting (DESIGN §11): `host` records, a live member's signed claim that it holds a
 * full copy of a content (or no longer does), keyed by the content and not the path;
 * the implicit claim of whoever published a content; and the drive's replica target,
 * an admin's `setting` record. What a producer checks of a host record: its author a
 * live member, a live file with that content, and a change of the author's claim. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* hosts: derived, one row per claim; the live one of (ih, member) has spent NULL, so
 * rolling back to height H deletes rows born after H and revives rows spent after it.
 * settings: likewise, one live row per name. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS hosts(ih BLOB NOT NULL, member BLOB NOT NULL,"
    " held INTEGER NOT NULL, born INTEGER NOT NULL, spent INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS hosts_live ON hosts(ih, member) WHERE spent IS NULL;"
    "CREATE INDEX IF NOT EXISTS hosts_born ON hosts(born);"
    "CREATE INDEX IF NOT EXISTS hosts_spent ON hosts(spent) WHERE spent IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS settings(name TEXT NOT NULL, value INTEGER NOT NULL,"
    " born INTEGER NOT NULL, spent INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS settings_live ON settings(name) WHERE spent IS NULL;"
    "CREATE INDEX IF NOT EXISTS settings_born ON settings(born);";

/* A live member (the admin always is one) holding the content key ?1; ?2 = the admin. */
#define HOLDER_LIVE                                                                                \
	"h.spent IS NULL AND h.held = 1 AND (h.member = ?2 OR EXISTS(SELECT 1 FROM members m"      \
	" WHERE m.key = h.member AND m.spent IS NULL))"

int host_open(struct ledger *l)
{
	return store_exec(l, schema);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void ledger_content_key(const struct ledger_content *c, uint8_t out[LEDGER_ID_LEN])
{
	if (!is_zero(c->root, 32)) {
		memcpy(out, c->root, 32);
	} else if (c->has_ih1) {
		memset(out, 0, 32);
		memcpy(out, c->ih1, 20);
	} else
		memcpy(out, c->ih2, 32);
}

/* The same key as SQL over a paths row (root is 32 zero bytes for a v1-only torrent). */
#define PATH_KEY                                                                                   \
	"CASE WHEN root != zeroblob(32) THEN root WHEN ih1 IS NOT NULL THEN ih1 || zeroblob(12)"   \
	" ELSE ih2 END"

/* Whether a live file has the content key (lock held). */
static bool content_live(struct ledger *l, const uint8_t key[32])
{
	static const char q_root[] = "SELECT 1 FROM paths WHERE root = ? AND spent IS NULL AND"
	                             " is_dir = 0 AND len > 0";
	static const char q_v1[] = "SELECT 1 FROM paths WHERE ih1 = ? AND root = zeroblob(32) AND"
	                           " spent IS NULL AND is_dir = 0 AND len > 0";
	static const char q_v2[] = "SELECT 1 FROM paths WHERE ih2 = ? AND root = zeroblob(32) AND"
	                           " ih1 IS NULL AND spent IS NULL AND is_dir = 0 AND len > 0";
	sqlite3_stmt *st;
	bool found;

	if (is_zero(key, 32))
		return false;
	if (store_has(l, q_root, key) || store_has(l, q_v2, key))
		return true;
	if (!is_zero(key + 20, 12) || !(st = store_stmt(l, q_v1)))
		return false;
	sqlite3_bind_blob(st, 1, key, 20, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return found;
}

/* The author's live claim on key: 1 held, 0 withdrawn, -ENOENT none, or another -errno
 * when it cannot be told (lock held). */
static int claim_of(struct ledger *l, const uint8_t key[32], const uint8_t member[32])
{
	static const char q[] = "SELECT held FROM hosts WHERE ih = ? AND member = ? AND"
	                        " spent IS NULL";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, member, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW    ? sqlite3_column_int(st, 0) != 0
	     : rc == SQLITE_DONE ? -ENOENT
	                         : store_err(l, rc, "host claim");
	sqlite3_reset(st);
	return rc;
}

int host_check(struct ledger *l, const struct rec *r)
{
	int cur;

	if (!chain_member_role(l, r->author))
		return -EPERM; /* a stranger's word, or a removed member's, counts for nothing */
	if (!content_live(l, r->content.root))
		return -ENOENT; /* no live file has that content: nothing to host */
	cur = claim_of(l, r->content.root, r->author);
	if (cur < 0 && cur != -ENOENT)
		return cur;
	/* a claim that changes nothing is refused: the chain holds each change once */
	if ((cur == 1 && !r->remove) || (cur != 1 && r->remove))
		return -EEXIST;
	return 0;
}

/* Make member's claim on key say held, from height (lock held). cur: claim_of's answer,
 * or 0 when not asked; -ENOENT (no claim) spares the UPDATE, which a fresh node's sync
 * would run for every file it learns of. */
static int claim_set(struct ledger *l, const uint8_t key[32], const uint8_t member[32], bool held,
                     int64_t height, int cur)
{
	static const char q_spend[] = "UPDATE hosts SET spent = ? WHERE ih = ? AND member = ? AND"
	                              " spent IS NULL";
	static const char q_add[] = "INSERT INTO hosts(ih, member, held, born) VALUES(?,?,?,?)";
	sqlite3_stmt *st;
	int rc;

	if (cur != -ENOENT) {
		if (!(st = store_stmt(l, q_spend)))
			return -EIO;
		sqlite3_bind_int64(st, 1, height);
		sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, member, 32, SQLITE_STATIC);
		if ((rc = store_step_done(l, st, "host spend")))
			return rc;
	}
	if (!(st = store_stmt(l, q_add)))
		return -EIO;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, member, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, held);
	sqlite3_bind_int64(st, 4, height);
	return store_step_done(l, st, "host add");
}

int host_apply(struct ledger *l, const struct rec *r, int64_t height)
{
	return claim_set(l, r->content.root, r->author, !r->remove, height, 0);
}

int host_on_content(struct ledger *l, const struct rec *r, int64_t height)
{
	/* no live claim (hosts_live): the claim, in one statement; a fresh node's sync
	 * learns of each file so, and asking first (claim_of) cost a second descent of
	 * the index for each */
	static const char q_new[] =
	    "INSERT OR IGNORE INTO hosts(ih, member, held, born) VALUES(?,?,1,?)";
	sqlite3_stmt *st;
	uint8_t key[32];
	int cur;

	if (!r->content.length)
		return 0;
	if (!(st = store_stmt(l, q_new)))
		return -EIO;
	ledger_content_key(&r->content, key);
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, r->author, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, height);
	if ((cur = store_step_done(l, st, "host new")))
		return cur;
	if (sqlite3_changes(l->db))
		return 0;
	if ((cur = claim_of(l, key, r->author)) == 1)
		return 0;
	if (cur < 0 && cur != -ENOENT)
		return cur;
	return claim_set(l, key, r->author, true, height, cur);
}

/* ---- settings ---- */

static int64_t setting_get(struct ledger *l, const char *name, int64_t dflt)
{
	static const char q[] = "SELECT value FROM settings WHERE name = ? AND spent IS NULL";
	sqlite3_stmt *st = store_stmt(l, q);
	int64_t v = dflt;

	if (!st)
		return dflt;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

int setting_check(struct ledger *l, const struct rec *r)
{
	if (memcmp(r->author, l->params.admin, 32))
		return -EPERM; /* the drive's settings are its admin's */
	if (strcmp(r->setting, "replicas"))
		return -EINVAL; /* the one setting there is */
	if (r->value < 1 || r->value > LEDGER_REPLICAS_MAX)
		return -EINVAL;
	return setting_get(l, r->setting, LEDGER_REPLICAS_DEFAULT) == r->value ? -EEXIST : 0;
}

int setting_apply(struct ledger *l, const struct rec *r, int64_t height)
{
	static const char q_spend[] = "UPDATE settings SET spent = ? WHERE name = ? AND"
	                              " spent IS NULL";
	static const char q_add[] = "INSERT INTO settings(name, value, born) VALUES(?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q_spend);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	sqlite3_bind_text(st, 2, r->setting, -1, SQLITE_STATIC);
	if ((rc = store_step_done(l, st, "setting spend")))
		return rc;
	if (!(st = store_stmt(l, q_add)))
		return -EIO;
	sqlite3_bind_text(st, 1, r->setting, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->value);
	sqlite3_bind_int64(st, 3, height);
	return store_step_done(l, st, "setting add");
}

/* ---- the public calls ---- */

int ledger_host_claim(struct ledger *l, const uint8_t key[LEDGER_ID_LEN], bool held)
{
	struct rec *r;
	int rc;

	if (!l->cfg.key)
		return -EPERM;
	if (!(r = malloc(sizeof *r)))
		return -ENOMEM;
	rc = ledger_rec_init(l, LEDGER_REC_HOST, r);
	if (!rc) {
		memcpy(r->content.root, key, 32);
		r->remove = !held;
		rc = ledger_submit_one(l, r);
	}
	free(r);
	return rc;
}

int ledger_replicas_set(struct ledger *l, int64_t n)
{
	struct rec *r;
	int rc;

	if (!l->cfg.key)
		return -EPERM;
	if (n < 1 || n > LEDGER_REPLICAS_MAX)
		return -EINVAL;
	if (!(r = malloc(sizeof *r)))
		return -ENOMEM;
	rc = ledger_rec_init(l, LEDGER_REC_SETTING, r);
	if (!rc) {
		snprintf(r->setting, sizeof r->setting, "replicas");
		r->value = n;
		rc = ledger_submit_one(l, r);
	}
	free(r);
	return rc;
}

int64_t ledger_replicas(struct ledger *l)
{
	int64_t v;

	ledger_lock(l);
	v = setting_get(l, "replicas", LEDGER_REPLICAS_DEFAULT);
	ledger_unlock(l);
	return v;
}

int ledger_holders(struct ledger *l, const uint8_t key[LEDGER_ID_LEN],
                   uint8_t (**out)[LEDGER_KEY_LEN], size_t *out_n)
{
	static const char q[] = "SELECT h.member FROM hosts h WHERE h.ih = ?1 AND " HOLDER_LIVE
	                        " ORDER BY h.born, h.member";
	uint8_t(*v)[32] = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc;

	ledger_lock(l);
	if (!(st = store_stmt(l, q))) {
		ledger_unlock(l);
		return -EIO;
	}
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, l->params.admin, 32, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		void *nv;

		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		if (!(nv = realloc(v, (n + 1) * sizeof *v))) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		memcpy(v[n++], sqlite3_column_blob(st, 0), 32);
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

void ledger_health_free(struct ledger_health *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].path);
	free(v);
}

static void col_fixed(sqlite3_stmt *st, int col, uint8_t *out, size_t len)
{
	if ((size_t)sqlite3_column_bytes(st, col) == len)
		memcpy(out, sqlite3_column_blob(st, col), len);
	else
		memset(out, 0, len);
}

/* Step st (bound) until its end or max rows (0: all) into a new array: SQLITE_DONE, or
 * the failure (the array freed, r's log told). st is reset. */
static int collect_rows(struct ledger *r, sqlite3_stmt *st, size_t max, struct ledger_health **out,
                        size_t *out_n)
{
	struct ledger_health *v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_DONE;

	while ((!max || n < max) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_health *h;

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *nv = realloc(v, nc * sizeof *v);

			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		h = &v[n];
		memset(h, 0, sizeof *h);
		if (!(h->path = strdup((const char *)sqlite3_column_text(st, 0)))) {
			rc = SQLITE_NOMEM;
			break;
		}
		n++;
		col_fixed(st, 1, h->content.root, 32);
		if (sqlite3_column_bytes(st, 2) == 20) {
			col_fixed(st, 2, h->content.ih1, 20);
			h->content.has_ih1 = true;
		}
		col_fixed(st, 3, h->content.ih2, 32);
		h->content.length = (uint64_t)sqlite3_column_int64(st, 4);
		h->content.piece_length = (uint32_t)sqlite3_column_int64(st, 5);
		col_fixed(st, 6, h->key, 32);
		h->holders = (uint32_t)sqlite3_column_int64(st, 7);
		h->mine = sqlite3_column_int(st, 8) != 0;
	}
	if (max && n == max && rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	if (rc != SQLITE_DONE && rc != SQLITE_NOMEM)
		store_err(r, rc, "health");
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ledger_health_free(v, n);
		return rc;
	}
	*out = v;
	*out_n = n;
	return rc;
}

/* l's health twin (health_mu held): reader.c's query-only connection, kept, so a scan
 * every 2 s neither reopens the database nor starts with a cold page cache. */
static int health_reader(struct ledger *l, struct ledger **out)
{
	int err;

	if (!l->health_rd && (err = reader_open(l, &l->health_rd)) != 0)
		return err;
	*out = l->health_rd;
	return 0;
}

/* Whether since (a head of this chain) still tells which files can be orphans: it is
 * a block of r's chain, and no member was removed nor a claim withdrawn after it (what
 * can take a file's last holder away; a new holder or member only adds). 0, -ESTALE
 * when only a scan of every file can tell (a reorg, another drive, a removal), -EIO. */
static int since_holds(struct ledger *r, const struct ledger_head *since)
{
	static const char lost[] = "SELECT EXISTS(SELECT 1 FROM members WHERE spent > ?1) OR"
	                           " EXISTS(SELECT 1 FROM hosts WHERE spent > ?1)";
	uint8_t at[LEDGER_ID_LEN];
	sqlite3_stmt *st;
	int rc;

	/* a branch given up since has state of its own that heights do not tell apart */
	if (since->height > INT64_MAX || chain_id_at(r, (int64_t)since->height, at) != 0 ||
	    memcmp(at, since->id, sizeof at) != 0)
		return -ESTALE;
	if (!(st = store_stmt(r, lost)))
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)since->height);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_err(r, rc, "health");
	}
	rc = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return rc ? -ESTALE : 0;
}

/* The rows of q (the columns of ledger_health, in order; ?1 since's height, ?2 the
 * admin, ?3 this node's key, ?4 a holder count, where q has them), at most max (0:
 * all), read through l's health twin: a scan of every file of a big drive takes
 * seconds, and the lock that lookups and listings need is never taken. With
 * under_only, ?4 is the drive's replica target, else past any count. With at or
 * since, one read transaction: *at is the head the rows are of, and since must hold
 * (since_holds) in it. */
static int health_rows(struct ledger *l, const char *q, bool under_only, size_t max,
                       const struct ledger_head *since, struct ledger_head *at,
                       struct ledger_health **out, size_t *out_n)
{
	uint8_t me[32] = { 0 };
	struct ledger *r;
	sqlite3_stmt *st;
	int rc, err;

	if (l->cfg.key)
		memcpy(me, l->cfg.key->pub, 32);
	pthread_mutex_lock(&l->health_mu);
	if ((err = health_reader(l, &r)) != 0) {
		pthread_mutex_unlock(&l->health_mu);
		return err;
	}
	if ((at || since) && (err = reader_snapshot_begin(r)) != 0)
		goto out;
	if ((at && (err = chain_head(r, at)) != 0) || (since && (err = since_holds(r, since)) != 0))
		goto out;
	err = -EIO;
	if (!(st = store_stmt(r, q)))
		goto out;
	if (since)
		sqlite3_bind_int64(st, 1, (int64_t)since->height);
	sqlite3_bind_blob(st, 2, r->params.admin, 32, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 4) {
		sqlite3_bind_blob(st, 3, me, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4,
		                   under_only ? setting_get(r, "replicas", LEDGER_REPLICAS_DEFAULT)
		                              : INT64_MAX);
	}
	rc = collect_rows(r, st, max, out, out_n);
	err = rc == SQLITE_DONE ? 0 : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
out:
	reader_snapshot_end(r); /* a no-op when none began */
	pthread_mutex_unlock(&l->health_mu);
	return err;
}

/* The live files with content and their content key. */
#define LIVE_FILES                                                                                 \
	"SELECT path, root, ih1, ih2, len, plen, " PATH_KEY " AS k FROM paths WHERE spent IS NULL" \
	" AND is_dir = 0 AND len > 0"

/* The files of files (LIVE_FILES, narrowed) that no live member holds, by path: no
 * count and no sort of every file, an index probe each and the few that qualify
 * sorted. */
#define ORPHANS_OF(files)                                                                          \
	"SELECT path, root, ih1, ih2, len, plen, k, 0, 0 FROM (" files ") WHERE NOT EXISTS("       \
	"SELECT 1 FROM hosts h WHERE h.ih = k AND " HOLDER_LIVE ") ORDER BY path"

int ledger_health_list(struct ledger *l, bool under_only, size_t max, struct ledger_health **out,
                       size_t *out_n)
{
	static const char q[] =
	    "SELECT path, root, ih1, ih2, len, plen, k, n, mine FROM (SELECT path, root, ih1, ih2,"
	    " len, plen, k, (SELECT COUNT(*) FROM hosts h WHERE h.ih = k AND " HOLDER_LIVE ") AS n,"
	    " EXISTS(SELECT 1 FROM hosts h WHERE h.ih = k AND h.member = ?3 AND h.held = 1 AND"
	    " h.spent IS NULL) AS mine FROM (" LIVE_FILES ")) WHERE n < ?4 ORDER BY n, path";

	return health_rows(l, q, under_only, max, NULL, NULL, out, out_n);
}

int ledger_health_orphans(struct ledger *l, struct ledger_head *out_head,
                          struct ledger_health **out, size_t *out_n)
{
	return health_rows(l, ORPHANS_OF(LIVE_FILES), false, 0, NULL, out_head, out, out_n);
}

int ledger_health_orphans_since(struct ledger *l, const struct ledger_head *since,
                                struct ledger_head *out_head, struct ledger_health **out,
                                size_t *out_n)
{
	/* the files claimed or updated after since (born: their block's height) */
	return health_rows(l, ORPHANS_OF(LIVE_FILES " AND born > ?1"), false, 0, since, out_head,
	                   out, out_n);
}
