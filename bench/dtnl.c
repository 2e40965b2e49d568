// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/dtrack.h>

#include "dtnl.h"

struct req {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[256];
};

static void put_attr(struct req *r, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *na = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nlh.nlmsg_len));

	na->nla_type = type;
	na->nla_len = NLA_HDRLEN + len;
	memcpy((char *)na + NLA_HDRLEN, data, len);
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) + NLA_ALIGN(na->nla_len);
}

static void put_u32(struct req *r, uint16_t type, uint32_t v)
{
	put_attr(r, type, &v, sizeof(v));
}

static void put_u64(struct req *r, uint16_t type, uint64_t v)
{
	put_attr(r, type, &v, sizeof(v));
}

static void req_init(struct dtnl *nl, struct req *r, uint16_t type, uint8_t cmd,
		     uint16_t flags)
{
	memset(r, 0, sizeof(*r));
	r->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->nlh.nlmsg_type = type;
	r->nlh.nlmsg_flags = NLM_F_REQUEST | flags;
	r->nlh.nlmsg_seq = ++nl->seq;
	r->genl.cmd = cmd;
	r->genl.version = 1;
}

/* Called with the attributes (after the genl header) of each data message. */
typedef int (*msg_cb)(void *arg, const char *attrs, int len);

#define for_each_attr(na, attrs, len, rem)					\
	for (na = (const struct nlattr *)(attrs), rem = (len);			\
	     rem >= NLA_HDRLEN && na->nla_len >= NLA_HDRLEN && na->nla_len <= rem; \
	     rem -= NLA_ALIGN(na->nla_len),					\
	     na = (const struct nlattr *)((const char *)na + NLA_ALIGN(na->nla_len)))

static uint32_t get_u32(const struct nlattr *na)
{
	uint32_t v;

	memcpy(&v, (const char *)na + NLA_HDRLEN, sizeof(v));
	return v;
}

static uint64_t get_u64(const struct nlattr *na)
{
	uint64_t v;

	memcpy(&v, (const char *)na + NLA_HDRLEN, sizeof(v));
	return v;
}

/*
 * Send r and process answers until the ack or NLMSG_DONE; cb sees every
 * data message.
 */
static int transact(struct dtnl *nl, struct req *r, msg_cb cb, void *arg)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int err = 0;

	if (sendto(nl->fd, r, r->nlh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		int n = recv(nl->fd, nl->buf, nl->recv_len, 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)nl->buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->nlh.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : err;	/* 0 is the ack */
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				int *perr = NLMSG_DATA(h);

				if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *perr < 0)
					return *perr;
				return err;
			}
			if (cb && !err)
				err = cb(arg, (char *)NLMSG_DATA(h) + GENL_HDRLEN,
					 h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN));
		}
	}
}

static int family_cb(void *arg, const char *attrs, int len)
{
	const struct nlattr *na;
	int rem;

	for_each_attr(na, attrs, len, rem)
		if ((na->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID)
			memcpy(arg, (const char *)na + NLA_HDRLEN, sizeof(uint16_t));
	return 0;
}

int dtnl_open(struct dtnl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, rcv = 4 << 20;
	struct req r;
	long page;
	int err;

	memset(nl, 0, sizeof(*nl));
	nl->buf_size = 1 << 17;
	/* one page, as libmnl's MNL_SOCKET_BUFFER_SIZE: NLMSG_GOODSIZE fits */
	page = sysconf(_SC_PAGESIZE);
	nl->recv_len = page > 0 && page < 8192 ? (size_t)page : 8192;
	if (getenv("BENCH_DTNL_RECV")) {
		size_t v = strtoul(getenv("BENCH_DTNL_RECV"), NULL, 0);

		if (v >= nl->recv_len && v <= nl->buf_size)
			nl->recv_len = v;
	}
	nl->buf = malloc(nl->buf_size);
	if (!nl->buf)
		return -ENOMEM;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0) {
		err = -errno;
		free(nl->buf);
		return err;
	}
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		dtnl_close(nl);
		return err;
	}
	req_init(nl, &r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_ACK);
	put_attr(&r, CTRL_ATTR_FAMILY_NAME, DTRACK_GENL_NAME, sizeof(DTRACK_GENL_NAME));
	err = transact(nl, &r, family_cb, &nl->family);
	if (err || !nl->family) {
		dtnl_close(nl);
		return err ? err : -ENOENT;
	}
	return 0;
}

void dtnl_close(struct dtnl *nl)
{
	if (nl->fd > 0)
		close(nl->fd);
	free(nl->buf);
	memset(nl, 0, sizeof(*nl));
}

struct version_arg {
	uint32_t methods;
	char *version;
	size_t vlen;
};

static int version_cb(void *arg, const char *attrs, int len)
{
	struct version_arg *va = arg;
	const struct nlattr *na;
	int rem;

	for_each_attr(na, attrs, len, rem) {
		switch (na->nla_type & NLA_TYPE_MASK) {
		case DTRACK_A_METHODS:
			va->methods = get_u32(na);
			break;
		case DTRACK_A_VERSION:
			if (va->vlen)
				snprintf(va->version, va->vlen, "%.*s",
					 (int)(na->nla_len - NLA_HDRLEN),
					 (const char *)na + NLA_HDRLEN);
			break;
		}
	}
	return 0;
}

int dtnl_methods(struct dtnl *nl, uint32_t *methods, char *version, size_t vlen)
{
	struct version_arg va = { 0, version, vlen };
	struct req r;
	int err;

	if (vlen)
		version[0] = '\0';
	req_init(nl, &r, nl->family, DTRACK_CMD_GET_VERSION, NLM_F_ACK);
	err = transact(nl, &r, version_cb, &va);
	*methods = va.methods;
	return err;
}

static int id_cb(void *arg, const char *attrs, int len)
{
	const struct nlattr *na;
	int rem;

	for_each_attr(na, attrs, len, rem)
		if ((na->nla_type & NLA_TYPE_MASK) == DTRACK_A_TRACKER_ID)
			*(uint32_t *)arg = get_u32(na);
	return 0;
}

int dtnl_create(struct dtnl *nl, int pid, uint64_t addr, uint64_t len, int method)
{
	uint32_t id = 0;
	struct req r;
	int err;

	req_init(nl, &r, nl->family, DTRACK_CMD_CREATE, NLM_F_ACK);
	put_u32(&r, DTRACK_A_PID, pid);
	put_u64(&r, DTRACK_A_ADDR, addr);
	put_u64(&r, DTRACK_A_LEN, len);
	put_u32(&r, DTRACK_A_METHOD, method);
	err = transact(nl, &r, id_cb, &id);
	if (err)
		return err;
	return id ? (int)id : -EPROTO;
}

int dtnl_destroy(struct dtnl *nl, uint32_t id)
{
	struct req r;

	req_init(nl, &r, nl->family, DTRACK_CMD_DESTROY, NLM_F_ACK);
	put_u32(&r, DTRACK_A_TRACKER_ID, id);
	return transact(nl, &r, NULL, NULL);
}

struct collect_arg {
	dtnl_run_cb cb;
	void *arg;
	uint64_t nr_dirty;
	uint32_t flags;
	dtnl_bitmap_cb bm_cb;
};

static int collect_cb(void *arg, const char *attrs, int len)
{
	struct collect_arg *ca = arg;
	const struct nlattr *na, *ra;
	int rem, rrem;

	for_each_attr(na, attrs, len, rem) {
		uint64_t addr = 0, pages = 0;

		switch (na->nla_type & NLA_TYPE_MASK) {
		case DTRACK_A_NR_DIRTY:
			ca->nr_dirty = get_u64(na);
			break;
		case DTRACK_A_RESULT_FLAGS:
			ca->flags = get_u32(na);
			break;
		case DTRACK_A_RUN:
			for_each_attr(ra, (const char *)na + NLA_HDRLEN,
				      na->nla_len - NLA_HDRLEN, rrem) {
				if ((ra->nla_type & NLA_TYPE_MASK) == DTRACK_RUN_A_ADDR)
					addr = get_u64(ra);
				else if ((ra->nla_type & NLA_TYPE_MASK) == DTRACK_RUN_A_PAGES)
					pages = get_u64(ra);
			}
			if (ca->cb)
				ca->cb(ca->arg, addr, pages);
			break;
		case DTRACK_A_BITMAP: {
			const uint64_t *words = NULL;
			size_t nw = 0;

			for_each_attr(ra, (const char *)na + NLA_HDRLEN,
				      na->nla_len - NLA_HDRLEN, rrem) {
				if ((ra->nla_type & NLA_TYPE_MASK) == DTRACK_BITMAP_A_ADDR) {
					addr = get_u64(ra);
				} else if ((ra->nla_type & NLA_TYPE_MASK) ==
					   DTRACK_BITMAP_A_WORDS) {
					words = (const uint64_t *)((const char *)ra + NLA_HDRLEN);
					nw = (ra->nla_len - NLA_HDRLEN) / 8;
				}
			}
			if (ca->bm_cb && words)
				ca->bm_cb(ca->arg, addr, words, nw);
			break;
		}
		}
	}
	return 0;
}

static int collect(struct dtnl *nl, uint32_t id, uint32_t flags,
		   struct collect_arg *ca, uint64_t *nr_dirty, uint32_t *result_flags)
{
	struct req r;
	int err;

	req_init(nl, &r, nl->family, DTRACK_CMD_COLLECT, NLM_F_DUMP);
	put_u32(&r, DTRACK_A_TRACKER_ID, id);
	if (flags)
		put_u32(&r, DTRACK_A_COLLECT_FLAGS, flags);
	err = transact(nl, &r, collect_cb, ca);
	if (nr_dirty)
		*nr_dirty = ca->nr_dirty;
	if (result_flags)
		*result_flags = ca->flags;
	return err;
}

int dtnl_collect(struct dtnl *nl, uint32_t id, int reset, dtnl_run_cb cb,
		 void *arg, uint64_t *nr_dirty, uint32_t *result_flags)
{
	struct collect_arg ca = { .cb = cb, .arg = arg };

	return collect(nl, id, reset ? DTRACK_COLLECT_RESET : 0, &ca, nr_dirty,
		       result_flags);
}

int dtnl_collect_bitmap(struct dtnl *nl, uint32_t id, int reset, dtnl_bitmap_cb cb,
			void *arg, uint64_t *nr_dirty, uint32_t *result_flags)
{
	struct collect_arg ca = { .bm_cb = cb, .arg = arg };

	return collect(nl, id, DTRACK_COLLECT_BITMAP | (reset ? DTRACK_COLLECT_RESET : 0),
		       &ca, nr_dirty, result_flags);
}

struct stats_arg {
	uint64_t last_collect_ns;
};

static int stats_cb(void *arg, const char *attrs, int len)
{
	struct stats_arg *sa = arg;
	const struct nlattr *na, *sn;
	int rem, srem;

	for_each_attr(na, attrs, len, rem) {
		if ((na->nla_type & NLA_TYPE_MASK) != DTRACK_A_STATS)
			continue;
		for_each_attr(sn, (const char *)na + NLA_HDRLEN, na->nla_len - NLA_HDRLEN, srem)
			if ((sn->nla_type & NLA_TYPE_MASK) == DTRACK_STAT_A_LAST_COLLECT_NS)
				sa->last_collect_ns = get_u64(sn);
	}
	return 0;
}

int dtnl_last_collect_ns(struct dtnl *nl, uint32_t id, uint64_t *ns)
{
	struct stats_arg sa = { 0 };
	struct req r;
	int err;

	req_init(nl, &r, nl->family, DTRACK_CMD_GET_TRACKER, NLM_F_ACK);
	put_u32(&r, DTRACK_A_TRACKER_ID, id);
	err = transact(nl, &r, stats_cb, &sa);
	*ns = sa.last_collect_ns;
	return err;
}
