/*
 * hostile_records — the ammunition of tests/integration/hostile_peer.py: `tx` sync
 * messages full of claims signed by a fresh key that is no member of the drive. Each
 * record is well formed and its signature holds, so only a membership check can tell
 * it from a member's; a node that checks signatures first pays for every one.
 *
 * usage: hostile_records DRIVE_ID_HEX MESSAGES RECORDS_PER_MESSAGE OUT
 *
 * OUT gets MESSAGES canonical bencoded ledger messages {"m": "tx", "r": [...]}, each
 * after its length as 4 bytes big-endian. The ledger's own encoder signs them, so a
 * change of the record format changes them too.
 */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
	fprintf(stderr, "usage: hostile_records DRIVE_ID_HEX MESSAGES RECORDS_PER_MESSAGE OUT\n");
	return 2;
}

/* One message of n claims by key on drive; appended to f. */
static int write_message(FILE *f, const uint8_t drive[32], const struct ledger_key *key,
                         unsigned msg, unsigned n)
{
	struct ben_buf b;
	uint8_t len[4];
	int err = 0;

	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "tx");
	ben_put_key(&b, "r");
	ben_list_begin(&b);
	for (unsigned i = 0; i < n && !err; i++) {
		struct rec r;
		uint8_t *raw;
		size_t raw_len;
		uint32_t seed = msg * 100000u + i;

		memset(&r, 0, sizeof r);
		r.type = LEDGER_REC_CLAIM;
		memcpy(r.drive, drive, 32);
		r.time = (int64_t)time(NULL);
		r.nonce = (int64_t)seed + 1;
		snprintf(r.path, sizeof r.path, "/hostile/m%u-r%u", msg, i);
		memcpy(r.content.root, &seed, sizeof seed);
		memcpy(r.content.ih2, &seed, sizeof seed);
		r.content.root[31] = 0x5a;
		r.content.ih2[31] = 0xa5;
		r.content.length = 1000 + seed;
		r.content.piece_length = 16384;
		r.content.mode = 0644;
		r.content.mtime_ns = r.time * 1000000000LL;
		if ((err = rec_sign(&r, key, &raw, &raw_len)) < 0)
			break;
		ben_put_raw(&b, raw, raw_len);
		free(raw);
	}
	ben_end(&b);
	ben_end(&b);
	if (!err && b.err)
		err = b.err;
	if (!err) {
		len[0] = (uint8_t)(b.len >> 24);
		len[1] = (uint8_t)(b.len >> 16);
		len[2] = (uint8_t)(b.len >> 8);
		len[3] = (uint8_t)b.len;
		if (fwrite(len, 1, 4, f) != 4 || fwrite(b.p, 1, b.len, f) != b.len)
			err = -EIO;
	}
	ben_buf_release(&b);
	return err;
}

int main(int argc, char **argv)
{
	struct ledger_key *key;
	uint8_t drive[32];
	unsigned long msgs, recs;
	char *end;
	FILE *f;
	int err = 0;

	if (argc != 5 || ledger_unhex(argv[1], drive, 32) < 0)
		return usage();
	msgs = strtoul(argv[2], &end, 10);
	if (*end || !msgs || msgs > 10000)
		return usage();
	recs = strtoul(argv[3], &end, 10);
	if (*end || !recs || recs > 100000)
		return usage();
	if ((err = ledger_key_generate(&key)) < 0) {
		fprintf(stderr, "hostile_records: cannot make a key: %s\n", strerror(-err));
		return 1;
	}
	if (!(f = fopen(argv[4], "wb"))) {
		fprintf(stderr, "hostile_records: %s: %s\n", argv[4], strerror(errno));
		ledger_key_free(key);
		return 1;
	}
	for (unsigned long m = 0; m < msgs && !err; m++)
		err = write_message(f, drive, key, (unsigned)m, (unsigned)recs);
	if (fclose(f) && !err)
		err = -EIO;
	ledger_key_free(key);
	if (err) {
		fprintf(stderr, "hostile_records: %s: %s\n", argv[4], strerror(-err));
		return 1;
	}
	return 0;
}
