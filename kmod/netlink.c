// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink interface of dtrack: strict per-operation policies,
 * admin-only operations, every rejection explained through extack.
 * Replies carry the request's command; notifications DTRACK_CMD_EVENT.
 */
#include <linux/module.h>
#include <linux/pid_namespace.h>
#include <linux/slab.h>
#include <net/genetlink.h>
#include "dtrack.h"

static struct genl_family dtrack_genl_family;
static bool dtrack_nl_registered;

static const struct nla_policy dtrack_version_policy[DTRACK_A_MAX + 1] = {
};

static const struct nla_policy dtrack_create_policy[DTRACK_A_MAX + 1] = {
	[DTRACK_A_PID]		= { .type = NLA_U32 },
	[DTRACK_A_ADDR]		= { .type = NLA_U64 },
	[DTRACK_A_LEN]		= { .type = NLA_U64 },
	[DTRACK_A_METHOD]	= { .type = NLA_U32 },
	[DTRACK_A_FLAGS]	= NLA_POLICY_MASK(NLA_U32, DTRACK_F_ALL),
};

static const struct nla_policy dtrack_id_policy[DTRACK_A_MAX + 1] = {
	[DTRACK_A_TRACKER_ID]	= { .type = NLA_U32 },
};

static const struct nla_policy dtrack_collect_policy[DTRACK_A_MAX + 1] = {
	[DTRACK_A_TRACKER_ID]	= { .type = NLA_U32 },
	[DTRACK_A_COLLECT_FLAGS] = NLA_POLICY_MASK(NLA_U32, DTRACK_COLLECT_ALL),
};

static int dtrack_nl_get_version(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	u32 nr_trackers;
	u64 nr_pages;
	void *hdr;

	dtrack_registry_counts(&nr_trackers, &nr_pages);
	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &dtrack_genl_family, 0,
				DTRACK_CMD_GET_VERSION);
	if (!hdr)
		goto err_free_msg;
	if (nla_put_string(msg, DTRACK_A_VERSION, DTRACK_MODULE_VERSION) ||
	    nla_put_u32(msg, DTRACK_A_UAPI_VERSION, DTRACK_GENL_VERSION) ||
	    nla_put_u32(msg, DTRACK_A_METHODS, dtrack_methods_available()) ||
	    nla_put_u32(msg, DTRACK_A_MAX_TRACKERS,
			READ_ONCE(dtrack_max_trackers)) ||
	    nla_put_u64_64bit(msg, DTRACK_A_MAX_PAGES,
			      READ_ONCE(dtrack_max_pages), DTRACK_A_PAD) ||
	    nla_put_u32(msg, DTRACK_A_NR_TRACKERS, nr_trackers) ||
	    nla_put_u64_64bit(msg, DTRACK_A_NR_PAGES, nr_pages, DTRACK_A_PAD))
		goto err_cancel_msg;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_cancel_msg:
	genlmsg_cancel(msg, hdr);
err_free_msg:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int dtrack_nl_create(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct sk_buff *msg;
	u32 flags = 0, method, id;
	void *hdr;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, DTRACK_A_PID) ||
	    GENL_REQ_ATTR_CHECK(info, DTRACK_A_ADDR) ||
	    GENL_REQ_ATTR_CHECK(info, DTRACK_A_LEN) ||
	    GENL_REQ_ATTR_CHECK(info, DTRACK_A_METHOD))
		return -EINVAL;
	if (attrs[DTRACK_A_FLAGS])
		flags = nla_get_u32(attrs[DTRACK_A_FLAGS]);
	/* checked here rather than by policy: the errno users expect */
	if (!nla_get_u32(attrs[DTRACK_A_PID])) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[DTRACK_A_PID],
				    "no such process");
		return -ESRCH;
	}
	method = nla_get_u32(attrs[DTRACK_A_METHOD]);
	if (method < DTRACK_METHOD_SOFTDIRTY || method > DTRACK_METHOD_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[DTRACK_A_METHOD],
				    "unknown method");
		return -EINVAL;
	}

	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	ret = dtrack_tracker_create(nla_get_u32(attrs[DTRACK_A_PID]),
				    nla_get_u64(attrs[DTRACK_A_ADDR]),
				    nla_get_u64(attrs[DTRACK_A_LEN]),
				    method, flags,
				    info->snd_portid, &id, info->extack);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	hdr = genlmsg_put_reply(msg, info, &dtrack_genl_family, 0,
				DTRACK_CMD_CREATE);
	if (!hdr || nla_put_u32(msg, DTRACK_A_TRACKER_ID, id)) {
		/* cannot answer: do not leave an unknown tracker behind */
		nlmsg_free(msg);
		dtrack_tracker_destroy(id);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	ret = genlmsg_reply(msg, info);
	if (ret)
		/* not delivered (full receive queue): nobody knows the id */
		dtrack_tracker_destroy(id);
	return ret;
}

static int dtrack_nl_destroy(struct sk_buff *skb, struct genl_info *info)
{
	if (GENL_REQ_ATTR_CHECK(info, DTRACK_A_TRACKER_ID))
		return -EINVAL;
	if (dtrack_tracker_destroy(nla_get_u32(info->attrs[DTRACK_A_TRACKER_ID]))) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    info->attrs[DTRACK_A_TRACKER_ID],
				    "no such tracker");
		return -ENOENT;
	}
	return 0;
}

/* --- GET_TRACKER ------------------------------------------------------- */

static int dtrack_put_tracker(struct sk_buff *msg, struct dtrack_tracker *t)
{
	struct nlattr *stats;
	pid_t pid = pid_nr_ns(t->pid, task_active_pid_ns(current));

	if (nla_put_u32(msg, DTRACK_A_TRACKER_ID, t->id) ||
	    nla_put_u32(msg, DTRACK_A_PID, pid) ||
	    nla_put_u64_64bit(msg, DTRACK_A_ADDR, t->start, DTRACK_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_A_LEN, t->end - t->start,
			      DTRACK_A_PAD) ||
	    nla_put_u32(msg, DTRACK_A_METHOD, t->method) ||
	    nla_put_u32(msg, DTRACK_A_FLAGS, t->flags))
		return -EMSGSIZE;
	stats = nla_nest_start(msg, DTRACK_A_STATS);
	if (!stats)
		return -EMSGSIZE;
	if (nla_put_u32(msg, DTRACK_STAT_A_STATE, atomic_read(&t->state)) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_EPOCH, READ_ONCE(t->epoch),
			      DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_COLLECTS,
			      READ_ONCE(t->collects), DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_RESETS, READ_ONCE(t->resets),
			      DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_PAGES, t->npages,
			      DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_LAST_DIRTY,
			      READ_ONCE(t->last_dirty), DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_LAST_COLLECT_NS,
			      READ_ONCE(t->last_collect_ns), DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_FAULTS,
			      atomic64_read(&t->faults), DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_LOG_OVERFLOWS,
			      atomic64_read(&t->log_overflows),
			      DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_FALSE_POSITIVES,
			      atomic64_read(&t->false_positives),
			      DTRACK_STAT_A_PAD) ||
	    nla_put_u64_64bit(msg, DTRACK_STAT_A_MAX_PAGES,
			      READ_ONCE(dtrack_max_tracker_pages),
			      DTRACK_STAT_A_PAD) ||
	    nla_put_u32(msg, DTRACK_STAT_A_LOG_SIZE, t->log_size)) {
		nla_nest_cancel(msg, stats);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, stats);
	return 0;
}

static int dtrack_nl_get_tracker(struct sk_buff *skb, struct genl_info *info)
{
	struct dtrack_tracker *t;
	struct sk_buff *msg;
	void *hdr;
	int ret = -EMSGSIZE;

	if (GENL_REQ_ATTR_CHECK(info, DTRACK_A_TRACKER_ID))
		return -EINVAL;
	t = dtrack_tracker_get(nla_get_u32(info->attrs[DTRACK_A_TRACKER_ID]));
	if (!t) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    info->attrs[DTRACK_A_TRACKER_ID],
				    "no such tracker");
		return -ENOENT;
	}
	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_put;
	}
	hdr = genlmsg_put_reply(msg, info, &dtrack_genl_family, 0,
				DTRACK_CMD_GET_TRACKER);
	if (!hdr || dtrack_put_tracker(msg, t)) {
		nlmsg_free(msg);
		goto out_put;
	}
	genlmsg_end(msg, hdr);
	ret = genlmsg_reply(msg, info);
out_put:
	dtrack_tracker_put(t);
	return ret;
}

/* cb->args[0]: next tracker id to dump */
static int dtrack_nl_dump_trackers(struct sk_buff *skb,
				   struct netlink_callback *cb)
{
	struct dtrack_tracker *t;
	u32 id = cb->args[0] ? cb->args[0] : 1;
	void *hdr;

	while ((t = dtrack_tracker_next(&id))) {
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &dtrack_genl_family,
				  NLM_F_MULTI, DTRACK_CMD_GET_TRACKER);
		if (!hdr || dtrack_put_tracker(skb, t)) {
			if (hdr)
				genlmsg_cancel(skb, hdr);
			dtrack_tracker_put(t);
			break;
		}
		genlmsg_end(skb, hdr);
		dtrack_tracker_put(t);
		id++;
	}
	cb->args[0] = id;
	return skb->len;
}

/* --- COLLECT ----------------------------------------------------------- */

/* The snapshot taken in .start, streamed by .dumpit. */
struct dtrack_collect_dump {
	struct dtrack_result res;
	size_t next_run;
	size_t next_word;		/* DTRACK_COLLECT_BITMAP */
	bool header_sent;
	bool bitmap;			/* DTRACK_COLLECT_BITMAP */
};

static int dtrack_nl_collect_start(struct netlink_callback *cb)
{
	struct nlattr **attrs = dtrack_genl_dump_attrs(cb);
	struct dtrack_collect_dump *d;
	struct dtrack_tracker *t;
	u32 flags = 0;
	int ret;

	if (!attrs[DTRACK_A_TRACKER_ID]) {
		NL_SET_ERR_MSG(cb->extack, "missing DTRACK_A_TRACKER_ID");
		return -EINVAL;
	}
	if (attrs[DTRACK_A_COLLECT_FLAGS])
		flags = nla_get_u32(attrs[DTRACK_A_COLLECT_FLAGS]);
	t = dtrack_tracker_get(nla_get_u32(attrs[DTRACK_A_TRACKER_ID]));
	if (!t) {
		NL_SET_ERR_MSG_ATTR(cb->extack, attrs[DTRACK_A_TRACKER_ID],
				    "no such tracker");
		return -ENOENT;
	}
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d) {
		dtrack_tracker_put(t);
		return -ENOMEM;
	}
	ret = dtrack_collect(t, flags & DTRACK_COLLECT_RESET,
			     flags & DTRACK_COLLECT_BITMAP, &d->res);
	dtrack_tracker_put(t);
	if (ret) {
		NL_SET_ERR_MSG(cb->extack, "collect failed");
		kfree(d);
		return ret;
	}
	d->bitmap = flags & DTRACK_COLLECT_BITMAP;
	cb->args[0] = (long)d;
	return 0;
}

/*
 * One u64 attribute at @a.  x86-64 (the only architecture dtrack builds
 * for) has efficient unaligned access: nla_put_u64_64bit() adds no pad.
 */
static struct nlattr *dtrack_nl_fill_u64(struct nlattr *a, int type, u64 v)
{
	a->nla_type = type;
	a->nla_len = nla_attr_size(sizeof(u64));
	memcpy(nla_data(a), &v, sizeof(v));
	return (void *)a + nla_total_size(sizeof(u64));
}

/*
 * As many DTRACK_A_RUN nests as fit in @skb, laid out as nla_nest_start()
 * and nla_put_u64_64bit() would, with one skb_put() for all of them:
 * answers of thousands of runs were dominated by the per-attribute calls.
 */
static void dtrack_nl_put_runs(struct sk_buff *skb,
			       struct dtrack_collect_dump *d)
{
	const int inner = 2 * nla_total_size(sizeof(u64));
	const int per = nla_total_size(inner);
	struct dtrack_result *res = &d->res;
	size_t k = min_t(size_t, skb_tailroom(skb) / per,
			 res->nr_runs - d->next_run);
	struct nlattr *nest;

	nest = skb_put(skb, k * per);
	for (; k; k--, d->next_run++) {
		const struct dtrack_run *run = &res->runs[d->next_run];
		struct nlattr *a = nla_data(nest);

		nest->nla_type = DTRACK_A_RUN | NLA_F_NESTED;
		nest->nla_len = NLA_HDRLEN + inner;
		a = dtrack_nl_fill_u64(a, DTRACK_RUN_A_ADDR, run->addr);
		dtrack_nl_fill_u64(a, DTRACK_RUN_A_PAGES, run->pages);
		nest = (void *)nest + per;
	}
}

/*
 * DTRACK_COLLECT_BITMAP: the result's words as DTRACK_A_BITMAP nests.  A
 * nest spans gaps of up to DTRACK_BM_GAP zero words (cheaper than a new
 * nest's headers), at most DTRACK_BM_MAX_WORDS words (nla_len is 16 bits)
 * and never two messages.
 */
#define DTRACK_BM_GAP		3
#define DTRACK_BM_MAX_WORDS	8000

static void dtrack_nl_put_bitmap(struct sk_buff *skb,
				 struct dtrack_collect_dump *d)
{
	const int hdr = 3 * NLA_HDRLEN + nla_total_size(sizeof(u64));
	const unsigned long *bits = d->res.bits;
	size_t nw = d->res.nr_words;

	while (d->next_word < nw) {
		size_t s = d->next_word, e, i, z = 0, room;
		struct nlattr *nest, *a;

		while (s < nw && !bits[s])
			s++;
		d->next_word = s;
		if (s == nw || skb_tailroom(skb) < hdr + (int)sizeof(u64))
			break;
		nest = skb_put(skb, NLA_HDRLEN);
		nest->nla_type = DTRACK_A_BITMAP | NLA_F_NESTED;
		a = skb_put(skb, nla_total_size(sizeof(u64)));
		dtrack_nl_fill_u64(a, DTRACK_BITMAP_A_ADDR, d->res.bits_addr +
				   ((u64)s * BITS_PER_LONG << PAGE_SHIFT));
		/* 8-byte aligned in the reader's buffer: relative to data */
		if ((skb->len + NLA_HDRLEN) & 7) {
			a = skb_put(skb, NLA_HDRLEN);
			a->nla_type = DTRACK_BITMAP_A_PAD;
			a->nla_len = NLA_HDRLEN;
		}
		room = min_t(size_t, (skb_tailroom(skb) - NLA_HDRLEN) /
				     sizeof(u64), DTRACK_BM_MAX_WORDS);
		/* the nonzero words from s, bridging short gaps */
		for (e = s + 1, i = s + 1; i < nw && i < s + room; i++) {
			if (bits[i]) {
				e = i + 1;
				z = 0;
			} else if (++z > DTRACK_BM_GAP) {
				break;
			}
		}
		a = skb_put(skb, NLA_HDRLEN + (e - s) * sizeof(u64));
		a->nla_type = DTRACK_BITMAP_A_WORDS;
		a->nla_len = NLA_HDRLEN + (e - s) * sizeof(u64);
		memcpy(nla_data(a), bits + s, (e - s) * sizeof(u64));
		nest->nla_len = skb_tail_pointer(skb) - (unsigned char *)nest;
		d->next_word = e;
	}
}

static int dtrack_nl_collect_dump(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct dtrack_collect_dump *d = (void *)cb->args[0];
	struct dtrack_result *res = &d->res;
	void *hdr;

	if (d->header_sent && d->next_run >= res->nr_runs &&
	    d->next_word >= res->nr_words)
		return 0;
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &dtrack_genl_family, NLM_F_MULTI, DTRACK_CMD_COLLECT);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, DTRACK_A_TRACKER_ID, res->tracker_id) ||
	    nla_put_u64_64bit(skb, DTRACK_A_EPOCH, res->epoch, DTRACK_A_PAD))
		goto err_cancel;
	if (!d->header_sent &&
	    (nla_put_u32(skb, DTRACK_A_RESULT_FLAGS, res->flags) ||
	     nla_put_u64_64bit(skb, DTRACK_A_NR_DIRTY, res->nr_dirty,
			       DTRACK_A_PAD)))
		goto err_cancel;
	if (d->bitmap)
		dtrack_nl_put_bitmap(skb, d);
	else
		dtrack_nl_put_runs(skb, d);
	d->header_sent = true;
	genlmsg_end(skb, hdr);
	/*
	 * Last message: returning 0 lets netlink_dump() append NLMSG_DONE to
	 * this skb instead of calling us again for an empty one, which saves
	 * the reader a recvmsg() round trip per collect.
	 */
	return d->next_run < res->nr_runs || d->next_word < res->nr_words ?
	       skb->len : 0;

err_cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int dtrack_nl_collect_done(struct netlink_callback *cb)
{
	struct dtrack_collect_dump *d = (void *)cb->args[0];

	if (d) {
		dtrack_result_free(&d->res);
		kfree(d);
	}
	return 0;
}

static int dtrack_nl_collect_doit(struct sk_buff *skb, struct genl_info *info)
{
	NL_SET_ERR_MSG(info->extack, "COLLECT is a dump request (NLM_F_DUMP)");
	return -EOPNOTSUPP;
}

static const struct genl_ops dtrack_genl_ops[] = {
	{
		.cmd = DTRACK_CMD_GET_VERSION,
		.doit = dtrack_nl_get_version,
		.policy = dtrack_version_policy,
		.maxattr = DTRACK_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = DTRACK_CMD_CREATE,
		.doit = dtrack_nl_create,
		.policy = dtrack_create_policy,
		.maxattr = DTRACK_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = DTRACK_CMD_DESTROY,
		.doit = dtrack_nl_destroy,
		.policy = dtrack_id_policy,
		.maxattr = DTRACK_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = DTRACK_CMD_COLLECT,
		.doit = dtrack_nl_collect_doit,
		.start = dtrack_nl_collect_start,
		.dumpit = dtrack_nl_collect_dump,
		.done = dtrack_nl_collect_done,
		.policy = dtrack_collect_policy,
		.maxattr = DTRACK_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = DTRACK_CMD_GET_TRACKER,
		.doit = dtrack_nl_get_tracker,
		.dumpit = dtrack_nl_dump_trackers,
		.policy = dtrack_id_policy,
		.maxattr = DTRACK_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
};

static const struct genl_multicast_group dtrack_mcgrps[] = {
	/* tracker ids and their fate: for the admins the family answers */
	{ .name = DTRACK_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_NET_ADMIN, },
};

static struct genl_family dtrack_genl_family __ro_after_init = {
	.name = DTRACK_GENL_NAME,
	.version = DTRACK_GENL_VERSION,
	.maxattr = DTRACK_A_MAX,
	.module = THIS_MODULE,
	.ops = dtrack_genl_ops,
	.n_ops = ARRAY_SIZE(dtrack_genl_ops),
	.resv_start_op = DTRACK_CMD_MAX + 1,
	.mcgrps = dtrack_mcgrps,
	.n_mcgrps = ARRAY_SIZE(dtrack_mcgrps),
	.netnsok = false,
	.parallel_ops = true,
};

/* Multicast "tracker @id: @event" to the events group. */
void dtrack_notify(u32 id, u32 event)
{
	struct sk_buff *msg;
	void *hdr;

	if (!READ_ONCE(dtrack_nl_registered))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &dtrack_genl_family, 0, DTRACK_CMD_EVENT);
	if (!hdr || nla_put_u32(msg, DTRACK_A_TRACKER_ID, id) ||
	    nla_put_u32(msg, DTRACK_A_EVENT, event)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&dtrack_genl_family, msg, 0, 0, GFP_KERNEL);
}

int __init dtrack_netlink_init(void)
{
	int ret = genl_register_family(&dtrack_genl_family);

	if (!ret)
		WRITE_ONCE(dtrack_nl_registered, true);
	return ret;
}

void dtrack_netlink_exit(void)
{
	WRITE_ONCE(dtrack_nl_registered, false);
	genl_unregister_family(&dtrack_genl_family);
}
