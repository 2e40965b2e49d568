// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink interface of dtrack: strict per-operation policies,
 * admin-only operations, every rejection explained through extack.
 */
#include <linux/module.h>
#include <net/genetlink.h>
#include "dtrack.h"

static struct genl_family dtrack_genl_family;

static int dtrack_nl_get_version(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &dtrack_genl_family, 0,
				DTRACK_CMD_GET_VERSION);
	if (!hdr)
		goto err_free_msg;
	if (nla_put_string(msg, DTRACK_A_VERSION, DTRACK_MODULE_VERSION) ||
	    nla_put_u32(msg, DTRACK_A_UAPI_VERSION, DTRACK_GENL_VERSION))
		goto err_cancel_msg;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_cancel_msg:
	genlmsg_cancel(msg, hdr);
err_free_msg:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static const struct nla_policy dtrack_version_policy[DTRACK_A_MAX + 1] = {
};

static const struct genl_ops dtrack_genl_ops[] = {
	{
		.cmd = DTRACK_CMD_GET_VERSION,
		.doit = dtrack_nl_get_version,
		.policy = dtrack_version_policy,
		.maxattr = DTRACK_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
};

static const struct genl_multicast_group dtrack_mcgrps[] = {
	{ .name = DTRACK_MCGRP_EVENTS, },
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
};

int __init dtrack_netlink_init(void)
{
	return genl_register_family(&dtrack_genl_family);
}

void dtrack_netlink_exit(void)
{
	genl_unregister_family(&dtrack_genl_family);
}
