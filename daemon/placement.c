// SPDX-License-Identifier: GPL-2.0
/*
 * placement.c - serve a client's faults on the faulting thread's CPU.
 *
 * A fault costs its thread a sleep and a wake-up.  When the handler runs
 * on the faulting thread's CPU, the thread's sleep hands the CPU straight
 * to the handler and the handler's UFFDIO_COPY wakes the thread on the
 * same CPU: about 10 us on these machines.  When it runs on another CPU,
 * the faulting thread's CPU goes idle and waking it from there costs
 * tens of microseconds more (docs/bench).  The scheduler cannot know
 * where pagerd's worker should run, so the connection's polling worker
 * (fault.c) follows the thread it serves:
 *
 * - after a fault it looks up the faulting thread's CPU (/proc/TID/stat,
 *   a few microseconds: when it starts and then every FOLLOW_EVERY
 *   faults) and restricts itself to that CPU, which moves it there;
 * - it then waits for the next fault asleep in ppoll() rather than
 *   polling: asleep it does not compete with the thread, so the load
 *   balancer has no reason to pull the two apart (a worker that polls
 *   on the thread's CPU is runnable all the time, and the balancer moves
 *   the thread to the idle CPU: measured, they chase each other), and
 *   the fault's wake-up of a worker bound to the faulting CPU is local;
 * - it gets its own CPU mask back when it stops serving the connection,
 *   so that no sleeping worker stays bound to a CPU its client has left.
 *
 * What still separates them: the worker is running when its UFFDIO_COPY
 * wakes the thread, so the scheduler may wake the thread on the idle CPU
 * (select_idle_sibling(); 0.3-2% of the faults, measured with the
 * thread's se.nr_migrations), and its faults cross CPUs until the next
 * look.  Looking more often does not help: every move of the worker
 * makes the next such migration likelier, and following at every fault
 * made the two chase each other (2000-5000 migrations per 30000 faults
 * against 100-600).  A SCHED_IDLE worker would leave its CPU "idle" for
 * that decision (fewer crossings, measured), but bound to a CPU that
 * another task keeps busy it would get almost no CPU time, and the
 * client's faults would stall: the worker keeps the normal policy.
 *
 * The faulting thread's id comes with UFFD_FEATURE_THREAD_ID, which
 * libpager asks for; a client without it (ptid 0) is served by polling
 * as before.  Only pagerd's own affinity changes, never the client's.
 * The conn's follow_* fields belong to its polling worker (one at a time,
 * handed over through conn->spinning); @place to each worker thread.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pagerd.h"

/* look at the faulting thread's CPU again after this many faults */
#define FOLLOW_EVERY	32
/* a followed connection's worker sleeps this long for the next fault */
#define FOLLOW_IDLE_NS	(2 * 1000 * 1000LL)

static __thread struct {
	bool saved;		/* own_mask holds the thread's mask */
	int cpu;		/* bound to this CPU by follow_fault(), or -1 */
	cpu_set_t own_mask;
} place = { .cpu = -1 };

/* The CPU @tid last ran on or will be woken on (/proc/TID/stat), or -1. */
static int thread_cpu(pid_t tid)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field = 2;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: skip past it */
	p = strrchr(buf, ')');
	for (; p && *p; p++) {
		if (*p != ' ')
			continue;
		if (++field == 39)	/* "processor" */
			return atoi(p + 1);
	}
	return -1;
}

static void bind_to(int cpu)
{
	cpu_set_t one;

	if (!place.saved) {
		if (sched_getaffinity(0, sizeof(place.own_mask),
				      &place.own_mask))
			return;
		place.saved = true;
	}
	/* never outside what pagerd was given (taskset, cpusets) */
	if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &place.own_mask))
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return;

	if (place.cpu != cpu)
		__atomic_add_fetch(&pd.follow_moves, 1, __ATOMIC_RELAXED);
	place.cpu = cpu;
}

/* The polling worker of @c handled a fault of thread @tid. */
void follow_fault(struct conn *c, pid_t tid)
{
	int cpu;

	if (!pd.follow || tid <= 0)
		return;
	/*
	 * Not on every change of thread: with several faulting threads
	 * the worker would chase them all, one migration per fault.
	 */
	if (place.cpu >= 0 && ++c->follow_count < FOLLOW_EVERY)
		return;
	c->follow_count = 0;
	cpu = thread_cpu(tid);
	if (cpu >= 0 && cpu != place.cpu)
		bind_to(cpu);
}

/*
 * Wait for the next message on @uffd if this worker follows a thread;
 * false: it does not, or none came for FOLLOW_IDLE_NS.
 */
bool follow_wait(int uffd)
{
	struct timespec ts = { .tv_nsec = FOLLOW_IDLE_NS };
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };

	if (place.cpu < 0)
		return false;
	return ppoll(&pfd, 1, &ts, NULL) > 0 && (pfd.revents & POLLIN);
}

/* The worker stops serving the connection: its own CPU mask back. */
void follow_release(void)
{
	if (place.cpu < 0)
		return;
	sched_setaffinity(0, sizeof(place.own_mask), &place.own_mask);
	place.cpu = -1;
}
