// SPDX-License-Identifier: GPL-2.0
/*
 * Attribute parsing: one callback per attribute table, in the style of
 * libmnl's examples/genl.  Each callback validates the type of the
 * attributes it knows and stores them in tb[]; attributes it does not know
 * (a newer module appended them) are skipped, never an error.
 */
#include <errno.h>
#include <string.h>
#include <linux/netlink.h>
#include "dtrack.h"

static int store(const struct nlattr *attr, void *data, int type,
		 enum mnl_attr_data_type t)
{
	const struct nlattr **tb = data;

	if (t != MNL_TYPE_UNSPEC && mnl_attr_validate(attr, t) < 0)
		return MNL_CB_ERROR;
	tb[type] = attr;
	return MNL_CB_OK;
}

int dt_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, DTRACK_A_MAX) < 0)
		return MNL_CB_OK;	/* newer than us: skip */
	switch (type) {
	case DTRACK_A_VERSION:
		return store(attr, data, type, MNL_TYPE_NUL_STRING);
	case DTRACK_A_UAPI_VERSION:
	case DTRACK_A_METHODS:
	case DTRACK_A_TRACKER_ID:
	case DTRACK_A_PID:
	case DTRACK_A_METHOD:
	case DTRACK_A_FLAGS:
	case DTRACK_A_COLLECT_FLAGS:
	case DTRACK_A_RESULT_FLAGS:
	case DTRACK_A_EVENT:
	case DTRACK_A_MAX_TRACKERS:
	case DTRACK_A_NR_TRACKERS:
		return store(attr, data, type, MNL_TYPE_U32);
	case DTRACK_A_ADDR:
	case DTRACK_A_LEN:
	case DTRACK_A_EPOCH:
	case DTRACK_A_NR_DIRTY:
	case DTRACK_A_MAX_PAGES:
	case DTRACK_A_NR_PAGES:
		return store(attr, data, type, MNL_TYPE_U64);
	case DTRACK_A_RUN:
	case DTRACK_A_STATS:
	case DTRACK_A_BITMAP:
		return store(attr, data, type, MNL_TYPE_NESTED);
	default:
		return MNL_CB_OK;	/* PAD and friends */
	}
}

int dt_run_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, DTRACK_RUN_A_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case DTRACK_RUN_A_ADDR:
	case DTRACK_RUN_A_PAGES:
		return store(attr, data, type, MNL_TYPE_U64);
	default:
		return MNL_CB_OK;
	}
}

int dt_bitmap_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, DTRACK_BITMAP_A_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case DTRACK_BITMAP_A_ADDR:
		return store(attr, data, type, MNL_TYPE_U64);
	case DTRACK_BITMAP_A_WORDS:
		if (mnl_attr_get_payload_len(attr) % sizeof(uint64_t))
			return MNL_CB_ERROR;
		return store(attr, data, type, MNL_TYPE_BINARY);
	default:
		return MNL_CB_OK;
	}
}

int dt_stat_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, DTRACK_STAT_A_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case DTRACK_STAT_A_STATE:
	case DTRACK_STAT_A_LOG_SIZE:
		return store(attr, data, type, MNL_TYPE_U32);
	case DTRACK_STAT_A_EPOCH:
	case DTRACK_STAT_A_COLLECTS:
	case DTRACK_STAT_A_RESETS:
	case DTRACK_STAT_A_PAGES:
	case DTRACK_STAT_A_LAST_DIRTY:
	case DTRACK_STAT_A_LAST_COLLECT_NS:
	case DTRACK_STAT_A_FAULTS:
	case DTRACK_STAT_A_LOG_OVERFLOWS:
	case DTRACK_STAT_A_FALSE_POSITIVES:
	case DTRACK_STAT_A_MAX_PAGES:
		return store(attr, data, type, MNL_TYPE_U64);
	default:
		return MNL_CB_OK;
	}
}

int dt_ctrl_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, CTRL_ATTR_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case CTRL_ATTR_FAMILY_NAME:
		return store(attr, data, type, MNL_TYPE_NUL_STRING);
	case CTRL_ATTR_FAMILY_ID:
		return store(attr, data, type, MNL_TYPE_U16);
	case CTRL_ATTR_VERSION:
	case CTRL_ATTR_HDRSIZE:
	case CTRL_ATTR_MAXATTR:
		return store(attr, data, type, MNL_TYPE_U32);
	case CTRL_ATTR_OPS:
	case CTRL_ATTR_MCAST_GROUPS:
		return store(attr, data, type, MNL_TYPE_NESTED);
	default:
		return MNL_CB_OK;
	}
}

int dt_mcgrp_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, CTRL_ATTR_MCAST_GRP_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case CTRL_ATTR_MCAST_GRP_NAME:
		return store(attr, data, type, MNL_TYPE_NUL_STRING);
	case CTRL_ATTR_MCAST_GRP_ID:
		return store(attr, data, type, MNL_TYPE_U32);
	default:
		return MNL_CB_OK;
	}
}

int dt_extack_attr_cb(const struct nlattr *attr, void *data)
{
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, NLMSGERR_ATTR_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case NLMSGERR_ATTR_MSG:
		return store(attr, data, type, MNL_TYPE_NUL_STRING);
	case NLMSGERR_ATTR_OFFS:
	case NLMSGERR_ATTR_MISS_TYPE:
		return store(attr, data, type, MNL_TYPE_U32);
	default:
		return MNL_CB_OK;
	}
}

int dt_parse(const struct nlmsghdr *nlh, const struct nlattr **tb)
{
	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), dt_attr_cb, tb) < 0)
		return -EBADMSG;
	return 0;
}

#define GET_U32(tb, a, dst, has)					\
	do {								\
		if ((tb)[a]) {						\
			(dst) = mnl_attr_get_u32((tb)[a]);		\
			(has) |= DT_HAS(a);				\
		}							\
	} while (0)
#define GET_U64(tb, a, dst, has)					\
	do {								\
		if ((tb)[a]) {						\
			(dst) = mnl_attr_get_u64((tb)[a]);		\
			(has) |= DT_HAS(a);				\
		}							\
	} while (0)

void dt_parse_version(const struct nlattr **tb, struct dt_version *v)
{
	memset(v, 0, sizeof(*v));
	if (tb[DTRACK_A_VERSION]) {
		snprintf(v->version, sizeof(v->version), "%s",
			 mnl_attr_get_str(tb[DTRACK_A_VERSION]));
		v->has |= DT_HAS(DTRACK_A_VERSION);
	}
	GET_U32(tb, DTRACK_A_UAPI_VERSION, v->uapi_version, v->has);
	GET_U32(tb, DTRACK_A_METHODS, v->methods, v->has);
	GET_U32(tb, DTRACK_A_MAX_TRACKERS, v->max_trackers, v->has);
	GET_U64(tb, DTRACK_A_MAX_PAGES, v->max_pages, v->has);
	GET_U32(tb, DTRACK_A_NR_TRACKERS, v->nr_trackers, v->has);
	GET_U64(tb, DTRACK_A_NR_PAGES, v->nr_pages, v->has);
}

int dt_parse_stats(const struct nlattr *nest, struct dt_stats *s)
{
	const struct nlattr *tb[DTRACK_STAT_A_MAX + 1] = {};

	memset(s, 0, sizeof(*s));
	if (mnl_attr_parse_nested(nest, dt_stat_attr_cb, tb) < 0)
		return -EBADMSG;
	GET_U32(tb, DTRACK_STAT_A_STATE, s->state, s->has);
	GET_U64(tb, DTRACK_STAT_A_EPOCH, s->epoch, s->has);
	GET_U64(tb, DTRACK_STAT_A_COLLECTS, s->collects, s->has);
	GET_U64(tb, DTRACK_STAT_A_RESETS, s->resets, s->has);
	GET_U64(tb, DTRACK_STAT_A_PAGES, s->pages, s->has);
	GET_U64(tb, DTRACK_STAT_A_LAST_DIRTY, s->last_dirty, s->has);
	GET_U64(tb, DTRACK_STAT_A_LAST_COLLECT_NS, s->last_collect_ns, s->has);
	GET_U64(tb, DTRACK_STAT_A_FAULTS, s->faults, s->has);
	GET_U64(tb, DTRACK_STAT_A_LOG_OVERFLOWS, s->log_overflows, s->has);
	GET_U64(tb, DTRACK_STAT_A_FALSE_POSITIVES, s->false_positives, s->has);
	GET_U64(tb, DTRACK_STAT_A_MAX_PAGES, s->max_pages, s->has);
	GET_U32(tb, DTRACK_STAT_A_LOG_SIZE, s->log_size, s->has);
	return 0;
}

void dt_parse_tracker(const struct nlattr **tb, struct dt_tracker *t)
{
	memset(t, 0, sizeof(*t));
	GET_U32(tb, DTRACK_A_TRACKER_ID, t->id, t->has);
	GET_U32(tb, DTRACK_A_PID, t->pid, t->has);
	GET_U64(tb, DTRACK_A_ADDR, t->addr, t->has);
	GET_U64(tb, DTRACK_A_LEN, t->len, t->has);
	GET_U32(tb, DTRACK_A_METHOD, t->method, t->has);
	GET_U32(tb, DTRACK_A_FLAGS, t->flags, t->has);
	GET_U64(tb, DTRACK_A_EPOCH, t->epoch, t->has);
	if (tb[DTRACK_A_STATS] &&
	    !dt_parse_stats(tb[DTRACK_A_STATS], &t->stats))
		t->has |= DT_HAS(DTRACK_A_STATS);
}

void dt_parse_collect_msg(const struct nlattr **tb, struct dt_collect_msg *m)
{
	memset(m, 0, sizeof(*m));
	GET_U32(tb, DTRACK_A_TRACKER_ID, m->id, m->has);
	GET_U64(tb, DTRACK_A_EPOCH, m->epoch, m->has);
	GET_U32(tb, DTRACK_A_RESULT_FLAGS, m->result_flags, m->has);
	GET_U64(tb, DTRACK_A_NR_DIRTY, m->nr_dirty, m->has);
}

int dt_parse_run(const struct nlattr *nest, struct dt_run *run)
{
	const struct nlattr *tb[DTRACK_RUN_A_MAX + 1] = {};

	if (mnl_attr_parse_nested(nest, dt_run_attr_cb, tb) < 0)
		return -EBADMSG;
	if (!tb[DTRACK_RUN_A_ADDR] || !tb[DTRACK_RUN_A_PAGES])
		return -EBADMSG;
	run->addr = mnl_attr_get_u64(tb[DTRACK_RUN_A_ADDR]);
	run->pages = mnl_attr_get_u64(tb[DTRACK_RUN_A_PAGES]);
	return 0;
}

int dt_parse_bitmap(const struct nlattr *nest, struct dt_bitmap *bm)
{
	const struct nlattr *tb[DTRACK_BITMAP_A_MAX + 1] = {};

	if (mnl_attr_parse_nested(nest, dt_bitmap_attr_cb, tb) < 0)
		return -EBADMSG;
	if (!tb[DTRACK_BITMAP_A_ADDR] || !tb[DTRACK_BITMAP_A_WORDS])
		return -EBADMSG;
	bm->addr = mnl_attr_get_u64(tb[DTRACK_BITMAP_A_ADDR]);
	bm->words = mnl_attr_get_payload(tb[DTRACK_BITMAP_A_WORDS]);
	bm->nwords = mnl_attr_get_payload_len(tb[DTRACK_BITMAP_A_WORDS]) /
		     sizeof(uint64_t);
	return 0;
}

void dt_parse_event(const struct nlattr **tb, struct dt_event *e)
{
	memset(e, 0, sizeof(*e));
	GET_U32(tb, DTRACK_A_EVENT, e->event, e->has);
	GET_U32(tb, DTRACK_A_TRACKER_ID, e->id, e->has);
	GET_U32(tb, DTRACK_A_PID, e->pid, e->has);
	GET_U64(tb, DTRACK_A_EPOCH, e->epoch, e->has);
	GET_U64(tb, DTRACK_A_ADDR, e->addr, e->has);
	GET_U64(tb, DTRACK_A_LEN, e->len, e->has);
	GET_U32(tb, DTRACK_A_METHOD, e->method, e->has);
}
