// SPDX-License-Identifier: GPL-2.0
/*
 * The soft-dirty bit, shared by softdirty trackers (which read it) and
 * wpfault trackers (whose resets clear it to get write faults, and which
 * fall back on it when a fault may have been missed).
 *
 * Reset is clear_refs' CLEAR_REFS_SOFT_DIRTY restricted to one range:
 * clear VM_SOFTDIRTY on the VMAs (so that new writes are tracked again and
 * shared mappings get write notification), clear the soft-dirty bit and
 * write-protect every PTE and huge PMD (not splitting it), and flush the
 * TLB.  Before a bit is cleared, the page is handed to the resetting
 * tracker's ending epoch and to the live epoch of every other tracker of
 * the class covering it: one tracker's reset never hides a write from
 * another.
 */
#include <linux/mm.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include "dtrack.h"

struct dtrack_sd_ctx {
	struct dtrack_hand h;		/* class DTRACK_CLASS_SOFTDIRTY */
	pteval_t mask;			/* dtrack_sd_mask(h.clear) */
};

/* Pinned COW pages must stay writable (see clear_refs' pte_is_pinned()). */
static bool dtrack_pte_pinned(struct vm_area_struct *vma, pte_t pte)
{
	struct folio *folio;

	if (!pte_write(pte) || !is_cow_mapping(vma->vm_flags) ||
	    likely(!test_bit(MMF_HAS_PINNED, &vma->vm_mm->flags)))
		return false;
	folio = dtrack_pte_folio(vma, pte);
	return folio && folio_maybe_dma_pinned(folio);
}

/*
 * Bits of a present PTE that make a soft-dirty pass act on it: soft-dirty,
 * and for a reset write permission.  pte_write() also counts a shadow-stack
 * PTE (Write=0, Dirty=1) as writable where the kernel has shadow stacks:
 * then Dirty counts as well (write-protected PTEs keep theirs in SavedDirty).
 */
static pteval_t dtrack_sd_mask(bool clear)
{
	pteval_t m = _PAGE_SOFT_DIRTY;

	if (clear) {
		m |= _PAGE_RW;
		if (pte_write(__pte(_PAGE_PRESENT | _PAGE_DIRTY)))
			m |= _PAGE_DIRTY;
	}
	return m;
}

/*
 * The fast path of a pass over a PTE table: true if every entry is present
 * with none of @mask set, so that there is nothing to do (after a reset,
 * almost every table of a mostly clean range).  No branch per entry: an OR
 * of the entries for @mask, an AND of the present bits, where a NUMA
 * hinting (PROT_NONE) entry counts as present as for pte_present(): NUMA
 * balancing leaves whole tables so.  PTE bits other than hardware A/D
 * cannot change under the PTE lock.
 */
#define DTRACK_PROTNONE_SHIFT	(_PAGE_BIT_PROTNONE - _PAGE_BIT_PRESENT)

static __always_inline void dtrack_quiet_one(pte_t pte, pteval_t *any,
					     pteval_t *all)
{
	pteval_t v = pte_val(pte);

	*any |= v;
	*all &= v | (v >> DTRACK_PROTNONE_SHIFT);
}

static bool dtrack_ptes_quiet(const pte_t *pte, unsigned long n,
			      pteval_t mask)
{
	pteval_t any = 0, all = _PAGE_PRESENT;
	unsigned long i = 0;

	/* unrolled: under emulation every loop branch has a price */
	for (; i + 4 <= n; i += 4) {
		dtrack_quiet_one(pte[i], &any, &all);
		dtrack_quiet_one(pte[i + 1], &any, &all);
		dtrack_quiet_one(pte[i + 2], &any, &all);
		dtrack_quiet_one(pte[i + 3], &any, &all);
	}
	for (; i < n; i++)
		dtrack_quiet_one(pte[i], &any, &all);
	return !(any & mask) && (all & _PAGE_PRESENT);
}

/* Per-table state of dtrack_sd_ptes(). */
struct dtrack_sd_table {
	unsigned long hand[BITS_TO_LONGS(PTRS_PER_PTE)];
	unsigned long fs, fe;		/* span of the entries changed */
	bool any;			/* a bit set in @hand */
};

/*
 * A non-present entry that will become a writable PTE again without a
 * fault (a writable migration entry: remove_migration_pte(); a writable
 * device entry) must lose its write permission when a reset clears its
 * soft-dirty bit, or the page comes back writable and clean and its
 * writes go unseen.  What mprotect() does, with soft-dirty cleared and
 * uffd-wp kept.  The PTE lock is held: migration cannot restore it now.
 */
static swp_entry_t dtrack_swp_readable(swp_entry_t entry)
{
	if (is_writable_migration_entry(entry))
		return PageAnon(pfn_swap_entry_to_page(entry)) ?
		       make_readable_exclusive_migration_entry(swp_offset(entry)) :
		       make_readable_migration_entry(swp_offset(entry));
	if (is_writable_device_private_entry(entry))
		return make_readable_device_private_entry(swp_offset(entry));
	if (is_writable_device_exclusive_entry(entry))
		return make_readable_device_exclusive_entry(swp_offset(entry));
	return entry;
}

static pte_t dtrack_swp_pte_reset(pte_t pte)
{
	swp_entry_t entry = pte_to_swp_entry(pte), ro = dtrack_swp_readable(entry);
	pte_t npte;

	if (ro.val == entry.val)
		return pte_swp_clear_soft_dirty(pte);
	npte = swp_entry_to_pte(ro);
	if (pte_swp_uffd_wp(pte))
		npte = pte_swp_mkuffd_wp(npte);
	return npte;
}

/* Entry @i of the table (page @a): the soft-dirty pass proper. */
static __always_inline void dtrack_sd_pte(struct dtrack_walk *w,
					  struct dtrack_sd_ctx *c,
					  struct dtrack_sd_table *tb,
					  unsigned long i, unsigned long a,
					  pte_t *ptep)
{
	pte_t pte = ptep_get(ptep), old;

	if (pte_none(pte))
		return;
	if (pte_present(pte)) {
		if (!(pte_val(pte) & c->mask))
			return;
		if (!c->h.clear) {
			/* scan: soft-dirty */
			__set_bit(i, tb->hand);
			tb->any = true;
			return;
		}
		if (dtrack_pte_pinned(w->vma, pte)) {
			/* a pinned page keeps its bit: every epoch */
			dtrack_hand(&c->h, a, a + PAGE_SIZE, !pte_soft_dirty(pte));
			dtrack_mark_addr(c->h.self, a, a + PAGE_SIZE, true);
			return;
		}
		old = DTRACK_PTE_UPDATE(ptep, o,
					pte_clear_soft_dirty(pte_wrprotect(o)));
		if (pte_soft_dirty(old)) {
			__set_bit(i, tb->hand);
			tb->any = true;
		}
		if (pte_write(old) || pte_soft_dirty(old)) {
			if (!tb->fe)
				tb->fs = a;
			tb->fe = a + PAGE_SIZE;
		}
	} else if (is_swap_pte(pte)) {
		pte_t npte;

		if (pte_swp_soft_dirty(pte)) {
			__set_bit(i, tb->hand);
			tb->any = true;
		}
		if (!c->h.clear)
			return;
		npte = dtrack_swp_pte_reset(pte);
		if (pte_val(npte) != pte_val(pte))
			set_pte_at(w->mm, a, ptep, npte);
	}
}

/*
 * Soft-dirty pass over [addr, end) of one PTE table (PTE lock held), or
 * over its pages in w->visit: an inline loop, whose soft-dirty pages are
 * handed over once per table.
 */
static void dtrack_sd_ptes(struct dtrack_walk *w, unsigned long addr,
			   unsigned long end, pte_t *ptep)
{
	struct dtrack_sd_ctx *c = w->priv;
	unsigned long n = (end - addr) >> PAGE_SHIFT, i, k;
	struct dtrack_sd_table tb;

	if (w->visit) {
		/* only the listed pages: no full-table fast path to try */
		bitmap_zero(tb.hand, n);
		tb.fs = tb.fe = 0;
		tb.any = false;
		/* inline bit scan: find_next_bit() is a call per page */
		for (k = 0; k < BITS_TO_LONGS(n); k++) {
			unsigned long v = w->visit[k];

			for (; v; v &= v - 1) {
				i = k * BITS_PER_LONG + __ffs(v);
				dtrack_sd_pte(w, c, &tb, i,
					      addr + (i << PAGE_SHIFT), ptep + i);
			}
		}
	} else {
		if (dtrack_ptes_quiet(ptep, n, c->mask))
			return;
		bitmap_zero(tb.hand, n);
		tb.fs = tb.fe = 0;
		tb.any = false;
		for (i = 0; i < n; i++)
			dtrack_sd_pte(w, c, &tb, i, addr + (i << PAGE_SHIFT),
				      ptep + i);
	}
	if (tb.any)
		dtrack_hand_bits(&c->h, addr, tb.hand, n);
	if (tb.fe)
		dtrack_walk_changed(w, tb.fs, tb.fe);
}

/* Huge PMD (never split): the whole huge page is handed over. */
static void dtrack_sd_pmd(struct dtrack_walk *w, unsigned long addr,
			  unsigned long end, pmd_t *pmdp)
{
	unsigned long haddr = addr & HPAGE_PMD_MASK;
	struct dtrack_sd_ctx *c = w->priv;
	pmd_t pmd = *pmdp, old;

	if (pmd_present(pmd)) {
		if (!c->h.clear) {
			if (pmd_soft_dirty(pmd))
				dtrack_hand(&c->h, haddr,
					    haddr + HPAGE_PMD_SIZE, false);
			return;
		}
		old = DTRACK_PMD_UPDATE(pmdp, o,
					pmd_clear_soft_dirty(pmd_wrprotect(o)));
		if (pmd_soft_dirty(old))
			dtrack_hand(&c->h, haddr, haddr + HPAGE_PMD_SIZE, false);
		if (pmd_write(old) || pmd_soft_dirty(old))
			dtrack_walk_changed(w, haddr, haddr + HPAGE_PMD_SIZE);
	} else if (is_pmd_migration_entry(pmd)) {
		swp_entry_t entry = pmd_to_swp_entry(pmd);
		pmd_t npmd = pmd_swp_clear_soft_dirty(pmd);

		if (pmd_swp_soft_dirty(pmd))
			dtrack_hand(&c->h, haddr, haddr + HPAGE_PMD_SIZE, false);
		if (!c->h.clear)
			return;
		/* as dtrack_swp_pte_reset(): no writable return */
		if (is_writable_migration_entry(entry)) {
			npmd = swp_entry_to_pmd(dtrack_swp_readable(entry));
			if (pmd_swp_uffd_wp(pmd))
				npmd = pmd_swp_mkuffd_wp(npmd);
		}
		if (pmd_val(npmd) != pmd_val(pmd))
			set_pmd_at(w->mm, haddr, pmdp, npmd);
	}
}

/*
 * A table that kept changing under us was neither read nor cleared: count
 * it dirty in both epochs (its PTEs may stay writable without a fault).
 */
static void dtrack_sd_skip(struct dtrack_walk *w, unsigned long start,
			   unsigned long end)
{
	struct dtrack_sd_ctx *c = w->priv;

	dtrack_hand(&c->h, start, end, true);
	if (c->h.clear)
		dtrack_mark_addr(c->h.self, start, end, true);
}

/* Read-only scan: soft-dirty pages of t's range into @into. */
void dtrack_sd_scan(struct dtrack_tracker *t, struct dtrack_epoch *into)
{
	struct dtrack_sd_ctx c = {
		.h = { .self = t, .into = into,
		       .class = DTRACK_CLASS_SOFTDIRTY },
		.mask = dtrack_sd_mask(false),
	};
	struct dtrack_walk w = {
		.mm = t->dmm->mm, .ptes = dtrack_sd_ptes, .pmd = dtrack_sd_pmd,
		.skip = dtrack_sd_skip, .priv = &c,
	};

	dtrack_walk_range(&w, t->start, t->end);
}

/* Reset: hand soft-dirty pages to @snap and the other trackers, clear. */
void dtrack_sd_reset(struct dtrack_tracker *t, struct dtrack_epoch *snap)
{
	struct dtrack_sd_ctx c = {
		.h = { .self = t, .into = snap, .clear = true,
		       .class = DTRACK_CLASS_SOFTDIRTY },
		.mask = dtrack_sd_mask(true),
	};
	struct dtrack_walk w = {
		.mm = t->dmm->mm, .ptes = dtrack_sd_ptes, .pmd = dtrack_sd_pmd,
		.skip = dtrack_sd_skip, .priv = &c,
	};
	struct mmu_notifier_range range;

	dtrack_flush_begin(w.mm, &range, t->start, t->end, true);
	dtrack_walk_range(&w, t->start, t->end);
	dtrack_flush_end(w.mm, &range, &w, true);
}

/*
 * wpfault reset in O(dirty): only the pages written in the ending epoch
 * can hold writable or soft-dirty PTEs (see wpfault.c), so only they are
 * visited (@idx: their indexes in t's range, sorted; each page table once);
 * they come from @snap's log, so they are only handed to the other
 * trackers.  Only changed entries are flushed.
 */
void dtrack_sd_reset_pages(struct dtrack_tracker *t, struct dtrack_epoch *snap,
			   const u32 *idx, size_t nr)
{
	struct dtrack_sd_ctx c = {
		.h = { .self = t, .into = snap, .clear = true,
		       .class = DTRACK_CLASS_SOFTDIRTY, .into_has = true },
		.mask = dtrack_sd_mask(true),
	};
	struct dtrack_walk w = {
		.mm = t->dmm->mm, .ptes = dtrack_sd_ptes, .pmd = dtrack_sd_pmd,
		.skip = dtrack_sd_skip, .priv = &c,
	};
	struct mmu_notifier_range range;

	dtrack_flush_begin(w.mm, &range, t->start, t->end, true);
	dtrack_walk_pages(&w, t->start, idx, nr);
	dtrack_flush_end(w.mm, &range, &w, true);
}

bool dtrack_sd_vmas_flagged(struct dtrack_tracker *t)
{
	struct vm_area_struct *vma;
	VMA_ITERATOR(vmi, t->dmm->mm, t->start);

	if (!VM_SOFTDIRTY)
		return false;
	for_each_vma_range(vmi, vma, t->end)
		if (vma->vm_flags & VM_SOFTDIRTY)
			return true;
	return false;
}

/*
 * vma_set_page_prot() is not exported: the same for a VMA whose soft-dirty
 * tracking was just enabled.  vma_wants_writenotify() is then true for
 * shared writable mappings, whose PTEs must be installed read-only (x86:
 * without _PAGE_RW, as for private mappings) so that writes fault again.
 */
static void dtrack_vma_set_page_prot(struct vm_area_struct *vma)
{
	const struct vm_operations_struct *ops = vma->vm_ops;
	vm_flags_t flags = vma->vm_flags;

	if ((flags & (VM_WRITE | VM_SHARED)) != (VM_WRITE | VM_SHARED))
		return;
	/*
	 * The kernel write-notifies every shared writable mapping for
	 * soft-dirty, VM_MIXEDMAP included (its write faults are taken
	 * and reused, wp_pfn_shared()); VM_PFNMAP and VM_IO are not walked
	 * and count as all dirty.
	 */
	if (!(ops && (ops->page_mkwrite || ops->pfn_mkwrite)) &&
	    (flags & (VM_PFNMAP | VM_IO)))
		return;
	WRITE_ONCE(vma->vm_page_prot,
		   __pgprot(pgprot_val(vma->vm_page_prot) & ~_PAGE_RW));
}

/*
 * VMAs with VM_SOFTDIRTY (new, or merged with a new one) count as all
 * dirty.  With @clear (mmap_lock held for write), the flag is cleared the
 * way clear_refs does, after handing the whole VMA - not only the part in
 * t's range - to every tracker of the class, since the flag covered it all.
 */
void dtrack_sd_vmas(struct dtrack_tracker *t, struct dtrack_epoch *into,
		    bool clear)
{
	struct dtrack_sd_ctx c = {
		.h = { .self = t, .into = into, .clear = clear,
		       .class = DTRACK_CLASS_SOFTDIRTY },
	};
	struct vm_area_struct *vma;
	VMA_ITERATOR(vmi, t->dmm->mm, t->start);

	if (!VM_SOFTDIRTY)
		return;
	for_each_vma_range(vmi, vma, t->end) {
		if (!(vma->vm_flags & VM_SOFTDIRTY))
			continue;
		dtrack_hand(&c.h, vma->vm_start, vma->vm_end, true);
		if (!clear)
			continue;
		mmap_assert_write_locked(t->dmm->mm);
		DTRACK_VM_FLAGS_CLEAR(vma, VM_SOFTDIRTY);
		dtrack_vma_set_page_prot(vma);
	}
}
