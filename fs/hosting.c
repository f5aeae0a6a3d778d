/* Hosting on a mounted drive: pin, unpin, health, and the last known copy kept (see
 * hosting.h). */
#include "hosting.h"

#include "drive.h"
#include "engine.h"
#include "fs.h"
#include "json.h"
#include "node.h"
#include "ops.h"

#include <cache.h>
#include <swarm.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct kept {
	uint8_t key[32]; /* the cache object */
	uint64_t bytes;
};

struct fs_hosting {
	pthread_mutex_t lock; /* guards kept[], stop */
	pthread_cond_t cond;  /* stop */
	struct kept *kept;
	size_t n_kept, cap_kept;
	bool stop;
	pthread_t thread;
	/* the sweep thread's own: the head its last pass saw no orphan at (also kept in
	 * the drive's directory, HEAD_FILE, for the next mount) */
	bool none_at_head;
	struct ledger_head head;
};

/* The head at which the last pass found no orphan, in the drive's directory: a mount
 * of a big drive starts from it instead of a scan of every file (issue 18: a fresh
 * mount's scan of 1M files took the disk from find and ls). Losing it or finding it
 * torn costs one whole scan, nothing else: it is not synced. */
static const char HEAD_FILE[] = "hosting-head";

static void head_path(const struct fs_drive *d, char *out, size_t n, const char *suffix)
{
	snprintf(out, n, "%s/%s%s", d->dir, HEAD_FILE, suffix);
}

static void head_load(struct fs_drive *d, struct fs_hosting *h)
{
	char path[4200], hex[LEDGER_HEX_LEN + 1];
	unsigned long long height;
	FILE *f;
	int got;

	head_path(d, path, sizeof path, "");
	if (!(f = fopen(path, "re")))
		return;
	got = fscanf(f, "swarmfs-hosting-head 1 %llu %64s", &height, hex);
	fclose(f);
	if (got != 2 || strlen(hex) != 2 * LEDGER_ID_LEN ||
	    ledger_unhex(hex, h->head.id, LEDGER_ID_LEN) < 0) {
		fs_debug("hosting: %s is not a head: ignored (a whole scan instead)", path);
		return;
	}
	h->head.height = height;
	h->none_at_head = true;
}

static void head_save(struct fs_drive *d, const struct fs_hosting *h)
{
	char path[4200], tmp[4200], hex[LEDGER_HEX_LEN];
	FILE *f;

	head_path(d, path, sizeof path, "");
	head_path(d, tmp, sizeof tmp, ".tmp");
	ledger_hex(h->head.id, LEDGER_ID_LEN, hex);
	if (!(f = fopen(tmp, "we")))
		return;
	fprintf(f, "swarmfs-hosting-head 1 %llu %s\n", (unsigned long long)h->head.height, hex);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		fs_debug("hosting: cannot keep the head in %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

/* Where e's content lives in the cache and how much of it is there. */
static bool whole_here(struct fs_drive *d, const struct ledger_entry *e, uint8_t key[32])
{
	struct ledger_entry full = *e;
	uint64_t base;

	fs_entry_content(d, &full);
	fs_content_where(&full.content, key, &base);
	return fs_engine_cached(d->cache, key, base, e->content.length) == e->content.length;
}

int fs_hosting_fetch(struct fs_drive *d, const struct ledger_entry *e, int timeout_ms,
                     bool wait_metadata, bool pin)
{
	struct cache_object_info info;
	bool pinned_here = false;
	static const size_t step = 4 << 20;
	struct ledger_entry full = *e;
	struct fs_engine_torrent *t = NULL;
	struct fs_engine_reader *r = NULL;
	struct timespec start, now;
	uint8_t key[32];
	char *buf;
	int err;

	if (whole_here(d, e, key))
		return pin ? cache_object_pin(d->cache, key) : 0;
	fs_entry_content(d, &full);
	err = fs_torrent_local(d, &full, &t);
	if (err == -ENOENT && wait_metadata) {
		char magnet[256];
		void *bytes = NULL;
		size_t len = 0;

		/* a few seconds at most: an unmount waits for this call */
		fs_torrent_magnet(&full, magnet);
		if ((err = fs_fetch_metadata(d, magnet,
		                             timeout_ms < FS_HOSTING_META_MS ? timeout_ms
		                                                             : FS_HOSTING_META_MS,
		                             &bytes, &len)) == 0)
			err = fs_torrent_adopt(d, &full, bytes, len, true, &t);
		free(bytes);
	} else if (err == -ENOENT)
		return -EAGAIN;
	if (err < 0)
		return err;
	/* pinned before it is fetched: what comes is never evicted meanwhile, so a file
	 * larger than the cache's cap can be held whole (pinned bytes are not capped) */
	if (pin && cache_object_stat(d->cache, key, &info) == 0 && !info.pinned) {
		if ((err = cache_object_pin(d->cache, key)) < 0)
			return err;
		pinned_here = true;
	}
	if ((err = fs_engine_reader_new(t, full.content.file_index, &r)) < 0) {
		if (pinned_here)
			cache_object_unpin(d->cache, key);
		return err;
	}
	if (!(buf = malloc(step))) {
		fs_engine_reader_free(r);
		return -ENOMEM;
	}
	/* one deadline for the whole file: a peer trickling a piece a minute cannot hold
	 * the pin (or the volunteer) forever */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (uint64_t off = 0; off < e->content.length && !d->closing;) {
		int64_t left;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - ((int64_t)(now.tv_sec - start.tv_sec) * 1000 +
		                     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		/* a second at a time, so an unmount is not held up by a slow swarm */
		n = fs_engine_read(r, buf, step, off, left > 1000 ? 1000 : (int)left);
		if (n == -ETIMEDOUT && left > 1000)
			continue;
		if (n <= 0) {
			err = n == 0 ? -EIO : (int)n;
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	fs_engine_reader_free(r);
	if (!err && d->closing)
		err = -ECANCELED;
	if (!err && !whole_here(d, e, key))
		err = -EAGAIN; /* evicted again meanwhile (a cache smaller than the file) */
	if (!err && pin && !pinned_here)
		err = cache_object_pin(d->cache, key);
	if (err && pinned_here)
		cache_object_unpin(d->cache, key); /* what came stays, evictable */
	return err;
}

static void kept_drop(struct fs_hosting *h, const uint8_t key[32])
{
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_kept; i++)
		if (!memcmp(h->kept[i].key, key, 32)) {
			h->kept[i] = h->kept[--h->n_kept];
			break;
		}
	pthread_mutex_unlock(&h->lock);
}

int fs_pin_entry(struct fs_drive *d, const struct ledger_entry *e, bool wait_metadata)
{
	struct cache_object_info info;
	uint8_t okey[32], ckey[32];
	int64_t tmo;
	bool was;
	int err;

	if (e->is_dir)
		return -EISDIR;
	if (!d->key)
		return -EROFS;
	if (!e->content.length)
		return 0; /* nothing to hold */
	if (!ledger_member_role(d->ledger, d->me))
		return -EPERM; /* its claim would count for nothing: pin nothing */
	whole_here(d, e, okey);
	was = cache_object_stat(d->cache, okey, &info) == 0 && info.pinned;
	/* the read timeout; off the FUSE workers (the volunteer), a second more for
	 * each 256 KiB: a big file is not given up on because it takes longer than one
	 * read may */
	tmo =
	    (int64_t)d->read_timeout_ms + (wait_metadata ? (int64_t)(e->content.length / 262) : 0);
	if ((err = fs_hosting_fetch(d, e, tmo > INT_MAX ? INT_MAX : (int)tmo, wait_metadata,
	                            true)) < 0)
		return err;
	ledger_content_key(&e->content, ckey);
	err = ledger_host_claim(d->ledger, ckey, true);
	if (err == -EEXIST)
		err = 0; /* held already (its publisher, or pinned before) */
	if (err < 0) {
		if (!was)
			cache_object_unpin(d->cache, okey);
		return err;
	}
	if (d->hosting)
		kept_drop(d->hosting, okey); /* pinned for good now, not just kept */
	fs_info("hosting: pinned %s (%llu bytes), host claim recorded", e->name,
	        (unsigned long long)e->content.length);
	return 0;
}

int fs_pin(struct fs_drive *d, const char *path)
{
	struct ledger_entry e;
	int err = fs_entry_lookup(d, path, &e);

	return err < 0 ? err : fs_pin_entry(d, &e, false);
}

int fs_unpin(struct fs_drive *d, const char *path)
{
	struct ledger_entry e;
	struct cache_object_info info;
	uint8_t okey[32], ckey[32];
	uint64_t base;
	int err, claim;

	if ((err = fs_entry_lookup(d, path, &e)) < 0)
		return err;
	if (e.is_dir)
		return -EISDIR;
	if (!d->key)
		return -EROFS;
	ledger_content_key(&e.content, ckey);
	fs_entry_content(d, &e);
	fs_content_where(&e.content, okey, &base);
	claim = e.content.length ? ledger_host_claim(d->ledger, ckey, false) : -EEXIST;
	if (claim < 0 && claim != -EEXIST)
		return claim; /* -EPERM: a removed member's claims count for nothing anyway */
	if (cache_object_stat(d->cache, okey, &info) == 0 && info.pinned) {
		if ((err = cache_object_unpin(d->cache, okey)) < 0)
			return err;
	} else if (claim == -EEXIST)
		return -ENOENT; /* neither claimed nor pinned here */
	fs_info("hosting: unpinned %s%s", e.name, claim == 0 ? ", host claim withdrawn" : "");
	return 0;
}

int fs_holders_count(struct fs_drive *d, const struct ledger_entry *e)
{
	uint8_t key[32], (*v)[32];
	size_t n;
	int err;

	if (e->is_dir)
		return -ENODATA;
	ledger_content_key(&e->content, key);
	if ((err = ledger_holders(d->ledger, key, &v, &n)) < 0)
		return err;
	free(v);
	return (int)n;
}

/* ---- health ---- */

/* Whether the normalized path p is at or beneath prefix ("" or "/": everything). */
static bool beneath(const char *p, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!n || !strcmp(prefix, "/"))
		return true;
	return !strncmp(p, prefix, n) && (p[n] == '\0' || p[n] == '/');
}

/* Holders of h this node sees holding it whole now (d NULL: unknown, -1). */
static int confirmed_of(struct fs_drive *d, const struct ledger_health *h)
{
	struct ledger_entry e;
	struct swarm_torrent_stats ts = { 0 };
	struct fs_engine_torrent *t;
	uint8_t okey[32];
	int self, others;

	if (!d)
		return -1;
	if (ledger_lookup(d->ledger, h->path, &e) < 0)
		return 0;
	self = h->mine && whole_here(d, &e, okey) ? 1 : 0;
	if (!self)
		whole_here(d, &e, okey); /* for the key */
	if ((t = fs_torrent_find(d, okey)))
		swarm_torrent_stats(fs_engine_torrent_swarm(t), &ts);
	others = (int)h->holders - self;
	return self + ((int)ts.seeds < others ? (int)ts.seeds : others);
}

static int health_text(struct fs_drive *d, struct ledger *l, const char *path, char **out)
{
	struct ledger_health *v = NULL;
	char norm[LEDGER_PATH_MAX + 2];
	size_t n = 0, len = 0;
	char *buf = NULL;
	FILE *f;
	int err;

	snprintf(norm, sizeof norm, "/%s", path[0] == '/' ? path + 1 : path);
	if ((err = ledger_health_list(l, false, 0, &v, &n)) < 0)
		return err;
	if (!(f = open_memstream(&buf, &len))) {
		ledger_health_free(v, n);
		return -ENOMEM;
	}
	fprintf(f, "target %lld\n", (long long)ledger_replicas(l));
	for (size_t i = 0; i < n; i++)
		if (beneath(v[i].path, norm))
			fprintf(f, "%u %d %s\n", v[i].holders, confirmed_of(d, &v[i]), v[i].path);
	ledger_health_free(v, n);
	if (fclose(f) || !buf)
		return -ENOMEM;
	*out = buf;
	return (int)len;
}

int fs_health_text(struct fs_drive *d, const char *path, char **out)
{
	return health_text(d, d->ledger, path, out);
}

int fs_health_text_ledger(struct ledger *l, const char *path, char **out)
{
	return health_text(NULL, l, path, out);
}

int fs_health_print(const char *text, bool json)
{
	struct fs_json j;
	long long target = LEDGER_REPLICAS_DEFAULT;
	size_t below = 0, files = 0;
	int rc = 0;

	if (sscanf(text, "target %lld", &target) != 1)
		return -EBADMSG;
	if (json) {
		fs_json_init(&j);
		fs_json_array_begin(&j, NULL);
	} else
		printf("replica target %lld\n", target);
	for (const char *p = strchr(text, '\n'); p && *++p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		char line[LEDGER_PATH_MAX + 64];
		unsigned holders;
		int confirmed, at = 0;

		snprintf(line, sizeof line, "%.*s", (int)ll, p);
		p = nl ? nl : p + ll - 1;
		if (sscanf(line, "%u %d %n", &holders, &confirmed, &at) < 2 || !at)
			continue;
		files++;
		below += holders < target;
		if (json) {
			fs_json_object_begin(&j, NULL);
			fs_json_str(&j, "path", line + at);
			fs_json_uint(&j, "holders", holders);
			if (confirmed < 0)
				fs_json_null(&j, "confirmed");
			else
				fs_json_int(&j, "confirmed", confirmed);
			fs_json_int(&j, "target", target);
			fs_json_bool(&j, "below", holders < target);
			fs_json_object_end(&j);
		} else if (confirmed < 0) {
			printf("%s  holders %u%s\n", line + at, holders,
			       holders < target ? "  BELOW TARGET" : "");
		} else {
			printf("%s  holders %u (confirmed %d)%s\n", line + at, holders, confirmed,
			       holders < target ? "  BELOW TARGET" : "");
		}
	}
	if (json) {
		fs_json_array_end(&j);
		rc = fs_json_print(&j);
		fs_json_release(&j);
	} else
		printf("%zu file(s), %zu below the target\n", files, below);
	return rc;
}

/* ---- the last known copy ---- */

size_t fs_hosting_kept(struct fs_drive *d, uint64_t *out_bytes)
{
	struct fs_hosting *h = d->hosting;
	uint64_t bytes = 0;
	size_t n;

	if (!h) {
		*out_bytes = 0;
		return 0;
	}
	pthread_mutex_lock(&h->lock);
	n = h->n_kept;
	for (size_t i = 0; i < n; i++)
		bytes += h->kept[i].bytes;
	pthread_mutex_unlock(&h->lock);
	*out_bytes = bytes;
	return n;
}

static bool in_keys(const uint8_t (*keys)[32], size_t n, const uint8_t key[32])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(keys[i], key, 32))
			return true;
	return false;
}

/* One pass: keep what no member holds and this node has whole; let go of what a
 * member holds again. */
static void sweep(struct fs_drive *d, struct fs_hosting *h)
{
	struct ledger_health *v = NULL;
	uint8_t(*orphans)[32] = NULL;
	size_t n = 0, n_orphans = 0;
	struct ledger_head head;

	/* Who holds what changes only with the chain (host claims, members and files
	 * come in blocks): at the head where the last pass found no orphan there is
	 * nothing to keep and, that pass having let go of the rest, nothing kept. On a
	 * big drive this spares a scan of every file each FS_HOSTING_SWEEP_MS. */
	if (ledger_head_get(d->ledger, &head) < 0)
		return;
	if (h->none_at_head && !memcmp(h->head.id, head.id, sizeof head.id))
		return;
	/* from a head with no orphan, only what changed since can be one: the files
	 * published since are looked at, not every file (a removal or a withdrawn claim,
	 * and a reorg, need the whole scan) */
	if (h->none_at_head) {
		struct ledger_head now;
		int rc = ledger_health_orphans_since(d->ledger, &h->head, &now, &v, &n);

		if (rc == 0 && n == 0) {
			h->head = now;
			head_save(d, h);
			return;
		}
		if (rc == 0)
			ledger_health_free(v, n);
		else if (rc != -ESTALE)
			return; /* next time */
		v = NULL;
		n = 0;
	}
	/* the head the scan is of, from its own read transaction: the writer's head may
	 * be ahead of what is committed (a sync holds its transaction open a while) */
	if (ledger_health_orphans(d->ledger, &head, &v, &n) < 0)
		return;
	for (size_t i = 0; i < n && !d->closing; i++) {
		struct cache_object_info info;
		struct ledger_entry e;
		uint8_t okey[32];
		void *no;

		if (ledger_lookup(d->ledger, v[i].path, &e) < 0 || !whole_here(d, &e, okey))
			continue;
		if (!(no = realloc(orphans, (n_orphans + 1) * sizeof *orphans)))
			break;
		orphans = no;
		memcpy(orphans[n_orphans++], okey, 32);
		pthread_mutex_lock(&h->lock);
		bool known = false;

		for (size_t k = 0; k < h->n_kept; k++)
			known |= !memcmp(h->kept[k].key, okey, 32);
		pthread_mutex_unlock(&h->lock);
		if (known || cache_object_stat(d->cache, okey, &info) < 0 || info.pinned)
			continue; /* kept already, or pinned for another reason */
		if (cache_object_pin(d->cache, okey) < 0)
			continue;
		pthread_mutex_lock(&h->lock);
		if (h->n_kept == h->cap_kept) {
			size_t nc = h->cap_kept ? h->cap_kept * 2 : 16;
			void *nk = realloc(h->kept, nc * sizeof *h->kept);

			if (nk) {
				h->kept = nk;
				h->cap_kept = nc;
			}
		}
		if (h->n_kept < h->cap_kept) {
			memcpy(h->kept[h->n_kept].key, okey, 32);
			h->kept[h->n_kept++].bytes = info.length;
		}
		pthread_mutex_unlock(&h->lock);
		fs_notice("hosting: %s is kept: no member holds it, this node has the last "
		          "known copy",
		          v[i].path);
	}
	/* a member holds it again (or it is gone): evictable like any read */
	for (;;) {
		uint8_t key[32];
		bool found = false;

		pthread_mutex_lock(&h->lock);
		for (size_t k = 0; k < h->n_kept && !found; k++)
			if (!in_keys((const uint8_t(*)[32])orphans, n_orphans, h->kept[k].key)) {
				memcpy(key, h->kept[k].key, 32);
				h->kept[k] = h->kept[--h->n_kept];
				found = true;
			}
		pthread_mutex_unlock(&h->lock);
		if (!found)
			break;
		cache_object_unpin(d->cache, key);
	}
	h->none_at_head = n == 0;
	h->head = head;
	if (h->none_at_head)
		head_save(d, h);
	free(orphans);
	ledger_health_free(v, n);
}

static void *hosting_main(void *arg)
{
	struct fs_drive *d = arg;
	struct fs_hosting *h = d->hosting;

	/* a scan of the drive's files now and then: background work, like the
	 * verification sweep */
	fs_thread_background("hosting");
	head_load(d, h);
	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&h->lock);
		sweep(d, h);
		pthread_mutex_lock(&h->lock);
		ts = fs_time_after(CLOCK_REALTIME, FS_HOSTING_SWEEP_MS);
		if (!h->stop)
			pthread_cond_timedwait(&h->cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int fs_hosting_start(struct fs_drive *d)
{
	struct fs_hosting *h = calloc(1, sizeof *h);
	int err;

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	d->hosting = h;
	if ((err = -pthread_create(&h->thread, NULL, hosting_main, d)) < 0) {
		d->hosting = NULL;
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->cond);
		free(h);
	}
	return err;
}

void fs_hosting_stop(struct fs_drive *d)
{
	struct fs_hosting *h = d->hosting;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	d->hosting = NULL;
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h->kept);
	free(h);
}
