# Shared settings for the project's scripts; sourced, never run.
# The cache lives outside the clone so that nothing downloaded is ever committed
# and a second clone reuses the same kernels.
DTRACK_CACHE=${DTRACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dtrack}
DTRACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
log() { echo "$(basename "$0"): $*" >&2; }

# kernel_dir 6.12|6.1|debug -> cache directory of that kernel
kernel_dir() { echo "$DTRACK_CACHE/kernels/$1"; }

# What the kernel's own self-checks print (vm-run.sh's verdict,
# reliability.sh).
splat_re='(WARNING:|BUG:|Oops|kernel BUG at|general protection fault|Kernel panic|KASAN:|UBSAN:|KFENCE:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: task .* blocked for more than|unreferenced object|new suspected memory leaks|rcu: INFO: .* detected stalls|watchdog: BUG: soft lockup|page_table_check)'
# The line the VM's /init writes to the kernel log first thing
# (scripts/vm-init.sh): what the kernel reports before it comes from its
# own boot, before anything of the project (module, tools, tests) ran.
init_marker='vm-init: /init starts'

# log_part CONSOLE-LOG boot|run: the boot part of the log (before the
# marker) or the run part (from it on; the whole log when the marker is
# missing, e.g. /init never ran).
log_part() {
	local log=$1 part=$2 m
	m=$(grep -a -n -m1 -F "$init_marker" "$log" | cut -d: -f1)
	if [ -z "$m" ]; then
		[ "$part" = run ] || return 0
		m=1
	fi
	if [ "$part" = boot ]; then
		head -n "$((m - 1))" "$log"
	else
		tail -n "+$m" "$log"
	fi
}

# kernel_report CONSOLE-LOG boot|run: the first kernel report of that part
# of the log, without its timestamp; nothing if there is none.
kernel_report() {
	log_part "$1" "$2" | grep -a -E -m1 "$splat_re" | sed 's/^\[[ 0-9.]*\] //' || true
}

# bad_rflags CONSOLE-LOG: the first RFLAGS of a register dump in the run
# part of the log that no x86 CPU can hold (a reserved bit set: 63-22, 15,
# 5, 3; or bit 1 clear), as "EFLAGS: <hex>"; nothing if there is none.
# POPF, IRET and SYSRET cannot load reserved bits, and an exception frame
# is pushed by the CPU: such a value means the emulated CPU's own state was
# corrupt, whatever the kernel did (docs/reliability.md, 16).
bad_rflags() {
	local f
	for f in $(log_part "$1" run | grep -a -o -E 'EFLAGS: [0-9a-f]+' |
		   cut -d' ' -f2); do
		if (( (0x$f & 0xffffffffffc08028) != 0 || (0x$f & 2) == 0 )); then
			echo "EFLAGS: $f"
			return
		fi
	done
}
