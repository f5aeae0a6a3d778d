/*
 * Packing a staged file for the swarm in one read (private to fs/): the torrent's v1 and
 * v2 hashes (whose v2 leaves are the cache's block digests) and, on a private drive, the ciphertext
 * (AES-256-CTR, fs/cipher.h) written to a file beside it, all from a single pass over
 * the staged file, its pieces spread over the machine's cores. Publishing used to read
 * each file twice (libtorrent's hashing, then the cache's); now it reads it once.
 *
 * It may also be done as the file is written (fs/follow.h): a packer takes the file's
 * bytes as far as they are final (fs_packer_step), hashing them at the piece length of
 * the size so far, and finishes once the file is closed (fs_packer_finish): a piece
 * length that changed with the size costs the v1 hashes of the new pieces' second
 * halves again (SHA-1 states are kept of the first), never the block digests or the
 * ciphertext.
 *
 * Threads: a packer is used by one thread at a time; fs_packer_step hashes on the
 * caller's thread alone, fs_packer_finish and fs_pack_file on helper threads of their
 * own too (hashing), all joined before they return. With a cipher, a packer's writer
 * thread writes the ciphertext, around the page cache, while the next batches are read
 * (up to 4 batches in its ring). Errors: -errno of the I/O, -ENOMEM, -EINVAL (an empty
 * file), -EIO, -ESTALE (the file is shorter than what was packed of it).
 */
#ifndef SWARMFS_FS_PACK_H
#define SWARMFS_FS_PACK_H

#include <stdint.h>
#include <sys/types.h>

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

/* A packer of the file src, as fs_pack_file packs it; size_hint (0: unknown) sizes its
 * buffers. The cipher is copied (the packer wipes its copy). On failure nothing is
 * left at cipher_path. */
struct fs_packer;
int fs_packer_new(const char *src, const struct fs_cipher *c, const char *cipher_path,
                  uint64_t size_hint, struct fs_packer **out);
/* Pack one batch of the whole pieces of the file's first avail bytes (which must not
 * change from then on) not packed yet: the bytes packed, 0 when there are none. */
ssize_t fs_packer_step(struct fs_packer *k, uint64_t avail);
/* The bytes below which the packer's v1 hashes are made. */
uint64_t fs_packer_done(const struct fs_packer *k);
/* The bytes its v1 hashes took so far: each byte once, but for the second halves of the
 * pieces a doubled piece length makes again (from the second quarter on when it
 * quadruples, and so on). */
uint64_t fs_packer_v1_work(const struct fs_packer *k);
/* Pack the rest of the file (its size now) into out, as fs_pack_file does; the
 * ciphertext is kept. */
int fs_packer_finish(struct fs_packer *k, const char *name, const char *const *trackers,
                     void (*progress)(uint32_t done, uint32_t total, void *ctx), void *progress_ctx,
                     struct fs_pack *out);
/* Free k; the ciphertext goes unless fs_packer_finish made it. NULL is a no-op. */
void fs_packer_free(struct fs_packer *k);
/* Where a private file's ciphertext goes: beside its staged file src, named by its
 * record's nonce (no name of the file). Into *out (malloc'd): 0 or -ENOMEM. */
int fs_pack_cipher_path(const char *src, int64_t nonce, char **out);

#endif
