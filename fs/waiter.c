/*
 * The waiter: opens, copies and adds parked until the swarm answers (see waiter.h).
 */
#include "waiter.h"

#include "drive.h"
#include "engine.h"
#include "cipher.h"
#include "filekey.h"
#include "fs.h"
#include "ops.h"
#include "park.h"
#include "publish.h"
#include "sync.h"

#include <cache.h>
#include <swarm.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { POLL_MS = 50, COPY_CHUNK = 1 << 20, COPY_BUDGET = 16, COPY_TRIES = 10 };

/* The metadata of one infohash, asked of the swarm for every request that wants it.
 * The waiter thread's alone. */
struct probe {
	uint8_t key[32];
	bool keyed;              /* the magnet names an infohash: requests for it share the probe */
	struct swarm_torrent *t; /* NULL: gone from the swarm (or never added: -EEXIST) */
	int err;                 /* the add's failure, other than -EEXIST */
	void *bytes;             /* the .torrent, once here */
	size_t len;
	int refs; /* requests using it */
	struct probe *next;
};

/* A wait for the engine to make a range readable; it outlives the request that asked
 * when that one goes first (an engine completion may come until fs_engine_free). */
struct ticket {
	struct fs_waiter *w;
	bool done, abandoned; /* guarded by w->mu */
	int result;
};

enum job_kind { JOB_META, JOB_OPEN, JOB_COPY };

struct job {
	enum job_kind kind;
	fuse_req_t req;
	int64_t deadline_ms; /* CLOCK_MONOTONIC */
	int timeout_ms;
	bool interrupted; /* guarded by w->mu */
	bool parking;     /* guarded by w->mu: listed, its worker not yet done with it */
	char *magnet;
	struct probe *probe;
	/* JOB_META */
	fs_meta_cb cb;
	void *ctx;
	/* JOB_OPEN, JOB_COPY */
	struct ledger_entry e;
	struct fs_fh *h;
	struct fuse_file_info fi;
	struct fs_engine_torrent *t; /* once its metadata is here */
	bool needs_key;              /* JOB_OPEN: its file key is still to come */
	/* JOB_COPY */
	struct fs_engine_reader *r;
	struct ticket *tk;
	uint64_t off;
	uint64_t end;         /* copied up to here: the content's length, or less */
	fs_copy_done_fn done; /* not an open: it answers (fs_copy_park_done) */
	void *done_ctx;
	int tries; /* fetches of the range at off */
	char *buf;
	struct fs_cipher *c; /* a private drive's content: decrypted as it is copied */
	struct job *next;
};

struct fs_waiter {
	struct fs_drive *d;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu; /* guards jobs, stop, wake, each job's interrupted, each ticket */
	pthread_cond_t cv;
	struct job *jobs;
	bool stop, wake;
	struct probe *probes; /* the waiter thread's alone */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- probes (waiter thread) ---- */

static struct probe *probe_get(struct fs_waiter *w, const char *magnet)
{
	struct swarm_add_params ap = { 0 };
	struct probe *p;
	uint8_t key[32];
	bool keyed = fs_magnet_key(magnet, key) == 0;
	char dir[4200];

	for (p = w->probes; keyed && p; p = p->next) {
		if (p->keyed && !memcmp(p->key, key, 32)) {
			p->refs++;
			return p;
		}
	}
	if (!(p = calloc(1, sizeof *p)))
		return NULL;
	p->keyed = keyed;
	memcpy(p->key, key, 32);
	p->refs = 1;
	/* a throwaway torrent in a scratch directory: only its metadata is wanted */
	snprintf(dir, sizeof dir, "%s/staging/metadata", w->d->dir);
	mkdir(dir, 0700);
	ap.magnet = magnet;
	ap.save_path = dir;
	ap.dial_now = true; /* a request waits */
	p->err = swarm_torrent_add(w->d->swarm, &ap, &p->t);
	if (p->err == 0)
		fs_sync_connect(w->d, p->t); /* the drive's members: the likeliest to have it */
	else if (p->err == -EEXIST)
		p->err = 0; /* the session has it (being added by another path): look locally */
	p->next = w->probes;
	w->probes = p;
	return p;
}

static void probe_close(struct fs_waiter *w, struct probe *p)
{
	if (!p->t)
		return;
	fs_sync_forget(w->d, p->t);
	swarm_torrent_remove(p->t, true); /* before its infohash is added to the engine */
	p->t = NULL;
}

static void probe_put(struct fs_waiter *w, struct probe *p)
{
	if (!p || --p->refs > 0)
		return;
	for (struct probe **pp = &w->probes; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	probe_close(w, p);
	free(p->bytes);
	free(p);
}

/* Whether a probe got its metadata now: then it leaves the swarm, keeping the bytes. */
static bool probe_poll(struct fs_waiter *w, struct probe *p)
{
	struct swarm_metainfo *m = NULL;

	if (p->bytes || !p->t || swarm_torrent_metainfo(p->t, &m) < 0)
		return false;
	if (m->torrent && m->torrent_len && (p->bytes = malloc(m->torrent_len))) {
		memcpy(p->bytes, m->torrent, m->torrent_len);
		p->len = m->torrent_len;
	}
	swarm_metainfo_free(m);
	if (p->bytes)
		probe_close(w, p);
	return p->bytes != NULL;
}

/* ---- requests ---- */

static void job_unlist(struct fs_waiter *w, struct job *j)
{
	pthread_mutex_lock(&w->mu);
	for (struct job **pp = &w->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	if (j->tk) { /* an engine completion may still come: it frees the ticket */
		if (j->tk->done)
			free(j->tk);
		else
			j->tk->abandoned = true;
		j->tk = NULL;
	}
	pthread_mutex_unlock(&w->mu);
}

/* Reply err (< 0) or success, and free j. Waiter thread (or a parking worker before j
 * is listed), holding no lock. */
static void job_finish(struct fs_waiter *w, struct job *j, int err)
{
	struct fs_drive *d = w->d;

	job_unlist(w, j);
	fs_engine_reader_free(j->r);
	j->r = NULL;
	if (err == -ETIMEDOUT || err == -ENOENT)
		err = -EIO; /* the file exists; its content is out of reach */
	switch (j->kind) {
	case JOB_META: j->cb(j->req, err, NULL, 0, j->ctx); break;
	case JOB_OPEN:
	case JOB_COPY:
		if (j->done) {
			j->done(j->req, err, j->h, j->done_ctx);
			break;
		}
		if (err < 0) {
			if (j->kind == JOB_COPY)
				fs_staged_unlink_open(d, j->h->staged);
			fs_fh_put(j->h);
			fuse_reply_err(j->req, fs_kernel_errno(err));
		} else {
			if (j->kind == JOB_COPY) {
				j->h->writer = true;
				j->fi.direct_io = 1; /* its size changes under the writer */
			} else
				j->fi.keep_cache = 1; /* content never changes under a record */
			j->fi.fh = (uint64_t)(uintptr_t)j->h;
			fuse_reply_open(j->req, &j->fi);
		}
		break;
	}
	probe_put(w, j->probe);
	free(j->buf);
	fs_filekey_free(j->c);
	free(j->magnet);
	free(j);
}

static void job_interrupted(fuse_req_t req, void *data)
{
	struct fs_waiter *w = data;

	pthread_mutex_lock(&w->mu);
	for (struct job *j = w->jobs; j; j = j->next) {
		if (j->req == req) {
			j->interrupted = true;
			w->wake = true;
			pthread_cond_signal(&w->cv);
			break;
		}
	}
	pthread_mutex_unlock(&w->mu);
}

static void ticket_ready(int result, void *ctx)
{
	struct ticket *tk = ctx;
	struct fs_waiter *w = tk->w;

	pthread_mutex_lock(&w->mu);
	if (tk->abandoned) {
		pthread_mutex_unlock(&w->mu);
		free(tk);
		return;
	}
	tk->done = true;
	tk->result = result;
	w->wake = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A copy's next steps: 0 done, 1 waiting (for the engine, or more to copy), -errno. */
static int copy_step(struct fs_waiter *w, struct job *j)
{
	struct fs_drive *d = w->d;
	int fd = fs_staged_fd_modify(d, j->h->staged);

	if (!j->buf && !(j->buf = malloc(COPY_CHUNK)))
		return -ENOMEM;
	for (int budget = COPY_BUDGET; j->off < j->end; budget--) {
		if (budget == 0)
			return 1; /* the others' turn; on at once */
		if (j->tk) {
			bool done;
			int result;

			pthread_mutex_lock(&w->mu);
			done = j->tk->done;
			result = j->tk->result;
			if (done) {
				free(j->tk);
				j->tk = NULL;
			}
			pthread_mutex_unlock(&w->mu);
			if (!done)
				return 1;
			if (result < 0)
				return result == -ECANCELED ? -EINTR : result;
		}
		ssize_t n =
		    fs_content_read(d, &j->e, j->off, j->buf,
		                    j->end - j->off < COPY_CHUNK ? j->end - j->off : COPY_CHUNK);

		if (n > 0) {
			int cerr =
			    j->c ? fs_cipher_apply(j->c, j->off, j->buf, j->buf, (size_t)n) : 0;

			if (cerr < 0)
				return cerr;
			if (pwrite(fd, j->buf, (size_t)n, (off_t)j->off) != n)
				return errno ? -errno : -EIO;
			j->off += (uint64_t)n;
			j->tries = 0;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (n != -ENODATA && n != -ENOENT)
			return (int)n;
		/* not here: through the engine, from the swarm */
		if (++j->tries > COPY_TRIES)
			return -EIO; /* evicted again and again between fetch and copy */
		if (!j->r) {
			int err = fs_engine_reader_new(j->t, j->e.content.file_index, &j->r);

			if (err < 0)
				return err;
		}
		struct ticket *tk = calloc(1, sizeof *tk);

		if (!tk)
			return -ENOMEM;
		tk->w = w;
		int64_t left = j->deadline_ms - now_ms();
		int rc = left > 0 ? fs_engine_prepare(j->r, j->off, COPY_CHUNK, (int)left,
		                                      ticket_ready, tk)
		                  : -ETIMEDOUT;
		if (rc != 0) {
			free(tk);
			if (rc < 0)
				return rc;
			continue; /* present now */
		}
		pthread_mutex_lock(&w->mu);
		j->tk = tk;
		pthread_mutex_unlock(&w->mu);
	}
	return 0;
}

/* The torrent of an open or a copy, from what this node keeps or what its probe got:
 * 0 (j->t set), 1 (still waiting), -errno. */
static int torrent_step(struct fs_waiter *w, struct job *j)
{
	int err = fs_torrent_local(w->d, &j->e, &j->t);

	if (err != -ENOENT)
		return err;
	if (!j->probe && !(j->probe = probe_get(w, j->magnet)))
		return -ENOMEM;
	if (j->probe->err < 0)
		return j->probe->err;
	if (!j->probe->bytes)
		return 1;
	return fs_torrent_adopt(w->d, &j->e, j->probe->bytes, j->probe->len, true, &j->t);
}

/* One request's next steps: 0 replied (j freed), 1 waiting, 2 more to do at once. */
static int job_step(struct fs_waiter *w, struct job *j, int64_t now)
{
	bool interrupted;
	int rc;

	pthread_mutex_lock(&w->mu);
	interrupted = j->interrupted;
	pthread_mutex_unlock(&w->mu);
	if (interrupted) {
		job_finish(w, j, -EINTR);
		return 0;
	}
	if (now >= j->deadline_ms && j->needs_key) {
		char hex[LEDGER_HEX_LEN];

		ledger_hex(j->e.record_id, LEDGER_ID_LEN, hex);
		fs_warn("content of record %.16s: no epoch key sealed to this member within %d s",
		        hex, j->timeout_ms / 1000);
		job_finish(w, j, -EACCES);
		return 0;
	}
	if (now >= j->deadline_ms) {
		char hex[65];

		swarm_hex(j->kind == JOB_META && j->probe ? j->probe->key : j->e.content.ih2, 32,
		          hex);
		fs_warn("%s of torrent %s: nothing from the swarm within %d s",
		        j->kind == JOB_COPY && j->t ? "content" : "metadata", hex,
		        j->timeout_ms / 1000);
		job_finish(w, j, -ETIMEDOUT);
		return 0;
	}
	if (j->kind == JOB_META) {
		void *bytes = NULL;
		size_t len = 0;

		if (!j->probe && !(j->probe = probe_get(w, j->magnet))) {
			job_finish(w, j, -ENOMEM);
			return 0;
		}
		if (j->probe->err < 0) {
			job_finish(w, j, j->probe->err);
			return 0;
		}
		if (!j->probe->bytes && j->probe->keyed &&
		    fs_saved_torrent(w->d, j->probe->key, &bytes, &len) == 0) {
			j->probe->bytes = bytes; /* kept here meanwhile (another add) */
			j->probe->len = len;
			probe_close(w, j->probe);
		}
		if (!j->probe->bytes)
			return 1;
		job_unlist(w, j);
		j->cb(j->req, 0, j->probe->bytes, j->probe->len, j->ctx);
		probe_put(w, j->probe);
		free(j->magnet);
		free(j);
		return 0;
	}
	if (j->needs_key) {
		struct fs_fh *h = j->h;

		rc = fs_filekey_cipher_quiet(w->d, &j->e, &h->cipher);
		if (rc == -EACCES)
			return 1;
		j->needs_key = false;
		if (rc < 0 || !h->has_content ||
		    (!j->e.content.has_file &&
		     fs_engine_cached(w->d->cache, h->key, h->base, h->length) == h->length)) {
			job_finish(w, j, rc); /* held whole here: no reader, as in fs_open */
			return 0;
		}
	}
	if (!j->t) {
		rc = torrent_step(w, j);
		if (rc == 1)
			return 1;
		if (rc == 0 && j->kind == JOB_OPEN)
			rc = fs_engine_reader_new(j->t, j->e.content.file_index, &j->h->reader);
		if (rc < 0 || j->kind == JOB_OPEN) {
			if (rc < 0)
				fs_warn("open of torrent %s: %s", j->magnet, strerror(-rc));
			job_finish(w, j, rc);
			return 0;
		}
		probe_put(w, j->probe); /* a copy goes on through the engine */
		j->probe = NULL;
	}
	rc = copy_step(w, j);
	if (rc == 1)
		return j->tk ? 1 : 2;
	job_finish(w, j, rc);
	return 0;
}

static void *waiter_main(void *arg)
{
	struct fs_waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		bool more = false;

		w->wake = false;
		pthread_mutex_unlock(&w->mu);
		for (struct probe *p = w->probes; p; p = p->next)
			probe_poll(w, p);
		/* each request once per round; those parked meanwhile wait for the next */
		struct job *round;

		pthread_mutex_lock(&w->mu);
		round = w->jobs;
		w->jobs = NULL;
		pthread_mutex_unlock(&w->mu);
		while (round) {
			struct job *j = round;
			int rc;

			round = j->next;
			/* back on the list while it is stepped: interrupts and job_unlist find it
			 */
			pthread_mutex_lock(&w->mu);
			j->next = w->jobs;
			w->jobs = j;
			bool parking = j->parking;
			pthread_mutex_unlock(&w->mu);
			rc = parking ? 1 : job_step(w, j, now_ms());
			if (rc == 2)
				more = true;
		}
		pthread_mutex_lock(&w->mu);
		if (more || w->wake || w->stop)
			continue;
		if (!w->jobs) {
			pthread_cond_wait(&w->cv, &w->mu);
		} else {
			struct timespec ts = fs_time_after(CLOCK_REALTIME, POLL_MS);

			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		}
	}
	pthread_mutex_unlock(&w->mu);
	/* unmounting: answer everything, wait for nothing */
	for (;;) {
		struct job *j;

		bool parking;

		pthread_mutex_lock(&w->mu);
		j = w->jobs;
		parking = j && j->parking;
		pthread_mutex_unlock(&w->mu);
		if (!j)
			break;
		if (parking)
			sched_yield(); /* its worker is a moment from done with it */
		else
			job_finish(w, j, -EINTR);
	}
	while (w->probes) {
		struct probe *p = w->probes;

		p->refs = 1;
		probe_put(w, p);
	}
	return NULL;
}

/* ---- parking (FUSE workers) ---- */

static void park(struct fs_drive *d, struct job *j, int timeout_ms)
{
	struct fs_waiter *w = d->waiter;
	bool stopped;

	j->timeout_ms = timeout_ms;
	j->deadline_ms = now_ms() + timeout_ms;
	pthread_mutex_lock(&w->mu);
	stopped = w->stop;
	if (!stopped) {
		j->parking = true; /* the waiter leaves it alone, req stays ours */
		j->next = w->jobs;
		w->jobs = j;
	}
	pthread_mutex_unlock(&w->mu);
	if (stopped) {
		job_finish(w, j, -EINTR);
		return;
	}
	/* once it is listed (an interrupt that came already is delivered at once), and
	 * before the waiter may answer req */
	fuse_req_interrupt_func(j->req, job_interrupted, w);
	pthread_mutex_lock(&w->mu);
	j->parking = false;
	w->wake = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static struct job *job_new(fuse_req_t req, enum job_kind kind, const char *magnet)
{
	struct job *j = calloc(1, sizeof *j);

	if (j && !(j->magnet = strdup(magnet))) {
		free(j);
		j = NULL;
	}
	if (j) {
		j->kind = kind;
		j->req = req;
	}
	return j;
}

static void open_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e,
                      struct fs_fh *h, const struct fuse_file_info *fi, bool needs_key)
{
	char magnet[256];
	struct job *j;

	fs_torrent_magnet(e, magnet);
	if (!(j = job_new(req, JOB_OPEN, magnet))) {
		fs_fh_put(h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->e = *e;
	fs_entry_content(d, &j->e); /* a file of a torrent of several: where it is */
	j->h = h;
	j->fi = *fi;
	j->needs_key = needs_key;
	park(d, j, d->read_timeout_ms);
}

void fs_open_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e, struct fs_fh *h,
                  const struct fuse_file_info *fi)
{
	open_park(req, d, e, h, fi, false);
}

void fs_key_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e, struct fs_fh *h,
                 const struct fuse_file_info *fi)
{
	open_park(req, d, e, h, fi, true);
}

static void copy_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e,
                      struct fs_fh *h, const struct fuse_file_info *fi, uint64_t off, uint64_t end,
                      fs_copy_done_fn done, void *ctx)
{
	char magnet[256];
	struct fs_cipher *c = NULL;
	struct job *j;

	fs_torrent_magnet(e, magnet);
	/* a private file's key, to decrypt what is copied (none: public) */
	if (fs_filekey_cipher(d, e, &c) < 0 || !(j = job_new(req, JOB_COPY, magnet))) {
		fs_filekey_free(c);
		if (done) {
			done(req, -ENOMEM, h, ctx);
			return;
		}
		fs_staged_unlink_open(d, h->staged);
		fs_fh_put(h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->e = *e;
	fs_entry_content(d, &j->e); /* a file of a torrent of several: where it is */
	j->h = h;
	if (fi)
		j->fi = *fi;
	j->off = off;
	j->end = end < e->content.length ? end : e->content.length;
	j->done = done;
	j->done_ctx = ctx;
	j->c = c;
	/* one deadline for the metadata and the whole copy: a peer trickling a piece a
	 * minute cannot hold the open forever */
	park(d, j, d->read_timeout_ms);
}

void fs_copy_park(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e, struct fs_fh *h,
                  const struct fuse_file_info *fi, uint64_t off)
{
	copy_park(req, d, e, h, fi, off, e->content.length, NULL, NULL);
}

void fs_copy_park_done(fuse_req_t req, struct fs_drive *d, const struct ledger_entry *e,
                       struct fs_fh *h, uint64_t off, uint64_t end, fs_copy_done_fn done, void *ctx)
{
	copy_park(req, d, e, h, NULL, off, end, done, ctx);
}

void fs_meta_park(fuse_req_t req, struct fs_drive *d, const char *magnet, int timeout_ms,
                  fs_meta_cb cb, void *ctx)
{
	struct job *j = job_new(req, JOB_META, magnet);

	if (!j) {
		cb(req, -ENOMEM, NULL, 0, ctx);
		return;
	}
	j->cb = cb;
	j->ctx = ctx;
	park(d, j, timeout_ms);
}

void fs_waiter_kick(struct fs_waiter *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->wake = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* ---- lifetime ---- */

int fs_waiter_start(struct fs_drive *d, struct fs_waiter **out)
{
	struct fs_waiter *w = calloc(1, sizeof *w);
	int err;

	if (!w)
		return -ENOMEM;
	w->d = d;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if ((err = -pthread_create(&w->thread, NULL, waiter_main, w)) < 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return err;
	}
	w->running = true;
	*out = w;
	return 0;
}

void fs_waiter_stop(struct fs_waiter *w)
{
	if (!w || !w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->running = false;
}

void fs_waiter_free(struct fs_waiter *w)
{
	if (!w)
		return;
	fs_waiter_stop(w);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
