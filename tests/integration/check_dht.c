/*
 * Issue 14: discovery by the DHT alone, off loopback. Two network namespaces joined by
 * a veth pair (netns_util), nothing else: no tracker, no static peer, no address
 * outside them. In namespace A a python3-libtorrent DHT node is the bootstrap node, and
 * node A's mount (--dht-bootstrap at it) publishes a file. Node B, in namespace B,
 * mounts A's drive URI with its peers and trackers taken out, its DHT bootstrapped
 * from the same node: it must find the drive's members, the ledger and the file's
 * seeder through the DHT, and read the file whole.
 *
 * Where the namespaces cannot be made (not root, no netns or veth) the suite fails and
 * says why: CI runs as root, so a skip there would hide a test that never ran.
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

static struct itest_netns net;
static char *dir, home_a[1024], home_b[1024], mnt_a[1024], mnt_b[1024], boot[64];
static struct fixture_mount *ma, *mb;
static struct fixture_proc *dht;

static void setup(void)
{
	fixture_test_setup();
}

static void teardown(void)
{
	fixture_mount_stop(mb);
	fixture_mount_stop(ma);
}

/* A's URI without peer= and tr=: whoever has it must find the members some other way. */
static char *uri_without_peers(const char *mnt)
{
	char *out = itest_run(
	    10000, "getfattr --absolute-names --only-values -n user.swarmfs.drive '%s'", mnt);
	char *line = strstr(out, "uri: "), *uri, *q, *o;

	ck_assert_msg(line != NULL, "no uri: line in user.swarmfs.drive:\n%s", out);
	line += 5;
	uri = strndup(line, strcspn(line, "\n"));
	free(out);
	q = strchr(uri, '?');
	ck_assert_ptr_nonnull(q);
	o = ++q;
	for (char *p = q; *p;) {
		size_t len = strcspn(p, "&");
		bool keep = strncmp(p, "peer=", 5) && strncmp(p, "tr=", 3);

		if (keep) {
			if (o != q)
				*o++ = '&';
			memmove(o, p, len);
			o += len;
		}
		p += len + (p[len] == '&');
	}
	*o = '\0';
	return uri;
}

START_TEST(a_file_is_found_and_read_through_the_dht_alone)
{
	char listen[64], src[4200], want[65], got[65], path[4300], *uri;
	const char *wrap_a[] = { "nsenter", net.nsenter_a, NULL };
	const char *wrap_b[] = { "nsenter", net.nsenter_b, NULL };

	free(itest_run(20000, "'%s' init --public --home '%s' --name team", getenv("SWARMFS_BIN"),
	               home_a));
	snprintf(listen, sizeof listen, "%s:0", net.addr_a);
	const char *args_a[] = { "--listen", listen, "--dht-bootstrap", boot, NULL };
	ck_assert_int_eq(fixture_mount_start_wrapped(wrap_a, home_a, "team", mnt_a, args_a, &ma),
	                 0);
	snprintf(src, sizeof src, "%s/film.bin", dir);
	ck_assert_int_eq(fixture_file_random(src, (2 << 20) + 4321, 77), 0);
	ck_assert_int_eq(fixture_file_sha256(src, want), 0);
	free(itest_run(30000, "cp '%s' '%s/'", src, mnt_a));
	itest_wait_published(mnt_a);

	uri = uri_without_peers(mnt_a);
	ck_assert_msg(!strstr(uri, "peer=") && !strstr(uri, "tr="), "uri: %s", uri);
	snprintf(listen, sizeof listen, "%s:0", net.addr_b);
	const char *args_b[] = { "--listen", listen, "--dht-bootstrap", boot, "--read-timeout",
		                 "60",       NULL };
	ck_assert_int_eq(fixture_mount_start_wrapped(wrap_b, home_b, uri, mnt_b, args_b, &mb), 0);
	free(uri);
	/* the ledger comes from a member found through the DHT */
	snprintf(path, sizeof path, "%s/film.bin", mnt_b);
	bool listed = false;
	for (int i = 0; i < 1200 && !listed; i++) {
		listed = access(path, F_OK) == 0;
		if (!listed)
			usleep(100000);
	}
	ck_assert_msg(listed, "B does not list film.bin after 120 s: see %s",
	              fixture_mount_log(mb));
	ck_assert_int_eq(fixture_file_sha256(path, got), 0);
	ck_assert_str_eq(got, want);
	itest_stop_clean(mb, NULL);
	mb = NULL;
	itest_stop_clean(ma, NULL);
	ma = NULL;
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		a_file_is_found_and_read_through_the_dht_alone,
		NULL,
	};
	char script[4200], port[16];
	int rc = itest_netns_setup(&net, 'd', "check_dht");

	if (rc == 1) {
		itest_netns_delete(&net);
		return EXIT_FAILURE;
	}
	if (rc < 0) {
		rc = EXIT_FAILURE;
		goto out;
	}
	rc = EXIT_FAILURE;
	if (fixture_tmpdir_new("dht", &dir) < 0) {
		fprintf(stderr, "check_dht: cannot make a temporary directory\n");
		goto out;
	}
	snprintf(home_a, sizeof home_a, "%s/a", dir);
	snprintf(home_b, sizeof home_b, "%s/b", dir);
	snprintf(mnt_a, sizeof mnt_a, "%s/mnt-a", dir);
	snprintf(mnt_b, sizeof mnt_b, "%s/mnt-b", dir);
	/* the bootstrap node, in A's namespace on a fixed port of A's address */
	snprintf(script, sizeof script, "%s/tests/integration/lt_dht_node.py",
	         getenv("SWARMFS_SOURCE_DIR"));
	snprintf(port, sizeof port, "%d", 6881);
	char dlog[4200];
	snprintf(dlog, sizeof dlog, "%s/dht-node.log", dir);
	char *argv[] = { "nsenter", net.nsenter_a, "/usr/bin/python3", script, net.addr_a,
		         port,      NULL };
	if (fixture_proc_start(argv, dlog, &dht) < 0) {
		fprintf(stderr, "check_dht: cannot start the DHT node\n");
		goto out_dir;
	}
	unsigned got = itest_log_number(dlog, "dht %u", dht);
	if (!got) {
		fprintf(stderr, "check_dht: the DHT node did not start: see %s\n", dlog);
		goto out_dir;
	}
	snprintf(boot, sizeof boot, "%s:%u", net.addr_a, got);
	fprintf(stderr, "check_dht: %s (%s) <-> %s (%s), bootstrap node %s\n", net.ns_a, net.addr_a,
	        net.ns_b, net.addr_b, boot);
	rc = itest_main("dht", 240, setup, teardown, tests);
	itest_cleanup(NULL, mnt_b);
	itest_cleanup(NULL, mnt_a);
out_dir:
	fixture_proc_stop(dht, 5000);
	itest_cleanup(dir, NULL);
	free(dir);
out:
	itest_netns_delete(&net);
	return rc;
}
