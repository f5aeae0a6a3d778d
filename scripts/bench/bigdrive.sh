#!/usr/bin/env bash
# Big drives (issue 18): each row beside a baseline measured in the same run.
#   - building an N-record drive through the ledger library (bigdrive_gen: batches of
#     1000, one block each), extrapolated to 1M               (target <= 5 min for 1M)
#   - mount -> first stat answered                             (target <= 2 s)
#   - stat / ls -l / swarmfs status p99 while the verification sweep runs, vs the same
#     on a local tree                                          (target p99 <= 50 ms);
#     beside ls -l (the command), a program that reads a directory's names first and
#     then lstats each (os.listdir + os.lstat: one lookup per name, where ls -l, which
#     stats each name as it reads it, gets the attributes with the names)
#   - find over the drive on a fresh mount vs a local tree of the same shape (<= 3x)
#   - RSS of the mount after that find vs an empty drive's     (target <= 100 MB at 1M)
#   - a new node's sync of the drive from the mount, until it is at the head, vs
#     N Ed25519 verifies at openssl speed's rate             (target <= 10 s per 100k),
#     and its memory: peak, and once in sync, vs an empty drive's mount
#   - cp -r of FILES small files into a mount: published and confirmed, files/s, vs
#     cp -r to local disk                                      (target >= 2000/s)
# The 10-node fan-out row (publisher's upload when 9 members read a new file at once)
# is scripts/bench/fanout.sh's; the 10-node cp -r row is scripts/bench/cpnodes.sh's.
#
#   scripts/bench/bigdrive.sh                  N=100000 FILES=2000
#   N=1000000 FILES=10000 scripts/bench/bigdrive.sh
#   ONLY=cp FILES=10000 scripts/bench/bigdrive.sh   the cp -r row alone (no big drive)
#
# Needs about 1.3 KB per record under $TMPDIR. Everything stays on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
n=${N:-100000}
files=${FILES:-2000}
dirs=${DIRS:-$(((n + 999) / 1000))}
only=${ONLY:-} # cp: only the cp -r row
[[ -z $only || $only == cp ]] || { echo "ONLY=$only: only ONLY=cp is known" >&2; exit 2; }
sweep_s=${SWEEP_PROBE_S:-20} # seconds of probing while the sweep runs, at most
mkdir -p "$build"
[[ -f $build/CMakeCache.txt ]] || cmake -S "$root" -B "$build" >"$build/configure.log"
targets=(swarmfs bigdrive_gen)
[[ $only == cp ]] && targets=(swarmfs)
cmake --build "$build" --target "${targets[@]}" -j"${JOBS:-2}" >"$build/bench_bigdrive.build.log" ||
	{ grep -E "error|warning" "$build/bench_bigdrive.build.log" | head -30; exit 1; }
swarmfs=$build/fs/swarmfs
gen=$build/ledger/bigdrive_gen

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bigdrive-XXXXXX")
pids=()
cleanup() {
	for m in "$work"/mnt-*; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# now, secs, rate, rss_kb, row
. "$root/scripts/bench/lib.sh"
mount_bg() { # NAME HOME DRIVE [ARGS...]: start a mount in the background; its pid in $mpid
	mkdir -p "$work/mnt-$1"
	"$swarmfs" mount -f --home "$2" --no-dht --listen 127.0.0.1:0 "${@:4}" "$3" "$work/mnt-$1" \
		2>>"$work/$1.log" &
	mpid=$!
	pids+=("$mpid")
}
wait_mounted() {
	for _ in $(seq 2400); do mountpoint -q "$work/mnt-$1" && return 0; sleep 0.025; done
	echo "mount $1 failed:"; cat "$work/$1.log"; exit 1
}
# p50 and p99 in ms of an operation on random lines of a list, for at most S seconds
# (400 at most): stat (os.stat), ls (a directory's names, then an lstat of each) in this
# process, or a shell command with {} for the argument
lat() { # S stat|ls|CMD ROOT LIST_FILE
	python3 - "$@" <<'PY'
import os, random, subprocess, sys, time
secs, op, root, lst = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
args = open(lst).read().split("\n")[:-1]; random.seed(7); t = []; end = time.time() + secs
while time.time() < end and len(t) < 400:
    a = os.path.join(root, random.choice(args)); s = time.perf_counter()
    if op == "stat":
        os.stat(a)
    elif op == "ls":
        for e in os.listdir(a):
            os.lstat(os.path.join(a, e))
    else:
        subprocess.run(op.replace("{}", a), shell=True, stdout=subprocess.DEVNULL)
    t.append((time.perf_counter() - s) * 1000)
t.sort(); print("%.2f %.2f %d" % (t[len(t) // 2], t[min(len(t) - 1, int(len(t) * 0.99))], len(t)))
PY
}

if [[ $only == cp ]]; then
	echo "swarmfs big-drive benchmarks: the cp -r row alone, $files small files, $(nproc) cores"
else
	echo "swarmfs big-drive benchmarks: $n records in $dirs directories, $files small files, $(nproc) cores"
fi
echo

if [[ $only != cp ]]; then

# ---- building the drive ----
t0=$(now)
id=$("$gen" "$work/big" big "$n" 1000 "$dirs" 2>"$work/gen.log")
t1=$(now)
gs=$(secs "$t0" "$t1")
ossl=$(openssl speed -seconds 2 ed25519 2>/dev/null | awk '/Ed25519/ { print $NF }' | tail -1)
row "build an N-record drive (bigdrive_gen)" \
	"$(rate "$n" "$gs") records/s, ${gs} s; 1M extrapolated $(awk -v s="$gs" -v n="$n" 'BEGIN { printf "%.0f", s * 1e6 / n }') s (target <= 300 s)   baseline openssl ed25519 verify ${ossl}/s"
db=$work/big/drives/$id/ledger.db
row "ledger.db size" "$(($(stat -c %s "$db") / 1048576)) MB ($(($(stat -c %s "$db") / n)) bytes/record)"

# ---- the local tree of the same shape ----
mkdir -p "$work/local/tree"
(cd "$work/local/tree" && seq 0 $((dirs - 1)) | awk '{ printf "d%03d\n", $1 }' | xargs mkdir)
(cd "$work/local/tree" && seq 0 $((n - 1)) | awk -v d="$dirs" '{ printf "d%03d/file-%07d\n", $1 % d, $1 }' | xargs touch)
seq 0 $((n - 1)) | awk -v d="$dirs" '{ printf "tree/d%03d/file-%07d\n", $1 % d, $1 }' | shuf -n 2000 --random-source=<(yes) >"$work/paths"
seq 0 $((dirs - 1)) | awk '{ printf "tree/d%03d\n", $1 }' >"$work/dirs"
# the two listing probes on different directories: what one listed, the kernel holds
awk 'NR % 2' "$work/dirs" >"$work/dirs-a"
awk '!(NR % 2)' "$work/dirs" >"$work/dirs-b"

# ---- mount -> first stat ----
first=$(head -1 "$work/paths")
t0=$(now)
mount_bg big "$work/big" big
wait_mounted big
until stat "$work/mnt-big/$first" >/dev/null 2>&1; do sleep 0.01; done
t1=$(now)
t2=$(now); stat "$work/local/$first" >/dev/null; t3=$(now)
row "mount -> first stat answered" "$(secs "$t0" "$t1") s   baseline local stat $(secs "$t2" "$t3") s (target <= 2 s)"

# ---- latencies while the sweep runs ----
sweeping() { "$swarmfs" status "$work/mnt-big" 2>/dev/null | grep -q "^verification: running"; }
state=$("$swarmfs" status "$work/mnt-big" | awk -F': ' '/^verification/ { print $2 }')
read -r s50 s99 sn <<<"$(lat "$sweep_s" stat "$work/mnt-big" "$work/paths")"
read -r l50 l99 ln <<<"$(lat "$sweep_s" "ls -l {}" "$work/mnt-big" "$work/dirs-a")"
read -r n50 n99 nn <<<"$(lat "$sweep_s" ls "$work/mnt-big" "$work/dirs-b")"
read -r q50 q99 qn <<<"$(lat "$sweep_s" "$swarmfs status $work/mnt-big" / "$work/dirs")"
read -r t50 t99 _ <<<"$(lat 3 "true" / "$work/dirs")"
after=$("$swarmfs" status "$work/mnt-big" | awk -F': ' '/^verification/ { print $2 }')
read -r b50 b99 _ <<<"$(lat 3 stat "$work/local" "$work/paths")"
read -r c50 c99 _ <<<"$(lat 3 "ls -l {}" "$work/local" "$work/dirs-a")"
read -r d50 d99 _ <<<"$(lat 3 ls "$work/local" "$work/dirs-b")"
echo "  (sweep at the start of the probes: $state; at their end: $after)"
row "stat during the sweep" "p50 $s50 ms p99 $s99 ms ($sn)   baseline local p50 $b50 p99 $b99 ms (target p99 <= 50 ms)"
row "ls -l of a $((n / dirs))-entry directory, sweep" "p50 $l50 ms p99 $l99 ms ($ln)   baseline local p50 $c50 p99 $c99 ms (target p99 <= 50 ms)"
row "its names, then lstat of each, sweep" "p50 $n50 ms p99 $n99 ms ($nn)   baseline local p50 $d50 p99 $d99 ms"
row "swarmfs status during the sweep" "p50 $q50 ms p99 $q99 ms ($qn)   baseline spawning /bin/true p50 $t50 p99 $t99 ms (target p99 <= 50 ms)"
fusermount3 -u "$work/mnt-big"
wait "$mpid" || true

# ---- find on a fresh mount ----
sync
mount_bg big "$work/big" big
wait_mounted big
bigpid=$mpid
t0=$(now); fn=$(find "$work/mnt-big" | wc -l); t1=$(now)
t2=$(now); find "$work/local" | wc -l >/dev/null; t3=$(now)
fs=$(secs "$t0" "$t1"); ls_=$(secs "$t2" "$t3")
row "find, fresh mount" "$fs s ($fn entries)   baseline local tree $ls_ s   ratio $(awk -v a="$fs" -v b="$ls_" 'BEGIN { printf "%.1f", a / b }')x (target <= 3x)"
t0=$(now); find "$work/mnt-big" | wc -l >/dev/null; t1=$(now)
row "find, warm" "$(secs "$t0" "$t1") s"
big_rss=$(rss_kb "$bigpid")
fi
"$swarmfs" init --public --home "$work/e" --name empty >/dev/null
mount_bg e "$work/e" empty
wait_mounted e
epid=$mpid
if [[ $only != cp ]]; then
	small_rss=$(rss_kb "$epid")
	row "RSS after find" "$((big_rss / 1024)) MB   baseline empty drive $((small_rss / 1024)) MB (target <= 100 MB at 1M)"

	# ---- a new node syncs the drive from the mount (issue 13) ----
	uri=$(drive_field "$work/mnt-big" uri)
	port=$(drive_field "$work/mnt-big" "listen port")
	height=$(drive_field "$work/mnt-big" height | awk '{ print $1 }')
	"$swarmfs" key new --home "$work/j" >/dev/null
	t0=$(now)
	mount_bg j "$work/j" "$uri" --peer "127.0.0.1:$port"
	wait_mounted j
	for _ in $(seq 24000); do
		h=$(drive_field "$work/mnt-j" height | awk '{ print $1 }')
		[[ -n $h ]] && ((h >= height)) && break
		sleep 0.05
	done
	t1=$(now)
	((h >= height)) || { echo "the new node reached height $h of $height"; exit 1; }
	js=$(secs "$t0" "$t1")
	row "a new node syncs the drive (mount -> head)" \
		"$js s, $(rate "$n" "$js") records/s, $(awk -v s="$js" -v n="$n" 'BEGIN { printf "%.1f", s * 1e5 / n }') s per 100k   baseline $n Ed25519 verifies at openssl's rate $(awk -v n="$n" -v v="$ossl" 'BEGIN { printf "%.1f", n / v }') s (target <= 10 s per 100k)"
	# its memory once in sync: the peak, and what it keeps once its RSS stops falling
	# (the bulk sync's page cache is given back at the end of each run)
	jpid=$mpid
	peak=$(awk '/VmHWM/ { print $2 }' "/proc/$jpid/status")
	for _ in $(seq 40); do
		r0=$(rss_kb "$jpid")
		sleep 0.05
		(($(rss_kb "$jpid") >= r0)) && break
	done
	row "  the new node's memory" "peak $((peak / 1024)) MB, once in sync $(($(rss_kb "$jpid") / 1024)) MB   baseline empty drive $((small_rss / 1024)) MB"
	fusermount3 -u "$work/mnt-j"
	fusermount3 -u "$work/mnt-big"
fi

# ---- cp -r of small files ----
mkdir -p "$work/src"
small_files "$work/src" "$files"
t0=$(now); cp -r "$work/src" "$work/local-copy"; sync; t1=$(now)
base=$(rate "$files" "$(secs "$t0" "$t1")")
c0=$(cpu_ticks "$epid")
t0=$(now)
cp -r "$work/src" "$work/mnt-e/"
t1=$(now)
until published "$work/mnt-e"; do sleep 0.05; done
t2=$(now)
c1=$(cpu_ticks "$epid")
height=$("$swarmfs" status "$work/mnt-e" | awk '/^height/ { print $2 }')
row "cp -r of small files: published+confirmed" "$(rate "$files" "$(secs "$t0" "$t2")") files/s (cp returned after $(secs "$t0" "$t1") s; $height blocks)   baseline cp -r + sync to local disk $base files/s (target >= 2000/s)"
row "  the mount's CPU per 1000 files" "$(per_1000 $((c1 - c0)) "$files") s (user+system, less noisy than files/s under load)"
fusermount3 -u "$work/mnt-e"
[[ $only == cp ]] || row "10-node fan-out (publisher's upload)" "scripts/bench/fanout.sh measures it"
[[ $only == cp ]] || row "cp -r into a 10-node drive" "scripts/bench/cpnodes.sh measures it"
