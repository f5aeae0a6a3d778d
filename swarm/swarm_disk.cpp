// swarm_disk.cpp — the disk I/O of a session: libtorrent's posix_disk_io, with the bytes
// of every read that is to be uploaded shown to the embedder before they go
// (swarm_config.check_upload). libtorrent hashes what it downloads, never what it reads
// back: a data file changed on disk after its piece passed would otherwise be seeded.
// The v2 block hashes a piece's check computed are kept for on_piece
// (swarm_torrent_piece_blocks).
//
// A torrent of one file (every swarmfs file's) is written, hashed and read here
// through a descriptor kept open (direct_fd), where posix_storage opens the file with
// fopen for every 16 KiB block it writes or reads, and again for every block it reads
// back to hash: 4 system calls and a FILE a block, about a tenth of a mount's CPU on a
// cold read (issue 13). The rest, and every torrent of several files, is
// posix_disk_io's, unchanged, and runs on libtorrent's network thread, as posix_disk_io
// does. The direct path's piece hashes do not: they run on hashing threads
// (settings_pack::hashing_threads, as mmap_disk_io's), each from a duplicate of the
// kept descriptor, so that the network thread goes on receiving and requesting while a
// piece is read back and hashed (SHA-1 and SHA-256 of a hybrid torrent's piece: about
// a third of a mount's CPU on a cold read, all of it on the network thread before).
#include "swarm_priv.h"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <condition_variable>
#include <deque>
#include <thread>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <vector>
#include <libtorrent/error_code.hpp>
#include <libtorrent/hasher.hpp>
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
		// the direct path (one file, at path, downloaded): the network thread's alone
		bool direct = false;
		int64_t size = 0; // the file's length
		int fd = -1;      // path, open read-write; -1 until the first write or hash
		off_t ra_from = 0, ra_to = 0; // the range read_ahead last asked of the kernel

		~storage()
		{
			if (fd >= 0)
				::close(fd);
		}
	};

	// A piece of the direct path to hash: the storage and a duplicate of its
	// descriptor (the network thread may close or reopen its own meanwhile).
	struct hash_job {
		std::shared_ptr<storage> e;
		int fd;
		lt::piece_index_t piece;
		lt::span<lt::sha256_hash> v2; // the torrent's, alive until the handler ran
		lt::disk_job_flags_t flags;
		bool keep;
		std::function<void(lt::piece_index_t, lt::sha1_hash const &,
		                   lt::storage_error const &)>
		    handler;
	};

	swarm_session *s;
	lt::io_context &ioc; // where handlers run, as posix_disk_io posts them
	std::unique_ptr<lt::disk_interface> inner; // before st: outlives the holders
	std::mutex mu;                             // guards st and storage::t
	std::map<int, std::shared_ptr<storage>> st;
	// the hashing threads and their queue (hmu guards jobs and stopping)
	std::mutex hmu;
	std::condition_variable hcv;
	std::deque<hash_job> jobs;
	bool stopping = false;
	std::vector<std::thread> hashers;

	checked_disk(swarm_session *ses, lt::io_context &io, std::unique_ptr<lt::disk_interface> in,
	             int threads)
	    : s(ses), ioc(io), inner(std::move(in))
	{
		for (int i = 0; i < std::max(threads, 1); i++)
			hashers.emplace_back([this] { hasher_main(); });
	}

	// Each hashing thread: a job at a time, its handler posted to the network thread.
	void hasher_main()
	{
		for (;;) {
			std::unique_lock<std::mutex> g(hmu);
			hcv.wait(g, [this] { return stopping || !jobs.empty(); });
			if (jobs.empty())
				return; // stopping, and every job done
			hash_job j = std::move(jobs.front());
			jobs.pop_front();
			g.unlock();

			run_hash(j);
		}
	}

	// A queued piece's hash, its handler posted to the network thread.
	void run_hash(hash_job &j)
	{
		// the file unlinked or renamed over since the job was queued (the cache drops or
		// adopts whole objects): the one at the path is hashed, as direct_fd would have it
		struct stat sb;
		if (::fstat(j.fd, &sb) == 0 && sb.st_nlink == 0) {
			::close(j.fd);
			j.fd = ::open(j.e->path.c_str(), O_RDONLY | O_CLOEXEC);
		}
		lt::sha1_hash h;
		lt::storage_error err = j.fd < 0
		                            ? direct_error(errno, lt::operation_t::file_open)
		                            : direct_hash(*j.e, j.fd, j.piece, j.v2, j.flags, h);

		if (j.fd >= 0)
			::close(j.fd);
		if (!err && j.keep)
			stash(j.e, j.piece, j.v2);
		boost::asio::post(ioc, [piece = j.piece, h, err, hd = std::move(j.handler)] {
			hd(piece, h, err);
		});
	}

	// No job is queued after this; those queued are hashed (their handlers posted),
	// then the threads end. Idempotent.
	void hashers_stop()
	{
		{
			std::lock_guard<std::mutex> g(hmu);
			stopping = true;
		}
		hcv.notify_all();
		for (std::thread &t : hashers)
			if (t.joinable())
				t.join();
		hashers.clear();
	}

	std::shared_ptr<storage> find(lt::storage_index_t idx)
	{
		std::lock_guard<std::mutex> g(mu);
		auto it = st.find(static_cast<int>(idx));
		return it == st.end() ? nullptr : it->second;
	}

	// ---- the direct path ----

	// Close idx's descriptor (posix_disk_io is to touch its files); for good when
	// the file's name changes or it is not downloaded any more.
	void forget(lt::storage_index_t idx, bool for_good)
	{
		std::shared_ptr<storage> e = find(idx);

		if (!e)
			return;
		direct_close(*e);
		if (for_good)
			e->direct = false;
	}

	// The data file's descriptor, or -1: the caller goes through posix_disk_io, which
	// makes the file (and its directory) when it is not there yet. A descriptor whose
	// file was unlinked or renamed over since (the cache drops or adopts whole
	// objects) is reopened: what is written must land in the file at the path, as
	// with posix_storage's open per block.
	int direct_fd(storage &e)
	{
		struct stat sb;

		if (!e.direct)
			return -1;
		if (e.fd >= 0 && (::fstat(e.fd, &sb) < 0 || sb.st_nlink == 0)) {
			::close(e.fd);
			e.fd = -1;
		}
		if (e.fd < 0) {
			e.fd = ::open(e.path.c_str(), O_RDWR | O_CLOEXEC);
			e.ra_from = e.ra_to = 0; // another file: nothing asked of it yet
		}
		return e.fd;
	}

	// Before posix_disk_io touches the files itself (check, move, rename, release,
	// delete): the descriptor goes, and with it any view of an old path.
	static void direct_close(storage &e)
	{
		if (e.fd >= 0)
			::close(e.fd);
		e.fd = -1;
	}

	static lt::storage_error direct_error(int err, lt::operation_t op)
	{
		lt::storage_error ec;

		if (err)
			ec.ec.assign(err, boost::system::generic_category());
		else
			ec.ec = lt::errors::file_too_short;
		ec.file(lt::file_index_t(0));
		ec.operation = op;
		return ec;
	}

	// Up to len bytes at at, fewer only at the end of the file; -errno on an error.
	static int pread_full(int fd, char *b, int len, off_t at)
	{
		int got = 0;

		while (got < len) {
			ssize_t n = ::pread(fd, b + got, (size_t)(len - got), at + got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				break;
			got += (int)n;
		}
		return got;
	}

	// The piece's length in the one file (v1 and v2 agree: no pad files).
	static int piece_size(storage const &e, lt::piece_index_t piece)
	{
		int64_t start = (int64_t) static_cast<int>(piece) * e.piece_length;

		return (int)std::max<int64_t>(0, std::min<int64_t>(e.piece_length, e.size - start));
	}

	~checked_disk() override
	{
		hashers_stop();
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
		// one file, no pad file, and downloaded (a file not wanted goes to the part
		// file, posix_storage's): the direct path
		e->direct = fs.num_files() == 1 && !fs.pad_file_at(lt::file_index_t(0)) &&
		            (p.priorities.empty() ||
		             p.priorities[lt::file_index_t(0)] != lt::dont_download);
		if (e->direct)
			e->size = fs.file_size(lt::file_index_t(0));
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

	// The buffers of direct reads: plain heap, so they may outlive this object in a
	// peer's send queue at shutdown.
	struct heap_buffers final : lt::buffer_allocator_interface {
		void free_disk_buffer(char *b) override
		{
			std::free(b);
		}
	};

	// An upload reads its file forward a block at a time, on the network thread. What
	// is not in the page cache (a ciphertext written around it, any file after a
	// reboot) would stop that thread for a disk read every time the kernel's own
	// read-ahead (128 KiB at first) runs out. So the next RA_SPAN past a read is asked
	// of the kernel (POSIX_FADV_WILLNEED starts the reads and returns; pages already
	// cached cost a lookup), again each time the reads come within half of it of the
	// end of what was asked. A read far from that range starts a new one there.
	static constexpr off_t RA_SPAN = 8 << 20;

	static void read_ahead(storage &e, off_t at)
	{
		off_t from = at, to = std::min<off_t>(at + RA_SPAN, e.size);

		if (at + RA_SPAN >= e.ra_from && at <= e.ra_to) { // near the range asked
			if (at + RA_SPAN / 2 <= e.ra_to)
				return;
			from = e.ra_to;
			e.ra_from = std::min(e.ra_from, at);
			e.ra_to = std::max(e.ra_to, to);
		} else {
			e.ra_from = at;
			e.ra_to = to;
		}
		if (to > from)
			(void)::posix_fadvise(e.fd, from, to - from, POSIX_FADV_WILLNEED);
	}

	// posix_disk_io's read of one request, through the kept descriptor: a buffer of
	// a block with r.length bytes in it; nothing there at all is file_too_short.
	lt::storage_error direct_read(storage &e, lt::peer_request const &r,
	                              lt::disk_buffer_holder &out)
	{
		static heap_buffers heap;
		char *b = static_cast<char *>(std::malloc((size_t)std::max(r.length, 1)));
		off_t at = (off_t) static_cast<int>(r.piece) * e.piece_length + r.start;
		int got = 0;

		if (!b) {
			lt::storage_error err;
			err.ec = lt::errors::no_memory;
			err.operation = lt::operation_t::alloc_cache_piece;
			return err;
		}
		out = lt::disk_buffer_holder(heap, b, r.length);
		read_ahead(e, at);
		if ((got = pread_full(e.fd, b, r.length, at)) < 0)
			return direct_error(-got, lt::operation_t::file_read);
		return got > 0 || r.length == 0 ? lt::storage_error()
		                                : direct_error(0, lt::operation_t::file_read);
	}

	void
	async_read(lt::storage_index_t idx, lt::peer_request const &r,
	           std::function<void(lt::disk_buffer_holder, lt::storage_error const &)> handler,
	           lt::disk_job_flags_t flags) override
	{
		std::shared_ptr<storage> e = find(idx);
		bool direct = e && direct_fd(*e) >= 0;

		if (!direct && (!e || !s->check_upload)) {
			inner->async_read(idx, r, std::move(handler), flags);
			return;
		}
		uint64_t offset = (uint64_t) static_cast<int>(r.piece) * (uint64_t)e->piece_length +
		                  (uint64_t)r.start;
		auto done = [this, e, offset, len = r.length, handler = std::move(handler)](
		                lt::disk_buffer_holder buf, lt::storage_error const &err) {
			// the buffer may be larger than the request: only r.length bytes go
			size_t n = (size_t)std::min<std::ptrdiff_t>(len, buf.size());
			if (s->check_upload && !err && buf &&
			    !may_upload(e, offset, buf.data(), n)) {
				// operation_aborted: the peer gets "dont have" and a reject, and
				// the torrent is neither paused nor put in error
				lt::storage_error refused;
				refused.ec = boost::asio::error::operation_aborted;
				refused.operation = lt::operation_t::file_read;
				handler(lt::disk_buffer_holder(), refused);
				return;
			}
			handler(std::move(buf), err);
		};
		if (!direct) {
			inner->async_read(idx, r, std::move(done), flags);
			return;
		}
		lt::disk_buffer_holder buf;
		lt::storage_error err = direct_read(*e, r, buf);
		boost::asio::post(ioc,
		                  [buf = std::move(buf), err, done = std::move(done)]() mutable {
			                  done(std::move(buf), err);
		                  });
	}

	// ---- the rest is posix_disk_io's ----

	bool async_write(lt::storage_index_t idx, lt::peer_request const &r, char const *buf,
	                 std::shared_ptr<lt::disk_observer> o,
	                 std::function<void(lt::storage_error const &)> handler,
	                 lt::disk_job_flags_t flags) override
	{
		std::shared_ptr<storage> e = find(idx);
		int fd = e ? direct_fd(*e) : -1;

		if (fd < 0)
			return inner->async_write(idx, r, buf, std::move(o), std::move(handler),
			                          flags);
		lt::storage_error err;
		off_t at = (off_t) static_cast<int>(r.piece) * e->piece_length + r.start;
		for (int done = 0; done < r.length;) {
			ssize_t n = ::pwrite(fd, buf + done, (size_t)(r.length - done), at + done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = direct_error(n < 0 ? errno : ENOSPC,
				                   lt::operation_t::file_write);
				break;
			}
			done += (int)n;
		}
		boost::asio::post(ioc, [err, h = std::move(handler)] { h(err); });
		return false;
	}

	void async_hash(
	    lt::storage_index_t idx, lt::piece_index_t piece, lt::span<lt::sha256_hash> v2,
	    lt::disk_job_flags_t flags,
	    std::function<void(lt::piece_index_t, lt::sha1_hash const &, lt::storage_error const &)>
	        handler) override
	{
		std::shared_ptr<storage> e = find(idx);
		// the block hashes are kept for on_piece only where there are v2 ones
		bool keep = e && s->on_piece && !v2.empty();

		int fd = e ? direct_fd(*e) : -1;

		if (fd >= 0 && (fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
			hash_job j{ e, fd, piece, v2, flags, keep, std::move(handler) };
			std::unique_lock<std::mutex> g(hmu);

			if (!stopping) {
				jobs.push_back(std::move(j));
				g.unlock();
				hcv.notify_one();
				return;
			}
			g.unlock();
			run_hash(j); // shutting down: hashed here, as before
			return;
		}
		if (!keep) {
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

	// posix_disk_io's hash of a piece (SHA-1 of the piece when flags say v1, SHA-256 of
	// each 16 KiB block into v2), from one read of the piece through fd (the kept
	// descriptor or a duplicate of it). A file shorter than the piece hashes what is
	// there, and nothing there at all is file_too_short, as posix_storage's block reads
	// make it. Any thread: e's fields read here do not change after new_torrent.
	static lt::storage_error direct_hash(storage const &e, int fd, lt::piece_index_t piece,
	                                     lt::span<lt::sha256_hash> v2,
	                                     lt::disk_job_flags_t flags, lt::sha1_hash &out)
	{
		static thread_local std::vector<char> buf;
		int const block = lt::default_block_size;
		int const len = piece_size(e, piece);
		int const blocks = (len + block - 1) / block;
		bool const v1 = bool(flags & lt::disk_interface::v1_hash);
		off_t at = (off_t) static_cast<int>(piece) * e.piece_length;
		int got = 0;

		out = lt::sha1_hash();
		if ((int)buf.size() < len)
			buf.resize((size_t)len);
		if ((got = pread_full(fd, buf.data(), len, at)) < 0)
			return direct_error(-got, lt::operation_t::file_read);
		// posix_storage reads block by block: a block with nothing to read fails
		if (blocks > 0 && got <= (blocks - 1) * block)
			return direct_error(0, lt::operation_t::file_read);
		if (v1)
			out = lt::hasher(buf.data(), got).final();
		for (int i = 0; i < blocks && i < (int)v2.size() && i * block < got; i++)
			v2[i] =
			    lt::hasher256(buf.data() + i * block, std::min(block, got - i * block))
			        .final();
		return lt::storage_error();
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
		forget(idx, true); // the file moves: posix_disk_io's from now on
		inner->async_move_storage(idx, std::move(p), flags, std::move(handler));
	}

	void async_release_files(lt::storage_index_t idx, std::function<void()> handler) override
	{
		forget(idx, false);
		inner->async_release_files(idx, std::move(handler));
	}

	void async_check_files(
	    lt::storage_index_t idx, lt::add_torrent_params const *resume_data,
	    lt::aux::vector<std::string, lt::file_index_t> links,
	    std::function<void(lt::status_t, lt::storage_error const &)> handler) override
	{
		// posix_storage's sizes of its files are stale after direct writes: a
		// release clears them (it runs at once, on this thread)
		if (std::shared_ptr<storage> e = find(idx); e && e->direct)
			inner->async_release_files(idx, [] {});
		forget(idx, false);
		inner->async_check_files(idx, resume_data, std::move(links), std::move(handler));
	}

	void async_stop_torrent(lt::storage_index_t idx, std::function<void()> handler) override
	{
		forget(idx, false);
		inner->async_stop_torrent(idx, std::move(handler));
	}

	void async_rename_file(
	    lt::storage_index_t idx, lt::file_index_t index, std::string name,
	    std::function<void(std::string const &, lt::file_index_t, lt::storage_error const &)>
	        handler) override
	{
		forget(idx, true); // the file is renamed: posix_disk_io's from now on
		inner->async_rename_file(idx, index, std::move(name), std::move(handler));
	}

	void async_delete_files(lt::storage_index_t idx, lt::remove_flags_t options,
	                        std::function<void(lt::storage_error const &)> handler) override
	{
		forget(idx, false);
		inner->async_delete_files(idx, options, std::move(handler));
	}

	void async_set_file_priority(
	    lt::storage_index_t idx,
	    lt::aux::vector<lt::download_priority_t, lt::file_index_t> prio,
	    std::function<void(lt::storage_error const &,
	                       lt::aux::vector<lt::download_priority_t, lt::file_index_t>)>
	        handler) override
	{
		// a file not wanted goes to posix_storage's part file: so does the torrent
		if (!prio.empty() && prio[lt::file_index_t(0)] == lt::dont_download)
			forget(idx, true);
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
		hashers_stop();
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
	return std::make_unique<checked_disk>(s, ioc, lt::posix_disk_io_constructor(ioc, sett, cnt),
	                                      sett.get_int(lt::settings_pack::hashing_threads));
}
