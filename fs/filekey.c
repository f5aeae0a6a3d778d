/* Private drives' content at open and read (see filekey.h). */
#include "filekey.h"

#include "cipher.h"
#include "drive.h"
#include "fs.h"
#include "park.h"

#include <cache.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int fs_filekey_cipher(struct fs_drive *d, const struct ledger_entry *e, struct fs_cipher **out)
{
	uint8_t key[LEDGER_FILE_KEY_LEN];
	struct fs_cipher *c;
	int64_t nonce = 0;
	int err;

	*out = NULL;
	if (!ledger_is_private(d->ledger) || e->is_dir || e->content.length == 0)
		return 0;
	err = ledger_file_key_open(d->ledger, e->record_id, key, &nonce);
	if (err < 0) {
		char hex[LEDGER_HEX_LEN];

		ledger_hex(e->record_id, LEDGER_ID_LEN, hex);
		fs_warn("no key for the content of record %.16s: %s", hex, strerror(-err));
		return err == -ENOKEY || err == -EINVAL ? -EACCES : -EIO;
	}
	if (!(c = malloc(sizeof *c))) {
		OPENSSL_cleanse(key, sizeof key);
		return -ENOMEM;
	}
	fs_cipher_init(c, key, nonce);
	OPENSSL_cleanse(key, sizeof key);
	*out = c;
	return 0;
}

void fs_filekey_free(struct fs_cipher *c)
{
	if (!c)
		return;
	fs_cipher_release(c);
	free(c);
}

int fs_content_name(struct fs_drive *d, const char *path, const struct ledger_entry *e, char *out,
                    size_t size)
{
	uint8_t key[LEDGER_FILE_KEY_LEN];
	int64_t nonce = 0;
	int err;

	if (!ledger_is_private(d->ledger)) {
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

		return snprintf(out, size, "%s", base) < (int)size ? 0 : -ENAMETOOLONG;
	}
	err = ledger_file_key_open(d->ledger, e->record_id, key, &nonce);
	OPENSSL_cleanse(key, sizeof key);
	if (err < 0)
		return err;
	snprintf(out, size, "%016llx", (unsigned long long)nonce);
	return 0;
}

int fs_reply_decrypted(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	ssize_t n;
	int err;

	if (!buf)
		return -ENOMEM;
	/* cache_read pins, checks and copies: a chunk that fails its check is never
	 * served, so no altered ciphertext turns into plaintext here */
	n = cache_read(d->cache, h->key, (uint64_t)off, buf, size);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	err = fs_cipher_apply(h->cipher, (uint64_t)off, buf, buf, (size_t)n);
	if (err == 0)
		fuse_reply_buf(req, (const char *)buf, (size_t)n);
	OPENSSL_cleanse(buf, (size_t)n);
	free(buf);
	return err;
}
