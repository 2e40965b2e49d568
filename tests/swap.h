/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the tests that have the kernel swap memory out (in the test
 * VM, which make test boots with swap space: scripts/vm-run.sh --swap).
 */
#ifndef _DTRACK_TESTS_SWAP_H
#define _DTRACK_TESTS_SWAP_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#define NO_SWAP "no swap space (scripts/vm-run.sh --swap MB gives the VM some)"

static inline bool swap_available(void)
{
	struct sysinfo si;

	return !sysinfo(&si) && si.totalswap;
}

/*
 * Bytes of this process's memory in swap (smaps_rollup's Swap: anonymous
 * pages and the pages of shared memory it maps).
 */
static inline uint64_t swap_bytes_of_self(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Swap: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb << 10;
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/*
 * MADV_PAGEOUT that reaches every page: a page just faulted in may still
 * sit in the per-CPU LRU batch of the CPU that faulted it (for a pagerd
 * region, pagerd's), where reclaim cannot isolate it, and the madvise
 * drains only its own CPU's batch.  So it is called once on each CPU.
 * 0 or -errno; the calling thread's CPU affinity is restored.
 */
static inline int page_out_everywhere(void *addr, size_t len)
{
	cpu_set_t old, one;
	int ret = 0;

	if (sched_getaffinity(0, sizeof(old), &old))
		return -errno;
	for (int cpu = 0; cpu < CPU_SETSIZE && !ret; cpu++) {
		if (!CPU_ISSET(cpu, &old))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;	/* offline meanwhile */
		if (madvise(addr, len, MADV_PAGEOUT))
			ret = -errno;
	}
	sched_setaffinity(0, sizeof(old), &old);
	return ret;
}

/* page_out_everywhere(), then how many bytes of ours it swapped; -errno */
static inline long long page_out_counted(void *addr, size_t len)
{
	uint64_t before = swap_bytes_of_self();
	int err = page_out_everywhere(addr, len);

	return err ? err : (long long)swap_bytes_of_self() - (long long)before;
}

#endif /* _DTRACK_TESTS_SWAP_H */
