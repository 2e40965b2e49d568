// SPDX-License-Identifier: GPL-2.0
/*
 * bench-dirty: cost and accuracy of dirty-page tracking of a private
 * anonymous range, dtrack's three methods side by side with the kernel's own
 * interfaces, all in the same process and boot so that only ratios matter.
 *
 * For every method and dirty fraction: write a known random set of pages
 * (first write after a reset, then a second "later" write to the same pages),
 * then collect+reset and compare the answer with the set written.
 *
 * usage: bench-dirty [-m MB] [-r REPS] [-t MS] [-v 4k|thp|both] [-M method,...]
 * Knobs also from the environment: BENCH_DIRTY_MB, BENCH_DIRTY_REPS,
 * BENCH_DIRTY_FRAC_MS (-t: after this long on one fraction, no further
 * epochs are started; at least one always runs).
 * Output: "@md " Markdown table lines and "@csv " lines on stdout, progress on
 * stderr.  A method the kernel or module lacks is reported as n/a.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/dtrack.h>

#include "common.h"
#include "compat.h"
#include "dtnl.h"

#define NFRAC 5
static const char *const frac_label[NFRAC] = { "0", "1/512", "1/64", "1/8", "1" };
static const double frac_val[NFRAC] = { 0, 1.0 / 512, 1.0 / 64, 1.0 / 8, 1 };

struct ctx {
	char *base;
	size_t len, npages;
	/* kernel soft-dirty */
	int clear_refs_fd, pagemap_fd;
	uint64_t *pm_buf;
	/* userfaultfd */
	int uffd;
	pthread_t thr;
	int thr_running;
	uint64_t *uffd_bm;		/* pages the sync handler saw written */
	struct page_region *vec;
	/* dtrack */
	struct dtnl nl;
	int nl_open;
	uint32_t id;
	int dt_method;
	uint64_t conservative;		/* collects answered conservatively */
	uint64_t module_ns;		/* module's own time of the last collect */
	char reason[160];
};

struct method {
	const char *name;
	const char *desc;
	int dt_method;			/* DTRACK_METHOD_* or 0 for kernel interfaces */
	int (*init)(struct ctx *c);
	int (*collect)(struct ctx *c, uint64_t *bm);
	void (*fini)(struct ctx *c);
};

static void set_reason(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

static inline void touch(char *p, uint64_t v)
{
	*(volatile uint64_t *)p = v;
}

/* --- kernel soft-dirty: clear_refs (4) + pagemap bit 55 ------------------- */

#define PM_SOFT_DIRTY	(1ULL << 55)

static int cr_reset(struct ctx *c)
{
	if (pwrite(c->clear_refs_fd, "4", 1, 0) != 1)
		return -errno;
	return 0;
}

static int cr_init(struct ctx *c)
{
	uint64_t e;

	c->clear_refs_fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	c->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->clear_refs_fd < 0 || c->pagemap_fd < 0) {
		set_reason(c, "cannot open /proc/self/clear_refs or pagemap: %s",
			   strerror(errno));
		return -errno;
	}
	c->pm_buf = malloc(c->npages * sizeof(uint64_t));
	if (!c->pm_buf)
		return -ENOMEM;
	/* A kernel without CONFIG_MEM_SOFT_DIRTY never sets bit 55. */
	if (cr_reset(c))
		return -errno;
	touch(c->base, 1);
	if (pread(c->pagemap_fd, &e, sizeof(e), (uintptr_t)c->base / PAGE_SZ * 8) != 8 ||
	    !(e & PM_SOFT_DIRTY)) {
		set_reason(c, "kernel without soft-dirty (CONFIG_MEM_SOFT_DIRTY)");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int cr_collect(struct ctx *c, uint64_t *bm)
{
	size_t want = c->npages * 8, got = 0, i;
	off_t off = (uintptr_t)c->base / PAGE_SZ * 8;

	while (got < want) {
		ssize_t n = pread(c->pagemap_fd, (char *)c->pm_buf + got, want - got, off + got);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += n;
	}
	for (i = 0; i < c->npages; i++)
		if (c->pm_buf[i] & PM_SOFT_DIRTY)
			bm_set(bm, i);
	return cr_reset(c);
}

static void cr_fini(struct ctx *c)
{
	if (c->clear_refs_fd >= 0)
		close(c->clear_refs_fd);
	if (c->pagemap_fd >= 0)
		close(c->pagemap_fd);
	free(c->pm_buf);
}

/* --- userfaultfd common ---------------------------------------------------- */

static int uffd_open(struct ctx *c, uint64_t features, int nonblock)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct uffdio_register reg = {
		.range = { (uintptr_t)c->base, c->len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)c->base, c->len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	c->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
	if (c->uffd < 0) {
		set_reason(c, "userfaultfd: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(c->uffd, UFFDIO_API, &api)) {
		set_reason(c, "userfaultfd features 0x%llx not supported (%s)",
			   (unsigned long long)features, strerror(errno));
		return -EOPNOTSUPP;
	}
	if (ioctl(c->uffd, UFFDIO_REGISTER, &reg)) {
		set_reason(c, "UFFDIO_REGISTER_MODE_WP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp)) {
		set_reason(c, "UFFDIO_WRITEPROTECT: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void uffd_close(struct ctx *c)
{
	if (c->uffd >= 0)
		close(c->uffd);
	c->uffd = -1;
}

/* --- PAGEMAP_SCAN + async userfaultfd WP (6.7+) ---------------------------- */

#define VEC_LEN 4096

static int scan_init(struct ctx *c)
{
	int err = uffd_open(c, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 1);

	if (err) {
		if (err == -EOPNOTSUPP)
			set_reason(c, "needs UFFD_FEATURE_WP_ASYNC (Linux 6.7+)");
		return err;
	}
	c->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	c->vec = calloc(VEC_LEN, sizeof(*c->vec));
	if (c->pagemap_fd < 0 || !c->vec)
		return -ENOMEM;
	return 0;
}

static int scan_collect(struct ctx *c, uint64_t *bm)
{
	uint64_t start = (uintptr_t)c->base, end = start + c->len;

	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start,
			.end = end,
			.vec = (uintptr_t)c->vec,
			.vec_len = VEC_LEN,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(c->pagemap_fd, PAGEMAP_SCAN, &arg);
		long i;

		if (n < 0) {
			if (errno == ENOTTY || errno == EINVAL)
				set_reason(c, "PAGEMAP_SCAN not supported (Linux 6.7+)");
			return -errno;
		}
		for (i = 0; i < n; i++) {
			uint64_t a;

			for (a = c->vec[i].start; a < c->vec[i].end; a += PAGE_SZ)
				bm_set(bm, (a - (uintptr_t)c->base) / PAGE_SZ);
		}
		if (arg.walk_end <= start)
			return -EIO;
		start = arg.walk_end;
	}
	return 0;
}

static void scan_fini(struct ctx *c)
{
	uffd_close(c);
	if (c->pagemap_fd >= 0)
		close(c->pagemap_fd);
	free(c->vec);
}

/* --- synchronous userfaultfd WP: a handler thread un-protects -------------- */

static void *uffd_handler(void *arg)
{
	struct ctx *c = arg;
	struct uffd_msg msg;

	for (;;) {
		struct uffdio_writeprotect wp = { .mode = 0 };
		ssize_t n = read(c->uffd, &msg, sizeof(msg));
		uint64_t a;

		if (n != sizeof(msg))
			continue;	/* EINTR/EAGAIN; cancellation ends us */
		if (msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
			continue;
		a = msg.arg.pagefault.address & ~(PAGE_SZ - 1);
		/* record before un-protecting: collect must never miss it */
		__atomic_fetch_or(&c->uffd_bm[(a - (uintptr_t)c->base) / PAGE_SZ / 64],
				  1ULL << ((a - (uintptr_t)c->base) / PAGE_SZ % 64),
				  __ATOMIC_SEQ_CST);
		wp.range.start = a;
		wp.range.len = PAGE_SZ;
		ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp);	/* also wakes the writer */
	}
	return NULL;
}

/*
 * The writer and the handler share one CPU: under TCG a wakeup sent to an
 * idle vCPU waits for its next timer tick (milliseconds), which would
 * measure QEMU, not userfaultfd.  Set BENCH_DIRTY_UFFD_PIN=0 to see it.
 */
static cpu_set_t saved_mask;
static int pinned;

static void pin_self(void)
{
	cpu_set_t one;

	if (!env_long("BENCH_DIRTY_UFFD_PIN", 1))
		return;
	sched_getaffinity(0, sizeof(saved_mask), &saved_mask);
	CPU_ZERO(&one);
	CPU_SET(cpu_now() < 0 ? 0 : cpu_now(), &one);
	pinned = !sched_setaffinity(0, sizeof(one), &one);
}

static int sync_init(struct ctx *c)
{
	int err = uffd_open(c, 0, 0);

	if (err)
		return err;
	pin_self();	/* before pthread_create: the handler inherits it */
	c->uffd_bm = calloc((c->npages + 63) / 64, 8);
	if (!c->uffd_bm)
		return -ENOMEM;
	if (pthread_create(&c->thr, NULL, uffd_handler, c))
		return -EAGAIN;
	c->thr_running = 1;
	return 0;
}

static int wp_range(struct ctx *c, size_t first, size_t n)
{
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)c->base + first * PAGE_SZ, n * PAGE_SZ },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	return ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

/*
 * Re-protect only the pages written (the others are still protected), then
 * take their bits.  Nothing writes concurrently with collect in this
 * benchmark; a real user must re-protect before taking the bits.
 */
static int sync_collect(struct ctx *c, uint64_t *bm)
{
	size_t i = 0, run = 0;
	int err;

	for (i = 0; i < c->npages; i++) {
		if (bm_test(c->uffd_bm, i)) {
			bm_set(bm, i);
			run++;
			continue;
		}
		if (run && (err = wp_range(c, i - run, run)))
			return err;
		run = 0;
	}
	if (run && (err = wp_range(c, i - run, run)))
		return err;
	memset(c->uffd_bm, 0, (c->npages + 63) / 64 * 8);
	return 0;
}

static void sync_fini(struct ctx *c)
{
	if (c->thr_running) {
		pthread_cancel(c->thr);
		pthread_join(c->thr, NULL);
		c->thr_running = 0;
	}
	if (pinned)
		sched_setaffinity(0, sizeof(saved_mask), &saved_mask);
	pinned = 0;
	uffd_close(c);
	free(c->uffd_bm);
}

/* --- dtrack ---------------------------------------------------------------- */

static const char *const dt_names[] = {
	[DTRACK_METHOD_SOFTDIRTY] = "softdirty",
	[DTRACK_METHOD_WPFAULT] = "wpfault",
	[DTRACK_METHOD_HWDIRTY] = "hwdirty",
};

static int dt_init_method(struct ctx *c, int method)
{
	uint32_t methods = 0;
	char ver[64];
	int err, id;

	err = dtnl_open(&c->nl);
	if (err) {
		set_reason(c, "dtrack module not loaded (%s)", strerror(-err));
		return err;
	}
	c->nl_open = 1;
	err = dtnl_methods(&c->nl, &methods, ver, sizeof(ver));
	if (err) {
		set_reason(c, "GET_VERSION: %s", strerror(-err));
		return err;
	}
	if (!(methods & (1U << method))) {
		set_reason(c, "not available (module %s lacks %s)", ver, dt_names[method]);
		return -EOPNOTSUPP;
	}
	id = dtnl_create(&c->nl, getpid(), (uintptr_t)c->base, c->len, method);
	if (id < 0) {
		set_reason(c, id == -EOPNOTSUPP ? "not available (CREATE: EOPNOTSUPP)" :
			   "CREATE: %s", strerror(-id));
		return id;
	}
	c->id = id;
	c->dt_method = method;
	return 0;
}

static int dt_init_softdirty(struct ctx *c)
{
	return dt_init_method(c, DTRACK_METHOD_SOFTDIRTY);
}

static int dt_init_wpfault(struct ctx *c)
{
	return dt_init_method(c, DTRACK_METHOD_WPFAULT);
}

static int dt_init_hwdirty(struct ctx *c)
{
	return dt_init_method(c, DTRACK_METHOD_HWDIRTY);
}

struct run_arg {
	struct ctx *c;
	uint64_t *bm;
};

static void dt_run(void *arg, uint64_t addr, uint64_t pages)
{
	struct run_arg *ra = arg;
	uint64_t base = (uintptr_t)ra->c->base, i;

	for (i = 0; i < pages; i++) {
		uint64_t a = addr + i * PAGE_SZ;

		if (a >= base && a < base + ra->c->len)
			bm_set(ra->bm, (a - base) / PAGE_SZ);
	}
}

static void dt_bitmap(void *arg, uint64_t addr, const uint64_t *words, size_t nw)
{
	struct run_arg *ra = arg;
	uint64_t base = (uintptr_t)ra->c->base, first, i;

	if (addr < base || (addr - base) / PAGE_SZ % 64) {
		/* not word-aligned with ours: bit by bit */
		for (i = 0; i < nw * 64; i++) {
			uint64_t w;

			memcpy(&w, words + i / 64, sizeof(w));
			if (w >> (i % 64) & 1)
				dt_run(arg, addr + i * PAGE_SZ, 1);
		}
		return;
	}
	first = (addr - base) / PAGE_SZ / 64;
	for (i = 0; i < nw && first + i < (ra->c->npages + 63) / 64; i++) {
		uint64_t w;

		memcpy(&w, words + i, sizeof(w));	/* alignment not assumed */
		ra->bm[first + i] |= w;
	}
}

/*
 * The compact answer (DTRACK_COLLECT_BITMAP) unless BENCH_DIRTY_RUNS=1 or
 * the module predates it: the same for every dtrack method.
 */
static int dt_use_runs = -1;

static int dt_collect(struct ctx *c, uint64_t *bm)
{
	struct run_arg ra = { c, bm };
	uint32_t flags = 0;
	int err = -EINVAL;

	if (dt_use_runs < 0)
		dt_use_runs = env_long("BENCH_DIRTY_RUNS", 0) != 0;
	if (!dt_use_runs) {
		err = dtnl_collect_bitmap(&c->nl, c->id, 1, dt_bitmap, &ra, NULL, &flags);
		if (err == -EINVAL)
			dt_use_runs = 1;
	}
	if (dt_use_runs)
		err = dtnl_collect(&c->nl, c->id, 1, dt_run, &ra, NULL, &flags);
	if (err)
		set_reason(c, "COLLECT: %s", strerror(-err));
	c->module_ns = 0;
	if (flags & DTRACK_RESULT_CONSERVATIVE)
		c->conservative++;
	return err;
}

static void dt_fini(struct ctx *c)
{
	if (c->id)
		dtnl_destroy(&c->nl, c->id);
	if (c->nl_open)
		dtnl_close(&c->nl);
}

static const struct method methods[] = {
	{ "clear_refs", "kernel: clear_refs 4 + pagemap read (bit 55)", 0,
	  cr_init, cr_collect, cr_fini },
	{ "pagemap_scan", "kernel: PAGEMAP_SCAN WP_MATCHING + uffd async WP", 0,
	  scan_init, scan_collect, scan_fini },
	{ "uffd_wp", "kernel: sync userfaultfd WP, handler thread un-protects", 0,
	  sync_init, sync_collect, sync_fini },
	{ "softdirty", "dtrack softdirty", DTRACK_METHOD_SOFTDIRTY,
	  dt_init_softdirty, dt_collect, dt_fini },
	{ "wpfault", "dtrack wpfault", DTRACK_METHOD_WPFAULT,
	  dt_init_wpfault, dt_collect, dt_fini },
	{ "hwdirty", "dtrack hwdirty", DTRACK_METHOD_HWDIRTY,
	  dt_init_hwdirty, dt_collect, dt_fini },
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* Results of one method in one variant. */
struct result {
	int ok;
	char reason[224];
	double collect_ns[NFRAC];	/* best collect+reset */
	double module_ns[NFRAC];	/* best in-module collect (dtrack only) */
	int epochs[NFRAC];
	double first_ns[NFRAC];		/* per page, first write after reset */
	double later_ns[NFRAC];		/* per page, write to a dirty page */
	double flushed_ns[NFRAC];	/* hwdirty: dirty page after a TLB flush */
	uint64_t fn[NFRAC], fp[NFRAC];	/* worst rep */
	uint64_t conservative;
	long thp_kb;
};

static char kernel_rel[65];
static size_t region_mb;
static int reps;
static uint64_t frac_budget_ns;

static char *map_region(size_t len, int thp)
{
	size_t map_len = len + HPAGE_SZ;
	char *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	/* 2 MiB alignment, so that the THP variant is huge from end to end */
	a = (char *)(((uintptr_t)p + HPAGE_SZ - 1) & ~(HPAGE_SZ - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + len, p + map_len - (a + len));
	madvise(a, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return a;
}

static long anon_huge_kb(void)
{
	char line[256];
	long kb = 0;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "AnonHugePages:", 14))
			kb = strtol(line + 14, NULL, 10);
	fclose(f);
	return kb;
}

/*
 * The TLB flush a collect+reset does over a large range, from user space:
 * zapping more than tlb_single_page_flush_ceiling (33) pages makes x86
 * flush the whole mm (flush_tlb_mm_range, as dtrack's reset).  @scratch is
 * a private 4 KiB-page mapping of FLUSH_PAGES, repopulated first.
 */
#define FLUSH_PAGES 64

static void flush_tlb_like_reset(char *scratch)
{
	size_t i;

	for (i = 0; i < FLUSH_PAGES; i++)
		touch(scratch + i * PAGE_SZ, i);
	madvise(scratch, FLUSH_PAGES * PAGE_SZ, MADV_DONTNEED);
}

static uint64_t bm_diff(const uint64_t *a, const uint64_t *b, size_t words)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < words; i++)
		n += __builtin_popcountll(a[i] & ~b[i]);
	return n;
}

static void run_method(const struct method *m, int thp, struct result *r,
		       uint32_t *perm)
{
	size_t words = (region_mb * MIB / PAGE_SZ + 63) / 64;
	uint64_t *truth = calloc(words, 8), *got = calloc(words, 8);
	uint32_t *set = malloc(region_mb * MIB / PAGE_SZ * sizeof(*set));
	struct ctx c = { .clear_refs_fd = -1, .pagemap_fd = -1, .uffd = -1 };
	/* hwdirty: the baseline of its first write pays the same TLB flush */
	char *scratch = NULL;
	int f, rep, err;
	size_t i;

	memset(r, 0, sizeof(*r));
	c.len = region_mb * MIB;
	c.npages = c.len / PAGE_SZ;
	c.base = map_region(c.len, thp);
	if (!c.base || !truth || !got || !set) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		goto out;
	}
	if (m->dt_method == DTRACK_METHOD_HWDIRTY) {
		scratch = mmap(NULL, FLUSH_PAGES * PAGE_SZ, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (scratch == MAP_FAILED)
			scratch = NULL;
		else
			madvise(scratch, FLUSH_PAGES * PAGE_SZ, MADV_NOHUGEPAGE);
	}
	/* populate: every page present and dirty before tracking starts */
	for (i = 0; i < c.npages; i++)
		touch(c.base + i * PAGE_SZ, i);
	r->thp_kb = anon_huge_kb();

	err = m->init(&c);
	if (err) {
		if (!c.reason[0])
			set_reason(&c, "%s", strerror(-err));
		snprintf(r->reason, sizeof(r->reason), "n/a: %s", c.reason);
		goto fini;
	}
	/* first epoch: everything was written by populate; start clean */
	if ((err = m->collect(&c, got))) {
		snprintf(r->reason, sizeof(r->reason), "n/a: collect failed: %s",
			 c.reason[0] ? c.reason : strerror(-err));
		goto fini;
	}
	for (f = 0; f < NFRAC; f++) {
		size_t n = (size_t)(c.npages * frac_val[f]);
		uint64_t first = 0, later = 0, flushed = 0, written = 0, tf = now_ns();
		struct samples cs = { 0 };

		/* the first n of a fixed permutation, in address order */
		memcpy(set, perm, n * sizeof(*set));
		{
			/* sort: counting via the truth bitmap is O(npages) */
			memset(truth, 0, words * 8);
			for (i = 0; i < n; i++)
				bm_set(truth, set[i]);
			n = 0;
			for (i = 0; i < c.npages; i++)
				if (bm_test(truth, i))
					set[n++] = i;
		}
		for (rep = 0; rep < reps; rep++) {
			uint64_t t0, t1, t2, t3, tc;

			/*
			 * Bound the time of a fraction (sync uffd under TCG
			 * takes ~100 us per fault): fewer epochs, never none.
			 */
			if (rep && now_ns() - tf > frac_budget_ns)
				break;

			memset(got, 0, words * 8);
			t0 = now_ns();
			for (i = 0; i < n; i++)
				touch(c.base + (size_t)set[i] * PAGE_SZ, rep);
			t1 = now_ns();
			for (i = 0; i < n; i++)
				touch(c.base + (size_t)set[i] * PAGE_SZ + 64, rep);
			t2 = now_ns();
			if (scratch && n) {
				/* a third write, to dirty pages, after a flush */
				uint64_t t4, t5;

				flush_tlb_like_reset(scratch);
				t4 = now_ns();
				for (i = 0; i < n; i++)
					touch(c.base + (size_t)set[i] * PAGE_SZ + 128, rep);
				t5 = now_ns();
				if (!flushed || t5 - t4 < flushed)
					flushed = t5 - t4;
			}
			tc = now_ns();
			err = m->collect(&c, got);
			t3 = now_ns();
			/* outside the timed part: the module's own view of it */
			if (!err && m->dt_method &&
			    !dtnl_last_collect_ns(&c.nl, c.id, &c.module_ns) && c.module_ns &&
			    (!r->module_ns[f] || c.module_ns < r->module_ns[f]))
				r->module_ns[f] = c.module_ns;
			if (err) {
				snprintf(r->reason, sizeof(r->reason), "n/a: collect failed: %s",
					 c.reason[0] ? c.reason : strerror(-err));
				samples_free(&cs);
				goto fini;
			}
			/* best epoch: on a shared host interference only adds time */
			if (n && (!written || (t1 - t0) < first))
				first = t1 - t0;
			if (n && (!written || (t2 - t1) < later))
				later = t2 - t1;
			written = n;
			samples_add(&cs, t3 - tc);
			if (bm_diff(truth, got, words) > r->fn[f])
				r->fn[f] = bm_diff(truth, got, words);
			if (bm_diff(got, truth, words) > r->fp[f])
				r->fp[f] = bm_diff(got, truth, words);
		}
		r->collect_ns[f] = samples_pct(&cs, 0);
		r->epochs[f] = cs.n;
		r->first_ns[f] = written ? (double)first / written : -1;
		r->later_ns[f] = written ? (double)later / written : -1;
		r->flushed_ns[f] = written && flushed ? (double)flushed / written : -1;
		samples_free(&cs);
		fprintf(stderr, "bench-dirty: %s %s f=%s collect %s first %s later %s fn %llu fp %llu\n",
			thp ? "thp" : "4k", m->name, frac_label[f], fmt_ns(r->collect_ns[f]),
			fmt_ns(r->first_ns[f]), fmt_ns(r->later_ns[f]),
			(unsigned long long)r->fn[f], (unsigned long long)r->fp[f]);
	}
	r->ok = 1;
	r->conservative = c.conservative;
fini:
	m->fini(&c);
out:
	if (scratch)
		munmap(scratch, FLUSH_PAGES * PAGE_SZ);
	if (c.base)
		munmap(c.base, c.len);
	free(truth);
	free(got);
	free(set);
}

static double per_gib(const struct result *r, int f)
{
	return r->collect_ns[f] * (double)GIB / (double)(region_mb * MIB);
}

static const struct result *find(const struct result *res, const char *name)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++)
		if (!strcmp(methods[i].name, name))
			return res[i].ok ? &res[i] : NULL;
	return NULL;
}

static void target(const char *variant, const char *what, double ratio, double limit,
		   int avail, const char *why_na)
{
	const char *st = !avail ? "n/a" : ratio <= limit ? "met" : "not met";

	if (avail)
		printf("@md | %s | %s | %s | <= %.2f | %s |\n", what, variant,
		       fmt_ratio(ratio), limit, st);
	else
		printf("@md | %s | %s | n/a | <= %.2f | n/a (%s) |\n", what, variant,
		       limit, why_na);
	csv("target,%s,%s,%s,%.4f,%.2f,%s", kernel_rel, variant, what,
	    avail ? ratio : -1, limit, st);
}

static void report(const struct result *res, int thp)
{
	const char *variant = thp ? "THP" : "4 KiB";
	const struct result *cr = find(res, "clear_refs"), *sc = find(res, "pagemap_scan");
	const struct result *sd = find(res, "softdirty"), *wf = find(res, "wpfault");
	const struct result *hw = find(res, "hwdirty");
	size_t i;
	int f;

	printf("@md\n@md ### Dirty tracking, %s pages, %zu MiB private anonymous, kernel %s\n@md\n",
	       variant, region_mb, kernel_rel);
	printf("@md Collect+reset cost per GiB, first write after a reset and a later write to the same page (per page, at dirty fraction 1): best of up to %d epochs. Accuracy: worst epoch.%s\n@md\n",
	       reps, dt_use_runs < 0 ? "" : dt_use_runs ?
	       " dtrack answers as runs (DTRACK_A_RUN)." :
	       " dtrack answers as bitmaps (DTRACK_COLLECT_BITMAP).");
	printf("@md | method |");
	for (f = 0; f < NFRAC; f++)
		printf(" %s |", frac_label[f]);
	printf(" first write | later write | false neg. | false pos. |\n@md |---|");
	for (f = 0; f < NFRAC + 4; f++)
		printf("---:|");
	printf("\n");
	for (i = 0; i < NMETHODS; i++) {
		const struct result *r = &res[i];
		uint64_t fn = 0, fp = 0;

		if (!r->ok) {
			printf("@md | %s | %s |", methods[i].name, r->reason);
			for (f = 1; f < NFRAC + 4; f++)
				printf(" |");
			printf("\n");
			csv("dirty,%s,%s,%s,,,,,,,,,,,%s", kernel_rel, thp ? "thp" : "4k",
			    methods[i].name, r->reason);
			continue;
		}
		for (f = 0; f < NFRAC; f++)
			csv("dirty,%s,%s,%s,%s,%.6f,%.0f,%.0f,%.1f,%.1f,%llu,%llu,%d,%.0f,ok",
			    kernel_rel, thp ? "thp" : "4k", methods[i].name, frac_label[f],
			    frac_val[f], r->collect_ns[f], per_gib(r, f), r->first_ns[f],
			    r->later_ns[f], (unsigned long long)r->fn[f],
			    (unsigned long long)r->fp[f], r->epochs[f], r->module_ns[f]);
		printf("@md | %s |", methods[i].name);
		for (f = 0; f < NFRAC; f++) {
			printf(" %s |", fmt_ns(per_gib(r, f)));
			fn += r->fn[f];
			fp = r->fp[f] > fp ? r->fp[f] : fp;
		}
		printf(" %s | %s | %llu | %llu%s |\n", fmt_ns(r->first_ns[NFRAC - 1]),
		       fmt_ns(r->later_ns[NFRAC - 1]), (unsigned long long)fn,
		       (unsigned long long)fp, r->conservative ? " (conservative)" : "");
	}
	if (hw && hw->flushed_ns[NFRAC - 1] > 0)
		printf("@md\n@md hwdirty baseline with the same TLB flush: a write to an already-dirty page right after a full flush of the mm (MADV_DONTNEED of %d scratch pages, as the reset's flush_tlb_mm_range over the range) costs %s per page at fraction 1 (first write after reset: %s, later write: %s).\n",
		       FLUSH_PAGES, fmt_ns(hw->flushed_ns[NFRAC - 1]),
		       fmt_ns(hw->first_ns[NFRAC - 1]), fmt_ns(hw->later_ns[NFRAC - 1]));
	if (thp) {
		/* per method: a method whose range ended up less huge pays 4 KiB faults */
		printf("@md\n@md AnonHugePages after populate (of %zu MiB):", region_mb);
		for (i = 0; i < NMETHODS; i++)
			if (res[i].ok)
				printf(" %s %ld kB;", methods[i].name, res[i].thp_kb);
		printf("\n");
	}
	/* how much of dtrack's figure is netlink: the module's own clock */
	for (i = 0; i < NMETHODS; i++)
		if (res[i].ok && methods[i].dt_method && res[i].module_ns[0])
			break;
	if (i < NMETHODS) {
		printf("@md\n@md In-module collect+reset per GiB (DTRACK_STAT_A_LAST_COLLECT_NS, best epoch; the table above adds netlink and user space):\n@md\n");
		printf("@md | method |");
		for (f = 0; f < NFRAC; f++)
			printf(" %s |", frac_label[f]);
		printf("\n@md |---|");
		for (f = 0; f < NFRAC; f++)
			printf("---:|");
		printf("\n");
		for (i = 0; i < NMETHODS; i++) {
			if (!res[i].ok || !methods[i].dt_method)
				continue;
			printf("@md | %s |", methods[i].name);
			for (f = 0; f < NFRAC; f++)
				printf(" %s |", fmt_ns(res[i].module_ns[f] * (double)GIB /
						       (double)(region_mb * MIB)));
			printf("\n");
		}
	}

	printf("@md\n@md #### Targets (%s, same boot)\n@md\n", variant);
	printf("@md | target | variant | ratio | limit | status |\n@md |---|---|---:|---:|---|\n");
	{
		double worst = 0, worst2 = 0;

		for (f = 0; sd && sc && f < NFRAC; f++)
			if (sc->collect_ns[f] > 0 && sd->collect_ns[f] / sc->collect_ns[f] > worst)
				worst = sd->collect_ns[f] / sc->collect_ns[f];
		target(variant, "softdirty collect+reset / PAGEMAP_SCAN get+re-protect (worst fraction)",
		       worst, 1.0, sd && sc, !sd ? "softdirty n/a" : "PAGEMAP_SCAN n/a");
		for (f = 0; sd && cr && f < NFRAC; f++)
			if (cr->collect_ns[f] > 0 && sd->collect_ns[f] / cr->collect_ns[f] > worst2)
				worst2 = sd->collect_ns[f] / cr->collect_ns[f];
		target(variant, "softdirty collect+reset / clear_refs + pagemap read (worst fraction)",
		       worst2, 0.5, sd && cr, !sd ? "softdirty n/a" : "clear_refs n/a");
		target(variant, "wpfault collect at 1/64 / softdirty full scan at 1/64",
		       wf && sd ? wf->collect_ns[2] / sd->collect_ns[2] : -1, 0.25, wf && sd,
		       !wf ? "wpfault n/a" : "softdirty n/a");
		target(variant, "wpfault first write / kernel soft-dirty first write",
		       wf && cr ? wf->first_ns[NFRAC - 1] / cr->first_ns[NFRAC - 1] : -1, 1.5,
		       wf && cr, !wf ? "wpfault n/a" : "clear_refs n/a");
		target(variant, "hwdirty first write after reset / write to a dirty page",
		       hw ? hw->first_ns[NFRAC - 1] / hw->later_ns[NFRAC - 1] : -1, 1.2, !!hw,
		       "hwdirty n/a");
		target(variant, "hwdirty first write after reset / write to a dirty page after the same TLB flush",
		       hw && hw->flushed_ns[NFRAC - 1] > 0 ?
		       hw->first_ns[NFRAC - 1] / hw->flushed_ns[NFRAC - 1] : -1, 1.2,
		       hw && hw->flushed_ns[NFRAC - 1] > 0, "hwdirty n/a");
		for (i = 0; i < NMETHODS; i++) {
			char what[96];
			uint64_t fn = 0;

			if (!res[i].ok)
				continue;
			for (f = 0; f < NFRAC; f++)
				fn += res[i].fn[f];
			snprintf(what, sizeof(what), "%s false negatives", methods[i].name);
			printf("@md | %s | %s | %llu | = 0 | %s |\n", what, variant,
			       (unsigned long long)fn, fn ? "not met" : "met");
			csv("target,%s,%s,%s,%llu,0,%s", kernel_rel, variant, what,
			    (unsigned long long)fn, fn ? "not met" : "met");
		}
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *only = NULL, *variants = "both";
	struct result res[NMETHODS];
	struct utsname u;
	uint32_t *perm;
	size_t npages, i;
	int opt, thp;

	region_mb = env_long("BENCH_DIRTY_MB", 256);
	reps = env_long("BENCH_DIRTY_REPS", 5);
	frac_budget_ns = env_long("BENCH_DIRTY_FRAC_MS", 3000) * 1000000ULL;
	while ((opt = getopt(argc, argv, "m:r:v:M:t:")) != -1) {
		switch (opt) {
		case 't': frac_budget_ns = strtoull(optarg, NULL, 0) * 1000000ULL; break;
		case 'm': region_mb = strtoul(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg); break;
		case 'v': variants = optarg; break;
		case 'M': only = optarg; break;
		default:
			fprintf(stderr, "usage: bench-dirty [-m MB] [-r REPS] [-t MS_PER_FRACTION] [-v 4k|thp|both] [-M method,...]\n");
			return 2;
		}
	}
	if (region_mb < 2 || region_mb % 2 || reps < 1) {
		fprintf(stderr, "bench-dirty: region must be an even number of MiB, reps >= 1\n");
		return 2;
	}
	uname(&u);
	snprintf(kernel_rel, sizeof(kernel_rel), "%s", u.release);
	npages = region_mb * MIB / PAGE_SZ;
	perm = malloc(npages * sizeof(*perm));
	if (!perm)
		return 1;
	for (i = 0; i < npages; i++)
		perm[i] = i;
	shuffle_u32(perm, npages, 42);

	for (thp = 0; thp < 2; thp++) {
		if (strcmp(variants, "both") && strcmp(variants, thp ? "thp" : "4k"))
			continue;
		for (i = 0; i < NMETHODS; i++) {
			memset(&res[i], 0, sizeof(res[i]));
			if (only && !strstr(only, methods[i].name)) {
				snprintf(res[i].reason, sizeof(res[i].reason), "n/a: not selected");
				continue;
			}
			fprintf(stderr, "bench-dirty: %s %s (%zu MiB)\n", thp ? "thp" : "4k",
				methods[i].name, region_mb);
			run_method(&methods[i], thp, &res[i], perm);
		}
		report(res, thp);
	}
	free(perm);
	return 0;
}
