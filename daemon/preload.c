// SPDX-License-Identifier: GPL-2.0
/*
 * libpager-preload.so - run an unmodified program with its big anonymous
 * memory paged by pagerd:
 *
 *   LD_PRELOAD=libpager-preload.so PAGER_SOCKET=... [PAGER_MIN_MAP=1M] prog
 *
 * Allocations of at least PAGER_MIN_MAP bytes (malloc family, and private
 * anonymous read-write mmap(NULL, ...)) become pagerd regions backed by an
 * unlinked temporary file (O_TMPFILE in $PAGER_TMPDIR, default /var/tmp),
 * so nothing is left behind at exit, whatever the exit.  glibc's malloc
 * maps big chunks with an internal mmap that LD_PRELOAD cannot see, which
 * is why the malloc family is interposed too; smaller requests go to glibc.
 * If pagerd cannot be reached the program runs unpaged (one warning).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "pager.h"

#define MAX_BIG	4096
#define PS	4096UL

/* glibc's own allocator, under the names it exports for interposers */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void __libc_free(void *p);

struct big {
	uintptr_t addr;
	size_t len;
};

static struct big bigs[MAX_BIG];
static int nr_bigs;
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct pager *pager;
static size_t min_map = PAGER_MIN_MAP_DEFAULT;
static pid_t owner;
static bool disabled;
/* set while libpager runs: its own allocations must not recurse */
static __thread int in_pager;

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		break;
	}
	return v;
}

static void atfork_child(void)
{
	/* regions are MADV_DONTFORK and the connection is the parent's */
	disabled = true;
}

static void init(void)
{
	const char *s = getenv("PAGER_MIN_MAP");

	in_pager++;
	if (s && *s && parse_size(s))
		min_map = parse_size(s);
	owner = getpid();
	pager = pager_connect(NULL);
	if (!pager) {
		fprintf(stderr, "libpager-preload: pagerd not reachable (%s),"
			" running unpaged\n", strerror(errno));
		disabled = true;
	}
	pthread_atfork(NULL, NULL, atfork_child);
	in_pager--;
}

static void *big_alloc(size_t size)
{
	void *p;

	if (in_pager || disabled || size < min_map)
		return NULL;
	pthread_once(&once, init);
	if (disabled || getpid() != owner)
		return NULL;
	in_pager++;
	p = pager_map(pager, size, NULL, PAGER_TEMPORARY);
	if (!p) {
		static bool warned;

		if (!warned)
			fprintf(stderr, "libpager-preload: pager_map: %s, "
				"this allocation is not paged\n",
				strerror(errno));
		warned = true;
		in_pager--;
		return NULL;
	}
	in_pager--;
	pthread_mutex_lock(&big_lock);
	if (nr_bigs == MAX_BIG) {
		pthread_mutex_unlock(&big_lock);
		in_pager++;
		pager_unmap(pager, p);
		in_pager--;
		return NULL;
	}
	bigs[nr_bigs].addr = (uintptr_t)p;
	bigs[nr_bigs++].len = (size + PS - 1) & ~(PS - 1);
	pthread_mutex_unlock(&big_lock);
	return p;
}

/* Our regions are page aligned: others are rejected without the lock. */
static size_t big_find(const void *p, bool remove)
{
	size_t len = 0;

	if (!p || ((uintptr_t)p & (PS - 1)) || !nr_bigs)
		return 0;
	pthread_mutex_lock(&big_lock);
	for (int i = 0; i < nr_bigs; i++) {
		if (bigs[i].addr != (uintptr_t)p)
			continue;
		len = bigs[i].len;
		if (remove)
			bigs[i] = bigs[--nr_bigs];
		break;
	}
	pthread_mutex_unlock(&big_lock);
	return len;
}

static void big_free(void *p)
{
	if (getpid() != owner)
		return;	/* a child's copy never existed (DONTFORK) */
	in_pager++;
	pager_unmap(pager, p);
	in_pager--;
}

void *malloc(size_t size)
{
	void *p = big_alloc(size);

	return p ? p : __libc_malloc(size);
}

void free(void *p)
{
	if (big_find(p, true))
		big_free(p);
	else
		__libc_free(p);
}

void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	/* a fresh region reads zeros: no memset, no page touched */
	p = big_alloc(total);
	return p ? p : __libc_calloc(n, size);
}

void *realloc(void *old, size_t size)
{
	size_t old_len;
	void *p;

	if (!old)
		return malloc(size);
	old_len = big_find(old, false);
	if (old_len) {
		if (size && size <= old_len)
			return old;
		p = malloc(size);
		if (!p)
			return NULL;
		memcpy(p, old, old_len);
		free(old);
		return p;
	}
	if (size >= min_map && !in_pager && !disabled) {
		size_t usable = malloc_usable_size(old);

		p = big_alloc(size);
		if (p) {
			memcpy(p, old, usable < size ? usable : size);
			__libc_free(old);
			return p;
		}
	}
	return __libc_realloc(old, size);
}

void *memalign(size_t align, size_t size)
{
	void *p = align <= PS ? big_alloc(size) : NULL;

	return p ? p : __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t size)
{
	return memalign(PS, size);
}

void *pvalloc(size_t size)
{
	return memalign(PS, (size + PS - 1) & ~(PS - 1));
}

size_t malloc_usable_size(void *p)
{
	static size_t (*real)(void *);
	size_t len = big_find(p, false);

	if (len)
		return len;
	if (!real)
		real = dlsym(RTLD_NEXT, "malloc_usable_size");
	return real ? real(p) : 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!addr && fd == -1 && prot == (PROT_READ | PROT_WRITE) &&
	    (flags & MAP_TYPE) == MAP_PRIVATE && (flags & MAP_ANONYMOUS) &&
	    !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_GROWSDOWN |
		       MAP_HUGETLB | MAP_STACK))) {
		void *p = big_alloc(len);

		if (p)
			return p;
	}
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

int munmap(void *addr, size_t len)
{
	size_t blen = big_find(addr, false);

	if (blen) {
		/* partial unmaps of a region are ignored: freed at exit */
		if (len < blen)
			return 0;
		big_find(addr, true);
		big_free(addr);
		return 0;
	}
	return syscall(SYS_munmap, addr, len);
}
