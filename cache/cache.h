/*
 * cache — the on-disk piece store of a drive: a size cap, least-recently-used eviction
 * at chunk granularity, pins for data being read and for content this node published,
 * persistence across restarts. Only verified data is served.
 *
 * Model. The cache knows "objects": one data file each, named by a 32-byte key (for
 * example a torrent's v2 infohash or a file's pieces root) with a fixed length, divided
 * into fixed-size chunks (the last one may be short). fs/ registers an object with the
 * torrent's piece length as chunk size, so chunk i is piece i. The cache never parses a
 * torrent and never writes object data itself:
 *   - libtorrent (posix_disk_io) writes the data file in place, at the path that
 *     cache_object_path() hands out (swarm_add_params.file_paths);
 *   - when libtorrent reports a piece verified, fs/ calls cache_chunk_mark(); the cache
 *     then flushes the chunk's range, hashes it (one SHA-256 pass: the digest of each
 *     16 KiB block, and the chunk's digest, kept in the index, derived from those) and
 *     only from then on serves it;
 *   - reads go through cache_read() (pread into the caller's buffer) or
 *     cache_block_pin()/cache_block_unpin() (an fd and offset for an fd-backed FUSE
 *     reply); a range touching a chunk that is not marked fails with -ENODATA, and the
 *     caller fetches it from the swarm;
 *   - when the evictable chunks exceed the cap, the least recently used unpinned ones
 *     are evicted in a batch down to a low-water mark: their ranges are punched out of
 *     the data file (FALLOC_FL_PUNCH_HOLE) and reported through cfg.on_evict, so fs/
 *     can make libtorrent forget those pieces;
 *   - publishing moves a finished file in with cache_object_adopt(): fully present and
 *     pinned as a whole.
 * Pinned objects (published content) are never evicted and do not count against the
 * cap; they are reported separately. Data libtorrent has written but fs/ has not marked
 * is not counted either; it is punched out at the next cache_new().
 *
 * On disk, under cfg.dir: "index" (an append-only journal, one checksummed record per
 * change, compacted when it grows; a torn tail is ignored), "data/<64 hex digits of the
 * key>" (the sparse data files) and nothing else. The index is flock()ed while a cache
 * is open. A kill -9 at any moment leaves no chunk marked present that is not fully
 * written: a chunk's range is written back before its index record. LRU order is not
 * persisted: after a restart chunks age in index order.
 *
 * What leaves the cache is checked, every time. The data files can change under the
 * cache, closed or open (a disk going bad, a user's editor, a stray dd), so no byte is
 * trusted for having been good once. When a chunk is marked (or adopted) the cache
 * keeps, in memory, a 128-bit SHA-256 digest of each 16 KiB block of it, besides the
 * chunk's digest in the index (SHA-256 over a label and its blocks' full SHA-256
 * digests: the same pass yields both; an index of the first format kept the SHA-256
 * of the whole chunk, and such a chunk is checked against it, in two passes, until
 * it is checked once); a chunk loaded from the index is read and compared with its
 * recorded digest on its first use after cache_new() (nothing is re-hashed up front),
 * which also yields its block digests. cache_read() hashes the very bytes it
 * read before it returns them, and cache_verify() the bytes someone else read (the
 * swarm, uploading), against those digests: the cost is one SHA-256 pass over the
 * bytes served, never over a whole chunk (scripts/bench/cache.sh prints it beside an
 * unchecked read). A chunk that fails is logged (LOG_WARNING), counted, never served
 * again, and dropped like an evicted one.
 *
 * Depends on libc and libcrypto (SHA-256) only; never on swarm/, ledger/ or fs/, and
 * never on libtorrent. Events go upward through the callbacks in struct cache_config.
 *
 * Threads: every function is thread-safe unless it says otherwise. A reader never waits
 * for I/O under the cache's state lock: hits take it twice, briefly, and allocate
 * nothing. cache_chunk_mark(), cache_object_adopt() and evictions do I/O (a chunk's
 * writeback, hashing, hole punching) on the caller's thread, so fs/ calls them from a
 * worker, not from the swarm thread. Marks wait for their chunk's writeback in
 * parallel, then hash and record one at a time, as evictions and object changes do
 * (readers wait for none of them). Callbacks run on the thread whose call caused the
 * event, with no cache lock held; the log sink may be called with cache locks held and
 * must not call into the cache. Several caches coexist in one process (on different
 * directories); nothing is global.
 * Errors: >= 0 on success, -errno on failure. A failed call leaves its outputs and the
 * cache's state unchanged.
 */
#ifndef SWARMFS_CACHE_H
#define SWARMFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The default size cap of a drive's cache: 10 GiB (DESIGN.md §6). */
#define CACHE_DEFAULT_SIZE (10ULL << 30)

/* Length of an object's key in bytes. */
#define CACHE_KEY_LEN 32

/* Bounds of an object's chunk size (any value between them, not only powers of two). */
#define CACHE_CHUNK_MIN (4U << 10)
#define CACHE_CHUNK_MAX (256U << 20)

/* Parse a human size ("512M", "10G", "4096") into bytes in *out_bytes.
 * Returns 0, or -EINVAL for a malformed or zero size, -ERANGE on overflow.
 * Any thread. */
int cache_size_parse(const char *text, uint64_t *out_bytes);

/* ---- opening a cache ---- */

struct cache;

/* Thread-safe log sink with syslog levels; the same shape every module's config has.
 * module is "cache". May be called with cache locks held: it must not call the cache. */
typedef void (*cache_log_fn)(int level, const char *module, const char *msg, void *ctx);

/* Chunks of the object key were evicted (or dropped after failing their check): their
 * data is gone from the data file and they read as missing until marked again. chunks
 * is ascending, n >= 1, borrowed for the call. Called once per object per eviction
 * batch, on the thread whose call caused it (cache_chunk_mark, cache_object_unpin,
 * cache_cap_set, cache_trim, or a read that found a corrupt chunk), with no cache lock
 * held; it may call into the cache, and a chunk may be marked again by the time it
 * runs. Only from this call on may the chunk's range be written again (libtorrent
 * re-fetching the piece): until then the cache may still be punching it. */
typedef void (*cache_evict_fn)(const uint8_t key[CACHE_KEY_LEN], const uint32_t *chunks, size_t n,
                               void *ctx);

struct cache_config {
	const char *dir;        /* the cache directory; created (one level) if missing.
	                         * Borrowed for cache_new() only */
	uint64_t cap;           /* bytes of evictable chunks kept; 0 means
	                         * CACHE_DEFAULT_SIZE */
	unsigned low_water_pct; /* an eviction batch brings the evictable bytes down
	                         * to this percentage of cap (1..100); 0 means 90 */
	cache_log_fn log;       /* NULL: no logging */
	void *log_ctx;
	int log_level;           /* messages above this syslog level are dropped;
	                          * 0 means LOG_NOTICE */
	cache_evict_fn on_evict; /* NULL: none */
	void *evict_ctx;
	unsigned max_open; /* data files kept open at once (a file in use stays
	                    * open past it: a pinned block, a mark in flight);
	                    * 0 means a quarter of the open-file soft limit, at
	                    * least 64 and at most 4096 */
};

/* Open (or create) the cache in cfg->dir and load its index: objects, present chunks and
 * their hashes; nothing is re-hashed. A torn or corrupt tail of the index is cut off
 * (logged at LOG_WARNING). Space of chunks not marked present is punched out of every
 * data file, and files under data/ that belong to no object are deleted. If the
 * evictable chunks exceed cfg->cap, an eviction batch runs before it returns
 * (cfg->on_evict is called). Open the cache before libtorrent touches its data files
 * (before adding torrents): the punching would race with its writes. Returns 0 and the
 * handle in *out_cache (free with cache_free()), or -EINVAL (bad config), -EBUSY
 * (another open cache, in this or another process, holds cfg->dir), -EBADMSG
 * (cfg->dir/index exists but is not a cache index: nothing is changed), -ENOMEM, or the
 * -errno of a failed mkdir/open/read. Any thread. */
int cache_new(const struct cache_config *cfg, struct cache **out_cache);

/* Flush the index and close everything. No block may be pinned (debug builds assert).
 * NULL is a no-op. Caller serialises: no other call on c may run or follow. */
void cache_free(struct cache *c);

/* ---- objects ---- */

/* Register an object of length bytes (> 0) split into chunks of chunk_size bytes
 * (CACHE_CHUNK_MIN..CACHE_CHUNK_MAX; at most UINT32_MAX - 1 chunks), and create its
 * sparse data file. Returns 0 if it was added, 1 if it already exists with this length
 * and chunk size (nothing changes), -EEXIST if it exists with another geometry, -EINVAL
 * for a bad length or chunk size, or the -errno of the failed file creation or index
 * write. Any thread. */
int cache_object_add(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t length,
                     uint32_t chunk_size);

/* The path of key's data file, where libtorrent writes the object:
 * "<dir>/data/<64 lowercase hex digits>", NUL-terminated into buf of size bytes.
 * Returns the path's length (without the NUL), -ENOENT if key is not registered,
 * -ERANGE if size is too small. Any thread. The file is the cache's: nothing but the
 * cache and libtorrent's writes of verified-to-be pieces may touch it (never delete,
 * rename or truncate it). */
int cache_object_path(struct cache *c, const uint8_t key[CACHE_KEY_LEN], char *buf, size_t size);

/* Move the complete file at path (a regular file on the cache's filesystem) into the
 * cache as object key: every chunk hashed and marked present, and the object pinned
 * (cache_object_pin). The file is renamed to cache_object_path(); if that fails, path is
 * left in place. If key exists already it is replaced, unless a block of it is pinned (a
 * failed rename then leaves key unregistered). Returns 0, -EXDEV (another filesystem:
 * copy it into the cache directory first), -EBUSY (a block of key is pinned, or a chunk
 * of it is being marked), -EINVAL (bad chunk size, empty or not a regular file), or
 * another -errno. Reads the whole file: call it from a worker. */
int cache_object_adopt(struct cache *c, const uint8_t key[CACHE_KEY_LEN], const char *path,
                       uint32_t chunk_size);

/* The same with the SHA-256 of each CACHE_BLOCK_SIZE block of each chunk (a chunk's
 * blocks start at its start, its last one may be short: with a chunk size that is a
 * multiple of the block, simply the file's blocks; n of them, in order), given by a
 * caller that wrote or read the file once and hashed it meanwhile (a v2 torrent's
 * leaves are these): nothing is read again (the caller vouches for the digests, as the
 * cache does for its own), each chunk's digest is derived from its blocks' and the
 * first read of the object checks only the bytes it serves, as any later one (the
 * block digests are kept from now on: 1/1024 of the file in memory, what its first
 * read would have cost). -EINVAL when n is not the block count. flags:
 * CACHE_ADOPT_SYNCED, the caller made the file's bytes durable already (a syncfs for a
 * batch of them), so they are not fdatasynced again; CACHE_ADOPT_BATCH, one of a
 * batch: the object is registered and readable at once (through the open file), its
 * index records appended but not synced, and the file stays at path until
 * cache_object_adopt_sync(), which syncs the index once, then renames every file of
 * the batch and syncs their directories once. Until then cache_object_path() names
 * where the file will be: nothing may open the object by its path before the sync (fs/
 * seeds it only after). A crash in between leaves records over a file not renamed yet
 * (its first read fails the hash and drops them) and the file at path, never a renamed
 * file without its records. */
#define CACHE_BLOCK_SIZE    (16U << 10)
#define CACHE_BLOCK_SHA_LEN 32
#define CACHE_ADOPT_SYNCED  1u
#define CACHE_ADOPT_BATCH   2u
int cache_object_adopt_hashed(struct cache *c, const uint8_t key[CACHE_KEY_LEN], const char *path,
                              uint32_t chunk_size, const uint8_t (*blocks)[CACHE_BLOCK_SHA_LEN],
                              uint64_t n, unsigned flags);
/* Finish the adoptions made with CACHE_ADOPT_BATCH (see above). An object whose rename
 * fails is dropped (logged); returns how many were, or -errno if the index could not be
 * synced (then every object of the batch is dropped, its file left where it was). */
int cache_object_adopt_sync(struct cache *c);

/* Pin or unpin a whole object (persistently): a pinned object's chunks are never
 * evicted and count as "published" instead of against the cap. Unpinning makes them
 * evictable (as the most recently used) and may start an eviction on this thread.
 * Returns 0, or -ENOENT if key is not registered, or the -errno of the index write.
 * Any thread. */
int cache_object_pin(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);
int cache_object_unpin(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);

/* Forget an object: its chunks, its index entries and its data file. No callback.
 * Returns 0, -ENOENT if not registered, -EBUSY if a block of it is pinned or a chunk of
 * it is being marked right now. Any thread. */
int cache_object_remove(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);

struct cache_object_info {
	uint64_t length;        /* bytes */
	uint32_t chunk_size;    /* bytes */
	uint32_t chunks;        /* number of chunks */
	uint32_t present;       /* chunks marked present */
	uint64_t bytes_present; /* their bytes (the "cached bytes" xattr) */
	bool pinned;            /* pinned as a whole (published) */
};

/* Facts about one object into *out_info. Returns 0 or -ENOENT. Any thread. */
int cache_object_stat(struct cache *c, const uint8_t key[CACHE_KEY_LEN],
                      struct cache_object_info *out_info);

/* The present chunks of key as a bitmap, so that fs/ can tell libtorrent which pieces
 * it has when adding the torrent (no re-hash, no re-download). Chunk i is bit (i % 8)
 * of out_bits[i / 8] (least significant bit first); size must be at least
 * (chunks + 7) / 8 bytes, and bits past the last chunk are zero. A chunk counts as
 * present until a read finds it corrupt. Returns the number of present chunks,
 * -ENOENT, or -ERANGE if size is too small (out_bits untouched). Any thread. */
int cache_object_bitmap(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint8_t *out_bits,
                        size_t size);

/* ---- chunks ---- */

/* Chunk `chunk` of key is verified (libtorrent's piece-finished) and fully written in
 * the data file: write its range back to disk, hash it, record it in the index, then
 * serve it. It becomes the most recently used; if the evictable chunks now exceed the
 * cap, an eviction batch runs on this thread (cfg.on_evict). Returns 0 if it was
 * marked, 1 if it was present already (nothing changes), -ENOENT (key not registered),
 * -EINVAL (chunk out of range), -EIO (the data file is shorter than the chunk),
 * -EBUSY (the chunk was found corrupt and a reader still holds it: retry), or another
 * -errno of the I/O. Does I/O: call it from a worker. */
int cache_chunk_mark(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk);
/* cache_chunk_mark() given the SHA-256 of each CACHE_BLOCK_SIZE block of the chunk as
 * the hash check that verified it read them from the data file (libtorrent's v2 block
 * hashes: the last block of a chunk may be short and is hashed as it is). The chunk is
 * then not read back: its digests are these, and every read of it is checked against
 * them, so bytes changed after the check are never served. blocks may hold more than
 * the chunk's blocks (a piece's span past the end of its file); with fewer, or NULL,
 * the chunk is hashed from the disk as cache_chunk_mark() does. Same returns; a worker. */
int cache_chunk_mark_hashed(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk,
                            const uint8_t (*blocks)[CACHE_BLOCK_SHA_LEN], uint32_t n);

/* Read chunk `chunk` of key from disk again and compare it with the hash recorded when
 * it was marked; drop it if it differs (or was flagged by cache_verify()): logged,
 * counted, reported through cfg.on_evict on this thread. Returns 0 (intact), 1
 * (dropped), -EBUSY (corrupt, but a reader holds it: retry), -ENODATA (not present),
 * -ENOENT, -EINVAL (chunk out of range), -ENOMEM. Does I/O: call it from a worker. */
int cache_chunk_check(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk);

/* Whether chunk `chunk` of key is present (marked, not evicted, not found corrupt).
 * False for an unknown key or chunk. Any thread; the answer may be stale at once, and
 * false does not mean the range may be written yet (see cache_evict_fn). */
bool cache_chunk_present(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk);

/* ---- reads ---- */

/* A pinned range of an object's data file, for an fd-backed reply (splice). Fill it with
 * cache_block_pin(), release it with cache_block_unpin(). The public fields are valid
 * until then; the rest belongs to the cache. */
struct cache_block {
	int fd;          /* the data file, readable; do not close it */
	uint64_t offset; /* file offset of the range (equal to the object offset) */
	size_t len;      /* bytes of the range, clamped to the object's end */
	/* private to cache/ */
	void *priv_obj;
	uint32_t priv_first, priv_count;
};

/* Pin the chunks that cover [offset, offset + len) of key, clamped to the object's
 * end, so that none of them is evicted until cache_block_unpin(); they become the most
 * recently used. The first use of a chunk after cache_new() checks its SHA-256 (reads
 * the chunk; later hits do no I/O). The bytes of the block are not checked as they are
 * read through its fd: what is served to anyone goes through cache_read() or
 * cache_verify(). Returns 0 with *out_block filled (len 0 when offset
 * is at or past the end, and then nothing is pinned), -ENODATA if any chunk of the
 * range is not present (missing, evicted, or found corrupt now: it is then dropped and
 * reported through cfg.on_evict) and nothing is pinned, -ENOENT (key not registered),
 * -EINVAL (len 0). Counts one hit or one miss. Any thread; the block may be unpinned
 * on another thread. Allocates nothing on a hit. */
int cache_block_pin(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset, size_t len,
                    struct cache_block *out_block);

/* Release a block filled by cache_block_pin() (one with len 0 too) and clear it. Each
 * pin is unpinned exactly once (debug builds assert). Never evicts, never does I/O.
 * Any thread. */
void cache_block_unpin(struct cache *c, struct cache_block *block);

/* Copy [offset, offset + len) of key, clamped to the object's end, into buf with one
 * pread from the data file (pin, read, check, unpin), and check the bytes read against
 * the block digests of what was verified. Returns the number of bytes copied (0 at or
 * past the end; less than len only at the end), -ENODATA if a chunk is missing or
 * found changed (it is then dropped, logged and reported through cfg.on_evict, and the
 * caller fetches it again), -ENOENT, -EINVAL as cache_block_pin(), or the -errno of
 * pread (-EIO also if the file is shorter than its chunks). On failure buf's content
 * is unspecified and must not be used. Any thread. */
ssize_t cache_read(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset, void *buf,
                   size_t len);

/* buf holds len bytes that someone else read from key's data file at offset (the
 * swarm, to upload them): are they what was verified? Returns 0 if they are, -EBADMSG
 * if they are not (the chunk is flagged: it reads as missing from now on, but is not
 * dropped here; call cache_chunk_check() for that from a worker), -ENODATA if a chunk
 * of the range is not present, -EINVAL if bytes past the object's end are not zero (a
 * torrent's padding is), -ENOENT,
 * or -ENOMEM. A chunk not yet checked since cache_new() is read and hashed first. Never
 * calls cfg.on_evict, so it may run on a thread that must not (libtorrent's network
 * thread). Counts neither a hit nor a miss. Any thread. */
int cache_verify(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset,
                 const void *buf, size_t len);

/* ---- size and usage ---- */

/* Change the cap (0 means CACHE_DEFAULT_SIZE) and, if it is now exceeded, evict on this
 * thread. Returns 0 or an -errno of the index write. Any thread. */
int cache_cap_set(struct cache *c, uint64_t cap);

/* Evict down to the low-water mark if the evictable chunks exceed the cap (after
 * unpins of blocks, which never evict themselves). Returns the number of chunks
 * evicted, or an -errno of the index write. Any thread. */
int cache_trim(struct cache *c);

struct cache_usage {
	uint64_t cap;       /* bytes */
	uint64_t used;      /* bytes of present chunks of unpinned objects (against cap);
	                     * may exceed cap while those chunks are pinned by readers */
	uint64_t published; /* bytes of present chunks of pinned objects (not against cap) */
	uint64_t pinned;    /* bytes of chunks pinned by readers now (part of used or
	                     * published) */
	uint64_t objects;   /* registered objects */
	uint64_t chunks;    /* present chunks, evictable or not */
	uint64_t hits;      /* cache_block_pin/cache_read calls served, since cache_new */
	uint64_t misses;    /* calls that returned -ENODATA */
	uint64_t evictions; /* chunks evicted */
	uint64_t corrupt;   /* chunks dropped because their hash did not match */
	uint64_t rehashed;  /* chunks marked by reading them back and hashing them (no
	                     * block digests from the hash check that verified them) */
};

/* A consistent snapshot of the figures for statfs and `swarmfs status`. Any thread. */
void cache_usage_get(struct cache *c, struct cache_usage *out_usage);

#ifdef __cplusplus
}
#endif
#endif
