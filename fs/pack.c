/* Publishing's one read of a staged file (see pack.h). */
#include "pack.h"

#include "buffer.h"
#include "cipher.h"

#include <cache.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read at once: whole pieces, at least this much, so that every thread has
 * pieces to hash while the batch is in memory. */
#define BATCH_MIN   (8U << 20)
#define THREADS_MAX 4
/* A v2 torrent's leaf: SHA-256 of each 16 KiB block, the cache's block too. */
#define SWARM_LEAF 16384U
_Static_assert(SWARM_LEAF == CACHE_BLOCK_SIZE, "a leaf is a cache block");
/* Batches of ciphertext on their way to disk at once (the writer's ring, below). */
#define CIPHER_BUFS 4

struct fs_packer;

struct batch {
	struct fs_packer *k;
	uint8_t *buf;
	uint64_t off;    /* file offset of buf[0], a piece boundary */
	size_t len;      /* bytes in buf */
	uint32_t first;  /* index of the batch's first piece */
	uint32_t pl;     /* piece length */
	uint64_t leafed; /* blocks below this offset have their digest already */
};

struct slice {
	struct batch *b;
	uint32_t from, to; /* pieces of the batch, [from, to) */
	int err;
	uint64_t work; /* bytes its v1 hashes took */
};

/* out = md(p[0, n)) on the context x, or -EIO. */
static int digest(EVP_MD_CTX *x, const EVP_MD *md, const uint8_t *p, size_t n, uint8_t *out)
{
	return EVP_DigestInit_ex2(x, md, NULL) == 1 && EVP_DigestUpdate(x, p, n) == 1 &&
	               EVP_DigestFinal_ex(x, out, NULL) == 1
	           ? 0
	           : -EIO;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pread(fd, buf, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO; /* shorter than it was: changed under us */
		buf += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	if (!len)
		return 0;
	while (len) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* The ciphertext is written around the page cache (O_DIRECT): it costs a DMA instead of
 * a fresh page-cache page per 4 KiB on the packing's own time (measured here: 0.36-0.55
 * GB/s direct, 0.15 GB/s buffered into a new file); it is read in after the publish, in
 * the background (fs/warm.h). Filesystems without O_DIRECT (tmpfs) get a buffered
 * file. */
static int open_cipher(const char *path, bool *direct)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* A batch of ciphertext at off (a piece boundary, so aligned): the aligned head direct,
 * an unaligned tail (the file's last bytes) buffered, O_DIRECT cleared for it. */
static int write_cipher(int fd, bool *direct, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t head = *direct ? len / FS_DIRECT_ALIGN * FS_DIRECT_ALIGN : 0;
	int err = pwrite_all(fd, buf, head, off);

	if (!err && head < len && *direct) {
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT) < 0)
			return -errno;
		*direct = false;
	}
	return err ? err : pwrite_all(fd, buf + head, len - head, off + head);
}

/* Batches of ciphertext on their way to disk while the next ones are read and hashed:
 * one writer thread for the whole file, fed through a ring of CIPHER_BUFS buffers in
 * file order. With one buffer in flight (a thread per batch, joined before the next),
 * every direct write slower than a batch's hashing stalled the read; a ring absorbs a
 * slow write instead (the disk is shared: 8 MiB direct writes took 10-40 ms here). */

struct writer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t th;
	bool running, closing;
	int fd;
	bool direct;
	struct {
		const uint8_t *buf;
		size_t len;
		uint64_t off;
	} q[CIPHER_BUFS];
	uint8_t *bufs[CIPHER_BUFS]; /* the ring (the caller's), nbufs of them */
	unsigned nbufs;
	uint64_t queued, written; /* batches handed over, batches done (counters) */
	int err;                  /* the first write's failure */
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->written == w->queued && !w->closing)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->written == w->queued)
			break;
		unsigned i = (unsigned)(w->written % w->nbufs);
		int err = w->err;

		pthread_mutex_unlock(&w->lock);
		/* after a failure the rest is not written, only counted: the file goes */
		if (!err)
			err =
			    write_cipher(w->fd, &w->direct, w->q[i].buf, w->q[i].len, w->q[i].off);
		pthread_mutex_lock(&w->lock);
		if (err && !w->err)
			w->err = err;
		w->written++;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* The writer's thread, or none (then writer_push writes on the caller's). */
static void writer_start(struct writer *w, int fd, bool direct)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->fd = fd;
	w->direct = direct;
	w->running = pthread_create(&w->th, NULL, writer_run, w) == 0;
}

/* The buffer the next batch may be read into: the ring's next, once its last write is
 * done. The first write failure ends the file early: its -errno. */
static int writer_slot(struct writer *w, uint8_t **out)
{
	int err;

	pthread_mutex_lock(&w->lock);
	while (w->queued - w->written == w->nbufs && !w->err)
		pthread_cond_wait(&w->cond, &w->lock);
	err = w->err;
	*out = w->bufs[w->queued % w->nbufs];
	pthread_mutex_unlock(&w->lock);
	return err;
}

/* Hand over buf[0, len) (the slot's buffer) to be written at off. */
static int writer_push(struct writer *w, const uint8_t *buf, size_t len, uint64_t off)
{
	unsigned i = (unsigned)(w->queued % w->nbufs);

	if (!w->running) {
		w->queued++;
		w->written++;
		return (w->err = write_cipher(w->fd, &w->direct, buf, len, off));
	}
	pthread_mutex_lock(&w->lock);
	w->q[i].buf = buf;
	w->q[i].len = len;
	w->q[i].off = off;
	w->queued++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Every write handed over done, the thread gone: the first failure, or 0. */
static int writer_finish(struct writer *w)
{
	if (w->running) {
		pthread_mutex_lock(&w->lock);
		w->closing = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->th, NULL);
		w->running = false;
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	return w->err;
}

/* A piece's SHA-1 begun: the state after its first len bytes. A piece length that
 * doubles (the file grew past the next of libtorrent's sizes) makes each new piece two
 * old ones: the state kept of the first, hashed whole, is the new piece's begun, and
 * only the second is hashed again (a length that grows r-fold keeps 1/r). Kept of the
 * even pieces, while the file is followed (its size, so its piece length, not known). */
struct v1_head {
	EVP_MD_CTX *x; /* NULL: none */
	uint32_t len;
};
/* Pieces beyond which no heads are kept: libtorrent keeps a file's pieces below about
 * 2600 until 16 MiB pieces (700 GB). */
#define HEADS_MAX 8192

/* Where the packing of a file stands: its v1 hashes are made at one piece length (the
 * file's size's, as far as it is known), its block digests and ciphertext at none. */
struct fs_packer {
	int fd; /* the file, read only */
	bool has_c;
	struct fs_cipher c;
	char *cipher_path; /* with has_c: the ciphertext's file */
	int cfd;
	bool direct, writing, keep;
	struct writer w;
	uint8_t *bufs[CIPHER_BUFS]; /* a private drive's ring; a public one's [0] */
	unsigned nbufs;
	size_t cap;        /* each buffer's bytes */
	uint32_t pl;       /* the piece length the v1 hashes are of */
	uint64_t hashed;   /* pieces below have their v1 hash: a multiple of pl, or the end */
	uint64_t leafed;   /* blocks below have their digest and are written (with a cipher):
	                    * a multiple of SWARM_LEAF, or the end */
	uint8_t (*v1)[20]; /* by piece, at pl */
	size_t v1_cap;
	uint8_t (*blocks)[32]; /* by block */
	size_t blocks_cap;
	struct v1_head *heads; /* by piece, at pl; heads_n of them */
	size_t heads_n;
	bool final;       /* the size is known (finishing): no heads are kept */
	uint64_t v1_work; /* bytes the v1 hashes took, again after a piece length change */
	EVP_MD *sha1, *sha256;
};

/* The v1 hash of piece index, p[0, n) (the bytes after its head's, if it has one; with
 * a cipher, encrypted here), on the context x; of an even piece hashed whole while the
 * file is followed, the state is kept as a head (for the next piece length). The heads
 * of distinct pieces are distinct: slices on other threads touch none of this one's. */
static int v1_piece(struct fs_packer *k, EVP_MD_CTX *x, uint32_t index, uint8_t *p, size_t n,
                    uint64_t off, uint32_t pl, uint64_t *work)
{
	struct v1_head *h = index < k->heads_n ? &k->heads[index] : NULL;
	size_t skip = h && h->x && h->len <= n ? h->len : 0;
	bool keep = h && !k->final && n == pl && index % 2 == 0;
	int err = 0;

	if (k->has_c &&
	    (err = fs_cipher_apply(&k->c, off + skip, p + skip, p + skip, n - skip)) < 0)
		return err;
	if (!(skip ? EVP_MD_CTX_copy_ex(x, h->x) : EVP_DigestInit_ex2(x, k->sha1, NULL)) ||
	    EVP_DigestUpdate(x, p + skip, n - skip) != 1)
		return -EIO;
	*work += n - skip;
	if (keep) {
		if (!h->x && !(h->x = EVP_MD_CTX_new()))
			return -ENOMEM;
		if (!EVP_MD_CTX_copy_ex(h->x, x))
			return -EIO;
		h->len = (uint32_t)n;
	} else if (h && h->x) {
		EVP_MD_CTX_free(h->x);
		h->x = NULL;
	}
	return EVP_DigestFinal_ex(x, k->v1[index], NULL) == 1 ? 0 : -EIO;
}

/* Encrypt (private drives), then the v1 hash of each piece of the slice and the digest
 * of each of its blocks not digested before (a piece hashed again at a new piece
 * length has its blocks' already: their digests are of no piece length). */
static void *slice_run(void *arg)
{
	struct slice *s = arg;
	struct batch *b = s->b;
	struct fs_packer *k = b->k;
	EVP_MD_CTX *x = EVP_MD_CTX_new();

	if (!x)
		s->err = -ENOMEM;
	for (uint32_t i = s->from; i < s->to && !s->err; i++) {
		size_t at = (size_t)i * b->pl;
		size_t n = b->len - at < b->pl ? b->len - at : b->pl;
		uint64_t off = b->off + at;
		uint8_t *p = b->buf + at;

		s->err = v1_piece(k, x, b->first + i, p, n, off, b->pl, &s->work);
		for (size_t o = 0; o < n && !s->err; o += SWARM_LEAF) {
			if (off + o < b->leafed)
				continue;
			s->err =
			    digest(x, k->sha256, p + o, n - o < SWARM_LEAF ? n - o : SWARM_LEAF,
			           k->blocks[(off + o) / SWARM_LEAF]);
		}
	}
	EVP_MD_CTX_free(x);
	return NULL;
}

static int threads_wanted(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > THREADS_MAX ? THREADS_MAX : (int)n;
}

/* Hash (and encrypt) the batch's pieces on up to nthreads threads, this one included. */
static int batch_run(struct batch *b, int nthreads)
{
	uint32_t pieces = (uint32_t)((b->len + b->pl - 1) / b->pl), per;
	struct slice sl[THREADS_MAX];
	pthread_t th[THREADS_MAX];
	bool started[THREADS_MAX] = { false };
	int err = 0;

	if ((uint32_t)nthreads > pieces)
		nthreads = (int)pieces;
	per = (pieces + (uint32_t)nthreads - 1) / (uint32_t)nthreads;
	for (int t = 0; t < nthreads; t++) {
		sl[t] = (struct slice){ b, (uint32_t)t * per, (uint32_t)(t + 1) * per, 0, 0 };
		if (sl[t].to > pieces)
			sl[t].to = pieces;
		if (t > 0)
			started[t] = pthread_create(&th[t], NULL, slice_run, &sl[t]) == 0;
	}
	slice_run(&sl[0]);
	for (int t = 1; t < nthreads; t++) {
		if (started[t])
			pthread_join(th[t], NULL);
		else
			slice_run(&sl[t]); /* no thread to spare: this one does it */
	}
	for (int t = 0; t < nthreads; t++) {
		if (!err)
			err = sl[t].err;
		b->k->v1_work += sl[t].work;
	}
	return err;
}

/* Room in an array of elements of size each for n of them. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *a;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	if (!(a = realloc(*arr, c * size)))
		return -ENOMEM;
	*arr = a;
	*cap = c;
	return 0;
}

/* heads[0, n) (new ones empty), for pieces a head may be kept of */
static int heads_fit(struct fs_packer *k, size_t n)
{
	size_t cap;

	if (n > HEADS_MAX)
		n = HEADS_MAX;
	if (k->final || n <= k->heads_n)
		return 0;
	cap = k->heads_n;
	if (grow((void **)&k->heads, &cap, n, sizeof *k->heads) < 0)
		return -ENOMEM;
	memset(k->heads + k->heads_n, 0, (cap - k->heads_n) * sizeof *k->heads);
	k->heads_n = cap;
	return 0;
}

/* Buffers of at least want bytes (whole pieces of the current length), once every
 * write of the old ones is done. */
static int buffers_fit(struct fs_packer *k, size_t want)
{
	if (want <= k->cap && k->bufs[0])
		return 0;
	if (k->writing) {
		pthread_mutex_lock(&k->w.lock);
		while (k->w.written != k->w.queued)
			pthread_cond_wait(&k->w.cond, &k->w.lock);
		pthread_mutex_unlock(&k->w.lock);
	}
	for (unsigned i = 0; i < k->nbufs; i++) {
		free(k->bufs[i]);
		if (!(k->bufs[i] = fs_buffer_new(want)))
			return -ENOMEM;
		k->w.bufs[i] = k->bufs[i];
	}
	k->cap = want;
	return 0;
}

/* The heads at piece length pl become those at pl * r (r > 0): new piece j begins as
 * old piece j * r did. r == 0: none are kept (a length that is no multiple). */
static void heads_regroup(struct fs_packer *k, uint32_t r)
{
	size_t kept = 0;

	for (size_t i = 0; i < k->heads_n; i++) {
		if (r && i % r == 0) {
			k->heads[kept++] = k->heads[i]; /* kept <= i: that slot is done with */
			continue;
		}
		EVP_MD_CTX_free(k->heads[i].x);
	}
	for (size_t i = kept; i < k->heads_n; i++)
		k->heads[i] = (struct v1_head){ NULL, 0 };
}

/* The piece length for a file of size bytes: the v1 hashes made at another are made
 * again (from the heads kept, where the new length is a multiple of the old). */
static int packer_at(struct fs_packer *k, uint64_t size)
{
	uint32_t pl = swarm_make_piece_length(size);

	if (!pl || pl % SWARM_LEAF)
		return -ENOMEM;
	if (pl != k->pl) {
		heads_regroup(k, k->pl && pl > k->pl && pl % k->pl == 0 ? pl / k->pl : 0);
		k->pl = pl;
		k->hashed = 0;
	}
	return buffers_fit(k, pl);
}

/* One batch from k->hashed up to end at most (whole pieces, but for the file's last):
 * the bytes done, 0 when none are left, or -errno. */
static ssize_t packer_batch(struct fs_packer *k, uint64_t end, int nthreads)
{
	struct batch b = { .k = k, .pl = k->pl, .off = k->hashed, .leafed = k->leafed };
	int err;

	if (end <= k->hashed)
		return 0;
	b.len = (size_t)(end - b.off < k->cap ? end - b.off : k->cap / k->pl * k->pl);
	b.first = (uint32_t)(b.off / b.pl);
	if ((err = grow((void **)&k->v1, &k->v1_cap, (b.off + b.len + b.pl - 1) / b.pl,
	                sizeof *k->v1)) < 0 ||
	    (err = heads_fit(k, (b.off + b.len + b.pl - 1) / b.pl)) < 0 ||
	    (err = grow((void **)&k->blocks, &k->blocks_cap,
	                (b.off + b.len + SWARM_LEAF - 1) / SWARM_LEAF, sizeof *k->blocks)) < 0)
		return err;
	b.buf = k->bufs[0];
	if (k->writing && (err = writer_slot(&k->w, &b.buf)) < 0)
		return err; /* an earlier batch's write failed */
	if ((err = pread_all(k->fd, b.buf, b.len, b.off)) < 0 ||
	    (err = batch_run(&b, nthreads)) < 0)
		return err;
	/* the ciphertext of what was not written before (a batch hashed again for a new
	 * piece length was) */
	if (k->has_c && b.off + b.len > k->leafed) {
		size_t skip = (size_t)(k->leafed > b.off ? k->leafed - b.off : 0);

		if ((err = writer_push(&k->w, b.buf + skip, b.len - skip, b.off + skip)) < 0)
			return err;
	}
	k->hashed = b.off + b.len;
	if (k->hashed > k->leafed)
		k->leafed = k->hashed;
	return (ssize_t)b.len;
}

int fs_packer_new(const char *src, const struct fs_cipher *c, const char *cipher_path,
                  uint64_t size_hint, struct fs_packer **out)
{
	struct fs_packer *k = calloc(1, sizeof *k);
	int err = 0;

	if (!k)
		return -ENOMEM;
	k->fd = k->cfd = -1;
	if ((k->fd = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
		err = -errno;
		goto fail;
	}
	posix_fadvise(k->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	k->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!k->sha1 || !k->sha256) {
		err = -EIO;
		goto fail;
	}
	k->nbufs = c ? CIPHER_BUFS : 1;
	/* a small file's batch is the file, in whole pieces */
	if (size_hint) {
		uint32_t pl = swarm_make_piece_length(size_hint);
		uint64_t whole = pl ? (size_hint + pl - 1) / pl * pl : BATCH_MIN;

		k->cap = whole < BATCH_MIN ? (size_t)whole : BATCH_MIN;
		if (pl > k->cap)
			k->cap = pl;
	} else
		k->cap = BATCH_MIN;
	/* and no more buffers than batches */
	for (uint64_t i = 1; i < k->nbufs; i++)
		if (size_hint && i * k->cap >= size_hint)
			k->nbufs = (unsigned)i;
	for (unsigned i = 0; i < k->nbufs; i++) {
		if (!(k->bufs[i] = fs_buffer_new(k->cap))) {
			err = -ENOMEM;
			goto fail;
		}
	}
	if (c) {
		k->has_c = true;
		k->c = *c;
		if (!(k->cipher_path = strdup(cipher_path))) {
			err = -ENOMEM;
			goto fail;
		}
		if ((k->cfd = open_cipher(cipher_path, &k->direct)) < 0) {
			err = k->cfd;
			k->cfd = -1;
			free(k->cipher_path);
			k->cipher_path = NULL; /* not made: nothing to remove */
			goto fail;
		}
		memcpy(k->w.bufs, k->bufs, sizeof k->bufs);
		k->w.nbufs = k->nbufs;
		writer_start(&k->w, k->cfd, k->direct);
		k->writing = true;
	}
	*out = k;
	return 0;
fail:
	fs_packer_free(k);
	return err;
}

uint64_t fs_packer_done(const struct fs_packer *k)
{
	return k->hashed;
}

uint64_t fs_packer_v1_work(const struct fs_packer *k)
{
	return k->v1_work;
}

ssize_t fs_packer_step(struct fs_packer *k, uint64_t avail)
{
	int err;

	if (!avail || (err = packer_at(k, avail)) < 0)
		return avail ? err : 0;
	return packer_batch(k, avail / k->pl * k->pl, 1);
}

int fs_packer_finish(struct fs_packer *k, const char *name, const char *const *trackers,
                     void (*progress)(uint32_t done, uint32_t total, void *ctx), void *progress_ctx,
                     struct fs_pack *out)
{
	struct swarm_make_params mp = { .kind = SWARM_MAKE_HYBRID, .trackers = trackers };
	struct swarm_hasher *h = NULL;
	int err = 0, werr, nthreads = threads_wanted();
	struct fs_pack p = { 0 };
	uint64_t size, nblocks;
	struct stat st;
	ssize_t n;

	if (fstat(k->fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0)
		return -EINVAL;
	size = (uint64_t)st.st_size;
	if (size < k->leafed)
		return -ESTALE; /* shorter than what was packed of it: not the same file */
	k->final = true;
	if ((err = packer_at(k, size)) < 0)
		return err;
	p.n = (uint32_t)((size + k->pl - 1) / k->pl);
	while ((n = packer_batch(k, size, nthreads)) > 0)
		if (progress)
			progress((uint32_t)((k->hashed + k->pl - 1) / k->pl), p.n, progress_ctx);
	err = (int)n;
	if (k->writing) {
		k->writing = false;
		if ((werr = writer_finish(&k->w)) < 0 && !err)
			err = werr;
	}
	if (k->cfd >= 0) {
		if (close(k->cfd) < 0 && !err)
			err = -errno;
		k->cfd = -1;
	}
	nblocks = (size + SWARM_LEAF - 1) / SWARM_LEAF;
	if (!err)
		err = swarm_hasher_new(size, k->pl, SWARM_MAKE_HYBRID, &h);
	for (uint32_t i = 0; i < p.n && !err; i++) {
		uint64_t first = (uint64_t)i * (k->pl / SWARM_LEAF);
		uint64_t last =
		    first + k->pl / SWARM_LEAF < nblocks ? first + k->pl / SWARM_LEAF : nblocks;

		err = swarm_hasher_piece_hashed(h, i, k->v1[i],
		                                (const uint8_t(*)[32])k->blocks + first,
		                                (size_t)(last - first));
	}
	if (!err)
		err = swarm_hasher_finish(h, name, &mp, &p.m);
	swarm_hasher_free(h);
	if (err)
		return err;
	/* the block digests go to the caller */
	p.blocks = k->blocks;
	p.nblocks = nblocks;
	k->blocks = NULL;
	k->blocks_cap = 0;
	k->keep = true;
	*out = p;
	return 0;
}

void fs_packer_free(struct fs_packer *k)
{
	if (!k)
		return;
	if (k->writing)
		writer_finish(&k->w);
	if (k->cfd >= 0)
		close(k->cfd);
	if (k->cipher_path && !k->keep)
		unlink(k->cipher_path);
	if (k->fd >= 0)
		close(k->fd);
	for (unsigned i = 0; i < CIPHER_BUFS; i++)
		free(k->bufs[i]);
	heads_regroup(k, 0);
	free(k->heads);
	free(k->v1);
	free(k->blocks);
	free(k->cipher_path);
	EVP_MD_free(k->sha1);
	EVP_MD_free(k->sha256);
	OPENSSL_cleanse(&k->c, sizeof k->c);
	free(k);
}

int fs_pack_file(const char *src, const char *name, const struct fs_cipher *c,
                 const char *cipher_path, const char *const *trackers,
                 void (*progress)(uint32_t done, uint32_t total, void *ctx), void *progress_ctx,
                 struct fs_pack *out)
{
	struct fs_packer *k;
	struct stat st;
	int err;

	if (stat(src, &st) < 0)
		return -errno;
	if (st.st_size <= 0)
		return -EINVAL;
	if ((err = fs_packer_new(src, c, cipher_path, (uint64_t)st.st_size, &k)) < 0)
		return err;
	err = fs_packer_finish(k, name, trackers, progress, progress_ctx, out);
	fs_packer_free(k);
	return err;
}

int fs_pack_cipher_path(const char *src, int64_t nonce, char **out)
{
	const char *slash = strrchr(src, '/');
	int dir = slash ? (int)(slash + 1 - src) : 0;

	return asprintf(out, "%.*s%016llx", dir, src, (unsigned long long)nonce) < 0 ? -ENOMEM : 0;
}

void fs_pack_release(struct fs_pack *p)
{
	swarm_metainfo_free(p->m);
	free(p->blocks);
	memset(p, 0, sizeof *p);
}
