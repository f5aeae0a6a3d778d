/*
 * cache.c — opening and closing a cache, the object table and the whole-object
 * operations (add, adopt, pin, remove, stat, bitmap), and the usage figures.
 */
#include "cache_priv.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

int cache_size_parse(const char *text, uint64_t *out_bytes)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!text || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case '\0': break;
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default: return -EINVAL;
	}
	/* Accept "10G" and "10GiB" alike; anything else after the unit is a typo. */
	if (shift && (end[0] == 'i' || end[0] == 'I') && (end[1] == 'b' || end[1] == 'B'))
		end += 2;
	if (*end != '\0' || v == 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out_bytes = (uint64_t)v << shift;
	return 0;
}

void cache_logf(struct cache *c, int level, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n = 0;

	if (c->log_level >= LOG_DEBUG) {
		const char *base = strrchr(file, '/');

		n = snprintf(msg, sizeof msg, "(%s:%d) ", base ? base + 1 : file, line);
	}
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	c->log(level, "cache", msg, c->log_ctx);
}

void cache_key_hex(const uint8_t key[CACHE_KEY_LEN], char out[2 * CACHE_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < CACHE_KEY_LEN; i++) {
		out[2 * i] = digits[key[i] >> 4];
		out[2 * i + 1] = digits[key[i] & 15];
	}
	out[2 * CACHE_KEY_LEN] = '\0';
}

/* ---- the object table ---- */

/* Keys are hashes, but tests and callers may pass keys that differ in one byte only:
 * fold all of it. */
static size_t key_bucket(const uint8_t key[CACHE_KEY_LEN], size_t nbuckets)
{
	uint64_t h = 0, w;

	for (int i = 0; i < CACHE_KEY_LEN; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	}
	return (size_t)(h >> 32) & (nbuckets - 1);
}

struct cache_obj *cache_obj_find(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	struct cache_obj *o = c->buckets[key_bucket(key, c->nbuckets)];

	while (o && memcmp(o->key, key, CACHE_KEY_LEN) != 0)
		o = o->hnext;
	return o;
}

void cache_obj_hash_insert(struct cache *c, struct cache_obj *o)
{
	size_t b;

	/* Grow at load factor 1; if the allocation fails, longer chains still work. */
	if (c->nobjects >= c->nbuckets) {
		size_t n = c->nbuckets * 2;
		struct cache_obj **nb = calloc(n, sizeof *nb);

		if (nb) {
			for (size_t i = 0; i < c->nbuckets; i++)
				while (c->buckets[i]) {
					struct cache_obj *x = c->buckets[i];

					c->buckets[i] = x->hnext;
					b = key_bucket(x->key, n);
					x->hnext = nb[b];
					nb[b] = x;
				}
			free(c->buckets);
			c->buckets = nb;
			c->nbuckets = n;
		}
	}
	b = key_bucket(o->key, c->nbuckets);
	o->hnext = c->buckets[b];
	c->buckets[b] = o;
	c->nobjects++;
}

void cache_obj_hash_remove(struct cache *c, struct cache_obj *o)
{
	struct cache_obj **pp = &c->buckets[key_bucket(o->key, c->nbuckets)];

	while (*pp && *pp != o)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = o->hnext;
		o->hnext = NULL;
		c->nobjects--;
	}
}

int cache_obj_alloc(const uint8_t key[CACHE_KEY_LEN], uint64_t length, uint32_t chunk_size,
                    struct cache_obj **out)
{
	struct cache_obj *o;
	uint64_t n;

	if (length == 0 || chunk_size < CACHE_CHUNK_MIN || chunk_size > CACHE_CHUNK_MAX)
		return -EINVAL;
	n = length / chunk_size + (length % chunk_size != 0);
	if (n >= UINT32_MAX)
		return -EINVAL;
	o = calloc(1, sizeof *o);
	if (!o)
		return -ENOMEM;
	o->ent = calloc((size_t)n, sizeof *o->ent);
	if (!o->ent) {
		free(o);
		return -ENOMEM;
	}
	memcpy(o->key, key, CACHE_KEY_LEN);
	o->length = length;
	o->chunk_size = chunk_size;
	o->nchunks = (uint32_t)n;
	o->fd = -1;
	*out = o;
	return 0;
}

static void fd_unlink(struct cache *c, struct cache_obj *o);

void cache_obj_free(struct cache_obj *o)
{
	if (!o)
		return;
	for (uint32_t i = 0; i < o->nchunks; i++)
		cache_entry_free(o->ent[i]);
	if (o->fd_cache) {
		struct cache *c = o->fd_cache;

		pthread_mutex_lock(&c->fd_mu);
		assert(!o->fd_users && "a cache object freed while its fd is in use");
		fd_unlink(c, o);
		c->fds_open--;
		pthread_mutex_unlock(&c->fd_mu);
	}
	if (o->fd >= 0)
		close(o->fd);
	free(o->ent);
	free(o);
}

static void lru_unlink(struct cache_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
	e->flags &= (uint8_t)~CE_INLRU;
}

static void lru_append(struct cache *c, struct cache_entry *e)
{
	e->prev = c->lru.prev;
	e->next = &c->lru;
	c->lru.prev->next = e;
	c->lru.prev = e;
	e->flags |= CE_INLRU;
}

void cache_lru_touch(struct cache *c, struct cache_entry *e)
{
	if (!(e->flags & CE_INLRU) || e->next == &c->lru)
		return;
	lru_unlink(e);
	lru_append(c, e);
}

void cache_entry_attach(struct cache *c, struct cache_entry *e)
{
	struct cache_obj *o = e->obj;
	uint32_t len = cache_chunk_len(o, e->idx);

	o->ent[e->idx] = e;
	o->present++;
	o->bytes_present += len;
	c->chunks++;
	if (o->pinned) {
		c->published += len;
	} else {
		c->used += len;
		lru_append(c, e);
	}
}

void cache_entry_detach(struct cache *c, struct cache_entry *e)
{
	struct cache_obj *o = e->obj;
	uint32_t len = cache_chunk_len(o, e->idx);

	assert(e->pins == 0);
	o->ent[e->idx] = NULL;
	o->present--;
	o->bytes_present -= len;
	c->chunks--;
	if (e->flags & CE_INLRU) {
		lru_unlink(e);
		c->used -= len;
	} else {
		c->published -= len;
	}
}

void cache_obj_drop_chunks(struct cache *c, struct cache_obj *o)
{
	for (uint32_t i = 0; i < o->nchunks; i++) {
		struct cache_entry *e = o->ent[i];

		if (e) {
			cache_entry_detach(c, e);
			cache_entry_free(e);
		}
	}
}

void cache_obj_set_pinned(struct cache *c, struct cache_obj *o, bool pinned)
{
	if (o->pinned == pinned)
		return;
	o->pinned = pinned;
	for (uint32_t i = 0; i < o->nchunks; i++) {
		struct cache_entry *e = o->ent[i];
		uint32_t len;

		if (!e)
			continue;
		len = cache_chunk_len(o, i);
		if (pinned) {
			lru_unlink(e);
			c->used -= len;
			c->published += len;
		} else {
			lru_append(c, e);
			c->published -= len;
			c->used += len;
		}
	}
}

void cache_obj_path(struct cache *c, const struct cache_obj *o, char *buf, size_t size)
{
	char hex[2 * CACHE_KEY_LEN + 1];

	cache_key_hex(o->key, hex);
	snprintf(buf, size, "%s/%s", c->datadir, hex);
}

/* Open (creating it if create) a data file at least length bytes long, sparse. */
int cache_data_file_open(struct cache *c, const char *path, uint64_t length, bool create)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	if (fd < 0) {
		rc = -errno;
		C_ERR(c, "cannot open data file %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0 ||
	    ((uint64_t)st.st_size < length && ftruncate(fd, (off_t)length) < 0)) {
		rc = -errno;
		C_ERR(c, "cannot size data file %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

/* fd_mu held: o out of the list of open files. */
static void fd_unlink(struct cache *c, struct cache_obj *o)
{
	if (o->fd_prev)
		o->fd_prev->fd_next = o->fd_next;
	else
		c->fd_head = o->fd_next;
	if (o->fd_next)
		o->fd_next->fd_prev = o->fd_prev;
	else
		c->fd_tail = o->fd_prev;
	o->fd_prev = o->fd_next = NULL;
}

/* fd_mu held: o at the head (most recently used). */
static void fd_link_head(struct cache *c, struct cache_obj *o)
{
	o->fd_prev = NULL;
	o->fd_next = c->fd_head;
	if (c->fd_head)
		c->fd_head->fd_prev = o;
	else
		c->fd_tail = o;
	c->fd_head = o;
}

/* fd_mu held: close the least recently used files nobody uses while more than
 * max_open are open. */
static void fd_trim(struct cache *c)
{
	struct cache_obj *o = c->fd_tail;

	while (c->fds_open > c->max_open && o) {
		struct cache_obj *prev = o->fd_prev;

		if (!o->fd_users) {
			fd_unlink(c, o);
			close(o->fd);
			o->fd = -1;
			o->fd_cache = NULL;
			c->fds_open--;
		}
		o = prev;
	}
}

/* fd_mu held: o's open fd joins the list, counted, as used once. */
static void fd_take(struct cache *c, struct cache_obj *o)
{
	if (o->fd_cache)
		fd_unlink(c, o);
	else
		c->fds_open++;
	o->fd_cache = c;
	fd_link_head(c, o);
	o->fd_users++;
}

int cache_obj_fd_get(struct cache *c, struct cache_obj *o)
{
	char path[PATH_MAX];
	int fd;

	pthread_mutex_lock(&c->fd_mu);
	if (o->fd < 0) {
		/* never created here: the file of a batch adoption is not at its path
		 * until cache_object_adopt_sync renames it there, and a file made in
		 * its place meanwhile would be served instead of it */
		cache_obj_path(c, o, path, sizeof path);
		fd = cache_data_file_open(c, path, o->length, false);
		if (fd < 0) {
			pthread_mutex_unlock(&c->fd_mu);
			return fd;
		}
		o->fd = fd;
	}
	fd_take(c, o);
	fd = o->fd;
	fd_trim(c);
	pthread_mutex_unlock(&c->fd_mu);
	return fd;
}

void cache_obj_fd_put(struct cache *c, struct cache_obj *o)
{
	pthread_mutex_lock(&c->fd_mu);
	assert(o->fd_users > 0 && "cache_obj_fd_put without a get");
	o->fd_users--;
	fd_trim(c);
	pthread_mutex_unlock(&c->fd_mu);
}

void cache_obj_fd_install(struct cache *c, struct cache_obj *o, int fd)
{
	pthread_mutex_lock(&c->fd_mu);
	if (o->fd >= 0)
		close(fd); /* cannot happen: an adopted object is new */
	else
		o->fd = fd;
	fd_take(c, o);
	pthread_mutex_unlock(&c->fd_mu);
	cache_obj_fd_put(c, o);
}

/* ---- opening and closing ---- */

static bool is_key_hex(const char *name, uint8_t out[CACHE_KEY_LEN])
{
	for (int i = 0; i < CACHE_KEY_LEN; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char ch = name[2 * i + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				v |= ch - 'a' + 10;
			else
				return false;
		}
		out[i] = (uint8_t)v;
	}
	return name[2 * CACHE_KEY_LEN] == '\0';
}

/* After a load: every object's data file exists and is long enough; the ranges of
 * chunks not marked present are punched out (data written but never marked, for
 * instance by a libtorrent killed mid-piece, or chunks whose eviction was recorded
 * before a crash let it punch); data files of no object are deleted (an object removed
 * by a process that died before unlinking). The data files are closed again: an
 * object costs an fd only once it is used. */
static void reconcile(struct cache *c)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int dfd = open(c->datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (size_t b = 0; b < c->nbuckets; b++)
		for (struct cache_obj *o = c->buckets[b]; o; o = o->hnext) {
			char hex[2 * CACHE_KEY_LEN + 1];
			struct stat st;
			int fd;

			/* a whole object (a published file, a file read through) whose file
			 * is there and long enough has nothing to punch: one stat relative
			 * to the data directory, not an open, a stat and a close of a full
			 * path (a node holding 100k files mounts in half the time) */
			cache_key_hex(o->key, hex);
			if (o->present == o->nchunks && dfd >= 0 &&
			    fstatat(dfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode) && (uint64_t)st.st_size >= o->length)
				continue;
			cache_obj_path(c, o, path, sizeof path);
			fd = cache_data_file_open(c, path, o->length, true);
			if (fd < 0)
				continue;
			for (uint32_t i = 0; i < o->nchunks;) {
				uint32_t j = i;

				if (o->ent[i]) {
					i++;
					continue;
				}
				while (j < o->nchunks && !o->ent[j])
					j++;
				uint64_t off = (uint64_t)i * o->chunk_size;
				uint64_t end =
				    j == o->nchunks ? o->length : (uint64_t)j * o->chunk_size;
				if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				              (off_t)off, (off_t)(end - off)) < 0)
					C_WARN(c, "cannot punch unmarked chunks of %s: %s", path,
					       strerror(errno));
				i = j;
			}
			close(fd);
		}
	/* the same directory fd lists the data files (closedir closes it) */
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		uint8_t key[CACHE_KEY_LEN];

		if (strlen(de->d_name) != 2 * CACHE_KEY_LEN || !is_key_hex(de->d_name, key) ||
		    cache_obj_find(c, key))
			continue;
		C_INFO(c, "deleting data file of no object %s", de->d_name);
		if (unlinkat(dfd, de->d_name, 0) < 0)
			C_WARN(c, "cannot delete %s/%s: %s", c->datadir, de->d_name,
			       strerror(errno));
	}
	closedir(d);
}

static int make_dir(struct cache *c, const char *path)
{
	int rc;

	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	rc = -errno;
	C_ERR(c, "cannot create %s: %s", path, strerror(-rc));
	return rc;
}

int cache_new(const struct cache_config *cfg, struct cache **out_cache)
{
	struct cache_victims vs = { 0 };
	struct cache *c;
	uint64_t live;
	int rc;

	if (!cfg || !out_cache || !cfg->dir || !cfg->dir[0] || cfg->low_water_pct > 100 ||
	    cfg->log_level < 0)
		return -EINVAL;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->dir_fd = -1;
	c->idx_fd = -1;
	c->cap = cfg->cap ? cfg->cap : CACHE_DEFAULT_SIZE;
	c->low_pct = cfg->low_water_pct ? cfg->low_water_pct : 90;
	c->log = cfg->log;
	c->log_ctx = cfg->log_ctx;
	c->log_level = cfg->log_level ? cfg->log_level : LOG_NOTICE;
	c->on_evict = cfg->on_evict;
	c->evict_ctx = cfg->evict_ctx;
	c->lru.next = c->lru.prev = &c->lru;
	c->max_open = cfg->max_open;
	if (!c->max_open) {
		struct rlimit rl;
		rlim_t q = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 4 : 256;

		c->max_open = q < 64 ? 64 : q > 4096 ? 4096 : (size_t)q;
	}
	pthread_mutex_init(&c->fd_mu, NULL);
	pthread_mutex_init(&c->idx_mu, NULL);
	pthread_mutex_init(&c->mu, NULL);
	c->nbuckets = 64;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	c->dir = strdup(cfg->dir);
	if (!c->buckets || !c->dir || asprintf(&c->datadir, "%s/data", cfg->dir) < 0) {
		c->datadir = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = make_dir(c, c->dir)) < 0 || (rc = make_dir(c, c->datadir)) < 0)
		goto fail;
	c->dir_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dir_fd < 0) {
		rc = -errno;
		C_ERR(c, "cannot open %s: %s", c->dir, strerror(-rc));
		goto fail;
	}
	/* flock on the directory, not on the index: compaction replaces the index file. */
	if (flock(c->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		C_ERR(c, "cache directory %s is in use by another cache", c->dir);
		goto fail;
	}
	if ((rc = cache_index_load(c)) < 0)
		goto fail;
	reconcile(c);
	pthread_mutex_lock(&c->idx_mu);
	pthread_mutex_lock(&c->mu);
	live = 8 + c->nobjects * 53 + c->chunks * 76;
	pthread_mutex_unlock(&c->mu);
	/* A journal twice the live state costs load time at every start: rewrite it. So is
	 * one of the first format, whose magic an older binary would still take (and then
	 * cut the records it does not know); its chunks keep their digests, CE_LEGACY. */
	if ((c->idx_old || c->idx_size > 2 * live + (64U << 10)) && cache_index_compact(c) == 0)
		c->idx_old = false;
	rc = cache_evict_locked(c, &vs);
	pthread_mutex_unlock(&c->idx_mu);
	if (rc < 0)
		goto fail;
	cache_victims_report(c, &vs);
	C_INFO(c, "opened %s: %zu objects, %llu chunks, %llu bytes evictable, %llu published",
	       c->dir, c->nobjects, (unsigned long long)c->chunks, (unsigned long long)c->used,
	       (unsigned long long)c->published);
	*out_cache = c;
	return 0;
fail:
	free(vs.v);
	cache_free(c);
	return rc;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	assert(c->pinned == 0 && "cache_free with pinned blocks");
	if (c->npending && c->idx_fd >= 0)
		cache_object_adopt_sync(c); /* a batch left unfinished: its renames */
	if (c->idx_fd >= 0) {
		fdatasync(c->idx_fd);
		close(c->idx_fd);
	}
	if (c->buckets)
		for (size_t b = 0; b < c->nbuckets; b++)
			while (c->buckets[b]) {
				struct cache_obj *o = c->buckets[b];

				c->buckets[b] = o->hnext;
				cache_obj_free(o);
			}
	if (c->dir_fd >= 0)
		close(c->dir_fd); /* drops the flock */
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->idx_mu);
	pthread_mutex_destroy(&c->fd_mu);
	free(c->buckets);
	free(c->datadir);
	free(c->dir);
	free(c);
}
