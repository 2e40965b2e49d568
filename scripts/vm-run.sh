#!/bin/bash
# Run a command as root inside a QEMU test VM booting a Debian kernel.
#
# usage: scripts/vm-run.sh [--kernel 6.12|6.1|debug] [--no-module] [--mem MB]
#            [--cpus N] [--timeout S] [--copy HOST[:GUEST]]... [--disk MB]
#            [--swap MB] [--log PATH] [--quiet] [--tcg-thread multi|single]
#            [--boot-retries N] [--append KERNEL-ARGS] -- CMD [ARGS...]
#
# The guest boots from an initramfs with busybox, the project's binaries,
# libraries and VM tests (build/bin, build/lib, build/tests/vm on PATH), the
# files given with --copy, a tmpfs scratch directory at /scratch (half of the
# guest memory; also $TEST_SCRATCH), with --disk an ext4 disk at /disk and
# with --swap that much swap space (a RAM disk, or a loop device over tmpfs
# on the debug kernel: for pages paged out on purpose, not for pressure).
# dtrack.ko is insmod'ed before CMD (unless --no-module) and removed after.
# CMD's output is streamed; the exit status is CMD's, unless the guest kernel
# logged an Oops, BUG, WARNING, lockdep, KASAN/UBSAN or kmemleak report, the
# module failed to load or unload, or the timeout expired: then it is
# non-zero with a message.  The whole console log is kept at a printed path.
#
# --tcg-thread single runs both vCPUs on one host thread.  QEMU 7.2's
# multi-threaded TCG (the default) can run stale code while the guest
# kernel rewrites its own text: arming or disarming a kprobe on a hot
# function (dtrack's load and unload; the kernel's own kprobe_events do the
# same) while another vCPU takes page faults oopses the guest with RIP 0
# within seconds.  Single-threaded TCG does not; the guest sees
# DTRACK_VM_ACCEL=tcg-multi|tcg-single|kvm.
#
# --boot-retries N (default 2): a guest kernel that dies while it boots,
# before /init ran (so before anything of the project did), is booted again
# up to N times, with a note and the failed boot's console log kept.  Seen
# under multi-threaded TCG: an int3 Oops in hrtimer_start_range_ns at 1.7 s
# while the kernel patched its own text (static keys) during pnpacpi_init.
# --append adds to the guest kernel's command line.
set -euo pipefail
. "$(dirname "$0")/common.sh"

usage() {
	sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

kernel=6.12 module=1 mem=1024 cpus=2 timeout=600 disk=0 swap=0 quiet=0 log=
boot_retries=2 append=
tcg_thread=${VMRUN_TCG_THREAD:-multi}
copies=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=${2:?}; shift 2 ;;
	--no-module) module=0; shift ;;
	--mem) mem=${2:?}; shift 2 ;;
	--cpus) cpus=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--copy) copies+=("${2:?}"); shift 2 ;;
	--disk) disk=${2:?}; shift 2 ;;
	--swap) swap=${2:?}; shift 2 ;;
	--log) log=${2:?}; shift 2 ;;
	--quiet) quiet=1; shift ;;
	--tcg-thread) tcg_thread=${2:?}; shift 2 ;;
	--boot-retries) boot_retries=${2:?}; shift 2 ;;
	--append) append=${2:?}; shift 2 ;;
	--) shift; break ;;
	-h|--help) usage ;;
	*) echo "vm-run: unknown option '$1'" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || { echo "vm-run: no command given" >&2; usage; }
case $kernel in 6.12|6.1|debug) ;; *) die "unknown kernel '$kernel' (6.12, 6.1 or debug)" ;; esac
case $tcg_thread in multi|single) ;; *) die "--tcg-thread: 'multi' or 'single', not '$tcg_thread'" ;; esac
accel=tcg
if [ -w /dev/kvm ] && [ "${VMRUN_KVM:-0}" = 1 ]; then
	accel=kvm	# opt-in: KVM on these hosts cannot boot normal kernels
fi
for n in "$mem" "$cpus" "$timeout" "$disk" "$swap" "$boot_retries"; do
	[[ $n =~ ^[0-9]+$ ]] || die "'$n' is not a number"
done

kdir=$(kernel_dir "$kernel")
if [ ! -f "$kdir/release" ]; then
	[ "$kernel" = debug ] && die "debug kernel not built: run scripts/build-debug-kernel.sh"
	"$DTRACK_ROOT/scripts/fetch-kernels.sh" "$kernel"
fi
release=$(cat "$kdir/release")
ko="$DTRACK_ROOT/build/kmod/$kernel/dtrack.ko"
# always asked: make rebuilds the module when a source is newer (a stale
# one would test old code without a word), else it does nothing
if [ $module = 1 ]; then
	make -s -C "$DTRACK_ROOT" module KVER="$kernel" >&2 || die "building dtrack.ko for $kernel failed"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vm-run.XXXXXX")
[ -n "$log" ] || log="$work/console.log"
cleanup() {
	[ -n "${qpid:-}" ] && kill "$qpid" 2>/dev/null || true
	rm -rf "$work/root" "$work/initrd" "$work/disk.img"
}
trap cleanup EXIT

# --- initramfs -------------------------------------------------------------
"$DTRACK_ROOT/scripts/mkinitramfs.sh" "$work/root" "$kernel" "$module" "$disk" "$swap" \
	"${copies[@]+"${copies[@]}"}"
{
	echo "VMRUN_MODULE=$module"
	echo "VMRUN_SCRATCH_MB=$((mem / 2))"
	echo "VMRUN_DISK=$([ "$disk" -gt 0 ] && echo 1)"
	echo "VMRUN_SWAP_MB=$([ "$swap" -gt 0 ] && echo "$swap")"
	echo "export DTRACK_KO=/opt/dtrack/dtrack.ko DTRACK_KERNEL=$kernel" \
		"DTRACK_VM_ACCEL=$([ "$accel" = tcg ] && echo "tcg-$tcg_thread" || echo "$accel")"
	# pass through test knobs
	env | grep -E '^(DTRACK|PAGER|TEST)_[A-Z0-9_]*=' |
		grep -v -E '^(DTRACK_CACHE|DTRACK_ROOT|DTRACK_KO|DTRACK_KERNEL|DTRACK_VM_ACCEL)=' |
		sed "s/'/'\\\\''/g; s/=\(.*\)/='\1'/; s/^/export /" || true
} > "$work/root/vmrun/env"
# CMD, quoted so the guest shell sees exactly the arguments given here
{
	printf 'exec'
	for a in "$@"; do
		printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"
	done
	printf '\n'
} > "$work/root/vmrun/cmd"
(cd "$work/root" && find . | cpio -o -H newc --quiet) > "$work/initrd"

# --- boot --------------------------------------------------------------------
accel_arg=$accel
[ "$accel" = tcg ] && accel_arg="tcg,thread=$tcg_thread"
qargs=(-nodefaults -no-reboot -display none -machine pc -accel "$accel_arg"
	-cpu max -smp "$cpus" -m "$mem"
	-kernel "$kdir/vmlinuz" -initrd "$work/initrd"
	-append "console=ttyS0,115200 panic=-1 oops=panic printk.time=1 loglevel=7 numa=fake=2 rcupdate.rcu_cpu_stall_timeout=120 transparent_hugepage=madvise${append:+ $append}"
	-serial "file:$log" -serial "file:$work/out" -serial "file:$work/status")
if [ "$disk" -gt 0 ]; then
	truncate -s "${disk}M" "$work/disk.img"
	mkfs.ext4 -q -F "$work/disk.img"
	qargs+=(-drive "file=$work/disk.img,format=raw,if=virtio")
fi
keep="$DTRACK_ROOT/build/vm-logs"
mkdir -p "$keep"
# save_log [SUFFIX]: keep the console log in build/vm-logs; sets $saved
save_log() {
	saved="$keep/console-$kernel-$(date +%Y%m%d-%H%M%S)-$$${1:+-$1}.log"
	cp "$log" "$saved"
}
boots=0
while :; do
	: > "$log"
	: > "$work/out"
	: > "$work/status"
	start=$(date +%s)
	timeout --kill-after=5 "$timeout" qemu-system-x86_64 "${qargs[@]}" &
	qpid=$!
	tail -n +1 -f --pid=$qpid "$work/out" 2>/dev/null &
	tpid=$!
	qrc=0
	wait $qpid || qrc=$?
	qpid=
	wait $tpid 2>/dev/null || true
	elapsed=$(( $(date +%s) - start ))
	# died (not timed out) before /init: nothing of the project ran yet
	if [ $qrc -ne 124 ] && [ $qrc -ne 137 ] && [ "$boots" -lt "$boot_retries" ] &&
	   ! grep -a -q -F "$init_marker" "$log"; then
		boots=$((boots + 1))
		save_log "boot$boots"
		echo "vm-run: note: the guest kernel died while booting, before /init ran: $(kernel_report "$log" run); booting again ($boots of $boot_retries; console log: $saved)" >&2
		continue
	fi
	break
done

# --- verdict -------------------------------------------------------------------
fail=()
[ $qrc -eq 124 ] || [ $qrc -eq 137 ] && fail+=("timeout after ${timeout}s")
st="$work/status"
grep -a -q 'MODULE-LOAD-FAILED' "$st" && fail+=("module failed to load: $(grep -a 'MODULE-LOAD-FAILED' "$st" | cut -d' ' -f3-)")
grep -a -q 'MODULE-UNLOAD-FAILED' "$st" && fail+=("module failed to unload: $(grep -a 'MODULE-UNLOAD-FAILED' "$st" | cut -d' ' -f3-)")
# Kernel reports: anything the kernel's own self-checks print once /init
# runs.  One printed while the kernel itself boots (seen once: a KASAN
# report in handle_edge_irq from start_kernel on the debug kernel under
# TCG) predates everything the run is about; it is shown, not counted.
report=$(kernel_report "$log" run)
[ -n "$report" ] && fail+=("guest kernel reported: $report")
boot_report=$(kernel_report "$log" boot)
cmd_rc=$(grep -a -o 'CMD-EXIT [0-9]*' "$st" | cut -d' ' -f2 || true)
if [ -z "$cmd_rc" ] && [ ${#fail[@]} -eq 0 ]; then
	fail+=("guest did not finish (qemu exit $qrc)")
fi
save_log
[ -z "$boot_report" ] ||
	echo "vm-run: note: kernel report during its boot, before /init ran (not held against the run): $boot_report (console log: $saved)" >&2
if [ ${#fail[@]} -gt 0 ]; then
	for f in "${fail[@]}"; do echo "vm-run: FAIL: $f" >&2; done
	cpu=$(bad_rflags "$log")
	[ -z "$cpu" ] || [ -z "$report" ] ||
		echo "vm-run: note: a register dump shows $cpu, reserved bits no x86 CPU loads: the emulated CPU's state was corrupt before the report (docs/reliability.md, 16)" >&2
	echo "vm-run: kernel $release, console log: $saved" >&2
	if [ -n "$cmd_rc" ] && [ "$cmd_rc" -ne 0 ]; then exit "$cmd_rc"; fi
	exit 125
fi
[ $quiet = 1 ] || echo "vm-run: kernel $release, ${elapsed}s, exit $cmd_rc, console log: $saved" >&2
exit "$cmd_rc"
