// swarm_disk.cpp — the disk I/O of a session: libtorrent's posix_disk_io, with the bytes
// of every read that is to be uploaded shown to the embedder before they go
// (swarm_config.check_upload). libtorrent hashes what it downloads, never what it reads
// back: a data file changed on disk after its piece passed would otherwise be seeded.
// The v2 block hashes a piece's check computed are kept for on_piece
// (swarm_torrent_piece_blocks). Everything else is passed through unchanged.
#include "swarm_priv.h"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <syslog.h>
#include <libtorrent/disk_buffer_holder.hpp>
#include <libtorrent/disk_interface.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/posix_disk_io.hpp>
#include <libtorrent/storage_defs.hpp>

namespace
{

struct checked_disk final : lt::disk_interface {
	// What a read needs to know about its torrent.
	struct storage {
		lt::storage_holder holder; // the inner disk I/O's
		std::string path;          // the data file of the torrent's first file
		lt::sha1_hash ih;          // libtorrent's best infohash of it (v2 truncated)
		int piece_length = 0;
		swarm_torrent *t = nullptr; // found at its first read (mu)
	};

	swarm_session *s;
	std::unique_ptr<lt::disk_interface> inner; // before st: outlives the holders
	std::mutex mu;                             // guards st and storage::t
	std::map<int, std::shared_ptr<storage>> st;

	checked_disk(swarm_session *ses, std::unique_ptr<lt::disk_interface> in)
	    : s(ses), inner(std::move(in))
	{
	}

	~checked_disk() override
	{
		st.clear(); // the holders tell inner, which still exists
	}

	// The swarm_torrent whose first file is e's data file. Torrents join s->torrents
	// only after libtorrent added them (and made their storage), so it is looked up
	// at the first read, not here in new_torrent. Removed torrents live until the
	// session ends (s->dead): the pointer stays valid. mu held.
	swarm_torrent *owner(storage &e)
	{
		if (e.t)
			return e.t;
		std::vector<swarm_torrent *> live;
		{
			std::lock_guard<std::mutex> g(s->mu);
			live.assign(s->torrents.begin(), s->torrents.end());
		}
		// Two torrents may share a data file (a v1-only companion of a hybrid one):
		// the infohash tells them apart.
		swarm_torrent *by_path = nullptr;
		for (swarm_torrent *t : live) {
			std::lock_guard<std::mutex> g(t->mu);
			if (t->file_paths.empty() || t->file_paths[0] != e.path)
				continue;
			by_path = t;
			if (t->ti && t->ti->info_hashes().get_best() == e.ih) {
				e.t = t;
				break;
			}
		}
		if (!e.t)
			e.t = by_path;
		return e.t;
	}

	bool may_upload(std::shared_ptr<storage> const &e, uint64_t offset, const char *buf,
	                size_t len)
	{
		swarm_torrent *t;
		{
			std::lock_guard<std::mutex> g(mu);
			t = owner(*e);
		}
		if (!t) {
			// a torrent of this session we cannot name: nothing to ask, so
			// nothing goes out unchecked
			SWARM_LOG(s, LOG_WARNING, "upload from %s withheld: no torrent owns it",
			          e->path.c_str());
			return false;
		}
		return s->check_upload(t, t->ctx, offset, buf, len, s->cb_ctx);
	}

	lt::storage_holder new_torrent(lt::storage_params const &p,
	                               std::shared_ptr<void> const &torrent) override
	{
		auto e = std::make_shared<storage>();
		lt::file_storage const &fs = p.mapped_files ? *p.mapped_files : p.files;

		if (fs.num_files() > 0)
			e->path = fs.file_path(lt::file_index_t(0), p.path);
		e->piece_length = p.files.piece_length();
		e->ih = p.info_hash;
		e->holder = inner->new_torrent(p, torrent);
		lt::storage_index_t idx = e->holder;
		{
			std::lock_guard<std::mutex> g(mu);
			st[static_cast<int>(idx)] = e;
		}
		return lt::storage_holder(idx, *this);
	}

	void remove_torrent(lt::storage_index_t idx) override
	{
		std::shared_ptr<storage> e;
		{
			std::lock_guard<std::mutex> g(mu);
			auto it = st.find(static_cast<int>(idx));
			if (it == st.end())
				return;
			e = it->second;
			st.erase(it);
		}
		e->holder.reset(); // inner forgets it now; a read in flight keeps only e
	}

	void
	async_read(lt::storage_index_t idx, lt::peer_request const &r,
	           std::function<void(lt::disk_buffer_holder, lt::storage_error const &)> handler,
	           lt::disk_job_flags_t flags) override
	{
		// FIXME(pread): posix_storage::readv opens the data file for every 16 KiB block
		// (fopen, fread, fclose: 16386 openat for a 256 MiB upload), so the kernel's
		// read-ahead, kept per open file, starts over at each block. A private drive's
		// ciphertext is not in the page cache after a publish (fs/pack.c writes it
		// O_DIRECT): a cold read of 512 MiB from a seeder that had just published ran at
		// 49-85 % of the public file's speed, 97-112 % with the ciphertext cached first
		// (same build, same sitting). Tried: POSIX_FADV_WILLNEED of the next 8 MiB on a
		// read that follows the one before; the reader's requests come from a spread
		// window (1011 advices for 256 MiB), and 5 alternated runs gave 54-90 % against
		// 56-92 % without: not kept. Candidates: advise per piece the reader's deadline
		// window, or the publish leaving the ciphertext in the page cache.
		std::shared_ptr<storage> e;
		if (s->check_upload) {
			std::lock_guard<std::mutex> g(mu);
			auto it = st.find(static_cast<int>(idx));
			if (it != st.end())
				e = it->second;
		}
		if (!e) {
			inner->async_read(idx, r, std::move(handler), flags);
			return;
		}
		uint64_t offset = (uint64_t) static_cast<int>(r.piece) * (uint64_t)e->piece_length +
		                  (uint64_t)r.start;
		inner->async_read(
		    idx, r,
		    [this, e, offset, len = r.length, handler = std::move(handler)](
		        lt::disk_buffer_holder buf, lt::storage_error const &err) {
			    // the buffer may be larger than the request: only r.length bytes go
			    size_t n = (size_t)std::min<std::ptrdiff_t>(len, buf.size());
			    if (!err && buf && !may_upload(e, offset, buf.data(), n)) {
				    // operation_aborted: the peer gets "dont have" and a reject,
				    // and the torrent is neither paused nor put in error
				    lt::storage_error refused;
				    refused.ec = boost::asio::error::operation_aborted;
				    refused.operation = lt::operation_t::file_read;
				    handler(lt::disk_buffer_holder(), refused);
				    return;
			    }
			    handler(std::move(buf), err);
		    },
		    flags);
	}

	// ---- the rest is posix_disk_io's ----

	bool async_write(lt::storage_index_t idx, lt::peer_request const &r, char const *buf,
	                 std::shared_ptr<lt::disk_observer> o,
	                 std::function<void(lt::storage_error const &)> handler,
	                 lt::disk_job_flags_t flags) override
	{
		return inner->async_write(idx, r, buf, std::move(o), std::move(handler), flags);
	}

	void async_hash(
	    lt::storage_index_t idx, lt::piece_index_t piece, lt::span<lt::sha256_hash> v2,
	    lt::disk_job_flags_t flags,
	    std::function<void(lt::piece_index_t, lt::sha1_hash const &, lt::storage_error const &)>
	        handler) override
	{
		std::shared_ptr<storage> e;
		if (s->on_piece && !v2.empty()) {
			std::lock_guard<std::mutex> g(mu);
			auto it = st.find(static_cast<int>(idx));
			if (it != st.end())
				e = it->second;
		}
		if (!e) {
			inner->async_hash(idx, piece, v2, flags, std::move(handler));
			return;
		}
		// The block hashes the check computed from the data file are kept for
		// on_piece (swarm_torrent_piece_blocks), so the embedder need not read the
		// piece back to hash it again. v2 is the torrent's buffer, alive until the
		// handler has run; the stash is made before, so before piece_finished_alert.
		inner->async_hash(
		    idx, piece, v2, flags,
		    [this, e, v2, handler = std::move(handler)](
		        lt::piece_index_t p, lt::sha1_hash const &h, lt::storage_error const &err) {
			    if (!err)
				    stash(e, p, v2);
			    handler(p, h, err);
		    });
	}

	void stash(std::shared_ptr<storage> const &e, lt::piece_index_t p,
	           lt::span<lt::sha256_hash> v2)
	{
		swarm_torrent *t;
		{
			std::lock_guard<std::mutex> g(mu);
			t = owner(*e);
		}
		if (!t)
			return;
		std::lock_guard<std::mutex> g(t->mu);
		t->hashed[static_cast<int>(p)].assign(v2.begin(), v2.end());
	}

	void async_hash2(lt::storage_index_t idx, lt::piece_index_t piece, int offset,
	                 lt::disk_job_flags_t flags,
	                 std::function<void(lt::piece_index_t, lt::sha256_hash const &,
	                                    lt::storage_error const &)>
	                     handler) override
	{
		inner->async_hash2(idx, piece, offset, flags, std::move(handler));
	}

	void async_move_storage(
	    lt::storage_index_t idx, std::string p, lt::move_flags_t flags,
	    std::function<void(lt::status_t, std::string const &, lt::storage_error const &)>
	        handler) override
	{
		inner->async_move_storage(idx, std::move(p), flags, std::move(handler));
	}

	void async_release_files(lt::storage_index_t idx, std::function<void()> handler) override
	{
		inner->async_release_files(idx, std::move(handler));
	}

	void async_check_files(
	    lt::storage_index_t idx, lt::add_torrent_params const *resume_data,
	    lt::aux::vector<std::string, lt::file_index_t> links,
	    std::function<void(lt::status_t, lt::storage_error const &)> handler) override
	{
		inner->async_check_files(idx, resume_data, std::move(links), std::move(handler));
	}

	void async_stop_torrent(lt::storage_index_t idx, std::function<void()> handler) override
	{
		inner->async_stop_torrent(idx, std::move(handler));
	}

	void async_rename_file(
	    lt::storage_index_t idx, lt::file_index_t index, std::string name,
	    std::function<void(std::string const &, lt::file_index_t, lt::storage_error const &)>
	        handler) override
	{
		inner->async_rename_file(idx, index, std::move(name), std::move(handler));
	}

	void async_delete_files(lt::storage_index_t idx, lt::remove_flags_t options,
	                        std::function<void(lt::storage_error const &)> handler) override
	{
		inner->async_delete_files(idx, options, std::move(handler));
	}

	void async_set_file_priority(
	    lt::storage_index_t idx,
	    lt::aux::vector<lt::download_priority_t, lt::file_index_t> prio,
	    std::function<void(lt::storage_error const &,
	                       lt::aux::vector<lt::download_priority_t, lt::file_index_t>)>
	        handler) override
	{
		inner->async_set_file_priority(idx, std::move(prio), std::move(handler));
	}

	void async_clear_piece(lt::storage_index_t idx, lt::piece_index_t index,
	                       std::function<void(lt::piece_index_t)> handler) override
	{
		inner->async_clear_piece(idx, index, std::move(handler));
	}

	void update_stats_counters(lt::counters &c) const override
	{
		inner->update_stats_counters(c);
	}

	std::vector<lt::open_file_state> get_status(lt::storage_index_t idx) const override
	{
		return inner->get_status(idx);
	}

	void abort(bool wait) override
	{
		inner->abort(wait);
	}

	void submit_jobs() override
	{
		inner->submit_jobs();
	}

	void settings_updated() override
	{
		inner->settings_updated();
	}
};

} // namespace

std::unique_ptr<lt::disk_interface> swarm_disk_new(swarm_session *s, lt::io_context &ioc,
                                                   lt::settings_interface const &sett,
                                                   lt::counters &cnt)
{
	return std::make_unique<checked_disk>(s, lt::posix_disk_io_constructor(ioc, sett, cnt));
}
