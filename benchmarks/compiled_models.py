"""What "auto" should be under torch.compile: a model step that uses each op,
compiled with the op as our kernel (one opaque call: "compile+native") or as
its eager math that Inductor fuses with the neighbours ("compile+eager"),
forward and forward+backward. torchops._backends.AUTO_UNDER_COMPILE records
the faster per op and device (forward+backward, the training step, decides).

- ratio_iou: the IoU loss of paired boxes, mean(1 - IoU), whose reduction
  Inductor can fuse into the IoU math;
- lstm_cell: one LSTM step, gates from two matmuls (extern kernels either
  way), bias adds and the cell, then mean(hy^2 + cy^2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import torchops
from benchmarks import lstm_cell as lstm_bench
from benchmarks import ratio_iou as iou_bench
from benchmarks.harness import CACHE_BYTES, Report, fresh_compile, measure

CPU_SIZES = [("ratio_iou", 10**5), ("ratio_iou", 10**6), ("lstm_cell", (64, 256)), ("lstm_cell", (256, 512))]
CUDA_SIZES = [("ratio_iou", 10**6), ("ratio_iou", 10**7), ("lstm_cell", (256, 1024)), ("lstm_cell", (4096, 1024))]
BACKENDS = ("eager", "native")


def iou_loss(backend):
    def step(*boxes):
        return (1 - torchops.ratio_iou(*boxes, backend=backend)).mean()
    return step


def lstm_step(backend):
    def step(x, h, c, w_ih, w_hh, b_ih, b_hh):
        hy, cy = torchops.lstm_cell(F.linear(x, w_ih), F.linear(h, w_hh), c, b_ih, b_hh, backend=backend)
        return (hy.square() + cy.square()).mean()
    return step


def lstm_inputs(batch, hidden, device, seed, requires_grad):
    gen = torch.Generator(device=device).manual_seed(seed)
    shapes = [(batch, hidden), (batch, hidden), (batch, hidden), (4 * hidden, hidden), (4 * hidden, hidden),
              (4 * hidden,), (4 * hidden,)]
    return [(torch.randn(s, generator=gen, device=device) * 0.1).requires_grad_(requires_grad) for s in shapes]


def bench(report: Report, device: str, sizes, budget_s: float) -> None:
    for op, size in sizes:
        if op == "ratio_iou":
            label, make_step, per_set = f"ratio_iou {size:.0e}", iou_loss, size * 8 * 4
            make = lambda seed, rg, n=size: iou_bench.make_boxes(n, device, seed, rg)  # noqa: E731
        else:
            batch, hidden = size
            label, make_step, per_set = f"lstm_cell ({batch}, {hidden})", lstm_step, batch * hidden * 11 * 4
            make = lambda seed, rg, b=batch, h=hidden: lstm_inputs(b, h, device, seed, rg)  # noqa: E731
        sets = max(1, min(16, math.ceil(2 * CACHE_BYTES / per_set)))
        for mode in ("forward", "forward+backward"):
            training = mode != "forward"
            input_sets = [make(seed, training) for seed in range(sets)]

            def run(fn, inputs, training=training):
                loss = fn(*inputs)
                return (loss, torch.autograd.grad(loss, inputs)) if training else loss

            impls = {f"compile+{b}": fresh_compile(make_step(b)) for b in BACKENDS}
            impls["native, not compiled"] = make_step("native")
            # bytes are not meaningful for a whole step; 0 keeps GB/s out of it
            measure(report, label, mode, impls, input_sets, run, 0, device, budget_s, tolerance=1e-3)
            del input_sets


def check_bars(report: Report, device: str) -> None:
    """Notes which backend is faster under compile, per op (the rule)."""
    for op in ("ratio_iou", "lstm_cell"):
        verdicts = []
        for size in sorted({r.size for r in report.rows if r.size.startswith(op)}):
            native = report.time_of(size, "compile+native", "forward+backward")
            eager = report.time_of(size, "compile+eager", "forward+backward")
            if native and eager:
                verdicts.append(f"{size}: native/eager = {native / eager:.2f}")
        if verdicts:
            report.notes.append(f"{op} under compile, forward+backward: " + "; ".join(verdicts))
