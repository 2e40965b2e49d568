// SPDX-License-Identifier: GPL-2.0
/*
 * io.c - io_uring engine.  Every worker thread owns one ring (no locking);
 * io_run() submits a batch of reads/writes at once so that all of them are
 * in flight together, then reaps them.  Short writes are continued, short
 * reads (EOF) are reported to the caller, which zero-fills the rest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pagerd.h"

static __thread struct pager_io *tls_io;

int io_init(struct pager_io *io, unsigned int entries)
{
	int ret;

	memset(io, 0, sizeof(*io));
	ret = io_uring_queue_init(entries, &io->ring, 0);
	if (ret < 0)
		return ret;
	io->entries = entries;
	io->buf_len = MAX(RA_MAX, WB_BATCH) * PAGE_SIZE;
	io->buf = mmap(NULL, io->buf_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (io->buf == MAP_FAILED) {
		ret = -errno;
		goto err_ring;
	}
	tls_io = io;
	return 0;

err_ring:
	io_uring_queue_exit(&io->ring);
	return ret;
}

void io_exit(struct pager_io *io)
{
	munmap(io->buf, io->buf_len);
	io_uring_queue_exit(&io->ring);
	if (tls_io == io)
		tls_io = NULL;
}

/* The calling thread's ring, created on first use (main thread, workers). */
struct pager_io *io_self(void)
{
	struct pager_io *io;

	if (tls_io)
		return tls_io;
	io = calloc(1, sizeof(*io));
	if (!io)
		return NULL;
	if (io_init(io, 64)) {
		free(io);
		return NULL;
	}
	return io;
}

static void io_prep(struct io_uring_sqe *sqe, struct io_req *r, size_t done)
{
	if (r->op == IO_READ)
		io_uring_prep_read(sqe, r->fd, (char *)r->buf + done,
				   r->len - done, r->off + done);
	else
		io_uring_prep_write(sqe, r->fd, (char *)r->buf + done,
				    r->len - done, r->off + done);
}

/*
 * Run @n requests, up to the ring size in flight at a time.  Returns 0 when
 * every request completed without error (reads may be short: see ->res),
 * else the first -errno; every ->res is set either way.
 */
int io_run(struct pager_io *io, struct io_req *reqs, int n)
{
	int first_err = 0, next = 0, inflight = 0, ret;
	struct io_uring_cqe *cqe;

	for (int i = 0; i < n; i++)
		reqs[i].res = 0;
	while (next < n || inflight) {
		while (next < n && inflight < (int)io->entries) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

			if (!sqe)
				break;
			io_prep(sqe, &reqs[next], 0);
			io_uring_sqe_set_data(sqe, &reqs[next]);
			next++;
			inflight++;
		}
		ret = io_uring_submit_and_wait(&io->ring, 1);
		if (ret < 0 && ret != -EINTR)
			return ret;	/* ring broken: cannot reap safely */
		while (io_uring_peek_cqe(&io->ring, &cqe) == 0) {
			struct io_req *r = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&io->ring, cqe);
			inflight--;
			if (res < 0) {
				if (res == -EINTR || res == -EAGAIN)
					goto resubmit;
				r->res = res;
				if (!first_err)
					first_err = res;
				continue;
			}
			r->res += res;
			if (r->op == IO_READ || (size_t)r->res == r->len)
				continue;
			if (res == 0) {
				/* a write making no progress: disk full */
				r->res = -ENOSPC;
				if (!first_err)
					first_err = -ENOSPC;
				continue;
			}
resubmit:
			{
				struct io_uring_sqe *sqe;

				sqe = io_uring_get_sqe(&io->ring);
				if (!sqe) {
					io_uring_submit(&io->ring);
					sqe = io_uring_get_sqe(&io->ring);
				}
				if (!sqe) {
					r->res = -EBUSY;
					if (!first_err)
						first_err = -EBUSY;
					continue;
				}
				io_prep(sqe, r, r->res > 0 ? r->res : 0);
				io_uring_sqe_set_data(sqe, r);
				inflight++;
			}
		}
	}
	return first_err;
}

static int io_fsync_flags(struct pager_io *io, int fd, unsigned int flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, fd, flags);
	io_uring_sqe_set_data(sqe, NULL);
	ret = io_uring_submit_and_wait(&io->ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(&io->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&io->ring, cqe);
	return ret < 0 ? ret : 0;
}

int io_fsync(struct pager_io *io, int fd)
{
	return io_fsync_flags(io, fd, 0);
}

int io_fdatasync(struct pager_io *io, int fd)
{
	return io_fsync_flags(io, fd, IORING_FSYNC_DATASYNC);
}
