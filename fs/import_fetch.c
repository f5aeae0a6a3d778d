/* swarmfs add into a private drive: the torrent fetched whole, its files published
 * encrypted as copies (see import_fetch.h). */
#include "import_fetch.h"

#include "drive.h"
#include "fs.h"
#include "import.h"
#include "ops.h"
#include "publish.h"
#include "sync.h"

#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { POLL_MS = 50 };

struct job {
	struct fs_imports *set;
	struct fs_drive *d;
	fuse_req_t req;
	char *dirpath, *name, *source;
	void *bytes; /* the .torrent, or NULL for a magnet */
	size_t len;
	uint64_t seq;
	pthread_t thread;
	bool started;
	bool interrupted, done; /* guarded by set->mu */
	struct job *next;
};

/* A drive's imports: d->imports, made by the first one. */
struct fs_imports {
	pthread_mutex_t mu; /* guards jobs, stop, and each job's interrupted and done */
	struct job *jobs;
	bool stop;
	uint64_t seq; /* names download directories */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(struct job *j)
{
	free(j->dirpath);
	free(j->name);
	free(j->source);
	free(j->bytes);
	free(j);
}

/* Whether the import should stop now: Ctrl-C, or the unmount. */
static bool job_stopped(struct job *j)
{
	bool stop;

	pthread_mutex_lock(&j->set->mu);
	stop = j->interrupted || j->set->stop;
	pthread_mutex_unlock(&j->set->mu);
	return stop;
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct fs_imports *set = data;

	pthread_mutex_lock(&set->mu);
	for (struct job *j = set->jobs; j; j = j->next)
		if (j->req == req && !j->done)
			j->interrupted = true;
	pthread_mutex_unlock(&set->mu);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* The hash a source is named by in messages: a magnet's topic, or the torrent's v2 (else
 * v1) infohash once its metadata is here. */
static void source_hash(const struct job *j, const struct swarm_metainfo *m, char out[65])
{
	const char *h = strstr(j->source, "urn:btih:");

	if (m) {
		swarm_hex(m->has_v2 ? m->v2 : m->v1, m->has_v2 ? 32 : 20, out);
		return;
	}
	h = h ? h + 9 : (h = strstr(j->source, "urn:btmh:")) ? h + 9 : j->source;
	snprintf(out, 65, "%.*s", (int)strcspn(h, "&"), h);
}

/* Wait until t has every piece, while pieces keep coming: 0, -ENODATA (nothing came for
 * the read timeout), -EINTR, -EIO (libtorrent could not write it: the reason is logged). */
static int fetch_whole(struct job *j, struct swarm_torrent *t, const struct swarm_metainfo *m)
{
	struct fs_drive *d = j->d;
	uint64_t have = 0;
	int64_t deadline = now_ms() + d->read_timeout_ms;
	char hex[65];

	for (;;) {
		struct swarm_torrent_stats st;
		int err = swarm_torrent_stats(t, &st);

		if (err < 0)
			return err;
		if (st.state == SWARM_STATE_SEEDING)
			return 0;
		if (st.state == SWARM_STATE_ERROR) {
			source_hash(j, m, hex);
			fs_import_why(
			    d, "cannot fetch %s: its data could not be written (see the log)", hex);
			return -EIO;
		}
		if (st.bytes_have > have) { /* progress: the deadline starts again */
			have = st.bytes_have;
			deadline = now_ms() + d->read_timeout_ms;
		}
		if (job_stopped(j))
			return -EINTR;
		if (now_ms() >= deadline) {
			source_hash(j, m, hex);
			fs_import_why(
			    d,
			    "no data for %s from its swarm within %d s (%llu of %llu bytes "
			    "fetched; is anyone seeding it?)",
			    hex, d->read_timeout_ms / 1000, (unsigned long long)have,
			    (unsigned long long)m->total_size);
			return -ENODATA;
		}
		usleep(POLL_MS * 1000);
	}
}

/* Each file of m, fetched into dl, handed to the publish queue at paths[i]. */
static int stage_all(struct job *j, const struct swarm_metainfo *m, const char *dl, char **paths)
{
	struct fs_drive *d = j->d;

	for (uint32_t i = 0; i < m->num_files; i++) {
		char *file = NULL;
		int err = 0, fd;

		if (asprintf(&file, "%s/%s", dl, m->files[i].path) < 0)
			return -ENOMEM;
		/* an empty file has no pieces: libtorrent may not have made it, nor its
		 * directories */
		if (m->files[i].size == 0) {
			for (char *sl = file + strlen(dl) + 1; (sl = strchr(sl, '/')); sl++) {
				*sl = '\0';
				mkdir(file, 0700);
				*sl = '/';
			}
			if ((fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0)
				close(fd);
		}
		err = fs_staged_adopt(d, paths[i], file, 0644);
		free(file);
		if (err < 0) {
			fs_import_why(d, "cannot publish /%s: %s%s", paths[i], strerror(-err),
			              i ? " (the files before it are published)" : "");
			return err;
		}
	}
	return 0;
}

static int import_run(struct job *j)
{
	struct fs_drive *d = j->d;
	struct swarm_add_params ap = { 0 };
	struct swarm_metainfo *m = NULL;
	struct swarm_torrent *t = NULL;
	struct ledger_entry e;
	char dl[4200], hex[65], *top = NULL, **paths = NULL;
	int err;

	snprintf(dl, sizeof dl, "%s/staging/import-%llu-%ld", d->dir, (unsigned long long)j->seq,
	         (long)getpid());
	if (mkdir(dl, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		fs_import_why(d, "cannot make %s: %s", dl, strerror(-err));
		return err;
	}
	if (j->bytes) {
		const char *why = "";

		/* named before anything is fetched */
		if ((err = swarm_metainfo_parse(j->bytes, j->len, &m, &why)) < 0) {
			fs_import_why(d, "%s is not a torrent file (%s)", j->source, why);
			err = -EBADMSG;
			goto out;
		}
		swarm_metainfo_free(m);
		m = NULL;
		ap.torrent = j->bytes;
		ap.torrent_len = j->len;
	} else
		ap.magnet = j->source;
	ap.save_path = dl;
	ap.download_all = true; /* like a plain client: every piece, then it is done */
	err = swarm_torrent_add(d->swarm, &ap, &t);
	if (err == -EEXIST) {
		fs_import_why(d,
		              "%s is in this mount's swarm session already (being added, or "
		              "read): try again once that is done",
		              j->source);
		err = -EBUSY;
	}
	if (err < 0) {
		if (err != -EBUSY)
			fs_import_why(d, "cannot fetch %s: %s", j->source, strerror(-err));
		t = NULL;
		goto out;
	}
	fs_sync_connect(d, t); /* the drive's members may hold it too */

	/* the metadata: at once from a .torrent, from the swarm for a magnet */
	for (int64_t end = now_ms() + d->read_timeout_ms;;) {
		if ((err = swarm_torrent_metainfo(t, &m)) != -EAGAIN)
			break;
		if (job_stopped(j)) {
			err = -EINTR;
			break;
		}
		if (now_ms() >= end) {
			fs_import_no_metadata(d, j->source, -ETIMEDOUT);
			err = -ETIMEDOUT;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	if (err < 0)
		goto out;
	if ((err = fs_import_plan(d, j->dirpath, j->name, m, &top, &paths)) < 0)
		goto out;
	source_hash(j, m, hex);
	fs_info("fetching %s (%llu bytes, %u file%s) for /%s", hex,
	        (unsigned long long)m->total_size, m->num_files, m->num_files == 1 ? "" : "s", top);
	if ((err = fetch_whole(j, t, m)) < 0)
		goto out;
	/* whole: the source leaves the session before its files move */
	fs_sync_forget(d, t);
	swarm_torrent_remove(t, false);
	t = NULL;
	/* taken meanwhile (another member's record, another add): nothing of it goes in */
	if (ledger_lookup(d->ledger, top, &e) == 0 ||
	    fs_staged_stat(d, top, &(struct stat){ 0 }) == 0) {
		fs_import_why(d, "/%s was made by someone else while %s was fetched", top, hex);
		err = -EEXIST;
		goto out;
	}
	if ((err = stage_all(j, m, dl, paths)) < 0)
		goto out;
	fs_info("added %s as /%s (%u file%s), published encrypted as copies", hex, top,
	        m->num_files, m->num_files == 1 ? "" : "s");
out:
	if (err == -EINTR)
		fs_import_why(d, "the add of %s was interrupted", j->source);
	if (t) {
		fs_sync_forget(d, t);
		swarm_torrent_remove(t, true);
	}
	if (m)
		fs_import_plan_free(top, paths, m->num_files);
	swarm_metainfo_free(m);
	/* what is left: parts files, directories, a failed fetch's pieces */
	nftw(dl, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return err;
}

static void *import_main(void *arg)
{
	struct job *j = arg;
	int err = import_run(j);

	fuse_reply_err(j->req, err < 0 ? fs_kernel_errno(err) : 0);
	pthread_mutex_lock(&j->set->mu);
	j->done = true;
	pthread_mutex_unlock(&j->set->mu);
	return NULL;
}

/* Join and free the imports that are done. Caller holds set->mu; it is let go while
 * joining (a done thread holds it no more). */
static void reap_locked(struct fs_imports *set)
{
	for (struct job **pp = &set->jobs; *pp;) {
		struct job *j = *pp;

		if (!j->done) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		pthread_mutex_unlock(&set->mu);
		pthread_join(j->thread, NULL);
		job_free(j);
		pthread_mutex_lock(&set->mu);
		pp = &set->jobs; /* the list may have changed meanwhile */
	}
}

static struct fs_imports *imports_of(struct fs_drive *d)
{
	struct fs_imports *set;

	pthread_mutex_lock(&d->add_lock);
	if (!d->imports && (d->imports = calloc(1, sizeof *d->imports)))
		pthread_mutex_init(&d->imports->mu, NULL);
	set = d->imports;
	pthread_mutex_unlock(&d->add_lock);
	return set;
}

void fs_import_fetch(fuse_req_t req, struct fs_drive *d, const char *dirpath, const char *name,
                     const char *source, const void *bytes, size_t len)
{
	struct fs_imports *set = imports_of(d);
	struct job *j = calloc(1, sizeof *j);
	int err = -ENOMEM;

	if (!set || !j || !(j->dirpath = strdup(dirpath)) || !(j->name = strdup(name)) ||
	    !(j->source = strdup(source)) || (bytes && !(j->bytes = malloc(len))))
		goto fail;
	if (bytes)
		memcpy(j->bytes, bytes, len);
	j->len = len;
	j->d = d;
	j->req = req;
	j->set = set;
	pthread_mutex_lock(&set->mu);
	reap_locked(set);
	if (set->stop) {
		pthread_mutex_unlock(&set->mu);
		err = -EINTR;
		goto fail;
	}
	j->seq = ++set->seq;
	/* listed before an interrupt can come */
	j->next = set->jobs;
	set->jobs = j;
	pthread_mutex_unlock(&set->mu);
	/* before the thread may answer req (an interrupt that came already is delivered at
	 * once, taking set->mu) */
	fuse_req_interrupt_func(req, on_interrupt, set);
	pthread_mutex_lock(&set->mu);
	err = -pthread_create(&j->thread, NULL, import_main, j);
	if (err < 0) {
		for (struct job **pp = &set->jobs; *pp; pp = &(*pp)->next) {
			if (*pp == j) {
				*pp = j->next;
				break;
			}
		}
		pthread_mutex_unlock(&set->mu);
		goto fail;
	}
	pthread_mutex_unlock(&set->mu);
	return;
fail:
	if (j)
		job_free(j);
	fuse_reply_err(req, -err);
}

void fs_import_fetch_stop(struct fs_drive *d)
{
	struct fs_imports *set = d->imports;

	if (!set)
		return;
	pthread_mutex_lock(&set->mu);
	set->stop = true; /* each import sees it within POLL_MS and replies EINTR */
	while (set->jobs) {
		struct job *j = set->jobs;

		set->jobs = j->next;
		pthread_mutex_unlock(&set->mu);
		pthread_join(j->thread, NULL);
		job_free(j);
		pthread_mutex_lock(&set->mu);
	}
	pthread_mutex_unlock(&set->mu);
	pthread_mutex_destroy(&set->mu);
	free(set);
	d->imports = NULL;
}
