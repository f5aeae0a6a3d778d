// Internals shared by the files of the swarm shim. C++ only; never leaves swarm/.
#ifndef SWARMFS_SWARM_PRIV_H
#define SWARMFS_SWARM_PRIV_H

#ifndef SWARMFS_SWARM_BUILD
#error "swarm_priv.h is private to swarm/"
#endif

#include "swarm.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/disk_interface.hpp>
#include <libtorrent/io_context.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/ip_filter.hpp>
#include <libtorrent/peer_class.hpp>
#include <libtorrent/peer_class_set.hpp>
#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/peer_request.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>

using swarm_clock = std::chrono::steady_clock;

// The BEP 10 message id we ask peers to use for our extension.
constexpr int swarm_ext_msg_id = 20;
// libtorrent drops peers whose packets exceed ~1 MiB: stay below with the header.
constexpr size_t swarm_ext_hard_max = 1000 * 1000;

struct swarm_fetch_req {
	uint64_t id;
	swarm_reader *r;
	uint32_t first, last; // pieces needed, inclusive
	swarm_clock::time_point deadline;
	swarm_fetch_cb cb;
	void *ctx;
	bool claimed;                        // its pieces hold a claim in swarm_torrent::want
	swarm_clock::time_point urgent_at{}; // when its pieces get deadlines, if still missing
	bool urgent = false;                 // they have them
};

struct swarm_reader {
	swarm_torrent *t;
	uint32_t file;
	uint64_t file_offset; // of the file in the torrent's byte space
	uint64_t file_size;
	std::string path;   // of the data file
	uint64_t path_base; // where the file starts in it

	std::mutex mu; // guards fd, pending and the read-ahead state below
	int fd = -1;
	std::set<uint64_t> pending;        // ids of its fetches not yet completed
	uint64_t next_offset = UINT64_MAX; // where a sequential read goes on
	uint32_t last_piece = UINT32_MAX;
	uint32_t window = 1;                      // read-ahead, in pieces
	uint32_t ahead_first = 1, ahead_last = 0; // the window claimed last

	// swarm thread only: the pieces claimed for read-ahead, [claimed_first,
	// claimed_last], none while claimed_first > claimed_last
	uint32_t claimed_first = 1, claimed_last = 0;
};

struct swarm_ext_peer;

// Shared-owned: libtorrent's plugins keep it alive while they run on the network
// thread; `self` is the API's reference, dropped by swarm_torrent_delete.
struct swarm_torrent {
	swarm_session *s;
	std::shared_ptr<swarm_torrent> self;
	void *ctx;
	bool download_all, ext_channel, dial_now;
	std::string data_file; // swarm_add_params.data_file, or empty

	// guards h, ti, have, gone, forget_pending, readding, ext_peers, meta
	std::mutex mu;
	std::condition_variable meta_cv; // metadata arrived or torrent closing
	lt::torrent_handle h;
	std::shared_ptr<const lt::torrent_info> ti;
	std::vector<bool> have; // verified pieces that are on disk now (set from alerts)
	size_t have_count = 0;  // how many of have are set (swarm_torrent_set_have)
	std::vector<bool> gone; // forgotten: libtorrent may still think it has them
	std::vector<std::string> file_paths; // data file of each file index
	std::vector<uint64_t> file_bases;    // where in its data file each file starts
	                                     // (not 0 only with swarm_add_params.data_file)
	std::vector<uint32_t> forget_pending;
	bool readding = false;
	std::atomic<bool> closing{ false }; // removed, or its session is closing
	std::map<uint64_t, std::weak_ptr<swarm_ext_peer>> ext_peers;
	// payload bytes received per peer (its dial address and listen port), kept
	// after it leaves: what swarm_session_peer_bytes reports
	std::map<std::pair<std::string, uint16_t>, uint64_t> recv;
	std::map<std::pair<std::string, uint16_t>, uint64_t> sent; // payload sent, the same way
	// live connections by remote endpoint: where the peer listens and its rank
	struct conn_info {
		uint16_t dial_port;
		int rank;
	};
	std::map<lt::tcp::endpoint, conn_info> conns;
	uint8_t ih[32] = {}; // immutable: the v2 infohash, or the v1 one zero-padded
	// (mu) the v2 block hashes of pieces whose hash check ran, until the piece's
	// finished or failed alert takes them (swarm_disk.cpp)
	std::map<int, std::vector<lt::sha256_hash>> hashed;

	// swarm thread only:
	lt::add_torrent_params base; // to re-add it after forgetting pieces
	std::vector<uint16_t> want;  // claims of fetches and read-ahead per piece
	std::vector<bool> critical;  // pieces a claim gave a deadline, until released
	std::vector<uint16_t> head;  // claims that want the piece before the rest (fetches,
	                             // the head of a read-ahead window): top priority
	// Pieces handed to libtorrent as verified at the last (re-)add: it reports each
	// of them once more as finished, which must not reach on_piece (the cache may
	// have punched it since).
	std::vector<bool> echo;
	std::list<swarm_fetch_req> fetches;
	std::set<swarm_reader *> readers;
	swarm_clock::time_point forget_at;
	bool forget_scheduled = false;
	std::vector<lt::tcp::endpoint> readd_peers;
	swarm_clock::time_point next_redial;
	// how long a reader's torrent without connections waits for its next re-dial:
	// 100 ms, doubling to a second while nobody answers
	std::chrono::milliseconds redial_wait{ 100 };
	// Peers given by swarm_torrent_connect: dialled again, with the static peers,
	// when the re-dial has to start the peer list afresh. Swarm thread only.
	std::vector<lt::tcp::endpoint> asked_peers;
	// the piece on_piece is told of now, and its block hashes (swarm_torrent_piece_blocks)
	int finished_piece = -1;
	std::vector<lt::sha256_hash> finished_blocks;
};

struct swarm_session {
	// immutable after swarm_session_new
	std::vector<std::string> trackers;
	std::vector<lt::tcp::endpoint> peers;
	int fetch_timeout_ms;
	bool dht;
	uint32_t readahead_max;
	uint64_t stream_max;
	size_t ext_max;
	std::string ext_name;
	int log_level;
	swarm_log_fn log;
	void *log_ctx;
	swarm_piece_cb on_piece;
	swarm_ext_peer_cb on_ext_peer;
	swarm_ext_message_cb on_ext_message;
	swarm_serve_cb may_serve;
	swarm_upload_cb check_upload;
	swarm_metadata_cb on_metadata;
	swarm_unknown_cb on_unknown;
	void *cb_ctx;

	std::unique_ptr<lt::session> ses;
	int efd = -1;
	std::thread thread;
	std::thread::id thread_id;
	std::atomic<bool> stopping{ false };
	std::atomic<uint64_t> next_id{ 1 };

	// guards cmds, torrents, events, dead, known_peers
	std::mutex mu;
	std::vector<lt::tcp::endpoint> known_peers; // swarm_session_set_peers
	std::deque<std::function<void()>> cmds;     // run on the swarm thread
	std::set<swarm_torrent *> torrents;         // live (not removed) torrents
	// Swarm thread only: the torrents swarm_torrent_tick looks at (with fetches, a
	// forget scheduled, waiting for metadata to read, or on the extension channel);
	// a node seeding thousands of files does not walk them all every tick.
	std::set<swarm_torrent *> ticking;
	struct event {
		std::shared_ptr<swarm_torrent> t;
		uint64_t peer;
		int kind; // 0 join, 1 leave, 2 message
		std::string msg;
		// the sender's count of its bytes in events, given back on delivery
		std::shared_ptr<std::atomic<size_t>> pending;
	};
	std::deque<event> events; // from the network thread to the swarm thread
	size_t events_bytes = 0;  // message bytes in events
	// credit ranks (swarm_class.cpp): the peer class of each rank ([0] unused: rank 0
	// is no class of ours) and libtorrent's own filter with the global class added to
	// local networks, immutable after swarm_class_init; ranks guarded by rank_mu
	lt::peer_class_t rank_class[SWARM_RANKS];
	lt::ip_filter base_filter;
	std::mutex rank_mu;
	std::map<std::string, int> ranks;
	// Removed torrents live on until the session ends: alerts still queued for
	// them carry their pointer as userdata.
	std::vector<std::shared_ptr<swarm_torrent>> dead;
};

// swarm.cpp
void swarm_logf(swarm_session *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int swarm_error(swarm_session *s, const lt::error_code &ec, const char *what);
void swarm_post(swarm_session *s, std::function<void()> fn);
void swarm_wake(swarm_session *s);
bool swarm_on_thread(swarm_session *s);

// swarm_torrent.cpp (swarm thread)
void swarm_torrent_set_have(swarm_torrent *t, size_t p, bool v); // t->mu held, any thread
void swarm_torrent_on_alert(swarm_session *s, lt::alert *a);
void swarm_torrent_tick(swarm_session *s);
void swarm_session_cancel_all(swarm_session *s);
void swarm_torrent_delete(swarm_torrent *t);

// swarm_plugin.cpp
std::shared_ptr<lt::torrent_plugin> swarm_plugin_new(swarm_torrent *t);
void swarm_ext_deliver(swarm_session *s); // swarm thread: run queued events
// The live torrents of s (those with the extension channel too if ext). Any thread.
std::vector<std::shared_ptr<swarm_torrent>> swarm_live_torrents(swarm_session *s, bool ext);
// What one extension peer may make us hold (DESIGN §10): messages not yet delivered to
// the embedder, its own and all peers' together, and bytes queued to it that it does not
// read. Past either, the peer is disconnected rather than buffered.
#define SWARM_EXT_PEER_QUEUE  (32u << 20)
#define SWARM_EXT_TOTAL_QUEUE (128u << 20)
#define SWARM_EXT_SEND_QUEUE  (20u << 20) /* two 8 MiB answers in flight, and a bit */
int swarm_ext_queue(swarm_torrent *t, std::shared_ptr<swarm_ext_peer> const &p, const void *msg,
                    size_t len);

// swarm_spread.cpp: a block another peer holds is refused once (network thread only).
// swarm_spread_refuse is true when the caller (a node holding every piece) is to reject
// r from the peer `key`: a peer other than it, not a seed, holds r's piece, and `key`
// has not been refused that block before. Peers are keyed by their plugin's address,
// joined when they connect, left when they go.
#define SWARM_SPREAD_BLOCK 16384 /* libtorrent's request size */
struct swarm_spread;
std::shared_ptr<swarm_spread> swarm_spread_new();
void swarm_spread_join(swarm_spread &sp, const void *key, lt::peer_connection_handle const &pc);
void swarm_spread_leave(swarm_spread &sp, const void *key);
bool swarm_spread_refuse(swarm_spread &sp, const void *key, lt::peer_request const &r,
                         uint32_t num_pieces, uint32_t piece_length);

// swarm_class.cpp: credit ranks as peer classes
void swarm_class_init(swarm_session *s); // in session_new, before the thread starts
int swarm_class_rank(swarm_session *s, const lt::peer_class_set &c); // network thread

// swarm_disk.cpp: the session's disk I/O (posix_disk_io, uploads checked)
std::unique_ptr<lt::disk_interface> swarm_disk_new(swarm_session *s, lt::io_context &ioc,
                                                   lt::settings_interface const &sett,
                                                   lt::counters &cnt);
// swarm_make.cpp
int swarm_metainfo_from(const lt::torrent_info &ti, const char *torrent, size_t len,
                        swarm_metainfo **out);

#define SWARM_LOG(s, level, ...)                                                                   \
	do {                                                                                       \
		if ((s)->log && (level) <= (s)->log_level)                                         \
			swarm_logf((s), (level), __VA_ARGS__);                                     \
	} while (0)

// The catch clauses that end an extern "C" function: no exception crosses into C.
#define SWARM_CATCH                                                                                \
	catch (std::bad_alloc const &)                                                             \
	{                                                                                          \
		return -ENOMEM;                                                                    \
	}                                                                                          \
	catch (lt::system_error const &e)                                                          \
	{                                                                                          \
		return swarm_error(nullptr, e.code(), "swarm");                                    \
	}                                                                                          \
	catch (...)                                                                                \
	{                                                                                          \
		return -EIO;                                                                       \
	}

#endif
