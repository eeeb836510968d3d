"""ratio_iou over n boxes (eight float32 tensors of n elements): the plain
function, under torch.jit.script and torch.compile, and torchops native (and
triton where torchops has it), forward and forward+backward."""

from __future__ import annotations

import torch

import torchops
from torchops.iou import ratio_iou_eager

from benchmarks.harness import MODES, Case, Settings, compiled, fmt_size, scripted, torchops_impls

OP = "ratio_iou"
X_LABEL = "boxes (elements per input)"
SIZES = {"cpu": [10**5, 10**6, 10**7], "cuda": [10**3, 10**5, 10**6, 10**7, 10**8]}
QUICK = {"cpu": [10**5], "cuda": [10**5]}  # a graph of 32 input sets
DRY = [1000]
FORWARD_BYTES = 9 * 4    # read 8 float32 inputs, write 1 output
TRAINING_BYTES = 26 * 4  # and then read 8 inputs + grad, write 8 grads


def make_boxes(n: int, device: str, seed: int, requires_grad: bool) -> list[torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(seed)
    xy = [torch.rand(n, generator=gen, device=device) * 10 for _ in range(4)]
    wh = [torch.rand(n, generator=gen, device=device) * 4 + 1 for _ in range(4)]
    boxes = [xy[0], xy[1], wh[0], wh[1], xy[2], xy[3], wh[2], wh[3]]
    return [b.requires_grad_(requires_grad) for b in boxes]


def torchops_fn(backend: str):
    """torchops.ratio_iou(..., backend=backend), as users call it."""
    return lambda *boxes: torchops.ratio_iou(*boxes, backend=backend)


def cases(settings: Settings) -> list[Case]:
    device = settings.device
    sizes = settings.sizes(SIZES, QUICK, DRY)
    out = []
    for n in sizes:
        for mode in MODES:
            impls = {
                "eager": ratio_iou_eager,
                "script": scripted(ratio_iou_eager),
                "compile": compiled(ratio_iou_eager, settings),
                **torchops_impls(torchops_fn, device),
            }
            out.append(Case(
                OP, fmt_size(n), n, mode, impls,
                make_inputs=lambda seed, rg, n=n: make_boxes(n, device, seed, rg),
                input_bytes=8 * 4 * n,
                bytes_moved=n * (FORWARD_BYTES if mode == MODES[0] else TRAINING_BYTES),
            ))
    return out
