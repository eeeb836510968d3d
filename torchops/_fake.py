"""Fake (meta) kernels of the torchops ops, for torch.compile and torch.export.
They repeat the C++ argument checks and compute output shapes and dtypes
without touching data. The C++ library names this module
(set_python_module), and torchops._library imports it after loading."""

from __future__ import annotations

import torch

from torchops import _checks, _declared

def check_boxes(op: str, boxes, eps) -> tuple[torch.Size, torch.dtype]:
    """ratio_iou's checks; returns the broadcast shape and promoted dtype."""
    from torchops import iou

    return iou.DECL.check(op, boxes, (eps,))


def check_lstm(op: str, input_gates, hidden_gates, cx, b_ih, b_hh) -> tuple[int, int, torch.dtype]:
    """lstm_cell's checks, in the order of the C++ ones (declared::Op::prepare,
    then LstmCellDecl::check_shapes); returns (batch, hidden, the promoted
    dtype the op computes and returns in)."""
    names, tensors = ["input_gates", "hidden_gates", "cx"], [input_gates, hidden_gates, cx]
    for name, bias in (("b_ih", b_ih), ("b_hh", b_hh)):
        if bias is not None:
            names.append(name)
            tensors.append(bias)
    for name, t in zip(names, tensors):
        _checks.check_floating(op, name, t)
    _checks.check_same_device(op, names, tensors)
    if input_gates.dim() not in (1, 2):
        raise ValueError(f"{op}: expected input_gates of shape [B, 4H] or [4H], but got {list(input_gates.shape)}")
    width = input_gates.shape[-1]
    if width % 4 != 0:
        raise ValueError(
            f"{op}: expected the last dimension of input_gates to be 4 * hidden_size, "
            f"but got {width}, which is not a multiple of 4"
        )
    if hidden_gates.shape != input_gates.shape:
        raise ValueError(
            f"{op}: expected hidden_gates of the shape of input_gates {list(input_gates.shape)}, "
            f"but got {list(hidden_gates.shape)}"
        )
    hidden = width // 4
    expected_cx = [*input_gates.shape[:-1], hidden]
    if list(cx.shape) != expected_cx:
        raise ValueError(
            f"{op}: expected cx of shape {expected_cx} (input_gates is {list(input_gates.shape)}), "
            f"but got {list(cx.shape)}"
        )
    for name, bias in (("b_ih", b_ih), ("b_hh", b_hh)):
        if bias is not None and (bias.dim() != 1 or bias.shape[0] != width):
            raise ValueError(f"{op}: expected {name} of shape [{width}] (4 * hidden_size), but got {list(bias.shape)}")
    batch = input_gates.shape[0] if input_gates.dim() == 2 else 1
    return batch, hidden, _checks.promoted_dtype(tensors)


def check_lstm_backward(grad_hy, grad_cy, cx, workspace) -> torch.dtype:
    """_lstm_cell_backward's checks, in the order of the C++ ones (declared::Op,
    then LstmCellDecl::Workspace::prepare)."""
    op = "lstm_cell_backward"
    for name, t in (("cx", cx), ("workspace", workspace)):
        _checks.check_is_tensor(op, name, t)
        _checks.check_floating(op, name, t)
    names, tensors = ["cx", "workspace"], [cx, workspace]
    for name, grad in (("grad_hy", grad_hy), ("grad_cy", grad_cy)):
        if grad is not None:
            _checks.check_floating(op, name, grad)
            names.append(name)
            tensors.append(grad)
    _checks.check_same_device(op, names, tensors)
    if cx.dim() not in (1, 2):
        raise ValueError(f"{op}: expected cx of shape [B, H] or [H], but got {list(cx.shape)}")
    expected = [*cx.shape[:-1], 4 * cx.shape[-1]]
    if list(workspace.shape) != expected:
        raise ValueError(
            f"{op}: expected workspace of shape {expected} (cx is {list(cx.shape)}), "
            f"but got {list(workspace.shape)}"
        )
    for name, grad in (("grad_hy", grad_hy), ("grad_cy", grad_cy)):
        if grad is not None and grad.shape != cx.shape:
            raise ValueError(f"{op}: expected {name} of the shape of cx {list(cx.shape)}, but got {list(grad.shape)}")
    return torch.promote_types(cx.dtype, workspace.dtype)


def _registered(qualname: str) -> bool:
    namespace, name = qualname.split("::")
    return hasattr(getattr(torch.ops, namespace), name)


def register_pointwise_fakes(decl: _declared.Pointwise) -> None:
    """Fake kernels of a declared pointwise op and its backward op (here: the
    libraries name this module as the place of their fake kernels)."""
    n = len(decl.arg_names)

    def fake(*args):
        shape, dtype = decl.check(decl.name, args[:n], decl.scalars(args))
        return args[0].new_empty(shape, dtype=dtype)

    def backward_fake(grad, *args):
        shape, dtype = decl.check_backward(grad, args[:n], decl.scalars(args))
        return [args[0].new_empty(shape, dtype=dtype) for _ in range(n)]

    torch.library.register_fake(decl.qualname)(fake)
    torch.library.register_fake(decl.backward_qualname)(backward_fake)


if _registered("super_iou::ratio_iou"):
    from torchops import iou as _iou

    register_pointwise_fakes(_iou.DECL)


if _registered("super_lstm::lstm_cell"):

    @torch.library.register_fake("super_lstm::lstm_cell")
    def _lstm_cell_fake(input_gates, hidden_gates, cx, b_ih=None, b_hh=None):
        _, _, dtype = check_lstm("lstm_cell", input_gates, hidden_gates, cx, b_ih, b_hh)
        return cx.new_empty(cx.shape, dtype=dtype), cx.new_empty(cx.shape, dtype=dtype)

    @torch.library.register_fake("super_lstm::_lstm_cell_forward")
    def _lstm_cell_forward_fake(input_gates, hidden_gates, cx, b_ih=None, b_hh=None):
        hy, cy = _lstm_cell_fake(input_gates, hidden_gates, cx, b_ih, b_hh)
        return hy, cy, input_gates.new_empty(input_gates.shape, dtype=hy.dtype)

    @torch.library.register_fake("super_lstm::_lstm_cell_backward")
    def _lstm_cell_backward_fake(grad_hy, grad_cy, cx, workspace, has_bias):
        dtype = check_lstm_backward(grad_hy, grad_cy, cx, workspace)
        grad_bias = workspace.new_empty([workspace.shape[-1] if has_bias else 0], dtype=dtype)
        return (
            workspace.new_empty(workspace.shape, dtype=dtype),
            cx.new_empty(cx.shape, dtype=dtype),
            grad_bias,
        )


def _register_box_op_fakes() -> None:
    """Fake kernels of the box IoU family's ops (torchops/boxes.py BOX_OPS),
    with the checks of csrc/super_iou/box_iou.cpp."""
    from torchops import boxes

    def forward_fake(name):
        def fake(boxes1, boxes2, eps=1e-7, fmt="xyxy"):
            boxes._check_boxes(name, boxes1, boxes2, fmt, eps)
            shape = boxes.pair_shape(name, boxes1, boxes2)
            return boxes1.new_empty(shape, dtype=boxes.out_dtype(boxes1, boxes2))

        return fake

    def backward_fake(name):
        op = boxes.BOX_OPS[name].backward_name.removeprefix("_")

        def fake(grad, boxes1, boxes2, eps, fmt):
            _checks.check_is_tensor(op, "grad", grad)
            boxes._check_boxes(op, boxes1, boxes2, fmt, eps)
            shape = boxes.pair_shape(op, boxes1, boxes2)
            _checks.check_floating(op, "grad", grad)
            _checks.check_same_device(op, ("boxes1", "grad"), (boxes1, grad))
            _declared._check_expandable(op, "grad", grad, shape)
            dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
            return tuple(boxes1.new_empty((*shape, 4), dtype=dtype) for _ in range(2))

        return fake

    for name in boxes.BOX_OPS:
        torch.library.register_fake(f"super_iou::{name}")(forward_fake(name))
        torch.library.register_fake(f"super_iou::{boxes.BOX_OPS[name].backward_name}")(backward_fake(name))


if _registered("super_iou::paired_box_iou"):
    _register_box_op_fakes()
