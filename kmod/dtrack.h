/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interfaces between the dtrack module's files.  See README.md in
 * this directory for the design (layering of trackers over the single
 * soft-dirty / dirty / accessed bit of each PTE, epochs, locking).
 */
#ifndef _DTRACK_H
#define _DTRACK_H

#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/refcount.h>
#include <linux/workqueue.h>
#include <linux/uidgid.h>
#include <uapi/linux/dtrack.h>
#include "compat.h"

#ifndef CONFIG_X86_64
#error "dtrack updates x86-64 page table entries directly"
#endif

#define DTRACK_MODULE_VERSION "0.3.0"

/* Per-PTE bit a method reads; trackers of one class share that bit. */
enum dtrack_class {
	DTRACK_CLASS_SOFTDIRTY,		/* softdirty and wpfault trackers */
	DTRACK_CLASS_HWDIRTY,
	DTRACK_CLASS_ACCESSED,
};

/* One entry of the wpfault log: first write to a page in an epoch. */
struct dtrack_log_entry {
	u32 idx;			/* page index in the tracked range */
	u32 cpu;
	u64 ns;				/* local_clock() of the fault */
};

/* Dirty set of one epoch (current, or the one being collected). */
struct dtrack_epoch {
	unsigned long *bitmap;		/* one bit per page of the range */
	struct dtrack_log_entry *log;	/* wpfault only, else NULL */
	u32 log_len;			/* entries used, <= log_size */
	bool overflow;			/* log too small: bitmap is the truth */
	bool degraded;			/* a fault may have been missed */
};

struct dtrack_mm;

struct dtrack_tracker {
	u32 id;
	u32 method;
	u32 flags;			/* DTRACK_F_* */
	u32 portid;			/* creating socket, 0 if persistent */
	refcount_t ref;
	struct dtrack_mm *dmm;
	/* dmm->trackers: RCU readers; writers hold dtrack_reg_lock + dmm->op_lock */
	struct list_head mm_node;
	struct pid *pid;
	kuid_t owner;			/* euid of the creator */
	unsigned long start, end;	/* [start, end), page aligned */
	unsigned long npages;

	/*
	 * @lock protects @cur, @snap, the epochs' logs and the switch of
	 * epochs; bitmaps are set with atomic bitops under it.  It is a leaf
	 * lock taken from fault (kretprobe) and mmu notifier context.
	 */
	spinlock_t lock;
	struct dtrack_epoch ep[2];
	struct dtrack_epoch *cur;	/* epoch being recorded */
	struct dtrack_epoch *snap;	/* epoch being collected, else NULL */
	u32 log_size;

	/* Below: under dmm->op_lock. */
	u64 epoch;
	u64 collects;
	u64 resets;
	u64 last_dirty;
	u64 last_collect_ns;
	unsigned long kprobe_missed;	/* kretprobe nmissed at last reset */
	/*
	 * wpfault: the range was fully write-protected at the last reset and
	 * no UNMAP (mremap may move writable PTEs in) happened in the mm since
	 * dmm->unmap_seq read then: the next reset may visit logged pages only.
	 */
	bool wp_walked;
	int wp_unmap_seq;

	atomic_t state;			/* enum dtrack_state */
	atomic_t end_event;		/* enum dtrack_event ending it, or 0 */
	atomic_t overflow_event;	/* LOG_OVERFLOW to send */
	atomic_t check_unmap;		/* the range may be fully unmapped */
	atomic64_t faults;
	atomic64_t log_overflows;
	atomic64_t false_positives;
	struct rcu_head rcu;
};

/* Everything dtrack knows about one tracked mm. */
struct dtrack_mm {
	struct mmu_notifier mn;		/* holds a reference on mm (mm_count) */
	struct mm_struct *mm;
	struct hlist_node hnode;	/* dtrack_mm_hash, RCU */
	struct list_head trackers;
	unsigned int nr_trackers;	/* under dtrack_reg_lock */
	/*
	 * Serializes the page-table passes (collect, reset, creation) of
	 * all trackers of this mm, so that the transfer of a cleared bit to
	 * the other trackers of its class cannot race with their own resets.
	 * Order: dtrack_reg_lock -> op_lock -> mmap_lock -> PTL -> t->lock.
	 */
	struct mutex op_lock;
	atomic_t unmap_seq;		/* UNMAP invalidations anywhere in mm */
	struct rcu_head mn_rcu;
};

/* Runs of a collected epoch, streamed by the COLLECT dump. */
struct dtrack_run {
	u64 addr;
	u64 pages;
};

struct dtrack_result {
	u32 tracker_id;
	u32 flags;			/* DTRACK_RESULT_* */
	u64 epoch;
	u64 nr_dirty;
	size_t nr_runs;
	struct dtrack_run *runs;
	/*
	 * Instead of runs (DTRACK_COLLECT_BITMAP): the epoch's bitmap words
	 * from the first to the last one with a page; bit 0 = @bits_addr.
	 */
	unsigned long *bits;
	size_t nr_words;
	u64 bits_addr;
};

/* symbols.c */
struct dtrack_symbols {
	bool (*ptrace_may_access)(struct task_struct *task, unsigned int mode);
	void (*flush_tlb_mm_range)(struct mm_struct *mm, unsigned long start,
				   unsigned long end, unsigned int stride_shift,
				   bool freed_tables);
	int (*mn_invalidate_range_start)(struct mmu_notifier_range *r);
	void *mn_invalidate_range_end;	/* see dtrack_call_mn_end() */
};
extern struct dtrack_symbols dtrack_sym;
int dtrack_symbols_init(void);

/* pgwalk.c */
struct dtrack_walk;
/* [addr, end) inside one PTE table, @pte maps addr; PTE lock held */
typedef void (*dtrack_ptes_fn)(struct dtrack_walk *w, unsigned long addr,
			       unsigned long end, pte_t *pte);
typedef void (*dtrack_pmd_fn)(struct dtrack_walk *w, unsigned long addr,
			      unsigned long end, pmd_t *pmdp);
struct dtrack_walk {
	struct mm_struct *mm;
	struct vm_area_struct *vma;
	dtrack_ptes_fn ptes;		/* under the PTE lock, once per table */
	dtrack_pmd_fn pmd;		/* huge or migration pmd, pmd lock held */
	/* [start, end) could not be walked (its pmd kept changing) */
	void (*skip)(struct dtrack_walk *w, unsigned long start,
		     unsigned long end);
	void *priv;
	/*
	 * dtrack_walk_pages(): the pages of the table to visit, bit i = page
	 * addr + i pages of the w->ptes call; NULL: all of [addr, end).
	 */
	const unsigned long *visit;
	/* entries changed by callbacks: the TLB range to flush (end 0: none) */
	unsigned long flush_start, flush_end;
};

static inline void dtrack_walk_changed(struct dtrack_walk *w,
				       unsigned long start, unsigned long end)
{
	if (!w->flush_end || start < w->flush_start)
		w->flush_start = start;
	if (end > w->flush_end)
		w->flush_end = end;
}

void dtrack_walk_range(struct dtrack_walk *w, unsigned long start,
		       unsigned long end);
void dtrack_walk_pages(struct dtrack_walk *w, unsigned long base,
		       const u32 *idx, size_t nr);
bool dtrack_vma_walkable(struct vm_area_struct *vma);
struct folio *dtrack_pte_folio(struct vm_area_struct *vma, pte_t pte);
/*
 * The owner of the notifier ranges around dtrack's own PTE updates, which
 * lose nothing (they transfer bits) and which dtrack's notifier ignores.
 * Not the task doing them: reclaim that task enters while it allocates
 * unmaps other pages of the same mm, and those events count.
 */
extern char dtrack_range_owner;
void dtrack_flush_begin(struct mm_struct *mm, struct mmu_notifier_range *r,
			unsigned long start, unsigned long end, bool notify);
void dtrack_flush_end(struct mm_struct *mm, struct mmu_notifier_range *r,
		      const struct dtrack_walk *w, bool notify);

/*
 * Read-modify-write of a PTE/PMD that hardware may update (A/D bits)
 * concurrently; the caller holds the page-table lock, so only hardware
 * races with it.  @expr computes the new value from @old.
 *
 * x86 hardware writes an entry only to set Accessed or Dirty where it is
 * clear (a locked operation; a non-present entry is never written): an
 * entry that has both already cannot change under the lock, and a plain
 * store replaces it.  That is the common case of a reset (every page
 * written since the last one), where one locked cmpxchg per entry was a
 * large share of the pass, most of all under emulation.
 */
#ifdef CONFIG_X86
#define DTRACK_HW_SETTLED(v) \
	(((v) & (_PAGE_ACCESSED | _PAGE_DIRTY)) == (_PAGE_ACCESSED | _PAGE_DIRTY))
#else
#define DTRACK_HW_SETTLED(v)	false
#endif
#define DTRACK_ENTRY_UPDATE(word, mk, val, old, expr) ({		\
	typeof(*(word)) __o = READ_ONCE(*(word)), __n;			\
	typeof(mk(0)) old;						\
	for (;;) {							\
		old = mk(__o);						\
		__n = val(expr);					\
		if (__n == __o)						\
			break;						\
		if (DTRACK_HW_SETTLED(__o)) {				\
			WRITE_ONCE(*(word), __n);			\
			break;						\
		}							\
		if (try_cmpxchg((word), &__o, __n))			\
			break;						\
	}								\
	old;								\
})
#define DTRACK_PTE_UPDATE(ptep, old, expr) \
	DTRACK_ENTRY_UPDATE(&(ptep)->pte, __pte, pte_val, old, expr)
#define DTRACK_PMD_UPDATE(pmdp, old, expr) \
	DTRACK_ENTRY_UPDATE(&(pmdp)->pmd, __pmd, pmd_val, old, expr)

/* registry.c */
extern struct mutex dtrack_reg_lock;
extern unsigned int dtrack_max_trackers;
extern unsigned long dtrack_max_pages;
extern unsigned long dtrack_max_tracker_pages;
extern unsigned int dtrack_log_entries;
enum dtrack_class dtrack_method_class(u32 method);
u32 dtrack_methods_available(void);
void dtrack_registry_counts(u32 *nr_trackers, u64 *nr_pages);
int dtrack_tracker_create(pid_t nr, u64 addr, u64 len, u32 method, u32 flags,
			  u32 portid, u32 *id, struct netlink_ext_ack *extack);
int dtrack_tracker_destroy(u32 id);
struct dtrack_tracker *dtrack_tracker_get(u32 id);
void dtrack_tracker_put(struct dtrack_tracker *t);
struct dtrack_tracker *dtrack_tracker_next(u32 *id);
void dtrack_mark(struct dtrack_tracker *t, struct dtrack_epoch *ep,
		 unsigned long first, unsigned long nr, bool conservative);
void dtrack_mark_bits(struct dtrack_tracker *t, struct dtrack_epoch *ep,
		      unsigned long base, const unsigned long *bits,
		      unsigned int n);
void dtrack_mark_span(struct dtrack_tracker *t, struct dtrack_epoch *ep,
		      unsigned long start, unsigned long end, bool conservative);
void dtrack_mark_addr(struct dtrack_tracker *t, unsigned long start,
		      unsigned long end, bool conservative);
void dtrack_mark_class(struct dtrack_tracker *t, enum dtrack_class class,
		       unsigned long start, unsigned long end, bool conservative);
void dtrack_mark_class_bits(struct dtrack_tracker *t, enum dtrack_class class,
			    unsigned long base, const unsigned long *bits,
			    unsigned int n);
/*
 * Where a pass over the page tables hands the pages it found: @self's
 * epoch @into and, when the pass clears the bit (@clear), every other
 * tracker of @class on the mm, from which the cleared bit hides them.
 * The dmm's op_lock, held by the passes, keeps the tracker list stable.
 */
struct dtrack_hand {
	struct dtrack_tracker *self;
	struct dtrack_epoch *into;
	enum dtrack_class class;
	bool clear;
	bool into_has;		/* dtrack_hand_bits(): the pages are in @into */
};

void dtrack_hand(const struct dtrack_hand *h, unsigned long start,
		 unsigned long end, bool conservative);
void dtrack_hand_bits(const struct dtrack_hand *h, unsigned long base,
		      const unsigned long *bits, unsigned int n);
void dtrack_queue_events(void);
struct dtrack_mm *dtrack_mm_find(struct mm_struct *mm);
int dtrack_registry_init(void);
void dtrack_registry_exit(void);

/* collect.c */
int dtrack_collect(struct dtrack_tracker *t, bool reset, bool bitmap,
		   struct dtrack_result *res);
int dtrack_tracker_start(struct dtrack_tracker *t);
void dtrack_result_free(struct dtrack_result *res);

/* softdirty.c: softdirty and wpfault share the soft-dirty bit */
void dtrack_sd_scan(struct dtrack_tracker *t, struct dtrack_epoch *into);
void dtrack_sd_reset(struct dtrack_tracker *t, struct dtrack_epoch *snap);
void dtrack_sd_reset_pages(struct dtrack_tracker *t, struct dtrack_epoch *snap,
			   const u32 *idx, size_t nr);
void dtrack_sd_vmas(struct dtrack_tracker *t, struct dtrack_epoch *into,
		    bool clear);
bool dtrack_sd_vmas_flagged(struct dtrack_tracker *t);

/* hwdirty.c: hwdirty and accessed */
void dtrack_hw_scan(struct dtrack_tracker *t, struct dtrack_epoch *into);
void dtrack_hw_reset(struct dtrack_tracker *t, struct dtrack_epoch *snap);

/* wpfault.c */
int dtrack_wpfault_init(void);
void dtrack_wpfault_exit(void);
bool dtrack_wpfault_available(void);
unsigned long dtrack_wpfault_missed(void);
void dtrack_wpfault_users(int delta);
void dtrack_wpfault_epoch_switch(void);

/* netlink.c */
int dtrack_netlink_init(void);
void dtrack_netlink_exit(void);
void dtrack_notify(u32 id, u32 event);

#endif /* _DTRACK_H */
