#!/usr/bin/env bash
# First reads over loopback (issue 13), each printed beside a baseline measured in the
# same run:
#   1. the first read of another member's file on a fresh node B: open and a 4 KiB
#      pread, the metadata fetch included, over FILES files published on A (p50 and max;
#      target <= 100 ms), vs a plain libtorrent session's time from adding the same
#      magnet (A as its peer) to the piece of that read, as a client adds it and
#      dialling at once (paused, then resumed)
#   2. random 4 KiB reads from the very start of a fresh mount of B (its ledger and the
#      file's .torrent there, no content): READS reads of a file of RSIZE, on each of
#      MOUNTS mounts (p99 over all, and how many took over 50 ms; target p99 <= 50 ms,
#      no stall), vs the same reads again on that mount once they are local
#
#   scripts/bench/firstread.sh                 FILES=8 MOUNTS=3 READS=200 RSIZE=64M
#   SWARMFS=/path/to/swarmfs scripts/bench/firstread.sh   another build (A and B both)
#
# Knobs: FILES, MOUNTS, READS, RSIZE, BUILD_DIR (default build/), JOBS (2). Needs
# /usr/bin/python3 with python3-libtorrent. Everything stays on 127.0.0.1; every mount
# is unmounted and every process started here ended by its PID on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
files=${FILES:-8}
mounts=${MOUNTS:-3}
reads=${READS:-200}
rsize=${RSIZE:-64M}
py=/usr/bin/python3
helper=$root/scripts/bench/bench_shared.py
"$py" -c 'import libtorrent' 2>/dev/null ||
	{ echo "$py cannot import libtorrent: install python3-libtorrent"; exit 1; }
if [[ -z ${SWARMFS:-} ]]; then
	mkdir -p "$build"
	[[ -f $build/CMakeCache.txt ]] || cmake -S "$root" -B "$build" >"$build/configure.log"
	cmake --build "$build" --target swarmfs -j"${JOBS:-2}" >"$build/bench_firstread.build.log" ||
		{ grep -E "error|warning" "$build/bench_firstread.build.log" | head -30; exit 1; }
fi
swarmfs=${SWARMFS:-$build/fs/swarmfs}

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bench-firstread-XXXXXX")
declare -A pid=()
cleanup() {
	set +e
	for n in "${!pid[@]}"; do
		mountpoint -q "$work/mnt-$n" 2>/dev/null && fusermount3 -u "$work/mnt-$n"
	done
	for n in "${!pid[@]}"; do
		local p=${pid[$n]}
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$p" 2>/dev/null && kill "$p"
		wait "$p" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
mount_node() { # NAME HOME DRIVE: a foreground mount as a background job, until it is up
	local name=$1 home=$2 drive=$3
	mkdir -p "$work/mnt-$name"
	"$swarmfs" mount -f --home "$home" --listen 127.0.0.1:0 --no-dht "$drive" \
		"$work/mnt-$name" 2>>"$work/$name.log" &
	pid[$name]=$!
	for _ in $(seq 12000); do
		mountpoint -q "$work/mnt-$name" && return 0
		kill -0 "${pid[$name]}" 2>/dev/null || break
		sleep 0.005
	done
	echo "mount $name failed:"; cat "$work/$name.log"; exit 1
}
umount_node() {
	fusermount3 -u "$work/mnt-$1"
	wait "${pid[$1]}" || echo "(mount $1 exited with status $?)"
	unset "pid[$1]"
}
drive_field() { getfattr --only-values -n user.swarmfs.drive "$1" 2>/dev/null | sed -n "s/^$2: //p"; }
wait_published() {
	until "$swarmfs" status "$1" | grep -q "publish queue: 0 staged, 0 queued"; do sleep 0.05; done
}
wait_file() { for _ in $(seq 6000); do [[ -e $1 ]] && return 0; sleep 0.01; done; echo "$1 never appeared"; exit 1; }

echo "swarmfs first reads: $files files of 4 MiB, $mounts mounts x $reads random 4 KiB reads of" \
	"$rsize, $(nproc) cores, libtorrent $(pkg-config --modversion libtorrent-rasterbar)"
echo

"$swarmfs" init --public --home "$work/a" --name team >/dev/null
"$swarmfs" key new --home "$work/b" >/dev/null
mount_node a "$work/a" team
for i in $(seq "$files"); do head -c 4M /dev/urandom >"$work/mnt-a/first-$i.bin"; done
for m in $(seq "$mounts"); do head -c "$rsize" /dev/urandom >"$work/mnt-a/rand-$m.bin"; done
wait_published "$work/mnt-a"
uri=$(drive_field "$work/mnt-a" uri)
aport=$(drive_field "$work/mnt-a" "listen port")

# ---- 1. first read of another member's file, metadata included ----
mount_node b "$work/b" "$uri"
paths=() magnets=()
for i in $(seq "$files"); do
	wait_file "$work/mnt-b/first-$i.bin"
	paths+=("$work/mnt-b/first-$i.bin")
	magnets+=("$(getfattr --only-values -n user.swarmfs.magnet "$work/mnt-a/first-$i.bin" 2>/dev/null)")
done
ours=$("$py" "$helper" first "${paths[@]}")
base=$("$py" "$helper" plainfirst "127.0.0.1:$aport" "${magnets[@]}")
printf '%-46s p50 %6s ms max %6s ms   baseline plain libtorrent p50 %s ms max %s ms' \
	"1. first read, another member's file" "$(val p50_ms "$ours")" "$(val max_ms "$ours")" \
	"$(val p50_ms "$base")" "$(val max_ms "$base")"
printf '; dialling at once p50 %s ms max %s ms  (target <= 100 ms)\n' \
	"$(val now_p50_ms "$base")" "$(val now_max_ms "$base")"
echo "   each, ms: $(val all_ms "$ours" | tr , ' ')"
umount_node b

# ---- 2. random 4 KiB reads from the start of a fresh mount ----
id=$(ls "$work/a/drives")
cp "$work/a/drives/$id/torrents/"*.torrent "$work/b/drives/$id/torrents/"
: >"$work/fresh.raw"
: >"$work/local.raw"
per=()
for m in $(seq "$mounts"); do
	mount_node b "$work/b" "$uri"
	out=$("$py" "$helper" random4k "$work/mnt-b/rand-$m.bin" "$reads" "$m" "$work/fresh.raw")
	per+=("$(val max_ms "$out")/$(val over50 "$out")")
	"$py" "$helper" random4k "$work/mnt-b/rand-$m.bin" "$reads" "$m" "$work/local.raw" >/dev/null
	umount_node b
done
ours=$("$py" "$helper" pctl "$work/fresh.raw")
base=$("$py" "$helper" pctl "$work/local.raw")
printf '%-46s p50 %6s ms p99 %6s ms max %6s ms, %s over 50 ms   baseline the same reads local p50 %s ms p99 %s ms  (target p99 <= 50 ms)\n' \
	"2. random 4 KiB reads, fresh mount ($mounts x $reads)" "$(val p50_ms "$ours")" \
	"$(val p99_ms "$ours")" "$(val max_ms "$ours")" "$(val over50 "$ours")" \
	"$(val p50_ms "$base")" "$(val p99_ms "$base")"
echo "   each mount, slowest ms / reads over 50 ms: ${per[*]}"
umount_node a
for n in a b; do
	if grep -qE "error|warning" "$work/$n.log"; then
		echo "$n's log:"
		grep -E "error|warning" "$work/$n.log" | sort | uniq -c | sort -rn | head -5
	fi
done
