#!/usr/bin/env bash
# What credit costs (DESIGN §11): a cold read of a SIZE file on a private drive, B reading
# what A published over loopback, with receipts (B signs one for every 16 MiB it got from
# A and sends it on the sealed channel; A rolls them into credit records that every node
# checks) against the same read with B mounted --no-receipts, measured in the same run:
#   - CPU seconds of A's and B's mounts, from the read's start until A's ledger holds
#     B's credit for the whole read (the baseline: over the same span of time),
#   - bytes on the wire, both ways, of B's session (every byte: payload, protocol and
#     the sealed channel's messages; status --json wire_downloaded + wire_uploaded),
#   - receipts and credit records per GiB read (A's ledger).
#
#   scripts/bench/credit.sh              SIZE=1G (the issue's figure)
#   SIZE=256M scripts/bench/credit.sh
#
# BUILD_DIR (default build-bench-shared/, shared with shared.sh, which runs this last),
# JOBS (2). Needs about 4x SIZE free under $TMPDIR and /usr/bin/python3 (sqlite3
# module, to count A's receipts). Everything stays on 127.0.0.1; every mount started
# here is unmounted on exit and every process ended by its PID.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench-shared}
size=${SIZE:-1G}
py=/usr/bin/python3
. "$root/scripts/bench/lib.sh"
bench_build credit swarmfs
bench_work credit

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
cpu_s() { # PID: user + system CPU seconds so far, all threads
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
json_num() { # KEY: the first "KEY": number in the JSON on stdin
	grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'
}
wire() { # MOUNTPOINT: bytes its session moved both ways, every byte
	local j
	j=$("$swarmfs" status --json "$1")
	echo $(($(json_num wire_downloaded <<<"$j") + $(json_num wire_uploaded <<<"$j")))
}
credited() { # KEY: bytes A's ledger says KEY downloaded
	"$swarmfs" credit --json "$work/mnt-a" | grep -o "\"member\":\"$1\"[^}]*" |
		grep -o '"downloaded":[0-9]*' | grep -o '[0-9]*$' || echo 0
}
receipts() { # the receipts and credit records in A's ledger (its chain's credits)
	"$py" -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(*db.execute("SELECT COUNT(*), COUNT(DISTINCT record) FROM credits").fetchone())' \
		"$work/a/drives/$id/ledger.db"
}

head -c "$size" /dev/urandom >"$work/film.bin"
fsize=$(stat -c %s "$work/film.bin")
gib=$(awk -v b="$fsize" 'BEGIN { printf "%.4f", b / 1073741824 }')
"$swarmfs" init --home "$work/a" --name credit >/dev/null
mount_node a "$work/a" credit
id=$(drive_field "$work/mnt-a" id)
uri=$(drive_field "$work/mnt-a" uri)
cp "$work/film.bin" "$work/mnt-a/"
until "$swarmfs" status "$work/mnt-a" | grep -q "publish queue: 0 staged, 0 queued"; do sleep 0.05; done

# one cold read on a fresh member: NAME [MOUNT ARGS...]; sets cpu_a cpu_b wire_b span
run() {
	local name=$1 key t0 t1 a0 b0 w0
	shift
	"$swarmfs" key new --home "$work/$name" >/dev/null
	key=$("$swarmfs" key show --home "$work/$name")
	"$swarmfs" drive add-member "$work/mnt-a" "$key" >/dev/null
	until "$swarmfs" drive members "$work/mnt-a" | grep -q "${key:0:16}"; do sleep 0.05; done
	mount_node "$name" "$work/$name" "$uri" "$@"
	until [[ -e $work/mnt-$name/film.bin ]]; do sleep 0.05; done
	sleep 2 # the sync settles (the epoch key sealed to the newcomer)
	w0=$(wire "$work/mnt-$name")
	a0=$(cpu_s "${pid[a]}") b0=$(cpu_s "${pid[$name]}") t0=$(now)
	cat "$work/mnt-$name/film.bin" >/dev/null
	t1=$(now)
	read_s=$(secs "$t0" "$t1")
	if [[ -z ${span:-} ]]; then # receipts on: until A's ledger credits the read
		until (($(credited "$key") >= fsize)); do
			if awk -v a="$t1" -v b="$(now)" 'BEGIN { exit !(b - a > 180) }'; then
				echo "   A's ledger credits $name $(credited "$key") of $fsize bytes after 180 s"
				break
			fi
			sleep 0.2
		done
		span=$(secs "$t0" "$(now)")
	else # the baseline: the same span of time
		sleep "$(awk -v s="$span" -v r="$read_s" 'BEGIN { d = s - r; printf "%.2f", (d > 0 ? d : 0) }')"
	fi
	cpu_a=$(secs "$a0" "$(cpu_s "${pid[a]}")")
	cpu_b=$(secs "$b0" "$(cpu_s "${pid[$name]}")")
	wire_b=$(($(wire "$work/mnt-$name") - w0))
	umount_node "$name"
}

span=
run b
on_a=$cpu_a on_b=$cpu_b on_wire=$wire_b on_read=$read_s
read -r n_receipts n_records <<<"$(receipts)"
run c --no-receipts
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
per_gib() { awk -v n="$1" -v g="$gib" 'BEGIN { printf "%.1f", n / g }'; }
echo "credit overhead: a cold read of $((fsize / 1048576)) MiB on a private drive, B from A" \
	"(receipts on) vs C from A (--no-receipts), over the same ${span} s"
printf '%-44s %7s s     baseline %s s\n' "   read" "$on_read" "$read_s"
printf '%-44s %7s s     baseline %s s   (%+.2f s)\n' "   CPU, the reader's mount" "$on_b" "$cpu_b" \
	"$(awk -v a="$on_b" -v b="$cpu_b" 'BEGIN { print a - b }')"
printf '%-44s %7s s     baseline %s s   (%+.2f s)\n' "   CPU, the uploader's (A's) mount" "$on_a" "$cpu_a" \
	"$(awk -v a="$on_a" -v b="$cpu_a" 'BEGIN { print a - b }')"
printf '%-44s %7s MiB   baseline %s MiB   (%+d bytes, %.4f %%)\n' "   on the wire, the reader's session" \
	"$(mb "$on_wire")" "$(mb "$wire_b")" "$((on_wire - wire_b))" \
	"$(awk -v a="$on_wire" -v b="$wire_b" 'BEGIN { print 100 * (a - b) / b }')"
printf '%-44s %7s       baseline 0\n' "   receipts per GiB read" "$(per_gib "$n_receipts")"
printf '%-44s %7s       baseline 0   (%s receipts in %s records)\n' "   credit records per GiB read" \
	"$(per_gib "$n_records")" "$n_receipts" "$n_records"
umount_node a
