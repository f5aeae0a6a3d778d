#!/usr/bin/env bash
# Benchmarks of a drive shared by several nodes (homes) on one machine over loopback
# (DESIGN.md §8), each printed beside a baseline measured in the same run:
#   1. cold read on B of a SIZE file published on A, through B's mount from open to the
#      last byte, vs a plain libtorrent download of the same magnet from A, metadata
#      included in both (target >= 95 %), and B's CPU seconds vs the plain client's
#      (target <= 1.1); ROUNDS1 rounds, the two in turn, medians
#   1b. the same cold read of the same content published on a private drive (ciphertext
#      in the swarm, decrypted into the reply) by a member, vs the public read of 1.
#      (target >= 90 %); in row 1's rounds, each of a file just published, the median
#      of the rounds' ratios
#   2. the same cold read on a fresh node D with two seeders, A and C (C has read the
#      whole file), vs a plain libtorrent download from A and C
#   3. publish on A -> visible in B's listing: p50 and max of PUBLISHES cp's, from cp's
#      return (target <= 1 s), beside the time to "confirmed" on A itself
#   4. time to first byte of READS random 16 KiB reads on B of a file it has not cached
#      (p50 <= 15 ms, p99 <= 60 ms), vs the same reads of the local file, page-cached
#   5. sync of a RECORDS-record ledger to a fresh node: mount until its height equals
#      the source's (target <= 20 s), vs `swarmfs verify` of the same ledger; then the
#      same on a private drive (members-only sealed channel, the node a member), its
#      records/s vs the public drive's (target >= 90 %)
#   6. joins of a private drive by JOINS fresh homes (each key a member): the handshake,
#      p50 and max (target p50 <= 50 ms), from the joiner's sync channel being up to the
#      other member admitted, timed from its log as it comes; and from `swarmfs mount` to
#      "in sync", vs JOINS joins of a public drive (no handshake)
#   and the peak RSS (VmHWM) of every mount, vs the plain libtorrent client's;
#   7. what credit costs on a cold read of SIZE (CPU, bytes on the wire, receipts and
#      records per GiB) vs the same read with receipts off: scripts/bench/credit.sh, last
#
#   scripts/bench/shared.sh                      SIZE=1G RECORDS=100000
#   SIZE=256M RECORDS=20000 scripts/bench/shared.sh
#
# ONLY="sync" (or any of reads: 1-4, sync: 5, joins: 6) runs those parts alone.
# Other knobs: TTFB_SIZE (default SIZE), PUBLISHES (20), PUB_SIZE (1M), READS (200), JOINS (20),
# ROUNDS1 (3: rows 1 and 1b's rounds), ROUNDS2 (3: row 2's), SYNC_TIMEOUT (120 s),
# BUILD_DIR (default build-bench-shared/), JOBS (2).
# Needs about 8x SIZE free under $TMPDIR and /usr/bin/python3 with python3-libtorrent.
# Everything stays on 127.0.0.1; every mount and process started here is unmounted or
# ended by its PID on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench-shared}
size=${SIZE:-1G}
ttfb_size=${TTFB_SIZE:-$size}
records=${RECORDS:-100000}
publishes=${PUBLISHES:-20}
pub_size=${PUB_SIZE:-1M}
reads=${READS:-200}
joins=${JOINS:-20}
sync_timeout=${SYNC_TIMEOUT:-120}
py=/usr/bin/python3
helper=$root/scripts/bench/bench_shared.py
"$py" -c 'import libtorrent' 2>/dev/null ||
	{ echo "$py cannot import libtorrent: install python3-libtorrent"; exit 1; }
. "$root/scripts/bench/lib.sh"
. "$root/scripts/bench/stats.sh"
bench_build shared swarmfs bench_fs_populate
populate=$build/tests/integration/bench_fs_populate
bench_work shared
declare -A hwm=() anon=()

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
bytes() { numfmt --from=iec "$1"; }

umount_node() { # NAME: note its memory (peak: the most of its mounts), unmount, wait for it
	local p=${pid[$1]} kb
	kb=$(awk '/VmHWM/ { print $2 }' "/proc/$p/status")
	if ((kb > ${hwm[$1]:-0})); then hwm[$1]=$kb; fi
	# file pages mapped from the cache count in VmHWM; the heap is in RssAnon
	anon[$1]=$(awk '/RssAnon/ { print $2 }' "/proc/$p/status")
	fusermount3 -u "$work/mnt-$1"
	wait "$p" || echo "(mount $1 exited with status $?)"
}
wait_published() {
	until "$swarmfs" status "$1" | grep -q "publish queue: 0 staged, 0 queued"; do sleep 0.05; done
}
wait_file() { # PATH: until a node's listing has it (60 s at most)
	for _ in $(seq 6000); do [[ -e $1 ]] && return 0; sleep 0.01; done
	echo "$1 never appeared"; exit 1
}
cpu_s() { # PID: user + system CPU seconds so far, all threads
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
busy_s() { # the machine's busy CPU seconds so far, all cores (not idle, not iowait)
	awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}
busy_pct() { # BUSY0 BUSY1 T0 T1: how busy the machine's cores were from T0 to T1, in %
	awk -v b="$(secs "$1" "$2")" -v w="$(secs "$3" "$4")" -v n="$(nproc)" 'BEGIN { printf "%.0f", 100 * b / (w * n) }'
}
cached() { getfattr --only-values -n user.swarmfs.cached "$1" 2>/dev/null; }
cold_read() { # SEEDER READER [FILE]: READER reads FILE (film.bin) whole, after the disk's
	# writeback is done (sync: the rounds before leave GiBs of dirty pages, every read
	# writes SIZE, and that writeback would land on whichever read comes next); sets
	# rd_mib, rd_cpu (the reader's CPU seconds) and rd_seed_cpu (the seeder's)
	local s0 r0 s1 r1 out
	sync
	s0=$(cpu_s "${pid[$1]}") r0=$(cpu_s "${pid[$2]}")
	out=$("$py" "$helper" read "$work/mnt-$2/${3:-film.bin}")
	s1=$(cpu_s "${pid[$1]}") r1=$(cpu_s "${pid[$2]}")
	rd_mib=$(val mib_s "$out") rd_cpu=$(secs "$r0" "$r1") rd_seed_cpu=$(secs "$s0" "$s1")
}

want() { [[ -z ${ONLY:-} || " $ONLY " == *" $1 "* ]]; }

# every reader has a key of its own, as a user does
for h in b c d f g pb; do "$swarmfs" key new --home "$work/$h" >/dev/null; done
mib=0
if want reads; then
head -c "$size" /dev/urandom >"$work/film.bin"
head -c "$ttfb_size" /dev/urandom >"$work/ttfb.bin"
fsize=$(stat -c %s "$work/film.bin")
mib=$((fsize / 1048576))
fi
plain_rss=-
echo "swarmfs shared-drive benchmarks: ${mib} MiB file, $records records, $(nproc) cores," \
	"libtorrent $(pkg-config --modversion libtorrent-rasterbar)"
echo

if want reads; then
# ---- 1. cold read on B, one seeder (A) ----
"$swarmfs" init --public --home "$work/a" --name team >/dev/null
mount_node a "$work/a" team
uri=$(drive_field "$work/mnt-a" uri)
aport=$(drive_field "$work/mnt-a" "listen port")
cp "$work/film.bin" "$work/mnt-a/"
wait_published "$work/mnt-a"
magnet=$(getfattr --only-values -n user.swarmfs.magnet "$work/mnt-a/film.bin" 2>/dev/null)
# ROUNDS1 rounds (3), the plain client and a fresh B in turn, and the medians of the
# speeds and of the CPU seconds: one read each swung the CPU ratio from 0.7 to 2.25 (the
# plain client's own CPU went from 1.5 to 4.8 s for the same download)
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
plains=() plcpus=() placpus=() plrss=() ourss=() bcpus=() acpus=()
# Row 1b's private drive: PA its publisher and seeder, PB a member reading (below)
"$swarmfs" init --home "$work/pa" --name vault >/dev/null
mount_node pa "$work/pa" vault
pbkey=$("$swarmfs" key show --home "$work/pb")
"$swarmfs" drive add-member "$work/mnt-pa" "$pbkey" >/dev/null
until "$swarmfs" drive members "$work/mnt-pa" | grep -q "${pbkey:0:16}"; do sleep 0.05; done
puri=$(drive_field "$work/mnt-pa" uri)
ourps=() pbcpus=() pacpus=()
# Every timed read in rows 1, 1b and 2 starts after a sync, as cold_read does. A round
# is the plain client's read, B's, then row 1b's of the private drive, back to back, so
# that a machine whose speed shifts mid-run (here the host handing memory back page by
# page) shifts a round's reads alike: row 1b is the median of the rounds' ratios.
for r in $(seq "${ROUNDS1:-3}"); do
	sync
	a0=$(cpu_s "${pid[a]}")
	out=$("$py" "$helper" download "$magnet" "$work/plain1" "127.0.0.1:$aport")
	a1=$(cpu_s "${pid[a]}")
	plains+=("$(val mib_s "$out")") plcpus+=("$(val cpu_s "$out")") placpus+=("$(secs "$a0" "$a1")")
	plrss+=("$(val rss_hwm_mb "$out")")
	rm -rf "$work/plain1"
	# a fresh B each round (its cache gone), which also stays out of the next round's
	# swarm; the last one is mounted again for rows 3 and 4
	rm -rf "$work/b/drives"
	mount_node b "$work/b" "$uri"
	wait_file "$work/mnt-b/film.bin"
	cold_read a b
	ourss+=("$rd_mib") bcpus+=("$rd_cpu") acpus+=("$rd_seed_cpu")
	held=$(cached "$work/mnt-b/film.bin")
	[[ $held == "$fsize" ]] || echo "   B holds $held of $fsize bytes after the read"
	umount_node b
	# 1b: a file published just before (so PA holds its ciphertext as after a publish:
	# in the page cache as far as the plaintext was), read by a fresh PB
	cp "$work/film.bin" "$work/mnt-pa/film-$r.bin"
	wait_published "$work/mnt-pa"
	rm -rf "$work/pb/drives"
	mount_node pb "$work/pb" "$puri"
	wait_file "$work/mnt-pb/film-$r.bin"
	cold_read pa pb "film-$r.bin"
	ourps+=("$rd_mib") pbcpus+=("$rd_cpu") pacpus+=("$rd_seed_cpu")
	cmp -s "$work/film.bin" "$work/mnt-pb/film-$r.bin" || echo "   the private file read back differs"
	umount_node pb
done
umount_node pa
plain=$(med "${plains[@]}") ours=$(med "${ourss[@]}")
b_cpu=$(med "${bcpus[@]}") a_cpu=$(med "${acpus[@]}") plain_cpu=$(med "${plcpus[@]}")
plain_rss=$(printf '%s\n' "${plrss[@]}" | sort -n | tail -1) # the peak of the rounds
printf '%-44s %7s MiB/s   baseline plain libtorrent %s MiB/s   %3s %%  (target >= 95 %%)\n' \
	"1. cold read on B, seeder A (median)" "$ours" "$plain" "$(pct "$ours" "$plain")"
printf '%-44s %7s s       baseline the plain client %s s        %4s x  (target <= 1.1)\n' \
	"   CPU of B's mount per read (median)" "$b_cpu" "$plain_cpu" \
	"$(awk -v a="$b_cpu" -v b="$plain_cpu" 'BEGIN { printf "%.2f", a / b }')"
echo "   each round: B ${ourss[*]} MiB/s, CPU ${bcpus[*]} s (A's ${acpus[*]});" \
	"plain ${plains[*]} MiB/s, CPU ${plcpus[*]} s (A's ${placpus[*]})"

# ---- 1b. the same cold read of a private drive's file: PB a member, PA the seeder ----
# (its rounds run with row 1's, above)
ours_p=$(med "${ourps[@]}")
printf '%-44s %7s MiB/s   baseline the public file on B above %s MiB/s   %3s %%  (target >= 90 %%)\n' \
	"1b. the same, a private drive (median)" "$ours_p" "$ours" "$(side_by_side ourps ourss | ratio_median)"
echo "   each round: PB ${ourps[*]} MiB/s, CPU ${pbcpus[*]} s (PA's ${pacpus[*]}); B's median $b_cpu s (A's $a_cpu);" \
	"PB / B $(ratios ourps ourss) %"

# ---- 2. cold read on a fresh node D, two seeders (A, and C which read it all) ----
mount_node c "$work/c" "$uri"
wait_file "$work/mnt-c/film.bin"
"$py" "$helper" read "$work/mnt-c/film.bin" >/dev/null
held=$(cached "$work/mnt-c/film.bin")
[[ $held == "$fsize" ]] || echo "   C holds $held of $fsize bytes after reading it all"
cport=$(drive_field "$work/mnt-c" "listen port")
# ROUNDS2 rounds, the plain client and a fresh D in turn; the medians (one read each
# swung from 69 to 128 % of the plain client's)
# Each round also notes the CPU seconds of the reader and of each seeder, and how busy
# the machine's cores were over the read (seconds busy / wall seconds x cores): on a
# machine whose cores the three processes fill, the reader's CPU per GiB (row 1) decides
plains=() ourss=() ppeers=() opeers=() pcpus=() ocpus=()
for r in $(seq "${ROUNDS2:-3}"); do
	sync
	a0=$(cpu_s "${pid[a]}") c0=$(cpu_s "${pid[c]}") m0=$(busy_s) t0=$(now)
	pout=$("$py" "$helper" download "$magnet" "$work/plain3" "127.0.0.1:$aport,127.0.0.1:$cport")
	a1=$(cpu_s "${pid[a]}") c1=$(cpu_s "${pid[c]}") m1=$(busy_s) t1=$(now)
	plains+=("$(val mib_s "$pout")") ppeers+=("$(val max_peers "$pout")")
	pcpus+=("$(val cpu_s "$pout")/$(secs "$a0" "$a1")/$(secs "$c0" "$c1")/$(busy_pct "$m0" "$m1" "$t0" "$t1")%")
	rm -rf "$work/plain3"
	rm -rf "$work/d/drives"
	mount_node d "$work/d" "$uri"
	wait_file "$work/mnt-d/film.bin"
	sync
	a0=$(cpu_s "${pid[a]}") c0=$(cpu_s "${pid[c]}") d0=$(cpu_s "${pid[d]}") m0=$(busy_s) t0=$(now)
	out=$("$py" "$helper" read "$work/mnt-d/film.bin")
	a1=$(cpu_s "${pid[a]}") c1=$(cpu_s "${pid[c]}") d1=$(cpu_s "${pid[d]}") m1=$(busy_s) t1=$(now)
	ourss+=("$(val mib_s "$out")") opeers+=("$(val max_peers "$out")")
	ocpus+=("$(secs "$d0" "$d1")/$(secs "$a0" "$a1")/$(secs "$c0" "$c1")/$(busy_pct "$m0" "$m1" "$t0" "$t1")%")
	umount_node d
done
plain=$(med "${plains[@]}") ours=$(med "${ourss[@]}")
printf '%-44s %7s MiB/s   baseline plain libtorrent from A+C %s MiB/s   %3s %%  (target >= 95 %%)\n' \
	"2. cold read on D, seeders A and C (median)" "$ours" "$plain" "$(pct "$ours" "$plain")"
echo "   each round: D ${ourss[*]} MiB/s (peers seen ${opeers[*]}); plain ${plains[*]} MiB/s (peers ${ppeers[*]})"
echo "   CPU s reader/A/C/machine busy, each round: D ${ocpus[*]}; plain ${pcpus[*]}"
umount_node c

# ---- 3. publish on A -> visible in B's listing (B mounted again: it holds film.bin) ----
mount_node b "$work/b" "$uri"
mkdir -p "$work/pub"
out=$("$py" "$helper" publish "$work/pub" "$work/mnt-a" "$work/mnt-b" "$publishes" "$(bytes "$pub_size")")
printf '%-44s p50 %5s ms max %5s ms   baseline confirmed on A p50 %s ms max %s ms  (target <= 1000 ms)\n' \
	"3. publish on A -> in B's ls ($publishes x $pub_size)" "$(val visible_p50_ms "$out")" \
	"$(val visible_max_ms "$out")" "$(val confirmed_p50_ms "$out")" "$(val confirmed_max_ms "$out")"

# ---- 4. time to first byte of random reads on B, not cached there ----
cp "$work/ttfb.bin" "$work/mnt-a/"
wait_published "$work/mnt-a"
wait_file "$work/mnt-b/ttfb.bin"
out=$("$py" "$helper" ttfb "$work/mnt-b/ttfb.bin" "$reads" 7)
cat "$work/ttfb.bin" >/dev/null
base=$("$py" "$helper" ttfb "$work/ttfb.bin" "$reads" 7)
printf '%-44s p50 %5s ms p99 %5s ms   baseline local file p50 %s ms p99 %s ms  (targets 15 / 60 ms)\n' \
	"4. random 16 KiB reads on B, cold ($reads)" "$(val p50_ms "$out")" "$(val p99_ms "$out")" \
	"$(val p50_ms "$base")" "$(val p99_ms "$base")"
echo "   slowest $(val max_ms "$out") ms; the first, which also fetches the torrent's metadata, $(val first_ms "$out") ms"
umount_node b
umount_node a
fi

if want sync; then
# ---- 5. sync of a big ledger to a fresh node, public then private ----
wait_height() { # MNT HEIGHT START: until MNT's height is HEIGHT or more (a private drive's
	# members add a block sealing its epoch key to the newcomer), SYNC_TIMEOUT at most
	until (($(drive_field "$1" height || true) + 0 >= $2)); do
		awk -v a="$3" -v b="$(now)" -v t="$sync_timeout" 'BEGIN { exit !(b - a > t) }' && break
		sleep 0.05
	done
}
SWARMFS_ITEST_BATCH=1 "$populate" "$work/l" big tree "$records" 100 >/dev/null
SWARMFS_ITEST_BATCH=1 "$populate" "$work/lp" bigp tree "$records" 100 private >/dev/null
t0=$(now)
"$swarmfs" verify --home "$work/l" big >"$work/verify.out" || { cat "$work/verify.out"; exit 1; }
t1=$(now)
verify=$(secs "$t0" "$t1")
mount_node l "$work/l" big
# the source's own check of its chain at mount is not to compete with the sync for CPU
until "$swarmfs" status "$work/mnt-l" | grep -q "verification: done"; do sleep 0.1; done
luri=$(drive_field "$work/mnt-l" uri)
lheight=$(drive_field "$work/mnt-l" height)
t0=$(now)
mount_node f "$work/f" "$luri"
wait_height "$work/mnt-f" "$lheight" "$t0"
t1=$(now)
fheight=$(drive_field "$work/mnt-f" height)
((${fheight:-0} >= lheight)) ||
	echo "   F reached height $fheight of $lheight in $(secs "$t0" "$t1") s: gave up (SYNC_TIMEOUT=$sync_timeout)"
pub_s=$(secs "$t0" "$t1")
# what F's mount wrote to disk (its ledger, WAL and checkpoints) for the sync
fwrote=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/${pid[f]}/io" 2>/dev/null || echo 0)
printf '%-44s %7s s       baseline swarmfs verify of it %s s  (%s blocks; target <= 20 s)\n' \
	"5. sync $records records to a fresh node" "$pub_s" "$verify" "$lheight"
echo "   $(awk -v n="$records" -v s="$pub_s" 'BEGIN { printf "%.0f", n / s }') records/s synced;" \
	"$(awk -v n="$records" -v s="$verify" 'BEGIN { printf "%.0f", n / s }') records/s verified;" \
	"F wrote $(awk -v b="$fwrote" -v n="$records" 'BEGIN { printf "%.1f", b / n / 1024 }') KiB a record" \
	"(its database $(du -sk "$work/f" | awk -v n="$records" '{ printf "%.1f", $1 / n }') KiB a record)"
umount_node f
umount_node l
# the same on a private drive: G's key a member first (its record, one block more)
mount_node lp "$work/lp" bigp
until "$swarmfs" status "$work/mnt-lp" | grep -q "verification: done"; do sleep 0.1; done
"$swarmfs" drive add-member "$work/mnt-lp" "$("$swarmfs" key show --home "$work/g")" >/dev/null
until "$swarmfs" drive members "$work/mnt-lp" | grep -q "$("$swarmfs" key show --home "$work/g" | cut -c1-16)"; do sleep 0.05; done
puri=$(drive_field "$work/mnt-lp" uri)
pheight=$(drive_field "$work/mnt-lp" height)
t0=$(now)
mount_node g "$work/g" "$puri"
wait_height "$work/mnt-g" "$pheight" "$t0"
t1=$(now)
gheight=$(drive_field "$work/mnt-g" height)
((${gheight:-0} >= pheight)) ||
	echo "   G reached height $gheight of $pheight in $(secs "$t0" "$t1") s: gave up (SYNC_TIMEOUT=$sync_timeout)"
priv_s=$(secs "$t0" "$t1")
pub_rate=$(awk -v n="$records" -v s="$pub_s" 'BEGIN { printf "%.0f", n / s }')
priv_rate=$(awk -v n="$records" -v s="$priv_s" 'BEGIN { printf "%.0f", n / s }')
printf '%-44s %7s s       baseline the public drive above %s s  (%s vs %s records/s: %s %%; target >= 90 %%)\n' \
	"5b. the same on a private drive" "$priv_s" "$pub_s" "$priv_rate" "$pub_rate" "$(pct "$priv_rate" "$pub_rate")"
umount_node g
umount_node lp
fi

if want joins; then
# ---- 6. joins: the private drive's handshake, and mount to "in sync" ----
"$swarmfs" init --home "$work/h" --name hs >/dev/null
"$swarmfs" init --public --home "$work/hq" --name hq >/dev/null
mount_node h "$work/h" hs
mount_node hq "$work/hq" hq
huri=$(drive_field "$work/mnt-h" uri)
hquri=$(drive_field "$work/mnt-hq" uri)
: >"$work/joins.priv"
: >"$work/joins.pub"
for i in $(seq "$joins"); do
	"$swarmfs" key new --home "$work/j$i" >/dev/null
	k=$("$swarmfs" key show --home "$work/j$i")
	"$swarmfs" drive add-member "$work/mnt-h" "$k" >/dev/null
	until "$swarmfs" drive members "$work/mnt-h" | grep -q "${k:0:16}"; do sleep 0.02; done
	"$py" "$helper" join "$swarmfs" "$work/j$i" "$huri" "$work/mnt-j" >>"$work/joins.priv"
	rm -rf "$work/j$i"
	"$swarmfs" key new --home "$work/k$i" >/dev/null
	"$py" "$helper" join "$swarmfs" "$work/k$i" "$hquri" "$work/mnt-j" >>"$work/joins.pub"
	rm -rf "$work/k$i"
done
stat_of() { # KEY FILE: "p50 max" of KEY's values in FILE (nearest rank)
	awk -v k="$1" '$1 == k { print $2 }' "$2" | sort -n |
		awk '{ v[NR] = $1 } END { if (!NR) { print "- -"; exit } i = int((NR + 1) / 2); printf "%.1f %.1f", v[i], v[NR] }'
}
read -r hs50 hsmax <<<"$(stat_of handshake_ms "$work/joins.priv")"
read -r pj50 pjmax <<<"$(stat_of join_ms "$work/joins.priv")"
read -r qj50 qjmax <<<"$(stat_of join_ms "$work/joins.pub")"
printf '%-44s p50 %5s ms max %5s ms   (target p50 <= 50 ms)\n' \
	"6. handshake of a private drive ($joins joins)" "$hs50" "$hsmax"
printf '%-44s p50 %5s ms max %5s ms   baseline a public drive p50 %s ms max %s ms\n' \
	"   mount to \"in sync\", fresh home" "$pj50" "$pjmax" "$qj50" "$qjmax"
umount_node hq
umount_node h
fi

# ---- peak RSS of each mount ----
echo
printf '%-44s' "peak RSS (VmHWM) / RssAnon at unmount, MB"
for n in a b pa pb c d l f lp g; do
	[[ -n ${hwm[$n]:-} ]] && printf ' %s %s/%s' "$n" "$((${hwm[$n]} / 1024))" "$((${anon[$n]} / 1024))"
done
printf '   baseline plain libtorrent client peak %s MB\n' "$plain_rss"
for n in "${nodes[@]}"; do
	if grep -qE "error|warning" "$work/$n.log"; then
		echo "$n's log:"
		grep -E "error|warning" "$work/$n.log" | sort | uniq -c | sort -rn | head -5
	fi
done

# ---- 7. credit overhead (its own drive and mounts) ----
echo
SIZE=$size BUILD_DIR=$build "$root/scripts/bench/credit.sh"
