// Torrents and on-demand reads: add/remove, the verified-piece bitmap, fetches with
// piece deadlines, per-reader read-ahead, forgetting pieces by re-adding the torrent.
//
// libtorrent handle calls that change a torrent run on the swarm thread; the API
// functions check what they can under swarm_torrent::mu and post the rest.
#include "swarm_priv.h"

#include <boost/asio/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <new>
#include <syslog.h>
#include <unistd.h>

#include <libtorrent/alert_types.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/magnet_uri.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/torrent_status.hpp>

namespace
{

constexpr lt::download_priority_t prio_off = lt::dont_download;
constexpr lt::download_priority_t prio_on = lt::top_priority;
constexpr lt::download_priority_t prio_rest = lt::low_priority;

swarm_torrent *alert_torrent(swarm_session *s, lt::torrent_handle const &h)
{
	(void)s;
	if (!h.is_valid())
		return nullptr;
	return h.userdata().get<swarm_torrent>();
}

uint32_t num_pieces(swarm_torrent *t)
{
	return (uint32_t)t->have.size();
}

// ---- claims: the swarm thread's view of which pieces someone waits for ----

// Swarm thread: t has something for the tick to do (see swarm_session::ticking).
void tick_watch(swarm_torrent *t)
{
	t->s->ticking.insert(t);
}

void apply_prios(swarm_torrent *t,
                 std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> &p)
{
	if (!p.empty() && !t->readding)
		t->h.prioritize_pieces(p);
	p.clear();
}

// The priority of wanted piece p (t->mu held): top for the pieces a claim wants first,
// low for the rest of a read-ahead window.
static lt::download_priority_t want_prio(swarm_torrent *t, uint32_t p)
{
	return t->head[p] ? prio_on : prio_rest;
}

// How a reader's pieces are asked for (issue 18's fan-out: readers of one new file
// should fetch different pieces and trade them, not all ask its publisher for each):
// - the pieces a read waits for, and the head of its read-ahead window (2 MiB), at top
//   priority; the rest of the window at low priority. libtorrent's picker takes the
//   top ones first, each band rarest first, with every peer's request queue full.
// - a deadline (set_piece_deadline) only for the pieces of a read that has waited
//   urgent_ms and still misses them. libtorrent 2.0's request_a_block is in "time
//   critical mode" while any piece has a deadline: a peer then gets 1 outstanding
//   normal request (not desired_queue_size), and the time-critical picker asks the
//   peer with the shortest queue that has the piece, most often the publisher. With a
//   deadline on every read that missed, and on the window's first 2 MiB, a streaming
//   reader held the torrent in that mode nearly all the time. 9 readers of 256 MiB
//   (scripts/bench/fanout.sh, 11 alternated pairs): the publisher sent a median 2.89
//   copies (mean 2.95), now 2.75 (2.84); a run varies by +-0.3, as much as that.
// The publisher's side of it is swarm_spread.cpp: a node holding every piece refuses a
// block once while a reader still downloading holds its piece.
// A deadline is set once per piece until the piece is released (setting it again on a
// time-critical piece crashed libtorrent's network thread).
constexpr int urgent_ms = 200;

// Want [first, last] (nothing if first > last), and give the pieces of [d_first,
// d_last] that are wanted, not had and not time-critical yet a deadline: deadline_ms at
// d_first, then step_ms apart.
static void want_and_deadlines(swarm_torrent *t, uint32_t first, uint32_t last, uint32_t d_first,
                               uint32_t d_last, int deadline_ms, int step_ms)
{
	std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> prios;
	std::vector<std::pair<uint32_t, int>> deadlines;
	{
		std::lock_guard<std::mutex> g(t->mu);
		for (uint32_t p = first; p <= last && p < num_pieces(t); p++)
			if (t->want[p]++ == 0 && !t->have[p])
				prios.emplace_back(lt::piece_index_t((int)p), want_prio(t, p));
		for (uint32_t p = d_first; p <= d_last && p < num_pieces(t); p++) {
			if (t->want[p] && !t->have[p] && !t->critical[p]) {
				t->critical[p] = true;
				deadlines.emplace_back(p,
				                       deadline_ms + (int)(p - d_first) * step_ms);
			}
		}
	}
	if (t->readding)
		return; // the re-add applies every claim
	apply_prios(t, prios);
	for (auto &d : deadlines)
		t->h.set_piece_deadline(lt::piece_index_t((int)d.first), d.second);
}

// Claim [first, last] for a reader: every piece wanted, without deadlines.
void claim(swarm_torrent *t, uint32_t first, uint32_t last)
{
	want_and_deadlines(t, first, last, 1, 0, 0, 0);
}

// Want [first, last] before the rest (up) or no longer (down): a piece's priority goes
// to the top with its first such claim and back to low with its last, while it is
// wanted at all. Claimed (want) before up, released after down.
static void want_first(swarm_torrent *t, uint32_t first, uint32_t last, bool up)
{
	std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> prios;
	{
		std::lock_guard<std::mutex> g(t->mu);
		for (uint32_t p = first; p <= last && p < num_pieces(t); p++) {
			bool flip;
			if (up)
				flip = t->head[p]++ == 0;
			else
				flip = t->head[p] && --t->head[p] == 0;
			if (flip && t->want[p] && !t->have[p])
				prios.emplace_back(lt::piece_index_t((int)p), want_prio(t, p));
		}
	}
	if (t->readding)
		return;
	apply_prios(t, prios);
}

void release(swarm_torrent *t, uint32_t first, uint32_t last)
{
	std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> prios;
	std::vector<uint32_t> reset;
	{
		std::lock_guard<std::mutex> g(t->mu);
		for (uint32_t p = first; p <= last && p < num_pieces(t); p++) {
			if (t->want[p] == 0)
				continue;
			if (--t->want[p] != 0)
				continue;
			bool was_critical = t->critical[p];
			t->critical[p] = false;
			if (!t->have[p] && !t->download_all) {
				prios.emplace_back(lt::piece_index_t((int)p), prio_off);
				if (was_critical)
					reset.push_back(p);
			}
		}
	}
	if (t->readding)
		return;
	for (uint32_t p : reset)
		t->h.reset_piece_deadline(lt::piece_index_t((int)p));
	apply_prios(t, prios);
}

// The head of a read-ahead window, in pieces of pl bytes: its first 2 MiB (one piece at
// least).
static uint32_t head_pieces(uint64_t pl)
{
	return std::max<uint32_t>(1, (uint32_t)((2048u << 10) / pl));
}

// A read-ahead window moves from [o_first, o_last] to [first, last] (either empty when
// its first > last): only the pieces that enter are claimed and only those that leave
// are released, so a streaming window (the rest of a file) costs what moved, not its
// length. The first `near` pieces of a window are its head, wanted first (want_first):
// the new head is raised before the old one is lowered, so a piece in both stays on
// top throughout.
static void move_window(swarm_torrent *t, uint32_t o_first, uint32_t o_last, uint32_t first,
                        uint32_t last, uint32_t near)
{
	bool had = o_first <= o_last, has = first <= last;
	auto heads = [&] {
		if (has)
			want_first(t, first,
			           (uint32_t)std::min<uint64_t>(last, (uint64_t)first + near - 1),
			           true);
		if (had)
			want_first(
			    t, o_first,
			    (uint32_t)std::min<uint64_t>(o_last, (uint64_t)o_first + near - 1),
			    false);
	};

	if (!has) {
		heads();
		if (had)
			release(t, o_first, o_last);
		return;
	}
	if (!had || last < o_first || first > o_last) { // disjoint: all in, all out
		claim(t, first, last);
		heads();
		if (had)
			release(t, o_first, o_last);
		return;
	}
	if (first < o_first)
		claim(t, first, o_first - 1);
	if (last > o_last)
		claim(t, o_last + 1, last);
	heads();
	if (o_first < first)
		release(t, o_first, first - 1);
	if (o_last > last)
		release(t, last + 1, o_last);
}

void finish_fetch(swarm_torrent *t, std::list<swarm_fetch_req>::iterator it, int result)
{
	swarm_fetch_req f = *it;
	t->fetches.erase(it);
	if (f.claimed) {
		want_first(t, f.first, f.last, false);
		release(t, f.first, f.last);
	}
	{
		std::lock_guard<std::mutex> g(f.r->mu);
		f.r->pending.erase(f.id);
	}
	f.cb(result, f.ctx);
}

bool range_have(swarm_torrent *t, uint32_t first, uint32_t last)
{
	for (uint32_t p = first; p <= last; p++)
		if (p >= t->have.size() || !t->have[p])
			return false;
	return true;
}

// Swarm thread: complete every fetch whose pieces are all verified now.
void check_fetches(swarm_torrent *t)
{
	for (auto it = t->fetches.begin(); it != t->fetches.end();) {
		bool done;
		{
			std::lock_guard<std::mutex> g(t->mu);
			done = range_have(t, it->first, it->last);
		}
		auto next = std::next(it);
		if (done)
			finish_fetch(t, it, 0);
		it = next;
	}
}

void fail_fetches(swarm_torrent *t, swarm_reader *only, int err)
{
	for (auto it = t->fetches.begin(); it != t->fetches.end();) {
		auto next = std::next(it);
		if (!only || it->r == only)
			finish_fetch(t, it, err);
		it = next;
	}
}

void set_metadata(swarm_torrent *t, std::shared_ptr<const lt::torrent_info> ti)
{
	// the torrent's own files (a data file remaps files(): orig_files() is the
	// layout its file indexes speak of)
	lt::file_storage const &fs = ti->orig_files();
	std::lock_guard<std::mutex> g(t->mu);
	if (t->ti)
		return;
	t->ti = ti;
	t->have.assign((size_t)ti->num_pieces(), false);
	t->have_count = 0;
	t->gone.assign((size_t)ti->num_pieces(), false);
	t->want.assign((size_t)ti->num_pieces(), 0);
	t->critical.assign((size_t)ti->num_pieces(), false);
	t->head.assign((size_t)ti->num_pieces(), 0);
	for (auto f : fs.file_range()) {
		if (fs.pad_file_at(f))
			continue;
		auto it = t->base.renamed_files.find(f);
		std::string path;
		if (!t->data_file.empty())
			path = t->data_file;
		else if (it == t->base.renamed_files.end())
			path = fs.file_path(f, t->base.save_path);
		else if (!it->second.empty() && it->second[0] == '/')
			path = it->second;
		else
			path = t->base.save_path + "/" + it->second;
		t->file_paths.push_back(path);
		t->file_bases.push_back(t->data_file.empty() ? 0 : (uint64_t)fs.file_offset(f));
	}
	t->meta_cv.notify_all();
}

// lt file index of the n-th real (non-pad) file
lt::file_index_t real_file(lt::file_storage const &fs, uint32_t n)
{
	for (auto f : fs.file_range()) {
		if (fs.pad_file_at(f))
			continue;
		if (n-- == 0)
			return f;
	}
	return lt::file_index_t(-1);
}

// ---- the DHT for torrents on the extension channel ----

// The DHT keys of t: its v1 infohash and its v2 one truncated.
std::vector<lt::sha1_hash> dht_keys(swarm_torrent *t)
{
	std::vector<lt::sha1_hash> keys;
	lt::info_hash_t ih = t->h.info_hashes();
	if (ih.has_v1())
		keys.push_back(ih.v1);
	if (ih.has_v2())
		keys.emplace_back((const char *)ih.v2.data());
	return keys;
}

// Every member of a drive seeds its drive torrent, and a seed's DHT announce asks for
// no seeds (BEP 33 noseed): members would never find each other there. A plain DHT
// lookup asks for everyone; its reply (dht_get_peers_reply_alert) is dialled.
void dht_lookup(swarm_session *s, swarm_torrent *t)
{
	for (auto const &k : dht_keys(t))
		s->ses->dht_get_peers(k);
}

// ---- dialling at once ----

// libtorrent makes new connections in its once-a-second round (session_impl::on_tick
// runs try_connect_more_peers only when a second has passed, whatever tick_interval
// says); torrent_handle::connect_peer only puts a peer in the list for that round. The
// one exception is the "connect boost" of a torrent that starts (torrent::do_resume,
// up to torrent_connect_boost peers): a torrent added paused, with every peer it is to
// try in add_torrent_params::peers, dials them all as it is resumed. A reader that waits
// for a torrent added without it loses 0 to 1 s there, twice for a file whose metadata
// is fetched first (the probe, then the torrent itself). A torrent whose files need a
// full check is checked first and dialled at the next round.
void dial_now_start(lt::torrent_handle const &h)
{
	h.resume();
}

// A reader's torrent has no connection left (swarm thread): paused (it drops nobody)
// and resumed, it dials its peer list at once. The pieces a claim made time-critical get
// their deadlines again, each removed first (setting a deadline on a piece libtorrent
// already holds as time-critical is what crashed its network thread, see urgent_ms); the
// rest of the wanted pieces keep their priority and are left to the picker, as claim()
// leaves them.
void redial_now(swarm_torrent *t)
{
	std::vector<uint32_t> deadlines;
	{
		std::lock_guard<std::mutex> g(t->mu);
		for (uint32_t p = 0; p < num_pieces(t); p++)
			if (t->want[p] && !t->have[p] && t->critical[p])
				deadlines.push_back(p);
	}
	SWARM_LOG(t->s, LOG_DEBUG,
	          "torrent %s: a reader waits and no peer is connected: re-dialling",
	          t->base.name.c_str());
	t->h.pause();
	dial_now_start(t->h);
	int ms = 0;
	for (uint32_t p : deadlines) {
		t->h.reset_piece_deadline(lt::piece_index_t((int)p));
		t->h.set_piece_deadline(lt::piece_index_t((int)p), ms);
		ms += 10;
	}
}

// ---- forgetting: remove and re-add with the reduced have bitmap ----

void start_readd(swarm_torrent *t)
{
	swarm_session *s = t->s;
	std::vector<lt::peer_info> peers;

	t->forget_scheduled = false;
	t->h.get_peer_info(peers);
	t->readd_peers.clear();
	// Incoming peers' ports are ephemeral; dialling them fails harmlessly, and
	// they dial back themselves.
	for (auto const &pi : peers)
		t->readd_peers.push_back(pi.ip);
	{
		std::lock_guard<std::mutex> g(t->mu);
		t->forget_pending.clear();
		t->readding = true;
	}
	SWARM_LOG(s, LOG_DEBUG, "re-adding torrent %s to forget pieces", t->base.name.c_str());
	s->ses->remove_torrent(t->h);
}

void finish_readd_remove(swarm_torrent *t)
{
	swarm_session *s = t->s;
	lt::add_torrent_params atp = t->base;
	std::vector<lt::download_priority_t> prios;

	{
		std::lock_guard<std::mutex> g(t->mu);
		uint32_t n = num_pieces(t);
		atp.have_pieces.resize((int)n, false);
		prios.resize(n, t->download_all ? lt::default_priority : prio_off);
		t->echo.assign(n, false);
		// The new torrent starts without them: nothing left to refuse.
		t->gone.assign(n, false);
		for (uint32_t p = 0; p < n; p++) {
			if (t->have[p]) {
				atp.have_pieces.set_bit(lt::piece_index_t((int)p));
				t->echo[p] = true;
			} else if (t->want[p]) {
				prios[p] = want_prio(t, p);
			}
		}
	}
	atp.piece_priorities = prios;
	atp.flags &= ~lt::torrent_flags::seed_mode;
	// the have bitmap spares the check: the peers are dialled as it is resumed
	atp.flags |= lt::torrent_flags::no_verify_files | lt::torrent_flags::paused;
	for (auto const &ep : t->readd_peers)
		atp.peers.push_back(ep);
	for (auto const &ep : s->peers)
		atp.peers.push_back(ep);
	s->ses->async_add_torrent(std::move(atp));
}

void finish_readd_add(swarm_torrent *t, lt::torrent_handle const &h)
{
	std::vector<uint32_t> deadlines;
	bool again;
	{
		std::lock_guard<std::mutex> g(t->mu);
		t->h = h;
		t->readding = false;
		for (uint32_t p = 0; p < num_pieces(t); p++)
			if (t->want[p] && !t->have[p]) {
				deadlines.push_back(p);
				t->critical[p] = true;
			}
		again = !t->forget_pending.empty();
	}
	int ms = 0;
	for (uint32_t p : deadlines) {
		h.set_piece_deadline(lt::piece_index_t((int)p), ms);
		ms += 10;
	}
	dial_now_start(h); // the peers that were connected, and the static ones
	if (again && !t->closing) {
		t->forget_scheduled = true;
		t->forget_at = swarm_clock::now();
		tick_watch(t);
	}
	check_fetches(t);
}

void sync_have(swarm_torrent *t, lt::torrent_handle const &h)
{
	lt::torrent_status st = h.status(lt::torrent_handle::query_pieces);
	std::lock_guard<std::mutex> g(t->mu);
	for (size_t p = 0; p < t->have.size() && (int)p < st.pieces.size(); p++)
		if (st.pieces.get_bit(lt::piece_index_t((int)p)) && !t->gone[p])
			swarm_torrent_set_have(t, p, true);
}

void bury(swarm_torrent *t)
{
	std::lock_guard<std::mutex> g(t->s->mu);
	t->s->dead.push_back(t->self);
	t->self.reset();
}

void reader_delete(swarm_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	delete r;
}

} // namespace

void swarm_torrent_set_have(swarm_torrent *t, size_t p, bool v)
{
	if (t->have[p] != v)
		t->have_count += v ? 1 : (size_t)-1;
	t->have[p] = v;
}

// Whether the tick has anything to look at in t (swarm thread).
static bool tick_wanted(swarm_torrent *t)
{
	if (t->closing)
		return false;
	if (!t->fetches.empty() || t->forget_scheduled || t->ext_channel)
		return true;
	if (t->dial_now) {
		std::lock_guard<std::mutex> g(t->mu);
		return !t->ti;
	}
	return false;
}

void swarm_torrent_delete(swarm_torrent *t)
{
	if (swarm_on_thread(t->s))
		t->s->ticking.erase(t);
	for (swarm_reader *r : t->readers)
		reader_delete(r);
	t->readers.clear();
	t->closing = true;
	bury(t);
}

void swarm_session_cancel_all(swarm_session *s)
{
	std::set<swarm_torrent *> ts;
	{
		std::lock_guard<std::mutex> g(s->mu);
		ts = s->torrents;
	}
	for (swarm_torrent *t : ts) {
		fail_fetches(t, nullptr, -ECANCELED);
		std::lock_guard<std::mutex> g(t->mu);
		t->closing = true;
		t->meta_cv.notify_all();
	}
}

void swarm_torrent_on_alert(swarm_session *s, lt::alert *a)
{
	if (auto *pf = lt::alert_cast<lt::piece_finished_alert>(a)) {
		swarm_torrent *t = alert_torrent(s, pf->handle);
		if (!t || t->closing)
			return;
		uint32_t p = (uint32_t) static_cast<int>(pf->piece_index);
		std::vector<lt::sha256_hash> blocks;
		{
			std::lock_guard<std::mutex> g(t->mu);
			auto it = t->hashed.find(static_cast<int>(p));
			if (it != t->hashed.end()) {
				blocks.swap(it->second);
				t->hashed.erase(it);
			}
		}
		if (p < t->echo.size() && t->echo[p]) {
			t->echo[p] = false;
			check_fetches(t);
			return;
		}
		{
			std::lock_guard<std::mutex> g(t->mu);
			if (p < t->have.size())
				swarm_torrent_set_have(t, p, true);
		}
		if (s->on_piece) {
			t->finished_piece = static_cast<int>(p);
			t->finished_blocks.swap(blocks);
			s->on_piece(t, t->ctx, p, s->cb_ctx);
			t->finished_piece = -1;
			t->finished_blocks.clear();
		}
		check_fetches(t);
	} else if (auto *md = lt::alert_cast<lt::metadata_received_alert>(a)) {
		swarm_torrent *t = alert_torrent(s, md->handle);
		if (!t || t->closing)
			return;
		auto ti = md->handle.torrent_file();
		if (!ti)
			return;
		t->base.ti = std::const_pointer_cast<lt::torrent_info>(ti);
		set_metadata(t, ti);
		if (!t->download_all) {
			md->handle.prioritize_pieces(std::vector<lt::download_priority_t>(
			    (size_t)ti->num_pieces(), prio_off));
			// added in upload mode (torrent_add): it may ask for pieces now
			md->handle.unset_flags(lt::torrent_flags::upload_mode);
		}
		SWARM_LOG(s, LOG_INFO, "metadata of %s received", ti->name().c_str());
		if (s->on_metadata)
			s->on_metadata(t, t->ctx, s->cb_ctx);
	} else if (auto *tc = lt::alert_cast<lt::torrent_checked_alert>(a)) {
		swarm_torrent *t = alert_torrent(s, tc->handle);
		if (!t || t->closing || t->readding)
			return;
		sync_have(t, tc->handle);
		check_fetches(t);
		// a channel torrent resumed (torrent_add) before its check ended boosted
		// nobody: its peers waited for libtorrent's round, 1 s (a remount whose
		// other adds kept the disk thread busy); nobody to drop yet
		if (t->ext_channel && tc->handle.status({}).num_connections == 0) {
			tc->handle.pause();
			dial_now_start(tc->handle);
		}
	} else if (auto *rm = lt::alert_cast<lt::torrent_removed_alert>(a)) {
		swarm_torrent *t = rm->userdata.get<swarm_torrent>();
		if (t && t->readding && !t->closing)
			finish_readd_remove(t);
	} else if (auto *ad = lt::alert_cast<lt::add_torrent_alert>(a)) {
		swarm_torrent *t = ad->params.userdata.get<swarm_torrent>();
		if (!t || !t->readding)
			return;
		if (ad->error) {
			swarm_error(s, ad->error, "re-add torrent");
			std::lock_guard<std::mutex> g(t->mu);
			t->readding = false;
			return;
		}
		if (t->closing) {
			s->ses->remove_torrent(ad->handle);
			return;
		}
		finish_readd_add(t, ad->handle);
	} else if (auto *hf = lt::alert_cast<lt::hash_failed_alert>(a)) {
		SWARM_LOG(s, LOG_WARNING, "piece %d of %s failed its hash check",
		          static_cast<int>(hf->piece_index), hf->torrent_name());
		if (swarm_torrent *t = alert_torrent(s, hf->handle)) {
			std::lock_guard<std::mutex> g(t->mu);
			t->hashed.erase(static_cast<int>(hf->piece_index));
		}
	} else if (auto *te = lt::alert_cast<lt::torrent_error_alert>(a)) {
		swarm_error(s, te->error, te->torrent_name());
	} else if (auto *fe = lt::alert_cast<lt::file_error_alert>(a)) {
		if (fe->error == boost::asio::error::operation_aborted)
			// an upload check_upload withheld (swarm_disk.cpp): the embedder
			// said why; the torrent is not put in error
			SWARM_LOG(s, LOG_DEBUG, "upload from %s withheld", fe->filename());
		else
			swarm_error(s, fe->error, fe->filename());
	} else if (lt::alert_cast<lt::dht_bootstrap_alert>(a)) {
		// The announces made before the DHT had a node went nowhere, and the next
		// round is minutes away (dht_announce_interval over the torrents): now.
		std::set<swarm_torrent *> ts;
		{
			std::lock_guard<std::mutex> g(s->mu);
			ts = s->torrents;
		}
		SWARM_LOG(s, LOG_INFO, "dht bootstrapped: announcing %zu torrents", ts.size());
		for (swarm_torrent *t : ts) {
			if (t->closing || t->readding || !t->h.is_valid())
				continue;
			t->h.force_dht_announce();
			if (t->ext_channel)
				dht_lookup(s, t);
		}
	} else if (auto *gp = lt::alert_cast<lt::dht_get_peers_reply_alert>(a)) {
		std::set<swarm_torrent *> ts;
		{
			std::lock_guard<std::mutex> g(s->mu);
			ts = s->torrents;
		}
		for (swarm_torrent *t : ts) {
			if (t->closing || t->readding || !t->ext_channel || !t->h.is_valid())
				continue;
			for (auto const &k : dht_keys(t)) {
				if (k != gp->info_hash)
					continue;
				for (auto const &ep : gp->peers())
					t->h.connect_peer(ep);
			}
		}
	}
}

void swarm_torrent_tick(swarm_session *s)
{
	auto now = swarm_clock::now();
	// a copy: finishing a fetch calls the embedder, which may remove torrents
	std::vector<swarm_torrent *> ts(s->ticking.begin(), s->ticking.end());

	for (swarm_torrent *t : ts) {
		if (!s->ticking.count(t))
			continue; // deleted by an earlier one's callback
		if (!tick_wanted(t)) {
			s->ticking.erase(t);
			continue;
		}
		for (auto it = t->fetches.begin(); it != t->fetches.end();) {
			auto next = std::next(it);
			if (now >= it->deadline) {
				finish_fetch(t, it, -ETIMEDOUT);
			} else if (!it->urgent && now >= it->urgent_at && it->claimed) {
				it->urgent = true;
				want_and_deadlines(t, 1, 0, it->first, it->last, 0, 0);
			}
			it = next;
		}
		if (t->forget_scheduled && !t->readding && now >= t->forget_at)
			start_readd(t);
		// A reader waits (for pieces, or for the metadata of a torrent added with
		// dial_now; it is looked at every 100 ms: a first dial can be dropped as
		// it starts, and the next round of libtorrent's is up to a second away),
		// or a torrent on the extension channel (whose peers are the point, not
		// its pieces) is alone: dial the static peers again and ask the trackers
		// (a seeder or member may have come back).
		bool reader = !t->fetches.empty();
		if (!reader && t->dial_now) {
			std::lock_guard<std::mutex> g(t->mu);
			reader = !t->ti;
		}
		if ((reader || t->ext_channel) && !t->readding && now >= t->next_redial) {
			lt::torrent_status st = t->h.status({});
			// a reader's torrent with a connection still being made is not alone
			bool alone = reader ? st.num_connections == 0 : st.num_peers == 0;
			t->next_redial = now + (reader ? t->redial_wait : std::chrono::seconds(2));
			if (reader)
				t->redial_wait =
				    alone ? std::min<std::chrono::milliseconds>(
				                t->redial_wait * 2, std::chrono::seconds(1))
				          : std::chrono::milliseconds(100);
			if (alone) {
				// libtorrent backs off from a peer longer after each failed
				// connect and keeps the count in its peer list, so a seeder
				// that comes back after a few failures is not dialled for a
				// long while. Nobody is connected here: start the list afresh.
				t->h.clear_peers();
				for (auto const &ep : s->peers)
					t->h.connect_peer(ep);
				for (auto const &ep : t->asked_peers)
					t->h.connect_peer(ep);
				if (reader)
					redial_now(t); // announces to the trackers too
				else if (!s->trackers.empty() || !t->base.trackers.empty())
					t->h.force_reannounce(
					    0, -1, lt::torrent_handle::ignore_min_interval);
				if (s->dht && t->ext_channel)
					dht_lookup(s, t);
			}
		}
	}
}

// ---- the C API ----

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hex(const char *hex, uint8_t *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int torrent_add(swarm_session *s, const swarm_add_params *p, swarm_torrent **out)
{
	int sources = (p->torrent != nullptr) + (p->magnet != nullptr) + (p->infohash != nullptr);
	lt::add_torrent_params atp;
	lt::error_code ec;

	if (sources != 1 || !p->save_path || !*p->save_path) {
		SWARM_LOG(s, LOG_ERR, "add torrent: need exactly one source and a save path");
		return -EINVAL;
	}
	if (p->torrent) {
		lt::load_torrent_limits limits;
		try {
			atp.ti = std::make_shared<lt::torrent_info>(
			    lt::span<char const>((const char *)p->torrent,
			                         (std::ptrdiff_t)p->torrent_len),
			    limits, lt::from_span);
		} catch (lt::system_error const &e) {
			SWARM_LOG(s, LOG_ERR, "add torrent: malformed .torrent: %s",
			          e.code().message().c_str());
			return -EINVAL;
		}
	} else if (p->magnet) {
		lt::parse_magnet_uri(p->magnet, atp, ec);
		if (ec) {
			SWARM_LOG(s, LOG_ERR, "add torrent: malformed magnet link: %s",
			          ec.message().c_str());
			return -EINVAL;
		}
	} else {
		uint8_t h[32];
		size_t n = strlen(p->infohash);
		if (n == 40 && parse_hex(p->infohash, h, 20) == 0) {
			atp.info_hashes.v1 = lt::sha1_hash((const char *)h);
		} else if (n == 64 && parse_hex(p->infohash, h, 32) == 0) {
			atp.info_hashes.v2 = lt::sha256_hash((const char *)h);
		} else {
			SWARM_LOG(s, LOG_ERR, "add torrent: malformed infohash \"%s\"",
			          p->infohash);
			return -EINVAL;
		}
	}
	if ((p->file_paths || p->have || p->data_file) && !atp.ti) {
		SWARM_LOG(s, LOG_ERR,
		          "add torrent: file paths, data file and have bitmap need a .torrent");
		return -EINVAL;
	}
	if (p->data_file && (p->file_paths || p->data_file[0] != '/' || atp.ti->v2())) {
		SWARM_LOG(s, LOG_ERR,
		          "add torrent: a data file is an absolute path, for a v1 "
		          "torrent, without file paths");
		return -EINVAL;
	}
	if (p->have && p->have_bits != (uint32_t)atp.ti->num_pieces()) {
		SWARM_LOG(s, LOG_ERR, "add torrent: have bitmap of %u pieces for %d", p->have_bits,
		          atp.ti->num_pieces());
		return -EINVAL;
	}

	auto t = std::make_shared<swarm_torrent>();
	t->s = s;
	// its first dial is on its way: a reader's re-dial looks at it a moment later
	t->next_redial = swarm_clock::now() + t->redial_wait;
	t->self = t;
	t->ctx = p->ctx;
	t->download_all = p->download_all;
	t->ext_channel = p->ext_channel;
	t->dial_now = p->dial_now;
	{
		lt::info_hash_t ihs = atp.ti ? atp.ti->info_hashes() : atp.info_hashes;
		if (ihs.has_v2())
			memcpy(t->ih, ihs.v2.data(), 32);
		else
			memcpy(t->ih, ihs.v1.data(), 20);
	}
	if (p->data_file) {
		// libtorrent's remap_files: the whole byte space in one file (v1 hashes
		// pieces of that space, so the layout on disk is free; not so for v2)
		lt::file_storage one;
		std::string path = p->data_file;
		one.set_piece_length(atp.ti->piece_length());
		one.set_num_pieces(atp.ti->num_pieces());
		one.add_file(path.substr(path.rfind('/') + 1), atp.ti->total_size());
		atp.ti->remap_files(one);
		atp.renamed_files[lt::file_index_t(0)] = path;
		t->data_file = path;
	}

	atp.save_path = p->save_path;
	atp.flags = lt::torrent_flags::update_subscribe | lt::torrent_flags::duplicate_is_error;
	if (p->seed)
		atp.flags |= lt::torrent_flags::seed_mode;
	for (auto const &tr : s->trackers)
		atp.trackers.push_back(tr);
	if (p->file_paths) {
		lt::file_storage const &fs = atp.ti->files();
		uint32_t n = 0;
		for (auto f : fs.file_range())
			if (!fs.pad_file_at(f))
				n++;
		for (uint32_t i = 0; i < n; i++)
			if (p->file_paths[i])
				atp.renamed_files[real_file(fs, i)] = p->file_paths[i];
	}
	atp.userdata = lt::client_data_t(t.get());
	std::weak_ptr<swarm_torrent> weak = t;
	atp.extensions.push_back([weak](lt::torrent_handle const &, lt::client_data_t) {
		auto tt = weak.lock();
		return tt ? swarm_plugin_new(tt.get()) : std::shared_ptr<lt::torrent_plugin>();
	});
	t->base = atp; // for a re-add: no have bitmap, no peers, no priorities

	if (atp.ti) {
		set_metadata(t.get(), atp.ti);
		std::lock_guard<std::mutex> g(t->mu);
		if (p->seed) {
			t->have.assign(t->have.size(), true);
			t->have_count = t->have.size();
		}
		if (p->have) {
			atp.have_pieces.resize(atp.ti->num_pieces(), false);
			for (uint32_t i = 0; i < p->have_bits; i++) {
				if (p->have[i / 8] & (1u << (i % 8))) {
					atp.have_pieces.set_bit(lt::piece_index_t((int)i));
					swarm_torrent_set_have(t.get(), i, true);
				}
			}
			t->echo = t->have;
			atp.flags |= lt::torrent_flags::no_verify_files;
		}
		if (!p->download_all && !p->seed)
			atp.piece_priorities.assign((size_t)atp.ti->num_pieces(), prio_off);
	}
	for (auto const &ep : s->peers)
		atp.peers.push_back(ep);
	// Without metadata every piece has the default priority until the alert above
	// sets them to 0: a torrent that is to fetch only what readers ask would download
	// whatever its peers offer meanwhile (a metadata probe, removed once it has the
	// metadata, did: its peer sending pieces while it went). Upload mode asks for no
	// piece; the metadata still comes (ut_metadata).
	if (!atp.ti && !p->download_all)
		atp.flags |= lt::torrent_flags::upload_mode;
	// A torrent on the extension channel (a drive's: its sync waits for its members)
	// starts dialling the same way, the members known already too; it waited for the
	// tick's re-dial of a lone torrent (~100 ms: what a remount took to list a file
	// published meanwhile) or libtorrent's round, and never tried the known peers
	bool dial = p->dial_now || p->ext_channel;
	if (dial) {
		std::lock_guard<std::mutex> g(s->mu);
		for (auto const &ep : s->known_peers) {
			if (std::find(atp.peers.begin(), atp.peers.end(), ep) == atp.peers.end())
				atp.peers.push_back(ep);
			t->asked_peers.push_back(ep); // the re-dial of a lone torrent tries them
		}
		atp.flags |= lt::torrent_flags::paused; // resumed below: see dial_now_start
	}

	// Alerts may come before add_torrent returns: they reach t through the
	// userdata and its handle, not through s->torrents, which t joins once t->h is
	// set (the swarm thread's tick uses t->h).
	lt::torrent_handle h = s->ses->add_torrent(std::move(atp), ec);
	if (ec) {
		t->closing = true;
		bury(t.get());
		return swarm_error(s, ec, "add torrent");
	}
	{
		std::lock_guard<std::mutex> g(t->mu);
		t->h = h;
	}
	if (dial)
		dial_now_start(h);
	if (s->dht)
		h.force_dht_announce(); // find peers now, not at the next DHT round
	{
		std::lock_guard<std::mutex> g(s->mu);
		s->torrents.insert(t.get());
	}
	if (p->dial_now || p->ext_channel) {
		swarm_torrent *raw = t.get();
		// before any removal's command, which is posted after this returns
		swarm_post(s, [raw] { tick_watch(raw); });
	}
	*out = t.get();
	return 0;
}

extern "C" int swarm_torrent_add(struct swarm_session *s, const struct swarm_add_params *p,
                                 struct swarm_torrent **out)
{
	try {
		return torrent_add(s, p, out);
	}
	SWARM_CATCH
}

extern "C" int swarm_torrent_remove(struct swarm_torrent *t, bool delete_files)
{
	if (!t)
		return 0;
	try {
		swarm_session *s = t->s;
		{
			std::lock_guard<std::mutex> g(s->mu);
			s->torrents.erase(t);
		}
		{
			std::lock_guard<std::mutex> g(t->mu);
			t->closing = true;
			t->meta_cv.notify_all();
		}
		// Wait until libtorrent has the removal queued: a caller that adds the same
		// infohash next (a metadata probe replaced by the real torrent) must not find
		// it still there. The wait is bounded: a stopping session runs no command.
		auto done = std::make_shared<std::promise<void>>();
		std::future<void> removed = done->get_future();
		swarm_post(s, [t, s, delete_files, done] {
			fail_fetches(t, nullptr, -ECANCELED);
			if (!t->readding)
				s->ses->remove_torrent(t->h, delete_files
				                                 ? lt::session::delete_files
				                                 : lt::remove_flags_t{});
			swarm_torrent_delete(t);
			done->set_value();
		});
		if (!swarm_on_thread(s))
			removed.wait_for(std::chrono::seconds(5));
		return 0;
	}
	SWARM_CATCH
}

extern "C" int swarm_torrent_wait_metadata(struct swarm_torrent *t, int timeout_ms)
{
	try {
		std::unique_lock<std::mutex> g(t->mu);
		bool ok = t->meta_cv.wait_for(g, std::chrono::milliseconds(timeout_ms),
		                              [t] { return t->ti || t->closing; });
		if (!ok)
			return -ETIMEDOUT;
		return t->ti ? 0 : -ECANCELED;
	}
	SWARM_CATCH
}

extern "C" int swarm_torrent_metainfo(struct swarm_torrent *t, struct swarm_metainfo **out)
{
	try {
		std::shared_ptr<const lt::torrent_info> ti;
		{
			std::lock_guard<std::mutex> g(t->mu);
			ti = t->ti;
		}
		if (!ti)
			return -EAGAIN;
		std::vector<char> buf;
		try {
			buf = lt::create_torrent(*ti).generate_buf();
		} catch (lt::system_error const &) {
			// a v2 torrent without its piece layers cannot be written back
		}
		return swarm_metainfo_from(*ti, buf.empty() ? nullptr : buf.data(), buf.size(),
		                           out);
	}
	SWARM_CATCH
}

extern "C" bool swarm_torrent_has_piece(struct swarm_torrent *t, uint32_t piece)
{
	std::lock_guard<std::mutex> g(t->mu);
	return piece < t->have.size() && t->have[piece];
}

extern "C" int swarm_torrent_have(struct swarm_torrent *t, uint8_t *out, size_t nbytes)
{
	std::lock_guard<std::mutex> g(t->mu);
	if (!t->ti)
		return -EAGAIN;
	size_t n = t->have.size();
	if (nbytes < (n + 7) / 8)
		return -ERANGE;
	memset(out, 0, nbytes);
	for (size_t i = 0; i < n; i++)
		if (t->have[i])
			out[i / 8] |= (uint8_t)(1u << (i % 8));
	return (int)n;
}

extern "C" int swarm_torrent_connect(struct swarm_torrent *t, const char *host, uint16_t port)
{
	try {
		lt::error_code ec;
		auto addr = lt::make_address(host, ec);
		if (ec)
			return -EINVAL;
		lt::tcp::endpoint ep(addr, port);
		swarm_post(t->s, [t, ep] {
			if (std::find(t->asked_peers.begin(), t->asked_peers.end(), ep) ==
			    t->asked_peers.end())
				t->asked_peers.push_back(ep);
			if (!t->closing && !t->readding)
				t->h.connect_peer(ep);
		});
		return 0;
	}
	SWARM_CATCH
}

extern "C" int swarm_torrent_forget(struct swarm_torrent *t, const uint32_t *pieces, size_t n)
{
	try {
		{
			std::lock_guard<std::mutex> g(t->mu);
			if (!t->ti)
				return -EAGAIN;
			for (size_t i = 0; i < n; i++)
				if (pieces[i] >= t->have.size())
					return -EINVAL;
			for (size_t i = 0; i < n; i++) {
				swarm_torrent_set_have(t, pieces[i], false);
				t->gone[pieces[i]] = true;
				t->forget_pending.push_back(pieces[i]);
			}
		}
		swarm_post(t->s, [t] {
			if (t->closing || t->forget_scheduled)
				return;
			// Batch the forgets of the next 50 ms into one re-add.
			t->forget_scheduled = true;
			t->forget_at = swarm_clock::now() + std::chrono::milliseconds(50);
			tick_watch(t);
		});
		return 0;
	}
	SWARM_CATCH
}

extern "C" int swarm_torrent_stats(struct swarm_torrent *t, struct swarm_torrent_stats *out)
{
	try {
		struct swarm_torrent_stats r {
		};
		lt::torrent_handle h;
		bool readding;
		{
			std::lock_guard<std::mutex> g(t->mu);
			h = t->h;
			readding = t->readding;
			r.num_pieces = (uint32_t)t->have.size();
			for (size_t i = 0; i < t->have.size(); i++)
				if (t->have[i])
					r.pieces_have++;
			if (t->ti) {
				uint64_t pl = (uint64_t)t->ti->piece_length();
				r.bytes_have = r.pieces_have * pl;
				if (r.num_pieces && t->have[r.num_pieces - 1])
					r.bytes_have -=
					    pl - (uint64_t)t->ti->piece_size(
					             lt::piece_index_t((int)r.num_pieces - 1));
			}
			r.ext_peers = (uint32_t)t->ext_peers.size();
			if (!t->ti)
				r.state = SWARM_STATE_METADATA;
			else if (r.pieces_have == r.num_pieces)
				r.state = SWARM_STATE_SEEDING;
			else
				r.state = SWARM_STATE_READY;
		}
		if (!readding && h.is_valid()) {
			lt::torrent_status st = h.status({});
			r.peers = (uint32_t)st.num_peers;
			r.seeds = (uint32_t)st.num_seeds;
			r.download_rate = (uint64_t)st.download_payload_rate;
			r.upload_rate = (uint64_t)st.upload_payload_rate;
			r.total_downloaded = (uint64_t)st.total_payload_download;
			r.total_uploaded = (uint64_t)st.total_payload_upload;
			r.bytes_wanted = (uint64_t)(st.total_wanted - st.total_wanted_done);
			if (st.errc)
				r.state = SWARM_STATE_ERROR;
			else if (st.state == lt::torrent_status::checking_files ||
			         st.state == lt::torrent_status::checking_resume_data)
				r.state = SWARM_STATE_CHECKING;
		}
		*out = r;
		return 0;
	}
	SWARM_CATCH
}

// ---- readers ----

extern "C" int swarm_reader_new(struct swarm_torrent *t, uint32_t file_index,
                                struct swarm_reader **out)
{
	try {
		auto r = std::make_unique<swarm_reader>();
		{
			std::lock_guard<std::mutex> g(t->mu);
			if (!t->ti)
				return -EAGAIN;
			if (file_index >= t->file_paths.size())
				return -ENOENT;
			lt::file_storage const &fs = t->ti->orig_files();
			lt::file_index_t f = real_file(fs, file_index);
			r->t = t;
			r->file = file_index;
			r->file_offset = (uint64_t)fs.file_offset(f);
			r->file_size = (uint64_t)fs.file_size(f);
			r->path = t->file_paths[file_index];
			r->path_base = t->file_bases[file_index];
		}
		swarm_reader *raw = r.release();
		swarm_post(t->s, [raw] { raw->t->readers.insert(raw); });
		*out = raw;
		return 0;
	}
	SWARM_CATCH
}

extern "C" void swarm_reader_free(struct swarm_reader *r)
{
	if (!r)
		return;
	try {
		swarm_post(r->t->s, [r] {
			swarm_torrent *t = r->t;
			if (!t->readers.count(r))
				return; // freed with its torrent already
			fail_fetches(t, r, -ECANCELED);
			if (r->claimed_first <= r->claimed_last) {
				uint64_t pl;
				{
					std::lock_guard<std::mutex> g(t->mu);
					pl = (uint64_t)t->ti->piece_length();
				}
				move_window(t, r->claimed_first, r->claimed_last, 1, 0,
				            head_pieces(pl));
			}
			t->readers.erase(r);
			reader_delete(r);
		});
	} catch (...) {
		// Out of memory while queueing: the reader stays until its torrent goes.
	}
}

static int fetch(swarm_reader *r, uint64_t offset, uint64_t len, int timeout_ms, swarm_fetch_cb cb,
                 void *ctx, uint64_t *out_id)
{
	swarm_torrent *t = r->t;
	swarm_session *s = t->s;
	swarm_reader *x = r;

	if (offset >= r->file_size || len == 0)
		return 1;
	len = std::min(len, r->file_size - offset);
	uint64_t pl, npieces;
	bool all;
	uint32_t first, last;
	{
		std::lock_guard<std::mutex> g(t->mu);
		if (t->closing)
			return -ECANCELED;
		pl = (uint64_t)t->ti->piece_length();
		npieces = t->have.size();
		first = (uint32_t)((r->file_offset + offset) / pl);
		last = (uint32_t)((r->file_offset + offset + len - 1) / pl);
		all = range_have(t, first, last);
	}
	uint32_t file_last = (uint32_t)((r->file_offset + r->file_size - 1) / pl);
	uint32_t max_window = std::max<uint32_t>(1, (uint32_t)(s->readahead_max / pl));

	// Read-ahead: doubles each time a forward reader enters a new piece, back to
	// one piece on a seek. Kept per reader, so it can grow (issue 4).
	uint32_t a_first, a_last;
	bool changed;
	uint64_t id = s->next_id++;
	{
		std::lock_guard<std::mutex> g(x->mu);
		bool forward = x->next_offset != UINT64_MAX &&
		               offset >= x->next_offset - std::min(x->next_offset, pl) &&
		               offset <= x->next_offset + pl;
		if (!forward)
			x->window = 1;
		else if (last != x->last_piece && x->last_piece != UINT32_MAX)
			x->window = std::min(max_window, x->window * 2);
		x->next_offset = offset + len;
		x->last_piece = last;
		a_first = last + 1;
		a_last = std::min<uint64_t>(std::min<uint64_t>(last + x->window, file_last),
		                            npieces - 1);
		// streaming: the whole rest of the file, when it fits the budget
		if (x->window == max_window && a_last < file_last &&
		    (uint64_t)(file_last - last) * pl <= s->stream_max)
			a_last = std::min<uint64_t>(file_last, npieces - 1);
		changed = a_first != x->ahead_first || a_last != x->ahead_last;
		x->ahead_first = a_first;
		x->ahead_last = a_last;
		if (!all)
			x->pending.insert(id);
	}
	if (changed) {
		// the window's head: its next 2 MiB (one piece at least), wanted first
		uint32_t near = head_pieces(pl);
		swarm_post(s, [r, a_first, a_last, near] {
			swarm_torrent *tt = r->t;
			if (tt->closing || !tt->readers.count(r))
				return;
			move_window(tt, r->claimed_first, r->claimed_last, a_first, a_last, near);
			r->claimed_first = a_first;
			r->claimed_last = a_last;
		});
	}
	if (all)
		return 1;
	if (timeout_ms <= 0)
		timeout_ms = s->fetch_timeout_ms;
	auto now = swarm_clock::now();
	swarm_fetch_req f{ id, r,   first, last, now + std::chrono::milliseconds(timeout_ms),
		           cb, ctx, false };
	f.urgent_at = now + std::chrono::milliseconds(urgent_ms);
	swarm_post(s, [f] {
		swarm_torrent *tt = f.r->t;
		if (tt->closing || !tt->readers.count(f.r)) {
			f.cb(-ECANCELED, f.ctx);
			return;
		}
		tt->fetches.push_back(f);
		tt->fetches.back().claimed = true;
		tick_watch(tt);
		claim(tt, f.first, f.last);
		want_first(tt, f.first, f.last, true);
		check_fetches(tt);
	});
	if (out_id)
		*out_id = id;
	return 0;
}

extern "C" int swarm_fetch(struct swarm_reader *r, uint64_t offset, uint64_t len, int timeout_ms,
                           swarm_fetch_cb cb, void *ctx, uint64_t *out_id)
{
	try {
		return fetch(r, offset, len, timeout_ms, cb, ctx, out_id);
	}
	SWARM_CATCH
}

extern "C" int swarm_fetch_cancel(struct swarm_reader *r, uint64_t id)
{
	try {
		swarm_reader *x = r;
		{
			std::lock_guard<std::mutex> g(x->mu);
			if (!x->pending.count(id))
				return -ENOENT;
		}
		swarm_post(r->t->s, [r, id] {
			swarm_torrent *t = r->t;
			for (auto it = t->fetches.begin(); it != t->fetches.end(); ++it) {
				if (it->id == id && it->r == r) {
					finish_fetch(t, it, -ECANCELED);
					return;
				}
			}
		});
		return 0;
	}
	SWARM_CATCH
}

extern "C" ssize_t swarm_reader_pread(struct swarm_reader *r, void *buf, size_t len,
                                      uint64_t offset)
{
	try {
		swarm_torrent *t = r->t;
		swarm_reader *x = r;
		if (offset >= r->file_size || len == 0)
			return 0;
		len = (size_t)std::min<uint64_t>(len, r->file_size - offset);
		{
			std::lock_guard<std::mutex> g(t->mu);
			uint64_t pl = (uint64_t)t->ti->piece_length();
			if (!range_have(t, (uint32_t)((r->file_offset + offset) / pl),
			                (uint32_t)((r->file_offset + offset + len - 1) / pl)))
				return -ENODATA;
		}
		int fd;
		{
			std::lock_guard<std::mutex> g(x->mu);
			if (x->fd < 0) {
				x->fd = open(r->path.c_str(), O_RDONLY | O_CLOEXEC);
				if (x->fd < 0) {
					int err = -errno;
					SWARM_LOG(t->s, LOG_ERR, "open %s: %s", r->path.c_str(),
					          strerror(-err));
					return err;
				}
			}
			fd = x->fd;
		}
		size_t done = 0;
		while (done < len) {
			ssize_t n = pread(fd, (char *)buf + done, len - done,
			                  (off_t)(r->path_base + offset + done));
			if (n < 0) {
				int err = -errno;
				if (err == -EINTR)
					continue;
				return err;
			}
			if (n == 0)
				return -EIO; // a verified piece shorter than its file says
			done += (size_t)n;
		}
		// A forget may have raced the copy: the data may have been a hole.
		{
			std::lock_guard<std::mutex> g(t->mu);
			uint64_t pl = (uint64_t)t->ti->piece_length();
			if (!range_have(t, (uint32_t)((r->file_offset + offset) / pl),
			                (uint32_t)((r->file_offset + offset + len - 1) / pl)))
				return -ENODATA;
		}
		return (ssize_t)done;
	}
	SWARM_CATCH
}

namespace
{
struct waiter {
	std::mutex mu; // guards done, result
	std::condition_variable cv;
	bool done = false;
	int result = 0;
};
void waiter_cb(int result, void *ctx)
{
	auto *w = (std::shared_ptr<waiter> *)ctx;
	{
		std::lock_guard<std::mutex> g((*w)->mu);
		(*w)->done = true;
		(*w)->result = result;
		(*w)->cv.notify_all();
	}
	delete w;
}
} // namespace

extern "C" ssize_t swarm_read(struct swarm_reader *r, void *buf, size_t len, uint64_t offset,
                              int timeout_ms)
{
	try {
		for (int attempt = 0; attempt < 3; attempt++) {
			auto w = std::make_shared<waiter>();
			auto *ctx = new std::shared_ptr<waiter>(w);
			int rc = swarm_fetch(r, offset, len, timeout_ms, waiter_cb, ctx, nullptr);
			if (rc != 0)
				delete ctx;
			if (rc < 0)
				return rc;
			if (rc == 0) {
				std::unique_lock<std::mutex> g(w->mu);
				w->cv.wait(g, [&] { return w->done; });
				if (w->result < 0)
					return w->result;
			}
			ssize_t n = swarm_reader_pread(r, buf, len, offset);
			if (n != -ENODATA)
				return n;
			// forgotten between the fetch and the copy: fetch again
		}
		return -EIO;
	}
	SWARM_CATCH
}

extern "C" int swarm_torrent_piece_blocks(struct swarm_torrent *t, uint32_t piece,
                                          uint8_t (*out)[SWARM_BLOCK_SHA_LEN], uint32_t max)
{
	if (!t || t->finished_piece != static_cast<int>(piece))
		return 0;
	uint32_t n = (uint32_t)std::min<size_t>(max, t->finished_blocks.size());
	for (uint32_t i = 0; i < n; i++)
		memcpy(out[i], t->finished_blocks[i].data(), SWARM_BLOCK_SHA_LEN);
	return (int)t->finished_blocks.size();
}
