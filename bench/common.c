// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

void samples_add(struct samples *s, uint64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return;	/* drop the sample rather than abort a long run */
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
}

void samples_free(struct samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t samples_pct(struct samples *s, double q)
{
	size_t i;

	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	i = (size_t)(q * (double)(s->n - 1) + 0.5);
	return s->v[i < s->n ? i : s->n - 1];
}

uint64_t samples_median(struct samples *s)
{
	return samples_pct(s, 0.5);
}

int samples_write_cdf(struct samples *s, const char *path, int points)
{
	FILE *f;
	int i;

	if (!s->n || !path)
		return 0;
	f = fopen(path, "w");
	if (!f)
		return -errno;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	for (i = 0; i <= points; i++) {
		size_t k = (size_t)((double)i / points * (double)(s->n - 1));

		fprintf(f, "%.3f %.4f\n", s->v[k] / 1000.0, (double)(k + 1) / s->n);
	}
	fclose(f);
	return 0;
}

void shuffle_u32(uint32_t *v, size_t n, uint64_t seed)
{
	uint64_t st = seed | 1;
	size_t i;

	for (i = n; i > 1; i--) {
		size_t j = rnd_next(&st) % i;
		uint32_t t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

int cpu_now(void)
{
	return sched_getcpu();
}

int task_cpus(int pid, char *buf, size_t len)
{
	char path[300], stat[1024];
	struct dirent *de;
	size_t off = 0;
	DIR *d;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *p;
		int fd, field;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n <= 0)
			continue;
		stat[n] = '\0';
		/* comm may hold spaces: count fields after its closing ')' */
		p = strrchr(stat, ')');
		if (!p)
			continue;
		for (field = 2; p && field < 39; field++)
			p = strchr(p + 1, ' ');
		if (!p)
			continue;
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%s:%d",
				off ? " " : "", de->d_name, atoi(p + 1));
		if (off >= len)
			break;
	}
	closedir(d);
	return 0;
}

long proc_status_kb(int pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long v = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, flen)) {
			v = strtol(line + flen, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void mem_preheat(size_t bytes)
{
	char line[128];
	long avail_kb = -1;
	size_t off;
	FILE *f;
	char *a;

	if (!env_long("BENCH_PREHEAT", 1))
		return;
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &avail_kb) == 1)
			break;
	if (f)
		fclose(f);
	if (avail_kb > 0 && bytes > (size_t)avail_kb * 1024 / 2)
		bytes = (size_t)avail_kb * 1024 / 2;
	a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return;
	if (madvise(a, bytes, MADV_POPULATE_WRITE))
		for (off = 0; off < bytes; off += PAGE_SZ)
			a[off] = 1;
	munmap(a, bytes);
}

void csv(const char *fmt, ...)
{
	va_list ap;

	fputs("@csv ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	char *end;
	long r;

	if (!v || !*v)
		return def;
	r = strtol(v, &end, 0);
	return *end ? def : r;
}

#define NBUF 16
static char fbuf[NBUF][32];
static unsigned int fidx;

const char *fmt_ns(double ns)
{
	char *b = fbuf[fidx++ % NBUF];

	if (ns < 0)
		snprintf(b, 32, "n/a");
	else if (ns < 10000)
		snprintf(b, 32, "%.0f ns", ns);
	else if (ns < 10000000)
		snprintf(b, 32, "%.1f us", ns / 1e3);
	else
		snprintf(b, 32, "%.1f ms", ns / 1e6);
	return b;
}

const char *fmt_ratio(double r)
{
	char *b = fbuf[fidx++ % NBUF];

	if (r < 0 || r != r)
		snprintf(b, 32, "n/a");
	else if (r < 10)
		snprintf(b, 32, "%.3fx", r);
	else
		snprintf(b, 32, "%.1fx", r);
	return b;
}
