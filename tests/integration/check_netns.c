/*
 * One drive across a real network interface, not 127.0.0.1: two network namespaces
 * (swfs-a-<pid>, swfs-b-<pid>) joined by a veth pair on a /24 of 10.128.0.0/9 chosen
 * by the pid, each with only lo and its veth end, so nothing between the nodes can
 * take a loopback shortcut. Node A's mount daemon runs in namespace A, listening on
 * its veth address; node B's runs in namespace B and mounts A's URI (peer = A's veth
 * address). Both are started through `nsenter --net=/var/run/netns/NAME`, which
 * changes the network namespace only (`ip netns exec` also makes a mount namespace,
 * and the FUSE mounts would be invisible here), so the test uses both mounts with
 * ordinary tools.
 *
 * What is checked: a small tree copied onto A with `cp -r` shows up on B with the same
 * names and sha256sums; each file B read is wholly in B's cache (user.swarmfs.cached
 * equals its size); and B's veth received at least the tree's bytes while B read it.
 *
 * The namespaces are made once, in main(), before Check forks the test; main() deletes
 * them after the suite, and a sentinel child deletes them should main() die first.
 * Where they cannot be made the suite says why on stderr and FAILS: CI and the test
 * machines run as root, so a skip there would hide a test that never ran. What is
 * tried, in order: running as root (CAP_SYS_ADMIN), `ip netns add` of both, `ip link
 * add ... type veth` between them, addresses, links up and `nsenter`.
 */
#include "drive_util.h"
#include "fixture.h"
#include "netns_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fixed by main() before the fork: names and addresses of the namespaces. */
static struct itest_netns net;

/* Made by main() too, which removes it after the suite: a failed test leaves its
 * mounts up as it exits, so its own teardown and atexit removal would not get far. */
static char *dir, home_a[1024], home_b[1024], mnt_a[1024], mnt_b[1024], src[1024];
static struct fixture_mount *ma, *mb;

static const char *bin(void)
{
	return getenv("SWARMFS_BIN");
}

/* A small tree: two small files and one of a few MiB, in a subdirectory as well. */
static void make_tree(void)
{
	char path[4096];

	ck_assert_int_eq(mkdir(src, 0755), 0);
	snprintf(path, sizeof path, "%s/sub", src);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/big.bin", src);
	ck_assert_int_eq(fixture_file_random(path, (3 << 20) + 1234, 41), 0);
	snprintf(path, sizeof path, "%s/notes.txt", src);
	ck_assert_int_eq(fixture_file_random(path, 5000, 42), 0);
	snprintf(path, sizeof path, "%s/sub/deep.bin", src);
	ck_assert_int_eq(fixture_file_random(path, 70000, 43), 0);
}

static void setup(void)
{
	char listen[64];

	fixture_test_setup();
	make_tree();
	free(itest_run(20000, "'%s' init --public --home '%s' --name team", bin(), home_a));
	/* B has no key: a read-only member of the audience */

	const char *wrap[] = { "nsenter", net.nsenter_a, NULL };
	snprintf(listen, sizeof listen, "%s:0", net.addr_a);
	const char *args[] = { "--no-dht", "--listen", listen, NULL };
	ck_assert_int_eq(fixture_mount_start_wrapped(wrap, home_a, "team", mnt_a, args, &ma), 0);
}

static void teardown(void)
{
	fixture_mount_stop(mb);
	fixture_mount_stop(ma);
}

/* The uri: line of the drive's user.swarmfs.drive text (malloc'd). */
static char *drive_uri(const char *mnt)
{
	char *out = itest_run(
	    10000, "getfattr --absolute-names --only-values -n user.swarmfs.drive '%s'", mnt);
	char *line = strstr(out, "uri: ");

	ck_assert_msg(line != NULL, "no uri: line in user.swarmfs.drive:\n%s", out);
	line += 5;
	char *uri = strndup(line, strcspn(line, "\n"));
	free(out);
	return uri;
}

/* Bytes received so far on B's veth end, from B's own sysfs (`ip netns exec` mounts
 * one for the namespace: this process's /sys shows only the host's devices). */
static unsigned long long rx_bytes_b(void)
{
	char *out = itest_run(10000, "ip netns exec %s cat /sys/class/net/%s/statistics/rx_bytes",
	                      net.ns_b, net.veth_b);
	unsigned long long n = strtoull(out, NULL, 10);

	free(out);
	return n;
}

START_TEST(tree_copied_on_a_reads_identical_on_b_over_veth)
{
	static const char *const files[] = { "big.bin", "notes.txt", "sub/deep.bin", NULL };
	const char *wrap[] = { "nsenter", net.nsenter_b, NULL };
	char listen[64], want_peer[64];
	unsigned long long total = 0;

	free(itest_run(60000, "cp -r '%s/.' '%s/'", src, mnt_a));
	itest_wait_published(mnt_a);
	char *uri = drive_uri(mnt_a);
	snprintf(want_peer, sizeof want_peer, "peer=%s:", net.addr_a);
	ck_assert_msg(strstr(uri, want_peer), "A's URI names no peer on its veth: %s", uri);

	snprintf(listen, sizeof listen, "%s:0", net.addr_b);
	const char *args[] = { "--no-dht", "--listen", listen, NULL };
	ck_assert_int_eq(fixture_mount_start_wrapped(wrap, home_b, uri, mnt_b, args, &mb), 0);
	free(uri);

	/* the ledger syncs over the veth: B lists the whole tree */
	char *want = itest_run(10000, "cd '%s' && find . | sort", src), *got = NULL;
	for (int i = 0; i < fixture_scaled_ms(60000) / 100; i++) {
		free(got);
		got = NULL;
		fixture_sh(10000, &got, "cd '%s' && find . | sort", mnt_b);
		if (got && !strcmp(got, want))
			break;
		usleep(100000);
	}
	ck_assert_msg(got && !strcmp(got, want), "B lists after 60 s:\n%s\nA published:\n%s", got,
	              want);
	free(got);
	free(want);

	/* every byte B reads comes from A through the veth */
	unsigned long long rx0 = rx_bytes_b();
	want = itest_run(30000, "cd '%s' && find . -type f | sort | xargs sha256sum", src);
	got = itest_run(60000, "cd '%s' && find . -type f | sort | xargs sha256sum", mnt_b);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	unsigned long long rx = rx_bytes_b() - rx0;

	for (int i = 0; files[i]; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof path, "%s/%s", src, files[i]);
		ck_assert_int_eq(stat(path, &st), 0);
		total += (unsigned long long)st.st_size;
		char *out = itest_run(
		    10000, "getfattr --absolute-names --only-values -n user.swarmfs.cached '%s/%s'",
		    mnt_b, files[i]);
		ck_assert_msg(strtoull(out, NULL, 10) == (unsigned long long)st.st_size,
		              "B caches %s of %s's %lld bytes", out, files[i],
		              (long long)st.st_size);
		free(out);
	}
	ck_assert_msg(rx >= total, "B's veth received %llu bytes while reading %llu", rx, total);

	itest_stop_clean(mb, NULL);
	mb = NULL;
	itest_stop_clean(ma, NULL);
	ma = NULL;
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		tree_copied_on_a_reads_identical_on_b_over_veth,
		NULL,
	};
	int rc = itest_netns_setup(&net, 'f', "check_netns");

	if (rc == 1) {
		itest_netns_delete(&net);
		return EXIT_FAILURE;
	}
	if (rc < 0) {
		rc = EXIT_FAILURE;
		goto out;
	}
	rc = EXIT_FAILURE;
	if (fixture_tmpdir_new("netns", &dir) < 0) {
		fprintf(stderr, "check_netns: cannot make a temporary directory\n");
		goto out;
	}
	snprintf(home_a, sizeof home_a, "%s/a", dir);
	snprintf(home_b, sizeof home_b, "%s/b", dir);
	snprintf(mnt_a, sizeof mnt_a, "%s/mnt-a", dir);
	snprintf(mnt_b, sizeof mnt_b, "%s/mnt-b", dir);
	snprintf(src, sizeof src, "%s/src", dir);
	fprintf(stderr, "check_netns: %s (%s on %s) <-> %s (%s on %s)\n", net.ns_a, net.addr_a,
	        net.veth_a, net.ns_b, net.addr_b, net.veth_b);
	rc = itest_main("netns", 120, setup, teardown, tests);
	/* a failed test exits with its mounts up (their guardians stop the daemons) */
	itest_cleanup(NULL, mnt_b);
	itest_cleanup(dir, mnt_a);
	free(dir);
out:
	itest_netns_delete(&net);
	return rc;
}
