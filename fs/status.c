/* A mount's report on itself: text, JSON and the --watch screen (see status.h). */
#include "status.h"

#include "hosting.h"
#include "inode.h"
#include "seedback.h"
#include "volunteer.h"

#include "drive.h"
#include "engine.h"
#include "fs.h"
#include "json.h"
#include "members.h"
#include "publish.h"
#include "rank.h"
#include "sync.h"

#include <cache.h>
#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TORRENTS_JSON  200 /* a report must fit an xattr value (64 KiB) */
#define MAX_TORRENTS_WATCH 20
#define MAX_QUEUE_SHOWN    50

void fs_text_add(char **buf, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char *nb = realloc(*buf, *len + (size_t)n + 1);
	if (nb) {
		memcpy(nb + *len, line, (size_t)n + 1);
		*buf = nb;
		*len += (size_t)n;
	}
	free(line);
}

/* ---- one snapshot, three renderings ---- */

struct torrent_row {
	uint8_t key[32];
	struct fs_engine_torrent *t;
	struct swarm_torrent_stats st;
	uint32_t piece_length; /* from the cache object; 0 if unknown */
};

struct snapshot {
	struct ledger_head head;
	struct cache_usage cache;
	struct swarm_session_stats session;
	struct fs_publish_status pub;
	struct fs_sync_info sync;
	uint16_t port;
	bool verify_done;
	int verify_problems;
	char *uri;
	struct torrent_row *rows;
	size_t n_rows;
};

static int busier(const void *a, const void *b)
{
	const struct torrent_row *x = a, *y = b;
	uint64_t ax = x->st.download_rate + x->st.upload_rate + x->st.bytes_wanted;
	uint64_t ay = y->st.download_rate + y->st.upload_rate + y->st.bytes_wanted;

	if (ax != ay)
		return ax > ay ? -1 : 1;
	return memcmp(x->key, y->key, 32);
}

/* Torrents are never removed while mounted, so their handles outlive the lock. */
static int collect_torrents(struct fs_drive *d, struct snapshot *s)
{
	size_t n;

	pthread_mutex_lock(&d->torrents_lock);
	n = d->n_torrents;
	s->rows = n ? calloc(n, sizeof *s->rows) : NULL;
	if (s->rows) {
		s->n_rows = n;
		for (size_t i = 0; i < n; i++) {
			memcpy(s->rows[i].key, d->torrents[i].key, 32);
			s->rows[i].t = d->torrents[i].t;
		}
	}
	pthread_mutex_unlock(&d->torrents_lock);
	if (n && !s->rows)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_rows; i++) {
		struct cache_object_info info;

		swarm_torrent_stats(fs_engine_torrent_swarm(s->rows[i].t), &s->rows[i].st);
		if (cache_object_stat(d->cache, s->rows[i].key, &info) == 0)
			s->rows[i].piece_length = info.chunk_size;
	}
	if (s->n_rows > 1) /* no torrents yet: rows is NULL, which qsort may not be given */
		qsort(s->rows, s->n_rows, sizeof *s->rows, busier);
	return 0;
}

static int snapshot_take(struct fs_drive *d, struct snapshot *s, bool torrents)
{
	memset(s, 0, sizeof *s);
	ledger_head_get(d->ledger, &s->head);
	cache_usage_get(d->cache, &s->cache);
	if (d->swarm) {
		swarm_session_stats(d->swarm, &s->session);
		swarm_session_port(d->swarm, &s->port);
	}
	fs_publish_status(d, &s->pub);
	fs_sync_info(d, &s->sync);
	fs_drive_uri(d, &s->uri);
	pthread_mutex_lock(&d->bad_lock);
	s->verify_done = d->verify_done;
	s->verify_problems = d->verify_problems;
	pthread_mutex_unlock(&d->bad_lock);
	return torrents ? collect_torrents(d, s) : 0;
}

static void snapshot_release(struct snapshot *s)
{
	free(s->uri);
	free(s->rows);
}

static uint32_t pieces_wanted(const struct torrent_row *r)
{
	if (!r->piece_length)
		return 0;
	return (uint32_t)((r->st.bytes_wanted + r->piece_length - 1) / r->piece_length);
}

/* The file name inside the torrent saved for key ("" if none: fetched by magnet). */
static void torrent_name(struct fs_drive *d, const uint8_t key[32], char *buf, size_t len)
{
	struct swarm_metainfo *m = NULL;
	void *bytes = NULL;
	size_t n;

	buf[0] = '\0';
	if (fs_saved_torrent(d, key, &bytes, &n) == 0 &&
	    swarm_metainfo_parse(bytes, n, &m, NULL) == 0 && m->num_files == 1)
		snprintf(buf, len, "%s", m->files[0].path);
	swarm_metainfo_free(m);
	free(bytes);
}

static const char *state_name(enum swarm_torrent_state st)
{
	switch (st) {
	case SWARM_STATE_METADATA: return "metadata";
	case SWARM_STATE_CHECKING: return "checking";
	case SWARM_STATE_READY: return "ready";
	case SWARM_STATE_SEEDING: return "seeding";
	default: return "error";
	}
}

/* ---- text: swarmfs status ---- */

/* How this mount finds peers besides trackers and --peer: the mount's own flags. */
static void discovery_text(const struct fs_drive_opts *o, char **buf, size_t *len)
{
	fs_text_add(buf, len, "discovery: dht %s", o->dht ? "on" : "off");
	for (size_t i = 0; o->dht && o->dht_bootstrap && o->dht_bootstrap[i]; i++)
		fs_text_add(buf, len, "%s%s", i ? "," : " (bootstrap ", o->dht_bootstrap[i]);
	if (o->dht && o->dht_bootstrap && o->dht_bootstrap[0])
		fs_text_add(buf, len, ")");
	fs_text_add(buf, len, ", lsd %s, utp %s\n", o->lsd ? "on" : "off", o->utp ? "on" : "off");
}

/* The hosting lines: what the cache keeps as the last known copy (and why), and what
 * --volunteer offers. */
static void hosting_text(struct fs_drive *d, char **buf, size_t *len)
{
	uint64_t kept_bytes, vsize, vused;
	size_t kept = fs_hosting_kept(d, &kept_bytes);

	if (kept)
		fs_text_add(buf, len,
		            "kept: %zu files, %llu bytes, last known copy (no member holds them: "
		            "the cache will not evict them)\n",
		            kept, (unsigned long long)kept_bytes);
	fs_volunteer_usage(d, &vsize, &vused);
	if (vsize)
		fs_text_add(buf, len, "volunteer: hosting %llu of %llu bytes offered\n",
		            (unsigned long long)vused, (unsigned long long)vsize);

	struct fs_seedback_count sc;

	fs_seedback_count(d->seedback, &sc);
	if (sc.indexed)
		fs_text_add(buf, len,
		            "seeding on demand: %zu held files load when a peer asks (%zu so "
		            "far); %zu loaded at mount or as published\n",
		            sc.indexed, sc.on_demand, sc.loaded);
}

int fs_status_text(struct fs_drive *d, char **out)
{
	struct snapshot s;
	char hex[LEDGER_HEX_LEN], *buf = NULL;
	size_t len = 0;

	snapshot_take(d, &s, false);
	fs_text_add(&buf, &len, "drive: %s\nid: %s\nuri: %s\n", d->name ? d->name : "", d->id_hex,
	            s.uri ? s.uri : "");
	if (d->key) {
		ledger_hex(d->me, LEDGER_KEY_LEN, hex);
		fs_text_add(&buf, &len, "key: %s\n", hex);
	} else
		fs_text_add(&buf, &len, "key: none (read-only)\n");
	ledger_hex(s.head.id, LEDGER_ID_LEN, hex);
	fs_text_add(&buf, &len, "height: %llu\nhead: %s\nmempool: %d\n",
	            (unsigned long long)s.head.height, hex, ledger_mempool_count(d->ledger));
	struct ledger_finality fin;

	if (ledger_finality_get(d->ledger, &fin) == 0) {
		fs_text_add(&buf, &len, "final: height %llu\n", (unsigned long long)fin.height);
		if (fin.conflict)
			fs_text_add(
			    &buf, &len,
			    "FINALITY CONFLICT: a peer offered a final branch (tip at height "
			    "%llu) that undoes our final blocks; ours kept\n",
			    (unsigned long long)fin.conflict_height);
		if (fin.evidence)
			fs_text_add(&buf, &len,
			            "equivocation evidence: %llu (swarmfs verify lists it)\n",
			            (unsigned long long)fin.evidence);
	}
	if (!s.verify_done)
		fs_text_add(&buf, &len, "verification: running\n");
	else
		fs_text_add(&buf, &len, "verification: done, %d problem%s\n", s.verify_problems,
		            s.verify_problems == 1 ? "" : "s");
	if (!s.sync.running)
		fs_text_add(&buf, &len, "sync: off\n");
	else if (!s.sync.peers)
		fs_text_add(&buf, &len, "sync: no member connected\n");
	else if (s.sync.behind)
		fs_text_add(&buf, &len, "sync: syncing, height %llu of %llu, %u member%s\n",
		            (unsigned long long)s.head.height,
		            (unsigned long long)s.sync.best_height, s.sync.peers,
		            s.sync.peers == 1 ? "" : "s");
	else
		fs_text_add(&buf, &len, "sync: in sync with %u member%s\n", s.sync.peers,
		            s.sync.peers == 1 ? "" : "s");
	if (s.sync.running)
		fs_text_add(&buf, &len, "drive torrent: %s\n", s.sync.torrent);
	{ /* private drives: access, membership, epoch, refusals (fs/members) */
		char *acc = NULL;
		size_t alen = 0;
		FILE *f = open_memstream(&acc, &alen);

		if (f) {
			fs_members_status(d, f);
			fclose(f);
		}
		if (acc)
			fs_text_add(&buf, &len, "%s", acc);
		free(acc);
	}
	discovery_text(&d->opts, &buf, &len);
	fs_text_add(&buf, &len, "listen port: %u\npeers: %u\ntorrents: %u\n", s.port,
	            s.session.peers, s.session.torrents);
	fs_text_add(&buf, &len, "download rate: %llu B/s\nupload rate: %llu B/s\n",
	            (unsigned long long)s.session.download_rate,
	            (unsigned long long)s.session.upload_rate);
	fs_rank_status_text(fs_sync_rank(d), d, &buf, &len);
	fs_text_add(&buf, &len,
	            "cache: %llu of %llu bytes used, %llu published, %llu pinned by readers\n",
	            (unsigned long long)s.cache.used, (unsigned long long)s.cache.cap,
	            (unsigned long long)s.cache.published, (unsigned long long)s.cache.pinned);
	hosting_text(d, &buf, &len);
	fs_text_add(&buf, &len,
	            "publish queue: %llu staged, %llu queued, %llu failed; %llu published by "
	            "this mount\n",
	            (unsigned long long)s.pub.staged, (unsigned long long)s.pub.queued,
	            (unsigned long long)s.pub.failed, (unsigned long long)s.pub.published);
	if (s.pub.failed)
		fs_text_add(&buf, &len, "publish error: %s\n", s.pub.last_error);
	snapshot_release(&s);
	if (!buf)
		return -ENOMEM;
	*out = buf;
	return (int)len;
}

/* ---- JSON: swarmfs status --json ---- */

struct queue_out {
	struct fs_json *j;
	char **buf;
	size_t *len;
	int n;
};

static void queue_json(const struct fs_publish_item *it, void *ctx)
{
	struct queue_out *q = ctx;

	if (q->n++ >= MAX_QUEUE_SHOWN)
		return;
	fs_json_object_begin(q->j, NULL);
	fs_json_str(q->j, "path", it->path);
	fs_json_str(q->j, "state", it->state);
	fs_json_uint(q->j, "size", it->size);
	fs_json_uint(q->j, "hashed_pieces", it->hashed);
	fs_json_uint(q->j, "pieces", it->pieces);
	fs_json_object_end(q->j);
}

int fs_status_json(struct fs_drive *d, char **out)
{
	struct snapshot s;
	struct fs_json j;
	struct queue_out q = { .j = &j };
	char name[256];
	int err;

	if ((err = snapshot_take(d, &s, true)) < 0)
		return err;
	fs_json_init(&j);
	fs_json_object_begin(&j, NULL);
	fs_json_str(&j, "drive", d->name ? d->name : "");
	fs_json_str(&j, "id", d->id_hex);
	fs_json_str(&j, "uri", s.uri);
	if (d->key)
		fs_json_hex(&j, "key", d->me, LEDGER_KEY_LEN);
	else
		fs_json_null(&j, "key");
	fs_json_bool(&j, "read_only", !d->key);
	fs_json_bool(&j, "private", ledger_is_private(d->ledger));
	fs_json_bool(&j, "member", d->key && ledger_member_role(d->ledger, d->me) > 0);
	fs_json_uint(&j, "height", s.head.height);
	fs_json_hex(&j, "head", s.head.id, LEDGER_ID_LEN);
	fs_json_int(&j, "mempool", ledger_mempool_count(d->ledger));
	fs_json_uint(&j, "inodes", fs_inodes_count(d->inodes));
	fs_json_object_begin(&j, "verification");
	fs_json_bool(&j, "done", s.verify_done);
	fs_json_int(&j, "problems", s.verify_problems);
	fs_json_object_end(&j);
	fs_json_object_begin(&j, "sync");
	fs_json_bool(&j, "running", s.sync.running);
	fs_json_uint(&j, "members", s.sync.peers);
	fs_json_bool(&j, "behind", s.sync.behind);
	fs_json_uint(&j, "best_height", s.sync.best_height);
	fs_json_str(&j, "torrent", s.sync.running ? s.sync.torrent : NULL);
	fs_json_object_end(&j);
	fs_json_object_begin(&j, "discovery");
	fs_json_bool(&j, "dht", d->opts.dht);
	fs_json_array_begin(&j, "dht_bootstrap");
	for (size_t i = 0; d->opts.dht && d->opts.dht_bootstrap && d->opts.dht_bootstrap[i]; i++)
		fs_json_str(&j, NULL, d->opts.dht_bootstrap[i]);
	fs_json_array_end(&j);
	fs_json_bool(&j, "lsd", d->opts.lsd);
	fs_json_bool(&j, "utp", d->opts.utp);
	fs_json_object_end(&j);
	fs_json_uint(&j, "listen_port", s.port);
	fs_json_uint(&j, "peers", s.session.peers);
	fs_json_uint(&j, "torrents", s.session.torrents);
	fs_json_uint(&j, "download_rate", s.session.download_rate);
	fs_json_uint(&j, "upload_rate", s.session.upload_rate);
	fs_json_uint(&j, "total_downloaded", s.session.total_downloaded);
	fs_json_uint(&j, "total_uploaded", s.session.total_uploaded);
	fs_json_uint(&j, "wire_downloaded", s.session.wire_downloaded);
	fs_json_uint(&j, "wire_uploaded", s.session.wire_uploaded);
	fs_rank_status_json(fs_sync_rank(d), d, &j);
	fs_json_object_begin(&j, "cache");
	fs_json_uint(&j, "used", s.cache.used);
	fs_json_uint(&j, "cap", s.cache.cap);
	fs_json_uint(&j, "published", s.cache.published);
	fs_json_uint(&j, "pinned", s.cache.pinned);
	fs_json_uint(&j, "rehashed", s.cache.rehashed);
	{
		uint64_t kept_bytes, vsize, vused;
		size_t kept = fs_hosting_kept(d, &kept_bytes);

		fs_json_uint(&j, "kept_files", kept);
		fs_json_uint(&j, "kept_bytes", kept_bytes);
		fs_volunteer_usage(d, &vsize, &vused);
		fs_json_uint(&j, "volunteer", vsize);
		fs_json_uint(&j, "volunteer_used", vused);

		struct fs_seedback_count sc;

		fs_seedback_count(d->seedback, &sc);
		fs_json_uint(&j, "seed_loaded", sc.loaded);
		fs_json_uint(&j, "seed_on_demand", sc.indexed);
		fs_json_uint(&j, "seed_asked", sc.on_demand);
	}
	fs_json_object_end(&j);
	fs_json_object_begin(&j, "publish");
	fs_json_uint(&j, "staged", s.pub.staged);
	fs_json_uint(&j, "queued", s.pub.queued);
	fs_json_uint(&j, "failed", s.pub.failed);
	fs_json_uint(&j, "published", s.pub.published);
	fs_json_array_begin(&j, "files");
	fs_publish_list(d, queue_json, &q);
	fs_json_array_end(&j);
	fs_json_object_end(&j);
	fs_json_uint(&j, "transfers_total", s.n_rows);
	fs_json_array_begin(&j, "transfers");
	for (size_t i = 0; i < s.n_rows && i < MAX_TORRENTS_JSON; i++) {
		const struct torrent_row *r = &s.rows[i];

		fs_json_object_begin(&j, NULL);
		fs_json_hex(&j, "infohash", r->key, 32);
		torrent_name(d, r->key, name, sizeof name);
		fs_json_str(&j, "name", name);
		fs_json_str(&j, "state", state_name(r->st.state));
		fs_json_uint(&j, "peers", r->st.peers);
		fs_json_uint(&j, "seeds", r->st.seeds);
		fs_json_uint(&j, "download_rate", r->st.download_rate);
		fs_json_uint(&j, "upload_rate", r->st.upload_rate);
		fs_json_uint(&j, "pieces_have", r->st.pieces_have);
		fs_json_uint(&j, "pieces", r->st.num_pieces);
		fs_json_uint(&j, "pieces_wanted", pieces_wanted(r));
		fs_json_uint(&j, "bytes_have", r->st.bytes_have);
		fs_json_uint(&j, "bytes_wanted", r->st.bytes_wanted);
		fs_json_object_end(&j);
	}
	fs_json_array_end(&j);
	fs_json_object_end(&j);
	snapshot_release(&s);
	return fs_json_finish(&j, out);
}

/* ---- the --watch screen ---- */

void fs_human(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	double x = (double)v;
	int u = 0;

	while (x >= 1024 && u < 5) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", (unsigned long long)v);
	else
		snprintf(buf, len, "%.1f%c", x, units[u]);
}

static void queue_watch(const struct fs_publish_item *it, void *ctx)
{
	struct queue_out *q = ctx;
	char size[16], prog[32] = "";

	if (q->n++ >= MAX_QUEUE_SHOWN)
		return;
	fs_human(it->size, size, sizeof size);
	if (!strcmp(it->state, "hashing") && it->pieces)
		snprintf(prog, sizeof prog, " %3u%% (%u/%u pieces)",
		         (unsigned)((uint64_t)it->hashed * 100 / it->pieces), it->hashed,
		         it->pieces);
	fs_text_add(q->buf, q->len, "  %-8s %8s%s  %s\n", it->state, size, prog, it->path);
}

int fs_status_watch(struct fs_drive *d, char **out)
{
	struct snapshot s;
	struct queue_out q;
	char *buf = NULL, when[32], a[16], b[16], c[16], name[256];
	size_t len = 0, shown = 0;
	time_t now = time(NULL);
	struct tm tm;
	int err;

	if ((err = snapshot_take(d, &s, true)) < 0)
		return err;
	strftime(when, sizeof when, "%H:%M:%S", localtime_r(&now, &tm));
	fs_human(s.session.download_rate, a, sizeof a);
	fs_human(s.session.upload_rate, b, sizeof b);
	fs_text_add(&buf, &len, "swarmfs %s (%.16s)  height %llu  %s\n", d->name ? d->name : "",
	            d->id_hex, (unsigned long long)s.head.height, when);
	fs_text_add(&buf, &len, "peers %u  members %u  torrents %u  down %s/s  up %s/s  sync %s\n",
	            s.session.peers, s.sync.peers, s.session.torrents, a, b,
	            !s.sync.running ? "off"
	            : s.sync.behind ? "behind"
	                            : "ok");
	fs_human(s.cache.used, a, sizeof a);
	fs_human(s.cache.cap, b, sizeof b);
	fs_human(s.cache.published, c, sizeof c);
	fs_text_add(&buf, &len, "cache %s of %s, %s published\n\n", a, b, c);
	fs_text_add(&buf, &len, "%-9s %9s %9s %5s %13s %8s  %s\n", "STATE", "DOWN/s", "UP/s",
	            "PEERS", "PIECES", "WANTED", "FILE");
	for (size_t i = 0; i < s.n_rows && shown < MAX_TORRENTS_WATCH; i++) {
		const struct torrent_row *r = &s.rows[i];
		char pieces[32], hex[LEDGER_HEX_LEN];

		fs_human(r->st.download_rate, a, sizeof a);
		fs_human(r->st.upload_rate, b, sizeof b);
		snprintf(pieces, sizeof pieces, "%u/%u", r->st.pieces_have, r->st.num_pieces);
		torrent_name(d, r->key, name, sizeof name);
		ledger_hex(r->key, 32, hex);
		fs_text_add(&buf, &len, "%-9s %9s %9s %5u %13s %8u  %s\n", state_name(r->st.state),
		            a, b, r->st.peers, pieces, pieces_wanted(r), *name ? name : hex);
		shown++;
	}
	if (s.n_rows > shown)
		fs_text_add(&buf, &len, "(%zu more)\n", s.n_rows - shown);
	fs_rank_status_watch(fs_sync_rank(d), d, &buf, &len);
	fs_text_add(&buf, &len, "\npublish queue: %llu staged, %llu queued, %llu failed\n",
	            (unsigned long long)s.pub.staged, (unsigned long long)s.pub.queued,
	            (unsigned long long)s.pub.failed);
	q = (struct queue_out){ .buf = &buf, .len = &len };
	fs_publish_list(d, queue_watch, &q);
	snapshot_release(&s);
	if (!buf)
		return -ENOMEM;
	*out = buf;
	return (int)len;
}
