"""What "auto" should be under torch.compile: a model step that uses each op,
compiled with the op as our kernel (one opaque call: "compile+native") or as
its eager math that Inductor fuses with the neighbours ("compile+eager"),
forward and forward+backward; "native, not compiled" for scale.
torchops._backends.AUTO_UNDER_COMPILE records the faster per op and device
(forward+backward, the training step, decides). Not in the default run
(--ops compiled_models).

- ratio_iou: the IoU loss of paired boxes, mean(1 - IoU), whose reduction
  Inductor can fuse into the IoU math;
- lstm_cell: one LSTM step, gates from two matmuls (extern kernels either
  way), bias adds and the cell, then mean(hy^2 + cy^2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import torchops
from benchmarks import ratio_iou as iou_bench
from benchmarks.harness import MODES, TRAINING, Case, Row, Settings, compiled, torchops_backend_reason

OP = "compiled_models"
X_LABEL = "size (boxes, or batch x hidden)"
SIZES = {"cpu": [("ratio_iou", 10**5), ("ratio_iou", 10**6), ("lstm_cell", (64, 256)), ("lstm_cell", (256, 512))],
         "cuda": [("ratio_iou", 10**6), ("ratio_iou", 10**7), ("lstm_cell", (256, 1024)), ("lstm_cell", (4096, 1024))]}
QUICK = {"cpu": [("ratio_iou", 10**5)], "cuda": [("ratio_iou", 10**6)]}
DRY = [("ratio_iou", 1000), ("lstm_cell", (4, 32))]
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


def cases(settings: Settings) -> list[Case]:
    device = settings.device
    reason = torchops_backend_reason("native", device)
    out = []
    for op, size in settings.sizes(SIZES, QUICK, DRY):
        if op == "ratio_iou":
            label, x, make_step, per_set = f"ratio_iou {size:.0e}", size, iou_loss, size * 8 * 4
            make = lambda seed, rg, n=size: iou_bench.make_boxes(n, device, seed, rg)  # noqa: E731
        else:
            batch, hidden = size
            label, x, make_step = f"lstm_cell ({batch}, {hidden})", batch * hidden, lstm_step
            per_set = batch * hidden * 11 * 4
            make = lambda seed, rg, b=batch, h=hidden: lstm_inputs(b, h, device, seed, rg)  # noqa: E731
        for mode in MODES:
            impls = {f"compile+{b}": reason if b == "native" and reason else compiled(make_step(b), settings)
                     for b in BACKENDS}
            impls["native, not compiled"] = reason or make_step("native")
            out.append(Case(OP, label, x, mode, impls, make_inputs=make, input_bytes=per_set, tolerance=1e-3))
    return out


def notes(rows: list[Row]) -> list[str]:
    """Which backend is faster under compile, per op: the rule AUTO_UNDER_COMPILE follows."""
    found = []
    for op in ("ratio_iou", "lstm_cell"):
        ratios = []
        for size in dict.fromkeys(r.size for r in rows if r.size.startswith(op)):
            by = {r.impl: r for r in rows if r.size == size and r.mode == TRAINING and r.figures}
            native, eager = by.get("compile+native"), by.get("compile+eager")
            if native and eager:
                figure = native.main_figure()
                if figure in eager.figures:
                    ratios.append(f"{size}: compile+native / compile+eager = "
                                  f"{native.figures[figure].median / eager.figures[figure].median:.2f}")
        if ratios:
            found.append(f"{op} under compile, forward+backward: " + "; ".join(ratios))
    return found
