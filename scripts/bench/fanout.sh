#!/usr/bin/env bash
# Fan-out (issue 18): READERS members read one new SIZE file at once, published on A
# a moment before. How many copies of it does A upload (A's payload bytes sent during
# the read / SIZE; target <= 2.5), beside the baseline of the same run: READERS plain
# libtorrent clients (python3-libtorrent, rarest first, PEX) fetching the same torrent
# from A at once, which trade among themselves as BitTorrent does at its best.
# Also printed: the slowest reader's time in each, and the readers' mean rate.
#
#   scripts/bench/fanout.sh                 READERS=9 SIZE=256M (10 nodes)
#   READERS=4 SIZE=64M scripts/bench/fanout.sh
#
# Everything stays on 127.0.0.1; peers find each other from A (--peer) and by PEX.
# Needs (READERS + 2) x SIZE free under $TMPDIR and /usr/bin/python3 with
# python3-libtorrent. Copies are a byte count, not a time: a loaded machine changes the
# readers' rates, not what A sends, though it may change how the readers trade.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
readers=${READERS:-9}
size=${SIZE:-256M}
py=/usr/bin/python3
"$py" -c 'import libtorrent' 2>/dev/null ||
	{ echo "$py cannot import libtorrent: install python3-libtorrent"; exit 1; }
. "$root/scripts/bench/lib.sh"
bench_build fanout swarmfs
bench_work fanout

uploaded() { # MOUNTPOINT: the session's payload bytes uploaded so far
	"$swarmfs" status --json "$1" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["total_uploaded"])'
}
settled() { # MOUNTPOINT: uploaded, once it has stopped moving. libtorrent adds a
	# second's transfer to the total at its once-a-second tick: read at once, a run of
	# a few seconds misses up to a second of it (64 MiB runs read 0.00 copies)
	local a b
	a=$(uploaded "$1")
	for _ in $(seq 60); do
		sleep 1.5
		b=$(uploaded "$1")
		[[ $a == "$b" ]] && break
		a=$b
	done
	echo "$a"
}
copies() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.2f", b / s }'; }

head -c "$size" /dev/urandom >"$work/film.bin"
fsize=$(stat -c %s "$work/film.bin")
echo "swarmfs fan-out benchmark: $readers readers of one new $((fsize / 1048576)) MiB file," \
	"$((readers + 1)) nodes, $(nproc) cores, libtorrent $(pkg-config --modversion libtorrent-rasterbar)"
echo

"$swarmfs" init --public --home "$work/a" --name team >/dev/null
mount_node a "$work/a" team
uri=$(drive_field "$work/mnt-a" uri)
aport=$(drive_field "$work/mnt-a" "listen port")
cp "$work/film.bin" "$work/mnt-a/"
until "$swarmfs" status "$work/mnt-a" | grep -q "publish queue: 0 staged, 0 queued"; do sleep 0.05; done
magnet=$(getfattr --only-values -n user.swarmfs.magnet "$work/mnt-a/film.bin" 2>/dev/null)

# ---- baseline: READERS plain clients at once, one process, a session each ----
u0=$(settled "$work/mnt-a")
base=$("$py" - "$magnet" "$work/plain" "$aport" "$readers" <<'PY'
import os, sys, time
import libtorrent as lt
magnet, out, aport, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sessions, handles = [], []
for i in range(n):
    s = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,
                    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                    "allow_multiple_connections_per_ip": True,
                    "enable_outgoing_utp": False, "enable_incoming_utp": False})
    p = lt.parse_magnet_uri(magnet)
    p.save_path = os.path.join(out, str(i))
    sessions.append(s)
    handles.append(s.add_torrent(p))
t0 = time.monotonic()
done = {}
last_dial = 0.0
while len(done) < n:
    now = time.monotonic()
    if now - t0 > 900:
        sys.exit("baseline: timeout")
    for i, h in enumerate(handles):
        if i in done:
            continue
        st = h.status()
        if st.is_seeding:
            done[i] = now - t0
        elif now - last_dial > 0.5 and st.num_peers == 0:
            h.connect_peer(("127.0.0.1", aport))
    if now - last_dial > 0.5:
        last_dial = now
    time.sleep(0.01)
print("slowest %.2f" % max(done.values()))
print("mean %.2f" % (sum(done.values()) / n))
PY
)
u1=$(settled "$work/mnt-a")
rm -rf "$work/plain"
b_slow=$(awk '$1 == "slowest" { print $2 }' <<<"$base")
b_mean=$(awk '$1 == "mean" { print $2 }' <<<"$base")
b_copies=$(copies $((u1 - u0)) "$fsize")

# ---- ours: READERS member mounts read the file at once ----
for i in $(seq "$readers"); do
	"$swarmfs" key new --home "$work/r$i" >/dev/null
	mount_node "r$i" "$work/r$i" "$uri" --peer "127.0.0.1:$aport"
done
for i in $(seq "$readers"); do
	for _ in $(seq 1200); do [[ -e $work/mnt-r$i/film.bin ]] && break; sleep 0.05; done
	[[ -e $work/mnt-r$i/film.bin ]] || { echo "r$i never listed film.bin"; exit 1; }
done
u0=$(settled "$work/mnt-a")
t0=$(date +%s.%N)
rpids=()
for i in $(seq "$readers"); do
	(
		s=$(date +%s.%N)
		cat "$work/mnt-r$i/film.bin" >"$work/r$i.out"
		e=$(date +%s.%N)
		awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f\n", b - a }' >"$work/r$i.secs"
	) &
	rpids+=($!)
done
if [[ -n ${FANOUT_DEBUG:-} ]]; then # what reader 1 is connected to, mid-read
	sleep 5; "$swarmfs" status "$work/mnt-r1" >"$FANOUT_DEBUG" 2>&1
	"$swarmfs" status "$work/mnt-a" >>"$FANOUT_DEBUG" 2>&1
fi
fail=0
for p in "${rpids[@]}"; do wait "$p" || fail=1; done
((fail == 0)) || { echo "a reader failed"; exit 1; }
u1=$(settled "$work/mnt-a")
for i in $(seq "$readers"); do
	cmp -s "$work/film.bin" "$work/r$i.out" || { echo "r$i read different bytes"; exit 1; }
	rm -f "$work/r$i.out"
done
o_slow=$(cat "$work"/r*.secs | sort -n | tail -1)
o_mean=$(cat "$work"/r*.secs | awk '{ s += $1 } END { printf "%.2f", s / NR }')
o_copies=$(copies $((u1 - u0)) "$fsize")

printf '%-44s %6s copies   baseline %d plain clients %6s copies   (target <= 2.5)\n' \
	"A's upload while $readers members read" "$o_copies" "$readers" "$b_copies"
printf '%-44s %6s s (mean %s s)   baseline %6s s (mean %s s)\n' \
	"slowest reader" "$o_slow" "$o_mean" "$b_slow" "$b_mean"
