"""The box IoU family: IoU, GIoU, DIoU and CIoU of axis-aligned boxes, as
pairwise N x M matrices, as paired (matched-pair) values and as losses.

`box_pair_eager` below is the reference that defines every function here:
torchvision.ops 0.28's formulas and conventions wherever torchvision is
finite, and where torchvision divides by zero (zero union or enclosing area,
zero box height in CIoU) a guarded denominator (divide by 1, no gradient
through it), so values and gradients stay finite. The native kernels
(csrc/super_iou/box_iou_math.h) follow it operation by operation; the script
backend is this source compiled by TorchScript.

Boxes are [..., 4] tensors in fmt "xyxy" (corners), "xywh" (corner, size) or
"cxcywh" (centre, size); leading dimensions broadcast. float16 and bfloat16
boxes compute in float32 and return float32 (as torchvision's _upcast);
integer boxes are converted to float32 first.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from torchops import _backends, _checks, _library, _registry

FORMATS = ("xyxy", "xywh", "cxcywh")
REDUCTIONS = ("none", "mean", "sum")
KINDS = ("iou", "giou", "diou", "ciou")


class BoxOp(NamedTuple):
    """One op of the family, as declared in csrc/super_iou/box_iou.h (kBoxOps)."""

    name: str  # super_iou::<name>
    kind: str  # one of KINDS
    loss: bool  # torchvision's loss convention, else its metric's

    @property
    def backward_name(self) -> str:
        """As backward_name() in box_iou.h: no "__" names (Python mangles them)."""
        return f"_{self.name.removeprefix('_')}_backward"


BOX_OPS = {
    op.name: op
    for op in (
        BoxOp("paired_box_iou", "iou", False),
        BoxOp("paired_generalized_box_iou", "giou", False),
        BoxOp("paired_distance_box_iou", "diou", False),
        BoxOp("paired_complete_box_iou", "ciou", False),
        BoxOp("_generalized_box_iou_loss", "giou", True),
        BoxOp("_distance_box_iou_loss", "diou", True),
        BoxOp("_complete_box_iou_loss", "ciou", True),
    )
}


# --- the reference -------------------------------------------------------------------

def _guarded(d: Tensor) -> Tensor:
    """d where d != 0, else 1 (and no gradient to d there)."""
    return torch.where(d == 0, torch.ones_like(d), d)


def _geometry(b: Tensor, fmt: str) -> list[Tensor]:
    """[x1, y1, x2, y2, w, h, xc, yc] of boxes read in `fmt`."""
    p0, p1, p2, p3 = b.unbind(-1)
    if fmt == "xyxy":
        x1, y1, x2, y2 = p0, p1, p2, p3
        w, h = x2 - x1, y2 - y1
        xc, yc = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    elif fmt == "xywh":
        x1, y1, w, h = p0, p1, p2, p3
        x2, y2 = x1 + w, y1 + h
        xc, yc = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    else:
        xc, yc, w, h = p0, p1, p2, p3
        x1, y1 = xc - 0.5 * w, yc - 0.5 * h
        x2, y2 = xc + 0.5 * w, yc + 0.5 * h
    return [x1, y1, x2, y2, w, h, xc, yc]


def _aspect_angle(w: Tensor, h: Tensor) -> Tensor:
    """atan(w / h); where h == 0 its limit (+-pi/2, 0 for w == 0) without gradient."""
    limit = torch.where(w == 0, torch.zeros_like(w), torch.atan(w.detach() / h.detach()))
    return torch.where(h == 0, limit, torch.atan(w / _guarded(h)))


def box_pair_eager(boxes1: Tensor, boxes2: Tensor, kind: str, loss: bool, fmt: str, eps: float) -> Tensor:
    """The family's value for each pair of boxes (leading dims broadcast).

    kind: "iou", "giou", "diou" or "ciou". loss=False: torchvision's metric
    convention (sides clamped at 0, no eps in IoU/GIoU, eps in the enclosing
    diagonal). loss=True: its loss convention (1 - metric, eps in every
    denominator; CIoU's DIoU part keeps eps=1e-7, its alpha gets `eps`)."""
    if boxes1.dtype not in (torch.float32, torch.float64):
        boxes1 = boxes1.float()
    if boxes2.dtype not in (torch.float32, torch.float64):
        boxes2 = boxes2.float()
    eps_alpha = eps
    if loss and kind == "ciou":
        eps = 1e-7
    ax1, ay1, ax2, ay2, aw, ah, axc, ayc = _geometry(boxes1, fmt)
    bx1, by1, bx2, by2, bw, bh, bxc, byc = _geometry(boxes2, fmt)
    inter_w = torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)
    inter_h = torch.minimum(ay2, by2) - torch.maximum(ay1, by1)
    if loss:  # torchvision's losses: the product where both sides are positive
        inter = torch.where((inter_w > 0) & (inter_h > 0), inter_w * inter_h, torch.zeros_like(inter_w))
    else:
        inter = inter_w.clamp(min=0) * inter_h.clamp(min=0)
    union = aw * ah + bw * bh - inter
    iou = inter / _guarded(union + eps if loss else union)
    if kind == "iou":
        return 1 - iou if loss else iou
    enclose_w = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)
    enclose_h = torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    if not loss:
        enclose_w, enclose_h = enclose_w.clamp(min=0), enclose_h.clamp(min=0)
    if kind == "giou":
        area = enclose_w * enclose_h
        penalty = (area - union) / _guarded(area + eps if loss else area)
        return 1 - (iou - penalty) if loss else iou - penalty
    diagonal2 = _guarded(enclose_w * enclose_w + enclose_h * enclose_h + eps)
    dx, dy = axc - bxc, ayc - byc
    distance = (dx * dx + dy * dy) / diagonal2
    value = 1 - iou + distance if loss else iou - distance
    if kind == "diou":
        return value
    d = _aspect_angle(aw, ah) - _aspect_angle(bw, bh)
    v = 0.40528473456935108 * (d * d)  # 4 / pi^2 (a literal: TorchScript reads no globals)
    alpha = (v / _guarded(1 - iou + v + eps_alpha)).detach()
    return value + alpha * v if loss else value - alpha * v


def eager_op(op: BoxOp) -> Callable:
    """The reference with the op's schema, super_iou::<name>(boxes1, boxes2, eps, fmt)."""
    def reference(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7, fmt: str = "xyxy") -> Tensor:
        return box_pair_eager(boxes1, boxes2, op.kind, op.loss, fmt, eps)

    reference.__name__ = f"{op.name}_eager"
    return reference


# --- checks shared by every path --------------------------------------------------------

def _check_boxes(op: str, boxes1, boxes2, fmt, eps) -> None:
    """The op's checks (as prepare_box_pair in csrc/super_iou/box_iou.cpp)."""
    for name, t in (("boxes1", boxes1), ("boxes2", boxes2)):
        _checks.check_floating(op, name, t)
        if t.dim() < 1 or t.shape[-1] != 4:
            raise ValueError(f"{op}: expected {name} of shape [..., 4], but got {list(t.shape)}")
    if eps != eps or eps < 0:
        raise ValueError(f"{op}: expected eps to be a non-negative number, but got {eps:g}")
    if fmt not in FORMATS:
        raise ValueError(f"{op}: expected fmt to be 'xyxy', 'xywh' or 'cxcywh', but got '{fmt}'")
    _checks.check_same_device(op, ("boxes1", "boxes2"), (boxes1, boxes2))
    pair_shape(op, boxes1, boxes2)


def pair_shape(op: str, boxes1: Tensor, boxes2: Tensor) -> torch.Size:
    try:
        return torch.broadcast_shapes(boxes1.shape[:-1], boxes2.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"{op}: the boxes do not pair: boxes1 {list(boxes1.shape)} and boxes2 {list(boxes2.shape)} "
            "have leading dimensions that do not broadcast"
        ) from None


def out_dtype(boxes1: Tensor, boxes2: Tensor) -> torch.dtype:
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _as_float_boxes(op: str, name: str, t) -> Tensor:
    """Integer boxes as float32 (torchvision accepts them); anything else unchanged."""
    _checks.check_is_tensor(op, name, t)
    if not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool:
        return t.float()
    return t


# --- the built-in implementations -----------------------------------------------------

_FLOATING = frozenset(_checks.FLOAT_DTYPES)

def prepare(public: str, boxes1, boxes2, fmt: str, eps, check: bool = True) -> tuple[Tensor, Tensor]:
    """Integer boxes as float32 and every check (check=False: only what the
    native op does not check itself): the prelude of every implementation."""
    boxes1 = _as_float_boxes(public, "boxes1", boxes1)
    boxes2 = _as_float_boxes(public, "boxes2", boxes2)
    _checks.check_eps(public, eps)
    if check:
        _check_boxes(public, boxes1, boxes2, fmt, eps)
    return boxes1, boxes2


def _paired_value(impl: str, op: BoxOp, public: str, boxes1, boxes2, fmt: str, eps) -> Tensor:
    """The op's value for each pair of boxes through built-in backend `impl`."""
    if impl == "native":
        boxes1, boxes2 = prepare(public, boxes1, boxes2, fmt, eps, check=False)
        return getattr(torch.ops.super_iou, op.name).default(boxes1, boxes2, float(eps), fmt)
    boxes1, boxes2 = prepare(public, boxes1, boxes2, fmt, eps)
    fn = _backends.python_implementation(impl, box_pair_eager)
    return fn(boxes1, boxes2, op.kind, op.loss, fmt, float(eps))


def _check_pairwise(op: str, boxes1, boxes2) -> None:
    for name, t, n in (("boxes1", boxes1, "N"), ("boxes2", boxes2, "M")):
        _checks.check_is_tensor(op, name, t)
        if t.dim() < 2:
            raise ValueError(f"{op}: expected {name} of shape [..., {n}, 4], but got {list(t.shape)}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()  # torchvision's empty mean
    return loss.sum()


def _check_reduction(public: str, reduction) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{public}: expected reduction to be 'none', 'mean' or 'sum', but got '{reduction}'")


def implementation(public: str, value: Callable) -> Callable:
    """The public function `public` without its backend argument, computed
    from `value(boxes1, boxes2, fmt, eps)`, the value of each pair (the
    pairwise forms pass [..., N, 1, 4] x [..., 1, M, 4] views, the losses
    reduce after). Every backend's box functions are made here."""
    if public == "box_iou":
        def box_iou(boxes1, boxes2, fmt="xyxy"):
            _check_pairwise(public, boxes1, boxes2)
            return value(boxes1.unsqueeze(-2), boxes2.unsqueeze(-3), fmt, 0.0)

        return box_iou
    if public.endswith("_loss"):
        def loss(boxes1, boxes2, reduction="none", eps=1e-7, *, fmt="xyxy"):
            _check_reduction(public, reduction)
            return _reduce(value(boxes1, boxes2, fmt, eps), reduction)

        return loss
    pairwise = not public.startswith("paired_")

    def pairs(boxes1, boxes2):
        if not pairwise:
            return boxes1, boxes2
        _check_pairwise(public, boxes1, boxes2)
        return boxes1.unsqueeze(-2), boxes2.unsqueeze(-3)

    if public.startswith(("distance", "complete", "paired_distance", "paired_complete")):
        def with_eps(boxes1, boxes2, eps=1e-7, *, fmt="xyxy"):
            return value(*pairs(boxes1, boxes2), fmt, eps)

        return with_eps

    def without_eps(boxes1, boxes2, *, fmt="xyxy"):
        return value(*pairs(boxes1, boxes2), fmt, 0.0)

    return without_eps


# public function -> the op of BOX_OPS that computes its paired values
_OP_OF = {
    "box_iou": "paired_box_iou", "generalized_box_iou": "paired_generalized_box_iou",
    "distance_box_iou": "paired_distance_box_iou", "complete_box_iou": "paired_complete_box_iou",
    "paired_box_iou": "paired_box_iou", "paired_generalized_box_iou": "paired_generalized_box_iou",
    "paired_distance_box_iou": "paired_distance_box_iou", "paired_complete_box_iou": "paired_complete_box_iou",
    "generalized_box_iou_loss": "_generalized_box_iou_loss", "distance_box_iou_loss": "_distance_box_iou_loss",
    "complete_box_iou_loss": "_complete_box_iou_loss",
}


def _builtin(public: str, impl: str) -> Callable:
    op = BOX_OPS[_OP_OF[public]]
    return implementation(public, lambda b1, b2, fmt, eps: _paired_value(impl, op, public, b1, b2, fmt, eps))


def _native_eager(public: str) -> Callable:
    """The native backend of `public` outside torch.compile and torch.export:
    one call of a registered op, which checks its arguments itself (the
    composite ops of box_iou.cpp for the pairwise functions and the reduced
    losses, the paired op for the paired functions and unreduced losses).
    Integer boxes, and every call the op rejects, take the way of _builtin,
    which converts integer boxes to float32 and raises what it raises today.
    (Under torch.compile and torch.export that way runs: Dynamo traces it.)"""
    checked = _builtin(public, "native")
    op = _library.op_caller("super_iou::" + public)
    # (type(eps) is float: the op's schema would take True as 1.0; .dtype in
    # _FLOATING: the floating dtypes the op takes, fewer instructions than two
    # is_floating_point() calls; float8 boxes take the checked way either way)
    if public == "box_iou":
        def box_iou(boxes1, boxes2, fmt="xyxy"):
            try:
                if boxes1.dtype in _FLOATING and boxes2.dtype in _FLOATING:
                    return op(boxes1, boxes2, fmt)
            except (AttributeError, TypeError, ValueError, RuntimeError):
                pass
            return checked(boxes1, boxes2, fmt)

        return box_iou
    if public.endswith("_loss"):
        unreduced = _library.op_caller("super_iou::" + _OP_OF[public])

        def loss(boxes1, boxes2, reduction="none", eps=1e-7, *, fmt="xyxy"):
            try:
                if type(eps) is float and boxes1.dtype in _FLOATING and boxes2.dtype in _FLOATING:
                    if reduction == "none":
                        return unreduced(boxes1, boxes2, eps, fmt)
                    return op(boxes1, boxes2, reduction, eps, fmt)
            except (AttributeError, TypeError, ValueError, RuntimeError):
                pass
            return checked(boxes1, boxes2, reduction, eps, fmt=fmt)

        return loss
    if public.startswith(("distance", "complete", "paired_distance", "paired_complete")):
        def with_eps(boxes1, boxes2, eps=1e-7, *, fmt="xyxy"):
            try:
                if type(eps) is float and boxes1.dtype in _FLOATING and boxes2.dtype in _FLOATING:
                    return op(boxes1, boxes2, eps, fmt)
            except (AttributeError, TypeError, ValueError, RuntimeError):
                pass
            return checked(boxes1, boxes2, eps, fmt=fmt)

        return with_eps
    if public.startswith("paired_"):
        def paired_without_eps(boxes1, boxes2, *, fmt="xyxy"):
            try:
                if boxes1.dtype in _FLOATING and boxes2.dtype in _FLOATING:
                    return op(boxes1, boxes2, 0.0, fmt)
            except (AttributeError, TypeError, ValueError, RuntimeError):
                pass
            return checked(boxes1, boxes2, fmt=fmt)

        return paired_without_eps

    def without_eps(boxes1, boxes2, *, fmt="xyxy"):
        try:
            if boxes1.dtype in _FLOATING and boxes2.dtype in _FLOATING:
                return op(boxes1, boxes2, fmt)
        except (AttributeError, TypeError, ValueError, RuntimeError):
            pass
        return checked(boxes1, boxes2, fmt=fmt)

    return without_eps


# --- the public functions --------------------------------------------------------------
# Each runs the implementation that torchops._backends picks for the call (see
# torchops.register_implementation): backend "eager", "script", "native",
# "triton" (the losses), "auto" or a registered backend's name.

def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy", *, backend: str | None = None) -> Tensor:
    """IoU of every box in boxes1 [..., N, 4] with every box in boxes2 [..., M, 4]: [..., N, M]."""
    return _backends.implementation("box_iou", backend, boxes1)(boxes1, boxes2, fmt=fmt)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor, *, fmt: str = "xyxy", backend: str | None = None) -> Tensor:
    """Pairwise GIoU, [..., N, M] (torchvision.ops.generalized_box_iou)."""
    return _backends.implementation("generalized_box_iou", backend, boxes1)(boxes1, boxes2, fmt=fmt)


def distance_box_iou(
    boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7, *, fmt: str = "xyxy", backend: str | None = None
) -> Tensor:
    """Pairwise DIoU, [..., N, M] (torchvision.ops.distance_box_iou)."""
    return _backends.implementation("distance_box_iou", backend, boxes1)(boxes1, boxes2, eps, fmt=fmt)


def complete_box_iou(
    boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7, *, fmt: str = "xyxy", backend: str | None = None
) -> Tensor:
    """Pairwise CIoU, [..., N, M] (torchvision.ops.complete_box_iou)."""
    return _backends.implementation("complete_box_iou", backend, boxes1)(boxes1, boxes2, eps, fmt=fmt)


def paired_box_iou(boxes1: Tensor, boxes2: Tensor, *, fmt: str = "xyxy", backend: str | None = None) -> Tensor:
    """IoU of matched pairs: boxes1[..., i, :] with boxes2[..., i, :] -> [...]. Equals
    diag(box_iou(boxes1, boxes2)) without building the N x N matrix."""
    return _backends.implementation("paired_box_iou", backend, boxes1)(boxes1, boxes2, fmt=fmt)


def paired_generalized_box_iou(
    boxes1: Tensor, boxes2: Tensor, *, fmt: str = "xyxy", backend: str | None = None
) -> Tensor:
    """GIoU of matched pairs, [...]: diag(generalized_box_iou(boxes1, boxes2)) without the N x N matrix."""
    return _backends.implementation("paired_generalized_box_iou", backend, boxes1)(boxes1, boxes2, fmt=fmt)


def paired_distance_box_iou(
    boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7, *, fmt: str = "xyxy", backend: str | None = None
) -> Tensor:
    """DIoU of matched pairs, [...]: diag(distance_box_iou(boxes1, boxes2, eps))."""
    return _backends.implementation("paired_distance_box_iou", backend, boxes1)(boxes1, boxes2, eps, fmt=fmt)


def paired_complete_box_iou(
    boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7, *, fmt: str = "xyxy", backend: str | None = None
) -> Tensor:
    """CIoU of matched pairs, [...]: diag(complete_box_iou(boxes1, boxes2, eps))."""
    return _backends.implementation("paired_complete_box_iou", backend, boxes1)(boxes1, boxes2, eps, fmt=fmt)


def generalized_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7, *, fmt: str = "xyxy",
    backend: str | None = None,
) -> Tensor:
    """torchvision.ops.generalized_box_iou_loss: 1 - GIoU of matched pairs."""
    fn = _backends.implementation("generalized_box_iou_loss", backend, boxes1)
    return fn(boxes1, boxes2, reduction, eps, fmt=fmt)


def distance_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7, *, fmt: str = "xyxy",
    backend: str | None = None,
) -> Tensor:
    """torchvision.ops.distance_box_iou_loss: 1 - DIoU of matched pairs."""
    fn = _backends.implementation("distance_box_iou_loss", backend, boxes1)
    return fn(boxes1, boxes2, reduction, eps, fmt=fmt)


def complete_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7, *, fmt: str = "xyxy",
    backend: str | None = None,
) -> Tensor:
    """torchvision.ops.complete_box_iou_loss: 1 - CIoU of matched pairs. As in
    torchvision, eps reaches only CIoU's alpha; its DIoU part uses 1e-7."""
    fn = _backends.implementation("complete_box_iou_loss", backend, boxes1)
    return fn(boxes1, boxes2, reduction, eps, fmt=fmt)


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """torchvision.ops.box_convert for the axis-aligned formats."""
    for name, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if fmt not in FORMATS:
            raise ValueError(f"box_convert: expected {name} to be 'xyxy', 'xywh' or 'cxcywh', but got '{fmt}'")
    if in_fmt == out_fmt:
        return boxes.clone()
    # through corners, as torchvision converts (so sizes are recomputed from them)
    corners = boxes if in_fmt == "xyxy" else torch.stack(_geometry(boxes, in_fmt)[:4], dim=-1)
    if out_fmt == "xyxy":
        return corners
    x1, y1, _, _, w, h, xc, yc = _geometry(corners, "xyxy")
    return torch.stack((x1, y1, w, h) if out_fmt == "xywh" else (xc, yc, w, h), dim=-1)


PUBLIC: dict[str, Callable] = {
    f.__name__: f
    for f in (
        box_iou, generalized_box_iou, distance_box_iou, complete_box_iou,
        paired_box_iou, paired_generalized_box_iou, paired_distance_box_iou, paired_complete_box_iou,
        generalized_box_iou_loss, distance_box_iou_loss, complete_box_iou_loss,
    )
}

for _name, _fn in PUBLIC.items():
    _registry.declare_op(_name, "super_iou::" + _OP_OF[_name], _fn)
    _registry.register_builtin(_name, {impl: _builtin(_name, impl) for impl in ("eager", "script", "native")},
                               make_eager={"native": functools.partial(_native_eager, _name)})
    # In torch.jit.script-ed code these functions compile to the ops of the
    # same name (super_iou::box_iou, ...; the paired ones to
    # super_iou::paired_*), which C++ programs and saved models then run.
    _backends.script_as_op(_fn, "super_iou::" + _name)
