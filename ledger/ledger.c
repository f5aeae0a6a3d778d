/* The ledger handle: opening a drive, the public queries and commands, verification
 * (the publish queue is queue.c's). Every public entry point takes the lock and
 * releases it with ledger_unlock(), which then fires the change callbacks without it. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *ledger_sqlite_version(void)
{
	return sqlite3_libversion();
}

void ledger_logf(struct ledger *l, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!l->cfg.log || level > l->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!l->locked) {
		l->cfg.log(level, "ledger", msg, l->cfg.log_ctx);
		return;
	}
	if (l->n_logq == sizeof l->logq / sizeof l->logq[0] ||
	    !(l->logq[l->n_logq].msg = strdup(msg))) {
		l->logq_lost++;
		return;
	}
	l->logq[l->n_logq++].level = level;
}

int64_t ledger_now(struct ledger *l)
{
	return l->cfg.now ? l->cfg.now(l->cfg.now_ctx) : (int64_t)time(NULL);
}

void ledger_lock_keep(struct ledger *l)
{
	pthread_mutex_lock(&l->lock);
	l->locked = true;
}

void ledger_lock_read(struct ledger *l)
{
	ledger_lock_keep(l);
}

void ledger_lock(struct ledger *l)
{
	ledger_lock_keep(l);
	if (l->tx_held)
		store_commit_held(l); /* logged; the blocks come again from a peer */
}

void ledger_note_change(struct ledger *l, const char *path)
{
	char *p;

	if (!path) {
		l->head_changed = true;
		return;
	}
	if (!l->cfg.on_change)
		return;
	if (l->n_changed == l->cap_changed) {
		size_t nc = l->cap_changed ? l->cap_changed * 2 : 64;
		char **n = realloc(l->changed, nc * sizeof *n);

		if (!n)
			return; /* a missed invalidation only costs a stale cache entry */
		l->changed = n;
		l->cap_changed = nc;
	}
	p = strdup(path);
	if (p)
		l->changed[l->n_changed++] = p;
}

void ledger_changes_forget(struct ledger *l, size_t keep, bool head)
{
	while (l->n_changed > keep)
		free(l->changed[--l->n_changed]);
	l->head_changed = head;
}

void ledger_unlock(struct ledger *l)
{
	char **changed = l->changed;
	struct ledger_dropped **dropped = l->dropped;
	size_t n_dropped = l->n_dropped;
	size_t n = l->n_changed, n_log = l->n_logq, lost = l->logq_lost;
	bool head = l->head_changed;
	int levels[sizeof l->logq / sizeof l->logq[0]];
	char *msgs[sizeof l->logq / sizeof l->logq[0]];

	for (size_t i = 0; i < n_log; i++) {
		levels[i] = l->logq[i].level;
		msgs[i] = l->logq[i].msg;
	}
	l->n_logq = l->logq_lost = 0;
	l->changed = NULL;
	l->n_changed = l->cap_changed = 0;
	l->head_changed = false;
	l->dropped = NULL;
	l->n_dropped = 0;
	l->locked = false;
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < n_log; i++) {
		l->cfg.log(levels[i], "ledger", msgs[i], l->cfg.log_ctx);
		free(msgs[i]);
	}
	if (lost && l->cfg.log && LOG_WARNING <= l->cfg.log_level) {
		char msg[64];

		snprintf(msg, sizeof msg, "%zu log lines lost while busy", lost);
		l->cfg.log(LOG_WARNING, "ledger", msg, l->cfg.log_ctx);
	}
	for (size_t i = 0; i < n; i++) {
		if (l->cfg.on_change)
			l->cfg.on_change(changed[i], l->cfg.change_ctx);
		free(changed[i]);
	}
	free(changed);
	if (head && l->cfg.on_change)
		l->cfg.on_change(NULL, l->cfg.change_ctx);
	for (size_t i = 0; i < n_dropped; i++) {
		l->cfg.on_dropped(dropped[i], l->cfg.change_ctx);
		seal_wipe(dropped[i]->file_key, sizeof dropped[i]->file_key);
		free(dropped[i]);
	}
	free(dropped);
}

/* ---- opening ---- */

static int handle_new(const struct ledger_config *cfg, struct ledger **out)
{
	struct ledger *l = calloc(1, sizeof *l);

	if (!l)
		return -ENOMEM;
	l->cfg = *cfg;
	if (!l->cfg.log_level)
		l->cfg.log_level = LOG_NOTICE;
	if (!l->cfg.max_future_s)
		l->cfg.max_future_s = 600;
	if (!cfg->path) {
		free(l);
		return -EINVAL;
	}
	l->path = strdup(cfg->path);
	if (!l->path) {
		free(l);
		return -ENOMEM;
	}
	l->cfg.path = l->path;
	if (ledger_pk_cache_new(&l->pkc)) {
		free(l->path);
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->health_mu, NULL);
	pthread_mutex_init(&l->queue_mu, NULL);
	pthread_mutex_init(&l->look_mu, NULL);
	*out = l;
	return 0;
}

/* Check a genesis block and take the drive's parameters from it. */
static int genesis_load(struct ledger *l, const uint8_t *raw, size_t len)
{
	static const uint8_t zero[32];
	struct blk_hdr h;
	uint8_t empty[32];
	int rc;

	rc = blk_hdr_decode(raw, len, &h, true);
	if (rc)
		return rc;
	ledger_sha256("", 0, empty);
	if (h.height != 0 || h.weight != 0 || h.n_records != 0 || memcmp(h.prev, zero, 32) ||
	    memcmp(h.drive, zero, 32) || memcmp(h.root, empty, 32) || !h.params.len)
		return -EBADMSG;
	rc = params_decode(h.params, &l->params);
	if (rc)
		return rc;
	l->params.time = h.time;
	if (memcmp(h.producer, l->params.admin, 32)) {
		ledger_params_release(&l->params);
		return -EBADMSG; /* the admin signs the genesis */
	}
	l->genesis = malloc(len);
	if (!l->genesis) {
		ledger_params_release(&l->params);
		return -ENOMEM;
	}
	memcpy(l->genesis, raw, len);
	l->genesis_len = len;
	memcpy(l->drive, h.id, 32);
	return 0;
}

static int init_new(struct ledger *l, const uint8_t *raw, size_t len)
{
	struct stat st;
	int rc;

	if (stat(l->path, &st) == 0)
		return -EEXIST;
	rc = genesis_load(l, raw, len);
	if (!rc)
		rc = store_open(l, true);
	if (!rc)
		rc = store_begin(l);
	if (rc)
		return rc;
	rc = store_meta_put(l, "genesis", raw, len);
	if (!rc)
		rc = store_meta_put(l, "drive", l->drive, 32);
	if (!rc)
		rc = chain_init_genesis(l, raw, len);
	if (!rc)
		rc = store_commit(l);
	if (rc)
		store_rollback(l);
	return rc;
}

int ledger_join(const struct ledger_config *cfg, const uint8_t *genesis, size_t len,
                struct ledger **out_ledger)
{
	struct ledger *l;
	int rc = handle_new(cfg, &l);

	if (rc)
		return rc;
	rc = init_new(l, genesis, len);
	if (rc) {
		bool created = l->db != NULL;

		ledger_free(l);
		if (created && rc != -EEXIST)
			unlink(cfg->path);
		return rc;
	}
	*out_ledger = l;
	return 0;
}

int ledger_create(const struct ledger_config *cfg, const struct ledger_params *params,
                  const struct ledger_key *admin_key, struct ledger **out_ledger)
{
	struct blk_hdr h;
	uint8_t *pr, *raw;
	size_t pl, rl;
	int rc;

	if (memcmp(params->admin, admin_key->pub, 32))
		return -EINVAL;
	rc = params_encode(params, &pr, &pl);
	if (rc)
		return rc;
	memset(&h, 0, sizeof h);
	h.version = 1;
	h.time = params->time;
	ledger_sha256("", 0, h.root);
	rc = blk_hdr_sign(&h, pr, pl, admin_key, &raw, &rl);
	free(pr);
	if (rc)
		return rc;
	rc = ledger_join(cfg, raw, rl, out_ledger);
	free(raw);
	return rc;
}

int ledger_open(const struct ledger_config *cfg, struct ledger **out_ledger)
{
	struct ledger *l;
	uint8_t *raw = NULL, *drive = NULL;
	size_t len, dl;
	int rc = handle_new(cfg, &l);

	if (rc)
		return rc;
	rc = store_open(l, false);
	if (!rc)
		rc = store_meta_get(l, "genesis", &raw, &len);
	if (!rc)
		rc = genesis_load(l, raw, len);
	if (!rc)
		rc = store_meta_get(l, "drive", &drive, &dl);
	if (!rc && (dl != 32 || memcmp(drive, l->drive, 32)))
		rc = -EBADMSG;
	free(raw);
	free(drive);
	if (rc) {
		ledger_free(l);
		return rc;
	}
	*out_ledger = l;
	return 0;
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	reader_close(l->health_rd); /* they borrow l's path */
	reader_close(l->look_rd);
	queue_close(l);
	siblings_free(l);
	store_close(l);
	ledger_pk_cache_free(l->pkc);
	free(l->blk_recs);
	ledger_params_release(&l->params);
	for (size_t i = 0; i < l->n_dropped; i++) {
		seal_wipe(l->dropped[i]->file_key, sizeof l->dropped[i]->file_key);
		free(l->dropped[i]);
	}
	free(l->dropped);
	for (size_t i = 0; i < l->n_changed; i++)
		free(l->changed[i]);
	for (size_t i = 0; i < l->n_logq; i++)
		free(l->logq[i].msg);
	free(l->changed);
	free(l->genesis);
	free(l->path);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->health_mu);
	pthread_mutex_destroy(&l->queue_mu);
	pthread_mutex_destroy(&l->look_mu);
	free(l);
}

void ledger_drive_id(const struct ledger *l, uint8_t out_id[LEDGER_ID_LEN])
{
	memcpy(out_id, l->drive, 32);
}

static char *xstrdup(const char *s, int *err)
{
	char *d = strdup(s);

	if (!d)
		*err = -ENOMEM;
	return d;
}

int ledger_params_get(struct ledger *l, struct ledger_params *out)
{
	struct ledger_params p = l->params;
	int err = 0;

	/* the params never change after open: no lock needed to copy them */
	p.name = xstrdup(l->params.name, &err);
	p.producers = malloc(p.n_producers * 32);
	p.trackers = calloc(p.n_trackers + 1, sizeof *p.trackers);
	if (!p.producers || !p.trackers)
		err = -ENOMEM;
	else
		memcpy(p.producers, l->params.producers, p.n_producers * 32);
	for (size_t i = 0; !err && i < p.n_trackers; i++)
		p.trackers[i] = xstrdup(l->params.trackers[i], &err);
	if (err) {
		ledger_params_release(&p);
		return err;
	}
	*out = p;
	return 0;
}

int ledger_genesis_raw(struct ledger *l, uint8_t **out_buf, size_t *out_len)
{
	uint8_t *b = malloc(l->genesis_len);

	if (!b)
		return -ENOMEM;
	memcpy(b, l->genesis, l->genesis_len);
	*out_buf = b;
	*out_len = l->genesis_len;
	return 0;
}

int ledger_head_get(struct ledger *l, struct ledger_head *out_head)
{
	int rc;

	ledger_lock_read(l);
	rc = chain_head(l, out_head);
	ledger_unlock(l);
	return rc;
}

/* ---- state queries ---- */

void ledger_entry_from_row(sqlite3_stmt *st, struct ledger_entry *e)
{
	const unsigned char *name = sqlite3_column_text(st, 0);
	const void *p;

	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name ? (const char *)name : "");
#define FIXED(i, dst, n)                                                                           \
	do {                                                                                       \
		p = sqlite3_column_blob(st, i);                                                    \
		if (p && sqlite3_column_bytes(st, i) == (int)(n))                                  \
			memcpy(dst, p, n);                                                         \
	} while (0)
	FIXED(1, e->record_id, 32);
	e->type = (enum ledger_rec_type)sqlite3_column_int(st, 2);
	e->is_dir = sqlite3_column_int(st, 3);
	e->open = sqlite3_column_int(st, 4);
	FIXED(5, e->owner, 32);
	FIXED(6, e->content.root, 32);
	e->content.length = (uint64_t)sqlite3_column_int64(st, 7);
	FIXED(8, e->content.ih2, 32);
	e->content.has_ih1 = sqlite3_column_type(st, 9) == SQLITE_BLOB;
	FIXED(9, e->content.ih1, 20);
	e->content.piece_length = (uint32_t)sqlite3_column_int64(st, 10);
	e->content.mode = (uint32_t)sqlite3_column_int64(st, 11);
	e->content.mtime_ns = sqlite3_column_int64(st, 12);
	e->height = sqlite3_column_int64(st, 13);
#undef FIXED
}

static void entry_from_rec(const struct rec *r, struct ledger_entry *e)
{
	char parent[LEDGER_PATH_MAX + 1];

	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", ledger_path_split(r->path, parent));
	e->is_dir = r->type == LEDGER_REC_MKDIR;
	e->open = r->open;
	e->type = r->type;
	memcpy(e->owner, r->author, 32);
	e->content = r->content;
	memcpy(e->record_id, r->id, 32);
	e->height = -1;
}

int ledger_lookup_locked(struct ledger *l, const char *path, struct ledger_entry *out)
{
	static const char q[] = "SELECT " ENTRY_COLS " FROM paths WHERE path = ? AND spent IS NULL";
	static const char qp[] = "SELECT raw FROM mempool WHERE path = ? ORDER BY seq LIMIT 1";
	sqlite3_stmt *st;
	int rc;

	if (!strcmp(path, "/")) {
		memset(out, 0, sizeof *out);
		out->is_dir = true;
		out->open = true;
		out->type = LEDGER_REC_MKDIR;
		memcpy(out->owner, l->params.admin, 32);
		out->content.mode = 0755;
		out->content.mtime_ns = l->params.time * 1000000000LL;
		memcpy(out->record_id, l->drive, 32);
		return 0;
	}
	st = store_stmt(l, q);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ledger_entry_from_row(st, out);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(l, rc, "lookup");
	st = store_stmt(l, qp);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct rec r;

		rc = rec_parse(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
		               SIZE_MAX, &r);
		sqlite3_reset(st);
		if (rc)
			return -EIO;
		entry_from_rec(&r, out);
		return 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "lookup pending");
}

int ledger_lookup(struct ledger *l, const char *path, struct ledger_entry *out_entry)
{
	char norm[LEDGER_PATH_MAX + 1];
	int rc = ledger_path_normalize(path, norm);

	if (rc)
		return rc;
	/* the lock taken (the publish worker storing a batch of thousands of records, a
	 * block being added): the last committed state answers, on a twin of its own,
	 * so a cp -r's lookups do not wait for the batch (issue 18: 1,101 of 40,000
	 * waited 3.3 s in all, which stopped the cp) */
	if (pthread_mutex_trylock(&l->lock) != 0) {
		if ((rc = reader_lookup(l, norm, out_entry)) != -EAGAIN)
			return rc;
		ledger_lock_read(l);
	} else
		l->locked = true;
	/* a stat of every name of a listing (ls -l) is answered from a page of its
	 * siblings read at once (siblings.c) */
	if ((rc = siblings_lookup(l, norm, out_entry)) == -ENOENT)
		rc = ledger_lookup_locked(l, norm, out_entry);
	ledger_unlock(l);
	return rc;
}

int ledger_pending_children(struct ledger *l, const char *dir, char ***out_names, size_t *out_n)
{
	/* '/' is 0x2f and '0' 0x30: [dir/, dir0) is what lies beneath */
	static const char q[] = "SELECT DISTINCT path FROM mempool WHERE path > ? AND path < ?";
	char norm[LEDGER_PATH_MAX + 1], lo[LEDGER_PATH_MAX + 2], hi[LEDGER_PATH_MAX + 2];
	char **names = NULL;
	size_t n = 0, dl;
	sqlite3_stmt *st;
	int rc = ledger_path_normalize(dir, norm);

	if (rc)
		return rc;
	dl = strcmp(norm, "/") ? strlen(norm) : 0;
	snprintf(lo, sizeof lo, "%.*s/", (int)dl, norm);
	snprintf(hi, sizeof hi, "%.*s0", (int)dl, norm);
	ledger_lock_read(l);
	st = store_stmt(l, q);
	if (!st) {
		ledger_unlock(l);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0) + dl + 1;
		char **nn;

		if (strchr(name, '/'))
			continue; /* deeper: found when that directory is listed */
		if (!(nn = realloc(names, (n + 1) * sizeof *nn)) || !(nn[n] = strdup(name))) {
			names = nn ? nn : names;
			rc = -ENOMEM;
			break;
		}
		names = nn;
		n++;
	}
	sqlite3_reset(st);
	ledger_unlock(l);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return rc < 0 ? rc : -EIO;
	}
	*out_names = names;
	*out_n = n;
	return 0;
}

/* A page of directory dir's children by query q (bound: parent, after, max), each
 * row handed to take(row, i). 0, -ENOENT, -ENOTDIR, -EINVAL or -EIO. */
static int list_page(struct ledger *l, const char *q, const char *dir, const char *after,
                     size_t max, size_t *out_n, void (*take)(sqlite3_stmt *, size_t, void *),
                     void *out)
{
	char norm[LEDGER_PATH_MAX + 1];
	struct ledger_entry d;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc = ledger_path_normalize(dir, norm);

	if (rc)
		return rc;
	ledger_lock_read(l);
	rc = ledger_lookup_locked(l, norm, &d);
	if (!rc && !d.is_dir)
		rc = -ENOTDIR;
	if (rc)
		goto out;
	if (d.height < 0) {
		/* a directory of ours still waiting for its block (production lags behind a
		 * burst): nothing confirmed can be in it yet; its pending children are
		 * ledger_pending_children's */
		*out_n = 0;
		goto out;
	}
	st = store_stmt(l, q);
	if (!st) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, after ? after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		take(st, n++, out);
	sqlite3_reset(st);
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE || max == 0 ? 0 : store_err(l, rc, "list");
	if (!rc)
		*out_n = n;
out:
	ledger_unlock(l);
	return rc;
}

static void take_entry(sqlite3_stmt *st, size_t i, void *out)
{
	ledger_entry_from_row(st, &((struct ledger_entry *)out)[i]);
}

int ledger_list(struct ledger *l, const char *dir, const char *after,
                struct ledger_entry *out_entries, size_t max, size_t *out_n)
{
	static const char q[] = "SELECT " ENTRY_COLS " FROM paths WHERE parent = ? AND"
	                        " spent IS NULL AND name > ? ORDER BY name LIMIT ?";

	return list_page(l, q, dir, after, max, out_n, take_entry, out_entries);
}

static void take_name(sqlite3_stmt *st, size_t i, void *out)
{
	struct ledger_name *nm = &((struct ledger_name *)out)[i];
	const unsigned char *name = sqlite3_column_text(st, 0);
	size_t n = name ? (size_t)sqlite3_column_bytes(st, 0) : 0;

	/* a copy, not a format: one per name of a listing (find over 1M names) */
	if (n >= sizeof nm->name)
		n = sizeof nm->name - 1;
	if (n)
		memcpy(nm->name, name, n);
	nm->name[n] = '\0';
	nm->is_dir = sqlite3_column_int(st, 1) != 0;
}

int ledger_list_names(struct ledger *l, const char *dir, const char *after,
                      struct ledger_name *out_names, size_t max, size_t *out_n)
{
	/* answered from the paths_list index alone */
	static const char q[] = "SELECT name, is_dir FROM paths WHERE parent = ? AND"
	                        " spent IS NULL AND name > ? ORDER BY name LIMIT ?";

	return list_page(l, q, dir, after, max, out_n, take_name, out_names);
}

/* ---- local records ---- */

/* Normalize a path of a local record; a name with a control character is refused with
 * a line that says so (the caller sees -EINVAL). */
static int op_path(struct ledger *l, const char *in, char *out)
{
	int rc = ledger_path_normalize(in, out);
	int c = rc == -EINVAL ? ledger_path_first_ctrl(in) : -1;

	if (c >= 0)
		L_WARN(l,
		       "refused a name holding the control character U+%04X: names may not"
		       " hold C0/C1 control characters",
		       (unsigned)c);
	return rc;
}

int ledger_op_to_rec(struct ledger *l, const struct ledger_op *op, struct rec *r)
{
	int rc = ledger_rec_init(l, op->type, r);

	if (rc)
		return rc;
	if (op->nonce < 0)
		return -EINVAL;
	if (op->nonce)
		r->nonce = op->nonce;
	if (rec_has_path(op->type)) {
		if (!op->path)
			return -EINVAL;
		rc = op_path(l, op->path, r->path);
		if (rc)
			return rc;
		if (!strcmp(r->path, "/"))
			return -EPERM; /* the root belongs to the drive */
	}
	switch (op->type) {
	case LEDGER_REC_CLAIM:
	case LEDGER_REC_UPDATE:
		r->content = op->content;
		if (r->content.piece_length < 16384 ||
		    (r->content.piece_length & (r->content.piece_length - 1)) ||
		    r->content.mode > 07777 || r->content.length > INT64_MAX ||
		    r->content.file_offset > INT64_MAX)
			return -EINVAL;
		break;
	case LEDGER_REC_MKDIR:
		r->open = op->open;
		r->content.mode = op->content.mode & 07777;
		r->content.mtime_ns = op->content.mtime_ns;
		break;
	case LEDGER_REC_TRANSFER: memcpy(r->to, op->to, 32); break;
	case LEDGER_REC_MOVE:
		if (!op->dest)
			return -EINVAL;
		rc = op_path(l, op->dest, r->dest);
		if (rc)
			return rc;
		if (!strcmp(r->dest, "/") || !strcmp(r->dest, r->path))
			return -EINVAL;
		break;
	case LEDGER_REC_REVOKE: break;
	case LEDGER_REC_MEMBER:
		memcpy(r->member, op->member, 32);
		r->producer = op->producer;
		r->remove = op->remove;
		if (op->name && *op->name) {
			if (!ledger_display_name_ok(op->name) || op->remove)
				return -EINVAL;
			snprintf(r->name, sizeof r->name, "%s", op->name);
		}
		break;
	default: return -EINVAL; /* invites and keys have calls of their own */
	}
	return 0;
}

/* The record a change must cite: the live one, counting this node's pending records. */
static int find_prev(struct ledger *l, const char *path, uint8_t out[32])
{
	struct ledger_entry e;
	int rc = ledger_lookup_locked(l, path, &e);

	if (rc)
		return rc;
	memcpy(out, e.record_id, 32);
	return 0;
}

int ledger_submit(struct ledger *l, const struct ledger_op *op, uint8_t out_id[LEDGER_ID_LEN])
{
	static const char q_spender[] = "SELECT raw FROM mempool ORDER BY seq DESC";
	struct rec r;
	int rc;

	if (!l->cfg.key)
		return -EPERM;
	rc = ledger_op_to_rec(l, op, &r);
	if (rc)
		return rc;
	ledger_lock(l);
	if (r.type != LEDGER_REC_CLAIM && r.type != LEDGER_REC_MKDIR && rec_has_path(r.type)) {
		sqlite3_stmt *st;

		rc = find_prev(l, r.path, r.prev);
		if (rc)
			goto out;
		/* a pending change of this path is what the next one must cite */
		st = store_stmt(l, q_spender);
		if (!st) {
			rc = -EIO;
			goto out;
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			struct rec p;

			if (!rec_parse(sqlite3_column_blob(st, 0),
			               (size_t)sqlite3_column_bytes(st, 0), SIZE_MAX, &p) &&
			    p.type != LEDGER_REC_MEMBER && p.type != LEDGER_REC_REVOKE &&
			    !strcmp(p.type == LEDGER_REC_MOVE ? p.dest : p.path, r.path)) {
				memcpy(r.prev, p.id, 32);
				break;
			}
		}
		sqlite3_reset(st);
	}
	memcpy(r.author, l->cfg.key->pub, 32);
	rc = filekey_attach(l, op, &r);
	if (!rc)
		rc = ledger_submit_locked(l, &r, out_id);
	if (!rc)
		ledger_produce_locked(l);
out:
	ledger_unlock(l);
	return rc;
}

int ledger_submit_locked(struct ledger *l, struct rec *r, uint8_t out_id[LEDGER_ID_LEN])
{
	uint8_t *raw = NULL;
	size_t len;
	int rc;

	memcpy(r->author, l->cfg.key->pub, 32);
	rc = chain_record_check_pending(l, r);
	if (!rc)
		rc = rec_sign(r, l->cfg.key, &raw, &len);
	if (!rc && len > l->params.max_record_bytes)
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = chain_mempool_add(l, r, raw, len);
	free(raw);
	if (rc)
		return rc;
	if (out_id)
		memcpy(out_id, r->id, 32);
	ledger_note_change(l, r->path[0] ? r->path : NULL);
	if (r->type == LEDGER_REC_MOVE)
		ledger_note_change(l, r->dest);
	return 0;
}

int ledger_submit_one(struct ledger *l, struct rec *r)
{
	int rc;

	ledger_lock(l);
	rc = ledger_submit_locked(l, r, NULL);
	if (!rc)
		ledger_produce_locked(l);
	ledger_unlock(l);
	return rc;
}

/* With gather_blocks: a block made now would not be dated after the head's second
 * (block times rise strictly), and less than a block's worth waits: leave the records
 * for the next second's block. */
static bool gather_wait(struct ledger *l)
{
	struct ledger_head head;
	int64_t total, mine;

	if (!l->cfg.gather_blocks || chain_head(l, &head))
		return false;
	if (ledger_now(l) > head.time)
		return false;
	return chain_mempool_counts(l, l->cfg.key->pub, &total, &mine) == 0 &&
	       total < (int64_t)l->params.max_block_records;
}

void ledger_produce_locked(struct ledger *l)
{
	if (l->cfg.auto_produce && l->cfg.key && chain_is_producer(l, l->cfg.key->pub) &&
	    !gather_wait(l)) {
		int prc = chain_produce(l);

		if (prc < 0)
			L_WARN(l, "produce after submit: %s", strerror(-prc));
	}
}

int ledger_rec_init(struct ledger *l, enum ledger_rec_type type, struct rec *r)
{
	int rc;

	memset(r, 0, sizeof *r);
	r->type = type;
	memcpy(r->drive, l->drive, 32);
	r->time = ledger_now(l);
	rc = ledger_random(&r->nonce, sizeof r->nonce);
	r->nonce &= INT64_MAX;
	return rc;
}

int ledger_produce(struct ledger *l)
{
	int rc;

	ledger_lock(l);
	rc = l->cfg.key && gather_wait(l) ? 0 : chain_produce(l);
	ledger_unlock(l);
	return rc;
}

int ledger_mempool_count(struct ledger *l)
{
	static const char q[] = "SELECT COUNT(*) FROM mempool";
	sqlite3_stmt *st;
	int rc;

	ledger_lock_read(l);
	st = store_stmt(l, q);
	rc = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -EIO;
	if (st)
		sqlite3_reset(st);
	ledger_unlock(l);
	return rc;
}

int ledger_history(struct ledger *l, const char *path, ledger_log_entry_fn fn, void *ctx)
{
	static const char q_path[] = "SELECT record, type, author, height, time, path, dest"
	                             " FROM history WHERE key = ? ORDER BY height, rowid";
	static const char q_all[] = "SELECT record, type, author, height, time, path, dest"
	                            " FROM history WHERE key = path ORDER BY height, rowid";
	char norm[LEDGER_PATH_MAX + 1];
	struct ledger_log_entry *es = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = 0;

	if (path && (rc = ledger_path_normalize(path, norm)))
		return rc;
	ledger_lock(l);
	st = store_stmt(l, path ? q_path : q_all);
	if (!st) {
		ledger_unlock(l);
		return -EIO;
	}
	if (path)
		sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_log_entry *e;
		const void *p;

		if (n == cap) {
			void *ne = realloc(es, (cap = cap ? cap * 2 : 16) * sizeof *es);

			if (!ne) {
				rc = SQLITE_NOMEM;
				break;
			}
			es = ne;
		}
		e = &es[n++];
		memset(e, 0, sizeof *e);
		if ((p = sqlite3_column_blob(st, 0)) && sqlite3_column_bytes(st, 0) == 32)
			memcpy(e->record_id, p, 32);
		e->type = (enum ledger_rec_type)sqlite3_column_int(st, 1);
		if ((p = sqlite3_column_blob(st, 2)) && sqlite3_column_bytes(st, 2) == 32)
			memcpy(e->author, p, 32);
		e->height = sqlite3_column_int64(st, 3);
		e->time = sqlite3_column_int64(st, 4);
		snprintf(e->path, sizeof e->path, "%s", (const char *)sqlite3_column_text(st, 5));
		snprintf(e->dest, sizeof e->dest, "%s", (const char *)sqlite3_column_text(st, 6));
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : store_err(l, rc, "history");
	ledger_unlock(l);
	/* callbacks run without the lock: they may print slowly or call back in */
	for (size_t i = 0; !rc && i < n; i++)
		rc = fn(&es[i], ctx);
	free(es);
	return rc;
}

/* ---- verification ---- */

/* Raw bytes of a row's blob column, copied. */
static int get_blob(struct ledger *l, const char *sql, const uint8_t key[32], uint8_t **out,
                    size_t *out_len)
{
	sqlite3_stmt *st = store_stmt(l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		*out = malloc(n ? n : 1);
		if (*out && n)
			memcpy(*out, sqlite3_column_blob(st, 0), n);
		*out_len = n;
		sqlite3_reset(st);
		return *out ? 0 : -ENOMEM;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "blob");
}

static const char q_rec_raw[] = "SELECT raw FROM raw_records WHERE id = ?";

int ledger_record_content(struct ledger *l, const uint8_t id[LEDGER_ID_LEN],
                          struct ledger_content *out)
{
	static const char qm[] = "SELECT raw FROM mempool WHERE id = ?";
	const char *const qs[] = { q_rec_raw, qm };
	struct rec r;
	int rc = -ENOENT;

	ledger_lock(l);
	for (size_t i = 0; i < 2 && rc == -ENOENT; i++) {
		sqlite3_stmt *st = store_stmt(l, qs[i]);
		int step;

		if (!st) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			rc = rec_parse(sqlite3_column_blob(st, 0),
			               (size_t)sqlite3_column_bytes(st, 0), SIZE_MAX, &r);
		else if (step != SQLITE_DONE)
			rc = store_err(l, step, "record content");
		sqlite3_reset(st);
	}
	ledger_unlock(l);
	if (rc < 0)
		return rc == -EBADMSG ? -EIO : rc;
	if (r.type != LEDGER_REC_CLAIM && r.type != LEDGER_REC_UPDATE)
		return -EINVAL;
	*out = r.content;
	return 0;
}
static const char q_blk_raw[] = "SELECT hdr FROM raw_blocks WHERE id = ?";
static const char q_blk_ids[] = "SELECT record FROM raw_block_records WHERE block = ? ORDER BY idx";

/* Record ids of a block as stored, in order. */
static int block_ids(struct ledger *l, const uint8_t block[32], uint8_t (**out)[32], size_t *out_n)
{
	sqlite3_stmt *st = store_stmt(l, q_blk_ids);
	uint8_t(*v)[32] = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, block, 32, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);

		if (n == cap) {
			void *nv = realloc(v, (cap = cap ? cap * 2 : 64) * 32);

			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		if (p && sqlite3_column_bytes(st, 0) == 32)
			memcpy(v[n], p, 32);
		else
			memset(v[n], 0, 32);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_err(l, rc, "block ids");
	}
	*out = v;
	*out_n = n;
	return 0;
}

/* A header by id, its hash and signature checked. */
/* A block header's bytes against its id: hash, strict encoding, producer signature.
 * No lock needed. */
static int header_bytes_ok(const uint8_t *raw, size_t len, const uint8_t id[32], struct blk_hdr *h,
                           const char **why)
{
	uint8_t hash[32];
	int rc = -EBADMSG;

	ledger_sha256(raw, len, hash);
	if (memcmp(hash, id, 32))
		*why = "block hash mismatch";
	else if (blk_hdr_decode(raw, len, h, true))
		*why = "block header bad encoding or signature";
	else
		rc = 0;
	/* h->params would point into raw: nobody uses it after this */
	h->params.p = NULL;
	h->params.len = 0;
	return rc;
}

/* A record's bytes against its id: hash, strict encoding, signature (keys through c,
 * which may be NULL). No lock needed but c's. */
static int record_bytes_ok(struct ledger_pk_cache *c, const uint8_t *raw, size_t len,
                           const uint8_t id[32], size_t max_len, struct rec *r, const char **why)
{
	uint8_t hash[32];

	ledger_sha256(raw, len, hash);
	if (memcmp(hash, id, 32)) {
		*why = "record hash mismatch";
		return -EBADMSG;
	}
	if (rec_decode(c, raw, len, max_len, r)) {
		*why = "record bad encoding or signature";
		return -EBADMSG;
	}
	return 0;
}

static int checked_header(struct ledger *l, const uint8_t id[32], struct blk_hdr *h,
                          const char **why)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc = get_blob(l, q_blk_raw, id, &raw, &len);

	if (rc) {
		*why = "block missing";
		return rc;
	}
	rc = header_bytes_ok(raw, len, id, h, why);
	free(raw);
	return rc;
}

static int checked_record(struct ledger *l, const uint8_t id[32], size_t max_len, struct rec *r,
                          const char **why)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc = get_blob(l, q_rec_raw, id, &raw, &len);

	if (rc) {
		*why = "record missing";
		return rc;
	}
	rc = record_bytes_ok(l->pkc, raw, len, id, max_len, r, why);
	free(raw);
	return rc;
}

static int verify_record_locked(struct ledger *l, const uint8_t id[32])
{
	static const char q[] = "SELECT height, idx FROM chain_records WHERE record = ?";
	struct vcache_ent *ve = &l->vcache[(id[0] | id[1] << 8) % VCACHE_SIZE];
	uint8_t block[32], prev_id[32], (*ids)[32] = NULL, (*leaves)[32] = NULL;
	uint8_t proof[64][32];
	size_t n = 0, pn = 0;
	int64_t height, idx;
	struct blk_hdr h;
	struct rec r;
	const char *why = NULL;
	sqlite3_stmt *st;
	char hex[LEDGER_HEX_LEN];
	int rc;

	if (ve->used && ve->epoch == l->chain_epoch && !memcmp(ve->id, id, 32))
		return 0;
	st = store_stmt(l, q);
	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	height = sqlite3_column_int64(st, 0);
	idx = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "verify record");
	rc = chain_id_at(l, height, block);
	if (rc)
		return rc == -ENOENT ? -EBADMSG : rc;
	if (checked_record(l, id, SIZE_MAX, &r, &why) || checked_header(l, block, &h, &why))
		goto bad;
	if (h.height != height) {
		why = "block height mismatch";
		goto bad;
	}
	/* place in the best chain: linked to the block below it */
	if (height > 0 && (chain_id_at(l, height - 1, prev_id) || memcmp(prev_id, h.prev, 32))) {
		why = "block not linked to the best chain";
		goto bad;
	}
	rc = block_ids(l, block, &ids, &n);
	if (rc)
		return rc;
	if ((int64_t)n != h.n_records || idx < 0 || (size_t)idx >= n || memcmp(ids[idx], id, 32)) {
		why = "record not at its place in the block";
		goto bad;
	}
	leaves = malloc(n * 32);
	if (!leaves) {
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		merkle_leaf_hash(ids[i], 32, leaves[i]);
	rc = merkle_inclusion_proof((const uint8_t(*)[32])leaves, n, (size_t)idx, proof, &pn);
	if (rc) {
		free(ids);
		free(leaves);
		return rc;
	}
	if (!merkle_inclusion_verify(leaves[idx], (uint64_t)idx, n, (const uint8_t(*)[32])proof, pn,
	                             h.root)) {
		why = "merkle path does not reach the block root";
		goto bad;
	}
	free(ids);
	free(leaves);
	ve->used = true;
	ve->epoch = l->chain_epoch;
	memcpy(ve->id, id, 32);
	return 0;
bad:
	free(ids);
	free(leaves);
	ledger_hex(id, 32, hex);
	L_ERR(l, "record %s at height %lld fails verification: %s", hex, (long long)height, why);
	return -EBADMSG;
}

int ledger_verify_record(struct ledger *l, const uint8_t id[LEDGER_ID_LEN])
{
	int rc;

	ledger_lock(l);
	rc = verify_record_locked(l, id);
	ledger_unlock(l);
	return rc;
}

struct problems {
	struct ledger_problem *v;
	size_t n, cap;
};

static void problem(struct problems *ps, int64_t height, const uint8_t block[32],
                    const uint8_t *record, int64_t idx, const char *what)
{
	struct ledger_problem *p;

	if (ps->n == ps->cap) {
		void *nv = realloc(ps->v, (ps->cap = ps->cap ? ps->cap * 2 : 16) * sizeof *p);

		if (!nv) {
			ps->cap /= 2;
			return;
		}
		ps->v = nv;
	}
	p = &ps->v[ps->n++];
	memset(p, 0, sizeof *p);
	p->height = height;
	if (block)
		memcpy(p->block_id, block, 32);
	if (record) {
		p->has_record = true;
		memcpy(p->record_id, record, 32);
	}
	p->index = idx;
	p->what = what;
}

/* One best-chain block's raw bytes, copied from the reader's snapshot. */
struct raw_block {
	uint8_t id[32];
	uint8_t *hdr;
	size_t hdr_len;
	uint8_t (*ids)[32];
	uint8_t **recs; /* NULL where a record is missing */
	size_t *lens;
	size_t n;
};

static void raw_block_release(struct raw_block *b)
{
	for (size_t i = 0; b->recs && i < b->n; i++)
		free(b->recs[i]);
	free(b->recs);
	free(b->lens);
	free(b->ids);
	free(b->hdr);
	memset(b, 0, sizeof *b);
}

/* Copy block id's header and records. -ENOENT if the header is missing. */
static int raw_block_load(struct ledger *l, const uint8_t id[32], struct raw_block *b)
{
	int rc;

	memset(b, 0, sizeof *b);
	memcpy(b->id, id, 32);
	if ((rc = get_blob(l, q_blk_raw, id, &b->hdr, &b->hdr_len)))
		return rc;
	if ((rc = block_ids(l, id, &b->ids, &b->n)))
		return rc;
	b->recs = calloc(b->n ? b->n : 1, sizeof *b->recs);
	b->lens = calloc(b->n ? b->n : 1, sizeof *b->lens);
	if (!b->recs || !b->lens)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		rc = get_blob(l, q_rec_raw, b->ids[i], &b->recs[i], &b->lens[i]);
		if (rc == -ENOENT)
			b->recs[i] = NULL;
		else if (rc)
			return rc;
	}
	return 0;
}

/* What the sweep reads of one height, all from one snapshot of the reader r. */
struct sweep_step {
	bool past_end; /* the chain is shorter now (a reorg): done */
	bool gap;      /* no best-chain block at this height */
	bool missing;  /* its header is not stored */
	bool relinked; /* the block below is not the one checked last (a reorg) */
	uint8_t below[32];
	uint8_t id[32]; /* the best chain's block at this height */
	struct raw_block b;
};

static int sweep_read(struct ledger *r, uint64_t height, uint64_t *end, const uint8_t prev[32],
                      struct sweep_step *s)
{
	struct ledger_head head;
	int rc;

	memset(s, 0, sizeof *s);
	if ((rc = reader_snapshot_begin(r)) != 0)
		return rc;
	if ((rc = chain_head(r, &head)) != 0)
		goto out;
	if (head.height < *end)
		*end = head.height; /* a reorg to a shorter chain meanwhile */
	if (height > *end) {
		s->past_end = true;
		goto out;
	}
	/* the chain below changed meanwhile (a reorg: its blocks were checked when they
	 * came): link to what is there now, in the same snapshot as this block */
	if (height > 0) {
		if (chain_id_at(r, (int64_t)height - 1, s->below))
			memset(s->below, 0, sizeof s->below);
		s->relinked = memcmp(s->below, prev, 32) != 0;
	}
	if (chain_id_at(r, (int64_t)height, s->id)) {
		s->gap = true;
		goto out;
	}
	rc = raw_block_load(r, s->id, &s->b);
	if (rc == -ENOENT && !s->b.hdr) {
		s->missing = true;
		rc = 0;
	}
out:
	reader_snapshot_end(r);
	return rc;
}

int ledger_verify_chain(struct ledger *l, ledger_problem_fn fn, void *ctx)
{
	struct problems ps = { 0 };
	struct ledger_head head;
	struct ledger_pk_cache *pkc = NULL;
	struct ledger *r = NULL;
	uint8_t prev[32] = { 0 };
	uint64_t end;
	int rc;

	/* Everything is read through a query-only twin (reader.c), never under l's lock:
	 * a sweep of a big drive takes minutes, and lookups, listings, status and sync go
	 * on beside it. A reorg shows as a best chain that changed below the height being
	 * checked, seen in the same snapshot as the block itself. */
	if ((rc = ledger_pk_cache_new(&pkc)) != 0 || (rc = reader_open(l, &r)) != 0)
		goto out;
	if ((rc = chain_head(r, &head)) != 0)
		goto out;
	/* the chain as it is now: blocks that come meanwhile were checked on arrival */
	end = head.height;
	for (uint64_t height = 0;; height++) {
		struct sweep_step s;
		uint8_t root[32];
		const char *why = NULL;
		struct blk_hdr h;

		if (atomic_load(&l->interrupted)) { /* an unmount */
			rc = -EINTR;
			goto out;
		}
		if ((rc = sweep_read(r, height, &end, prev, &s)) != 0) {
			raw_block_release(&s.b);
			goto out;
		}
		if (s.past_end)
			break;
		if (s.relinked)
			memcpy(prev, s.below, 32);
		if (s.gap) {
			problem(&ps, (int64_t)height, NULL, NULL, -1, "best chain has a gap");
			continue;
		}
		if (s.missing) {
			problem(&ps, (int64_t)height, s.id, NULL, -1, "block missing");
			raw_block_release(&s.b);
			memcpy(prev, s.id, 32);
			continue;
		}
		/* the checks themselves, signatures included */
		struct raw_block *b = &s.b;
		const uint8_t *id = s.id;

		if (header_bytes_ok(b->hdr, b->hdr_len, id, &h, &why)) {
			problem(&ps, (int64_t)height, id, NULL, -1, why);
			raw_block_release(b);
			memcpy(prev, id, 32);
			continue;
		}
		for (size_t i = 0; i < b->n; i++) {
			struct rec rr;
			const char *w = "record missing";

			if (!b->recs[i] || record_bytes_ok(pkc, b->recs[i], b->lens[i], b->ids[i],
			                                   l->params.max_record_bytes, &rr, &w))
				problem(&ps, (int64_t)height, id, b->ids[i], (int64_t)i, w);
		}
		rc = merkle_root_of_ids((const uint8_t(*)[32])b->ids, b->n, root);
		if (rc) {
			raw_block_release(b);
			goto out;
		}
		if (height == 0 && memcmp(id, l->drive, 32))
			problem(&ps, 0, id, NULL, -1, "genesis is not this drive's");
		if (h.height != (int64_t)height)
			problem(&ps, (int64_t)height, id, NULL, -1, "block height mismatch");
		if (height > 0 && memcmp(h.prev, prev, 32))
			problem(&ps, (int64_t)height, id, NULL, -1,
			        "block not linked to its parent");
		if (height > 0 && memcmp(h.drive, l->drive, 32))
			problem(&ps, (int64_t)height, id, NULL, -1, "block of another drive");
		if ((int64_t)b->n != h.n_records)
			problem(&ps, (int64_t)height, id, NULL, -1, "record count mismatch");
		if (memcmp(root, h.root, 32))
			problem(&ps, (int64_t)height, id, NULL, -1, "merkle root mismatch");
		raw_block_release(b);
		memcpy(prev, id, 32);
		ledger_step(l, "sweep:checked"); /* tests: the chain may change here */
	}
	{
		struct fin_evidence *ev = NULL;
		size_t nev = 0;

		rc = finality_evidence_list(r, &ev, &nev);
		for (size_t i = 0; !rc && i < nev; i++)
			problem(&ps, ev[i].height, ev[i].b, NULL, -1, LEDGER_PROBLEM_EQUIVOCATION);
		free(ev);
	}
out:
	reader_close(r);
	ledger_pk_cache_free(pkc);
	for (size_t i = 0; !rc && fn && i < ps.n; i++)
		fn(&ps.v[i], ctx);
	free(ps.v);
	return rc ? rc : (int)ps.n;
}

void ledger_interrupt(struct ledger *l)
{
	atomic_store(&l->interrupted, true);
}

int ledger_rebuild(struct ledger *l)
{
	int rc;

	ledger_lock(l);
	rc = chain_replay(l);
	ledger_unlock(l);
	return rc;
}

int ledger_state_digest(struct ledger *l, uint8_t out[LEDGER_ID_LEN])
{
	static const char *const qs[] = {
		("SELECT path, record, type, is_dir, open, owner, root, len, ih2, ih1, plen,"
		 " mode, mtime, born FROM paths WHERE spent IS NULL ORDER BY path"),
		"SELECT key, producer, born FROM members WHERE spent IS NULL ORDER BY seq",
		"SELECT height, id FROM chain ORDER BY height",
	};
	struct ben_buf b;
	int rc = 0;

	ben_buf_init(&b);
	ledger_lock(l);
	for (size_t q = 0; !rc && q < sizeof qs / sizeof qs[0]; q++) {
		sqlite3_stmt *st = store_stmt(l, qs[q]);

		if (!st) {
			rc = -EIO;
			break;
		}
		ben_list_begin(&b);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int nc = sqlite3_column_count(st);

			ben_list_begin(&b);
			for (int c = 0; c < nc; c++) {
				if (sqlite3_column_type(st, c) == SQLITE_INTEGER)
					ben_put_int(&b, sqlite3_column_int64(st, c));
				else
					ben_put_str(&b, sqlite3_column_blob(st, c),
					            (size_t)sqlite3_column_bytes(st, c));
			}
			ben_end(&b);
		}
		sqlite3_reset(st);
		ben_end(&b);
		rc = rc == SQLITE_DONE ? b.err : store_err(l, rc, "digest");
	}
	ledger_unlock(l);
	if (!rc)
		ledger_sha256(b.p, b.len, out);
	ben_buf_release(&b);
	return rc;
}

/* ---- raw blocks ---- */

int ledger_block_get(struct ledger *l, uint64_t height, uint8_t **out_buf, size_t *out_len)
{
	uint8_t id[32];
	int rc;

	ledger_lock(l);
	rc = chain_id_at(l, (int64_t)height, id);
	if (!rc && height == 0) {
		rc = -EINVAL; /* the genesis travels as the drive torrent, not as a block */
	} else if (!rc) {
		rc = chain_block_wire(l, id, out_buf, out_len);
	}
	ledger_unlock(l);
	return rc;
}

int ledger_block_import(struct ledger *l, const uint8_t *buf, size_t len)
{
	bool head;
	int rc;

	ledger_lock(l);
	rc = chain_block_add(l, buf, len, &head);
	ledger_unlock(l);
	return rc < 0 ? rc : head ? 1 : 0;
}
