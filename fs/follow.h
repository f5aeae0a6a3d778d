/*
 * Packing a staged file while it is written (private to fs/): a cp into the mount
 * writes a new file front to back, and a follower packs it (fs/pack.h: the hashes and,
 * on a private drive, the ciphertext) a batch behind the writes, on a thread of its own,
 * so that publishing the closed file has only its tail left to read. Publishing a
 * 512 MiB file used to read and hash it all after the cp returned, while the cp had
 * left a core idle.
 *
 * A follower packs only bytes that are final: those written from offset 0 on, in order.
 * Every write is reported to it (fs_follow_wrote) after it is made; one below what the
 * follower may have read already (a rewrite, a seek back) cancels it, as does anything
 * else that changes the file (fs_follow_cancel: a truncate, a copy of older content):
 * a cancelled follower is never taken, and publishing packs the whole file as before.
 * A file is followed from FOLLOW_MIN bytes on (a cp -r of small files starts no thread),
 * and at most FOLLOW_MAX files a process at once.
 *
 * Threads: fs_follow_* may be called from any thread (FUSE workers, the publish
 * worker); the follower's thread takes no lock of the caller's. fs_follow_take and
 * fs_follow_free stop and join it (a batch at most: ~10 ms). Errors: -ENOMEM.
 */
#ifndef SWARMFS_FS_FOLLOW_H
#define SWARMFS_FS_FOLLOW_H

#include "cipher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_follow;
struct fs_packer;

/* A follower of the staged file at file (empty now); priv: a private drive's, whose
 * ciphertext it writes beside it under a file key of its own. */
int fs_follow_new(const char *file, bool priv, struct fs_follow **out);
/* n bytes were written at off. */
void fs_follow_wrote(struct fs_follow *f, uint64_t off, size_t n);
/* The file changes in a way the follower cannot follow: it stops, for good. */
void fs_follow_cancel(struct fs_follow *f);
/* The bytes packed so far (0 until a thread started; it may pack some again when the
 * piece length changes with the size). */
uint64_t fs_follow_packed(struct fs_follow *f);

/* What a follower packed, for publishing: the packer (finish it with fs_packer_finish,
 * free it with fs_packer_free) and, on a private drive, the file key and the nonce it
 * encrypted with and the ciphertext's path (malloc'd). */
struct fs_followed {
	struct fs_packer *k;
	uint8_t key[FS_CIPHER_KEY_LEN];
	int64_t nonce;
	char *cipher_path;
	uint64_t packed; /* bytes packed while the file was written */
};
/* Stop f and free it: 0 and its work in *out, or -ENOENT when there is none to take
 * (cancelled, failed, or never started: the file stayed small). */
int fs_follow_take(struct fs_follow *f, struct fs_followed *out);
/* Stop f and free it, its work too (the ciphertext goes). NULL is a no-op. */
void fs_follow_free(struct fs_follow *f);

#endif
