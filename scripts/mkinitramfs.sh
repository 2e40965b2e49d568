#!/bin/bash
# Populate the test VM's initramfs root (used by scripts/vm-run.sh).
# usage: mkinitramfs.sh ROOT KERNEL WITH_MODULE DISK_MB SWAP_MB [HOST[:GUEST]]...
set -euo pipefail
. "$(dirname "$0")/common.sh"

root=$1 kernel=$2 with_module=$3 disk=$4 swap=$5
shift 5
kdir=$(kernel_dir "$kernel")
release=$(cat "$kdir/release")
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	busybox=/bin/busybox
[ -x "$busybox" ] || die "busybox missing (apt-get install busybox-static)"

mkdir -p "$root"/{bin,sbin,etc,vmrun,opt/dtrack/{bin,lib,tests/vm},lib64,root}
cp "$busybox" "$root/bin/busybox"
cp "$DTRACK_ROOT/scripts/vm-init.sh" "$root/init"
chmod 755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

elfs=()
add_tree() {	# add_tree HOSTDIR GUESTDIR: copy the files of a directory
	[ -d "$1" ] || return 0
	mkdir -p "$root$2"
	cp -a "$1/." "$root$2/"
}
add_tree "$DTRACK_ROOT/build/bin" /opt/dtrack/bin
add_tree "$DTRACK_ROOT/build/lib" /opt/dtrack/lib
add_tree "$DTRACK_ROOT/build/tests/vm" /opt/dtrack/tests/vm
cp "$DTRACK_ROOT/scripts/vm-run-tests.sh" "$root/opt/dtrack/bin/vm-run-tests"
if [ "$with_module" = 1 ]; then
	cp "$DTRACK_ROOT/build/kmod/$kernel/dtrack.ko" "$root/opt/dtrack/dtrack.ko"
fi

for c in "$@"; do
	host=${c%%:*}
	guest=${c#*:}
	[ "$guest" != "$c" ] || guest=$(realpath -m "$host")
	[ -e "$host" ] || die "--copy: $host does not exist"
	mkdir -p "$root$(dirname "$guest")"
	cp -a "$host" "$root$guest"
done

# Kernel modules of the Debian kernel needed for the scratch disk and the
# swap device, with their dependencies, decompressed (busybox insmod does
# not read .ko.xz).  Debian's image package ships no modules.dep (depmod
# makes it at install time), so dependencies are read from each module's
# own modinfo.  A line of vmrun/kmods is a module and its parameters.
if { [ "$disk" -gt 0 ] || [ "$swap" -gt 0 ]; } &&
	[ -d "$kdir/root/lib/modules/$release/kernel" ]; then
	mdir="$kdir/root/lib/modules/$release/kernel"
	: > "$root/vmrun/kmods"
	mkdir -p "$root/lib/kmods"
	declare -A seen=()
	want() {	# want MODULE [PARAMETERS...]
		local m=${1//-/_} path d out
		shift
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		path=$(find "$mdir" \( -name "$m.ko" -o -name "$m.ko.xz" \
			-o -name "${m//_/-}.ko" -o -name "${m//_/-}.ko.xz" \) | head -1)
		[ -n "$path" ] || return 0	# built in
		out="$root/lib/kmods/$m.ko"
		case $path in
		*.xz) xz -dc "$path" > "$out" ;;
		*) cp "$path" "$out" ;;
		esac
		for d in $(strings "$out" | sed -n 's/^depends=//p' | tr ',' ' '); do
			want "$d"
		done
		echo "/lib/kmods/$m.ko${1:+ $*}" >> "$root/vmrun/kmods"
	}
	if [ "$disk" -gt 0 ]; then
		for m in virtio_pci virtio_blk crc32c_generic ext4; do want "$m"; done
	fi
	# swap: a RAM disk (brd) where the kernel has it as a module, and the
	# loop driver for vm-init's fallback (built into the debug kernel)
	if [ "$swap" -gt 0 ]; then
		want brd rd_nr=1 rd_size=$((swap * 1024))
		want loop
	fi
fi

# Shared libraries of every ELF program or library put into the image.
while IFS= read -r -d '' f; do
	file -b "$f" | grep -q '^ELF.*dynamically linked' || continue
	ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done < <(find "$root" -type f -perm -u+x -print0; find "$root/opt/dtrack/lib" -name '*.so*' -print0)
