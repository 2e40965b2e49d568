// SPDX-License-Identifier: GPL-2.0
/*
 * Everything of bench-pager that talks to pagerd and libpager, in one file
 * so that it is easy to adapt while their API settles.  Each test starts its
 * own pagerd (the budget differs between tests), in the test's child
 * process, so a hung pagerd is killed with the child's process group.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pager.h"
#include "pbench.h"

struct pagerd {
	pid_t pid;
	char sock[256];
};

static int pagerd_start(struct env *e, struct pagerd *d, size_t budget)
{
	char b[32], log[512];
	const char *thr = getenv("BENCH_PAGERD_THREADS");
	int i;

	snprintf(d->sock, sizeof(d->sock), "%s/pagerd.sock", e->outdir);
	unlink(d->sock);
	snprintf(b, sizeof(b), "%zuK", budget >> 10);
	snprintf(log, sizeof(log), "%s/pagerd-%s.log", e->outdir, e->fs);
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (!d->pid) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		{
			/* BENCH_PAGERD_ARGS: extra options, for experiments */
			const char *argv[32] = { "pagerd", "--socket", d->sock,
						 "--budget", b };
			char *extra = getenv("BENCH_PAGERD_ARGS");
			int n = 5;

			if (thr) {
				argv[n++] = "--threads";
				argv[n++] = thr;
			}
			extra = extra ? strdup(extra) : NULL;
			for (char *t = extra ? strtok(extra, " ") : NULL;
			     t && n < 31; t = strtok(NULL, " "))
				argv[n++] = t;
			argv[n] = NULL;
			execvp(e->pagerd, (char **)argv);
		}
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		struct stat st;
		int status;

		if (!stat(d->sock, &st))
			return 0;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return -ECHILD;
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void pagerd_stop(struct pagerd *d)
{
	int i, status;

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	for (i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			return;
		usleep(10000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
}

/* Samples the CPUs pagerd's threads last ran on (stat field 39). */
struct sampler {
	pid_t pid;
	volatile int stop;
	uint64_t mask;
	pthread_t thr;
};

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	char buf[1024];

	while (!s->stop) {
		char *p;

		if (task_cpus(s->pid, buf, sizeof(buf)) == 0) {
			for (p = buf; (p = strchr(p, ':')); p++) {
				int cpu = atoi(p + 1);

				if (cpu >= 0 && cpu < 64)
					s->mask |= 1ULL << cpu;
			}
		}
		usleep(5000);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, pid_t pid)
{
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	pthread_create(&s->thr, NULL, sampler_main, s);
}

static void sampler_stop(struct sampler *s, struct res *r)
{
	size_t off = strlen(r->cpus);
	int c, first = 1;

	s->stop = 1;
	pthread_join(s->thr, NULL);
	off += snprintf(r->cpus + off, sizeof(r->cpus) - off, " pagerd@{");
	for (c = 0; c < 64 && off < sizeof(r->cpus); c++) {
		if (!(s->mask & (1ULL << c)))
			continue;
		off += snprintf(r->cpus + off, sizeof(r->cpus) - off, "%s%d", first ? "" : ",", c);
		first = 0;
	}
	if (off < sizeof(r->cpus))
		snprintf(r->cpus + off, sizeof(r->cpus) - off, "}");
}

static uint32_t *order(size_t n, int random)
{
	uint32_t *o = malloc(n * sizeof(*o));
	size_t i;

	if (!o)
		return NULL;
	for (i = 0; i < n; i++)
		o[i] = i;
	if (random)
		shuffle_u32(o, n, 1234);
	return o;
}

static int data_file(struct env *e, char *path, size_t len, size_t need)
{
	struct stat st;

	snprintf(path, len, "%s/bench-pager.data", e->dir);
	if (stat(path, &st) || (size_t)st.st_size < need)
		return make_file(path, e->len > need ? e->len : need);
	return 0;
}

int pg_run(struct env *e, struct res *r, enum pg_test t, int threads)
{
	static const char *const names[] = {
		"fill-seq", "fill-rnd", "zero-seq", "zero-rnd", "in-seq", "in-rnd",
		"out-seq", "out-rnd", "writeback", "sync", "zipf", "memory",
	};
	struct pager_stats s0, s1;
	struct sampler smp;
	struct pagerd d = { 0 };
	struct pager *p = NULL;
	char path[512], cdf[512], name[64];
	size_t len, budget, n;
	uint32_t *o = NULL;
	char *a = NULL;
	int err = 0, flags = 0, rnd;
	long rss0 = 0;

	memset(&s0, 0, sizeof(s0));
	memset(&s1, 0, sizeof(s1));
	switch (t) {
	case PG_FILL_SEQ: case PG_FILL_RND: case PG_MEMORY:
		len = e->len;
		budget = 2 * e->len;	/* first touch only: nothing evicted */
		break;
	case PG_ZERO_SEQ: case PG_ZERO_RND:
		len = e->len;
		budget = 2 * e->len;
		break;
	case PG_READ_IN_SEQ: case PG_READ_IN_RND:
		len = e->budget / 2;
		budget = e->budget;
		break;
	case PG_SYNC:
		/* the size of the io_uring baseline: its fsync grows with it */
		len = e->len;
		budget = 2 * e->len;
		break;
	default:			/* 4 times the budget */
		len = 4 * e->budget;
		budget = e->budget;
		break;
	}
	n = len / PAGE_SZ;
	rnd = t == PG_FILL_RND || t == PG_ZERO_RND || t == PG_READ_IN_RND ||
	      t == PG_READ_OUT_RND;
	if (t == PG_ZERO_SEQ || t == PG_ZERO_RND) {
		flags = PAGER_TEMPORARY;	/* a fresh empty file, discarded */
	} else if (t == PG_WRITEBACK || t == PG_SYNC) {
		snprintf(path, sizeof(path), "%s/bench-pager.wb", e->dir);
		unlink(path);
	} else if ((err = data_file(e, path, sizeof(path), len))) {
		snprintf(r->note, sizeof(r->note), "cannot create data file: %s", strerror(-err));
		return err;
	}
	err = pagerd_start(e, &d, budget);
	r->value = 0;
	if (err) {
		snprintf(r->note, sizeof(r->note), "pagerd did not start: %s", strerror(-err));
		goto out;
	}
	/* the socket file appears at bind(), before listen(): retry a little */
	for (int i = 0; i < 200; i++) {
		p = pager_connect(d.sock);
		if (p || errno != ECONNREFUSED)
			break;
		usleep(10000);
	}
	if (!p) {
		err = -errno;
		snprintf(r->note, sizeof(r->note), "pager_connect: %s", strerror(errno));
		goto out;
	}
	rss0 = proc_status_kb(d.pid, "RssAnon:");
	a = pager_map(p, len, flags & PAGER_TEMPORARY ? NULL : path, flags);
	if (!a) {
		err = -errno;
		snprintf(r->note, sizeof(r->note), "pager_map: %s", strerror(errno));
		goto out;
	}
	o = order(n, rnd);
	if (!o) {
		err = -ENOMEM;
		goto out;
	}
	snprintf(name, sizeof(name), "pager-%s-%dt", names[t], threads);
	cdf_name(cdf, sizeof(cdf), e, name);

	switch (t) {
	case PG_READ_IN_SEQ: case PG_READ_IN_RND:
	case PG_READ_OUT_SEQ: case PG_READ_OUT_RND: {
		struct res warm = { 0 };

		/* first pass faults everything in; the second is measured */
		touch_pages(a, o, n, threads, 0, &warm, NULL);
		break;
	}
	default:
		break;
	}
	/* what the timed phase allocates: pages, file pages, staging */
	if (t != PG_SYNC && t != PG_MEMORY)
		mem_preheat(2 * len + 64 * MIB);
	pager_stats(p, a, &s0);
	sampler_start(&smp, d.pid);
	switch (t) {
	case PG_ZERO_SEQ: case PG_ZERO_RND: case PG_WRITEBACK: {
		uint64_t t0 = now_ns();

		err = touch_pages(a, o, n, threads, 1, r, cdf);
		pager_stats(p, a, &s1);
		if (t == PG_WRITEBACK) {
			double sec = (now_ns() - t0) / 1e9;

			r->value = (s1.bytes_out - s0.bytes_out) / sec / 1e6;
			snprintf(r->note, sizeof(r->note),
				 "%.0f MiB written back while writing %zu MiB under a %zu MiB budget",
				 (s1.bytes_out - s0.bytes_out) / 1048576.0, len >> 20, budget >> 20);
		}
		break;
	}
	case PG_SYNC: {
		struct res w = { 0 };
		uint64_t t0;

		touch_pages(a, o, n, threads, 1, &w, NULL);
		pager_stats(p, a, &s0);
		mem_preheat(len + 64 * MIB);	/* the file's pages */
		t0 = now_ns();
		err = pager_sync(p, a, len);
		r->mb_per_s = len / ((now_ns() - t0) / 1e9) / 1e6;
		r->pages_per_s = r->mb_per_s * 1e6 / PAGE_SZ;
		pager_stats(p, a, &s1);
		r->value = r->mb_per_s;
		r->ok = !err;
		if (err)
			snprintf(r->note, sizeof(r->note), "pager_sync: %s", strerror(-err));
		else
			snprintf(r->note, sizeof(r->note), "%zu MiB dirty, %.0f MiB written",
				 len >> 20, (s1.bytes_out - s0.bytes_out) / 1048576.0);
		break;
	}
	case PG_ZIPF: {
		size_t tl = env_long("BENCH_PAGER_ZIPF_LEN", 4 * n), i;
		uint32_t *tr = zipf_trace(n, tl, 0.99, 7);
		uint64_t lru, bel, t0, sink = 0;

		if (!tr) {
			err = -ENOMEM;
			break;
		}
		lru = lru_misses(tr, tl, n, budget / PAGE_SZ);
		bel = belady_misses(tr, tl, n, budget / PAGE_SZ);
		t0 = now_ns();
		for (i = 0; i < tl; i++)
			sink += *(volatile uint64_t *)(a + (size_t)tr[i] * PAGE_SZ);
		r->pages_per_s = tl / ((now_ns() - t0) / 1e9) + (sink & 0);
		pager_stats(p, a, &s1);
		r->value = s1.missing_faults - s0.missing_faults;
		r->p50_ns = lru;	/* carried to the report: see pagerbench.c */
		r->p99_ns = bel;
		r->pages = tl;
		r->ok = 1;
		snprintf(r->note, sizeof(r->note),
			 "trace %zu accesses over %zu pages, budget %zu pages; fills %llu",
			 tl, n, budget / PAGE_SZ,
			 (unsigned long long)(s1.fills_file + s1.fills_zero -
					      s0.fills_file - s0.fills_zero));
		free(tr);
		break;
	}
	case PG_MEMORY: {
		long rss1, vm1;

		err = touch_pages(a, o, n, threads, 0, r, NULL);
		pager_stats(p, a, &s1);
		rss1 = proc_status_kb(d.pid, "RssAnon:");
		vm1 = proc_status_kb(d.pid, "VmRSS:");
		r->value = (double)(rss1 - rss0) * 1024 / n;
		snprintf(r->note, sizeof(r->note),
			 "pagerd RssAnon +%ld KiB for %zu MiB resident (VmRSS %ld KiB)",
			 rss1 - rss0, len >> 20, vm1);
		break;
	}
	default:
		err = touch_pages(a, o, n, threads, 0, r, cdf);
		pager_stats(p, a, &s1);
		break;
	}
	sampler_stop(&smp, r);
	if (!err && t != PG_ZIPF && t != PG_SYNC && t != PG_WRITEBACK && t != PG_MEMORY)
		snprintf(r->note, sizeof(r->note), "faults %llu, file fills %llu, zero fills %llu, readahead %llu",
			 (unsigned long long)(s1.missing_faults - s0.missing_faults),
			 (unsigned long long)(s1.fills_file - s0.fills_file),
			 (unsigned long long)(s1.fills_zero - s0.fills_zero),
			 (unsigned long long)(s1.readahead - s0.readahead));
out:
	if (a)
		pager_unmap(p, a);
	if (p)
		pager_disconnect(p);
	pagerd_stop(&d);
	free(o);
	if (err && r->ok == 1)
		r->ok = -1;
	return err;
}
