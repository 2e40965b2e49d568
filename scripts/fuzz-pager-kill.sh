#!/bin/bash
# Fault injection for pagerd (natively, or in the VM with bash absent: host
# only): SIGKILL pagerd at random points while pager-stress clients run,
# and restart it on the same socket (libpager re-attaches, see
# daemon/README.md).  Every client must finish with byte-exact data.
#
# usage: scripts/fuzz-pager-kill.sh [--cycles N] [--clients N] [--size MB]
#                                   [--budget SIZE] [--round S]
# $PAGERD_ARGS is added to pagerd's command line (e.g. --wp-mode sync).
# Prints '# KILL-PAGERD cycles=N rounds=N client_runs=N bytes_verified=N
# failures=N'; exit status 1 on any failure.
set -uo pipefail
. "$(dirname "$0")/fuzz-pager-common.sh"

cycles=100 clients=3 size=4 budget=4M round=3
fuzz_opts "cycles clients size budget round" "$@"
fuzz_setup fuzz-pager-kill
sock=$PAGER_SOCKET

# shellcheck disable=SC2086
run_pagerd() { start_pagerd --budget "$budget"; }

# random integer in [0, $1)
r() { echo $((RANDOM % $1)); }

kills=0 rounds=0 runs=0 verified=0 failures=0
run_pagerd
while [ $kills -lt "$cycles" ]; do
	rounds=$((rounds + 1))
	cpids=()
	# clients connect only to a listening pagerd (pager_connect does not wait)
	for _ in $(seq 100); do
		"$bin/pagerd" --stats --socket "$sock" >/dev/null 2>&1 && break
		sleep 0.05
	done
	for i in $(seq 1 "$clients"); do
		args=(--file "$work/f$i" --size "$size" --time "$round" --threads 3)
		[ $((i % 2)) = 0 ] && args+=(--shared)
		[ $((i % 3)) = 1 ] && args+=(--evict)
		"$bin/pager-stress" "${args[@]}" >"$work/c$i.log" 2>&1 &
		cpids+=($!)
	done
	# and are not killed before they connected (a loaded host starts them
	# slowly, and pager_connect() does not wait for a pagerd)
	for _ in $(seq 200); do
		pending=0
		for i in $(seq 1 "$clients"); do
			grep -q 'mapped' "$work/c$i.log" 2>/dev/null ||
				! kill -0 "${cpids[$((i - 1))]}" 2>/dev/null ||
				pending=1
		done
		[ $pending = 0 ] && break
		sleep 0.05
	done
	# kill pagerd at random points until the clients are done
	while :; do
		alive=0
		for p in "${cpids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 1 ] || break
		sleep "0.$(printf %03d $((30 + $(r 300))))"
		kill -0 "${cpids[0]}" 2>/dev/null || kill -0 "${cpids[-1]}" 2>/dev/null || continue
		{ kill -9 "$pagerd_pid"; wait "$pagerd_pid"; } 2>/dev/null
		kills=$((kills + 1))
		# sometimes leave the clients without a pagerd for a while
		[ $(r 4) = 0 ] && sleep "0.$(printf %03d $(r 200))"
		run_pagerd
	done
	for i in "${!cpids[@]}"; do
		wait "${cpids[$i]}"
		rc=$?
		runs=$((runs + 1))
		n=$(field bytes_verified "$(cat "$work/c$((i + 1)).log")")
		verified=$((verified + ${n:-0}))
		if [ $rc -ne 0 ]; then
			failures=$((failures + 1))
			echo "# client $((i + 1)) of round $rounds failed (exit $rc):"
			sed 's/^/#   /' "$work/c$((i + 1)).log" | tail -15
			echo "#   pagerd log:"
			grep -v '^$' "$work/pagerd.log" | tail -5 | sed 's/^/#     /'
		fi
	done
	cpids=()
	echo "# round $rounds: $kills pagerd kills so far, $failures failures"
done
# pagerd survived everything: it still answers
"$bin/pagerd" --stats --socket "$sock" >/dev/null 2>&1 || {
	failures=$((failures + 1))
	echo "# the last pagerd does not answer --stats"
}
echo "# KILL-PAGERD cycles=$kills rounds=$rounds client_runs=$runs bytes_verified=$verified failures=$failures"
[ $failures = 0 ]
