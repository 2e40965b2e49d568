// SPDX-License-Identifier: GPL-2.0
/*
 * The dtrack interface as users and attackers meet it: every bad input is
 * refused with its errno and an extack message and changes nothing; an
 * unprivileged user can neither track another user's process nor read
 * another's trackers; limits; tracker lifetime (socket close, persistence,
 * target exit during collect, unmapping) with its events.  The module
 * reloads are in module_test, the CLI in cli_test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "dt_util.h"

FIXTURE(slow)
{
	int unused;
};

FIXTURE_SETUP(slow)
{
}

FIXTURE_TEARDOWN(slow)
{
}

/* ---- bad inputs -------------------------------------------------------- */

/* attributes a create request carries */
enum {
	F_PID = 1, F_ADDR = 2, F_LEN = 4, F_METHOD = 8, F_FLAGS = 16,
	F_PID64 = 32, F_UNKNOWN = 64,
};
#define F_ALL (F_PID | F_ADDR | F_LEN | F_METHOD)

struct create_case {
	const char *what;
	unsigned int attrs;
	uint32_t pid;		/* 0: our pid, 1: a dead pid, else as is */
	int64_t addr_off;	/* added to the region's address */
	uint64_t addr;		/* absolute when addr_off == INT64_MIN */
	uint64_t len;
	uint32_t method;	/* 0: the available one */
	uint32_t flags;
	int err[3];
};

#define ABS INT64_MIN
#define DEAD_PID 1
#define ZERO_PID 2

static uint32_t created;

static int created_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};

	(void)data;
	if (!dt_parse(nlh, tb) && tb[DTRACK_A_TRACKER_ID])
		created = mnl_attr_get_u32(tb[DTRACK_A_TRACKER_ID]);
	return MNL_CB_OK;
}

static int raw_create(struct dt_nl *nl, const struct create_case *cc,
		      uint32_t pid, uint64_t addr, uint32_t method)
{
	struct nlmsghdr *nlh;

	nlh = dt_nl_request(nl, DTRACK_CMD_CREATE, NLM_F_ACK);
	if (cc->attrs & F_PID)
		mnl_attr_put_u32(nlh, DTRACK_A_PID, pid);
	if (cc->attrs & F_PID64)
		mnl_attr_put_u64(nlh, DTRACK_A_PID, pid);
	if (cc->attrs & F_ADDR)
		mnl_attr_put_u64(nlh, DTRACK_A_ADDR, addr);
	if (cc->attrs & F_LEN)
		mnl_attr_put_u64(nlh, DTRACK_A_LEN, cc->len);
	if (cc->attrs & F_METHOD)
		mnl_attr_put_u32(nlh, DTRACK_A_METHOD, method);
	if (cc->attrs & F_FLAGS)
		mnl_attr_put_u32(nlh, DTRACK_A_FLAGS, cc->flags);
	if (cc->attrs & F_UNKNOWN)
		mnl_attr_put_u32(nlh, DTRACK_A_MAX + 7, 1);
	created = 0;
	return dt_nl_talk(nl, nlh, created_cb, NULL);
}

/*
 * Kernels before 6.2 drop the extack message set by a dump's .start
 * callback (seen on Debian 6.1): the errno still comes, the text cannot.
 */
static bool dump_extack_supported(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return true;
	return major > 6 || (major == 6 && minor >= 2);
}

#define EXPECT_DUMP_EXTACK(nl) do {					\
	if (dump_extack_supported()) {					\
		EXPECT_NE(0, strlen((nl).extack));			\
	} else if (!(nl).extack[0]) {					\
		TH_LOG("no extack on a refused dump (old kernel)");	\
	}								\
} while (0)

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	dt_wait_child(pid);
	return pid;
}

TEST(bad_inputs_change_nothing)
{
	const size_t npages = 16;
	const struct create_case cases[] = {
		{ "unknown create flag", F_ALL | F_FLAGS, 0, 0, 0, 16 * PAGE_SZ,
		  0, 1U << 31, { EINVAL } },
		{ "next create flag", F_ALL | F_FLAGS, 0, 0, 0, 16 * PAGE_SZ,
		  0, DTRACK_F_ALL + 1, { EINVAL } },
		{ "dead pid", F_ALL, DEAD_PID, 0, 0, 16 * PAGE_SZ, 0, 0,
		  { ESRCH } },
		{ "pid 0", F_ALL, ZERO_PID, 0, 0, 16 * PAGE_SZ, 0, 0,
		  { ESRCH, EINVAL, ERANGE } },
		{ "pid beyond pid_max", F_ALL, 0x7ffffff0, 0, 0, 16 * PAGE_SZ,
		  0, 0, { ESRCH } },
		{ "unaligned address", F_ALL, 0, 1, 0, 15 * PAGE_SZ, 0, 0,
		  { EINVAL } },
		{ "unaligned length", F_ALL, 0, 0, 0, PAGE_SZ + 1, 0, 0,
		  { EINVAL } },
		{ "zero length", F_ALL, 0, 0, 0, 0, 0, 0, { EINVAL } },
		{ "wrapping range", F_ALL, 0, ABS, 0xfffffffffffff000ULL,
		  0x2000, 0, 0, { EINVAL, EOVERFLOW } },
		{ "huge length", F_ALL, 0, 0, 0, 0xfffffffffffff000ULL, 0, 0,
		  { EINVAL, EOVERFLOW, E2BIG } },
		{ "kernel address", F_ALL, 0, ABS, 0xffff888000000000ULL,
		  PAGE_SZ, 0, 0, { EINVAL, EFAULT } },
		{ "no mapping in range", F_ALL, 0, -(int64_t)(64 * PAGE_SZ),
		  0, 16 * PAGE_SZ, 0, 0, { ENOMEM } },
		{ "method 0", F_ALL, 0, 0, 0, 16 * PAGE_SZ, 0xffff0000, 0,
		  { EINVAL, ERANGE } },
		{ "method past the last", F_ALL, 0, 0, 0, 16 * PAGE_SZ,
		  DTRACK_METHOD_MAX + 1, 0, { EINVAL, ERANGE, EOPNOTSUPP } },
		{ "missing pid", F_ALL & ~F_PID, 0, 0, 0, 16 * PAGE_SZ, 0, 0,
		  { EINVAL } },
		{ "missing length", F_ALL & ~F_LEN, 0, 0, 0, 16 * PAGE_SZ, 0,
		  0, { EINVAL } },
		{ "missing method", F_ALL & ~F_METHOD, 0, 0, 0, 16 * PAGE_SZ,
		  0, 0, { EINVAL } },
		{ "pid as u64", (F_ALL & ~F_PID) | F_PID64, 0, 0, 0,
		  16 * PAGE_SZ, 0, 0, { EINVAL, ERANGE } },
		{ "unknown attribute", F_ALL | F_UNKNOWN, 0, 0, 0,
		  16 * PAGE_SZ, 0, 0, { EINVAL } },
	};
	struct dt_tracker before, after;
	struct dt_version v, v2;
	struct nlmsghdr *nlh;
	struct dt_collect c;
	uint32_t method, id;
	char why[256], *p, *hole;
	pid_t dead = dead_pid();
	struct dt_nl nl;
	int count, err;
	size_t i;

	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);

	/* a hole of 64 pages right below the region */
	hole = mmap(NULL, (64 + npages) * PAGE_SZ, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, 64 * PAGE_SZ));
	p = hole + 64 * PAGE_SZ;
	memset(p, 1, npages * PAGE_SZ);

	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, npages * PAGE_SZ,
			       method, 0, &id));
	count = dt_count_trackers(&nl);
	ASSERT_LE(1, count);
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &before));
	ASSERT_EQ(0, dt_get_version(&nl, &v));

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct create_case *cc = &cases[i];
		uint32_t pid = cc->pid == 0 ? (uint32_t)getpid() :
			       cc->pid == DEAD_PID ? (uint32_t)dead :
			       cc->pid == ZERO_PID ? 0 : cc->pid;
		uint64_t addr = cc->addr_off == ABS ? cc->addr :
				(uintptr_t)p + cc->addr_off;
		uint32_t m = cc->method == 0 ? method :
			     cc->method == 0xffff0000 ? 0 : cc->method;

		err = raw_create(&nl, cc, pid, addr, m);
		EXPECT_TRUE(dt_errno_in(err, cc->err, 3)) {
			TH_LOG("create with %s: got %d (%s), want %s", cc->what,
			       err, strerror(-err), strerror(cc->err[0]));
		}
		EXPECT_NE(0, strlen(nl.extack)) {
			TH_LOG("create with %s: no extack message", cc->what);
		}
		if (!err && created) {
			/* it was created after all: do not leak it */
			dt_destroy(&nl, created);
			created = 0;
		}
	}

	/* collect: unknown flags, unknown ids, missing id */
	err = dt_collect(&nl, id, 1U << 30, &c);
	EXPECT_EQ(-EINVAL, err);
	EXPECT_DUMP_EXTACK(nl);
	err = dt_collect(&nl, 0x7ffffff0, DTRACK_COLLECT_RESET, &c);
	EXPECT_EQ(-ENOENT, err);
	EXPECT_DUMP_EXTACK(nl);
	nlh = dt_nl_request(&nl, DTRACK_CMD_COLLECT, NLM_F_DUMP);
	EXPECT_EQ(-EINVAL, dt_nl_talk(&nl, nlh, NULL, NULL));
	EXPECT_DUMP_EXTACK(nl);
	/* destroy / get of an unknown id, and of id 0 */
	EXPECT_EQ(-ENOENT, dt_destroy(&nl, 0x7ffffff0));
	EXPECT_NE(0, strlen(nl.extack));
	EXPECT_EQ(-ENOENT, dt_get_tracker(&nl, 0x7ffffff0, &after));
	err = dt_destroy(&nl, 0);
	EXPECT_TRUE(err == -EINVAL || err == -ERANGE || err == -ENOENT) {
		TH_LOG("destroy of id 0: %s", strerror(-err));
	}
	nlh = dt_nl_request(&nl, DTRACK_CMD_DESTROY, NLM_F_ACK);
	EXPECT_EQ(-EINVAL, dt_nl_talk(&nl, nlh, NULL, NULL));

	/* nothing changed: same trackers, same state of the good one */
	EXPECT_EQ(count, dt_count_trackers(&nl));
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &after));
	EXPECT_EQ(before.stats.epoch, after.stats.epoch);
	EXPECT_EQ(before.stats.collects, after.stats.collects);
	EXPECT_EQ(before.stats.resets, after.stats.resets);
	ASSERT_EQ(0, dt_get_version(&nl, &v2));
	if (v.has & DT_HAS(DTRACK_A_NR_TRACKERS))
		EXPECT_EQ(v.nr_trackers, v2.nr_trackers);
	if (v.has & DT_HAS(DTRACK_A_NR_PAGES))
		EXPECT_EQ(v.nr_pages, v2.nr_pages);

	EXPECT_EQ(0, dt_destroy(&nl, id));
	EXPECT_EQ(count - 1, dt_count_trackers(&nl));
	dt_nl_close(&nl);
	munmap(p, npages * PAGE_SZ);
}

/* ---- limits ------------------------------------------------------------ */

#define PARAM "/sys/module/dtrack/parameters/"

static long read_param(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), PARAM "%s", name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int write_param(const char *name, long v)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), PARAM "%s", name);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", v) > 0 ? 0 : -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/* The limits are lowered through the module's writable parameters. */
FIXTURE(limits)
{
	long max_trackers;
	long max_pages;
};

FIXTURE_SETUP(limits)
{
	self->max_trackers = read_param("max_trackers");
	self->max_pages = read_param("max_pages");
}

FIXTURE_TEARDOWN(limits)
{
	if (self->max_trackers > 0)
		write_param("max_trackers", self->max_trackers);
	if (self->max_pages > 0)
		write_param("max_pages", self->max_pages);
}

TEST_F(limits, enforced_and_reported)
{
	struct dt_version v, v2;
	struct dt_tracker t;
	uint32_t method, ids[8], id;
	char why[256], *p;
	struct dt_nl nl;
	uint32_t n, i;
	int err = 0;

	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);
	p = mmap(NULL, 64 * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, 64 * PAGE_SZ);

	/* the per-tracker page limit, as reported in stats */
	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, PAGE_SZ, method,
			       0, &id));
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &t));
	ASSERT_EQ(0, dt_destroy(&nl, id));
	ASSERT_TRUE(t.stats.has & DT_HAS(DTRACK_STAT_A_MAX_PAGES));
	err = dt_create(&nl, getpid(), (uintptr_t)p,
			(t.stats.max_pages + 1) * PAGE_SZ, method, 0, &id);
	EXPECT_EQ(-E2BIG, err) {
		TH_LOG("tracker of max_pages + 1 = %llu pages: %s",
		       (unsigned long long)t.stats.max_pages + 1,
		       strerror(-err));
	}
	EXPECT_NE(0, strlen(nl.extack));

	/* the global limits, as reported by GET_VERSION */
	ASSERT_TRUE(v.has & DT_HAS(DTRACK_A_MAX_TRACKERS));
	ASSERT_TRUE(v.has & DT_HAS(DTRACK_A_NR_TRACKERS));
	EXPECT_EQ(self->max_trackers, v.max_trackers);
	if (self->max_trackers <= 0 ||
	    write_param("max_trackers", v.nr_trackers + 4))
		SKIP(return, "cannot lower " PARAM "max_trackers");
	for (n = 0; n < 8; n++) {
		err = dt_create(&nl, getpid(), (uintptr_t)p, PAGE_SZ, method,
				0, &ids[n]);
		if (err)
			break;
	}
	EXPECT_EQ(4, n);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_NE(0, strlen(nl.extack));
	ASSERT_EQ(0, dt_get_version(&nl, &v2));
	EXPECT_EQ(v.nr_trackers + 4, v2.max_trackers);
	EXPECT_EQ(v.nr_trackers + 4, v2.nr_trackers);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, dt_destroy(&nl, ids[i]));
	ASSERT_EQ(0, write_param("max_trackers", self->max_trackers));

	/* the global page limit */
	ASSERT_TRUE(v.has & DT_HAS(DTRACK_A_NR_PAGES));
	if (self->max_pages <= 0 ||
	    write_param("max_pages", v.nr_pages + 48))
		SKIP(return, "cannot lower " PARAM "max_pages");
	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, 32 * PAGE_SZ,
			       method, 0, &ids[0]));
	ASSERT_EQ(0, dt_get_version(&nl, &v2));
	EXPECT_EQ(v.nr_pages + 32, v2.nr_pages);
	err = dt_create(&nl, getpid(), (uintptr_t)p, 32 * PAGE_SZ, method, 0,
			&id);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_NE(0, strlen(nl.extack));
	/* what fits still fits */
	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, 16 * PAGE_SZ,
			       method, 0, &ids[1]));
	EXPECT_EQ(0, dt_destroy(&nl, ids[0]));
	EXPECT_EQ(0, dt_destroy(&nl, ids[1]));
	ASSERT_EQ(0, dt_get_version(&nl, &v2));
	EXPECT_EQ(v.nr_pages, v2.nr_pages);
	dt_nl_close(&nl);
	munmap(p, 64 * PAGE_SZ);
}

/* ---- permissions ------------------------------------------------------- */

#define REFUSE(step, cond, err) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "# as uid %d%s: %s: got %d (%s)\n",	\
			NOBODY, net_admin ? " with CAP_NET_ADMIN" : "",	\
			#cond, err, strerror(-(err)));			\
		return step;						\
	}								\
} while (0)

/*
 * As uid NOBODY: without capabilities the family refuses everything
 * (admin-only).  With CAP_NET_ADMIN the family answers, but creating a
 * tracker still needs ptrace rights over the target, and root's trackers
 * are not visible: they cannot be read, reset, destroyed or listed.
 */
static int as_nobody(bool net_admin, pid_t victim, uintptr_t addr,
		     uint32_t method, uint32_t root_id)
{
	const int denied[] = { EPERM, EACCES, ENOENT };
	struct dt_tracker *ts, t;
	struct dt_version v;
	struct dt_collect c;
	struct dt_nl nl;
	uint32_t id;
	size_t n, i;
	int err;

	if (dt_become_nobody(net_admin))
		return 10;
	if (dt_nl_open(&nl))
		return 11;
	err = dt_get_version(&nl, &v);
	REFUSE(12, net_admin ? err == 0 : err == -EPERM, err);
	/* cannot track root's process */
	err = dt_create(&nl, victim, addr, PAGE_SZ, method,
			DTRACK_F_PERSISTENT, &id);
	REFUSE(13, dt_errno_in(err, denied, 2), err);
	/* cannot read, reset, destroy or list root's tracker */
	err = dt_get_tracker(&nl, root_id, &t);
	REFUSE(14, net_admin ? dt_errno_in(err, denied, 3) : err == -EPERM,
	       err);
	err = dt_collect(&nl, root_id, DTRACK_COLLECT_RESET, &c);
	if (!err)
		dt_collect_free(&c);
	REFUSE(15, net_admin ? dt_errno_in(err, denied, 3) : err == -EPERM,
	       err);
	err = dt_destroy(&nl, root_id);
	REFUSE(16, net_admin ? dt_errno_in(err, denied, 3) : err == -EPERM,
	       err);
	err = dt_list(&nl, &ts, &n);
	REFUSE(17, net_admin ? err == 0 : err == -EPERM, err);
	if (!err) {
		for (i = 0; i < n; i++)
			REFUSE(18, ts[i].id != root_id, 0);
		free(ts);
	}
	dt_nl_close(&nl);
	/* nor watch the events of root's trackers */
	err = dt_events_open(&nl);
	if (!err)
		dt_nl_close(&nl);
	REFUSE(19, net_admin ? err == 0 : err == -EPERM, err);
	return 0;
}

TEST(unprivileged_cannot_touch_others)
{
	struct dt_tracker before, after;
	struct dt_target tgt;
	struct dt_version v;
	uint32_t method, id;
	struct dt_nl nl;
	char why[256];
	int pass;

	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);
	/* a root process with a tracker on it */
	ASSERT_EQ(0, dt_target_start(&tgt, DT_ANON, 8 * PAGE_SZ, NULL));
	ASSERT_EQ(0, dt_create(&nl, tgt.pid, tgt.addr, tgt.len, method, 0,
			       &id));
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &before));

	for (pass = 0; pass < 2; pass++) {
		bool net_admin = pass == 1;
		pid_t pid = fork();
		int st;

		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(as_nobody(net_admin, tgt.pid, tgt.addr, method,
					id));
		st = dt_wait_child(pid);
		EXPECT_EQ(0, st) {
			TH_LOG("uid %d%s: step %d failed (10 setuid, 11 open, 12 version, 13 create on root's process, 14 get, 15 collect, 16 destroy, 17-18 list, 19 events)",
			       NOBODY, net_admin ? " with CAP_NET_ADMIN" : "",
			       st);
		}
	}
	/* root's tracker is untouched */
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &after));
	EXPECT_EQ(before.stats.epoch, after.stats.epoch);
	EXPECT_EQ(before.stats.collects, after.stats.collects);
	EXPECT_EQ(0, dt_destroy(&nl, id));
	dt_target_kill(&tgt);
	dt_nl_close(&nl);
}

/* ---- lifetime and events ----------------------------------------------- */

TEST(socket_close_and_persistence)
{
	struct dt_nl nl, owner, ev;
	struct dt_tracker *ts, t;
	uint32_t method, a, b;
	struct dt_version v;
	bool seen = false;
	char why[256], *p;
	size_t n, i;

	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, dt_events_open(&ev));
	p = mmap(NULL, 8 * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, 8 * PAGE_SZ);

	ASSERT_EQ(0, dt_nl_open(&owner));
	ASSERT_EQ(0, dt_create(&owner, getpid(), (uintptr_t)p, 8 * PAGE_SZ,
			       method, 0, &a));
	ASSERT_EQ(0, dt_create(&owner, getpid(), (uintptr_t)p, 8 * PAGE_SZ,
			       method, DTRACK_F_PERSISTENT, &b));
	EXPECT_NE(a, b);
	/* both listed, with what they were created with */
	ASSERT_EQ(0, dt_list(&nl, &ts, &n));
	for (i = 0; i < n; i++) {
		if (ts[i].id != b)
			continue;
		seen = true;
		if (ts[i].has & DT_HAS(DTRACK_A_FLAGS))
			EXPECT_TRUE(ts[i].flags & DTRACK_F_PERSISTENT);
		if (ts[i].has & DT_HAS(DTRACK_A_ADDR))
			EXPECT_EQ((uintptr_t)p, ts[i].addr);
		if (ts[i].has & DT_HAS(DTRACK_A_PID))
			EXPECT_EQ(getpid(), ts[i].pid);
	}
	free(ts);
	EXPECT_TRUE(seen);

	/* the creator's socket closes: only the persistent one survives */
	dt_nl_close(&owner);
	EXPECT_EQ(0, dt_wait_event(&ev, DTRACK_EVENT_DESTROYED, a, 5000));
	EXPECT_EQ(-ENOENT, dt_get_tracker(&nl, a, &t));
	ASSERT_EQ(0, dt_get_tracker(&nl, b, &t));
	/* another socket destroys it */
	EXPECT_EQ(0, dt_destroy(&nl, b));
	EXPECT_EQ(0, dt_wait_event(&ev, DTRACK_EVENT_DESTROYED, b, 5000));
	EXPECT_EQ(-ENOENT, dt_get_tracker(&nl, b, &t));
	EXPECT_EQ(-ENOENT, dt_destroy(&nl, b));
	dt_nl_close(&ev);
	dt_nl_close(&nl);
	munmap(p, 8 * PAGE_SZ);
}

/*
 * DTRACK_COLLECT_BITMAP answers the same dirty set as the run list, for
 * every page-table method, across several messages: isolated pages 224
 * pages apart (a nest each) and a dense block, in a 1 GiB range.
 */
TEST_F_TIMEOUT(slow, bitmap_answer_matches_runs, 120)
{
	static const uint32_t methods[] = {
		DTRACK_METHOD_SOFTDIRTY, DTRACK_METHOD_WPFAULT,
		DTRACK_METHOD_HWDIRTY,
	};
	const size_t len = 1UL << 30, npages = len / PAGE_SZ;
	struct dt_collect runs, bm, rst;
	struct dt_version v;
	struct dt_nl nl;
	size_t m, i, want;
	char why[256];
	uint32_t id;
	char *p;

	ASSERT_EQ(0, dt_open(&nl, &v));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	madvise(p, len, MADV_NOHUGEPAGE);
	for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		if (dt_method_check(&nl, &v, methods[m], why, sizeof(why))) {
			TH_LOG("%s: %s", dt_method_name(methods[m]), why);
			continue;
		}
		ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, len,
				       methods[m], 0, &id));
		ASSERT_EQ(0, dt_collect(&nl, id, DTRACK_COLLECT_RESET, &rst));
		dt_collect_free(&rst);
		want = 0;
		for (i = 0; i + 4000 < npages; i += 224, want++)
			p[i * PAGE_SZ] = 1;
		for (i = npages - 4000; i < npages - 3; i++, want++)
			p[i * PAGE_SZ] = 2;

		ASSERT_EQ(0, dt_collect(&nl, id, 0, &runs));
		ASSERT_EQ(0, dt_collect(&nl, id, DTRACK_COLLECT_BITMAP, &bm));
		ASSERT_EQ(0, dt_collect(&nl, id,
					DTRACK_COLLECT_RESET | DTRACK_COLLECT_BITMAP,
					&rst));
		EXPECT_EQ(want, runs.pages);
		EXPECT_EQ(runs.pages, bm.pages);
		EXPECT_EQ(runs.pages, rst.pages);
		EXPECT_EQ(bm.nr_dirty, bm.pages);
		EXPECT_FALSE(bm.unordered);
		EXPECT_LT(1, bm.nr_msgs);
		ASSERT_EQ(runs.nr_runs, bm.nr_runs);
		ASSERT_EQ(runs.nr_runs, rst.nr_runs);
		for (i = 0; i < runs.nr_runs; i++) {
			EXPECT_EQ(runs.runs[i].addr, bm.runs[i].addr);
			EXPECT_EQ(runs.runs[i].pages, bm.runs[i].pages);
			EXPECT_EQ(runs.runs[i].addr, rst.runs[i].addr);
			EXPECT_EQ(runs.runs[i].pages, rst.runs[i].pages);
		}
		dt_collect_free(&runs);
		dt_collect_free(&bm);
		dt_collect_free(&rst);
		/* a clean epoch answers no nest at all */
		ASSERT_EQ(0, dt_collect(&nl, id, DTRACK_COLLECT_BITMAP, &bm));
		EXPECT_EQ(0, bm.pages);
		EXPECT_EQ(0, bm.nr_runs);
		dt_collect_free(&bm);
		EXPECT_EQ(0, dt_destroy(&nl, id));
		/* untouched again for the next method */
		ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	}
	munmap(p, len);
	dt_nl_close(&nl);
}

TEST(unmap_ends_tracker)
{
	struct dt_version v;
	struct dt_collect c;
	struct dt_nl nl, ev;
	uint32_t method, id;
	char why[256], *p;
	int err;

	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, dt_events_open(&ev));
	p = mmap(NULL, 32 * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, 32 * PAGE_SZ);
	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, 32 * PAGE_SZ,
			       method, 0, &id));
	/* unmapping a part keeps it alive */
	ASSERT_EQ(0, munmap(p, 16 * PAGE_SZ));
	ASSERT_EQ(0, dt_collect(&nl, id, DTRACK_COLLECT_RESET, &c));
	dt_collect_free(&c);
	EXPECT_EQ(-ETIMEDOUT, dt_wait_event(&ev, DTRACK_EVENT_UNMAPPED, id,
					   300));
	/* unmapping the rest ends it */
	ASSERT_EQ(0, munmap(p + 16 * PAGE_SZ, 16 * PAGE_SZ));
	err = dt_collect(&nl, id, DTRACK_COLLECT_RESET, &c);
	if (!err)
		dt_collect_free(&c);
	EXPECT_EQ(0, dt_wait_event(&ev, DTRACK_EVENT_UNMAPPED, id, 5000));
	EXPECT_EQ(0, dt_wait_ended(&nl, id, 2000));
	dt_destroy(&nl, id);
	dt_nl_close(&ev);
	dt_nl_close(&nl);
}

struct killer {
	pid_t pid;
	long delay_us;
};

static void *killer_fn(void *arg)
{
	struct killer *k = arg;
	struct timespec ts = { k->delay_us / 1000000,
			       (k->delay_us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
	kill(k->pid, SIGKILL);
	return NULL;
}

TEST_F_TIMEOUT(slow, target_exit_during_collect, 120)
{
	static const long delays_us[] = { 0, 3000, 20000, 100000 };
	const int ok_errs[] = { ESRCH, ENOENT };
	struct dt_version v;
	struct dt_nl nl, ev;
	uint32_t method;
	char why[256];
	size_t r;

	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, dt_events_open(&ev));

	for (r = 0; r < sizeof(delays_us) / sizeof(delays_us[0]); r++) {
		struct killer k = { .delay_us = delays_us[r] };
		struct dt_target tgt;
		struct dt_collect c;
		pthread_t thr;
		uint32_t id;
		int i, err = 0, st;

		ASSERT_EQ(0, dt_target_start(&tgt, DT_ANON, 16UL << 20, NULL));
		ASSERT_EQ(0, dt_create(&nl, tgt.pid, tgt.addr, tgt.len,
				       method, 0, &id));
		k.pid = tgt.pid;
		ASSERT_EQ(0, pthread_create(&thr, NULL, killer_fn, &k));
		/* collect while it dies: an answer or a clean error */
		for (i = 0; i < 2000; i++) {
			err = dt_collect(&nl, id, DTRACK_COLLECT_RESET, &c);
			if (err)
				break;
			dt_collect_free(&c);
			if (kill(tgt.pid, 0) && errno == ESRCH && i > 2)
				break;
		}
		pthread_join(thr, NULL);
		EXPECT_TRUE(!err || dt_errno_in(err, ok_errs, 2)) {
			TH_LOG("round %zu: collect failed with %s (%s)", r,
			       strerror(-err), nl.extack);
		}
		st = dt_wait_child(tgt.pid);
		EXPECT_EQ(128 + SIGKILL, st);
		tgt.pid = 0;
		dt_target_kill(&tgt);
		EXPECT_EQ(0, dt_wait_event(&ev, DTRACK_EVENT_TARGET_EXIT, id,
					   5000)) {
			TH_LOG("round %zu: no TARGET_EXIT event for tracker %u",
			       r, id);
		}
		EXPECT_EQ(0, dt_wait_ended(&nl, id, 2000));
		/* a collect after the exit answers or refuses, promptly */
		err = dt_collect(&nl, id, 0, &c);
		if (!err)
			dt_collect_free(&c);
		EXPECT_TRUE(!err || dt_errno_in(err, ok_errs, 2));
		dt_destroy(&nl, id);
	}
	dt_nl_close(&ev);
	dt_nl_close(&nl);
}

TEST_HARNESS_MAIN
