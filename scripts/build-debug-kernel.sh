#!/bin/bash
# Build a debug 6.12 kernel from Debian's linux-source-6.12 with the
# checkers kernel developers trust (KASAN, KFENCE, lockdep, DEBUG_VM,
# PAGE_TABLE_CHECK, kmemleak, UBSAN, ...), trimmed to what the test VM needs
# (x86_64 defconfig + KVM guest drivers) so that it builds in well under an
# hour on 2 cores.  Cached as $DTRACK_CACHE/kernels/debug, usable as
# 'scripts/vm-run.sh --kernel debug' and 'make module KVER=debug'.
#
# usage: scripts/build-debug-kernel.sh [--force]
set -euo pipefail
. "$(dirname "$0")/common.sh"

dir=$(kernel_dir debug)
if [ "${1:-}" != --force ] && [ -f "$dir/release" ] && [ -f "$dir/vmlinuz" ]; then
	exit 0
fi
"$DTRACK_ROOT/scripts/install-deps.sh"
"$DTRACK_ROOT/scripts/fetch-kernels.sh" ksft	# brings the source tarball
tarball=$(ls "$DTRACK_CACHE"/linux-source-6.12.tar.* | head -1)
src="$dir/src"
mkdir -p "$dir"
if [ ! -f "$src/Makefile" ]; then
	log "unpacking $(basename "$tarball")"
	rm -rf "$src" "$dir/unpack"
	mkdir -p "$dir/unpack"
	tar -xf "$tarball" -C "$dir/unpack"
	mv "$dir"/unpack/linux-source-6.12 "$src"
	rmdir "$dir/unpack"
fi
cd "$src"
if [ ! -f .config ] || [ "${1:-}" = --force ]; then
	make -s defconfig
	make -s kvm_guest.config
	# Features the project needs, then the checkers.
	scripts/config \
		-e MODULES -e MODULE_UNLOAD -d MODULE_SIG -d MODULE_COMPRESS \
		-e CHECKPOINT_RESTORE -e MEM_SOFT_DIRTY -e USERFAULTFD -e PTE_MARKER_UFFD_WP -e IO_URING \
		-e KPROBES -e KALLSYMS -e KALLSYMS_ALL -e TRANSPARENT_HUGEPAGE \
		-e TRANSPARENT_HUGEPAGE_MADVISE -e KSM -e NUMA -e NUMA_EMU -e MIGRATION \
		-e MEMCG -e SHMEM -e TMPFS -e DEVTMPFS -e BLK_DEV_INITRD -e SERIAL_8250_CONSOLE \
		-e VIRTIO_BLK -e EXT4_FS -e DEBUG_FS -e PROC_PAGE_MONITOR -e MEMFD_CREATE \
		-e KASAN -e KASAN_GENERIC -e KASAN_INLINE -e KFENCE \
		-e PROVE_LOCKING -e DEBUG_ATOMIC_SLEEP -e DEBUG_VM -e DEBUG_VM_PGTABLE \
		-e PAGE_TABLE_CHECK -e PAGE_TABLE_CHECK_ENFORCED \
		-e DEBUG_KMEMLEAK -e DEBUG_KMEMLEAK_AUTO_SCAN --set-val DEBUG_KMEMLEAK_MEM_POOL_SIZE 64000 \
		-e UBSAN -e UBSAN_BOUNDS -d UBSAN_ALIGNMENT \
		-e DEBUG_LIST -e SCHED_STACK_END_CHECK \
		-d DEBUG_INFO -d DEBUG_INFO_DWARF5 -d DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT \
		-e DEBUG_INFO_NONE -d DEBUG_INFO_BTF \
		-d DRM -d SOUND -d WLAN -d WIRELESS -d USB_SUPPORT -d INPUT_JOYSTICK \
		-d HID -d AGP -d MACINTOSH_DRIVERS -d ETHERNET -d NFS_FS -d CFG80211 \
		--set-str LOCALVERSION -dtrack-debug -d LOCALVERSION_AUTO
	make -s olddefconfig
fi
log "building (this takes a while; nice 19)"
nice -n 19 make -s -j"$(nproc)" bzImage modules
nice -n 19 make -s modules_prepare
release=$(make -s kernelrelease)
ln -sfn src "$dir/build"
ln -sfn src/arch/x86/boot/bzImage "$dir/vmlinuz"
mkdir -p "$dir/root/lib/modules/$release"
echo "$release" > "$dir/release"
log "debug kernel $release ready"
