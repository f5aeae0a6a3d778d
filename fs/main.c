/* swarmfs: command-line entry point and subcommand dispatch. */
#include "cmd_ledger.h"
#include "cmd_mount.h"
#include "fs.h"
#include "torrent_arg.h"
#include "torrentfs.h"
#include "mount_opts.h"
#include "uri.h"

#include <cache.h>
#include <ledger.h>
#include <swarm.h>

#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SWARMFS_VERSION
#define SWARMFS_VERSION "0.0.0"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* NULL: not built yet */
	const char *synopsis;
	const char *summary;
};

static const struct command commands[] = {
	{ "init", fs_cmd_init, "init [--home DIR] [--name NAME] [--tracker URL] [--public]",
	  "make my key (if none) and a new drive (private unless --public); print its URI" },
	{ "invite", fs_cmd_invite, "invite DRIVE|MOUNTPOINT [--producer] [--expires D]",
	  "a one-time URI that admits a new member to a private drive" },
	{ "mount", fs_cmd_mount, "mount [OPTIONS] DRIVE MOUNTPOINT",
	  "mount a drive (DRIVE = name, id or swarmfs:// URI)" },
	{ "umount", fs_cmd_umount, "umount MOUNTPOINT", "unmount a mounted drive" },
	{ "status", fs_cmd_status, "status MOUNTPOINT",
	  "drive, height, peers, cache use, publish queue" },
	{ "log", fs_cmd_log, "log DRIVE|PATH [PATH]",
	  "history of a path: every record with its block" },
	{ "credit", fs_cmd_credit, "credit DRIVE|MOUNTPOINT [--json]",
	  "bytes each member uploaded and downloaded, from receipts" },
	{ "pin", fs_cmd_pin, "pin PATH...",
	  "keep a whole copy of files (never evicted) and record a host claim" },
	{ "unpin", fs_cmd_unpin, "unpin PATH...", "withdraw the host claim, let the cache evict" },
	{ "health", fs_cmd_health, "health DRIVE|PATH [--json]",
	  "how many members hold each file; those below the replica target" },
	{ "verify", fs_cmd_verify, "verify DRIVE",
	  "re-check the whole chain; report any tampering" },
	{ "transfer", fs_cmd_transfer, "transfer PATH --to KEY", "give a file to another key" },
	{ "add", fs_cmd_add, "add DRIVE FILE.torrent|MAGNET /dest/path",
	  "import an existing torrent" },
	{ "rekey", fs_cmd_rekey, "rekey PATH",
	  "re-encrypt a private file of yours under the newest epoch key (cuts off removed "
	  "members)" },
	{ "magnet", fs_cmd_magnet, "magnet [--v1] PATH",
	  "the magnet link of a file (--v1: a v1-only torrent of it, for aria2c)" },
	{ "key", fs_cmd_key, "key new|show [NAME]", "make or show a signing key" },
	{ "drive", fs_cmd_drive, "drive list|show|members|add-member|remove-member|set ...",
	  "list drives, show one, its members; add or remove one; set --replicas" },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: swarmfs [--version] [--help] COMMAND [ARGS]\n\n"
	           "A shared drive without a server: a FUSE filesystem backed by BitTorrent\n"
	           "swarms and a signed ownership ledger.\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-44s %s\n", commands[i].synopsis, commands[i].summary);
	fprintf(f, "\n'swarmfs COMMAND --help' describes one command.\n");
}

static void version(void)
{
	printf("swarmfs %s\n", SWARMFS_VERSION);
	printf("libfuse %d.%d, libtorrent-rasterbar %s, SQLite %s\n", FUSE_MAJOR_VERSION,
	       FUSE_MINOR_VERSION, swarm_libtorrent_version(), ledger_sqlite_version());
}

static void mount_usage(FILE *f)
{
	fprintf(
	    f, "usage: swarmfs mount [OPTIONS] DRIVE MOUNTPOINT\n"
	       "       swarmfs mount [OPTIONS] FILE.torrent|MAGNET MOUNTPOINT\n\n"
	       "The second form mounts one torrent read-only, without a drive or a key: its\n"
	       "tree, read on demand (--home keeps its cache under torrents/).\n\n"
	       "  -f, --foreground        stay in the foreground, log to stderr\n"
	       "  -d, --debug             trace FUSE requests (implies -f)\n"
	       "      --home DIR          data directory (default $SWARMFS_HOME,\n"
	       "                          $XDG_DATA_HOME/swarmfs, ~/.local/share/swarmfs)\n"
	       "      --key NAME|PATH     signing key (default: keys/default.key in the\n"
	       "                          data directory; without one the mount is read-only)\n"
	       "      --cache-size SIZE   cache cap, e.g. 512M, 10G (default 10G)\n"
	       "      --allow-other       let other users use the mount\n"
	       "      --listen ADDR:PORT  BitTorrent listen address (default 0.0.0.0:0, any port)\n"
	       "      --tracker URL       announce to this tracker (repeatable)\n"
	       "      --peer HOST:PORT    try this peer for every torrent (repeatable)\n"
	       "      --no-dht            do not use the DHT\n"
	       "      --dht-bootstrap HOST:PORT  join the DHT through this node (repeatable;\n"
	       "                          default: router.bittorrent.com, router.utorrent.com,\n"
	       "                          dht.transmissionbt.com, dht.libtorrent.org)\n"
	       "      --lsd               local service discovery: find peers on this LAN\n"
	       "                          by multicast, without a tracker (default off)\n"
	       "      --utp on|off        uTP as well as TCP (default off: TCP is faster on\n"
	       "                          loopback and LANs)\n"
	       "      --upload-limit SIZE seed at most SIZE bytes a second, e.g. 512K, 2M\n"
	       "                          (default: unlimited; LAN peers count too)\n"
	       "      --no-receipts       sign no credit receipts for what this node reads\n"
	       "                          (its uploaders get no credit for it)\n"
	       "      --read-timeout SECS a read waiting for the swarm fails with EIO after\n"
	       "                          this long (default 30)\n"
	       "      --volunteer SIZE    host files below the drive's replica target by\n"
	       "                          itself, the most needed first, up to SIZE in all\n"
	       "                          (e.g. 50G): fetched whole, pinned, host claims\n"
	       "      --seed-max N        load the torrents of at most N held files at mount\n"
	       "                          or as published (default 1000); the others load\n"
	       "                          when a peer asks\n"
	       "  -o OPT[,OPT...]         FUSE mount options; every flag above is also an\n"
	       "                          option: -o home=DIR,tracker=URL,no_dht,...\n"
	       "  -h, --help              this text\n\n"
	       "Unmount with 'fusermount3 -u MOUNTPOINT', 'swarmfs umount MOUNTPOINT',\n"
	       "or SIGINT/SIGTERM to a foreground mount.\n\n" FS_TORRENT_EXIT_HELP);
}

static int mount_parsed(int argc, char **argv);

/* A mount opens a data file for each file it has published or read (the cache keeps
 * them open) and libtorrent its sockets: the soft limit on open files (1024 on most
 * systems) runs out after a thousand small files. Raise it to the hard limit, as a
 * daemon may; a failure leaves the limit as it was. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "swarmfs mount: cannot raise the open-file limit: %s\n",
			        strerror(errno));
	}
}

/* -o home=...,tracker=... as well as --home, --tracker: see mount_opts.h */
int fs_cmd_mount(int argc, char **argv)
{
	char **xargv;
	int xargc, rc;

	if (fs_mount_argv_expand(argc, argv, &xargc, &xargv) < 0)
		return FS_EXIT_USAGE;
	rc = mount_parsed(xargc, xargv);
	fs_mount_argv_free(xargv);
	return rc;
}

static int mount_parsed(int argc, char **argv)
{
	enum {
		OPT_HOME = 256,
		OPT_CACHE,
		OPT_ALLOW_OTHER,
		OPT_KEY,
		OPT_LISTEN,
		OPT_TRACKER,
		OPT_PEER,
		OPT_NO_DHT,
		OPT_READ_TIMEOUT,
		OPT_UPLOAD_LIMIT,
		OPT_DHT_BOOTSTRAP,
		OPT_LSD,
		OPT_UTP,
		OPT_NO_RECEIPTS,
		OPT_VOLUNTEER,
		OPT_SEED_MAX
	};
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "home", required_argument, NULL, OPT_HOME },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "tracker", required_argument, NULL, OPT_TRACKER },
		{ "peer", required_argument, NULL, OPT_PEER },
		{ "no-dht", no_argument, NULL, OPT_NO_DHT },
		{ "dht-bootstrap", required_argument, NULL, OPT_DHT_BOOTSTRAP },
		{ "lsd", no_argument, NULL, OPT_LSD },
		{ "utp", required_argument, NULL, OPT_UTP },
		{ "read-timeout", required_argument, NULL, OPT_READ_TIMEOUT },
		{ "upload-limit", required_argument, NULL, OPT_UPLOAD_LIMIT },
		{ "no-receipts", no_argument, NULL, OPT_NO_RECEIPTS },
		{ "volunteer", required_argument, NULL, OPT_VOLUNTEER },
		{ "seed-max", required_argument, NULL, OPT_SEED_MAX },
		{ "cache-size", required_argument, NULL, OPT_CACHE },
		{ "allow-other", no_argument, NULL, OPT_ALLOW_OTHER },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fs_mount_opts o = { .dht = true, .seed_max = FS_SEED_MAX_DEFAULT };
	char **fuse_opts = calloc((size_t)argc + 1, sizeof *fuse_opts);
	char **trackers = calloc((size_t)argc + 1, sizeof *trackers);
	char **peers = calloc((size_t)argc + 1, sizeof *peers);
	char **boot = calloc((size_t)argc + 1, sizeof *boot);
	size_t n_opts = 0, n_tr = 0, n_peers = 0, n_boot = 0;
	char *end;
	long secs;
	int c, rc;

	if (!fuse_opts || !trackers || !peers || !boot) {
		free(boot);
		free(fuse_opts);
		free(trackers);
		free(peers);
		return 1;
	}
	o.trackers = trackers;
	o.peers = peers;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fdho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.foreground = true; break;
		case 'd': o.debug = true; break;
		case 'o': fuse_opts[n_opts++] = optarg; break;
		case OPT_HOME: o.home = optarg; break;
		case OPT_KEY: o.key = optarg; break;
		case OPT_LISTEN: o.listen = optarg; break;
		case OPT_NO_RECEIPTS: o.no_receipts = true; break;
		case OPT_TRACKER: trackers[n_tr++] = optarg; break;
		case OPT_PEER:
			if (fs_uri_peer_valid(optarg) < 0) {
				fprintf(stderr, "swarmfs mount: bad --peer '%s': want HOST:PORT\n",
				        optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			peers[n_peers++] = optarg;
			break;
		case OPT_NO_DHT: o.dht = false; break;
		case OPT_DHT_BOOTSTRAP:
			if (fs_uri_peer_valid(optarg) < 0) {
				fprintf(stderr,
				        "swarmfs mount: bad --dht-bootstrap '%s': want HOST:PORT\n",
				        optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			boot[n_boot++] = optarg;
			o.dht_bootstrap = boot;
			break;
		case OPT_LSD: o.lsd = true; break;
		case OPT_UTP:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "swarmfs mount: bad --utp '%s': want on or off\n",
				        optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			o.utp = !strcmp(optarg, "on");
			break;
		case OPT_SEED_MAX:
			secs = strtol(optarg, &end, 10);
			if (end == optarg || *end || secs < 0 || secs > 100000000) {
				fprintf(stderr,
				        "swarmfs mount: bad --seed-max '%s': want a number of "
				        "files, 0..100000000\n",
				        optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			o.seed_max = (size_t)secs;
			break;
		case OPT_READ_TIMEOUT:
			secs = strtol(optarg, &end, 10);
			if (*end || secs < 1 || secs > 86400) {
				fprintf(stderr,
				        "swarmfs mount: bad --read-timeout '%s': want 1..86400 "
				        "seconds\n",
				        optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			o.read_timeout_ms = (int)secs * 1000;
			break;
		case OPT_UPLOAD_LIMIT: {
			uint64_t lim;

			rc = cache_size_parse(optarg, &lim);
			if (rc < 0 || lim > INT32_MAX) {
				fprintf(stderr,
				        "swarmfs mount: bad --upload-limit '%s': want bytes a "
				        "second, e.g. 512K (at most 2G)\n",
				        optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			o.upload_limit = (int)lim;
			break;
		}
		case OPT_ALLOW_OTHER: o.allow_other = true; break;
		case OPT_VOLUNTEER:
			rc = cache_size_parse(optarg, &o.volunteer);
			if (rc < 0 || !o.volunteer) {
				fprintf(
				    stderr,
				    "swarmfs mount: bad --volunteer '%s': want a size, e.g. 50G\n",
				    optarg);
				rc = FS_EXIT_USAGE;
				goto done;
			}
			break;
		case OPT_CACHE:
			rc = cache_size_parse(optarg, &o.cache_size);
			if (rc < 0) {
				fprintf(stderr, "swarmfs mount: bad --cache-size '%s': %s\n",
				        optarg, strerror(-rc));
				rc = FS_EXIT_USAGE;
				goto done;
			}
			break;
		case 'h':
			mount_usage(stdout);
			rc = 0;
			goto done;
		default:
			mount_usage(stderr);
			rc = FS_EXIT_USAGE;
			goto done;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "swarmfs mount: need DRIVE and MOUNTPOINT\n");
		mount_usage(stderr);
		rc = FS_EXIT_USAGE;
		goto done;
	}
	o.drive = argv[optind];
	o.mountpoint = argv[optind + 1];
	o.fuse_opts = fuse_opts;
	raise_nofile();
	if (fs_torrent_arg_is_magnet(o.drive) || fs_torrentfs_is_torrent(o.drive))
		rc = fs_torrentfs_run(&o); /* a torrent, not a drive */
	else
		rc = fs_mount_run(&o);
done:
	free(boot);
	free(fuse_opts);
	free(trackers);
	free(peers);
	return rc;
}

int fs_cmd_umount(int argc, char **argv)
{
	pid_t pid;
	int status;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: swarmfs umount MOUNTPOINT\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : FS_EXIT_USAGE;
	}
	/* fusermount3 is the one tool that unmounts FUSE for root and users alike. */
	pid = fork();
	if (pid < 0) {
		perror("swarmfs umount: fork");
		return 1;
	}
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", argv[1], (char *)NULL);
		perror("swarmfs umount: fusermount3");
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	const char *dbg = getenv("SWARMFS_DEBUG");

	if (dbg && *dbg && strcmp(dbg, "0"))
		fs_log_set_level(LOG_DEBUG);
	/* before anything is logged: a unit's errors at startup carry their priority too */
	fs_log_use_journal();
	if (argc < 2) {
		usage(stderr);
		return FS_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		version();
		return 0;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (!commands[i].run) {
			fprintf(stderr, "swarmfs %s: not implemented yet\n", commands[i].name);
			return FS_EXIT_USAGE;
		}
		return commands[i].run(argc - 1, argv + 1);
	}
	/* mount(8) through mount.fuse3: swarmfs DRIVE MOUNTPOINT -o OPTIONS */
	if (argc == 5 && argv[1][0] != '-' && !strcmp(argv[3], "-o"))
		return fs_cmd_mount_helper(argc, argv, fs_cmd_mount);
	fprintf(stderr, "swarmfs: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return FS_EXIT_USAGE;
}
