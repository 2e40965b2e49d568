// SPDX-License-Identifier: GPL-2.0
/*
 * The dtrack module itself under the tests' hands ($DTRACK_KO): unloaded
 * while trackers of every method are live on running processes, and
 * reloaded with a tiny wpfault log to overflow it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "dt_util.h"

/* ---- module unload with live trackers ---------------------------------- */

FIXTURE(unload)
{
	struct dt_target tgt;
	bool params;		/* loaded with test parameters */
};

FIXTURE_SETUP(unload)
{
	memset(&self->tgt, 0, sizeof(self->tgt));
	self->params = false;
}

FIXTURE_TEARDOWN(unload)
{
	int err;

	if (self->tgt.pid > 0)
		dt_target_kill(&self->tgt);
	if (self->params)
		dt_unload();	/* back to the default parameters */
	err = dt_ensure_loaded();
	if (err)
		TH_LOG("cannot load the module back: %s", strerror(-err));
}

TEST_F_TIMEOUT(unload, with_live_trackers, 120)
{
	const uint32_t all[] = { DTRACK_METHOD_SOFTDIRTY,
		DTRACK_METHOD_WPFAULT, DTRACK_METHOD_HWDIRTY,
		DTRACK_METHOD_ACCESSED };
	uint8_t *every;
	struct dt_tracker t;
	struct dt_version v;
	struct dt_collect c;
	uint32_t ids[16], id;
	size_t i, nr = 0;
	struct dt_nl nl;
	char why[256], *mine;
	const char *unsafe;
	int err;

	if (!dt_ko_path())
		SKIP(return, "DTRACK_KO not set: no module file to reload");
	unsafe = dt_reload_unsafe();
	if (unsafe)
		SKIP(return, "%s", unsafe);
	ASSERT_EQ(0, dt_open(&nl, &v));
	if (!dt_any_method(&nl, &v, why, sizeof(why)))
		SKIP(return, "%s", why);
	ASSERT_EQ(0, dt_target_start(&self->tgt, DT_ANON, 1UL << 20, NULL));
	mine = mmap(NULL, 64 * PAGE_SZ, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mine);
	memset(mine, 1, 64 * PAGE_SZ);

	/*
	 * every available method, persistent or not, on another process
	 * and on ourselves; each reset once so that its protections are on
	 */
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (dt_method_check(&nl, &v, all[i], why, sizeof(why)))
			continue;
		ASSERT_EQ(0, dt_create(&nl, self->tgt.pid, self->tgt.addr,
				       self->tgt.len, all[i], 0, &ids[nr++]));
		ASSERT_EQ(0, dt_create(&nl, self->tgt.pid, self->tgt.addr,
				       self->tgt.len, all[i],
				       DTRACK_F_PERSISTENT, &ids[nr++]));
		ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)mine,
				       64 * PAGE_SZ, all[i], 0, &ids[nr++]));
	}
	for (i = 0; i < nr; i++) {
		ASSERT_EQ(0, dt_collect(&nl, ids[i], DTRACK_COLLECT_RESET, &c));
		dt_collect_free(&c);
	}

	err = dt_unload();
	ASSERT_EQ(0, err) {
		TH_LOG("delete_module with %zu live trackers: %s", nr,
		       strerror(-err));
	}
	EXPECT_FALSE(dt_loaded());
	/* the tracked processes keep writing as if nothing happened */
	every = malloc(self->tgt.npages);
	ASSERT_NE(NULL, every);
	memset(every, 1, self->tgt.npages);
	EXPECT_EQ(0, dt_target_write(&self->tgt, every));
	for (i = 0; i < 64; i++)
		dt_touch(mine, i);
	for (i = 0; i < 64; i++)
		EXPECT_EQ(2, mine[i * PAGE_SZ + i % 128]);
	free(every);

	/* back again: a clean slate that works */
	ASSERT_EQ(0, dt_load());
	dt_nl_close(&nl);
	ASSERT_EQ(0, dt_open(&nl, &v));
	EXPECT_EQ(0, dt_count_trackers(&nl));
	for (i = 0; i < nr; i++)
		EXPECT_EQ(-ENOENT, dt_get_tracker(&nl, ids[i], &t));
	ASSERT_EQ(0, dt_create(&nl, self->tgt.pid, self->tgt.addr,
			       self->tgt.len, dt_any_method(&nl, &v, why,
							 sizeof(why)),
			       0, &id));
	EXPECT_EQ(0, dt_destroy(&nl, id));
	dt_nl_close(&nl);
	munmap(mine, 64 * PAGE_SZ);
}

/*
 * The wpfault log overflows: the module is reloaded with a 64-entry log,
 * then 100 pages are written in one epoch.  The overflow is reported (event,
 * stats) and no write is lost; the next epoch is exact again.
 */
TEST_F_TIMEOUT(unload, wpfault_log_overflow, 60)
{
	const size_t npages = 1024, nwrites = 100;
	size_t first = 0, i;
	uint8_t want[1024], got[1024];
	struct dt_nl nl, ev;
	struct dt_tracker t;
	struct dt_version v;
	struct dt_collect c;
	uint64_t outside;
	char why[256], *p;
	uint32_t id;
	const char *unsafe;
	int err;

	if (!dt_ko_path())
		SKIP(return, "DTRACK_KO not set: cannot reload with a small log");
	unsafe = dt_reload_unsafe();
	if (unsafe)
		SKIP(return, "%s", unsafe);
	ASSERT_EQ(0, dt_open(&nl, &v));
	err = dt_method_check(&nl, &v, DTRACK_METHOD_WPFAULT, why,
			      sizeof(why));
	dt_nl_close(&nl);
	if (err == -EOPNOTSUPP)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, dt_unload());
	self->params = true;
	err = dt_load_params("log_entries=64");
	if (err == -EINVAL || err == -ENOENT)
		SKIP(return, "module has no log_entries parameter");
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, dt_open(&nl, &v));
	ASSERT_EQ(0, dt_events_open(&ev));

	p = mmap(NULL, npages * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, npages * PAGE_SZ);
	ASSERT_EQ(0, dt_create(&nl, getpid(), (uintptr_t)p, npages * PAGE_SZ,
			       DTRACK_METHOD_WPFAULT, 0, &id));
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &t));
	if (t.stats.has & DT_HAS(DTRACK_STAT_A_LOG_SIZE))
		EXPECT_EQ(64, t.stats.log_size);
	ASSERT_EQ(0, dt_collect(&nl, id, DTRACK_COLLECT_RESET, &c));
	dt_collect_free(&c);

	memset(want, 0, sizeof(want));
	for (i = 0; i < nwrites; i++) {
		want[(i * 7) % npages] = 1;
		dt_touch(p, (i * 7) % npages);
	}
	ASSERT_EQ(0, dt_collect_map(&nl, id, DTRACK_COLLECT_RESET,
				    (uintptr_t)p, npages, got, &outside, &c));
	EXPECT_EQ(0, dt_missing(want, got, npages, &first)) {
		TH_LOG("log overflowed: page %zu lost", first);
	}
	EXPECT_EQ(0, outside);
	EXPECT_EQ(0, dt_wait_event(&ev, DTRACK_EVENT_LOG_OVERFLOW, id, 5000));
	ASSERT_EQ(0, dt_get_tracker(&nl, id, &t));
	EXPECT_LE(1, t.stats.log_overflows);

	/* the next epoch fits the log: exact again */
	memset(want, 0, sizeof(want));
	want[3] = want[500] = 1;
	dt_touch(p, 3);
	dt_touch(p, 500);
	ASSERT_EQ(0, dt_collect_map(&nl, id, DTRACK_COLLECT_RESET,
				    (uintptr_t)p, npages, got, &outside, &c));
	EXPECT_EQ(0, dt_missing(want, got, npages, &first));
	EXPECT_EQ(0, dt_extra(want, got, npages));
	EXPECT_FALSE(c.result_flags & DTRACK_RESULT_CONSERVATIVE);
	dt_destroy(&nl, id);
	dt_nl_close(&ev);
	dt_nl_close(&nl);
	munmap(p, npages * PAGE_SZ);
}

TEST_HARNESS_MAIN
