#!/usr/bin/env bash
# Install every build and test dependency of swarmfs from Debian's packages, if missing.
# Idempotent and quiet when everything is there; runs `apt-get update` only when
# something has to be installed.
set -euo pipefail

packages=(
	# build
	cmake pkg-config gcc g++ make
	libfuse3-dev libtorrent-rasterbar-dev libsqlite3-dev libssl-dev libsodium-dev check
	libsystemd-dev
	# the Debian package (CPack's dependency list) and the checks of its man pages
	# and systemd units
	dpkg-dev man-db systemd
	# run: FUSE userspace (fusermount3) and the libraries' runtime packages come along
	fuse3
	# tests: a real tracker, standard BitTorrent clients and ordinary tools
	opentracker aria2 mktorrent python3-libtorrent sqlite3 attr rsync psmisc procps
	util-linux bsdutils
	ffmpeg
	# fuzzing and the sanitizer runtime for clang
	clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
	echo "setup: installing ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		sudo=sudo
	else
		sudo=
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# FUSE needs its device node; a container may lack it even with fuse3 installed.
if [[ ! -c /dev/fuse ]]; then
	echo "setup: /dev/fuse is missing: the mount tests and the demo need FUSE" >&2
	exit 1
fi
