#!/bin/sh
# Ledger benchmarks (DESIGN.md §8, issue 3). Each figure is printed beside a baseline
# measured in the same run on the same machine:
#   validate+append rate of claims in blocks of 1000  vs  `openssl speed ed25519` verify/s
#   full replay and full verify time                  (extrapolated to 1M records)
#   a fresh node's sync of the same blocks (sync_apply_blocks, blocks messages as they
#   come, signatures on every core), wall and CPU, vs the time `openssl speed` says
#   verifying their signatures alone takes on all cores (issue 13: <= 10 s per 100k)
#   path lookup, 100k-entry directory listing          vs  the same query on raw SQLite
#   database bytes per record
#
#   scripts/bench/ledger.sh                    # 100,000 records
#   LEDGER_BENCH_RECORDS=1000000 scripts/bench/ledger.sh
#   LEDGER_BENCH_SYNC_ONLY=1 LEDGER_BENCH_RECORDS=1000000 scripts/bench/ledger.sh
#       the sync row alone, on a drive shaped as bigdrive.sh's (files over 1000
#       directories, hash keys at random places in every index), with the cost per
#       100k records at each tenth of the sync: how it grows with the ledger. BUILD_DIR
#       picks the build, so two builds alternate in one sitting.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
RECORDS=${LEDGER_BENCH_RECORDS:-100000}
PER_BLOCK=${LEDGER_BENCH_BLOCK_RECORDS:-1000}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target ledger_bench -j2 >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bench-ledger-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# Baseline first and last, so a machine whose load changes shows it.
ossl_verify() {
	openssl speed -seconds 3 ed25519 2>/dev/null |
		awk '/Ed25519/ { print $NF }' | tail -1
}
V1=$(ossl_verify)
"$BUILD/ledger/ledger_bench" "$TMP" "$RECORDS" "$PER_BLOCK" >"$TMP/out"
V2=$(ossl_verify)

get() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/out"; }

if [ -n "${LEDGER_BENCH_SYNC_ONLY:-}" ]; then
	awk -v v1="$V1" -v v2="$V2" -v cores="$(nproc)" '
	$1 == "records" { n = $2 }
	$1 == "sync_slice" { s = s sprintf("%-34s %11.1fs   CPU %.1fs, applying thread %.1fs\n", "  per 100k at " $2, $4, $6, $8) }
	$1 == "sync_apply_thread_cpu_s" { t = $2 }
	$1 == "sync_apply_wall_s" { w = $2 }
	$1 == "sync_apply_cpu_s" { c = $2 }
	$1 == "sync_apply_written_per_record" { b = $2 }
	END {
		v = (v1 + v2) / 2
		printf "ledger sync benchmark: a fresh node applies %d records (bigdrive shape)\n\n", n
		printf "%-34s %11.1fs   CPU %.1fs; per 100k %.1fs wall, %.1fs CPU; signatures alone on %d cores %.1fs per 100k (openssl speed %.0f/s); target <= 10s per 100k\n",
			"sync to a fresh node (apply)", w, c, w * 1e5 / n, c * 1e5 / n, cores, 1e5 / v / cores, v
		printf "%-34s %11.1fs   CPU of the applying thread (per 100k %.1fs): on %d cores the wall time is at least this\n",
			"  applying thread", t, t * 1e5 / n, cores
		printf "%s", s
		printf "%-34s %12.0f   bytes written a record (database, WAL, checkpoints)\n",
			"  written by the sync", b
	}' "$TMP/out"
	exit 0
fi
get4() { awk -v k="$1" '$3 == k { print $4 }' "$TMP/out"; }

awk -v n="$RECORDS" -v per="$PER_BLOCK" -v v1="$V1" -v v2="$V2" \
	-v rate="$(get validate_append_records_per_s)" \
	-v evp="$(get ed25519_verify_evp_per_s)" \
	-v replay="$(get replay_s)" -v verify="$(get verify_chain_s)" \
	-v swall="$(get sync_apply_wall_s)" -v scpu="$(get sync_apply_cpu_s)" -v cores="$(nproc)" \
	-v swrote="$(get sync_apply_written_per_record)" \
	-v lookup="$(get lookup_us)" -v rlookup="$(get baseline_raw_sqlite_lookup_us)" \
	-v list="$(get4 list_ms)" -v rlist="$(get baseline_raw_sqlite_list_ms)" \
	-v size="$(get db_bytes_per_record)" '
BEGIN {
	v = (v1 + v2) / 2
	printf "ledger benchmark: %d claims in blocks of %d, one core\n\n", n, per
	printf "%-34s %12s   %s\n", "figure", "value", "baseline (same run) / target"
	printf "%-34s %10.0f/s   openssl speed ed25519 verify %.0f/s (%.0f, %.0f); ratio %.2f; ledger EVP verify %.0f/s; target >= 8000/s\n",
		"validate+append records", rate, v, v1, v2, rate / v, evp
	printf "%-34s %11.1fs   1M records extrapolated %.0fs; target <= 180s\n",
		"full replay (rebuild, all rules)", replay, replay * 1e6 / n
	printf "%-34s %11.1fs   1M records extrapolated %.0fs\n",
		"full verify (raw bytes, crypto)", verify, verify * 1e6 / n
	printf "%-34s %11.1fs   CPU %.1fs; per 100k %.1fs wall; signatures alone on %d cores %.1fs per 100k; target <= 10s per 100k\n",
		"sync to a fresh node (apply)", swall, scpu, swall * 1e5 / n, cores, 1e5 / v / cores
	if (swrote != "")
		printf "%-34s %12.0f   bytes written a record (database, WAL, checkpoints)\n",
			"  written by the sync", swrote
	printf "%-34s %10.2fus   raw SQLite same query %.2fus; target <= 20us\n",
		"path lookup", lookup, rlookup
	printf "%-34s %10.1fms   raw SQLite same query %.1fms; target <= 300ms (%d entries)\n",
		"list one directory", list, rlist, n
	printf "%-34s %12.0f   bytes\n", "database size per record", size
}'
