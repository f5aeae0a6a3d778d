/* Applying the blocks of one blocks message (issue 13: sync at the speed of the CPU).
 * The blocks come in runs: a run starts with a block that extends what we know and
 * goes on while each next block names the one before as its parent and is signed by
 * a producer at our head. A run's records' signatures are checked on every core,
 * without the ledger lock, from its first record on; meanwhile the calling thread
 * applies each block as soon as all of its records are checked, in groups that share
 * one SQLite transaction (the lock held about GROUP_NS at most, so readers of the
 * ledger wait that long at most). Called without the lock.
 *
 * A group's transaction is not committed when its group ends while the run goes on:
 * it stays open over the release of the lock (l->tx_held) for the next groups, up to
 * SYNC_TX_NS, and is committed then, at the run's end, or as soon as another thread
 * takes the lock to do anything but a query (ledger_lock; ledger_lock_read leaves it
 * open). Every commit writes again each page it changed, and the record indexes'
 * random keys (record ids, content roots) change about a page per index per record,
 * so a commit per group of one or two blocks rewrote most of those indexes every
 * ~60 ms: issue 13 measured ~26 KB written per record on a fresh node's 50k-record
 * sync. Only blocks from a peer wait in a held transaction, checked as any block:
 * what this node writes of its own commits them first, and a crash loses at most
 * SYNC_TX_NS of sync (one blocks message at most), which the peer sends again.
 *
 * A long run (BULK_RECORDS) applies with a larger page cache (store_cache_bulk), given
 * back when the run ends: at a million records the hash-keyed indexes are ~250 MB,
 * each record dirties a page at a random place in about five of them, and with the
 * usual 32 MiB a transaction's dirty pages were spilled to the WAL before its commit
 * and read back; with SYNC_TX_NS at 1 s a busy machine committed every few thousand
 * records, writing the same pages again each time (LEDGER_BENCH_SYNC_ONLY=1
 * scripts/bench/ledger.sh shows the cost per 100k records as the ledger grows). The
 * bulk cache stays on from one blocks message to the next while the next is asked for
 * already (sync.c's pipelining), else each message read the indexes' pages back into a
 * cache given back a moment before; it goes back after a message without more, or
 * when no blocks are on their way (sync_apply_idle, from sync.c's announce).
 *
 * The blocks of a transaction apply without a savepoint each (store_begin's sp_lazy):
 * a block that must be undone spoils the transaction, which is rolled back and its
 * blocks applied again, each in its own savepoint (block_redo). */
#include "ledger_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP_NS     (50 * 1000000LL) /* a group's transaction holds the lock so long at most */
#define CHUNK        8                /* records a checker takes at once */
#define MIN_PARALLEL 64               /* fewer records than this: chain_block_add checks them */
#define CHECKERS_MAX 8
#define SYNC_TX_NS   (10000 * 1000000LL) /* a transaction held over groups commits so old */
#define BULK_RECORDS 4096 /* a run this long applies with store_cache_bulk's page cache */

struct run {
	struct ledger *l;
	const struct blk_wire *w;
	size_t nb, total;
	size_t *first;       /* nb + 1 entries: block b's records are [first[b], first[b + 1]) */
	uint8_t (*ids)[32];  /* total entries: a record's id once its signature held, else zero */
	atomic_size_t next;  /* the next record no checker has taken */
	atomic_size_t *left; /* per block: its records not checked yet */
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A checker thread: takes CHUNK records at a time, in order, until none are left. A
 * record whose signature does not hold (or that it could not check) keeps a zero id,
 * and chain_block_add checks it again, and refuses it, under the lock. */
static void *checker_main(void *arg)
{
	struct run *r = arg;
	struct ledger_pk_cache *c = NULL;
	struct rec *rec = malloc(sizeof *rec);
	size_t b = 0;

	ledger_pk_cache_new(&c); /* NULL on failure: rec_decode works without */
	while (!atomic_load(&r->stop)) {
		size_t i = atomic_fetch_add(&r->next, CHUNK), end;

		if (i >= r->total)
			break;
		end = i + CHUNK < r->total ? i + CHUNK : r->total;
		for (; i < end; i++) {
			while (i >= r->first[b + 1])
				b++;
			const struct ben *raw = &r->w[b].recs[i - r->first[b]];

			if (rec && rec_decode(c, raw->p, raw->len, r->l->params.max_record_bytes,
			                      rec) == 0)
				memcpy(r->ids[i], rec->id, 32);
			if (atomic_fetch_sub(&r->left[b], 1) == 1) {
				pthread_mutex_lock(&r->mu);
				pthread_cond_broadcast(&r->cv);
				pthread_mutex_unlock(&r->mu);
			}
		}
	}
	ledger_pk_cache_free(c);
	free(rec);
	return NULL;
}

static void wait_checked(struct run *r, size_t b)
{
	pthread_mutex_lock(&r->mu);
	while (atomic_load(&r->left[b]))
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

/* The header of a block a peer sent, checked cheaply before any of its records'
 * signatures: its shape, its own signature, this drive, and, when it extends our head,
 * its height and that its producer is one now. 0, -ENOENT (its parent is unknown: the
 * peer's chain moved) or -EBADMSG. Lock held. */
static int block_precheck(struct ledger *l, const struct blk_wire *w, struct blk_hdr *h)
{
	static const char q[] = "SELECT 1 FROM blocks WHERE id = ?";
	struct ledger_head head;

	if (blk_hdr_decode(w->hdr.p, w->hdr.len, h, true) || memcmp(h->drive, l->drive, 32) ||
	    h->n_records != (int64_t)w->n_recs || h->height < 1)
		return -EBADMSG;
	if (chain_head(l, &head))
		return -EIO;
	if (!memcmp(h->prev, head.id, 32))
		return h->height == (int64_t)head.height + 1 && chain_is_producer(l, h->producer)
		           ? 0
		           : -EBADMSG;
	return store_has(l, q, h->prev) ? 0 : -ENOENT;
}

/* The run that starts at w[0]: w[0] passes block_precheck; each next block names the
 * one before as its parent, is one higher, names this drive, carries a valid header
 * signature and a producer at our head. *len: how many (1 or more). A block that is
 * not taken starts the next run, checked again once the run before it applied.
 * Lock held. */
static int run_length(struct ledger *l, const struct blk_wire *w, size_t n, size_t *len)
{
	struct blk_hdr h, next;
	int rc = block_precheck(l, &w[0], &h);

	*len = 1;
	if (rc)
		return rc;
	while (*len < n) {
		const struct blk_wire *v = &w[*len];

		if (blk_hdr_decode(v->hdr.p, v->hdr.len, &next, true) ||
		    memcmp(next.drive, l->drive, 32) || next.n_records != (int64_t)v->n_recs ||
		    memcmp(next.prev, h.id, 32) || next.height != h.height + 1 ||
		    !chain_is_producer(l, next.producer))
			break;
		h = next;
		++*len;
	}
	return 0;
}

/* Start the checkers of run r: how many started (0: chain_block_add checks). */
static size_t checkers_start(struct run *r, pthread_t *th)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nt = cpus > CHECKERS_MAX ? CHECKERS_MAX : cpus > 1 ? (size_t)cpus : 1, started = 0;

	if (r->total < MIN_PARALLEL || nt < 2)
		return 0;
	for (size_t t = 0; t < nt; t++)
		if (pthread_create(&th[t], NULL, checker_main, r) == 0)
			started++;
	return started; /* one is enough: they take records until none are left */
}

/* Block b of run r (chain_block_add), its records' checked ids lent to it when the
 * checkers ran. Lock held, in the run's transaction. */
static int block_add(struct run *r, const struct ben *raw, size_t b, bool started, bool *head)
{
	bool moved = false;
	int rc;

	if (started)
		ledger_pk_cache_preverified_set(
		    r->l->pkc, (const uint8_t(*)[32])(r->ids + r->first[b]), r->w[b].n_recs);
	rc = chain_block_add(r->l, raw[b].p, raw[b].len, &moved);
	ledger_pk_cache_preverified_clear(r->l->pkc);
	*head |= moved;
	return rc;
}

/* Block *b was refused, or rolled back what it wrote, with no savepoint of its own to
 * undo its changes (store_begin's sp_lazy): the transaction goes (its blocks from
 * `from` on), and they are applied again in a new one, each in its own savepoint as
 * chain_block_add does alone, up to *b: the blocks before a refused one stand, and the
 * refused one leaves nothing but what chain_block_add leaves of it (its id among the
 * bad blocks). A peer's bad block costs the transaction's blocks once more, at most a
 * blocks message. *b: the block that failed again (it may not: it is then applied).
 * Lock held. */
static int block_redo(struct run *r, const struct ben *raw, size_t from, size_t *b, bool started,
                      bool *head)
{
	struct ledger *l = r->l;
	int rc;

	store_rollback(l);
	l->chain_epoch++;
	ledger_note_change(l, NULL);
	rc = store_begin(l);
	for (size_t i = from; rc == 0 && i <= *b; i++) {
		rc = block_add(r, raw, i, started, head);
		if (rc)
			*b = i;
	}
	return rc;
}

/* Apply the blocks of a run, each once its records are checked, several to a
 * transaction; the blocks in the transaction without a savepoint each (store_begin's
 * sp_lazy), block_redo when one needed its own. Lock not held. */
static int run_apply(struct ledger *l, const struct blk_wire *w, const struct ben *raw, size_t nb,
                     bool keep, bool *head)
{
	struct run r = { .l = l, .w = w, .nb = nb };
	pthread_t th[CHECKERS_MAX];
	size_t started = 0, b = 0, tx_first = 0;
	int64_t tx0 = 0;
	int rc = 0;

	r.first = malloc((nb + 1) * sizeof *r.first);
	r.left = malloc(nb * sizeof *r.left);
	if (!r.first || !r.left) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nb; i++) {
		r.first[i] = r.total;
		atomic_init(&r.left[i], w[i].n_recs);
		r.total += w[i].n_recs;
	}
	r.first[nb] = r.total;
	atomic_init(&r.next, 0);
	atomic_init(&r.stop, false);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (r.total >= MIN_PARALLEL && (r.ids = calloc(r.total, 32)))
		started = checkers_start(&r, th);
	while (rc == 0 && b < nb) {
		int64_t t0;
		int c;

		if (started)
			wait_checked(&r, b);
		ledger_lock_keep(l);
		if (!b && r.total >= BULK_RECORDS && !l->bulk)
			store_cache_bulk(l, true);
		t0 = now_ns();
		if (l->tx_held) {
			l->tx_held = false; /* ours, still open: go on in it */
		} else {
			tx0 = t0;
			tx_first = b;
			rc = store_begin(l);
		}
		for (size_t in_group = 0; rc == 0 && b < nb; in_group++, b++) {
			if (in_group &&
			    ((started && atomic_load(&r.left[b])) || now_ns() - t0 > GROUP_NS))
				break; /* commit what is applied, let readers in, wait outside */
			l->sp_lazy = true;
			rc = block_add(&r, raw, b, started, head);
			l->sp_lazy = false;
			if (l->tx_spoilt)
				rc = block_redo(&r, raw, tx_first, &b, started, head);
		}
		/* the blocks of the group before a refused one stand; the transaction is held
		 * open for the next group while all went well and it is young */
		if (rc == 0 && b < nb && l->tx_depth == 1 && now_ns() - tx0 < SYNC_TX_NS)
			l->tx_held = true;
		else if (l->tx_depth && (c = store_commit(l)) < 0) {
			store_rollback(l);
			l->chain_epoch++;
			ledger_note_change(l, NULL);
			rc = c;
		}
		/* the run is over, its transaction committed: the bulk cache goes back unless
		 * the next blocks are on their way (keep) */
		if (l->bulk && (rc || (b >= nb && !keep)))
			store_cache_bulk(l, false);
		ledger_unlock(l);
	}
	atomic_store(&r.stop, true);
	for (size_t t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	if (r.first) {
		pthread_cond_destroy(&r.cv);
		pthread_mutex_destroy(&r.mu);
	}
out:
	free(r.ids);
	free(r.left);
	free(r.first);
	return rc;
}

void sync_apply_idle(struct ledger *l)
{
	if (l->bulk && !l->tx_depth)
		store_cache_bulk(l, false);
}

int sync_apply_blocks(struct ledger *l, const struct blk_wire *w, const struct ben *raw, size_t n,
                      bool more, bool *head)
{
	size_t at = 0, len;
	int rc = 0;

	*head = false;
	while (rc == 0 && at < n) {
		ledger_lock(l);
		rc = run_length(l, w + at, n - at, &len);
		ledger_unlock(l);
		if (rc == 0)
			rc = run_apply(l, w + at, raw + at, len, more && at + len == n, head);
		at += len;
	}
	return rc;
}
