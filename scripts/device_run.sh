#!/usr/bin/env bash
# What runs on the GPU machine (through the device tool; logs go to $OUT).
#   bash scripts/device_run.sh build|core|deploy|sanitizers|bench|plug|plug-bench ...
# build: the op library with CUDA kernels; core: the test suite but the
# deployment routes; deploy: those (C++ example, compile, export, AOTI, ONNX);
# sanitizers: compute-sanitizer memcheck/racecheck/initcheck over the CUDA
# kernel tests; bench: the benchmark comparison; plug: the triton backend
# (conformance on CUDA, compile fullgraph, export, opcheck) and the plug-in
# tests (after build, so that check_implementation also sees native on CUDA);
# plug-bench: triton against native, device time (issue 13's 1.10x bar).
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-/tmp/out}
PY=python3
PYTEST="$PY -m pytest -q -rs -p no:cacheprovider -W ignore::DeprecationWarning"
status=0
for step in "$@"; do
  case $step in
    build)
      $PY -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; } ;;
    core)
      $PYTEST tests --ignore=tests/test_deploy.py --ignore=tests/test_onnx.py --durations=10 2>&1 \
        | tee "$OUT/tests-core.log" | tail -25 || status=1 ;;
    deploy)
      $PYTEST tests/test_deploy.py tests/test_onnx.py --durations=10 2>&1 | tee "$OUT/tests-deploy.log" | tail -25 || status=1 ;;
    sanitizers)
      for tool in memcheck racecheck initcheck; do
        PYTORCH_NO_CUDA_MEMORY_CACHING=1 TORCHOPS_HYPOTHESIS_EXAMPLES=5 compute-sanitizer --tool $tool \
          --target-processes all --print-limit 20 $PYTEST tests/test_ratio_iou.py tests/test_lstm_cell.py tests/test_boxes.py -k "cuda and not compile" > "$OUT/sanitizer-$tool.log" 2>&1 &
      done
      wait
      grep -H -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT"/sanitizer-*.log ;;
    plug)
      $PYTEST tests/test_triton.py tests/test_plugins.py --durations=10 2>&1 | tee "$OUT/tests-plug.log" | tail -25 || status=1 ;;
    plug-bench)
      $PY scripts/triton_vs_native.py 2>&1 | tee "$OUT/triton-vs-native.log" | tail -30 ;;
    bench)
      $PY -m benchmarks.run 2>&1 | tee "$OUT/bench.log" | grep -E "^\| .*(\*\*no\*\*|yes)|wrote|copy bandwidth" ;
      cp benchmarks/results/*cuda* "$OUT"/ 2>/dev/null ;;
  esac
done
exit $status
