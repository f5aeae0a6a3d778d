/*
 * fs/sync — a drive's members find each other and replicate the ledger (private to fs/).
 *
 * The drive torrent is a v2 torrent whose one file, "swarmfs-genesis", is the genesis
 * block, with 16 KiB pieces. A shared genesis is at most 16 KiB, so the file's BEP 52
 * pieces root is the SHA-256 of the genesis: the drive id. The torrent is therefore fixed
 * by the drive id and the genesis length alone (fs_sync_drive_torrent), which is what a
 * swarmfs:// URI carries (id, gl=): a joiner builds the same torrent, libtorrent fetches
 * the one piece from the members and checks it against the id, and the ledger is joined
 * from those bytes.
 *
 * Every member seeds the drive torrent with the BEP 10 extension channel on, and the
 * ledger's sync state machine (status, getblocks, blocks, tx) runs over that channel.
 * A sync thread owns the state machine: swarm callbacks queue what peers sent, ledger
 * changes ask for an announce (coalesced), and a timer announces every two seconds.
 * The members' addresses (from the extension handshake) are also tried as peers for
 * the torrents of files this node reads, so one way of finding members is enough.
 *
 * Threads: fs_sync_start/stop on the main thread after/before the engine; the rest from
 * any thread, swarm callbacks included.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_FS_SYNC_H
#define SWARMFS_FS_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct fs_drive_opts;
struct fs_uri;
struct swarm_torrent;
struct ledger_key;

#define FS_SYNC_GENESIS_MAX 16384 /* one BEP 52 block: its pieces root is its SHA-256 */

/* The .torrent bytes of the drive torrent of drive id whose genesis block is len bytes
 * (1..FS_SYNC_GENESIS_MAX). Caller frees *out. -EINVAL, -ENOMEM. Any thread. */
int fs_sync_drive_torrent(const uint8_t id[32], size_t len, uint8_t **out, size_t *out_len);

/* Fetch the genesis block of the drive u names from its members (u's trackers and peers,
 * and o's) over a short-lived BitTorrent session, waiting timeout_ms at most; the bytes
 * are checked against the drive id. A private drive's comes over the members-only
 * channel, proving key (and u's invite, if any): -EACCES when the members refuse
 * (said why, plainly). Caller frees *out. -EINVAL (the URI lacks gl=), -ETIMEDOUT (no
 * member answered), -EBADMSG, -ENOMEM. Main thread, before the engine. */
int fs_sync_fetch_genesis(const struct fs_drive_opts *o, const struct fs_uri *u,
                          const struct ledger_key *key, int timeout_ms, uint8_t **out,
                          size_t *out_len);

/* A private drive's torrent: its one file ("swarmfs-drive") is 32 bytes fixed by the
 * drive id (fs_sync_private_content) and says nothing, so anyone who knows the id finds
 * the members, and the genesis goes only over the members-only channel (DESIGN §9). */
int fs_sync_private_torrent(const uint8_t id[32], uint8_t **out, size_t *out_len);
void fs_sync_private_content(const uint8_t id[32], uint8_t out[32]);

/* Send a ledger message to peer on t's extension channel, in fragments of the size
 * libtorrent takes (one flag byte each: 1 more follows, 0 the last). Any thread. */
int fs_sync_send(struct swarm_torrent *t, uint64_t peer, const uint8_t *buf, size_t len);

/* The trackers and static peers a drive remembers (<dir>/config, lines "tracker URL" and
 * "peer HOST:PORT"): written when a drive is joined from a URI, read at every mount. */
int fs_sync_config_save(const char *dir, const struct fs_uri *u);
/* Append the remembered trackers and peers to the NULL-terminated lists *trackers and
 * *peers (reallocated; the strings are malloc'd and owned by the lists). */
int fs_sync_config_load(const char *dir, char ***trackers, char ***peers);

/* Seed the drive torrent with the extension channel and start the sync thread. A drive
 * whose genesis is too big to share is mounted alone (logged). Main thread, after the
 * engine started. */
int fs_sync_start(struct fs_drive *d);
/* Stop the sync thread (before the engine goes); free what is left after the engine is
 * gone (its callbacks hold the sync until then). Both are safe if it never started. */
void fs_sync_stop(struct fs_drive *d);
void fs_sync_free(struct fs_drive *d);

/* The ledger changed: announce to the peers soon. Any thread. */
void fs_sync_kick(struct fs_drive *d);
/* Try the members known now as peers of t (a file torrent this node reads), and every
 * member that comes later, until fs_sync_forget(t), which must come before t is removed
 * (torrents that live until unmount need none). Any thread. */
void fs_sync_connect(struct fs_drive *d, struct swarm_torrent *t);
void fs_sync_forget(struct fs_drive *d, struct swarm_torrent *t);

struct fs_sync_info {
	bool running;         /* the drive torrent is up */
	uint32_t peers;       /* members on the sync channel */
	uint64_t best_height; /* the highest head a member announced */
	bool behind;          /* a member has a heavier chain: syncing */
	char torrent[65];     /* the drive torrent's v2 infohash, hex ("" if not running) */
	char refused[128];    /* private drives: why a member last refused us, "" if none
	                       * or a member admitted us since */
};
void fs_sync_info(struct fs_drive *d, struct fs_sync_info *out);
/* The members' credit ranks (fs/rank), NULL when sync is not running. Valid until
 * fs_sync_free. Any thread. */
struct fs_rank *fs_sync_rank(struct fs_drive *d);

/* Callbacks the engine's session hands to fs/ (swarm thread). */
void fs_sync_on_ext_peer(struct swarm_torrent *t, void *tctx, uint64_t peer, bool up, void *ctx);
void fs_sync_on_ext_message(struct swarm_torrent *t, void *tctx, uint64_t peer, const void *msg,
                            size_t len, void *ctx);

#endif
