/* libFuzzer target: a hostile peer's messages to the sync state machine. Each input is
 * a conversation of four peers with a fresh ledger_sync over an in-memory transport, on
 * a public drive made once per process in a temp directory (an admin that produces, a
 * few blocks, so getblocks answers carry blocks and status messages can be heavier).
 *
 * Input: records of [ctl][len: 2 bytes, little-endian][len bytes of a message], the last
 * one cut short by the input's end. ctl bits 0-1: the peer (1..4); bit 2: the peer
 * reconnects first (gone, then connected); bit 3: announce after the message.
 *
 * Invariants: no crash or sanitizer report; everything the node sends is one canonical
 * bencoded dict within LEDGER_SYNC_MAX_MSG (a public drive's messages are plain); every
 * drop names a reason; a dropped peer is told nothing more until it reconnects.
 *
 * Seeds: SWARMFS_FUZZ_WRITE_SEEDS=DIR writes the seeds of fuzz/seeds-sync (a heavier
 * status, then blocks; getblocks; tx of a non-member's and of the admin's records;
 * garbage) for this drive, whose id is fixed by its key seed and clock. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0      1700000000
#define N_PEERS 4

static struct ledger *l;
static struct ledger_key *admin, *stranger;
static char dir[] = "/tmp/swarmfs-fuzz-sync-XXXXXX";
static int64_t clk = T0;

static bool dropped[N_PEERS + 1]; /* by the node, since the peer last connected */

static int64_t now(void *ctx)
{
	(void)ctx;
	return clk;
}

static void op_send(uint64_t peer, const uint8_t *buf, size_t len, void *ctx)
{
	static const struct ben_limits lim = { LEDGER_SYNC_MAX_MSG, 8, 16u << 20 };
	struct ben d = { buf, len };

	(void)ctx;
	if (peer < 1 || peer > N_PEERS || dropped[peer])
		abort(); /* a stranger, or a peer the node dropped */
	if (len > LEDGER_SYNC_MAX_MSG || ben_check(buf, len, &lim) || ben_type(d) != 'd')
		abort(); /* the node itself sends what it would drop a peer for */
}

static void op_drop(uint64_t peer, const char *why, bool ban, void *ctx)
{
	(void)ban;
	(void)ctx;
	if (peer < 1 || peer > N_PEERS || !why || !*why)
		abort();
	dropped[peer] = true;
}

static const struct ledger_sync_ops ops = { op_send, op_drop };

static void cleanup(void)
{
	static const char *const files[] = { "ledger.db", "ledger.db-wal", "ledger.db-shm",
		                             "ledger.db-journal", NULL };
	char path[128];

	ledger_free(l);
	ledger_key_free(admin);
	ledger_key_free(stranger);
	for (int i = 0; files[i]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void claim(const char *path, uint8_t fill)
{
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = path };

	memset(op.content.root, fill, 32);
	memset(op.content.ih2, fill ^ 0x5a, 32);
	op.content.length = 1000 + fill;
	op.content.piece_length = 16384;
	op.content.mode = 0644;
	op.content.mtime_ns = (int64_t)T0 * 1000000000LL;
	clk++;
	if (ledger_submit(l, &op, NULL) < 0)
		abort();
}

/* A record by key that no node has seen: for seeds. Caller frees. */
static uint8_t *record(const struct ledger_key *key, const char *path, size_t *out_len)
{
	struct rec r;
	uint8_t *raw;

	memset(&r, 0, sizeof r);
	r.type = LEDGER_REC_CLAIM;
	ledger_drive_id(l, r.drive);
	r.time = clk;
	r.nonce = 77;
	snprintf(r.path, sizeof r.path, "%s", path);
	memset(r.content.root, 0x42, 32);
	memset(r.content.ih2, 0x24, 32);
	r.content.length = 4242;
	r.content.piece_length = 16384;
	r.content.mode = 0644;
	r.content.mtime_ns = (int64_t)T0 * 1000000000LL;
	if (rec_sign(&r, key, &raw, out_len))
		abort();
	return raw;
}

/* Append one input record: ctl, length, message. */
static void put(struct ben_buf *in, uint8_t ctl, const uint8_t *msg, size_t len)
{
	uint8_t hdr[3] = { ctl, (uint8_t)len, (uint8_t)(len >> 8) };

	if (len > 0xffff)
		abort();
	ben_put_raw(in, hdr, 3);
	ben_put_raw(in, msg, len);
}

/* Append a message {"m": type, key: [item]} (keys in canonical order). */
static void put_list_msg(struct ben_buf *in, uint8_t ctl, const char *type, const char *key,
                         const uint8_t *item, size_t len)
{
	struct ben_buf b;
	bool list_first = strcmp(key, "m") < 0;

	ben_buf_init(&b);
	ben_dict_begin(&b);
	for (int i = 0; i < 2; i++) {
		if ((i == 0) == list_first) {
			ben_put_key(&b, key);
			ben_list_begin(&b);
			ben_put_raw(&b, item, len);
			ben_end(&b);
		} else {
			ben_put_key(&b, "m");
			ben_put_cstr(&b, type);
		}
	}
	ben_end(&b);
	put(in, ctl, b.p, b.len);
	ben_buf_release(&b);
}

static void write_seed(const char *sdir, const char *name, struct ben_buf *in)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", sdir, name);
	if (in->err || !(f = fopen(path, "wb")) || fwrite(in->p, 1, in->len, f) != in->len ||
	    fclose(f))
		abort();
	ben_buf_release(in);
	ben_buf_init(in);
}

static void write_seeds(const char *sdir)
{
	struct ledger_head head;
	struct ben_buf in, b;
	uint8_t *blk, *rec, id[32];
	size_t blen, rlen;

	if (ledger_head_get(l, &head) || ledger_block_get(l, 1, &blk, &blen))
		abort();
	ben_buf_init(&in);
	/* a status heavier than ours: the node asks for blocks, then takes a blocks answer
	 * (our own block 1 again) */
	ledger_drive_id(l, id);
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "g");
	ben_put_str(&b, id, 32);
	ben_put_key(&b, "h");
	ben_put_int(&b, (int64_t)head.height + 5);
	ben_put_key(&b, "id");
	ben_put_str(&b,
	            "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
	            "\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20",
	            32);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "status");
	ben_put_key(&b, "w");
	ben_put_int(&b, (int64_t)head.weight + 10);
	ben_end(&b);
	put(&in, 1, b.p, b.len);
	ben_buf_release(&b);
	put_list_msg(&in, 1, "blocks", "b", blk, blen);
	write_seed(sdir, "status-blocks", &in);
	free(blk);

	static const char getblocks[] = "d3:locl32:"
	                                "0123456789abcdef0123456789abcdef"
	                                "e1:m9:getblocks1:ni256ee";
	put(&in, 2, (const uint8_t *)getblocks, sizeof getblocks - 1);
	write_seed(sdir, "getblocks", &in);

	rec = record(stranger, "/stranger/file", &rlen);
	put_list_msg(&in, 3, "tx", "r", rec, rlen);
	write_seed(sdir, "tx-non-member", &in);
	free(rec);
	rec = record(admin, "/admin/new-file", &rlen);
	put_list_msg(&in, 3 | 8, "tx", "r", rec, rlen);
	write_seed(sdir, "tx-member", &in);
	free(rec);

	static const char garbage[] = "d1:m5:bogus1:xi-0ee";
	put(&in, 0 | 4, (const uint8_t *)garbage, sizeof garbage - 1);
	put(&in, 0, (const uint8_t *)garbage, sizeof garbage - 1);
	write_seed(sdir, "garbage-twice", &in);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32], pub[32], producers[1][32];
	struct ledger_config cfg = { 0 };
	struct ledger_params p;
	char path[128];
	const char *sdir = getenv("SWARMFS_FUZZ_WRITE_SEEDS");

	(void)argc;
	(void)argv;
	memset(seed, 7, sizeof seed);
	if (ledger_key_from_seed(seed, &admin))
		abort();
	memset(seed, 9, sizeof seed);
	if (ledger_key_from_seed(seed, &stranger))
		abort();
	if (!mkdtemp(dir))
		abort();
	ledger_key_public(admin, pub);
	memcpy(producers[0], pub, 32);
	ledger_params_defaults(&p);
	p.name = "fuzz";
	memcpy(p.admin, pub, 32);
	p.producers = producers;
	p.n_producers = 1;
	p.time = T0;
	snprintf(path, sizeof path, "%s/ledger.db", dir);
	cfg.path = path;
	cfg.key = admin;
	cfg.fast_unsafe = true;
	cfg.auto_produce = true;
	cfg.now = now;
	if (ledger_create(&cfg, &p, admin, &l))
		abort();
	atexit(cleanup);
	claim("/docs/a.txt", 1);
	claim("/docs/b.txt", 2);
	claim("/music/c.flac", 3);
	clk += 60;
	if (sdir)
		write_seeds(sdir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger_sync *s;

	if (ledger_sync_new(l, &ops, NULL, &s))
		abort();
	memset(dropped, 0, sizeof dropped);
	for (uint64_t peer = 1; peer <= N_PEERS; peer++)
		ledger_sync_peer_connected(s, peer);
	while (size >= 3) {
		uint8_t ctl = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		uint64_t peer = 1 + (ctl & 3);

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (ctl & 4 || dropped[peer]) { /* the transport cuts a dropped peer off */
			ledger_sync_peer_gone(s, peer);
			dropped[peer] = false;
			ledger_sync_peer_connected(s, peer);
		}
		ledger_sync_message(s, peer, data, len);
		if (ctl & 8)
			ledger_sync_announce(s);
		data += len;
		size -= len;
	}
	ledger_sync_free(s);
	return 0;
}
