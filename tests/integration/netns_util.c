/* Network namespaces for tests. See netns_util.h. */
#include "netns_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *itest_netns_create(struct itest_netns *n, char tag, char **out_log)
{
	int k = (int)getpid() % 32768; /* 10.128.0.0/9: a /24 each */

	/* the tag moves the /24 too: two suites of one pid never share one */
	k = (k + (tag - 'a') * 4099) % 32768;
	snprintf(n->ns_a, sizeof n->ns_a, "sw%c-a-%d", tag, (int)getpid());
	snprintf(n->ns_b, sizeof n->ns_b, "sw%c-b-%d", tag, (int)getpid());
	snprintf(n->veth_a, sizeof n->veth_a, "s%ca%d", tag, (int)getpid());
	snprintf(n->veth_b, sizeof n->veth_b, "s%cb%d", tag, (int)getpid());
	snprintf(n->addr_a, sizeof n->addr_a, "10.%d.%d.1", 128 + k / 256, k % 256);
	snprintf(n->addr_b, sizeof n->addr_b, "10.%d.%d.2", 128 + k / 256, k % 256);
	snprintf(n->nsenter_a, sizeof n->nsenter_a, "--net=/var/run/netns/%s", n->ns_a);
	snprintf(n->nsenter_b, sizeof n->nsenter_b, "--net=/var/run/netns/%s", n->ns_b);
	if (geteuid() != 0)
		return "not root: making network namespaces needs CAP_SYS_ADMIN";
	if (fixture_sh(10000, out_log, "ip netns add %s && ip netns add %s", n->ns_a, n->ns_b) != 0)
		return "'ip netns add' failed";
	free(*out_log);
	*out_log = NULL;
	if (fixture_sh(10000, out_log, "ip link add %s netns %s type veth peer name %s netns %s",
	               n->veth_a, n->ns_a, n->veth_b, n->ns_b) != 0)
		return "'ip link add ... type veth' failed";
	free(*out_log);
	*out_log = NULL;
	return NULL;
}

/* Deleting a namespace with no process left in it destroys its veth end, and with it
 * the pair. The sentinel does the same when it is stopped, or when main() dies (its
 * guardian then sends SIGTERM). */
static struct fixture_proc *sentinel(const struct itest_netns *n)
{
	struct fixture_proc *p = NULL;
	char *cmd;

	if (asprintf(&cmd,
	             "trap 'kill $! 2>/dev/null; ip netns del %s; ip netns del %s; exit 0' "
	             "TERM INT HUP; while :; do sleep 3600 & wait $!; done",
	             n->ns_a, n->ns_b) < 0)
		return NULL;
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	if (fixture_proc_start(argv, NULL, &p) < 0)
		p = NULL;
	free(cmd);
	return p;
}

int itest_netns_configure(struct itest_netns *n, char **out_log)
{
	if (!(n->sentinel = sentinel(n))) {
		*out_log = strdup("no sentinel process");
		return -1;
	}
	return fixture_sh(10000, out_log,
	                  "ip -n %s addr add %s/24 dev %s && ip -n %s addr add %s/24 dev %s && "
	                  "ip -n %s link set lo up && ip -n %s link set %s up && "
	                  "ip -n %s link set lo up && ip -n %s link set %s up && "
	                  "nsenter %s true && nsenter %s true",
	                  n->ns_a, n->addr_a, n->veth_a, n->ns_b, n->addr_b, n->veth_b, n->ns_a,
	                  n->ns_a, n->veth_a, n->ns_b, n->ns_b, n->veth_b, n->nsenter_a,
	                  n->nsenter_b) == 0
	           ? 0
	           : -1;
}

void itest_netns_delete(struct itest_netns *n)
{
	fixture_proc_stop(n->sentinel, 5000);
	n->sentinel = NULL;
	fixture_sh(10000, NULL, "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", n->ns_a,
	           n->ns_b);
}

int itest_netns_setup(struct itest_netns *n, char tag, const char *suite)
{
	char *log = NULL;
	const char *why = itest_netns_create(n, tag, &log);
	int rc = 0;

	if (why) {
		fprintf(stderr,
		        "%s: FAILED: this machine cannot make the network namespaces and veth "
		        "pair the test needs: %s (run the tests as root, as CI does)\n%s",
		        suite, why, log ? log : "");
		rc = 1;
	} else if (itest_netns_configure(n, &log) != 0) {
		fprintf(stderr, "%s: cannot set up %s and %s: %s\n", suite, n->ns_a, n->ns_b,
		        log ? log : "");
		rc = -1;
	}
	free(log);
	return rc;
}

unsigned itest_log_number(const char *log, const char *fmt, struct fixture_proc *p)
{
	unsigned got = 0;

	for (int i = 0; i < 600 && !got && fixture_proc_alive(p); i++) {
		FILE *f = fopen(log, "r");
		char line[256];

		unsigned v;

		while (f && fgets(line, sizeof line, f))
			if (sscanf(line, fmt, &v) == 1)
				got = v;
		if (f)
			fclose(f);
		if (!got)
			usleep(50000);
	}
	return got;
}
