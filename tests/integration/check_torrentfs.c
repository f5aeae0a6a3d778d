/*
 * Issue 14: `swarmfs mount FILE.torrent|MAGNET MOUNTPOINT`, one torrent read-only with
 * no drive and no key. aria2c seeds a v1 torrent of three files (one a video made by
 * ffmpeg's testsrc) on 127.0.0.1; the mount is given its magnet, with the seeder as a
 * peer (x.pe=): `ls -R`, `cmp` of each file, ffprobe and a seek of ffmpeg into the
 * video, the xattrs. A read that cannot be served (no seeder) does not keep the mount
 * from going: SIGTERM ends the daemon within 2 s while the read waits. And the
 * errors of a bad torrent argument, by exit code and message.
 */
#include "drive_util.h"
#include "fixture.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir, *home, *mnt;

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("torrentfs", &dir), 0);
	ck_assert_int_ge(asprintf(&home, "%s/home", dir), 0);
	ck_assert_int_ge(asprintf(&mnt, "%s/mnt", dir), 0);
	ck_assert_int_eq(mkdir(home, 0700), 0);
}

static void teardown(void)
{
	itest_cleanup(dir, mnt);
	free(dir);
	free(home);
	free(mnt);
}

/* show/{a.bin, video.mp4, c.bin} and its v1 torrent; the infohash into ih. */
static void make_show(char *tfile, size_t n, char ih[41])
{
	char p[4200], *out;

	snprintf(p, sizeof p, "%s/show", dir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/show/a.bin", dir);
	ck_assert_int_eq(fixture_file_random(p, 200000, 5), 0);
	snprintf(p, sizeof p, "%s/show/c.bin", dir);
	ck_assert_int_eq(fixture_file_random(p, 150001, 6), 0);
	free(itest_run(120000,
	               "ffmpeg -nostdin -loglevel error -f lavfi -i "
	               "testsrc=duration=20:size=320x240:rate=25 -c:v mpeg4 -q:v 4 "
	               "'%s/show/video.mp4'",
	               dir));
	snprintf(tfile, n, "%s/show.torrent", dir);
	free(itest_run(30000, "mktorrent -a http://127.0.0.1:1/announce -l 15 -o '%s' '%s/show'",
	               tfile, dir));
	out = itest_run(10000, "aria2c -S '%s' | awk '/^Info Hash:/ {print $3}'", tfile);
	snprintf(ih, 41, "%.40s", out);
	free(out);
}

START_TEST(magnet_of_three_files_seeded_by_aria2c)
{
	struct fixture_proc *seeder;
	struct fixture_mount *m;
	char tfile[4200], ih[41], magnet[512], log[4200], *out;
	uint16_t port;

	make_show(tfile, sizeof tfile, ih);
	ck_assert_int_eq(fixture_port_free(&port), 0);
	snprintf(log, sizeof log, "%s/aria2c-seed.log", dir);
	itest_aria2c_seed(dir, tfile, port, log, &seeder);
	snprintf(magnet, sizeof magnet, "magnet:?xt=urn:btih:%s&dn=show&x.pe=127.0.0.1:%u", ih,
	         port);
	const char *args[] = {
		"--no-dht", "--listen", "127.0.0.1:0", "--read-timeout", "30", NULL
	};
	ck_assert_int_eq(fixture_mount_start(home, magnet, mnt, args, &m), 0);

	out = itest_run(10000, "ls -R '%s'", mnt);
	ck_assert_msg(strstr(out, "show:") && strstr(out, "a.bin") && strstr(out, "video.mp4") &&
	                  strstr(out, "c.bin"),
	              "ls -R: %s", out);
	free(out);
	/* the video first, as a player would: probe it, then seek into its middle */
	out = itest_run(60000,
	                "ffprobe -v error -show_entries format=duration -of csv=p=0 "
	                "'%s/show/video.mp4'",
	                mnt);
	ck_assert_msg(atof(out) > 19.0, "ffprobe: %s", out);
	free(out);
	free(itest_run(
	    60000, "ffmpeg -nostdin -v error -ss 12 -i '%s/show/video.mp4' -frames:v 1 -f null -",
	    mnt));
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = { "a.bin", "video.mp4", "c.bin" };

		free(itest_run(60000, "cmp '%s/show/%s' '%s/show/%s'", dir, names[i], mnt,
		               names[i]));
	}
	out = itest_run(10000,
	                "getfattr --absolute-names --only-values -n user.swarmfs.infohash "
	                "'%s/show/c.bin'",
	                mnt);
	ck_assert_str_eq(out, ih);
	free(out);
	out = itest_run(10000,
	                "getfattr --absolute-names --only-values -n user.swarmfs.cached "
	                "'%s/show/c.bin'",
	                mnt);
	ck_assert_str_eq(out, "150001");
	free(out);
	/* read-only: nothing can be written */
	ck_assert_int_ne(fixture_sh(10000, NULL, "echo x > '%s/show/new'", mnt), 0);
	ck_assert_int_ne(fixture_sh(10000, NULL, "echo x >> '%s/show/a.bin'", mnt), 0);
	itest_stop_clean(m, NULL);
	fixture_proc_stop(seeder, 5000);
}
END_TEST

START_TEST(a_blocked_read_does_not_hold_the_unmount)
{
	struct fixture_mount *m;
	struct fixture_proc *reader;
	char tfile[4200], ih[41], file[4300], log[4400], peer[64];
	uint16_t port;

	make_show(tfile, sizeof tfile, ih);
	/* a peer that is no one: the read waits (read timeout 600 s) */
	ck_assert_int_eq(fixture_port_free(&port), 0);
	snprintf(peer, sizeof peer, "127.0.0.1:%u", port);
	const char *args[] = { "--no-dht", "--listen",       "127.0.0.1:0", "--peer",
		               peer,       "--read-timeout", "600",         NULL };
	ck_assert_int_eq(fixture_mount_start(home, tfile, mnt, args, &m), 0);
	snprintf(file, sizeof file, "%s/show/video.mp4", mnt);
	snprintf(log, sizeof log, "%s/cat.log", dir);
	char *argv[] = { "cat", file, NULL };
	ck_assert_int_eq(fixture_proc_start(argv, log, &reader), 0);
	/* the read is parked once cat has the file open (the path is this test's own)
	 * and still runs */
	bool open_now = false;
	for (int i = 0; i < 200 && !open_now; i++) {
		char *out = NULL;

		fixture_sh(5000, &out, "ls -l /proc/[0-9]*/fd 2>/dev/null | grep -F '%s'", file);
		open_now = out && strstr(out, file);
		free(out);
		if (!open_now)
			usleep(50000);
	}
	ck_assert_msg(open_now, "cat never opened %s", file);
	ck_assert_msg(fixture_proc_alive(reader), "cat ended: the read was not blocked");
	/* SIGTERM, as Ctrl-C to a foreground mount: the daemon ends within 2 s */
	pid_t pid = fixture_mount_pid(m);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	const char *mult = getenv("CK_TIMEOUT_MULTIPLIER");
	int limit = (int)(2000 * (mult ? atof(mult) : 1.0)) / 20;
	bool gone = false;
	for (int i = 0; i < limit && !gone; i++) {
		gone =
		    kill(pid, 0) < 0 ||
		    fixture_sh(1000, NULL, "grep -q '^State:.*Z' /proc/%d/status", (int)pid) == 0;
		if (!gone)
			usleep(20000);
	}
	ck_assert_msg(gone, "the mount did not end within 2 s of SIGTERM during a blocked read");
	ck_assert_int_eq(fixture_proc_wait(reader, 10000) >= 0, 1);
	fixture_proc_stop(reader, 1000);
	fixture_mount_stop(m);
}
END_TEST

/* swarmfs mount of a bad torrent argument: exit code and message. */
static void mount_fails(int code, const char *want, const char *arg)
{
	char *out = NULL;
	int rc = fixture_sh(30000, &out, "'%s' mount -f --home '%s' '%s' '%s'",
	                    getenv("SWARMFS_BIN"), home, arg, mnt);

	ck_assert_msg(rc == code && out && strstr(out, want),
	              "mount %s: exit %d (want %d), output: %s (want '%s')", arg, rc, code,
	              out ? out : "", want);
	free(out);
}

START_TEST(bad_torrent_arguments_are_named)
{
	char p[4200];
	FILE *f;

	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	/* what was tried: a .torrent whose bencode breaks at byte 7, a magnet of no hash */
	snprintf(p, sizeof p, "%s/cut.torrent", dir);
	f = fopen(p, "w");
	fputs("d4:infoxe", f);
	fclose(f);
	mount_fails(3, "not a torrent file (bad bencode at byte 7)", p);
	mount_fails(4, "magnet: 'zzzz' is not a 40-hex or 32-base32 btih",
	            "magnet:?xt=urn:btih:zzzz");
	ck_assert(!fixture_is_mounted(mnt));
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		magnet_of_three_files_seeded_by_aria2c,
		a_blocked_read_does_not_hold_the_unmount,
		bad_torrent_arguments_are_named,
		NULL,
	};

	return itest_main("torrentfs", 240, setup, teardown, tests);
}
