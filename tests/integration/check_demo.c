/* The README's main command runs to the end: scripts/demo.sh --once against the build
 * under test, shows the private flow (an invite admits bob, a stranger is refused) and
 * the shared drive at work, and leaves no mount and no temporary directory behind. */
#include "fixture.h"

#include <check.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(demo_once)
{
	char bin[4096], tmp[] = "/tmp/swarmfs-demo-test-XXXXXX", *out = NULL, *after = NULL;

	/* the build directory of $SWARMFS_BIN (<build>/fs/swarmfs) */
	snprintf(bin, sizeof bin, "%s", getenv("SWARMFS_BIN"));
	char *build = dirname(dirname(bin));
	/* a TMPDIR of its own: a demo run beside it (another checkout's) is not counted */
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	int rc = fixture_sh(280000, &out, "TMPDIR='%s' BUILD_DIR='%s' '%s/scripts/demo.sh' --once",
	                    tmp, build, getenv("SWARMFS_SOURCE_DIR"));
	ck_assert_msg(rc == 0, "demo exited %d: %.3000s", rc, out);
	/* what it promises to show */
	/* the private flow: bob joins by an invite, eve (no invite) is refused and says why */
	ck_assert_msg(strstr(out, "swarmfs://") && strstr(out, "?inv=") &&
	                  strstr(out, "access: private (members only)") &&
	                  strstr(out, "not a member of drive team (") &&
	                  strstr(out, "ask a member for an invite (swarmfs invite)") &&
	                  strstr(out, "refused peer") && strstr(out, "(exit status 1;"),
	              "demo output: %.3000s", out);
	ck_assert_msg(strstr(out, "0 ledger.db files"), "eve kept a ledger: %.3000s", out);
	ck_assert_msg(
	    strstr(out, "publish queue: 0 staged") && strstr(out, "user.swarmfs.owner=") &&
	        strstr(out, "magnet:?xt=urn:btih:") && strstr(out, "Permission denied") &&
	        strstr(out, "film.mkv: pinned") && strstr(out, "/film.mkv  holders 2 (confirmed") &&
	        strstr(out, "demo: done"),
	    "demo output: %.3000s", out);
	/* the film read back through the mount has the source's checksum */
	char *p = strstr(out, "(source, then through bob's mount)\n");
	ck_assert_ptr_nonnull(p);
	p += strlen("(source, then through bob's mount)\n");
	ck_assert_int_eq(strncmp(p, p + 65, 64), 0);
	ck_assert_int_eq(fixture_sh(10000, &after, "ls -A '%s'", tmp), 0);
	ck_assert_msg(!*after, "the demo left behind in %s: %s", tmp, after);
	ck_assert_int_eq(fixture_sh(10000, NULL, "grep -q '%s' /proc/mounts", tmp), 1);
	rmdir(tmp);
	free(out);
	free(after);
}
END_TEST

static void setup(void)
{
	fixture_test_setup();
}

int main(void)
{
	Suite *s = suite_create("demo");
	TCase *tc = tcase_create("demo");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, demo_once);
	suite_add_tcase(s, tc);
	return fixture_run_suite(s);
}
