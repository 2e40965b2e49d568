# Shared settings for the project's scripts; sourced, never run.
# The cache lives outside the clone so that nothing downloaded is ever committed
# and a second clone reuses the same kernels.
DTRACK_CACHE=${DTRACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dtrack}
DTRACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
log() { echo "$(basename "$0"): $*" >&2; }

# kernel_dir 6.12|6.1|debug -> cache directory of that kernel
kernel_dir() { echo "$DTRACK_CACHE/kernels/$1"; }
