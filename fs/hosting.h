/*
 * fs/hosting — a mounted drive's side of hosting (DESIGN §11), private to fs/.
 *
 * - pin: the whole content of a file in the cache, the cache object pinned (never
 *   evicted), and this node's signed `host` claim on the ledger; unpin reverses both.
 * - health: for each file, how many live members hold it (host claims, the publisher
 *   implicitly), how many of those this node sees holding it whole right now
 *   ("confirmed": itself, and the complete peers of the file's swarm when this node
 *   has the file's torrent open or seeds it), and whether it is below the drive's
 *   replica target.
 * - the last known copy: a sweep every FS_HOSTING_SWEEP_MS pins ("keeps") the cache
 *   object of each file that no live member holds and that this node has whole, so
 *   the cache never evicts the last known full copy; a kept file is let go once a
 *   member holds it again. swarmfs status says how many are kept.
 *
 * Threads: fs_hosting_start/stop on the main thread (start after fs_drive_start);
 * the sweep runs on its own thread; fs_pin/fs_unpin on FUSE workers (they may fetch
 * what is missing of a file whose .torrent this node has, waiting up to the read
 * timeout); fs_hosting_fetch blocks (never on the engine's worker); the rest any
 * thread. Errors: -errno.
 */
#ifndef SWARMFS_FS_HOSTING_H
#define SWARMFS_FS_HOSTING_H

#include <ledger.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct fs_hosting;

#define FS_HOSTING_SWEEP_MS 2000
#define FS_HOSTING_META_MS  5000 /* a volunteer's wait for a file's metadata */

/* Start the last-copy sweep (its state hangs off d->hosting). */
int fs_hosting_start(struct fs_drive *d);
/* Stop it and free the state; NULL d->hosting is a no-op. */
void fs_hosting_stop(struct fs_drive *d);

/* Make all of e's content present in the cache, from the swarm if need be, within
 * timeout_ms. A file whose .torrent this node lacks needs its metadata from the swarm
 * first (FS_HOSTING_META_MS at most): only with wait_metadata (never on a FUSE
 * worker), else -EAGAIN. With pin, the cache object is pinned before the fetch (and
 * unpinned again if it fails and was not pinned before): on success it is pinned.
 * 0, -ETIMEDOUT, -EIO, -errno. */
int fs_hosting_fetch(struct fs_drive *d, const struct ledger_entry *e, int timeout_ms,
                     bool wait_metadata, bool pin);
/* Pin the file (a complete copy, pinned, claimed). With e already whole: no network.
 * -EISDIR, -EAGAIN (not all here and no .torrent yet: read it first), -EPERM (this
 * node's key is no live member: nothing pinned), -EROFS (no key). 0 when pinned (and
 * when it was already). wait_metadata as for fs_hosting_fetch. */
int fs_pin_entry(struct fs_drive *d, const struct ledger_entry *e, bool wait_metadata);
int fs_pin(struct fs_drive *d, const char *path);
/* Withdraw the claim and unpin. -ENOENT when this node neither claimed nor pinned it. */
int fs_unpin(struct fs_drive *d, const char *path);

/* The number of live members holding e's content (user.swarmfs.holders). */
int fs_holders_count(struct fs_drive *d, const struct ledger_entry *e);

/* The health of the files at or beneath path ("" the whole drive) as text: a first
 * line "target N", then one line per file "HOLDERS CONFIRMED /PATH", the fewest holders
 * first. *out malloc'd; returns its length. */
int fs_health_text(struct fs_drive *d, const char *path, char **out);
/* The same from a ledger alone (a drive that is not mounted): CONFIRMED is -1. */
int fs_health_text_ledger(struct ledger *l, const char *path, char **out);
/* Print such text as a table, or with json as a list of objects {path, holders,
 * confirmed (null when unknown), target, below}. */
int fs_health_print(const char *text, bool json);

/* The files kept as the last known copy, and their bytes. */
size_t fs_hosting_kept(struct fs_drive *d, uint64_t *out_bytes);

#endif
