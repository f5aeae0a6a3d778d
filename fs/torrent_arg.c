/* FILE.torrent|MAGNET arguments, checked. See torrent_arg.h. */
#include "torrent_arg.h"

#include "drive.h"

#include <swarm.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool fs_torrent_arg_is_magnet(const char *arg)
{
	return !strncmp(arg, "magnet:", 7);
}

static bool all_of(const char *s, size_t n, int (*is)(int))
{
	for (size_t i = 0; i < n; i++)
		if (!is((unsigned char)s[i]))
			return false;
	return true;
}

static int is_base32(int c)
{
	c = toupper(c);
	return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
}

/* One xt= value (up to the next '&'): 0 if it names a torrent well. */
static int check_topic(const char *v, size_t n, const char **out_hash, size_t *out_n)
{
	static const char btih[] = "urn:btih:", btmh[] = "urn:btmh:";

	if (n >= sizeof btih - 1 && !strncmp(v, btih, sizeof btih - 1)) {
		*out_hash = v + sizeof btih - 1;
		*out_n = n - (sizeof btih - 1);
		if ((*out_n == 40 && all_of(*out_hash, 40, isxdigit)) ||
		    (*out_n == 32 && all_of(*out_hash, 32, is_base32)))
			return 0;
		return -EINVAL;
	}
	if (n >= sizeof btmh - 1 && !strncmp(v, btmh, sizeof btmh - 1)) {
		*out_hash = v + sizeof btmh - 1;
		*out_n = n - (sizeof btmh - 1);
		if (*out_n == 68 && !strncmp(*out_hash, "1220", 4) &&
		    all_of(*out_hash + 4, 64, isxdigit))
			return 0;
		return -EPROTO;
	}
	*out_hash = v;
	*out_n = n;
	return -ENOENT;
}

static int check_magnet(const char *cmd, const char *m)
{
	const char *q = strchr(m, '?');
	int topics = 0;

	for (const char *p = q; p && *p; p = strchr(p, '&')) {
		const char *h;
		size_t n, len;

		p++;
		len = strcspn(p, "&");
		if (strncmp(p, "xt=", 3))
			continue;
		int rc = check_topic(p + 3, len - 3, &h, &n);
		if (rc == -EINVAL)
			fprintf(stderr,
			        "swarmfs %s: magnet: '%.*s' is not a 40-hex or 32-base32 btih\n",
			        cmd, (int)n, h);
		else if (rc == -EPROTO)
			fprintf(
			    stderr,
			    "swarmfs %s: magnet: '%.*s' is not a btmh of 1220 and 64 hex digits\n",
			    cmd, (int)n, h);
		else if (rc == -ENOENT)
			fprintf(stderr,
			        "swarmfs %s: magnet: '%.*s' is neither urn:btih: nor urn:btmh:\n",
			        cmd, (int)n, h);
		if (rc < 0)
			return FS_EXIT_BAD_MAGNET;
		topics++;
	}
	if (!topics) {
		fprintf(stderr, "swarmfs %s: magnet: no xt=urn:btih: or xt=urn:btmh: in '%s'\n",
		        cmd, m);
		return FS_EXIT_BAD_MAGNET;
	}
	return 0;
}

int fs_torrent_arg_check(const char *cmd, const char *arg, char *abs, size_t abs_len,
                         void **out_bytes, size_t *out_len)
{
	struct swarm_metainfo *m = NULL;
	const char *why = "";
	char path[PATH_MAX];
	void *bytes = NULL;
	size_t len = 0;
	int err;

	if (fs_torrent_arg_is_magnet(arg)) {
		if ((err = check_magnet(cmd, arg)) != 0)
			return err;
		snprintf(abs, abs_len, "%s", arg);
		return 0;
	}
	if (!realpath(arg, path)) {
		fprintf(stderr, "swarmfs %s: %s: %s\n", cmd, arg, strerror(errno));
		return 1;
	}
	if ((err = fs_read_file(path, 64 << 20, &bytes, &len)) < 0) {
		if (err == -EFBIG)
			fprintf(stderr,
			        "swarmfs %s: %s: not a torrent file (empty, not a regular "
			        "file, or over 64 MiB)\n",
			        cmd, arg);
		else
			fprintf(stderr, "swarmfs %s: %s: %s\n", cmd, arg, strerror(-err));
		return err == -EFBIG ? FS_EXIT_NOT_TORRENT : 1;
	}
	if ((err = swarm_metainfo_parse(bytes, len, &m, &why)) < 0) {
		fprintf(stderr, "swarmfs %s: %s: not a torrent file (%s)\n", cmd, arg, why);
		free(bytes);
		return err == -ENOMEM ? 1 : FS_EXIT_NOT_TORRENT;
	}
	swarm_metainfo_free(m);
	snprintf(abs, abs_len, "%s", path);
	if (out_bytes) {
		*out_bytes = bytes;
		*out_len = len;
	} else {
		free(bytes);
	}
	return 0;
}
