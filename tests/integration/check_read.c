/*
 * Reads of content this node does not hold: node A publishes files by cp; node B
 * (another home, no key: read-only, an empty cache) has A's ledger and .torrent files
 * copied into its drive directory, standing in for ledger sync, and A as a static
 * peer. B's reads pull only the pieces they need from A through the engine; a read
 * while A is down fails with EIO after the read timeout and never blocks ls or stat;
 * Ctrl-C ends a stuck cat at once; once A is back the same read succeeds.
 */
#include "drive_util.h"
#include "fixture.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir, *home_a, *home_b, *mnt_a, *mnt_b, *src;
static char id[LEDGER_HEX_LEN], listen_a[64], peer_a[64];
static struct fixture_mount *ma, *mb;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct fixture_mount *mount_a(void)
{
	const char *args[] = { "--no-dht", "--listen", listen_a, NULL };
	struct fixture_mount *m;

	ck_assert_int_eq(fixture_mount_start(home_a, "team", mnt_a, args, &m), 0);
	return m;
}

static struct fixture_mount *mount_b(void)
{
	const char *args[] = { "--no-dht", "--listen",       "127.0.0.1:0", "--peer",
		               peer_a,     "--read-timeout", "4",           NULL };
	struct fixture_mount *m;

	ck_assert_int_eq(fixture_mount_start(home_b, id, mnt_b, args, &m), 0);
	return m;
}

/* A publishes big.bin (48 MiB) and small.bin; B gets A's ledger and torrents. */
static void setup(void)
{
	uint16_t port;

	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("read", &dir), 0);
	ck_assert_int_ge(asprintf(&home_a, "%s/a", dir), 0);
	ck_assert_int_ge(asprintf(&home_b, "%s/b", dir), 0);
	ck_assert_int_ge(asprintf(&mnt_a, "%s/mnt-a", dir), 0);
	ck_assert_int_ge(asprintf(&mnt_b, "%s/mnt-b", dir), 0);
	ck_assert_int_ge(asprintf(&src, "%s/src", dir), 0);
	ck_assert_int_eq(itest_drive_create(home_a, "team", "default", id), 0);
	ck_assert_int_eq(fixture_port_free(&port), 0);
	snprintf(listen_a, sizeof listen_a, "127.0.0.1:%u", port);
	snprintf(peer_a, sizeof peer_a, "127.0.0.1:%u", port);
	ck_assert_int_eq(mkdir(src, 0755), 0);
	char path[4096];
	snprintf(path, sizeof path, "%s/big.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 48 << 20, 11), 0);
	snprintf(path, sizeof path, "%s/small.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 300000, 12), 0);

	ma = mount_a();
	free(itest_run(60000, "cp '%s/big.bin' '%s/small.bin' '%s/'", src, src, mnt_a));
	for (int i = 0; i < 600; i++) {
		char *out = NULL;

		fixture_sh(5000, &out, "'%s' status '%s'", getenv("SWARMFS_BIN"), mnt_a);
		bool done = strstr(out, "publish queue: 0 staged") != NULL;
		free(out);
		if (done)
			break;
		usleep(50000);
	}
	ck_assert_int_eq(fixture_mount_stop(ma), 0);
	/* what sync will do (issue 6): B gets the ledger and the torrents */
	free(itest_run(10000,
	               "mkdir -p '%s/drives/%s' && cp '%s/drives/%s/ledger.db' '%s/drives/%s/' && "
	               "cp -r '%s/drives/%s/torrents' '%s/drives/%s/'",
	               home_b, id, home_a, id, home_b, id, home_a, id, home_b, id));
	ma = mount_a();
	mb = mount_b();
}

static void teardown(void)
{
	fixture_mount_stop(mb);
	fixture_mount_stop(ma);
	fixture_tmpdir_remove(dir);
	free(dir);
	free(home_a);
	free(home_b);
	free(mnt_a);
	free(mnt_b);
	free(src);
}

static uint64_t cached(const char *name)
{
	char *out = itest_run(
	    10000, "getfattr --absolute-names --only-values -n user.swarmfs.cached '%s/%s'", mnt_b,
	    name);
	uint64_t n = strtoull(out, NULL, 10);

	free(out);
	return n;
}

START_TEST(remote_file_reads_back_identical)
{
	char *want = itest_run(30000, "cd '%s' && sha256sum big.bin small.bin", src);
	char *got = itest_run(60000, "cd '%s' && sha256sum big.bin small.bin", mnt_b);

	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(cached("big.bin"), 48 << 20);
	free(got);
	free(want);
	/* a second read is served from the cache, with A gone */
	ck_assert_int_eq(fixture_mount_stop(ma), 0);
	ma = NULL;
	got = itest_run(30000, "cd '%s' && sha256sum big.bin small.bin", mnt_b);
	want = itest_run(30000, "cd '%s' && sha256sum big.bin small.bin", src);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
}
END_TEST

START_TEST(middle_read_fetches_only_nearby_pieces)
{
	char *got = itest_run(
	    30000, "dd if='%s/big.bin' bs=16k skip=1500 count=1 status=none | sha256sum", mnt_b);
	char *want = itest_run(
	    30000, "dd if='%s/big.bin' bs=16k skip=1500 count=1 status=none | sha256sum", src);

	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	uint64_t n = cached("big.bin");
	ck_assert_msg(n > 0 && n < (48 << 20) / 4, "a 16 KiB read cached %llu of %u bytes",
	              (unsigned long long)n, 48u << 20);
	/* tail -c: the end only */
	got = itest_run(30000, "tail -c 1000 '%s/big.bin' | sha256sum", mnt_b);
	want = itest_run(30000, "tail -c 1000 '%s/big.bin' | sha256sum", src);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	ck_assert_uint_lt(cached("big.bin"), (48 << 20) / 2);
}
END_TEST

START_TEST(seeder_down_eio_after_timeout_then_back)
{
	struct stat st;
	char path[4096];
	double t0;

	ck_assert_int_eq(fixture_mount_stop(ma), 0);
	ma = NULL;
	/* what was tried: a read of a piece nobody reachable has */
	snprintf(path, sizeof path, "%s/big.bin", mnt_b);
	t0 = now_s();
	int rc = fixture_sh(
	    30000, NULL, "dd if='%s' bs=16k skip=2000 count=1 status=none of=/dev/null 2>/dev/null",
	    path);
	double waited = now_s() - t0;
	ck_assert_msg(rc != 0, "a read with no seeder succeeded");
	ck_assert_msg(waited >= 3.0 && waited < 15.0, "the read failed after %.1f s (timeout 4 s)",
	              waited);
	/* meanwhile stat and ls never wait on the network */
	pid_t slow = fork();
	if (slow == 0) {
		execlp("sh", "sh", "-c",
		       "exec dd if=\"$0\" bs=16k skip=2500 count=1 status=none of=/dev/null", path,
		       (char *)NULL);
		_exit(127);
	}
	usleep(300000);
	t0 = now_s();
	ck_assert_int_eq(stat(path, &st), 0);
	free(itest_run(5000, "ls -l '%s' >/dev/null", mnt_b));
	ck_assert_msg(now_s() - t0 < 1.0, "stat and ls took %.2f s during a stuck read",
	              now_s() - t0);
	waitpid(slow, NULL, 0);

	/* Ctrl-C on a stuck cat returns promptly */
	pid_t cat = fork();
	if (cat == 0) {
		execlp("cat", "cat", path, (char *)NULL);
		_exit(127);
	}
	usleep(500000);
	t0 = now_s();
	kill(cat, SIGINT);
	int status;
	waitpid(cat, &status, 0);
	ck_assert_msg(now_s() - t0 < 2.0, "cat took %.2f s to stop after SIGINT", now_s() - t0);

	/* the seeder comes back: the same read succeeds */
	ma = mount_a();
	char *got = NULL;
	for (int i = 0; i < 20; i++) {
		free(got);
		got = NULL;
		if (fixture_sh(30000, &got,
		               "dd if='%s' bs=16k skip=2000 count=1 status=none | sha256sum",
		               path) == 0 &&
		    strlen(got) > 60)
			break;
		usleep(250000);
	}
	char *want = itest_run(
	    30000, "dd if='%s/big.bin' bs=16k skip=2000 count=1 status=none | sha256sum", src);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		remote_file_reads_back_identical,
		middle_read_fetches_only_nearby_pieces,
		seeder_down_eio_after_timeout_then_back,
		NULL,
	};

	return itest_main("read", 120, setup, teardown, tests);
}
