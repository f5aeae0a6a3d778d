#!/usr/bin/env bash
# Check (default) or apply (--fix) the committed .clang-format on our C and C++ sources.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cf=$(command -v clang-format || command -v clang-format-14 || true)
if [[ -z $cf ]]; then
	echo "format.sh: clang-format is not installed (apt-get install clang-format)" >&2
	exit 2
fi
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')
if [[ ${1:-} == --fix ]]; then
	"$cf" -i "${files[@]}"
	exit 0
fi
bad=0
for f in "${files[@]}"; do
	if ! diff -q <("$cf" "$f") "$f" >/dev/null; then
		echo "needs formatting: $f"
		bad=1
	fi
done
((bad == 0)) && echo "format.sh: all ${#files[@]} files formatted"
exit $bad
