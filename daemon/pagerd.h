/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagerd internal interfaces.
 *
 * Locking: one global mutex, pd.lock, protects every region/page/connection
 * field and the statistics.  It is never held across I/O, across an ioctl on
 * a client's userfaultfd or across a round trip to a client.  Instead a page
 * that is being worked on is put into a busy state (FILLING, UNPROTECT,
 * WRITEBACK, EVICTING); only the thread that set the busy state touches the
 * kernel state of that page (its PTE through the uffd, its file blocks), and
 * it ends the busy state under pd.lock, waking userfaultfd waiters if a fault
 * arrived meanwhile (PGF_WAITERS) and broadcasting pd.cond.
 */
#ifndef PAGERD_H
#define PAGERD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <liburing.h>

#include "pager.h"
#include "proto.h"

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define RA_MAX		64	/* readahead window through a buffer, pages */
#define RA_MAX_MAP	1024	/* window copied from the file mapping */
#define RA_STREAMS	4	/* sequential streams tracked per region */
#define FA_DEFAULT	512	/* --fault-around: chunk of a dense region, pages */
#define WB_BATCH	256	/* pages per write-back round */
#define EVICT_WORKERS	PAGER_STAGING_SLOTS	/* a batch in each slot */
#define WB_FAIL_BACKOFF_NS	(100 * 1000 * 1000ULL)	/* after a failed write */

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

/* Page states; see region.c for the transition table. */
enum pg_state {
	PG_ABSENT,	/* not mapped in the client; the file has the content */
	PG_FILLING,	/* busy: being read and installed by UFFDIO_COPY */
	PG_CLEAN,	/* mapped write-protected, equal to the file */
	PG_DIRTY,	/* mapped, may differ from the file (WP bit unknown) */
	PG_UNPROTECT,	/* busy: write fault being resolved, going DIRTY */
	PG_WRITEBACK,	/* busy: write-protected, content being written */
	PG_EVICTING,	/* busy: write-protected, being written and dropped */
	PG_NR_STATES
};

#define PGF_REF		0x01	/* CLOCK reference bit */
#define PGF_WAITERS	0x02	/* a fault arrived while busy: wake at end */
#define PGF_FILEDATA	0x04	/* file has data blocks here (else hole/EOF) */
#define PGF_REDIRTY	0x08	/* async WP: written while busy, end DIRTY */
/*
 * Durability (region.c, "fsync"): a page whose data was (or is being)
 * written to the file since the last successful fsync of the file has
 * PGF_UNSYNCED, or PGF_INFSYNC while an fsync that covers the write runs.
 * Such a page is never dropped before an fsync succeeds.  PGF_SYNCFAIL: an
 * fsync failed while the page was busy in write-back or eviction: it must
 * end DIRTY and stay resident.
 */
#define PGF_UNSYNCED	0x10
#define PGF_INFSYNC	0x20
#define PGF_SYNCFAIL	0x40
/* EVICTING, in a drop request the client's helper has not answered yet */
#define PGF_DROPWAIT	0x80
/* evict.c: demand faults of the page so far, 0-3, kept while absent */
#define PGF_HEAT_SHIFT	8
#define PGF_HEAT	(3 << PGF_HEAT_SHIFT)
/* evict.c: laps of the CLOCK hand the page survives beyond PGF_REF */
#define PGF_LAPS_SHIFT	10
#define PGF_LAPS	(3 << PGF_LAPS_SHIFT)

struct page {
	uint8_t state;
	uint16_t flags;		/* PGF_* */
};

struct list {
	struct list *next, *prev;
};

struct conn;

struct region {
	struct list node;	/* pd.regions, CLOCK order */
	struct list cnode;	/* conn->regions */
	struct conn *conn;
	uint64_t id;
	uint64_t addr, len, npages;
	uint32_t flags;		/* PAGER_SHARED, PAGER_TEMPORARY */
	int fd;			/* backing file */
	void *fmap;		/* fd mapped read-only, fault.c (lazily) */
	bool no_nowait;		/* fd refuses RWF_NOWAIT (tmpfs): plain reads */
	int memfd;		/* shmem object of PAGER_SHARED, else -1 */
	int uffd;		/* the conn's uffd this region is registered on */
	bool async;		/* WP_ASYNC: dirtiness from PAGEMAP_SCAN */
	uint64_t file_size;	/* size when mapped, grown by write-back */
	struct page *pages;
	uint64_t resident, dirty;
	/* readahead: sequential streams (fault.c), e.g. one per thread */
	uint64_t ra_next[RA_STREAMS];	/* expected next fault */
	unsigned int ra_win[RA_STREAMS];	/* window, pages (0: 1) */
	unsigned int ra_clock;		/* slot a new stream takes */
	/*
	 * fault-around (fault.c): random missing faults so far in each
	 * aligned chunk of pd.fa_pages pages, saturating; NULL when off.
	 * pd.lock.
	 */
	uint8_t *fa_faults;
	int ops;		/* operations in progress, release waits */
	uint64_t wb_fail_until;	/* no dirty victims before (now_ns) */
	uint64_t unsynced;	/* pages with PGF_UNSYNCED or PGF_INFSYNC */
	/*
	 * Pages with those flags lie in [unsynced_lo, unsynced_hi): the fsync
	 * bookkeeping walks that span, not the region (an eviction batch
	 * fdatasyncs; its pages are near each other).  Reset when unsynced
	 * drops to 0.  pd.lock.
	 */
	uint64_t unsynced_lo, unsynced_hi;
	/*
	 * Serialises fsync/fdatasync of fd: the kernel reports a write-back
	 * error to one fsync of a file description only (errseq), so the
	 * pages an fsync covers must be settled before the next one starts.
	 * Taken before pd.lock, never while holding it.
	 */
	pthread_mutex_t sync_lock;
	bool dying;		/* release claimed (region_claim()), pd.lock */
	/* a dead client's teardown could not write it back (server.c) */
	bool kept;
	struct pager_stats st;
};

enum { SRC_LISTEN, SRC_SOCK, SRC_UFFD, SRC_UFFD_SYNC };

struct evsrc {
	int type;
	struct conn *c;
};

struct conn {
	struct list node;	/* pd.conns */
	struct list regions;
	int sock, uffd, memfd, pagemap, evfd;
	int uffd_sync;		/* shared regions' uffd when uffd is async */
	bool wp_async;		/* uffd has WP_ASYNC (and MOVE) */
	pid_t pid;
	uid_t uid;
	uint64_t token;
	int users;		/* workers using the fds, teardown waits */
	bool dead;
	bool hello;
	bool unresponsive;	/* did not answer a drop request */
	bool sock_armed;
	int spinning;		/* a worker polls the uffd (fault.c) */
	bool spin_missed;	/* the last poll found nothing: probe briefly */
	/* the polling worker's (placement.c) */
	unsigned int follow_count;
	/*
	 * Synchronous mode: held over a drop request and its answer.
	 * Asynchronous mode: protects the slot and answer fields below;
	 * held only to send and to hand out answers (evict.c).
	 */
	pthread_mutex_t evict_lock;
	uint32_t drop_seq;	/* evict_lock */
	uint64_t staging_base;	/* the helper's staging area (HELLO), or 0 */
	bool helper_write;	/* its helper takes PAGER_DROP_WRITE */
	bool helper_restore;	/* its helper takes PAGER_DROP_RESTORE */
	/*
	 * Asynchronous mode: staging slots (PAGER_HELLO_STAGING_SLOTS; one
	 * for a helper without them).  A batch owns a slot from its first
	 * move until its release (region.c, wb_run_move()), so up to
	 * nslots batches of this client are in flight.  Their answers
	 * come on the one channel, in order: one waiting thread at a time
	 * reads it (rx_reading) and hands each answer to the slot whose
	 * request it answers (rx_seq); a failed channel fails them all
	 * (rx_err).  All under evict_lock; slot_cond signals a freed slot,
	 * a stored answer, and the end of a read.
	 */
	pthread_cond_t slot_cond;
	unsigned int nslots;
	bool slot_busy[PAGER_STAGING_SLOTS];
	bool slot_stale[PAGER_STAGING_SLOTS];	/* last batch not released */
	/*
	 * Slots owned by a batch, as slot_busy[] says, but under pd.lock
	 * (and evict_lock to change): the victim selection runs under
	 * pd.lock and passes over a client whose slots are all taken
	 * (evict.c, clock_pick()).
	 */
	unsigned int slots_held;
	bool rx_reading;
	int rx_err;
	uint32_t rx_seq[PAGER_STAGING_SLOTS];	/* awaited answer, or 0 */
	bool rx_have[PAGER_STAGING_SLOTS];
	struct pager_drop_done rx_done[PAGER_STAGING_SLOTS];
	/*
	 * A (synchronous mode) drop request the helper did not answer within
	 * --client-timeout: it may still carry it out, so its pages stay
	 * EVICTING (PGF_DROPWAIT) until a waiter thread sees the answer or
	 * the channel close; then each page is ABSENT or CLEAN as the
	 * client's pagemap says (evict.c).  pd.lock protects these; while
	 * drop_pending no other drop request is sent.
	 */
	bool drop_pending;
	bool drop_answered;	/* the waiter is done with the channel */
	bool drop_registered;	/* wb_run() handed over the pages */
	uint32_t drop_pending_seq;
	struct region *drop_r;
	uint64_t *drop_idx;
	int drop_n;
	bool released;		/* teardown finished: regions flushed */
	bool tearing;		/* a teardown attempt runs (server.c) */
	int teardown_err;	/* the last attempt's error, pd.lock */
	struct evsrc es_sock, es_uffd, es_uffd_sync;
};

struct pagerd {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list regions;
	struct list conns;
	struct list graveyard;	/* dead conns, freed at exit */
	struct region *hand;	/* CLOCK hand */
	uint64_t hand_idx;
	uint64_t budget;	/* pages */
	uint64_t resident;
	uint64_t dirty;
	uint64_t next_region_id;
	uint32_t nr_regions;
	bool stopping;
	int active_ops;
	int releasing;		/* regions claimed for release, not yet gone */
	int release_err;	/* a release's write-back failed while stopping */
	int epfd;
	int lsock;
	const char *socket_path;
	int nr_threads;
	int client_timeout_ms;	/* for answers on the evict channel */
	const char *fail_fsync_path;	/* testing: fsync fails while it exists */
	const char *fail_staging_path;	/* testing: staging_read() fails */
	const char *fail_fill_path;	/* testing: every fill fails */
	uint64_t spin_ns;	/* --spin-us: poll a busy uffd before sleeping */
	bool follow;		/* serve faults on the faulting CPU (--no-follow) */
	unsigned int fa_pages;	/* --fault-around chunk, pages (0: off) */
	uint64_t follow_moves;	/* atomic: workers bound to a new CPU */
	uint64_t uffd_features;	/* what this kernel's userfaultfd offers */
	bool wp_async;		/* --wp-mode chose asynchronous WP */
	/*
	 * Eviction threads waiting for a move answer later than
	 * --client-timeout (evict.c): when all of them do, no worker hands
	 * its eviction over to them any more.
	 */
	int evict_stuck;
	struct pager_stats st;
	uint64_t budget_overruns;
};

extern struct pagerd pd;

/* per worker thread */
struct pager_io {
	struct io_uring ring;
	unsigned int entries;
	char *buf;		/* RA_MAX or WB_BATCH pages */
	size_t buf_len;
};

/* list.c-ish helpers */
static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
}

static inline void list_add_tail(struct list *n, struct list *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

static inline bool list_empty(const struct list *h)
{
	return h->next == h;
}

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* main.c */
bool pager_kernel_has_wp_async(void);

/* log.c (in main.c) */
void pr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int pagerd_verbose;
#define pr_debug(...) do { if (pagerd_verbose) pr_info(__VA_ARGS__); } while (0)

/* io.c: io_uring engine */
enum { IO_READ, IO_WRITE };
struct io_req {
	int op;
	int fd;
	void *buf;
	size_t len;
	uint64_t off;
	ssize_t res;	/* bytes done, or -errno */
};
int io_init(struct pager_io *io, unsigned int entries);
void io_exit(struct pager_io *io);
struct pager_io *io_self(void);
int io_run(struct pager_io *io, struct io_req *reqs, int n);
int io_fsync(struct pager_io *io, int fd);
int io_fdatasync(struct pager_io *io, int fd);

/* region.c: page state machine */
void pg_set(struct region *r, uint64_t idx, enum pg_state to);
bool pg_busy(const struct page *pg);
bool pg_resident(enum pg_state s);
struct region *region_create(struct conn *c, uint64_t addr, uint64_t len,
			     uint32_t flags, int fd, int memfd, bool reattach,
			     int *err);
/*
 * Claim the release of @r for the caller; pd.lock held.  Releasing is a
 * one-time claim: an UNMAP of a connection and the teardown of that
 * connection (DEAD from another connection, its socket closing) may both
 * want to release the same region, and only the thread that got the claim
 * may call region_release() - whoever else wanted it waits for the region
 * to leave conn->regions instead.  pd.releasing counts claimed regions not
 * yet written back, which the SIGTERM flush waits for.
 */
static inline bool region_claim(struct region *r)
{
	if (r->dying)
		return false;
	r->dying = true;
	pd.releasing++;
	return true;
}
int region_release(struct region *r, bool writeback);
struct region *conn_find_region(struct conn *c, uint64_t addr);
int region_writeback(struct region *r, uint64_t first, uint64_t last,
		     bool evict);
int region_sync(struct region *r, uint64_t off, uint64_t len);
int region_evict(struct region *r, uint64_t off, uint64_t len);
int region_prefetch(struct region *r, uint64_t off, uint64_t len);
int evict_pages(struct region *r, const uint64_t *idx, const bool *dirty,
		int n);
void region_drop_settle(struct region *r, const uint64_t *idx, int n);
int region_scan_written(struct region *r, uint64_t first, uint64_t last);
void region_stats_prepare(struct region *r);
bool region_page_present(struct region *r, uint64_t i);
void uffd_wake(struct region *r, uint64_t idx, uint64_t n);
int uffd_wp(struct region *r, uint64_t idx, uint64_t n, bool protect);

/* fault.c: fault loop */
void fault_event(struct conn *c, int uffd, struct evsrc *es);
void fault_rearm(void);
/* ahead.c: work for the second CPU */
struct ahead_job {
	void (*fn)(struct ahead_job *job);
	bool done;		/* pd.lock */
};
bool ahead_idle(void);
bool ahead_submit(struct ahead_job *job);
void ahead_wait(struct ahead_job *job);
void *ahead_worker(void *arg);
/* placement.c */
void follow_fault(struct conn *c, pid_t tid);
bool follow_wait(int uffd);
void follow_release(void);
void copy_pages(struct region *r, uint64_t idx, uint64_t n, char *buf,
		bool wp, uint8_t *res);
int fill_pages(struct region *r, uint64_t idx, unsigned int want, bool write,
	       bool prefetch);
int fault_region_init(struct region *r);
void fault_region_exit(struct region *r);
/* retry.c: threads whose fill failed are woken to fault again */
bool fill_retry_later(struct region *r, uint64_t idx);
void *retry_worker(void *arg);

/* evict.c: replacement policy and budget */
int evict_some(uint64_t want, struct conn *self, struct conn **foreign);
void evict_ahead(uint64_t n);
void *evict_worker(void *arg);
int budget_reserve(struct region *r, uint64_t *n);
void clock_forget(struct region *r);
void clock_filled(struct page *pg, bool demand, bool prefetch);
int drop_private(struct conn *c, const uint64_t *addr, const uint64_t *len,
		 int nr);
uint64_t slot_base(struct conn *c, unsigned int s);
int slot_get(struct conn *c);
void slot_put(struct conn *c, unsigned int s, bool moved, bool released);
int drop_move(struct conn *c, unsigned int slot, uint64_t dst,
	      const uint64_t *addr, const uint64_t *len, int nr,
	      uint16_t flags, struct pager_drop_done *out, char *buf,
	      bool *have, bool *unread);
int drop_release(struct conn *c, unsigned int s);
int drop_restore(struct conn *c, unsigned int slot, int *lost);
int staging_read(struct conn *c, char *buf, size_t len, uint64_t addr);
int drop_salvage(struct conn *c, unsigned int s, uint64_t dst,
		 const uint64_t *addr, const uint64_t *len, int nr, char *buf,
		 bool *have);
void drop_register(struct conn *c, struct region *r, const uint64_t *idx,
		   int n);
void drop_abandon(struct conn *c);

/* server.c: client protocol */
int server_init(const char *path);
void *server_worker(void *arg);
void server_rearm(int fd, struct evsrc *s);
int server_flush_all(void);

/* stats.c */
void stats_fault_latency(struct region *r, uint64_t ns);
void stats_add(struct region *r, size_t field_off, uint64_t v);
#define STAT_ADD(r, field, v) \
	stats_add((r), offsetof(struct pager_stats, field), (v))
void stats_fill_global(struct pager_stats *st);
void stats_fill_region(struct region *r, struct pager_stats *st);
int stats_format(char *buf, size_t len, bool json);
uint64_t now_ns(void);
void cond_deadline(struct timespec *until, uint64_t ns);

#endif /* PAGERD_H */
