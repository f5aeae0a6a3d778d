/* Owned content rewritten in place: its plaintext copied out (see content.h). */
#include "content.h"

#include "cipher.h"
#include "drive.h"
#include "engine.h"
#include "filekey.h"
#include "fs.h"
#include "node.h"
#include "ops.h"
#include "publish.h"

#include <cache.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Copy the start of e's content from the cache (or the swarm) into fd, for a change in
 * place. */
int fs_content_copy(struct fs_drive *d, const struct ledger_entry *e, uint64_t len, int fd,
                    bool fetch)
{
	static const size_t chunk = 1 << 20;
	struct fs_engine_reader *r = NULL;
	struct fs_cipher *c = NULL;
	char *buf = malloc(chunk);
	uint64_t off = 0;
	/* one deadline for the whole copy, not one per MiB: a peer trickling a piece a
	 * minute cannot hold the open forever */
	struct timespec start, now;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	if (len > e->content.length)
		len = e->content.length;
	if (len == 0) {
		free(buf);
		return 0; /* nothing to decrypt: no file key needed either */
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	if ((err = fs_filekey_cipher(d, e, &c)) < 0) {
		free(buf);
		return err;
	}
	while (off < len) {
		ssize_t n = fs_content_read(d, e, off, buf, len - off < chunk ? len - off : chunk);

		if ((n == -ENODATA || n == -ENOENT) && !fetch) {
			err = -EOPNOTSUPP;
			break;
		}
		if (n == -ENODATA || n == -ENOENT) {
			/* not (all) here: through the engine, from the swarm (a transferred
			 * file, or one whose pieces were evicted) */
			struct fs_engine_torrent *t;
			struct ledger_entry full = *e;

			fs_entry_content(d, &full); /* a file of a torrent of several */
			if (!r &&
			    ((err = fs_torrent_local(d, &full, &t)) < 0 ||
			     (err = fs_engine_reader_new(t, full.content.file_index, &r)) < 0))
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			int64_t left =
			    d->read_timeout_ms - ((int64_t)(now.tv_sec - start.tv_sec) * 1000 +
			                          (now.tv_nsec - start.tv_nsec) / 1000000);

			n = left > 0 ? fs_engine_read(r, buf, len - off < chunk ? len - off : chunk,
			                              off, (int)left)
			             : -ETIMEDOUT;
		}
		if (n <= 0) {
			err = n == 0 ? -EIO : (int)n;
			break;
		}
		if (c && (err = fs_cipher_apply(c, off, buf, buf, (size_t)n)) < 0)
			break;
		if (pwrite(fd, buf, (size_t)n, (off_t)off) != n) {
			err = -errno;
			break;
		}
		off += (uint64_t)n;
	}
	fs_engine_reader_free(r);
	fs_filekey_free(c);
	free(buf);
	return err == -ENOENT || err == -ETIMEDOUT ? -EIO : err;
}

int fs_rekey(struct fs_drive *d, const char *path)
{
	struct fs_staged *st = NULL;
	struct ledger_entry e;
	int err;

	if ((err = fs_entry_lookup(d, path, &e)) < 0)
		return err;
	if (e.is_dir)
		return -EISDIR;
	if (!ledger_is_private(d->ledger))
		return -EMEDIUMTYPE; /* a public drive's content is plaintext */
	if (!fs_entry_owned(d, &e))
		return -EACCES;
	if (e.content.length == 0)
		return 0; /* nothing encrypted */
	/* a new version with the same plaintext, mode and mtime: the publish worker draws a
	 * new file key and seals it under the newest epoch */
	if ((err = fs_staged_create(d, path, e.content.mode, &st)) < 0)
		return err;
	err = fs_content_copy(d, &e, e.content.length, fs_staged_fd_modify(d, st), true);
	if (err == 0) {
		struct timespec ts[2] = { { 0, UTIME_OMIT },
			                  { e.content.mtime_ns / 1000000000,
			                    e.content.mtime_ns % 1000000000 } };

		if (fchmod(fs_staged_fd(st), e.content.mode & 07777) < 0 ||
		    futimens(fs_staged_fd(st), ts) < 0)
			err = -errno;
	}
	if (err < 0) {
		fs_staged_unlink_open(d, st);
		return err;
	}
	return fs_staged_release(d, st, true);
}

int fs_content_resize_start(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                            uint64_t size, struct fs_staged **out_st, uint64_t *out_have)
{
	uint64_t keep = size < e->content.length ? size : e->content.length;
	struct fs_staged *st = NULL;
	ssize_t have;
	int err;

	if (e->is_dir)
		return -EISDIR;
	if (!fs_entry_owned(d, e))
		return d->key ? -EACCES : -EROFS;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	/* the kept part, then the cut or the zeros: the file's mtime is now's, as any
	 * truncate(2) makes it */
	if ((err = fs_staged_create(d, path, e->content.mode ? e->content.mode : 0644, &st)) < 0)
		return err;
	have = fs_content_copy_cached(d, e, keep, fs_staged_fd_modify(d, st));
	if (have < 0) {
		fs_staged_unlink_open(d, st);
		return (int)have;
	}
	*out_st = st;
	*out_have = (uint64_t)have;
	return (uint64_t)have < keep ? 1 : 0;
}

int fs_content_resize_finish(struct fs_drive *d, struct fs_staged *st, uint64_t size)
{
	if (ftruncate(fs_staged_fd_modify(d, st), (off_t)size) < 0) {
		int err = -errno;

		fs_staged_unlink_open(d, st);
		return err;
	}
	return fs_staged_release(d, st, true);
}

ssize_t fs_content_copy_cached(struct fs_drive *d, const struct ledger_entry *e, uint64_t len,
                               int fd)
{
	static const size_t chunk = 1 << 20;
	struct fs_cipher *c = NULL;
	char *buf = malloc(chunk);
	uint64_t off = 0;
	ssize_t err = 0;

	if (!buf)
		return -ENOMEM;
	if ((err = fs_filekey_cipher(d, e, &c)) < 0) {
		free(buf);
		return err;
	}
	if (len > e->content.length)
		len = e->content.length;
	while (off < len) {
		ssize_t n = fs_content_read(d, e, off, buf, len - off < chunk ? len - off : chunk);

		if (n == -ENODATA || n == -ENOENT)
			break; /* the rest through the swarm, parked (fs/waiter) */
		if (n <= 0) {
			err = n == 0 ? -EIO : n;
			break;
		}
		if (c && (err = fs_cipher_apply(c, off, buf, buf, (size_t)n)) < 0)
			break;
		if (pwrite(fd, buf, (size_t)n, (off_t)off) != n) {
			err = -errno;
			break;
		}
		off += (uint64_t)n;
	}
	fs_filekey_free(c);
	free(buf);
	return err < 0 ? err : (ssize_t)off;
}
