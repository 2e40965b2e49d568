// SPDX-License-Identifier: GPL-2.0
/*
 * Ground truth: a target process writes a known random set of pages in each
 * epoch; every method must report a superset of it (no false negative,
 * ever), exactly that set for 4 KiB private anonymous pages, nothing outside
 * the tracked range, consecutive epoch numbers, and consistent stats.
 * softdirty is cross-checked with /proc/PID/pagemap bit 55.
 * Variants: every backing (anon, shmem, file shared/private, THP) x every
 * method; a method the module does not offer is skipped with the reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "dt_util.h"

#define REGION		(4UL << 20)	/* 1024 pages, two huge pages */
#define EPOCHS		6

FIXTURE(truth)
{
	struct dt_nl nl;
	struct dt_version v;
	struct dt_target t;
	uint8_t *want, *got, *sd, *present, *acc;
	bool ready;
};

FIXTURE_VARIANT(truth)
{
	enum dt_backing backing;
	uint32_t method;
};

#define TRUTH(b, B, m, M)						\
	FIXTURE_VARIANT_ADD(truth, b##_##m) {				\
		.backing = DT_##B,					\
		.method = DTRACK_METHOD_##M,				\
	}
#define TRUTH_ALL_METHODS(b, B)						\
	TRUTH(b, B, softdirty, SOFTDIRTY);				\
	TRUTH(b, B, wpfault, WPFAULT);					\
	TRUTH(b, B, hwdirty, HWDIRTY);					\
	TRUTH(b, B, accessed, ACCESSED)

TRUTH_ALL_METHODS(anon, ANON);
TRUTH_ALL_METHODS(shmem, SHMEM);
TRUTH_ALL_METHODS(file_shared, FILE_SHARED);
TRUTH_ALL_METHODS(file_private, FILE_PRIVATE);
TRUTH_ALL_METHODS(thp, THP);

FIXTURE_SETUP(truth)
{
	char reason[256];
	uint8_t *prefault;
	uint64_t rng = 42;
	int err;

	self->ready = false;
	ASSERT_EQ(0, dt_open(&self->nl, &self->v)) {
		TH_LOG("module not answering: %s", self->nl.extack);
	}
	err = dt_method_check(&self->nl, &self->v, variant->method, reason,
			      sizeof(reason));
	if (err == -EOPNOTSUPP)
		SKIP(return, "%s", reason);
	ASSERT_EQ(0, err) {
		TH_LOG("probe of %s: %s: %s", dt_method_name(variant->method),
		       self->nl.extack, strerror(-err));
	}
	if (variant->backing == DT_THP && !dt_thp_available())
		SKIP(return, "transparent huge pages disabled in this kernel");

	/* half the pages are faulted in before tracking, half are not */
	prefault = malloc(REGION / PAGE_SZ);
	ASSERT_NE(NULL, prefault);
	dt_pick(&rng, prefault, REGION / PAGE_SZ, REGION / PAGE_SZ / 2);
	err = dt_target_start(&self->t, variant->backing, REGION,
			      variant->backing == DT_THP ? NULL : prefault);
	free(prefault);
	ASSERT_EQ(0, err) {
		TH_LOG("target with %s region: %s",
		       dt_backing_name(variant->backing), strerror(-err));
	}
	if (variant->backing == DT_THP && self->t.huge_bytes <= 0)
		SKIP(return, "no huge page could be allocated for the region");

	self->want = calloc(self->t.npages, 1);
	self->got = calloc(self->t.npages, 1);
	self->sd = calloc(self->t.npages, 1);
	self->present = calloc(self->t.npages, 1);
	self->acc = calloc(self->t.npages, 1);
	ASSERT_TRUE(self->want && self->got && self->sd && self->present &&
		    self->acc);
	self->ready = true;
}

FIXTURE_TEARDOWN(truth)
{
	if (self->t.pid > 0)
		dt_target_kill(&self->t);
	free(self->want);
	free(self->got);
	free(self->sd);
	free(self->present);
	free(self->acc);
	if (self->nl.sock)
		dt_nl_close(&self->nl);
}

/*
 * Reported pages not written, and not in a huge page (THP variant) that
 * had a write: those must be counted as false positives by the module.
 */
static size_t extra_unexplained(const FIXTURE_VARIANT(truth) *variant,
				const uint8_t *want, const uint8_t *got,
				size_t n)
{
	const size_t per_huge = HPAGE_SZ / PAGE_SZ;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		size_t b = i / per_huge * per_huge, j;
		bool written = false;

		if (want[i] || !got[i])
			continue;
		if (variant->backing == DT_THP)
			for (j = b; j < b + per_huge && j < n && !written; j++)
				written = want[j];
		k += !written;
	}
	return k;
}

static bool exact_expected(const FIXTURE_VARIANT(truth) *variant)
{
	return variant->backing == DT_ANON;
}

TEST_F_TIMEOUT(truth, epochs, 120)
{
	const size_t n = self->t.npages;
	static const size_t sizes[EPOCHS] = { 1, 17, 0, 64, 200, 511 };
	uint64_t outside, rng = 0x5eed + variant->method * 7 + variant->backing;
	uint64_t collects = 0, resets = 0, fp = 0;
	struct dt_collect c;
	struct dt_tracker tr;
	size_t first = 0, e, k;
	uint32_t id;
	int err;

	if (!self->ready)
		return;
	err = dt_create(&self->nl, self->t.pid, self->t.addr, self->t.len,
			variant->method, 0, &id);
	ASSERT_EQ(0, err) {
		TH_LOG("create: %s: %s", self->nl.extack, strerror(-err));
	}

	/* epoch 1 ran from creation to now: only its form is checked */
	ASSERT_EQ(0, dt_collect_map(&self->nl, id, DTRACK_COLLECT_RESET,
				    self->t.addr, n, self->got, &outside, &c));
	ASSERT_EQ(0, dt_get_tracker(&self->nl, id, &tr));
	fp = tr.stats.false_positives;
	collects++;
	resets++;
	EXPECT_EQ(1, c.epoch);
	EXPECT_EQ(id, c.id);
	EXPECT_EQ(0, outside);

	for (e = 0; e < EPOCHS; e++) {
		uint64_t epoch = e + 2;

		dt_pick(&rng, self->want, n, sizes[e]);
		ASSERT_EQ(0, dt_target_write(&self->t, self->want));

		/* a collect without reset keeps the epoch going */
		if (e == 3) {
			ASSERT_EQ(0, dt_collect_map(&self->nl, id, 0,
						    self->t.addr, n, self->got,
						    &outside, &c));
			collects++;
			EXPECT_EQ(epoch, c.epoch);
			EXPECT_EQ(0, dt_missing(self->want, self->got, n,
						&first)) {
				TH_LOG("epoch %zu (no reset): page %zu written, not reported",
				       (size_t)epoch, first);
			}
			/* more writes in the same epoch */
			memcpy(self->acc, self->want, n);
			dt_pick(&rng, self->want, n, 33);
			ASSERT_EQ(0, dt_target_write(&self->t, self->want));
			for (k = 0; k < n; k++)
				self->want[k] |= self->acc[k];
		}

		if (variant->method == DTRACK_METHOD_SOFTDIRTY)
			ASSERT_EQ(0, dt_pagemap(self->t.pid, self->t.addr, n,
						self->sd, self->present));

		/* odd epochs: the compact answer (DTRACK_COLLECT_BITMAP) */
		ASSERT_EQ(0, dt_collect_map(&self->nl, id,
					    DTRACK_COLLECT_RESET |
					    (e % 2 ? DTRACK_COLLECT_BITMAP : 0),
					    self->t.addr, n, self->got,
					    &outside, &c));
		collects++;
		resets++;
		EXPECT_EQ(epoch, c.epoch);
		EXPECT_EQ(0, outside) {
			TH_LOG("epoch %zu: %zu pages reported outside the range",
			       (size_t)epoch, (size_t)outside);
		}
		EXPECT_FALSE(c.unordered);
		if (c.has & DT_HAS(DTRACK_A_NR_DIRTY))
			EXPECT_EQ(c.pages, c.nr_dirty);
		EXPECT_EQ(0, dt_missing(self->want, self->got, n, &first)) {
			TH_LOG("%s/%s epoch %zu: %zu of %zu written pages not reported (first: page %zu)",
			       dt_backing_name(variant->backing),
			       dt_method_name(variant->method), (size_t)epoch,
			       dt_missing(self->want, self->got, n, NULL),
			       dt_count(self->want, n), first);
		}
		if (exact_expected(variant)) {
			EXPECT_EQ(0, dt_extra(self->want, self->got, n)) {
				TH_LOG("%s epoch %zu: %zu pages reported but not written (%s)",
				       dt_method_name(variant->method),
				       (size_t)epoch,
				       dt_extra(self->want, self->got, n),
				       (c.result_flags & DTRACK_RESULT_CONSERVATIVE) ?
				       "conservative" : "exact");
			}
		} else {
			/*
			 * Beyond the written pages, only documented false
			 * positives: the other pages of a written huge page,
			 * and the conservative marks counted in stats.
			 */
			size_t unexplained = extra_unexplained(variant,
							       self->want,
							       self->got, n);

			ASSERT_EQ(0, dt_get_tracker(&self->nl, id, &tr));
			EXPECT_GE(tr.stats.false_positives - fp, unexplained) {
				TH_LOG("%s/%s epoch %zu: %zu written, %zu reported, %zu not explained by huge pages nor by %llu counted false positives",
				       dt_backing_name(variant->backing),
				       dt_method_name(variant->method),
				       (size_t)epoch, dt_count(self->want, n),
				       dt_count(self->got, n), unexplained,
				       (unsigned long long)(tr.stats.false_positives - fp));
			}
			fp = tr.stats.false_positives;
		}

		if (variant->method != DTRACK_METHOD_SOFTDIRTY)
			continue;
		/*
		 * pagemap sees the same soft-dirty bits: every page written
		 * since the reset is soft-dirty there, and (4 KiB anon: one
		 * PTE per page) nothing else is: dtrack's reset cleared the
		 * bits (and VM_SOFTDIRTY) of the range like clear_refs would.
		 */
		EXPECT_EQ(0, dt_missing(self->want, self->sd, n, &first)) {
			TH_LOG("epoch %zu: page %zu written but not soft-dirty in pagemap",
			       (size_t)epoch, first);
		}
		EXPECT_EQ(0, dt_missing(self->sd, self->got, n, &first)) {
			TH_LOG("epoch %zu: page %zu soft-dirty in pagemap, not reported",
			       (size_t)epoch, first);
		}
		if (exact_expected(variant))
			EXPECT_EQ(0, dt_extra(self->want, self->sd, n)) {
				TH_LOG("epoch %zu: %zu unwritten pages soft-dirty in pagemap after the reset",
				       (size_t)epoch,
				       dt_extra(self->want, self->sd, n));
			}
	}

	/* the tracker's own account of what happened */
	ASSERT_EQ(0, dt_get_tracker(&self->nl, id, &tr));
	EXPECT_EQ(id, tr.id);
	if (tr.has & DT_HAS(DTRACK_A_PID))
		EXPECT_EQ(self->t.pid, tr.pid);
	if (tr.has & DT_HAS(DTRACK_A_ADDR))
		EXPECT_EQ(self->t.addr, tr.addr);
	if (tr.has & DT_HAS(DTRACK_A_LEN))
		EXPECT_EQ(self->t.len, tr.len);
	if (tr.has & DT_HAS(DTRACK_A_METHOD))
		EXPECT_EQ(variant->method, tr.method);
	if (tr.stats.has & DT_HAS(DTRACK_STAT_A_STATE))
		EXPECT_EQ(DTRACK_STATE_ACTIVE, tr.stats.state);
	if (tr.stats.has & DT_HAS(DTRACK_STAT_A_EPOCH))
		EXPECT_EQ(EPOCHS + 2, tr.stats.epoch);
	if (tr.stats.has & DT_HAS(DTRACK_STAT_A_COLLECTS))
		EXPECT_EQ(collects, tr.stats.collects);
	if (tr.stats.has & DT_HAS(DTRACK_STAT_A_RESETS))
		EXPECT_EQ(resets, tr.stats.resets);
	if (tr.stats.has & DT_HAS(DTRACK_STAT_A_PAGES))
		EXPECT_EQ(n, tr.stats.pages);
	if (tr.stats.has & DT_HAS(DTRACK_STAT_A_LAST_DIRTY))
		EXPECT_EQ(dt_count(self->got, n), tr.stats.last_dirty);

	ASSERT_EQ(0, dt_destroy(&self->nl, id));
	EXPECT_EQ(-ENOENT, dt_get_tracker(&self->nl, id, &tr));
}

TEST_HARNESS_MAIN
