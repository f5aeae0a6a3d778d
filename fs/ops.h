/* The FUSE low-level operations of a mounted drive (private to fs/). The session's
 * userdata is the struct fs_drive. Handlers run on FUSE worker threads and never wait
 * on the network.
 *
 * Besides the table, the handlers' shared rules, for the other files of handlers
 * (xattr.c): who may change the drive, how a change becomes a record, and how a
 * failure reaches the kernel; what is shown and who owns it are node.h's. Any thread;
 * each takes the ledger's lock for its call. */
#ifndef SWARMFS_FS_OPS_H
#define SWARMFS_FS_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <ledger.h>

#include <stdbool.h>

struct fs_drive;
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops fs_ops;

/* Whether the caller of req may change the drive or read what is staged: only the
 * mount's owner (its uid; root is no exception) acts with the mount's key, as an sshfs
 * mount is its owner's. With --allow-other, other users read what is published.
 * 0 or -EACCES. */
int fs_caller_check(fuse_req_t req);
/* A -errno of this program as the kernel should see it (a positive errno): the
 * ledger's -EPERM ("this key may not") is EACCES for a filesystem user (DESIGN.md §7),
 * -EBADMSG is EIO, -ESTALE (another record won the race) EAGAIN. */
int fs_kernel_errno(int err);
/* Sign op with this node's key and submit it: 0, -EROFS (no key), or the ledger's
 * refusal (logged at debug level). */
int fs_record_submit(struct fs_drive *d, const struct ledger_op *op);
/* May this node create path: its parent is a directory this key owns, or an open one.
 * 0, -EROFS, -ENOTDIR, -EACCES, -ENOENT. */
int fs_path_may_create(struct fs_drive *d, const char *path);

#endif
