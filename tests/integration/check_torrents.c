/*
 * Issue 14: any torrent in a drive. `swarmfs add` of torrents of several files, seeded
 * by standard clients on 127.0.0.1 (given to the mount as --peer, no tracker):
 *   - a v1 torrent of three files made by mktorrent, seeded by aria2c: its pieces
 *     straddle the files, so a file's record cites the torrent, the file's index and
 *     offset, and a read of the middle file needs the two pieces it shares with its
 *     neighbours, and no other;
 *   - a hybrid torrent of three files made and seeded by python3-libtorrent: each file
 *     piece-aligned, cited by its pieces root; a read of the middle file fetches none
 *     of its neighbours' bytes.
 * Both are compared with `diff -r` against the source. And every error of the
 * command, by exit code and message.
 */
#include "drive_util.h"
#include "fixture.h"
#include "netns_util.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE (64 * 1024)

static char *dir, *home, *mnt;
static char id[LEDGER_HEX_LEN];

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("torrents", &dir), 0);
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

/* Three files whose sizes put every boundary inside a piece. */
static void make_tree(const char *root)
{
	static const uint64_t sizes[] = { 3 * PIECE + 1000, 5 * PIECE + 2345, 2 * PIECE + 77 };
	static const char *const names[] = { "a.bin", "b.bin", "c.bin" };
	char p[4200];

	ck_assert_int_eq(mkdir(root, 0755), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", root, names[i]);
		ck_assert_int_eq(fixture_file_random(p, sizes[i], 40 + (uint32_t)i), 0);
	}
}

/* make_tree at root, and its v1 torrent (mktorrent, 64 KiB pieces) at tfile. */
static void make_v1_tree(const char *root, const char *tfile)
{
	make_tree(root);
	free(itest_run(30000, "mktorrent -a http://127.0.0.1:1/announce -l 16 -o '%s' '%s'", tfile,
	               root));
}

static uint64_t cached(const char *path)
{
	char *out = itest_run(10000,
	                      "getfattr --absolute-names --only-values -n "
	                      "user.swarmfs.cached '%s'",
	                      path);
	uint64_t n = strtoull(out, NULL, 10);

	free(out);
	return n;
}

static struct fixture_mount *mount_with_peer(uint16_t port)
{
	struct fixture_mount *m;
	char peer[64];

	snprintf(peer, sizeof peer, "127.0.0.1:%u", port);
	const char *args[] = { "--no-dht", "--listen",       "127.0.0.1:0", "--peer",
		               peer,       "--read-timeout", "30",          NULL };
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	return m;
}

START_TEST(v1_torrent_of_three_files_seeded_by_aria2c)
{
	struct fixture_proc *seeder;
	struct fixture_mount *m;
	char src[4096], tfile[4096], p[8300], log[4096];
	char *bin = getenv("SWARMFS_BIN"), *out;
	uint16_t port;

	snprintf(src, sizeof src, "%s/album", dir);
	snprintf(tfile, sizeof tfile, "%s/album.torrent", dir);
	make_v1_tree(src, tfile);
	ck_assert_int_eq(fixture_port_free(&port), 0);
	snprintf(log, sizeof log, "%s/aria2c-seed.log", dir);
	itest_aria2c_seed(dir, tfile, port, log, &seeder);
	m = mount_with_peer(port);
	free(itest_run(10000, "mkdir '%s/imported'", mnt));

	/* "/imported/": into it, under the torrent's own name */
	out = itest_run(60000, "'%s' add '%s' '%s' /imported/", bin, mnt, tfile);
	free(out);
	free(itest_run(10000, "ls -R '%s/imported'", mnt));
	/* the middle file alone: its own pieces and the two it shares */
	snprintf(p, sizeof p, "%s/imported/album/b.bin", mnt);
	free(itest_run(90000, "cmp '%s/b.bin' '%s'", src, p));
	ck_assert_uint_eq(cached(p), 5 * PIECE + 2345);
	snprintf(p, sizeof p, "%s/imported/album/a.bin", mnt);
	uint64_t a = cached(p);
	ck_assert_msg(a > 0 && a < PIECE,
	              "a.bin: %llu bytes cached (want only the piece "
	              "it shares with b.bin)",
	              (unsigned long long)a);
	snprintf(p, sizeof p, "%s/imported/album/c.bin", mnt);
	uint64_t c = cached(p);
	ck_assert_msg(c > 0 && c < PIECE,
	              "c.bin: %llu bytes cached (want only the piece "
	              "it shares with b.bin)",
	              (unsigned long long)c);
	/* then all of it */
	free(itest_run(120000, "diff -r '%s' '%s/imported/album'", src, mnt));
	out = itest_run(10000, "'%s' log '%s/imported/album/c.bin'", bin, mnt);
	ck_assert_msg(strstr(out, "claim"), "%s", out);
	free(out);
	itest_stop_clean(m, NULL);

	/* what was tried: a signed record that cites b.bin's torrent and index with
	 * an offset one byte off (its content cached whole here): it would read the
	 * torrent's bytes shifted. The torrent says otherwise: the file is not served. */
	struct ledger *l;
	struct ledger_entry e;
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = "/imported/shifted.bin" };

	ck_assert_int_eq(itest_drive_open(home, id, "default", &l), 0);
	ck_assert_int_eq(ledger_lookup(l, "/imported/album/b.bin", &e), 0);
	ck_assert_int_eq(ledger_record_content(l, e.record_id, &op.content), 0);
	ck_assert(op.content.has_file);
	op.content.file_offset += 1;
	ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
	itest_drive_close(l);
	m = mount_with_peer(port);
	snprintf(p, sizeof p, "%s/imported/shifted.bin", mnt);
	ck_assert_int_ne(fixture_sh(30000, NULL, "cat '%s' > /dev/null", p), 0);
	free(itest_run(60000, "cmp '%s/b.bin' '%s/imported/album/b.bin'", src, mnt));
	const char *allowed[] = { "does not match its record", NULL };
	itest_stop_clean(m, allowed);
	fixture_proc_stop(seeder, 5000);
}
END_TEST

START_TEST(hybrid_torrent_of_three_files_seeded_by_libtorrent)
{
	struct fixture_proc *seeder;
	struct fixture_mount *m;
	char src[4096], tfile[4096], p[8300], log[4096], script[4200];
	char *bin = getenv("SWARMFS_BIN"), *out = NULL;
	unsigned port = 0;

	snprintf(src, sizeof src, "%s/set", dir);
	make_tree(src);
	snprintf(tfile, sizeof tfile, "%s/set.torrent", dir);
	snprintf(log, sizeof log, "%s/lt-seed.log", dir);
	snprintf(script, sizeof script, "%s/tests/integration/lt_seed.py",
	         getenv("SWARMFS_SOURCE_DIR"));
	char plen[16];
	snprintf(plen, sizeof plen, "%d", PIECE);
	char *argv[] = { "/usr/bin/python3", script, src, tfile, plen, NULL };
	ck_assert_int_eq(fixture_proc_start(argv, log, &seeder), 0);
	port = itest_log_number(log, "seeding %u", seeder);
	ck_assert_msg(port, "the seeder did not start within 30 s: see %s", log);
	m = mount_with_peer((uint16_t)port);

	/* "/x" for a torrent of several files: a directory x of its tree */
	free(itest_run(60000, "'%s' add '%s' '%s' /x", bin, mnt, tfile));
	snprintf(p, sizeof p, "%s/x/b.bin", mnt);
	free(itest_run(90000, "cmp '%s/b.bin' '%s'", src, p));
	ck_assert_uint_eq(cached(p), 5 * PIECE + 2345);
	/* piece-aligned files: nothing of the neighbours */
	snprintf(p, sizeof p, "%s/x/a.bin", mnt);
	ck_assert_uint_eq(cached(p), 0);
	snprintf(p, sizeof p, "%s/x/c.bin", mnt);
	ck_assert_uint_eq(cached(p), 0);
	/* truncate of content this node does not hold yet (a.bin and c.bin, unread), by
	 * truncate -s (open O_WRONLY, ftruncate) and truncate(2): the kept part comes from
	 * the swarm with the request parked, then the new version, cut or zero-extended,
	 * is published */
	/* a bare O_WRONLY of it copies nothing: a write through it is refused, not
	 * applied to a partial copy */
	char *w = itest_run(10000,
	                    "/usr/bin/python3 -c 'import os, sys\n"
	                    "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
	                    "try: os.pwrite(fd, b\"x\", 0); print(\"written\")\n"
	                    "except OSError as e: print(e.strerror)' '%s'",
	                    p);
	ck_assert_str_eq(w, "Operation not supported\n");
	free(w);
	ck_assert_uint_eq(cached(p), 0);
	free(itest_run(60000, "truncate -s %d '%s'", PIECE + 10, p)); /* open, ftruncate */
	snprintf(p, sizeof p, "%s/x/a.bin", mnt);
	ck_assert_int_eq(truncate(p, 3 * PIECE + 3000), 0);
	itest_wait_published(mnt);
	free(itest_run(30000, "head -c %d '%s/c.bin' | cmp - '%s/x/c.bin'", PIECE + 10, src, mnt));
	free(itest_run(30000,
	               "cp '%s/a.bin' '%s/a.want' && truncate -s %d '%s/a.want' && "
	               "cmp '%s/a.want' '%s/x/a.bin'",
	               src, dir, 3 * PIECE + 3000, dir, dir, mnt));
	free(itest_run(120000, "diff -r -x a.bin -x c.bin '%s' '%s/x'", src, mnt));
	out = itest_run(10000,
	                "getfattr --absolute-names --only-values -n user.swarmfs.root "
	                "'%s/x/a.bin'",
	                mnt);
	ck_assert_msg(strlen(out) == 64 && strspn(out, "0") != 64, "a pieces root: %s", out);
	free(out);
	itest_stop_clean(m, NULL);
	fixture_proc_stop(seeder, 5000);
}
END_TEST

/* Run `swarmfs add ...` and check its exit code and that its output holds want. */
static void add_fails(int code, const char *want, const char *source, const char *dest)
{
	char *out = NULL;
	int rc = fixture_sh(60000, &out, "'%s' add '%s' '%s' '%s'", getenv("SWARMFS_BIN"), mnt,
	                    source, dest);

	ck_assert_msg(rc == code && out && strstr(out, want),
	              "add %s %s: exit %d (want %d), output: %s (want '%s')", source, dest, rc,
	              code, out ? out : "", want);
	free(out);
}

START_TEST(every_error_is_named_with_its_exit_code)
{
	struct fixture_mount *m;
	char p[4200], tfile[4200], msg[512];
	uint16_t port;
	FILE *f;

	/* a peer that is no one: nothing listens there */
	ck_assert_int_eq(fixture_port_free(&port), 0);
	m = mount_with_peer(port);
	/* what was tried: a truncated .torrent (the bencode breaks at byte 7, the x) */
	snprintf(p, sizeof p, "%s/cut.torrent", dir);
	f = fopen(p, "w");
	fputs("d4:infoxe", f);
	fclose(f);
	add_fails(3, "not a torrent file (bad bencode at byte 7)", p, "/x");
	/* well-formed bencode that is no torrent */
	snprintf(p, sizeof p, "%s/junk.torrent", dir);
	f = fopen(p, "w");
	fputs("d4:infod4:name1:xee", f);
	fclose(f);
	add_fails(3, "not a torrent file (", p, "/x");
	/* a magnet whose hash is no hash */
	add_fails(4, "magnet: 'zzzz' is not a 40-hex or 32-base32 btih", "magnet:?xt=urn:btih:zzzz",
	          "/x");
	/* a missing destination directory is blamed, not the torrent */
	snprintf(tfile, sizeof tfile, "%s/one", dir);
	ck_assert_int_eq(fixture_file_random(tfile, 100000, 3), 0);
	free(itest_run(30000, "mktorrent -a http://127.0.0.1:1/announce -o '%s.torrent' '%s'",
	               tfile, tfile));
	strcat(tfile, ".torrent");
	add_fails(6, "/imported does not exist", tfile, "/imported/one");
	add_fails(6, "/imported does not exist", tfile, "/imported/");
	/* a destination ending in '/' works; a second time it is taken */
	free(itest_run(10000, "mkdir '%s/imported'", mnt));
	free(itest_run(30000, "'%s' add '%s' '%s' /imported/", getenv("SWARMFS_BIN"), mnt, tfile));
	snprintf(p, sizeof p, "%s/imported/one", mnt);
	ck_assert_int_eq(access(p, F_OK), 0);
	add_fails(1, "/imported/one exists already", tfile, "/imported/");
	/* a magnet nobody seeds: the add waits the read timeout (30 s), then fails */
	snprintf(msg, sizeof msg,
	         "no metadata for %s after 30 s (is anyone seeding "
	         "it?)",
	         "0123456789abcdef0123456789abcdef01234567");
	add_fails(5, msg, "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
	          "/imported/");
	/* the waiter says why the magnet's add failed, and add says it again */
	const char *allowed[] = { "swarmfs add:", "nothing from the swarm within", NULL };
	itest_stop_clean(m, allowed);
}
END_TEST

/* swarmfs add into a private drive (one node; check_ciphertext has a second member read
 * what an add published). Claiming a torrent's plaintext would publish it unencrypted
 * on a drive whose swarm must carry only ciphertext, so the content is fetched whole and
 * each file published encrypted, as a copy. Tried: a v1 .torrent (mktorrent) seeded by
 * aria2c, added by file and again by magnet: the copies read back equal; their records
 * name ciphertext torrents, never the source's infohash; no .torrent the node keeps
 * names the file; nothing is left in staging. A magnet nobody seeds fails with exit 5
 * and its reason after the read timeout; a .torrent whose seeder is gone fails naming
 * the stall, and nothing is claimed. */
START_TEST(add_into_a_private_drive_publishes_encrypted_copies)
{
	struct fixture_proc *seeder;
	struct fixture_mount *m;
	char home_p[4200], mnt_p[4200], data[4200], tfile[4300], log[4200], peer[64];
	char *ih, *out = NULL, *bin = getenv("SWARMFS_BIN");
	uint16_t port;

	snprintf(home_p, sizeof home_p, "%s/home-p", dir);
	snprintf(mnt_p, sizeof mnt_p, "%s/mnt-p", dir);
	/* as a user makes one (its first epoch key with it) */
	out = itest_run(30000, "'%s' init --home '%s' --name vault", bin, home_p);
	ck_assert_msg(strstr(out, "access: private"), "init: %s", out);
	free(out);
	snprintf(data, sizeof data, "%s/song.bin", dir);
	ck_assert_int_eq(fixture_file_random(data, 300000, 9), 0);
	snprintf(tfile, sizeof tfile, "%s.torrent", data);
	free(
	    itest_run(30000, "mktorrent -a http://127.0.0.1:1/announce -o '%s' '%s'", tfile, data));
	ih = itest_run(10000, "aria2c -S '%s' | awk '/^Info Hash:/ {printf \"%%s\", $3}'", tfile);
	ck_assert_int_eq(strlen(ih), 40);
	ck_assert_int_eq(fixture_port_free(&port), 0);
	snprintf(log, sizeof log, "%s/aria2c-seed.log", dir);
	itest_aria2c_seed(dir, tfile, port, log, &seeder);
	snprintf(peer, sizeof peer, "127.0.0.1:%u", port);
	const char *args[] = { "--no-dht", "--listen",       "127.0.0.1:0", "--peer",
		               peer,       "--read-timeout", "8",           NULL };
	ck_assert_int_eq(fixture_mount_start(home_p, "vault", mnt_p, args, &m), 0);

	out = itest_run(120000, "'%s' add '%s' '%s' /song.bin", bin, mnt_p, tfile);
	free(out);
	out = itest_run(120000, "'%s' add '%s' 'magnet:?xt=urn:btih:%s&x.pe=%s' /again.bin", bin,
	                mnt_p, ih, peer);
	free(out);
	itest_wait_published(mnt_p);
	/* a v1 torrent of three files whose pieces straddle them (mktorrent, aria2c), by
	 * magnet into the root under its own name: each file whole and equal */
	struct fixture_proc *seeder3;
	char album[4200], t3[4300], ih3[64], peer3[64], log3[4300];
	uint16_t port3;
	snprintf(album, sizeof album, "%s/album", dir);
	snprintf(t3, sizeof t3, "%s/album.torrent", dir);
	make_v1_tree(album, t3);
	out = itest_run(10000, "aria2c -S '%s' | awk '/^Info Hash:/ {printf \"%%s\", $3}'", t3);
	snprintf(ih3, sizeof ih3, "%s", out);
	free(out);
	ck_assert_int_eq(fixture_port_free(&port3), 0);
	snprintf(log3, sizeof log3, "%s/aria2c-album.log", dir);
	itest_aria2c_seed(dir, t3, port3, log3, &seeder3);
	snprintf(peer3, sizeof peer3, "127.0.0.1:%u", port3);
	free(itest_run(120000, "'%s' add '%s' 'magnet:?xt=urn:btih:%s&x.pe=%s' /", bin, mnt_p, ih3,
	               peer3));
	itest_wait_published(mnt_p);
	free(itest_run(60000, "diff -r '%s' '%s/album'", album, mnt_p));
	fixture_proc_stop(seeder3, 5000);
	free(itest_run(30000, "cmp '%s' '%s/song.bin' && cmp '%s' '%s/again.bin'", data, mnt_p,
	               data, mnt_p));
	const char *names[] = { "song.bin", "again.bin" };
	char *ih2[2];
	for (int i = 0; i < 2; i++) {
		out = itest_run(10000,
		                "getfattr --absolute-names --only-values -n user.swarmfs.magnet "
		                "'%s/%s'",
		                mnt_p, names[i]);
		ck_assert_msg(!strstr(out, ih), "the copy is the plaintext torrent: %s", out);
		free(out);
		ih2[i] = itest_run(10000,
		                   "getfattr --absolute-names --only-values -n "
		                   "user.swarmfs.infohash '%s/%s'",
		                   mnt_p, names[i]);
	}
	/* each copy its own file key: two ciphertexts of one plaintext */
	ck_assert_str_ne(ih2[0], ih2[1]);
	free(ih2[0]);
	free(ih2[1]);
	/* no .torrent names the files; the downloads are gone from staging */
	free(itest_run(10000, "ls '%s'/drives/*/torrents | grep -q '[.]torrent$'", home_p));
	ck_assert_int_ne(
	    fixture_sh(
	        10000, NULL,
	        "grep -rqa -e song.bin -e again.bin -e album -e b.bin '%s'/drives/*/torrents",
	        home_p),
	    0);
	out = itest_run(10000, "find '%s/drives' -path '*staging/import-*' | wc -l", home_p);
	ck_assert_str_eq(out, "0\n");
	free(out);

	/* a magnet nobody seeds: the read timeout (8 s), then exit 5 with the reason */
	ck_assert_int_eq(
	    fixture_sh(60000, &out,
	               "'%s' add '%s' "
	               "'magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567' "
	               "/nobody.bin",
	               bin, mnt_p),
	    5);
	ck_assert_msg(strstr(out, "no metadata for 0123456789abcdef0123456789abcdef01234567 "
	                          "after 8 s"),
	              "%s", out);
	free(out);
	/* the seeder gone: a new torrent's content never comes, and the add says so */
	fixture_proc_stop(seeder, 5000);
	snprintf(data, sizeof data, "%s/lost.bin", dir);
	ck_assert_int_eq(fixture_file_random(data, 200000, 10), 0);
	snprintf(tfile, sizeof tfile, "%s.torrent", data);
	free(
	    itest_run(30000, "mktorrent -a http://127.0.0.1:1/announce -o '%s' '%s'", tfile, data));
	ck_assert_int_eq(fixture_sh(60000, &out, "'%s' add '%s' '%s' /lost.bin", bin, mnt_p, tfile),
	                 1);
	ck_assert_msg(strstr(out, "from its swarm within 8 s (0 of 200000 bytes fetched"), "%s",
	              out);
	free(out);
	ck_assert_int_ne(access(strcat(strcpy(log, mnt_p), "/lost.bin"), F_OK), 0);
	out = itest_run(10000, "find '%s/drives' -path '*staging/import-*' | wc -l", home_p);
	ck_assert_str_eq(out, "0\n");
	free(out);
	/* Ctrl-C of an add that waits for content, then an unmount during another: each
	 * stops the fetch at once (not at the 8 s stall) and deletes its download */
	struct fixture_proc *adder;
	char addlog[4200];
	snprintf(addlog, sizeof addlog, "%s/add.log", dir);
	char *add_argv[] = { bin, "add", mnt_p, tfile, "/lost2.bin", NULL };
	ck_assert_int_eq(fixture_proc_start(add_argv, addlog, &adder), 0);
	FIXTURE_WAIT(fixture_sh(5000, NULL,
	                        "find '%s/drives' -path '*staging/import-*' | grep -q .",
	                        home_p) == 0,
	             10000, "the add made no download directory");
	ck_assert_int_eq(fixture_proc_signal(adder, SIGINT), 0);
	ck_assert_int_ne(fixture_proc_wait(adder, 10000), -ETIMEDOUT);
	fixture_proc_stop(adder, 1000);
	const char *intr[] = { "the add of", "lost.bin.torrent was interrupted", NULL };
	itest_wait_log(fixture_mount_log(m), intr, 30);
	FIXTURE_WAIT(fixture_sh(5000, NULL,
	                        "find '%s/drives' -path '*staging/import-*' | grep -q .",
	                        home_p) != 0,
	             10000, "the interrupted add left its download");
	ck_assert_int_eq(fixture_proc_start(add_argv, addlog, &adder), 0);
	FIXTURE_WAIT(fixture_sh(5000, NULL,
	                        "find '%s/drives' -path '*staging/import-*' | grep -q .",
	                        home_p) == 0,
	             10000, "the add made no download directory");
	/* the daemon told to stop (as Ctrl-C of a mount in the foreground): its loop ends
	 * and the add is answered EINTR before the unmount */
	ck_assert_int_eq(kill(fixture_mount_pid(m), SIGTERM), 0);
	int rc = fixture_proc_wait(adder, 10000);
	ck_assert_msg(rc != 0 && rc != -ETIMEDOUT, "the add during the unmount: %d", rc);
	fixture_proc_stop(adder, 1000);
	const char *allowed[] = { "swarmfs add:", NULL };
	itest_stop_clean(m, allowed);
	out = itest_run(10000, "find '%s/drives' -path '*staging/import-*' | wc -l", home_p);
	ck_assert_str_eq(out, "0\n");
	free(out);
	free(ih);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		v1_torrent_of_three_files_seeded_by_aria2c,
		hybrid_torrent_of_three_files_seeded_by_libtorrent,
		every_error_is_named_with_its_exit_code,
		add_into_a_private_drive_publishes_encrypted_copies,
		NULL,
	};

	return itest_main("torrents", 240, setup, teardown, tests);
}
