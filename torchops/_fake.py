"""Fake (meta) kernels of the torchops ops, for torch.compile and torch.export.
They repeat the C++ argument checks and compute output shapes and dtypes
without touching data. The C++ library names this module
(set_python_module), and torchops._library imports it after loading."""

from __future__ import annotations

import torch

from torchops import _checks

BOX_NAMES = ("x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2")


def check_boxes(op: str, boxes, eps) -> tuple[torch.Size, torch.dtype]:
    """ratio_iou's checks; returns the broadcast shape and promoted dtype."""
    _checks.check_eps(op, eps)
    for name, t in zip(BOX_NAMES, boxes):
        _checks.check_floating(op, name, t)
    _checks.check_same_device(op, BOX_NAMES, boxes)
    return _checks.broadcast_shape(op, BOX_NAMES, boxes), _checks.promoted_dtype(boxes)


def _registered(qualname: str) -> bool:
    namespace, name = qualname.split("::")
    return hasattr(getattr(torch.ops, namespace), name)


if _registered("super_iou::ratio_iou"):

    @torch.library.register_fake("super_iou::ratio_iou")
    def _ratio_iou_fake(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5):
        shape, dtype = check_boxes("ratio_iou", (x1, y1, w1, h1, x2, y2, w2, h2), eps)
        return x1.new_empty(shape, dtype=dtype)

    @torch.library.register_fake("super_iou::_ratio_iou_backward")
    def _ratio_iou_backward_fake(grad, x1, y1, w1, h1, x2, y2, w2, h2, eps):
        shape, dtype = check_boxes("ratio_iou_backward", (x1, y1, w1, h1, x2, y2, w2, h2), eps)
        return [x1.new_empty(shape, dtype=dtype) for _ in range(8)]
