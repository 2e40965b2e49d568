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
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22	/* Linux 5.14 */
#endif
#include <linux/userfaultfd.h>

#include "pagerd.h"

#define FAULT_BATCH	64
#define READ_CHUNK	16	/* pages per io_uring read: several in flight */
#define RA_CHUNK	64	/* pages per UFFDIO_COPY step of a mapped fill */

enum { FILL_OK, FILL_EXISTS, FILL_FAILED };

/*
 * A window fill installs with UFFDIO_COPY_MODE_DONTWAKE and wakes the
 * window once its pages have their final state (fill_pages()): a thread
 * woken early could write a page still FILLING and, say, read the stats
 * before the page counts as dirty.  Set per thread around a window.
 */
static __thread bool fill_dontwake;

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
			.mode = (wp ? UFFDIO_COPY_MODE_WP : 0) |
				(fill_dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0),
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
 * The backing file mapped read-only into pagerd, so that UFFDIO_COPY can
 * take a whole run straight from the page cache: one copy per page instead
 * of two (read into a buffer, copy from it) and one ioctl per run instead
 * of a read per 16 pages.  Created on the first multi-page fill, unmapped
 * with the region (region_release).  NULL: not mappable, use the buffer.
 */
static void *region_fmap(struct region *r)
{
	void *m = __atomic_load_n(&r->fmap, __ATOMIC_ACQUIRE), *none = NULL;

	if (m)
		return m == MAP_FAILED ? NULL : m;
	m = mmap(NULL, r->len, PROT_READ, MAP_SHARED, r->fd, 0);
	if (!__atomic_compare_exchange_n(&r->fmap, &none, m, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (m != MAP_FAILED)
			munmap(m, r->len);
		m = none;
	}
	return m == MAP_FAILED ? NULL : m;
}

int fault_region_init(struct region *r)
{
	uint64_t nchunks;

	if (!pd.fa_pages)
		return 0;
	nchunks = (r->npages + pd.fa_pages - 1) / pd.fa_pages;
	r->fa_faults = calloc(nchunks, sizeof(*r->fa_faults));
	return r->fa_faults ? 0 : -ENOMEM;
}

void fault_region_exit(struct region *r)
{
	if (r->fmap && r->fmap != MAP_FAILED)
		munmap(r->fmap, r->len);
	r->fmap = NULL;
	free(r->fa_faults);
	r->fa_faults = NULL;
}

/* A read-only anonymous range: reads map the shared zero page, no RSS. */
static const char *zero_src(void)
{
	static void *z;
	void *m = __atomic_load_n(&z, __ATOMIC_ACQUIRE), *none = NULL;

	if (m)
		return m;
	m = mmap(NULL, RA_CHUNK << PAGE_SHIFT, PROT_READ,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (!__atomic_compare_exchange_n(&z, &none, m, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		munmap(m, RA_CHUNK << PAGE_SHIFT);
		m = none;
	}
	return m;
}

/* bytes read by this thread's fill, added to the stats under pd.lock */
static __thread uint64_t fill_bytes;

static bool page_has_data(struct region *r, uint64_t i)
{
	return (r->pages[i].flags & PGF_FILEDATA) &&
	       (i << PAGE_SHIFT) < r->file_size;
}

/*
 * Read pages [idx, idx+n) (n <= RA_MAX) into the worker's buffer: data
 * runs with io_uring, several requests in flight; holes need no I/O.  A
 * lone page is read with a plain pread: no ring round trip on the path
 * of a random fault.  Returns 0 or -errno.
 */
static int read_pages(struct region *r, struct pager_io *io, uint64_t idx,
		      uint64_t n)
{
	struct io_req reqs[RA_MAX];
	uint64_t bytes = 0;
	int nreq = 0, ret = 0;
	char *buf = io->buf;

	if (n == 1 && page_has_data(r, idx)) {
		struct iovec iov = { .iov_base = buf, .iov_len = PAGE_SIZE };
		off_t off = idx << PAGE_SHIFT;
		ssize_t got, more;
		bool plain;

		/*
		 * From the page cache without blocking if it is there; else
		 * the read waits for the disk, and a polling worker first
		 * lets the other workers serve this client's other faults.
		 */
		plain = __atomic_load_n(&r->no_nowait, __ATOMIC_RELAXED);
		got = plain ? pread(r->fd, buf, PAGE_SIZE, off) :
			preadv2(r->fd, &iov, 1, off, RWF_NOWAIT);
		if (got < 0 && errno == EOPNOTSUPP && !plain) {
			/* tmpfs: no disk to wait for, read plainly from now on */
			__atomic_store_n(&r->no_nowait, true, __ATOMIC_RELAXED);
			plain = true;
			got = pread(r->fd, buf, PAGE_SIZE, off);
		}
		if (got < 0 && (plain || errno != EAGAIN))
			return -errno;
		if (got < 0)
			got = 0;
		if (got < (ssize_t)PAGE_SIZE) {
			if (!plain)
				fault_rearm();
			more = pread(r->fd, buf + got, PAGE_SIZE - got,
				     off + got);
			if (more < 0)
				return -errno;
			got += more;
		}
		if (got < (ssize_t)PAGE_SIZE)	/* EOF */
			memset(buf + got, 0, PAGE_SIZE - got);
		fill_bytes += got;
		return 0;
	}
	for (uint64_t k = 0; k < n; k++) {
		char *p = buf + (k << PAGE_SHIFT);
		uint64_t off = (idx + k) << PAGE_SHIFT;

		if (!page_has_data(r, idx + k)) {
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
	if (ret)
		return ret;
	for (int q = 0; q < nreq; q++) {
		bytes += reqs[q].res;
		if ((size_t)reqs[q].res < reqs[q].len)	/* EOF */
			memset((char *)reqs[q].buf + reqs[q].res, 0,
			       reqs[q].len - reqs[q].res);
	}
	fill_bytes += bytes;
	return 0;
}

/*
 * Install [idx, idx+n) through the buffer, RA_MAX pages at a time; the
 * first @nwr pages go in writable.  Returns 0 or -errno (res[] is
 * FILL_FAILED for what was not installed).
 */
static int fill_buffered(struct region *r, struct pager_io *io, uint64_t idx,
			 uint64_t n, uint64_t nwr, uint8_t *res)
{
	for (uint64_t done = 0; done < n; ) {
		uint64_t m = MIN(n - done, (uint64_t)RA_MAX);
		uint64_t w = nwr > done ? MIN(nwr - done, m) : 0;
		int ret = read_pages(r, io, idx + done, m);

		if (ret) {
			memset(res + done, FILL_FAILED, n - done);
			return ret;
		}
		if (w)
			copy_pages(r, idx + done, w, io->buf, false,
				   res + done);
		if (m > w)
			copy_pages(r, idx + done + w, m - w,
				   io->buf + (w << PAGE_SHIFT), true,
				   res + done + w);
		done += m;
	}
	return 0;
}

/*
 * Install [idx, idx+n) straight from the file mapping, one UFFDIO_COPY per
 * run of data pages or of zero pages (holes, past EOF), RA_CHUNK pages at
 * a time; the first @nwr pages go in writable.  The
 * page cache is asked to read the whole window ahead before the first
 * copy so that disk reads overlap the copying.  Pages the mapping could
 * not supply (file truncated behind pagerd's back: EFAULT) are left
 * FILL_FAILED for the buffered path, which reads zeros past EOF.
 */
static void fill_mapped(struct region *r, const char *fmap, uint64_t idx,
			uint64_t n, uint64_t nwr, uint8_t *res)
{
	const char *zero = zero_src();
	uint64_t bytes = 0;

	/* no-op for cached pages; starts the I/O of cold ones */
	posix_fadvise(r->fd, idx << PAGE_SHIFT, n << PAGE_SHIFT,
		      POSIX_FADV_WILLNEED);
	for (uint64_t c = 0; c < n; c += RA_CHUNK) {
		uint64_t ce = MIN(n, c + RA_CHUNK), de = c;

		/*
		 * Map the chunk's data in pagerd first, in one call: else
		 * UFFDIO_COPY meets unmapped source pages, drops the
		 * client's mmap lock and faults them in one by one.
		 */
		while (de < ce && page_has_data(r, idx + de))
			de++;
		if (de > c)
			madvise((char *)fmap + ((idx + c) << PAGE_SHIFT),
				(de - c) << PAGE_SHIFT, MADV_POPULATE_READ);

		for (uint64_t k = c; k < ce; ) {
			bool data = page_has_data(r, idx + k);
			uint64_t e = k + 1;
			const char *src;

			/* runs end where writable pages end */
			while (e < ce && page_has_data(r, idx + e) == data &&
			       (e < nwr) == (k < nwr))
				e++;
			if (data) {
				src = fmap + ((idx + k) << PAGE_SHIFT);
				bytes += (e - k) << PAGE_SHIFT;
			} else if (zero) {
				src = zero;
			} else {
				memset(res + k, FILL_FAILED, e - k);
				k = e;
				continue;
			}
			copy_pages(r, idx + k, e - k, (char *)src, k >= nwr,
				   res + k);
			k = e;
		}
	}
	/* pagerd's own PTEs of the window: not kept, they are not metadata */
	madvise((char *)fmap + (idx << PAGE_SHIFT), n << PAGE_SHIFT,
		MADV_DONTNEED);
	fill_bytes += bytes;
}

/*
 * Say that a fill failed, at most once a second: while a file cannot be
 * read, its blocked threads retry every FILL_RETRY_MS (retry.c).
 */
static void fill_error(struct region *r, uint64_t idx, int err)
{
	static uint64_t said, quiet;	/* atomics */
	uint64_t now = now_ns(), last = __atomic_load_n(&said, __ATOMIC_RELAXED);

	if (now - last < 1000000000ULL ||
	    !__atomic_compare_exchange_n(&said, &last, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&quiet, 1, __ATOMIC_RELAXED);
		return;
	}
	pr_err("fill of region %llu page %llu failed: %s (%llu more since the last report)",
	       (unsigned long long)r->id, (unsigned long long)idx,
	       strerror(-err),
	       (unsigned long long)__atomic_exchange_n(&quiet, 0,
						       __ATOMIC_RELAXED));
}

/*
 * Fill pages [idx, idx+n), reserved FILLING by fill_pages() with one
 * reference on r (r->ops) for this part, and give them their final state;
 * the first @nwr go in writable.  @demand: page @idx is the faulting one.
 * Drops the reference.  Returns 0 or -errno.
 */
static int fill_reserved(struct region *r, uint64_t idx, uint64_t n,
			 uint64_t nwr, bool demand, bool prefetch)
{
	struct pager_io *io = io_self();
	const char *fmap = n > 1 ? region_fmap(r) : NULL;
	uint8_t res[RA_MAX_MAP];
	uint64_t wake[RA_MAX_MAP];
	int nwake = 0, ret = 0;

	fill_dontwake = n > 1;
	if (!io) {
		memset(res, FILL_FAILED, n);
		ret = -ENOMEM;
	} else if (pd.fail_fill_path && !access(pd.fail_fill_path, F_OK)) {
		/* testing (--fail-fill): as a backing file that reads EIO */
		memset(res, FILL_FAILED, n);
		ret = -EIO;
	} else if (n > 1 && fmap) {
		fill_mapped(r, fmap, idx, n, nwr, res);
		/* what the mapping could not supply goes through a read */
		for (uint64_t k = 0; k < n && !ret; ) {
			uint64_t e = k + 1;

			if (res[k] != FILL_FAILED) {
				k++;
				continue;
			}
			while (e < n && res[e] == FILL_FAILED)
				e++;
			ret = fill_buffered(r, io, idx + k, e - k,
					    nwr > k ? nwr - k : 0, res + k);
			k = e;
		}
	} else {
		ret = fill_buffered(r, io, idx, n, nwr, res);
	}

	fill_dontwake = false;
	pthread_mutex_lock(&pd.lock);
	STAT_ADD(r, bytes_in, fill_bytes);
	fill_bytes = 0;
	for (uint64_t k = 0; k < n; k++) {
		struct page *pg = &r->pages[idx + k];
		bool data = page_has_data(r, idx + k);

		if (res[k] == FILL_FAILED) {
			pg_set(r, idx + k, PG_ABSENT);
		} else if (res[k] == FILL_EXISTS || k < nwr) {
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
			if (k || !demand)
				STAT_ADD(r, readahead, 1);
		}
		if (res[k] != FILL_FAILED)
			clock_filled(pg, k == 0 && demand, prefetch);
		/* a window's installed pages are woken below anyway */
		if ((pg->flags & PGF_WAITERS) &&
		    (n == 1 || res[k] == FILL_FAILED)) {
			pg->flags &= ~PGF_WAITERS;
			wake[nwake++] = idx + k;
		}
		if (n > 1)
			pg->flags &= ~PGF_WAITERS;
	}
	r->ops--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
	for (int k = 0; k < nwake; k++)
		uffd_wake(r, wake[k], 1);
	/*
	 * A window was installed without waking anyone: wake its installed
	 * runs now that their states are final (not a page whose fill
	 * failed: its thread stays blocked, as for a failed single page).
	 */
	for (uint64_t k = 0; n > 1 && k < n; ) {
		uint64_t e = k + 1;

		if (res[k] == FILL_FAILED) {
			k++;
			continue;
		}
		while (e < n && res[e] != FILL_FAILED)
			e++;
		uffd_wake(r, idx + k, e - k);
		k = e;
	}
	if (ret)
		fill_error(r, idx, ret);
	return ret;
}

/*
 * A stream's window is copied by two threads at once: the faulting
 * worker fills its first half, the helper thread (ahead.c) the second.
 * Copying (page allocation plus memcpy) is what a stream waits for; its
 * thread is blocked on the first page meanwhile, so the other CPU would
 * idle.  The second half is reserved (FILLING) before it is handed over,
 * so the application meets it as busy pages and waits for them rather
 * than faulting them in one by one.  The job is static: there is at most
 * one (the helper takes one at a time) and nobody waits for it.
 */
#define AHEAD_MIN	128	/* pages: smaller windows are not split */

static struct fill_job {
	struct ahead_job job;
	struct region *r;	/* holds a r->ops for the part */
	uint64_t idx, n, nwr;
} fill_job;

static void fill_job_run(struct ahead_job *job)
{
	struct fill_job *f = container_of(job, struct fill_job, job);

	fill_reserved(f->r, f->idx, f->n, f->nwr, false, false);
}

/*
 * Fault-around of random faults.  A thread that touches a region in random
 * order costs one fault round trip per page, 10-60 us against the 0.2 us
 * of the kernel's own file mapping, whose fault-around maps the pages
 * around a faulting one.  pagerd does the same once a region shows it is
 * used densely: the second random missing fault in an aligned chunk of
 * --fault-around pages (512, 2 MiB) fills the chunk's other absent pages.
 * The first fault alone triggers nothing, so sparse use (one page per
 * chunk) reads no more than it touches; a region used densely takes about
 * two faults per chunk instead of one per page.
 *
 * The chunk's pages go in as readahead does: write-protected and CLEAN,
 * unreferenced for CLOCK (first to go if the guess was wrong), counted in
 * `readahead`.  Fault-around never evicts: it runs only while the budget
 * keeps an eighth free after it, so it cannot push out pages somebody
 * uses, nor overrun the budget.  The faulting page is installed and woken
 * first (fill_pages()); the chunk is filled by the helper thread (ahead.c)
 * when it is idle, which is the CPU the application does not run on, else
 * by this worker after it has re-armed the uffd for the others.
 */
#define FA_TRIGGER	2	/* random faults in a chunk that fill it */

static struct fa_job {
	struct ahead_job job;
	struct region *r;	/* holds one r->ops per run */
	uint64_t first;		/* chunk's first page */
	unsigned int n;		/* chunk's pages */
	uint64_t mine[RA_MAX_MAP / 64];	/* pages reserved FILLING by us */
} fa_job;

static bool fa_mine(const struct fa_job *f, unsigned int k)
{
	return f->mine[k / 64] >> (k % 64) & 1;
}

/* Fill the runs of pages reserved for @f; each drops its r->ops. */
static void fa_fill(struct fa_job *f)
{
	for (unsigned int k = 0; k < f->n; ) {
		unsigned int e = k + 1;

		if (!fa_mine(f, k)) {
			k++;
			continue;
		}
		while (e < f->n && fa_mine(f, e))
			e++;
		fill_reserved(f->r, f->first + k, e - k, 0, false, false);
		k = e;
	}
}

static void fa_job_run(struct ahead_job *job)
{
	fa_fill(container_of(job, struct fa_job, job));
}

/*
 * Page @idx of @r is being filled for a random (not sequential) missing
 * fault: count it in its chunk.  Is it the FA_TRIGGER-th, so that the
 * chunk is to be filled (fault_around())?  pd.lock held: counted in the
 * fill's own locked section, so that the fault path of sparse use takes
 * the lock no more often than without fault-around.
 */
static bool fa_count(struct region *r, uint64_t idx)
{
	uint64_t c;

	if (!pd.fa_pages)
		return false;
	c = idx / pd.fa_pages;
	if (r->fa_faults[c] < UINT8_MAX)
		r->fa_faults[c]++;
	return r->fa_faults[c] >= FA_TRIGGER;
}

/*
 * Fill the chunk of page @idx of @r, whose random faults reached
 * FA_TRIGGER (fa_count()); the page itself is in.  Another fault of the
 * chunk may have filled it meanwhile: the count, reset here, says so.
 * The caller holds a reference on r (r->ops).
 */
static void fault_around(struct region *r, uint64_t idx)
{
	struct fa_job local;
	uint64_t c = idx / pd.fa_pages, first = c * pd.fa_pages;
	unsigned int n = MIN((uint64_t)pd.fa_pages, r->npages - first);
	unsigned int nruns = 0;

	pthread_mutex_lock(&pd.lock);
	/* it never evicts: an eighth of the budget stays free after it */
	if (r->dying || pd.stopping || r->fa_faults[c] < FA_TRIGGER ||
	    pd.resident + n + pd.budget / 8 > pd.budget) {
		pthread_mutex_unlock(&pd.lock);
		return;
	}
	memset(local.mine, 0, sizeof(local.mine));
	for (unsigned int k = 0; k < n; k++) {
		if (r->pages[first + k].state != PG_ABSENT)
			continue;
		pg_set(r, first + k, PG_FILLING);
		local.mine[k / 64] |= 1ULL << (k % 64);
		nruns += !k || !fa_mine(&local, k - 1);
	}
	r->fa_faults[c] = 0;
	if (!nruns) {
		pthread_mutex_unlock(&pd.lock);
		return;
	}
	r->ops += nruns;
	local.r = r;
	local.first = first;
	local.n = n;
	local.job.fn = fa_job_run;
	/* fa_job is free while the helper is idle (both under pd.lock) */
	if (ahead_idle()) {
		fa_job = local;
		if (ahead_submit(&fa_job.job)) {
			pthread_mutex_unlock(&pd.lock);
			return;
		}
	}
	pthread_mutex_unlock(&pd.lock);
	fault_rearm();		/* a chunk takes a while: let others serve */
	fa_fill(&local);
}

/*
 * Fill up to @want absent pages from @idx on.  Returns the number of pages
 * handled, 0 if page @idx was not absent, or -errno.  The caller holds a
 * reference on r (r->ops).
 */
int fill_pages(struct region *r, uint64_t idx, unsigned int want, bool write,
	       bool prefetch)
{
	bool wfirst = write && !prefetch;
	uint64_t nwr, n, half = 0;
	unsigned int max = RA_MAX, stream = 0;
	bool random = false, around;
	int ret;

	/* big windows only where no buffer is needed for them */
	if (want > 1 && region_fmap(r))
		max = RA_MAX_MAP;
	want = MIN(want, max);
	pthread_mutex_lock(&pd.lock);
	if (!prefetch) {
		/*
		 * Sequential faults double the readahead window: up to
		 * RA_MAX_MAP pages (4 MiB) once a stream is established, so
		 * that the fault round trip is paid once per window.  Up to
		 * RA_STREAMS streams per region are followed (threads
		 * reading different parts, a stream with random faults in
		 * between); a fault that continues none starts a new one in
		 * the next slot, round robin.
		 */
		for (stream = 0; stream < RA_STREAMS; stream++)
			if (idx && r->ra_next[stream] == idx)
				break;
		if (stream < RA_STREAMS) {
			r->ra_win[stream] = MIN(MAX(r->ra_win[stream], 1U) * 2,
						max);
		} else {
			stream = r->ra_clock++ % RA_STREAMS;
			r->ra_win[stream] = 1;
			random = true;
		}
		want = MIN(r->ra_win[stream], want);
	}
	/*
	 * A window is at most a quarter of the budget: one that does not
	 * fit would evict the whole cache and still not fit (then a single
	 * page is filled), and it would crowd out everything else.
	 */
	want = MIN(want, MAX(pd.budget / 4, 1));
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
		r->ra_next[stream] = idx + n;
	around = random && n == 1 && fa_count(r, idx);
	/*
	 * The faulting page of a write fault goes in writable and DIRTY.  So
	 * does the whole window of a sequential write stream: the writer is
	 * about to write every page of it, and a write-protected page would
	 * cost it a fault per page: under synchronous WP a round trip to
	 * pagerd (the stream would run at the WP fault rate), under
	 * asynchronous WP a fault the kernel resolves itself, which is not
	 * free either (a write stream's p50 per page was 0.65 us, 0.02 us
	 * writable).  DIRTY is the safe side: at worst an unwritten page is
	 * written back (zero pages over holes are skipped there).
	 */
	nwr = wfirst ? n : 0;
	/* a stream: make room for its next window meanwhile (evict.c) */
	if (!prefetch && n > 1)
		evict_ahead(n);
	/* fill_job is free while the helper is idle (both under pd.lock) */
	if (n >= AHEAD_MIN && max == RA_MAX_MAP && ahead_idle()) {
		uint64_t h = n / 2;

		fill_job.job.fn = fill_job_run;
		fill_job.r = r;
		fill_job.idx = idx + h;
		fill_job.n = n - h;
		fill_job.nwr = nwr > h ? nwr - h : 0;
		r->ops++;
		if (ahead_submit(&fill_job.job))
			half = h;
		else
			r->ops--;
	}
	pthread_mutex_unlock(&pd.lock);

	if (n > 1)
		fault_rearm();	/* a window takes a while: let others serve */
	ret = fill_reserved(r, idx, half ? half : n, MIN(nwr, half ? half : n),
			    !prefetch, prefetch);
	if (!ret && around)
		fault_around(r, idx);
	return ret ? ret : (int)n;
}

/*
 * Fill page @idx of @r for the thread that faulted on it, which waits
 * until a fill of the page wakes it.  Called with pd.lock held, dropped
 * meanwhile.  A failed fill leaves the page ABSENT and wakes nobody: the
 * thread is woken later to fault again (retry.c).  A page another thread
 * took to fill first is busy: its fill wakes its waiters, this thread
 * among them, also when it fails.
 */
static void fill_demand(struct region *r, uint64_t idx, unsigned int want,
			bool write)
{
	struct page *pg = &r->pages[idx];

	pthread_mutex_unlock(&pd.lock);
	fill_pages(r, idx, want, write, false);
	pthread_mutex_lock(&pd.lock);
	if (pg_busy(pg)) {
		pg->flags |= PGF_WAITERS;
	} else if (pg->state == PG_ABSENT && !fill_retry_later(r, idx)) {
		pthread_mutex_unlock(&pd.lock);
		uffd_wake(r, idx, 1);
		pthread_mutex_lock(&pd.lock);
	}
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
			fill_demand(r, idx, RA_MAX_MAP,
				    flags & UFFD_PAGEFAULT_FLAG_WRITE);
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
			present = region_page_present(r, idx);
			pthread_mutex_lock(&pd.lock);
			if (present || pg->state != was) {
				pthread_mutex_unlock(&pd.lock);
				uffd_wake(r, idx, 1);
				pthread_mutex_lock(&pd.lock);
				break;
			}
			STAT_ADD(r, vanished, 1);
			pg_set(r, idx, PG_ABSENT);
			fill_demand(r, idx, 1, flags & UFFD_PAGEFAULT_FLAG_WRITE);
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

/*
 * The uffd a polling worker holds unarmed in epoll (see fault_event()):
 * re-armed before anything that may take long, so that other workers
 * serve the client's other faults meanwhile.
 */
static __thread struct {
	int uffd;
	struct evsrc *es;
} unarmed = { -1, NULL };

void fault_rearm(void)
{
	if (unarmed.es) {
		server_rearm(unarmed.uffd, unarmed.es);
		unarmed.es = NULL;
	}
}

/*
 * A client's uffd is readable: handle its messages.  A fault handed to a
 * worker asleep in epoll costs a wake-up, tens of microseconds when it
 * sleeps on the other CPU, which is more than resolving a cached page
 * takes.  So while faults keep coming, one worker per connection keeps
 * polling the uffd for --spin-us (50 us) after the last message before it
 * goes back to sleep, yielding the CPU between polls so that a faulting
 * thread woken on the same CPU runs at once.  A poll that found nothing
 * makes the next one short (an eighth), so an idle or slow client costs
 * little CPU.
 *
 * The polling worker leaves the uffd unarmed in epoll (it is one-shot),
 * else every fault would also wake a sleeping worker, which is the very
 * cost polling avoids.  It re-arms it when it stops, when a batch holds
 * several faults (several threads fault: serve them in parallel), and
 * before a fill that reads a window or has to evict (fault_rearm()).
 * Where the faulting thread's CPU is known, the poller moves there and
 * sleeps between faults instead (placement.c).
 */
void fault_event(struct conn *c, int uffd, struct evsrc *es)
{
	struct uffd_msg msgs[FAULT_BATCH];
	bool spinner = pd.spin_ns &&
		!__atomic_exchange_n(&c->spinning, 1, __ATOMIC_ACQUIRE);
	uint64_t limit = pd.spin_ns, last = now_ns();
	bool handled = false;

	if (!spinner) {
		server_rearm(uffd, es);
		limit = 0;
	} else {
		unarmed.uffd = uffd;
		unarmed.es = es;
		if (c->spin_missed)
			limit /= 8;
	}
	for (;;) {
		uint64_t t0 = now_ns();
		ssize_t got = read(uffd, msgs, sizeof(msgs));
		ssize_t nmsg;

		if (got <= 0) {
			if (!spinner || !handled || errno != EAGAIN)
				break;
			/* on the faulting thread's CPU: sleep, don't poll */
			if (follow_wait(uffd))
				continue;
			if (t0 - last > limit)
				break;
			sched_yield();
			continue;
		}
		nmsg = got / (ssize_t)sizeof(msgs[0]);
		if (nmsg > 1)
			fault_rearm();
		if (handled && spinner)
			c->spin_missed = false;	/* the poll paid off */
		for (ssize_t i = 0; i < nmsg; i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			handle_fault(c, msgs[i].arg.pagefault.address &
					~(PAGE_SIZE - 1),
				     msgs[i].arg.pagefault.flags, t0);
		}
		handled = true;
		last = now_ns();
		if (!spinner)
			break;
		if (msgs[0].event == UFFD_EVENT_PAGEFAULT)
			follow_fault(c, msgs[0].arg.pagefault.feat.ptid);
	}
	if (spinner) {
		follow_release();
		fault_rearm();
		if (handled && now_ns() - last > limit)
			c->spin_missed = true;
		__atomic_store_n(&c->spinning, 0, __ATOMIC_RELEASE);
	}
}
