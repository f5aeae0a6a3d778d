/*
 * fs/engine: swarm/ and cache/ joined for file content. See engine.h.
 */
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* A job for the worker: mark a chunk (MARK), re-check a chunk an upload found changed
 * on disk (CHECK), or tell a reader its range is ready (DONE). Jobs copy what they
 * need: a torrent may be removed while they wait. */
struct job {
	struct job *next;
	enum { JOB_MARK, JOB_CHECK, JOB_DONE } kind;
	uint8_t tkey[CACHE_KEY_LEN]; /* the torrent's key */
	uint32_t piece;              /* of the torrent */
	uint8_t key[CACHE_KEY_LEN];  /* the object that holds the piece */
	uint32_t chunk;              /* the piece's chunk in it */
	uint32_t nblk;               /* JOB_MARK: digests of its blocks from the hash check */
	uint8_t (*blk)[SWARM_BLOCK_SHA_LEN];
	fs_engine_ready_cb cb;
	void *ctx;
	int result;
	int tries;
};

/* A real file of an engine torrent and the cache object that holds it. */
struct engine_file {
	uint8_t key[CACHE_KEY_LEN];
	uint64_t base; /* where the file starts in the object */
	uint64_t size;
	uint32_t first, last; /* its pieces (first > last: an empty file) */
};

struct fs_engine_torrent {
	struct fs_engine *e;
	struct swarm_torrent *st; /* NULL once the session is freed; e->mu */
	uint8_t key[CACHE_KEY_LEN];
	/* One object for the torrent's whole byte space (a v1 torrent of several files),
	 * else one object per non-empty file (piece-aligned: one file, or v2). */
	bool whole;
	uint32_t plen; /* the torrent's piece length */
	uint32_t n_files;
	struct engine_file *files;      /* immutable once added */
	bool plain;                     /* not a cache object (fs_engine_torrent_add_plain) */
	void *uctx;                     /* plain: the embedder's ctx for the extension callbacks */
	struct fs_engine_torrent *next; /* in e->torrents or e->dead */
};

struct fs_engine_reader {
	struct fs_engine_torrent *t;
	const struct engine_file *f;
	struct swarm_reader *sr;
};

struct fs_engine {
	struct swarm_session *s;
	struct cache *c;
	/* the embedder's own session callbacks, called through ours */
	swarm_ext_peer_cb user_ext_peer;
	swarm_ext_message_cb user_ext_message;
	swarm_piece_cb user_piece;
	swarm_metadata_cb user_metadata;
	swarm_unknown_cb user_unknown;
	void *user_ctx;
	swarm_log_fn log;
	void *log_ctx;
	int log_level;

	pthread_t worker;
	bool worker_started;
	/* guards head, tail, stop; never held across a call out, so that libtorrent's
	 * network thread may queue a job while mu is held across swarm_torrent_add */
	pthread_mutex_t jobs_mu;
	pthread_cond_t cv; /* a job was queued, or stop */
	struct job *head, *tail;
	bool stop;
	pthread_mutex_t mu; /* guards torrents, dead */
	struct fs_engine_torrent *torrents;
	/* Removed torrents stay allocated until fs_engine_free: libtorrent's network
	 * thread may still ask may_serve about them for a moment. */
	struct fs_engine_torrent *dead;
};

static void elog(struct fs_engine *e, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void elog(struct fs_engine *e, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!e->log || level > e->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	e->log(level, "fs", buf, e->log_ctx);
}

static void job_free(struct job *j)
{
	if (j)
		free(j->blk);
	free(j);
}

static void push_job(struct fs_engine *e, struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&e->jobs_mu);
	if (e->tail)
		e->tail->next = j;
	else
		e->head = j;
	e->tail = j;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->jobs_mu);
}

/* Whether libtorrent still holds the piece of a queued mark: an eviction may have
 * punched it since it was reported, and marking would then record a hole. */
static bool still_verified(struct fs_engine *e, const struct job *j)
{
	bool ok = false;

	pthread_mutex_lock(&e->mu);
	for (struct fs_engine_torrent *t = e->torrents; t; t = t->next) {
		if (!t->plain && memcmp(t->key, j->tkey, CACHE_KEY_LEN) == 0) {
			ok = t->st && swarm_torrent_has_piece(t->st, j->piece);
			break;
		}
	}
	pthread_mutex_unlock(&e->mu);
	return ok;
}

static void *worker_main(void *arg)
{
	struct fs_engine *e = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&e->jobs_mu);
		while (!e->head && !e->stop)
			pthread_cond_wait(&e->cv, &e->jobs_mu);
		j = e->head;
		if (j) {
			e->head = j->next;
			if (!e->head)
				e->tail = NULL;
		}
		pthread_mutex_unlock(&e->jobs_mu);
		if (!j)
			return NULL; /* stopping, queue drained */
		if (j->kind == JOB_MARK) {
			if (!still_verified(e, j)) {
				job_free(j);
				continue;
			}
			_Static_assert(SWARM_BLOCK_SHA_LEN == CACHE_BLOCK_SHA_LEN, "digest sizes");
			int rc = cache_chunk_mark_hashed(
			    e->c, j->key, j->chunk, (const uint8_t(*)[CACHE_BLOCK_SHA_LEN])j->blk,
			    j->nblk);
			if (rc == -EBUSY && ++j->tries < 200) {
				/* found corrupt while a reader holds it: again after the
				 * jobs queued meanwhile, once the reader let go */
				usleep(1000);
				push_job(e, j);
				continue;
			}
			if (rc < 0) {
				char hex[2 * CACHE_KEY_LEN + 1];
				swarm_hex(j->key, CACHE_KEY_LEN, hex);
				elog(e, LOG_ERR, "cannot mark piece %u of %s in the cache: %s",
				     j->piece, hex, strerror(-rc));
			}
		} else if (j->kind == JOB_CHECK) {
			/* dropped (1) is reported through on_evict: libtorrent forgets the
			 * piece and fetches it again */
			int rc = cache_chunk_check(e->c, j->key, j->chunk);
			if (rc == -EBUSY && ++j->tries < 200) {
				usleep(1000); /* a reader holds it: once it let go */
				push_job(e, j);
				continue;
			}
		} else {
			j->cb(j->result, j->ctx);
		}
		job_free(j);
	}
}

/* The object and chunk that hold a piece of t: false for a piece no object holds. */
static bool piece_where(const struct fs_engine_torrent *t, uint32_t piece,
                        uint8_t out_key[CACHE_KEY_LEN], uint32_t *out_chunk)
{
	if (t->whole) {
		memcpy(out_key, t->key, CACHE_KEY_LEN);
		*out_chunk = piece;
		return true;
	}
	/* files in torrent order: their pieces ascend (binary search, for torrents of
	 * many files) */
	uint32_t lo = 0, hi = t->n_files;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct engine_file *f = &t->files[mid];

		if (f->first > f->last || f->last < piece) {
			/* empty files sit between: look at a neighbour that is not */
			if (f->first > f->last && f->first > piece)
				hi = mid;
			else
				lo = mid + 1;
		} else if (f->first > piece) {
			hi = mid;
		} else {
			memcpy(out_key, f->key, CACHE_KEY_LEN);
			*out_chunk = piece - f->first;
			return true;
		}
	}
	return false;
}

/* ---- callbacks from swarm/ and cache/ ---- */

/* swarm thread: a piece is verified; the worker marks it (marking does I/O). */
static void on_piece(struct swarm_torrent *st, void *tctx, uint32_t piece, void *ctx)
{
	struct fs_engine *e = ctx;
	struct fs_engine_torrent *t = tctx;
	struct job *j;

	if (!t || t->plain) { /* not a cache object: nothing to mark */
		if (e->user_piece)
			e->user_piece(st, t ? t->uctx : NULL, piece, e->user_ctx);
		return;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		elog(e, LOG_ERR, "out of memory marking piece %u", piece);
		return;
	}
	j->kind = JOB_MARK;
	memcpy(j->tkey, t->key, CACHE_KEY_LEN);
	j->piece = piece;
	if (!piece_where(t, piece, j->key, &j->chunk)) {
		free(j);
		return;
	}
	/* the check's block digests spare the worker reading the piece back to hash it */
	int nblk = swarm_torrent_piece_blocks(st, piece, NULL, 0);
	if (nblk > 0 && (j->blk = calloc((size_t)nblk, SWARM_BLOCK_SHA_LEN)))
		j->nblk = (uint32_t)swarm_torrent_piece_blocks(st, piece, j->blk, (uint32_t)nblk);
	push_job(e, j);
	if (e->user_piece)
		e->user_piece(st, NULL, piece, e->user_ctx);
}

/* network thread: upload only what the cache still holds. */
static bool may_serve(struct swarm_torrent *st, void *tctx, uint32_t piece, void *ctx)
{
	struct fs_engine *e = ctx;
	struct fs_engine_torrent *t = tctx;

	uint8_t key[CACHE_KEY_LEN];
	uint32_t chunk;

	(void)st;
	if (!t || t->plain)
		return true; /* libtorrent's own files: verified pieces only */
	return piece_where(t, piece, key, &chunk) && cache_chunk_present(e->c, key, chunk);
}

/* network thread: libtorrent read these bytes to upload them; they go only if they are
 * what was verified. A changed chunk is withheld at once and dropped by the worker
 * (dropping reports to on_evict, which takes mu: not on this thread). */
static bool check_upload(struct swarm_torrent *st, void *tctx, uint64_t offset, const void *buf,
                         size_t len, void *ctx)
{
	struct fs_engine *e = ctx;
	struct fs_engine_torrent *t = tctx;
	struct cache_object_info info;
	uint8_t key[CACHE_KEY_LEN];
	uint64_t at = offset; /* in the object */
	struct job *j;
	int rc;

	(void)st;
	if (!t || t->plain)
		return true; /* libtorrent's own files: not the cache's to check */
	if (t->whole) {
		memcpy(key, t->key, CACHE_KEY_LEN);
	} else {
		/* one object per file, piece-aligned: a request lies within one piece,
		 * so within one file */
		const struct engine_file *f = NULL;

		for (uint32_t i = 0; i < t->n_files; i++) {
			const struct engine_file *g = &t->files[i];
			uint64_t start = (uint64_t)g->first * t->plen;

			if (g->first <= g->last && offset >= start && offset < start + g->size) {
				f = g;
				at = offset - start;
				break;
			}
		}
		if (!f) {
			elog(e, LOG_WARNING,
			     "upload of %zu bytes at %llu withheld: no file holds it", len,
			     (unsigned long long)offset);
			return false;
		}
		memcpy(key, f->key, CACHE_KEY_LEN);
	}
	rc = cache_verify(e->c, key, at, buf, len);
	if (rc == -EBADMSG && cache_object_stat(e->c, key, &info) == 0 &&
	    (j = calloc(1, sizeof *j))) {
		j->kind = JOB_CHECK;
		memcpy(j->key, key, CACHE_KEY_LEN);
		j->chunk = (uint32_t)(at / info.chunk_size);
		push_job(e, j);
	}
	/* a changed chunk the cache logged itself; one evicted meanwhile is no news */
	if (rc < 0 && rc != -EBADMSG)
		elog(e, rc == -ENODATA ? LOG_DEBUG : LOG_WARNING,
		     "upload of %zu bytes at %llu withheld: %s", len, (unsigned long long)offset,
		     strerror(-rc));
	return rc == 0;
}

/* Any thread that made the cache evict: libtorrent forgets those pieces. */
static void on_evict(const uint8_t key[CACHE_KEY_LEN], const uint32_t *chunks, size_t n, void *ctx)
{
	struct fs_engine *e = ctx;
	uint32_t *pieces = NULL;

	pthread_mutex_lock(&e->mu);
	for (struct fs_engine_torrent *t = e->torrents; t && !pieces; t = t->next) {
		if (t->plain || !t->st)
			continue;
		for (uint32_t i = 0; i < t->n_files; i++) {
			const struct engine_file *f = &t->files[i];

			if (memcmp(f->key, key, CACHE_KEY_LEN) || f->first > f->last)
				continue;
			/* chunks of the object to pieces of the torrent */
			pieces = malloc(n * sizeof *pieces);
			if (!pieces) {
				elog(e, LOG_ERR, "out of memory forgetting %zu evicted pieces", n);
				break;
			}
			for (size_t k = 0; k < n; k++)
				pieces[k] = t->whole ? chunks[k] : f->first + chunks[k];
			int rc = swarm_torrent_forget(t->st, pieces, n);
			if (rc < 0)
				elog(e, LOG_ERR, "cannot forget %zu evicted pieces: %s", n,
				     strerror(-rc));
			break;
		}
	}
	pthread_mutex_unlock(&e->mu);
	free(pieces);
}

static void on_ext_peer(struct swarm_torrent *st, void *tctx, uint64_t peer, bool up, void *ctx)
{
	struct fs_engine *e = ctx;
	struct fs_engine_torrent *t = tctx;

	if (e->user_ext_peer)
		e->user_ext_peer(st, t && t->plain ? t->uctx : NULL, peer, up, e->user_ctx);
}

static void on_ext_message(struct swarm_torrent *st, void *tctx, uint64_t peer, const void *msg,
                           size_t len, void *ctx)
{
	struct fs_engine *e = ctx;
	struct fs_engine_torrent *t = tctx;

	if (e->user_ext_message)
		e->user_ext_message(st, t && t->plain ? t->uctx : NULL, peer, msg, len,
		                    e->user_ctx);
}

static void on_metadata(struct swarm_torrent *st, void *tctx, void *ctx)
{
	struct fs_engine *e = ctx;
	struct fs_engine_torrent *t = tctx;

	if (e->user_metadata)
		e->user_metadata(st, t && t->plain ? t->uctx : NULL, e->user_ctx);
}

static void on_unknown(const uint8_t ih[20], void *ctx)
{
	struct fs_engine *e = ctx;

	e->user_unknown(ih, e->user_ctx);
}

/* ---- lifecycle ---- */

int fs_engine_new(const struct swarm_config *sc, const struct cache_config *cc,
                  struct fs_engine **out)
{
	struct fs_engine *e = calloc(1, sizeof *e);
	struct swarm_config s2 = *sc;
	struct cache_config c2 = *cc;
	int err;

	if (!e)
		return -ENOMEM;
	pthread_mutex_init(&e->mu, NULL);
	pthread_mutex_init(&e->jobs_mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->user_ext_peer = sc->on_ext_peer;
	e->user_ext_message = sc->on_ext_message;
	e->user_piece = sc->on_piece;
	e->user_metadata = sc->on_metadata;
	e->user_unknown = sc->on_unknown;
	e->user_ctx = sc->cb_ctx;
	e->log = sc->log;
	e->log_ctx = sc->log_ctx;
	e->log_level = sc->log_level;

	c2.on_evict = on_evict;
	c2.evict_ctx = e;
	err = cache_new(&c2, &e->c);
	if (err < 0)
		goto fail;
	err = -pthread_create(&e->worker, NULL, worker_main, e);
	if (err < 0)
		goto fail;
	e->worker_started = true;
	/* Read-ahead beyond a quarter of the cache would evict what the reader is about
	 * to read before it gets there. */
	uint64_t cap = cc->cap ? cc->cap : CACHE_DEFAULT_SIZE;
	uint64_t ra = s2.readahead_max ? s2.readahead_max : 16u << 20;
	if (ra > cap / 4)
		ra = cap / 4;
	s2.readahead_max = (uint32_t)(ra ? ra : 1);
	/* a reader streaming a file fetches the rest of it at once when it fits the same
	 * quarter of the cache */
	s2.stream_max = cap / 4;
	s2.on_piece = on_piece;
	s2.may_serve = may_serve;
	s2.check_upload = check_upload;
	s2.on_ext_peer = on_ext_peer;
	s2.on_ext_message = on_ext_message;
	s2.on_metadata = on_metadata;
	s2.on_unknown = sc->on_unknown ? on_unknown : NULL;
	s2.cb_ctx = e;
	err = swarm_session_new(&s2, &e->s);
	if (err < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	fs_engine_free(e);
	return err;
}

void fs_engine_free(struct fs_engine *e)
{
	if (!e)
		return;
	/* The session first: its last callbacks queue jobs the worker then drains.
	 * Its torrent handles die with it: marks still queued are dropped (the pieces
	 * are re-fetched another time) and evictions have nobody left to tell. */
	swarm_session_free(e->s);
	pthread_mutex_lock(&e->mu);
	e->s = NULL;
	for (struct fs_engine_torrent *t = e->torrents; t; t = t->next)
		t->st = NULL;
	pthread_mutex_unlock(&e->mu);
	if (e->worker_started) {
		pthread_mutex_lock(&e->jobs_mu);
		e->stop = true;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->jobs_mu);
		pthread_join(e->worker, NULL);
	}
	cache_free(e->c);
	for (int list = 0; list < 2; list++) {
		struct fs_engine_torrent *t = list ? e->dead : e->torrents;
		while (t) {
			struct fs_engine_torrent *next = t->next;
			free(t->files);
			free(t);
			t = next;
		}
	}
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->jobs_mu);
	free(e);
}

struct swarm_session *fs_engine_session(struct fs_engine *e)
{
	return e->s;
}

struct cache *fs_engine_cache(struct fs_engine *e)
{
	return e->c;
}

/* ---- torrents ---- */

void fs_engine_key(const struct swarm_metainfo *m, uint8_t out_key[CACHE_KEY_LEN])
{
	memset(out_key, 0, CACHE_KEY_LEN);
	if (m->has_v2)
		memcpy(out_key, m->v2, 32);
	else
		memcpy(out_key, m->v1, 20);
}

void fs_engine_file_key(const uint8_t tkey[CACHE_KEY_LEN], uint32_t index,
                        uint8_t out_key[CACHE_KEY_LEN])
{
	/* the torrent's key with index + 1 folded into its last bytes: another file of
	 * the same torrent, or another torrent's key, would have to differ from it in
	 * those four bytes only, which a SHA-256 infohash does not */
	uint32_t x = index + 1;

	memcpy(out_key, tkey, CACHE_KEY_LEN);
	for (int i = 0; i < 4; i++)
		out_key[CACHE_KEY_LEN - 1 - i] ^= (uint8_t)(x >> (8 * i));
}

/* Add to the session and to e's list in one step (the callbacks look t up there). */
static int session_add(struct fs_engine *e, const struct swarm_add_params *ap,
                       struct fs_engine_torrent *t)
{
	int err;

	pthread_mutex_lock(&e->mu);
	err = swarm_torrent_add(e->s, ap, &t->st);
	if (err == 0) {
		t->next = e->torrents;
		e->torrents = t;
	}
	pthread_mutex_unlock(&e->mu);
	return err;
}

/* Register t's files as cache objects, fill t->files and the have bitmap; paths[i]
 * gets file i's object path (per-file objects) or data the whole object's. */
static int add_objects(struct fs_engine *e, const struct swarm_metainfo *m,
                       struct fs_engine_torrent *t, uint8_t *have, char (*paths)[4096], char *data)
{
	uint32_t pl = m->piece_length;
	int err;

	t->whole = m->num_files > 1 && !m->has_v2;
	t->plen = pl;
	t->n_files = m->num_files;
	t->files = calloc(m->num_files, sizeof *t->files);
	if (!t->files)
		return -ENOMEM;
	if (t->whole) {
		uint64_t total = (uint64_t)m->num_pieces * pl; /* pad files included */

		if (m->files[m->num_files - 1].offset + m->files[m->num_files - 1].size <= total)
			total = m->files[m->num_files - 1].offset + m->files[m->num_files - 1].size;
		if ((err = cache_object_add(e->c, t->key, total, pl)) < 0 ||
		    (err = cache_object_path(e->c, t->key, data, 4096)) < 0 ||
		    (err = cache_object_bitmap(e->c, t->key, have, (m->num_pieces + 7) / 8)) < 0)
			return err;
		for (uint32_t i = 0; i < m->num_files; i++) {
			struct engine_file *f = &t->files[i];

			memcpy(f->key, t->key, CACHE_KEY_LEN);
			f->base = m->files[i].offset;
			f->size = m->files[i].size;
			f->first = (uint32_t)(f->base / pl);
			f->last = f->size ? (uint32_t)((f->base + f->size - 1) / pl) : 0;
			if (!f->size)
				f->first = 1; /* empty: first > last */
		}
		return 0;
	}
	for (uint32_t i = 0; i < m->num_files; i++) {
		struct engine_file *f = &t->files[i];
		uint8_t *bits;
		size_t nb;

		f->size = m->files[i].size;
		if (m->num_files == 1)
			memcpy(f->key, t->key, CACHE_KEY_LEN);
		else
			fs_engine_file_key(t->key, i, f->key);
		if (!f->size || m->files[i].offset % pl) {
			if (f->size) {
				elog(e, LOG_ERR, "torrent %s: file %u is not piece-aligned",
				     m->name, i);
				return -EINVAL;
			}
			f->first = 1; /* empty: no object, no pieces */
			paths[i][0] = '\0';
			continue;
		}
		f->first = (uint32_t)(m->files[i].offset / pl);
		f->last = (uint32_t)((m->files[i].offset + f->size - 1) / pl);
		nb = (f->last - f->first + 1 + 7) / 8;
		bits = calloc(1, nb);
		if (!bits)
			return -ENOMEM;
		if ((err = cache_object_add(e->c, f->key, f->size, pl)) < 0 ||
		    (err = cache_object_path(e->c, f->key, paths[i], 4096)) < 0 ||
		    (err = cache_object_bitmap(e->c, f->key, bits, nb)) < 0) {
			free(bits);
			return err;
		}
		for (uint32_t c = 0; c <= f->last - f->first; c++)
			if (bits[c / 8] & (1u << (c % 8)))
				have[(f->first + c) / 8] |= (uint8_t)(1u << ((f->first + c) % 8));
		free(bits);
	}
	return 0;
}

int fs_engine_torrent_add(struct fs_engine *e, const void *torrent, size_t len, bool dial_now,
                          struct fs_engine_torrent **out)
{
	struct swarm_metainfo *m = NULL;
	struct fs_engine_torrent *t = NULL;
	uint8_t *have = NULL;
	char(*paths)[4096] = NULL, data[4096] = "", save[4096];
	const char **ptrs = NULL;
	int err;

	err = swarm_metainfo_parse(torrent, len, &m, NULL);
	if (err < 0)
		return err;
	if (m->num_files == 0 || m->num_pieces == 0) {
		elog(e, LOG_ERR, "torrent %s has no content", m->name);
		err = -EINVAL;
		goto out;
	}
	t = calloc(1, sizeof *t);
	have = calloc(1, (m->num_pieces + 7) / 8);
	paths = calloc(m->num_files, sizeof *paths);
	ptrs = calloc(m->num_files, sizeof *ptrs);
	if (!t || !have || !paths || !ptrs) {
		err = -ENOMEM;
		goto out;
	}
	t->e = e;
	fs_engine_key(m, t->key);
	if ((err = add_objects(e, m, t, have, paths, data)) < 0)
		goto out;
	/* libtorrent writes each file in place at its object's path (or the whole byte
	 * space in one); the save path is the objects' directory, where libtorrent
	 * writes nothing else but a torrent's empty files */
	snprintf(save, sizeof save, "%s", data);
	for (uint32_t i = 0; i < m->num_files; i++) {
		ptrs[i] = paths[i][0] ? paths[i] : NULL;
		if (ptrs[i] && !save[0])
			snprintf(save, sizeof save, "%s", paths[i]);
	}
	if (!strrchr(save, '/')) { /* only empty files: nothing to read */
		err = -EINVAL;
		goto out;
	}
	*strrchr(save, '/') = '\0';
	struct swarm_add_params ap = {
		.torrent = torrent,
		.torrent_len = len,
		.save_path = save,
		.file_paths = t->whole ? NULL : ptrs,
		.data_file = t->whole ? data : NULL,
		.have = have,
		.have_bits = m->num_pieces,
		.dial_now = dial_now,
		.ctx = t,
	};
	if ((err = session_add(e, &ap, t)) < 0)
		goto out;
	*out = t;
	t = NULL;
out:
	if (t)
		free(t->files);
	free(t);
	free(have);
	free(paths);
	free(ptrs);
	swarm_metainfo_free(m);
	return err;
}

int fs_engine_torrent_add_plain(struct fs_engine *e, const struct swarm_add_params *p,
                                struct fs_engine_torrent **out)
{
	struct fs_engine_torrent *t = calloc(1, sizeof *t);
	struct swarm_add_params ap = *p;
	int err;

	if (!t)
		return -ENOMEM;
	t->e = e;
	t->plain = true;
	t->uctx = p->ctx;
	ap.ctx = t;
	if ((err = session_add(e, &ap, t)) < 0) {
		free(t);
		return err;
	}
	*out = t;
	return 0;
}

void fs_engine_torrent_remove(struct fs_engine_torrent *t)
{
	struct fs_engine *e;

	if (!t)
		return;
	e = t->e;
	pthread_mutex_lock(&e->mu);
	for (struct fs_engine_torrent **p = &e->torrents; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	t->next = e->dead;
	e->dead = t;
	pthread_mutex_unlock(&e->mu);
	swarm_torrent_remove(t->st, false);
}

struct swarm_torrent *fs_engine_torrent_swarm(struct fs_engine_torrent *t)
{
	return t->st;
}

const uint8_t *fs_engine_torrent_key(struct fs_engine_torrent *t)
{
	return t->key;
}

/* ---- reads ---- */

int fs_engine_reader_new(struct fs_engine_torrent *t, uint32_t index, struct fs_engine_reader **out)
{
	struct fs_engine_reader *r;
	int err;

	if (t->plain || index >= t->n_files)
		return -ENOENT;
	if (!(r = calloc(1, sizeof *r)))
		return -ENOMEM;
	r->t = t;
	r->f = &t->files[index];
	err = swarm_reader_new(t->st, index, &r->sr);
	if (err < 0) {
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void fs_engine_reader_free(struct fs_engine_reader *r)
{
	if (!r)
		return;
	swarm_reader_free(r->sr);
	free(r);
}

struct pending {
	struct fs_engine *e;
	fs_engine_ready_cb cb; /* NULL: the caller was told the range was ready */
	void *ctx;
};

/* swarm thread: a fetch ended. Deliver through the worker, after the marks of the
 * pieces it waited for, which the swarm thread queued before this. */
static void fetch_done(int result, void *ctx)
{
	struct pending *p = ctx;
	struct job *j;

	if (!p->cb) {
		free(p);
		return;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		/* cannot queue: answer here rather than never */
		p->cb(-ENOMEM, p->ctx);
		free(p);
		return;
	}
	j->kind = JOB_DONE;
	j->cb = p->cb;
	j->ctx = p->ctx;
	j->result = result;
	push_job(p->e, j);
	free(p);
}

static bool range_present(struct fs_engine_reader *r, uint64_t offset, size_t len)
{
	struct cache_object_info info;
	struct fs_engine *e = r->t->e;
	const struct engine_file *f = r->f;

	if (offset >= f->size || len == 0)
		return true;
	if (cache_object_stat(e->c, f->key, &info) < 0)
		return false;
	if (len > f->size - offset)
		len = (size_t)(f->size - offset);
	offset += f->base;
	for (uint64_t c = offset / info.chunk_size; c <= (offset + len - 1) / info.chunk_size; c++)
		if (!cache_chunk_present(e->c, f->key, (uint32_t)c))
			return false;
	return true;
}

int fs_engine_prepare(struct fs_engine_reader *r, uint64_t offset, size_t len, int timeout_ms,
                      fs_engine_ready_cb cb, void *ctx)
{
	struct fs_engine *e = r->t->e;
	bool present = range_present(r, offset, len);
	struct pending *p = calloc(1, sizeof *p);
	int rc;

	if (!p)
		return -ENOMEM;
	p->e = e;
	p->cb = present ? NULL : cb;
	p->ctx = ctx;
	/* Always asked, hits too: it moves the reader's read-ahead. */
	rc = swarm_fetch(r->sr, offset, len, timeout_ms, fetch_done, p, NULL);
	if (rc != 0)
		free(p);
	if (present)
		return 1;
	if (rc < 0)
		return rc;
	if (rc == 1) {
		/* verified by libtorrent, not yet marked: answer after the marks queued */
		struct job *j = calloc(1, sizeof *j);
		if (!j)
			return -ENOMEM;
		j->kind = JOB_DONE;
		j->cb = cb;
		j->ctx = ctx;
		push_job(e, j);
	}
	return 0;
}

struct waiter {
	pthread_mutex_t mu; /* guards done, result */
	pthread_cond_t cv;
	bool done;
	int result;
};

static void waiter_cb(int result, void *ctx)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->result = result;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

ssize_t fs_engine_read(struct fs_engine_reader *r, void *buf, size_t len, uint64_t offset,
                       int timeout_ms)
{
	struct fs_engine *e = r->t->e;

	/* A range can be evicted between its fetch and the copy (a cache much smaller
	 * than the reads in flight): a few tries, then give up. */
	for (int attempt = 0; attempt < 10; attempt++) {
		struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };
		int rc = fs_engine_prepare(r, offset, len, timeout_ms, waiter_cb, &w);

		if (rc < 0)
			return rc;
		if (rc == 0) {
			pthread_mutex_lock(&w.mu);
			while (!w.done)
				pthread_cond_wait(&w.cv, &w.mu);
			pthread_mutex_unlock(&w.mu);
			if (w.result < 0)
				return w.result;
		}
		if (offset >= r->f->size)
			return 0;
		if (len > r->f->size - offset)
			len = (size_t)(r->f->size - offset);
		ssize_t n = cache_read(e->c, r->f->key, r->f->base + offset, buf, len);
		if (n != -ENODATA)
			return n;
	}
	return -EIO;
}

int fs_engine_file_where(struct fs_engine_torrent *t, uint32_t index,
                         uint8_t out_key[CACHE_KEY_LEN], uint64_t *out_base)
{
	if (t->plain || index >= t->n_files)
		return -ENOENT;
	memcpy(out_key, t->files[index].key, CACHE_KEY_LEN);
	*out_base = t->files[index].base;
	return 0;
}

uint64_t fs_engine_cached(struct cache *c, const uint8_t key[CACHE_KEY_LEN], uint64_t base,
                          uint64_t len)
{
	struct cache_object_info info;
	uint64_t n = 0;

	if (!len || cache_object_stat(c, key, &info) < 0 || base >= info.length)
		return 0;
	if (len > info.length - base)
		len = info.length - base;
	if (base == 0 && len == info.length)
		return info.bytes_present;
	for (uint64_t k = base / info.chunk_size; k <= (base + len - 1) / info.chunk_size; k++) {
		uint64_t lo = k * info.chunk_size, hi = lo + info.chunk_size;

		if (!cache_chunk_present(c, key, (uint32_t)k))
			continue;
		lo = lo < base ? base : lo;
		hi = hi > base + len ? base + len : hi;
		n += hi - lo;
	}
	return n;
}
