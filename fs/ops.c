/*
 * The FUSE low-level handlers of the namespace: what is listed and stat()ed comes from
 * the ledger's state tables (no network, DESIGN.md §7); a file is exposed only while
 * its record passes ledger_verify_record(); changes by the owner become records, and
 * anyone else gets EACCES.
 */
#define FUSE_USE_VERSION 312
#include "ops.h"

#include "content.h"
#include "dirsnap.h"
#include "drive.h"
#include "engine.h"
#include "filekey.h"
#include "fs.h"
#include "inode.h"
#include "node.h"
#include "park.h"
#include "waiter.h"
#include "publish.h"
#include "sync.h"
#include "xattr.h"

#include <cache.h>
#include <swarm.h>

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static struct fs_drive *drive_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

int fs_caller_check(fuse_req_t req)
{
	const struct fs_drive *d = drive_of(req);

	return fuse_req_ctx(req)->uid == d->uid ? 0 : -EACCES;
}

/* Ledger codes as the kernel should see them. -EPERM from the ledger means "this key
 * may not": for a filesystem user that is EACCES (DESIGN.md §7). */
int fs_kernel_errno(int err)
{
	switch (err) {
	case -EPERM: return EACCES;
	case -EBADMSG: return EIO;
	case -ESTALE: return EAGAIN; /* someone else's record won the race: retry */
	default: return err < 0 ? -err : EIO;
	}
}

static int child_path(struct fs_drive *d, fuse_ino_t parent, const char *name, char **out)
{
	char *pp;
	int err;

	if (!*name || strchr(name, '/') || strlen(name) > LEDGER_NAME_MAX)
		return strlen(name) > LEDGER_NAME_MAX ? -ENAMETOOLONG : -EINVAL;
	if ((err = fs_inodes_path(d->inodes, parent, &pp)) < 0)
		return err;
	if (asprintf(out, "%s%s%s", pp, *pp ? "/" : "", name) < 0)
		err = -ENOMEM;
	free(pp);
	return err;
}

static void reply_node(fuse_req_t req, struct fs_drive *d, const char *path, struct fs_node *n,
                       struct fuse_file_info *create_fi)
{
	struct fuse_entry_param ep;
	uint64_t ino;
	int err = fs_inodes_ref(d->inodes, path, &ino);

	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	memset(&ep, 0, sizeof ep);
	ep.ino = ino;
	ep.generation = 1;
	ep.attr = n->st;
	ep.attr.st_ino = ino;
	ep.attr_timeout = ep.entry_timeout = fs_node_timeout(n);
	/* a file just created is empty, and every change to it comes through this kernel
	 * (its writes set the size and drop the cached times): the fstat cp makes right
	 * after the open need not come here (a round trip of six a small file) */
	if (create_fi && n->staged)
		ep.attr_timeout = FS_TIMEOUT_PENDING;
	if ((create_fi ? fuse_reply_create(req, &ep, create_fi) : fuse_reply_entry(req, &ep)) != 0)
		fs_inodes_forget(d->inodes, ino, 1); /* the kernel never got it */
}

static void reply_entry(fuse_req_t req, struct fs_drive *d, const char *path,
                        const struct ledger_entry *e)
{
	struct fs_node n = { .e = *e };

	fs_entry_stat(d, e, 0, &n.st);
	reply_node(req, d, path, &n, NULL);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_drive *d = drive_of(req);
	struct fs_node n;
	char *path;
	int err = child_path(d, parent, name, &path);

	if (err < 0) {
		fuse_reply_err(req, err == -EINVAL ? ENOENT : -err);
		return;
	}
	err = fs_node_get(d, path, 0, &n);
	if (err < 0) {
		/* a negative entry may be cached only briefly: a peer can publish it */
		struct fuse_entry_param ep = { .ino = 0, .entry_timeout = 1.0 };

		if (err == -ENOENT)
			fuse_reply_entry(req, &ep);
		else
			fuse_reply_err(req, -err);
	} else
		reply_node(req, d, path, &n, NULL);
	free(path);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_inodes_forget(drive_of(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs_drive *d = drive_of(req);

	for (size_t i = 0; i < count; i++)
		fs_inodes_forget(d->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	struct fs_node n;
	char *path;
	int err;

	(void)fi;
	if ((err = fs_inodes_path(d->inodes, ino, &path)) == 0) {
		err = fs_node_get(d, path, ino, &n);
		free(path);
	}
	if (err == -ENOENT && fs_staged_orphan_stat(d, ino, &n.st) == 0) {
		/* fstat of a file removed while open: what its descriptor holds */
		n.st.st_ino = ino;
		n.st.st_nlink = 0;
		fuse_reply_attr(req, &n.st, 0);
		return;
	}
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	fuse_reply_attr(req, &n.st, fs_node_timeout(&n));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	struct fs_dirsnap *s = NULL;
	struct ledger_entry e;
	char *path = NULL;
	int err;

	if ((err = fs_inodes_path(d->inodes, ino, &path)) < 0 ||
	    (err = fs_entry_lookup(d, path, &e)) < 0 || (err = e.is_dir ? 0 : -ENOTDIR) < 0 ||
	    (err = fs_dirsnap_load(d, path, &s)) < 0) {
		free(path);
		fuse_reply_err(req, err == -ENOENT && !ino ? ENOENT : -err);
		return;
	}
	free(path);
	fi->fh = (uint64_t)(uintptr_t)s;
	fi->cache_readdir = 1; /* the snapshot is invalidated with the directory */
	fuse_reply_open(req, fi);
}

/* The most the first readdirplus reply of a listing carries (see do_readdir). */
#define READDIRPLUS_MAX 4096

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct fs_drive *d = drive_of(req);
	struct fs_dirsnap *s = (struct fs_dirsnap *)(uintptr_t)fi->fh;
	const char *full;
	char *buf;
	size_t used = 0;

	/* The kernel asks for 128 KiB a page (6.x) and takes readdirplus for the first
	 * page of every listing: ~800 entries with attributes, each a node in our table
	 * and an inode in the kernel's, which find never looks at (1M files: 779k nodes).
	 * So the first page carries 4 KiB, the kernel's page of old. A later page comes
	 * plus only on the kernel's advice: the caller stat'ed what the earlier pages
	 * gave (ls -l does, name by name). That caller wants every name's attributes,
	 * so it gets the whole page: a few round trips for 1,000 names instead of one
	 * per 25. */
	if (plus && off == 0 && size > READDIRPLUS_MAX)
		size = READDIRPLUS_MAX;
	buf = malloc(size);

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* offsets: 0 ".", 1 "..", 2+i the snapshot's items; an entry's offset is that of
	 * the next one */
	for (off_t i = off; i < (off_t)s->n + 2; i++) {
		struct fuse_entry_param ep;
		const char *name;
		size_t n;

		memset(&ep, 0, sizeof ep);
		if (i < 2) {
			name = i == 0 ? "." : "..";
			ep.attr.st_mode = S_IFDIR;
			ep.attr.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
		} else {
			struct fs_dir_item *it = &s->items[i - 2];

			name = it->name;
			ep.attr = it->st;
		}
		if (!plus) {
			/* readdir(3) skips d_ino 0: give the number the kernel holds for the
			 * name, else a stable one from its path, kept out of the table's
			 * range (top bit set) so it names nothing else */
			if (i >= 2 && !ep.attr.st_ino) {
				if (!(full = fs_dirsnap_child(s, i - 2)))
					break;
				ep.attr.st_ino = fs_inodes_dirent_ino(d->inodes, full);
			}
			n = fuse_add_direntry(req, buf + used, size - used, name, &ep.attr, i + 1);
		} else if (i < 2) {
			/* no lookup count for . and ..: node id 0 tells the kernel so,
			 * while st_ino stays (readdir(3) skips d_ino 0) */
			ep.ino = 0;
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
		} else {
			struct fs_dir_item *it = &s->items[i - 2];
			uint64_t cino;

			/* size the entry first: a reference taken for an entry that does
			 * not fit would never be forgotten */
			n = fuse_add_direntry_plus(req, NULL, 0, name, &ep, i + 1);
			if (n > size - used)
				break;
			if (fs_dirsnap_item_load(d, s, i - 2) < 0)
				continue; /* gone since the snapshot: left out */
			if (!(full = fs_dirsnap_child(s, i - 2)) ||
			    fs_inodes_ref(d->inodes, full, &cino) < 0)
				break;
			ep.attr = it->st;
			ep.ino = cino;
			ep.generation = 1;
			ep.attr.st_ino = cino;
			ep.attr_timeout = ep.entry_timeout = it->timeout;
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fs_dirsnap_free((struct fs_dirsnap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- changes: records signed with this node's key ---- */

int fs_record_submit(struct fs_drive *d, const struct ledger_op *op)
{
	int err;

	if (!d->key)
		return -EROFS;
	err = ledger_submit(d->ledger, op, NULL);
	if (err < 0)
		fs_debug("%s of %s refused: %s", ledger_rec_type_name(op->type),
		         op->path ? op->path : "the drive", strerror(-err));
	return err;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs_drive *d = drive_of(req);
	struct ledger_op op = { .type = LEDGER_REC_MKDIR };
	struct ledger_entry e;
	char *path;
	int err = fs_caller_check(req);

	if (err < 0 || (err = child_path(d, parent, name, &path)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	op.path = path;
	op.content.mode = mode & 07777 & ~fuse_req_ctx(req)->umask;
	op.content.mtime_ns = now_ns();
	err = fs_record_submit(d, &op);
	if (err >= 0)
		err = fs_entry_lookup(d, path, &e);
	if (err < 0)
		fuse_reply_err(req, fs_kernel_errno(err));
	else
		reply_entry(req, d, path, &e);
	free(path);
}

/* unlink and rmdir: a revoke by the owner */
static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct fs_drive *d = drive_of(req);
	struct ledger_op op = { .type = LEDGER_REC_REVOKE };
	struct ledger_entry e;
	char *path = NULL;
	int err = fs_caller_check(req);

	if (err >= 0)
		err = child_path(d, parent, name, &path);
	if (err >= 0 && !dir &&
	    (err = fs_staged_unlink(d, path, fs_inodes_find(d->inodes, path))) != -ENOENT) {
		/* a staged file goes; an older published version of it goes as well */
		if (err >= 0 && fs_entry_lookup(d, path, &e) == 0 && fs_entry_owned(d, &e)) {
			op.path = path;
			err = fs_record_submit(d, &op);
		}
		goto done;
	}
	if (err == -ENOENT)
		err = 0;
	if (err >= 0 && (err = fs_entry_lookup(d, path, &e)) >= 0) {
		if (dir && !e.is_dir)
			err = -ENOTDIR;
		else if (!dir && e.is_dir)
			err = -EISDIR;
		else if (!fs_entry_owned(d, &e))
			err = d->key ? -EACCES : -EROFS;
		else {
			op.path = path;
			err = fs_record_submit(d, &op);
		}
	}
done:
	fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
	free(path);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	struct fs_drive *d = drive_of(req);
	struct ledger_entry src, dst;
	char *from = NULL, *to = NULL;
	int err;

	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL); /* two records cannot swap atomically */
		return;
	}
	if ((err = fs_caller_check(req)) < 0 || (err = child_path(d, parent, name, &from)) < 0 ||
	    (err = child_path(d, newparent, newname, &to)) < 0)
		goto out;
	if (fs_staged_stat(d, from, &(struct stat){ 0 }) == 0) {
		/* not published yet (an editor's temp file): it is published under its
		 * new name, as an update if that name is an owned file */
		err = fs_entry_lookup(d, to, &dst);
		if (err == 0 && (dst.is_dir || !fs_entry_owned(d, &dst)))
			err = dst.is_dir ? -EISDIR : -EACCES;
		else if (err == 0 && (flags & RENAME_NOREPLACE))
			err = -EEXIST;
		else if (err == 0 || err == -ENOENT)
			err = (err = fs_path_may_create(d, to)) < 0 ? err
			                                            : fs_staged_rename(d, from, to);
		if (err >= 0)
			fs_inodes_rename(d->inodes, from, to);
		if (err != -ENOENT)
			goto out;
		/* published while we waited: rename its record below */
	}
	if ((err = fs_entry_lookup(d, from, &src)) < 0)
		goto out;
	if (!fs_entry_owned(d, &src)) {
		err = d->key ? -EACCES : -EROFS;
		goto out;
	}
	err = fs_entry_lookup(d, to, &dst);
	if (err == 0) {
		/* Replacing an existing file, as editors do when they save: the target
		 * gets the source's content (an update of the target's record), then the
		 * source goes. */
		if (flags & RENAME_NOREPLACE) {
			err = -EEXIST;
			goto out;
		}
		if (src.is_dir || dst.is_dir) {
			err = dst.is_dir ? -EISDIR : -ENOTDIR;
			goto out;
		}
		if (!fs_entry_owned(d, &dst)) {
			err = -EACCES;
			goto out;
		}
		struct ledger_op up = { .type = LEDGER_REC_UPDATE,
			                .path = to,
			                .content = src.content,
			                .key_from = src.record_id };
		struct ledger_op rv = { .type = LEDGER_REC_REVOKE, .path = from };

		if ((err = fs_record_submit(d, &up)) >= 0)
			err = fs_record_submit(d, &rv);
	} else if (err == -ENOENT) {
		struct ledger_op mv = { .type = LEDGER_REC_MOVE, .path = from, .dest = to };

		err = fs_record_submit(d, &mv);
		if (err >= 0)
			fs_inodes_rename(d->inodes, from, to);
	}
out:
	fuse_reply_err(req, err < 0 ? fs_kernel_errno(err) : 0);
	free(from);
	free(to);
}

/* Reply with the attributes of path (as ino), or the error of finding them. */
static void reply_attr_of(fuse_req_t req, struct fs_drive *d, const char *path, fuse_ino_t ino)
{
	struct fs_node n;
	int err = fs_node_get(d, path, ino, &n);

	if (err < 0)
		fuse_reply_err(req, fs_kernel_errno(err));
	else
		fuse_reply_attr(req, &n.st, fs_node_timeout(&n));
}

/* A truncate whose kept part had to come from the swarm (fs_copy_park_done's ctx). */
struct resize {
	struct fs_drive *d;
	fuse_ino_t ino;
	char *path;
	uint64_t size;
};

/* The kept part came (err 0) or did not: finish the new version, reply. Waiter thread. */
static void resized(fuse_req_t req, int err, struct fs_fh *h, void *ctx)
{
	struct resize *rz = ctx;

	if (err < 0)
		fs_staged_unlink_open(rz->d, h->staged);
	else
		err = fs_content_resize_finish(rz->d, h->staged, rz->size);
	h->staged = NULL;
	fs_fh_put(h);
	if (err < 0)
		fuse_reply_err(req, fs_kernel_errno(err));
	else
		reply_attr_of(req, rz->d, rz->path, rz->ino);
	free(rz->path);
	free(rz);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	struct ledger_entry e;
	struct stat st;
	char *path;
	int err;

	(void)fi;
	if ((err = fs_caller_check(req)) < 0 || (err = fs_inodes_path(d->inodes, ino, &path)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	/* ownership is a key, not a uid: chown to the uid and gid the mount shows is a
	 * no-op (tar x and cp -a as root do it), anything else EPERM; swarmfs transfer
	 * changes owners */
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != d->uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != d->gid)) {
		err = -EPERM;
		goto out;
	}
	to_set &= ~(FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	err = fs_staged_setattr(d, path, attr, to_set);
	if (err == 0) {
		struct fs_node n;

		if ((err = fs_node_get(d, path, ino, &n)) < 0)
			goto out;
		fuse_reply_attr(req, &n.st, fs_node_timeout(&n));
		free(path);
		return;
	}
	if (err != -ENOENT)
		goto out;
	if ((err = fs_entry_lookup(d, path, &e)) < 0)
		goto out;
	if (to_set && !fs_entry_owned(d, &e)) {
		err = d->key ? -EACCES : -EROFS;
		goto out;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    (e.is_dir || (uint64_t)attr->st_size != e.content.length)) {
		/* a new version, cut or zero-extended: published like a copy */
		struct resize *rz = calloc(1, sizeof *rz);
		struct fs_staged *st = NULL;
		uint64_t have = 0;

		if (!rz) {
			err = -ENOMEM;
			goto out;
		}
		rz->d = d;
		rz->ino = ino;
		rz->path = path;
		rz->size = (uint64_t)attr->st_size;
		err = fs_content_resize_start(d, path, &e, rz->size, &st, &have);
		if (err == 1) { /* the rest of the kept part from the swarm, parked */
			struct fs_fh *h = fs_fh_new(d->cache, d->read_timeout_ms);

			if (!h) {
				fs_staged_unlink_open(d, st);
				free(rz);
				err = -ENOMEM;
				goto out;
			}
			h->staged = st;
			fs_copy_park_done(req, d, &e, h, have, rz->size, resized, rz);
			return; /* rz owns path */
		}
		free(rz);
		if (err < 0 || (err = fs_content_resize_finish(d, st, (uint64_t)attr->st_size)) < 0)
			goto out;
		reply_attr_of(req, d, path, ino);
		free(path);
		return;
	}
	struct ledger_op up = { .type = LEDGER_REC_UPDATE,
		                .path = path,
		                .content = e.content,
		                .key_from = e.record_id };
	bool change = false;

	if (to_set & FUSE_SET_ATTR_MODE && (attr->st_mode & 07777) != (e.content.mode & 07777)) {
		up.content.mode = attr->st_mode & 07777;
		change = true;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		int64_t t =
		    to_set & FUSE_SET_ATTR_MTIME_NOW
		        ? now_ns()
		        : (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;

		if (t != e.content.mtime_ns) {
			up.content.mtime_ns = t;
			change = true;
		}
	}
	/* atime and ctime are not kept: there is nothing to record for them */
	if (change) {
		if (e.is_dir && !*path) {
			err = -EPERM; /* the root is the drive itself, not a record */
			goto out;
		}
		if (!up.content.piece_length)
			up.content.piece_length = 16384; /* a directory's: required, unused */
		if ((err = fs_record_submit(d, &up)) < 0 ||
		    (err = fs_entry_lookup(d, path, &e)) < 0)
			goto out;
	}
	fs_entry_stat(d, &e, ino, &st);
	fuse_reply_attr(req, &st, e.height < 0 ? FS_TIMEOUT_PENDING : FS_TIMEOUT_CONFIRMED);
	free(path);
	return;
out:
	fuse_reply_err(req, fs_kernel_errno(err));
	free(path);
}

/* ---- files: staged (being written) or published content from the cache ---- */

static struct fs_fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fs_fh *)(uintptr_t)fi->fh;
}

/* May this node create path? Its parent must be a directory this key owns, or an
 * open one (the root is open); the ledger has the last word when the record is made. */
int fs_path_may_create(struct fs_drive *d, const char *path)
{
	const char *slash = strrchr(path, '/');
	struct ledger_entry pe;
	char *parent;
	int err;

	if (!d->key || !d->pub)
		return -EROFS;
	parent = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
	if (!parent)
		return -ENOMEM;
	err = fs_entry_lookup(d, parent, &pe);
	free(parent);
	if (err < 0)
		return err;
	if (!pe.is_dir)
		return -ENOTDIR;
	return pe.open || fs_entry_owned(d, &pe) ? 0 : -EACCES;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	struct ledger_entry e;
	struct fs_node n;
	struct fs_fh *h = NULL;
	char *path = NULL;
	int err;

	if ((err = fs_caller_check(req)) < 0 || (err = child_path(d, parent, name, &path)) < 0 ||
	    (err = fs_path_may_create(d, path)) < 0)
		goto fail;
	err = fs_entry_lookup(d, path, &e);
	if (err == 0) {
		if ((fi->flags & O_EXCL))
			err = -EEXIST;
		else if (e.is_dir)
			err = -EISDIR;
		else if (!fs_entry_owned(d, &e))
			err = -EACCES;
		if (err < 0)
			goto fail;
	} else if (err != -ENOENT)
		goto fail;
	if (!(h = fs_fh_new(d->cache, d->read_timeout_ms))) {
		err = -ENOMEM;
		goto fail;
	}
	err = fs_staged_create(d, path, mode & ~fuse_req_ctx(req)->umask, &h->staged);
	if (err < 0)
		goto fail;
	h->writer = true;
	fs_staged_follow(d, h->staged); /* a cp writes it front to back: packed meanwhile */
	if ((err = fs_node_get(d, path, 0, &n)) < 0) {
		fs_staged_release(d, h->staged, true);
		goto fail;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	reply_node(req, d, path, &n, fi);
	free(path);
	return;
fail:
	if (h)
		fs_fh_put(h);
	free(path);
	fuse_reply_err(req, fs_kernel_errno(err));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct ledger_entry e;
	struct fs_fh *h = fs_fh_new(d->cache, d->read_timeout_ms);
	char *path = NULL;
	int err;

	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* another user (with --allow-other) may read what is published, never what is
	 * still being written, and never write */
	bool mine = fs_caller_check(req) == 0;

	if ((err = mine || !write ? 0 : -EACCES) < 0 ||
	    (err = fs_inodes_path(d->inodes, ino, &path)) < 0)
		goto fail;
	if (!mine && fs_staged_stat(d, path, &(struct stat){ 0 }) == 0) {
		err = -EACCES;
		goto fail;
	}
	err = fs_staged_open(d, path, write, &h->staged);
	if (err == 0) {
		h->writer = write;
		if (write && (fi->flags & O_TRUNC) &&
		    ftruncate(fs_staged_fd_modify(d, h->staged), 0) < 0) {
			err = -errno;
			fs_staged_release(d, h->staged, write);
			goto fail;
		}
		fi->direct_io = 1; /* its size changes under the writer */
		goto done;
	}
	if (err != -ENOENT)
		goto fail;
	if ((err = fs_entry_lookup(d, path, &e)) < 0)
		goto fail;
	if (e.is_dir) {
		err = -EISDIR;
		goto fail;
	}
	if (write) {
		if (!fs_entry_owned(d, &e)) {
			err = d->key ? -EACCES : -EROFS;
			goto fail;
		}
		/* a new version of an owned file: staged (a copy of the current content
		 * unless truncated), published at close */
		if ((err = fs_staged_create(d, path, e.content.mode ? e.content.mode : 0644,
		                            &h->staged)) < 0)
			goto fail;
		/* content this node lacks comes from the swarm for an append or a
		 * read-write open; a bare O_WRONLY (touch, which then sets the times by
		 * path; truncate -s, which sets the size through the descriptor) is not
		 * worth a download: it gets a handle without a copy, whose setattr goes by
		 * path and whose writes fail (EOPNOTSUPP) */
		bool fetch = (fi->flags & O_APPEND) || (fi->flags & O_ACCMODE) == O_RDWR;
		ssize_t have = 0;

		if (!(fi->flags & O_TRUNC) && e.content.length > 0 &&
		    (have = fs_content_copy_cached(d, &e, e.content.length,
		                                   fs_staged_fd_modify(d, h->staged))) >= 0 &&
		    (uint64_t)have < e.content.length) {
			if (fetch) { /* the rest from the swarm, parked */
				fs_copy_park(req, d, &e, h, fi, (uint64_t)have);
				free(path);
				return;
			}
			fs_staged_unlink_open(d, h->staged);
			h->staged = NULL;
		}
		if ((err = (int)(have < 0 ? have : 0)) < 0) {
			fs_staged_unlink_open(d, h->staged);
			goto fail;
		}
		h->writer = true;
		fi->direct_io = 1;
		goto done;
	}
	/* opening re-checks the record from raw bytes (DESIGN.md §4; cached by id) */
	if (e.height >= 0 && (err = ledger_verify_record(d->ledger, e.record_id)) < 0) {
		fs_drive_mark_bad(d, e.record_id, path, strerror(-err));
		err = -EIO;
		goto fail;
	}
	h->has_content = e.content.length > 0;
	fs_entry_content(d, &e); /* a file of a torrent of several: where it is in it */
	fs_content_where(&e.content, h->key, &h->base);
	h->length = e.content.length;
	/* a private drive's content: its key, once per open, kept until release; a member
	 * whose epoch keys are still to be sealed to it (a newcomer's first seconds) waits
	 * for them, parked */
	bool may_come = fs_filekey_may_come(d);

	err = may_come ? fs_filekey_cipher_quiet(d, &e, &h->cipher)
	               : fs_filekey_cipher(d, &e, &h->cipher);
	if (err == -EACCES && may_come) {
		fs_key_park(req, d, &e, h, fi);
		free(path);
		return;
	}
	if (err < 0)
		goto fail;
	/* content the cache holds whole (published here, or fetched completely) needs no
	 * swarm and no read-ahead: reads go straight to the cache */
	bool whole = fs_engine_cached(d->cache, h->key, h->base, h->length) == h->length;
	/* a file within a torrent of several is read at the place its record names:
	 * the torrent must say the same (fs_torrent_for checks), cached or not */
	if (h->has_content && (!whole || e.content.has_file)) {
		struct fs_engine_torrent *t;

		/* another member's content: its metadata may come from the swarm first,
		 * parked, never waited for here */
		err = fs_torrent_local(d, &e, &t);
		if (err == -ENOENT) {
			fs_open_park(req, d, &e, h, fi);
			free(path);
			return;
		}
		if (err == 0)
			err = fs_engine_reader_new(t, e.content.file_index, &h->reader);
		if (err < 0)
			goto fail;
	}
	/* content never changes under a record id: the page cache stays valid across
	 * opens, and ledger changes invalidate it explicitly */
	fi->keep_cache = 1;
done:
	fi->fh = (uint64_t)(uintptr_t)h;
	free(path);
	fuse_reply_open(req, fi);
	return;
fail:
	fs_fh_put(h);
	free(path);
	fuse_reply_err(req, fs_kernel_errno(err));
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	struct fs_fh *h = fh_of(fi);
	int err;

	(void)ino;
	if (h->staged) {
		fs_reply_fd(req, fs_staged_fd(h->staged), off, size);
		return;
	}
	if (!h->has_content || (uint64_t)off >= h->length) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((uint64_t)off + size > h->length)
		size = (size_t)(h->length - (uint64_t)off);
	if (!h->reader) { /* content without a torrent here: the cache alone */
		err = fs_reply_cached(req, d, h, off, size);
		if (err < 0) {
			fs_warn("read at %lld of inode %llu: not here, and its metadata is not "
			        "either (%s)",
			        (long long)off, (unsigned long long)ino, strerror(-err));
			fuse_reply_err(req, EIO);
		}
		return;
	}
	fs_read_park(req, d, h, off, size);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	struct fs_fh *h = fh_of(fi);
	ssize_t n;

	(void)ino;
	if (!h->staged || !h->writer) {
		/* a writer without a copy: a bare O_WRONLY of content not here (op_open) */
		fuse_reply_err(req, h->writer ? EOPNOTSUPP : EBADF);
		return;
	}
	n = fs_staged_write(drive_of(req), h->staged, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_fh *h = fh_of(fi);
	int err = 0;

	(void)ino;
	if (h->staged && h->writer)
		err = fs_staged_flush(drive_of(req), h->staged);
	fuse_reply_err(req, err < 0 ? -err : 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_fh *h = fh_of(fi);
	int rc = 0;

	(void)ino;
	if (h->staged)
		rc = (datasync ? fdatasync(fs_staged_fd(h->staged))
		               : fsync(fs_staged_fd(h->staged)));
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_drive *d = drive_of(req);
	struct fs_fh *h = fh_of(fi);
	int err = 0;

	(void)ino;
	if (h->staged)
		err = fs_staged_release(d, h->staged, h->writer);
	/* the kernel sends release after every read of the handle is answered; parked
	 * reads that were interrupted still wait in the engine: freeing the reader
	 * cancels them, and their callbacks (later, on the engine's worker) hold a
	 * reference each, so h goes with the last of them */
	fs_engine_reader_free(h->reader);
	h->reader = NULL;
	fs_fh_put(h);
	fuse_reply_err(req, err < 0 ? -err : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_drive *d = drive_of(req);
	struct statvfs disk, out;
	uint64_t avail;

	(void)ino;
	if (statvfs(d->dir, &disk) < 0) {
		int err = errno;

		fs_err("statfs of %s: %s", d->dir, strerror(err));
		fuse_reply_err(req, err);
		return;
	}
	/* The drive's capacity is its cache cap; what is free is the smaller of the
	 * unused cap and the disk's own free space. */
	memset(&out, 0, sizeof out);
	out.f_bsize = out.f_frsize = 4096;
	out.f_blocks = d->cache_size / out.f_frsize;
	avail = (uint64_t)disk.f_bavail * disk.f_frsize / out.f_frsize;
	out.f_bfree = out.f_bavail = avail < out.f_blocks ? avail : out.f_blocks;
	out.f_files = disk.f_files;
	out.f_ffree = out.f_favail = disk.f_ffree;
	out.f_namemax = LEDGER_NAME_MAX;
	fuse_reply_statfs(req, &out);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* replies from staging are fd-backed: let the kernel take their pages by splice */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* 1 MiB requests (libfuse derives max_pages from max_write): fewer round trips
	 * for sequential reads and for cp into the mount */
	conn->max_write = 1 << 20;
	/* the kernel's adaptive readdirplus (libfuse's default): attributes for the first
	 * page of a listing and after a stat of its names (ls -l), names and kinds alone
	 * otherwise (find). Readdirplus always made a fresh find over 1M files hand the
	 * kernel an inode for every name: 14.3 s against 7.5 s adaptive (issue 18). Plain
	 * entries never carry inode number 0 (see do_readdir). */
	conn->want |= conn->capable & FUSE_CAP_READDIRPLUS_AUTO;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.setxattr = fs_xattr_set,
	.getxattr = fs_xattr_get,
	.listxattr = fs_xattr_list,
};
