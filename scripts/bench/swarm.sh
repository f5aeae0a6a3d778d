#!/usr/bin/env bash
# Benchmarks of swarm/ over loopback, each beside a baseline measured in the same run
# (issue 4, DESIGN.md §8). Builds bench_swarm in $BUILD_DIR (default build/).
#
#   scripts/bench/swarm.sh            1 GiB file
#   SIZE=256M scripts/bench/swarm.sh  another size (anything `head -c` takes)
#
# Needs about 4x SIZE free under $TMPDIR (default /tmp): the file, a plain download,
# a streamed copy and the random-read copy. Targets: swarm_read >= 90 % of a plain
# libtorrent download; 16 KiB random reads p50 <= 10 ms, p99 <= 50 ms (p99 of 50
# samples is the slowest); make-torrent >= 100 % of sha256sum; 1,000 idle torrents
# <= 100 MB RSS; cache hits >= 80 % of dd (scripts/bench/cache.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
size=${SIZE:-1G}
mkdir -p "$build"
if [[ ! -f $build/CMakeCache.txt ]]; then
	cmake -S "$root" -B "$build" -DSWARMFS_WERROR=ON >"$build/configure.log"
fi
cmake --build "$build" --target bench_swarm -j"${JOBS:-2}" >"$build/bench_swarm.build.log" ||
	{ grep -E "error|warning" "$build/bench_swarm.build.log" | head -30; exit 1; }
bench=$build/tests/unit/swarm/bench_swarm

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
head -c "$size" /dev/urandom >"$work/src/file"
cat "$work/src/file" >/dev/null # warm: every hashing figure below reads the page cache

val() { grep "^$1 " <<<"$2" | cut -d' ' -f2; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
mib=$(($(stat -c %s "$work/src/file") / 1048576))
echo "swarm/ benchmarks, ${mib} MiB file, $(nproc) cores, libtorrent $(pkg-config --modversion libtorrent-rasterbar)"

# make-torrent (hybrid, 256 KiB pieces, one hashing thread per core) vs sha256sum
t0=$(date +%s.%N)
sha256sum "$work/src/file" >/dev/null
t1=$(date +%s.%N)
sha=$(awk -v a="$t0" -v b="$t1" -v m="$mib" 'BEGIN { printf "%.1f", m / (b - a) }')
out=$("$bench" make "$work/src/file")
mk=$(awk -v s="$(val make_seconds "$out")" -v m="$mib" 'BEGIN { printf "%.1f", m / s }')
echo "make-torrent hybrid:   $mk MiB/s   sha256sum: $sha MiB/s   ($(pct "$mk" "$sha") %, target >= 100 %)"

# cold sequential swarm_read vs a plain libtorrent full download
out=$("$bench" read "$work/src/file" "$work")
plain=$(val plain_download_mib_s "$out")
sr=$(val swarm_read_mib_s "$out")
echo "cold sequential read:  $sr MiB/s   plain download: $plain MiB/s   ($(pct "$sr" "$plain") %, target >= 90 %)"
rm -rf "$work/plain" "$work/stream"

# time to first byte of 16 KiB reads at 50 random offsets
out=$("$bench" ttfb "$work/src/file" "$work")
echo "random 16 KiB reads:   p50 $(val ttfb_p50_ms "$out") ms   p99 $(val ttfb_p99_ms "$out") ms   (targets 10 / 50 ms)"
rm -rf "$work/ttfb"

# RSS with 1,000 idle torrents, beside an empty session
mkdir -p "$work/rss"
out=$("$bench" rss 1000 "$work/rss")
echo "RSS, 1000 idle torrents: $(val rss_mb "$out") MB   empty session: $(val rss_empty_mb "$out") MB   (target <= 100 MB)"
rm -rf "$work/rss"

# cache-hit reads vs dd: the cache engineer's benchmark
if [[ -x $root/scripts/bench/cache.sh ]]; then
	echo "cache hits (scripts/bench/cache.sh -s $size):"
	BUILD_DIR=$build "$root/scripts/bench/cache.sh" -s "$size" | sed 's/^/  /'
fi
