/*
 * fs/engine — the wiring of swarm/ and cache/ for file content, private to fs/.
 *
 * It owns one swarm session and one cache and joins them:
 *   - a torrent's file is a cache object (chunk size = piece length) that libtorrent
 *     writes in place at cache_object_path(): a torrent of one file has the key of
 *     fs_engine_key (the v2 infohash, or the v1 infohash zero-padded); each file of
 *     a v2 or hybrid torrent of several (piece-aligned) files has the key of
 *     fs_engine_file_key; a v1 torrent of several files, whose pieces straddle its
 *     files, is one object of its whole byte space under fs_engine_key, each file at
 *     its offset in it;
 *   - it is added to the session with the cache's present bitmap as the verified
 *     pieces, so a restart neither re-hashes nor re-downloads them;
 *   - swarm's piece-finished marks the chunk in the cache (on the engine's worker
 *     thread: marking hashes and writes back, and may evict);
 *   - the cache's evictions make swarm forget those pieces, and swarm asks the cache
 *     before it uploads a piece, so a piece whose hole is being punched is never sent;
 *   - a read tries the cache; on a miss it starts a swarm fetch and tries the cache
 *     again once the fetched pieces are marked.
 *
 * Threads: one worker thread per engine marks chunks and delivers read completions in
 * the order the swarm reported them (a completion comes after the marks of its
 * pieces). A miss holds no lock while it waits. Callbacks into fs/ run on the worker
 * thread, holding no engine, cache or swarm lock.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_FS_ENGINE_H
#define SWARMFS_FS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "swarm.h"

struct fs_engine;
struct fs_engine_torrent;
struct fs_engine_reader;

/* Start a cache (cc) and then a session (sc), wired together. The engine takes the
 * cache's on_evict and the session's on_piece and may_serve for itself, and caps the
 * session's read-ahead at a quarter of the cache; the session's extension and metadata
 * callbacks (called with torrent_ctx NULL, or the ctx of a plain torrent) and every other field
 * are used as given (the configs are borrowed for the call). Returns 0, or the -errno of cache_new,
 * swarm_session_new or the worker thread's start. Free with fs_engine_free. Any thread. */
int fs_engine_new(const struct swarm_config *sc, const struct cache_config *cc,
                  struct fs_engine **out);
/* Stop the session (pending reads complete with -ECANCELED), the worker, and the cache.
 * Torrent and reader handles die with it. NULL is a no-op. Not from a callback. */
void fs_engine_free(struct fs_engine *e);
/* The engine's session and cache, for what the engine does not wrap (the extension
 * channel, stats, usage). Valid until fs_engine_free. Any thread. */
struct swarm_session *fs_engine_session(struct fs_engine *e);
struct cache *fs_engine_cache(struct fs_engine *e);

/* Add the torrent in the .torrent bytes torrent/len (copied): register its files as
 * cache objects (see above) and start the torrent with the chunks already present. A file
 * this node publishes is moved into the cache first (cache_object_adopt with the key of
 * fs_engine_key): it is then complete, pinned, and seeded. With dial_now (a reader waits
 * for it) its peers are dialled as it starts (swarm_add_params.dial_now). Returns 0,
 * -EINVAL (malformed, no content, or a file of a v2 torrent not piece-aligned), -EEXIST
 * (added already), or the -errno of cache/ or swarm/. Any thread (not from a callback). */
int fs_engine_torrent_add(struct fs_engine *e, const void *torrent, size_t len, bool dial_now,
                          struct fs_engine_torrent **out);
/* Add a torrent that is not a cache object (the drive torrent, a metadata probe): as p
 * says, with libtorrent's own files under p->save_path; its pieces are not marked and its
 * uploads not checked, and the session's extension and metadata callbacks get p->ctx as torrent_ctx
 * (engine torrents give NULL). Remove it with fs_engine_torrent_remove. Returns 0 or the
 * -errno of swarm_torrent_add. Any thread (not from a callback). */
int fs_engine_torrent_add_plain(struct fs_engine *e, const struct swarm_add_params *p,
                                struct fs_engine_torrent **out);
/* Remove the torrent from the session (its data stays in the cache) and free t. Free
 * its readers first (fs_engine_reader_free). NULL is a no-op. Any thread (not from a
 * callback). */
void fs_engine_torrent_remove(struct fs_engine_torrent *t);
/* The cache key of a torrent: its v2 infohash, or its v1 infohash zero-padded. */
void fs_engine_key(const struct swarm_metainfo *m, uint8_t out_key[CACHE_KEY_LEN]);
/* The cache key of file index of a v2 or hybrid torrent of several files, whose torrent
 * key (fs_engine_key) is tkey. Pure; any thread. */
void fs_engine_file_key(const uint8_t tkey[CACHE_KEY_LEN], uint32_t index,
                        uint8_t out_key[CACHE_KEY_LEN]);
/* The torrent's swarm handle and its cache key (CACHE_KEY_LEN bytes). Any thread. */
struct swarm_torrent *fs_engine_torrent_swarm(struct fs_engine_torrent *t);
const uint8_t *fs_engine_torrent_key(struct fs_engine_torrent *t);

/* A reader of file index (among the torrent's real files): the state of one open
 * file (read-ahead); its offsets are the file's. Returns 0, -ENOENT (no such file),
 * -ENOMEM. Free it with fs_engine_reader_free before the torrent goes. Any thread. */
int fs_engine_reader_new(struct fs_engine_torrent *t, uint32_t index,
                         struct fs_engine_reader **out);
/* Cancel its pending reads (callbacks with -ECANCELED) and free it. NULL is a no-op.
 * Not from a callback. */
void fs_engine_reader_free(struct fs_engine_reader *r);

/* The range [offset, offset + len) can be read from the cache now (result 0), or not
 * (-ETIMEDOUT, -ECANCELED, -EIO...). Runs on the worker thread; must not block. */
typedef void (*fs_engine_ready_cb)(int result, void *ctx);

/* Make [offset, offset + len) of r's file readable from the cache. Returns 1 when it
 * is present already (read it with cache_block_pin/cache_read at the file's place,
 * fs_engine_file_where; cb is not called), 0
 * when cb will be called once, or -errno. Every call also moves r's read-ahead, so
 * call it for hits too. A range can be evicted again between cb and the caller's
 * read: retry on -ENODATA. timeout_ms 0 = the session's default. Any thread. */
int fs_engine_prepare(struct fs_engine_reader *r, uint64_t offset, size_t len, int timeout_ms,
                      fs_engine_ready_cb cb, void *ctx);
/* Where file index of t lives in the cache: its object's key and the offset of the
 * file's first byte there. -ENOENT: no such file. Any thread. */
int fs_engine_file_where(struct fs_engine_torrent *t, uint32_t index,
                         uint8_t out_key[CACHE_KEY_LEN], uint64_t *out_base);
/* How many bytes of [base, base + len) of object key are in chunks present now (a
 * file's "cached" bytes). Any thread. */
uint64_t fs_engine_cached(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t base,
                          uint64_t len);
/* The blocking form: prepare, wait, cache_read, retrying if evicted in between.
 * Returns the byte count (0 at the end), -ETIMEDOUT, -ECANCELED or -errno. Any thread
 * but the worker (not from a callback). */
ssize_t fs_engine_read(struct fs_engine_reader *r, void *buf, size_t len, uint64_t offset,
                       int timeout_ms);

#endif
