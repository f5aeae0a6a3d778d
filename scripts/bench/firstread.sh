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
#   3. a file A published while B was unmounted: from B's mount being up to the file
#      listed there (its ledger synced from A over the drive torrent), on each of
#      REMOUNTS mounts (p50 and max), vs a plain libtorrent session's time from adding
#      A's drive torrent (paused, then resumed: dialling at once) to a connected peer
#
#   scripts/bench/firstread.sh                 FILES=8 MOUNTS=3 READS=200 RSIZE=64M REMOUNTS=5
#   SWARMFS=/path/to/swarmfs scripts/bench/firstread.sh   another build (A and B both)
#
# Knobs: FILES, MOUNTS, READS, RSIZE, REMOUNTS, BUILD_DIR (default build/), JOBS (2). Needs
# /usr/bin/python3 with python3-libtorrent. Everything stays on 127.0.0.1; every mount
# is unmounted and every process started here ended by its PID on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
files=${FILES:-8}
mounts=${MOUNTS:-3}
reads=${READS:-200}
rsize=${RSIZE:-64M}
remounts=${REMOUNTS:-5}
py=/usr/bin/python3
helper=$root/scripts/bench/bench_shared.py
"$py" -c 'import libtorrent' 2>/dev/null ||
	{ echo "$py cannot import libtorrent: install python3-libtorrent"; exit 1; }
. "$root/scripts/bench/lib.sh"
if [[ -z ${SWARMFS:-} ]]; then
	bench_build firstread swarmfs
fi
swarmfs=${SWARMFS:-$build/fs/swarmfs}
bench_work firstread

val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
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

# ---- 3. a file published while B was away, listed after a remount ----
: >"$work/listed.raw"
for m in $(seq "$remounts"); do
	echo "$m" >"$work/mnt-a/away-$m.txt"
	wait_published "$work/mnt-a"
	mount_node b "$work/b" "$uri"
	val ms "$("$py" "$helper" listed "$work/mnt-b/away-$m.txt" "$(now)")" >>"$work/listed.raw"
	umount_node b
done
ours=$("$py" "$helper" pctl "$work/listed.raw")
base=$("$py" "$helper" plainconnect "127.0.0.1:$aport" \
	"magnet:?xt=urn:btmh:1220$(drive_field "$work/mnt-a" "drive torrent")" "$remounts")
printf '%-46s p50 %6s ms max %6s ms   baseline plain libtorrent connected to A p50 %s ms max %s ms (%s of %s tries never connected)\n' \
	"3. published while away, listed after a mount" "$(val p50_ms "$ours")" \
	"$(val max_ms "$ours")" "$(val p50_ms "$base")" "$(val max_ms "$base")" \
	"$(val failed "$base")" "$remounts"
echo "   each, ms: $(tr '\n' ' ' <"$work/listed.raw")"
umount_node a
for n in a b; do
	if grep -qE "error|warning" "$work/$n.log"; then
		echo "$n's log:"
		grep -E "error|warning" "$work/$n.log" | sort | uniq -c | sort -rn | head -5
	fi
done
