#!/bin/bash
# Run the kernel's checkpatch.pl (from linux-source-6.12 in the cache) over
# the module and the user-space C sources: a second reader for style.
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$DTRACK_ROOT/scripts/fetch-kernels.sh" ksft
dir="$DTRACK_CACHE/checkpatch"
if [ ! -x "$dir/scripts/checkpatch.pl" ]; then
	mkdir -p "$dir"
	tar -xf "$(ls "$DTRACK_CACHE"/linux-source-6.12.tar.* | head -1)" -C "$dir" \
		--strip-components=1 --wildcards '*/scripts/checkpatch.pl' \
		'*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
fi
cd "$DTRACK_ROOT"
files=$(git ls-files 'kmod/*.[ch]' 'tools/*.[ch]' 'daemon/*.[ch]' 'include/*.h' 'include/uapi/linux/*.h')
# shellcheck disable=SC2086
"$dir/scripts/checkpatch.pl" --no-tree --terse --show-types --max-line-length=100 \
	--ignore SPDX_LICENSE_TAG,FILE_PATH_CHANGES,NEW_TYPEDEFS,PREFER_KERNEL_TYPES \
	-f $files
