/*
 * Issue 12, the local half: what another user of this machine, a crash in the middle
 * of a big copy and a full disk can do to a mount.
 *
 *   - with --allow-other a second uid reads what is published but can change nothing
 *     (unlink, rename, create, mkdir, write, setxattr of every verb) and cannot read
 *     a file that is still staged, even where the modes shown would let it: the
 *     handlers check the caller, not only the kernel;
 *   - 1,500 closed files waiting in the publish queue when the mount is killed -9 are
 *     all published after one restart;
 *   - a full disk while publishing: a clear error in the log and in swarmfs status,
 *     the staged file kept and readable, nothing signed, and the file published once
 *     the space is back.
 */
#include "drive_util.h"
#include "fixture.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static char *dir, *home, *mnt, *src;
static char id[LEDGER_HEX_LEN];
static bool tmpfs_mounted;

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("local", &dir), 0);
	ck_assert_int_ge(asprintf(&home, "%s/home", dir), 0);
	ck_assert_int_ge(asprintf(&mnt, "%s/mnt", dir), 0);
	ck_assert_int_ge(asprintf(&src, "%s/src", dir), 0);
	tmpfs_mounted = false;
}

static void teardown(void)
{
	if (tmpfs_mounted) {
		char small[4200];

		/* the swarmfs mount first: it holds files on the tmpfs */
		if (fixture_is_mounted(mnt))
			fixture_sh(10000, NULL, "fusermount3 -u -z '%s'", mnt);
		snprintf(small, sizeof small, "%s/drives", home);
		umount2(small, MNT_DETACH);
	}
	itest_cleanup(dir, mnt);
	free(dir);
	free(home);
	free(mnt);
	free(src);
}

static double multiplier(void)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = m ? strtod(m, NULL) : 1.0;

	return f > 1.0 ? f : 1.0;
}

/* `swarmfs status` of the mount (free it). */
static char *status(void)
{
	char *out = NULL;

	fixture_sh(10000, &out, "'%s' status '%s'", getenv("SWARMFS_BIN"), mnt);
	return out ? out : strdup("");
}

/* Poll `swarmfs status` until it holds want; fail naming what it said last. */
static void wait_status(const char *want, int seconds)
{
	int rounds = (int)(seconds * multiplier() * 10);
	char *out = NULL;

	for (int i = 0; i < rounds; i++) {
		free(out);
		out = status();
		if (strstr(out, want)) {
			free(out);
			return;
		}
		usleep(100000);
	}
	ck_abort_msg("status never said '%s' within %d s; last: %s", want, seconds, out);
}

static const char *const plain_args[] = { "--no-dht", "--listen", "127.0.0.1:0", NULL };

/* ---- another user ---- */

#define NOBODY 65534

/* What the second uid got for each attempt, as "name=errno-name ..." text. */
static void record(char *buf, size_t cap, const char *what, int rc, int err)
{
	size_t len = strlen(buf);

	snprintf(buf + len, cap - len, "%s=%s ", what,
	         rc >= 0         ? "ok"
	         : err == EACCES ? "EACCES"
	                         : strerrorname_np(err));
}

/* The call first, then errno: a function's arguments have no order of evaluation. */
#define TRY(what, call)                                                                            \
	do {                                                                                       \
		int rc_ = (call), errno_ = errno;                                                  \
		record(buf, sizeof buf, what, rc_, errno_);                                        \
	} while (0)

/* Runs as uid/gid NOBODY in a child: every attempt, its outcome into the pipe. */
static void as_nobody(int out_fd, const char *stolen_torrent, const char *nobody_key)
{
	char buf[2048] = "", a[4200], b[4200], v[4400];
	int rc, fd;

	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		_exit(3);
	/* reading what is published is allowed: the mount is shared for that */
	snprintf(a, sizeof a, "%s/shared/f.txt", mnt);
	fd = open(a, O_RDONLY);
	rc = fd < 0 ? -1 : (int)read(fd, v, sizeof v);
	TRY("read", rc > 0 ? 0 : -1);
	if (fd >= 0)
		close(fd);
	/* everything below is allowed by the modes the kernel sees (the directory is
	 * 0777, the file 0666, the staged file 0644): only the handlers refuse */
	TRY("unlink", unlink(a));
	snprintf(b, sizeof b, "%s/shared/g.txt", mnt);
	TRY("rename", rename(a, b));
	fd = open(a, O_WRONLY);
	TRY("write", fd);
	if (fd >= 0)
		close(fd);
	snprintf(b, sizeof b, "%s/shared/new.txt", mnt);
	fd = open(b, O_WRONLY | O_CREAT | O_EXCL, 0644);
	TRY("create", fd);
	if (fd >= 0)
		close(fd);
	snprintf(b, sizeof b, "%s/shared/sub", mnt);
	TRY("mkdir", mkdir(b, 0755));
	TRY("transfer", setxattr(a, "user.swarmfs.transfer", nobody_key, strlen(nobody_key), 0));
	/* make the daemon read a file only root may read, and claim it */
	snprintf(b, sizeof b, "%s/shared", mnt);
	snprintf(v, sizeof v, "stolen.bin\n%s", stolen_torrent);
	TRY("add", setxattr(b, "user.swarmfs.add", v, strlen(v), 0));
	snprintf(b, sizeof b, "%s/shared/staged.txt", mnt);
	fd = open(b, O_RDONLY);
	TRY("read-staged", fd);
	if (fd >= 0)
		close(fd);
	if (write(out_fd, buf, strlen(buf)) < 0)
		_exit(4);
	_exit(0);
}

START_TEST(other_uid_can_change_nothing)
{
	const char *const args[] = { "--no-dht", "--listen", "127.0.0.1:0", "--allow-other", NULL };
	struct fixture_mount *m;
	uint8_t nk[LEDGER_KEY_LEN];
	char nobody_key[LEDGER_HEX_LEN], stolen[4200], *out, *before;
	char got[2048] = "";
	int pipefd[2], staged_fd, status_code;
	pid_t pid;

	if (geteuid() != 0)
		ck_abort_msg("this test needs root (a second uid, and --allow-other)");
	/* the second uid must reach the mount point at all */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(itest_drive_create(home, "team", "default", id), 0);
	ck_assert_int_eq(itest_key(home, "nobody", nk), 0);
	ledger_hex(nk, sizeof nk, nobody_key);
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	free(itest_run(10000,
	               "mkdir '%s/shared' && chmod 0777 '%s/shared' && echo published > "
	               "'%s/shared/f.txt' && chmod 0666 '%s/shared/f.txt'",
	               mnt, mnt, mnt, mnt));
	itest_wait_published(mnt);
	/* a valid .torrent (f.txt's own) that only root may read */
	snprintf(stolen, sizeof stolen, "%s/private/t.torrent", dir);
	free(itest_run(10000,
	               "mkdir -m 0700 '%s/private' && cp \"$(ls '%s'/drives/*/torrents/*.torrent | "
	               "head -n 1)\" '%s' && chmod 0600 '%s'",
	               dir, home, stolen, stolen));
	/* a file still being written: staged, its writer (this test) holds it open */
	char staged[4200];
	snprintf(staged, sizeof staged, "%s/shared/staged.txt", mnt);
	staged_fd = open(staged, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(staged_fd, 0);
	ck_assert_int_eq(write(staged_fd, "secret\n", 7), 7);
	before = itest_run(10000, "cd '%s' && ls -lR . | grep -v '^total'", mnt);

	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pipefd[0]);
		as_nobody(pipefd[1], stolen, nobody_key);
	}
	close(pipefd[1]);
	ck_assert_int_ge(read(pipefd[0], got, sizeof got - 1), 0);
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status_code, 0), pid);
	ck_assert_msg(WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0,
	              "the second uid's child failed: status %d", status_code);
	ck_assert_str_eq(got, "read=ok unlink=EACCES rename=EACCES write=EACCES create=EACCES "
	                      "mkdir=EACCES transfer=EACCES add=EACCES read-staged=EACCES ");

	/* and nothing changed: the same tree, the same owner, nothing claimed */
	ck_assert_int_eq(close(staged_fd), 0);
	out = itest_run(10000, "cd '%s' && ls -lR . | grep -v '^total'", mnt);
	ck_assert_str_eq(out, before);
	free(out);
	free(before);
	ck_assert_int_ne(access(staged, F_OK) == 0 ? 0 : -1, -1);
	out = itest_run(10000, "'%s' log '%s/shared/f.txt'", getenv("SWARMFS_BIN"), mnt);
	ck_assert_msg(!strstr(out, "transfer") && !strstr(out, "revoke") && !strstr(out, "move"),
	              "log of f.txt: %s", out);
	free(out);
	itest_wait_published(mnt);
	itest_stop_clean(m, NULL);
}
END_TEST

/* ---- a crash in the middle of a big copy ---- */

START_TEST(kill_9_with_1500_queued_resumes_all)
{
	struct fixture_mount *m;
	char torrents[4200], *want, *got, *out, *chain;

	ck_assert_int_eq(itest_drive_create(home, "team", "default", id), 0);
	/* 1,500 small files in 10 directories, none empty (an empty file needs no torrent) */
	free(itest_run(60000,
	               "for d in 0 1 2 3 4 5 6 7 8 9; do mkdir -p '%s'/d$d; done; "
	               "for i in $(seq 1 1500); do printf 'file %%d\\n%%0*d\\n' $i $((i %% 97)) 0 "
	               "> '%s'/d$((i %% 10))/f$i.txt; done",
	               src, src));
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, plain_args, &m), 0);
	/* some published before the crash */
	free(itest_run(10000,
	               "echo one > '%s/one.txt' && echo two > '%s/two.txt' && cd '%s' && mkdir "
	               "-p tree/d0 tree/d1 tree/d2 tree/d3 tree/d4 tree/d5 tree/d6 tree/d7 "
	               "tree/d8 tree/d9",
	               mnt, mnt, mnt));
	itest_wait_published(mnt);
	/* The chosen step: the worker must not catch up with cp, so that far more than
	 * 1,024 closed files wait in the queue when the mount dies. Publishing writes the
	 * .torrent before it signs anything; with a file where the torrents directory
	 * was, every attempt fails at that first step and the items stay queued. */
	chain = itest_run(10000, "'%s' status '%s' | grep -E '^(height|mempool):'",
	                  getenv("SWARMFS_BIN"), mnt);
	snprintf(torrents, sizeof torrents, "%s/drives/%s/torrents", home, id);
	free(itest_run(10000, "mv '%s' '%s.away' && touch '%s'", torrents, torrents, torrents));
	free(itest_run(120000, "cp -r '%s/.' '%s/tree/'", src, mnt));
	out = status();
	ck_assert_msg(strstr(out, "publish queue: 1500 staged, 1500 queued"), "before the kill: %s",
	              out);
	free(out);
	/* nothing was signed for content whose torrent could not be kept (no record
	 * another member would find without a seeder): once the worker has tried, the
	 * chain and the mempool are as they were before the copy */
	char *line = NULL;
	for (int i = 0; i < 600 && (!line || !strcmp(line, "0\n")); i++) {
		free(line);
		usleep(i ? 100000 : 0);
		line = itest_run(10000, "grep -c 'publishing tree/.* failed' '%s' || true",
		                 fixture_mount_log(m));
	}
	ck_assert_msg(strcmp(line, "0\n"), "the worker never tried a file of the tree");
	free(line);
	out = itest_run(10000, "'%s' status '%s' | grep -E '^(height|mempool):'",
	                getenv("SWARMFS_BIN"), mnt);
	ck_assert_str_eq(out, chain);
	free(out);
	free(chain);
	ck_assert_int_eq(kill(fixture_mount_pid(m), SIGKILL), 0);
	fixture_mount_stop(m);
	ck_assert(!fixture_is_mounted(mnt));
	free(itest_run(10000, "rm '%s' && mv '%s.away' '%s'", torrents, torrents, torrents));

	/* one restart publishes every one of them */
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, plain_args, &m), 0);
	wait_status("publish queue: 0 staged, 0 queued, 0 failed; 1500 published", 120);
	want = itest_run(30000, "cd '%s' && find . -type f | sort | xargs sha256sum", src);
	got = itest_run(60000, "cd '%s/tree' && find . -type f | sort | xargs sha256sum", mnt);
	ck_assert_msg(!strcmp(got, want), "the tree read back differs from what was copied");
	free(got);
	free(want);
	out = itest_run(10000, "cat '%s/one.txt' '%s/two.txt'", mnt, mnt);
	ck_assert_str_eq(out, "one\ntwo\n");
	free(out);
	itest_stop_clean(m, NULL);
}
END_TEST

/* ---- a full disk ---- */

START_TEST(full_disk_keeps_the_file_and_publishes_later)
{
	/* the worker cannot even note the failure in the queue's row: said once, kept in
	 * memory */
	const char *const allowed[] = { "No space left on device", "database or disk is full",
		                        NULL };
	struct fixture_mount *m;
	char small[4200], path[4200], *out, *want;
	int fd1, fd2;

	if (geteuid() != 0)
		ck_abort_msg("this test needs root (it mounts a small tmpfs as the home)");
	/* the drives' directory (ledger, staging, torrents, cache) on a 16 MiB tmpfs; the
	 * daemon's log stays outside, where there is room to read what it said */
	snprintf(small, sizeof small, "%s/drives", home);
	ck_assert_int_eq(fixture_sh(10000, NULL, "mkdir -p '%s'", small), 0);
	ck_assert_msg(mount("tmpfs", small, "tmpfs", 0, "size=16m,mode=0700") == 0,
	              "mount tmpfs on %s: %s", small, strerror(errno));
	tmpfs_mounted = true;
	ck_assert_int_eq(itest_drive_create(home, "team", "default", id), 0);
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, plain_args, &m), 0);

	/* 1 MiB of content, written through the mount and closed while there is room
	 * (queued durably then); a second writer holds the file, so the worker cannot
	 * take it before the disk is full */
	size_t len = 1 << 20;
	char *buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(i * 2654435761u >> 13);
	snprintf(path, sizeof path, "%s/want.bin", dir);
	fd1 = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ck_assert_int_eq(write(fd1, buf, len), (ssize_t)len);
	close(fd1);
	want = itest_run(10000, "sha256sum < '%s'", path);
	snprintf(path, sizeof path, "%s/big.bin", mnt);
	fd1 = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ck_assert_int_ge(fd1, 0);
	ck_assert_int_eq(write(fd1, buf, len), (ssize_t)len);
	free(buf);
	fd2 = open(path, O_WRONLY);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(close(fd1), 0);
	/* what was tried: the disk fills up to the last block while the file waits */
	fixture_sh(60000, NULL,
	           "dd if=/dev/zero of='%s/filler' bs=64k; dd if=/dev/zero "
	           "of='%s/filler2' bs=512",
	           small, small);
	out = itest_run(10000, "df --output=avail -B1 '%s' | tail -n 1", small);
	ck_assert_msg(atoll(out) < 4096, "the tmpfs is not full: %s bytes free", out);
	free(out);
	ck_assert_int_eq(close(fd2), 0);

	/* a clear error, in swarmfs status and in the log */
	wait_status("1 staged, 1 queued, 1 failed", 30);
	out = status();
	ck_assert_msg(strstr(out, "publish error: big.bin: No space left on device"), "status: %s",
	              out);
	free(out);
	out = itest_run(10000,
	                "grep -c 'publishing big.bin failed: No space left on device' "
	                "'%s'",
	                fixture_mount_log(m));
	ck_assert_str_ne(out, "0\n");
	free(out);
	/* the staged file is kept and reads back whole; nothing was signed for it and no
	 * torrent of it is kept */
	out = itest_run(10000, "sha256sum < '%s'", path);
	ck_assert_str_eq(out, want);
	free(out);
	fixture_sh(10000, &out, "'%s' log '%s'", getenv("SWARMFS_BIN"), path);
	ck_assert_msg(!strstr(out, "claim"), "a record was made on a full disk: %s", out);
	free(out);
	out = itest_run(10000, "ls '%s/drives/%s/torrents' | grep -c torrent || true", home, id);
	ck_assert_str_eq(out, "0\n");
	free(out);

	/* the space comes back: the next attempt publishes it */
	free(itest_run(10000, "rm '%s/filler' '%s/filler2'", small, small));
	wait_status("publish queue: 0 staged, 0 queued, 0 failed; 1 published", 60);
	out = itest_run(10000, "sha256sum < '%s'", path);
	ck_assert_str_eq(out, want);
	free(out);
	out = itest_run(10000, "'%s' log '%s'", getenv("SWARMFS_BIN"), path);
	ck_assert_msg(strstr(out, "claim"), "log after the space came back: %s", out);
	free(out);
	free(want);
	itest_stop_clean(m, allowed);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		other_uid_can_change_nothing,
		kill_9_with_1500_queued_resumes_all,
		full_disk_keeps_the_file_and_publishes_later,
		NULL,
	};

	return itest_main("local", 300, setup, teardown, tests);
}
