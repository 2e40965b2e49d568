/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal generic netlink client of the dtrack family, on raw sockets so the
 * benchmark depends on nothing but the UAPI header (and measures netlink's
 * real cost, with no library in between).
 */
#ifndef BENCH_DTNL_H
#define BENCH_DTNL_H

#include <stdint.h>

struct dtnl {
	int fd;
	uint16_t family;
	uint32_t seq;
	char *buf;
	size_t buf_size;
	size_t recv_len;	/* recv() length, see below */
};

/*
 * recv_len: a page, at most 8 KiB (libmnl's MNL_SOCKET_BUFFER_SIZE), as
 * the CLI (tools/nl.c).  The kernel sizes each dump message's skb by the
 * largest recv() length the socket has seen (netlink_dump(), up to
 * 32 KiB), and Debian's kernels zero every allocation (init_on_alloc): a
 * 128 KiB recv() made every COLLECT pay a zeroed 32 KiB skb, 55 us under
 * TCG, more than the whole collect of an idle range.  A page gives
 * one-page messages (NLMSG_GOODSIZE), which any reply fits in.
 * BENCH_DTNL_RECV raises it (bytes, up to 128 KiB), to measure the
 * difference.
 */

/* Called for every dirty run of a collect: first page address, pages */
typedef void (*dtnl_run_cb)(void *arg, uint64_t addr, uint64_t pages);
/*
 * Called for every bitmap piece of a DTRACK_COLLECT_BITMAP collect: bit i of
 * words[j] = page addr + (64 j + i) pages dirty (words not necessarily aligned).
 */
typedef void (*dtnl_bitmap_cb)(void *arg, uint64_t addr, const uint64_t *words,
			       size_t nwords);

int dtnl_open(struct dtnl *nl);
void dtnl_close(struct dtnl *nl);
/* GET_VERSION: bitmask (1 << method) of methods the module implements */
int dtnl_methods(struct dtnl *nl, uint32_t *methods, char *version, size_t vlen);
/* CREATE: returns the tracker id (> 0) or -errno (EOPNOTSUPP: no method) */
int dtnl_create(struct dtnl *nl, int pid, uint64_t addr, uint64_t len, int method);
int dtnl_destroy(struct dtnl *nl, uint32_t id);
/* COLLECT (dump), with DTRACK_COLLECT_RESET if reset; returns 0 or -errno */
int dtnl_collect(struct dtnl *nl, uint32_t id, int reset, dtnl_run_cb cb,
		 void *arg, uint64_t *nr_dirty, uint32_t *result_flags);
/*
 * COLLECT answered as bitmaps (DTRACK_COLLECT_BITMAP); -EINVAL from a module
 * that predates the flag
 */
int dtnl_collect_bitmap(struct dtnl *nl, uint32_t id, int reset, dtnl_bitmap_cb cb,
			void *arg, uint64_t *nr_dirty, uint32_t *result_flags);
/* GET_TRACKER: the module's own time for the last collect (no netlink) */
int dtnl_last_collect_ns(struct dtnl *nl, uint32_t id, uint64_t *ns);

#endif
