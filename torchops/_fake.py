"""Fake (meta) kernels of the torchops ops, for torch.compile and torch.export.
They repeat the C++ argument checks and compute output shapes and dtypes
without touching data, from the ops' declarations: those of
torchops._declared (every op of a declaration: the op, the workspace form's
training forward, the backward op) and the box family's (torchops.boxes
BOX_OPS). The C++ library names this module (set_python_module);
torchops._library imports it after loading, and torchops._declared.declare
gives an op declared after that its fake kernels."""

from __future__ import annotations

import torch

from torchops import _checks, _declared

_registered_fakes: set[str] = set()  # qualnames of the declarations given fake kernels


def _registered(qualname: str) -> bool:
    namespace, name = qualname.split("::")
    return hasattr(getattr(torch.ops, namespace), name)


def _positional(names, args, kwargs) -> tuple:
    """A call's arguments in schema order (an argument passed by name included)."""
    if not kwargs:
        return args
    rest = names[len(args):]
    given = [i for i, name in enumerate(rest) if name in kwargs]
    return (*args, *(kwargs.get(name) for name in rest[:given[-1] + 1])) if given else args


def register_declared(decl: _declared.Op) -> None:
    """The fake kernels of every op of declaration `decl`, once (where the
    library defines them)."""
    if decl.qualname in _registered_fakes or not _registered(decl.qualname):
        return
    _registered_fakes.add(decl.qualname)

    def outputs(args, kwargs, training: bool):
        inputs, optional, scalars = decl.split(_positional(decl.parameter_names, args, kwargs))
        shape, dtype = decl.check(decl.name, inputs, scalars, optional)
        shapes = decl.outputs(shape) + ([decl.workspace.shape(shape)] if training else [])
        out = [inputs[0].new_empty(s, dtype=dtype) for s in shapes]
        return out[0] if len(out) == 1 else tuple(out)

    torch.library.register_fake(decl.qualname)(lambda *args, **kwargs: outputs(args, kwargs, False))
    if decl.workspace is None:
        n = len(decl.arg_names)

        def backward(grad, *args):
            shape, dtype = decl.check_backward(grad, args[:n], decl.scalars(args))
            return [args[0].new_empty(shape, dtype=dtype) for _ in range(n)]
    else:
        torch.library.register_fake(decl.training_qualname)(lambda *args, **kwargs: outputs(args, kwargs, True))
        k, v = decl.output_count, len(decl.saved_names)

        def backward(*args):
            grads, saved, scalars = args[:k], args[k:k + v], args[k + v:]
            shape, dtype = decl.check_workspace_backward(grads, saved)
            return tuple(saved[-1].new_empty(s, dtype=dtype) for s in decl.workspace.result_shapes(shape, *scalars))

    torch.library.register_fake(decl.backward_qualname)(backward)


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


def register_all() -> None:
    """Every declared op's fake kernels not given yet, and the box family's."""
    for op in list(_declared.DECLARED.values()):
        register_declared(op.decl)
    if "super_iou::paired_box_iou" not in _registered_fakes and _registered("super_iou::paired_box_iou"):
        _registered_fakes.add("super_iou::paired_box_iou")
        _register_box_op_fakes()


register_all()
