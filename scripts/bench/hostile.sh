#!/usr/bin/env bash
# A mount under a hostile peer (issue 12, DESIGN.md §10): the latency of calls that
# reach the daemon and its ledger (a lookup of a name never asked for, a getxattr) and
# of `ls -l`, measured while idle and while tests/integration/hostile_peer.py floods the
# drive's sync channel with tx messages of 1,024 well-signed non-member records (from
# address after address: a dropped flooder comes back from the next), printed side by
# side with the daemon's RSS and what became of the flooder.
#
#   scripts/bench/hostile.sh              SECONDS_EACH=8 (each phase)
#
# Everything stays on 127.0.0.1 (the flooder on 127.0.0.66 and up).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
seconds=${SECONDS_EACH:-8}
mkdir -p "$build"
[[ -f $build/CMakeCache.txt ]] || cmake -S "$root" -B "$build" >"$build/configure.log"
cmake --build "$build" --target swarmfs hostile_records -j"${JOBS:-2}" >"$build/bench_hostile.build.log" ||
	{ grep -E "error|warning" "$build/bench_hostile.build.log" | head -30; exit 1; }
swarmfs=$build/fs/swarmfs

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bench-XXXXXX")
pid=
cleanup() {
	mountpoint -q "$work/mnt" 2>/dev/null && fusermount3 -u "$work/mnt"
	[[ -n $pid ]] && wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
id=$("$swarmfs" init --home "$work/home" --name bench --public 2>/dev/null | grep -o 'swarmfs://[0-9a-f]*' | cut -c11-)
mkdir -p "$work/mnt"
"$swarmfs" mount -f --home "$work/home" --no-dht --listen "127.0.0.1:$port" bench "$work/mnt" \
	-o auto_unmount 2>>"$work/mount.log" &
pid=$!
for _ in $(seq 400); do mountpoint -q "$work/mnt" && break; sleep 0.05; done
mountpoint -q "$work/mnt" || { echo "mount failed:"; cat "$work/mount.log"; exit 1; }
mkdir "$work/mnt/docs"
for i in $(seq 0 49); do echo "file $i" >"$work/mnt/docs/f$i.txt"; done
until "$swarmfs" status "$work/mnt" | grep -q "publish queue: 0 staged, 0 queued"; do sleep 0.05; done
infohash=$("$swarmfs" status "$work/mnt" | awk '/^drive torrent:/ { print $3 }')
"$build/tests/integration/hostile_records" "$id" 8 1024 "$work/records.bin"

rss() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }

# latency percentiles of calls that reach the daemon, for SECONDS: "p50 p99 max n" in ms
measure() {
	python3 - "$work/mnt/docs" "$1" <<'EOF'
import os, sys, time
d, secs = sys.argv[1], float(sys.argv[2])
lat = {"lookup": [], "getxattr": [], "ls -l": []}
end, i = time.monotonic() + secs, 0
while time.monotonic() < end:
    t = time.perf_counter()
    try:
        os.stat(os.path.join(d, "new-%d-%d" % (os.getpid(), i)))
    except FileNotFoundError:
        pass
    lat["lookup"].append(time.perf_counter() - t)
    t = time.perf_counter()
    os.getxattr(os.path.join(d, "f%d.txt" % (i % 50)), "user.swarmfs.status")
    lat["getxattr"].append(time.perf_counter() - t)
    t = time.perf_counter()
    for n in os.listdir(d):
        os.lstat(os.path.join(d, n))
    lat["ls -l"].append(time.perf_counter() - t)
    i += 1
    time.sleep(0.005)
for k, v in lat.items():
    v.sort()
    print("%-9s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d calls)" % (
        k, 1e3 * v[len(v) // 2], 1e3 * v[min(len(v) - 1, int(len(v) * 0.99))], 1e3 * v[-1], len(v)))
EOF
}

echo "== idle ($seconds s), RSS $(rss) MB"
measure "$seconds"
python3 "$root/tests/integration/hostile_peer.py" tx-flood --port "$port" --infohash "$infohash" \
	--records "$work/records.bin" --sources 2000 --seconds "$((seconds + 2))" >"$work/flood.log" 2>&1 &
flood=$!
t0=$(date +%s.%N)
until grep -q "^served" "$work/flood.log" 2>/dev/null; do sleep 0.05; done
echo "== under a tx flood of non-member records ($seconds s)"
measure "$seconds"
rss_flood=$(rss)
wait "$flood"
echo "   RSS $rss_flood MB; the flooder, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s:" \
	"$(grep -c '^served' "$work/flood.log") connections served,"  \
	"$(grep -c '^dropped' "$work/flood.log") dropped," \
	"$(grep -o 'after [0-9]* messages' "$work/flood.log" | awk '{ n += $2 } END { print n + 0 }') messages sent before the drops"
