/* Making keys and drives for integration tests through the ledger API, the same way
 * `swarmfs init` lays them out (DESIGN.md §3), before a mount opens them. */
#ifndef SWARMFS_TEST_DRIVE_UTIL_H
#define SWARMFS_TEST_DRIVE_UTIL_H

#include "fixture.h"

#include <check.h>
#include <ledger.h>

/* <home>/keys/<name>.key, made if missing; its public key into out_pub. */
int itest_key(const char *home, const char *name, uint8_t out_pub[LEDGER_KEY_LEN]);

/* A new single-producer drive named name, administered by key `key` (made if missing),
 * in <home>/drives/<id>/ledger.db; its id (hex) into out_id. */
int itest_drive_create(const char *home, const char *name, const char *key,
                       char out_id[LEDGER_HEX_LEN]);

/* The same with more producers after the admin (in turn order; at most 7) and a block
 * interval and grace delay in seconds (0: the defaults). */
int itest_drive_create_with(const char *home, const char *name, const char *key,
                            const uint8_t (*more)[LEDGER_KEY_LEN], size_t n_more,
                            int64_t interval_s, int64_t grace_s, char out_id[LEDGER_HEX_LEN]);

/* A private drive (members only, DESIGN.md §9) named name, administered by key `key`;
 * its first epoch begins when its admin opens it (ledger_epoch_rotate). */
int itest_drive_create_private(const char *home, const char *name, const char *key,
                               char out_id[LEDGER_HEX_LEN]);
/* The same with the given members, and the epoch key sealed to each. */
int itest_drive_create_private_with(const char *home, const char *name, const char *key,
                                    const uint8_t (*members)[LEDGER_KEY_LEN], size_t n,
                                    char out_id[LEDGER_HEX_LEN]);

/* Open that drive's ledger with key `key` (NULL: read-only) for setting up records;
 * close it with itest_drive_close() before mounting. */
int itest_drive_open(const char *home, const char *id, const char *key, struct ledger **out);
void itest_drive_close(struct ledger *l);

/* Submit a claim of path with made-up content of length bytes (the namespace tests
 * need no swarm) owned by the ledger's key. */
int itest_claim(struct ledger *l, const char *path, uint64_t length, uint32_t mode,
                int64_t mtime_s);

/* ---- what every integration suite does ---- */

/* The main() of a suite: one test case with a checked fixture and a per-test timeout;
 * tests is NULL-terminated. Returns the exit code. */
int itest_main(const char *name, double timeout_s, void (*setup)(void), void (*teardown)(void),
               const TTest *const *tests);

/* Teardown: lazily unmount mnt if a failed test left it mounted, remove dir. */
void itest_cleanup(const char *dir, const char *mnt);

/* Run a shell command (printf-style) and fail the test unless it exits 0 within
 * timeout_ms; returns its output (free it). */
char *itest_run(int timeout_ms, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stop a mount and fail on error or warning lines in its log other than the allowed
 * substrings (NULL-terminated, may be NULL), or on a daemon exit status other than 0. */
void itest_stop_clean(struct fixture_mount *m, const char *const allowed[]);

/* aria2c seeding tfile, whose data is under data_dir, on 127.0.0.1:port only (no DHT,
 * LPD or PEX; checks its data first), its output in log. Stop it with
 * fixture_proc_stop. */
void itest_aria2c_seed(const char *data_dir, const char *tfile, uint16_t port, const char *log,
                       struct fixture_proc **out);

/* Wait (60 s at most) until `swarmfs status` of the mount says nothing is staged or
 * queued: everything copied in is published. */
void itest_wait_published(const char *mnt);

/* CLOCK_MONOTONIC in seconds, for the deadlines of polls. */
double itest_now_s(void);
/* The deadline timeout_s from now, scaled by CK_TIMEOUT_MULTIPLIER (fixture_scaled_ms):
 * every poll's deadline comes from here. */
double itest_deadline_s(double timeout_s);

/* The value of a "name: value" line of the mount's status (user.swarmfs.drive), "" if
 * none; free it. */
char *itest_status_field(const char *mnt, const char *name);

/* Wait until the mount holds its private drive's current epoch key (a member's node
 * sealed it to this one): only then can it open or publish the drive's files. Fail
 * after timeout_s. */
void itest_wait_key_held(const char *mnt, double timeout_s);

/* Wait until rel (relative to the mount point mnt) exists; fail after timeout_s. */
void itest_wait_path(const char *mnt, const char *rel, double timeout_s);

/* Wait until file path holds a line containing each of the NULL-terminated substrings
 * (all on one line); fail with what was waited for after timeout_s. */
void itest_wait_log(const char *path, const char *const subs[], double timeout_s);

#endif
