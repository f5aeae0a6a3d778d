/*
 * Parked requests (private to fs/): a FUSE request that must wait for the network is
 * not waited for on its worker thread. Its fuse_req_t is kept, with what it needs
 * copied, and it is answered later by a completion, with one deadline per request.
 *
 * Reads: an open file's handle (struct fs_fh: a drive's file, fs/ops, or a mounted
 * torrent's, fs/torrentfs) keeps its parked reads; the engine's
 * completion (fs/engine's worker thread) or the reader's interrupt (Ctrl-C) answers
 * each, whichever comes first.
 *
 * Threads: fs_fh_* and fs_read_park from FUSE workers; completions run on the engine's
 * worker, holding no fs lock but the handle's own for a moment.
 * Ownership: a handle is counted (the kernel's reference until release, one per parked
 * read); the last fs_fh_put frees it.
 */
#ifndef SWARMFS_FS_PARK_H
#define SWARMFS_FS_PARK_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cache;
struct fs_drive;
struct fs_cipher;
struct fs_engine_reader;
struct fs_parked;
struct fs_readwin;
struct fs_staged;

/* An open file: the kernel's fi->fh. */
struct fs_fh {
	struct fs_staged *staged; /* NULL: published content */
	bool writer;
	bool has_content;
	struct cache *cache; /* where the content is (borrowed: the drive's, or the mount's) */
	int timeout_ms;      /* a parked read fails with EIO after this */
	uint8_t key[32];     /* the cache object: the v2 infohash, or as fs_content_where */
	uint64_t base;       /* where the file starts in the object (a v1 torrent of several) */
	uint64_t length;
	struct fs_engine_reader *reader; /* NULL: only the cache serves it */
	struct fs_cipher *cipher;        /* a private drive's content: its key, from open
	                                  * to the last put (wiped then); NULL: public */
	struct fs_readwin *win;          /* a private file's ciphertext read ahead
	                                  * (fs/filekey): NULL until its first read there
	                                  * (made under lock), freed at the last put */
	pthread_mutex_t lock;            /* guards parked and refs; the handle outlives its
	                                  * requests, so the interrupt callback may point at it */
	struct fs_parked *parked;
	int refs; /* the kernel's (until release) and one per parked read: an interrupted
	           * read's callback may come after release */
};

/* A zeroed handle with the kernel's reference reading from cache c (parked reads fail
 * after timeout_ms), or NULL (out of memory). Any thread. */
struct fs_fh *fs_fh_new(struct cache *c, int timeout_ms);
/* Drop a reference; the last frees h. Any thread. */
void fs_fh_put(struct fs_fh *h);

/* Reply with size bytes of fd at off, fd-backed so libfuse can splice them. */
void fs_reply_fd(fuse_req_t req, int fd, off_t off, size_t size);
/* Reply from the cache if the whole range of h's file is there: 0 (replied), or
 * -ENODATA and the like (not replied). d: the drive, needed only when h->cipher is set
 * (NULL for a mounted torrent, fs/torrentfs). Any thread. */
int fs_reply_cached(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size);

/* Read [off, off + size) of h's content (within its length; h has a reader): answered
 * now if the engine has it, else parked until the engine's completion, an interrupt
 * (EINTR) or h->timeout_ms (EIO). Always replies to req, once. d as for
 * fs_reply_cached. FUSE worker. */
void fs_read_park(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size);

#endif
