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
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            for idx, value in enumerate(hx):
                if value.dim() != input.dim():
                    raise ValueError(
                        f"LSTMCell: Expected hx[{idx}] to be {input.dim()}D, got {value.dim()}D instead"
                    )
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = torch.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
            h, c = zeros, zeros
        else:
            h, c = (hx[0], hx[1]) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
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
