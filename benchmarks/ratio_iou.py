"""ratio_iou benchmark: eager, TorchScript, torch.compile and native, forward
and forward+backward, over sizes (elements per input tensor), float32."""

from __future__ import annotations

import math

import torch

import torchops
from torchops import _backends
from torchops.iou import ratio_iou_eager

from benchmarks.harness import CACHE_BYTES, Report, fmt_size, fresh_compile, measure

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
        "compile": fresh_compile(ratio_iou_eager),
        "native": lambda *b: torchops.ratio_iou(*b, backend="native"),
    }


def bench(report: Report, device: str, sizes: list[int], budget_s: float) -> None:
    for n in sizes:
        sets = max(1, min(32, math.ceil(2 * CACHE_BYTES / (n * BYTES_FORWARD))))
        grad = torch.rand(n, device=device)
        for mode in ("forward", "forward+backward"):
            training = mode != "forward"
            input_sets = [make_boxes(n, device, seed, training) for seed in range(sets)]

            def run(fn, boxes, training=training):
                out = fn(*boxes)
                return (out, torch.autograd.grad(out, boxes, grad)) if training else out

            bytes_moved = n * (BYTES_TRAINING if training else BYTES_FORWARD)
            measure(report, fmt_size(n), mode, implementations(), input_sets, run, bytes_moved, device, budget_s)
            del input_sets


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
