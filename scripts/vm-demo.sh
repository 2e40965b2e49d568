#!/bin/sh
# The live demo, run inside the test VM by 'make run' (scripts/demo.sh).
set -e
echo "=== dtrack: module loaded in $(uname -r)"
dtrack version
