/* swarmfs status [--json | --watch] MOUNTPOINT: the mount's report on itself, asked
 * through attributes of its root (DESIGN.md §7): user.swarmfs.drive (text),
 * drive-json, drive-watch (the screen --watch redraws once a second). */
#include "cli.h"
#include "cmd_mount.h"
#include "fs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char status_usage[] =
    "usage: swarmfs status [--json | --watch] MOUNTPOINT\n\n"
    "The drive, its ledger height, sync, peers, cache use and publish queue.\n"
    "  --json   one JSON document (schema in swarmfs(1))\n"
    "  --watch  redraw once a second: per-torrent rates and pieces, the publish\n"
    "           queue with hashing progress, peers (Ctrl-C ends it)\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int complain(const char *path, int err)
{
	if (err == -ENODATA || err == -ENOTSUP || err == -EOPNOTSUPP)
		fprintf(stderr, "swarmfs status: %s is not the mount point of a swarmfs drive\n",
		        path);
	else
		fprintf(stderr, "swarmfs status: %s: %s\n", path, strerror(-err));
	return 1;
}

static int watch(const char *path)
{
	struct sigaction sa = { .sa_handler = on_signal };
	bool tty = isatty(STDOUT_FILENO);
	int frames = 0, rc = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the sleep ends at once */
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		struct timespec second = { .tv_sec = 1 };
		char *text;
		int err = fs_mount_ask(path, "drive-watch", &text);

		if (err < 0) {
			/* the first failure is the user's; a later one means the mount went */
			rc = frames ? (fprintf(stderr, "swarmfs status: %s: %s\n", path,
			                       strerror(-err)),
			               1)
			            : complain(path, err);
			break;
		}
		/* home the cursor and clear the screen: a terminal redraws in place; a
		 * pipe gets one frame after another */
		fputs(tty ? "\033[H\033[2J" : frames ? "\n" : "", stdout);
		fputs(text, stdout);
		fflush(stdout);
		free(text);
		frames++;
		nanosleep(&second, NULL);
	}
	return rc;
}

int fs_cmd_status(int argc, char **argv)
{
	bool json = fs_cli_take_flag(&argc, argv, "--json");
	bool watching = fs_cli_take_flag(&argc, argv, "--watch");
	char *text;
	int err;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(status_usage, stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-' || (json && watching)) {
		fputs(status_usage, stderr);
		return FS_EXIT_USAGE;
	}
	if (watching)
		return watch(argv[1]);
	if ((err = fs_mount_ask(argv[1], json ? "drive-json" : "drive", &text)) < 0)
		return complain(argv[1], err);
	fputs(text, stdout);
	free(text);
	return 0;
}
