"""A small sequence model that loops torchops.nn.LSTMCell over time, trained
for a few steps with each backend, then scripted and saved.

The task: from a sequence of 8-dim vectors, predict the running mean of its
first 4 features at the last step. Every backend starts from the same weights
and should reach (nearly) the same loss.

    python examples/train_sequence.py [--steps 50] [--device cpu|cuda] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torchops  # noqa: E402
from models import SequenceModel  # noqa: E402


def batch(gen: torch.Generator, device: str, steps: int = 12, size: int = 32):
    x = torch.randn(steps, size, 8, generator=gen).to(device)
    return x, x[..., :4].mean(0)


def train(backend: str, steps: int, device: str) -> tuple[SequenceModel, list[float]]:
    torch.manual_seed(0)
    model = SequenceModel(input_size=8, hidden_size=32, output_size=4, backend=backend).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x, target = batch(gen, device)
        loss = torch.nn.functional.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("sequence_model_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's own, on new torch
    args.out.mkdir(parents=True, exist_ok=True)
    for backend in ("eager", "script", "native", "auto"):
        model, losses = train(backend, args.steps, args.device)
        scripted = torch.jit.script(model)  # the cell compiles to torch.ops.super_lstm.lstm_cell
        path = args.out / f"sequence_model_{backend}.pt"
        torch.jit.save(scripted, str(path))
        x, _ = batch(torch.Generator().manual_seed(2), args.device)
        same = torch.allclose(torch.jit.load(str(path), map_location=args.device)(x), model(x), atol=1e-5)
        print(f"{backend:7s} loss {losses[0]:.4f} -> {losses[-1]:.4f}; saved {path} (reloaded outputs match: {same})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
