// SPDX-License-Identifier: GPL-2.0
/*
 * pager-stress: a libpager workload that knows what every byte must be, for
 * the fault-injection runs (scripts/fuzz-pager-*.sh).
 *
 * Each page holds a pattern derived from (page, version): word 0 is the
 * version, word 1 the page number, the rest a hash of both; version 0 is
 * all zeros (a fresh file).  Threads own disjoint pages (page % threads),
 * write new versions and read back their own pages, checking them exactly
 * against the model; one thread also syncs and evicts ranges.  At the end
 * the region and then the backing file are compared with the model byte
 * for byte (after sync, and again after unmap).
 *
 * With --status FILE the model is also kept in a shared file (versions
 * written, versions synced, page being written per thread), so that
 * 'pager-stress --check' can verify the backing file of a client that was
 * SIGKILLed: every page must hold at least its synced version, exactly.
 *
 * With --drop-file F, once F exists the backing file's clean pages are
 * dropped from the page cache (POSIX_FADV_DONTNEED, once): pagerd's next
 * fills read the device (scripts/fuzz-pager-eio.sh fails them so).  Only
 * this file's pages: dropping all caches also dropped the file system's
 * metadata, whose re-read failing made ext4 WARN (mark_buffer_dirty()).
 *
 * usage: pager-stress --file F [--size MB] [--threads N] [--time S] [--shared]
 *                     [--evict] [--status FILE] [--allow-errors]
 *                     [--wait-file F] [--drop-file F] [--seed N]
 *        pager-stress --check F --status FILE
 * The socket is $PAGER_SOCKET.  Output ends with a '# STRESS' or '# CHECK'
 * line of figures; exit status 0 only if every byte was right.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "pager.h"

#define PG		4096UL
#define WORDS		(PG / 8)
#define MAX_THREADS	32
#define STATUS_MAGIC	0x5354524553533031ULL	/* "STRESS01" */

struct status {
	uint64_t magic;
	uint64_t npages;
	uint64_t nthreads;
	int64_t inprog[MAX_THREADS];	/* page being written, or -1 */
	/* followed by uint32_t written[npages], synced[npages] */
};

static struct status *st;
static _Atomic uint32_t *written, *synced;
static uint64_t npages;
static int nthreads = 4;
static char *region;
static struct pager *pgr;
static atomic_int stop, failed;
static atomic_ulong n_writes, n_reads, n_syncs, n_sync_err, n_evicts,
		    n_evict_err, n_mismatch;
static bool allow_errors;

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static uint64_t word(uint64_t p, uint32_t v, unsigned int w)
{
	if (!v)
		return 0;
	if (w == 0)
		return v;
	if (w == 1)
		return p;
	return mix(p * 0x100000001ULL ^ ((uint64_t)v << 20) ^ w);
}

static void write_page(uint64_t p, uint32_t v)
{
	volatile uint64_t *q = (uint64_t *)(region + p * PG);

	for (unsigned int w = WORDS - 1; w >= 1; w--)
		q[w] = word(p, v, w);
	__atomic_store_n(&q[0], word(p, v, 0), __ATOMIC_RELEASE);
}

/* Exact comparison of a page image with (p, v); returns bad bytes. */
static unsigned int check_page(const char *img, uint64_t p, uint32_t v)
{
	const uint64_t *q = (const uint64_t *)img;
	unsigned int bad = 0;

	for (unsigned int w = 0; w < WORDS; w++)
		if (q[w] != word(p, v, w))
			bad += 8;
	return bad;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s = mix(*s);
	return *s;
}

static void *worker(void *arg)
{
	int t = (int)(uintptr_t)arg;
	uint64_t s = mix(t + 1 + (uint64_t)time(NULL));
	uint64_t mine = (npages - t + nthreads - 1) / nthreads;

	while (!atomic_load(&stop) && mine) {
		uint64_t p = t + (rnd(&s) % mine) * nthreads;
		uint32_t v = atomic_load(&written[p]);

		if (rnd(&s) % 10 < 7) {
			st->inprog[t] = p;
			write_page(p, v + 1);
			atomic_store(&written[p], v + 1);
			st->inprog[t] = -1;
			atomic_fetch_add(&n_writes, 1);
		} else {
			unsigned int bad = check_page(region + p * PG, p, v);

			atomic_fetch_add(&n_reads, 1);
			if (bad) {
				fprintf(stderr, "pager-stress: page %lu: %u bytes differ from version %u (word0 %#lx)\n",
					(unsigned long)p, bad, v,
					(unsigned long)*(uint64_t *)(region + p * PG));
				atomic_fetch_add(&n_mismatch, 1);
				atomic_store(&failed, 1);
			}
		}
	}
	return NULL;
}

/* Sync [first, first+n) pages; on success record the versions it covers. */
static int sync_range(uint64_t first, uint64_t n)
{
	uint32_t *snap = malloc(n * sizeof(*snap));
	int ret;

	if (!snap)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		snap[i] = atomic_load(&written[first + i]);
	ret = pager_sync(pgr, region + first * PG, n * PG);
	atomic_fetch_add(&n_syncs, 1);
	if (!ret) {
		for (uint64_t i = 0; i < n; i++)
			if (snap[i] > atomic_load(&synced[first + i]))
				atomic_store(&synced[first + i], snap[i]);
	} else {
		atomic_fetch_add(&n_sync_err, 1);
	}
	free(snap);
	return ret;
}

static void *syncer(void *arg)
{
	uint64_t s = mix((uint64_t)(uintptr_t)arg + 77);
	bool evict = arg != NULL;

	while (!atomic_load(&stop)) {
		uint64_t first = rnd(&s) % npages;
		uint64_t n = 1 + rnd(&s) % (npages - first);
		int ret;

		usleep(10000 + rnd(&s) % 40000);
		if (rnd(&s) % 4 == 0) {
			first = 0;
			n = npages;
		}
		ret = sync_range(first, n);
		if (ret && !allow_errors) {
			fprintf(stderr, "pager-stress: sync: %s\n", strerror(-ret));
			atomic_store(&failed, 1);
		}
		if (evict && rnd(&s) % 2) {
			ret = pager_evict(pgr, region + first * PG, n * PG);
			atomic_fetch_add(&n_evicts, 1);
			if (ret) {
				atomic_fetch_add(&n_evict_err, 1);
				if (!allow_errors) {
					fprintf(stderr, "pager-stress: evict: %s\n",
						strerror(-ret));
					atomic_store(&failed, 1);
				}
			}
		}
	}
	return NULL;
}

static void *map_status(const char *path, uint64_t pages, int threads,
			bool create)
{
	size_t len = sizeof(struct status) + 2 * pages * sizeof(uint32_t);
	struct status *s;
	int fd;

	fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0644);
	if (fd < 0)
		return NULL;
	if (create && ftruncate(fd, len)) {
		close(fd);
		return NULL;
	}
	if (!create) {
		struct status hdr;

		if (pread(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr) ||
		    hdr.magic != STATUS_MAGIC) {
			close(fd);
			return NULL;
		}
		len = sizeof(struct status) + 2 * hdr.npages * sizeof(uint32_t);
	}
	s = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (s == MAP_FAILED)
		return NULL;
	if (create) {
		s->npages = pages;
		s->nthreads = threads;
		for (int i = 0; i < MAX_THREADS; i++)
			s->inprog[i] = -1;
		s->magic = STATUS_MAGIC;
	}
	return s;
}

/* Verify the backing file of a client that was killed. */
static int check_killed(const char *file, const char *status)
{
	uint64_t bad_pages = 0, verified = 0, older = 0;
	char img[PG];
	int fd;

	st = map_status(status, 0, 0, false);
	if (!st) {
		fprintf(stderr, "pager-stress: %s: no status\n", status);
		return 2;
	}
	npages = st->npages;
	written = (_Atomic uint32_t *)(st + 1);
	synced = written + npages;
	fd = open(file, O_RDONLY);
	if (fd < 0) {
		perror(file);
		return 2;
	}
	for (uint64_t p = 0; p < npages; p++) {
		ssize_t n = pread(fd, img, PG, p * PG);
		bool inprog = false;
		uint32_t v;

		if (n < 0)
			n = 0;
		memset(img + n, 0, PG - n);	/* beyond EOF reads zeros */
		for (uint64_t t = 0; t < st->nthreads && t < MAX_THREADS; t++)
			inprog |= st->inprog[t] == (int64_t)p;
		v = (uint32_t)*(uint64_t *)img;
		if (v < synced[p] || v > written[p] + 1 ||
		    (!inprog && check_page(img, p, v))) {
			if (bad_pages < 10)
				fprintf(stderr, "pager-stress: %s page %lu: version %u, synced %u, written %u%s\n",
					file, (unsigned long)p, v, synced[p],
					written[p], inprog ? " (being written)" :
					check_page(img, p, v) ? ", content wrong" : "");
			bad_pages++;
			continue;
		}
		older += v < written[p];
		verified += PG;
	}
	close(fd);
	printf("# CHECK pages=%lu bytes_verified=%lu bad_pages=%lu unsynced_older=%lu\n",
	       (unsigned long)npages, (unsigned long)verified,
	       (unsigned long)bad_pages, (unsigned long)older);
	return bad_pages ? 1 : 0;
}

/* Compare the region, or the file, with the model. */
static uint64_t verify_all(int fd, const char *what, uint64_t *bad)
{
	char img[PG];
	uint64_t ok = 0;

	for (uint64_t p = 0; p < npages; p++) {
		const char *src = region + p * PG;
		unsigned int b;

		if (fd >= 0) {
			ssize_t n = pread(fd, img, PG, p * PG);

			if (n < 0)
				n = 0;
			memset(img + n, 0, PG - n);
			src = img;
		}
		b = check_page(src, p, atomic_load(&written[p]));
		if (b) {
			if (*bad < 4 || (b && !strcmp(what, "file after unmap") && *bad < 6))
				fprintf(stderr, "pager-stress: %s page %lu: %u bytes wrong (version %u expected, word0 %#lx)\n",
					what,
					(unsigned long)p, b, written[p],
					(unsigned long)*(uint64_t *)src);
			(*bad)++;
		} else {
			ok += PG;
		}
	}
	return ok;
}

int main(int argc, char **argv)
{
	const char *file = NULL, *status = NULL, *check = NULL, *wait_file = NULL;
	const char *drop_file = NULL;
	double secs = 5, t0;
	size_t mb = 4;
	int flags = 0, fd, ret;
	bool evict = false;
	pthread_t th[MAX_THREADS + 1];
	uint64_t verified = 0, bad = 0;
	static struct status anon_status;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--file") && v)
			file = argv[++i];
		else if (!strcmp(a, "--size") && v)
			mb = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(a, "--threads") && v)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(a, "--time") && v)
			secs = atof(argv[++i]);
		else if (!strcmp(a, "--status") && v)
			status = argv[++i];
		else if (!strcmp(a, "--check") && v)
			check = argv[++i];
		else if (!strcmp(a, "--wait-file") && v)
			wait_file = argv[++i];
		else if (!strcmp(a, "--drop-file") && v)
			drop_file = argv[++i];
		else if (!strcmp(a, "--shared"))
			flags |= PAGER_SHARED;
		else if (!strcmp(a, "--evict"))
			evict = true;
		else if (!strcmp(a, "--allow-errors"))
			allow_errors = true;
		else {
			fprintf(stderr, "usage: see the head of tests/fuzz/pager_stress.c\n");
			return 2;
		}
	}
	if (check)
		return status ? check_killed(check, status) : 2;
	if (!file || !mb || nthreads < 1 || nthreads > MAX_THREADS) {
		fprintf(stderr, "pager-stress: --file needed; 1..%d threads\n",
			MAX_THREADS);
		return 2;
	}
	npages = (mb << 20) / PG;
	if (status) {
		st = map_status(status, npages, nthreads, true);
		if (!st) {
			perror(status);
			return 2;
		}
		written = (_Atomic uint32_t *)(st + 1);
	} else {
		st = &anon_status;
		for (int i = 0; i < MAX_THREADS; i++)
			st->inprog[i] = -1;
		written = calloc(2 * npages, sizeof(uint32_t));
		if (!written)
			return 2;
	}
	synced = written + npages;

	unlink(file);
	pgr = pager_connect(NULL);
	if (!pgr) {
		perror("pager_connect");
		return 2;
	}
	region = pager_map(pgr, npages * PG, file, flags);
	if (!region) {
		perror("pager_map");
		return 2;
	}
	printf("# pager-stress: mapped %lu pages\n", (unsigned long)npages);
	fflush(stdout);
	t0 = now_s();
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	pthread_create(&th[nthreads], NULL, syncer,
		       evict ? (void *)(uintptr_t)1 : NULL);
	while (now_s() - t0 < secs && !atomic_load(&failed)) {
		if (drop_file && !access(drop_file, F_OK)) {
			int dfd = open(file, O_RDONLY);

			if (dfd >= 0) {
				posix_fadvise(dfd, 0, 0, POSIX_FADV_DONTNEED);
				close(dfd);
			}
			printf("# pager-stress: page cache of %s dropped\n", file);
			fflush(stdout);
			drop_file = NULL;
		}
		usleep(20000);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i <= nthreads; i++)
		pthread_join(th[i], NULL);

	/* the fault is over (space returned, device repaired): sync must work */
	if (wait_file) {
		printf("# pager-stress: waiting for %s\n", wait_file);
		fflush(stdout);
		while (access(wait_file, F_OK))
			usleep(20000);
	}
	ret = sync_range(0, npages);
	if (ret) {
		fprintf(stderr, "pager-stress: final sync: %s\n", strerror(-ret));
		atomic_store(&failed, 1);
	}
	verified += verify_all(-1, "region after sync", &bad);
	fd = open(file, O_RDONLY);
	if (fd < 0) {
		perror(file);
		return 1;
	}
	verified += verify_all(fd, "file after sync", &bad);
	ret = pager_unmap(pgr, region);
	if (ret) {
		fprintf(stderr, "pager-stress: unmap: %s\n", strerror(-ret));
		atomic_store(&failed, 1);
	}
	/* after unmap the file alone holds the data */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	verified += verify_all(fd, "file after unmap", &bad);
	close(fd);
	pager_disconnect(pgr);
	printf("# STRESS secs=%.1f pages=%lu writes=%lu reads=%lu syncs=%lu sync_errors=%lu evicts=%lu evict_errors=%lu mismatches=%lu bytes_verified=%lu bad_pages=%lu\n",
	       now_s() - t0, (unsigned long)npages, atomic_load(&n_writes),
	       atomic_load(&n_reads), atomic_load(&n_syncs),
	       atomic_load(&n_sync_err), atomic_load(&n_evicts),
	       atomic_load(&n_evict_err), atomic_load(&n_mismatch),
	       (unsigned long)verified, (unsigned long)bad);
	return atomic_load(&failed) || bad ? 1 : 0;
}
