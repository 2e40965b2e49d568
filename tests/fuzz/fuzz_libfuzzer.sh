#!/bin/bash
# Host test (TAP): bounded libFuzzer runs of the two harnesses from the
# committed seed corpus, $TEST_FUZZ_TIME seconds each (default 10), plus the
# known-bug repros of tests/fuzz/repro.  Ok if no crash, leak or timeout;
# the executions are reported on '#' lines.  Longer runs: scripts/fuzz-lib.sh.
top=@TOP@
bin=${FUZZ_BIN:-$top/build/fuzz}
secs=${TEST_FUZZ_TIME:-10}
work=$(mktemp -d /tmp/fuzz-libfuzzer.XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0 failed=0

echo "TAP version 13"
echo "1..3"
for h in pager-proto dtrack-reply; do
	n=$((n + 1))
	f=$bin/fuzz-$h
	if [ ! -x "$f" ]; then
		# clang was there, the harness did not build: its stubs no
		# longer match the code under test, which must be mended
		if [ -s "$f.build.log" ]; then
			echo "not ok $n fuzz-$h # harness does not build against the current sources: $(grep -m1 error "$f.build.log")"
			failed=$((failed + 1))
		else
			echo "ok $n fuzz-$h # SKIP not built (clang -fsanitize=fuzzer unavailable)"
		fi
		continue
	fi
	mkdir -p "$work/$h" "$work/art-$h"
	cp "$top/tests/fuzz/corpus/$h/"* "$work/$h/"
	(cd "$work" && "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$work/art-$h/" -print_final_stats=1 "$work/$h") \
		> "$work/$h.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$h.log")
	echo "# fuzz-$h: ${execs:-0} executions in ${secs}s, corpus $(ls "$work/$h" | wc -l) inputs"
	echo "# FUZZ-LIB $h execs=${execs:-0} secs=$secs"
	if [ $rc -eq 0 ] && [ -n "$execs" ] && [ "$execs" -gt 0 ]; then
		echo "ok $n fuzz-$h"
	else
		grep -E 'ERROR|SUMMARY|==[0-9]+==' "$work/$h.log" | head -20 | sed 's/^/# /'
		for a in "$work/art-$h/"*; do
			[ -f "$a" ] || continue
			mkdir -p "$top/build/fuzz-artifacts"
			cp "$a" "$top/build/fuzz-artifacts/"
			echo "# crash input kept: build/fuzz-artifacts/$(basename "$a")"
		done
		echo "not ok $n fuzz-$h (exit $rc)"
		failed=$((failed + 1))
	fi
done

# Known bug of pagerd (see docs/reliability.md): a DEAD message with the
# client's own token deadlocks the worker.  Skip while it reproduces.
n=$((n + 1))
if [ -x "$bin/fuzz-pager-proto" ]; then
	(cd "$work" && FUZZ_KNOWN_BUGS=1 timeout 60 "$bin/fuzz-pager-proto" -timeout=5 \
		"$top/tests/fuzz/repro/pager-dead-self") > "$work/repro.log" 2>&1
	if grep -q 'libFuzzer: timeout' "$work/repro.log"; then
		echo "ok $n repro pager-dead-self # SKIP known pagerd bug: DEAD with own token deadlocks a worker"
	elif grep -q 'Executed .* in' "$work/repro.log"; then
		echo "ok $n repro pager-dead-self (fixed)"
	else
		echo "not ok $n repro pager-dead-self"
		failed=$((failed + 1))
	fi
else
	echo "ok $n repro pager-dead-self # SKIP not built"
fi
exit $((failed ? 1 : 0))
