#!/usr/bin/env bash
# The GPU check (see benchmarks/gpu/gpu_check.py): on the lent GPU machine, with the ignored
# folder benchmarks/gpu/carry/ carried (made here by `python benchmarks/gpu/prepare.py`):
#   benchmarks/gpu_check.sh                 # all parts, results in $OUT/gpu_check.json
#   benchmarks/gpu_check.sh --only a        # one part
# Here, on CPU, before spending device time:
#   benchmarks/gpu_check.sh --dry-run       # wheel list, carried size < 64 MiB, the commands
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu/gpu_check.py "$@"
