// Spreading a new file (issue 18's fan-out): a node that holds every piece of a torrent
// (its publisher, say), asked for a block of a piece that another of its peers holds
// while still downloading, refuses it the first time that requester asks for that block
// (a fast-extension reject), so the requester picks the block again and may ask the
// holder; a second ask for the same block is served.
//
// Why: when several members read one new file at once, its publisher is asked for
// each piece by most of them; readers that have a piece verified and announced trade
// it among themselves only if the publisher does not answer first. A refusal costs the
// requester one round trip per block of this node at most, never a piece it cannot get
// elsewhere (the second ask is served); a lone reader is never refused (no other
// holder), nor a reader of two seeds (a seed holding it does not count).
//
// Network thread only (the peer plugins' hooks); no locks. Owned by the torrent's plugin.
#include "swarm_priv.h"

#include <algorithm>
#include <new>

#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/peer_request.hpp>

struct swarm_spread {
	struct peer {
		lt::peer_connection_handle pc;
		std::vector<bool> refused; // per block of the torrent: refused it once already
	};
	std::map<const void *, peer> peers;
};

std::shared_ptr<swarm_spread> swarm_spread_new()
{
	return std::make_shared<swarm_spread>();
}

void swarm_spread_join(swarm_spread &sp, const void *key, lt::peer_connection_handle const &pc)
{
	sp.peers.emplace(key, swarm_spread::peer{ pc, {} });
}

void swarm_spread_leave(swarm_spread &sp, const void *key)
{
	sp.peers.erase(key);
}

bool swarm_spread_refuse(swarm_spread &sp, const void *key, lt::peer_request const &r,
                         uint32_t num_pieces, uint32_t piece_length)
{
	auto me = sp.peers.find(key);
	uint32_t piece = (uint32_t) static_cast<int>(r.piece);
	if (me == sp.peers.end() || piece >= num_pieces || r.start < 0 ||
	    piece_length < SWARM_SPREAD_BLOCK)
		return false;
	uint32_t per_piece = piece_length / SWARM_SPREAD_BLOCK;
	size_t block = (size_t)piece * per_piece + (uint32_t)r.start / SWARM_SPREAD_BLOCK;
	std::vector<bool> &refused = me->second.refused;
	if (block >= (size_t)num_pieces * per_piece || (!refused.empty() && refused[block]))
		return false;
	// a holder still downloading: another seed would only send the requester back
	bool held = std::any_of(sp.peers.begin(), sp.peers.end(), [&](auto const &kv) {
		lt::peer_connection_handle const &pc = kv.second.pc;
		return kv.first != key && pc.native_handle() && !pc.is_disconnecting() &&
		       !pc.is_seed() && pc.has_piece(r.piece);
	});
	if (!held)
		return false;
	if (refused.empty()) // a bit per block, for the peers ever refused anything
		refused.assign((size_t)num_pieces * per_piece, false);
	refused[block] = true;
	return true;
}
