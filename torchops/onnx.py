"""ONNX export of models that use torchops ops.

torch.onnx.export's dynamo exporter translates each op of the exported graph
to ONNX; ours are not in its tables. Two ways in:

    import torchops.onnx
    onnx_program = torchops.onnx.export(model, args)   # every torchops op

exports the model (torch.export), replaces each torchops op by its eager
reference (decompositions(): the same function the eager backend runs, so
nothing is written twice) and hands that program to torch.onnx.export.
For ratio_iou and lstm_cell there are also hand-written translations, for
models that go through torch.onnx.export directly:

    torch.onnx.export(model, args, dynamo=True,
                      custom_translation_table=torchops.onnx.custom_translation_table())

Needs onnxscript (and onnxruntime to run the result). The ONNX graphs compute
in the inputs' dtype (the native kernels compute float16/bfloat16 in
float32), so export float32 or float64 models for the closest match.
"""

from __future__ import annotations

from typing import Callable

import torch

from torchops import _library

__all__ = ["custom_translation_table", "decompositions", "export"]


def _ratio_iou(x1, y1, w1, h1, x2, y2, w2, h2, eps: float = 1e-5):
    from onnxscript import opset18 as op

    inter_w = op.Max(op.Sub(op.Min(op.Add(x1, w1), op.Add(x2, w2)), op.Max(x1, x2)), op.CastLike(0.0, x1))
    inter_h = op.Max(op.Sub(op.Min(op.Add(y1, h1), op.Add(y2, h2)), op.Max(y1, y2)), op.CastLike(0.0, y1))
    inter = op.Mul(inter_w, inter_h)
    union = op.Sub(op.Add(op.Mul(w1, h1), op.Mul(w2, h2)), inter)
    return op.Div(inter, op.Max(union, op.CastLike(eps, union)))


def _lstm_cell(input_gates, hidden_gates, cx, b_ih=None, b_hh=None):
    from onnxscript import opset18 as op

    gates = op.Add(input_gates, hidden_gates)
    if b_ih is not None:
        gates = op.Add(gates, b_ih)
    if b_hh is not None:
        gates = op.Add(gates, b_hh)
    i, f, g, o = op.Split(gates, axis=-1, num_outputs=4)
    cy = op.Add(op.Mul(op.Sigmoid(f), cx), op.Mul(op.Sigmoid(i), op.Tanh(g)))
    hy = op.Mul(op.Sigmoid(o), op.Tanh(cy))
    return hy, cy


def custom_translation_table() -> dict[torch._ops.OpOverload, Callable]:
    """{op overload: ONNX translation} for torch.onnx.export(..., dynamo=True)."""
    _library.ensure_loaded(build=True)
    return {
        torch.ops.super_iou.ratio_iou.default: _ratio_iou,
        torch.ops.super_lstm.lstm_cell.default: _lstm_cell,
    }


def decompositions() -> dict[torch._ops.OpOverload, Callable]:
    """{op overload: its eager reference} for every torchops op, for
    ExportedProgram.run_decompositions."""
    from torchops import _declared, boxes

    _library.ensure_loaded(build=True)
    table: dict[torch._ops.OpOverload, Callable] = {op.overload(): op.eager for op in _declared.DECLARED.values()}
    for op in boxes.BOX_OPS.values():
        table[getattr(torch.ops.super_iou, op.name).default] = boxes.eager_op(op)
    return table


def export(model: torch.nn.Module, args: tuple, **kwargs):
    """torch.onnx.export of `model` with its torchops ops as their eager
    references; kwargs go to torch.onnx.export. Returns its ONNXProgram."""
    program = torch.export.export(model, args).run_decompositions(decompositions())
    return torch.onnx.export(program, args, dynamo=True, **kwargs)
