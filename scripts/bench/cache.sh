#!/usr/bin/env bash
# Cache-hit read throughput of cache/ beside dd of the same data file, in one run
# (DESIGN.md §8). Issue 4 asked for >= 80 % of dd; since issue 17 every byte cache_read
# returns (and every byte uploaded) is hashed against its block digest, so those figures
# are SHA-256's, printed beside the same reads unchecked. Builds the bench_cache target in
# $BUILD_DIR (default build/) and runs it; extra arguments go to bench_cache:
#
#   scripts/bench/cache.sh                  1 GiB object, 1 MiB chunks, 128 KiB reads
#   scripts/bench/cache.sh -s 256M -c 4M    other sizes (see scripts/bench/bench_cache.c)
#
# Needs about 1 GiB free under $TMPDIR (default /tmp) and RAM to hold it in the page
# cache, as the figures are warm reads.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
mkdir -p "$build"
if [[ ! -f $build/CMakeCache.txt ]]; then
	cmake -S "$root" -B "$build" -DSWARMFS_WERROR=ON >"$build/configure.log"
fi
cmake --build "$build" --target bench_cache -j"${JOBS:-2}" >"$build/bench_cache.build.log" ||
	{ grep -E "error|warning" "$build/bench_cache.build.log" | head -30; exit 1; }
exec "$build/tests/unit/cache/bench_cache" "$@"
