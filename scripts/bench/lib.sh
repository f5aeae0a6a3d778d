# What the bench scripts that run mounts as background jobs share. Source it after
# setting root and build (and set -euo pipefail); then:
#   bench_build NAME TARGET...  configure $build if needed and build the targets (their
#                               log in $build/bench_NAME.build.log); sets $swarmfs
#   bench_work NAME             $work (a fresh directory under $TMPDIR), the mounts'
#                               pids in pid[NAME], and on exit: every mount unmounted,
#                               every daemon waited for (10 s, then killed), the logs
#                               copied to $KEEP_LOGS if set, $work removed
#   mount_node NAME HOME DRIVE [ARGS...]  a foreground mount at $work/mnt-NAME as a
#                               background job (log $work/NAME.log), until it is up
#   umount_node NAME            unmount it and wait for its daemon
#   drive_field MOUNTPOINT FIELD  a line of the drive's status text
#   published MOUNTPOINT        true once its publish queue and mempool are empty (what
#                               it was given is in a block)
#   small_files DIR N           N one-line files in 10 directories under DIR, for cp -r
#   now, secs T0 T1, rate N SECS, rss_kb PID, row LABEL TEXT  times, rates, memory and
#                               the aligned rows the reports print
#   cpu_ticks PID, per_1000 TICKS FILES [K]  user+system CPU in clock ticks; as seconds
#                               per 1000 files (per each of K processes)

bench_build() {
	local name=$1
	shift
	mkdir -p "$build"
	[[ -f $build/CMakeCache.txt ]] || cmake -S "$root" -B "$build" >"$build/configure.log"
	cmake --build "$build" --target "$@" -j"${JOBS:-2}" >"$build/bench_$name.build.log" ||
		{ grep -E "error|warning" "$build/bench_$name.build.log" | head -30; exit 1; }
	swarmfs=$build/fs/swarmfs
}

bench_cleanup() {
	set +e
	for n in "${nodes[@]}"; do
		# in /proc/mounts, not mountpoint -q: a mount whose daemon died answers
		# ENOTCONN, and left mounted, the rm -rf below fails on it
		grep -qs " $work/mnt-$n " /proc/mounts && fusermount3 -u "$work/mnt-$n"
	done
	for n in "${nodes[@]}"; do
		local p=${pid[$n]}
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$p" 2>/dev/null && kill "$p"
		wait "$p" 2>/dev/null
	done
	[[ -n ${KEEP_LOGS:-} ]] && cp "$work"/*.log "$KEEP_LOGS"/ 2>/dev/null
	rm -rf "$work"
}

bench_work() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/swarmfs-bench-$1-XXXXXX")
	declare -gA pid=()
	nodes=()
	trap bench_cleanup EXIT
}

mount_node() {
	local name=$1 home=$2 drive=$3
	shift 3
	mkdir -p "$work/mnt-$name"
	"$swarmfs" mount -f --home "$home" --listen 127.0.0.1:0 --no-dht "$@" "$drive" \
		"$work/mnt-$name" 2>>"$work/$name.log" &
	pid[$name]=$!
	nodes+=("$name")
	# every 5 ms: firstread.sh times reads from the moment a mount is up
	for _ in $(seq 12000); do
		mountpoint -q "$work/mnt-$name" && return 0
		kill -0 "${pid[$name]}" 2>/dev/null || break
		sleep 0.005
	done
	echo "mount $name failed:"; cat "$work/$name.log"; exit 1
}

umount_node() {
	local keep=() n
	fusermount3 -u "$work/mnt-$1"
	wait "${pid[$1]}" || echo "(mount $1 exited with status $?)"
	for n in "${nodes[@]}"; do [[ $n == "$1" ]] || keep+=("$n"); done
	nodes=("${keep[@]}") # gone: the cleanup leaves its (reusable) pid alone
}

drive_field() {
	getfattr --only-values -n user.swarmfs.drive "$1" 2>/dev/null | sed -n "s/^$2: //p"
}

published() {
	local s
	s=$(getfattr --only-values -n user.swarmfs.drive "$1" 2>/dev/null)
	grep -q "publish queue: 0 staged, 0 queued" <<<"$s" && grep -q "^mempool: 0" <<<"$s"
}

small_files() {
	(cd "$1" && seq 0 9 | xargs -I{} mkdir d{} &&
		seq 0 $(($2 - 1)) | awk '{ f = sprintf("d%d/f%06d", $1 % 10, $1); print "line " f > f; close(f) }')
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.0f", m / s }'; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
per_1000() {
	awk -v c="$1" -v t="$(getconf CLK_TCK)" -v n="$2" -v k="${3:-1}" \
		'BEGIN { printf "%.2f", c / t * 1000 / n / k }'
}
row() { printf '%-44s %s\n' "$1" "$2"; }
