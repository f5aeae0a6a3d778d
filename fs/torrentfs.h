/* swarmfs mount FILE.torrent|MAGNET MOUNTPOINT (private to fs/): one torrent mounted
 * read-only, without a drive or a key, in the manner of btfs. Its tree is the
 * torrent's; reads go through fs/engine (cache, piece deadlines, read-ahead, read
 * timeout) and fetch only the pieces they need; xattrs user.swarmfs.infohash, cached
 * and peers. The cache lives in <home>/torrents/<hash>/cache and survives a remount.
 *
 * Threads: fs_torrentfs_run runs on the main thread (the FUSE loop's workers and the
 * engine's threads under it); the handlers in torrentfs.c run on FUSE workers, read
 * completions on the engine's worker. */
#ifndef SWARMFS_FS_TORRENTFS_H
#define SWARMFS_FS_TORRENTFS_H

#include <stdbool.h>

struct fs_mount_opts;

/* Whether arg names a .torrent file rather than a drive: an existing regular file
 * whose name ends in ".torrent" or whose first byte is 'd' (a bencoded dict). */
bool fs_torrentfs_is_torrent(const char *arg);
/* Mount the torrent or magnet o->drive at o->mountpoint until unmounted. A magnet's
 * metadata is fetched first, in the foreground (FS_IMPORT_METADATA_MS at most).
 * Returns the process exit code (torrent_arg.h). */
int fs_torrentfs_run(const struct fs_mount_opts *o);

#endif
