/* bigdrive_gen HOME NAME COUNT [PER_BLOCK [DIRS]]: build a drive for the big-drive
 * benchmark (scripts/bench/bigdrive.sh, issue 18) through the ledger library: a public
 * drive NAME in HOME (laid out as `swarmfs init` does, key keys/default.key, made if
 * missing) holding COUNT made-up file records /tree/dNNN/file-NNNNNNN spread over DIRS
 * directories (default 1000), submitted PER_BLOCK at a time (default 1000) with
 * ledger_submit_batch: each batch is validated, signed and appended as one block, as a
 * producer's group commit does. Block times are one second apart, ending before now
 * (genesis is dated far enough back). Prints the drive id, then a line
 * "records N blocks B seconds S records_per_s R" on stderr. */
#include <ledger.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bench_clock.h"

static int64_t clock_s; /* the generator's clock: a second per block */

static int64_t gen_now(void *ctx)
{
	(void)ctx;
	return clock_s;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bigdrive_gen: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static struct ledger_key *home_key(const char *home)
{
	struct ledger_key *k;
	char p[4096];
	int err;

	snprintf(p, sizeof p, "%s/keys", home);
	mkdir(home, 0700);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/keys/default.key", home);
	if ((err = ledger_key_load(p, &k)) == 0)
		return k;
	if (err != -ENOENT)
		die(p, err);
	if ((err = ledger_key_generate(&k)) < 0 || (err = ledger_key_save(k, p)) < 0)
		die("making the key", err);
	return k;
}

/* Submit ops[0..n) as one batch; every op must pass, and make one block. */
static void batch(struct ledger *l, struct ledger_op *ops, int *rcs, size_t n)
{
	int err;

	clock_s++;
	if ((err = ledger_submit_batch(l, ops, n, rcs, NULL)) < 0)
		die("submit", err);
	for (size_t i = 0; i < n; i++)
		if (rcs[i] < 0)
			die(ops[i].path, rcs[i]);
	if (ledger_mempool_count(l) != 0)
		die("a batch did not make its block", EAGAIN);
}

int main(int argc, char **argv)
{
	size_t count, per, dirs, blocks;
	struct ledger_key *k;
	struct ledger_params p;
	struct ledger_config cfg = { 0 };
	struct ledger *l;
	struct ledger_op *ops;
	char tmp[4096], db[4200], final[4200], hex[LEDGER_HEX_LEN], (*paths)[64];
	uint8_t pub[LEDGER_KEY_LEN], id[LEDGER_ID_LEN];
	int *rcs, err;
	double t0;

	if (argc < 4) {
		fprintf(stderr, "usage: %s HOME NAME COUNT [PER_BLOCK [DIRS]]\n", argv[0]);
		return 2;
	}
	count = strtoul(argv[3], NULL, 10);
	per = argc > 4 ? strtoul(argv[4], NULL, 10) : 1000;
	dirs = argc > 5 ? strtoul(argv[5], NULL, 10) : 1000;
	if (!per || !dirs || dirs > 9999 || per > 10000)
		die("PER_BLOCK must be 1..10000 and DIRS 1..9999", EINVAL);
	k = home_key(argv[1]);
	ledger_key_public(k, pub);
	snprintf(tmp, sizeof tmp, "%s/drives", argv[1]);
	mkdir(tmp, 0700);
	snprintf(tmp, sizeof tmp, "%s/drives/.new-%d", argv[1], (int)getpid());
	if (mkdir(tmp, 0700) < 0)
		die(tmp, errno);
	snprintf(db, sizeof db, "%s/ledger.db", tmp);

	blocks = 1 + (dirs + per - 1) / per + (count + per - 1) / per;
	ledger_params_defaults(&p);
	p.name = argv[2];
	memcpy(p.admin, pub, sizeof pub);
	p.producers = &p.admin;
	p.n_producers = 1;
	p.time = (int64_t)time(NULL) - (int64_t)blocks - 60;
	clock_s = p.time;
	cfg.path = db;
	cfg.key = k;
	cfg.fast_unsafe = true; /* one sync at the end: a crash leaves a drive to throw away */
	cfg.auto_produce = true;
	cfg.now = gen_now;
	if ((err = ledger_create(&cfg, &p, k, &l)) < 0)
		die("create", err);

	ops = calloc(per, sizeof *ops);
	rcs = calloc(per, sizeof *rcs);
	paths = calloc(per, sizeof *paths);
	if (!ops || !rcs || !paths)
		die("memory", ENOMEM);
	t0 = bench_now();
	/* the directories first: /tree and DIRS beneath it */
	ops[0] = (struct ledger_op){ .type = LEDGER_REC_MKDIR, .path = "/tree" };
	ops[0].content.mode = 0755;
	ops[0].content.mtime_ns = p.time * 1000000000LL;
	batch(l, ops, rcs, 1);
	for (size_t d = 0; d < dirs; d += per) {
		size_t n = dirs - d < per ? dirs - d : per;

		for (size_t i = 0; i < n; i++) {
			snprintf(paths[i], sizeof paths[i], "/tree/d%03zu", d + i);
			ops[i] = (struct ledger_op){ .type = LEDGER_REC_MKDIR, .path = paths[i] };
			ops[i].content.mode = 0755;
			ops[i].content.mtime_ns = p.time * 1000000000LL;
		}
		batch(l, ops, rcs, n);
	}
	for (size_t f = 0; f < count; f += per) {
		size_t n = count - f < per ? count - f : per;

		for (size_t i = 0; i < n; i++) {
			size_t x = f + i;
			struct ledger_op *op = &ops[i];

			snprintf(paths[i], sizeof paths[i], "/tree/d%03zu/file-%07zu", x % dirs, x);
			*op = (struct ledger_op){ .type = LEDGER_REC_CLAIM, .path = paths[i] };
			memcpy(op->content.root, &x, sizeof x);
			memcpy(op->content.ih2, &x, sizeof x);
			op->content.ih2[31] = 1;
			op->content.length = 1 + x % 100000;
			op->content.piece_length = 16384;
			op->content.mode = 0644;
			op->content.mtime_ns = (p.time + 1) * 1000000000LL;
			op->nonce = (int64_t)x + 1;
		}
		batch(l, ops, rcs, n);
		if ((f / per) % 100 == 99)
			fprintf(stderr, "bigdrive_gen: %zu records, %.0f s\n", f + n,
			        bench_now() - t0);
	}
	{
		double s = bench_now() - t0;
		struct ledger_head head;

		ledger_head_get(l, &head);
		fprintf(stderr, "records %zu blocks %llu seconds %.1f records_per_s %.0f\n", count,
		        (unsigned long long)head.height, s, (double)count / s);
	}
	ledger_drive_id(l, id);
	ledger_free(l);
	ledger_key_free(k);
	sync();
	ledger_hex(id, sizeof id, hex);
	snprintf(final, sizeof final, "%s/drives/%s", argv[1], hex);
	if (rename(tmp, final) < 0)
		die(final, errno);
	printf("%s\n", hex);
	free(ops);
	free(rcs);
	free(paths);
	return 0;
}
