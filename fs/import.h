/* swarmfs add, the mount's side (private to fs/): an existing torrent, single- or
 * multi-file, becomes claims signed with the mount's key. A torrent of several files
 * becomes a directory tree: each file a claim citing the torrent (a v2 or hybrid
 * torrent by the file's pieces root, a v1 torrent by the file's index and offset),
 * the directories between them made by the ledger (implicit parents).
 *
 * Threads: a FUSE worker, for the explicit command (it blocks while a magnet's
 * metadata comes from the swarm, FS_IMPORT_METADATA_MS at most).
 * Errors: -errno; the reason, in words, is also kept in d->add_error. */
#ifndef SWARMFS_FS_IMPORT_H
#define SWARMFS_FS_IMPORT_H

struct fs_drive;

#define FS_IMPORT_METADATA_MS 30000

/* Import source (an absolute .torrent path or a magnet link) into the directory
 * dirpath (a drive path without its leading '/', "" for the root; the caller checked
 * that it exists and that this node may create in it) as name, or under the torrent's
 * own name when name is "". Returns 0, -EEXIST (the destination exists), -EBADMSG
 * (not a torrent), -ETIMEDOUT (no metadata for a magnet), -EINVAL (bad name), or the
 * -errno of reading the file or submitting a claim. */
int fs_import(struct fs_drive *d, const char *dirpath, const char *name, const char *source);

#endif
