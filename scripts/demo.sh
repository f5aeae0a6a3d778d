#!/usr/bin/env bash
# The README's main command: a live demo of a private drive shared by two nodes on this
# machine.
#
#   scripts/demo.sh          build, start a tracker, make a private drive as alice, mount
#                            it as alice, invite bob (a swarmfs:// URI with a one-time
#                            secret) and mount it as bob from that URI; show a stranger
#                            with the drive's plain URI refused; publish on one node and
#                            read, check and change on the other; bob pins a file and
#                            health counts its holders; keep both mounted until Ctrl-C
#   scripts/demo.sh --once   the same, then unmount and exit (what the tests run)
#   SWARMFS_BIN=/usr/bin/swarmfs scripts/demo.sh --once
#                            the same with that binary, building nothing
#
# Everything lives in a temporary directory (printed), removed at the end. All traffic
# stays on 127.0.0.1: no DHT, no local discovery.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
once=0
[[ ${1:-} == --once ]] && once=1

"$root/scripts/setup.sh"
build=${BUILD_DIR:-$root/build}
if [[ -n ${SWARMFS_BIN:-} ]]; then # an installed swarmfs (scripts/deb-smoke.sh)
	swarmfs=$SWARMFS_BIN
else
	echo "== building swarmfs in $build"
	cmake -S "$root" -B "$build" >/dev/null
	cmake --build "$build" -j"$(nproc)" >/dev/null
	swarmfs=$build/fs/swarmfs
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-demo-XXXXXX")
chmod 755 "$work" # opentracker drops to nobody and chroots below it
mkdir -p "$work/alice/team" "$work/bob/team" "$work/eve/team" "$work/tracker"
pids=()
mounts=("$work/alice/team" "$work/bob/team" "$work/eve/team")
tracker_pid=
cleanup() {
	for m in "${mounts[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" || true
		fi
	done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[[ -n $tracker_pid ]] && { kill "$tracker_pid" 2>/dev/null; wait "$tracker_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
	echo
	echo "\$ $*"
	"$@"
}

# wait_for SECONDS COMMAND...: until the command succeeds
wait_for() {
	local n=$(($1 * 20))
	shift
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}

mount_node() { # NAME DRIVE
	local home=$work/$1 mnt=$work/$1/team
	"$swarmfs" mount -f --home "$home/data" --no-dht --listen 127.0.0.1:0 --cache-size 1G \
		--tracker "$tracker" "$2" "$mnt" 2>"$home/mount.log" &
	pids+=($!)
	if ! wait_for 60 mountpoint -q "$mnt"; then
		echo "demo: the mount of $1 did not come up:"
		cat "$home/mount.log"
		exit 1
	fi
}

"$swarmfs" --version

echo
echo "== a local BitTorrent tracker (opentracker) on 127.0.0.1"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$work/tracker/whitelist"
opentracker -i 127.0.0.1 -p "$port" -P "$port" -d "$work/tracker" -w whitelist \
	>"$work/tracker/log" 2>&1 &
tracker_pid=$!
tracker=http://127.0.0.1:$port/announce
echo "$tracker"

echo
echo "== two people on this machine: alice makes a private drive, bob gets a key"
step "$swarmfs" init --home "$work/alice/data" --name team --tracker "$tracker"
step "$swarmfs" key new --home "$work/bob/data"
bob=$("$swarmfs" key show --home "$work/bob/data")
alice=$("$swarmfs" key show --home "$work/alice/data")

echo
echo "== alice mounts the drive at $work/alice/team"
mount_node alice team
a=$work/alice/team
# the tracker serves the drive's own torrent (opentracker takes only listed hashes)
"$swarmfs" status "$a" | sed -n 's/^drive torrent: //p' | cut -c1-40 >>"$work/tracker/whitelist"
kill -HUP "$tracker_pid"
uri=$("$swarmfs" status "$a" | sed -n 's/^uri: //p')
echo "drive URI: $uri"

echo
echo "== alice invites bob: a URI with a one-time secret (the ledger keeps only its hash)"
echo "\$ swarmfs invite $a --name bob --expires 1h"
invite=$("$swarmfs" invite "$a" --name bob --expires 1h)
echo "$invite"

echo
echo "== bob mounts the drive from his invite at $work/bob/team"
mount_node bob "$invite"
b=$work/bob/team
wait_for 30 sh -c "'$swarmfs' drive members '$a' | grep -q bob" ||
	{ echo "demo: bob's invite was never redeemed"; exit 1; }
# a member's node seals the drive's epoch key to bob: then he can open its files
wait_for 30 sh -c "'$swarmfs' status '$b' | grep -q 'key held'" ||
	{ echo "demo: bob never got the drive's epoch key"; exit 1; }
step "$swarmfs" drive members "$a"
step "$swarmfs" status "$b"

# sample content: a small tree, a text file, a 16 MiB binary
mkdir -p "$work/photos/2026"
for i in 1 2 3; do head -c $((i * 200000)) /dev/urandom >"$work/photos/2026/img$i.jpg"; done
printf 'swarmfs: a shared drive without a server\n' >"$work/README.txt"
head -c $((16 << 20)) /dev/urandom >"$work/film.mkv"

echo
echo "== alice publishes by copy"
step cp -r "$work/photos" "$work/README.txt" "$work/film.mkv" "$a/"
wait_for 60 sh -c "'$swarmfs' status '$a' | grep -q 'publish queue: 0 staged'"
step "$swarmfs" status "$a"

echo
echo "== bob sees them, reads them from alice's node, and checks who owns them"
wait_for 30 test -e "$b/film.mkv" || { echo "demo: bob never saw film.mkv"; exit 1; }
step ls -lR "$b"
step cat "$b/README.txt"
echo
echo "\$ sha256sum film.mkv (source, then through bob's mount)"
sha256sum "$work/film.mkv" | cut -d' ' -f1
sha256sum "$b/film.mkv" | cut -d' ' -f1
step getfattr -d --absolute-names "$b/film.mkv"
echo "(alice's key is $alice)"
step "$swarmfs" magnet "$b/film.mkv"

echo
echo "== hosting: bob pins film.mkv (a whole copy, never evicted, a signed host claim);"
echo "   the drive wants 2 holders of each file, and film.mkv now has them"
step "$swarmfs" pin "$b/film.mkv"
wait_for 30 sh -c "getfattr -n user.swarmfs.holders --only-values --absolute-names '$a/film.mkv' | grep -qx 2" ||
	{ echo "demo: bob's host claim never reached alice"; exit 1; }
step "$swarmfs" health "$a"

echo
echo "== eve, a stranger with a key of her own and the drive's URI but no invite, is refused"
step "$swarmfs" key new --home "$work/eve/data"
rc=0
step "$swarmfs" mount -f --home "$work/eve/data" --no-dht --listen 127.0.0.1:0 --tracker "$tracker" \
	"$uri" "$work/eve/team" || rc=$?
echo "(exit status $rc; eve's data directory holds no ledger:" \
	"$(find "$work/eve/data" -name ledger.db | wc -l) ledger.db files)"
((rc != 0)) || { echo "demo: eve was let in"; exit 1; }
step sh -c "grep 'refused peer' '$work/alice/mount.log' | tail -n 1"

echo
echo "== bob may not change alice's files; he publishes his own"
step rm "$b/README.txt" || true
step cp "$work/photos/2026/img1.jpg" "$b/bob.jpg"
wait_for 30 test -e "$a/bob.jpg" || { echo "demo: alice never saw bob.jpg"; exit 1; }
step ls -l "$a/bob.jpg"
step getfattr -n user.swarmfs.owner --only-values --absolute-names "$a/bob.jpg"
echo

echo
echo "== ownership: alice gives README.txt to bob; now he may change it, she may not"
step "$swarmfs" transfer "$a/README.txt" --to "$bob"
wait_for 30 sh -c "getfattr -n user.swarmfs.owner --only-values --absolute-names '$b/README.txt' | grep -q $bob"
step rm "$a/README.txt" || true
step sh -c "echo 'edited by bob' > '$b/README.txt'"
wait_for 30 sh -c "grep -q 'edited by bob' '$a/README.txt'"
step cat "$a/README.txt"
step "$swarmfs" log "$b/README.txt"

if ((once)); then
	echo
	echo "== unmounting"
	for m in "${mounts[@]}"; do if mountpoint -q "$m"; then fusermount3 -u "$m"; fi; done
	for p in "${pids[@]}"; do wait "$p"; done
	pids=()
	echo "demo: done"
	exit 0
fi
echo
echo "Both mounts stay up: alice at $a, bob at $b; try them from another shell."
echo "Ctrl-C to stop."
wait "${pids[@]}"
