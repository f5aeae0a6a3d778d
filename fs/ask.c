/* fs_mount_ask (cmd_mount.h): a mount's answer through an attribute of one of its
 * paths. Its own file: the lean front (front.c) links it and nothing else of fs/. */
#include "cmd_mount.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>

int fs_mount_ask(const char *path, const char *name, char **out)
{
	char attr[64];
	ssize_t n;
	int err = -ERANGE;

	snprintf(attr, sizeof attr, "user.swarmfs.%s", name);
	/* the text may grow between asking its size and reading it (user.swarmfs.drive
	 * does when the mount's verification ends): then ask again */
	for (int tries = 0; tries < 5 && err == -ERANGE; tries++) {
		char *buf;

		n = getxattr(path, attr, NULL, 0);
		if (n < 0)
			return -errno;
		buf = malloc((size_t)n + 1);
		if (!buf)
			return -ENOMEM;
		n = getxattr(path, attr, buf, (size_t)n);
		if (n >= 0) {
			buf[n] = '\0';
			*out = buf;
			return 0;
		}
		err = -errno;
		free(buf);
	}
	return err;
}
