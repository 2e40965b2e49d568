// SPDX-License-Identifier: GPL-2.0
/*
 * fault.c - the fault loop: read batches of userfaultfd messages from a
 * client's uffd, resolve MISSING faults by filling pages from the backing
 * file (io_uring, readahead on sequential faults, zero pages without any
 * I/O over holes and past EOF) and WP faults by marking pages dirty.
 *
 * Races are normal: several threads fault on one page, a fault message may
 * be stale by the time it is read (the page was installed or dropped
 * meanwhile).  The page state decides; a fault on a busy page sets
 * PGF_WAITERS and the busy operation wakes the range when it ends.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/userfaultfd.h>

#include "pagerd.h"

#define FAULT_BATCH	64
#define READ_CHUNK	16	/* pages per io_uring read: several in flight */

enum { FILL_OK, FILL_EXISTS, FILL_FAILED };

/* Install pages [idx, idx+n) from buf; res[] gets per-page outcome. */
void copy_pages(struct region *r, uint64_t idx, uint64_t n, char *buf,
		       bool wp, uint8_t *res)
{
	uint64_t done = 0;

	while (done < n) {
		struct uffdio_copy cp = {
			.dst = r->addr + ((idx + done) << PAGE_SHIFT),
			.src = (uint64_t)(buf + (done << PAGE_SHIFT)),
			.len = (n - done) << PAGE_SHIFT,
			.mode = wp ? UFFDIO_COPY_MODE_WP : 0,
		};
		int err;

		if (!ioctl(r->uffd, UFFDIO_COPY, &cp)) {
			for (; done < n; done++)
				res[done] = FILL_OK;
			return;
		}
		err = errno;
		if (cp.copy > 0) {
			for (uint64_t k = cp.copy >> PAGE_SHIFT; k; k--)
				res[done++] = FILL_OK;
			continue;
		}
		if (err == EAGAIN)
			continue;
		if (err == EEXIST) {
			/* present although we thought it absent: keep it */
			res[done++] = FILL_EXISTS;
			continue;
		}
		for (; done < n; done++)
			res[done] = FILL_FAILED;
	}
}

/*
 * Fill up to @want absent pages from @idx on.  Returns the number of pages
 * handled, 0 if page @idx was not absent, or -errno.  The caller holds a
 * reference on r (r->ops).
 */
int fill_pages(struct region *r, uint64_t idx, unsigned int want, bool write,
	       bool prefetch)
{
	struct pager_io *io = io_self();
	struct io_req reqs[RA_MAX];
	uint8_t res[RA_MAX];
	uint64_t wake[RA_MAX];
	uint64_t n;
	int nreq = 0, nwake = 0, ret = 0;
	char *buf;

	if (!io)
		return -ENOMEM;
	buf = io->buf;
	want = MIN(want, RA_MAX);
	pthread_mutex_lock(&pd.lock);
	if (!prefetch) {
		/* sequential faults double the readahead window */
		if (idx == r->ra_next && idx)
			r->ra_win = MIN(r->ra_win * 2, RA_MAX);
		else
			r->ra_win = 1;
		want = r->ra_win;
	}
	for (;;) {
		if (r->dying || r->pages[idx].state != PG_ABSENT) {
			pthread_mutex_unlock(&pd.lock);
			return 0;
		}
		for (n = 1; n < want && idx + n < r->npages &&
		     r->pages[idx + n].state == PG_ABSENT; n++)
			;
		if (!budget_reserve(r, &n))
			break;
		want = n;
	}
	for (uint64_t k = 0; k < n; k++)
		pg_set(r, idx + k, PG_FILLING);
	r->ops++;
	if (!prefetch)
		r->ra_next = idx + n;
	pthread_mutex_unlock(&pd.lock);

	/* read data runs, several requests in flight; holes need no I/O */
	for (uint64_t k = 0; k < n; k++) {
		char *p = buf + (k << PAGE_SHIFT);
		uint64_t off = (idx + k) << PAGE_SHIFT;

		if (!(r->pages[idx + k].flags & PGF_FILEDATA) ||
		    off >= r->file_size) {
			memset(p, 0, PAGE_SIZE);
			continue;
		}
		if (nreq && reqs[nreq - 1].off + reqs[nreq - 1].len == off &&
		    reqs[nreq - 1].len < READ_CHUNK * PAGE_SIZE) {
			reqs[nreq - 1].len += PAGE_SIZE;
			continue;
		}
		reqs[nreq++] = (struct io_req){ .op = IO_READ, .fd = r->fd,
						 .buf = p, .len = PAGE_SIZE,
						 .off = off };
	}
	if (nreq)
		ret = io_run(io, reqs, nreq);
	if (ret) {
		for (uint64_t k = 0; k < n; k++)
			res[k] = FILL_FAILED;
	} else {
		uint64_t bytes = 0;

		for (int q = 0; q < nreq; q++) {
			bytes += reqs[q].res;
			if ((size_t)reqs[q].res < reqs[q].len)	/* EOF */
				memset((char *)reqs[q].buf + reqs[q].res, 0,
				       reqs[q].len - reqs[q].res);
		}
		STAT_ADD(r, bytes_in, bytes);
		if (write && !prefetch) {
			/* the faulting page goes in writable: it is dirty */
			copy_pages(r, idx, 1, buf, false, res);
			if (n > 1)
				copy_pages(r, idx + 1, n - 1, buf + PAGE_SIZE,
					   true, res + 1);
		} else {
			copy_pages(r, idx, n, buf, true, res);
		}
	}

	pthread_mutex_lock(&pd.lock);
	for (uint64_t k = 0; k < n; k++) {
		struct page *pg = &r->pages[idx + k];
		bool data = (pg->flags & PGF_FILEDATA) &&
			    ((idx + k) << PAGE_SHIFT) < r->file_size;

		if (res[k] == FILL_FAILED) {
			pg_set(r, idx + k, PG_ABSENT);
		} else if (res[k] == FILL_EXISTS || (k == 0 && write &&
						      !prefetch)) {
			pg_set(r, idx + k, PG_DIRTY);
		} else if (pg->flags & PGF_REDIRTY) {
			/* a scan saw it written while it was being filled */
			pg_set(r, idx + k, PG_DIRTY);
		} else {
			pg_set(r, idx + k, PG_CLEAN);
		}
		pg->flags &= ~PGF_REDIRTY;
		if (res[k] != FILL_FAILED) {
			if (data)
				STAT_ADD(r, fills_file, 1);
			else
				STAT_ADD(r, fills_zero, 1);
			if (k)
				STAT_ADD(r, readahead, 1);
		}
		if (k == 0 || prefetch)
			pg->flags |= PGF_REF;
		if (pg->flags & PGF_WAITERS) {
			pg->flags &= ~PGF_WAITERS;
			wake[nwake++] = idx + k;
		}
	}
	r->ops--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
	for (int k = 0; k < nwake; k++)
		uffd_wake(r, wake[k], 1);
	if (ret) {
		pr_err("fill of region %llu page %llu failed: %s",
		       (unsigned long long)r->id, (unsigned long long)idx,
		       strerror(-ret));
		return ret;
	}
	return n;
}

/*
 * Does the client still have page @idx?  Shared: is it in the memfd's page
 * cache (a uffd-wp PTE marker left by a hole punch would show as "swapped"
 * in pagemap).  Private: pagemap present or swapped.
 */
static bool page_present(struct region *r, uint64_t idx)
{
	off_t off = idx << PAGE_SHIFT;
	uint64_t e = 0;

	if (r->memfd >= 0)
		return lseek(r->memfd, off, SEEK_DATA) == off;
	off = ((r->addr >> PAGE_SHIFT) + idx) * 8;
	if (pread(r->conn->pagemap, &e, 8, off) != 8)
		return true;	/* cannot tell: assume the usual case */
	return e & (3ULL << 62);
}

static void handle_fault(struct conn *c, uint64_t addr, uint64_t flags,
			 uint64_t t0)
{
	struct region *r;
	struct page *pg;
	uint64_t idx;

	pthread_mutex_lock(&pd.lock);
	/* on shutdown, faults stay blocked for the next pagerd */
	if (pd.stopping) {
		pthread_mutex_unlock(&pd.lock);
		return;
	}
	r = conn_find_region(c, addr);
	if (!r || r->dying) {
		pthread_mutex_unlock(&pd.lock);
		return;
	}
	idx = (addr - r->addr) >> PAGE_SHIFT;
	pg = &r->pages[idx];
	r->ops++;
	pd.active_ops++;
	STAT_ADD(r, faults, 1);

	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		STAT_ADD(r, wp_faults, 1);
		switch (pg->state) {
		case PG_CLEAN:
		case PG_DIRTY:
			pg_set(r, idx, PG_UNPROTECT);
			pg->flags |= PGF_REF;
			pthread_mutex_unlock(&pd.lock);
			/* unprotecting wakes the writers */
			uffd_wp(r, idx, 1, false);
			pthread_mutex_lock(&pd.lock);
			pg->flags &= ~PGF_WAITERS;
			pg_set(r, idx, PG_DIRTY);
			break;
		case PG_ABSENT:
			/* dropped meanwhile: let it re-fault as MISSING */
			pthread_mutex_unlock(&pd.lock);
			uffd_wake(r, idx, 1);
			pthread_mutex_lock(&pd.lock);
			break;
		default:
			pg->flags |= PGF_WAITERS;
			break;
		}
	} else {
		STAT_ADD(r, missing_faults, 1);
		switch (pg->state) {
		case PG_ABSENT:
			pthread_mutex_unlock(&pd.lock);
			fill_pages(r, idx, RA_MAX,
				   flags & UFFD_PAGEFAULT_FLAG_WRITE, false);
			pthread_mutex_lock(&pd.lock);
			break;
		case PG_CLEAN:
		case PG_DIRTY: {
			enum pg_state was = pg->state;
			bool present;

			/*
			 * Usually stale: an earlier fill of this page woke
			 * the thread.  But the page may really be gone (the
			 * application dropped it, a drop request failed
			 * half-way): then waking would loop for ever.
			 */
			pthread_mutex_unlock(&pd.lock);
			present = page_present(r, idx);
			pthread_mutex_lock(&pd.lock);
			if (present || pg->state != was) {
				pthread_mutex_unlock(&pd.lock);
				uffd_wake(r, idx, 1);
				pthread_mutex_lock(&pd.lock);
				break;
			}
			STAT_ADD(r, vanished, 1);
			pg_set(r, idx, PG_ABSENT);
			pthread_mutex_unlock(&pd.lock);
			fill_pages(r, idx, 1, flags & UFFD_PAGEFAULT_FLAG_WRITE,
				   false);
			pthread_mutex_lock(&pd.lock);
			break;
		}
		default:
			pg->flags |= PGF_WAITERS;
			break;
		}
	}
	stats_fault_latency(r, now_ns() - t0);
	r->ops--;
	pd.active_ops--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
}

/* A client's uffd is readable: handle one batch of messages. */
void fault_event(struct conn *c, int uffd)
{
	struct uffd_msg msgs[FAULT_BATCH];
	uint64_t t0 = now_ns();
	ssize_t got;

	got = read(uffd, msgs, sizeof(msgs));
	if (got <= 0)
		return;
	for (ssize_t i = 0; i < got / (ssize_t)sizeof(msgs[0]); i++) {
		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		handle_fault(c, msgs[i].arg.pagefault.address &
				~(PAGE_SIZE - 1),
			     msgs[i].arg.pagefault.flags, t0);
	}
}
