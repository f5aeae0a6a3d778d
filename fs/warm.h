/*
 * Reading files back into the page cache in the background (private to fs/): a private
 * drive's new ciphertext, written around the page cache (fs/pack.c), is read in after
 * its publish, for the peers that fetch a new file first (members replicating it, a
 * seedbox), as a public drive's staged file is there for them already. A seeder reading
 * it from disk instead served a member's cold read at 71 % of a public seeder's speed;
 * with this, at 92-108 % (scripts/bench/fs.sh).
 *
 * One thread, a queue of files read one after the other once the drive has been quiet
 * for a moment (warm.c's WARM_DELAY_MS: no file added, written or packed, no read
 * through the mount), with read(2): the kernel's read-ahead puts them in large folios
 * (POSIX_FADV_WILLNEED puts 4 KiB pages, and 512 MiB of those took 65-76 ms to read from
 * the page cache against 32). Reading them back while the file was being written (on the
 * pack's writer thread) took that memory and a core from the cp itself: the private
 * publish ran at 68 % of the public one's, and at 77-94 % with the read-back after it.
 *
 * Threads: fs_warmer_add and fs_warmer_hold from any thread; fs_warmer_stop joins the
 * thread (a read of 1 MiB at most). Errors: -errno of pthread_create, -ENOMEM.
 */
#ifndef SWARMFS_FS_WARM_H
#define SWARMFS_FS_WARM_H

#include <stdint.h>

struct fs_warmer;

/* A warmer and its thread (a background priority, named "warm"): 0, or -errno. */
int fs_warmer_start(struct fs_warmer **out);

/* Read [0, len) of the file at path (copied) into the page cache on the warmer's thread,
 * 0.5 s from now at the earliest (warm.c's WARM_DELAY_MS: a hold), after the files added
 * before. Advice only: a file that cannot be opened then, or one added while
 * FS_WARM_QUEUE_MAX are waiting, is left where it is (on disk, read from there when
 * asked). */
void fs_warmer_add(struct fs_warmer *w, const char *path, uint64_t len);

/* The drive is busy (a file staged or written, a batch packed, a read through the
 * mount): nothing is read for the next 0.5 s (WARM_DELAY_MS), and a file being read in
 * pauses where it is. NULL: nothing. */
void fs_warmer_hold(struct fs_warmer *w);

/* Stop and free the warmer (NULL: nothing); what it had not read yet is dropped. */
void fs_warmer_stop(struct fs_warmer *w);

/* Files waiting at most; a cp -r of thousands of large files does not queue them all. */
#define FS_WARM_QUEUE_MAX 64

#endif
