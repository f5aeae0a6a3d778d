// Credit ranks as libtorrent peer classes (DESIGN §11): rank r is a class of upload
// priority 4^r, given to a peer by its address through the session's peer class
// filter. libtorrent's choker unchokes the higher priority first and its bandwidth
// limiter shares a contended limit in proportion to priority; the rest is libtorrent's.
#include "swarm_priv.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <set>
#include <syslog.h>
#include <tuple>

#include <libtorrent/peer_info.hpp>

static int rank_priority(int rank)
{
	return 1 << (2 * rank); // 1, 4, 16, 64: each rank 4 times the share of the one below
}

void swarm_class_init(swarm_session *s)
{
	for (int r = 1; r < SWARM_RANKS; r++) {
		char name[32];
		snprintf(name, sizeof name, "swarmfs credit rank %d", r);
		s->rank_class[r] = s->ses->create_peer_class(name);
		lt::peer_class_info pci = s->ses->get_peer_class(s->rank_class[r]);
		pci.upload_priority = rank_priority(r);
		s->ses->set_peer_class(s->rank_class[r], pci);
	}
	// libtorrent leaves peers on local networks out of the global class, so the
	// session's rate limits do not apply to them; an upload limit is one for every
	// peer here (members on one LAN share it too), so they get it as well.
	lt::ip_filter f = s->ses->get_peer_class_filter();
	uint32_t global = 1u << static_cast<uint32_t>(lt::session::global_peer_class_id);
	auto ranges = f.export_filter();
	for (auto const &r : std::get<0>(ranges))
		f.add_rule(r.first, r.last, r.flags | global);
	for (auto const &r : std::get<1>(ranges))
		f.add_rule(r.first, r.last, r.flags | global);
	s->base_filter = f;
	s->ses->set_peer_class_filter(f);
}

int swarm_class_rank(swarm_session *s, const lt::peer_class_set &c)
{
	int rank = 0;
	for (int i = 0; i < c.num_classes(); i++)
		for (int r = 1; r < SWARM_RANKS; r++)
			if (c.class_at(i) == s->rank_class[r] && r > rank)
				rank = r;
	return rank;
}

extern "C" int swarm_session_set_ranks(struct swarm_session *s, const struct swarm_rank *v,
                                       size_t n)
{
	try {
		lt::ip_filter f = s->base_filter;
		std::map<std::string, int> ranks;
		for (size_t i = 0; i < n; i++) {
			lt::error_code ec;
			char host[sizeof v[i].host + 1];
			snprintf(host, sizeof host, "%.*s", (int)sizeof v[i].host, v[i].host);
			lt::address a = lt::make_address(host, ec);
			if (ec || v[i].rank < 1 || v[i].rank >= SWARM_RANKS)
				return -EINVAL;
			ranks[a.to_string()] = v[i].rank;
		}
		for (auto const &kv : ranks) {
			lt::address a = lt::make_address(kv.first);
			uint32_t cls = 1u << static_cast<uint32_t>(s->rank_class[kv.second]);
			f.add_rule(a, a, s->base_filter.access(a) | cls);
		}
		std::lock_guard<std::mutex> g(s->rank_mu);
		if (ranks == s->ranks)
			return 0;
		s->ses->set_peer_class_filter(f);
		s->ranks.swap(ranks);
		SWARM_LOG(s, LOG_INFO, "credit ranks: %zu address(es) ranked", s->ranks.size());
		return 0;
	}
	SWARM_CATCH
}

extern "C" int swarm_session_peers(struct swarm_session *s, struct swarm_peer_info *out, size_t max)
{
	try {
		auto ts = swarm_live_torrents(s, true);
		std::map<std::pair<std::string, uint16_t>, swarm_peer_info> by;
		std::map<std::pair<std::string, uint16_t>, uint64_t> down, up;
		auto entry = [&by](std::string const &host, uint16_t port) -> swarm_peer_info & {
			auto key = std::make_pair(host, port);
			auto it = by.find(key);
			if (it == by.end()) {
				swarm_peer_info z;
				memset(&z, 0, sizeof z);
				snprintf(z.host, sizeof z.host, "%s", host.c_str());
				z.port = port;
				it = by.emplace(key, z).first;
			}
			return it->second;
		};
		// One call into the network thread finds the torrents with peers; only they
		// are asked for their peer list (a call each). Asking every torrent cost a
		// node seeding 1000 files 1000 round trips per status.
		std::set<lt::torrent_handle> busy;
		for (auto const &st : s->ses->get_torrent_status(
		         [](lt::torrent_status const &st) { return st.num_peers > 0; }, {}))
			busy.insert(st.handle);
		for (auto &t : ts) {
			lt::torrent_handle h;
			{
				std::lock_guard<std::mutex> g(t->mu);
				h = t->h;
			}
			std::vector<lt::peer_info> pi;
			if (h.is_valid() && busy.count(h)) {
				try {
					h.get_peer_info(pi);
				} catch (lt::system_error const &) {
					pi.clear(); // it left libtorrent since (a re-add)
				}
			}
			std::lock_guard<std::mutex> g(t->mu);
			for (auto const &p : pi) {
				auto c = t->conns.find(p.ip);
				uint16_t port = c == t->conns.end() ? 0 : c->second.dial_port;
				swarm_peer_info &e = entry(p.ip.address().to_string(), port);
				e.connections++;
				e.download_rate += (uint64_t)std::max(0, p.payload_down_speed);
				e.upload_rate += (uint64_t)std::max(0, p.payload_up_speed);
				if (c != t->conns.end() && c->second.rank > e.rank)
					e.rank = c->second.rank;
			}
			for (auto const &kv : t->recv)
				down[kv.first] += kv.second;
			for (auto const &kv : t->sent)
				up[kv.first] += kv.second;
		}
		// totals as counted per peer, for the peers connected now
		for (auto &kv : by) {
			kv.second.total_downloaded = down[kv.first];
			kv.second.total_uploaded = up[kv.first];
		}
		std::vector<swarm_peer_info> v;
		for (auto const &kv : by)
			v.push_back(kv.second);
		std::sort(v.begin(), v.end(),
		          [](swarm_peer_info const &a, swarm_peer_info const &b) {
			          uint64_t x = a.download_rate + a.upload_rate,
			                   y = b.download_rate + b.upload_rate;
			          if (x != y)
				          return x > y;
			          int c = strcmp(a.host, b.host);
			          return c ? c < 0 : a.port < b.port;
		          });
		for (size_t i = 0; i < v.size() && i < max; i++)
			out[i] = v[i];
		return (int)v.size();
	}
	SWARM_CATCH
}
