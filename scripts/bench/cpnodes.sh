#!/usr/bin/env bash
# cp -r of FILES small files into a NODES-node drive (issue 18): the files/s from cp's
# start to every file published and confirmed on the publisher A (its publish queue and
# mempool empty), and to every other node listing them all (its chain at A's height),
# beside the same cp -r into a drive that A holds alone, measured in the same run.
# Target: >= 1000 files/s on 10 nodes.
#
#   scripts/bench/cpnodes.sh                 NODES=10 FILES=10000
#   NODES=4 FILES=2000 scripts/bench/cpnodes.sh
#
# Everything stays on 127.0.0.1; the other nodes find A with --peer and each other by
# PEX. Every node runs on this machine: on 2 cores the nine others' sync competes with
# A for the CPU, which a real drive's members, each on its own machine, do not.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
n_nodes=${NODES:-10}
files=${FILES:-10000}
((n_nodes >= 2)) || { echo "NODES=$n_nodes: at least 2" >&2; exit 2; }
. "$root/scripts/bench/lib.sh"
bench_build cpnodes swarmfs
bench_work cpnodes

# cp -r of the source tree into MOUNTPOINT, then until it is confirmed there: prints
# "SECONDS_CP SECONDS_CONFIRMED HEIGHT" from cp's start
publish() {
	local t0 t1 t2
	t0=$(now)
	cp -r "$work/src" "$1/"
	t1=$(now)
	for _ in $(seq 12000); do published "$1" && break; sleep 0.05; done
	published "$1" || { echo "$1 never confirmed the files" >&2; exit 1; }
	t2=$(now)
	echo "$(secs "$t0" "$t1") $(secs "$t0" "$t2") $(drive_field "$1" height | awk '{ print $1 }')"
}

mkdir -p "$work/src"
small_files "$work/src" "$files"
echo "swarmfs cp -r into a $n_nodes-node drive: $files small files, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo

# ---- baseline: the same cp -r into a drive A holds alone ----
"$swarmfs" init --public --home "$work/solo" --name solo >/dev/null
mount_node solo "$work/solo" solo
read -r b_cp b_conf _ <<<"$(publish "$work/mnt-solo")"
umount_node solo

# ---- NODES nodes: A publishes, NODES-1 others replicate ----
"$swarmfs" init --public --home "$work/a" --name team >/dev/null
mount_node a "$work/a" team
uri=$(drive_field "$work/mnt-a" uri)
aport=$(drive_field "$work/mnt-a" "listen port")
others=()
for i in $(seq 2 "$n_nodes"); do
	"$swarmfs" key new --home "$work/n$i" >/dev/null
	mount_node "n$i" "$work/n$i" "$uri" --peer "127.0.0.1:$aport"
	others+=("n$i")
done
# every node in sync with A (the genesis) before the cp starts
for n in "${others[@]}"; do
	for _ in $(seq 1200); do [[ $(drive_field "$work/mnt-$n" sync) == "in sync"* ]] && break; sleep 0.05; done
done
c0=$(cpu_ticks "${pid[a]}")
o0=0
for n in "${others[@]}"; do o0=$((o0 + $(cpu_ticks "${pid[$n]}"))); done
t0=$(now)
read -r o_cp o_conf height <<<"$(publish "$work/mnt-a")"
c1=$(cpu_ticks "${pid[a]}")
# every other node at A's height, and listing the last file
last=$(cd "$work/src" && find . -type f | sort | tail -1)
for n in "${others[@]}"; do
	for _ in $(seq 12000); do
		h=$(drive_field "$work/mnt-$n" height | awk '{ print $1 }')
		[[ -n $h ]] && ((h >= height)) && [[ -e $work/mnt-$n/src/$last ]] && break
		sleep 0.05
	done
	[[ -e $work/mnt-$n/src/$last ]] || { echo "$n never listed src/$last"; exit 1; }
done
t3=$(now)
o1=0
for n in "${others[@]}"; do o1=$((o1 + $(cpu_ticks "${pid[$n]}"))); done
o_all=$(secs "$t0" "$t3")
listed=$(find "$work/mnt-n$n_nodes/src" -type f | wc -l)
((listed == files)) || { echo "n$n_nodes lists $listed of $files files"; exit 1; }

row "cp -r, $n_nodes nodes: published+confirmed on A" \
	"$(rate "$files" "$o_conf") files/s (cp returned after $o_cp s; height $height)   baseline A alone $(rate "$files" "$b_conf") files/s (cp $b_cp s) (target >= 1000/s)"
row "  listed on all $((n_nodes - 1)) other nodes" "$(rate "$files" "$o_all") files/s ($o_all s from cp's start)"
row "  A's CPU per 1000 files" \
	"$(per_1000 $((c1 - c0)) "$files") s (user+system)"
row "  each other node's CPU per 1000 files" \
	"$(per_1000 $((o1 - o0)) "$files" $((n_nodes - 1))) s (mean of $((n_nodes - 1)), until they list the last file)"
