/* swarmfs add: import an existing torrent (a .torrent file or a magnet link) into a
 * mounted drive. The command finds the mount and asks it through the attribute
 * user.swarmfs.add on the destination directory (DESIGN.md §7); the mount reads the
 * torrent, fetches a magnet's metadata and signs the claims (into a private drive: the
 * whole content, published encrypted). Main thread. */
#include "cmd_mount.h"

#include "drive.h"
#include "fs.h"
#include "torrent_arg.h"

#include <ledger.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* The mount point of a drive: DRIVE itself when it is a path in a swarmfs mount; else
 * the live swarmfs mount whose drive has DRIVE as its id, or (when DRIVE names a drive
 * in the data directory) that drive's id, or else whose source is swarmfs:DRIVE. Dead
 * mounts are skipped; two live candidates are -EMLINK. */
static int find_mount(const char *home_opt, const char *drive, char **out)
{
	char line[8192], want[512], id[LEDGER_HEX_LEN] = "", *text = NULL, *home = NULL;
	char *found = NULL;
	int matches = 0;
	FILE *f;

	if (fs_mount_ask(drive, "drive", &text) == 0) {
		free(text);
		*out = strdup(drive);
		return *out ? 0 : -ENOMEM;
	}
	if (fs_home_resolve(home_opt, &home) == 0 && fs_drive_resolve(home, drive, id) < 0)
		id[0] = '\0';
	free(home);
	snprintf(want, sizeof want, "swarmfs:%s", drive);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof line, f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTIONS */
		char *dash = strstr(line, " - "), *fields[5], *save = NULL, fstype[64], source[512];
		int n = 0;

		if (!dash || sscanf(dash + 3, "%63s %511s", fstype, source) != 2 ||
		    strcmp(fstype, "fuse.swarmfs"))
			continue;
		for (char *tok = strtok_r(line, " ", &save); tok && n < 5;
		     tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		if (n < 5 || fs_mount_ask(fields[4], "drive", &text) < 0)
			continue; /* dead, or not ours to ask */
		bool same = *id ? strstr(text, id) != NULL
		                : !strcmp(source, want) || strstr(text, drive) != NULL;
		free(text);
		if (!same)
			continue;
		matches++;
		free(found);
		found = strdup(fields[4]);
	}
	fclose(f);
	if (matches > 1) {
		free(found);
		return -EMLINK;
	}
	if (!found)
		return matches ? -ENOMEM : -ENOENT;
	*out = found;
	return 0;
}

static const char add_usage[] =
    "usage: swarmfs add [--home DIR] DRIVE|MOUNTPOINT FILE.torrent|MAGNET /dest/path\n\n"
    "Import an existing torrent into a mounted drive, claimed by the mount's key; its\n"
    "content is read from the torrent's swarm, only the pieces a read needs.\n"
    "Into a private drive the content is fetched whole first (the command waits; it\n"
    "fails when nothing comes for the read timeout), then each file is published\n"
    "encrypted, as a copy: its record cites nothing of the source torrent.\n\n"
    "  /dest/path    a torrent of one file: that file; of several: a directory of\n"
    "                the torrent's tree\n"
    "  /dest/dir/    into that directory, under the torrent's own name\n"
    "The destination's directory must exist; the directories inside the torrent\n"
    "are made.\n\n" FS_TORRENT_EXIT_HELP;

/* The mount's reason for the last failed add, or strerror. */
static void print_failure(const char *mnt, const char *src, int err)
{
	char *text = NULL;

	if (fs_mount_ask(mnt, "add-error", &text) == 0 && *text)
		fprintf(stderr, "swarmfs add: %s\n", text);
	else
		fprintf(stderr, "swarmfs add: %s: %s\n", src, strerror(-err));
	free(text);
}

int fs_cmd_add(int argc, char **argv)
{
	char *mnt = NULL, *value = NULL, src[PATH_MAX], parent[PATH_MAX * 2];
	const char *dest, *base, *home = NULL;
	struct stat st;
	int err, code;

	if (argc > 2 && !strcmp(argv[1], "--home")) {
		home = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("%s", add_usage);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "%s", add_usage);
		return FS_EXIT_USAGE;
	}
	/* the torrent first: a bad one is named before anything else is asked */
	if ((code = fs_torrent_arg_check("add", argv[2], src, sizeof src, NULL, NULL)) != 0)
		return code;
	if ((err = find_mount(home, argv[1], &mnt)) < 0) {
		if (err == -EMLINK)
			fprintf(stderr,
			        "swarmfs add: several mounted drives match '%s': name the "
			        "mount point\n",
			        argv[1]);
		else
			fprintf(stderr,
			        "swarmfs add: drive '%s' is not mounted here (mount it "
			        "first)\n",
			        argv[1]);
		return 1;
	}
	dest = argv[3];
	while (*dest == '/')
		dest++;
	/* "/dest/": into it, under the torrent's own name (base "") */
	base = strrchr(dest, '/') ? strrchr(dest, '/') + 1 : dest;
	if (!strcmp(base, ".") || !strcmp(base, "..")) {
		fprintf(stderr, "swarmfs add: '%s' names no file\n", argv[3]);
		free(mnt);
		return FS_EXIT_USAGE;
	}
	snprintf(parent, sizeof parent, "%s/%.*s", mnt, (int)(base - dest), dest);
	/* the directory is the problem when it is missing, not the torrent */
	int e = stat(parent, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (e) {
		fprintf(stderr, "swarmfs add: /%.*s %s\n", base > dest ? (int)(base - dest - 1) : 0,
		        dest, e == ENOTDIR ? "is not a directory" : "does not exist");
		free(mnt);
		return FS_EXIT_NO_DEST;
	}
	if (asprintf(&value, "%s\n%s", base, src) < 0) {
		free(mnt);
		return 1;
	}
	code = 0;
	if (setxattr(parent, "user.swarmfs.add", value, strlen(value), 0) < 0) {
		err = -errno;
		print_failure(mnt, argv[2], err);
		/* a magnet's add waits with the waiter until the read timeout, then EIO */
		code = err == -ETIMEDOUT || (err == -EIO && !strncmp(src, "magnet:", 7))
		           ? FS_EXIT_NO_METADATA
		       : err == -EBADMSG ? FS_EXIT_NOT_TORRENT
		                         : 1;
	} else {
		printf("%s/%s\n", mnt, dest);
	}
	free(value);
	free(mnt);
	return code;
}
