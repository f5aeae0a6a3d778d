/*
 * bench_cache — cache-hit read throughput of cache/ beside reading the same data file
 * directly, measured in the same run (DESIGN.md §8, issue 4: target >= 80 % of dd).
 *
 *   bench_cache [-d DIR] [-s SIZE] [-c CHUNK] [-r READ] [-p PASSES]
 *
 * Makes a cache in DIR (default: a new directory under $TMPDIR or /tmp, removed at
 * the end), an object of SIZE bytes (default 1G) in CHUNK-sized chunks (default 1M,
 * a typical piece length for a 1 GiB torrent), writes it as libtorrent would and
 * marks every chunk. Then, with the file in the page cache (warm, as DESIGN.md §8
 * asks), alternates PASSES times: `dd bs=READ` of the data file, a pread loop over
 * it, sequential cache_read() calls of READ bytes (default 128K: what fs/ serves,
 * every byte checked against its block digest), the same pins and preads without the
 * check (cache_block_pin, pread on the block's fd, cache_block_unpin: the unchecked
 * baseline, in the same run), and an upload's path (a 16 KiB pread of the file, as
 * libtorrent reads for a peer, then cache_verify) beside the bare 16 KiB preads. Also:
 * marking throughput, the first pass after a reopen (each chunk's SHA-256 checked
 * once), and the per-call cost of a pin/unpin pair without I/O.
 * Prints the best pass of each, and each cache figure as a percentage of dd.
 */
#include "cache.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench_clock.h"

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_cache: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static uint64_t parse_size(const char *s)
{
	uint64_t v;
	int rc = cache_size_parse(s, &v);

	if (rc < 0)
		die(s, rc);
	return v;
}

static double mibps(uint64_t bytes, double secs)
{
	return (double)bytes / (1 << 20) / secs;
}

/* dd of the data file to /dev/null; MiB/s from dd's own timing, or -1. */
static double dd_pass(const char *path, uint64_t bs)
{
	char cmd[4400], line[512];
	double secs = -1, bytes = -1;
	FILE *p;

	snprintf(cmd, sizeof cmd, "dd if='%s' of=/dev/null bs=%llu 2>&1", path,
	         (unsigned long long)bs);
	p = popen(cmd, "r");
	if (!p)
		die("popen dd", errno);
	while (fgets(line, sizeof line, p)) {
		char *comma;

		/* "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.151 s, 7.1 GB/s" */
		if (!strstr(line, "copied"))
			continue;
		bytes = strtod(line, NULL);
		comma = strstr(line, "copied, ");
		if (comma)
			secs = strtod(comma + 8, NULL);
	}
	pclose(p);
	return secs > 0 ? bytes / (1 << 20) / secs : -1;
}

static double pread_pass(int fd, uint64_t size, uint8_t *buf, size_t rs)
{
	double t = bench_now();

	for (uint64_t off = 0; off < size; off += rs)
		if (pread(fd, buf, rs, (off_t)off) < 0)
			die("pread", errno);
	return mibps(size, bench_now() - t);
}

static double cache_pass(struct cache *c, const uint8_t *key, uint64_t size, uint8_t *buf,
                         size_t rs)
{
	double t = bench_now();

	for (uint64_t off = 0; off < size; off += rs) {
		ssize_t n = cache_read(c, key, off, buf, rs);

		if (n < 0)
			die("cache_read", (int)n);
	}
	return mibps(size, bench_now() - t);
}

static double block_pass(struct cache *c, const uint8_t *key, uint64_t size, uint8_t *buf,
                         size_t rs)
{
	double t = bench_now();

	for (uint64_t off = 0; off < size; off += rs) {
		struct cache_block b;
		int rc = cache_block_pin(c, key, off, rs, &b);

		if (rc < 0)
			die("cache_block_pin", rc);
		if (pread(b.fd, buf, b.len, (off_t)b.offset) < 0)
			die("pread", errno);
		cache_block_unpin(c, &b);
	}
	return mibps(size, bench_now() - t);
}

/* An upload's reads: 16 KiB blocks of the file, checked by cache_verify (check) or not. */
static double upload_pass(struct cache *c, const uint8_t *key, int fd, uint64_t size, uint8_t *buf,
                          bool check)
{
	const size_t bs = 16 << 10;
	double t = bench_now();

	for (uint64_t off = 0; off < size; off += bs) {
		size_t n = size - off < bs ? (size_t)(size - off) : bs;
		int rc;

		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
			die("pread", EIO);
		if (check && (rc = cache_verify(c, key, off, buf, n)) < 0)
			die("cache_verify", rc);
	}
	return mibps(size, bench_now() - t);
}

static struct cache *open_cache(const char *dir, uint64_t cap)
{
	struct cache_config cfg = { .dir = dir, .cap = cap };
	struct cache *c;
	int rc = cache_new(&cfg, &c);

	if (rc < 0)
		die("cache_new", rc);
	return c;
}

int main(int argc, char **argv)
{
	uint64_t size = 1ULL << 30, chunk = 1 << 20, rs = 128 << 10;
	int passes = 3, opt, fd, rc;
	char dirbuf[4000], cdir[4096], path[4096];
	const char *dir = NULL;
	uint8_t key[CACHE_KEY_LEN], *buf;
	double best_dd = 0, best_pread = 0, best_cache = 0, best_block = 0, t, mark, first;
	double best_up = 0, best_up_raw = 0;
	struct cache *c;

	while ((opt = getopt(argc, argv, "d:s:c:r:p:h")) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 's': size = parse_size(optarg); break;
		case 'c': chunk = parse_size(optarg); break;
		case 'r': rs = parse_size(optarg); break;
		case 'p': passes = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_cache [-d DIR] [-s SIZE] [-c CHUNK] "
			                "[-r READ] [-p PASSES]\n");
			return 2;
		}
	}
	if (!dir) {
		const char *tmp = getenv("TMPDIR");

		snprintf(dirbuf, sizeof dirbuf, "%s/swarmfs-bench-cache-XXXXXX",
		         tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dirbuf))
			die("mkdtemp", errno);
		dir = dirbuf;
	}
	snprintf(cdir, sizeof cdir, "%s/cache", dir);
	buf = aligned_alloc(4096, rs > chunk ? rs : chunk);
	if (!buf)
		die("malloc", ENOMEM);
	memset(key, 0x42, sizeof key);

	c = open_cache(cdir, 2 * size);
	if ((rc = cache_object_add(c, key, size, (uint32_t)chunk)) < 0)
		die("cache_object_add", rc);
	if ((rc = cache_object_path(c, key, path, sizeof path)) < 0)
		die("cache_object_path", rc);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die(path, errno);
	/* Write as libtorrent would, then mark: the marks flush each chunk and hash it. */
	for (uint64_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : (size_t)chunk;

		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = (off + i) * 0x9e3779b97f4a7c15ULL;

			memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
		}
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			die("pwrite", errno);
	}
	t = bench_now();
	for (uint32_t i = 0; (uint64_t)i * chunk < size; i++)
		if ((rc = cache_chunk_mark(c, key, i)) < 0)
			die("cache_chunk_mark", rc);
	mark = mibps(size, bench_now() - t);

	/* A restart: the first pass checks each chunk's SHA-256 once. */
	cache_free(c);
	c = open_cache(cdir, 2 * size);
	first = cache_pass(c, key, size, buf, rs);

	for (int p = 0; p < passes; p++) {
		double v;

		if ((v = dd_pass(path, rs)) > best_dd)
			best_dd = v;
		if ((v = pread_pass(fd, size, buf, rs)) > best_pread)
			best_pread = v;
		if ((v = cache_pass(c, key, size, buf, rs)) > best_cache)
			best_cache = v;
		if ((v = block_pass(c, key, size, buf, rs)) > best_block)
			best_block = v;
		if ((v = upload_pass(c, key, fd, size, buf, false)) > best_up_raw)
			best_up_raw = v;
		if ((v = upload_pass(c, key, fd, size, buf, true)) > best_up)
			best_up = v;
	}

	/* The bookkeeping alone: pin and unpin one range, no I/O. */
	{
		const int n = 1000000;
		struct cache_block b;

		t = bench_now();
		for (int i = 0; i < n; i++) {
			if ((rc = cache_block_pin(c, key, ((uint64_t)i * rs) % size, rs, &b)) < 0)
				die("cache_block_pin", rc);
			cache_block_unpin(c, &b);
		}
		t = (bench_now() - t) / n;
	}

	printf("cache bench: %.0f MiB object, %llu KiB chunks, %llu KiB reads, best of %d, "
	       "warm (page cache)\n",
	       (double)size / (1 << 20), (unsigned long long)chunk >> 10,
	       (unsigned long long)rs >> 10, passes);
	printf("  dd bs=%lluK of the data file  %8.0f MiB/s   (baseline)\n",
	       (unsigned long long)rs >> 10, best_dd);
	printf("  pread loop, same file        %8.0f MiB/s   %5.1f %% of dd\n", best_pread,
	       100 * best_pread / best_dd);
	printf(
	    "  cache_read (checked)         %8.0f MiB/s   %5.1f %% of dd, %5.1f %% of unchecked\n",
	    best_cache, 100 * best_cache / best_dd, 100 * best_cache / best_block);
	printf("  cache_block_pin + pread(fd)  %8.0f MiB/s   %5.1f %% of dd (unchecked baseline)\n",
	       best_block, 100 * best_block / best_dd);
	printf("  upload: 16K pread + verify   %8.0f MiB/s   %5.1f %% of the bare preads\n",
	       best_up, 100 * best_up / best_up_raw);
	printf("  upload: 16K pread alone      %8.0f MiB/s   (unchecked baseline)\n", best_up_raw);
	printf("  first pass after reopen      %8.0f MiB/s   (checks each chunk's SHA-256 once)\n",
	       first);
	printf("  cache_chunk_mark             %8.0f MiB/s   (writeback + SHA-256 + index)\n",
	       mark);
	printf("  per read: %.2f us cache_read vs %.2f us pread; pin+unpin alone %.0f ns\n",
	       1e6 * (double)rs / (1 << 20) / best_cache, 1e6 * (double)rs / (1 << 20) / best_pread,
	       t * 1e9);
	close(fd);
	cache_free(c);
	if (dir == dirbuf) {
		char cmd[4200];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirbuf);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_cache: could not remove %s\n", dirbuf);
	}
	free(buf);
	return 0;
}
