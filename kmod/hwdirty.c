// SPDX-License-Identifier: GPL-2.0
/*
 * hwdirty and accessed: scans of the bits the MMU sets by itself, with no
 * write protection and no extra fault for the application.
 *
 * A reset clears the dirty (or accessed) bit of each PTE / huge PMD with an
 * atomic update under the page-table lock, moves the information to the
 * folio first so that writeback and reclaim still see it (folio_mark_dirty()
 * as zap and try_to_unmap do; the young page flag for accessed), hands the
 * page to the ending epoch and to the other trackers of the class, and then
 * flushes the TLB so that the next write (access) sets the bit again: a CPU
 * may keep writing through a dirty TLB entry until the flush, but that entry
 * implies the PTE was dirty when cleared, so the page is already reported.
 */
#include <linux/mm.h>
#include <linux/page_idle.h>
#include "dtrack.h"

struct dtrack_hw_ctx {
	struct dtrack_hand h;
	pteval_t mask;			/* the PTE bits pte_dirty/young test */
};

/*
 * One PTE table (PTE lock held): a branch-free OR over the entries first
 * (no entry with the bit: nothing to do, the common case of a clean
 * table), then an inline loop; pages are handed over once per table and
 * only the entries cleared are flushed.
 */
static void dtrack_hw_ptes(struct dtrack_walk *w, unsigned long addr,
			   unsigned long end, pte_t *ptep)
{
	struct dtrack_hw_ctx *c = w->priv;
	bool dirty = c->h.class == DTRACK_CLASS_HWDIRTY;
	unsigned long n = (end - addr) >> PAGE_SHIFT, i;
	unsigned long hand[BITS_TO_LONGS(PTRS_PER_PTE)];
	unsigned long fs = 0, fe = 0;
	pteval_t acc = 0;
	bool any = false;

	for (i = 0; i + 8 <= n; i += 8)
		acc |= pte_val(ptep[i]) | pte_val(ptep[i + 1]) |
		       pte_val(ptep[i + 2]) | pte_val(ptep[i + 3]) |
		       pte_val(ptep[i + 4]) | pte_val(ptep[i + 5]) |
		       pte_val(ptep[i + 6]) | pte_val(ptep[i + 7]);
	for (; i < n; i++)
		acc |= pte_val(ptep[i]);
	if (!(acc & c->mask))
		return;
	bitmap_zero(hand, n);
	for (i = 0; i < n; i++) {
		unsigned long a = addr + (i << PAGE_SHIFT);
		pte_t pte = ptep_get(ptep + i);
		struct folio *folio;

		if (!(pte_val(pte) & c->mask) || !pte_present(pte) ||
		    !(dirty ? pte_dirty(pte) : pte_young(pte)))
			continue;
		__set_bit(i, hand);
		any = true;
		/*
		 * Without a normal folio to carry it (PFN/mixed maps), the bit
		 * stays: the page is then reported in every epoch.
		 */
		folio = c->h.clear ? dtrack_pte_folio(w->vma, pte) : NULL;
		if (!folio)
			continue;
		/* the folio first: writeback and reclaim never see neither */
		if (dirty) {
			folio_mark_dirty(folio);
			DTRACK_PTE_UPDATE(ptep + i, o, pte_mkclean(o));
		} else {
			folio_set_young(folio);
			DTRACK_PTE_UPDATE(ptep + i, o, pte_mkold(o));
		}
		if (!fe)
			fs = a;
		fe = a + PAGE_SIZE;
	}
	if (any)
		dtrack_hand_bits(&c->h, addr, hand, n);
	if (fe)
		dtrack_walk_changed(w, fs, fe);
}

static void dtrack_hw_pmd(struct dtrack_walk *w, unsigned long addr,
			  unsigned long end, pmd_t *pmdp)
{
	unsigned long haddr = addr & HPAGE_PMD_MASK;
	struct dtrack_hw_ctx *c = w->priv;
	bool dirty = c->h.class == DTRACK_CLASS_HWDIRTY;
	pmd_t pmd = *pmdp, old;
	struct folio *folio;

	if (!pmd_present(pmd) || !(dirty ? pmd_dirty(pmd) : pmd_young(pmd)))
		return;
	if (c->h.clear) {
		if (dirty)
			old = DTRACK_PMD_UPDATE(pmdp, o, pmd_mkclean(o));
		else
			old = DTRACK_PMD_UPDATE(pmdp, o, pmd_mkold(o));
		dtrack_walk_changed(w, haddr, haddr + HPAGE_PMD_SIZE);
		folio = page_folio(pmd_page(old));
		if (dirty)
			folio_mark_dirty(folio);
		else
			folio_set_young(folio);
	}
	dtrack_hand(&c->h, haddr, haddr + HPAGE_PMD_SIZE, false);
}

/* A table that kept changing under us: count it dirty (or accessed). */
static void dtrack_hw_skip(struct dtrack_walk *w, unsigned long start,
			   unsigned long end)
{
	struct dtrack_hw_ctx *c = w->priv;

	dtrack_hand(&c->h, start, end, false);
	if (c->h.clear)
		dtrack_mark_addr(c->h.self, start, end, true);
}

static void dtrack_hw_walk(struct dtrack_tracker *t, struct dtrack_epoch *into,
			   bool clear)
{
	struct dtrack_hw_ctx c = {
		.h = { .self = t, .into = into, .clear = clear,
		       .class = dtrack_method_class(t->method) },
	};
	struct dtrack_walk w = {
		.mm = t->dmm->mm, .ptes = dtrack_hw_ptes, .pmd = dtrack_hw_pmd,
		.skip = dtrack_hw_skip, .priv = &c,
	};
	struct mmu_notifier_range range;

	c.mask = c.h.class == DTRACK_CLASS_HWDIRTY ? DTRACK_PTE_DIRTY_BITS :
						   _PAGE_ACCESSED;
	if (!clear) {
		dtrack_walk_range(&w, t->start, t->end);
		return;
	}
	/* no notifier: secondary MMUs keep their own dirty/young state */
	dtrack_flush_begin(w.mm, &range, t->start, t->end, false);
	dtrack_walk_range(&w, t->start, t->end);
	dtrack_flush_end(w.mm, &range, &w, false);
}

void dtrack_hw_scan(struct dtrack_tracker *t, struct dtrack_epoch *into)
{
	dtrack_hw_walk(t, into, false);
}

void dtrack_hw_reset(struct dtrack_tracker *t, struct dtrack_epoch *snap)
{
	dtrack_hw_walk(t, snap, true);
}
