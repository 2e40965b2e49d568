#!/bin/bash
# Write-back errors for pagerd (natively, root): backing files on a tmpfs far
# smaller than the regions, so write-back fails with ENOSPC under load.
# Syncs and evictions must report the error, no byte may be lost, and once
# space returns (the tmpfs is remounted bigger) the final sync must succeed
# and the file must match the model byte for byte.  Runs in a private
# mount namespace.
#
# usage: scripts/fuzz-pager-enospc.sh [--rounds N] [--size MB]
# Prints '# ENOSPC rounds=N injected_errors=N bytes_verified=N failures=N'.
set -uo pipefail
. "$(dirname "$0")/fuzz-pager-common.sh"

rounds=3 size=4
fuzz_opts "rounds size" "$@"
if [ "$(id -u)" != 0 ]; then
	echo "# ENOSPC skipped: needs root to mount a small tmpfs"
	exit 4
fi
if [ -z "${FUZZ_IN_NS:-}" ]; then
	FUZZ_IN_NS=1 exec unshare -m --propagation private "$0" --rounds "$rounds" --size "$size"
fi
fuzz_setup fuzz-pager-enospc
fuzz_cleanup_hook() { umount "$work/small"; }
start_pagerd --budget 2M

mkdir "$work/small"
errors=0 verified=0 done_rounds=0
for r in $(seq 1 "$rounds"); do
	mount -t tmpfs -o size=1m tmpfs "$work/small" || die "cannot mount tmpfs"
	args=(--file "$work/small/f" --size "$size" --time 2 --threads 3
	      --allow-errors --wait-file "$work/go$r")
	[ $((r % 2)) = 0 ] && args+=(--shared)
	[ $((r % 3)) != 0 ] && args+=(--evict)
	"$bin/pager-stress" "${args[@]}" >"$work/c$r.log" 2>&1 &
	cpid=$!
	for _ in $(seq 300); do
		grep -q 'waiting for' "$work/c$r.log" && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	# space returns
	mount -o remount,size=$((size * 4))m "$work/small"
	touch "$work/go$r"
	wait "$cpid"
	rc=$?
	cpid=
	line=$(grep '^# STRESS' "$work/c$r.log")
	se=$(field sync_errors "$line")
	ee=$(field evict_errors "$line")
	n=$(field bytes_verified "$line")
	errors=$((errors + ${se:-0} + ${ee:-0}))
	verified=$((verified + ${n:-0}))
	done_rounds=$r
	[ $rc = 0 ] || { fail "round $r failed (exit $rc):"; sed 's/^/#   /' "$work/c$r.log" | tail -12; }
	[ "${se:-0}" -gt 0 ] || fail "round $r: no sync ever failed: ENOSPC was not injected"
	umount "$work/small"
	echo "# round $r: ${se:-0} sync errors, ${ee:-0} evict errors, ${SECONDS}s"
done
kill -0 "$pagerd_pid" 2>/dev/null || fail "pagerd died"
echo "# ENOSPC rounds=$done_rounds injected_errors=$errors bytes_verified=$verified failures=$failures"
[ $failures = 0 ]
