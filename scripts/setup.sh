#!/usr/bin/env bash
# Sets up a virtual environment in .venv with torch, the test tools and
# torchops built in place (CPU kernels; CUDA kernels too where torch has CUDA
# and nvcc is found). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch 2.13.0 is the pinned CPU wheel on our CI machines; use TORCH_SPEC to choose another.
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}" numpy ninja cmake pytest hypothesis onnx onnxscript onnxruntime matplotlib
# torchvision's box functions are the peers of torchops.ops (tests, benchmarks); 0.28 pairs with
# torch 2.13. Its C extension needs CUDA torch, so only its pure-Python box code is used here.
.venv/bin/python -m pip install -q --no-deps "${TORCHVISION_SPEC:-torchvision==0.28.0}"
# Build the op library only when what it is built from changed (csrc/, setup.py, torchops/_build.py,
# torch, the CUDA switch and nvcc) or it does not load: a hash of those is kept in .venv.
stamp=$({ find csrc -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum setup.py torchops/_build.py
          .venv/bin/python -c 'import torch; print(torch.__version__, torch.version.cuda)'
          echo "TORCHOPS_CUDA=${TORCHOPS_CUDA:-} nvcc=$(command -v nvcc || true)"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/torchops-build.stamp 2>/dev/null)" = "$stamp" ] && .venv/bin/python -c \
    'import sys; from torchops import _library; sys.exit(not _library.ensure_loaded(build=False))' 2>/dev/null; then
  echo "torchops: the op library is up to date (nothing it is built from changed); not rebuilt"
else
  .venv/bin/python -m pip install -q --no-build-isolation --no-deps -e .
  echo "$stamp" > .venv/torchops-build.stamp
fi
# qemu-user runs the test that loads torchops on a CPU without AVX (tests/test_cpu_capability.py).
# Best effort: where it cannot be installed, that test is skipped and says why.
if ! command -v qemu-x86_64 >/dev/null 2>&1 && [ "$(uname -m)" = x86_64 ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq qemu-user) \
    >/dev/null 2>&1 || echo "setup: could not install qemu-user; the test on a CPU without AVX will be skipped"
fi
