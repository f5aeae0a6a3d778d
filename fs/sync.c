/* The drive torrent, joining from a URI, and the ledger's sync over the extension channel
 * (see sync.h). */
#include "sync.h"

#include "drive.h"
#include "engine.h"
#include "fs.h"
#include "uri.h"

#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GENESIS_NAME     "swarmfs-genesis"
#define ANNOUNCE_EVERY_S 2
#define KICK_GAP_MS      50 /* announces after ledger changes are at least this apart */

/* ---- the drive torrent ---- */

int fs_sync_drive_torrent(const uint8_t id[32], size_t len, uint8_t **out, size_t *out_len)
{
	/* What libtorrent's create_torrent makes for the file, v2 only, 16 KiB pieces, with
	 * nothing outside the info dict that varies (no creation date, no creator). */
	char head[128], tail[128];
	int hn, tn;
	uint8_t *buf;

	if (len == 0 || len > FS_SYNC_GENESIS_MAX)
		return -EINVAL;
	hn = snprintf(head, sizeof head,
	              "d4:infod9:file treed%zu:%sd0:d6:lengthi%zue11:pieces root32:",
	              strlen(GENESIS_NAME), GENESIS_NAME, len);
	tn = snprintf(tail, sizeof tail,
	              "eee12:meta versioni2e4:name%zu:%s12:piece lengthi16384ee12:piece layersdee",
	              strlen(GENESIS_NAME), GENESIS_NAME);
	buf = malloc((size_t)hn + 32 + (size_t)tn);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, head, (size_t)hn);
	memcpy(buf + hn, id, 32);
	memcpy(buf + hn + 32, tail, (size_t)tn);
	*out = buf;
	*out_len = (size_t)hn + 32 + (size_t)tn;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fs_sync_fetch_genesis(const struct fs_drive_opts *o, const struct fs_uri *u, int timeout_ms,
                          uint8_t **out, size_t *out_len)
{
	struct swarm_config cfg;
	struct swarm_session *s = NULL;
	struct swarm_torrent *t = NULL;
	struct swarm_add_params ap = { 0 };
	char **trackers = NULL, **peers = NULL, tmpl[] = "/tmp/swarmfs-join-XXXXXX", path[128];
	char iface[256] = "";
	uint8_t id[32], *torrent = NULL;
	size_t torrent_len = 0;
	void *bytes = NULL;
	size_t len = 0;
	int err;

	if (!u->genesis_len) {
		fs_err("the URI has no gl= (genesis length): ask a member for a fresh one "
		       "('getfattr -n user.swarmfs.drive MOUNTPOINT')");
		return -EINVAL;
	}
	if ((err = ledger_unhex(u->drive_id, id, 32)) < 0)
		return err;
	if ((err = fs_sync_drive_torrent(id, u->genesis_len, &torrent, &torrent_len)) < 0)
		return err;
	for (size_t i = 0; !err && i < u->n_trackers; i++)
		err = fs_strv_add(&trackers, u->trackers[i]);
	for (size_t i = 0; !err && o->trackers && o->trackers[i]; i++)
		err = fs_strv_add(&trackers, o->trackers[i]);
	for (size_t i = 0; !err && i < u->n_peers; i++)
		err = fs_strv_add(&peers, u->peers[i]);
	for (size_t i = 0; !err && o->peers && o->peers[i]; i++)
		err = fs_strv_add(&peers, o->peers[i]);
	if (err)
		goto out;
	if (!trackers && !peers && !o->dht) {
		fs_err("the URI names no tracker and no peer, and the DHT is off: no way to "
		       "find the drive's members");
		err = -EINVAL;
		goto out;
	}
	if (!mkdtemp(tmpl)) {
		err = -errno;
		goto out;
	}
	swarm_config_init(&cfg);
	uint16_t port; /* the mount's own; this short session takes any free one */

	if ((err = fs_listen_parse(o->listen, iface, sizeof iface, &port)) < 0)
		goto out_dir;
	cfg.listen_interface = *iface ? iface : NULL;
	cfg.trackers = (const char *const *)trackers;
	cfg.peers = (const char *const *)peers;
	cfg.dht = o->dht;
	cfg.dht_bootstrap = o->dht_bootstrap;
	cfg.lsd = o->lsd;
	cfg.utp = o->utp;
	cfg.log = fs_log_sink;
	cfg.log_level = fs_log_enabled(LOG_DEBUG) ? LOG_DEBUG : LOG_NOTICE;
	if ((err = swarm_session_new(&cfg, &s)) < 0) {
		fs_err("cannot start a BitTorrent session to join: %s", strerror(-err));
		goto out_dir;
	}
	ap.torrent = torrent;
	ap.torrent_len = torrent_len;
	ap.save_path = tmpl;
	ap.download_all = true;
	if ((err = swarm_torrent_add(s, &ap, &t)) < 0)
		goto out_session;
	fs_info("joining drive %s: fetching its genesis block from the members", u->drive_id);
	err = -ETIMEDOUT;
	for (int64_t end = now_ms() + timeout_ms; now_ms() < end;) {
		if (swarm_torrent_has_piece(t, 0)) {
			err = 0;
			break;
		}
		usleep(20 * 1000);
	}
	if (err) {
		fs_err("no member of drive %s gave its genesis block within %d s (are its "
		       "trackers and peers right, and is a member mounted?)",
		       u->drive_id, timeout_ms / 1000);
		goto out_session;
	}
	snprintf(path, sizeof path, "%s/%s", tmpl, GENESIS_NAME);
	/* libtorrent checked the piece against the pieces root, which is the drive id;
	 * ledger_join checks the id again from the bytes */
	err = fs_read_file(path, FS_SYNC_GENESIS_MAX, &bytes, &len);
	if (!err && len != u->genesis_len)
		err = -EBADMSG;
	if (!err) {
		*out = bytes;
		*out_len = len;
		bytes = NULL;
	}
out_session:
	swarm_session_free(s); /* frees t */
	snprintf(path, sizeof path, "%s/%s", tmpl, GENESIS_NAME);
	unlink(path);
out_dir:
	rmdir(tmpl);
out:
	free(bytes);
	free(torrent);
	fs_strv_free(trackers);
	fs_strv_free(peers);
	return err;
}

/* ---- the drive's remembered trackers and peers ---- */

int fs_sync_config_save(const char *dir, const struct fs_uri *u)
{
	char path[4200], tmp[4300];
	FILE *f;
	int err = 0;

	snprintf(path, sizeof path, "%s/config", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "# swarmfs drive config: how this node finds the drive's members\n");
	for (size_t i = 0; i < u->n_trackers; i++)
		if (!strpbrk(u->trackers[i], " \t\r\n"))
			fprintf(f, "tracker %s\n", u->trackers[i]);
	for (size_t i = 0; i < u->n_peers; i++)
		fprintf(f, "peer %s\n", u->peers[i]);
	if (fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int fs_sync_config_load(const char *dir, char ***trackers, char ***peers)
{
	char path[4200], line[2048];
	FILE *f;
	int err = 0, n = 0;

	snprintf(path, sizeof path, "%s/config", dir);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (!err && fgets(line, sizeof line, f)) {
		size_t len = strcspn(line, "\r\n");

		line[len] = '\0';
		n++;
		if (!strncmp(line, "tracker ", 8) && line[8])
			err = fs_strv_add(trackers, line + 8);
		else if (!strncmp(line, "peer ", 5) && fs_uri_peer_valid(line + 5) == 0)
			err = fs_strv_add(peers, line + 5);
		else if (line[0] && line[0] != '#')
			fs_warn("%s:%d: ignoring '%s' (want 'tracker URL' or 'peer HOST:PORT')",
			        path, n, line);
	}
	fclose(f);
	return err;
}

/* ---- the sync thread ---- */

struct sync_event {
	struct sync_event *next;
	uint64_t peer;
	int kind; /* 0 up, 1 down, 2 message */
	size_t len;
	uint8_t msg[]; /* kind 2 */
};

struct member {
	uint64_t peer;
	char host[64];
	uint16_t port;
};

struct fs_sync {
	struct fs_drive *d;
	struct fs_engine_torrent *et; /* the drive torrent */
	struct swarm_torrent *drive_t;
	struct ledger_sync *ls;  /* sync thread only */
	struct partial *partial; /* sync thread only: messages being reassembled */
	size_t n_partial;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cond;
	struct sync_event *head, *tail;
	bool kicked, stop;
	bool ready; /* drive_t is set: events may be handled */
	struct member *members;
	size_t n_members, cap_members;
	struct swarm_torrent **wanting; /* torrents that want every member as a peer */
	size_t n_wanting;
	struct fs_sync_info info;
	pthread_t thread;
};

/* libtorrent drops a peer that sends a packet over 1 MiB, and a ledger message may be
 * 8 MiB (a block alone up to 4 MiB): messages go in fragments, each one flag byte (1:
 * more follows, 0: the last) and at most FRAG_MAX bytes of the message. */
#define FRAG_MAX (900u * 1000u)

static void op_send(uint64_t peer, const uint8_t *buf, size_t len, void *ctx)
{
	struct fs_sync *s = ctx;
	uint8_t *frag = malloc(1 + (len < FRAG_MAX ? len : FRAG_MAX));
	size_t off = 0;
	int err = frag ? 0 : -ENOMEM;

	do {
		size_t n = len - off < FRAG_MAX ? len - off : FRAG_MAX;

		if (err)
			break;
		frag[0] = off + n < len;
		memcpy(frag + 1, buf + off, n);
		err = swarm_ext_send(s->drive_t, peer, frag, n + 1);
		off += n;
	} while (off < len);
	free(frag);
	if (err < 0 && err != -ENOTCONN)
		fs_warn("sync: cannot send %zu bytes to peer %llu: %s", len,
		        (unsigned long long)peer, strerror(-err));
}

/* A message being reassembled from a peer's fragments. */
struct partial {
	uint64_t peer;
	uint8_t *buf;
	size_t len;
};

/* Add a fragment; 1 and the whole message in *out and *out_len (caller frees) when it was
 * the last, 0 when more is to come, -EBADMSG for an empty fragment or a message over
 * the ledger's cap. Sync thread only. */
static int reassemble(struct fs_sync *s, uint64_t peer, const uint8_t *frag, size_t len,
                      uint8_t **out, size_t *out_len)
{
	struct partial *p = NULL;
	uint8_t *nb;

	if (len < 1 || frag[0] > 1)
		return -EBADMSG;
	for (size_t i = 0; i < s->n_partial && !p; i++)
		if (s->partial[i].peer == peer)
			p = &s->partial[i];
	if (!p) {
		if (frag[0] == 0) { /* the common case: a message in one fragment */
			if (!(*out = malloc(len - 1 ? len - 1 : 1)))
				return -ENOMEM;
			memcpy(*out, frag + 1, len - 1);
			*out_len = len - 1;
			return 1;
		}
		struct partial *np = realloc(s->partial, (s->n_partial + 1) * sizeof *np);

		if (!np)
			return -ENOMEM;
		s->partial = np;
		p = &s->partial[s->n_partial++];
		*p = (struct partial){ .peer = peer };
	}
	if (p->len + len - 1 > LEDGER_SYNC_MAX_MSG)
		return -EBADMSG;
	if (!(nb = realloc(p->buf, p->len + len - 1 ? p->len + len - 1 : 1)))
		return -ENOMEM;
	p->buf = nb;
	memcpy(p->buf + p->len, frag + 1, len - 1);
	p->len += len - 1;
	if (frag[0])
		return 0;
	*out = p->buf;
	*out_len = p->len;
	*p = s->partial[--s->n_partial];
	return 1;
}

/* Forget a peer's half-received message. Sync thread only. */
static void partial_drop(struct fs_sync *s, uint64_t peer)
{
	for (size_t i = 0; i < s->n_partial; i++) {
		if (s->partial[i].peer == peer) {
			free(s->partial[i].buf);
			s->partial[i] = s->partial[--s->n_partial];
			return;
		}
	}
}

static void op_drop(uint64_t peer, const char *why, void *ctx)
{
	struct fs_sync *s = ctx;

	fs_warn("sync: dropping member %llu: %s", (unsigned long long)peer, why);
	swarm_ext_drop(s->drive_t, peer);
}

static const struct ledger_sync_ops sync_ops = { op_send, op_drop };

static void member_up(struct fs_sync *s, uint64_t peer)
{
	struct member m = { .peer = peer };

	if (swarm_ext_peer_addr(s->drive_t, peer, m.host, sizeof m.host, &m.port) < 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->n_members == s->cap_members) {
		size_t nc = s->cap_members ? s->cap_members * 2 : 8;
		struct member *nm = realloc(s->members, nc * sizeof *nm);

		if (!nm) {
			pthread_mutex_unlock(&s->mu);
			return;
		}
		s->members = nm;
		s->cap_members = nc;
	}
	s->members[s->n_members++] = m;
	/* the torrents that want members get this one too: a reader waiting on a
	 * member that joined (or came back) after the torrent was added */
	struct swarm_torrent **want = NULL;
	size_t nw = s->n_wanting;

	if (nw && (want = malloc(nw * sizeof *want)))
		memcpy(want, s->wanting, nw * sizeof *want);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; want && m.port && i < nw; i++)
		swarm_torrent_connect(want[i], m.host, m.port);
	free(want);
	/* remembered by the session: dialled again if the member goes and comes back */
	if (m.port)
		swarm_torrent_connect(s->drive_t, m.host, m.port);
	fs_info("sync: member %llu is %s port %u", (unsigned long long)peer, m.host, m.port);
}

static void member_down(struct fs_sync *s, uint64_t peer)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_members; i++) {
		if (s->members[i].peer == peer) {
			s->members[i] = s->members[--s->n_members];
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

static void *sync_main(void *arg)
{
	struct fs_sync *s = arg;
	int64_t next_tick = now_ms(), last_announce = 0;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		int64_t now = now_ms();
		bool announce =
		    now >= next_tick || (s->kicked && now - last_announce >= KICK_GAP_MS);

		if (!s->ready) {
			pthread_cond_wait(&s->cond, &s->mu);
			continue;
		}
		if (!s->head && !announce) {
			int64_t until = s->kicked ? last_announce + KICK_GAP_MS : next_tick;
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = ts.tv_nsec + (until - now) * 1000000;
			ts.tv_sec += ns / 1000000000;
			ts.tv_nsec = ns % 1000000000;
			pthread_cond_timedwait(&s->cond, &s->mu, &ts);
			continue;
		}
		struct sync_event *ev = s->head;

		s->head = s->tail = NULL;
		if (announce)
			s->kicked = false;
		pthread_mutex_unlock(&s->mu);

		while (ev) {
			struct sync_event *next = ev->next;

			if (ev->kind == 0) {
				member_up(s, ev->peer);
				ledger_sync_peer_connected(s->ls, ev->peer);
			} else if (ev->kind == 1) {
				member_down(s, ev->peer);
				partial_drop(s, ev->peer);
				ledger_sync_peer_gone(s->ls, ev->peer);
			} else {
				uint8_t *msg;
				size_t len;
				int rc = reassemble(s, ev->peer, ev->msg, ev->len, &msg, &len);

				if (rc == 1) {
					ledger_sync_message(s->ls, ev->peer, msg, len);
					free(msg);
				} else if (rc < 0) {
					partial_drop(s, ev->peer);
					op_drop(ev->peer,
					        rc == -EBADMSG ? "a malformed or oversized fragment"
					                       : "out of memory",
					        s);
				}
			}
			free(ev);
			ev = next;
		}
		if (announce) {
			ledger_sync_announce(s->ls);
			last_announce = now_ms();
			if (now >= next_tick)
				next_tick = last_announce + ANNOUNCE_EVERY_S * 1000;
		}
		struct ledger_sync_progress pr;

		ledger_sync_progress(s->ls, &pr);
		pthread_mutex_lock(&s->mu);
		s->info.peers = (uint32_t)pr.peers; /* the rest of info is set once */
		s->info.best_height = pr.best_height;
		s->info.behind = pr.behind;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void push_event(struct fs_sync *s, int kind, uint64_t peer, const void *msg, size_t len)
{
	struct sync_event *ev = malloc(sizeof *ev + (kind == 2 ? len : 0));

	if (!ev) {
		fs_err("sync: out of memory: a message of member %llu is lost",
		       (unsigned long long)peer);
		return;
	}
	ev->next = NULL;
	ev->peer = peer;
	ev->kind = kind;
	ev->len = kind == 2 ? len : 0;
	if (kind == 2)
		memcpy(ev->msg, msg, len);
	pthread_mutex_lock(&s->mu);
	if (s->stop) { /* unmounting: nobody will read it */
		pthread_mutex_unlock(&s->mu);
		free(ev);
		return;
	}
	if (s->tail)
		s->tail->next = ev;
	else
		s->head = ev;
	s->tail = ev;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* The drive torrent is added with its fs_sync as its ctx; file torrents give NULL. */
void fs_sync_on_ext_peer(struct swarm_torrent *t, void *tctx, uint64_t peer, bool up, void *ctx)
{
	struct fs_sync *s = tctx;

	(void)t;
	(void)ctx;
	if (s)
		push_event(s, up ? 0 : 1, peer, NULL, 0);
}

void fs_sync_on_ext_message(struct swarm_torrent *t, void *tctx, uint64_t peer, const void *msg,
                            size_t len, void *ctx)
{
	struct fs_sync *s = tctx;

	(void)t;
	(void)ctx;
	if (s)
		push_event(s, 2, peer, msg, len);
}

void fs_sync_kick(struct fs_drive *d)
{
	struct fs_sync *s = d->sync;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->kicked) {
		s->kicked = true;
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&s->mu);
}

void fs_sync_connect(struct fs_drive *d, struct swarm_torrent *t)
{
	struct fs_sync *s = d->sync;
	struct member *copy = NULL;
	size_t n = 0;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	bool known = false;

	for (size_t i = 0; i < s->n_wanting && !known; i++)
		known = s->wanting[i] == t;
	if (!known) {
		struct swarm_torrent **nw = realloc(s->wanting, (s->n_wanting + 1) * sizeof *nw);

		if (nw) {
			s->wanting = nw;
			s->wanting[s->n_wanting++] = t;
		}
	}
	if (s->n_members && (copy = malloc(s->n_members * sizeof *copy))) {
		n = s->n_members;
		memcpy(copy, s->members, n * sizeof *copy);
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < n; i++)
		if (copy[i].port)
			swarm_torrent_connect(t, copy[i].host, copy[i].port);
	free(copy);
}

void fs_sync_forget(struct fs_drive *d, struct swarm_torrent *t)
{
	struct fs_sync *s = d->sync;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_wanting; i++) {
		if (s->wanting[i] == t) {
			s->wanting[i] = s->wanting[--s->n_wanting];
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void fs_sync_info(struct fs_drive *d, struct fs_sync_info *out)
{
	struct fs_sync *s = d->sync;

	memset(out, 0, sizeof *out);
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	*out = s->info;
	pthread_mutex_unlock(&s->mu);
	out->running = true;
}

/* Write the genesis as the drive torrent's file, unless it is there with these bytes. */
static int write_genesis(const char *dir, const uint8_t *g, size_t len)
{
	char path[4400];
	void *have = NULL;
	size_t have_len = 0;

	snprintf(path, sizeof path, "%s/%s", dir, GENESIS_NAME);
	if (fs_read_file(path, FS_SYNC_GENESIS_MAX, &have, &have_len) == 0) {
		bool same = have_len == len && !memcmp(have, g, len);

		free(have);
		if (same)
			return 0;
	}
	return fs_write_file(path, g, len);
}

int fs_sync_start(struct fs_drive *d)
{
	struct fs_sync *s;
	struct swarm_add_params ap = { 0 };
	uint8_t *genesis = NULL, *torrent = NULL, id[32];
	size_t glen = 0, tlen = 0;
	char dir[4200];
	int err;

	if ((err = ledger_genesis_raw(d->ledger, &genesis, &glen)) < 0)
		return err;
	if (glen > FS_SYNC_GENESIS_MAX) {
		fs_warn("the genesis block of drive %s is %zu bytes, over the %d a shared drive "
		        "allows: mounted without sync",
		        d->id_hex, glen, FS_SYNC_GENESIS_MAX);
		free(genesis);
		return 0;
	}
	ledger_drive_id(d->ledger, id);
	snprintf(dir, sizeof dir, "%s/drive", d->dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		err = -errno;
	if (!err)
		err = write_genesis(dir, genesis, glen);
	if (!err)
		err = fs_sync_drive_torrent(id, glen, &torrent, &tlen);
	free(genesis);
	if (err) {
		fs_err("cannot make the drive torrent in %s: %s", dir, strerror(-err));
		free(torrent);
		return err;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		free(torrent);
		return -ENOMEM;
	}
	s->d = d;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	err = ledger_sync_new(d->ledger, &sync_ops, s, &s->ls);
	if (!err) {
		ap.torrent = torrent;
		ap.torrent_len = tlen;
		ap.save_path = dir;
		ap.seed = true;
		ap.ext_channel = true;
		ap.ctx = s;
		/* the thread first: the torrent's callbacks feed its queue at once */
		err = -pthread_create(&s->thread, NULL, sync_main, s);
	}
	if (!err) {
		d->sync = s;
		err = fs_engine_torrent_add_plain(d->engine, &ap, &s->et);
		if (err) {
			fs_sync_stop(d);
			fs_sync_free(d);
			s = NULL;
		}
	}
	if (!err) {
		struct swarm_metainfo *m;

		if (swarm_metainfo_parse(torrent, tlen, &m, NULL) == 0) {
			swarm_hex(m->v2, 32, s->info.torrent);
			swarm_metainfo_free(m);
		}
	}
	free(torrent);
	if (err && s) {
		ledger_sync_free(s->ls);
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cond);
		free(s);
	}
	if (err) {
		fs_err("cannot start the drive's sync: %s", strerror(-err));
		return err;
	}
	pthread_mutex_lock(&s->mu);
	s->drive_t = fs_engine_torrent_swarm(s->et);
	s->ready = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

void fs_sync_stop(struct fs_drive *d)
{
	struct fs_sync *s = d->sync;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
}

void fs_sync_free(struct fs_drive *d)
{
	struct fs_sync *s = d->sync;

	if (!s)
		return;
	d->sync = NULL;
	/* after the engine: no swarm callback can hold s any more */
	for (struct sync_event *ev = s->head, *next; ev; ev = next) {
		next = ev->next;
		free(ev);
	}
	ledger_sync_free(s->ls);
	for (size_t i = 0; i < s->n_partial; i++)
		free(s->partial[i].buf);
	free(s->partial);
	free(s->wanting);
	free(s->members);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}
