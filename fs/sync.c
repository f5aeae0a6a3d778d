/* The drive torrent, joining from a URI, and the ledger's sync over the extension channel
 * (see sync.h). */
#include "sync.h"

#include "credit.h"
#include "rank.h"
#include "drive.h"
#include "frames.h"
#include "join.h"
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
#define PRIVATE_NAME     "swarmfs-drive" /* a private drive's torrent: its one file */
#define ANNOUNCE_EVERY_S 2
#define KICK_GAP_MS      50 /* announces after ledger changes are at least this apart */
/* Bounds on what peers make us hold (DESIGN §10): messages queued for the sync thread,
 * by one peer and in all; a peer past its share is dropped, not buffered. */
#define QUEUE_PEER_MAX  (2 * LEDGER_SYNC_MAX_MSG + (1u << 20))
#define QUEUE_TOTAL_MAX (64u << 20)
#define QPEERS_MAX      256
#define DROPPED_MAX     1024
#define BANNED_MAX      256

/* ---- the drive torrent ---- */

/* What libtorrent's create_torrent makes for one file of len bytes whose pieces root is
 * root, v2 only, 16 KiB pieces, with nothing outside the info dict that varies (no
 * creation date, no creator). */
static int drive_torrent(const char *name, size_t len, const uint8_t root[32], uint8_t **out,
                         size_t *out_len)
{
	char head[128], tail[128];
	int hn, tn;
	uint8_t *buf;

	hn = snprintf(head, sizeof head,
	              "d4:infod9:file treed%zu:%sd0:d6:lengthi%zue11:pieces root32:", strlen(name),
	              name, len);
	tn = snprintf(tail, sizeof tail,
	              "eee12:meta versioni2e4:name%zu:%s12:piece lengthi16384ee12:piece layersdee",
	              strlen(name), name);
	buf = malloc((size_t)hn + 32 + (size_t)tn);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, head, (size_t)hn);
	memcpy(buf + hn, root, 32);
	memcpy(buf + hn + 32, tail, (size_t)tn);
	*out = buf;
	*out_len = (size_t)hn + 32 + (size_t)tn;
	return 0;
}

int fs_sync_drive_torrent(const uint8_t id[32], size_t len, uint8_t **out, size_t *out_len)
{
	if (len == 0 || len > FS_SYNC_GENESIS_MAX)
		return -EINVAL;
	/* a file of one 16 KiB block: its pieces root is its SHA-256, the drive id */
	return drive_torrent(GENESIS_NAME, len, id, out, out_len);
}

void fs_sync_private_content(const uint8_t id[32], uint8_t out[32])
{
	static const char tag[] = "swarmfs-private-drive-v1";
	uint8_t buf[sizeof tag + 32];

	memcpy(buf, tag, sizeof tag); /* with its NUL, as every tag */
	memcpy(buf + sizeof tag, id, 32);
	ledger_digest(buf, sizeof buf, out);
}

int fs_sync_private_torrent(const uint8_t id[32], uint8_t **out, size_t *out_len)
{
	uint8_t content[32], root[32];

	fs_sync_private_content(id, content);
	ledger_digest(content, sizeof content, root);
	return drive_torrent(PRIVATE_NAME, sizeof content, root, out, out_len);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fs_sync_fetch_genesis(const struct fs_drive_opts *o, const struct fs_uri *u,
                          const struct ledger_key *key, int timeout_ms, uint8_t **out,
                          size_t *out_len)
{
	struct fs_join *j = NULL;
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

	if (!u->genesis_len && !u->private_drive) {
		fs_err("the URI has no gl= (genesis length): ask a member for a fresh one "
		       "('getfattr -n user.swarmfs.drive MOUNTPOINT')");
		return -EINVAL;
	}
	if ((err = ledger_unhex(u->drive_id, id, 32)) < 0)
		return err;
	/* a private drive's genesis comes over the members-only channel, to a node the
	 * handshake admits; a public one's is the drive torrent's file */
	if (u->private_drive) {
		if (!key) {
			fs_err(
			    "a private drive needs a key to join: make one with 'swarmfs key new'");
			return -ENOKEY;
		}
		err = fs_join_new(id, key, u->has_invite ? u->invite : NULL, &j);
		if (!err)
			err = fs_sync_private_torrent(id, &torrent, &torrent_len);
	} else {
		err = fs_sync_drive_torrent(id, u->genesis_len, &torrent, &torrent_len);
	}
	if (err)
		goto out;
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
	if (j) {
		cfg.on_ext_peer = fs_join_on_peer;
		cfg.on_ext_message = fs_join_on_message;
	}
	if ((err = swarm_session_new(&cfg, &s)) < 0) {
		fs_err("cannot start a BitTorrent session to join: %s", strerror(-err));
		goto out_dir;
	}
	ap.torrent = torrent;
	ap.torrent_len = torrent_len;
	ap.save_path = tmpl;
	ap.download_all = !j;
	ap.ext_channel = j != NULL;
	ap.ctx = j;
	if ((err = swarm_torrent_add(s, &ap, &t)) < 0)
		goto out_session;
	fs_info("joining drive %s: fetching its genesis block from the members", u->drive_id);
	if (j) {
		err = fs_join_run(j, t, u, timeout_ms, out, out_len);
		goto out_session;
	}
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
	snprintf(path, sizeof path, "%s/%s", tmpl, j ? PRIVATE_NAME : GENESIS_NAME);
	unlink(path);
out_dir:
	rmdir(tmpl);
out:
	fs_join_free(j); /* after the session: its callbacks held j until then */
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
	struct ledger_sync *ls; /* sync thread only */
	bool private_drive;
	uint8_t invite[32]; /* sync thread only: the invite we prove until a member */
	bool has_invite;
	struct fs_frames *frames;      /* sync thread only: messages being reassembled */
	struct fs_credit *credit;      /* sync thread only: receipts owed and sent */
	struct fs_rank *rank;          /* members' credit ranks (its own lock) */
	uint64_t dropped[DROPPED_MAX]; /* sync thread only: peers whose messages are void */
	size_t n_dropped;

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
	size_t queued;   /* bytes of messages in head..tail */
	uint64_t capped; /* the last peer dropped for sending too fast */
	struct peer_bytes {
		uint64_t peer;
		size_t bytes;
	} qpeers[QPEERS_MAX]; /* queued bytes by peer */
	char banned[BANNED_MAX][64];
	size_t n_banned;
	pthread_t thread;
};

static void mark_dropped(struct fs_sync *s, uint64_t peer);
static bool is_dropped(const struct fs_sync *s, uint64_t peer);

static void op_send(uint64_t peer, const uint8_t *buf, size_t len, void *ctx)
{
	struct fs_sync *s = ctx;
	int err = fs_sync_send(s->drive_t, peer, buf, len);

	if (err == -ENOBUFS) { /* it does not read what it asks for */
		if (!is_dropped(s, peer))
			fs_warn("sync: member %llu does not read what it is sent: dropped",
			        (unsigned long long)peer);
		mark_dropped(s, peer);
		swarm_ext_drop(s->drive_t, peer);
	} else if (err < 0 && err != -ENOTCONN) {
		fs_warn("sync: cannot send %zu bytes to peer %llu: %s", len,
		        (unsigned long long)peer, strerror(-err));
	}
}

int fs_sync_send(struct swarm_torrent *t, uint64_t peer, const uint8_t *buf, size_t len)
{
	uint8_t *frag = malloc(1 + (len < FS_FRAG_MAX ? len : FS_FRAG_MAX));
	size_t off = 0;
	int err = frag ? 0 : -ENOMEM;

	do {
		size_t n = len - off < FS_FRAG_MAX ? len - off : FS_FRAG_MAX;

		if (err)
			break;
		frag[0] = off + n < len;
		memcpy(frag + 1, buf + off, n);
		err = swarm_ext_send(t, peer, frag, n + 1);
		off += n;
	} while (off < len);
	free(frag);
	return err;
}

/* ---- who may talk to the sync thread ---- */

/* Forget what a peer still has queued, and everything it sends until it is gone. Sync
 * thread only. */
static void mark_dropped(struct fs_sync *s, uint64_t peer)
{
	if (s->n_dropped == DROPPED_MAX) /* the oldest are long gone */
		memmove(s->dropped, s->dropped + 1, --s->n_dropped * sizeof *s->dropped);
	s->dropped[s->n_dropped++] = peer;
	fs_frames_forget(s->frames, peer);
}

static bool is_dropped(const struct fs_sync *s, uint64_t peer)
{
	for (size_t i = 0; i < s->n_dropped; i++)
		if (s->dropped[i] == peer)
			return true;
	return false;
}

static bool is_banned(struct fs_sync *s, const char *host)
{
	bool b = false;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_banned && !b; i++)
		b = !strcmp(s->banned[i], host);
	pthread_mutex_unlock(&s->mu);
	return b;
}

/* Keep host out for the rest of the mount: it sent invalid data. */
static void ban(struct fs_sync *s, const char *host)
{
	if (is_banned(s, host))
		return;
	pthread_mutex_lock(&s->mu);
	if (s->n_banned < BANNED_MAX)
		snprintf(s->banned[s->n_banned++], sizeof s->banned[0], "%s", host);
	pthread_mutex_unlock(&s->mu);
	fs_warn("sync: %s is banned from this drive's channel until unmount", host);
}

static void op_drop(uint64_t peer, const char *why, bool misbehaved, void *ctx)
{
	struct fs_sync *s = ctx;
	char host[64];
	uint16_t port;

	/* the ledger said why at the level the reason deserves */
	fs_info("sync: dropping member %llu: %s", (unsigned long long)peer, why);
	if (misbehaved && swarm_ext_peer_addr(s->drive_t, peer, host, sizeof host, &port) == 0)
		ban(s, host);
	mark_dropped(s, peer);
	swarm_ext_drop(s->drive_t, peer);
}

static const struct ledger_sync_ops sync_ops = { op_send, op_drop };

/* Tell the session where the members on the channel listen: a torrent added for a
 * reader (dial_now) dials them as it starts, where fs_sync_connect's dials would wait
 * for libtorrent's once-a-second round. Sync thread, after members changed, without mu. */
static void publish_members(struct fs_sync *s)
{
	char(*buf)[80] = NULL;
	const char **list = NULL;
	size_t n = 0;
	bool none;

	pthread_mutex_lock(&s->mu);
	none = s->n_members == 0;
	if (!none && (buf = calloc(s->n_members, sizeof *buf)) &&
	    (list = calloc(s->n_members + 1, sizeof *list))) {
		for (size_t i = 0; i < s->n_members; i++) {
			const struct member *m = &s->members[i];

			if (!m->port)
				continue; /* an incoming peer that did not say where it listens */
			snprintf(buf[n], sizeof buf[n], strchr(m->host, ':') ? "[%s]:%u" : "%s:%u",
			         m->host, m->port);
			list[n] = buf[n];
			n++;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (none || list) /* out of memory: the list set before stands */
		swarm_session_set_peers(s->d->swarm, list);
	free(list);
	free(buf);
}

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
	publish_members(s);
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
	publish_members(s);
}

/* Take the first queued event and give back its bytes of the peer's share. mu held. */
static struct sync_event *pop_event(struct fs_sync *s)
{
	struct sync_event *ev = s->head;

	s->head = ev->next;
	if (!s->head)
		s->tail = NULL;
	s->queued -= ev->len;
	for (size_t i = 0; i < QPEERS_MAX; i++) {
		if (s->qpeers[i].bytes && s->qpeers[i].peer == ev->peer) {
			s->qpeers[i].bytes -= ev->len;
			break;
		}
	}
	return ev;
}

/* One event, on the sync thread without mu. */
static void handle_event(struct fs_sync *s, struct sync_event *ev)
{
	uint8_t *msg;
	size_t len;
	char host[64];
	uint16_t port;
	int rc;

	if (ev->kind == 0) {
		if (swarm_ext_peer_addr(s->drive_t, ev->peer, host, sizeof host, &port) == 0 &&
		    is_banned(s, host)) {
			fs_info("sync: %s is banned: dropping it at once", host);
			mark_dropped(s, ev->peer);
			swarm_ext_drop(s->drive_t, ev->peer);
			return;
		}
		member_up(s, ev->peer);
		ledger_sync_peer_connected(s->ls, ev->peer);
	} else if (ev->kind == 1) {
		member_down(s, ev->peer);
		fs_frames_forget(s->frames, ev->peer);
		ledger_sync_peer_gone(s->ls, ev->peer);
		for (size_t i = 0; i < s->n_dropped; i++) /* its id never comes again */
			if (s->dropped[i] == ev->peer)
				s->dropped[i] = s->dropped[--s->n_dropped];
	} else if (is_dropped(s, ev->peer)) {
		fs_debug("sync: a message of dropped peer %llu discarded",
		         (unsigned long long)ev->peer);
	} else if ((rc = fs_frames_add(s->frames, ev->peer, ev->msg, ev->len, now_ms(), &msg,
	                               &len)) == 1) {
		ledger_sync_message(s->ls, ev->peer, msg, len);
		free(msg);
	} else if (rc < 0) {
		op_drop(ev->peer,
		        rc == -EBADMSG  ? "a malformed or oversized fragment"
		        : rc == -ENOSPC ? "unfinished messages over their total cap"
		                        : "out of memory",
		        rc != -ENOMEM, s);
	}
}

/* Rank the members on the channel now by their credit (fs/rank). */
static void rank_tick(struct fs_sync *s, const struct fs_credit_peer *v, size_t n)
{
	struct fs_rank_member *m = n ? calloc(n, sizeof *m) : NULL;
	size_t k = 0;

	if (!s->rank || (n && !m))
		return;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].port || ledger_sync_peer_key(s->ls, v[i].peer, m[k].key))
			continue; /* not through its handshake yet, or not dialable */
		memcpy(m[k].host, v[i].host, sizeof m[k].host);
		m[k++].port = v[i].port;
	}
	fs_rank_update(s->rank, s->d, m, k);
	free(m);
}

/* Receipts due and credit records (fs/credit), with the members on the channel now. */
static void credit_tick(struct fs_sync *s)
{
	struct fs_credit_peer *v = NULL;
	size_t n = 0;

	if (!s->credit && fs_credit_new(&s->credit) < 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->n_members && (v = calloc(s->n_members, sizeof *v)))
		for (; n < s->n_members; n++) {
			v[n].peer = s->members[n].peer;
			memcpy(v[n].host, s->members[n].host, sizeof v[n].host);
			v[n].port = s->members[n].port;
		}
	pthread_mutex_unlock(&s->mu);
	fs_credit_tick(s->credit, s->d, s->ls, v, n);
	rank_tick(s, v, n);
	free(v);
}

/* The periodic tick's period in ms: ANNOUNCE_EVERY_S, or SWARMFS_TEST_TICK_S's seconds
 * (a test that must tell what a ledger change does from what the tick does). */
static int64_t tick_ms(void)
{
	const char *t = getenv("SWARMFS_TEST_TICK_S");
	long v = t ? strtol(t, NULL, 10) : 0;

	return (v > 0 ? v : ANNOUNCE_EVERY_S) * 1000;
}

static void *sync_main(void *arg)
{
	struct fs_sync *s = arg;
	int64_t next_tick = now_ms(), last_announce = 0, period = tick_ms();

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
		if (announce)
			s->kicked = false;
		/* one message at a time, the stop flag looked at between them: an unmount
		 * never waits for a flood's backlog */
		int64_t busy_until = now_ms() + 100;

		while (s->head && !s->stop && now_ms() < busy_until) {
			struct sync_event *ev = pop_event(s);

			pthread_mutex_unlock(&s->mu);
			handle_event(s, ev);
			free(ev);
			pthread_mutex_lock(&s->mu);
		}
		pthread_mutex_unlock(&s->mu);
		for (uint64_t peer; fs_frames_expire(s->frames, now_ms(), &peer) == 1;)
			op_drop(peer, "a message left unfinished", true, s);
		if (announce && s->private_drive && now >= next_tick &&
		    !fs_join_tend(s->d, s->has_invite ? s->invite : NULL) && s->has_invite) {
			s->has_invite = false; /* a member now: no invite to prove */
			memset(s->invite, 0, sizeof s->invite);
			ledger_sync_set_invite(s->ls, NULL);
		}
		/* A ledger change may have made a member: the epoch keys this node holds are
		 * sealed to them now, not at the next tick. A member added a moment before
		 * it mounted waited for its key up to ANNOUNCE_EVERY_S: the first MiB of its
		 * first cold read took 0.6-1.7 s in 9 of 12 runs (/tmp harness), 19-35 ms
		 * now. Errors are the tick's to report. */
		if (announce && s->private_drive && now < next_tick)
			(void)ledger_keys_tend(s->d->ledger);
		if (announce && s->private_drive && now >= next_tick)
			credit_tick(s);
		if (announce) {
			ledger_sync_announce(s->ls);
			last_announce = now_ms();
			if (now >= next_tick)
				next_tick = last_announce + period;
		}
		struct ledger_sync_progress pr;

		ledger_sync_progress(s->ls, &pr);
		pthread_mutex_lock(&s->mu);
		s->info.peers = (uint32_t)pr.peers; /* the rest of info is set once */
		s->info.best_height = pr.best_height;
		s->info.behind = pr.behind;
		memcpy(s->info.refused, pr.refused, sizeof s->info.refused);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void push_event(struct fs_sync *s, int kind, uint64_t peer, const void *msg, size_t len)
{
	struct sync_event *ev;
	struct peer_bytes *pb = NULL, *free_slot = NULL;

	pthread_mutex_lock(&s->mu);
	if (s->stop) { /* unmounting: nobody will read it */
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (kind == 2) {
		for (size_t i = 0; i < QPEERS_MAX && !pb; i++) {
			if (s->qpeers[i].bytes && s->qpeers[i].peer == peer)
				pb = &s->qpeers[i];
			else if (!s->qpeers[i].bytes && !free_slot)
				free_slot = &s->qpeers[i];
		}
		if (!pb && free_slot)
			*(pb = free_slot) = (struct peer_bytes){ peer, 0 };
		/* a peer that sends faster than we apply is cut off, not buffered */
		if (!pb || pb->bytes + len > QUEUE_PEER_MAX || s->queued + len > QUEUE_TOTAL_MAX) {
			/* said once a peer: its messages already in flight arrive here too */
			bool first = s->capped != peer;

			s->capped = peer;
			pthread_mutex_unlock(&s->mu);
			if (first)
				fs_warn("sync: member %llu sends faster than the drive can take: "
				        "dropped",
				        (unsigned long long)peer);
			swarm_ext_drop(s->drive_t, peer);
			return;
		}
	}
	ev = malloc(sizeof *ev + (kind == 2 ? len : 0));
	if (!ev) {
		pthread_mutex_unlock(&s->mu);
		fs_err("sync: out of memory: dropping member %llu", (unsigned long long)peer);
		swarm_ext_drop(s->drive_t, peer);
		return;
	}
	ev->next = NULL;
	ev->peer = peer;
	ev->kind = kind;
	ev->len = kind == 2 ? len : 0;
	if (kind == 2) {
		memcpy(ev->msg, msg, len);
		pb->bytes += len;
		s->queued += len;
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

struct fs_rank *fs_sync_rank(struct fs_drive *d)
{
	return d->sync ? d->sync->rank : NULL;
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

/* Write the drive torrent's file, unless it is there with these bytes. */
static int write_drive_file(const char *dir, const char *name, const uint8_t *g, size_t len)
{
	char path[4400];
	void *have = NULL;
	size_t have_len = 0;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (fs_read_file(path, FS_SYNC_GENESIS_MAX, &have, &have_len) == 0) {
		bool same = have_len == len && !memcmp(have, g, len);

		free(have);
		if (same)
			return 0;
	}
	return fs_write_file(path, g, len);
}

static int start_with(struct fs_drive *d, const char *dir, uint8_t *torrent, size_t tlen);

int fs_sync_start(struct fs_drive *d)
{
	uint8_t *genesis = NULL, *torrent = NULL, id[32], content[32];
	size_t glen = 0, tlen = 0;
	bool priv = ledger_is_private(d->ledger);
	char dir[4200];
	int err;

	if ((err = ledger_genesis_raw(d->ledger, &genesis, &glen)) < 0)
		return err;
	if (!priv && glen > FS_SYNC_GENESIS_MAX) {
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
	if (!err && priv) {
		/* the torrent only finds the members; the genesis goes over the channel */
		fs_sync_private_content(id, content);
		err = write_drive_file(dir, PRIVATE_NAME, content, sizeof content);
		if (!err)
			err = fs_sync_private_torrent(id, &torrent, &tlen);
	} else if (!err) {
		err = write_drive_file(dir, GENESIS_NAME, genesis, glen);
		if (!err)
			err = fs_sync_drive_torrent(id, glen, &torrent, &tlen);
	}
	free(genesis);
	if (err) {
		fs_err("cannot make the drive torrent in %s: %s", dir, strerror(-err));
		free(torrent);
		return err;
	}
	return start_with(d, dir, torrent, tlen);
}

/* Seed the drive torrent (takes torrent) from dir and start the sync thread. */
static int start_with(struct fs_drive *d, const char *dir, uint8_t *torrent, size_t tlen)
{
	struct swarm_add_params ap = { 0 };
	struct fs_sync *s;
	int err;

	s = calloc(1, sizeof *s);
	if (!s) {
		free(torrent);
		return -ENOMEM;
	}
	s->d = d;
	s->private_drive = ledger_is_private(d->ledger);
	if (fs_frames_new(&s->frames) < 0 || fs_rank_new(&s->rank) < 0) {
		fs_frames_free(s->frames);
		free(s);
		free(torrent);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	err = ledger_sync_new(d->ledger, &sync_ops, s, &s->ls);
	if (!err && s->private_drive && fs_join_invite_load(d->dir, s->invite) == 0) {
		s->has_invite = true;
		ledger_sync_set_invite(s->ls, s->invite);
	}
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
	fs_frames_free(s->frames);
	fs_credit_free(s->credit);
	fs_rank_free(s->rank);
	free(s->wanting);
	free(s->members);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}
