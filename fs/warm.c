/* Reading files back into the page cache in the background (see warm.h). */
#include "warm.h"

#include "drive.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A read's size: the kernel's read-ahead runs ahead of it on its own. */
#define WARM_READ (1U << 20)

/* Nothing is read until the drive has been quiet for this long: no file added, created,
 * written or packed, and no read through the mount (fs_warmer_hold). A read-in during
 * the next publish took its core and its disk (the private mount's CPU per 512 MiB
 * publish was 1.57 s with it there, 1.09-1.12 s without; fs.sh). A read through the
 * mount right after a publish goes around the page cache at the disk's speed, and one
 * racing the warmer ran at 54-74 % of the public drive's (it waited for the warmer's
 * reads and their fresh pages, or the disk read the file twice); with the warmer held
 * while it reads, as fast as with no warmer. Not longer: a member's first fetch of a new
 * file comes soon after its publish, and a seeder reading the ciphertext from disk served
 * it at 87 % of the public drive's speed, against 93 % with it read in at once
 * (shared.sh row 1b, a delay of 2 s against 0). */
#define WARM_DELAY_MS 500

struct warm_item {
	struct warm_item *next;
	uint64_t len;
	char path[]; /* NUL-terminated */
};

struct fs_warmer {
	pthread_mutex_t lock; /* guards the queue, its count, quiet and stop */
	pthread_cond_t cond;  /* an item was added, or stop */
	pthread_t thread;
	struct warm_item *head, *tail;
	unsigned count;
	struct timespec quiet; /* CLOCK_MONOTONIC: nothing is read before (WARM_DELAY_MS) */
	bool stop;
};

static bool before(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec < t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec < t->tv_nsec);
}

/* Wait until the drive is quiet (lock held): false when the warmer is stopping. */
static bool quiet_locked(struct fs_warmer *w)
{
	while (!w->stop && before(&w->quiet))
		pthread_cond_timedwait(&w->cond, &w->lock, &w->quiet);
	return !w->stop;
}

/* Before each read: the drive quiet (a publish since pauses the file where it is), or
 * false when the warmer is stopping. */
static bool may_read(struct fs_warmer *w)
{
	bool go;

	pthread_mutex_lock(&w->lock);
	go = quiet_locked(w);
	pthread_mutex_unlock(&w->lock);
	return go;
}

static void warm_one(struct fs_warmer *w, const struct warm_item *it, char *buf)
{
	int fd = open(it->path, O_RDONLY | O_CLOEXEC);
	uint64_t done = 0;

	if (fd < 0)
		return; /* gone meanwhile (the file was replaced): nothing to read */
	while (done < it->len && may_read(w)) {
		size_t want = it->len - done < WARM_READ ? (size_t)(it->len - done) : WARM_READ;
		ssize_t r = read(fd, buf, want);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (uint64_t)r;
	}
	close(fd);
}

static void *warm_main(void *arg)
{
	struct fs_warmer *w = arg;
	char *buf = malloc(WARM_READ);

	/* the FUSE handlers and the publish worker go first */
	fs_thread_background("warm");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct warm_item *it;

		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!quiet_locked(w))
			break;
		it = w->head; /* still there: only this thread takes */
		w->head = it->next;
		if (!w->head)
			w->tail = NULL;
		w->count--;
		pthread_mutex_unlock(&w->lock);
		if (buf)
			warm_one(w, it, buf);
		free(it);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	free(buf);
	return NULL;
}

int fs_warmer_start(struct fs_warmer **out)
{
	struct fs_warmer *w = calloc(1, sizeof *w);
	int err;

	if (!w)
		return -ENOMEM;
	pthread_condattr_t ca;

	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((err = pthread_create(&w->thread, NULL, warm_main, w)) != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -err;
	}
	*out = w;
	return 0;
}

void fs_warmer_add(struct fs_warmer *w, const char *path, uint64_t len)
{
	size_t n = strlen(path) + 1;
	struct warm_item *it;

	if (!w || !len || !(it = malloc(sizeof *it + n)))
		return;
	it->next = NULL;
	it->len = len;
	memcpy(it->path, path, n);
	pthread_mutex_lock(&w->lock);
	if (w->stop || w->count >= FS_WARM_QUEUE_MAX) {
		pthread_mutex_unlock(&w->lock);
		free(it);
		return;
	}
	w->quiet = fs_time_after(CLOCK_MONOTONIC, WARM_DELAY_MS);
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	w->count++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void fs_warmer_hold(struct fs_warmer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->quiet = fs_time_after(CLOCK_MONOTONIC, WARM_DELAY_MS);
	pthread_mutex_unlock(&w->lock);
}

void fs_warmer_stop(struct fs_warmer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	while (w->head) {
		struct warm_item *it = w->head;

		w->head = it->next;
		free(it);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
