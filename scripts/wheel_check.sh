#!/usr/bin/env bash
# CI: builds the CPU wheel (scripts/build_wheel.sh), checks what it holds, installs
# it into a fresh virtual environment beside the same torch (pinned: the local
# wheel, nothing newer), and runs scripts/wheel_smoke.py there from outside the
# source tree with no compiler on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, the venv's own
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

TORCHOPS_CUDA=0 OUT="$WORK/dist" PYTHON="$PYTHON" bash scripts/build_wheel.sh
WHEEL=$(ls "$WORK"/dist/torchops-*.whl)
TORCH_VERSION=$("$PYTHON" -c "import torch; print(torch.__version__.split('+')[0])")

# What the wheel holds: the sources, a stripped library without this machine's paths,
# and a requirement of exactly this torch.
mkdir "$WORK/unpacked" && (cd "$WORK/unpacked" && "$PYTHON" -m zipfile -e "$WHEEL" .)
LIB=$(ls "$WORK"/unpacked/torchops/_C*.so)
test -f "$WORK/unpacked/torchops/_csrc/super_iou/cpu/ratio_iou_kernel.cpp" || { echo "wheel_check: no sources in the wheel"; exit 1; }
test -f "$WORK/unpacked/torchops/_C.build.json" || { echo "wheel_check: no build info in the wheel"; exit 1; }
grep -qx "Requires-Dist: torch==$TORCH_VERSION" "$WORK"/unpacked/torchops-*.dist-info/METADATA \
  || { echo "wheel_check: the wheel does not pin torch==$TORCH_VERSION"; exit 1; }
if readelf -S "$LIB" | grep -q -E "\.debug_|\.symtab"; then echo "wheel_check: the library is not stripped"; exit 1; fi
RUNPATH=$(readelf -d "$LIB" | grep -E "RUNPATH|RPATH" || true)
if [ "$RUNPATH" != "" ] && ! echo "$RUNPATH" | grep -q '\[\$ORIGIN/../torch/lib\]$'; then
  echo "wheel_check: the library's search path is not just \$ORIGIN/../torch/lib: $RUNPATH"; exit 1
fi
if grep -q -a -F "$ROOT" "$LIB"; then echo "wheel_check: the library names $ROOT"; exit 1; fi
echo "wheel_check: $(basename "$WHEEL"), $(du -k "$WHEEL" | cut -f1) KB; library $(du -k "$LIB" | cut -f1) KB, stripped, $RUNPATH"

BASE_PYTHON=$("$PYTHON" -c "import sys; print(sys._base_executable)")
"$BASE_PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "torch==$TORCH_VERSION"
"$WORK/venv/bin/python" -m pip install -q "$WHEEL"
cp scripts/wheel_smoke.py "$WORK/"
# PATH: the venv only, so no compiler: the wheel's library must load as it is.
cd "$WORK" && env -i HOME="$WORK" PATH="$WORK/venv/bin" "$WORK/venv/bin/python" wheel_smoke.py
