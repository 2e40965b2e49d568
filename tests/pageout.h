/* SPDX-License-Identifier: GPL-2.0 */
/*
 * MADV_PAGEOUT that reaches every page: a page just faulted in may still
 * sit in the per-CPU LRU batch of the CPU that faulted it (for a pagerd
 * region, pagerd's), where reclaim cannot isolate it, and the madvise
 * drains only its own CPU's batch.  So it is called once on each CPU.
 */
#ifndef _DTRACK_TESTS_PAGEOUT_H
#define _DTRACK_TESTS_PAGEOUT_H

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* 0 or -errno; the calling thread's CPU affinity is restored. */
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

#endif /* _DTRACK_TESTS_PAGEOUT_H */
