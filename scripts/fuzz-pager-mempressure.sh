#!/bin/bash
# Memory pressure: the test VM with little RAM (default 256 MB) while pagerd
# pages two clients and dtrack samples them (tests/fuzz/guest-mempressure.sh).
# usage: scripts/fuzz-pager-mempressure.sh [--kernel K] [--mem MB] [--time S]
#                                          [--leave MB]
# --leave: memory the tmpfs filler leaves available (default 60).
# The backing files live on an ext4 scratch disk (--disk): on tmpfs they
# would hold the whole regions in RAM, which no pager can relieve.
# Prints the guest's '# MEMPRESSURE ...' line; exit status 1 on failure.
set -uo pipefail
. "$(dirname "$0")/common.sh"

kernel=6.12 mem=256 secs=20 leave=60
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--mem) mem=$2; shift ;;
	--time) secs=$2; shift ;;
	--leave) leave=$2; shift ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
exec "$DTRACK_ROOT/scripts/vm-run.sh" --kernel "$kernel" --mem "$mem" --timeout $((secs * 4 + 300)) --disk 256 \
	--copy "$DTRACK_ROOT/tests/fuzz/guest-mempressure.sh:/root/guest-mempressure.sh" \
	-- sh /root/guest-mempressure.sh "$secs" "$leave"
