#!/bin/sh
# Guest side of 'make test': run every test program of the VM suite (or the
# ones named), one after another, each with a time limit, and check the
# kernel log after each for reports.  Output is the programs' own TAP plus
# one '# vm-run-tests:' line per program, parsed by scripts/run-tests.sh.
dir=/opt/dtrack/tests/vm
limit=${TEST_TIMEOUT:-600}
splat='WARNING:|BUG:|Oops|kernel BUG at|general protection fault|KASAN:|UBSAN:|KFENCE:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|blocked for more than|unreferenced object'
status=0
if [ $# -gt 0 ]; then
	tests="$*"
else
	tests=$(ls "$dir" 2>/dev/null | sort)
fi
for t in $tests; do
	p=$dir/$t
	[ -x "$p" ] || { echo "# vm-run-tests: $t rc=127 (not found)"; continue; }
	dmesg -c > /dev/null
	start=$(date +%s)
	(cd /tmp && timeout -s KILL "$limit" "$p")
	rc=$?
	end=$(date +%s)
	note=""
	[ $rc = 137 ] && note=" (killed after ${limit}s)"
	if dmesg | grep -E -q "$splat"; then
		echo "# vm-run-tests: $t kernel-report: $(dmesg | grep -E -m1 "$splat")"
		[ $rc = 0 ] && rc=1
		[ $rc = 4 ] && rc=1
	fi
	# A test that unloaded the module must leave it loaded for the next.
	if [ ! -d /sys/module/dtrack ] && [ -f "$DTRACK_KO" ] && [ "${VMRUN_MODULE:-1}" = 1 ]; then
		insmod "$DTRACK_KO" 2>/dev/null
	fi
	echo "# vm-run-tests: $t rc=$rc time=$((end - start))s$note"
	[ $rc = 0 ] || [ $rc = 4 ] || status=1
done
# On a kernel with kmemleak (the debug kernel), scan for leaks once every
# program has run and the module's objects have had time to be freed.
if [ -w /sys/kernel/debug/kmemleak ]; then
	rmmod dtrack 2>/dev/null
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	leaks=$(grep -c 'unreferenced object' /sys/kernel/debug/kmemleak)
	if [ "$leaks" -gt 0 ]; then
		cat /sys/kernel/debug/kmemleak
		echo "# vm-run-tests: kmemleak kernel-report: $leaks suspected leaks"
		status=1
	else
		echo "# vm-run-tests: kmemleak rc=0 (no leaks)"
	fi
	[ -f "$DTRACK_KO" ] && insmod "$DTRACK_KO"
fi
# Non-zero when any program failed, so that vm-run.sh -- vm-run-tests is a verdict.
exit $status
