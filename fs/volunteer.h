/*
 * fs/volunteer — a member that offers space hosts what lacks holders (DESIGN §11),
 * private to fs/. `swarmfs mount --volunteer SIZE` (-o volunteer=SIZE).
 *
 * A worker thread looks, every FS_VOLUNTEER_PERIOD_MS (at once after taking one), at the drive's
 * files below the replica target, the fewest holders first (most needed), and takes the first one
 * this node does not hold that fits in what is left of SIZE: it fetches the whole file from the
 * swarm (its metadata too), pins it and records a host claim (fs_pin_entry), then looks again. What
 * this node holds counts against SIZE: every file its key holds on the ledger (its own publications
 * and pins included). A file that could not be fetched (no peer has it) is tried again after
 * FS_VOLUNTEER_RETRY_S. A node without a key, or whose key is no member, does nothing (and says so
 * once).
 *
 * Threads: start/stop on the main thread (stop before the engine goes); the worker
 * blocks on the swarm, never on a FUSE worker's behalf. Errors: -errno.
 */
#ifndef SWARMFS_FS_VOLUNTEER_H
#define SWARMFS_FS_VOLUNTEER_H

#include <stdint.h>

struct fs_drive;

#define FS_VOLUNTEER_PERIOD_MS 2000
#define FS_VOLUNTEER_RETRY_S   10

/* Start the worker with a budget of size bytes (d->volunteer). */
int fs_volunteer_start(struct fs_drive *d, uint64_t size);
/* Stop it (a fetch in progress ends within a second of d->closing); NULL is a no-op. */
void fs_volunteer_stop(struct fs_drive *d);
/* The budget and the bytes this node holds, for status; 0 and 0 when not volunteering. */
void fs_volunteer_usage(struct fs_drive *d, uint64_t *out_size, uint64_t *out_used);

#endif
