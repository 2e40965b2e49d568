// SPDX-License-Identifier: GPL-2.0
/*
 * The page-table walker shared by every method, and the TLB flush around
 * PTE updates.  walk_page_range() is not exported, and apply_to_*_page_range()
 * cannot see huge PMDs, so dtrack walks the tables itself: it visits the
 * VMAs of a range, hands each present or swap PTE to a callback under the PTE
 * lock, and each huge (or migration) PMD to another under the PMD lock -
 * never splitting it.  The caller holds mmap_lock (read or write), which
 * keeps page tables from being freed under us on 6.1; on 6.12 they may be
 * retracted under RCU, hence the lockless pmd recheck of dtrack_pte_map().
 */
#include <linux/mm.h>
#include <linux/hugetlb.h>
#include <linux/mm_inline.h>
#include <linux/pgtable.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <asm/tlbflush.h>
#include "dtrack.h"

/* Page tables dtrack can walk: no hugetlb, no raw PFN maps. */
bool dtrack_vma_walkable(struct vm_area_struct *vma)
{
	return !(vma->vm_flags & (VM_HUGETLB | VM_PFNMAP | VM_IO));
}

/* The folio mapped by a present PTE, or NULL if it is not a normal page. */
struct folio *dtrack_pte_folio(struct vm_area_struct *vma, pte_t pte)
{
	unsigned long pfn = pte_pfn(pte);

	if (pte_special(pte) || pte_devmap(pte) || is_zero_pfn(pfn) ||
	    !pfn_valid(pfn) || (vma->vm_flags & VM_MIXEDMAP))
		return NULL;
	return page_folio(pfn_to_page(pfn));
}

/*
 * pte_offset_map_lock() without the unexported helper: map the PTE table
 * of @pmd and lock it, or return NULL if the pmd is not (or no longer) a
 * table.  rcu_read_lock() keeps an RCU-freed table alive on 6.12.
 */
static pte_t *dtrack_pte_map(struct mm_struct *mm, pmd_t *pmd,
			     unsigned long addr, spinlock_t **ptlp)
{
	spinlock_t *ptl;
	pmd_t pmdval;
	pte_t *pte;

	rcu_read_lock();
	pmdval = READ_ONCE(*pmd);
	if (pmd_none(pmdval) || !pmd_present(pmdval) ||
	    pmd_trans_huge(pmdval) || pmd_devmap(pmdval) || pmd_bad(pmdval))
		goto fail;
	pte = pte_offset_kernel(&pmdval, addr);
	ptl = pte_lockptr(mm, &pmdval);
	spin_lock(ptl);
	if (likely(pmd_same(pmdval, READ_ONCE(*pmd)))) {
		*ptlp = ptl;
		return pte;
	}
	spin_unlock(ptl);
fail:
	rcu_read_unlock();
	return NULL;
}

static void dtrack_pte_unmap(spinlock_t *ptl)
{
	spin_unlock(ptl);
	rcu_read_unlock();
}

/*
 * One PMD entry, for [addr, next) of it: a huge (or migration) PMD goes to
 * w->pmd under the PMD lock, a PTE table to w->ptes under the PTE lock,
 * once: for all of [addr, next), or for the pages of it set in w->visit
 * (bit i: page addr + i pages) when dtrack_walk_pages() set it.
 */
static void dtrack_walk_one_pmd(struct dtrack_walk *w, pmd_t *pmd,
				unsigned long addr, unsigned long next)
{
	int retries = 0;
	spinlock_t *ptl;
	pmd_t val;
	pte_t *pte;

again:
	val = READ_ONCE(*pmd);
	if (pmd_none(val))
		return;
	if (pmd_trans_huge(val) || pmd_devmap(val) || !pmd_present(val)) {
		ptl = pmd_lock(w->mm, pmd);
		val = *pmd;
		if (pmd_trans_huge(val) ||
		    (!pmd_none(val) && !pmd_present(val))) {
			/*
			 * pmd_devmap() tests a software bit that a swap or
			 * migration entry uses for its offset (set in all of
			 * them on x86-64): it means DAX only when present.
			 */
			if (w->pmd && !(pmd_present(val) && pmd_devmap(val)))
				w->pmd(w, addr, next, pmd);
			spin_unlock(ptl);
			return;
		}
		spin_unlock(ptl);
		if (pmd_devmap(val)) {
			/*
			 * DAX: dtrack does not rewrite device entries, so
			 * the huge page counts as written, in every epoch.
			 */
			if (w->skip)
				w->skip(w, addr & HPAGE_PMD_MASK,
					(addr & HPAGE_PMD_MASK) + HPAGE_PMD_SIZE);
			return;
		}
		if (pmd_none(val))
			return;
	}
	if (!w->ptes)
		return;
	pte = dtrack_pte_map(w->mm, pmd, addr, &ptl);
	if (!pte) {
		/* pmd changed under us (THP collapse/split, zap) */
		if (++retries < 8)
			goto again;
		if (w->skip)
			w->skip(w, addr, next);
		return;
	}
	w->ptes(w, addr, next, pte);
	dtrack_pte_unmap(ptl);
}

static void dtrack_walk_pmd(struct dtrack_walk *w, pud_t *pud,
			    unsigned long addr, unsigned long end)
{
	unsigned long next;
	pmd_t *pmd;

	pmd = pmd_offset(pud, addr);
	do {
		next = pmd_addr_end(addr, end);
		/* empty slots are the common case of a sparse range */
		if (!pmd_none(READ_ONCE(*pmd)))
			dtrack_walk_one_pmd(w, pmd, addr, next);
	} while (pmd++, addr = next, addr != end);
}

static void dtrack_walk_pud(struct dtrack_walk *w, p4d_t *p4d,
			    unsigned long addr, unsigned long end)
{
	unsigned long next;
	pud_t *pud;

	pud = pud_offset(p4d, addr);
	do {
		pud_t val = READ_ONCE(*pud);

		next = pud_addr_end(addr, end);
		/* PUD leaves (DAX) are not tracked: see README.md */
		if (pud_none(val) || !pud_present(val) || pud_bad(val))
			continue;
		dtrack_walk_pmd(w, pud, addr, next);
	} while (pud++, addr = next, addr != end);
}

static void dtrack_walk_p4d(struct dtrack_walk *w, pgd_t *pgd,
			    unsigned long addr, unsigned long end)
{
	unsigned long next;
	p4d_t *p4d;

	p4d = p4d_offset(pgd, addr);
	do {
		next = p4d_addr_end(addr, end);
		if (p4d_none(*p4d) || p4d_bad(*p4d))
			continue;
		dtrack_walk_pud(w, p4d, addr, next);
	} while (p4d++, addr = next, addr != end);
}

/*
 * Walk [start, end) of w->mm; mmap_lock must be held.  VMAs dtrack cannot
 * walk are skipped (callers account for them from the VMA flags).
 */
void dtrack_walk_range(struct dtrack_walk *w, unsigned long start,
		       unsigned long end)
{
	struct vm_area_struct *vma;
	VMA_ITERATOR(vmi, w->mm, start);

	mmap_assert_locked(w->mm);
	for_each_vma_range(vmi, vma, end) {
		unsigned long addr = max(start, vma->vm_start);
		unsigned long vend = min(end, vma->vm_end);
		unsigned long next;
		pgd_t *pgd;

		if (!dtrack_vma_walkable(vma))
			continue;
		w->vma = vma;
		pgd = pgd_offset(w->mm, addr);
		do {
			next = pgd_addr_end(addr, vend);
			if (pgd_none(*pgd) || pgd_bad(*pgd))
				continue;
			dtrack_walk_p4d(w, pgd, addr, next);
		} while (pgd++, addr = next, addr != vend);
		cond_resched();
	}
	w->vma = NULL;
}

/* The PMD slot of @addr, or NULL if an upper level is empty (or a leaf). */
static pmd_t *dtrack_pmd_find(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud, val;

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return NULL;
	pud = pud_offset(p4d, addr);
	val = READ_ONCE(*pud);
	if (pud_none(val) || !pud_present(val) || pud_bad(val))
		return NULL;
	return pmd_offset(pud, addr);
}

/*
 * Walk the pages @base + idx[i] pages only (@idx sorted, no duplicates),
 * handing each PTE table once to w->ptes for all its pages, which are
 * set in w->visit: O(pages + tables they touch), not O(range), and one
 * indirect call per table.  A skipped table (w->skip) is reported from its
 * first to its last listed page.  mmap_lock must be held.
 */
void dtrack_walk_pages(struct dtrack_walk *w, unsigned long base,
		       const u32 *idx, size_t nr)
{
	unsigned long visit[BITS_TO_LONGS(PTRS_PER_PTE)];
	struct vm_area_struct *vma = NULL;
	size_t i = 0;

	mmap_assert_locked(w->mm);
	w->visit = visit;
	while (i < nr) {
		unsigned long addr = base + ((unsigned long)idx[i] << PAGE_SHIFT);
		unsigned long next, last = addr;
		pmd_t *pmd;
		size_t j;

		if (!vma || addr >= vma->vm_end || addr < vma->vm_start) {
			vma = find_vma(w->mm, addr);
			if (!vma)
				break;
			w->vma = vma;
			if (addr < vma->vm_start) {
				/* in a hole: on to the first page in the VMA */
				while (i < nr && base + ((unsigned long)idx[i] <<
						 PAGE_SHIFT) < vma->vm_start)
					i++;
				continue;
			}
		}
		/* the pages of this PMD (and VMA) share its table */
		next = pmd_addr_end(addr, vma->vm_end);
		bitmap_zero(visit, PTRS_PER_PTE);
		for (j = i; j < nr; j++) {
			unsigned long a = base + ((unsigned long)idx[j] << PAGE_SHIFT);

			if (a >= next)
				break;
			__set_bit((a - addr) >> PAGE_SHIFT, visit);
			last = a;
		}
		i = j;
		if (!dtrack_vma_walkable(vma))
			continue;
		pmd = dtrack_pmd_find(w->mm, addr);
		if (pmd && !pmd_none(READ_ONCE(*pmd)))
			dtrack_walk_one_pmd(w, pmd, addr, last + PAGE_SIZE);
		cond_resched();
	}
	w->visit = NULL;
	w->vma = NULL;
}

/*
 * The dance of clear_refs around PTE updates that remove permissions or
 * clear bits the hardware sets: announce a pending flush (so that reclaim
 * or mprotect racing with us flush too), let secondary MMUs drop their
 * copies, update, flush the TLB so that the next write/access goes through
 * the page tables again, and only then end the notifier range.
 */
char dtrack_range_owner;

void dtrack_flush_begin(struct mm_struct *mm, struct mmu_notifier_range *r,
			unsigned long start, unsigned long end, bool notify)
{
	inc_tlb_flush_pending(mm);
	dtrack_notifier_range_init(r, MMU_NOTIFY_SOFT_DIRTY, mm, start, end,
				   &dtrack_range_owner);
	if (notify && dtrack_sym.mn_invalidate_range_start &&
	    mm_has_notifiers(mm)) {
		r->flags |= MMU_NOTIFIER_RANGE_BLOCKABLE;
		dtrack_sym.mn_invalidate_range_start(r);
	}
}

static void dtrack_flush_local(void *unused)
{
	__flush_tlb_all();
}

/*
 * Flush the TLB for what the walk @w changed (one range: [first, last]
 * changed entry, nothing when no entry changed), end the notifier range.
 */
void dtrack_flush_end(struct mm_struct *mm, struct mmu_notifier_range *r,
		      const struct dtrack_walk *w, bool notify)
{
	if (w->flush_end) {
		if (dtrack_sym.flush_tlb_mm_range)
			dtrack_sym.flush_tlb_mm_range(mm, w->flush_start,
						      w->flush_end, PAGE_SHIFT,
						      false);
		else
			on_each_cpu(dtrack_flush_local, NULL, 1);
	}
	if (notify && dtrack_sym.mn_invalidate_range_end &&
	    mm_has_notifiers(mm))
		dtrack_call_mn_end(dtrack_sym.mn_invalidate_range_end, r);
	dec_tlb_flush_pending(mm);
}
