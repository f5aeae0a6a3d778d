/*
 * swarm/ against real libtorrent sessions on 127.0.0.1 (port 0, DHT/LSD/UPnP/NAT-PMP
 * off) and a real opentracker: making torrents (checked against mktorrent and
 * python3-libtorrent), malformed input, discovery, on-demand reads, timeouts, seeders
 * that die and come back, forgetting pieces, resume, corrupt pieces, the extension
 * channel with two and three sessions, its peers' addresses and dropping a peer.
 */
#include "fixture.h"
#include "swarm.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static char *dir;

static void setup(void)
{
	fixture_test_setup();
	ck_assert_int_eq(fixture_tmpdir_new("swarm", &dir), 0);
}

static void teardown(void)
{
	fixture_tmpdir_remove(dir);
	free(dir);
}

static char *path_in(const char *fmt, const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, fmt, dir, name), 0);
	return p;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_sink(int level, const char *module, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= LOG_WARNING || getenv("SWARM_TEST_DEBUG"))
		fprintf(stderr, "%s: %d: %s\n", module, level, msg);
}

/* ---- callback recorder shared by sessions of a test ---- */

struct events {
	pthread_mutex_t mu;
	int pieces;
	int joins, leaves, msgs;
	uint64_t last_peer;
	struct swarm_torrent *last_t;
	char last_msg[256];
	size_t last_len;
};

static void on_piece(struct swarm_torrent *t, void *tctx, uint32_t piece, void *ctx)
{
	struct events *e = ctx;

	(void)t, (void)tctx, (void)piece;
	pthread_mutex_lock(&e->mu);
	e->pieces++;
	pthread_mutex_unlock(&e->mu);
}

static void on_ext_peer(struct swarm_torrent *t, void *tctx, uint64_t peer, bool up, void *ctx)
{
	struct events *e = ctx;

	(void)tctx;
	pthread_mutex_lock(&e->mu);
	if (up)
		e->joins++;
	else
		e->leaves++;
	e->last_peer = peer;
	e->last_t = t;
	pthread_mutex_unlock(&e->mu);
}

static void on_ext_msg(struct swarm_torrent *t, void *tctx, uint64_t peer, const void *msg,
                       size_t len, void *ctx)
{
	struct events *e = ctx;

	(void)tctx;
	pthread_mutex_lock(&e->mu);
	e->msgs++;
	e->last_peer = peer;
	e->last_t = t;
	e->last_len = len;
	memcpy(e->last_msg, msg, len < sizeof e->last_msg ? len : sizeof e->last_msg);
	pthread_mutex_unlock(&e->mu);
	/* answer "ping" with "pong" from inside the callback: send only queues */
	if (len == 4 && !memcmp(msg, "ping", 4))
		ck_assert_int_eq(swarm_ext_send(t, peer, "pong", 4), 0);
}

static int events_get(struct events *e, int *field)
{
	int v;

	pthread_mutex_lock(&e->mu);
	v = *field;
	pthread_mutex_unlock(&e->mu);
	return v;
}

static bool wait_events(struct events *e, int *field, int at_least, int timeout_ms)
{
	int64_t end = now_ms() + fixture_scaled_ms(timeout_ms);

	while (now_ms() < end) {
		if (events_get(e, field) >= at_least)
			return true;
		usleep(10000);
	}
	return false;
}

/* ---- sessions ---- */

/* Off in tests that must control who learns of whom. */
static bool pex = true;

/* The extension message cap of the next sessions made (0: the default, 1 MiB). */
static size_t ext_max;
static uint32_t readahead_max; /* 0: the library's default */
static uint64_t stream_max;    /* 0: no streaming */

static struct swarm_session *session(const char *const *trackers, const char *const *peers,
                                     struct events *e)
{
	struct swarm_config c;
	struct swarm_session *s;

	swarm_config_init(&c);
	c.listen_interface = "127.0.0.1";
	c.trackers = trackers;
	c.peers = peers;
	c.fetch_timeout_ms = 10000;
	c.pex = pex;
	c.ext_max_message = ext_max;
	c.readahead_max = readahead_max;
	c.stream_max = stream_max;
	c.log = log_sink;
	c.log_level = getenv("SWARM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING;
	if (e) {
		c.on_piece = on_piece;
		c.on_ext_peer = on_ext_peer;
		c.on_ext_message = on_ext_msg;
		c.cb_ctx = e;
	}
	ck_assert_int_eq(swarm_session_new(&c, &s), 0);
	return s;
}

static uint16_t port_of(struct swarm_session *s)
{
	uint16_t port = 0;

	for (int i = 0; i < 200 && swarm_session_port(s, &port) == -EAGAIN; i++)
		usleep(10000);
	ck_assert_uint_ne(port, 0);
	return port;
}

/* "127.0.0.1:PORT" of s in buf */
static const char *addr_of(struct swarm_session *s, char buf[32])
{
	snprintf(buf, 32, "127.0.0.1:%u", port_of(s));
	return buf;
}

/* A random file dir/name of len bytes and its torrent. */
static struct swarm_metainfo *make_file(const char *name, uint64_t len, uint32_t piece_length,
                                        uint32_t seed)
{
	char *p = path_in("%s/%s", name);
	struct swarm_make_params mp = { .piece_length = piece_length };
	struct swarm_metainfo *m;
	char *slash = strrchr(p, '/');

	*slash = '\0';
	mkdir(p, 0755);
	*slash = '/';
	ck_assert_int_eq(fixture_file_random(p, len, seed), 0);
	ck_assert_int_eq(swarm_metainfo_make(p, &mp, &m), 0);
	free(p);
	return m;
}

static struct swarm_torrent *add(struct swarm_session *s, struct swarm_metainfo *m,
                                 const char *subdir, bool seed)
{
	char *save = path_in("%s/%s", subdir);
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = save,
		                       .seed = seed };
	struct swarm_torrent *t;

	mkdir(save, 0755);
	ck_assert_int_eq(swarm_torrent_add(s, &ap, &t), 0);
	free(save);
	return t;
}

/* The bytes of dir/name at [off, off + len) */
static void *file_bytes(const char *name, uint64_t off, size_t len)
{
	char *p = path_in("%s/%s", name);
	void *buf = malloc(len);
	int fd = open(p, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
	free(p);
	return buf;
}

static void assert_read(struct swarm_reader *r, const char *orig, uint64_t off, size_t len,
                        int timeout_ms)
{
	char *buf = malloc(len);
	void *want = file_bytes(orig, off, len);
	ssize_t n = swarm_read(r, buf, len, off, timeout_ms);

	ck_assert_msg(n == (ssize_t)len, "read at %llu: %zd (%s)", (unsigned long long)off, n,
	              n < 0 ? strerror((int)-n) : "short");
	ck_assert_msg(memcmp(buf, want, len) == 0, "read at %llu returned wrong bytes",
	              (unsigned long long)off);
	free(buf);
	free(want);
}

static uint64_t downloaded(struct swarm_torrent *t)
{
	struct swarm_torrent_stats st;

	ck_assert_int_eq(swarm_torrent_stats(t, &st), 0);
	return st.total_downloaded;
}

/* ---- making torrents ---- */

static void hash_hex(const struct swarm_metainfo *m, char v1[41], char v2[65])
{
	swarm_hex(m->v1, 20, v1);
	swarm_hex(m->v2, 32, v2);
}

START_TEST(make_matches_mktorrent_and_python)
{
	char *file = path_in("%s/%s", "data.bin"), *tor = path_in("%s/%s", "mk.torrent");
	char *out = NULL, v1[41], v2[65], ref1[41];
	struct swarm_make_params v1p = { .kind = SWARM_MAKE_V1, .piece_length = 256 * 1024 };
	struct swarm_make_params hp = { .piece_length = 256 * 1024 };
	struct swarm_metainfo *m, *h, *mk;

	ck_assert_int_eq(fixture_file_random(file, 3 * MiB + 1234, 7), 0);
	ck_assert_int_eq(swarm_metainfo_make(file, &v1p, &m), 0);
	ck_assert(m->has_v1 && !m->has_v2);
	ck_assert_int_eq(
	    fixture_sh(60000, &out, "mktorrent -l 18 -o '%s' '%s' >/dev/null 2>&1", tor, file), 0);
	free(out);
	{
		FILE *f = fopen(tor, "rb");
		char buf[65536];
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		ck_assert_int_eq(swarm_metainfo_parse(buf, n, &mk, NULL), 0);
	}
	swarm_hex(mk->v1, 20, ref1);
	swarm_hex(m->v1, 20, v1);
	ck_assert_str_eq(v1, ref1);

	ck_assert_int_eq(swarm_metainfo_make(file, &hp, &h), 0);
	ck_assert(h->has_v1 && h->has_v2);
	ck_assert_uint_eq(h->num_files, 1);
	ck_assert(h->files[0].has_root);
	ck_assert_uint_eq(h->piece_length, 256 * 1024);
	ck_assert_uint_eq(h->num_pieces, 13);
	hash_hex(h, v1, v2);
	ck_assert_int_eq(fixture_sh(60000, &out,
	                            "/usr/bin/python3 -c 'import libtorrent as lt, sys, os\n"
	                            "fs = lt.file_storage(); lt.add_files(fs, sys.argv[1])\n"
	                            "ct = lt.create_torrent(fs, 262144)\n"
	                            "lt.set_piece_hashes(ct, os.path.dirname(sys.argv[1]))\n"
	                            "ti = lt.torrent_info(lt.bencode(ct.generate()))\n"
	                            "ih = ti.info_hashes()\n"
	                            "print(ih.v1, ih.v2, ti.files().root(0))' '%s'",
	                            file),
	                 0);
	char want[256];
	char root[65];
	swarm_hex(h->files[0].root, 32, root);
	snprintf(want, sizeof want, "%s %s %s\n", v1, v2, root);
	ck_assert_str_eq(out, want);
	free(out);
	swarm_metainfo_free(m);
	swarm_metainfo_free(h);
	swarm_metainfo_free(mk);
	free(file);
	free(tor);
}
END_TEST

START_TEST(make_directory_and_v2_only)
{
	char *d = path_in("%s/%s", "tree"), *a = path_in("%s/%s", "tree/a"),
	     *b = path_in("%s/%s", "tree/sub/b");
	struct swarm_make_params v2p = { .kind = SWARM_MAKE_V2 };
	struct swarm_metainfo *m, *p;

	mkdir(d, 0755);
	char *sub = path_in("%s/%s", "tree/sub");
	mkdir(sub, 0755);
	ck_assert_int_eq(fixture_file_random(a, 100000, 1), 0);
	ck_assert_int_eq(fixture_file_random(b, 300000, 2), 0);
	ck_assert_int_eq(swarm_metainfo_make(d, NULL, &m), 0);
	ck_assert_uint_eq(m->num_files, 2);
	ck_assert_str_eq(m->name, "tree");
	ck_assert_uint_eq(m->total_size >= 400000, 1);
	ck_assert(m->files[0].has_root && m->files[1].has_root);
	/* the bytes round-trip */
	ck_assert_int_eq(swarm_metainfo_parse(m->torrent, m->torrent_len, &p, NULL), 0);
	ck_assert_int_eq(memcmp(p->v2, m->v2, 32), 0);
	swarm_metainfo_free(p);
	swarm_metainfo_free(m);
	ck_assert_int_eq(swarm_metainfo_make(a, &v2p, &m), 0);
	ck_assert(!m->has_v1 && m->has_v2);
	swarm_metainfo_free(m);
	ck_assert_int_eq(swarm_metainfo_make("/nonexistent/x", NULL, &m), -ENOENT);
	free(d), free(a), free(b), free(sub);
}
END_TEST

START_TEST(malformed_input_rejected)
{
	struct swarm_metainfo *m, *good = make_file("f", 100000, 16384, 3);
	const char *err = NULL;
	struct swarm_session *s = session(NULL, NULL, NULL);
	struct swarm_torrent *t;
	char *save = path_in("%s/%s", "save");

	ck_assert_int_eq(swarm_metainfo_parse("d4:infoi1e", 10, &m, &err), -EINVAL);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(swarm_metainfo_parse("garbage", 7, &m, &err), -EINVAL);
	ck_assert_int_eq(swarm_metainfo_parse("d3:fooi1ee", 10, &m, &err), -EINVAL);
	ck_assert_int_eq(swarm_metainfo_parse(good->torrent, good->torrent_len / 2, &m, &err),
	                 -EINVAL);

	struct swarm_add_params bad = { .torrent = "i1e", .torrent_len = 3, .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(s, &bad, &t), -EINVAL);
	struct swarm_add_params mag = { .magnet = "magnet:?xt=urn:btih:zz", .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(s, &mag, &t), -EINVAL);
	mag.magnet = "http://example.com/";
	ck_assert_int_eq(swarm_torrent_add(s, &mag, &t), -EINVAL);
	struct swarm_add_params ih = { .infohash = "1234", .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(s, &ih, &t), -EINVAL);
	struct swarm_add_params none = { .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(s, &none, &t), -EINVAL);
	uint8_t have[1] = { 0xff };
	struct swarm_add_params bits = { .torrent = good->torrent,
		                         .torrent_len = good->torrent_len,
		                         .save_path = save,
		                         .have = have,
		                         .have_bits = 3 };
	ck_assert_int_eq(swarm_torrent_add(s, &bits, &t), -EINVAL);
	/* twice the same torrent */
	struct swarm_add_params ok = { .torrent = good->torrent,
		                       .torrent_len = good->torrent_len,
		                       .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(s, &ok, &t), 0);
	struct swarm_torrent *t2;
	ck_assert_int_eq(swarm_torrent_add(s, &ok, &t2), -EEXIST);
	struct swarm_config c;
	const char *peers[] = { "nonsense", NULL };
	swarm_config_init(&c);
	c.peers = peers;
	struct swarm_session *s2;
	ck_assert_int_eq(swarm_session_new(&c, &s2), -EINVAL);
	swarm_session_free(s);
	swarm_metainfo_free(good);
	free(save);
}
END_TEST

/* ---- discovery and on-demand reads ---- */

START_TEST(static_peer_middle_read_fetches_little)
{
	struct swarm_metainfo *m = make_file("seed/film", 16 * MiB, 65536, 11);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char a[32];
	struct swarm_torrent *st = add(seeder, m, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *lt_ = add(leech, m, "leech", false);
	struct swarm_reader *r;

	ck_assert_int_eq(swarm_reader_new(lt_, 0, &r), 0);
	assert_read(r, "seed/film", 8 * MiB + 1000, 16384, 10000);
	uint64_t got = downloaded(lt_);
	ck_assert_msg(got < 1 * MiB, "a 16 KiB read downloaded %llu bytes",
	              (unsigned long long)got);
	ck_assert(swarm_torrent_has_piece(lt_, 128));
	ck_assert(!swarm_torrent_has_piece(lt_, 0));
	/* a range across pieces, and the end of the file */
	assert_read(r, "seed/film", 3 * 65536 - 100, 200000, 10000);
	assert_read(r, "seed/film", 16 * MiB - 5000, 5000, 10000);
	char b[16];
	ck_assert_int_eq(swarm_read(r, b, sizeof b, 16 * MiB, 1000), 0);
	ck_assert_int_eq(swarm_reader_pread(r, b, sizeof b, 2 * MiB), -ENODATA);

	struct swarm_session_stats ss;
	ck_assert_int_eq(swarm_session_stats(leech, &ss), 0);
	ck_assert_uint_eq(ss.torrents, 1);
	struct swarm_torrent_stats ts;
	ck_assert_int_eq(swarm_torrent_stats(st, &ts), 0);
	ck_assert_int_eq(ts.state, SWARM_STATE_SEEDING);
	ck_assert_uint_eq(ts.num_pieces, 256);
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
}
END_TEST

/* Of [off, off + len) of path, the 4 KiB pages in the page cache. */
static size_t resident_pages(const char *path, off_t off, size_t len)
{
	int fd = open(path, O_RDONLY);
	size_t n = len / 4096, in = 0;
	unsigned char *vec = calloc(n, 1);
	void *map;

	ck_assert_int_ge(fd, 0);
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
	ck_assert(map != MAP_FAILED);
	ck_assert_int_eq(mincore(map, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	munmap(map, len);
	close(fd);
	free(vec);
	return in;
}

/* Tried: the seeder's file is out of the page cache (as a private drive's ciphertext is
 * after its pack writes it around it, or any file after a reboot), and a peer asks its
 * first piece alone (a 256 KiB window). The seeder reads what it uploads on the network
 * thread, so it asks the kernel for the next 8 MiB ahead of the read: the pages at 6 MiB
 * come into the page cache although nobody asked them yet. Without that, the kernel's
 * own read-ahead of a 256 KiB sequential read stays within the first 1-2 MiB and the
 * test fails (tried: read_ahead left out of direct_read). */
START_TEST(seeder_reads_ahead_of_a_cold_upload)
{
	struct swarm_metainfo *m = make_file("seed/cold", 24 * MiB, 262144, 17);
	char *path = path_in("%s/%s", "seed/cold");
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fdatasync(fd), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	if (resident_pages(path, 6 * MiB, MiB) != 0) {
		/* tmpfs and the like keep every page: nothing here to judge */
		fprintf(stderr, "seeder_reads_ahead: %s keeps its pages; skipped\n", dir);
		free(path);
		swarm_metainfo_free(m);
		return;
	}
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char a[32];
	struct swarm_torrent *st = add(seeder, m, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };

	readahead_max = 1; /* the first piece alone */
	struct swarm_session *leech = session(NULL, peers, NULL);
	readahead_max = 0;
	struct swarm_torrent *lt_ = add(leech, m, "leech", false);
	struct swarm_reader *r;

	ck_assert_int_eq(swarm_reader_new(lt_, 0, &r), 0);
	assert_read(r, "seed/cold", 0, 16384, 10000);
	ck_assert(!swarm_torrent_has_piece(lt_, 24));
	size_t in = 0;
	for (int64_t end = now_ms() + 10000; now_ms() < end; usleep(20000))
		if ((in = resident_pages(path, 6 * MiB, MiB)) == MiB / 4096)
			break;
	ck_assert_msg(in == MiB / 4096,
	              "after the seeder served its first piece, %zu of 256 pages at 6 MiB "
	              "are in the page cache",
	              in);
	(void)st;
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
	free(path);
}
END_TEST

/* A torrent added for a reader (dial_now) tries the peers the session knows
 * (swarm_session_set_peers: a drive's members), as it starts: the seeder here is known
 * to the leech in no other way (no static peer, tracker, PEX or DHT), so its magnet's
 * metadata and its pieces can only come through them. The same for a .torrent added
 * with an empty have bitmap (fs/engine's reads). Malformed lists are refused. */
START_TEST(known_peers_reach_dial_now_torrents)
{
	struct swarm_metainfo *m = make_file("seed/doc", 2 * MiB, 65536, 13);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char a[32], v1[41], v2[65], *mag, *save = path_in("%s/%s", "mag");
	const char *bad[] = { "127.0.0.1:1", "seeder.example:6881", NULL };
	const char *noport[] = { "127.0.0.1", NULL };

	pex = false;
	struct swarm_session *leech = session(NULL, NULL, NULL);
	add(seeder, m, "seed", true);
	const char *known[] = { addr_of(seeder, a), NULL };
	ck_assert_int_eq(swarm_session_set_peers(leech, bad), -EINVAL);
	ck_assert_int_eq(swarm_session_set_peers(leech, noport), -EINVAL);
	ck_assert_int_eq(swarm_session_set_peers(leech, NULL), 0);
	ck_assert_int_eq(swarm_session_set_peers(leech, known), 0);

	hash_hex(m, v1, v2);
	ck_assert_int_ge(asprintf(&mag, "magnet:?xt=urn:btmh:1220%s&dn=doc", v2), 0);
	mkdir(save, 0755);
	struct swarm_add_params ap = { .magnet = mag, .save_path = save, .dial_now = true };
	struct swarm_torrent *mt;
	struct swarm_reader *r;
	ck_assert_int_eq(swarm_torrent_add(leech, &ap, &mt), 0);
	ck_assert_int_eq(swarm_torrent_wait_metadata(mt, 15000), 0);
	ck_assert_int_eq(swarm_reader_new(mt, 0, &r), 0);
	assert_read(r, "seed/doc", 1 * MiB + 7, 70000, 15000);
	/* it waited in upload mode for its metadata: it fetched the read's pieces (16 and
	 * 17) and the read-ahead's (18), not whatever the seeder offered meanwhile */
	struct swarm_torrent_stats ts;
	ck_assert_int_eq(swarm_torrent_stats(mt, &ts), 0);
	ck_assert_msg(ts.pieces_have <= 3, "a read of 2 pieces left %u pieces here",
	              ts.pieces_have);
	swarm_reader_free(r);
	ck_assert_int_eq(swarm_torrent_remove(mt, true), 0);

	uint8_t have[4] = { 0 }; /* 32 pieces, none here */
	char *save2 = path_in("%s/%s", "leech");
	mkdir(save2, 0755);
	struct swarm_add_params tp = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = save2,
		                       .have = have,
		                       .have_bits = 32,
		                       .dial_now = true };
	struct swarm_torrent *t;
	ck_assert_int_eq(swarm_torrent_add(leech, &tp, &t), 0);
	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	assert_read(r, "seed/doc", 3, 100000, 15000);
	swarm_reader_free(r);

	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
	free(mag), free(save), free(save2);
}
END_TEST

/* Credit ranks: refused when malformed (nothing changes), given to a connection by its
 * address when it starts, and shown with the bytes sent to that peer. */
START_TEST(ranks_by_address)
{
	struct swarm_metainfo *m = make_file("seed/r", 4 * MiB, 65536, 12);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	struct swarm_rank bad[][1] = { { { "not-an-address", 2 } },
		                       { { "127.0.0.1", 0 } },
		                       { { "127.0.0.1", SWARM_RANKS } },
		                       { { "127.0.0.1", -1 } } };
	struct swarm_rank good[] = { { "127.0.0.1", 2 }, { "::1", 3 } };
	struct swarm_peer_info pi[8];
	char a[32];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_int_eq(swarm_session_set_ranks(seeder, bad[i], 1), -EINVAL);
	ck_assert_int_eq(swarm_session_peers(seeder, pi, 8), 0);
	ck_assert_int_eq(swarm_session_set_ranks(seeder, good, 2), 0);
	add(seeder, m, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *lt_ = add(leech, m, "leech", false);
	struct swarm_reader *r;

	ck_assert_int_eq(swarm_reader_new(lt_, 0, &r), 0);
	assert_read(r, "seed/r", 0, 1 * MiB, 10000);
	int n = swarm_session_peers(seeder, pi, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(pi[0].host, "127.0.0.1");
	ck_assert_uint_eq(pi[0].port, port_of(leech));
	ck_assert_int_eq(pi[0].rank, 2);
	ck_assert_uint_ge(pi[0].connections, 1);
	ck_assert_uint_ge(pi[0].total_uploaded, 1 * MiB);
	/* the leech ranked nobody: the seeder is rank 0 there, and it sent nothing */
	ck_assert_int_eq(swarm_session_peers(leech, pi, 8), 1);
	ck_assert_int_eq(pi[0].rank, 0);
	ck_assert_uint_ge(pi[0].total_downloaded, 1 * MiB);
	ck_assert_uint_eq(pi[0].total_uploaded, 0);
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
}
END_TEST

START_TEST(tracker_discovery_and_magnet)
{
	char *tdir = path_in("%s/%s", "tracker"), v1[41], v2[65];
	struct fixture_tracker *tr;
	struct swarm_metainfo *m = make_file("seed/doc", 2 * MiB, 65536, 12);

	ck_assert_int_eq(fixture_tracker_start(tdir, &tr), 0);
	hash_hex(m, v1, v2);
	ck_assert_int_eq(fixture_tracker_allow(tr, v1), 0);
	ck_assert_int_eq(fixture_tracker_allow(tr, v2), 0);
	const char *trackers[] = { fixture_tracker_url(tr), NULL };
	struct swarm_session *seeder = session(trackers, NULL, NULL);
	struct swarm_session *leech = session(trackers, NULL, NULL);
	add(seeder, m, "seed", true);
	struct swarm_torrent *t = add(leech, m, "leech", false);
	struct swarm_reader *r;

	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	assert_read(r, "seed/doc", 1 * MiB, 100000, 15000);
	swarm_reader_free(r);

	/* a magnet link (v2 hash) and a bare v1 infohash: metadata through BEP 9 */
	struct swarm_session *l2 = session(trackers, NULL, NULL);
	char *mag, *save = path_in("%s/%s", "mag");
	ck_assert_int_ge(asprintf(&mag, "magnet:?xt=urn:btmh:1220%s&dn=doc", v2), 0);
	struct swarm_add_params ap = { .magnet = mag, .save_path = save };
	struct swarm_torrent *mt;
	ck_assert_int_eq(swarm_torrent_add(l2, &ap, &mt), 0);
	ck_assert_int_eq(swarm_reader_new(mt, 0, &r), -EAGAIN);
	ck_assert_int_eq(swarm_torrent_wait_metadata(mt, 15000), 0);
	struct swarm_metainfo *got;
	ck_assert_int_eq(swarm_torrent_metainfo(mt, &got), 0);
	ck_assert_int_eq(memcmp(got->v2, m->v2, 32), 0);
	ck_assert_uint_eq(got->num_pieces, 32);
	swarm_metainfo_free(got);
	ck_assert_int_eq(swarm_reader_new(mt, 0, &r), 0);
	assert_read(r, "seed/doc", 5, 70000, 15000);
	swarm_reader_free(r);

	struct swarm_session *l3 = session(trackers, NULL, NULL);
	struct swarm_add_params ip = { .infohash = v1, .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(l3, &ip, &mt), 0);
	ck_assert_int_eq(swarm_torrent_wait_metadata(mt, 15000), 0);
	/* unknown infohash: metadata times out */
	struct swarm_add_params unk = { .infohash = "0123456789012345678901234567890123456789",
		                        .save_path = save };
	ck_assert_int_eq(swarm_torrent_add(l3, &unk, &mt), 0);
	ck_assert_int_eq(swarm_torrent_wait_metadata(mt, 300), -ETIMEDOUT);
	ck_assert_int_eq(swarm_torrent_remove(mt, false), 0);

	swarm_session_free(l3);
	swarm_session_free(l2);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	fixture_tracker_stop(tr);
	swarm_metainfo_free(m);
	free(mag), free(save), free(tdir);
}
END_TEST

struct async_res {
	pthread_mutex_t mu;
	int done, result;
};

static void async_cb(int result, void *ctx)
{
	struct async_res *a = ctx;

	pthread_mutex_lock(&a->mu);
	a->done++;
	a->result = result;
	pthread_mutex_unlock(&a->mu);
}

static bool wait_done(struct async_res *a, int timeout_ms)
{
	int64_t end = now_ms() + fixture_scaled_ms(timeout_ms);

	while (now_ms() < end) {
		pthread_mutex_lock(&a->mu);
		int done = a->done;
		pthread_mutex_unlock(&a->mu);
		if (done)
			return true;
		usleep(10000);
	}
	return false;
}

START_TEST(seeder_down_times_out_then_recovers)
{
	struct swarm_metainfo *m = make_file("seed/x", 4 * MiB, 65536, 13);
	uint16_t port;
	ck_assert_int_eq(fixture_port_free(&port), 0);
	char a[32];
	snprintf(a, sizeof a, "127.0.0.1:%u", port);
	const char *peers[] = { a, NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *t = add(leech, m, "leech", false);
	struct swarm_reader *r;
	char buf[1000];

	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	ck_assert_int_eq(swarm_read(r, buf, sizeof buf, 1 * MiB, 700), -ETIMEDOUT);

	/* cancellation of a pending asynchronous fetch */
	struct async_res ar = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	uint64_t id;
	ck_assert_int_eq(swarm_fetch(r, 2 * MiB, 100, 20000, async_cb, &ar, &id), 0);
	ck_assert_int_eq(swarm_fetch_cancel(r, id), 0);
	ck_assert(wait_done(&ar, 2000));
	pthread_mutex_lock(&ar.mu);
	ck_assert_int_eq(ar.done, 1);
	ck_assert_int_eq(ar.result, -ECANCELED);
	pthread_mutex_unlock(&ar.mu);
	ck_assert_int_eq(swarm_fetch_cancel(r, id), -ENOENT);

	/* the seeder comes up on the static peer's port while a read waits */
	struct swarm_config c;
	struct swarm_session *seeder;
	swarm_config_init(&c);
	c.listen_interface = "127.0.0.1";
	c.listen_port = port;
	ck_assert_int_eq(swarm_session_new(&c, &seeder), 0);
	add(seeder, m, "seed", true);
	assert_read(r, "seed/x", 1 * MiB, sizeof buf, 15000);
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
}
END_TEST

START_TEST(seeder_killed_mid_stream_second_finishes)
{
	struct swarm_metainfo *m = make_file("seed/s", 24 * MiB, 65536, 14);
	struct swarm_session *s1 = session(NULL, NULL, NULL), *s2 = session(NULL, NULL, NULL);
	char a1[32], a2[32];
	add(s1, m, "seed", true);
	add(s2, m, "seed", true);
	const char *peers[] = { addr_of(s1, a1), NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *t = add(leech, m, "leech", false);
	struct swarm_reader *r;
	size_t chunk = 256 * 1024;
	char *buf = malloc(chunk);

	(void)addr_of(s2, a2);
	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	for (uint64_t off = 0; off < 24 * MiB; off += chunk) {
		if (off == 4 * MiB) {
			swarm_session_free(s1); /* the only seeder it knows dies */
			s1 = NULL;
			ck_assert_int_eq(swarm_torrent_connect(t, "127.0.0.1", port_of(s2)), 0);
		}
		ssize_t n = swarm_read(r, buf, chunk, off, 15000);
		ck_assert_msg(n == (ssize_t)chunk, "read at %llu: %zd", (unsigned long long)off, n);
		void *want = file_bytes("seed/s", off, chunk);
		ck_assert_int_eq(memcmp(buf, want, chunk), 0);
		free(want);
	}
	free(buf);
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(s2);
	swarm_metainfo_free(m);
}
END_TEST

/* How many of pieces [first, end) t has. */
static unsigned pieces_in(struct swarm_torrent *t, uint32_t first, uint32_t end)
{
	unsigned n = 0;

	for (uint32_t p = first; p < end; p++)
		n += swarm_torrent_has_piece(t, p);
	return n;
}

/* A seeder of a 16 MiB file of 64 KiB pieces and a leech reading it through one
 * reader: the read-ahead tests' set-up. */
struct ra_rig {
	struct swarm_metainfo *m;
	struct swarm_session *seeder, *leech;
	struct swarm_torrent *t;
	struct swarm_reader *r;
	char addr[32];
};

static void ra_rig_up(struct ra_rig *g, const char *file, uint32_t seed)
{
	g->m = make_file(file, 16 * MiB, 65536, seed);
	g->seeder = session(NULL, NULL, NULL);
	add(g->seeder, g->m, "seed", true);
	const char *peers[] = { addr_of(g->seeder, g->addr), NULL };
	g->leech = session(NULL, peers, NULL);
	g->t = add(g->leech, g->m, "leech", false);
	ck_assert_int_eq(swarm_reader_new(g->t, 0, &g->r), 0);
	/* forward, a piece at a time: the window doubles up to readahead_max */
	for (uint64_t off = 0; off < 2 * MiB; off += 65536)
		assert_read(g->r, file, off, 65536, 10000);
}

static void ra_rig_down(struct ra_rig *g)
{
	swarm_reader_free(g->r);
	swarm_session_free(g->leech);
	swarm_session_free(g->seeder);
	swarm_metainfo_free(g->m);
	readahead_max = 0;
	stream_max = 0;
}

START_TEST(readahead_grows_forward_and_resets_on_seek)
{
	struct ra_rig g;

	/* a window of 16 pieces: it fills, and nothing of it is still on the wire when
	 * the seek's bytes are counted (with the 16 MiB default, the whole file would be
	 * in flight, and a loaded machine delivers it after the count began) */
	readahead_max = 16 * 65536;
	ra_rig_up(&g, "seed/ra", 21);
	FIXTURE_WAIT(pieces_in(g.t, 32, 48) == 16, 10000, "only %u pieces read ahead",
	             pieces_in(g.t, 32, 48));
	ck_assert_uint_eq(pieces_in(g.t, 48, 256), 0); /* the cap holds */

	/* a seek far away: back to one piece of read-ahead */
	uint64_t before = downloaded(g.t);
	assert_read(g.r, "seed/ra", 14 * MiB + 100, 1000, 10000);
	/* the one piece of read-ahead after it lands; nothing beyond may come with it */
	FIXTURE_WAIT(swarm_torrent_has_piece(g.t, 225), 10000, "no read-ahead after the seek");
	uint64_t got = downloaded(g.t) - before;
	ck_assert_msg(got <= 3 * 65536, "a read after a seek downloaded %llu bytes",
	              (unsigned long long)got);
	ra_rig_down(&g);
}
END_TEST

/* A reader that has gone forward until its window is at its cap streams: the rest of
 * the file (within stream_max) is fetched without being read; the test above, without
 * stream_max, is the case where the cap holds. */
START_TEST(forward_reader_streams_the_rest)
{
	struct ra_rig g;

	readahead_max = 16 * 65536;
	stream_max = 16 * MiB;
	ra_rig_up(&g, "seed/st", 22);
	FIXTURE_WAIT(pieces_in(g.t, 0, 256) == 256, 20000,
	             "a streaming reader has %u of 256 pieces", pieces_in(g.t, 0, 256));
	/* and what came unread reads back right */
	assert_read(g.r, "seed/st", 15 * MiB + 123, 4096, 10000);
	ra_rig_down(&g);
}
END_TEST

/* Fan-out (issue 18): FAN_READERS leeches read one file of the seeder's at once, start to
 * end in 128 KiB reads as cat does, each knowing the seeder and the leeches made before
 * it. They fetch different pieces of their windows first and trade them: the seeder
 * sends well under one copy each (1.8-2.9 copies of 4 here; 4 if they did not trade).
 * How few copies depends on where libtorrent asks (deadlines, priorities): that shows
 * with 10 processes, in scripts/bench/fanout.sh, not with every session in one. */
#define FAN_READERS 4
#define FAN_SIZE    (16 * MiB)

struct fan_job {
	struct swarm_reader *r;
	pthread_barrier_t *go;
	int ok;
};

static void *fan_reader(void *arg)
{
	struct fan_job *j = arg;
	size_t len = 128 * 1024;
	char *buf = malloc(len);
	char *want = file_bytes("seed/fan", 0, FAN_SIZE);

	j->ok = 1;
	pthread_barrier_wait(j->go);
	for (uint64_t off = 0; off < FAN_SIZE && j->ok; off += len)
		if (swarm_read(j->r, buf, len, off, 20000) != (ssize_t)len ||
		    memcmp(buf, want + off, len))
			j->ok = 0;
	free(want);
	free(buf);
	return NULL;
}

/* t's payload uploaded, once it has stopped moving: libtorrent adds a second's
 * transfer to the total at its once-a-second tick */
static uint64_t settled_upload(struct swarm_torrent *t)
{
	struct swarm_torrent_stats a, b;

	ck_assert_int_eq(swarm_torrent_stats(t, &a), 0);
	for (int i = 0; i < 20; i++) {
		fixture_sleep_ms(1500);
		ck_assert_int_eq(swarm_torrent_stats(t, &b), 0);
		if (a.total_uploaded == b.total_uploaded)
			return b.total_uploaded;
		a = b;
	}
	ck_abort_msg("the upload count never settled");
	return 0;
}

START_TEST(fanout_readers_trade)
{
	struct swarm_metainfo *m = make_file("seed/fan", FAN_SIZE, 65536, 23);
	struct swarm_session *seeder, *leech[FAN_READERS];
	struct swarm_torrent *st, *t[FAN_READERS];
	struct fan_job jobs[FAN_READERS];
	pthread_t th[FAN_READERS];
	pthread_barrier_t go;
	char addr[FAN_READERS + 1][32];
	const char *peers[FAN_READERS + 2] = { NULL };
	struct swarm_torrent_stats ss;

	readahead_max = 16 * 65536; /* streams from its fifth piece */
	stream_max = FAN_SIZE;
	seeder = session(NULL, NULL, NULL);
	st = add(seeder, m, "seed", true);
	peers[0] = addr_of(seeder, addr[0]);
	for (int i = 0; i < FAN_READERS; i++) {
		char sub[16];
		leech[i] = session(NULL, peers, NULL);
		snprintf(sub, sizeof sub, "leech%d", i);
		t[i] = add(leech[i], m, sub, false);
		peers[i + 1] = addr_of(leech[i], addr[i + 1]);
	}
	for (int i = 0; i < FAN_READERS; i++)
		FIXTURE_WAIT(swarm_torrent_stats(t[i], &ss) == 0 && ss.peers == FAN_READERS, 20000,
		             "leech %d has %u peers of %d", i, ss.peers, FAN_READERS);
	pthread_barrier_init(&go, NULL, FAN_READERS);
	for (int i = 0; i < FAN_READERS; i++) {
		jobs[i] = (struct fan_job){ NULL, &go, 0 };
		ck_assert_int_eq(swarm_reader_new(t[i], 0, &jobs[i].r), 0);
		pthread_create(&th[i], NULL, fan_reader, &jobs[i]);
	}
	for (int i = 0; i < FAN_READERS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(jobs[i].ok, "reader %d got an error or wrong bytes", i);
		swarm_reader_free(jobs[i].r);
	}
	uint64_t up = settled_upload(st);
	ck_assert_msg(up * 8 <= (uint64_t)FAN_SIZE * FAN_READERS * 7,
	              "the seeder sent %.2f copies to %d readers", (double)up / FAN_SIZE,
	              FAN_READERS);
	for (int i = 0; i < FAN_READERS; i++)
		swarm_session_free(leech[i]);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
	pthread_barrier_destroy(&go);
	readahead_max = 0;
	stream_max = 0;
}
END_TEST

/* ---- a plain BitTorrent peer on the wire, for what a node answers to a request ---- */

/* n bytes from fd within ms, or false */
static bool wire_read(int fd, void *buf, size_t n, int ms)
{
	uint8_t *p = buf;
	int64_t end = fixture_now_ms() + ms;

	while (n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t now = fixture_now_ms();
		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
			return false;
		ssize_t k = read(fd, p, n);
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

static void wire_send(int fd, const void *buf, size_t n)
{
	ck_assert_int_eq(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* One message (its id, -1 for a keep-alive) and up to 16 bytes of its body into body;
 * the rest is read and dropped. */
static int wire_message(int fd, uint8_t body[16], int ms)
{
	uint8_t hdr[4], junk[4096];
	ck_assert_msg(wire_read(fd, hdr, 4, ms), "no message from the node");
	uint32_t len =
	    (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0)
		return -1;
	uint8_t id;
	ck_assert(wire_read(fd, &id, 1, ms));
	len--;
	size_t head = len < 16 ? len : 16;
	ck_assert(wire_read(fd, body, head, ms));
	for (len -= (uint32_t)head; len;) {
		size_t k = len < sizeof junk ? len : sizeof junk;
		ck_assert(wire_read(fd, junk, k, ms));
		len -= (uint32_t)k;
	}
	return id;
}

/* Connect to port as a peer of m that has nothing and wants it (with the fast extension
 * or without), and wait until it is unchoked. */
static int wire_peer(uint16_t port, const struct swarm_metainfo *m, bool fast)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint8_t hs[68] = { 19 }, reply[68], body[16];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	memcpy(hs + 1, "BitTorrent protocol", 19);
	hs[20 + 7] = fast ? 0x04 : 0; /* fast extension */
	memcpy(hs + 28, m->has_v1 ? m->v1 : m->v2, 20);
	memcpy(hs + 48, "-WI0001-wirepeer0001", 20);
	wire_send(fd, hs, sizeof hs);
	ck_assert_msg(wire_read(fd, reply, sizeof reply, 10000), "no handshake back");
	const uint8_t none[] = { 0, 0, 0, 1, 15 }, interested[] = { 0, 0, 0, 1, 2 };
	if (fast) /* have none is the fast extension's; without it, no bitfield says it */
		wire_send(fd, none, sizeof none);
	wire_send(fd, interested, sizeof interested);
	while (wire_message(fd, body, 10000) != 1) /* unchoke */
		;
	return fd;
}

/* Ask for block `block` of piece 0: 7 (the piece) or 16 (rejected). */
static int wire_ask(int fd, uint32_t block)
{
	uint32_t begin = block * 16384;
	uint8_t req[17] = { 0, 0, 0, 13, 6, 0, 0, 0, 0 }, body[16];

	req[9] = (uint8_t)(begin >> 24);
	req[10] = (uint8_t)(begin >> 16);
	req[11] = (uint8_t)(begin >> 8);
	req[12] = (uint8_t)begin;
	req[15] = 0x40; /* 16384 */
	wire_send(fd, req, sizeof req);
	for (;;) {
		int id = wire_message(fd, body, 10000);
		if ((id == 7 || id == 16) && !memcmp(body, req + 5, 8))
			return id;
	}
}

/* Issue 18's fan-out: a node holding every piece, asked for a block of a piece that
 * another of its peers holds while still downloading, refuses it the first time that
 * peer asks (so it asks the holder), and serves it when asked again; a peer with no
 * other source, or whose other source is a seed, is served at once. */
START_TEST(block_another_peer_holds_refused_once)
{
	struct swarm_metainfo *m = make_file("seed/spread", 4 * MiB, 256 * 1024, 31);
	struct swarm_session *seeder = session(NULL, NULL, NULL), *other, *leech;
	struct swarm_torrent *st, *lt;
	struct swarm_torrent_stats ss;
	struct swarm_reader *r;
	char a[32], buf[4096];

	st = add(seeder, m, "seed", true);
	int fd = wire_peer(port_of(seeder), m, true);
	ck_assert_int_eq(wire_ask(fd, 0), 7); /* nobody else has it: served */

	/* another seed: it would only send the asker back */
	const char *peers[] = { addr_of(seeder, a), NULL };
	other = session(NULL, peers, NULL);
	add(other, m, "seed", true);
	FIXTURE_WAIT(swarm_torrent_stats(st, &ss) == 0 && ss.peers == 2, 20000,
	             "the seeder has %u peers of 2", ss.peers);
	ck_assert_int_eq(wire_ask(fd, 1), 7);
	swarm_session_free(other);

	/* a leech that has read piece 0: the seeder's first answer for a block of it is no */
	leech = session(NULL, peers, NULL);
	lt = add(leech, m, "leech", false);
	ck_assert_int_eq(swarm_reader_new(lt, 0, &r), 0);
	ck_assert_int_eq(swarm_read(r, buf, sizeof buf, 0, 10000), (ssize_t)sizeof buf);
	uint32_t b = 2;
	while (b < 16 && wire_ask(fd, b) == 7) /* until the seeder has its HAVE */
		b++;
	ck_assert_msg(b < 16, "no block of piece 0 was refused");
	ck_assert_int_eq(wire_ask(fd, b), 7); /* asked again: served */
	if (b + 1 < 16) {
		ck_assert_int_eq(wire_ask(fd, b + 1), 16); /* each block once */
		ck_assert_int_eq(wire_ask(fd, b + 1), 7);
	}
	/* tried: a peer without the fast extension, to whom a reject cannot be said (its
	 * request would wait out its timeout): every block of piece 0 served at once
	 * (without that gate: "no message from the node" after 10 s) */
	int plain = wire_peer(port_of(seeder), m, false);
	for (uint32_t k = 0; k < 4; k++)
		ck_assert_int_eq(wire_ask(plain, k), 7);
	close(plain);
	close(fd);
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
}
END_TEST

struct reader_job {
	struct swarm_reader *r;
	const char *orig;
	uint64_t start;
	int ok;
};

static void *reader_thread(void *arg)
{
	struct reader_job *j = arg;
	size_t len = 100000;
	char *buf = malloc(len);

	j->ok = 1;
	for (int i = 0; i < 10; i++) {
		uint64_t off = j->start + (uint64_t)i * 300000;
		void *want = file_bytes(j->orig, off, len);
		if (swarm_read(j->r, buf, len, off, 15000) != (ssize_t)len ||
		    memcmp(buf, want, len))
			j->ok = 0;
		free(want);
	}
	free(buf);
	return NULL;
}

START_TEST(concurrent_readers)
{
	struct swarm_metainfo *m1 = make_file("seed/one", 8 * MiB, 65536, 15);
	struct swarm_metainfo *m2 = make_file("seed/two", 8 * MiB, 65536, 16);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char a[32];
	add(seeder, m1, "seed", true);
	add(seeder, m2, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *t1 = add(leech, m1, "leech", false);
	struct swarm_torrent *t2 = add(leech, m2, "leech", false);
	struct reader_job jobs[4] = { { NULL, "seed/one", 0, 0 },
		                      { NULL, "seed/one", 4 * MiB, 0 },
		                      { NULL, "seed/two", 0, 0 },
		                      { NULL, "seed/two", 1 * MiB, 0 } };
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(swarm_reader_new(i < 2 ? t1 : t2, 0, &jobs[i].r), 0);
		pthread_create(&th[i], NULL, reader_thread, &jobs[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(jobs[i].ok, "reader %d got an error or wrong bytes", i);
		swarm_reader_free(jobs[i].r);
	}
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m1);
	swarm_metainfo_free(m2);
}
END_TEST

/* ---- forget, resume, corruption ---- */

START_TEST(forget_refetches_and_never_serves)
{
	struct swarm_metainfo *m = make_file("seed/f", 4 * MiB, 65536, 17);
	pex = false; /* leaf below must reach the seeder through mid only */
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	struct events ev = { .mu = PTHREAD_MUTEX_INITIALIZER };
	char a[32];
	add(seeder, m, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *mid = session(NULL, peers, &ev);
	struct swarm_torrent *t = add(mid, m, "mid", false);
	struct swarm_reader *r;

	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	assert_read(r, "seed/f", 10 * 65536, 65536, 10000);
	ck_assert(swarm_torrent_has_piece(t, 10));
	ck_assert_int_ge(events_get(&ev, &ev.pieces), 1);

	/* the cache evicts piece 10: a hole in the file, then forget */
	uint32_t p = 10;
	ck_assert_int_eq(swarm_torrent_forget(t, &p, 1), 0);
	ck_assert(!swarm_torrent_has_piece(t, 10));
	char *f = path_in("%s/%s", "mid/f");
	int fd = open(f, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10 * 65536, 65536), 0);
	close(fd);
	char b[100];
	ck_assert_int_eq(swarm_reader_pread(r, b, sizeof b, 10 * 65536), -ENODATA);
	uint32_t bad = 9999;
	ck_assert_int_eq(swarm_torrent_forget(t, &bad, 1), -EINVAL);

	/* a third node that can only reach `mid` never gets piece 10 from it */
	const char *peers2[] = { addr_of(mid, a), NULL };
	struct swarm_session *leaf = session(NULL, peers2, NULL);
	struct swarm_torrent *lt2 = add(leaf, m, "leaf", false);
	struct swarm_reader *r2;
	ck_assert_int_eq(swarm_reader_new(lt2, 0, &r2), 0);
	char big[65536];
	ck_assert_int_eq(swarm_read(r2, big, sizeof big, 10 * 65536, 2000), -ETIMEDOUT);

	/* mid reads it again: downloaded anew from the seeder, right bytes */
	assert_read(r, "seed/f", 10 * 65536, 65536, 10000);
	ck_assert(swarm_torrent_has_piece(t, 10));
	/* and now leaf gets it too */
	assert_read(r2, "seed/f", 10 * 65536, 65536, 10000);
	swarm_reader_free(r2);
	swarm_reader_free(r);
	swarm_session_free(leaf);
	swarm_session_free(mid);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
	free(f);
}
END_TEST

/* Whether t has every piece in [first, end). */
static bool has_pieces(struct swarm_torrent *t, uint32_t first, uint32_t end)
{
	for (uint32_t p = first; p < end; p++)
		if (!swarm_torrent_has_piece(t, p))
			return false;
	return true;
}

/* Pieces a torrent of one file downloads are written through a descriptor the session
 * keeps (swarm_disk.cpp). Tried: the data file unlinked under the live torrent (as the
 * cache drops an object, or adopts a file over it) after a first piece was written; a
 * descriptor kept blindly would write the next pieces into the unlinked file, where
 * nothing finds them, and the piece would still pass its hash (read back through the
 * same descriptor). They must land in a file at the path. */
START_TEST(unlinked_data_file_gets_later_pieces)
{
	struct swarm_metainfo *m = make_file("seed/f", 16 * MiB, 65536, 23);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char a[32];
	add(seeder, m, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *t = add(leech, m, "leech", false);
	struct swarm_reader *r;
	char *f = path_in("%s/%s", "leech/f");
	const uint64_t at = 12 * MiB, len = 2 * MiB;
	char *b = malloc(len);

	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	assert_read(r, "seed/f", 1 * MiB, 65536, 10000);
	ck_assert(!swarm_torrent_has_piece(t, at / 65536));
	ck_assert_int_eq(unlink(f), 0);
	/* 32 pieces: libtorrent may close its files meanwhile (a pause, a check), after
	 * which any descriptor is opened anew; the pieces written before that must be at
	 * the path too (without the check for an unlinked file this fails in 6 of 8 runs
	 * here: the rest had libtorrent close the file first). The reader keeps its own descriptor
	 * of the unlinked file, so what it returns is not the point: the download it asks for. */
	(void)swarm_read(r, b, len, at, 10000);
	FIXTURE_WAIT(has_pieces(t, at / 65536, (at + len) / 65536), 10000,
	             "pieces %llu-%llu never all came", (unsigned long long)(at / 65536),
	             (unsigned long long)((at + len) / 65536 - 1));
	/* the bytes are in the file the path names now */
	void *want = file_bytes("seed/f", at, len);
	ck_assert_msg(access(f, F_OK) == 0, "no file at the path: the pieces went elsewhere");
	void *got = file_bytes("leech/f", at, len);
	ck_assert_msg(memcmp(want, got, len) == 0, "pieces not in the file at the path");
	free(want);
	free(got);
	free(b);
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
	free(f);
}
END_TEST

START_TEST(restart_keeps_verified_pieces)
{
	struct swarm_metainfo *m = make_file("seed/r", 4 * MiB, 65536, 18);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char a[32];
	add(seeder, m, "seed", true);
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *s = session(NULL, peers, NULL);
	struct swarm_torrent *t = add(s, m, "leech", false);
	struct swarm_reader *r;
	uint8_t have[8];

	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	assert_read(r, "seed/r", 0, 200000, 10000);
	assert_read(r, "seed/r", 3 * MiB, 100000, 10000);
	ck_assert_int_eq(swarm_torrent_have(t, have, sizeof have), 64);
	ck_assert_int_eq(swarm_torrent_have(t, have, 2), -ERANGE);
	swarm_reader_free(r);
	swarm_session_free(s);
	swarm_session_free(seeder);

	/* restart alone: the verified pieces are read without any peer */
	s = session(NULL, NULL, NULL);
	char *save = path_in("%s/%s", "leech");
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = save,
		                       .have = have,
		                       .have_bits = 64 };
	ck_assert_int_eq(swarm_torrent_add(s, &ap, &t), 0);
	ck_assert(swarm_torrent_has_piece(t, 0));
	ck_assert(swarm_torrent_has_piece(t, 48));
	ck_assert(!swarm_torrent_has_piece(t, 20));
	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	assert_read(r, "seed/r", 0, 200000, 2000);
	assert_read(r, "seed/r", 3 * MiB, 100000, 2000);
	ck_assert_uint_eq(downloaded(t), 0);
	struct swarm_torrent_stats st;
	ck_assert_int_eq(swarm_torrent_stats(t, &st), 0);
	ck_assert_int_ne(st.state, SWARM_STATE_CHECKING);
	swarm_reader_free(r);
	swarm_session_free(s);
	swarm_metainfo_free(m);
	free(save);
}
END_TEST

START_TEST(corrupt_piece_never_returned)
{
	struct swarm_metainfo *m = make_file("seed/c", 2 * MiB, 65536, 19);
	/* the seeder's copy has piece 5 damaged on disk, and it claims every piece
	 * verified (a have bitmap), so it sends the damaged bytes */
	char *f = path_in("%s/%s", "seed/c");
	int fd = open(f, O_RDWR);
	ck_assert_int_eq(pwrite(fd, "XXXXXXXX", 8, 5 * 65536 + 100), 8);
	close(fd);
	struct swarm_session *seeder = session(NULL, NULL, NULL);
	char *save = path_in("%s/%s", "seed");
	uint8_t have[4] = { 0xff, 0xff, 0xff, 0xff };
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = save,
		                       .have = have,
		                       .have_bits = 32 };
	struct swarm_torrent *st;
	ck_assert_int_eq(swarm_torrent_add(seeder, &ap, &st), 0);
	char a[32];
	const char *peers[] = { addr_of(seeder, a), NULL };
	struct swarm_session *leech = session(NULL, peers, NULL);
	struct swarm_torrent *t = add(leech, m, "leech", false);
	struct swarm_reader *r;
	char buf[1000];

	ck_assert_int_eq(swarm_reader_new(t, 0, &r), 0);
	/* a good piece arrives; the damaged one never does */
	ck_assert_int_eq(swarm_read(r, buf, sizeof buf, 2 * 65536, 10000), (ssize_t)sizeof buf);
	ssize_t n = swarm_read(r, buf, sizeof buf, 5 * 65536, 3000);
	ck_assert_msg(n < 0, "a damaged piece was returned (%zd)", n);
	ck_assert(!swarm_torrent_has_piece(t, 5));
	swarm_reader_free(r);
	swarm_session_free(leech);
	swarm_session_free(seeder);
	swarm_metainfo_free(m);
	free(f), free(save);
}
END_TEST

/* ---- extension channel ---- */

/* The drive torrent: a v2 torrent whose one file is dir/genesis, the genesis block. */
static struct swarm_metainfo *drive_torrent(void)
{
	char *g = path_in("%s/%s", "genesis");
	struct swarm_make_params mp = { .kind = SWARM_MAKE_V2 };
	struct swarm_metainfo *m;

	ck_assert_int_eq(fixture_file_random(g, 1000, 20), 0);
	ck_assert_int_eq(swarm_metainfo_make(g, &mp, &m), 0);
	free(g);
	return m;
}

/* A member of the drive: seeds it from dir on the extension channel. */
static struct swarm_torrent *drive_join(struct swarm_session *s, struct swarm_metainfo *m)
{
	char *save = path_in("%s/%s", "");
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = save,
		                       .seed = true,
		                       .ext_channel = true };
	struct swarm_torrent *t;

	ck_assert_int_eq(swarm_torrent_add(s, &ap, &t), 0);
	free(save);
	return t;
}

static uint64_t last_peer(struct events *e)
{
	uint64_t v;

	pthread_mutex_lock(&e->mu);
	v = e->last_peer;
	pthread_mutex_unlock(&e->mu);
	return v;
}

START_TEST(extension_channel_two_and_three)
{
	struct swarm_metainfo *m = drive_torrent();
	struct events e[3] = { { .mu = PTHREAD_MUTEX_INITIALIZER },
		               { .mu = PTHREAD_MUTEX_INITIALIZER },
		               { .mu = PTHREAD_MUTEX_INITIALIZER } };
	struct swarm_session *s[3];
	struct swarm_torrent *t[3];
	char a[32];

	s[0] = session(NULL, NULL, &e[0]);
	const char *peers[] = { addr_of(s[0], a), NULL };
	s[1] = session(NULL, peers, &e[1]);
	for (int i = 0; i < 2; i++)
		t[i] = drive_join(s[i], m);
	ck_assert(wait_events(&e[0], &e[0].joins, 1, 10000));
	ck_assert(wait_events(&e[1], &e[1].joins, 1, 10000));
	uint64_t p01 = last_peer(&e[1]);
	ck_assert_ptr_eq(e[1].last_t, t[1]);
	ck_assert_int_eq(swarm_ext_send(t[1], p01, "ping", 4), 0);
	ck_assert(wait_events(&e[0], &e[0].msgs, 1, 5000));
	ck_assert(wait_events(&e[1], &e[1].msgs, 1, 5000));
	ck_assert_uint_eq(e[1].last_len, 4);
	ck_assert_int_eq(memcmp(e[1].last_msg, "pong", 4), 0);

	/* size cap, unknown peer */
	char *huge = calloc(1, 2 * MiB);
	ck_assert_int_eq(swarm_ext_send(t[1], p01, huge, 2 * MiB), -EMSGSIZE);
	ck_assert_int_eq(swarm_ext_send(t[1], 987654, "x", 1), -ENOTCONN);
	/* a big message within the cap */
	ck_assert_int_eq(swarm_ext_send(t[1], p01, huge, 512 * 1024), 0);
	ck_assert(wait_events(&e[0], &e[0].msgs, 2, 5000));
	ck_assert_uint_eq(e[0].last_len, 512 * 1024);
	free(huge);

	/* a third member joins through the first */
	s[2] = session(NULL, peers, &e[2]);
	t[2] = drive_join(s[2], m);
	ck_assert(wait_events(&e[2], &e[2].joins, 1, 10000));
	ck_assert(wait_events(&e[0], &e[0].joins, 2, 10000));
	ck_assert_int_eq(swarm_ext_broadcast(t[0], "hello", 5), 2);
	ck_assert(wait_events(&e[2], &e[2].msgs, 1, 5000));
	ck_assert_int_eq(memcmp(e[2].last_msg, "hello", 5), 0);
	struct swarm_torrent_stats st;
	ck_assert_int_eq(swarm_torrent_stats(t[0], &st), 0);
	ck_assert_uint_eq(st.ext_peers, 2);

	/* a member leaves: the others hear of it */
	swarm_session_free(s[2]);
	ck_assert(wait_events(&e[0], &e[0].leaves, 1, 10000));
	swarm_session_free(s[1]);
	swarm_session_free(s[0]);
	swarm_metainfo_free(m);
}
END_TEST

/* A torrent on the extension channel (a drive's) starts dialling like a reader's
 * (dial_now): the peers the session knows (swarm_session_set_peers: the members) with
 * the static ones, as it starts. The member here is known in no other way (no static
 * peer, tracker, PEX, DHT or LSD), so the channel only comes up through that start;
 * it used to wait for libtorrent's round of new connections, up to a second after a
 * mount, and never got the session's peers. */
START_TEST(extension_channel_dials_known_peers)
{
	struct swarm_metainfo *m = drive_torrent();
	struct events e[2] = { { .mu = PTHREAD_MUTEX_INITIALIZER },
		               { .mu = PTHREAD_MUTEX_INITIALIZER } };
	struct swarm_session *s[2];
	struct swarm_torrent *t[2];
	char a[32];

	pex = false;
	s[0] = session(NULL, NULL, &e[0]);
	s[1] = session(NULL, NULL, &e[1]);
	const char *known[] = { addr_of(s[0], a), NULL };
	ck_assert_int_eq(swarm_session_set_peers(s[1], known), 0);
	t[0] = drive_join(s[0], m);
	t[1] = drive_join(s[1], m);
	ck_assert_msg(wait_events(&e[1], &e[1].joins, 1, 10000),
	              "the drive torrent never reached the member the session knows");
	ck_assert_ptr_eq(e[1].last_t, t[1]);
	ck_assert(wait_events(&e[0], &e[0].joins, 1, 10000));
	swarm_session_free(s[1]);
	swarm_session_free(s[0]);
	swarm_metainfo_free(m);
}
END_TEST

/* What was tried: a peer whose own cap is larger (so its sender's guard lets a 512 KiB
 * message through) sends it to a node that takes 64 KiB at most. The receiver must not
 * deliver it: it drops the peer. */
START_TEST(extension_receiver_drops_oversized)
{
	struct swarm_metainfo *m = drive_torrent();
	struct events e[2] = { { .mu = PTHREAD_MUTEX_INITIALIZER },
		               { .mu = PTHREAD_MUTEX_INITIALIZER } };
	struct swarm_session *s[2];
	struct swarm_torrent *t[2];
	char a[32], *big = calloc(1, 512 * 1024);

	ext_max = 64 * 1024;
	s[0] = session(NULL, NULL, &e[0]);
	ext_max = 0;
	const char *peers[] = { addr_of(s[0], a), NULL };
	s[1] = session(NULL, peers, &e[1]);
	for (int i = 0; i < 2; i++)
		t[i] = drive_join(s[i], m);
	ck_assert(wait_events(&e[0], &e[0].joins, 1, 10000));
	ck_assert(wait_events(&e[1], &e[1].joins, 1, 10000));
	/* within both caps: delivered */
	ck_assert_int_eq(swarm_ext_send(t[1], last_peer(&e[1]), "small", 5), 0);
	ck_assert(wait_events(&e[0], &e[0].msgs, 1, 5000));
	/* past the receiver's: the sender lets it go, the receiver drops the peer */
	ck_assert_int_eq(swarm_ext_send(t[1], last_peer(&e[1]), big, 512 * 1024), 0);
	ck_assert_msg(wait_events(&e[0], &e[0].leaves, 1, 10000),
	              "the receiver kept a peer that sent an oversized message");
	ck_assert_int_eq(events_get(&e[0], &e[0].msgs), 1);
	ck_assert_uint_eq(e[0].last_len, 5);
	swarm_session_free(s[1]);
	swarm_session_free(s[0]);
	swarm_metainfo_free(m);
	free(big);
}
END_TEST

START_TEST(extension_peer_addr_and_drop)
{
	struct swarm_metainfo *m = drive_torrent();
	struct events e[2] = { { .mu = PTHREAD_MUTEX_INITIALIZER },
		               { .mu = PTHREAD_MUTEX_INITIALIZER } };
	struct swarm_session *s[2];
	struct swarm_torrent *t[2];
	uint64_t p[2];
	char a[32], host[46], tiny[9] = "x";
	uint16_t port;

	/* B dials A: A learns B's port from B's handshake, B knows the one it dialled */
	s[0] = session(NULL, NULL, &e[0]);
	const char *peers[] = { addr_of(s[0], a), NULL };
	s[1] = session(NULL, peers, &e[1]);
	for (int i = 0; i < 2; i++)
		t[i] = drive_join(s[i], m);
	for (int i = 0; i < 2; i++) {
		ck_assert(wait_events(&e[i], &e[i].joins, 1, 10000));
		p[i] = last_peer(&e[i]);
		ck_assert_int_eq(swarm_ext_peer_addr(t[i], p[i], host, sizeof host, &port), 0);
		ck_assert_str_eq(host, "127.0.0.1");
		ck_assert_uint_eq(port, port_of(s[1 - i]));
	}

	/* unknown peer, buffer too small: the outputs stay as they were */
	port = 7;
	ck_assert_int_eq(swarm_ext_peer_addr(t[0], 987654, host, sizeof host, &port), -ENOTCONN);
	ck_assert_int_eq(swarm_ext_peer_addr(t[0], p[0], tiny, sizeof tiny, &port), -ERANGE);
	ck_assert_str_eq(tiny, "x");
	ck_assert_uint_eq(port, 7);
	ck_assert_int_eq(swarm_ext_drop(t[0], 987654), -ENOTCONN);

	/* A drops B: both sides hear it leave (libtorrent may dial again later, under a
	 * new id) */
	ck_assert_int_eq(swarm_ext_drop(t[0], p[0]), 0);
	ck_assert(wait_events(&e[0], &e[0].leaves, 1, 10000));
	ck_assert(wait_events(&e[1], &e[1].leaves, 1, 10000));
	ck_assert_int_eq(swarm_ext_peer_addr(t[0], p[0], host, sizeof host, &port), -ENOTCONN);
	ck_assert_int_eq(swarm_ext_drop(t[0], p[0]), -ENOTCONN);

	swarm_session_free(s[1]);
	swarm_session_free(s[0]);
	swarm_metainfo_free(m);
}
END_TEST

/* A hasher fed piece by piece (out of order) makes the torrent swarm_metainfo_make makes
 * by reading the file: the same infohashes, for files smaller than a piece, of whole
 * pieces, of a short last block and a short last piece. */
START_TEST(hasher_matches_make)
{
	static const uint64_t sizes[] = { 1, 16384, 16385, 100000, 2 * MiB, 3 * MiB + 12345 };

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct swarm_metainfo *m = make_file("h/data.bin", sizes[i], 0, (uint32_t)i), *got;
		char *p = path_in("%s/%s", "h/data.bin");
		uint32_t pl = swarm_make_piece_length(sizes[i]);
		struct swarm_hasher *h;
		uint8_t *buf = malloc(pl);
		FILE *f = fopen(p, "rb");

		ck_assert_uint_eq(pl, m->piece_length);
		ck_assert_int_eq(swarm_hasher_new(sizes[i], pl, SWARM_MAKE_HYBRID, &h), 0);
		for (uint32_t k = m->num_pieces; k-- > 0;) {
			size_t n =
			    (size_t)(sizes[i] - (uint64_t)k * pl < pl ? sizes[i] - (uint64_t)k * pl
			                                              : pl);

			ck_assert_int_eq(fseek(f, (long)k * pl, SEEK_SET), 0);
			ck_assert_uint_eq(fread(buf, 1, n, f), n);
			/* the leaves handed out are each block's SHA-256 */
			size_t nl = (n + 16383) / 16384;
			uint8_t(*leaves)[32] = malloc(nl * 32);

			ck_assert_int_eq(swarm_hasher_piece(h, k, buf, n, leaves), 0);
			for (size_t b = 0; b < nl; b++) {
				uint8_t md[32];
				size_t bl = n - b * 16384 < 16384 ? n - b * 16384 : 16384;

				ck_assert_int_eq(
				    EVP_Digest(buf + b * 16384, bl, md, NULL, EVP_sha256(), NULL),
				    1);
				ck_assert_mem_eq(leaves[b], md, 32);
			}
			free(leaves);
		}
		ck_assert_int_eq(swarm_hasher_finish(h, "data.bin", NULL, &got), 0);
		ck_assert_mem_eq(got->v1, m->v1, 20);
		ck_assert_mem_eq(got->v2, m->v2, 32);
		ck_assert_mem_eq(got->files[0].root, m->files[0].root, 32);
		swarm_metainfo_free(got);
		swarm_hasher_free(h);
		swarm_metainfo_free(m);
		fclose(f);
		free(buf);
		free(p);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("swarm");
	struct {
		const char *name;
		const TTest *test;
		int timeout;
	} cases[] = {
		{ "make", make_matches_mktorrent_and_python, 60 },
		{ "make_dir", make_directory_and_v2_only, 30 },
		{ "hasher", hasher_matches_make, 30 },
		{ "malformed", malformed_input_rejected, 30 },
		{ "static_peer", static_peer_middle_read_fetches_little, 30 },
		{ "seeder_ahead", seeder_reads_ahead_of_a_cold_upload, 30 },
		{ "ranks", ranks_by_address, 30 },
		{ "known_peers", known_peers_reach_dial_now_torrents, 40 },
		{ "tracker", tracker_discovery_and_magnet, 60 },
		{ "seeder_down", seeder_down_times_out_then_recovers, 40 },
		{ "seeder_killed", seeder_killed_mid_stream_second_finishes, 60 },
		{ "concurrent", concurrent_readers, 60 },
		{ "fanout", fanout_readers_trade, 90 },
		{ "refused_once", block_another_peer_holds_refused_once, 40 },
		{ "readahead", readahead_grows_forward_and_resets_on_seek, 30 },
		{ "stream", forward_reader_streams_the_rest, 40 },
		{ "forget", forget_refetches_and_never_serves, 40 },
		{ "restart", restart_keeps_verified_pieces, 30 },
		{ "unlinked", unlinked_data_file_gets_later_pieces, 30 },
		{ "corrupt", corrupt_piece_never_returned, 30 },
		{ "extension", extension_channel_two_and_three, 40 },
		{ "extension_known", extension_channel_dials_known_peers, 40 },
		{ "extension_oversized", extension_receiver_drops_oversized, 40 },
		{ "ext_addr_drop", extension_peer_addr_and_drop, 40 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, cases[i].timeout);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
