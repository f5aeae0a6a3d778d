/*
 * Owned content rewritten in place (private to fs/): the plaintext of a published file
 * copied into a staged file, for a write that changes it (an append, a read-write
 * open) and for `swarmfs rekey`, which publishes the same plaintext again under a new
 * file key sealed under the newest epoch key (DESIGN §9): the way to cut a removed
 * member off from files published before the removal.
 *
 * Threads: FUSE workers; both block on the cache (and the swarm for content this node
 * lacks, when fetch is set). Errors: -errno.
 */
#ifndef SWARMFS_FS_CONTENT_H
#define SWARMFS_FS_CONTENT_H

#include <ledger.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct fs_drive;

/* Copy the first len bytes of e's content (at most its length; decrypted on a private
 * drive) into fd. Content that is not all here: from the swarm with fetch (one deadline,
 * the read timeout, for the whole copy), else -EOPNOTSUPP. */
int fs_content_copy(struct fs_drive *d, const struct ledger_entry *e, uint64_t len, int fd,
                    bool fetch);
/* Copy (decrypted, on a private drive) what the cache holds of e from its start into fd,
 * up to the first chunk that is not here: the byte count, or -errno. Local disk only: a
 * FUSE worker may call it; the rest is fetched parked (fs_copy_park). */
ssize_t fs_content_copy_cached(struct fs_drive *d, const struct ledger_entry *e, int fd);
/* truncate(2) of the owned file e at path to size, other than its length: a new version
 * staged as a copy of its content cut at size or extended with zeros, queued for
 * publishing as an update, as an overwrite is (public and private drives). What the
 * copy needs of content this node lacks (a file transferred to it, or a public
 * torrent's it imported) comes from the swarm, blocking within the read timeout, as
 * for fs_rekey; its own published content is pinned here and never waits.
 * Returns 0, -EISDIR, -EACCES (not this node's), -EIO (the content out of reach), or
 * the -errno of staging. FUSE worker. */
int fs_content_resize(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                      uint64_t size);
/* Re-encrypt the file at path (this node's, on a private drive) under the newest epoch:
 * staged and queued for publishing. -EACCES not the owner's, -EMEDIUMTYPE a public
 * drive, -EISDIR, -ENOENT. */
int fs_rekey(struct fs_drive *d, const char *path);

#endif
