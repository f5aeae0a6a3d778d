/*
 * fs/join — a private drive's door (private to fs/): being served the genesis over the
 * members-only channel, and what a newcomer does once in (redeem its invite; every
 * member seals the epoch key to those who lack it).
 *
 * A joiner without the ledger runs a ledger_hs per member on the private drive torrent's
 * extension channel: hello, auth (with the invite, if any), then asks "getgenesis".
 * A member that admits it answers with the genesis, checked here against the drive id;
 * one that does not says why ("refused"), which the mount prints and exits on.
 *
 * Threads: fs_join_on_* run on the swarm thread and only queue; everything else on the
 * thread that made the fs_join (the main thread, before the mount's engine).
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_FS_JOIN_H
#define SWARMFS_FS_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct fs_join;
struct fs_uri;
struct ledger_key;
struct swarm_torrent;

/* A join of drive id proving key (borrowed until fs_join_free) and, if not NULL, the
 * invite secret (32 bytes, copied). */
int fs_join_new(const uint8_t id[32], const struct ledger_key *key, const uint8_t *invite,
                struct fs_join **out);
void fs_join_free(struct fs_join *j); /* NULL is a no-op; after the session is gone */

/* Swarm callbacks for the join session (torrent ctx: the fs_join). */
void fs_join_on_peer(struct swarm_torrent *t, void *tctx, uint64_t peer, bool up, void *ctx);
void fs_join_on_message(struct swarm_torrent *t, void *tctx, uint64_t peer, const void *msg,
                        size_t len, void *ctx);

/* Handshake with every member that connects on t until one serves the genesis (*out,
 * malloc'd, checked against the id) or timeout_ms passes. -EACCES when members refused
 * (the reason printed as a user would want it, naming u's drive), -ETIMEDOUT when none
 * answered. */
int fs_join_run(struct fs_join *j, struct swarm_torrent *t, const struct fs_uri *u, int timeout_ms,
                uint8_t **out, size_t *out_len);

/* The invite a joiner proves until it is a member: <drive dir>/invite, mode 0600.
 * fs_join_invite_load: 0 and the secret, -ENOENT if none. */
int fs_join_invite_save(const char *dir, const uint8_t secret[32]);
int fs_join_invite_load(const char *dir, uint8_t out[32]);

/* Membership upkeep, on the sync thread every tick of a private drive: redeem our
 * invite once the ledger holds it (and forget it once we are a member), and seal the
 * epoch key to members that lack it. Returns true while this node still proves an
 * invite (not a member yet). */
bool fs_join_tend(struct fs_drive *d, const uint8_t *invite);

#endif
