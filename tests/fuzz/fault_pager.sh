#!/bin/bash
# Host test (TAP): a short round of pagerd fault injection, natively:
# SIGKILL of pagerd under load, SIGKILL of clients, ENOSPC write-back.
# The full counts are in 'make reliability' (scripts/reliability.sh).
top=@TOP@
n=0 failed=0
echo "TAP version 13"
echo "1..3"
run() {	# run NAME SCRIPT ARGS...: one TAP line from a fuzz-pager-*.sh script
	local name=$1 out rc
	shift
	n=$((n + 1))
	out=$("$@" 2>&1)
	rc=$?
	grep '^# [A-Z-]* ' <<<"$out"
	case $rc in
	0) echo "ok $n $name" ;;
	4) echo "ok $n $name # SKIP $(grep -m1 'skipped' <<<"$out" | sed 's/^# //')" ;;
	*) sed 's/^\([^#]\)/# \1/' <<<"$out" | tail -20
	   echo "not ok $n $name"
	   failed=$((failed + 1)) ;;
	esac
}
run "pagerd SIGKILLed under load, clients byte-exact" \
	"$top/scripts/fuzz-pager-kill.sh" --cycles "${TEST_KILL_CYCLES:-20}" --round 2
run "clients SIGKILLed, synced pages in their files, pagerd up" \
	"$top/scripts/fuzz-pager-clients.sh" --cycles "${TEST_CLIENT_KILLS:-4}"
run "ENOSPC write-back reported, no loss, recovery" \
	"$top/scripts/fuzz-pager-enospc.sh" --rounds 2
exit $((failed ? 1 : 0))
