/* swarmfs mount FILE.torrent|MAGNET: one torrent, read-only. See torrentfs.h. */
#include "torrentfs.h"

#include "drive.h"
#include "engine.h"
#include "fs.h"
#include "import.h"
#include "park.h"
#include "torrent_arg.h"
#include "xattr.h"

#include <cache.h>
#include <swarm.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define XATTR_PREFIX "user.swarmfs."
#define TTL          86400.0 /* a torrent's tree never changes */

struct tnode {
	char *name;
	fuse_ino_t parent;
	bool dir;
	uint32_t file; /* index among the torrent's real files */
	uint64_t size;
	fuse_ino_t *kids;
	uint32_t n_kids, cap_kids;
};

struct tfs {
	struct fs_engine *e;
	struct fs_engine_torrent *t;
	struct swarm_metainfo *m;
	struct tnode *nodes; /* inode i is nodes[i - 1]; immutable once mounted */
	size_t n_nodes, cap_nodes;
	char hex[65]; /* the infohash shown: v2, else v1 */
	int timeout_ms;
	uint64_t cache_size;
	char *cache_dir;
	time_t mtime;
	uid_t uid;
	gid_t gid;
};

/* ---- the tree ---- */

static int node_add(struct tfs *fs, fuse_ino_t parent, const char *name, size_t len, bool dir,
                    fuse_ino_t *out)
{
	struct tnode *p, *n;

	if (fs->n_nodes == fs->cap_nodes) {
		size_t nc = fs->cap_nodes ? fs->cap_nodes * 2 : 64;
		struct tnode *nn = realloc(fs->nodes, nc * sizeof *nn);

		if (!nn)
			return -ENOMEM;
		fs->nodes = nn;
		fs->cap_nodes = nc;
	}
	n = &fs->nodes[fs->n_nodes];
	memset(n, 0, sizeof *n);
	if (!(n->name = strndup(name, len)))
		return -ENOMEM;
	n->parent = parent;
	n->dir = dir;
	fs->n_nodes++;
	*out = fs->n_nodes;
	if (parent) {
		p = &fs->nodes[parent - 1];
		if (p->n_kids == p->cap_kids) {
			uint32_t nc = p->cap_kids ? p->cap_kids * 2 : 8;
			fuse_ino_t *nk = realloc(p->kids, nc * sizeof *nk);

			if (!nk)
				return -ENOMEM;
			p->kids = nk;
			p->cap_kids = nc;
		}
		p->kids[p->n_kids++] = *out;
	}
	return 0;
}

static fuse_ino_t child(const struct tfs *fs, fuse_ino_t dir, const char *name, size_t len)
{
	const struct tnode *d = &fs->nodes[dir - 1];

	for (uint32_t i = 0; i < d->n_kids; i++) {
		const char *k = fs->nodes[d->kids[i] - 1].name;

		if (strlen(k) == len && !memcmp(k, name, len))
			return d->kids[i];
	}
	return 0;
}

/* The root, then each file's path ("name/dir/file", or "name" for one file) with the
 * directories on the way. */
static int tree_build(struct tfs *fs)
{
	fuse_ino_t root, at;
	int err = node_add(fs, 0, "", 0, true, &root);

	for (uint32_t i = 0; !err && i < fs->m->num_files; i++) {
		const char *p = fs->m->files[i].path;

		at = root;
		while (!err && *p) {
			size_t len = strcspn(p, "/");
			bool last = p[len] == '\0';
			fuse_ino_t c = child(fs, at, p, len);

			if (!c && !(len == 0 || (len == 1 && *p == '.') ||
			            (len == 2 && !strncmp(p, "..", 2))))
				err = node_add(fs, at, p, len, !last, &c);
			if (!err && c && last) {
				fs->nodes[c - 1].file = i;
				fs->nodes[c - 1].size = fs->m->files[i].size;
			}
			at = c ? c : at;
			p += len + !last;
		}
	}
	return err;
}

static struct tfs *tfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct tnode *node_of(struct tfs *fs, fuse_ino_t ino)
{
	return ino >= 1 && ino <= fs->n_nodes ? &fs->nodes[ino - 1] : NULL;
}

static void node_stat(const struct tfs *fs, fuse_ino_t ino, struct stat *st)
{
	const struct tnode *n = &fs->nodes[ino - 1];

	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_mode = n->dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = n->dir ? 2 : 1;
	st->st_size = (off_t)n->size;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_blksize = 4096;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_mtime = st->st_ctime = st->st_atime = fs->mtime;
}

/* ---- handlers: the tree ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tfs *fs = tfs_of(req);
	struct tnode *p = node_of(fs, parent);
	struct fuse_entry_param ep;
	fuse_ino_t c;

	if (!p || !p->dir) {
		fuse_reply_err(req, p ? ENOTDIR : ENOENT);
		return;
	}
	if (!(c = child(fs, parent, name, strlen(name)))) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&ep, 0, sizeof ep);
	ep.ino = c;
	ep.attr_timeout = ep.entry_timeout = TTL;
	node_stat(fs, c, &ep.attr);
	fuse_reply_entry(req, &ep);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tfs *fs = tfs_of(req);
	struct stat st;

	(void)fi;
	if (!node_of(fs, ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	node_stat(fs, ino, &st);
	fuse_reply_attr(req, &st, TTL);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct tfs *fs = tfs_of(req);
	struct tnode *d = node_of(fs, ino);
	char *buf;
	size_t used = 0;

	(void)fi;
	if (!d || !d->dir) {
		fuse_reply_err(req, d ? ENOTDIR : ENOENT);
		return;
	}
	if (!(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* offsets: 1 ".", 2 "..", 3 + i the i-th child */
	for (off_t i = off; i < (off_t)d->n_kids + 2; i++) {
		struct stat st = { 0 };
		const char *name = i == 0   ? "."
		                   : i == 1 ? ".."
		                            : fs->nodes[d->kids[i - 2] - 1].name;
		fuse_ino_t e = i == 0   ? ino
		               : i == 1 ? (d->parent ? d->parent : ino)
		                        : d->kids[i - 2];
		size_t n;

		st.st_ino = e;
		st.st_mode = fs->nodes[e - 1].dir ? S_IFDIR : S_IFREG;
		n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* ---- handlers: reads ---- */

/* An open file is a struct fs_fh (fs/park: its parked reads; no drive, no cipher). */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tfs *fs = tfs_of(req);
	struct tnode *n = node_of(fs, ino);
	struct fs_fh *h;
	int err;

	if (!n || n->dir) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!(h = fs_fh_new(fs_engine_cache(fs->e), fs->timeout_ms))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->has_content = n->size > 0;
	h->length = n->size;
	if (n->size && ((err = fs_engine_reader_new(fs->t, n->file, &h->reader)) < 0 ||
	                (err = fs_engine_file_where(fs->t, n->file, h->key, &h->base)) < 0)) {
		fs_engine_reader_free(h->reader);
		h->reader = NULL;
		fs_fh_put(h);
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = 1; /* content never changes */
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct fs_fh *h = (struct fs_fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (!h->has_content || (uint64_t)off >= h->length) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((uint64_t)off + size > h->length)
		size = (size_t)(h->length - (uint64_t)off);
	fs_read_park(req, NULL, h, off, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_fh *h = (struct fs_fh *)(uintptr_t)fi->fh;

	(void)ino;
	/* parked reads that were interrupted still wait in the engine: freeing the
	 * reader cancels them; h goes with the last of them */
	fs_engine_reader_free(h->reader);
	h->reader = NULL;
	fs_fh_put(h);
	fuse_reply_err(req, 0);
}

/* ---- xattrs: infohash, cached, peers ---- */

static const char xattr_list[] =
    XATTR_PREFIX "infohash\0" XATTR_PREFIX "cached\0" XATTR_PREFIX "peers";

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct tfs *fs = tfs_of(req);
	struct tnode *n = node_of(fs, ino);
	char val[96];
	int len = -1;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strncmp(name, XATTR_PREFIX, sizeof XATTR_PREFIX - 1)) {
		fuse_reply_err(req, fs_xattr_absent(name));
		return;
	}
	name += sizeof XATTR_PREFIX - 1;
	if (!strcmp(name, "infohash")) {
		len = snprintf(val, sizeof val, "%s", fs->hex);
	} else if (!strcmp(name, "peers")) {
		struct swarm_torrent_stats ts = { 0 };

		swarm_torrent_stats(fs_engine_torrent_swarm(fs->t), &ts);
		len = snprintf(val, sizeof val, "%u", ts.peers);
	} else if (!strcmp(name, "cached") && !n->dir) {
		uint8_t key[CACHE_KEY_LEN];
		uint64_t base, bytes = 0;

		if (n->size && fs_engine_file_where(fs->t, n->file, key, &base) == 0)
			bytes = fs_engine_cached(fs_engine_cache(fs->e), key, base, n->size);
		len = snprintf(val, sizeof val, "%llu", (unsigned long long)bytes);
	}
	if (len < 0)
		fuse_reply_err(req, ENODATA);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if ((size_t)len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, (size_t)len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct tnode *n = node_of(tfs_of(req), ino);
	/* directories: infohash and peers; files: cached too */
	size_t len = n && n->dir ? sizeof XATTR_PREFIX "infohash" + sizeof XATTR_PREFIX "peers"
	                         : sizeof xattr_list;
	static const char dir_list[] = XATTR_PREFIX "infohash\0" XATTR_PREFIX "peers";

	if (!n)
		fuse_reply_err(req, ENOENT);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, n->dir ? dir_list : xattr_list, len);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct tfs *fs = tfs_of(req);
	struct statvfs out;

	(void)ino;
	memset(&out, 0, sizeof out);
	out.f_bsize = out.f_frsize = 4096;
	out.f_blocks = fs->m->total_size / 4096 + 1;
	out.f_files = fs->n_nodes;
	out.f_namemax = 255;
	fuse_reply_statfs(req, &out);
}

static const struct fuse_lowlevel_ops tfs_ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
};

/* ---- the mount ---- */

bool fs_torrentfs_is_torrent(const char *arg)
{
	struct stat st;
	size_t n = strlen(arg);
	char first = 0;
	FILE *f;

	if (stat(arg, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	if (n > 8 && !strcmp(arg + n - 8, ".torrent"))
		return true;
	if ((f = fopen(arg, "rb"))) {
		first = (char)fgetc(f);
		fclose(f);
	}
	return first == 'd';
}

/* A magnet's trackers (tr=) and peers (x.pe=), percent-decoded, added to *v. */
static int magnet_list(const char *magnet, const char *key, char ***v)
{
	size_t klen = strlen(key);
	int err = 0;

	for (const char *p = strchr(magnet, '?'); !err && p && *p; p = strchr(p, '&')) {
		size_t len;
		char *val, *o;

		p++;
		len = strcspn(p, "&");
		if (len <= klen || strncmp(p, key, klen))
			continue;
		if (!(val = o = malloc(len - klen + 1)))
			return -ENOMEM;
		for (const char *s = p + klen; s < p + len; s++) {
			if (*s == '%' && s + 2 < p + len + 0 && isxdigit((unsigned char)s[1]) &&
			    isxdigit((unsigned char)s[2])) {
				char hx[3] = { s[1], s[2], 0 };
				*o++ = (char)strtol(hx, NULL, 16);
				s += 2;
			} else {
				*o++ = *s == '+' ? ' ' : *s;
			}
		}
		*o = '\0';
		err = fs_strv_add(v, val);
		free(val);
	}
	return err;
}

static void session_config(const struct fs_mount_opts *o, struct swarm_config *sc, char *iface,
                           size_t iface_len, char **trackers, char **peers)
{
	swarm_config_init(sc);
	if (fs_listen_parse(o->listen, iface, iface_len, &sc->listen_port) == 0)
		sc->listen_interface = *iface ? iface : NULL;
	sc->trackers = (const char *const *)trackers;
	sc->peers = (const char *const *)peers;
	sc->dht = o->dht;
	sc->dht_bootstrap = (const char *const *)o->dht_bootstrap;
	sc->lsd = o->lsd;
	sc->utp = o->utp;
	sc->upload_rate_limit = o->upload_limit;
	sc->fetch_timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : 30000;
	sc->log = fs_log_sink;
	sc->log_level = fs_log_enabled(LOG_DEBUG) ? LOG_DEBUG : LOG_NOTICE;
}

/* A magnet's .torrent bytes from the swarm, in a session of its own (before
 * daemonizing: threads do not survive its fork). Prints why not; returns the exit
 * code. */
static int fetch_metadata(const struct swarm_config *sc, const char *magnet, const char *dir,
                          void **out, size_t *out_len)
{
	struct swarm_session *s = NULL;
	struct swarm_torrent *t = NULL;
	struct swarm_metainfo *m = NULL;
	struct swarm_add_params ap = { .magnet = magnet, .save_path = dir };
	int err, code = 1;

	if ((err = swarm_session_new(sc, &s)) < 0 || (err = swarm_torrent_add(s, &ap, &t)) < 0) {
		fprintf(stderr, "swarmfs mount: cannot start a BitTorrent session: %s\n",
		        strerror(-err));
		swarm_session_free(s);
		return 1;
	}
	err = swarm_torrent_wait_metadata(t, FS_IMPORT_METADATA_MS);
	if (err == -ETIMEDOUT) {
		struct swarm_torrent_stats ts = { 0 };
		const char *h = strstr(magnet, "urn:btih:");

		h = h ? h + 9 : (h = strstr(magnet, "urn:btmh:")) ? h + 9 : magnet;
		swarm_torrent_stats(t, &ts);
		fprintf(stderr,
		        "swarmfs mount: no metadata for %.*s after %d s from %u peer%s (is anyone "
		        "seeding it?)\n",
		        (int)strcspn(h, "&"), h, FS_IMPORT_METADATA_MS / 1000, ts.peers,
		        ts.peers == 1 ? "" : "s");
		code = FS_EXIT_NO_METADATA;
	} else if (err == 0 && (err = swarm_torrent_metainfo(t, &m)) == 0 && m->torrent &&
	           (*out = malloc(m->torrent_len))) {
		memcpy(*out, m->torrent, m->torrent_len);
		*out_len = m->torrent_len;
		code = 0;
	} else {
		fprintf(stderr, "swarmfs mount: no metadata: %s\n", strerror(err ? -err : ENOMEM));
	}
	swarm_metainfo_free(m);
	swarm_torrent_remove(t, true);
	swarm_session_free(s);
	return code;
}

/* The directory of a torrent's cache: <home>/torrents/<the hash the argument names>. */
static int cache_dir(const struct fs_mount_opts *o, const struct swarm_metainfo *m,
                     const char *magnet, char **out)
{
	char *home = NULL, hex[65];
	int err = fs_home_resolve(o->home, &home);

	if (err < 0)
		return err;
	if (m) {
		uint8_t key[CACHE_KEY_LEN];

		fs_engine_key(m, key);
		swarm_hex(key, sizeof key, hex);
	} else {
		const char *h = strstr(magnet, "urn:btih:");

		h = h ? h + 9 : strstr(magnet, "urn:btmh:") + 13;
		snprintf(hex, sizeof hex, "%.*s", (int)strcspn(h, "&"), h);
		for (char *c = hex; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	err = asprintf(out, "%s/torrents/%s", home, hex) < 0 ? -ENOMEM : 0;
	free(home);
	if (!err && (err = fs_mkdirs(*out, 0700)) < 0) {
		free(*out);
		*out = NULL;
	}
	return err;
}

static int add_fuse_args(struct fuse_args *args, const struct fs_mount_opts *o, const char *name)
{
	char opt[512];
	int rc;

	snprintf(opt, sizeof opt,
	         "fsname=swarmfs-torrent:%s,subtype=swarmfs,ro,default_permissions",
	         name && *name && !strpbrk(name, ", \t\n\\") ? name : "torrent");
	rc = fuse_opt_add_arg(args, "swarmfs") || fuse_opt_add_arg(args, "-o") ||
	     fuse_opt_add_arg(args, opt);
	if (!rc && o->allow_other)
		rc = fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, "allow_other");
	if (!rc && o->debug)
		rc = fuse_opt_add_arg(args, "-d");
	for (char **p = o->fuse_opts; !rc && p && *p; p++)
		rc = fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, *p);
	return rc ? -ENOMEM : 0;
}

static int serve(struct tfs *fs, const struct fs_mount_opts *o, const struct swarm_config *sc,
                 const void *bytes, size_t len)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop;
	struct cache_config cc = { 0 };
	int rc = 1;

	if (add_fuse_args(&args, o, fs->m->name) < 0)
		goto out;
	se = fuse_session_new(&args, &tfs_ops, sizeof tfs_ops, fs);
	if (!se || fuse_set_signal_handlers(se) != 0) {
		fs_err("bad FUSE options");
		goto out;
	}
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		fs_err("cannot mount %s (is it an existing directory, and is /dev/fuse there?)",
		       o->mountpoint);
		goto out_signals;
	}
	if (!o->foreground && !o->debug)
		fs_log_use_syslog(true);
	if (fuse_daemonize(o->foreground || o->debug) != 0)
		goto out_unmount;
	/* threads only now: they do not survive daemonize's fork */
	cc.dir = fs->cache_dir;
	cc.cap = o->cache_size ? o->cache_size : CACHE_DEFAULT_SIZE;
	cc.log = fs_log_sink;
	cc.log_level = fs_log_enabled(LOG_DEBUG) ? LOG_DEBUG : LOG_NOTICE;
	if ((rc = fs_engine_new(sc, &cc, &fs->e)) < 0 ||
	    (rc = fs_engine_torrent_add(fs->e, bytes, len, true, &fs->t)) < 0) {
		fs_err("cannot start torrent %s: %s", fs->hex, strerror(-rc));
		rc = 1;
		goto out_unmount;
	}
	fs_info("mounted torrent %s (%s, %u files) at %s", fs->m->name, fs->hex, fs->m->num_files,
	        o->mountpoint);
	/* a Type=notify unit is started now (a no-op without $NOTIFY_SOCKET) */
	sd_notifyf(0, "READY=1\nSTATUS=torrent %s mounted at %s", fs->hex, o->mountpoint);
	rc = 1;
	if ((loop = fuse_loop_cfg_create())) {
		fuse_loop_cfg_set_max_threads(loop, 16);
		rc = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
		fuse_loop_cfg_destroy(loop);
	}
	fs_info("unmounting %s", o->mountpoint);
	sd_notify(0, "STOPPING=1");
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	/* the engine last: parked reads it cancels were answered or died with the
	 * session */
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	fs_engine_free(fs->e);
	return rc;
}

int fs_torrentfs_run(const struct fs_mount_opts *o)
{
	struct tfs fs = { .timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : 30000 };
	struct swarm_config sc;
	char src[4096], iface[64], **trackers = NULL, **peers = NULL, *scratch = NULL;
	const char *why = "";
	void *bytes = NULL;
	size_t len = 0;
	int code, err;

	code = fs_torrent_arg_check("mount", o->drive, src, sizeof src, &bytes, &len);
	if (code)
		return code;
	for (size_t i = 0; o->trackers && o->trackers[i]; i++)
		fs_strv_add(&trackers, o->trackers[i]);
	for (size_t i = 0; o->peers && o->peers[i]; i++)
		fs_strv_add(&peers, o->peers[i]);
	if (fs_torrent_arg_is_magnet(src) &&
	    (magnet_list(src, "tr=", &trackers) < 0 || magnet_list(src, "x.pe=", &peers) < 0)) {
		code = 1;
		goto out;
	}
	session_config(o, &sc, iface, sizeof iface, trackers, peers);
	if (fs_torrent_arg_is_magnet(src)) {
		if ((err = cache_dir(o, NULL, src, &fs.cache_dir)) < 0 ||
		    asprintf(&scratch, "%s/metadata", fs.cache_dir) < 0 ||
		    (err = fs_mkdirs(scratch, 0700)) < 0) {
			fprintf(stderr, "swarmfs mount: no data directory: %s (use --home)\n",
			        strerror(err < 0 ? -err : ENOMEM));
			code = 1;
			goto out;
		}
		/* a torrent whose metadata came before needs no swarm for it again */
		char saved[4200];
		snprintf(saved, sizeof saved, "%s/metadata.torrent", fs.cache_dir);
		if (fs_read_file(saved, 64 << 20, &bytes, &len) < 0) {
			if ((code = fetch_metadata(&sc, src, scratch, &bytes, &len)) != 0)
				goto out;
			fs_write_file(saved, bytes, len);
		}
		free(fs.cache_dir);
		fs.cache_dir = NULL;
	}
	if ((err = swarm_metainfo_parse(bytes, len, &fs.m, &why)) < 0) {
		fprintf(stderr, "swarmfs mount: %s: not a torrent file (%s)\n", o->drive, why);
		code = FS_EXIT_NOT_TORRENT;
		goto out;
	}
	char *cdir = NULL;
	if ((err = cache_dir(o, fs.m, src, &cdir)) < 0 ||
	    asprintf(&fs.cache_dir, "%s/cache", cdir) < 0) {
		fprintf(stderr, "swarmfs mount: no data directory: %s (use --home)\n",
		        strerror(err < 0 ? -err : ENOMEM));
		free(cdir);
		code = 1;
		goto out;
	}
	free(cdir);
	if (fs.m->has_v2)
		swarm_hex(fs.m->v2, 32, fs.hex);
	else
		swarm_hex(fs.m->v1, 20, fs.hex);
	fs.mtime = time(NULL);
	fs.uid = getuid();
	fs.gid = getgid();
	if (tree_build(&fs) < 0) {
		code = 1;
		goto out;
	}
	code = serve(&fs, o, &sc, bytes, len);
out:
	for (size_t i = 0; i < fs.n_nodes; i++) {
		free(fs.nodes[i].name);
		free(fs.nodes[i].kids);
	}
	free(fs.nodes);
	swarm_metainfo_free(fs.m);
	free(fs.cache_dir);
	free(scratch);
	free(bytes);
	fs_strv_free(trackers);
	fs_strv_free(peers);
	return code;
}
