// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for pagerd's client protocol: daemon/server.c is
 * compiled into this file unchanged, and its handle_msg() is fed fuzzed
 * packets (with fuzzed sets of passed descriptors) over a real
 * SOCK_SEQPACKET socketpair, exactly as pagerd receives them.  What
 * server.c calls in the rest of pagerd is replaced by stubs that keep a
 * real region list and check the contract server.c promises them
 * (page-aligned offsets inside the region, valid descriptors), so a
 * validation hole shows up as a crash, not only memory errors do.
 *
 * Input: records of [spec:1][len:2 LE][fdsel:1][len bytes].  spec bits 0-2 say
 * how many descriptors go with it (6 and 7: 4 or 8, more than pagerd
 * takes), bit 3 fixes up magic and length in the header, bit 4 picks 8
 * descriptors; fdsel (the 4th byte) chooses them from a palette
 * (userfaultfd, /proc/self/mem, /proc/self/pagemap, a socket, a read-write
 * file, a read-only file, a directory, a big memfd): bit 7 clear gives
 * the set HELLO or MAP expects.
 */
#include <stddef.h>
#include <assert.h>
#include <sys/syscall.h>
#include <sys/mman.h>

#include "../../daemon/server.c"

/* ---- stubs for the rest of pagerd ---------------------------------------- */

struct pagerd pd;
int pagerd_verbose;

void pr_info(const char *fmt, ...)
{
	(void)fmt;
}

void pr_err(const char *fmt, ...)
{
	(void)fmt;
}

static void check_fd(int fd)
{
	assert(fd >= 0 && fcntl(fd, F_GETFD) >= 0);
}

struct region *region_create(struct conn *c, uint64_t addr, uint64_t len,
			     uint32_t flags, int fd, int memfd, bool reattach,
			     int *err)
{
	struct region *r = calloc(1, sizeof(*r));

	(void)reattach;
	/* server.c promises a page-aligned, non-wrapping, non-empty range */
	assert(len && !(addr % PAGE_SIZE) && !(len % PAGE_SIZE));
	assert(addr + len > addr);
	check_fd(fd);
	if (flags & PAGER_SHARED)
		check_fd(memfd);
	else
		assert(memfd == -1);
	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	r->conn = c;
	r->id = ++pd.next_region_id;
	r->addr = addr;
	r->len = len;
	r->npages = len / PAGE_SIZE;
	r->flags = flags;
	r->fd = fd;
	r->memfd = memfd;
	pthread_mutex_lock(&pd.lock);
	if (c->dead) {
		/* as region.c: no region on a torn-down connection */
		pthread_mutex_unlock(&pd.lock);
		free(r);
		*err = -ESHUTDOWN;
		return NULL;
	}
	list_add_tail(&r->cnode, &c->regions);
	list_add_tail(&r->node, &pd.regions);
	pd.nr_regions++;
	pthread_mutex_unlock(&pd.lock);
	return r;
}

int region_release(struct region *r, bool writeback)
{
	(void)writeback;
	pthread_mutex_lock(&pd.lock);
	assert(r->dying);
	assert(r->ops == 0);
	list_del(&r->cnode);
	list_del(&r->node);
	pd.nr_regions--;
	pd.releasing--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
	close(r->fd);
	if (r->memfd >= 0)
		close(r->memfd);
	free(r);
	return 0;
}

struct region *conn_find_region(struct conn *c, uint64_t addr)
{
	for (struct list *l = c->regions.next; l != &c->regions; l = l->next) {
		struct region *r = container_of(l, struct region, cnode);

		if (addr >= r->addr && addr - r->addr < r->len)
			return r;
	}
	return NULL;
}

static int range_ok(struct region *r, uint64_t off, uint64_t len)
{
	assert(r->ops > 0);
	assert(!(off % PAGE_SIZE));
	assert(off < r->len);
	assert(len <= r->len - off);
	return 0;
}

int region_sync(struct region *r, uint64_t off, uint64_t len)
{
	return range_ok(r, off, len);
}

int region_evict(struct region *r, uint64_t off, uint64_t len)
{
	return range_ok(r, off, len);
}

int region_prefetch(struct region *r, uint64_t off, uint64_t len)
{
	return range_ok(r, off, len);
}

void drop_abandon(struct conn *c)
{
	(void)c;
}

void uffd_wake(struct region *r, uint64_t idx, uint64_t n)
{
	assert(idx + n <= r->npages);
}

void stats_fill_global(struct pager_stats *st)
{
	memset(st, 0, sizeof(*st));
}

void stats_fill_region(struct region *r, struct pager_stats *st)
{
	assert(r->ops > 0);
	memset(st, 0, sizeof(*st));
}

int stats_format(char *buf, size_t len, bool json)
{
	return snprintf(buf, len, json ? "{}" : "stats\n");
}

void fault_event(struct conn *c, int uffd, struct evsrc *es)
{
	(void)c;
	(void)uffd;
	(void)es;
}

void region_stats_prepare(struct region *r)
{
	assert(r->ops > 0);
}

int region_scan_written(struct region *r, uint64_t first, uint64_t last)
{
	assert(r->ops > 0 && first <= last && last < r->npages);
	return 0;
}

struct pager_io *io_self(void)
{
	return NULL;
}

/* ---- the harness ---------------------------------------------------------- */

static char tmpdir[64];

static int palette_fd(int which)
{
	char path[128];
	int fd;

	switch (which & 7) {
	case 0:
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		return fd >= 0 ? fd : open("/dev/null", O_RDWR);
	case 1:
		return open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	case 2:
		return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	case 3: {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			return -1;
		close(sv[1]);
		return sv[0];
	}
	case 4:
		snprintf(path, sizeof(path), "%s/rw", tmpdir);
		return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	case 5:
		snprintf(path, sizeof(path), "%s/rw", tmpdir);
		return open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	case 6:
		return open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	default:
		fd = memfd_create("fuzz", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, 1 << 24)) {
			close(fd);
			return -1;
		}
		return fd;
	}
}

/* The fd palette of a record: 0-4 descriptors. */
static int send_record(int sock, uint8_t spec, const uint8_t *data, size_t len,
		       uint8_t fdsel)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	uint8_t buf[1024];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[8], nfds = spec & 7;
	ssize_t ret;

	if (nfds > 5)
		nfds = (spec & 16) ? 8 : 4;	/* more than pagerd takes */
	memcpy(buf, data, len);
	if ((spec & 8) && len >= sizeof(struct pager_msg_hdr)) {
		struct pager_msg_hdr *h = (void *)buf;

		h->magic = PAGER_MAGIC;
		h->len = len;
	}
	for (int i = 0; i < nfds; i++) {
		static const int canon[3][5] = {
			{ 4 }, { 4, 7 }, { 0, 1, 2, 3, 0 },
		};
		int which;

		/* fdsel bit 7 clear: what HELLO and MAP expect; else anything */
		if (!(fdsel & 0x80))
			which = canon[nfds >= 4 ? 2 : nfds - 1][i < 5 ? i : 0];
		else
			which = (fdsel >> (i * 2)) ^ (i >= 4 ? spec >> 5 : 0);
		fds[i] = palette_fd(which);
		if (fds[i] < 0)
			fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
	}
	if (nfds) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	ret = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return ret < 0 ? -1 : 0;
}

/*
 * Known bug, reported, not ours to fix: a DEAD message carrying the sender's
 * own token makes conn_teardown() wait for the worker that runs it, which
 * never returns (pagerd loses that worker for good).  Skipped unless
 * FUZZ_KNOWN_BUGS=1, so that the fuzzer looks for new ones; the repro is
 * tests/fuzz/repro/pager-dead-self.
 */
static bool known_bug(struct conn *c, uint8_t spec, const uint8_t *data,
		      size_t len)
{
	static int enabled = -1;
	struct pager_hello m;

	if (enabled < 0)
		enabled = !!getenv("FUZZ_KNOWN_BUGS");
	if (enabled || len != sizeof(m))
		return false;
	memcpy(&m, data, sizeof(m));
	if ((spec & 8) || m.hdr.magic == PAGER_MAGIC)
		return m.hdr.type == PAGER_MSG_DEAD && c->hello &&
		       m.token == c->token;
	return false;
}

static void drain_replies(int sock)
{
	char buf[sizeof(struct pager_reply) + PAGER_MAX_MSG];

	while (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The scratch directory goes with the fuzzer: runs would pile them up. */
static void remove_tmpdir(void)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/rw", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fuzz-pager-proto.%d", getpid());
	mkdir(tmpdir, 0700);
	atexit(remove_tmpdir);
	pthread_mutex_init(&pd.lock, NULL);
	pthread_cond_init(&pd.cond, NULL);
	list_init(&pd.regions);
	list_init(&pd.conns);
	list_init(&pd.graveyard);
	pd.epfd = epoll_create1(EPOLL_CLOEXEC);
	pd.lsock = -1;
	return 0;
}

static void conn_free_all(void)
{
	while (!list_empty(&pd.graveyard)) {
		struct conn *c = container_of(pd.graveyard.next, struct conn,
					      node);

		list_del(&c->node);
		pthread_mutex_destroy(&c->evict_lock);
		free(c);
	}
}

static struct conn *conn_new(int sock)
{
	struct conn *c = calloc(1, sizeof(*c));

	assert(c);
	c->sock = sock;
	c->uffd = c->memfd = c->pagemap = c->evfd = -1;
	c->pid = getpid();
	c->uid = getuid();
	list_init(&c->regions);
	pthread_mutex_init(&c->evict_lock, NULL);
	c->es_sock = (struct evsrc){ .type = SRC_SOCK, .c = c };
	c->es_uffd = (struct evsrc){ .type = SRC_UFFD, .c = c };
	list_add_tail(&c->node, &pd.conns);
	nr_conns++;
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	struct conn *c;
	bool alive = true;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return 0;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	c = conn_new(sv[0]);
	pd.stopping = size && (data[0] == 0xff);
	while (alive && size >= 4) {
		uint8_t spec = data[0], fdsel = data[3];
		size_t len = data[1] | (data[2] << 8);

		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		if (len > 1024)
			len = 1024;
		if (known_bug(c, spec, data, len)) {
			data += len;
			size -= len;
			continue;
		}
		if (send_record(sv[1], spec, data, len, fdsel))
			break;
		data += len;
		size -= len;
		/* as server_worker does: the worker holds a user reference */
		if (!conn_get_user(c))
			break;
		alive = handle_msg(c);
		if (!alive)
			conn_teardown(c, true);
		conn_put_user(c);
		drain_replies(sv[1]);
	}
	if (alive)
		conn_teardown(c, false);
	close(sv[1]);
	assert(list_empty(&pd.regions) && !pd.nr_regions);
	assert(!nr_conns);
	conn_free_all();
	return 0;
}
