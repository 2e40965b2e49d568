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

	ret = dtrack_symbols_init();
	if (ret)
		return ret;
	ret = dtrack_registry_init();
	if (ret)
		return ret;
	ret = dtrack_wpfault_init();
	if (ret)
		goto err_registry;
	ret = dtrack_netlink_init();
	if (ret)
		goto err_wpfault;
	pr_info("version %s loaded, methods 0x%x\n", DTRACK_MODULE_VERSION,
		dtrack_methods_available());
	return 0;

err_wpfault:
	dtrack_wpfault_exit();
err_registry:
	dtrack_registry_exit();
	return ret;
}

/*
 * No new request once the family is gone; no fault is recorded once the
 * probe is gone; then the remaining trackers are torn down.
 */
static void __exit dtrack_exit(void)
{
	dtrack_netlink_exit();
	dtrack_wpfault_exit();
	dtrack_registry_exit();
	pr_info("unloaded\n");
}

module_init(dtrack_init);
module_exit(dtrack_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Per-mapping dirty page tracking over generic netlink");
MODULE_VERSION(DTRACK_MODULE_VERSION);
MODULE_ALIAS_GENL_FAMILY(DTRACK_GENL_NAME);
