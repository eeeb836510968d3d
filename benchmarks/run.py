"""The benchmark comparison: python -m benchmarks.run [--device cpu|cuda] [--ops ...]

Prints a table per op and writes benchmarks/results/<op>-<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

import torchops
from benchmarks import harness

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ops", nargs="+", default=["ratio_iou", "lstm_cell", "compiled_models"])
    parser.add_argument("--quick", action="store_true", help="small sizes and short budgets (a smoke test)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timing per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's, on torch >= 2.10
    native = torchops.available_backends()["native"]
    print(f"native backend: {native.available} ({native.reason})")
    if not native.available:
        print("the native backend is required for the comparison", file=sys.stderr)
        return 1
    budget = args.budget or (0.05 if args.quick else 0.5 if args.device == "cpu" else 0.3)
    copy_gbs = harness.copy_bandwidth_gbs(args.device)
    print(f"{args.device}: copy bandwidth {copy_gbs:.1f} GB/s")
    floor = harness.autograd_floor_us(args.device)
    floor_note = (f"Autograd floor: forward+backward of x * 2 on 1000 elements takes {floor:.1f} us here "
                  "(engine and launch overhead that every implementation's training call pays).")
    print(floor_note)
    for op in args.ops:
        module = __import__(f"benchmarks.{op}", fromlist=["bench"])
        report = harness.Report(op, harness.environment(args.device), copy_gbs, notes=[floor_note])
        sizes = module.CUDA_SIZES if args.device == "cuda" else module.CPU_SIZES
        if args.quick:
            sizes = sizes[:2]
        module.bench(report, args.device, sizes, budget)
        module.check_bars(report, args.device)
        print(report.to_markdown())
        if not args.no_save and not args.quick:
            paths = report.save(args.out, harness.result_tag(args.device))
            print("wrote", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
