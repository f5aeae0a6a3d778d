/*
 * The waiter (private to fs/): FUSE requests that must wait for the swarm's metadata,
 * or for content a change in place copies, are parked here instead of blocking a FUSE
 * worker (DESIGN.md §10: a FUSE worker never waits on the network). Reads park on
 * their file handle (fs/park); these park with the waiter.
 *
 * One waiter thread per drive keeps each parked request (its fuse_req_t and copies of
 * what it needs) with its own deadline. Requests for the metadata of one infohash share
 * one probe torrent, added to the swarm as a magnet; the thread polls the probes when the
 * swarm says a torrent's metadata came (fs_waiter_kick) and every 50 ms while any is
 * waiting, and once a probe has its metadata it removes the probe
 * and finishes each of its requests on the waiter thread: an open checks the torrent
 * against its record, keeps and seeds it, makes its reader and replies; a copy then
 * waits for its pieces through the engine; an add signs its claim. A request still
 * waiting at its deadline fails with EIO, an interrupted one (Ctrl-C) with EINTR, and
 * at unmount (fs_waiter_stop) every parked request is answered EINTR at once, without
 * waiting for the network.
 *
 * Threads: fs_*_park from FUSE workers; completions run on the waiter thread, which
 * holds no fs lock while it replies. Start/stop/free on the main thread.
 * Ownership: a parked request owns what it was handed (the handle, the callback's ctx)
 * until it replies.
 */
#ifndef SWARMFS_FS_WAITER_H
#define SWARMFS_FS_WAITER_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <ledger.h>

#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct fs_fh;
struct fs_waiter;

/* Start d's waiter thread (after the engine). 0 or -errno. Main thread. */
int fs_waiter_start(struct fs_drive *d, struct fs_waiter **out);
/* Answer every parked request (EINTR), remove the probes and join the thread; later
 * parks are answered EINTR at once. Never waits for the network. Call it when the FUSE
 * loop has ended, while the session still exists; again is a no-op, NULL too. Main
 * thread. */
void fs_waiter_stop(struct fs_waiter *w);
/* Free w after fs_engine_free (engine completions of cancelled fetches may still name
 * it until then). NULL is a no-op. Main thread. */
void fs_waiter_free(struct fs_waiter *w);

/* What a parked request may wait for came (a probe's metadata): step the requests now,
 * not at the next poll. Any thread, swarm callbacks included (it only signals); NULL is a
 * no-op. */
void fs_waiter_kick(struct fs_waiter *w);

/* An open for reading of e's content (at path), whose metadata this node lacks: takes
 * ownership of h (its key and length set) and replies to req once, with fuse_reply_open
 * (fi copied, h as its fh, h->reader set) or an error. FUSE worker. */
void fs_open_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e, struct fs_fh *h,
                  const struct fuse_file_info *fi);
/* An open for reading of a private drive's e whose file key this member cannot open
 * yet (no epoch key sealed to it so far): asks again each round until it can, then goes
 * on as fs_open_park (no reader when the cache holds it whole); at the deadline,
 * EACCES. Takes ownership of h (its key, base and length set). FUSE worker. */
void fs_key_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e, struct fs_fh *h,
                 const struct fuse_file_info *fi);
/* An open for writing of e's content in place: h's staged file holds [0, off) of it
 * already; the rest comes from the cache or the swarm, then fuse_reply_open (fi
 * copied). On failure the staged file is dropped (fs_staged_unlink_open) and req gets
 * the error. Takes ownership of h. FUSE worker. */
void fs_copy_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e, struct fs_fh *h,
                  const struct fuse_file_info *fi, uint64_t off);

/* What a parked copy that is not an open does once h's staged file holds the content it
 * asked for (err 0), or cannot (err < 0: -EIO for the swarm's silence, -EINTR):
 * replies to req and disposes of h and its staged file (released, or dropped with
 * fs_staged_unlink_open), and frees ctx. Runs on the waiter thread, holding no lock. */
typedef void (*fs_copy_done_fn)(fuse_req_t req, int err, struct fs_fh *h, void *ctx);
/* As fs_copy_park, for a change that is not an open (a truncate): [off, end) of e's
 * content (end at most its length) comes into h's staged file, then done(ctx) answers
 * req instead of fuse_reply_open. Takes ownership of h and ctx. FUSE worker. */
void fs_copy_park_done(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e,
                       struct fs_fh *h, uint64_t off, uint64_t end, fs_copy_done_fn done,
                       void *ctx);

/* The metadata arrived (err 0, the .torrent bytes, borrowed for the call) or will not
 * (-ETIMEDOUT at the deadline, -EINTR, or another -errno): reply to req and free ctx.
 * Runs on the waiter thread. */
typedef void (*fs_meta_cb)(fuse_req_t req, int err, const void *torrent, size_t len, void *ctx);
/* Wait up to timeout_ms for the metadata of a magnet (copied): cb is called once.
 * FUSE worker. */
void fs_meta_park(fuse_req_t req, struct fs_drive *d, const char *magnet, int timeout_ms,
                  fs_meta_cb cb, void *ctx);

#endif
