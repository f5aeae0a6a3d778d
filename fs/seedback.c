/*
 * Seeding back what this node holds: the mount's scan, the index of what was not loaded,
 * and the loads peers ask for (fs/seedback.h).
 */
#include "seedback.h"

#include "drive.h"
#include "fs.h"

#include <cache.h>
#include <swarm.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { E_HAS_V1 = 1, E_ASKED = 2, E_PUBLISHED = 4 };

struct entry {
	uint8_t key[32]; /* the v2 infohash: the cache object, <hex>.torrent */
	uint8_t v1[20];  /* the hybrid torrent's v1 infohash, if E_HAS_V1 */
	uint8_t flags;
};

/* Files published since the mount that were not loaded: searched one by one until
 * this many, then merged into the sorted index (a publish costs no sort of it). */
enum { FRESH_MAX = 4096 };

struct fs_seedback {
	struct fs_drive *d;
	size_t max;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;
	struct entry *e; /* sorted by key once ready */
	size_t n, cap;
	uint32_t *by_v1; /* indices of e with a v1 hash, sorted by it */
	size_t n_v1;
	struct entry *fresh; /* published since, not loaded: in no order, FRESH_MAX at most */
	size_t n_fresh;
	struct entry *queue; /* to load: asked for, or published while loaded < max */
	size_t nq, capq;
	bool ready, stop, running;
	size_t loaded, on_demand;
	pthread_t thread;
};

int fs_seedback_new(struct fs_drive *d, size_t max, struct fs_seedback **out)
{
	struct fs_seedback *sb = calloc(1, sizeof *sb);

	if (!sb)
		return -ENOMEM;
	sb->d = d;
	sb->max = max;
	pthread_mutex_init(&sb->mu, NULL);
	pthread_cond_init(&sb->cv, NULL);
	*out = sb;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key, 32);
}

static int cmp_v1(const void *a, const void *b, void *base)
{
	const struct entry *e = base;

	return memcmp(e[*(const uint32_t *)a].v1, e[*(const uint32_t *)b].v1, 20);
}

static int read_torrent(struct fs_seedback *sb, const char *name, void **buf, size_t *len)
{
	char path[4400];

	snprintf(path, sizeof path, "%s/torrents/%s", sb->d->dir, name);
	return fs_read_file(path, 64 << 20, buf, len);
}

/* Index one held torrent that is not loaded now: its key and its v1 hash (a hybrid
 * torrent's peers may name either in their handshake). */
static void index_held(struct fs_seedback *sb, const uint8_t key[32], const void *buf, size_t len)
{
	struct swarm_metainfo *m = NULL;
	struct entry en = { .flags = 0 };

	memcpy(en.key, key, 32);
	if (swarm_metainfo_parse(buf, len, &m, NULL) == 0 && m->has_v1) {
		memcpy(en.v1, m->v1, 20);
		en.flags |= E_HAS_V1;
	}
	swarm_metainfo_free(m);
	if (sb->n == sb->cap) {
		size_t ncap = sb->cap ? sb->cap * 2 : 256;
		struct entry *ne = realloc(sb->e, ncap * sizeof *ne);

		if (!ne)
			return; /* not indexed: not seeded until opened, as before the index */
		sb->e = ne;
		sb->cap = ncap;
	}
	sb->e[sb->n++] = en;
}

/* The mount's pass over <drive>/torrents: runs before the index is ready, so it owns
 * e/n without the lock until it publishes them. */
static void scan(struct fs_seedback *sb)
{
	struct fs_drive *d = sb->d;
	char dir[4200];
	struct dirent *de;
	size_t loaded = 0;
	DIR *dh;

	snprintf(dir, sizeof dir, "%s/torrents", d->dir);
	if (!(dh = opendir(dir)))
		return;
	while (!d->closing && (de = readdir(dh))) {
		struct cache_object_info info;
		uint8_t key[32];
		char hex[65];
		void *buf;
		size_t len;

		/* <v2 hex>.torrent, or v1-<v2 hex>.torrent for a v1 companion */
		bool v1 = !strncmp(de->d_name, "v1-", 3);
		const char *name = de->d_name + (v1 ? 3 : 0);

		if (strlen(name) != 64 + 8 || strcmp(name + 64, ".torrent"))
			continue;
		snprintf(hex, sizeof hex, "%.64s", name);
		if (ledger_unhex(hex, key, 32) < 0 || cache_object_stat(d->cache, key, &info) < 0 ||
		    !info.present || (v1 && !info.pinned))
			continue;
		if (read_torrent(sb, de->d_name, &buf, &len) < 0)
			continue;
		if (v1) {
			if (fs_seed_v1(d, buf, len, key) == 0)
				loaded++;
		} else if (loaded < sb->max) {
			if (fs_seed(d, buf, len, key, false, NULL) == 0)
				loaded++;
		} else {
			index_held(sb, key, buf, len);
		}
		free(buf);
	}
	closedir(dh);

	uint32_t *by_v1 = NULL;
	size_t n_v1 = 0;

	if (sb->n > 1) /* e is NULL when nothing was indexed: qsort may not be given it */
		qsort(sb->e, sb->n, sizeof *sb->e, cmp_key);
	if (sb->n && (by_v1 = malloc(sb->n * sizeof *by_v1))) {
		for (size_t i = 0; i < sb->n; i++)
			if (sb->e[i].flags & E_HAS_V1)
				by_v1[n_v1++] = (uint32_t)i;
		qsort_r(by_v1, n_v1, sizeof *by_v1, cmp_v1, sb->e);
	}
	pthread_mutex_lock(&sb->mu);
	sb->by_v1 = by_v1;
	sb->n_v1 = n_v1;
	sb->loaded += loaded; /* and what was published meanwhile */
	sb->ready = true;
	pthread_mutex_unlock(&sb->mu);
	if (loaded || sb->n)
		fs_notice("seeding %zu torrents of content this node holds; %zu more when a "
		          "peer asks for them",
		          loaded, sb->n);
}

/* Load the torrent of key (the thread, without the lock): a peer asked for it, or it
 * was just published. */
static void load(struct fs_seedback *sb, const uint8_t key[32], bool asked)
{
	char name[80], hex[65];
	void *buf;
	size_t len;
	int err;

	swarm_hex(key, 32, hex);
	snprintf(name, sizeof name, "%s.torrent", hex);
	if ((err = read_torrent(sb, name, &buf, &len)) == 0) {
		err = fs_seed(sb->d, buf, len, key, false, NULL);
		free(buf);
	}
	if (err < 0)
		fs_debug("seeding %s %s: %s", hex, asked ? "on a peer's asking" : "as published",
		         strerror(-err));
	else if (asked)
		fs_info("seeding %s: a peer asked for it", hex);
	pthread_mutex_lock(&sb->mu);
	if (err == 0 && asked)
		sb->on_demand++;
	pthread_mutex_unlock(&sb->mu);
}

/* Merge the fresh entries into the sorted index, and the v1 order with them, in one
 * pass each (mu held: on_unknown reads the index). On a failed allocation the fresh
 * entries stay where they are, searched one by one. */
static void fresh_merge_locked(struct fs_seedback *sb)
{
	size_t n = sb->n + sb->n_fresh, nf = sb->n_fresh, i = 0, j = 0, k = 0, nv = 0;
	struct entry *ne = malloc(n * sizeof *ne);
	uint32_t *oldpos = malloc((sb->n + 1) * sizeof *oldpos), *fpos = malloc(nf * sizeof *fpos),
	         *fv1 = malloc(nf * sizeof *fv1), *nv1 = malloc(n * sizeof *nv1);

	if (!ne || !oldpos || !fpos || !fv1 || !nv1)
		goto out;
	qsort(sb->fresh, nf, sizeof *sb->fresh, cmp_key);
	while (i < sb->n || j < nf) {
		if (j == nf || (i < sb->n && cmp_key(&sb->e[i], &sb->fresh[j]) <= 0)) {
			oldpos[i] = (uint32_t)k;
			ne[k++] = sb->e[i++];
		} else {
			fpos[j] = (uint32_t)k;
			ne[k++] = sb->fresh[j++];
		}
	}
	/* the fresh v1 hashes in their order, then the two orders merged */
	size_t nfv = 0;

	for (j = 0; j < nf; j++)
		if (ne[fpos[j]].flags & E_HAS_V1)
			fv1[nfv++] = fpos[j];
	qsort_r(fv1, nfv, sizeof *fv1, cmp_v1, ne);
	for (i = 0, j = 0; i < sb->n_v1 || j < nfv;) {
		uint32_t a = i < sb->n_v1 ? oldpos[sb->by_v1[i]] : 0;

		if (j == nfv || (i < sb->n_v1 && memcmp(ne[a].v1, ne[fv1[j]].v1, 20) <= 0)) {
			nv1[nv++] = a;
			i++;
		} else
			nv1[nv++] = fv1[j++];
	}
	free(sb->e);
	free(sb->by_v1);
	sb->e = ne;
	sb->n = sb->cap = n;
	sb->by_v1 = nv1;
	sb->n_v1 = nv;
	sb->n_fresh = 0;
	ne = NULL;
	nv1 = NULL;
out:
	free(ne);
	free(oldpos);
	free(fpos);
	free(fv1);
	free(nv1);
}

/* A published file that is not loaded now: indexed for loading on demand (mu held). */
static void fresh_add_locked(struct fs_seedback *sb, const struct entry *en)
{
	if (sb->n_fresh == FRESH_MAX)
		fresh_merge_locked(sb);
	if (!sb->fresh && !(sb->fresh = malloc(FRESH_MAX * sizeof *sb->fresh)))
		return; /* not indexed: seeded once it is opened, as before the index */
	if (sb->n_fresh < FRESH_MAX) {
		sb->fresh[sb->n_fresh] = *en;
		sb->fresh[sb->n_fresh++].flags &= E_HAS_V1;
	}
}

static void *seedback_main(void *arg)
{
	struct fs_seedback *sb = arg;

	fs_thread_background("seedback"); /* FUSE handlers go first */
	scan(sb);
	pthread_mutex_lock(&sb->mu);
	for (;;) {
		while (!sb->stop && !sb->nq)
			pthread_cond_wait(&sb->cv, &sb->mu);
		if (sb->stop)
			break;
		struct entry en = sb->queue[--sb->nq];

		if ((en.flags & E_PUBLISHED) && sb->loaded >= sb->max) {
			fresh_add_locked(sb, &en);
			continue;
		}
		if (en.flags & E_PUBLISHED)
			sb->loaded++;
		pthread_mutex_unlock(&sb->mu);
		load(sb, en.key, !(en.flags & E_PUBLISHED));
		pthread_mutex_lock(&sb->mu);
	}
	pthread_mutex_unlock(&sb->mu);
	return NULL;
}

int fs_seedback_start(struct fs_seedback *sb)
{
	int err = -pthread_create(&sb->thread, NULL, seedback_main, sb);

	if (!err)
		sb->running = true;
	return err;
}

void fs_seedback_stop(struct fs_seedback *sb)
{
	if (!sb || !sb->running)
		return;
	pthread_mutex_lock(&sb->mu);
	sb->stop = true;
	pthread_cond_signal(&sb->cv);
	pthread_mutex_unlock(&sb->mu);
	pthread_join(sb->thread, NULL); /* the scan stops early: d->closing */
	sb->running = false;
}

void fs_seedback_free(struct fs_seedback *sb)
{
	if (!sb)
		return;
	free(sb->e);
	free(sb->by_v1);
	free(sb->fresh);
	free(sb->queue);
	pthread_mutex_destroy(&sb->mu);
	pthread_cond_destroy(&sb->cv);
	free(sb);
}

/* The entry a handshake's 20 bytes name: a v2 infohash's first 20 bytes, or a v1 one;
 * SIZE_MAX if none. mu held, ready. */
static size_t find(const struct fs_seedback *sb, const uint8_t ih[20])
{
	size_t lo = 0, hi = sb->n;

	while (lo < hi) { /* the first key whose 20-byte prefix is >= ih */
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(sb->e[mid].key, ih, 20) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < sb->n && !memcmp(sb->e[lo].key, ih, 20))
		return lo;
	lo = 0;
	hi = sb->n_v1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(sb->e[sb->by_v1[mid]].v1, ih, 20);

		if (!c)
			return sb->by_v1[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* The fresh entry a handshake's 20 bytes name, or NULL (mu held). */
static struct entry *find_fresh(struct fs_seedback *sb, const uint8_t ih[20])
{
	for (size_t i = 0; i < sb->n_fresh; i++) {
		struct entry *en = &sb->fresh[i];

		if (!memcmp(en->key, ih, 20) || ((en->flags & E_HAS_V1) && !memcmp(en->v1, ih, 20)))
			return en;
	}
	return NULL;
}

/* Queue en's load (mu held); false without memory. */
static bool queue_locked(struct fs_seedback *sb, const struct entry *en)
{
	if (sb->nq == sb->capq) {
		size_t ncap = sb->capq ? sb->capq * 2 : 64;
		struct entry *nq = realloc(sb->queue, ncap * sizeof *nq);

		if (!nq)
			return false;
		sb->queue = nq;
		sb->capq = ncap;
	}
	sb->queue[sb->nq++] = *en;
	pthread_cond_signal(&sb->cv);
	return true;
}

void fs_seedback_on_unknown(const uint8_t ih[20], void *ctx)
{
	struct fs_drive *d = ctx;
	struct fs_seedback *sb = d->seedback;
	struct entry *en = NULL;
	size_t i;

	if (!sb)
		return;
	pthread_mutex_lock(&sb->mu);
	/* each entry is queued once: a stranger who knows held infohashes makes this node
	 * load at most what it holds, and one unknown hash costs two binary searches and a
	 * look at the few thousand files published since the last merge */
	if (sb->ready && !sb->stop) {
		if ((i = find(sb, ih)) != SIZE_MAX)
			en = &sb->e[i];
		else
			en = find_fresh(sb, ih);
	}
	if (en && !(en->flags & E_ASKED) && queue_locked(sb, en))
		en->flags |= E_ASKED; /* else asked again on the peer's next dial */
	pthread_mutex_unlock(&sb->mu);
}

int fs_seedback_published(struct fs_seedback *sb, const uint8_t key[32], const uint8_t *v1)
{
	struct entry en = { .flags = E_PUBLISHED };
	int err = 0;

	memcpy(en.key, key, 32);
	if (v1) {
		memcpy(en.v1, v1, 20);
		en.flags |= E_HAS_V1;
	}
	pthread_mutex_lock(&sb->mu);
	if (!sb->stop && !queue_locked(sb, &en))
		err = -ENOMEM;
	pthread_mutex_unlock(&sb->mu);
	return err;
}

void fs_seedback_count(struct fs_seedback *sb, struct fs_seedback_count *out)
{
	memset(out, 0, sizeof *out);
	if (!sb)
		return;
	pthread_mutex_lock(&sb->mu);
	out->loaded = sb->loaded;
	out->indexed = sb->ready ? sb->n + sb->n_fresh : 0;
	out->on_demand = sb->on_demand;
	pthread_mutex_unlock(&sb->mu);
}
