"""ratio_iou benchmark: eager, TorchScript, torch.compile and native, forward
and forward+backward, over sizes (elements per input tensor), float32."""

from __future__ import annotations

import math

import torch

import torchops
from torchops import _backends
from torchops.iou import ratio_iou_eager

from benchmarks.harness import CACHE_BYTES, Report, Row, fmt_size, max_abs_diff, sync, time_calls

CPU_SIZES = [10**3, 10**5, 10**6, 10**7]
CUDA_SIZES = [10**3, 10**5, 10**6, 10**7, 10**8]
BYTES_FORWARD = 9 * 4      # read 8 float32 inputs, write 1 output
BYTES_TRAINING = 26 * 4    # forward, then read 8 inputs + grad and write 8 grads


def make_boxes(n: int, device: str, seed: int, requires_grad: bool) -> list[torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(seed)
    xy = [torch.rand(n, generator=gen, device=device) * 10 for _ in range(4)]
    wh = [torch.rand(n, generator=gen, device=device) * 4 + 1 for _ in range(4)]
    boxes = [xy[0], xy[1], wh[0], wh[1], xy[2], xy[3], wh[2], wh[3]]
    return [b.requires_grad_(requires_grad) for b in boxes]


def implementations() -> dict:
    return {
        "eager": ratio_iou_eager,
        "script": _backends.scripted(ratio_iou_eager),
        "compile": torch.compile(ratio_iou_eager, dynamic=False),
        "native": lambda *b: torchops.ratio_iou(*b, backend="native"),
    }


def bench(report: Report, device: str, sizes: list[int], budget_s: float) -> None:
    impls = implementations()
    for n in sizes:
        sets = max(1, min(32, math.ceil(2 * CACHE_BYTES / (n * BYTES_FORWARD))))
        for mode in ("forward", "forward+backward"):
            training = mode != "forward"
            inputs = [make_boxes(n, device, seed, training) for seed in range(sets)]
            grad = torch.rand(n, device=device)
            expected = None
            for name, fn in impls.items():
                def call(i, fn=fn):
                    b = inputs[i % sets]
                    out = fn(*b)
                    return (out, torch.autograd.grad(out, b, grad)) if training else out

                for _ in range(3):  # warm up: compilation, TorchScript profiling runs
                    result = call(0)
                sync(device)
                if expected is None:
                    expected = result
                us = time_calls(call, device, budget_s, max_reps=300)
                bytes_moved = n * (BYTES_TRAINING if training else BYTES_FORWARD)
                gbs = bytes_moved / (us * 1e-6) / 1e9
                diff = max_abs_diff(result, expected)
                report.rows.append(Row(fmt_size(n), name, mode, us, gbs, 100 * gbs / report.copy_gbs,
                                       "ok" if diff <= 1e-4 else f"max diff {diff:.2g}"))
                print(f"ratio_iou {mode:17s} n={fmt_size(n):5s} {name:8s} {us:11.1f} us {gbs:8.1f} GB/s", flush=True)
            del inputs


def check_bars(report: Report, device: str) -> None:
    t = report.time_of
    peers = ("eager", "script", "compile")

    def fastest_peer(size, mode):
        times = [t(size, p, mode) for p in peers if t(size, p, mode) is not None]
        return min(times) if times else None

    def ratio(a, b):
        return None if a is None or b is None else a / b

    if device == "cuda":
        for size in ("1e7", "1e8"):
            report.bar(f"forward {size}: native / fastest peer", ratio(t(size, "native", "forward"), fastest_peer(size, "forward")), 1.03)
        report.bar("forward+backward 1e8: native / compile", ratio(t("1e8", "native", "forward+backward"), t("1e8", "compile", "forward+backward")), 1.05)
        report.bar("forward+backward 1e5: fastest peer / native", ratio(fastest_peer("1e5", "forward+backward"), t("1e5", "native", "forward+backward")), 10, higher_is_better=True)
        report.bar("forward 1e5: native / script", ratio(t("1e5", "native", "forward"), t("1e5", "script", "forward")), 1.0)
    else:
        for size in ("1e5", "1e6", "1e7"):
            for mode in ("forward", "forward+backward"):
                report.bar(f"{mode} {size}: native / compile", ratio(t(size, "native", mode), t(size, "compile", mode)), 1.0)
        for mode in ("forward", "forward+backward"):
            report.bar(f"{mode} 1e6: eager / native", ratio(t("1e6", "eager", mode), t("1e6", "native", mode)), 10, higher_is_better=True)
