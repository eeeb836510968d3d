#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh: the op library is rebuilt only when
# its sources or torch changed) and runs the benchmark comparison on the GPU
# if there is one, else on the CPU. Fresh results go to
# benchmarks/results/latest/<device-tag>/ (not tracked); --record writes them
# to benchmarks/results/<device-tag>/ instead. Arguments pass on to
# python -m benchmarks.run (--ops / BENCH_OPS, --quick, --dry-run, --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m benchmarks.run "$@"
