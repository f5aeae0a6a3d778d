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
	lt::set_piece_hashes(
	    ct, parent, sp, [](lt::piece_index_t) {}, ec);
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
