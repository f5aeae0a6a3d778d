/* Private drives' content at open and read (see filekey.h). */
#include "filekey.h"

#include "buffer.h"
#include "cipher.h"
#include "drive.h"
#include "fs.h"
#include "join.h"
#include "pagecache.h"
#include "park.h"
#include "publish.h"

#include <cache.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

static int cipher_of(struct fs_drive *d, const struct ledger_entry *e, bool warn,
                     struct fs_cipher **out)
{
	uint8_t key[LEDGER_FILE_KEY_LEN];
	struct fs_cipher *c;
	int64_t nonce = 0;
	int err;

	*out = NULL;
	if (!ledger_is_private(d->ledger) || e->is_dir || e->content.length == 0)
		return 0;
	err = ledger_file_key_open(d->ledger, e->record_id, key, &nonce);
	if (err < 0) {
		char hex[LEDGER_HEX_LEN];
		bool missing = err == -ENOKEY || err == -EINVAL;

		ledger_hex(e->record_id, LEDGER_ID_LEN, hex);
		if (warn || !missing)
			fs_warn("no key for the content of record %.16s: %s", hex, strerror(-err));
		return missing ? -EACCES : -EIO;
	}
	if (!(c = malloc(sizeof *c))) {
		OPENSSL_cleanse(key, sizeof key);
		return -ENOMEM;
	}
	fs_cipher_init(c, key, nonce);
	OPENSSL_cleanse(key, sizeof key);
	*out = c;
	return 0;
}

int fs_filekey_cipher(struct fs_drive *d, const struct ledger_entry *e, struct fs_cipher **out)
{
	return cipher_of(d, e, true, out);
}

int fs_filekey_cipher_quiet(struct fs_drive *d, const struct ledger_entry *e,
                            struct fs_cipher **out)
{
	return cipher_of(d, e, false, out);
}

bool fs_filekey_may_come(struct fs_drive *d)
{
	uint8_t secret[32];
	bool joining;

	if (!ledger_is_private(d->ledger) || !d->key)
		return false;
	if (ledger_member_role(d->ledger, d->me) > 0)
		return true;
	/* not a member yet, but joining: the invite is kept until its redeem is in a block */
	joining = fs_join_invite_load(d->dir, secret) == 0;
	OPENSSL_cleanse(secret, sizeof secret);
	return joining;
}

void fs_filekey_free(struct fs_cipher *c)
{
	if (!c)
		return;
	fs_cipher_release(c);
	free(c);
}

int fs_content_name(struct fs_drive *d, const char *path, const struct ledger_entry *e, char *out,
                    size_t size)
{
	uint8_t key[LEDGER_FILE_KEY_LEN];
	int64_t nonce = 0;
	int err;

	if (!ledger_is_private(d->ledger)) {
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

		return snprintf(out, size, "%s", base) < (int)size ? 0 : -ENAMETOOLONG;
	}
	err = ledger_file_key_open(d->ledger, e->record_id, key, &nonce);
	OPENSSL_cleanse(key, sizeof key);
	if (err < 0)
		return err;
	snprintf(out, size, "%016llx", (unsigned long long)nonce);
	return 0;
}

/* A private file's ciphertext is read around the page cache (O_DIRECT) unless some of the
 * range is in it already. Publishing writes the ciphertext around the page cache too
 * (fs/pack.c), then the warmer reads in as much of it as its plaintext held there
 * (fs/warm.h), for the peers that fetch a new file first. A file evicted since is on disk
 * only, and a buffered read of it fills fresh page-cache pages, which in this VM cost
 * about as much as the disk: dd bs=1M of a 1 GiB file not in the page cache ran at 237
 * MB/s, with iflag=direct at 733 MB/s (bs=4M: 1.5 GB/s); the plaintext lands in the
 * mount's own pages anyway. Whichever way they are read, the bytes are checked by
 * cache_verify against what was verified, where they then are decrypted from, before
 * anything is served: no altered ciphertext turns into plaintext (DESIGN §9). */

/* Whether any page of [off, off + len) of fd is in the page cache; true where the kernel
 * cannot tell (before cachestat): then the buffered read, as before. A range all of which
 * is there is read from there; one the warmer (fs/warm.h) had begun to read in (it
 * pauses while reads are served) is partly there, and a buffered read of it takes what
 * the warmer read rather than asking the disk for the same bytes a second time. In a first read
 * through the mount right after a publish, with the warmer at work, that was 74 % of the public
 * drive's speed against 55 % with such ranges read around the page cache (fs.sh). */
static bool any_cached(int fd, uint64_t off, size_t len)
{
	return fs_pagecache_held(fd, off, len) != 0;
}

/* Read [off, off + len) of fd into buf (FS_DIRECT_ALIGN-aligned, room for len rounded up to
 * it): 0, or -errno (-EIO: shorter). An O_DIRECT fd reads whole FS_DIRECT_ALIGN units; the
 * file's last one comes back short. */
static int read_all(int fd, uint8_t *buf, uint64_t off, size_t len, bool direct)
{
	size_t done = 0, want = direct ? fs_direct_round(len) : len;

	while (done < len) {
		ssize_t r = pread(fd, buf + done, want - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
		if (direct && done % FS_DIRECT_ALIGN && done < len)
			return -EIO; /* short in the middle: no aligned way on */
	}
	return 0;
}

/* The cache's own fd, opened again O_DIRECT: the very file it pinned. An fd, or
 * -errno (a file system without O_DIRECT: EINVAL). */
static int open_direct(int fd)
{
	char self[64];

	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	fd = open(self, O_RDONLY | O_DIRECT | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The pinned range b of the ciphertext into buf (room for b->len rounded up to
 * FS_DIRECT_ALIGN): from the page cache if any of it is there (read in after its publish,
 * or read before), around it otherwise. 0, or -errno. */
static int read_pinned(const struct cache_block *b, uint8_t *buf)
{
	int fd, err;

	if (b->offset % FS_DIRECT_ALIGN || any_cached(b->fd, b->offset, b->len) ||
	    (fd = open_direct(b->fd)) < 0)
		return read_all(b->fd, buf, b->offset, b->len, false);
	err = read_all(fd, buf, b->offset, b->len, true);
	close(fd);
	return err;
}

/* A sequential reader's ciphertext, read a tile at a time (around the page cache unless
 * some of the tile is in it): the kernel asks a FUSE file's reads 128 KiB at a time (the
 * mount's read-ahead), and as many O_DIRECT reads of that size left the disk idle between
 * them (382-418 MB/s). Three slots, tile i in slot i % 3: while this tile's requests are
 * served, the next two are read (prefetch_next; with two slots the requests waited 0.45 s
 * a GiB for the next tile, with three 0.03-0.09 s). A slot holds the bytes as read from
 * the data file; a stripe of them is checked where it is (cache_verify) and decrypted in
 * place by the first thread that needs it (stripe_plain), under the slot's read lock: a
 * request's own, or the prefetch's once it has read the tile. Requests are answered from
 * the slot's plaintext: no buffer per request, no copy of it, no wipe (a 512 MiB warm
 * read's mount CPU 0.71-0.73 s against 0.80-0.82 s when each request was checked and
 * decrypted from the slot into a buffer of its own; a public one's 0.66-0.72 s). Not a
 * whole tile on the prefetching thread: then the requests waited for that one thread,
 * which on a loaded machine gets one thread's share of the cores (the same read ran at
 * 36-57 % of the public one's speed against 45-80 % per request). The slot's bytes are
 * ours: what was checked is what is served, whatever the data file holds later. A tile's
 * chunks are pinned (one hit) while it is read. */
#define TILE (4U << 20)
/* a tile is checked and decrypted a stripe at a time: the kernel's request size, a
 * multiple of the cache's 16 KiB block (no block checked from disk at an edge) */
#define STRIPE  (128U << 10)
#define STRIPES (TILE / STRIPE)
/* how far from the last request's end a request still counts as sequential: the
 * kernel's read-ahead has a few requests in flight, answered in any order */
#define SEQ_SLACK (2U << 20)
#define SLOTS     3 /* 12 MiB a reading handle, from its first read here to its release */

enum { ST_CIPHER, ST_BUSY, ST_PLAIN, ST_BAD };

struct slot {
	pthread_rwlock_t mu; /* read: served from, stripes decrypted; write: filled */
	pthread_mutex_t smu; /* with scv: the wait for a stripe another thread checks */
	pthread_cond_t scv;  /* a stripe left ST_BUSY */
	uint8_t *buf;        /* TILE bytes, FS_DIRECT_ALIGN-aligned; NULL until the first fill;
	                      * plaintext where a stripe is ST_PLAIN: wiped before it is
	                      * freed */
	uint64_t off;        /* the tile's offset */
	size_t len;          /* bytes of it held; 0: none */
	bool alone;          /* the tile at off is read a request at a time (not all of it
	                      * present): asked once */
	uint8_t st[STRIPES]; /* each stripe's ST_ (atomic; ST_CIPHER after a fill) */
};

struct fs_readwin {
	struct slot s[SLOTS];
	uint64_t seq_end; /* where the last request ended (atomic): a tile is read for a
	                   * request near it only, so a random reader reads no more than
	                   * it asks */
};

static struct fs_readwin *readwin_of(struct fs_fh *h)
{
	struct fs_readwin *w;

	pthread_mutex_lock(&h->lock);
	if (!h->win && (h->win = calloc(1, sizeof *h->win))) {
		for (int i = 0; i < SLOTS; i++) {
			pthread_rwlock_init(&h->win->s[i].mu, NULL);
			pthread_mutex_init(&h->win->s[i].smu, NULL);
			pthread_cond_init(&h->win->s[i].scv, NULL);
		}
	}
	w = h->win;
	pthread_mutex_unlock(&h->lock);
	return w;
}

void fs_readwin_free(struct fs_readwin *w)
{
	if (!w)
		return;
	for (int i = 0; i < SLOTS; i++) {
		pthread_rwlock_destroy(&w->s[i].mu);
		pthread_mutex_destroy(&w->s[i].smu);
		pthread_cond_destroy(&w->s[i].scv);
		if (w->s[i].buf)
			explicit_bzero(w->s[i].buf, TILE);
		free(w->s[i].buf);
	}
	free(w);
}

/* Fill slot sl with the tile at off (slot write-locked), its stripes unchecked: 0, or
 * -errno (-EAGAIN: not all of it is present; the caller reads the request alone). A tile
 * all in the page cache is a tile still, read from there by read_pinned (with a request
 * at a time, a first read through the mount of a ciphertext its publish had warmed ran
 * at 532 MiB/s against the public file's 944; a tile at a time, 1068-1127 against
 * 1190-1350). */
static int slot_fill(struct fs_drive *d, struct fs_fh *h, struct slot *sl, uint64_t off)
{
	struct cache_block b;
	size_t len;
	int err;

	sl->len = 0;
	sl->off = off;
	sl->alone = false;
	memset(sl->st, ST_CIPHER, sizeof sl->st);
	if (!sl->buf && !(sl->buf = fs_buffer_new(TILE)))
		return -ENOMEM;
	/* pinned while it is read: its chunks present, checked once since the cache
	 * opened, and not evicted under the read */
	if ((err = cache_block_pin(d->cache, h->key, off, TILE, &b)) < 0) {
		sl->alone = err == -ENODATA;
		return -EAGAIN;
	}
	len = b.len;
	if (!len) {
		cache_block_unpin(d->cache, &b);
		sl->alone = true;
		return -EAGAIN;
	}
	err = read_pinned(&b, sl->buf);
	cache_block_unpin(d->cache, &b);
	if (err == 0)
		sl->len = len;
	return err;
}

/* Stripe i of sl's tile as plaintext (slot read-locked, holding it): checked where it
 * is, then decrypted in place, by this thread or by the one already at it (waited
 * for). 0, or -EBADMSG (its bytes are not what was verified: cache_verify flagged the
 * chunk; the stripe stays ST_BAD, never served), or -errno of the cipher. */
static int stripe_plain(struct fs_drive *d, struct fs_fh *h, struct slot *sl, uint32_t i)
{
	uint8_t st = ST_CIPHER;
	size_t n;
	int err;

	if (__atomic_compare_exchange_n(&sl->st[i], &st, ST_BUSY, false, __ATOMIC_ACQUIRE,
	                                __ATOMIC_ACQUIRE)) {
		n = sl->len - (size_t)i * STRIPE < STRIPE ? sl->len - (size_t)i * STRIPE : STRIPE;
		/* checked where it was read, then decrypted there: no altered ciphertext
		 * turns into plaintext (DESIGN §9) */
		err = cache_verify(d->cache, h->key, sl->off + (uint64_t)i * STRIPE,
		                   sl->buf + (size_t)i * STRIPE, n);
		if (err == 0)
			err = fs_cipher_apply(h->cipher, sl->off + (uint64_t)i * STRIPE,
			                      sl->buf + (size_t)i * STRIPE,
			                      sl->buf + (size_t)i * STRIPE, n);
		pthread_mutex_lock(&sl->smu);
		__atomic_store_n(&sl->st[i], err == 0 ? ST_PLAIN : ST_BAD, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&sl->scv);
		pthread_mutex_unlock(&sl->smu);
		return err;
	}
	if (st == ST_BUSY) {
		pthread_mutex_lock(&sl->smu);
		while ((st = __atomic_load_n(&sl->st[i], __ATOMIC_ACQUIRE)) == ST_BUSY)
			pthread_cond_wait(&sl->scv, &sl->smu);
		pthread_mutex_unlock(&sl->smu);
	}
	return st == ST_PLAIN ? 0 : -EBADMSG;
}

/* Reply with [off, off + size) of h's content from its tile: 0 replied, or -EAGAIN (not
 * served this way: the caller reads it otherwise), -EBADMSG (the tile's bytes are not
 * what was verified: the chunk is flagged), or -errno; not replied then. */
static int reply_tiled(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, uint64_t off,
                       size_t size)
{
	uint64_t tile = off / TILE * TILE, last;
	struct fs_readwin *w;
	struct slot *sl;
	int err = 0;

	if (off % FS_DIRECT_ALIGN || off + size > tile + TILE || !(w = readwin_of(h)))
		return -EAGAIN;
	sl = &w->s[(off / TILE) % SLOTS];
	last = __atomic_exchange_n(&w->seq_end, off + size, __ATOMIC_RELAXED);
	pthread_rwlock_rdlock(&sl->mu);
	if (sl->off == tile && sl->alone)
		err = -EAGAIN;
	else if ((!sl->len || sl->off != tile) &&
	         (off > last + SEQ_SLACK || off + size + SEQ_SLACK < last))
		err = -EAGAIN; /* not near the last request: read alone, not a tile */
	else if (!sl->len || sl->off != tile) { /* filled under the write lock, then read */
		pthread_rwlock_unlock(&sl->mu);
		pthread_rwlock_wrlock(&sl->mu);
		if (sl->off != tile || (!sl->len && !sl->alone))
			err = slot_fill(d, h, sl, tile);
		pthread_rwlock_unlock(&sl->mu);
		pthread_rwlock_rdlock(&sl->mu);
		if (err == 0 && (!sl->len || sl->off != tile))
			err = -EAGAIN; /* taken for another tile meanwhile, or to be read alone */
	}
	if (err == 0 && off < sl->off + sl->len) {
		size_t n = (size_t)(sl->off + sl->len - off) < size
		               ? (size_t)(sl->off + sl->len - off)
		               : size;

		for (uint32_t i = (uint32_t)((off - tile) / STRIPE);
		     err == 0 && i <= (uint32_t)((off + n - 1 - tile) / STRIPE); i++)
			err = stripe_plain(d, h, sl, i);
		/* straight from the slot (the read lock keeps it): no buffer, no copy */
		if (err == 0)
			fuse_reply_buf(req, (const char *)sl->buf + (off - tile), n);
	} else if (err == 0) {
		err = -EAGAIN;
	}
	pthread_rwlock_unlock(&sl->mu);
	if (err == -EBADMSG)
		return err;
	return err < 0 ? -EAGAIN : 0;
}

/* After a reply from past the first quarter of a tile (the previous tile's requests are
 * answered by then): the next two tiles into their slots, on this thread (its reply is
 * sent), unless a slot is being filled or holds its tile already; then their stripes
 * checked and decrypted ahead of the requests, those no request has taken. The kernel
 * asks only a few 128 KiB requests ahead, so without this a tile's read would start when
 * its first request came, and every request of it would wait for it. A slot another
 * thread fills is passed, not waited for: two threads fill the next two tiles side by
 * side (the disk's reads at queue depth 2). */
static void prefetch_next(struct fs_drive *d, struct fs_fh *h, uint64_t off)
{
	uint64_t next = off / TILE * TILE + TILE;
	struct fs_readwin *w;

	pthread_mutex_lock(&h->lock);
	w = h->win;
	pthread_mutex_unlock(&h->lock);
	if (!w || off % TILE < TILE / 4)
		return;
	for (int k = 1; k < SLOTS && next < h->length; k++, next += TILE) {
		struct slot *sl = &w->s[(next / TILE) % SLOTS];
		bool filled = false;

		if (pthread_rwlock_trywrlock(&sl->mu) != 0)
			continue; /* being filled by another thread, or served from */
		if (sl->off != next || (!sl->len && !sl->alone))
			filled = slot_fill(d, h, sl, next) == 0;
		pthread_rwlock_unlock(&sl->mu);
		if (!filled)
			continue;
		pthread_rwlock_rdlock(&sl->mu);
		for (uint32_t i = 0; sl->off == next && (uint64_t)i * STRIPE < sl->len; i++)
			if (__atomic_load_n(&sl->st[i], __ATOMIC_RELAXED) == ST_CIPHER)
				(void)stripe_plain(d, h, sl, i);
		pthread_rwlock_unlock(&sl->mu);
	}
}

/* [off, off + size) of h's content into buf, read alone (not from a tile), its
 * ciphertext checked before it is decrypted: the bytes, or -errno as cache_read.
 * pinned: try the pinned read around the page cache first (false: a tile's bytes were
 * found changed, so cache_read reads them again and drops the chunk). */
static ssize_t read_plain(struct fs_drive *d, struct fs_fh *h, uint64_t off, size_t size,
                          uint8_t *buf, bool pinned)
{
	struct cache_block b;
	ssize_t n = -1;
	size_t len;
	int err;

	if (pinned) {
		if ((err = cache_block_pin(d->cache, h->key, off, size, &b)) < 0)
			return err;
		len = b.len; /* the unpin clears b */
		if (len && (err = read_pinned(&b, buf)) == 0)
			err = cache_verify(d->cache, h->key, b.offset, buf, len);
		cache_block_unpin(d->cache, &b);
		if (err == 0)
			n = (ssize_t)len;
	}
	/* a failed read, or bytes that are not what was verified (cache_verify flagged
	 * them): cache_read reads again, and drops a changed chunk, which the swarm then
	 * fetches again */
	if (n < 0 && (n = cache_read(d->cache, h->key, off, buf, size)) < 0)
		return n;
	err = fs_cipher_apply(h->cipher, off, buf, buf, (size_t)n);
	return err < 0 ? err : n;
}

int fs_reply_decrypted(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size)
{
	size_t room = fs_direct_round(size);
	uint8_t *buf;
	ssize_t n;
	int err;

	fs_publish_reading(d); /* no read-in of a new ciphertext meanwhile */
	/* a tiled reply is followed by the prefetch, when nothing holds the kernel's last
	 * read open any more: a release may put the handle meanwhile (ASan saw
	 * prefetch_next read a freed window), so it takes a reference of its own, before
	 * the reply */
	pthread_mutex_lock(&h->lock);
	h->refs++;
	pthread_mutex_unlock(&h->lock);
	err = reply_tiled(req, d, h, (uint64_t)off, size);
	if (err == 0)
		prefetch_next(d, h, (uint64_t)off);
	fs_fh_put(h); /* unreplied, the caller's reference holds it: never the last */
	if (err == 0)
		return 0;
	/* the thread's own buffer, kept from request to request: a new one each time was
	 * a page fault a 4 KiB (fs/buffer.h) */
	if (!(buf = fs_buffer_thread(room ? room : FS_DIRECT_ALIGN)))
		return -ENOMEM;
	/* checked before it is decrypted: a chunk that fails its check is never served */
	n = read_plain(d, h, (uint64_t)off, size, buf, err != -EBADMSG);
	if (n >= 0)
		fuse_reply_buf(req, (const char *)buf, (size_t)n);
	/* the plaintext is wiped before the buffer waits for the thread's next request
	 * (all of it after a failure, which may have left some): explicit_bzero is libc's
	 * vector memset, OPENSSL_cleanse a loop of 8-byte stores, 3x its time */
	explicit_bzero(buf, n >= 0 ? (size_t)n : room);
	return n < 0 ? (int)n : 0;
}
