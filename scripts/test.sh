#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the test suite: whole at this
# machine's best CPU capability, then the kernel tests again at
# ATEN_CPU_CAPABILITY=default (the copy of the CPU kernels that CPUs without
# AVX2 run), then the wheel check (scripts/wheel_check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Inductor's cache is not keyed on ATEN_CPU_CAPABILITY: one per capability.
CACHE=$(mktemp -d)
trap 'rm -rf "$CACHE"' EXIT
TORCHINDUCTOR_CACHE_DIR="$CACHE/best" .venv/bin/python -m pytest -q -rs tests
# The default-capability pass: the test files that exercise the kernels, with
# fewer hypothesis examples each (20 instead of 60) to keep CI short; of the
# conformance suite, what compares the kernels with eager (its opcheck,
# compile, export and TorchScript routes do not depend on the capability).
ATEN_CPU_CAPABILITY=default TORCHOPS_HYPOTHESIS_EXAMPLES=20 TORCHINDUCTOR_CACHE_DIR="$CACHE/default" \
  .venv/bin/python -m pytest -q -rs tests/test_boxes.py tests/test_lstm_cell.py tests/test_ratio_iou.py
ATEN_CPU_CAPABILITY=default TORCHOPS_HYPOTHESIS_EXAMPLES=20 TORCHINDUCTOR_CACHE_DIR="$CACHE/default" \
  .venv/bin/python -m pytest -q -rs tests/test_conformance.py \
  -k "not opcheck and not compile_fullgraph and not export and not torchscript"
bash scripts/wheel_check.sh
