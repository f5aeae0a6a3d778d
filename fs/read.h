/*
 * fs/read — reads of published content for the FUSE handlers (private to fs/): from the
 * cache, fd-backed (splice), or parked until fs/engine has fetched the range, shared by
 * a drive's files (ops.c) and a mounted torrent's (torrentfs.c).
 *
 * A read that misses parks its request on the handle and returns; the engine's
 * callback (on its worker thread) replies. An interrupted read (Ctrl-C) is answered
 * EINTR at once; its fetch goes on, and its callback finds it answered. A handle
 * outlives its requests: each parked read holds a reference, the kernel one until
 * release.
 *
 * Threads: FUSE workers and the engine's worker; struct fs_read's lock guards parked
 * and refs. Errors: replies carry errno; functions return -errno.
 */
#ifndef SWARMFS_FS_READ_H
#define SWARMFS_FS_READ_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>

struct cache;
struct fs_engine_reader;
struct fs_read_parked;

struct fs_read {
	struct cache *cache;
	uint8_t key[32];                 /* the cache object that holds the file */
	uint64_t base;                   /* where the file starts in it */
	uint64_t length;                 /* the file's */
	struct fs_engine_reader *reader; /* NULL: only the cache serves it */
	int timeout_ms;                  /* a parked read fails with EIO after this */
	const char *what;                /* names the content in log lines (borrowed) */
	pthread_mutex_t lock;            /* guards parked and refs */
	struct fs_read_parked *parked;
	int refs;
	void (*on_last)(struct fs_read *r); /* the last reference went: free the owner */
};

/* Set up r (the kernel's reference: refs 1). The caller fills cache, key, base, length,
 * reader, timeout_ms. Any thread. */
void fs_read_init(struct fs_read *r, void (*on_last)(struct fs_read *));
/* Drop a reference; the last calls on_last (after destroying the lock). Any thread. */
void fs_read_put(struct fs_read *r);
/* Answer a read of [off, off + size) of the file (clipped to its length): at once from
 * the cache, or parked. FUSE worker. */
void fs_read_serve(fuse_req_t req, struct fs_read *r, size_t size, off_t off);
/* release: free the reader (cancelling what is parked: those callbacks answer EINTR to
 * requests the kernel has already given up) and drop the kernel's reference. FUSE
 * worker, not from an engine callback. */
void fs_read_release(struct fs_read *r);
/* Reply with size bytes of fd at off, fd-backed so libfuse can splice. Any thread. */
void fs_read_reply_fd(fuse_req_t req, int fd, off_t off, size_t size);

#endif
