// SPDX-License-Identifier: GPL-2.0
/*
 * The dtrack CLI end to end, as scripts use it, on dtrack-workload
 * processes: track/collect/stats/list/untrack output formats and exit
 * statuses, watch, and sample with every method side by side.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* ---- the CLI ----------------------------------------------------------- */

static bool on_path(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return !system(cmd);
}

/* Run a shell command; stdout (and stderr if asked) into out. */
static int sh(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t len, const char *fmt, ...)
{
	char cmd[1024];
	size_t used = 0;
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	out[0] = '\0';
	while (used + 1 < len) {
		size_t n = fread(out + used, 1, len - 1 - used, f);

		if (!n)
			break;
		used += n;
	}
	out[used] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Run a shell command with its stdout readable from *out; its pid or -1. */
static pid_t spawn_reader(const char *cmd, pid_t *pid, FILE **out)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (*pid == 0) {
		dup2(fds[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*out = fdopen(fds[0], "r");
	return *out ? *pid : -1;
}

struct workload {
	pid_t pid;
	FILE *in;
	FILE *out;
	unsigned long addr;
	unsigned long len;
};

static int workload_start(struct workload *w, const char *args)
{
	int to[2], from[2];
	char line[256], cmd[256];

	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -errno;
	w->pid = fork();
	if (w->pid < 0)
		return -errno;
	if (w->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		snprintf(cmd, sizeof(cmd), "exec dtrack-workload %s", args);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	w->in = fdopen(to[1], "w");
	w->out = fdopen(from[0], "r");
	if (!w->in || !w->out || !fgets(line, sizeof(line), w->out))
		return -EIO;
	if (sscanf(line, "pid %*d addr %lx len %lu", &w->addr, &w->len) != 2)
		return -EBADMSG;
	return 0;
}

static int workload_cmd(struct workload *w, const char *cmd, char *answer,
			size_t len)
{
	fprintf(w->in, "%s\n", cmd);
	fflush(w->in);
	return fgets(answer, len, w->out) ? 0 : -EIO;
}

TEST_F_TIMEOUT(slow, cli_end_to_end, 120)
{
	char out[4096], want[256], why[256];
	struct workload w = {};
	struct dt_version v;
	unsigned int id, id2;
	bool found = false;
	uint32_t method;
	struct dt_nl nl;
	pid_t watch_pid;
	FILE *watch;
	int i;

	if (!on_path("dtrack") || !on_path("dtrack-workload"))
		SKIP(return, "dtrack and dtrack-workload are not on PATH");
	ASSERT_EQ(0, dt_open(&nl, &v));
	method = dt_any_method(&nl, &v, why, sizeof(why));
	if (!method)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, workload_start(&w, "--size 64K"));

	/* bad input: usage, status 2, nothing on stdout */
	EXPECT_EQ(2, sh(out, sizeof(out), "dtrack track %d nowhere 4K 2>/dev/null",
			w.pid));
	EXPECT_STREQ("", out);
	/* refused by the module: status 1 and its reason */
	EXPECT_EQ(1, sh(out, sizeof(out), "dtrack track %d 0x%lx 4K 2>&1",
			w.pid, w.addr + 1));
	EXPECT_NE(NULL, strstr(out, "dtrack: track: ")) {
		TH_LOG("stderr: %s", out);
	}
	EXPECT_NE(NULL, strstr(out, "aligned"));

	/* track prints the id alone; LEN takes suffixes */
	ASSERT_EQ(0, sh(out, sizeof(out), "dtrack track %d 0x%lx 64K --method %s",
			w.pid, w.addr, dt_method_name(method)));
	ASSERT_EQ(1, sscanf(out, "%u", &id));
	snprintf(want, sizeof(want), "%u\n", id);
	EXPECT_STREQ(want, out);
	/* persistent: it outlived the command */
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack collect %u --reset", id));

	ASSERT_EQ(0, workload_cmd(&w, "write 1 2 3 9", out, sizeof(out)));
	EXPECT_STREQ("ok 4\n", out);
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack collect %u", id));
	snprintf(want, sizeof(want), "0x%lx 3\n0x%lx 1\n", w.addr + PAGE_SZ,
		 w.addr + 9 * PAGE_SZ);
	EXPECT_STREQ(want, out);
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack collect %u --json", id));
	snprintf(want, sizeof(want),
		 "\"epoch\":2,\"conservative\":false,\"nr_dirty\":4,\"runs\":[{\"addr\":%lu,\"pages\":3},{\"addr\":%lu,\"pages\":1}]}\n",
		 w.addr + PAGE_SZ, w.addr + 9 * PAGE_SZ);
	EXPECT_NE(NULL, strstr(out, want)) {
		TH_LOG("json: %s", out);
	}
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack stats %u", id));
	snprintf(want, sizeof(want), "id %u\npid %d\naddr 0x%lx\nlen 65536\nmethod %s\n",
		 id, w.pid, w.addr, dt_method_name(method));
	EXPECT_EQ(0, strncmp(want, out, strlen(want))) {
		TH_LOG("stats: %s", out);
	}
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack list | awk '$1 == %u { print $2, $3 }'",
			id));
	snprintf(want, sizeof(want), "%d 0x%lx\n", w.pid, w.addr);
	EXPECT_STREQ(want, out);
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack list --json"));
	snprintf(want, sizeof(want), "{\"id\":%u,\"pid\":%d,\"addr\":%lu,\"len\":65536,\"method\":\"%s\"",
		 id, w.pid, w.addr, dt_method_name(method));
	EXPECT_NE(NULL, strstr(out, want)) {
		TH_LOG("list --json: %s", out);
	}
	EXPECT_EQ(0, sh(out, sizeof(out), "dtrack untrack %u", id));
	EXPECT_EQ(1, sh(out, sizeof(out), "dtrack collect %u 2>&1", id));
	EXPECT_NE(NULL, strstr(out, "dtrack: collect: "));

	/* watch sees the target exit of a second tracker */
	ASSERT_EQ(0, sh(out, sizeof(out), "dtrack track %d 0x%lx 0x10000", w.pid,
			w.addr));
	ASSERT_EQ(1, sscanf(out, "%u", &id2));
	ASSERT_LT(0, spawn_reader("exec dtrack watch", &watch_pid, &watch));
	/* wait until it has joined the group: it sees our own events */
	for (i = 0; i < 100; i++) {
		struct pollfd pfd = { .fd = fileno(watch), .events = POLLIN };
		uint32_t sync;

		ASSERT_EQ(0, dt_create(&nl, w.pid, w.addr, PAGE_SZ, method, 0,
				       &sync));
		ASSERT_EQ(0, dt_destroy(&nl, sync));
		if (poll(&pfd, 1, 200) == 1)
			break;
	}
	ASSERT_GT(100, i) {
		TH_LOG("dtrack watch printed no event in 20 s");
	}
	kill(w.pid, SIGKILL);
	dt_wait_child(w.pid);
	snprintf(want, sizeof(want), "target_exit id=%u", id2);
	found = false;
	while (!found && fgets(out, sizeof(out), watch)) {
		found = !strncmp(want, out, strlen(want));
		if (!found && strncmp(out, "destroyed id=", 13))
			TH_LOG("unexpected event line: %s", out);
	}
	EXPECT_TRUE(found) {
		TH_LOG("no '%s' line from dtrack watch", want);
	}
	kill(watch_pid, SIGTERM);
	dt_wait_child(watch_pid);
	fclose(watch);
	dt_destroy(&nl, id2);
	fclose(w.in);
	fclose(w.out);
	dt_nl_close(&nl);
}

/* Parse "0xADDR NPAGES" lines into a page map of [base, base + n pages). */
static int runs_to_map(char *text, unsigned long base, size_t n, uint8_t *map)
{
	char *line, *save;
	int bad = 0;

	memset(map, 0, n);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long addr, pages, i;

		if (sscanf(line, "0x%lx %lu", &addr, &pages) != 2) {
			bad++;
			continue;
		}
		for (i = 0; i < pages; i++) {
			unsigned long a = addr + i * PAGE_SZ;

			if (a < base || a >= base + n * PAGE_SZ)
				bad++;
			else
				map[(a - base) / PAGE_SZ] = 1;
		}
	}
	return bad;
}

/*
 * Ground truth through the CLI: the workload's scripted epochs print the
 * pages they write; 'dtrack collect --reset' must print exactly them
 * (4 KiB private anonymous pages), for every method.
 */
TEST_F_TIMEOUT(slow, cli_ground_truth, 120)
{
	char out[65536], why[256], *tok, *save;
	uint8_t want[64], got[64];
	struct dt_version v;
	struct dt_nl nl;
	size_t k;
	int e;

	if (!on_path("dtrack") || !on_path("dtrack-workload"))
		SKIP(return, "dtrack and dtrack-workload are not on PATH");
	ASSERT_EQ(0, dt_open(&nl, &v));
	if (!dt_any_method(&nl, &v, why, sizeof(why)))
		SKIP(return, "%s", why);

	for (k = 0; k < 3; k++) {
		uint32_t method = dt_dirty_methods[k];
		struct workload w = {};
		unsigned int id;

		if (dt_method_check(&nl, &v, method, why, sizeof(why))) {
			TH_LOG("%s", why);
			continue;
		}
		ASSERT_EQ(0, workload_start(&w, "--size 256K --epochs 4 --pages-per-epoch 9 --seed 77"));
		ASSERT_EQ(0, sh(out, sizeof(out), "dtrack track %d 0x%lx 256K --method %s",
				w.pid, w.addr, dt_method_name(method)));
		ASSERT_EQ(1, sscanf(out, "%u", &id));
		ASSERT_EQ(0, sh(out, sizeof(out), "dtrack collect %u --reset", id));
		for (e = 1; e <= 4; e++) {
			char expect_hdr[32];

			/* one epoch of the workload: its pages on one line */
			fputc('\n', w.in);
			fflush(w.in);
			ASSERT_NE(NULL, fgets(out, sizeof(out), w.out));
			snprintf(expect_hdr, sizeof(expect_hdr), "epoch %d ", e);
			ASSERT_EQ(0, strncmp(out, expect_hdr, strlen(expect_hdr)));
			memset(want, 0, sizeof(want));
			tok = strtok_r(out + strlen(expect_hdr), " \n", &save);
			for (; tok; tok = strtok_r(NULL, " \n", &save)) {
				unsigned long a = strtoul(tok, NULL, 16);

				ASSERT_TRUE(a >= w.addr && a < w.addr + w.len);
				want[(a - w.addr) / PAGE_SZ] = 1;
			}
			EXPECT_EQ(9, dt_count(want, 64));
			ASSERT_EQ(0, sh(out, sizeof(out), "dtrack collect %u --reset",
					id));
			EXPECT_EQ(0, runs_to_map(out, w.addr, 64, got));
			EXPECT_EQ(0, memcmp(want, got, sizeof(want))) {
				TH_LOG("%s epoch %d: %zu written, %zu reported, %zu missing",
				       dt_method_name(method), e,
				       dt_count(want, 64), dt_count(got, 64),
				       dt_missing(want, got, 64, NULL));
			}
		}
		EXPECT_EQ(0, sh(out, sizeof(out), "dtrack untrack %u", id));
		fclose(w.in);	/* the workload exits at EOF */
		fclose(w.out);
		EXPECT_EQ(0, dt_wait_child(w.pid));
	}
	dt_nl_close(&nl);
}

/* dtrack sample on a workload writing all the time: every method sees it */
TEST_F_TIMEOUT(slow, cli_sample, 120)
{
	char methods[128] = "", out[16384], why[256], *line, *save;
	unsigned long range_pages, seen[4] = { 0 };
	size_t methods_n = 0;
	struct workload w = {};
	struct dt_version v;
	struct dt_nl nl;
	int lines = 0;
	size_t i;

	if (!on_path("dtrack") || !on_path("dtrack-workload"))
		SKIP(return, "dtrack and dtrack-workload are not on PATH");
	ASSERT_EQ(0, dt_open(&nl, &v));
	for (i = 0; i < sizeof(dt_dirty_methods) / sizeof(dt_dirty_methods[0]); i++) {
		if (dt_method_check(&nl, &v, dt_dirty_methods[i], why, sizeof(why)))
			continue;
		if (methods[0])
			strcat(methods, ",");
		strcat(methods, dt_method_name(dt_dirty_methods[i]));
		methods_n++;
	}
	dt_nl_close(&nl);
	if (!methods[0])
		SKIP(return, "%s", why);
	ASSERT_EQ(0, workload_start(&w, "--size 1M --epochs 0 --pages-per-epoch 8 --interval 20 --quiet"));
	range_pages = w.len / PAGE_SZ;

	/* one JSON object per interval, per method the pages it saw */
	ASSERT_EQ(0, sh(out, sizeof(out),
			"dtrack sample %d --addr 0x%lx --len %lu --method %s --interval 400 --count 3 --json",
			w.pid, w.addr, w.len, methods));
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[64];
		const char *m;
		int k = 0;

		lines++;
		snprintf(key, sizeof(key), "{\"interval\":%d,", lines);
		EXPECT_EQ(0, strncmp(line, key, strlen(key))) {
			TH_LOG("line %d: %s", lines, line);
		}
		for (m = strstr(line, "{\"method\":"); m;
		     m = strstr(m + 1, "{\"method\":")) {
			unsigned long dirty = 0;
			const char *d = strstr(m, "\"dirty_pages\":");

			ASSERT_NE(NULL, d);
			sscanf(d, "\"dirty_pages\":%lu", &dirty);
			EXPECT_GE(range_pages, dirty);
			ASSERT_GT(4, k);
			seen[k++] += dirty;
		}
	}
	EXPECT_EQ(3, lines);
	/*
	 * 8 pages every 20 ms: every method saw some (TCG may stall one
	 * interval, not all three)
	 */
	for (i = 0; i < 4 && methods_n; i++, methods_n--)
		EXPECT_LT(0, seen[i]) {
			TH_LOG("method %zu of '%s' saw no write in 3 intervals",
			       i, methods);
		}
	/* its trackers ended with it */
	ASSERT_EQ(0, dt_nl_open(&nl));
	EXPECT_EQ(0, dt_count_trackers(&nl));
	dt_nl_close(&nl);
	/* the text form: comment header, column header, three rows */
	EXPECT_EQ(0, sh(out, sizeof(out),
			"dtrack sample %d --addr 0x%lx --len %lu --interval 200 --count 3 | grep -v '^#' | wc -l",
			w.pid, w.addr, w.len));
	EXPECT_STREQ("4\n", out);
	kill(w.pid, SIGKILL);
	dt_wait_child(w.pid);
	fclose(w.in);
	fclose(w.out);
}

TEST_HARNESS_MAIN
