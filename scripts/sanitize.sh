#!/usr/bin/env bash
# Builds the CPU op library with AddressSanitizer + UndefinedBehaviorSanitizer
# in a copy of the tree and runs the test suite against it (the C++ example,
# torch.compile and ONNX tests are left out: they start compilers and other
# programs, which the preloaded sanitizer runtime would instrument too).
#   bash scripts/sanitize.sh [BUILD_DIR]      (uses .venv unless PYTHON is set)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, the venv's own
BUILD=${1:-build/sanitize}
rm -rf "$BUILD" && mkdir -p "$BUILD"
cp -r setup.py pyproject.toml csrc torchops tests examples "$BUILD"/
rm -f "$BUILD"/torchops/_C*.so
(cd "$BUILD" && TORCHOPS_CUDA=0 TORCHOPS_SANITIZE=address,undefined "$PYTHON" setup.py -q build_ext --inplace)
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd "$BUILD"
PYTHONPATH=. "$PYTHON" -c "import torchops; print('testing', torchops.library_path())"
PYTHONPATH=. "$PYTHON" -m pytest -q -p no:cacheprovider tests \
  --ignore=tests/test_deploy.py --ignore=tests/test_onnx.py -W ignore::DeprecationWarning
