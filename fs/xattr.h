/* The extended attributes of a mounted drive (private to fs/): user.swarmfs.* facts
 * of the ledger (owner, record, height, status, root, infohash, magnet, cached,
 * peers), the text the commands that ask a mount read (drive: swarmfs status; log:
 * swarmfs log), and the verbs set as attributes (add: swarmfs add; member: swarmfs
 * drive add-member; transfer: swarmfs transfer).
 *
 * Threads: FUSE handlers, on FUSE worker threads; each replies to req exactly once.
 * Errors reach the kernel as fs_kernel_errno() says; other attributes are ENODATA to
 * read and ENOTSUP to set. */
#ifndef SWARMFS_FS_XATTR_H
#define SWARMFS_FS_XATTR_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

void fs_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                  int flags);

#endif
