#!/bin/bash
# The dtrack netlink fuzzer (tests/fuzz/nlfuzz.c) in the test VM for a given
# time.  The VM runner fails the run on any kernel report (WARN, BUG, KASAN,
# lockdep, ...); on a kernel with kmemleak a leak scan follows the run.
#
# usage: scripts/fuzz-netlink.sh [--kernel 6.12|6.1|debug] [--time S]
#                                [--threads N] [--mem MB] [--seed N]
set -uo pipefail
. "$(dirname "$0")/common.sh"

kernel=6.12 secs=60 threads=4 mem=1024 seed=
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--time) secs=$2; shift ;;
	--threads) threads=$2; shift ;;
	--mem) mem=$2; shift ;;
	--seed) seed=$2; shift ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
[ -x "$DTRACK_ROOT/build/bin/dtrack-nlfuzz" ] || die "build first (make)"
# kmemleak (debug kernel): unload the module so its objects are freed, scan
cmd="dtrack-nlfuzz --time $secs --threads $threads ${seed:+--seed $seed}; rc=\$?
if [ -w /sys/kernel/debug/kmemleak ]; then
	rmmod dtrack; echo scan > /sys/kernel/debug/kmemleak; sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	n=\$(grep -c 'unreferenced object' /sys/kernel/debug/kmemleak)
	echo \"# kmemleak: \$n suspected leaks\"
	[ \"\$n\" = 0 ] || { head -40 /sys/kernel/debug/kmemleak; rc=1; }
	insmod \$DTRACK_KO
fi
exit \$rc"
exec "$DTRACK_ROOT/scripts/vm-run.sh" --kernel "$kernel" --mem "$mem" \
	--timeout $((secs * 3 + 300)) -- sh -c "$cmd"
