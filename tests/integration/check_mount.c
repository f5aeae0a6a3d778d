/*
 * A new, empty drive, end to end: `swarmfs mount` in the foreground, used with ls,
 * stat and df, unmounted by fusermount3, swarmfs umount, SIGINT and SIGTERM; the lock
 * that refuses a second mount; naming a drive by name, id or URI; the command line's
 * errors.
 */
#include "drive_util.h"
#include "fixture.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir, *home, *mnt;
static char drive_id[LEDGER_HEX_LEN];

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("mount", &dir), 0);
	ck_assert_int_ge(asprintf(&home, "%s/home", dir), 0);
	ck_assert_int_ge(asprintf(&mnt, "%s/mnt", dir), 0);
	ck_assert_int_eq(itest_drive_create(home, "team", "default", drive_id), 0);
}

static void teardown(void)
{
	/* a test that failed mid-way may still have the mount: never leave it */
	itest_cleanup(dir, mnt);
	free(dir);
	free(home);
	free(mnt);
}

static void assert_clean_log(struct fixture_mount *m)
{
	char *lines = NULL;
	int n = fixture_mount_unexpected_log(m, NULL, &lines);

	ck_assert_msg(n >= 0, "cannot read the daemon's log: %s", strerror(-n));
	ck_assert_msg(n == 0, "unexpected daemon log lines:\n%s", lines);
	free(lines);
}

static char *bin(void)
{
	return getenv("SWARMFS_BIN");
}

START_TEST(empty_drive_with_ls_stat_df)
{
	struct fixture_mount *m;
	char *out = NULL;
	struct statvfs sv;
	struct stat sb;

	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, NULL, &m), 0);
	ck_assert(fixture_is_mounted(mnt));

	ck_assert_int_eq(
	    fixture_sh(10000, &out, "ls -la '%s' | tail -n +2 | awk '{print $NF}'", mnt), 0);
	ck_assert_str_eq(out, ".\n..\n");
	free(out);
	ck_assert_int_eq(fixture_sh(10000, &out, "ls -A '%s' | wc -l", mnt), 0);
	ck_assert_int_eq(atoi(out), 0);
	free(out);

	ck_assert_int_eq(fixture_sh(10000, &out, "stat -c '%%F %%a %%i %%h' '%s'", mnt), 0);
	ck_assert_str_eq(out, "directory 755 1 2\n");
	free(out);
	ck_assert_int_eq(stat(mnt, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_int_eq(sb.st_uid, getuid());

	/* df: the drive's size is its cache cap (default 10 GiB), nothing used yet */
	ck_assert_int_eq(
	    fixture_sh(10000, &out, "df -B1 --output=source,fstype,size,used '%s' | tail -1", mnt),
	    0);
	ck_assert_msg(strstr(out, "swarmfs:team") && strstr(out, "fuse.swarmfs"), "df: %s", out);
	ck_assert_msg(strstr(out, " 10737418240 ") && strstr(out, " 0"), "df: %s", out);
	free(out);
	ck_assert_int_eq(statvfs(mnt, &sv), 0);
	ck_assert_uint_eq((uint64_t)sv.f_blocks * sv.f_frsize, 10ULL << 30);
	ck_assert_uint_eq(sv.f_namemax, 255);

	/* nothing exists yet: lookups fail as on any empty directory */
	char path[4096];
	snprintf(path, sizeof path, "%s/nothing", mnt);
	ck_assert_int_eq(stat(path, &sb), -1);
	ck_assert_int_eq(errno, ENOENT);

	assert_clean_log(m);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	ck_assert(!fixture_is_mounted(mnt));
}
END_TEST

START_TEST(drive_named_by_id_and_uri)
{
	struct fixture_mount *m;
	char uri[128];

	ck_assert_int_eq(fixture_mount_start(home, drive_id, mnt, NULL, &m), 0);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	snprintf(uri, sizeof uri, "swarmfs://%s?dn=team", drive_id);
	ck_assert_int_eq(fixture_mount_start(home, uri, mnt, NULL, &m), 0);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
}
END_TEST

START_TEST(cache_size_option_reaches_statfs)
{
	const char *args[] = { "--cache-size", "512M", NULL };
	struct fixture_mount *m;
	struct statvfs sv;

	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	ck_assert_int_eq(statvfs(mnt, &sv), 0);
	ck_assert_uint_eq((uint64_t)sv.f_blocks * sv.f_frsize, 512ULL << 20);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
}
END_TEST

static void unmount_by_signal(int sig)
{
	struct fixture_mount *m;
	pid_t pid;

	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, NULL, &m), 0);
	pid = fixture_mount_pid(m);
	ck_assert_int_eq(kill(pid, sig), 0);
	FIXTURE_WAIT(!fixture_is_mounted(mnt), 5000, "still mounted 5 s after signal %d", sig);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
}

START_TEST(sigint_unmounts)
{
	unmount_by_signal(SIGINT);
}
END_TEST

START_TEST(sigterm_unmounts)
{
	unmount_by_signal(SIGTERM);
}
END_TEST

START_TEST(swarmfs_umount_unmounts)
{
	struct fixture_mount *m;
	char *out = NULL;

	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, NULL, &m), 0);
	char *argv[] = { bin(), "umount", mnt, NULL };
	ck_assert_int_eq(fixture_run(argv, 10000, &out), 0);
	free(out);
	ck_assert(!fixture_is_mounted(mnt));
	ck_assert_int_eq(fixture_mount_stop(m), 0);
}
END_TEST

START_TEST(second_mount_of_same_drive_refused)
{
	struct fixture_mount *m;
	char *out = NULL, *mnt2;

	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, NULL, &m), 0);
	ck_assert_int_ge(asprintf(&mnt2, "%s/mnt2", dir), 0);
	ck_assert_int_eq(mkdir(mnt2, 0755), 0);
	/* what was tried: the same home and drive at a second mount point */
	char *argv[] = { bin(), "mount", "-f", "--home", home, "team", mnt2, NULL };
	ck_assert_int_eq(fixture_run(argv, 10000, &out), 1);
	ck_assert_msg(strstr(out, "already mounted by process"), "output: %s", out);
	ck_assert(!fixture_is_mounted(mnt2));
	free(out);
	/* the first mount is untouched */
	ck_assert(fixture_is_mounted(mnt));
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	/* and once it is gone the drive mounts again: the lock died with its owner */
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt2, NULL, &m), 0);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	free(mnt2);
}
END_TEST

START_TEST(killed_daemon_leaves_no_mount_and_no_lock)
{
	struct fixture_mount *m;

	/* the product's own command line: the fixture adds no mount option of its own,
	 * so this is `swarmfs mount -f --home HOME team MNT` as a user types it */
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, NULL, &m), 0);
	/* what was tried: kill -9, so no handler of ours runs; only the auto_unmount that
	 * fs/mount.c asks for can clean up */
	ck_assert_int_eq(kill(fixture_mount_pid(m), SIGKILL), 0);
	/* fusermount3 unmounts once the daemon's last file descriptor is closed, i.e. once
	 * the process is gone: on a loaded machine its exit can wait for a thread in the
	 * middle of disk I/O, so the two waits are separate and each says what it saw */
	int status = fixture_mount_wait_exit(m, 30000);
	ck_assert_msg(status == 128 + SIGKILL, "the killed daemon did not exit (status %d)",
	              status);
	FIXTURE_WAIT(!fixture_is_mounted(mnt), 10000,
	             "a killed swarmfs mount left its mount point behind (no auto_unmount?)");
	struct stat sb;
	ck_assert_msg(stat(mnt, &sb) == 0, "the mount point is unusable after kill -9: %s",
	              strerror(errno));
	ck_assert_int_eq(fixture_mount_stop(m), 128 + SIGKILL);
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, NULL, &m), 0);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
}
END_TEST

START_TEST(failed_test_leaves_no_mount)
{
	/* what was tried: a test holding a mount is SIGKILLed with its process group, as
	 * Check does to a failed or timed-out test: the mount and the daemon must go */
	int pfd[2], st;
	pid_t daemon = 0, tester;

	ck_assert_int_eq(pipe(pfd), 0);
	tester = fork();
	ck_assert_int_ge(tester, 0);
	if (tester == 0) {
		struct fixture_mount *m;

		setpgid(0, 0);
		if (fixture_mount_start(home, "team", mnt, NULL, &m) < 0)
			_exit(1);
		daemon = fixture_mount_pid(m);
		if (write(pfd[1], &daemon, sizeof daemon) != sizeof daemon)
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pfd[0], &daemon, sizeof daemon), (ssize_t)sizeof daemon);
	ck_assert(fixture_is_mounted(mnt));
	ck_assert_int_eq(killpg(tester, SIGKILL), 0);
	waitpid(tester, &st, 0);
	FIXTURE_WAIT(!fixture_is_mounted(mnt), 10000, "the mount outlived its test");
	FIXTURE_WAIT(kill(daemon, 0) < 0, 10000, "the daemon outlived its test");
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

START_TEST(command_line_errors)
{
	char *out = NULL;

	/* what was tried: each malformed call must say what is wrong and exit 2 */
	char *none[] = { bin(), NULL };
	ck_assert_int_eq(fixture_run(none, 5000, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "usage: swarmfs"));
	free(out);
	char *unknown[] = { bin(), "frobnicate", NULL };
	ck_assert_int_eq(fixture_run(unknown, 5000, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "unknown command 'frobnicate'"));
	free(out);
	char *missing[] = { bin(), "mount", "team", NULL };
	ck_assert_int_eq(fixture_run(missing, 5000, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "need DRIVE and MOUNTPOINT"));
	free(out);
	char *badsize[] = { bin(), "mount", "--cache-size", "12Q", "team", mnt, NULL };
	ck_assert_int_eq(fixture_run(badsize, 5000, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "bad --cache-size '12Q'"));
	free(out);
	char *badopt[] = { bin(), "mount", "--no-such-flag", "team", mnt, NULL };
	ck_assert_int_eq(fixture_run(badopt, 5000, &out), 2);
	free(out);
	/* a drive name that would escape the data directory, and one that is not there */
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	char *escape[] = { bin(), "mount", "-f", "--home", home, "..", mnt, NULL };
	ck_assert_int_eq(fixture_run(escape, 5000, &out), 1);
	ck_assert_msg(strstr(out, "no drive '..'"), "output: %s", out);
	ck_assert(!fixture_is_mounted(mnt));
	free(out);
	char *nodrive[] = { bin(), "mount", "-f", "--home", home, "other", mnt, NULL };
	ck_assert_int_eq(fixture_run(nodrive, 5000, &out), 1);
	ck_assert_msg(strstr(out, "no drive 'other'") && strstr(out, "swarmfs init"), "output: %s",
	              out);
	free(out);
	char *baduri[] = { bin(), "mount", "-f", "--home", home, "swarmfs://1234", mnt, NULL };
	ck_assert_int_eq(fixture_run(baduri, 5000, &out), 1);
	ck_assert_msg(strstr(out, "bad drive URI"), "output: %s", out);
	free(out);
	/* a mount point that is not there */
	char *nodir[] = { bin(), "mount", "-f", "--home", home, "team", "/nonexistent/swarmfs-mnt",
		          NULL };
	ck_assert_int_eq(fixture_run(nodir, 5000, &out), 1);
	ck_assert_ptr_nonnull(strstr(out, "cannot mount"));
	free(out);
}
END_TEST

START_TEST(help_and_version)
{
	char *out = NULL;
	static const char *const cmds[] = { "init", "mount",  "umount",   "status",
		                            "log",  "verify", "transfer", "add",
		                            "key",  "drive",  NULL };

	char *help[] = { bin(), "--help", NULL };
	ck_assert_int_eq(fixture_run(help, 5000, &out), 0);
	for (int i = 0; cmds[i]; i++) {
		char want[32];
		snprintf(want, sizeof want, "\n  %s ", cmds[i]);
		ck_assert_msg(strstr(out, want), "--help does not list %s", cmds[i]);
	}
	free(out);
	char *version[] = { bin(), "--version", NULL };
	ck_assert_int_eq(fixture_run(version, 5000, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "swarmfs "));
	ck_assert_ptr_nonnull(strstr(out, "libtorrent-rasterbar 2."));
	free(out);
	char *mhelp[] = { bin(), "mount", "--help", NULL };
	ck_assert_int_eq(fixture_run(mhelp, 5000, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "--cache-size"));
	free(out);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		empty_drive_with_ls_stat_df,
		drive_named_by_id_and_uri,
		cache_size_option_reaches_statfs,
		sigint_unmounts,
		sigterm_unmounts,
		swarmfs_umount_unmounts,
		second_mount_of_same_drive_refused,
		killed_daemon_leaves_no_mount_and_no_lock,
		failed_test_leaves_no_mount,
		command_line_errors,
		help_and_version,
		NULL,
	};

	return itest_main("mount", 30, setup, teardown, tests);
}
