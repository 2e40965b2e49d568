// SPDX-License-Identifier: GPL-2.0
/*
 * libpager-preload.so with unmodified programs: sort(1) of a generated file
 * larger than the budget gives byte-identical output and stays within the
 * budget plus a stated slack; the malloc family and mmap behave (zeroed
 * calloc, realloc keeps data, munmap/free release regions) and temporary
 * backing files vanish.
 */
#include <dirent.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "kselftest_harness.h"
#include "pager_test.h"

/* sort's own, unpaged memory: binary, libc, small buffers, thread stacks */
#define RSS_SLACK_KB	(8 << 10)

static const char *preload_path(void)
{
	static char buf[PATH_MAX];
	static const char *const rel[] = {
		"../../lib/libpager-preload.so", "../lib/libpager-preload.so",
		NULL };

	return pt_find("PAGER_PRELOAD", rel, buf, sizeof(buf));
}

/*
 * Child mode: this executable re-run under LD_PRELOAD checks the malloc
 * family from the inside, before the harness starts.
 */
static int child_check(void)
{
	size_t big = 4 << 20;
	unsigned char *a, *b, *c, *m;

	a = calloc(1, big);
	if (!a || ((uintptr_t)a & 4095))
		return 10;	/* paged allocations are page aligned */
	for (size_t i = 0; i < big; i++)
		if (a[i])
			return 11;
	for (size_t i = 0; i < big; i += 97)
		a[i] = i * 7;
	b = realloc(a, big * 2);
	if (!b)
		return 12;
	for (size_t i = 0; i < big; i += 97)
		if (b[i] != (unsigned char)(i * 7))
			return 13;
	if (malloc_usable_size(b) < big * 2)
		return 14;
	free(b);
	c = malloc(100);	/* small: glibc */
	if (!c)
		return 15;
	free(c);
	m = mmap(NULL, big, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 16;
	for (size_t i = 0; i < big; i += 4096)
		m[i] = 1;
	for (size_t i = 0; i < big; i += 4096)
		if (m[i] != 1)
			return 17;
	if (munmap(m, big))
		return 18;
	if (posix_memalign((void **)&m, 64, big) || !m)
		return 19;
	memset(m, 3, big);
	free(m);
	return 0;
}

__attribute__((constructor)) static void maybe_child(void)
{
	if (getenv("PAGER_PRELOAD_CHILD"))
		_exit(child_check());
}

/* "libasan.so.N libubsan.so.N " if this test runs sanitized, else "". */
static const char *sanitizer_libs(void)
{
	static char out[2 * PATH_MAX];
	char line[PATH_MAX + 128];
	FILE *f = fopen("/proc/self/maps", "r");

	out[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');

		if (!path || (!strstr(path, "/libasan.so") &&
			      !strstr(path, "/libubsan.so")))
			continue;
		path[strcspn(path, "\n")] = 0;
		if (strstr(out, path))
			continue;
		if (strlen(out) + strlen(path) + 2 < sizeof(out)) {
			strcat(out, path);
			strcat(out, " ");
		}
	}
	if (f)
		fclose(f);
	return out;
}

FIXTURE(preload) {
	char dir[PATH_MAX];
	char sock[PATH_MAX + 16];
	char log[PATH_MAX + 16];
	char tmp[PATH_MAX + 16];
	size_t budget;
	pid_t pagerd;
	const char *lib;
};

FIXTURE_SETUP(preload)
{
	char budget[32];

	self->lib = preload_path();
	if (!self->lib)
		SKIP(return, "libpager-preload.so not found (set PAGER_PRELOAD)");
	if (*sanitizer_libs()) {
		self->lib = NULL;
		SKIP(return, "SANITIZE=1 build: the sanitizer runtime must come "
		     "first in LD_PRELOAD and its malloc then wins over the "
		     "preload's; run this test on a normal build");
	}
	ASSERT_EQ(0, pt_scratch(self->dir, sizeof(self->dir)));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/pagerd.log", self->dir);
	snprintf(self->tmp, sizeof(self->tmp), "%s/tmp", self->dir);
	ASSERT_EQ(0, mkdir(self->tmp, 0700));
	self->budget = (pt_region_mb() << 20) / 2;
	snprintf(budget, sizeof(budget), "%zuK", self->budget >> 10);
	self->pagerd = pt_start_pagerd(self->sock, budget, self->log);
	ASSERT_LT(0, self->pagerd);
}

FIXTURE_TEARDOWN(preload)
{
	if (!self->lib)
		return;
	pt_stop_pagerd(self->pagerd, SIGKILL);
	if (!getenv("PAGER_TEST_KEEP"))
		pt_rmrf(self->dir);
}

/* Run argv with stdout to @out, optionally preloaded; returns exit status. */
static int run(FIXTURE_DATA(preload) *self, bool paged, char *const argv[],
	       const char *out, long *maxrss_kb)
{
	struct rusage ru;
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		/* keep the programs' chatter out of the TAP stream */
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 2);
		setenv("LC_ALL", "C", 1);
		if (paged) {
			setenv("LD_PRELOAD", self->lib, 1);
			setenv("PAGER_SOCKET", self->sock, 1);
			setenv("PAGER_MIN_MAP", "256K", 1);
			setenv("PAGER_TMPDIR", self->tmp, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &st, 0, &ru) != pid)
		return -1;
	if (maxrss_kb)
		*maxrss_kb = ru.ru_maxrss;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Is @prog on PATH the busybox applet (as in the test VM)? */
static bool is_busybox(const char *prog)
{
	char cmd[256], buf[256] = "";
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s --version 2>&1 | head -1", prog);
	f = popen(cmd, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	pclose(f);
	return !strstr(buf, "GNU");
}

static int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static struct pager_stats global_stats(FIXTURE_DATA(preload) *self)
{
	struct pager_stats st = { 0 };
	struct pager *p = pager_connect(self->sock);

	if (p) {
		pager_stats(p, NULL, &st);
		pager_disconnect(p);
	}
	return st;
}

TEST_F_TIMEOUT(preload, malloc_family, 60)
{
	char *argv[] = { NULL, NULL };
	char exe[PATH_MAX], out[PATH_MAX + 16];
	struct pager_stats st;
	ssize_t n;
	int ret;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ASSERT_LT(0, n);
	exe[n] = 0;
	argv[0] = exe;
	snprintf(out, sizeof(out), "%s/child.out", self->dir);
	setenv("PAGER_PRELOAD_CHILD", "1", 1);
	ret = run(self, true, argv, out, NULL);
	unsetenv("PAGER_PRELOAD_CHILD");
	ASSERT_EQ(0, ret) TH_LOG("preloaded child check failed at step %d",
				 ret);
	st = global_stats(self);
	EXPECT_GT(st.faults, 0) TH_LOG("nothing went through pagerd");
	EXPECT_EQ(0, st.nr_regions);
	EXPECT_EQ(0, dir_entries(self->tmp));
}

TEST_F_TIMEOUT(preload, sort_big_file, 400)
{
	char in[PATH_MAX + 16], out1[PATH_MAX + 16], out2[PATH_MAX + 16];
	size_t size = pt_region_mb() << 20;
	long rss_plain = 0, rss_paged = 0;
	struct pager_stats st;
	uint64_t seed = 12345;
	char cmd[3 * PATH_MAX];
	FILE *f;
	int ret;

	snprintf(in, sizeof(in), "%s/input", self->dir);
	snprintf(out1, sizeof(out1), "%s/out.plain", self->dir);
	snprintf(out2, sizeof(out2), "%s/out.paged", self->dir);
	f = fopen(in, "w");
	ASSERT_NE(NULL, f);
	for (size_t n = 0; n < size; ) {
		uint64_t v = pt_rand(&seed);

		n += fprintf(f, "%016llx line %zu\n", (unsigned long long)v, n);
	}
	fclose(f);
	{
		char *argv[] = { "sort", in, NULL };

		ret = run(self, false, argv, out1, &rss_plain);
		if (ret == 127)
			SKIP(return, "sort(1) not installed");
		ASSERT_EQ(0, ret);
		ret = run(self, true, argv, out2, &rss_paged);
		ASSERT_EQ(0, ret);
	}
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", out1, out2);
	ASSERT_EQ(0, system(cmd)) TH_LOG("sort output differs under pagerd");
	st = global_stats(self);
	TH_LOG("input %zu KiB, budget %zu KiB: peak RSS plain %ld KiB, paged "
	       "%ld KiB (limit budget + %d KiB); %llu faults, %llu evictions",
	       size >> 10, self->budget >> 10, rss_plain, rss_paged,
	       RSS_SLACK_KB, (unsigned long long)st.faults,
	       (unsigned long long)st.evictions);
	if (is_busybox("sort")) {
		/* each line is its own small malloc: nothing big to page */
		TH_LOG("busybox sort: output checked, RSS bound not applicable");
		return;
	}
	EXPECT_GT(st.evictions, 0);
	EXPECT_LE(rss_paged, (long)(self->budget >> 10) + RSS_SLACK_KB);
	if (rss_plain <= (long)(self->budget >> 10) + RSS_SLACK_KB)
		TH_LOG("note: unpaged sort fits the limit too; raise PAGER_TEST_MB");
	EXPECT_EQ(0, dir_entries(self->tmp)) TH_LOG("temporary files left");
}

/*
 * dd(1) copying a file through one buffer bigger than the budget (GNU dd
 * and busybox dd both malloc their block): identical copy, peak RSS within
 * budget + slack.
 */
TEST_F_TIMEOUT(preload, dd_big_buffer, 300)
{
	char in[PATH_MAX + 16], out[PATH_MAX + 16], ifarg[PATH_MAX + 32];
	char ofarg[PATH_MAX + 32], bsarg[64], cmd[3 * PATH_MAX];
	size_t size = pt_region_mb() << 20;
	uint64_t seed = 777;
	long rss = 0;
	FILE *f;
	int ret;

	snprintf(in, sizeof(in), "%s/ddin", self->dir);
	snprintf(out, sizeof(out), "%s/ddout", self->dir);
	f = fopen(in, "w");
	ASSERT_NE(NULL, f);
	for (size_t n = 0; n < size; n += 8) {
		uint64_t v = pt_rand(&seed);

		fwrite(&v, 8, 1, f);
	}
	fclose(f);
	snprintf(ifarg, sizeof(ifarg), "if=%s", in);
	snprintf(ofarg, sizeof(ofarg), "of=%s", out);
	snprintf(bsarg, sizeof(bsarg), "bs=%zu", size);
	{
		char *argv[] = { "dd", ifarg, ofarg, bsarg, NULL };
		char devnull[] = "/dev/null";

		ret = run(self, true, argv, devnull, &rss);
	}
	if (ret == 127)
		SKIP(return, "dd(1) not installed");
	ASSERT_EQ(0, ret);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", in, out);
	ASSERT_EQ(0, system(cmd)) TH_LOG("dd copy differs under pagerd");
	TH_LOG("%zu KiB buffer, budget %zu KiB: peak RSS %ld KiB",
	       size >> 10, self->budget >> 10, rss);
	EXPECT_LE(rss, (long)(self->budget >> 10) + RSS_SLACK_KB);
	EXPECT_EQ(0, dir_entries(self->tmp));
}

TEST_HARNESS_MAIN
