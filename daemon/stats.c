// SPDX-License-Identifier: GPL-2.0
/*
 * stats.c - counters per region and global, the fault latency histogram
 * (time from reading a fault message to its resolution, log2 microsecond
 * buckets), text and JSON formatting.  pd.lock protects all of it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pagerd.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * @ns from now in *@until, on CLOCK_REALTIME: the clock of
 * pthread_cond_timedwait() with default condition attributes.
 */
void cond_deadline(struct timespec *until, uint64_t ns)
{
	clock_gettime(CLOCK_REALTIME, until);
	until->tv_sec += ns / 1000000000;
	until->tv_nsec += ns % 1000000000;
	if (until->tv_nsec >= 1000000000) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000;
	}
}

/* pd.lock held */
void stats_add(struct region *r, size_t off, uint64_t v)
{
	*(uint64_t *)((char *)&r->st + off) += v;
	*(uint64_t *)((char *)&pd.st + off) += v;
}

/* pd.lock held */
void stats_fault_latency(struct region *r, uint64_t ns)
{
	uint64_t us = ns / 1000;
	int b = 0;

	while (us && b < PAGER_LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	r->st.lat_hist[b]++;
	pd.st.lat_hist[b]++;
}

void stats_fill_global(struct pager_stats *st)
{
	pthread_mutex_lock(&pd.lock);
	*st = pd.st;
	st->nr_regions = pd.nr_regions;
	st->resident = pd.resident;
	st->dirty = pd.dirty;
	st->budget = pd.budget;
	pthread_mutex_unlock(&pd.lock);
}

void stats_fill_region(struct region *r, struct pager_stats *st)
{
	pthread_mutex_lock(&pd.lock);
	*st = r->st;
	st->nr_regions = 1;
	st->resident = r->resident;
	st->dirty = r->dirty;
	st->budget = pd.budget;
	pthread_mutex_unlock(&pd.lock);
}

struct out {
	char *buf;
	size_t len, pos;
};

static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->pos >= o->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos = MIN(o->pos + n, o->len - 1);
}

#define U(x) ((unsigned long long)(x))

static void fmt_stats(struct out *o, const struct pager_stats *s, bool json,
		      const char *ind)
{
	static const char *const names[] = {
		"faults", "missing_faults", "wp_faults", "fills_file",
		"fills_zero", "readahead", "writebacks", "evictions",
		"bytes_in", "bytes_out", "wb_errors", "vanished",
	};
	const uint64_t vals[] = {
		s->faults, s->missing_faults, s->wp_faults, s->fills_file,
		s->fills_zero, s->readahead, s->writebacks, s->evictions,
		s->bytes_in, s->bytes_out, s->wb_errors, s->vanished,
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (json)
			outf(o, "%s\"%s\": %llu, ", ind, names[i], U(vals[i]));
		else
			outf(o, "%s%-15s %llu\n", ind, names[i], U(vals[i]));
	}
	if (json) {
		outf(o, "\"last_error\": %d, \"resident_pages\": %llu, "
		     "\"dirty_pages\": %llu, \"fault_latency_us_log2\": [",
		     s->last_error, U(s->resident), U(s->dirty));
		for (int b = 0; b < PAGER_LAT_BUCKETS; b++)
			outf(o, "%s%llu", b ? ", " : "", U(s->lat_hist[b]));
		outf(o, "]");
		return;
	}
	outf(o, "%s%-15s %d\n%s%-15s %llu\n%s%-15s %llu\n", ind, "last_error",
	     s->last_error, ind, "resident_pages", U(s->resident), ind,
	     "dirty_pages", U(s->dirty));
	outf(o, "%sfault latency (us):", ind);
	for (int b = 0; b < PAGER_LAT_BUCKETS; b++)
		if (s->lat_hist[b])
			outf(o, " <%llu:%llu", 1ULL << b, U(s->lat_hist[b]));
	outf(o, "\n");
}

int stats_format(char *buf, size_t len, bool json)
{
	struct out o = { .buf = buf, .len = len };
	struct pager_stats g;
	bool first = true;

	buf[0] = 0;
	stats_fill_global(&g);
	pthread_mutex_lock(&pd.lock);
	if (json) {
		outf(&o, "{\"budget_pages\": %llu, \"regions\": %u, "
		     "\"budget_overruns\": %llu, \"wp_mode\": \"%s\", "
		     "\"kernel_wp_async\": %s, \"follow_cpu\": %s, "
		     "\"follow_moves\": %llu, \"global\": {", U(pd.budget),
		     pd.nr_regions, U(pd.budget_overruns),
		     pd.wp_async ? "async" : "sync",
		     pager_kernel_has_wp_async() ? "true" : "false",
		     pd.follow ? "true" : "false",
		     U(__atomic_load_n(&pd.follow_moves, __ATOMIC_RELAXED)));
	} else {
		outf(&o, "pagerd: budget %llu pages, %llu resident, %llu dirty,"
		     " %u regions, %llu budget overruns\n", U(pd.budget),
		     U(g.resident), U(g.dirty), pd.nr_regions,
		     U(pd.budget_overruns));
		outf(&o, "  write-protect: %s (kernel WP_ASYNC+MOVE: %s)\n",
		     pd.wp_async ? "asynchronous" : "synchronous",
		     pager_kernel_has_wp_async() ? "yes" : "no");
		outf(&o, "  fault worker follows the faulting thread's CPU: "
		     "%s, %llu moves\n", pd.follow ? "yes" : "no",
		     U(__atomic_load_n(&pd.follow_moves, __ATOMIC_RELAXED)));
	}
	g.resident = pd.resident;
	g.dirty = pd.dirty;
	fmt_stats(&o, &g, json, json ? "" : "  ");
	outf(&o, json ? "}, \"region\": [" : "");
	for (struct list *l = pd.regions.next; l != &pd.regions; l = l->next) {
		struct region *r = container_of(l, struct region, node);
		struct pager_stats s = r->st;

		s.resident = r->resident;
		s.dirty = r->dirty;
		if (json)
			outf(&o, "%s{\"id\": %llu, \"pid\": %d, \"addr\": %llu, "
			     "\"len\": %llu, \"shared\": %s, ", first ? "" : ", ",
			     U(r->id), r->conn->pid, U(r->addr), U(r->len),
			     r->flags & PAGER_SHARED ? "true" : "false");
		else
			outf(&o, "region %llu: pid %d addr %#llx len %llu%s\n",
			     U(r->id), r->conn->pid, U(r->addr), U(r->len),
			     r->flags & PAGER_SHARED ? " shared" : "");
		fmt_stats(&o, &s, json, json ? "" : "  ");
		if (json)
			outf(&o, "}");
		first = false;
	}
	if (json)
		outf(&o, "]}\n");
	pthread_mutex_unlock(&pd.lock);
	return o.pos;
}
