#!/usr/bin/env bash
# The README's test command: install what is missing, build, and run every test.
#
#   scripts/test.sh              normal build (gcc, -Werror) and, as root, its Debian
#                                package installed, smoke-tested and purged
#                                (scripts/deb-smoke.sh); then the ASan+UBSan build,
#                                unit and integration tests in each; then a clang build of
#                                everything (-Werror) and a bounded libFuzzer run of the
#                                ledger's decoder
#   scripts/test.sh --quick      the normal build only
#   scripts/test.sh -R REGEX     only the ctest tests whose name matches
#
# Build directories: build/, build-asan/, build-clang/ (override with BUILD_DIR,
# ASAN_BUILD_DIR, CLANG_BUILD_DIR).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quick=0
regex=()
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	-R) regex=(-R "$2"); shift ;;
	-h|--help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

"$root/scripts/setup.sh" || exit 1
jobs=$(nproc)
summary=()
failed=0

# run_build NAME DIR CMAKE-ARGS...: configure, build, run unit then integration tests.
run_build() {
	local name=$1 dir=$2
	shift 2
	echo "=== $name: configure and build in $dir"
	if ! cmake -S "$root" -B "$dir" -DSWARMFS_WERROR=ON "$@" >"$dir/configure.log" 2>&1; then
		cat "$dir/configure.log"
		summary+=("$name: configure FAILED")
		failed=1
		return
	fi
	if ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
		grep -E "error|warning" "$dir/build.log" | head -50
		summary+=("$name: build FAILED (log: $dir/build.log)")
		failed=1
		return
	fi
	local label
	for label in unit integration; do
		echo "=== $name: $label tests"
		local out par=()
		# the normal build's suites run two at a time (each waits on the network more
		# than it computes); the sanitizers' builds one at a time
		[[ $name == normal ]] && par=(-j"$jobs")
		out=$(ctest --test-dir "$dir" -L "^$label\$" "${regex[@]}" "${par[@]}" --output-on-failure \
			--timeout 900 2>&1)
		local rc=$?
		echo "$out" | grep -vE '^\s*$'
		local line
		line=$(echo "$out" | grep -E 'tests passed|No tests were found' | tail -1)
		summary+=("$name $label: ${line:-no summary}")
		((rc == 0)) || failed=1
	done
}

mkdir -p "${BUILD_DIR:-$root/build}"
run_build normal "${BUILD_DIR:-$root/build}"
# The Debian package, as a new machine installs it (root: apt-get install, then purge).
if ((EUID == 0 && ${#regex[@]} == 0)); then
	echo "=== package: build the .deb, install it, smoke-test the installed binary, purge"
	if "$root/scripts/deb-smoke.sh" "${BUILD_DIR:-$root/build}"; then
		summary+=("package: .deb installed, smoke test passed, purged")
	else
		summary+=("package: FAILED")
		failed=1
	fi
fi
if ((!quick)); then
	mkdir -p "${ASAN_BUILD_DIR:-$root/build-asan}"
	# detect_leaks stays on; abort_on_error makes Check see a crash, not an exit code.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	run_build asan+ubsan "${ASAN_BUILD_DIR:-$root/build-asan}" -DSWARMFS_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug
fi

if ((!quick)); then
	dir=${CLANG_BUILD_DIR:-$root/build-clang}
	mkdir -p "$dir"
	echo "=== clang: configure and build in $dir"
	if ! CC=clang CXX=clang++ cmake -S "$root" -B "$dir" -DSWARMFS_WERROR=ON -DSWARMFS_FUZZ=ON \
		>"$dir/configure.log" 2>&1; then
		cat "$dir/configure.log"
		summary+=("clang: configure FAILED")
		failed=1
	elif ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
		grep -E "error|warning" "$dir/build.log" | head -50
		summary+=("clang: build FAILED (log: $dir/build.log)")
		failed=1
	else
		summary+=("clang: build warning-free")
		echo "=== clang: fuzz (libFuzzer, bounded)"
		out=$(ctest --test-dir "$dir" -L '^fuzz$' --output-on-failure 2>&1)
		rc=$?
		echo "$out" | grep -vE '^\s*$' | tail -8
		summary+=("clang fuzz: $(echo "$out" | grep -E 'tests passed' | tail -1)")
		((rc == 0)) || failed=1
	fi
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if ((failed)); then
	echo "RESULT: FAILED"
	exit 1
fi
echo "RESULT: all tests passed"
