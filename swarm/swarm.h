/*
 * swarm — the BitTorrent engine of a drive: a plain C API over libtorrent-rasterbar 2.0.
 * Sessions, torrents, on-demand reads with piece deadlines, seeding, and the BEP 10
 * extension channel that carries ledger sync.
 *
 * All C++ and every libtorrent type stay inside swarm/; this header is plain C with
 * opaque handles. Every exception is caught at the extern "C" edge (bad_alloc becomes
 * -ENOMEM, anything else -EIO). Never depends on cache/, ledger/ or fs/.
 *
 * Threads: one swarm thread per session pops alerts and runs every callback; callbacks
 * never block or re-enter swarm/ synchronously.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_SWARM_H
#define SWARMFS_SWARM_H

#ifdef __cplusplus
extern "C" {
#endif

/* The libtorrent version this build runs against, e.g. "2.0.8.0".
 * Returns a static string. Any thread. */
const char *swarm_libtorrent_version(void);

#ifdef __cplusplus
}
#endif
#endif
