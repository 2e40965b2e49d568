#!/bin/sh
# Guest side of the memory-pressure run (scripts/reliability.sh boots the
# VM with little RAM): pagerd with pager-stress clients whose regions are
# larger than the memory left after a filler (unreclaimable tmpfs data, no
# swap), backed by files on the scratch disk (/disk), while dtrack samples both paged clients with all
# three methods.  Every client must end byte-exact, dtrack must keep
# answering, nobody may be OOM-killed.  (dtrack-nlfuzz is not run here: it
# destroys trackers by id, also those of 'dtrack sample'; scripts/
# reliability.sh runs it in a small VM of its own.)
# usage: guest-mempressure.sh SECONDS [LEAVE_MB]
secs=${1:-20} leave=${2:-60}
say() { echo "# guest-mempressure: $*"; }
mem() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
say "MemTotal $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) kB, available $(mem) kB"
# leave LEAVE MB for pagerd's budget, the clients' page tables, the disk's
# page cache and the rest.  The files go to the disk: on tmpfs their 104 MB
# would stay in RAM whatever pagerd evicts (it once OOM-killed the clients)
dir=/disk
grep -q ' /disk ' /proc/mounts || { say "no /disk: files on tmpfs"; dir=/scratch; }
fill=$(( $(mem) / 1024 - leave ))
[ $fill -gt 0 ] && dd if=/dev/zero of=/dev/shm/filler bs=1M count=$fill 2>/dev/null
say "filler $fill MB, available now $(mem) kB"
export PAGER_SOCKET=/tmp/mp.sock
pagerd --socket "$PAGER_SOCKET" --budget 8M > /tmp/mp-pagerd.log 2>&1 &
pd=$!
sleep 0.5
pager-stress --file $dir/m1 --size 64 --time "$secs" --threads 3 --evict > /tmp/mp-c1.log 2>&1 &
c1=$!
pager-stress --file $dir/m2 --size 40 --time "$secs" --threads 2 --shared > /tmp/mp-c2.log 2>&1 &
c2=$!
sleep 1
n=$((secs * 2))
dtrack sample $c1 --method softdirty,wpfault,hwdirty --interval 500 --count $n > /tmp/mp-sample1.log 2>&1 &
s1=$!
dtrack sample $c2 --method softdirty,wpfault,hwdirty --interval 700 --count $n > /tmp/mp-sample2.log 2>&1 &
s2=$!
low=$(mem)
while kill -0 $c1 2>/dev/null || kill -0 $c2 2>/dev/null; do
	# with pagerd OOM-killed the clients would wait for it forever
	if dmesg | grep -q 'Out of memory: Killed process'; then
		kill -9 $c1 $c2 2>/dev/null
		break
	fi
	a=$(mem)
	if [ "$a" -lt "$low" ]; then
		low=$a
		# where the memory is at the low point (6.1 needs more than 6.12)
		lowinfo="$(grep -E '^(Shmem|AnonPages|PageTables|Slab|SUnreclaim|KernelStack):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
		lowpd="$(grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):' /proc/$pd/status 2>/dev/null | tr -s ' \t' ' ' | tr '\n' ' ')"
	fi
	sleep 1
done
failures=0 verified=0
for c in 1 2; do
	eval "wait \$c$c"
	rc=$?
	n=$(sed -n 's/.*bytes_verified=\([0-9]*\).*/\1/p' /tmp/mp-c$c.log)
	verified=$((verified + ${n:-0}))
	if [ $rc != 0 ]; then
		failures=$((failures + 1))
		say "client $c failed (exit $rc)"
		tail -8 /tmp/mp-c$c.log | sed 's/^/#   /'
	fi
done
for c in 1 2; do
	eval "kill \$s$c 2>/dev/null; wait \$s$c"
	n=$(grep -c -E '^ *[0-9]' /tmp/mp-sample$c.log)
	say "dtrack sample of client $c: $n intervals"
	if grep 'dtrack:' /tmp/mp-sample$c.log | grep -q -v 'exited$' || [ "$n" -lt 2 ]; then
		failures=$((failures + 1))
		say "dtrack sample of client $c failed:"
		grep 'dtrack:' /tmp/mp-sample$c.log | head -3 | sed 's/^/#   /'
	fi
done
dtrack version > /dev/null || { failures=$((failures + 1)); say "dtrack does not answer"; }
if dmesg | grep -q -E 'Out of memory|oom-kill'; then
	failures=$((failures + 1))
	say "OOM killer ran:"
	dmesg | grep -E 'Killed process' | sed 's/^/#   /'
fi
kill -0 $pd 2>/dev/null || { failures=$((failures + 1)); say "pagerd died"; }
say "pagerd oom_score_adj $(cat /proc/$pd/oom_score_adj 2>/dev/null), files $(du -sk $dir/m1 $dir/m2 2>/dev/null | tr -s '\t\n' '  ')"
kill $pd
wait $pd
rm -f /dev/shm/filler
say "lowest MemAvailable $low kB"
say "at the low point: ${lowinfo:-} pagerd: ${lowpd:-}"
echo "# MEMPRESSURE secs=$secs low_avail_kb=$low bytes_verified=$verified failures=$failures"
[ $failures = 0 ]
