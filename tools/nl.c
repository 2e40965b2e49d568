// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink plumbing over libmnl: a socket with extended acks, the
 * lookup of the dtrack family and its multicast group, and the loop that
 * sends a request and feeds its answers (doit reply + ack, or a dump) to a
 * callback while keeping the kernel's extack message of a failure.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include "dtrack.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif

/*
 * The recv() length: a page (libmnl's MNL_SOCKET_BUFFER_SIZE), never more.
 * The kernel sizes every dump message's skb by the largest recv() length
 * the socket has seen (netlink_dump(), up to 32 KiB), and Debian's kernels
 * zero each allocation (init_on_alloc): with a 64 KiB recv() each COLLECT
 * paid a zeroed 32 KiB skb, about 55 us under TCG, more than the whole
 * collect of an idle range.  With a page, dump messages are one page
 * (NLMSG_GOODSIZE) and a large answer simply takes more of them; every
 * reply of the family fits in one (NLMSG_DEFAULT_SIZE).
 */
#define DT_NL_RECV_LEN	MNL_SOCKET_BUFFER_SIZE

int dt_nl_open_raw(struct dt_nl *nl)
{
	int one = 1;
	int err;

	memset(nl, 0, sizeof(*nl));
	/* requests are built here too; answers are read a page at a time */
	nl->buf_size = MNL_SOCKET_BUFFER_SIZE > 65536 ? MNL_SOCKET_BUFFER_SIZE :
							  65536;
	nl->buf = malloc(nl->buf_size);
	if (!nl->buf)
		return -ENOMEM;
	nl->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!nl->sock) {
		err = -errno;
		goto err_free;
	}
	/* Best effort: old kernels just give no message. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto err_close;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	return 0;

err_close:
	mnl_socket_close(nl->sock);
	nl->sock = NULL;
err_free:
	free(nl->buf);
	nl->buf = NULL;
	return err;
}

int dt_nl_open(struct dt_nl *nl)
{
	int err;

	err = dt_nl_open_raw(nl);
	if (err)
		return err;
	err = dt_nl_resolve(nl, DTRACK_GENL_NAME);
	if (err)
		dt_nl_close(nl);
	return err;
}

void dt_nl_close(struct dt_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
	free(nl->buf);
	nl->buf = NULL;
}

struct resolve_ctx {
	struct dt_nl *nl;
	bool found;
};

static void resolve_mcgrps(struct dt_nl *nl, const struct nlattr *nest)
{
	const struct nlattr *grp;

	mnl_attr_for_each_nested(grp, nest) {
		const struct nlattr *tb[CTRL_ATTR_MCAST_GRP_MAX + 1] = {};

		if (mnl_attr_parse_nested(grp, dt_mcgrp_attr_cb, tb) < 0)
			continue;
		if (!tb[CTRL_ATTR_MCAST_GRP_NAME] || !tb[CTRL_ATTR_MCAST_GRP_ID])
			continue;
		if (!strcmp(mnl_attr_get_str(tb[CTRL_ATTR_MCAST_GRP_NAME]),
			    DTRACK_MCGRP_EVENTS))
			nl->events_grp =
				mnl_attr_get_u32(tb[CTRL_ATTR_MCAST_GRP_ID]);
	}
}

static int resolve_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1] = {};
	struct resolve_ctx *ctx = data;

	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), dt_ctrl_attr_cb,
			   tb) < 0)
		return MNL_CB_ERROR;
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return MNL_CB_OK;
	ctx->nl->family = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (tb[CTRL_ATTR_VERSION])
		ctx->nl->family_version = mnl_attr_get_u32(tb[CTRL_ATTR_VERSION]);
	if (tb[CTRL_ATTR_MCAST_GROUPS])
		resolve_mcgrps(ctx->nl, tb[CTRL_ATTR_MCAST_GROUPS]);
	ctx->found = true;
	return MNL_CB_OK;
}

int dt_nl_resolve(struct dt_nl *nl, const char *name)
{
	struct resolve_ctx ctx = { .nl = nl };
	struct genlmsghdr *genl;
	struct nlmsghdr *nlh;
	int err;

	nlh = mnl_nlmsg_put_header(nl->buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++nl->seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = CTRL_CMD_GETFAMILY;
	genl->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);

	nl->family = 0;
	nl->events_grp = 0;
	err = dt_nl_talk(nl, nlh, resolve_cb, &ctx);
	if (err)
		return err;
	return ctx.found ? 0 : -ENOENT;
}

struct nlmsghdr *dt_nl_request(struct dt_nl *nl, uint8_t cmd, uint16_t flags)
{
	struct genlmsghdr *genl;
	struct nlmsghdr *nlh;

	nlh = mnl_nlmsg_put_header(nl->buf);
	nlh->nlmsg_type = nl->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = DTRACK_GENL_VERSION;
	return nlh;
}

/*
 * Keep the extack message of an error or done message; payload_off skips
 * the error header (and the echoed request unless capped).
 */
static void save_extack(struct dt_nl *nl, const struct nlmsghdr *nlh,
			size_t payload_off)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {};

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (payload_off >= mnl_nlmsg_get_payload_len(nlh))
		return;
	if (mnl_attr_parse(nlh, payload_off, dt_extack_attr_cb, tb) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(nl->extack, sizeof(nl->extack), "%s",
			 mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
	else if (tb[NLMSGERR_ATTR_MISS_TYPE])
		/* the core's "required attribute missing" carries no text */
		snprintf(nl->extack, sizeof(nl->extack),
			 "missing attribute %u",
			 mnl_attr_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]));
}

struct talk_ctx {
	struct dt_nl *nl;
	dt_msg_cb cb;
	void *data;
	uint32_t seq;
	int error;
};

/*
 * Answers to an earlier request that was abandoned midway (a dump whose
 * parsing failed) may still be queued: they are skipped by sequence number.
 */
static bool stale(const struct talk_ctx *ctx, const struct nlmsghdr *nlh)
{
	return nlh->nlmsg_seq != ctx->seq;
}

static int error_cb(const struct nlmsghdr *nlh, void *data)
{
	struct talk_ctx *ctx = data;
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);

	if (stale(ctx, nlh))
		return MNL_CB_OK;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err))) {
		ctx->error = -EBADMSG;
		return MNL_CB_ERROR;
	}
	if (err->error == 0)
		return MNL_CB_STOP;	/* the ack */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
	save_extack(ctx->nl, nlh, off);
	ctx->error = err->error < 0 ? err->error : -err->error;
	return MNL_CB_ERROR;
}

static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	struct talk_ctx *ctx = data;
	int err = 0;

	if (stale(ctx, nlh))
		return MNL_CB_OK;
	/* A dump that failed midway says why in its done message. */
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int))
		memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(int));
	if (err < 0) {
		save_extack(ctx->nl, nlh, sizeof(int));
		ctx->error = err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_STOP;
}

static int noop_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

static int data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct talk_ctx *ctx = data;
	int ret;

	if (!ctx->cb || stale(ctx, nlh))
		return MNL_CB_OK;
	ret = ctx->cb(nlh, ctx->data);
	if (ret == MNL_CB_ERROR && !ctx->error)
		ctx->error = -EBADMSG;
	return ret;
}

int dt_nl_talk(struct dt_nl *nl, struct nlmsghdr *nlh, dt_msg_cb cb,
	       void *data)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_NOOP] = noop_cb,
		[NLMSG_ERROR] = error_cb,
		[NLMSG_DONE] = done_cb,
		[NLMSG_OVERRUN] = noop_cb,
	};
	struct talk_ctx ctx = {
		.nl = nl, .cb = cb, .data = data, .seq = nlh->nlmsg_seq,
	};
	ssize_t len;
	int ret;

	nl->extack[0] = '\0';
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		len = mnl_socket_recvfrom(nl->sock, nl->buf, DT_NL_RECV_LEN);
		if (len < 0)
			return -errno;
		/* seq 0: checked by the callbacks, which skip stale ones */
		ret = mnl_cb_run2(nl->buf, len, 0, nl->portid, data_cb, &ctx,
				  ctl, NLMSG_MIN_TYPE);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret == MNL_CB_ERROR)
			return ctx.error ? ctx.error :
					     (errno ? -errno : -EBADMSG);
	}
}

int dt_nl_subscribe(struct dt_nl *nl)
{
	int grp = nl->events_grp;

	if (!grp)
		return -ENOENT;
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &grp,
				  sizeof(grp)) < 0)
		return -errno;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dt_nl_listen(struct dt_nl *nl, int timeout_ms, dt_msg_cb cb, void *data)
{
	int64_t deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;
	struct pollfd pfd = {
		.fd = mnl_socket_get_fd(nl->sock),
		.events = POLLIN,
	};
	ssize_t len;
	int ret;

	for (;;) {
		int wait = -1;

		if (timeout_ms >= 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			wait = (int)left;
		}
		ret = poll(&pfd, 1, wait);
		if (ret < 0) {
			if (errno == EINTR)
				return -EINTR;
			return -errno;
		}
		if (ret == 0)
			continue;
		len = mnl_socket_recvfrom(nl->sock, nl->buf, DT_NL_RECV_LEN);
		if (len < 0)
			return -errno;
		ret = mnl_cb_run(nl->buf, len, 0, 0, cb, data);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret == MNL_CB_ERROR)
			return errno ? -errno : -EBADMSG;
	}
}
