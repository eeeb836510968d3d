"""lstm_cell: the pointwise part of an LSTM cell, fused.

The eager function defines the op: gate order i, f, g, o along the last
dimension (PyTorch's convention), ``gates = input_gates + hidden_gates + b_ih +
b_hh`` added in that order, activations and cell update as in torch.nn.LSTMCell.
The script backend is this source compiled by TorchScript; the native kernels
compute it in one pass (float math for float16/bfloat16 inputs).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from torchops import _backends, _checks, _declared, _fake

OP = "super_lstm::lstm_cell"


def lstm_cell_eager(
    input_gates: Tensor,
    hidden_gates: Tensor,
    cx: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """The reference: plain PyTorch ops."""
    gates = input_gates + hidden_gates
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    # gates.chunk(4, -1), written as unbind: TorchScript's symbolic gradient of
    # chunk returns wrongly shaped gradients once the graph is re-specialized
    i, f, g, o = gates.unflatten(-1, (4, -1)).unbind(-2)
    i = torch.sigmoid(i)
    f = torch.sigmoid(f)
    g = torch.tanh(g)
    o = torch.sigmoid(o)
    cy = f * cx + i * g
    hy = o * torch.tanh(cy)
    return hy, cy


def lstm_cell(
    input_gates: Tensor,
    hidden_gates: Tensor,
    cx: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    *,
    backend: Optional[str] = None,
) -> tuple[Tensor, Tensor]:
    """(hy, cy) of an LSTM cell from its gate pre-activations.

    ``input_gates = x @ W_ih^T`` and ``hidden_gates = h @ W_hh^T`` are [B, 4H]
    (or [4H] unbatched), gate order i, f, g, o; ``cx`` is [B, H] (or [H]); the
    biases are [4H] or None. Floating dtypes on one device; mixed dtypes
    promote as in the eager expression (hy and cy in the promoted dtype).
    Gradients flow to every input (double backward is not supported by the
    native op). Under autocast it follows PyTorch's policy for
    aten::lstm_cell, the cell torch.nn.LSTMCell calls: on CUDA it runs in the
    autocast dtype; on the CPU nothing is cast (autocast's lower-precision
    gates with a float32 cx give float32 hy and cy, as torch.nn.LSTMCell does).
    """
    return _backends.implementation("lstm_cell", backend, input_gates)(input_gates, hidden_gates, cx, b_ih, b_hh)


def _check_arguments(args) -> None:
    input_gates, hidden_gates, cx, b_ih, b_hh = args
    for name, t in (("input_gates", input_gates), ("hidden_gates", hidden_gates), ("cx", cx)):
        _checks.check_is_tensor("lstm_cell", name, t)
    _fake.check_lstm("lstm_cell", input_gates, hidden_gates, cx, b_ih, b_hh)


def _autocast(device: torch.device, args: tuple) -> tuple:
    """PyTorch's policy for aten::lstm_cell (LstmCellDecl::kAutocast in csrc/super_lstm/lstm_cell.h):
    the autocast dtype on CUDA; on the CPU nothing is cast (mixed dtypes promote)."""
    if device.type != "cuda":
        return args
    dtype = torch.get_autocast_dtype(device.type)
    return tuple(None if t is None else t.to(dtype) if t.dtype != torch.float64 else t for t in args)


# Backends, backend selection and the TorchScript mapping (calls of
# lstm_cell in scripted code compile to the op).
_op = _declared.declare("lstm_cell", OP, lstm_cell, lstm_cell_eager, _check_arguments, autocast=_autocast)


def run_python(compute, args) -> tuple[Tensor, Tensor]:
    """`compute(*args)` after the checks, under lstm_cell's autocast policy:
    for implementations in Python that want the eager backend's behaviour."""
    return _op.run_python(compute, args)
