/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the pagerd tests: scratch directory, starting and
 * stopping a private pagerd, data size knob, region/model checks.
 *
 * Environment:
 *   PAGERD        pagerd binary (else <exe dir>/../../bin/pagerd, else PATH)
 *   TEST_SCRATCH  scratch directory (else a mkdtemp under /tmp)
 *   PAGER_TEST_MB size of the big test regions in MiB (default 8; use 2-4
 *                 under emulation)
 *   PAGER_TEST_THREADS  pagerd --threads (default 3)
 *   PAGER_TEST_CLIENT_TIMEOUT  pagerd --client-timeout in ms (default 1000;
 *                 a tiny value simulates slow clients)
 *   PAGER_WP_MODE pagerd --wp-mode (auto, async or sync; default: pagerd's
 *                 own default), so the whole suite runs in either mode
 *   PAGER_TEST_FAULT_AROUND  pagerd --fault-around in pages (default
 *                 PT_FAULT_AROUND: small, so that the small test regions
 *                 and budgets see fault-around; 0 turns it off)
 */
#ifndef PAGER_TEST_H
#define PAGER_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "pager.h"

#define PT_PAGE	4096UL
#define PT_FAULT_AROUND	"16"	/* pages: a 64 KiB chunk */

/* pagerd --fault-around of the suite's pagerd (PAGER_TEST_FAULT_AROUND) */
static inline const char *pt_fault_around(void)
{
	const char *s = getenv("PAGER_TEST_FAULT_AROUND");

	return s && *s ? s : PT_FAULT_AROUND;
}

static inline size_t pt_region_mb(void)
{
	const char *s = getenv("PAGER_TEST_MB");
	long v = s ? atol(s) : 0;

	return v > 0 ? (size_t)v : 8;
}

static inline uint64_t pt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Directory of this test executable. */
static inline void pt_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		n = 0;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (slash)
		*slash = 0;
}

/* Find a project file: $env, then <exe dir>/<rel...>, else NULL. */
static inline const char *pt_find(const char *env, const char *const *rel,
				  char *buf, size_t len)
{
	const char *e = getenv(env);
	char dir[PATH_MAX];

	if (e && *e)
		return e;
	pt_exe_dir(dir, sizeof(dir));
	for (; *rel; rel++) {
		if (snprintf(buf, len, "%s/%s", dir, *rel) >= (int)len)
			continue;
		if (!access(buf, R_OK))
			return buf;
	}
	return NULL;
}

static inline const char *pt_pagerd_path(void)
{
	static char buf[PATH_MAX];
	static const char *const rel[] = { "../../bin/pagerd", "../bin/pagerd",
					   "pagerd", NULL };
	const char *p = pt_find("PAGERD", rel, buf, sizeof(buf));

	return p ? p : "pagerd";	/* in the VM: on PATH */
}

/* Fresh scratch directory for one test. */
static inline int pt_scratch(char *buf, size_t len)
{
	const char *base = getenv("TEST_SCRATCH");
	char tmpl[PATH_MAX];

	if (base && *base) {
		snprintf(tmpl, sizeof(tmpl), "%s/pager.XXXXXX", base);
		mkdir(base, 0755);
	} else {
		snprintf(tmpl, sizeof(tmpl), "/tmp/pagertest.XXXXXX");
	}
	if (!mkdtemp(tmpl))
		return -errno;
	snprintf(buf, len, "%s", tmpl);
	return 0;
}

static inline void pt_rmrf(const char *dir)
{
	char cmd[PATH_MAX + 32];

	int rc;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	rc = system(cmd);
	(void)rc;
}

static inline int pt_can_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), ok;

	if (strlen(path) < sizeof(sa.sun_path))
		memcpy(sa.sun_path, path, strlen(path));
	ok = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return ok;
}

/*
 * Start pagerd on @sock with @budget ("2M"); returns its pid once it
 * accepts connections, or -1.  It dies with the test (PDEATHSIG).
 * @fail_dir, if not NULL: pagerd's testing failures start while a file
 * of that directory exists: "fail-fsync" fails its fsyncs, "fail-staging"
 * its reads of clients' staging areas, "fail-fill" every fill.
 * @pre_exec, if not NULL, runs in the child just before pagerd is
 * executed.
 */
static inline pid_t pt_start_pagerd_hook(const char *sock, const char *budget,
					 const char *logpath,
					 const char *fail_dir,
					 void (*pre_exec)(void))
{
	static const char *const fails[] = { "fsync", "staging", "fill" };
	char fail_opt[3][32], fail_path[3][PATH_MAX + 32];
	const char *bin = pt_pagerd_path();
	const char *threads = getenv("PAGER_TEST_THREADS");
	const char *wp_mode = getenv("PAGER_WP_MODE");
	const char *tmo = getenv("PAGER_TEST_CLIENT_TIMEOUT");
	pid_t pid;

	if (!threads || !*threads)
		threads = "3";
	if (!wp_mode || !*wp_mode)
		wp_mode = "auto";
	if (!tmo || !*tmo)
		tmo = "1000";
	pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		int fd = open(logpath ? logpath : "/dev/null",
			      O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		/* testing: e.g. a seccomp filter that fails a system call */
		if (pre_exec)
			pre_exec();
		/* short client timeout: the hostile-client tests wait for it */
		{
			const char *argv[] = {
				bin, "--socket", sock, "--budget", budget,
				"--threads", threads, "--client-timeout", tmo,
				"--wp-mode", wp_mode,
				"--fault-around", pt_fault_around(), "-v",
				NULL, NULL, NULL, NULL, NULL, NULL, NULL
			};
			int a = 0;

			while (argv[a])
				a++;
			/* testing: failures while these files exist */
			for (int i = 0; fail_dir && i < 3; i++) {
				snprintf(fail_opt[i], sizeof(fail_opt[i]),
					 "--fail-%s", fails[i]);
				snprintf(fail_path[i], sizeof(fail_path[i]),
					 "%s/fail-%s", fail_dir, fails[i]);
				argv[a++] = fail_opt[i];
				argv[a++] = fail_path[i];
			}
			execvp(bin, (char *const *)argv);
		}
		_exit(127);
	}
	for (uint64_t t0 = pt_now_ms(); pt_now_ms() - t0 < 10000; ) {
		int st;

		if (pt_can_connect(sock))
			return pid;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(5000);	/* startup: nothing to wait on but the socket */
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static inline pid_t pt_start_pagerd(const char *sock, const char *budget,
				    const char *logpath)
{
	return pt_start_pagerd_hook(sock, budget, logpath, NULL, NULL);
}

/*
 * Is the pagerd on @sock running asynchronous write-protection (asked
 * through `pagerd --stats --json`)?  Tests use it to check that the async
 * path, not a fallback, was exercised.
 */
static inline bool pt_pagerd_async(const char *sock)
{
	char cmd[2 * PATH_MAX + 64], buf[512];
	size_t n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' --stats --json --socket '%s'",
		 pt_pagerd_path(), sock);
	f = popen(cmd, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	pclose(f);
	buf[n] = 0;
	return strstr(buf, "\"wp_mode\": \"async\"") != NULL;
}

/* Send @sig, reap; returns the wait status. */
static inline int pt_stop_pagerd(pid_t pid, int sig)
{
	int st = -1;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	waitpid(pid, &st, 0);
	return st;
}

/* Deterministic pseudo-random numbers (xorshift), per thread. */
static inline uint64_t pt_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Compare a file with a model; returns the first differing offset or -1. */
static inline long long pt_file_diff(const char *path, const unsigned char *model,
				     size_t len)
{
	unsigned char buf[65536];
	int fd = open(path, O_RDONLY);
	size_t off = 0;

	if (fd < 0)
		return 0;
	while (off < len) {
		size_t want = len - off < sizeof(buf) ? len - off : sizeof(buf);
		ssize_t n = pread(fd, buf, want, off);

		if (n <= 0) {
			/* short file: the rest must be zeros in the model */
			for (; off < len; off++)
				if (model[off])
					goto diff;
			break;
		}
		for (ssize_t i = 0; i < n; i++, off++)
			if (buf[i] != model[off])
				goto diff;
	}
	close(fd);
	return -1;
diff:
	close(fd);
	return off;
}

static inline long long pt_mem_diff(const unsigned char *a,
				    const unsigned char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/*
 * A backing file with data, holes and a short end: pages [0, len/2) hold
 * a pattern except every 5th page, which is a hole; the file ends at
 * 3/4 of the region (the last quarter is past EOF).  Fills @model.
 */
static inline int pt_make_file(const char *path, unsigned char *model,
			       size_t len, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned char page[PT_PAGE];

	if (fd < 0)
		return -errno;
	memset(model, 0, len);
	for (size_t pg = 0; pg < len / 2 / PT_PAGE; pg++) {
		if (pg % 5 == 4)
			continue;
		for (size_t i = 0; i < PT_PAGE; i += 8) {
			uint64_t v = pt_rand(&seed);

			memcpy(page + i, &v, 8);
		}
		if (pwrite(fd, page, PT_PAGE, pg * PT_PAGE) != PT_PAGE)
			return -EIO;
		memcpy(model + pg * PT_PAGE, page, PT_PAGE);
	}
	if (ftruncate(fd, len / 4 * 3))
		return -errno;
	close(fd);
	return 0;
}

#endif /* PAGER_TEST_H */
