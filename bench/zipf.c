// SPDX-License-Identifier: GPL-2.0
/*
 * Zipf-distributed page trace and the offline misses of exact LRU and of
 * Belady's optimum (MIN) for the same trace and cache size.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pbench.h"

/*
 * Inverse-CDF sampling over a table; the ranks are scattered over the
 * region with a fixed permutation so hot pages are not all adjacent (which
 * would let readahead hide misses).
 */
uint32_t *zipf_trace(size_t npages, size_t len, double s, uint64_t seed)
{
	double *cdf = malloc(npages * sizeof(*cdf)), sum = 0;
	uint32_t *perm = malloc(npages * sizeof(*perm));
	uint32_t *t = malloc(len * sizeof(*t));
	uint64_t st = seed | 1;
	size_t i;

	if (!cdf || !perm || !t)
		goto fail;
	for (i = 0; i < npages; i++) {
		sum += 1.0 / pow((double)(i + 1), s);
		cdf[i] = sum;
		perm[i] = i;
	}
	shuffle_u32(perm, npages, seed ^ 0x9e3779b97f4a7c15ULL);
	for (i = 0; i < len; i++) {
		double u = (double)(rnd_next(&st) >> 11) / (double)(1ULL << 53) * sum;
		size_t lo = 0, hi = npages - 1;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		t[i] = perm[lo];
	}
	free(cdf);
	free(perm);
	return t;
fail:
	free(cdf);
	free(perm);
	free(t);
	return NULL;
}

/* Exact LRU with a doubly linked list indexed by page. */
uint64_t lru_misses(const uint32_t *trace, size_t len, size_t npages, size_t cache)
{
	uint32_t *prev = malloc(npages * 4), *next = malloc(npages * 4);
	uint8_t *in = calloc(npages, 1);
	uint32_t head = UINT32_MAX, tail = UINT32_MAX;
	uint64_t misses = 0;
	size_t used = 0, i;

	if (!prev || !next || !in)
		return 0;
	for (i = 0; i < len; i++) {
		uint32_t p = trace[i];

		if (in[p]) {
			if (head == p)
				continue;
			/* unlink */
			next[prev[p]] = next[p];
			if (next[p] != UINT32_MAX)
				prev[next[p]] = prev[p];
			else
				tail = prev[p];
		} else {
			misses++;
			if (used == cache) {
				uint32_t v = tail;

				in[v] = 0;
				tail = prev[v];
				if (tail != UINT32_MAX)
					next[tail] = UINT32_MAX;
				else
					head = UINT32_MAX;
			} else {
				used++;
			}
			in[p] = 1;
		}
		prev[p] = UINT32_MAX;
		next[p] = head;
		if (head != UINT32_MAX)
			prev[head] = p;
		head = p;
		if (tail == UINT32_MAX)
			tail = p;
	}
	free(prev);
	free(next);
	free(in);
	return misses;
}

/* Max-heap of (next use, page) with lazy deletion of stale entries. */
struct hent {
	uint64_t next;
	uint32_t page;
};

static void heap_push(struct hent *h, size_t *n, struct hent e)
{
	size_t i = (*n)++;

	while (i && h[(i - 1) / 2].next < e.next) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = e;
}

static struct hent heap_pop(struct hent *h, size_t *n)
{
	struct hent top = h[0], last = h[--(*n)];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1].next > h[c].next)
			c++;
		if (h[c].next <= last.next)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = last;
	return top;
}

uint64_t belady_misses(const uint32_t *trace, size_t len, size_t npages, size_t cache)
{
	uint64_t *nextuse = malloc(len * 8), *last = malloc(npages * 8);
	uint64_t *cur = malloc(npages * 8);	/* next use of a resident page */
	struct hent *h = malloc((len + 1) * sizeof(*h));
	uint8_t *in = calloc(npages, 1);
	uint64_t misses = 0;
	size_t used = 0, hn = 0, i;

	if (!nextuse || !last || !cur || !h || !in)
		return 0;
	for (i = 0; i < npages; i++)
		last[i] = UINT64_MAX;
	for (i = len; i-- > 0;) {
		nextuse[i] = last[trace[i]];
		last[trace[i]] = i;
	}
	for (i = 0; i < len; i++) {
		uint32_t p = trace[i];

		if (!in[p]) {
			misses++;
			if (used == cache) {
				/* evict the resident page used furthest in the future */
				for (;;) {
					struct hent e = heap_pop(h, &hn);

					if (in[e.page] && cur[e.page] == e.next) {
						in[e.page] = 0;
						break;
					}
				}
			} else {
				used++;
			}
			in[p] = 1;
		}
		cur[p] = nextuse[i];
		heap_push(h, &hn, (struct hent){ nextuse[i], p });
	}
	free(nextuse);
	free(last);
	free(cur);
	free(h);
	free(in);
	return misses;
}
