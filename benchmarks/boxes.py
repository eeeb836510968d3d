"""The box IoU family against torchvision.ops, float32 xyxy boxes:

- the paired losses (generalized/distance/complete_box_iou_loss, reduction
  "none" against a random upstream gradient) over N pairs of boxes, forward and
  forward+backward;
- pairwise box_iou, [N, 4] x [M, 4] -> [N, M], forward, with the peak memory of
  one call (its backward is rarely needed and not timed).

Implementations: torchvision.ops' function, torch.compile of it, torchops.ops'
function with backend eager / script / native (and triton where torchops has
it). torchops' eager is the reference the others are checked against."""

from __future__ import annotations

import torch

import torchops.ops
from torchops.testing._torchvision import torchvision_box_ops

from benchmarks.harness import FORWARD, MODES, Case, Settings, compiled, fmt_size, torchops_impls

LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
PAIRWISE = "box_iou"
LOSS_X_LABEL = "box pairs"
PAIRWISE_X_LABEL = "N x M box pairs"
LOSS_SIZES = {"cpu": [10**3, 10**5, 10**6], "cuda": [10**3, 10**5, 10**6, 10**7]}
LOSS_QUICK = {"cpu": [10**5], "cuda": [10**6]}
PAIRWISE_SIZES = {"cpu": [(1000, 1000), (4000, 4000)], "cuda": [(1000, 1000), (4000, 4000), (20000, 2000)]}
PAIRWISE_QUICK = {"cpu": [(1000, 1000)], "cuda": [(4000, 4000)]}
LOSS_DRY, PAIRWISE_DRY = [256], [(64, 48)]
LOSS_FORWARD_BYTES = 9 * 4    # read two boxes (8 floats), write the loss
LOSS_TRAINING_BYTES = 26 * 4  # and then read both boxes and the upstream gradient, write 8 gradients


def make_boxes(n: int, device: str, seed: int, requires_grad: bool = False) -> torch.Tensor:
    """n xyxy boxes with corners in [0, 10) and sides in [1, 5): no degenerate ones."""
    gen = torch.Generator(device=device).manual_seed(seed)
    corner = torch.rand(n, 2, generator=gen, device=device) * 10
    size = torch.rand(n, 2, generator=gen, device=device) * 4 + 1
    return torch.cat([corner, corner + size], dim=1).requires_grad_(requires_grad)


def _impls(name: str, settings: Settings, backends=("eager", "script", "native", "triton")) -> dict:
    tv = torchvision_box_ops()
    if tv is None:
        peers = dict.fromkeys(("torchvision", "compile(torchvision)"), "torchvision is not installed")
    else:
        peers = {"torchvision": getattr(tv, name), "compile(torchvision)": compiled(getattr(tv, name), settings)}
    fn = getattr(torchops.ops, name)
    ours = torchops_impls(lambda backend: (lambda a, b: fn(a, b, backend=backend)), settings.device, backends)
    return {**peers, **ours}


def loss_cases(name: str, settings: Settings) -> list[Case]:
    device = settings.device
    sizes = settings.sizes(LOSS_SIZES, LOSS_QUICK, LOSS_DRY)
    return [
        Case(name, fmt_size(n), n, mode, _impls(name, settings),
             make_inputs=lambda seed, rg, n=n: [make_boxes(n, device, 2 * seed, rg),
                                                make_boxes(n, device, 2 * seed + 1, rg)],
             input_bytes=8 * 4 * n, reference="eager", tolerance=1e-4,
             bytes_moved=n * (LOSS_FORWARD_BYTES if mode == FORWARD else LOSS_TRAINING_BYTES))
        for n in sizes for mode in MODES
    ]


def pairwise_cases(settings: Settings) -> list[Case]:
    device = settings.device
    sizes = settings.sizes(PAIRWISE_SIZES, PAIRWISE_QUICK, PAIRWISE_DRY)
    return [
        Case(PAIRWISE, f"{n}x{m}", n * m, FORWARD,
             _impls(PAIRWISE, settings, ("eager", "script", "native")),  # triton: the paired losses only
             make_inputs=lambda seed, rg, n=n, m=m: [make_boxes(n, device, 2 * seed),
                                                     make_boxes(m, device, 2 * seed + 1)],
             input_bytes=4 * 4 * (n + m) + 4 * n * m,  # the output counts: it is what a call streams through
             reference="eager", tolerance=1e-4, measure_memory=True,
             bytes_moved=4 * n * m, bandwidth="write")  # the N x M output, at the write bandwidth
        for n, m in sizes
    ]


def pairwise_notes(rows: list) -> list[str]:
    """The pairwise call's peak memory against torchvision's, per size."""
    notes = []
    for size in dict.fromkeys(r.size for r in rows):
        peaks = {r.impl: r.peak_bytes for r in rows if r.size == size and r.peak_bytes is not None}
        if "native" in peaks and peaks.get("torchvision"):
            notes.append(f"peak memory at {size}: native {peaks['native'] / 2**20:.1f} MB, torchvision "
                         f"{peaks['torchvision'] / 2**20:.1f} MB ({peaks['native'] / peaks['torchvision']:.2f}x)")
    return notes
