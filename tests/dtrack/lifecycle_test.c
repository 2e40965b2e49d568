// SPDX-License-Identifier: GPL-2.0
/*
 * No false negatives across the life of a mapping: fork (COW), mprotect,
 * mremap (move in, move out, grow), partial munmap, MADV_DONTNEED and
 * re-fault, THP collapse and split, page migration, KSM merge, swap-out and
 * swap-in; two trackers of different methods with interleaved resets;
 * writers on two CPUs while collecting.  The test process tracks itself (any process would do; that
 * is covered by truth_test) so that it can drive each event exactly.
 * Variants: each dirty-tracking method.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "dt_util.h"
#include "../swap.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

#define NPAGES 64

FIXTURE(life)
{
	struct dt_nl nl;
	struct dt_version v;
	uint8_t want[HPAGE_SZ / PAGE_SZ * 2];
	uint8_t got[HPAGE_SZ / PAGE_SZ * 2];
	uint64_t rng;
	bool ready;
};

FIXTURE_VARIANT(life)
{
	uint32_t method;
};

FIXTURE_VARIANT_ADD(life, softdirty) { .method = DTRACK_METHOD_SOFTDIRTY };
FIXTURE_VARIANT_ADD(life, wpfault) { .method = DTRACK_METHOD_WPFAULT };
FIXTURE_VARIANT_ADD(life, hwdirty) { .method = DTRACK_METHOD_HWDIRTY };

FIXTURE_SETUP(life)
{
	char reason[256];
	int err;

	self->ready = false;
	self->rng = 0xfeed + variant->method;
	ASSERT_EQ(0, dt_open(&self->nl, &self->v));
	err = dt_method_check(&self->nl, &self->v, variant->method, reason,
			      sizeof(reason));
	if (err == -EOPNOTSUPP)
		SKIP(return, "%s", reason);
	ASSERT_EQ(0, err);
	self->ready = true;
}

FIXTURE_TEARDOWN(life)
{
	if (self->nl.sock)
		dt_nl_close(&self->nl);
}

static char *map_anon(size_t npages)
{
	char *p = mmap(NULL, npages * PAGE_SZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		memset(p, 1, npages * PAGE_SZ);
	return p == MAP_FAILED ? NULL : p;
}

/* 2 MiB-aligned anonymous region of npages, not yet touched. */
static char *map_aligned(size_t npages)
{
	size_t len = npages * PAGE_SZ;
	char *p, *a;

	p = mmap(NULL, len + HPAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + HPAGE_SZ - 1) & ~(HPAGE_SZ - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + len, p + HPAGE_SZ - a);
	return a;
}

/*
 * One written huge page at *pp: 0; 1 with *why when this kernel or this
 * moment has none to give (a SKIP); -1 when mapping failed.
 */
static int map_one_huge(char **pp, const char **why)
{
	char *p;

	*why = "transparent huge pages disabled in this kernel";
	if (!dt_thp_available())
		return 1;
	p = map_aligned(HPAGE_SZ / PAGE_SZ);
	if (!p || madvise(p, HPAGE_SZ, MADV_HUGEPAGE))
		return -1;
	memset(p, 1, HPAGE_SZ);
	if (dt_anon_huge_bytes(p, HPAGE_SZ) != (long)HPAGE_SZ) {
		munmap(p, HPAGE_SZ);
		*why = "no huge page could be allocated";
		return 1;
	}
	*pp = p;
	return 0;
}

static void touch_set(char *base, const uint8_t *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (set[i])
			dt_touch(base, i);
}

/* Pick K distinct random pages into SET and write each of them. */
static void write_random(uint64_t *rng, char *base, uint8_t *set,
			 size_t n, size_t k)
{
	dt_pick(rng, set, n, k);
	touch_set(base, set, n);
}

static void set_or(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] |= src[i];
}

/* FALSE_POSITIVES of each tracker at its last collect. */
static struct {
	uint32_t id;
	uint64_t fp;
} fp_seen[64];

static uint64_t *fp_slot(uint32_t id)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (fp_seen[i].id == id)
			return &fp_seen[i].fp;
	for (i = 0; i < 64; i++)
		if (!fp_seen[i].id) {
			fp_seen[i].id = id;
			fp_seen[i].fp = 0;
			return &fp_seen[i].fp;
		}
	return NULL;
}

/*
 * Collect id (with reset) and check every page of want is reported, and
 * nothing outside [base, base + n pages).  Pages reported beyond want must
 * be documented false positives: counted by the module in FALSE_POSITIVES,
 * or (huge) the other pages of a written 2 MiB block.
 */
static void expect_superset(struct __test_metadata *_metadata,
			    struct dt_nl *nl, uint32_t id, const char *what,
			    char *base, size_t n, const uint8_t *want,
			    uint8_t *got, uint32_t flags, bool huge)
{
	const size_t per_huge = HPAGE_SZ / PAGE_SZ;
	size_t first = 0, miss, i, j, unexplained = 0;
	uint64_t outside = 0, *fp = fp_slot(id);
	struct dt_tracker t;
	int err;

	err = dt_collect_map(nl, id, flags, (uintptr_t)base, n, got, &outside,
			     NULL);
	ASSERT_EQ(0, err) {
		TH_LOG("%s: collect: %s: %s", what, nl->extack, strerror(-err));
	}
	miss = dt_missing(want, got, n, &first);
	EXPECT_EQ(0, miss) {
		TH_LOG("%s: %zu of %zu written pages not reported (first: page %zu)",
		       what, miss, dt_count(want, n), first);
	}
	EXPECT_EQ(0, outside) {
		TH_LOG("%s: %zu pages reported outside the range", what,
		       (size_t)outside);
	}
	for (i = 0; i < n; i++) {
		bool explained = false;

		if (want[i] || !got[i])
			continue;
		for (j = i / per_huge * per_huge;
		     huge && j < n && j < (i / per_huge + 1) * per_huge; j++)
			explained |= want[j];
		unexplained += !explained;
	}
	ASSERT_EQ(0, dt_get_tracker(nl, id, &t));
	ASSERT_NE(NULL, fp);
	EXPECT_GE(t.stats.false_positives - *fp, unexplained) {
		TH_LOG("%s: %zu pages reported, %zu written, %zu unexplained by the %llu false positives counted",
		       what, dt_count(got, n), dt_count(want, n), unexplained,
		       (unsigned long long)(t.stats.false_positives - *fp));
	}
	*fp = t.stats.false_positives;
}

#define SUPERSET(id, what, base, n, want)				\
	expect_superset(_metadata, &self->nl, id, what, base, n, want,	\
			self->got, DTRACK_COLLECT_RESET, false)
#define SUPERSET_HUGE(id, what, base, n, want)				\
	expect_superset(_metadata, &self->nl, id, what, base, n, want,	\
			self->got, DTRACK_COLLECT_RESET, true)

static uint32_t track(struct __test_metadata *_metadata, struct dt_nl *nl,
		      char *p, size_t npages, uint32_t method)
{
	struct dt_collect c;
	uint32_t id = 0;
	int err;

	err = dt_create(nl, getpid(), (uintptr_t)p, npages * PAGE_SZ, method,
			0, &id);
	EXPECT_EQ(0, err) {
		TH_LOG("create: %s: %s", nl->extack, strerror(-err));
	}
	/* start from a clean epoch */
	if (!err && !dt_collect(nl, id, DTRACK_COLLECT_RESET, &c)) {
		struct dt_tracker t;
		uint64_t *fp = fp_slot(id);

		dt_collect_free(&c);
		if (fp && !dt_get_tracker(nl, id, &t))
			*fp = t.stats.false_positives;
	}
	return id;
}

#define TRACK(p, n) ({							\
	uint32_t __id = track(_metadata, &self->nl, p, n,		\
			      variant->method);				\
	ASSERT_NE(0, __id);						\
	__id;								\
})

TEST_F(life, fork_cow)
{
	char *p;
	uint8_t before[NPAGES], child_set[NPAGES];
	int go[2], st;
	uint32_t id;
	pid_t pid;

	if (!self->ready)
		return;
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	id = TRACK(p, NPAGES);

	/* written before the fork, in the same epoch */
	write_random(&self->rng, p, before, NPAGES, 10);
	dt_pick(&self->rng, child_set, NPAGES, 20);
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char c;

		/* the child writes after the parent broke COW */
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		touch_set(p, child_set, NPAGES);
		_exit(0);
	}
	/* the parent writes shared (COW) pages: new pages, same addresses */
	write_random(&self->rng, p, self->want, NPAGES, 15);
	ASSERT_EQ(1, write(go[1], "x", 1));
	st = dt_wait_child(pid);
	ASSERT_EQ(0, st);
	set_or(self->want, before, NPAGES);
	SUPERSET(id, "fork: parent's writes around the fork", p, NPAGES,
		 self->want);

	/* after the child is gone, the parent's pages are its own again */
	write_random(&self->rng, p, self->want, NPAGES, 12);
	SUPERSET(id, "after fork", p, NPAGES, self->want);
	close(go[0]);
	close(go[1]);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

TEST_F(life, mprotect_split_and_merge)
{
	uint8_t w2[NPAGES];
	uint32_t id;
	char *p;

	if (!self->ready)
		return;
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	id = TRACK(p, NPAGES);

	write_random(&self->rng, p, self->want, NPAGES, 20);
	/* read-only middle third: splits the VMA in three */
	ASSERT_EQ(0, mprotect(p + 20 * PAGE_SZ, 20 * PAGE_SZ, PROT_READ));
	dt_pick(&self->rng, w2, NPAGES, 20);
	memset(w2 + 20, 0, 20);
	touch_set(p, w2, NPAGES);
	set_or(self->want, w2, NPAGES);
	SUPERSET(id, "writes around a read-only middle", p, NPAGES,
		 self->want);
	/* writable again (the VMAs merge back): writes everywhere */
	ASSERT_EQ(0, mprotect(p + 20 * PAGE_SZ, 20 * PAGE_SZ,
			      PROT_READ | PROT_WRITE));
	dt_pick(&self->rng, self->want, NPAGES, 30);
	self->want[25] = 1;
	touch_set(p, self->want, NPAGES);
	SUPERSET(id, "writes after mprotect back to writable", p, NPAGES,
		 self->want);
	/* mprotect with a write in the same epoch on both sides of it */
	memset(self->want, 0, NPAGES);
	self->want[30] = 1;
	touch_set(p, self->want, NPAGES);
	ASSERT_EQ(0, mprotect(p, NPAGES * PAGE_SZ, PROT_READ));
	ASSERT_EQ(0, mprotect(p, NPAGES * PAGE_SZ, PROT_READ | PROT_WRITE));
	self->want[31] = 1;
	dt_touch(p, 31);
	SUPERSET(id, "write, mprotect ro/rw, write", p, NPAGES, self->want);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

TEST_F(life, mremap_move_in)
{
	char *p, *src;
	uint32_t id;

	if (!self->ready)
		return;
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	src = map_anon(8);
	ASSERT_NE(NULL, src);
	memset(src, 0x77, 8 * PAGE_SZ);
	id = TRACK(p, NPAGES);

	/*
	 * Pages moved over tracked ones change what the tracked addresses
	 * hold: that is a write to them as far as any user can tell.
	 */
	ASSERT_EQ(p + 8 * PAGE_SZ, mremap(src, 8 * PAGE_SZ, 8 * PAGE_SZ,
					  MREMAP_MAYMOVE | MREMAP_FIXED,
					  p + 8 * PAGE_SZ));
	ASSERT_EQ(0x77, p[8 * PAGE_SZ]);
	memset(self->want, 0, NPAGES);
	memset(self->want + 8, 1, 8);
	SUPERSET(id, "pages moved into the range", p, NPAGES, self->want);
	/* and writes to them afterwards */
	memset(self->want, 0, NPAGES);
	self->want[9] = self->want[15] = self->want[40] = 1;
	touch_set(p, self->want, NPAGES);
	SUPERSET(id, "writes to moved-in pages", p, NPAGES, self->want);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

TEST_F(life, mremap_grow)
{
	char *p;
	uint32_t id;

	if (!self->ready)
		return;
	/* room to grow in place: map twice the size, give back the top */
	p = map_anon(2 * NPAGES);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, munmap(p + NPAGES * PAGE_SZ, NPAGES * PAGE_SZ));
	id = TRACK(p, NPAGES);

	write_random(&self->rng, p, self->want, NPAGES, 20);
	ASSERT_EQ(p, mremap(p, NPAGES * PAGE_SZ, 2 * NPAGES * PAGE_SZ, 0));
	/* writes after the growth, inside the range and beyond it */
	self->want[0] = self->want[NPAGES - 1] = 1;
	dt_touch(p, 0);
	dt_touch(p, NPAGES - 1);
	dt_touch(p, NPAGES);
	dt_touch(p, 2 * NPAGES - 1);
	SUPERSET(id, "writes around an in-place growth", p, NPAGES,
		 self->want);
	dt_destroy(&self->nl, id);
	munmap(p, 2 * NPAGES * PAGE_SZ);
}

TEST_F(life, mremap_move_out_ends)
{
	struct dt_tracker t;
	struct dt_collect c;
	struct dt_nl ev;
	char *p, *q, *guard;
	uint32_t id;
	int err, i;

	if (!self->ready)
		return;
	ASSERT_EQ(0, dt_events_open(&ev));
	p = map_anon(NPAGES + 1);
	ASSERT_NE(NULL, p);
	/* a guard right after it forces the growth to move */
	guard = p + NPAGES * PAGE_SZ;
	ASSERT_EQ(0, mprotect(guard, PAGE_SZ, PROT_NONE));
	id = TRACK(p, NPAGES);
	dt_touch(p, 3);
	q = mremap(p, NPAGES * PAGE_SZ, 2 * NPAGES * PAGE_SZ, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_NE(p, q);
	/* the tracked range is empty now: the tracker ends, and says so */
	err = dt_collect(&self->nl, id, 0, &c);
	if (!err)
		dt_collect_free(&c);
	EXPECT_EQ(0, dt_wait_event(&ev, DTRACK_EVENT_UNMAPPED, id, 5000));
	for (i = 0; i < 100; i++) {
		err = dt_get_tracker(&self->nl, id, &t);
		if (err || t.stats.state == DTRACK_STATE_ENDED)
			break;
		usleep(20000);
	}
	EXPECT_TRUE(err == -ENOENT ||
		    (!err && t.stats.state == DTRACK_STATE_ENDED));
	dt_destroy(&self->nl, id);
	dt_nl_close(&ev);
	munmap(q, 2 * NPAGES * PAGE_SZ);
	munmap(guard, PAGE_SZ);
}

TEST_F(life, partial_munmap_and_remap)
{
	uint32_t id;
	char *p, *q;
	size_t i;

	if (!self->ready)
		return;
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	id = TRACK(p, NPAGES);

	write_random(&self->rng, p, self->want, NPAGES, 30);
	/*
	 * Pages written then unmapped in the same epoch were written: they
	 * are reported too (the module marks what the unmap destroys).
	 */
	ASSERT_EQ(0, munmap(p + 16 * PAGE_SZ, 16 * PAGE_SZ));
	self->want[40] = 1;
	dt_touch(p, 40);
	SUPERSET(id, "writes around a hole", p, NPAGES, self->want);

	/* a new mapping in the hole: its writes count too */
	q = mmap(p + 16 * PAGE_SZ, 16 * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(p + 16 * PAGE_SZ, q);
	memset(self->want, 0, NPAGES);
	for (i = 16; i < 32; i += 3)
		self->want[i] = 1;
	self->want[2] = self->want[60] = 1;
	touch_set(p, self->want, NPAGES);
	SUPERSET(id, "writes to a mapping placed in the hole", p, NPAGES,
		 self->want);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

/*
 * In a child: write one byte to each page of @set in @base of the parent,
 * through process_vm_writev() for the even pages and /proc/PID/mem for
 * the odd ones (remote GUP: the faults are the parent's mm, taken by
 * another task).  0 on success, else the step that failed.
 */
static int remote_write_set(char *base, const uint8_t *set, size_t n,
			    char val)
{
	pid_t parent = getppid();
	char path[64];
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", parent);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 1;
	for (i = 0; i < n; i++) {
		struct iovec local = { .iov_base = &val, .iov_len = 1 };
		struct iovec remote = { .iov_base = base + i * PAGE_SZ + 5,
					.iov_len = 1 };

		if (!set[i])
			continue;
		if (i % 2 == 0 ?
		    process_vm_writev(parent, &local, 1, &remote, 1, 0) != 1 :
		    pwrite(fd, &val, 1, (off_t)(uintptr_t)remote.iov_base) != 1) {
			close(fd);
			return 2;
		}
	}
	close(fd);
	return 0;
}

/*
 * Writes by another process (a debugger, checkpoint/restore writing a
 * process's memory back): each write faults in the tracked mm from
 * another task, and must be reported like the process's own, epoch after
 * epoch.
 */
TEST_F(life, remote_writes)
{
	uint32_t id;
	char *p;
	int round;

	if (!self->ready)
		return;
	if (variant->method == DTRACK_METHOD_HWDIRTY)
		SKIP(return, "hwdirty cannot see writes through the kernel's own mapping of a page: its PTE stays writable, GUP takes no fault and sets no dirty bit in it (kmod/README.md)");
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	/*
	 * Not shared with the child: a write to a page fork() shares is a
	 * copy-on-write, which the notifier reports anyway.  The writes
	 * must be seen as what they are, write faults of a remote task.
	 */
	ASSERT_EQ(0, madvise(p, NPAGES * PAGE_SZ, MADV_DONTFORK));
	id = TRACK(p, NPAGES);
	memset(self->want, 0, NPAGES);
	SUPERSET(id, "the epoch before", p, NPAGES, self->want);
	for (round = 0; round < 3; round++) {
		pid_t child;
		int st;
		size_t i;

		dt_pick(&self->rng, self->want, NPAGES, 12);
		child = fork();
		ASSERT_LE(0, child);
		if (!child)
			_exit(remote_write_set(p, self->want, NPAGES,
					       (char)(0x40 + round)));
		ASSERT_EQ(child, waitpid(child, &st, 0));
		ASSERT_TRUE(WIFEXITED(st));
		ASSERT_EQ(0, WEXITSTATUS(st));
		for (i = 0; i < NPAGES; i++)
			if (self->want[i])
				ASSERT_EQ(0x40 + round, p[i * PAGE_SZ + 5]);
		SUPERSET(id, "remote writes", p, NPAGES, self->want);
	}
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

TEST_F(life, dontneed_refault)
{
	volatile char sink;
	uint32_t id;
	char *p;
	size_t i;

	if (!self->ready)
		return;
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	id = TRACK(p, NPAGES);

	/* written, then zapped, then written again in the same epoch */
	memset(self->want, 0, NPAGES);
	for (i = 0; i < 32; i += 2)
		self->want[i] = 1;
	touch_set(p, self->want, NPAGES);
	ASSERT_EQ(0, madvise(p, 32 * PAGE_SZ, MADV_DONTNEED));
	self->want[1] = self->want[33] = 1;
	dt_touch(p, 1);
	dt_touch(p, 33);
	/*
	 * pages 0..31 were written this epoch even if zapped since: the
	 * written ones must still show (the zero page holds now)
	 */
	SUPERSET(id, "write, DONTNEED, re-fault by write", p, NPAGES,
		 self->want);

	/* re-fault by reading (zero page), then writing */
	ASSERT_EQ(0, madvise(p, NPAGES * PAGE_SZ, MADV_DONTNEED));
	for (i = 0; i < NPAGES; i++)
		sink = p[i * PAGE_SZ];
	(void)sink;
	memset(self->want, 0, NPAGES);
	self->want[5] = self->want[6] = self->want[50] = 1;
	touch_set(p, self->want, NPAGES);
	SUPERSET(id, "read re-fault (zero page) then write", p, NPAGES,
		 self->want);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

TEST_F(life, thp_collapse)
{
	const size_t n = HPAGE_SZ / PAGE_SZ;
	uint8_t w1[HPAGE_SZ / PAGE_SZ];
	uint32_t id;
	char *p;
	size_t i;

	if (!self->ready)
		return;
	if (!dt_thp_available())
		SKIP(return, "transparent huge pages disabled in this kernel");
	p = map_aligned(n);
	ASSERT_NE(NULL, p);
	/* small pages first */
	ASSERT_EQ(0, madvise(p, HPAGE_SZ, MADV_NOHUGEPAGE));
	for (i = 0; i < n; i++)
		dt_touch(p, i);
	ASSERT_EQ(0, dt_anon_huge_bytes(p, HPAGE_SZ));
	id = TRACK(p, n);

	write_random(&self->rng, p, w1, n, 40);
	ASSERT_EQ(0, madvise(p, HPAGE_SZ, MADV_HUGEPAGE));
	if (madvise(p, HPAGE_SZ, MADV_COLLAPSE)) {
		int e = errno;

		dt_destroy(&self->nl, id);
		munmap(p, HPAGE_SZ);
		if (e == EINVAL)
			SKIP(return, "MADV_COLLAPSE not supported by this kernel");
		SKIP(return, "MADV_COLLAPSE failed: %s", strerror(e));
	}
	EXPECT_EQ(HPAGE_SZ, dt_anon_huge_bytes(p, HPAGE_SZ));
	/* writes before the collapse survive it; writes after it count */
	write_random(&self->rng, p, self->want, n, 40);
	set_or(self->want, w1, n);
	SUPERSET_HUGE(id, "writes before and after MADV_COLLAPSE", p, n,
		 self->want);
	write_random(&self->rng, p, self->want, n, 3);
	SUPERSET_HUGE(id, "writes to the collapsed huge page", p, n, self->want);
	dt_destroy(&self->nl, id);
	munmap(p, HPAGE_SZ);
}

TEST_F(life, thp_split)
{
	const size_t n = HPAGE_SZ / PAGE_SZ;
	uint8_t w1[HPAGE_SZ / PAGE_SZ];
	const char *why;
	uint32_t id;
	char *p;
	int ret;

	if (!self->ready)
		return;
	ret = map_one_huge(&p, &why);
	if (ret > 0)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, ret);
	id = TRACK(p, n);

	write_random(&self->rng, p, w1, n, 30);
	/* mprotect of one small page splits the huge mapping */
	ASSERT_EQ(0, mprotect(p + 100 * PAGE_SZ, PAGE_SZ, PROT_READ));
	ASSERT_EQ(0, mprotect(p + 100 * PAGE_SZ, PAGE_SZ,
			      PROT_READ | PROT_WRITE));
	EXPECT_GT(HPAGE_SZ, dt_anon_huge_bytes(p, HPAGE_SZ));
	dt_pick(&self->rng, self->want, n, 30);
	self->want[100] = 1;
	touch_set(p, self->want, n);
	set_or(self->want, w1, n);
	SUPERSET_HUGE(id, "writes before and after a huge page split", p, n,
		 self->want);
	/* and on the small pages afterwards */
	write_random(&self->rng, p, self->want, n, 7);
	SUPERSET_HUGE(id, "writes after the split", p, n, self->want);
	dt_destroy(&self->nl, id);
	munmap(p, HPAGE_SZ);
}

static int numa_nodes(void)
{
	char path[64];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d",
			 n);
		if (access(path, F_OK))
			return n;
		n++;
	}
}

TEST_F(life, page_migration)
{
	void *pages[NPAGES];
	int nodes[NPAGES], status[NPAGES];
	uint8_t w1[NPAGES];
	uint32_t id;
	char *p;
	size_t i;
	long ret;

	if (!self->ready)
		return;
	if (numa_nodes() < 2)
		SKIP(return, "one NUMA node: move_pages() has nowhere to migrate to");
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	id = TRACK(p, NPAGES);
	write_random(&self->rng, p, w1, NPAGES, 20);
	for (i = 0; i < NPAGES; i++) {
		pages[i] = p + i * PAGE_SZ;
		nodes[i] = 1;
	}
	ret = syscall(SYS_move_pages, 0, NPAGES, pages, nodes, status,
		      MPOL_MF_MOVE);
	if (ret < 0) {
		dt_destroy(&self->nl, id);
		SKIP(return, "move_pages: %s", strerror(errno));
	}
	EXPECT_EQ(1, status[0]);
	write_random(&self->rng, p, self->want, NPAGES, 20);
	set_or(self->want, w1, NPAGES);
	SUPERSET(id, "writes around a migration", p, NPAGES, self->want);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

/* A counter of /proc/vmstat, -1 if there is none. */
static long vmstat(const char *name)
{
	char key[64];
	long v, ret = -1;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &v) == 2)
		if (!strcmp(key, name))
			ret = v;
	fclose(f);
	return ret;
}

static long read_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", v) > 0 ? 0 : -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif

/*
 * A thread that applies madvise(@advice) to page @first, @first + @step,
 * ... of a range of @npages, over and over, while the test writes and
 * collects (page_churn_rounds()).  EBUSY and EAGAIN (a page being written
 * or walked just then) skip the page; another error stops it.
 */
struct churn {
	char *base;
	size_t npages, first, step;
	int advice;		/* madvise() each page with it, or: */
	bool move;		/* move_pages() it to node 0 and 1 in turn */
	long max;		/* pages done at most (0: no limit) */
	int stop;
	long done;
	int err;
};

static void *churn_loop(void *arg)
{
	struct churn *ch = arg;
	size_t i = ch->first, per_pass = (ch->npages + ch->step - 1) / ch->step;
	unsigned long k = 0;	/* pages visited */

	while (!__atomic_load_n(&ch->stop, __ATOMIC_ACQUIRE) &&
	       (!ch->max || ch->done < ch->max)) {
		void *pg = ch->base + i * PAGE_SZ;
		int node = (k++ / per_pass) & 1, status;	/* by pass */

		if (ch->move ?
		    !syscall(SYS_move_pages, 0, 1, &pg, &node, &status,
			     MPOL_MF_MOVE) :
		    !madvise(pg, PAGE_SZ, ch->advice)) {
			/* move_pages(): a page it could not move says why */
			if (!ch->move || status == node)
				ch->done++;
		} else if (errno != EBUSY && errno != EAGAIN) {
			ch->err = errno;
			break;
		}
		i = (i + ch->step) % ch->npages;
	}
	return NULL;
}

/*
 * Up to @rounds times: write the pages of @want, collect with reset, and
 * check that each was reported, while @ch runs on another thread.  The
 * range is ch->base, ch->npages pages; the tracker @id.
 */
static void page_churn_rounds(struct __test_metadata *_metadata,
			      struct dt_nl *nl, uint32_t id, struct churn *ch,
			      const uint8_t *want, uint8_t *got, int rounds)
{
	size_t miss = 0, first = 0;
	pthread_t thr;
	int round;

	ASSERT_EQ(0, pthread_create(&thr, NULL, churn_loop, ch));
	for (round = 0; round < rounds && !miss; round++) {
		int err;

		touch_set(ch->base, want, ch->npages);
		err = dt_collect_map(nl, id, DTRACK_COLLECT_RESET,
				     (uintptr_t)ch->base, ch->npages, got, NULL,
				     NULL);
		if (err) {
			EXPECT_EQ(0, err) {
				TH_LOG("collect: %s", nl->extack);
			}
			break;
		}
		miss = dt_missing(want, got, ch->npages, &first);
	}
	__atomic_store_n(&ch->stop, 1, __ATOMIC_RELEASE);
	pthread_join(thr, NULL);
	EXPECT_EQ(0, miss) {
		TH_LOG("round %d: %zu of %zu written pages not reported (first: page %zu)",
		       round, miss, dt_count(want, ch->npages), first);
	}
	EXPECT_EQ(0, ch->err) {
		TH_LOG("%s after %ld pages: %s",
		       ch->move ? "move_pages" : "madvise", ch->done,
		       strerror(ch->err));
	}
	TH_LOG("%d rounds, %ld pages churned meanwhile", round, ch->done);
}

#define MIG_PAGES	256

/*
 * A reset that meets a page being migrated (a writable migration entry
 * in its page table) must not let the page come back writable and clean:
 * its next write would go unseen, that epoch and every later one.  Pages
 * are migrated without pause on another thread (MADV_SOFT_OFFLINE: to a
 * new page of the same node, as one NUMA node is all the VM has) while
 * every page is written and collected, round after round.
 */
TEST_F_TIMEOUT(life, migration_during_reset, 180)
{
	struct churn ch = {
		.npages = MIG_PAGES, .step = 1, .advice = MADV_SOFT_OFFLINE,
		.max = 20000,	/* each soft offline retires a page frame */
	};
	long loglevel;
	uint32_t id;

	if (!self->ready)
		return;
	ch.base = map_anon(MIG_PAGES);
	ASSERT_NE(NULL, ch.base);
	if (madvise(ch.base, PAGE_SZ, MADV_SOFT_OFFLINE)) {
		int err = errno;

		munmap(ch.base, MIG_PAGES * PAGE_SZ);
		SKIP(return, "MADV_SOFT_OFFLINE: %s (CONFIG_MEMORY_FAILURE?)",
		     strerror(err));
	}
	id = TRACK(ch.base, MIG_PAGES);
	memset(self->want, 1, MIG_PAGES);
	/*
	 * Each soft offline logs a line at KERN_INFO: a thousand of them on
	 * the VM's serial console cost seconds.  Keep them out of the
	 * console (not out of the kernel log) meanwhile.
	 */
	loglevel = read_long("/proc/sys/kernel/printk");
	if (loglevel > 5)
		write_long("/proc/sys/kernel/printk", 5);
	page_churn_rounds(_metadata, &self->nl, id, &ch, self->want, self->got,
			  300);
	if (loglevel > 5)
		write_long("/proc/sys/kernel/printk", loglevel);
	dt_destroy(&self->nl, id);
	munmap(ch.base, MIG_PAGES * PAGE_SZ);
}

#define MIG_HUGE	2	/* self->want holds 2 huge pages */

/*
 * The same with huge pages moved between the VM's two NUMA nodes
 * (numa=fake=2): a reset that meets a huge page being migrated finds a
 * migration PMD.  It must not skip it: the PMD would come back writable
 * (and, for wpfault, no later write to the huge page would fault).
 * One page of each huge page is written every round.
 */
TEST_F_TIMEOUT(life, migration_during_reset_thp, 180)
{
	const size_t n = MIG_HUGE * HPAGE_SZ / PAGE_SZ;
	struct churn ch = {
		.npages = n, .step = HPAGE_SZ / PAGE_SZ, .move = true,
	};
	long huge, moved;
	uint32_t id;
	size_t i;

	if (!self->ready)
		return;
	if (!dt_thp_available())
		SKIP(return, "transparent huge pages disabled in this kernel");
	if (numa_nodes() < 2)
		SKIP(return, "one NUMA node: move_pages() has nowhere to migrate to");
	ch.base = map_aligned(n);
	ASSERT_NE(NULL, ch.base);
	ASSERT_EQ(0, madvise(ch.base, n * PAGE_SZ, MADV_HUGEPAGE));
	memset(ch.base, 1, n * PAGE_SZ);
	huge = dt_anon_huge_bytes(ch.base, n * PAGE_SZ);
	if (huge < (long)HPAGE_SZ) {
		munmap(ch.base, n * PAGE_SZ);
		SKIP(return, "no huge page could be allocated");
	}
	id = TRACK(ch.base, n);
	memset(self->want, 0, n);
	for (i = 7; i < n; i += HPAGE_SZ / PAGE_SZ)
		self->want[i] = 1;
	moved = vmstat("thp_migration_success");
	if (moved < 0) {
		dt_destroy(&self->nl, id);
		munmap(ch.base, n * PAGE_SZ);
		SKIP(return, "no thp_migration_success in /proc/vmstat (CONFIG_ARCH_ENABLE_THP_MIGRATION?)");
	}
	/* a huge page moves in milliseconds, a round takes far less */
	page_churn_rounds(_metadata, &self->nl, id, &ch, self->want, self->got,
			  3000);
	moved = vmstat("thp_migration_success") - moved;
	TH_LOG("huge pages at the start %ld, at the end %ld of %d; %ld moved whole",
	       huge / (long)HPAGE_SZ,
	       dt_anon_huge_bytes(ch.base, n * PAGE_SZ) / (long)HPAGE_SZ,
	       MIG_HUGE, moved);
	/* split before they moved, the test would be the small-page one */
	EXPECT_LT(0, moved);
	dt_destroy(&self->nl, id);
	munmap(ch.base, n * PAGE_SZ);
}

#define DN_PAGES	16384

/*
 * Pages zapped while a collect builds its answer (each zap is marked
 * dirty by the notifier, at its start and end): the answer, a run list
 * here, must stay well-formed and cover every write.  The kernel log
 * check after the test (KASAN on the debug kernel) catches an answer
 * written past its allocation.  Page 4k + 1 is written every epoch and
 * never dropped; page 4k + 3 is dropped over and over, and each one
 * marked while an answer is built is a run of its own.
 */
TEST_F_TIMEOUT(life, dontneed_during_collect, 180)
{
	struct churn ch = {
		.npages = DN_PAGES, .first = 3, .step = 4,
		.advice = MADV_DONTNEED,
	};
	uint8_t *want, *got;
	uint32_t id;
	size_t i;

	if (!self->ready)
		return;
	want = calloc(DN_PAGES, 1);
	got = calloc(DN_PAGES, 1);
	ASSERT_TRUE(want && got);
	ch.base = map_anon(DN_PAGES);
	ASSERT_NE(NULL, ch.base);
	id = TRACK(ch.base, DN_PAGES);
	for (i = 1; i < DN_PAGES; i += 4)
		want[i] = 1;
	page_churn_rounds(_metadata, &self->nl, id, &ch, want, got, 60);
	dt_destroy(&self->nl, id);
	munmap(ch.base, DN_PAGES * PAGE_SZ);
	free(want);
	free(got);
}

#define MTHP_SYSFS "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/"
#define MTHP_PAGES (65536 / PAGE_SZ)

/* Set an mTHP policy file to @val; its old value in @old.  0 or -errno. */
static int mthp_set(const char *file, const char *val, char *old, size_t n)
{
	char path[256];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), MTHP_SYSFS "%s", file);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(old, n, f))
		ret = -EIO;
	fclose(f);
	if (ret)
		return ret;
	/* "always [inherit] madvise never": keep the bracketed word */
	if (strchr(old, '[')) {
		char *s = strchr(old, '[') + 1, *e = strchr(s, ']');

		if (!e)
			return -EIO;
		memmove(old, s, e - s);
		old[e - s] = '\0';
	}
	f = fopen(path, "we");
	if (!f)
		return -errno;
	if (fputs(val, f) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

static long mthp_stat(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), MTHP_SYSFS "stats/%s", name);
	return read_long(path);
}

/*
 * One write fault may map a whole multi-size THP folio (6.8+: anonymous
 * memory, shmem, swap-in): 16 writable PTEs at once for 64 KiB.  The
 * writes to the 15 other pages take no fault, and must still be reported,
 * also when the reset that ends the epoch walks only the pages it knows
 * of (wpfault's O(dirty) reset: the target process unmaps nothing).
 */
static void mthp_writes(struct __test_metadata *_metadata,
			FIXTURE_DATA(life) *self, uint32_t method, bool shared)
{
	const char *file = shared ? "shmem_enabled" : "enabled";
	const char *stat = shared ? "shmem_alloc" : "anon_fault_alloc";
	size_t npages = 8 * MTHP_PAGES, i, first;
	uint8_t none[8 * MTHP_PAGES] = {};
	char old[64], cur[64];
	struct dt_target tgt;
	struct dt_collect c;
	long allocs;
	uint32_t id;
	int err;

	err = mthp_set(file, "always", old, sizeof(old));
	if (err == -ENOENT)
		SKIP(return, "no 64 KiB multi-size THP in this kernel (%s)",
		     MTHP_SYSFS);
	ASSERT_EQ(0, err) {
		TH_LOG("%s%s: %s", MTHP_SYSFS, file, strerror(-err));
	}
	allocs = mthp_stat(stat);
	err = dt_target_start(&tgt, shared ? DT_SHMEM : DT_ANON,
			      npages * PAGE_SZ, none);
	ASSERT_EQ(0, err);
	err = dt_create(&self->nl, tgt.pid, tgt.addr, tgt.len, method, 0, &id);
	ASSERT_EQ(0, err) {
		TH_LOG("create: %s: %s", self->nl.extack, strerror(-err));
	}
	ASSERT_EQ(0, dt_collect(&self->nl, id, DTRACK_COLLECT_RESET, &c));
	dt_collect_free(&c);
	/*
	 * Every page, in ascending order: the first write of each 64 KiB
	 * block (address-aligned for anonymous memory, offset-aligned for
	 * shmem) maps the whole block.
	 */
	memset(self->want, 1, npages);
	ASSERT_EQ(0, dt_target_store(&tgt, self->want));
	if (mthp_stat(stat) <= allocs) {
		dt_destroy(&self->nl, id);
		dt_target_kill(&tgt);
		mthp_set(file, old, cur, sizeof(cur));
		SKIP(return, "no 64 KiB folio was allocated (stats/%s)", stat);
	}
	for (i = 0; i < 3; i++) {
		err = dt_collect_map(&self->nl, id, DTRACK_COLLECT_RESET, tgt.addr,
				     npages, self->got, NULL, NULL);
		ASSERT_EQ(0, err);
		EXPECT_EQ(0, dt_missing(self->want, self->got, npages, &first)) {
			TH_LOG("epoch %zu: %zu of %zu written pages not reported (first: page %zu)",
			       i + 1, dt_missing(self->want, self->got, npages,
						 &first),
			       dt_count(self->want, npages), first);
		}
		/* then writes to a few pages of the folios */
		memset(self->want, 0, npages);
		self->want[5 + i] = self->want[MTHP_PAGES + 9 + i] = 1;
		self->want[npages - 1 - i] = 1;
		ASSERT_EQ(0, dt_target_write(&tgt, self->want));
	}
	dt_destroy(&self->nl, id);
	dt_target_kill(&tgt);
	mthp_set(file, old, cur, sizeof(cur));
}

TEST_F(life, mthp_anon)
{
	if (self->ready)
		mthp_writes(_metadata, self, variant->method, false);
}

TEST_F(life, mthp_shmem)
{
	if (self->ready)
		mthp_writes(_metadata, self, variant->method, true);
}

/* Mark pages [from, to) of set. */
static void set_range(uint8_t *set, size_t from, size_t to)
{
	for (; from < to; from++)
		set[from] = 1;
}

/* Page out pages [from, to) of the @n at p; 0 once none is present. */
static int page_out(char *p, size_t n, size_t from, size_t to)
{
	uint8_t present[HPAGE_SZ / PAGE_SZ];
	int tries, err;

	if (n > HPAGE_SZ / PAGE_SZ)
		return -E2BIG;
	for (tries = 0; tries < 20; tries++) {
		err = page_out_everywhere(p + from * PAGE_SZ,
					  (to - from) * PAGE_SZ);
		if (err)
			return err;
		if (dt_pagemap(getpid(), (uintptr_t)p, n, NULL, present))
			return -EIO;
		if (!memchr(present + from, 1, to - from))
			return 0;
		dt_sleep_ms(10);
	}
	return -EBUSY;
}

static void read_range(char *p, size_t from, size_t to)
{
	volatile char sink;

	for (; from < to; from++)
		sink = p[from * PAGE_SZ];
	(void)sink;
}

/*
 * Swap-out and swap-in of the @n pages at @p (tracker @id), in units of
 * n / 64 pages.  A swapped-out page's entry keeps its soft-dirty bit,
 * which a reset must clear: a swap-in by read would otherwise bring it
 * back soft-dirty (reported, unexplained) and, on 6.12, writable, so that
 * its next write takes no fault (wpfault would miss it).  A swap-out
 * loses the PTE and its dirty bit: reported in that epoch (a counted
 * false positive when the page was clean).  Each SUPERSET also fails on
 * pages reported beyond the written ones that the module did not count as
 * false positives, so the pages only read back must not show.  @huge:
 * the first epoch's writes went to a huge page (which reports whole).
 */
static void swap_epochs(struct __test_metadata *_metadata,
			FIXTURE_DATA(life) *self, uint32_t id, char *p,
			size_t n, bool huge)
{
	size_t u = n / 64;
	int err;

	/* A: 0-15 written, then 0-31 paged out in the same epoch */
	memset(self->want, 0, n);
	set_range(self->want, 0, 16 * u);
	touch_set(p, self->want, n);
	err = page_out(p, n, 0, 32 * u);
	ASSERT_EQ(0, err) TH_LOG("MADV_PAGEOUT: %s", strerror(-err));
	expect_superset(_metadata, &self->nl, id, "written, then paged out",
			p, n, self->want, self->got, DTRACK_COLLECT_RESET,
			huge);

	/*
	 * B: read back 0-7 (written in A) and 16-23; written: 8-11 and
	 * 24-27 (swap-in by write), 40-43 (resident)
	 */
	read_range(p, 0, 8 * u);
	read_range(p, 16 * u, 24 * u);
	memset(self->want, 0, n);
	set_range(self->want, 8 * u, 12 * u);
	set_range(self->want, 24 * u, 28 * u);
	set_range(self->want, 40 * u, 44 * u);
	touch_set(p, self->want, n);
	SUPERSET(id, "swap-in by read and by write", p, n, self->want);

	/* C: the pages read back in B are written */
	memset(self->want, 0, n);
	set_range(self->want, 0, 8 * u);
	set_range(self->want, 16 * u, 20 * u);
	touch_set(p, self->want, n);
	SUPERSET(id, "write after a swap-in by read", p, n, self->want);

	/* D: clean pages paged out, and some of them written again */
	err = page_out(p, n, 32 * u, 48 * u);
	ASSERT_EQ(0, err) TH_LOG("MADV_PAGEOUT: %s", strerror(-err));
	memset(self->want, 0, n);
	set_range(self->want, 32 * u, 36 * u);
	touch_set(p, self->want, n);
	SUPERSET(id, "clean pages paged out, some written", p, n, self->want);

	/* E: the rest comes back, by write (36-39) and by read (40-47) */
	memset(self->want, 0, n);
	set_range(self->want, 36 * u, 40 * u);
	touch_set(p, self->want, n);
	read_range(p, 40 * u, 48 * u);
	SUPERSET(id, "swap-in an epoch after the swap-out", p, n, self->want);
}

TEST_F_TIMEOUT(life, swap_out_and_in, 90)
{
	uint32_t id;
	char *p;

	if (!self->ready)
		return;
	if (!swap_available())
		SKIP(return, NO_SWAP);
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, madvise(p, NPAGES * PAGE_SZ, MADV_NOHUGEPAGE));
	id = TRACK(p, NPAGES);
	swap_epochs(_metadata, self, id, p, NPAGES, false);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

/* The same from a huge page, which the swap-out splits. */
TEST_F_TIMEOUT(life, swap_out_and_in_thp, 90)
{
	const size_t n = HPAGE_SZ / PAGE_SZ;
	const char *why;
	uint32_t id;
	char *p;
	int ret;

	if (!self->ready)
		return;
	if (!swap_available())
		SKIP(return, NO_SWAP);
	ret = map_one_huge(&p, &why);
	if (ret > 0)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, ret);
	id = TRACK(p, n);
	swap_epochs(_metadata, self, id, p, n, true);
	dt_destroy(&self->nl, id);
	munmap(p, HPAGE_SZ);
}

#define KSM "/sys/kernel/mm/ksm/"

TEST_F_TIMEOUT(life, ksm_merge, 90)
{
	long run, sleep_ms, to_scan, sharing = 0;
	uint32_t id;
	char *p;
	int i;

	if (!self->ready)
		return;
	run = read_long(KSM "run");
	if (run < 0)
		SKIP(return, "no KSM in this kernel (" KSM "run absent)");
	sleep_ms = read_long(KSM "sleep_millisecs");
	to_scan = read_long(KSM "pages_to_scan");
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, NPAGES * PAGE_SZ);	/* identical pages */
	id = TRACK(p, NPAGES);

	ASSERT_EQ(0, madvise(p, NPAGES * PAGE_SZ, MADV_MERGEABLE));
	ASSERT_EQ(0, write_long(KSM "sleep_millisecs", 10));
	ASSERT_EQ(0, write_long(KSM "pages_to_scan", 1000));
	ASSERT_EQ(0, write_long(KSM "run", 1));
	for (i = 0; i < 300; i++) {
		sharing = read_long(KSM "pages_sharing");
		if (sharing >= NPAGES / 2)
			break;
		usleep(100000);
	}
	if (sharing < NPAGES / 2) {
		write_long(KSM "run", 2);
		write_long(KSM "run", run);
		dt_destroy(&self->nl, id);
		SKIP(return, "ksmd merged only %ld pages in 30 s", sharing);
	}
	/* merging itself is no write; writes break the merge (COW) */
	memset(self->want, 0, NPAGES);
	SUPERSET(id, "KSM merge", p, NPAGES, self->want);
	write_random(&self->rng, p, self->want, NPAGES, 9);
	SUPERSET(id, "writes to KSM-merged pages", p, NPAGES, self->want);

	write_long(KSM "run", 2);	/* unmerge everything */
	write_long(KSM "run", run);
	if (sleep_ms >= 0)
		write_long(KSM "sleep_millisecs", sleep_ms);
	if (to_scan >= 0)
		write_long(KSM "pages_to_scan", to_scan);
	dt_destroy(&self->nl, id);
	munmap(p, NPAGES * PAGE_SZ);
}

/* One tracker of the variant's method, one of each other method. */
TEST_F(life, two_trackers_interleaved_resets)
{
	static const uint32_t others[] = { DTRACK_METHOD_SOFTDIRTY,
		DTRACK_METHOD_WPFAULT, DTRACK_METHOD_HWDIRTY,
		DTRACK_METHOD_ACCESSED };
	uint8_t s1[NPAGES], s2[NPAGES], s3[NPAGES], u[NPAGES];
	char reason[256], what[128];
	int pairs = 0;
	size_t k;
	char *p;

	if (!self->ready)
		return;
	p = map_anon(NPAGES);
	ASSERT_NE(NULL, p);
	for (k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
		uint32_t a, b, mb = others[k];

		if (mb == variant->method ||
		    dt_method_check(&self->nl, &self->v, mb, reason,
				    sizeof(reason)))
			continue;
		pairs++;
		a = TRACK(p, NPAGES);
		b = track(_metadata, &self->nl, p, NPAGES, mb);
		ASSERT_NE(0, b);
		snprintf(what, sizeof(what), "%s with %s",
			 dt_method_name(variant->method), dt_method_name(mb));

		/* S1; reset A; S2; reset B; S3; then both */
		write_random(&self->rng, p, s1, NPAGES, 10);
		SUPERSET(a, what, p, NPAGES, s1);
		write_random(&self->rng, p, s2, NPAGES, 10);
		memcpy(u, s1, NPAGES);
		set_or(u, s2, NPAGES);
		SUPERSET(b, what, p, NPAGES, u);	/* A's reset hid nothing */
		write_random(&self->rng, p, s3, NPAGES, 10);
		memcpy(u, s2, NPAGES);
		set_or(u, s3, NPAGES);
		SUPERSET(a, what, p, NPAGES, u);	/* B's reset hid nothing */
		SUPERSET(b, what, p, NPAGES, s3);
		/* again, the other way round, with writes in between */
		write_random(&self->rng, p, s1, NPAGES, 5);
		SUPERSET(b, what, p, NPAGES, s1);
		SUPERSET(a, what, p, NPAGES, s1);
		dt_destroy(&self->nl, a);
		dt_destroy(&self->nl, b);
	}
	munmap(p, NPAGES * PAGE_SZ);
	if (!pairs)
		SKIP(return, "no second method to pair %s with",
		     dt_method_name(variant->method));
}

/* ---- hwdirty keeps the page dirty for reclaim and writeback ----------- */

#define KPF_DIRTY 4

/* PG_dirty of each present page of [p, p + n pages) from kpageflags. */
static int page_dirty_flags(char *p, size_t n, uint8_t *dirty, int *absent)
{
	uint64_t pm, flags;
	int fd_pm, fd_kf, ret = 0;
	size_t i;

	fd_pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	fd_kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (fd_pm < 0 || fd_kf < 0) {
		ret = -errno;
		goto out;
	}
	*absent = 0;
	for (i = 0; i < n; i++) {
		uintptr_t va = (uintptr_t)p + i * PAGE_SZ;

		if (pread(fd_pm, &pm, 8, va / PAGE_SZ * 8) != 8) {
			ret = -EIO;
			goto out;
		}
		if (!(pm >> 63) || !(pm & ((1ULL << 55) - 1))) {
			(*absent)++;	/* not present, or PFN hidden */
			dirty[i] = 0;
			continue;
		}
		if (pread(fd_kf, &flags, 8, (pm & ((1ULL << 55) - 1)) * 8) != 8) {
			ret = -EIO;
			goto out;
		}
		dirty[i] = (flags >> KPF_DIRTY) & 1;
	}
out:
	if (fd_pm >= 0)
		close(fd_pm);
	if (fd_kf >= 0)
		close(fd_kf);
	return ret;
}

/*
 * hwdirty clears the PTE dirty bits it harvests: the dirtiness must move
 * to the page (PG_dirty) so that reclaim does not drop a written page as
 * clean and writeback still writes it.
 */
TEST(hwdirty_moves_dirty_to_page)
{
	uint8_t before[NPAGES], after[NPAGES];
	struct dt_version v;
	struct dt_collect c;
	struct dt_nl nl;
	char why[256], *p;
	int absent, err;
	uint32_t id;
	size_t i;

	ASSERT_EQ(0, dt_open(&nl, &v));
	err = dt_method_check(&nl, &v, DTRACK_METHOD_HWDIRTY, why,
			      sizeof(why));
	if (err == -EOPNOTSUPP)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err);
	p = mmap(NULL, NPAGES * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < NPAGES; i++)
		p[i * PAGE_SZ] = 1;	/* dirty PTEs, pages maybe not PG_dirty */
	err = page_dirty_flags(p, NPAGES, before, &absent);
	if (err)
		SKIP(return, "kpageflags unreadable: %s", strerror(-err));
	if (absent)
		SKIP(return, "%d pages without a visible PFN", absent);

	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, NPAGES * PAGE_SZ,
			       DTRACK_METHOD_HWDIRTY, 0, &id));
	for (i = 0; i < NPAGES; i++)
		p[i * PAGE_SZ] = 2;
	ASSERT_EQ(0, dt_collect(&nl, id, DTRACK_COLLECT_RESET, &c));
	dt_collect_free(&c);
	ASSERT_EQ(0, page_dirty_flags(p, NPAGES, after, &absent));
	ASSERT_EQ(0, absent);
	TH_LOG("PG_dirty before tracking: %zu of %d pages",
	       dt_count(before, NPAGES), NPAGES);
	EXPECT_EQ(NPAGES, dt_count(after, NPAGES)) {
		TH_LOG("after the hwdirty reset only %zu of %d written pages are PG_dirty",
		       dt_count(after, NPAGES), NPAGES);
	}
	dt_destroy(&nl, id);
	dt_nl_close(&nl);
	munmap(p, NPAGES * PAGE_SZ);
}

/* ---- concurrent writers ------------------------------------------------ */

#define CW_PAGES	256
#define CW_COLLECTS	60
#define CW_PER_GEN	400
#define CW_MAX_LOG	((CW_COLLECTS + 2) * CW_PER_GEN)
#define CW_MAX_NS	20000000000ULL	/* stop collecting after 20 s */

struct cw_write {
	uint32_t page;
	uint32_t gen_before;	/* collect generation read before the store */
	uint32_t gen_after;	/* and after it */
};

struct cw {
	char *p;
	volatile uint32_t gen;
	volatile int stop;
	volatile int done[2];
	volatile int started[2];
	struct cw_write *log[2];
	size_t nlog[2];
};

struct cw_arg {
	struct cw *cw;
	int idx;
};

static void *cw_writer(void *arg)
{
	struct cw_arg *a = arg;
	struct cw *cw = a->cw;
	uint64_t rng = 0x1234567 + a->idx;
	uint32_t gen = 0, in_gen = 0;
	unsigned long delay = 16, d;
	size_t n = 0;

	/*
	 * Each writer owns one half of the pages.  It spreads at most
	 * CW_PER_GEN writes over each collect interval: when it runs out
	 * before the collect ends it waits, and slows down for the next.
	 */
	while (!__atomic_load_n(&cw->stop, __ATOMIC_ACQUIRE) &&
	       n < CW_MAX_LOG) {
		uint32_t page = a->idx * (CW_PAGES / 2) +
				dt_rand(&rng) % (CW_PAGES / 2);
		struct cw_write *w;
		uint32_t now = __atomic_load_n(&cw->gen, __ATOMIC_SEQ_CST);

		if (now != gen) {
			gen = now;
			in_gen = 0;
		} else if (in_gen >= CW_PER_GEN) {
			/* too fast for this collect: slow down, once */
			if (in_gen++ == CW_PER_GEN && delay < (1UL << 20))
				delay *= 2;
			sched_yield();
			continue;
		}
		in_gen++;
		if (!n)
			__atomic_store_n(&cw->started[a->idx], 1,
					 __ATOMIC_RELEASE);
		w = &cw->log[a->idx][n++];
		w->page = page;
		w->gen_before = __atomic_load_n(&cw->gen, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		dt_touch(cw->p, page);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		w->gen_after = __atomic_load_n(&cw->gen, __ATOMIC_SEQ_CST);
		for (d = 0; d < delay; d++)
			__asm__ volatile("" ::: "memory");
	}
	cw->nlog[a->idx] = n;
	__atomic_store_n(&cw->done[a->idx], 1, __ATOMIC_RELEASE);
	return NULL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

TEST_F_TIMEOUT(life, concurrent_writers, 120)
{
	uint8_t (*seen)[CW_PAGES];
	struct cw_arg args[2];
	struct cw cw = {};
	pthread_t thr[2];
	uint32_t id, g, collects;
	size_t i, k, bad = 0;
	uint64_t t0;
	int t;

	if (!self->ready)
		return;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		TH_LOG("one CPU only: writers and collects interleave, not overlap");
	cw.p = map_anon(CW_PAGES);
	ASSERT_NE(NULL, cw.p);
	id = TRACK(cw.p, CW_PAGES);
	seen = calloc(CW_COLLECTS + 2, CW_PAGES);
	ASSERT_NE(NULL, seen);
	for (t = 0; t < 2; t++) {
		cw.log[t] = calloc(CW_MAX_LOG, sizeof(struct cw_write));
		ASSERT_NE(NULL, cw.log[t]);
		args[t].cw = &cw;
		args[t].idx = t;
	}
	/*
	 * Generation g covers the epoch ended by collect g.  A write that
	 * read gen_before = b started after collect b - 1 had returned, and
	 * one that read gen_after = a ended before collect a + 1 began: it
	 * must be reported by one of collects b .. a + 1.
	 */
	cw.gen = 1;
	for (t = 0; t < 2; t++)
		ASSERT_EQ(0, pthread_create(&thr[t], NULL, cw_writer, &args[t]));
	/* both must be running (a new thread may wait for a CPU a while) */
	t0 = mono_ns();
	while (!__atomic_load_n(&cw.started[0], __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&cw.started[1], __ATOMIC_ACQUIRE)) {
		ASSERT_GT(CW_MAX_NS, mono_ns() - t0);
		sched_yield();
	}
	/* collect back to back while they write */
	t0 = mono_ns();
	for (g = 1; g <= CW_COLLECTS; g++) {
		ASSERT_EQ(0, dt_collect_map(&self->nl, id, DTRACK_COLLECT_RESET,
					    (uintptr_t)cw.p, CW_PAGES, seen[g],
					    NULL, NULL));
		__atomic_store_n(&cw.gen, g + 1, __ATOMIC_SEQ_CST);
		if (mono_ns() - t0 > CW_MAX_NS)
			break;
	}
	collects = g > CW_COLLECTS ? CW_COLLECTS : g;
	__atomic_store_n(&cw.stop, 1, __ATOMIC_RELEASE);
	for (t = 0; t < 2; t++)
		pthread_join(thr[t], NULL);
	/* the last epoch, after every write has ended */
	__atomic_store_n(&cw.gen, collects + 1, __ATOMIC_SEQ_CST);
	ASSERT_EQ(0, dt_collect_map(&self->nl, id, DTRACK_COLLECT_RESET,
				    (uintptr_t)cw.p, CW_PAGES,
				    seen[collects + 1], NULL, NULL));

	for (t = 0; t < 2; t++) {
		for (i = 0; i < cw.nlog[t]; i++) {
			const struct cw_write *w = &cw.log[t][i];
			uint32_t last = w->gen_after + 1;
			bool found = false;

			if (last > collects + 1)
				last = collects + 1;
			for (k = w->gen_before; k <= last && !found; k++)
				found = seen[k][w->page];
			if (!found && bad++ < 5)
				TH_LOG("write to page %u (collects %u..%u) reported by none",
				       w->page, w->gen_before, last);
		}
	}
	TH_LOG("%zu + %zu writes during %u collects", cw.nlog[0], cw.nlog[1],
	       collects);
	EXPECT_EQ(0, bad);
	/* the race was real: writes all along the collects */
	EXPECT_LE(10, collects);
	EXPECT_LE(collects * 10, cw.nlog[0] + cw.nlog[1]);
	for (t = 0; t < 2; t++)
		free(cw.log[t]);
	free(seen);
	dt_destroy(&self->nl, id);
	munmap(cw.p, CW_PAGES * PAGE_SZ);
}

TEST_HARNESS_MAIN
