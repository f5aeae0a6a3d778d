// Making and parsing .torrent files: libtorrent's create_torrent and torrent_info,
// copied into plain C structs.
#include "swarm_priv.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/stat.h>
#include <unistd.h>

#include <libtorrent/bdecode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/settings_pack.hpp>

extern "C" void swarm_hex(const uint8_t *hash, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 15];
	}
	out[2 * len] = '\0';
}

extern "C" void swarm_metainfo_free(struct swarm_metainfo *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->num_files; i++)
		free(m->files[i].path);
	free(m->files);
	free(m->name);
	free(m->torrent);
	free(m);
}

// Copy what the C side needs out of ti; torrent (len bytes) is copied if not NULL.
int swarm_metainfo_from(const lt::torrent_info &ti, const char *torrent, size_t len,
                        swarm_metainfo **out)
{
	auto m = (swarm_metainfo *)calloc(1, sizeof(swarm_metainfo));
	if (!m)
		return -ENOMEM;
	// the torrent's own layout, also when a data file remapped files()
	lt::file_storage const &fs = ti.orig_files();
	lt::info_hash_t const ih = ti.info_hashes();

	m->name = strdup(ti.name().c_str());
	if (torrent) {
		m->torrent = (uint8_t *)malloc(len ? len : 1);
		if (m->torrent) {
			memcpy(m->torrent, torrent, len);
			m->torrent_len = len;
		}
	}
	m->has_v1 = ih.has_v1();
	m->has_v2 = ih.has_v2();
	if (m->has_v1)
		memcpy(m->v1, ih.v1.data(), 20);
	if (m->has_v2)
		memcpy(m->v2, ih.v2.data(), 32);
	m->piece_length = (uint32_t)ti.piece_length();
	m->num_pieces = (uint32_t)ti.num_pieces();
	m->total_size = (uint64_t)ti.total_size();
	uint32_t real = 0;
	for (auto f : fs.file_range())
		if (!fs.pad_file_at(f))
			real++;
	m->files = (swarm_file_info *)calloc(real ? real : 1, sizeof(swarm_file_info));
	if (!m->name || (torrent && !m->torrent) || !m->files) {
		swarm_metainfo_free(m);
		return -ENOMEM;
	}
	for (auto f : fs.file_range()) {
		if (fs.pad_file_at(f))
			continue;
		swarm_file_info *fi = &m->files[m->num_files++];
		fi->path = strdup(fs.file_path(f).c_str());
		if (!fi->path) {
			swarm_metainfo_free(m);
			return -ENOMEM;
		}
		fi->size = (uint64_t)fs.file_size(f);
		fi->offset = (uint64_t)fs.file_offset(f);
		lt::sha256_hash root = fs.root(f);
		if (fs.v2() && !root.is_all_zeros()) {
			fi->has_root = true;
			memcpy(fi->root, root.data(), 32);
		}
	}
	*out = m;
	return 0;
}

static int make(const char *path, const struct swarm_make_params *p, swarm_metainfo **out)
{
	struct swarm_make_params defaults {
	};
	struct stat st;

	if (!p)
		p = &defaults;
	if (stat(path, &st) < 0)
		return -errno;
	if (p->piece_length &&
	    (p->piece_length < 16384 || (p->piece_length & (p->piece_length - 1))))
		return -EINVAL;

	std::string full(path);
	while (full.size() > 1 && full.back() == '/')
		full.pop_back();
	lt::file_storage fs;
	lt::add_files(fs, full, lt::create_flags_t{});
	if (fs.num_files() == 0 || fs.total_size() == 0)
		return -EINVAL;

	lt::create_flags_t flags{};
	if (p->kind == SWARM_MAKE_V1)
		flags |= lt::create_torrent::v1_only;
	else if (p->kind == SWARM_MAKE_V2)
		flags |= lt::create_torrent::v2_only;
	lt::create_torrent ct(fs, (int)p->piece_length, flags);
	for (const char *const *tr = p->trackers; tr && *tr; tr++)
		ct.add_tracker(*tr);
	ct.set_priv(p->private_flag);
	ct.set_creator("swarmfs");

	// Pieces are hashed by libtorrent's disk threads: one per core keeps both
	// cores busy on a large file (~1450 MiB/s against ~830 on one).
	int threads = p->threads > 0 ? p->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	lt::settings_pack sp;
	sp.set_int(lt::settings_pack::hashing_threads, threads);
	sp.set_int(lt::settings_pack::aio_threads, threads);
	lt::error_code ec;
	size_t slash = full.rfind('/');
	std::string parent = slash == std::string::npos ? "." : full.substr(0, slash ? slash : 1);
	uint32_t hashed = 0, total = (uint32_t)ct.num_pieces();
	lt::set_piece_hashes(
	    ct, parent, sp,
	    [&](lt::piece_index_t) {
		    if (p->progress)
			    p->progress(++hashed, total, p->progress_ctx);
	    },
	    ec);
	if (ec)
		return swarm_error(nullptr, ec, "hash");

	std::vector<char> buf = ct.generate_buf();
	lt::torrent_info ti(buf, lt::from_span);
	return swarm_metainfo_from(ti, buf.data(), buf.size(), out);
}

extern "C" int swarm_metainfo_make(const char *path, const struct swarm_make_params *p,
                                   struct swarm_metainfo **out)
{
	try {
		return make(path, p, out);
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (lt::system_error const &e) {
		return swarm_error(nullptr, e.code(), "make torrent");
	} catch (...) {
		return -EIO;
	}
}

extern "C" int swarm_metainfo_parse(const void *data, size_t len, struct swarm_metainfo **out,
                                    const char **out_error)
{
	static thread_local std::string msg;
	try {
		lt::load_torrent_limits limits;
		lt::error_code ec;
		int pos = 0;
		// bencode first, so the reason can name the byte where it breaks
		lt::bdecode({ (const char *)data, (std::ptrdiff_t)len }, ec, &pos);
		if (ec) {
			if (out_error) {
				msg = "bad bencode at byte " + std::to_string(pos);
				*out_error = msg.c_str();
			}
			return -EINVAL;
		}
		lt::torrent_info ti({ (const char *)data, (std::ptrdiff_t)len }, limits,
		                    lt::from_span);
		return swarm_metainfo_from(ti, (const char *)data, len, out);
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (lt::system_error const &e) {
		if (out_error) {
			msg = e.code().message();
			*out_error = msg.c_str();
		}
		return swarm_error(nullptr, e.code(), "parse torrent");
	} catch (...) {
		return -EIO;
	}
}

// ---- a one-file torrent from hashes given piece by piece ----

struct swarm_hasher {
	uint64_t size;
	uint32_t piece_length;
	uint32_t num_pieces;
	swarm_make_kind kind;
	std::vector<lt::sha1_hash> v1;
	std::vector<lt::sha256_hash> v2; // per piece: the root of its blocks' tree (BEP 52)
	std::vector<char> done;          // one byte a piece: threads write distinct bytes
};

extern "C" uint32_t swarm_make_piece_length(uint64_t size)
{
	try {
		if (!size)
			return 16384;
		lt::file_storage fs;
		fs.add_file("x", (std::int64_t)size);
		lt::create_torrent ct(fs, 0, lt::create_flags_t{});
		return (uint32_t)ct.piece_length();
	} catch (...) {
		return 0;
	}
}

extern "C" int swarm_hasher_new(uint64_t size, uint32_t piece_length, enum swarm_make_kind kind,
                                struct swarm_hasher **out)
{
	if (!size || piece_length < 16384 || (piece_length & (piece_length - 1)))
		return -EINVAL;
	uint64_t n = (size + piece_length - 1) / piece_length;
	if (n > INT32_MAX)
		return -EINVAL;
	try {
		auto h = new swarm_hasher{};
		h->size = size;
		h->piece_length = piece_length;
		h->num_pieces = (uint32_t)n;
		h->kind = kind;
		h->v1.resize(n);
		h->v2.resize(n);
		h->done.assign(n, 0);
		*out = h;
		return 0;
	} catch (...) {
		return -ENOMEM;
	}
}

// The root of a tree over leaves, padded with zero hashes to n (a power of two).
static lt::sha256_hash merkle_root_of(std::vector<lt::sha256_hash> &leaves, size_t n)
{
	leaves.resize(n);
	while (n > 1) {
		for (size_t i = 0; i < n / 2; i++) {
			lt::hasher256 hh;
			hh.update({ (const char *)leaves[2 * i].data(), 32 });
			hh.update({ (const char *)leaves[2 * i + 1].data(), 32 });
			leaves[i] = hh.final();
		}
		n /= 2;
	}
	return leaves[0];
}

// A piece's BEP 52 root of its blocks' leaves: a file smaller than a piece pads its
// blocks to the next power of two, every other piece to the piece's blocks (as
// libtorrent does).
static lt::sha256_hash piece_root(const swarm_hasher *h, std::vector<lt::sha256_hash> &leaves)
{
	size_t pad = h->size < h->piece_length ? 1 : (size_t)(h->piece_length / 16384);
	while (pad < leaves.size())
		pad *= 2;
	return merkle_root_of(leaves, pad);
}

extern "C" int swarm_hasher_piece(struct swarm_hasher *h, uint32_t index, const void *data,
                                  size_t len, uint8_t (*out_leaves)[32])
{
	const uint64_t block = 16384;
	if (index >= h->num_pieces)
		return -EINVAL;
	uint64_t off = (uint64_t)index * h->piece_length;
	uint64_t want = std::min<uint64_t>(h->piece_length, h->size - off);
	if (len != want || (out_leaves && h->kind == SWARM_MAKE_V1))
		return -EINVAL;
	try {
		// hashed here, then given as the caller's own hashes are
		const char *p = (const char *)data;
		lt::sha1_hash v1;
		size_t nblocks = h->kind != SWARM_MAKE_V1 ? (size_t)((len + block - 1) / block) : 0;
		std::vector<lt::sha256_hash> mine(out_leaves ? 0 : nblocks);
		uint8_t(*leaves)[32] = out_leaves ? out_leaves : (uint8_t(*)[32])mine.data();
		if (h->kind != SWARM_MAKE_V2)
			v1 = lt::hasher(p, (int)len).final();
		for (size_t b = 0; b < nblocks; b++) {
			size_t bl = (size_t)std::min<uint64_t>(block, len - b * block);
			lt::sha256_hash leaf = lt::hasher256(p + b * block, (int)bl).final();
			std::memcpy(leaves[b], leaf.data(), 32);
		}
		return swarm_hasher_piece_hashed(h, index, (const uint8_t *)v1.data(),
		                                 nblocks ? (const uint8_t(*)[32])leaves : nullptr,
		                                 nblocks);
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (...) {
		return -EIO;
	}
}

extern "C" int swarm_hasher_piece_hashed(struct swarm_hasher *h, uint32_t index,
                                         const uint8_t v1[20], const uint8_t (*leaves)[32],
                                         size_t nleaves)
{
	const uint64_t block = 16384;
	if (index >= h->num_pieces)
		return -EINVAL;
	uint64_t off = (uint64_t)index * h->piece_length;
	uint64_t len = std::min<uint64_t>(h->piece_length, h->size - off);
	if ((h->kind != SWARM_MAKE_V2 && !v1) ||
	    (h->kind != SWARM_MAKE_V1 && (!leaves || nleaves != (len + block - 1) / block)))
		return -EINVAL;
	try {
		if (h->kind != SWARM_MAKE_V2)
			std::memcpy(h->v1[index].data(), v1, 20);
		if (h->kind != SWARM_MAKE_V1) {
			std::vector<lt::sha256_hash> tree(nleaves);
			for (size_t b = 0; b < nleaves; b++)
				std::memcpy(tree[b].data(), leaves[b], 32);
			h->v2[index] = piece_root(h, tree);
		}
		h->done[index] = 1;
		return 0;
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (...) {
		return -EIO;
	}
}

static int hasher_finish(struct swarm_hasher *h, const char *name,
                         const struct swarm_make_params *p, swarm_metainfo **out)
{
	for (char d : h->done)
		if (!d)
			return -EINVAL;
	lt::file_storage fs;
	fs.add_file(name, (std::int64_t)h->size);
	lt::create_flags_t flags{};
	if (h->kind == SWARM_MAKE_V1)
		flags |= lt::create_torrent::v1_only;
	else if (h->kind == SWARM_MAKE_V2)
		flags |= lt::create_torrent::v2_only;
	lt::create_torrent ct(fs, (int)h->piece_length, flags);
	if ((uint32_t)ct.num_pieces() != h->num_pieces)
		return -EINVAL;
	for (const char *const *tr = p ? p->trackers : nullptr; tr && *tr; tr++)
		ct.add_tracker(*tr);
	ct.set_priv(p && p->private_flag);
	ct.set_creator("swarmfs");
	for (uint32_t i = 0; i < h->num_pieces; i++) {
		if (h->kind != SWARM_MAKE_V2)
			ct.set_hash(lt::piece_index_t((int)i), h->v1[i]);
		if (h->kind != SWARM_MAKE_V1)
			ct.set_hash2(lt::file_index_t(0), lt::piece_index_t::diff_type((int)i),
			             h->v2[i]);
	}
	std::vector<char> buf = ct.generate_buf();
	lt::torrent_info ti(buf, lt::from_span);
	return swarm_metainfo_from(ti, buf.data(), buf.size(), out);
}

extern "C" int swarm_hasher_finish(struct swarm_hasher *h, const char *name,
                                   const struct swarm_make_params *p, struct swarm_metainfo **out)
{
	try {
		return hasher_finish(h, name, p, out);
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (lt::system_error const &e) {
		return swarm_error(nullptr, e.code(), "make torrent");
	} catch (...) {
		return -EIO;
	}
}

extern "C" void swarm_hasher_free(struct swarm_hasher *h)
{
	delete h;
}
