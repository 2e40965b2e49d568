#!/bin/bash
# Fault injection for pagerd's clients (natively): SIGKILL pager-stress
# clients at random points.  pagerd must stay up, release the dead client's
# regions, and each backing file must hold every page that was synced
# before the kill (pager-stress --check against the client's shared model);
# a last client then runs to completion byte-exact on the same pagerd.
# Every --pagerd N'th cycle (0: never) pagerd is SIGKILLed too, before
# the client or during its teardown in turn, and restarted: the dead
# client's guardian must hand it to the new pagerd, and the check is the
# same.
#
# usage: scripts/fuzz-pager-clients.sh [--cycles N] [--size MB] [--budget SIZE]
#                                      [--pagerd N]
# Prints '# KILL-CLIENTS cycles=N pagerd_kills=N bytes_verified=N failures=N'.
set -uo pipefail
. "$(dirname "$0")/fuzz-pager-common.sh"

cycles=20 size=4 budget=4M pagerd=4
fuzz_opts "cycles size budget pagerd" "$@"
fuzz_setup fuzz-pager-clients

regions() {	# regions pagerd holds now
	"$bin/pagerd" --stats --json --socket "$PAGER_SOCKET" 2>/dev/null |
		sed -n 's/.*"regions": *\([0-9]*\).*/\1/p' | head -1
}

start_pagerd --budget "$budget"

# held FILE: a process (the guardian, pagerd) has FILE open
held() { [ -n "$(find /proc/[0-9]*/fd -lname "$1" -print -quit 2>/dev/null)" ]; }

kill_pagerd() { { kill -9 "$pagerd_pid"; wait "$pagerd_pid"; } 2>/dev/null; }

verified=0 kills=0 pkills=0
for c in $(seq 1 "$cycles"); do
	pk=0
	[ "$pagerd" -gt 0 ] && [ $(((c - 1) % pagerd)) = 0 ] && pk=1
	args=(--file "$work/f$c" --size "$size" --time 60 --threads 3
	      --status "$work/s$c")
	[ $((c % 2)) = 0 ] && args+=(--shared)
	[ $((c % 3)) = 0 ] && args+=(--evict)
	"$bin/pager-stress" "${args[@]}" >"$work/c$c.log" 2>&1 &
	cpid=$!
	sleep "$((RANDOM % 2)).$(printf %03d $((RANDOM % 1000)))"
	# pagerd first (the guardian finds none), or during the teardown
	[ $pk = 1 ] && [ $((pkills % 2)) = 0 ] && kill_pagerd
	kill -9 "$cpid" 2>/dev/null && kills=$((kills + 1))
	wait "$cpid" 2>/dev/null
	cpid=
	if [ $pk = 1 ]; then
		[ $((pkills % 2)) = 1 ] && sleep "0.0$((RANDOM % 10))" && kill_pagerd
		pkills=$((pkills + 1))
		sleep 0.3
		start_pagerd --budget "$budget"
	fi
	# the guardian has pagerd flush and release the dead client's regions;
	# it holds the file until an answer says so (a new pagerd may not have
	# been handed the client yet, and then holds no region either)
	for _ in $(seq 100); do held "$work/f$c" || break; sleep 0.1; done
	held "$work/f$c" && fail "cycle $c: $work/f$c still open 10 s after the kill"
	for _ in $(seq 100); do [ "$(regions)" = 0 ] && break; sleep 0.1; done
	[ "$(regions)" = 0 ] || fail "cycle $c: pagerd still holds $(regions) regions 10 s after the kill"
	kill -0 "$pagerd_pid" 2>/dev/null || { fail "cycle $c: pagerd died"; break; }
	out=$("$bin/pager-stress" --check "$work/f$c" --status "$work/s$c" 2>&1)
	rc=$?
	n=$(field bytes_verified "$out")
	verified=$((verified + ${n:-0}))
	[ $rc = 0 ] || { fail "cycle $c: synced data missing:"; sed 's/^/#   /' <<<"$out" | tail -12; }
	rm -f "$work/f$c"
done
# other clients are unaffected: a full run on the same pagerd
out=$("$bin/pager-stress" --file "$work/final" --size "$size" --time 2 --evict 2>&1)
rc=$?
n=$(field bytes_verified "$out")
verified=$((verified + ${n:-0}))
[ $rc = 0 ] || { fail "final client failed:"; sed 's/^/#   /' <<<"$out" | tail -12; }
kill -0 "$pagerd_pid" 2>/dev/null || fail "pagerd died"
echo "# KILL-CLIENTS cycles=$kills pagerd_kills=$pkills bytes_verified=$verified failures=$failures"
[ $failures = 0 ]
