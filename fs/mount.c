/*
 * Mounting a drive: open it, start the FUSE session with the handlers of ops.c, serve
 * until unmounted, and close everything in reverse order.
 */
#define FUSE_USE_VERSION 312
#include "fs.h"

#include "drive.h"
#include "ops.h"
#include "import_fetch.h"
#include "waiter.h"

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
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static int add_arg(struct fuse_args *args, const char *a)
{
	return fuse_opt_add_arg(args, a) < 0 ? -ENOMEM : 0;
}

int fs_mount_run(const struct fs_mount_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fs_drive_opts dopts = { 0 };
	struct fs_drive *d = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	char *home = NULL, opt[512];
	int rc = 1, err;

	err = fs_home_resolve(o->home, &home);
	if (err < 0) {
		fs_err("no data directory: set --home or SWARMFS_HOME");
		return 1;
	}
	dopts.home = home;
	dopts.drive = o->drive;
	dopts.key = o->key;
	dopts.cache_size = o->cache_size;
	dopts.listen = o->listen;
	dopts.trackers = (const char *const *)o->trackers;
	dopts.peers = (const char *const *)o->peers;
	dopts.dht = o->dht;
	dopts.dht_bootstrap = (const char *const *)o->dht_bootstrap;
	dopts.lsd = o->lsd;
	dopts.utp = o->utp;
	dopts.read_timeout_ms = o->read_timeout_ms;
	dopts.upload_limit = o->upload_limit;
	dopts.no_receipts = o->no_receipts;
	dopts.volunteer = o->volunteer;
	dopts.seed_max = o->seed_max;
	if (fs_drive_open(&dopts, &d) < 0)
		goto out; /* it said why */

	snprintf(opt, sizeof opt, "fsname=swarmfs:%s,subtype=swarmfs",
	         d->name && *d->name && !strpbrk(d->name, ", \t\n\\") ? d->name : d->id_hex);
	if (add_arg(&args, "swarmfs") || add_arg(&args, "-o") || add_arg(&args, opt))
		goto out;
	/* A daemon killed with -9 runs no handler of ours: fusermount3 then unmounts for it,
	 * instead of leaving "Transport endpoint is not connected" behind. */
	if (add_arg(&args, "-o") || add_arg(&args, "auto_unmount"))
		goto out;
	/* other users: the kernel checks the modes shown (others' files are read-only),
	 * and every handler that changes something checks the caller (fs_caller_check) */
	if (o->allow_other &&
	    (add_arg(&args, "-o") || add_arg(&args, "allow_other,default_permissions")))
		goto out;
	if (o->debug && add_arg(&args, "-d"))
		goto out;
	for (char **p = o->fuse_opts; p && *p; p++)
		if (add_arg(&args, "-o") || add_arg(&args, *p))
			goto out;

	se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, d);
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
	/* only after daemonize: threads do not survive its fork */
	if (fs_drive_start(d, se) < 0)
		goto out_unmount; /* it said why */
	fs_info("mounted drive %s (%s) at %s", d->name ? d->name : "", d->id_hex, o->mountpoint);
	/* a Type=notify unit is started now (a no-op without $NOTIFY_SOCKET) */
	sd_notifyf(0, "READY=1\nSTATUS=drive %s mounted at %s", d->name ? d->name : d->id_hex,
	           o->mountpoint);

	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_max_threads(loop, 16);
	rc = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(loop);
	fs_info("unmounting %s", o->mountpoint);
	sd_notify(0, "STOPPING=1");
out_unmount:
	fs_drive_notify_stop(d);
	/* the kernel still waits for the parked opens: answer them while it listens */
	fs_waiter_stop(d->waiter);
	fs_import_fetch_stop(d);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	fs_drive_close(d);
	free(home);
	return rc;
}
