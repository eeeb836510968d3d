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

from torchops import _backends, _checks, _fake, _library, _registry

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


def _check_arguments(boxes, eps) -> None:
    for name, box in zip(_fake.BOX_NAMES, boxes):  # before the op sees None as "no tensor"
        _checks.check_is_tensor("ratio_iou", name, box)
    _checks.check_eps("ratio_iou", eps)  # the op's schema would take True as 1.0
    _fake.check_boxes("ratio_iou", boxes, eps)


def _native(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5) -> Tensor:
    """The native backend: the op checks its arguments itself (and handles
    autocast); the Python checks run only where it fails, for their clearer
    words about Python types, or before it where its schema would accept a
    wrong eps (True as 1.0, a tensor)."""
    if type(eps) is not float:
        _checks.check_eps("ratio_iou", eps)
    try:
        return torch.ops.super_iou.ratio_iou.default(x1, y1, w1, h1, x2, y2, w2, h2, eps)
    except (TypeError, RuntimeError):
        _check_arguments((x1, y1, w1, h1, x2, y2, w2, h2), eps)
        raise


def _make_native_eager():
    """_native outside torch.compile and torch.export, with the op looked up once."""
    op = _library.op_caller(OP)

    def native(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5) -> Tensor:
        if type(eps) is not float:
            _checks.check_eps("ratio_iou", eps)
        try:
            return op(x1, y1, w1, h1, x2, y2, w2, h2, eps)
        except (TypeError, RuntimeError):
            _check_arguments((x1, y1, w1, h1, x2, y2, w2, h2), eps)
            raise

    return native


def run_python(compute, boxes, eps) -> Tensor:
    """`compute(*boxes, eps)` after the checks, under ratio_iou's autocast
    policy (float32): the eager and script backends, and any implementation in
    Python that wants the same behaviour."""
    _check_arguments(boxes, eps)
    device = boxes[0].device
    if _checks.autocast_enabled(device):
        boxes = tuple(b.float() if b.dtype in (torch.float16, torch.bfloat16) else b for b in boxes)
        with torch.autocast(device.type, enabled=False):
            return compute(*boxes, float(eps))
    return compute(*boxes, float(eps))


def _eager(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5) -> Tensor:
    return run_python(ratio_iou_eager, (x1, y1, w1, h1, x2, y2, w2, h2), eps)


def _script(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5) -> Tensor:
    return run_python(_backends.python_implementation("script", ratio_iou_eager), (x1, y1, w1, h1, x2, y2, w2, h2), eps)


_registry.declare_op("ratio_iou", OP, ratio_iou)
_registry.register_builtin("ratio_iou", {"eager": _eager, "script": _script, "native": _native},
                          make_eager={"native": _make_native_eager})

# In torch.jit.script-ed code, torchops.ratio_iou(...) compiles to the op
# itself (TorchScript cannot take the keyword-only backend argument), which is
# what a saved model and C++ programs then run.
_backends.script_as_op(ratio_iou, "super_iou::ratio_iou")
