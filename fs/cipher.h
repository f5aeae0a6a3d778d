/*
 * The content cipher of private drives (private to fs/, DESIGN §9): AES-256-CTR through
 * OpenSSL EVP, with a per-file key and an IV made of the record's nonce. The counter of
 * the 16-byte block at byte offset o is o / 16 (IV = nonce, 8 bytes big-endian, then the
 * block number, 8 bytes big-endian), so any byte range encrypts or decrypts on its own:
 * random reads, read-ahead and seeking need nothing before the range.
 *
 * Threads: a struct fs_cipher is immutable after fs_cipher_init; fs_cipher_apply may run
 * on any number of threads at once. Errors: -EIO (OpenSSL), -ENOMEM.
 */
#ifndef SWARMFS_FS_CIPHER_H
#define SWARMFS_FS_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#define FS_CIPHER_KEY_LEN 32

struct fs_cipher {
	uint8_t key[FS_CIPHER_KEY_LEN];
	uint8_t nonce[8]; /* the IV's first half */
};

/* A key and nonce for a cipher. Any thread. */
void fs_cipher_init(struct fs_cipher *c, const uint8_t key[FS_CIPHER_KEY_LEN], int64_t nonce);
/* Wipe the key. */
void fs_cipher_release(struct fs_cipher *c);
/* A fresh random file key and record nonce (1..INT64_MAX) for new content. */
int fs_cipher_new_key(uint8_t out_key[FS_CIPHER_KEY_LEN], int64_t *out_nonce);
/* out = in XOR the key stream at byte offset off, len bytes (in == out allowed):
 * encrypts and decrypts alike. */
int fs_cipher_apply(const struct fs_cipher *c, uint64_t off, const void *in, void *out, size_t len);

#endif
