#!/bin/bash
# I/O errors for pagerd, in the test VM: see tests/fuzz/guest-eio.sh.  The
# Debian kernel's loop, dm-mod and ext4 (which serves ext2) modules and the host's dmsetup are copied
# into the guest; an ext2 image made here is the file system that fails.
#
# usage: scripts/fuzz-pager-eio.sh [--kernel 6.12|6.1|debug] [--rounds N]
# Prints the guest's '# EIO rounds=N injected_errors=N bytes_verified=N
# failures=N'; exit status 4 (skip) when dm-mod or dmsetup is missing.
set -uo pipefail
. "$(dirname "$0")/common.sh"

kernel=6.12 rounds=3
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
dmsetup=$(command -v dmsetup || echo /usr/sbin/dmsetup)
mkfs=$(command -v mkfs.ext2 || echo /usr/sbin/mkfs.ext2)
if [ ! -x "$dmsetup" ] || [ ! -x "$mkfs" ]; then
	echo "# EIO skipped: dmsetup or mkfs.ext2 missing (apt-get install dmsetup e2fsprogs)"
	exit 4
fi
kdir=$(kernel_dir "$kernel")
release=$(cat "$kdir/release" 2>/dev/null) || die "kernel $kernel not in the cache"
mdir=$kdir/root/lib/modules/$release/kernel
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-pager-eio.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/kmods"
: > "$work/kmods/order"
# want MODULE: extract it and its dependencies (depends= of .modinfo), in
# load order; built-in modules are simply not found
declare -A seen=()
want() {
	local m=$1 f d
	[ -n "${seen[$m]:-}" ] && return 0
	seen[$m]=1
	f=$(find "$mdir" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "${m//_/-}.ko" \
		-o -name "${m//_/-}.ko.xz" \) | head -1)
	[ -n "$f" ] || return 0
	case $f in
	*.xz) xz -dc "$f" > "$work/kmods/$m.ko" ;;
	*) cp "$f" "$work/kmods/$m.ko" ;;
	esac
	for d in $(strings "$work/kmods/$m.ko" | sed -n 's/^depends=//p' | tr , ' '); do
		want "$d"
	done
	echo "$m.ko" >> "$work/kmods/order"
}
for m in loop dm_mod crc32c_generic ext4; do want "$m"; done
"$mkfs" -q -F "$work/eio.img" 24M >/dev/null 2>&1 || die "mkfs.ext2 failed"
"$DTRACK_ROOT/scripts/vm-run.sh" --kernel "$kernel" --timeout 600 \
	--copy "$work/kmods:/root/kmods" --copy "$work/eio.img:/root/eio.img" \
	--copy "$dmsetup:/sbin/dmsetup" \
	--copy "$DTRACK_ROOT/tests/fuzz/guest-eio.sh:/root/guest-eio.sh" \
	-- sh /root/guest-eio.sh /root/eio.img /root/kmods "$rounds"
