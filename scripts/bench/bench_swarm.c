/*
 * Benchmarks of swarm/ on one machine over loopback (issue 4, DESIGN.md §8); driven by
 * scripts/bench/swarm.sh, which prints each figure beside its baseline.
 *
 *   bench_swarm make FILE        hybrid make-torrent time of FILE (seconds)
 *   bench_swarm read FILE DIR    plain full download by a libtorrent session, then a
 *                                cold sequential read through swarm_read (MiB/s each)
 *   bench_swarm ttfb FILE DIR    16 KiB swarm_read at 50 random offsets of an uncached
 *                                file: p50 and p99 latency (ms)
 *   bench_swarm rss N DIR        RSS of a session with N idle torrents (MB)
 *
 * Every figure goes to stdout as "key value" lines. DIR is a scratch directory.
 */
#include "swarm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "bench_clock.h"

#define MiB   (1024.0 * 1024.0)
#define PIECE (256 * 1024)

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_swarm: %s: %s\n", what, strerror(-err));
	exit(1);
}

static void log_sink(int level, const char *module, const char *msg, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "%s: %d: %s\n", module, level, msg);
}

static struct swarm_session *session(const char *peer)
{
	struct swarm_config c;
	struct swarm_session *s;
	const char *peers[] = { peer, NULL };
	int err;

	swarm_config_init(&c);
	c.listen_interface = "127.0.0.1";
	c.peers = peer ? peers : NULL;
	c.fetch_timeout_ms = 60000;
	c.log = log_sink;
	c.log_level = LOG_WARNING;
	if ((err = swarm_session_new(&c, &s)) < 0)
		die("session", err);
	return s;
}

static struct swarm_metainfo *make(const char *file)
{
	struct swarm_make_params mp = { .piece_length = PIECE };
	struct swarm_metainfo *m;
	int err = swarm_metainfo_make(file, &mp, &m);

	if (err < 0)
		die("make torrent", err);
	return m;
}

static struct swarm_torrent *add(struct swarm_session *s, struct swarm_metainfo *m,
                                 const char *save, bool seed, bool all)
{
	struct swarm_add_params ap = { .torrent = m->torrent,
		                       .torrent_len = m->torrent_len,
		                       .save_path = save,
		                       .seed = seed,
		                       .download_all = all };
	struct swarm_torrent *t;
	int err;

	mkdir(save, 0755);
	if ((err = swarm_torrent_add(s, &ap, &t)) < 0)
		die("add torrent", err);
	return t;
}

static void addr(struct swarm_session *s, char buf[32])
{
	uint16_t port = 0;

	while (swarm_session_port(s, &port) == -EAGAIN)
		usleep(10000);
	snprintf(buf, 32, "127.0.0.1:%u", port);
}

/* A seeder of file (its directory is the save path) and the torrent. */
static struct swarm_session *seeder(const char *file, struct swarm_metainfo **out_m, char a[32])
{
	struct swarm_session *s = session(NULL);
	char *dir = strdup(file);

	*strrchr(dir, '/') = '\0';
	*out_m = make(file);
	add(s, *out_m, dir, true, false);
	addr(s, a);
	free(dir);
	return s;
}

static int bench_make(const char *file)
{
	double t0 = bench_now();
	struct swarm_metainfo *m = make(file);

	printf("make_seconds %.3f\n", bench_now() - t0);
	printf("make_bytes %llu\n", (unsigned long long)m->total_size);
	swarm_metainfo_free(m);
	return 0;
}

static int bench_read(const char *file, const char *dir)
{
	struct swarm_metainfo *m;
	char a[32], save[4096];
	struct swarm_session *seed = seeder(file, &m, a);
	double t0, secs;

	/* baseline: a plain libtorrent session downloads everything */
	struct swarm_session *plain = session(a);
	snprintf(save, sizeof save, "%s/plain", dir);
	t0 = bench_now();
	struct swarm_torrent *t = add(plain, m, save, false, true);
	for (;;) {
		struct swarm_torrent_stats st;
		swarm_torrent_stats(t, &st);
		if (st.pieces_have == st.num_pieces)
			break;
		usleep(2000);
	}
	secs = bench_now() - t0;
	printf("plain_download_mib_s %.1f\n", (double)m->total_size / MiB / secs);
	swarm_session_free(plain);

	/* swarm_read from the first byte to the last, 1 MiB at a time */
	struct swarm_session *s = session(a);
	snprintf(save, sizeof save, "%s/stream", dir);
	size_t len = 1 << 20;
	char *buf = malloc(len);
	struct swarm_reader *r;
	t0 = bench_now();
	t = add(s, m, save, false, false);
	if (swarm_reader_new(t, 0, &r) < 0)
		die("reader", -EIO);
	for (uint64_t off = 0; off < m->total_size; off += len) {
		ssize_t n = swarm_read(r, buf, len, off, 60000);
		if (n <= 0)
			die("swarm_read", n ? (int)n : -EIO);
	}
	secs = bench_now() - t0;
	printf("swarm_read_mib_s %.1f\n", (double)m->total_size / MiB / secs);
	swarm_reader_free(r);
	swarm_session_free(s);
	swarm_session_free(seed);
	swarm_metainfo_free(m);
	free(buf);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench_ttfb(const char *file, const char *dir)
{
	struct swarm_metainfo *m;
	char a[32], save[4096], buf[16384];
	struct swarm_session *seed = seeder(file, &m, a);
	struct swarm_session *s = session(a);
	struct swarm_reader *r;
	double ms[50];

	snprintf(save, sizeof save, "%s/ttfb", dir);
	struct swarm_torrent *t = add(s, m, save, false, false);
	if (swarm_reader_new(t, 0, &r) < 0)
		die("reader", -EIO);
	/* the first read also waits for the connection: not a read's cost */
	if (swarm_read(r, buf, sizeof buf, 0, 30000) < 0)
		die("first read", -EIO);
	srand(42);
	uint64_t pieces = m->total_size / PIECE;
	for (int i = 0; i < 50; i++) {
		/* a piece never touched before, not next to one (no read-ahead help) */
		uint64_t p = 2 + (uint64_t)rand() % (pieces - 4);
		while (swarm_torrent_has_piece(t, (uint32_t)p) ||
		       swarm_torrent_has_piece(t, (uint32_t)p + 1) ||
		       swarm_torrent_has_piece(t, (uint32_t)p - 1))
			p = 2 + (uint64_t)rand() % (pieces - 4);
		uint64_t off = p * PIECE + (uint64_t)rand() % (PIECE - sizeof buf);
		double t0 = bench_now();
		ssize_t n = swarm_read(r, buf, sizeof buf, off, 30000);
		ms[i] = (bench_now() - t0) * 1000;
		if (n != (ssize_t)sizeof buf)
			die("swarm_read", n < 0 ? (int)n : -EIO);
	}
	qsort(ms, 50, sizeof ms[0], cmp_double);
	printf("ttfb_p50_ms %.2f\n", ms[24]);
	printf("ttfb_p99_ms %.2f\n", ms[49]);
	swarm_reader_free(r);
	swarm_session_free(s);
	swarm_session_free(seed);
	swarm_metainfo_free(m);
	return 0;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int bench_rss(int n, const char *dir)
{
	struct swarm_session *s = session(NULL);
	char path[4096];

	sleep(1);
	printf("rss_empty_mb %.1f\n", rss_kb() / 1024.0);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/t%04d", dir, i);
		mkdir(path, 0755);
		snprintf(path, sizeof path, "%s/t%04d/f", dir, i);
		FILE *f = fopen(path, "wb");
		char data[40000];
		memset(data, i & 0xff, sizeof data);
		snprintf(data, 32, "torrent %d", i);
		fwrite(data, 1, sizeof data, f);
		fclose(f);
		struct swarm_make_params mp = { .piece_length = 16384, .threads = 1 };
		struct swarm_metainfo *m;
		int err = swarm_metainfo_make(path, &mp, &m);
		if (err < 0)
			die("make", err);
		snprintf(path, sizeof path, "%s/t%04d", dir, i);
		add(s, m, path, true, false);
		swarm_metainfo_free(m);
	}
	sleep(5); /* idle */
	printf("rss_torrents %d\n", n);
	printf("rss_mb %.1f\n", rss_kb() / 1024.0);
	swarm_session_free(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "make"))
		return bench_make(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "read"))
		return bench_read(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "ttfb"))
		return bench_ttfb(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "rss"))
		return bench_rss(atoi(argv[2]), argv[3]);
	fprintf(stderr,
	        "usage: bench_swarm make FILE | read FILE DIR | ttfb FILE DIR | rss N DIR\n");
	return 2;
}
