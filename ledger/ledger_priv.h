/*
 * ledger internals shared by the files of ledger/. Not part of the public API.
 * Threads: everything here is "caller serialises" unless it says otherwise; functions
 * taking a struct ledger expect its lock held (suffix _locked where it matters).
 */
#ifndef SWARMFS_LEDGER_PRIV_H
#define SWARMFS_LEDGER_PRIV_H

#ifndef SWARMFS_LEDGER_BUILD
#error "ledger_priv.h is private to ledger/"
/* host.c: host claims and drive settings (DESIGN §11). */
int host_open(struct ledger *l); /* its tables */
int host_check(struct ledger *l, const struct rec *r);
int host_apply(struct ledger *l, const struct rec *r, int64_t height);
/* A claim or update r applied: its author holds its content from now on. */
int host_on_content(struct ledger *l, const struct rec *r, int64_t height);
int setting_check(struct ledger *l, const struct rec *r);
int setting_apply(struct ledger *l, const struct rec *r, int64_t height);

#endif

#include "ledger.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <syslog.h>

/* ---- canonical bencode (bencode.c) ---- */

struct ben_limits {
	size_t max_len;     /* bytes of the whole value */
	unsigned max_depth; /* nesting of lists and dicts */
	size_t max_elems;   /* values in total, containers included */
};

/* A span of valid, canonical bencode (one complete value). */
struct ben {
	const uint8_t *p;
	size_t len;
};

/* Strictly check that buf is exactly one canonical value within the limits: sorted
 * unique dict keys, integers without leading zeros or -0, string lengths likewise,
 * nothing after the value. 0 or -EBADMSG (-EMSGSIZE beyond max_len). */
int ben_check(const uint8_t *buf, size_t len, const struct ben_limits *lim);

/* Accessors over checked spans; they never read outside the span. */
char ben_type(struct ben v); /* 'i', 's', 'l', 'd' */
bool ben_int(struct ben v, int64_t *out);
bool ben_str(struct ben v, const uint8_t **out_p, size_t *out_len);
bool ben_dict_get(struct ben dict, const char *key, struct ben *out);
/* Iterate a list (or a dict: key, value, key, value...). */
struct ben_iter {
	const uint8_t *p, *end;
};
bool ben_iter_init(struct ben v, struct ben_iter *it);
bool ben_iter_next(struct ben_iter *it, struct ben *out);
/* Convenience: dict field of an exact type. */
bool ben_get_int(struct ben dict, const char *key, int64_t *out);
bool ben_get_bytes(struct ben dict, const char *key, const uint8_t **p, size_t *len);
bool ben_get_fixed(struct ben dict, const char *key, uint8_t *out, size_t len);

/* Encoder into a growing buffer. Errors stick in err (-ENOMEM, or -EINVAL when a dict
 * key is not strictly greater than the one before: the output is canonical or fails). */
#define BEN_MAX_DEPTH 32
struct ben_buf {
	uint8_t *p;
	size_t len, cap;
	int err;
	unsigned depth;
	/* per open dict: offset and length of the last key written, or SIZE_MAX */
	size_t last_key[BEN_MAX_DEPTH], last_key_len[BEN_MAX_DEPTH];
	bool is_dict[BEN_MAX_DEPTH];
};
void ben_buf_init(struct ben_buf *b);
void ben_buf_release(struct ben_buf *b);
void ben_put_int(struct ben_buf *b, int64_t v);
void ben_put_str(struct ben_buf *b, const void *p, size_t len);
void ben_put_cstr(struct ben_buf *b, const char *s);
void ben_put_raw(struct ben_buf *b, const void *p, size_t len); /* pre-encoded value */
void ben_put_key(struct ben_buf *b, const char *key);           /* inside a dict, sorted */
void ben_dict_begin(struct ben_buf *b);
void ben_list_begin(struct ben_buf *b);
void ben_end(struct ben_buf *b);

/* ---- crypto (keys.c) ---- */

struct ledger_key {
	uint8_t seed[32];
	uint8_t pub[32];
};
void ledger_sha256(const void *p, size_t len, uint8_t out[32]);
int ledger_random(void *out, size_t len);
/* Sign tag || msg (tag includes its NUL). */
int ledger_key_sign(const struct ledger_key *k, const char *tag, size_t tag_len, const uint8_t *msg,
                    size_t len, uint8_t out_sig[64]);
/* true if sig is pub's signature over tag || msg (seal_verify: small-order and
 * non-canonical keys and R refused). */
bool ledger_sig_verify(const uint8_t pub[32], const char *tag, size_t tag_len, const uint8_t *msg,
                       size_t len, const uint8_t sig[64]);
/* What a signature check may skip: record ids a parallel pass checked already; caller
 * serialises (the ledger lock). */
struct ledger_pk_cache;
int ledger_pk_cache_new(struct ledger_pk_cache **out);
void ledger_pk_cache_free(struct ledger_pk_cache *c);
/* Record ids whose signatures were checked by a parallel pass (ledger_preverify): their
 * rec_decode skips the check. Set replaces the set; clear empties it. */
int ledger_pk_cache_preverified_set(struct ledger_pk_cache *c, const uint8_t (*ids)[32], size_t n);
bool ledger_pk_cache_preverified(const struct ledger_pk_cache *c, const uint8_t id[32]);
void ledger_pk_cache_preverified_clear(struct ledger_pk_cache *c);
/* Signature over a canonical dict carrying "sig": the dict's bytes without the
 * "3:sig64:<sig>" entry are what was signed (canonical encoding makes that splice
 * exact, so nothing is ever re-encoded). */
bool ledger_dict_sig_verify(struct ben dict, const uint8_t pub[32], const char *tag,
                            size_t tag_len);

#define LEDGER_REC_TAG     "swarmfs-record-v1"
#define LEDGER_REDEEM_TAG  "swarmfs-redeem-v1" /* invite key signs drive || joiner key */
#define LEDGER_INVITE_TAG  "swarmfs-invite-v1" /* seed of the invite key: H(tag || secret) */
#define LEDGER_EPOCH_TAG   "swarmfs-epoch-v1"  /* commitment: H(tag || drive || epoch || key) */
#define LEDGER_BLOCK_TAG   "swarmfs-block-v1"
#define LEDGER_RECEIPT_TAG "swarmfs-receipt-v1" /* a downloader signs a receipt */
#define LEDGER_TAG_LEN(t)  (sizeof(t))          /* includes the NUL, as the design says */

/* ---- libsodium (seal.c) ---- */

#define LEDGER_KX_PK         32
#define LEDGER_KX_SK         32
#define LEDGER_SESSION_KEY   32
#define LEDGER_SEAL_OVERHEAD 48 /* crypto_box_SEALBYTES */
#define LEDGER_AEAD_TAG      16
#define LEDGER_AEAD_NONCE    12
#define LEDGER_WRAP_LEN      (LEDGER_EPOCH_KEY_LEN + LEDGER_SEAL_OVERHEAD)
/* A file key wrapped under an epoch key (filekey.c): AEAD nonce, then the sealed
 * file key and the nonce of the content's IV (8 bytes, big-endian), then the tag. */
#define LEDGER_FILE_WRAP_LEN (LEDGER_AEAD_NONCE + LEDGER_FILE_KEY_LEN + 8 + LEDGER_AEAD_TAG)

int seal_init(void);
void seal_wipe(void *p, size_t len);
/* Ed25519 (libsodium; keys.c signs and verifies through these). seal_sign: the
 * signature of msg by the key of seed and its public key pub; 0 or -EIO. seal_verify:
 * whether sig is pub's over msg, refusing small-order and non-canonical keys and R and
 * S >= L. Any thread. */
int seal_sign(const uint8_t seed[32], const uint8_t pub[32], const uint8_t *msg, size_t len,
              uint8_t out_sig[64]);
/* The Ed25519 public key of seed (RFC 8032). 0 or -EIO. */
int seal_public_of_seed(const uint8_t seed[32], uint8_t out_pub[32]);
bool seal_verify(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t sig[64]);
/* Seal msg (len bytes) to the X25519 twin of the Ed25519 key member: out gets
 * len + LEDGER_SEAL_OVERHEAD bytes. -EINVAL if member has no twin. */
int seal_box(const uint8_t member[32], const uint8_t *msg, size_t len, uint8_t *out);
/* Open a sealed box with key's X25519 twin: out gets len - LEDGER_SEAL_OVERHEAD bytes.
 * -EBADMSG if it was not sealed to key or was altered. */
int seal_box_open(const struct ledger_key *key, const uint8_t *box, size_t len, uint8_t *out);
int seal_kx_keypair(uint8_t pk[LEDGER_KX_PK], uint8_t sk[LEDGER_KX_SK]);
/* Session keys of a crypto_kx exchange; client is the side whose role is "client". */
int seal_kx_session(bool client, const uint8_t pk[LEDGER_KX_PK], const uint8_t sk[LEDGER_KX_SK],
                    const uint8_t peer_pk[LEDGER_KX_PK], uint8_t rx[LEDGER_SESSION_KEY],
                    uint8_t tx[LEDGER_SESSION_KEY]);
/* ChaCha20-Poly1305 (IETF): out gets len + LEDGER_AEAD_TAG bytes; open: len - TAG bytes,
 * -EBADMSG when the tag fails (altered, wrong key, wrong nonce, wrong ad). */
int seal_aead(const uint8_t key[32], const uint8_t nonce[LEDGER_AEAD_NONCE], const uint8_t *ad,
              size_t ad_len, const uint8_t *msg, size_t len, uint8_t *out);
int seal_aead_open(const uint8_t key[32], const uint8_t nonce[LEDGER_AEAD_NONCE], const uint8_t *ad,
                   size_t ad_len, const uint8_t *box, size_t len, uint8_t *out);

/* One connection's handshake and channel (handshake.c); here so that the white-box
 * suites can forge what a hostile peer would send. */
struct ledger_hs {
	uint8_t drive[32];
	const struct ledger_key *key; /* borrowed */
	struct ledger_key *invite;    /* owned copy, or NULL */
	uint8_t epk[LEDGER_KX_PK], esk[LEDGER_KX_SK];
	uint8_t peer_epk[LEDGER_KX_PK];
	bool have_hello, established, client;
	uint8_t rx[LEDGER_SESSION_KEY], tx[LEDGER_SESSION_KEY];
	uint64_t rx_n, tx_n;
	uint8_t th[32];
	struct ledger_hs_peer peer;
};

/* ---- Merkle tree, RFC 6962 / 9162 (merkle.c) ---- */

void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[32]);
void merkle_node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/* Root of n leaf hashes (n == 0: SHA-256 of ""). -ENOMEM. */
int merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32]);
/* Root over record ids: each id is a leaf's data, hashed with the 0x00 prefix. */
int merkle_root_of_ids(const uint8_t (*ids)[32], size_t n, uint8_t out[32]);
/* Inclusion proof of leaf i in the tree of the first n leaves; *out_n hashes into
 * out (room for 64). */
int merkle_inclusion_proof(const uint8_t (*leaves)[32], size_t n, size_t i, uint8_t (*out)[32],
                           size_t *out_n);
bool merkle_inclusion_verify(const uint8_t leaf[32], uint64_t i, uint64_t n,
                             const uint8_t (*proof)[32], size_t proof_n, const uint8_t root[32]);
/* Consistency proof between the trees of the first m and n leaves (m <= n). */
int merkle_consistency_proof(const uint8_t (*leaves)[32], size_t m, size_t n, uint8_t (*out)[32],
                             size_t *out_n);
bool merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t root1[32],
                               const uint8_t root2[32], const uint8_t (*proof)[32], size_t proof_n);

/* ---- records (record.c) ---- */

struct rec {
	enum ledger_rec_type type;
	uint8_t drive[32];
	uint8_t author[32];
	int64_t time;
	int64_t nonce;
	char path[LEDGER_PATH_MAX + 1];
	char dest[LEDGER_PATH_MAX + 1];         /* move */
	uint8_t prev[32];                       /* update/transfer/move/revoke */
	uint8_t to[32];                         /* transfer */
	struct ledger_content content;          /* claim/update; mkdir: mode, mtime */
	bool open;                              /* mkdir */
	uint8_t member[32];                     /* member */
	bool producer, remove;                  /* member; invite: producer */
	char name[LEDGER_DISPLAY_NAME_MAX + 1]; /* member, invite: display name or "" */
	uint8_t ikey[32];                       /* invite, redeem: the invite's public key */
	int64_t expires;                        /* invite: seconds since the epoch */
	uint8_t isig[64];                       /* redeem: the invite key's signature */
	int64_t epoch;                          /* keys, keywrap; claim/update: has_wrap */
	uint8_t commit[32];                     /* keys: commitment to the epoch key */
	uint8_t box[LEDGER_WRAP_LEN];           /* keywrap: the epoch key sealed to member */
	/* credit: the receipts as signed, commit (above) = Merkle root of their ids, and
	 * the bytes per downloader (sorted by key) */
	uint8_t rcpt[LEDGER_CREDIT_RECEIPTS][LEDGER_RECEIPT_MAX];
	uint16_t rcpt_len[LEDGER_CREDIT_RECEIPTS];
	size_t n_rcpt;
	struct {
		uint8_t key[32];
		int64_t bytes;
	} tot[LEDGER_CREDIT_RECEIPTS];
	size_t n_tot;
	bool has_wrap;                      /* claim/update on a private drive: */
	uint8_t wrap[LEDGER_FILE_WRAP_LEN]; /* its file key sealed under the epoch key */
	/* host: content.root = the content key, remove = withdrawn; setting: */
	char setting[16]; /* its name ("replicas") */
	int64_t value;
	uint8_t sig[64];
	uint8_t id[32]; /* SHA-256 of the encoding */
};

/* Normalize path into out (LEDGER_PATH_MAX + 1 bytes): a leading '/', components
 * separated by one '/', no trailing '/'; "/" is the root. Rejects invalid UTF-8, NUL,
 * C0/C1 control characters,
 * empty (except repeated slashes, which collapse), "." and ".." components and
 * components over 255 bytes: -EINVAL; over LEDGER_PATH_MAX: -ENAMETOOLONG. */
int ledger_path_normalize(const char *in, char *out);
/* The C0/C1 control character (code point) that the UTF-8 sequence at s starts with,
 * or -1 (names with them are refused: they would forge log lines and inject terminal
 * escapes). ledger_path_first_ctrl: the first in a NUL-terminated path, or -1. */
int ledger_path_ctrl(const unsigned char *s);
int ledger_path_first_ctrl(const char *path);
/* True if path is already in normal form (what records must carry). */
bool ledger_path_is_normal(const char *path);
/* Split a normal path: parent into out_parent, returns pointer to the last component
 * inside path. The root's parent is "" and its name "". */
const char *ledger_path_split(const char *path, char *out_parent);

/* Whether records of type t name a path (member, invite, redeem, keys, keywrap do not). */
bool rec_has_path(enum ledger_rec_type t);

/* Encode and sign r (author = key's public key); fills r->sig and r->id and returns
 * the encoding in *out (caller frees with free()). */
int rec_sign(struct rec *r, const struct ledger_key *key, uint8_t **out, size_t *out_len);
/* Decode a record strictly and verify its hash and signature (keys through c, which
 * may be NULL): r->id is SHA-256 of buf. -EBADMSG for anything wrong, -EMSGSIZE over
 * max_len. */
int rec_decode(struct ledger_pk_cache *c, const uint8_t *buf, size_t len, size_t max_len,
               struct rec *r);
/* Same without the signature check (the caller checked it before). */
int rec_parse(const uint8_t *buf, size_t len, size_t max_len, struct rec *r);

/* ---- blocks (block.c) ---- */

struct blk_hdr {
	int64_t version;
	uint8_t drive[32]; /* zero in genesis */
	int64_t height;
	uint8_t prev[32]; /* zero in genesis */
	uint8_t root[32]; /* Merkle root of the record ids */
	int64_t n_records;
	int64_t time;
	uint8_t producer[32];
	int64_t weight; /* 0 in genesis, else 1 or 2 */
	uint8_t sig[64];
	uint8_t id[32];    /* SHA-256 of the signed header encoding */
	struct ben params; /* genesis only: the params dict inside raw */
};

/* Encode and sign a header (genesis when params_raw != NULL). */
int blk_hdr_sign(struct blk_hdr *h, const uint8_t *params_raw, size_t params_len,
                 const struct ledger_key *key, uint8_t **out, size_t *out_len);
/* Strict decode of a signed header, its signature checked if check_sig; h->params
 * points into buf. -EBADMSG. */
int blk_hdr_decode(const uint8_t *buf, size_t len, struct blk_hdr *h, bool check_sig);

int params_encode(const struct ledger_params *p, uint8_t **out, size_t *out_len);
int params_decode(struct ben dict, struct ledger_params *out);

/* A block on the wire: d 1:h <header bytes> 1:r l <record>... e e */
struct blk_wire {
	struct ben hdr;
	struct ben *recs;
	size_t n_recs;
};
int blk_wire_parse(const uint8_t *buf, size_t len, size_t max_len, size_t max_recs,
                   struct blk_wire *out); /* free out->recs with free() */

/* ---- the handle (ledger.c, store.c, chain.c) ---- */

struct vcache_ent {
	uint8_t id[32];
	uint64_t epoch;
	bool used;
};
#define VCACHE_SIZE 4096

struct ledger {
	pthread_mutex_t lock; /* guards db, everything below and the statements */
	sqlite3 *db;
	struct ledger_config cfg;
	char *path;
	uint8_t drive[32];
	struct ledger_params params;
	uint8_t *genesis;
	size_t genesis_len;
	/* queue.c: the publish queue's twin (its own file, connection and lock), opened
	 * at the first queue call under queue_mu */
	pthread_mutex_t queue_mu;
	struct ledger *queue;
	/* in the twin: the queue's largest sort key, once read (0: not yet): a push is
	 * then one insert, not a scan of the queue for its end (MAX(sort) has no index) */
	int64_t queue_sort;
	/* paths whose state changed, head change; fired after unlock */
	char **changed;
	size_t n_changed, cap_changed;
	bool head_changed;
	/* this node's records dropped from the mempool; fired after unlock */
	struct ledger_dropped **dropped;
	size_t n_dropped;
	/* log lines written while locked, emitted after unlock (never call out locked) */
	bool locked;
	struct {
		int level;
		char *msg;
	} logq[64];
	size_t n_logq, logq_lost;
	/* ids of records verified by ledger_verify_record(), cleared on reorg */
	struct vcache_ent vcache[VCACHE_SIZE];
	uint64_t chain_epoch;
	void *stmt_cache; /* store.c */
	int tx_depth;     /* store.c: transactions open (the inner ones savepoints) */
	/* sync_apply.c: a fresh node's catch-up left its transaction open over a release of
	 * the lock (tx_depth 1): ledger_lock commits it before anything else runs, and
	 * ledger_lock_read leaves it open for queries, which see its blocks */
	atomic_bool tx_held; /* atomic: ledger_lookup reads it without the lock */
	/* sync_apply.c: a savepoint asked for in the transaction (a block's, in
	 * chain_block_add) is not opened while sp_lazy is set (store_begin): sp_open is
	 * the depth it stands for (0: none), sp_changes the connection's changes when it
	 * was asked for. Rolled back with changes made since, it leaves them in place and
	 * sets tx_spoilt: the caller rolls the whole transaction back. */
	bool sp_lazy, tx_spoilt;
	/* store.c: the bulk page cache is on (store_cache_bulk); sync_apply.c keeps it
	 * from one blocks message to the next while more are asked for */
	bool bulk;
	int sp_open;
	int64_t sp_changes;
	bool replaying;          /* chain_replay: blocks come from the raw tables */
	atomic_bool interrupted; /* ledger_interrupt: long sweeps stop */
	struct ledger_pk_cache *pkc;
	/* finality.c: a reorg across a final block refused in the current block add,
	 * written down after its transaction was rolled back */
	struct {
		bool set, conflict;
		uint8_t id[32];
		int64_t height, fork, final;
	} fin_refused;
	bool producing; /* chain_produce is adding its own block */
	/* chain_block_add's decoded records, kept between blocks: a block's thousand
	 * records are megabytes, and fresh pages for each block cost more than the parse */
	struct rec *blk_recs;
	size_t blk_recs_cap;
	/* batch.c -> chain_produce: the records a group commit just checked in order on
	 * top of the state at head, judged at time_limit, when they are the whole mempool
	 * (borrowed; set and cleared under the lock around ledger_produce_locked) */
	struct produce_hint {
		bool set;
		uint8_t head[32];
		int64_t time_limit;
		/* its records are judged by the time only through their timestamps'
		 * bound (no invite, redeem, keys or keywrap, whose checks read the clock
		 * otherwise): a block dated later, ahead of the clock, takes them too */
		bool later_ok;
		size_t n;
		const uint8_t (*ids)[32];
		uint8_t *const *raws;
		const size_t *lens;
	} hint;
	int64_t receipt_seq; /* credit.c: the last receipt sequence signed */
	/* tests only (white-box): called at named steps of block add, reorg, produce and
	 * the chain sweep (on the sweeping thread, no lock held), e.g. to kill the
	 * process there; NULL in every real node */
	void (*step_hook)(const char *step, void *ctx);
	void *step_ctx;
	bool reader; /* a query-only twin (reader.c) */
	/* host.c: the health scans' twin, opened at the first and kept (its statements
	 * and page cache with it) until ledger_free; health_mu serialises its users */
	pthread_mutex_t health_mu;
	struct ledger *health_rd;
	/* reader.c: the lookups' twin, for a lookup that finds the lock taken (a batch of
	 * records being stored, a block): opened at the first, kept; look_mu serialises
	 * its users */
	pthread_mutex_t look_mu;
	struct ledger *look_rd;
	struct siblings *sib; /* siblings.c's page of the last looked-up directory */
};

/* The columns of a paths row that ledger_entry_from_row reads, in its order. */
#define ENTRY_COLS                                                                                 \
	"name, record, type, is_dir, open, owner, root, len, ih2, ih1, plen, mode, mtime,"         \
	" born"
void ledger_entry_from_row(sqlite3_stmt *st, struct ledger_entry *e);

/* siblings.c: lookups that walk a directory in name order (ls -l stats each name a
 * listing gave) are answered from a page of the siblings that follow, read in one
 * query, instead of a query each. Only rows of the paths table are cached, and the
 * page is thrown away once this connection has written anything (any record, block,
 * mempool or queue change), so an answer from it is the one ledger_lookup_locked would
 * give. Lock held. */
/* norm (normalized) from the page: 0, or -ENOENT when the page cannot tell (the
 * caller asks the database), or -errno. */
int siblings_lookup(struct ledger *l, const char *norm, struct ledger_entry *out);
void siblings_free(struct ledger *l);

/* reader.c: a query-only twin of a ledger, for the long scans (the chain sweep, the
 * hosting sweep's orphans). It is a struct ledger of its own: its own SQLite
 * connection, opened read-only on the same WAL database, its own statement cache and
 * its own (never contended) lock, so the store's query helpers (chain_id_at,
 * chain_head, finality_evidence_list, ...) run on it unchanged while the writer goes
 * on: WAL lets a reader read beside the writer, and a read transaction
 * (reader_snapshot_begin/end) sees one committed state throughout. It never takes the
 * writer's lock, and nothing that writes may be called on it (SQLite refuses, -EACCES).
 * Its log lines go straight to the writer's sink.
 * Thread context: reader_open on any thread; the twin is then used by one thread at a
 * time (caller serialises) and closed by reader_close before l is freed. It borrows
 * l's path and config; the drive id and scalar parameters are copied. */
int reader_open(struct ledger *l, struct ledger **out);
void reader_close(struct ledger *r); /* NULL is a no-op */
/* A read transaction: every query until reader_snapshot_end sees the state of one
 * commit. Keep it short: a checkpoint cannot pass a snapshot that is still open. */
int reader_snapshot_begin(struct ledger *r);
void reader_snapshot_end(struct ledger *r);
/* Look norm (normalized) up in the last committed state, on l's lookups' twin, as
 * ledger_lookup_locked does on l: for a lookup that finds l's lock taken, so it need
 * not wait for a batch of records to be stored. -EAGAIN when only the lock can answer
 * (a transaction of l is held open over a release of its lock: its blocks are seen on
 * l's connection alone; or the twin cannot be opened). Any thread; l's lock not held. */
int reader_lookup(struct ledger *l, const char *norm, struct ledger_entry *out);

/* queue.c: close l's publish queue twin, if open (ledger_free). */
void queue_close(struct ledger *l);

/* finality.c: finality, producer rights by height, equivocation (DESIGN.md §10) */
void ledger_step(struct ledger *l, const char *step); /* the test hook, if any */
int finality_open(struct ledger *l); /* schema; signers of an older ledger filled in */
int finality_height(struct ledger *l, int64_t *out);
/* key was a producer after block `height` of the best chain (it may sign its child). */
bool finality_producer_at(struct ledger *l, const uint8_t key[32], int64_t height);
/* Block `height` by producer joined the best chain / the chain was cut to height. */
int finality_on_apply(struct ledger *l, int64_t height, const uint8_t producer[32]);
int finality_on_rollback(struct ledger *l, int64_t height);
/* A reorg to the branch (tip first, n ids) from fork height: 0 if allowed, -EPERM if it
 * would undo a final block (logged; a conflicting final branch at LOG_ERR). */
int finality_reorg_check(struct ledger *l, int64_t fork, const uint8_t (*branch)[32], size_t n,
                         const uint8_t tip_producer[32], int64_t tip_height);
/* Write down the refusal noted by finality_reorg_check (in the caller's transaction). */
int finality_note_refused(struct ledger *l);
/* h (signature checked) against stored headers at its height: a second block by the
 * same producer is stored as evidence and logged at LOG_ERR. Autocommit. */
int finality_evidence_check(struct ledger *l, const struct blk_hdr *h, const uint8_t *hdr,
                            size_t hdr_len);
struct fin_evidence {
	int64_t height;
	uint8_t producer[32], a[32], b[32];
};
/* Evidence re-checked from the raw headers; *out malloc'd. */
int finality_evidence_list(struct ledger *l, struct fin_evidence **out, size_t *out_n);
/* The highest height this node's key signed a block at (0: none), kept in meta. */
int finality_last_signed(struct ledger *l, int64_t *out);
int finality_signed_put(struct ledger *l, int64_t height);

/* Logging: formats only when the level passes. With the lock held the line is queued
 * and reaches the sink after ledger_unlock(). */
void ledger_logf(struct ledger *l, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define L_ERR(l, ...)    ledger_logf(l, LOG_ERR, __VA_ARGS__)
#define L_WARN(l, ...)   ledger_logf(l, LOG_WARNING, __VA_ARGS__)
#define L_NOTICE(l, ...) ledger_logf(l, LOG_NOTICE, __VA_ARGS__)
#define L_INFO(l, ...)   ledger_logf(l, LOG_INFO, __VA_ARGS__)
#define L_DEBUG(l, ...)  ledger_logf(l, LOG_DEBUG, __VA_ARGS__)

int64_t ledger_now(struct ledger *l);
/* A new record of type for this drive: time now, random nonce; the rest zero. */
int ledger_rec_init(struct ledger *l, enum ledger_rec_type type, struct rec *r);
/* Check r against the state and this node's pending records, sign it with cfg.key and
 * queue it in the mempool (lock held; cfg.key set). */
int ledger_submit_locked(struct ledger *l, struct rec *r, uint8_t out_id[LEDGER_ID_LEN]);
/* The same without the lock held, then a block at once if this node produces. */
int ledger_submit_one(struct ledger *l, struct rec *r);
/* With auto_produce on a producer, produce a block now (lock held); with
 * cfg.gather_blocks, only when the block would not run the chain's clock ahead. */
void ledger_produce_locked(struct ledger *l);
/* The record op asks for, not yet checked against the state, unsigned (no lock). */
int ledger_op_to_rec(struct ledger *l, const struct ledger_op *op, struct rec *r);
/* ledger_lookup() of a normalized path, lock held. */
int ledger_lookup_locked(struct ledger *l, const char *path, struct ledger_entry *out);
/* The lock; a transaction a sync left open (tx_held) is committed first, so what the
 * caller writes is durable once its own commit returns, as ever. */
void ledger_lock(struct ledger *l);
/* The lock for queries that write nothing: a transaction a sync left open stays open,
 * and what it applied is seen (it was checked like any block; it is committed within
 * SYNC_TX_NS, sync_apply.c). A caller that writes takes ledger_lock. */
void ledger_lock_read(struct ledger *l);
/* The lock, a held transaction left as it is: sync_apply.c goes on with its own. */
void ledger_lock_keep(struct ledger *l);
/* Unlock, then fire the change callbacks collected meanwhile. */
void ledger_unlock(struct ledger *l);
void ledger_note_change(struct ledger *l, const char *path);
/* Forget changes noted after the first keep (work that was rolled back). */
void ledger_changes_forget(struct ledger *l, size_t keep, bool head);

/* store.c: SQLite */
int store_open(struct ledger *l, bool create);
/* l->db opened query-only on l->path (reader.c), with its own statement cache. */
int store_open_readonly(struct ledger *l);
/* l->db on l->path (created if need be) holding the publish queue alone (queue.c). */
int store_open_queue(struct ledger *q);
void store_close(struct ledger *l);
int store_err(struct ledger *l, int rc, const char *what); /* SQLite code -> -errno */
int store_exec(struct ledger *l, const char *sql);
/* Step a statement that returns no row, reset it: 0, or the store's error for what. */
int store_step_done(struct ledger *l, sqlite3_stmt *st, const char *what);
/* Whether sql (one blob parameter) returns a row. */
bool store_has(struct ledger *l, const char *sql, const uint8_t key[32]);
sqlite3_stmt *store_stmt(struct ledger *l, const char *sql); /* cached, reset */
/* Nests: an inner one is a savepoint, or with l->sp_lazy none (see sp_lazy). */
int store_begin(struct ledger *l);
int store_commit(struct ledger *l);
void store_rollback(struct ledger *l);
/* Commit the transaction a sync left open (l->tx_held), if any, lock held; on failure
 * it is rolled back and the head marked changed. 0 or -errno. */
int store_commit_held(struct ledger *l);
/* The page cache and WAL checkpoint for a bulk apply (sync_apply.c) when on (l->bulk);
 * back to the usual when off: the WAL checkpointed, the cache's memory freed. Lock
 * held. 0 or -errno. */
int store_cache_bulk(struct ledger *l, bool on);
int store_clear_derived(struct ledger *l);
int store_meta_get(struct ledger *l, const char *key, uint8_t **out, size_t *out_len);
int store_meta_put(struct ledger *l, const char *key, const void *v, size_t len);

/* chain.c: validation, state, fork choice */
int chain_init_genesis(struct ledger *l, const uint8_t *raw, size_t len);
int chain_block_add(struct ledger *l, const uint8_t *buf, size_t len, bool *out_head);

/* sync_apply.c: the n blocks of a blocks message (w parsed from raw), applied in order:
 * the records' signatures checked on every core without the lock, the blocks applied
 * several to a transaction, the lock held about 50 ms at a time. 0 when all applied,
 * else the first failure: the precheck's (-ENOENT: its parent is unknown; -EBADMSG)
 * or chain_block_add's. *head: the best chain moved. more: the next blocks are asked
 * for already (sync.c's pipelining): a long run's bulk page cache is kept for them
 * (store_cache_bulk), until a message without more, or sync_apply_idle. Called without
 * the lock. */
int sync_apply_blocks(struct ledger *l, const struct blk_wire *w, const struct ben *raw, size_t n,
                      bool more, bool *head);
/* No blocks are on their way: a bulk page cache kept for them goes back. Lock held. */
void sync_apply_idle(struct ledger *l);
int chain_record_check_pending(struct ledger *l, const struct rec *r);
/* The state with every pending record applied, inside a savepoint, to check new
 * records in order (ledger_submit_batch): chain_pending_begin() opens it;
 * chain_pending_check() says whether r holds on top of what is applied so far;
 * chain_pending_apply() applies it so the next ones see it; chain_pending_undo() rolls
 * the savepoint back (it stays open: what is written next commits with
 * chain_pending_end()). Lock held throughout. */
struct chain_pending {
	int64_t height, time_limit;
	size_t saved_changes;
	bool saved_head;
};
int chain_pending_begin(struct ledger *l, struct chain_pending *p);
int chain_pending_check(struct ledger *l, const struct chain_pending *p, const struct rec *r);
int chain_pending_apply(struct ledger *l, const struct chain_pending *p, const struct rec *r);
void chain_pending_undo(struct ledger *l, const struct chain_pending *p);
/* Release the savepoint: commits what was written after the undo. */
int chain_pending_end(struct ledger *l);
int chain_mempool_add(struct ledger *l, const struct rec *r, const uint8_t *raw, size_t len);
/* Records a peer sent (signatures checked): those that apply on top of the mempool go
 * into it. Returns how many; records that do not apply (a race) are left out. */
int chain_mempool_add_batch(struct ledger *l, const struct rec *recs, const struct ben *raws,
                            size_t n);
/* Records in the mempool, in all and by author. */
int chain_mempool_counts(struct ledger *l, const uint8_t author[32], int64_t *out_total,
                         int64_t *out_author);
int chain_produce(struct ledger *l);
/* Whether a record of this type is judged by the time only through the bound on its
 * timestamp (the access records' checks read the clock for their expiry): a block dated
 * later than the batch that checked it takes it unchanged. Any thread. */
bool chain_rec_time_free(enum ledger_rec_type type);
int chain_head(struct ledger *l, struct ledger_head *out);
int chain_block_wire(struct ledger *l, const uint8_t id[32], uint8_t **out, size_t *len);
int chain_id_at(struct ledger *l, int64_t height, uint8_t out[32]);
int chain_replay(struct ledger *l);
bool chain_is_producer(struct ledger *l, const uint8_t key[32]);
/* 2 producer, 1 member (the admin always), 0 none, at the current state. */
int chain_member_role(struct ledger *l, const uint8_t key[32]);
int chain_member_set(struct ledger *l, const uint8_t key[32], int role, const char *name,
                     int64_t height);

/* access.c: invites, redeems, epochs and key wraps (records of private drives).
 * now: the time the record is judged at (its block's, or this node's clock). */
int access_check(struct ledger *l, const struct rec *r, int64_t now);
int access_apply(struct ledger *l, const struct rec *r, int64_t height);
/* 0 if the invite ikey may be redeemed at now; -ENOENT, -ESTALE (used), -EKEYEXPIRED. */
int access_invite_usable(struct ledger *l, const uint8_t ikey[32], int64_t now);
/* The newest epoch (pending records of ours included while they are applied), 0: none. */
int64_t access_epoch_current(struct ledger *l);
/* The key of epoch as sealed to this node, checked against the admin's commitment:
 * 0, -ENOENT (no such epoch), -ENOKEY (no valid wrap for us). cfg.key set. */
int access_epoch_key_locked(struct ledger *l, int64_t epoch, uint8_t out[LEDGER_EPOCH_KEY_LEN]);

/* filekey.c: file keys of a private drive's content, wrapped under an epoch key.
 * Whether a claim/update r carries what the drive needs: a wrap under an epoch that was
 * current when r was made (private drives), none (public ones). -EINVAL, -ESTALE. */
int filekey_check(struct ledger *l, const struct rec *r);
/* Fill r's epoch and wrap for op (lock held, r->author and r->nonce set): the file key
 * op gives, or the one of op->key_from; nothing on a public drive. */
int filekey_attach(struct ledger *l, const struct ledger_op *op, struct rec *r);
/* The file key and IV nonce r's wrap carries (lock held): -EINVAL no wrap (a public
 * drive, no content), -ENOKEY, -EBADMSG as ledger_file_key_open. */
int filekey_open_locked(struct ledger *l, const struct rec *r, uint8_t out_key[LEDGER_FILE_KEY_LEN],
                        int64_t *out_nonce);

/* credit.c: receipts and credit records (DESIGN §11). */
int credit_open(struct ledger *l); /* its tables */
int credit_check(struct ledger *l, const struct rec *r);
int credit_apply(struct ledger *l, const struct rec *r, int64_t height);
/* The "receipt" sync message d from a trusted peer (lock held): 0 (kept, or a replay
 * ignored) or -EBADMSG (forged or malformed: drop the peer). */
int credit_on_receipt(struct ledger *l, struct ben d);
/* Strict decode of one receipt (signature not checked). */
struct receipt {
	uint8_t up[32], down[32], drive[32], ih[32], sig[64], id[32];
	int64_t bytes, seq;
};
int credit_receipt_parse(const uint8_t *buf, size_t len, struct receipt *out);
/* Encode and sign a receipt as key (the downloader), every field given. *out malloc'd. */
int credit_receipt_sign(const struct ledger_key *key, const uint8_t drive[32], const uint8_t up[32],
                        const uint8_t ih[32], int64_t bytes, int64_t seq, uint8_t **out,
                        size_t *out_len);

/* host.c: host claims and drive settings (DESIGN §11). */
int host_open(struct ledger *l); /* its tables */
int host_check(struct ledger *l, const struct rec *r);
int host_apply(struct ledger *l, const struct rec *r, int64_t height);
/* A claim or update r applied: its author holds its content from now on. */
int host_on_content(struct ledger *l, const struct rec *r, int64_t height);
int setting_check(struct ledger *l, const struct rec *r);
int setting_apply(struct ledger *l, const struct rec *r, int64_t height);

#endif
