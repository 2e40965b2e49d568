# shellcheck shell=bash
# Sourced by the native pagerd fault-injection scripts
# (scripts/fuzz-pager-{clients,enospc}.sh): option parsing, the work
# directory, pagerd start-up and the cleanup that kills what they started.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# fuzz_opts "NAME..." "$@": each '--NAME VALUE' sets $NAME; anything else
# is an error.  Defaults are the caller's own assignments before the call.
fuzz_opts() {
	local names=" $1 " o
	shift
	while [ $# -gt 0 ]; do
		o=${1#--}
		if [ "$o" = "$1" ] || [[ $names != *" $o "* ]] || [ $# -lt 2 ]; then
			die "unknown option or missing value: $1"
		fi
		printf -v "$o" '%s' "$2"
		shift 2
	done
}

# fuzz_setup NAME: $bin (pagerd, pager-stress), $work (removed at exit
# unless $FUZZ_KEEP is set: pagerd.log stays for a look), PAGER_SOCKET in
# $work.  At exit, $pagerd_pid, $cpid and the pids in the
# cpids array are killed, then fuzz_cleanup_hook runs if the caller has one.
fuzz_setup() {
	bin=${FUZZ_BIN:-$DTRACK_ROOT/build/bin}
	[ -x "$bin/pager-stress" ] && [ -x "$bin/pagerd" ] || die "build first (make)"
	work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	export PAGER_SOCKET=$work/sock
	pagerd_pid= cpid=
	cpids=()
	failures=0
	trap fuzz_cleanup EXIT
}

fuzz_cleanup() {
	{
		for p in "$cpid" "${cpids[@]}" "$pagerd_pid"; do
			[ -n "$p" ] && kill -9 "$p"
		done
		wait
		if declare -F fuzz_cleanup_hook >/dev/null; then fuzz_cleanup_hook; fi
	} 2>/dev/null
	[ -n "${FUZZ_KEEP:-}" ] || rm -rf "$work"
}

# start_pagerd ARGS...: pagerd on $PAGER_SOCKET in the background, logging
# to $work/pagerd.log; returns once its socket exists.  $PAGERD_ARGS is
# added to its command line (e.g. --wp-mode sync, --fault-around 16).
start_pagerd() {
	# shellcheck disable=SC2086 # PAGERD_ARGS is a list of options
	"$bin/pagerd" --socket "$PAGER_SOCKET" "$@" ${PAGERD_ARGS:-} \
		>>"$work/pagerd.log" 2>&1 &
	pagerd_pid=$!
	for _ in $(seq 50); do [ -S "$PAGER_SOCKET" ] && break; sleep 0.1; done
}

fail() { failures=$((failures + 1)); echo "# $*"; }

# field NAME TEXT: the number after 'NAME=' in TEXT (empty if none)
field() { sed -n "s/.*[ #]$1=\\([0-9]*\\).*/\\1/p" <<<"$2" | head -1; }
