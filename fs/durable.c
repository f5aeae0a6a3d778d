/*
 * A publish batch's content on disk before its records are signed, and a private
 * file's ciphertext taken up after a crash (durable.h).
 */
#include "durable.h"

#include "drive.h"
#include "filekey.h"
#include "fs.h"

#include <cache.h>
#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fdatasync of path (a directory: fsync), 0 or -errno */
static int sync_path(const char *path, bool dir)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0)), err = 0;

	if (fd < 0)
		return -errno;
	if ((dir ? fsync(fd) : fdatasync(fd)) < 0)
		err = -errno;
	close(fd);
	return err;
}

int fs_durable_batch(struct fs_drive *d, const char *const *files, const uint8_t (*keys)[32],
                     size_t n)
{
	char dir[4200], path[4300];
	int err = 0;

	snprintf(dir, sizeof dir, "%s/staging", d->dir);
	if (!files) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return -errno;
		err = syncfs(fd) < 0 ? -errno : 0;
		close(fd);
		return err;
	}
	for (size_t i = 0; i < n && !err; i++) {
		fs_torrent_path(d, keys[i], path, sizeof path);
		if ((err = sync_path(files[i], false)) == 0)
			err = sync_path(path, false);
	}
	/* the objects' names (beside the staged files) and the torrents' */
	if (!err && n)
		err = sync_path(dir, true);
	snprintf(path, sizeof path, "%s/torrents", d->dir);
	if (!err && n)
		err = sync_path(path, true);
	return err;
}

int fs_durable_recover(struct fs_drive *d, const struct ledger_queue_item *it,
                       const struct stat *staged)
{
	const char *slash = strrchr(it->staging, '/');
	char name[32], *file;
	struct ledger_entry e;
	struct stat st;
	int err;

	/* the record is of this item's file as it was closed, not of an earlier version
	 * of the path whose ciphertext a failed adoption left: its size then, and its
	 * mtime (a new write changes it; where a crash lost it too, the item is published
	 * as before) */
	if (!slash || !d->key || ledger_lookup(d->ledger, it->path, &e) < 0 || e.is_dir ||
	    !e.content.length || memcmp(e.owner, d->me, LEDGER_KEY_LEN) ||
	    (it->size >= 0 && (uint64_t)it->size != e.content.length) ||
	    (int64_t)staged->st_mtim.tv_sec * 1000000000 + staged->st_mtim.tv_nsec !=
	        e.content.mtime_ns)
		return -ENOENT;
	/* the ciphertext is named as its torrent: by its IV's nonce */
	if (fs_content_name(d, it->path, &e, name, sizeof name) < 0)
		return -ENOENT;
	if (asprintf(&file, "%.*s%s", (int)(slash + 1 - it->staging), it->staging, name) < 0)
		return -ENOMEM;
	/* synced before the record was signed (fs_durable_batch): whole, or not there */
	if (stat(file, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != e.content.length) {
		free(file);
		return -ENOENT;
	}
	err = cache_object_adopt(d->cache, e.content.ih2, file, e.content.piece_length);
	if (err < 0)
		fs_warn("%s: cannot take up its ciphertext %s, signed before a crash: %s", it->path,
		        file, strerror(-err));
	else
		fs_info("%s: published before a crash; its ciphertext is in the cache now",
		        it->path);
	free(file);
	return err;
}
