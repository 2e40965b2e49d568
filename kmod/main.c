// SPDX-License-Identifier: GPL-2.0
/*
 * dtrack: per-mapping dirty tracking of any process's address range by
 * soft-dirty scanning, write-protect fault capture or hardware dirty bits.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <net/genetlink.h>
#include "dtrack.h"

static int __init dtrack_init(void)
{
	int ret;

	ret = dtrack_netlink_init();
	if (ret)
		return ret;
	pr_info("version %s loaded\n", DTRACK_MODULE_VERSION);
	return 0;
}

static void __exit dtrack_exit(void)
{
	dtrack_netlink_exit();
	pr_info("unloaded\n");
}

module_init(dtrack_init);
module_exit(dtrack_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Per-mapping dirty page tracking over generic netlink");
MODULE_VERSION(DTRACK_MODULE_VERSION);
MODULE_ALIAS_GENL_FAMILY(DTRACK_GENL_NAME);
