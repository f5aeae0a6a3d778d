#include "cmd_mount.h"

#include "drive.h"
#include "fs.h"

#include <ledger.h>

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <unistd.h>

static int explain(const char *cmd, const char *path, int err)
{
	if (err == -ENODATA || err == -ENOTSUP || err == -EOPNOTSUPP)
		fprintf(stderr, "swarmfs %s: %s is not in a mounted swarmfs drive\n", cmd, path);
	else
		fprintf(stderr, "swarmfs %s: %s: %s\n", cmd, path, strerror(-err));
	return 1;
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* KEY is 64 hex digits, or the name of a key in the data directory (its public key). */
static int key_arg(const char *home_opt, const char *key, char out_hex[LEDGER_HEX_LEN])
{
	struct ledger_key *k;
	uint8_t pub[LEDGER_KEY_LEN];
	char *home = NULL, *path = NULL;
	int err;

	if (is_hex64(key)) {
		for (int i = 0; i < 64; i++)
			out_hex[i] = (char)tolower((unsigned char)key[i]);
		out_hex[64] = '\0';
		return 0;
	}
	if ((err = fs_home_resolve(home_opt, &home)) < 0)
		return err;
	if (strchr(key, '/'))
		path = strdup(key);
	else if (asprintf(&path, "%s/keys/%s.key", home, key) < 0)
		path = NULL;
	free(home);
	if (!path)
		return -ENOMEM;
	err = ledger_key_load(path, &k);
	free(path);
	if (err < 0)
		return err;
	ledger_key_public(k, pub);
	ledger_key_free(k);
	ledger_hex(pub, sizeof pub, out_hex);
	return 0;
}

int fs_cmd_transfer(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "home", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *to = NULL, *home = NULL;
	char hex[LEDGER_HEX_LEN], *owner = NULL;
	int c, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't': to = optarg; break;
		case 'H': home = optarg; break;
		case 'h':
			printf(
			    "usage: swarmfs transfer PATH --to KEY\n\n"
			    "Give a file of yours in a mounted drive to another member. KEY is 64\n"
			    "hex digits or the name of a key in the data directory (--home).\n");
			return 0;
		default: return FS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !to) {
		fprintf(stderr, "usage: swarmfs transfer PATH --to KEY\n");
		return FS_EXIT_USAGE;
	}
	if ((err = key_arg(home, to, hex)) < 0) {
		fprintf(stderr, "swarmfs transfer: '%s' is neither 64 hex digits nor a key: %s\n",
		        to, strerror(-err));
		return FS_EXIT_USAGE;
	}
	if (setxattr(argv[optind], "user.swarmfs.transfer", hex, 64, 0) < 0) {
		err = -errno;
		if (err == -EACCES)
			fprintf(stderr, "swarmfs transfer: %s is not yours to give\n",
			        argv[optind]);
		else if (err == -ENOKEY)
			fprintf(
			    stderr,
			    "swarmfs transfer: %s is not a member of this drive (the admin adds it:"
			    " swarmfs drive add-member)\n",
			    to);
		else
			return explain("transfer", argv[optind], err);
		return 1;
	}
	if (fs_mount_ask(argv[optind], "owner", &owner) == 0) {
		printf("%s now belongs to %s\n", argv[optind], owner);
		free(owner);
	}
	return 0;
}

static int one_path(int argc, char **argv, const char *cmd, const char *usage)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: swarmfs %s\n", usage);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: swarmfs %s\n", usage);
		return FS_EXIT_USAGE;
	}
	(void)cmd;
	return -1;
}

int fs_cmd_rekey(int argc, char **argv)
{
	int rc = one_path(argc, argv, "rekey", "rekey PATH");

	if (rc >= 0)
		return rc;
	if (setxattr(argv[1], "user.swarmfs.rekey", "1", 1, 0) < 0) {
		int err = -errno;

		if (err == -EMEDIUMTYPE)
			fprintf(stderr,
			        "swarmfs rekey: %s is on a public drive: its content is not "
			        "encrypted\n",
			        argv[1]);
		else if (err == -EACCES)
			fprintf(stderr, "swarmfs rekey: %s is not yours\n", argv[1]);
		else
			return explain("rekey", argv[1], err);
		return 1;
	}
	printf("%s: re-encrypted under the newest epoch key (published when the queue "
	       "empties)\n",
	       argv[1]);
	return 0;
}

int fs_cmd_magnet(int argc, char **argv)
{
	char *text;
	bool v1 = argc == 3 && !strcmp(argv[1], "--v1");
	int rc;

	if (v1) { /* magnet --v1 PATH: the v1-only companion, for clients without BEP 52 */
		argv++;
		argc--;
	}
	rc = one_path(argc, argv, "magnet", "magnet [--v1] PATH");
	if (rc >= 0)
		return rc;
	if ((rc = fs_mount_ask(argv[1], v1 ? "magnet-v1" : "magnet", &text)) < 0) {
		if (rc == -EREMOTE) {
			fprintf(stderr,
			        "swarmfs magnet: %s: a v1-only magnet comes from the node that "
			        "published the file (it holds it whole)\n",
			        argv[1]);
			return 1;
		}
		return explain("magnet", argv[1], rc);
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

/* Read all of path through the mount (the swarm fills the cache as for any reader),
 * discarding the bytes. 0 or -errno. */
static int read_through(const char *path)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY), err = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

static const char pin_usage[] =
    "usage: swarmfs pin PATH...\n"
    "       swarmfs unpin PATH...\n\n"
    "pin: fetch the whole file into the cache, keep it there (never evicted) and record\n"
    "this node's signed host claim on the drive's ledger, so that `swarmfs health`\n"
    "counts it as a holder. unpin: withdraw the claim and let the cache evict it again\n"
    "(unless it is the last known copy). This node's key must be a member of the drive.\n";

static int pin_one(const char *path, bool pin)
{
	const char *cmd = pin ? "pin" : "unpin";
	char *holders = NULL;
	int err = 0;

	/* a pin reads the file first, through the mount: the same fetch as any reader,
	 * with no deadline for the whole file; the mount then finds it all here */
	for (int tries = 0; tries < 3; tries++) {
		if (pin && (err = read_through(path)) < 0)
			break;
		err = setxattr(path, pin ? "user.swarmfs.pin" : "user.swarmfs.unpin", "1", 1, 0) < 0
		          ? -errno
		          : 0;
		if (err != -EAGAIN)
			break; /* EAGAIN: evicted again meanwhile (a small cache): read again */
	}
	if (err == -EACCES || err == -EPERM)
		fprintf(stderr,
		        "swarmfs %s: %s: refused: this mount's key is no member of the drive "
		        "(a host claim must be a member's), or you do not own the mount\n",
		        cmd, path);
	else if (err == -EROFS)
		fprintf(stderr, "swarmfs %s: %s: the drive is mounted without a key (read-only)\n",
		        cmd, path);
	else if (err == -EISDIR)
		fprintf(stderr, "swarmfs %s: %s is a directory: give its files\n", cmd, path);
	else if (err == -ENOENT && !pin)
		fprintf(stderr, "swarmfs unpin: %s was not pinned by this node\n", path);
	else if (err == -EAGAIN)
		fprintf(stderr,
		        "swarmfs pin: %s: the cache cannot hold the whole file (--cache-size)\n",
		        path);
	else if (err < 0)
		return explain(cmd, path, err);
	if (err < 0)
		return 1;
	/* the claim counts once a block holds it: the count may not show it yet */
	fs_mount_ask(path, "holders", &holders);
	printf("%s: %s, host claim %s (holders in the chain so far: %s)\n", path,
	       pin ? "pinned" : "unpinned", pin ? "submitted" : "withdrawn",
	       holders ? holders : "?");
	free(holders);
	return 0;
}

static int pin_cmd(int argc, char **argv, bool pin)
{
	int rc = 0;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("%s", pin_usage);
		return 0;
	}
	if (argc < 2) {
		fprintf(stderr, "%s", pin_usage);
		return FS_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++)
		rc |= pin_one(argv[i], pin);
	return rc;
}

int fs_cmd_pin(int argc, char **argv)
{
	return pin_cmd(argc, argv, true);
}

int fs_cmd_unpin(int argc, char **argv)
{
	return pin_cmd(argc, argv, false);
}
