"""Small models that use torchops through its public API, shared by the
examples, the deployment tests and the C++ example:

- BoxMatcher: a detection-style head that refines predicted boxes and scores
  them against their targets with ratio_iou (loss = mean of 1 - IoU);
- SequenceModel: an RNN that loops torchops.nn.LSTMCell over time;
- DetectionHead: an anchor-free detection head's training step with
  torchops.ops: a GIoU matching cost assigns each location a ground-truth
  box, a CIoU loss trains the boxes of the matched locations.

All are scriptable (torch.jit.script compiles the torchops calls to the ops
torch.ops.super_iou.* / torch.ops.super_lstm.*), traceable, compilable with
fullgraph=True and exportable.
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


class DetectionHead(torch.nn.Module):
    """An anchor-free (FCOS-style) head on a feature map [B, C, H, W]: per
    location the distances (left, top, right, bottom) from its centre to its
    box's sides and an objectness logit. forward(features, gt_boxes [B, G, 4]
    xyxy) returns (loss, cost): the GIoU of every predicted box with every
    ground-truth box is the matching cost [B, H*W, G]; each location takes the
    ground-truth box it overlaps best (no host sync: max and gather, no boolean
    indexing) and is positive where that GIoU is above `match_threshold`; loss =
    CIoU loss over the positives' boxes + objectness BCE."""

    def __init__(self, channels: int = 8, stride: float = 8.0, match_threshold: float = 0.0) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 5, kernel_size=3, padding=1)
        self.stride = stride
        self.match_threshold = match_threshold

    def forward(self, features: Tensor, gt_boxes: Tensor) -> tuple[Tensor, Tensor]:
        out = self.conv(features)
        height, width = out.shape[-2], out.shape[-1]
        ys = (torch.arange(height, dtype=out.dtype, device=out.device) + 0.5) * self.stride
        xs = (torch.arange(width, dtype=out.dtype, device=out.device) + 0.5) * self.stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        cx, cy = cx.reshape(-1), cy.reshape(-1)
        sides = torch.nn.functional.softplus(out[:, :4]).flatten(2).transpose(1, 2) * self.stride  # [B, HW, 4]
        pred = torch.stack((cx - sides[..., 0], cy - sides[..., 1], cx + sides[..., 2], cy + sides[..., 3]), dim=-1)
        cost = torchops.ops.generalized_box_iou(pred.detach(), gt_boxes)
        best, index = cost.max(dim=-1)
        matched = torch.gather(gt_boxes, 1, index.unsqueeze(-1).expand(-1, -1, 4))
        positive = (best > self.match_threshold).to(pred.dtype)
        box_loss = torchops.ops.complete_box_iou_loss(pred, matched, reduction="none")
        box_loss = (box_loss * positive).sum() / positive.sum().clamp(min=1.0)
        objectness = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 4].flatten(1), positive)
        return box_loss + objectness, cost


def random_boxes(count: int, size: float, generator: torch.Generator) -> Tensor:
    """[count, 4] xyxy boxes inside a size x size image."""
    corner = torch.rand(count, 2, generator=generator) * size * 0.7
    extent = (torch.rand(count, 2, generator=generator) * 0.5 + 0.1) * size
    return torch.cat((corner, (corner + extent).clamp(max=size)), dim=-1)


def example_inputs(device: str | torch.device = "cpu", seed: int = 0) -> dict[str, tuple[Tensor, ...]]:
    """Deterministic inputs for both models, by model name."""
    gen = torch.Generator().manual_seed(seed)
    pred = torch.rand(64, 4, generator=gen) * 4
    target = torch.rand(64, 4, generator=gen) * 4
    sequence = torch.randn(6, 4, 8, generator=gen)
    features = torch.randn(2, 8, 6, 6, generator=gen)  # stride 8: a 48 x 48 image
    gt_boxes = torch.stack([random_boxes(3, 48.0, gen) for _ in range(2)])
    return {
        "box_matcher": (pred.to(device), target.to(device)),
        "sequence_model": (sequence.to(device),),
        "detection_head": (features.to(device), gt_boxes.to(device)),
    }


def make_models(device: str | torch.device = "cpu", seed: int = 0) -> dict[str, torch.nn.Module]:
    """The models with deterministic parameters, by name."""
    torch.manual_seed(seed)
    return {"box_matcher": BoxMatcher().to(device), "sequence_model": SequenceModel().to(device),
            "detection_head": DetectionHead().to(device)}
