#!/usr/bin/env bash
# `swarmfs mount TORRENT` against a plain python3-libtorrent download of the same torrent
# (issue 14, DESIGN.md §8), and btfs in the same run when it is installed (apt-get
# install btfs: for this bench only, never for CI). A hybrid torrent of one SIZE file is
# seeded by python3-libtorrent on 127.0.0.1; every reader is given the seeder as its
# peer, nothing else (no DHT, no tracker).
#
#   scripts/bench/torrent.sh             256 MiB file
#   SIZE=1G scripts/bench/torrent.sh     another size (anything `head -c` takes)
#
# Figures, each beside its baseline:
#   cold sequential read (dd of the mounted file)    vs the plain download's MiB/s
#   time to first byte (head -c 1 on a fresh mount)  vs the plain client's first piece
#   random 4 KiB reads (50, fresh mount), p50/p99    vs the same reads of the local file
#   RSS of the mount after the sequential read       vs the plain client's max RSS
# Needs root or a user allowed to mount FUSE, and about 4x SIZE under $TMPDIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
size=${SIZE:-256M}
bin=$build/fs/swarmfs
[[ -x $bin ]] || { echo "build swarmfs first ($bin)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bench-torrent-XXXXXX")
pids=()
cleanup() {
	for m in "$work"/mnt-*; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/src"
head -c "$size" /dev/urandom >"$work/src/film.bin"
mib=$(($(stat -c %s "$work/src/film.bin") / 1048576))
echo "swarmfs mount vs plain libtorrent, ${mib} MiB file, $(nproc) cores"

/usr/bin/python3 "$root/tests/integration/lt_seed.py" "$work/src/film.bin" "$work/film.torrent" \
	262144 >"$work/seed.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do grep -q '^seeding' "$work/seed.log" && break; sleep 0.1; done
port=$(awk '/^seeding/ {print $2}' "$work/seed.log")
[[ -n $port ]] || { cat "$work/seed.log"; exit 1; }
peer=127.0.0.1:$port

# the baseline: a plain python3-libtorrent download of the whole torrent
/usr/bin/python3 - "$work/film.torrent" "$work/plain" "$peer" >"$work/plain.out" <<'EOF'
import resource, sys, time
import libtorrent as lt
tfile, out, peer = sys.argv[1:4]
host, port = peer.rsplit(":", 1)
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,
                  "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                  "allow_multiple_connections_per_ip": True,
                  # TCP only, as swarmfs: uTP on loopback stalls (issue 4)
                  "enable_outgoing_utp": False, "enable_incoming_utp": False})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(tfile)
p.save_path = out
t0 = time.time()
h = ses.add_torrent(p)
h.connect_peer((host, int(port)))
first = None
while not h.status().is_seeding:
    if first is None and h.status().num_pieces > 0:
        first = time.time() - t0
    time.sleep(0.005)
total = time.time() - t0
size = p.ti.total_size()
print("plain_mib_s %.1f" % (size / 1048576 / total))
print("plain_first_piece_ms %.0f" % (1000 * (first if first is not None else total)))
print("plain_rss_mb %.0f" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
EOF
val() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# mount the torrent in a fresh home; echo the daemon's pid
mount_torrent() { # NAME
	mkdir -p "$work/mnt-$1" "$work/home-$1"
	"$bin" mount -f --home "$work/home-$1" --no-dht --listen 127.0.0.1:0 --peer "$peer" \
		"$work/film.torrent" "$work/mnt-$1" 2>"$work/mount-$1.log" &
	pids+=($!)
	for _ in $(seq 200); do [[ -e $work/mnt-$1/film.bin ]] && break; sleep 0.05; done
	[[ -e $work/mnt-$1/film.bin ]] || { cat "$work/mount-$1.log"; exit 1; }
}
now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 1000 * (b - a) }'; }

# random 4 KiB reads of PATH at 50 offsets fixed by a seed: p50 and p99 in ms
random_reads() {
	/usr/bin/python3 - "$1" <<'EOF'
import os, random, sys, time
f = sys.argv[1]
n = os.path.getsize(f)
r = random.Random(14)
t = []
fd = os.open(f, os.O_RDONLY)
for _ in range(50):
    off = r.randrange(0, n - 4096)
    t0 = time.time()
    os.pread(fd, 4096, off)
    t.append(1000 * (time.time() - t0))
t.sort()
print("%.1f %.1f" % (t[24], t[49]))
EOF
}

# time to first byte, then the cold sequential read, on one fresh mount
mount_torrent seq
t0=$(now)
head -c 1 "$work/mnt-seq/film.bin" >/dev/null
t1=$(now)
dd if="$work/mnt-seq/film.bin" of=/dev/null bs=1M 2>/dev/null
t2=$(now)
seq_mib=$(awk -v a="$t1" -v b="$t2" -v m="$mib" 'BEGIN { printf "%.1f", m / (b - a) }')
rss=$(($(ps -o rss= -p "${pids[-1]}") / 1024))
fusermount3 -u "$work/mnt-seq"
mount_torrent rand
read -r r50 r99 < <(random_reads "$work/mnt-rand/film.bin")
fusermount3 -u "$work/mnt-rand"
read -r l50 l99 < <(random_reads "$work/plain/film.bin")

echo "cold sequential read:  $seq_mib MiB/s   plain download: $(val plain_mib_s "$work/plain.out") MiB/s"
echo "time to first byte:    $(ms "$t0" "$t1") ms   plain client's first piece: $(val plain_first_piece_ms "$work/plain.out") ms"
echo "random 4 KiB (cold):   p50 $r50 ms, p99 $r99 ms   the same reads of the local file: p50 $l50 ms, p99 $l99 ms"
echo "RSS after the read:    $rss MB   plain client: $(val plain_rss_mb "$work/plain.out") MB"

if command -v btfs >/dev/null; then
	mkdir -p "$work/mnt-btfs" "$work/btfs-data"
	t0=$(now)
	btfs --data-directory="$work/btfs-data" "$work/film.torrent" "$work/mnt-btfs"
	for _ in $(seq 200); do [[ -e $work/mnt-btfs/film.bin ]] && break; sleep 0.05; done
	timeout 60 head -c 1 "$work/mnt-btfs/film.bin" >/dev/null || echo "btfs: no first byte in 60 s"
	t1=$(now)
	timeout 300 dd if="$work/mnt-btfs/film.bin" of=/dev/null bs=1M 2>/dev/null || true
	t2=$(now)
	brss=$(($(ps -o rss= -C btfs | sort -n | tail -1) / 1024))
	echo "btfs (no --peer option: it finds the seeder only through trackers/DHT, so its"
	echo "  figures are for comparison where it connects at all):"
	echo "  first byte $(ms "$t0" "$t1") ms, sequential $(awk -v a="$t1" -v b="$t2" -v m="$mib" \
		'BEGIN { printf "%.1f", m / (b - a) }') MiB/s, RSS $brss MB"
	fusermount3 -u "$work/mnt-btfs"
else
	echo "btfs: not installed (apt-get install btfs to compare it in this run)"
fi
