/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the benchmark programs: clocks, sample statistics,
 * CPU placement and result output (Markdown on stdout, CSV lines that the
 * driver script greps out of the VM console with the "@csv " prefix).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define PAGE_SZ		4096UL
#define HPAGE_SZ	(2UL << 20)
#define GIB		(1UL << 30)
#define MIB		(1UL << 20)

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* A growable set of samples (nanoseconds). */
struct samples {
	uint64_t *v;
	size_t n, cap;
};

void samples_add(struct samples *s, uint64_t v);
void samples_free(struct samples *s);
/* q in [0,1]; sorts in place; 0 when empty */
uint64_t samples_pct(struct samples *s, double q);
uint64_t samples_median(struct samples *s);
/* write the CDF (value_us fraction) with at most 'points' rows */
int samples_write_cdf(struct samples *s, const char *path, int points);

/* Fast deterministic PRNG (xorshift64*), so every run writes the same pages. */
static inline uint64_t rnd_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void shuffle_u32(uint32_t *v, size_t n, uint64_t seed);

/* Bitmaps of pages. */
static inline void bm_set(uint64_t *bm, size_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static inline int bm_test(const uint64_t *bm, size_t i)
{
	return !!(bm[i / 64] & (1ULL << (i % 64)));
}

/* "CPUs: cpu_a->cpu_b" style placement strings */
int cpu_now(void);
/* CPU field (39) of /proc/PID/task/TID/stat for every thread; -errno */
int task_cpus(int pid, char *buf, size_t len);
/* kB value of a field ("VmRSS:", "RssAnon:") of /proc/PID/status; -errno */
long proc_status_kb(int pid, const char *field);

/*
 * Allocate, touch and free this much anonymous memory (at most half of
 * MemAvailable), right before a timed phase that allocates memory.  Where
 * the hypervisor takes back free guest memory (virtio-balloon free page
 * reporting: pages free for ~2 s are reported and discarded), the first
 * touch of such a page costs a host fault, ~3x a normal first touch; freed
 * pages go to the head of the free lists and are not reported for ~2 s, so
 * the phase that follows allocates memory the host still backs, whichever
 * job ran before.  BENCH_PREHEAT=0 turns it off.
 */
void mem_preheat(size_t bytes);

/* Emit a CSV result line "@csv <fields>" to stdout (flushed). */
void csv(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Environment knob with default */
long env_long(const char *name, long def);

/* Human-friendly number formatting into a static-ish buffer pool. */
const char *fmt_ns(double ns);
const char *fmt_ratio(double r);

#endif
