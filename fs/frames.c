/* Ledger messages reassembled from fragments, within bounds (see frames.h). */
#include "frames.h"

#include <ledger.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct partial {
	uint64_t peer;
	uint8_t *buf;
	size_t len;
	int64_t started_ms;
};

struct fs_frames {
	struct partial *p;
	size_t n;
	size_t held; /* bytes in all p[].buf */
};

int fs_frames_new(struct fs_frames **out)
{
	return (*out = calloc(1, sizeof **out)) ? 0 : -ENOMEM;
}

void fs_frames_free(struct fs_frames *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->p[i].buf);
	free(f->p);
	free(f);
}

static void forget_at(struct fs_frames *f, size_t i)
{
	f->held -= f->p[i].len;
	free(f->p[i].buf);
	f->p[i] = f->p[--f->n];
}

void fs_frames_forget(struct fs_frames *f, uint64_t peer)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->p[i].peer == peer) {
			forget_at(f, i);
			return;
		}
	}
}

int fs_frames_add(struct fs_frames *f, uint64_t peer, const uint8_t *frag, size_t len,
                  int64_t now_ms, uint8_t **out, size_t *out_len)
{
	struct partial *p = NULL;
	size_t i, add;
	uint8_t *nb;
	int err;

	if (len < 1 || frag[0] > 1) {
		fs_frames_forget(f, peer);
		return -EBADMSG;
	}
	add = len - 1;
	for (i = 0; i < f->n && !p; i++)
		if (f->p[i].peer == peer)
			p = &f->p[i];
	if (!p) {
		if (frag[0] == 0) { /* the common case: a message in one fragment */
			if (!(*out = malloc(add ? add : 1)))
				return -ENOMEM;
			memcpy(*out, frag + 1, add);
			*out_len = add;
			return 1;
		}
		struct partial *np = realloc(f->p, (f->n + 1) * sizeof *np);

		if (!np)
			return -ENOMEM;
		f->p = np;
		p = &f->p[f->n++];
		*p = (struct partial){ .peer = peer, .started_ms = now_ms };
	}
	err = p->len + add > LEDGER_SYNC_MAX_MSG ? -EBADMSG
	      : f->held + add > FS_FRAMES_TOTAL  ? -ENOSPC
	                                         : 0;
	if (!err && !(nb = realloc(p->buf, p->len + add ? p->len + add : 1)))
		err = -ENOMEM;
	if (err) {
		forget_at(f, (size_t)(p - f->p));
		return err;
	}
	p->buf = nb;
	memcpy(p->buf + p->len, frag + 1, add);
	p->len += add;
	f->held += add;
	if (frag[0])
		return 0;
	*out = p->buf;
	*out_len = p->len;
	f->held -= p->len;
	*p = f->p[--f->n];
	return 1;
}

int fs_frames_expire(struct fs_frames *f, int64_t now_ms, uint64_t *out_peer)
{
	for (size_t i = 0; i < f->n; i++) {
		if (now_ms - f->p[i].started_ms > FS_FRAMES_TIMEOUT_MS) {
			*out_peer = f->p[i].peer;
			forget_at(f, i);
			return 1;
		}
	}
	return 0;
}

size_t fs_frames_held(const struct fs_frames *f)
{
	return f->held;
}
