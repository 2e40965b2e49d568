/* SPDX-License-Identifier: GPL-2.0 */
/*
 * UAPI pieces newer than bookworm's linux-libc-dev (6.1 headers) but present
 * in the kernels we benchmark on (6.12 in the VM, 6.18 on the host): the
 * same definitions pagerd uses, kept in one place (daemon/uffd_compat.h).
 * A kernel without them rejects the call and the benchmark reports n/a.
 */
#ifndef BENCH_COMPAT_H
#define BENCH_COMPAT_H

#include <linux/fs.h>
#include <linux/types.h>
#include <sys/ioctl.h>
#include "../daemon/uffd_compat.h"

#endif
