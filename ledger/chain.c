/* Validation and state: the rules of DESIGN.md §4 applied record by record, the block
 * tree with cumulative weights, fork choice, rollback and replay. Callers hold the
 * ledger lock; every function here runs inside a transaction its caller opened unless
 * it opens one itself (chain_block_add, chain_produce). */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct row {
	uint8_t record[32];
	int type;
	bool is_dir, open;
	uint8_t owner[32];
	struct ledger_content c;
	int64_t born;
};

static void col_fixed(sqlite3_stmt *st, int i, uint8_t *out, size_t len)
{
	const void *p = sqlite3_column_blob(st, i);

	if (p && (size_t)sqlite3_column_bytes(st, i) == len)
		memcpy(out, p, len);
	else
		memset(out, 0, len);
}

static const char q_live[] =
    "SELECT record, type, is_dir, open, owner, root, len, ih2, ih1, plen, mode, mtime,"
    " born FROM paths WHERE path = ? AND spent IS NULL";

static int live_row(struct ledger *l, const char *path, struct row *out)
{
	sqlite3_stmt *st = store_stmt(l, q_live);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return store_err(l, rc, "live row");
	if (out) {
		memset(out, 0, sizeof *out);
		col_fixed(st, 0, out->record, 32);
		out->type = sqlite3_column_int(st, 1);
		out->is_dir = sqlite3_column_int(st, 2);
		out->open = sqlite3_column_int(st, 3);
		col_fixed(st, 4, out->owner, 32);
		col_fixed(st, 5, out->c.root, 32);
		out->c.length = (uint64_t)sqlite3_column_int64(st, 6);
		col_fixed(st, 7, out->c.ih2, 32);
		out->c.has_ih1 = sqlite3_column_type(st, 8) == SQLITE_BLOB;
		col_fixed(st, 8, out->c.ih1, 20);
		out->c.piece_length = (uint32_t)sqlite3_column_int64(st, 9);
		out->c.mode = (uint32_t)sqlite3_column_int64(st, 10);
		out->c.mtime_ns = sqlite3_column_int64(st, 11);
		out->born = sqlite3_column_int64(st, 12);
	}
	sqlite3_reset(st);
	return 0;
}

static bool has_children(struct ledger *l, const char *path)
{
	static const char q[] = "SELECT 1 FROM paths WHERE parent = ? AND spent IS NULL LIMIT 1";
	sqlite3_stmt *st = store_stmt(l, q);
	bool any;

	if (!st)
		return true;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	any = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return any;
}

/* Member role: 2 producer, 1 member, 0 none. The admin counts as a member. */
int chain_member_role(struct ledger *l, const uint8_t key[32])
{
	static const char q[] = "SELECT producer FROM members WHERE key = ? AND spent IS NULL";
	sqlite3_stmt *st = store_stmt(l, q);
	int role = 0;

	if (st) {
		sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			role = sqlite3_column_int(st, 0) ? 2 : 1;
		sqlite3_reset(st);
	}
	if (!role && !memcmp(key, l->params.admin, 32))
		role = 1;
	return role;
}

bool chain_is_producer(struct ledger *l, const uint8_t key[32])
{
	return chain_member_role(l, key) == 2;
}

/* Every row's first column, a 32-byte id, into a malloc'd array (*out, *out_n); the
 * statement is reset. Returns 0, -ENOMEM or the store's error for what. */
static int ids_of(struct ledger *l, sqlite3_stmt *st, const char *what, uint8_t (**out)[32],
                  size_t *out_n)
{
	uint8_t(*v)[32] = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			void *nv = realloc(v, (cap = cap ? cap * 2 : 64) * 32);

			if (!nv) {
				free(v);
				sqlite3_reset(st);
				return -ENOMEM;
			}
			v = nv;
		}
		col_fixed(st, 0, v[n++], 32);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_err(l, rc, what);
	}
	*out = v;
	*out_n = n;
	return 0;
}

/* The live producers in turn order; *out malloc'd. */
static int producers(struct ledger *l, uint8_t (**out)[32], size_t *out_n)
{
	static const char q[] =
	    "SELECT key FROM members WHERE producer = 1 AND spent IS NULL ORDER BY seq";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	return ids_of(l, st, "producers", out, out_n);
}

/* Whether author may create an entry directly inside dir. */
static int may_create(struct ledger *l, const uint8_t author[32], const char *dir)
{
	struct row d;
	int rc;

	if (!strcmp(dir, "/"))
		return chain_member_role(l, author) ? 0 : -EPERM;
	rc = live_row(l, dir, &d);
	if (rc)
		return rc; /* -ENOENT: no such parent */
	if (!d.is_dir)
		return -ENOTDIR;
	if (memcmp(d.owner, author, 32) && !(d.open && chain_member_role(l, author)))
		return -EPERM;
	return 0;
}

static bool in_chain(struct ledger *l, const uint8_t id[32])
{
	static const char q[] = "SELECT 1 FROM chain_records WHERE record = ?";

	return store_has(l, q, id);
}

/* Who may change a live path (DESIGN.md §10): its owner while a live member; a removed
 * member keeps its records but loses every right to change them, and the admin may
 * reassign such a path (a transfer signed by the admin). A transfer's recipient must be
 * a live member (-ENOKEY otherwise). */
static int owner_rights(struct ledger *l, const struct rec *r, const struct row *cur)
{
	bool owner = !memcmp(cur->owner, r->author, 32);

	if (owner && !chain_member_role(l, r->author))
		return -EPERM; /* removed: its paths stay, its rights went */
	/* the admin reassigns a removed member's path */
	if (!owner && !(r->type == LEDGER_REC_TRANSFER && !memcmp(r->author, l->params.admin, 32) &&
	                !chain_member_role(l, cur->owner)))
		return -EPERM;
	if (r->type == LEDGER_REC_TRANSFER && !chain_member_role(l, r->to))
		return -ENOKEY;
	return 0;
}

bool chain_rec_time_free(enum ledger_rec_type type)
{
	return type != LEDGER_REC_INVITE && type != LEDGER_REC_REDEEM && type != LEDGER_REC_KEYS &&
	       type != LEDGER_REC_KEYWRAP;
}

/* r's row in chain_records, at height and idx of its block: -EALREADY when it has
 * one already (the same record twice in the chain). */
static int chain_record_put(struct ledger *l, const uint8_t id[32], int64_t height, int64_t idx)
{
	static const char q[] = "INSERT INTO chain_records(record, height, idx) VALUES(?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, height);
	sqlite3_bind_int64(st, 3, idx);
	rc = store_step_done(l, st, "chain record");
	return rc == -EPERM ? -EALREADY : rc;
}

/* Check one record against the state as it stands. time_limit bounds its timestamp.
 * at: NULL, or the height and index in its block where block_apply puts it in the
 * chain: its row in chain_records is then written where the question whether it has
 * one was (one descent of that index, at a random place, where there were two). */
static int record_check_at(struct ledger *l, const struct rec *r, int64_t time_limit,
                           const int64_t at[2])
{
	char parent[LEDGER_PATH_MAX + 1];
	struct row cur;
	int rc;

	if (memcmp(r->drive, l->drive, 32))
		return -EINVAL;
	if (r->time > time_limit)
		return -ERANGE;
	if (at && (rc = chain_record_put(l, r->id, at[0], at[1])))
		return rc;
	if (!at && in_chain(l, r->id))
		return -EALREADY;
	if ((r->type == LEDGER_REC_CLAIM || r->type == LEDGER_REC_UPDATE) &&
	    (rc = filekey_check(l, r)))
		return rc;
	if (!chain_rec_time_free(r->type)) /* the access records: their expiry reads the clock */
		return access_check(l, r, time_limit - l->cfg.max_future_s);
	switch (r->type) {
	case LEDGER_REC_CLAIM:
	case LEDGER_REC_MKDIR:
		if (!chain_member_role(l, r->author))
			return -EPERM;
		rc = live_row(l, r->path, NULL);
		if (rc == 0)
			return -EEXIST;
		if (rc != -ENOENT)
			return rc;
		ledger_path_split(r->path, parent);
		rc = may_create(l, r->author, parent);
		/* implicit parents: missing directories come with the record, so the
		 * nearest one that exists says whether the author may create there */
		while (rc == -ENOENT && strcmp(parent, "/")) {
			char up[LEDGER_PATH_MAX + 1];

			ledger_path_split(parent, up);
			memcpy(parent, up, sizeof parent);
			rc = may_create(l, r->author, parent);
		}
		return rc;
	case LEDGER_REC_MEMBER:
		if (memcmp(r->author, l->params.admin, 32))
			return -EPERM;
		rc = chain_member_role(l, r->member);
		if (r->remove) {
			uint8_t(*p)[32];
			size_t n;

			if (rc == 0 ||
			    (rc == 1 && !memcmp(r->member, l->params.admin, 32) && !r->producer))
				return -ENOENT;
			if ((rc == 2) != r->producer)
				return -ENOENT;
			if (rc == 2) {
				rc = producers(l, &p, &n);
				if (rc)
					return rc;
				free(p);
				if (n <= 1)
					return -EINVAL; /* a drive needs a producer */
			}
			return 0;
		}
		return rc == (r->producer ? 2 : 1) ? -EEXIST : 0;
	case LEDGER_REC_CREDIT: return credit_check(l, r);
	case LEDGER_REC_HOST: return host_check(l, r);
	case LEDGER_REC_SETTING: return setting_check(l, r);
	default: break;
	}
	/* update, transfer, move, revoke: spend the path's live record */
	rc = live_row(l, r->path, &cur);
	if (rc)
		return rc;
	if (memcmp(cur.record, r->prev, 32))
		return -ESTALE; /* not the live record: a double spend or a stale view */
	rc = owner_rights(l, r, &cur);
	if (rc)
		return rc;
	switch (r->type) {
	case LEDGER_REC_UPDATE:
		/* a directory's update carries its new mode and mtime (chmod, touch, the
		 * times tar and rsync restore); it stays a directory with its children */
		return 0;
	case LEDGER_REC_REVOKE: return cur.is_dir && has_children(l, r->path) ? -ENOTEMPTY : 0;
	case LEDGER_REC_MOVE: {
		size_t pl = strlen(r->path);

		/* a directory moves with everything beneath it, never into itself */
		if (!strncmp(r->dest, r->path, pl) && r->dest[pl] == '/')
			return -EINVAL;
		rc = live_row(l, r->dest, NULL);
		if (rc == 0)
			return -EEXIST;
		if (rc != -ENOENT)
			return rc;
		ledger_path_split(r->dest, parent);
		return may_create(l, r->author, parent);
	}
	default: return 0;
	}
}

static int record_check(struct ledger *l, const struct rec *r, int64_t time_limit)
{
	return record_check_at(l, r, time_limit, NULL);
}

static const char q_ins_path[] =
    "INSERT INTO paths(path, parent, name, record, type, is_dir, open, owner, root, len,"
    " ih2, ih1, plen, mode, mtime, born) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static int insert_path(struct ledger *l, const char *path, const uint8_t record[32], int type,
                       bool is_dir, bool open, const uint8_t owner[32],
                       const struct ledger_content *c, int64_t height)
{
	char parent[LEDGER_PATH_MAX + 1];
	const char *name = ledger_path_split(path, parent);
	sqlite3_stmt *st = store_stmt(l, q_ins_path);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, parent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, record, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, type);
	sqlite3_bind_int(st, 6, is_dir);
	sqlite3_bind_int(st, 7, open);
	sqlite3_bind_blob(st, 8, owner, 32, SQLITE_STATIC);
	if (!is_dir) {
		sqlite3_bind_blob(st, 9, c->root, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, (int64_t)c->length);
		sqlite3_bind_blob(st, 11, c->ih2, 32, SQLITE_STATIC);
		if (c->has_ih1)
			sqlite3_bind_blob(st, 12, c->ih1, 20, SQLITE_STATIC);
		sqlite3_bind_int64(st, 13, c->piece_length);
	}
	sqlite3_bind_int64(st, 14, c->mode);
	sqlite3_bind_int64(st, 15, c->mtime_ns);
	sqlite3_bind_int64(st, 16, height);
	ledger_note_change(l, path);
	return store_step_done(l, st, "insert path");
}

static int spend_path(struct ledger *l, const char *path, int64_t height)
{
	static const char q[] = "UPDATE paths SET spent = ? WHERE path = ? AND spent IS NULL";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	ledger_note_change(l, path);
	return store_step_done(l, st, "spend path");
}

static int add_history(struct ledger *l, const struct rec *r, const char *key, const char *dest,
                       int64_t height)
{
	static const char q[] = "INSERT INTO history(record, key, path, type, author, height,"
	                        " time, dest) VALUES(?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, r->id, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->type);
	sqlite3_bind_blob(st, 5, r->author, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, height);
	sqlite3_bind_int64(st, 7, r->time);
	sqlite3_bind_text(st, 8, dest, -1, SQLITE_STATIC);
	return store_step_done(l, st, "history");
}

int chain_member_set(struct ledger *l, const uint8_t key[32], int role, const char *name,
                     int64_t height)
{
	static const char q_spend[] =
	    "UPDATE members SET spent = ? WHERE key = ? AND spent IS NULL";
	static const char q_add[] =
	    "INSERT INTO members(key, producer, seq, born, name) VALUES(?, ?,"
	    " (SELECT COALESCE(MAX(seq), -1) + 1 FROM members), ?,"
	    " COALESCE(NULLIF(?4, ''), (SELECT name FROM members WHERE key = ?1 ORDER BY born"
	    " DESC LIMIT 1), ''))";
	sqlite3_stmt *st = store_stmt(l, q_spend);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
	rc = store_step_done(l, st, "member spend");
	if (rc || !role)
		return rc;
	st = store_stmt(l, q_add);
	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, role == 2);
	sqlite3_bind_int64(st, 3, height);
	/* a role change keeps the name the member had */
	sqlite3_bind_text(st, 4, name ? name : "", -1, SQLITE_STATIC);
	return store_step_done(l, st, "member add");
}

/* Apply a record already checked by record_check. */
/* A directory moved: every live row beneath r->path moves beneath r->dest, each keeping
 * its record, owner and content (its next change cites the same record), spent and
 * made again at this height so a reorg undoes it like any change. */
static int move_children(struct ledger *l, const struct rec *r, int64_t height)
{
	/* '/' is 0x2f and '0' 0x30: [path/, path0) is exactly what lies beneath */
	static const char q[] = "SELECT path FROM paths WHERE spent IS NULL AND path > ? AND "
	                        "path < ? ORDER BY path";
	sqlite3_stmt *st = store_stmt(l, q);
	char lo[LEDGER_PATH_MAX + 2], hi[LEDGER_PATH_MAX + 2], **paths = NULL;
	size_t n = 0, pl = strlen(r->path), dl = strlen(r->dest);
	int rc;

	if (!st)
		return -EIO;
	snprintf(lo, sizeof lo, "%s/", r->path);
	snprintf(hi, sizeof hi, "%s0", r->path);
	sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **np = realloc(paths, (n + 1) * sizeof *np);

		if (!np || !(np[n] = strdup((const char *)sqlite3_column_text(st, 0)))) {
			paths = np ? np : paths;
			rc = -ENOMEM;
			break;
		}
		paths = np;
		n++;
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : rc < 0 ? rc : store_err(l, rc, "children");
	for (size_t i = 0; !rc && i < n; i++) {
		char to[LEDGER_PATH_MAX + 1];
		struct row row;

		if (dl + strlen(paths[i]) - pl > LEDGER_PATH_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		snprintf(to, sizeof to, "%s%s", r->dest, paths[i] + pl);
		rc = live_row(l, paths[i], &row);
		if (!rc)
			rc = spend_path(l, paths[i], height);
		if (!rc)
			rc = insert_path(l, to, row.record, row.type, row.is_dir, row.open,
			                 row.owner, &row.c, height);
		if (!rc)
			rc = add_history(l, r, to, to, height);
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

/* The directories missing above r's path, made as r's author's (mode 0755, r's mtime),
 * from the top down; each is a live row citing r, so it verifies, and the owner may
 * change or revoke it like any directory. Found in the history under r. */
static int implicit_parents(struct ledger *l, const struct rec *r, int64_t height)
{
	char dir[LEDGER_PATH_MAX + 1], up[LEDGER_PATH_MAX + 1];
	struct ledger_content c = { .mode = 0755, .mtime_ns = r->content.mtime_ns };
	size_t depth = 0;
	int rc;

	/* how many are missing */
	ledger_path_split(r->path, dir);
	while (strcmp(dir, "/") && (rc = live_row(l, dir, NULL)) == -ENOENT) {
		depth++;
		ledger_path_split(dir, up);
		memcpy(dir, up, sizeof dir);
	}
	/* make them, the topmost first */
	for (size_t k = depth; k > 0; k--) {
		ledger_path_split(r->path, dir);
		for (size_t i = 1; i < k; i++) {
			ledger_path_split(dir, up);
			memcpy(dir, up, sizeof dir);
		}
		rc = insert_path(l, dir, r->id, LEDGER_REC_MKDIR, true, false, r->author, &c,
		                 height);
		if (!rc)
			rc = add_history(l, r, dir, "", height);
		if (rc)
			return rc;
	}
	return 0;
}

static int record_apply(struct ledger *l, const struct rec *r, int64_t height)
{
	struct row cur;
	char hex[LEDGER_HEX_LEN];
	int rc = 0;

	switch (r->type) {
	case LEDGER_REC_CLAIM:
		rc = implicit_parents(l, r, height);
		if (!rc)
			rc = insert_path(l, r->path, r->id, r->type, false, false, r->author,
			                 &r->content, height);
		if (!rc)
			rc = host_on_content(l, r, height);
		break;
	case LEDGER_REC_MKDIR:
		rc = implicit_parents(l, r, height);
		if (!rc)
			rc = insert_path(l, r->path, r->id, r->type, true, r->open, r->author,
			                 &r->content, height);
		break;
	case LEDGER_REC_MEMBER: {
		int role = r->remove ? 0 : r->producer ? 2 : 1;

		/* removing a producer keeps it a member */
		if (r->remove && r->producer)
			role = 1;
		rc = chain_member_set(l, r->member, role, r->name, height);
		ledger_note_change(l, NULL);
		break;
	}
	case LEDGER_REC_INVITE:
	case LEDGER_REC_REDEEM:
	case LEDGER_REC_KEYS:
	case LEDGER_REC_KEYWRAP:
		rc = access_apply(l, r, height);
		ledger_note_change(l, NULL);
		break;
	case LEDGER_REC_CREDIT:
		if ((rc = credit_apply(l, r, height)))
			return rc;
		return add_history(l, r, "", "", height);
	case LEDGER_REC_HOST:
	case LEDGER_REC_SETTING: {
		/* the history says what: "add|remove <content key>", "replicas=N" */
		char what[LEDGER_HEX_LEN + 16];

		ledger_hex(r->content.root, 32, hex);
		if (r->type == LEDGER_REC_HOST)
			snprintf(what, sizeof what, "%s %s", r->remove ? "remove" : "add", hex);
		else
			snprintf(what, sizeof what, "%s=%lld", r->setting, (long long)r->value);
		rc = r->type == LEDGER_REC_HOST ? host_apply(l, r, height)
		                                : setting_apply(l, r, height);
		if (rc)
			return rc;
		ledger_note_change(l, NULL);
		return add_history(l, r, "", what, height);
	}
	default:
		rc = live_row(l, r->path, &cur);
		if (!rc)
			rc = spend_path(l, r->path, height);
		if (rc)
			return rc;
		if (r->type == LEDGER_REC_UPDATE)
			rc = insert_path(l, r->path, r->id, r->type, cur.is_dir,
			                 cur.is_dir && cur.open, r->author, &r->content, height);
		else if (r->type == LEDGER_REC_TRANSFER)
			rc = insert_path(l, r->path, r->id, r->type, cur.is_dir, cur.open, r->to,
			                 &cur.c, height);
		else if (r->type == LEDGER_REC_MOVE)
			rc = insert_path(l, r->dest, r->id, r->type, cur.is_dir, cur.open,
			                 cur.owner, &cur.c, height);
		if (!rc && r->type == LEDGER_REC_MOVE && cur.is_dir)
			rc = move_children(l, r, height);
		if (!rc && r->type == LEDGER_REC_UPDATE && !cur.is_dir)
			rc = host_on_content(l, r, height);
		break;
	}
	if (rc)
		return rc;
	if (r->type == LEDGER_REC_MEMBER || r->type == LEDGER_REC_KEYWRAP) {
		ledger_hex(r->member, 32, hex);
		return add_history(l, r, "", hex, height);
	}
	if (r->type == LEDGER_REC_INVITE || r->type == LEDGER_REC_REDEEM) {
		ledger_hex(r->ikey, 32, hex);
		return add_history(l, r, "", hex, height);
	}
	if (r->type == LEDGER_REC_KEYS) {
		snprintf(hex, sizeof hex, "epoch %lld", (long long)r->epoch);
		return add_history(l, r, "", hex, height);
	}
	if (r->type == LEDGER_REC_TRANSFER) {
		ledger_hex(r->to, 32, hex);
		return add_history(l, r, r->path, hex, height);
	}
	rc = add_history(l, r, r->path, r->type == LEDGER_REC_MOVE ? r->dest : "", height);
	if (!rc && r->type == LEDGER_REC_MOVE)
		rc = add_history(l, r, r->dest, r->dest, height); /* found under the new path too */
	return rc;
}

/* ---- blocks ---- */

struct blkinfo {
	int64_t height;
	uint8_t prev[32];
	int64_t cum;
	int64_t time;
};

static int block_info(struct ledger *l, const uint8_t id[32], struct blkinfo *out)
{
	static const char q[] = "SELECT height, prev, cum, time FROM blocks WHERE id = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->height = sqlite3_column_int64(st, 0);
		col_fixed(st, 1, out->prev, 32);
		out->cum = sqlite3_column_int64(st, 2);
		out->time = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "block info");
}

int chain_id_at(struct ledger *l, int64_t height, uint8_t out[32])
{
	static const char q[] = "SELECT id FROM chain WHERE height = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, height);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		col_fixed(st, 0, out, 32);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "chain id");
}

int chain_head(struct ledger *l, struct ledger_head *out)
{
	static const char q[] = "SELECT c.height, c.id, b.cum, b.time FROM chain c"
	                        " JOIN blocks b ON b.id = c.id ORDER BY c.height DESC LIMIT 1";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->height = (uint64_t)sqlite3_column_int64(st, 0);
		col_fixed(st, 1, out->id, 32);
		out->weight = (uint64_t)sqlite3_column_int64(st, 2);
		out->time = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "head");
}

static int put_block_meta(struct ledger *l, const uint8_t id[32], int64_t height,
                          const uint8_t prev[32], int64_t cum, int64_t time)
{
	static const char q[] =
	    "INSERT OR IGNORE INTO blocks(id, height, prev, cum, time) VALUES(?,?,?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, height);
	sqlite3_bind_blob(st, 3, prev, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, cum);
	sqlite3_bind_int64(st, 5, time);
	return store_step_done(l, st, "block meta");
}

static int put_raw_block(struct ledger *l, const struct blk_hdr *h, const uint8_t *hdr,
                         size_t hdr_len)
{
	static const char q[] =
	    "INSERT OR IGNORE INTO raw_blocks(id, height, prev, hdr) VALUES(?,?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, h->id, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, h->height);
	sqlite3_bind_blob(st, 3, h->prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, hdr, (int)hdr_len, SQLITE_STATIC);
	return store_step_done(l, st, "raw block");
}

static int put_raw_record(struct ledger *l, const uint8_t block[32], int64_t idx,
                          const uint8_t id[32], const uint8_t *raw, size_t len)
{
	static const char q1[] = "INSERT OR IGNORE INTO raw_records(id, raw) VALUES(?,?)";
	static const char q2[] =
	    "INSERT OR IGNORE INTO raw_block_records(block, idx, record) VALUES(?,?,?)";
	sqlite3_stmt *st = store_stmt(l, q1);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, raw, (int)len, SQLITE_STATIC);
	rc = store_step_done(l, st, "raw record");
	if (rc)
		return rc;
	st = store_stmt(l, q2);
	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, block, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_blob(st, 3, id, 32, SQLITE_STATIC);
	return store_step_done(l, st, "raw block record");
}

/* Genesis: its own state (producers) and height 0 of the chain. */
int chain_init_genesis(struct ledger *l, const uint8_t *raw, size_t len)
{
	static const char q_chain[] = "INSERT INTO chain(height, id) VALUES(?, ?)";
	struct blk_hdr h;
	sqlite3_stmt *st;
	int rc;

	rc = blk_hdr_decode(raw, len, &h, true);
	if (rc)
		return rc;
	rc = put_raw_block(l, &h, raw, len);
	if (!rc)
		rc = put_block_meta(l, h.id, 0, h.prev, 0, h.time);
	for (size_t i = 0; !rc && i < l->params.n_producers; i++) {
		if (chain_member_role(l, l->params.producers[i]) == 2)
			continue; /* listed twice: once is enough */
		rc = chain_member_set(l, l->params.producers[i], 2, NULL, 0);
	}
	if (rc)
		return rc;
	st = store_stmt(l, q_chain);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, 0);
	sqlite3_bind_blob(st, 2, h.id, 32, SQLITE_STATIC);
	return store_step_done(l, st, "chain genesis");
}

/* A block in memory: header and its records, parsed. */
struct blk {
	struct blk_hdr h;
	uint8_t *hdr_raw;
	size_t hdr_len;
	struct rec *recs;
	uint8_t **raws;
	size_t *lens;
	size_t n;
};

static void blk_free(struct blk *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->raws[i]);
	free(b->raws);
	free(b->lens);
	free(b->recs);
	free(b->hdr_raw);
	memset(b, 0, sizeof *b);
}

/* Load a stored block (already verified once when it was stored); its records are
 * parsed only if parse (the wire form needs just the bytes). */
static int blk_load(struct ledger *l, const uint8_t id[32], struct blk *b, bool parse)
{
	static const char qh[] = "SELECT hdr FROM raw_blocks WHERE id = ?";
	static const char qr[] = "SELECT r.raw FROM raw_block_records br JOIN raw_records r"
	                         " ON r.id = br.record WHERE br.block = ? ORDER BY br.idx";
	sqlite3_stmt *st = store_stmt(l, qh);
	size_t cap = 0;
	int rc;

	memset(b, 0, sizeof *b);
	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "load block");
	}
	b->hdr_len = (size_t)sqlite3_column_bytes(st, 0);
	b->hdr_raw = malloc(b->hdr_len + 1);
	if (!b->hdr_raw) {
		sqlite3_reset(st);
		return -ENOMEM;
	}
	memcpy(b->hdr_raw, sqlite3_column_blob(st, 0), b->hdr_len);
	sqlite3_reset(st);
	rc = blk_hdr_decode(b->hdr_raw, b->hdr_len, &b->h, false);
	if (rc)
		goto fail;
	st = store_stmt(l, qr);
	if (!st) {
		rc = -EIO;
		goto fail;
	}
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		if (b->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			void *a = realloc(b->recs, nc * sizeof *b->recs);
			void *c = a ? realloc(b->raws, nc * sizeof *b->raws) : NULL;
			void *d = c ? realloc(b->lens, nc * sizeof *b->lens) : NULL;

			if (a)
				b->recs = a;
			if (c)
				b->raws = c;
			if (d)
				b->lens = d;
			if (!a || !c || !d) {
				rc = -ENOMEM;
				sqlite3_reset(st);
				goto fail;
			}
			cap = nc;
		}
		b->raws[b->n] = malloc(n ? n : 1);
		if (!b->raws[b->n]) {
			rc = -ENOMEM;
			sqlite3_reset(st);
			goto fail;
		}
		memcpy(b->raws[b->n], sqlite3_column_blob(st, 0), n);
		b->lens[b->n] = n;
		b->n++;
		if (parse && rec_parse(b->raws[b->n - 1], n, SIZE_MAX, &b->recs[b->n - 1])) {
			rc = -EBADMSG;
			sqlite3_reset(st);
			goto fail;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = store_err(l, rc, "load records");
		goto fail;
	}
	if ((int64_t)b->n != b->h.n_records) {
		rc = -EBADMSG;
		goto fail;
	}
	return 0;
fail:
	blk_free(b);
	return rc;
}

/* Seconds our clock may lag an honest producer's when judging its grace delay. */
static const int64_t GRACE_CLOCK_SLACK_S = 2;

/* Apply a block whose parent is the current head. */
static int block_apply(struct ledger *l, const struct blk *b, const struct blkinfo *parent)
{
	static const char q_chain[] = "INSERT INTO chain(height, id) VALUES(?, ?)";
	static const char q_mp[] = "DELETE FROM mempool WHERE id = ?";
	static const char q_mp_any[] = "SELECT 1 FROM mempool LIMIT 1";
	uint8_t(*prods)[32];
	size_t np;
	bool in_turn, mempool;
	sqlite3_stmt *st;
	int rc;

	rc = producers(l, &prods, &np);
	if (rc)
		return rc;
	rc = -EPERM;
	for (size_t i = 0; i < np; i++)
		if (!memcmp(prods[i], b->h.producer, 32))
			rc = 0;
	in_turn = np && !memcmp(prods[(uint64_t)b->h.height % np], b->h.producer, 32);
	free(prods);
	if (rc) {
		L_WARN(l, "block %lld: producer is not a producer", (long long)b->h.height);
		return rc;
	}
	if (b->h.weight != (in_turn ? 2 : 1)) {
		L_WARN(l, "block %lld: weight %lld, the rules say %d", (long long)b->h.height,
		       (long long)b->h.weight, in_turn ? 2 : 1);
		return -EINVAL;
	}
	if (!in_turn && b->h.time < parent->time + l->params.grace_s) {
		L_WARN(l, "block %lld: out of turn before the grace delay", (long long)b->h.height);
		return -EINVAL;
	}
	/* the grace delay runs by this node's clock too: a producer's word alone (a time
	 * within the allowed future) does not shorten it. Not yet is not invalid: the
	 * block is not marked bad and may come again (-EAGAIN). */
	if (!in_turn && ledger_now(l) + GRACE_CLOCK_SLACK_S < parent->time + l->params.grace_s) {
		L_WARN(l, "block %lld: out of turn before the grace delay by our clock",
		       (long long)b->h.height);
		return -EAGAIN;
	}
	/* an empty mempool (a fresh node's sync) has none of the block's records to drop */
	if (!(st = store_stmt(l, q_mp_any)))
		return -EIO;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_err(l, rc, "mempool any");
	mempool = rc == SQLITE_ROW;
	for (size_t i = 0; i < b->n; i++) {
		rc = record_check_at(l, &b->recs[i], b->h.time + l->cfg.max_future_s,
		                     (const int64_t[2]){ b->h.height, (int64_t)i });
		if (rc) {
			char hex[LEDGER_HEX_LEN];

			ledger_hex(b->recs[i].id, 32, hex);
			L_WARN(l, "block %lld: record %zu (%s) invalid: %s", (long long)b->h.height,
			       i, hex, strerror(-rc));
			return rc;
		}
		rc = record_apply(l, &b->recs[i], b->h.height);
		if (rc)
			return rc;
		if (!mempool)
			continue;
		st = store_stmt(l, q_mp);
		if (!st)
			return -EIO;
		sqlite3_bind_blob(st, 1, b->recs[i].id, 32, SQLITE_STATIC);
		rc = store_step_done(l, st, "mempool delete");
		if (rc)
			return rc;
	}
	st = store_stmt(l, q_chain);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, b->h.height);
	sqlite3_bind_blob(st, 2, b->h.id, 32, SQLITE_STATIC);
	ledger_note_change(l, NULL);
	rc = store_step_done(l, st, "chain");
	return rc ? rc : finality_on_apply(l, b->h.height, b->h.producer);
}

/* Roll state back to height h: the best chain above it is undone and its records
 * return to the mempool. */
static int rollback_to(struct ledger *l, int64_t h)
{
	static const char q_changed[] =
	    "SELECT path FROM paths WHERE born > ?1 UNION SELECT path FROM paths"
	    " WHERE spent > ?1";
	static const char q_orphans[] =
	    "SELECT r.raw FROM chain_records c JOIN raw_records r ON r.id = c.record"
	    " WHERE c.height > ?1 ORDER BY c.height, c.idx";
	static const char *const q_undo[] = {
		"DELETE FROM paths WHERE born > ?1",
		"UPDATE paths SET spent = NULL WHERE spent > ?1",
		"DELETE FROM members WHERE born > ?1",
		"UPDATE members SET spent = NULL WHERE spent > ?1",
		"DELETE FROM invites WHERE born > ?1",
		"UPDATE invites SET spent = NULL, redeemer = NULL WHERE spent > ?1",
		"DELETE FROM epochs WHERE born > ?1",
		"DELETE FROM wraps WHERE born > ?1",
		"DELETE FROM credits WHERE born > ?1",
		"DELETE FROM hosts WHERE born > ?1",
		"UPDATE hosts SET spent = NULL WHERE spent > ?1",
		"DELETE FROM settings WHERE born > ?1",
		"UPDATE settings SET spent = NULL WHERE spent > ?1",
		"DELETE FROM history WHERE height > ?1",
		"DELETE FROM chain_records WHERE height > ?1",
		"DELETE FROM chain WHERE height > ?1",
	};
	sqlite3_stmt *st = store_stmt(l, q_changed);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, h);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		ledger_note_change(l, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(l, rc, "rollback paths");
	st = store_stmt(l, q_orphans);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, h);
	/* orphaned records go back to the mempool; pruning later drops the invalid */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *raw = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		struct rec r;

		if (rec_parse(raw, len, SIZE_MAX, &r) == 0) {
			rc = chain_mempool_add(l, &r, raw, len);
			if (rc)
				break;
		}
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc < 0 ? rc : store_err(l, rc, "orphans");
	for (size_t i = 0; !rc && i < sizeof q_undo / sizeof q_undo[0]; i++) {
		st = store_stmt(l, q_undo[i]);
		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, h);
		rc = store_step_done(l, st, q_undo[i]);
	}
	if (!rc)
		rc = finality_on_rollback(l, h);
	l->chain_epoch++;
	ledger_note_change(l, NULL);
	return rc;
}

static bool genesis_producer(struct ledger *l, const uint8_t key[32])
{
	for (size_t i = 0; i < l->params.n_producers; i++)
		if (!memcmp(l->params.producers[i], key, 32))
			return true;
	return false;
}

static bool better(int64_t cum_a, const uint8_t a[32], int64_t cum_b, const uint8_t b[32])
{
	return cum_a > cum_b || (cum_a == cum_b && memcmp(a, b, 32) < 0);
}

static void mark_bad(struct ledger *l, const uint8_t id[32], int why)
{
	static const char q[] = "INSERT OR IGNORE INTO bad_blocks(id, why) VALUES(?, ?)";
	sqlite3_stmt *st = store_stmt(l, q);

	if (st) {
		sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, why);
		store_step_done(l, st, "bad block");
	}
}

static bool is_bad(struct ledger *l, const uint8_t id[32])
{
	static const char q[] = "SELECT 1 FROM bad_blocks WHERE id = ?";

	return store_has(l, q, id);
}

/* Make tip the head: roll back to the fork point, apply the branch. On failure the
 * failing block's id goes to *out_bad. Inside the caller's transaction. */
static int switch_to(struct ledger *l, const uint8_t tip[32], const struct blk *tip_blk,
                     uint8_t out_bad[32])
{
	uint8_t(*branch)[32] = NULL, cur[32], at[32];
	size_t n = 0, cap = 0;
	struct blkinfo bi, parent;
	int rc;

	memcpy(cur, tip, 32);
	for (;;) {
		rc = block_info(l, cur, &bi);
		if (rc)
			goto out;
		if (chain_id_at(l, bi.height, at) == 0 && !memcmp(at, cur, 32))
			break; /* cur is the fork point */
		if (n == cap) {
			void *nb = realloc(branch, (cap = cap ? cap * 2 : 16) * 32);

			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			branch = nb;
		}
		memcpy(branch[n++], cur, 32);
		memcpy(cur, bi.prev, 32);
	}
	{
		struct ledger_head head;

		rc = chain_head(l, &head);
		if (rc)
			goto out;
		if ((int64_t)head.height > bi.height) {
			rc = finality_reorg_check(l, bi.height, (const uint8_t(*)[32])branch, n,
			                          tip_blk ? tip_blk->h.producer : NULL,
			                          bi.height + (int64_t)n);
			if (rc) {
				memcpy(out_bad, tip, 32);
				goto out;
			}
			L_INFO(l, "reorg: rolling back %lld blocks to height %lld",
			       (long long)head.height - bi.height, (long long)bi.height);
			rc = rollback_to(l, bi.height);
			if (rc)
				goto out;
			ledger_step(l, "reorg:rolled-back");
		}
	}
	parent = bi;
	while (n > 0) {
		struct blk b;

		n--;
		if (n == 0 && tip_blk) {
			/* the block just received: already parsed, no need to read it back */
			rc = block_apply(l, tip_blk, &parent);
		} else {
			rc = blk_load(l, branch[n], &b, true);
			if (!rc) {
				rc = block_apply(l, &b, &parent);
				blk_free(&b);
			}
		}
		if (rc) {
			memcpy(out_bad, branch[n], 32);
			goto out;
		}
		rc = block_info(l, branch[n], &parent);
		if (rc)
			goto out;
	}
out:
	free(branch);
	return rc;
}

/* One pass over the mempool in order, applying each record on top of the state as of
 * block `height` (inside the caller's savepoint, which the caller rolls back). A record
 * that no longer parses, checks or applies goes to bad (when collect_bad) by its stored
 * id. take (may be NULL) sees each record that applied and returns nonzero to stop the
 * walk: produce uses it to fill a block. */
struct mempool_walk {
	int64_t height;     /* records apply as of this block height */
	int64_t time_limit; /* records dated later are refused */
	size_t max_record;  /* bytes; larger records are refused */
	int (*take)(const uint8_t id[32], const uint8_t *raw, size_t len, void *ctx);
	void *ctx;
	bool collect_bad;
	uint8_t (*bad)[32]; /* out, malloc'd: free it */
	size_t n_bad;
};

/* Tell the embedder (after unlock) that its own record r leaves the mempool. */
static void note_dropped(struct ledger *l, const struct rec *r, int reason)
{
	struct ledger_dropped *d, **nd;

	if (!l->cfg.on_dropped || !l->cfg.key || memcmp(r->author, l->cfg.key->pub, 32))
		return;
	if (reason == -EALREADY)
		return; /* in the chain already (another producer's block took it): not lost */
	if (!(d = calloc(1, sizeof *d)))
		return;
	if (!(nd = realloc(l->dropped, (l->n_dropped + 1) * sizeof *nd))) {
		free(d);
		return;
	}
	l->dropped = nd;
	d->type = r->type;
	memcpy(d->path, r->path, sizeof d->path);
	memcpy(d->to, r->to, sizeof d->to);
	d->content = r->content;
	memcpy(d->record_id, r->id, sizeof d->record_id);
	d->reason = reason;
	/* the wrap goes with the record: what a conflict copy needs is opened now */
	d->has_file_key = r->has_wrap && filekey_open_locked(l, r, d->file_key, &d->iv_nonce) == 0;
	l->dropped[l->n_dropped++] = d;
}

static int mempool_walk(struct ledger *l, struct mempool_walk *w)
{
	static const char q[] = "SELECT id, raw FROM mempool ORDER BY seq";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *raw = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		struct rec r;
		int vr = rec_parse(raw, len, w->max_record, &r);

		bool parsed = !vr;

		if (!vr)
			vr = record_check(l, &r, w->time_limit);
		if (!vr)
			vr = record_apply(l, &r, w->height);
		if (vr) {
			void *nb;

			if (!w->collect_bad || !(nb = realloc(w->bad, (w->n_bad + 1) * 32)))
				continue;
			if (parsed)
				note_dropped(l, &r, vr); /* every bad record of a walk is dropped */
			w->bad = nb;
			col_fixed(st, 0, w->bad[w->n_bad++], 32);
		} else if (w->take && w->take(r.id, raw, len, w->ctx))
			break;
	}
	sqlite3_reset(st);
	return 0;
}

/* Delete records from the mempool (the bad ones of a walk) and say how many. */
static int mempool_drop(struct ledger *l, uint8_t (*ids)[32], size_t n)
{
	static const char q_del[] = "DELETE FROM mempool WHERE id = ?";
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++) {
		sqlite3_stmt *st = store_stmt(l, q_del);

		if (!st)
			return -EIO;
		sqlite3_bind_blob(st, 1, ids[i], 32, SQLITE_STATIC);
		rc = store_step_done(l, st, "mempool drop");
	}
	if (n)
		L_INFO(l, "mempool: dropped %zu records that no longer apply", n);
	return rc;
}

/* Drop mempool records that no longer apply on top of the state. */
static int mempool_prune(struct ledger *l, int64_t next_height)
{
	struct mempool_walk w = { .height = next_height,
		                  .max_record = SIZE_MAX,
		                  .time_limit = ledger_now(l) + l->cfg.max_future_s,
		                  .collect_bad = true };
	size_t saved = l->n_changed;
	bool saved_head = l->head_changed;
	int rc;

	rc = store_exec(l, "SAVEPOINT prune");
	if (rc)
		return rc;
	rc = mempool_walk(l, &w);
	store_exec(l, "ROLLBACK TO prune");
	store_exec(l, "RELEASE prune");
	ledger_changes_forget(l, saved, saved_head);
	if (!rc)
		rc = mempool_drop(l, w.bad, w.n_bad);
	free(w.bad);
	return rc;
}

int chain_block_add(struct ledger *l, const uint8_t *buf, size_t len, bool *out_head)
{
	struct blk_wire w = { 0 };
	struct blk_hdr h;
	struct blkinfo parent, known;
	struct ledger_head head;
	uint8_t(*ids)[32] = NULL, bad[32];
	struct rec *recs = NULL;
	int rc;

	*out_head = false;
	rc = blk_wire_parse(buf, len, (size_t)l->params.max_block_bytes + 65536,
	                    l->params.max_block_records, &w);
	if (rc)
		return rc;
	rc = blk_hdr_decode(w.hdr.p, w.hdr.len, &h, true);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (memcmp(h.drive, l->drive, 32) || h.height < 1 || h.n_records != (int64_t)w.n_recs ||
	    (h.weight != 1 && h.weight != 2))
		goto out;
	if (h.time > ledger_now(l) + l->cfg.max_future_s) {
		rc = -ERANGE;
		goto out;
	}
	/* a second block by one producer at one height is evidence, whatever else is
	 * wrong with it (its signature is checked) */
	rc = finality_evidence_check(l, &h, w.hdr.p, w.hdr.len);
	if (rc)
		goto out;
	rc = store_begin(l);
	if (rc)
		goto out;
	if (is_bad(l, h.id)) {
		rc = -EINVAL;
		goto rollback;
	}
	if (block_info(l, h.id, &known) == 0) {
		rc = 0; /* known already */
		goto rollback;
	}
	rc = block_info(l, h.prev, &parent);
	if (rc)
		goto rollback; /* -ENOENT: an orphan, the caller asks for its parent */
	/* block times rise strictly */
	if (is_bad(l, h.prev) || h.height != parent.height + 1 || h.time <= parent.time) {
		rc = -EINVAL;
		goto rollback;
	}
	/* on top of the best chain the producer set at the parent is at hand: a key
	 * that was no producer after the parent (removed, or never one) signs nothing
	 * there, on any branch from it */
	{
		uint8_t at[32];

		if (chain_id_at(l, parent.height, at) == 0 && !memcmp(at, h.prev, 32) &&
		    !finality_producer_at(l, h.producer, parent.height)) {
			rc = -EPERM;
			goto rollback;
		}
	}
	/* Whether the producer was one at the parent is known only once the state is
	 * there (a reorg), but a key that is no producer now and was none in genesis is
	 * refused at once: otherwise anyone could fill the append-only tables with side
	 * blocks. */
	if (!chain_is_producer(l, h.producer) && !genesis_producer(l, h.producer)) {
		rc = -EPERM;
		goto rollback;
	}
	/* stateless checks of every record: size, encoding, signature, Merkle root */
	ids = malloc((w.n_recs ? w.n_recs : 1) * 32);
	if (w.n_recs > l->blk_recs_cap) {
		free(l->blk_recs);
		l->blk_recs_cap = 0;
		if ((l->blk_recs = malloc(w.n_recs * sizeof *l->blk_recs)))
			l->blk_recs_cap = w.n_recs;
	}
	recs = l->blk_recs;
	if (!ids || (!recs && w.n_recs)) {
		rc = -ENOMEM;
		goto rollback;
	}
	for (size_t i = 0; i < w.n_recs; i++) {
		rc = rec_decode(l->pkc, w.recs[i].p, w.recs[i].len, l->params.max_record_bytes,
		                &recs[i]);
		if (rc)
			goto rollback;
		memcpy(ids[i], recs[i].id, 32);
	}
	{
		uint8_t root[32];

		rc = merkle_root_of_ids((const uint8_t(*)[32])ids, w.n_recs, root);
		if (rc)
			goto rollback;
		if (memcmp(root, h.root, 32)) {
			rc = -EBADMSG;
			goto rollback;
		}
	}
	/* a replay reads the raw tables: nothing to write back */
	if (!l->replaying)
		rc = put_raw_block(l, &h, w.hdr.p, w.hdr.len);
	for (size_t i = 0; !rc && !l->replaying && i < w.n_recs; i++)
		rc = put_raw_record(l, h.id, (int64_t)i, ids[i], w.recs[i].p, w.recs[i].len);
	if (!rc)
		rc = put_block_meta(l, h.id, h.height, h.prev, parent.cum + h.weight, h.time);
	if (!rc)
		rc = chain_head(l, &head);
	if (rc)
		goto rollback;
	if (better(parent.cum + h.weight, h.id, (int64_t)head.weight, head.id)) {
		struct blk tip = { .h = h, .recs = recs, .n = w.n_recs };

		rc = switch_to(l, h.id, &tip, bad);
		if (rc) {
			store_rollback(l);
			l->chain_epoch++;
			if (rc != -ENOMEM && rc != -EIO && rc != -EBUSY && rc != -ENOSPC &&
			    rc != -EAGAIN && !store_begin(l)) {
				mark_bad(l, bad, -rc);
				finality_note_refused(l);
				store_commit(l);
			}
			l->fin_refused.set = false;
			goto out;
		}
		rc = mempool_prune(l, h.height + 1);
		if (rc)
			goto rollback;
		*out_head = true;
	}
	/* this node's own block: its height is written down durably with it, before the
	 * block can leave (chain_produce runs this commit with synchronous=FULL) */
	if (l->producing && l->cfg.key && !memcmp(h.producer, l->cfg.key->pub, 32)) {
		rc = finality_signed_put(l, h.height);
		if (rc)
			goto rollback;
		ledger_step(l, "produce:before-commit");
	} else {
		ledger_step(l, "block:before-commit");
	}
	rc = store_commit(l);
	if (rc)
		goto rollback;
	goto out;
rollback:
	store_rollback(l);
out:
	free(ids);
	free(w.recs);
	return rc;
}

int chain_block_wire(struct ledger *l, const uint8_t id[32], uint8_t **out, size_t *out_len)
{
	struct ben_buf b;
	struct blk blk;
	int rc = blk_load(l, id, &blk, false);

	if (rc)
		return rc;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "h");
	ben_put_raw(&b, blk.hdr_raw, blk.hdr_len);
	ben_put_key(&b, "r");
	ben_list_begin(&b);
	for (size_t i = 0; i < blk.n; i++)
		ben_put_raw(&b, blk.raws[i], blk.lens[i]);
	ben_end(&b);
	ben_end(&b);
	blk_free(&blk);
	if (b.err) {
		rc = b.err;
		ben_buf_release(&b);
		return rc;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

int chain_mempool_add(struct ledger *l, const struct rec *r, const uint8_t *raw, size_t len)
{
	static const char q[] =
	    "INSERT OR IGNORE INTO mempool(id, raw, path, seq, author)"
	    " VALUES(?,?,?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM mempool), ?)";
	sqlite3_stmt *st = store_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, r->id, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, raw, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, r->author, 32, SQLITE_STATIC);
	if (r->type == LEDGER_REC_CLAIM || r->type == LEDGER_REC_MKDIR)
		sqlite3_bind_text(st, 3, r->path, -1, SQLITE_STATIC);
	return store_step_done(l, st, "mempool add");
}

int chain_pending_begin(struct ledger *l, struct chain_pending *p)
{
	struct ledger_head head;
	struct mempool_walk w = { .max_record = SIZE_MAX,
		                  .time_limit = ledger_now(l) + l->cfg.max_future_s };
	int rc;

	p->saved_changes = l->n_changed;
	p->saved_head = l->head_changed;
	p->time_limit = w.time_limit;
	rc = chain_head(l, &head);
	if (rc)
		return rc;
	p->height = w.height = (int64_t)head.height + 1;
	rc = store_exec(l, "SAVEPOINT pending");
	if (rc)
		return rc;
	rc = mempool_walk(l, &w);
	if (rc) {
		chain_pending_undo(l, p);
		chain_pending_end(l);
	}
	return rc;
}

int chain_pending_check(struct ledger *l, const struct chain_pending *p, const struct rec *r)
{
	return record_check(l, r, p->time_limit);
}

int chain_pending_apply(struct ledger *l, const struct chain_pending *p, const struct rec *r)
{
	return record_apply(l, r, p->height);
}

void chain_pending_undo(struct ledger *l, const struct chain_pending *p)
{
	store_exec(l, "ROLLBACK TO pending");
	ledger_changes_forget(l, p->saved_changes, p->saved_head);
}

int chain_pending_end(struct ledger *l)
{
	return store_exec(l, "RELEASE pending");
}

/* Check r on top of the state plus every pending record (in a savepoint, undone). */
int chain_record_check_pending(struct ledger *l, const struct rec *r)
{
	struct chain_pending p;
	int rc = chain_pending_begin(l, &p);

	if (rc)
		return rc;
	rc = chain_pending_check(l, &p, r);
	chain_pending_undo(l, &p);
	chain_pending_end(l);
	return rc;
}

/* What produce gathers for its block while walking the mempool. */
struct block_fill {
	const struct ledger *l;
	struct ben_buf recs;
	uint8_t (*ids)[32];
	size_t n, bytes;
};

static int block_take(const uint8_t id[32], const uint8_t *raw, size_t len, void *ctx)
{
	struct block_fill *f = ctx;
	void *nv;

	if (f->n >= f->l->params.max_block_records ||
	    f->bytes + len + 4096 > f->l->params.max_block_bytes)
		return 1; /* the block is full */
	nv = realloc(f->ids, (f->n + 1) * 32);
	if (!nv) {
		f->recs.err = -ENOMEM;
		return 1;
	}
	f->ids = nv;
	memcpy(f->ids[f->n++], id, 32);
	ben_put_raw(&f->recs, raw, len);
	f->bytes += len;
	return 0;
}

/* The header over fill's records, signed, and the block's wire form after it. */
static int block_assemble(struct blk_hdr *h, const struct ledger_key *key,
                          const struct block_fill *fill, struct ben_buf *wire, uint8_t **hdr,
                          size_t *hdr_len)
{
	int rc;

	h->n_records = (int64_t)fill->n;
	rc = merkle_root_of_ids((const uint8_t(*)[32])fill->ids, fill->n, h->root);
	if (!rc)
		rc = blk_hdr_sign(h, NULL, 0, key, hdr, hdr_len);
	if (rc)
		return rc;
	ben_put_raw(wire, *hdr, *hdr_len);
	ben_put_key(wire, "r");
	ben_put_raw(wire, fill->recs.p, fill->recs.len);
	ben_end(wire);
	return wire->err;
}

/* The block's records from l->hint instead of a walk of the mempool, when the walk would
 * find exactly them, all valid: the hint is of this head and judged at this time (or at
 * an earlier one, when only the timestamps' bound depends on it: a later bound refuses
 * none of them; a chain ahead of the clock dates its blocks after the clock, and a walk
 * there checked and applied every record of a batch a second time), the mempool holds
 * just its records (in its order: they went in last, one after another), and they all
 * fit in one block. false: walk. */
static bool hint_fill(struct ledger *l, const struct ledger_head *head, int64_t time_limit,
                      struct block_fill *fill)
{
	const struct produce_hint *t = &l->hint;
	int64_t total = -1, mine;

	if (!t->set || !t->n || memcmp(t->head, head->id, 32) ||
	    (t->time_limit != time_limit && !(t->later_ok && t->time_limit < time_limit)) ||
	    t->n > l->params.max_block_records ||
	    chain_mempool_counts(l, l->drive, &total, &mine) || total != (int64_t)t->n)
		return false;
	{
		size_t bytes = 0;

		for (size_t i = 0; i < t->n; i++) {
			bytes += t->lens[i];
			if (t->lens[i] > l->params.max_record_bytes ||
			    bytes + 4096 > l->params.max_block_bytes)
				return false;
		}
	}
	for (size_t i = 0; i < t->n; i++)
		if (block_take(t->ids[i], t->raws[i], t->lens[i], fill))
			return false; /* cannot be: the sizes were checked above */
	return true;
}

int chain_produce(struct ledger *l)
{
	const struct ledger_key *key = l->cfg.key;
	struct ledger_head head;
	uint8_t(*prods)[32] = NULL;
	size_t np = 0, n = 0;
	struct block_fill fill = { 0 };
	struct mempool_walk w = { .max_record = l->params.max_record_bytes,
		                  .take = block_take,
		                  .ctx = &fill,
		                  .collect_bad = true };
	struct ben_buf wire;
	struct blk_hdr h;
	uint8_t *hdr = NULL;
	size_t hdr_len, saved = l->n_changed;
	bool in_turn, saved_head = l->head_changed, is_head;
	int64_t now = ledger_now(l);
	int rc;

	if (!key)
		return -EPERM;
	rc = chain_head(l, &head);
	if (!rc)
		rc = producers(l, &prods, &np);
	if (rc)
		return rc;
	rc = -EPERM;
	for (size_t i = 0; i < np; i++)
		if (!memcmp(prods[i], key->pub, 32))
			rc = 0;
	in_turn = np && !memcmp(prods[(head.height + 1) % np], key->pub, 32);
	free(prods);
	if (rc)
		return rc;
	memset(&h, 0, sizeof h);
	h.version = 1;
	memcpy(h.drive, l->drive, 32);
	h.height = (int64_t)head.height + 1;
	memcpy(h.prev, head.id, 32);
	h.time = now > head.time ? now : head.time + 1; /* block times rise strictly */
	h.weight = in_turn ? 2 : 1;
	if (!in_turn && h.time < head.time + l->params.grace_s)
		return 0; /* not our turn yet */
	if (h.time > now + l->cfg.max_future_s / 2)
		return 0; /* a burst ran the chain's clock ahead: the next tick takes it */
	{
		int64_t last;

		rc = finality_last_signed(l, &last);
		if (rc)
			return rc;
		if (h.height <= last) {
			/* we signed a block at this height that is no longer on the best
			 * chain: a second one would be equivocation */
			L_INFO(l, "produce: height %lld already signed once; waiting",
			       (long long)h.height);
			return 0;
		}
	}

	ben_buf_init(&wire);
	ben_dict_begin(&wire);
	ben_put_key(&wire, "h");
	/* the header is added after the records are chosen: build records first */
	w.height = h.height;
	w.time_limit = h.time + l->cfg.max_future_s;
	fill.l = l;
	ben_buf_init(&fill.recs);
	ben_list_begin(&fill.recs);
	if (hint_fill(l, &head, w.time_limit, &fill)) {
		/* the walk would check and apply the very records just checked and
		 * applied in this order on this state: take them as they are (the
		 * block is checked whole again when it is added) */
		ben_end(&fill.recs);
		rc = fill.recs.err;
		n = fill.n;
		if (!rc && n)
			rc = block_assemble(&h, key, &fill, &wire, &hdr, &hdr_len);
		ben_buf_release(&fill.recs);
		if (rc || !n)
			goto out;
		goto built;
	}
	rc = store_exec(l, "SAVEPOINT produce");
	if (rc) {
		ben_buf_release(&fill.recs);
		goto out;
	}
	ledger_step(l, "produce:walk");
	rc = mempool_walk(l, &w);
	ben_end(&fill.recs);
	if (!rc)
		rc = fill.recs.err;
	n = fill.n;
	if (!rc && n)
		rc = block_assemble(&h, key, &fill, &wire, &hdr, &hdr_len);
	ben_buf_release(&fill.recs);
	store_exec(l, "ROLLBACK TO produce");
	store_exec(l, "RELEASE produce");
	ledger_changes_forget(l, saved, saved_head);
	mempool_drop(l, w.bad, w.n_bad);
	if (rc || !n)
		goto out;
built:
	/* the block is durable, with our last signed height, before it can leave */
	if (!l->cfg.fast_unsafe && (rc = store_exec(l, "PRAGMA synchronous=FULL")))
		goto out;
	l->producing = true;
	rc = chain_block_add(l, wire.p, wire.len, &is_head);
	l->producing = false;
	if (!l->cfg.fast_unsafe)
		store_exec(l, "PRAGMA synchronous=NORMAL");
	if (rc == 0)
		rc = is_head ? 1 : 0;
out:
	ben_buf_release(&wire);
	free(hdr);
	free(fill.ids);
	free(w.bad);
	return rc;
}

int chain_replay(struct ledger *l)
{
	/* in the order they were stored (a parent always before its children): the
	 * replay takes the decisions the node took, fork choice and finality alike */
	static const char q[] = "SELECT id FROM raw_blocks WHERE height > 0 ORDER BY rowid";
	sqlite3_stmt *st;
	uint8_t(*ids)[32] = NULL;
	size_t n = 0;
	struct ledger_head head;
	int rc;

	rc = store_begin(l);
	if (rc)
		return rc;
	rc = store_clear_derived(l);
	if (!rc)
		rc = chain_init_genesis(l, l->genesis, l->genesis_len);
	if (!rc)
		rc = store_commit(l);
	if (rc) {
		store_rollback(l);
		return rc;
	}
	l->chain_epoch++;
	st = store_stmt(l, q);
	if (!st)
		return -EIO;
	if ((rc = ids_of(l, st, "replay", &ids, &n)) < 0)
		return rc;
	l->replaying = true;
	for (size_t i = 0; i < n; i++) {
		uint8_t *wire;
		size_t len;
		bool is_head;

		rc = chain_block_wire(l, ids[i], &wire, &len);
		if (rc)
			break;
		rc = chain_block_add(l, wire, len, &is_head);
		free(wire);
		if (rc < 0 && rc != -ENOENT && rc != -EINVAL && rc != -EBADMSG && rc != -EPERM &&
		    rc != -ESTALE && rc != -EEXIST && rc != -EALREADY && rc != -ENOTEMPTY &&
		    rc != -ENOTDIR && rc != -EISDIR && rc != -ERANGE && rc != -ENOKEY &&
		    rc != -EAGAIN)
			break; /* a store error; invalid blocks are skipped as on import */
		rc = 0;
	}
	l->replaying = false;
	free(ids);
	if (rc)
		return rc;
	rc = chain_head(l, &head);
	return rc ? rc : (int)head.height;
}

/* ---- records from peers (sync) ---- */

int chain_mempool_counts(struct ledger *l, const uint8_t author[32], int64_t *out_total,
                         int64_t *out_author)
{
	static const char q_all[] = "SELECT COUNT(*) FROM mempool";
	static const char q_by[] = "SELECT COUNT(*) FROM mempool WHERE author = ?";
	sqlite3_stmt *st = store_stmt(l, q_all);

	if (!st)
		return -EIO;
	*out_total = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (!(st = store_stmt(l, q_by)))
		return -EIO;
	sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
	*out_author = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return 0;
}

int chain_mempool_add_batch(struct ledger *l, const struct rec *recs, const struct ben *raws,
                            size_t n)
{
	struct ledger_head head;
	struct mempool_walk w = { .max_record = SIZE_MAX,
		                  .time_limit = ledger_now(l) + l->cfg.max_future_s };
	size_t saved = l->n_changed;
	bool saved_head = l->head_changed, *ok = calloc(n ? n : 1, sizeof *ok);
	int rc, added = 0;

	if (!ok)
		return -ENOMEM;
	rc = chain_head(l, &head);
	if (!rc)
		rc = store_exec(l, "SAVEPOINT batch");
	if (rc) {
		free(ok);
		return rc;
	}
	/* one walk over the mempool, then each new record on top of it and of the ones
	 * before it in the message: O(mempool + n), not O(mempool * n) */
	w.height = (int64_t)head.height + 1;
	rc = mempool_walk(l, &w);
	for (size_t i = 0; !rc && i < n; i++)
		ok[i] = record_check(l, &recs[i], w.time_limit) == 0 &&
		        record_apply(l, &recs[i], w.height) == 0;
	store_exec(l, "ROLLBACK TO batch");
	store_exec(l, "RELEASE batch");
	ledger_changes_forget(l, saved, saved_head);
	for (size_t i = 0; !rc && i < n; i++)
		if (ok[i] && (rc = chain_mempool_add(l, &recs[i], raws[i].p, raws[i].len)) == 0)
			added++;
	free(ok);
	return rc ? rc : added;
}
