/* libFuzzer target: every decoder of untrusted ledger bytes (bencode checker and
 * accessors, records, block headers, wire blocks, genesis parameters). Invariants:
 * no crash or sanitizer report, and any input the checker accepts re-encodes to
 * exactly the same bytes, which is what "canonical" means. */
#include "ledger_priv.h"

#include <stdlib.h>
#include <string.h>

static void reencode(struct ben v, struct ben_buf *b)
{
	struct ben_iter it;
	struct ben k, x;
	const uint8_t *s;
	size_t n;
	int64_t i;

	switch (ben_type(v)) {
	case 'i':
		if (ben_int(v, &i))
			ben_put_int(b, i);
		break;
	case 's':
		if (ben_str(v, &s, &n))
			ben_put_str(b, s, n);
		break;
	case 'l':
		ben_list_begin(b);
		ben_iter_init(v, &it);
		while (ben_iter_next(&it, &x))
			reencode(x, b);
		ben_end(b);
		break;
	case 'd':
		ben_dict_begin(b);
		ben_iter_init(v, &it);
		while (ben_iter_next(&it, &k) && ben_iter_next(&it, &x)) {
			char key[64];

			/* keys with NULs or longer ones: copy raw, order was checked */
			if (ben_str(k, &s, &n) && n < sizeof key && !memchr(s, 0, n)) {
				memcpy(key, s, n);
				key[n] = '\0';
				ben_put_key(b, key);
			} else {
				ben_put_raw(b, k.p, k.len);
			}
			reencode(x, b);
		}
		ben_end(b);
		break;
	default: abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ben_limits lim = { 1 << 20, 24, 1 << 16 };
	struct rec r;
	struct blk_hdr h;
	struct blk_wire w;
	struct ledger_params p;

	if (ben_check(data, size, &lim) == 0) {
		struct ben_buf b;
		struct ben v = { data, size };

		ben_buf_init(&b);
		reencode(v, &b);
		if (!b.err && (b.len != size || memcmp(b.p, data, size)))
			abort(); /* accepted but not canonical */
		ben_buf_release(&b);
		if (ben_type(v) == 'd' && params_decode(v, &p) == 0)
			ledger_params_release(&p);
	}
	rec_parse(data, size, 4096, &r);
	blk_hdr_decode(data, size, &h, false);
	if (blk_wire_parse(data, size, 1 << 20, 1000, &w) == 0)
		free(w.recs);
	return 0;
}
