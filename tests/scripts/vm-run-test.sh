#!/bin/bash
# Host-side tests of scripts/vm-run.sh, the contract every VM test stands on:
# exit status, output streaming, --copy, --disk, --swap, kernel-report and
# timeout detection, on both Debian kernels.  Prints TAP.
set -u
. "$(dirname "$0")/../../scripts/common.sh"
vmrun="$DTRACK_ROOT/scripts/vm-run.sh"
kernels=${TEST_KERNELS:-"6.12 6.1"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); failed=1; echo "not ok $n $1"; }

build_warn_module() {	# build_warn_module KERNEL -> path of the .ko
	local k=$1 d="$DTRACK_ROOT/build/warn_module/$1"
	mkdir -p "$d"
	cp "$DTRACK_ROOT"/tests/vmrun/warn_module/{Kbuild,dtrack_warn_test.c} "$d/"
	make -s -C "$(kernel_dir "$k")/build" M="$d" modules >"$tmp/build-$k.log" 2>&1 || return 1
	echo "$d/dtrack_warn_test.ko"
}

count=$(( $(echo $kernels | wc -w) * 9 + 3 ))
echo "TAP version 13"
echo "1..$count"

# The verdict's split of a console log at /init (no VM needed): a report
# of the kernel's own boot is shown but not held against the run; one
# after /init started fails it, and so does any report without the marker.
printf '[    1.1] BUG: KASAN: wild-memory-access in x\n[    2.0] %s\n[    3.0] fine\n' \
	"$init_marker" > "$tmp/c1"
printf '[    1.1] fine\n[    2.0] %s\n[    3.0] WARNING: CPU: 0 PID: 1 at y\n' \
	"$init_marker" > "$tmp/c2"
printf '[    1.1] WARNING: at z\n' > "$tmp/c3"
if [ "$(kernel_report "$tmp/c1" boot)" = "BUG: KASAN: wild-memory-access in x" ] &&
   [ -z "$(kernel_report "$tmp/c1" run)" ] &&
   [ "$(kernel_report "$tmp/c2" run)" = "WARNING: CPU: 0 PID: 1 at y" ] &&
   [ -z "$(kernel_report "$tmp/c2" boot)" ] &&
   [ "$(kernel_report "$tmp/c3" run)" = "WARNING: at z" ] &&
   [ -z "$(kernel_report "$tmp/c3" boot)" ]; then
	ok "vm-run verdict: boot-time kernel reports noted, reports once /init runs fail the run"
else
	notok "vm-run verdict: console log split at /init ($(kernel_report "$tmp/c1" boot) | $(kernel_report "$tmp/c2" run) | $(kernel_report "$tmp/c3" run))"
fi
# A register dump no CPU can produce (reserved RFLAGS bits) is named: the
# console log of 2026-12-06's panic under the netlink fuzzer has one; the
# frames of an ordinary WARNING, and a dump before /init, do not count.
printf '[    1.0] RSP: 0018:ff EFLAGS: 80000002\n[    2.0] %s\n[    3.0] WARNING: CPU: 0 PID: 1 at y\n[    3.1] RSP: 0018:ffffa EFLAGS: 00010246\n[    3.2] RSP: 002b:00007ff EFLAGS: 00000202 ORIG_RAX: 0000000000000001\n' \
	"$init_marker" > "$tmp/c4"
panic_log=$DTRACK_ROOT/docs/findings/2026-12-06-nlfuzz-6.12-256mb-panic.log
if [ "$(bad_rflags "$panic_log")" = "EFLAGS: 82382002" ] &&
   [ -z "$(bad_rflags "$tmp/c4")" ] && [ -z "$(bad_rflags "$tmp/c2")" ]; then
	ok "vm-run verdict: register dumps with reserved RFLAGS bits are named, ordinary ones not"
else
	notok "vm-run verdict: reserved RFLAGS bits ($(bad_rflags "$panic_log") | $(bad_rflags "$tmp/c4"))"
fi
# A guest kernel that dies before /init is booted again (--boot-retries),
# and once the retries are used up the run fails.  No init to run makes
# the kernel panic at the end of its boot.
k1=${kernels%% *}
"$vmrun" --kernel "$k1" --quiet --boot-retries 1 \
	--append "rdinit=/nonexistent init=/nonexistent" -- true >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 125 ] && [ "$(grep -c 'booting again (1 of 1' "$tmp/err")" = 1 ] &&
   grep -q 'vm-run: FAIL' "$tmp/err"; then
	ok "vm-run $k1: a kernel dying before /init is booted again, then the run fails"
else
	notok "vm-run $k1: --boot-retries (rc=$rc: $(tr '\n' ' ' < "$tmp/err"))"
fi
for k in $kernels; do
	out=$("$vmrun" --kernel "$k" --quiet -- sh -c 'echo hello-from-guest; uname -r; exit 7' 2>"$tmp/err")
	rc=$?
	if [ $rc -eq 7 ] && grep -q hello-from-guest <<<"$out" && grep -q "^$(cat "$(kernel_dir "$k")/release")$" <<<"$out"; then
		ok "vm-run $k: streams output, boots $k, returns the command's status"
	else
		notok "vm-run $k: status/output (rc=$rc, out='$out')"
	fi

	echo "payload-$k" > "$tmp/payload"
	out=$("$vmrun" --kernel "$k" --quiet --copy "$tmp/payload:/root/p.txt" -- cat /root/p.txt 2>&1)
	[ $? -eq 0 ] && grep -q "payload-$k" <<<"$out" && ok "vm-run $k: --copy HOST:GUEST" ||
		notok "vm-run $k: --copy ($out)"

	out=$("$vmrun" --kernel "$k" --quiet -- sh -c 'lsmod | grep -q "^dtrack " && dtrack_loaded=1; echo loaded=$dtrack_loaded' 2>&1)
	grep -q 'loaded=1' <<<"$out" && ok "vm-run $k: dtrack.ko is loaded before the command" ||
		notok "vm-run $k: module not loaded ($out)"

	if ko=$(build_warn_module "$k"); then
		# single-threaded TCG: a module load patches kernel text, which
		# QEMU's multi-threaded TCG can turn into a stray int3 (vm-run.sh)
		"$vmrun" --kernel "$k" --no-module --tcg-thread single --copy "$ko:/root/w.ko" \
			-- insmod /root/w.ko >/dev/null 2>"$tmp/err"
		rc=$?
		if [ $rc -ne 0 ] && grep -q 'guest kernel reported: WARNING' "$tmp/err" && grep -q 'console log:' "$tmp/err"; then
			ok "vm-run $k: a guest kernel WARNING fails the run with a message"
		else
			notok "vm-run $k: WARNING not detected (rc=$rc: $(cat "$tmp/err"))"
		fi
	else
		notok "vm-run $k: building the warning test module failed: $(tail -3 "$tmp/build-$k.log")"
	fi

	out=$("$vmrun" --kernel "$k" --quiet --no-module --disk 64 -- \
		sh -c 'grep -q "^/dev/vda /disk ext4 rw" /proc/mounts && echo data > /disk/f && cat /disk/f' 2>&1)
	[ $? -eq 0 ] && grep -q '^data$' <<<"$out" && ok "vm-run $k: --disk gives a writable ext4 /disk" ||
		notok "vm-run $k: --disk ($out)"

	# 32 MB less the swap header's page: 32764 KiB
	out=$("$vmrun" --kernel "$k" --quiet --no-module --swap 32 -- \
		sh -c 'awk "NR > 1 { print \$3 }" /proc/swaps' 2>&1)
	[ $? -eq 0 ] && grep -q '^32764$' <<<"$out" && ok "vm-run $k: --swap gives the VM swap space" ||
		notok "vm-run $k: --swap ($out)"

	out=$("$vmrun" --kernel "$k" --quiet --no-module -- sh -c 'echo accel=$DTRACK_VM_ACCEL' 2>&1)
	out2=$("$vmrun" --kernel "$k" --quiet --no-module --tcg-thread single -- \
		sh -c 'echo accel=$DTRACK_VM_ACCEL' 2>&1)
	grep -q '^accel=tcg-multi$' <<<"$out" && grep -q '^accel=tcg-single$' <<<"$out2" &&
		ok "vm-run $k: --tcg-thread, told to the guest as DTRACK_VM_ACCEL" ||
		notok "vm-run $k: --tcg-thread ($out / $out2)"
	"$vmrun" --kernel "$k" --quiet --no-module --tcg-thread triple -- true >/dev/null 2>"$tmp/err"
	[ $? -ne 0 ] && grep -q "'multi' or 'single'" "$tmp/err" &&
		ok "vm-run $k: a bad --tcg-thread is refused with a message" ||
		notok "vm-run $k: bad --tcg-thread accepted ($(cat "$tmp/err"))"

	"$vmrun" --kernel "$k" --no-module --timeout 15 -- sleep 600 >/dev/null 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ] && grep -q 'timeout after 15s' "$tmp/err"; then
		ok "vm-run $k: timeout ends the run with a message"
	else
		notok "vm-run $k: timeout (rc=$rc: $(cat "$tmp/err"))"
	fi
done
exit $failed
