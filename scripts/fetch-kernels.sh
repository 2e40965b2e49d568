#!/bin/bash
# Fetch Debian's 6.12 and 6.1 kernels (image + headers + kbuild) and the
# kselftest harness headers into the per-user cache, without installing
# anything system-wide.  Idempotent: a kernel already unpacked is reused.
#
# usage: scripts/fetch-kernels.sh [6.12] [6.1] [ksft]   (default: all)
#
# Result, per kernel K:
#   $DTRACK_CACHE/kernels/K/vmlinuz        the bootable kernel
#   $DTRACK_CACHE/kernels/K/build          usable as KDIR for make -C ... M=...
#   $DTRACK_CACHE/kernels/K/release        uname -r of that kernel
#   $DTRACK_CACHE/kernels/K/root/lib/modules/<release>/   its modules
# and $DTRACK_CACHE/ksft/include/kselftest_harness.h (+ kselftest.h).
set -euo pipefail
. "$(dirname "$0")/common.sh"

apt_ready() {
	# apt-cache finds nothing before the first 'apt-get update'.
	if ! apt-cache show busybox-static >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || die "apt lists are empty; run 'apt-get update' as root"
		apt-get update -qq
	fi
}

newest() {	# newest package name matching an extended regex
	apt-cache search --names-only "$1" | awk '{print $1}' | grep -E "$1" | sort -V | tail -1
}

# The packages a linux-headers-* package needs to be usable (its -common and
# linux-kbuild-* dependencies), recursively but only within linux-*.
header_deps() {
	apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-/{print $2}' | sort -u
}

download() {	# download + unpack packages into $1/root
	local dir=$1; shift
	local dl="$dir/debs"
	mkdir -p "$dl" "$dir/root"
	(cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null) || die "apt-get download $* failed"
	local deb
	for deb in "$dl"/*.deb; do
		dpkg -x "$deb" "$dir/root"
	done
	rm -rf "$dl"
}

fetch_kernel() {
	local series=$1 image release dir
	case $series in
	6.12)	image=$(newest '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$')
		release=${image#linux-image-}; release=${release%-unsigned} ;;
	6.1)	image=$(newest '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$')
		[ -n "$image" ] || image=$(newest '^linux-image-6\.1\.0-[0-9]+-amd64$')
		release=${image#linux-image-}; release=${release%-unsigned} ;;
	*)	die "unknown kernel series '$series' (6.12 or 6.1)" ;;
	esac
	[ -n "$image" ] || die "no linux-image for $series in the apt repositories"
	dir=$(kernel_dir "$series")
	if [ -f "$dir/release" ] && [ "$(cat "$dir/release")" = "$release" ] &&
	   [ -f "$dir/vmlinuz" ] && [ -e "$dir/build/Makefile" ]; then
		return 0
	fi
	log "fetching $series: $release"
	rm -rf "$dir.tmp"
	local pkgs="$image linux-headers-$release" d
	for d in $(header_deps "linux-headers-$release"); do
		pkgs="$pkgs $d"
		# -common may in turn depend on the kbuild package
		pkgs="$pkgs $(header_deps "$d")"
	done
	# shellcheck disable=SC2086
	download "$dir.tmp" $(echo $pkgs | tr ' ' '\n' | sort -u)
	local root="$dir.tmp/root"
	# Debian's header tree links to its -common twin and to linux-kbuild with
	# absolute or ../ paths that assume /usr/src; make them point inside root.
	local build="$root/usr/src/linux-headers-$release"
	[ -d "$build" ] || die "headers for $release missing after unpack"
	find "$root/usr/src" -maxdepth 3 -type l | while read -r l; do
		t=$(readlink "$l")
		case $t in /*) ln -sfn "$root$t" "$l" ;; esac
	done
	grep -rl --include=Makefile '/usr/src/' "$build" 2>/dev/null | while read -r f; do
		sed -i "s|/usr/src/|$root/usr/src/|g" "$f"
	done
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
	# the links above were made under $dir.tmp: redo them for the final path
	find "$dir/root/usr/src" -maxdepth 3 -type l | while read -r l; do
		t=$(readlink "$l")
		case $t in "$dir.tmp"/*) ln -sfn "$dir${t#"$dir.tmp"}" "$l" ;; esac
	done
	grep -rl --include=Makefile "$dir.tmp/" "$dir/root/usr/src" 2>/dev/null | while read -r f; do
		sed -i "s|$dir.tmp/|$dir/|g" "$f"
	done
	ln -sfn "root/boot/vmlinuz-$release" "$dir/vmlinuz"
	ln -sfn "root/usr/src/linux-headers-$release" "$dir/build"
	echo "$release" > "$dir/release"
}

fetch_ksft() {
	local dir="$DTRACK_CACHE/ksft"
	[ -f "$dir/include/kselftest_harness.h" ] && return 0
	log "fetching kselftest harness from linux-source-6.12"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/include"
	(cd "$dir.tmp" && apt-get download -q -o APT::Sandbox::User=root linux-source-6.12 >/dev/null) ||
		die "apt-get download linux-source-6.12 failed"
	dpkg -x "$dir.tmp"/linux-source-6.12_*.deb "$dir.tmp/root"
	local tarball
	tarball=$(ls "$dir.tmp"/root/usr/src/linux-source-6.12.tar.* | head -1)
	# Keep the source tarball: checkpatch.pl and the debug kernel use it too.
	mv "$tarball" "$dir/../linux-source-6.12.tar.${tarball##*.tar.}" 2>/dev/null ||
		{ mkdir -p "$DTRACK_CACHE"; mv "$tarball" "$DTRACK_CACHE/"; }
	tarball=$(ls "$DTRACK_CACHE"/linux-source-6.12.tar.* | head -1)
	tar -xf "$tarball" -C "$dir.tmp" --wildcards --strip-components=4 \
		'*/tools/testing/selftests/kselftest_harness.h' \
		'*/tools/testing/selftests/kselftest.h'
	mv "$dir.tmp"/kselftest*.h "$dir.tmp/include/"
	"$DTRACK_ROOT/scripts/patch-ksft.sh" "$dir.tmp/include/kselftest_harness.h"
	rm -rf "$dir.tmp/root" "$dir.tmp"/*.deb "$dir"
	mv "$dir.tmp" "$dir"
}

main() {
	local what=("$@")
	[ ${#what[@]} -gt 0 ] || what=(6.12 6.1 ksft)
	apt_ready
	mkdir -p "$DTRACK_CACHE/kernels"
	local w
	for w in "${what[@]}"; do
		case $w in
		ksft) fetch_ksft ;;
		*) fetch_kernel "$w" ;;
		esac
	done
}
main "$@"
