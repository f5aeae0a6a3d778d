/*
 * swarm — the BitTorrent engine of a drive: a plain C API over libtorrent-rasterbar 2.0.
 * Sessions, torrent creation, torrents added from .torrent bytes, magnet links or bare
 * infohashes, on-demand fetches with piece deadlines and a per-reader read-ahead
 * window, seeding, forgetting evicted pieces, and the BEP 10 extension channel that
 * carries ledger sync.
 *
 * All C++ and every libtorrent type stay inside swarm/; this header is plain C with
 * opaque handles. Every exception is caught at the extern "C" edge (bad_alloc becomes
 * -ENOMEM, anything else -EIO). Never depends on cache/, ledger/ or fs/: events go
 * upward through the callbacks in struct swarm_config.
 *
 * Storage: libtorrent's own posix_disk_io writes each torrent's files under the save
 * path the embedder gives (fs/ passes a directory inside the cache, or whole file paths
 * with swarm_add_params.file_paths). A piece is "verified" once its hash passed; only
 * then does swarm/ report it (swarm_piece_cb) or complete a fetch waiting for it.
 * libtorrent hashes what it downloads; what it reads to upload is shown to the
 * embedder first (swarm_config.check_upload), through a thin disk_interface around
 * posix_disk_io (swarm_disk.cpp).
 *
 * Threads: one swarm thread per session pops libtorrent's alerts (libtorrent's notify
 * hook only signals an eventfd), copies what it needs and runs every callback. Every
 * libtorrent call that changes a torrent is made on that thread too: public functions
 * queue a command and return. Callbacks never block and never call swarm/ functions
 * documented "not from a callback". Several sessions coexist in one process; nothing
 * is global.
 * Errors: >= 0 on success, -errno on failure. A failed call leaves its outputs alone.
 */
#ifndef SWARMFS_SWARM_H
#define SWARMFS_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct swarm_session;
struct swarm_torrent;
struct swarm_reader;

/* The libtorrent version this build runs against, e.g. "2.0.8.0".
 * Returns a static string. Any thread. */
const char *swarm_libtorrent_version(void);

/* ---- callbacks (all run on the session's swarm thread) ---- */

/* A log line at a syslog level (LOG_ERR...LOG_DEBUG); module is "swarm". Must be
 * thread-safe: it is called from the swarm thread and from callers' threads. */
typedef void (*swarm_log_fn)(int level, const char *module, const char *msg, void *ctx);
/* A piece of t passed its hash check and is on disk (also after a re-download of a
 * forgotten piece). torrent_ctx is swarm_add_params.ctx. */
typedef void (*swarm_piece_cb)(struct swarm_torrent *t, void *torrent_ctx, uint32_t piece,
                               void *ctx);
/* Inside on_piece for t and piece only (swarm thread): the SHA-256 digests of the
 * piece's 16 KiB blocks (BEP 52 leaves; the last block of a file hashed as short as it
 * is) that libtorrent's hash check computed from the data file. Copies at most max of
 * them to out (NULL with max 0 asks only) and returns how many there are: a piece's
 * worth, its digests past the end of its file meaningless; 0 for a torrent without v2
 * hashes, or called anywhere else. */
#define SWARM_BLOCK_SHA_LEN 32
int swarm_torrent_piece_blocks(struct swarm_torrent *t, uint32_t piece,
                               uint8_t (*out)[SWARM_BLOCK_SHA_LEN], uint32_t max);
/* A peer that speaks the extension channel joined (connected true) or left t. peer is
 * an id unique within the session, never reused. */
typedef void (*swarm_ext_peer_cb)(struct swarm_torrent *t, void *torrent_ctx, uint64_t peer,
                                  bool connected, void *ctx);
/* An extension message from peer. msg is borrowed for the call. */
typedef void (*swarm_ext_message_cb)(struct swarm_torrent *t, void *torrent_ctx, uint64_t peer,
                                     const void *msg, size_t len, void *ctx);
/* May libtorrent upload this piece of t now? Asked for each request a peer makes,
 * after swarm/'s own check that the piece is verified and not forgotten: the embedder
 * answers false for data it is about to remove (the cache unmarks a chunk before it
 * punches the hole; the forget comes after). Runs on libtorrent's network thread,
 * not the swarm thread: must be fast, thread-safe, and never call swarm/. */
typedef bool (*swarm_serve_cb)(struct swarm_torrent *t, void *torrent_ctx, uint32_t piece,
                               void *ctx);
/* libtorrent read len bytes of t at offset (in t's byte space: piece * piece length +
 * offset in the piece) from its data file, to upload them to a peer: may they go?
 * buf holds the bytes exactly as they would be sent. false withholds them: the peer
 * gets a reject for the request (and "dont have" for the piece) and t goes on serving
 * its other pieces. Runs on libtorrent's network thread, like swarm_serve_cb: must be
 * thread-safe, never call swarm/, and never wait for a lock that is held across a
 * swarm/ call (swarm_torrent_add waits for that thread). */
typedef bool (*swarm_upload_cb)(struct swarm_torrent *t, void *torrent_ctx, uint64_t offset,
                                const void *buf, size_t len, void *ctx);
/* The metadata of t (added from a magnet or an infohash) arrived from a peer:
 * swarm_torrent_metainfo has it now, and swarm_torrent_wait_metadata returns. */
typedef void (*swarm_metadata_cb)(struct swarm_torrent *t, void *torrent_ctx, void *ctx);
/* A peer asked for a torrent this session does not have: ih is the 20 bytes of its
 * handshake (a v1 infohash, or a v2 one truncated). The peer is turned away; a peer that
 * wants the torrent dials again, and finds it if the embedder has added it meanwhile
 * (seeding on demand). Runs on libtorrent's network thread, like swarm_serve_cb: must be
 * fast, thread-safe, and never call swarm/. */
typedef void (*swarm_unknown_cb)(const uint8_t ih[20], void *ctx);
/* A fetch ended: 0 (every byte of the range is verified and on disk), -ETIMEDOUT,
 * -ECANCELED (swarm_fetch_cancel, reader or torrent gone), or another -errno. */
typedef void (*swarm_fetch_cb)(int result, void *ctx);

/* ---- sessions ---- */

struct swarm_config {
	const char *listen_interface; /* address to listen on, NULL = "0.0.0.0" */
	uint16_t listen_port;         /* 0 = any free port (see swarm_session_port) */
	const char *const *trackers;  /* NULL-terminated announce URLs added to every
	                                 torrent, or NULL */
	const char *const *peers;     /* NULL-terminated "host:port" static peers tried for
	                                 every torrent, or NULL */
	bool dht, lsd, upnp, natpmp, pex;
	const char *const *dht_bootstrap; /* NULL-terminated "host:port" DHT routers, or
	                                     NULL for the public ones (router.bittorrent.com,
	                                     router.utorrent.com, dht.transmissionbt.com,
	                                     dht.libtorrent.org) */
	bool utp;                         /* uTP as well as TCP (off: on loopback and LANs
	                                     TCP is much faster) */
	int upload_rate_limit;            /* bytes/s, 0 = unlimited; over every peer,
	                                     those on local networks too (libtorrent
	                                     exempts them by default) */
	int download_rate_limit;          /* bytes/s, 0 = unlimited */
	int connections_limit;            /* 0 = libtorrent's default (200) */
	int fetch_timeout_ms;             /* default fetch timeout, 0 = 30000 */
	uint32_t readahead_max;           /* read-ahead window cap in bytes, 0 = 16 MiB */
	uint64_t stream_max;              /* a reader whose window has grown to its cap
	                                     and whose file has at most this many bytes
	                                     left wants all of them (0 = never): see
	                                     swarm_fetch */
	size_t ext_max_message;           /* extension message cap in bytes, 0 = 1 MiB;
	                                     bigger ones are refused or dropped */
	const char *ext_name;             /* BEP 10 name, NULL = "swarmfs_sync" */

	int log_level;    /* lines above this syslog level are not formatted */
	swarm_log_fn log; /* NULL = no logging */
	void *log_ctx;

	swarm_piece_cb on_piece;
	swarm_ext_peer_cb on_ext_peer;
	swarm_ext_message_cb on_ext_message;
	swarm_serve_cb may_serve;      /* NULL = serve every verified piece */
	swarm_upload_cb check_upload;  /* NULL = upload what is read from disk */
	swarm_metadata_cb on_metadata; /* NULL = not told */
	swarm_unknown_cb on_unknown;   /* NULL = not told */
	void *cb_ctx;                  /* the ctx of the seven callbacks above */
};

/* Defaults: listen on all interfaces, any port, DHT/LSD/UPnP/NAT-PMP off, PEX on,
 * no limits, log level LOG_NOTICE. Caller-owned struct. Any thread. */
void swarm_config_init(struct swarm_config *c);

/* Start a session and its swarm thread. The config and its strings are copied.
 * Returns 0, -EINVAL (bad config, e.g. a static peer that is not "host:port"),
 * -EADDRINUSE, -ENOMEM, -EIO. Free with swarm_session_free. Any thread. */
int swarm_session_new(const struct swarm_config *c, struct swarm_session **out);
/* Stop the swarm thread, fail every pending fetch with -ECANCELED, free every torrent
 * and reader handle of the session, and close it. Does not delete data. NULL is a
 * no-op. Any thread but the swarm thread (not from a callback). */
void swarm_session_free(struct swarm_session *s);
/* The TCP port the session listens on (useful with listen_port 0). -EAGAIN if it
 * is not listening yet (wait a little). Any thread. */
int swarm_session_port(struct swarm_session *s, uint16_t *out_port);
/* Peers worth trying for any torrent of the session besides swarm_config.peers (fs/:
 * the drive's members, where they listen), NULL-terminated "host:port" (copied; NULL
 * or empty: none). A torrent added with swarm_add_params.dial_now or ext_channel dials
 * them as it starts; other torrents do not get them. Replaces the list set before. Returns 0,
 * -EINVAL (an entry that is not "host:port" with an address literal: nothing
 * changed), -ENOMEM. Any thread. */
int swarm_session_set_peers(struct swarm_session *s, const char *const *peers);

struct swarm_session_stats {
	uint32_t torrents;
	uint32_t peers;         /* connected peers, all torrents */
	uint64_t download_rate; /* payload bytes/s */
	uint64_t upload_rate;
	uint64_t total_downloaded; /* payload bytes since the session started */
	uint64_t total_uploaded;
	uint64_t wire_downloaded; /* every byte, protocol and extension messages too, */
	uint64_t wire_uploaded;   /* since each torrent was (last) added */
};
/* Any thread (not from a callback: it waits for libtorrent's network thread). */
int swarm_session_stats(struct swarm_session *s, struct swarm_session_stats *out);

/* ---- making torrents ---- */

enum swarm_make_kind {
	SWARM_MAKE_HYBRID = 0, /* v1 + v2 in one .torrent (BEP 52 hybrid): the default */
	SWARM_MAKE_V1 = 1,     /* v1 only: same infohash as mktorrent for a single file */
	SWARM_MAKE_V2 = 2,     /* v2 only */
};

struct swarm_make_params {
	enum swarm_make_kind kind;
	uint32_t piece_length;       /* power of two >= 16 KiB, 0 = libtorrent's choice */
	const char *const *trackers; /* NULL-terminated, or NULL */
	int threads;                 /* hashing threads, 0 = number of CPUs */
	bool private_flag;
	/* Called after each piece is hashed with the pieces hashed so far and the total,
	 * on the thread that called swarm_metainfo_make; NULL: not told. */
	void (*progress)(uint32_t hashed, uint32_t total, void *ctx);
	void *progress_ctx;
};

struct swarm_file_info {
	char *path; /* inside the torrent, "/"-separated, with its name */
	uint64_t size;
	uint64_t offset; /* in the torrent's byte space (pad files included) */
	bool has_root;
	uint8_t root[32]; /* BEP 52 pieces root (v2, non-empty files) */
};

/* What a .torrent says. Plain data; free with swarm_metainfo_free. */
struct swarm_metainfo {
	uint8_t *torrent; /* the bencoded .torrent (NULL for a torrent whose
	                     metadata came from peers: use swarm_torrent_metainfo) */
	size_t torrent_len;
	char *name;
	bool has_v1, has_v2;
	uint8_t v1[20]; /* SHA-1 infohash */
	uint8_t v2[32]; /* SHA-256 infohash */
	uint32_t piece_length;
	uint32_t num_pieces;
	uint64_t total_size;
	uint32_t num_files; /* real files, pad files left out */
	struct swarm_file_info *files;
};

/* Hash the file or directory at path (a directory's files in sorted order, hidden
 * files and symlinks included as files) and make a .torrent. p NULL = defaults.
 * Uses p->threads hashing threads. Returns 0, -ENOENT, -EINVAL (empty content, bad
 * piece length), -EIO, -ENOMEM. Caller thread only (blocks while hashing); any thread
 * outside a callback. No session needed. */
int swarm_metainfo_make(const char *path, const struct swarm_make_params *p,
                        struct swarm_metainfo **out);
/* Making a one-file torrent from hashes computed piece by piece while the caller reads
 * the content once for other work too (publishing: encrypting, the cache's checks).
 * swarm_make_piece_length gives libtorrent's piece length for a file of size bytes
 * (what swarm_metainfo_make would choose). A hasher takes each piece's bytes (the
 * piece length, the last piece its rest), in any order, distinct pieces from several
 * threads at once, and makes the .torrent of a file named name (hybrid, v1 or v2 per
 * p->kind; p->piece_length is ignored) once every piece was given. Returns 0, -EINVAL
 * (size 0, bad piece length or index, a missing piece at finish), -ENOMEM, -EIO. */
struct swarm_hasher;
uint32_t swarm_make_piece_length(uint64_t size);
int swarm_hasher_new(uint64_t size, uint32_t piece_length, enum swarm_make_kind kind,
                     struct swarm_hasher **out);
/* out_leaves (NULL: not wanted; only for a kind with v2) gets the SHA-256 of each 16 KiB
 * block of the piece, its BEP 52 leaves: (len + 16383) / 16384 of them. */
int swarm_hasher_piece(struct swarm_hasher *h, uint32_t index, const void *data, size_t len,
                       uint8_t (*out_leaves)[32]);
/* A piece hashed by the caller instead: its SHA-1 v1 (NULL only for SWARM_MAKE_V2) and its
 * nleaves 16 KiB blocks' SHA-256 (NULL only for SWARM_MAKE_V1), (len + 16383) / 16384 of
 * them for the piece's len; the hasher makes the piece's BEP 52 root of them. Same rules
 * and errors as swarm_hasher_piece. */
int swarm_hasher_piece_hashed(struct swarm_hasher *h, uint32_t index, const uint8_t v1[20],
                              const uint8_t (*leaves)[32], size_t nleaves);
int swarm_hasher_finish(struct swarm_hasher *h, const char *name, const struct swarm_make_params *p,
                        struct swarm_metainfo **out);
void swarm_hasher_free(struct swarm_hasher *h); /* NULL is a no-op */

/* Parse and check .torrent bytes. Returns 0, -EINVAL (malformed bencode or torrent:
 * the reason goes to *out_error if not NULL, "bad bencode at byte N" for the first, valid until the
 * next call on this thread), -ENOMEM. Any thread. */
int swarm_metainfo_parse(const void *data, size_t len, struct swarm_metainfo **out,
                         const char **out_error);
/* Free m and everything in it; NULL is a no-op. */
void swarm_metainfo_free(struct swarm_metainfo *m);
/* Format an infohash as lowercase hex (len 20 or 32 bytes) into out (2*len+1). */
void swarm_hex(const uint8_t *hash, size_t len, char *out);

/* ---- torrents ---- */

struct swarm_add_params {
	/* exactly one of the three sources: */
	const void *torrent; /* bencoded .torrent bytes (copied) */
	size_t torrent_len;
	const char *magnet;   /* magnet URI: metadata through BEP 9 */
	const char *infohash; /* 40 (v1) or 64 (v2) hex digits: metadata via BEP 9 */

	const char *save_path;         /* directory for the data files (required) */
	const char *const *file_paths; /* NULL, or one entry per real file of the
	                                  torrent (NULL entry = default): a path absolute or
	                                  relative to save_path. .torrent source only. */
	const char *data_file;         /* NULL, or an absolute path: the torrent's whole
	                                  byte space (pad files included) in this one
	                                  file, in place of its files (a v1 torrent of
	                                  several files, whose pieces cross file
	                                  boundaries). .torrent source, v1 only, not
	                                  with file_paths. Readers of file i read it at
	                                  the file's offset in the torrent. */
	const uint8_t *have;           /* NULL, or a bitmap of pieces already verified on
	                                  disk: piece i is bit (i % 8) of have[i / 8]; they
	                                  are neither hashed nor downloaded again */
	uint32_t have_bits;            /* number of bits in have (= the piece count) */
	bool seed;                     /* every piece is on disk (this node made it):
	                                  libtorrent checks each piece lazily on first upload */
	bool download_all;             /* download everything, like a plain client, instead
	                                  of only what fetches and read-ahead ask for */
	bool ext_channel;              /* speak the BEP 10 extension channel on it; its
	                                  peers are dialled as it starts, as with
	                                  dial_now (a drive's sync waits for them) */
	bool dial_now;                 /* a reader waits for it (an open, a metadata
	                                  fetch): dial the static peers and the
	                                  session's known peers (swarm_session_set_peers)
	                                  as it starts. Otherwise they are dialled at
	                                  libtorrent's next round of new connections,
	                                  which comes once a second: up to 1 s lost. */
	void *ctx;                     /* handed to callbacks about this torrent */
};

/* Add a torrent and start it at once (not auto-managed, not paused). Returns 0,
 * -EINVAL (malformed .torrent, magnet or infohash, bad bitmap length, no source or
 * several; the reason is logged), -EEXIST (already in this session), -ENOMEM, -EIO.
 * *out stays valid until swarm_torrent_remove or swarm_session_free.
 * Any thread (not from a callback). */
int swarm_torrent_add(struct swarm_session *s, const struct swarm_add_params *p,
                      struct swarm_torrent **out);
/* Remove t from the session: its fetches fail with -ECANCELED, its readers are freed
 * with it, its files stay on disk unless delete_files. Frees t. Returns once libtorrent
 * has the removal in hand, so the same infohash can be added again at once. Any thread
 * (not from a callback); NULL is a no-op returning 0. */
int swarm_torrent_remove(struct swarm_torrent *t, bool delete_files);
/* Wait until t has its metadata (at once for a .torrent source). Returns 0,
 * -ETIMEDOUT, -ECANCELED (session closing). Any thread (not from a callback). */
int swarm_torrent_wait_metadata(struct swarm_torrent *t, int timeout_ms);
/* t's metainfo (after its metadata arrived; the .torrent bytes included). Returns 0,
 * -EAGAIN (no metadata yet), -ENOMEM. Free with swarm_metainfo_free. Any thread. */
int swarm_torrent_metainfo(struct swarm_torrent *t, struct swarm_metainfo **out);
/* Whether piece is verified on disk now (false while forgotten). Any thread. */
bool swarm_torrent_has_piece(struct swarm_torrent *t, uint32_t piece);
/* Copy the bitmap of verified pieces (format of swarm_add_params.have) into out,
 * nbytes long. Returns the number of pieces, -EAGAIN without metadata, -ERANGE if
 * nbytes is too small. Save it with the data to resume without re-hashing. */
int swarm_torrent_have(struct swarm_torrent *t, uint8_t *out, size_t nbytes);
/* Ask libtorrent to connect to a peer ("host" an address literal). It joins t's peer
 * list and is dialled at libtorrent's next round of new connections, which comes once
 * a second (libtorrent dials at once only as a torrent starts): peers known before an
 * add go in swarm_session_set_peers, for adds with dial_now. Any thread. */
int swarm_torrent_connect(struct swarm_torrent *t, const char *host, uint16_t port);

/* Make t forget pieces whose data left the disk (the cache evicted them): from the
 * return on, swarm_torrent_has_piece is false for them, fetches wait for a new
 * download, and no peer is served them again (a peer plugin refuses requests for them
 * at once, with a reject message where the peer speaks the fast extension).
 *
 * How: libtorrent 2.0 has no public "clear piece". force_recheck() would re-hash the
 * whole file, and a custom disk_interface would re-implement posix_disk_io. So the
 * swarm thread removes the torrent and adds it again with the reduced have bitmap
 * (add_torrent_params.have_pieces, no_verify_files: nothing is re-hashed), batching
 * the forgets of ~50 ms into one re-add. Pending fetches and read-ahead keep their
 * claims and get their deadlines again, the peers that were connected are dialled
 * again, and the "finished" reports libtorrent repeats for the pieces it is handed
 * are not passed on to on_piece. Extension peers of t leave and join again.
 * Returns 0, -EINVAL (piece out of range), -EAGAIN (no metadata). Any thread,
 * callbacks included (it only queues). */
int swarm_torrent_forget(struct swarm_torrent *t, const uint32_t *pieces, size_t n);

enum swarm_torrent_state {
	SWARM_STATE_METADATA = 0, /* waiting for metadata (magnet, infohash) */
	SWARM_STATE_CHECKING,     /* checking files */
	SWARM_STATE_READY,        /* serving and fetching on demand */
	SWARM_STATE_SEEDING,      /* every piece verified */
	SWARM_STATE_ERROR,
};

struct swarm_torrent_stats {
	enum swarm_torrent_state state;
	uint32_t peers;         /* connected */
	uint32_t seeds;         /* connected peers that have everything */
	uint64_t download_rate; /* payload bytes/s */
	uint64_t upload_rate;
	uint64_t total_downloaded; /* payload bytes received since added */
	uint64_t total_uploaded;
	uint64_t bytes_have;   /* verified bytes on disk */
	uint64_t bytes_wanted; /* bytes of pieces libtorrent is fetching now */
	uint32_t pieces_have;
	uint32_t num_pieces;
	uint32_t ext_peers; /* peers on the extension channel */
};
/* Any thread (not from a callback: it asks libtorrent's network thread). */
int swarm_torrent_stats(struct swarm_torrent *t, struct swarm_torrent_stats *out);

/* Payload bytes this session received from one peer on one torrent (extension-channel
 * torrents excluded), since the torrent was added, the peer's earlier connections
 * included: the counts a downloader's credit receipts vouch for. */
struct swarm_peer_bytes {
	uint8_t ih[32];      /* the torrent's v2 infohash, or its v1 one zero-padded */
	char host[46];       /* the peer's address, as a literal */
	uint16_t port;       /* the port it listens on (swarm_ext_peer_addr's), 0 unknown */
	uint64_t downloaded; /* payload bytes received from it */
	uint64_t uploaded;   /* payload bytes sent to it */
};
/* Up to max entries into out; returns how many there are (more than max: call again
 * with more room), or -errno. Any thread (not from a callback). */
int swarm_session_peer_bytes(struct swarm_session *s, struct swarm_peer_bytes *out, size_t max);

/* ---- credit ranks (DESIGN §11) ---- */

#define SWARM_RANKS 4 /* ranks 0 (every address not ranked) .. SWARM_RANKS - 1 */

struct swarm_rank {
	char host[46]; /* a peer's address, as a literal */
	int rank;      /* 1 .. SWARM_RANKS - 1 */
};
/* Rank the peers at these addresses; every other address has rank 0. When this node's
 * upload is contended, a peer of a higher rank is unchoked first and gets the larger
 * share: rank r is a libtorrent peer class of upload priority 4^r, and libtorrent's
 * choker orders peers by that priority while its bandwidth limiter shares a limit in
 * proportion to it (rank 3 gets 4 times rank 2's share). Ranks go by address (the
 * session's peer class filter), so peers behind one address share one rank (the caller
 * picks it), and a connection takes the rank of its address when it starts: one made
 * before keeps its rank until it reconnects. Replaces the table given before. Returns
 * 0, -EINVAL (not an address literal, a rank out of range: nothing changed), -ENOMEM.
 * Any thread (not from a callback). */
int swarm_session_set_ranks(struct swarm_session *s, const struct swarm_rank *v, size_t n);

/* The session's peers now, one entry per address and listen port, all its torrents'
 * connections together (the extension channel's too). */
struct swarm_peer_info {
	char host[46];
	uint16_t port;             /* where it listens (swarm_ext_peer_addr's), 0 unknown */
	int rank;                  /* the highest its connections got (swarm_session_set_ranks) */
	uint32_t connections;      /* one a torrent */
	uint64_t download_rate;    /* payload bytes/s */
	uint64_t upload_rate;      /* payload bytes/s */
	uint64_t total_downloaded; /* payload bytes, as swarm_session_peer_bytes counts */
	uint64_t total_uploaded;
};
/* Up to max entries into out, busiest first; returns how many there are (more than
 * max: call again with more room), or -errno. Any thread (not from a callback: it
 * waits for libtorrent's network thread). */
int swarm_session_peers(struct swarm_session *s, struct swarm_peer_info *out, size_t max);

/* ---- on-demand reads ---- */

/* A reader is the state of one open file: position and read-ahead window, which
 * doubles (from 1 piece up to swarm_config.readahead_max) while reads go forward
 * and falls back to one piece on a seek. Make one per open file handle.
 * Returns 0, -EAGAIN (no metadata yet), -ENOENT (file_index out of range), -ENOMEM.
 * Any thread. */
int swarm_reader_new(struct swarm_torrent *t, uint32_t file_index, struct swarm_reader **out);
/* Cancel r's fetches (callbacks with -ECANCELED, on the swarm thread) and free r.
 * NULL is a no-op. Any thread, callbacks included; the caller serialises it with its
 * other calls on r (a swarm_read or swarm_reader_pread on r must have returned). */
void swarm_reader_free(struct swarm_reader *r);

/* Start fetching [offset, offset + len) of r's file (clipped to the file's end): the
 * pieces the range needs and the first 2 MiB of the read-ahead window after them at top
 * priority, the rest of the window at low priority, each band rarest first; every other
 * piece left at priority 0. The range's pieces get deadlines only once the fetch has
 * waited 200 ms (a deadline puts libtorrent in its time-critical mode, which asks the
 * fastest peer, most often the publisher, and keeps one normal request a peer). A
 * reader that has kept going forward until its window reached readahead_max, with at
 * most swarm_config.stream_max bytes of its file left, streams: the window becomes the
 * rest of the file, as a plain client fetches a file, so the pipe stays full and
 * readers of one file fetch different pieces and trade them. Returns 1 when
 * the whole range is verified already (cb is not called), 0 when cb will be called exactly once on
 * the swarm thread, or -errno (cb not called). timeout_ms 0 = the session's default. *out_id (if
 * not NULL) names the fetch for swarm_fetch_cancel. A miss holds no lock while it waits. While a
 * fetch (or the metadata of a torrent added with dial_now) is waited for and the torrent has no
 * connection at all, its static peers and those it was given (swarm_torrent_connect,
 * swarm_session_set_peers) are dialled again, within about 100 ms of it being left alone, then
 * backing off to once a second. Any thread, callbacks included. */
int swarm_fetch(struct swarm_reader *r, uint64_t offset, uint64_t len, int timeout_ms,
                swarm_fetch_cb cb, void *ctx, uint64_t *out_id);
/* Cancel a pending fetch: its callback runs with -ECANCELED soon (swarm thread).
 * Returns 0 or -ENOENT (already done). Any thread, callbacks included. */
int swarm_fetch_cancel(struct swarm_reader *r, uint64_t id);
/* Copy verified bytes of r's file into buf. Returns the byte count (0 at or past the
 * end of the file), or -ENODATA if a piece of the range is not verified. Any thread. */
ssize_t swarm_reader_pread(struct swarm_reader *r, void *buf, size_t len, uint64_t offset);
/* swarm_fetch, wait, then swarm_reader_pread: the blocking form. Returns the byte
 * count, -ETIMEDOUT, -ECANCELED, or -errno. Any thread (not from a callback). */
ssize_t swarm_read(struct swarm_reader *r, void *buf, size_t len, uint64_t offset, int timeout_ms);

/* ---- extension channel (BEP 10), for torrents added with ext_channel ---- */

/* Queue msg (copied) for peer on t's extension channel. Returns 0, -EMSGSIZE (over
 * ext_max_message), -ENOTCONN (no such peer now), -ENOBUFS (the peer does not read what
 * it is sent: too much is queued for it; drop it), -ENOMEM. Any thread, callbacks
 * included. Delivery is in order per peer, not guaranteed across disconnects. */
int swarm_ext_send(struct swarm_torrent *t, uint64_t peer, const void *msg, size_t len);
/* Queue msg for every extension peer of t; returns how many. Any thread. */
int swarm_ext_broadcast(struct swarm_torrent *t, const void *msg, size_t len);
/* Where an extension peer of t can be dialled: its address as a literal ("127.0.0.1",
 * "::1") into host (host_len bytes, 46 is enough) and the port it listens on: the "p" of
 * its BEP 10 handshake, else the remote port of a connection this node made; *out_port is
 * 0 when neither is known (an incoming peer that did not say). Returns 0, -ENOTCONN (no
 * such peer now), -ERANGE (host_len too small). Any thread, callbacks included. */
int swarm_ext_peer_addr(struct swarm_torrent *t, uint64_t peer, char *host, size_t host_len,
                        uint16_t *out_port);
/* Disconnect an extension peer of t (it sent invalid data); its on_ext_peer(false)
 * follows. Returns 0 or -ENOTCONN. Any thread, callbacks included. */
int swarm_ext_drop(struct swarm_torrent *t, uint64_t peer);

#ifdef __cplusplus
}
#endif
#endif
