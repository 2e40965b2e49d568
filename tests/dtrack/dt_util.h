/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the dtrack VM tests: netlink requests come from the CLI's
 * own client code (tools/dtrack.h); this adds module load/unload, regions of
 * every backing kind, dirty bitmaps, events and privilege dropping.
 * Nothing here uses the harness: callers assert on the results.
 */
#ifndef DT_UTIL_H
#define DT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "dtrack.h"

#define PAGE_SZ		4096UL
#define HPAGE_SZ	(2UL << 20)
#define NOBODY		65534

/* ---- module ---------------------------------------------------------- */

/* Is the family registered?  (fresh socket, no privilege needed) */
bool dt_loaded(void);
/* Path of the module in the guest ($DTRACK_KO) or NULL if unset/absent. */
const char *dt_ko_path(void);
/*
 * NULL where loading and unloading the module is safe; else why not, for
 * a SKIP.  Loading and unloading arm and disarm the wpfault kretprobe, a
 * live rewrite of handle_mm_fault()'s entry, and QEMU 7.2's
 * multi-threaded TCG (DTRACK_VM_ACCEL=tcg-multi) runs stale code during
 * such rewrites: a vCPU faulting meanwhile oopses with RIP 0, with the
 * kernel's own kprobe_events as well.  run-tests.sh runs the reload tests
 * again in a single-threaded TCG guest.
 */
const char *dt_reload_unsafe(void);
/* delete_module("dtrack"); 0 or -errno. */
int dt_unload(void);
/* finit_module($DTRACK_KO); 0 or -errno (-ENOENT without DTRACK_KO). */
int dt_load(void);
/* Same with module parameters ("name=value ..."). */
int dt_load_params(const char *params);
/* Load it back if a test left it unloaded; 0 or -errno. */
int dt_ensure_loaded(void);

/*
 * Open a socket on the family, and read the module's version.  Returns 0,
 * -ENOENT when the module is not loaded, or -errno.
 */
int dt_open(struct dt_nl *nl, struct dt_version *v);
/*
 * Can the module track with method m?  0 if so, else writes why into
 * reason (METHODS bit missing, or CREATE said EOPNOTSUPP) and returns
 * -EOPNOTSUPP; other errors are returned as -errno.
 */
int dt_method_check(struct dt_nl *nl, const struct dt_version *v,
		    uint32_t method, char *reason, size_t reason_len);
/* Number of trackers visible in a GET_TRACKER dump, or -errno. */
int dt_count_trackers(struct dt_nl *nl);

/* ---- regions --------------------------------------------------------- */

enum dt_backing {
	DT_ANON,		/* private anonymous, 4 KiB pages */
	DT_SHMEM,		/* shared anonymous */
	DT_FILE_SHARED,		/* MAP_SHARED of a file in $TEST_SCRATCH */
	DT_FILE_PRIVATE,	/* MAP_PRIVATE of such a file */
	DT_THP,			/* private anonymous, 2 MiB aligned, MADV_HUGEPAGE */
};

const char *dt_backing_name(enum dt_backing b);
/*
 * Map len bytes of that kind (len rounded up to 2 MiB for THP);
 * MAP_FAILED with errno set on failure.
 */
void *dt_map(enum dt_backing b, size_t len);
/* Is THP usable for anonymous memory ("never" or absent: no)? */
bool dt_thp_available(void);
/* Bytes of [addr, addr+len) backed by anonymous huge pages (smaps). */
long dt_anon_huge_bytes(void *addr, size_t len);

/* Store to page idx of region so that its content changes. */
static inline void dt_touch(void *region, size_t idx)
{
	volatile char *p = (char *)region + idx * PAGE_SZ;

	p[idx % 128] = (char)(p[idx % 128] + 1);
}

/* ---- dirty sets ------------------------------------------------------ */

/*
 * Collect tracker id into a page bitmap (one byte per page) of
 * [base, base + npages pages).  *outside counts reported pages outside.
 * Returns 0 or -errno; c (optional) gets the collect header.
 */
int dt_collect_map(struct dt_nl *nl, uint32_t id, uint32_t flags,
		   uintptr_t base, size_t npages, uint8_t *map,
		   uint64_t *outside, struct dt_collect *c);
/* Pages set in want but not in got (false negatives), first one in *first. */
size_t dt_missing(const uint8_t *want, const uint8_t *got, size_t n,
		  size_t *first);
/* Pages set in got but not in want. */
size_t dt_extra(const uint8_t *want, const uint8_t *got, size_t n);
size_t dt_count(const uint8_t *map, size_t n);
/* Pick k distinct random pages into map (cleared first). */
void dt_pick(uint64_t *rng, uint8_t *map, size_t n, size_t k);
uint64_t dt_rand(uint64_t *rng);

/*
 * /proc/PID/pagemap of [base, base + npages): sd[i] = soft-dirty bit 55,
 * present[i] = bit 63.  Either may be NULL.  0 or -errno.
 */
int dt_pagemap(pid_t pid, uintptr_t base, size_t npages, uint8_t *sd,
	       uint8_t *present);

/* ---- events ---------------------------------------------------------- */

/* Open a socket subscribed to the events group; 0 or -errno. */
int dt_events_open(struct dt_nl *nl);
/*
 * Wait up to timeout_ms for an event of that type about tracker id.
 * Returns 0, -ETIMEDOUT or -errno.
 */
int dt_wait_event(struct dt_nl *nl, uint32_t event, uint32_t id,
		  int timeout_ms);

/* ---- target processes ------------------------------------------------ */

/*
 * A forked target process owning one region, writing the pages it is told
 * to over a pipe (so that the tracker's target is another process).
 */
struct dt_target {
	pid_t pid;
	uintptr_t addr;
	size_t len;
	size_t npages;
	long huge_bytes;	/* AnonHugePages of the region after prefault */
	int to_fd;		/* commands */
	int from_fd;		/* answers */
};

/*
 * Start a target mapping len bytes of backing b; prefault[i] set: page i is
 * written before it answers (NULL: all pages).  0 or -errno.
 */
int dt_target_start(struct dt_target *t, enum dt_backing b, size_t len,
		    const uint8_t *prefault);
/* Have the target write every page set in map; 0 or -errno. */
int dt_target_write(struct dt_target *t, const uint8_t *map);
/*
 * The same with a plain store, in ascending order: a first access that is
 * a write fault (no zero page mapped by a read first).
 */
int dt_target_store(struct dt_target *t, const uint8_t *map);
/* Ask the target to exit and reap it; its status. */
int dt_target_stop(struct dt_target *t);
/* SIGKILL it and reap it. */
void dt_target_kill(struct dt_target *t);

/* ---- processes ------------------------------------------------------- */

/*
 * Drop to uid/gid NOBODY; with keep_net_admin, keep CAP_NET_ADMIN (and
 * only it) effective.  0 or -errno.
 */
int dt_become_nobody(bool keep_net_admin);
/* waitpid() a child; its exit status, 128 + signal, or -errno. */
int dt_wait_child(pid_t pid);

/* ---- small things the tests share ------------------------------------- */

/* The dirty-tracking methods (accessed aside). */
extern const uint32_t dt_dirty_methods[3];
/* First dirty method the module can track with, or 0 (reason in why). */
uint32_t dt_any_method(struct dt_nl *nl, const struct dt_version *v,
		       char *why, size_t why_len);
/* Is -err one of the n errnos in set? */
bool dt_errno_in(int err, const int *set, size_t n);
void dt_sleep_ms(long ms);
/* Wait until GET_TRACKER says ENDED or the tracker is gone; 0 or -errno. */
int dt_wait_ended(struct dt_nl *nl, uint32_t id, int timeout_ms);

#endif /* DT_UTIL_H */
