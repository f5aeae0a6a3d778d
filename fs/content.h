/*
 * Owned content rewritten in place (private to fs/): the plaintext of a published file
 * copied into a staged file, for a write that changes it (an append, a read-write
 * open), for a truncate to another size (cut or zero-extended), and for `swarmfs
 * rekey`, which publishes the same plaintext again under a new file key sealed under
 * the newest epoch key (DESIGN §9): the way to cut a removed member off from files
 * published before the removal.
 *
 * Threads: FUSE workers; each blocks on the cache, and fs_content_copy on the swarm too
 * for content this node lacks when fetch is set (the others leave that to fs/waiter).
 * Errors: -errno.
 */
#ifndef SWARMFS_FS_CONTENT_H
#define SWARMFS_FS_CONTENT_H

#include <ledger.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct fs_drive;
struct fs_staged;

/* Copy the first len bytes of e's content (at most its length; decrypted on a private
 * drive) into fd. Content that is not all here: from the swarm with fetch (one deadline,
 * the read timeout, for the whole copy), else -EOPNOTSUPP. */
int fs_content_copy(struct fs_drive *d, const struct ledger_entry *e, uint64_t len, int fd,
                    bool fetch);
/* Copy (decrypted, on a private drive) what the cache holds of the first len bytes of e
 * (at most its length) into fd, up to the first chunk that is not here: the byte count,
 * or -errno. Local disk only: a FUSE worker may call it; the rest is fetched parked
 * (fs_copy_park). */
ssize_t fs_content_copy_cached(struct fs_drive *d, const struct ledger_entry *e, uint64_t len,
                               int fd);
/* truncate(2) of the owned file e at path to size, other than its length: a new version
 * staged as a copy of its content cut at size or extended with zeros, published as an
 * update as an overwrite is (public and private drives). Start: the staged file (a
 * writer's handle into *out_st) gets what the cache holds of the part kept,
 * [0, min(size, length)), decrypted on a private drive; returns 0 when that is all of
 * it, 1 when the rest, from *out_have on, must come from the swarm first
 * (fs_copy_park_done: a FUSE worker never waits for it). Then fs_content_resize_finish.
 * Local disk only. Returns 0, 1, -EISDIR, -EACCES or -EROFS (not this node's), -EFBIG,
 * or the -errno of staging (nothing is left staged then). FUSE worker. */
int fs_content_resize_start(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                            uint64_t size, struct fs_staged **out_st, uint64_t *out_have);
/* Cut or zero-extend st (fs_content_resize_start's, its content copied) to size and
 * release it: the publish worker makes it an update. On failure st is dropped. Any
 * thread. */
int fs_content_resize_finish(struct fs_drive *d, struct fs_staged *st, uint64_t size);
/* Re-encrypt the file at path (this node's, on a private drive) under the newest epoch:
 * staged and queued for publishing. -EACCES not the owner's, -EMEDIUMTYPE a public
 * drive, -EISDIR, -ENOENT. */
int fs_rekey(struct fs_drive *d, const char *path);

#endif
