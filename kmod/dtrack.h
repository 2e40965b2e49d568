/* SPDX-License-Identifier: GPL-2.0 */
/* Internal interfaces between the dtrack module's files. */
#ifndef _DTRACK_H
#define _DTRACK_H

#include <uapi/linux/dtrack.h>

#define DTRACK_MODULE_VERSION "0.1.0"

int dtrack_netlink_init(void);
void dtrack_netlink_exit(void);

#endif /* _DTRACK_H */
