/* A bare FUSE passthrough of one file, the baseline of scripts/bench/fs.sh's warm reads
 * (issue 13): what a low-level libfuse3 filesystem that does nothing but hand the
 * kernel a file's pages costs, set up as swarmfs's own mount is (1 MiB requests,
 * splice offered, keep_cache, multithreaded loop).
 *
 *   [BENCH_SPLICE=0|1|2] bench_passthrough FILE MOUNTPOINT [-f] [-o OPTS]
 *
 * MOUNTPOINT shows one regular file, "file", whose reads are fd-backed replies of
 * FILE. Read-only; runs until unmounted. Main thread and libfuse's workers. */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2

static const char *source;
static int source_fd = -1;
static int splice_mode = 2; /* $BENCH_SPLICE: 0 copy, 1 splice, 2 splice and move */

static int stat_of(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (ino != FILE_INO)
		return -ENOENT;
	if (fstat(source_fd, st) < 0)
		return -errno;
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	return 0;
}

static void pt_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (splice_mode >= 1 && (conn->capable & FUSE_CAP_SPLICE_WRITE))
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	else
		conn->want &= ~FUSE_CAP_SPLICE_WRITE;
	if (splice_mode >= 2 && (conn->capable & FUSE_CAP_SPLICE_MOVE))
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	else
		conn->want &= ~FUSE_CAP_SPLICE_MOVE;
	conn->max_write = 1 << 20;
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (parent != FUSE_ROOT_ID || strcmp(name, "file")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int err = stat_of(FILE_INO, &e.attr);
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	e.ino = FILE_INO;
	e.attr_timeout = e.entry_timeout = 3600;
	fuse_reply_entry(req, &e);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int err = stat_of(ino, &st);

	(void)fi;
	if (err < 0)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, 3600);
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	char buf[512];
	size_t n = 0;
	struct stat st = { .st_mode = S_IFREG };

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (off == 0) {
		st.st_ino = FILE_INO;
		n = fuse_add_direntry(req, buf, sizeof(buf), "file", &st, 1);
	}
	fuse_reply_buf(req, buf, n <= size ? n : 0);
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	(void)fi;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = source_fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, splice_mode >= 2 ? FUSE_BUF_SPLICE_MOVE : 0);
}

static const struct fuse_lowlevel_ops ops = {
	.init = pt_init,
	.lookup = pt_lookup,
	.getattr = pt_getattr,
	.readdir = pt_readdir,
	.open = pt_open,
	.read = pt_read,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	struct fuse_loop_config *loop;
	int rc = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_passthrough FILE MOUNTPOINT [-f] [-o OPTS]\n");
		return 2;
	}
	source = argv[1];
	if (getenv("BENCH_SPLICE"))
		splice_mode = atoi(getenv("BENCH_SPLICE"));
	if ((source_fd = open(source, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "bench_passthrough: %s: %s\n", source, strerror(errno));
		return 1;
	}
	/* libfuse parses "argv[0] MOUNTPOINT [options]" */
	argv[1] = argv[0];
	args = (struct fuse_args)FUSE_ARGS_INIT(argc - 1, argv + 1);
	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint) {
		fprintf(stderr, "bench_passthrough: bad arguments\n");
		goto out_args;
	}
	if (!(se = fuse_session_new(&args, &ops, sizeof(ops), NULL)))
		goto out_opts;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	if (!(loop = fuse_loop_cfg_create()))
		goto out_unmount;
	fuse_loop_cfg_set_max_threads(loop, 16);
	rc = fuse_session_loop_mt(se, loop) < 0;
	fuse_loop_cfg_destroy(loop);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_opts:
	free(opts.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	close(source_fd);
	return rc;
}
