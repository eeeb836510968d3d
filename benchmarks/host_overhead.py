"""Host time per call at tiny sizes, where per-image losses and RNN cells live:
each native op forward+backward against the autograd floor (x * 2 forward +
backward), and the public Python function against calling torch.ops directly.
CPU: 1 thread, wall time per call; GPU: call latency (no CUDA graph: the host
is the point). ATen's addcmul (three inputs) and stack + sum (eight inputs)
are there for scale. The public functions are called as users call them,
without backend= (the process-wide choice, "auto" unless set otherwise)."""

from __future__ import annotations

from typing import Callable

import torch

import torchops
import torchops.ops

from benchmarks.harness import FLOOR_ELEMENTS, MODES, TRAINING, Case, Settings, torchops_backend_reason

OP = "host_overhead"
FLOOR = "x * 2 (autograd floor)"
N = FLOOR_ELEMENTS  # boxes / elements: the floor's size
LSTM = (16, 64)     # batch, hidden: 1024 cell units
PAIRWISE = (32, 32)


def _boxes(n: int, device: str, requires_grad: bool) -> torch.Tensor:
    corner = torch.rand(n, 2, device=device) * 10
    return torch.cat([corner, corner + 1 + torch.rand(n, 2, device=device)], 1).requires_grad_(requires_grad)


def _ops(device: str, training: bool) -> dict[str, tuple[list, Callable, Callable]]:
    """op -> (inputs, direct torch.ops call, public call)."""
    rg = training
    ratio = [(torch.rand(N, device=device) * (4 if i in (2, 3, 6, 7) else 10) + (1 if i in (2, 3, 6, 7) else 0))
             .requires_grad_(rg) for i in range(8)]
    b, h = LSTM
    shapes = ((b, 4 * h), (b, 4 * h), (b, h), (4 * h,), (4 * h,))
    lstm = [torch.randn(s, device=device).requires_grad_(rg) for s in shapes]
    loss = [_boxes(N, device, rg), _boxes(N, device, rg)]
    pairwise = [_boxes(PAIRWISE[0], device, rg), _boxes(PAIRWISE[1], device, rg)]
    ops = torch.ops.super_iou
    return {
        "ratio_iou": (ratio, lambda *a: ops.ratio_iou.default(*a, 1e-5), torchops.ratio_iou),
        "lstm_cell": (lstm, torch.ops.super_lstm.lstm_cell.default, torchops.lstm_cell),
        "complete_box_iou_loss": (loss, lambda x, y: ops._complete_box_iou_loss.default(x, y, 1e-7, "xyxy"),
                                  torchops.ops.complete_box_iou_loss),
        "box_iou": (pairwise, lambda x, y: ops.box_iou.default(x, y, "xyxy"), torchops.ops.box_iou),
    }


def _step(fn, inputs: list, training: bool):
    """A zero-argument call of fn(*inputs), forward or forward+backward."""
    if not training:
        return lambda: fn(*inputs)
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    grads = [torch.rand_like(o) for o in outs]
    return lambda: torch.autograd.grad(fn(*inputs), inputs, grads)


def cases(settings: Settings) -> list[Case]:
    device = settings.device
    reason = torchops_backend_reason("native", device)
    out = []
    for mode in MODES:
        training = mode == TRAINING

        def impls(training=training):  # built when the case runs (the tensors live only then)
            x = torch.rand(N, device=device, requires_grad=training)
            result = {FLOOR: _step(lambda t: t * 2, [x], training)}
            if training:
                a, b, c = (torch.rand(N, device=device, requires_grad=True) for _ in range(3))
                result["addcmul (3 inputs)"] = _step(torch.addcmul, [a, b, c], True)
                eight = [torch.rand(N, device=device, requires_grad=True) for _ in range(8)]
                result["stack + sum (8 inputs)"] = _step(lambda *t: torch.stack(t).sum(0), eight, True)
            if reason is not None:
                for op in ("ratio_iou", "lstm_cell", "complete_box_iou_loss", "box_iou"):
                    result[f"{op} torch.ops"] = result[f"{op} public"] = reason
                return result
            for op, (inputs, direct, public) in _ops(device, training).items():
                result[f"{op} torch.ops"] = _step(direct, inputs, training)
                result[f"{op} public"] = _step(public, inputs, training)
            return result

        out.append(Case(OP, "tiny", 1, mode, impls, make_inputs=None, device_time=False,
                        threads=1 if device == "cpu" else None))
    return out
