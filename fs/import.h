/* swarmfs add, the mount's side (private to fs/): an existing torrent, single- or
 * multi-file, becomes claims signed with the mount's key (a public drive; into a
 * private drive the content is fetched and published encrypted: fs/import_fetch). A torrent of
 * several files becomes a directory tree: each file a claim citing the torrent (a v2 or hybrid
 * torrent by the file's pieces root, a v1 torrent by the file's index and offset),
 * the directories between them made by the ledger (implicit parents).
 *
 * Threads: any (a FUSE worker, or the waiter's thread once a magnet's metadata came:
 * fs/xattr parks the add, never blocking a FUSE worker on the swarm).
 * Errors: -errno; the reason, in words, is also kept in d->add_error. */
#ifndef SWARMFS_FS_IMPORT_H
#define SWARMFS_FS_IMPORT_H

struct fs_drive;
struct swarm_metainfo;

#include <stddef.h>
#include <stdint.h>

/* How long swarmfs mount MAGNET waits for the metadata (fs/torrentfs). */
#define FS_IMPORT_METADATA_MS 30000

/* Import the torrent in bytes/len (borrowed; from source, an absolute .torrent path or
 * a magnet link, which names it in messages) into the directory dirpath (a drive path
 * without its leading '/', "" for the root; the caller checked that it is a directory)
 * as name, or under the torrent's own name when name is "". Returns 0, -EEXIST (the
 * destination exists), -EBADMSG (not a torrent), -EINVAL (bad name), -EACCES (this
 * node may not create there), or the -errno of submitting a claim. */
int fs_import(struct fs_drive *d, const char *dirpath, const char *name, const char *source,
              const void *bytes, size_t len);
/* What an add of the torrent m into dirpath as name makes (as fs_import): the drive
 * path of its top (*out_top) and of each of its m->num_files files (*out_paths), after
 * checking that name is one component, that this node may create top and that nothing
 * is there yet, published or being written. Returns 0 (free both with
 * fs_import_plan_free), -EINVAL, -EACCES and the like, -EEXIST, -ENOMEM; the reason in
 * d->add_error. */
int fs_import_plan(struct fs_drive *d, const char *dirpath, const char *name,
                   const struct swarm_metainfo *m, char **out_top, char ***out_paths);
void fs_import_plan_free(char *top, char **paths, uint32_t n);
/* Say why an add failed, in d->add_error (and the log). */
void fs_import_why(struct fs_drive *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A magnet's metadata did not come (err: -ETIMEDOUT, or another -errno): say so in
 * d->add_error, naming the magnet's hash. */
void fs_import_no_metadata(struct fs_drive *d, const char *source, int err);

#endif
