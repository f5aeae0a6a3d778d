// libtorrent plugins, run on libtorrent's network thread: TCP_NODELAY on every peer
// socket, the guard that never serves a piece swarm/ does not hold as verified, and
// the BEP 10 extension channel.
#include "swarm_priv.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <syslog.h>

#include <libtorrent/bdecode.hpp>
#include <libtorrent/bt_peer_connection.hpp>
#include <libtorrent/entry.hpp>
#include <libtorrent/extensions.hpp>
#include <libtorrent/peer_connection.hpp>
#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/peer_request.hpp>
#include <libtorrent/torrent_peer.hpp>

struct swarm_ext_peer : lt::peer_plugin, std::enable_shared_from_this<swarm_ext_peer> {
	std::shared_ptr<swarm_torrent> t;
	lt::peer_connection_handle pc;
	std::shared_ptr<swarm_spread> spread; // the torrent's (null on the extension channel)
	uint64_t id = 0;                      // non-zero once the peer speaks our extension
	int remote_msg = 0;                   // the id the peer wants for our messages
	bool left = false;
	// The peer speaks the fast extension (BEP 6): only such a peer hears a reject. One
	// that does not would wait out its request's timeout for a block it was refused
	// (libtorrent drops the reject unsent), so swarm_spread never refuses it.
	bool fast = false;
	// Where the peer can be dialled (port 0: unknown). Set once, before the peer
	// enters t->ext_peers: readers under t->mu see them complete.
	lt::address dial_addr;
	uint16_t dial_port = 0;
	// its message bytes queued for the swarm thread
	std::shared_ptr<std::atomic<size_t>> pending = std::make_shared<std::atomic<size_t>>(0);
	// bytes handed to the network thread for it and not yet in its send buffer
	std::atomic<size_t> posted{ 0 };

	swarm_ext_peer(std::shared_ptr<swarm_torrent> tt, lt::peer_connection_handle const &p)
	    : t(std::move(tt)), pc(p)
	{
	}
	~swarm_ext_peer() override
	{
		if (spread)
			swarm_spread_leave(*spread, this);
		leave();
	}

	lt::string_view type() const override
	{
		return "swarmfs";
	}

	// Nagle plus delayed ACKs cost a random 16 KiB read ~44 ms (issue 4).
	void nodelay()
	{
		auto c = pc.native_handle();
		lt::error_code ec;
		if (c)
			c->get_socket().set_option(lt::tcp::no_delay(true), ec);
	}

	void on_connected() override
	{
		nodelay();
	}

	bool on_handshake(lt::span<char const> reserved) override
	{
		fast = reserved.size() >= 8 && (reserved[7] & 0x04);
		return true;
	}

	void add_handshake(lt::entry &h) override
	{
		if (t->ext_channel)
			h["m"][t->s->ext_name] = swarm_ext_msg_id;
	}

	bool on_extension_handshake(lt::bdecode_node const &h) override
	{
		if (id)
			return true;
		// libtorrent puts its listen port in "p" only on connections it made; on
		// ours the remote port is the listening one.
		std::int64_t port = h.dict_find_int_value("p", 0);
		dial_addr = pc.remote().address();
		if (port > 0 && port <= 65535)
			dial_port = (uint16_t)port;
		else if (pc.is_outgoing())
			dial_port = pc.remote().port();
		{
			// the connection's classes were set when it started: its rank now
			auto c = pc.native_handle();
			int rank = c ? swarm_class_rank(t->s, *c) : 0;
			std::lock_guard<std::mutex> g(t->mu);
			t->conns[pc.remote()] = { dial_port, rank };
		}
		if (!t->ext_channel)
			return true;
		lt::bdecode_node m = h.dict_find_dict("m");
		if (!m)
			return true;
		std::int64_t msg = m.dict_find_int_value(t->s->ext_name, 0);
		if (msg <= 0 || msg > 255)
			return true;
		remote_msg = (int)msg;
		id = t->s->next_id++;
		{
			std::lock_guard<std::mutex> g(t->mu);
			t->ext_peers[id] = weak_from_this();
		}
		push(0, std::string());
		return true;
	}

	bool on_extended(int length, int msg, lt::span<char const> body) override
	{
		if (msg != swarm_ext_msg_id || !id)
			return false;
		if ((size_t)length > t->s->ext_max + 2) {
			pc.disconnect(lt::errors::packet_too_large, lt::operation_t::bittorrent,
			              lt::disconnect_severity_t{});
			return true;
		}
		if (!lt::bt_peer_connection_handle(pc).packet_finished())
			return true;
		push(2, std::string(body.data(), (size_t)body.size()));
		return true;
	}

	// A block of payload from this peer (before the piece's hash check: bytes it
	// sent all the same), counted by where the peer can be dialled.
	bool on_piece(lt::peer_request const &, lt::span<char const> buf) override
	{
		if (t->ext_channel || buf.empty())
			return false;
		std::string host = dial_addr.to_string();
		std::lock_guard<std::mutex> g(t->mu);
		t->recv[std::make_pair(host, dial_port)] += (uint64_t)buf.size();
		return false;
	}

	// Payload sent to this peer, counted the same way (status shows both).
	void sent_payload(int bytes) override
	{
		if (t->ext_channel || bytes <= 0)
			return;
		std::string host = dial_addr.to_string();
		std::lock_guard<std::mutex> g(t->mu);
		t->sent[std::make_pair(host, dial_port)] += (uint64_t)bytes;
	}

	void on_disconnect(lt::error_code const &) override
	{
		// Every member seeds the drive torrent, and libtorrent never dials a peer
		// it saw seeding while it seeds itself: a member that restarts would
		// only be found again if it dials first. On the extension channel the
		// pieces are not the point, so forget that this one was a seed.
		if (t->ext_channel) {
			auto c = pc.native_handle();
			if (c && c->peer_info_struct())
				c->peer_info_struct()->seed = false;
		}
		{
			std::lock_guard<std::mutex> g(t->mu);
			t->conns.erase(pc.remote());
		}
		if (spread)
			swarm_spread_leave(*spread, this);
		leave();
	}

	// Never serve a piece whose data left the disk (forgotten: libtorrent still
	// believes it has it until the re-add), nor one the embedder withholds, nor a
	// block another peer holds the first time this one asks (swarm_spread.cpp). A
	// rejected request (fast extension) lets the peer ask elsewhere at once.
	bool on_request(lt::peer_request const &r) override
	{
		size_t i = (size_t) static_cast<int>(r.piece);
		bool refuse;
		uint32_t npieces = 0, pl = 0;
		{
			std::lock_guard<std::mutex> g(t->mu);
			refuse = i < t->gone.size() && t->gone[i];
			// only a node that holds every piece (the publisher of a new file)
			if (t->ti && t->have_count == t->have.size()) {
				npieces = (uint32_t)t->ti->num_pieces();
				pl = (uint32_t)t->ti->piece_length();
			}
		}
		swarm_session *s = t->s;
		if (!refuse && s->may_serve)
			refuse = !s->may_serve(t.get(), t->ctx, (uint32_t)i, s->cb_ctx);
		// we hold every piece and another peer of ours holds this one: the first ask
		// for each block goes there
		if (!refuse && spread && npieces && fast)
			refuse = swarm_spread_refuse(*spread, this, r, npieces, pl);
		if (refuse) {
			auto c =
			    std::static_pointer_cast<lt::bt_peer_connection>(pc.native_handle());
			if (c)
				c->write_reject_request(r);
		}
		return refuse;
	}

	void leave()
	{
		if (!id || left)
			return;
		left = true;
		{
			std::lock_guard<std::mutex> g(t->mu);
			t->ext_peers.erase(id);
		}
		push(1, std::string());
	}

	void push(int kind, std::string msg)
	{
		swarm_session *s = t->s;
		size_t n = msg.size();
		bool over;
		{
			std::lock_guard<std::mutex> g(s->mu);
			over = kind == 2 && (*pending + n > SWARM_EXT_PEER_QUEUE ||
			                     s->events_bytes + n > SWARM_EXT_TOTAL_QUEUE);
			if (!over) {
				*pending += n;
				s->events_bytes += n;
				s->events.push_back({ t, id, kind, std::move(msg), pending });
			}
		}
		if (over) {
			// it sends faster than the embedder takes: cut off, not buffered
			swarm_logf(s, LOG_WARNING,
			           "extension peer %llu sends faster than it is read: disconnected",
			           (unsigned long long)id);
			pc.disconnect(lt::errors::too_many_requests_when_choked,
			              lt::operation_t::bittorrent, lt::disconnect_severity_t{});
			return;
		}
		swarm_wake(s);
	}

	// Network thread only.
	void send(std::string const &payload)
	{
		if (!remote_msg || pc.is_disconnecting())
			return;
		// a peer that asks and never reads must not grow our memory
		auto c = pc.native_handle();
		if (c && (size_t)c->send_buffer_size() + payload.size() > SWARM_EXT_SEND_QUEUE) {
			swarm_logf(
			    t->s, LOG_WARNING,
			    "extension peer %llu does not read what it is sent: disconnected",
			    (unsigned long long)id);
			pc.disconnect(lt::errors::timed_out_no_request, lt::operation_t::bittorrent,
			              lt::disconnect_severity_t{});
			return;
		}
		uint32_t n = (uint32_t)payload.size() + 2;
		char hdr[6] = { (char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n, 20,
			        (char)remote_msg };
		std::string buf(hdr, sizeof hdr);
		buf += payload;
		pc.send_buffer(buf.data(), (int)buf.size());
	}
};

struct swarm_tplugin : lt::torrent_plugin {
	std::shared_ptr<swarm_torrent> t;
	std::shared_ptr<swarm_spread> spread;

	explicit swarm_tplugin(std::shared_ptr<swarm_torrent> tt) : t(std::move(tt))
	{
	}

	std::shared_ptr<lt::peer_plugin>
	new_connection(lt::peer_connection_handle const &pc) override
	{
		if (pc.type() != lt::connection_type::bittorrent)
			return nullptr;
		auto p = std::make_shared<swarm_ext_peer>(t, pc);
		if (!t->ext_channel) {
			if (!spread)
				spread = swarm_spread_new();
			p->spread = spread;
			swarm_spread_join(*spread, p.get(), pc);
		}
		p->nodelay();
		return p;
	}
};

std::shared_ptr<lt::torrent_plugin> swarm_plugin_new(swarm_torrent *t)
{
	return std::make_shared<swarm_tplugin>(t->self);
}

// Run fn on libtorrent's network thread with p, if p is still connected then.
static int swarm_ext_post(swarm_torrent *t, std::shared_ptr<swarm_ext_peer> const &p,
                          std::function<void(swarm_ext_peer &)> fn)
{
	lt::torrent_handle h;
	{
		std::lock_guard<std::mutex> g(t->mu);
		h = t->h;
	}
	if (!h.is_valid())
		return -ENOTCONN;
	std::weak_ptr<swarm_ext_peer> w = p;
	// libtorrent has no public "post to the network thread", but it runs an
	// extension factory there; one that returns no plugin adds nothing.
	try {
		h.add_extension([w, fn](lt::torrent_handle const &, lt::client_data_t) {
			if (auto sp = w.lock())
				fn(*sp);
			return std::shared_ptr<lt::torrent_plugin>();
		});
	} catch (lt::system_error const &) {
		return -ENOTCONN; // the torrent left libtorrent since (re-add, removal)
	}
	return 0;
}

int swarm_ext_queue(swarm_torrent *t, std::shared_ptr<swarm_ext_peer> const &p, const void *msg,
                    size_t len)
{
	// what waits for the network thread counts against the peer's send cap too: a
	// peer that never reads must not grow our memory in that queue either
	if (p->posted + len > SWARM_EXT_SEND_QUEUE)
		return -ENOBUFS;
	p->posted += len;
	auto payload = std::make_shared<std::string>((const char *)msg, len);
	int rc = swarm_ext_post(t, p, [payload](swarm_ext_peer &sp) {
		sp.posted -= payload->size();
		sp.send(*payload);
	});
	if (rc < 0)
		p->posted -= len;
	return rc;
}

// The extension peer of t with that id, if it is connected now.
static std::shared_ptr<swarm_ext_peer> swarm_ext_find(swarm_torrent *t, uint64_t peer)
{
	std::lock_guard<std::mutex> g(t->mu);
	auto it = t->ext_peers.find(peer);
	return it == t->ext_peers.end() ? nullptr : it->second.lock();
}

void swarm_ext_deliver(swarm_session *s)
{
	for (;;) {
		swarm_session::event e;
		{
			std::lock_guard<std::mutex> g(s->mu);
			if (s->events.empty())
				return;
			e = std::move(s->events.front());
			s->events.pop_front();
			s->events_bytes -= e.msg.size();
			if (e.pending)
				*e.pending -= e.msg.size();
		}
		if (e.t->closing)
			continue;
		if (e.kind == 2) {
			if (s->on_ext_message)
				s->on_ext_message(e.t.get(), e.t->ctx, e.peer, e.msg.data(),
				                  e.msg.size(), s->cb_ctx);
		} else if (s->on_ext_peer) {
			s->on_ext_peer(e.t.get(), e.t->ctx, e.peer, e.kind == 0, s->cb_ctx);
		}
	}
}

extern "C" int swarm_ext_send(struct swarm_torrent *t, uint64_t peer, const void *msg, size_t len)
{
	try {
		if (len > t->s->ext_max)
			return -EMSGSIZE;
		std::shared_ptr<swarm_ext_peer> p = swarm_ext_find(t, peer);
		if (!p)
			return -ENOTCONN;
		return swarm_ext_queue(t, p, msg, len);
	}
	SWARM_CATCH
}

extern "C" int swarm_ext_broadcast(struct swarm_torrent *t, const void *msg, size_t len)
{
	try {
		if (len > t->s->ext_max)
			return -EMSGSIZE;
		std::vector<std::shared_ptr<swarm_ext_peer>> ps;
		{
			std::lock_guard<std::mutex> g(t->mu);
			for (auto &kv : t->ext_peers)
				if (auto p = kv.second.lock())
					ps.push_back(p);
		}
		int n = 0;
		for (auto &p : ps)
			if (swarm_ext_queue(t, p, msg, len) == 0)
				n++;
		return n;
	}
	SWARM_CATCH
}

extern "C" int swarm_ext_peer_addr(struct swarm_torrent *t, uint64_t peer, char *host,
                                   size_t host_len, uint16_t *out_port)
{
	try {
		std::shared_ptr<swarm_ext_peer> p = swarm_ext_find(t, peer);
		if (!p)
			return -ENOTCONN;
		lt::address a = p->dial_addr;
		// A scope ("%eth0") would not fit the 46 bytes the header promises.
		if (a.is_v6()) {
			lt::address_v6 v6 = a.to_v6();
			v6.scope_id(0);
			a = v6;
		}
		std::string lit = a.to_string();
		if (lit.size() >= host_len)
			return -ERANGE;
		memcpy(host, lit.c_str(), lit.size() + 1);
		*out_port = p->dial_port;
		return 0;
	}
	SWARM_CATCH
}

extern "C" int swarm_ext_drop(struct swarm_torrent *t, uint64_t peer)
{
	try {
		std::shared_ptr<swarm_ext_peer> p = swarm_ext_find(t, peer);
		if (!p)
			return -ENOTCONN;
		// Normal severity, as for an oversized message: libtorrent may dial it
		// again later, and the embedder judges it again then.
		return swarm_ext_post(t, p, [](swarm_ext_peer &sp) {
			sp.pc.disconnect(lt::errors::invalid_extended, lt::operation_t::bittorrent,
			                 lt::disconnect_severity_t{});
		});
	}
	SWARM_CATCH
}

std::vector<std::shared_ptr<swarm_torrent>> swarm_live_torrents(swarm_session *s, bool ext)
{
	std::vector<std::shared_ptr<swarm_torrent>> ts;
	std::lock_guard<std::mutex> g(s->mu);
	for (swarm_torrent *t : s->torrents)
		if ((ext || !t->ext_channel) && t->self)
			ts.push_back(t->self);
	return ts;
}

extern "C" int swarm_session_peer_bytes(struct swarm_session *s, struct swarm_peer_bytes *out,
                                        size_t max)
{
	try {
		auto ts = swarm_live_torrents(s, false);
		size_t n = 0;
		for (auto &t : ts) {
			std::lock_guard<std::mutex> g(t->mu);
			for (auto const &kv : t->recv) {
				if (n < max) {
					swarm_peer_bytes &o = out[n];
					memset(&o, 0, sizeof o);
					memcpy(o.ih, t->ih, 32);
					snprintf(o.host, sizeof o.host, "%s",
					         kv.first.first.c_str());
					o.port = kv.first.second;
					o.downloaded = kv.second;
					auto it = t->sent.find(kv.first);
					o.uploaded = it == t->sent.end() ? 0 : it->second;
				}
				n++;
			}
		}
		return (int)n;
	}
	SWARM_CATCH
}
