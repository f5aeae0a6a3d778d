/* The FUSE low-level operations of a mounted drive (private to fs/). The session's
 * userdata is the struct fs_drive. Handlers run on FUSE worker threads and never wait
 * on the network. */
#ifndef SWARMFS_FS_OPS_H
#define SWARMFS_FS_OPS_H

#include <stdbool.h>

struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops fs_ops;

/* For the attribute verbs of fs/xattr.c, the handlers' own rules (FUSE workers). */
struct fs_drive;
struct ledger_entry;
struct ledger_content;
struct ledger_op;
/* The live entry at path if it is shown (verified, not marked bad); the root always. */
int fs_ops_lookup(struct fs_drive *d, const char *path, struct ledger_entry *e);
/* Whether this node's key owns the entry. */
bool fs_ops_owned(const struct fs_drive *d, const struct ledger_entry *e);
/* Content imported from a v1-only torrent (no pieces root). */
bool fs_ops_v1_only(const struct ledger_content *c);
/* A ledger or fs -errno as the kernel should see it (positive). */
int fs_ops_to_errno(int err);
/* Sign and submit a record with the mount's key: -EROFS without one. */
int fs_ops_submit(struct fs_drive *d, const struct ledger_op *op);
/* May this node create path (its parent is open or its own)? */
int fs_ops_may_create(struct fs_drive *d, const char *path);

#endif
