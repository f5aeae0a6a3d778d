/*
 * swarm/ with a real BitTorrent client on 127.0.0.1: aria2c downloads a file that
 * swarm/ seeds (found through opentracker) and gets the same SHA-256; swarm_read reads
 * a file that aria2c seeds.
 *
 * The torrents are v1: aria2c 1.36 re-encodes the info dictionary before hashing it,
 * which gives a v2-hybrid torrent another infohash than every other client computes
 * (aria2c -S shows eee9... where libtorrent and the bytes say 8135...), so it finds no
 * peer for a hybrid torrent.
 */
#include "fixture.h"
#include "swarm.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static char *dir;

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("interop", &dir), 0);
}

static void teardown(void)
{
	fixture_tmpdir_remove(dir);
	free(dir);
}

static void log_sink(int level, const char *module, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= LOG_WARNING)
		fprintf(stderr, "%s: %d: %s\n", module, level, msg);
}

static struct swarm_session *session(const char *const *peers)
{
	struct swarm_config c;
	struct swarm_session *s;

	swarm_config_init(&c);
	c.listen_interface = "127.0.0.1";
	c.peers = peers;
	c.log = log_sink;
	c.log_level = LOG_WARNING;
	ck_assert_int_eq(swarm_session_new(&c, &s), 0);
	return s;
}

static char *path(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static void write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

START_TEST(aria2c_downloads_what_swarm_seeds)
{
	char *tdir = path("tracker"), *seed = path("seed"), *file = path("seed/movie"),
	     *tfile = path("movie.torrent"), *out = path("aria"), *got = path("aria/movie");
	char v1[41], want[65], have[65];
	struct fixture_tracker *tr;
	struct swarm_metainfo *m;

	mkdir(seed, 0755);
	ck_assert_int_eq(fixture_file_random(file, 24 * MiB + 777, 31), 0);
	ck_assert_int_eq(fixture_tracker_start(tdir, &tr), 0);
	const char *trackers[] = { fixture_tracker_url(tr), NULL };
	struct swarm_make_params mp = { .kind = SWARM_MAKE_V1, .trackers = trackers };
	ck_assert_int_eq(swarm_metainfo_make(file, &mp, &m), 0);
	swarm_hex(m->v1, 20, v1);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1), 0);
	write_file(tfile, m->torrent, m->torrent_len);

	struct swarm_session *s = session(NULL);
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = seed,
		                       .seed = true };
	struct swarm_torrent *t;
	ck_assert_int_eq(swarm_torrent_add(s, &ap, &t), 0);

	uint16_t port;
	ck_assert_int_eq(fixture_port_free(&port), 0);
	char *log = NULL;
	int rc =
	    fixture_sh(90000, &log,
	               "aria2c --dir='%s' --seed-time=0 --enable-dht=false --enable-dht6=false "
	               "--bt-enable-lpd=false --enable-peer-exchange=false --listen-port=%u "
	               "--dht-listen-port=%u --summary-interval=0 --console-log-level=warn "
	               "--bt-stop-timeout=60 --file-allocation=none '%s' 2>&1",
	               out, port, port, tfile);
	ck_assert_msg(rc == 0, "aria2c failed (%d):\n%s", rc, log ? log : "");
	free(log);
	ck_assert_int_eq(fixture_file_sha256(file, want), 0);
	ck_assert_int_eq(fixture_file_sha256(got, have), 0);
	ck_assert_str_eq(have, want);
	struct swarm_torrent_stats st;
	ck_assert_int_eq(swarm_torrent_stats(t, &st), 0);
	ck_assert_uint_ge(st.total_uploaded, 24 * MiB);

	swarm_session_free(s);
	fixture_tracker_stop(tr);
	swarm_metainfo_free(m);
	free(tdir), free(seed), free(file), free(tfile), free(out), free(got);
}
END_TEST

START_TEST(swarm_reads_what_aria2c_seeds)
{
	char *seed = path("aria"), *file = path("aria/song"), *tfile = path("song.torrent"),
	     *leech = path("leech");
	struct swarm_make_params mp = { .kind = SWARM_MAKE_V1, .piece_length = 65536 };
	struct swarm_metainfo *m;
	uint16_t port;

	mkdir(seed, 0755);
	ck_assert_int_eq(fixture_file_random(file, 8 * MiB + 99, 32), 0);
	ck_assert_int_eq(swarm_metainfo_make(file, &mp, &m), 0);
	write_file(tfile, m->torrent, m->torrent_len);
	ck_assert_int_eq(fixture_port_free(&port), 0);
	char portarg[32], dirarg[4200], *logp = path("aria2c.log");
	snprintf(portarg, sizeof portarg, "--listen-port=%u", port);
	snprintf(dirarg, sizeof dirarg, "--dir=%s", seed);
	char *argv[] = { "aria2c",
		         dirarg,
		         portarg,
		         "--seed-ratio=0.0",
		         "--seed-time=600",
		         "--bt-seed-unverified=true",
		         "--enable-dht=false",
		         "--enable-dht6=false",
		         "--bt-enable-lpd=false",
		         "--enable-peer-exchange=false",
		         "--summary-interval=0",
		         "--console-log-level=warn",
		         tfile,
		         NULL };
	struct fixture_proc *aria;
	ck_assert_int_eq(fixture_proc_start(argv, logp, &aria), 0);

	char peer[32];
	snprintf(peer, sizeof peer, "127.0.0.1:%u", port);
	const char *peers[] = { peer, NULL };
	struct swarm_session *s = session(peers);
	mkdir(leech, 0755);
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = leech };
	struct swarm_torrent *t;
	struct swarm_reader *r;
	ck_assert_int_eq(swarm_torrent_add(s, &ap, &t), 0);
	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);

	size_t len = 300000;
	char *buf = malloc(len), *want = malloc(len);
	int fd = open(file, O_RDONLY);
	ck_assert_int_eq(pread(fd, want, len, 5 * MiB), (ssize_t)len);
	close(fd);
	/* aria2c needs a moment to listen: the read waits for it */
	ssize_t n = swarm_read(r, buf, len, 5 * MiB, 30000);
	ck_assert_msg(n == (ssize_t)len, "read: %zd", n);
	ck_assert_int_eq(memcmp(buf, want, len), 0);
	struct swarm_torrent_stats st;
	ck_assert_int_eq(swarm_torrent_stats(t, &st), 0);
	ck_assert_uint_lt(st.total_downloaded, 4 * MiB);

	swarm_reader_free(r);
	swarm_session_free(s);
	fixture_proc_stop(aria, 5000);
	swarm_metainfo_free(m);
	free(buf), free(want), free(seed), free(file), free(tfile), free(leech), free(logp);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("swarm_interop");
	TCase *tc = tcase_create("aria2c");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, aria2c_downloads_what_swarm_seeds);
	tcase_add_test(tc, swarm_reads_what_aria2c_seeds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
