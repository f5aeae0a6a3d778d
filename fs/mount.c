/*
 * The FUSE low-level frontend. Until the ledger is wired in, a drive has nothing in
 * it: the root directory is empty, and statfs reports the cache cap and the free space
 * of the file system under the drive directory.
 */
#define FUSE_USE_VERSION 312
#include "fs.h"

#include <cache.h>

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct fs_state {
	char *drive_dir;
	uint64_t cache_size;
	struct timespec started; /* times of the root until the ledger provides them */
	uid_t uid;
	gid_t gid;
};

/* Attributes never change while a drive is empty; the ledger issue shortens this for
 * pending records and invalidates on change. */
static const double ATTR_TIMEOUT = 1.0;

static void root_stat(const struct fs_state *st, struct stat *out)
{
	memset(out, 0, sizeof *out);
	out->st_ino = FUSE_ROOT_ID;
	out->st_mode = S_IFDIR | 0755;
	out->st_nlink = 2;
	out->st_uid = st->uid;
	out->st_gid = st->gid;
	out->st_blksize = 4096;
	out->st_atim = out->st_mtim = out->st_ctim = st->started;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	fuse_reply_err(req, parent == FUSE_ROOT_ID ? ENOENT : ENOTDIR);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_state *st = fuse_req_userdata(req);
	struct stat sb;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	root_stat(st, &sb);
	fuse_reply_attr(req, &sb, ATTR_TIMEOUT);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char buf[512];
	size_t used = 0;
	struct stat sb = { 0 };
	static const char *const names[] = { ".", ".." };

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof buf)
		size = sizeof buf;
	sb.st_mode = S_IFDIR;
	for (off_t i = off; i < 2; i++) {
		size_t n;

		sb.st_ino = FUSE_ROOT_ID;
		n = fuse_add_direntry(req, buf + used, size - used, names[i], &sb, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_state *st = fuse_req_userdata(req);
	struct statvfs disk, out;
	uint64_t avail;

	(void)ino;
	if (statvfs(st->drive_dir, &disk) < 0) {
		int err = errno;

		fs_err("statfs of %s: %s", st->drive_dir, strerror(err));
		fuse_reply_err(req, err);
		return;
	}
	/* The drive's capacity is its cache cap; what is free is the smaller of the
	 * unused cap and the disk's own free space. Nothing is cached yet. */
	memset(&out, 0, sizeof out);
	out.f_bsize = out.f_frsize = 4096;
	out.f_blocks = st->cache_size / out.f_frsize;
	avail = (uint64_t)disk.f_bavail * disk.f_frsize / out.f_frsize;
	out.f_bfree = out.f_bavail = avail < out.f_blocks ? avail : out.f_blocks;
	out.f_files = disk.f_files;
	out.f_ffree = out.f_favail = disk.f_ffree;
	out.f_namemax = 255;
	fuse_reply_statfs(req, &out);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.statfs = op_statfs,
};

static int add_arg(struct fuse_args *args, const char *a)
{
	return fuse_opt_add_arg(args, a) < 0 ? -ENOMEM : 0;
}

int fs_mount_run(const struct fs_mount_opts *o)
{
	struct fs_state st = { 0 };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	char *home = NULL, opt[512];
	long holder = 0;
	int lock_fd = -1, rc = 1, err;

	err = fs_home_resolve(o->home, &home);
	if (err < 0) {
		fs_err("no data directory: set --home or SWARMFS_HOME");
		return 1;
	}
	err = fs_drive_dir(home, o->drive, &st.drive_dir);
	if (err < 0) {
		fs_err("invalid drive name '%s': %s", o->drive, strerror(-err));
		goto out;
	}
	err = fs_mkdirs(st.drive_dir, 0700);
	if (err < 0) {
		fs_err("cannot create %s: %s", st.drive_dir, strerror(-err));
		goto out;
	}
	lock_fd = fs_drive_lock(st.drive_dir, &holder);
	if (lock_fd == -EBUSY) {
		fs_err("drive '%s' in %s is already mounted by process %ld", o->drive, home,
		       holder);
		goto out;
	} else if (lock_fd < 0) {
		fs_err("cannot lock %s: %s", st.drive_dir, strerror(-lock_fd));
		goto out;
	}
	st.cache_size = o->cache_size ? o->cache_size : CACHE_DEFAULT_SIZE;
	st.uid = getuid();
	st.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &st.started);

	snprintf(opt, sizeof opt, "fsname=swarmfs:%s,subtype=swarmfs", o->drive);
	if (add_arg(&args, "swarmfs") || add_arg(&args, "-o") || add_arg(&args, opt))
		goto out;
	if (o->allow_other && (add_arg(&args, "-o") || add_arg(&args, "allow_other")))
		goto out;
	if (o->debug && add_arg(&args, "-d"))
		goto out;
	for (char **p = o->fuse_opts; p && *p; p++)
		if (add_arg(&args, "-o") || add_arg(&args, *p))
			goto out;

	se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, &st);
	if (!se) {
		fs_err("bad FUSE options");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		fs_err("cannot mount %s (is it an existing directory, and is /dev/fuse there?)",
		       o->mountpoint);
		goto out_signals;
	}
	if (!o->foreground && !o->debug)
		fs_log_use_syslog(true);
	if (fuse_daemonize(o->foreground || o->debug) != 0)
		goto out_unmount;
	fs_info("mounted drive %s at %s", o->drive, o->mountpoint);

	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_max_threads(loop, 16);
	rc = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(loop);
	fs_info("unmounting %s", o->mountpoint);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	if (lock_fd >= 0)
		close(lock_fd);
	free(st.drive_dir);
	free(home);
	return rc;
}
