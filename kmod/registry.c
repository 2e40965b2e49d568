// SPDX-License-Identifier: GPL-2.0
/*
 * The tracker registry: ids, limits, lifetime and the per-mm state shared
 * by the trackers of one address space (mmu notifier, tracker list).
 *
 * Lifetime: a tracker is destroyed by DTRACK_CMD_DESTROY, by the close of
 * its creator's netlink socket (unless DTRACK_F_PERSISTENT), by the exit of
 * its target (mmu notifier ->release) or by the unmapping of its whole
 * range; the last two mark it DTRACK_STATE_ENDED at once and let a work item
 * send the event and destroy it.  Destroyed trackers leave the id table and
 * their mm's list at once; their memory goes with the last reference (a
 * collect dump may hold one).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hashtable.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/pid.h>
#include <linux/ptrace.h>
#include <linux/cred.h>
#include <linux/sched/coredump.h>
#include <linux/sched/signal.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <net/net_namespace.h>
#include <linux/sched/clock.h>
#include "dtrack.h"

unsigned int dtrack_max_trackers = 1024;
module_param_named(max_trackers, dtrack_max_trackers, uint, 0644);
MODULE_PARM_DESC(max_trackers, "Maximum number of trackers");

unsigned long dtrack_max_pages = 1UL << 24;	/* 64 GiB of 4 KiB pages */
module_param_named(max_pages, dtrack_max_pages, ulong, 0644);
MODULE_PARM_DESC(max_pages, "Maximum pages tracked by all trackers");

unsigned long dtrack_max_tracker_pages = 1UL << 22;	/* 16 GiB */
module_param_named(max_tracker_pages, dtrack_max_tracker_pages, ulong, 0644);
MODULE_PARM_DESC(max_tracker_pages, "Maximum pages of one tracker");

unsigned int dtrack_log_entries = 16384;
module_param_named(log_entries, dtrack_log_entries, uint, 0444);
MODULE_PARM_DESC(log_entries, "wpfault log entries per epoch and tracker");

/* Protects the id table, the counters, the mm hash and the mm lists. */
DEFINE_MUTEX(dtrack_reg_lock);
static DEFINE_IDR(dtrack_idr);
static u32 dtrack_nr_trackers;
static u64 dtrack_nr_pages;
/* mm -> dtrack_mm for the fault path; RCU readers, writers hold reg_lock */
static DEFINE_HASHTABLE(dtrack_mm_hash, 6);

static void dtrack_event_workfn(struct work_struct *work);
static DECLARE_WORK(dtrack_event_work, dtrack_event_workfn);
static bool dtrack_exiting;

enum dtrack_class dtrack_method_class(u32 method)
{
	switch (method) {
	case DTRACK_METHOD_HWDIRTY:
		return DTRACK_CLASS_HWDIRTY;
	case DTRACK_METHOD_ACCESSED:
		return DTRACK_CLASS_ACCESSED;
	default:
		return DTRACK_CLASS_SOFTDIRTY;
	}
}

u32 dtrack_methods_available(void)
{
	u32 m = BIT(DTRACK_METHOD_HWDIRTY) | BIT(DTRACK_METHOD_ACCESSED);

	if (IS_ENABLED(CONFIG_MEM_SOFT_DIRTY)) {
		m |= BIT(DTRACK_METHOD_SOFTDIRTY);
		if (dtrack_wpfault_available())
			m |= BIT(DTRACK_METHOD_WPFAULT);
	}
	return m;
}

void dtrack_registry_counts(u32 *nr_trackers, u64 *nr_pages)
{
	mutex_lock(&dtrack_reg_lock);
	*nr_trackers = dtrack_nr_trackers;
	*nr_pages = dtrack_nr_pages;
	mutex_unlock(&dtrack_reg_lock);
}

struct dtrack_mm *dtrack_mm_find(struct mm_struct *mm)
{
	struct dtrack_mm *dmm;

	hash_for_each_possible_rcu(dtrack_mm_hash, dmm, hnode, (unsigned long)mm)
		if (dmm->mm == mm)
			return dmm;
	return NULL;
}

/*
 * Record pages [first, first + nr) (indexes in t's range) as dirty in @ep.
 * Caller holds t->lock unless @ep is private to it.  @conservative marks
 * pages that may not have been written (counted as false positives).
 */
void dtrack_mark(struct dtrack_tracker *t, struct dtrack_epoch *ep,
		 unsigned long first, unsigned long nr, bool conservative)
{
	unsigned long i, end = min(first + nr, t->npages);
	bool overflowed = false;
	u64 ns = 0;

	if (first >= end)
		return;
	/* nothing to log or count: every writer of the bitmap holds t->lock */
	if (!conservative && (!ep->log || ep->overflow)) {
		bitmap_set(ep->bitmap, first, end - first);
		return;
	}
	for (i = first; i < end; i++) {
		if (test_and_set_bit(i, ep->bitmap))
			continue;
		if (conservative)
			atomic64_inc(&t->false_positives);
		if (!ep->log || ep->overflow)
			continue;
		if (ep->log_len < t->log_size) {
			struct dtrack_log_entry *e = &ep->log[ep->log_len++];

			/*
			 * One clock read per mark (a huge page: 512 entries),
			 * of local_clock(): ktime_get_ns() reads the
			 * clocksource, HPET in the 6.1 test VM, in every
			 * recorded fault.
			 */
			if (!ns)
				ns = local_clock();
			e->idx = i;
			e->cpu = raw_smp_processor_id();
			e->ns = ns;
		} else {
			ep->overflow = true;
			overflowed = true;
		}
	}
	/* only the live epoch's overflow is news: not a snapshot's or a copy's */
	if (overflowed && ep == t->cur) {
		atomic64_inc(&t->log_overflows);
		atomic_set(&t->overflow_event, 1);
		dtrack_queue_events();
	}
}

/*
 * Mark the pages of @bits (bit i: page @base + i pages, @n bits, bits past
 * @n clear) in @ep, t->lock held: a shifted word-wise OR when there is
 * nothing to log, else run by run.  Not conservative.
 */
void dtrack_mark_bits(struct dtrack_tracker *t, struct dtrack_epoch *ep,
		      unsigned long base, const unsigned long *bits,
		      unsigned int n)
{
	unsigned long first, *dst, v, hi;
	unsigned int i, sh, s, e;

	if ((ep->log && !ep->overflow) || base < t->start ||
	    base + ((unsigned long)n << PAGE_SHIFT) > t->end) {
		for_each_set_bitrange(s, e, bits, n)
			dtrack_mark_span(t, ep,
					 base + ((unsigned long)s << PAGE_SHIFT),
					 base + ((unsigned long)e << PAGE_SHIFT),
					 false);
		return;
	}
	first = (base - t->start) >> PAGE_SHIFT;
	dst = ep->bitmap + first / BITS_PER_LONG;
	sh = first % BITS_PER_LONG;
	for (i = 0; i < BITS_TO_LONGS(n); i++) {
		v = bits[i];
		if (!v)
			continue;
		dst[i] |= v << sh;
		/* never touch a word past the last page's */
		hi = sh ? v >> (BITS_PER_LONG - sh) : 0;
		if (hi)
			dst[i + 1] |= hi;
	}
}

/* Mark [start, end) (addresses, clamped to t's range) in @ep; t->lock held. */
void dtrack_mark_span(struct dtrack_tracker *t, struct dtrack_epoch *ep,
		      unsigned long start, unsigned long end, bool conservative)
{
	start = max(start, t->start);
	end = min(end, t->end);
	if (start < end)
		dtrack_mark(t, ep, (start - t->start) >> PAGE_SHIFT,
			    (end - start) >> PAGE_SHIFT, conservative);
}

/* Mark [start, end) (addresses, clamped to t's range) in the live epochs. */
void dtrack_mark_addr(struct dtrack_tracker *t, unsigned long start,
		      unsigned long end, bool conservative)
{
	unsigned long first, last;

	start = max(start, t->start);
	end = min(end, t->end);
	if (start >= end)
		return;
	first = (start - t->start) >> PAGE_SHIFT;
	last = (end - t->start + PAGE_SIZE - 1) >> PAGE_SHIFT;
	spin_lock(&t->lock);
	dtrack_mark(t, t->cur, first, last - first, conservative);
	if (t->snap)
		dtrack_mark(t, t->snap, first, last - first, false);
	spin_unlock(&t->lock);
}

/*
 * A pass that clears a bit trackers of @class share (soft-dirty, or the
 * hardware dirty/accessed bit) hides the pages it found from the other
 * trackers of the class on the mm: hand them [start, end) too.  The
 * dmm's op_lock, held by the caller, keeps the list stable.
 */
void dtrack_mark_class(struct dtrack_tracker *t, enum dtrack_class class,
		       unsigned long start, unsigned long end, bool conservative)
{
	struct dtrack_tracker *u;

	list_for_each_entry(u, &t->dmm->trackers, mm_node)
		if (u != t && dtrack_method_class(u->method) == class)
			dtrack_mark_addr(u, start, end, conservative);
}

/* dtrack_mark_class() for the pages of @bits, as in dtrack_mark_bits(). */
void dtrack_mark_class_bits(struct dtrack_tracker *t, enum dtrack_class class,
			    unsigned long base, const unsigned long *bits,
			    unsigned int n)
{
	struct dtrack_tracker *u;
	unsigned int s, e;

	list_for_each_entry(u, &t->dmm->trackers, mm_node) {
		if (u == t || dtrack_method_class(u->method) != class)
			continue;
		for_each_set_bitrange(s, e, bits, n)
			dtrack_mark_addr(u, base + ((unsigned long)s << PAGE_SHIFT),
					 base + ((unsigned long)e << PAGE_SHIFT),
					 false);
	}
}

/* Hand [start, end) over as described at struct dtrack_hand. */
void dtrack_hand(const struct dtrack_hand *h, unsigned long start,
		 unsigned long end, bool conservative)
{
	struct dtrack_tracker *t = h->self;

	spin_lock(&t->lock);
	dtrack_mark_span(t, h->into, start, end, conservative);
	spin_unlock(&t->lock);
	if (h->clear)
		dtrack_mark_class(t, h->class, start, end, conservative);
}

/*
 * Hand the pages of @bits (bit i: page @base + i pages) over like
 * dtrack_hand(), taking each tracker's lock once for all of them.
 */
void dtrack_hand_bits(const struct dtrack_hand *h, unsigned long base,
		      const unsigned long *bits, unsigned int n)
{
	struct dtrack_tracker *t = h->self;

	if (!h->into_has) {
		spin_lock(&t->lock);
		dtrack_mark_bits(t, h->into, base, bits, n);
		spin_unlock(&t->lock);
	}
	if (h->clear)
		dtrack_mark_class_bits(t, h->class, base, bits, n);
}

void dtrack_queue_events(void)
{
	if (!READ_ONCE(dtrack_exiting))
		queue_work(system_wq, &dtrack_event_work);
}

/* --- mmu notifier ------------------------------------------------------ */

static struct dtrack_mm *dtrack_mn_to_dmm(struct mmu_notifier *mn)
{
	return container_of(mn, struct dtrack_mm, mn);
}

/* Does @event destroy information @method relies on? (see README.md) */
static bool dtrack_event_loses(enum mmu_notifier_event event, u32 method)
{
	switch (event) {
	case MMU_NOTIFY_PROTECTION_VMA:
	case MMU_NOTIFY_RELEASE:
		return false;
	case MMU_NOTIFY_PROTECTION_PAGE:	/* folio_mkclean(), fork */
		return method == DTRACK_METHOD_HWDIRTY;
	case MMU_NOTIFY_SOFT_DIRTY:		/* clear_refs of someone else */
		return method == DTRACK_METHOD_SOFTDIRTY;
	default:				/* zap, unmap, migrate, KSM, THP */
		return true;
	}
}

static void dtrack_mn_mark(struct dtrack_mm *dmm,
			   const struct mmu_notifier_range *range, bool start)
{
	struct dtrack_tracker *t;
	bool queue = false;

	/* dtrack's own PTE updates lose nothing: they transfer bits */
	if (range->owner == &dtrack_range_owner)
		return;
	/* mremap may move writable PTEs from anywhere into a range */
	if (start && range->event == MMU_NOTIFY_UNMAP)
		atomic_inc(&dmm->unmap_seq);
	rcu_read_lock();
	list_for_each_entry_rcu(t, &dmm->trackers, mm_node) {
		if (range->end <= t->start || range->start >= t->end)
			continue;
		if (dtrack_event_loses(range->event, t->method))
			dtrack_mark_addr(t, range->start, range->end, true);
		if (start && range->event == MMU_NOTIFY_UNMAP) {
			atomic_set(&t->check_unmap, 1);
			queue = true;
		}
	}
	rcu_read_unlock();
	if (queue)
		dtrack_queue_events();
}

/*
 * Marking at both ends of an invalidation: at start for what the PTEs held
 * until then, at end for writes that hit a PTE between one of our resets
 * and its destruction inside the invalidated range.
 */
static int dtrack_mn_invalidate_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	dtrack_mn_mark(dtrack_mn_to_dmm(mn), range, true);
	return 0;
}

static void dtrack_mn_invalidate_end(struct mmu_notifier *mn,
				     const struct mmu_notifier_range *range)
{
	dtrack_mn_mark(dtrack_mn_to_dmm(mn), range, false);
}

/* Someone (reclaim, idle tracking) cleared accessed bits in [start, end). */
static void dtrack_mn_young(struct mmu_notifier *mn, unsigned long start,
			    unsigned long end)
{
	struct dtrack_mm *dmm = dtrack_mn_to_dmm(mn);
	struct dtrack_tracker *t;

	rcu_read_lock();
	list_for_each_entry_rcu(t, &dmm->trackers, mm_node)
		if (t->method == DTRACK_METHOD_ACCESSED)
			dtrack_mark_addr(t, start, end, true);
	rcu_read_unlock();
}

static int dtrack_mn_clear_flush_young(struct mmu_notifier *mn,
				       struct mm_struct *mm,
				       unsigned long start, unsigned long end)
{
	dtrack_mn_young(mn, start, end);
	return 0;
}

static int dtrack_mn_clear_young(struct mmu_notifier *mn,
				 struct mm_struct *mm,
				 unsigned long start, unsigned long end)
{
	dtrack_mn_young(mn, start, end);
	return 0;
}

/* The target's address space is going away (exit, exec). */
static void dtrack_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct dtrack_mm *dmm = dtrack_mn_to_dmm(mn);
	struct dtrack_tracker *t;

	rcu_read_lock();
	list_for_each_entry_rcu(t, &dmm->trackers, mm_node) {
		atomic_cmpxchg(&t->end_event, 0, DTRACK_EVENT_TARGET_EXIT);
		atomic_set(&t->state, DTRACK_STATE_ENDED);
	}
	rcu_read_unlock();
	dtrack_queue_events();
}

static struct mmu_notifier *dtrack_mn_alloc(struct mm_struct *mm)
{
	struct dtrack_mm *dmm;

	dmm = kzalloc(sizeof(*dmm), GFP_KERNEL);
	if (!dmm)
		return ERR_PTR(-ENOMEM);
	dmm->mm = mm;
	INIT_LIST_HEAD(&dmm->trackers);
	INIT_HLIST_NODE(&dmm->hnode);
	mutex_init(&dmm->op_lock);
	return &dmm->mn;
}

/* After an SRCU grace period; the fault path may still look: RCU free. */
static void dtrack_mn_free(struct mmu_notifier *mn)
{
	kfree_rcu(dtrack_mn_to_dmm(mn), mn_rcu);
}

static const struct mmu_notifier_ops dtrack_mn_ops = {
	.release = dtrack_mn_release,
	.clear_flush_young = dtrack_mn_clear_flush_young,
	.clear_young = dtrack_mn_clear_young,
	.invalidate_range_start = dtrack_mn_invalidate_start,
	.invalidate_range_end = dtrack_mn_invalidate_end,
	.alloc_notifier = dtrack_mn_alloc,
	.free_notifier = dtrack_mn_free,
};

/* --- trackers ---------------------------------------------------------- */

static bool dtrack_may_attach(struct task_struct *task);

static void dtrack_tracker_free(struct dtrack_tracker *t)
{
	int i;

	for (i = 0; i < 2; i++) {
		kvfree(t->ep[i].bitmap);
		kvfree(t->ep[i].log);
	}
	if (t->dmm)
		mmu_notifier_put(&t->dmm->mn);
	put_pid(t->pid);
	kfree(t);
}

void dtrack_tracker_put(struct dtrack_tracker *t)
{
	if (refcount_dec_and_test(&t->ref))
		dtrack_tracker_free(t);
}

/*
 * Trackers are visible to the user who created them and to whoever may
 * ptrace their target; to others they do not exist (-ENOENT).
 */
static bool dtrack_tracker_visible(struct dtrack_tracker *t)
{
	struct task_struct *task;
	bool ok;

	if (uid_eq(current_euid(), t->owner))
		return true;
	task = get_pid_task(t->pid, PIDTYPE_PID);
	if (!task)
		return capable(CAP_SYS_PTRACE);
	ok = dtrack_may_attach(task);
	put_task_struct(task);
	return ok;
}

struct dtrack_tracker *dtrack_tracker_get(u32 id)
{
	struct dtrack_tracker *t;

	mutex_lock(&dtrack_reg_lock);
	t = idr_find(&dtrack_idr, id);
	if (t && !dtrack_tracker_visible(t))
		t = NULL;
	if (t)
		refcount_inc(&t->ref);
	mutex_unlock(&dtrack_reg_lock);
	return t;
}

/* The tracker with the smallest id >= *id, referenced, or NULL. */
struct dtrack_tracker *dtrack_tracker_next(u32 *id)
{
	struct dtrack_tracker *t;
	int next = *id;

	mutex_lock(&dtrack_reg_lock);
	/* skips the NULL entries of trackers being created */
	while ((t = idr_get_next(&dtrack_idr, &next)) &&
	       !dtrack_tracker_visible(t))
		next++;
	if (t) {
		refcount_inc(&t->ref);
		*id = next;
	}
	mutex_unlock(&dtrack_reg_lock);
	return t;
}

/* Unlink @t from everything; the caller's reference keeps it alive. */
static void dtrack_tracker_unlink(struct dtrack_tracker *t)
{
	struct dtrack_mm *dmm = t->dmm;

	lockdep_assert_held(&dtrack_reg_lock);
	idr_remove(&dtrack_idr, t->id);
	dtrack_nr_trackers--;
	dtrack_nr_pages -= t->npages;
	if (!dmm)
		return;
	mutex_lock(&dmm->op_lock);
	list_del_rcu(&t->mm_node);
	mutex_unlock(&dmm->op_lock);
	if (t->method == DTRACK_METHOD_WPFAULT)
		dtrack_wpfault_users(-1);
	if (!--dmm->nr_trackers)
		hash_del_rcu(&dmm->hnode);
	atomic_set(&t->state, DTRACK_STATE_ENDED);
	/* fault and notifier paths may still walk past t (or dmm's hnode) */
	synchronize_rcu();
}

static void dtrack_tracker_destroy_locked(struct dtrack_tracker *t, u32 event)
{
	u32 id = t->id;

	dtrack_tracker_unlink(t);
	dtrack_tracker_put(t);
	if (event && !dtrack_exiting)
		dtrack_notify(id, event);
}

int dtrack_tracker_destroy(u32 id)
{
	struct dtrack_tracker *t;

	mutex_lock(&dtrack_reg_lock);
	t = idr_find(&dtrack_idr, id);
	if (t && !dtrack_tracker_visible(t))
		t = NULL;
	if (t)
		dtrack_tracker_destroy_locked(t, DTRACK_EVENT_DESTROYED);
	mutex_unlock(&dtrack_reg_lock);
	return t ? 0 : -ENOENT;
}

static struct dtrack_tracker *dtrack_tracker_alloc(unsigned long npages,
						   u32 method)
{
	struct dtrack_tracker *t;
	int i;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return NULL;
	refcount_set(&t->ref, 1);
	spin_lock_init(&t->lock);
	INIT_LIST_HEAD(&t->mm_node);
	atomic_set(&t->state, DTRACK_STATE_ACTIVE);
	t->npages = npages;
	t->method = method;
	if (method == DTRACK_METHOD_WPFAULT)
		t->log_size = min_t(unsigned long, npages,
				    max(dtrack_log_entries, 1U));
	for (i = 0; i < 2; i++) {
		t->ep[i].bitmap = kvcalloc(BITS_TO_LONGS(npages),
					   sizeof(long),
					   GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
		if (!t->ep[i].bitmap)
			goto err_free;
		if (!t->log_size)
			continue;
		t->ep[i].log = kvcalloc(t->log_size, sizeof(*t->ep[i].log),
					GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
		if (!t->ep[i].log)
			goto err_free;
	}
	t->cur = &t->ep[0];
	return t;

err_free:
	dtrack_tracker_free(t);
	return NULL;
}

/*
 * May current attach to @task with ptrace?  The rule of /proc/PID/mem
 * (PTRACE_MODE_ATTACH_REALCREDS): ptrace_may_access() when symbols.c could
 * resolve it, else the same checks minus the LSM hook (the family is
 * CAP_NET_ADMIN-only anyway): same thread group, or same real uid/gid as
 * every uid/gid of the target, or CAP_SYS_PTRACE over its user namespace;
 * and a non-dumpable target needs CAP_SYS_PTRACE over its mm's namespace.
 */
static bool dtrack_may_attach(struct task_struct *task)
{
	const struct cred *cred = current_cred(), *tcred;
	bool ok = true;

	if (dtrack_sym.ptrace_may_access)
		return dtrack_sym.ptrace_may_access(task,
						    PTRACE_MODE_ATTACH_REALCREDS);
	if (same_thread_group(task, current))
		return true;
	task_lock(task);
	rcu_read_lock();
	tcred = __task_cred(task);
	if (!(uid_eq(cred->uid, tcred->euid) && uid_eq(cred->uid, tcred->suid) &&
	      uid_eq(cred->uid, tcred->uid) && gid_eq(cred->gid, tcred->egid) &&
	      gid_eq(cred->gid, tcred->sgid) && gid_eq(cred->gid, tcred->gid)) &&
	    !ns_capable(tcred->user_ns, CAP_SYS_PTRACE))
		ok = false;
	rcu_read_unlock();
	if (ok && task->mm && get_dumpable(task->mm) != SUID_DUMP_USER &&
	    !ns_capable(task->mm->user_ns, CAP_SYS_PTRACE))
		ok = false;
	task_unlock(task);
	return ok;
}

static struct task_struct *dtrack_find_task(pid_t nr)
{
	struct task_struct *task;

	rcu_read_lock();
	task = pid_task(find_vpid(nr), PIDTYPE_PID);
	if (task)
		get_task_struct(task);
	rcu_read_unlock();
	return task;
}

int dtrack_tracker_create(pid_t nr, u64 addr, u64 len, u32 method, u32 flags,
			  u32 portid, u32 *idp, struct netlink_ext_ack *extack)
{
	struct task_struct *task;
	struct dtrack_tracker *t;
	struct mmu_notifier *mn;
	struct dtrack_mm *dmm;
	struct mm_struct *mm;
	unsigned long npages;
	bool mapped;
	int id, ret;

	if (!len) {
		NL_SET_ERR_MSG(extack, "zero length range");
		return -EINVAL;
	}
	if (!PAGE_ALIGNED(addr) || !PAGE_ALIGNED(len)) {
		NL_SET_ERR_MSG(extack, "address and length must be page aligned");
		return -EINVAL;
	}
	if (addr + len < addr || addr + len > TASK_SIZE_MAX) {
		NL_SET_ERR_MSG(extack, "range overflows the user address space");
		return -EINVAL;
	}
	if (!(dtrack_methods_available() & BIT(method))) {
		NL_SET_ERR_MSG(extack, "method not available on this kernel");
		return -EOPNOTSUPP;
	}
	npages = len >> PAGE_SHIFT;
	/* page indexes are u32 (wpfault log) */
	if (npages > min_t(unsigned long, READ_ONCE(dtrack_max_tracker_pages),
			   U32_MAX)) {
		NL_SET_ERR_MSG(extack, "range exceeds the per-tracker page limit");
		return -E2BIG;
	}

	task = dtrack_find_task(nr);
	if (!task) {
		NL_SET_ERR_MSG(extack, "no such process");
		return -ESRCH;
	}
	if (!dtrack_may_attach(task)) {
		put_task_struct(task);
		NL_SET_ERR_MSG(extack, "no ptrace access to the target process");
		return -EPERM;
	}
	mm = get_task_mm(task);
	if (!mm) {
		put_task_struct(task);
		NL_SET_ERR_MSG(extack, "target has no address space");
		return -ESRCH;
	}
	/*
	 * Again, now that the mm is held: an exec between the check and
	 * get_task_mm() (mm_access() would take exec_update_lock, but is not
	 * exported) may have made it a setuid program's, with new creds.
	 */
	if (!dtrack_may_attach(task)) {
		mmput(mm);
		put_task_struct(task);
		NL_SET_ERR_MSG(extack, "no ptrace access to the target process");
		return -EPERM;
	}

	ret = -ENOMEM;
	t = dtrack_tracker_alloc(npages, method);
	if (!t) {
		NL_SET_ERR_MSG(extack, "out of memory for the tracker");
		goto err_put_task;
	}
	t->pid = get_task_pid(task, PIDTYPE_PID);
	t->owner = current_euid();
	t->start = addr;
	t->end = addr + len;
	t->flags = flags;
	t->portid = (flags & DTRACK_F_PERSISTENT) ? 0 : portid;

	if (mmap_read_lock_killable(mm)) {
		NL_SET_ERR_MSG(extack, "interrupted");
		ret = -EINTR;
		goto err_free;
	}
	mapped = find_vma_intersection(mm, t->start, t->end);
	mmap_read_unlock(mm);
	if (!mapped) {
		NL_SET_ERR_MSG(extack, "no mapping in the range");
		ret = -ENOMEM;
		goto err_free;
	}

	mutex_lock(&dtrack_reg_lock);
	if (dtrack_nr_trackers >= READ_ONCE(dtrack_max_trackers)) {
		NL_SET_ERR_MSG(extack, "tracker limit reached");
		ret = -ENOSPC;
		goto err_unlock;
	}
	if (dtrack_nr_pages + npages > READ_ONCE(dtrack_max_pages)) {
		NL_SET_ERR_MSG(extack, "global tracked page limit reached");
		ret = -ENOSPC;
		goto err_unlock;
	}
	id = idr_alloc_cyclic(&dtrack_idr, NULL, 1, INT_MAX, GFP_KERNEL);
	if (id < 0) {
		NL_SET_ERR_MSG(extack, "no tracker id left");
		ret = id;
		goto err_unlock;
	}
	t->id = id;
	dtrack_nr_trackers++;
	dtrack_nr_pages += npages;

	mn = mmu_notifier_get(&dtrack_mn_ops, mm);
	if (IS_ERR(mn)) {
		NL_SET_ERR_MSG(extack, "cannot register an mmu notifier");
		ret = PTR_ERR(mn);
		idr_remove(&dtrack_idr, id);
		dtrack_nr_trackers--;
		dtrack_nr_pages -= npages;
		goto err_unlock;
	}
	dmm = dtrack_mn_to_dmm(mn);
	t->dmm = dmm;
	if (!dmm->nr_trackers++)
		hash_add_rcu(dtrack_mm_hash, &dmm->hnode, (unsigned long)mm);
	if (method == DTRACK_METHOD_WPFAULT)
		dtrack_wpfault_users(1);
	/* listed before its first reset so that no write escapes it */
	mutex_lock(&dmm->op_lock);
	list_add_tail_rcu(&t->mm_node, &dmm->trackers);
	mutex_unlock(&dmm->op_lock);

	ret = dtrack_tracker_start(t);
	if (ret) {
		NL_SET_ERR_MSG(extack, "cannot start tracking the range");
		dtrack_tracker_destroy_locked(t, 0);
		mutex_unlock(&dtrack_reg_lock);
		goto err_put_mm;
	}
	idr_replace(&dtrack_idr, t, id);
	mutex_unlock(&dtrack_reg_lock);
	mmput(mm);
	put_task_struct(task);
	*idp = id;
	return 0;

err_unlock:
	mutex_unlock(&dtrack_reg_lock);
err_free:
	dtrack_tracker_free(t);
err_put_mm:
	mmput(mm);
err_put_task:
	put_task_struct(task);
	return ret;
}

/* Is any of t's range still mapped? */
static bool dtrack_range_mapped(struct dtrack_tracker *t)
{
	struct mm_struct *mm = t->dmm->mm;
	bool mapped = false;

	if (!mmget_not_zero(mm))
		return false;
	mmap_read_lock(mm);
	mapped = find_vma_intersection(mm, t->start, t->end);
	mmap_read_unlock(mm);
	mmput(mm);
	return mapped;
}

/* Sends deferred events and ends trackers whose target or range is gone. */
static void dtrack_event_workfn(struct work_struct *work)
{
	struct dtrack_tracker *t;
	int id;

	mutex_lock(&dtrack_reg_lock);
	idr_for_each_entry(&dtrack_idr, t, id) {
		u32 ev;

		if (atomic_xchg(&t->overflow_event, 0))
			dtrack_notify(t->id, DTRACK_EVENT_LOG_OVERFLOW);
		if (atomic_xchg(&t->check_unmap, 0) &&
		    atomic_read(&t->state) == DTRACK_STATE_ACTIVE &&
		    !dtrack_range_mapped(t)) {
			atomic_cmpxchg(&t->end_event, 0, DTRACK_EVENT_UNMAPPED);
			atomic_set(&t->state, DTRACK_STATE_ENDED);
		}
		ev = atomic_read(&t->end_event);
		if (ev && atomic_read(&t->state) == DTRACK_STATE_ENDED)
			dtrack_tracker_destroy_locked(t, ev);
	}
	mutex_unlock(&dtrack_reg_lock);
}

/* Trackers die with the netlink socket that created them. */
static int dtrack_netlink_event(struct notifier_block *nb,
				unsigned long event, void *ptr)
{
	struct netlink_notify *n = ptr;
	struct dtrack_tracker *t;
	int id;

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC ||
	    !n->portid || !net_eq(n->net, &init_net))
		return NOTIFY_DONE;
	mutex_lock(&dtrack_reg_lock);
	idr_for_each_entry(&dtrack_idr, t, id)
		if (t->portid == n->portid)
			dtrack_tracker_destroy_locked(t, DTRACK_EVENT_DESTROYED);
	mutex_unlock(&dtrack_reg_lock);
	return NOTIFY_DONE;
}

static struct notifier_block dtrack_netlink_nb = {
	.notifier_call = dtrack_netlink_event,
};

int __init dtrack_registry_init(void)
{
	return netlink_register_notifier(&dtrack_netlink_nb);
}

/* Module unload: netlink and the fault probe are already gone. */
void dtrack_registry_exit(void)
{
	struct dtrack_tracker *t;
	int id;

	netlink_unregister_notifier(&dtrack_netlink_nb);
	WRITE_ONCE(dtrack_exiting, true);
	cancel_work_sync(&dtrack_event_work);
	mutex_lock(&dtrack_reg_lock);
	idr_for_each_entry(&dtrack_idr, t, id)
		dtrack_tracker_destroy_locked(t, 0);
	mutex_unlock(&dtrack_reg_lock);
	idr_destroy(&dtrack_idr);
	/* wait for dtrack_mn_free() (SRCU) and its kfree_rcu() */
	mmu_notifier_synchronize();
	rcu_barrier();
	/*
	 * A notifier callback that read dtrack_exiting before it was set may
	 * have queued the work after the first cancel; none runs any more.
	 */
	cancel_work_sync(&dtrack_event_work);
}
