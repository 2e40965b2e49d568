// SPDX-License-Identifier: GPL-2.0
/*
 * libpager's helper thread against a scripted pagerd: the evict channel as
 * pagerd speaks it, with the requests and the timing chosen by the test.
 * A thread of the test answers the main socket (HELLO, MAP and the rest
 * with status 0) and keeps the fds a HELLO hands over; the test fills
 * pages through the uffd as pagerd would, sends DROP requests on the evict
 * channel, and closes it to play a pagerd that died.  What is checked is
 * the helper's side of the staging slots (daemon/proto.h): a move into
 * each slot, a write from a slot, a bad slot refused, and the restore
 * after pagerd's death putting the newest copy of a page back.
 *
 * Needs asynchronous write-protection (UFFD WP_ASYNC and UFFDIO_MOVE,
 * Linux 6.8): without it libpager has no staging area, and the tests skip.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"
#include "pager_test.h"
#include "../../daemon/proto.h"

#define NPAGES		8
#define SLOT_BYTES	(PAGER_STAGING_PAGES * PT_PAGE)

/* pagerd as far as the tests need it */
struct fake {
	char sock[PATH_MAX + 16];
	int lsock;
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock: */
	int hellos, maps;	/* sessions opened, MAP requests seen */
	int uffd, ev, conn;	/* of the latest session, or -1 */
	uint32_t nr_fds;
	uint64_t staging;
	uint32_t features;
};

static int recv_fds(int s, void *buf, size_t len, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 5)];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);

	*nfds = 0;
	for (cm = CMSG_FIRSTHDR(&mh); n > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS) {
			*nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cm), *nfds * sizeof(int));
		}
	return n;
}

static void reply(int s, const struct pager_msg_hdr *req, const char *text)
{
	char buf[sizeof(struct pager_reply) + 64];
	struct pager_reply *r = (struct pager_reply *)buf;
	size_t len = sizeof(*r) + (text ? strlen(text) : 0);

	memset(buf, 0, sizeof(buf));
	r->hdr.magic = PAGER_MAGIC;
	r->hdr.type = PAGER_MSG_REPLY;
	r->hdr.len = len;
	r->hdr.seq = req->seq;
	if (text)
		memcpy(buf + sizeof(*r), text, strlen(text));
	send(s, buf, len, MSG_NOSIGNAL);
}

struct fake_arg {
	struct fake *f;
	int s;
};

/* One connection: a STATS_TEXT probe, a session, or a guardian. */
static void *fake_conn(void *arg)
{
	struct fake *f = ((struct fake_arg *)arg)->f;
	int s = ((struct fake_arg *)arg)->s;
	char buf[PAGER_MAX_MSG];

	free(arg);
	for (;;) {
		struct pager_msg_hdr *h = (struct pager_msg_hdr *)buf;
		int fds[5], nfds, n = recv_fds(s, buf, sizeof(buf), fds, &nfds);

		if (n < (int)sizeof(*h))
			break;
		if (h->type == PAGER_MSG_STATS_TEXT) {
			/* libpager asks for the WP mode before its uffd */
			reply(s, h, "{\"wp_mode\": \"async\"}");
		} else if (h->type == PAGER_MSG_HELLO &&
			   n == sizeof(struct pager_hello) && nfds >= 4) {
			struct pager_hello *m = (struct pager_hello *)buf;

			pthread_mutex_lock(&f->lock);
			f->uffd = fds[0];
			f->ev = fds[3];
			f->conn = s;
			f->nr_fds = m->nr_fds;
			f->staging = m->staging;
			f->features = m->features;
			f->hellos++;
			pthread_cond_broadcast(&f->cond);
			pthread_mutex_unlock(&f->lock);
			close(fds[1]);
			close(fds[2]);
			if (nfds > 4)
				close(fds[4]);
			reply(s, h, NULL);
		} else {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			if (h->type == PAGER_MSG_MAP) {
				pthread_mutex_lock(&f->lock);
				f->maps++;
				pthread_cond_broadcast(&f->cond);
				pthread_mutex_unlock(&f->lock);
			}
			reply(s, h, NULL);
		}
	}
	close(s);
	return NULL;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		int s = accept4(f->lsock, NULL, NULL, SOCK_CLOEXEC);
		struct fake_arg *a;
		pthread_t t;

		if (s < 0)
			return NULL;	/* shut down */
		a = malloc(sizeof(*a));
		if (!a) {
			close(s);
			continue;
		}
		a->f = f;
		a->s = s;
		if (pthread_create(&t, NULL, fake_conn, a)) {
			close(s);
			free(a);
			continue;
		}
		pthread_detach(t);
	}
}

static int fake_start(struct fake *f, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->uffd = f->ev = f->conn = -1;
	snprintf(f->sock, sizeof(f->sock), "%s/sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	f->lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (f->lsock < 0 ||
	    bind(f->lsock, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(f->lsock, 8))
		return -errno;
	return -pthread_create(&f->thr, NULL, fake_main, f);
}

/* Wait until @field of @f reaches @want (10 s). */
static bool fake_wait(struct fake *f, int *field, int want)
{
	uint64_t end = pt_now_ms() + 10000;
	bool ok;

	pthread_mutex_lock(&f->lock);
	while (*field < want && pt_now_ms() < end) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	ok = *field >= want;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

/* Is the page at @addr present or swapped? */
static bool present(const void *addr)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t pm = 0;

	if (fd >= 0) {
		if (pread(fd, &pm, 8, (uintptr_t)addr / PT_PAGE * 8) != 8)
			pm = 0;
		close(fd);
	}
	return pm & (3ULL << 62);
}

/* Fill the absent page at @addr with @c, as pagerd does. */
static int fill(struct fake *f, void *addr, int c)
{
	static char buf[PT_PAGE] __attribute__((aligned(4096)));
	struct uffdio_copy cp = { .dst = (uintptr_t)addr,
				  .src = (uintptr_t)buf, .len = PT_PAGE };

	memset(buf, c, sizeof(buf));
	return ioctl(f->uffd, UFFDIO_COPY, &cp) ? -errno : 0;
}

static bool page_is(const char *p, int c)
{
	for (size_t i = 0; i < PT_PAGE; i++)
		if (p[i] != (char)c)
			return false;
	return true;
}

static uint32_t drop_seq;

static int drop_send(struct fake *f, uint16_t flags, uint32_t slot,
		     const void *addr, size_t len)
{
	struct pager_drop d;

	memset(&d, 0, sizeof(d));
	d.hdr.magic = PAGER_MAGIC;
	d.hdr.type = PAGER_MSG_DROP;
	d.hdr.len = sizeof(d);
	d.hdr.seq = ++drop_seq;
	d.hdr.flags = flags;
	d.slot = slot;
	d.nr = len ? 1 : 0;
	d.r[0].addr = (uintptr_t)addr;
	d.r[0].len = len;
	return send(f->ev, &d, sizeof(d), MSG_NOSIGNAL) == sizeof(d) ? 0 : -1;
}

/* A request and its answer (5 s at most); -1 if none came. */
static int drop(struct fake *f, uint16_t flags, uint32_t slot,
		const void *addr, size_t len, struct pager_drop_done *done)
{
	struct pollfd pfd = { .fd = f->ev, .events = POLLIN };

	if (drop_send(f, flags, slot, addr, len))
		return -1;
	memset(done, 0, sizeof(*done));
	if (poll(&pfd, 1, 5000) != 1 ||
	    recv(f->ev, done, sizeof(*done), 0) != sizeof(*done) ||
	    done->hdr.magic != PAGER_MAGIC ||
	    done->hdr.type != PAGER_MSG_DROP_DONE ||
	    done->hdr.seq != drop_seq)
		return -1;
	return 0;
}

FIXTURE(helper) {
	char dir[PATH_MAX];
	char file[PATH_MAX + 16];
	struct fake f;
	struct pager *p;
	char *a;
};

FIXTURE_SETUP(helper)
{
	ASSERT_EQ(0, pt_scratch(self->dir, sizeof(self->dir)));
	snprintf(self->file, sizeof(self->file), "%s/backing", self->dir);
	ASSERT_EQ(0, fake_start(&self->f, self->dir));
	self->p = pager_connect(self->f.sock);
	ASSERT_NE(NULL, self->p) TH_LOG("pager_connect: %s", strerror(errno));
	ASSERT_EQ(1, self->f.hellos);
	if (self->f.nr_fds != 5 || !self->f.staging)
		SKIP(return, "no asynchronous write-protection (uffd WP_ASYNC and UFFDIO_MOVE): libpager has no staging area");
	ASSERT_TRUE(self->f.features & PAGER_HELLO_STAGING_SLOTS);
	ASSERT_TRUE(self->f.features & PAGER_HELLO_HELPER_WRITE);
	ASSERT_TRUE(self->f.features & PAGER_HELLO_RESTORE);
	self->a = pager_map(self->p, NPAGES * PT_PAGE, self->file, 0);
	ASSERT_NE(NULL, self->a) TH_LOG("pager_map: %s", strerror(errno));
}

FIXTURE_TEARDOWN(helper)
{
	if (self->p)
		pager_disconnect(self->p);
	shutdown(self->f.lsock, SHUT_RDWR);
	pthread_join(self->f.thr, NULL);
	close(self->f.lsock);
	if (self->f.uffd >= 0)
		close(self->f.uffd);
	if (self->f.ev >= 0)
		close(self->f.ev);
	pt_rmrf(self->dir);
}

/*
 * One page in both slots: moved to slot 0, refilled with newer content,
 * moved to slot 1, then pagerd "dies" with slot 0 never released (as
 * after a failed move).  The restore must put the newer copy back: slots
 * go back newest batch first, and the older copy then finds the page
 * taken.  In slot order the stale copy would win.
 */
TEST_F_TIMEOUT(helper, restore_newest_first, 60)
{
	char *pg = self->a + PT_PAGE;
	struct pager_drop_done d;

	ASSERT_EQ(0, fill(&self->f, pg, 'A'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE, 0, pg, PT_PAGE, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_EQ(PT_PAGE, d.moved);
	ASSERT_EQ(self->f.staging, d.staging);
	ASSERT_FALSE(present(pg));
	ASSERT_TRUE(present((void *)(uintptr_t)d.staging));

	ASSERT_EQ(0, fill(&self->f, pg, 'B'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE, 1, pg, PT_PAGE, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_EQ(PT_PAGE, d.moved);
	ASSERT_EQ(self->f.staging + SLOT_BYTES, d.staging);
	ASSERT_FALSE(present(pg));

	/* pagerd dies: the helper restores, then opens a new session */
	pthread_mutex_lock(&self->f.lock);
	close(self->f.ev);
	shutdown(self->f.conn, SHUT_RDWR);
	pthread_mutex_unlock(&self->f.lock);
	ASSERT_TRUE(fake_wait(&self->f, &self->f.hellos, 2));
	ASSERT_TRUE(fake_wait(&self->f, &self->f.maps, 2));

	ASSERT_TRUE(present(pg));
	ASSERT_TRUE(page_is(pg, 'B')) TH_LOG("stale copy restored: '%c'", *pg);
	/* both slots were emptied */
	ASSERT_FALSE(present((void *)(uintptr_t)self->f.staging));
	ASSERT_FALSE(present((void *)(uintptr_t)(self->f.staging +
						  SLOT_BYTES)));
}

/*
 * PAGER_DROP_RESTORE: pagerd cannot account for a batch itself (it could
 * not read it): the helper puts the slot's pages back where they came
 * from and empties the slot, leaving a page the region has again (put
 * back by pagerd, newer) alone.  A slot past the last is refused.  After
 * it, a pagerd death restores nothing stale from that slot.
 */
TEST_F_TIMEOUT(helper, restore_on_request, 60)
{
	char *pg = self->a + 3 * PT_PAGE;
	struct pager_drop_done d;

	ASSERT_EQ(0, fill(&self->f, pg, 'F'));
	ASSERT_EQ(0, fill(&self->f, pg + PT_PAGE, 'G'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE, 1, pg, 2 * PT_PAGE, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_EQ(2 * PT_PAGE, d.moved);
	ASSERT_FALSE(present(pg));
	ASSERT_FALSE(present(pg + PT_PAGE));
	/* pagerd put the second page back itself, newer */
	ASSERT_EQ(0, fill(&self->f, pg + PT_PAGE, 'H'));

	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_RESTORE, PAGER_STAGING_SLOTS,
			  NULL, 0, &d));
	ASSERT_EQ(-EINVAL, d.status);
	ASSERT_FALSE(present(pg));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_RESTORE, 1, NULL, 0, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_TRUE(present(pg));
	ASSERT_TRUE(page_is(pg, 'F'));
	ASSERT_TRUE(page_is(pg + PT_PAGE, 'H'));
	ASSERT_FALSE(present((void *)(uintptr_t)(self->f.staging +
						  SLOT_BYTES)));
	ASSERT_FALSE(present((void *)(uintptr_t)(self->f.staging +
						  SLOT_BYTES + PT_PAGE)));

	/* the region's page is written since; a pagerd death keeps it */
	memset(pg, 'I', PT_PAGE);
	pthread_mutex_lock(&self->f.lock);
	close(self->f.ev);
	shutdown(self->f.conn, SHUT_RDWR);
	pthread_mutex_unlock(&self->f.lock);
	ASSERT_TRUE(fake_wait(&self->f, &self->f.hellos, 2));
	ASSERT_TRUE(page_is(pg, 'I'));
}

/* A slot past the last is refused and moves nothing; the helper goes on. */
TEST_F_TIMEOUT(helper, bad_slot, 60)
{
	struct pager_drop_done d;
	char *pg = self->a;

	ASSERT_EQ(0, fill(&self->f, pg, 'C'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE, PAGER_STAGING_SLOTS, pg,
			  PT_PAGE, &d));
	ASSERT_EQ(-EINVAL, d.status);
	ASSERT_EQ(0, d.moved);
	ASSERT_TRUE(present(pg));
	ASSERT_TRUE(page_is(pg, 'C'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE | PAGER_DROP_APPEND,
			  ~0U, pg, PT_PAGE, &d));
	ASSERT_EQ(-EINVAL, d.status);
	ASSERT_TRUE(page_is(pg, 'C'));
	/* a release of no slot is ignored (it has no answer) */
	ASSERT_EQ(0, drop_send(&self->f, PAGER_DROP_RELEASE,
			       PAGER_STAGING_SLOTS, NULL, 0));
	/* answered in order: the helper is alive and the slots work */
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE, 1, pg, PT_PAGE, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_EQ(PT_PAGE, d.moved);
	ASSERT_FALSE(present(pg));
}

/*
 * PAGER_DROP_WRITE from slot 1: the moved pages are in the file, written
 * says so, and a release of the slot (processed before the next request,
 * which is answered in order) frees it.
 */
TEST_F_TIMEOUT(helper, write_from_slot, 60)
{
	char *pg = self->a + 2 * PT_PAGE, buf[2 * PT_PAGE];
	struct pager_drop_done d;
	int fd;

	ASSERT_EQ(0, fill(&self->f, pg, 'D'));
	ASSERT_EQ(0, fill(&self->f, pg + PT_PAGE, 'E'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE | PAGER_DROP_WRITE, 1, pg,
			  2 * PT_PAGE, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_EQ(1, d.written);
	ASSERT_EQ(2 * PT_PAGE, d.moved);
	ASSERT_EQ(self->f.staging + SLOT_BYTES, d.staging);
	fd = open(self->file, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(buf), pread(fd, buf, sizeof(buf), 2 * PT_PAGE));
	close(fd);
	ASSERT_TRUE(page_is(buf, 'D'));
	ASSERT_TRUE(page_is(buf + PT_PAGE, 'E'));
	ASSERT_TRUE(present((void *)(uintptr_t)d.staging));

	ASSERT_EQ(0, drop_send(&self->f, PAGER_DROP_RELEASE, 1, NULL, 0));
	ASSERT_EQ(0, fill(&self->f, self->a, 'F'));
	ASSERT_EQ(0, drop(&self->f, PAGER_DROP_MOVE, 0, self->a, PT_PAGE, &d));
	ASSERT_EQ(0, d.status);
	ASSERT_FALSE(present((void *)(uintptr_t)(self->f.staging +
						  SLOT_BYTES)));
	ASSERT_TRUE(present((void *)(uintptr_t)self->f.staging));
}

TEST_HARNESS_MAIN
