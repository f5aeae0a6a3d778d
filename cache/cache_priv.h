/*
 * cache_priv.h — what the files of cache/ share: the in-memory state, the index
 * journal and the locking rules. Private to cache/.
 *
 * Locks. Two mutexes, always taken in this order:
 *   idx_mu  serialises every change of a chunk between present and absent, every
 *           object change, the index file and hole punching. Holding it, an object
 *           cannot be freed and no chunk appears or disappears. Writers only.
 *   mu      guards the state readers look at: the object table, the chunk entries and
 *           their pins, the LRU list and the byte counters. Held only for memory work,
 *           never across a syscall that may wait for the disk.
 * Readers take only mu. An entry with pins > 0 is never freed, and an object with
 * pinned chunks is never freed, so a reader uses both outside the lock.
 */
#ifndef SWARMFS_CACHE_PRIV_H
#define SWARMFS_CACHE_PRIV_H

#ifndef SWARMFS_CACHE_BUILD
#error "cache_priv.h is private to cache/"
#endif

#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdarg.h>
#include <syslog.h>

#define CACHE_SHA_LEN 32

/* What leaves the cache is checked in blocks of this size, each against a digest kept
 * in memory: a reply hashes only the bytes it sends, never a whole chunk, and an
 * upload (libtorrent reads 16 KiB requests) exactly one block. Blocks start at their
 * chunk's start; the last one of a chunk may be short. */
#define CACHE_BLOCK CACHE_BLOCK_SIZE
/* Bytes kept of a block's SHA-256: 128 bits keep a second preimage out of reach and
 * cost 1/1024 of the cached bytes in memory (10 MiB for 10 GiB). */
#define CACHE_BLK_LEN 16

/* Entry flags. */
#define CE_UNCHECKED                                                                               \
	0x1          /* hash to be compared with the disk again (loaded from the                   \
	              * index, or asked by cache_chunk_check) */
#define CE_BAD   0x2 /* hash mismatch: unservable, dropped once unpinned */
#define CE_INLRU 0x4 /* on the LRU list (its object is not pinned) */
#define CE_LEGACY                                                                                  \
	0x8 /* sha is the SHA-256 of the whole chunk (a CIX_CHUNK_SET record of an index           \
	     * written before the derived digest), not cache_chunk_digest: checked with both       \
	     * digests, and replaced by the derived one once it matched */

/* One present chunk. */
struct cache_entry {
	struct cache_entry *prev, *next; /* LRU list, when CE_INLRU */
	struct cache_obj *obj;
	uint32_t idx;
	uint32_t pins;
	uint8_t flags;
	uint8_t sha[CACHE_SHA_LEN]; /* cache_chunk_digest of its bytes (see CE_LEGACY) */
	/* Digest of each block (cache_chunk_blocks), NULL until the chunk was hashed in
	 * this process. Set once, under mu, while the chunk is pinned or being marked;
	 * freed with the entry (cache_entry_free). */
	uint8_t (*blk)[CACHE_BLK_LEN];
};

static inline void cache_entry_free(struct cache_entry *e)
{
	if (e)
		free(e->blk);
	free(e);
}

struct cache_obj {
	uint8_t key[CACHE_KEY_LEN];
	uint64_t length;
	uint32_t chunk_size;
	uint32_t nchunks;
	uint32_t present;
	uint64_t bytes_present;
	uint64_t pins;    /* sum of its entries' pins */
	uint32_t marking; /* cache_chunk_mark calls flushing a chunk of it */
	bool pinned;      /* whole-object pin */
	/* The data file, -1 while closed: opened when first needed and kept open, most
	 * recently used first, while no more than max_open are; fd, fd_users and the
	 * links are under the cache's fd_mu (cache_obj_fd_get/put). */
	int fd;
	uint32_t fd_users;                   /* gets not yet put: never closed meanwhile */
	struct cache *fd_cache;              /* set while fd is open and in the list */
	struct cache_obj *fd_prev, *fd_next; /* the open files, most recent first */
	struct cache_entry **ent;            /* nchunks slots, NULL when absent */
	struct cache_obj *hnext;             /* hash chain */
};

struct cache {
	char *dir;
	char *datadir;
	int dir_fd; /* flock()ed: one open cache per directory */
	unsigned low_pct;
	cache_log_fn log;
	void *log_ctx;
	int log_level;
	cache_evict_fn on_evict;
	void *evict_ctx;

	/* The open data files (a leaf lock: nothing else is taken while it is held). */
	pthread_mutex_t fd_mu;
	struct cache_obj *fd_head, *fd_tail;
	size_t fds_open, max_open;

	pthread_mutex_t idx_mu; /* see above; guards the index fields below too */
	int idx_fd;
	uint64_t idx_size; /* bytes in the index file */
	bool idx_old;      /* the index file is of the first format: cache_index_load */
	/* adoptions of a batch (CACHE_ADOPT_BATCH) whose records are appended, not yet
	 * synced, and whose files are not renamed yet: cache_object_adopt_sync */
	struct cache_adopt_pending {
		char *from, *to;
		uint8_t key[CACHE_KEY_LEN];
	} * pending;
	size_t npending;

	pthread_mutex_t mu; /* see above; guards everything below */
	uint64_t cap;
	struct cache_obj **buckets;
	size_t nbuckets;
	size_t nobjects;
	struct cache_entry lru; /* sentinel: lru.next is the least recently used */
	uint64_t used, published, pinned, chunks;
	uint64_t evictions, corrupt;
	uint64_t hits, misses; /* atomics, not under mu */
	uint64_t rehashed;     /* atomic: marks that read their chunk back to hash it */
};

/* ---- log ---- */
void cache_logf(struct cache *c, int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define CACHE_LOG(c, level, ...)                                                                   \
	do {                                                                                       \
		if ((c)->log && (level) <= (c)->log_level)                                         \
			cache_logf(c, level, __FILE__, __LINE__, __VA_ARGS__);                     \
	} while (0)
#define C_ERR(c, ...)   CACHE_LOG(c, LOG_ERR, __VA_ARGS__)
#define C_WARN(c, ...)  CACHE_LOG(c, LOG_WARNING, __VA_ARGS__)
#define C_INFO(c, ...)  CACHE_LOG(c, LOG_INFO, __VA_ARGS__)
#define C_DEBUG(c, ...) CACHE_LOG(c, LOG_DEBUG, __VA_ARGS__)

/* 64 lowercase hex digits + NUL. */
void cache_key_hex(const uint8_t key[CACHE_KEY_LEN], char out[2 * CACHE_KEY_LEN + 1]);

/* ---- cache.c: state helpers (mu held unless said otherwise) ---- */
struct cache_obj *cache_obj_find(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);
void cache_obj_hash_insert(struct cache *c, struct cache_obj *o);
void cache_obj_hash_remove(struct cache *c, struct cache_obj *o);
/* New object (not in the table), all chunks absent. No lock needed. */
int cache_obj_alloc(const uint8_t key[CACHE_KEY_LEN], uint64_t length, uint32_t chunk_size,
                    struct cache_obj **out);
/* Free an object and its entries; it must be out of the table and the LRU. No lock. */
void cache_obj_free(struct cache_obj *o);
/* Bytes of chunk idx of o. */
static inline uint32_t cache_chunk_len(const struct cache_obj *o, uint32_t idx)
{
	uint64_t off = (uint64_t)idx * o->chunk_size;
	uint64_t rest = o->length - off;
	return rest < o->chunk_size ? (uint32_t)rest : o->chunk_size;
}
/* Blocks of chunk idx of o. */
static inline uint32_t cache_chunk_blocks(const struct cache_obj *o, uint32_t idx)
{
	return (cache_chunk_len(o, idx) + CACHE_BLOCK - 1) / CACHE_BLOCK;
}
/* A hit: e becomes the most recently used (if it is on the LRU at all). */
void cache_lru_touch(struct cache *c, struct cache_entry *e);
/* Account a new present entry e (not yet in o->ent) and put it on the LRU tail. */
void cache_entry_attach(struct cache *c, struct cache_entry *e);
/* Undo cache_entry_attach: out of o->ent, the LRU and the counters. */
void cache_entry_detach(struct cache *c, struct cache_entry *e);
/* Detach and free every entry of o (no records, no callback). */
void cache_obj_drop_chunks(struct cache *c, struct cache_obj *o);
/* Set or clear the whole-object pin: its entries leave the LRU (pinned) or join its
 * tail (unpinned), and its bytes move between published and used. */
void cache_obj_set_pinned(struct cache *c, struct cache_obj *o, bool pinned);
/* The object's data file path into buf (PATH_MAX). */
void cache_obj_path(struct cache *c, const struct cache_obj *o, char *buf, size_t size);
/* Open (creating it if create) a data file at least length bytes long, sparse; the fd
 * or -errno (logged). */
int cache_data_file_open(struct cache *c, const char *path, uint64_t length, bool create);
/* The object's data file, opened if it is closed (never created), for one use: the fd stays open
 * until the matching cache_obj_fd_put (files nobody uses are closed, least recently used first,
 * once more than max_open are open). Returns the fd or -errno. Any lock or none (fd_mu is a leaf);
 * o must stay alive until the put. */
int cache_obj_fd_get(struct cache *c, struct cache_obj *o);
void cache_obj_fd_put(struct cache *c, struct cache_obj *o);
/* Give o the fd of its data file (cache_object_adopt's, already open): as a get
 * followed by a put. */
void cache_obj_fd_install(struct cache *c, struct cache_obj *o, int fd);

/* ---- chunk.c ---- */
/* A chunk's digest, the one the index keeps: SHA-256 over a label and the full SHA-256
 * of each of its CACHE_BLOCKs in order (n of them), so that the one pass that yields
 * the block digests yields it too. -ENOMEM/-EIO from libcrypto. Any thread. */
int cache_chunk_digest(const uint8_t (*blocks)[CACHE_SHA_LEN], uint32_t n,
                       uint8_t out[CACHE_SHA_LEN]);
/* Read [off, off + len) of fd once, in slices, and hash each CACHE_BLOCK from off on:
 * the chunk digest (cache_chunk_digest) into out, the block digests into out_blk (if
 * not NULL) and, if out_legacy is not NULL, the SHA-256 of the whole range (the digest
 * an index written before the derived one keeps: CE_LEGACY), which costs a second
 * pass. -EIO if the file is short. */
int cache_hash_range(int fd, uint64_t off, uint64_t len, uint8_t out[CACHE_SHA_LEN],
                     uint8_t (*out_blk)[CACHE_BLK_LEN], uint8_t out_legacy[CACHE_SHA_LEN]);

/* One evicted or dropped chunk, collected under the locks and reported after. */
struct cache_victim {
	uint8_t key[CACHE_KEY_LEN];
	struct cache_obj *obj; /* valid only while idx_mu is held */
	uint32_t idx;
};
struct cache_victims {
	struct cache_victim *v;
	size_t n, cap;
};
/* idx_mu held: if the evictable bytes exceed the cap, evict down to the low-water
 * mark (index records, holes) and append what went to *vs. Returns chunks evicted or
 * -errno. */
int cache_evict_locked(struct cache *c, struct cache_victims *vs);
/* idx_mu held: record vs->v[from..] as absent in the index, then punch their ranges
 * (entries already detached). */
int cache_retire_locked(struct cache *c, struct cache_victims *vs, size_t from);
/* No lock held: call on_evict per object and free vs. */
void cache_victims_report(struct cache *c, struct cache_victims *vs);

/* ---- index.c: the journal (idx_mu held) ---- */
enum {
	CIX_OBJ_ADD = 1,   /* key, u64 length, u32 chunk_size, u8 pinned */
	CIX_OBJ_DEL = 2,   /* key */
	CIX_OBJ_PIN = 3,   /* key, u8 pinned */
	CIX_CHUNK_SET = 4, /* key, u32 idx, sha256 of the whole chunk (CE_LEGACY) */
	CIX_CHUNK_CLR = 5, /* key, u32 idx */
	/* key, u32 idx, cache_chunk_digest. Only an index whose magic is SWFSCIX2 is written
	 * with these: a binary that knows only CIX_CHUNK_SET refuses it rather than cut
	 * them off as a torn tail (and punch the chunks they keep). */
	CIX_CHUNK_SET2 = 6,
};
/* A growable buffer of encoded records. */
struct cache_rec_buf {
	uint8_t *p;
	size_t n, cap;
};
int cache_rec_obj_add(struct cache_rec_buf *b, const struct cache_obj *o);
int cache_rec_obj_del(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN]);
int cache_rec_obj_pin(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN], bool pinned);
/* legacy: a CIX_CHUNK_SET (the entry's CE_LEGACY), else a CIX_CHUNK_SET2 */
int cache_rec_chunk_set(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN], uint32_t idx,
                        const uint8_t sha[CACHE_SHA_LEN], bool legacy);
int cache_rec_chunk_clr(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN], uint32_t idx);
void cache_rec_buf_release(struct cache_rec_buf *b);
/* Append the records in b to the index (one write), compacting it first if it has
 * grown far past the live state. sync: fdatasync afterwards. */
int cache_index_append(struct cache *c, const struct cache_rec_buf *b, bool sync);
/* cache_new: open or create the index, replay it into c's state, cut a torn tail.
 * Sets c->idx_old if the file is an index of the first format (SWFSCIX1): cache_new
 * then rewrites it (compaction writes the current magic). */
int cache_index_load(struct cache *c);
/* Rewrite the index from the live state (idx_mu held, mu not). */
int cache_index_compact(struct cache *c);

#endif
