// SPDX-License-Identifier: GPL-2.0
/*
 * pagerd data integrity: random reads and writes from several threads over
 * a region several times the budget, checked against an in-memory model
 * and against the backing file after sync; sync/unmap/SIGTERM leave the
 * exact content in the file; eviction and prefetch; files with holes and
 * shorter than the region.  Every test runs on private and shared
 * anonymous memory.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "pager_test.h"
#include "../swap.h"

#define NTHREADS	4

FIXTURE(pager) {
	char dir[PATH_MAX];
	char sock[PATH_MAX + 16];
	char file[PATH_MAX + 16];
	char log[PATH_MAX + 16];
	pid_t pagerd;
	struct pager *p;
	unsigned char *model;
	size_t len;
	size_t budget;		/* bytes */
};

FIXTURE_VARIANT(pager) {
	int flags;
};

FIXTURE_VARIANT_ADD(pager, private) {
	.flags = 0,
};

FIXTURE_VARIANT_ADD(pager, shared) {
	.flags = PAGER_SHARED,
};

static pid_t start(struct __test_metadata *_metadata, FIXTURE_DATA(pager) *self)
{
	char budget[32];

	snprintf(budget, sizeof(budget), "%zuK", self->budget >> 10);
	return pt_start_pagerd(self->sock, budget, self->log);
}

FIXTURE_SETUP(pager)
{
	ASSERT_EQ(0, pt_scratch(self->dir, sizeof(self->dir)));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->file, sizeof(self->file), "%s/backing", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/pagerd.log", self->dir);
	self->len = pt_region_mb() << 20;
	self->budget = self->len / 5 & ~(PT_PAGE - 1);	/* region: 5x budget */
	self->model = malloc(self->len);
	ASSERT_NE(NULL, self->model);
	self->pagerd = start(_metadata, self);
	ASSERT_LT(0, self->pagerd) TH_LOG("pagerd %s did not start",
					  pt_pagerd_path());
	self->p = pager_connect(self->sock);
	ASSERT_NE(NULL, self->p) TH_LOG("connect: %s", strerror(errno));
}

FIXTURE_TEARDOWN(pager)
{
	/* no disconnect: pagerd may be dead, the process ends anyway */
	pt_stop_pagerd(self->pagerd, SIGKILL);
	if (getenv("PAGER_TEST_KEEP"))
		fprintf(stderr, "# kept %s\n", self->dir);
	else
		pt_rmrf(self->dir);
}

struct worker {
	struct __test_metadata *md;
	struct pager *p;
	unsigned char *mem, *model;
	size_t npages;
	int id;
	long ops;
	long bad;		/* first mismatching offset + 1 */
	uint64_t max_resident;
};

/*
 * Thread @id owns the 8-byte slots with index % NTHREADS == id of every
 * page: all threads fault, write and race with eviction on the same pages,
 * yet the model needs no locking.
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (w->id + 1);

	for (long i = 0; i < w->ops && !w->bad; i++) {
		uint64_t r = pt_rand(&seed);
		size_t pg = r % w->npages;
		size_t slot = ((r >> 32) % (PT_PAGE / 8 / NTHREADS)) * NTHREADS;
		size_t off = pg * PT_PAGE + (slot + w->id) * 8;

		if (r & (1ULL << 20)) {
			uint64_t v = pt_rand(&seed);

			memcpy(w->mem + off, &v, 8);
			memcpy(w->model + off, &v, 8);
		} else if (memcmp(w->mem + off, w->model + off, 8)) {
			w->bad = off + 1;
		}
		if (w->id == 0 && i % 256 == 0) {
			struct pager_stats st;

			if (!pager_stats(w->p, NULL, &st) &&
			    st.resident > w->max_resident)
				w->max_resident = st.resident;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(pager, random_rw, 150)
{
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct pager_stats st, rs;
	unsigned char *mem;
	uint64_t maxres = 0;
	long long d;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, self->len, 42));
	mem = pager_map(self->p, self->len, self->file, variant->flags);
	ASSERT_NE(NULL, mem) TH_LOG("map: %s", strerror(errno));
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .md = _metadata, .p = self->p,
			.mem = mem, .model = self->model,
			.npages = self->len / PT_PAGE, .id = i,
			.ops = (long)(self->len / PT_PAGE) * 12 / NTHREADS };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, worker_main, &w[i]));
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, w[i].bad) TH_LOG("thread %d read stale data at %ld",
					      i, w[i].bad - 1);
		if (w[i].max_resident > maxres)
			maxres = w[i].max_resident;
	}
	d = pt_mem_diff(mem, self->model, self->len);
	ASSERT_EQ(-1, d) TH_LOG("region differs from model at %lld", d);
	ASSERT_EQ(0, pager_sync(self->p, mem, self->len));
	d = pt_file_diff(self->file, self->model, self->len);
	ASSERT_EQ(-1, d) TH_LOG("file differs from model at %lld", d);

	ASSERT_EQ(0, pager_stats(self->p, NULL, &st));
	ASSERT_EQ(0, pager_stats(self->p, mem, &rs));
	TH_LOG("faults %llu (wp %llu) fills file %llu zero %llu, "
	       "writebacks %llu evictions %llu, max resident %llu/%llu pages",
	       (unsigned long long)rs.faults, (unsigned long long)rs.wp_faults,
	       (unsigned long long)rs.fills_file,
	       (unsigned long long)rs.fills_zero,
	       (unsigned long long)rs.writebacks,
	       (unsigned long long)rs.evictions, (unsigned long long)maxres,
	       (unsigned long long)st.budget);
	EXPECT_GT(rs.evictions, 0);
	EXPECT_GT(rs.fills_file, 0);
	EXPECT_GT(rs.fills_zero, 0);	/* holes and past EOF */
	EXPECT_EQ(0, rs.wb_errors);
	/* the budget holds (a page of slack for the never-deadlock rule) */
	EXPECT_LE(maxres, st.budget + 1);
	EXPECT_LE(st.resident, st.budget + 1);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/* sync, more writes, unmap, map again: the file is the checkpoint. */
TEST_F_TIMEOUT(pager, sync_unmap_remap, 60)
{
	size_t len = self->len / 2;
	unsigned char *mem;
	uint64_t seed = 7;
	long long d;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 1));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (size_t off = 0; off < len; off += PT_PAGE * 3) {
		mem[off + 17] = pt_rand(&seed);
		self->model[off + 17] = mem[off + 17];
	}
	ASSERT_EQ(0, pager_sync(self->p, mem, len));
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("after sync: file differs at %lld", d);
	/* the file has the whole region, tail zeros included */
	{
		struct stat stt;

		ASSERT_EQ(0, stat(self->file, &stt));
		EXPECT_EQ((off_t)len, stt.st_size);
	}
	for (size_t off = PT_PAGE; off < len; off += PT_PAGE * 7) {
		mem[off] = pt_rand(&seed) | 1;
		self->model[off] = mem[off];
	}
	ASSERT_EQ(0, pager_unmap(self->p, mem));
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("after unmap: file differs at %lld", d);

	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("remapped region differs at %lld", d);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/* pager_evict drops everything (data survives), pager_prefetch fills. */
TEST_F_TIMEOUT(pager, evict_prefetch, 60)
{
	size_t len = self->budget / 2 & ~(PT_PAGE * 2 - 1);
	struct pager_stats st, st2;
	unsigned char *mem;
	long long d;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 3));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (size_t off = 0; off < len; off += PT_PAGE) {
		mem[off + 100] ^= 0x5a;
		self->model[off + 100] ^= 0x5a;
	}
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(len / PT_PAGE, st.resident);
	EXPECT_EQ(len / PT_PAGE, st.dirty);

	ASSERT_EQ(0, pager_evict(self->p, mem, len));
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(0, st.resident);
	EXPECT_EQ(len / PT_PAGE, st.evictions);
	d = pt_file_diff(self->file, self->model, len);
	EXPECT_EQ(-1, d) TH_LOG("evict did not write back (at %lld)", d);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("content after evict differs at %lld", d);

	ASSERT_EQ(0, pager_evict(self->p, mem, len));
	ASSERT_EQ(0, pager_prefetch(self->p, mem, len / 2));
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(len / 2 / PT_PAGE, st.resident);
	d = pt_mem_diff(mem, self->model, len / 2);
	ASSERT_EQ(-1, d);
	ASSERT_EQ(0, pager_stats(self->p, mem, &st2));
	/* prefetched pages are read without a single missing fault */
	EXPECT_EQ(st.missing_faults, st2.missing_faults);
	/* bad ranges are refused */
	EXPECT_EQ(-EINVAL, pager_sync(self->p, mem + len, PT_PAGE));
	EXPECT_EQ(-EINVAL, pager_unmap(self->p, mem + PT_PAGE));
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/* Write one byte of every @step-th page of [0, len) (memory and model). */
static void scribble(unsigned char *mem, unsigned char *model, size_t len,
		     size_t step, unsigned char x)
{
	for (size_t off = 0; off < len; off += step * PT_PAGE) {
		mem[off + (off / PT_PAGE) % PT_PAGE] ^= x;
		model[off + (off / PT_PAGE) % PT_PAGE] ^= x;
	}
}

/*
 * The kernel swaps the region out under pagerd (MADV_PAGEOUT to the test
 * VM's swap space): dirty pages that went to swap, pages written again
 * after a swap-in, pages swapped in by a read, must all reach the file by
 * sync and by eviction, and come back exact.  pagerd reads a private
 * page through /proc/PID/mem, which takes it from swap; in asynchronous
 * mode the helper moves swap entries to staging (UFFDIO_MOVE) and must
 * write them from there: taking only present pages for data (pagemap bit
 * 63 without the swap bit 62) loses the last phase's writes.
 */
TEST_F_TIMEOUT(pager, kernel_swaps_pages, 60)
{
	size_t len = self->budget / 2 & ~(PT_PAGE * 2 - 1);
	struct pager_stats st;
	unsigned char *mem;
	long long d, out;

	if (!swap_available())
		SKIP(return, NO_SWAP);
	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 23));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, madvise(mem, len, MADV_NOHUGEPAGE));
	/* all resident and dirty, then paged out */
	scribble(mem, self->model, len, 1, 0x5a);
	out = page_out_counted(mem, len);
	ASSERT_LE(0, out);
	/* shared: the pages leave the region's memfd */
	EXPECT_LE((long long)len / 2, out) TH_LOG("%lld KiB of %zu swapped out",
						  out >> 10, len >> 10);
	ASSERT_EQ(0, pager_sync(self->p, mem, len));
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("sync of swapped pages: file differs at %lld", d);

	/* written after the sync (some swapped in by that write), swapped */
	scribble(mem, self->model, len, 3, 0xc3);
	ASSERT_EQ(0, page_out_everywhere(mem, len));
	d = pt_mem_diff(mem, self->model, len / 2);	/* swap-in by reads */
	ASSERT_EQ(-1, d) TH_LOG("memory differs at %lld", d);
	ASSERT_EQ(0, page_out_everywhere(mem, len));
	ASSERT_EQ(0, pager_evict(self->p, mem, len));
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(0, st.resident);
	EXPECT_EQ(0, st.wb_errors);
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("eviction of swapped pages: file differs at %lld", d);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("content after eviction differs at %lld", d);

	/*
	 * every page dirty and swapped: asynchronous mode's helper moves
	 * the swap entries to staging and writes them itself
	 */
	scribble(mem, self->model, len, 1, 0x3c);
	ASSERT_EQ(0, page_out_everywhere(mem, len));
	ASSERT_EQ(0, pager_evict(self->p, mem, len));
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("eviction of dirty swapped pages: file differs at %lld", d);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("content after eviction differs at %lld", d);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * One eviction batch whose pages are written by two hands: in
 * asynchronous mode a move request whose pages are all dirty is written
 * by libpager's helper from its staging area (PAGER_DROP_WRITE), one with
 * clean pages in it by pagerd, which writes the dirty ones and compares
 * the clean ones with the file.  64 single dirty pages (64 ranges, one
 * request's worth) followed by a run of dirty and clean pages make one
 * batch of both kinds: the eviction must succeed, write exactly the
 * dirty pages, and leave file and memory exact.  Shared regions take the
 * synchronous path, with the same expectations.
 */
TEST_F_TIMEOUT(pager, evict_mixed_batch, 60)
{
	size_t singles = 64, tail = 64, n = 2 * singles + tail;
	size_t len = n * PT_PAGE;
	uint64_t want = 0;
	struct pager_stats st, st0;
	unsigned char *mem;
	long long d;

	/*
	 * All of it must stay resident until the eviction, also while the
	 * first read runs as a stream (eviction makes room ahead of a
	 * stream's next window, up to a quarter of the budget): a small
	 * PAGER_TEST_MB (the debug kernel's) gets a pagerd with room.
	 */
	if (self->budget < 2 * len) {
		pager_disconnect(self->p);
		pt_stop_pagerd(self->pagerd, SIGKILL);
		self->budget = 2 * len;
		self->pagerd = start(_metadata, self);
		ASSERT_LT(0, self->pagerd);
		self->p = pager_connect(self->sock);
		ASSERT_NE(NULL, self->p);
	}
	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 17));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	d = pt_mem_diff(mem, self->model, len);		/* all resident, clean */
	ASSERT_EQ(-1, d);
	for (size_t i = 1; i < 2 * singles; i += 2)
		ASSERT_EQ(0, pager_evict(self->p, mem + i * PT_PAGE, PT_PAGE));
	/* dirty: the 64 singles and every other page of the tail */
	for (size_t i = 0; i < n; i += 2) {
		size_t off = i * PT_PAGE + 8 * (i % 500);

		mem[off] ^= 0xa5;
		self->model[off] ^= 0xa5;
		want++;
	}
	/* asynchronous WP: the scan before the answer finds the writes */
	ASSERT_EQ(0, pager_stats(self->p, mem, &st0));
	EXPECT_EQ(singles + tail, st0.resident);
	EXPECT_EQ(want, st0.dirty);

	ASSERT_EQ(0, pager_evict(self->p, mem, len));
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(0, st.resident);
	EXPECT_EQ(0, st.wb_errors);
	EXPECT_EQ(want, st.writebacks - st0.writebacks);
	d = pt_file_diff(self->file, self->model, len);
	EXPECT_EQ(-1, d) TH_LOG("file differs at %lld", d);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("content after evict differs at %lld", d);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * SIGTERM: pagerd writes back everything before exiting, without any sync
 * from the client; the client keeps running on a restarted pagerd.
 */
TEST_F_TIMEOUT(pager, sigterm_flush_restart, 90)
{
	size_t len = self->len;
	unsigned char *mem;
	uint64_t seed = 99;
	long long d;
	int st;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 5));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (size_t off = 0; off < len; off += PT_PAGE * 2) {
		uint64_t v = pt_rand(&seed);

		memcpy(mem + off + 8, &v, 8);
		memcpy(self->model + off + 8, &v, 8);
	}
	st = pt_stop_pagerd(self->pagerd, SIGTERM);
	self->pagerd = -1;
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("file after SIGTERM differs at %lld", d);

	self->pagerd = start(_metadata, self);
	ASSERT_LT(0, self->pagerd);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("region after restart differs at %lld", d);
	for (size_t off = PT_PAGE; off < len; off += PT_PAGE * 5) {
		mem[off] ^= 0xff;
		self->model[off] ^= 0xff;
	}
	ASSERT_EQ(0, pager_sync(self->p, mem, len));
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("file after restart+sync differs at %lld", d);
}

/*
 * Several client processes share the global budget: each runs the random
 * workload on its own region; together they are 5x the budget.
 */
TEST_F_TIMEOUT(pager, several_clients, 150)
{
	enum { NCLIENTS = 3 };
	size_t len = self->len / NCLIENTS & ~(PT_PAGE - 1);
	pid_t pids[NCLIENTS];
	struct pager_stats st;

	for (int c = 0; c < NCLIENTS; c++) {
		pids[c] = fork();
		ASSERT_LE(0, pids[c]);
		if (!pids[c]) {
			char file[PATH_MAX + 32];
			struct worker w = { .ops = (long)(len / PT_PAGE) * 8,
					    .npages = len / PT_PAGE };
			unsigned char *model = malloc(len);
			struct pager *p = pager_connect(self->sock);

			snprintf(file, sizeof(file), "%s/client%d", self->dir, c);
			if (!p || !model || pt_make_file(file, model, len, c))
				_exit(1);
			w.mem = pager_map(p, len, file, variant->flags);
			if (!w.mem)
				_exit(2);
			w.p = p;
			w.model = model;
			/* one thread per client, owning every slot 0 mod N */
			for (w.id = 0; w.id < NTHREADS && !w.bad; w.id++) {
				w.ops = (long)(len / PT_PAGE) * 2;
				worker_main(&w);
			}
			if (w.bad)
				_exit(3);
			if (pt_mem_diff(w.mem, model, len) != -1)
				_exit(4);
			if (pager_sync(p, w.mem, len) ||
			    pt_file_diff(file, model, len) != -1)
				_exit(5);
			if (pager_unmap(p, w.mem))
				_exit(6);
			pager_disconnect(p);
			_exit(0);
		}
	}
	for (int c = 0; c < NCLIENTS; c++) {
		int status;

		ASSERT_EQ(pids[c], waitpid(pids[c], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("client %d failed with %d", c, WEXITSTATUS(status));
	}
	ASSERT_EQ(0, pager_stats(self->p, NULL, &st));
	EXPECT_EQ(0, st.nr_regions);
	EXPECT_GT(st.evictions, 0);
	EXPECT_EQ(0, st.wb_errors);
}

struct hammer {
	uint64_t *mem;		/* 16 pages of counters */
	int id;
	uint64_t count[16];	/* increments done, per page */
	volatile int *stop;
};

/* Increment this thread's counter in each of the 16 pages, round robin. */
static void *hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (long i = 0; !*h->stop; i++) {
		size_t pg = i % 16;

		h->mem[pg * (PT_PAGE / 8) + h->id]++;
		h->count[pg]++;
	}
	return NULL;
}

/*
 * Writes racing with eviction and write-back of the very pages they hit:
 * no increment may be lost, in memory or in the file.
 */
TEST_F_TIMEOUT(pager, evict_while_writing, 120)
{
	enum { NW = 3, ROUNDS = 40 };
	size_t len = 16 * PT_PAGE;
	struct hammer h[NW];
	pthread_t t[NW];
	struct pager_stats st;
	volatile int stop = 0;
	uint64_t *mem, *file;
	int fd;

	unlink(self->file);
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (int i = 0; i < NW; i++) {
		h[i] = (struct hammer){ .mem = mem, .id = i, .stop = &stop };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, hammer_main, &h[i]));
	}
	/*
	 * Every writer must be writing before the evictions start: a new
	 * thread may wait for a CPU a while (seen in the VM on a busy host:
	 * 40 rounds done before any increment, nothing left to evict).
	 */
	for (int i = 0, waited = 0; i < NW; i++)
		while (!__atomic_load_n(&h[i].count[0], __ATOMIC_RELAXED)) {
			ASSERT_GT(30000, waited++) TH_LOG("writer %d never ran", i);
			usleep(1000);
		}
	/* evict (and now and then sync) under the writers' feet */
	for (int round = 0; round < ROUNDS; round++) {
		EXPECT_EQ(0, pager_evict(self->p, mem, len));
		if (round % 10 == 9)
			EXPECT_EQ(0, pager_sync(self->p, mem, len / 2));
	}
	stop = 1;
	for (int i = 0; i < NW; i++)
		pthread_join(t[i], NULL);
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	TH_LOG("%d evict rounds: %llu evictions, %llu wp faults, %llu "
	       "increments by thread 0", ROUNDS,
	       (unsigned long long)st.evictions,
	       (unsigned long long)st.wp_faults,
	       (unsigned long long)h[0].count[0] * 16);
	EXPECT_GT(st.evictions, 0);
	/*
	 * With asynchronous write-protection (PAGER_WP_MODE=async on a
	 * kernel with WP_ASYNC and MOVE) private pages never take a WP fault:
	 * this proves the counters survived eviction by UFFDIO_MOVE and
	 * PAGEMAP_SCAN dirty tracking, not the synchronous path.
	 */
	if (!variant->flags && pt_pagerd_async(self->sock))
		EXPECT_EQ(0, st.wp_faults);
	for (size_t pg = 0; pg < 16; pg++) {
		for (int i = 0; i < NW; i++) {
			ASSERT_EQ(h[i].count[pg], mem[pg * (PT_PAGE / 8) + i]) {
				TH_LOG("page %zu thread %d lost increments",
				       pg, i);
			}
		}
	}
	ASSERT_EQ(0, pager_sync(self->p, mem, len));
	file = malloc(len);
	fd = open(self->file, O_RDONLY);
	ASSERT_EQ((ssize_t)len, pread(fd, file, len, 0));
	close(fd);
	ASSERT_EQ(0, memcmp(file, mem, len));
	free(file);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * Every page written once, scattered over a region five times the
 * budget: CLOCK laps the one region several times, and at each wrap a
 * victim batch holds pages from its end and from its start.  Each page
 * must reach the file exactly once.  The victims used to be handed on in
 * the order the hand met them, not ascending, and the fdatasync that
 * makes a batch durable (region_fsync()) walks them as ascending: the
 * pages after the wrap stayed flagged unsynced, were put back dirty and
 * written a second time.  The order is a stride, not random: a page
 * written right after its predecessor would continue a write stream,
 * whose window goes in DIRTY and is written back once more (harmless,
 * but not "once").
 */
TEST_F_TIMEOUT(pager, clock_wrap_written_once, 60)
{
	size_t len = self->len, npages = len / PT_PAGE;
	struct pager_stats st;
	unsigned char *mem;
	uint64_t seed = 77;
	size_t *order, *when, stride;
	long long d;
	int fd;

	/* an empty file: a page never written is a hole, never written */
	fd = open(self->file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	memset(self->model, 0, len);
	order = malloc(npages * sizeof(*order));
	when = malloc(npages * sizeof(*when));
	ASSERT_NE(NULL, order);
	ASSERT_NE(NULL, when);
	/* i * stride % npages is a permutation: stride coprime to npages */
	for (stride = npages * 618 / 1000 + 1; ; stride++) {
		size_t a = stride, b = npages;
		bool near = false;

		while (b) {
			size_t t = a % b;

			a = b;
			b = t;
		}
		if (a != 1)
			continue;

		for (size_t i = 0; i < npages; i++) {
			order[i] = i * stride % npages;
			when[order[i]] = i;
		}
		/* no page written within 16 writes after its predecessor */
		for (size_t p = 1; p < npages && !near; p++)
			near = when[p] > when[p - 1] && when[p] - when[p - 1] <= 16;
		if (!near)
			break;
		ASSERT_GT(npages, stride);
	}
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (size_t i = 0; i < npages; i++) {
		uint64_t v = pt_rand(&seed) | 1;
		size_t off = order[i] * PT_PAGE + (order[i] % 64) * 8;

		memcpy(self->model + off, &v, 8);
		memcpy(mem + off, &v, 8);
	}
	ASSERT_EQ(0, pager_sync(self->p, mem, len));
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("file differs at %lld", d);
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	ASSERT_LT(0, st.evictions);
	EXPECT_EQ(0, st.wb_errors);
	EXPECT_EQ(npages, st.writebacks)
		TH_LOG("%llu pages written back, %llu evicted",
		       (unsigned long long)st.writebacks,
		       (unsigned long long)st.evictions);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
	free(order);
	free(when);
}

/*
 * The application drops a clean page behind pagerd's back: the next
 * access must be refilled from the file, not wait for ever.
 */
TEST_F_TIMEOUT(pager, page_dropped_by_app, 30)
{
	size_t len = 64 * PT_PAGE;
	struct pager_stats st;
	unsigned char *mem;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 12));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, memcmp(mem, self->model, len));
	ASSERT_EQ(0, madvise(mem + 3 * PT_PAGE, PT_PAGE,
			     variant->flags ? MADV_REMOVE : MADV_DONTNEED));
	ASSERT_EQ(0, memcmp(mem, self->model, len));
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(1, st.vanished);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * A dirty page the application drops itself before a sync: write-back
 * finds it gone (reading it through /proc/PID/mem fails with EIO).  That
 * is no I/O error: sync succeeds, the other dirty pages reach the file,
 * and the dropped page reads as the file has it (private; a shared page
 * punched with MADV_REMOVE reads as zeros or as the file).
 */
TEST_F_TIMEOUT(pager, dirty_page_dropped_by_app, 30)
{
	size_t len = 64 * PT_PAGE;
	unsigned char *mem, *old;
	long long d;
	int ret;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 13));
	old = malloc(PT_PAGE);
	ASSERT_NE(NULL, old);
	memcpy(old, self->model + 5 * PT_PAGE, PT_PAGE);
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, memcmp(mem, self->model, len));
	for (int i = 4; i < 8; i++) {
		memset(mem + i * PT_PAGE, 0x40 + i, 100);
		memset(self->model + i * PT_PAGE, 0x40 + i, 100);
	}
	ASSERT_EQ(0, madvise(mem + 5 * PT_PAGE, PT_PAGE,
			     variant->flags ? MADV_REMOVE : MADV_DONTNEED));
	ret = pager_sync(self->p, mem, len);
	ASSERT_EQ(0, ret) TH_LOG("sync returned %d (%s)", ret, strerror(-ret));
	if (variant->flags) {
		/* the hole reads as zeros: whatever pagerd wrote for it */
		int fd = open(self->file, O_RDONLY | O_CLOEXEC);

		ASSERT_LE(0, fd);
		ASSERT_EQ(PT_PAGE, pread(fd, self->model + 5 * PT_PAGE,
					 PT_PAGE, 5 * PT_PAGE));
		close(fd);
	} else {
		memcpy(self->model + 5 * PT_PAGE, old, PT_PAGE);
	}
	d = pt_file_diff(self->file, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("file differs at %lld", d);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("region differs at %lld", d);
	free(old);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/* Sequential faults grow a readahead window: far fewer faults than pages. */
TEST_F_TIMEOUT(pager, sequential_readahead, 60)
{
	size_t len = self->budget / 2 & ~(PT_PAGE - 1);
	struct pager_stats st;
	unsigned char *mem;
	long long d;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 8));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d);
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	TH_LOG("%zu pages: %llu missing faults, %llu readahead", len / PT_PAGE,
	       (unsigned long long)st.missing_faults,
	       (unsigned long long)st.readahead);
	EXPECT_GT(st.readahead, 0);
	EXPECT_LT(st.missing_faults, len / PT_PAGE / 4);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/* The fault-around chunk of the fixture's pagerd, pages; 0: turned off. */
static size_t fa_chunk(void)
{
	return atol(pt_fault_around());
}

/*
 * Random faults over a region used densely: the second random fault in a
 * chunk fills the chunk (fault-around), so a random walk over every page
 * takes a fraction of the faults a page-at-a-time pager takes, and reads
 * the file's exact content.
 */
TEST_F_TIMEOUT(pager, random_fault_around, 60)
{
	size_t len = self->budget / 2 & ~(PT_PAGE - 1);
	size_t n = len / PT_PAGE, chunk = fa_chunk();
	struct pager_stats st;
	unsigned char *mem;
	uint32_t *order;
	uint64_t seed = 42;
	long long d;

	if (!chunk)
		SKIP(return, "fault-around turned off (PAGER_TEST_FAULT_AROUND=0)");
	if (n < 3 * chunk)
		SKIP(return, "region of %zu pages: under 3 chunks of %zu", n, chunk);
	order = malloc(n * sizeof(*order));
	ASSERT_NE(NULL, order);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = pt_rand(&seed) % (i + 1);
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 9));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (size_t i = 0; i < n; i++) {
		size_t off = (size_t)order[i] * PT_PAGE + (i % 512) * 8;

		ASSERT_EQ(0, memcmp(mem + off, self->model + off, 8))
			TH_LOG("page %u differs", order[i]);
	}
	free(order);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("region differs at %lld", d);
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	TH_LOG("%zu pages in random order, chunk %zu: %llu missing faults, "
	       "%llu filled around them", n, chunk,
	       (unsigned long long)st.missing_faults,
	       (unsigned long long)st.readahead);
	EXPECT_EQ(n, st.resident);
	EXPECT_GT(st.readahead, n / 2);
	EXPECT_LT(st.missing_faults, n / 3);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * Sparse random use, one page per chunk, must not read around: only the
 * pages touched become resident.  A second page in the same chunks then
 * fills them.
 */
TEST_F_TIMEOUT(pager, sparse_no_fault_around, 60)
{
	size_t len = self->budget / 2 & ~(PT_PAGE - 1);
	size_t n = len / PT_PAGE, chunk = fa_chunk(), nchunks, touched = 0;
	struct pager_stats st;
	unsigned char *mem;
	long long d;

	if (!chunk)
		SKIP(return, "fault-around turned off (PAGER_TEST_FAULT_AROUND=0)");
	nchunks = n / chunk;
	if (nchunks < 3)
		SKIP(return, "region of %zu pages: under 3 chunks of %zu", n, chunk);
	ASSERT_EQ(0, pt_make_file(self->file, self->model, len, 10));
	mem = pager_map(self->p, len, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	/* chunks in a scattered order, one page each, never sequential */
	for (size_t k = 0; k < nchunks; k++) {
		size_t c = k * 7 % nchunks, off;

		if (nchunks % 7 == 0 && k >= nchunks / 7)
			break;	/* 7 divides nchunks: the walk repeats */
		off = (c * chunk + 3) * PT_PAGE;
		ASSERT_EQ(0, memcmp(mem + off, self->model + off, 64));
		touched++;
	}
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	TH_LOG("%zu chunks touched once: %llu resident, %llu read around",
	       touched, (unsigned long long)st.resident,
	       (unsigned long long)st.readahead);
	EXPECT_EQ(touched, st.resident);
	EXPECT_EQ(0, st.readahead);

	/* a second page in the first touched chunk: the chunk fills */
	ASSERT_EQ(0, memcmp(mem + (chunk - 2) * PT_PAGE,
			    self->model + (chunk - 2) * PT_PAGE, 64));
	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(0, pager_stats(self->p, mem, &st));
		/* reserved pages count as resident before they are filled */
		if (st.readahead >= chunk - 2)
			break;
		usleep(2000);	/* the helper thread may fill it */
	}
	/* the two pages touched, and the others around them */
	EXPECT_EQ(touched + chunk - 1, st.resident);
	EXPECT_EQ(chunk - 2, st.readahead);
	d = pt_mem_diff(mem, self->model, len);
	ASSERT_EQ(-1, d) TH_LOG("region differs at %lld", d);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/* Bad --fault-around values are refused with a message, exit status 2. */
TEST_F_TIMEOUT(pager, fault_around_option, 30)
{
	static const char *const bad[] = { "3", "-16", "1", "x", "2048", "" };
	char cmd[4 * PATH_MAX], err[PATH_MAX + 16], msg[256] = "";

	snprintf(err, sizeof(err), "%s/err", self->dir);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		FILE *f;

		snprintf(cmd, sizeof(cmd), "'%s' --fault-around '%s' --socket "
			 "'%s.bad' 2>'%s'", pt_pagerd_path(), bad[i],
			 self->sock, err);
		EXPECT_EQ(2, WEXITSTATUS(system(cmd)))
			TH_LOG("--fault-around '%s' not refused", bad[i]);
		f = fopen(err, "r");
		ASSERT_NE(NULL, f);
		if (!fgets(msg, sizeof(msg), f))
			msg[0] = 0;
		fclose(f);
		EXPECT_NE(NULL, strstr(msg, "--fault-around takes"))
			TH_LOG("--fault-around '%s': %s", bad[i], msg);
	}
	/* no pagerd was left behind on the bad socket */
	snprintf(cmd, sizeof(cmd), "%s.bad", self->sock);
	EXPECT_FALSE(pt_can_connect(cmd));
}

/* pagerd --stats, text and JSON, while regions are live. */
TEST_F_TIMEOUT(pager, stats_cli, 30)
{
	char cmd[3 * PATH_MAX], buf[4096];
	unsigned char *mem;
	size_t n;
	FILE *f;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, PT_PAGE * 64, 2));
	mem = pager_map(self->p, PT_PAGE * 64, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	mem[0] ^= 1;
	for (int json = 0; json < 2; json++) {
		snprintf(cmd, sizeof(cmd), "'%s' --stats %s--socket '%s'",
			 pt_pagerd_path(), json ? "--json " : "", self->sock);
		f = popen(cmd, "r");
		ASSERT_NE(NULL, f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = 0;
		ASSERT_EQ(0, pclose(f));
		if (json) {
			EXPECT_EQ('{', buf[0]);
			EXPECT_NE(NULL, strstr(buf, "\"region\": [{\"id\""));
			EXPECT_NE(NULL, strstr(buf, "\"fault_latency_us_log2\""));
			EXPECT_NE(NULL, strstr(buf, "\"wp_mode\": \""));
		} else {
			EXPECT_NE(NULL, strstr(buf, "1 regions"));
			EXPECT_NE(NULL, strstr(buf, "wp_faults"));
			/* the mode in use is always visible */
			EXPECT_NE(NULL, strstr(buf, "write-protect: "));
		}
	}
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * The global statistics and `pagerd --stats` count the pages written so
 * far.  In asynchronous mode pagerd learns of a write to a resident page
 * only by scanning; before, only a region's own stats scanned, and the
 * global dirty count stayed 0 until a sync or an eviction.
 */
TEST_F_TIMEOUT(pager, stats_count_writes, 30)
{
	char cmd[3 * PATH_MAX], buf[8192], *at;
	unsigned long long dirty = ~0ULL;
	volatile unsigned char sum = 0;
	struct pager_stats st;
	unsigned char *mem;
	size_t n;
	FILE *f;

	ASSERT_EQ(0, pt_make_file(self->file, self->model, PT_PAGE * 64, 3));
	mem = pager_map(self->p, PT_PAGE * 64, self->file, variant->flags);
	ASSERT_NE(NULL, mem);
	for (int i = 0; i < 64; i++)
		sum += mem[i * PT_PAGE];
	ASSERT_EQ(0, pager_sync(self->p, mem, PT_PAGE * 64));
	/* resident and clean: written without a fill */
	for (int i = 0; i < 10; i++)
		mem[i * 5 * PT_PAGE + 7] ^= 0x5a;

	ASSERT_EQ(0, pager_stats(self->p, NULL, &st));
	EXPECT_EQ(10, st.dirty);
	snprintf(cmd, sizeof(cmd), "'%s' --stats --json --socket '%s'",
		 pt_pagerd_path(), self->sock);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	ASSERT_EQ(0, pclose(f));
	/* the global object comes first, then the regions */
	at = strstr(buf, "\"dirty_pages\": ");
	ASSERT_NE(NULL, at);
	ASSERT_EQ(1, sscanf(at, "\"dirty_pages\": %llu", &dirty));
	EXPECT_EQ(10, dirty);
	ASSERT_EQ(0, pager_stats(self->p, mem, &st));
	EXPECT_EQ(10, st.dirty);
	ASSERT_EQ(0, pager_unmap(self->p, mem));
}

/*
 * --wp-mode: bad values are usage errors; the mode in use is what the
 * text and JSON stats say.
 */
TEST_F_TIMEOUT(pager, wp_mode_option, 30)
{
	char cmd[3 * PATH_MAX];
	bool async = pt_pagerd_async(self->sock);

	snprintf(cmd, sizeof(cmd), "'%s' --wp-mode bogus 2>/dev/null",
		 pt_pagerd_path());
	EXPECT_EQ(2, WEXITSTATUS(system(cmd)));
	snprintf(cmd, sizeof(cmd), "'%s' --stats --socket '%s' | grep -q "
		 "'write-protect: %s'", pt_pagerd_path(), self->sock,
		 async ? "asynchronous" : "synchronous");
	EXPECT_EQ(0, WEXITSTATUS(system(cmd)));
	/* explicitly synchronous: never reported as async */
	if (getenv("PAGER_WP_MODE") && !strcmp(getenv("PAGER_WP_MODE"),
					       "sync"))
		EXPECT_FALSE(async);
}

TEST_HARNESS_MAIN
