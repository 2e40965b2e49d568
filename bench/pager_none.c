// SPDX-License-Identifier: GPL-2.0
/* bench-pager without libpager (daemon/ not built): pagerd figures are n/a. */
#include <errno.h>
#include <stdio.h>

#include "pbench.h"

int pg_run(struct env *e, struct res *r, enum pg_test t, int threads)
{
	(void)e; (void)t; (void)threads;
	snprintf(r->note, sizeof(r->note), "n/a: libpager not built (make -C daemon)");
	return -ENOSYS;
}
