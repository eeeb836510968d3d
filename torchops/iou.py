"""ratio_iou: intersection over union of paired boxes.

Each box is a corner (x, y) and a size (w, h); element i of the eight tensors
is one pair of boxes. The eager function below defines the op: broadcasting,
dtype promotion, NaN/inf propagation and gradients (including which side of a
tie at max/min/clamp receives the gradient) are those of this PyTorch
expression; the script backend is this same source compiled by TorchScript,
and the native kernels reproduce it operation by operation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchops import _backends, _checks, _declared

OP = "super_iou::ratio_iou"


def ratio_iou_eager(
    x1: Tensor, y1: Tensor, w1: Tensor, h1: Tensor,
    x2: Tensor, y2: Tensor, w2: Tensor, h2: Tensor,
    eps: float = 1e-5,
) -> Tensor:
    """The reference: plain PyTorch ops (about 15 kernels on their own)."""
    inter_x = torch.maximum(x1, x2)
    inter_y = torch.maximum(y1, y2)
    inter_w = torch.clamp(torch.minimum(x1 + w1, x2 + w2) - inter_x, min=0)
    inter_h = torch.clamp(torch.minimum(y1 + h1, y2 + h2) - inter_y, min=0)
    inter = inter_w * inter_h
    union = w1 * h1 + w2 * h2 - inter
    return inter / torch.clamp(union, min=eps)


def ratio_iou(
    x1: Tensor, y1: Tensor, w1: Tensor, h1: Tensor,
    x2: Tensor, y2: Tensor, w2: Tensor, h2: Tensor,
    eps: float = 1e-5,
    *,
    backend: str | None = None,
) -> Tensor:
    """IoU of box (x1, y1, w1, h1) with box (x2, y2, w2, h2), elementwise.

    All eight tensors broadcast together and must be float16, bfloat16,
    float32 or float64 on one device; the result has their broadcast shape and
    promoted dtype. ``eps`` (>= 0) bounds the union from below. ``backend``
    is "eager", "script", "native", "triton", "auto" or a registered
    backend's name (default: the process-wide choice, see
    torchops.set_backend).

    Gradients flow to all eight inputs. At a tie of max/min the gradient is
    split in half between the two sides, and clamp passes it at equality,
    exactly as autograd does for the eager expression.

    Under autocast the op runs in float32 and returns float32 (box areas
    overflow float16), whichever backend runs it.
    """
    return _backends.implementation("ratio_iou", backend, x1)(x1, y1, w1, h1, x2, y2, w2, h2, eps)


# The twin of RatioIouDecl (csrc/super_iou/ratio_iou.h).
DECL = _declared.Op(OP, ("x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2"), ("eps",), _checks.check_eps, (1e-5,))


def _precheck(args) -> None:
    eps = args[8]
    if type(eps) is not float:  # the op's schema would take True as 1.0, or read a tensor
        _checks.check_eps("ratio_iou", eps)


_op = _declared.declare("ratio_iou", ratio_iou, ratio_iou_eager, DECL,
                        autocast=_declared.autocast_float32, precheck=_precheck, precheck_unless_float=8,
                        normalize=lambda args: (*args[:8], float(args[8])))


def run_python(compute, boxes, eps) -> Tensor:
    """`compute(*boxes, eps)` after the checks, under ratio_iou's autocast
    policy (float32): for implementations in Python that want the eager
    backend's behaviour."""
    return _op.run_python(compute, (*boxes, eps))
