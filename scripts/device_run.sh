#!/usr/bin/env bash
# What runs on the GPU machine (through the device tool; logs go to $OUT).
#   bash scripts/device_run.sh build|core|deploy|sanitizers|plug|bench-quick|bench ...
# build: the op library with CUDA kernels; core: the test suite but the
# deployment routes; deploy: those (C++ example, compile, export, AOTI, ONNX);
# sanitizers: compute-sanitizer memcheck/racecheck/initcheck over the CUDA
# kernel tests; plug: the triton backend (conformance on CUDA, compile
# fullgraph, export, opcheck) and the plug-in tests (after build, so that
# check_implementation also sees native on CUDA; issue 13's triton/native bars
# are judged by bench, which measures triton wherever it is available); bench-quick: every GPU path of
# the benchmark (CUDA graphs, peers, box suites) at one size each, 3 repeats,
# ~2 min; bench: the benchmark, recorded to benchmarks/results/<device-tag>/.
# Both take BENCH_OPS (suites or groups, see python -m benchmarks.run --help; a
# full GPU run is split over calls of under 10 min) and BENCH_GIT_COMMIT (the
# tree travels without .git). $OUT gets the log, summary.md and a .tar.gz of
# the result folder (at most 8 files come back).
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
          --target-processes all --print-limit 20 $PYTEST tests/test_conformance.py tests/test_ratio_iou.py tests/test_lstm_cell.py tests/test_boxes.py -k "cuda and not compile and not export and not torchscript" > "$OUT/sanitizer-$tool.log" 2>&1 &
      done
      wait
      grep -H -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT"/sanitizer-*.log ;;
    plug)
      $PYTEST tests/test_triton.py tests/test_plugins.py --durations=10 2>&1 | tee "$OUT/tests-plug.log" | tail -25 || status=1 ;;
    bench-quick|bench)
      if [ "$step" = bench-quick ]; then
        flags="--quick --out /tmp/bench-quick"; dir=/tmp/bench-quick
        ops=${BENCH_OPS:-ratio_iou,lstm,complete_box_iou_loss,box_iou,host_overhead}
      else
        flags="--record"; dir=benchmarks/results/$($PY -c 'from benchmarks.harness import device_tag; print(device_tag("cuda"))')
        ops=${BENCH_OPS:-all}
      fi
      # progress, failures and the bars in the reply; everything in the log
      BENCH_OPS=$ops $PY -m benchmarks.run $flags 2>&1 | tee "$OUT/$step.log" \
        | grep -E "^\[|^  \[|^  \(|^total|^cuda:|failed|Error" ; [ "${PIPESTATUS[0]}" = 0 ] || status=1
      cp "$dir/summary.md" "$OUT/$step-summary.md" 2>/dev/null
      [ -d "$dir" ] && tar -czf "$OUT/$step-results.tar.gz" -C "$(dirname "$dir")" "$(basename "$dir")" ;;
  esac
done
exit $status
