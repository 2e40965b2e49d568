// SPDX-License-Identifier: GPL-2.0
/*
 * region.c - regions and the per-page state machine.
 *
 * Allowed transitions (anything else is a bug and aborts pagerd):
 *
 *   ABSENT    -> FILLING                fault or prefetch reserved budget
 *   FILLING   -> CLEAN | DIRTY          installed (DIRTY: write fault, or
 *                                       the page turned out to be present)
 *   FILLING   -> ABSENT                 read failed, nothing installed
 *   CLEAN     -> UNPROTECT | EVICTING
 *   CLEAN     -> DIRTY                  async WP: PAGEMAP_SCAN saw a write
 *   DIRTY     -> UNPROTECT | WRITEBACK | EVICTING
 *   CLEAN|DIRTY -> ABSENT               a MISSING fault proves the page is
 *                                       gone from the client (checked in
 *                                       its pagemap): refilled from file
 *   UNPROTECT -> DIRTY                  write fault resolved
 *   WRITEBACK -> CLEAN | DIRTY          written (DIRTY: write failed)
 *   WRITEBACK -> ABSENT                 the client dropped the page itself
 *                                       (its snapshot found it gone)
 *   EVICTING  -> ABSENT                 written if needed and dropped
 *   EVICTING  -> CLEAN | DIRTY          drop failed / write failed
 *
 * Invariants: CLEAN pages are write-protected in the client, so the first
 * write to them raises a WP fault before any byte changes.  WRITEBACK and
 * EVICTING pages are write-protected before their content is read, so a
 * write during write-back blocks in its fault until the page leaves the
 * busy state (then it re-dirties the page, or re-faults as MISSING after
 * the drop and is filled from the file, which has the latest data).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/userfaultfd.h>
#include <linux/falloc.h>

#include "pagerd.h"
#include "uffd_compat.h"

static const uint16_t pg_allowed[PG_NR_STATES] = {
	[PG_ABSENT]	= 1 << PG_FILLING,
	[PG_FILLING]	= 1 << PG_CLEAN | 1 << PG_DIRTY | 1 << PG_ABSENT,
	[PG_CLEAN]	= 1 << PG_UNPROTECT | 1 << PG_EVICTING | 1 << PG_ABSENT |
			  1 << PG_DIRTY,
	[PG_DIRTY]	= 1 << PG_UNPROTECT | 1 << PG_WRITEBACK |
			  1 << PG_EVICTING | 1 << PG_ABSENT,
	[PG_UNPROTECT]	= 1 << PG_DIRTY,
	[PG_WRITEBACK]	= 1 << PG_CLEAN | 1 << PG_DIRTY | 1 << PG_ABSENT,
	[PG_EVICTING]	= 1 << PG_ABSENT | 1 << PG_CLEAN | 1 << PG_DIRTY,
};

static const char *const pg_names[PG_NR_STATES] = {
	"ABSENT", "FILLING", "CLEAN", "DIRTY", "UNPROTECT", "WRITEBACK",
	"EVICTING",
};

bool pg_resident(enum pg_state s)
{
	return s != PG_ABSENT;
}

bool pg_busy(const struct page *pg)
{
	return pg->state == PG_FILLING || pg->state == PG_UNPROTECT ||
	       pg->state == PG_WRITEBACK || pg->state == PG_EVICTING;
}

/* Change a page's state, keeping the counters.  pd.lock held. */
void pg_set(struct region *r, uint64_t idx, enum pg_state to)
{
	struct page *pg = &r->pages[idx];
	enum pg_state from = pg->state;

	if (!(pg_allowed[from] & (1u << to))) {
		pr_err("BUG: region %llu page %llu: %s -> %s",
		       (unsigned long long)r->id, (unsigned long long)idx,
		       pg_names[from], pg_names[to]);
		abort();
	}
	if (!pg_resident(from) && pg_resident(to)) {
		r->resident++;
		pd.resident++;
	} else if (pg_resident(from) && !pg_resident(to)) {
		r->resident--;
		pd.resident--;
	}
	/*
	 * UNPROTECT counts as dirty already: the writer may run (and read
	 * the stats) before the page is marked DIRTY.
	 */
	if (from == PG_DIRTY || from == PG_UNPROTECT) {
		r->dirty--;
		pd.dirty--;
	}
	if (to == PG_DIRTY || to == PG_UNPROTECT) {
		r->dirty++;
		pd.dirty++;
	}
	pg->state = to;
}

static int uffd_ioctl(struct region *r, unsigned long req, void *arg)
{
	return ioctl(r->uffd, req, arg) ? -errno : 0;
}

void uffd_wake(struct region *r, uint64_t idx, uint64_t n)
{
	struct uffdio_range range = {
		.start = r->addr + (idx << PAGE_SHIFT),
		.len = n << PAGE_SHIFT,
	};

	uffd_ioctl(r, UFFDIO_WAKE, &range);
}

/* Write-protect (no wake) or unprotect (wakes waiters) a range. */
int uffd_wp(struct region *r, uint64_t idx, uint64_t n, bool protect)
{
	struct uffdio_writeprotect wp = {
		.range.start = r->addr + (idx << PAGE_SHIFT),
		.range.len = n << PAGE_SHIFT,
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	int ret;

	do {
		ret = uffd_ioctl(r, UFFDIO_WRITEPROTECT, &wp);
	} while (ret == -EAGAIN);
	return ret;
}

struct region *conn_find_region(struct conn *c, uint64_t addr)
{
	for (struct list *l = c->regions.next; l != &c->regions; l = l->next) {
		struct region *r = container_of(l, struct region, cnode);

		if (addr >= r->addr && addr - r->addr < r->len)
			return r;
	}
	return NULL;
}

/*
 * Mark pages whose file blocks hold data (SEEK_DATA/SEEK_HOLE).  A page
 * not marked is filled with zeros without reading the file, so in doubt a
 * page is data: only ENXIO (no data past pos) ends the scan with holes.
 * Any other error marks the rest of the file as data, to be read - else
 * real data would be served as zeros, and later written back as such.
 */
static void scan_file_data(struct region *r)
{
	off_t end = MIN((uint64_t)r->file_size, r->len), pos = 0;

	while (pos < end) {
		off_t data = lseek(r->fd, pos, SEEK_DATA);
		off_t hole = end;

		if (data < 0 && errno != ENXIO) {
			data = pos;	/* unknown: read all the rest */
		} else {
			if (data < 0 || data >= end)
				break;
			hole = lseek(r->fd, data, SEEK_HOLE);
			hole = hole < 0 ? end : MIN(hole, end);
		}
		for (uint64_t i = data >> PAGE_SHIFT;
		     i < ((uint64_t)hole + PAGE_SIZE - 1) >> PAGE_SHIFT; i++)
			r->pages[i].flags |= PGF_FILEDATA;
		pos = hole;
	}
}

/*
 * A region left by a previous pagerd: every page still resident in the
 * client may hold writes that never reached the file, so it is DIRTY.
 * When residency cannot be read the re-attach is refused (-errno): a
 * resident page taken for absent would never be written back.
 */
static int scan_resident(struct region *r)
{
	uint64_t buf[512];

	if (r->memfd >= 0) {
		off_t pos = 0, end = r->len;

		while (pos < end) {
			off_t data = lseek(r->memfd, pos, SEEK_DATA), hole;

			/* in doubt refuse: a page taken for a hole is lost */
			if (data < 0 && errno != ENXIO)
				return -errno;
			if (data < 0 || data >= end)
				break;
			hole = lseek(r->memfd, data, SEEK_HOLE);
			hole = hole < 0 ? end : MIN(hole, end);
			for (uint64_t i = data >> PAGE_SHIFT;
			     i < ((uint64_t)hole + PAGE_SIZE - 1) >> PAGE_SHIFT;
			     i++)
				r->pages[i].state = PG_DIRTY;
			pos = hole;
		}
	} else {
		for (uint64_t i = 0; i < r->npages; i += ARRAY_SIZE(buf)) {
			uint64_t n = MIN(ARRAY_SIZE(buf), r->npages - i);
			off_t off = ((r->addr >> PAGE_SHIFT) + i) * 8;
			ssize_t got = pread(r->conn->pagemap, buf, n * 8, off);

			if (got != (ssize_t)(n * 8))
				return got < 0 ? -errno : -EIO;
			for (uint64_t k = 0; k < n; k++)
				if (buf[k] & (3ULL << 62))	/* present|swap */
					r->pages[i + k].state = PG_DIRTY;
		}
	}
	for (uint64_t i = 0; i < r->npages; i++) {
		if (r->pages[i].state == PG_DIRTY) {
			r->resident++;
			r->dirty++;
		}
	}
	return 0;
}

struct region *region_create(struct conn *c, uint64_t addr, uint64_t len,
			     uint32_t flags, int fd, int memfd, bool reattach,
			     int *err)
{
	struct region *r = calloc(1, sizeof(*r));
	struct stat st;

	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	r->pages = calloc(len >> PAGE_SHIFT, sizeof(*r->pages));
	if (!r->pages) {
		*err = -ENOMEM;
		goto err_free;
	}
	if (fstat(fd, &st)) {
		*err = -errno;
		goto err_pages;
	}
	r->npages = len >> PAGE_SHIFT;
	*err = fault_region_init(r);
	if (*err)
		goto err_pages;
	r->conn = c;
	r->addr = addr;
	r->len = len;
	r->flags = flags;
	r->fd = fd;
	r->memfd = memfd;
	/* shared regions cannot be moved out: synchronous WP (README) */
	r->async = c->wp_async && memfd < 0;
	r->uffd = memfd >= 0 && c->uffd_sync >= 0 ? c->uffd_sync : c->uffd;
	r->file_size = st.st_size;
	pthread_mutex_init(&r->sync_lock, NULL);
	list_init(&r->node);
	list_init(&r->cnode);
	scan_file_data(r);
	if (reattach) {
		*err = scan_resident(r);
		if (*err) {
			/* its data stays in the client, which says so too */
			pr_err("client pid %d: region at %#llx not re-attached: its resident pages cannot be told: %s",
			       c->pid, (unsigned long long)addr,
			       strerror(-*err));
			goto err_fault;
		}
	}
	pthread_mutex_lock(&pd.lock);
	/*
	 * A teardown of @c (DEAD from another connection) may have run while
	 * this was being set up: it has released what c->regions held then
	 * and will not look again, so a region linked now would outlive its
	 * connection (closed descriptors, still in pd.regions).  c->dead is
	 * set under pd.lock before teardown reads the list.
	 */
	if (c->dead) {
		pthread_mutex_unlock(&pd.lock);
		*err = -ESHUTDOWN;
		goto err_fault;
	}
	r->id = ++pd.next_region_id;
	pd.resident += r->resident;
	pd.dirty += r->dirty;
	pd.nr_regions++;
	list_add_tail(&r->node, &pd.regions);
	list_add_tail(&r->cnode, &c->regions);
	pthread_mutex_unlock(&pd.lock);
	return r;

err_fault:
	fault_region_exit(r);
err_pages:
	free(r->pages);
err_free:
	free(r);
	return NULL;
}

/* Wait until no operation runs on @r and none of its pages is busy. */
static void region_quiesce(struct region *r)
{
	for (;;) {
		bool busy = r->ops > 0;

		for (uint64_t i = 0; !busy && i < r->npages; i++)
			busy = pg_busy(&r->pages[i]);
		if (!busy)
			return;
		pthread_cond_wait(&pd.cond, &pd.lock);
	}
}

/*
 * Write back (if @writeback), unlink and free @r; region_claim() first.
 * A region whose write-back fails is not freed: its dirty pages are still
 * only in the client's memory, which stays reachable (a live client keeps
 * its mapping when UNMAP fails, a dead one's guardian keeps its address
 * space and asks again).  The claim is then given back (r->dying false,
 * so the SIGTERM flush and the next release see the region again) and the
 * error returned; pd.release_err tells a running SIGTERM flush, which may
 * have collected its regions before this one was given back.
 */
int region_release(struct region *r, bool writeback)
{
	int ret = 0;

	pthread_mutex_lock(&pd.lock);
	region_quiesce(r);
	pthread_mutex_unlock(&pd.lock);

	if (writeback)
		ret = region_sync(r, 0, r->len);

	pthread_mutex_lock(&pd.lock);
	region_quiesce(r);
	if (ret) {
		r->dying = false;
		pd.releasing--;
		if (pd.stopping)
			pd.release_err = ret;
		pthread_cond_broadcast(&pd.cond);
		pthread_mutex_unlock(&pd.lock);
		return ret;
	}
	clock_forget(r);
	list_del(&r->node);
	list_del(&r->cnode);
	pd.resident -= r->resident;
	pd.dirty -= r->dirty;
	pd.nr_regions--;
	pd.releasing--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);

	fault_region_exit(r);
	close(r->fd);
	if (r->memfd >= 0)
		close(r->memfd);
	pthread_mutex_destroy(&r->sync_lock);
	free(r->pages);
	free(r);
	return 0;
}

static bool page_is_zero(const char *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/*
 * Asynchronous WP: which pages of [first, last] were written since they
 * were last protected?  PAGEMAP_SCAN reports them and write-protects them
 * again in one atomic step per page, so a write either happened before
 * (reported now) or after (reported by the next scan): none is missed.
 * Only present or swapped pages: an empty PTE counts as "written" and
 * would get a uffd-wp marker, which UFFDIO_MOVE cannot take.  A written
 * page that is busy (its write-back snapshot may predate the write) gets
 * PGF_REDIRTY and ends its busy state DIRTY.
 */
int region_scan_written(struct region *r, uint64_t first, uint64_t last)
{
	struct page_region vec[64];
	uint64_t start = r->addr + (first << PAGE_SHIFT);
	uint64_t end = r->addr + ((last + 1) << PAGE_SHIFT);

	if (!r->async)
		return 0;
	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start, .end = end,
			.vec = (uintptr_t)vec, .vec_len = ARRAY_SIZE(vec),
			.category_mask = PAGE_IS_WRITTEN,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long nr = ioctl(r->conn->pagemap, PAGEMAP_SCAN, &arg);

		if (nr < 0)
			return -errno;
		pthread_mutex_lock(&pd.lock);
		for (long i = 0; i < nr; i++) {
			for (uint64_t a = vec[i].start; a < vec[i].end;
			     a += PAGE_SIZE) {
				uint64_t k = (a - r->addr) >> PAGE_SHIFT;
				struct page *pg = &r->pages[k];

				if (pg->state == PG_CLEAN)
					pg_set(r, k, PG_DIRTY);
				else if (pg_busy(pg))
					pg->flags |= PGF_REDIRTY;
			}
		}
		pthread_mutex_unlock(&pd.lock);
		if (arg.walk_end <= start)
			return -EIO;
		start = arg.walk_end;
	}
	return 0;
}

/*
 * Before a region's stats are read: in asynchronous mode, scan for
 * written pages.  A page the scan found written while it was busy ends
 * DIRTY only when its operation ends (PGF_REDIRTY).  Typically a readahead page: the fill
 * wakes the faulting thread before it takes the pages out of FILLING, so
 * the thread can write them and ask for its stats first.  Wait for those
 * operations, or the dirty count misses pages the client has written.
 */
void region_stats_prepare(struct region *r)
{
	/* async WP: writes are only known once scanned */
	region_scan_written(r, 0, r->npages - 1);
	pthread_mutex_lock(&pd.lock);
	for (uint64_t i = 0; i < r->npages; i++) {
		const struct page *pg = &r->pages[i];

		if (pg_busy(pg) && (pg->flags & PGF_REDIRTY)) {
			pthread_cond_wait(&pd.cond, &pd.lock);
			i = -1;	/* look again from the start */
		}
	}
	pthread_mutex_unlock(&pd.lock);
}

/*
 * Does the file already hold @buf at page @i?  Asynchronous WP does not
 * tell whether a page pagerd holds CLEAN was written since its last scan;
 * comparing the moved-out copy with the file does, for the price of a
 * (usually page-cache) read instead of a write.
 */
static bool file_has(struct region *r, uint64_t i, const char *buf)
{
	char tmp[PAGE_SIZE];

	if (!(r->pages[i].flags & PGF_FILEDATA) ||
	    (i << PAGE_SHIFT) >= r->file_size)
		return page_is_zero(buf);
	if (pread(r->fd, tmp, PAGE_SIZE, i << PAGE_SHIFT) != (ssize_t)PAGE_SIZE)
		return false;
	return !memcmp(tmp, buf, PAGE_SIZE);
}

/*
 * Does the client still have page @i?  Private: its pagemap entry is
 * present or swapped.  Shared: the memfd's page cache has it (a uffd-wp
 * PTE marker left by a hole punch would show as "swapped" in pagemap).
 * When the pagemap or the memfd cannot be asked, true (the usual case;
 * callers' own errors stand): a present page taken for gone would be
 * marked ABSENT, and its writes would no longer be tracked.
 */
bool region_page_present(struct region *r, uint64_t i)
{
	off_t off = i << PAGE_SHIFT;
	uint64_t e = 0;

	if (r->memfd >= 0) {
		off_t data = lseek(r->memfd, off, SEEK_DATA);

		return data == off || (data < 0 && errno != ENXIO);
	}
	off = ((r->addr >> PAGE_SHIFT) + i) * 8;
	if (pread(r->conn->pagemap, &e, 8, off) != 8)
		return true;
	return e & (3ULL << 62);
}

/*
 * fsync and durability.
 *
 * pwrite() puts a page into the file's page cache; only a successful fsync
 * says it is on the disk.  When the kernel's write-back of a cached page
 * fails (EIO), it reports the error to the next fsync of each file
 * description once and marks the cached page clean: after that neither a
 * later fsync nor a read of the file (once the page cache is dropped) gets
 * the data back.  So pagerd keeps every page written since the last good
 * fsync of its file recoverable:
 *
 * - the page is flagged PGF_UNSYNCED under pd.lock before its data is
 *   written (so an fsync failure that may concern the write finds it);
 * - region_fsync() turns PGF_UNSYNCED into PGF_INFSYNC for the pages whose
 *   write has completed, and clears PGF_INFSYNC when the fsync succeeds;
 * - a failed fsync makes every flagged resident page DIRTY again (busy
 *   ones get PGF_SYNCFAIL and end their write-back DIRTY), so the next sync
 *   writes them again;
 * - eviction fdatasyncs before it drops a flagged page (wb_durable()) and
 *   keeps the page resident and DIRTY when that fails.  A page is
 *   therefore never dropped before its data is durable, and an evicted
 *   page is never refilled from a file whose page cache lost its data.
 *
 * fsyncs of one region are serialised by r->sync_lock: an error is
 * reported to one of them only, and must be settled (pages re-dirtied)
 * before the next one can return 0 for the same pages.
 */

/*
 * Set and clear sync flags of page @i, keeping r->unsynced and its span.
 * pd.lock held.
 */
static void pg_sync_flags(struct region *r, uint64_t i, uint16_t set,
			  uint16_t clear)
{
	struct page *pg = &r->pages[i];
	bool was = pg->flags & (PGF_UNSYNCED | PGF_INFSYNC), now;

	pg->flags = (pg->flags | set) & (uint16_t)~clear;
	now = pg->flags & (PGF_UNSYNCED | PGF_INFSYNC);
	if (was && !now) {
		if (!--r->unsynced)
			r->unsynced_lo = r->unsynced_hi = 0;
	} else if (!was && now) {
		if (!r->unsynced++ || i < r->unsynced_lo)
			r->unsynced_lo = i;
		if (i >= r->unsynced_hi)
			r->unsynced_hi = i + 1;
	}
}

/* Pages k of idx[] with write[k] are about to be written.  Takes pd.lock. */
static void wb_mark_unsynced(struct region *r, const uint64_t *idx,
			     const bool *write, int n)
{
	pthread_mutex_lock(&pd.lock);
	for (int k = 0; k < n; k++)
		if (write[k])
			pg_sync_flags(r, idx[k], PGF_UNSYNCED, 0);
	pthread_mutex_unlock(&pd.lock);
}

/*
 * fsync (@datasync: fdatasync) @r's file and settle its pages' sync flags
 * (see above).  @done[0..n-1], ascending, are busy pages of the caller whose
 * writes have completed; other busy pages may still be writing and stay
 * PGF_UNSYNCED for the next fsync.  Called without pd.lock; takes
 * r->sync_lock.  Returns 0 or -errno (counted in wb_errors, last_error).
 */
static int region_fsync(struct region *r, bool datasync, const uint64_t *done,
			int n)
{
	struct pager_io *io = io_self();
	uint64_t redirtied = 0;
	int ret, j = 0;

	pthread_mutex_lock(&r->sync_lock);
	pthread_mutex_lock(&pd.lock);
	for (uint64_t i = r->unsynced_lo; i < r->unsynced_hi; i++) {
		struct page *pg = &r->pages[i];
		bool mine;

		while (j < n && done[j] < i)
			j++;
		mine = j < n && done[j] == i;
		if ((pg->flags & PGF_UNSYNCED) &&
		    (mine || (pg->state != PG_WRITEBACK &&
			      pg->state != PG_EVICTING)))
			pg_sync_flags(r, i, PGF_INFSYNC, PGF_UNSYNCED);
	}
	pthread_mutex_unlock(&pd.lock);

	if (pd.fail_fsync_path && !access(pd.fail_fsync_path, F_OK))
		ret = -EIO;	/* testing: --fail-fsync */
	else if (!io)
		ret = -ENOMEM;
	else
		ret = datasync ? io_fdatasync(io, r->fd) : io_fsync(io, r->fd);

	pthread_mutex_lock(&pd.lock);
	for (uint64_t i = r->unsynced_lo; r->unsynced && i < r->unsynced_hi;
	     i++) {
		struct page *pg = &r->pages[i];

		if (!ret) {
			if (pg->flags & PGF_INFSYNC)
				pg_sync_flags(r, i, 0, PGF_INFSYNC);
			continue;
		}
		if (!(pg->flags & (PGF_UNSYNCED | PGF_INFSYNC)))
			continue;
		/* its data may be gone from the file: write it again */
		pg_sync_flags(r, i, PGF_UNSYNCED, PGF_INFSYNC);
		if (pg->state == PG_CLEAN) {
			pg_set(r, i, PG_DIRTY);
			redirtied++;
		} else if (pg->state == PG_WRITEBACK ||
			   pg->state == PG_EVICTING) {
			pg->flags |= PGF_SYNCFAIL;
			redirtied++;
		} else if (pg->state == PG_DIRTY) {
			redirtied++;
		}
		/* ABSENT/FILLING: dropped by the client itself, nothing to do */
	}
	if (ret) {
		STAT_ADD(r, wb_errors, MAX(redirtied, 1));
		r->st.last_error = ret;
		pd.st.last_error = ret;
		r->wb_fail_until = now_ns() + WB_FAIL_BACKOFF_NS;
	}
	pthread_mutex_unlock(&pd.lock);
	pthread_mutex_unlock(&r->sync_lock);
	if (ret)
		pr_err("region %llu: %s failed: %s; %llu pages dirty again",
		       (unsigned long long)r->id, datasync ? "fdatasync" : "fsync",
		       strerror(-ret), (unsigned long long)redirtied);
	return ret;
}

/*
 * Eviction: which of the pages about to be dropped (cand[k]) are durable?
 * Pages that may hold data not yet on the disk are fdatasync'd first.
 * cand[k] is cleared for every page that must stay resident (and DIRTY):
 * the fdatasync failed, or another fsync failed while the page was in
 * flight.  Returns 0 or the error.
 */
static int wb_durable(struct region *r, const uint64_t *idx, int n, bool *cand)
{
	const uint16_t f = PGF_UNSYNCED | PGF_INFSYNC | PGF_SYNCFAIL;
	bool need = false, kept = false;
	int ret;

	pthread_mutex_lock(&pd.lock);
	for (int k = 0; k < n && !need; k++)
		need = cand[k] && (r->pages[idx[k]].flags & f);
	pthread_mutex_unlock(&pd.lock);
	if (!need)
		return 0;
	ret = region_fsync(r, true, idx, n);
	pthread_mutex_lock(&pd.lock);
	for (int k = 0; k < n; k++) {
		if (cand[k] && (r->pages[idx[k]].flags & f)) {
			cand[k] = false;
			kept = true;
		}
	}
	if (kept && !ret)
		ret = r->st.last_error ? r->st.last_error : -EIO;
	pthread_mutex_unlock(&pd.lock);
	return ret;
}

/*
 * Page @i was written to the file: the file has data there now (fills must
 * read it, not zero-fill), and may have grown.  pd.lock held.
 */
static void wb_written(struct region *r, uint64_t i)
{
	r->pages[i].flags |= PGF_FILEDATA;
	STAT_ADD(r, writebacks, 1);
	STAT_ADD(r, bytes_out, PAGE_SIZE);
	if (((i + 1) << PAGE_SHIFT) > r->file_size)
		r->file_size = (i + 1) << PAGE_SHIFT;
}

/*
 * End a write-back batch whose pages got their new state (wb_end_page()):
 * wake whoever waits for pages, then the faulting threads blocked on the
 * @nwake pages in @wake_idx.  Called with pd.lock held; returns without.
 */
static void wb_batch_end(struct region *r, uint64_t *wake_idx, int nwake)
{
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
	for (int k = 0; k < nwake; k++)
		uffd_wake(r, wake_idx[k], 1);
}

/*
 * End the write-back or eviction of page @i: account for it and set its
 * new state.  The one place for write-back and both eviction paths, so the
 * counters mean the same everywhere.  pd.lock held.
 *   @to:      CLEAN, DIRTY, or ABSENT (dropped; its data is durable)
 *   @written: its content was written to the file
 *   @err:     its write failed: the page goes DIRTY, and the recorded file
 *             size is not extended (the file may not have grown)
 * Returns whether the page's waiters must be woken (after pd.lock).
 */
static bool wb_end_page(struct region *r, uint64_t i, enum pg_state to,
			bool written, int err, int *dropped)
{
	struct page *pg = &r->pages[i];

	if (err) {
		STAT_ADD(r, wb_errors, 1);
		r->st.last_error = err;
		pd.st.last_error = err;
		/* let eviction pick clean pages for a while */
		r->wb_fail_until = now_ns() + WB_FAIL_BACKOFF_NS;
		to = PG_DIRTY;
	} else if (written) {
		wb_written(r, i);
	}
	/* a scan saw a write after our snapshot, or an fsync failed */
	if (to == PG_CLEAN && (pg->flags & (PGF_REDIRTY | PGF_SYNCFAIL)))
		to = PG_DIRTY;
	if (to == PG_ABSENT) {
		STAT_ADD(r, evictions, 1);
		pg->flags &= ~PGF_REF;
		if (dropped)
			(*dropped)++;
		/* dropped only when durable (wb_durable()) */
		pg_sync_flags(r, i, 0, PGF_UNSYNCED | PGF_INFSYNC);
	}
	pg->flags &= ~(PGF_REDIRTY | PGF_SYNCFAIL);
	pg_set(r, i, to);
	if (pg->flags & PGF_WAITERS) {
		pg->flags &= ~PGF_WAITERS;
		return true;
	}
	return false;
}

/*
 * Queue the write-back of page @k (@buf, file offset @off) in @reqs: one
 * request per run contiguous in both the file and the buffer, since
 * per-page writes cost a request each.  Returns the new request count.
 */
static int wb_add_write(struct region *r, struct io_req *reqs, int nreq,
			int *reqof, int k, char *buf, uint64_t off)
{
	struct io_req *last = nreq ? &reqs[nreq - 1] : NULL;

	if (last && last->off + last->len == off &&
	    (char *)last->buf + last->len == buf) {
		last->len += PAGE_SIZE;
		reqof[k] = nreq - 1;
		return nreq;
	}
	reqof[k] = nreq;
	reqs[nreq] = (struct io_req){ .op = IO_WRITE, .fd = r->fd, .buf = buf,
				      .len = PAGE_SIZE, .off = off };
	return nreq + 1;
}

/*
 * Write the queued runs, the pages flagged unsynced first (see
 * region_fsync()); every page of a run that was not wholly written gets
 * res[k] = 1 and stays dirty.  Returns the first error, or 0.
 */
static int wb_write_runs(struct region *r, struct pager_io *io,
			 const uint64_t *idx, const bool *write, int n,
			 struct io_req *reqs, int nreq, const int *reqof,
			 int8_t *res)
{
	int werr = 0;

	wb_mark_unsynced(r, idx, write, n);
	io_run(io, reqs, nreq);
	for (int k = 0; k < n; k++) {
		struct io_req *q;

		if (!write[k])
			continue;
		q = &reqs[reqof[k]];
		if (q->res != (ssize_t)q->len) {
			res[k] = 1;
			if (!werr)
				werr = q->res < 0 ? (int)q->res : -EIO;
		}
	}
	return werr;
}

/*
 * Evict @n pages of a private region with asynchronous WP (all EVICTING).
 * A write-protected page cannot hold off a writer here, so the page is
 * taken away instead: libpager's helper UFFDIO_MOVEs it into its staging
 * area, atomically, and from then on any access faults MISSING and waits
 * on the EVICTING state.  The moved copy is the page's final content; it
 * is written to the file unless the file already has it, and only then
 * does the page become ABSENT and the waiters re-fault and fill from the
 * file.  A failed write puts the copy back (UFFDIO_COPY, DIRTY); pages the
 * helper could not move stay mapped and count as DIRTY (they may have been
 * written).
 *
 * Lossless across a pagerd SIGKILL because every page of the batch that is
 * out of the region and not yet in the file stays in its slot of
 * libpager's staging area, which libpager puts back when the evict channel
 * closes (invariant at libpager's helper_move()).  So: the batch owns its
 * slot from the first move until the release; requests after the first
 * append to the slot (PAGER_DROP_APPEND) instead of replacing it, since
 * the pages of the earlier ones are only in io->buf until written; and the
 * release only once every moved page is in the file or back in the region.
 * With two slots (PAGER_HELLO_STAGING_SLOTS) another thread moves and the
 * helper writes the client's next batch while this one is settled.
 */
static int wb_run_move(struct region *r, struct pager_io *io,
		       const uint64_t *idx, const bool *dirty, int n,
		       int *dropped)
{
	uint64_t dropa[PAGER_DROP_MAX], dropl[PAGER_DROP_MAX];
	struct io_req reqs[WB_BATCH];
	int reqof[WB_BATCH];	/* the request that writes page k */
	/* 0 gone, 1 write failed, 2 not moved, 3 not durable (put back) */
	int8_t res[WB_BATCH];
	bool have[WB_BATCH], write[WB_BATCH], cand[WB_BATCH];
	bool hwrote[WB_BATCH];	/* the helper wrote page k to the file */
	uint64_t stg[WB_BATCH];	/* where in staging such a page k is */
	uint64_t wake_idx[WB_BATCH];
	int nreq = 0, nwake = 0, ret = 0, werr = 0, k0 = 0, move_err = 0;
	bool moved = false, release;
	int restore_failed = 0;	/* pages pagerd could not put back */
	uint64_t first_lost = 0;
	/* moved pages pagerd could not read: staging has their only copy */
	bool unread = false, restored = false;
	struct conn *c = r->conn;
	int slot;
	uint64_t dst;	/* where the helper puts the next request's pages */

	memset(have, 0, sizeof(have));
	memset(write, 0, sizeof(write));
	memset(hwrote, 0, sizeof(hwrote));
	for (int k = 0; k < n; k++)
		res[k] = 2;

	/*
	 * The staging slot must keep the moved pages until they are durable
	 * in the file: if pagerd dies before, libpager moves them back from
	 * there.  So no other batch uses the slot until then.
	 */
	slot = slot_get(c);
	if (slot < 0) {
		/*
		 * The helper holds both slots and does not answer: give up
		 * before anything is sent.  The pages were not touched
		 * (still mapped, their write-protection as it was), so
		 * they go back as they were; a write seen by a scan
		 * meanwhile makes a clean one DIRTY (PGF_REDIRTY).
		 */
		pthread_mutex_lock(&pd.lock);
		for (int k = 0; k < n; k++) {
			if (wb_end_page(r, idx[k], dirty[k] ? PG_DIRTY : PG_CLEAN,
					false, 0, NULL))
				wake_idx[nwake++] = idx[k];
		}
		wb_batch_end(r, wake_idx, nwake);
		pr_debug("region %llu: no staging slot: %s",
			 (unsigned long long)r->id, strerror(-slot));
		return 0;
	}
	dst = slot_base(c, slot);

	/* 1: move, in requests of up to PAGER_DROP_MAX ranges */
	while (k0 < n && !move_err) {
		struct pager_drop_done done = { 0 };
		uint16_t flags = PAGER_DROP_MOVE | (k0 ? PAGER_DROP_APPEND : 0);
		bool all_dirty = true, lost;
		int nr = 0, k = k0;

		while (k < n && nr < PAGER_DROP_MAX) {
			int e = k;

			while (e + 1 < n && idx[e + 1] == idx[e] + 1)
				e++;
			dropa[nr] = r->addr + (idx[k] << PAGE_SHIFT);
			dropl[nr] = (uint64_t)(e - k + 1) << PAGE_SHIFT;
			nr++;
			k = e + 1;
		}
		for (int j = k0; j < k; j++)
			all_dirty &= dirty[j];
		/*
		 * Dirty pages need writing anyway: the helper writes them
		 * from staging, which saves reading them out of the client.
		 * Clean ones are compared with the file below instead (a
		 * write would dirty the page cache for nothing).  Flagged
		 * before the helper writes, as any write (region_fsync()).
		 */
		if (c->helper_write && all_dirty) {
			flags |= PAGER_DROP_WRITE;
			wb_mark_unsynced(r, idx + k0, dirty + k0, k - k0);
		}
		/* like a failed drop: not an error of the eviction */
		/*
		 * have + k0 and the buffer from page k0 hold this request's
		 * pages only: drop_move() refuses an answer claiming more,
		 * or pages anywhere but at dst.
		 */
		move_err = drop_move(c, slot, dst, dropa, dropl, nr, flags,
				     &done,
				     io->buf + ((size_t)k0 << PAGE_SHIFT),
				     have + k0, &lost);
		moved |= done.moved > 0 || lost;
		for (uint64_t j = 0; j < done.moved >> PAGE_SHIFT &&
		     k0 + (int)j < n; j++) {
			res[k0 + j] = 0;
			hwrote[k0 + j] = done.written && have[k0 + j];
			stg[k0 + j] = done.staging + (j << PAGE_SHIFT);
		}
		if (!move_err)
			dst = done.staging + done.moved;
		else if (!done.moved &&
			 drop_salvage(c, slot, dst, dropa, dropl, nr,
				      io->buf + ((size_t)k0 << PAGE_SHIFT),
				      have + k0)) {
			/*
			 * moved before the helper died (or answered
			 * nonsense): staging has them
			 */
			moved = true;
			lost = false;
			for (int j = k0; j < k; j++)
				if (have[j])
					res[j] = 0;
			pr_info("region %llu: pages moved by a helper that did not answer taken from staging",
				(unsigned long long)r->id);
		}
		unread |= lost;
		k0 = k;
	}

	/* 2: write what the file does not have yet */
	for (int k = 0; k < n; k++) {
		char *buf = io->buf + ((size_t)k << PAGE_SHIFT);
		uint64_t off = idx[k] << PAGE_SHIFT;

		if (res[k] || !have[k] || hwrote[k])
			continue;	/* not moved, nothing to write, written */
		if (!dirty[k] && file_has(r, idx[k], buf))
			continue;
		if (dirty[k] && !(r->pages[idx[k]].flags & PGF_FILEDATA) &&
		    page_is_zero(buf))
			continue;
		write[k] = true;
		nreq = wb_add_write(r, reqs, nreq, reqof, k, buf, off);
	}
	if (nreq) {
		werr = wb_write_runs(r, io, idx, write, n, reqs, nreq, reqof,
				     res);
		ret = werr;
	}

	/* 3: only durable pages may go; the others are put back below */
	for (int k = 0; k < n; k++)
		cand[k] = !res[k] && have[k];
	{
		int err = wb_durable(r, idx, n, cand);

		if (!ret)
			ret = err;
	}
	for (int k = 0; k < n; k++) {
		uint8_t cres;

		if (!res[k] && have[k] && !cand[k])
			res[k] = 3;
		if (res[k] != 1 && res[k] != 3)
			continue;
		/*
		 * The copy is the only one: put it back.  A page the helper
		 * wrote was never read into io->buf; staging still has it.
		 */
		cres = 0;
		if (hwrote[k] &&
		    staging_read(c, io->buf + ((size_t)k << PAGE_SHIFT),
				 PAGE_SIZE, stg[k]))
			cres = 1;
		else
			copy_pages(r, idx[k], 1,
				   io->buf + ((size_t)k << PAGE_SHIFT), false,
				   &cres);
		if (cres && !restore_failed++)
			first_lost = idx[k];
	}
	/*
	 * Pages neither in the file nor in the region, whose last copy is
	 * in staging: moved and not read, or not put back.  Left there they
	 * would be refilled from the file at their next access (vanished),
	 * so the helper puts the whole batch back, and which of its pages
	 * the region then has decides below.
	 */
	if (restore_failed)
		pr_err("region %llu: %d pages from page %llu not put back",
		       (unsigned long long)r->id, restore_failed,
		       (unsigned long long)first_lost);
	if (unread || restore_failed) {
		int lost_err = 0, err = drop_restore(c, slot, &lost_err);

		restored = !err;
		if (err || lost_err)
			pr_err("region %llu: staging slot %d %s: %s",
			       (unsigned long long)r->id, slot,
			       err ? "not put back" : "put back in part",
			       strerror(-(err ? err : lost_err)));
	}
	/*
	 * Not after a failed move request (e.g. staging could not be read):
	 * pages may be in staging that are neither in the file nor in the
	 * region, and staging is their last copy.  A restore emptied it.
	 */
	release = moved && !move_err && !restore_failed;
	/* not sent: the helper keeps the copies, the slot is unreleased */
	if (release && drop_release(c, slot))
		release = false;
	slot_put(c, slot, moved, release || restored);

	for (int k = 0; k < n && restored; k++) {
		/* back in the region, possibly written since: resident */
		bool back = region_page_present(r, idx[k]);

		if (back && res[k] != 1)
			res[k] = 2;
		else if (!back && res[k] == 2)
			res[k] = 0;	/* the client dropped it itself */
	}
	pthread_mutex_lock(&pd.lock);
	for (int k = 0; k < n; k++) {
		/* pages the helper could not move may have been written */
		if (wb_end_page(r, idx[k], res[k] ? PG_DIRTY : PG_ABSENT,
				write[k] || hwrote[k], res[k] == 1 ? werr : 0,
				dropped))
			wake_idx[nwake++] = idx[k];
	}
	wb_batch_end(r, wake_idx, nwake);
	if (move_err)
		pr_debug("region %llu: move failed: %s",
			 (unsigned long long)r->id, strerror(-move_err));
	return ret;
}

/*
 * Snapshot one private page for write-back.  Reading a page the client no
 * longer has faults into its uffd, which fails the remote access (EIO):
 * the client dropped it itself (MADV_DONTNEED).  That is not an I/O error;
 * like a vanished page it is ABSENT now (*gone) and refilled from the file.
 */
static int wb_snap_page(struct region *r, uint64_t i, char *buf, bool *gone)
{
	ssize_t got = pread(r->conn->memfd, buf, PAGE_SIZE,
			    r->addr + (i << PAGE_SHIFT));
	int err = got < 0 ? -errno : -EIO;

	if (got == (ssize_t)PAGE_SIZE)
		return 0;
	if (!region_page_present(r, i)) {
		*gone = true;
		return 0;
	}
	return err;
}

/*
 * Write back (and with @evict, drop) @n pages of @r, which the caller moved
 * to WRITEBACK or EVICTING; dirty[k] says whether page idx[k] needs writing.
 * idx[] is ascending, n <= WB_BATCH.  Ends the busy state of every page.
 * Returns 0 or the first error.
 */
static int wb_run(struct region *r, const uint64_t *idx, const bool *dirty,
		  int n, bool evict, int *dropped)
{
	struct pager_io *io = io_self();
	struct io_req reqs[WB_BATCH];
	/*
	 * 0 ok, 1 write failed, 2 drop failed, 3 not durable, 4 drop late,
	 * 5 gone from the client
	 */
	int8_t res[WB_BATCH];
	bool write[WB_BATCH], cand[WB_BATCH], gone[WB_BATCH];
	uint64_t dropa[PAGER_DROP_MAX], dropl[PAGER_DROP_MAX];
	uint64_t wake_idx[WB_BATCH];
	int reqof[WB_BATCH];
	int nreq = 0, nwake = 0, ret = 0, werr = 0, ndrop = 0, npend = 0;
	uint64_t pend[WB_BATCH];
	struct conn *c = r->conn;
	bool late = false;	/* a drop request timed out */

	if (evict && r->async && io)
		return wb_run_move(r, io, idx, dirty, n, dropped);
	if (!io)
		ret = -ENOMEM;
	memset(res, 0, sizeof(res));
	memset(write, 0, sizeof(write));
	memset(gone, 0, sizeof(gone));

	/* 1: write-protect dirty pages before reading them */
	for (int k = 0; k < n && !ret; ) {
		int e = k;

		if (!dirty[k]) {
			k++;
			continue;
		}
		while (e + 1 < n && dirty[e + 1] && idx[e + 1] == idx[e] + 1)
			e++;
		ret = uffd_wp(r, idx[k], idx[e] - idx[k] + 1, true);
		k = e + 1;
	}

	/* 2: snapshot, one pread per run of adjacent dirty pages */
	for (int k = 0, e; k < n && !ret; k = e) {
		size_t len;
		ssize_t got;

		for (e = k + 1; dirty[k] && e < n && dirty[e] &&
		     idx[e] == idx[e - 1] + 1; e++)
			;
		if (!dirty[k])
			continue;
		len = (size_t)(e - k) << PAGE_SHIFT;
		if (r->memfd >= 0)
			got = pread(r->memfd, io->buf + ((size_t)k << PAGE_SHIFT),
				    len, idx[k] << PAGE_SHIFT);
		else
			got = pread(c->memfd, io->buf + ((size_t)k << PAGE_SHIFT),
				    len, r->addr + (idx[k] << PAGE_SHIFT));
		if (got == (ssize_t)len)
			continue;
		if (r->memfd >= 0) {
			ret = got < 0 ? -errno : -EIO;
			break;
		}
		/* which page of the run failed, and why: one at a time */
		for (int j = k; j < e && !ret; j++)
			ret = wb_snap_page(r, idx[j],
					   io->buf + ((size_t)j << PAGE_SHIFT),
					   &gone[j]);
	}

	/* 3: write runs of non-trivial pages */
	for (int k = 0; k < n && !ret; k++) {
		char *buf = io->buf + ((size_t)k << PAGE_SHIFT);
		uint64_t off = idx[k] << PAGE_SHIFT;

		write[k] = false;
		if (!dirty[k] || gone[k])
			continue;
		/* a zero page over a hole or past EOF needs no block */
		if (!(r->pages[idx[k]].flags & PGF_FILEDATA) && page_is_zero(buf))
			continue;
		write[k] = true;
		nreq = wb_add_write(r, reqs, nreq, reqof, k, buf, off);
	}
	if (ret) {
		/* cannot read the client's memory: nothing was written */
		werr = ret;
		for (int k = 0; k < n; k++) {
			res[k] = gone[k] ? 5 : dirty[k] ? 1 : 2;
			write[k] = false;
		}
	} else if (nreq) {
		werr = wb_write_runs(r, io, idx, write, n, reqs, nreq, reqof,
				     res);
		ret = werr;
	}

	for (int k = 0; k < n; k++)
		if (gone[k] && !res[k])
			res[k] = 5;

	/* 4: drop what is durably in the file */
	if (evict) {
		int drop_err = 0, err;

		for (int k = 0; k < n; k++)
			cand[k] = !res[k];
		err = wb_durable(r, idx, n, cand);
		if (!ret)
			ret = err;
		for (int k = 0; k < n; k++)
			if (!res[k] && !cand[k])
				res[k] = 3;

		for (int k = 0; k < n; k++) {
			int e = k;

			if (res[k])
				continue;
			while (e + 1 < n && !res[e + 1] &&
			       idx[e + 1] == idx[e] + 1)
				e++;
			if (r->memfd >= 0) {
				if (fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE |
					      FALLOC_FL_KEEP_SIZE,
					      idx[k] << PAGE_SHIFT,
					      (idx[e] - idx[k] + 1) << PAGE_SHIFT))
					drop_err = -errno;
			} else {
				if (ndrop == PAGER_DROP_MAX) {
					drop_err = drop_private(c, dropa, dropl,
								ndrop);
					late |= drop_err == -ETIMEDOUT;
					ndrop = 0;
				}
				dropa[ndrop] = r->addr + (idx[k] << PAGE_SHIFT);
				dropl[ndrop++] = (idx[e] - idx[k] + 1)
						 << PAGE_SHIFT;
			}
			k = e;
		}
		if (ndrop && !drop_err) {
			drop_err = drop_private(c, dropa, dropl, ndrop);
			late |= drop_err == -ETIMEDOUT;
		}
		for (int k = 0; k < n && drop_err; k++) {
			if (res[k])
				continue;
			if (late) {
				/*
				 * The helper may still drop them: they stay
				 * EVICTING until it answers (evict.c).
				 */
				res[k] = 4;
				pend[npend++] = idx[k];
			} else {
				/* still mapped, file up to date: CLEAN */
				res[k] = 2;
			}
		}
	}

	pthread_mutex_lock(&pd.lock);
	for (int k = 0; k < n; k++) {
		enum pg_state to;

		if (res[k] == 4) {
			/* still EVICTING: region_drop_settle() ends it */
			r->pages[idx[k]].flags |= PGF_DROPWAIT;
			if (write[k])
				wb_written(r, idx[k]);
			continue;
		}
		if (res[k] == 5) {
			STAT_ADD(r, vanished, 1);
			to = PG_ABSENT;
		} else if (res[k] == 1 || res[k] == 3)
			to = PG_DIRTY;
		else if (!evict || res[k] == 2)
			to = PG_CLEAN;
		else
			to = PG_ABSENT;
		if (wb_end_page(r, idx[k], to, write[k],
				res[k] == 1 ? werr : 0, dropped))
			wake_idx[nwake++] = idx[k];
	}
	wb_batch_end(r, wake_idx, nwake);
	if (late)
		drop_register(c, r, pend, npend);
	return ret;
}

/*
 * Settle the @n pages of @r of a drop request the helper answered late,
 * or never (the channel closed): all EVICTING with PGF_DROPWAIT, their
 * data durable in the file, write-protected, so the helper either dropped
 * a page or left it as the file has it.  The client's pagemap tells which.
 * Called without pd.lock.
 */
void region_drop_settle(struct region *r, const uint64_t *idx, int n)
{
	uint64_t wake_idx[WB_BATCH];
	bool gone[WB_BATCH];
	int nwake = 0;

	/* unreadable (mm gone): CLEAN; a refault would refill it anyway */
	for (int k = 0; k < n && k < WB_BATCH; k++)
		gone[k] = !region_page_present(r, idx[k]);
	pthread_mutex_lock(&pd.lock);
	for (int k = 0; k < n && k < WB_BATCH; k++) {
		r->pages[idx[k]].flags &= ~PGF_DROPWAIT;
		if (wb_end_page(r, idx[k], gone[k] ? PG_ABSENT : PG_CLEAN,
				false, 0, NULL))
			wake_idx[nwake++] = idx[k];
	}
	wb_batch_end(r, wake_idx, nwake);
}

/*
 * Busy in a way worth waiting for: pages waiting for a late drop answer
 * hold no data the file lacks, and the answer may never come.
 */
static bool pg_wait_busy(const struct page *pg)
{
	return pg_busy(pg) && !(pg->flags & PGF_DROPWAIT);
}

enum wb_mode { WB_SYNC, WB_EVICT };

/*
 * Collect up to WB_BATCH pages of [first, last] from *cursor on and run
 * them.  Returns number of pages handled, or -errno of the write-back; sets
 * *busy when pages in the range were busy and skipped.
 */
static int wb_round(struct region *r, uint64_t *cursor, uint64_t last,
		    enum wb_mode mode, bool *busy, int *err)
{
	uint64_t idx[WB_BATCH];
	bool dirty[WB_BATCH];
	int n = 0, ret;

	pthread_mutex_lock(&pd.lock);
	for (; *cursor <= last && n < WB_BATCH; (*cursor)++) {
		struct page *pg = &r->pages[*cursor];

		if (pg->state == PG_DIRTY) {
			dirty[n] = true;
			idx[n++] = *cursor;
			pg_set(r, *cursor, mode == WB_SYNC ? PG_WRITEBACK :
							      PG_EVICTING);
		} else if (pg->state == PG_CLEAN && mode == WB_EVICT) {
			dirty[n] = false;
			idx[n++] = *cursor;
			pg_set(r, *cursor, PG_EVICTING);
		} else if (pg_wait_busy(pg)) {
			/*
			 * FILLING too: a write fault's page is installed
			 * writable and its writer may run (and call sync)
			 * before the page is marked DIRTY.
			 */
			*busy = true;
		}
	}
	if (n)
		r->ops++;
	pthread_mutex_unlock(&pd.lock);
	if (!n)
		return 0;
	ret = wb_run(r, idx, dirty, n, mode == WB_EVICT, NULL);
	if (ret && !*err)
		*err = ret;
	pthread_mutex_lock(&pd.lock);
	r->ops--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
	return n;
}

static int wb_range(struct region *r, uint64_t off, uint64_t len,
		    enum wb_mode mode)
{
	uint64_t first, last;
	int err = 0;

	if (!len)
		return 0;
	first = off >> PAGE_SHIFT;
	last = MIN((off + len - 1) >> PAGE_SHIFT, r->npages - 1);
	/*
	 * Pages busy in another operation may end DIRTY: wait for them and
	 * pass again.  Bounded, so a client writing all the time cannot keep
	 * us here forever; its later writes are simply dirty again.
	 */
	for (int pass = 0; pass < 16; pass++) {
		uint64_t cursor = first;
		bool busy = false;

		while (cursor <= last)
			wb_round(r, &cursor, last, mode, &busy, &err);
		if (!busy || err)
			break;
		pthread_mutex_lock(&pd.lock);
		for (uint64_t i = first; i <= last; i++) {
			if (pg_wait_busy(&r->pages[i])) {
				pthread_cond_wait(&pd.cond, &pd.lock);
				i = first - 1;
			}
		}
		pthread_mutex_unlock(&pd.lock);
	}
	return err;
}

/*
 * A large sync writes back its second half on the helper thread (ahead.c)
 * while the caller does the first: each half is a read of the client's
 * memory and a write, and one thread leaves the other CPU idle.  The
 * halves are disjoint page ranges, as concurrent syncs and evictions of
 * one region already are; the caller's reference on r covers the helper,
 * since it waits for it.
 */
struct sync_job {
	struct ahead_job job;
	struct region *r;
	uint64_t off, len;
	int err;
};

static void sync_job_run(struct ahead_job *job)
{
	struct sync_job *sj = container_of(job, struct sync_job, job);

	sj->err = wb_range(sj->r, sj->off, sj->len, WB_SYNC);
}

static int wb_range_sync(struct region *r, uint64_t off, uint64_t len)
{
	struct sync_job sj = { .job.fn = sync_job_run, .r = r };
	uint64_t half = (len / 2) & ~(uint64_t)(PAGE_SIZE - 1);
	bool split = false;
	int err;

	if (len >= 4 * WB_BATCH * PAGE_SIZE) {
		sj.off = off + half;
		sj.len = len - half;
		pthread_mutex_lock(&pd.lock);
		split = ahead_submit(&sj.job);
		pthread_mutex_unlock(&pd.lock);
	}
	err = wb_range(r, off, split ? half : len, WB_SYNC);
	if (split) {
		pthread_mutex_lock(&pd.lock);
		ahead_wait(&sj.job);
		pthread_mutex_unlock(&pd.lock);
		if (!err)
			err = sj.err;
	}
	return err;
}

int region_sync(struct region *r, uint64_t off, uint64_t len)
{
	struct stat st;
	int ret, ret2;

	ret = 0;
	if (len && r->async)
		ret = region_scan_written(r, off >> PAGE_SHIFT,
					  MIN((off + len - 1) >> PAGE_SHIFT,
					      r->npages - 1));
	if (!ret)
		ret = wb_range_sync(r, off, len);
	/* the file must read as the whole region: extend with a hole */
	if (!fstat(r->fd, &st) && (uint64_t)st.st_size < r->len &&
	    ftruncate(r->fd, r->len) && !ret)
		ret = -errno;
	/* a failure makes the pages written since the last good one DIRTY */
	ret2 = region_fsync(r, false, NULL, 0);
	if (!ret)
		ret = ret2;
	if (ret) {
		pthread_mutex_lock(&pd.lock);
		r->st.last_error = ret;
		pd.st.last_error = ret;
		pthread_mutex_unlock(&pd.lock);
	}
	return ret;
}

int region_evict(struct region *r, uint64_t off, uint64_t len)
{
	return wb_range(r, off, len, WB_EVICT);
}

/*
 * Evict a victim list of one region (evict.c), pages already EVICTING.
 * Returns the number of pages dropped.
 */
int evict_pages(struct region *r, const uint64_t *idx, const bool *dirty,
		int n)
{
	int dropped = 0;

	wb_run(r, idx, dirty, n, true, &dropped);
	return dropped;
}

int region_prefetch(struct region *r, uint64_t off, uint64_t len)
{
	uint64_t first, last;
	int ret = 0;

	if (!len)
		return 0;
	first = off >> PAGE_SHIFT;
	last = MIN((off + len - 1) >> PAGE_SHIFT, r->npages - 1);
	for (uint64_t i = first; i <= last && !ret; ) {
		unsigned int want = MIN(RA_MAX, last - i + 1);

		ret = fill_pages(r, i, want, false, true);
		if (ret > 0) {
			i += ret;
			ret = 0;
		} else if (ret == 0) {
			i++;	/* not absent */
		}
	}
	return ret;
}
