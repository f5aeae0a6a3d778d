/* swarmfs as mount.fuse3's helper, and -o options for every mount flag (see
 * mount_opts.h). */
#include "mount_opts.h"

#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -o KEY[=VALUE] that stand for a `swarmfs mount` flag: KEY spelt with '_' here.
 * A flag takes no value; an option with a bare default (utp) may be given bare. */
enum opt_value { NONE, REQUIRED, OPTIONAL };
static const struct {
	const char *key;
	const char *flag;
	enum opt_value value;
	const char *bare; /* OPTIONAL: the value of the bare option */
} swarmfs_opts[] = {
	{ "home", "--home", REQUIRED, NULL },
	{ "key", "--key", REQUIRED, NULL },
	{ "cache_size", "--cache-size", REQUIRED, NULL },
	{ "listen", "--listen", REQUIRED, NULL },
	{ "tracker", "--tracker", REQUIRED, NULL },
	{ "peer", "--peer", REQUIRED, NULL },
	{ "no_dht", "--no-dht", NONE, NULL },
	{ "dht_bootstrap", "--dht-bootstrap", REQUIRED, NULL },
	{ "lsd", "--lsd", NONE, NULL },
	{ "utp", "--utp", OPTIONAL, "on" },
	{ "upload_limit", "--upload-limit", REQUIRED, NULL },
	{ "no_receipts", "--no-receipts", NONE, NULL },
	{ "read_timeout", "--read-timeout", REQUIRED, NULL },
	{ "volunteer", "--volunteer", REQUIRED, NULL },
	{ "seed_max", "--seed-max", REQUIRED, NULL },
	{ "allow_other", "--allow-other", NONE, NULL },
};

/* Options for mount(8) and fstab alone: a FUSE mount must not see them. */
static bool mount8_only(const char *opt)
{
	static const char *const names[] = { "defaults", "auto",  "noauto", "_netdev",
		                             "nofail",   "user",  "users",  "nouser",
		                             "owner",    "group", NULL };

	for (int i = 0; names[i]; i++)
		if (!strcmp(opt, names[i]))
			return true;
	return !strncmp(opt, "x-", 2) || !strncmp(opt, "comment=", 8);
}

static int push(char ***v, int *n, int *cap, const char *s)
{
	if (*n + 2 > *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		char **nv = realloc(*v, (size_t)ncap * sizeof *nv);

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	if (!((*v)[*n] = strdup(s)))
		return -ENOMEM;
	(*v)[++*n] = NULL;
	return 0;
}

/* One -o list: swarmfs options to flags (appended to v), the FUSE rest into fuse. */
static int expand_list(const char *list, char ***v, int *n, int *cap, char **fuse)
{
	char *copy = strdup(list), *save = NULL;
	int err = copy ? 0 : -ENOMEM;

	for (char *opt = copy ? strtok_r(copy, ",", &save) : NULL; opt && !err;
	     opt = strtok_r(NULL, ",", &save)) {
		char key[64], *eq = strchr(opt, '=');
		size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
		bool found = false;

		if (klen < sizeof key) {
			memcpy(key, opt, klen);
			key[klen] = '\0';
			for (char *c = key; *c; c++)
				*c = *c == '-' ? '_' : *c;
			for (size_t i = 0; i < sizeof swarmfs_opts / sizeof swarmfs_opts[0]; i++) {
				if (strcmp(key, swarmfs_opts[i].key))
					continue;
				found = true;
				enum opt_value want = swarmfs_opts[i].value;

				if ((want == REQUIRED && !eq) || (want == NONE && eq) ||
				    (eq && !eq[1])) {
					fprintf(stderr, "swarmfs mount: -o %s %s\n", key,
					        want == NONE ? "takes no value" : "needs =VALUE");
					err = -EINVAL;
					break;
				}
				err = push(v, n, cap, swarmfs_opts[i].flag);
				if (!err && want != NONE)
					err = push(v, n, cap, eq ? eq + 1 : swarmfs_opts[i].bare);
				break;
			}
		}
		if (found || err || mount8_only(opt))
			continue;
		size_t have = *fuse ? strlen(*fuse) : 0;
		char *nf = realloc(*fuse, have + strlen(opt) + 2);

		if (!nf) {
			err = -ENOMEM;
			break;
		}
		if (have)
			nf[have++] = ',';
		strcpy(nf + have, opt);
		*fuse = nf;
	}
	free(copy);
	return err;
}

int fs_mount_argv_expand(int argc, char **argv, int *out_argc, char ***out_argv)
{
	char **v = NULL, *fuse = NULL;
	int n = 0, cap = 0, err = 0;

	for (int i = 0; i < argc && !err; i++) {
		if (!strcmp(argv[i], "--")) { /* operands only from here */
			for (; i < argc && !err; i++)
				err = push(&v, &n, &cap, argv[i]);
			break;
		}
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			err = expand_list(argv[++i], &v, &n, &cap, &fuse);
		else if (!strncmp(argv[i], "-o", 2) && argv[i][2])
			err = expand_list(argv[i] + 2, &v, &n, &cap, &fuse);
		else
			err = push(&v, &n, &cap, argv[i]);
	}
	/* the FUSE options go before the operands: getopt stops at "--" */
	if (!err && fuse) {
		int at = 1;

		while (at < n && strcmp(v[at], "--"))
			at++;
		if ((err = push(&v, &n, &cap, "-o")) == 0 &&
		    (err = push(&v, &n, &cap, fuse)) == 0) {
			char *o = v[n - 2], *list = v[n - 1];

			memmove(v + at + 2, v + at, (size_t)(n - 2 - at) * sizeof *v);
			v[at] = o;
			v[at + 1] = list;
		}
	}
	free(fuse);
	if (!err && !v)
		err = push(&v, &n, &cap, "mount");
	if (err) {
		fs_mount_argv_free(v);
		return err;
	}
	*out_argc = n;
	*out_argv = v;
	return 0;
}

void fs_mount_argv_free(char **argv)
{
	for (char **p = argv; p && *p; p++)
		free(*p);
	free(argv);
}

int fs_cmd_mount_helper(int argc, char **argv, int (*mount)(int argc, char **argv))
{
	char **v = calloc((size_t)argc + 3, sizeof *v);
	int n = 0, rc;

	if (!v)
		return 1;
	/* swarmfs DRIVE DIR [-o OPTS] is `swarmfs mount [-o OPTS] -- DRIVE DIR` */
	v[n++] = "mount";
	for (int i = 3; i < argc; i++)
		v[n++] = argv[i];
	v[n++] = "--";
	v[n++] = argv[1];
	v[n++] = argv[2];
	rc = mount(n, v);
	free(v);
	return rc;
}
