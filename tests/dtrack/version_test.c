// SPDX-License-Identifier: GPL-2.0
/*
 * Foundation tests of the dtrack module: the version over generic netlink,
 * repeated unload/reload, many concurrent clients, and the admin-only rule.
 * Run in the test VM with the module loaded ($DTRACK_KO: the module file).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "dt_util.h"

#define RELOADS		20
#define CLIENTS		32
#define REQUESTS	200

/* Run a command, capturing stdout and stderr; returns its exit status. */
static int run_capture(const char *cmd, char *out, size_t out_len)
{
	char line[512];
	size_t used = 0;
	FILE *p;
	int status;

	p = popen(cmd, "r");
	if (!p)
		return -errno;
	out[0] = '\0';
	while (fgets(line, sizeof(line), p)) {
		size_t n = strlen(line);

		if (used + n < out_len) {
			memcpy(out + used, line, n + 1);
			used += n;
		}
	}
	status = pclose(p);
	if (status < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool cli_available(void)
{
	return !system("command -v dtrack >/dev/null 2>&1");
}

static int read_sys_version(char *buf, size_t len)
{
	FILE *f = fopen("/sys/module/dtrack/version", "re");

	if (!f)
		return -errno;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

TEST(version_over_netlink)
{
	char sysver[64], out[4096], want[128];
	struct dt_version v;
	struct dt_nl nl;
	int ret;

	ASSERT_EQ(0, dt_open(&nl, &v)) {
		TH_LOG("module not answering GET_VERSION: %s", nl.extack);
	}
	/* the family speaks the UAPI we were built with */
	EXPECT_EQ(DTRACK_GENL_VERSION, v.uapi_version);
	EXPECT_EQ(DTRACK_GENL_VERSION, nl.family_version);
	EXPECT_TRUE(v.has & DT_HAS(DTRACK_A_VERSION));
	EXPECT_NE(0, strlen(v.version));
	/* the events group the CLI's watch needs exists */
	EXPECT_NE(0, nl.events_grp);
	/* and the version is the one modinfo/sysfs show */
	ret = read_sys_version(sysver, sizeof(sysver));
	if (ret == 0) {
		EXPECT_STREQ(sysver, v.version);
	} else {
		TH_LOG("/sys/module/dtrack/version unreadable: %s",
		       strerror(-ret));
	}
	dt_nl_close(&nl);

	/* the CLI prints the same three versions */
	if (!cli_available()) {
		TH_LOG("dtrack CLI not on PATH: CLI output not checked");
		return;
	}
	ASSERT_EQ(0, run_capture("dtrack version 2>&1", out, sizeof(out)));
	snprintf(want, sizeof(want), "module %s\n", v.version);
	EXPECT_NE(NULL, strstr(out, want)) {
		TH_LOG("'dtrack version' said: %s", out);
	}
	snprintf(want, sizeof(want), "uapi %u\n", DTRACK_GENL_VERSION);
	EXPECT_NE(NULL, strstr(out, want));
	EXPECT_NE(NULL, strstr(out, "cli " DTRACK_CLI_VERSION "\n"));
}

TEST(version_many_clients)
{
	struct dt_version ref;
	pid_t pids[CLIENTS];
	struct dt_nl nl;
	int i, failed = 0;

	ASSERT_EQ(0, dt_open(&nl, &ref));
	dt_nl_close(&nl);

	for (i = 0; i < CLIENTS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			struct dt_version v;
			int r;

			/* a fresh socket per client, many requests on it */
			if (dt_nl_open(&nl))
				_exit(10);
			for (r = 0; r < REQUESTS; r++) {
				if (dt_get_version(&nl, &v))
					_exit(11);
				if (strcmp(v.version, ref.version) ||
				    v.uapi_version != ref.uapi_version)
					_exit(12);
			}
			dt_nl_close(&nl);
			_exit(0);
		}
	}
	for (i = 0; i < CLIENTS; i++) {
		int st = dt_wait_child(pids[i]);

		if (st) {
			TH_LOG("client %d failed with status %d (10 open, 11 request, 12 mismatch)",
			       i, st);
			failed++;
		}
	}
	EXPECT_EQ(0, failed);
}

/* An unprivileged user cannot use the family at all. */
TEST(nonadmin_gets_eperm)
{
	uint32_t root_id = 0;
	int root_create, st;
	struct dt_nl nl;
	struct dt_version v;
	pid_t pid;
	char *p;

	p = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	/* what root gets for CREATE tells whether the command exists yet */
	ASSERT_EQ(0, dt_open(&nl, &v));
	root_create = dt_create(&nl, getpid(), (uintptr_t)p, PAGE_SZ,
				DTRACK_METHOD_SOFTDIRTY, 0, &root_id);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct dt_nl unl;
		struct dt_version uv;
		uint32_t id;
		int err;

		if (dt_become_nobody(false))
			_exit(20);
		/* resolving the family is allowed to anyone */
		if (dt_nl_open(&unl))
			_exit(21);
		if (dt_get_version(&unl, &uv) != -EPERM)
			_exit(22);
		err = dt_create(&unl, getppid(), (uintptr_t)p, PAGE_SZ,
				DTRACK_METHOD_SOFTDIRTY, 0, &id);
		if (err != -EPERM && !(root_create == -EOPNOTSUPP &&
				       err == -EOPNOTSUPP))
			_exit(23);
		if (root_id) {
			struct dt_collect c;
			struct dt_tracker t;

			if (dt_get_tracker(&unl, root_id, &t) != -EPERM)
				_exit(24);
			if (dt_collect(&unl, root_id, DTRACK_COLLECT_RESET,
				       &c) != -EPERM)
				_exit(25);
			if (dt_destroy(&unl, root_id) != -EPERM)
				_exit(26);
		}
		dt_nl_close(&unl);
		_exit(0);
	}
	st = dt_wait_child(pid);
	EXPECT_EQ(0, st) {
		TH_LOG("as uid %d: status %d (20 setuid, 21 open, 22 version, 23 create, 24 get, 25 collect, 26 destroy)",
		       NOBODY, st);
	}
	if (root_id) {
		struct dt_tracker t;

		/* the refused requests changed nothing */
		EXPECT_EQ(0, dt_get_tracker(&nl, root_id, &t));
		EXPECT_EQ(0, dt_destroy(&nl, root_id));
	} else {
		TH_LOG("CREATE not available yet (%s): only GET_VERSION checked",
		       strerror(-root_create));
	}
	dt_nl_close(&nl);
	munmap(p, PAGE_SZ);
}

FIXTURE(module)
{
	bool skip;
};

FIXTURE_SETUP(module)
{
	self->skip = !dt_ko_path();
}

FIXTURE_TEARDOWN(module)
{
	/* never leave the guest without the module for the next tests */
	int err = dt_ensure_loaded();

	if (err)
		TH_LOG("cannot load the module back: %s", strerror(-err));
}

/*
 * Until killed (at the latest with the test, a failed assertion
 * included): take page faults, as the rest of a live system does.
 */
static void fault_forever(pid_t parent)
{
	size_t len = 4UL << 20;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(0);
	for (;;) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			_exit(1);
		for (size_t off = 0; off < len; off += PAGE_SZ)
			p[off] = 1;
		munmap(p, len);
	}
}

/*
 * Load and unload while another process takes page faults: the module
 * arms and disarms its kretprobe on handle_mm_fault() each time.
 */
TEST_F_TIMEOUT(module, reload_repeatedly, 300)
{
	struct dt_version v0, v;
	struct dt_nl nl, held;
	char out[4096];
	pid_t faulter, me;
	const char *why;
	int i, err;

	if (self->skip)
		SKIP(return, "DTRACK_KO not set: no module file to reload");
	why = dt_reload_unsafe();
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, dt_open(&nl, &v0));
	dt_nl_close(&nl);
	/* a client socket that stays open across all the reloads */
	ASSERT_EQ(0, dt_nl_open(&held));
	me = getpid();
	faulter = fork();
	ASSERT_LE(0, faulter);
	if (!faulter)
		fault_forever(me);

	for (i = 0; i < RELOADS; i++) {
		err = dt_unload();
		ASSERT_EQ(0, err) {
			TH_LOG("reload %d: delete_module: %s", i,
			       strerror(-err));
		}
		ASSERT_FALSE(dt_loaded());
		if (i == 0 && cli_available()) {
			/* the CLI explains, on stderr, and fails */
			EXPECT_EQ(1, run_capture("dtrack version 2>&1 >/dev/null",
						 out, sizeof(out)));
			EXPECT_NE(NULL, strstr(out, "dtrack module is not loaded")) {
				TH_LOG("stderr was: %s", out);
			}
		}
		err = dt_load();
		ASSERT_EQ(0, err) {
			TH_LOG("reload %d: finit_module(%s): %s", i,
			       dt_ko_path(), strerror(-err));
		}
		ASSERT_EQ(0, dt_open(&nl, &v));
		EXPECT_STREQ(v0.version, v.version);
		EXPECT_EQ(v0.uapi_version, v.uapi_version);
		dt_nl_close(&nl);
	}
	kill(faulter, SIGKILL);
	waitpid(faulter, NULL, 0);
	/* the held socket finds the new family and works */
	ASSERT_EQ(0, dt_nl_resolve(&held, DTRACK_GENL_NAME));
	ASSERT_EQ(0, dt_get_version(&held, &v));
	EXPECT_STREQ(v0.version, v.version);
	dt_nl_close(&held);
}

TEST_HARNESS_MAIN
