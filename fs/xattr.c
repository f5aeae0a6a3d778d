/*
 * The extended attributes of a mounted drive, user.swarmfs.*: facts of the ledger and
 * the swarm about a path (owner, record, height, status, root, infohash, magnet,
 * cached, progress, peers, holders), the mount's reports on its root (drive, drive-json,
 * drive-watch: swarmfs status), a path's history (log) and health (health), and the
 * verbs the commands set (transfer, add, member, pin, unpin). FUSE worker threads.
 */
#define FUSE_USE_VERSION 312
#include "xattr.h"

#include "content.h"
#include "drive.h"
#include "waiter.h"
#include "engine.h"
#include "filekey.h"
#include "fs.h"
#include "history.h"
#include "hosting.h"
#include "import.h"
#include "import_fetch.h"
#include "inode.h"
#include "credit.h"
#include "members.h"
#include "node.h"
#include "ops.h"
#include "status.h"

#include <cache.h>
#include <swarm.h>

#include <ctype.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XATTR_PREFIX "user.swarmfs."

/* Content imported from a v1-only torrent: no pieces root; its key (the content.ih2
 * field) is the v1 infohash zero-padded, as fs/engine keys it. */
static bool v1_only(const struct ledger_content *c)
{
	static const uint8_t zero[32];

	return c->length > 0 && c->has_ih1 && !memcmp(c->root, zero, 32);
}

static const char *const xattr_names[] = { "owner",    "record",   "height",  "status",
	                                   "root",     "infohash", "magnet",  "cached",
	                                   "progress", "peers",    "holders", NULL };

/* Percent-encode what a URI query value cannot carry as is. */
static void pct_append(char **buf, size_t *len, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c))
			fs_text_add(buf, len, "%c", c);
		else
			fs_text_add(buf, len, "%%%02X", c);
	}
}

/* magnet:?xt=urn:btih:<v1>&xt=urn:btmh:1220<v2>&dn=<name>&tr=<tracker>...: standard
 * clients (v1-only ones too) find the swarm through the drive's trackers (its tracker
 * hints, its config and the mount's --tracker). */
static int magnet_of(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                     const uint8_t *v1_companion, char **out)
{
	char hex[LEDGER_HEX_LEN], hex1[41], *buf = NULL, base[LEDGER_NAME_MAX + 1];
	size_t len = 0;
	/* a private file's torrent is named by its record's nonce, never by its path */
	int err = fs_content_name(d, path, e, base, sizeof base);

	if (err < 0)
		return err;
	ledger_hex(e->content.ih2, 32, hex);
	if (v1_companion) { /* magnet-v1: the v1-only companion torrent alone */
		ledger_hex(v1_companion, 20, hex1);
		fs_text_add(&buf, &len, "magnet:?xt=urn:btih:%s&dn=", hex1);
	} else if (v1_only(&e->content)) {
		ledger_hex(e->content.ih1, 20, hex1);
		fs_text_add(&buf, &len, "magnet:?xt=urn:btih:%s&dn=", hex1);
	} else if (e->content.has_ih1) {
		ledger_hex(e->content.ih1, 20, hex1);
		fs_text_add(&buf, &len, "magnet:?xt=urn:btih:%s&xt=urn:btmh:1220%s&dn=", hex1, hex);
	} else
		fs_text_add(&buf, &len, "magnet:?xt=urn:btmh:1220%s&dn=", hex);
	pct_append(&buf, &len, base);
	for (size_t i = 0; d->trackers && d->trackers[i]; i++) {
		fs_text_add(&buf, &len, "&tr=");
		pct_append(&buf, &len, d->trackers[i]);
	}
	if (!buf)
		return -ENOMEM;
	*out = buf;
	return (int)len;
}

/* user.swarmfs.progress: how much of the file this node holds, in whole percent (100
 * only when all of it is here; an empty file is complete). */
/* How many of e's bytes this node holds (a file within a torrent of several: its own
 * part of the torrent's object). */
static uint64_t cached_of(struct fs_drive *d, const struct ledger_entry *e)
{
	struct ledger_entry full = *e;
	uint8_t key[32];
	uint64_t base;

	if (!e->content.length)
		return 0;
	fs_entry_content(d, &full);
	fs_content_where(&full.content, key, &base);
	return fs_engine_cached(d->cache, key, base, e->content.length);
}

static int progress_of(struct fs_drive *d, const struct ledger_entry *e, char **out)
{
	uint64_t have = cached_of(d, e), len = e->content.length;

	return asprintf(out, "%u", len ? (unsigned)(have * 100 / len) : 100);
}

static int xattr_value(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                       const char *name, char **out)
{
	char hex[LEDGER_HEX_LEN];
	int n = -1;

	if (!strcmp(name, "owner")) {
		ledger_hex(e->owner, LEDGER_KEY_LEN, hex);
		n = asprintf(out, "%s", hex);
	} else if (!strcmp(name, "record")) {
		ledger_hex(e->record_id, LEDGER_ID_LEN, hex);
		n = asprintf(out, "%s", hex);
	} else if (!strcmp(name, "height")) {
		n = e->height < 0 ? asprintf(out, "pending")
		                  : asprintf(out, "%lld", (long long)e->height);
	} else if (!strcmp(name, "status")) {
		n = asprintf(out, "%s", e->height < 0 ? "pending" : "confirmed");
	} else if (!strcmp(name, "add-error")) { /* not listed: for swarmfs add */
		pthread_mutex_lock(&d->add_lock);
		n = d->add_error[0] ? asprintf(out, "%s", d->add_error) : -2;
		pthread_mutex_unlock(&d->add_lock);
		if (n == -2)
			return -ENODATA;
	} else if (e->is_dir) {
		return -ENODATA; /* content attributes are for files */
	} else if (!strcmp(name, "root")) {
		ledger_hex(e->content.root, 32, hex);
		n = asprintf(out, "%s", hex);
	} else if (!strcmp(name, "infohash")) {
		ledger_hex(e->content.ih2, 32, hex);
		n = asprintf(out, "%s", hex);
	} else if (!strcmp(name, "magnet")) {
		n = magnet_of(d, path, e, NULL, out);
	} else if (!strcmp(name, "magnet-v1")) { /* not listed: asking may hash the file */
		uint8_t v1[20];

		if ((n = fs_v1_companion(d, path, e, v1)) < 0)
			return n == -ENODATA ? -EREMOTE : n;
		n = magnet_of(d, path, e, v1, out);
	} else if (!strcmp(name, "cached")) {
		n = asprintf(out, "%llu", (unsigned long long)cached_of(d, e));
	} else if (!strcmp(name, "progress")) {
		n = progress_of(d, e, out);
	} else if (!strcmp(name, "peers")) {
		struct fs_engine_torrent *t = fs_torrent_find(d, e->content.ih2);
		struct swarm_torrent_stats ts = { 0 };

		if (t)
			swarm_torrent_stats(fs_engine_torrent_swarm(t), &ts);
		n = asprintf(out, "%u", ts.peers);
	} else if (!strcmp(name, "holders")) {
		if ((n = fs_holders_count(d, e)) >= 0)
			n = asprintf(out, "%d", n);
		else
			return n;
	} else
		return -ENODATA;
	return n < 0 ? -ENOMEM : n;
}

struct log_text {
	char *buf;
	size_t len;
};

static int log_line(const struct ledger_log_entry *e, void *ctx)
{
	struct log_text *t = ctx;
	char line[2 * LEDGER_PATH_MAX + 256];

	if (fs_history_line(e, line, sizeof line) >= (int)sizeof line)
		return 0; /* cannot happen: the fields are bounded */
	fs_text_add(&t->buf, &t->len, "%s", line);
	return t->len > 60000 ? 1 : 0; /* an xattr value holds 64 KiB */
}

static int log_text(struct fs_drive *d, const char *path, char **out)
{
	struct log_text t = { 0 };
	int err = ledger_history(d->ledger, path, log_line, &t);

	if (err < 0) {
		free(t.buf);
		return err;
	}
	if (!t.buf)
		t.buf = strdup("");
	*out = t.buf;
	return t.buf ? (int)t.len : -ENOMEM;
}

int fs_xattr_absent(const char *name)
{
	return strncmp(name, "user.", 5) ? ENOTSUP : ENODATA;
}

void fs_xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs_drive *d = fuse_req_userdata(req);
	struct ledger_entry e;
	char *path = NULL, *val = NULL;
	int err;

	if (strncmp(name, XATTR_PREFIX, sizeof XATTR_PREFIX - 1)) {
		fuse_reply_err(req, fs_xattr_absent(name));
		return;
	}
	name += sizeof XATTR_PREFIX - 1;
	if ((err = fs_inodes_path(d->inodes, ino, &path)) < 0)
		;
	else if (!strcmp(name, "drive"))
		err = *path ? -ENODATA : fs_status_text(d, &val);
	else if (!strcmp(name, "drive-json"))
		err = *path ? -ENODATA : fs_status_json(d, &val);
	else if (!strcmp(name, "drive-watch"))
		err = *path ? -ENODATA : fs_status_watch(d, &val);
	else if (!strcmp(name, "members"))
		err = *path ? -ENODATA : fs_members_text(d, &val);
	else if (!strcmp(name, "credit"))
		err = *path ? -ENODATA : fs_credit_text(d->ledger, &val);
	else if (!strncmp(name, "invite", 6) && (!name[6] || name[6] == '?')) {
		/* a verb read as an attribute, so the URI comes back in one call: the mount's
		 * owner only, and only when the caller gave room for the answer (the size
		 * probe makes nothing) */
		if (*path)
			err = -ENODATA;
		else if ((err = fs_caller_check(req)) < 0)
			;
		else if (size == 0)
			err = 4096;
		else
			err = fs_members_invite(d, name[6] ? name + 7 : "", &val);
	} else if (!strcmp(name, "log"))
		err = log_text(d, path, &val);
	else if (!strcmp(name, "health"))
		err = fs_health_text(d, path, &val);
	else if ((err = fs_entry_lookup(d, path, &e)) >= 0)
		err = xattr_value(d, path, &e, name, &val);
	if (err < 0) {
		fuse_reply_err(req, fs_kernel_errno(err));
	} else if (size == 0) {
		fuse_reply_xattr(req, (size_t)err);
	} else if ((size_t)err > size) {
		fuse_reply_err(req, ERANGE);
	} else
		fuse_reply_buf(req, val, (size_t)err);
	free(path);
	free(val);
}

void fs_xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_drive *d = fuse_req_userdata(req);
	struct ledger_entry e;
	char buf[512], *path;
	size_t len = 0;
	int err;

	if ((err = fs_inodes_path(d->inodes, ino, &path)) < 0 ||
	    (err = fs_entry_lookup(d, path, &e)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	free(path);
	for (int i = 0; xattr_names[i]; i++) {
		if (e.is_dir && i >= 4)
			break; /* owner, record, height, status */
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", XATTR_PREFIX,
		                        xattr_names[i]) +
		       1;
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
}

/* An add waiting for a magnet's metadata (the waiter's ctx). */
struct add_wait {
	struct fs_drive *d;
	char *dirpath, *name, *magnet;
};

/* The magnet's metadata came (or did not): claim, reply. Waiter thread. */
static void add_metadata(fuse_req_t req, int err, const void *torrent, size_t len, void *ctx)
{
	struct add_wait *a = ctx;

	if (err == 0)
		err = fs_import(a->d, a->dirpath, a->name, a->magnet, torrent, len);
	else
		fs_import_no_metadata(a->d, a->magnet, err);
	fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
	free(a->dirpath);
	free(a->name);
	free(a->magnet);
	free(a);
}

/* swarmfs add: user.swarmfs.add on a directory = "NAME\nSOURCE", SOURCE an absolute
 * .torrent path or a magnet link, NAME "" for the torrent's own name. fs/import.c
 * claims it (a torrent of several files: a tree), signed by this node's key, and keeps
 * the .torrent, so its files read like any other. A magnet's metadata comes from the
 * swarm: the request is parked with the waiter (fs/waiter) for the read timeout at
 * most (--read-timeout, 30 s by default), and the command waits for its answer. Into a
 * private drive, fs/import_fetch fetches the content whole and publishes it encrypted;
 * the command waits for that too. */
static void op_add(fuse_req_t req, struct fs_drive *d, fuse_ino_t ino, const char *value,
                   size_t size)
{
	struct ledger_entry pe;
	char *arg = strndup(value, size), *nl, *dirpath = NULL;
	const char *source;
	void *bytes = NULL;
	size_t len = 0;
	uint8_t key[32];
	int err;

	if (!arg || !(nl = strchr(arg, '\n')) || !nl[1]) {
		err = -EINVAL;
		goto out;
	}
	*nl = '\0';
	source = nl + 1;
	if ((err = fs_inodes_path(d->inodes, ino, &dirpath)) < 0 ||
	    (err = fs_entry_lookup(d, dirpath, &pe)) < 0)
		goto out;
	if (!pe.is_dir) {
		err = -ENOTDIR;
		goto out;
	}
	if (ledger_is_private(d->ledger)) {
		/* fetched whole and published encrypted, as copies: the reply comes from
		 * fs/import_fetch's thread once every file is queued */
		if (strncmp(source, "magnet:", 7) &&
		    (err = fs_read_file(source, 64 << 20, &bytes, &len)) < 0) {
			fs_import_no_metadata(d, source, err); /* names the file and why */
			goto out;
		}
		fs_import_fetch(req, d, dirpath, arg, source, bytes, len);
		free(bytes);
		free(dirpath);
		free(arg);
		return;
	}
	if (!strncmp(source, "magnet:", 7) &&
	    (fs_magnet_key(source, key) < 0 || fs_saved_torrent(d, key, &bytes, &len) < 0)) {
		struct add_wait *a = calloc(1, sizeof *a);

		if (!a || !(a->magnet = strdup(source)) || !(a->name = strdup(arg))) {
			if (a)
				free(a->magnet);
			free(a);
			err = -ENOMEM;
			goto out;
		}
		a->d = d;
		a->dirpath = dirpath;
		fs_meta_park(req, d, a->magnet, d->read_timeout_ms, add_metadata, a);
		free(arg);
		return;
	}
	if (!bytes && (err = fs_read_file(source, 64 << 20, &bytes, &len)) < 0) {
		fs_import_no_metadata(d, source, err); /* names the file and why */
		goto out;
	}
	err = fs_import(d, dirpath, arg, source, bytes, len);
out:
	free(bytes);
	free(dirpath);
	free(arg);
	fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
}

/* A key given as an attribute value: exactly 64 hex digits, no NUL. */
static int key_value(const char *value, size_t size, uint8_t out[LEDGER_KEY_LEN])
{
	char hex[LEDGER_HEX_LEN];

	if (size != LEDGER_HEX_LEN - 1)
		return -EINVAL;
	memcpy(hex, value, size);
	hex[size] = '\0';
	return ledger_unhex(hex, out, LEDGER_KEY_LEN) < 0 ? -EINVAL : 0;
}

/* swarmfs drive add-member MOUNTPOINT: user.swarmfs.member on the root = "KEY",
 * "KEY member" or "KEY producer", KEY 64 hex digits. The record is the drive admin's
 * to sign; the ledger refuses any other key (EACCES). */
static void op_member(fuse_req_t req, struct fs_drive *d, fuse_ino_t ino, const char *value,
                      size_t size)
{
	int err;

	if (ino != FUSE_ROOT_ID)
		err = -EINVAL;                      /* membership is the drive's, set on its root */
	else if ((err = fs_caller_check(req)) == 0) /* it signs with the owner's key */
		err = fs_members_set(d, value, size);
	fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
}

void fs_xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                  int flags)
{
	struct fs_drive *d = fuse_req_userdata(req);
	struct ledger_op op = { .type = LEDGER_REC_TRANSFER };
	struct ledger_entry e;
	char *path = NULL;
	int err;

	(void)flags;
	if (strncmp(name, XATTR_PREFIX, sizeof XATTR_PREFIX - 1)) {
		fuse_reply_err(req, ENOTSUP); /* no other attributes are kept */
		return;
	}
	/* every verb signs with the mount's key, and add reads a file as the daemon:
	 * the mount's owner's alone */
	if ((err = fs_caller_check(req)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	if (!strcmp(name + sizeof XATTR_PREFIX - 1, "add")) {
		op_add(req, d, ino, value, size);
		return;
	}
	if (!strcmp(name + sizeof XATTR_PREFIX - 1, "member")) {
		op_member(req, d, ino, value, size);
		return;
	}
	/* user.swarmfs.rekey on a file: swarmfs rekey (a new file key, newest epoch);
	 * pin and unpin: swarmfs pin and unpin (fs/hosting) */
	if (!strcmp(name + sizeof XATTR_PREFIX - 1, "rekey") ||
	    !strcmp(name + sizeof XATTR_PREFIX - 1, "pin") ||
	    !strcmp(name + sizeof XATTR_PREFIX - 1, "unpin")) {
		const char *verb = name + sizeof XATTR_PREFIX - 1;

		if ((err = fs_inodes_path(d->inodes, ino, &path)) == 0)
			err = !strcmp(verb, "rekey") ? fs_rekey(d, path)
			      : !strcmp(verb, "pin") ? fs_pin(d, path)
			                             : fs_unpin(d, path);
		free(path);
		fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
		return;
	}
	/* user.swarmfs.replicas on the root: swarmfs drive set --replicas (the admin's) */
	if (!strcmp(name + sizeof XATTR_PREFIX - 1, "replicas")) {
		char num[16];
		char *end;
		long long n = -1;

		if (size > 0 && size < sizeof num) {
			memcpy(num, value, size);
			num[size] = '\0';
			n = strtoll(num, &end, 10);
			if (*end)
				n = -1;
		}
		err = ino != FUSE_ROOT_ID ? -EINVAL
		      : !d->key           ? -EROFS
		      : n < 1             ? -EINVAL
		                          : ledger_replicas_set(d->ledger, n);
		fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
		return;
	}
	/* user.swarmfs.transfer = the new owner's key (64 hex digits): swarmfs transfer.
	 * The other user.swarmfs.* are facts of the ledger, not settable. */
	if (strcmp(name + sizeof XATTR_PREFIX - 1, "transfer")) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (key_value(value, size, op.to) < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((err = fs_inodes_path(d->inodes, ino, &path)) >= 0 &&
	    (err = fs_entry_lookup(d, path, &e)) >= 0) {
		if (!fs_entry_owned(d, &e))
			err = d->key ? -EACCES : -EROFS;
		else {
			op.path = path;
			err = fs_record_submit(d, &op);
		}
	}
	free(path);
	fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
}
