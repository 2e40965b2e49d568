#!/bin/bash
# 'make reliability': fuzzing and fault injection with figures.
#
#   1. libFuzzer harnesses (pagerd's protocol, the CLI's reply parsing)
#   2. the dtrack netlink fuzzer in the VM on every cached kernel (6.12,
#      6.1, and the debug kernel with KASAN/lockdep/kmemleak when cached),
#      and once more in a 256 MB VM
#   3. pagerd fault injection: SIGKILL of pagerd under load, SIGKILL of
#      clients, ENOSPC write-back (natively), EIO write-back (device-mapper
#      error target in the VM), memory pressure (256 MB VM)
#
# Prints a summary (also in build/reliability/summary.txt, logs beside it)
# and exits non-zero if any part failed, lost or corrupted a byte, or the
# guest kernel logged a report.  Durations scale with REL_SCALE (default 1;
# 0.25 for a quick look); REL_KERNELS overrides the kernels ("6.12 6.1 debug").
set -uo pipefail
. "$(dirname "$0")/common.sh"

scale=${REL_SCALE:-1}
t() { awk -v s="$scale" -v t="$1" 'BEGIN { v = int(t * s); print v < 1 ? 1 : v }'; }
out=${REL_OUT:-$DTRACK_ROOT/build/reliability}
rm -rf "$out"
mkdir -p "$out"
# another 'make clean' may remove build/ meanwhile: recreate before each part
part() { mkdir -p "$out"; echo "== $*"; }

kernels=${REL_KERNELS:-}
if [ -z "$kernels" ]; then
	kernels="6.12 6.1"
	[ -f "$(kernel_dir debug)/release" ] && [ -f "$(kernel_dir debug)/vmlinuz" ] &&
		kernels="$kernels debug"
fi

failures=() reports=0 verified=0 vm_runs=0
declare -A covered=()
fail() { failures+=("$1"); echo "FAIL: $1"; }
field() { sed -n "s/.*[ ]$2=\([0-9.]*\).*/\1/p" "$1" | tail -1; }
sum_field() { sed -n "s/.*[ ]$2=\([0-9]*\).*/\1/p" "$1" | awk '{ s += $1 } END { print s + 0 }'; }

# vm_part NAME LOG: account a VM run (kernel reports, kernel release).
# As in vm-run.sh, a report the kernel printed while it booted, before
# /init and anything of the project ran, is shown and not counted (nor
# are boots vm-run.sh retried: their logs are separate).
vm_part() {
	local name=$1 log=$2 clog n rel boot
	vm_runs=$((vm_runs + 1))
	clog=$(sed -n 's/.*console log: \(.*\)$/\1/p' "$log" | tail -1)
	rel=$(sed -n 's/^vm-run: kernel \([^,]*\),.*/\1/p' "$log" | tail -1)
	[ -n "$rel" ] && covered[$rel]=1
	if [ -n "$clog" ] && [ -f "$clog" ]; then
		boot=$(kernel_report "$clog" boot)
		[ -z "$boot" ] ||
			echo "note: $name: kernel report during its own boot, before /init (not counted): $boot"
		n=$(log_part "$clog" run | grep -a -E -c "$splat_re")
		if [ "$n" -gt 0 ]; then
			reports=$((reports + n))
			fail "$name: $n kernel report lines, first: $(kernel_report "$clog" run)"
		fi
	elif grep -q 'vm-run: FAIL' "$log"; then
		reports=$((reports + 1))
	fi
}

part "build"
make -s -C "$DTRACK_ROOT" all >"$out/build.log" 2>&1 || { cat "$out/build.log"; die "build failed"; }
for k in $kernels; do
	make -s -C "$DTRACK_ROOT" module KVER="$k" >>"$out/build.log" 2>&1 && continue
	[ "$k" = debug ] || { cat "$out/build.log"; die "module build for $k failed"; }
	echo "module build for the debug kernel failed: debug kernel left out"
	kernels=${kernels/debug/}
done

# ---- 1. libFuzzer ------------------------------------------------------------
lib_time=$(t 90)
part "libFuzzer harnesses, ${lib_time}s each"
"$DTRACK_ROOT/scripts/fuzz-lib.sh" --time "$lib_time" > "$out/fuzz-lib.log" 2>&1 ||
	fail "libFuzzer: crash (see $out/fuzz-lib.log, build/fuzz-artifacts)"
grep '^# ' "$out/fuzz-lib.log"
lib_pp=$(grep 'FUZZ-LIB pager-proto' "$out/fuzz-lib.log" | sed -n 's/.*execs=\([0-9]*\).*/\1/p')
lib_dr=$(grep 'FUZZ-LIB dtrack-reply' "$out/fuzz-lib.log" | sed -n 's/.*execs=\([0-9]*\).*/\1/p')

# ---- 2. netlink fuzzer in the VM ------------------------------------------------
nl_time=$(t 90)
nl_execs=0 nl_secs=0 nl_created=0 nl_kernels=""
for k in $kernels "6.12:256"; do
	kern=${k%%:*} mem=1024
	[ "$k" != "$kern" ] && mem=${k#*:}
	log=$out/fuzz-netlink-$kern-$mem.log
	part "netlink fuzzer, kernel $kern, ${mem} MB, ${nl_time}s"
	"$DTRACK_ROOT/scripts/fuzz-netlink.sh" --kernel "$kern" --mem "$mem" --time "$nl_time" \
		> "$log" 2>&1
	rc=$?
	grep -E '^# (nlfuzz|FUZZ|kmemleak|module)|^(not )?ok ' "$log" | grep -v '^# FUZZ'
	vm_part "netlink fuzzer on $kern ($mem MB)" "$log"
	[ $rc = 0 ] || fail "netlink fuzzer on $kern ($mem MB): exit $rc (see $log)"
	nl_execs=$((nl_execs + $(sum_field "$log" execs)))
	nl_created=$((nl_created + $(sum_field "$log" created)))
	nl_secs=$(awk -v a="$nl_secs" -v b="$(field "$log" secs)" 'BEGIN { print a + b }')
	nl_kernels="$nl_kernels $kern($mem MB)"
done

# ---- 3. pagerd fault injection --------------------------------------------------
part "SIGKILL pagerd under load"
"$DTRACK_ROOT/scripts/fuzz-pager-kill.sh" --cycles "$(t 150)" > "$out/kill-pagerd.log" 2>&1 ||
	fail "pagerd SIGKILL cycles (see $out/kill-pagerd.log)"
tail -1 "$out/kill-pagerd.log"
kill_cycles=$(sum_field "$out/kill-pagerd.log" cycles)
kill_runs=$(sum_field "$out/kill-pagerd.log" client_runs)
verified=$((verified + $(sum_field "$out/kill-pagerd.log" bytes_verified)))

part "SIGKILL clients"
"$DTRACK_ROOT/scripts/fuzz-pager-clients.sh" --cycles "$(t 30)" > "$out/kill-clients.log" 2>&1 ||
	fail "client SIGKILL cycles (see $out/kill-clients.log)"
tail -1 "$out/kill-clients.log"
client_kills=$(sum_field "$out/kill-clients.log" cycles)
client_pkills=$(sum_field "$out/kill-clients.log" pagerd_kills)
verified=$((verified + $(sum_field "$out/kill-clients.log" bytes_verified)))

part "ENOSPC write-back"
"$DTRACK_ROOT/scripts/fuzz-pager-enospc.sh" --rounds "$(t 6)" > "$out/enospc.log" 2>&1
rc=$?
tail -1 "$out/enospc.log"
[ $rc = 0 ] || [ $rc = 4 ] || fail "ENOSPC (see $out/enospc.log)"
enospc_rounds=$(sum_field "$out/enospc.log" rounds)
enospc_errs=$(sum_field "$out/enospc.log" injected_errors)
verified=$((verified + $(sum_field "$out/enospc.log" bytes_verified)))

eio_rounds=0 eio_errs=0 eio_reads=0 eio_note=""
for k in $kernels; do
	[ "$k" = debug ] && continue
	log=$out/eio-$k.log
	part "EIO write-back (device-mapper error target), kernel $k"
	"$DTRACK_ROOT/scripts/fuzz-pager-eio.sh" --kernel "$k" --rounds "$(t 3)" > "$log" 2>&1
	rc=$?
	grep -E '^# (guest-eio|EIO)|pager-stress:' "$log" | head -20
	vm_part "EIO on $k" "$log"
	case $rc in
	0) ;;
	4) eio_note="$eio_note $k:skipped($(grep -m1 -o 'SKIP.*\|skipped.*' "$log"))" ;;
	*) fail "EIO write-back on $k: data lost or not recovered (see $log)" ;;
	esac
	eio_rounds=$((eio_rounds + $(sum_field "$log" rounds)))
	eio_errs=$((eio_errs + $(sum_field "$log" injected_errors)))
	eio_reads=$((eio_reads + $(sum_field "$log" read_errors)))
	verified=$((verified + $(sum_field "$log" bytes_verified)))
done

mp_note=""
for k in $kernels; do
	[ "$k" = debug ] && continue
	log=$out/mempressure-$k.log
	part "memory pressure, kernel $k, 256 MB"
	"$DTRACK_ROOT/scripts/fuzz-pager-mempressure.sh" --kernel "$k" --mem 256 --time "$(t 30)" \
		> "$log" 2>&1
	rc=$?
	grep -E '^# (guest-mempressure|MEMPRESSURE)' "$log"
	vm_part "memory pressure on $k" "$log"
	[ $rc = 0 ] || fail "memory pressure on $k (see $log)"
	verified=$((verified + $(sum_field "$log" bytes_verified)))
	mp_note="$mp_note $k:lowest-available=$(field "$log" low_avail_kb)kB"
done

# ---- summary ----------------------------------------------------------------------
{
	echo
	part "reliability summary ($(date -u '+%Y-%m-%d %H:%M UTC'), scale $scale)"
	printf '%-34s %s\n' "libFuzzer pager-proto" "${lib_pp:-0} executions in ${lib_time}s"
	printf '%-34s %s\n' "libFuzzer dtrack-reply" "${lib_dr:-0} executions in ${lib_time}s"
	printf '%-34s %s\n' "netlink fuzzer (VM)" "$nl_execs messages in ${nl_secs}s, $nl_created trackers created;$nl_kernels"
	printf '%-34s %s\n' "pagerd SIGKILL cycles" "$kill_cycles (under $kill_runs client runs, all byte-exact unless listed below)"
	printf '%-34s %s\n' "client SIGKILL cycles" "$client_kills ($client_pkills with pagerd SIGKILLed too)"
	printf '%-34s %s\n' "ENOSPC rounds / injected errors" "$enospc_rounds / $enospc_errs"
	printf '%-34s %s\n' "EIO rounds / injected errors" "$eio_rounds / $eio_errs ($eio_reads failed fills)$eio_note"
	printf '%-34s %s\n' "memory pressure (256 MB VM)" "${mp_note# }"
	printf '%-34s %s\n' "injected faults (total)" "$((kill_cycles + client_kills + client_pkills + enospc_errs + eio_errs))"
	printf '%-34s %s\n' "bytes verified" "$verified"
	printf '%-34s %s\n' "VM runs" "$vm_runs"
	printf '%-34s %s\n' "kernel reports" "$reports"
	printf '%-34s %s\n' "kernels covered" "$(echo "${!covered[@]}" | tr ' ' '\n' | sort | tr '\n' ' ')"
	printf '%-34s %s\n' "known bugs (excluded from fuzzing)" "tests/fuzz/repro/: pager-dead-self, dtrack-reply-mnl-nlmsg-len"
	if [ ${#failures[@]} -gt 0 ]; then
		echo "failures:"
		printf '  %s\n' "${failures[@]}"
		echo "result: FAIL (${#failures[@]} failures, $reports kernel reports)"
	else
		echo "result: PASS (0 kernel reports, no byte lost)"
	fi
} | tee "$out/summary.txt"
[ ${#failures[@]} -eq 0 ] && [ $reports -eq 0 ]
