// SPDX-License-Identifier: GPL-2.0
/*
 * bench-lru: offline misses of exact LRU and Belady's MIN on a Zipf trace,
 * the same trace bench-pager replays through pagerd.
 * usage: bench-lru PAGES CACHE_PAGES TRACE_LEN [S]
 */
#include <stdlib.h>

#include "pbench.h"

int main(int argc, char **argv)
{
	size_t npages, cache, len;
	double s = 0.99;
	uint32_t *t;

	if (argc < 4) {
		fprintf(stderr, "usage: bench-lru PAGES CACHE_PAGES TRACE_LEN [S]\n");
		return 2;
	}
	npages = strtoul(argv[1], NULL, 0);
	cache = strtoul(argv[2], NULL, 0);
	len = strtoul(argv[3], NULL, 0);
	if (argc > 4)
		s = atof(argv[4]);
	t = zipf_trace(npages, len, s, 7);
	if (!t || !npages || !cache)
		return 1;
	printf("lru %llu\nbelady %llu\n", (unsigned long long)lru_misses(t, len, npages, cache),
	       (unsigned long long)belady_misses(t, len, npages, cache));
	free(t);
	return 0;
}
