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
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
 * Could a batch of @c's pages have a staging slot without waiting
 * (asynchronous mode)?  When all are taken, the batch would wait for one
 * of the batches in flight, i.e. for the client's helper, which may have
 * stopped answering.  pd.lock held.
 */
static bool slots_free(const struct conn *c)
{
	return c->slots_held < c->nslots;
}

/*
 * Is a victim of @r one that a thread serving a fault of @self must not
 * evict itself?  A private region of another client in asynchronous mode:
 * its pages are taken by that client's helper (PAGER_DROP_MOVE), and a
 * move request once sent cannot be given up on (evict.c, move_rx()).  A
 * helper that stops answering (a stopped process) would keep the worker,
 * and with it the fault of an unrelated client it serves, until it
 * answers; the eviction threads evict such pages instead
 * (budget_reserve()).  pd.lock held.
 */
static bool victim_foreign(const struct region *r, const struct conn *self)
{
	return self && r->async && r->conn != self;
}

/*
 * pd.lock held.  Marks the victims EVICTING.  Dirty pages of a region whose
 * write-back just failed (disk full, I/O error) are passed over for a
 * while: they cannot be dropped, and retrying them on every fault would
 * only spin.
 *
 * A batch holds pages of one client only: it is evicted one region after
 * the other, and the pages of a later region would stay EVICTING (their
 * faults waiting) for as long as an earlier region's client makes the
 * batch wait.  Unless @full_ok, a client whose staging slots are all in
 * use is passed over (its bits untouched; *@full_seen set), so that
 * eviction goes on with others while its batches are in flight.
 * @self: the client whose fault the caller serves, or NULL (an eviction
 * thread); the hand stops at a victim that is victim_foreign() for it and
 * *@foreign tells whose it is, unless every eviction thread already waits
 * for a late answer: then nobody could take it, and it is passed over.
 */
static int clock_pick(struct victim *v, int want, struct conn *self,
		      bool full_ok, bool *full_seen, struct conn **foreign)
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
		if (n && r->conn != v[0].r->conn)
			break;		/* one client per batch */
		if (!full_ok && !slots_free(r->conn)) {
			/* none of its pages: pass the region at once */
			*full_seen = true;
			scanned += r->npages - i;
			i = r->npages;
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
			} else if (victim_foreign(r, self)) {
				if (pd.evict_stuck < EVICT_WORKERS) {
					*foreign = r->conn;
					break;	/* the hand stays on it */
				}
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

/*
 * Evict up to @want pages.  Called without pd.lock.  Returns pages dropped.
 * @self, *@foreign: see clock_pick(); *@foreign is set to NULL first.
 * Clients whose staging slots are all in use are victims only when there
 * is no other (then the batch waits for a slot, see slot_get()).
 */
int evict_some(uint64_t want, struct conn *self, struct conn **foreign)
{
	struct victim v[WB_BATCH];
	uint64_t idx[WB_BATCH];
	bool dirty[WB_BATCH];
	bool full = false;
	int n, dropped = 0;

	*foreign = NULL;
	pthread_mutex_lock(&pd.lock);
	n = clock_pick(v, MIN(want, WB_BATCH), self, false, &full, foreign);
	if (!n && !*foreign && full)
		n = clock_pick(v, MIN(want, WB_BATCH), self, true, &full,
			       foreign);
	pthread_mutex_unlock(&pd.lock);

	/*
	 * One evict_pages() per run of ascending pages of one region: the
	 * write-back expects idx[] ascending (region_fsync() walks it so),
	 * and where the hand wrapped within a region (one region, or all
	 * lapped) the victims go from its end back to its start.  Passed as
	 * one list, the pages after the wrap were never settled by the
	 * batch's fdatasync and were put back dirty and written again.
	 */
	for (int k = 0; k < n; ) {
		struct region *r = v[k].r;
		int m = 0;

		while (k < n && v[k].r == r && (!m || v[k].idx > idx[m - 1])) {
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
static uint64_t evict_inflight;	/* pages the workers are evicting, pd.lock */
static __thread bool evict_thread;	/* this is an evict_worker() */

/* Pages that stay resident once the workers' batches are done.  pd.lock. */
static uint64_t evict_after(void)
{
	return pd.resident > evict_inflight ? pd.resident - evict_inflight : 0;
}

void evict_ahead(uint64_t n)
{
	if (n > evict_goal)
		evict_goal = n;
	if (evict_after() + evict_goal > pd.budget)
		pthread_cond_signal(&evict_cond);
}

/*
 * EVICT_WORKERS of these run (main.c), so that one client's next batch is
 * moved and written while the last one is settled (its two staging slots,
 * wb_run_move()).  A worker that takes part of a larger deficit wakes
 * another for the rest; the pages in flight count as gone already.
 */
void *evict_worker(void *arg)
{
	(void)arg;
	io_self();
	evict_thread = true;
	pthread_mutex_lock(&pd.lock);
	for (;;) {
		struct conn *foreign;
		uint64_t deficit, want;
		int got;

		if (pd.stopping || !evict_goal ||
		    evict_after() + evict_goal <= pd.budget) {
			evict_goal = 0;
			pthread_cond_wait(&evict_cond, &pd.lock);
			continue;
		}
		deficit = evict_after() + evict_goal - pd.budget;
		want = MIN(MAX(deficit, 16), WB_BATCH);
		if (deficit > want)
			pthread_cond_signal(&evict_cond);
		evict_inflight += want;
		/* the SIGTERM flush waits for active operations */
		pd.active_ops++;
		pthread_mutex_unlock(&pd.lock);
		got = evict_some(want, NULL, &foreign);
		pthread_mutex_lock(&pd.lock);
		evict_inflight -= want;
		pd.active_ops--;
		pthread_cond_broadcast(&pd.cond);
		if (!got)
			evict_goal = 0;	/* nothing evictable: faults decide */
	}
	return NULL;
}

/* --client-timeout from now, for pd.cond and slot_cond (cond_deadline()). */
static void client_deadline(struct timespec *until)
{
	cond_deadline(until, pd.client_timeout_ms * 1000000ULL);
}

/*
 * The next victim belongs to @fc, another client whose helper must move
 * it (victim_foreign()): the eviction threads evict it instead of the
 * worker serving the fault.  Wait until they made room for @n pages, but
 * not for a client that stops answering: only while they work towards
 * the goal, not all of them wait for a late answer already, @fc is still
 * a victim (not marked unresponsive, which happens after --client-timeout
 * and broadcasts pd.cond), and at most --client-timeout.  pd.lock held
 * (dropped while waiting).  Returns whether there is room now.
 */
static bool evict_handoff(struct conn *fc, uint64_t n)
{
	struct timespec until;

	client_deadline(&until);
	evict_ahead(MAX(n, 16));
	while (pd.resident + n > pd.budget && !pd.stopping && evict_goal &&
	       pd.evict_stuck < EVICT_WORKERS && !fc->unresponsive &&
	       !fc->dead) {
		if (pthread_cond_timedwait(&pd.cond, &pd.lock, &until))
			break;
	}
	return pd.resident + n <= pd.budget;
}

/*
 * Make room for *n more resident pages for a fault of @r.  pd.lock held;
 * it is dropped while evicting, in which case 1 is returned and the caller
 * must revalidate what it looked at.  If nothing can be evicted (every
 * page busy, clients not answering, the eviction threads waiting for a
 * stopped client) a single page may exceed the budget: counted, and better
 * than a deadlock.
 */
int budget_reserve(struct region *r, uint64_t *n)
{
	if (pd.resident + *n <= pd.budget)
		return 0;
	if (!pd.stopping) {
		uint64_t deficit = pd.resident + *n - pd.budget;
		struct conn *foreign;
		int got;

		pthread_mutex_unlock(&pd.lock);
		/* others may serve the uffd while this waits for a client */
		fault_rearm();
		got = evict_some(MAX(deficit, 16), r->conn, &foreign);
		pthread_mutex_lock(&pd.lock);
		if (got)
			return 1;	/* progress: look again */
		if (foreign && evict_handoff(foreign, *n))
			return 1;
	}
	if (*n > 1) {
		*n = 1;
		return 1;
	}
	pd.budget_overruns++;
	return 0;
}

/*
 * Late drop answers (synchronous mode).  Giving up on a drop request after
 * --client-timeout used to leave its pages CLEAN while the helper could
 * still drop them: a write after that was lost when the late drop came.
 * Now the pages stay EVICTING (write-protected, their data durable in the
 * file; writers wait in their WP fault) until the helper's answer arrives
 * or the channel closes, which a detached waiter thread watches; the
 * evicting thread itself goes on (its fault is served over budget if need
 * be).  Two events must both happen, in either order, under pd.lock: the
 * waiter is done (drop_answered) and wb_run() has handed over the pages
 * (drop_registered); whichever comes second settles the pages.
 */
static void drop_finish(struct conn *c)
{
	struct region *r = c->drop_r;
	uint64_t *idx = c->drop_idx;
	int n = c->drop_n;

	c->drop_r = NULL;
	c->drop_idx = NULL;
	c->drop_n = 0;
	pthread_mutex_unlock(&pd.lock);
	if (r && n)
		region_drop_settle(r, idx, n);
	free(idx);
	pthread_mutex_lock(&pd.lock);
	c->drop_answered = c->drop_registered = false;
	c->drop_pending = false;
	pthread_cond_broadcast(&pd.cond);
}

/* Is @d, @got bytes received on the evict channel, a well-formed answer? */
static bool drop_answer_ok(const struct pager_drop_done *d, ssize_t got)
{
	return got == sizeof(*d) && d->hdr.magic == PAGER_MAGIC &&
	       d->hdr.type == PAGER_MSG_DROP_DONE;
}

static void *drop_waiter(void *arg)
{
	struct conn *c = arg;
	struct pager_drop_done done;
	struct pollfd pfd = { .fd = c->evfd, .events = POLLIN };
	bool answered = false;

	for (;;) {
		ssize_t got;

		if (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			continue;
		got = recv(c->evfd, &done, sizeof(done), MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0)
			break;	/* closed (or shut down by drop_abandon()) */
		if (drop_answer_ok(&done, got) &&
		    done.hdr.seq == c->drop_pending_seq) {
			answered = true;
			break;
		}
	}
	pthread_mutex_lock(&pd.lock);
	if (answered && !c->dead) {
		/* slow, not dead: a victim again */
		c->unresponsive = false;
		pr_info("client pid %d answered a drop request late", c->pid);
	}
	c->drop_answered = true;
	if (c->drop_registered)
		drop_finish(c);
	pthread_mutex_unlock(&pd.lock);
	return NULL;
}

/* drop_private() timed out on request @seq: start the waiter.  evict_lock held. */
static int drop_wait_late(struct conn *c, uint32_t seq)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	pthread_mutex_lock(&pd.lock);
	if (c->dead) {
		/* torn down: drop_abandon() has run, nobody would end a wait */
		pthread_mutex_unlock(&pd.lock);
		return -ESHUTDOWN;
	}
	/* not a victim until it answers (set before the waiter clears it) */
	c->unresponsive = true;
	c->drop_pending = true;
	c->drop_pending_seq = seq;
	pthread_mutex_unlock(&pd.lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	ret = -pthread_create(&t, &attr, drop_waiter, c);
	pthread_attr_destroy(&attr);
	if (ret) {
		/* no waiter: keep waiting here rather than risk a late drop */
		struct pollfd pfd = { .fd = c->evfd, .events = POLLIN };

		pr_err("client pid %d: no drop waiter thread: %s", c->pid,
		       strerror(-ret));
		poll(&pfd, 1, -1);
		pthread_mutex_lock(&pd.lock);
		c->drop_pending = false;
		pthread_mutex_unlock(&pd.lock);
		return -EAGAIN;
	}
	return 0;
}

/*
 * wb_run() got -ETIMEDOUT from drop_private(): the @n pages of @r (all
 * EVICTING, PGF_DROPWAIT) wait for the helper's late answer.  Always
 * called after a timeout, also with n == 0.
 */
void drop_register(struct conn *c, struct region *r, const uint64_t *idx,
		   int n)
{
	uint64_t *copy = n ? malloc(n * sizeof(*idx)) : NULL;

	if (n && !copy) {
		/* cannot park them: wait for the answer here */
		pthread_mutex_lock(&pd.lock);
		while (!c->drop_answered)
			pthread_cond_wait(&pd.cond, &pd.lock);
		pthread_mutex_unlock(&pd.lock);
		region_drop_settle(r, idx, n);
		pthread_mutex_lock(&pd.lock);
		c->drop_answered = false;
		c->drop_pending = false;
		pthread_cond_broadcast(&pd.cond);
		pthread_mutex_unlock(&pd.lock);
		return;
	}
	if (n)
		memcpy(copy, idx, n * sizeof(*idx));
	pthread_mutex_lock(&pd.lock);
	c->drop_r = r;
	c->drop_idx = copy;
	c->drop_n = n;
	c->drop_registered = true;
	if (c->drop_answered)
		drop_finish(c);
	pthread_mutex_unlock(&pd.lock);
}

/*
 * The connection goes away (socket closed): stop waiting for a late drop
 * answer, so that its regions can be released.  Our end of the channel is
 * shut down, which ends the waiter; the pages are then settled by what the
 * pagemap shows.  (A helper that still drops afterwards only affects a
 * client pagerd no longer serves.)
 */
void drop_abandon(struct conn *c)
{
	pthread_mutex_lock(&pd.lock);
	if (!c->drop_pending) {
		pthread_mutex_unlock(&pd.lock);
		return;
	}
	pthread_mutex_unlock(&pd.lock);
	shutdown(c->evfd, SHUT_RDWR);
	pthread_mutex_lock(&pd.lock);
	while (c->drop_pending)
		pthread_cond_wait(&pd.cond, &pd.lock);
	pthread_mutex_unlock(&pd.lock);
}

/*
 * Read @len bytes of @c's staging area at @addr, pages the helper moved
 * there, into @buf.  Returns 0 or -EIO.  Testing (--fail-staging): fails
 * while that file exists, to exercise what takes such a batch back
 * (drop_restore()).
 */
int staging_read(struct conn *c, char *buf, size_t len, uint64_t addr)
{
	if (pd.fail_staging_path && !access(pd.fail_staging_path, F_OK))
		return -EIO;
	return pread(c->memfd, buf, len, addr) == (ssize_t)len ? 0 : -EIO;
}

/*
 * PAGER_DROP_MOVE: copy what the helper moved into its staging area to
 * @buf (page j of the moved bytes to buf + j pages; have[j] false where the
 * source was a hole); with !@data only set have[] (the helper wrote the
 * pages itself).  @max: the pages @buf and @have hold, the request's
 * pages; the answer comes from the client and must never make us write
 * past them (drop_move() has already checked it, this is the last line).
 * The caller owns the batch's staging slot until the pages
 * are in the file, because the next move request into the slot frees it,
 * and staging is what libpager puts back if pagerd dies before that.
 * Reading an empty staging page would fault into our own uffd, so the
 * client's pagemap is checked first.
 */
static int read_staging(struct conn *c, const struct pager_drop_done *done,
			char *buf, bool *have, uint64_t max, bool data)
{
	uint64_t n = done->moved >> PAGE_SHIFT;
	uint64_t pm[PAGER_STAGING_PAGES];
	off_t off = (done->staging >> PAGE_SHIFT) * 8;

	if (n > max || n > PAGER_STAGING_PAGES ||
	    (done->moved & (PAGE_SIZE - 1)))
		return -EPROTO;
	if (!n)
		return 0;
	if (pread(c->pagemap, pm, n * 8, off) != (ssize_t)(n * 8))
		return -EIO;
	/* present or swapped: reading /proc/pid/mem swaps it in */
	for (uint64_t j = 0; j < n; j++)
		have[j] = pm[j] & (3ULL << 62);
	/*
	 * One read per run of such pages.  Never across a hole: staging is
	 * registered with the uffd, and reading a hole would raise a fault
	 * only pagerd itself could resolve.
	 */
	for (uint64_t j = 0, e; j < n; j = e) {
		size_t len;

		for (e = j + 1; e < n && have[e] == have[j]; e++)
			;
		if (!have[j] || !data)
			continue;
		len = (e - j) << PAGE_SHIFT;
		if (staging_read(c, buf + (j << PAGE_SHIFT), len,
				 done->staging + (j << PAGE_SHIFT)))
			return -EIO;
	}
	return 0;
}

/*
 * Does the answer @d to a move request of @bytes (the ranges' total
 * length) whose pages belong at @dst in staging say only what the helper
 * can have done?  It moves the ranges in order, back to back from @dst
 * (see PAGER_DROP_MOVE), so at most @bytes, whole pages, starting at @dst.
 * Anything else comes from a broken or hostile client: believed, it would
 * make pagerd (root) write past its per-batch arrays and buffer (an
 * append request's have[] and buf start inside the batch's), or take
 * another address of the client for staging.
 */
static bool drop_move_answer_ok(const struct pager_drop_done *d,
				uint64_t bytes, uint64_t dst)
{
	if (d->moved & (PAGE_SIZE - 1) || d->moved > bytes)
		return false;
	return !d->moved || d->staging == dst;
}

/* The next request's sequence number; 0 means "none".  evict_lock held. */
static uint32_t drop_next_seq(struct conn *c)
{
	if (!++c->drop_seq)
		++c->drop_seq;
	return c->drop_seq;
}

static void drop_msg_init(struct pager_drop *msg, uint16_t flags,
			  const uint64_t *addr, const uint64_t *len, int nr)
{
	memset(msg, 0, sizeof(*msg));
	msg->hdr.magic = PAGER_MAGIC;
	msg->hdr.type = PAGER_MSG_DROP;
	msg->hdr.len = sizeof(*msg);
	msg->hdr.flags = flags;
	msg->nr = nr;
	for (int i = 0; i < nr; i++) {
		msg->r[i].addr = addr[i];
		msg->r[i].len = len[i];
	}
}

/* Staging slot @s of the client's helper: where its pages go. */
uint64_t slot_base(struct conn *c, unsigned int s)
{
	return c->staging_base +
	       (uint64_t)s * PAGER_STAGING_PAGES * PAGE_SIZE;
}

/* Has @c's helper stopped answering (for now)?  evict_lock held. */
static bool conn_stalled(struct conn *c)
{
	bool stalled;

	if (c->rx_err)
		return true;
	pthread_mutex_lock(&pd.lock);
	stalled = c->unresponsive || c->dead;
	pthread_mutex_unlock(&pd.lock);
	return stalled;
}

/*
 * Wait for a free staging slot of @c and own it (see struct conn).  A slot
 * whose last batch was not released goes first: the new batch frees it,
 * as the next batch always did with one slot, so an old copy does not
 * stay in staging for long (libpager's restore puts the newest batch back
 * first, but a stale copy would still land on a page evicted since).
 *
 * The slots are freed by the batches in flight, i.e. by the helper's
 * answers, which a stopped client never gives.  Nothing has been sent for
 * this batch yet, so unlike a move in flight it can be given up on: when
 * the client is marked unresponsive (move_rx() wakes us), its channel
 * failed or it is gone, or after --client-timeout.  Returns the slot, or
 * -EAGAIN, -ETIMEDOUT: the caller puts its pages back as they were.
 */
int slot_get(struct conn *c)
{
	unsigned int s, pick;
	struct timespec until;
	int ret = 0;

	client_deadline(&until);
	pthread_mutex_lock(&c->evict_lock);
	for (;;) {
		pick = c->nslots;
		for (s = 0; s < c->nslots; s++) {
			if (c->slot_busy[s])
				continue;
			if (pick == c->nslots || c->slot_stale[s])
				pick = s;
		}
		if (pick < c->nslots)
			break;
		if (conn_stalled(c)) {
			ret = -EAGAIN;
			break;
		}
		ret = -pthread_cond_timedwait(&c->slot_cond, &c->evict_lock,
					      &until);
		if (ret)
			break;
	}
	if (!ret) {
		c->slot_busy[pick] = true;
		pthread_mutex_lock(&pd.lock);
		c->slots_held++;
		pthread_mutex_unlock(&pd.lock);
	}
	pthread_mutex_unlock(&c->evict_lock);
	return ret ? ret : (int)pick;
}

/*
 * The batch in slot @s is done.  @moved: the helper moved pages into the
 * slot; @released: drop_release() was sent for it.  Moved and not
 * released, the slot may keep copies until its next batch.
 */
void slot_put(struct conn *c, unsigned int s, bool moved, bool released)
{
	pthread_mutex_lock(&c->evict_lock);
	c->slot_busy[s] = false;
	pthread_mutex_lock(&pd.lock);
	c->slots_held--;
	pthread_mutex_unlock(&pd.lock);
	if (released)
		c->slot_stale[s] = false;
	else if (moved)
		c->slot_stale[s] = true;
	pthread_cond_broadcast(&c->slot_cond);
	pthread_mutex_unlock(&c->evict_lock);
}

/*
 * The move batch in slot @s is in the file (or back in the region): let
 * the helper forget its staging copy (see PAGER_DROP_RELEASE).  No answer
 * is waited for, and the send does not wait either (a full channel must
 * not hold up eviction).  The caller still owns the slot.  Returns 0 or
 * -errno: if the release could not be sent the helper keeps the copy,
 * and the caller must put the slot back as unreleased (slot_put()), so
 * that the slot's next batch, which frees it, comes soon; meanwhile a
 * restore would put the copy back over a page the application dropped
 * itself since.
 */
int drop_release(struct conn *c, unsigned int s)
{
	struct pager_drop msg;
	ssize_t sent;
	int ret = 0;

	drop_msg_init(&msg, PAGER_DROP_RELEASE, NULL, NULL, 0);
	msg.slot = s;
	pthread_mutex_lock(&c->evict_lock);
	msg.hdr.seq = drop_next_seq(c);
	sent = send(c->evfd, &msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent != sizeof(msg))
		ret = sent < 0 ? -errno : -EIO;
	pthread_mutex_unlock(&c->evict_lock);
	if (ret)
		pr_info("client pid %d: release of staging slot %u not sent: %s",
			c->pid, s, strerror(-ret));
	return ret;
}

/* Is the client's page at @addr present or swapped (its pagemap)? */
static bool client_has(struct conn *c, uint64_t addr)
{
	uint64_t pm;

	if (pread(c->pagemap, &pm, 8, (addr >> PAGE_SHIFT) * 8) != 8)
		return false;
	return pm & (3ULL << 62);
}

/*
 * A move request into slot @s failed without an answer (the client was
 * killed, its helper with it, and the channel closed): the helper may have
 * moved some of the pages to staging at @dst before it stopped, and
 * staging then holds their only copy.  Read them as read_staging() would
 * (page j of the request's ranges, in order, to @buf, @have[j] set); the
 * caller treats them as moved.  A page counts as moved if the region no
 * longer has it and its staging slot does: the helper moves each page to
 * exactly that place, and a move into a place still holding an older page
 * fails, leaving the page in the region.  (Not excluded: a place still
 * holding a page of an earlier batch whose RELEASE the helper never
 * processed, taken for a page the client had dropped itself; telling them
 * apart would need a batch epoch in staging.)  The mm stays readable while
 * the guardian keeps it.  Returns the pages found; 0 when staging's place
 * is not known.  The caller owns slot @s.
 */
int drop_salvage(struct conn *c, unsigned int s, uint64_t dst,
		 const uint64_t *addr, const uint64_t *len, int nr, char *buf,
		 bool *have)
{
	uint64_t end = slot_base(c, s) + PAGER_STAGING_PAGES * PAGE_SIZE;
	struct pager_drop_done d = { .staging = dst };
	uint64_t j = 0;
	int found = 0;

	if (!c->staging_base || dst < slot_base(c, s) || dst >= end)
		return 0;
	for (int i = 0; i < nr; i++)
		d.moved += len[i];
	d.moved = MIN(d.moved, end - dst);
	if (read_staging(c, &d, buf, have, d.moved >> PAGE_SHIFT, true))
		return 0;
	for (int i = 0; i < nr; i++) {
		for (uint64_t off = 0; off < len[i] && j < d.moved >> PAGE_SHIFT;
		     off += PAGE_SIZE, j++) {
			if (have[j] && client_has(c, addr[i] + off))
				have[j] = false;	/* never moved */
			found += have[j];
		}
	}
	return found;
}

/* Wakes evict_handoff(), which waits for no unresponsive client. */
static void conn_unresponsive(struct conn *c, bool on)
{
	pthread_mutex_lock(&pd.lock);
	c->unresponsive = on;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
}

/*
 * An eviction thread starts (@d 1) or stops (-1) waiting for a move answer
 * later than --client-timeout (see evict_handoff()).
 */
static void evict_stuck_add(int d)
{
	if (!evict_thread)
		return;
	pthread_mutex_lock(&pd.lock);
	pd.evict_stuck += d;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
}

/*
 * Read one message of the evict channel for whoever waits for it (see
 * struct conn): store an answer for the slot that awaits it, drop a stale
 * one, or fail the channel.  Called with evict_lock held and rx_reading
 * set by the caller; the lock is dropped while waiting.  *@slow: the
 * helper took longer than --client-timeout.
 */
static void move_rx(struct conn *c, bool *slow)
{
	struct pollfd pfd = { .fd = c->evfd, .events = POLLIN };
	struct pager_drop_done d;
	ssize_t got = -1;
	int ret, err = 0;

	pthread_mutex_unlock(&c->evict_lock);
	ret = poll(&pfd, 1, pd.client_timeout_ms);
	if (ret == 0) {
		/*
		 * A move cannot be given up on: the helper may still carry
		 * it out, and pages pagerd then believed mapped would be
		 * refilled from the file, losing their writes.  Stop
		 * choosing this client as a victim and keep waiting; only a
		 * closed channel ends the wait.
		 */
		if (!*slow) {
			pr_info("client pid %d: slow move answer, waiting",
				c->pid);
			evict_stuck_add(1);
		}
		conn_unresponsive(c, true);
		*slow = true;
	} else if (ret < 0) {
		err = errno == EINTR ? 0 : -errno;
	} else {
		got = recv(c->evfd, &d, sizeof(d), MSG_DONTWAIT);
		if (got < 0 && errno != EAGAIN && errno != EINTR)
			err = -errno;
		else if (got == 0)
			err = -ECONNRESET;	/* the helper is gone */
		else if (got > 0 && !drop_answer_ok(&d, got))
			err = -EPROTO;
	}
	pthread_mutex_lock(&c->evict_lock);
	c->rx_reading = false;
	if (err && !c->rx_err)
		c->rx_err = err;
	for (unsigned int s = 0; !err && got > 0 && s < c->nslots; s++) {
		if (c->rx_seq[s] == d.hdr.seq && !c->rx_have[s]) {
			c->rx_done[s] = d;
			c->rx_have[s] = true;
		}
	}
	pthread_cond_broadcast(&c->slot_cond);
}

/*
 * Send @msg, a request for slot @slot, which the caller owns, and wait for
 * its answer in *@done.  An answer is never given up on (see move_rx()):
 * only a failed channel ends the wait.  *@slow: it came later than
 * --client-timeout (counted in evict_stuck until drop_waited()).  Returns
 * 0 or the channel's -errno.  evict_lock held (dropped while waiting).
 */
static int drop_ask(struct conn *c, unsigned int slot, struct pager_drop *msg,
		    struct pager_drop_done *done, bool *slow)
{
	int ret = 0;

	if (c->rx_err)
		return c->rx_err;
	msg->slot = slot;
	msg->hdr.seq = drop_next_seq(c);
	if (send(c->evfd, msg, sizeof(*msg), MSG_NOSIGNAL) != sizeof(*msg))
		return -errno;
	c->rx_seq[slot] = msg->hdr.seq;
	c->rx_have[slot] = false;
	for (;;) {
		if (c->rx_have[slot]) {
			*done = c->rx_done[slot];
			c->rx_have[slot] = false;
			break;
		}
		if (c->rx_err) {
			ret = c->rx_err;
			break;
		}
		if (c->rx_reading) {
			pthread_cond_wait(&c->slot_cond, &c->evict_lock);
			/* the reader's wait timed out: ours is as late */
			if (!*slow && conn_stalled(c)) {
				*slow = true;
				evict_stuck_add(1);
			}
			continue;
		}
		c->rx_reading = true;
		move_rx(c, slow);
	}
	c->rx_seq[slot] = 0;
	return ret;
}

/*
 * The wait of drop_ask() is over, with @ret; evict_lock no longer held.
 * A helper that did not answer is no victim any more; a slow one that did
 * is one again.
 */
static int drop_waited(struct conn *c, int ret, bool slow)
{
	if (slow)
		evict_stuck_add(-1);
	if (ret) {
		conn_unresponsive(c, true);
		pr_info("client pid %d does not answer drop requests (%s)",
			c->pid, strerror(-ret));
	} else if (slow) {
		/* slow (an emulated machine, a loaded host), not dead */
		conn_unresponsive(c, false);
	}
	return ret;
}

/*
 * Send a PAGER_DROP_MOVE request for slot @slot, which the caller owns,
 * and wait for its answer; the moved pages are then copied to @buf as
 * read_staging() says (or only have[] set, when the helper wrote them).
 * @dst: where in the slot the helper must put the request's pages (the
 * slot's start, or after what the batch's earlier requests moved); @buf
 * and @have hold the request's pages and no more.  Returns the helper's
 * status or -errno; *@out gets the answer.  An answer that does not fit
 * the request fails the channel like a malformed one (-EPROTO, nothing
 * moved: the caller salvages from @dst what the helper did move).  Pages
 * moved that could not be read are reported as not moved (-EIO), with
 * *@unread set: staging holds their only copy, and only the helper can
 * put them back (drop_restore()).
 */
int drop_move(struct conn *c, unsigned int slot, uint64_t dst,
	      const uint64_t *addr, const uint64_t *len, int nr,
	      uint16_t flags, struct pager_drop_done *out, char *buf,
	      bool *have, bool *unread)
{
	struct pager_drop msg;
	struct pager_drop_done done = { 0 };
	uint64_t bytes = 0;
	bool slow = false;
	int ret, err;

	*unread = false;
	for (int i = 0; i < nr; i++)
		bytes += len[i];
	drop_msg_init(&msg, flags | PAGER_DROP_MOVE, addr, len, nr);
	pthread_mutex_lock(&c->evict_lock);
	ret = drop_ask(c, slot, &msg, &done, &slow);
	if (!ret && !drop_move_answer_ok(&done, bytes, dst)) {
		pr_err("client pid %d: bad move answer (%llu bytes at %#llx for %llu at %#llx)",
		       c->pid, (unsigned long long)done.moved,
		       (unsigned long long)done.staging,
		       (unsigned long long)bytes, (unsigned long long)dst);
		/* as a malformed answer: no request goes to it any more */
		if (!c->rx_err)
			c->rx_err = -EPROTO;
		pthread_cond_broadcast(&c->slot_cond);
		ret = -EPROTO;
		memset(&done, 0, sizeof(done));
	}
	pthread_mutex_unlock(&c->evict_lock);
	if (drop_waited(c, ret, slow)) {
		if (out)
			*out = done;
		return ret;
	}
	ret = done.status;
	/* written by the helper: only which pages it had is needed */
	done.written = (flags & PAGER_DROP_WRITE) && !ret && done.written == 1;
	err = read_staging(c, &done, buf, have, bytes >> PAGE_SHIFT,
			   !done.written);
	/* unreadable: report nothing moved, the caller restores */
	if (err) {
		*unread = done.moved > 0;
		done.moved = 0;
		done.written = 0;
	}
	if (err && !ret)
		ret = err;
	if (out)
		*out = done;
	return ret;
}

/*
 * Have the helper put the batch in slot @slot, which the caller owns,
 * back into the region (PAGER_DROP_RESTORE), and wait for it.  Returns 0
 * when it did: the slot is empty, and every page of the batch the region
 * has is its latest content; *@lost is then the helper's status (a page
 * it could not put back: its copy is gone).  Else -EOPNOTSUPP (a helper
 * without the request) or the channel's -errno, and staging is as it was.
 */
int drop_restore(struct conn *c, unsigned int slot, int *lost)
{
	struct pager_drop msg;
	struct pager_drop_done done = { 0 };
	bool slow = false;
	int ret;

	if (!c->helper_restore)
		return -EOPNOTSUPP;
	drop_msg_init(&msg, PAGER_DROP_RESTORE, NULL, NULL, 0);
	pthread_mutex_lock(&c->evict_lock);
	ret = drop_ask(c, slot, &msg, &done, &slow);
	pthread_mutex_unlock(&c->evict_lock);
	ret = drop_waited(c, ret, slow);
	if (!ret)
		*lost = done.status;
	return ret;
}

/*
 * Ask the client's helper thread to MADV_DONTNEED ranges, and wait for it
 * (synchronous mode; a client's channel carries either these or moves).
 * The pages are write-protected and written back, so a client write to
 * them is blocked in its WP fault meanwhile and cannot be lost.
 */
int drop_private(struct conn *c, const uint64_t *addr, const uint64_t *len,
		 int nr)
{
	struct pager_drop msg;
	struct pager_drop_done done;
	struct pollfd pfd = { .fd = c->evfd, .events = POLLIN };
	bool pending;
	int ret = 0;

	drop_msg_init(&msg, 0, addr, len, nr);
	pthread_mutex_lock(&c->evict_lock);
	pthread_mutex_lock(&pd.lock);
	pending = c->drop_pending;
	pthread_mutex_unlock(&pd.lock);
	if (pending) {
		/* the helper has not answered the last one: nothing sent */
		pthread_mutex_unlock(&c->evict_lock);
		return -EBUSY;
	}
	msg.hdr.seq = drop_next_seq(c);
	if (send(c->evfd, &msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
		ret = -errno;
		goto out_unresponsive;
	}
	for (;;) {
		ssize_t got;

		ret = poll(&pfd, 1, pd.client_timeout_ms);
		if (ret == 0) {
			/*
			 * The helper may still carry the drop out later; the
			 * caller keeps the pages EVICTING (drop_register())
			 * and a waiter settles them when the answer comes.
			 */
			ret = drop_wait_late(c, msg.hdr.seq);
			if (ret)
				goto out_unresponsive;
			pthread_mutex_unlock(&c->evict_lock);
			pr_info("client pid %d does not answer a drop request in time, waiting",
				c->pid);
			return -ETIMEDOUT;
		}
		if (ret < 0) {
			ret = -errno;
			goto out_unresponsive;
		}
		got = recv(c->evfd, &done, sizeof(done), 0);
		if (!drop_answer_ok(&done, got)) {
			ret = -EPROTO;
			goto out_unresponsive;
		}
		if (done.hdr.seq == msg.hdr.seq)
			break;
	}
	pthread_mutex_unlock(&c->evict_lock);
	return done.status;

out_unresponsive:
	pthread_mutex_unlock(&c->evict_lock);
	conn_unresponsive(c, true);
	pr_info("client pid %d does not answer drop requests (%s)", c->pid,
		strerror(-ret));
	return ret;
}
