/* The SQLite store: schema, statement cache, transactions, error translation.
 * Raw tables (raw_*) are append-only, enforced by triggers; everything else is derived
 * from them and can be thrown away and rebuilt by replay. */
#include "ledger_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

/* The publish queue's table, in its own file (store_open_queue) and, for the move of
 * an older version's rows, in the ledger's. */
#define QUEUE_TABLE                                                                                \
	"CREATE TABLE IF NOT EXISTS publish_queue(id INTEGER PRIMARY KEY AUTOINCREMENT,"           \
	" path TEXT NOT NULL, staging TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"         \
	" error TEXT NOT NULL DEFAULT '', sort INTEGER NOT NULL, size INTEGER NOT NULL"            \
	" DEFAULT -1);"

#define STR_(x) #x
#define STR(x)  STR_(x)

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    /* raw, append-only: what was received, byte for byte */
    "CREATE TABLE IF NOT EXISTS raw_blocks(id BLOB PRIMARY KEY, height INTEGER NOT NULL,"
    " prev BLOB NOT NULL, hdr BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS raw_blocks_height ON raw_blocks(height);"
    "CREATE TABLE IF NOT EXISTS raw_records(id BLOB PRIMARY KEY, raw BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS raw_block_records(block BLOB NOT NULL, idx INTEGER NOT NULL,"
    " record BLOB NOT NULL, PRIMARY KEY(block, idx)) WITHOUT ROWID;"
    "CREATE TRIGGER IF NOT EXISTS raw_blocks_no_update BEFORE UPDATE ON raw_blocks"
    " BEGIN SELECT RAISE(ABORT, 'raw_blocks is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS raw_blocks_no_delete BEFORE DELETE ON raw_blocks"
    " BEGIN SELECT RAISE(ABORT, 'raw_blocks is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS raw_records_no_update BEFORE UPDATE ON raw_records"
    " BEGIN SELECT RAISE(ABORT, 'raw_records is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS raw_records_no_delete BEFORE DELETE ON raw_records"
    " BEGIN SELECT RAISE(ABORT, 'raw_records is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS raw_block_records_no_update BEFORE UPDATE ON"
    " raw_block_records BEGIN SELECT RAISE(ABORT, 'raw_block_records is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS raw_block_records_no_delete BEFORE DELETE ON"
    " raw_block_records BEGIN SELECT RAISE(ABORT, 'raw_block_records is append-only'); END;"
    /* derived: block tree with cumulative weights, best chain, state */
    "CREATE TABLE IF NOT EXISTS blocks(id BLOB PRIMARY KEY, height INTEGER NOT NULL,"
    " prev BLOB NOT NULL, cum INTEGER NOT NULL, time INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS bad_blocks(id BLOB PRIMARY KEY, why INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chain(height INTEGER PRIMARY KEY, id BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chain_records(record BLOB PRIMARY KEY,"
    " height INTEGER NOT NULL, idx INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS chain_records_height ON chain_records(height);"
    /* paths: one row per version; live rows have spent NULL, so rolling back to
     * height H is: delete rows born after H, revive rows spent after H */
    "CREATE TABLE IF NOT EXISTS paths(path TEXT NOT NULL, parent TEXT NOT NULL,"
    " name TEXT NOT NULL, record BLOB NOT NULL, type INTEGER NOT NULL,"
    " is_dir INTEGER NOT NULL, open INTEGER NOT NULL, owner BLOB NOT NULL, root BLOB,"
    " len INTEGER, ih2 BLOB, ih1 BLOB, plen INTEGER, mode INTEGER, mtime INTEGER,"
    " born INTEGER NOT NULL, spent INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS paths_live ON paths(path) WHERE spent IS NULL;"
    /* listings: is_dir in the index, so a directory's names and kinds (all that
     * readdir and find need) are read from it alone, in order, without a seek into
     * the table for each row (paths_dir, before it, had parent and name only) */
    "DROP INDEX IF EXISTS paths_dir;"
    "CREATE INDEX IF NOT EXISTS paths_list ON paths(parent, name, is_dir) WHERE spent IS NULL;"
    "CREATE INDEX IF NOT EXISTS paths_owner ON paths(owner) WHERE spent IS NULL;"
    "CREATE INDEX IF NOT EXISTS paths_ih2 ON paths(ih2) WHERE spent IS NULL;"
    "CREATE INDEX IF NOT EXISTS paths_root ON paths(root) WHERE spent IS NULL;"
    "CREATE INDEX IF NOT EXISTS paths_born ON paths(born);"
    "CREATE INDEX IF NOT EXISTS paths_spent ON paths(spent) WHERE spent IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS members(key BLOB NOT NULL, producer INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, born INTEGER NOT NULL, spent INTEGER, name TEXT NOT NULL"
    " DEFAULT '');"
    "CREATE UNIQUE INDEX IF NOT EXISTS members_live ON members(key) WHERE spent IS NULL;"
    /* private drives: invites (the public key of a one-time secret), epochs (the
     * admin's commitment to each epoch key) and the epoch keys sealed to members */
    "CREATE TABLE IF NOT EXISTS invites(ikey BLOB NOT NULL, producer INTEGER NOT NULL,"
    " expires INTEGER NOT NULL, name TEXT NOT NULL, author BLOB NOT NULL,"
    " born INTEGER NOT NULL, spent INTEGER, redeemer BLOB);"
    "CREATE UNIQUE INDEX IF NOT EXISTS invites_key ON invites(ikey);"
    "CREATE TABLE IF NOT EXISTS epochs(epoch INTEGER PRIMARY KEY, commit_ BLOB NOT NULL,"
    " born INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS wraps(epoch INTEGER NOT NULL, member BLOB NOT NULL,"
    " author BLOB NOT NULL, box BLOB NOT NULL, born INTEGER NOT NULL,"
    " PRIMARY KEY(epoch, member, author)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS wraps_born ON wraps(born);"
    /* key: the path a row is found by (a move has a row under each of its paths) */
    "CREATE TABLE IF NOT EXISTS history(record BLOB NOT NULL, key TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " type INTEGER NOT NULL, author BLOB NOT NULL, height INTEGER NOT NULL,"
    " time INTEGER NOT NULL, dest TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS history_key ON history(key, height);"
    "CREATE INDEX IF NOT EXISTS history_height ON history(height);"
    /* this node's pending records and publish jobs: local, durable, not derived */
    "CREATE TABLE IF NOT EXISTS mempool(id BLOB PRIMARY KEY, raw BLOB NOT NULL,"
    " path TEXT, seq INTEGER NOT NULL, author BLOB);"
    "CREATE INDEX IF NOT EXISTS mempool_path ON mempool(path);"
    /* the next seq, and the walks in seq order, without a scan: a batch of
     * thousands of records goes in at once (ledger_submit_batch) */
    "CREATE INDEX IF NOT EXISTS mempool_seq ON mempool(seq);"
    /* the publish queue lives in a file of its own now (queue.c); this table is
     * where an older version kept it, and queue.c moves its rows out */
    QUEUE_TABLE;

int store_err(struct ledger *l, int rc, const char *what)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return 0;
	case SQLITE_NOMEM: err = -ENOMEM; break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: err = -EBUSY; break;
	case SQLITE_FULL: err = -ENOSPC; break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH: err = -EACCES; break;
	case SQLITE_CANTOPEN: err = -ENOENT; break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: err = -EBADMSG; break;
	case SQLITE_CONSTRAINT: err = -EPERM; break;
	case SQLITE_TOOBIG: err = -EMSGSIZE; break;
	default: err = -EIO; break;
	}
	L_ERR(l, "sqlite: %s: %s (%d)", what, l->db ? sqlite3_errmsg(l->db) : "", rc);
	return err;
}

int store_step_done(struct ledger *l, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(l, rc, what);
}

int store_exec(struct ledger *l, const char *sql)
{
	int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_err(l, rc, sql);
}

/* Statements are cached by the address of their SQL literal. */
#define STMT_CACHE 96
struct stmt_ent {
	const char *sql;
	sqlite3_stmt *st;
};

struct store_cache {
	struct stmt_ent e[STMT_CACHE];
	size_t n;
};

static struct store_cache *cache_of(struct ledger *l)
{
	return (struct store_cache *)l->stmt_cache;
}

sqlite3_stmt *store_stmt(struct ledger *l, const char *sql)
{
	struct store_cache *c = cache_of(l);
	sqlite3_stmt *st;
	int rc;

	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].sql == sql) {
			sqlite3_reset(c->e[i].st);
			sqlite3_clear_bindings(c->e[i].st);
			return c->e[i].st;
		}
	rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		store_err(l, rc, sql);
		return NULL;
	}
	if (c->n < STMT_CACHE)
		c->e[c->n++] = (struct stmt_ent){ sql, st };
	else
		abort(); /* programmer error: raise STMT_CACHE */
	return st;
}

/* Transactions nest: the outermost is BEGIN IMMEDIATE ... COMMIT, an inner one a
 * savepoint, so a caller may apply several blocks (each its own transaction) in one
 * (sync_apply.c).
 *
 * With l->sp_lazy the savepoint just inside the transaction is not opened: a synced
 * block's savepoint kept the first version of every page the block changed (at a
 * million records several thousand pages a block, copied into a journal in memory
 * made of 1 KiB pieces, each malloc'd and freed), for a rollback that a good block
 * never needs. Its commit is then nothing, and so is its rollback while nothing was
 * changed since it was asked for (sqlite3_total_changes64: rows written, by
 * statements and their triggers); a rollback of changes cannot be done at that depth
 * and sets l->tx_spoilt instead: the caller (sync_apply.c) rolls the transaction
 * back and applies its blocks again, each in a savepoint. */
int store_begin(struct ledger *l)
{
	int rc = l->tx_held ? store_commit_held(l) : 0;

	if (rc)
		return rc;
	if (l->sp_lazy && l->tx_depth == 1 && !l->sp_open) {
		l->sp_changes = sqlite3_total_changes64(l->db);
		l->sp_open = ++l->tx_depth;
		return 0;
	}
	rc = store_exec(l, l->tx_depth ? "SAVEPOINT nested" : "BEGIN IMMEDIATE");

	if (!rc)
		l->tx_depth++;
	return rc;
}

int store_commit(struct ledger *l)
{
	int rc;

	if (l->sp_open && l->tx_depth == l->sp_open) {
		l->sp_open = 0;
		l->tx_depth--;
		return 0;
	}
	rc = store_exec(l, l->tx_depth > 1 ? "RELEASE nested" : "COMMIT");

	if (!rc && l->tx_depth)
		l->tx_depth--;
	return rc;
}

int store_commit_held(struct ledger *l)
{
	int rc;

	if (!l->tx_held)
		return 0;
	l->tx_held = false;
	rc = store_commit(l);
	if (rc) {
		store_rollback(l);
		l->chain_epoch++;
		ledger_note_change(l, NULL);
	}
	return rc;
}

void store_rollback(struct ledger *l)
{
	if (l->sp_open && l->tx_depth == l->sp_open) {
		if (sqlite3_total_changes64(l->db) != l->sp_changes)
			l->tx_spoilt = true;
		l->sp_open = 0;
		l->tx_depth--;
		return;
	}
	if (l->tx_depth > 1) {
		sqlite3_exec(l->db, "ROLLBACK TO nested; RELEASE nested", NULL, NULL, NULL);
		l->tx_depth--;
		return;
	}
	if (!sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	l->tx_depth = 0;
	l->sp_open = 0;
	l->tx_spoilt = false;
}

int store_meta_get(struct ledger *l, const char *key, uint8_t **out, size_t *out_len)
{
	static const char q[] = "SELECT value FROM meta WHERE key = ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		uint8_t *b = malloc(n + 1);

		if (!b)
			return -ENOMEM;
		if (n)
			memcpy(b, sqlite3_column_blob(st, 0), n);
		b[n] = 0;
		*out = b;
		*out_len = n;
		sqlite3_reset(st);
		return 0;
	}
	return rc == SQLITE_DONE ? -ENOENT : store_err(l, rc, "meta get");
}

int store_meta_put(struct ledger *l, const char *key, const void *v, size_t len)
{
	static const char q[] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, v, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? 0 : store_err(l, rc, "meta put");
}

int store_clear_derived(struct ledger *l)
{
	return store_exec(l, "DELETE FROM blocks; DELETE FROM bad_blocks; DELETE FROM chain;"
	                     " DELETE FROM chain_records; DELETE FROM paths;"
	                     " DELETE FROM members; DELETE FROM history; DELETE FROM invites;"
	                     " DELETE FROM epochs; DELETE FROM wraps; DELETE FROM chain_signers;"
	                     " DELETE FROM credits; DELETE FROM hosts; DELETE FROM settings;"
	                     " DELETE FROM final_block;");
}

/* SQLite's own count of the memory it holds (sqlite3_memory_used, which nothing here
 * reads) takes a process-wide mutex at every malloc and free it makes: a synced
 * block's thousand records are tens of thousands of them. Off, before SQLite is
 * initialised (else SQLite refuses, and it stays on). */
static void store_once(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* l->db on l->path with flags, and an empty statement cache. */
static int store_connect(struct ledger *l, int flags)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int rc;

	pthread_once(&once, store_once);
	l->stmt_cache = calloc(1, sizeof(struct store_cache));
	if (!l->stmt_cache)
		return -ENOMEM;
	rc = sqlite3_open_v2(l->path, &l->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = store_err(l, rc, l->path);
		sqlite3_close(l->db);
		l->db = NULL;
		return rc;
	}
	sqlite3_busy_timeout(l->db, 5000);
	return 0;
}

/* The usual page cache: a ledger's lookups and listings and a block's writes fit. */
#define CACHE_KIB 32768
/* A bulk apply's: a fresh node syncing a large drive applies a blocks message (up to
 * ~20k records) in one transaction, and every record changes a page in each index
 * keyed by a hash (record ids, content roots, infohashes, hosts), about five pages a
 * record at random places, none of which the usual cache holds once the ledger has a
 * million records. Pages that do not fit are spilled to the WAL in the middle of the
 * transaction, written again at the commit, and read back when touched again. */
#define BULK_CACHE_KIB 262144
/* The WAL's checkpoint (in pages of 4 KiB): the usual every 64 MiB (store_open), a bulk
 * apply's every 512 MiB. At a million records a blocks message's commit writes ~120 MB
 * to the WAL, nearly all of it pages of those indexes that every commit changes again,
 * and each checkpoint wrote them to the database and fsynced, with the lock held: a
 * checkpoint copies each page once, its last version, however many commits wrote it. */
#define CHECKPOINT_PAGES      16384
#define BULK_CHECKPOINT_PAGES 131072

int store_cache_bulk(struct ledger *l, bool on)
{
	int rc = store_exec(l, on ? "PRAGMA cache_size=-" STR(BULK_CACHE_KIB)
	                          : "PRAGMA cache_size=-" STR(CACHE_KIB));

	if (!rc)
		rc = store_exec(l, on ? "PRAGMA wal_autocheckpoint=" STR(BULK_CHECKPOINT_PAGES)
		                      : "PRAGMA wal_autocheckpoint=" STR(CHECKPOINT_PAGES));
	l->bulk = on && !rc;
	if (!on) {
		/* what the bulk apply left in the WAL, now, not at the next writer's commit */
		if (!l->tx_depth)
			sqlite3_wal_checkpoint_v2(l->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
			                          NULL);
		sqlite3_db_release_memory(l->db);
#ifdef __GLIBC__
		/* the pages went back to malloc, which keeps them: to the system with them
		 * (a node that synced 100k records stayed at 120 MB of heap) */
		malloc_trim(0);
#endif
	}
	return rc;
}

int store_open_readonly(struct ledger *l)
{
	int rc = store_connect(l, SQLITE_OPEN_READONLY);

	/* a scan reads each page about once: a small page cache keeps the RSS down */
	if (!rc)
		rc = store_exec(l, "PRAGMA cache_size=-4096");
	return rc;
}

int store_open(struct ledger *l, bool create)
{
	int rc = store_connect(l, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0));

	if (rc)
		return rc;
	rc = store_exec(l, "PRAGMA journal_mode=WAL");
	if (!rc)
		rc = store_exec(l, l->cfg.fast_unsafe ? "PRAGMA synchronous=OFF"
		                                      : "PRAGMA synchronous=NORMAL");
	if (!rc)
		rc = store_exec(l, "PRAGMA cache_size=-" STR(CACHE_KIB));
	/* Statement and savepoint journals in memory, not in temporary files: a synced
	 * group applies each block in a savepoint of its transaction (sync_apply.c), and
	 * the savepoint's journal keeps the first version of every page the block changes,
	 * several MiB a block; issue 13 measured that written to a temporary file and read
	 * back. A transaction's journals go with it: a crash loses nothing committed. */
	if (!rc)
		rc = store_exec(l, "PRAGMA temp_store=MEMORY");
	/* Checkpoint the WAL every 64 MiB rather than every 4 MiB (SQLite's default): a
	 * synced run of blocks or a batch of a thousand records writes several MiB a
	 * commit, so the default checkpoints (and with synchronous=NORMAL fsyncs the WAL
	 * and the database) at nearly every commit, with the ledger lock held; issue 13
	 * measured a fresh node's sync 1.5x faster in wall time with this. Commits stay
	 * atomic and a crash loses nothing committed; a power cut may lose more of the
	 * last (not yet checkpointed) commits, which NORMAL allowed already. The WAL is
	 * cut back to 64 MiB after a checkpoint so it does not keep a peak's size. */
	if (!rc)
		rc = store_exec(l, "PRAGMA wal_autocheckpoint=" STR(CHECKPOINT_PAGES));
	if (!rc)
		rc = store_exec(l, "PRAGMA journal_size_limit=67108864");
	if (!rc)
		rc = store_exec(l, schema);
	/* a ledger made before members had display names: add the column (derived
	 * state, so the names of old member records appear after a rebuild) */
	if (!rc && sqlite3_exec(l->db, "SELECT name FROM members LIMIT 0", NULL, NULL, NULL))
		rc = store_exec(l, "ALTER TABLE members ADD COLUMN name TEXT NOT NULL DEFAULT ''");
	/* likewise the mempool's authors, which the per-author quota counts */
	if (!rc && sqlite3_exec(l->db, "SELECT author FROM mempool LIMIT 0", NULL, NULL, NULL))
		rc = store_exec(l, "ALTER TABLE mempool ADD COLUMN author BLOB");
	if (!rc)
		rc = store_exec(l, "CREATE INDEX IF NOT EXISTS mempool_author ON mempool(author)");
	/* and the publish queue's sizes, which a restart checks a staged file against */
	if (!rc && sqlite3_exec(l->db, "SELECT size FROM publish_queue LIMIT 0", NULL, NULL, NULL))
		rc = store_exec(l, "ALTER TABLE publish_queue ADD COLUMN size INTEGER NOT NULL"
		                   " DEFAULT -1");
	if (!rc)
		rc = finality_open(l);
	if (!rc)
		rc = credit_open(l);
	if (!rc)
		rc = host_open(l);
	return rc;
}

int store_open_queue(struct ledger *q)
{
	int rc = store_connect(q, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	if (!rc)
		rc = store_exec(q, "PRAGMA journal_mode=WAL");
	/* as the ledger's: a commit survives the process at once, and a power cut once
	 * the WAL reaches the disk (the publish worker's syncfs, every batch) */
	if (!rc)
		rc = store_exec(q, q->cfg.fast_unsafe ? "PRAGMA synchronous=OFF"
		                                      : "PRAGMA synchronous=NORMAL");
	/* as the ledger's too: a push is a commit of a page or two, and SQLite's
	 * default checkpoint (and fsync) every 4 MiB came every few hundred files of a
	 * cp -r, up to 165 ms each with a close(2) waiting */
	if (!rc)
		rc = store_exec(q, "PRAGMA wal_autocheckpoint=16384");
	if (!rc)
		rc = store_exec(q, "PRAGMA journal_size_limit=67108864");
	if (!rc)
		rc = store_exec(q, QUEUE_TABLE);
	return rc;
}

void store_close(struct ledger *l)
{
	struct store_cache *c = cache_of(l);

	if (c)
		for (size_t i = 0; i < c->n; i++)
			sqlite3_finalize(c->e[i].st);
	free(c);
	l->stmt_cache = NULL;
	if (l->db)
		sqlite3_close(l->db);
	l->db = NULL;
}

bool store_has(struct ledger *l, const char *sql, const uint8_t key[32])
{
	sqlite3_stmt *st = store_stmt(l, sql);
	bool found;

	if (!st)
		return false;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return found;
}
