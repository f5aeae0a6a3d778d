/*
 * fs/engine end to end: swarm/ and cache/ wired together, a real seeder on 127.0.0.1.
 * A file four times the cache cap read through a capped cache, a restart that keeps
 * what was cached, and a cached piece damaged on disk that is never returned.
 */
#include "engine.h"
#include "fixture.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define MiB       (1024 * 1024)
#define FILE_SIZE (64ull * MiB)
#define PIECE     (256 * 1024)
#define CAP       (16ull * MiB)

static char *dir, *src, *cachedir;
static struct swarm_metainfo *meta;
static struct swarm_session *seeder;
static struct swarm_torrent *seeded;
static char seeder_addr[32];

static void log_sink(int level, const char *module, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= LOG_WARNING)
		fprintf(stderr, "%s: %d: %s\n", module, level, msg);
}

static void start_seeder(void)
{
	struct swarm_config c;
	uint16_t port = 0;
	char *save;

	swarm_config_init(&c);
	c.listen_interface = "127.0.0.1";
	c.log = log_sink;
	c.log_level = LOG_WARNING;
	ck_assert_int_eq(swarm_session_new(&c, &seeder), 0);
	ck_assert_int_ge(asprintf(&save, "%s/src", dir), 0);
	struct swarm_add_params ap = { .torrent = meta->torrent,
		                       .torrent_len = meta->torrent_len,
		                       .save_path = save,
		                       .seed = true };
	ck_assert_int_eq(swarm_torrent_add(seeder, &ap, &seeded), 0);
	for (int i = 0;
	     i < fixture_scaled_ms(2000) / 10 && swarm_session_port(seeder, &port) == -EAGAIN; i++)
		usleep(10000);
	ck_assert_uint_ne(port, 0);
	snprintf(seeder_addr, sizeof seeder_addr, "127.0.0.1:%u", port);
	free(save);
}

static void setup(void)
{
	struct swarm_make_params mp = { .piece_length = PIECE };

	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("engine", &dir), 0);
	ck_assert_int_ge(asprintf(&src, "%s/src/film", dir), 0);
	ck_assert_int_ge(asprintf(&cachedir, "%s/cache", dir), 0);
	char *srcdir;
	ck_assert_int_ge(asprintf(&srcdir, "%s/src", dir), 0);
	mkdir(srcdir, 0755);
	free(srcdir);
	ck_assert_int_eq(fixture_file_random(src, FILE_SIZE, 42), 0);
	ck_assert_int_eq(swarm_metainfo_make(src, &mp, &meta), 0);
	start_seeder();
}

static void teardown(void)
{
	swarm_session_free(seeder);
	swarm_metainfo_free(meta);
	fixture_tmpdir_remove(dir);
	free(dir);
	free(src);
	free(cachedir);
}

static struct fs_engine *engine(bool with_peer)
{
	struct swarm_config sc;
	struct cache_config cc = {
		.dir = cachedir, .cap = CAP, .log = log_sink, .log_level = LOG_WARNING
	};
	const char *peers[] = { seeder_addr, NULL };
	struct fs_engine *e;

	swarm_config_init(&sc);
	sc.listen_interface = "127.0.0.1";
	sc.peers = with_peer ? peers : NULL;
	sc.fetch_timeout_ms = 15000;
	sc.log = log_sink;
	sc.log_level = LOG_WARNING;
	ck_assert_int_eq(fs_engine_new(&sc, &cc, &e), 0);
	return e;
}

static void *src_bytes(uint64_t off, size_t len)
{
	void *buf = malloc(len);
	int fd = open(src, O_RDONLY);

	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
	return buf;
}

static uint64_t disk_bytes(struct fs_engine *e, struct fs_engine_torrent *t)
{
	char path[4096];
	struct stat st;

	ck_assert_int_ge(
	    cache_object_path(fs_engine_cache(e), fs_engine_torrent_key(t), path, sizeof path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void assert_read(struct fs_engine_reader *r, uint64_t off, size_t len, int timeout_ms)
{
	char *buf = malloc(len);
	void *want = src_bytes(off, len);
	ssize_t n = fs_engine_read(r, buf, len, off, timeout_ms);

	ck_assert_msg(n == (ssize_t)len, "read at %llu: %zd (%s)", (unsigned long long)off, n,
	              n < 0 ? strerror((int)-n) : "short");
	if (memcmp(buf, want, len) != 0) {
		size_t i = 0;
		while (((char *)buf)[i] == ((char *)want)[i])
			i++;
		ck_abort_msg("wrong bytes at %llu + %zu: %02x, not %02x", (unsigned long long)off,
		             i, ((unsigned char *)buf)[i], ((unsigned char *)want)[i]);
	}
	free(buf);
	free(want);
}

START_TEST(file_four_times_the_cap)
{
	struct fs_engine *e = engine(true);
	struct fs_engine_torrent *t;
	struct fs_engine_reader *r;
	struct cache_usage u;
	uint64_t max_disk = 0;

	ck_assert_int_eq(fs_engine_torrent_add(e, meta->torrent, meta->torrent_len, false, &t), 0);
	ck_assert_int_eq(fs_engine_reader_new(t, 0, &r), 0);
	for (uint64_t off = 0; off < FILE_SIZE; off += MiB) {
		assert_read(r, off, MiB, 15000);
		uint64_t d = disk_bytes(e, t);
		if (d > max_disk)
			max_disk = d;
	}
	cache_usage_get(fs_engine_cache(e), &u);
	ck_assert_uint_le(u.used, CAP);
	ck_assert_uint_gt(u.evictions, 0);
	/* the data file never held much more than the cap: read-ahead in flight and the
	 * pieces written but not yet marked come on top */
	ck_assert_msg(max_disk <= CAP + 16 * MiB, "data file grew to %llu bytes",
	              (unsigned long long)max_disk);
	/* an evicted piece is fetched again on demand */
	assert_read(r, 0, 100000, 15000);
	fs_engine_reader_free(r);
	fs_engine_free(e);
}
END_TEST

START_TEST(restart_keeps_cached_pieces)
{
	struct fs_engine *e = engine(true);
	struct fs_engine_torrent *t;
	struct fs_engine_reader *r;

	ck_assert_int_eq(fs_engine_torrent_add(e, meta->torrent, meta->torrent_len, false, &t), 0);
	ck_assert_int_eq(fs_engine_reader_new(t, 0, &r), 0);
	assert_read(r, 10 * MiB, 3 * MiB, 15000);
	fs_engine_reader_free(r);
	fs_engine_free(e);

	/* no peers at all: what was cached is served, without a download */
	e = engine(false);
	ck_assert_int_eq(fs_engine_torrent_add(e, meta->torrent, meta->torrent_len, false, &t), 0);
	ck_assert_int_eq(fs_engine_reader_new(t, 0, &r), 0);
	assert_read(r, 10 * MiB, 3 * MiB, 2000);
	struct swarm_torrent_stats st;
	ck_assert_int_eq(swarm_torrent_stats(fs_engine_torrent_swarm(t), &st), 0);
	ck_assert_uint_eq(st.total_downloaded, 0);
	ck_assert_uint_ge(st.pieces_have, 12);
	char b[100];
	ck_assert_int_eq(fs_engine_read(r, b, sizeof b, 40 * MiB, 500), -ETIMEDOUT);
	fs_engine_reader_free(r);
	fs_engine_free(e);
}
END_TEST

START_TEST(damaged_cached_piece_never_returned)
{
	struct fs_engine *e = engine(true);
	struct fs_engine_torrent *t;
	struct fs_engine_reader *r;
	char path[4096];

	ck_assert_int_eq(fs_engine_torrent_add(e, meta->torrent, meta->torrent_len, false, &t), 0);
	ck_assert_int_eq(fs_engine_reader_new(t, 0, &r), 0);
	assert_read(r, 5 * MiB, MiB, 15000);
	ck_assert_int_ge(
	    cache_object_path(fs_engine_cache(e), fs_engine_torrent_key(t), path, sizeof path), 0);
	fs_engine_reader_free(r);
	fs_engine_free(e);

	/* damage a cached piece behind the node's back */
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "garbage!", 8, 5 * MiB + 1000), 8);
	close(fd);

	e = engine(true);
	ck_assert_int_eq(fs_engine_torrent_add(e, meta->torrent, meta->torrent_len, false, &t), 0);
	ck_assert_int_eq(fs_engine_reader_new(t, 0, &r), 0);
	/* found by its hash, dropped, fetched again: the right bytes */
	assert_read(r, 5 * MiB, MiB, 15000);
	fs_engine_reader_free(r);
	fs_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("cap");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, file_four_times_the_cap);
	suite_add_tcase(s, tc);
	tc = tcase_create("restart");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, restart_keeps_cached_pieces);
	tcase_add_test(tc, damaged_cached_piece_never_returned);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
