#!/bin/sh
# Guest side of scripts/fuzz-pager-eio.sh (busybox sh, in the test VM):
# backing files on an ext2 file system over a device-mapper device whose
# table is switched to the 'error' target while pager-stress clients run
# (every write-back and fsync fails with EIO), then back to 'linear'.  The
# clients' final sync must succeed and their files must be byte-exact,
# also after their page cache is dropped.  Every third round also drops
# the client file's page cache while the device fails (pager-stress
# --drop-file), so that fills of evicted pages read EIO too: their threads
# wait, retried by pagerd, and go on once the device is repaired (before
# pagerd's fill retry they waited for ever).  Not drop_caches: it drops
# ext4's metadata too, and its failed re-read makes 6.1's ext4 WARN.
# usage: guest-eio.sh IMAGE KMODDIR ROUNDS
img=$1 kmods=$2 rounds=${3:-3}
say() { echo "# guest-eio: $*"; }
while read -r m; do insmod "$kmods/$m" 2>/dev/null; done < "$kmods/order"
[ -d /sys/module/dm_mod ] || { say "SKIP: cannot load dm-mod"; exit 4; }
loop=$(losetup -f)
losetup "$loop" "$img" || { say "SKIP: losetup failed"; exit 4; }
sectors=$(($(stat -c %s "$img") / 512))
dm() { dmsetup --noudevsync --noudevrules "$@"; }
dm create eio --table "0 $sectors linear $loop 0" || { say "SKIP: dmsetup create failed"; exit 4; }
# no fs freeze or flush: both would fail on the error table
swap_table() {
	dm suspend --nolockfs --noflush eio &&
	dm load eio --table "0 $sectors $1" &&
	dm resume eio
}
dev=/dev/mapper/eio
[ -b "$dev" ] || dev=/dev/$(basename "$(readlink -f /sys/block/dm-0)")
mkdir -p /mnt/eio
mount -t ext2 "$dev" /mnt/eio 2>/dev/null || mount -t ext4 "$dev" /mnt/eio || { dmesg | tail -5; say "SKIP: cannot mount ext2 on $dev"; exit 4; }
export PAGER_SOCKET=/tmp/eio.sock
pagerd --socket "$PAGER_SOCKET" --budget 2M > /tmp/eio-pagerd.log 2>&1 &
pd=$!
sleep 0.5
errors=0 verified=0 failures=0 read_errors=0
# pagerd logs a failed fill at most once a second, with the count since
fills_failed() {
	sed -n 's/.*fill of region .* failed: .* (\([0-9]*\) more since.*/\1/p' /tmp/eio-pagerd.log |
		awk '{ s += $1 + 1 } END { print s + 0 }'
}
r=1
while [ "$r" -le "$rounds" ]; do
	extra=""
	[ $((r % 2)) = 0 ] && extra="--evict"
	pager-stress --file /mnt/eio/f$r --size 4 --time 5 --threads 2 $extra \
		--allow-errors --wait-file /tmp/go$r --drop-file /tmp/drop$r \
		> /tmp/eio-c$r.log 2>&1 &
	c=$!
	i=0
	while ! grep -q 'mapped' /tmp/eio-c$r.log && kill -0 $c 2>/dev/null &&
	      [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.5
	# the disk fails: every I/O of the device returns EIO
	swap_table error
	reads=$((r % 3 == 0))
	f0=$(fills_failed)
	# and reads of what is not cached: fills of evicted pages fail
	[ $reads = 1 ] && touch /tmp/drop$r
	i=0
	# a read round's threads wait in their faults: 3 s of failing fills
	while ! grep -q 'waiting for' /tmp/eio-c$r.log && kill -0 $c 2>/dev/null &&
	      [ $i -lt $((reads ? 30 : 600)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	# repaired
	swap_table "linear $loop 0" || { say "cannot repair the device"; failures=$((failures + 1)); }
	touch /tmp/go$r
	wait $c
	rc=$?
	line=$(grep '^# STRESS' /tmp/eio-c$r.log)
	se=$(echo "$line" | sed -n 's/.* sync_errors=\([0-9]*\).*/\1/p')
	ee=$(echo "$line" | sed -n 's/.* evict_errors=\([0-9]*\).*/\1/p')
	n=$(echo "$line" | sed -n 's/.*bytes_verified=\([0-9]*\).*/\1/p')
	errors=$((errors + ${se:-0} + ${ee:-0}))
	verified=$((verified + ${n:-0}))
	rf=$(($(fills_failed) - f0))
	read_errors=$((read_errors + rf))
	say "round $r: exit $rc, ${se:-0} sync errors, ${ee:-0} evict errors, $rf failed fills"
	if [ $rc != 0 ]; then
		dmesg | grep -v "I/O error\|lost async" | tail -4 | sed "s/^/#   dmesg: /"
		failures=$((failures + 1))
		sed 's/^/#   /' /tmp/eio-c$r.log | tail -12
	fi
	if [ "${se:-0}" = 0 ]; then
		failures=$((failures + 1))
		say "round $r: no sync failed: EIO was not injected"
	fi
	r=$((r + 1))
done
# the files once more, from the disk itself
sync
echo 3 > /proc/sys/vm/drop_caches
kill -0 $pd 2>/dev/null || { failures=$((failures + 1)); say "pagerd died"; }
kill $pd
wait $pd
umount /mnt/eio
dm remove eio
losetup -d "$loop"
echo "# EIO rounds=$rounds injected_errors=$errors read_errors=$read_errors bytes_verified=$verified failures=$failures"
[ $failures = 0 ]
