/* Benchmark driver for scripts/bench/ledger.sh: validate+append rate, replay/verify
 * time, path lookup and directory listing from the state tables, database size per
 * record; each beside a baseline measured in the same run.
 *
 *   ledger_bench DIR RECORDS [BLOCK_RECORDS]
 *
 * Times are CPU time of this process (like `openssl speed` without -elapsed), so a
 * machine shared with other work still gives comparable figures; the sync figure, whose
 * checks run on every core, gives wall time too.
 */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bench_clock.h"

static void die(const char *what, int rc)
{
	fprintf(stderr, "ledger_bench: %s: %s\n", what, strerror(-rc));
	exit(1);
}

/* LEDGER_BENCH_SYNC_ONLY: the drive is shaped as bigdrive.sh's (claims
 * /tree/dNNN/file-NNNNNNN over tree_dirs directories, content roots and infohashes that
 * differ in their first bytes, so every index takes them at random places), and only a
 * fresh node's sync of it is measured. 0: claims /fNNNNNNNN in the root. */
static size_t tree_dirs;

/* Record x of the drive into r (type, path, content). In the tree shape the first
 * tree_dirs + 1 records make /tree and its directories. */
static void fill_rec(struct rec *r, size_t x, size_t i, int64_t time)
{
	r->content.mode = 0644;
	r->content.mtime_ns = time * 1000000000LL;
	if (!tree_dirs) {
		r->type = LEDGER_REC_CLAIM;
		snprintf(r->path, sizeof r->path, "/f%08zu", x);
		memcpy(r->content.root, &i, sizeof i);
		r->content.length = 1 << 20;
		r->content.piece_length = 1 << 18;
		return;
	}
	if (x <= tree_dirs) {
		r->type = LEDGER_REC_MKDIR;
		r->content.mode = 0755;
		if (x)
			snprintf(r->path, sizeof r->path, "/tree/d%03zu", x - 1);
		else
			snprintf(r->path, sizeof r->path, "/tree");
		return;
	}
	x -= tree_dirs + 1;
	r->type = LEDGER_REC_CLAIM;
	snprintf(r->path, sizeof r->path, "/tree/d%03zu/file-%07zu", x % tree_dirs, x);
	memcpy(r->content.root, &x, sizeof x);
	memcpy(r->content.ih2, &x, sizeof x);
	r->content.ih2[31] = 1;
	r->content.length = 1 + (int64_t)(x % 100000);
	r->content.piece_length = 16384;
}

/* A block of n records first..first+n-1 (fill_rec) on top of head. */
static uint8_t *make_block(struct ledger *l, const struct ledger_key *k, size_t first, size_t n,
                           struct ledger_head *head, size_t *out_len, double *sign_s)
{
	struct ben_buf b, recs;
	uint8_t(*ids)[32] = malloc(n * 32), *hdr;
	struct blk_hdr h;
	size_t hl;
	double t0 = bench_cpu();
	int rc;

	ben_buf_init(&recs);
	ben_list_begin(&recs);
	for (size_t i = 0; i < n; i++) {
		struct rec r;
		uint8_t *raw;
		size_t len;

		memset(&r, 0, sizeof r);
		ledger_drive_id(l, r.drive);
		r.time = head->time;
		r.nonce = (int64_t)(first + i);
		fill_rec(&r, first + i, i, head->time);
		rc = rec_sign(&r, k, &raw, &len);
		if (rc)
			die("sign", rc);
		memcpy(ids[i], r.id, 32);
		ben_put_raw(&recs, raw, len);
		free(raw);
	}
	ben_end(&recs);
	memset(&h, 0, sizeof h);
	h.version = 1;
	ledger_drive_id(l, h.drive);
	h.height = (int64_t)head->height + 1;
	memcpy(h.prev, head->id, 32);
	h.time = head->time + 1; /* block times rise strictly */
	h.weight = 2;
	h.n_records = (int64_t)n;
	merkle_root_of_ids((const uint8_t(*)[32])ids, n, h.root);
	rc = blk_hdr_sign(&h, NULL, 0, k, &hdr, &hl);
	if (rc)
		die("sign block", rc);
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "h");
	ben_put_raw(&b, hdr, hl);
	ben_put_key(&b, "r");
	ben_put_raw(&b, recs.p, recs.len);
	ben_end(&b);
	ben_buf_release(&recs);
	free(hdr);
	free(ids);
	head->height++;
	head->time = h.time;
	memcpy(head->id, h.id, 32);
	*out_len = b.len;
	*sign_s += bench_cpu() - t0;
	return b.p;
}

/* Bytes this process has had written to storage so far (/proc/self/io write_bytes,
 * counted as pages are dirtied), -1 where that is not to be had. */
static long long written_bytes(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "write_bytes: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static off_t file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? st.st_size : 0;
}

int main(int argc, char **argv)
{
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
	size_t per = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
	struct ledger_key *k;
	struct ledger_params p;
	struct ledger_config cfg;
	struct ledger *l;
	struct ledger_head head;
	struct ledger_entry *es;
	char db[4096], wal[4200];
	double sign_s = 0, import_s = 0, t0, t;
	uint8_t **blks;
	size_t *blens, nblk;
	sqlite3 *raw;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: ledger_bench DIR RECORDS [BLOCK_RECORDS]\n");
		return 2;
	}
	snprintf(db, sizeof db, "%s/bench.db", argv[1]);
	snprintf(wal, sizeof wal, "%s-wal", db);
	unlink(db);
	unlink(wal);
	ledger_key_generate(&k);
	ledger_params_defaults(&p);
	p.name = "bench";
	ledger_key_public(k, p.admin);
	p.producers = &p.admin;
	p.n_producers = 1;
	p.time = time(NULL) - 60 - (time_t)(n / per + 1); /* a second per block, all past */
	memset(&cfg, 0, sizeof cfg);
	cfg.path = db;
	cfg.key = k;
	rc = ledger_create(&cfg, &p, k, &l);
	if (rc)
		die("create", rc);

	/* baseline: Ed25519 verify through the same EVP calls the ledger makes */
	{
		uint8_t sig[64], msg[300];
		int iters = 20000;

		memset(msg, 7, sizeof msg);
		ledger_key_sign(k, "t", 2, msg, sizeof msg, sig);
		t0 = bench_cpu();
		for (int i = 0; i < iters; i++)
			if (!ledger_sig_verify(k->pub, "t", 2, msg, sizeof msg, sig))
				die("verify", -EIO);
		t = bench_cpu() - t0;
		printf("ed25519_verify_evp_per_s %.0f\n", iters / t);
	}

	/* validate + append: import blocks of `per` claims (signature, encoding, Merkle
	 * root, every state rule, SQLite writes: all of it) */
	if (getenv("LEDGER_BENCH_SYNC_ONLY")) {
		const char *d = getenv("LEDGER_BENCH_DIRS");

		tree_dirs = d ? strtoul(d, NULL, 10) : (n + 999) / 1000;
		if (!tree_dirs)
			tree_dirs = 1;
		n += tree_dirs + 1;
	}
	ledger_head_get(l, &head);
	nblk = (n + per - 1) / per;
	blks = calloc(nblk, sizeof *blks);
	blens = calloc(nblk, sizeof *blens);
	for (size_t done = 0, bi = 0; done < n; done += per, bi++) {
		size_t m = n - done < per ? n - done : per, len;
		uint8_t *blk = make_block(l, k, done, m, &head, &len, &sign_s);

		blks[bi] = blk;
		blens[bi] = len;
		if (tree_dirs)
			continue; /* sync only: nothing imported here */
		t0 = bench_cpu();
		rc = ledger_block_import(l, blk, len);
		import_s += bench_cpu() - t0;
		if (rc != 1)
			die("import", rc < 0 ? rc : -EIO);
	}
	printf("records %zu block_records %zu\n", n, per);
	printf("generate_sign_s %.2f\n", sign_s);
	if (!tree_dirs) {
		printf("validate_append_s %.2f\n", import_s);
		printf("validate_append_records_per_s %.0f\n", (double)n / import_s);
	}

	/* a fresh node's sync: the same blocks applied to a new ledger (no key) as blocks
	 * messages bring them (LEDGER_SYNC_MAX_MSG bytes, LEDGER_SYNC_BATCH blocks at most),
	 * through sync_apply_blocks, which checks signatures on every core: wall and CPU */
	{
		struct ledger_config c2 = cfg;
		struct ledger *f;
		uint8_t *gen;
		size_t glen, at = 0;
		char db2[4200];
		double w0, c0, t0s, sw = 0, sc = 0, st = 0;
		size_t slice = n / 10 ? n / 10 : 1, from = 0, last = 0, next_slice = 1;
		long long io0;

		snprintf(db2, sizeof db2, "%s/fresh.db", argv[1]);
		c2.path = db2;
		unlink(db2);
		c2.key = NULL;
		if ((rc = ledger_genesis_raw(l, &gen, &glen)) ||
		    (rc = ledger_join(&c2, gen, glen, &f)))
			die("join", rc);
		free(gen);
		io0 = written_bytes();
		w0 = bench_now();
		c0 = bench_cpu();
		t0s = bench_thread_cpu();
		while (at < nblk) {
			struct blk_wire w[LEDGER_SYNC_BATCH];
			struct ben raw[LEDGER_SYNC_BATCH];
			size_t m = 0, bytes = 0;
			bool moved;

			while (at + m < nblk && m < LEDGER_SYNC_BATCH &&
			       (!m || bytes + blens[at + m] + 1024 <= LEDGER_SYNC_MAX_MSG)) {
				raw[m] = (struct ben){ blks[at + m], blens[at + m] };
				if ((rc = blk_wire_parse(raw[m].p, raw[m].len,
				                         f->params.max_block_bytes,
				                         f->params.max_block_records, &w[m])))
					die("parse", rc);
				bytes += blens[at + m++];
			}
			rc = sync_apply_blocks(f, w, raw, m, at + m < nblk, &moved);
			for (size_t i = 0; i < m; i++)
				free(w[i].recs);
			if (rc)
				die("sync apply", rc);
			for (size_t i = 0; i < m; i++)
				from += w[i].n_recs;
			at += m;
			/* each tenth of the records: how the cost grows with the ledger */
			if (from >= slice * next_slice || at == nblk) {
				double wn = bench_now() - w0, cn = bench_cpu() - c0,
				       tn = bench_thread_cpu() - t0s;

				printf("sync_slice %zu wall_s_per_100k %.2f cpu_s_per_100k %.2f"
				       " apply_cpu_s_per_100k %.2f\n",
				       from, (wn - sw) * 1e5 / (double)(from - last),
				       (cn - sc) * 1e5 / (double)(from - last),
				       (tn - st) * 1e5 / (double)(from - last));
				fflush(stdout);
				sw = wn;
				sc = cn;
				st = tn;
				last = from;
				while (from >= slice * next_slice)
					next_slice++;
			}
		}
		printf("sync_apply_wall_s %.2f\n", bench_now() - w0);
		printf("sync_apply_cpu_s %.2f\n", bench_cpu() - c0);
		printf("sync_apply_thread_cpu_s %.2f\n", bench_thread_cpu() - t0s);
		/* the database, its WAL and checkpoints: each commit writes again every page
		 * it changed (issue 13) */
		if (io0 >= 0 && written_bytes() >= io0)
			printf("sync_apply_written_per_record %.0f\n",
			       (double)(written_bytes() - io0) / (double)n);
		ledger_head_get(f, &head);
		if (head.height != nblk)
			die("sync height", -EIO);
		ledger_free(f);
		for (size_t i = 0; i < nblk; i++)
			free(blks[i]);
		free(blks);
		free(blens);
	}
	if (tree_dirs) {
		ledger_free(l);
		ledger_key_free(k);
		unlink(db);
		unlink(wal);
		return 0;
	}

	/* lookups through the API, and the same query on a raw SQLite connection */
	{
		int iters = 100000;
		struct ledger_entry e;
		char path[64];
		sqlite3_stmt *st;
		unsigned seed = 1;

		t0 = bench_cpu();
		for (int i = 0; i < iters; i++) {
			snprintf(path, sizeof path, "/f%08u", (unsigned)(rand_r(&seed) % n));
			if (ledger_lookup(l, path, &e))
				die("lookup", -ENOENT);
		}
		t = bench_cpu() - t0;
		printf("lookup_us %.2f\n", t / iters * 1e6);
		sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL);
		sqlite3_prepare_v2(raw,
		                   "SELECT record, owner, len FROM paths WHERE path = ? AND"
		                   " spent IS NULL",
		                   -1, &st, NULL);
		t0 = bench_cpu();
		for (int i = 0; i < iters; i++) {
			snprintf(path, sizeof path, "/f%08u", (unsigned)(rand_r(&seed) % n));
			sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(st) != SQLITE_ROW)
				die("raw lookup", -ENOENT);
			sqlite3_reset(st);
		}
		t = bench_cpu() - t0;
		printf("baseline_raw_sqlite_lookup_us %.2f\n", t / iters * 1e6);
		sqlite3_finalize(st);

		/* listing the whole directory in pages of 1000 */
		es = malloc(1000 * sizeof *es);
		t0 = bench_cpu();
		{
			char after[LEDGER_NAME_MAX + 1] = "";
			size_t got, total = 0;

			do {
				rc = ledger_list(l, "/", after, es, 1000, &got);
				if (rc)
					die("list", rc);
				total += got;
				if (got)
					strcpy(after, es[got - 1].name);
			} while (got == 1000);
			if (total != n)
				die("list count", -EIO);
		}
		t = bench_cpu() - t0;
		printf("list_dir_entries %zu list_ms %.1f\n", n, t * 1e3);
		free(es);
		sqlite3_prepare_v2(raw,
		                   "SELECT name, record, owner, len, mode, mtime FROM paths"
		                   " WHERE parent = '/' AND spent IS NULL ORDER BY name",
		                   -1, &st, NULL);
		t0 = bench_cpu();
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		t = bench_cpu() - t0;
		printf("baseline_raw_sqlite_list_ms %.1f\n", t * 1e3);
		sqlite3_finalize(st);
		sqlite3_close(raw);
	}
	ledger_free(l);
	printf("db_bytes_per_record %.0f\n", (double)(file_size(db) + file_size(wal)) / (double)n);

	/* full replay (every signature and rule again) and full verify */
	rc = ledger_open(&cfg, &l);
	if (rc)
		die("open", rc);
	t0 = bench_cpu();
	rc = ledger_rebuild(l);
	if (rc < 0)
		die("rebuild", rc);
	printf("replay_s %.2f\n", bench_cpu() - t0);
	t0 = bench_cpu();
	rc = ledger_verify_chain(l, NULL, NULL);
	if (rc != 0)
		die("verify", rc < 0 ? rc : -EBADMSG);
	printf("verify_chain_s %.2f\n", bench_cpu() - t0);
	ledger_free(l);
	ledger_key_free(k);
	unlink(db);
	unlink(wal);
	return 0;
}
