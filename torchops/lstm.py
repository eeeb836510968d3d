"""lstm_cell: the pointwise part of an LSTM cell, fused.

The eager function defines the op: gate order i, f, g, o along the last
dimension (PyTorch's convention), ``gates = input_gates + hidden_gates + b_ih +
b_hh`` added in that order, activations and cell update as in torch.nn.LSTMCell.
The script backend is this source compiled by TorchScript; the native kernels
compute it in one pass (float math for float16/bfloat16 inputs).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from torchops import _backends, _declared

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


# --- the declaration: the twin of LstmCellDecl (csrc/super_lstm/lstm_cell.h) ------------------

class LstmShape(NamedTuple):
    """The shape of a call (LstmShape): gates [batch, 4 * hidden], cx [batch,
    hidden]; `batched`: the caller passed 2-D tensors."""

    batch: int
    hidden: int
    batched: bool

    def rows(self, width) -> list:
        """A [batch, width] result in the caller's layout ([width] unbatched)."""
        return [self.batch, width] if self.batched else [width]


def _check_shapes(op: str, inputs, optional) -> LstmShape:
    """LstmCellDecl::check_shapes, in its order."""
    input_gates, hidden_gates, cx = inputs
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
    batched = input_gates.dim() == 2
    shape = LstmShape(input_gates.shape[0] if batched else 1, width // 4, batched)
    if list(cx.shape) != shape.rows(shape.hidden):
        raise ValueError(
            f"{op}: expected cx of shape {shape.rows(shape.hidden)} (input_gates is {list(input_gates.shape)}), "
            f"but got {list(cx.shape)}"
        )
    for name, bias in zip(("b_ih", "b_hh"), optional):
        if bias is not None and (bias.dim() != 1 or bias.shape[0] != width):
            raise ValueError(f"{op}: expected {name} of shape [{width}] (4 * hidden_size), but got {list(bias.shape)}")
    return shape


def _check_workspace(op: str, grads, saved) -> LstmShape:
    """LstmCellDecl::Workspace::prepare's checks, in its order."""
    cx, workspace = saved
    if cx.dim() not in (1, 2):
        raise ValueError(f"{op}: expected cx of shape [B, H] or [H], but got {list(cx.shape)}")
    shape = LstmShape(cx.shape[0] if cx.dim() == 2 else 1, cx.shape[-1], cx.dim() == 2)
    if list(workspace.shape) != shape.rows(4 * shape.hidden):
        raise ValueError(
            f"{op}: expected workspace of shape {shape.rows(4 * shape.hidden)} (cx is {list(cx.shape)}), "
            f"but got {list(workspace.shape)}"
        )
    for name, grad in zip(("grad_hy", "grad_cy"), grads):
        if grad is not None and grad.shape != cx.shape:
            raise ValueError(f"{op}: expected {name} of the shape of cx {list(cx.shape)}, but got {list(grad.shape)}")
    return shape


DECL = _declared.Op(
    OP, ("input_gates", "hidden_gates", "cx"), optional_names=("b_ih", "b_hh"), output_names=("hy", "cy"),
    check_shapes=_check_shapes, output_shapes=lambda shape: [shape.rows(shape.hidden)] * 2,
    workspace=_declared.Workspace(
        saved_args=(2,), scalar_names=("has_bias",), shape=lambda shape: shape.rows(4 * shape.hidden),
        check=_check_workspace,
        # the gates' gradient (for both gate inputs), cx's, and the bias's ([0] without biases)
        result_shapes=lambda shape, has_bias: [shape.rows(4 * shape.hidden), shape.rows(shape.hidden),
                                               [4 * shape.hidden if has_bias else 0]]),
)


def _autocast(device: torch.device, args: tuple) -> tuple:
    """PyTorch's policy for aten::lstm_cell (LstmCellDecl::kAutocast in csrc/super_lstm/lstm_cell.h):
    the autocast dtype on CUDA; on the CPU nothing is cast (mixed dtypes promote)."""
    if device.type != "cuda":
        return args
    dtype = torch.get_autocast_dtype(device.type)
    return tuple(None if t is None else t.to(dtype) if t.dtype != torch.float64 else t for t in args)


# Backends, backend selection and the TorchScript mapping (calls of
# lstm_cell in scripted code compile to the op).
_op = _declared.declare("lstm_cell", lstm_cell, lstm_cell_eager, DECL, autocast=_autocast)


def run_python(compute, args) -> tuple[Tensor, Tensor]:
    """`compute(*args)` after the checks, under lstm_cell's autocast policy:
    for implementations in Python that want the eager backend's behaviour."""
    return _op.run_python(compute, args)
