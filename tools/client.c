// SPDX-License-Identifier: GPL-2.0
/*
 * Typed dtrack requests: each builds one generic netlink request, runs it
 * through dt_nl_talk() and parses the answer into plain structures.  All
 * return 0 or -errno; the kernel's explanation is left in nl->extack.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "dtrack.h"

static int version_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};

	if (dt_parse(nlh, tb))
		return MNL_CB_ERROR;
	dt_parse_version(tb, data);
	return MNL_CB_OK;
}

int dt_get_version(struct dt_nl *nl, struct dt_version *v)
{
	struct nlmsghdr *nlh;
	int err;

	memset(v, 0, sizeof(*v));
	nlh = dt_nl_request(nl, DTRACK_CMD_GET_VERSION, NLM_F_ACK);
	err = dt_nl_talk(nl, nlh, version_cb, v);
	if (err)
		return err;
	if (!(v->has & DT_HAS(DTRACK_A_UAPI_VERSION)))
		return -EBADMSG;
	return 0;
}

static int create_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};
	uint32_t *id = data;

	if (dt_parse(nlh, tb))
		return MNL_CB_ERROR;
	if (tb[DTRACK_A_TRACKER_ID])
		*id = mnl_attr_get_u32(tb[DTRACK_A_TRACKER_ID]);
	return MNL_CB_OK;
}

int dt_create(struct dt_nl *nl, uint32_t pid, uint64_t addr, uint64_t len,
	      uint32_t method, uint32_t flags, uint32_t *id)
{
	struct nlmsghdr *nlh;
	int err;

	*id = 0;
	nlh = dt_nl_request(nl, DTRACK_CMD_CREATE, NLM_F_ACK);
	mnl_attr_put_u32(nlh, DTRACK_A_PID, pid);
	mnl_attr_put_u64(nlh, DTRACK_A_ADDR, addr);
	mnl_attr_put_u64(nlh, DTRACK_A_LEN, len);
	mnl_attr_put_u32(nlh, DTRACK_A_METHOD, method);
	if (flags)
		mnl_attr_put_u32(nlh, DTRACK_A_FLAGS, flags);
	err = dt_nl_talk(nl, nlh, create_cb, id);
	if (err)
		return err;
	return *id ? 0 : -EBADMSG;
}

int dt_destroy(struct dt_nl *nl, uint32_t id)
{
	struct nlmsghdr *nlh;

	nlh = dt_nl_request(nl, DTRACK_CMD_DESTROY, NLM_F_ACK);
	mnl_attr_put_u32(nlh, DTRACK_A_TRACKER_ID, id);
	return dt_nl_talk(nl, nlh, NULL, NULL);
}

struct collect_ctx {
	struct dt_collect *c;
	bool keep;
	dt_run_cb run_cb;
	void *data;
	struct dt_run pending;	/* merged run not yet handed out */
};

static int add_run(struct dt_collect *c, const struct dt_run *run)
{
	if (c->nr_runs == c->cap_runs) {
		size_t cap = c->cap_runs ? c->cap_runs * 2 : 64;
		struct dt_run *r = realloc(c->runs, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		c->runs = r;
		c->cap_runs = cap;
	}
	c->runs[c->nr_runs++] = *run;
	return 0;
}

static int flush_run(struct collect_ctx *ctx)
{
	if (!ctx->pending.pages)
		return 0;
	if (ctx->run_cb)
		ctx->run_cb(ctx->c, &ctx->pending, ctx->data);
	if (ctx->keep && add_run(ctx->c, &ctx->pending))
		return -ENOMEM;
	ctx->pending.pages = 0;
	return 0;
}

/* One run of the answer: merged with the pending one when adjacent. */
static int feed_run(struct collect_ctx *ctx, const struct dt_run *run)
{
	struct dt_collect *c = ctx->c;
	uint64_t end;

	if (!run->pages)
		return 0;
	c->pages += run->pages;
	end = ctx->pending.addr + ctx->pending.pages * DT_PAGE_SIZE;
	if (ctx->pending.pages && run->addr == end) {
		ctx->pending.pages += run->pages;
		return 0;
	}
	if (ctx->pending.pages && run->addr < end)
		c->unordered = true;
	if (flush_run(ctx))
		return -ENOMEM;
	ctx->pending = *run;
	return 0;
}

/* The runs of set bits of a DTRACK_A_BITMAP nest (DTRACK_COLLECT_BITMAP). */
static int feed_bitmap(struct collect_ctx *ctx, const struct dt_bitmap *bm)
{
	struct dt_run run = { 0, 0 };
	size_t i;

	for (i = 0; i < bm->nwords; i++) {
		uint64_t w;
		unsigned int b = 0;

		memcpy(&w, (const char *)bm->words + i * sizeof(w), sizeof(w));
		while (w) {
			unsigned int s = __builtin_ctzll(w);
			unsigned int len;

			w >>= s;
			b += s;
			len = ~w ? (unsigned int)__builtin_ctzll(~w) : 64 - b;
			run.addr = bm->addr + (i * 64 + b) * DT_PAGE_SIZE;
			run.pages = len;
			if (feed_run(ctx, &run))
				return -ENOMEM;
			b += len;
			w = len >= 64 ? 0 : w >> len;
		}
	}
	return 0;
}

static int collect_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};
	struct collect_ctx *ctx = data;
	struct dt_collect *c = ctx->c;
	struct dt_collect_msg m;
	const struct nlattr *attr;

	if (dt_parse(nlh, tb))
		return MNL_CB_ERROR;
	dt_parse_collect_msg(tb, &m);
	if (!c->nr_msgs) {
		c->id = m.id;
		c->epoch = m.epoch;
		c->result_flags = m.result_flags;
		c->nr_dirty = m.nr_dirty;
		c->has = m.has;
	} else {
		/* Flags may come late if the module reports them at the end. */
		c->result_flags |= m.result_flags;
		if (!(c->has & DT_HAS(DTRACK_A_NR_DIRTY)) &&
		    (m.has & DT_HAS(DTRACK_A_NR_DIRTY))) {
			c->nr_dirty = m.nr_dirty;
			c->has |= DT_HAS(DTRACK_A_NR_DIRTY);
		}
	}
	c->nr_msgs++;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		struct dt_bitmap bm;
		struct dt_run run;

		switch (mnl_attr_get_type(attr)) {
		case DTRACK_A_RUN:
			if (dt_parse_run(attr, &run) || feed_run(ctx, &run))
				return MNL_CB_ERROR;
			break;
		case DTRACK_A_BITMAP:
			if (dt_parse_bitmap(attr, &bm) || feed_bitmap(ctx, &bm))
				return MNL_CB_ERROR;
			break;
		}
	}
	return MNL_CB_OK;
}

static int do_collect(struct dt_nl *nl, uint32_t id, uint32_t flags,
		      struct collect_ctx *ctx)
{
	struct nlmsghdr *nlh;
	int err;

	memset(ctx->c, 0, sizeof(*ctx->c));
	nlh = dt_nl_request(nl, DTRACK_CMD_COLLECT, NLM_F_DUMP);
	mnl_attr_put_u32(nlh, DTRACK_A_TRACKER_ID, id);
	mnl_attr_put_u32(nlh, DTRACK_A_COLLECT_FLAGS, flags);
	err = dt_nl_talk(nl, nlh, collect_cb, ctx);
	if (!err)
		err = flush_run(ctx);
	if (!err && !ctx->c->nr_msgs)
		err = -EBADMSG;	/* the module always answers the epoch */
	return err;
}

int dt_collect(struct dt_nl *nl, uint32_t id, uint32_t flags,
	       struct dt_collect *c)
{
	struct collect_ctx ctx = { .c = c, .keep = true };
	int err;

	err = do_collect(nl, id, flags, &ctx);
	if (err)
		dt_collect_free(c);
	return err;
}

int dt_collect_stream(struct dt_nl *nl, uint32_t id, uint32_t flags,
		      struct dt_collect *c, dt_run_cb run_cb, void *data)
{
	struct collect_ctx ctx = { .c = c, .run_cb = run_cb, .data = data };

	return do_collect(nl, id, flags, &ctx);
}

void dt_collect_free(struct dt_collect *c)
{
	free(c->runs);
	c->runs = NULL;
	c->nr_runs = 0;
	c->cap_runs = 0;
}

static int tracker_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};

	if (dt_parse(nlh, tb))
		return MNL_CB_ERROR;
	dt_parse_tracker(tb, data);
	return MNL_CB_OK;
}

int dt_get_tracker(struct dt_nl *nl, uint32_t id, struct dt_tracker *t)
{
	struct nlmsghdr *nlh;
	int err;

	memset(t, 0, sizeof(*t));
	nlh = dt_nl_request(nl, DTRACK_CMD_GET_TRACKER, NLM_F_ACK);
	mnl_attr_put_u32(nlh, DTRACK_A_TRACKER_ID, id);
	err = dt_nl_talk(nl, nlh, tracker_cb, t);
	if (err)
		return err;
	return t->has ? 0 : -EBADMSG;
}

struct list_ctx {
	struct dt_tracker *ts;
	size_t n;
	size_t cap;
};

static int list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct list_ctx *ctx = data;

	if (ctx->n == ctx->cap) {
		size_t cap = ctx->cap ? ctx->cap * 2 : 16;
		struct dt_tracker *ts = realloc(ctx->ts, cap * sizeof(*ts));

		if (!ts)
			return MNL_CB_ERROR;
		ctx->ts = ts;
		ctx->cap = cap;
	}
	if (tracker_cb(nlh, &ctx->ts[ctx->n]) != MNL_CB_OK)
		return MNL_CB_ERROR;
	ctx->n++;
	return MNL_CB_OK;
}

int dt_list(struct dt_nl *nl, struct dt_tracker **ts, size_t *n)
{
	struct list_ctx ctx = {};
	struct nlmsghdr *nlh;
	int err;

	nlh = dt_nl_request(nl, DTRACK_CMD_GET_TRACKER, NLM_F_DUMP);
	err = dt_nl_talk(nl, nlh, list_cb, &ctx);
	if (err) {
		free(ctx.ts);
		return err;
	}
	*ts = ctx.ts;
	*n = ctx.n;
	return 0;
}
