"""torchops.nn.LSTMCell: a drop-in for torch.nn.LSTMCell whose pointwise part
runs through torchops.lstm_cell (fused). Same parameters, initialisation and
state_dict keys, so a torch.nn.LSTMCell's state_dict loads as it is."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from torchops.lstm import lstm_cell

__all__ = ["LSTMCell"]


def _check_like_aten(input: Tensor, hx: tuple[Tensor, Tensor], input_size: int, hidden_size: int) -> None:
    """aten::lstm_cell's shape checks (RuntimeError, its messages); hx is
    (h, c) after torch.nn.LSTMCell's unsqueeze of unbatched states."""
    if input.size(1) != input_size:
        raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {input_size}")
    for label, state in enumerate(hx):
        if input.size(0) != state.size(0):
            raise RuntimeError(
                f"Input batch size {input.size(0)} doesn't match hidden{label} batch size {state.size(0)}"
            )
        if state.size(1) != hidden_size:
            raise RuntimeError(
                f"hidden{label} has inconsistent hidden_size: got {state.size(1)}, expected {hidden_size}"
            )


class LSTMCell(torch.nn.LSTMCell):
    """torch.nn.LSTMCell(input_size, hidden_size, bias=True, device=None, dtype=None)
    with the gates fused. ``backend`` picks the implementation like the
    functions (None: the process-wide choice). Scripted, it calls
    torch.ops.super_lstm.lstm_cell (the native op) directly."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None,
                 backend: Optional[str] = None) -> None:
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self.backend = backend

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor]:
        # The checks of torch.nn.LSTMCell.forward, then those of aten::lstm_cell,
        # in their order, with their messages and exception types
        # (tests/test_lstm_cell.py compares them case by case).
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            if not torch.jit.is_scripting() and not isinstance(hx, (tuple, list)):
                raise TypeError(
                    f"lstm_cell(): argument 'hx' (position 2) must be tuple of Tensors, not {type(hx).__name__}"
                )
            for idx, value in enumerate(hx):
                if value.dim() not in (1, 2):
                    raise ValueError(f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {value.dim()}D instead")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = torch.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
            h, c = zeros, zeros
        else:
            if not torch.jit.is_scripting():
                # torch.nn.LSTMCell takes hx[0] and hx[1] of unbatched states
                # (IndexError for one), and aten::lstm_cell wants exactly two
                if not batched and len(hx) < 2:
                    raise IndexError("tuple index out of range")
                if batched and len(hx) != 2:
                    raise RuntimeError("lstm_cell expects two hidden states")
            h, c = (hx[0], hx[1]) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        if not torch.jit.is_tracing():  # a trace freezes the shapes; checks would only warn
            _check_like_aten(input, (h, c), self.input_size, self.hidden_size)
        if input.dtype != self.weight_ih.dtype or h.dtype != self.weight_hh.dtype:
            # torch.nn.LSTMCell's dtype errors come from the matmuls inside
            # aten::lstm_cell (their wording depends on the bias): let it raise them
            torch.lstm_cell(input, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        input_gates = F.linear(input, self.weight_ih)
        hidden_gates = F.linear(h, self.weight_hh)
        if torch.jit.is_scripting():
            hy, cy = torch.ops.super_lstm.lstm_cell(input_gates, hidden_gates, c, self.bias_ih, self.bias_hh)
        else:
            hy, cy = self._fused(input_gates, hidden_gates, c)
        if not batched:
            hy, cy = hy.squeeze(0), cy.squeeze(0)
        return hy, cy

    @torch.jit.unused
    def _fused(self, input_gates: Tensor, hidden_gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        return lstm_cell(input_gates, hidden_gates, c, self.bias_ih, self.bias_hh, backend=self.backend)
