#!/bin/sh
# The live demo, run inside the test VM by 'make run' (scripts/demo.sh):
#  1. the module answers over netlink;
#  2. a workload dirties known pages of a 64 MiB region every 100 ms while
#     softdirty, wpfault and hwdirty trackers watch it side by side: dirty
#     counts and collection costs per epoch;
#  3. pagerd pages a workload's memory under a small budget while dtrack
#     tracks the same region (daemon/pager-demo.sh).
set -e
echo "=== 1. dtrack module in $(uname -r)"
dtrack version

echo
echo "=== 2. three methods side by side on a live workload"
echo "    workload: 64 MiB private anonymous, 2000 random pages written every 100 ms"
dtrack-workload --size 64M --epochs 0 --pages-per-epoch 2000 --interval 100 --quiet \
	> /tmp/wl.out &
wl=$!
i=0
until grep -q '^pid ' /tmp/wl.out 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "workload did not start"; exit 1; }
	sleep 0.1
done
echo "    $(cat /tmp/wl.out)"
echo "    per 1 s interval: pages dirtied and collect+reset cost (us) per method"
dtrack sample "$wl" --addr "$(awk '{print $4}' /tmp/wl.out)" \
	--len "$(awk '{print $6}' /tmp/wl.out)" \
	--method softdirty,wpfault,hwdirty --interval 1000 --count 5
kill $wl; wait $wl 2>/dev/null || true

echo
echo "=== 3. pagerd pages a workload under a budget while dtrack tracks it"
pager-demo --budget 2M --size 16M --method wpfault
echo
echo "=== demo done"
