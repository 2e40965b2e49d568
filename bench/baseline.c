// SPDX-License-Identifier: GPL-2.0
/*
 * Baselines of the pager benchmark, measured in the same run on the same
 * file system: the kernel's own first touch of anonymous memory, its mmap of
 * the same file (private and shared, warm and cold page cache), a minimal
 * single-threaded userfaultfd handler (one pread + one UFFDIO_COPY per
 * fault) and a plain sequential io_uring write of the same size.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "pbench.h"

struct toucher {
	char *base;
	const uint32_t *order;
	size_t n;
	int write;
	struct samples s;
	uint64_t cpus;		/* CPUs seen while faulting */
	pthread_t thr;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;
	uint64_t sink = 0;
	size_t i;

	for (i = 0; i < t->n; i++) {
		char *p = t->base + (size_t)t->order[i] * PAGE_SZ;
		uint64_t t0 = now_ns();
		int cpu;

		if (t->write)
			*(volatile uint64_t *)(p + 8) = i;
		else
			sink += *(volatile uint64_t *)p;
		samples_add(&t->s, now_ns() - t0);
		cpu = cpu_now();
		if (cpu >= 0 && cpu < 64)
			t->cpus |= 1ULL << cpu;
	}
	return (void *)(uintptr_t)(sink & 1);
}

static void cpuset_str(char *buf, size_t len, uint64_t mask)
{
	size_t off = 0;
	int c;

	buf[0] = '\0';
	for (c = 0; c < 64 && off < len; c++)
		if (mask & (1ULL << c))
			off += snprintf(buf + off, len - off, "%s%d", off ? "," : "", c);
}

int touch_pages(char *base, const uint32_t *order, size_t n, int threads,
		int write, struct res *r, const char *cdf_path)
{
	struct toucher t[8];
	struct samples all = { 0 };
	uint64_t t0, t1;
	size_t off = 0;
	int i;

	if (threads < 1 || threads > 8)
		return -EINVAL;
	memset(t, 0, sizeof(t));
	for (i = 0; i < threads; i++) {
		t[i].base = base;
		t[i].order = order + n * i / threads;
		t[i].n = n * (i + 1) / threads - n * i / threads;
		t[i].write = write;
	}
	t0 = now_ns();
	for (i = 0; i < threads; i++)
		if (pthread_create(&t[i].thr, NULL, touch_thread, &t[i]))
			return -EAGAIN;
	for (i = 0; i < threads; i++)
		pthread_join(t[i].thr, NULL);
	t1 = now_ns();
	for (i = 0; i < threads; i++) {
		size_t k;
		char cs[48];

		for (k = 0; k < t[i].s.n; k++)
			samples_add(&all, t[i].s.v[k]);
		cpuset_str(cs, sizeof(cs), t[i].cpus);
		off += snprintf(r->cpus + off, sizeof(r->cpus) > off ? sizeof(r->cpus) - off : 0,
				"%sapp%d@{%s}", i ? " " : "", i, cs);
		samples_free(&t[i].s);
	}
	r->pages = n;
	r->p50_ns = samples_pct(&all, 0.5);
	r->p99_ns = samples_pct(&all, 0.99);
	r->pages_per_s = n / ((t1 - t0) / 1e9);
	r->mb_per_s = r->pages_per_s * PAGE_SZ / 1e6;
	samples_write_cdf(&all, cdf_path, 200);
	samples_free(&all);
	r->ok = 1;
	return 0;
}

int make_file(const char *path, size_t len)
{
	size_t chunk = 1 << 20, off;
	char *buf = malloc(chunk);
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !buf) {
		free(buf);
		return -errno;
	}
	for (off = 0; off < len && !err; off += chunk) {
		size_t i;

		memset(buf, 0xa5, chunk);
		for (i = 0; i < chunk; i += PAGE_SZ)
			*(uint64_t *)(buf + i) = (off + i) / PAGE_SZ;
		if (pwrite(fd, buf, chunk, off) != (ssize_t)chunk)
			err = -EIO;
	}
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	free(buf);
	return err;
}

void cdf_name(char *buf, size_t len, const struct env *e, const char *test)
{
	snprintf(buf, len, "%s/cdf-%s-%s.dat", e->outdir, e->fs, test);
}

int bl_anon(struct env *e, struct res *r, int random, int threads)
{
	char *p = mmap(NULL, e->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char cdf[512], name[64];
	int err;

	if (p == MAP_FAILED)
		return -errno;
	madvise(p, e->len, MADV_NOHUGEPAGE);	/* 4 KiB pages, as the pager */
	snprintf(name, sizeof(name), "anon-%s-%dt", random ? "rnd" : "seq", threads);
	cdf_name(cdf, sizeof(cdf), e, name);
	mem_preheat(2 * e->len + 64 * MIB);
	err = touch_pages(p, random ? e->rnd : e->seq, e->npages, threads, 1, r, cdf);
	munmap(p, e->len);
	return err;
}

static int file_path(struct env *e, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/bench-pager.data", e->dir);
	struct stat st;

	if (stat(buf, &st) || (size_t)st.st_size != e->len)
		return make_file(buf, e->len);
	return n > 0 ? 0 : -EINVAL;
}

/*
 * Cold: the file's pages dropped from the page cache (posix_fadvise
 * DONTNEED after fsync works without privileges, unlike drop_caches).  On
 * tmpfs the page cache is the file, so cold equals warm there.
 */
int bl_mmap(struct env *e, struct res *r, int shared, int cold, int random)
{
	char path[512], cdf[512], name[64];
	char *p;
	int fd, err;

	if ((err = file_path(e, path, sizeof(path))))
		return err;
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	if (cold) {
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	} else {
		/* warm: read it once through the page cache */
		char *buf = malloc(1 << 20);
		size_t off;

		for (off = 0; buf && off < e->len; off += 1 << 20)
			if (pread(fd, buf, 1 << 20, off) < 0)
				break;
		free(buf);
	}
	p = mmap(NULL, e->len, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	snprintf(name, sizeof(name), "mmap-%s-%s-%s", shared ? "shared" : "private",
		 cold ? "cold" : "warm", random ? "rnd" : "seq");
	cdf_name(cdf, sizeof(cdf), e, name);
	mem_preheat(2 * e->len + 64 * MIB);
	err = touch_pages(p, random ? e->rnd : e->seq, e->npages, 1, 0, r, cdf);
	if (cold && e->tmpfs)
		snprintf(r->note, sizeof(r->note), "tmpfs: cold = warm");
	munmap(p, e->len);
	close(fd);
	return err;
}

/* --- minimal userfaultfd handler ------------------------------------------ */

struct mini {
	int uffd, fd;
	int null;		/* UFFDIO_ZEROPAGE, no read: the hand-off alone */
	char *base;
	uint64_t cpus;
	volatile int stop;
};

static void *mini_handler(void *arg)
{
	struct mini *m = arg;
	char *page = aligned_alloc(PAGE_SZ, PAGE_SZ);
	struct uffd_msg msg;

	while (!m->stop && page) {
		struct pollfd pfd = { .fd = m->uffd, .events = POLLIN };
		struct uffdio_copy cp;
		uint64_t a;
		int cpu;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (read(m->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		a = msg.arg.pagefault.address & ~(PAGE_SZ - 1);
		if (m->null) {
			struct uffdio_zeropage zp = {
				.range = { .start = a, .len = PAGE_SZ },
			};

			ioctl(m->uffd, UFFDIO_ZEROPAGE, &zp);
			cpu = cpu_now();
			if (cpu >= 0 && cpu < 64)
				m->cpus |= 1ULL << cpu;
			continue;
		}
		if (pread(m->fd, page, PAGE_SZ, a - (uintptr_t)m->base) < 0)
			memset(page, 0, PAGE_SZ);
		cp.dst = a;
		cp.src = (uintptr_t)page;
		cp.len = PAGE_SZ;
		cp.mode = 0;
		cp.copy = 0;
		ioctl(m->uffd, UFFDIO_COPY, &cp);	/* EEXIST: another thread won */
		cpu = cpu_now();
		if (cpu >= 0 && cpu < 64)
			m->cpus |= 1ULL << cpu;
	}
	free(page);
	return NULL;
}

/*
 * The minimal handler (@null: the null one) as a thread of the faulting
 * process, or with @proc as a separate process, as an external pager is:
 * a forked child serves the uffd (UFFDIO_COPY acts on the uffd's mm, the
 * copy comes from the child's buffer).  The hand-off then switches
 * address spaces, which the thread does not.
 */
int bl_uffd(struct env *e, struct res *r, int random, int threads, int null,
	    int proc)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct mini *mp;
	char path[512], cdf[512], name[64], cs[48];
	pthread_t thr;
	pid_t child = -1;
	int err;
	size_t off;

	/* shared with a handler process: stop flag and CPU set */
	mp = mmap(NULL, sizeof(*mp), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mp == MAP_FAILED)
		return -errno;
	memset(mp, 0, sizeof(*mp));

	if ((err = file_path(e, path, sizeof(path))))
		return err;
	mp->fd = open(path, O_RDONLY);
	mp->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (mp->fd < 0 || mp->uffd < 0) {
		snprintf(r->note, sizeof(r->note), "userfaultfd: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(mp->uffd, UFFDIO_API, &api))
		return -errno;
	mp->base = mmap(NULL, e->len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mp->base == MAP_FAILED)
		return -errno;
	madvise(mp->base, e->len, MADV_NOHUGEPAGE);
	reg.range.start = (uintptr_t)mp->base;
	reg.range.len = e->len;
	if (ioctl(mp->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	mp->null = null;
	if (proc) {
		child = fork();
		if (child < 0)
			return -errno;
		if (!child) {
			mini_handler(mp);
			_exit(0);
		}
	} else if (pthread_create(&thr, NULL, mini_handler, mp)) {
		return -EAGAIN;
	}
	snprintf(name, sizeof(name), "uffd-%s%s-%s-%dt", null ? "null" : "mini",
		 proc ? "-proc" : "", random ? "rnd" : "seq", threads);
	cdf_name(cdf, sizeof(cdf), e, name);
	mem_preheat(2 * e->len + 64 * MIB);
	err = touch_pages(mp->base, random ? e->rnd : e->seq, e->npages, threads, 0, r, cdf);
	mp->stop = 1;
	if (proc)
		waitpid(child, NULL, 0);
	else
		pthread_join(thr, NULL);
	cpuset_str(cs, sizeof(cs), mp->cpus);
	off = strlen(r->cpus);
	snprintf(r->cpus + off, sizeof(r->cpus) - off, " handler@{%s}", cs);
	munmap(mp->base, e->len);
	close(mp->uffd);
	close(mp->fd);
	munmap(mp, sizeof(*mp));
	return err;
}

/* --- sequential io_uring write ---------------------------------------------- */

#define URING_BS	(256 * 1024)
#define URING_QD	8

int bl_uring_write(struct env *e, struct res *r)
{
	struct io_uring ring;
	char path[512];
	char *buf;
	size_t submitted = 0, done = 0, inflight = 0;
	uint64_t t0, t1;
	int fd, err;

	snprintf(path, sizeof(path), "%s/bench-uring.data", e->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	buf = aligned_alloc(PAGE_SZ, URING_BS);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	memset(buf, 0x5a, URING_BS);
	err = io_uring_queue_init(URING_QD, &ring, 0);
	if (err) {
		snprintf(r->note, sizeof(r->note), "io_uring_queue_init: %s", strerror(-err));
		free(buf);
		close(fd);
		return err;
	}
	mem_preheat(e->len + 64 * MIB);
	t0 = now_ns();
	while (done < e->len) {
		struct io_uring_cqe *cqe;

		while (inflight < URING_QD && submitted < e->len) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			io_uring_prep_write(sqe, fd, buf, URING_BS, submitted);
			submitted += URING_BS;
			inflight++;
		}
		io_uring_submit(&ring);
		if ((err = io_uring_wait_cqe(&ring, &cqe)))
			break;
		if (cqe->res < 0) {
			err = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			break;
		}
		done += cqe->res;
		inflight--;
		io_uring_cqe_seen(&ring, cqe);
	}
	if (!err && fsync(fd))
		err = -errno;
	t1 = now_ns();
	io_uring_queue_exit(&ring);
	close(fd);
	unlink(path);
	free(buf);
	if (err) {
		snprintf(r->note, sizeof(r->note), "write: %s", strerror(-err));
		return err;
	}
	r->ok = 1;
	r->pages = e->len / PAGE_SZ;
	r->mb_per_s = e->len / ((t1 - t0) / 1e9) / 1e6;
	r->pages_per_s = r->mb_per_s * 1e6 / PAGE_SZ;
	snprintf(r->note, sizeof(r->note), "%d KiB writes, QD %d, fsync included",
		 URING_BS / 1024, URING_QD);
	return 0;
}
