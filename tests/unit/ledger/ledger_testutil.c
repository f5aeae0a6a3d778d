#include "ledger_testutil.h"

#include <fixture.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t tu_clock = TU_T0;
static char *dir;

int64_t tu_now(void *ctx)
{
	(void)ctx;
	return tu_clock;
}

const char *tu_dir(void)
{
	if (!dir)
		ck_assert_int_eq(fixture_tmpdir_new("ledger", &dir), 0);
	return dir;
}

void tu_cleanup(void)
{
	if (dir) {
		fixture_tmpdir_remove(dir);
		free(dir);
		dir = NULL;
	}
}

char *tu_path(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", tu_dir(), name), 0);
	return p;
}

struct ledger_key *tu_key(uint8_t seed)
{
	uint8_t s[32];
	struct ledger_key *k;

	memset(s, seed, sizeof s);
	ck_assert_int_eq(ledger_key_from_seed(s, &k), 0);
	return k;
}

void tu_config(struct ledger_config *cfg, const char *file, const struct ledger_key *key,
               bool auto_produce)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->path = file;
	cfg->key = key;
	cfg->fast_unsafe = true;
	cfg->auto_produce = auto_produce;
	cfg->now = tu_now;
}

struct ledger *tu_create(const char *file, const struct ledger_key *admin,
                         const struct ledger_key *const *producers, size_t n, bool auto_produce)
{
	return tu_create_ex(file, admin, producers, n, auto_produce, false);
}

struct ledger *tu_create_ex(const char *file, const struct ledger_key *admin,
                            const struct ledger_key *const *producers, size_t n, bool auto_produce,
                            bool private_drive)
{
	struct ledger_params p;
	struct ledger_config cfg;
	struct ledger *l;
	uint8_t prods[8][32];
	char *path = tu_path(file);

	ledger_params_defaults(&p);
	p.name = "test";
	p.time = tu_clock;
	ledger_key_public(admin, p.admin);
	for (size_t i = 0; i < n; i++)
		ledger_key_public(producers[i], prods[i]);
	p.producers = prods;
	p.n_producers = n;
	p.private_drive = private_drive;
	tu_config(&cfg, path, admin, auto_produce);
	ck_assert_int_eq(ledger_create(&cfg, &p, admin, &l), 0);
	free(path);
	return l;
}

struct ledger *tu_join(const char *file, struct ledger *from, const struct ledger_key *key,
                       bool auto_produce)
{
	struct ledger_config cfg;
	struct ledger *l;
	uint8_t *g;
	size_t gl;
	char *path = tu_path(file);

	ck_assert_int_eq(ledger_genesis_raw(from, &g, &gl), 0);
	tu_config(&cfg, path, key, auto_produce);
	ck_assert_int_eq(ledger_join(&cfg, g, gl, &l), 0);
	free(g);
	free(path);
	return l;
}

void tu_content(struct ledger_content *c, uint32_t seed)
{
	memset(c, 0, sizeof *c);
	memset(c->root, (int)(seed & 0xff), 32);
	memset(c->ih2, (int)((seed >> 8) & 0xff) ^ 0x5a, 32);
	memcpy(c->root, &seed, sizeof seed);
	memcpy(c->ih2, &seed, sizeof seed);
	c->length = 1000 + seed;
	c->piece_length = 16384;
	c->mode = 0644;
	c->mtime_ns = (int64_t)TU_T0 * 1000000000LL;
}

uint8_t *tu_record(struct ledger *l, const struct ledger_key *key, enum ledger_rec_type t,
                   const char *path, const char *dest, const uint8_t prev[32], const uint8_t to[32],
                   struct rec *out, size_t *out_len)
{
	static int64_t nonce = 1;
	uint8_t *raw;

	memset(out, 0, sizeof *out);
	out->type = t;
	ledger_drive_id(l, out->drive);
	out->time = tu_clock;
	out->nonce = nonce++;
	if (path)
		snprintf(out->path, sizeof out->path, "%s", path);
	if (dest)
		snprintf(out->dest, sizeof out->dest, "%s", dest);
	if (prev)
		memcpy(out->prev, prev, 32);
	if (to)
		memcpy(out->to, to, 32);
	if (t == LEDGER_REC_MEMBER && to)
		memcpy(out->member, to, 32);
	tu_content(&out->content, (uint32_t)nonce);
	if (t == LEDGER_REC_MKDIR) {
		out->content.mode = 0755;
		out->open = false;
	}
	ck_assert_int_eq(rec_sign(out, key, &raw, out_len), 0);
	return raw;
}

uint8_t *tu_block(struct ledger *l, const struct ledger_key *key, const uint8_t *parent,
                  int64_t height, int64_t time, int64_t weight, uint8_t **recs, const size_t *lens,
                  size_t n, size_t *out_len)
{
	struct ledger_head head;
	struct blk_hdr h;
	struct ben_buf b;
	uint8_t(*ids)[32] = calloc(n + 1, 32), *hdr;
	size_t hl;

	ck_assert_int_eq(ledger_head_get(l, &head), 0);
	memset(&h, 0, sizeof h);
	h.version = 1;
	ledger_drive_id(l, h.drive);
	h.height = height ? height : (int64_t)head.height + 1;
	memcpy(h.prev, parent ? parent : head.id, 32);
	/* block times rise strictly: by default the clock, or a second past the head */
	h.time = time ? time : tu_clock > head.time || parent ? tu_clock : head.time + 1;
	h.weight = weight;
	h.n_records = (int64_t)n;
	for (size_t i = 0; i < n; i++)
		ledger_sha256(recs[i], lens[i], ids[i]);
	ck_assert_int_eq(merkle_root_of_ids((const uint8_t(*)[32])ids, n, h.root), 0);
	ck_assert_int_eq(blk_hdr_sign(&h, NULL, 0, key, &hdr, &hl), 0);
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "h");
	ben_put_raw(&b, hdr, hl);
	ben_put_key(&b, "r");
	ben_list_begin(&b);
	for (size_t i = 0; i < n; i++)
		ben_put_raw(&b, recs[i], lens[i]);
	ben_end(&b);
	ben_end(&b);
	ck_assert_int_eq(b.err, 0);
	free(hdr);
	free(ids);
	*out_len = b.len;
	return b.p;
}

void tu_inject(struct ledger *l, const struct rec *r, const uint8_t *raw, size_t len)
{
	ledger_lock(l);
	ck_assert_int_eq(chain_mempool_add(l, r, raw, len), 0);
	ledger_unlock(l);
}

void tu_copy_blocks(struct ledger *from, struct ledger *to)
{
	struct ledger_head head;

	ck_assert_int_eq(ledger_head_get(from, &head), 0);
	for (uint64_t h = 1; h <= head.height; h++) {
		uint8_t *b;
		size_t n;

		ck_assert_int_eq(ledger_block_get(from, h, &b, &n), 0);
		ck_assert_int_ge(ledger_block_import(to, b, n), 0);
		free(b);
	}
}

void tu_digest(struct ledger *l, uint8_t out[32])
{
	ck_assert_int_eq(ledger_state_digest(l, out), 0);
}

int64_t tu_height(struct ledger *l)
{
	struct ledger_head head;

	ck_assert_int_eq(ledger_head_get(l, &head), 0);
	return (int64_t)head.height;
}

struct lock_holder {
	struct ledger *l;
	void (*fn)(void *ctx);
	void *ctx;
	atomic_bool held, release, done;
};

static void *hold_lock(void *arg)
{
	struct lock_holder *h = arg;

	ledger_lock(h->l);
	atomic_store(&h->held, true);
	while (!atomic_load(&h->release))
		fixture_sleep_ms(1);
	ledger_unlock(h->l);
	return NULL;
}

static void *run_fn(void *arg)
{
	struct lock_holder *h = arg;

	h->fn(h->ctx);
	atomic_store(&h->done, true);
	return NULL;
}

void tu_without_lock(struct ledger *l, void (*fn)(void *ctx), void *ctx, const char *what)
{
	struct lock_holder h = { .l = l, .fn = fn, .ctx = ctx };
	pthread_t holder, runner;

	ck_assert_int_eq(pthread_create(&holder, NULL, hold_lock, &h), 0);
	FIXTURE_WAIT(atomic_load(&h.held), 10000, "the holder did not get the ledger's lock");
	ck_assert_int_eq(pthread_create(&runner, NULL, run_fn, &h), 0);
	/* a failed wait ends this test's process, threads and all */
	FIXTURE_WAIT(atomic_load(&h.done), 15000,
	             "%s did not return while another thread held the ledger's lock", what);
	atomic_store(&h.release, true);
	pthread_join(runner, NULL);
	pthread_join(holder, NULL);
}

int64_t tu_on_disk(const char *file, const char *sql)
{
	char *path = tu_path(file);
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
	return v;
}
