/* swarmfs key|init|drive|log|verify: the ledger from the command line. These act on
 * ledger.db directly, so the writing ones take the drive lock that a mount holds and
 * refuse while the drive is mounted (DESIGN.md §7); given a mount point, log and
 * drive add-member ask the mount instead. */
#include "cmd_ledger.h"
#include "cli.h"
#include "credit.h"
#include "cmd_mount.h"
#include "drive.h"
#include "fs.h"
#include "history.h"
#include "hosting.h"
#include "report.h"
#include "uri.h"

#include <ledger.h>

#include <dirent.h>
#include <sys/xattr.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CMD_FAIL 1

struct common {
	const char *home_opt;
	const char *key_name;
	char *home;
};

static int resolve_home(struct common *c, const char *cmd)
{
	int rc = fs_home_resolve(c->home_opt, &c->home);

	if (rc < 0)
		fprintf(stderr, "swarmfs %s: no data directory: %s (use --home)\n", cmd,
		        strerror(-rc));
	return rc;
}

static char *key_path(const struct common *c)
{
	char *p;

	if (strchr(c->key_name, '/') || !*c->key_name)
		return NULL;
	if (asprintf(&p, "%s/keys/%s.key", c->home, c->key_name) < 0)
		return NULL;
	return p;
}

static int load_key(const struct common *c, const char *cmd, struct ledger_key **out)
{
	char *p = key_path(c);
	int rc;

	if (!p) {
		fprintf(stderr, "swarmfs %s: bad key name '%s'\n", cmd, c->key_name);
		return -EINVAL;
	}
	rc = ledger_key_load(p, out);
	if (rc < 0)
		fprintf(stderr, "swarmfs %s: cannot load key %s: %s%s\n", cmd, p, strerror(-rc),
		        rc == -EACCES ? " (the file must be mode 0600)" : "");
	free(p);
	return rc;
}

/* Make a key if none exists under that name. *out_made says whether it did. */
static int make_key(const struct common *c, const char *cmd, struct ledger_key **out,
                    bool *out_made)
{
	char *dir, *p = key_path(c);
	int rc;

	*out_made = false;
	if (!p) {
		fprintf(stderr, "swarmfs %s: bad key name '%s'\n", cmd, c->key_name);
		return -EINVAL;
	}
	if (access(p, F_OK) == 0) {
		free(p);
		return load_key(c, cmd, out);
	}
	if (asprintf(&dir, "%s/keys", c->home) < 0) {
		free(p);
		return -ENOMEM;
	}
	rc = fs_mkdirs(dir, 0700);
	free(dir);
	if (!rc)
		rc = ledger_key_generate(out);
	if (!rc) {
		rc = ledger_key_save(*out, p);
		if (rc < 0) {
			ledger_key_free(*out);
			*out = NULL;
		}
	}
	if (rc < 0)
		fprintf(stderr, "swarmfs %s: cannot make key %s: %s\n", cmd, p, strerror(-rc));
	else
		*out_made = true;
	free(p);
	return rc;
}

static void print_hex(const uint8_t *b)
{
	char hex[LEDGER_HEX_LEN];

	ledger_hex(b, 32, hex);
	fputs(hex, stdout);
}

static void cli_ledger_config(struct ledger_config *cfg, const char *path,
                              const struct ledger_key *key)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->path = path;
	cfg->log = fs_log_sink;
	cfg->log_level = LOG_WARNING;
	cfg->key = key;
	cfg->auto_produce = true;
}

static int drive_open(const char *home, const char *id_hex, const struct ledger_key *key,
                      struct ledger **out)
{
	struct ledger_config cfg;
	char *p;
	int rc;

	if (asprintf(&p, "%s/drives/%s/ledger.db", home, id_hex) < 0)
		return -ENOMEM;
	cli_ledger_config(&cfg, p, key);
	rc = ledger_open(&cfg, out);
	free(p);
	return rc;
}

/* DRIVE is a swarmfs:// URI, a 64-hex drive id or a drive name. */
/* DRIVE (a name, an id or a swarmfs:// URI) to an id, as a mount resolves it. */
static int drive_resolve(const char *home, const char *drive, char out_id[LEDGER_HEX_LEN])
{
	int rc = fs_drive_resolve(home, drive, out_id);

	if (rc == -EMLINK) {
		fprintf(stderr, "swarmfs: several drives are named '%s'; use the id\n", drive);
		return -EEXIST;
	}
	return rc;
}

static int open_drive_arg(struct common *c, const char *cmd, const char *drive,
                          const struct ledger_key *key, struct ledger **out)
{
	char id[LEDGER_HEX_LEN];
	int rc = drive_resolve(c->home, drive, id);

	if (rc == 0)
		rc = drive_open(c->home, id, key, out);
	if (rc < 0)
		fprintf(stderr, "swarmfs %s: no drive '%s' in %s: %s\n", cmd, drive, c->home,
		        strerror(-rc));
	return rc;
}

static int print_uri_invite(struct ledger *l, const uint8_t *invite);

static int print_uri(struct ledger *l)
{
	return print_uri_invite(l, NULL);
}

/* The drive's URI, with an invite's secret (inv=) when invite is not NULL. */
static int print_uri_invite(struct ledger *l, const uint8_t *invite)
{
	struct ledger_params p;
	struct fs_uri u;
	uint8_t id[32];
	char *text;
	int rc;

	memset(&u, 0, sizeof u);
	if (invite) {
		memcpy(u.invite, invite, sizeof u.invite);
		u.has_invite = true;
	}
	ledger_drive_id(l, id);
	ledger_hex(id, 32, u.drive_id);
	rc = ledger_params_get(l, &p);
	if (rc < 0)
		return rc;
	u.name = p.name;
	u.genesis_len = fs_uri_genesis_len(l);
	u.private_drive = p.private_drive;
	for (size_t i = 0; i < p.n_trackers && i < FS_URI_MAX_LIST; i++)
		u.trackers[u.n_trackers++] = p.trackers[i];
	rc = fs_uri_format(&u, &text);
	if (rc == 0) {
		printf("%s\n", text);
		memset(text, 0, strlen(text));
		free(text);
	}
	memset(&u.invite, 0, sizeof u.invite);
	ledger_params_release(&p);
	return rc;
}

/* Parse --home and --key; the rest stays in argv from optind. */
static int parse_common(int argc, char **argv, struct common *c, const char *usage,
                        const char *extra_short, const struct option *extra,
                        int (*on_extra)(int, void *), void *ctx)
{
	enum { OPT_HOME = 256, OPT_KEY };
	struct option longopts[16] = {
		{ "home", required_argument, NULL, OPT_HOME },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "help", no_argument, NULL, 'h' },
	};
	char shorts[16];
	size_t n = 3;
	int ch;

	for (size_t i = 0; extra && extra[i].name && n < 15; i++)
		longopts[n++] = extra[i];
	snprintf(shorts, sizeof shorts, "h%s", extra_short ? extra_short : "");
	c->key_name = "default";
	optind = 1;
	while ((ch = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_HOME: c->home_opt = optarg; break;
		case OPT_KEY: c->key_name = optarg; break;
		case 'h': printf("%s", usage); return 1;
		default:
			if (on_extra && on_extra(ch, ctx) == 0)
				break;
			fprintf(stderr, "%s", usage);
			return -1;
		}
	}
	return 0;
}

#define PARSE(argc, argv, c, usage, s, ex, fn, ctx)                                                \
	do {                                                                                       \
		int prc_ = parse_common(argc, argv, c, usage, s, ex, fn, ctx);                     \
		if (prc_ > 0)                                                                      \
			return 0;                                                                  \
		if (prc_ < 0)                                                                      \
			return FS_EXIT_USAGE;                                                      \
	} while (0)

/* ---- key ---- */

static const char key_usage[] =
    "usage: swarmfs key new|show [NAME] [--home DIR]\n\n"
    "  new   make a signing key <home>/keys/NAME.key (default NAME: default)\n"
    "  show  print a key's public key (the member id), in hex\n";

int fs_cmd_key(int argc, char **argv)
{
	struct common c = { 0 };
	struct ledger_key *k = NULL;
	uint8_t pub[32];
	bool made;
	int rc;

	PARSE(argc, argv, &c, key_usage, NULL, NULL, NULL, NULL);
	if (argc - optind < 1 || argc - optind > 2 ||
	    (strcmp(argv[optind], "new") && strcmp(argv[optind], "show"))) {
		fprintf(stderr, "%s", key_usage);
		return FS_EXIT_USAGE;
	}
	if (argc - optind == 2)
		c.key_name = argv[optind + 1];
	if (resolve_home(&c, "key") < 0)
		return CMD_FAIL;
	if (!strcmp(argv[optind], "new")) {
		char *p = key_path(&c);

		if (p && access(p, F_OK) == 0) {
			fprintf(stderr, "swarmfs key: %s exists; not replacing a key\n", p);
			free(p);
			free(c.home);
			return CMD_FAIL;
		}
		free(p);
		rc = make_key(&c, "key", &k, &made);
	} else {
		rc = load_key(&c, "key", &k);
	}
	if (rc == 0) {
		ledger_key_public(k, pub);
		print_hex(pub);
		putchar('\n');
	}
	ledger_key_free(k);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}

/* ---- init ---- */

static const char init_usage[] =
    "usage: swarmfs init [--home DIR] [--name NAME] [--key NAME] [--tracker URL]... [--public]\n\n"
    "Make my key (if none) and a new single-producer drive; print its id and URI.\n"
    "The drive is private: only members sync its ledger and read its files, and others\n"
    "join by invite (swarmfs invite). --public makes an open drive: anyone with its URI\n"
    "reads it; members publish.\n";

struct init_opts {
	const char *name;
	char *trackers[FS_URI_MAX_LIST];
	size_t n_trackers;
	bool public_drive;
};

static int init_extra(int ch, void *ctx)
{
	struct init_opts *o = ctx;

	if (ch == 'P') {
		o->public_drive = true;
		return 0;
	}
	if (ch == 'n') {
		o->name = optarg;
		return 0;
	}
	if (ch == 't' && o->n_trackers < FS_URI_MAX_LIST) {
		o->trackers[o->n_trackers++] = optarg;
		return 0;
	}
	return -1;
}

int fs_cmd_init(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "tracker", required_argument, NULL, 't' },
		{ "public", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct init_opts o = { .name = "drive" };
	struct common c = { 0 };
	struct ledger_key *k = NULL;
	struct ledger_params p;
	struct ledger_config cfg;
	struct ledger *l = NULL;
	uint8_t pub[32], id[32];
	char hex[LEDGER_HEX_LEN], *tmpdir = NULL, *dir = NULL, *db = NULL;
	bool made;
	int rc;

	PARSE(argc, argv, &c, init_usage, "", extra, init_extra, &o);
	if (optind != argc) {
		fprintf(stderr, "%s", init_usage);
		return FS_EXIT_USAGE;
	}
	if (resolve_home(&c, "init") < 0)
		return CMD_FAIL;
	rc = make_key(&c, "init", &k, &made);
	if (rc < 0)
		goto out;
	ledger_key_public(k, pub);
	ledger_params_defaults(&p);
	p.name = (char *)o.name;
	memcpy(p.admin, pub, 32);
	p.producers = &pub;
	p.n_producers = 1;
	p.trackers = o.trackers;
	p.n_trackers = o.n_trackers;
	p.private_drive = !o.public_drive;
	/* the drive id is known only once the genesis exists: build it in a temporary
	 * directory, then rename that into place */
	if (asprintf(&tmpdir, "%s/drives/.init-%ld", c.home, (long)getpid()) < 0 ||
	    asprintf(&db, "%s/ledger.db", tmpdir) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = fs_mkdirs(tmpdir, 0700);
	if (rc == 0) {
		cli_ledger_config(&cfg, db, k);
		rc = ledger_create(&cfg, &p, k, &l);
	}
	if (rc < 0) {
		fprintf(stderr, "swarmfs init: cannot create the drive: %s\n", strerror(-rc));
		goto out;
	}
	ledger_drive_id(l, id);
	ledger_free(l);
	l = NULL;
	ledger_hex(id, 32, hex);
	if (asprintf(&dir, "%s/drives/%s", c.home, hex) < 0 || rename(tmpdir, dir) < 0) {
		rc = -errno;
		fprintf(stderr, "swarmfs init: cannot move the drive into place: %s\n",
		        strerror(-rc));
		goto out;
	}
	rc = drive_open(c.home, hex, k, &l);
	if (rc < 0)
		goto out;
	/* a private drive's first epoch key, sealed to its admin */
	if (!o.public_drive && (rc = ledger_epoch_rotate(l)) < 0) {
		fprintf(stderr, "swarmfs init: cannot start the drive's first epoch: %s\n",
		        strerror(-rc));
		goto out;
	}
	if (made) {
		printf("key: ");
		print_hex(pub);
		printf(" (new, %s/keys/%s.key)\n", c.home, c.key_name);
	}
	printf("drive: %s\nname: %s\naccess: %s\n", hex, o.name,
	       o.public_drive ? "public" : "private (invite others with: swarmfs invite)");
	rc = print_uri(l);
out:
	if (rc < 0 && tmpdir) {
		if (db)
			unlink(db);
		rmdir(tmpdir);
	}
	ledger_free(l);
	ledger_key_free(k);
	free(tmpdir);
	free(dir);
	free(db);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}

/* ---- drive ---- */

static const char drive_usage[] =
    "usage: swarmfs drive list|show|members|add-member|remove-member [--home DIR] ...\n\n"
    "  list [--json]                          the drives in the data directory\n"
    "  show DRIVE [--json]                    parameters, head, members\n"
    "  members DRIVE|MOUNTPOINT [--json]      live members: key, role, since, name\n"
    "  add-member DRIVE|MOUNTPOINT KEY [--producer] [--name NAME] [--key NAME]\n"
    "                                         admit a member (admin only); on a\n"
    "                                         mounted drive give its MOUNTPOINT: the\n"
    "                                         mount signs with its own key\n"
    "  remove-member DRIVE|MOUNTPOINT KEY [--key NAME]\n"
    "                                         remove a member (admin only); on a\n"
    "                                         private drive a new epoch begins: the\n"
    "                                         member keeps what it read, and can read\n"
    "                                         nothing published after\n"
    "  set DRIVE|MOUNTPOINT --replicas N [--key NAME]\n"
    "                                         the replica target: how many members\n"
    "                                         should hold each file (admin only;\n"
    "                                         1..64, default 2)\n";

static int show_one(struct ledger *l, bool brief)
{
	struct ledger_params p;
	struct ledger_head h;
	uint8_t id[32];
	int rc = ledger_params_get(l, &p);

	if (rc < 0)
		return rc;
	rc = ledger_head_get(l, &h);
	if (rc < 0) {
		ledger_params_release(&p);
		return rc;
	}
	ledger_drive_id(l, id);
	if (brief) {
		print_hex(id);
		printf("  %-20s height %llu\n", p.name, (unsigned long long)h.height);
	} else {
		printf("drive: ");
		print_hex(id);
		printf("\nname: %s\nadmin: ", p.name);
		print_hex(p.admin);
		printf("\n");
		for (size_t i = 0; i < p.n_producers; i++) {
			printf("genesis producer: ");
			print_hex(p.producers[i]);
			printf("\n");
		}
		for (size_t i = 0; i < p.n_trackers; i++)
			printf("tracker: %s\n", p.trackers[i]);
		printf("block interval: %llds\nheight: %llu\nhead: ", (long long)p.interval_s,
		       (unsigned long long)h.height);
		print_hex(h.id);
		printf("\nweight: %llu\npending records: %d\nuri: ", (unsigned long long)h.weight,
		       ledger_mempool_count(l));
		print_uri(l);
	}
	ledger_params_release(&p);
	return 0;
}

/* A membership change on a mounted drive: the mount signs the record with its own key
 * and submits it to its ledger (DESIGN.md §7). value as fs/members.h says. */
static int member_mounted(const char *cmd, const char *mnt, const char *value)
{
	int err;

	if (setxattr(mnt, "user.swarmfs.member", value, strlen(value), 0) == 0)
		return 0;
	err = errno;
	if (err == EACCES || err == EPERM)
		fprintf(stderr,
		        "swarmfs %s: %s is mounted with a key that is not the drive's admin "
		        "(only the drive's admin may)\n",
		        cmd, mnt);
	else if (err == EROFS)
		fprintf(stderr, "swarmfs %s: %s is mounted without a key (read-only)\n", cmd, mnt);
	else if (err == ENOENT)
		fprintf(stderr, "swarmfs %s: no such member\n", cmd);
	else
		fprintf(stderr, "swarmfs %s: %s: %s\n", cmd, mnt, strerror(err));
	return -err;
}

/* Run fn on the ledger of DRIVE (a name, id or URI in the data directory) opened with
 * this command's key, under the drive lock a mount holds: a mounted drive is refused
 * with the hint to give its mount point. Prints why it failed. */
static int with_drive(struct common *c, const char *cmd, const char *drive, bool need_key,
                      int (*fn)(struct ledger *l, void *ctx), void *ctx)
{
	char hint[96];

	/* what to run instead while the drive is mounted */
	snprintf(hint, sizeof hint, "%s MOUNTPOINT%s", cmd, strstr(cmd, "-member") ? " KEY" : "");
	struct ledger_key *k = NULL;
	struct ledger *l = NULL;
	char id[LEDGER_HEX_LEN], *ddir = NULL;
	int lock = -1, rc;
	long holder = 0;

	if (resolve_home(c, cmd) < 0)
		return -ENOENT;
	rc = drive_resolve(c->home, drive, id);
	if (rc == 0 && asprintf(&ddir, "%s/drives/%s", c->home, id) < 0)
		rc = -ENOMEM;
	if (rc < 0 && access(drive, F_OK) == 0)
		fprintf(stderr,
		        "swarmfs %s: %s is neither the mount point of a swarmfs drive nor a "
		        "drive in %s\n",
		        cmd, drive, c->home);
	else if (rc < 0)
		fprintf(stderr, "swarmfs %s: no drive '%s' in %s: %s\n", cmd, drive, c->home,
		        strerror(-rc));
	if (rc == 0 && (lock = fs_drive_lock(ddir, &holder)) < 0) {
		rc = lock;
		if (rc == -EBUSY && holder > 0)
			fprintf(stderr, "swarmfs %s: drive is mounted by pid %ld: run swarmfs %s\n",
			        cmd, holder, hint);
		else if (rc == -EBUSY)
			fprintf(stderr, "swarmfs %s: drive is mounted: run swarmfs %s\n", cmd,
			        hint);
		else
			fprintf(stderr, "swarmfs %s: cannot lock %s: %s\n", cmd, ddir,
			        strerror(-rc));
	}
	if (rc == 0 && need_key)
		rc = load_key(c, cmd, &k);
	if (rc == 0)
		rc = drive_open(c->home, id, k, &l);
	if (rc == 0)
		rc = fn(l, ctx);
	if (lock >= 0)
		close(lock);
	ledger_free(l);
	ledger_key_free(k);
	free(ddir);
	return rc;
}

struct member_change {
	const char *cmd;
	struct ledger_op op;
	char hex[LEDGER_HEX_LEN];
};

static int member_change_offline(struct ledger *l, void *ctx)
{
	struct member_change *m = ctx;
	int rc = 0;

	if (m->op.remove && ledger_member_role(l, m->op.member) == 2) {
		m->op.producer = true; /* a producer goes back to member, then goes */
		rc = ledger_submit(l, &m->op, NULL);
		m->op.producer = false;
	}
	if (rc == 0)
		rc = ledger_submit(l, &m->op, NULL);
	if (rc == 0 && m->op.remove && ledger_is_private(l)) {
		rc = ledger_epoch_rotate(l); /* what comes next, the removed cannot read */
		rc = rc < 0 ? rc : 0;
	}
	if (rc < 0)
		fprintf(stderr, "swarmfs %s: %s%s\n", m->cmd, strerror(-rc),
		        rc == -EPERM    ? " (only the drive's admin may)"
		        : rc == -ENOENT ? " (no such member)"
		                        : "");
	return rc;
}

/* add-member / remove-member DRIVE|MOUNTPOINT KEY: through the mount when DRIVE is a
 * mount point, else on ledger.db under the drive lock. Returns the exit code. */
static int member_change(struct common *c, const char *cmd, const char *drive, const char *key,
                         bool producer, bool remove, const char *name)
{
	struct member_change m = { .cmd = cmd,
		                   .op = { .type = LEDGER_REC_MEMBER,
		                           .producer = producer && !remove,
		                           .remove = remove,
		                           .name = name } };
	char value[LEDGER_HEX_LEN + 16 + LEDGER_DISPLAY_NAME_MAX + 2], *text;
	const char *what = remove ? "remove" : producer ? "producer" : "member";
	int rc;

	if (ledger_unhex(key, m.op.member, 32) < 0) {
		fprintf(stderr, "swarmfs drive: KEY must be 64 hex digits\n");
		return FS_EXIT_USAGE;
	}
	if (name && (remove || !ledger_display_name_ok(name))) {
		fprintf(stderr,
		        "swarmfs drive: --name takes 1 to %d bytes of text without "
		        "control characters, when adding\n",
		        LEDGER_DISPLAY_NAME_MAX);
		return FS_EXIT_USAGE;
	}
	ledger_hex(m.op.member, 32, m.hex);
	snprintf(value, sizeof value, "%s %s%s%s", m.hex, what, name ? " " : "", name ? name : "");
	if (fs_mount_ask(drive, "drive", &text) == 0) {
		free(text);
		rc = member_mounted(cmd, drive, value);
	} else {
		rc = with_drive(c, cmd, drive, true, member_change_offline, &m);
	}
	if (rc == 0 && remove)
		printf("removed %s%s\n", m.hex,
		       " (a private drive starts a new epoch: what the member already read, it "
		       "keeps; nothing published from now on is readable to it)");
	else if (rc == 0)
		printf("added %s as %s\n", m.hex, producer ? "producer" : "member");
	return rc < 0 ? CMD_FAIL : 0;
}

/* The member lines of fs/members.h ("KEY role since name") as a table, or with json as
 * a list of {member (64 hex), role, since (height), name}. */
static int print_members(const char *text, bool json)
{
	struct fs_json j;
	int rc = 0;

	if (json) {
		fs_json_init(&j);
		fs_json_array_begin(&j, NULL);
	} else {
		printf("%-16s  %-14s  %-6s  %s\n", "key", "role", "since", "name");
	}
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		char line[LEDGER_HEX_LEN + 48 + LEDGER_DISPLAY_NAME_MAX + 2], key[LEDGER_HEX_LEN];
		char role[24];
		long long since;
		int n = 0;

		/* one line at a time: the name may be empty, and a format's space would
		 * read on into the next line */
		snprintf(line, sizeof line, "%.*s", (int)ll, p);
		if (sscanf(line, "%64s %23s %lld%n", key, role, &since, &n) < 3) {
		} else if (json) {
			fs_json_object_begin(&j, NULL);
			fs_json_str(&j, "member", key);
			fs_json_str(&j, "role", role);
			fs_json_int(&j, "since", since);
			fs_json_str(&j, "name", line[n] == ' ' ? line + n + 1 : "");
			fs_json_object_end(&j);
		} else {
			printf("%.16s  %-14s  %-6lld  %s\n", key, role, since,
			       line[n] == ' ' ? line + n + 1 : "");
		}
		p = nl ? nl + 1 : p + ll;
	}
	if (json) {
		fs_json_array_end(&j);
		rc = fs_json_print(&j);
		fs_json_release(&j);
	}
	return rc;
}

static int members_offline(struct ledger *l, void *ctx)
{
	bool json = *(bool *)ctx;
	struct ledger_member *ms;
	size_t n;
	char hex[LEDGER_HEX_LEN], *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = f ? ledger_members(l, &ms, &n) : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		ledger_hex(ms[i].key, 32, hex);
		fprintf(f, "%s %s %lld %s\n", hex,
		        ms[i].admin      ? (ms[i].producer ? "admin,producer" : "admin")
		        : ms[i].producer ? "producer"
		                         : "member",
		        (long long)ms[i].since, ms[i].name);
	}
	if (rc == 0)
		free(ms);
	if (f)
		fclose(f);
	if (rc == 0 && buf)
		rc = print_members(buf, json);
	free(buf);
	return rc;
}

static int members(struct common *c, const char *drive, bool json)
{
	char *text;
	int rc;

	if (fs_mount_ask(drive, "members", &text) == 0) {
		rc = print_members(text, json);
		free(text);
		return rc < 0 ? CMD_FAIL : 0;
	}
	rc = with_drive(c, "drive members", drive, false, members_offline, &json);
	return rc < 0 ? CMD_FAIL : 0;
}

struct drive_opts {
	bool producer;
	const char *name;
	const char *replicas;
};

static int producer_extra(int ch, void *ctx)
{
	struct drive_opts *o = ctx;

	if (ch == 'p')
		o->producer = true;
	else if (ch == 'N')
		o->name = optarg;
	else if (ch == 'R')
		o->replicas = optarg;
	else
		return -1;
	return 0;
}

static int replicas_offline(struct ledger *l, void *ctx)
{
	return ledger_replicas_set(l, *(long long *)ctx);
}

/* drive set DRIVE|MOUNTPOINT --replicas N: through the mount when mounted. Returns the
 * exit code. */
static int drive_set(struct common *c, const char *drive, const char *value)
{
	char *end, *text;
	long long n = strtoll(value, &end, 10);
	int rc;

	if (*end || !*value || n < 1 || n > LEDGER_REPLICAS_MAX) {
		fprintf(stderr, "swarmfs drive set: --replicas wants a number from 1 to %d\n",
		        LEDGER_REPLICAS_MAX);
		return FS_EXIT_USAGE;
	}
	if (fs_mount_ask(drive, "drive", &text) == 0) {
		free(text);
		rc = setxattr(drive, "user.swarmfs.replicas", value, strlen(value), 0) < 0 ? -errno
		                                                                           : 0;
		if (rc == -EACCES)
			rc = -EPERM;
	} else {
		rc = with_drive(c, "drive set", drive, true, replicas_offline, &n);
		if (rc == -ENOENT)
			return CMD_FAIL; /* with_drive said why */
	}
	if (rc == -EPERM)
		fprintf(stderr,
		        "swarmfs drive set: refused: only the drive's admin may set the replica "
		        "target (this key is not the admin's)\n");
	else if (rc == -EEXIST)
		printf("the replica target is %lld already\n", n);
	else if (rc == -EROFS)
		fprintf(stderr, "swarmfs drive set: %s is mounted without a key\n", drive);
	else if (rc < 0)
		fprintf(stderr, "swarmfs drive set: %s: %s\n", drive, strerror(-rc));
	else
		printf("replica target set to %lld\n", n);
	return rc < 0 && rc != -EEXIST ? CMD_FAIL : 0;
}

int fs_cmd_drive(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "producer", no_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'N' },
		{ "replicas", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct common c = { 0 };
	struct ledger *l = NULL;
	struct drive_opts o = { 0 };
	bool json = fs_cli_take_flag(&argc, argv, "--json");
	struct fs_json j;
	const char *sub;
	int rc = 0, nargs;

	PARSE(argc, argv, &c, drive_usage, "", extra, producer_extra, &o);
	nargs = argc - optind;
	sub = nargs > 0 ? argv[optind] : "";
	if (!((!strcmp(sub, "list") && nargs == 1) || (!strcmp(sub, "show") && nargs == 2) ||
	      (!strcmp(sub, "members") && nargs == 2) ||
	      (!strcmp(sub, "add-member") && nargs == 3) ||
	      (!strcmp(sub, "remove-member") && nargs == 3) ||
	      (!strcmp(sub, "set") && nargs == 2 && o.replicas))) {
		fprintf(stderr, "%s", drive_usage);
		return FS_EXIT_USAGE;
	}
	if (!strcmp(sub, "set")) {
		rc = drive_set(&c, argv[optind + 1], o.replicas);
		free(c.home);
		return rc;
	}
	/* a mount point needs no data directory: the mount has its own */
	if (!strcmp(sub, "add-member") || !strcmp(sub, "remove-member")) {
		bool rm = !strcmp(sub, "remove-member");

		rc = member_change(&c, rm ? "drive remove-member" : "drive add-member",
		                   argv[optind + 1], argv[optind + 2], o.producer, rm, o.name);
		free(c.home);
		return rc;
	}
	if (!strcmp(sub, "members")) {
		rc = members(&c, argv[optind + 1], json);
		free(c.home);
		return rc;
	}
	if (resolve_home(&c, "drive") < 0)
		return CMD_FAIL;
	if (!strcmp(sub, "list")) {
		char *dir;
		DIR *d;
		struct dirent *de;

		if (asprintf(&dir, "%s/drives", c.home) < 0) {
			free(c.home);
			return CMD_FAIL;
		}
		d = opendir(dir);
		free(dir);
		fs_json_init(&j);
		fs_json_array_begin(&j, NULL);
		while (d && (de = readdir(d))) {
			uint8_t raw[32];

			if (ledger_unhex(de->d_name, raw, 32) < 0 ||
			    drive_open(c.home, de->d_name, NULL, &l) < 0)
				continue;
			if (json)
				fs_report_drive(&j, NULL, l, true);
			else
				show_one(l, true);
			ledger_free(l);
			l = NULL;
		}
		if (d)
			closedir(d);
		fs_json_array_end(&j);
		rc = json ? fs_json_print(&j) : 0;
		fs_json_release(&j);
	} else {
		rc = open_drive_arg(&c, "drive", argv[optind + 1], NULL, &l);
		if (rc == 0 && json) {
			fs_json_init(&j);
			if ((rc = fs_report_drive(&j, NULL, l, false)) == 0)
				rc = fs_json_print(&j);
			fs_json_release(&j);
		} else if (rc == 0)
			rc = show_one(l, false);
	}
	ledger_free(l);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}

/* ---- credit ---- */

static const char credit_usage[] =
    "usage: swarmfs credit DRIVE|MOUNTPOINT [--json] [--home DIR]\n\n"
    "For each member of the drive: the bytes it uploaded to other members and downloaded\n"
    "from them, as the receipts in the ledger prove them, and the ratio. Credit is a\n"
    "ledger fact, not a currency: nothing is paid or spent. --json: a list of objects\n"
    "{member, uploaded, downloaded, ratio}.\n";

static int credit_offline(struct ledger *l, void *ctx)
{
	char *text = NULL;
	int rc = fs_credit_text(l, &text);

	if (rc >= 0)
		fs_credit_print(text, *(bool *)ctx);
	free(text);
	return rc < 0 ? rc : 0;
}

static int credit_extra(int ch, void *ctx)
{
	if (ch != 'j')
		return -1;
	*(bool *)ctx = true;
	return 0;
}

int fs_cmd_credit(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct common c = { 0 };
	bool json = false;
	char *text;
	int rc;

	PARSE(argc, argv, &c, credit_usage, "", extra, credit_extra, &json);
	if (argc - optind != 1) {
		fprintf(stderr, "%s", credit_usage);
		return FS_EXIT_USAGE;
	}
	if (fs_mount_ask(argv[optind], "credit", &text) == 0) {
		fs_credit_print(text, json);
		free(text);
		return 0;
	}
	rc = with_drive(&c, "credit", argv[optind], false, credit_offline, &json);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}

/* ---- health ---- */

static const char health_usage[] =
    "usage: swarmfs health DRIVE|PATH [--json] [--home DIR]\n\n"
    "For each file (of the drive, or at or beneath PATH in a mounted drive): how many\n"
    "members hold it (their host claims; the publisher holds what it published until\n"
    "it unpins), how many of those this node sees holding it whole right now\n"
    "(confirmed: itself, and complete peers of the file's swarm while it has the file\n"
    "open or seeds it), and whether it is below the drive's replica target. The\n"
    "fewest holders first. --json: a list of objects {path, holders, confirmed (null\n"
    "when the drive is not mounted), target, below}.\n";

struct health_ctx {
	bool json;
};

static int health_offline(struct ledger *l, void *ctx)
{
	struct health_ctx *h = ctx;
	char *text = NULL;
	int rc = fs_health_text_ledger(l, "", &text);

	if (rc >= 0)
		rc = fs_health_print(text, h->json);
	free(text);
	return rc < 0 ? rc : 0;
}

int fs_cmd_health(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct common c = { 0 };
	struct health_ctx h = { 0 };
	char *text;
	int rc;

	PARSE(argc, argv, &c, health_usage, "", extra, credit_extra, &h.json);
	if (argc - optind != 1) {
		fprintf(stderr, "%s", health_usage);
		return FS_EXIT_USAGE;
	}
	if (fs_mount_ask(argv[optind], "health", &text) == 0) {
		rc = fs_health_print(text, h.json);
		free(text);
		return rc < 0 ? CMD_FAIL : 0;
	}
	rc = with_drive(&c, "health", argv[optind], false, health_offline, &h);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}

/* ---- log ---- */

static const char log_usage[] =
    "usage: swarmfs log [--home DIR] [--utc] [--long] [--json] DRIVE [PATH]\n"
    "       swarmfs log [--utc] [--long] [--json] PATH-IN-A-MOUNT\n\n"
    "Every record that touched PATH (or the whole drive), oldest first. Times are\n"
    "ISO 8601 in local time (--utc: in UTC); keys and record ids are shortened to 8\n"
    "hex digits (--long: in full) and named where this node knows the key.\n";

int fs_cmd_log(int argc, char **argv)
{
	struct fs_history_out out = { .f = stdout };
	struct fs_names *names = NULL;
	struct common c = { 0 };
	struct ledger *l = NULL;
	char *text = NULL;
	uint8_t id[32];
	char id_hex[LEDGER_HEX_LEN];
	int rc;

	out.utc = fs_cli_take_flag(&argc, argv, "--utc");
	out.long_keys = fs_cli_take_flag(&argc, argv, "--long");
	out.json = fs_cli_take_flag(&argc, argv, "--json");
	PARSE(argc, argv, &c, log_usage, NULL, NULL, NULL, NULL);
	if (argc - optind < 1 || argc - optind > 2) {
		fprintf(stderr, "%s", log_usage);
		return FS_EXIT_USAGE;
	}
	/* names are a convenience: without a data directory keys show as hex */
	if (fs_home_resolve(c.home_opt, &c.home) == 0 && fs_names_load(c.home, &names) == 0)
		out.names = names;
	/* swarmfs log PATH, a path in a mounted drive: the mount answers (its ledger.db is
	 * the mount's to read while mounted, DESIGN.md §7) */
	if (argc - optind == 1 && strchr(argv[optind], '/') &&
	    fs_mount_ask(argv[optind], "log", &text) == 0) {
		fs_history_begin(&out, NULL, argv[optind]);
		rc = fs_history_parse(text, fs_history_print, &out);
		if (rc == 0)
			rc = fs_history_end(&out);
		else
			fs_json_release(&out.j);
		if (rc < 0)
			fprintf(stderr, "swarmfs log: %s: %s\n", argv[optind], strerror(-rc));
		goto out;
	}
	if (!c.home && (rc = resolve_home(&c, "log")) < 0)
		goto out;
	rc = open_drive_arg(&c, "log", argv[optind], NULL, &l);
	if (rc == 0) {
		const char *path = argc - optind == 2 ? argv[optind + 1] : NULL;

		ledger_drive_id(l, id);
		ledger_hex(id, sizeof id, id_hex);
		fs_history_begin(&out, id_hex, path);
		rc = ledger_history(l, path, fs_history_print, &out);
		if (rc == 0)
			rc = fs_history_end(&out);
		else
			fs_json_release(&out.j);
		if (rc < 0)
			fprintf(stderr, "swarmfs log: %s\n", strerror(-rc));
	}
out:
	ledger_free(l);
	fs_names_free(names);
	free(text);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}

/* ---- verify ---- */

static const char verify_usage[] =
    "usage: swarmfs verify [--home DIR] DRIVE\n\n"
    "Re-check the whole chain from raw bytes. Exit 0 when clean, 1 with a report of\n"
    "every bad block and record otherwise.\n";

static void print_problem(const struct ledger_problem *p, void *ctx)
{
	char b[LEDGER_HEX_LEN], r[LEDGER_HEX_LEN];

	(void)ctx;
	ledger_hex(p->block_id, 32, b);
	if (p->has_record) {
		ledger_hex(p->record_id, 32, r);
		printf("BAD block %lld (%s) record %lld (%s): %s\n", (long long)p->height, b,
		       (long long)p->index, r, p->what);
	} else {
		printf("BAD block %lld (%s): %s\n", (long long)p->height, b, p->what);
	}
}

int fs_cmd_verify(int argc, char **argv)
{
	struct common c = { 0 };
	struct ledger *l = NULL;
	struct ledger_head h;
	int rc;

	PARSE(argc, argv, &c, verify_usage, NULL, NULL, NULL, NULL);
	if (argc - optind != 1) {
		fprintf(stderr, "%s", verify_usage);
		return FS_EXIT_USAGE;
	}
	if (resolve_home(&c, "verify") < 0)
		return CMD_FAIL;
	rc = open_drive_arg(&c, "verify", argv[optind], NULL, &l);
	if (rc == 0)
		rc = ledger_verify_chain(l, print_problem, NULL);
	if (rc < 0)
		fprintf(stderr, "swarmfs verify: %s\n", strerror(-rc));
	else if (rc > 0)
		printf("%d problem%s found\n", rc, rc == 1 ? "" : "s");
	else if (ledger_head_get(l, &h) == 0)
		printf("ok: %llu blocks verified\n", (unsigned long long)h.height + 1);
	ledger_free(l);
	free(c.home);
	return rc != 0 ? CMD_FAIL : 0;
}

/* ---- invite ---- */

static const char invite_usage[] =
    "usage: swarmfs invite DRIVE|MOUNTPOINT [--producer] [--expires DURATION] [--name NAME]\n"
    "                      [--home DIR] [--key NAME]\n\n"
    "Print a swarmfs:// URI that admits one new member to a private drive: it carries a\n"
    "one-time secret, and the ledger holds only the secret's public key. The joiner mounts\n"
    "the URI; no admin needs to be online. DURATION: seconds, or a number with s, m, h or\n"
    "d (default 7d). Only the drive's admin invites producers; a producer may invite\n"
    "members. On a mounted drive give its MOUNTPOINT: the mount signs with its own key.\n";

struct invite_opts {
	bool producer;
	long long expires;
	const char *name;
	bool bad;
};

static long long parse_duration(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10), mul = 1;

	if (end == s || v <= 0)
		return -1;
	if (*end == 'd')
		mul = 86400;
	else if (*end == 'h')
		mul = 3600;
	else if (*end == 'm')
		mul = 60;
	else if (*end && *end != 's')
		return -1;
	if (*end && end[1])
		return -1;
	return v > INT64_MAX / mul / 2 ? -1 : v * mul;
}

static int invite_extra(int ch, void *ctx)
{
	struct invite_opts *o = ctx;

	if (ch == 'p')
		o->producer = true;
	else if (ch == 'e')
		o->bad |= (o->expires = parse_duration(optarg)) < 0;
	else if (ch == 'N')
		o->name = optarg;
	else
		return -1;
	return 0;
}

static int invite_offline(struct ledger *l, void *ctx)
{
	struct invite_opts *o = ctx;
	uint8_t secret[LEDGER_INVITE_SECRET_LEN];
	int rc;

	if (!ledger_is_private(l))
		fprintf(stderr, "swarmfs invite: this drive is public: its URI alone lets anyone "
		                "read it; the invite admits a member\n");
	rc =
	    ledger_invite_create(l, o->producer, (int64_t)time(NULL) + o->expires, o->name, secret);
	if (rc == 0)
		rc = print_uri_invite(l, secret);
	memset(secret, 0, sizeof secret);
	if (rc < 0)
		fprintf(stderr, "swarmfs invite: %s%s\n", strerror(-rc),
		        rc == -EPERM ? (o->producer ? " (only the drive's admin invites producers)"
		                                    : " (only the admin or a producer invites)")
		                     : "");
	return rc;
}

/* Percent-encode s into a query value. */
static void pct(char *out, size_t max, const char *s)
{
	size_t o = 0;

	for (; *s && o + 4 < max; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch))
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, max - o, "%%%02X", ch);
	}
	out[o] = '\0';
}

int fs_cmd_invite(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "producer", no_argument, NULL, 'p' },
		{ "expires", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct invite_opts o = { .expires = 7 * 86400 };
	struct common c = { 0 };
	char attr[255], name[200] = "", *text;
	int rc;

	PARSE(argc, argv, &c, invite_usage, "", extra, invite_extra, &o);
	if (argc - optind != 1 || o.bad) {
		if (o.bad)
			fprintf(stderr,
			        "swarmfs invite: --expires takes a duration: 3600, 90m, 12h, 7d\n");
		fprintf(stderr, "%s", invite_usage);
		return FS_EXIT_USAGE;
	}
	if (o.name && !ledger_display_name_ok(o.name)) {
		fprintf(stderr,
		        "swarmfs invite: --name takes 1 to %d bytes of text without control "
		        "characters\n",
		        LEDGER_DISPLAY_NAME_MAX);
		return FS_EXIT_USAGE;
	}
	if (fs_mount_ask(argv[optind], "drive", &text) == 0) {
		char buf[4096];
		ssize_t n;

		free(text);
		if (o.name)
			pct(name, sizeof name, o.name);
		snprintf(attr, sizeof attr, "user.swarmfs.invite?role=%s&expires=%lld%s%s",
		         o.producer ? "producer" : "member", o.expires, o.name ? "&name=" : "",
		         name);
		/* one call with room for the answer: the mount makes the invite once */
		n = getxattr(argv[optind], attr, buf, sizeof buf - 1);
		if (n < 0) {
			rc = errno;
			fprintf(stderr, "swarmfs invite: %s: %s%s\n", argv[optind], strerror(rc),
			        rc == EPERM || rc == EACCES
			            ? (o.producer ? " (only the drive's admin invites producers)"
			                          : " (only the admin or a producer invites)")
			            : "");
			return CMD_FAIL;
		}
		buf[n] = '\0';
		fputs(buf, stdout);
		memset(buf, 0, sizeof buf);
		return 0;
	}
	rc = with_drive(&c, "invite", argv[optind], true, invite_offline, &o);
	free(c.home);
	return rc < 0 ? CMD_FAIL : 0;
}
