/*
 * swarmfs add into a private drive (private to fs/). A private drive's swarm carries only
 * ciphertext under opaque names (DESIGN.md §9), and a torrent's content is plaintext its
 * own swarm serves to anyone, so it cannot be claimed as it is (fs/import does that on a
 * public drive). Instead the torrent's content is fetched whole from its swarm, through
 * the drive's swarm session, into <drive>/staging/import-<n>/, and each of its files is
 * then handed to the publish queue as a copy (fs_staged_adopt: the same path a cp into
 * the mount takes): encrypted under a file key of its own, a ciphertext torrent named by
 * its nonce, its record citing nothing of the source torrent. Once every file is
 * queued, the source torrent leaves the session and its download directory goes.
 *
 * Deadlines: a magnet's metadata must come within the read timeout (-ETIMEDOUT, "no
 * metadata for <hash> after N s"); the content must make progress within the read
 * timeout, counted again from each piece that arrives (-ENODATA, "no data for <hash>
 * from its swarm within N s (X of Y bytes fetched)"): a large torrent may take as long
 * as it takes, a stalled one fails.
 *
 * Threads: fs_import_fetch from a FUSE worker (or the waiter's thread); one thread per
 * import fetches, stages and replies to the request. Ctrl-C of swarmfs add (a FUSE
 * interrupt) stops it with EINTR; so does an unmount (fs_import_fetch_stop). Either way
 * the source torrent is removed and its download deleted.
 * Ownership: everything the request needs is copied.
 * Errors: the reply carries them; the reason, in words, is in d->add_error.
 */
#ifndef SWARMFS_FS_IMPORT_FETCH_H
#define SWARMFS_FS_IMPORT_FETCH_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <stddef.h>

struct fs_drive;

/* Import the torrent given by source (a magnet, or an absolute .torrent path whose bytes
 * are bytes/len, borrowed) into the directory dirpath of d (a private drive) as name (""
 * for the torrent's own name), as fs_import does its claims. Replies to req once, with 0
 * when every file is queued for publishing, or an error: -EEXIST, -EACCES, -EINVAL as
 * fs_import_plan says, -EBADMSG (not a torrent), -ETIMEDOUT (no metadata), -ENODATA
 * (the content stalled), -EBUSY (this mount has the torrent in its session already),
 * -EINTR (interrupted, unmounting), -ENOSPC and the like. FUSE worker or any thread. */
void fs_import_fetch(fuse_req_t req, struct fs_drive *d, const char *dirpath, const char *name,
                     const char *source, const void *bytes, size_t len);
/* Stop every import of d (each replies EINTR), join their threads and free what they
 * share. Call it when the FUSE loop has ended (no add comes after it), while the
 * session still exists; again is a no-op. Main thread. */
void fs_import_fetch_stop(struct fs_drive *d);

#endif
