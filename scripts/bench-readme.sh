#!/bin/bash
# Put the "Targets at a glance" table of a bench results.md into the README,
# between the lines '<!-- bench-table begin -->' and '<!-- bench-table end -->',
# with the run's date and kernels (scripts/bench.sh calls it after each run
# that updates docs/bench).
#
# usage: scripts/bench-readme.sh RESULTS.md README.md
set -euo pipefail
res=$1 readme=$2
grep -q '^<!-- bench-table begin -->$' "$readme" || { echo "bench-readme: no markers in $readme" >&2; exit 0; }
tab=$(mktemp)
trap 'rm -f "$tab"' EXIT
{
	echo "<!-- bench-table begin -->"
	echo "Run of $(sed -n 's/^# Benchmark results, //p' "$res" | head -1)" \
		"($(grep -m1 '^Dirty tracking in the QEMU' "$res" | sed 's/ on: / on kernels /; s/;$//');" \
		"$(grep -m1 '^Pager natively' "$res" | sed 's/\.$//')):"
	echo
	sed -n '/^## Targets at a glance/,/^False negatives/p' "$res" | sed '1,2d; $d' | sed '/^$/d'
	echo
	echo "<!-- bench-table end -->"
} > "$tab"
awk -v tab="$tab" '
	/^<!-- bench-table begin -->$/ { while ((getline l < tab) > 0) print l; skip = 1; next }
	/^<!-- bench-table end -->$/ { skip = 0; next }
	!skip' "$readme" > "$readme.tmp"
mv "$readme.tmp" "$readme"
