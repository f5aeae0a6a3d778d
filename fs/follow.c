/* Packing a staged file while it is written (see follow.h). */
#include "follow.h"

#include "pack.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A file is followed once this much of it is written in order: below, publishing reads
 * it in a few milliseconds anyway. */
#define FOLLOW_MIN (8ULL << 20)
/* A follower without a whole piece more to pack waits for this much more to be
 * written (the file's last bytes are packed by publishing, fs_packer_finish). */
#define FOLLOW_STEP (1ULL << 20)
/* Files followed at once, in the whole process: each takes a core while its writer
 * writes. */
#define FOLLOW_MAX 2

static atomic_int running;

struct fs_follow {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the thread waits here for writes, or to stop */
	pthread_t th;
	bool started, stop, cancelled, failed;
	char *file;
	bool priv;
	uint64_t written; /* bytes written in order from offset 0 on */
	uint64_t claimed; /* the packer may have read the bytes below this */
	uint64_t want;    /* the thread waits until written reaches this */
	/* the thread's until it ends, then the taker's */
	struct fs_packer *k;
	uint8_t key[FS_CIPHER_KEY_LEN];
	int64_t nonce;
	char *cipher_path;
	uint64_t packed;
};

/* The packer's start (a private drive's file key is drawn here: never two files under
 * one key and nonce, a cancelled follower's ciphertext included). */
static int follow_open(struct fs_follow *f)
{
	struct fs_cipher c;
	int err = 0;

	if (f->priv) {
		if ((err = fs_cipher_new_key(f->key, &f->nonce)) < 0 ||
		    (err = fs_pack_cipher_path(f->file, f->nonce, &f->cipher_path)) < 0)
			return err;
		fs_cipher_init(&c, f->key, f->nonce);
	}
	err = fs_packer_new(f->file, f->priv ? &c : NULL, f->cipher_path, 0, &f->k);
	if (f->priv)
		fs_cipher_release(&c);
	return err;
}

static void *follow_main(void *arg)
{
	struct fs_follow *f = arg;
	int err = follow_open(f);

	pthread_mutex_lock(&f->mu);
	while (!err && !f->stop && !f->cancelled) {
		uint64_t avail = f->written;
		ssize_t n;

		if (avail < f->want) {
			pthread_cond_wait(&f->cv, &f->mu);
			continue;
		}
		/* the packer reads below avail: a write there from now on is a rewrite of
		 * what it may have read */
		f->claimed = avail;
		pthread_mutex_unlock(&f->mu);
		n = fs_packer_step(f->k, avail);
		pthread_mutex_lock(&f->mu);
		if (n < 0)
			err = (int)n;
		else if (n == 0)
			f->want = avail + FOLLOW_STEP; /* not a whole piece more yet */
		f->packed = fs_packer_done(f->k);
	}
	if (err)
		f->failed = true;
	if (f->failed || f->cancelled) { /* of no use: its ciphertext goes now */
		fs_packer_free(f->k);
		f->k = NULL;
	}
	pthread_mutex_unlock(&f->mu);
	atomic_fetch_sub(&running, 1);
	return NULL;
}

int fs_follow_new(const char *file, bool priv, struct fs_follow **out)
{
	struct fs_follow *f = calloc(1, sizeof *f);

	if (!f || !(f->file = strdup(file))) {
		free(f);
		return -ENOMEM;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->priv = priv;
	*out = f;
	return 0;
}

void fs_follow_wrote(struct fs_follow *f, uint64_t off, size_t n)
{
	pthread_mutex_lock(&f->mu);
	if (f->cancelled || f->stop) {
		pthread_mutex_unlock(&f->mu);
		return;
	}
	if (off < f->claimed) { /* a rewrite of what may be packed */
		f->cancelled = true;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->mu);
		return;
	}
	/* a write past the end leaves a hole: packed once the bytes before it are
	 * written, in order */
	if (off <= f->written && off + n > f->written)
		f->written = off + n;
	if (!f->started && f->written >= FOLLOW_MIN) {
		if (atomic_fetch_add(&running, 1) < FOLLOW_MAX)
			f->started = pthread_create(&f->th, NULL, follow_main, f) == 0;
		if (!f->started)
			atomic_fetch_sub(&running, 1); /* tried again at the next write */
	} else if (f->started && f->written >= f->want)
		pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void fs_follow_cancel(struct fs_follow *f)
{
	pthread_mutex_lock(&f->mu);
	f->cancelled = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

uint64_t fs_follow_packed(struct fs_follow *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->mu);
	n = f->packed;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Stop the thread and wait for it. */
static void follow_stop(struct fs_follow *f)
{
	bool started;

	pthread_mutex_lock(&f->mu);
	f->stop = true;
	started = f->started;
	f->started = false;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (started)
		pthread_join(f->th, NULL);
}

static void follow_destroy(struct fs_follow *f)
{
	fs_packer_free(f->k);
	OPENSSL_cleanse(f->key, sizeof f->key);
	free(f->cipher_path);
	free(f->file);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

int fs_follow_take(struct fs_follow *f, struct fs_followed *out)
{
	bool usable;

	follow_stop(f);
	usable = f->k && !f->cancelled && !f->failed;
	if (usable) {
		*out = (struct fs_followed){ .k = f->k,
			                     .nonce = f->nonce,
			                     .cipher_path = f->cipher_path,
			                     .packed = f->packed };
		memcpy(out->key, f->key, sizeof f->key);
		f->k = NULL;
		f->cipher_path = NULL;
	}
	follow_destroy(f);
	return usable ? 0 : -ENOENT;
}

void fs_follow_free(struct fs_follow *f)
{
	if (!f)
		return;
	follow_stop(f);
	follow_destroy(f);
}
