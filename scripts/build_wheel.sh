#!/usr/bin/env bash
# Builds a wheel of torchops for the torch installed in .venv (or $PYTHON) into
# dist/ (or $OUT): CPU kernels for every x86-64 CPU, and the CUDA kernels where
# that torch has CUDA and nvcc is found (TORCHOPS_CUDA=0 leaves them out), for
# sm_80, sm_86, sm_89 and sm_90, plus PTX that newer GPUs compile at load time.
# The wheel requires exactly this torch version: the library is bound to its C++ ABI.
#   bash scripts/build_wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-dist}
if "$PYTHON" -c "import sys, torch; sys.exit(torch.version.cuda is None)"; then
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;8.6;8.9;9.0+PTX}"
  echo "build_wheel: CUDA torch; TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
fi
# No build isolation: the wheel is built against this torch, not one pip would fetch.
"$PYTHON" -m pip wheel -q --no-build-isolation --no-deps -w "$OUT" .
ls -l "$OUT"/torchops-*.whl
