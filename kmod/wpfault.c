// SPDX-License-Identifier: GPL-2.0
/*
 * wpfault: write-fault capture.  A reset write-protects the range (the
 * soft-dirty reset of softdirty.c, which also engages the kernel's own
 * "soft-dirty needs write faults" rules for mprotect and shared mappings);
 * every write fault in the range is then recorded as it happens, by a
 * kretprobe on handle_mm_fault(), into the tracker's epoch: a bitmap (the
 * truth) plus a log of first writes with timestamps, so that a collect
 * costs O(dirty pages).  When the log is full the epoch keeps the bitmap
 * only and its answer is flagged conservative (DTRACK_EVENT_LOG_OVERFLOW).
 *
 * The fault is recorded on entry and again on return: on entry so that
 * the write lands in the epoch in which it was attempted, on return so
 * that a fault which made the PTE writable after a racing reset had
 * write-protected it is still seen by the new epoch (reset switches epochs
 * before walking the range).  A write fault that installs a writable huge
 * PMD marks the whole huge page, one that maps a large folio with writable
 * PTEs all its pages there.  If the kretprobe ever misses a fault
 * (nmissed), the epochs concerned fall back on soft-dirty (degraded).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/ptrace.h>
#include "dtrack.h"

/*
 * wpfault trackers in existence: until there is one, every page fault of
 * the system leaves the probe's entry handler after this one load.  Not a
 * static key: patching the branch while other CPUs fault through it (the
 * netlink fuzzer creating and destroying trackers) oopsed 6.12 guests with
 * a stray int3 in the handler, as re-registering the probe did.
 */
static atomic_t dtrack_wp_users = ATOMIC_INIT(0);
static bool dtrack_rp_registered;
/*
 * Bumped by every wpfault epoch switch, under the tracker's lock; read on
 * entry under the same lock as the mark: a fault that finds the same value
 * on return was recorded in an epoch that is still running.
 */
static atomic_t dtrack_wp_gen = ATOMIC_INIT(0);

struct dtrack_rp_data {
	struct mm_struct *mm;
	unsigned long addr;
	int gen;
	bool maybe_huge;		/* the fault may map a huge PMD or large folio */
};

/* A wpfault tracker switches epochs (t->lock held, before its walk). */
void dtrack_wpfault_epoch_switch(void)
{
	atomic_inc(&dtrack_wp_gen);
}

void dtrack_wpfault_users(int delta)
{
	atomic_add(delta, &dtrack_wp_users);
}

/*
 * The span a write fault at @addr of @mm made writable at once, in
 * [*s, *e): a writable huge PMD, or the pages of a large folio mapped by
 * writable PTEs (6.12 maps a whole mTHP folio in one fault: anonymous,
 * shmem, swap-in), else the page.  Called in the faulting context after the
 * fault, of current->mm or with @mm's mmap_lock still held (see
 * dtrack_fault_span_blind()); read like GUP-fast (page tables are not
 * freed while IRQs are off) and without a folio reference: a folio freed
 * meanwhile was zapped, which the notifier marks conservatively, so a
 * stale size only widens the span.
 */
static void dtrack_fault_span(struct mm_struct *mm, unsigned long addr,
			      unsigned long *s, unsigned long *e)
{
	unsigned long flags, pfn, nr, idx, lo, hi, back, fwd, k;
	struct folio *folio;
	pte_t *ptep;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	pmd_t pmd;
	pte_t pte;

	*s = addr & PAGE_MASK;
	*e = *s + PAGE_SIZE;
	local_irq_save(flags);
	pgd = pgd_offset(mm, addr);
	if (pgd_none(READ_ONCE(*pgd)) || pgd_bad(READ_ONCE(*pgd)))
		goto out;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(READ_ONCE(*p4d)) || p4d_bad(READ_ONCE(*p4d)))
		goto out;
	pud = pud_offset(p4d, addr);
	if (pud_none(READ_ONCE(*pud)) || pud_bad(READ_ONCE(*pud)))
		goto out;
	pmd = READ_ONCE(*pmd_offset(pud, addr));
	lo = addr & HPAGE_PMD_MASK;
	hi = lo + HPAGE_PMD_SIZE;
	if (!pmd_present(pmd))
		goto out;
	if (pmd_trans_huge(pmd) || pmd_devmap(pmd)) {
		if (pmd_write(pmd)) {
			*s = lo;
			*e = hi;
		}
		goto out;
	}
	if (pmd_none(pmd) || pmd_bad(pmd))
		goto out;
	ptep = pte_offset_kernel(&pmd, addr);
	pte = ptep_get_lockless(ptep);
	if (!pte_present(pte) || !pte_write(pte) || pte_special(pte))
		goto out;
	pfn = pte_pfn(pte);
	if (!pfn_valid(pfn))
		goto out;
	folio = page_folio(pfn_to_page(pfn));
	nr = folio_nr_pages(folio);
	idx = pfn - folio_pfn(folio);
	if (nr < 2 || idx >= nr)
		goto out;
	/*
	 * The folio's pages around @addr within this page table, as far as
	 * they are mapped writable in a row: a shared file folio may have
	 * other pages mapped read-only, which did not change.
	 */
	back = min(idx, (*s - lo) >> PAGE_SHIFT);
	fwd = min(nr - idx, (hi - *s) >> PAGE_SHIFT);
	for (k = 1; k <= back; k++) {
		pte = ptep_get_lockless(ptep - k);
		if (!pte_present(pte) || !pte_write(pte) ||
		    pte_pfn(pte) != pfn - k)
			break;
	}
	*s -= (k - 1) << PAGE_SHIFT;
	for (k = 1; k < fwd; k++) {
		pte = ptep_get_lockless(ptep + k);
		if (!pte_present(pte) || !pte_write(pte) ||
		    pte_pfn(pte) != pfn + k)
			break;
	}
	*e = (addr & PAGE_MASK) + (k << PAGE_SHIFT);
out:
	local_irq_restore(flags);
}

/*
 * The span of a fault of another process's @mm that returned with that
 * mm's mmap_lock dropped (VM_FAULT_RETRY, VM_FAULT_COMPLETED): remote GUP
 * (/proc/PID/mem, process_vm_writev).  Its page tables cannot be read
 * like GUP-fast: freeing them only waits for the CPUs in that mm's
 * cpumask, which this one is not.  So the span is what the fault may have
 * made writable at most: the huge page around @addr.
 */
static void dtrack_fault_span_blind(unsigned long addr, bool maybe_huge,
				    unsigned long *s, unsigned long *e)
{
	*s = addr & (maybe_huge ? HPAGE_PMD_MASK : PAGE_MASK);
	*e = *s + (maybe_huge ? HPAGE_PMD_SIZE : PAGE_SIZE);
}

/*
 * Record a write fault at @addr of @mm; true if a tracker covers it.  On
 * entry (@gen not NULL) the generation is read along with the first mark.
 * On return, @blind: the span cannot be read (dtrack_fault_span_blind()).
 */
static bool dtrack_wp_record(struct mm_struct *mm, unsigned long addr,
			     int *gen, bool blind, bool maybe_huge)
{
	bool entry = gen, found = false, gen_read = false;
	unsigned long s = addr & PAGE_MASK, e = s + PAGE_SIZE;
	struct dtrack_tracker *t;
	struct dtrack_mm *dmm;

	rcu_read_lock();
	dmm = dtrack_mm_find(mm);
	if (!dmm)
		goto out;
	list_for_each_entry_rcu(t, &dmm->trackers, mm_node) {
		if (t->method != DTRACK_METHOD_WPFAULT ||
		    addr < t->start || addr >= t->end)
			continue;
		if (!entry && !found && blind)
			dtrack_fault_span_blind(addr, maybe_huge, &s, &e);
		else if (!entry && !found)
			dtrack_fault_span(mm, addr, &s, &e);
		found = true;
		spin_lock(&t->lock);
		dtrack_mark(t, t->cur, (max(s, t->start) - t->start) >> PAGE_SHIFT,
			    (min(e, t->end) - max(s, t->start)) >> PAGE_SHIFT,
			    false);
		if (gen && !gen_read) {
			*gen = atomic_read(&dtrack_wp_gen);
			gen_read = true;
		}
		spin_unlock(&t->lock);
		if (entry)
			atomic64_inc(&t->faults);
	}
out:
	rcu_read_unlock();
	return found;
}

static int dtrack_rp_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct dtrack_rp_data *d = (struct dtrack_rp_data *)ri->data;
	struct vm_area_struct *vma;

	if (likely(!atomic_read(&dtrack_wp_users)) ||
	    !(regs_get_kernel_argument(regs, 2) & FAULT_FLAG_WRITE))
		return 1;
	vma = (struct vm_area_struct *)regs_get_kernel_argument(regs, 0);
	d->mm = vma->vm_mm;
	d->addr = regs_get_kernel_argument(regs, 1);
	/*
	 * VM_NOHUGEPAGE stops new huge pages, but a shared mapping may find
	 * a large shmem folio in the page cache, allocated before or through
	 * another mapping, and 6.12's finish_fault() maps it whole.
	 */
	d->maybe_huge = !(vma->vm_flags & VM_NOHUGEPAGE) ||
			(vma->vm_flags & VM_SHARED);
	return dtrack_wp_record(d->mm, d->addr, &d->gen, false, false) ? 0 : 1;
}

/*
 * On return, only two things can need a mark: a huge PMD or the PTEs of a
 * large folio the fault made writable, and a reset that switched epochs
 * while the fault ran (its PTE may have become writable after the reset's
 * walk).  A reset bumps the generation before its walk takes the PTE
 * lock, which the fault takes after it to update the PTE: an unchanged
 * generation here means the epochs marked on entry are still running (one
 * generation read with the first mark covers every tracker marked after
 * it).
 */
static int dtrack_rp_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct dtrack_rp_data *d = (struct dtrack_rp_data *)ri->data;
	bool blind;

	if (!d->maybe_huge && atomic_read(&dtrack_wp_gen) == d->gen)
		return 0;
	blind = d->mm != current->mm &&
		(regs_return_value(regs) & (VM_FAULT_RETRY | VM_FAULT_COMPLETED));
	dtrack_wp_record(d->mm, d->addr, NULL, blind, d->maybe_huge);
	return 0;
}

static struct kretprobe dtrack_rp = {
	.kp.symbol_name = "handle_mm_fault",
	.entry_handler = dtrack_rp_entry,
	.handler = dtrack_rp_return,
	.data_size = sizeof(struct dtrack_rp_data),
};

bool dtrack_wpfault_available(void)
{
	return dtrack_rp_registered;
}

/* Faults the probe may have missed since load (compared across epochs). */
unsigned long dtrack_wpfault_missed(void)
{
	if (!dtrack_rp_registered)
		return 0;
	return READ_ONCE(dtrack_rp.nmissed) + READ_ONCE(dtrack_rp.kp.nmissed);
}

int __init dtrack_wpfault_init(void)
{
	int ret;

	/* faults sleep: many may be in flight at once */
	dtrack_rp.maxactive = clamp_t(int, 16 * num_possible_cpus(), 64, 4096);
	ret = register_kretprobe(&dtrack_rp);
	if (ret) {
		pr_warn("cannot probe handle_mm_fault (%d): wpfault unavailable\n",
			ret);
		return 0;
	}
	dtrack_rp_registered = true;
	return 0;
}

void dtrack_wpfault_exit(void)
{
	if (dtrack_rp_registered)
		unregister_kretprobe(&dtrack_rp);
	dtrack_rp_registered = false;
}
