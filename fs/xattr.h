/* The user.swarmfs.* attribute handlers of a mounted drive (private to fs/; fs_ops
 * lists them). FUSE worker threads; the session's userdata is the struct fs_drive. */
#ifndef SWARMFS_FS_XATTR_H
#define SWARMFS_FS_XATTR_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

void fs_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                  int flags);

#endif
