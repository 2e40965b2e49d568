// SPDX-License-Identifier: GPL-2.0
/*
 * evict.c - replacement policy (CLOCK) and the global resident budget.
 *
 * Policy: CLOCK over all regions' resident pages in one circular order,
 * with refault counts (clock_filled()).  The reference bit is set by the
 * events pagerd sees for a page: a fault that brings it in again after an
 * eviction, the first write to it (WP fault), an explicit prefetch.
 * First-time and readahead pages start unreferenced, so a wrong readahead
 * guess or a one-off page is the first to go; refaulted pages also get
 * extra laps.  The hand clears a reference bit, else uses up a lap, as it
 * passes; an unreferenced CLEAN or DIRTY page without laps is a victim.  Victims are
 * evicted in batches: write-protected, written back when dirty, dropped from
 * the client (evict channel for private memory, hole punching in the memfd
 * for shared memory).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "pagerd.h"

struct victim {
	struct region *r;
	uint64_t idx;
	bool dirty;
};

/*
 * A page was installed (pd.lock held).  @demand: the faulting page itself,
 * not readahead; @prefetch: asked for by the client.
 *
 * Userfaultfd never reports hits, so the only evidence that a page is hot
 * is that it faults again after it was evicted.  Each demand fault raises
 * the page's heat (0-3, kept in its flags while it is absent: no extra
 * metadata).  A page faulting for the first time comes in on probation,
 * like a readahead page: no reference bit, so it leaves at the hand's
 * next pass unless it is written meanwhile; one-off pages (a scan, the
 * long cold tail of a skewed workload) thus cannot push out pages that
 * keep coming back.  A page that faults again comes in referenced and
 * with heat - 1 extra laps of the hand; the laps run out unless it faults
 * yet again, so the protection ages (2Q/CLOCK-Pro in spirit, with refault
 * counts in place of ghost lists).
 */
void clock_filled(struct page *pg, bool demand, bool prefetch)
{
	unsigned int heat = (pg->flags & PGF_HEAT) >> PGF_HEAT_SHIFT;

	pg->flags &= ~(PGF_REF | PGF_LAPS);
	if (prefetch)
		pg->flags |= PGF_REF;
	if (!demand)
		return;
	if (heat < 3)
		heat++;
	pg->flags = (pg->flags & ~PGF_HEAT) | heat << PGF_HEAT_SHIFT;
	if (heat > 1)
		pg->flags |= PGF_REF | (heat - 1) << PGF_LAPS_SHIFT;
}

void clock_forget(struct region *r)
{
	if (pd.hand == r) {
		pd.hand = NULL;
		pd.hand_idx = 0;
	}
}

static bool region_evictable(struct region *r)
{
	return !r->dying && !r->conn->dead && !r->conn->unresponsive;
}

static struct region *next_region(struct region *r)
{
	struct list *l = r ? r->node.next : pd.regions.next;

	if (l == &pd.regions)
		l = l->next;
	if (l == &pd.regions)
		return NULL;
	return container_of(l, struct region, node);
}

/*
 * pd.lock held.  Marks the victims EVICTING.  Dirty pages of a region whose
 * write-back just failed (disk full, I/O error) are passed over for a
 * while: they cannot be dropped, and retrying them on every fault would
 * only spin.
 */
static int clock_pick(struct victim *v, int want)
{
	uint64_t total = 0, scanned = 0, now = now_ns();
	struct region *r = pd.hand;
	uint64_t i = pd.hand_idx;
	int n = 0;

	for (struct list *l = pd.regions.next; l != &pd.regions; l = l->next)
		total += container_of(l, struct region, node)->npages;
	if (!r) {
		r = next_region(NULL);
		i = 0;
	}
	while (r && n < want && scanned < 2 * total + 1) {
		struct page *pg;

		if (i >= r->npages) {
			r = next_region(r);
			i = 0;
			continue;
		}
		scanned++;
		pg = &r->pages[i];
		if (region_evictable(r) &&
		    (pg->state == PG_CLEAN || (pg->state == PG_DIRTY &&
					       now >= r->wb_fail_until))) {
			if (pg->flags & PGF_REF) {
				pg->flags &= ~PGF_REF;
			} else if (pg->flags & PGF_LAPS) {
				pg->flags -= 1 << PGF_LAPS_SHIFT;
			} else {
				v[n].r = r;
				v[n].idx = i;
				v[n].dirty = pg->state == PG_DIRTY;
				pg_set(r, i, PG_EVICTING);
				r->ops++;
				n++;
			}
		}
		i++;
	}
	pd.hand = r;
	pd.hand_idx = i;
	return n;
}

/* Evict up to @want pages.  Called without pd.lock.  Returns pages dropped. */
int evict_some(uint64_t want)
{
	struct victim v[WB_BATCH];
	uint64_t idx[WB_BATCH];
	bool dirty[WB_BATCH];
	int n, dropped = 0;

	pthread_mutex_lock(&pd.lock);
	n = clock_pick(v, MIN(want, WB_BATCH));
	pthread_mutex_unlock(&pd.lock);

	for (int k = 0; k < n; ) {
		struct region *r = v[k].r;
		int m = 0;

		while (k < n && v[k].r == r) {
			idx[m] = v[k].idx;
			dirty[m++] = v[k++].dirty;
		}
		dropped += evict_pages(r, idx, dirty, m);
		pthread_mutex_lock(&pd.lock);
		r->ops -= m;
		pthread_cond_broadcast(&pd.cond);
		pthread_mutex_unlock(&pd.lock);
	}
	return dropped;
}

/*
 * Eviction ahead of a stream.  A window fill that must first evict as
 * many pages waits for their write-back and the drop round trip before it
 * can copy anything, and the faulting thread waits for both.  So a fill
 * of a window asks (evict_ahead()) for room for the next window, and a
 * background thread makes it while the window is being copied and used:
 * write-back overlaps filling on the other CPU.  The goal is dropped once
 * met, so the headroom exists only while a stream runs and random faults
 * keep the whole budget; the synchronous path in budget_reserve() stays.
 */
static pthread_cond_t evict_cond = PTHREAD_COND_INITIALIZER;
static uint64_t evict_goal;	/* free pages wanted, pd.lock */

void evict_ahead(uint64_t n)
{
	if (n > evict_goal)
		evict_goal = n;
	if (pd.resident + evict_goal > pd.budget)
		pthread_cond_signal(&evict_cond);
}

void *evict_worker(void *arg)
{
	(void)arg;
	io_self();
	pthread_mutex_lock(&pd.lock);
	for (;;) {
		uint64_t deficit;
		int got;

		if (pd.stopping || !evict_goal ||
		    pd.resident + evict_goal <= pd.budget) {
			evict_goal = 0;
			pthread_cond_wait(&evict_cond, &pd.lock);
			continue;
		}
		deficit = pd.resident + evict_goal - pd.budget;
		/* the SIGTERM flush waits for active operations */
		pd.active_ops++;
		pthread_mutex_unlock(&pd.lock);
		got = evict_some(MIN(MAX(deficit, 16), WB_BATCH));
		pthread_mutex_lock(&pd.lock);
		pd.active_ops--;
		pthread_cond_broadcast(&pd.cond);
		if (!got)
			evict_goal = 0;	/* nothing evictable: faults decide */
	}
	return NULL;
}

/*
 * Make room for *n more resident pages.  pd.lock held; it is dropped while
 * evicting, in which case 1 is returned and the caller must revalidate
 * what it looked at.  If nothing can be evicted (every page busy, clients
 * not answering) a single page may exceed the budget: counted, and better
 * than a deadlock.
 */
int budget_reserve(struct region *r, uint64_t *n)
{
	(void)r;
	if (pd.resident + *n <= pd.budget)
		return 0;
	if (!pd.stopping) {
		uint64_t deficit = pd.resident + *n - pd.budget;
		int got;

		pthread_mutex_unlock(&pd.lock);
		/* others may serve the uffd while this waits for a client */
		fault_rearm();
		got = evict_some(MAX(deficit, 16));
		pthread_mutex_lock(&pd.lock);
		if (got)
			return 1;	/* progress: look again */
	}
	if (*n > 1) {
		*n = 1;
		return 1;
	}
	pd.budget_overruns++;
	return 0;
}

/*
 * Ask the client's helper thread to MADV_DONTNEED ranges, and wait for it.
 * The pages are write-protected and written back, so a client write to
 * them is blocked in its WP fault meanwhile and cannot be lost.
 */
/*
 * PAGER_DROP_MOVE: copy what the helper moved into its staging area to
 * @buf (page j of the moved bytes to buf + j pages; have[j] false where the
 * source was a hole).  The caller holds evict_lock until the pages are in
 * the file, because the next move request frees the staging area, and
 * staging is what libpager puts back if pagerd dies before that.  Reading an empty staging page would
 * fault into our own uffd, so the client's pagemap is checked first.
 */
static int read_staging(struct conn *c, const struct pager_drop_done *done,
			char *buf, bool *have)
{
	uint64_t n = done->moved >> PAGE_SHIFT;
	uint64_t pm[PAGER_STAGING_PAGES];
	off_t off = (done->staging >> PAGE_SHIFT) * 8;

	if (n > PAGER_STAGING_PAGES)
		return -EPROTO;
	if (!n)
		return 0;
	if (pread(c->pagemap, pm, n * 8, off) != (ssize_t)(n * 8))
		return -EIO;
	for (uint64_t j = 0; j < n; j++) {
		/* present or swapped: reading /proc/pid/mem swaps it in */
		have[j] = pm[j] & (3ULL << 62);
		if (have[j] && pread(c->memfd, buf + (j << PAGE_SHIFT),
				     PAGE_SIZE, done->staging +
				     (j << PAGE_SHIFT)) != (ssize_t)PAGE_SIZE)
			return -EIO;
	}
	return 0;
}

int drop_private(struct conn *c, const uint64_t *addr, const uint64_t *len,
		 int nr, uint16_t flags, struct pager_drop_done *out,
		 char *buf, bool *have)
{
	struct pager_drop msg;
	struct pager_drop_done done;
	struct pollfd pfd = { .fd = c->evfd, .events = POLLIN };
	bool move = flags & PAGER_DROP_MOVE, slow = false;
	int ret = 0;

	memset(&msg, 0, sizeof(msg));
	/* a move's caller holds it until the moved pages are written */
	if (!move)
		pthread_mutex_lock(&c->evict_lock);
	msg.hdr.magic = PAGER_MAGIC;
	msg.hdr.type = PAGER_MSG_DROP;
	msg.hdr.len = sizeof(msg);
	msg.hdr.seq = ++c->drop_seq;
	msg.hdr.flags = flags;
	msg.nr = nr;
	for (int i = 0; i < nr; i++) {
		msg.r[i].addr = addr[i];
		msg.r[i].len = len[i];
	}
	if (send(c->evfd, &msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
		ret = -errno;
		goto out_unresponsive;
	}
	for (;;) {
		ssize_t got;

		ret = poll(&pfd, 1, pd.client_timeout_ms);
		if (ret == 0 && move) {
			/*
			 * A move cannot be given up on: the helper may still
			 * carry it out, and pages pagerd then believed mapped
			 * would be refilled from the file, losing their
			 * writes.  Stop choosing this client as a victim and
			 * keep waiting; only a closed channel ends the wait.
			 */
			pthread_mutex_lock(&pd.lock);
			if (!c->unresponsive)
				pr_info("client pid %d: slow move answer, waiting",
					c->pid);
			c->unresponsive = true;
			slow = true;
			pthread_mutex_unlock(&pd.lock);
			continue;
		}
		if (ret <= 0) {
			ret = ret ? -errno : -ETIMEDOUT;
			goto out_unresponsive;
		}
		got = recv(c->evfd, &done, sizeof(done), 0);
		if (got != sizeof(done) || done.hdr.magic != PAGER_MAGIC ||
		    done.hdr.type != PAGER_MSG_DROP_DONE) {
			ret = -EPROTO;
			goto out_unresponsive;
		}
		if (done.hdr.seq == msg.hdr.seq)
			break;
	}
	if (slow) {
		/* slow (an emulated machine, a loaded host), not dead */
		pthread_mutex_lock(&pd.lock);
		c->unresponsive = false;
		pthread_mutex_unlock(&pd.lock);
	}
	ret = done.status;
	if (flags & PAGER_DROP_MOVE) {
		int err = read_staging(c, &done, buf, have);

		/* unreadable: report nothing moved, the caller restores */
		if (err)
			done.moved = 0;
		if (err && !ret)
			ret = err;
	}
	if (out)
		*out = done;
	if (!move)
		pthread_mutex_unlock(&c->evict_lock);
	return ret;

out_unresponsive:
	if (!move)
		pthread_mutex_unlock(&c->evict_lock);
	pthread_mutex_lock(&pd.lock);
	c->unresponsive = true;
	pthread_mutex_unlock(&pd.lock);
	pr_info("client pid %d does not answer drop requests (%s)", c->pid,
		strerror(-ret));
	return ret;
}
