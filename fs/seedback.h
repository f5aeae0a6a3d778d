/*
 * fs/seedback — seeding back what this node holds (DESIGN.md §6), private to fs/.
 *
 * Every cache object with verified pieces is offered to the swarm while the drive is
 * mounted, so another member's read finds this node without it opening the file first.
 * Up to `max` of them get their torrent loaded at mount (announced to the trackers and
 * the DHT like any torrent); the rest wait in an index by infohash and are loaded when a
 * peer asks this node for one of them (its handshake names a torrent the session does
 * not have: swarm_config.on_unknown). That peer is turned away once and finds the torrent
 * on its next dial. A node holding 100k files thus keeps a few thousand torrents in
 * libtorrent (~9 KB each) instead of 100k, and loses no copy: what it holds is served
 * to whoever dials it (members dial each other for every file). What the index does not
 * do: announce the torrents it has not loaded, so a client that knows this node only
 * through a tracker or the DHT finds the first `max` and what peers asked for since.
 * A loaded torrent stays loaded until unmount.
 *
 * What this node publishes while mounted joins the same scheme: its torrent is loaded
 * by this thread, off the publish worker, while fewer than `max` are loaded, else
 * indexed for loading on demand (a cp -r of 10,000 small files used to add 10,000
 * torrents to libtorrent, one synchronous call each on the publish path).
 *
 * v1 companions of pinned objects (plain v1 clients) are always loaded.
 *
 * Threads: fs_seedback_new before the session starts (the callback may come as soon as
 * it listens); fs_seedback_start/stop on the main thread; the scan and the loads run on
 * the seedback's own thread, niced; fs_seedback_on_unknown on libtorrent's network
 * thread (a lookup under a mutex, never a swarm/ call); fs_seedback_published and
 * fs_seedback_count any thread.
 * Errors: -errno.
 */
#ifndef SWARMFS_FS_SEEDBACK_H
#define SWARMFS_FS_SEEDBACK_H

#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct fs_seedback;

/* The state for d, loading at most max torrents at mount (0: none, all on demand).
 * Returns 0, -ENOMEM. */
int fs_seedback_new(struct fs_drive *d, size_t max, struct fs_seedback **out);
/* Start the thread: it scans <drive>/torrents, loads up to max, indexes the rest and
 * then loads what peers ask for. */
int fs_seedback_start(struct fs_seedback *sb);
/* Stop and join the thread (before the engine goes); a no-op if not started. */
void fs_seedback_stop(struct fs_seedback *sb);
/* Free (after the session, whose network thread may still call in); NULL is a no-op. */
void fs_seedback_free(struct fs_seedback *sb);

/* A peer asked for the torrent whose 20-byte handshake hash is ih (swarm_unknown_cb,
 * ctx = the fs_drive): if this node holds it, queue its load. */
void fs_seedback_on_unknown(const uint8_t ih[20], void *ctx);

/* This node just published the content key (v1: its hybrid torrent's v1 infohash, or
 * NULL), its torrent saved as <drive>/torrents/<hex>.torrent: queue it to be loaded, or
 * indexed if `max` are loaded already. Returns 0 or -ENOMEM (then it is seeded once it
 * is opened, or from the next mount's scan). Any thread; never blocks on the session. */
int fs_seedback_published(struct fs_seedback *sb, const uint8_t key[32], const uint8_t *v1);

/* Torrents loaded at mount or as published, held files indexed to load on demand, and loaded since
 * on a peer's asking. */
struct fs_seedback_count {
	size_t loaded, indexed, on_demand;
};
void fs_seedback_count(struct fs_seedback *sb, struct fs_seedback_count *out);

#endif
