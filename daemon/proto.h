/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wire protocol between libpager and pagerd, over an AF_UNIX SOCK_SEQPACKET
 * socket (one message per packet, file descriptors with SCM_RIGHTS).
 *
 * Requests are strictly request/response on the main socket.  pagerd's own
 * requests to the client (drop pages) travel on a separate "evict channel"
 * socketpair that the client passes in HELLO and serves from a helper
 * thread, so that pagerd never waits for a client on the main socket.
 */
#ifndef PAGER_PROTO_H
#define PAGER_PROTO_H

#include <stdint.h>

#define PAGER_MAGIC	0x50475231u	/* "PGR1" */
#define PAGER_MAX_MSG	65536

enum pager_msg_type {
	/*
	 * fds: uffd, /proc/self/mem, /proc/self/pagemap, evict chan
	 * [, synchronous uffd for shared regions when uffd has WP_ASYNC]
	 */
	PAGER_MSG_HELLO = 1,
	PAGER_MSG_MAP,		/* fds: backing file [, memfd] */
	PAGER_MSG_UNMAP,
	PAGER_MSG_SYNC,
	PAGER_MSG_EVICT,
	PAGER_MSG_PREFETCH,
	PAGER_MSG_STATS,	/* binary struct pager_stats */
	PAGER_MSG_STATS_TEXT,	/* formatted text or JSON */
	PAGER_MSG_DEAD,		/* guardian: client with token died, flush it */
	PAGER_MSG_BYE,
	PAGER_MSG_REPLY = 64,
	PAGER_MSG_DROP = 65,	/* evict channel: pagerd -> client */
	PAGER_MSG_DROP_DONE,
};

struct pager_msg_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint32_t len;		/* total length including this header */
	uint32_t seq;
};

struct pager_hello {
	struct pager_msg_hdr hdr;
	uint64_t token;		/* names this client to its guardian */
	uint32_t nr_fds;	/* 4, or 5 with a WP_ASYNC uffd */
	uint32_t features;	/* PAGER_HELLO_*; 0 from older clients */
	uint64_t staging;	/* the helper's staging area (async), or 0 */
};

/*
 * HELLO features announce what the client can do; pagerd uses those it
 * knows and ignores the others (a newer client still works with it).
 */
#define PAGER_HELLO_HELPER_WRITE	0x1	/* takes PAGER_DROP_WRITE */
#define PAGER_HELLO_STAGING_SLOTS	0x2	/* staging has PAGER_STAGING_SLOTS */
#define PAGER_HELLO_RESTORE		0x4	/* takes PAGER_DROP_RESTORE */

#define PAGER_MAP_REATTACH	0x1	/* region survives from a previous pagerd */

/*
 * Regions one connection may have at once (more: -EMFILE).  libpager's
 * guardian holds as many, so that it can hand every one of a dead
 * client's regions to the next pagerd.
 */
#define PAGER_MAX_REGIONS	4096

struct pager_map_req {
	struct pager_msg_hdr hdr;
	uint64_t addr;
	uint64_t len;
	uint32_t flags;		/* PAGER_SHARED | PAGER_TEMPORARY */
	uint32_t map_flags;	/* PAGER_MAP_REATTACH */
};

/* UNMAP, SYNC, EVICT, PREFETCH, STATS */
struct pager_range_req {
	struct pager_msg_hdr hdr;
	uint64_t addr;		/* region start (UNMAP, STATS) or range start */
	uint64_t len;
};

#define PAGER_STATS_JSON	0x1
/*
 * STATS_TEXT without scanning the regions for writes first (asynchronous
 * mode): libpager's connect-time probe wants the write-protect mode only,
 * and a scan of every client's regions would delay each connect.  Older
 * pagerds ignore the flag.
 */
#define PAGER_STATS_NOSCAN	0x2

struct pager_reply {
	struct pager_msg_hdr hdr;
	int32_t status;		/* 0 or -errno */
	uint32_t pad;
	/* followed by payload for STATS / STATS_TEXT */
};

#define PAGER_DROP_MAX	64

/*
 * DROP hdr.flags.  PAGER_DROP_MOVE: instead of MADV_DONTNEED, UFFDIO_MOVE
 * the ranges, in order, back to back into the helper's staging area (whose
 * previous content is freed first).  The move takes each page out
 * atomically, so a write racing with eviction faults MISSING and waits for
 * pagerd.
 *
 * An eviction batch (up to PAGER_STAGING_PAGES pages) whose pages form more
 * than PAGER_DROP_MAX ranges takes several requests; all but the first
 * carry PAGER_DROP_APPEND: the helper keeps what staging holds and adds the
 * new pages after it.  Staging must hold the whole batch until it is in
 * the file, since it is all libpager can put back if pagerd dies.
 * PAGER_DROP_RELEASE (nr 0, no answer): the batch is in the file (or back
 * in the region); the helper forgets it, so a later restore cannot put a
 * stale copy back over a page that was refilled and dropped since.
 *
 * PAGER_DROP_WRITE (with MOVE, to a client that announced
 * PAGER_HELLO_HELPER_WRITE): every range is a dirty part of one region;
 * after moving, the helper also writes the moved pages from staging to
 * the region's backing file, which it holds anyway, and sets
 * pager_drop_done.written if every one of them is written.  That saves
 * pagerd reading them out of the client (a copy) before its own write.
 * They stay in staging until the release like all moved pages, since
 * only pagerd's fdatasync makes them durable.  Without .written pagerd
 * reads them and writes them itself, so an older helper that ignores the
 * flag, or a write that fails, loses nothing.
 *
 * PAGER_DROP_RESTORE (nr 0, to a client that announced
 * PAGER_HELLO_RESTORE): put the batch in the slot back where it came
 * from, as libpager does when pagerd dies, then forget it; answered with
 * the first error of a page that could not be put back (status), else 0.
 * pagerd asks for it when it cannot account for a batch's pages itself:
 * it could not read what was moved, or not put back a page whose write
 * failed.  Staging then holds their only copy, and pagerd takes every
 * page of the batch the region has again for resident and dirty.
 */
#define PAGER_DROP_MOVE		0x1
#define PAGER_DROP_APPEND	0x2
#define PAGER_DROP_RELEASE	0x4
#define PAGER_DROP_WRITE	0x8
#define PAGER_DROP_RESTORE	0x10
#define PAGER_STAGING_PAGES	256	/* = pagerd's WB_BATCH */

/*
 * Staging slots (PAGER_HELLO_STAGING_SLOTS): the helper's staging area is
 * PAGER_STAGING_SLOTS slots of PAGER_STAGING_PAGES pages, slot s at
 * HELLO's staging + s * PAGER_STAGING_PAGES pages, and pager_drop.slot
 * names the slot a move, an append or a release is for.  Everything said
 * above of "staging" holds per slot: a batch owns its slot from its
 * first move to its release.  With two slots pagerd has the next batch
 * moved and written while it settles the last one.  A helper without the
 * feature has one slot, and pagerd sends slot 0 only.  The helper answers
 * in the order it was asked.
 */
#define PAGER_STAGING_SLOTS	2

struct pager_drop_range {
	uint64_t addr;
	uint64_t len;
};

struct pager_drop {
	struct pager_msg_hdr hdr;
	uint32_t nr;
	uint32_t slot;		/* MOVE, APPEND, RELEASE, RESTORE: the slot */
	struct pager_drop_range r[PAGER_DROP_MAX];
};

struct pager_drop_done {
	struct pager_msg_hdr hdr;
	int32_t status;
	uint32_t written;	/* PAGER_DROP_WRITE: 1 if all moved pages are */
	uint64_t staging;	/* PAGER_DROP_MOVE: where this request's pages are */
	uint64_t moved;		/* bytes of the ranges handled, in order */
};

#endif /* PAGER_PROTO_H */
