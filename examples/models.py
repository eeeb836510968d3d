"""Two small models that use torchops through its public API, shared by the
examples, the deployment tests and the C++ example:

- BoxMatcher: a detection-style head that refines predicted boxes and scores
  them against their targets with ratio_iou (loss = mean of 1 - IoU);
- SequenceModel: an RNN that loops torchops.nn.LSTMCell over time.

Both are scriptable (torch.jit.script compiles the torchops calls to the ops
torch.ops.super_iou.ratio_iou / torch.ops.super_lstm.lstm_cell), traceable,
compilable with fullgraph=True and exportable.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

import torchops
import torchops.nn


class BoxMatcher(torch.nn.Module):
    """(loss, iou) of refined boxes [N, 4] = (x, y, w, h) against targets [N, 4]."""

    def __init__(self) -> None:
        super().__init__()
        self.refine = torch.nn.Linear(4, 4)

    def forward(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        boxes = pred + self.refine(pred)
        x, y = boxes[:, 0], boxes[:, 1]
        # sizes stay positive, as a detector's exp/softplus head would make them
        w, h = torch.nn.functional.softplus(boxes[:, 2]), torch.nn.functional.softplus(boxes[:, 3])
        iou = torchops.ratio_iou(x, y, w, h, target[:, 0], target[:, 1], target[:, 2], target[:, 3])
        return (1 - iou).mean(), iou


class SequenceModel(torch.nn.Module):
    """Runs torchops.nn.LSTMCell over x [T, B, input_size] and maps the last
    hidden state to [B, output_size]."""

    def __init__(self, input_size: int = 8, hidden_size: int = 16, output_size: int = 4,
                 backend: Optional[str] = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = torchops.nn.LSTMCell(input_size, hidden_size, backend=backend)
        self.head = torch.nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.zeros(x.size(1), self.hidden_size, dtype=x.dtype, device=x.device)
        c = torch.zeros_like(h)
        for step in range(x.size(0)):
            h, c = self.cell(x[step], (h, c))
        return self.head(h)


def example_inputs(device: str | torch.device = "cpu", seed: int = 0) -> dict[str, tuple[Tensor, ...]]:
    """Deterministic inputs for both models, by model name."""
    gen = torch.Generator().manual_seed(seed)
    pred = torch.rand(64, 4, generator=gen) * 4
    target = torch.rand(64, 4, generator=gen) * 4
    sequence = torch.randn(6, 4, 8, generator=gen)
    return {
        "box_matcher": (pred.to(device), target.to(device)),
        "sequence_model": (sequence.to(device),),
    }


def make_models(device: str | torch.device = "cpu", seed: int = 0) -> dict[str, torch.nn.Module]:
    """Both models with deterministic parameters, by name."""
    torch.manual_seed(seed)
    return {"box_matcher": BoxMatcher().to(device), "sequence_model": SequenceModel().to(device)}
