#!/bin/sh
# pager-demo: the pagerd part of 'make run' (installed as build/bin/pager-demo;
# scripts/vm-demo.sh may call it).  pagerd pages dtrack-workload's anonymous
# region under a small budget (through libpager-preload.so, the workload is
# unmodified) while dtrack tracks the same region; prints both views.
#
# usage: pager-demo [--budget SIZE] [--size SIZE] [--method M]
set -e
budget=1M size=8M method=softdirty
while [ $# -gt 0 ]; do
	case $1 in
	--budget) budget=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--method) method=$2; shift 2 ;;
	*) echo "usage: pager-demo [--budget SIZE] [--size SIZE] [--method M]" >&2; exit 2 ;;
	esac
done
bindir=$(dirname "$(command -v pagerd)")
lib=$bindir/../lib/libpager-preload.so
[ -f "$lib" ] || { echo "pager-demo: $lib not found" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/pager-demo.XXXXXX")
sock=$dir/sock
wl=
cleanup() {
	exec 3>&- 2>/dev/null || true
	[ -n "$wl" ] && kill "$wl" 2>/dev/null
	[ -n "$pd" ] && kill "$pd" 2>/dev/null && wait "$pd" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

echo "=== pagerd: budget $budget, workload region $size (anonymous, private)"
# synchronous WP: dtrack's wpfault method write-protects the same PTEs, and
# its interplay with asynchronous WP and UFFDIO_MOVE eviction is untested
pagerd --socket "$sock" --budget "$budget" --wp-mode sync \
	2>"$dir/pagerd.log" &
pd=$!
i=0
until pagerd --stats --socket "$sock" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 200 ] || { cat "$dir/pagerd.log"; exit 1; }
	sleep 0.05
done

mkfifo "$dir/in"
LD_PRELOAD=$lib PAGER_SOCKET=$sock PAGER_MIN_MAP=1M \
	dtrack-workload --type anon --size "$size" --no-prefault \
	<"$dir/in" >"$dir/out" &
wl=$!
exec 3>"$dir/in"
i=0
until grep -q '^pid ' "$dir/out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "pager-demo: workload did not start" >&2; exit 1; }
	sleep 0.05
done
set -- $(grep '^pid ' "$dir/out")
pid=$2 addr=$4 len=$6
echo "=== workload pid $pid region $addr len $len, paged by pagerd"
id=
if command -v dtrack >/dev/null && id=$(dtrack track "$pid" "$addr" "$len" --method "$method" 2>"$dir/dtrack.err"); then
	echo "=== dtrack tracks the same region (tracker $id, method $method)"
else
	echo "=== dtrack not available here: $(cat "$dir/dtrack.err" 2>/dev/null)"
	id=
fi
for round in 1 2 3; do
	echo "random 300" >&3
	echo "range $((round * 100)) 200" >&3
	n=0
	until [ "$(grep -c "^ok" "$dir/out")" -ge "$round" ]; do
		n=$((n + 1))
		[ $n -lt 600 ] || break
		sleep 0.05
	done
	echo "--- round $round: 300 random page writes, then pages $((round * 100))..$((round * 100 + 199))"
	if [ -n "$id" ]; then
		echo "dtrack view (dirty runs since last collect):"
		dtrack collect "$id" --reset | awk '{ n++; p += $2 } END { printf "  %d runs, %d pages dirty\n", n, p }'
	fi
	echo "pagerd view:"
	pagerd --stats --socket "$sock" | sed -n '1p;/^region/,$p' | sed 's/^/  /' | grep -v latency
done
[ -n "$id" ] && dtrack untrack "$id" >/dev/null 2>&1 || true
echo quit >&3
wait "$wl" 2>/dev/null || true
wl=
echo "=== pagerd after the workload exited"
pagerd --stats --socket "$sock" | sed -n '1,12p'
