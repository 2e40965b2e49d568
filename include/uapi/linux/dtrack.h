/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dtrack: per-mapping dirty-page tracking of any process's address range.
 *
 * This header is the one contract between the dtrack kernel module and the
 * tools that talk to it over generic netlink.  Rules for changing it:
 * values are never renumbered or reused; new commands, attributes, methods,
 * flags and events are appended just before their __*_MAX entry; a change
 * that old tools cannot ignore bumps DTRACK_GENL_VERSION.
 */
#ifndef _UAPI_LINUX_DTRACK_H
#define _UAPI_LINUX_DTRACK_H

#include <linux/types.h>

#define DTRACK_GENL_NAME		"dtrack"
#define DTRACK_GENL_VERSION		1
#define DTRACK_MCGRP_EVENTS		"events"

/*
 * Methods.  A tracker uses exactly one; several trackers (of any methods) may
 * cover the same range, each with its own epochs.
 */
enum dtrack_method {
	DTRACK_METHOD_UNSPEC,
	DTRACK_METHOD_SOFTDIRTY,	/* page-table scan of soft-dirty bits */
	DTRACK_METHOD_WPFAULT,		/* write-protect, record first writes */
	DTRACK_METHOD_HWDIRTY,		/* scan + clear hardware dirty bits */
	DTRACK_METHOD_ACCESSED,		/* scan + clear accessed bits */
	__DTRACK_METHOD_MAX,
};
#define DTRACK_METHOD_MAX (__DTRACK_METHOD_MAX - 1)

/* DTRACK_A_FLAGS of DTRACK_CMD_CREATE */
enum dtrack_create_flags {
	/* survive the close of the creating netlink socket */
	DTRACK_F_PERSISTENT		= 1U << 0,
};
#define DTRACK_F_ALL			(DTRACK_F_PERSISTENT)

/* DTRACK_A_COLLECT_FLAGS of DTRACK_CMD_COLLECT */
enum dtrack_collect_flags {
	/* atomically start the next epoch after taking this one's dirty set */
	DTRACK_COLLECT_RESET		= 1U << 0,
	/*
	 * Answer with DTRACK_A_BITMAP nests instead of DTRACK_A_RUN: 8 bytes
	 * per 64 pages of the dirty span (zero stretches skipped) instead of
	 * 28 bytes per run.  Modules before 0.3.0 reject the flag (EINVAL).
	 */
	DTRACK_COLLECT_BITMAP		= 1U << 1,
};
#define DTRACK_COLLECT_ALL		(DTRACK_COLLECT_RESET | DTRACK_COLLECT_BITMAP)

/* DTRACK_A_RESULT_FLAGS of a collect answer */
enum dtrack_result_flags {
	/*
	 * The epoch could not be tracked exactly (e.g. the wpfault log
	 * overflowed); the answer is conservative: a superset of the writes.
	 */
	DTRACK_RESULT_CONSERVATIVE	= 1U << 0,
};

/* Tracker states (DTRACK_STAT_A_STATE) */
enum dtrack_state {
	DTRACK_STATE_ACTIVE = 1,
	DTRACK_STATE_ENDED,		/* target exited or range unmapped */
};

/* Events (DTRACK_A_EVENT of DTRACK_CMD_EVENT notifications) */
enum dtrack_event {
	DTRACK_EVENT_UNSPEC,
	DTRACK_EVENT_TARGET_EXIT,	/* tracker ended: target process exited */
	DTRACK_EVENT_UNMAPPED,		/* tracker ended: range fully unmapped */
	DTRACK_EVENT_LOG_OVERFLOW,	/* wpfault log overflowed this epoch */
	DTRACK_EVENT_DESTROYED,		/* tracker destroyed (command/socket) */
	__DTRACK_EVENT_MAX,
};
#define DTRACK_EVENT_MAX (__DTRACK_EVENT_MAX - 1)

enum dtrack_cmd {
	DTRACK_CMD_UNSPEC,
	/* -> VERSION, UAPI_VERSION, METHODS, limits */
	DTRACK_CMD_GET_VERSION,
	/* PID, ADDR, LEN, METHOD, [FLAGS] -> TRACKER_ID (epoch 1 begins) */
	DTRACK_CMD_CREATE,
	/* TRACKER_ID */
	DTRACK_CMD_DESTROY,
	/*
	 * TRACKER_ID, [COLLECT_FLAGS]; dump only.  Every message of the dump
	 * carries TRACKER_ID and EPOCH; the first also RESULT_FLAGS and
	 * NR_DIRTY; runs follow as DTRACK_A_RUN nests in address order, or
	 * with DTRACK_COLLECT_BITMAP as DTRACK_A_BITMAP nests (address order,
	 * disjoint, none spanning two messages).
	 */
	DTRACK_CMD_COLLECT,
	/* doit: TRACKER_ID -> tracker; dumpit: every tracker visible */
	DTRACK_CMD_GET_TRACKER,
	/* multicast notification on DTRACK_MCGRP_EVENTS */
	DTRACK_CMD_EVENT,
	__DTRACK_CMD_MAX,
};
#define DTRACK_CMD_MAX (__DTRACK_CMD_MAX - 1)

enum dtrack_attr {
	DTRACK_A_UNSPEC,
	DTRACK_A_PAD,
	DTRACK_A_VERSION,		/* string: module version */
	DTRACK_A_UAPI_VERSION,		/* u32: DTRACK_GENL_VERSION of module */
	DTRACK_A_METHODS,		/* u32: bit (1 << method) per method */
	DTRACK_A_TRACKER_ID,		/* u32, never 0 */
	DTRACK_A_PID,			/* u32: target pid (caller's pid ns) */
	DTRACK_A_ADDR,			/* u64: page aligned */
	DTRACK_A_LEN,			/* u64: bytes, page aligned, > 0 */
	DTRACK_A_METHOD,		/* u32: enum dtrack_method */
	DTRACK_A_FLAGS,			/* u32: DTRACK_F_* */
	DTRACK_A_COLLECT_FLAGS,		/* u32: DTRACK_COLLECT_* */
	DTRACK_A_EPOCH,			/* u64: epoch reported (first is 1) */
	DTRACK_A_RESULT_FLAGS,		/* u32: DTRACK_RESULT_* */
	DTRACK_A_NR_DIRTY,		/* u64: dirty pages in this answer */
	DTRACK_A_RUN,			/* nest: enum dtrack_run_attr */
	DTRACK_A_STATS,			/* nest: enum dtrack_stat_attr */
	DTRACK_A_EVENT,			/* u32: enum dtrack_event */
	DTRACK_A_MAX_TRACKERS,		/* u32: global limit */
	DTRACK_A_MAX_PAGES,		/* u64: global limit on tracked pages */
	DTRACK_A_NR_TRACKERS,		/* u32: trackers now */
	DTRACK_A_NR_PAGES,		/* u64: tracked pages now, all trackers */
	DTRACK_A_BITMAP,		/* nest: enum dtrack_bitmap_attr */
	__DTRACK_A_MAX,
};
#define DTRACK_A_MAX (__DTRACK_A_MAX - 1)

enum dtrack_run_attr {
	DTRACK_RUN_A_UNSPEC,
	DTRACK_RUN_A_PAD,
	DTRACK_RUN_A_ADDR,		/* u64: first page of the run */
	DTRACK_RUN_A_PAGES,		/* u64: base pages in the run */
	__DTRACK_RUN_A_MAX,
};
#define DTRACK_RUN_A_MAX (__DTRACK_RUN_A_MAX - 1)

/*
 * A piece of a collect answer as a bitmap: bit i (0..63) of word j of
 * WORDS set = page ADDR + (64 * j + i) * page size dirty.  ADDR is page
 * aligned (bit 0 is the tracked range's first page, or a multiple of 64
 * pages after it); WORDS is a multiple of 8 bytes, 8-byte aligned from the
 * start of the first message of the datagram (a PAD attribute precedes it
 * when needed), so in a receive buffer that is 8-byte aligned.
 */
enum dtrack_bitmap_attr {
	DTRACK_BITMAP_A_UNSPEC,
	DTRACK_BITMAP_A_PAD,
	DTRACK_BITMAP_A_ADDR,		/* u64: address of the page of bit 0 */
	DTRACK_BITMAP_A_WORDS,		/* binary: u64 words, host order */
	__DTRACK_BITMAP_A_MAX,
};
#define DTRACK_BITMAP_A_MAX (__DTRACK_BITMAP_A_MAX - 1)

enum dtrack_stat_attr {
	DTRACK_STAT_A_UNSPEC,
	DTRACK_STAT_A_PAD,
	DTRACK_STAT_A_STATE,		/* u32: enum dtrack_state */
	DTRACK_STAT_A_EPOCH,		/* u64: current epoch */
	DTRACK_STAT_A_COLLECTS,		/* u64 */
	DTRACK_STAT_A_RESETS,		/* u64 */
	DTRACK_STAT_A_PAGES,		/* u64: pages in the tracked range */
	DTRACK_STAT_A_LAST_DIRTY,	/* u64: dirty pages in last collect */
	DTRACK_STAT_A_LAST_COLLECT_NS,	/* u64: cost of last collect */
	DTRACK_STAT_A_FAULTS,		/* u64: write faults captured */
	DTRACK_STAT_A_LOG_OVERFLOWS,	/* u64 */
	DTRACK_STAT_A_FALSE_POSITIVES,	/* u64: documented conservative pages */
	DTRACK_STAT_A_MAX_PAGES,	/* u64: per-tracker page limit */
	DTRACK_STAT_A_LOG_SIZE,		/* u32: wpfault log capacity */
	__DTRACK_STAT_A_MAX,
};
#define DTRACK_STAT_A_MAX (__DTRACK_STAT_A_MAX - 1)

#endif /* _UAPI_LINUX_DTRACK_H */
