"""Timing harness shared by the op benchmarks.

Median time per call (CUDA events around each call on the GPU, perf_counter
on the CPU), after warm-up (which includes torch.compile's and TorchScript's
compilation). Inputs rotate among several copies so that small sizes are not
timed out of the cache. GB/s counts the fewest bytes the op must move (each
input read once, each output written once), compared with the measured
device-to-device copy bandwidth (bytes read + written).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

CACHE_BYTES = 64 << 20  # larger than the L2 of an H100/H200 and this CPU's L3


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(fn: Callable[[int], object], device: str, budget_s: float, max_reps: int, min_reps: int = 5) -> float:
    """Median microseconds of fn(i) over repetitions i = 0, 1, ..."""
    times = []
    start_all = time.perf_counter()
    i = 0
    while i < max_reps and (i < min_reps or time.perf_counter() - start_all < budget_s):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(i)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1e3)
        else:
            t0 = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t0) * 1e6)
        i += 1
    return statistics.median(times)


def copy_bandwidth_gbs(device: str) -> float:
    """Device-to-device copy bandwidth, counting bytes read plus written."""
    n = (1 << 28) if device == "cuda" else (1 << 25)  # 1 GiB / 128 MiB of float32
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    us = time_calls(lambda i: dst.copy_(src), device, budget_s=1.0, max_reps=50)
    return 2 * src.numel() * src.element_size() / (us * 1e-6) / 1e9


def environment(device: str) -> dict:
    env = {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    return env


@dataclass
class Row:
    size: str
    impl: str
    mode: str  # "forward" or "forward+backward"
    us: float
    gbs: float
    pct_copy: float
    correct: str


@dataclass
class Report:
    op: str
    env: dict
    copy_gbs: float
    rows: list[Row] = field(default_factory=list)
    bars: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def time_of(self, size: str, impl: str, mode: str) -> float | None:
        for r in self.rows:
            if r.size == size and r.impl == impl and r.mode == mode:
                return r.us
        return None

    def bar(self, claim: str, ratio: float | None, limit: float, higher_is_better: bool = False) -> None:
        """Record whether `ratio` meets `limit` (ratio <= limit, or >= when higher is better)."""
        if ratio is None:
            self.bars.append({"claim": claim, "measured": None, "limit": limit, "pass": None})
            return
        ok = ratio >= limit if higher_is_better else ratio <= limit
        self.bars.append({"claim": claim, "measured": round(ratio, 3), "limit": limit, "pass": ok})

    def to_markdown(self) -> str:
        e = self.env
        where = e.get("gpu", e["cpu"]) + (f", CUDA {e['cuda']}" if "cuda" in e else f", {e['threads']} threads")
        lines = [
            f"# {self.op} on {e['device']} ({where})",
            "",
            f"torch {e['torch']}, Python {e['python']}, {e['date']}. Measured copy bandwidth "
            f"{self.copy_gbs:.0f} GB/s (read + write). Median microseconds per call.",
            "",
            "| size | mode | impl | us | GB/s | % of copy bw | correct |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for r in self.rows:
            bandwidth = "-" if r.gbs != r.gbs else f"{r.gbs:.1f} | {r.pct_copy:.0f}%"
            if bandwidth == "-":
                bandwidth = "- | -"
            lines.append(f"| {r.size} | {r.mode} | {r.impl} | {r.us:.1f} | {bandwidth} | {r.correct} |")
        if self.bars:
            lines += ["", "| bar | measured | limit | pass |", "|---|---:|---:|---|"]
            for b in self.bars:
                m = "n/a" if b["measured"] is None else f"{b['measured']:.3f}"
                p = "n/a" if b["pass"] is None else ("yes" if b["pass"] else "**no**")
                lines.append(f"| {b['claim']} | {m} | {b['limit']} | {p} |")
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def save(self, directory: Path, tag: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"{self.op}-{tag}"
        data = {
            "op": self.op, "env": self.env, "copy_gbs": self.copy_gbs,
            "rows": [{k: (None if v != v else v) for k, v in r.__dict__.items()} for r in self.rows], "bars": self.bars, "notes": self.notes,
        }
        stem.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
        stem.with_suffix(".md").write_text(self.to_markdown())
        return stem.with_suffix(".json"), stem.with_suffix(".md")


def result_tag(device: str) -> str:
    if device == "cuda":
        name = torch.cuda.get_device_name().lower()
        return "cuda-" + ("h200" if "h200" in name else "h100" if "h100" in name else "gpu")
    return "cpu"


def fmt_size(n: int) -> str:
    exp = len(str(n)) - 1
    return f"1e{exp}" if n == 10**exp else str(n)


def max_abs_diff(a, b) -> float:
    if isinstance(a, (tuple, list)):
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if a is None or b is None:
        return 0.0
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def measure(report: Report, size: str, mode: str, impls: dict, input_sets: list, run: Callable,
            bytes_moved: int, device: str, budget_s: float, tolerance: float = 1e-4) -> None:
    """Times run(fn, inputs) for every implementation, rotating over input_sets;
    the first implementation's result is the reference of the correctness column."""
    expected = None
    for name, fn in impls.items():
        def call(i, fn=fn):
            return run(fn, input_sets[i % len(input_sets)])

        for _ in range(3):  # warm up: compilation, TorchScript's profiling runs
            result = call(0)
        sync(device)
        if expected is None:
            expected = result
        us = time_calls(call, device, budget_s, max_reps=300)
        gbs = bytes_moved / (us * 1e-6) / 1e9 if bytes_moved else float("nan")  # nan: not counted
        diff = max_abs_diff(result, expected)
        report.rows.append(Row(size, name, mode, us, gbs, 100 * gbs / report.copy_gbs,
                               "ok" if diff <= tolerance else f"max diff {diff:.2g}"))
        print(f"{report.op} {mode:17s} {size:>12s} {name:14s} {us:11.1f} us {gbs:8.1f} GB/s", flush=True)


def fresh_compile(fn: Callable) -> Callable:
    """torch.compile(fn) for one input shape, after dropping earlier compilations
    (so no recompile limit makes a later size fall back to eager)."""
    torch._dynamo.reset()
    return torch.compile(fn, dynamic=False)


def autograd_floor_us(device: str) -> float:
    """Forward+backward of a trivial op (x * 2, 1000 elements): what the
    autograd engine alone costs per training call on this machine."""
    x = torch.rand(1000, device=device, requires_grad=True)
    g = torch.rand(1000, device=device)

    def call(i):
        return torch.autograd.grad(x * 2, x, g)

    for _ in range(5):
        call(0)
    sync(device)
    return time_calls(call, device, budget_s=0.5, max_reps=300)
