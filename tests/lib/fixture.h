/*
 * tests/lib — fixtures shared by every Check suite: temporary directories, free
 * ports, commands with a timeout, long-running children that die with the test
 * (opentracker, a `swarmfs mount` in the foreground), and mount helpers.
 *
 * Cleanup is guaranteed, not hoped for: every long-running child runs under a small
 * guardian process that has PR_SET_PDEATHSIG, so when a test child is killed (a Check
 * timeout sends SIGKILL) its guardians stop their children with SIGTERM, then SIGKILL,
 * and a mount fixture's daemon unmounts (FUSE signal handler; the daemon's own
 * auto_unmount, which `swarmfs mount` always sets, covers a daemon that is itself
 * SIGKILLed: the fixture adds no option of its own).
 *
 * Threads: none of these start threads. Call them inside tests or checked fixtures
 * (after Check forks), never in unchecked fixtures.
 * Errors: >= 0 on success, -errno on failure, like the modules.
 */
#ifndef SWARMFS_FIXTURE_H
#define SWARMFS_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Call first in every test (a checked fixture does it): the test child dies when its
 * Check parent dies, so nothing it started can outlive the runner. */
void fixture_test_setup(void);

struct Suite;
/* Run a Check suite (CK_ENV verbosity, takes it over) and return main()'s exit code. */
int fixture_run_suite(struct Suite *s);

/* ---- waiting for a condition ---- */

/* ms scaled by CK_TIMEOUT_MULTIPLIER (sanitizer builds), as Check scales its own
 * timeouts: every deadline in a test goes through it. */
int fixture_scaled_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t fixture_now_ms(void);
/* Sleep ms milliseconds (restarted after signals): only between polls of a condition. */
void fixture_sleep_ms(int ms);

/* Poll cond every 10 ms until it holds; when ms (scaled) pass first, fail the test
 * with the printf-style message (a Check assertion: include <check.h>). Never falls
 * through with cond false. */
#define FIXTURE_WAIT(cond, ms, ...)                                                                \
	do {                                                                                       \
		int64_t fixture_deadline_ = fixture_now_ms() + fixture_scaled_ms(ms);              \
		while (!(cond)) {                                                                  \
			ck_assert_msg(fixture_now_ms() < fixture_deadline_, __VA_ARGS__);          \
			fixture_sleep_ms(10);                                                      \
		}                                                                                  \
	} while (0)

/* ---- temporary directories ---- */

/* mkdtemp "$TMPDIR/swarmfs-test-<tag>-XXXXXX". Caller frees *out_path with free(),
 * after fixture_tmpdir_remove(). */
int fixture_tmpdir_new(const char *tag, char **out_path);
/* rm -rf, not crossing mount points and not following links. Refuses (-EPERM) any
 * path whose last component does not start with "swarmfs-test-". */
int fixture_tmpdir_remove(const char *path);

/* Write len bytes of deterministic pseudo-random content (seeded) to path. */
int fixture_file_random(const char *path, uint64_t len, uint32_t seed);
/* SHA-256 of a file as 64 lowercase hex digits + NUL. */
int fixture_file_sha256(const char *path, char out_hex[65]);

/* ---- ports ---- */

/* A port on 127.0.0.1 that is free for both TCP and UDP right now. */
int fixture_port_free(uint16_t *out_port);

/* ---- commands with a timeout ---- */

/* Run argv (PATH searched) with stdin from /dev/null, stdout+stderr captured into a
 * malloc'd NUL-terminated string in *out_output (if not NULL; free() it). The child
 * and its process group are SIGKILLed after timeout_ms. Returns the exit code
 * (0..255), 128+N when killed by signal N, -ETIMEDOUT, or -errno. */
int fixture_run(char *const argv[], int timeout_ms, char **out_output);
/* The same with `/bin/sh -c` and a printf-style command line, for pipes. */
int fixture_sh(int timeout_ms, char **out_output, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- long-running children under a guardian ---- */

struct fixture_proc;

/* Start argv with stdout and stderr appended to log_path (or /dev/null if NULL).
 * The child is in its own process group. */
int fixture_proc_start(char *const argv[], const char *log_path, struct fixture_proc **out);
/* The real child's pid (for kill -9 tests), and whether it is still running. */
pid_t fixture_proc_pid(const struct fixture_proc *p);
bool fixture_proc_alive(struct fixture_proc *p);
/* Send a signal to the child itself. */
int fixture_proc_signal(struct fixture_proc *p, int sig);
/* Wait up to timeout_ms for the child to exit by itself; the exit status as in
 * fixture_run, or -ETIMEDOUT (the child keeps running). */
int fixture_proc_wait(struct fixture_proc *p, int timeout_ms);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; reap; free. Returns the child's exit
 * status as in fixture_run. NULL is a no-op returning 0. */
int fixture_proc_stop(struct fixture_proc *p, int timeout_ms);

/* ---- opentracker on 127.0.0.1 ---- */

struct fixture_tracker;

/* Start opentracker (TCP and UDP) on a free port, its chroot and whitelist under dir,
 * and wait until it answers HTTP. */
int fixture_tracker_start(const char *dir, struct fixture_tracker **out);
uint16_t fixture_tracker_port(const struct fixture_tracker *t);
/* "http://127.0.0.1:PORT/announce" (static storage inside t). */
const char *fixture_tracker_url(const struct fixture_tracker *t);
/* Whitelist an infohash: 40 hex digits (v1), or 64 (v2: its first 40 are listed, as
 * libtorrent announces a v2 hash truncated to 20 bytes). Reloads with SIGHUP and waits
 * until the tracker accepts the hash. */
int fixture_tracker_allow(struct fixture_tracker *t, const char *hex);
/* Whether the tracker accepts announces of this hash now (one HTTP request). */
bool fixture_tracker_accepts(const struct fixture_tracker *t, const char *hex);
/* Stop, reap and free; NULL is a no-op. */
void fixture_tracker_stop(struct fixture_tracker *t);

/* ---- swarmfs mounts ---- */

/* Whether path is a mount point now (from /proc/self/mountinfo; a dead FUSE daemon's
 * mount still counts). */
bool fixture_is_mounted(const char *path);

struct fixture_mount;

/* Run `$SWARMFS_BIN mount -f --home HOME ARGS... DRIVE MOUNTPOINT`
 * (extra_args NULL-terminated, may be NULL) with its stderr in <home>/mount-N.log,
 * creating mountpoint if needed, and wait up to 10 s until the mount is live.
 * On failure the daemon's log is printed to stderr. */
int fixture_mount_start(const char *home, const char *drive, const char *mountpoint,
                        const char *const extra_args[], struct fixture_mount **out);
/* The same with the daemon's command line after a wrapper command (NULL-terminated, at
 * most 8 words, NULL for none), e.g. { "nsenter", "--net=/var/run/netns/x", NULL }. The
 * wrapper must exec the daemon in place, so fixture_mount_pid() is still the daemon. */
int fixture_mount_start_wrapped(const char *const wrapper[], const char *home, const char *drive,
                                const char *mountpoint, const char *const extra_args[],
                                struct fixture_mount **out);
pid_t fixture_mount_pid(const struct fixture_mount *m);
/* Wait up to timeout_ms (scaled) for the daemon to exit by itself, without unmounting
 * anything: its exit status (128+N if killed by signal N) or -ETIMEDOUT. The mount is
 * still to be freed with fixture_mount_stop(). */
int fixture_mount_wait_exit(struct fixture_mount *m, int timeout_ms);
const char *fixture_mount_log(const struct fixture_mount *m);
/* Lines of the daemon's log at level error or warning (format "swarmfs: error: ...")
 * that contain none of the allowed substrings (NULL-terminated list, may be NULL).
 * Returns how many; *out_lines (if not NULL) gets them, malloc'd. */
int fixture_mount_unexpected_log(const struct fixture_mount *m, const char *const allowed[],
                                 char **out_lines);
/* Unmount with `fusermount3 -u`, wait for the daemon to exit; if it does not within
 * 10 s, SIGKILL it and lazily unmount. Frees m. Returns the daemon's exit status. */
int fixture_mount_stop(struct fixture_mount *m);

#ifdef __cplusplus
}
#endif
#endif
