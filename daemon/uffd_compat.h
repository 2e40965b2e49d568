/* SPDX-License-Identifier: GPL-2.0 */
/*
 * userfaultfd feature bits newer than Debian bookworm's 6.1 UAPI headers
 * (values from include/uapi/linux/userfaultfd.h of Linux 6.12).  pagerd
 * only probes them; the kernel it runs on says which it has.
 */
#ifndef PAGER_UFFD_COMPAT_H
#define PAGER_UFFD_COMPAT_H

#include <linux/userfaultfd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY		1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM	(1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE		(1 << 16)
#endif

#endif /* PAGER_UFFD_COMPAT_H */
