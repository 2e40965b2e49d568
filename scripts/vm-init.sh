#!/bin/busybox sh
# /init of the test VM's initramfs (see scripts/vm-run.sh).
# Serial ports: ttyS0 = kernel console (host keeps it as the console log),
# ttyS1 = CMD's output (streamed by the host), ttyS2 = status lines for the
# host (module load/unload result and CMD's exit status).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/opt/dtrack/bin:/opt/dtrack/tests/vm:/opt/dtrack/tests/host:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/opt/dtrack/lib
export HOME=/root TMPDIR=/tmp TEST_SCRATCH=/scratch
mkdir -p /proc /sys /dev /tmp /scratch /root /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# vm-run.sh's verdict: kernel reports before this line are the boot's own
echo "vm-init: /init starts" > /dev/kmsg
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
. /vmrun/env
mount -t tmpfs -o size=${VMRUN_SCRATCH_MB}m tmpfs /scratch
hostname dtrack-vm
# raw: no \r added to the output the host streams
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
status() { echo "VMRUN $*" > /dev/ttyS2; }

# Kernel modules from the Debian kernel itself (e.g. virtio_blk + ext4 for
# --disk), in dependency order; a line is a module and its parameters.
if [ -f /vmrun/kmods ]; then
	while read -r m; do
		# shellcheck disable=SC2086 # the parameters are words
		insmod $m || echo "vm-init: insmod $m failed" > /dev/ttyS1
	done < /vmrun/kmods
fi
if [ -n "$VMRUN_DISK" ]; then
	mkdir -p /disk
	mount -t ext4 /dev/vda /disk || echo "vm-init: mounting the scratch disk failed" > /dev/ttyS1
fi
# --swap: a RAM disk (brd: its pages are never reclaimed themselves), else
# a loop device over a file in /run, which is tmpfs: fine for pages paged
# out on purpose (MADV_PAGEOUT), not for real memory pressure, as the
# file's own pages could be swapped to it.
if [ -n "$VMRUN_SWAP_MB" ]; then
	swapdev=/dev/ram0
	if [ ! -b $swapdev ]; then
		swapdev=$(losetup -f 2>/dev/null) &&
			dd if=/dev/zero of=/run/swap.img bs=1M count="$VMRUN_SWAP_MB" 2>/dev/null &&
			losetup "$swapdev" /run/swap.img || swapdev=
	fi
	{ [ -n "$swapdev" ] && mkswap "$swapdev" >/dev/null && swapon "$swapdev"; } ||
		echo "vm-init: setting up ${VMRUN_SWAP_MB} MB of swap failed" > /dev/ttyS1
fi

loaded=0
if [ "$VMRUN_MODULE" = 1 ]; then
	if insmod "$DTRACK_KO" 2>/tmp/insmod.err; then
		loaded=1
		status "MODULE-LOADED"
	else
		status "MODULE-LOAD-FAILED $(cat /tmp/insmod.err)"
	fi
fi

rc=0
if [ "$VMRUN_MODULE" != 1 ] || [ $loaded = 1 ]; then
	cd /root
	sh /vmrun/cmd </dev/null >/dev/ttyS1 2>&1
	rc=$?
fi
status "CMD-EXIT $rc"

if [ $loaded = 1 ] && [ -d /sys/module/dtrack ]; then
	if rmmod dtrack 2>/tmp/rmmod.err; then
		status "MODULE-UNLOADED"
	else
		status "MODULE-UNLOAD-FAILED $(cat /tmp/rmmod.err)"
	fi
fi
# Let the console drain the last kernel messages before power-off.
sleep 0.2
status "DONE"
sync
poweroff -f
