// SPDX-License-Identifier: GPL-2.0
/*
 * retry.c - wake, after a pause, the threads whose fill failed.
 *
 * A fill whose read of the backing file fails (EIO from the device, a
 * file system that went away under us) must not give the faulting thread
 * zeros or stale data: the page stays ABSENT and the thread stays blocked
 * in its fault.  But nothing would wake it again.  The kernel does not
 * repeat a fault pagerd has read, so only another thread's fault of the
 * same page retried the fill, and a single-threaded client waited for
 * ever, also once the file could be read again.  So the thread is woken
 * here after FILL_RETRY_MS: it faults again and the fill is tried again,
 * for as long as it fails.
 */
#include <errno.h>

#include "pagerd.h"

#define FILL_RETRY_MS	200
#define FILL_RETRY_MAX	1024	/* waiting wakes; beyond, woken at once */

struct retry {
	uint64_t region;	/* id: the region may be gone by then */
	uint64_t idx;
	uint64_t due;		/* now_ns() */
};

/* All under pd.lock. */
static struct retry retries[FILL_RETRY_MAX];
static unsigned int nr_retries;
static pthread_cond_t retry_cond = PTHREAD_COND_INITIALIZER;

/*
 * The fill of page @idx of @r failed, and the thread that faulted on it
 * waits: wake it later.  pd.lock held.  Returns false when too many wait
 * already; the caller then wakes it at once.
 */
bool fill_retry_later(struct region *r, uint64_t idx)
{
	if (nr_retries == FILL_RETRY_MAX)
		return false;
	retries[nr_retries++] = (struct retry){
		.region = r->id, .idx = idx,
		.due = now_ns() + FILL_RETRY_MS * 1000000ULL,
	};
	pthread_cond_signal(&retry_cond);
	return true;
}

static struct region *region_by_id(uint64_t id)
{
	for (struct list *l = pd.regions.next; l != &pd.regions; l = l->next) {
		struct region *r = container_of(l, struct region, node);

		if (r->id == id)
			return r;
	}
	return NULL;
}

/* Wait on retry_cond until @due (now_ns()), or a signal.  pd.lock held. */
static void retry_wait(uint64_t due)
{
	struct timespec until;
	uint64_t now = now_ns();

	if (due == UINT64_MAX) {
		pthread_cond_wait(&retry_cond, &pd.lock);
		return;
	}
	cond_deadline(&until, due > now ? due - now : 0);
	pthread_cond_timedwait(&retry_cond, &pd.lock, &until);
}

void *retry_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pd.lock);
	for (;;) {
		uint64_t now = now_ns(), next = UINT64_MAX;

		for (unsigned int i = 0; i < nr_retries; ) {
			struct retry t = retries[i];
			struct region *r;

			if (t.due > now) {
				next = MIN(next, t.due);
				i++;
				continue;
			}
			/* the last one takes its place: look at i again */
			retries[i] = retries[--nr_retries];
			r = region_by_id(t.region);
			/* on shutdown, faults stay blocked for the next pagerd */
			if (!r || r->dying || pd.stopping)
				continue;
			r->ops++;
			pthread_mutex_unlock(&pd.lock);
			uffd_wake(r, t.idx, 1);
			pthread_mutex_lock(&pd.lock);
			r->ops--;
			pthread_cond_broadcast(&pd.cond);
		}
		retry_wait(next);
	}
	return NULL;
}
