/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bench-pager: shared declarations of the pager benchmark (pagerbench.c:
 * driver and report; baseline.c: kernel and minimal-userfaultfd baselines;
 * pager.c: everything that talks to pagerd, kept in one file because
 * libpager's API may still move; zipf.c: trace and offline LRU/Belady).
 */
#ifndef BENCH_PBENCH_H
#define BENCH_PBENCH_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* One figure of the report; lives in shared memory, filled by a child. */
struct res {
	int ok;			/* 1 measured, 0 n/a, -1 failed or hung */
	char note[200];		/* reason when not ok, remark otherwise */
	double p50_ns, p99_ns;
	double pages_per_s, mb_per_s;
	double value;		/* test-specific: misses, bytes per page */
	uint64_t pages;
	char cpus[160];		/* CPU placement */
};

struct env {
	const char *dir;	/* file system under test */
	const char *fs;		/* its label: tmpfs, ext4, ... */
	const char *outdir;	/* CDF files */
	const char *pagerd;	/* pagerd binary */
	size_t len;		/* region size for first-touch tests */
	size_t budget;		/* pagerd budget for the eviction tests */
	uint32_t *seq, *rnd;	/* page orders over len */
	size_t npages;
	int tmpfs;
};

/* Touch pages of base in order[0..n) with T threads; fills r and a CDF. */
int touch_pages(char *base, const uint32_t *order, size_t n, int threads,
		int write, struct res *r, const char *cdf_path);
/* create path holding len bytes of pattern data (page i starts with i) */
int make_file(const char *path, size_t len);
void cdf_name(char *buf, size_t len, const struct env *e, const char *test);

/* baselines (baseline.c) */
int bl_anon(struct env *e, struct res *r, int random, int threads);
int bl_mmap(struct env *e, struct res *r, int shared, int cold, int random);
int bl_uffd(struct env *e, struct res *r, int random, int threads, int null,
	    int proc);
int bl_uring_write(struct env *e, struct res *r);

/* pagerd (pager.c or pager_none.c) */
enum pg_test {
	PG_FILL_SEQ, PG_FILL_RND, PG_ZERO_SEQ, PG_ZERO_RND,
	PG_READ_IN_SEQ, PG_READ_IN_RND, PG_READ_OUT_SEQ, PG_READ_OUT_RND,
	PG_WRITEBACK, PG_SYNC, PG_ZIPF, PG_MEMORY,
};
int pg_run(struct env *e, struct res *r, enum pg_test t, int threads);

/* Zipf trace and offline replacement (zipf.c) */
uint32_t *zipf_trace(size_t npages, size_t len, double s, uint64_t seed);
uint64_t lru_misses(const uint32_t *trace, size_t len, size_t npages, size_t cache);
uint64_t belady_misses(const uint32_t *trace, size_t len, size_t npages, size_t cache);

#endif
