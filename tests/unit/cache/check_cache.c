/* The cache on real files in temp directories: marks, reads, LRU eviction under a cap,
 * pins, persistence, crash consistency under kill -9, corruption on disk, a damaged
 * index, concurrent readers and writers, and argument checks. */
#include "cache.h"
#include "fixture.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024U
#define MIB (1024U * 1024U)
/* cache_priv.h's CACHE_BLOCK: what the cache checks as one piece */
#define CACHE_BLOCK_BYTES (16U * KIB)

/* ---- helpers ---- */

/* What on_evict reported, in call order. Callbacks may come from several threads. */
struct evlog {
	pthread_mutex_t mu;
	size_t calls;
	size_t n;     /* recorded in chunks[] */
	size_t total; /* reported, recorded or not */
	uint32_t chunks[4096];
	uint8_t key[CACHE_KEY_LEN];
};

static void evlog_init(struct evlog *ev)
{
	memset(ev, 0, sizeof *ev);
	pthread_mutex_init(&ev->mu, NULL);
}

static void on_evict(const uint8_t key[CACHE_KEY_LEN], const uint32_t *chunks, size_t n, void *ctx)
{
	struct evlog *ev = ctx;

	pthread_mutex_lock(&ev->mu);
	ev->calls++;
	ev->total += n;
	memcpy(ev->key, key, CACHE_KEY_LEN);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && chunks[i] <= chunks[i - 1])
			ev->calls = (size_t)-1000000; /* not ascending: fails calls checks */
		if (ev->n < sizeof ev->chunks / sizeof ev->chunks[0])
			ev->chunks[ev->n++] = chunks[i];
	}
	pthread_mutex_unlock(&ev->mu);
}

static bool evlog_has(struct evlog *ev, uint32_t chunk)
{
	bool found = false;

	pthread_mutex_lock(&ev->mu);
	for (size_t i = 0; i < ev->n; i++)
		found |= ev->chunks[i] == chunk;
	pthread_mutex_unlock(&ev->mu);
	return found;
}

/* Warnings and errors go to stderr, so a failing test shows why. */
static void log_sink(int level, const char *module, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= LOG_WARNING)
		fprintf(stderr, "%s: %s\n", module, msg);
}

static char *tmp;

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("cache", &tmp), 0);
}

static void teardown(void)
{
	fixture_tmpdir_remove(tmp);
	free(tmp);
	tmp = NULL;
}

static char *sub(const char *name)
{
	static char path[4][4096];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof path[0], "%s/%s", tmp, name);
	return p;
}

static struct cache *open_cache_in(const char *dir, uint64_t cap, unsigned low, struct evlog *ev)
{
	struct cache_config cfg = {
		.dir = dir,
		.cap = cap,
		.low_water_pct = low,
		.log = log_sink,
		.log_level = LOG_WARNING,
		.on_evict = ev ? on_evict : NULL,
		.evict_ctx = ev,
	};
	struct cache *c = NULL;
	int rc = cache_new(&cfg, &c);

	ck_assert_msg(rc == 0, "cache_new(%s): %s", dir, strerror(-rc));
	return c;
}

static struct cache *open_cache(uint64_t cap, unsigned low, struct evlog *ev)
{
	return open_cache_in(sub("c"), cap, low, ev);
}

static void key_make(uint8_t key[CACHE_KEY_LEN], unsigned n)
{
	memset(key, 0xa5, CACHE_KEY_LEN);
	key[0] = (uint8_t)n;
	key[31] = (uint8_t)(n >> 8);
}

/* Deterministic content of byte `off` of the object generation gen. */
static void fill(uint8_t *buf, uint64_t off, size_t len, uint32_t gen)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x =
		    (off + i) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)gen * 0xbf58476d1ce4e5b9ULL;

		x ^= x >> 29;
		buf[i] = (uint8_t)(x * 0x94d049bb133111ebULL >> 56);
	}
}

static void data_path(struct cache *c, const uint8_t key[CACHE_KEY_LEN], char *path)
{
	ck_assert_int_gt(cache_object_path(c, key, path, 4096), 0);
}

/* What libtorrent does: write the piece's bytes into the data file. */
static void write_chunk(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk_size,
                        uint64_t length, uint32_t idx, uint32_t gen)
{
	char path[4096];
	uint64_t off = (uint64_t)idx * chunk_size;
	size_t len = length - off < chunk_size ? (size_t)(length - off) : chunk_size;
	uint8_t *buf = malloc(len);
	int fd;

	data_path(c, key, path);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	fill(buf, off, len, gen);
	ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
	free(buf);
}

static void write_mark(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint32_t chunk_size,
                       uint64_t length, uint32_t idx, uint32_t gen)
{
	int rc;

	write_chunk(c, key, chunk_size, length, idx, gen);
	rc = cache_chunk_mark(c, key, idx);
	ck_assert_msg(rc == 0, "mark %u: %d", idx, rc);
}

/* Read [off, off + len) through the cache and compare with generation gen. */
static void expect_read(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t off, size_t len,
                        uint32_t gen)
{
	uint8_t *got = malloc(len), *want = malloc(len);
	ssize_t n = cache_read(c, key, off, got, len);

	ck_assert_msg(n == (ssize_t)len, "read %llu+%zu: %zd", (unsigned long long)off, len, n);
	fill(want, off, len, gen);
	ck_assert_msg(memcmp(got, want, len) == 0, "content differs at %llu",
	              (unsigned long long)off);
	free(got);
	free(want);
}

static uint64_t file_bytes(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* ---- cache_size_parse ---- */

START_TEST(size_parse_units)
{
	uint64_t v = 0;

	ck_assert_int_eq(cache_size_parse("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(cache_size_parse("512M", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(cache_size_parse("10G", &v), 0);
	ck_assert_uint_eq(v, 10ULL << 30);
	ck_assert_int_eq(cache_size_parse("10GiB", &v), 0);
	ck_assert_uint_eq(v, 10ULL << 30);
	ck_assert_int_eq(cache_size_parse("3k", &v), 0);
	ck_assert_uint_eq(v, 3072);
	ck_assert_int_eq(cache_size_parse("2T", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 40);
	ck_assert_uint_eq(CACHE_DEFAULT_SIZE, 10ULL << 30);
}
END_TEST

START_TEST(size_parse_rejects)
{
	uint64_t v = 77;

	/* what was tried: empty, sign, zero, unknown unit, junk after the unit, overflow */
	ck_assert_int_eq(cache_size_parse(NULL, &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("-5G", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse(" 5G", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("0", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("0G", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("5X", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("5Gb", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("5GiBs", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("5 G", &v), -EINVAL);
	ck_assert_int_eq(cache_size_parse("99999999999999999999", &v), -ERANGE);
	ck_assert_int_eq(cache_size_parse("17179869184G", &v), -ERANGE);
	ck_assert_uint_eq(v, 77); /* untouched on failure */
}
END_TEST

/* ---- basics ---- */

START_TEST(mark_then_read)
{
	const uint32_t cs = 16 * KIB;
	const uint64_t len = 5 * cs + 1000; /* short last chunk */
	struct cache_usage u;
	uint8_t key[CACHE_KEY_LEN], buf[64];
	char path[4096];
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 1);
	data_path(c, key, path);
	ck_assert_ptr_nonnull(strstr(path, "/c/data/01a5a5"));
	for (uint32_t i = 0; i < 6; i++)
		write_chunk(c, key, cs, len, i, 7);
	/* written but not verified: refused */
	ck_assert_int_eq(cache_read(c, key, 0, buf, sizeof buf), -ENODATA);
	ck_assert(!cache_chunk_present(c, key, 0));
	for (uint32_t i = 0; i < 6; i++)
		ck_assert_int_eq(cache_chunk_mark(c, key, i), 0);
	ck_assert_int_eq(cache_chunk_mark(c, key, 3), 1);
	ck_assert(cache_chunk_present(c, key, 5));
	expect_read(c, key, 0, 100, 7);
	expect_read(c, key, cs - 10, 20, 7);            /* across a chunk boundary */
	expect_read(c, key, 100, (size_t)len - 100, 7); /* every chunk at once */
	expect_read(c, key, len - 1000, 1000, 7);       /* the short last chunk */
	/* clamped at the end, zero past it */
	ck_assert_int_eq(cache_read(c, key, len - 10, buf, sizeof buf), 10);
	ck_assert_int_eq(cache_read(c, key, len, buf, sizeof buf), 0);
	ck_assert_int_eq(cache_read(c, key, len + 5000, buf, sizeof buf), 0);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.used, len);
	ck_assert_uint_eq(u.chunks, 6);
	ck_assert_uint_eq(u.objects, 1);
	ck_assert_uint_eq(u.published, 0);
	ck_assert_uint_eq(u.pinned, 0);
	ck_assert_uint_eq(u.misses, 1);
	ck_assert_uint_ge(u.hits, 5);
	cache_free(c);
}
END_TEST

START_TEST(missing_chunk_refused)
{
	const uint32_t cs = 8 * KIB;
	uint8_t key[CACHE_KEY_LEN], other[CACHE_KEY_LEN], buf[3 * 8 * KIB];
	struct cache_block b;
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 1);
	key_make(other, 2);
	ck_assert_int_eq(cache_object_add(c, key, 4 * cs, cs), 0);
	write_mark(c, key, cs, 4 * cs, 0, 1);
	write_mark(c, key, cs, 4 * cs, 2, 1);
	expect_read(c, key, 0, cs, 1);
	/* any missing chunk in the range refuses the whole range, pinning nothing */
	ck_assert_int_eq(cache_read(c, key, 0, buf, sizeof buf), -ENODATA);
	ck_assert_int_eq(cache_read(c, key, cs + 5, buf, 10), -ENODATA);
	ck_assert_int_eq(cache_block_pin(c, key, cs / 2, 2 * cs, &b), -ENODATA);
	ck_assert_int_eq(cache_read(c, other, 0, buf, 10), -ENOENT);
	ck_assert_int_eq(cache_block_pin(c, other, 0, 10, &b), -ENOENT);
	/* a block of a present range: fd and offset for a splice */
	ck_assert_int_eq(cache_block_pin(c, key, 2 * cs + 100, cs, &b), -ENODATA);
	ck_assert_int_eq(cache_block_pin(c, key, 2 * cs + 100, cs - 100, &b), 0);
	ck_assert_uint_eq(b.len, cs - 100);
	ck_assert_uint_eq(b.offset, 2 * cs + 100);
	{
		uint8_t want[8 * KIB];

		ck_assert_int_eq(pread(b.fd, buf, b.len, (off_t)b.offset), (ssize_t)b.len);
		fill(want, b.offset, b.len, 1);
		ck_assert_mem_eq(buf, want, b.len);
	}
	cache_block_unpin(c, &b);
	ck_assert_int_eq(b.fd, -1);
	cache_free(c);
}
END_TEST

START_TEST(bad_arguments)
{
	const uint32_t cs = 16 * KIB;
	struct cache_config cfg = { .dir = sub("c") };
	struct cache_object_info info;
	struct cache_block b;
	uint8_t key[CACHE_KEY_LEN], bits[1], buf[16];
	char path[16];
	struct cache *c = NULL, *c2 = NULL;

	/* what was tried: no config, no dir, an empty dir, a low-water mark over 100 */
	ck_assert_int_eq(cache_new(NULL, &c), -EINVAL);
	ck_assert_int_eq(cache_new(&cfg, NULL), -EINVAL);
	cfg.dir = NULL;
	ck_assert_int_eq(cache_new(&cfg, &c), -EINVAL);
	cfg.dir = "";
	ck_assert_int_eq(cache_new(&cfg, &c), -EINVAL);
	cfg.dir = sub("c");
	cfg.low_water_pct = 101;
	ck_assert_int_eq(cache_new(&cfg, &c), -EINVAL);
	ck_assert_ptr_null(c);
	cache_free(NULL);

	c = open_cache(0, 0, NULL);
	/* a second cache on the same directory, even in this process */
	cfg.low_water_pct = 0;
	ck_assert_int_eq(cache_new(&cfg, &c2), -EBUSY);
	ck_assert_ptr_null(c2);

	key_make(key, 1);
	/* geometry: empty object, chunk sizes out of bounds, too many chunks */
	ck_assert_int_eq(cache_object_add(c, key, 0, cs), -EINVAL);
	ck_assert_int_eq(cache_object_add(c, key, 100, CACHE_CHUNK_MIN - 1), -EINVAL);
	ck_assert_int_eq(cache_object_add(c, key, 100, CACHE_CHUNK_MAX + 1), -EINVAL);
	ck_assert_int_eq(
	    cache_object_add(c, key, (uint64_t)CACHE_CHUNK_MIN * UINT32_MAX, CACHE_CHUNK_MIN),
	    -EINVAL);
	ck_assert_int_eq(cache_object_add(c, NULL, 100, cs), -EINVAL);
	ck_assert_int_eq(cache_object_add(c, key, 3 * cs, cs), 0);
	ck_assert_int_eq(cache_object_add(c, key, 4 * cs, cs), -EEXIST);
	ck_assert_int_eq(cache_object_add(c, key, 3 * cs, 2 * cs), -EEXIST);

	ck_assert_int_eq(cache_object_path(c, key, path, sizeof path), -ERANGE);
	ck_assert_int_eq(cache_chunk_mark(c, key, 3), -EINVAL);
	ck_assert_int_eq(cache_chunk_mark(c, key, UINT32_MAX), -EINVAL);
	ck_assert_int_eq(cache_read(c, key, 0, buf, 0), -EINVAL);
	ck_assert_int_eq(cache_read(c, key, 0, NULL, 10), -EINVAL);
	ck_assert_int_eq(cache_block_pin(c, key, 0, 0, &b), -EINVAL);
	ck_assert_int_eq(cache_object_bitmap(c, key, bits, 0), -ERANGE);
	ck_assert_int_eq(cache_object_bitmap(c, key, bits, 1), 0);
	ck_assert_int_eq(cache_object_stat(c, key, NULL), -EINVAL);

	key_make(key, 2);
	ck_assert_int_eq(cache_chunk_mark(c, key, 0), -ENOENT);
	ck_assert_int_eq(cache_object_path(c, key, path, sizeof path), -ENOENT);
	ck_assert_int_eq(cache_object_stat(c, key, &info), -ENOENT);
	ck_assert_int_eq(cache_object_bitmap(c, key, bits, 1), -ENOENT);
	ck_assert_int_eq(cache_object_pin(c, key), -ENOENT);
	ck_assert_int_eq(cache_object_unpin(c, key), -ENOENT);
	ck_assert_int_eq(cache_object_remove(c, key), -ENOENT);
	ck_assert(!cache_chunk_present(c, key, 0));
	/* adopting a directory, a missing file, an empty file */
	ck_assert_int_eq(cache_object_adopt(c, key, tmp, cs), -EINVAL);
	ck_assert_int_eq(cache_object_adopt(c, key, sub("nope"), cs), -ENOENT);
	ck_assert_int_eq(fixture_file_random(sub("empty"), 0, 1), 0);
	ck_assert_int_eq(cache_object_adopt(c, key, sub("empty"), cs), -EINVAL);
	ck_assert_int_eq(fixture_file_random(sub("f"), 1000, 1), 0);
	ck_assert_int_eq(cache_object_adopt(c, key, sub("f"), 100), -EINVAL);
	ck_assert_int_eq(access(sub("f"), F_OK), 0); /* left in place */
	cache_free(c);
}
END_TEST

#ifndef NDEBUG
/* Debug builds catch an unpin without its pin (STYLE.md: pins are balanced). */
START_TEST(unpin_twice_asserts)
{
	const uint32_t cs = 4 * KIB;
	uint8_t key[CACHE_KEY_LEN];
	struct cache_block b;
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, cs, cs), 0);
	write_mark(c, key, cs, cs, 0, 1);
	ck_assert_int_eq(cache_block_pin(c, key, 0, 10, &b), 0);
	cache_block_unpin(c, &b);
	cache_block_unpin(c, &b); /* aborts */
}
END_TEST
#endif

START_TEST(two_caches_coexist)
{
	const uint32_t cs = 4 * KIB;
	uint8_t key[CACHE_KEY_LEN];
	struct evlog ev1, ev2;
	struct cache *a, *b;

	evlog_init(&ev1);
	evlog_init(&ev2);
	a = open_cache_in(sub("a"), 2 * cs, 50, &ev1);
	b = open_cache_in(sub("b"), 8 * cs, 50, &ev2);
	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(a, key, 4 * cs, cs), 0);
	ck_assert_int_eq(cache_object_add(b, key, 4 * cs, cs), 0);
	for (uint32_t i = 0; i < 4; i++) {
		write_mark(a, key, cs, 4 * cs, i, 1);
		write_mark(b, key, cs, 4 * cs, i, 2);
	}
	ck_assert_uint_gt(ev1.n, 0);
	ck_assert_uint_eq(ev2.n, 0);
	expect_read(b, key, 0, 4 * cs, 2);
	expect_read(a, key, 3 * cs, cs, 1);
	cache_free(a);
	cache_free(b);
}
END_TEST

/* ---- eviction ---- */

START_TEST(lru_touch_protects)
{
	const uint32_t cs = 4 * KIB;
	const uint64_t len = 16 * cs;
	uint8_t key[CACHE_KEY_LEN], buf[16];
	struct evlog ev;
	struct cache *c;

	evlog_init(&ev);
	/* low water 100%: each batch evicts just enough, so the order is visible */
	c = open_cache(4 * cs, 100, &ev);
	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 4; i++)
		write_mark(c, key, cs, len, i, 1);
	ck_assert_uint_eq(ev.n, 0);
	ck_assert_int_eq(cache_read(c, key, 0, buf, sizeof buf), sizeof buf); /* touch 0 */
	write_mark(c, key, cs, len, 4, 1);
	ck_assert_uint_eq(ev.n, 1);
	ck_assert_uint_eq(ev.chunks[0], 1); /* 1 was the least recently used, not 0 */
	ck_assert_mem_eq(ev.key, key, CACHE_KEY_LEN);
	ck_assert(!cache_chunk_present(c, key, 1));
	ck_assert(cache_chunk_present(c, key, 0));
	ck_assert_int_eq(cache_read(c, key, cs, buf, sizeof buf), -ENODATA);
	write_mark(c, key, cs, len, 5, 1);
	ck_assert_uint_eq(ev.chunks[1], 2);
	ck_assert_int_eq(cache_read(c, key, 3 * cs, buf, sizeof buf), sizeof buf); /* touch 3 */
	write_mark(c, key, cs, len, 6, 1);
	ck_assert_uint_eq(ev.chunks[2], 0);
	write_mark(c, key, cs, len, 7, 1);
	ck_assert_uint_eq(ev.chunks[3], 4);
	expect_read(c, key, 3 * cs, cs, 1);
	expect_read(c, key, 5 * cs, 3 * cs, 1);
	cache_free(c);
}
END_TEST

START_TEST(cap_holds_while_streaming)
{
	/* a 4 MiB object streamed through a 1 MiB cache, as a reader would pull it */
	const uint32_t cs = 64 * KIB;
	const uint64_t cap = 1 * MIB, len = 4 * cap + 12345;
	struct cache_usage u;
	uint8_t key[CACHE_KEY_LEN];
	char path[4096];
	struct evlog ev;
	struct cache *c;
	uint32_t n = (uint32_t)((len + cs - 1) / cs);

	evlog_init(&ev);
	c = open_cache(cap, 75, &ev);
	key_make(key, 9);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	data_path(c, key, path);
	for (uint32_t i = 0; i < n; i++) {
		write_mark(c, key, cs, len, i, 3);
		expect_read(c, key, (uint64_t)i * cs,
		            (size_t)(i + 1 == n ? len - (uint64_t)i * cs : cs), 3);
		cache_usage_get(c, &u);
		ck_assert_uint_le(u.used, cap);
		/* holes really punched: the file holds about what is cached */
		ck_assert_uint_le(file_bytes(path), cap + 64 * KIB);
	}
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.evictions, ev.total);
	ck_assert_uint_eq(u.chunks + u.evictions, n);
	/* batches: far fewer callbacks than evicted chunks */
	ck_assert_uint_lt(ev.calls, ev.n);
	ck_assert_uint_ge(u.used, cap * 75 / 100 - cs);
	cache_free(c);
}
END_TEST

START_TEST(evict_punches_holes)
{
	const uint32_t cs = 64 * KIB;
	const uint64_t len = 32 * cs;
	uint8_t key[CACHE_KEY_LEN], buf[16];
	char path[4096];
	uint64_t before, after;
	struct evlog ev;
	struct cache *c;

	evlog_init(&ev);
	c = open_cache(len, 50, &ev);
	key_make(key, 3);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 32; i++)
		write_mark(c, key, cs, len, i, 4);
	data_path(c, key, path);
	before = file_bytes(path);
	ck_assert_uint_ge(before, len);
	/* touch the upper half so the lower half is the least recently used */
	for (uint32_t i = 16; i < 32; i++)
		ck_assert_int_eq(cache_read(c, key, (uint64_t)i * cs, buf, 1), 1);
	ck_assert_int_eq(cache_cap_set(c, 16 * cs), 0);
	/* down to 50% of the new cap: the 24 least recently used chunks, in one call */
	ck_assert_uint_eq(ev.calls, 1);
	ck_assert_uint_eq(ev.n, 24);
	for (uint32_t i = 0; i < 16; i++)
		ck_assert(evlog_has(&ev, i));
	for (uint32_t i = 16; i < 24; i++)
		ck_assert(evlog_has(&ev, i));
	after = file_bytes(path);
	ck_assert_msg(after <= before - 24 * cs, "st_blocks: %llu -> %llu",
	              (unsigned long long)before, (unsigned long long)after);
	ck_assert_int_eq(cache_read(c, key, 0, buf, 1), -ENODATA);
	expect_read(c, key, 24 * cs, 8 * cs, 4);
	/* re-fetched after eviction: served again */
	write_mark(c, key, cs, len, 0, 4);
	expect_read(c, key, 0, cs, 4);
	ck_assert_int_eq(cache_trim(c), 0);
	cache_free(c);
}
END_TEST

START_TEST(pins_and_published_never_evicted)
{
	const uint32_t cs = 16 * KIB;
	const uint64_t len = 64 * cs, pub_len = 40 * cs + 77;
	struct cache_object_info info;
	struct cache_usage u;
	struct cache_block b;
	uint8_t key[CACHE_KEY_LEN], pub[CACHE_KEY_LEN], bits[8];
	char path[4096];
	struct evlog ev;
	struct cache *c;

	evlog_init(&ev);
	c = open_cache(8 * cs, 50, &ev);
	key_make(key, 1);
	key_make(pub, 2);
	/* a published file, larger than the whole cap */
	ck_assert_int_eq(fixture_file_random(sub("staging"), pub_len, 5), 0);
	{
		char want[65], got[65];

		ck_assert_int_eq(fixture_file_sha256(sub("staging"), want), 0);
		ck_assert_int_eq(cache_object_adopt(c, pub, sub("staging"), cs), 0);
		ck_assert_int_eq(access(sub("staging"), F_OK), -1);
		data_path(c, pub, path);
		ck_assert_int_eq(fixture_file_sha256(path, got), 0);
		ck_assert_str_eq(got, want);
	}
	ck_assert_int_eq(cache_object_stat(c, pub, &info), 0);
	ck_assert(info.pinned);
	ck_assert_uint_eq(info.present, 41);
	ck_assert_uint_eq(info.bytes_present, pub_len);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.published, pub_len);
	ck_assert_uint_eq(u.used, 0);

	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	write_mark(c, key, cs, len, 0, 1);
	ck_assert_int_eq(cache_block_pin(c, key, 100, 10, &b), 0);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.pinned, cs);
	ck_assert_int_eq(cache_object_remove(c, key), -EBUSY);
	for (uint32_t i = 1; i < 64; i++)
		write_mark(c, key, cs, len, i, 1);
	/* the pinned chunk outlived 63 marks through an 8-chunk cap */
	ck_assert(cache_chunk_present(c, key, 0));
	ck_assert(!evlog_has(&ev, 0));
	cache_block_unpin(c, &b);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.pinned, 0);
	ck_assert_uint_le(u.used, 8 * cs);
	ck_assert_uint_eq(u.published, pub_len);
	ck_assert_uint_eq(u.objects, 2);
	/* every published chunk is still there and reads back */
	ck_assert_int_eq(cache_object_bitmap(c, pub, bits, sizeof bits), 41);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(bits[i], 0xff);
	ck_assert_uint_eq(bits[5], 0x01);
	{
		uint8_t *got = malloc(pub_len);
		char p2[4096];
		int fd;

		data_path(c, pub, p2);
		fd = open(p2, O_RDONLY);
		ck_assert_int_eq(cache_read(c, pub, 0, got, pub_len), (ssize_t)pub_len);
		uint8_t *want = malloc(pub_len);
		ck_assert_int_eq(pread(fd, want, pub_len, 0), (ssize_t)pub_len);
		ck_assert_mem_eq(got, want, pub_len);
		close(fd);
		free(got);
		free(want);
	}
	/* unpinned, the published bytes count against the cap and are evicted */
	ck_assert_int_eq(cache_object_unpin(c, pub), 0);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.published, 0);
	ck_assert_uint_le(u.used, 8 * cs);
	ck_assert_int_eq(cache_object_pin(c, key), 0);
	cache_usage_get(c, &u);
	ck_assert_uint_le(u.used, 8 * cs);
	ck_assert_int_eq(cache_object_remove(c, key), 0);
	ck_assert_int_eq(cache_object_remove(c, pub), 0);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.objects, 0);
	ck_assert_uint_eq(u.chunks, 0);
	ck_assert_uint_eq(u.used + u.published, 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	cache_free(c);
}
END_TEST

START_TEST(adopt_replaces_or_refuses)
{
	const uint32_t cs = 16 * KIB;
	struct cache_object_info info;
	struct cache_block b;
	uint8_t key[CACHE_KEY_LEN];
	char shm[64], path[4096];
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, 4 * cs, cs), 0);
	write_mark(c, key, cs, 4 * cs, 1, 1);
	/* a reader holds a block: refused, the file stays where it is */
	ck_assert_int_eq(fixture_file_random(sub("pub"), 3 * cs + 5, 4), 0);
	ck_assert_int_eq(cache_block_pin(c, key, cs, 10, &b), 0);
	ck_assert_int_eq(cache_object_adopt(c, key, sub("pub"), cs), -EBUSY);
	ck_assert_int_eq(access(sub("pub"), F_OK), 0);
	cache_block_unpin(c, &b);
	/* another filesystem: refused before anything changes */
	snprintf(shm, sizeof shm, "/dev/shm/swarmfs-test-cache-%d", (int)getpid());
	ck_assert_int_eq(fixture_file_random(shm, 1000, 1), 0);
	ck_assert_int_eq(cache_object_adopt(c, key, shm, cs), -EXDEV);
	ck_assert_int_eq(unlink(shm), 0);
	ck_assert(cache_chunk_present(c, key, 1));
	/* otherwise the adopted file replaces the partial download */
	ck_assert_int_eq(cache_object_adopt(c, key, sub("pub"), cs), 0);
	ck_assert_int_eq(cache_object_stat(c, key, &info), 0);
	ck_assert_uint_eq(info.length, 3 * cs + 5);
	ck_assert_uint_eq(info.present, 4);
	ck_assert(info.pinned);
	data_path(c, key, path);
	{
		char want[65], got[65];

		ck_assert_int_eq(fixture_file_sha256(path, want), 0);
		cache_free(c);
		c = open_cache(0, 0, NULL);
		ck_assert_int_eq(fixture_file_sha256(path, got), 0);
		ck_assert_str_eq(got, want);
	}
	ck_assert_int_eq(cache_object_stat(c, key, &info), 0);
	ck_assert_uint_eq(info.present, 4);
	ck_assert(info.pinned);
	cache_free(c);
}
END_TEST

START_TEST(data_file_deleted_while_closed)
{
	const uint32_t cs = 16 * KIB;
	uint8_t key[CACHE_KEY_LEN], buf[16];
	char path[4096];
	struct cache_usage u;
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, 4 * cs, cs), 0);
	for (uint32_t i = 0; i < 4; i++)
		write_mark(c, key, cs, 4 * cs, i, 1);
	data_path(c, key, path);
	cache_free(c);
	ck_assert_int_eq(unlink(path), 0);
	c = open_cache(0, 0, NULL);
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_int_eq(cache_read(c, key, (uint64_t)i * cs, buf, sizeof buf), -ENODATA);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.corrupt, 4);
	ck_assert_uint_eq(u.chunks, 0);
	write_mark(c, key, cs, 4 * cs, 2, 1);
	expect_read(c, key, 2 * cs, cs, 1);
	cache_free(c);
}
END_TEST

/* Open file descriptors of this process. */
static int fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* What was tried: 40 objects marked and read through a cache that may keep 8 data files
 * open (a mount holding 100k files once kept 100k open and ran out at the open-file
 * limit); then 20 blocks pinned at once, past the cap, each read through its own fd
 * while the others come and go (an fd closed under a pinned block and reused for
 * another file would serve that file's bytes). */
START_TEST(open_files_capped)
{
	const uint32_t cs = 16 * KIB, nobj = 40, npin = 20;
	struct cache_config cfg = {
		.dir = sub("c"), .log = log_sink, .log_level = LOG_WARNING, .max_open = 8
	};
	struct cache_block b[20];
	struct cache *c = NULL;
	uint8_t key[CACHE_KEY_LEN];
	int base = fds_open();

	ck_assert_int_eq(cache_new(&cfg, &c), 0);
	for (uint32_t k = 0; k < nobj; k++) {
		key_make(key, k + 1);
		ck_assert_int_eq(cache_object_add(c, key, 2 * cs, cs), 0);
		write_mark(c, key, cs, 2 * cs, 0, k);
		write_mark(c, key, cs, 2 * cs, 1, k);
		expect_read(c, key, 0, 2 * cs, k);
	}
	/* the cache's directory and index, and at most 8 data files */
	ck_assert_int_le(fds_open(), base + 2 + 8);
	for (uint32_t k = 0; k < npin; k++) {
		key_make(key, k + 1);
		ck_assert_int_eq(cache_block_pin(c, key, cs, cs, &b[k]), 0);
	}
	for (uint32_t k = npin; k < nobj; k++) { /* others come and go meanwhile */
		key_make(key, k + 1);
		expect_read(c, key, cs, cs, k);
	}
	for (uint32_t k = 0; k < npin; k++) {
		uint8_t got[64], want[64];

		ck_assert_int_eq(pread(b[k].fd, got, sizeof got, (off_t)b[k].offset),
		                 (ssize_t)sizeof got);
		fill(want, cs, sizeof want, k);
		ck_assert_msg(!memcmp(got, want, sizeof got), "pinned block %u reads another file",
		              k);
		cache_block_unpin(c, &b[k]);
	}
	key_make(key, nobj);
	expect_read(c, key, 0, cs, nobj - 1); /* a use after the unpins trims again */
	ck_assert_int_le(fds_open(), base + 2 + 8);
	cache_free(c);
	ck_assert_int_eq(fds_open(), base);
}
END_TEST

/* ---- persistence ---- */

START_TEST(persists_across_reopen)
{
	const uint32_t cs = 16 * KIB;
	const uint64_t len = 20 * cs;
	struct cache_object_info info;
	struct cache_usage u;
	uint8_t key[CACHE_KEY_LEN], pub[CACHE_KEY_LEN], gone[CACHE_KEY_LEN], bits[3], zero[64];
	char path[4096], gone_path[4096];
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 1);
	key_make(pub, 2);
	key_make(gone, 3);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 20; i += 2)
		write_mark(c, key, cs, len, i, 6);
	/* written but never marked: not kept across the restart */
	write_chunk(c, key, cs, len, 5, 6);
	ck_assert_int_eq(fixture_file_random(sub("pubfile"), 3 * cs, 9), 0);
	ck_assert_int_eq(cache_object_adopt(c, pub, sub("pubfile"), cs), 0);
	ck_assert_int_eq(cache_object_add(c, gone, cs, cs), 0);
	data_path(c, gone, gone_path);
	ck_assert_int_eq(cache_object_remove(c, gone), 0);
	data_path(c, key, path);
	cache_free(c);

	/* a data file of no object (as after a crash between record and unlink) */
	ck_assert_int_eq(fixture_file_random(gone_path, 1000, 1), 0);

	c = open_cache(0, 0, NULL);
	ck_assert_int_eq(cache_object_bitmap(c, key, bits, sizeof bits), 10);
	ck_assert_uint_eq(bits[0], 0x55);
	ck_assert_uint_eq(bits[1], 0x55);
	ck_assert_uint_eq(bits[2], 0x05);
	for (uint32_t i = 0; i < 20; i += 2)
		expect_read(c, key, (uint64_t)i * cs, cs, 6);
	ck_assert_int_eq(cache_read(c, key, 5 * cs, zero, 1), -ENODATA);
	{
		/* the unmarked chunk's bytes were punched out at open */
		uint8_t got[64];
		int fd = open(path, O_RDONLY);

		memset(zero, 0, sizeof zero);
		ck_assert_int_eq(pread(fd, got, sizeof got, 5 * cs), (ssize_t)sizeof got);
		ck_assert_mem_eq(got, zero, sizeof got);
		close(fd);
	}
	ck_assert_int_eq(access(gone_path, F_OK), -1);
	ck_assert_int_eq(cache_object_stat(c, pub, &info), 0);
	ck_assert(info.pinned);
	ck_assert_uint_eq(info.present, 3);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.objects, 2);
	ck_assert_uint_eq(u.used, 10 * cs);
	ck_assert_uint_eq(u.published, 3 * cs);
	ck_assert_uint_eq(u.corrupt, 0);
	cache_free(c);
}
END_TEST

/* Chunk content that says what it is: a header (chunk index, generation) and a body
 * derived from both, so a torn or mixed chunk is recognisable. */
static void crash_fill(uint8_t *buf, size_t len, uint32_t idx, uint32_t gen)
{
	fill(buf, (uint64_t)idx << 20, len, gen);
	memcpy(buf, &idx, 4);
	memcpy(buf + 4, &gen, 4);
}

/* What a crash child shares with the test: marks it finished, and in a mid-write
 * round the chunk it stopped half-way through. */
struct crash_share {
	uint32_t marked;   /* cache_chunk_mark calls returned (atomic) */
	int32_t mid_chunk; /* -1, or the chunk whose first half alone is written */
	uint32_t mid_gen;
};

/* Write and mark chunks as libtorrent and fs/ would. With stop_mid, after `after`
 * marks it writes half of the next chunk and waits there for its SIGKILL; otherwise it
 * goes on until killed. */
static void crash_child(const char *dir, uint32_t cs, uint32_t n, uint32_t round,
                        struct crash_share *sh, uint32_t after, bool stop_mid)
{
	struct cache_config cfg = { .dir = dir, .cap = (uint64_t)cs * n / 2, .low_water_pct = 80 };
	uint8_t key[CACHE_KEY_LEN], *buf = malloc(cs);
	char path[4096];
	struct cache *c;
	uint32_t seed = round * 7919 + 1;
	int fd;

	if (cache_new(&cfg, &c) < 0)
		_exit(3);
	key_make(key, 1);
	if (cache_object_add(c, key, (uint64_t)cs * n, cs) < 0 ||
	    cache_object_path(c, key, path, sizeof path) < 0)
		_exit(4);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		_exit(5);
	for (uint32_t gen = round << 16;; gen++) {
		uint32_t idx;

		seed = seed * 1103515245 + 12345;
		idx = (seed >> 8) % n;
		if (cache_chunk_present(c, key, idx))
			continue; /* libtorrent never rewrites a piece it has */
		crash_fill(buf, cs, idx, gen);
		/* in two halves, so that a kill can land between them */
		if (pwrite(fd, buf, cs / 2, (off_t)idx * cs) != (ssize_t)(cs / 2))
			_exit(6);
		if (stop_mid && __atomic_load_n(&sh->marked, __ATOMIC_SEQ_CST) >= after) {
			sh->mid_gen = gen;
			__atomic_store_n(&sh->mid_chunk, (int32_t)idx, __ATOMIC_SEQ_CST);
			for (;;)
				pause();
		}
		if (pwrite(fd, buf + cs / 2, cs / 2, (off_t)idx * cs + cs / 2) != (ssize_t)(cs / 2))
			_exit(6);
		if (cache_chunk_mark(c, key, idx) < 0)
			_exit(7);
		__atomic_add_fetch(&sh->marked, 1, __ATOMIC_SEQ_CST);
	}
}

/* What was tried: SIGKILL of a process marking chunks, in eight rounds on one cache.
 * Odd rounds kill it half-way through writing a chunk (it waits there), even rounds
 * at whatever it is doing once it has made that round's marks. Each round: progress
 * was made (marks returned), every chunk marked present reads back whole, and a chunk
 * killed mid-write is not present. */
START_TEST(crash_consistent_under_kill9)
{
	const uint32_t cs = 16 * KIB, n = 64;
	uint8_t key[CACHE_KEY_LEN], bits[8], *got = malloc(cs), *want = malloc(cs);
	struct crash_share *sh =
	    mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(sh, MAP_FAILED);
	key_make(key, 1);
	for (uint32_t round = 1; round <= 8; round++) {
		const uint32_t after = 2 + round * 3;
		const bool mid = round % 2 == 1;
		struct cache_usage u;
		struct cache *c;
		int status, present;
		pid_t pid;

		*sh = (struct crash_share){ .marked = 0, .mid_chunk = -1 };
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			crash_child(sub("c"), cs, n, round, sh, after, mid);
		if (mid)
			FIXTURE_WAIT(__atomic_load_n(&sh->mid_chunk, __ATOMIC_SEQ_CST) >= 0, 20000,
			             "round %u: the child never got half-way through a chunk",
			             round);
		else
			FIXTURE_WAIT(__atomic_load_n(&sh->marked, __ATOMIC_SEQ_CST) >= after, 20000,
			             "round %u: the child made %u of %u marks", round, sh->marked,
			             after);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status), "child ended by itself: status %d", status);
		ck_assert_uint_ge(sh->marked, after); /* progress, every round */
		if (mid) {
			/* the kill truly landed mid-write: the first half of the new content
			 * is on disk (read before the cache opens and punches it out) */
			char path[4200], hex[2 * CACHE_KEY_LEN + 1];
			uint32_t gen;
			int fd;

			for (int b = 0; b < CACHE_KEY_LEN; b++)
				snprintf(hex + 2 * b, 3, "%02x", key[b]);
			snprintf(path, sizeof path, "%s/data/%s", sub("c"), hex);
			fd = open(path, O_RDONLY);
			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(pread(fd, got, 8, (off_t)sh->mid_chunk * cs), 8);
			close(fd);
			memcpy(&gen, got + 4, 4);
			ck_assert_uint_eq(gen, sh->mid_gen);
		}

		c = open_cache(0, 0, NULL);
		present = cache_object_bitmap(c, key, bits, sizeof bits);
		ck_assert_msg(present > 0, "round %u: %u marks, none present after the kill", round,
		              sh->marked);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx, gen;

			if (!(bits[i / 8] & (1U << (i % 8))))
				continue;
			ck_assert_msg(cache_read(c, key, (uint64_t)i * cs, got, cs) == (ssize_t)cs,
			              "round %u: chunk %u marked but unreadable", round, i);
			memcpy(&idx, got, 4);
			memcpy(&gen, got + 4, 4);
			crash_fill(want, cs, i, gen);
			ck_assert_msg(idx == i && memcmp(got, want, cs) == 0,
			              "round %u: chunk %u marked but torn", round, i);
		}
		/* and the chunk killed mid-write is not marked */
		if (mid)
			ck_assert(!(bits[sh->mid_chunk / 8] & (1U << (sh->mid_chunk % 8))));
		cache_usage_get(c, &u);
		ck_assert_uint_eq(u.corrupt, 0);
		cache_free(c);
	}
	munmap(sh, sizeof *sh);
	free(got);
	free(want);
}
END_TEST

START_TEST(flipped_byte_never_served)
{
	const uint32_t cs = 16 * KIB;
	const uint64_t len = 8 * cs;
	struct cache_usage u;
	uint8_t key[CACHE_KEY_LEN], buf[64], bits[1];
	char path[4096];
	struct evlog ev;
	struct cache *c;
	int fd;

	evlog_init(&ev);
	c = open_cache(0, 0, &ev);
	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 8; i++)
		write_mark(c, key, cs, len, i, 2);
	data_path(c, key, path);
	cache_free(c);

	/* one byte of chunk 2, while the cache is closed */
	fd = open(path, O_RDWR);
	ck_assert_int_eq(pread(fd, buf, 1, 2 * cs + 1234), 1);
	buf[0] ^= 0x40;
	ck_assert_int_eq(pwrite(fd, buf, 1, 2 * cs + 1234), 1);
	close(fd);

	c = open_cache(0, 0, &ev);
	ck_assert_int_eq(cache_object_bitmap(c, key, bits, 1), 8); /* not re-hashed at open */
	expect_read(c, key, 0, 2 * cs, 2);
	ck_assert_int_eq(cache_read(c, key, 2 * cs + 5000, buf, 10), -ENODATA);
	ck_assert_int_eq(cache_read(c, key, 2 * cs, buf, 10), -ENODATA); /* stays dropped */
	ck_assert(!cache_chunk_present(c, key, 2));
	ck_assert_int_eq(cache_object_bitmap(c, key, bits, 1), 7);
	ck_assert_uint_eq(bits[0], 0xfb);
	ck_assert(evlog_has(&ev, 2));
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.corrupt, 1);
	expect_read(c, key, 3 * cs, 5 * cs, 2);
	/* fetched again from the swarm: served again */
	write_mark(c, key, cs, len, 2, 2);
	expect_read(c, key, 0, len, 2);
	cache_free(c);

	/* and the drop was recorded: no second warning, everything good after reopen */
	c = open_cache(0, 0, &ev);
	expect_read(c, key, 0, len, 2);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.corrupt, 0);
	cache_free(c);
}
END_TEST

/* Flip one byte of the data file at off, behind the cache's back (it stays open). */
static void flip_byte(const char *path, uint64_t off)
{
	uint8_t b;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* What libtorrent does to upload: read bytes of the data file itself. */
static void pread_file(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* What was tried: bytes changed on disk while the cache is open, after every chunk was
 * marked and read (checked, its digests in memory): a reader, an unaligned reader and
 * an uploader (cache_verify on what it read from the file) must each be refused. */
START_TEST(flipped_byte_while_open_never_served)
{
	const uint32_t cs = 64 * KIB; /* 4 blocks per chunk */
	const uint64_t len = 8 * cs;
	uint8_t key[CACHE_KEY_LEN], *buf = malloc(cs);
	struct cache_usage u;
	char path[4096];
	struct evlog ev;
	struct cache *c;

	evlog_init(&ev);
	c = open_cache(0, 0, &ev);
	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 8; i++)
		write_mark(c, key, cs, len, i, 3);
	expect_read(c, key, 0, len, 3); /* every chunk checked once, all good */
	data_path(c, key, path);

	/* a reader of a whole chunk */
	flip_byte(path, 2 * cs + 40000);
	ck_assert_int_eq(cache_read(c, key, 2 * cs, buf, cs), -ENODATA);
	ck_assert(!cache_chunk_present(c, key, 2));
	ck_assert(evlog_has(&ev, 2)); /* dropped: the swarm fetches it again */

	/* a reader of a few bytes across a block edge, one of them changed */
	flip_byte(path, 5 * cs + CACHE_BLOCK_BYTES + 3);
	ck_assert_int_eq(cache_read(c, key, 5 * cs + CACHE_BLOCK_BYTES - 5, buf, 10), -ENODATA);
	ck_assert(evlog_has(&ev, 5));

	/* a byte served elsewhere in a damaged chunk is still the verified one: only the
	 * blocks read are hashed; the worker's check finds the rest */
	flip_byte(path, 6 * cs + 3 * CACHE_BLOCK_BYTES + 1);
	expect_read(c, key, 6 * cs, CACHE_BLOCK_BYTES, 3);
	ck_assert_int_eq(cache_chunk_check(c, key, 6), 1);
	ck_assert(evlog_has(&ev, 6));
	ck_assert_int_eq(cache_chunk_check(c, key, 7), 0); /* an intact one stays */
	ck_assert(cache_chunk_present(c, key, 7));

	/* an uploader: what it read from the file is checked before it goes */
	pread_file(path, 3 * cs + CACHE_BLOCK_BYTES, buf, CACHE_BLOCK_BYTES);
	ck_assert_int_eq(cache_verify(c, key, 3 * cs + CACHE_BLOCK_BYTES, buf, CACHE_BLOCK_BYTES),
	                 0);
	flip_byte(path, 3 * cs + CACHE_BLOCK_BYTES + 100);
	pread_file(path, 3 * cs + CACHE_BLOCK_BYTES, buf, CACHE_BLOCK_BYTES);
	ck_assert_int_eq(cache_verify(c, key, 3 * cs + CACHE_BLOCK_BYTES, buf, CACHE_BLOCK_BYTES),
	                 -EBADMSG);
	ck_assert(!cache_chunk_present(c, key, 3)); /* withheld from now on */
	ck_assert(!evlog_has(&ev, 3));              /* but dropped only by a worker */
	ck_assert_int_eq(cache_chunk_check(c, key, 3), 1);
	ck_assert(evlog_has(&ev, 3));
	/* an unaligned upload of a few changed bytes */
	flip_byte(path, 4 * cs + 7);
	pread_file(path, 4 * cs + 5, buf, 4);
	ck_assert_int_eq(cache_verify(c, key, 4 * cs + 5, buf, 4), -EBADMSG);

	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.corrupt, 5);
	/* the untouched chunks are served as ever */
	expect_read(c, key, 0, 2 * cs, 3);
	expect_read(c, key, 7 * cs, cs, 3);
	/* fetched again from the swarm: served again */
	write_mark(c, key, cs, len, 2, 3);
	expect_read(c, key, 2 * cs, cs, 3);
	cache_free(c);
	free(buf);
}
END_TEST

/* A populated cache to damage: 12 chunks marked, some evicted, an object removed. */
static void make_index(void)
{
	const uint32_t cs = 4 * KIB;
	uint8_t key[CACHE_KEY_LEN], k2[CACHE_KEY_LEN];
	struct cache *c = open_cache(8 * cs, 100, NULL);

	key_make(key, 1);
	key_make(k2, 2);
	ck_assert_int_eq(cache_object_add(c, key, 12 * cs, cs), 0);
	ck_assert_int_eq(cache_object_add(c, k2, 1 * cs, cs), 0);
	for (uint32_t i = 0; i < 12; i++)
		write_mark(c, key, cs, 12 * cs, i, 5);
	ck_assert_int_eq(cache_object_remove(c, k2), 0);
	cache_free(c);
}

/* Whatever the damage, what is served is right. Returns the chunks present. */
static int check_survivor(void)
{
	const uint32_t cs = 4 * KIB;
	uint8_t key[CACHE_KEY_LEN], bits[2];
	struct cache *c = open_cache(8 * cs, 100, NULL);
	int present;

	key_make(key, 1);
	present = cache_object_bitmap(c, key, bits, sizeof bits);
	if (present == -ENOENT)
		present = 0;
	ck_assert_int_ge(present, 0);
	/* A cut that loses an eviction record resurrects a punched chunk: its hash then
	 * fails and it is refused. Served or refused, never wrong. */
	for (uint32_t i = 0; i < 12 && present > 0; i++) {
		uint8_t got[4 * KIB], want[4 * KIB];
		ssize_t r;

		if (!(bits[i / 8] & (1U << (i % 8))))
			continue;
		r = cache_read(c, key, (uint64_t)i * cs, got, cs);
		ck_assert_msg(r == (ssize_t)cs || r == -ENODATA, "chunk %u: %zd", i, r);
		fill(want, (uint64_t)i * cs, cs, 5);
		if (r == (ssize_t)cs)
			ck_assert_mem_eq(got, want, cs);
	}
	cache_free(c);
	return present;
}

START_TEST(index_truncated_recovers)
{
	char idx[4096], saved[4096];
	struct stat st;
	off_t size;

	make_index();
	snprintf(idx, sizeof idx, "%s", sub("c/index"));
	snprintf(saved, sizeof saved, "%s", sub("index.orig"));
	ck_assert_int_eq(stat(idx, &st), 0);
	size = st.st_size;
	ck_assert_int_gt(size, 100);
	ck_assert_int_eq(check_survivor(), 8);
	ck_assert_int_eq(fixture_sh(5000, NULL, "cp '%s' '%s'", idx, saved), 0);
	/* every cut point in the first records and then a spread over the rest */
	for (off_t cut = 0; cut < size; cut += cut < 200 ? 1 : 37) {
		ck_assert_int_eq(fixture_sh(5000, NULL, "cp '%s' '%s'", saved, idx), 0);
		ck_assert_int_eq(truncate(idx, cut), 0);
		check_survivor();
	}
}
END_TEST

START_TEST(index_garbage_refused_or_cut)
{
	char idx[4096];
	uint8_t junk[512];
	struct cache_config cfg = { .dir = sub("c"), .log = log_sink, .log_level = LOG_WARNING };
	struct cache *c = NULL;
	int fd;

	make_index();
	snprintf(idx, sizeof idx, "%s", sub("c/index"));
	/* garbage after the valid records: cut, nothing lost */
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	fd = open(idx, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	ck_assert_int_eq(check_survivor(), 8);
	/* a flipped byte in the middle: the rest is cut, what remains is right */
	fd = open(idx, O_RDWR);
	ck_assert_int_eq(pread(fd, junk, 1, 300), 1);
	junk[0] ^= 1;
	ck_assert_int_eq(pwrite(fd, junk, 1, 300), 1);
	close(fd);
	ck_assert_int_lt(check_survivor(), 8);
	/* a file that is not an index at all: refused, and left alone */
	ck_assert_int_eq(fixture_file_random(idx, 4000, 3), 0);
	ck_assert_int_eq(cache_new(&cfg, &c), -EBADMSG);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(fixture_file_random(idx, 5, 3), 0);
	ck_assert_int_eq(cache_new(&cfg, &c), -EBADMSG);
	{
		struct stat st;

		ck_assert_int_eq(stat(idx, &st), 0);
		ck_assert_int_eq(st.st_size, 5);
	}
}
END_TEST

START_TEST(index_compacted)
{
	/* Many marks and evictions: the running cache keeps the journal near its live
	 * state (about 1 MiB at most here), and reopening rewrites it to that. */
	const uint32_t cs = 4 * KIB;
	const uint32_t n = 12000;
	uint8_t key[CACHE_KEY_LEN];
	struct stat before, after;
	struct cache *c = open_cache(16 * cs, 50, NULL);

	key_make(key, 1);
	ck_assert_int_eq(cache_object_add(c, key, (uint64_t)n * cs, cs), 0);
	for (uint32_t i = 0; i < n; i++)
		write_mark(c, key, cs, (uint64_t)n * cs, i, 8);
	ck_assert_int_eq(stat(sub("c/index"), &before), 0);
	ck_assert_int_le(before.st_size, 1100 * KIB); /* 12,000 marks + evictions: ~1.4 MB */
	ck_assert_int_gt(before.st_size, 64 * KIB);
	cache_free(c);
	c = open_cache(16 * cs, 50, NULL);
	ck_assert_int_eq(stat(sub("c/index"), &after), 0);
	ck_assert_int_lt(after.st_size, 4 * KIB);
	expect_read(c, key, (uint64_t)(n - 4) * cs, 4 * cs, 8);
	cache_free(c);
	c = open_cache(16 * cs, 50, NULL);
	expect_read(c, key, (uint64_t)(n - 4) * cs, 4 * cs, 8);
	cache_free(c);
}
END_TEST

/* ---- threads ---- */

struct stress {
	struct cache *c;
	unsigned next_writer;
	/* per chunk: 1 from the moment a writer claims it until its eviction is reported,
	 * as libtorrent re-fetches a piece only after fs/ told it the piece was evicted */
	uint8_t claimed[64];
	unsigned long evicted;
	uint8_t key[CACHE_KEY_LEN];
	uint32_t cs, n;
	volatile int stop;
	unsigned errors;
	unsigned long hits;
};

static void *stress_reader(void *arg)
{
	struct stress *s = arg;
	uint8_t *got = malloc(s->cs), *want = malloc(s->cs);
	unsigned seed = (unsigned)(uintptr_t)got;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		uint32_t idx = (uint32_t)rand_r(&seed) % s->n;
		uint32_t off = (uint32_t)rand_r(&seed) % s->cs;
		size_t len = s->cs - off;
		struct cache_block b;

		if (rand_r(&seed) & 1) {
			ssize_t r = cache_read(s->c, s->key, (uint64_t)idx * s->cs + off, got, len);

			if (r == -ENODATA)
				continue;
			fill(want, (uint64_t)idx * s->cs + off, len, 1);
			if (r != (ssize_t)len || memcmp(got, want, len) != 0)
				__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
		} else {
			if (cache_block_pin(s->c, s->key, (uint64_t)idx * s->cs + off, len, &b) !=
			    0)
				continue;
			/* the chunk cannot go away while pinned, however busy the writer */
			usleep(50);
			fill(want, b.offset, b.len, 1);
			if (pread(b.fd, got, b.len, (off_t)b.offset) != (ssize_t)b.len ||
			    memcmp(got, want, b.len) != 0)
				__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
			cache_block_unpin(s->c, &b);
		}
		__atomic_add_fetch(&s->hits, 1, __ATOMIC_RELAXED);
	}
	free(got);
	free(want);
	return NULL;
}

static void stress_on_evict(const uint8_t key[CACHE_KEY_LEN], const uint32_t *chunks, size_t n,
                            void *ctx)
{
	struct stress *s = ctx;

	(void)key;
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&s->claimed[chunks[i]], 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&s->evicted, n, __ATOMIC_RELAXED);
}

static void *stress_writer(void *arg)
{
	struct stress *s = arg;
	uint8_t *buf = malloc(s->cs);
	char path[4096];
	unsigned w = __atomic_fetch_add(&s->next_writer, 1, __ATOMIC_RELAXED);
	unsigned seed = 99 + w;
	int fd;

	if (cache_object_path(s->c, s->key, path, sizeof path) < 0 ||
	    (fd = open(path, O_WRONLY)) < 0) {
		__atomic_add_fetch(&s->errors, 1000, __ATOMIC_RELAXED);
		free(buf);
		return NULL;
	}
	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		/* each writer its own chunks, as libtorrent writes a piece once */
		uint32_t idx = ((uint32_t)rand_r(&seed) % (s->n / 2)) * 2 + w % 2;
		uint8_t free_ = 0;

		if (!__atomic_compare_exchange_n(&s->claimed[idx], &free_, 1, false,
		                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		fill(buf, (uint64_t)idx * s->cs, s->cs, 1);
		if (pwrite(fd, buf, s->cs, (off_t)idx * s->cs) != (ssize_t)s->cs ||
		    cache_chunk_mark(s->c, s->key, idx) < 0)
			__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
	}
	close(fd);
	free(buf);
	return NULL;
}

START_TEST(concurrent_readers_and_writers)
{
	struct stress s = { .cs = 16 * KIB, .n = 64 };
	struct cache_config cfg = {
		.dir = sub("c"),
		.cap = 16 * s.cs,
		.low_water_pct = 60,
		.log = log_sink,
		.log_level = LOG_WARNING,
		.on_evict = stress_on_evict,
		.evict_ctx = &s,
	};
	pthread_t readers[4], writers[2];
	struct cache_usage u;

	ck_assert_int_eq(cache_new(&cfg, &s.c), 0);
	key_make(s.key, 1);
	ck_assert_int_eq(cache_object_add(s.c, s.key, (uint64_t)s.n * s.cs, s.cs), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&readers[i], NULL, stress_reader, &s), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&writers[i], NULL, stress_writer, &s), 0);
	/* run until the mix has happened, not for a while: many hits and many evictions
	 * (each of which the writers had to wait for before writing that chunk again) */
	FIXTURE_WAIT(__atomic_load_n(&s.hits, __ATOMIC_RELAXED) >= 2000 &&
	                 __atomic_load_n(&s.evicted, __ATOMIC_RELAXED) >= 200,
	             30000, "the stress made %lu hits and %lu evictions only",
	             __atomic_load_n(&s.hits, __ATOMIC_RELAXED),
	             __atomic_load_n(&s.evicted, __ATOMIC_RELAXED));
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(readers[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(writers[i], NULL);
	ck_assert_uint_eq(s.errors, 0);
	ck_assert_uint_gt(s.hits, 100);
	cache_usage_get(s.c, &u);
	ck_assert_uint_eq(u.pinned, 0);
	ck_assert_uint_le(u.used, 16 * s.cs);
	ck_assert_uint_gt(u.evictions, 0);
	ck_assert_uint_eq(u.evictions, s.evicted);
	cache_free(s.c);
}
END_TEST

/* A batch of adoptions (CACHE_ADOPT_BATCH): readable at once, renamed by the sync, and
 * an adoption whose file cannot be renamed by then is dropped, not kept as an object
 * without data; reopened, the cache has exactly the objects whose renames happened. */
START_TEST(adopt_batch_renames_at_sync)
{
	const uint32_t cs = 64 << 10;
	uint8_t k1[CACHE_KEY_LEN], k2[CACHE_KEY_LEN], buf[100], want[100];
	char path[4096], f1[4096], f2[4096];
	struct cache *c = open_cache(64 * cs, 50, NULL);
	int fd;

	key_make(k1, 1);
	key_make(k2, 2);
	snprintf(f1, sizeof f1, "%s", sub("one"));
	snprintf(f2, sizeof f2, "%s", sub("two"));
	ck_assert_int_eq(fixture_file_random(f1, 3 * cs + 5, 1), 0);
	ck_assert_int_eq(fixture_file_random(f2, cs, 2), 0);
	ck_assert_int_eq(cache_object_adopt_hashed(c, k1, f1, cs, NULL, 0, CACHE_ADOPT_BATCH), 0);
	ck_assert_int_eq(cache_object_adopt_hashed(c, k2, f2, cs, NULL, 0, CACHE_ADOPT_BATCH), 0);
	/* registered and readable through the open file; nothing renamed yet */
	fd = open(f1, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, want, sizeof want, cs), (ssize_t)sizeof want);
	close(fd);
	ck_assert_int_eq(cache_read(c, k1, cs, buf, sizeof buf), (ssize_t)sizeof buf);
	ck_assert_mem_eq(buf, want, sizeof want);
	data_path(c, k1, path);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(access(f1, F_OK), 0);
	/* what was tried: the second file gone before the sync (its rename must fail) */
	ck_assert_int_eq(unlink(f2), 0);
	ck_assert_int_eq(cache_object_adopt_sync(c), 1);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(access(f1, F_OK), -1);
	ck_assert_int_eq(cache_object_path(c, k2, path, sizeof path), -ENOENT);
	ck_assert_int_eq(cache_object_adopt_sync(c), 0); /* nothing left to do */
	cache_free(c);
	c = open_cache(64 * cs, 50, NULL);
	ck_assert_int_eq(cache_read(c, k1, cs, buf, sizeof buf), (ssize_t)sizeof buf);
	ck_assert_mem_eq(buf, want, sizeof want);
	ck_assert_int_eq(cache_object_path(c, k2, path, sizeof path), -ENOENT);
	cache_free(c);
}
END_TEST

/* ---- the index's digests: derived from the blocks', and the first format's ---- */

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffU;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78U : crc >> 1;
	}
	return crc ^ 0xffffffffU;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Append one index record (type, payload) to fd, as index.c frames it. */
static void index_rec(int fd, uint8_t type, const uint8_t *payload, uint16_t len)
{
	uint8_t r[4 + 128 + 4];

	r[0] = type;
	r[1] = 0;
	put_le(r + 2, len, 2);
	memcpy(r + 4, payload, len);
	put_le(r + 4 + len, crc32c(r, 4 + (size_t)len), 4);
	ck_assert_int_eq(write(fd, r, 8 + (size_t)len), 8 + (ssize_t)len);
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	ck_assert_int_eq(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL), 1);
}

/* An index of the first format (SWFSCIX1: each chunk's SHA-256 over its bytes), as a
 * node that ran before the derived digests left it, must open and serve what it
 * recorded, and still refuse a chunk whose bytes differ from that record; it is
 * rewritten in the current format on open (an older binary cannot misread it), and
 * its chunks keep working after a second reopen. What was tried: one byte of chunk 1
 * changed after its record was made. */
START_TEST(old_index_opens)
{
	const uint32_t cs = 64 * KIB;
	const uint64_t len = 3 * cs + 5000;
	const char *dir = sub("c");
	uint8_t key[CACHE_KEY_LEN], *data = malloc(len), rec[80], magic[8], buf[16];
	char path[4096], hex[65];
	struct cache *c;
	int fd;

	key_make(key, 9);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/data", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	fill(data, 0, len, 3);
	fd = open(sub("c/index"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "SWFSCIX1", 8), 8);
	memcpy(rec, key, 32);
	put_le(rec + 32, len, 8);
	put_le(rec + 40, cs, 4);
	rec[44] = 0;
	index_rec(fd, 1, rec, 45); /* CIX_OBJ_ADD */
	for (uint32_t i = 0; i < 4; i++) {
		uint64_t off = (uint64_t)i * cs;

		put_le(rec + 32, i, 4);
		sha256(data + off, len - off < cs ? (size_t)(len - off) : cs, rec + 36);
		index_rec(fd, 4, rec, 68); /* CIX_CHUNK_SET, whole-chunk SHA-256 */
	}
	close(fd);
	data[cs + 20000] ^= 0x10;
	snprintf(path, sizeof path, "%s/data/%s", dir, hex);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);

	c = open_cache(0, 0, NULL);
	fd = open(sub("c/index"), O_RDONLY);
	ck_assert_int_eq(read(fd, magic, 8), 8);
	close(fd);
	ck_assert_mem_eq(magic, "SWFSCIX2", 8);
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			c = open_cache(0, 0, NULL);
		expect_read(c, key, 0, cs, 3);
		expect_read(c, key, 2 * cs, (size_t)(len - 2 * cs), 3);
		ck_assert_int_eq(cache_read(c, key, cs, buf, sizeof buf), -ENODATA);
		ck_assert(!cache_chunk_present(c, key, 1));
		cache_free(c);
	}
	free(data);
}
END_TEST

/* The chunk digest the index keeps is derived from the blocks': one whose record was
 * changed (its CRC made good again, as a deliberate edit would) must fail the chunk's
 * first check after a reopen, not be served. */
START_TEST(index_digest_changed_never_served)
{
	const uint32_t cs = 64 * KIB;
	const uint64_t len = 4 * cs;
	uint8_t key[CACHE_KEY_LEN], *idx, buf[16];
	struct stat st;
	struct cache *c;
	size_t off = 8;
	int fd, changed = 0;

	c = open_cache(0, 0, NULL);
	key_make(key, 4);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 4; i++)
		write_mark(c, key, cs, len, i, 5);
	cache_free(c);

	/* chunk 2's record: one bit of its digest */
	fd = open(sub("c/index"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	idx = malloc((size_t)st.st_size);
	ck_assert_int_eq(read(fd, idx, (size_t)st.st_size), st.st_size);
	while (off + 4 <= (size_t)st.st_size) {
		size_t plen = (size_t)(idx[off + 2] | idx[off + 3] << 8);

		if (idx[off] == 6 && idx[off + 4 + 32] == 2) {
			idx[off + 4 + 36 + 7] ^= 0x01;
			put_le(idx + off + 4 + plen, crc32c(idx + off, 4 + plen), 4);
			changed++;
		}
		off += 4 + plen + 4;
	}
	ck_assert_int_eq(changed, 1);
	ck_assert_int_eq(pwrite(fd, idx, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	free(idx);

	c = open_cache(0, 0, NULL);
	expect_read(c, key, cs, cs, 5);
	ck_assert_int_eq(cache_read(c, key, 2 * cs + 100, buf, sizeof buf), -ENODATA);
	ck_assert(!cache_chunk_present(c, key, 2));
	expect_read(c, key, 3 * cs, cs, 5);
	cache_free(c);
}
END_TEST

/* The full SHA-256 of every CACHE_BLOCK_SIZE block of each chunk of the file at path. */
static uint8_t (*file_blocks(const char *path, uint64_t len, uint32_t cs, uint64_t *n))[32]
{
	uint8_t *data = malloc(len);
	uint8_t(*out)[32] = malloc((len / CACHE_BLOCK_BYTES + len / cs + 2) * 32);
	int fd = open(path, O_RDONLY);

	ck_assert_int_eq(pread(fd, data, len, 0), (ssize_t)len);
	close(fd);
	*n = 0;
	for (uint64_t c = 0; c < len; c += cs)
		for (uint64_t b = c; b < c + cs && b < len; b += CACHE_BLOCK_BYTES) {
			uint64_t e = b + CACHE_BLOCK_BYTES;

			e = e < c + cs ? e : c + cs;
			sha256(data + b, (size_t)((e < len ? e : len) - b), out[(*n)++]);
		}
	free(data);
	return out;
}

/* A publisher hands the block digests of its one read to the cache: what it serves
 * is checked against them from the first read on, and the chunk digests derived from
 * them hold across a reopen. What was tried: a wrong block count; one byte of the
 * adopted file changed after the adoption; a digest list with one block's digest
 * changed (the bytes are right, the list is not): that block is not served, and after a
 * reopen (no read before) the chunk fails its check as a whole. */
START_TEST(adopt_block_digests_checked)
{
	const uint32_t cs = 64 * KIB + 4 * KIB; /* not a multiple of the block: blocks
	                                         * restart at each chunk */
	const uint64_t len = 5 * (uint64_t)cs + 777;
	uint8_t k1[CACHE_KEY_LEN], k2[CACHE_KEY_LEN], k3[CACHE_KEY_LEN], *want = malloc(len),
	                                                                 *got = malloc(len);
	uint8_t(*blocks)[32];
	char f[4096], path[4096];
	uint64_t n;
	struct cache *c = open_cache(0, 0, NULL);
	int fd;

	key_make(k1, 1);
	key_make(k2, 2);
	key_make(k3, 3);
	snprintf(f, sizeof f, "%s", sub("one"));
	ck_assert_int_eq(fixture_file_random(f, len, 11), 0);
	fd = open(f, O_RDONLY);
	ck_assert_int_eq(pread(fd, want, len, 0), (ssize_t)len);
	close(fd);
	blocks = file_blocks(f, len, cs, &n);
	ck_assert_uint_eq(n, 5 * 5 + 1);
	ck_assert_int_eq(cache_object_adopt_hashed(c, k1, f, cs, blocks, n - 1, 0), -EINVAL);
	ck_assert_int_eq(cache_object_adopt_hashed(c, k1, f, cs, blocks, n, 0), 0);
	ck_assert_int_eq(cache_read(c, k1, 0, got, len), (ssize_t)len);
	ck_assert(memcmp(got, want, len) == 0);
	data_path(c, k1, path);
	flip_byte(path, 2 * (uint64_t)cs + 3 * CACHE_BLOCK_BYTES + 9);
	ck_assert_int_eq(cache_read(c, k1, 2 * (uint64_t)cs, got, cs), -ENODATA);
	ck_assert(!cache_chunk_present(c, k1, 2));
	ck_assert_int_eq(cache_read(c, k1, 3 * (uint64_t)cs, got, cs), (ssize_t)cs);

	/* chunk 1's block 2: a digest the bytes do not have */
	blocks[5 + 2][7] ^= 0x01;
	for (int i = 0; i < 2; i++) {
		snprintf(f, sizeof f, "%s", sub(i ? "three" : "two"));
		ck_assert_int_eq(fixture_file_random(f, len, 11), 0);
		ck_assert_int_eq(cache_object_adopt_hashed(c, i ? k3 : k2, f, cs, blocks, n, 0), 0);
	}
	ck_assert_int_eq(cache_read(c, k2, (uint64_t)cs, got, 2 * CACHE_BLOCK_BYTES),
	                 2 * (ssize_t)CACHE_BLOCK_BYTES); /* blocks 0 and 1: their digests */
	ck_assert_int_eq(cache_read(c, k2, (uint64_t)cs + 2 * CACHE_BLOCK_BYTES + 5, got, 10),
	                 -ENODATA);
	ck_assert(!cache_chunk_present(c, k2, 1));
	ck_assert_int_eq(cache_read(c, k2, 0, got, cs), (ssize_t)cs);
	cache_free(c);
	c = open_cache(0, 0, NULL);
	/* k3 was never read: its chunk 1 fails as a whole, even its right blocks */
	ck_assert_int_eq(cache_read(c, k3, (uint64_t)cs, got, 10), -ENODATA);
	ck_assert(!cache_chunk_present(c, k3, 1));
	ck_assert_int_eq(cache_read(c, k3, 2 * (uint64_t)cs, got, cs), (ssize_t)cs);
	ck_assert(memcmp(got, want + 2 * (uint64_t)cs, cs) == 0);
	ck_assert_int_eq(cache_read(c, k1, 3 * (uint64_t)cs, got, cs), (ssize_t)cs);
	ck_assert(memcmp(got, want + 3 * (uint64_t)cs, cs) == 0);
	cache_free(c);
	free(blocks);
	free(want);
	free(got);
}
END_TEST

/* A mark given the block digests of the hash check that verified the chunk (libtorrent's
 * v2 leaves) does not read the chunk back; reads are checked against those digests.
 * Tried: digests of other bytes than the file holds (the file changed after the check),
 * too few digests, a piece's span of digests past a short last chunk, and a reopen. */
START_TEST(mark_with_check_digests)
{
	const uint32_t cs = 64 * KIB;
	const uint64_t len = 3 * (uint64_t)cs + 5000;
	const uint32_t per = cs / CACHE_BLOCK_BYTES;
	uint8_t key[CACHE_KEY_LEN], buf[100], span[4][32];
	uint8_t(*blocks)[32];
	char path[4096];
	struct cache_usage u;
	uint64_t n;
	struct cache *c = open_cache(0, 0, NULL);

	key_make(key, 9);
	ck_assert_int_eq(cache_object_add(c, key, len, cs), 0);
	for (uint32_t i = 0; i < 4; i++)
		write_chunk(c, key, cs, len, i, 5);
	data_path(c, key, path);
	blocks = file_blocks(path, len, cs, &n);
	ck_assert_uint_eq(n, 3 * per + 1);

	ck_assert_int_eq(cache_chunk_mark_hashed(c, key, 0, blocks, per), 0);
	expect_read(c, key, 0, cs, 5);

	/* chunk 1: the check vouched for bytes the file does not hold */
	memcpy(span, blocks + per, sizeof span);
	span[2][0] ^= 0x80;
	ck_assert_int_eq(cache_chunk_mark_hashed(c, key, 1, (const uint8_t(*)[32])span, per), 0);
	ck_assert_int_eq(cache_read(c, key, (uint64_t)cs + 2 * CACHE_BLOCK_BYTES + 1, buf, 10),
	                 -ENODATA);
	ck_assert(!cache_chunk_present(c, key, 1));

	/* chunk 2: fewer digests than blocks: hashed from the disk */
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.rehashed, 0);
	ck_assert_int_eq(cache_chunk_mark_hashed(c, key, 2, blocks + 2 * per, per - 1), 0);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.rehashed, 1);
	expect_read(c, key, 2 * (uint64_t)cs, cs, 5);

	/* chunk 3, 5000 bytes: a piece's worth of digests, the ones past it meaningless */
	memset(span, 0xee, sizeof span);
	memcpy(span[0], blocks[3 * per], 32);
	ck_assert_int_eq(cache_chunk_mark_hashed(c, key, 3, (const uint8_t(*)[32])span, 4), 0);
	expect_read(c, key, 3 * (uint64_t)cs, 5000, 5);
	cache_usage_get(c, &u);
	ck_assert_uint_eq(u.rehashed, 1);

	/* what was recorded is checked against the disk after a reopen */
	cache_free(c);
	c = open_cache(0, 0, NULL);
	expect_read(c, key, 0, cs, 5);
	expect_read(c, key, 3 * (uint64_t)cs, 5000, 5);
	ck_assert(!cache_chunk_present(c, key, 1));
	cache_free(c);
	free(blocks);
}
END_TEST

/* One test case: its tests, its timeout, a temp directory per test unless bare. */
static void add_tcase(Suite *s, const char *name, int timeout, bool bare,
                      const TTest *const tests[])
{
	TCase *tc = tcase_create(name);

	if (!bare)
		tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout);
	for (int i = 0; tests[i]; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
}

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");

	add_tcase(s, "size_parse", 5, true,
	          (const TTest *const[]){ size_parse_units, size_parse_rejects, NULL });
	add_tcase(s, "basics", 15, false,
	          (const TTest *const[]){ mark_then_read, mark_with_check_digests,
	                                  missing_chunk_refused, bad_arguments, two_caches_coexist,
	                                  NULL });
#ifndef NDEBUG
	{
		TCase *tc = tcase_create("debug_asserts");

		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 10);
		tcase_add_test_raise_signal(tc, unpin_twice_asserts, SIGABRT);
		suite_add_tcase(s, tc);
	}
#endif
	add_tcase(s, "eviction", 20, false,
	          (const TTest *const[]){ lru_touch_protects, cap_holds_while_streaming,
	                                  evict_punches_holes, pins_and_published_never_evicted,
	                                  NULL });
	add_tcase(s, "persistence", 30, false,
	          (const TTest *const[]){
	              persists_across_reopen, adopt_replaces_or_refuses,
	              data_file_deleted_while_closed, crash_consistent_under_kill9,
	              flipped_byte_never_served, flipped_byte_while_open_never_served,
	              index_truncated_recovers, index_garbage_refused_or_cut, index_compacted,
	              adopt_batch_renames_at_sync, old_index_opens,
	              index_digest_changed_never_served, adopt_block_digests_checked, NULL });
	add_tcase(s, "threads", 20, false,
	          (const TTest *const[]){ concurrent_readers_and_writers, NULL });
	add_tcase(s, "files", 20, false, (const TTest *const[]){ open_files_capped, NULL });
	return s;
}

int main(void)
{
	return fixture_run_suite(cache_suite());
}
