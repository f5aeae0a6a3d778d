/* Block headers, the genesis parameters and the wire form of a block. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ledger_params_defaults(struct ledger_params *p)
{
	memset(p, 0, sizeof *p);
	p->interval_s = 5;
	p->grace_s = 10;
	p->max_record_bytes = 4096;
	p->max_block_bytes = 4u << 20;
	p->max_block_records = 10000;
	p->time = time(NULL);
}

void ledger_params_release(struct ledger_params *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->producers);
	for (size_t i = 0; i < p->n_trackers; i++)
		free(p->trackers[i]);
	free(p->trackers);
	memset(p, 0, sizeof *p);
}

int params_encode(const struct ledger_params *p, uint8_t **out, size_t *out_len)
{
	struct ben_buf b;

	if (!p->name || !*p->name || strlen(p->name) > LEDGER_NAME_MAX || !p->n_producers ||
	    p->interval_s <= 0 || p->grace_s < 0 || p->max_record_bytes < 512 ||
	    p->max_block_bytes < p->max_record_bytes || !p->max_block_records)
		return -EINVAL;
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "admin");
	ben_put_str(&b, p->admin, 32);
	ben_put_key(&b, "grace");
	ben_put_int(&b, p->grace_s);
	ben_put_key(&b, "interval");
	ben_put_int(&b, p->interval_s);
	ben_put_key(&b, "maxblock");
	ben_put_int(&b, p->max_block_bytes);
	ben_put_key(&b, "maxrec");
	ben_put_int(&b, p->max_record_bytes);
	ben_put_key(&b, "maxrecs");
	ben_put_int(&b, p->max_block_records);
	ben_put_key(&b, "name");
	ben_put_cstr(&b, p->name);
	if (p->private_drive) { /* absent on public drives: their genesis is as it was */
		ben_put_key(&b, "private");
		ben_put_int(&b, 1);
	}
	ben_put_key(&b, "producers");
	ben_list_begin(&b);
	for (size_t i = 0; i < p->n_producers; i++)
		ben_put_str(&b, p->producers[i], 32);
	ben_end(&b);
	ben_put_key(&b, "trackers");
	ben_list_begin(&b);
	for (size_t i = 0; i < p->n_trackers; i++)
		ben_put_cstr(&b, p->trackers[i]);
	ben_end(&b);
	ben_end(&b);
	if (b.err) {
		int rc = b.err;

		ben_buf_release(&b);
		return rc;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
	char *s;

	if (memchr(p, '\0', n))
		return NULL;
	s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int params_decode(struct ben d, struct ledger_params *out)
{
	struct ledger_params p;
	struct ben list, v;
	struct ben_iter it;
	const uint8_t *s;
	size_t n;
	int64_t iv;

	memset(&p, 0, sizeof p);
	if (!ben_get_fixed(d, "admin", p.admin, 32) || !ben_get_int(d, "grace", &p.grace_s) ||
	    !ben_get_int(d, "interval", &p.interval_s) || p.interval_s <= 0 || p.grace_s < 0)
		return -EBADMSG;
	if (!ben_get_int(d, "maxblock", &iv) || iv < 512 || iv > (64 << 20))
		return -EBADMSG;
	p.max_block_bytes = (uint32_t)iv;
	if (!ben_get_int(d, "maxrec", &iv) || iv < 512 || iv > p.max_block_bytes)
		return -EBADMSG;
	p.max_record_bytes = (uint32_t)iv;
	if (!ben_get_int(d, "maxrecs", &iv) || iv < 1 || iv > 1000000)
		return -EBADMSG;
	p.max_block_records = (uint32_t)iv;
	if (!ben_get_bytes(d, "name", &s, &n) || !n || n > LEDGER_NAME_MAX ||
	    !(p.name = dup_bytes(s, n)))
		goto bad;
	if (ben_get_int(d, "private", &iv)) {
		if (iv != 1)
			goto bad; /* canonical: present as 1, or absent */
		p.private_drive = true;
	} else if (ben_dict_get(d, "private", &v)) {
		goto bad;
	}
	if (!ben_dict_get(d, "producers", &list) || ben_type(list) != 'l')
		goto bad;
	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v)) {
		void *np;

		if (!ben_str(v, &s, &n) || n != 32 || p.n_producers >= 1024)
			goto bad;
		np = realloc(p.producers, (p.n_producers + 1) * 32);
		if (!np)
			goto bad;
		p.producers = np;
		memcpy(p.producers[p.n_producers++], s, 32);
	}
	if (!p.n_producers || !ben_dict_get(d, "trackers", &list) || ben_type(list) != 'l')
		goto bad;
	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v)) {
		void *np;
		char *t;

		if (!ben_str(v, &s, &n) || p.n_trackers >= 256 || !(t = dup_bytes(s, n)))
			goto bad;
		np = realloc(p.trackers, (p.n_trackers + 1) * sizeof *p.trackers);
		if (!np) {
			free(t);
			goto bad;
		}
		p.trackers = np;
		p.trackers[p.n_trackers++] = t;
	}
	*out = p;
	return 0;
bad:
	ledger_params_release(&p);
	return -EBADMSG;
}

static void hdr_encode(struct ben_buf *b, const struct blk_hdr *h, const uint8_t *params,
                       size_t params_len, bool with_sig)
{
	ben_dict_begin(b);
	ben_put_key(b, "drive");
	ben_put_str(b, h->drive, 32);
	ben_put_key(b, "height");
	ben_put_int(b, h->height);
	ben_put_key(b, "n");
	ben_put_int(b, h->n_records);
	if (params) {
		ben_put_key(b, "params");
		ben_put_raw(b, params, params_len);
	}
	ben_put_key(b, "prev");
	ben_put_str(b, h->prev, 32);
	ben_put_key(b, "producer");
	ben_put_str(b, h->producer, 32);
	ben_put_key(b, "root");
	ben_put_str(b, h->root, 32);
	if (with_sig) {
		ben_put_key(b, "sig");
		ben_put_str(b, h->sig, 64);
	}
	ben_put_key(b, "time");
	ben_put_int(b, h->time);
	ben_put_key(b, "v");
	ben_put_int(b, h->version);
	ben_put_key(b, "weight");
	ben_put_int(b, h->weight);
	ben_end(b);
}

int blk_hdr_sign(struct blk_hdr *h, const uint8_t *params_raw, size_t params_len,
                 const struct ledger_key *key, uint8_t **out, size_t *out_len)
{
	struct ben_buf b;
	int rc;

	memcpy(h->producer, key->pub, 32);
	ben_buf_init(&b);
	hdr_encode(&b, h, params_raw, params_len, false);
	rc = b.err ? b.err
	           : ledger_key_sign(key, LEDGER_BLOCK_TAG, LEDGER_TAG_LEN(LEDGER_BLOCK_TAG), b.p,
	                             b.len, h->sig);
	ben_buf_release(&b);
	if (rc)
		return rc;
	hdr_encode(&b, h, params_raw, params_len, true);
	if (b.err) {
		rc = b.err;
		ben_buf_release(&b);
		return rc;
	}
	ledger_sha256(b.p, b.len, h->id);
	*out = b.p;
	*out_len = b.len;
	return 0;
}

int blk_hdr_decode(const uint8_t *buf, size_t len, struct blk_hdr *h, bool check_sig)
{
	static const struct ben_limits lim = { 1 << 20, 4, 4096 };
	struct ben d = { buf, len };
	struct ben_iter it;
	struct ben k, v;
	size_t keys = 0;

	if (ben_check(buf, len, &lim) || ben_type(d) != 'd')
		return -EBADMSG;
	memset(h, 0, sizeof *h);
	if (!ben_get_fixed(d, "drive", h->drive, 32) || !ben_get_int(d, "height", &h->height) ||
	    !ben_get_int(d, "n", &h->n_records) || !ben_get_fixed(d, "prev", h->prev, 32) ||
	    !ben_get_fixed(d, "producer", h->producer, 32) ||
	    !ben_get_fixed(d, "root", h->root, 32) || !ben_get_fixed(d, "sig", h->sig, 64) ||
	    !ben_get_int(d, "time", &h->time) || !ben_get_int(d, "v", &h->version) ||
	    !ben_get_int(d, "weight", &h->weight))
		return -EBADMSG;
	if (h->version != 1 || h->height < 0 || h->n_records < 0 || h->time < 0)
		return -EBADMSG;
	if (ben_dict_get(d, "params", &h->params)) {
		if (ben_type(h->params) != 'd' || h->height != 0)
			return -EBADMSG;
	} else if (h->height == 0) {
		return -EBADMSG;
	}
	ben_iter_init(d, &it);
	while (ben_iter_next(&it, &k) && ben_iter_next(&it, &v))
		keys++;
	if (keys != (h->params.len ? 11u : 10u))
		return -EBADMSG; /* unknown fields */
	if (check_sig && !ledger_dict_sig_verify(d, h->producer, LEDGER_BLOCK_TAG,
	                                         LEDGER_TAG_LEN(LEDGER_BLOCK_TAG)))
		return -EBADMSG;
	ledger_sha256(buf, len, h->id);
	return 0;
}

int blk_wire_parse(const uint8_t *buf, size_t len, size_t max_len, size_t max_recs,
                   struct blk_wire *out)
{
	struct ben_limits lim = { max_len, 5, 64 * max_recs + 4096 };
	struct ben d = { buf, len }, list, v;
	struct ben_iter it;
	size_t n = 0, cap = 0;
	int rc;

	rc = ben_check(buf, len, &lim);
	if (rc)
		return rc == -EMSGSIZE ? rc : -EBADMSG;
	if (ben_type(d) != 'd' || !ben_dict_get(d, "h", &out->hdr) || ben_type(out->hdr) != 'd' ||
	    !ben_dict_get(d, "r", &list) || ben_type(list) != 'l')
		return -EBADMSG;
	ben_iter_init(d, &it);
	while (ben_iter_next(&it, &v))
		n++;
	if (n != 4)
		return -EBADMSG;
	n = 0;
	out->recs = NULL;
	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v)) {
		if (n >= max_recs || ben_type(v) != 'd') {
			free(out->recs);
			out->recs = NULL;
			return -EBADMSG;
		}
		if (n == cap) {
			struct ben *nr = realloc(out->recs, (cap ? cap * 2 : 16) * sizeof *nr);

			if (!nr) {
				free(out->recs);
				out->recs = NULL;
				return -ENOMEM;
			}
			out->recs = nr;
			cap = cap ? cap * 2 : 16;
		}
		out->recs[n++] = v;
	}
	out->n_recs = n;
	return 0;
}
