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
	struct dtrack_tracker *self;
	struct dtrack_epoch *into;
	enum dtrack_class class;
	bool clear;
};

static void dtrack_hw_hand(struct dtrack_hw_ctx *c, unsigned long start,
			   unsigned long end)
{
	struct dtrack_tracker *t = c->self, *u;
	unsigned long s = max(start, t->start), e = min(end, t->end);

	if (s < e) {
		spin_lock(&t->lock);
		dtrack_mark(t, c->into, (s - t->start) >> PAGE_SHIFT,
			    (e - s) >> PAGE_SHIFT, false);
		spin_unlock(&t->lock);
	}
	if (!c->clear)
		return;
	list_for_each_entry(u, &t->dmm->trackers, mm_node)
		if (u != t && dtrack_method_class(u->method) == c->class)
			dtrack_mark_addr(u, start, end, false);
}

static void dtrack_hw_pte(struct dtrack_walk *w, unsigned long addr,
			  pte_t *ptep)
{
	struct dtrack_hw_ctx *c = w->priv;
	pte_t pte = ptep_get(ptep);
	struct folio *folio;
	bool dirty = c->class == DTRACK_CLASS_HWDIRTY;

	if (!pte_present(pte) || !(dirty ? pte_dirty(pte) : pte_young(pte)))
		return;
	/*
	 * Without a normal folio to carry it (PFN/mixed maps), the bit stays:
	 * the page is then reported in every epoch.
	 */
	folio = c->clear ? dtrack_pte_folio(w->vma, pte) : NULL;
	if (folio) {
		/* the folio first: writeback and reclaim never see neither */
		if (dirty) {
			folio_mark_dirty(folio);
			DTRACK_PTE_UPDATE(ptep, o, pte_mkclean(o));
		} else {
			folio_set_young(folio);
			DTRACK_PTE_UPDATE(ptep, o, pte_mkold(o));
		}
		w->changed = true;
	}
	dtrack_hw_hand(c, addr, addr + PAGE_SIZE);
}

static void dtrack_hw_pmd(struct dtrack_walk *w, unsigned long addr,
			  unsigned long end, pmd_t *pmdp)
{
	unsigned long haddr = addr & HPAGE_PMD_MASK;
	struct dtrack_hw_ctx *c = w->priv;
	bool dirty = c->class == DTRACK_CLASS_HWDIRTY;
	pmd_t pmd = *pmdp, old;
	struct folio *folio;

	if (!pmd_present(pmd) || !(dirty ? pmd_dirty(pmd) : pmd_young(pmd)))
		return;
	if (c->clear) {
		if (dirty)
			old = DTRACK_PMD_UPDATE(pmdp, o, pmd_mkclean(o));
		else
			old = DTRACK_PMD_UPDATE(pmdp, o, pmd_mkold(o));
		w->changed = true;
		folio = page_folio(pmd_page(old));
		if (dirty)
			folio_mark_dirty(folio);
		else
			folio_set_young(folio);
	}
	dtrack_hw_hand(c, haddr, haddr + HPAGE_PMD_SIZE);
}

/* A table that kept changing under us: count it dirty (or accessed). */
static void dtrack_hw_skip(struct dtrack_walk *w, unsigned long start,
			   unsigned long end)
{
	struct dtrack_hw_ctx *c = w->priv;

	dtrack_hw_hand(c, start, end);
	if (c->clear)
		dtrack_mark_addr(c->self, start, end, true);
}

static void dtrack_hw_walk(struct dtrack_tracker *t, struct dtrack_epoch *into,
			   bool clear)
{
	struct dtrack_hw_ctx c = {
		.self = t, .into = into, .clear = clear,
		.class = dtrack_method_class(t->method),
	};
	struct dtrack_walk w = {
		.mm = t->dmm->mm, .pte = dtrack_hw_pte, .pmd = dtrack_hw_pmd,
		.skip = dtrack_hw_skip, .priv = &c,
	};
	struct mmu_notifier_range range;

	if (!clear) {
		dtrack_walk_range(&w, t->start, t->end);
		return;
	}
	/* no notifier: secondary MMUs keep their own dirty/young state */
	dtrack_flush_begin(w.mm, &range, t->start, t->end, false);
	dtrack_walk_range(&w, t->start, t->end);
	dtrack_flush_end(w.mm, &range, w.changed, false);
}

void dtrack_hw_scan(struct dtrack_tracker *t, struct dtrack_epoch *into)
{
	dtrack_hw_walk(t, into, false);
}

void dtrack_hw_reset(struct dtrack_tracker *t, struct dtrack_epoch *snap)
{
	dtrack_hw_walk(t, snap, true);
}
