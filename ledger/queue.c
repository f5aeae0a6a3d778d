/* The durable publish queue (ledger_queue_*): a SQLite file of its own beside the
 * ledger's (ledger.queue.db beside ledger.db), with its own connection and lock, so a
 * close(2) that queues a file never waits behind the publish worker's batch, which
 * holds the ledger's lock while it checks, stores and produces thousands of records
 * (issue 18: 150 of 10,000 pushes waited 0.76 s in all behind it in a cp -r, and the
 * pushes held the ledger's lock 0.43 s themselves, which the worker and every lookup
 * waited for). A queue write no longer throws away siblings.c's page either.
 *
 * The twin is a struct ledger of its own (as reader.c's): store.c's helpers run on it
 * unchanged. It is opened at the first queue call; then the rows an older version kept
 * in the ledger's own publish_queue table move into it (queue_migrate).
 * Thread context: any thread; l->queue_mu guards the opening, the twin's lock each call.
 * Lock order: queue_mu, then the ledger's lock (the move), and the twin's lock is never
 * taken with the ledger's held. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ledger.db -> ledger.queue.db; any other name gets ".queue.db" appended. */
static char *queue_path(const char *path)
{
	size_t n = strlen(path);
	char *q;

	if (n > 3 && !strcmp(path + n - 3, ".db"))
		n -= 3;
	if (asprintf(&q, "%.*s.queue.db", (int)n, path) < 0)
		return NULL;
	return q;
}

/* The rows an older version queued in the ledger's own table, into q (the ledger's
 * lock held; q not shared yet). Copied first, ids and order kept, in one transaction
 * of q, then deleted from the ledger: a crash between the two copies them again at
 * the next open, and INSERT OR IGNORE keeps one of each. */
static int queue_migrate(struct ledger *l, struct ledger *q)
{
	static const char sel[] = "SELECT id, path, staging, attempts, error, sort, size"
	                          " FROM publish_queue ORDER BY id";
	static const char ins[] = "INSERT OR IGNORE INTO publish_queue(id, path, staging,"
	                          " attempts, error, sort, size) VALUES(?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *from = store_stmt(l, sel), *to;
	int rc, n = 0;

	if (!from)
		return -EIO;
	if ((rc = store_begin(q)) < 0) {
		sqlite3_reset(from);
		return rc;
	}
	while ((rc = sqlite3_step(from)) == SQLITE_ROW) {
		if (!(to = store_stmt(q, ins))) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(to, 1, sqlite3_column_int64(from, 0));
		for (int c = 1; c <= 6; c++)
			sqlite3_bind_value(to, c + 1, sqlite3_column_value(from, c));
		if ((rc = store_step_done(q, to, "queue move")) < 0)
			break;
		n++;
	}
	sqlite3_reset(from);
	rc = rc == SQLITE_DONE ? 0 : rc < 0 ? rc : store_err(l, rc, "queue move");
	if (!rc)
		rc = store_commit(q);
	if (rc) {
		store_rollback(q);
		return rc;
	}
	if (n && (rc = store_exec(l, "DELETE FROM publish_queue")) == 0)
		L_NOTICE(l, "publish queue: %d item(s) moved into %s", n, q->path);
	return rc;
}

/* l's queue twin, opened (and the older queue moved) at the first call; a failure is
 * returned and tried again at the next call. */
static int queue_get(struct ledger *l, struct ledger **out)
{
	struct ledger *q;
	int rc = 0;

	pthread_mutex_lock(&l->queue_mu);
	if (l->queue)
		goto out;
	if (!(q = calloc(1, sizeof *q))) {
		rc = -ENOMEM;
		goto out;
	}
	q->cfg = l->cfg; /* the log sink and level, fast_unsafe */
	q->cfg.on_change = NULL;
	q->cfg.on_dropped = NULL;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->queue_mu, NULL);
	if (!(q->path = queue_path(l->path)))
		rc = -ENOMEM;
	q->cfg.path = q->path;
	if (!rc)
		rc = store_open_queue(q);
	if (!rc) {
		ledger_lock(l);
		rc = queue_migrate(l, q);
		ledger_unlock(l);
	}
	l->queue = q;
	if (rc)
		queue_close(l);
out:
	*out = l->queue;
	pthread_mutex_unlock(&l->queue_mu);
	return rc;
}

void queue_close(struct ledger *l)
{
	struct ledger *q = l->queue;

	if (!q)
		return;
	store_close(q);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->queue_mu);
	free(q->path);
	free(q);
	l->queue = NULL;
}

/* l's queue twin, locked, and sql's statement on it in *out_st: 0, or -errno (then
 * unlocked). */
static int queue_stmt(struct ledger *l, const char *sql, struct ledger **out_q,
                      sqlite3_stmt **out_st)
{
	int rc = queue_get(l, out_q);

	if (rc < 0)
		return rc;
	ledger_lock_keep(*out_q);
	if (!(*out_st = store_stmt(*out_q, sql))) {
		ledger_unlock(*out_q);
		return -EIO;
	}
	return 0;
}

/* The sort key after the queue's last (q's lock held): read once, then counted here
 * (this connection is the queue's only writer while it is open; a read error counts
 * from 0, which only orders the queue oddly). */
static int64_t queue_sort_next(struct ledger *q)
{
	static const char sql[] = "SELECT COALESCE(MAX(sort), 0) FROM publish_queue";
	sqlite3_stmt *st;

	if (!q->queue_sort && (st = store_stmt(q, sql))) {
		if (sqlite3_step(st) == SQLITE_ROW)
			q->queue_sort = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	return ++q->queue_sort; /* an empty queue starts at 1 */
}

int ledger_queue_push(struct ledger *l, const char *path, const char *staging, int64_t size,
                      int64_t *out_id)
{
	static const char sql[] = "INSERT INTO publish_queue(path, staging, sort, size)"
	                          " VALUES(?, ?, ?, ?)";
	struct ledger *q;
	sqlite3_stmt *st;
	int rc;

	if (strlen(path) > LEDGER_PATH_MAX || strlen(staging) > LEDGER_PATH_MAX)
		return -ENAMETOOLONG;
	if ((rc = queue_stmt(l, sql, &q, &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, staging, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, queue_sort_next(q));
	sqlite3_bind_int64(st, 4, size < 0 ? -1 : size);
	rc = store_step_done(q, st, "queue push");
	if (!rc && out_id)
		*out_id = sqlite3_last_insert_rowid(q->db);
	ledger_unlock(q);
	return rc;
}

int ledger_queue_list(struct ledger *l, struct ledger_queue_item *out_items, size_t max)
{
	static const char sql[] = "SELECT id, path, staging, attempts, error, size"
	                          " FROM publish_queue ORDER BY sort LIMIT ?";
	struct ledger *q;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc;

	if ((rc = queue_stmt(l, sql, &q, &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_queue_item *it = &out_items[n++];

		it->id = sqlite3_column_int64(st, 0);
		snprintf(it->path, sizeof it->path, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(it->staging, sizeof it->staging, "%s",
		         (const char *)sqlite3_column_text(st, 2));
		it->attempts = sqlite3_column_int(st, 3);
		snprintf(it->error, sizeof it->error, "%s",
		         (const char *)sqlite3_column_text(st, 4));
		it->size = sqlite3_column_int64(st, 5);
	}
	sqlite3_reset(st);
	ledger_unlock(q);
	return (int)n;
}

int ledger_queue_peek(struct ledger *l, struct ledger_queue_item *out_item)
{
	int n = ledger_queue_list(l, out_item, 1);

	return n < 0 ? n : n == 0 ? -ENOENT : 0;
}

static int queue_update(struct ledger *l, const char *sql, int64_t id, const char *error,
                        int64_t size, bool resort)
{
	struct ledger *q;
	sqlite3_stmt *st;
	int rc;

	if ((rc = queue_stmt(l, sql, &q, &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if (error)
		sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
	else if (size >= -1)
		sqlite3_bind_int64(st, 2, size);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? (sqlite3_changes(q->db) ? 0 : -ENOENT) : store_err(q, rc, "queue");
	if (resort)
		q->queue_sort = 0; /* read again at the next push */
	ledger_unlock(q);
	return rc;
}

int ledger_queue_done(struct ledger *l, int64_t id)
{
	static const char sql[] = "DELETE FROM publish_queue WHERE id = ?1";

	return queue_update(l, sql, id, NULL, -2, false);
}

int ledger_queue_done_batch(struct ledger *l, const int64_t *ids, size_t n)
{
	static const char sql[] = "DELETE FROM publish_queue WHERE id = ?1";
	struct ledger *q;
	sqlite3_stmt *st;
	int rc;

	if (!n)
		return 0;
	if ((rc = queue_get(l, &q)) < 0)
		return rc;
	ledger_lock_keep(q);
	rc = store_begin(q);
	for (size_t i = 0; !rc && i < n; i++) {
		if (!(st = store_stmt(q, sql))) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = store_step_done(q, st, "queue done");
	}
	if (!rc)
		rc = store_commit(q);
	else
		store_rollback(q);
	ledger_unlock(q);
	return rc;
}

int ledger_queue_resize(struct ledger *l, int64_t id, int64_t size)
{
	static const char sql[] = "UPDATE publish_queue SET size = ?2 WHERE id = ?1";

	return queue_update(l, sql, id, NULL, size < 0 ? -1 : size, false);
}

int ledger_queue_fail(struct ledger *l, int64_t id, const char *error)
{
	static const char sql[] = "UPDATE publish_queue SET attempts = attempts + 1, error = ?2,"
	                          " sort = (SELECT MAX(sort) + 1 FROM publish_queue) WHERE id = ?1";

	return queue_update(l, sql, id, error ? error : "", -2, true);
}
