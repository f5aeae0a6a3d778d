/* swarmfs: the command a user runs. `swarmfs status` is answered here; every other
 * command is the core's (swarmfs-core, main.c), run in this process by execv with the
 * same arguments (same pid, same argv[0], for mount(8) and systemd as before).
 *
 * Why two binaries: the core links libtorrent, libfuse, SQLite, OpenSSL and libsodium,
 * and the dynamic loader's relocations alone cost it ~20 ms of CPU at every start
 * (perf: _dl_relocate_object), before main. A status asked every second by a monitor,
 * or on a busy 2-core machine, paid that each time (issue 18: status p99 during the
 * sweep). This front links libc alone; status asks the mount through an attribute of
 * its root and never needed the rest.
 *
 * Where the core is: beside this binary (the build tree), else
 * ../libexec/swarmfs/swarmfs-core from it (the installed layout). */
#include "cmd_mount.h"
#include "fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char CORE[] = "swarmfs-core";

/* The core's path from the directory of our own executable: 0, or -errno. */
static int core_path(char *out, size_t n)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (len < 0)
		return -errno;
	self[len] = '\0';
	if (!(slash = strrchr(self, '/')))
		return -ENOENT;
	*slash = '\0';
	if (snprintf(out, n, "%s/%s", self, CORE) < (int)n && access(out, X_OK) == 0)
		return 0;
	if (snprintf(out, n, "%s/../libexec/swarmfs/%s", self, CORE) < (int)n &&
	    access(out, X_OK) == 0)
		return 0;
	return -ENOENT;
}

int main(int argc, char **argv)
{
	char core[PATH_MAX + 64];
	int err;

	if (argc >= 2 && !strcmp(argv[1], "status"))
		return fs_cmd_status(argc - 1, argv + 1);
	if ((err = core_path(core, sizeof core)) < 0) {
		fprintf(stderr,
		        "swarmfs: cannot find %s beside this program or in ../libexec/swarmfs: "
		        "%s (a broken install?)\n",
		        CORE, strerror(-err));
		return 127;
	}
	execv(core, argv);
	fprintf(stderr, "swarmfs: cannot run %s: %s\n", core, strerror(errno));
	return 127;
}
