/* Parked reads of published content. See read.h. */
#include "read.h"

#include "engine.h"
#include "fs.h"

#include <cache.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A read waiting for the swarm: parked on its handle, answered by the engine's
 * callback, or with EINTR when the reader is interrupted, whichever comes first. */
struct fs_read_parked {
	fuse_req_t req;
	struct fs_read *r;
	off_t off;
	size_t size;
	int tries;
	bool answered;
	bool listed; /* on r->parked */
	struct fs_read_parked *next;
};

void fs_read_init(struct fs_read *r, void (*on_last)(struct fs_read *))
{
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1;
	r->on_last = on_last;
}

void fs_read_put(struct fs_read *r)
{
	bool last;

	pthread_mutex_lock(&r->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (last) {
		pthread_mutex_destroy(&r->lock);
		r->on_last(r);
	}
}

void fs_read_reply_fd(fuse_req_t req, int fd, off_t off, size_t size)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	/* fd-backed: libfuse can splice the file's pages straight into the reply */
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* Reply from the cache if the whole range is there: 0, or -ENODATA. Once replied, the
 * kernel may release the handle at once (r freed): nothing of r is used after. */
static int reply_cached(fuse_req_t req, struct fs_read *r, off_t off, size_t size)
{
	struct cache *c = r->cache;
	struct cache_block b;
	int err = cache_block_pin(c, r->key, r->base + (uint64_t)off, size, &b);

	if (err == 0) {
		fs_read_reply_fd(req, b.fd, (off_t)b.offset, b.len);
		cache_block_unpin(c, &b);
	}
	return err;
}

static void read_interrupted(fuse_req_t req, void *data)
{
	struct fs_read *r = data;
	bool reply = false;

	pthread_mutex_lock(&r->lock);
	for (struct fs_read_parked *p = r->parked; p; p = p->next) {
		if (p->req == req && !p->answered) {
			p->answered = reply = true;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	/* the fetch goes on (its pieces are wanted soon by the next read); only the
	 * caller stops waiting */
	if (reply)
		fuse_reply_err(req, EINTR);
}

static void unpark(struct fs_read *r, struct fs_read_parked *p)
{
	struct fs_read_parked **pp;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->parked; p->listed && *pp && *pp != p; pp = &(*pp)->next)
		;
	if (p->listed && *pp)
		*pp = p->next;
	p->listed = false;
	p->next = NULL;
	pthread_mutex_unlock(&r->lock);
}

static int park(struct fs_read_parked *p);

/* The engine says the range is in the cache (or will not be): runs on the engine's
 * worker thread, which holds no lock of ours. */
static void read_ready(int result, void *ctx)
{
	struct fs_read_parked *p = ctx;
	struct fs_read *r = p->r;
	bool answered;

	pthread_mutex_lock(&r->lock);
	answered = p->answered;
	p->answered = true;
	pthread_mutex_unlock(&r->lock);
	/* off r's list before the reply: once every read is answered the kernel may
	 * release the handle */
	unpark(r, p);
	if (answered) { /* interrupted: the caller has gone */
		free(p);
		fs_read_put(r);
		return;
	}
	if (result == 0) {
		int err = reply_cached(p->req, r, p->off, p->size);

		if (err == -ENODATA && ++p->tries < 3) {
			/* evicted again between the fetch and this read: once more */
			pthread_mutex_lock(&r->lock);
			p->answered = false;
			pthread_mutex_unlock(&r->lock);
			if (park(p) == 0)
				return;
			err = -EIO;
		}
		if (err < 0)
			fuse_reply_err(p->req, err == -ENODATA ? EIO : -err);
	} else {
		/* DESIGN.md §5: a read never waits forever; it fails with EIO */
		if (result != -ECANCELED)
			fs_warn("read of %zu bytes at %lld of %s: %s", p->size, (long long)p->off,
			        r->what ? r->what : "a file", strerror(-result));
		fuse_reply_err(p->req, result == -ECANCELED ? EINTR : EIO);
	}
	free(p);
	fs_read_put(r);
}

/* Ask the engine for p's range: 0 parked (read_ready answers), 1 present now, -errno. */
static int park(struct fs_read_parked *p)
{
	int rc;

	pthread_mutex_lock(&p->r->lock);
	if (!p->listed) {
		p->next = p->r->parked;
		p->r->parked = p;
		p->listed = true;
	}
	pthread_mutex_unlock(&p->r->lock);
	rc = fs_engine_prepare(p->r->reader, (uint64_t)p->off, p->size, p->r->timeout_ms,
	                       read_ready, p);
	if (rc != 0)
		unpark(p->r, p);
	return rc;
}

void fs_read_serve(fuse_req_t req, struct fs_read *r, size_t size, off_t off)
{
	int err;

	if (!r->length || (uint64_t)off >= r->length) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((uint64_t)off + size > r->length)
		size = (size_t)(r->length - (uint64_t)off);
	if (!r->reader) { /* content without a torrent here: the cache alone */
		err = reply_cached(req, r, off, size);
		if (err < 0) {
			fs_warn("read at %lld of %s: not here, and its metadata is not either (%s)",
			        (long long)off, r->what ? r->what : "a file", strerror(-err));
			fuse_reply_err(req, EIO);
		}
		return;
	}
	for (int tries = 0; tries < 3; tries++) {
		struct fs_read_parked *p = calloc(1, sizeof *p);

		if (!p) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		p->req = req;
		p->r = r;
		p->off = off;
		p->size = size;
		pthread_mutex_lock(&r->lock);
		r->refs++; /* p's, until read_ready is done with it */
		pthread_mutex_unlock(&r->lock);
		/* every read goes through the engine, hits too: it moves the read-ahead */
		fuse_req_interrupt_func(req, read_interrupted, r);
		err = park(p);
		if (err == 0)
			return; /* read_ready replies */
		free(p);
		fs_read_put(r); /* the kernel's reference stays: never the last */
		if (err < 0) {
			fuse_reply_err(req, err == -ECANCELED ? EINTR : EIO);
			return;
		}
		if (reply_cached(req, r, off, size) == 0)
			return;
		/* evicted between the check and the pin: ask again */
	}
	fuse_reply_err(req, EIO);
}

void fs_read_release(struct fs_read *r)
{
	/* the kernel sends release after every read of the handle is answered; parked
	 * reads that were interrupted still wait in the engine: freeing the reader
	 * cancels them, and their callbacks (later, on the engine's worker) hold a
	 * reference each, so the handle goes with the last of them */
	fs_engine_reader_free(r->reader);
	r->reader = NULL;
	fs_read_put(r);
}
