#!/bin/bash
# 'make run': build what is missing, boot the test VM with dtrack loaded and
# run the live demo (scripts/vm-demo.sh) inside it.
#
# usage: scripts/demo.sh [--kernel 6.12|6.1]
set -euo pipefail
. "$(dirname "$0")/common.sh"
kernel=${KVER:-6.12}
[ "${1:-}" = --kernel ] && kernel=$2
"$DTRACK_ROOT/scripts/install-deps.sh"
"$DTRACK_ROOT/scripts/fetch-kernels.sh" "$kernel" ksft
make -s -C "$DTRACK_ROOT" all module KVER="$kernel"
exec "$DTRACK_ROOT/scripts/vm-run.sh" --kernel "$kernel" --mem 1024 --cpus 2 \
	--copy "$DTRACK_ROOT/scripts/vm-demo.sh:/opt/dtrack/bin/vm-demo" -- vm-demo
