/* A query-only twin of a ledger for long scans (see ledger_priv.h, "reader.c"): the
 * chain sweep and the hosting sweep read through it, so lookups, listings and sync,
 * which need the writer's lock, never wait behind a scan of the whole drive. A lookup
 * that finds the writer's lock taken reads through one too (reader_lookup). */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int reader_open(struct ledger *l, struct ledger **out)
{
	struct ledger *r = calloc(1, sizeof *r);
	int rc;

	if (!r)
		return -ENOMEM;
	r->reader = true;
	r->cfg = l->cfg; /* the log sink and level; path borrowed */
	r->cfg.on_change = NULL;
	r->cfg.on_dropped = NULL;
	r->path = l->path;
	memcpy(r->drive, l->drive, 32);
	/* the scalars and the admin; the owned lists stay l's */
	r->params = l->params;
	r->params.name = NULL;
	r->params.producers = NULL;
	r->params.n_producers = 0;
	r->params.trackers = NULL;
	r->params.n_trackers = 0;
	pthread_mutex_init(&r->lock, NULL);
	if ((rc = store_open_readonly(r)) != 0) {
		reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void reader_close(struct ledger *r)
{
	if (!r)
		return;
	store_close(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int reader_snapshot_begin(struct ledger *r)
{
	return store_exec(r, "BEGIN DEFERRED");
}

void reader_snapshot_end(struct ledger *r)
{
	if (!sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
}

int reader_lookup(struct ledger *l, const char *norm, struct ledger_entry *out)
{
	int rc;

	if (l->tx_held)
		return -EAGAIN;
	pthread_mutex_lock(&l->look_mu);
	if (!l->look_rd && reader_open(l, &l->look_rd) != 0) {
		pthread_mutex_unlock(&l->look_mu);
		return -EAGAIN;
	}
	/* one snapshot for both of ledger_lookup_locked's queries: a block committed
	 * between them would move a record from the mempool into paths unseen by both */
	if ((rc = reader_snapshot_begin(l->look_rd)) == 0) {
		rc = ledger_lookup_locked(l->look_rd, norm, out);
		reader_snapshot_end(l->look_rd);
	}
	pthread_mutex_unlock(&l->look_mu);
	return rc;
}
