#!/bin/bash
# The split program (fs/front.c): swarmfs, the front a user runs, links libc alone, so
# that `swarmfs status` starts without loading libtorrent and the rest; every other
# command is the core's, run by exec; a front without its core says so.
#
# usage: tests/check_front.sh SWARMFS_BINARY
# What was tried: the front's shared libraries (any of the core's: libtorrent, libfuse,
# SQLite, OpenSSL, libsodium, libsystemd, is a failure; not the C++ runtime, which a
# sanitizer build's own runtime brings), --version through the front (only the core
# knows libtorrent's version), status of a directory that is no mount (answered by the
# front, exit 1), and the front copied alone where no core is (exit 127, naming
# swarmfs-core).
set -u
bin=$1
fails=0
fail() { echo "check_front: $*"; fails=$((fails + 1)); }

extra=$(ldd "$bin" | grep -E 'libtorrent|libfuse|libsqlite|libcrypto|libssl|libsodium|libsystemd' || true)
[[ -z $extra ]] || fail "the front links the core's libraries: $extra"
out=$("$bin" --version 2>&1)
[[ $out == *libtorrent* ]] || fail "--version through the front: $out"
out=$("$bin" status /proc 2>&1)
rc=$?
[[ $rc == 1 && $out == *"not the mount point of a swarmfs drive"* ]] ||
	fail "status of /proc: exit $rc: $out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$bin" "$tmp/swarmfs"
out=$("$tmp/swarmfs" --version 2>&1)
rc=$?
[[ $rc == 127 && $out == *swarmfs-core* ]] || fail "a front without its core: exit $rc: $out"
exit $((fails > 0))
