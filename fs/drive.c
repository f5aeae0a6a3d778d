#define FUSE_USE_VERSION 312
#include "drive.h"
#include "join.h"

#include "fs.h"
#include "hosting.h"
#include "seedback.h"
#include "volunteer.h"
#include "inode.h"
#include "publish.h"
#include "sync.h"
#include "import_fetch.h"
#include "waiter.h"
#include "uri.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <cache.h>
#include <swarm.h>
#include "engine.h"
#include "filekey.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

static int ledger_path_of(const char *home, const char *id, char **out)
{
	return asprintf(out, "%s/drives/%s/ledger.db", home, id) < 0 ? -ENOMEM : 0;
}

/* A drive's name, read from its genesis without taking its lock: SQLite in WAL mode
 * lets us read while another process has the drive mounted. */
static int drive_name(const char *home, const char *id, char **out_name)
{
	struct ledger_config cfg = { 0 };
	struct ledger_params p;
	struct ledger *l;
	char *db;
	int err;

	if ((err = ledger_path_of(home, id, &db)) < 0)
		return err;
	cfg.path = db;
	err = access(db, F_OK) < 0 ? -errno : ledger_open(&cfg, &l);
	free(db);
	if (err < 0)
		return err;
	err = ledger_params_get(l, &p);
	if (err >= 0) {
		*out_name = strdup(p.name ? p.name : "");
		err = *out_name ? 0 : -ENOMEM;
		ledger_params_release(&p);
	}
	ledger_free(l);
	return err;
}

int fs_drive_resolve(const char *home, const char *drive, char out_hex[LEDGER_HEX_LEN])
{
	char drives[4096], found[LEDGER_HEX_LEN] = "";
	struct dirent *de;
	int matches = 0;
	DIR *dir;

	if (fs_uri_is_uri(drive)) {
		struct fs_uri u;
		const char *why = "";

		if (fs_uri_parse(drive, &u, &why) < 0) {
			fs_err("bad drive URI: %s", why);
			return -EINVAL;
		}
		memcpy(out_hex, u.drive_id, LEDGER_HEX_LEN);
		fs_uri_release(&u);
		return 0;
	}
	if (is_hex64(drive)) {
		for (int i = 0; i < 64; i++)
			out_hex[i] = (char)tolower((unsigned char)drive[i]);
		out_hex[64] = '\0';
		return 0;
	}
	snprintf(drives, sizeof drives, "%s/drives", home);
	dir = opendir(drives);
	if (!dir)
		return -ENOENT;
	while ((de = readdir(dir))) {
		char *name = NULL;

		if (!is_hex64(de->d_name) || drive_name(home, de->d_name, &name) < 0)
			continue;
		if (!strcmp(name, drive)) {
			matches++;
			memcpy(found, de->d_name, LEDGER_HEX_LEN);
		}
		free(name);
	}
	closedir(dir);
	if (matches > 1)
		return -EMLINK;
	if (!matches)
		return -ENOENT;
	memcpy(out_hex, found, LEDGER_HEX_LEN);
	return 0;
}

int fs_key_path(const char *home, const char *key, char **out_path)
{
	if (!key || !*key)
		key = "default";
	if (strchr(key, '/'))
		*out_path = strdup(key);
	else if (asprintf(out_path, "%s/keys/%s.key", home, key) < 0)
		*out_path = NULL;
	return *out_path ? 0 : -ENOMEM;
}

static void on_ledger_change(const char *path, void *ctx);

/* A record of ours lost to another member's (ledger_dropped): new content that lost its
 * path is published again beside it as NAME.conflict-<key8>, under this node's key, so
 * nothing is lost (on a private drive the same ciphertext, its file key wrapped anew);
 * a lost transfer or other change is reported. */
static void on_ledger_dropped(const struct ledger_dropped *x, void *ctx)
{
	struct fs_drive *d = ctx;
	char *alt = NULL;
	int err;

	if (x->type != LEDGER_REC_CLAIM && x->type != LEDGER_REC_UPDATE) {
		char to[LEDGER_HEX_LEN] = "";

		if (x->type == LEDGER_REC_TRANSFER)
			ledger_hex(x->to, LEDGER_KEY_LEN, to);
		fs_warn("this node's %s of %s%s%.16s lost to another member's change (%s); "
		        "'swarmfs log' shows what the chain holds",
		        x->type == LEDGER_REC_TRANSFER ? "transfer" : "change", x->path,
		        *to ? " to " : "", to, strerror(-x->reason));
		return;
	}
	struct ledger_op op = { .type = LEDGER_REC_CLAIM, .content = x->content };

	/* a private drive's ciphertext: its key and IV, as the lost record had them */
	if (x->has_file_key) {
		op.file_key = x->file_key;
		op.iv_nonce = x->iv_nonce;
	}
	err = fs_conflict_submit(d, &op, x->path, &alt);
	if (err < 0)
		fs_err("%s was published by another member first, and keeping this node's "
		       "content as a conflict copy failed: %s (its data stays in the cache)",
		       x->path, strerror(-err));
	else
		fs_warn("%s was published by another member first: this node's content is "
		        "kept as %s",
		        x->path, alt);
	free(alt);
}

int fs_conflict_submit(struct fs_drive *d, struct ledger_op *op, const char *path, char **out_alt)
{
	char key8[9], *alt = NULL;
	int err = -ENOMEM;

	ledger_hex(d->me, 4, key8);
	for (int n = 1; n < 100; n++) {
		free(alt);
		alt = NULL;
		if ((n == 1 ? asprintf(&alt, "%s.conflict-%s", path, key8)
		            : asprintf(&alt, "%s.conflict-%s-%d", path, key8, n)) < 0) {
			alt = NULL;
			err = -ENOMEM;
			break;
		}
		op->path = alt;
		err = ledger_submit(d->ledger, op, NULL);
		if (err != -EEXIST)
			break;
	}
	op->path = NULL;
	*out_alt = alt;
	return err;
}

int fs_listen_parse(const char *listen, char *iface, size_t iface_len, uint16_t *out_port)
{
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;

	*iface = '\0';
	*out_port = 0;
	if (!listen)
		return 0;
	if (!colon || *end || port < 0 || port > 65535 || (size_t)(colon - listen) >= iface_len) {
		fs_err("bad --listen '%s': want ADDR:PORT (port 0: any)", listen);
		return -EINVAL;
	}
	memcpy(iface, listen, (size_t)(colon - listen));
	iface[colon - listen] = '\0';
	*out_port = (uint16_t)port;
	return 0;
}

int fs_strv_add(char ***v, const char *s)
{
	size_t n = 0;
	char **nv;

	while (*v && (*v)[n]) {
		if (!strcmp((*v)[n], s))
			return 0;
		n++;
	}
	if (!(nv = realloc(*v, (n + 2) * sizeof *nv)))
		return -ENOMEM;
	*v = nv;
	if (!(nv[n] = strdup(s)))
		return -ENOMEM;
	nv[n + 1] = NULL;
	return 0;
}

void fs_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A probe's metadata came (swarm thread): the requests parked for it go on now. */
static void on_metadata(struct swarm_torrent *t, void *tctx, void *ctx)
{
	struct fs_drive *d = ctx;

	(void)t;
	(void)tctx;
	fs_waiter_kick(d->waiter); /* NULL before the waiter starts: nothing parked yet */
}

/* The engine: the cache in <dir>/cache and a BitTorrent session, wired together
 * (fs/engine). It starts threads: call it after fuse_daemonize(). */
static int open_engine(struct fs_drive *d, const struct fs_drive_opts *o)
{
	struct swarm_config cfg;
	struct cache_config cc = { 0 };
	char iface[256] = "", cdir[4200];
	int err;

	/* before the session: a peer may ask for a held torrent as soon as it listens */
	if ((err = fs_seedback_new(d, o->seed_max, &d->seedback)) < 0)
		return err;
	snprintf(cdir, sizeof cdir, "%s/cache", d->dir);
	cc.dir = cdir;
	cc.cap = d->cache_size;
	cc.log = fs_log_sink;
	cc.log_level = fs_log_enabled(LOG_DEBUG) ? LOG_DEBUG : LOG_NOTICE;
	swarm_config_init(&cfg);
	if ((err = fs_listen_parse(o->listen, iface, sizeof iface, &cfg.listen_port)) < 0)
		return err;
	cfg.listen_interface = *iface ? iface : NULL;
	/* members are found through the genesis's tracker hints, the drive's config (what
	 * the URI it was joined from said) and the command line */
	char **trackers = NULL, **peers = NULL;
	struct ledger_params gp;

	err = 0;
	if (ledger_params_get(d->ledger, &gp) >= 0) {
		for (size_t i = 0; !err && i < gp.n_trackers; i++)
			err = fs_strv_add(&trackers, gp.trackers[i]);
		ledger_params_release(&gp);
	}
	for (size_t i = 0; !err && o->trackers && o->trackers[i]; i++)
		err = fs_strv_add(&trackers, o->trackers[i]);
	for (size_t i = 0; !err && o->peers && o->peers[i]; i++)
		err = fs_strv_add(&peers, o->peers[i]);
	if (!err)
		err = fs_sync_config_load(d->dir, &trackers, &peers);
	if (err) {
		fs_strv_free(trackers);
		fs_strv_free(peers);
		return err;
	}
	d->trackers = trackers; /* the URI and magnet links name them too */
	cfg.trackers = (const char *const *)trackers;
	cfg.peers = (const char *const *)peers;
	cfg.dht = o->dht;
	cfg.upload_rate_limit = o->upload_limit;
	cfg.on_ext_peer = fs_sync_on_ext_peer;
	cfg.on_ext_message = fs_sync_on_ext_message;
	cfg.on_metadata = on_metadata;
	cfg.on_unknown = fs_seedback_on_unknown;
	cfg.cb_ctx = d;
	cfg.ext_max_message = LEDGER_SYNC_MAX_MSG;
	cfg.dht_bootstrap = o->dht_bootstrap;
	cfg.utp = o->utp;
	/* LSD, UPnP and NAT-PMP talk to the LAN and its router: never unasked */
	cfg.lsd = o->lsd;
	cfg.upnp = cfg.natpmp = false;
	cfg.fetch_timeout_ms = d->read_timeout_ms;
	cfg.log = fs_log_sink;
	cfg.log_level = fs_log_enabled(LOG_DEBUG) ? LOG_DEBUG : LOG_NOTICE;
	err = fs_engine_new(&cfg, &cc, &d->engine);
	fs_strv_free(peers);
	if (err < 0) {
		fs_err("cannot start the cache in %s and the BitTorrent session: %s", cdir,
		       strerror(-err));
		return err;
	}
	d->cache = fs_engine_cache(d->engine);
	d->swarm = fs_engine_session(d->engine);
	return 0;
}

int fs_seed(struct fs_drive *d, const void *torrent, size_t len, const uint8_t key[32],
            bool reading, struct fs_engine_torrent **out_t)
{
	struct fs_engine_torrent *t;
	int err;

	pthread_mutex_lock(&d->torrents_lock);
	/* one add at a time, so two opens of a file never race to add its torrent */
	for (size_t i = 0; i < d->n_torrents; i++) {
		if (!memcmp(d->torrents[i].key, key, 32)) {
			if (out_t)
				*out_t = d->torrents[i].t;
			pthread_mutex_unlock(&d->torrents_lock);
			return 0;
		}
	}
	err = fs_engine_torrent_add(d->engine, torrent, len, reading, &t);
	if (err == 0) {
		if (d->n_torrents == d->cap_torrents) {
			size_t ncap = d->cap_torrents ? d->cap_torrents * 2 : 16;
			struct fs_torrent *nt = realloc(d->torrents, ncap * sizeof *nt);

			if (nt) {
				d->torrents = nt;
				d->cap_torrents = ncap;
			}
		}
		if (d->n_torrents < d->cap_torrents) {
			memcpy(d->torrents[d->n_torrents].key, key, 32);
			d->torrents[d->n_torrents++].t = t;
		} else {
			fs_engine_torrent_remove(t);
			err = -ENOMEM;
		}
		if (!err && out_t)
			*out_t = t;
	}
	pthread_mutex_unlock(&d->torrents_lock);
	return err;
}

int fs_read_file(const char *path, size_t max, void **out, size_t *out_len)
{
	struct stat st;
	void *buf = NULL;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (size_t)st.st_size > max)
		err = -EFBIG;
	else if (!(buf = malloc((size_t)st.st_size)))
		err = -ENOMEM;
	else if (read(fd, buf, (size_t)st.st_size) != st.st_size)
		err = -EIO;
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*out_len = (size_t)st.st_size;
	return 0;
}

static int write_file(const char *path, const void *bytes, size_t len, bool sync)
{
	char tmp[4400];
	int fd, err = 0;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, bytes, len) != (ssize_t)len || (sync && fsync(fd) < 0))
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int fs_write_file(const char *path, const void *bytes, size_t len)
{
	return write_file(path, bytes, len, true);
}

int fs_write_file_unsynced(const char *path, const void *bytes, size_t len)
{
	return write_file(path, bytes, len, false);
}

void fs_torrent_path(const struct fs_drive *d, const uint8_t key[32], char *buf, size_t size)
{
	char hex[65];

	swarm_hex(key, 32, hex);
	snprintf(buf, size, "%s/torrents/%s.torrent", d->dir, hex);
}

static int save_torrent(struct fs_drive *d, const uint8_t key[32], const void *bytes, size_t len,
                        bool sync)
{
	char path[4200];

	fs_torrent_path(d, key, path, sizeof path);
	return write_file(path, bytes, len, sync);
}

int fs_save_torrent(struct fs_drive *d, const uint8_t key[32], const void *bytes, size_t len)
{
	return save_torrent(d, key, bytes, len, true);
}

int fs_save_torrent_unsynced(struct fs_drive *d, const uint8_t key[32], const void *bytes,
                             size_t len)
{
	char path[4200];
	struct stat st;
	int fd, err = 0;

	/* in place, without a temporary file and a rename (a publish batch of small files
	 * spent a tenth of its time here): the name is the infohash of the info dict
	 * inside, so a file of this name and size is this torrent already; a torn one
	 * (a crash before the batch's syncfs, so before any record signs it) is shorter
	 * and is written again, atomically, when its queue item is */
	fs_torrent_path(d, key, path, sizeof path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST)
		return stat(path, &st) == 0 && (size_t)st.st_size == len
		           ? 0
		           : save_torrent(d, key, bytes, len, false);
	if (fd < 0)
		return -errno;
	if (write(fd, bytes, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	close(fd);
	if (err < 0)
		unlink(path);
	return err;
}

int fs_magnet_key(const char *magnet, uint8_t out_key[32])
{
	const char *v2 = strstr(magnet, "urn:btmh:1220"), *v1 = strstr(magnet, "urn:btih:");
	uint8_t key[32] = { 0 };
	char hex[65];

	if (v2 && strlen(v2 + 13) >= 64 &&
	    ledger_unhex((snprintf(hex, sizeof hex, "%.64s", v2 + 13), hex), key, 32) == 0) {
		memcpy(out_key, key, 32);
		return 0;
	}
	if (v1 && strlen(v1 + 9) >= 40 &&
	    ledger_unhex((snprintf(hex, sizeof hex, "%.40s", v1 + 9), hex), key, 20) == 0) {
		memcpy(out_key, key, 32);
		return 0;
	}
	return -ENOENT;
}

int fs_saved_torrent(struct fs_drive *d, const uint8_t key[32], void **out, size_t *out_len)
{
	char path[4200];

	fs_torrent_path(d, key, path, sizeof path);
	return fs_read_file(path, 64 << 20, out, out_len);
}

int fs_fetch_metadata(struct fs_drive *d, const char *magnet, int timeout_ms, void **out,
                      size_t *out_len)
{
	struct swarm_add_params ap = { 0 };
	struct swarm_metainfo *m = NULL;
	struct swarm_torrent *t;
	uint8_t key[32];
	char dir[4200];
	int err;

	/* a torrent this node keeps already (by its v2 or v1 hash) is not fetched: the
	 * swarm holds one torrent per infohash, and it may be seeding that one */
	if (fs_magnet_key(magnet, key) == 0 && fs_saved_torrent(d, key, out, out_len) == 0)
		return 0;
	/* a throwaway torrent in a scratch directory: only its metadata is wanted */
	snprintf(dir, sizeof dir, "%s/staging/metadata", d->dir);
	mkdir(dir, 0700);
	ap.magnet = magnet;
	ap.save_path = dir;
	ap.dial_now = true; /* the caller waits */
	if ((err = swarm_torrent_add(d->swarm, &ap, &t)) < 0)
		return err;
	fs_sync_connect(d, t); /* the drive's members: the likeliest to have it */
	err = swarm_torrent_wait_metadata(t, timeout_ms);
	if (!err)
		err = swarm_torrent_metainfo(t, &m);
	if (!err && (!m->torrent || !m->torrent_len))
		err = -EIO;
	if (!err && !(*out = malloc(m->torrent_len)))
		err = -ENOMEM;
	if (!err) {
		memcpy(*out, m->torrent, m->torrent_len);
		*out_len = m->torrent_len;
	}
	swarm_metainfo_free(m);
	fs_sync_forget(d, t);
	swarm_torrent_remove(t, true);
	return err;
}

void fs_entry_content(struct fs_drive *d, struct ledger_entry *e)
{
	struct ledger_content c;

	if (e->is_dir || !e->content.length || e->content.has_file)
		return;
	if (ledger_record_content(d->ledger, e->record_id, &c) == 0 && c.has_file) {
		e->content.has_file = true;
		e->content.file_index = c.file_index;
		e->content.file_offset = c.file_offset;
	}
}

void fs_content_where(const struct ledger_content *c, uint8_t out_key[32], uint64_t *out_base)
{
	static const uint8_t zero[32];

	*out_base = 0;
	memcpy(out_key, c->ih2, 32);
	if (!c->has_file)
		return;                 /* a torrent of one file: its own key */
	if (!memcmp(c->root, zero, 32)) /* v1: the torrent's whole byte space */
		*out_base = c->file_offset;
	else
		fs_engine_file_key(c->ih2, c->file_index, out_key);
}

/* Whether the torrent m is the one e's record cites, and e's file is in it where the
 * record says. */
static bool torrent_matches(const struct swarm_metainfo *m, const struct ledger_entry *e,
                            bool v1only)
{
	const struct ledger_content *c = &e->content;
	uint32_t i = c->has_file ? c->file_index : 0;

	if (c->has_file ? (m->num_files <= i || m->files[i].offset != c->file_offset)
	                : m->num_files != 1)
		return false;
	if (m->files[i].size != c->length)
		return false;
	if (v1only)
		return m->has_v1 && !memcmp(m->v1, c->ih1, 20);
	return m->has_v2 && !memcmp(m->v2, c->ih2, 32) && m->files[i].has_root &&
	       !memcmp(m->files[i].root, c->root, 32);
}

ssize_t fs_content_read(struct fs_drive *d, const struct ledger_entry *e, uint64_t off, void *buf,
                        size_t len)
{
	struct ledger_entry full = *e;
	uint8_t key[32];
	uint64_t base;

	if (off >= e->content.length)
		return 0;
	if (len > e->content.length - off)
		len = (size_t)(e->content.length - off); /* not into the next file's bytes */
	fs_entry_content(d, &full);
	fs_content_where(&full.content, key, &base);
	return cache_read(d->cache, key, base + off, buf, len);
}

void fs_torrent_magnet(const struct ledger_entry *e, char out[256])
{
	static const uint8_t zero[32];
	char hex[65], h1[41];

	swarm_hex(e->content.ih2, 32, hex);
	if (!memcmp(e->content.root, zero, 32) && e->content.has_ih1) { /* v1 only */
		swarm_hex(e->content.ih1, 20, h1);
		snprintf(out, 256, "magnet:?xt=urn:btih:%s", h1);
	} else if (e->content.has_ih1) {
		swarm_hex(e->content.ih1, 20, h1);
		snprintf(out, 256, "magnet:?xt=urn:btmh:1220%s&xt=urn:btih:%s", hex, h1);
	} else
		snprintf(out, 256, "magnet:?xt=urn:btmh:1220%s", hex);
}

static bool record_v1only(const struct ledger_entry *e)
{
	static const uint8_t zero[32];

	return !memcmp(e->content.root, zero, 32) && e->content.has_ih1;
}

int fs_torrent_adopt(struct fs_drive *d, const struct ledger_entry *e, const void *bytes,
                     size_t len, bool save, struct fs_engine_torrent **out_t)
{
	struct swarm_metainfo *m = NULL;
	const char *why = NULL;
	char hex[65];
	int err;

	swarm_hex(e->content.ih2, 32, hex);
	err = swarm_metainfo_parse(bytes, len, &m, &why);
	/* the torrent must be the record's: same infohash, pieces root (v2), length and
	 * place of the file */
	if (!err && !torrent_matches(m, e, record_v1only(e))) {
		fs_err("torrent %s does not match its record (infohash, pieces root, length or "
		       "place of the file)",
		       hex);
		err = -EBADMSG;
	} else if (err) {
		fs_err("torrent %s: %s", hex, why ? why : strerror(-err));
	}
	if (!err && save && (err = fs_save_torrent(d, e->content.ih2, bytes, len)) < 0)
		fs_err("cannot keep torrent %s: %s", hex, strerror(-err));
	if (!err)
		err = fs_seed(d, bytes, len, e->content.ih2, true, out_t);
	if (!err)
		fs_sync_connect(d, fs_engine_torrent_swarm(*out_t));
	swarm_metainfo_free(m);
	return err;
}

int fs_torrent_local(struct fs_drive *d, const struct ledger_entry *e,
                     struct fs_engine_torrent **out_t)
{
	void *buf = NULL;
	size_t len = 0;
	int err;

	if ((*out_t = fs_torrent_find(d, e->content.ih2))) {
		/* added already (for another file of it, or seeded at mount): the record
		 * must still name what the torrent holds */
		struct swarm_metainfo *m = NULL;

		err = swarm_torrent_metainfo(fs_engine_torrent_swarm(*out_t), &m);
		if (err == 0 && !torrent_matches(m, e, record_v1only(e))) {
			char hex[65];

			swarm_hex(e->content.ih2, 32, hex);
			fs_err("torrent %s does not match its record (infohash, pieces root, "
			       "length or place of the file)",
			       hex);
			err = -EBADMSG;
		}
		swarm_metainfo_free(m);
		if (err < 0)
			*out_t = NULL;
		return err;
	}
	if ((err = fs_saved_torrent(d, e->content.ih2, &buf, &len)) < 0)
		return err; /* -ENOENT: its metadata must come from the swarm */
	err = fs_torrent_adopt(d, e, buf, len, false, out_t);
	free(buf);
	return err;
}

int fs_seed_v1(struct fs_drive *d, const void *torrent, size_t len, const uint8_t key[32])
{
	struct fs_engine_torrent *t;
	char data[4200], save[4200];
	int err = 0;

	pthread_mutex_lock(&d->torrents_lock); /* one add per object */
	for (size_t i = 0; i < d->n_v1; i++) {
		if (!memcmp(d->v1_keys[i], key, 32)) {
			pthread_mutex_unlock(&d->torrents_lock);
			return 0;
		}
	}
	err = cache_object_path(d->cache, key, data, sizeof data);
	if (err < 0) {
		pthread_mutex_unlock(&d->torrents_lock);
		return err;
	}
	snprintf(save, sizeof save, "%s", data);
	*strrchr(save, '/') = '\0';
	const char *paths[] = { data };
	struct swarm_add_params ap = {
		.torrent = torrent,
		.torrent_len = len,
		.save_path = save,
		.file_paths = paths,
		.seed = true,
	};
	err = fs_engine_torrent_add_plain(d->engine, &ap, &t);
	if (!err) {
		uint8_t(*nk)[32] = realloc(d->v1_keys, (d->n_v1 + 1) * 32);

		if (nk) {
			d->v1_keys = nk;
			memcpy(d->v1_keys[d->n_v1++], key, 32);
		}
	}
	pthread_mutex_unlock(&d->torrents_lock);
	return err == -EEXIST ? 0 : err;
}

int fs_v1_companion(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                    uint8_t out_v1[20])
{
	struct cache_object_info info;
	struct swarm_metainfo *m = NULL;
	char hex[65], saved[4200], link_dir[4200], link_path[4500], data[4200];
	char base[LEDGER_NAME_MAX + 1];
	void *buf = NULL;
	size_t len = 0;
	int err;

	if (!e->content.length || cache_object_stat(d->cache, e->content.ih2, &info) < 0 ||
	    !info.pinned || info.present != info.chunks)
		return -ENODATA; /* only the publisher holds it for sure, whole and pinned */
	if ((err = fs_content_name(d, path, e, base, sizeof base)) < 0)
		return err;
	swarm_hex(e->content.ih2, 32, hex);
	snprintf(saved, sizeof saved, "%s/torrents/v1-%s.torrent", d->dir, hex);
	err = fs_read_file(saved, 64 << 20, &buf, &len);
	if (err == -ENOENT) {
		/* the same bytes under the file's name (the name is in the info dict): a
		 * hard link to the cache file, hashed, then gone again */
		struct swarm_make_params mp = { .kind = SWARM_MAKE_V1,
			                        .piece_length = e->content.piece_length,
			                        .trackers = (const char *const *)d->trackers };

		snprintf(link_dir, sizeof link_dir, "%s/staging/v1-%s", d->dir, hex);
		snprintf(link_path, sizeof link_path, "%s/%s", link_dir, base);
		if ((err = cache_object_path(d->cache, e->content.ih2, data, sizeof data)) < 0)
			return err;
		if (mkdir(link_dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		unlink(link_path);
		err = link(data, link_path) < 0 ? -errno : 0;
		if (!err)
			err = swarm_metainfo_make(link_path, &mp, &m);
		unlink(link_path);
		rmdir(link_dir);
		if (!err && (err = fs_write_file(saved, m->torrent, m->torrent_len)) == 0)
			err = fs_read_file(saved, 64 << 20, &buf, &len);
		swarm_metainfo_free(m);
		m = NULL;
		if (err < 0) {
			fs_err("cannot make a v1 torrent of %s: %s", path, strerror(-err));
			return err;
		}
		fs_info("made a v1-only torrent of %s for clients without BEP 52", path);
	} else if (err < 0)
		return err;
	err = swarm_metainfo_parse(buf, len, &m, NULL);
	if (!err && (!m->has_v1 || m->num_files != 1 || m->files[0].size != e->content.length))
		err = -EBADMSG;
	if (!err)
		err = fs_seed_v1(d, buf, len, e->content.ih2);
	if (!err)
		memcpy(out_v1, m->v1, 20);
	swarm_metainfo_free(m);
	free(buf);
	return err;
}

struct fs_engine_torrent *fs_torrent_find(struct fs_drive *d, const uint8_t key[32])
{
	struct fs_engine_torrent *t = NULL;

	pthread_mutex_lock(&d->torrents_lock);
	for (size_t i = 0; i < d->n_torrents && !t; i++)
		if (!memcmp(d->torrents[i].key, key, 32))
			t = d->torrents[i].t;
	pthread_mutex_unlock(&d->torrents_lock);
	return t;
}

int fs_drive_uri(struct fs_drive *d, char **out_uri)
{
	return fs_drive_invite_uri(d, NULL, out_uri);
}

int fs_drive_invite_uri(struct fs_drive *d, const uint8_t *invite, char **out_uri)
{
	struct fs_uri u = { 0 };
	char peer[64];
	uint16_t port;

	if (invite) {
		memcpy(u.invite, invite, sizeof u.invite);
		u.has_invite = true;
	}

	memcpy(u.drive_id, d->id_hex, sizeof u.drive_id);
	u.name = d->name;
	u.genesis_len = fs_uri_genesis_len(d->ledger);
	u.private_drive = ledger_is_private(d->ledger);
	for (size_t i = 0; d->trackers && d->trackers[i] && u.n_trackers < FS_URI_MAX_LIST; i++)
		u.trackers[u.n_trackers++] = d->trackers[i];
	/* this node as a peer, when it listens on one address (any-address is no
	 * address a joiner can dial) */
	if (d->swarm && swarm_session_port(d->swarm, &port) == 0 && d->opts.listen &&
	    strncmp(d->opts.listen, "0.0.0.0:", 8) && d->opts.listen[0] != ':') {
		snprintf(peer, sizeof peer, "%.*s:%u",
		         (int)(strrchr(d->opts.listen, ':') - d->opts.listen), d->opts.listen,
		         port);
		if (fs_uri_peer_valid(peer) == 0)
			u.peers[u.n_peers++] = peer;
	}
	return fs_uri_format(&u, out_uri);
}

void fs_drive_changed(struct fs_drive *d, const char *path)
{
	on_ledger_change(path, d);
}

/* Join the drive a URI names: its genesis from the members, checked against the id, a
 * new ledger from it, and the URI's trackers and peers remembered in the drive's config.
 * The ledger fills in by sync once mounted. */
static int join(const struct fs_drive_opts *o, struct fs_drive *d, const struct ledger_config *cfg)
{
	struct fs_uri u;
	const char *why = NULL;
	uint8_t *g = NULL;
	size_t glen = 0;
	int err = fs_uri_parse(o->drive, &u, &why);

	if (err < 0) {
		fs_err("bad drive URI: %s", why ? why : strerror(-err));
		return err;
	}
	err = fs_sync_fetch_genesis(o, &u, d->key,
	                            o->read_timeout_ms > 0 ? o->read_timeout_ms : 60000, &g, &glen);
	if (!err)
		err = fs_sync_config_save(d->dir, &u);
	if (!err && u.has_invite && (err = fs_join_invite_save(d->dir, u.invite)) < 0)
		fs_err("cannot keep the invite in %s: %s", d->dir, strerror(-err));
	if (!err) {
		err = ledger_join(cfg, g, glen, &d->ledger);
		if (err < 0)
			fs_err("cannot join drive %s from its genesis block: %s", d->id_hex,
			       strerror(-err));
		else
			fs_info("joined drive %s; its ledger syncs once mounted", d->id_hex);
	}
	if (err < 0) {
		char path[4200];

		snprintf(path, sizeof path, "%s/config", d->dir);
		unlink(path);
		snprintf(path, sizeof path, "%s/invite", d->dir);
		unlink(path);
		unlink(cfg->path);
	}
	free(g);
	fs_uri_release(&u);
	return err;
}

static bool joins_private(const char *drive)
{
	struct fs_uri u;
	bool priv;

	if (fs_uri_parse(drive, &u, NULL) < 0)
		return false;
	priv = u.private_drive;
	fs_uri_release(&u);
	return priv;
}

/* Make and save a new key at keyfile (its directory 0700). */
static int make_key(const char *home, const char *keyfile, struct ledger_key **out)
{
	char *dir = NULL;
	int err = asprintf(&dir, "%s/keys", home) < 0 ? -ENOMEM : fs_mkdirs(dir, 0700);

	free(dir);
	if (!err)
		err = ledger_key_generate(out);
	if (!err && (err = ledger_key_save(*out, keyfile)) < 0) {
		ledger_key_free(*out);
		*out = NULL;
	}
	if (err < 0)
		fs_err("cannot make a key at %s: %s", keyfile, strerror(-err));
	else
		fs_notice("made a key for this node: %s", keyfile);
	return err;
}

int fs_drive_open(const struct fs_drive_opts *o, struct fs_drive **out_drive)
{
	struct fs_drive *d = calloc(1, sizeof *d);
	struct ledger_config cfg = { 0 };
	struct ledger_params params;
	char *db = NULL, *keyfile = NULL;
	long holder = 0;
	bool joining = false;
	int err;

	if (!d)
		return -ENOMEM;
	d->lock_fd = -1;
	pthread_mutex_init(&d->notify_lock, NULL);
	pthread_mutex_init(&d->torrents_lock, NULL);
	pthread_mutex_init(&d->add_lock, NULL);
	pthread_mutex_init(&d->bad_lock, NULL);
	pthread_cond_init(&d->notify_cond, NULL);
	d->uid = getuid();
	d->gid = getgid();
	d->home = strdup(o->home);
	if (!d->home) {
		err = -ENOMEM;
		goto fail;
	}
	err = fs_drive_resolve(o->home, o->drive, d->id_hex);
	if (err == -EMLINK) {
		fs_err("more than one drive in %s is named '%s': name it by its id", o->home,
		       o->drive);
		goto fail;
	}
	if (err < 0) {
		if (err == -ENOENT)
			fs_err("no drive '%s' in %s (make one with 'swarmfs init', or mount a "
			       "swarmfs:// URI)",
			       o->drive, o->home);
		goto fail;
	}
	if (asprintf(&d->dir, "%s/drives/%s", o->home, d->id_hex) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = ledger_path_of(o->home, d->id_hex, &db)) < 0)
		goto fail;
	if (access(db, F_OK) < 0) {
		err = -ENOENT;
		if (!fs_uri_is_uri(o->drive)) {
			fs_err("no drive %s in %s", d->id_hex, o->home);
			goto fail;
		}
		/* a drive not here yet: join it from the URI (below, once locked) */
		joining = true;
		if ((err = fs_mkdirs(d->dir, 0700)) < 0) {
			fs_err("cannot make %s: %s", d->dir, strerror(-err));
			goto fail;
		}
	}
	d->lock_fd = fs_drive_lock(d->dir, &holder);
	if (d->lock_fd == -EBUSY) {
		err = -EBUSY;
		fs_err("drive %s in %s is already mounted by process %ld", d->id_hex, o->home,
		       holder);
		goto fail;
	} else if (d->lock_fd < 0) {
		err = d->lock_fd;
		fs_err("cannot lock %s: %s", d->dir, strerror(-err));
		goto fail;
	}

	if ((err = fs_key_path(o->home, o->key, &keyfile)) < 0)
		goto fail;
	err = ledger_key_load(keyfile, &d->key);
	if (err == -ENOENT && joining && joins_private(o->drive)) {
		/* a private drive admits keys: the joiner's is made here, as init makes one */
		err = make_key(o->home, keyfile, &d->key);
		if (err < 0)
			goto fail;
	}
	if (err == -ENOENT && !o->key) {
		d->key = NULL; /* browse only: nothing to sign with */
		fs_info("no key at %s: mounting read-only", keyfile);
	} else if (err < 0) {
		fs_err("cannot load key %s: %s%s", keyfile, strerror(-err),
		       err == -EACCES ? " (it must be mode 0600)" : "");
		goto fail;
	} else
		ledger_key_public(d->key, d->me);

	cfg.path = db;
	cfg.log = fs_log_sink;
	cfg.log_level = fs_log_enabled(LOG_DEBUG) ? LOG_DEBUG : LOG_NOTICE;
	cfg.on_change = on_ledger_change;
	cfg.on_dropped = on_ledger_dropped;
	cfg.change_ctx = d;
	cfg.key = d->key;
	cfg.auto_produce = true;
	/* No cfg.gather_blocks: a change of a confirmed path (chmod, touch, an overwrite)
	 * must show at once, and ledger_lookup puts confirmed state before pending
	 * records. Publishing batches its records itself (fs/publish.c: one block a
	 * batch). */
	if (joining)
		err = join(o, d, &cfg);
	else
		err = ledger_open(&cfg, &d->ledger);
	if (err < 0 && joining) {
		goto fail; /* it said why; a retry joins again */
	} else if (err < 0) {
		fs_err("cannot open the ledger %s: %s", db, strerror(-err));
		goto fail;
	}
	if (ledger_params_get(d->ledger, &params) >= 0) {
		d->name = strdup(params.name ? params.name : "");
		ledger_params_release(&params);
	}
	if ((err = fs_inodes_new(&d->inodes)) < 0)
		goto fail;
	d->cache_size = o->cache_size ? o->cache_size : CACHE_DEFAULT_SIZE;
	d->read_timeout_ms = o->read_timeout_ms > 0 ? o->read_timeout_ms : 30000;
	d->opts = *o;
	free(db);
	free(keyfile);
	*out_drive = d;
	return 0;
fail:
	free(db);
	free(keyfile);
	fs_drive_close(d);
	return err;
}

void fs_drive_close(struct fs_drive *d)
{
	if (!d)
		return;
	d->closing = true; /* the seeding pass stops early */
	if (d->verify_running) {
		ledger_interrupt(d->ledger);          /* and the sweep */
		pthread_join(d->verify_thread, NULL); /* it uses the ledger */
	}
	fs_volunteer_stop(d);          /* it fetches through the engine and the waiter's probes */
	fs_seedback_stop(d->seedback); /* it adds torrents to the engine */
	fs_hosting_stop(d);
	fs_drive_notify_stop(d);
	fs_waiter_stop(d->waiter); /* answers what is parked; before the probes' session */
	fs_import_fetch_stop(d);   /* its torrents leave the session, its files the queue */
	fs_publish_stop(d);
	fs_sync_stop(d);
	fs_engine_free(d->engine);     /* its torrents and readers die with it */
	fs_waiter_free(d->waiter);     /* after the engine's last completion */
	fs_seedback_free(d->seedback); /* after the session's network thread */
	fs_sync_free(d);
	ledger_free(d->ledger);
	ledger_key_free(d->key);
	fs_inodes_free(d->inodes);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	for (size_t i = 0; i < d->notify_n; i++)
		free(d->notify_paths[i]);
	free(d->notify_paths);
	free(d->torrents);
	free(d->v1_keys);
	fs_strv_free(d->trackers);
	free(d->bad_records);
	free(d->bad_heights);
	pthread_mutex_destroy(&d->bad_lock);
	pthread_mutex_destroy(&d->torrents_lock);
	pthread_mutex_destroy(&d->add_lock);
	pthread_mutex_destroy(&d->notify_lock);
	pthread_cond_destroy(&d->notify_cond);
	free(d->name);
	free(d->dir);
	free(d->home);
	free(d);
}

/* ---- kernel cache invalidation ---- */

static void on_ledger_change(const char *path, void *ctx)
{
	struct fs_drive *d = ctx;
	char *copy;

	/* the ledger's normalized paths start with '/', the inode table's do not */
	while (path && *path == '/')
		path++;
	copy = strdup(path ? path : "");

	fs_sync_kick(d); /* the other members hear of it */
	if (!copy)
		return; /* the entry times out by itself; nothing else to do */
	pthread_mutex_lock(&d->notify_lock);
	if (d->notify_n == d->notify_cap) {
		size_t ncap = d->notify_cap ? d->notify_cap * 2 : 64;
		char **np = realloc(d->notify_paths, ncap * sizeof *np);

		if (!np) {
			pthread_mutex_unlock(&d->notify_lock);
			free(copy);
			return;
		}
		d->notify_paths = np;
		d->notify_cap = ncap;
	}
	d->notify_paths[d->notify_n++] = copy;
	pthread_cond_signal(&d->notify_cond);
	pthread_mutex_unlock(&d->notify_lock);
}

static void invalidate(struct fs_drive *d, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *parent = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
	const char *name = slash ? slash + 1 : path;
	uint64_t pino, ino;

	if (!parent)
		return;
	/* Only what the kernel holds needs telling; the rest it will ask for. */
	pino = fs_inodes_find(d->inodes, parent);
	ino = fs_inodes_find(d->inodes, path);
	if (pino && *name)
		fuse_lowlevel_notify_inval_entry(d->se, pino, name, strlen(name));
	if (ino)
		fuse_lowlevel_notify_inval_inode(d->se, ino, 0, 0);
	if (pino)
		fuse_lowlevel_notify_inval_inode(d->se, pino, 0, 0); /* its listing */
	free(parent);
}

/* The notifier thread also ticks block production, just after the top of each
 * second: records of members who are not producers wait in the mempool until a
 * producer makes a block, and with one producer per drive that is this node once a
 * second. (Local records of a producer are put in a block at once by the ledger's
 * auto_produce.) */
static const int PRODUCE_TICK_S = 1;

static void *notifier_main(void *arg)
{
	struct fs_drive *d = arg;
	struct timespec next;

	clock_gettime(CLOCK_REALTIME, &next);
	pthread_mutex_lock(&d->notify_lock);
	while (!d->notify_stop) {
		if (!d->notify_n) {
			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec >= next.tv_sec) {
				next.tv_sec = now.tv_sec + PRODUCE_TICK_S;
				next.tv_nsec = 2000000; /* block times are whole seconds */
				if (d->key && ledger_mempool_count(d->ledger) > 0) {
					pthread_mutex_unlock(&d->notify_lock);
					ledger_produce(d->ledger);
					pthread_mutex_lock(&d->notify_lock);
					continue;
				}
			}
			pthread_cond_timedwait(&d->notify_cond, &d->notify_lock, &next);
			continue;
		}
		char *path = d->notify_paths[--d->notify_n];

		pthread_mutex_unlock(&d->notify_lock);
		if (*path)
			invalidate(d, path);
		free(path);
		pthread_mutex_lock(&d->notify_lock);
	}
	pthread_mutex_unlock(&d->notify_lock);
	return NULL;
}

/* ---- the verification sweep ---- */

bool fs_drive_is_bad(struct fs_drive *d, const uint8_t record_id[LEDGER_ID_LEN], int64_t height)
{
	bool bad = false;

	pthread_mutex_lock(&d->bad_lock);
	for (size_t i = 0; i < d->n_bad_heights && !bad; i++)
		bad = d->bad_heights[i] == height;
	for (size_t i = 0; i < d->n_bad_records && !bad; i++)
		bad = !memcmp(d->bad_records[i], record_id, LEDGER_ID_LEN);
	pthread_mutex_unlock(&d->bad_lock);
	return bad;
}

bool fs_drive_any_bad(struct fs_drive *d)
{
	bool any;

	pthread_mutex_lock(&d->bad_lock);
	any = d->n_bad_heights || d->n_bad_records;
	pthread_mutex_unlock(&d->bad_lock);
	return any;
}

static void add_bad_record(struct fs_drive *d, const uint8_t id[LEDGER_ID_LEN])
{
	pthread_mutex_lock(&d->bad_lock);
	void *n = realloc(d->bad_records, (d->n_bad_records + 1) * LEDGER_ID_LEN);
	if (n) {
		d->bad_records = n;
		memcpy(d->bad_records[d->n_bad_records++], id, LEDGER_ID_LEN);
	}
	pthread_mutex_unlock(&d->bad_lock);
}

void fs_drive_mark_bad(struct fs_drive *d, const uint8_t record_id[LEDGER_ID_LEN], const char *path,
                       const char *why)
{
	char hex[LEDGER_HEX_LEN];

	if (fs_drive_is_bad(d, record_id, -2))
		return; /* known: logged once already */
	ledger_hex(record_id, LEDGER_ID_LEN, hex);
	fs_err("hiding %s: its record %s fails verification (%s); swarmfs verify tells more", path,
	       hex, why);
	add_bad_record(d, record_id);
	on_ledger_change(path, d);
}

static void on_problem(const struct ledger_problem *p, void *ctx)
{
	struct fs_drive *d = ctx;
	char hex[LEDGER_HEX_LEN];

	if (p->has_record) {
		ledger_hex(p->record_id, LEDGER_ID_LEN, hex);
		fs_err("hiding record %s (block %lld): %s", hex, (long long)p->height, p->what);
		add_bad_record(d, p->record_id);
	} else if (p->height >= 0) {
		fs_err("hiding every record of block %lld: %s", (long long)p->height, p->what);
		pthread_mutex_lock(&d->bad_lock);
		int64_t *n = realloc(d->bad_heights, (d->n_bad_heights + 1) * sizeof *n);
		if (n) {
			d->bad_heights = n;
			d->bad_heights[d->n_bad_heights++] = p->height;
		}
		pthread_mutex_unlock(&d->bad_lock);
	}
}

static void invalidate_each(const char *path, void *ctx)
{
	on_ledger_change(path, ctx);
}

/* How much nicer than the process a background thread is: it still finishes on a
 * busy machine, but a handler that wants the CPU gets about ten times its share. */
static const int BACKGROUND_NICE = 10;

void fs_thread_background(const char *what)
{
	id_t tid = (id_t)gettid();
	int nice;

	pthread_setname_np(pthread_self(), what); /* top -H, perf: which sweep */

	/* relative to the process's own: a mount started with nice(1) at 10 (as the
	 * benchmarks run) would otherwise leave its sweeps level with its handlers */
	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (nice == -1 && errno)
		nice = 0;
	nice = nice + BACKGROUND_NICE > 19 ? 19 : nice + BACKGROUND_NICE;
	if (setpriority(PRIO_PROCESS, tid, nice) < 0)
		fs_debug("%s: cannot lower its priority: %s", what, strerror(errno));
}

void fs_thread_idle(const char *what)
{
	struct sched_param sp = { .sched_priority = 0 };
	int err = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);

	if (err) {
		fs_debug("%s: no SCHED_IDLE: %s", what, strerror(err));
		fs_thread_background(what); /* names it too */
	} else
		pthread_setname_np(pthread_self(), what);
}

/* DESIGN.md §4: the state tables decide what is listed; this sweep re-checks the whole
 * chain from raw bytes once per mount, in the background, and hides what fails (an
 * open re-checks its own record in any case). A big drive takes seconds a 100k
 * records on one core; listings, lookups and status do not wait for it: it reads
 * through the ledger's query-only connection, never under the ledger's lock. */
static void *verify_main(void *arg)
{
	struct fs_drive *d = arg;
	int n;

	/* Background work: the handlers go first. On a 1M-record drive the sweep is
	 * minutes of signature checks; at the handlers' priority it took a core from
	 * find and stat on a fresh mount, and at nice 10 a cold ls -l still paid a
	 * wakeup behind it on each lookup (issue 18). */
	fs_thread_idle("sweep");
	n = ledger_verify_chain(d->ledger, on_problem, d);

	pthread_mutex_lock(&d->bad_lock);
	d->verify_done = true;
	d->verify_problems = n;
	pthread_mutex_unlock(&d->bad_lock);
	if (n == -EINTR)
		return NULL; /* unmounting */
	if (n < 0)
		fs_err("verifying the ledger failed: %s", strerror(-n));
	else if (n > 0) /* what the kernel holds may be what is hidden now */
		fs_inodes_each(d->inodes, invalidate_each, d);
	else
		fs_info("ledger verified: no problem");
	return NULL;
}

int fs_drive_start(struct fs_drive *d, struct fuse_session *se)
{
	int err;

	char tdir[4200];

	/* every mount keeps .torrent files: its own and those of what it reads */
	snprintf(tdir, sizeof tdir, "%s/torrents", d->dir);
	if (mkdir(tdir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		fs_err("cannot make %s: %s", tdir, strerror(-err));
		return err;
	}
	if ((err = open_engine(d, &d->opts)) < 0)
		return err;
	if ((err = fs_waiter_start(d, &d->waiter)) < 0) {
		fs_err("cannot start the waiter thread: %s", strerror(-err));
		return err;
	}
	if ((err = fs_sync_start(d)) < 0)
		return err;
	if ((err = fs_drive_notify_start(d, se)) < 0) {
		fs_err("cannot start the notifier thread: %s", strerror(-err));
		return err;
	}
	if (d->key && (err = fs_publish_start(d)) < 0) {
		fs_err("cannot start publishing: %s", strerror(-err));
		return err;
	}
	if ((err = -pthread_create(&d->verify_thread, NULL, verify_main, d)) < 0) {
		fs_err("cannot start the verification sweep: %s", strerror(-err));
		return err;
	}
	d->verify_running = true;
	if ((err = fs_seedback_start(d->seedback)) < 0) {
		fs_err("cannot start seeding what this node holds: %s", strerror(-err));
		return err;
	}
	if ((err = fs_hosting_start(d)) < 0) {
		fs_err("cannot start the hosting sweep: %s", strerror(-err));
		return err;
	}
	if (d->opts.volunteer && (err = fs_volunteer_start(d, d->opts.volunteer)) < 0) {
		fs_err("cannot start the volunteer: %s", strerror(-err));
		return err;
	}
	return 0;
}

int fs_drive_notify_start(struct fs_drive *d, struct fuse_session *se)
{
	int err;

	d->se = se;
	err = -pthread_create(&d->notify_thread, NULL, notifier_main, d);
	if (!err)
		d->notify_running = true;
	return err;
}

void fs_drive_notify_stop(struct fs_drive *d)
{
	if (!d->notify_running)
		return;
	pthread_mutex_lock(&d->notify_lock);
	d->notify_stop = true;
	pthread_cond_signal(&d->notify_cond);
	pthread_mutex_unlock(&d->notify_lock);
	pthread_join(d->notify_thread, NULL);
	d->notify_running = false;
}
