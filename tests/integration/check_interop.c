/*
 * Standard clients and the mount: a file published by cp is downloaded completely by an
 * independent client (python3-libtorrent) from the magnet link the mount gives, through a
 * real opentracker on 127.0.0.1, once by the v1 infohash alone (as v1-only clients
 * ask) and once by the whole hybrid magnet, and by aria2c from `swarmfs magnet --v1`;
 * its SHA-256 matches every time.
 *
 * And the other way: aria2c seeds a v1 torrent made by mktorrent, `swarmfs add` imports
 * it into the drive (from the .torrent and from a magnet), and the mount reads it
 * from aria2c.
 *
 * aria2c cannot fetch a hybrid torrent: Debian 12's aria2 1.36.0 drops the empty-string keys of
 * the v2 "file tree" when it re-encodes the info dict, so it announces and checks another v1
 * infohash (aria2 issues #1903 and #1927; the hash it announces is the SHA-1 of the info dict
 * with the file's "" entry emptied). So `swarmfs magnet --v1` offers a v1-only torrent of the
 * same bytes, seeded by the publishing node from its cache file, and aria2c downloads the
 * published file from that magnet.
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
	itest_cleanup(dir, mnt);
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
	/* and its v1-only companion: same name, bytes and piece length */
	struct swarm_make_params v1p = { .kind = SWARM_MAKE_V1, .piece_length = mi->piece_length };
	char v1c[41];

	swarm_metainfo_free(mi);
	ck_assert_int_eq(swarm_metainfo_make(src, &v1p, &mi), 0);
	swarm_hex(mi->v1, 20, v1c);
	swarm_metainfo_free(mi);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1), 0);
	ck_assert_int_eq(fixture_tracker_allow(tr, v2), 0);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1c), 0);

	const char *args[] = {
		"--no-dht", "--listen", "127.0.0.1:0", "--tracker", fixture_tracker_url(tr), NULL
	};
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	ck_assert_int_eq(fixture_sh(30000, NULL, "cp '%s' '%s/'", src, mnt), 0);
	itest_wait_published(mnt);
	ck_assert_int_eq(
	    fixture_sh(10000, &magnet, "'%s' magnet '%s/movie.bin'", getenv("SWARMFS_BIN"), mnt),
	    0);
	magnet[strcspn(magnet, "\n")] = '\0';
	ck_assert_msg(strstr(magnet, v1) && strstr(magnet, v2) &&
	                  strstr(magnet, "&tr=http%3A%2F%2F127.0.0.1"),
	              "magnet: %s", magnet);

	/* by the v1 infohash alone, as a v1-only client asks; then by the whole magnet */
	char v1only[512];
	snprintf(v1only, sizeof v1only, "magnet:?xt=urn:btih:%s&dn=movie.bin&tr=%s", v1,
	         strstr(magnet, "&tr=") + 4);
	const char *const magnets[] = { v1only, magnet };
	for (int i = 0; i < 2; i++) {
		snprintf(out, sizeof out, "%s/client%d", dir, i);
		int rc =
		    fixture_sh(120000, &text,
		               "/usr/bin/python3 '%s/tests/integration/lt_client.py' '%s' '%s' 60",
		               getenv("SWARMFS_SOURCE_DIR"), magnets[i], out);
		ck_assert_msg(rc == 0, "client %d exited %d: %.1500s", i, rc, text);
		free(text);
		snprintf(out, sizeof out, "%s/client%d/movie.bin", dir, i);
		ck_assert_int_eq(fixture_file_sha256(out, got), 0);
		ck_assert_str_eq(got, want);
	}

	/* aria2c, from the v1-only magnet */
	char *mv1 = NULL;
	ck_assert_int_eq(
	    fixture_sh(60000, &mv1, "'%s' magnet --v1 '%s/movie.bin'", getenv("SWARMFS_BIN"), mnt),
	    0);
	mv1[strcspn(mv1, "\n")] = '\0';
	ck_assert_msg(strstr(mv1, v1c) && !strstr(mv1, "btmh"), "v1 magnet: %s", mv1);
	snprintf(out, sizeof out, "%s/aria2c", dir);
	int rc = fixture_sh(120000, &text,
	                    "timeout 90 aria2c --dir='%s' --enable-dht=false --enable-dht6=false "
	                    "--bt-enable-lpd=false --enable-peer-exchange=false --seed-time=0 "
	                    "--summary-interval=0 '%s'",
	                    out, mv1);
	ck_assert_msg(rc == 0, "aria2c exited %d: %.1500s", rc, text);
	free(text);
	snprintf(out, sizeof out, "%s/aria2c/movie.bin", dir);
	ck_assert_int_eq(fixture_file_sha256(out, got), 0);
	ck_assert_str_eq(got, want);
	free(mv1);

	char *lines = NULL;
	int n = fixture_mount_unexpected_log(m, NULL, &lines);
	ck_assert_msg(n == 0, "unexpected daemon log lines:\n%.2000s", lines);
	free(lines);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	fixture_tracker_stop(tr);
	free(magnet);
}
END_TEST

START_TEST(swarmfs_add_reads_what_aria2c_seeds)
{
	struct fixture_tracker *tr;
	struct fixture_mount *m;
	struct fixture_proc *seeder;
	char tdir[4096], seed[4096], path[8300], tfile[4096], want[65], v1[41], *out = NULL;
	char *bin = getenv("SWARMFS_BIN");
	uint16_t port;

	snprintf(tdir, sizeof tdir, "%s/tracker", dir);
	ck_assert_int_eq(fixture_tracker_start(tdir, &tr), 0);
	snprintf(seed, sizeof seed, "%s/seed", dir);
	ck_assert_int_eq(mkdir(seed, 0755), 0);
	snprintf(path, sizeof path, "%s/song.flac", seed);
	ck_assert_int_eq(fixture_file_random(path, 5 * 1024 * 1024 + 777, 21), 0);
	ck_assert_int_eq(fixture_file_sha256(path, want), 0);
	snprintf(tfile, sizeof tfile, "%s/song.torrent", dir);
	ck_assert_int_eq(fixture_sh(30000, &out, "mktorrent -a '%s' -l 18 -o '%s' '%s'",
	                            fixture_tracker_url(tr), tfile, path),
	                 0);
	free(out);
	ck_assert_int_eq(
	    fixture_sh(10000, &out, "aria2c -S '%s' | awk '/^Info Hash:/ {print $3}'", tfile), 0);
	snprintf(v1, sizeof v1, "%.40s", out);
	free(out);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1), 0);

	/* aria2c seeds it (checking the file it has), on loopback only */
	char log[4096];
	ck_assert_int_eq(fixture_port_free(&port), 0);
	snprintf(log, sizeof log, "%s/aria2c-seed.log", dir);
	itest_aria2c_seed(seed, tfile, port, log, &seeder);

	const char *args[] = {
		"--no-dht",       "--listen", "127.0.0.1:0", "--tracker", fixture_tracker_url(tr),
		"--read-timeout", "20",       NULL
	};
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	ck_assert_int_eq(fixture_sh(10000, NULL, "mkdir '%s/imports'", mnt), 0);
	/* by magnet first, on a node that has never seen the torrent: its metadata
	 * comes from aria2c (BEP 9) */
	char magnet[512];
	snprintf(magnet, sizeof magnet, "magnet:?xt=urn:btih:%s&tr=%s", v1,
	         fixture_tracker_url(tr));
	int rc =
	    fixture_sh(60000, &out, "'%s' add '%s' '%s' /imports/again.flac", bin, mnt, magnet);
	ck_assert_msg(rc == 0, "swarmfs add of a magnet: %s", out);
	free(out);
	char got[65];
	snprintf(path, sizeof path, "%s/imports/again.flac", mnt);
	ck_assert_int_eq(fixture_file_sha256(path, got), 0);
	ck_assert_str_eq(got, want);
	/* then from the .torrent file, by drive name */

	rc = fixture_sh(30000, &out, "'%s' add --home '%s' team '%s' /imports/song.flac", bin, home,
	                tfile);
	ck_assert_msg(rc == 0, "swarmfs add: %s", out);
	free(out);
	snprintf(path, sizeof path, "%s/imports/song.flac", mnt);
	rc = fixture_sh(90000, &out, "sha256sum < '%s'", path);
	ck_assert_msg(rc == 0 && !strncmp(out, want, 64), "read through the mount: %s", out);
	free(out);
	out = NULL;
	ck_assert_int_eq(
	    fixture_sh(10000, &out,
	               "getfattr --absolute-names --only-values -n user.swarmfs.magnet '%s'", path),
	    0);
	ck_assert_msg(!strncmp(out, "magnet:?xt=urn:btih:", 20) && strstr(out, v1) &&
	                  !strstr(out, "btmh"),
	              "v1-only magnet: %s", out);
	free(out);

	/* what was tried: not a torrent, a taken path, no mount (a torrent of two files
	 * is a directory now: check_torrents) */
	snprintf(path, sizeof path, "%s/junk.torrent", dir);
	FILE *f = fopen(path, "w");
	fputs("d4:infod4:name1:xee", f);
	fclose(f);
	ck_assert_int_eq(
	    fixture_sh(10000, &out, "'%s' add '%s' '%s' /imports/junk", bin, mnt, path), 3);
	ck_assert_msg(strstr(out, "not a torrent file"), "%s", out);
	free(out);
	ck_assert_int_eq(
	    fixture_sh(30000, NULL,
	               "mkdir -p '%s/two' && echo a > '%s/two/a' && echo b > '%s/two/b' && "
	               "mktorrent -a http://127.0.0.1:1/announce -o '%s/two.torrent' '%s/two'",
	               dir, dir, dir, dir, dir),
	    0);
	ck_assert_int_eq(
	    fixture_sh(10000, &out, "'%s' add '%s' '%s/two.torrent' /imports/two", bin, mnt, dir),
	    0);
	free(out);
	ck_assert_int_eq(fixture_sh(10000, NULL, "test -f '%s/imports/two/b'", mnt), 0);
	ck_assert_int_eq(
	    fixture_sh(10000, &out, "'%s' add '%s' '%s' /imports/song.flac", bin, mnt, tfile), 1);
	ck_assert_msg(strstr(out, "exists already"), "%s", out);
	free(out);
	ck_assert_int_eq(fixture_sh(10000, &out, "'%s' add nosuchdrive '%s' /x", bin, tfile), 1);
	ck_assert_msg(strstr(out, "not mounted"), "%s", out);
	free(out);

	const char *allowed[] = { "swarmfs add:", NULL };
	char *lines = NULL;
	int n = fixture_mount_unexpected_log(m, allowed, &lines);
	ck_assert_msg(n == 0, "unexpected daemon log lines:\n%.2000s", lines);
	free(lines);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	fixture_proc_stop(seeder, 5000);
	fixture_tracker_stop(tr);
}
END_TEST

/* The cache file of a published file: the one data file of its length. */
static void cache_file_of(uint64_t len, char *out, size_t size)
{
	char *path = NULL;

	ck_assert_int_eq(fixture_sh(10000, &path, "find '%s/drives' -path '*/data/*' -size %lluc",
	                            home, (unsigned long long)len),
	                 0);
	ck_assert_msg(path && strchr(path, '\n') == strrchr(path, '\n') && strlen(path) > 1,
	              "not exactly one cache file of %llu bytes: '%s'", (unsigned long long)len,
	              path);
	path[strcspn(path, "\n")] = '\0';
	snprintf(out, size, "%s", path);
	free(path);
}

static void flip_byte(const char *path, uint64_t off)
{
	ck_assert_int_eq(fixture_sh(10000, NULL,
	                            "python3 -c 'import os; fd = os.open(\"%s\", os.O_RDWR); "
	                            "b = os.pread(fd, 1, %llu); "
	                            "os.pwrite(fd, bytes([b[0] ^ 0x40]), %llu)'",
	                            path, (unsigned long long)off, (unsigned long long)off),
	                 0);
}

static int count_in_log(struct fixture_mount *m, const char *what)
{
	char *out = NULL;
	int n;

	fixture_sh(5000, &out, "grep -c '%s' '%s'", what, fixture_mount_log(m));
	n = out ? atoi(out) : 0;
	free(out);
	return n;
}

/* What was tried: a byte of a published file flipped in the cache file on disk while
 * the mount is up and seeding it (after publishing hashed every block into memory).
 * A local reader must get EIO, never the changed byte; a standard client downloading
 * the file must never be sent the changed piece (it fails no hash: it is withheld). */
START_TEST(byte_flipped_in_the_cache_reaches_no_reader_and_no_peer)
{
	const uint64_t size = 4 * 1024 * 1024 + 4321;
	struct fixture_tracker *tr;
	struct fixture_mount *m;
	struct swarm_metainfo *mi;
	char tdir[4096], src[4096], out[4096], cfile[4096], v1[41], v2[65];
	char *text = NULL, *magnet = NULL;
	uint32_t plen, npieces;

	snprintf(tdir, sizeof tdir, "%s/tracker", dir);
	ck_assert_int_eq(fixture_tracker_start(tdir, &tr), 0);
	snprintf(src, sizeof src, "%s/src", dir);
	ck_assert_int_eq(mkdir(src, 0755), 0);
	snprintf(src, sizeof src, "%s/src/film.bin", dir);
	ck_assert_int_eq(fixture_file_random(src, size, 9), 0);
	ck_assert_int_eq(swarm_metainfo_make(src, NULL, &mi), 0);
	swarm_hex(mi->v1, 20, v1);
	swarm_hex(mi->v2, 32, v2);
	plen = mi->piece_length;
	npieces = mi->num_pieces;
	swarm_metainfo_free(mi);
	ck_assert_uint_ge(npieces, 4);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1), 0);
	ck_assert_int_eq(fixture_tracker_allow(tr, v2), 0);

	const char *args[] = {
		"--no-dht",       "--listen", "127.0.0.1:0", "--tracker", fixture_tracker_url(tr),
		"--read-timeout", "3",        NULL
	};
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	ck_assert_int_eq(fixture_sh(30000, NULL, "cp '%s' '%s/'", src, mnt), 0);
	itest_wait_published(mnt);
	cache_file_of(size, cfile, sizeof cfile);

	/* a reader: piece 1 changed under the mount. The kernel may hold the file's pages
	 * from the copy: they go first, so the read reaches the daemon. */
	flip_byte(cfile, (uint64_t)plen + 100);
	int rc = fixture_sh(30000, &text,
	                    "python3 -c 'import os; fd = os.open(\"%s/film.bin\", os.O_RDONLY); "
	                    "os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); "
	                    "os.pread(fd, 4096, %u)'",
	                    mnt, plen);
	ck_assert_msg(rc != 0 && strstr(text, "Input/output error"),
	              "the read of a changed piece did not fail with EIO (exit %d): %s", rc, text);
	free(text);
	ck_assert_msg(count_in_log(m, "changed on disk since it was verified") == 1,
	              "the damage was not logged once");
	/* the rest of the file still reads */
	ck_assert_int_eq(fixture_sh(30000, NULL, "cmp -n %u '%s/film.bin' '%s'", plen, mnt, src),
	                 0);

	/* a peer: piece 3 changed, which nobody here reads; only an upload meets it */
	flip_byte(cfile, 3ULL * plen + 7);
	ck_assert_int_eq(
	    fixture_sh(10000, &magnet, "'%s' magnet '%s/film.bin'", getenv("SWARMFS_BIN"), mnt), 0);
	magnet[strcspn(magnet, "\n")] = '\0';
	snprintf(out, sizeof out, "%s/client", dir);
	rc = fixture_sh(120000, &text,
	                "/usr/bin/python3 '%s/tests/integration/lt_client.py' '%s' '%s' 20",
	                getenv("SWARMFS_SOURCE_DIR"), magnet, out);
	ck_assert_msg(rc == 1, "the client finished (exit %d) with two pieces damaged: %s", rc,
	              text);
	/* every other piece came, the changed ones never did, and nothing it got was bad */
	char want[96];
	snprintf(want, sizeof want, "pieces %u failed_bytes 0", npieces - 2);
	ck_assert_msg(strstr(text, want), "client: %s (wanted '%s')", text, want);
	free(text);
	ck_assert_msg(count_in_log(m, "changed on disk since it was verified") == 2,
	              "the upload's damage was not logged once");

	/* the damage, and the reader's EIO (published content is read from the cache
	 * alone: nobody else has it to fetch again) */
	const char *allowed[] = { "changed on disk since it was verified", "read at ", "read of ",
		                  NULL };
	itest_stop_clean(m, allowed);
	fixture_tracker_stop(tr);
	free(magnet);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		standard_client_downloads_a_published_file_from_its_magnet,
		swarmfs_add_reads_what_aria2c_seeds,
		byte_flipped_in_the_cache_reaches_no_reader_and_no_peer,
		NULL,
	};

	return itest_main("interop", 180, setup, teardown, tests);
}
