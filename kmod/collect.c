// SPDX-License-Identifier: GPL-2.0
/*
 * Collect and reset: turning a tracker's epoch into compact runs, and
 * starting the next epoch atomically.
 *
 * A reset first switches epochs (t->cur moves to the spare buffer, the old
 * one becomes t->snap), then harvests the per-PTE bits of the range into
 * the snapshot while clearing them.  A write before the harvest reaches its
 * PTE is seen in the old epoch; one after it sets the bit again (or faults)
 * and belongs to the new one.  mmu notifier marks made while the snapshot
 * is open (the harvest) go to both epochs; then it is closed, and the
 * answer is built from an epoch nothing writes to.  Everything runs under
 * dmm->op_lock.
 */
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/userfaultfd_k.h>
#include <linux/vmalloc.h>
#include "dtrack.h"

static struct dtrack_epoch *dtrack_spare(struct dtrack_tracker *t)
{
	return t->cur == &t->ep[0] ? &t->ep[1] : &t->ep[0];
}

/* Empty @ep in O(its dirty pages) when its log is complete. */
static void dtrack_epoch_clear(struct dtrack_tracker *t,
			       struct dtrack_epoch *ep)
{
	u32 i;

	if (ep->log && !ep->overflow) {
		for (i = 0; i < ep->log_len; i++)
			__clear_bit(ep->log[i].idx, ep->bitmap);
	} else {
		bitmap_zero(ep->bitmap, t->npages);
	}
	ep->log_len = 0;
	ep->overflow = false;
	ep->degraded = false;
}

/* Copy the live epoch into the (empty) spare one. Caller holds t->lock. */
static void dtrack_epoch_copy(struct dtrack_tracker *t,
			      struct dtrack_epoch *to)
{
	struct dtrack_epoch *from = t->cur;
	u32 i;

	if (from->log && !from->overflow) {
		memcpy(to->log, from->log, from->log_len * sizeof(*to->log));
		for (i = 0; i < from->log_len; i++)
			__set_bit(from->log[i].idx, to->bitmap);
		to->log_len = from->log_len;
	} else {
		bitmap_copy(to->bitmap, from->bitmap, t->npages);
		to->overflow = !!from->log;
	}
	to->degraded = from->degraded;
}

/*
 * VMAs dtrack cannot walk (hugetlb, PFN maps) inside the range count as
 * all dirty, always: conservative, never a missed write.
 */
static void dtrack_mark_unwalkable(struct dtrack_tracker *t,
				   struct dtrack_epoch *into)
{
	struct vm_area_struct *vma;
	VMA_ITERATOR(vmi, t->dmm->mm, t->start);

	for_each_vma_range(vmi, vma, t->end) {
		unsigned long s = max(vma->vm_start, t->start);
		unsigned long e = min(vma->vm_end, t->end);

		if (dtrack_vma_walkable(vma))
			continue;
		spin_lock(&t->lock);
		dtrack_mark(t, into, (s - t->start) >> PAGE_SHIFT,
			    (e - s) >> PAGE_SHIFT, true);
		spin_unlock(&t->lock);
	}
}

static struct dtrack_epoch *dtrack_switch_epoch(struct dtrack_tracker *t)
{
	struct dtrack_epoch *snap;

	spin_lock(&t->lock);
	if (t->method == DTRACK_METHOD_WPFAULT)
		dtrack_wpfault_epoch_switch();
	snap = t->cur;
	t->cur = dtrack_spare(t);
	t->snap = snap;
	t->epoch++;
	spin_unlock(&t->lock);
	return snap;
}

static void dtrack_close_snap(struct dtrack_tracker *t)
{
	spin_lock(&t->lock);
	t->snap = NULL;
	spin_unlock(&t->lock);
}

/*
 * The pages of an epoch whose log is complete, as sorted indexes in the
 * range: computed once by a wpfault reset for its walk, and reused for the
 * answer when nothing was added to the epoch since.
 */
struct dtrack_pages {
	u32 *idx;
	u32 nr;
};

static int dtrack_epoch_pages(struct dtrack_tracker *t,
			      struct dtrack_epoch *ep, struct dtrack_pages *pg);

static bool dtrack_range_uffd(struct dtrack_tracker *t)
{
	struct vm_area_struct *vma;
	VMA_ITERATOR(vmi, t->dmm->mm, t->start);

	/* UFFDIO_COPY installs writable PTEs without a fault */
	for_each_vma_range(vmi, vma, t->end)
		if (userfaultfd_armed(vma))
			return true;
	return false;
}

/*
 * wpfault reset: O(dirty) when the ending epoch's log is complete and the
 * invariant of wp_walked holds (see dtrack.h), else a full walk.  The
 * pages visited are left in @pg (sorted), for the answer.
 */
static void dtrack_wp_reset(struct dtrack_tracker *t, struct dtrack_epoch *snap,
			    bool full, struct dtrack_pages *pg)
{
	int seq = atomic_read(&t->dmm->unmap_seq);

	if (!full && t->wp_walked && seq == t->wp_unmap_seq && !snap->overflow &&
	    !dtrack_range_uffd(t) &&
	    !snap->degraded && !dtrack_epoch_pages(t, snap, pg)) {
		dtrack_sd_reset_pages(t, snap, pg->idx, pg->nr);
	} else {
		dtrack_sd_reset(t, snap);
		t->wp_walked = true;
	}
	t->wp_unmap_seq = seq;
}

/*
 * Start a new epoch of @t and return the one that ended (t->snap during
 * the harvest, frozen once this returns).  The caller holds op_lock and a
 * reference on mm_users.  A wpfault reset leaves the pages it walked in @pg.
 */
static struct dtrack_epoch *dtrack_reset_locked(struct dtrack_tracker *t,
						struct dtrack_pages *pg)
{
	struct mm_struct *mm = t->dmm->mm;
	struct dtrack_epoch *snap;
	bool write = false;

	lockdep_assert_held(&t->dmm->op_lock);
	mmap_read_lock(mm);
	if (dtrack_method_class(t->method) == DTRACK_CLASS_SOFTDIRTY &&
	    dtrack_sd_vmas_flagged(t)) {
		/* clearing VM_SOFTDIRTY needs the write lock */
		mmap_read_unlock(mm);
		mmap_write_lock(mm);
		write = true;
	}
	if (t->method == DTRACK_METHOD_WPFAULT) {
		unsigned long missed = dtrack_wpfault_missed();

		if (missed != t->kprobe_missed) {
			/* a fault escaped the probe: fall back on soft-dirty */
			spin_lock(&t->lock);
			t->cur->degraded = true;
			dtrack_spare(t)->degraded = true;
			spin_unlock(&t->lock);
			t->kprobe_missed = missed;
		}
	}
	snap = dtrack_switch_epoch(t);
	switch (dtrack_method_class(t->method)) {
	case DTRACK_CLASS_SOFTDIRTY:
		dtrack_sd_vmas(t, snap, write);
		/* VM_SOFTDIRTY was just cleared: PTEs may be writable */
		if (t->method == DTRACK_METHOD_WPFAULT)
			dtrack_wp_reset(t, snap, write, pg);
		else
			dtrack_sd_reset(t, snap);
		break;
	default:
		dtrack_hw_reset(t, snap);
		break;
	}
	dtrack_mark_unwalkable(t, snap);
	/*
	 * Every bit of the ended epoch is harvested: close it, so that
	 * nothing changes it while the answer is built from it (a notifier
	 * mark is in the live epoch anyway).
	 */
	dtrack_close_snap(t);
	if (write)
		mmap_write_unlock(mm);
	else
		mmap_read_unlock(mm);
	return snap;
}

/* The live epoch plus what the PTEs say, without resetting anything. */
static struct dtrack_epoch *dtrack_peek_locked(struct dtrack_tracker *t)
{
	struct dtrack_epoch *into = dtrack_spare(t);
	struct mm_struct *mm = t->dmm->mm;

	lockdep_assert_held(&t->dmm->op_lock);
	spin_lock(&t->lock);
	dtrack_epoch_copy(t, into);
	spin_unlock(&t->lock);

	mmap_read_lock(mm);
	switch (t->method) {
	case DTRACK_METHOD_SOFTDIRTY:
		dtrack_sd_vmas(t, into, false);
		dtrack_sd_scan(t, into);
		break;
	case DTRACK_METHOD_WPFAULT:
		dtrack_sd_vmas(t, into, false);
		if (into->degraded ||
		    dtrack_wpfault_missed() != t->kprobe_missed)
			into->degraded = true;
		/* before the first reset: see dtrack_tracker_start() */
		if (into->degraded || !t->wp_walked)
			dtrack_sd_scan(t, into);
		break;
	default:
		dtrack_hw_scan(t, into);
		break;
	}
	dtrack_mark_unwalkable(t, into);
	mmap_read_unlock(mm);
	return into;
}

/* First epoch: clear the range's bits (handing them to other trackers). */
int dtrack_tracker_start(struct dtrack_tracker *t)
{
	struct dtrack_mm *dmm = t->dmm;
	struct dtrack_pages pg = {};
	struct dtrack_epoch *snap;

	if (!mmget_not_zero(dmm->mm))
		return -ESRCH;
	mutex_lock(&dmm->op_lock);
	t->kprobe_missed = dtrack_wpfault_missed();
	snap = dtrack_reset_locked(t, &pg);
	kvfree(pg.idx);
	dtrack_epoch_clear(t, snap);
	/*
	 * A write fault that entered handle_mm_fault() before the tracker was
	 * listed is not recorded, yet may make its PTE writable after this
	 * walk (with soft-dirty set): until the first reset (a full walk
	 * that hands such pages to epoch 1), wpfault also reads soft-dirty.
	 */
	t->wp_walked = false;
	/* what the first harvest marked was discarded: not an answer */
	atomic64_set(&t->false_positives, 0);
	t->epoch = 1;
	mutex_unlock(&dmm->op_lock);
	mmput(dmm->mm);
	return 0;
}

/*
 * Heapsort of page indexes: the comparison is inline (sort() would make an
 * indirect call per comparison, the bulk of a collect under retpolines).
 */
static void dtrack_sift_u32(u32 *a, u32 root, u32 n)
{
	u32 v = a[root], child;

	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (v >= a[child])
			break;
		a[root] = a[child];
		root = child;
	}
	a[root] = v;
}

static void dtrack_sort_u32(u32 *a, u32 n)
{
	u32 i;

	for (i = n / 2; i-- > 0;)
		dtrack_sift_u32(a, i, n);
	for (i = n; i-- > 1;) {
		swap(a[0], a[i]);
		dtrack_sift_u32(a, 0, i);
	}
}

static int dtrack_runs_from_bitmap(struct dtrack_tracker *t,
				   struct dtrack_epoch *ep,
				   struct dtrack_result *res);

/*
 * Indexes of the set bits of @bm (@nbits), in order, into @idx (room for
 * @max): the count, or @max + 1 if there are more.
 */
static u32 dtrack_bitmap_idx(const unsigned long *bm, unsigned long nbits,
			     u32 *idx, u32 max)
{
	unsigned long i, nw = BITS_TO_LONGS(nbits);
	u32 n = 0;

	for (i = 0; i < nw; i++) {
		unsigned long w = bm[i];

		if (i == nw - 1 && nbits % BITS_PER_LONG)
			w &= BITMAP_LAST_WORD_MASK(nbits);
		for (; w; w &= w - 1) {
			if (n == max)
				return max + 1;
			idx[n++] = i * BITS_PER_LONG + __ffs(w);
		}
	}
	return n;
}

/*
 * Sorted indexes of the pages of @ep, whose log is complete, in @pg:
 * a sort of the log, O(d log d) in its d pages, or a scan of the bitmap
 * (O(range / BITS_PER_LONG + d)) when that is less.  The notifier may add
 * pages to a snapshot meanwhile (zapped ones: nothing to re-protect); a
 * scan that finds more than room was made for fails, as an allocation does.
 */
static int dtrack_epoch_pages(struct dtrack_tracker *t,
			      struct dtrack_epoch *ep, struct dtrack_pages *pg)
{
	u32 i, n, room;

	pg->nr = 0;
	n = READ_ONCE(ep->log_len);
	if (!n)
		return 0;
	room = min(n + 64, t->log_size);
	pg->idx = kvmalloc_array(room, sizeof(*pg->idx),
				 GFP_KERNEL | __GFP_NOWARN);
	if (!pg->idx)
		return -ENOMEM;
	if ((u64)n * ilog2(n | 1) > BITS_TO_LONGS(t->npages)) {
		n = dtrack_bitmap_idx(ep->bitmap, t->npages, pg->idx, room);
		if (n > room) {
			kvfree(pg->idx);
			pg->idx = NULL;
			return -E2BIG;
		}
	} else {
		spin_lock(&t->lock);
		n = min(ep->log_len, room);
		for (i = 0; i < n; i++)
			pg->idx[i] = ep->log[i].idx;
		spin_unlock(&t->lock);
		dtrack_sort_u32(pg->idx, n);
	}
	pg->nr = n;
	return 0;
}

/* Runs of the sorted page indexes @idx. */
static int dtrack_runs_from_idx(struct dtrack_tracker *t, const u32 *idx,
				u32 n, struct dtrack_result *res)
{
	struct dtrack_run *run = NULL;
	u32 i;

	res->nr_dirty = n;
	if (!n)
		return 0;
	res->runs = kvmalloc_array(n, sizeof(*res->runs),
				   GFP_KERNEL | __GFP_NOWARN);
	if (!res->runs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		u64 addr = t->start + ((u64)idx[i] << PAGE_SHIFT);

		if (run && run->addr + (run->pages << PAGE_SHIFT) == addr) {
			run->pages++;
			continue;
		}
		run = &res->runs[res->nr_runs++];
		run->addr = addr;
		run->pages = 1;
	}
	return 0;
}

/*
 * Runs of an epoch whose log is complete: O(d log d) in its d pages, or a
 * scan of its bitmap (O(range / BITS_PER_LONG + d)) when that is less.
 */
static int dtrack_runs_from_log(struct dtrack_tracker *t,
				struct dtrack_epoch *ep,
				struct dtrack_result *res)
{
	u32 i, n = ep->log_len, *idx;
	int ret;

	/* the log lists exactly the bits set: scan them when that is cheaper */
	if ((u64)n * ilog2(n | 1) > BITS_TO_LONGS(t->npages))
		return dtrack_runs_from_bitmap(t, ep, res);
	res->nr_dirty = n;
	if (!n)
		return 0;
	idx = kvmalloc_array(n, sizeof(*idx), GFP_KERNEL | __GFP_NOWARN);
	if (!idx)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		idx[i] = ep->log[i].idx;
	dtrack_sort_u32(idx, n);
	ret = dtrack_runs_from_idx(t, idx, n, res);
	kvfree(idx);
	return ret;
}

/*
 * Runs of set bits of @bm (@nbits), as runs of pages from @base: counted
 * only when @runs is NULL.  Word by word with inline bit scans (one
 * find_next_bit() call per run edge made large answers call-bound).
 * Returns the number of runs, *pages the number of set bits.
 */
static size_t dtrack_bitmap_runs(const unsigned long *bm, unsigned long nbits,
				 u64 base, struct dtrack_run *runs, u64 *pages)
{
	unsigned long i, nw = BITS_TO_LONGS(nbits), end = ULONG_MAX;
	size_t nr = 0;
	u64 total = 0;

	for (i = 0; i < nw; i++) {
		unsigned long w = bm[i];

		if (i == nw - 1 && nbits % BITS_PER_LONG)
			w &= BITMAP_LAST_WORD_MASK(nbits);
		while (w) {
			unsigned long b = __ffs(w), ones = ~(w >> b), len;
			unsigned long s = i * BITS_PER_LONG + b;

			len = ones ? __ffs(ones) : BITS_PER_LONG - b;
			w = b + len >= BITS_PER_LONG ? 0 :
			    w & ~(((1UL << len) - 1) << b);
			total += len;
			if (s == end) {
				/* continues the run of the previous word */
				if (runs)
					runs[nr - 1].pages += len;
			} else {
				if (runs) {
					runs[nr].addr = base + ((u64)s << PAGE_SHIFT);
					runs[nr].pages = len;
				}
				nr++;
			}
			end = s + len;
		}
	}
	*pages = total;
	return nr;
}

static int dtrack_runs_from_bitmap(struct dtrack_tracker *t,
				   struct dtrack_epoch *ep,
				   struct dtrack_result *res)
{
	size_t n = dtrack_bitmap_runs(ep->bitmap, t->npages, t->start, NULL,
				      &res->nr_dirty);

	if (!n)
		return 0;
	res->runs = kvmalloc_array(n, sizeof(*res->runs),
				   GFP_KERNEL | __GFP_NOWARN);
	if (!res->runs)
		return -ENOMEM;
	res->nr_runs = dtrack_bitmap_runs(ep->bitmap, t->npages, t->start,
					  res->runs, &res->nr_dirty);
	return 0;
}

/*
 * The answer as bitmap words (DTRACK_COLLECT_BITMAP): a copy of the words
 * of @ep from the first to the last with a page, O(that span / BITS_PER_LONG)
 * with no work per page.  With @pg (the epoch's sorted pages, @same: still
 * all of them) the span is known without a scan.  @ep is no longer live:
 * nothing adds to it meanwhile (dtrack_reset_locked() closed it).
 */
static int dtrack_bits_from_epoch(struct dtrack_tracker *t,
				  struct dtrack_epoch *ep,
				  const struct dtrack_pages *pg, bool same,
				  struct dtrack_result *res)
{
	unsigned long nw = BITS_TO_LONGS(t->npages), lo, hi, i;
	u64 n = 0;

	if (same) {
		lo = pg->idx[0] / BITS_PER_LONG;
		hi = pg->idx[pg->nr - 1] / BITS_PER_LONG;
	} else {
		if (ep->log && !ep->overflow && !ep->log_len)
			return 0;
		for (lo = 0; lo < nw && !ep->bitmap[lo]; lo++)
			;
		if (lo == nw)
			return 0;
		for (hi = nw - 1; !ep->bitmap[hi]; hi--)
			;
	}
	res->nr_words = hi - lo + 1;
	res->bits = kvmalloc_array(res->nr_words, sizeof(*res->bits),
				   GFP_KERNEL | __GFP_NOWARN);
	if (!res->bits)
		return -ENOMEM;
	memcpy(res->bits, ep->bitmap + lo, res->nr_words * sizeof(*res->bits));
	if (hi == nw - 1 && t->npages % BITS_PER_LONG)
		res->bits[hi - lo] &= BITMAP_LAST_WORD_MASK(t->npages);
	/* counted: marks during the harvest may have joined the snapshot */
	for (i = 0; i < res->nr_words; i++)
		n += hweight_long(res->bits[i]);
	res->nr_dirty = n;
	res->bits_addr = t->start + ((u64)lo * BITS_PER_LONG << PAGE_SHIFT);
	return 0;
}

void dtrack_result_free(struct dtrack_result *res)
{
	kvfree(res->runs);
	res->runs = NULL;
	res->nr_runs = 0;
	kvfree(res->bits);
	res->bits = NULL;
	res->nr_words = 0;
}

/*
 * COLLECT: the pages written in the current epoch, as runs (as bitmap
 * words with @bitmap); with @reset the next epoch starts atomically.  An
 * ended tracker reports what it recorded before its target went away.
 */
int dtrack_collect(struct dtrack_tracker *t, bool reset, bool bitmap,
		   struct dtrack_result *res)
{
	struct dtrack_mm *dmm = t->dmm;
	struct dtrack_pages pg = {};
	struct dtrack_epoch *ep;
	u64 t0 = ktime_get_ns();
	bool alive, same;
	int ret;

	memset(res, 0, sizeof(*res));
	res->tracker_id = t->id;
	mutex_lock(&dmm->op_lock);
	alive = atomic_read(&t->state) == DTRACK_STATE_ACTIVE &&
		mmget_not_zero(dmm->mm);
	res->epoch = t->epoch;
	if (!alive) {
		ep = dtrack_spare(t);
		spin_lock(&t->lock);
		dtrack_epoch_copy(t, ep);
		spin_unlock(&t->lock);
		reset = false;
	} else if (reset) {
		ep = dtrack_reset_locked(t, &pg);
	} else {
		ep = dtrack_peek_locked(t);
	}
	if (alive)
		mmput(dmm->mm);

	if (ep->overflow || ep->degraded)
		res->flags |= DTRACK_RESULT_CONSERVATIVE;
	spin_lock(&t->lock);
	/* pages are only added to an epoch, each logged once */
	same = pg.idx && ep->log && !ep->overflow && ep->log_len == pg.nr;
	spin_unlock(&t->lock);
	if (bitmap)
		ret = dtrack_bits_from_epoch(t, ep, &pg, same, res);
	else if (same)
		ret = dtrack_runs_from_idx(t, pg.idx, pg.nr, res);
	else if (ep->log && !ep->overflow)
		ret = dtrack_runs_from_log(t, ep, res);
	else
		ret = dtrack_runs_from_bitmap(t, ep, res);
	kvfree(pg.idx);
	if (reset && ret) {
		/* no answer: keep the writes for the next collect */
		spin_lock(&t->lock);
		bitmap_or(t->cur->bitmap, t->cur->bitmap, ep->bitmap, t->npages);
		if (t->cur->log)
			t->cur->overflow = true;
		spin_unlock(&t->lock);
	}
	dtrack_epoch_clear(t, ep);

	t->collects++;
	if (reset)
		t->resets++;
	t->last_dirty = res->nr_dirty;
	t->last_collect_ns = ktime_get_ns() - t0;
	mutex_unlock(&dmm->op_lock);
	if (ret)
		dtrack_result_free(res);
	return ret;
}
