/* libFuzzer target: fs/frames, the reassembly of ledger messages from the fragments
 * peers send on the extension channel, checked against a plain model of it.
 *
 * Input: records of [ctl][len: 2 bytes, little-endian][len bytes: a fragment as it
 * came, flag byte first], the last one cut short by the input's end. ctl bits 0-2: the
 * peer (8 of them: enough to reach the total cap); bit 3: instead of those bytes, a
 * 900,000-byte fragment (flag: bit 0 of the first data byte, filled with the second:
 * 2 bytes of input); bits 4-7: seconds that pass first (15: the peer is forgotten
 * instead, as when it goes, and len is not followed by bytes). After each fragment, what expired is
 * forgotten, as the sync thread does.
 *
 * Invariants: no crash or sanitizer report; a message is returned exactly when a
 * fragment with flag 0 ends it, and holds exactly what that peer sent since its last
 * message; no message is over LEDGER_SYNC_MAX_MSG; what is held never passes
 * FS_FRAMES_TOTAL and equals the model's count; an error forgets the peer's partial
 * message; only an unfinished message older than FS_FRAMES_TIMEOUT_MS expires, and
 * none older is left. */
#include "frames.h"

#include <ledger.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define N_PEERS 8
#define BIG     (900u * 1000u)

struct model {
	uint8_t *buf; /* what the peer sent of its unfinished message */
	size_t len, cap;
	bool open;
	int64_t started_ms;
};

static struct model mdl[N_PEERS];
static uint8_t big[1 + BIG];

static void model_forget(struct model *m)
{
	free(m->buf);
	*m = (struct model){ 0 };
}

static size_t model_held(void)
{
	size_t n = 0;

	for (int i = 0; i < N_PEERS; i++)
		n += mdl[i].len;
	return n;
}

/* One fragment of peer at now_ms, through fs_frames and the model. */
static void step(struct fs_frames *f, int peer, const uint8_t *frag, size_t len, int64_t now_ms)
{
	struct model *m = &mdl[peer];
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc = fs_frames_add(f, (uint64_t)peer + 1, frag, len, now_ms, &out, &out_len);

	if (rc < 0) {
		if (rc != -EBADMSG && rc != -ENOSPC && rc != -ENOMEM)
			abort();
		if (rc == -EBADMSG && len >= 1 && frag[0] <= 1 &&
		    m->len + len - 1 <= LEDGER_SYNC_MAX_MSG)
			abort(); /* a good fragment within the cap is no bad message */
		if (rc == -ENOSPC && model_held() + len - 1 <= FS_FRAMES_TOTAL)
			abort(); /* room was left */
		model_forget(m);
		return;
	}
	if (len < 1 || frag[0] > 1)
		abort(); /* a bad flag was taken */
	if (!m->open) {
		m->open = true;
		m->started_ms = now_ms;
	}
	if (m->len + len > m->cap) { /* doubling: the model must not cost what it checks */
		size_t nc = m->cap ? m->cap : 4096;

		while (nc < m->len + len)
			nc *= 2;
		if (!(m->buf = realloc(m->buf, nc)))
			abort();
		m->cap = nc;
	}
	memcpy(m->buf + m->len, frag + 1, len - 1);
	m->len += len - 1;
	if (rc == 1) {
		if (frag[0] != 0 || out_len != m->len || out_len > LEDGER_SYNC_MAX_MSG ||
		    (out_len && memcmp(out, m->buf, out_len)))
			abort(); /* not the message the peer sent */
		free(out);
		model_forget(m);
	} else if (rc != 0 || frag[0] != 1) {
		abort();
	}
}

static void expire(struct fs_frames *f, int64_t now_ms)
{
	uint64_t peer;

	while (fs_frames_expire(f, now_ms, &peer) == 1) {
		if (peer < 1 || peer > N_PEERS || !mdl[peer - 1].open ||
		    now_ms - mdl[peer - 1].started_ms <= FS_FRAMES_TIMEOUT_MS)
			abort(); /* expired early, or something it never held */
		model_forget(&mdl[peer - 1]);
	}
	for (int i = 0; i < N_PEERS; i++)
		if (mdl[i].open && now_ms - mdl[i].started_ms > FS_FRAMES_TIMEOUT_MS)
			abort(); /* an old one left */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_frames *f;
	int64_t now_ms = 1000000;

	if (fs_frames_new(&f))
		abort();
	while (size >= 3) {
		uint8_t ctl = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		int peer = ctl & 7;

		data += 3;
		size -= 3;
		if (ctl >> 4 == 15) {
			fs_frames_forget(f, (uint64_t)peer + 1);
			model_forget(&mdl[peer]);
			continue;
		}
		now_ms += (int64_t)(ctl >> 4) * 1000;
		if (ctl & 8) {
			uint8_t fill = size > 1 ? data[1] : 0;

			big[0] = size > 0 ? data[0] & 1 : 0;
			if (big[1] != fill || big[BIG] != fill)
				memset(big + 1, fill, BIG);
			len = size < 2 ? size : 2;
			step(f, peer, big, sizeof big, now_ms);
		} else {
			if (len > size)
				len = size;
			step(f, peer, data, len, now_ms);
		}
		data += len;
		size -= len;
		expire(f, now_ms);
		if (fs_frames_held(f) > FS_FRAMES_TOTAL || fs_frames_held(f) != model_held())
			abort();
	}
	fs_frames_free(f);
	for (int i = 0; i < N_PEERS; i++)
		model_forget(&mdl[i]);
	return 0;
}
