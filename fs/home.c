#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_home_resolve(const char *explicit_home, char **out_path)
{
	const char *env;
	char *p = NULL;

	if (explicit_home && *explicit_home)
		p = strdup(explicit_home);
	else if ((env = getenv("SWARMFS_HOME")) && *env)
		p = strdup(env);
	else if ((env = getenv("XDG_DATA_HOME")) && *env) {
		if (asprintf(&p, "%s/swarmfs", env) < 0)
			p = NULL;
	} else if ((env = getenv("HOME")) && *env) {
		if (asprintf(&p, "%s/.local/share/swarmfs", env) < 0)
			p = NULL;
	} else
		return -ENOENT;
	if (!p)
		return -ENOMEM;
	if (p[0] != '/') { /* a daemonized mount runs in /: anchor it to the cwd now */
		char *cwd = getcwd(NULL, 0), *abs = NULL;

		if (!cwd || asprintf(&abs, "%s/%s", cwd, p) < 0)
			abs = NULL;
		free(cwd);
		free(p);
		if (!abs)
			return -ENOMEM;
		p = abs;
	}
	*out_path = p;
	return 0;
}

int fs_mkdirs(const char *path, unsigned mode)
{
	char *copy = strdup(path);
	char *s;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (s = copy + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(copy, mode) < 0 && errno != EEXIST) {
				err = -errno;
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(copy);
	return err;
}

int fs_drive_dir(const char *home, const char *drive, char **out_path)
{
	char *p;

	if (!*drive || strchr(drive, '/') || !strcmp(drive, ".") || !strcmp(drive, ".."))
		return -EINVAL;
	if (asprintf(&p, "%s/drives/%s", home, drive) < 0)
		return -ENOMEM;
	*out_path = p;
	return 0;
}

int fs_drive_lock(const char *drive_dir, long *out_holder)
{
	char path[4096], buf[32];
	int fd, err;
	ssize_t n;

	if (snprintf(path, sizeof path, "%s/lock", drive_dir) >= (int)sizeof path)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* flock, not a pid file alone: the kernel drops it when the owner dies, even by
	 * kill -9, so a stale lock never blocks the next mount. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		if (err == -EWOULDBLOCK) {
			n = pread(fd, buf, sizeof buf - 1, 0);
			buf[n > 0 ? n : 0] = '\0';
			if (out_holder)
				*out_holder = strtol(buf, NULL, 10);
			err = -EBUSY;
		}
		close(fd);
		return err;
	}
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}
