#include "drive_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

static int load_or_make(const char *home, const char *name, struct ledger_key **out)
{
	char dir[4096], path[4200];
	struct ledger_key *k;
	int err;

	snprintf(dir, sizeof dir, "%s/keys", home);
	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	mkdir(home, 0700);
	mkdir(dir, 0700);
	err = ledger_key_load(path, &k);
	if (err == -ENOENT) {
		if ((err = ledger_key_generate(&k)) < 0)
			return err;
		if ((err = ledger_key_save(k, path)) < 0) {
			ledger_key_free(k);
			return err;
		}
	} else if (err < 0)
		return err;
	*out = k;
	return 0;
}

int itest_key(const char *home, const char *name, uint8_t out_pub[LEDGER_KEY_LEN])
{
	struct ledger_key *k;
	int err = load_or_make(home, name, &k);

	if (err < 0)
		return err;
	ledger_key_public(k, out_pub);
	ledger_key_free(k);
	return 0;
}

int itest_drive_create(const char *home, const char *name, const char *key,
                       char out_id[LEDGER_HEX_LEN])
{
	return itest_drive_create_with(home, name, key, NULL, 0, 0, 0, out_id);
}

static int drive_create(const char *home, const char *name, const char *key,
                        const uint8_t (*more)[LEDGER_KEY_LEN], size_t n_more, int64_t interval_s,
                        int64_t grace_s, const uint8_t (*members)[LEDGER_KEY_LEN], size_t n_members,
                        bool private_drive, char out_id[LEDGER_HEX_LEN])
{
	uint8_t producers[8][LEDGER_KEY_LEN];
	struct ledger_config cfg = { 0 };
	struct ledger_params p;
	struct ledger_key *k;
	struct ledger *l;
	uint8_t pub[LEDGER_KEY_LEN], id[LEDGER_ID_LEN];
	char tmp[4096], db[4200], final[4200];
	int err;

	if ((err = load_or_make(home, key, &k)) < 0)
		return err;
	ledger_key_public(k, pub);
	snprintf(tmp, sizeof tmp, "%s/drives", home);
	mkdir(tmp, 0700);
	/* the id is the genesis hash, known only once the genesis exists */
	snprintf(tmp, sizeof tmp, "%s/drives/.new-%d", home, (int)getpid());
	if (mkdir(tmp, 0700) < 0) {
		err = -errno;
		goto out;
	}
	snprintf(db, sizeof db, "%s/ledger.db", tmp);
	ledger_params_defaults(&p);
	p.name = (char *)name;
	memcpy(p.admin, pub, sizeof pub);
	memcpy(producers[0], pub, sizeof pub);
	for (size_t i = 0; i < n_more && i < 7; i++)
		memcpy(producers[i + 1], more[i], LEDGER_KEY_LEN);
	p.producers = producers;
	p.n_producers = 1 + (n_more < 7 ? n_more : 7);
	if (interval_s)
		p.interval_s = interval_s;
	if (grace_s)
		p.grace_s = grace_s;
	p.private_drive = private_drive;
	cfg.path = db;
	cfg.key = k;
	cfg.auto_produce = true;
	if ((err = ledger_create(&cfg, &p, k, &l)) < 0)
		goto out;
	for (size_t i = 0; i < n_members && err >= 0; i++) {
		struct ledger_op op = { .type = LEDGER_REC_MEMBER };

		memcpy(op.member, members[i], LEDGER_KEY_LEN);
		err = ledger_submit(l, &op, NULL);
	}
	if (err >= 0 && private_drive)
		err = ledger_epoch_rotate(l); /* the content key, sealed to every member */
	ledger_drive_id(l, id);
	ledger_free(l);
	if (err < 0)
		goto out;
	err = 0;
	ledger_hex(id, sizeof id, out_id);
	snprintf(final, sizeof final, "%s/drives/%s", home, out_id);
	if (rename(tmp, final) < 0)
		err = -errno;
out:
	ledger_key_free(k);
	return err;
}

int itest_drive_create_with(const char *home, const char *name, const char *key,
                            const uint8_t (*more)[LEDGER_KEY_LEN], size_t n_more,
                            int64_t interval_s, int64_t grace_s, char out_id[LEDGER_HEX_LEN])
{
	return drive_create(home, name, key, more, n_more, interval_s, grace_s, NULL, 0, false,
	                    out_id);
}

int itest_drive_create_private(const char *home, const char *name, const char *key,
                               char out_id[LEDGER_HEX_LEN])
{
	return drive_create(home, name, key, NULL, 0, 0, 0, NULL, 0, true, out_id);
}

int itest_drive_create_private_with(const char *home, const char *name, const char *key,
                                    const uint8_t (*members)[LEDGER_KEY_LEN], size_t n,
                                    char out_id[LEDGER_HEX_LEN])
{
	return drive_create(home, name, key, NULL, 0, 0, 0, members, n, true, out_id);
}

/* The keys borrowed by open ledgers (a test opens a few at a time). */
static struct {
	struct ledger *l;
	struct ledger_key *k;
} open_keys[16];

int itest_drive_open(const char *home, const char *id, const char *key, struct ledger **out)
{
	struct ledger_config cfg = { 0 };
	struct ledger_key *k = NULL;
	char db[4096];
	int err;

	if (key && (err = load_or_make(home, key, &k)) < 0)
		return err;
	snprintf(db, sizeof db, "%s/drives/%s/ledger.db", home, id);
	cfg.path = db;
	cfg.key = k;
	/* SWARMFS_ITEST_BATCH set: records wait for the caller's ledger_produce (bench fills) */
	cfg.auto_produce = !getenv("SWARMFS_ITEST_BATCH");
	cfg.fast_unsafe = getenv("SWARMFS_ITEST_BATCH") != NULL;
	err = ledger_open(&cfg, out);
	if (err < 0) {
		ledger_key_free(k);
		return err;
	}
	/* the handle borrows the key until itest_drive_close() */
	for (int i = 0; i < 16; i++) {
		if (!open_keys[i].l) {
			open_keys[i].l = *out;
			open_keys[i].k = k;
			return 0;
		}
	}
	ledger_free(*out);
	ledger_key_free(k);
	return -EMFILE;
}

void itest_drive_close(struct ledger *l)
{
	ledger_free(l);
	for (int i = 0; i < 16; i++) {
		if (open_keys[i].l == l) {
			ledger_key_free(open_keys[i].k);
			open_keys[i].l = NULL;
			open_keys[i].k = NULL;
		}
	}
}

int itest_claim(struct ledger *l, const char *path, uint64_t length, uint32_t mode, int64_t mtime_s)
{
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = path };

	/* content hashes derived from the path: distinct, and plainly made up */
	for (int i = 0; i < 32; i++) {
		op.content.root[i] = (uint8_t)(path[i % strlen(path)] + i);
		op.content.ih2[i] = (uint8_t)(path[i % strlen(path)] ^ i);
	}
	op.content.length = length;
	op.content.piece_length = 16384;
	op.content.mode = mode;
	op.content.mtime_ns = mtime_s * 1000000000LL;
	/* a private drive's content carries a file key (made up as well) and its IV's
	 * nonce, the record's own */
	uint8_t fkey[LEDGER_FILE_KEY_LEN];
	if (ledger_is_private(l)) {
		memcpy(fkey, op.content.root, sizeof fkey);
		op.file_key = fkey;
		uint64_t n = 0;
		for (size_t i = 0; i < 8; i++)
			n = n << 8 | op.content.ih2[i];
		op.nonce = (int64_t)(n & INT64_MAX) | 1;
	}
	return ledger_submit(l, &op, NULL);
}

int itest_main(const char *name, double timeout_s, void (*setup)(void), void (*teardown)(void),
               const TTest *const *tests)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout_s);
	/* SWARMFS_ITEST_ONLY=NAME runs that test alone (working on one) */
	const char *only = getenv("SWARMFS_ITEST_ONLY");

	for (int i = 0; tests[i]; i++)
		if (!only || !*only || !strcmp(tests[i]->name, only))
			_tcase_add_test(tc, tests[i], 0, 0, 0, 1);
	suite_add_tcase(s, tc);
	return fixture_run_suite(s);
}

void itest_cleanup(const char *dir, const char *mnt)
{
	/* a test that failed mid-way may still have the mount: never leave it */
	if (mnt && fixture_is_mounted(mnt)) {
		char *argv[] = { "fusermount3", "-u", "-z", (char *)mnt, NULL };

		fixture_run(argv, 10000, NULL);
	}
	if (dir)
		fixture_tmpdir_remove(dir);
}

char *itest_run(int timeout_ms, const char *fmt, ...)
{
	char *cmd, *out = NULL;
	va_list ap;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	int rc = fixture_sh(timeout_ms, &out, "%s", cmd);
	ck_assert_msg(rc == 0, "'%.200s' exited %d: %.600s", cmd, rc, out);
	free(cmd);
	return out;
}

void itest_stop_clean(struct fixture_mount *m, const char *const allowed[])
{
	char *lines = NULL;
	int n = fixture_mount_unexpected_log(m, allowed, &lines);

	ck_assert_msg(n == 0, "unexpected daemon log lines:\n%.2000s", lines);
	free(lines);
	ck_assert_int_eq(fixture_mount_stop(m), 0);
}

static bool all_published(const char *mnt)
{
	char *out = NULL;
	bool done;

	fixture_sh(5000, &out, "'%s' status '%s'", getenv("SWARMFS_BIN"), mnt);
	done = out && strstr(out, "publish queue: 0 staged, 0 queued") != NULL;
	free(out);
	return done;
}

void itest_wait_published(const char *mnt)
{
	FIXTURE_WAIT(all_published(mnt), 60000, "files still staged or queued after 60 s");
}

double itest_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double itest_deadline_s(double timeout_s)
{
	return itest_now_s() + fixture_scaled_ms((int)(timeout_s * 1000)) / 1000.0;
}

char *itest_status_field(const char *mnt, const char *name)
{
	char *out = itest_run(10000,
	                      "getfattr --absolute-names --only-values -n "
	                      "user.swarmfs.drive '%s' | sed -n 's/^%s: //p'",
	                      mnt, name);

	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* Whether the status's epoch line says the key is held. */
static bool key_held(const char *mnt)
{
	char *e = itest_status_field(mnt, "epoch");
	bool held = strstr(e, "(key held)") != NULL;

	free(e);
	return held;
}

void itest_wait_key_held(const char *mnt, double timeout_s)
{
	FIXTURE_WAIT(key_held(mnt), (int)(timeout_s * 1000), "%s holds no epoch key after %.0f s",
	             mnt, timeout_s);
}

void itest_wait_path(const char *mnt, const char *rel, double timeout_s)
{
	char path[4400];
	struct stat st;
	double end = itest_deadline_s(timeout_s);

	snprintf(path, sizeof path, "%s/%s", mnt, rel);
	while (stat(path, &st) < 0) {
		ck_assert_msg(itest_now_s() < end, "%s did not appear within %.0f s", path,
		              timeout_s);
		usleep(50000);
	}
}

/* Whether one line of the file holds every substring. */
static bool log_has(const char *path, const char *const subs[])
{
	char line[4096];
	bool found = false;
	FILE *f = fopen(path, "re");

	while (f && !found && fgets(line, sizeof line, f)) {
		found = true;
		for (int i = 0; subs[i] && found; i++)
			found = strstr(line, subs[i]) != NULL;
	}
	if (f)
		fclose(f);
	return found;
}

void itest_wait_log(const char *path, const char *const subs[], double timeout_s)
{
	double end = itest_deadline_s(timeout_s);

	while (!log_has(path, subs)) {
		if (itest_now_s() >= end) {
			char *text = NULL;

			fixture_sh(5000, &text, "tail -n 40 '%s'", path);
			ck_abort_msg("no line of %s holds '%s'%s%s within %.0f s; its end:\n%s",
			             path, subs[0], subs[1] ? " and '" : "", subs[1] ? subs[1] : "",
			             timeout_s, text ? text : "");
		}
		usleep(50000);
	}
}

void itest_aria2c_seed(const char *data_dir, const char *tfile, uint16_t port, const char *log,
                       struct fixture_proc **out)
{
	char portarg[32], dirarg[4200];

	snprintf(portarg, sizeof portarg, "--listen-port=%u", port);
	snprintf(dirarg, sizeof dirarg, "--dir=%s", data_dir);
	char *argv[] = { "aria2c",
		         dirarg,
		         "-V",
		         "--seed-ratio=0.0",
		         "--enable-dht=false",
		         "--enable-dht6=false",
		         "--bt-enable-lpd=false",
		         "--enable-peer-exchange=false",
		         portarg,
		         "--summary-interval=0",
		         (char *)tfile,
		         NULL };
	ck_assert_int_eq(fixture_proc_start(argv, log, out), 0);
}
