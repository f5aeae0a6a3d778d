#!/usr/bin/env bash
# The Debian package as a new machine gets it: build it with CPack from BUILD_DIR,
# install it with apt-get, smoke-test the installed binary (--version, its man pages,
# its systemd units, `mount -t fuse.swarmfs` and umount(8) of a fresh drive, the demo),
# then purge it. Root only (scripts/test.sh runs it in CI).
#
#   scripts/deb-smoke.sh [BUILD_DIR]      default: build/
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath "${1:-$root/build}")
export DEBIAN_FRONTEND=noninteractive

# the units and man pages name the installed binary: configure for the /usr prefix
cmake -S "$root" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$build" --target swarmfs >/dev/null
rm -f "$build"/swarmfs_*.deb
(cd "$build" && cpack --config CPackConfig.cmake >"$build/cpack.log" 2>&1) ||
	{ cat "$build/cpack.log"; exit 1; }
deb=$(echo "$build"/swarmfs_*.deb)
echo "deb-smoke: $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"

work=$(mktemp -d /tmp/swarmfs-deb-XXXXXX)
cleanup() {
	mountpoint -q "$work/mnt" 2>/dev/null && umount -l "$work/mnt"
	apt-get purge -y -qq swarmfs >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
# slim images tell dpkg to drop man pages (path-exclude); the smoke test reads ours
apt-get install -y -qq --no-install-recommends \
	-o DPkg::Options::=--path-include='/usr/share/man/man[17]/swarmfs.[17]*' \
	"$deb" >"$work/apt.log" 2>&1 ||
	{ cat "$work/apt.log"; exit 1; }

bin=$(command -v swarmfs)
[[ $bin == /usr/bin/swarmfs ]] || { echo "deb-smoke: swarmfs is $bin, not /usr/bin/swarmfs" >&2; exit 1; }
swarmfs --version
man -w swarmfs && man -w 7 swarmfs
# a template unit is verified as an instance; --man=yes: Documentation= must resolve
for kind in system user; do
	mkdir -p "$work/$kind"
	cp "/usr/lib/systemd/$kind/swarmfs@.service" "$work/$kind/swarmfs@smoke.service"
done
out=$(systemd-analyze verify "$work/system/swarmfs@smoke.service" 2>&1) && [[ -z $out ]] ||
	{ echo "deb-smoke: system unit: $out" >&2; exit 1; }
mkdir -m 700 "$work/run"
out=$(XDG_RUNTIME_DIR=$work/run systemd-analyze --user verify "$work/user/swarmfs@smoke.service" 2>&1) &&
	[[ -z $out ]] || { echo "deb-smoke: user unit: $out" >&2; exit 1; }

# a fresh drive through mount(8), mount.fuse3 and the installed helper
mkdir -p "$work/mnt"
swarmfs init --home "$work/home" --name smoke >/dev/null
mount -t fuse.swarmfs smoke "$work/mnt" -o "home=$work/home,no_dht,listen=127.0.0.1:0"
echo hello >"$work/mnt/hello.txt"
[[ $(cat "$work/mnt/hello.txt") == hello ]]
swarmfs status --json "$work/mnt" | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["drive"] == "smoke", d'
umount "$work/mnt"
for _ in $(seq 100); do # the daemon lets go of the drive once unmounted
	flock -n "$work/home/drives/"*/lock true 2>/dev/null && break
	sleep 0.1
done
flock -n "$work/home/drives/"*/lock true || { echo "deb-smoke: daemon still holds the drive" >&2; exit 1; }

SWARMFS_BIN=/usr/bin/swarmfs "$root/scripts/demo.sh" --once >"$work/demo.log" 2>&1 ||
	{ tail -30 "$work/demo.log"; echo "deb-smoke: the demo failed with the installed binary" >&2; exit 1; }
echo "deb-smoke: ok"
