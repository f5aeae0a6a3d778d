/*
 * A drive shared by three nodes on 127.0.0.1 with a real opentracker: A (the admin and a
 * producer), B (a second producer) and C (a member). B and C join from A's swarmfs://
 * URI: the genesis comes from the drive swarm, the ledger syncs over its BEP 10 channel.
 *
 * What is tried: a tree published on A by cp -r appears on B and C with the same
 * sha256sums; random 16 KiB reads of a 256 MiB file on B pull only a fraction of it, and
 * so do ffprobe and a seek of ffmpeg into a video; B's
 * transfer to C is seen on A, and C appends to the file it never read; a node joining late catches
 * up, and so does one that was unmounted while others published; the two producers apart (B mounted
 * with no way to reach anyone) publish the same new path and other files in competing blocks, and
 * after B is back all three agree on the head and the tree, the losing content kept as
 * NAME.conflict-<key8> and B's mount showing the winner; A killed (SIGKILL) in the
 * middle of B's read while C holds the file: the read completes.
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
#include <unistd.h>

#define N_NODES 3

struct node {
	char *home, *mnt;
	char listen[64];
	char key[LEDGER_HEX_LEN];
	struct fixture_mount *m;
};

static char *dir, *src;
static char id[LEDGER_HEX_LEN], *uri;
static struct node nodes[N_NODES];
static struct fixture_tracker *tracker;

#define A (&nodes[0])
#define B (&nodes[1])
#define C (&nodes[2])

/* Mount n: A by the drive's name, the others by the URI the first time (joining) and
 * by id after. alone: no tracker and no peer (the drive's remembered config moved aside
 * by the caller) and a port the others do not know: it reaches nobody, nobody it. */
static void mount_node(struct node *n, bool alone)
{
	const char *args[16] = { "--no-dht", "--listen", n->listen, "--read-timeout", "20" };
	int k = 5;
	char drive_dir[4200], other[64];
	struct stat st;
	uint16_t port;

	if (alone) { /* another port too: the others would dial the one they know */
		ck_assert_int_eq(fixture_port_free(&port), 0);
		snprintf(other, sizeof other, "127.0.0.1:%u", port);
		args[2] = other;
	} else {
		args[k++] = "--tracker";
		args[k++] = fixture_tracker_url(tracker);
	}
	args[k] = NULL;
	snprintf(drive_dir, sizeof drive_dir, "%s/drives/%s/ledger.db", n->home, id);
	bool joining = stat(drive_dir, &st) < 0;
	ck_assert_int_eq(fixture_mount_start(n->home, joining ? uri : id, n->mnt, args, &n->m), 0);
}

static void unmount_node(struct node *n)
{
	ck_assert_int_eq(fixture_mount_stop(n->m), 0);
	n->m = NULL;
}

/* Bytes of rel that n holds (user.swarmfs.cached). */
static unsigned long long cached_bytes(struct node *n, const char *rel)
{
	char *out = itest_run(10000,
	                      "getfattr --absolute-names --only-values -n user.swarmfs.cached "
	                      "'%s/%s'",
	                      n->mnt, rel);
	unsigned long long v = strtoull(out, NULL, 10);

	free(out);
	return v;
}

/* Wait until the user.swarmfs.<name> xattr of rel on n is want. */
static void wait_xattr(struct node *n, const char *rel, const char *name, const char *want,
                       double timeout_s)
{
	double end = itest_now_s() + fixture_scaled_ms((int)(timeout_s * 1000)) / 1000.0;

	for (;;) {
		char *out = NULL;

		fixture_sh(10000, &out,
		           "getfattr --absolute-names --only-values -n user.swarmfs.%s '%s/%s'",
		           name, n->mnt, rel);
		bool done = out && !strcmp(out, want);

		free(out);
		if (done)
			return;
		ck_assert_msg(itest_now_s() < end, "%s of %s on %s is not %s after %.0f s", name,
		              rel, n->mnt, want, timeout_s);
		usleep(100000);
	}
}

/* Wait until every mounted node has the same head as a. */
static void wait_same_head(double timeout_s)
{
	double end = itest_now_s() + fixture_scaled_ms((int)(timeout_s * 1000)) / 1000.0;

	for (;;) {
		char *h0 = itest_status_field(A->mnt, "head");
		bool same = true;

		for (int i = 1; i < N_NODES && same; i++) {
			if (!nodes[i].m)
				continue;
			char *h = itest_status_field(nodes[i].mnt, "head");
			same = !strcmp(h, h0);
			free(h);
		}
		free(h0);
		if (same)
			return;
		ck_assert_msg(itest_now_s() < end,
		              "the nodes did not agree on a head within %.0f s", timeout_s);
		usleep(100000);
	}
}

/* "sha256  ./path" of every file under the mount, sorted: the tree as a string. */
static char *tree_of(struct node *n)
{
	return itest_run(120000, "cd '%s' && find . -type f | LC_ALL=C sort | xargs -r sha256sum",
	                 n->mnt);
}

/* Wait until every mounted node lists the same files with the same content: two
 * producers may fork for a moment (1 s blocks), and a node converges a little later. */
static void wait_same_tree(double timeout_s)
{
	double end = itest_now_s() + fixture_scaled_ms((int)(timeout_s * 1000)) / 1000.0;

	for (;;) {
		char *t0 = tree_of(A), *diff = NULL;

		for (int i = 1; i < N_NODES && !diff; i++) {
			if (!nodes[i].m)
				continue;
			char *t = tree_of(&nodes[i]);

			if (strcmp(t, t0))
				diff = t;
			else
				free(t);
		}
		if (!diff) {
			free(t0);
			return;
		}
		if (itest_now_s() >= end)
			ck_abort_msg("the trees differ after %.0f s:\nA:\n%s\nother:\n%s",
			             timeout_s, t0, diff);
		free(t0);
		free(diff);
		usleep(200000);
	}
}

static void setup(void)
{
	uint8_t pub[N_NODES][LEDGER_KEY_LEN];
	uint16_t port;

	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("shared", &dir), 0);
	ck_assert_int_ge(asprintf(&src, "%s/src", dir), 0);
	ck_assert_int_eq(mkdir(src, 0755), 0);
	for (int i = 0; i < N_NODES; i++) {
		struct node *n = &nodes[i];

		ck_assert_int_ge(asprintf(&n->home, "%s/home-%c", dir, 'a' + i), 0);
		ck_assert_int_ge(asprintf(&n->mnt, "%s/mnt-%c", dir, 'a' + i), 0);
		ck_assert_int_eq(fixture_port_free(&port), 0);
		snprintf(n->listen, sizeof n->listen, "127.0.0.1:%u", port);
		ck_assert_int_eq(itest_key(n->home, "default", pub[i]), 0);
		ledger_hex(pub[i], LEDGER_KEY_LEN, n->key);
	}
	/* A and B produce (1 s blocks, 1 s grace); C is a member */
	ck_assert_int_eq(itest_drive_create_with(A->home, "team", "default",
	                                         (const uint8_t(*)[LEDGER_KEY_LEN])pub[1], 1, 1, 1,
	                                         id),
	                 0);
	struct ledger *l;
	struct ledger_op op = { .type = LEDGER_REC_MEMBER };

	ck_assert_int_eq(itest_drive_open(A->home, id, "default", &l), 0);
	memcpy(op.member, pub[2], LEDGER_KEY_LEN);
	ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
	itest_drive_close(l);

	char tdir[4200];
	snprintf(tdir, sizeof tdir, "%s/tracker", dir);
	ck_assert_int_eq(fixture_tracker_start(tdir, &tracker), 0);
	mount_node(A, false);
	/* the tracker takes the drive torrent; file torrents find members directly */
	char *dt = itest_status_field(A->mnt, "drive torrent");
	ck_assert_int_eq(strlen(dt), 64);
	ck_assert_int_eq(fixture_tracker_allow(tracker, dt), 0);
	free(dt);
	uri = itest_status_field(A->mnt, "uri");
	ck_assert_msg(strstr(uri, "gl=") && strstr(uri, "tr="), "uri: %s", uri);
}

static void teardown(void)
{
	for (int i = N_NODES - 1; i >= 0; i--) {
		if (nodes[i].m)
			fixture_mount_stop(nodes[i].m);
		nodes[i].m = NULL;
	}
	fixture_tracker_stop(tracker);
	tracker = NULL;
	fixture_tmpdir_remove(dir);
	for (int i = 0; i < N_NODES; i++) {
		free(nodes[i].home);
		free(nodes[i].mnt);
		memset(&nodes[i], 0, sizeof nodes[i]);
	}
	free(dir);
	free(src);
	free(uri);
}

static void make_tree(void)
{
	char path[4200];

	free(itest_run(10000, "mkdir -p '%s/tree/docs/deep' '%s/tree/media'", src, src));
	snprintf(path, sizeof path, "%s/tree/media/clip.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 3 << 20, 1), 0);
	snprintf(path, sizeof path, "%s/tree/docs/deep/notes.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 70000, 2), 0);
	free(itest_run(10000, "echo hello > '%s/tree/docs/readme.txt'", src));
}

START_TEST(tree_by_cp_appears_on_every_node)
{
	mount_node(B, false);
	mount_node(C, false);
	make_tree();
	free(itest_run(60000, "cp -r '%s/tree' '%s/'", src, A->mnt));
	itest_wait_published(A->mnt);
	itest_wait_path(B->mnt, "tree/media/clip.bin", 10);
	itest_wait_path(C->mnt, "tree/media/clip.bin", 10);
	wait_same_tree(20);
	char *ta = tree_of(A);

	ck_assert_ptr_nonnull(strstr(ta, "./tree/docs/deep/notes.bin"));
	free(ta);
	char *owner = itest_run(10000,
	                        "getfattr --absolute-names --only-values -n user.swarmfs.owner "
	                        "'%s/tree/docs/readme.txt'",
	                        C->mnt);
	ck_assert_str_eq(owner, A->key);
	free(owner);
}
END_TEST

START_TEST(random_reads_fetch_a_fraction)
{
	char path[4200];

	mount_node(B, false);
	snprintf(path, sizeof path, "%s/big.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 256u << 20, 3), 0);
	free(itest_run(120000, "cp '%s' '%s/'", path, A->mnt));
	itest_wait_published(A->mnt);
	itest_wait_path(B->mnt, "big.bin", 10);
	srand(7);
	for (int i = 0; i < 20; i++) {
		long blk = rand() % (long)((256u << 20) / 16384);
		char *got = itest_run(
		    30000, "dd if='%s/big.bin' bs=16k skip=%ld count=1 status=none | sha256sum",
		    B->mnt, blk);
		char *want = itest_run(
		    30000, "dd if='%s' bs=16k skip=%ld count=1 status=none | sha256sum", path, blk);

		ck_assert_str_eq(got, want);
		free(got);
		free(want);
	}
	unsigned long long n = cached_bytes(B, "big.bin");

	/* 20 reads of 16 KiB with their read-ahead: far from the whole file */
	ck_assert_msg(n > 0 && n < (256ull << 20) / 4, "20 random reads cached %llu of %u bytes", n,
	              256u << 20);
}
END_TEST

/* Tried: a 2-minute video published on A is probed on B with ffprobe and decoded at
 * 1:30 with ffmpeg -ss (the frame's hash equals the source's): the container's head,
 * its index and the clusters near the seek point come over, not the whole file. */
START_TEST(ffprobe_and_seek_fetch_a_fraction)
{
	char path[4200];
	struct stat st;

	mount_node(B, false);
	snprintf(path, sizeof path, "%s/film.mkv", src);
	free(itest_run(120000,
	               "ffmpeg -loglevel error -y -f lavfi -i "
	               "'testsrc=size=320x180:rate=25,noise=alls=60:allf=t' -f lavfi -i "
	               "sine=frequency=440 -t 120 -c:v mpeg4 -q:v 3 -g 25 -c:a aac -shortest '%s'",
	               path));
	ck_assert_int_eq(stat(path, &st), 0);
	free(itest_run(60000, "cp '%s' '%s/'", path, A->mnt));
	itest_wait_published(A->mnt);
	itest_wait_path(B->mnt, "film.mkv", 15);
	char *dur = itest_run(60000,
	                      "ffprobe -v error -show_entries format=duration -of csv=p=0 "
	                      "'%s/film.mkv'",
	                      B->mnt);
	ck_assert_msg(!strncmp(dur, "120.", 4) || !strncmp(dur, "119.9", 5), "duration %s", dur);
	free(dur);
	char *got = itest_run(
	    60000, "ffmpeg -v error -ss 90 -i '%s/film.mkv' -frames:v 1 -an -f framemd5 -", B->mnt);
	char *want =
	    itest_run(60000, "ffmpeg -v error -ss 90 -i '%s' -frames:v 1 -an -f framemd5 -", path);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	unsigned long long n = cached_bytes(B, "film.mkv");

	fprintf(stderr, "ffprobe and one seek cached %llu of %lld bytes\n", n,
	        (long long)st.st_size);
	ck_assert_msg(n > 0 && n < (unsigned long long)st.st_size / 2,
	              "probing and one seek cached %llu of %lld bytes", n, (long long)st.st_size);
}
END_TEST

START_TEST(transfer_on_b_is_seen_on_a)
{
	mount_node(B, false);
	mount_node(C, false);
	free(itest_run(10000, "echo from-b > '%s/b.txt'", B->mnt));
	itest_wait_published(B->mnt);
	itest_wait_path(A->mnt, "b.txt", 10);
	free(itest_run(30000, "'%s' transfer '%s/b.txt' --to %s", getenv("SWARMFS_BIN"), B->mnt,
	               C->key));
	wait_xattr(A, "b.txt", "owner", C->key, 15);
	/* and C, the new owner, may now change it, in place (its content, which C never
	 * read, comes from the swarm first); A sees the new content */
	wait_xattr(C, "b.txt", "owner", C->key, 15);
	free(itest_run(30000, "echo by-c >> '%s/b.txt'", C->mnt));
	itest_wait_published(C->mnt);
	double end = itest_now_s() + 15;
	for (;;) {
		char *got = itest_run(10000, "cat '%s/b.txt'", A->mnt);
		bool done = !strcmp(got, "from-b\nby-c\n");

		free(got);
		if (done)
			break;
		ck_assert_msg(itest_now_s() < end, "A did not see C's new content within 15 s");
		usleep(100000);
	}
}
END_TEST

/* Tried: with both producers down, member C publishes by cp: the file is listed on C at
 * once as pending (not only found by name), and once a producer is back it comes back
 * in a block: confirmed on C and seen on A. */
START_TEST(member_publishes_while_no_producer_is_up)
{
	mount_node(B, false);
	mount_node(C, false);
	free(itest_run(10000, "echo hello > '%s/hello.txt'", A->mnt));
	itest_wait_published(A->mnt);
	itest_wait_path(C->mnt, "hello.txt", 15);
	unmount_node(A);
	unmount_node(B);
	free(itest_run(10000, "echo from-c > '%s/c.txt'", C->mnt));
	itest_wait_published(C->mnt);
	char *ls = itest_run(10000, "ls '%s'", C->mnt);

	ck_assert_str_eq(ls, "c.txt\nhello.txt\n");
	free(ls);
	wait_xattr(C, "c.txt", "status", "pending", 5);
	mount_node(A, false);
	wait_xattr(C, "c.txt", "status", "confirmed", 30);
	itest_wait_path(A->mnt, "c.txt", 15);
	char *got = itest_run(30000, "cat '%s/c.txt'", A->mnt);

	ck_assert_str_eq(got, "from-c\n");
	free(got);
}
END_TEST

START_TEST(late_and_offline_nodes_catch_up)
{
	mount_node(B, false);
	free(itest_run(10000, "echo one > '%s/one.txt'", A->mnt));
	itest_wait_published(A->mnt);
	/* C joins late */
	mount_node(C, false);
	itest_wait_path(C->mnt, "one.txt", 15);
	/* C goes away; A and B publish meanwhile */
	unmount_node(C);
	free(itest_run(10000, "echo two > '%s/two.txt'", A->mnt));
	free(itest_run(10000, "echo three > '%s/three.txt'", B->mnt));
	itest_wait_published(A->mnt);
	itest_wait_published(B->mnt);
	itest_wait_path(A->mnt, "three.txt", 15);
	/* back: C catches up */
	mount_node(C, false);
	itest_wait_path(C->mnt, "two.txt", 15);
	itest_wait_path(C->mnt, "three.txt", 15);
	wait_same_head(15);
	char *got = itest_run(10000, "cat '%s/one.txt' '%s/two.txt' '%s/three.txt'", C->mnt, C->mnt,
	                      C->mnt);

	ck_assert_str_eq(got, "one\ntwo\nthree\n");
	free(got);
}
END_TEST

START_TEST(partitioned_producers_converge_with_a_conflict_copy)
{
	char cfg[4200], aside[4300];

	mount_node(B, false);
	mount_node(C, false);
	free(itest_run(10000, "echo base > '%s/base.txt'", A->mnt));
	itest_wait_published(A->mnt);
	itest_wait_path(B->mnt, "base.txt", 15);
	/* B alone: its remembered tracker moved aside, no peer, no DHT */
	unmount_node(B);
	snprintf(cfg, sizeof cfg, "%s/drives/%s/config", B->home, id);
	snprintf(aside, sizeof aside, "%s.aside", cfg);
	ck_assert_int_eq(rename(cfg, aside), 0);
	mount_node(B, true);
	free(itest_run(10000, "echo from-a > '%s/same.txt' && echo a > '%s/a-only.txt'", A->mnt,
	               A->mnt));
	free(itest_run(10000, "echo from-b > '%s/same.txt' && echo b > '%s/b-only.txt'", B->mnt,
	               B->mnt));
	itest_wait_published(A->mnt);
	itest_wait_published(B->mnt);
	/* both confirmed their own same.txt in blocks of their own */
	wait_xattr(A, "same.txt", "status", "confirmed", 20);
	wait_xattr(B, "same.txt", "status", "confirmed", 20);
	char *b_before = itest_run(10000, "cat '%s/same.txt'", B->mnt);
	ck_assert_str_eq(b_before, "from-b\n");
	free(b_before);
	/* B back in the swarm */
	unmount_node(B);
	ck_assert_int_eq(rename(aside, cfg), 0);
	mount_node(B, false);
	itest_wait_path(A->mnt, "b-only.txt", 30);
	itest_wait_path(B->mnt, "a-only.txt", 30);
	/* the loser's content comes back as a conflict copy, published by the loser */
	double end = itest_now_s() + 30;
	char ca[4400], cb[4400];
	struct stat st;

	snprintf(ca, sizeof ca, "%s/same.txt.conflict-%.8s", A->mnt, A->key);
	snprintf(cb, sizeof cb, "%s/same.txt.conflict-%.8s", A->mnt, B->key);
	while (stat(ca, &st) < 0 && stat(cb, &st) < 0) {
		ck_assert_msg(itest_now_s() < end, "no conflict copy of same.txt within 30 s");
		usleep(100000);
	}
	wait_xattr(A, strrchr(stat(ca, &st) == 0 ? ca : cb, '/') + 1, "status", "confirmed", 30);
	wait_same_head(30);
	wait_same_tree(20);
	bool a_won = stat(cb, &st) == 0;
	char *same = itest_run(10000, "cat '%s/same.txt'", B->mnt);
	char *copy = itest_run(10000, "cat '%s'", a_won ? cb : ca);

	/* nothing lost; B's mount shows the winner (its kernel cache was invalidated) */
	ck_assert_str_eq(same, a_won ? "from-a\n" : "from-b\n");
	ck_assert_str_eq(copy, a_won ? "from-b\n" : "from-a\n");
	free(same);
	free(copy);
	ck_assert(!(stat(ca, &st) == 0 && stat(cb, &st) == 0));
}
END_TEST

START_TEST(seeder_killed_mid_read_other_member_serves)
{
	char path[4200];

	mount_node(B, false);
	mount_node(C, false);
	snprintf(path, sizeof path, "%s/mid.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 64u << 20, 4), 0);
	free(itest_run(60000, "cp '%s' '%s/'", path, A->mnt));
	itest_wait_published(A->mnt);
	itest_wait_path(C->mnt, "mid.bin", 15);
	/* C holds the whole file */
	free(itest_run(120000, "cat '%s/mid.bin' > /dev/null", C->mnt));
	/* B reads the first half from whoever answers, then A dies */
	free(
	    itest_run(60000, "dd if='%s/mid.bin' bs=1M count=32 status=none of=/dev/null", B->mnt));
	ck_assert_int_eq(kill(fixture_mount_pid(A->m), SIGKILL), 0);
	char *got = itest_run(120000, "sha256sum < '%s/mid.bin'", B->mnt);
	char *want = itest_run(60000, "sha256sum < '%s'", path);

	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	fixture_mount_stop(A->m); /* reaps the killed daemon, unmounts */
	A->m = NULL;
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		tree_by_cp_appears_on_every_node,
		random_reads_fetch_a_fraction,
		ffprobe_and_seek_fetch_a_fraction,
		transfer_on_b_is_seen_on_a,
		late_and_offline_nodes_catch_up,
		member_publishes_while_no_producer_is_up,
		partitioned_producers_converge_with_a_conflict_copy,
		seeder_killed_mid_read_other_member_serves,
		NULL,
	};

	return itest_main("shared", 240, setup, teardown, tests);
}
