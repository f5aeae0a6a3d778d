/*
 * A mounted drive's state (private to fs/): its data directory, this node's key, the
 * ledger, and the pieces the FUSE handlers share. One per mount; nothing global.
 *
 * Threads: opened and closed on the main thread; everything else from FUSE workers and
 * the notifier thread, as each function says.
 */
#ifndef SWARMFS_FS_DRIVE_H
#define SWARMFS_FS_DRIVE_H

#include <ledger.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cache;
struct fs_engine;
struct fs_engine_torrent;
struct fs_hosting;
struct fs_imports;
struct fs_inodes;
struct fs_publisher;
struct fs_seedback;
struct fs_volunteer;
struct fs_waiter;
struct fuse_session;
struct swarm_session;

struct fs_drive_opts {
	const char *home;            /* resolved data directory */
	const char *drive;           /* name, 64-hex id, or swarmfs:// URI */
	const char *key;             /* key name (keys/<name>.key) or a path; NULL: "default" */
	uint64_t cache_size;         /* cap in bytes, 0: CACHE_DEFAULT_SIZE */
	const char *listen;          /* "ADDR:PORT" or NULL: all addresses, any port */
	const char *const *trackers; /* NULL-terminated, or NULL */
	const char *const *peers;    /* NULL-terminated "host:port", or NULL */
	bool dht;
	const char *const *dht_bootstrap; /* NULL-terminated, or NULL: the public routers */
	bool lsd, utp;
	int read_timeout_ms; /* 0: 30 s */
	int upload_limit;    /* bytes/s, 0: none */
	bool no_receipts;    /* sign no credit receipts for what this node downloads */
	uint64_t volunteer;  /* bytes this node offers to host under-replicated files, 0: none */
	size_t seed_max;     /* torrents of held content loaded at mount (fs/seedback); the
	                      * rest when a peer asks */
};

struct fs_drive {
	char *home;
	char *dir; /* <home>/drives/<id> */
	char id_hex[LEDGER_HEX_LEN];
	char *name; /* from genesis */
	int lock_fd;
	struct ledger_key *key; /* NULL: no key, the mount is read-only */
	uint8_t me[LEDGER_KEY_LEN];
	struct ledger *ledger;
	struct fs_inodes *inodes;
	struct fs_engine *engine;    /* the session and the cache, wired (fs/engine) */
	struct cache *cache;         /* the engine's, <dir>/cache */
	struct swarm_session *swarm; /* the engine's */
	struct fs_publisher *pub;
	struct fs_sync *sync;           /* the ledger's sync with the other members (fs/sync) */
	struct fs_waiter *waiter;       /* opens and adds parked for the swarm (fs/waiter) */
	struct fs_hosting *hosting;     /* pins, health, the last copy kept (fs/hosting) */
	struct fs_volunteer *volunteer; /* --volunteer: hosts what lacks holders (fs/volunteer) */
	struct fs_seedback *seedback;   /* what this node holds, offered to the swarm */
	struct fs_imports *imports;     /* adds into a private drive (fs/import_fetch), made
	                                 * by the first; add_lock guards the pointer */
	pthread_mutex_t torrents_lock;  /* guards torrents[] */
	struct fs_torrent {
		uint8_t key[32]; /* v2 infohash: the cache object */
		struct fs_engine_torrent *t;
	} * torrents;
	size_t n_torrents, cap_torrents;
	uint8_t (*v1_keys)[32]; /* objects whose v1 companion is seeded; torrents_lock */
	size_t n_v1;
	uint64_t cache_size; /* the cap, reported by statfs */
	int read_timeout_ms;
	struct fs_drive_opts opts; /* borrowed strings: they live as long as main() */
	char **trackers;           /* NULL-terminated: the genesis's hints, the drive's config
	                            * and --tracker, without repeats (set by fs_drive_start) */
	uid_t uid;
	gid_t gid;

	/* Kernel cache invalidation: ledger changes are queued here and sent by the
	 * notifier thread, which holds no fs lock while it calls libfuse (a handler
	 * must never wait for its own invalidation). */
	pthread_mutex_t notify_lock; /* guards notify_* below */
	pthread_cond_t notify_cond;
	char **notify_paths;
	size_t notify_n, notify_cap;
	bool notify_stop;
	bool notify_running;
	pthread_t notify_thread;
	struct fuse_session *se; /* set once the session exists; read by the notifier */

	/* What the verification sweep (or an open) found tampered: such records, and
	 * every record of such blocks, are not shown. */
	pthread_mutex_t bad_lock; /* guards bad_* and verify_* below */
	uint8_t (*bad_records)[LEDGER_ID_LEN];
	size_t n_bad_records;
	int64_t *bad_heights;
	size_t n_bad_heights;
	bool verify_done;
	int verify_problems;
	bool verify_running;
	pthread_t verify_thread;
	atomic_bool closing; /* unmounting: background passes stop early */
	/* Why the last swarmfs add failed, for the command to print
	 * (user.swarmfs.add-error on the root). */
	pthread_mutex_t add_lock; /* guards add_error */
	char add_error[512];
};

/* Whether a record (at height) was found tampered. Any thread. */
bool fs_drive_is_bad(struct fs_drive *d, const uint8_t record_id[LEDGER_ID_LEN], int64_t height);
/* Whether any record or block was found tampered so far (listings then read every
 * child's record to leave those out). Any thread. */
bool fs_drive_any_bad(struct fs_drive *d);
/* Mark a record bad (an open found it failing) and hide it. Any thread. */
void fs_drive_mark_bad(struct fs_drive *d, const uint8_t record_id[LEDGER_ID_LEN], const char *path,
                       const char *why);

/* Resolve o->drive in o->home: a swarmfs:// URI or 64 hex digits name the drive id; any
 * other text is matched against each local drive's genesis name. Returns 0 and the id
 * in out_hex, -ENOENT (no such drive here; a message says what to run), -EINVAL,
 * -EMLINK (the name matches more than one drive: use the id). Main thread. */
int fs_drive_resolve(const char *home, const char *drive, char out_hex[LEDGER_HEX_LEN]);

/* The path of a key: a name means <home>/keys/<name>.key, anything with a '/' is a
 * path. Caller frees. */
int fs_key_path(const char *home, const char *key, char **out_path);

/* Open the drive: resolve, lock its directory, load the key (a missing default key
 * makes a read-only mount; a named key that is missing is an error), open the ledger.
 * Errors are logged with what to do. Main thread. */
int fs_drive_open(const struct fs_drive_opts *o, struct fs_drive **out_drive);
void fs_drive_close(struct fs_drive *d);

/* Add the torrent (its .torrent bytes) whose one file is the cache object key to the
 * engine: seeded when the cache has it all, fetched on demand otherwise; no re-hash.
 * Added already counts as success. *out_t (may be NULL) gets the handle. reading: a
 * reader waits for it, its peers (the static ones, the members) are dialled as it starts
 * (fs_engine_torrent_add's dial_now); the seeding of published or cached files leaves
 * them to libtorrent's pace. Any thread but the engine's. */
int fs_seed(struct fs_drive *d, const void *torrent, size_t len, const uint8_t key[32],
            bool reading, struct fs_engine_torrent **out_t);
/* Seed the v1 companion (its .torrent bytes) of the pinned object key from its cache
 * file, for plain v1 clients. Added already counts as success. Any thread but the
 * engine's. */
int fs_seed_v1(struct fs_drive *d, const void *torrent, size_t len, const uint8_t key[32]);

/* Fill e->content's optional fields (a file within a torrent of several) from e's
 * record, which the state tables do not keep; a no-op for directories and empty
 * files. Any thread. */
void fs_entry_content(struct fs_drive *d, struct ledger_entry *e);
/* Where a file record's content lives in the cache (as fs/engine keys it): the
 * object's key and the offset of the file's first byte in it. Pure; any thread. */
void fs_content_where(const struct ledger_content *c, uint8_t out_key[32], uint64_t *out_base);
/* Read up to len bytes of e's content at off from the cache (cache_read at the file's
 * place, clipped to the file): bytes read, 0 at the end, -ENODATA (not all here),
 * -ENOENT (no such object), -errno. Any thread. */
ssize_t fs_content_read(struct fs_drive *d, const struct ledger_entry *e, uint64_t off, void *buf,
                        size_t len);
/* The engine torrent of a file record's content, without the network: the one added
 * already, or one added from its saved .torrent (checked as fs_torrent_adopt does).
 * -ENOENT when this node has no .torrent for it (remote content whose metadata must
 * come from the swarm: fs/waiter parks for it), -EBADMSG on a mismatch. Any thread but
 * the engine's. */
int fs_torrent_local(struct fs_drive *d, const struct ledger_entry *e,
                     struct fs_engine_torrent **out_t);
/* Add a file record's torrent from its .torrent bytes (borrowed), after checking that
 * the torrent's infohash, pieces root and length are the record's (-EBADMSG, logged,
 * if not); with save, keep the bytes too (fs_save_torrent). Any thread but the
 * engine's. */
int fs_torrent_adopt(struct fs_drive *d, const struct ledger_entry *e, const void *bytes,
                     size_t len, bool save, struct fs_engine_torrent **out_t);
/* The magnet that asks the swarm for a record's metadata (its infohashes). */
void fs_torrent_magnet(const struct ledger_entry *e, char out[256]);
/* The cache key a magnet names (its v2 infohash, or its v1 zero-padded): 0, or -ENOENT
 * when it names neither. */
int fs_magnet_key(const char *magnet, uint8_t out_key[32]);
/* Where the .torrent of infohash key is kept: <drive>/torrents/<hex>.torrent. */
void fs_torrent_path(const struct fs_drive *d, const uint8_t key[32], char *buf, size_t size);
/* The .torrent this node keeps for cache key key (malloc'd): 0, -ENOENT, -errno. */
int fs_saved_torrent(struct fs_drive *d, const uint8_t key[32], void **out, size_t *out_len);

/* A v1-only companion of a file's hybrid torrent, for clients that cannot read BEP 52
 * metadata (aria2c 1.36 drops the file tree's empty-string key when it re-encodes the
 * info dict, so it computes another infohash): the same bytes, name and piece length,
 * made on the first request (hashing the file), kept as torrents/v1-<key>.torrent and
 * seeded from the cache file while mounted. Only for content this node holds whole and
 * pinned (it published it): -ENODATA otherwise. The v1 infohash into out_v1. Blocks
 * while hashing: a FUSE worker for an explicit command. */
int fs_v1_companion(struct fs_drive *d, const char *path, const struct ledger_entry *e,
                    uint8_t out_v1[20]);

/* Keep a .torrent as <dir>/torrents/<hex of key>.torrent (written whole, then renamed).
 * fs_save_torrent fsyncs it; _unsynced leaves that to the caller's syncfs (a batch of
 * publishes syncs once, fs/publish.c) and writes a new file in place (no rename): one
 * that exists at the torrent's size is kept as it is, one at another size (torn by a
 * crash before that syncfs) is replaced whole. */
int fs_save_torrent(struct fs_drive *d, const uint8_t key[32], const void *bytes, size_t len);
int fs_save_torrent_unsynced(struct fs_drive *d, const uint8_t key[32], const void *bytes,
                             size_t len);
/* This node's content that lost its path to another member's record (its claim came
 * second): claimed by this node's key beside it as PATH.conflict-<key8> (-2, -3... when
 * that is taken too), op otherwise as it was (a private drive's file key and nonce
 * kept). op->path is used and cleared. *out_alt gets the name tried last (malloc'd, or
 * NULL); returns 0 or the -errno of the last submit. Any thread. */
int fs_conflict_submit(struct fs_drive *d, struct ledger_op *op, const char *path, char **out_alt);
/* --listen ADDR:PORT (NULL: all addresses, any port) into the address (iface, "" for
 * all) and the port. -EINVAL, logged, for anything else. */
int fs_listen_parse(const char *listen, char *iface, size_t iface_len, uint16_t *out_port);

/* A NULL-terminated list of copies of strings, grown by one (a duplicate is skipped);
 * fs_strv_free frees the copies and the list. */
int fs_strv_add(char ***v, const char *s);
void fs_strv_free(char **v);

/* Write a whole file: to path.tmp, fsynced, renamed over path (complete or absent).
 * _unsynced: without the fsync (complete or absent across a crash of the process; the
 * caller syncs the filesystem before anything relies on it across a power failure). */
int fs_write_file(const char *path, const void *bytes, size_t len);
int fs_write_file_unsynced(const char *path, const void *bytes, size_t len);
/* Read a whole file of at most max bytes into a malloc'd buffer. */
int fs_read_file(const char *path, size_t max, void **out, size_t *out_len);
/* The .torrent bytes of a magnet, from the swarm (BEP 9), waiting timeout_ms at most:
 * -ETIMEDOUT when no peer gave them. Blocks: never on a FUSE worker (fs/waiter parks
 * those); for joining. */
int fs_fetch_metadata(struct fs_drive *d, const char *magnet, int timeout_ms, void **out,
                      size_t *out_len);

/* The engine torrent of a cache object, or NULL. Any thread. */
struct fs_engine_torrent *fs_torrent_find(struct fs_drive *d, const uint8_t key[32]);

/* The drive's swarmfs:// URI (with trackers and this node as a peer); caller frees. */
int fs_drive_uri(struct fs_drive *d, char **out_uri);
/* The same with an invite's secret (32 bytes) in it (inv=). */
int fs_drive_invite_uri(struct fs_drive *d, const uint8_t *invite, char **out_uri);

/* Tell the kernel that path changed (queued for the notifier thread). Any thread. */
void fs_drive_changed(struct fs_drive *d, const char *path);

/* Lower the calling thread's priority to that of background work (the verification
 * and hosting sweeps): it still finishes on a busy machine, but the FUSE handlers get
 * the CPU first. what names the thread (its comm, at most 15 bytes). Calling thread
 * only (Linux nices a thread alone). */
void fs_thread_background(const char *what);

/* The same, for work that may wait for an idle CPU (the verification sweep): the
 * thread runs under SCHED_IDLE, so a FUSE handler waking on its core takes it at once
 * rather than after the sweep's slice (on a 1M-record drive, ls -l of a cold directory
 * paid that on each of its lookups). Not starved: SCHED_IDLE still gets a small share
 * of a busy CPU. Falls back to fs_thread_background's nice. Calling thread only. */
void fs_thread_idle(const char *what);

/* Start what runs in threads, after fuse_daemonize() (its fork keeps no thread): the
 * BitTorrent session, the notifier, the publish worker (with a key). */
int fs_drive_start(struct fs_drive *d, struct fuse_session *se);

/* Start/stop the notifier thread (after the FUSE session exists / before it goes). */
int fs_drive_notify_start(struct fs_drive *d, struct fuse_session *se);
void fs_drive_notify_stop(struct fs_drive *d);

#endif
