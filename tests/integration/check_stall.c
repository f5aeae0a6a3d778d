/*
 * Issue 12, DESIGN.md §10: a FUSE worker never waits on the network. A drive holds
 * records of content nobody seeds (claims made through the ledger library: no .torrent
 * anywhere, no peer), so an open of such a file needs metadata the swarm never gives.
 *
 * Attacked: 16 read opens of such files (as many as the mount has FUSE workers), an
 * O_RDWR open of one (a change in place, which must copy the content first) and a
 * `user.swarmfs.add` of a magnet nobody serves, all at once. Before the fix each held a
 * worker for the whole read timeout, and a `stat` of another file waited behind them.
 * Here the stat must complete while every one of them is still provably blocked (in
 * the kernel, in openat/setxattr; and in flight at the FUSE connection when fusectl is
 * mounted), and then each must fail with EIO by its deadline (--read-timeout), the
 * staged copy of the O_RDWR open dropped. An unmount (SIGTERM, as systemd stops the
 * unit) with 16 opens parked under an hour-long read timeout answers them at once.
 */
#include "drive_util.h"
#include "fixture.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

enum { N_OPENS = 16, N_CALLS = N_OPENS + 2, READ_TIMEOUT_S = 15 };

static char *dir, *home, *mnt;
static char id[LEDGER_HEX_LEN];

static double multiplier(void)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = m ? strtod(m, NULL) : 1.0;

	return f > 1.0 ? f : 1.0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void setup(void)
{
	struct ledger *l;
	char path[64];

	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("stall", &dir), 0);
	ck_assert_int_ge(asprintf(&home, "%s/home", dir), 0);
	ck_assert_int_ge(asprintf(&mnt, "%s/mnt", dir), 0);
	ck_assert_int_eq(itest_drive_create(home, "team", "default", id), 0);
	ck_assert_int_eq(itest_drive_open(home, id, "default", &l), 0);
	/* content whose metadata nobody has: claimed, never published, seeded by no one */
	for (int i = 0; i < N_OPENS; i++) {
		snprintf(path, sizeof path, "stuck-%02d.bin", i);
		ck_assert_int_ge(itest_claim(l, path, 1 << 20, 0644, 1700000000 + i), 0);
	}
	/* the add goes to a directory of its own: the kernel holds a directory's lock
	 * through a setxattr on it, and the stat below must not cross that one */
	struct ledger_op md = { .type = LEDGER_REC_MKDIR, .path = "adds" };
	md.content.mode = 0755;
	ck_assert_int_ge(ledger_submit(l, &md, NULL), 0);
	ck_assert_int_ge(itest_claim(l, "mine.bin", 1 << 20, 0644, 1700000100), 0);
	ck_assert_int_ge(itest_claim(l, "other.txt", 10, 0644, 1700000200), 0);
	itest_drive_close(l);
}

static void teardown(void)
{
	itest_cleanup(dir, mnt);
	free(dir);
	free(home);
	free(mnt);
}

static struct fixture_mount *mount_with_timeout(int secs)
{
	char t[16];
	const char *args[] = { "--no-dht", "--read-timeout", t, NULL };
	struct fixture_mount *m;

	snprintf(t, sizeof t, "%d", secs);
	ck_assert_int_eq(fixture_mount_start(home, "team", mnt, args, &m), 0);
	return m;
}

/* One blocking call on the mount, on its own thread. */
struct call {
	char path[4200];
	int kind; /* 0 open O_RDONLY, 1 open O_RDWR, 2 setxattr user.swarmfs.add */
	pthread_t thread;
	_Atomic pid_t tid;
	atomic_bool done;
	int rc, err;
	int order; /* completion rank among calls and the stat, 1-based */
};

static atomic_int finished;

static void *call_main(void *arg)
{
	struct call *c = arg;
	static const char magnet[] =
	    "nobody.bin\nmagnet:?xt=urn:btmh:1220"
	    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

	c->tid = (pid_t)syscall(SYS_gettid);
	if (c->kind == 2) {
		c->rc = setxattr(c->path, "user.swarmfs.add", magnet, sizeof magnet - 1, 0);
	} else {
		c->rc = open(c->path, c->kind == 1 ? O_RDWR : O_RDONLY);
		if (c->rc >= 0)
			close(c->rc);
	}
	c->err = c->rc < 0 ? errno : 0;
	c->order = atomic_fetch_add(&finished, 1) + 1;
	c->done = true;
	return NULL;
}

/* Whether thread tid of this process sleeps inside system call nr now. */
static bool blocked_in(pid_t tid, long nr)
{
	char path[64], buf[256];
	FILE *f;
	bool yes = false;

	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	if ((f = fopen(path, "r"))) {
		yes = fgets(buf, sizeof buf, f) && strtol(buf, NULL, 10) == nr;
		fclose(f);
	}
	return yes;
}

/* Requests in flight at the mount's FUSE connection, or -1 without fusectl. */
static int fuse_waiting(void)
{
	struct stat st;
	char path[128];
	FILE *f;
	int n = -1;

	if (stat(mnt, &st) < 0)
		return -1;
	snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/waiting", minor(st.st_dev));
	if ((f = fopen(path, "r"))) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static void start_calls(struct call *calls, int n)
{
	atomic_store(&finished, 0);
	for (int i = 0; i < n; i++) {
		struct call *c = &calls[i];

		memset(c, 0, sizeof *c);
		c->kind = i < N_OPENS ? 0 : i - N_OPENS + 1;
		if (c->kind == 0)
			snprintf(c->path, sizeof c->path, "%s/stuck-%02d.bin", mnt, i);
		else if (c->kind == 1)
			snprintf(c->path, sizeof c->path, "%s/mine.bin", mnt);
		else
			snprintf(c->path, sizeof c->path, "%s/adds", mnt);
		ck_assert_int_eq(pthread_create(&c->thread, NULL, call_main, c), 0);
	}
}

/* Wait until every call sleeps in its system call and (with fusectl) the connection
 * has at least n requests in flight. */
static void wait_all_blocked(struct call *calls, int n)
{
	double deadline = now_s() + 20 * multiplier();
	bool all = false;

	while (!all && now_s() < deadline) {
		all = true;
		for (int i = 0; i < n && all; i++) {
			ck_assert_msg(!calls[i].done, "%s returned early: rc %d, %s", calls[i].path,
			              calls[i].rc, strerror(calls[i].err));
			all = calls[i].tid &&
			      blocked_in(calls[i].tid,
			                 calls[i].kind == 2 ? SYS_setxattr : SYS_openat);
		}
		int w = fuse_waiting();
		if (all && w >= 0 && w < n)
			all = false;
		if (!all)
			usleep(20000);
	}
	ck_assert_msg(all, "the %d calls did not all block in the mount within the deadline", n);
}

START_TEST(stuck_opens_do_not_delay_stat)
{
	struct fixture_mount *m = mount_with_timeout(READ_TIMEOUT_S * (int)multiplier());
	struct call calls[N_CALLS];
	char other[4200];
	struct stat st;

	start_calls(calls, N_CALLS);
	wait_all_blocked(calls, N_CALLS);
	int in_flight = fuse_waiting();

	/* a file nobody looked up yet: the lookup needs a FUSE worker now */
	snprintf(other, sizeof other, "%s/other.txt", mnt);
	ck_assert_int_eq(stat(other, &st), 0);
	int stat_order = atomic_fetch_add(&finished, 1) + 1;

	ck_assert_int_eq(st.st_size, 10);
	ck_assert_msg(stat_order == 1,
	              "the stat completed only after %d of the parked calls had failed: it "
	              "waited for a FUSE worker held by the network",
	              stat_order - 1);
	for (int i = 0; i < N_CALLS; i++) {
		long nr = calls[i].kind == 2 ? SYS_setxattr : SYS_openat;
		double until = now_s() + 2 * multiplier();
		bool blocked;

		ck_assert_msg(!calls[i].done, "%s returned before the stat", calls[i].path);
		/* parked in its system call: an open whose lookup was answered a moment ago
		 * runs on to its FUSE_OPEN, where it parks again (seen once, CI at load 15:
		 * "running" in /proc for an instant) */
		while (!(blocked = blocked_in(calls[i].tid, nr)) && !calls[i].done &&
		       now_s() < until)
			usleep(5000);
		ck_assert_msg(!calls[i].done, "%s returned before its deadline", calls[i].path);
		ck_assert_msg(blocked, "%s is no longer blocked after the stat", calls[i].path);
	}
	if (in_flight >= 0)
		ck_assert_int_ge(fuse_waiting(), N_CALLS);
	fprintf(stderr, "stat answered with %d calls parked (%d requests in flight%s)\n", N_CALLS,
	        in_flight, in_flight < 0 ? ": no fusectl" : "");

	/* each fails with EIO by its deadline: the read timeout, and some slack */
	double deadline = now_s() + (READ_TIMEOUT_S + 20) * multiplier();

	for (int i = 0; i < N_CALLS; i++) {
		while (!calls[i].done && now_s() < deadline)
			usleep(20000);
		ck_assert_msg(calls[i].done, "%s still blocked past its deadline", calls[i].path);
		pthread_join(calls[i].thread, NULL);
		ck_assert_msg(calls[i].rc == -1 && calls[i].err == EIO,
		              "%s: rc %d, %s (wanted EIO)", calls[i].path, calls[i].rc,
		              strerror(calls[i].err));
	}
	/* the failed change in place left nothing staged: the record's size is shown */
	snprintf(other, sizeof other, "%s/mine.bin", mnt);
	ck_assert_int_eq(stat(other, &st), 0);
	ck_assert_int_eq(st.st_size, 1 << 20);
	char *out = itest_run(10000, "'%s' status '%s'", getenv("SWARMFS_BIN"), mnt);
	ck_assert_msg(strstr(out, "0 staged"), "a staged copy is left: %s", out);
	free(out);
	const char *allowed[] = { "nothing from the swarm within", "no metadata for", NULL };
	itest_stop_clean(m, allowed);
}
END_TEST

START_TEST(unmount_answers_parked_opens)
{
	/* an hour: an unmount that waited for the network would outlast the test */
	struct fixture_mount *m = mount_with_timeout(3600);
	struct call calls[N_OPENS];

	start_calls(calls, N_OPENS);
	wait_all_blocked(calls, N_OPENS);
	ck_assert_int_eq(kill(fixture_mount_pid(m), SIGTERM), 0);
	double deadline = now_s() + 20 * multiplier();

	for (int i = 0; i < N_OPENS; i++) {
		while (!calls[i].done && now_s() < deadline)
			usleep(20000);
		ck_assert_msg(calls[i].done, "%s still blocked after the unmount", calls[i].path);
		pthread_join(calls[i].thread, NULL);
		/* answered by the waiter (EINTR), or by the kernel as the connection closed */
		ck_assert_msg(calls[i].rc == -1 &&
		                  (calls[i].err == EINTR || calls[i].err == ECONNABORTED ||
		                   calls[i].err == ENOTCONN),
		              "%s: rc %d, %s", calls[i].path, calls[i].rc, strerror(calls[i].err));
	}
	ck_assert_int_eq(fixture_mount_stop(m), 0);
	ck_assert(!fixture_is_mounted(mnt));
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		stuck_opens_do_not_delay_stat,
		unmount_answers_parked_opens,
		NULL,
	};

	return itest_main("stall", 120, setup, teardown, tests);
}
