/*
 * Standard clients and the mount: a file published by cp is downloaded completely by an
 * independent client (python3-libtorrent) from the magnet link the mount gives, through a
 * real opentracker on 127.0.0.1, once by the v1 infohash alone (as v1-only clients
 * ask) and once by the whole hybrid magnet; its SHA-256 matches.
 *
 * aria2c is not used here: Debian 12's aria2 1.36.0 computes a wrong v1 infohash for
 * every hybrid torrent, from a magnet or a .torrent file alike (aria2 issues #1903 and
 * #1927: it mishandles the empty keys of a v2 "file tree"), so it cannot fetch what the
 * mount publishes (DESIGN.md §5 makes every published file a hybrid torrent).
 */
#include "drive_util.h"
#include "fixture.h"

#include <swarm.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir, *home, *mnt;
static char id[LEDGER_HEX_LEN];

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("interop", &dir), 0);
	ck_assert_int_ge(asprintf(&home, "%s/home", dir), 0);
	ck_assert_int_ge(asprintf(&mnt, "%s/mnt", dir), 0);
	ck_assert_int_eq(itest_drive_create(home, "team", "default", id), 0);
}

static void teardown(void)
{
	if (fixture_is_mounted(mnt)) {
		char *argv[] = { "fusermount3", "-u", "-z", mnt, NULL };
		fixture_run(argv, 10000, NULL);
	}
	fixture_tmpdir_remove(dir);
	free(dir);
	free(home);
	free(mnt);
}

START_TEST(standard_client_downloads_a_published_file_from_its_magnet)
{
	struct fixture_tracker *tr;
	struct fixture_mount *m;
	struct swarm_metainfo *mi;
	char tdir[4096], src[4096], out[4096], v1[41], v2[65], want[65], got[65];
	char *text = NULL, *magnet = NULL;

	snprintf(tdir, sizeof tdir, "%s/tracker", dir);
	ck_assert_int_eq(fixture_tracker_start(tdir, &tr), 0);
	/* The same torrent the mount will make (same name, content and piece length:
	 * hashing is deterministic), so the tracker can allow it before the mount's
	 * first announce. */
	ck_assert_int_ge(asprintf(&text, "%s/src", dir), 0);
	ck_assert_int_eq(mkdir(text, 0755), 0);
	snprintf(src, sizeof src, "%s/movie.bin", text);
	free(text);
	ck_assert_int_eq(fixture_file_random(src, 3 * 1024 * 1024 + 12345, 7), 0);
	ck_assert_int_eq(fixture_file_sha256(src, want), 0);
	ck_assert_int_eq(swarm_metainfo_make(src, NULL, &mi), 0);
	swarm_hex(mi->v1, 20, v1);
	swarm_hex(mi->v2, 32, v2);
	swarm_metainfo_free(mi);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1), 0);
	ck_assert_int_eq(fixture_tracker_allow(tr, v2), 0);

	const char *args[] = { "--no-dht", "--listen", "127.0.0.1:0", "--tracker",
			       fixture_tracker_url(tr), NULL };
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	ck_assert_int_eq(fixture_sh(30000, NULL, "cp '%s' '%s/'", src, mnt), 0);
	for (int i = 0; i < 600; i++) {
		text = NULL;
		fixture_sh(5000, &text, "'%s' status '%s'", getenv("SWARMFS_BIN"), mnt);
		bool done = strstr(text, "publish queue: 0 staged") != NULL;
		free(text);
		if (done)
			break;
		usleep(50000);
	}
	ck_assert_int_eq(fixture_sh(10000, &magnet, "'%s' magnet '%s/movie.bin'", getenv("SWARMFS_BIN"), mnt), 0);
	magnet[strcspn(magnet, "\n")] = '\0';
	ck_assert_msg(strstr(magnet, v1) && strstr(magnet, v2) && strstr(magnet, "&tr=http%3A%2F%2F127.0.0.1"),
		      "magnet: %s", magnet);

	/* by the v1 infohash alone, as a v1-only client asks; then by the whole magnet */
	char v1only[512];
	snprintf(v1only, sizeof v1only, "magnet:?xt=urn:btih:%s&dn=movie.bin&tr=%s", v1,
		 strstr(magnet, "&tr=") + 4);
	const char *const magnets[] = { v1only, magnet };
	for (int i = 0; i < 2; i++) {
		snprintf(out, sizeof out, "%s/client%d", dir, i);
		int rc = fixture_sh(120000, &text, "/usr/bin/python3 '%s/tests/integration/lt_client.py' '%s' '%s' 60",
				    getenv("SWARMFS_SOURCE_DIR"), magnets[i], out);
		ck_assert_msg(rc == 0, "client %d exited %d: %.1500s", i, rc, text);
		free(text);
		snprintf(out, sizeof out, "%s/client%d/movie.bin", dir, i);
		ck_assert_int_eq(fixture_file_sha256(out, got), 0);
		ck_assert_str_eq(got, want);
	}

	char *lines = NULL;
	int n = fixture_mount_unexpected_log(m, NULL, &lines);
	ck_assert_msg(n == 0, "unexpected daemon log lines:\n%.2000s", lines);
	free(lines);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	fixture_tracker_stop(tr);
	free(magnet);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("interop");
	TCase *tc = tcase_create("interop");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, standard_client_downloads_a_published_file_from_its_magnet);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
