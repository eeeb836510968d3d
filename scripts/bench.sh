#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the benchmark comparison on
# the GPU if there is one, else on the CPU; writes benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m benchmarks.run "$@"
