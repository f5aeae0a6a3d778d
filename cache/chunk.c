/*
 * chunk.c — the per-chunk paths: marking a verified chunk, pinning and reading ranges
 * (the hot path), checking what is read against the digests of what was verified,
 * and eviction.
 */
#include "cache_priv.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Hashing reads in slices of this size. Measured with bench_cache: 1 MiB slices come
 * from fresh mmap()ed memory each call (glibc's threshold) and the page faults halved
 * the hashing rate; 64-256 KiB reuse heap memory and keep syscalls few. */
#define HASH_SLICE (256U << 10)

/* priv_first of a block after cache_block_unpin(). */
#define BLOCK_RELEASED UINT32_MAX

/* The chunk digest's label: a derived digest is never the SHA-256 of bytes someone
 * could have put in a chunk that start with it. */
static const char chunk_label[] = "swarmfs cache chunk v2";

/* End block b: its full digest into the chunk digest d, its first CACHE_BLK_LEN bytes
 * into out (if not NULL), and b starts the next block. */
static int blk_final(EVP_MD_CTX *b, EVP_MD_CTX *d, uint8_t *out)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_DigestFinal_ex(b, md, &mdlen) != 1 || mdlen != CACHE_SHA_LEN ||
	    EVP_DigestUpdate(d, md, CACHE_SHA_LEN) != 1 ||
	    EVP_DigestInit_ex(b, EVP_sha256(), NULL) != 1)
		return -EIO;
	if (out)
		memcpy(out, md, CACHE_BLK_LEN);
	return 0;
}

static int chunk_digest_init(EVP_MD_CTX *d)
{
	return EVP_DigestInit_ex(d, EVP_sha256(), NULL) == 1 &&
	               EVP_DigestUpdate(d, chunk_label, sizeof chunk_label) == 1
	           ? 0
	           : -ENOMEM;
}

int cache_chunk_digest(const uint8_t (*blocks)[CACHE_SHA_LEN], uint32_t n,
                       uint8_t out[CACHE_SHA_LEN])
{
	EVP_MD_CTX *d = EVP_MD_CTX_new();
	unsigned int mdlen = 0;
	int rc = d ? chunk_digest_init(d) : -ENOMEM;

	if (rc == 0 && n && EVP_DigestUpdate(d, blocks, (size_t)n * CACHE_SHA_LEN) != 1)
		rc = -EIO;
	if (rc == 0 && (EVP_DigestFinal_ex(d, out, &mdlen) != 1 || mdlen != CACHE_SHA_LEN))
		rc = -EIO;
	EVP_MD_CTX_free(d);
	return rc;
}

int cache_hash_range(int fd, uint64_t off, uint64_t len, uint8_t out[CACHE_SHA_LEN],
                     uint8_t (*out_blk)[CACHE_BLK_LEN], uint8_t out_legacy[CACHE_SHA_LEN])
{
	size_t bufsize = len < HASH_SLICE ? (size_t)len : HASH_SLICE;
	uint8_t *buf = malloc(bufsize ? bufsize : 1);
	EVP_MD_CTX *b = EVP_MD_CTX_new(), *d = EVP_MD_CTX_new();
	EVP_MD_CTX *w = out_legacy ? EVP_MD_CTX_new() : NULL;
	unsigned int mdlen = 0;
	uint64_t done = 0;
	size_t nb = 0;
	int rc = 0;

	if (!buf || !b || !d || EVP_DigestInit_ex(b, EVP_sha256(), NULL) != 1 ||
	    chunk_digest_init(d) < 0 ||
	    (out_legacy && (!w || EVP_DigestInit_ex(w, EVP_sha256(), NULL) != 1))) {
		rc = -ENOMEM;
		goto out;
	}
	while (len) {
		size_t want = len < bufsize ? (size_t)len : bufsize;
		ssize_t r = pread(fd, buf, want, (off_t)off);

		if (r < 0) {
			rc = -errno;
			if (rc == -EINTR)
				continue;
			goto out;
		}
		if (r == 0) {
			rc = -EIO; /* the file is shorter than the chunk */
			goto out;
		}
		if (w)
			EVP_DigestUpdate(w, buf, (size_t)r);
		for (size_t at = 0; at < (size_t)r;) {
			size_t take = CACHE_BLOCK - (size_t)(done % CACHE_BLOCK);

			if (take > (size_t)r - at)
				take = (size_t)r - at;
			EVP_DigestUpdate(b, buf + at, take);
			at += take;
			done += take;
			if (done % CACHE_BLOCK == 0 &&
			    (rc = blk_final(b, d, out_blk ? out_blk[nb++] : NULL)) < 0)
				goto out;
		}
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	if (done % CACHE_BLOCK && (rc = blk_final(b, d, out_blk ? out_blk[nb] : NULL)) < 0)
		goto out;
	if (EVP_DigestFinal_ex(d, out, &mdlen) != 1 || mdlen != CACHE_SHA_LEN ||
	    (w && (EVP_DigestFinal_ex(w, out_legacy, &mdlen) != 1 || mdlen != CACHE_SHA_LEN)))
		rc = -EIO;
out:
	EVP_MD_CTX_free(w);
	EVP_MD_CTX_free(d);
	EVP_MD_CTX_free(b);
	free(buf);
	return rc;
}

/* The block digest of n bytes in memory. */
static int blk_digest(const void *p, size_t n, uint8_t out[CACHE_BLK_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != CACHE_SHA_LEN)
		return -ENOMEM;
	memcpy(out, md, CACHE_BLK_LEN);
	return 0;
}

/* ---- eviction ---- */

static int victim_push(struct cache_victims *vs, struct cache_obj *o, uint32_t idx)
{
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 64;
		struct cache_victim *v = realloc(vs->v, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		vs->v = v;
		vs->cap = cap;
	}
	memcpy(vs->v[vs->n].key, o->key, CACHE_KEY_LEN);
	vs->v[vs->n].obj = o;
	vs->v[vs->n].idx = idx;
	vs->n++;
	return 0;
}

static int victim_cmp(const void *a, const void *b)
{
	const struct cache_victim *x = a, *y = b;
	int k = memcmp(x->key, y->key, CACHE_KEY_LEN);

	if (k)
		return k;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int cache_retire_locked(struct cache *c, struct cache_victims *vs, size_t from)
{
	struct cache_rec_buf rec = { 0 };
	int rc = 0;

	if (from == vs->n)
		return 0;
	qsort(vs->v + from, vs->n - from, sizeof *vs->v, victim_cmp);
	for (size_t i = from; i < vs->n && rc == 0; i++)
		rc = cache_rec_chunk_clr(&rec, vs->v[i].key, vs->v[i].idx);
	if (rc == 0)
		rc = cache_index_append(c, &rec, false);
	cache_rec_buf_release(&rec);
	/* Without its record a punched chunk would still be marked; keep the data then.
	 * The memory state already says absent, so nothing serves it either way. */
	if (rc < 0)
		return rc;
	for (size_t i = from; i < vs->n;) {
		struct cache_obj *o = vs->v[i].obj;
		size_t j = i + 1;
		int fd;

		while (j < vs->n && vs->v[j].obj == o && vs->v[j].idx == vs->v[j - 1].idx + 1)
			j++;
		fd = cache_obj_fd_get(c, o);
		if (fd >= 0) {
			uint64_t off = (uint64_t)vs->v[i].idx * o->chunk_size;
			uint64_t end = (uint64_t)vs->v[j - 1].idx * o->chunk_size +
			               cache_chunk_len(o, vs->v[j - 1].idx);

			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			              (off_t)(end - off)) < 0) {
				char hex[2 * CACHE_KEY_LEN + 1];

				cache_key_hex(o->key, hex);
				C_WARN(c, "cannot punch chunks %u-%u of %s: %s", vs->v[i].idx,
				       vs->v[j - 1].idx, hex, strerror(errno));
			}
			cache_obj_fd_put(c, o);
		}
		i = j;
	}
	return 0;
}

int cache_evict_locked(struct cache *c, struct cache_victims *vs)
{
	size_t from = vs->n;
	uint64_t target;
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	if (c->used <= c->cap) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	target = c->cap / 100 * c->low_pct + c->cap % 100 * c->low_pct / 100;
	for (struct cache_entry *e = c->lru.next, *next; e != &c->lru && c->used > target;
	     e = next) {
		next = e->next;
		if (e->pins)
			continue;
		if ((rc = victim_push(vs, e->obj, e->idx)) < 0)
			break; /* evict what was collected; the next call continues */
		cache_entry_detach(c, e);
		cache_entry_free(e);
		c->evictions++;
	}
	pthread_mutex_unlock(&c->mu);
	rc = cache_retire_locked(c, vs, from);
	return rc < 0 ? rc : (int)(vs->n - from);
}

void cache_victims_report(struct cache *c, struct cache_victims *vs)
{
	uint32_t *idx = NULL;

	if (c->on_evict && vs->n) {
		qsort(vs->v, vs->n, sizeof *vs->v, victim_cmp);
		idx = malloc(vs->n * sizeof *idx);
	}
	for (size_t i = 0; idx && i < vs->n;) {
		size_t j = i, n = 0;

		while (j < vs->n && memcmp(vs->v[j].key, vs->v[i].key, CACHE_KEY_LEN) == 0)
			idx[n++] = vs->v[j++].idx;
		c->on_evict(vs->v[i].key, idx, n, c->evict_ctx);
		i = j;
	}
	if (c->on_evict && vs->n && !idx)
		C_ERR(c, "out of memory reporting %zu evicted chunks", vs->n);
	free(idx);
	free(vs->v);
	vs->v = NULL;
	vs->n = vs->cap = 0;
}

/* ---- marking ---- */

/* Whether chunk idx of o may be marked now: 0 yes, 1 present already, or -errno. A chunk
 * found corrupt (and rewritten by the swarm since) is replaced, unless a reader still
 * holds it: that reader drops it as it lets go. mu held. */
static int markable_locked(struct cache *c, struct cache_obj *o, uint32_t idx)
{
	struct cache_entry *e = o->ent[idx];

	if (!e)
		return 0;
	if (!(e->flags & CE_BAD))
		return 1;
	if (e->pins)
		return -EBUSY;
	cache_entry_detach(c, e);
	cache_entry_free(e);
	return 0;
}

int cache_chunk_mark(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk)
{
	return cache_chunk_mark_hashed(c, key, chunk, NULL, 0);
}

/* The chunk's digests from the block digests of a hash check: the full digests make the
 * chunk digest, their first CACHE_BLK_LEN bytes the block digests reads are checked
 * against. */
static int digests_given(const uint8_t (*blocks)[CACHE_BLOCK_SHA_LEN], uint32_t nblk,
                         struct cache_entry *e)
{
	for (uint32_t i = 0; i < nblk; i++)
		memcpy(e->blk[i], blocks[i], CACHE_BLK_LEN);
	return cache_chunk_digest(blocks, nblk, e->sha);
}

int cache_chunk_mark_hashed(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk,
                            const uint8_t (*blocks)[CACHE_BLOCK_SHA_LEN], uint32_t n)
{
	struct cache_rec_buf rec = { 0 };
	struct cache_victims vs = { 0 };
	struct cache_entry *e = NULL;
	struct cache_obj *o;
	uint64_t off;
	uint32_t len;
	bool over;
	int rc = 0, fd = -1;

	if (!c || !key)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (!o)
		rc = -ENOENT;
	else if (chunk >= o->nchunks)
		rc = -EINVAL;
	else if (o->ent[chunk] && !(o->ent[chunk]->flags & CE_BAD))
		rc = 1;
	else
		o->marking++; /* keeps o alive without idx_mu: remove and adopt refuse */
	pthread_mutex_unlock(&c->mu);
	if (rc != 0)
		return rc;
	off = (uint64_t)chunk * o->chunk_size;
	len = cache_chunk_len(o, chunk);
	/* The chunk's bytes reach the disk before the record that says they are there: a
	 * crash (or power loss) after the record then never finds a half-written chunk
	 * marked. A page-cache-only ordering would survive kill -9 but not power loss.
	 * This waits for the disk, so it runs before idx_mu: marks of different chunks
	 * overlap their writeback. */
	fd = cache_obj_fd_get(c, o); /* put under idx_mu, which keeps o alive */
	if (fd >= 0 && sync_file_range(fd, (off_t)off, len,
	                               SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
	                                   SYNC_FILE_RANGE_WAIT_AFTER) < 0) {
		rc = -errno;
		C_ERR(c, "chunk %u: writeback failed: %s", chunk, strerror(-rc));
	} else if (fd < 0) {
		rc = fd;
	}
	e = calloc(1, sizeof *e);
	if (e)
		e->blk = calloc(cache_chunk_blocks(o, chunk), CACHE_BLK_LEN);
	if ((!e || !e->blk) && rc == 0)
		rc = -ENOMEM;
	pthread_mutex_lock(&c->idx_mu);
	pthread_mutex_lock(&c->mu);
	o->marking--;
	if (rc == 0)
		rc = markable_locked(c, o, chunk);
	pthread_mutex_unlock(&c->mu);
	if (rc != 0)
		goto out;
	/* Digests given by the hash check that verified the chunk are those of the bytes
	 * it read from this file: reading and hashing them again would vouch for nothing
	 * more (a change since then fails the reads' check). Otherwise hashed under idx_mu,
	 * which hole punching also holds: the bytes hashed are the bytes the record vouches
	 * for. */
	if (blocks && n >= cache_chunk_blocks(o, chunk)) {
		rc = digests_given(blocks, cache_chunk_blocks(o, chunk), e);
	} else {
		rc = cache_hash_range(fd, off, len, e->sha, e->blk, NULL);
		if (rc == 0)
			__atomic_add_fetch(&c->rehashed, 1, __ATOMIC_RELAXED);
	}
	cache_obj_fd_put(c, o);
	fd = -1;
	if (rc < 0) {
		char hex[2 * CACHE_KEY_LEN + 1];

		cache_key_hex(key, hex);
		C_ERR(c, "cannot hash chunk %u of %s: %s", chunk, hex, strerror(-rc));
		goto out;
	}
	if ((rc = cache_rec_chunk_set(&rec, key, chunk, e->sha, false)) < 0 ||
	    (rc = cache_index_append(c, &rec, false)) < 0)
		goto out;
	e->obj = o;
	e->idx = chunk;
	pthread_mutex_lock(&c->mu);
	cache_entry_attach(c, e);
	over = c->used > c->cap;
	pthread_mutex_unlock(&c->mu);
	e = NULL;
	if (over && (rc = cache_evict_locked(c, &vs)) > 0)
		rc = 0;
out:
	if (fd >= 0)
		cache_obj_fd_put(c, o);
	pthread_mutex_unlock(&c->idx_mu);
	cache_entry_free(e);
	cache_rec_buf_release(&rec);
	cache_victims_report(c, &vs);
	return rc;
}

bool cache_chunk_present(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk)
{
	struct cache_obj *o;
	bool present = false;

	if (!c || !key)
		return false;
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (o && chunk < o->nchunks && o->ent[chunk] && !(o->ent[chunk]->flags & CE_BAD))
		present = true;
	pthread_mutex_unlock(&c->mu);
	return present;
}

/* ---- pins and reads ---- */

static void unpin_range(struct cache *c, struct cache_obj *o, uint32_t first, uint32_t count)
{
	pthread_mutex_lock(&c->mu);
	for (uint32_t i = first; i < first + count; i++) {
		struct cache_entry *e = o->ent[i];

		assert(e && e->pins > 0 && "cache_block_unpin without a matching pin");
		if (--e->pins == 0)
			c->pinned -= cache_chunk_len(o, i);
	}
	o->pins -= count;
	pthread_mutex_unlock(&c->mu);
}

/* e (pinned, or idx_mu held) does not hold what was verified: it reads as missing from
 * now on and is dropped as soon as no reader holds it. Logged and counted once. */
static void flag_bad(struct cache *c, struct cache_obj *o, struct cache_entry *e)
{
	bool first;

	pthread_mutex_lock(&c->mu);
	first = !(e->flags & CE_BAD);
	if (first) {
		e->flags = (uint8_t)((e->flags | CE_BAD) & ~CE_UNCHECKED);
		c->corrupt++;
	}
	pthread_mutex_unlock(&c->mu);
	if (first) {
		char hex[2 * CACHE_KEY_LEN + 1];

		cache_key_hex(o->key, hex);
		C_WARN(c, "chunk %u of %s changed on disk since it was verified; dropped", e->idx,
		       hex);
	}
}

/* Read chunk e (pinned, or idx_mu held) from fd, compare its digest with the one
 * recorded when it was marked, and learn its block digests, in one pass (two for a
 * CE_LEGACY entry, which then takes the derived digest: the index gets it at its next
 * compaction). Returns 0 (it matches), -EBADMSG (it does not: flagged bad), or -ENOMEM
 * (nothing changes). */
static int entry_check(struct cache *c, struct cache_obj *o, int fd, struct cache_entry *e)
{
	uint8_t(*blk)[CACHE_BLK_LEN] = calloc(cache_chunk_blocks(o, e->idx), CACHE_BLK_LEN);
	uint8_t sha[CACHE_SHA_LEN], whole[CACHE_SHA_LEN], want[CACHE_SHA_LEN];
	bool legacy;
	int rc;

	if (!blk)
		return -ENOMEM;
	/* a copy: another check of a CE_LEGACY entry may replace e->sha meanwhile */
	pthread_mutex_lock(&c->mu);
	legacy = (e->flags & CE_LEGACY) != 0;
	memcpy(want, e->sha, CACHE_SHA_LEN);
	pthread_mutex_unlock(&c->mu);
	rc = cache_hash_range(fd, (uint64_t)e->idx * o->chunk_size, cache_chunk_len(o, e->idx), sha,
	                      blk, legacy ? whole : NULL);
	/* a short file or a failing disk is as bad as changed bytes */
	if ((rc < 0 && rc != -ENOMEM) ||
	    (rc == 0 && memcmp(legacy ? whole : sha, want, CACHE_SHA_LEN) != 0))
		rc = -EBADMSG;
	if (rc < 0) {
		free(blk);
		if (rc == -EBADMSG)
			flag_bad(c, o, e);
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	e->flags &= (uint8_t)~CE_UNCHECKED;
	if (e->flags & CE_LEGACY) {
		memcpy(e->sha, sha, CACHE_SHA_LEN);
		e->flags &= (uint8_t)~CE_LEGACY;
	}
	if (!e->blk) {
		e->blk = blk;
		blk = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	free(blk);
	return 0;
}

/* Chunks not hashed in this process (loaded from the index) or asked to be re-hashed
 * are read and compared once, as they are pinned. Returns 0 if every chunk of the
 * range is good, -EBADMSG if one is not (each bad one flagged), or -ENOMEM. */
static int check_range(struct cache *c, struct cache_obj *o, int fd, uint32_t first, uint32_t count)
{
	int rc = 0;

	for (uint32_t i = first; i < first + count; i++) {
		struct cache_entry *e = o->ent[i]; /* pinned: stays */
		uint8_t flags;
		bool known;
		int r;

		pthread_mutex_lock(&c->mu);
		flags = e->flags;
		known = e->blk != NULL;
		pthread_mutex_unlock(&c->mu);
		if (flags & CE_BAD)
			r = -EBADMSG;
		else if (!(flags & CE_UNCHECKED) && known)
			continue;
		else
			r = entry_check(c, o, fd, e);
		if (r < 0 && rc != -EBADMSG)
			rc = r;
	}
	return rc;
}

/* Compare buf, the bytes [offset, offset + len) of o as just read, with the block
 * digests of its pinned, checked chunks; a block only partly in buf is read whole from
 * fd. Returns 0 (every byte is what was verified), -EBADMSG (a chunk differs: it is
 * flagged bad), or -ENOMEM/-errno (nothing changes). */
static int verify_bytes(struct cache *c, struct cache_obj *o, int fd, uint64_t offset,
                        const uint8_t *buf, size_t len)
{
	uint64_t end = offset + len;
	uint8_t *tmp = NULL;
	int rc = 0;

	for (uint32_t i = (uint32_t)(offset / o->chunk_size);
	     rc == 0 && len && i <= (uint32_t)((end - 1) / o->chunk_size); i++) {
		struct cache_entry *e = o->ent[i]; /* pinned: stays */
		uint64_t coff = (uint64_t)i * o->chunk_size, cend = coff + cache_chunk_len(o, i);
		uint64_t from = offset > coff ? offset : coff;
		uint8_t(*blk)[CACHE_BLK_LEN];

		pthread_mutex_lock(&c->mu);
		blk = e->blk;
		pthread_mutex_unlock(&c->mu);
		if (!blk)
			return -EIO; /* check_range learnt them: a caller's bug */
		for (uint64_t b = (from - coff) / CACHE_BLOCK, bs;
		     rc == 0 && (bs = coff + b * CACHE_BLOCK) < end && bs < cend; b++) {
			uint64_t be = bs + CACHE_BLOCK < cend ? bs + CACHE_BLOCK : cend;
			uint8_t d[CACHE_BLK_LEN];
			bool ok;

			if (bs >= offset && be <= end) {
				rc = blk_digest(buf + (bs - offset), (size_t)(be - bs), d);
				ok = rc == 0 && memcmp(d, blk[b], CACHE_BLK_LEN) == 0;
			} else {
				/* an edge: the whole block from disk, and buf's part of it */
				uint64_t lo = bs > offset ? bs : offset, hi = be < end ? be : end;
				ssize_t r;

				if (!tmp && !(tmp = malloc(CACHE_BLOCK))) {
					rc = -ENOMEM;
					break;
				}
				do
					r = pread(fd, tmp, (size_t)(be - bs), (off_t)bs);
				while (r < 0 && errno == EINTR);
				ok = r == (ssize_t)(be - bs) &&
				     blk_digest(tmp, (size_t)(be - bs), d) == 0 &&
				     memcmp(d, blk[b], CACHE_BLK_LEN) == 0 &&
				     memcmp(tmp + (lo - bs), buf + (lo - offset),
				            (size_t)(hi - lo)) == 0;
			}
			if (rc == 0 && !ok) {
				flag_bad(c, o, e);
				rc = -EBADMSG;
			}
		}
	}
	free(tmp);
	return rc;
}

/* A read found corrupt chunks in [first, first + count), which it still pins: unpin and
 * drop those no other reader holds (the last one to let go drops the rest). */
static void unpin_and_drop(struct cache *c, struct cache_obj *o, uint32_t first, uint32_t count)
{
	struct cache_victims vs = { 0 };

	/* idx_mu before letting go: holding it, o cannot be removed under us. */
	pthread_mutex_lock(&c->idx_mu);
	unpin_range(c, o, first, count);
	pthread_mutex_lock(&c->mu);
	for (uint32_t i = first; i < first + count; i++) {
		struct cache_entry *e = o->ent[i];

		if (e && (e->flags & CE_BAD) && e->pins == 0 && victim_push(&vs, o, i) == 0) {
			cache_entry_detach(c, e);
			cache_entry_free(e);
		}
	}
	pthread_mutex_unlock(&c->mu);
	cache_retire_locked(c, &vs, 0);
	pthread_mutex_unlock(&c->idx_mu);
	cache_victims_report(c, &vs);
}

/* cache_block_pin without the counters. A chunk found corrupt by its first check is
 * dropped (drop) or only flagged, for a caller that must not run on_evict: then
 * -EBADMSG. */
static int pin_range(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset, size_t len,
                     bool drop, struct cache_block *out_block)
{
	struct cache_obj *o;
	uint64_t end;
	uint32_t first, last, count;
	bool check = false;
	int fd, rc;

	if (!c || !key || !out_block || len == 0)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (!o) {
		pthread_mutex_unlock(&c->mu);
		return -ENOENT;
	}
	if (offset >= o->length) {
		pthread_mutex_unlock(&c->mu);
		*out_block = (struct cache_block){ .fd = -1, .offset = offset, .len = 0 };
		return 0;
	}
	end = len < o->length - offset ? offset + len : o->length;
	first = (uint32_t)(offset / o->chunk_size);
	last = (uint32_t)((end - 1) / o->chunk_size);
	count = last - first + 1;
	for (uint32_t i = first; i <= last; i++) {
		struct cache_entry *e = o->ent[i];

		if (!e || (e->flags & CE_BAD)) {
			pthread_mutex_unlock(&c->mu);
			return -ENODATA;
		}
	}
	for (uint32_t i = first; i <= last; i++) {
		struct cache_entry *e = o->ent[i];

		if (e->pins++ == 0)
			c->pinned += cache_chunk_len(o, i);
		cache_lru_touch(c, e);
		check |= (e->flags & CE_UNCHECKED) != 0 || !e->blk;
	}
	o->pins += count;
	pthread_mutex_unlock(&c->mu);

	fd = cache_obj_fd_get(c, o); /* put by cache_block_unpin */
	if (fd < 0) {
		unpin_range(c, o, first, count);
		return fd;
	}
	if (check && (rc = check_range(c, o, fd, first, count)) < 0) {
		cache_obj_fd_put(c, o);
		if (rc == -EBADMSG && drop) {
			unpin_and_drop(c, o, first, count);
			return -ENODATA;
		}
		unpin_range(c, o, first, count);
		return rc;
	}
	*out_block = (struct cache_block){
		.fd = fd,
		.offset = offset,
		.len = (size_t)(end - offset),
		.priv_obj = o,
		.priv_first = first,
		.priv_count = count,
	};
	return 0;
}

static void count(struct cache *c, int rc, const struct cache_block *b)
{
	if (rc == -ENODATA)
		__atomic_add_fetch(&c->misses, 1, __ATOMIC_RELAXED);
	else if (rc == 0 && b->len)
		__atomic_add_fetch(&c->hits, 1, __ATOMIC_RELAXED);
}

int cache_block_pin(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset, size_t len,
                    struct cache_block *out_block)
{
	int rc = pin_range(c, key, offset, len, true, out_block);

	count(c, rc, out_block);
	return rc;
}

void cache_block_unpin(struct cache *c, struct cache_block *block)
{
	if (!c || !block)
		return;
	/* A released block is marked so that a second unpin is caught, not a no-op. */
	assert(block->priv_first != BLOCK_RELEASED && "cache_block_unpin twice");
	if (block->priv_obj) {
		cache_obj_fd_put(c, block->priv_obj);
		unpin_range(c, block->priv_obj, block->priv_first, block->priv_count);
	}
	*block = (struct cache_block){ .fd = -1, .priv_first = BLOCK_RELEASED };
}

ssize_t cache_read(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset, void *buf,
                   size_t len)
{
	struct cache_block b;
	size_t done = 0;
	ssize_t rc;

	if (!buf)
		return -EINVAL;
	rc = pin_range(c, key, offset, len, true, &b);
	if (rc < 0) {
		count(c, (int)rc, &b);
		return rc;
	}
	while (done < b.len) {
		ssize_t r = pread(b.fd, (char *)buf + done, b.len - done, (off_t)(b.offset + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (r == 0) {
			rc = -EIO; /* the data file is shorter than its marked chunks */
			break;
		}
		done += (size_t)r;
	}
	/* What was read is what is served: it is checked, not the file before or after. */
	if (rc == 0 && done)
		rc = verify_bytes(c, b.priv_obj, b.fd, b.offset, buf, done);
	if (rc == -EBADMSG) {
		cache_obj_fd_put(c, b.priv_obj);
		unpin_and_drop(c, b.priv_obj, b.priv_first, b.priv_count);
		rc = -ENODATA;
		count(c, (int)rc, &b);
		return rc;
	}
	count(c, (int)rc, &b);
	cache_block_unpin(c, &b);
	return rc < 0 ? rc : (ssize_t)done;
}

int cache_verify(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t offset,
                 const void *buf, size_t len)
{
	struct cache_block b;
	int rc;

	if (!buf)
		return -EINVAL;
	rc = pin_range(c, key, offset, len, false, &b);
	if (rc < 0)
		return rc;
	/* Past the object's end a torrent has only padding (a hybrid torrent's pad file):
	 * zeros, not the cache's to check. */
	for (size_t i = b.len; i < len && rc == 0; i++)
		if (((const uint8_t *)buf)[i])
			rc = -EINVAL;
	if (rc == 0 && b.len)
		rc = verify_bytes(c, b.priv_obj, b.fd, b.offset, buf, b.len);
	cache_block_unpin(c, &b);
	return rc;
}

int cache_chunk_check(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk)
{
	struct cache_victims vs = { 0 };
	struct cache_entry *e = NULL;
	struct cache_obj *o;
	bool bad = false;
	int rc = 0, fd;

	if (!c || !key)
		return -EINVAL;
	/* idx_mu: no entry is freed and no hole punched while it is held */
	pthread_mutex_lock(&c->idx_mu);
	pthread_mutex_lock(&c->mu);
	o = cache_obj_find(c, key);
	if (!o)
		rc = -ENOENT;
	else if (chunk >= o->nchunks)
		rc = -EINVAL;
	else if (!(e = o->ent[chunk]))
		rc = -ENODATA;
	else
		bad = (e->flags & CE_BAD) != 0;
	pthread_mutex_unlock(&c->mu);
	if (rc < 0)
		goto out;
	if (!bad) {
		fd = cache_obj_fd_get(c, o);
		rc = fd < 0 ? fd : entry_check(c, o, fd, e);
		if (fd >= 0)
			cache_obj_fd_put(c, o);
		if (rc != -EBADMSG)
			goto out;
	}
	pthread_mutex_lock(&c->mu);
	if (e->pins) {
		rc = -EBUSY;
	} else if ((rc = victim_push(&vs, o, chunk)) == 0) {
		cache_entry_detach(c, e);
		cache_entry_free(e);
		rc = 1;
	}
	pthread_mutex_unlock(&c->mu);
	if (rc == 1)
		cache_retire_locked(c, &vs, 0);
out:
	pthread_mutex_unlock(&c->idx_mu);
	cache_victims_report(c, &vs);
	return rc;
}
