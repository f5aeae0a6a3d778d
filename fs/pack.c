/* Publishing's one read of a staged file (see pack.h). */
#include "pack.h"

#include "cipher.h"

#include <cache.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read at once: whole pieces, at least this much, so that every thread has
 * pieces to hash while the batch is in memory. */
#define BATCH_MIN   (8U << 20)
#define THREADS_MAX 4
/* O_DIRECT's alignment of buffer, offset and length (a page covers every device's). */
#define DIRECT_ALIGN 4096U
/* A v2 torrent's leaf: SHA-256 of each 16 KiB block, the cache's block too. */
#define SWARM_LEAF 16384U
_Static_assert(SWARM_LEAF == CACHE_BLOCK_SIZE, "a leaf is a cache block");

struct batch {
	uint8_t *buf;
	uint64_t off;   /* file offset of buf[0], a piece boundary */
	size_t len;     /* bytes in buf */
	uint32_t first; /* index of the batch's first piece */
	uint32_t pl;    /* piece length */
	const struct fs_cipher *c;
	struct swarm_hasher *h;
	uint8_t (*blocks)[32]; /* the file's: piece i's from i * pl / SWARM_LEAF on */
};

struct slice {
	struct batch *b;
	uint32_t from, to; /* pieces of the batch, [from, to) */
	int err;
};

/* Encrypt (private drives) and hash a slice of the batch's pieces. */
static void *slice_run(void *arg)
{
	struct slice *s = arg;
	struct batch *b = s->b;

	for (uint32_t i = s->from; i < s->to && !s->err; i++) {
		size_t at = (size_t)i * b->pl;
		size_t n = b->len - at < b->pl ? b->len - at : b->pl;
		uint8_t *p = b->buf + at;

		if (b->c)
			s->err = fs_cipher_apply(b->c, b->off + at, p, p, n);
		/* the v2 leaves are the cache's block digests: no pass of its own */
		if (!s->err)
			s->err = swarm_hasher_piece(b->h, b->first + i, p, n,
			                            b->blocks + (size_t)(b->first + i) *
			                                            (b->pl / SWARM_LEAF));
	}
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
		sl[t] = (struct slice){ b, (uint32_t)t * per, (uint32_t)(t + 1) * per, 0 };
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
	for (int t = 0; t < nthreads && !err; t++)
		err = sl[t].err;
	return err;
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

/* The ciphertext is written once and read again only when a peer asks for it: written
 * around the page cache (O_DIRECT), it costs a DMA instead of a fresh page-cache page
 * per 4 KiB (measured here: 0.36-0.55 GB/s direct, 0.15 GB/s buffered into a new file).
 * Filesystems without O_DIRECT (tmpfs) get a buffered file. */
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
	size_t head = *direct ? len / DIRECT_ALIGN * DIRECT_ALIGN : 0;
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
#define CIPHER_BUFS 4

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

int fs_pack_file(const char *src, const char *name, const struct fs_cipher *c,
                 const char *cipher_path, const char *const *trackers,
                 void (*progress)(uint32_t done, uint32_t total, void *ctx), void *progress_ctx,
                 struct fs_pack *out)
{
	struct swarm_make_params mp = { .kind = SWARM_MAKE_HYBRID, .trackers = trackers };
	struct batch b = { .c = c };
	struct fs_pack p = { 0 };
	int fd, cfd = -1, err = 0, werr, nthreads = threads_wanted();
	bool direct = false, writing = false;
	uint8_t *bufs[CIPHER_BUFS] = { NULL }; /* a private drive's ring; a public one's [0] */
	struct writer w = { 0 };
	uint64_t size, cap;
	struct stat st;

	if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		err = st.st_size == 0 ? -EINVAL : -errno;
		close(fd);
		return err;
	}
	size = (uint64_t)st.st_size;
	b.pl = swarm_make_piece_length(size);
	if (!b.pl) {
		close(fd);
		return -ENOMEM;
	}
	p.n = (uint32_t)((size + b.pl - 1) / b.pl);
	cap = b.pl >= BATCH_MIN ? b.pl : BATCH_MIN;
	if (cap > size)
		cap = (size + b.pl - 1) / b.pl * b.pl;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	p.nblocks = (size + SWARM_LEAF - 1) / SWARM_LEAF;
	if (b.pl % SWARM_LEAF || !(p.blocks = malloc((size_t)p.nblocks * sizeof *p.blocks)))
		err = -ENOMEM;
	/* a file of fewer batches than the ring needs no more buffers than batches */
	for (uint64_t i = 0; i < (c ? CIPHER_BUFS : 1) && i * cap < size && !err; i++) {
		if (posix_memalign((void **)&bufs[i], DIRECT_ALIGN, (size_t)cap) != 0) {
			bufs[i] = NULL;
			err = -ENOMEM;
		}
	}
	if (!err)
		err = swarm_hasher_new(size, b.pl, SWARM_MAKE_HYBRID, &b.h);
	if (!err && c && (cfd = open_cipher(cipher_path, &direct)) < 0)
		err = cfd;
	if (!err && c) {
		memcpy(w.bufs, bufs, sizeof bufs);
		for (w.nbufs = 0; w.nbufs < CIPHER_BUFS && bufs[w.nbufs]; w.nbufs++)
			;
		writer_start(&w, cfd, direct);
		writing = true;
	}
	b.blocks = p.blocks;
	for (uint64_t off = 0; !err && off < size; off += b.len) {
		b.buf = bufs[0];
		if (c && (err = writer_slot(&w, &b.buf)) < 0)
			break; /* an earlier batch's write failed */
		b.off = off;
		b.len = (size_t)(size - off < cap ? size - off : cap);
		b.first = (uint32_t)(off / b.pl);
		err = pread_all(fd, b.buf, b.len, off);
		if (!err)
			err = batch_run(&b, nthreads);
		if (!err && c)
			err = writer_push(&w, b.buf, b.len, off);
		if (!err && progress)
			progress((uint32_t)((off + b.len + b.pl - 1) / b.pl), p.n, progress_ctx);
	}
	if (writing && (werr = writer_finish(&w)) < 0 && !err)
		err = werr;
	if (!err)
		err = swarm_hasher_finish(b.h, name, &mp, &p.m);
	if (cfd >= 0 && close(cfd) < 0 && !err)
		err = -errno;
	if (err && c)
		unlink(cipher_path);
	close(fd);
	swarm_hasher_free(b.h);
	for (int i = 0; i < CIPHER_BUFS; i++)
		free(bufs[i]);
	if (err) {
		free(p.blocks);
		return err;
	}
	*out = p;
	return 0;
}

void fs_pack_release(struct fs_pack *p)
{
	swarm_metainfo_free(p->m);
	free(p->blocks);
	memset(p, 0, sizeof *p);
}
