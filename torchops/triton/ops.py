"""The triton backend's ops: torch.library.triton_op (namespace
torchops_triton) over the kernels of kernels.py, with autograd from
register_autograd, and their registration as backend "triton" of
ratio_iou, lstm_cell and the three paired box losses.

Inputs are broadcast and cast to the dtype the op computes in (and copied
where broadcast or strided, except the gates of lstm_cell, whose rows may be
strided); the backward reduces each gradient to its input's shape and dtype.
"""

from __future__ import annotations

from typing import Optional

import math

import numpy as np
import torch
import triton
from torch import Tensor
from torch.library import triton_op, wrap_triton

from torchops import _registry, boxes as box_module, iou, lstm
from torchops.triton import devices, kernels

# Each kernel's block (elements, box pairs, or rows x hidden units per
# program) and num_warps. ratio_iou: a thread takes 4 consecutive elements (one
# 16-byte access per tensor, 2 of them in the forward); the box losses: a box
# pair per thread, which keeps the per-pair values (upstream gradient, output)
# in the layout of the [BLOCK, 4] box tiles, with no conversion; both keep
# registers near the native kernels'. lstm_cell: the fastest shapes of a sweep
# on an H200 (scripts/exp_triton_lstm_launch.py,
# benchmarks/results/cuda-h200/experiments/triton_lstm_launch.log), 4 units of
# a row per thread forward, 8 backward, whose bias gradient is summed from
# B / 16 partial rows. Counts of each kernel's accesses, instructions and
# registers: scripts/triton_sass.py.
LAUNCH = {
    "ratio_iou_forward": {"BLOCK": 1024, "num_warps": 4},
    "ratio_iou_backward": {"BLOCK": 512, "num_warps": 4},
    "lstm_cell_forward": {"BLOCK_B": 4, "BLOCK_H": 128, "num_warps": 4},
    "lstm_cell_backward": {"BLOCK_B": 16, "BLOCK_H": 64, "num_warps": 4},
    "box_loss_forward": {"BLOCK": 128, "num_warps": 4},
    "box_loss_backward": {"BLOCK": 128, "num_warps": 4},
}


def _split(x: float) -> tuple[float, float]:
    """x as float32 hi + lo (the kernels add them in float64; Triton passes a
    Python float as float32)."""
    hi = float(np.float32(x))
    return hi, (float(np.float32(x - hi)) if math.isfinite(x) else 0.0)


def _reduce_to(grad: Tensor, like: Tensor) -> Tensor:
    """A gradient of the broadcast shape, summed to `like`'s shape, in its dtype."""
    if grad.shape != like.shape:
        grad = grad.sum_to_size(like.shape)
    return grad.to(like.dtype)


# --- ratio_iou ------------------------------------------------------------------------------

def _ratio_iou_inputs(boxes) -> tuple[list[Tensor], torch.Size, torch.dtype]:
    shape, dtype = iou.DECL.check("ratio_iou", boxes, (0.0,))
    return [b.to(dtype).expand(shape).contiguous() for b in boxes], shape, dtype


@triton_op("torchops_triton::ratio_iou", mutates_args=())
def ratio_iou_op(x1: Tensor, y1: Tensor, w1: Tensor, h1: Tensor,
                 x2: Tensor, y2: Tensor, w2: Tensor, h2: Tensor, eps: float) -> Tensor:
    boxes, shape, dtype = _ratio_iou_inputs((x1, y1, w1, h1, x2, y2, w2, h2))
    out = torch.empty(shape, dtype=dtype, device=x1.device)
    n = out.numel()
    if n:
        launch = LAUNCH["ratio_iou_forward"]
        wrap_triton(kernels.ratio_iou_forward)[(triton.cdiv(n, launch["BLOCK"]),)](
            *boxes, out, n, *_split(eps), FP64=dtype == torch.float64, **launch)
    return out


@triton_op("torchops_triton::ratio_iou_backward", mutates_args=())
def ratio_iou_backward_op(grad: Tensor, x1: Tensor, y1: Tensor, w1: Tensor, h1: Tensor,
                          x2: Tensor, y2: Tensor, w2: Tensor, h2: Tensor, eps: float) -> list[Tensor]:
    boxes, shape, dtype = _ratio_iou_inputs((x1, y1, w1, h1, x2, y2, w2, h2))
    grad = grad.to(dtype).expand(shape).contiguous()
    grads = [torch.empty(shape, dtype=dtype, device=x1.device) for _ in range(8)]
    n = grad.numel()
    if n:
        launch = LAUNCH["ratio_iou_backward"]
        wrap_triton(kernels.ratio_iou_backward)[(triton.cdiv(n, launch["BLOCK"]),)](
            grad, *boxes, *grads, n, *_split(eps), FP64=dtype == torch.float64, **launch)
    return grads


def _ratio_iou_setup(ctx, inputs, output):
    *boxes, eps = inputs
    ctx.save_for_backward(*boxes)
    ctx.eps = eps


def _ratio_iou_backward(ctx, grad):
    boxes = ctx.saved_tensors
    grads = ratio_iou_backward_op(grad, *boxes, ctx.eps)
    return (*(_reduce_to(g, b) for g, b in zip(grads, boxes)), None)


ratio_iou_op.register_autograd(_ratio_iou_backward, setup_context=_ratio_iou_setup)


def ratio_iou(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5) -> Tensor:
    return iou.run_python(ratio_iou_op, (x1, y1, w1, h1, x2, y2, w2, h2), eps)


# --- lstm_cell ------------------------------------------------------------------------------

def _lstm_inputs(input_gates, hidden_gates, cx, b_ih, b_hh):
    """The checks; then every input in the op's dtype, as [B, 4H] / [B, H] with
    unit stride along the last dimension (rows may be strided)."""
    (batch, hidden, _), dtype = lstm.DECL.check("lstm_cell", (input_gates, hidden_gates, cx), (), (b_ih, b_hh))

    def rows(t, width):
        t = t.to(dtype).reshape(-1, width)
        return t if t.stride(-1) == 1 else t.contiguous()

    biases = [None if b is None else b.to(dtype).contiguous() for b in (b_ih, b_hh)]
    return (rows(input_gates, 4 * hidden), rows(hidden_gates, 4 * hidden), rows(cx, hidden), *biases,
            batch, hidden, dtype)


def _lstm_grid(batch, hidden, kernel):
    launch = LAUNCH[kernel]
    return (triton.cdiv(batch, launch["BLOCK_B"]), triton.cdiv(hidden, launch["BLOCK_H"]))


@triton_op("torchops_triton::lstm_cell", mutates_args=())
def lstm_cell_op(input_gates: Tensor, hidden_gates: Tensor, cx: Tensor,
                 b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    ig, hg, c, bih, bhh, batch, hidden, dtype = _lstm_inputs(input_gates, hidden_gates, cx, b_ih, b_hh)
    hy = torch.empty(cx.shape, dtype=dtype, device=cx.device)
    cy = torch.empty(cx.shape, dtype=dtype, device=cx.device)
    if hy.numel():
        wrap_triton(kernels.lstm_cell_forward)[_lstm_grid(batch, hidden, "lstm_cell_forward")](
            ig, hg, c, ig if bih is None else bih, ig if bhh is None else bhh, hy, cy,
            batch, hidden, ig.stride(0), hg.stride(0), c.stride(0),
            HAS_BIH=bih is not None, HAS_BHH=bhh is not None, FP64=dtype == torch.float64,
            **LAUNCH["lstm_cell_forward"])
    return hy, cy


@triton_op("torchops_triton::lstm_cell_backward", mutates_args=())
def lstm_cell_backward_op(grad_hy: Tensor, grad_cy: Tensor, input_gates: Tensor, hidden_gates: Tensor, cx: Tensor,
                          b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """(gradient of the gates, of cx, of a bias: [4H], or [0] without biases)."""
    ig, hg, c, bih, bhh, batch, hidden, dtype = _lstm_inputs(input_gates, hidden_gates, cx, b_ih, b_hh)
    grad_hy = grad_hy.to(dtype).reshape(-1, hidden).contiguous()
    grad_cy = grad_cy.to(dtype).reshape(-1, hidden).contiguous()
    grad_gates = torch.empty(input_gates.shape, dtype=dtype, device=cx.device)
    grad_cx = torch.empty(cx.shape, dtype=dtype, device=cx.device)
    has_bias = bih is not None or bhh is not None
    grid = _lstm_grid(batch, hidden, "lstm_cell_backward")
    # each row block's sum of the gate gradients (in the compute dtype), summed below in a fixed order;
    # the kernel writes every element
    partial = torch.empty((grid[0] if has_bias else 0, 4 * hidden),
                          dtype=torch.float64 if dtype == torch.float64 else torch.float32, device=cx.device)
    if grad_cx.numel():
        wrap_triton(kernels.lstm_cell_backward)[grid](
            grad_hy, grad_cy, ig, hg, c, ig if bih is None else bih, ig if bhh is None else bhh,
            grad_gates, grad_cx, grad_gates if not has_bias else partial,
            batch, hidden, ig.stride(0), hg.stride(0), c.stride(0),
            HAS_BIH=bih is not None, HAS_BHH=bhh is not None, FP64=dtype == torch.float64,
            **LAUNCH["lstm_cell_backward"])
    grad_bias = partial.sum(0) if has_bias else grad_gates.new_empty((0,))
    return grad_gates, grad_cx, grad_bias


def _lstm_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _lstm_backward(ctx, grad_hy, grad_cy):
    input_gates, hidden_gates, cx, b_ih, b_hh = ctx.saved_tensors
    grad_hy = torch.zeros_like(cx) if grad_hy is None else grad_hy
    grad_cy = torch.zeros_like(cx) if grad_cy is None else grad_cy
    grad_gates, grad_cx, grad_bias = lstm_cell_backward_op(grad_hy, grad_cy, input_gates, hidden_gates, cx,
                                                           b_ih, b_hh)
    return (grad_gates.to(input_gates.dtype), grad_gates.to(hidden_gates.dtype), _reduce_to(grad_cx, cx),
            None if b_ih is None else grad_bias.to(b_ih.dtype), None if b_hh is None else grad_bias.to(b_hh.dtype))


lstm_cell_op.register_autograd(_lstm_backward, setup_context=_lstm_setup)


def lstm_cell(input_gates, hidden_gates, cx, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
    return lstm.run_python(lstm_cell_op, (input_gates, hidden_gates, cx, b_ih, b_hh))


# --- the paired box losses --------------------------------------------------------------------

KINDS = {"giou": 1, "diou": 2, "ciou": 3}
FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}


def _box_inputs(boxes1, boxes2):
    shape = box_module.pair_shape("box_iou_loss", boxes1, boxes2)
    dtype = box_module.out_dtype(boxes1, boxes2)
    rows = [b.to(dtype).expand(*shape, 4).contiguous() for b in (boxes1, boxes2)]
    return rows, shape, dtype


def _box_eps(kind: str, eps: float) -> tuple[float, float, float, float]:
    # complete_box_iou_loss: eps reaches only alpha; its DIoU part uses 1e-7 (as torchvision)
    return (*_split(1e-7 if kind == "ciou" else eps), *_split(eps))


@triton_op("torchops_triton::box_iou_loss", mutates_args=())
def box_iou_loss_op(boxes1: Tensor, boxes2: Tensor, kind: str, eps: float, fmt: str) -> Tensor:
    """1 - GIoU/DIoU/CIoU (kind "giou", "diou", "ciou") of matched pairs, torchvision's loss convention."""
    (b1, b2), shape, dtype = _box_inputs(boxes1, boxes2)
    out = torch.empty(shape, dtype=dtype, device=boxes1.device)
    n = out.numel()
    if n:
        launch = LAUNCH["box_loss_forward"]
        wrap_triton(kernels.box_loss_forward)[(triton.cdiv(n, launch["BLOCK"]),)](
            b1, b2, out, n, *_box_eps(kind, eps), KIND=KINDS[kind], FMT=FORMATS[fmt], FP64=dtype == torch.float64,
            **launch)
    return out


@triton_op("torchops_triton::box_iou_loss_backward", mutates_args=())
def box_iou_loss_backward_op(grad: Tensor, boxes1: Tensor, boxes2: Tensor, kind: str, eps: float,
                             fmt: str) -> tuple[Tensor, Tensor]:
    (b1, b2), shape, dtype = _box_inputs(boxes1, boxes2)
    grad = grad.to(dtype).expand(shape).contiguous()
    g1, g2 = torch.empty_like(b1), torch.empty_like(b2)
    n = grad.numel()
    if n:
        launch = LAUNCH["box_loss_backward"]
        wrap_triton(kernels.box_loss_backward)[(triton.cdiv(n, launch["BLOCK"]),)](
            grad, b1, b2, g1, g2, n, *_box_eps(kind, eps), KIND=KINDS[kind], FMT=FORMATS[fmt],
            FP64=dtype == torch.float64, **launch)
    return g1, g2


def _box_setup(ctx, inputs, output):
    boxes1, boxes2, kind, eps, fmt = inputs
    ctx.save_for_backward(boxes1, boxes2)
    ctx.constants = (kind, eps, fmt)


def _box_backward(ctx, grad):
    boxes1, boxes2 = ctx.saved_tensors
    g1, g2 = box_iou_loss_backward_op(grad, boxes1, boxes2, *ctx.constants)
    return _reduce_to(g1, boxes1), _reduce_to(g2, boxes2), None, None, None


box_iou_loss_op.register_autograd(_box_backward, setup_context=_box_setup)


def _box_loss(public: str, kind: str):
    def value(boxes1, boxes2, fmt, eps):
        boxes1, boxes2 = box_module.prepare(public, boxes1, boxes2, fmt, eps)
        return box_iou_loss_op(boxes1, boxes2, kind, float(eps), fmt)

    return box_module.implementation(public, value)


# --- the backend ------------------------------------------------------------------------------

IMPLEMENTATIONS = {
    "ratio_iou": ratio_iou,
    "lstm_cell": lstm_cell,
    "generalized_box_iou_loss": _box_loss("generalized_box_iou_loss", "giou"),
    "distance_box_iou_loss": _box_loss("distance_box_iou_loss", "diou"),
    "complete_box_iou_loss": _box_loss("complete_box_iou_loss", "ciou"),
}
for _op, _fn in IMPLEMENTATIONS.items():
    _registry.register_builtin(_op, {"triton": _fn}, devices=devices())
