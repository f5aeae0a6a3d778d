/*
 * index.c — the cache's journal: an append-only file of checksummed records replayed at
 * cache_new, rewritten from the live state when it has grown far past it.
 *
 * File: the 8-byte magic (SWFSCIX2; SWFSCIX1, the format before CIX_CHUNK_SET2, is
 * read and rewritten), then records [u8 type][u8 0][u16 payload length, LE]
 * [payload][u32 CRC-32C of everything before it, LE]. A record that is cut short, has an
 * unknown type, a wrong length or a bad CRC ends the journal: what follows is a torn
 * tail (a kill -9 mid-write) or damage, and is cut off.
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

static const uint8_t cix_magic[8] = { 'S', 'W', 'F', 'S', 'C', 'I', 'X', '2' };
static const uint8_t cix_magic_v1[8] = { 'S', 'W', 'F', 'S', 'C', 'I', 'X', '1' };

#define CIX_HDR           4
#define CIX_CRC           4
#define CIX_LEN_OBJ_ADD   (CACHE_KEY_LEN + 8 + 4 + 1)
#define CIX_LEN_OBJ_DEL   CACHE_KEY_LEN
#define CIX_LEN_OBJ_PIN   (CACHE_KEY_LEN + 1)
#define CIX_LEN_CHUNK_SET (CACHE_KEY_LEN + 4 + CACHE_SHA_LEN)
#define CIX_LEN_CHUNK_CLR (CACHE_KEY_LEN + 4)

/* Compact when the file exceeds this many times the live state (and CIX_COMPACT_MIN):
 * a 4x bound keeps the rewrite cost amortised to a few bytes per record appended. */
#define CIX_COMPACT_FACTOR 4
#define CIX_COMPACT_MIN    (1U << 20)

static const uint32_t crc32c_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8,
	0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3,
	0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070,
	0x25afd373, 0x36ff2087, 0xc494a384, 0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54,
	0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29,
	0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa, 0x30e349b1,
	0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
	0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696,
	0x6ef07595, 0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0,
	0x67dafa54, 0x95b17957, 0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c,
	0xfe53516f, 0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f, 0x3ac7f2eb,
	0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7, 0x61c69362, 0x93ad1061,
	0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789, 0xeb1fcbad,
	0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
	0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5,
	0xa55230e6, 0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67,
	0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043,
	0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c, 0x92a8fc17, 0x60c37f14, 0x73938ce0,
	0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db,
	0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6,
	0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81,
	0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5,
	0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19,
	0x0d3d3e1a, 0x1e6dcdee, 0xec064eed, 0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530,
	0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc,
	0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540, 0x590ab964,
	0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
	0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2,
	0x37faccf1, 0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9,
	0x4f48173d, 0xbd23943e, 0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a,
	0xc69f7b69, 0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffU;

	while (n--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffU;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int len_of_type(unsigned type)
{
	switch (type) {
	case CIX_OBJ_ADD: return CIX_LEN_OBJ_ADD;
	case CIX_OBJ_DEL: return CIX_LEN_OBJ_DEL;
	case CIX_OBJ_PIN: return CIX_LEN_OBJ_PIN;
	case CIX_CHUNK_SET:
	case CIX_CHUNK_SET2: return CIX_LEN_CHUNK_SET;
	case CIX_CHUNK_CLR: return CIX_LEN_CHUNK_CLR;
	default: return -1;
	}
}

/* Reserve a record of type in b; returns a pointer to its payload, or NULL. */
static uint8_t *rec_begin(struct cache_rec_buf *b, unsigned type)
{
	size_t len = (size_t)len_of_type(type);
	size_t need = b->n + CIX_HDR + len + CIX_CRC;

	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return NULL;
		b->p = p;
		b->cap = cap;
	}
	b->p[b->n] = (uint8_t)type;
	b->p[b->n + 1] = 0;
	put16(b->p + b->n + 2, (uint16_t)len);
	return b->p + b->n + CIX_HDR;
}

static void rec_end(struct cache_rec_buf *b)
{
	size_t len = get16(b->p + b->n + 2);

	put32(b->p + b->n + CIX_HDR + len, crc32c(b->p + b->n, CIX_HDR + len));
	b->n += CIX_HDR + len + CIX_CRC;
}

int cache_rec_obj_add(struct cache_rec_buf *b, const struct cache_obj *o)
{
	uint8_t *p = rec_begin(b, CIX_OBJ_ADD);

	if (!p)
		return -ENOMEM;
	memcpy(p, o->key, CACHE_KEY_LEN);
	put64(p + CACHE_KEY_LEN, o->length);
	put32(p + CACHE_KEY_LEN + 8, o->chunk_size);
	p[CACHE_KEY_LEN + 12] = o->pinned;
	rec_end(b);
	return 0;
}

int cache_rec_obj_del(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN])
{
	uint8_t *p = rec_begin(b, CIX_OBJ_DEL);

	if (!p)
		return -ENOMEM;
	memcpy(p, key, CACHE_KEY_LEN);
	rec_end(b);
	return 0;
}

int cache_rec_obj_pin(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN], bool pinned)
{
	uint8_t *p = rec_begin(b, CIX_OBJ_PIN);

	if (!p)
		return -ENOMEM;
	memcpy(p, key, CACHE_KEY_LEN);
	p[CACHE_KEY_LEN] = pinned;
	rec_end(b);
	return 0;
}

int cache_rec_chunk_set(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN], uint32_t idx,
                        const uint8_t sha[CACHE_SHA_LEN], bool legacy)
{
	uint8_t *p = rec_begin(b, legacy ? CIX_CHUNK_SET : CIX_CHUNK_SET2);

	if (!p)
		return -ENOMEM;
	memcpy(p, key, CACHE_KEY_LEN);
	put32(p + CACHE_KEY_LEN, idx);
	memcpy(p + CACHE_KEY_LEN + 4, sha, CACHE_SHA_LEN);
	rec_end(b);
	return 0;
}

int cache_rec_chunk_clr(struct cache_rec_buf *b, const uint8_t key[CACHE_KEY_LEN], uint32_t idx)
{
	uint8_t *p = rec_begin(b, CIX_CHUNK_CLR);

	if (!p)
		return -ENOMEM;
	memcpy(p, key, CACHE_KEY_LEN);
	put32(p + CACHE_KEY_LEN, idx);
	rec_end(b);
	return 0;
}

void cache_rec_buf_release(struct cache_rec_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			return -err;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Serialise the live state into b: every object, then the chunks of pinned objects,
 * then the evictable chunks from least to most recently used, so that a replay
 * rebuilds the LRU order. Chunks found corrupt are left out. mu held. */
static int snapshot_locked(struct cache *c, struct cache_rec_buf *b)
{
	int rc;

	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct cache_obj *o = c->buckets[i]; o; o = o->hnext)
			if ((rc = cache_rec_obj_add(b, o)) < 0)
				return rc;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct cache_obj *o = c->buckets[i]; o; o = o->hnext) {
			if (!o->pinned)
				continue;
			for (uint32_t k = 0; k < o->nchunks; k++) {
				struct cache_entry *e = o->ent[k];

				if (e && !(e->flags & CE_BAD) &&
				    (rc = cache_rec_chunk_set(b, o->key, k, e->sha,
				                              e->flags & CE_LEGACY)) < 0)
					return rc;
			}
		}
	for (struct cache_entry *e = c->lru.next; e != &c->lru; e = e->next)
		if (!(e->flags & CE_BAD) &&
		    (rc = cache_rec_chunk_set(b, e->obj->key, e->idx, e->sha,
		                              e->flags & CE_LEGACY)) < 0)
			return rc;
	return 0;
}

int cache_index_compact(struct cache *c)
{
	struct cache_rec_buf b = { 0 };
	char tmp[PATH_MAX], path[PATH_MAX];
	int rc, fd;

	b.p = malloc(sizeof cix_magic);
	if (!b.p)
		return -ENOMEM;
	memcpy(b.p, cix_magic, sizeof cix_magic);
	b.n = b.cap = sizeof cix_magic;
	pthread_mutex_lock(&c->mu);
	rc = snapshot_locked(c, &b);
	pthread_mutex_unlock(&c->mu);
	if (rc < 0)
		goto out;
	snprintf(tmp, sizeof tmp, "%s/index.tmp", c->dir);
	snprintf(path, sizeof path, "%s/index", c->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		C_ERR(c, "index: cannot create %s: %s", tmp, strerror(-rc));
		goto out;
	}
	/* The new file must be complete on disk before it replaces the old one. */
	rc = write_all(fd, b.p, b.n);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		C_ERR(c, "index: compaction failed: %s", strerror(-rc));
		close(fd);
		unlink(tmp);
		goto out;
	}
	fsync(c->dir_fd);
	C_DEBUG(c, "index: compacted from %llu to %zu bytes", (unsigned long long)c->idx_size, b.n);
	if (c->idx_fd >= 0)
		close(c->idx_fd);
	/* Appends go to the end; O_APPEND keeps that true even after a cut tail. */
	close(fd);
	c->idx_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (c->idx_fd < 0) {
		rc = -errno;
		C_ERR(c, "index: cannot reopen %s: %s", path, strerror(-rc));
		goto out;
	}
	c->idx_size = b.n;
out:
	cache_rec_buf_release(&b);
	return rc;
}

int cache_index_append(struct cache *c, const struct cache_rec_buf *b, bool sync)
{
	uint64_t live;
	int rc;

	if (!b->n)
		return 0;
	pthread_mutex_lock(&c->mu);
	live = sizeof cix_magic + c->nobjects * (CIX_HDR + CIX_LEN_OBJ_ADD + CIX_CRC) +
	       c->chunks * (CIX_HDR + CIX_LEN_CHUNK_SET + CIX_CRC);
	pthread_mutex_unlock(&c->mu);
	if (c->idx_size + b->n > CIX_COMPACT_MIN && c->idx_size + b->n > CIX_COMPACT_FACTOR * live)
		cache_index_compact(c); /* a failure is logged; appending still works */
	if (c->idx_fd < 0)
		return -EIO;
	rc = write_all(c->idx_fd, b->p, b->n);
	if (rc < 0) {
		/* A partial record is a torn tail: the next load cuts it. Cut it now so that
		 * later records do not land behind it. */
		C_ERR(c, "index: write failed: %s", strerror(-rc));
		if (ftruncate(c->idx_fd, (off_t)c->idx_size) < 0)
			C_ERR(c, "index: cannot cut a failed write: %s", strerror(errno));
		return rc;
	}
	c->idx_size += b->n;
	if (sync && fdatasync(c->idx_fd) < 0) {
		rc = -errno;
		C_ERR(c, "index: fdatasync failed: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- replay ---- */

static void replay_obj_add(struct cache *c, const uint8_t *p, bool *bad)
{
	struct cache_obj *o;
	uint64_t length = get64(p + CACHE_KEY_LEN);
	uint32_t chunk_size = get32(p + CACHE_KEY_LEN + 8);

	if (cache_obj_find(c, p)) {
		*bad = true;
		return;
	}
	if (cache_obj_alloc(p, length, chunk_size, &o) < 0) {
		*bad = true;
		return;
	}
	o->pinned = p[CACHE_KEY_LEN + 12] != 0;
	cache_obj_hash_insert(c, o);
}

static void replay_chunk_set(struct cache *c, const uint8_t *p, bool legacy, bool *bad)
{
	struct cache_obj *o = cache_obj_find(c, p);
	uint32_t idx = get32(p + CACHE_KEY_LEN);
	struct cache_entry *e;

	if (!o || idx >= o->nchunks) {
		*bad = true;
		return;
	}
	e = o->ent[idx];
	if (e) {
		memcpy(e->sha, p + CACHE_KEY_LEN + 4, CACHE_SHA_LEN);
		e->flags = (uint8_t)((e->flags & ~CE_LEGACY) | (legacy ? CE_LEGACY : 0));
		return;
	}
	e = calloc(1, sizeof *e);
	if (!e) {
		*bad = true; /* out of memory: the chunk is lost, not served wrong */
		return;
	}
	e->obj = o;
	e->idx = idx;
	e->flags = CE_UNCHECKED | (legacy ? CE_LEGACY : 0);
	memcpy(e->sha, p + CACHE_KEY_LEN + 4, CACHE_SHA_LEN);
	cache_entry_attach(c, e);
}

/* Apply one record to the state. Records that do not fit the state (a chunk of an
 * unknown object) are counted in *bad and skipped; deletions of what is already gone
 * are normal (compaction may snapshot a state that records after it repeat). */
static void replay(struct cache *c, unsigned type, const uint8_t *p, bool *bad)
{
	struct cache_obj *o;

	switch (type) {
	case CIX_OBJ_ADD: replay_obj_add(c, p, bad); break;
	case CIX_OBJ_DEL:
		if ((o = cache_obj_find(c, p))) {
			cache_obj_drop_chunks(c, o);
			cache_obj_hash_remove(c, o);
			cache_obj_free(o);
		}
		break;
	case CIX_OBJ_PIN:
		if ((o = cache_obj_find(c, p)))
			cache_obj_set_pinned(c, o, p[CACHE_KEY_LEN] != 0);
		else
			*bad = true;
		break;
	case CIX_CHUNK_SET: replay_chunk_set(c, p, true, bad); break;
	case CIX_CHUNK_SET2: replay_chunk_set(c, p, false, bad); break;
	case CIX_CHUNK_CLR:
		o = cache_obj_find(c, p);
		if (o && get32(p + CACHE_KEY_LEN) < o->nchunks &&
		    o->ent[get32(p + CACHE_KEY_LEN)]) {
			struct cache_entry *e = o->ent[get32(p + CACHE_KEY_LEN)];

			cache_entry_detach(c, e);
			cache_entry_free(e);
		}
		break;
	}
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			return -err;
		}
		if (r == 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int cache_index_load(struct cache *c)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	uint8_t *buf = NULL;
	struct stat st;
	size_t size, off, nbad = 0;
	int fd, rc;

	snprintf(path, sizeof path, "%s/index", c->dir);
	snprintf(tmp, sizeof tmp, "%s/index.tmp", c->dir);
	unlink(tmp); /* a compaction that died before its rename */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		C_ERR(c, "index: cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	size = (size_t)st.st_size;
	buf = malloc(size ? size : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = read_all(fd, buf, size)) < 0) {
		C_ERR(c, "index: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	if (size < sizeof cix_magic) {
		/* A new index, or one whose creation was cut short. Anything else this short
		 * is not ours: refuse rather than overwrite it. */
		if (memcmp(buf, cix_magic, size) != 0 && memcmp(buf, cix_magic_v1, size) != 0) {
			C_ERR(c, "index: %s is not a swarmfs cache index", path);
			rc = -EBADMSG;
			goto out;
		}
		if (ftruncate(fd, 0) < 0 ||
		    pwrite(fd, cix_magic, sizeof cix_magic, 0) != (ssize_t)sizeof cix_magic ||
		    fdatasync(fd) < 0) {
			rc = errno ? -errno : -EIO;
			goto out;
		}
		size = sizeof cix_magic;
		off = size;
		goto done;
	}
	c->idx_old = memcmp(buf, cix_magic_v1, sizeof cix_magic) == 0;
	if (memcmp(buf, cix_magic, sizeof cix_magic) != 0 && !c->idx_old) {
		C_ERR(c, "index: %s is not a swarmfs cache index", path);
		rc = -EBADMSG;
		goto out;
	}
	off = sizeof cix_magic;
	pthread_mutex_lock(&c->mu);
	while (off + CIX_HDR <= size) {
		unsigned type = buf[off];
		int len = len_of_type(type);
		bool bad = false;

		if (len < 0 || buf[off + 1] != 0 || get16(buf + off + 2) != len ||
		    off + CIX_HDR + (size_t)len + CIX_CRC > size ||
		    get32(buf + off + CIX_HDR + len) != crc32c(buf + off, CIX_HDR + (size_t)len))
			break;
		replay(c, type, buf + off + CIX_HDR, &bad);
		nbad += bad;
		off += CIX_HDR + (size_t)len + CIX_CRC;
	}
	pthread_mutex_unlock(&c->mu);
	if (nbad)
		C_WARN(c, "index: skipped %zu records that do not fit the state", nbad);
	if (off < size) {
		C_WARN(c, "index: cut %zu bytes of torn or corrupt tail at offset %zu", size - off,
		       off);
		if (ftruncate(fd, (off_t)off) < 0) {
			rc = -errno;
			C_ERR(c, "index: cannot cut the tail: %s", strerror(-rc));
			goto out;
		}
	}
done:
	close(fd);
	fd = -1;
	c->idx_size = off;
	c->idx_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (c->idx_fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
