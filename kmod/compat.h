/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where dtrack looks at LINUX_VERSION_CODE: the differences
 * between the kernels it supports (Debian 6.1 and 6.12) are hidden behind
 * the helpers below so that the rest of the module reads the same on both.
 */
#ifndef _DTRACK_COMPAT_H
#define _DTRACK_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <net/genetlink.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define dtrack_notifier_range_init(range, event, mm, start, end, owner) \
	mmu_notifier_range_init_owner(range, event, 0, mm, start, end, owner)
#define dtrack_genl_dump_attrs(cb)	(genl_info_dump(cb)->attrs)
#define DTRACK_VM_FLAGS_CLEAR(vma, flags) vm_flags_clear(vma, flags)
typedef void (*dtrack_mn_end_fn)(struct mmu_notifier_range *r);
static inline void dtrack_call_mn_end(void *fn, struct mmu_notifier_range *r)
{
	((dtrack_mn_end_fn)fn)(r);
}
#else
#define dtrack_notifier_range_init(range, event, mm, start, end, owner) \
	mmu_notifier_range_init_owner(range, event, 0, NULL, mm, start, end, owner)
#define dtrack_genl_dump_attrs(cb)	(genl_dumpit_info(cb)->attrs)
#define DTRACK_VM_FLAGS_CLEAR(vma, flags) ((vma)->vm_flags &= ~(flags))
typedef void (*dtrack_mn_end_fn)(struct mmu_notifier_range *r,
				 bool only_end);
static inline void dtrack_call_mn_end(void *fn, struct mmu_notifier_range *r)
{
	((dtrack_mn_end_fn)fn)(r, false);
}
#endif

/* The PTE bits pte_dirty() tests (6.6+: also the shadow-stack SavedDirty). */
#ifdef _PAGE_SAVED_DIRTY
#define DTRACK_PTE_DIRTY_BITS	(_PAGE_DIRTY | _PAGE_SAVED_DIRTY)
#else
#define DTRACK_PTE_DIRTY_BITS	_PAGE_DIRTY
#endif

#endif /* _DTRACK_COMPAT_H */
