/* Private drives' content at open and read (see filekey.h). */
#include "filekey.h"

#include "cipher.h"
#include "drive.h"
#include "fs.h"
#include "join.h"
#include "park.h"

#include <cache.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static int cipher_of(struct fs_drive *d, const struct ledger_entry *e, bool warn,
                     struct fs_cipher **out)
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
		bool missing = err == -ENOKEY || err == -EINVAL;

		ledger_hex(e->record_id, LEDGER_ID_LEN, hex);
		if (warn || !missing)
			fs_warn("no key for the content of record %.16s: %s", hex, strerror(-err));
		return missing ? -EACCES : -EIO;
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

int fs_filekey_cipher(struct fs_drive *d, const struct ledger_entry *e, struct fs_cipher **out)
{
	return cipher_of(d, e, true, out);
}

int fs_filekey_cipher_quiet(struct fs_drive *d, const struct ledger_entry *e,
                            struct fs_cipher **out)
{
	return cipher_of(d, e, false, out);
}

bool fs_filekey_may_come(struct fs_drive *d)
{
	uint8_t secret[32];
	bool joining;

	if (!ledger_is_private(d->ledger) || !d->key)
		return false;
	if (ledger_member_role(d->ledger, d->me) > 0)
		return true;
	/* not a member yet, but joining: the invite is kept until its redeem is in a block */
	joining = fs_join_invite_load(d->dir, secret) == 0;
	OPENSSL_cleanse(secret, sizeof secret);
	return joining;
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

/* Read-ahead of a private file's ciphertext. Publishing writes it around the page cache
 * (fs/pack.c), so the first reads after it find it on disk, where the kernel's
 * read-ahead of the cache's 1 MiB preads keeps a shallow queue (measured here: 230-350
 * MB/s for dd bs=1M of a file not in the page cache, 690 MB/s for 32 MiB direct reads). Every
 * RA_STEP the next RA_WINDOW is advised (WILLNEED: asynchronous reads into the page cache); the
 * bytes served still come through cache_read and its checks only. */
#define RA_STEP   (4ULL << 20)
#define RA_WINDOW (32ULL << 20)

static void cipher_readahead(struct fs_drive *d, struct fs_fh *h, uint64_t off, size_t size)
{
	uint64_t from = off + size;
	char path[4200];
	int fd;

	if (from >= h->length || (off && off / RA_STEP == from / RA_STEP))
		return;
	pthread_mutex_lock(&h->lock);
	if (h->ra_fd == -2)
		h->ra_fd = cache_object_path(d->cache, h->key, path, sizeof path) == 0
		               ? open(path, O_RDONLY | O_CLOEXEC)
		               : -1;
	fd = h->ra_fd;
	pthread_mutex_unlock(&h->lock);
	if (fd >= 0)
		(void)posix_fadvise(fd, (off_t)from, (off_t)RA_WINDOW, POSIX_FADV_WILLNEED);
}

int fs_reply_decrypted(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	ssize_t n;
	int err;

	cipher_readahead(d, h, (uint64_t)off, size);
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
