/* Two network namespaces joined by a veth pair, for tests of nodes that must not take a
 * loopback shortcut (check_netns, check_dht). Names and a /24 of 10.128.0.0/9 come from
 * the pid and a one-letter tag, so suites running at once do not meet. Made in main(),
 * before Check forks. */
#ifndef SWARMFS_TESTS_NETNS_UTIL_H
#define SWARMFS_TESTS_NETNS_UTIL_H

#include "fixture.h"

struct itest_netns {
	char ns_a[32], ns_b[32], veth_a[16], veth_b[16], addr_a[32], addr_b[32];
	char nsenter_a[64], nsenter_b[64]; /* "--net=/var/run/netns/NAME" for nsenter */
	struct fixture_proc *sentinel;     /* deletes them should main() die first */
};

/* Make the namespaces and the veth pair: NULL, or a message (static) saying why this
 * machine cannot (not root, no netns, no veth: the suite skips), with what the failing
 * command printed in *out_log. */
const char *itest_netns_create(struct itest_netns *n, char tag, char **out_log);
/* Addresses, links up, a sentinel: 0, or -1 with the reason in *out_log. */
int itest_netns_configure(struct itest_netns *n, char **out_log);
/* Both steps for a suite's main(): 0 made, 1 when this machine cannot (the suite
 * fails: CI runs as root), saying why on stderr, -1 on a failure after that.
 * Either way itest_netns_delete is safe afterwards. */
int itest_netns_setup(struct itest_netns *n, char tag, const char *suite);
/* Wait (30 s at most) until a line of the file log reads as fmt with one unsigned
 * (e.g. "seeding %u"), while p lives; that number, or 0. */
unsigned itest_log_number(const char *log, const char *fmt, struct fixture_proc *p);
/* Stop the sentinel and delete both namespaces (the veth pair goes with them). */
void itest_netns_delete(struct itest_netns *n);

#endif
