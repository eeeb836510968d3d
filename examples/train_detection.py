"""A detection training step with torchops.ops: the anchor-free head of
examples/models.py (a GIoU matching cost assigns each location a ground-truth
box; a CIoU loss trains the matched boxes), trained for a few steps with each
backend from the same weights, then scripted and exported, and the saved
models checked against the trained one.

    python examples/train_detection.py [--steps 30] [--device cpu|cuda] [--out DIR]

Each line: the backend, its loss before -> after, and whether the scripted
(TorchScript) and exported (torch.export) reloads give the trained model's
loss.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torchops  # noqa: E402
from models import DetectionHead, random_boxes  # noqa: E402


def batch(gen: torch.Generator, device: str, images: int = 4, boxes: int = 5):
    """Features of a 64 x 64 image at stride 8 (an 8 x 8 map) and its ground-truth boxes."""
    features = torch.randn(images, 8, 8, 8, generator=gen)
    gt_boxes = torch.stack([random_boxes(boxes, 64.0, gen) for _ in range(images)])
    return features.to(device), gt_boxes.to(device)


def train(backend: str, steps: int, device: str) -> tuple[DetectionHead, list[float]]:
    torch.manual_seed(0)
    model = DetectionHead().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    gen = torch.Generator().manual_seed(1)
    losses = []
    with torchops.use_backend(backend):
        for _ in range(steps):
            loss, _ = model(*batch(gen, device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return model, losses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("detection_head_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's own, on new torch
    args.out.mkdir(parents=True, exist_ok=True)
    for backend in ("eager", "script", "native", "auto"):
        model, losses = train(backend, args.steps, args.device)
        inputs = batch(torch.Generator().manual_seed(2), args.device)
        with torch.no_grad():
            expected = model(*inputs)[0]
        scripted_path = args.out / f"detection_head_{backend}.pt"
        torch.jit.save(torch.jit.script(model), str(scripted_path))  # calls torch.ops.super_iou.*
        exported_path = args.out / f"detection_head_{backend}.pt2"
        torch.export.save(torch.export.export(model, inputs), exported_path)
        with torch.no_grad():
            scripted = torch.jit.load(str(scripted_path), map_location=args.device)(*inputs)[0]
            exported = torch.export.load(exported_path).module()(*inputs)[0]
        print(f"{backend:7s} loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
              f"scripted matches: {torch.allclose(scripted, expected, atol=1e-5)}; "
              f"exported matches: {torch.allclose(exported, expected, atol=1e-5)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
