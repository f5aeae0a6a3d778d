/*
 * Publishing by copy (private to fs/): files being written live in the drive's staging
 * directory and in an in-memory overlay that lookups consult first, so a new file is
 * visible at once; when its last writer closes it, a durable queue item (in the
 * ledger) is handed to the publish worker, which hashes it into a hybrid torrent,
 * signs and submits a claim (or update) record, moves the file into the cache as a
 * pinned object, saves its .torrent and seeds it. Until all of that succeeded, the
 * staging copy stays; a failure is kept with its reason (swarmfs status shows it).
 * After a crash the queue resumes at the next mount.
 *
 * Staging layout: <drive>/staging/<n>-<pid>, one flat directory (a queue item of the
 * layout before, <drive>/staging/<n>/<basename>, still publishes); the torrent gets the
 * file's name at the path it is published at. The worker takes the files closed
 * meanwhile as one batch (fs/publish.c: PUB_BATCH, GATHER_MS).
 * Mode and mtime set on a file before it is published are applied to the staging file
 * itself, so the record carries them (cp -a gives one record, not two).
 *
 * Threads: FUSE workers call the fs_staged_* functions; one publish worker thread.
 * The overlay lock is taken after no other fs lock and held for no I/O but fstat.
 */
#ifndef SWARMFS_FS_PUBLISH_H
#define SWARMFS_FS_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct fs_drive;
struct fs_staged;

/* Start the worker; re-queue what a previous run left (queue items whose staging file
 * exists become overlay entries again). */
int fs_publish_start(struct fs_drive *d);
/* Stop the worker after the item in hand (what is queued stays queued). */
void fs_publish_stop(struct fs_drive *d);

/* The stat of a staged path (size and times from the staging file) if path is in the
 * overlay: 0, or -ENOENT. */
int fs_staged_stat(struct fs_drive *d, const char *path, struct stat *out_st);

/* Names staged directly in dir (for readdir), as a malloc'd array of malloc'd strings;
 * the caller frees both. Returns the count or -ENOMEM. */
int fs_staged_children(struct fs_drive *d, const char *dir, char ***out_names);

/* Create an empty staged file at path (mode, truncating any staged one there):
 * returns a handle with one writer, or -errno. */
int fs_staged_create(struct fs_drive *d, const char *path, mode_t mode, struct fs_staged **out);
/* Publish the file at file (this node's, on the filesystem of the drive's directory) as
 * a copy at path with mode, as if a cp had just closed it there: the file is moved (not
 * copied) into a staging directory of its own, fsynced and queued. Returns 0, -EEXIST
 * (a file is staged at path already), -EROFS (no key), or the -errno of the move (file
 * is left where it was then). Any thread. */
int fs_staged_adopt(struct fs_drive *d, const char *path, const char *file, mode_t mode);
/* Open the staged file at path again (-ENOENT if none); write: as a writer. A file
 * already handed to the worker cannot be written again until it is published
 * (-EBUSY), but can be read. */
int fs_staged_open(struct fs_drive *d, const char *path, bool write, struct fs_staged **out);
/* Pack a new file as it is written (fs/follow.h): a create's handle, before any write.
 * Any thread. */
void fs_staged_follow(struct fs_drive *d, struct fs_staged *s);
/* Write to an open writer's staging file, as pwrite(2): -errno, or the bytes written. */
ssize_t fs_staged_write(struct fs_drive *d, struct fs_staged *s, const void *buf, size_t n,
                        uint64_t off);
/* The staging file's fd of an open handle, to read (and fsync). */
int fs_staged_fd(struct fs_staged *s);
/* The same fd, to change the file by other means than fs_staged_write (a copy of the
 * current content, a truncate): the file is not packed as it is written from then on. */
int fs_staged_fd_modify(struct fs_drive *d, struct fs_staged *s);
/* close(2) of a writer's fd: fsync and queue (once), so a closed file survives a crash
 * even before release. */
int fs_staged_flush(struct fs_drive *d, struct fs_staged *s);
/* Close a handle; the last writer's close lets the worker publish the file. */
int fs_staged_release(struct fs_drive *d, struct fs_staged *s, bool was_writer);

/* chmod/utimens/truncate of a staged path: applied to the staging file. -ENOENT if path
 * is not staged. to_set uses FUSE_SET_ATTR_* bits. */
int fs_staged_setattr(struct fs_drive *d, const char *path, const struct stat *attr, int to_set);
/* Rename/remove a staged path before it is published. -ENOENT if not staged, -EBUSY
 * while the worker has it in hand. A file removed while open keeps its data for the
 * open descriptors (ino: the kernel's number for it, for fstat) and is never published. */
int fs_staged_rename(struct fs_drive *d, const char *from, const char *to);
int fs_staged_unlink(struct fs_drive *d, const char *path, uint64_t ino);
/* The attributes of a file unlinked while open (by ino, the number the kernel has for
 * it), from its descriptor: -ENOENT once it is closed. Any thread. */
int fs_staged_orphan_stat(struct fs_drive *d, uint64_t ino, struct stat *out_st);
/* Drop a staged file this caller just created and still holds open (a failed open):
 * it is never published. Frees the handle. */
void fs_staged_unlink_open(struct fs_drive *d, struct fs_staged *s);

/* A read through the mount is served: the drive's warmer waits (fs/warm.h), or the disk
 * serves both at once, the read's own bytes twice. Any thread. */
void fs_publish_reading(struct fs_drive *d);

struct fs_publish_status {
	uint64_t staged;      /* files in the overlay */
	uint64_t queued;      /* queue items */
	uint64_t failed;      /* items whose last attempt failed */
	uint64_t published;   /* files published by this mount */
	char last_error[600]; /* when failed: "PATH: reason (kept in FILE)" of the newest */
};
void fs_publish_status(struct fs_drive *d, struct fs_publish_status *out);

/* One staged file, as swarmfs status shows it; the strings live for the call. */
struct fs_publish_item {
	const char *path;
	const char *state; /* writing, staged, queued, hashing, failed */
	uint64_t size;
	uint32_t hashed, pieces; /* hashing: pieces hashed so far of pieces (0 of 0 at first) */
};
typedef void (*fs_publish_item_fn)(const struct fs_publish_item *it, void *ctx);
/* fn for each staged file, oldest first, under the publisher's lock (fn must not call
 * back into fs/publish). Returns how many. Any thread. */
int fs_publish_list(struct fs_drive *d, fs_publish_item_fn fn, void *ctx);

#endif
