#!/usr/bin/env bash
# The README's main command: a live demo of a swarmfs drive on this machine.
#
#   scripts/demo.sh          build, mount, show, and keep the drive mounted until Ctrl-C
#   scripts/demo.sh --once   the same, then unmount and exit (what the tests run)
#
# Everything lives in a temporary directory (printed), removed at the end.
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
mkdir -p "$home" "$mnt"
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

show() {
	echo
	echo "\$ $*"
	"$@"
}

"$swarmfs" --version
echo "== mounting drive 'team' at $mnt (data in $home)"
"$swarmfs" mount -f --home "$home" --cache-size 1G team "$mnt" -o auto_unmount \
	2>"$work/mount.log" &
pid=$!
for _ in $(seq 100); do
	mountpoint -q "$mnt" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/mount.log"; exit 1; }
	sleep 0.05
done
mountpoint -q "$mnt" || { echo "demo: mount did not come up"; cat "$work/mount.log"; exit 1; }

show ls -la "$mnt"
show stat "$mnt"
show df -h "$mnt"
show findmnt "$mnt"

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
