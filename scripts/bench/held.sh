#!/usr/bin/env bash
# A node holding HELD cached files (issue 13), beside a baseline from the same run:
#   - mount ready (mount -> first stat answered)            (target <= 2 s)
#   - RSS once the mount has looked at what it holds and verified its ledger, and the
#     CPU it spends idle then, over IDLE_S seconds            (target RSS <= 200 MB)
#   - every held file still seeded: a fresh member B reads SAMPLE of them, cold, with
#     this node as its only peer, and their bytes must match
# The baseline is the same node mounted with --seed-max HELD: every held file's torrent
# loaded at mount, as every mount did before seeding on demand.
#
#   scripts/bench/held.sh                      HELD=100000 (publishing them takes minutes)
#   HELD=20000 IDLE_S=10 SAMPLE=20 scripts/bench/held.sh
#
# The held files are published into a public drive by cp -r (small files in 100
# directories), so the node holds them as a publisher does. Everything stays on
# 127.0.0.1; every mount is unmounted on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
held=${HELD:-100000}
idle_s=${IDLE_S:-10}
sample=${SAMPLE:-20}
. "$root/scripts/bench/lib.sh"
bench_build held swarmfs
bench_work held

# ---- the held files: published by A ----
mkdir -p "$work/src"
(cd "$work/src" && seq 0 99 | xargs -I{} mkdir d{} &&
	seq 0 $((held - 1)) | awk '{ printf "d%d/f%07d\n", $1 % 100, $1 }' |
	while read -r f; do echo "held file $f" >"$f"; done)
"$swarmfs" init --public --home "$work/a" --name team >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
listen=(--listen "127.0.0.1:$port")
mount_node a "$work/a" team "${listen[@]}" --seed-max "$held"
t0=$(now)
cp -r "$work/src/." "$work/mnt-a/"
until published "$work/mnt-a"; do sleep 0.5; done
t1=$(now)
row "published $held files (setup)" "$(secs "$t0" "$t1") s"
uri=$(drive_field "$work/mnt-a" uri)
umount_node a

# ---- A mounted again: ready, RSS, idle CPU ----
# measure NAME SEED_MAX: prints the rows; leaves A mounted
measure() {
	local t0 t1 c0 c1
	t0=$(now)
	mount_node a "$work/a" team "${listen[@]}" --seed-max "$2"
	stat "$work/mnt-a/d1/f0000001" >/dev/null
	t1=$(now)
	local ready
	ready=$(secs "$t0" "$t1")
	# idle: the scan of what it holds is done (it says how many it seeds) and so is
	# the mount's verification sweep
	until grep -q "seeding .* torrents of content this node holds" "$work/a.log" &&
		"$swarmfs" status "$work/mnt-a" | grep -q "^verification: done"; do
		sleep 0.2
	done
	c0=$(cpu_ticks "${pid[a]}")
	sleep "$idle_s" # a measurement window, not a wait for a condition
	c1=$(cpu_ticks "${pid[a]}")
	row "$1: mount ready" "$ready s"
	row "$1: RSS, idle CPU" "$(($(rss_kb "${pid[a]}") / 1024)) MB, $(awk -v a="$c0" -v b="$c1" -v s="$idle_s" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f %%", 100 * (b - a) / hz / s }') of a core"
}
: >"$work/a.log"
measure "baseline, every torrent loaded" "$held"
umount_node a
: >"$work/a.log"
measure "seeding on demand (--seed-max 1000)" 1000

# ---- B reads a sample, cold, from A alone ----
mount_node b "$work/b" "$uri" --peer "127.0.0.1:$port" --read-timeout 30
for _ in $(seq 1200); do [[ -e $work/mnt-b/d99/f$(printf %07d $((held - 1))) ]] && break; sleep 0.1; done
ok=0
t0=$(now)
for i in $(shuf -i 0-$((held - 1)) -n "$sample"); do
	f=d$((i % 100))/f$(printf %07d "$i")
	cmp -s "$work/src/$f" "$work/mnt-b/$f" && ok=$((ok + 1))
done
t1=$(now)
row "B reads $sample random held files cold" "$ok of $sample identical in $(secs "$t0" "$t1") s"
row "A's status" "$("$swarmfs" status "$work/mnt-a" | grep "seeding on demand" || echo "(no line)")"
echo "targets: ready <= 2 s, RSS <= 200 MB at 100k held files, every sampled file read"
