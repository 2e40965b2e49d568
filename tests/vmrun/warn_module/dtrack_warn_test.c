// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module, never installed: loading it logs one kernel WARNING so
 * that the test VM runner's detection of kernel reports can be tested.
 */
#include <linux/module.h>
#include <linux/bug.h>

static int __init dtrack_warn_test_init(void)
{
	WARN(1, "dtrack_warn_test: deliberate warning for the VM runner test\n");
	return 0;
}

static void __exit dtrack_warn_test_exit(void)
{
}

module_init(dtrack_warn_test_init);
module_exit(dtrack_warn_test_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Deliberate WARNING on load, for testing scripts/vm-run.sh");
