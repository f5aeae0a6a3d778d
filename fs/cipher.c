/* AES-256-CTR of private drives' content (see cipher.h). */
#include "cipher.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

void fs_cipher_init(struct fs_cipher *c, const uint8_t key[FS_CIPHER_KEY_LEN], int64_t nonce)
{
	memcpy(c->key, key, FS_CIPHER_KEY_LEN);
	for (int i = 0; i < 8; i++)
		c->nonce[i] = (uint8_t)((uint64_t)nonce >> (56 - 8 * i));
}

void fs_cipher_release(struct fs_cipher *c)
{
	OPENSSL_cleanse(c, sizeof *c);
}

int fs_cipher_new_key(uint8_t out_key[FS_CIPHER_KEY_LEN], int64_t *out_nonce)
{
	uint64_t n = 0;

	do {
		if (RAND_bytes(out_key, FS_CIPHER_KEY_LEN) != 1 ||
		    RAND_bytes((unsigned char *)&n, sizeof n) != 1)
			return -EIO;
		n &= INT64_MAX;
	} while (!n);
	*out_nonce = (int64_t)n;
	return 0;
}

int fs_cipher_apply(const struct fs_cipher *c, uint64_t off, const void *in, void *out, size_t len)
{
	uint8_t iv[16], skip[16];
	uint64_t block = off / 16;
	EVP_CIPHER_CTX *ctx;
	int n = 0, rc = 0;

	if (!len)
		return 0;
	memcpy(iv, c->nonce, 8);
	for (int i = 0; i < 8; i++)
		iv[8 + i] = (uint8_t)(block >> (56 - 8 * i));
	if (!(ctx = EVP_CIPHER_CTX_new()))
		return -ENOMEM;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, c->key, iv) != 1)
		rc = -EIO;
	/* a range that starts inside a block: the block's first bytes of key stream go */
	if (!rc && off % 16 && EVP_EncryptUpdate(ctx, skip, &n, skip, (int)(off % 16)) != 1)
		rc = -EIO;
	while (!rc && len) {
		int chunk = len > (size_t)(INT_MAX & ~15) ? (INT_MAX & ~15) : (int)len;

		if (EVP_EncryptUpdate(ctx, out, &n, in, chunk) != 1)
			rc = -EIO;
		in = (const uint8_t *)in + chunk;
		out = (uint8_t *)out + chunk;
		len -= (size_t)chunk;
	}
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(skip, sizeof skip);
	return rc;
}
