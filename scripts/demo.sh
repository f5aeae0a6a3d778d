#!/usr/bin/env bash
# The README's main command: a live demo of a swarmfs drive on this machine.
#
#   scripts/demo.sh          build, make a drive, mount it, publish and show files, and
#                            keep it mounted until Ctrl-C
#   scripts/demo.sh --once   the same, then unmount and exit (what the tests run)
#
# Everything lives in a temporary directory (printed), removed at the end. All traffic
# stays on 127.0.0.1: no DHT, no local discovery.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
once=0
[[ ${1:-} == --once ]] && once=1

"$root/scripts/setup.sh"
build=${BUILD_DIR:-$root/build}
echo "== building swarmfs in $build"
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
swarmfs=$build/fs/swarmfs

work=$(mktemp -d /tmp/swarmfs-demo-XXXXXX)
home=$work/home
mnt=$work/team
mkdir -p "$mnt"
pid=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" || true
	fi
	[[ -n $pid ]] && wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
	echo
	echo "\$ $*"
	"$@"
}

"$swarmfs" --version
step "$swarmfs" init --home "$home" --name team
step "$swarmfs" key new friend --home "$home"

echo
echo "== mounting drive 'team' at $mnt"
"$swarmfs" mount -f --home "$home" --no-dht --listen 127.0.0.1:0 --cache-size 1G \
	team "$mnt" -o auto_unmount 2>"$work/mount.log" &
pid=$!
for _ in $(seq 200); do
	mountpoint -q "$mnt" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/mount.log"; exit 1; }
	sleep 0.05
done
mountpoint -q "$mnt" || { echo "demo: mount did not come up"; cat "$work/mount.log"; exit 1; }

# sample content: a small tree, a text file, a 16 MiB binary
mkdir -p "$work/photos/2026"
for i in 1 2 3; do head -c $((i * 200000)) /dev/urandom >"$work/photos/2026/img$i.jpg"; done
printf 'swarmfs: a shared drive without a server\n' >"$work/README.txt"
head -c $((16 << 20)) /dev/urandom >"$work/film.mkv"

echo
echo "== publishing by copy"
step cp -r "$work/photos" "$work/README.txt" "$work/film.mkv" "$mnt/"
for _ in $(seq 600); do
	"$swarmfs" status "$mnt" | grep -q "publish queue: 0 staged" && break
	sleep 0.1
done
step ls -lR "$mnt"
step cat "$mnt/README.txt"
echo
echo "\$ sha256sum film.mkv (source, then through the mount)"
sha256sum "$work/film.mkv" | cut -d' ' -f1
sha256sum "$mnt/film.mkv" | cut -d' ' -f1
step getfattr -d --absolute-names "$mnt/film.mkv"
step "$swarmfs" magnet "$mnt/film.mkv"
step "$swarmfs" status "$mnt"

echo
echo "== ownership: give README.txt to 'friend'; this key can no longer change it"
step "$swarmfs" transfer "$mnt/README.txt" --to friend --home "$home"
step ls -l "$mnt/README.txt"
step rm "$mnt/README.txt" || true
step getfattr -n user.swarmfs.log --only-values --absolute-names "$mnt/README.txt"

if ((once)); then
	echo
	echo "== unmounting"
	fusermount3 -u "$mnt"
	wait "$pid"
	pid=
	echo "demo: done"
	exit 0
fi
echo
echo "The drive stays mounted at $mnt; try it from another shell. Ctrl-C to stop."
wait "$pid"
