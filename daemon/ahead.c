// SPDX-License-Identifier: GPL-2.0
/*
 * ahead.c - a helper thread for the second CPU.
 *
 * Some work leaves a CPU idle while one worker does it all: the copy of
 * a stream's window while its thread waits (fault.c), the write-back of a
 * large pager_sync (region.c).  Such work is split, and one part handed
 * to this thread, which runs it while the worker does the rest.  A part
 * is handed over only when the thread is idle, never queued: whoever
 * offers it does the whole work itself otherwise, so nothing waits
 * behind a busy helper.  One thread: these machines have two CPUs.
 *
 * pd.lock protects @ahead and job->done; a job's memory belongs to its
 * submitter, which must not reuse it before done (a waiter frees it at
 * once: the thread does not touch a job after setting done).
 */
#include <unistd.h>

#include "pagerd.h"

static struct {
	struct ahead_job *job;	/* handed over, not yet taken */
	bool busy;		/* a job is handed over or running */
	bool running;		/* the thread exists */
} ahead;
static pthread_cond_t ahead_cond = PTHREAD_COND_INITIALIZER;

/* Would ahead_submit() take a job?  pd.lock held. */
bool ahead_idle(void)
{
	return ahead.running && !ahead.busy && !pd.stopping;
}

/*
 * Hand @job to the helper if it is idle.  pd.lock held.  The SIGTERM
 * flush waits for the job (pd.active_ops); once it has begun
 * (pd.stopping) nothing is handed over.
 */
bool ahead_submit(struct ahead_job *job)
{
	if (!ahead_idle())
		return false;
	job->done = false;
	ahead.busy = true;
	ahead.job = job;
	pd.active_ops++;
	pthread_cond_signal(&ahead_cond);
	return true;
}

/* Wait until @job, handed over by ahead_submit(), is done.  pd.lock held. */
void ahead_wait(struct ahead_job *job)
{
	while (!job->done)
		pthread_cond_wait(&pd.cond, &pd.lock);
}

void *ahead_worker(void *arg)
{
	(void)arg;
	io_self();
	pthread_mutex_lock(&pd.lock);
	ahead.running = true;
	for (;;) {
		struct ahead_job *job = ahead.job;

		if (!job) {
			pthread_cond_wait(&ahead_cond, &pd.lock);
			continue;
		}
		ahead.job = NULL;
		pthread_mutex_unlock(&pd.lock);
		job->fn(job);
		pthread_mutex_lock(&pd.lock);
		job->done = true;	/* its memory may be gone from here on */
		ahead.busy = false;
		pd.active_ops--;
		pthread_cond_broadcast(&pd.cond);
	}
	return NULL;
}
