/*
 * ledger — the ownership ledger of a drive: canonical bencode, Ed25519 keys, signed
 * records, blocks, the hash chain with fork choice, its SQLite store and the sync
 * state machine. It decides which paths a drive exposes and who owns them.
 *
 * Depends on SQLite and OpenSSL (libcrypto) only; never on swarm/, cache/ or fs/.
 * Events go upward through callbacks that fs/ registers.
 *
 * Threads: a ledger handle holds its single SQLite connection behind its own lock and
 * may be called from any thread; it never calls out (log sink, change callback, sync
 * send/drop) while holding that lock. Keys are immutable once made: any thread.
 * A struct ledger_sync belongs to one ledger; its functions are "caller serialises".
 * Errors: >= 0 on success, -errno on failure. Common codes: -EINVAL (malformed input),
 * -EBADMSG (bad signature, hash or encoding: tampering), -ENOENT (no such path or
 * record), -EEXIST (path taken), -EPERM (not the owner, not a member, not a producer),
 * -ESTALE (the record cited is no longer live: a double spend), -EIO (SQLite/OpenSSL).
 */
#ifndef SWARMFS_LEDGER_H
#define SWARMFS_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LEDGER_KEY_LEN          32   /* an Ed25519 public key: a member's id */
#define LEDGER_ID_LEN           32   /* SHA-256: record, block and drive ids */
#define LEDGER_HEX_LEN          65   /* a 32-byte id as lowercase hex plus NUL */
#define LEDGER_PATH_MAX         4096 /* bytes of a normalized path, NUL excluded */
#define LEDGER_NAME_MAX         255  /* bytes of one path component */
#define LEDGER_DISPLAY_NAME_MAX 64   /* bytes of a member's display name */
#define LEDGER_EPOCH_KEY_LEN    32   /* a private drive's epoch key */
#define LEDGER_FILE_KEY_LEN     32   /* a private drive's file key (AES-256) */

/* The SQLite library version this build runs against, e.g. "3.40.1".
 * Returns a static string. Any thread. */
const char *ledger_sqlite_version(void);

/* ---- hex ---- */

/* Write 2*len lowercase hex digits and a NUL to out. Any thread. */
void ledger_hex(const uint8_t *bytes, size_t len, char *out);
/* Parse exactly 2*len hex digits (either case) of hex into out. -EINVAL otherwise,
 * out unchanged. Any thread. */
int ledger_unhex(const char *hex, uint8_t *out, size_t len);

/* SHA-256 of len bytes at p. Any thread. */
void ledger_digest(const void *p, size_t len, uint8_t out[LEDGER_ID_LEN]);

/* ---- keys: Ed25519 through OpenSSL EVP ---- */

struct ledger_key;

/* A fresh random key. Free with ledger_key_free(). Any thread. */
int ledger_key_generate(struct ledger_key **out_key);
/* The key of a 32-byte seed (RFC 8032 private key). Any thread. */
int ledger_key_from_seed(const uint8_t seed[32], struct ledger_key **out_key);
/* Load a seed file (32 raw bytes). Refuses, with -EACCES, a file that group or others
 * may read or write; -EINVAL if it is not 32 bytes. Any thread. */
int ledger_key_load(const char *path, struct ledger_key **out_key);
/* Write the seed to path with mode 0600, never replacing an existing file (-EEXIST).
 * The file is complete or absent: written to a temporary name, fsynced, linked. */
int ledger_key_save(const struct ledger_key *key, const char *path);
void ledger_key_free(struct ledger_key *key);
/* The public key, the member's id. */
void ledger_key_public(const struct ledger_key *key, uint8_t out_pub[LEDGER_KEY_LEN]);

/* ---- drive parameters, fixed in the genesis block ---- */

struct ledger_params {
	char *name;                           /* drive name, 1..255 bytes of UTF-8 */
	uint8_t admin[LEDGER_KEY_LEN];        /* signs member records and the genesis */
	uint8_t (*producers)[LEDGER_KEY_LEN]; /* initial producer set, in turn order */
	size_t n_producers;                   /* >= 1 */
	char **trackers;                      /* tracker hints (announce URLs) */
	size_t n_trackers;
	int64_t interval_s;         /* target seconds between blocks */
	int64_t grace_s;            /* delay before an out-of-turn producer may produce */
	uint32_t max_record_bytes;  /* encoded size cap of one record */
	uint32_t max_block_bytes;   /* encoded size cap of one block (header + records) */
	uint32_t max_block_records; /* records per block */
	int64_t time;               /* genesis timestamp, seconds since the epoch */
	bool private_drive;         /* members-only sync, content as ciphertext (DESIGN §9) */
};

/* Defaults for a new drive: one producer (the admin), 5 s interval, 10 s grace,
 * 4 KiB records, 4 MiB blocks, 10,000 records a block, time now. The pointers are
 * left NULL: the caller fills name, admin and producers (borrowed by ledger_create). */
void ledger_params_defaults(struct ledger_params *p);
/* Free what ledger_params_get() allocated; the struct itself is the caller's. */
void ledger_params_release(struct ledger_params *p);

/* ---- opening a drive's ledger ---- */

struct ledger;

/* Thread-safe log sink with syslog levels; the same shape every module's config has. */
typedef void (*ledger_log_fn)(int level, const char *module, const char *msg, void *ctx);
/* State changed. path is the normalized path whose live record changed (claim, update,
 * transfer, move: old and new path, revoke, mkdir), or NULL when the head block changed.
 * Called on the thread that caused the change, after the ledger lock is released; it
 * may call back into the ledger. */
typedef void (*ledger_change_fn)(const char *path, void *ctx);

struct ledger_dropped; /* below, with the records */
/* Called like ledger_change_fn: after the ledger lock is released, with change_ctx. */
typedef void (*ledger_dropped_fn)(const struct ledger_dropped *d, void *ctx);

struct ledger_config {
	const char *path;  /* ledger.db; its directory must exist */
	ledger_log_fn log; /* NULL: no logging */
	void *log_ctx;
	int log_level;              /* messages above this syslog level are dropped;
	                             * 0 means LOG_NOTICE */
	ledger_change_fn on_change; /* NULL: none */
	void *change_ctx;
	ledger_dropped_fn on_dropped; /* NULL: none; ctx is change_ctx */
	const struct ledger_key *key; /* this node's key (borrowed for the life of the
	                               * handle), or NULL for a read-only node */
	bool fast_unsafe;             /* tests/bench: synchronous=OFF (a crash may lose the
	                               * last transactions, never corrupt) */
	bool auto_produce;            /* after each local record, produce a block at once
	                               * if this node is a producer */
	bool gather_blocks;           /* with auto_produce: at once only when the head
	                               * block is from an earlier second (block times are
	                               * whole seconds and rise strictly) or a block's
	                               * worth waits; otherwise the records gather for the
	                               * block the embedder makes by calling ledger_produce
	                               * once a second: a burst of records lands in one
	                               * block a second, and the chain's clock never runs
	                               * ahead of the wall clock */
	int64_t max_future_s;         /* blocks/records dated later than now + this are
	                               * refused; 0 means 600 */
	int64_t (*now)(void *ctx);    /* clock in seconds, NULL: time(NULL); for tests */
	void *now_ctx;
};

/* Make a new drive: a genesis block from params signed with admin_key (whose public key
 * must equal params->admin), written to a new database at cfg->path (-EEXIST if it
 * exists). Returns the open handle. Any thread. */
int ledger_create(const struct ledger_config *cfg, const struct ledger_params *params,
                  const struct ledger_key *admin_key, struct ledger **out_ledger);
/* Join a drive from its genesis block (the bytes of the drive torrent's one file),
 * verified and written to a new database at cfg->path. */
int ledger_join(const struct ledger_config *cfg, const uint8_t *genesis, size_t len,
                struct ledger **out_ledger);
/* Open an existing database. The config is copied; cfg->key stays borrowed. */
int ledger_open(const struct ledger_config *cfg, struct ledger **out_ledger);
/* Close. NULL is a no-op. No other call on the handle may be running. */
void ledger_free(struct ledger *l);

/* The drive id: SHA-256 of the genesis block. Any thread. */
void ledger_drive_id(const struct ledger *l, uint8_t out_id[LEDGER_ID_LEN]);
/* The genesis parameters; release with ledger_params_release(). */
int ledger_params_get(struct ledger *l, struct ledger_params *out_params);
/* The raw genesis block (malloc'd, free with free()). */
int ledger_genesis_raw(struct ledger *l, uint8_t **out_buf, size_t *out_len);

struct ledger_head {
	uint64_t height;
	uint8_t id[LEDGER_ID_LEN];
	uint64_t weight; /* cumulative weight of the best chain */
	int64_t time;    /* timestamp of the head block */
};
int ledger_head_get(struct ledger *l, struct ledger_head *out_head);

/* ---- records and the live state ---- */

enum ledger_rec_type {
	LEDGER_REC_CLAIM = 1,
	LEDGER_REC_UPDATE,
	LEDGER_REC_TRANSFER,
	LEDGER_REC_MOVE,
	LEDGER_REC_REVOKE,
	LEDGER_REC_MKDIR,
	LEDGER_REC_MEMBER,
	LEDGER_REC_INVITE,  /* admin (or a producer, for members): an invite's public key */
	LEDGER_REC_REDEEM,  /* a joiner: redeems an invite, becomes a member */
	LEDGER_REC_KEYS,    /* admin: a new epoch, with a commitment to its key */
	LEDGER_REC_KEYWRAP, /* a member: the epoch key sealed to one member */
	LEDGER_REC_CREDIT,  /* a member: receipts for bytes it uploaded, rolled up */
	LEDGER_REC_HOST,    /* a member: it holds (or no longer holds) a content, whole */
	LEDGER_REC_SETTING, /* admin: a drive setting (the replica target) */
	LEDGER_REC_LAST = LEDGER_REC_SETTING,
};
/* "claim", "update", ...; NULL for an unknown type. */
const char *ledger_rec_type_name(enum ledger_rec_type t);

/* What a file record says about its content. */
struct ledger_content {
	uint8_t root[32]; /* BEP 52 pieces root */
	uint64_t length;  /* bytes */
	uint8_t ih2[32];  /* v2 infohash */
	uint8_t ih1[20];  /* v1 infohash of a hybrid torrent */
	bool has_ih1;
	uint32_t piece_length;
	uint32_t mode;    /* permission bits the publisher asked for */
	int64_t mtime_ns; /* nanoseconds since the epoch */
	/* A file within a torrent of several files (optional; absent = the torrent's one
	 * file): its index among the torrent's real files and its offset in the torrent's
	 * byte space. length is the file's. A v1-only torrent has no pieces root (root is
	 * zero), so these name the file; its pieces may be shared with its neighbours.
	 * The state tables do not keep them: ledger_record_content() reads them. */
	bool has_file;
	uint32_t file_index;
	uint64_t file_offset;
};

/* A record signed with this node's key left the mempool without reaching the chain: it
 * no longer applies, usually because a reorg put another member's record first (the
 * path was claimed by someone else, or the cell it cites was spent: a double spend
 * that lost). Nothing of it stays in the ledger; the embedder decides what to do with
 * the content (fs/ keeps it as a conflict copy). */
struct ledger_dropped {
	enum ledger_rec_type type;
	char path[LEDGER_PATH_MAX + 1];
	uint8_t to[LEDGER_KEY_LEN];    /* transfer */
	struct ledger_content content; /* claim/update */
	uint8_t record_id[LEDGER_ID_LEN];
	int reason; /* -errno: -EEXIST path taken, -ESTALE cited record spent, ... */
	/* claim/update on a private drive: the content's file key and its IV's nonce,
	 * unwrapped before the record left (its wrap dies with it), so that the content
	 * can be claimed again (ledger_op.file_key and .iv_nonce); wiped after the call */
	bool has_file_key;
	uint8_t file_key[LEDGER_FILE_KEY_LEN];
	int64_t iv_nonce;
};
/* The live record of a path, as the state tables say. */
struct ledger_entry {
	char name[LEDGER_NAME_MAX + 1]; /* last component ("" for the root) */
	bool is_dir;
	bool open;                 /* directory: any member may create beneath it */
	enum ledger_rec_type type; /* the type of the live record */
	uint8_t owner[LEDGER_KEY_LEN];
	struct ledger_content content; /* files; directories carry mode and mtime only */
	uint8_t record_id[LEDGER_ID_LEN];
	int64_t height; /* block height, or -1 while pending (mempool) */
};

/* The live record at path (normalized by the call), confirmed state first, then
 * records of this node still pending. -ENOENT if none, -EINVAL for a bad path.
 * Never touches the network, and does not wait for a batch of records being stored
 * (what was committed before it answers). Any thread. */
int ledger_lookup(struct ledger *l, const char *path, struct ledger_entry *out_entry);
/* Up to max children of directory dir, sorted by name (byte order), starting after
 * the name `after` (NULL or "" to start): pass the last name returned as the cursor
 * of the next page. *out_n is the number written; fewer than max means the end.
 * Confirmed state only (pending records are found by ledger_lookup, not listed): a
 * directory of this node's still pending lists as empty. -ENOENT if dir does not exist,
 * -ENOTDIR if it is a file. Any thread. */
int ledger_list(struct ledger *l, const char *dir, const char *after,
                struct ledger_entry *out_entries, size_t max, size_t *out_n);
/* A child as ledger_list_names gives it: its name and whether it is a directory. */
struct ledger_name {
	char name[LEDGER_NAME_MAX + 1];
	bool is_dir;
};
/* ledger_list's page with each child's name and kind alone, read from an index in
 * order (no record is read): for listings that need no attributes (readdir, find).
 * Same cursor, order, errors and thread context as ledger_list. */
int ledger_list_names(struct ledger *l, const char *dir, const char *after,
                      struct ledger_name *out_names, size_t max, size_t *out_n);
/* The names directly under dir that records of this node's mempool name (not in a
 * block yet: a member waiting for a producer): candidates for ledger_lookup, which
 * says what is live. Caller frees each name and *out_names. Any thread. */
int ledger_pending_children(struct ledger *l, const char *dir, char ***out_names, size_t *out_n);

/* A record to create, sign with cfg->key and submit. Fields per type:
 * claim/update: path, content; transfer: path, to (a live member, else -ENOKEY; the
 * admin may transfer a removed member's path); move: path, dest;
 * revoke: path; mkdir: path, open, content.mode, content.mtime_ns;
 * member: member, producer (role), remove. */
struct ledger_op {
	enum ledger_rec_type type;
	const char *path;
	const char *dest;
	uint8_t to[LEDGER_KEY_LEN];
	struct ledger_content content;
	bool open;
	uint8_t member[LEDGER_KEY_LEN];
	bool producer;    /* member: the role is producer, else member */
	bool remove;      /* member: remove instead of add */
	const char *name; /* member (add): display name, NULL or "" for none */
	int64_t nonce;    /* the record's nonce, 1..INT64_MAX; 0: a random one. A private
	                   * drive's new content is encrypted with an IV made of it before
	                   * the record exists, so the publisher draws it */
	/* claim/update on a private drive (ignored on a public one), one of: */
	const uint8_t *file_key; /* new content: its file key (LEDGER_FILE_KEY_LEN bytes),
	                          * the IV's nonce being iv_nonce, or op.nonce (which
	                          * must then be set) */
	int64_t iv_nonce;        /* with file_key: content encrypted under another record's
	                          * nonce (a dropped claim's conflict copy); 0: op.nonce */
	const uint8_t *key_from; /* content already on the drive (chmod, touch, a copy):
	                          * the id of a record that carries its file key */
};

/* Validate op against the current state (and this node's pending records), sign it,
 * store it durably in the mempool and, with cfg->auto_produce on a producer, produce a
 * block. The record id goes to out_id (may be NULL). -EPERM without a key or when the
 * key may not do this; -EEXIST path taken; -ENOENT nothing live at path; -ENOTDIR,
 * -ENOTEMPTY as for the syscalls. Any thread. */
int ledger_submit(struct ledger *l, const struct ledger_op *op, uint8_t out_id[LEDGER_ID_LEN]);

/* Group commit: submit n ops at once. Each is validated as ledger_submit() does, on top
 * of the state, this node's pending records and the ops before it in the batch (a
 * mkdir then claims beneath it is fine); those that hold are signed and stored in the
 * mempool in one transaction, then (auto_produce on a producer) one block is made for
 * them all, up to params.max_block_records. An op that fails does not sink the others:
 * out_rcs[i] (required) gets op i's result, 0 or the -errno ledger_submit would have
 * returned; out_ids (may be NULL) gets the record ids of those that passed. Returns how
 * many were accepted, or -errno when none could be stored (-EPERM without a key, -EIO,
 * -ENOMEM): then no op was submitted, whatever out_rcs says. Any thread; on a public
 * drive, records that cite no earlier one are signed before the ledger lock is taken,
 * on up to one thread per core (started and joined within the call). */
int ledger_submit_batch(struct ledger *l, const struct ledger_op *ops, size_t n, int *out_rcs,
                        uint8_t (*out_ids)[LEDGER_ID_LEN]);

/* Produce a block from the mempool if this node's key is a producer and may produce
 * now (in turn, or after the grace delay). Records that no longer apply are dropped
 * from the mempool. Returns 1 when a block was appended, 0 when there was nothing to
 * do (empty mempool or not yet allowed), -EPERM if not a producer. A producer on a
 * drive with several producers calls this on a timer (every params.interval_s), since
 * auto_produce only helps when it is this node's turn. With cfg.gather_blocks, 0 too
 * while the head block is from this second and less than a block's worth waits.
 * Any thread. */
int ledger_produce(struct ledger *l);

/* Number of records waiting in the mempool. */
int ledger_mempool_count(struct ledger *l);

/* One step of a path's history. */
struct ledger_log_entry {
	enum ledger_rec_type type;
	uint8_t record_id[LEDGER_ID_LEN];
	uint8_t author[LEDGER_KEY_LEN];
	int64_t height;
	int64_t time;
	char path[LEDGER_PATH_MAX + 1]; /* the record's path (move: the old one) */
	char dest[LEDGER_PATH_MAX + 1]; /* move: the new path; transfer: hex of the new
	                                 * owner; member: hex of the member; otherwise "" */
};
typedef int (*ledger_log_entry_fn)(const struct ledger_log_entry *e, void *ctx);
/* Every best-chain record that touched path (or, path NULL, every record), oldest
 * first; a move appears under both paths. fn runs without the ledger lock; a non-zero
 * return stops the walk and is returned. Any thread. */
int ledger_history(struct ledger *l, const char *path, ledger_log_entry_fn fn, void *ctx);

/* The content a file record (claim or update) says, decoded from its raw bytes in the
 * store or in this node's mempool: all of struct ledger_content, the optional fields
 * the state tables do not keep included. -ENOENT if no such record, -EINVAL if it is
 * not a file record. Any thread. */
int ledger_record_content(struct ledger *l, const uint8_t id[LEDGER_ID_LEN],
                          struct ledger_content *out_content);

/* ---- verification ---- */

/* Re-check one record from raw bytes, not from state columns: its hash, strict
 * encoding and signature; its Merkle path to its block; that block's hash and
 * producer signature; and that the block is in the best chain. 0 if all hold
 * (cached in memory by record id until the best chain changes), -EBADMSG if any fails
 * (logged at LOG_ERR), -ENOENT if the record is not in the best chain (pending or
 * unknown). Any thread. */
int ledger_verify_record(struct ledger *l, const uint8_t id[LEDGER_ID_LEN]);

struct ledger_problem {
	int64_t height; /* block height, -1 when not applicable */
	uint8_t block_id[LEDGER_ID_LEN];
	bool has_record;
	uint8_t record_id[LEDGER_ID_LEN];
	int64_t index;    /* the record's place in the block */
	const char *what; /* "record hash mismatch", ... */
};
#define LEDGER_PROBLEM_EQUIVOCATION "equivocation: its producer signed two blocks at this height"
typedef void (*ledger_problem_fn)(const struct ledger_problem *p, void *ctx);
/* Walk the whole best chain from genesis, from raw bytes: every block's hash,
 * encoding, signature, height, link and Merkle root, every record's hash, encoding,
 * signature and size. (The state rules were checked when each block was applied;
 * ledger_rebuild() checks them again by replay.) Each problem is reported through fn
 * (may be NULL), on the calling thread, once the walk is over. It reads through a
 * second, query-only connection to the database and never takes the ledger's lock,
 * so every other call goes on meanwhile (a walk of a big chain takes minutes); the
 * chain it walks is the one at its start, cut short by a reorg to a shorter chain, and
 * relinked where a reorg replaced the blocks below. Equivocation evidence (two blocks signed by one
 * producer at one height, re-checked from their raw headers) is reported as a problem too, with
 * what = LEDGER_PROBLEM_EQUIVOCATION and the second block's id and height.
 * Returns the number of problems (0: clean), -EINTR after
 * ledger_interrupt(), or -errno. Any thread; calls on one ledger may overlap. */
int ledger_verify_chain(struct ledger *l, ledger_problem_fn fn, void *ctx);
/* Make a running or later ledger_verify_chain stop soon with -EINTR (an unmount does not
 * wait for a sweep of a big chain). Any thread. */
void ledger_interrupt(struct ledger *l);

/* SHA-256 over the live state (paths, members, best chain) in a canonical order: two
 * ledgers with the same best chain give the same digest. */
int ledger_state_digest(struct ledger *l, uint8_t out[LEDGER_ID_LEN]);

/* Throw away the derived tables and rebuild them by replaying every stored block.
 * Returns the resulting height. */
int ledger_rebuild(struct ledger *l);

/* ---- finality (DESIGN.md §10) ---- */

struct ledger_finality {
	uint64_t height; /* the highest final block of the best chain: no reorg
	                  * will ever undo it or anything below it */
	uint8_t id[LEDGER_ID_LEN];
	bool conflict;            /* a peer offered a branch, final by its own producers,
	                           * that conflicts with our final block (we kept ours) */
	uint64_t conflict_height; /* the first such branch's tip */
	uint8_t conflict_id[LEDGER_ID_LEN];
	uint64_t evidence; /* pairs of blocks one producer signed at one height */
};
/* Where finality stands. Any thread. */
int ledger_finality_get(struct ledger *l, struct ledger_finality *out);

/* ---- raw blocks (sync, tools, tests) ---- */

/* The block at height on the best chain, encoded as sent on the wire: a dict with
 * the signed header and the records. malloc'd, free with free(). */
int ledger_block_get(struct ledger *l, uint64_t height, uint8_t **out_buf, size_t *out_len);
/* Verify and add a block (as ledger_block_get gives it). Returns 1 if it changed the
 * head (extend or reorg), 0 if stored on a side chain or already known, -ENOENT if its
 * parent is unknown, -EBADMSG/-EPERM/-EINVAL/-ESTALE/-EEXIST/-ENOKEY if invalid, -EPERM
 * too for a branch that would undo a final block (it is refused for good), -EAGAIN for
 * an out-of-turn block whose grace delay has not passed by this node's clock yet (not
 * invalid: it may come again). Block times must rise strictly. A second block one
 * producer signed at one height is kept as evidence (ledger_verify_chain lists it). */
int ledger_block_import(struct ledger *l, const uint8_t *buf, size_t len);

/* ---- durable publish queue ----
 * In a SQLite file of its own beside the ledger's (ledger.queue.db beside ledger.db),
 * with its own connection and lock: these calls never wait for the ledger's lock (a
 * batch of records being stored), nor it for them. The file is made at the first
 * call, and the items an older version kept in ledger.db move into it then. Any
 * thread. */

struct ledger_queue_item {
	int64_t id;
	char path[LEDGER_PATH_MAX + 1];    /* destination in the drive */
	char staging[LEDGER_PATH_MAX + 1]; /* the staged file on disk */
	int attempts;
	char error[256]; /* last failure, "" if none */
	int64_t size;    /* the staged file's size when it was last closed; -1: not known */
};
/* Append a job (size: the staged file's size as its writer closed it, or -1); its id to
 * *out_id (may be NULL). Committed on return: it survives the process (a crash, kill
 * -9), and a power failure once SQLite's WAL reaches the disk (synchronous=NORMAL). */
int ledger_queue_push(struct ledger *l, const char *path, const char *staging, int64_t size,
                      int64_t *out_id);
/* The staged file of a queued job was written again and closed at this size.
 * -ENOENT if not queued. */
int ledger_queue_resize(struct ledger *l, int64_t id, int64_t size);
/* The oldest job. -ENOENT when the queue is empty. */
int ledger_queue_peek(struct ledger *l, struct ledger_queue_item *out_item);
/* Remove a finished job. -ENOENT if not queued. */
int ledger_queue_done(struct ledger *l, int64_t id);
/* Remove n finished jobs in one transaction (a publish batch: one commit, not n).
 * Returns 0, or -errno (then none was removed). Ids not queued are skipped. */
int ledger_queue_done_batch(struct ledger *l, const int64_t *ids, size_t n);
/* Record a failure (the job stays queued, moved behind the others). */
int ledger_queue_fail(struct ledger *l, int64_t id, const char *error);
/* Copy up to max jobs, oldest first; returns how many. */
int ledger_queue_list(struct ledger *l, struct ledger_queue_item *out_items, size_t max);

/* ---- credit: receipts for bytes uploaded (DESIGN §11) ---- */

/* A receipt is a canonical dict (bytes, down, drive, ih, seq, sig, up) that a downloading
 * member signs with its key under the tag "swarmfs-receipt-v1\0", for bytes its
 * libtorrent received from the member `up` on the torrent `ih`. The uploader rolls the
 * receipts it got into `credit` records: the receipts as signed, their ids (SHA-256 of
 * each) Merkle-committed, and the bytes per downloader. Producers check every receipt
 * again: signed by a live member, for this drive, to the record's author, never by the
 * author itself, counted once in the chain, and the totals exactly their sum. */
#define LEDGER_RECEIPT_MAX       320         /* bytes of one encoded receipt */
#define LEDGER_RECEIPT_MAX_BYTES (1ll << 30) /* bytes one receipt may vouch for */
#define LEDGER_CREDIT_RECEIPTS   10          /* receipts one credit record carries */

/* Sign a receipt, as this node (the downloader), for bytes (1..LEDGER_RECEIPT_MAX_BYTES)
 * received from the member up on the torrent ih (v2 infohash, or v1 zero-padded). The
 * caller only passes what libtorrent counted from that peer and has not receipted yet.
 * Sequence numbers rise (microseconds, monotonic in this handle). *out malloc'd.
 * -EPERM without a key, -EINVAL for bytes out of range or up == this node. Any thread. */
int ledger_receipt_make(struct ledger *l, const uint8_t up[LEDGER_KEY_LEN],
                        const uint8_t ih[LEDGER_ID_LEN], int64_t bytes, uint8_t **out,
                        size_t *out_len);
/* The uploader's side: verify a receipt (strict encoding, this drive, up = this node,
 * signed by down, down a live member other than this node, bytes in range) and keep it
 * (durably) for the next credit record. 0 when kept; -EEXIST when it was kept or counted
 * already (a replay); -EBADMSG forged or malformed; -EPERM its signer is no member or is
 * this node; -ENOENT addressed to another member. Any thread. */
int ledger_receipt_accept(struct ledger *l, const uint8_t *buf, size_t len);
/* Roll the receipts kept and not yet in the chain or the mempool into credit records
 * (LEDGER_CREDIT_RECEIPTS at most each), when there are at least `batch` of them or the
 * oldest was kept min_age_s ago or more. Returns the number of records queued. Any thread. */
int ledger_credit_roll(struct ledger *l, int batch, int64_t min_age_s);
/* Receipts kept and not yet rolled into a record of the chain or the mempool. */
int ledger_credit_unrolled(struct ledger *l);

struct ledger_credit {
	uint8_t member[LEDGER_KEY_LEN];
	uint64_t uploaded;   /* bytes other members' receipts in the chain vouch it sent */
	uint64_t downloaded; /* bytes it vouched, in receipts in the chain, it received */
};
/* Per member (live members first, in ledger_members order, then anyone else with
 * credit), from the best chain. *out malloc'd (free with free()). Any thread. */
int ledger_credit_list(struct ledger *l, struct ledger_credit **out, size_t *out_n);

/* ---- hosting: who holds a full copy of what (DESIGN §11) ---- */

/* A `host` record is a live member's signed claim that it holds a full copy of a
 * content (op "add") or no longer does (op "remove"). It names the content, not a path
 * (a move keeps it): the key of ledger_content_key. A producer takes it when its author
 * is a live member, a live file has that content, and it changes the author's claim
 * (a duplicate is -EEXIST; a replay of the same record -EALREADY, like any record).
 * The author of a claim or update holds its content implicitly (it published it and
 * keeps it pinned) until it says otherwise. Holders are counted among live members
 * only: a removed member's claims stay in the chain and count for nothing.
 * A `setting` record (the admin's alone) sets the drive's replica target, the number
 * of holders each file should have: LEDGER_REPLICAS_DEFAULT until one is set. */
#define LEDGER_REPLICAS_DEFAULT 2 /* one machine's loss leaves every file readable */
#define LEDGER_REPLICAS_MAX     64

/* The key a content is hosted under: its BEP 52 pieces root, or for a v1-only torrent
 * (no pieces root) its v1 infohash zero-padded, else its v2 infohash. Pure; any thread. */
void ledger_content_key(const struct ledger_content *c, uint8_t out[LEDGER_ID_LEN]);
/* Submit this node's host claim for the content key (held) or its withdrawal (!held).
 * -EPERM without a key or not a live member, -ENOENT no live file has that content,
 * -EEXIST the claim already says so. Any thread. */
int ledger_host_claim(struct ledger *l, const uint8_t key[LEDGER_ID_LEN], bool held);
/* The live members holding content key (claims and publishers), *out malloc'd (free
 * with free()), *out_n of them. Any thread. */
int ledger_holders(struct ledger *l, const uint8_t key[LEDGER_ID_LEN],
                   uint8_t (**out)[LEDGER_KEY_LEN], size_t *out_n);
/* The drive's replica target (LEDGER_REPLICAS_DEFAULT when never set). Any thread. */
int64_t ledger_replicas(struct ledger *l);
/* Set it (1..LEDGER_REPLICAS_MAX): a setting record. -EPERM not the admin (or no key),
 * -EINVAL out of range, -EEXIST it is that already. Any thread. */
int ledger_replicas_set(struct ledger *l, int64_t n);

struct ledger_health {
	char *path;                    /* malloc'd, normalized */
	struct ledger_content content; /* root, length, ih2, ih1, piece length */
	uint8_t key[LEDGER_ID_LEN];    /* ledger_content_key */
	uint32_t holders;              /* live members holding it */
	bool mine;                     /* this node's key is one of them */
};
/* Every live file with content (empty files need no holder), the fewest holders first
 * (most needed), then by path; with under_only, only those below the replica target.
 * At most max entries (0: no limit). Free with ledger_health_free. Any thread: it
 * reads through a second, query-only connection and never takes the ledger's lock
 * (a big drive's list takes seconds), so it sees the last committed state. */
int ledger_health_list(struct ledger *l, bool under_only, size_t max, struct ledger_health **out,
                       size_t *out_n);
/* Only the live files with content that no live member holds, by path (holders 0,
 * mine false): what the last-copy sweep looks at, without counting the holders of
 * every file. *out_head (unless NULL): the head the list is of (one read transaction;
 * the writer's connection may hold blocks not yet committed, which this connection
 * does not see). The same connection, thread context and errors as
 * ledger_health_list. */
int ledger_health_orphans(struct ledger *l, struct ledger_head *out_head,
                          struct ledger_health **out, size_t *out_n);
/* The orphans a scan at since (a head with no orphan, from ledger_head_get or an
 * earlier call) would miss now, without a scan of every file: those claimed or updated
 * after since with no live holder. *out_head is the head the answer is of (one
 * snapshot). -ESTALE when only a whole scan can tell: since is no block of this chain
 * (a reorg or another drive), or a member was removed or a claim withdrawn after it;
 * -EIO, -ENOMEM. The same connection and thread context as ledger_health_list. */
int ledger_health_orphans_since(struct ledger *l, const struct ledger_head *since,
                                struct ledger_head *out_head, struct ledger_health **out,
                                size_t *out_n);
void ledger_health_free(struct ledger_health *v, size_t n);

/* ---- members, invites and epoch keys (private drives, DESIGN §9) ---- */

/* Whether the drive is private (its genesis says so). Any thread. */
bool ledger_is_private(const struct ledger *l);
/* key's role at the current head: 2 producer, 1 member (the admin always), 0 none.
 * Any thread. */
int ledger_member_role(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN]);

struct ledger_member {
	uint8_t key[LEDGER_KEY_LEN];
	bool producer;
	bool admin;
	char name[LEDGER_DISPLAY_NAME_MAX + 1]; /* display name, "" if none */
	int64_t since;                          /* height of the record that made the role */
};
/* The live members, the admin first, then in the order they joined. *out malloc'd
 * (free with free()). Any thread. */
int ledger_members(struct ledger *l, struct ledger_member **out, size_t *out_n);
/* The display name of key, "" when it has none or is not a member. Any thread. */
void ledger_member_name(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN],
                        char out[LEDGER_DISPLAY_NAME_MAX + 1]);
/* Whether the name is acceptable as a display name: 1..64 bytes of UTF-8 without
 * control characters. */
bool ledger_display_name_ok(const char *name);

#define LEDGER_INVITE_SECRET_LEN 32
/* The invite key of a one-time secret (an Ed25519 key whose seed is a hash of the
 * secret): the invite record holds its public key, and the joiner signs with it. */
int ledger_invite_key(const uint8_t secret[LEDGER_INVITE_SECRET_LEN], struct ledger_key **out_key);
/* Make an invite: a fresh secret (to out_secret, for the URI) whose public key goes on
 * the ledger in an invite record, valid until expires (seconds since the epoch), for a
 * producer or a member, with an optional display name. The admin may invite either; a
 * producer may invite members. -EPERM otherwise. Any thread. */
int ledger_invite_create(struct ledger *l, bool producer, int64_t expires, const char *name,
                         uint8_t out_secret[LEDGER_INVITE_SECRET_LEN]);
/* Whether the invite with public key ikey can be redeemed at time now: 0 yes, -ENOENT not
 * on the ledger (yet), -ESTALE used, -EKEYEXPIRED expired. role: 2 producer, 1 member
 * (may be NULL). Any thread. */
int ledger_invite_status(struct ledger *l, const uint8_t ikey[LEDGER_KEY_LEN], int64_t now,
                         int *out_role);
/* Redeem an invite with this node's key: a redeem record signed by the invite key. Errors
 * as ledger_invite_status, and -EEXIST when this key is a member already. Any thread. */
int ledger_invite_redeem(struct ledger *l, const uint8_t secret[LEDGER_INVITE_SECRET_LEN]);

/* Start a new epoch (admin of a private drive): a fresh random epoch key, a keys record
 * with the commitment to it, and a keywrap record sealing it to every live member.
 * Returns the new epoch number. -EPERM if not the admin, -EINVAL on a public drive. */
int ledger_epoch_rotate(struct ledger *l);
/* Seal each epoch key this node holds (the current one first, then the older ones) to
 * every live member that has no wrap of it yet (a member that joined by invite): a
 * newcomer reads what the drive held before it came; a removed member is no longer
 * live and gets nothing. Returns the number of wraps submitted (0: nothing to do).
 * Any thread. */
int ledger_keys_tend(struct ledger *l);
/* The epoch key of epoch (0: the current one) as sealed to this node's key and checked
 * against the admin's commitment; its number to *out_epoch (may be NULL). -ENOKEY when no
 * valid wrap for this node exists (yet), -ENOENT when there is no such epoch. The key
 * is the caller's to wipe. Any thread. */
int ledger_epoch_key(struct ledger *l, int64_t epoch, uint8_t out_key[LEDGER_EPOCH_KEY_LEN],
                     int64_t *out_epoch);

/* The file key of a private drive's content and the nonce of its IV, from the record
 * id (a claim or update carrying the wrap; a move or transfer leads back to one), in
 * the chain or this node's mempool: unwrapped with the epoch key sealed to this node.
 * The key is the caller's to wipe. -ENOENT no such record, -EINVAL a public drive's or
 * a directory's, -ENOKEY this node holds no key of that epoch (not a member then, or
 * removed before it), -EBADMSG the wrap does not open (altered). Any thread. */
int ledger_file_key_open(struct ledger *l, const uint8_t record_id[LEDGER_ID_LEN],
                         uint8_t out_key[LEDGER_FILE_KEY_LEN], int64_t *out_nonce);

/* ---- the members-only channel: handshake and sealed messages (handshake.c) ---- */

/* One connection's handshake and, after it, its sealed channel (DESIGN §9). The sync
 * state machine uses one per peer on a private drive; a joiner that has no ledger yet
 * uses one directly to be served the genesis block. Caller serialises. */
struct ledger_hs;
struct ledger_hs_peer {
	uint8_t key[LEDGER_KEY_LEN];    /* the member key the peer proved */
	bool has_invite;                /* it also proved an invite's secret: */
	uint8_t invite[LEDGER_KEY_LEN]; /* that invite's public key */
};
/* A handshake for drive, proving key (borrowed for the life of h) and, when
 * invite_secret is not NULL, that invite (LEDGER_INVITE_SECRET_LEN bytes). */
int ledger_hs_new(const uint8_t drive[LEDGER_ID_LEN], const struct ledger_key *key,
                  const uint8_t *invite_secret, struct ledger_hs **out);
void ledger_hs_free(struct ledger_hs *h); /* wipes the keys; NULL is a no-op */
/* The hello to send first (plain: an ephemeral key). *out malloc'd. */
int ledger_hs_hello(struct ledger_hs *h, uint8_t **out, size_t *out_len);
/* Whether a received message is plain (a hello) rather than sealed. */
bool ledger_hs_is_hello(const uint8_t *buf, size_t len);
/* The peer's hello: derives the session keys and gives the sealed auth to send (*out,
 * malloc'd). -EBADMSG for a malformed or second hello. */
int ledger_hs_on_hello(struct ledger_hs *h, const uint8_t *buf, size_t len, uint8_t **out,
                       size_t *out_len);
/* The peer's sealed auth: 0 when its signatures over this handshake's transcript hold;
 * who it is is then ledger_hs_peer(h), for the caller to judge (a live member? a usable
 * invite?). -EBADMSG for anything wrong (forged, replayed, reordered, altered). */
int ledger_hs_on_auth(struct ledger_hs *h, const uint8_t *box, size_t len);
bool ledger_hs_established(const struct ledger_hs *h);
const struct ledger_hs_peer *ledger_hs_peer(const struct ledger_hs *h); /* NULL before */
/* Seal a message for the peer / open one from it (after on_hello). *out malloc'd. Each
 * direction counts its messages: opening fails (-EBADMSG) for anything not the next
 * message exactly as sealed. */
int ledger_hs_seal(struct ledger_hs *h, const uint8_t *msg, size_t len, uint8_t **out,
                   size_t *out_len);
int ledger_hs_open(struct ledger_hs *h, const uint8_t *box, size_t len, uint8_t **out,
                   size_t *out_len);

/* ---- sync: the transport-agnostic state machine ---- */

/* What the transport (a BEP 10 extension in fs/) does for the state machine. Called
 * without the ledger lock held, on the thread that called into ledger_sync. */
struct ledger_sync_ops {
	/* Queue bytes (a complete message, borrowed for the call) to peer. */
	void (*send)(uint64_t peer, const uint8_t *buf, size_t len, void *ctx);
	/* Disconnect peer: it sent invalid or oversized data (ban: it misbehaved, keep it
	 * out for the session), or it was refused (not a member: no ban, it may be
	 * admitted later). */
	void (*drop)(uint64_t peer, const char *why, bool ban, void *ctx);
};

struct ledger_sync;

#define LEDGER_SYNC_MAX_MSG  (8u << 20) /* bytes of one message, any type */
#define LEDGER_MEMPOOL_MAX   100000     /* records taken from peers while this many wait */
#define LEDGER_MEMPOOL_QUOTA 20000      /* ... or while this many of one author wait */
#define LEDGER_SYNC_BATCH    256        /* blocks asked for at once */

/* A sync state machine over l (borrowed; it must outlive the sync). */
int ledger_sync_new(struct ledger *l, const struct ledger_sync_ops *ops, void *ctx,
                    struct ledger_sync **out_sync);
void ledger_sync_free(struct ledger_sync *s);
/* Seconds a private drive's peer that is not a member at our head may stay connected
 * (we may be behind and it a member we do not know yet) without giving us a block we
 * lacked before it is refused (counted while this node is a member at its own head);
 * it is refused sooner once we have caught up with it.
 * Also how long "not a member" refusals of this node, a member at its own head, by one
 * peer (behind us) are only logged as a notice before they are warned of. */
#define LEDGER_SYNC_PROVISIONAL_S 30
/* Prove this invite (LEDGER_INVITE_SECRET_LEN bytes, copied) in the handshakes of a
 * private drive, until this node is a member; NULL forgets it. */
void ledger_sync_set_invite(struct ledger_sync *s, const uint8_t *secret);
/* A peer of this drive connected: send it our status (private drives: our hello; the
 * status follows a handshake that admits it). */
int ledger_sync_peer_connected(struct ledger_sync *s, uint64_t peer);
/* The peer is gone; forget it. */
void ledger_sync_peer_gone(struct ledger_sync *s, uint64_t peer);
/* A complete message from peer. Invalid or oversized data drops the peer (ops->drop)
 * and returns -EBADMSG; otherwise 0. */
int ledger_sync_message(struct ledger_sync *s, uint64_t peer, const uint8_t *buf, size_t len);
/* Tell every peer our status and gossip the mempool; call after local records, after
 * producing and on a timer. */
int ledger_sync_announce(struct ledger_sync *s);

struct ledger_sync_progress {
	size_t peers;         /* connected sync peers (private drives: trusted ones) */
	uint64_t best_height; /* the highest head any peer announced */
	bool behind;          /* some peer announced a heavier chain than ours */
	char refused[128];    /* the last reason a peer gave for refusing us, "" if none
	                       * or if a peer admitted us since (sent us its status) */
};
/* Where syncing stands, from the peers' last status messages. */
int ledger_sync_progress(struct ledger_sync *s, struct ledger_sync_progress *out);
/* The member key of a trusted peer of a private drive's channel: 0, or -ENOENT (no such
 * peer, not through its handshake, not trusted, or it has not admitted us yet: no status
 * from it). */
int ledger_sync_peer_key(struct ledger_sync *s, uint64_t peer, uint8_t out[LEDGER_KEY_LEN]);
/* Send a receipt (from ledger_receipt_make) to peer, its uploader, as a "receipt"
 * message on the sealed channel; the uploader keeps it with ledger_receipt_accept.
 * -ENOENT when peer is not a trusted peer of a private drive or has not admitted us yet
 * (it would refuse us for the receipt; the caller keeps the bytes for a later one). */
int ledger_sync_send_receipt(struct ledger_sync *s, uint64_t peer, const uint8_t *receipt,
                             size_t len);

#ifdef __cplusplus
}
#endif
#endif
