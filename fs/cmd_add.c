/* swarmfs add: import an existing torrent (a .torrent file or a magnet link) into a
 * mounted drive. The command finds the mount and asks it through the attribute
 * user.swarmfs.add on the destination directory (DESIGN.md §7); the mount reads the
 * torrent, fetches a magnet's metadata and signs the claims. Main thread. */
#include "cmd_mount.h"

#include "drive.h"
#include "fs.h"

#include <ledger.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int fs_cmd_add(int argc, char **argv)
{
	const char *usage = "add [--home DIR] DRIVE|MOUNTPOINT FILE.torrent|MAGNET /dest/path";
	char *mnt = NULL, *value = NULL, src[PATH_MAX], parent[PATH_MAX * 2];
	const char *dest, *base, *home = NULL;
	int err;

	if (argc > 2 && !strcmp(argv[1], "--home")) {
		home = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: swarmfs %s\n\nImport an existing torrent of one file into a mounted "
		       "drive at /dest/path,\nclaimed by the mount's key; its content is read from "
		       "the torrent's swarm.\n",
		       usage);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: swarmfs %s\n", usage);
		return FS_EXIT_USAGE;
	}
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
	if (!strncmp(argv[2], "magnet:", 7))
		snprintf(src, sizeof src, "%s", argv[2]);
	else if (!realpath(argv[2], src)) {
		fprintf(stderr, "swarmfs add: %s: %s\n", argv[2], strerror(errno));
		free(mnt);
		return 1;
	}
	dest = argv[3];
	while (*dest == '/')
		dest++;
	base = strrchr(dest, '/') ? strrchr(dest, '/') + 1 : dest;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		fprintf(stderr, "swarmfs add: '%s' names no file\n", argv[3]);
		free(mnt);
		return FS_EXIT_USAGE;
	}
	snprintf(parent, sizeof parent, "%s/%.*s", mnt, (int)(base - dest), dest);
	if (asprintf(&value, "%s\n%s", base, src) < 0) {
		free(mnt);
		return 1;
	}
	if (setxattr(parent, "user.swarmfs.add", value, strlen(value), 0) < 0) {
		err = -errno;
		if (err == -EMEDIUMTYPE)
			fprintf(stderr, "swarmfs add: %s has more than one file\n", argv[2]);
		else if (err == -EEXIST)
			fprintf(stderr, "swarmfs add: %s exists already\n", argv[3]);
		else
			fprintf(stderr, "swarmfs add: %s: %s\n", argv[2], strerror(-err));
		free(value);
		free(mnt);
		return 1;
	}
	printf("%s/%s\n", mnt, dest);
	free(value);
	free(mnt);
	return 0;
}
