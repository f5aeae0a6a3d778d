/* The FUSE low-level operations of a mounted drive (private to fs/). The session's
 * userdata is the struct fs_drive. Handlers run on FUSE worker threads and never wait
 * on the network. */
#ifndef SWARMFS_FS_OPS_H
#define SWARMFS_FS_OPS_H

struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops fs_ops;

#endif
