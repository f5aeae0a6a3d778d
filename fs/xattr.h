/* The extended attributes of a mounted drive (private to fs/): user.swarmfs.* facts
 * of the ledger (owner, record, height, status, root, infohash, magnet, cached,
 * peers), the text the commands that ask a mount read (drive: swarmfs status; log:
 * swarmfs log), and the verbs set as attributes (add: swarmfs add; member: swarmfs
 * drive add-member; transfer: swarmfs transfer).
 *
 * Threads: FUSE handlers, on FUSE worker threads; each replies to req exactly once.
 * Errors reach the kernel as fs_kernel_errno() says; other attributes are ENODATA to
 * read and ENOTSUP to set, and every namespace but user.* (security.*, system.*,
 * trusted.*) is ENOTSUP to read: see fs_xattr_absent(). */
#ifndef SWARMFS_FS_XATTR_H
#define SWARMFS_FS_XATTR_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

/* The errno for reading an attribute the mount does not have: ENODATA in the user.*
 * namespace, ENOTSUP (unsupported) in any other. ls -l asks security.selinux and
 * system.posix_acl_access of every file, and the kernel caches neither answer for a
 * FUSE mount; after one ENOTSUP ls stops asking for the whole device (coreutils
 * remembers the unsupported st_dev), which halves the round trips of a listing. Any
 * thread. */
int fs_xattr_absent(const char *name);

void fs_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                  int flags);

#endif
