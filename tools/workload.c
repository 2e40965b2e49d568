// SPDX-License-Identifier: GPL-2.0
/*
 * dtrack-workload: a process with one region whose page writes are known,
 * for the dtrack tests and the live demo.
 *
 * It maps a region (private anonymous, shmem, shared or private file
 * mapping, or THP-backed anonymous), writes every page once unless
 * --no-prefault, prints one line
 *	pid PID addr 0xADDR len LEN pages N type TYPE
 * and then writes pages:
 *  - scripted (--epochs N, 0 for ever): each epoch writes --pages-per-epoch
 *    distinct random pages (xorshift seeded by --seed, so reproducible) and
 *    prints "epoch E 0xADDR..." (sorted; --quiet: nothing).  An epoch starts
 *    on each line read from stdin, or every --interval MS.
 *  - otherwise, commands on stdin, one per line, each answered by one line:
 *	write IDX...		write these pages (indexes)	-> ok N
 *	range FIRST COUNT	write COUNT pages from FIRST	-> ok N
 *	random K		write K distinct random pages	-> epoch E 0xADDR...
 *	quit (or EOF)		exit
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE	4096UL
#define HPAGE_SIZE	(2UL << 20)

enum wl_type { WL_ANON, WL_SHMEM, WL_FILE_SHARED, WL_FILE_PRIVATE, WL_THP };

static const char *const type_names[] = {
	[WL_ANON] = "anon",
	[WL_SHMEM] = "shmem",
	[WL_FILE_SHARED] = "file-shared",
	[WL_FILE_PRIVATE] = "file-private",
	[WL_THP] = "thp",
};

struct workload {
	enum wl_type type;
	char *region;
	size_t len;
	size_t pages;
	uint64_t rng;
	uint64_t epoch;
	uint64_t *picked;	/* scratch for one epoch's pages */
	unsigned char *seen;
};

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("dtrack-workload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void write_page(struct workload *w, size_t idx)
{
	volatile char *p = w->region + idx * PAGE_SIZE;

	/* a real store that changes the content every time */
	p[idx % 64] = (char)(p[idx % 64] + 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Write k distinct random pages; print them unless quiet. */
static void random_epoch(struct workload *w, size_t k, bool quiet)
{
	size_t i, n = 0;

	if (k > w->pages)
		k = w->pages;
	memset(w->seen, 0, w->pages);
	while (n < k) {
		size_t idx = xorshift(&w->rng) % w->pages;

		if (w->seen[idx])
			continue;
		w->seen[idx] = 1;
		w->picked[n++] = idx;
	}
	for (i = 0; i < n; i++)
		write_page(w, w->picked[i]);
	w->epoch++;
	if (quiet)
		return;
	qsort(w->picked, n, sizeof(w->picked[0]), cmp_u64);
	printf("epoch %" PRIu64, w->epoch);
	for (i = 0; i < n; i++)
		printf(" 0x%lx", (unsigned long)(w->region +
						  w->picked[i] * PAGE_SIZE));
	putchar('\n');
	fflush(stdout);
}

static int open_backing_file(const char *path, size_t len)
{
	char tmpl[4096];
	const char *dir;
	int fd;

	if (path) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			die("%s: %s", path, strerror(errno));
	} else {
		dir = getenv("TEST_SCRATCH");
		if (!dir)
			dir = getenv("TMPDIR");
		if (!dir)
			dir = "/tmp";
		snprintf(tmpl, sizeof(tmpl), "%s/dtrack-workload.XXXXXX", dir);
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd < 0)
			die("%s: %s", tmpl, strerror(errno));
		unlink(tmpl);
	}
	if (ftruncate(fd, len))
		die("ftruncate: %s", strerror(errno));
	return fd;
}

static void map_region(struct workload *w, const char *path)
{
	int prot = PROT_READ | PROT_WRITE;
	char *p;
	int fd;

	switch (w->type) {
	case WL_ANON:
		p = mmap(NULL, w->len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case WL_SHMEM:
		p = mmap(NULL, w->len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		break;
	case WL_FILE_SHARED:
	case WL_FILE_PRIVATE:
		fd = open_backing_file(path, w->len);
		p = mmap(NULL, w->len, prot, w->type == WL_FILE_SHARED ?
			 MAP_SHARED : MAP_PRIVATE, fd, 0);
		close(fd);
		break;
	case WL_THP:
		/* over-allocate to place the region on a 2 MiB boundary */
		w->len = (w->len + HPAGE_SIZE - 1) & ~(HPAGE_SIZE - 1);
		p = mmap(NULL, w->len + HPAGE_SIZE, prot,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			char *a = (char *)(((uintptr_t)p + HPAGE_SIZE - 1) &
					   ~(HPAGE_SIZE - 1));

			if (a > p)
				munmap(p, a - p);
			munmap(a + w->len, p + HPAGE_SIZE - a);
			p = a;
			if (madvise(p, w->len, MADV_HUGEPAGE))
				fprintf(stderr, "dtrack-workload: MADV_HUGEPAGE: %s\n",
					strerror(errno));
			/*
			 * First touch by a pure store: a read would map the
			 * huge zero page, whose write fault then falls back
			 * to 4 KiB pages.
			 */
			for (size_t off = 0; off < w->len; off += HPAGE_SIZE)
				*(volatile char *)(p + off) = 1;
		}
		break;
	default:
		p = MAP_FAILED;
	}
	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", w->len, strerror(errno));
	w->region = p;
	w->pages = w->len / PAGE_SIZE;
}

static int parse_size(const char *s, size_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K':
		x <<= 10;
		end++;
		break;
	case 'm': case 'M':
		x <<= 20;
		end++;
		break;
	case 'g': case 'G':
		x <<= 30;
		end++;
		break;
	}
	if (*end)
		return -1;
	*v = x;
	return 0;
}

static void command_loop(struct workload *w)
{
	char *line = NULL, *tok, *save;
	size_t cap = 0, n;

	while (getline(&line, &cap, stdin) > 0) {
		tok = strtok_r(line, " \t\n", &save);
		if (!tok)
			continue;
		if (!strcmp(tok, "quit"))
			break;
		if (!strcmp(tok, "write")) {
			for (n = 0; (tok = strtok_r(NULL, " \t\n", &save)); n++) {
				size_t idx = strtoull(tok, NULL, 0);

				if (idx >= w->pages)
					break;
				write_page(w, idx);
			}
			printf(tok ? "error page index out of range\n" :
				     "ok %zu\n", n);
		} else if (!strcmp(tok, "range")) {
			char *a = strtok_r(NULL, " \t\n", &save);
			char *b = strtok_r(NULL, " \t\n", &save);
			size_t first, count, i;

			if (!a || !b) {
				printf("error usage: range FIRST COUNT\n");
			} else {
				first = strtoull(a, NULL, 0);
				count = strtoull(b, NULL, 0);
				if (first > w->pages || count > w->pages - first) {
					printf("error range out of region\n");
				} else {
					for (i = 0; i < count; i++)
						write_page(w, first + i);
					printf("ok %zu\n", count);
				}
			}
		} else if (!strcmp(tok, "random")) {
			tok = strtok_r(NULL, " \t\n", &save);
			random_epoch(w, tok ? strtoull(tok, NULL, 0) : 1, false);
		} else {
			printf("error unknown command '%s'\n", tok);
		}
		fflush(stdout);
	}
	free(line);
}

static void usage(FILE *f)
{
	fputs("usage: dtrack-workload [--type anon|shmem|file-shared|file-private|thp]\n"
	      "          [--size LEN] [--file PATH] [--no-prefault]\n"
	      "          [--epochs N --pages-per-epoch K [--seed S] [--interval MS] [--quiet]]\n"
	      "Without --epochs, reads commands on stdin: write IDX..., range FIRST COUNT,\n"
	      "random K, quit.  --epochs 0 runs for ever (use with --interval).\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "no-prefault", no_argument, NULL, 'P' },
		{ "epochs", required_argument, NULL, 'e' },
		{ "pages-per-epoch", required_argument, NULL, 'k' },
		{ "seed", required_argument, NULL, 'S' },
		{ "interval", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct workload w = { .type = WL_ANON, .len = 4UL << 20 };
	bool prefault = true, scripted = false, quiet = false;
	unsigned long long epochs = 0, per_epoch = 16, seed = 1, interval = 0;
	const char *path = NULL;
	char *line = NULL;
	size_t cap = 0, i;
	int c;

	while ((c = getopt_long(argc, argv, "t:s:f:Pe:k:S:i:qh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
				if (!strcmp(optarg, type_names[i]))
					break;
			if (i == sizeof(type_names) / sizeof(type_names[0])) {
				usage(stderr);
				return 2;
			}
			w.type = i;
			break;
		case 's':
			if (parse_size(optarg, &w.len) || w.len < PAGE_SIZE) {
				usage(stderr);
				return 2;
			}
			w.len &= ~(PAGE_SIZE - 1);
			break;
		case 'f':
			path = optarg;
			break;
		case 'P':
			prefault = false;
			break;
		case 'e':
			epochs = strtoull(optarg, NULL, 0);
			scripted = true;
			break;
		case 'k':
			per_epoch = strtoull(optarg, NULL, 0);
			break;
		case 'S':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'i':
			interval = strtoull(optarg, NULL, 0);
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	map_region(&w, path);
	w.rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	w.picked = calloc(w.pages, sizeof(*w.picked));
	w.seen = calloc(w.pages, 1);
	if (!w.picked || !w.seen)
		die("out of memory");
	if (prefault)
		for (i = 0; i < w.pages; i++)
			write_page(&w, i);
	printf("pid %d addr 0x%lx len %zu pages %zu type %s\n", getpid(),
	       (unsigned long)w.region, w.len, w.pages, type_names[w.type]);
	fflush(stdout);

	if (!scripted) {
		command_loop(&w);
		return 0;
	}
	for (i = 0; !epochs || i < epochs; i++) {
		if (interval) {
			struct timespec ts = {
				.tv_sec = interval / 1000,
				.tv_nsec = (interval % 1000) * 1000000,
			};

			nanosleep(&ts, NULL);
		} else if (getline(&line, &cap, stdin) <= 0) {
			break;
		}
		random_epoch(&w, per_epoch, quiet);
	}
	if (!quiet) {
		printf("done\n");
		fflush(stdout);
	}
	/*
	 * Without an interval, stay until stdin closes so that the last
	 * epoch can be collected while the process still exists.
	 */
	if (!interval)
		while (getline(&line, &cap, stdin) > 0)
			;
	free(line);
	return 0;
}
