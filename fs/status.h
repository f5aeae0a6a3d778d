/*
 * fs/status — what a mount reports about itself for swarmfs status (private to fs/):
 * the drive, the ledger, sync, the swarm, the cache and the publish queue, as text
 * (user.swarmfs.drive), as one JSON document (user.swarmfs.drive-json, schema in
 * swarmfs(1)) and as the screen of swarmfs status --watch (user.swarmfs.drive-watch:
 * per-torrent rates and pieces, the publish queue with hashing progress, peers).
 *
 * Threads: FUSE workers (the attribute handlers); each call takes the locks of what it
 * reads one at a time, and asks libtorrent for stats, so never from a swarm callback.
 * Errors: the text's length, or -ENOMEM. The caller frees *out.
 */
#ifndef SWARMFS_FS_STATUS_H
#define SWARMFS_FS_STATUS_H

#include <stddef.h>
#include <stdint.h>

struct fs_drive;

int fs_status_text(struct fs_drive *d, char **out);
int fs_status_json(struct fs_drive *d, char **out);
int fs_status_watch(struct fs_drive *d, char **out);

/* Append printf-style text to a malloc'd buffer (*buf may be NULL at first); on
 * failure the buffer is left as it was. */
void fs_text_add(char **buf, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1536 -> "1.5K": rates and sizes in a column of 6. */
void fs_human(uint64_t v, char *buf, size_t len);

#endif
