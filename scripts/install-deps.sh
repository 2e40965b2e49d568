#!/bin/bash
# Install what a fresh Debian 12 machine lacks to build and test the
# project: non-interactive, idempotent, and quick when nothing is missing.
# Kernels are not installed: scripts/fetch-kernels.sh unpacks them into
# the cache instead.
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkgs=(
	build-essential pkg-config	# compilers for module and user space
	dwarves libelf1 bc		# pahole (module BTF), objtool's libelf
	liburing-dev libmnl-dev		# pagerd / libpager, dtrack CLI
	qemu-system-x86 busybox-static	# the test VM
	cpio xz-utils file e2fsprogs	# initramfs, module unpacking, --disk
	util-linux procps		# unshare, mount, ps in host tests
	gnuplot-nox			# plots of 'make bench'
	flex bison libssl-dev libelf-dev	# the debug kernel (build-debug-kernel.sh)
	clang libclang-rt-dev binutils	# libFuzzer harnesses (make reliability)
	dmsetup				# EIO injection in the VM (fuzz-pager-eio.sh)
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
log "installing: ${missing[*]}"
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
