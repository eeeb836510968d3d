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

from torchops import _backends, _checks, _fake, _library, _registry

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


def _native(input_gates, hidden_gates, cx, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
    """The native backend: the op checks its arguments (and handles autocast);
    the Python checks run only where it fails, for their clearer words about
    Python types."""
    try:
        return torch.ops.super_lstm.lstm_cell.default(input_gates, hidden_gates, cx, b_ih, b_hh)
    except (TypeError, RuntimeError):
        _check_arguments(input_gates, hidden_gates, cx, b_ih, b_hh)
        raise


def _make_native_eager():
    """_native outside torch.compile and torch.export, with the op looked up once."""
    op = _library.op_caller(OP)

    def native(input_gates, hidden_gates, cx, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
        try:
            return op(input_gates, hidden_gates, cx, b_ih, b_hh)
        except (TypeError, RuntimeError):
            _check_arguments(input_gates, hidden_gates, cx, b_ih, b_hh)
            raise

    return native


def _check_arguments(input_gates, hidden_gates, cx, b_ih, b_hh) -> None:
    for name, t in (("input_gates", input_gates), ("hidden_gates", hidden_gates), ("cx", cx)):
        _checks.check_is_tensor("lstm_cell", name, t)
    _fake.check_lstm("lstm_cell", input_gates, hidden_gates, cx, b_ih, b_hh)


def run_python(compute, args) -> tuple[Tensor, Tensor]:
    """`compute(*args)` after the checks, under lstm_cell's autocast policy:
    the eager and script backends, and any implementation in Python that
    wants the same behaviour."""
    _check_arguments(*args)
    device = args[0].device
    if _checks.autocast_enabled(device):
        # PyTorch's policy for aten::lstm_cell (see csrc/super_lstm/autocast/):
        # the autocast dtype on CUDA; on the CPU nothing is cast (mixed dtypes promote)
        if device.type == "cuda":
            dtype = torch.get_autocast_dtype(device.type)
            args = tuple(None if t is None else t.to(dtype) if t.dtype != torch.float64 else t for t in args)
        with torch.autocast(device.type, enabled=False):
            return compute(*args)
    return compute(*args)


def _eager(input_gates, hidden_gates, cx, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
    return run_python(lstm_cell_eager, (input_gates, hidden_gates, cx, b_ih, b_hh))


def _script(input_gates, hidden_gates, cx, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
    return run_python(_backends.python_implementation("script", lstm_cell_eager),
                      (input_gates, hidden_gates, cx, b_ih, b_hh))


_registry.declare_op("lstm_cell", OP, lstm_cell)
_registry.register_builtin("lstm_cell", {"eager": _eager, "script": _script, "native": _native},
                          make_eager={"native": _make_native_eager})

# In torch.jit.script-ed code, torchops.lstm_cell(...) compiles to the op.
_backends.script_as_op(lstm_cell, "super_lstm::lstm_cell")
