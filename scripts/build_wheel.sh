#!/usr/bin/env bash
# Builds a wheel of torchops for the torch installed in .venv (or $PYTHON) into
# dist/ (or $OUT): CPU kernels for every x86-64 CPU, and the CUDA kernels where
# that torch has CUDA and nvcc is found (TORCHOPS_CUDA=0 leaves them out), for
# sm_80, sm_86, sm_89 and sm_90, plus PTX that newer GPUs compile at load time
# (torchops/_build.py: WHEEL_CUDA_ARCHS, unless TORCH_CUDA_ARCH_LIST is set).
# The wheel requires exactly this torch version: the library is bound to its C++ ABI.
#   bash scripts/build_wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-dist}
# No build isolation: the wheel is built against this torch, not one pip would fetch.
"$PYTHON" -m pip wheel -q --no-build-isolation --no-deps -w "$OUT" .
ls -l "$OUT"/torchops-*.whl
