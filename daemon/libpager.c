// SPDX-License-Identifier: GPL-2.0
/*
 * libpager - client side of pagerd.
 *
 * The client creates the userfaultfd (so it is bound to the client's mm),
 * registers every region MISSING|WP, and passes the uffd, its own
 * /proc/self/mem and /proc/self/pagemap (pagerd reads dirty pages and finds
 * resident pages through them, with the access rights the client had when
 * it opened them) and one end of an "evict channel" socketpair to pagerd.
 *
 * A helper thread serves the evict channel: pagerd asks it to
 * MADV_DONTNEED pages it has written back (write-protected, so a
 * concurrent write waits in its fault and is then filled from the file),
 * or, with asynchronous write-protection, to UFFDIO_MOVE pages into a
 * staging area from which pagerd writes them back; staging keeps them
 * until pagerd releases the batch (see helper_move()).
 *
 * pagerd killed: the client keeps its uffd open, so faults stay blocked
 * (never zero-filled).  The helper sees the channel close, reconnects to
 * the socket until a new pagerd answers, and re-sends the uffd and every
 * region with PAGER_MAP_REATTACH, after putting back what staging holds;
 * the new pagerd treats resident pages as dirty and wakes the blocked
 * faults.  Requests in flight are retried.
 *
 * Client killed: a guardian (a CLONE_VM child, so it shares and keeps alive
 * the address space) waits on a pidfd for the client to die, then asks
 * pagerd to flush the client's regions from that address space, and exits
 * once they are written.  If no pagerd knows the client, the guardian
 * hands it to the next pagerd as the helper would (guardian_main()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>

#include "pager.h"
#include "proto.h"
#include "uffd_compat.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW	_IO(0xAA, 0x00)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define PS		4096UL
#define GUARD_STACK	(64 << 10)

/*
 * libpager -> guardian (pager.gsock): the regions it hands to a new pagerd
 * if the client dies while no pagerd can take them (guardian_main()).
 * GUARD_ADD carries the backing file [and the memfd] as SCM_RIGHTS.
 */
struct guard_msg {
	uint32_t op;
	uint32_t flags;		/* PAGER_SHARED */
	uint64_t addr, len;
};

enum { GUARD_ADD = 1, GUARD_DEL };

/*
 * As many as pagerd takes (the array is mapped anonymous: untouched
 * entries cost nothing).  It was 256, and a client with more regions that
 * died while no pagerd ran lost the unsynced data of the others.
 */
#define GUARD_REGIONS	PAGER_MAX_REGIONS

struct guard_region {
	uint64_t addr, len;
	uint32_t flags;
	int fd, memfd;
};

/* Written by the guardian only, once started. */
struct guard {
	int sock;			/* its end of pager.gsock */
	unsigned int nr;
	struct guard_region r[GUARD_REGIONS];
};

struct lregion {
	struct lregion *next;
	uint64_t addr, len;
	int flags;
	int fd, memfd;
};

/* pages of an eviction batch in a staging slot, back to back */
struct staged {
	uint64_t addr;		/* where they came from */
	uint64_t len;		/* bytes moved */
};

/* what one staging slot holds (helper only): see helper_move() */
struct slot {
	struct staged staged[PAGER_STAGING_PAGES];
	uint32_t nr_staged;
	uint64_t staged_len;
	uint64_t gen;		/* when its batch began: restore newest first */
};

#define SLOT_BYTES	(PAGER_STAGING_PAGES * PS)
#define STAGING_BYTES	(PAGER_STAGING_SLOTS * SLOT_BYTES)

struct pager {
	pthread_mutex_t req_lock;	/* one request at a time; reconnect */
	pthread_mutex_t lock;		/* gen, stop */
	pthread_cond_t cond;
	int sock, ev;			/* main socket, our evict channel end */
	int uffd, memfd, pagemap;
	int uffd_sync;			/* shared regions when uffd is async */
	void *staging;			/* UFFDIO_MOVE target, async only */
	struct slot slot[PAGER_STAGING_SLOTS];
	uint64_t batch_gen;		/* batches begun (helper only) */
	char path[108];
	uint64_t token;
	uint32_t seq;
	unsigned int gen;
	bool stop;
	pid_t owner;
	/*
	 * Changed under req_lock and rlock, read under either: the helper
	 * takes only rlock (see helper_write()).
	 */
	struct lregion *regions;
	pthread_mutex_t rlock;
	pthread_t helper;
	pid_t guardian;
	void *gstack;
	int pidfd;
	int gsock;			/* to the guardian: GUARD_ADD/DEL */
	struct guard *guard;		/* the guardian's own state */
};

/* raw mmap: libpager-preload.so interposes mmap() itself */
static void *sys_mmap(void *a, size_t len, int prot, int flags, int fd)
{
	return (void *)syscall(SYS_mmap, a, len, prot, flags, fd, 0);
}

static int sys_munmap(void *a, size_t len)
{
	return syscall(SYS_munmap, a, len);
}

static int new_uffd(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && errno == EPERM) {
		/* unprivileged_userfaultfd=0: /dev/userfaultfd may allow it */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev < 0) {
			errno = EPERM;
			return -1;
		}
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
	}
	return fd;
}

/*
 * @async: ask for WP_ASYNC and MOVE (both or neither: asynchronous
 * write-protection is lossless only with eviction by UFFDIO_MOVE); *async
 * says whether we got them.
 */
static int uffd_open_api(bool *async)
{
	struct uffdio_api api = { .api = UFFD_API };
	/* THREAD_ID: pagerd serves a fault on the faulting thread's CPU */
	uint64_t want = UFFD_FEATURE_MISSING_SHMEM |
			UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
			UFFD_FEATURE_THREAD_ID;
	uint64_t amode = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_MOVE;
	int fd = new_uffd();

	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api))
		goto err;
	close(fd);
	if (*async && (api.features & amode) == amode)
		want |= amode;
	*async = (want & amode) == amode;
	/* features can be requested only once: probe, then ask */
	fd = new_uffd();
	if (fd < 0)
		return -1;
	api = (struct uffdio_api){ .api = UFFD_API, .features = want &
				   api.features };
	if (ioctl(fd, UFFDIO_API, &api))
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

static void hdr_init(struct pager_msg_hdr *h, int type, size_t len)
{
	memset(h, 0, len);
	h->magic = PAGER_MAGIC;
	h->type = type;
	h->len = len;
}

/*
 * The HELLO of a session whose evict channel's far end is @ev, and its
 * descriptors in @fds; returns how many.  Shared by session_open() and the
 * guardian's hand-over (g_adopt()), which touch no libc state.
 */
static int hello_init(const struct pager *p, struct pager_hello *h,
		      int fds[5], int ev)
{
	hdr_init(&h->hdr, PAGER_MSG_HELLO, sizeof(*h));
	h->token = p->token;
	h->nr_fds = p->uffd_sync >= 0 ? 5 : 4;
	fds[0] = p->uffd;
	fds[1] = p->memfd;
	fds[2] = p->pagemap;
	fds[3] = ev;
	fds[4] = p->uffd_sync;
	return h->nr_fds;
}

/* The MAP of a region (see hello_init()). */
static void map_init(struct pager_map_req *m, uint64_t addr, uint64_t len,
		     uint32_t flags, uint32_t map_flags)
{
	hdr_init(&m->hdr, PAGER_MSG_MAP, sizeof(*m));
	m->addr = addr;
	m->len = len;
	m->flags = flags;
	m->map_flags = map_flags;
}

/*
 * System calls for the guardian (guardian_main()), which runs in a
 * CLONE_VM child on its own stack with no libc state of its own: g_sys()
 * returns -errno and touches no errno, which lives in the TLS of the
 * thread that called pager_connect(), which may have exited and had its
 * stack unmapped since.  What the guardian shares with libpager (sends,
 * connects, putting staging back) uses them too.
 */
#if defined(__x86_64__)
static long g_sys(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile ("syscall"
			  : "=a" (ret)
			  : "a" (n), "D" (a), "S" (b), "d" (c), "r" (r10),
			    "r" (r8), "r" (r9)
			  : "rcx", "r11", "memory");
	return ret;
}
#else
static long g_sys(long n, long a, long b, long c, long d, long e, long f)
{
	long ret = syscall(n, a, b, c, d, e, f);

	return ret < 0 ? -errno : ret;
}
#endif
/* at most five arguments here; recvfrom() has its sixth as 0 */
#define G_SYS(n, a, b, c, d, e) \
	g_sys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/*
 * Which write-protect mode does pagerd want?  Asked before the uffd is
 * created, because its features can be chosen only once.  Any failure
 * means synchronous, which every pagerd supports.
 */
static bool pagerd_wants_async(const char *path)
{
	size_t len = sizeof(struct pager_reply) + PAGER_MAX_MSG;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pager_range_req req;
	bool async = false;
	char *buf;
	ssize_t n;
	int fd;

	buf = malloc(len);
	if (!buf)
		return false;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out_free;
	strcpy(sa.sun_path, path);
	hdr_init(&req.hdr, PAGER_MSG_STATS_TEXT, sizeof(req));
	/* the mode only: no scan of the regions for it */
	req.hdr.flags = PAGER_STATS_JSON | PAGER_STATS_NOSCAN;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req))
		goto out;
	n = recv(fd, buf, len - 1, 0);
	if (n < (ssize_t)sizeof(struct pager_reply))
		goto out;
	buf[n] = 0;
	async = strstr(buf + sizeof(struct pager_reply),
		       "\"wp_mode\": \"async\"") != NULL;
out:
	close(fd);
out_free:
	free(buf);
	return async;
}

/*
 * The staging area UFFDIO_MOVE takes evicted pages to: private anonymous
 * like the regions, registered with our uffd (MOVE's destination must be).
 * Nothing but the helper and pagerd's reads of moved pages touches it.
 * Registered for WP as well, like the regions: a page the kernel swapped
 * out moves as its swap entry, uffd-wp bit included (move_swap_pte()), and
 * in a VMA without VM_UFFD_WP the swap-in of such an entry maps it
 * writable with the bit still set, which CONFIG_PAGE_TABLE_CHECK reports
 * as a WARNING (seen on 6.12 when pagerd read a swapped staging page).
 * With it the swap-in maps it read-only, and nobody writes to staging.
 */
static int staging_init(struct pager *p)
{
	size_t len = STAGING_BYTES;
	struct uffdio_register reg = {
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	p->staging = sys_mmap(NULL, len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	if (p->staging == MAP_FAILED) {
		p->staging = NULL;
		return -1;
	}
	madvise(p->staging, len, MADV_NOHUGEPAGE);
	madvise(p->staging, len, MADV_DONTFORK);
	reg.range.start = (uintptr_t)p->staging;
	reg.range.len = len;
	if (ioctl(p->uffd, UFFDIO_REGISTER, &reg)) {
		sys_munmap(p->staging, len);
		p->staging = NULL;
		return -1;
	}
	return 0;
}

/*
 * How many pages from the start of a move of @n pages from @src to @dst
 * are settled: in staging (the destination, which was empty, holds a
 * page), or a hole (nothing at either end: nothing to move).  A page still
 * in the region ends the count.  Only this thread changes staging, and a
 * page pagerd is evicting cannot come back into the region meanwhile, so
 * the answer is stable.
 */
static uint64_t move_settled(struct pager *p, uint64_t dst, uint64_t src,
			     uint64_t n)
{
	uint64_t pd[64], ps[64], k = 0;

	while (k < n) {
		uint64_t m = n - k < 64 ? n - k : 64;

		if (G_SYS(SYS_pread64, p->pagemap, pd, m * 8,
			  (dst / PS + k) * 8, 0) != (long)(m * 8) ||
		    G_SYS(SYS_pread64, p->pagemap, ps, m * 8,
			  (src / PS + k) * 8, 0) != (long)(m * 8))
			return k;
		for (uint64_t j = 0; j < m; j++, k++)
			/* present or swapped */
			if (!(pd[j] & (3ULL << 62)) && (ps[j] & (3ULL << 62)))
				return k;
	}
	return k;
}

/*
 * Move one range into staging at @dst.  Holes (the page is not resident)
 * and uffd-wp markers (a write-protected empty PTE, EFAULT) carry no data:
 * they are skipped, and pagerd sees the hole in staging.  Returns the bytes
 * handled and sets *err on a real failure (e.g. EBUSY, a pinned page).
 *
 * The answer must be exact (pagerd takes pages past it as still mapped),
 * and UFFDIO_MOVE's own is not: on 6.18 it can fail with EAGAIN, and then
 * EEXIST on the retry, for a page it did move (seen in the pagerd SIGKILL
 * fuzzer: the page was in staging, the region had a hole, and pagerd,
 * told "not moved", refilled it from the file).  So after any failure
 * the page tables decide what was moved.
 */
static uint64_t move_range(struct pager *p, uint64_t dst, uint64_t src,
			   uint64_t len, int *err)
{
	uint64_t done = 0;

	while (done < len) {
		struct uffdio_move mv = {
			.dst = dst + done, .src = src + done, .len = len - done,
			.mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES,
		};
		uint64_t settled;
		int e;

		if (!ioctl(p->uffd, UFFDIO_MOVE, &mv))
			return len;
		e = errno;
		settled = move_settled(p, dst + done, src + done,
				       (len - done) / PS) * PS;
		if (settled) {
			done += settled;
			continue;
		}
		if (e == EAGAIN)
			continue;
		if (e == EFAULT) {
			done += PS;
			continue;
		}
		*err = -e;
		break;
	}
	return done;
}

static char *slot_base(struct pager *p, uint32_t s)
{
	return (char *)p->staging + s * SLOT_BYTES;
}

/* The batch in slot @s is in the file: forget it, free the pages. */
static void staging_forget(struct pager *p, uint32_t s)
{
	p->slot[s].nr_staged = 0;
	p->slot[s].staged_len = 0;
	if (p->staging)
		G_SYS(SYS_madvise, slot_base(p, s), SLOT_BYTES, MADV_DONTNEED,
		      0, 0);
}

/*
 * PAGER_DROP_WRITE: write the @len bytes just moved from @addr to staging
 * at @src to the backing file of the region they came from.  Only pages
 * present in staging are written: a hole there (the page was not
 * resident) has nothing to write, and reading it would fault into the
 * uffd, which only pagerd can resolve.  rlock is held over the writes, so
 * pager_unmap() cannot close the file meanwhile (pagerd sends no request
 * for a region it released, but the helper does not rely on that).
 * Returns whether every present page was written.
 */
static bool helper_write(struct pager *p, uint64_t src, uint64_t addr,
			 uint64_t len)
{
	uint64_t pm[PAGER_STAGING_PAGES], np = len / PS, e;
	struct lregion *lr;
	bool ok = false;

	pthread_mutex_lock(&p->rlock);
	for (lr = p->regions; lr; lr = lr->next)
		if (addr >= lr->addr && addr - lr->addr < lr->len)
			break;
	/* a move never exceeds its slot, so neither does np */
	if (!lr || lr->memfd >= 0 || len > lr->len - (addr - lr->addr) ||
	    np > PAGER_STAGING_PAGES ||
	    pread(p->pagemap, pm, np * 8, src / PS * 8) != (ssize_t)(np * 8))
		goto out;
	/* one write per run of present (or swapped) pages */
	for (uint64_t j = 0; j < np; j = e) {
		bool have = pm[j] & (3ULL << 62);
		size_t n;

		for (e = j + 1; e < np && !!(pm[e] & (3ULL << 62)) == have; e++)
			;
		if (!have)
			continue;
		n = (e - j) * PS;
		if (pwrite(lr->fd, (void *)(uintptr_t)(src + j * PS), n,
			   addr - lr->addr + j * PS) != (ssize_t)n)
			goto out;
	}
	ok = true;
out:
	pthread_mutex_unlock(&p->rlock);
	return ok;
}

/*
 * Invariant (what makes a pagerd SIGKILL lossless in asynchronous mode):
 * every page pagerd has moved out of a region and not yet written to the
 * file is in a staging slot, and the slot's staged[] says where it came
 * from.  pagerd owns a slot from the first move of a batch until the
 * batch is in the file and it sends PAGER_DROP_RELEASE for the slot; a
 * batch that needs several requests continues with PAGER_DROP_APPEND, so
 * nothing of it is freed before the release.  Only a request that starts
 * a new batch in a slot frees that slot, and pagerd sends one only when
 * the slot's previous batch is in the file (with a release, unless a
 * move or a put-back failed: README, "Limitations").
 */
static void helper_move(struct pager *p, const struct pager_drop *d,
			struct pager_drop_done *done)
{
	uint64_t moved = 0, total = 0;
	bool write = d->hdr.flags & PAGER_DROP_WRITE;
	struct slot *sl;

	for (uint32_t i = 0; i < d->nr; i++) {
		if ((d->r[i].addr | d->r[i].len) & (PS - 1)) {
			done->status = -EINVAL;
			return;
		}
		total += d->r[i].len;
	}
	if (!p->staging || d->slot >= PAGER_STAGING_SLOTS) {
		done->status = -EINVAL;
		return;
	}
	sl = &p->slot[d->slot];
	if (!(d->hdr.flags & PAGER_DROP_APPEND)) {
		staging_forget(p, d->slot);
		sl->gen = ++p->batch_gen;
	}
	if (total > SLOT_BYTES - sl->staged_len) {
		done->status = -EINVAL;
		return;
	}
	done->staging = (uintptr_t)slot_base(p, d->slot) + sl->staged_len;
	for (uint32_t i = 0; i < d->nr && !done->status; i++) {
		uint64_t dst = (uintptr_t)slot_base(p, d->slot) +
			       sl->staged_len;
		uint64_t got = move_range(p, dst, d->r[i].addr, d->r[i].len,
					  &done->status);

		/* each record holds at least a page: staged[] cannot overflow */
		if (got) {
			sl->staged[sl->nr_staged++] = (struct staged){
				.addr = d->r[i].addr, .len = got };
			/* a failed write: pagerd reads and writes them all */
			write = write && helper_write(p, dst, d->r[i].addr,
						      got);
			sl->staged_len += got;
		}
		moved += got;
	}
	done->moved = moved;
	done->written = write && !done->status;
}

static void g_sleep(long ms)
{
	G_SYS(SYS_poll, NULL, 0, ms, 0, 0);
}

static void g_close(int fd)
{
	if (fd >= 0)
		G_SYS(SYS_close, fd, 0, 0, 0, 0);
}

/* Close every descriptor but the @n in @keep (ascending, -1 ignored). */
static void g_close_all_but(const int *keep, int n)
{
	unsigned int from = 0;

	for (int i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned int)keep[i] < from)
			continue;
		if ((unsigned int)keep[i] > from)
			G_SYS(SYS_close_range, from, keep[i] - 1, 0, 0, 0);
		from = keep[i] + 1;
	}
	G_SYS(SYS_close_range, from, ~0U, 0, 0, 0);
}

static long g_sendmsg(int s, const void *buf, size_t len, const int *fds,
		      int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 5)];
		struct cmsghdr align;
	} c;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *cm;

		memset(&c, 0, sizeof(c));
		mh.msg_control = c.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	return G_SYS(SYS_sendmsg, s, &mh, MSG_NOSIGNAL, 0, 0);
}

/* One request to pagerd on @s: its status, or -ECONNRESET. */
static int g_xfer(int s, struct pager_msg_hdr *h, const int *fds, int nfds)
{
	struct pager_reply rep;
	long got;

	if (g_sendmsg(s, h, h->len, fds, nfds) != (long)h->len)
		return -ECONNRESET;
	do {
		got = G_SYS(SYS_recvfrom, s, &rep, sizeof(rep), 0, NULL);
	} while (got == -EINTR);
	if (got < (long)sizeof(rep) || rep.hdr.magic != PAGER_MAGIC ||
	    rep.hdr.seq != h->seq)
		return -ECONNRESET;
	return rep.status;
}

static int g_connect(const struct pager *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long s = G_SYS(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		       0, 0);
	long err;

	if (s < 0)
		return s;
	memcpy(sa.sun_path, p->path, sizeof(sa.sun_path));
	err = G_SYS(SYS_connect, s, &sa, sizeof(sa), 0, 0);
	if (err) {
		g_close(s);
		return err;
	}
	return s;
}

static int send_fds(int sock, const void *buf, size_t len, const int *fds,
		    int nfds)
{
	return g_sendmsg(sock, buf, len, fds, nfds) == (long)len ? 0 : -1;
}

/* Send and wait for the reply, on the current socket; req_lock held. */
static int xfer(struct pager *p, struct pager_msg_hdr *h, const int *fds,
		int nfds, void *payload, size_t plen, bool *broken)
{
	char buf[sizeof(struct pager_reply) + PAGER_MAX_MSG];
	struct pager_reply *rep = (struct pager_reply *)buf;
	ssize_t n;

	h->seq = ++p->seq;
	if (p->sock < 0 || send_fds(p->sock, h, h->len, fds, nfds))
		goto broken;
	do {
		n = recv(p->sock, buf, sizeof(buf), 0);
	} while (n < 0 && errno == EINTR);
	if (n < (ssize_t)sizeof(*rep) || rep->hdr.magic != PAGER_MAGIC ||
	    rep->hdr.seq != h->seq)
		goto broken;
	if (payload) {
		size_t got = n - sizeof(*rep);

		memset(payload, 0, plen);
		memcpy(payload, buf + sizeof(*rep), got < plen ? got : plen);
	}
	*broken = false;
	return rep->status;
broken:
	*broken = true;
	return -ECONNRESET;
}

static int session_open(struct pager *p)
{
	struct pager_hello h;
	int sv[2], fds[5], sock, ret;
	bool broken;

	sock = g_connect(p);
	if (sock < 0)
		return sock;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		goto err_sock;
	}
	p->sock = sock;
	hello_init(p, &h, fds, sv[1]);
	h.staging = (uintptr_t)p->staging;
	if (p->staging)
		h.features = PAGER_HELLO_HELPER_WRITE |
			     PAGER_HELLO_STAGING_SLOTS | PAGER_HELLO_RESTORE;
	ret = xfer(p, &h.hdr, fds, h.nr_fds, NULL, 0, &broken);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		p->sock = -1;
		goto err_sock;
	}
	p->ev = sv[0];
	return 0;

err_sock:
	close(sock);
	return ret;
}

static int send_map(struct pager *p, struct lregion *lr, uint32_t map_flags,
		    bool *broken)
{
	struct pager_map_req m;
	int fds[2] = { lr->fd, lr->memfd };

	map_init(&m, lr->addr, lr->len, lr->flags, map_flags);
	return xfer(p, &m.hdr, fds, lr->memfd >= 0 ? 2 : 1, NULL, 0, broken);
}

/*
 * pagerd died, or asks for it (PAGER_DROP_RESTORE): pages of the batches
 * it was evicting may exist only in staging (moved out, not yet written
 * back; see helper_move()).  Put every page of slot @s back where it came
 * from.  That is right in every case:
 * while the page is absent from the region no write can have changed it
 * (writes fault and wait), so the staging copy is its latest content;
 * where the region has the page again (EEXIST, put back by pagerd after a
 * failed write) that one is the same or newer.  The newest batch goes
 * first: a slot left unreleased (README, "Limitations") may hold an older
 * copy of a page a later batch moved again, and that one must lose.
 * pagerd takes restored pages as dirty.  Returns 0, or the first error of
 * a page that could not be put back (its copy is freed with the slot).
 */
static int slot_restore(struct pager *p, uint32_t s, bool report)
{
	struct slot *sl = &p->slot[s];
	uint64_t off = 0;
	int ret = 0;

	for (uint32_t i = 0; i < sl->nr_staged; i++) {
		for (uint64_t a = 0; a < sl->staged[i].len; a += PS, off += PS) {
			struct uffdio_move mv = {
				.dst = sl->staged[i].addr + a,
				.src = (uintptr_t)slot_base(p, s) + off,
				.len = PS,
				.mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES,
			};
			long e;

			/*
			 * Done when the region has a page (this one, or a newer
			 * one: EEXIST) or staging has none: the page tables
			 * say, not the error code (see move_range()).
			 */
			while ((e = G_SYS(SYS_ioctl, p->uffd, UFFDIO_MOVE, &mv,
					  0, 0))) {
				if (move_settled(p, mv.dst, mv.src, 1))
					break;
				if (e == -EAGAIN)
					continue;
				/* the only copy of the page: say so, loudly */
				if (report)
					fprintf(stderr, "libpager: cannot restore evicted page %#llx: %s\n",
						(unsigned long long)mv.dst,
						strerror(-e));
				if (!ret)
					ret = (int)e;
				break;
			}
		}
	}
	staging_forget(p, s);
	return ret;
}

/*
 * Put every staged batch back, newest first.  @report: say on stderr what
 * could not be put back (not from the guardian, which has no stdio).
 */
static void staging_restore(struct pager *p, bool report)
{
	if (!p->staging)
		return;
	for (;;) {
		uint32_t newest = PAGER_STAGING_SLOTS;

		for (uint32_t s = 0; s < PAGER_STAGING_SLOTS; s++)
			if (p->slot[s].nr_staged &&
			    (newest == PAGER_STAGING_SLOTS ||
			     p->slot[s].gen > p->slot[newest].gen))
				newest = s;
		if (newest == PAGER_STAGING_SLOTS)
			break;
		slot_restore(p, newest, report);
	}
}

/* pagerd went away: wait for a new one and hand it everything again. */
static void reconnect(struct pager *p)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	staging_restore(p, true);
	pthread_mutex_lock(&p->req_lock);
	if (p->sock >= 0)
		close(p->sock);
	if (p->ev >= 0)
		close(p->ev);
	p->sock = p->ev = -1;
	while (!p->stop) {
		bool broken = false;

		nanosleep(&ts, NULL);
		if (session_open(p))
			continue;
		for (struct lregion *lr = p->regions; lr && !broken;
		     lr = lr->next) {
			int ret = send_map(p, lr, PAGER_MAP_REATTACH, &broken);

			/* its faults would wait for ever: say so */
			if (ret && !broken)
				fprintf(stderr, "libpager: pagerd refused to "
					"re-attach region %#llx: %s\n",
					(unsigned long long)lr->addr,
					strerror(-ret));
		}
		if (!broken)
			break;
		close(p->sock);
		close(p->ev);
		p->sock = p->ev = -1;
	}
	pthread_mutex_lock(&p->lock);
	p->gen++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->req_lock);
}

/* The uffd a region is registered with (pagerd picks the same one). */
static int lr_uffd(struct pager *p, const struct lregion *lr)
{
	return lr->memfd >= 0 && p->uffd_sync >= 0 ? p->uffd_sync : p->uffd;
}

static void *helper_main(void *arg)
{
	struct pager *p = arg;
	sigset_t all;

	/* signals of the application are not for us */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct pager_drop d;
		struct pager_drop_done done;
		ssize_t n;
		int ev;

		pthread_mutex_lock(&p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		pthread_mutex_unlock(&p->lock);
		ev = p->ev;	/* only this thread changes it after connect */
		n = ev >= 0 ? recv(ev, &d, sizeof(d), 0) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!p->stop)
				reconnect(p);
			continue;
		}
		hdr_init(&done.hdr, PAGER_MSG_DROP_DONE, sizeof(done));
		done.hdr.seq = d.hdr.seq;
		if (n != sizeof(d) || d.hdr.magic != PAGER_MAGIC ||
		    d.hdr.type != PAGER_MSG_DROP || d.nr > PAGER_DROP_MAX) {
			done.status = -EBADMSG;
		} else if (d.hdr.flags & PAGER_DROP_RELEASE) {
			if (d.slot < PAGER_STAGING_SLOTS)
				staging_forget(p, d.slot);
			continue;	/* no answer: pagerd does not wait */
		} else if (d.hdr.flags & PAGER_DROP_RESTORE) {
			done.status = p->staging && d.slot < PAGER_STAGING_SLOTS ?
				      slot_restore(p, d.slot, true) : -EINVAL;
		} else if (d.hdr.flags & PAGER_DROP_MOVE) {
			helper_move(p, &d, &done);
		} else {
			for (uint32_t i = 0; i < d.nr; i++)
				if (madvise((void *)d.r[i].addr, d.r[i].len,
					    MADV_DONTNEED))
					done.status = -errno;
		}
		send(ev, &done, sizeof(done), MSG_NOSIGNAL);
	}
}

/* The guardian's pause between DEADs answered with an error, ms. */
#define GUARD_RETRY_MS		250
#define GUARD_RETRY_MAX_MS	30000
/* ... and between tries to reach a pagerd when none answers */
#define GUARD_CONNECT_MS	250

/*
 * Take what libpager sent (GUARD_ADD, GUARD_DEL) until nothing is left.
 * Returns false when libpager's end is closed (the client exec()ed, or
 * disconnects).
 */
static bool g_rx(struct guard *g)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 2)];
			struct cmsghdr align;
		} c;
		struct guard_msg m;
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = c.buf,
				     .msg_controllen = sizeof(c.buf) };
		struct cmsghdr *cm;
		int fds[2] = { -1, -1 };
		long n;

		n = G_SYS(SYS_recvmsg, g->sock, &mh,
			  MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, 0);
		if (n < 0)
			return n == -EAGAIN || n == -EINTR;
		if (n == 0)
			return false;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * (k < 2 ? k : 2));
		}
		if (n == sizeof(m) && m.op == GUARD_ADD && fds[0] >= 0 &&
		    g->nr < GUARD_REGIONS) {
			g->r[g->nr++] = (struct guard_region){
				.addr = m.addr, .len = m.len, .flags = m.flags,
				.fd = fds[0], .memfd = fds[1] };
			continue;
		}
		g_close(fds[0]);
		g_close(fds[1]);
		for (unsigned int i = 0; n == sizeof(m) && m.op == GUARD_DEL &&
		     i < g->nr; i++) {
			if (g->r[i].addr != m.addr)
				continue;
			g_close(g->r[i].fd);
			g_close(g->r[i].memfd);
			g->r[i] = g->r[--g->nr];
			break;
		}
	}
}

/*
 * Hand the dead client to a pagerd that does not know it, on @s: HELLO
 * with its uffd(s), /proc/PID/mem and pagemap, then every region as a
 * re-attach (pagerd takes resident pages as dirty).  No helper: the evict
 * channel is closed at once, so pagerd sends it nothing.  Returns 0 once
 * the HELLO is taken.
 */
static int g_adopt(struct pager *p, struct guard *g, int s)
{
	struct pager_hello h;
	struct pager_map_req m;
	int ev[2], fds[5], ret;

	/*
	 * The pagerd that was evicting may have died with pages of its
	 * batches moved out to staging and not yet written: put them back,
	 * as the helper does when it sees pagerd die; it died with the
	 * client.  A page moved but not yet recorded in its slot is not
	 * found (README, "Limitations").
	 */
	staging_restore(p, false);
	if (G_SYS(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		  ev, 0))
		return -1;
	hello_init(p, &h, fds, ev[1]);
	h.hdr.seq = 1;
	ret = g_xfer(s, &h.hdr, fds, h.nr_fds);
	g_close(ev[0]);
	g_close(ev[1]);
	if (ret)
		return -1;
	for (unsigned int i = 0; i < g->nr; i++) {
		const struct guard_region *r = &g->r[i];

		fds[0] = r->fd;
		fds[1] = r->memfd;
		map_init(&m, r->addr, r->len, r->flags, PAGER_MAP_REATTACH);
		m.hdr.seq = 2 + i;
		if (g_xfer(s, &m.hdr, fds, r->memfd >= 0 ? 2 : 1) ==
		    -ECONNRESET)
			return -1;
	}
	return 0;
}

/*
 * DEAD on @s until an answer says the client's regions are written back
 * (0).  An error answer means pagerd kept them, whose only copy is this
 * memory: ask again, less and less often.  Returns 0, -ESRCH (this pagerd
 * never knew the client) or -ECONNRESET (pagerd went away).
 */
static int g_dead(struct pager *p, int s)
{
	long pause_ms = GUARD_RETRY_MS;
	struct pager_hello h;
	int ret;

	hdr_init(&h.hdr, PAGER_MSG_DEAD, sizeof(h));
	h.token = p->token;
	for (;;) {
		h.hdr.seq++;
		ret = g_xfer(s, &h.hdr, NULL, 0);
		if (!ret || ret == -ESRCH || ret == -ECONNRESET)
			return ret;
		g_sleep(pause_ms);
		pause_ms = pause_ms * 2 > GUARD_RETRY_MAX_MS ?
			   GUARD_RETRY_MAX_MS : pause_ms * 2;
	}
}

/*
 * Guardian: holds a reference on the address space (mm_users), which
 * keeps the client's pages readable by pagerd after the client died, until
 * pagerd answers that they are written back (no timeout: a large region
 * on a slow disk takes what it takes).  It also holds what a re-attach
 * needs (the uffds, /proc/PID/mem and pagemap from pager_connect(), each
 * region's files from GUARD_ADD), so that when no pagerd knows the client
 * (none ran when it died, or the one that did died before answering) the
 * next pagerd is handed the client as its helper would hand it, and
 * flushes it.  Until a pagerd answers, the memory stays.
 */
static int guardian_main(void *arg)
{
	struct pager *p = arg;
	struct guard *g = p->guard;
	struct pollfd pfd[2] = {
		{ .fd = p->pidfd, .events = POLLIN },
		{ .fd = g->sock, .events = POLLIN },
	};
	int keep[6] = { p->pidfd, g->sock, p->uffd, p->uffd_sync, p->memfd,
			p->pagemap };
	bool adopt = false;

	/* ascending, for g_close_all_but() */
	for (int i = 1; i < 6; i++)
		for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
			int t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	g_close_all_but(keep, 6);
	for (;;) {
		if (G_SYS(SYS_poll, pfd, 2, -1, 0, 0) <= 0)
			continue;
		if (pfd[1].revents && !g_rx(g))
			pfd[1].fd = -1;	/* exec()ed: wait for the exit */
		if (pfd[0].revents)
			break;
	}
	/* the client is gone; what it sent before is still queued */
	if (pfd[1].fd >= 0)
		g_rx(g);
	for (;;) {
		int s = g_connect(p), s2 = -1, ret;

		/*
		 * No socket file: pagerd was stopped (it removes the file
		 * after a flush that wrote everything) or the path is gone;
		 * nobody will come for the memory.  A file nobody listens
		 * on is a pagerd killed: wait for the next one.
		 */
		if (s < 0 && s != -ECONNREFUSED)
			break;
		if (s >= 0 && adopt) {
			/* DEAD from a second connection: not the adopted one */
			s2 = s;
			s = g_adopt(p, g, s2) ? -1 : g_connect(p);
		}
		ret = s >= 0 ? g_dead(p, s) : -ECONNRESET;
		g_close(s);
		g_close(s2);
		if (!ret)
			break;
		/* nobody to answer, or a pagerd that never knew us */
		adopt = true;
		g_sleep(GUARD_CONNECT_MS);
	}
	G_SYS(SYS_exit, 0, 0, 0, 0, 0);
	return 0;
}

static void guardian_start(struct pager *p)
{
	int sv[2];

	p->guardian = -1;
	p->gsock = -1;
	p->pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (p->pidfd < 0)
		return;
	p->gstack = sys_mmap(NULL, GUARD_STACK, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1);
	p->guard = sys_mmap(NULL, sizeof(*p->guard), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (p->gstack == MAP_FAILED || p->guard == MAP_FAILED ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return;
	/* never block the client on a guardian that is not reading */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	p->gsock = sv[0];
	p->guard->sock = sv[1];
	/* exit signal 0: invisible to the application's wait() */
	p->guardian = clone(guardian_main, (char *)p->gstack + GUARD_STACK,
			    CLONE_VM | CLONE_UNTRACED, p);
	close(sv[1]);
	if (p->guardian < 0) {
		close(p->gsock);
		p->gsock = -1;
	}
}

static void guardian_stop(struct pager *p)
{
	if (p->guardian > 0) {
		kill(p->guardian, SIGKILL);
		waitpid(p->guardian, NULL, __WALL);
	}
	if (p->gsock >= 0)
		close(p->gsock);
	if (p->gstack && p->gstack != MAP_FAILED)
		sys_munmap(p->gstack, GUARD_STACK);
	if (p->guard && p->guard != MAP_FAILED)
		sys_munmap(p->guard, sizeof(*p->guard));
	if (p->pidfd >= 0)
		close(p->pidfd);
}

/*
 * Tell the guardian about a region (GUARD_ADD) or that it is gone
 * (GUARD_DEL).  Best effort: without a guardian there is nobody to tell.
 * The socket does not block (a guardian that stopped reading must not
 * hold the client); a full one gets up to a second to drain, since a
 * region the guardian does not know is not handed over if the client
 * dies while no pagerd runs: said on stderr.
 */
static void guardian_tell(struct pager *p, int op, const struct lregion *lr)
{
	struct guard_msg m = { .op = op, .flags = lr->flags & PAGER_SHARED,
			       .addr = lr->addr, .len = lr->len };
	int fds[2] = { lr->fd, lr->memfd };
	long ret;

	if (p->gsock < 0 || (op == GUARD_ADD && (lr->flags & PAGER_TEMPORARY)))
		return;
	for (int tries = 0; tries < 10; tries++) {
		struct pollfd pfd = { .fd = p->gsock, .events = POLLOUT };

		ret = g_sendmsg(p->gsock, &m, sizeof(m), fds,
				op == GUARD_ADD ? (lr->memfd >= 0 ? 2 : 1) : 0);
		if (ret != -EAGAIN)
			break;
		poll(&pfd, 1, 100);
	}
	if (ret != (long)sizeof(m) && op == GUARD_ADD)
		fprintf(stderr, "libpager: the guardian does not know region %#llx (%s): if this process dies while no pagerd runs, its unsynced data is lost\n",
			(unsigned long long)lr->addr,
			strerror(ret < 0 ? (int)-ret : EIO));
}

static int getrandom_token(uint64_t *t)
{
	return syscall(SYS_getrandom, t, sizeof(*t), 0) != sizeof(*t);
}

struct pager *pager_connect(const char *socket_path)
{
	struct pager *p;
	bool async;
	int ret;

	if (!socket_path || !*socket_path)
		socket_path = getenv("PAGER_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = PAGER_DEFAULT_SOCKET;
	if (strlen(socket_path) >= sizeof(p->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->req_lock, NULL);
	pthread_mutex_init(&p->rlock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	strcpy(p->path, socket_path);
	p->sock = p->ev = -1;
	p->owner = getpid();
	p->pidfd = -1;
	p->gsock = -1;
	if (getrandom_token(&p->token))
		p->token = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^
			   (uintptr_t)p;
	p->uffd_sync = -1;
	async = pagerd_wants_async(p->path);
	p->uffd = uffd_open_api(&async);
	if (p->uffd < 0)
		goto err_free;
	if (async) {
		bool sync = false;

		/*
		 * Shared regions cannot be evicted by UFFDIO_MOVE: they keep
		 * synchronous write-protection on a uffd of their own.
		 */
		p->uffd_sync = uffd_open_api(&sync);
		if (p->uffd_sync < 0 || staging_init(p))
			goto err_uffd;
	}
	p->memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (p->memfd < 0)
		goto err_uffd;
	p->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (p->pagemap < 0)
		goto err_mem;
	ret = session_open(p);
	/*
	 * A pagerd that dies during the handshake (or is stopping) had
	 * accepted us: like a request in flight, try its successor for a
	 * while instead of failing.  No pagerd at all fails at once.
	 */
	for (int i = 0; i < 500 && (ret == -ECONNRESET || ret == -ESHUTDOWN ||
				    (i && ret == -ECONNREFUSED)); i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		ret = session_open(p);
	}
	if (ret) {
		errno = -ret;
		goto err_pagemap;
	}
	if (pthread_create(&p->helper, NULL, helper_main, p))
		goto err_session;
	guardian_start(p);
	return p;

err_session:
	close(p->sock);
	close(p->ev);
err_pagemap:
	close(p->pagemap);
err_mem:
	close(p->memfd);
err_uffd:
	ret = errno;
	if (p->staging)
		sys_munmap(p->staging, STAGING_BYTES);
	if (p->uffd_sync >= 0)
		close(p->uffd_sync);
	close(p->uffd);
	errno = ret;
err_free:
	free(p);
	return NULL;
}

/*
 * Run a request, retrying across a pagerd restart.  @add is linked into
 * the region list (MAP) or @del unlinked (UNMAP) in the same critical
 * section as a successful reply, so reconnect() always re-sends exactly
 * the regions pagerd knew.
 */
static int request(struct pager *p, struct pager_msg_hdr *h, const int *fds,
		   int nfds, void *payload, size_t plen, struct lregion *add,
		   struct lregion *del)
{
	if (getpid() != p->owner)
		return -ECHILD;
	for (;;) {
		unsigned int gen;
		bool broken;
		int ret;

		pthread_mutex_lock(&p->req_lock);
		gen = p->gen;
		ret = xfer(p, h, fds, nfds, payload, plen, &broken);
		/* a stopping pagerd: ask its successor */
		if (ret == -ESHUTDOWN)
			broken = true;
		if (!broken) {
			pthread_mutex_lock(&p->rlock);
			if (!ret && add) {
				add->next = p->regions;
				p->regions = add;
			}
			if (!ret && del) {
				for (struct lregion **pp = &p->regions; *pp;
				     pp = &(*pp)->next) {
					if (*pp == del) {
						*pp = del->next;
						break;
					}
				}
			}
			pthread_mutex_unlock(&p->rlock);
			pthread_mutex_unlock(&p->req_lock);
			return ret;
		}
		pthread_mutex_unlock(&p->req_lock);
		pthread_mutex_lock(&p->lock);
		while (p->gen == gen && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		ret = p->stop;
		pthread_mutex_unlock(&p->lock);
		if (ret)
			return -ESHUTDOWN;
	}
}

static int open_tmp_in(const char *dir)
{
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
			errno != EINVAL))
		return fd;
	snprintf(path, sizeof(path), "%s/pager.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* An unlinked file: $PAGER_TMPDIR, else /var/tmp, $TMPDIR, /tmp. */
static int open_temp(void)
{
	const char *dirs[] = { getenv("PAGER_TMPDIR"), "/var/tmp",
			       getenv("TMPDIR"), "/tmp" };
	int fd = -1;

	if (dirs[0] && *dirs[0])
		return open_tmp_in(dirs[0]);
	for (size_t i = 1; i < sizeof(dirs) / sizeof(dirs[0]) && fd < 0; i++)
		if (dirs[i] && *dirs[i])
			fd = open_tmp_in(dirs[i]);
	return fd;
}

void *pager_map(struct pager *p, size_t len, const char *backing_path,
		int flags)
{
	struct uffdio_register reg;
	struct lregion *lr;
	void *addr;
	int ret;

	if (!p || !len || (flags & ~(PAGER_SHARED | PAGER_TEMPORARY)) ||
	    (!backing_path && !(flags & PAGER_TEMPORARY))) {
		errno = EINVAL;
		return NULL;
	}
	if (getpid() != p->owner) {
		errno = ECHILD;
		return NULL;
	}
	len = (len + PS - 1) & ~(PS - 1);
	lr = calloc(1, sizeof(*lr));
	if (!lr)
		return NULL;
	lr->len = len;
	lr->flags = flags;
	lr->memfd = -1;
	/* opened with the caller's rights: pagerd only gets the fd */
	lr->fd = backing_path ?
		 open(backing_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) :
		 open_temp();
	if (lr->fd < 0)
		goto err_free;
	if (flags & PAGER_SHARED) {
		lr->memfd = memfd_create("pager", MFD_CLOEXEC);
		if (lr->memfd < 0 || ftruncate(lr->memfd, len))
			goto err_close;
		addr = sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
				lr->memfd);
	} else {
		addr = sys_mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				-1);
	}
	if (addr == MAP_FAILED)
		goto err_close;
	lr->addr = (uintptr_t)addr;
	/* no THP (4K dirty tracking), no copy in children: see README */
	madvise(addr, len, MADV_NOHUGEPAGE);
	madvise(addr, len, MADV_DONTFORK);
	reg.range.start = lr->addr;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
	if (ioctl(lr_uffd(p, lr), UFFDIO_REGISTER, &reg))
		goto err_unmap;
	if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)) ||
	    !(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
		errno = EOPNOTSUPP;
		goto err_unregister;
	}
	/* before pagerd has it: the guardian must know every region it may */
	guardian_tell(p, GUARD_ADD, lr);
	{
		struct pager_map_req m;
		int fds[2] = { lr->fd, lr->memfd };

		map_init(&m, lr->addr, len, flags, 0);
		ret = request(p, &m.hdr, fds, lr->memfd >= 0 ? 2 : 1, NULL, 0,
			      lr, NULL);
	}
	if (ret) {
		guardian_tell(p, GUARD_DEL, lr);
		errno = -ret;
		goto err_unregister;
	}
	return addr;

err_unregister:
	ret = errno;
	ioctl(lr_uffd(p, lr), UFFDIO_UNREGISTER, &reg.range);
	errno = ret;
err_unmap:
	ret = errno;
	sys_munmap(addr, len);
	errno = ret;
err_close:
	ret = errno;
	close(lr->fd);
	if (lr->memfd >= 0)
		close(lr->memfd);
	errno = ret;
err_free:
	free(lr);
	return NULL;
}

static int range_req(struct pager *p, int type, void *addr, size_t len)
{
	struct pager_range_req m;

	if (!p)
		return -EINVAL;
	hdr_init(&m.hdr, type, sizeof(m));
	m.addr = (uintptr_t)addr;
	m.len = len;
	return request(p, &m.hdr, NULL, 0, NULL, 0, NULL, NULL);
}

/* Round [addr, addr+len) out to pages. */
static int page_range(struct pager *p, int type, void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr & ~(PS - 1);
	uintptr_t e = ((uintptr_t)addr + len + PS - 1) & ~(PS - 1);

	return range_req(p, type, (void *)a, len ? e - a : 0);
}

int pager_sync(struct pager *p, void *addr, size_t len)
{
	return page_range(p, PAGER_MSG_SYNC, addr, len);
}

int pager_evict(struct pager *p, void *addr, size_t len)
{
	return page_range(p, PAGER_MSG_EVICT, addr, len);
}

int pager_prefetch(struct pager *p, void *addr, size_t len)
{
	return page_range(p, PAGER_MSG_PREFETCH, addr, len);
}

int pager_unmap(struct pager *p, void *addr)
{
	struct pager_range_req m;
	struct uffdio_range range;
	struct lregion *lr = NULL;
	int ret;

	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->req_lock);
	for (lr = p->regions; lr; lr = lr->next)
		if (lr->addr == (uintptr_t)addr)
			break;
	pthread_mutex_unlock(&p->req_lock);
	if (!lr)
		return -EINVAL;
	hdr_init(&m.hdr, PAGER_MSG_UNMAP, sizeof(m));
	m.addr = lr->addr;
	ret = request(p, &m.hdr, NULL, 0, NULL, 0, NULL, lr);
	if (ret)
		return ret;
	guardian_tell(p, GUARD_DEL, lr);
	range.start = lr->addr;
	range.len = lr->len;
	ioctl(lr_uffd(p, lr), UFFDIO_UNREGISTER, &range);
	sys_munmap((void *)(uintptr_t)lr->addr, lr->len);
	close(lr->fd);
	if (lr->memfd >= 0)
		close(lr->memfd);
	free(lr);
	return 0;
}

int pager_stats(struct pager *p, void *addr, struct pager_stats *st)
{
	struct pager_range_req m;

	if (!p || !st)
		return -EINVAL;
	hdr_init(&m.hdr, PAGER_MSG_STATS, sizeof(m));
	m.addr = (uintptr_t)addr;
	return request(p, &m.hdr, NULL, 0, st, sizeof(*st), NULL, NULL);
}

void pager_disconnect(struct pager *p)
{
	struct pager_msg_hdr h;

	if (!p)
		return;
	if (getpid() != p->owner)
		return;	/* a forked child: the parent still owns it all */
	for (;;) {
		struct lregion *lr;

		pthread_mutex_lock(&p->req_lock);
		lr = p->regions;
		pthread_mutex_unlock(&p->req_lock);
		if (!lr || pager_unmap(p, (void *)(uintptr_t)lr->addr))
			break;
	}
	hdr_init(&h, PAGER_MSG_BYE, sizeof(h));
	pthread_mutex_lock(&p->req_lock);
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->sock >= 0) {
		bool broken;

		xfer(p, &h, NULL, 0, NULL, 0, &broken);
	}
	if (p->ev >= 0)
		shutdown(p->ev, SHUT_RDWR);
	pthread_mutex_unlock(&p->req_lock);
	pthread_join(p->helper, NULL);
	guardian_stop(p);
	while (p->regions) {
		struct lregion *lr = p->regions;

		p->regions = lr->next;
		close(lr->fd);
		if (lr->memfd >= 0)
			close(lr->memfd);
		free(lr);
	}
	if (p->sock >= 0)
		close(p->sock);
	if (p->ev >= 0)
		close(p->ev);
	close(p->uffd);
	if (p->uffd_sync >= 0)
		close(p->uffd_sync);
	if (p->staging)
		sys_munmap(p->staging, STAGING_BYTES);
	close(p->memfd);
	close(p->pagemap);
	free(p);
}
