/*
 * The inode table of a mount (private to fs/): FUSE inode numbers <-> drive paths.
 *
 * The kernel names files by inode number and counts its references (lookups) until it
 * sends forget. Paths come from the ledger, which has no inode numbers, so the table
 * hands out numbers on lookup: a path keeps its number while the kernel holds it, and a
 * number is never reused for another path within a mount (numbers only grow), so tools
 * that compare st_ino (find, du, tar, rsync) never see two files as one.
 *
 * Paths are normalized drive paths without a leading slash; the root is "" and is
 * FUSE_ROOT_ID (1), never forgotten.
 * Threads: any thread; one mutex guards the whole table (operations are O(1) but for
 * renames of directories, which walk the table).
 */
#ifndef SWARMFS_FS_INODE_H
#define SWARMFS_FS_INODE_H

#include <stdbool.h>
#include <stdint.h>

struct fs_inodes;

int fs_inodes_new(struct fs_inodes **out_table);
void fs_inodes_free(struct fs_inodes *t);

/* The inode of path (created if new) with its lookup count raised by one, as a FUSE
 * reply to lookup/create/mkdir does. Returns 0 and *out_ino, -ENOMEM, -ENAMETOOLONG. */
int fs_inodes_ref(struct fs_inodes *t, const char *path, uint64_t *out_ino);

/* A malloc'd copy of the path of ino into *out_path (free() it): -ESTALE when the
 * number is unknown (forgotten, or never handed out). */
int fs_inodes_path(struct fs_inodes *t, uint64_t ino, char **out_path);

/* The inode number of path if the kernel holds it (no reference taken), else 0. */
uint64_t fs_inodes_find(struct fs_inodes *t, const char *path);

/* The number a plain readdir gives path (no reference taken): the kernel's, when it
 * holds the path, else a stable one from the path's hash with the top bit set, which
 * the table's own numbers (counted up from 1) never reach. Never 0: readdir(3) skips
 * d_ino 0. */
uint64_t fs_inodes_dirent_ino(struct fs_inodes *t, const char *path);

/* The kernel dropped n lookups of ino; at zero the entry goes. Unknown: ignored. */
void fs_inodes_forget(struct fs_inodes *t, uint64_t ino, uint64_t n);

/* Path from was renamed to to: from and everything beneath it now live under to, with
 * the same numbers. An entry already at to (or beneath it) is detached: its number
 * stays valid for the kernel's forget but no longer resolves (-ESTALE). */
int fs_inodes_rename(struct fs_inodes *t, const char *from, const char *to);

/* Call fn with the path of every entry that has one, under the table's lock: fn must
 * not call back into the table. */
void fs_inodes_each(struct fs_inodes *t, void (*fn)(const char *path, void *ctx), void *ctx);

/* Number of entries (root included); for status and tests. */
uint64_t fs_inodes_count(struct fs_inodes *t);

#endif
