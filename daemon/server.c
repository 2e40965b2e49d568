// SPDX-License-Identifier: GPL-2.0
/*
 * server.c - client protocol: the listening socket, connections, message
 * validation and dispatch, worker threads.
 *
 * Every message is checked before use: exact length for its type, known
 * flags, page-aligned ranges inside the client's regions, the number and
 * kind of passed file descriptors.  pagerd never opens a path for a client:
 * the client opens its backing file itself and passes the descriptor, so
 * pagerd can only reach files the client could (no path traversal, no other
 * users' files); the descriptor must be a regular file open read-write.
 * A client breaking the protocol gets an error reply; one that cannot be
 * talked to (truncated control data, full socket) is disconnected.
 *
 * Threads: N workers share one epoll set with EPOLLONESHOT sources, so one
 * source is handled by one worker at a time; a uffd is re-armed before its
 * batch is handled so several workers serve a client with many faulting
 * threads.  conn->users counts workers using a connection's descriptors;
 * teardown waits for them before closing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/userfaultfd.h>

#include "pagerd.h"
#include "uffd_compat.h"

#define MAX_CONNS	1024
#define MAX_FDS		5	/* HELLO with a WP_ASYNC uffd */
#define MAX_REGION_LEN	(64ULL << 30)	/* 32 MiB of page state */

static struct evsrc listen_src = { .type = SRC_LISTEN };
static int nr_conns;

static void arm(int fd, struct evsrc *s, int op)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLONESHOT,
		.data.ptr = s,
	};

	epoll_ctl(pd.epfd, op, fd, &ev);
}

/* Re-enable a one-shot source (fault.c decides when for a uffd). */
void server_rearm(int fd, struct evsrc *s)
{
	arm(fd, s, EPOLL_CTL_MOD);
}

int server_init(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* a stale socket of a dead pagerd is replaced, a live one is not */
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, 128)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* any user may connect; access to files is by their own fds */
	chmod(path, 0666);
	pd.lsock = fd;
	pd.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (pd.epfd < 0)
		return -errno;
	arm(fd, &listen_src, EPOLL_CTL_ADD);
	return 0;
}

static bool conn_get_user(struct conn *c)
{
	bool ok;

	pthread_mutex_lock(&pd.lock);
	ok = !c->dead;
	if (ok)
		c->users++;
	pthread_mutex_unlock(&pd.lock);
	return ok;
}

static void conn_put_user(struct conn *c)
{
	pthread_mutex_lock(&pd.lock);
	c->users--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
}

static void server_accept(void)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct conn *c;
	int fd;

	fd = accept4(pd.lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl))
		goto err_close;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_close;
	pthread_mutex_lock(&pd.lock);
	if (nr_conns >= MAX_CONNS) {
		pthread_mutex_unlock(&pd.lock);
		free(c);
		goto err_close;
	}
	nr_conns++;
	c->sock = fd;
	c->uffd = c->memfd = c->pagemap = c->evfd = c->uffd_sync = -1;
	c->pid = cred.pid;
	c->uid = cred.uid;
	list_init(&c->regions);
	pthread_mutex_init(&c->evict_lock, NULL);
	pthread_cond_init(&c->slot_cond, NULL);
	c->nslots = 1;
	c->es_sock = (struct evsrc){ .type = SRC_SOCK, .c = c };
	c->es_uffd = (struct evsrc){ .type = SRC_UFFD, .c = c };
	c->es_uffd_sync = (struct evsrc){ .type = SRC_UFFD_SYNC, .c = c };
	list_add_tail(&c->node, &pd.conns);
	pthread_mutex_unlock(&pd.lock);
	arm(fd, &c->es_sock, EPOLL_CTL_ADD);
	return;

err_close:
	close(fd);
}

/*
 * Flush and release everything of a connection.  Its regions are written
 * back (unless temporary) while the client's memory is still reachable:
 * after an orderly exit there is nothing left to write, after a crash the
 * client's guardian keeps the address space alive until we are done.
 *
 * A region whose write-back fails (disk full, EIO) is kept with its
 * connection and its descriptors, and the error returned: its dirty pages
 * exist only in the dead client's memory, which the guardian keeps until
 * an answer says they are safe.  The guardian asks again (DEAD), each
 * time an attempt here; the connection is released only by an attempt
 * that wrote everything.  c->tearing marks the running attempt, whose
 * result the others wait for (pd.lock).
 */
static int conn_teardown(struct conn *c, bool holds_ref)
{
	bool first;
	int err = 0;

	pthread_mutex_lock(&pd.lock);
	if (c->released || (c->tearing && holds_ref)) {
		/* done, or someone else tears down and waits for our ref */
		pthread_mutex_unlock(&pd.lock);
		return 0;
	}
	if (c->tearing) {
		/* a guardian waits for the end of the running attempt */
		while (c->tearing)
			pthread_cond_wait(&pd.cond, &pd.lock);
		err = c->released ? 0 : c->teardown_err;
		pthread_mutex_unlock(&pd.lock);
		return err;
	}
	first = !c->dead;
	c->dead = true;
	c->tearing = true;
	for (struct list *l = c->regions.next; l != &c->regions; l = l->next)
		container_of(l, struct region, cnode)->kept = false;
	pthread_mutex_unlock(&pd.lock);

	if (first) {
		/* a drop request never answered would keep its pages busy */
		drop_abandon(c);
		epoll_ctl(pd.epfd, EPOLL_CTL_DEL, c->sock, NULL);
		if (c->uffd >= 0)
			epoll_ctl(pd.epfd, EPOLL_CTL_DEL, c->uffd, NULL);
		if (c->uffd_sync >= 0)
			epoll_ctl(pd.epfd, EPOLL_CTL_DEL, c->uffd_sync, NULL);
	}
	/*
	 * Release every region, one claim at a time (region_claim()).  A
	 * region already claimed is being released by an UNMAP still running
	 * on another worker (we may have come from DEAD): wait for it to
	 * leave the list, so that the answer to DEAD means "all written
	 * back".  No region is added any more: do_map() checks c->dead.  A
	 * region this attempt failed to write is marked kept and passed
	 * over until the next attempt.
	 */
	pthread_mutex_lock(&pd.lock);
	for (;;) {
		struct region *r = NULL;
		bool others = false;
		int ret;

		for (struct list *l = c->regions.next; l != &c->regions;
		     l = l->next) {
			struct region *t = container_of(l, struct region, cnode);

			if (t->kept)
				continue;
			if (region_claim(t)) {
				r = t;
				break;
			}
			others = true;
		}
		if (r) {
			pthread_mutex_unlock(&pd.lock);
			pr_debug("client pid %d: releasing region %llu", c->pid,
				 (unsigned long long)r->id);
			ret = region_release(r, !(r->flags & PAGER_TEMPORARY));
			pthread_mutex_lock(&pd.lock);
			if (ret) {
				/* still linked: region_release() kept it */
				r->kept = true;
				err = ret;
				pr_err("client pid %d died: write-back of region %llu failed (%s), %llu dirty pages kept in its memory until its guardian asks again",
				       c->pid, (unsigned long long)r->id,
				       strerror(-ret),
				       (unsigned long long)r->dirty);
			}
		} else if (others) {
			pthread_cond_wait(&pd.cond, &pd.lock);
		} else {
			break;
		}
	}
	if (err) {
		c->teardown_err = err;
		c->tearing = false;
		pthread_cond_broadcast(&pd.cond);
		pthread_mutex_unlock(&pd.lock);
		return err;
	}

	while (c->users > (holds_ref ? 1 : 0))
		pthread_cond_wait(&pd.cond, &pd.lock);
	list_del(&c->node);
	list_add_tail(&c->node, &pd.graveyard);
	nr_conns--;
	pthread_mutex_unlock(&pd.lock);

	close(c->sock);
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->uffd_sync >= 0)
		close(c->uffd_sync);
	if (c->memfd >= 0)
		close(c->memfd);
	if (c->pagemap >= 0)
		close(c->pagemap);
	if (c->evfd >= 0)
		close(c->evfd);
	pthread_mutex_lock(&pd.lock);
	c->released = true;
	c->tearing = false;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
	pr_debug("client pid %d released", c->pid);
	return 0;
}

static int send_reply(struct conn *c, uint32_t seq, int status,
		      const void *payload, size_t len)
{
	char buf[sizeof(struct pager_reply) + PAGER_MAX_MSG];
	struct pager_reply *rep = (struct pager_reply *)buf;

	if (len > PAGER_MAX_MSG)
		len = PAGER_MAX_MSG;
	memset(rep, 0, sizeof(*rep));
	rep->hdr.magic = PAGER_MAGIC;
	rep->hdr.type = PAGER_MSG_REPLY;
	rep->hdr.len = sizeof(*rep) + len;
	rep->hdr.seq = seq;
	rep->status = status;
	if (len)
		memcpy(buf + sizeof(*rep), payload, len);
	/* a client that does not read its replies is not waited for */
	if (send(c->sock, buf, sizeof(*rep) + len,
		 MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)(sizeof(*rep) + len))
		return -errno;
	return 0;
}

static bool fd_link_is(int fd, const char *prefix, const char *suffix)
{
	char path[64], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	if (strncmp(link, prefix, strlen(prefix)))
		return false;
	return !suffix || (n >= (ssize_t)strlen(suffix) &&
			   !strcmp(link + n - strlen(suffix), suffix));
}

/*
 * The features the client gave its uffd, from its fdinfo ("API:
 * api:features:ioctls").  The client chose them (asking us first), and a
 * client re-attaching after a restart keeps its uffd, so this, not
 * --wp-mode, decides how its regions are tracked.
 */
static int uffd_features(int fd, uint64_t *features)
{
	char path[64], line[128];
	unsigned long long api, feat;
	int ret = -EINVAL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "API:\t%llx:%llx:", &api, &feat) == 2) {
			*features = feat;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int do_hello(struct conn *c, const struct pager_hello *m, int *fds,
		    int nfds)
{
	uint64_t amode = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_MOVE;
	uint64_t feat = 0;
	struct stat st;
	bool async;

	if (c->hello)
		return -EALREADY;
	if (nfds != (int)m->nr_fds || (nfds != 4 && nfds != 5))
		return -EBADF;
	if (!fd_link_is(fds[0], "anon_inode:[userfaultfd]", NULL) ||
	    !fd_link_is(fds[1], "/proc/", "/mem") ||
	    !fd_link_is(fds[2], "/proc/", "/pagemap") ||
	    fstat(fds[3], &st) || !S_ISSOCK(st.st_mode) ||
	    (nfds == 5 &&
	     !fd_link_is(fds[4], "anon_inode:[userfaultfd]", NULL)))
		return -EBADF;
	if (uffd_features(fds[0], &feat))
		return -EBADF;
	async = feat & UFFD_FEATURE_WP_ASYNC;
	/* async needs MOVE for eviction and a sync uffd for shared regions */
	if (async != (nfds == 5) || (async && (feat & amode) != amode))
		return -EINVAL;
	c->uffd = fds[0];
	c->memfd = fds[1];
	c->pagemap = fds[2];
	c->evfd = fds[3];
	if (nfds == 5)
		c->uffd_sync = fds[4];
	for (int i = 0; i < nfds; i++)
		fds[i] = -1;
	c->wp_async = async;
	c->token = m->token;
	/* only ever read through the client's own /proc/PID/mem */
	if (async && !(m->staging & (PAGE_SIZE - 1)))
		c->staging_base = m->staging;
	c->helper_write = c->staging_base &&
			  (m->features & PAGER_HELLO_HELPER_WRITE);
	c->helper_restore = c->staging_base &&
			    (m->features & PAGER_HELLO_RESTORE);
	if (c->staging_base && (m->features & PAGER_HELLO_STAGING_SLOTS))
		c->nslots = PAGER_STAGING_SLOTS;
	c->hello = true;
	fcntl(c->uffd, F_SETFL, fcntl(c->uffd, F_GETFL) | O_NONBLOCK);
	arm(c->uffd, &c->es_uffd, EPOLL_CTL_ADD);
	if (c->uffd_sync >= 0) {
		fcntl(c->uffd_sync, F_SETFL,
		      fcntl(c->uffd_sync, F_GETFL) | O_NONBLOCK);
		arm(c->uffd_sync, &c->es_uffd_sync, EPOLL_CTL_ADD);
	}
	pr_debug("client pid %d uid %d connected", c->pid, c->uid);
	return 0;
}

static int check_file_fd(int fd, uint64_t min_size)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st))
		return -EBADF;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -EBADF;
	if ((fl & O_ACCMODE) != O_RDWR)
		return -EACCES;
	if (fl & O_APPEND)
		return -EINVAL;	/* positional writes would append */
	if ((uint64_t)st.st_size < min_size)
		return -EINVAL;
	return 0;
}

static int do_map(struct conn *c, const struct pager_map_req *m, int *fds,
		  int nfds)
{
	bool shared = m->flags & PAGER_SHARED;
	struct region *r;
	int ret;

	if (!c->hello)
		return -ENOTCONN;
	if (m->flags & ~(PAGER_SHARED | PAGER_TEMPORARY) ||
	    m->map_flags & ~PAGER_MAP_REATTACH)
		return -EINVAL;
	if (!m->len || m->len > MAX_REGION_LEN || m->len % PAGE_SIZE ||
	    m->addr % PAGE_SIZE || !m->addr || m->addr + m->len < m->addr ||
	    m->addr + m->len > (1ULL << 57))
		return -EINVAL;
	if (nfds != (shared ? 2 : 1))
		return -EBADF;
	ret = check_file_fd(fds[0], 0);
	if (!ret && shared)
		ret = check_file_fd(fds[1], m->len);
	if (ret)
		return ret;

	pthread_mutex_lock(&pd.lock);
	{
		int n = 0;

		for (struct list *l = c->regions.next; l != &c->regions;
		     l = l->next, n++) {
			r = container_of(l, struct region, cnode);
			if (m->addr < r->addr + r->len &&
			    r->addr < m->addr + m->len)
				ret = -EEXIST;
		}
		if (n >= PAGER_MAX_REGIONS)
			ret = -EMFILE;
	}
	pthread_mutex_unlock(&pd.lock);
	if (ret)
		return ret;
	r = region_create(c, m->addr, m->len, m->flags, fds[0],
			  shared ? fds[1] : -1,
			  m->map_flags & PAGER_MAP_REATTACH, &ret);
	if (!r)
		return ret;
	fds[0] = -1;
	if (shared)
		fds[1] = -1;
	/* faults read by a killed pagerd are lost: make them fault again */
	if (m->map_flags & PAGER_MAP_REATTACH)
		uffd_wake(r, 0, r->npages);
	pr_debug("client pid %d: region %llu at %#llx len %llu%s%s", c->pid,
		 (unsigned long long)r->id, (unsigned long long)r->addr,
		 (unsigned long long)r->len, shared ? " shared" : "",
		 m->map_flags & PAGER_MAP_REATTACH ? " reattached" : "");
	return 0;
}

/* Pin the region holding [addr, addr+len) of @c, or NULL. */
static struct region *get_region(struct conn *c, uint64_t addr, uint64_t len,
				 bool exact)
{
	struct region *r;

	pthread_mutex_lock(&pd.lock);
	r = conn_find_region(c, addr);
	if (r && (r->dying || (exact && r->addr != addr) ||
		  len > r->len - (addr - r->addr)))
		r = NULL;
	if (r)
		r->ops++;
	pthread_mutex_unlock(&pd.lock);
	return r;
}

static void put_region(struct region *r)
{
	pthread_mutex_lock(&pd.lock);
	r->ops--;
	pthread_cond_broadcast(&pd.cond);
	pthread_mutex_unlock(&pd.lock);
}

enum { REGIONS_ASYNC, REGIONS_FLUSH };

/*
 * Pin (r->ops) every live region of a kind and return them in an array
 * of *@n to put_region() and free(), or NULL (no memory).  @kind:
 * REGIONS_ASYNC the asynchronous ones, REGIONS_FLUSH those a flush
 * writes (not temporary).  pd.lock held.
 */
static struct region **regions_pin(int kind, int *n)
{
	struct region **rs = calloc(pd.nr_regions + 1, sizeof(*rs));

	*n = 0;
	for (struct list *l = pd.regions.next; rs && l != &pd.regions;
	     l = l->next) {
		struct region *r = container_of(l, struct region, node);

		if (r->dying || (kind == REGIONS_ASYNC ? !r->async :
				 !!(r->flags & PAGER_TEMPORARY)))
			continue;
		r->ops++;
		rs[(*n)++] = r;
	}
	return rs;
}

/*
 * Asynchronous WP: pagerd learns of writes only by scanning.  Before the
 * global statistics are read, scan every region for written pages, so
 * that they count the pages written so far, not only those a fault, sync
 * or eviction has seen.  Unlike a region's own statistics
 * (region_stats_prepare()) this does not wait for busy pages the scan
 * found written: any connection may ask, and a page of another client
 * can stay busy for as long as that client's helper does not answer a
 * move (a stopped process).  Waiting would hold this worker and every
 * region's pin meanwhile; such a page counts as dirty when its operation
 * ends.
 */
static void stats_prepare_all(void)
{
	struct region **rs;
	int n;

	pthread_mutex_lock(&pd.lock);
	rs = pd.wp_async ? regions_pin(REGIONS_ASYNC, &n) : NULL;
	pthread_mutex_unlock(&pd.lock);
	for (int i = 0; rs && i < n; i++) {
		region_scan_written(rs[i], 0, rs[i]->npages - 1);
		put_region(rs[i]);
	}
	free(rs);
}

static int do_range(struct conn *c, const struct pager_range_req *m)
{
	struct region *r;
	bool claimed;
	uint64_t off;
	int ret;

	if (!c->hello)
		return -ENOTCONN;
	if (m->hdr.type == PAGER_MSG_UNMAP) {
		r = get_region(c, m->addr, 0, true);
		if (!r)
			return -EINVAL;
		/*
		 * Write back first, and keep the region when that fails: the
		 * client keeps its mapping on an error (libpager), so its
		 * data stays reachable and the unmap can be retried once the
		 * disk works again.  Released anyway, its faults would wait
		 * for ever.
		 */
		ret = r->flags & PAGER_TEMPORARY ? 0 :
		      region_sync(r, 0, r->len);
		/*
		 * Claim the release while still holding our reference: a
		 * teardown of this connection (DEAD from another connection)
		 * may claim it first, and then frees it.  Requests of one
		 * connection are serialised, so the teardown is the only
		 * other releaser; if it won, wait until it is done (r is then
		 * only compared, never dereferenced).
		 */
		pthread_mutex_lock(&pd.lock);
		r->ops--;
		pthread_cond_broadcast(&pd.cond);
		claimed = !ret && region_claim(r);
		while (!ret && !claimed && conn_find_region(c, m->addr) == r)
			pthread_cond_wait(&pd.cond, &pd.lock);
		pthread_mutex_unlock(&pd.lock);
		if (!claimed)
			return ret;
		return region_release(r, !(r->flags & PAGER_TEMPORARY));
	}
	if (m->addr % PAGE_SIZE)
		return -EINVAL;
	r = get_region(c, m->addr, m->len, false);
	if (!r)
		return -EINVAL;
	off = m->addr - r->addr;
	switch (m->hdr.type) {
	case PAGER_MSG_SYNC:
		ret = region_sync(r, off, m->len);
		break;
	case PAGER_MSG_EVICT:
		ret = region_evict(r, off, m->len);
		break;
	default:
		ret = region_prefetch(r, off, m->len);
		break;
	}
	put_region(r);
	return ret;
}

static const size_t msg_size[] = {
	[PAGER_MSG_HELLO] = sizeof(struct pager_hello),
	[PAGER_MSG_MAP] = sizeof(struct pager_map_req),
	[PAGER_MSG_UNMAP] = sizeof(struct pager_range_req),
	[PAGER_MSG_SYNC] = sizeof(struct pager_range_req),
	[PAGER_MSG_EVICT] = sizeof(struct pager_range_req),
	[PAGER_MSG_PREFETCH] = sizeof(struct pager_range_req),
	[PAGER_MSG_STATS] = sizeof(struct pager_range_req),
	[PAGER_MSG_STATS_TEXT] = sizeof(struct pager_range_req),
	[PAGER_MSG_DEAD] = sizeof(struct pager_hello),
	[PAGER_MSG_BYE] = sizeof(struct pager_msg_hdr),
};

static int do_dead(struct conn *c, const struct pager_hello *m)
{
	struct conn *target = NULL;
	bool known = false;

	pthread_mutex_lock(&pd.lock);
	for (struct list *l = pd.conns.next; l != &pd.conns; l = l->next) {
		struct conn *t = container_of(l, struct conn, node);

		if (t->hello && t->token == m->token) {
			target = t;
			break;
		}
	}
	/* released already (its socket closed first): nothing left to do */
	for (struct list *l = pd.graveyard.next; !target && !known &&
	     l != &pd.graveyard; l = l->next) {
		struct conn *t = container_of(l, struct conn, node);

		known = t->hello && t->token == m->token;
	}
	pthread_mutex_unlock(&pd.lock);
	/*
	 * Never known here: the client died while no pagerd ran, or under
	 * a pagerd that died before answering.  Its guardian then hands it
	 * over (HELLO and re-attaches, libpager's g_adopt()).
	 */
	if (!target)
		return known ? 0 : -ESRCH;
	/*
	 * A connection cannot declare itself dead (it closes instead): tearing
	 * it down here would wait forever for the reference this worker holds.
	 */
	if (target == c)
		return -EINVAL;
	/* conns are never freed while pagerd runs: target stays valid */
	pr_debug("client pid %d died, flushing its regions", target->pid);
	/* an error keeps the guardian, and the memory, until it asks again */
	return conn_teardown(target, false);
}

/*
 * Handle one message.  Returns false when the connection must be torn down.
 */
static bool handle_msg(struct conn *c)
{
	union {
		struct pager_msg_hdr hdr;
		struct pager_hello hello;
		struct pager_map_req map;
		struct pager_range_req range;
		char raw[512];
	} m;
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	int fds[MAX_FDS], nfds = 0, ret = 0;
	static char text[PAGER_MAX_MSG];
	static pthread_mutex_t text_lock = PTHREAD_MUTEX_INITIALIZER;
	bool keep = true, sent = false;
	ssize_t got;

	got = recvmsg(c->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (got < 0)
		return errno == EAGAIN || errno == EINTR;
	if (got == 0)
		return false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		     i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (nfds < MAX_FDS)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		keep = false;	/* lost descriptors: protocol is broken */
		goto out_close;
	}
	if (mh.msg_flags & MSG_TRUNC || got < (ssize_t)sizeof(m.hdr) ||
	    m.hdr.magic != PAGER_MAGIC || m.hdr.len != got ||
	    m.hdr.type >= ARRAY_SIZE(msg_size) || !msg_size[m.hdr.type] ||
	    (size_t)got != msg_size[m.hdr.type]) {
		ret = -EBADMSG;
		goto out_reply;
	}
	/*
	 * While stopping, a guardian's DEAD is still served: its answer ends
	 * the guardian and with it the dead client's memory, so it must not
	 * come before that client's teardown (which may already be writing
	 * back, from its socket closing) is done.  The flush waits for the
	 * teardown; a DEAD that comes after the flush began finds the
	 * region held by the flush, which writes it back first.
	 */
	if (pd.stopping && m.hdr.type != PAGER_MSG_STATS &&
	    m.hdr.type != PAGER_MSG_STATS_TEXT && m.hdr.type != PAGER_MSG_DEAD) {
		ret = -ESHUTDOWN;
		goto out_reply;
	}
	switch (m.hdr.type) {
	case PAGER_MSG_HELLO:
		ret = do_hello(c, &m.hello, fds, nfds);
		break;
	case PAGER_MSG_MAP:
		ret = do_map(c, &m.map, fds, nfds);
		break;
	case PAGER_MSG_UNMAP:
	case PAGER_MSG_SYNC:
	case PAGER_MSG_EVICT:
	case PAGER_MSG_PREFETCH:
		ret = nfds ? -EBADF : do_range(c, &m.range);
		break;
	case PAGER_MSG_STATS: {
		struct pager_stats st;
		struct region *r = NULL;

		memset(&st, 0, sizeof(st));
		if (m.range.addr) {
			r = get_region(c, m.range.addr, 0, false);
			if (!r) {
				ret = -EINVAL;
				break;
			}
			region_stats_prepare(r);
			stats_fill_region(r, &st);
			put_region(r);
		} else {
			stats_prepare_all();
			stats_fill_global(&st);
		}
		send_reply(c, m.hdr.seq, 0, &st, sizeof(st));
		sent = true;
		break;
	}
	case PAGER_MSG_STATS_TEXT: {
		int n;

		if (!(m.hdr.flags & PAGER_STATS_NOSCAN))
			stats_prepare_all();
		pthread_mutex_lock(&text_lock);
		n = stats_format(text, sizeof(text),
				 m.hdr.flags & PAGER_STATS_JSON);
		send_reply(c, m.hdr.seq, 0, text, n);
		pthread_mutex_unlock(&text_lock);
		sent = true;
		break;
	}
	case PAGER_MSG_DEAD:
		ret = do_dead(c, &m.hello);
		break;
	case PAGER_MSG_BYE:
		keep = false;
		break;
	}
out_reply:
	if (!sent && send_reply(c, m.hdr.seq, ret, NULL, 0))
		keep = false;
out_close:
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return keep;
}

void *server_worker(void *arg)
{
	(void)arg;
	io_self();
	for (;;) {
		struct epoll_event ev;
		struct evsrc *s;
		struct conn *c;

		if (epoll_wait(pd.epfd, &ev, 1, -1) != 1)
			continue;
		s = ev.data.ptr;
		c = s->c;
		switch (s->type) {
		case SRC_LISTEN:
			server_accept();
			arm(pd.lsock, &listen_src, EPOLL_CTL_MOD);
			break;
		case SRC_SOCK:
			if (!conn_get_user(c))
				break;
			if (handle_msg(c))
				arm(c->sock, &c->es_sock, EPOLL_CTL_MOD);
			else
				conn_teardown(c, true);
			conn_put_user(c);
			break;
		case SRC_UFFD:
			if (!conn_get_user(c))
				break;
			/* fault_event() re-arms it (maybe after polling) */
			fault_event(c, c->uffd, &c->es_uffd);
			conn_put_user(c);
			break;
		case SRC_UFFD_SYNC:
			if (!conn_get_user(c))
				break;
			fault_event(c, c->uffd_sync, &c->es_uffd_sync);
			conn_put_user(c);
			break;
		}
	}
	return NULL;
}

/*
 * SIGTERM: stop resolving faults, then write back and fsync everything.
 * Returns 0, or the last error of a write-back (the exit status says so).
 */
int server_flush_all(void)
{
	struct region **rs;
	int n = 0, err = 0;

	pthread_mutex_lock(&pd.lock);
	pd.stopping = true;
	/*
	 * Regions being released (a dead client's teardown, an UNMAP) are
	 * written back by their releaser, and skipped below: wait until
	 * that is done, or _exit() would cut their write-back short.  A
	 * release claimed after this sees our reference (r->ops) and waits
	 * for our sync of the region.
	 */
	while (pd.active_ops || pd.releasing)
		pthread_cond_wait(&pd.cond, &pd.lock);
	if (pd.release_err) {
		pr_err("write-back of a released region failed: %s",
		       strerror(-pd.release_err));
		err = pd.release_err;
	}
	rs = regions_pin(REGIONS_FLUSH, &n);
	if (!rs && pd.nr_regions)
		err = -ENOMEM;
	pthread_mutex_unlock(&pd.lock);
	for (int i = 0; i < n; i++) {
		int ret = region_sync(rs[i], 0, rs[i]->len);

		if (ret) {
			bool kept;
			uint64_t dirty;

			pr_err("flush of region %llu failed: %s",
			       (unsigned long long)rs[i]->id, strerror(-ret));
			pthread_mutex_lock(&pd.lock);
			kept = rs[i]->kept;
			dirty = rs[i]->dirty;
			pthread_mutex_unlock(&pd.lock);
			if (kept)
				pr_err("region %llu: %llu dirty pages of dead client pid %d left to its guardian, for the next pagerd",
				       (unsigned long long)rs[i]->id,
				       (unsigned long long)dirty,
				       rs[i]->conn->pid);
			err = ret;
		}
		put_region(rs[i]);
	}
	free(rs);
	pr_info("flushed %d regions%s", n, err ? " with errors" : "");
	return err;
}
