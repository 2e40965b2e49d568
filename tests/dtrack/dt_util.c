// SPDX-License-Identifier: GPL-2.0
/* Helpers shared by the dtrack VM tests; see dt_util.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include "dt_util.h"

/* ---- module ---------------------------------------------------------- */

bool dt_loaded(void)
{
	struct dt_nl nl;

	if (dt_nl_open(&nl))
		return false;
	dt_nl_close(&nl);
	return true;
}

const char *dt_ko_path(void)
{
	const char *ko = getenv("DTRACK_KO");

	return ko && *ko && !access(ko, R_OK) ? ko : NULL;
}

const char *dt_reload_unsafe(void)
{
	const char *accel = getenv("DTRACK_VM_ACCEL");

	if (accel && !strcmp(accel, "tcg-multi"))
		return "multi-threaded TCG corrupts live kernel text patching: run with vm-run.sh --tcg-thread single";
	return NULL;
}

int dt_unload(void)
{
	if (syscall(SYS_delete_module, "dtrack", O_NONBLOCK))
		return -errno;
	return 0;
}

int dt_load_params(const char *params)
{
	const char *ko = dt_ko_path();
	int fd, ret = 0;

	if (!ko)
		return -ENOENT;
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params, 0))
		ret = -errno;
	close(fd);
	return ret;
}

int dt_load(void)
{
	return dt_load_params("");
}

int dt_ensure_loaded(void)
{
	int err;

	if (dt_loaded())
		return 0;
	err = dt_load();
	if (err == -EEXIST)
		err = 0;
	return err;
}

int dt_open(struct dt_nl *nl, struct dt_version *v)
{
	int err;

	err = dt_nl_open(nl);
	if (err)
		return err;
	err = dt_get_version(nl, v);
	if (err)
		dt_nl_close(nl);
	return err;
}

int dt_method_check(struct dt_nl *nl, const struct dt_version *v,
		    uint32_t method, char *reason, size_t reason_len)
{
	uint32_t id;
	void *p;
	int err;

	if ((v->has & DT_HAS(DTRACK_A_METHODS)) &&
	    !(v->methods & (1U << method))) {
		snprintf(reason, reason_len,
			 "module %s does not offer method %s (METHODS 0x%x)",
			 v->version, dt_method_name(method), v->methods);
		return -EOPNOTSUPP;
	}
	p = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	memset(p, 1, PAGE_SZ);
	err = dt_create(nl, getpid(), (uintptr_t)p, PAGE_SZ, method, 0, &id);
	if (!err)
		dt_destroy(nl, id);
	munmap(p, PAGE_SZ);
	if (err == -EOPNOTSUPP) {
		snprintf(reason, reason_len,
			 "module %s cannot track with %s yet: %s%s%s",
			 v->version, dt_method_name(method), nl->extack,
			 nl->extack[0] ? ": " : "", strerror(EOPNOTSUPP));
	}
	return err;
}

int dt_count_trackers(struct dt_nl *nl)
{
	struct dt_tracker *ts;
	size_t n;
	int err;

	err = dt_list(nl, &ts, &n);
	if (err)
		return err;
	free(ts);
	return (int)n;
}

/* ---- regions --------------------------------------------------------- */

static const char *const backing_names[] = {
	[DT_ANON] = "anon",
	[DT_SHMEM] = "shmem",
	[DT_FILE_SHARED] = "file_shared",
	[DT_FILE_PRIVATE] = "file_private",
	[DT_THP] = "thp",
};

const char *dt_backing_name(enum dt_backing b)
{
	return backing_names[b];
}

static int scratch_file(size_t len)
{
	const char *dir = getenv("TEST_SCRATCH");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/dtrack-test.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	unlink(path);
	if (ftruncate(fd, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

void *dt_map(enum dt_backing b, size_t len)
{
	int prot = PROT_READ | PROT_WRITE;
	char *p, *a;
	int fd, saved;

	switch (b) {
	case DT_ANON:
		return mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	case DT_SHMEM:
		return mmap(NULL, len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	case DT_FILE_SHARED:
	case DT_FILE_PRIVATE:
		fd = scratch_file(len);
		if (fd < 0)
			return MAP_FAILED;
		p = mmap(NULL, len, prot, b == DT_FILE_SHARED ? MAP_SHARED :
			 MAP_PRIVATE, fd, 0);
		saved = errno;
		close(fd);
		errno = saved;
		return p;
	case DT_THP:
		len = (len + HPAGE_SZ - 1) & ~(HPAGE_SZ - 1);
		p = mmap(NULL, len + HPAGE_SZ, prot,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return p;
		a = (char *)(((uintptr_t)p + HPAGE_SZ - 1) & ~(HPAGE_SZ - 1));
		if (a > p)
			munmap(p, a - p);
		munmap(a + len, p + HPAGE_SZ - a);
		if (madvise(a, len, MADV_HUGEPAGE)) {
			saved = errno;
			munmap(a, len);
			errno = saved;
			return MAP_FAILED;
		}
		return a;
	}
	errno = EINVAL;
	return MAP_FAILED;
}

bool dt_thp_available(void)
{
	char buf[128] = "";
	FILE *f;

	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return buf[0] && !strstr(buf, "[never]");
}

long dt_anon_huge_bytes(void *addr, size_t len)
{
	unsigned long start, end, kb;
	char line[512];
	bool in = false;
	long total = 0;
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = start < (uintptr_t)addr + len &&
			     end > (uintptr_t)addr;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			total += kb * 1024;
	}
	fclose(f);
	return total;
}

/* ---- dirty sets ------------------------------------------------------ */

int dt_collect_map(struct dt_nl *nl, uint32_t id, uint32_t flags,
		   uintptr_t base, size_t npages, uint8_t *map,
		   uint64_t *outside, struct dt_collect *out)
{
	struct dt_collect c;
	uint64_t out_pages = 0;
	size_t i;
	int err;

	memset(map, 0, npages);
	err = dt_collect(nl, id, flags, &c);
	if (err)
		return err;
	for (i = 0; i < c.nr_runs; i++) {
		uint64_t a = c.runs[i].addr, p;

		for (p = 0; p < c.runs[i].pages; p++, a += PAGE_SZ) {
			if (a >= base && a < base + npages * PAGE_SZ)
				map[(a - base) / PAGE_SZ] = 1;
			else
				out_pages++;
		}
	}
	if (outside)
		*outside = out_pages;
	if (out) {
		*out = c;
		out->runs = NULL;
		out->nr_runs = 0;
		out->cap_runs = 0;
	}
	dt_collect_free(&c);
	return 0;
}

size_t dt_missing(const uint8_t *want, const uint8_t *got, size_t n,
		  size_t *first)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (want[i] && !got[i]) {
			if (!k && first)
				*first = i;
			k++;
		}
	}
	return k;
}

size_t dt_extra(const uint8_t *want, const uint8_t *got, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += !want[i] && got[i];
	return k;
}

size_t dt_count(const uint8_t *map, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += !!map[i];
	return k;
}

uint64_t dt_rand(uint64_t *rng)
{
	uint64_t x = *rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	return x;
}

void dt_pick(uint64_t *rng, uint8_t *map, size_t n, size_t k)
{
	size_t got = 0;

	memset(map, 0, n);
	if (k > n)
		k = n;
	while (got < k) {
		size_t i = dt_rand(rng) % n;

		if (!map[i]) {
			map[i] = 1;
			got++;
		}
	}
}

int dt_pagemap(pid_t pid, uintptr_t base, size_t npages, uint8_t *sd,
	       uint8_t *present)
{
	char path[64];
	uint64_t *ents;
	ssize_t len;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ents = calloc(npages, sizeof(*ents));
	if (!ents) {
		close(fd);
		return -ENOMEM;
	}
	len = pread(fd, ents, npages * sizeof(*ents),
		    (off_t)(base / PAGE_SZ * sizeof(*ents)));
	close(fd);
	if (len != (ssize_t)(npages * sizeof(*ents))) {
		free(ents);
		return len < 0 ? -errno : -EIO;
	}
	for (i = 0; i < npages; i++) {
		if (sd)
			sd[i] = (ents[i] >> 55) & 1;
		if (present)
			present[i] = (ents[i] >> 63) & 1;
	}
	free(ents);
	return 0;
}

/* ---- events ---------------------------------------------------------- */

int dt_events_open(struct dt_nl *nl)
{
	int err;

	err = dt_nl_open(nl);
	if (err)
		return err;
	err = dt_nl_subscribe(nl);
	if (err)
		dt_nl_close(nl);
	return err;
}

struct event_wait {
	uint32_t event;
	uint32_t id;
};

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);
	struct event_wait *w = data;
	struct dt_event e;

	if (nlh->nlmsg_type < NLMSG_MIN_TYPE || genl->cmd != DTRACK_CMD_EVENT)
		return MNL_CB_OK;
	if (dt_parse(nlh, tb))
		return MNL_CB_OK;
	dt_parse_event(tb, &e);
	if (e.event == w->event && e.id == w->id)
		return MNL_CB_STOP;
	return MNL_CB_OK;
}

int dt_wait_event(struct dt_nl *nl, uint32_t event, uint32_t id,
		  int timeout_ms)
{
	struct event_wait w = { .event = event, .id = id };

	return dt_nl_listen(nl, timeout_ms, event_cb, &w);
}

/* ---- target processes ------------------------------------------------ */

enum { TGT_WRITE = 1, TGT_QUIT, TGT_STORE };

struct tgt_hello {
	int err;
	uintptr_t addr;
	size_t len;
	long huge_bytes;
};

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

static void __attribute__((noreturn))
target_main(enum dt_backing b, size_t len, const uint8_t *prefault, int in,
	    int out)
{
	struct tgt_hello hello = {};
	uint32_t hdr[2], *idx = NULL;
	char *p;
	size_t i;

	p = dt_map(b, len);
	if (p == MAP_FAILED) {
		hello.err = -errno;
		write_full(out, &hello, sizeof(hello));
		_exit(1);
	}
	if (b == DT_THP) {
		len = (len + HPAGE_SZ - 1) & ~(HPAGE_SZ - 1);
		/*
		 * First touch by a pure store: a read would map the huge
		 * zero page, whose write fault then falls back to 4 KiB.
		 */
		for (i = 0; i < len; i += HPAGE_SZ)
			*(volatile char *)(p + i) = 1;
	}
	for (i = 0; i < len / PAGE_SZ; i++)
		if (!prefault || prefault[i])
			dt_touch(p, i);
	hello.addr = (uintptr_t)p;
	hello.len = len;
	hello.huge_bytes = dt_anon_huge_bytes(p, len);
	if (write_full(out, &hello, sizeof(hello)))
		_exit(1);
	idx = malloc(len / PAGE_SZ * sizeof(*idx));
	if (!idx)
		_exit(1);
	while (!read_full(in, hdr, sizeof(hdr))) {
		int32_t ret = 0;

		if (hdr[0] == TGT_QUIT)
			_exit(0);
		if (hdr[1] > len / PAGE_SZ ||
		    read_full(in, idx, hdr[1] * sizeof(*idx)))
			_exit(1);
		for (i = 0; i < hdr[1]; i++) {
			if (idx[i] >= len / PAGE_SZ) {
				ret = -EINVAL;
				break;
			}
			if (hdr[0] == TGT_STORE)
				/* no load first: a read fault would map the zero page */
				((volatile char *)p)[idx[i] * PAGE_SZ] = (char)(idx[i] | 1);
			else
				dt_touch(p, idx[i]);
		}
		if (write_full(out, &ret, sizeof(ret)))
			_exit(1);
	}
	_exit(0);
}

int dt_target_start(struct dt_target *t, enum dt_backing b, size_t len,
		    const uint8_t *prefault)
{
	struct tgt_hello hello;
	int to[2], from[2], err;

	memset(t, 0, sizeof(*t));
	if (pipe2(to, O_CLOEXEC))
		return -errno;
	if (pipe2(from, O_CLOEXEC)) {
		err = -errno;
		close(to[0]);
		close(to[1]);
		return err;
	}
	t->pid = fork();
	if (t->pid < 0) {
		err = -errno;
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		return err;
	}
	if (t->pid == 0) {
		close(to[1]);
		close(from[0]);
		target_main(b, len, prefault, to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	t->to_fd = to[1];
	t->from_fd = from[0];
	err = read_full(t->from_fd, &hello, sizeof(hello));
	if (!err)
		err = hello.err;
	if (err) {
		dt_target_kill(t);
		return err;
	}
	t->addr = hello.addr;
	t->len = hello.len;
	t->npages = hello.len / PAGE_SZ;
	t->huge_bytes = hello.huge_bytes;
	return 0;
}

static int target_cmd(struct dt_target *t, uint32_t cmd, const uint8_t *map)
{
	uint32_t *msg;
	size_t i, n = 0;
	int32_t ret;
	int err;

	msg = malloc((t->npages + 2) * sizeof(*msg));
	if (!msg)
		return -ENOMEM;
	for (i = 0; i < t->npages; i++)
		if (map[i])
			msg[2 + n++] = i;
	msg[0] = cmd;
	msg[1] = n;
	err = write_full(t->to_fd, msg, (n + 2) * sizeof(*msg));
	free(msg);
	if (!err)
		err = read_full(t->from_fd, &ret, sizeof(ret));
	return err ? err : ret;
}

int dt_target_write(struct dt_target *t, const uint8_t *map)
{
	return target_cmd(t, TGT_WRITE, map);
}

int dt_target_store(struct dt_target *t, const uint8_t *map)
{
	return target_cmd(t, TGT_STORE, map);
}

static void target_close(struct dt_target *t)
{
	if (t->to_fd > 0)
		close(t->to_fd);
	if (t->from_fd > 0)
		close(t->from_fd);
	t->to_fd = t->from_fd = -1;
}

int dt_target_stop(struct dt_target *t)
{
	uint32_t msg[2] = { TGT_QUIT, 0 };
	int st;

	if (t->pid <= 0)
		return -ESRCH;
	write_full(t->to_fd, msg, sizeof(msg));
	target_close(t);
	st = dt_wait_child(t->pid);
	t->pid = 0;
	return st;
}

void dt_target_kill(struct dt_target *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		dt_wait_child(t->pid);
	}
	t->pid = 0;
	target_close(t);
}

/* ---- processes ------------------------------------------------------- */

int dt_become_nobody(bool keep_net_admin)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = {};

	if (keep_net_admin && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		return -errno;
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -errno;
	if (!keep_net_admin)
		return 0;
	data[0].effective = 1U << CAP_NET_ADMIN;
	data[0].permitted = 1U << CAP_NET_ADMIN;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

int dt_wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* ---- small things the tests share ------------------------------------- */

const uint32_t dt_dirty_methods[3] = {
	DTRACK_METHOD_SOFTDIRTY, DTRACK_METHOD_WPFAULT, DTRACK_METHOD_HWDIRTY,
};

uint32_t dt_any_method(struct dt_nl *nl, const struct dt_version *v,
		       char *why, size_t why_len)
{
	size_t i;

	snprintf(why, why_len, "no tracking method available");
	for (i = 0; i < 3; i++)
		if (!dt_method_check(nl, v, dt_dirty_methods[i], why, why_len))
			return dt_dirty_methods[i];
	return 0;
}

bool dt_errno_in(int err, const int *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (err == -set[i])
			return true;
	return false;
}

void dt_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int dt_wait_ended(struct dt_nl *nl, uint32_t id, int timeout_ms)
{
	struct dt_tracker t;
	int waited, err;

	for (waited = 0; waited <= timeout_ms; waited += 20) {
		err = dt_get_tracker(nl, id, &t);
		if (err == -ENOENT)
			return 0;
		if (err)
			return err;
		if ((t.stats.has & DT_HAS(DTRACK_STAT_A_STATE)) &&
		    t.stats.state == DTRACK_STATE_ENDED)
			return 0;
		dt_sleep_ms(20);
	}
	return -ETIMEDOUT;
}
