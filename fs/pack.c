/* Publishing's one read of a staged file (see pack.h). */
#include "pack.h"

#include "cipher.h"

#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* Bytes read at once: whole pieces, at least this much, so that every thread has
 * pieces to hash while the batch is in memory. */
#define BATCH_MIN   (8U << 20)
#define THREADS_MAX 4

struct batch {
	uint8_t *buf;
	uint64_t off;   /* file offset of buf[0], a piece boundary */
	size_t len;     /* bytes in buf */
	uint32_t first; /* index of the batch's first piece */
	uint32_t pl;    /* piece length */
	const struct fs_cipher *c;
	struct swarm_hasher *h;
	uint8_t (*shas)[32];
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
		unsigned int mdlen = 0;

		if (b->c)
			s->err = fs_cipher_apply(b->c, b->off + at, p, p, n);
		if (!s->err)
			s->err = swarm_hasher_piece(b->h, b->first + i, p, n);
		if (!s->err &&
		    EVP_Digest(p, n, b->shas[b->first + i], &mdlen, EVP_sha256(), NULL) != 1)
			s->err = -EIO;
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

int fs_pack_file(const char *src, const char *name, const struct fs_cipher *c,
                 const char *cipher_path, const char *const *trackers,
                 void (*progress)(uint32_t done, uint32_t total, void *ctx), void *progress_ctx,
                 struct fs_pack *out)
{
	struct swarm_make_params mp = { .kind = SWARM_MAKE_HYBRID, .trackers = trackers };
	struct batch b = { .c = c };
	struct fs_pack p = { 0 };
	int fd, cfd = -1, err = 0, nthreads = threads_wanted();
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
	if (!(p.shas = malloc((size_t)p.n * sizeof *p.shas)) || !(b.buf = malloc((size_t)cap)))
		err = -ENOMEM;
	if (!err)
		err = swarm_hasher_new(size, b.pl, SWARM_MAKE_HYBRID, &b.h);
	if (!err && c &&
	    (cfd = open(cipher_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		err = -errno;
	b.shas = p.shas;
	for (uint64_t off = 0; !err && off < size; off += b.len) {
		b.off = off;
		b.len = (size_t)(size - off < cap ? size - off : cap);
		b.first = (uint32_t)(off / b.pl);
		err = pread_all(fd, b.buf, b.len, off);
		if (!err)
			err = batch_run(&b, nthreads);
		if (!err && c)
			err = pwrite_all(cfd, b.buf, b.len, off);
		if (!err && progress)
			progress((uint32_t)((off + b.len + b.pl - 1) / b.pl), p.n, progress_ctx);
	}
	if (!err)
		err = swarm_hasher_finish(b.h, name, &mp, &p.m);
	if (cfd >= 0 && close(cfd) < 0 && !err)
		err = -errno;
	if (err && c)
		unlink(cipher_path);
	close(fd);
	swarm_hasher_free(b.h);
	free(b.buf);
	if (err) {
		free(p.shas);
		return err;
	}
	*out = p;
	return 0;
}

void fs_pack_release(struct fs_pack *p)
{
	swarm_metainfo_free(p->m);
	free(p->shas);
	memset(p, 0, sizeof *p);
}
