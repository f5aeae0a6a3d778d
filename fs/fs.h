/*
 * fs — the swarmfs program: command-line dispatch, the FUSE low-level frontend and the
 * wiring of swarm/, cache/ and ledger/. It is the only module that includes libfuse and
 * the only one that knows the others. This header is private to fs/.
 *
 * Threads: FUSE worker threads run the handlers in mount.c; everything else runs on the
 * main thread before the session loop starts or after it ends.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_FS_H
#define SWARMFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>
#include <time.h>

#define FS_EXIT_USAGE 2 /* bad arguments, or a command not built yet */

/* The time ms milliseconds from now on clock clk: a pthread_cond_timedwait deadline
 * (CLOCK_REALTIME for a condition variable with the default clock). Any thread. */
static inline struct timespec fs_time_after(clockid_t clk, long ms)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* ---- log.c: every module's sink ends here, then in libfuse's logger ---- */

/* Route messages to stderr (foreground) or syslog (daemon). Main thread, before any
 * other thread starts. */
void fs_log_use_syslog(bool on);
/* Under systemd (stderr is the journal stream systemd names in $JOURNAL_STREAM),
 * prefix each line on stderr with its priority ("<3>" for an error, "<6>" for info),
 * which the journal records as the line's PRIORITY; else nothing changes. Returns
 * whether it did. Main thread, before any other thread starts. */
bool fs_log_use_journal(void);
/* Messages above this syslog level are dropped; default LOG_NOTICE, SWARMFS_DEBUG=1
 * in the environment lowers it to LOG_DEBUG. Any thread. */
void fs_log_set_level(int level);
bool fs_log_enabled(int level);
/* Thread-safe sink with the shape every module's config carries. */
void fs_log_sink(int level, const char *module, const char *msg, void *ctx);
void fs_log_at(int level, const char *module, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define FS_LOG(level, ...)                                                                         \
	do {                                                                                       \
		if (fs_log_enabled(level))                                                         \
			fs_log_at(level, "fs", __FILE__, __LINE__, __VA_ARGS__);                   \
	} while (0)
#define fs_err(...)    FS_LOG(LOG_ERR, __VA_ARGS__)
#define fs_warn(...)   FS_LOG(LOG_WARNING, __VA_ARGS__)
#define fs_notice(...) FS_LOG(LOG_NOTICE, __VA_ARGS__)
#define fs_info(...)   FS_LOG(LOG_INFO, __VA_ARGS__)
#define fs_debug(...)  FS_LOG(LOG_DEBUG, __VA_ARGS__)

/* ---- home.c: the data directory of DESIGN.md §3 ---- */

/* Resolve the data directory: explicit (from --home) if not NULL, else $SWARMFS_HOME,
 * else $XDG_DATA_HOME/swarmfs, else ~/.local/share/swarmfs. Returns a malloc'd path
 * in *out_path (free with free()), or -ENOENT when no home can be found, -ENOMEM. */
int fs_home_resolve(const char *explicit_home, char **out_path);

/* mkdir -p with the given mode for each created component. */
int fs_mkdirs(const char *path, unsigned mode);

/* A drive's directory: <home>/drives/<drive>. The drive name must be one path
 * component (no '/', not "." or ".."): -EINVAL otherwise. Caller frees *out_path. */
int fs_drive_dir(const char *home, const char *drive, char **out_path);

/* Take the exclusive lock that says one process owns this drive directory while it is
 * mounted: <dir>/lock, flock()ed, holding the owner's pid. Returns the open fd (keep
 * it open for the life of the mount), -EBUSY if another live process holds it (its pid
 * in *out_holder when known, else 0), or another -errno. */
int fs_drive_lock(const char *drive_dir, long *out_holder);

/* ---- mount.c ---- */

/* --seed-max's default: held files whose torrents a mount loads (fs/seedback.h) */
#define FS_SEED_MAX_DEFAULT 1000

struct fs_mount_opts {
	const char *home;       /* --home, or NULL */
	const char *key;        /* --key, or NULL for the default key */
	const char *drive;      /* DRIVE argument */
	const char *mountpoint; /* MOUNTPOINT argument */
	uint64_t cache_size;    /* --cache-size, bytes */
	bool foreground;        /* -f */
	bool debug;             /* -d: libfuse's request trace, implies -f */
	bool allow_other;       /* --allow-other */
	const char *listen;     /* --listen ADDR:PORT */
	char **trackers;        /* --tracker URL..., NULL-terminated; borrowed */
	char **peers;           /* --peer HOST:PORT..., NULL-terminated; borrowed */
	bool dht;               /* on unless --no-dht */
	char **dht_bootstrap;   /* --dht-bootstrap HOST:PORT..., NULL-terminated, or NULL
	                           for the public routers; borrowed */
	bool lsd;               /* --lsd: local service discovery */
	bool utp;               /* --utp on */
	int read_timeout_ms;    /* --read-timeout SECONDS */
	int upload_limit;       /* --upload-limit, bytes/s, 0: none */
	bool no_receipts;       /* --no-receipts: sign no credit receipts */
	uint64_t volunteer;     /* --volunteer SIZE: bytes offered to host, 0: none */
	size_t seed_max;        /* --seed-max N: held files' torrents loaded at mount */
	char **fuse_opts;       /* -o values, NULL-terminated; borrowed */
};

/* Mount and serve until unmounted (fusermount3 -u, SIGINT, SIGTERM, SIGHUP).
 * Returns a process exit code. Main thread. */
int fs_mount_run(const struct fs_mount_opts *o);

/* ---- commands (main.c dispatches) ---- */
int fs_cmd_mount(int argc, char **argv);
int fs_cmd_umount(int argc, char **argv);

#endif
