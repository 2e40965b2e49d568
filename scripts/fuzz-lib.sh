#!/bin/bash
# Longer libFuzzer runs of the harnesses (tests/fuzz/fuzz_*.c) with a
# corpus kept between runs in build/fuzz-corpus/ (seeded from
# tests/fuzz/corpus/).  Crash inputs go to build/fuzz-artifacts/.
#
# usage: scripts/fuzz-lib.sh [--time S] [--jobs N] [pager-proto|dtrack-reply]...
# Prints '# FUZZ-LIB NAME execs=N secs=S' per harness; exit status 1 on a crash.
set -uo pipefail
. "$(dirname "$0")/common.sh"

secs=300 jobs=1 names=()
while [ $# -gt 0 ]; do
	case $1 in
	--time) secs=$2; shift ;;
	--jobs) jobs=$2; shift ;;
	pager-proto|dtrack-reply) names+=("$1") ;;
	*) die "unknown argument $1" ;;
	esac
	shift
done
[ ${#names[@]} -gt 0 ] || names=(pager-proto dtrack-reply)
rc=0
for h in "${names[@]}"; do
	f=$DTRACK_ROOT/build/fuzz/fuzz-$h
	if [ ! -x "$f" ]; then
		echo "# fuzz-$h not built (clang with libclang-rt-dev needed): skipped"
		continue
	fi
	corpus=$DTRACK_ROOT/build/fuzz-corpus/$h
	art=$DTRACK_ROOT/build/fuzz-artifacts
	mkdir -p "$corpus" "$art"
	cp -n "$DTRACK_ROOT/tests/fuzz/corpus/$h/"* "$corpus/"
	log=$DTRACK_ROOT/build/fuzz-corpus/$h.log
	rm -f "$art"/fuzz-[0-9]*.log	# -jobs logs of an earlier run
	echo "== fuzz-$h for ${secs}s ($jobs jobs)"
	if [ "$jobs" -gt 1 ]; then
		(cd "$art" && "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix="$art/" -print_final_stats=1 -jobs="$jobs" \
			-workers="$jobs" "$corpus") > "$log" 2>&1
	else
		(cd "$art" && "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix="$art/" -print_final_stats=1 "$corpus") > "$log" 2>&1
	fi
	r=$?
	execs=$(cat "$log" "$art"/fuzz-[0-9]*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' |
		awk '{ s += $1 } END { print s + 0 }')
	echo "# FUZZ-LIB $h execs=$execs secs=$secs corpus=$(ls "$corpus" | wc -l)"
	if [ $r -ne 0 ]; then
		rc=1
		grep -E 'SUMMARY|ERROR' "$log" | head -5
		echo "# fuzz-$h failed (exit $r): see $log and $art"
	fi
done
exit $rc
