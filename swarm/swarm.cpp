// The C++ shim over libtorrent: sessions, the swarm thread, logging and the one place
// where libtorrent error codes become -errno. Nothing here may throw across the
// extern "C" edge.
#include "swarm_priv.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>
#include <poll.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <unistd.h>

#include <libtorrent/alert_types.hpp>
#include <libtorrent/bdecode.hpp>
#include <libtorrent/error.hpp>
#include <libtorrent/posix_disk_io.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/session_stats.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/extensions.hpp>
#include <libtorrent/extensions/smart_ban.hpp>
#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/extensions/ut_metadata.hpp>
#include <libtorrent/extensions/ut_pex.hpp>
#include <libtorrent/version.hpp>

extern "C" const char *swarm_libtorrent_version(void)
{
	return lt::version();
}

void swarm_logf(swarm_session *s, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!s->log || level > s->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	s->log(level, "swarm", buf, s->log_ctx);
}

// The one translation of libtorrent's codes; logs the library's message once.
int swarm_error(swarm_session *s, const lt::error_code &ec, const char *what)
{
	int err = -EIO;

	if (ec.category() == lt::system_category() || ec.category() == lt::generic_category()) {
		err = ec.value() > 0 ? -ec.value() : -EIO;
	} else if (ec.category() == lt::bdecode_category()) {
		err = -EINVAL;
	} else if (ec.category() == lt::libtorrent_category()) {
		switch (ec.value()) {
		case lt::errors::duplicate_torrent: err = -EEXIST; break;
		case lt::errors::invalid_torrent_handle:
		case lt::errors::session_is_closing: err = -ECANCELED; break;
		case lt::errors::timed_out:
		case lt::errors::timed_out_no_interest:
		case lt::errors::timed_out_inactivity:
		case lt::errors::timed_out_no_request:
		case lt::errors::timed_out_no_handshake: err = -ETIMEDOUT; break;
		case lt::errors::torrent_file_parse_failed:
		case lt::errors::torrent_missing_info:
		case lt::errors::torrent_missing_piece_length:
		case lt::errors::torrent_missing_pieces:
		case lt::errors::torrent_missing_name:
		case lt::errors::torrent_invalid_name:
		case lt::errors::torrent_invalid_length:
		case lt::errors::torrent_invalid_hashes:
		case lt::errors::torrent_is_no_dict:
		case lt::errors::torrent_info_no_dict:
		case lt::errors::torrent_unknown_version:
		case lt::errors::torrent_missing_file_tree:
		case lt::errors::torrent_missing_meta_version:
		case lt::errors::torrent_inconsistent_files:
		case lt::errors::torrent_missing_pieces_root:
		case lt::errors::torrent_invalid_piece_layer:
		case lt::errors::torrent_invalid_pad_file:
		case lt::errors::invalid_piece_size:
		case lt::errors::invalid_file_tag:
		case lt::errors::invalid_info_hash:
		case lt::errors::missing_info_hash_in_uri:
		case lt::errors::unsupported_url_protocol:
		case lt::errors::invalid_dont_have:
		case lt::errors::no_files_in_torrent:
		case lt::errors::invalid_swarm_metadata:
		case lt::errors::invalid_bencoding:
		case lt::errors::expected_string:
		case lt::errors::expected_colon:
		case lt::errors::unexpected_eof:
		case lt::errors::expected_value:
		case lt::errors::depth_exceeded:
		case lt::errors::limit_exceeded:
		case lt::errors::overflow: err = -EINVAL; break;
		case lt::errors::mismatching_file_size:
		case lt::errors::mismatching_number_of_files:
		case lt::errors::missing_file_sizes: err = -EIO; break;
		default: err = -EIO; break;
		}
	}
	if (s)
		SWARM_LOG(s, LOG_ERR, "%s: %s", what, ec.message().c_str());
	return err;
}

void swarm_wake(swarm_session *s)
{
	uint64_t one = 1;

	// A full counter only means a wake-up is pending already.
	if (write(s->efd, &one, sizeof one) < 0) {
	}
}

void swarm_post(swarm_session *s, std::function<void()> fn)
{
	{
		std::lock_guard<std::mutex> g(s->mu);
		s->cmds.push_back(std::move(fn));
	}
	swarm_wake(s);
}

bool swarm_on_thread(swarm_session *s)
{
	return std::this_thread::get_id() == s->thread_id;
}

static void run_commands(swarm_session *s)
{
	for (;;) {
		std::function<void()> fn;
		{
			std::lock_guard<std::mutex> g(s->mu);
			if (s->cmds.empty())
				return;
			fn = std::move(s->cmds.front());
			s->cmds.pop_front();
		}
		try {
			fn();
		} catch (std::exception const &e) {
			SWARM_LOG(s, LOG_ERR, "swarm thread command failed: %s", e.what());
		}
	}
}

static void swarm_thread_main(swarm_session *s)
{
	std::vector<lt::alert *> alerts;

	for (;;) {
		struct pollfd p = { s->efd, POLLIN, 0 };
		uint64_t n;

		// 50 ms bounds how late a fetch timeout or a batched forget can fire.
		if (poll(&p, 1, 50) > 0 && read(s->efd, &n, sizeof n) < 0) {
		}
		if (s->stopping.load())
			break;
		run_commands(s);
		try {
			s->ses->pop_alerts(&alerts);
			for (lt::alert *a : alerts) {
				if (s->log_level >= LOG_DEBUG)
					SWARM_LOG(s, LOG_DEBUG, "alert %s", a->message().c_str());
				try {
					swarm_torrent_on_alert(s, a);
				} catch (std::exception const &e) {
					SWARM_LOG(s, LOG_ERR, "alert %s: %s", a->what(), e.what());
				}
			}
			swarm_ext_deliver(s);
			swarm_torrent_tick(s);
		} catch (std::exception const &e) {
			SWARM_LOG(s, LOG_ERR, "swarm thread: %s", e.what());
		}
	}
	// Run the commands still queued (fetches to fail), then fail everything else.
	run_commands(s);
	swarm_session_cancel_all(s);
}

extern "C" void swarm_config_init(struct swarm_config *c)
{
	memset(c, 0, sizeof *c);
	c->pex = true;
	c->log_level = LOG_NOTICE;
}

static int parse_endpoint(const char *text, lt::tcp::endpoint *out)
{
	std::string t(text);
	size_t colon = t.rfind(':');
	lt::error_code ec;

	if (colon == std::string::npos || colon == 0 || colon + 1 >= t.size())
		return -EINVAL;
	std::string host = t.substr(0, colon);
	if (host.front() == '[' && host.back() == ']')
		host = host.substr(1, host.size() - 2);
	char *end;
	unsigned long port = strtoul(t.c_str() + colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535)
		return -EINVAL;
	auto addr = lt::make_address(host, ec);
	if (ec)
		return -EINVAL;
	*out = lt::tcp::endpoint(addr, (unsigned short)port);
	return 0;
}

// Runs one of libtorrent's torrent-plugin factories for every torrent.
struct plugin_wrapper : lt::plugin {
	using factory = std::shared_ptr<lt::torrent_plugin> (*)(lt::torrent_handle const &,
	                                                        lt::client_data_t);
	factory f;
	explicit plugin_wrapper(factory ff) : f(ff)
	{
	}
	std::shared_ptr<lt::torrent_plugin> new_torrent(lt::torrent_handle const &h,
	                                                lt::client_data_t ud) override
	{
		return f(h, ud);
	}
};

// Tells the embedder of an incoming peer that asked for a torrent the session does not
// have (libtorrent's network thread), and turns the peer away: the embedder may add the
// torrent, and the peer's next dial finds it.
struct unknown_plugin : lt::plugin {
	swarm_session *s;
	explicit unknown_plugin(swarm_session *ss) : s(ss)
	{
	}
	bool on_unknown_torrent(lt::info_hash_t const &ih, lt::peer_connection_handle const &,
	                        lt::add_torrent_params &) override
	{
		if (ih.has_v1())
			s->on_unknown(reinterpret_cast<const uint8_t *>(ih.v1.data()), s->cb_ctx);
		if (ih.has_v2())
			s->on_unknown(reinterpret_cast<const uint8_t *>(ih.v2.data()), s->cb_ctx);
		return false;
	}
};

static lt::settings_pack session_settings(const struct swarm_config *c)
{
	lt::settings_pack sp;
	char listen[128];
	const char *iface = c->listen_interface ? c->listen_interface : "0.0.0.0";

	if (strchr(iface, ':'))
		snprintf(listen, sizeof listen, "[%s]:%u", iface, c->listen_port);
	else
		snprintf(listen, sizeof listen, "%s:%u", iface, c->listen_port);
	sp.set_str(lt::settings_pack::listen_interfaces, listen);
	// A node that listens on one address dials from it too: its peers then know it
	// by one address, which is what credit ranks go by (swarm_session_set_ranks).
	lt::error_code ec;
	lt::address bound = lt::make_address(iface, ec);
	if (!ec && !bound.is_unspecified())
		sp.set_str(lt::settings_pack::outgoing_interfaces, iface);
	sp.set_bool(lt::settings_pack::enable_dht, c->dht);
	sp.set_bool(lt::settings_pack::enable_lsd, c->lsd);
	sp.set_bool(lt::settings_pack::enable_upnp, c->upnp);
	sp.set_bool(lt::settings_pack::enable_natpmp, c->natpmp);
	sp.set_int(lt::settings_pack::upload_rate_limit, c->upload_rate_limit);
	sp.set_int(lt::settings_pack::download_rate_limit, c->download_rate_limit);
	if (c->connections_limit > 0)
		sp.set_int(lt::settings_pack::connections_limit, c->connections_limit);
	lt::alert_category_t mask = lt::alert_category::error | lt::alert_category::status |
	                            lt::alert_category::storage |
	                            lt::alert_category::piece_progress;
	if (c->dht)
		mask |= lt::alert_category::dht |          // dht_bootstrap_alert
		        lt::alert_category::dht_operation; // dht_get_peers_reply_alert
	if (c->log_level >= LOG_DEBUG)
		mask |= lt::alert_category::peer | lt::alert_category::connect |
		        lt::alert_category::tracker;
	sp.set_int(lt::settings_pack::alert_mask, static_cast<int>(static_cast<uint32_t>(mask)));
	sp.set_int(lt::settings_pack::alert_queue_size, 100000);
	// Local peers: uTP gave 8-18 MiB/s with stalls, TCP ~200 (issue 4's measures).
	sp.set_bool(lt::settings_pack::enable_outgoing_utp, c->utp);
	sp.set_bool(lt::settings_pack::enable_incoming_utp, c->utp);
	if (c->dht) {
		std::string nodes;
		for (const char *const *p = c->dht_bootstrap; p && *p; p++)
			nodes += (nodes.empty() ? "" : ",") + std::string(*p);
		if (!c->dht_bootstrap)
			nodes = "router.bittorrent.com:6881,router.utorrent.com:6881,"
			        "dht.transmissionbt.com:6881,dht.libtorrent.org:25401";
		sp.set_str(lt::settings_pack::dht_bootstrap_nodes, nodes);
	}
	sp.set_int(lt::settings_pack::send_buffer_low_watermark, 512 * 1024);
	sp.set_int(lt::settings_pack::send_buffer_watermark, 4 * 1024 * 1024);
	// Unwanted pieces at priority 0 make a torrent "finished": keep its seeds.
	sp.set_bool(lt::settings_pack::close_redundant_connections, false);
	// A torrent keeps its piece picker once it has every piece. libtorrent 2.0.8
	// drops the picker then (torrent::maybe_done_flushing) unless suggest mode is
	// suggest_read_cache. But set_piece_deadline, called while the time-critical list
	// is empty, posts torrent::cancel_non_critical. That runs later and calls
	// peer_connection::cancel_request, which reads t->picker() unchecked. If a
	// fetch's deadline lands just before the torrent's last piece passes, the posted
	// call finds no picker and the network thread dereferences null. A reader's mount
	// died this way in about 1 of 4 runs of scripts/bench/fanout.sh (9 readers of
	// 256 MiB). This mode also sends peers SUGGEST for pieces just had or served.
	sp.set_int(lt::settings_pack::suggest_mode, lt::settings_pack::suggest_read_cache);
	// opentracker hands peers back their own address; without this libtorrent
	// bans every other 127.0.0.1 peer.
	sp.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
	sp.set_int(lt::settings_pack::tick_interval, 100);
	sp.set_int(lt::settings_pack::connection_speed, 200);
	sp.set_int(lt::settings_pack::min_reconnect_time, 1);
	sp.set_int(lt::settings_pack::max_failcount, 1000);
	sp.set_int(lt::settings_pack::peer_connect_timeout, 3);
	sp.set_int(lt::settings_pack::request_timeout, 5);
	sp.set_int(lt::settings_pack::piece_timeout, 3);
	sp.set_int(lt::settings_pack::min_announce_interval, 5);
	sp.set_int(lt::settings_pack::active_downloads, -1);
	sp.set_int(lt::settings_pack::active_seeds, -1);
	sp.set_int(lt::settings_pack::active_limit, -1);
	sp.set_int(lt::settings_pack::max_out_request_queue, 1500);
	sp.set_int(lt::settings_pack::max_allowed_in_request_queue, 2000);
	sp.set_bool(lt::settings_pack::dht_restrict_routing_ips, false);
	sp.set_bool(lt::settings_pack::dht_restrict_search_ips, false);
	sp.set_bool(lt::settings_pack::announce_to_all_trackers, true);
	sp.set_bool(lt::settings_pack::announce_to_all_tiers, true);
	sp.set_str(lt::settings_pack::user_agent, "swarmfs");
	return sp;
}

static int session_new(const struct swarm_config *c, swarm_session **out)
{
	auto s = std::make_unique<swarm_session>();

	for (const char *const *p = c->trackers; p && *p; p++)
		s->trackers.emplace_back(*p);
	for (const char *const *p = c->peers; p && *p; p++) {
		lt::tcp::endpoint ep;
		if (parse_endpoint(*p, &ep) < 0)
			return -EINVAL;
		s->peers.push_back(ep);
	}
	s->fetch_timeout_ms = c->fetch_timeout_ms > 0 ? c->fetch_timeout_ms : 30000;
	s->dht = c->dht;
	s->readahead_max = c->readahead_max ? c->readahead_max : 16u << 20;
	s->stream_max = c->stream_max;
	s->ext_max = c->ext_max_message ? c->ext_max_message : 1u << 20;
	if (s->ext_max > swarm_ext_hard_max)
		s->ext_max = swarm_ext_hard_max;
	s->ext_name = c->ext_name ? c->ext_name : "swarmfs_sync";
	s->log_level = c->log_level;
	s->log = c->log;
	s->log_ctx = c->log_ctx;
	s->on_piece = c->on_piece;
	s->on_ext_peer = c->on_ext_peer;
	s->on_ext_message = c->on_ext_message;
	s->may_serve = c->may_serve;
	s->check_upload = c->check_upload;
	s->on_metadata = c->on_metadata;
	s->on_unknown = c->on_unknown;
	s->cb_ctx = c->cb_ctx;

	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0)
		return -errno;

	lt::session_params params(session_settings(c));
	// posix_disk_io keeps RSS flat (~22 MB) where mmap storage grows with data served;
	// swarm_disk wraps it to show what it reads for peers to check_upload.
	swarm_session *ses = s.get();
	params.disk_io_constructor = [ses](lt::io_context &ioc, lt::settings_interface const &sett,
	                                   lt::counters &cnt) {
		return swarm_disk_new(ses, ioc, sett, cnt);
	};
	// libtorrent's defaults, minus PEX when it is off.
	params.extensions.clear();
	params.extensions.push_back(
	    std::make_shared<plugin_wrapper>(&lt::create_ut_metadata_plugin));
	if (c->pex)
		params.extensions.push_back(
		    std::make_shared<plugin_wrapper>(&lt::create_ut_pex_plugin));
	params.extensions.push_back(std::make_shared<plugin_wrapper>(&lt::create_smart_ban_plugin));
	if (c->on_unknown)
		params.extensions.push_back(std::make_shared<unknown_plugin>(s.get()));
	try {
		s->ses = std::make_unique<lt::session>(std::move(params));
	} catch (...) {
		close(s->efd);
		throw;
	}
	swarm_class_init(s.get());
	swarm_session *raw = s.get();
	s->ses->set_alert_notify([raw] { swarm_wake(raw); });
	s->thread = std::thread(swarm_thread_main, raw);
	s->thread_id = s->thread.get_id();
	*out = s.release();
	return 0;
}

extern "C" int swarm_session_new(const struct swarm_config *c, struct swarm_session **out)
{
	try {
		return session_new(c, out);
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (lt::system_error const &e) {
		int err = e.code().value() == EADDRINUSE ? -EADDRINUSE : -EIO;
		if (c->log)
			c->log(LOG_ERR, "swarm", e.what(), c->log_ctx);
		return err;
	} catch (...) {
		return -EIO;
	}
}

extern "C" void swarm_session_free(struct swarm_session *s)
{
	if (!s)
		return;
	try {
		s->stopping = true;
		swarm_wake(s);
		s->thread.join();
		s->ses->set_alert_notify([] {});
		// The destructor waits for libtorrent's threads; alerts still queued die
		// with it, so nothing refers to our torrents afterwards.
		s->ses.reset();
		std::set<swarm_torrent *> ts;
		{
			std::lock_guard<std::mutex> g(s->mu);
			ts.swap(s->torrents);
		}
		for (swarm_torrent *t : ts)
			swarm_torrent_delete(t);
		s->events.clear();
		s->dead.clear();
		close(s->efd);
		delete s;
	} catch (...) {
		// Nothing sensible is left to do with a session that cannot close.
	}
}

extern "C" int swarm_session_port(struct swarm_session *s, uint16_t *out_port)
{
	try {
		uint16_t port = s->ses->listen_port();
		if (port == 0)
			return -EAGAIN;
		*out_port = port;
		return 0;
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (...) {
		return -EIO;
	}
}

extern "C" int swarm_session_set_peers(struct swarm_session *s, const char *const *peers)
{
	try {
		std::vector<lt::tcp::endpoint> v;
		for (const char *const *p = peers; p && *p; p++) {
			lt::tcp::endpoint ep;
			if (parse_endpoint(*p, &ep) < 0) {
				SWARM_LOG(s, LOG_ERR,
				          "known peer \"%s\" is not an address and port", *p);
				return -EINVAL;
			}
			v.push_back(ep);
		}
		std::lock_guard<std::mutex> g(s->mu);
		s->known_peers.swap(v);
		return 0;
	}
	SWARM_CATCH
}

extern "C" int swarm_session_stats(struct swarm_session *s, struct swarm_session_stats *out)
{
	try {
		auto sts =
		    s->ses->get_torrent_status([](lt::torrent_status const &) { return true; }, {});
		struct swarm_session_stats r {
		};
		r.torrents = (uint32_t)sts.size();
		for (auto const &st : sts) {
			r.peers += (uint32_t)st.num_peers;
			r.download_rate += (uint64_t)st.download_payload_rate;
			r.upload_rate += (uint64_t)st.upload_payload_rate;
			r.total_downloaded += (uint64_t)st.all_time_download;
			r.total_uploaded += (uint64_t)st.all_time_upload;
			r.wire_downloaded += (uint64_t)st.total_download;
			r.wire_uploaded += (uint64_t)st.total_upload;
		}
		*out = r;
		return 0;
	} catch (std::bad_alloc const &) {
		return -ENOMEM;
	} catch (...) {
		return -EIO;
	}
}
