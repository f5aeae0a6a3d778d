/*
 * Hosting (DESIGN §11) on a public drive shared by nodes on 127.0.0.1 with a real
 * opentracker: A (the admin, the only producer) publishes; B and C are members; D has
 * a key of its own and is no member (a public drive lets it mount and read).
 *
 * volunteer_hosts_and_the_file_outlives_its_publisher: replica target 2 (`drive set`,
 * and B, no admin, is refused). A publishes a file: one holder (A, implicitly). C,
 * mounted with -o volunteer=64M (--volunteer), fetches and pins it by itself and records a host
 * claim: `health --json` (parsed with python3's json) says 2 on A's node, and user.swarmfs.holders
 * does too. A stops: B reads the file from C alone (sha256 equal), and B's health says 2 holders on
 * the ledger, 1 confirmed (the one seen whole in the swarm now: C).
 *
 * pin_unpin_last_copy_and_refusals: B pins a file (health 2), unpins it (1). A, its
 * publisher, unpins it too: no member holds it, and B, which has it whole, keeps it (its
 * status says "kept: 1 files ... last known copy"); B then reads a file twice its small
 * cache (--cache-size 6M): the cache evicts that file's pieces, and never the kept one
 * (user.swarmfs.cached stays its size). D, no member, tries to pin: refused with the
 * reason, and the holders stay as they were (its claim never reached the ledger: the
 * producers' refusal of a non-member's claim is attacked in check_ledger_host).
 */
#include "drive_util.h"
#include "fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_NODES 4

struct node {
	char *home, *mnt;
	char key[LEDGER_HEX_LEN];
	const char *extra[4]; /* more mount flags, NULL-terminated */
	struct fixture_mount *m;
};

static char *dir, *src;
static char id[LEDGER_HEX_LEN], *uri;
static struct node nodes[N_NODES];
static struct fixture_tracker *tracker;

#define A (&nodes[0])
#define B (&nodes[1])
#define C (&nodes[2])
#define D (&nodes[3])

static const char *bin(void)
{
	return getenv("SWARMFS_BIN");
}

static void mount_node(struct node *n)
{
	const char *args[12] = { "--no-dht", "--read-timeout", "20", "--tracker",
		                 fixture_tracker_url(tracker) };
	char db[4200];
	struct stat st;
	size_t k = 5;

	for (size_t i = 0; n->extra[i] && i < 3; i++)
		args[k++] = n->extra[i];
	snprintf(db, sizeof db, "%s/drives/%s/ledger.db", n->home, id);
	ck_assert_int_eq(
	    fixture_mount_start(n->home, stat(db, &st) < 0 ? uri : id, n->mnt, args, &n->m), 0);
}

static void stop_node(struct node *n)
{
	itest_stop_clean(n->m, NULL);
	n->m = NULL;
}

static void setup(void)
{
	uint8_t pub[N_NODES][LEDGER_KEY_LEN];
	struct ledger *l;
	char tdir[4200];

	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("hosting", &dir), 0);
	ck_assert_int_ge(asprintf(&src, "%s/src", dir), 0);
	ck_assert_int_eq(mkdir(src, 0755), 0);
	for (int i = 0; i < N_NODES; i++) {
		struct node *n = &nodes[i];

		ck_assert_int_ge(asprintf(&n->home, "%s/home-%c", dir, 'a' + i), 0);
		ck_assert_int_ge(asprintf(&n->mnt, "%s/mnt-%c", dir, 'a' + i), 0);
		ck_assert_int_eq(itest_key(n->home, "default", pub[i]), 0);
		ledger_hex(pub[i], LEDGER_KEY_LEN, n->key);
	}
	ck_assert_int_eq(itest_drive_create(A->home, "hosting", "default", id), 0);
	/* B and C are members; D is not */
	ck_assert_int_eq(itest_drive_open(A->home, id, "default", &l), 0);
	for (int i = 1; i <= 2; i++) {
		struct ledger_op op = { .type = LEDGER_REC_MEMBER };

		memcpy(op.member, pub[i], LEDGER_KEY_LEN);
		ck_assert_int_eq(ledger_submit(l, &op, NULL), 0);
	}
	itest_drive_close(l);
	snprintf(tdir, sizeof tdir, "%s/tracker", dir);
	ck_assert_int_eq(fixture_tracker_start(tdir, &tracker), 0);
	mount_node(A);
	char *dt = itest_status_field(A->mnt, "drive torrent");
	ck_assert_int_eq(strlen(dt), 64);
	ck_assert_int_eq(fixture_tracker_allow(tracker, dt), 0);
	free(dt);
	uri = itest_status_field(A->mnt, "uri");
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

/* Write a random file of size bytes into n's mount and wait until it is published;
 * its source copy stays in src. */
static void publish(struct node *n, const char *name, long long size, unsigned seed)
{
	char path[4200];

	snprintf(path, sizeof path, "%s/%s", src, name);
	ck_assert_int_eq(fixture_file_random(path, (size_t)size, seed), 0);
	free(itest_run(60000, "cp '%s' '%s/'", path, n->mnt));
	itest_wait_published(n->mnt);
}

/* What n's `swarmfs health --json` says of /name: holders and confirmed (-1: null),
 * through python3's json module (which also proves the output parses). */
static void health_of(struct node *n, const char *name, long long *holders, long long *confirmed)
{
	char *out = itest_run(20000,
	                      "'%s' health --json '%s' | python3 -c 'import json,sys\n"
	                      "d = json.load(sys.stdin)\n"
	                      "assert isinstance(d, list)\n"
	                      "m = [o for o in d if o[\"path\"] == \"/%s\"]\n"
	                      "c = m[0][\"confirmed\"] if m else None\n"
	                      "print(m[0][\"holders\"] if m else -1, -1 if c is None else c)'",
	                      bin(), n->mnt, name);

	ck_assert_int_eq(sscanf(out, "%lld %lld", holders, confirmed), 2);
	free(out);
}

/* Wait until n's health says want holders of /name (and, unless -2, want_confirmed). */
static void wait_holders(struct node *n, const char *name, long long want, long long want_confirmed,
                         double timeout_s)
{
	double end = itest_deadline_s(timeout_s);
	long long h = -1, c = -1;

	for (;;) {
		health_of(n, name, &h, &c);
		if (h == want && (want_confirmed == -2 || c == want_confirmed))
			return;
		ck_assert_msg(itest_now_s() < end,
		              "%s: /%s has %lld holders (%lld confirmed) after %.0f s, want %lld "
		              "(%lld)",
		              n->mnt, name, h, c, timeout_s, want, want_confirmed);
		usleep(250000);
	}
}

static long long xattr_num(const char *path, const char *name)
{
	char *out = itest_run(
	    10000, "getfattr --absolute-names --only-values -n user.swarmfs.%s '%s'", name, path);
	long long v = strtoll(out, NULL, 10);

	free(out);
	return v;
}

/* Run a command expected to fail; its exit status (non-zero) and output (free it). */
static char *run_fails(const char *fmt, const char *a, const char *b)
{
	char cmd[8400], *out = NULL;
	int rc;

	snprintf(cmd, sizeof cmd, fmt, bin(), a, b);
	rc = fixture_sh(20000, &out, "%s 2>&1", cmd);
	ck_assert_msg(rc != 0, "'%s' succeeded: %s", cmd, out);
	return out;
}

START_TEST(volunteer_hosts_and_the_file_outlives_its_publisher)
{
	char path[4300], *out, *got, *want;
	const long long size = 6ll << 20;
	long long h, c;

	/* the target is the admin's to set; B, a member, is refused */
	out = itest_run(20000, "'%s' drive set '%s' --replicas 2", bin(), A->mnt);
	ck_assert_msg(strstr(out, "2"), "drive set: %s", out);
	free(out);
	mount_node(B);
	out = run_fails("'%s' drive set '%s' --replicas %s", B->mnt, "1");
	ck_assert_msg(strstr(out, "admin"), "a member set the target: %s", out);
	free(out);
	/* one holder: A, which published it */
	publish(A, "f.bin", size, 21);
	wait_holders(A, "f.bin", 1, -2, 30);
	/* C volunteers (-o volunteer=, the form of fstab, which is --volunteer): it
	 * fetches and pins f.bin by itself, and claims it */
	C->extra[0] = "-o";
	C->extra[1] = "volunteer=64M";
	mount_node(C);
	wait_holders(A, "f.bin", 2, -2, 60);
	wait_holders(C, "f.bin", 2, -2, 30);
	snprintf(path, sizeof path, "%s/f.bin", A->mnt);
	ck_assert_int_eq(xattr_num(path, "holders"), 2);
	snprintf(path, sizeof path, "%s/f.bin", C->mnt);
	ck_assert_int_eq(xattr_num(path, "cached"), size); /* C holds it whole */
	out = itest_status_field(C->mnt, "volunteer");
	ck_assert_msg(strstr(out, "hosting"), "C's status: volunteer: %s", out);
	free(out);
	/* the publisher goes: B reads it from C alone */
	stop_node(A);
	/* A's ledger, now that it is not mounted, logs C's claim */
	out = itest_run(20000, "'%s' log --home '%s' %s", bin(), A->home, id);
	ck_assert_msg(strstr(out, " host ") && strstr(out, "holds content"), "log: %s", out);
	free(out);
	itest_wait_path(B->mnt, "f.bin", 30);
	got = itest_run(120000, "sha256sum < '%s/f.bin'", B->mnt);
	want = itest_run(20000, "sha256sum < '%s/f.bin'", src);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	/* two holders on the ledger (A's claim stands while it is a member), one of them
	 * seen whole now: C */
	wait_holders(B, "f.bin", 2, 1, 30);
	health_of(B, "f.bin", &h, &c);
	out = itest_run(20000, "'%s' health '%s'", bin(), B->mnt);
	ck_assert_msg(strstr(out, "holders 2 (confirmed 1)"), "health: %s", out);
	free(out);
	stop_node(C);
	stop_node(B);
}
END_TEST

START_TEST(pin_unpin_last_copy_and_refusals)
{
	char path[4300], *out;
	const long long small = 2ll << 20, big = 12ll << 20;

	B->extra[0] = "--cache-size";
	B->extra[1] = "6M";
	mount_node(B);
	publish(A, "keep.bin", small, 31);
	itest_wait_path(B->mnt, "keep.bin", 30);
	/* B pins it: fetched whole, a host claim, two holders */
	out = itest_run(60000, "'%s' pin '%s/keep.bin'", bin(), B->mnt);
	ck_assert_msg(strstr(out, "pinned"), "pin: %s", out);
	free(out);
	wait_holders(A, "keep.bin", 2, -2, 30);
	snprintf(path, sizeof path, "%s/keep.bin", B->mnt);
	ck_assert_int_eq(xattr_num(path, "cached"), small);
	/* and unpins it: one */
	out = itest_run(20000, "'%s' unpin '%s/keep.bin'", bin(), B->mnt);
	ck_assert_msg(strstr(out, "unpinned"), "unpin: %s", out);
	free(out);
	wait_holders(A, "keep.bin", 1, -2, 30);
	out = run_fails("'%s' unpin '%s'%s", path, "");
	ck_assert_msg(strstr(out, "not pinned"), "a second unpin: %s", out);
	free(out);
	/* A, its publisher, lets go too: no member holds it; B has the last known copy */
	free(itest_run(20000, "'%s' unpin '%s/keep.bin'", bin(), A->mnt));
	wait_holders(B, "keep.bin", 0, -2, 30);
	double end = itest_deadline_s(30);

	for (;;) {
		out = itest_status_field(B->mnt, "kept");
		if (strstr(out, "1 files") && strstr(out, "last known copy"))
			break;
		ck_assert_msg(itest_now_s() < end, "B's status: kept: '%s' after 30 s", out);
		free(out);
		usleep(250000);
	}
	free(out);
	/* a read of twice the cache: its own pieces go, the kept file stays */
	publish(A, "big.bin", big, 32);
	itest_wait_path(B->mnt, "big.bin", 30);
	free(itest_run(120000, "cat '%s/big.bin' > /dev/null", B->mnt));
	snprintf(path, sizeof path, "%s/big.bin", B->mnt);
	ck_assert_msg(xattr_num(path, "cached") < big, "the cache evicted nothing");
	snprintf(path, sizeof path, "%s/keep.bin", B->mnt);
	ck_assert_int_eq(xattr_num(path, "cached"), small);
	/* D, no member, tries to pin: refused with the reason; nothing counted */
	mount_node(D);
	itest_wait_path(D->mnt, "big.bin", 30);
	snprintf(path, sizeof path, "%s/big.bin", D->mnt);
	out = run_fails("'%s' pin '%s'%s", path, "");
	ck_assert_msg(strstr(out, "no member"), "a non-member's pin: %s", out);
	free(out);
	wait_holders(A, "big.bin", 1, -2, 10);
	stop_node(D);
	stop_node(B);
	stop_node(A);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		volunteer_hosts_and_the_file_outlives_its_publisher,
		pin_unpin_last_copy_and_refusals,
		NULL,
	};

	return itest_main("hosting", 150, setup, teardown, tests);
}
