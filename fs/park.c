/*
 * Parked requests: reads waiting for the swarm (see park.h).
 */
#include "park.h"

#include "engine.h"
#include "filekey.h"
#include "fs.h"

#include <cache.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A read waiting for the swarm: parked on its file handle, answered by the engine's
 * callback, or with EINTR when the reader is interrupted (Ctrl-C), whichever comes
 * first. */
struct fs_parked {
	fuse_req_t req;
	struct fs_drive *d;
	struct fs_fh *h;
	off_t off;
	size_t size;
	int tries;
	bool answered;
	bool listed; /* on h->parked */
	struct fs_parked *next;
};

struct fs_fh *fs_fh_new(struct cache *c, int timeout_ms)
{
	struct fs_fh *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->cache = c;
	h->timeout_ms = timeout_ms;
	pthread_mutex_init(&h->lock, NULL);
	h->refs = 1; /* the kernel's, dropped at release */
	return h;
}

void fs_fh_put(struct fs_fh *h)
{
	bool last;

	pthread_mutex_lock(&h->lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&h->lock);
	if (last) {
		fs_filekey_free(h->cipher);
		fs_readwin_free(h->win);
		pthread_mutex_destroy(&h->lock);
		free(h);
	}
}

void fs_reply_fd(fuse_req_t req, int fd, off_t off, size_t size)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	/* fd-backed: libfuse can splice the file's pages straight into the reply */
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* Reply from the cache if the whole range is there: 0, or -ENODATA (missing, or found
 * changed on disk: the cache dropped it and the swarm fetches it again). The bytes go
 * out from memory after the cache checked them against what was verified: a splice
 * from the data file could send bytes that changed after any check (issue 17). */
int fs_reply_cached(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size)
{
	char *buf;
	ssize_t n;

	if (h->cipher) /* ciphertext in the cache: decrypted into the reply */
		return fs_reply_decrypted(req, d, h, off, size);
	if (!(buf = malloc(size ? size : 1)))
		return -ENOMEM;
	n = cache_read(h->cache, h->key, h->base + (uint64_t)off, buf, size);
	if (n >= 0)
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	return n < 0 ? (int)n : 0;
}

static void read_interrupted(fuse_req_t req, void *data)
{
	struct fs_fh *h = data;
	bool reply = false;

	pthread_mutex_lock(&h->lock);
	for (struct fs_parked *p = h->parked; p; p = p->next) {
		if (p->req == req && !p->answered) {
			p->answered = reply = true;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	/* the fetch goes on (its pieces are wanted soon by the next read); only the
	 * caller stops waiting */
	if (reply)
		fuse_reply_err(req, EINTR);
}

static void unpark(struct fs_fh *h, struct fs_parked *p)
{
	struct fs_parked **pp;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->parked; p->listed && *pp && *pp != p; pp = &(*pp)->next)
		;
	if (p->listed && *pp)
		*pp = p->next;
	p->listed = false;
	p->next = NULL;
	pthread_mutex_unlock(&h->lock);
}

static int park(struct fs_parked *p);

/* The engine says the range is in the cache (or will not be): runs on the engine's
 * worker thread, which holds no lock of ours. */
static void read_ready(int result, void *ctx)
{
	struct fs_parked *p = ctx;
	struct fs_fh *h = p->h;
	bool answered;

	pthread_mutex_lock(&h->lock);
	answered = p->answered;
	p->answered = true;
	pthread_mutex_unlock(&h->lock);
	/* off h's list before the reply: once every read is answered the kernel may
	 * release the handle, and h is freed */
	unpark(h, p);
	if (answered) { /* interrupted: the caller has gone */
		free(p);
		fs_fh_put(h);
		return;
	}
	if (result == 0) {
		int err = fs_reply_cached(p->req, p->d, h, p->off, p->size);

		if (err == -ENODATA && ++p->tries < 3) {
			/* evicted again between the fetch and this read: once more */
			pthread_mutex_lock(&h->lock);
			p->answered = false;
			pthread_mutex_unlock(&h->lock);
			if (park(p) == 0)
				return;
			err = -EIO;
		}
		if (err < 0)
			fuse_reply_err(p->req, err == -ENODATA ? EIO : -err);
	} else {
		/* DESIGN.md §5: a read never waits forever; it fails with EIO */
		fs_warn("read of %zu bytes at %lld: %s", p->size, (long long)p->off,
		        strerror(-result));
		fuse_reply_err(p->req, result == -ECANCELED ? EINTR : EIO);
	}
	free(p);
	fs_fh_put(h);
}

/* Ask the engine for p's range: 0 parked (read_ready answers), 1 present now, -errno. */
static int park(struct fs_parked *p)
{
	int rc;

	pthread_mutex_lock(&p->h->lock);
	if (!p->listed) {
		p->next = p->h->parked;
		p->h->parked = p;
		p->listed = true;
	}
	pthread_mutex_unlock(&p->h->lock);
	rc = fs_engine_prepare(p->h->reader, (uint64_t)p->off, p->size, p->h->timeout_ms,
	                       read_ready, p);
	if (rc != 0)
		unpark(p->h, p);
	return rc;
}

void fs_read_park(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size)
{
	int err;

	for (int tries = 0; tries < 3; tries++) {
		struct fs_parked *p = calloc(1, sizeof *p);

		if (!p) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		p->req = req;
		p->d = d;
		p->h = h;
		p->off = off;
		p->size = size;
		pthread_mutex_lock(&h->lock);
		h->refs++; /* p's, until read_ready is done with it */
		pthread_mutex_unlock(&h->lock);
		/* every read goes through the engine, hits too: it moves the read-ahead */
		fuse_req_interrupt_func(req, read_interrupted, h);
		err = park(p);
		if (err == 0)
			return; /* read_ready replies */
		free(p);
		fs_fh_put(h); /* the kernel's reference stays: never the last */
		if (err < 0) {
			fuse_reply_err(req, err == -ECANCELED ? EINTR : EIO);
			return;
		}
		if (fs_reply_cached(req, d, h, off, size) == 0)
			return;
		/* evicted between the check and the pin: ask again */
	}
	fuse_reply_err(req, EIO);
}
