// SPDX-License-Identifier: GPL-2.0
/*
 * bench-pager: pagerd against its baselines on one file system, natively.
 *
 * usage: bench-pager -d DIR -f LABEL -o OUTDIR [-P PAGERD] [-m MB] [-b MB]
 *   -d  directory on the file system under test (backing files go there)
 *   -f  its label in the report (tmpfs, ext4, ...)
 *   -o  where latency CDFs and pagerd's log go
 *   -m  region of the first-touch tests (BENCH_PAGER_MB, default 1024)
 *   -b  pagerd budget of the eviction tests (BENCH_PAGER_BUDGET_MB, 128)
 *
 * Every test runs in its own child process (and process group, so pagerd
 * goes with it) under a time limit (BENCH_PAGER_TIMEOUT seconds, 180): a
 * hang is reported as such, never waited for.  Output as bench-dirty:
 * "@md " Markdown and "@csv " lines on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pbench.h"

enum kind { K_ANON, K_MMAP, K_UFFD, K_URING, K_PAGER };

struct job {
	const char *group;	/* table it belongs to */
	const char *name;
	enum kind kind;
	int a, b, c;		/* kind-specific: random, shared, cold, test */
	int threads;
	struct res *r;		/* in shared memory */
};

#define J(g, n, k, a_, b_, c_, t_) { g, n, k, a_, b_, c_, t_, NULL }
static struct job jobs[] = {
	J("touch", "kernel anon first touch (write), seq", K_ANON, 0, 0, 0, 1),
	J("touch", "kernel anon first touch (write), random", K_ANON, 1, 0, 0, 1),
	J("touch", "kernel anon first touch (write), seq", K_ANON, 0, 0, 0, 2),
	J("touch", "kernel mmap MAP_PRIVATE warm, seq", K_MMAP, 0, 0, 0, 1),
	J("touch", "kernel mmap MAP_PRIVATE warm, random", K_MMAP, 1, 0, 0, 1),
	J("touch", "kernel mmap MAP_SHARED warm, seq", K_MMAP, 0, 1, 0, 1),
	J("touch", "kernel mmap MAP_SHARED warm, random", K_MMAP, 1, 1, 0, 1),
	J("touch", "kernel mmap MAP_PRIVATE cold, seq", K_MMAP, 0, 0, 1, 1),
	J("touch", "kernel mmap MAP_PRIVATE cold, random", K_MMAP, 1, 0, 1, 1),
	J("touch", "kernel mmap MAP_SHARED cold, seq", K_MMAP, 0, 1, 1, 1),
	J("touch", "kernel mmap MAP_SHARED cold, random", K_MMAP, 1, 1, 1, 1),
	J("touch", "minimal uffd handler (pread+COPY), seq", K_UFFD, 0, 0, 0, 1),
	J("touch", "minimal uffd handler (pread+COPY), random", K_UFFD, 1, 0, 0, 1),
	J("touch", "minimal uffd handler (pread+COPY), seq", K_UFFD, 0, 0, 0, 2),
	J("touch", "minimal uffd handler (pread+COPY), random", K_UFFD, 1, 0, 0, 2),
	/* the hand-off alone: what no handler design can go below */
	J("touch", "null uffd handler (ZEROPAGE, no read), random", K_UFFD, 1, 1, 0, 1),
	/* as an external pager is: the hand-off switches address spaces */
	J("touch", "minimal uffd handler, another process (pread+COPY), random", K_UFFD, 1, 0, 1, 1),
	J("touch", "pagerd fill from file, seq", K_PAGER, 0, 0, PG_FILL_SEQ, 1),
	J("touch", "pagerd fill from file, random", K_PAGER, 1, 0, PG_FILL_RND, 1),
	J("touch", "pagerd fill from file, seq", K_PAGER, 0, 0, PG_FILL_SEQ, 2),
	J("touch", "pagerd fill from file, random", K_PAGER, 1, 0, PG_FILL_RND, 2),
	J("touch", "pagerd zero fill (write), seq", K_PAGER, 0, 0, PG_ZERO_SEQ, 1),
	J("touch", "pagerd zero fill (write), random", K_PAGER, 1, 0, PG_ZERO_RND, 1),
	J("read", "pagerd re-read, working set budget/2, seq", K_PAGER, 0, 0, PG_READ_IN_SEQ, 1),
	J("read", "pagerd re-read, working set budget/2, random", K_PAGER, 1, 0, PG_READ_IN_RND, 1),
	J("read", "pagerd re-read, working set 4x budget, seq", K_PAGER, 0, 0, PG_READ_OUT_SEQ, 1),
	J("read", "pagerd re-read, working set 4x budget, random", K_PAGER, 1, 0, PG_READ_OUT_RND, 1),
	J("read", "pagerd re-read, working set 4x budget, random", K_PAGER, 1, 0, PG_READ_OUT_RND, 2),
	J("write", "io_uring sequential write + fsync", K_URING, 0, 0, 0, 1),
	J("write", "pagerd write-back during eviction (4x budget)", K_PAGER, 0, 0, PG_WRITEBACK, 1),
	J("write", "pagerd pager_sync", K_PAGER, 0, 0, PG_SYNC, 1),
	J("zipf", "pagerd Zipf(0.99) trace, 4x budget", K_PAGER, 1, 0, PG_ZIPF, 1),
	J("mem", "pagerd memory per managed page", K_PAGER, 0, 0, PG_MEMORY, 1),
};
#define NJOBS (sizeof(jobs) / sizeof(jobs[0]))

static struct env env;

/*
 * The write-back targets are ratios of two jobs run one after the other,
 * and a host whose speed drifts from second to second moves one against
 * the other: the same binary gave 0.37-0.69.  So the baseline and both
 * pagerd write-back jobs run again as adjacent pairs (BENCH_PAGER_PAIRS
 * in all, the first being the main run), and the targets use the median
 * of the pairs' ratios; the tables keep the main run's figures.
 */
#define MAX_PAIRS 9
static int npairs = 1;
static struct res *pair_res;	/* [pair][0 uring, 1 write-back, 2 sync] */

/* Does @name contain one of the '|'-separated substrings of @pats? */
static int name_matches(const char *name, const char *pats)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", pats);
	for (char *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
		if (strstr(name, t))
			return 1;
	return 0;
}

static int run_job(struct job *j)
{
	struct res *r = j->r;

	switch (j->kind) {
	case K_ANON:
		return bl_anon(&env, r, j->a, j->threads);
	case K_MMAP:
		return bl_mmap(&env, r, j->b, j->c, j->a);
	case K_UFFD:
		return bl_uffd(&env, r, j->a, j->threads, j->b, j->c);
	case K_URING:
		return bl_uring_write(&env, r);
	case K_PAGER:
		return pg_run(&env, r, j->c, j->threads);
	}
	return -EINVAL;
}

/* Run a job in a child with a time limit; its result lands in j->r. */
static void run_isolated(struct job *j, int timeout_s)
{
	uint64_t t0 = now_ns();
	pid_t pid;
	int status;

	fprintf(stderr, "bench-pager: %s: %s, %d thread%s\n", env.fs, j->name, j->threads,
		j->threads > 1 ? "s" : "");
	pid = fork();
	if (pid < 0) {
		snprintf(j->r->note, sizeof(j->r->note), "fork: %s", strerror(errno));
		j->r->ok = -1;
		return;
	}
	if (!pid) {
		int err;

		setpgid(0, 0);
		err = run_job(j);
		if (err && j->r->ok != 0 && !j->r->note[0])
			snprintf(j->r->note, sizeof(j->r->note), "failed: %s", strerror(-err));
		if (err && j->r->ok == 1)
			j->r->ok = -1;
		_exit(err ? 1 : 0);
	}
	setpgid(pid, pid);
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (now_ns() - t0 > (uint64_t)timeout_s * 1000000000ULL) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			j->r->ok = -1;
			snprintf(j->r->note, sizeof(j->r->note), "HUNG: killed after %d s", timeout_s);
			return;
		}
		usleep(20000);
	}
	/* anything left in the group (pagerd) goes too */
	kill(-pid, SIGKILL);
	if (WIFSIGNALED(status)) {
		j->r->ok = -1;
		snprintf(j->r->note, sizeof(j->r->note), "crashed: signal %d", WTERMSIG(status));
	} else if (j->r->ok == 1 && WEXITSTATUS(status)) {
		j->r->ok = -1;
	}
}

static struct job *find(const char *name, int threads)
{
	size_t i;

	for (i = 0; i < NJOBS; i++)
		if (!strcmp(jobs[i].name, name) && jobs[i].threads == threads)
			return jobs[i].r->ok == 1 ? &jobs[i] : NULL;
	return NULL;
}

static void csv_quote(char *dst, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 2 < len; s++)
		dst[o++] = *s == ',' ? ';' : *s;
	dst[o] = '\0';
}

static const char *status_of(const struct res *r)
{
	return r->ok == 1 ? "" : r->ok == 0 ? "n/a: " : "FAILED: ";
}

static void table_touch(const char *group, const char *title)
{
	size_t i;

	printf("@md\n@md #### %s (%s, %s)\n@md\n", title, env.fs, env.dir);
	printf("@md | test | threads | p50 | p99 | pages/s | MB/s | CPUs | notes |\n");
	printf("@md |---|---:|---:|---:|---:|---:|---|---|\n");
	for (i = 0; i < NJOBS; i++) {
		struct res *r = jobs[i].r;

		if (strcmp(jobs[i].group, group))
			continue;
		if (r->ok != 1) {
			printf("@md | %s | %d | | | | | | %s%s |\n", jobs[i].name, jobs[i].threads,
			       status_of(r), r->note);
			continue;
		}
		printf("@md | %s | %d | %s | %s | %.0f | %.1f | %s | %s |\n", jobs[i].name,
		       jobs[i].threads, r->p50_ns ? fmt_ns(r->p50_ns) : "",
		       r->p99_ns ? fmt_ns(r->p99_ns) : "", r->pages_per_s, r->mb_per_s,
		       r->cpus, r->note);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Median of the paired ratios of pagerd job @k (1 write-back, 2 sync)
 * over the io_uring baseline; their list to @list.  -1 if none measured.
 */
static double pair_median(int k, char *list, size_t len)
{
	double v[MAX_PAIRS];
	int n = 0;
	size_t o = 0;

	list[0] = 0;
	for (int i = 0; i < npairs; i++) {
		struct res *u = &pair_res[i * 3], *p = &pair_res[i * 3 + k];

		if (u->ok != 1 || p->ok != 1 || u->mb_per_s <= 0)
			continue;
		v[n] = p->value / u->mb_per_s;
		o += snprintf(list + o, len > o ? len - o : 0, "%s%.2f", n ? ", " : "",
			      v[n]);
		n++;
	}
	if (!n)
		return -1;
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void target(const char *what, double ratio, const char *cmp, double limit,
		   int avail, const char *why)
{
	int met = !strcmp(cmp, ">=") ? ratio >= limit : ratio <= limit;
	const char *st = !avail ? "n/a" : met ? "met" : "not met";

	if (avail)
		printf("@md | %s | %s | %s | %s %.2f | %s |\n", what, env.fs, fmt_ratio(ratio),
		       cmp, limit, st);
	else
		printf("@md | %s | %s | n/a | %s %.2f | n/a (%s) |\n", what, env.fs, cmp, limit, why);
	csv("ptarget,%s,%s,%.4f,%s %.2f,%s", env.fs, what, avail ? ratio : -1, cmp, limit, st);
}

static void report(void)
{
	struct job *pseq = find("pagerd fill from file, seq", 1);
	struct job *prnd = find("pagerd fill from file, random", 1);
	struct job *mseq = find("minimal uffd handler (pread+COPY), seq", 1);
	struct job *mrnd = find("minimal uffd handler (pread+COPY), random", 1);
	struct job *cold = find("kernel mmap MAP_SHARED cold, seq", 1);
	struct job *pcold = find("kernel mmap MAP_PRIVATE cold, seq", 1);
	struct job *wb = find("pagerd write-back during eviction (4x budget)", 1);
	struct job *sync = find("pagerd pager_sync", 1);
	struct job *zipf = find("pagerd Zipf(0.99) trace, 4x budget", 1);
	struct job *mem = find("pagerd memory per managed page", 1);
	char lwb[128], lsync[128];
	double mwb = pair_median(1, lwb, sizeof(lwb));
	double msync = pair_median(2, lsync, sizeof(lsync));
	int hung = 0, pager_ran = 0;
	size_t i;

	/* the stricter of the two cold-cache baselines */
	if (!cold || (pcold && pcold->r->mb_per_s > cold->r->mb_per_s))
		cold = pcold;

	for (i = 0; i < NJOBS; i++) {
		struct res *r = jobs[i].r;
		char cpus[200], note[220];

		csv_quote(cpus, sizeof(cpus), r->cpus);
		csv_quote(note, sizeof(note), r->note);
		csv("pager,%s,%s,%s,%d,%d,%.0f,%.0f,%.0f,%.2f,%.4f,%s,%s", env.fs, jobs[i].group,
		    jobs[i].name, jobs[i].threads, r->ok, r->p50_ns, r->p99_ns, r->pages_per_s,
		    r->mb_per_s, r->value, cpus, note);
		if (jobs[i].kind == K_PAGER) {
			hung += !strncmp(r->note, "HUNG", 4);
			pager_ran += r->ok != 0;
		}
	}
	printf("@md\n@md ### Pager on %s (%s): %zu MiB first-touch region, %zu MiB budget for eviction tests\n",
	       env.fs, env.dir, env.len >> 20, env.budget >> 20);
	table_touch("touch", "First touch: latency per page and throughput");
	table_touch("read", "Re-read throughput inside and beyond the budget");
	table_touch("write", "Write-back bandwidth (MB/s column; pagerd: bytes written back per second of the run)");
	printf("@md\n@md #### Zipf(0.99) trace, misses against offline replacement (%s)\n@md\n", env.fs);
	if (zipf) {
		printf("@md | pagerd misses (missing faults) | exact LRU | Belady (MIN) | pagerd / LRU | accesses/s | notes |\n");
		printf("@md |---:|---:|---:|---:|---:|---|\n");
		printf("@md | %.0f | %.0f | %.0f | %s | %.0f | %s |\n", zipf->r->value,
		       zipf->r->p50_ns, zipf->r->p99_ns,
		       fmt_ratio(zipf->r->p50_ns ? zipf->r->value / zipf->r->p50_ns : -1),
		       zipf->r->pages_per_s, zipf->r->note);
	} else {
		for (i = 0; i < NJOBS; i++)
			if (jobs[i].kind == K_PAGER && jobs[i].c == PG_ZIPF)
				printf("@md %s%s\n", status_of(jobs[i].r), jobs[i].r->note);
	}
	if (mem)
		printf("@md\n@md pagerd memory: %.1f bytes per managed 4 KiB page (%s).\n",
		       mem->r->value, mem->r->note);

	printf("@md\n@md #### Pager targets (%s, same run)\n@md\n", env.fs);
	printf("@md | target | fs | ratio | limit | status |\n@md |---|---|---:|---:|---|\n");
	target("seq first-touch read: pagerd / best kernel cold mmap (MB/s)",
	       pseq && cold ? pseq->r->mb_per_s / cold->r->mb_per_s : -1, ">=", 1,
	       pseq && cold, pseq ? "mmap n/a" : "pagerd n/a");
	target("seq first-touch read: pagerd / minimal handler (MB/s)",
	       pseq && mseq ? pseq->r->mb_per_s / mseq->r->mb_per_s : -1, ">=", 40,
	       pseq && mseq, pseq ? "minimal handler n/a" : "pagerd n/a");
	target("random first touch p50: pagerd / minimal handler",
	       prnd && mrnd ? prnd->r->p50_ns / mrnd->r->p50_ns : -1, "<=", 0.5,
	       prnd && mrnd, prnd ? "minimal handler n/a" : "pagerd n/a");
	target("random first touch pages/s: pagerd / minimal handler",
	       prnd && mrnd ? prnd->r->pages_per_s / mrnd->r->pages_per_s : -1, ">=", 2,
	       prnd && mrnd, prnd ? "minimal handler n/a" : "pagerd n/a");
	target("random first touch: pagerd p99 / p50",
	       prnd ? prnd->r->p99_ns / prnd->r->p50_ns : -1, "<=", 3, !!prnd, "pagerd n/a");
	printf("@md | no pagerd run hangs | %s | %d hung | = 0 | %s |\n", env.fs, hung,
	       !pager_ran ? "n/a (pagerd n/a)" : hung ? "not met" : "met");
	csv("ptarget,%s,no pagerd run hangs,%d,= 0,%s", env.fs, hung,
	    !pager_ran ? "n/a" : hung ? "not met" : "met");
	target("Zipf misses: pagerd / exact LRU",
	       zipf && zipf->r->p50_ns ? zipf->r->value / zipf->r->p50_ns : -1, "<=", 1.1,
	       !!zipf, "pagerd n/a");
	target("write-back: pagerd / io_uring write (MB/s)", mwb, ">=", 0.8, mwb >= 0,
	       wb ? "io_uring n/a" : "pagerd n/a");
	/* the second write-back figure: write-back alone, with fsync */
	target("write-back by pager_sync: pagerd / io_uring write (MB/s)", msync, ">=", 0.8,
	       msync >= 0, sync ? "io_uring n/a" : "pagerd n/a");
	if (mem)
		printf("@md | pagerd metadata per managed page | %s | %.1f B | <= 16 B | %s |\n",
		       env.fs, mem->r->value, mem->r->value <= 16 ? "met" : "not met");
	else
		printf("@md | pagerd metadata per managed page | %s | n/a | <= 16 B | n/a (pagerd n/a) |\n",
		       env.fs);
	csv("ptarget,%s,pagerd metadata per managed page,%.2f,<= 16,%s", env.fs,
	    mem ? mem->r->value : -1, !mem ? "n/a" : mem->r->value <= 16 ? "met" : "not met");
	if (npairs > 1)
		printf("@md\n@md The write-back ratios are the median of %d pairs of adjacent runs of the io_uring baseline and the pagerd job (BENCH_PAGER_PAIRS; the tables show the first): during eviction %s; by pager_sync %s.\n",
		       npairs, lwb[0] ? lwb : "n/a", lsync[0] ? lsync : "n/a");
	fflush(stdout);
}

/* The pairs (see pair_res): the main run's results, then the reruns. */
static void run_pairs(int timeout)
{
	struct job *j[3] = {
		find("io_uring sequential write + fsync", 1),
		find("pagerd write-back during eviction (4x budget)", 1),
		find("pagerd pager_sync", 1),
	};

	long want = env_long("BENCH_PAGER_PAIRS", 3);

	npairs = want < 1 ? 1 : want > MAX_PAIRS ? MAX_PAIRS : want;
	pair_res = mmap(NULL, MAX_PAIRS * 3 * sizeof(*pair_res), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pair_res == MAP_FAILED) {
		npairs = 0;
		return;
	}
	for (int k = 0; k < 3; k++)
		if (j[k])
			pair_res[k] = *j[k]->r;
	for (int i = 1; i < npairs; i++) {
		for (int k = 0; k < 3; k++) {
			struct job rerun;

			if (!j[k] || j[k]->r->ok != 1)
				continue;
			rerun = *j[k];
			rerun.r = &pair_res[i * 3 + k];
			run_isolated(&rerun, timeout);
		}
	}
}

int main(int argc, char **argv)
{
	struct res *shared;
	struct statfs sfs;
	size_t i;
	int opt, timeout;

	env.len = env_long("BENCH_PAGER_MB", 1024) * MIB;
	env.budget = env_long("BENCH_PAGER_BUDGET_MB", 128) * MIB;
	env.pagerd = "pagerd";
	timeout = env_long("BENCH_PAGER_TIMEOUT", 180);
	while ((opt = getopt(argc, argv, "d:f:o:P:m:b:")) != -1) {
		switch (opt) {
		case 'd': env.dir = optarg; break;
		case 'f': env.fs = optarg; break;
		case 'o': env.outdir = optarg; break;
		case 'P': env.pagerd = optarg; break;
		case 'm': env.len = strtoul(optarg, NULL, 0) * MIB; break;
		case 'b': env.budget = strtoul(optarg, NULL, 0) * MIB; break;
		default:
			fprintf(stderr, "usage: bench-pager -d DIR -f LABEL -o OUTDIR [-P PAGERD] [-m MB] [-b MB]\n");
			return 2;
		}
	}
	if (!env.dir || !env.outdir || !env.len || !env.budget) {
		fprintf(stderr, "bench-pager: -d and -o are required\n");
		return 2;
	}
	if (!env.fs)
		env.fs = "fs";
	if (4 * env.budget > env.len)
		env.len = 4 * env.budget;	/* the data file serves the 4x tests */
	env.tmpfs = !statfs(env.dir, &sfs) && sfs.f_type == 0x01021994;
	env.npages = env.len / PAGE_SZ;
	env.seq = malloc(env.npages * sizeof(uint32_t));
	env.rnd = malloc(env.npages * sizeof(uint32_t));
	shared = mmap(NULL, NJOBS * sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!env.seq || !env.rnd || shared == MAP_FAILED)
		return 1;
	for (i = 0; i < env.npages; i++)
		env.seq[i] = env.rnd[i] = i;
	shuffle_u32(env.rnd, env.npages, 99);
	for (i = 0; i < NJOBS; i++) {
		const char *only = getenv("BENCH_PAGER_ONLY");

		jobs[i].r = &shared[i];
		/* quick iterations: only the jobs whose name has one of these */
		if (only && *only && !name_matches(jobs[i].name, only)) {
			snprintf(jobs[i].r->note, sizeof(jobs[i].r->note),
				 "skipped (BENCH_PAGER_ONLY)");
			continue;
		}
		run_isolated(&jobs[i], timeout);
	}
	run_pairs(timeout);
	report();
	return 0;
}
