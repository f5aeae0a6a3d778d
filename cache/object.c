/*
 * object.c — whole-object operations: register, adopt a published file, pin, remove,
 * and the facts fs/ asks about (path, stat, bitmap, usage).
 */
#include "cache_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cache_object_add(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t length,
                     uint32_t chunk_size)
{
	struct cache_rec_buf rec = { 0 };
	struct cache_obj *o, *old;
	char path[PATH_MAX];
	int rc, fd;

	if (!c || !key)
		return -EINVAL;
	if ((rc = cache_obj_alloc(key, length, chunk_size, &o)) < 0)
		return rc;
	pthread_mutex_lock(&c->idx_mu);
	pthread_mutex_lock(&c->mu);
	old = cache_obj_find(c, key);
	if (old)
		rc = old->length == length && old->chunk_size == chunk_size ? 1 : -EEXIST;
	pthread_mutex_unlock(&c->mu);
	if (old)
		goto out;
	cache_obj_path(c, o, path, sizeof path);
	/* The file first: a crash before the index record leaves a file of no object,
	 * which the next cache_new deletes. */
	fd = cache_data_file_open(c, path, length, true);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	cache_obj_fd_install(c, o, fd);
	if ((rc = cache_rec_obj_add(&rec, o)) < 0 ||
	    (rc = cache_index_append(c, &rec, false)) < 0) {
		unlink(path);
		goto out;
	}
	pthread_mutex_lock(&c->mu);
	cache_obj_hash_insert(c, o);
	pthread_mutex_unlock(&c->mu);
	o = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&c->idx_mu);
	cache_rec_buf_release(&rec);
	cache_obj_free(o);
	return rc;
}

int cache_object_path(struct cache *c, const uint8_t key[CACHE_KEY_LEN], char *buf, size_t size)
{
	char hex[2 * CACHE_KEY_LEN + 1];
	bool found;
	int n;

	if (!c || !key || !buf)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	found = cache_obj_find(c, key) != NULL;
	pthread_mutex_unlock(&c->mu);
	if (!found)
		return -ENOENT;
	cache_key_hex(key, hex);
	n = snprintf(NULL, 0, "%s/%s", c->datadir, hex);
	if ((size_t)n >= size)
		return -ERANGE;
	snprintf(buf, size, "%s/%s", c->datadir, hex);
	return n;
}

/* Hash every chunk of the file into entries of o (not attached), or take the block
 * digests the caller computed while it wrote the file: the chunk digests are derived
 * from them, and the first read only checks what it serves. */
static int adopt_hash(struct cache_obj *o, int fd, const uint8_t (*blocks)[CACHE_SHA_LEN])
{
	for (uint32_t i = 0, nb; i < o->nchunks; i++, blocks = blocks ? blocks + nb : NULL) {
		struct cache_entry *e = calloc(1, sizeof *e);
		int rc;

		nb = cache_chunk_blocks(o, i);
		if (!e)
			return -ENOMEM;
		e->obj = o;
		e->idx = i;
		o->ent[i] = e;
		if (!(e->blk = calloc(nb, CACHE_BLK_LEN)))
			return -ENOMEM;
		if (blocks) {
			rc = cache_chunk_digest(blocks, nb, e->sha);
			for (uint32_t k = 0; k < nb; k++)
				memcpy(e->blk[k], blocks[k], CACHE_BLK_LEN);
		} else {
			rc = cache_hash_range(fd, (uint64_t)i * o->chunk_size,
			                      cache_chunk_len(o, i), e->sha, e->blk, NULL);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int cache_object_adopt(struct cache *c, const uint8_t key[CACHE_KEY_LEN], const char *path,
                       uint32_t chunk_size)
{
	return cache_object_adopt_hashed(c, key, path, chunk_size, NULL, 0, 0);
}

/* The directories an adopted file is renamed in: the cache's and its data directory. */
static int adopt_dirsync(struct cache *c)
{
	int dfd, rc = 0;

	if (fsync(c->dir_fd) < 0)
		rc = -errno;
	dfd = open(c->datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* A batch adoption's rename, for cache_object_adopt_sync (idx_mu held). */
static int adopt_defer(struct cache *c, const char *path, const char *dest,
                       const uint8_t key[CACHE_KEY_LEN])
{
	struct cache_adopt_pending *np = realloc(c->pending, (c->npending + 1) * sizeof *np);

	if (!np)
		return -ENOMEM;
	c->pending = np;
	np += c->npending;
	np->from = strdup(path);
	np->to = strdup(dest);
	if (!np->from || !np->to) {
		free(np->from);
		free(np->to);
		return -ENOMEM;
	}
	memcpy(np->key, key, CACHE_KEY_LEN);
	c->npending++;
	return 0;
}

static int object_remove_locked(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);

int cache_object_adopt_sync(struct cache *c)
{
	int rc, dropped = 0;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->idx_mu);
	if (!c->npending) {
		pthread_mutex_unlock(&c->idx_mu);
		return 0;
	}
	/* the records first, the renames second (see cache_object_adopt_hashed) */
	rc = fdatasync(c->idx_fd) < 0 ? -errno : 0;
	if (rc < 0)
		C_ERR(c, "adopt: cannot sync the index: %s", strerror(-rc));
	for (size_t i = 0; i < c->npending; i++) {
		struct cache_adopt_pending *p = &c->pending[i];

		/* an adoption that cannot be finished goes as a removed object does */
		if (rc < 0) {
			object_remove_locked(c, p->key);
		} else if (rename(p->from, p->to) < 0) {
			C_ERR(c, "adopt: cannot move %s into the cache: %s", p->from,
			      strerror(errno));
			object_remove_locked(c, p->key);
			dropped++;
		}
		free(p->from);
		free(p->to);
	}
	free(c->pending);
	c->pending = NULL;
	c->npending = 0;
	if (rc == 0)
		adopt_dirsync(c);
	pthread_mutex_unlock(&c->idx_mu);
	return rc < 0 ? rc : dropped;
}

int cache_object_adopt_hashed(struct cache *c, const uint8_t key[CACHE_KEY_LEN], const char *path,
                              uint32_t chunk_size, const uint8_t (*blocks)[CACHE_BLOCK_SHA_LEN],
                              uint64_t n, unsigned flags)
{
	struct cache_rec_buf rec = { 0 };
	struct cache_obj *o = NULL, *old = NULL;
	struct stat st, dst;
	char dest[PATH_MAX];
	int fd, rc;

	if (!c || !key || !path)
		return -EINVAL;
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == EISDIR ? -EINVAL : -errno;
	if (fstat(fd, &st) < 0 || stat(c->datadir, &dst) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (st.st_dev != dst.st_dev) {
		rc = -EXDEV;
		goto out;
	}
	if ((rc = cache_obj_alloc(key, (uint64_t)st.st_size, chunk_size, &o)) < 0)
		goto out;
	o->pinned = true;
	if (blocks && n != (uint64_t)(o->nchunks - 1) * cache_chunk_blocks(o, 0) +
	                       cache_chunk_blocks(o, o->nchunks - 1)) {
		rc = -EINVAL;
		goto out;
	}
	/* The file's bytes must be on disk before the index says its chunks are. */
	if ((rc = adopt_hash(o, fd, blocks)) < 0 ||
	    (!(flags & CACHE_ADOPT_SYNCED) && fdatasync(fd) < 0)) {
		rc = rc < 0 ? rc : -errno;
		C_ERR(c, "adopt %s: %s", path, strerror(-rc));
		goto out;
	}
	if ((rc = cache_rec_obj_del(&rec, key)) < 0 || (rc = cache_rec_obj_add(&rec, o)) < 0)
		goto out;
	for (uint32_t i = 0; i < o->nchunks; i++)
		if ((rc = cache_rec_chunk_set(&rec, key, i, o->ent[i]->sha, false)) < 0)
			goto out;
	cache_obj_path(c, o, dest, sizeof dest);

	pthread_mutex_lock(&c->idx_mu);
	pthread_mutex_lock(&c->mu);
	old = cache_obj_find(c, key);
	if (old && (old->pins || old->marking)) {
		old = NULL;
		rc = -EBUSY;
	} else if (old) {
		/* Out of the table: no reader can pin it any more. */
		cache_obj_hash_remove(c, old);
	}
	pthread_mutex_unlock(&c->mu);
	if (rc < 0)
		goto unlock;
	/* Records first, rename second: a crash between leaves chunks marked over a file
	 * that is not there yet; their first read fails the hash and drops them, and the
	 * staging file still exists for the publisher to retry. The other order would let
	 * the next cache_new delete a renamed file whose records never landed. */
	if ((rc = cache_index_append(c, &rec, !(flags & CACHE_ADOPT_BATCH))) < 0) {
		if (old) {
			pthread_mutex_lock(&c->mu);
			cache_obj_hash_insert(c, old);
			pthread_mutex_unlock(&c->mu);
			old = NULL;
		}
		goto unlock;
	}
	if ((flags & CACHE_ADOPT_BATCH) ? (rc = adopt_defer(c, path, dest, key)) < 0
	                                : rename(path, dest) < 0 && (rc = -errno) < 0) {
		struct cache_rec_buf del = { 0 };

		C_ERR(c, "adopt: cannot move %s into the cache: %s", path, strerror(-rc));
		if (cache_rec_obj_del(&del, key) == 0)
			cache_index_append(c, &del, true);
		cache_rec_buf_release(&del);
		goto drop_old;
	}
	if (!(flags & CACHE_ADOPT_BATCH))
		adopt_dirsync(c);
	cache_obj_fd_install(c, o, fd); /* the same file at its new path (after a batch's
	                                 * rename) */
	fd = -1;
	pthread_mutex_lock(&c->mu);
	if (old)
		cache_obj_drop_chunks(c, old);
	for (uint32_t i = 0; i < o->nchunks; i++) {
		struct cache_entry *e = o->ent[i];

		o->ent[i] = NULL;
		cache_entry_attach(c, e);
	}
	cache_obj_hash_insert(c, o);
	pthread_mutex_unlock(&c->mu);
	o = NULL;
	rc = 0;
	goto unlock_free_old;
drop_old:
	if (old) {
		pthread_mutex_lock(&c->mu);
		cache_obj_drop_chunks(c, old);
		pthread_mutex_unlock(&c->mu);
	}
unlock_free_old:
	pthread_mutex_unlock(&c->idx_mu);
	cache_obj_free(old);
	goto out;
unlock:
	pthread_mutex_unlock(&c->idx_mu);
out:
	if (fd >= 0)
		close(fd);
	cache_obj_free(o);
	cache_rec_buf_release(&rec);
	return rc;
}

static int set_pin(struct cache *c, const uint8_t key[CACHE_KEY_LEN], bool pinned)
{
	struct cache_rec_buf rec = { 0 };
	struct cache_victims vs = { 0 };
	struct cache_obj *o;
	int rc;

	if (!c || !key)
		return -EINVAL;
	pthread_mutex_lock(&c->idx_mu);
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	rc = !o ? -ENOENT : o->pinned == pinned ? 1 : 0;
	pthread_mutex_unlock(&c->mu);
	if (rc != 0)
		goto out;
	if ((rc = cache_rec_obj_pin(&rec, key, pinned)) < 0 ||
	    (rc = cache_index_append(c, &rec, true)) < 0)
		goto out;
	pthread_mutex_lock(&c->mu);
	cache_obj_set_pinned(c, o, pinned);
	pthread_mutex_unlock(&c->mu);
	if (!pinned && (rc = cache_evict_locked(c, &vs)) > 0)
		rc = 0;
out:
	pthread_mutex_unlock(&c->idx_mu);
	cache_rec_buf_release(&rec);
	cache_victims_report(c, &vs);
	return rc < 0 ? rc : 0;
}

int cache_object_pin(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	return set_pin(c, key, true);
}

int cache_object_unpin(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	return set_pin(c, key, false);
}

/* cache_object_remove with idx_mu held. */
static int object_remove_locked(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	struct cache_rec_buf rec = { 0 };
	struct cache_obj *o;
	char path[PATH_MAX];
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (!o)
		rc = -ENOENT;
	else if (o->pins || o->marking)
		rc = -EBUSY;
	else
		cache_obj_hash_remove(c, o);
	pthread_mutex_unlock(&c->mu);
	if (rc < 0)
		goto out;
	if ((rc = cache_rec_obj_del(&rec, key)) < 0 ||
	    (rc = cache_index_append(c, &rec, false)) < 0) {
		pthread_mutex_lock(&c->mu);
		cache_obj_hash_insert(c, o);
		pthread_mutex_unlock(&c->mu);
		goto out;
	}
	pthread_mutex_lock(&c->mu);
	cache_obj_drop_chunks(c, o);
	pthread_mutex_unlock(&c->mu);
	/* After the record: a crash between leaves a file of no object, deleted at the
	 * next cache_new. */
	cache_obj_path(c, o, path, sizeof path);
	if (unlink(path) < 0 && errno != ENOENT)
		C_WARN(c, "cannot delete %s: %s", path, strerror(errno));
	cache_obj_free(o);
out:
	cache_rec_buf_release(&rec);
	return rc;
}

int cache_object_remove(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	int rc;

	if (!c || !key)
		return -EINVAL;
	pthread_mutex_lock(&c->idx_mu);
	rc = object_remove_locked(c, key);
	pthread_mutex_unlock(&c->idx_mu);
	return rc;
}

int cache_object_stat(struct cache *c, const uint8_t key[CACHE_KEY_LEN],
                      struct cache_object_info *out_info)
{
	struct cache_obj *o;
	int rc = 0;

	if (!c || !key || !out_info)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (o) {
		out_info->length = o->length;
		out_info->chunk_size = o->chunk_size;
		out_info->chunks = o->nchunks;
		out_info->present = o->present;
		out_info->bytes_present = o->bytes_present;
		out_info->pinned = o->pinned;
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int cache_object_bitmap(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint8_t *out_bits,
                        size_t size)
{
	struct cache_obj *o;
	int rc = 0;

	if (!c || !key || !out_bits)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (!o) {
		rc = -ENOENT;
	} else if (size < ((size_t)o->nchunks + 7) / 8) {
		rc = -ERANGE;
	} else {
		memset(out_bits, 0, ((size_t)o->nchunks + 7) / 8);
		for (uint32_t i = 0; i < o->nchunks; i++)
			if (o->ent[i] && !(o->ent[i]->flags & CE_BAD)) {
				out_bits[i / 8] |= (uint8_t)(1U << (i % 8));
				rc++;
			}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int cache_trim(struct cache *c)
{
	struct cache_victims vs = { 0 };
	int rc;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->idx_mu);
	rc = cache_evict_locked(c, &vs);
	pthread_mutex_unlock(&c->idx_mu);
	cache_victims_report(c, &vs);
	return rc;
}

int cache_cap_set(struct cache *c, uint64_t cap)
{
	int rc;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	c->cap = cap ? cap : CACHE_DEFAULT_SIZE;
	pthread_mutex_unlock(&c->mu);
	rc = cache_trim(c);
	return rc < 0 ? rc : 0;
}

void cache_usage_get(struct cache *c, struct cache_usage *out_usage)
{
	struct cache_usage u = { 0 };

	if (!c || !out_usage)
		return;
	pthread_mutex_lock(&c->mu);
	u.cap = c->cap;
	u.used = c->used;
	u.published = c->published;
	u.pinned = c->pinned;
	u.objects = c->nobjects;
	u.chunks = c->chunks;
	u.evictions = c->evictions;
	u.corrupt = c->corrupt;
	u.rehashed = __atomic_load_n(&c->rehashed, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->mu);
	u.hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
	u.misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
	*out_usage = u;
}
