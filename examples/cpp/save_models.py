"""Saves what the C++ example runs: the example models scripted
(box_matcher.pt, sequence_model.pt, detection_head.pt), their AOTInductor
packages (.pt2) and their inputs (inputs.pt).

    python examples/cpp/save_models.py MODEL_DIR [--device cpu|cuda] [--no-aoti]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from models import example_inputs, make_models  # noqa: E402


def save_models(directory: str | Path, device: str = "cpu", aoti: bool = True) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    models, inputs = make_models(device), example_inputs(device)
    for name, model in models.items():
        torch.jit.save(torch.jit.script(model), str(directory / f"{name}.pt"))
        if aoti:
            program = torch.export.export(model, inputs[name])
            torch._inductor.aoti_compile_and_package(program, package_path=str(directory / f"{name}.pt2"))
    pred, target = inputs["box_matcher"]
    (sequence,) = inputs["sequence_model"]
    features, gt_boxes = inputs["detection_head"]
    tensors = {"pred": pred, "target": target, "sequence": sequence, "features": features, "gt_boxes": gt_boxes}
    torch.save({k: v.cpu() for k, v in tensors.items()}, directory / "inputs.pt")
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-aoti", action="store_true")
    args = parser.parse_args()
    print(save_models(args.directory, args.device, aoti=not args.no_aoti))
