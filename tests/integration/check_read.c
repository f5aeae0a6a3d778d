/*
 * Reads of content this node does not hold: node A publishes files by cp; node B
 * (another home, a member's key, an empty cache) joins the drive from A's swarmfs://
 * URI with A as a static peer, and syncs the ledger from A. B's reads pull only the
 * pieces they need from A through the engine; a read while A is down fails with EIO
 * (answered by the read timeout) and never blocks ls or stat; Ctrl-C ends a stuck cat
 * (answered by the interrupt, not the timeout); once A is back the same read succeeds.
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

static char *uri;

static struct fixture_mount *mount_a_with(const char *seed_max)
{
	const char *args[] = { "--no-dht", "--listen", listen_a, "--seed-max", seed_max, NULL };
	struct fixture_mount *m;

	ck_assert_int_eq(fixture_mount_start(home_a, "team", mnt_a, args, &m), 0);
	return m;
}

static struct fixture_mount *mount_a(void)
{
	return mount_a_with("1000");
}

/* B joins by the URI (the first time), and syncs from A. */
static struct fixture_mount *mount_b(void)
{
	const char *args[] = { "--no-dht", "--listen",       "127.0.0.1:0", "--peer",
		               peer_a,     "--read-timeout", "4",           NULL };
	struct fixture_mount *m;

	ck_assert_int_eq(fixture_mount_start(home_b, uri, mnt_b, args, &m), 0);
	return m;
}

static bool b_has(const char *name)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", mnt_b, name);
	return stat(path, &st) == 0;
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
	{
		/* B is a member (read-only by the drive's rules for what is not its own) */
		uint8_t pub_b[LEDGER_KEY_LEN];
		struct ledger_op op = { .type = LEDGER_REC_MEMBER };
		struct ledger *l;

		ck_assert_int_eq(itest_key(home_b, "default", pub_b), 0);
		memcpy(op.member, pub_b, LEDGER_KEY_LEN);
		ck_assert_int_eq(itest_drive_open(home_a, id, "default", &l), 0);
		ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
		itest_drive_close(l);
	}
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
	itest_wait_published(mnt_a);
	uri = itest_run(10000,
	                "getfattr --absolute-names --only-values -n user.swarmfs.drive '%s' | "
	                "sed -n 's/^uri: //p'",
	                mnt_a);
	uri[strcspn(uri, "\n")] = '\0';
	ck_assert_msg(!strncmp(uri, "swarmfs://", 10), "uri: %s", uri);
	/* the real join: B has nothing of the drive but its URI */
	mb = mount_b();
	FIXTURE_WAIT(b_has("big.bin") && b_has("small.bin"), 30000,
	             "B did not sync A's files within 30 s");
}

static void teardown(void)
{
	fixture_mount_stop(mb);
	fixture_mount_stop(ma);
	fixture_tmpdir_remove(dir);
	free(uri);
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
	/* B kept every piece with the block digests libtorrent's check computed: none was
	 * read back from its data file and hashed again */
	got = itest_run(10000,
	                "'%s' status --json '%s' | python3 -c 'import json, sys; "
	                "print(json.load(sys.stdin)[\"cache\"][\"rehashed\"])'",
	                getenv("SWARMFS_BIN"), mnt_b);
	ck_assert_str_eq(got, "0\n");
	free(got);
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

/* A mounted again loading no torrent (--seed-max 0), once it indexed its two held files
 * for loading on demand. */
static void remount_a_loading_none(void)
{
	ck_assert_int_eq(fixture_mount_stop(ma), 0);
	ma = mount_a_with("0");
	itest_wait_log(
	    fixture_mount_log(ma),
	    (const char *const[]){ "seeding 0 torrents of content this node holds; 2 more", NULL },
	    30);
}

/* A's status has line; why says what its absence means. */
static void assert_a_status(const char *line, const char *why)
{
	char *st = itest_run(10000, "'%s' status '%s'", getenv("SWARMFS_BIN"), mnt_a);

	ck_assert_msg(strstr(st, line), "%s: %s", why, st);
	free(st);
}

/* A holds both files but loads none of their torrents at mount (--seed-max 0): what was
 * tried is B reading them cold, its only seeder A, which must load each torrent when
 * B's handshake asks for it (without that the reads fail with EIO: nobody seeds). */
START_TEST(held_files_are_seeded_on_demand)
{
	remount_a_loading_none();
	char *want = itest_run(30000, "cd '%s' && sha256sum small.bin big.bin", src);
	char *got = itest_run(90000, "cd '%s' && sha256sum small.bin big.bin", mnt_b);

	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	assert_a_status("seeding on demand: 2 held files load when a peer asks (2 so far)",
	                "A's status does not count the two loads on demand");
}
END_TEST

/* A loads no torrent (--seed-max 0) and publishes a new file: what was tried is B
 * reading it cold, A its only seeder, A having indexed it as it published it, not
 * loaded it (without the index of files published since the mount, A would never load
 * it: B's read fails with EIO after its timeout). */
START_TEST(published_past_seed_max_is_seeded_on_demand)
{
	char path[4200];

	remount_a_loading_none();
	snprintf(path, sizeof path, "%s/fresh.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 200000, 13), 0);
	free(itest_run(30000, "cp '%s' '%s/'", path, mnt_a));
	itest_wait_published(mnt_a);
	FIXTURE_WAIT(b_has("fresh.bin"), 30000, "B did not sync fresh.bin within 30 s");
	char *want = itest_run(30000, "sha256sum < '%s'", path);
	char *got = itest_run(90000, "sha256sum < '%s/fresh.bin'", mnt_b);

	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	assert_a_status("seeding on demand: 3 held files load when a peer asks (1 so far)",
	                "A's status does not count the published file's load on demand");
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

/* Whether pid is blocked in a read of the mount: in read(2) (x86-64 syscall 0, or 63 on
 * arm64) and sleeping (S, or D: a page the kernel's read-ahead is filling). */
static bool blocked_in_read(pid_t pid)
{
	char path[64], *out = NULL;
	bool yes;

	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	if (fixture_sh(2000, &out, "cat %s; grep -o '^State:.*' /proc/%d/status", path, (int)pid) !=
	    0) {
		free(out);
		return false;
	}
	yes = (!strncmp(out, "0 ", 2) || !strncmp(out, "63 ", 3)) &&
	      (strstr(out, "State:\tS") || strstr(out, "State:\tD"));
	free(out);
	return yes;
}

/* Lines of B's log that report a read at an offset below `below` answered by its
 * timeout. */
static int timed_out_reads(unsigned long long below)
{
	char *out = NULL;
	int n = 0;

	fixture_sh(5000, &out,
	           "grep -a 'read of .*timed out' '%s' | sed 's/.* at \\([0-9]*\\):.*/\\1/'",
	           fixture_mount_log(mb));
	for (char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		n += strtoull(p, NULL, 10) < below;
	free(out);
	return n;
}

static bool read_matches(const char *path, const char *want)
{
	char *got = NULL;
	bool ok =
	    fixture_sh(30000, &got, "dd if='%s' bs=16k skip=2000 count=1 status=none | sha256sum",
	               path) == 0 &&
	    got && !strcmp(got, want);

	free(got);
	return ok;
}

START_TEST(seeder_down_eio_after_timeout_then_back)
{
	struct stat st;
	char path[4096], *out = NULL;
	int status;

	/* B knows the file's torrent (a first read fetches it from A), then A goes */
	snprintf(path, sizeof path, "%s/big.bin", mnt_b);
	free(itest_run(30000, "head -c 1 '%s' >/dev/null", path));
	ck_assert_int_eq(fixture_mount_stop(ma), 0);
	ma = NULL;
	/* what was tried: a read of a piece nobody reachable has */
	int rc = fixture_sh(30000, &out,
	                    "dd if='%s' bs=16k skip=2000 count=1 status=none of=/dev/null", path);
	ck_assert_msg(rc != 0 && strstr(out, "Input/output error"),
	              "a read with no seeder did not fail with EIO (exit %d): %s", rc, out);
	free(out);
	/* answered by the read timeout (the daemon says so), not by anything earlier */
	/* the kernel may retry a failed read: one line or more */
	ck_assert_msg(timed_out_reads(-1ULL) >= 1, "the read's EIO did not come from its timeout");

	/* meanwhile stat and ls never wait on the network: they complete while a read
	 * is stuck in the kernel waiting for the daemon */
	pid_t slow = fork();
	if (slow == 0) {
		execlp("sh", "sh", "-c",
		       "exec dd if=\"$0\" bs=16k skip=2500 count=1 status=none of=/dev/null", path,
		       (char *)NULL);
		_exit(127);
	}
	FIXTURE_WAIT(blocked_in_read(slow), 5000, "the slow read never got stuck in read(2)");
	ck_assert_int_eq(stat(path, &st), 0);
	free(itest_run(5000, "ls -l '%s' >/dev/null", mnt_b));
	ck_assert_msg(waitpid(slow, &status, WNOHANG) == 0,
	              "the stuck read ended before stat and ls did: they waited for it");
	ck_assert_int_eq(waitpid(slow, &status, 0), slow);
	ck_assert_msg(timed_out_reads(-1ULL) >= 2, "the slow read's timeout was not logged");

	/* Ctrl-C on a stuck cat: the interrupt answers it, not the read timeout (which
	 * logs before it answers) */
	pid_t cat = fork();
	if (cat == 0) {
		execlp("sh", "sh", "-c", "exec cat \"$0\" >/dev/null", path, (char *)NULL);
		_exit(127);
	}
	FIXTURE_WAIT(blocked_in_read(cat), 5000, "cat never got stuck in read(2)");
	ck_assert_int_eq(kill(cat, SIGINT), 0);
	ck_assert_int_eq(waitpid(cat, &status, 0), cat);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "cat status %d", status);
	/* cat reads from the start (the reads above are past 30 MiB): none of its reads was
	 * answered by the timeout when it ended (they go on, for the next reader) */
	ck_assert_msg(timed_out_reads(30ULL << 20) == 0, "cat's read was answered by the timeout");

	/* the seeder comes back: the same read succeeds */
	ma = mount_a();
	char *want = itest_run(
	    30000, "dd if='%s/big.bin' bs=16k skip=2000 count=1 status=none | sha256sum", src);
	FIXTURE_WAIT(read_matches(path, want), 30000, "the read still fails with A back");
	free(want);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		remote_file_reads_back_identical,
		held_files_are_seeded_on_demand,
		published_past_seed_max_is_seeded_on_demand,
		middle_read_fetches_only_nearby_pieces,
		seeder_down_eio_after_timeout_then_back,
		NULL,
	};

	return itest_main("read", 120, setup, teardown, tests);
}
