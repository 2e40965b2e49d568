// SPDX-License-Identifier: GPL-2.0
/*
 * dtrack-nlfuzz: a generic netlink fuzzer for the dtrack family, run inside
 * the test VM with the module loaded.
 *
 * Several threads send random and mutated dtrack requests (commands beyond
 * the last one, unknown and duplicated attributes, wrong lengths, nests
 * where scalars belong, bad ids, pids, ranges and flags, several messages in
 * one datagram, dumps abandoned midway, sockets closed with trackers live)
 * while a spawner process keeps target processes alive that map, write,
 * fork, mremap, mprotect, madvise and munmap the ranges being tracked and
 * exit at random.  Valid pids, addresses and tracker ids are fed back into
 * the generator so that the deep paths (create, collect, destroy on live
 * trackers) are reached, not only the attribute policies.
 *
 * At the end the module must still answer GET_VERSION correctly; every
 * tracker left is destroyed and the module's counters must return to zero.
 * Kernel reports (WARN, BUG, KASAN, lockdep) are caught by the VM runner.
 *
 * usage: dtrack-nlfuzz [--time S] [--threads N] [--targets N] [--seed N] [--tap]
 * Installed as tests/vm/fuzz_netlink it runs in TAP mode for
 * $TEST_FUZZ_TIME seconds (default 20).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include "dtrack.h"

#define MAX_TARGETS	8
#define MAX_MAPS	8
#define ID_POOL		64
#define PG		4096UL
#define BUF_SZ		8192

/* ---- shared state between the fuzzer and the spawner ------------------- */

struct target_map {
	uint64_t addr;
	uint64_t len;
};

struct target_slot {
	volatile int pid;
	volatile int nmaps;
	struct target_map maps[MAX_MAPS];
};

struct shared {
	volatile int stop;
	struct target_slot slot[MAX_TARGETS];
	atomic_ulong spawned, exited, forks, mremaps, munmaps, mprotects,
		     dontneeds, writes;
};

static struct shared *sh;
static int nr_targets = 4;
static char scratch_file[256];

/* ---- fuzzer statistics --------------------------------------------------- */

static atomic_ulong n_msgs, n_sent_err, n_replies, n_acks, n_errors, n_dumps,
		    n_created, n_collect_ok, n_destroy_ok, n_reopen;
static atomic_uint id_pool[ID_POOL];
static uint16_t family;
static atomic_int stop_fuzz;

static uint64_t rnd_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

static bool chance(uint64_t *s, unsigned int pct)
{
	return rnd(s, 100) < pct;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- targets ------------------------------------------------------------- */

static void publish(struct target_slot *sl, void **addr, size_t *len, int n)
{
	sl->nmaps = 0;
	__sync_synchronize();
	for (int i = 0; i < n && i < MAX_MAPS; i++) {
		sl->maps[i].addr = (uint64_t)(uintptr_t)addr[i];
		sl->maps[i].len = len[i];
	}
	__sync_synchronize();
	sl->nmaps = n;
}

static void *map_one(uint64_t *s, size_t *len, int fd)
{
	size_t pages = 1 + rnd(s, 64);
	void *p;

	*len = pages * PG;
	switch (rnd(s, 5)) {
	case 0:
		p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		break;
	case 1:
		p = fd >= 0 ? mmap(NULL, *len, PROT_READ | PROT_WRITE,
				   MAP_SHARED, fd, 0) : MAP_FAILED;
		break;
	case 2:
		p = fd >= 0 ? mmap(NULL, *len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, fd, 0) : MAP_FAILED;
		break;
	case 3:
		/* a THP candidate: 4 MiB, huge pages asked for */
		*len = 4UL << 20;
		p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			madvise(p, *len, MADV_HUGEPAGE);
		break;
	default:
		p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	}
	if (p == MAP_FAILED) {
		*len = pages * PG;
		p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	return p == MAP_FAILED ? NULL : p;
}

static void write_pages(uint64_t *s, char *p, size_t len, int n)
{
	for (int i = 0; i < n; i++)
		p[rnd(s, len / PG) * PG + rnd(s, PG)] = (char)rnd_next(s);
	atomic_fetch_add(&sh->writes, n);
}

/* A target: maps ranges, writes them and changes its mappings until it exits. */
static void target_main(struct target_slot *sl, uint64_t seed)
{
	uint64_t s = seed | 1;
	void *addr[MAX_MAPS];
	size_t len[MAX_MAPS];
	bool ro[MAX_MAPS] = {};
	int n = 0, fd;
	double end = now_s() + 0.2 + rnd(&s, 2000) / 1000.0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open(scratch_file, O_RDWR);
	for (int i = 0, want = 2 + rnd(&s, MAX_MAPS - 2); i < want; i++) {
		addr[n] = map_one(&s, &len[n], fd);
		if (addr[n]) {
			memset(addr[n], 1, len[n] < 16 * PG ? len[n] : 16 * PG);
			n++;
		}
	}
	publish(sl, addr, len, n);
	while (now_s() < end && !sh->stop) {
		int i = rnd(&s, n);

		if (!n)
			break;
		if (!ro[i])
			write_pages(&s, addr[i], len[i], 1 + rnd(&s, 16));
		switch (rnd(&s, 12)) {
		case 0: {	/* grow or move */
			size_t nl = len[i] + PG * (1 + rnd(&s, 8));
			void *q = mremap(addr[i], len[i], nl, MREMAP_MAYMOVE);

			if (q != MAP_FAILED) {
				addr[i] = q;
				len[i] = nl;
				atomic_fetch_add(&sh->mremaps, 1);
			}
			break;
		}
		case 1:		/* punch out a page (or the whole mapping) */
			if (len[i] > PG) {
				size_t off = rnd(&s, len[i] / PG) * PG;

				munmap((char *)addr[i] + off, PG);
				/* keep the part below the hole */
				if (off)
					len[i] = off;
				else {
					addr[i] = (char *)addr[i] + PG;
					len[i] -= PG;
				}
			} else {
				munmap(addr[i], len[i]);
				addr[i] = addr[n - 1];
				len[i] = len[n - 1];
				ro[i] = ro[n - 1];
				n--;
			}
			atomic_fetch_add(&sh->munmaps, 1);
			break;
		case 2:
			ro[i] = !ro[i];
			mprotect(addr[i], len[i], ro[i] ? PROT_READ :
				 PROT_READ | PROT_WRITE);
			atomic_fetch_add(&sh->mprotects, 1);
			break;
		case 3:
			madvise(addr[i], len[i], MADV_DONTNEED);
			atomic_fetch_add(&sh->dontneeds, 1);
			break;
		case 4: {	/* a COW child writes a little and exits */
			pid_t c = fork();

			if (c == 0) {
				if (!ro[i])
					write_pages(&s, addr[i], len[i], 4);
				_exit(0);
			}
			if (c > 0) {
				waitpid(c, NULL, 0);
				atomic_fetch_add(&sh->forks, 1);
			}
			break;
		}
		case 5:
			if (n < MAX_MAPS) {
				addr[n] = map_one(&s, &len[n], fd);
				if (addr[n]) {
					ro[n] = false;
					n++;
				}
			}
			break;
		default:
			break;
		}
		publish(sl, addr, len, n);
		if (chance(&s, 20))
			usleep(1000);
	}
	_exit(0);
}

/* The spawner keeps nr_targets targets alive until told to stop. */
static void spawner_main(uint64_t seed)
{
	pid_t pids[MAX_TARGETS] = {};
	uint64_t s = seed | 1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!sh->stop) {
		for (int i = 0; i < nr_targets; i++) {
			if (pids[i])
				continue;
			sh->slot[i].nmaps = 0;
			pids[i] = fork();
			if (pids[i] == 0)
				target_main(&sh->slot[i], rnd_next(&s));
			if (pids[i] < 0) {
				pids[i] = 0;
				continue;
			}
			sh->slot[i].pid = pids[i];
			atomic_fetch_add(&sh->spawned, 1);
		}
		int st;
		pid_t p = waitpid(-1, &st, 0);

		for (int i = 0; i < nr_targets; i++)
			if (p > 0 && pids[i] == p) {
				pids[i] = 0;
				atomic_fetch_add(&sh->exited, 1);
			}
	}
	for (int i = 0; i < nr_targets; i++)
		if (pids[i])
			kill(pids[i], SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	_exit(0);
}

/* ---- message construction ------------------------------------------------ */

struct msg {
	char b[BUF_SZ];
	size_t len;
};

static struct nlattr *put_attr(struct msg *m, uint16_t type, const void *data,
			       size_t len)
{
	struct nlattr *a;

	if (m->len + NLA_HDRLEN + NLA_ALIGN(len) > sizeof(m->b))
		return NULL;
	a = (struct nlattr *)(m->b + m->len);
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy(a + 1, data, len);
	memset((char *)(a + 1) + len, 0, NLA_ALIGN(len) - len);
	m->len += NLA_HDRLEN + NLA_ALIGN(len);
	return a;
}

static void put_u32(struct msg *m, uint16_t t, uint32_t v)
{
	put_attr(m, t, &v, sizeof(v));
}

static void put_u64(struct msg *m, uint16_t t, uint64_t v)
{
	put_attr(m, t, &v, sizeof(v));
}

static __thread uint32_t last_created;

static uint32_t pick_id(uint64_t *s)
{
	if (last_created && chance(s, 50))
		return last_created;
	switch (rnd(s, 8)) {
	case 0:
		return 0;
	case 1:
		return (uint32_t)rnd_next(s);
	case 2:
		return 1 + rnd(s, 256);
	default:
		return atomic_load(&id_pool[rnd(s, ID_POOL)]);
	}
}

static void pick_target(uint64_t *s, uint32_t *pid, uint64_t *addr,
			uint64_t *len)
{
	struct target_slot *sl = &sh->slot[rnd(s, nr_targets)];
	int n = sl->nmaps;

	*pid = sl->pid;
	*addr = 0x10000;
	*len = PG;
	if (n > 0 && n <= MAX_MAPS) {
		struct target_map tm = sl->maps[rnd(s, n)];

		*addr = tm.addr;
		*len = tm.len;
		/* a sub-range, page aligned */
		if (*len > PG && chance(s, 40)) {
			uint64_t pages = *len / PG, off = rnd(s, pages);

			*addr += off * PG;
			*len = (1 + rnd(s, pages - off)) * PG;
		}
	}
	switch (rnd(s, 16)) {
	case 0:
		*pid = 0;
		break;
	case 1:
		*pid = (uint32_t)rnd_next(s);
		break;
	case 2:
		*pid = 1;
		break;
	case 3:
		*pid = getpid();
		break;
	default:
		break;
	}
	switch (rnd(s, 20)) {
	case 0:
		*addr += 1 + rnd(s, PG - 1);	/* unaligned */
		break;
	case 1:
		*len = 0;
		break;
	case 2:
		*len = -PG;			/* wraps */
		break;
	case 3:
		*addr = -PG;
		break;
	case 4:
		*len = rnd(s, 1ULL << 40) * PG;	/* huge */
		break;
	case 5:
		*len += 1 + rnd(s, PG - 1);
		break;
	case 6:
		*addr = 0;
		break;
	case 7:	/* a range spanning mappings and holes */
		*len = (1 + rnd(s, 4096)) * PG;
		break;
	default:
		break;
	}
}

/* Attributes that make sense for cmd, each possibly missing or mangled. */
static void put_cmd_attrs(uint64_t *s, struct msg *m, uint8_t cmd)
{
	uint32_t pid;
	uint64_t addr, len;

	switch (cmd) {
	case DTRACK_CMD_CREATE:
		pick_target(s, &pid, &addr, &len);
		if (!chance(s, 3))
			put_u32(m, DTRACK_A_PID, pid);
		if (!chance(s, 3))
			put_u64(m, DTRACK_A_ADDR, addr);
		if (!chance(s, 3))
			put_u64(m, DTRACK_A_LEN, len);
		if (!chance(s, 3))
			put_u32(m, DTRACK_A_METHOD,
				chance(s, 90) ? 1 + rnd(s, DTRACK_METHOD_MAX) :
						(uint32_t)rnd(s, 100));
		if (chance(s, 40))
			put_u32(m, DTRACK_A_FLAGS,
				chance(s, 80) ? (uint32_t)rnd(s, 2) :
						(uint32_t)rnd_next(s));
		break;
	case DTRACK_CMD_DESTROY:
	case DTRACK_CMD_GET_TRACKER:
		if (!chance(s, 5))
			put_u32(m, DTRACK_A_TRACKER_ID, pick_id(s));
		break;
	case DTRACK_CMD_COLLECT:
		if (!chance(s, 5))
			put_u32(m, DTRACK_A_TRACKER_ID, pick_id(s));
		if (chance(s, 70))
			put_u32(m, DTRACK_A_COLLECT_FLAGS,
				chance(s, 90) ? (uint32_t)rnd(s, 2) :
						(uint32_t)rnd_next(s));
		break;
	default:
		break;
	}
}

static void put_junk_attr(uint64_t *s, struct msg *m)
{
	static const size_t lens[] = { 0, 1, 2, 4, 8, 12, 16 };
	char data[64];
	uint16_t type = rnd(s, DTRACK_A_MAX + 4);
	size_t len = rnd(s, 3) ? lens[rnd(s, 7)] : rnd(s, sizeof(data));

	if (chance(s, 10))
		type = (uint16_t)rnd_next(s);	/* NLA_F_NESTED etc. */
	for (size_t i = 0; i < len; i++)
		data[i] = (char)rnd_next(s);
	if (chance(s, 25)) {
		/* a nest of runs/stats/anything where a scalar may belong */
		size_t start = m->len;
		struct nlattr *a = put_attr(m, type | (chance(s, 50) ?
						       NLA_F_NESTED : 0),
					    NULL, 0);

		if (!a)
			return;
		for (int i = 0, k = rnd(s, 4); i < k; i++)
			put_attr(m, rnd(s, 6), data, rnd(s, 3) * 4);
		a = (struct nlattr *)(m->b + start);
		a->nla_len = m->len - start;
		return;
	}
	put_attr(m, type, data, len);
}

/* Mangle a well-formed message in place. */
static void mutate(uint64_t *s, struct msg *m)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)m->b;
	size_t hdr = NLMSG_HDRLEN + GENL_HDRLEN;

	for (int k = 0, n = 1 + rnd(s, 3); k < n; k++) {
		switch (rnd(s, 8)) {
		case 0:	/* flip a bit in the attributes */
			if (m->len > hdr)
				m->b[hdr + rnd(s, m->len - hdr)] ^=
					1 << rnd(s, 8);
			break;
		case 1:	/* an attribute length lies */
			if (m->len >= hdr + NLA_HDRLEN) {
				struct nlattr *a = (void *)(m->b + hdr);

				a->nla_len = rnd(s, 3) ? rnd(s, 32) :
					     (uint16_t)rnd_next(s);
			}
			break;
		case 2:	/* truncated */
			if (m->len > NLMSG_HDRLEN)
				m->len = NLMSG_HDRLEN + rnd(s, m->len -
							     NLMSG_HDRLEN);
			nlh->nlmsg_len = m->len;
			break;
		case 3:	/* nlmsg_len disagrees with the datagram */
			nlh->nlmsg_len = rnd(s, m->len + 64);
			break;
		case 4:	/* garbage appended */
			for (int i = 0, g = rnd(s, 64);
			     i < g && m->len < sizeof(m->b); i++)
				m->b[m->len++] = (char)rnd_next(s);
			nlh->nlmsg_len = m->len;
			break;
		case 5:	/* genl version / reserved */
			m->b[NLMSG_HDRLEN + 1] = (char)rnd_next(s);
			if (chance(s, 50))
				m->b[NLMSG_HDRLEN + 2] = (char)rnd_next(s);
			break;
		case 6:	/* flip in flags, seq, port or the genl header */
			m->b[6 + rnd(s, hdr - 6)] ^= 1 << rnd(s, 8);
			break;
		default: /* a bigger attribute value than the policy wants */
			if (m->len >= hdr + NLA_HDRLEN) {
				struct nlattr *a = (void *)(m->b + hdr);

				a->nla_len += 4;
			}
			break;
		}
	}
}

static void build(uint64_t *s, struct msg *m, uint32_t seq)
{
	static const uint8_t on_tracker[] = {
		DTRACK_CMD_COLLECT, DTRACK_CMD_COLLECT, DTRACK_CMD_GET_TRACKER,
		DTRACK_CMD_DESTROY,
	};
	struct nlmsghdr *nlh = (struct nlmsghdr *)m->b;
	struct genlmsghdr *g = (struct genlmsghdr *)(m->b + NLMSG_HDRLEN);
	uint8_t cmd;
	uint16_t fl = NLM_F_REQUEST;

	memset(m->b, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	m->len = NLMSG_HDRLEN + GENL_HDRLEN;
	cmd = chance(s, 90) ? 1 + rnd(s, DTRACK_CMD_MAX) :
			      rnd(s, DTRACK_CMD_MAX + 3);
	/* work on the tracker just created: collect, reset, stats, destroy */
	if (last_created && chance(s, 40))
		cmd = on_tracker[rnd(s, 4)];
	if (chance(s, 80))
		fl |= NLM_F_ACK;
	if (cmd == DTRACK_CMD_COLLECT ? chance(s, 90) :
	    cmd == DTRACK_CMD_GET_TRACKER ? chance(s, 40) : chance(s, 5))
		fl |= NLM_F_DUMP;
	if (chance(s, 3))
		fl |= rnd_next(s) & 0xffe0;	/* odd flags */
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = fl;
	nlh->nlmsg_seq = seq;
	g->cmd = cmd;
	g->version = DTRACK_GENL_VERSION;
	put_cmd_attrs(s, m, cmd);
	for (int i = 0, n = chance(s, 30) ? 1 + rnd(s, 4) : 0; i < n; i++)
		put_junk_attr(s, m);
	if (chance(s, 15))	/* shuffle: a duplicate of the first attribute */
		if (m->len > NLMSG_HDRLEN + GENL_HDRLEN + NLA_HDRLEN) {
			struct nlattr *a = (void *)(m->b + NLMSG_HDRLEN +
						    GENL_HDRLEN);

			if (a->nla_len >= NLA_HDRLEN && a->nla_len <= 64)
				put_attr(m, a->nla_type, a + 1,
					 a->nla_len - NLA_HDRLEN);
		}
	nlh->nlmsg_len = m->len;
	if (chance(s, 25))
		mutate(s, m);
	/* only ever the dtrack family: other families are not ours to fuzz */
	nlh->nlmsg_type = family;
}

/* ---- answers ------------------------------------------------------------- */

static void learn(const struct nlmsghdr *nlh, uint64_t *s)
{
	const struct genlmsghdr *g = NLMSG_DATA(nlh);
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};

	if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return;
	if (mnl_attr_parse(nlh, GENL_HDRLEN, dt_attr_cb, tb) < 0)
		return;
	if (g->cmd == DTRACK_CMD_CREATE && tb[DTRACK_A_TRACKER_ID]) {
		last_created = mnl_attr_get_u32(tb[DTRACK_A_TRACKER_ID]);
		atomic_store(&id_pool[rnd(s, ID_POOL)], last_created);
		atomic_fetch_add(&n_created, 1);
	} else if (g->cmd == DTRACK_CMD_COLLECT) {
		atomic_fetch_add(&n_collect_ok, 1);
	} else if (tb[DTRACK_A_TRACKER_ID] && chance(s, 10)) {
		atomic_store(&id_pool[rnd(s, ID_POOL)],
			     mnl_attr_get_u32(tb[DTRACK_A_TRACKER_ID]));
	}
}

/*
 * Read answers until the ack, the end of a dump, or a quiet socket.  With
 * abandon, stop reading a dump halfway (the next request or the close of
 * the socket must clean it up).
 */
static void drain(int fd, uint64_t *s, int wait_ms, bool abandon, uint8_t cmd)
{
	static __thread char buf[65536];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int reads = 0;

	while (poll(&pfd, 1, wait_ms) > 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		bool done = false;

		if (n < 0) {
			if (errno == ENOBUFS)
				continue;
			break;
		}
		for (struct nlmsghdr *nlh = (void *)buf; NLMSG_OK(nlh, n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			atomic_fetch_add(&n_replies, 1);
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				if (e->error)
					atomic_fetch_add(&n_errors, 1);
				else
					atomic_fetch_add(&n_acks, 1);
				if (!e->error && cmd == DTRACK_CMD_DESTROY)
					atomic_fetch_add(&n_destroy_ok, 1);
				done = true;
			} else if (nlh->nlmsg_type == NLMSG_DONE) {
				atomic_fetch_add(&n_dumps, 1);
				done = true;
			} else if (nlh->nlmsg_type == family) {
				learn(nlh, s);
			}
		}
		if (done || (abandon && ++reads > 1))
			break;
		wait_ms = 20;
	}
}

static int nl_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd, one = 1, rcv = 1 << 20;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t base_seed;

static void fuzz_loop(uint64_t seed)
{
	uint64_t s = seed | 1;
	uint32_t seq = 1;
	struct msg m, m2;
	int fd = nl_socket();

	while (!atomic_load(&stop_fuzz) && fd >= 0) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 1 };
		struct sockaddr_nl to = { .nl_family = AF_NETLINK };
		struct genlmsghdr *g;
		bool abandon;

		build(&s, &m, seq++);
		g = (void *)(m.b + NLMSG_HDRLEN);
		iov[0] = (struct iovec){ m.b, m.len };
		/* several requests in one datagram */
		if (chance(&s, 5) && !(m.len & 3)) {
			build(&s, &m2, seq++);
			iov[1] = (struct iovec){ m2.b, m2.len };
			mh.msg_iovlen = 2;
		}
		mh.msg_name = &to;
		mh.msg_namelen = sizeof(to);
		if (sendmsg(fd, &mh, 0) < 0)
			atomic_fetch_add(&n_sent_err, 1);
		atomic_fetch_add(&n_msgs, mh.msg_iovlen);
		abandon = chance(&s, 5);
		/* errors always answer; a success only with ACK or a reply */
		drain(fd, &s, ((struct nlmsghdr *)m.b)->nlmsg_flags &
			      (NLM_F_ACK | NLM_F_DUMP) ? 50 : 5,
		      abandon, m.len > NLMSG_HDRLEN ? g->cmd : 0);
		/* close the socket now and then: its trackers must go */
		if (chance(&s, 2)) {
			last_created = 0;
			close(fd);
			fd = nl_socket();
			atomic_fetch_add(&n_reopen, 1);
		}
	}
	if (fd >= 0)
		close(fd);
}

static void *fuzz_thread(void *arg)
{
	fuzz_loop(base_seed + (uintptr_t)arg * 0x9E3779B97F4A7C15ULL);
	return NULL;
}

/* An unprivileged user sends the same requests: every one must be refused. */
static pid_t start_unpriv(double secs)
{
	pid_t p = fork();

	if (p)
		return p;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setgid(65534) || setuid(65534))
		_exit(2);
	{
		uint64_t s = base_seed ^ 0xdeadbeef;
		double end = now_s() + secs;
		int fd = nl_socket();
		char buf[8192];
		struct msg m;
		int bad = 0;

		while (fd >= 0 && now_s() < end) {
			struct nlmsghdr *nlh = (void *)buf;
			ssize_t n;

			build(&s, &m, 1);
			nlh = (void *)m.b;
			nlh->nlmsg_flags |= NLM_F_ACK | NLM_F_REQUEST;
			if (m.len < NLMSG_HDRLEN + GENL_HDRLEN)
				continue;
			nlh->nlmsg_len = m.len;
			nlh = (void *)buf;
			if (send(fd, m.b, m.len, 0) < 0)
				continue;
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (poll(&pfd, 1, 50) <= 0)
				continue;
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			/* anything but an error answer is a breach */
			if (n >= (ssize_t)NLMSG_HDRLEN && NLMSG_OK(nlh, n) &&
			    nlh->nlmsg_type == family)
				bad++;
			if (n >= (ssize_t)NLMSG_HDRLEN && NLMSG_OK(nlh, n) &&
			    nlh->nlmsg_type == NLMSG_ERROR &&
			    !((struct nlmsgerr *)NLMSG_DATA(nlh))->error &&
			    m.len >= NLMSG_HDRLEN + GENL_HDRLEN)
				bad++;
		}
		_exit(bad ? 1 : 0);
	}
}

/* ---- main ---------------------------------------------------------------- */

static int tap_n;
static bool tap;

static void result(bool ok, const char *what)
{
	if (tap)
		printf("%sok %d %s\n", ok ? "" : "not ", ++tap_n, what);
	else
		printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double secs = 20, t0, elapsed;
	int nthreads = 4, failed = 0, unpriv_rc = -1;
	const char *me = strrchr(argv[0], '/');
	pthread_t th[32];
	struct dt_nl nl;
	struct dt_version v;
	struct dt_tracker *ts = NULL;
	size_t nts = 0;
	pid_t spawner, unpriv;
	int ret, st;

	me = me ? me + 1 : argv[0];
	base_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!strncmp(me, "fuzz_", 5)) {
		tap = true;
		if (getenv("TEST_FUZZ_TIME"))
			secs = atof(getenv("TEST_FUZZ_TIME"));
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--time") && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--targets") && i + 1 < argc)
			nr_targets = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			base_seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--tap"))
			tap = true;
		else {
			fprintf(stderr, "usage: %s [--time S] [--threads N] [--targets N] [--seed N] [--tap]\n",
				argv[0]);
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > 32)
		nthreads = 4;
	if (nr_targets < 1 || nr_targets > MAX_TARGETS)
		nr_targets = 4;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tap)
		printf("TAP version 13\n1..4\n");
	printf("# dtrack-nlfuzz: %.0f s, %d threads, %d targets, seed %#llx\n",
	       secs, nthreads, nr_targets, (unsigned long long)base_seed);

	ret = dt_nl_open(&nl);
	if (ret) {
		printf("# dtrack family not available: %s\n", strerror(-ret));
		if (tap) {
			for (int i = 0; i < 4; i++)
				printf("ok %d # SKIP dtrack module not loaded\n",
				       i + 1);
			return 0;
		}
		return 4;
	}
	family = nl.family;

	snprintf(scratch_file, sizeof(scratch_file), "%s/nlfuzz.%d",
		 getenv("TEST_SCRATCH") ? getenv("TEST_SCRATCH") : "/tmp",
		 getpid());
	{
		int fd = open(scratch_file, O_RDWR | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			if (ftruncate(fd, 8UL << 20))
				perror("ftruncate");
			close(fd);
		}
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(sh, 0, sizeof(*sh));
	spawner = fork();
	if (spawner == 0)
		spawner_main(base_seed ^ 0x5bd1e995);
	unpriv = start_unpriv(secs < 5 ? secs : 5);

	t0 = now_s();
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, fuzz_thread, (void *)(uintptr_t)i);
	while (now_s() - t0 < secs)
		usleep(100000);
	atomic_store(&stop_fuzz, 1);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	elapsed = now_s() - t0;
	sh->stop = 1;
	kill(spawner, SIGKILL);	/* its pdeathsig children follow */
	waitpid(spawner, NULL, 0);
	for (int i = 0; i < nr_targets; i++)
		if (sh->slot[i].pid > 0)
			kill(sh->slot[i].pid, SIGKILL);
	if (waitpid(unpriv, &st, 0) == unpriv && WIFEXITED(st))
		unpriv_rc = WEXITSTATUS(st);
	unlink(scratch_file);

	printf("# nlfuzz: %lu messages in %.1f s (%.0f/s), %lu answers, %lu acks, %lu errors, %lu dumps done, %lu send errors\n",
	       atomic_load(&n_msgs), elapsed, atomic_load(&n_msgs) / elapsed,
	       atomic_load(&n_replies), atomic_load(&n_acks),
	       atomic_load(&n_errors), atomic_load(&n_dumps),
	       atomic_load(&n_sent_err));
	printf("# nlfuzz: %lu trackers created, %lu collect answers, %lu destroyed, %lu sockets closed\n",
	       atomic_load(&n_created), atomic_load(&n_collect_ok),
	       atomic_load(&n_destroy_ok), atomic_load(&n_reopen));
	printf("# targets: %lu spawned, %lu exited, %lu forks, %lu mremaps, %lu munmaps, %lu mprotects, %lu dontneeds, %lu writes\n",
	       atomic_load(&sh->spawned), atomic_load(&sh->exited),
	       atomic_load(&sh->forks), atomic_load(&sh->mremaps),
	       atomic_load(&sh->munmaps), atomic_load(&sh->mprotects),
	       atomic_load(&sh->dontneeds), atomic_load(&sh->writes));
	/* machine-readable, for scripts/reliability.sh */
	printf("# FUZZ-NETLINK execs=%lu secs=%.1f created=%lu\n",
	       atomic_load(&n_msgs), elapsed, atomic_load(&n_created));

	/* 1: the generator reached the module's deep paths */
	ret = atomic_load(&n_created) > 0 && atomic_load(&n_acks) > 0 &&
	      atomic_load(&n_errors) > 0;
	result(ret, "fuzz reached create/collect/destroy and error paths");
	failed += !ret;

	/* 2: the module still answers correctly */
	ret = dt_get_version(&nl, &v);
	ret = !ret && v.uapi_version == DTRACK_GENL_VERSION &&
	      v.version[0] && (v.has & DT_HAS(DTRACK_A_METHODS));
	if (ret)
		printf("# module %s uapi %u after fuzzing, %u trackers live\n",
		       v.version, v.uapi_version, v.nr_trackers);
	result(ret, "module answers GET_VERSION after fuzzing");
	failed += !ret;

	/* 3: every tracker left can be listed and destroyed; counters drop to 0 */
	ret = dt_list(&nl, &ts, &nts);
	if (!ret) {
		for (size_t i = 0; i < nts; i++)
			dt_destroy(&nl, ts[i].id);
		free(ts);
		ret = dt_get_version(&nl, &v);
		if (!ret && (v.nr_trackers || v.nr_pages)) {
			printf("# after destroying %zu trackers: %u trackers, %llu pages accounted\n",
			       nts, v.nr_trackers,
			       (unsigned long long)v.nr_pages);
			ret = -1;
		}
	}
	result(!ret, "leftover trackers destroyed, module counters back to 0");
	failed += !!ret;

	/* 4: an unprivileged user got nothing but errors */
	result(unpriv_rc == 0, "unprivileged requests all refused");
	failed += unpriv_rc != 0;
	dt_nl_close(&nl);
	if (tap)
		printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n",
		       4 - failed, failed);
	return failed ? 1 : 0;
}
