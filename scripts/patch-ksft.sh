#!/bin/bash
# Mend the fetched kselftest harness (linux-source-6.12) where it fails us.
# usage: scripts/patch-ksft.sh PATH/kselftest_harness.h   (idempotent)
#
# A fixture test's wrapper keeps fork()'s result in a plain local, child,
# and an ASSERT longjmp()s back to the setjmp() taken before the fork: the
# local may come back with its value from before (1, kept in a register
# at -O2).  The failing test process then takes itself for the parent,
# skips FIXTURE_TEARDOWN and abort()s.  Ours stop pagerd and remove the
# test's directory, so every failed assertion of a pager test left its
# directory and socket file, and the guardians of its clients waiting for
# a pagerd on that socket for ever.  volatile keeps the fork's result.
set -euo pipefail
h=${1:?usage: patch-ksft.sh kselftest_harness.h}
fixed='volatile pid_t child = 1;'
grep -q "$fixed" "$h" && exit 0
sed -i 's/^\(\t*\)pid_t child = 1; \\$/\1volatile pid_t child = 1; \\/' "$h"
grep -q "$fixed" "$h" ||
	echo "patch-ksft: 'pid_t child = 1;' not found in $h: a failed ASSERT may skip its teardown" >&2
