/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Forced into every test program (-include, see mk/common.mk) ahead of the
 * kselftest harness: scales the harness's per-test timeouts by
 * $TEST_TIMEOUT_SCALE.  The same binaries run natively, in the VM under
 * software emulation and on the debug kernel (KASAN, lockdep), whose speeds
 * differ by more than an order of magnitude; the harness itself has no knob.
 */
#ifndef _DTRACK_KSFT_TIMEOUT_H
#define _DTRACK_KSFT_TIMEOUT_H

#include <stdlib.h>
#include <unistd.h>

static inline unsigned int ksft_scaled_alarm(unsigned int seconds)
{
	const char *s = getenv("TEST_TIMEOUT_SCALE");
	unsigned long scale = s ? strtoul(s, NULL, 10) : 1;

	if (seconds && scale > 1 && scale < 100)
		seconds *= scale;
	return alarm(seconds);
}

/* Only the harness's alarm() calls come after this point. */
#define alarm(seconds) ksft_scaled_alarm(seconds)

#endif /* _DTRACK_KSFT_TIMEOUT_H */
