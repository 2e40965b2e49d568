/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pager.h - client API of pagerd, a user-space external pager (Mach-style
 * memory manager) for anonymous memory, built on userfaultfd and io_uring.
 *
 * A region of len bytes is backed by a file: region byte i is file byte i.
 * Existing file content is the initial content, beyond EOF the region reads
 * zeros.  Pages are filled on first touch, tracked dirty with userfaultfd
 * write-protection, written back and dropped under pagerd's global budget.
 *
 * All functions are thread-safe.  pager_connect() and pager_map() return
 * NULL with errno set on failure; the others return 0 or -errno.
 */
#ifndef PAGER_H
#define PAGER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default socket when neither the argument nor $PAGER_SOCKET is set. */
#define PAGER_DEFAULT_SOCKET	"/run/pagerd.sock"

/* pager_map() flags */
#define PAGER_SHARED	0x1	/* shared anonymous memory (memfd/shmem) */
#define PAGER_TEMPORARY	0x2	/* content is scratch: unmap discards it */

/* Smallest anonymous mapping libpager-preload.so hands to pagerd. */
#define PAGER_MIN_MAP_DEFAULT	(1UL << 20)

#define PAGER_LAT_BUCKETS	16	/* log2(us) buckets: <1us .. >=16ms */

struct pager;

/* Counters, global (addr == NULL) or of one region. */
struct pager_stats {
	uint64_t faults;		/* missing + write-protect faults */
	uint64_t missing_faults;
	uint64_t wp_faults;		/* first writes to clean pages */
	uint64_t fills_file;		/* pages filled with data read from file */
	uint64_t fills_zero;		/* pages zero-filled without I/O */
	uint64_t readahead;		/* pages filled ahead of a fault */
	uint64_t writebacks;		/* pages written to file */
	uint64_t evictions;		/* pages dropped */
	uint64_t bytes_in;		/* bytes read from files */
	uint64_t bytes_out;		/* bytes written to files */
	uint64_t wb_errors;		/* failed page write-backs */
	uint64_t vanished;		/* resident pages the client lost itself */
	int32_t last_error;		/* last write-back error (-errno) */
	uint32_t nr_regions;
	uint64_t resident;		/* resident pages */
	uint64_t dirty;			/* dirty pages */
	uint64_t budget;		/* budget in pages (global only) */
	uint64_t lat_hist[PAGER_LAT_BUCKETS];
};

struct pager *pager_connect(const char *socket_path);
void *pager_map(struct pager *p, size_t len, const char *backing_path,
		int flags);
int pager_sync(struct pager *p, void *addr, size_t len);
int pager_evict(struct pager *p, void *addr, size_t len);
int pager_prefetch(struct pager *p, void *addr, size_t len);
int pager_unmap(struct pager *p, void *addr);
int pager_stats(struct pager *p, void *addr, struct pager_stats *st);
void pager_disconnect(struct pager *p);

#ifdef __cplusplus
}
#endif
#endif /* PAGER_H */
