/* The fixtures every later test relies on, each tried for real. */
#include "fixture.h"

#include <check.h>
#include <stdbool.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Gone, or a zombie waiting for a reaper that is not ours (kill(pid, 0) still
 * succeeds on a zombie). */
static bool pid_gone(pid_t pid, int timeout_ms)
{
	char path[64], buf[256];

	for (int i = 0; i < fixture_scaled_ms(timeout_ms) / 10; i++) {
		FILE *f;

		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		if (!f)
			return true;
		char *ok = fgets(buf, sizeof buf, f);
		fclose(f);
		char *rp = ok ? strrchr(buf, ')') : NULL;
		if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
			return true;
		usleep(10000);
	}
	return false;
}

START_TEST(tmpdir_made_and_removed)
{
	char *dir = NULL, path[4096];
	struct stat sb;

	ck_assert_int_eq(fixture_tmpdir_new("fx", &dir), 0);
	ck_assert_ptr_nonnull(strstr(dir, "/swarmfs-test-fx-"));
	snprintf(path, sizeof path, "%s/a", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/a/f", dir);
	ck_assert_int_eq(fixture_file_random(path, 12345, 1), 0);
	snprintf(path, sizeof path, "%s/link", dir);
	ck_assert_int_eq(symlink("/etc", path), 0); /* must not be followed */
	ck_assert_int_eq(fixture_tmpdir_remove(dir), 0);
	ck_assert_int_eq(stat(dir, &sb), -1);
	ck_assert_int_eq(stat("/etc/hostname", &sb), 0);
	free(dir);
}
END_TEST

START_TEST(tmpdir_remove_refuses_foreign_paths)
{
	/* what was tried: paths a buggy test might pass; none may be touched */
	ck_assert_int_eq(fixture_tmpdir_remove("/tmp"), -EPERM);
	ck_assert_int_eq(fixture_tmpdir_remove("/"), -EPERM);
	ck_assert_int_eq(fixture_tmpdir_remove("/home/swarmfs"), -EPERM);
}
END_TEST

START_TEST(random_file_and_sha256_match_sha256sum)
{
	char *dir, path[4096], hex[65], *out = NULL;

	ck_assert_int_eq(fixture_tmpdir_new("fx", &dir), 0);
	snprintf(path, sizeof path, "%s/f", dir);
	ck_assert_int_eq(fixture_file_random(path, 3 * 1024 * 1024 + 7, 42), 0);
	ck_assert_int_eq(fixture_file_sha256(path, hex), 0);
	ck_assert_int_eq(fixture_sh(10000, &out, "sha256sum '%s'", path), 0);
	ck_assert_int_eq(strncmp(out, hex, 64), 0);
	free(out);
	/* the same seed gives the same bytes, another seed others */
	char hex2[65];
	ck_assert_int_eq(fixture_file_random(path, 3 * 1024 * 1024 + 7, 42), 0);
	ck_assert_int_eq(fixture_file_sha256(path, hex2), 0);
	ck_assert_str_eq(hex, hex2);
	ck_assert_int_eq(fixture_file_random(path, 3 * 1024 * 1024 + 7, 43), 0);
	ck_assert_int_eq(fixture_file_sha256(path, hex2), 0);
	ck_assert_str_ne(hex, hex2);
	ck_assert_int_eq(fixture_tmpdir_remove(dir), 0);
	free(dir);
}
END_TEST

START_TEST(free_port_is_bindable)
{
	uint16_t a, b;

	ck_assert_int_eq(fixture_port_free(&a), 0);
	ck_assert_int_eq(fixture_port_free(&b), 0);
	ck_assert_uint_gt(a, 0);
	ck_assert_uint_gt(b, 0);
}
END_TEST

START_TEST(run_reports_exit_output_and_timeout)
{
	char *out = NULL;
	char *echo[] = { "echo", "hello", NULL };
	char *fail[] = { "sh", "-c", "echo oops >&2; exit 3", NULL };
	char *missing[] = { "swarmfs-no-such-program", NULL };

	ck_assert_int_eq(fixture_run(echo, 5000, &out), 0);
	ck_assert_str_eq(out, "hello\n");
	free(out);
	ck_assert_int_eq(fixture_run(fail, 5000, &out), 3);
	ck_assert_str_eq(out, "oops\n");
	free(out);
	ck_assert_int_eq(fixture_run(missing, 5000, NULL), 127);
	ck_assert_int_eq(fixture_sh(5000, NULL, "kill -9 $$"), 128 + SIGKILL);
	/* a command that outlives its timeout is killed with its whole group */
	ck_assert_int_eq(fixture_sh(300, &out, "sleep 30 & echo $!; wait"), -ETIMEDOUT);
	pid_t bg = (pid_t)atol(out);
	ck_assert_int_gt(bg, 1);
	ck_assert(pid_gone(bg, 2000));
	free(out);
}
END_TEST

START_TEST(proc_start_signal_stop)
{
	char *argv[] = { "sleep", "60", NULL };
	struct fixture_proc *p;

	ck_assert_int_eq(fixture_proc_start(argv, NULL, &p), 0);
	pid_t child = fixture_proc_pid(p);
	ck_assert(fixture_proc_alive(p));
	ck_assert_int_eq(fixture_proc_wait(p, 100), -ETIMEDOUT);
	ck_assert_int_eq(fixture_proc_stop(p, 2000), 128 + SIGTERM);
	ck_assert(pid_gone(child, 2000));

	char *ex[] = { "sh", "-c", "exit 7", NULL };
	ck_assert_int_eq(fixture_proc_start(ex, NULL, &p), 0);
	ck_assert_int_eq(fixture_proc_wait(p, 5000), 7);
	ck_assert_int_eq(fixture_proc_stop(p, 1000), 7);
}
END_TEST

/* A process (the stand-in for a test) starts a child under a guardian and is then
 * SIGKILLed, alone or with its whole process group as Check does after every test and
 * on a timeout; the child must not outlive it. */
static void child_dies_with_killed_tester(bool whole_group)
{
	int pfd[2], st;
	pid_t child = 0, tester;

	ck_assert_int_eq(pipe(pfd), 0);
	tester = fork();
	ck_assert_int_ge(tester, 0);
	if (tester == 0) {
		char *argv[] = { "sleep", "60", NULL };
		struct fixture_proc *p;

		if (whole_group)
			setpgid(0, 0); /* a group of its own, standing for the test's */
		if (fixture_proc_start(argv, NULL, &p) < 0)
			_exit(1);
		child = fixture_proc_pid(p);
		if (write(pfd[1], &child, sizeof child) != sizeof child)
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pfd[0], &child, sizeof child), (ssize_t)sizeof child);
	ck_assert_int_eq(kill(child, 0), 0);
	if (whole_group)
		ck_assert_int_eq(killpg(tester, SIGKILL), 0);
	else
		kill(tester, SIGKILL);
	waitpid(tester, &st, 0);
	ck_assert(pid_gone(child, 5000));
	close(pfd[0]);
	close(pfd[1]);
}

START_TEST(proc_dies_with_a_killed_test)
{
	/* what was tried: the process that started a child is SIGKILLed */
	child_dies_with_killed_tester(false);
}
END_TEST

START_TEST(proc_dies_with_a_killed_process_group)
{
	/* what was tried: the test's whole process group SIGKILLed; the guardian must
	 * not go with it unheard */
	child_dies_with_killed_tester(true);
}
END_TEST

START_TEST(tracker_whitelist)
{
	char *dir, tdir[4096];
	struct fixture_tracker *t;
	const char *v1 = "0123456789abcdef0123456789abcdef01234567";
	const char *v2 = "89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567";
	const char *other = "fedcba9876543210fedcba9876543210fedcba98";

	ck_assert_int_eq(fixture_tmpdir_new("fx", &dir), 0);
	snprintf(tdir, sizeof tdir, "%s/tracker", dir);
	ck_assert_int_eq(fixture_tracker_start(tdir, &t), 0);
	ck_assert_uint_gt(fixture_tracker_port(t), 0);
	ck_assert_ptr_nonnull(strstr(fixture_tracker_url(t), "http://127.0.0.1:"));
	ck_assert(!fixture_tracker_accepts(t, v1));
	ck_assert_int_eq(fixture_tracker_allow(t, v1), 0);
	ck_assert(fixture_tracker_accepts(t, v1));
	/* a v2 hash is announced truncated to its first 20 bytes */
	ck_assert_int_eq(fixture_tracker_allow(t, v2), 0);
	ck_assert(fixture_tracker_accepts(t, v2));
	char trunc[41];
	snprintf(trunc, sizeof trunc, "%.40s", v2);
	ck_assert(fixture_tracker_accepts(t, trunc));
	ck_assert(!fixture_tracker_accepts(t, other));
	/* what was tried: malformed hashes are refused, not written */
	ck_assert_int_eq(fixture_tracker_allow(t, "xyz"), -EINVAL);
	ck_assert_int_eq(fixture_tracker_allow(t, "0123456789abcdef0123456789abcdef0123456g"),
	                 -EINVAL);
	fixture_tracker_stop(t);
	ck_assert_int_eq(fixture_tmpdir_remove(dir), 0);
	free(dir);
}
END_TEST

static void setup(void)
{
	fixture_test_setup();
}

int main(void)
{
	Suite *s = suite_create("fixture");
	TCase *tc = tcase_create("fixture");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, tmpdir_made_and_removed);
	tcase_add_test(tc, tmpdir_remove_refuses_foreign_paths);
	tcase_add_test(tc, random_file_and_sha256_match_sha256sum);
	tcase_add_test(tc, free_port_is_bindable);
	tcase_add_test(tc, run_reports_exit_output_and_timeout);
	tcase_add_test(tc, proc_start_signal_stop);
	tcase_add_test(tc, proc_dies_with_a_killed_test);
	tcase_add_test(tc, proc_dies_with_a_killed_process_group);
	tcase_add_test(tc, tracker_whitelist);
	suite_add_tcase(s, tc);
	return fixture_run_suite(s);
}
