/* The volunteer: fetch and pin what lacks holders, within a budget (see volunteer.h). */
#include "volunteer.h"

#include "drive.h"
#include "fs.h"
#include "hosting.h"

#include <ledger.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct failed {
	uint8_t key[32];
	time_t until; /* not tried again before */
};

struct fs_volunteer {
	pthread_mutex_t lock; /* guards stop, used */
	pthread_cond_t cond;
	bool stop;
	uint64_t size, used;
	struct failed *failed; /* the worker's own */
	size_t n_failed;
	pthread_t thread;
};

static bool failed_recently(struct fs_volunteer *v, const uint8_t key[32], time_t now)
{
	for (size_t i = 0; i < v->n_failed; i++)
		if (!memcmp(v->failed[i].key, key, 32))
			return v->failed[i].until > now;
	return false;
}

static void failed_note(struct fs_volunteer *v, const uint8_t key[32], time_t now)
{
	struct failed *nf;

	for (size_t i = 0; i < v->n_failed; i++)
		if (!memcmp(v->failed[i].key, key, 32)) {
			v->failed[i].until = now + FS_VOLUNTEER_RETRY_S;
			return;
		}
	if (!(nf = realloc(v->failed, (v->n_failed + 1) * sizeof *nf)))
		return;
	v->failed = nf;
	memcpy(nf[v->n_failed].key, key, 32);
	nf[v->n_failed++].until = now + FS_VOLUNTEER_RETRY_S;
}

/* One look: host the most needed file that fits. true when one was taken (look again
 * at once: the state changed). */
static bool step(struct fs_drive *d, struct fs_volunteer *v, bool *warned)
{
	struct ledger_health *h = NULL;
	size_t n = 0;
	uint64_t used = 0;
	int64_t target;
	time_t now = time(NULL);
	bool took = false;

	if (!ledger_member_role(d->ledger, d->me)) {
		/* info, not a warning: a node that joined minutes ago is no member at its
		 * head until its ledger has synced */
		if (!*warned)
			fs_info("volunteer: this node's key is no member of the drive (yet): it "
			        "hosts nothing");
		*warned = true;
		return false;
	}
	*warned = false;
	target = ledger_replicas(d->ledger);
	if (ledger_health_list(d->ledger, false, 0, &h, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (h[i].mine)
			used += h[i].content.length;
	pthread_mutex_lock(&v->lock);
	v->used = used;
	pthread_mutex_unlock(&v->lock);
	/* the fewest holders first: the most needed */
	for (size_t i = 0; i < n && h[i].holders < target && !d->closing; i++) {
		struct ledger_entry e;
		int err;

		if (h[i].mine || used >= v->size || h[i].content.length > v->size - used ||
		    failed_recently(v, h[i].key, now))
			continue;
		if (ledger_lookup(d->ledger, h[i].path, &e) < 0)
			continue;
		fs_info("volunteer: hosting %s (%u of %lld holders, %llu bytes)", h[i].path,
		        h[i].holders, (long long)target, (unsigned long long)e.content.length);
		err = fs_pin_entry(d, &e, true);
		if (err < 0) {
			if (!d->closing)
				fs_info("volunteer: cannot host %s now: %s (tried again in %d s)",
				        h[i].path, strerror(-err), FS_VOLUNTEER_RETRY_S);
			failed_note(v, h[i].key, now);
			continue;
		}
		took = true;
		break;
	}
	ledger_health_free(h, n);
	return took;
}

static void *volunteer_main(void *arg)
{
	struct fs_drive *d = arg;
	struct fs_volunteer *v = d->volunteer;
	bool warned = false;

	pthread_mutex_lock(&v->lock);
	while (!v->stop) {
		struct timespec ts;
		bool again;

		pthread_mutex_unlock(&v->lock);
		again = step(d, v, &warned);
		pthread_mutex_lock(&v->lock);
		if (again || v->stop)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += FS_VOLUNTEER_PERIOD_MS / 1000;
		pthread_cond_timedwait(&v->cond, &v->lock, &ts);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int fs_volunteer_start(struct fs_drive *d, uint64_t size)
{
	struct fs_volunteer *v = calloc(1, sizeof *v);
	int err;

	if (!v)
		return -ENOMEM;
	if (!d->key) {
		free(v);
		fs_err("volunteer: a mount without a key cannot host (its claims are signed)");
		return -EROFS;
	}
	v->size = size;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	d->volunteer = v;
	if ((err = -pthread_create(&v->thread, NULL, volunteer_main, d)) < 0) {
		d->volunteer = NULL;
		pthread_mutex_destroy(&v->lock);
		pthread_cond_destroy(&v->cond);
		free(v);
		return err;
	}
	fs_info("volunteer: hosting under-replicated files, up to %llu bytes",
	        (unsigned long long)size);
	return 0;
}

void fs_volunteer_stop(struct fs_drive *d)
{
	struct fs_volunteer *v = d->volunteer;

	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = true;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
	pthread_join(v->thread, NULL);
	d->volunteer = NULL;
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	free(v->failed);
	free(v);
}

void fs_volunteer_usage(struct fs_drive *d, uint64_t *out_size, uint64_t *out_used)
{
	struct fs_volunteer *v = d->volunteer;

	*out_size = *out_used = 0;
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	*out_size = v->size;
	*out_used = v->used;
	pthread_mutex_unlock(&v->lock);
}
