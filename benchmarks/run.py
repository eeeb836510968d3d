"""The benchmark comparison.

    python -m benchmarks.run [--device cpu|cuda] [--ops NAME ...] [--record] [--quick | --dry-run]

Writes <suite>.json/.md/.png and summary.md to benchmarks/results/latest/<device-tag>/
(git-ignored), or with --record to benchmarks/results/<device-tag>/. --ops (or
the BENCH_OPS environment variable, comma- or space-separated) picks suites
(listed by --help). CPU runs keep freed memory in the process (see
harness.keep_freed_memory); BENCH_MALLOC=default leaves glibc's malloc as it is.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

# torch.profiler (peak memory on the CPU) would print Kineto's start/stop lines
os.environ.setdefault("KINETO_LOG_LEVEL", "5")
# Inductor's cache is not keyed on ATEN_CPU_CAPABILITY: a run at `default` after one at the best
# capability reused its vector code and failed to compile it ("'at::vec' has not been declared"). The
# benchmark keeps its own cache per capability, set before torch is imported (set after, it went unused).
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"torchinductor_bench_{getpass.getuser()}_{os.environ.get('ATEN_CPU_CAPABILITY', 'best')}"))

import torch  # noqa: E402

from benchmarks import bars as bars_mod
from benchmarks import boxes, compiled_models, harness, host_overhead, lstm_cell, ratio_iou, report

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Suite:
    name: str  # the op its rows carry, and its result files' name
    cases: Callable[[harness.Settings], list[harness.Case]]
    x_label: str
    default: bool = True
    notes: Callable[[list[harness.Row]], list[str]] | None = None


SUITES = {s.name: s for s in (
    Suite("ratio_iou", ratio_iou.cases, ratio_iou.X_LABEL),
    Suite("lstm_cell", lstm_cell.cases, lstm_cell.X_LABEL),
    Suite("nn.LSTMCell", lstm_cell.module_cases, lstm_cell.X_LABEL),
    *(Suite(loss, functools.partial(boxes.loss_cases, loss), boxes.LOSS_X_LABEL) for loss in boxes.LOSSES),
    Suite("box_iou", boxes.pairwise_cases, boxes.PAIRWISE_X_LABEL, notes=boxes.pairwise_notes),
    Suite("host_overhead", host_overhead.cases, "-"),
    Suite("compiled_models", compiled_models.cases, compiled_models.X_LABEL, default=False,
          notes=compiled_models.notes),
)}
ALIASES = {
    "all": [n for n, s in SUITES.items() if s.default],
    "lstm": ["lstm_cell", "nn.LSTMCell"],
    "boxes": [*boxes.LOSSES, "box_iou"],
    "losses": list(boxes.LOSSES),
}


def pick_suites(names: list[str]) -> list[str]:
    picked: list[str] = []
    for name in names:
        for n in ALIASES.get(name, [name]):
            if n not in SUITES:
                raise SystemExit(f"unknown suite {n!r}: choose from {', '.join([*SUITES, *ALIASES])}")
            if n not in picked:
                picked.append(n)
    return picked


def parse(argv):
    groups = "; ".join(f"{k} = {' '.join(v)}" for k, v in ALIASES.items())
    listing = "suites: " + ", ".join(SUITES) + "\ngroups: " + groups
    parser = argparse.ArgumentParser(description=__doc__ + "\n" + listing,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ops", nargs="+", help="suites or groups (default: BENCH_OPS, else all)")
    parser.add_argument("--record", action="store_true", help="write to benchmarks/results/<device-tag>/")
    parser.add_argument("--out", type=Path, help="write here instead")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and shorter samples: checks the paths")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, 1 repeat (tests)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 5; 3 with --quick)")
    parser.add_argument("--sample-s", type=float, help="seconds per sample of one figure")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile's backend (tests: aot_eager)")
    args = parser.parse_args(argv)
    names = args.ops or os.environ.get("BENCH_OPS", "").replace(",", " ").split() or ["all"]
    args.suites = pick_suites(names)
    return args


def settings_from(args) -> harness.Settings:
    if args.dry_run:
        repeats, sample_s = 1, 0.001
    elif args.quick:
        repeats, sample_s = 3, 0.02
    else:
        repeats, sample_s = 5, 0.1 if args.device == "cpu" else 0.04
    return harness.Settings(device=args.device, repeats=args.repeats or repeats, sample_s=args.sample_s or sample_s,
                            quick=args.quick, dry_run=args.dry_run, compile_backend=args.compile_backend)


def output_dir(args) -> Path:
    if args.out:
        return args.out
    tag = harness.device_tag(args.device)
    return RESULTS / tag if args.record else RESULTS / "latest" / tag


def main(argv=None) -> int:
    args = parse(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's, on torch >= 2.10
    # torch.compile's tracing of the backward of torchvision's masked index_put prints an anomaly-mode
    # "Error detected in IndexPutBackward0" warning and recovers (torch 2.13); results are checked anyway
    warnings.filterwarnings("ignore", message="Error detected in IndexPutBackward0", category=UserWarning)
    settings = settings_from(args)
    if args.device == "cpu" and os.environ.get("BENCH_MALLOC", "kept") != "default":
        harness.keep_freed_memory()  # wall times without the allocator's page-fault lottery (see there)
    out_dir = output_dir(args)
    started = time.perf_counter()
    env = harness.environment(args.device)
    print("environment: " + json.dumps(env), flush=True)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if args.device == "cpu" and load > 0.5 * cores:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes are using the CPU, so CPU "
              "timings are noisy (look for 'within spread'); record on a quiet machine", flush=True)
    bandwidth = harness.measure_bandwidth(args.device, args.dry_run)
    floor = harness.autograd_floor(args.device, settings.repeats, settings.sample_s)
    print(f"{args.device}: copy {bandwidth['copy']:.1f} GB/s, write {bandwidth['write']:.1f} GB/s; autograd floor "
          f"{report.cell(floor)} us", flush=True)

    plans = [(SUITES[name], SUITES[name].cases(settings)) for name in args.suites]
    progress = harness.Progress(sum(len(cases) for _, cases in plans))
    verdicts_all = []
    written = []
    for suite, cases in plans:
        suite_start = time.perf_counter()
        rows: list[harness.Row] = []
        for case in cases:
            progress.step(f"{case.op} {case.mode} {case.size}")
            torch._dynamo.reset()  # each case compiles its own peers for its shapes
            try:
                case_rows = harness.run_case(case, settings, bandwidth, log=print)
            except Exception as e:  # noqa: BLE001  (one broken case must not cost the run)
                case_rows = [harness.Row(case.op, case.size, case.x, case.mode, "(all)",
                                         not_measured=f"the case failed: {type(e).__name__}: {e}"[:300])]
            progress.finish()
            for r in case_rows:
                print("    " + row_line(r), flush=True)
            rows += case_rows
            if args.device == "cuda":
                torch.cuda.empty_cache()
        verdicts = [v for bar in bars_mod.bars_for(args.device, [suite.name])
                    for v in bars_mod.judge(bar, rows, floor, torch.get_num_threads())]
        verdicts_all += verdicts
        result = {
            "suite": suite.name, "x_label": suite.x_label, "env": env, "settings": asdict(settings),
            "bandwidth_gbs": bandwidth, "autograd_floor_us": floor.to_dict(),
            "rows": [r.to_dict() for r in rows], "bars": [v.to_dict() for v in verdicts],
            "notes": suite.notes(rows) if suite.notes else [],
            "elapsed_s": round(time.perf_counter() - suite_start, 1),
            "load_average_end": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        }
        written += report.write_suite(result, out_dir)
    written.append(report.write_summary(out_dir))
    print(f"\nBars ({args.device}, judged on the median; 'within spread': the verdict flips within min-max):")
    absent = [v for v in verdicts_all if v.text.endswith("not in this run)")]
    for v in verdicts_all:
        if v not in absent:
            print(f"  [{v.text}] issue {v.bar.issue}: {v.claim}: {bars_mod.format_value(v)}"
                  + (f" ({v.note})" if v.note else ""))
    if absent:
        print(f"  ({len(absent)} more bars are set at sizes this run did not measure; see summary.md)")
    print(f"\ntotal {harness.Progress._clock(time.perf_counter() - started)}; wrote {len(written)} files to {out_dir}")
    return 0


def row_line(r: harness.Row) -> str:
    head = f"{r.impl:24s}"
    if r.not_measured:
        return f"{head} not measured: {r.not_measured}"
    parts = [f"{name} {report.cell(stats)}" for name, stats in r.figures.items()]
    pct = r.pct_of_bandwidth()
    if pct is not None:
        parts.append(f"{pct:.0f}% of {r.bandwidth} bw")
    if r.peak_bytes is not None:
        parts.append(f"peak {r.peak_bytes / 2**20:.1f} MB")
    if r.correct not in ("", "ok", "reference"):
        parts.append(r.correct)
    if r.device_note:
        parts.append(r.device_note)
    return head + " " + ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
