/*
 * Packing a staged file for the swarm in one read (private to fs/): the torrent's v1 and
 * v2 hashes (whose v2 leaves are the cache's block digests) and, on a private drive, the ciphertext
 * (AES-256-CTR, fs/cipher.h) written to a file beside it, all from a single pass over
 * the staged file, its pieces spread over the machine's cores. Publishing used to read
 * each file twice (libtorrent's hashing, then the cache's); now it reads it once.
 *
 * Threads: fs_pack_file blocks (the publish worker calls it) and starts helper threads of
 * its own (hashing; on a private drive, one writer of the ciphertext, which goes to disk
 * around the page cache while the next batches are read: up to 4 batches in its ring),
 * all joined before it returns. Errors: -errno of the I/O, -ENOMEM, -EINVAL (an
 * empty file), -EIO.
 */
#ifndef SWARMFS_FS_PACK_H
#define SWARMFS_FS_PACK_H

#include <stdint.h>

struct fs_cipher;
struct swarm_metainfo;

struct fs_pack {
	struct swarm_metainfo *m; /* the hybrid torrent of what the swarm carries */
	uint8_t (*blocks)[32];    /* SHA-256 of each 16 KiB block (the v2 leaves), what
	                           * cache_object_adopt_hashed takes */
	uint64_t nblocks;
	uint32_t n; /* pieces */
};

/* Pack the file src (non-empty) into out: the torrent names its one file name; with a
 * cipher c, the ciphertext goes to cipher_path (created, 0600) and the torrent and the
 * hashes are of it; without, of src itself. trackers: NULL-terminated, or NULL. On
 * failure nothing is left at cipher_path. Release out with fs_pack_release. */
/* progress (may be NULL) hears the pieces done of the total after each batch, on the
 * calling thread (for swarmfs status). */
int fs_pack_file(const char *src, const char *name, const struct fs_cipher *c,
                 const char *cipher_path, const char *const *trackers,
                 void (*progress)(uint32_t done, uint32_t total, void *ctx), void *progress_ctx,
                 struct fs_pack *out);
void fs_pack_release(struct fs_pack *p);

#endif
