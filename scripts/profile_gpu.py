"""Where the device time of one call goes, kernel by kernel (GPU machine).

    python3 scripts/profile_gpu.py kernels CASE...   # torch.profiler: each CUDA kernel of one call, device us
    ncu --nvtx --nvtx-include "profile/" ... python3 scripts/profile_gpu.py ncu CASE...

CASE is one of the names in CASES (op, size, mode, implementation). `ncu`
mode runs each case twice to warm up and then once inside an NVTX range
"profile", so an ncu filter on that range sees exactly one call's kernels.
"""

from __future__ import annotations

import sys

import torch

import torchops
import torchops.ops as ops
from torchops.iou import ratio_iou_eager


def boxes(n: int, seed: int, requires_grad: bool = False) -> torch.Tensor:
    gen = torch.Generator(device="cuda").manual_seed(seed)
    corner = torch.rand(n, 2, generator=gen, device="cuda") * 10
    size = torch.rand(n, 2, generator=gen, device="cuda") * 4 + 1
    return torch.cat([corner, corner + size], dim=1).requires_grad_(requires_grad)


def pairwise(n: int, m: int, backend: str, name: str = "box_iou"):
    a, b = boxes(n, 0), boxes(m, 1)
    fn = getattr(ops, name)
    return lambda: fn(a, b, backend=backend)


def loss_training(name: str, n: int, backend: str):
    a, b = boxes(n, 0, True), boxes(n, 1, True)
    grad = torch.rand(n, device="cuda")
    fn = getattr(ops, name)
    return lambda: torch.autograd.grad(fn(a, b, backend=backend), (a, b), grad)


def ratio_training(n: int, impl: str):
    gen = torch.Generator(device="cuda").manual_seed(0)
    xs = [(torch.rand(n, generator=gen, device="cuda") * (10 if k % 4 < 2 else 4) + (0 if k % 4 < 2 else 1))
          .requires_grad_() for k in range(8)]
    grad = torch.rand(n, device="cuda")
    fn = torch.compile(ratio_iou_eager) if impl == "compile" else (
        lambda *x: torchops.ratio_iou(*x, backend=impl))
    return lambda: torch.autograd.grad(fn(*xs), xs, grad)


CASES = {
    "box_iou-4000x4000-native": lambda: pairwise(4000, 4000, "native"),
    "box_iou-20000x2000-native": lambda: pairwise(20000, 2000, "native"),
    "generalized_box_iou-4000x4000-native": lambda: pairwise(4000, 4000, "native", "generalized_box_iou"),
    "complete_box_iou-4000x4000-native": lambda: pairwise(4000, 4000, "native", "complete_box_iou"),
    "giou-1e7-train-native": lambda: loss_training("generalized_box_iou_loss", 10**7, "native"),
    "ciou-1e7-train-native": lambda: loss_training("complete_box_iou_loss", 10**7, "native"),
    "ciou-1e7-train-triton": lambda: loss_training("complete_box_iou_loss", 10**7, "triton"),
    "ratio-1e5-train-native": lambda: ratio_training(10**5, "native"),
    "ratio-1e5-train-compile": lambda: ratio_training(10**5, "compile"),
    "ratio-1e7-train-native": lambda: ratio_training(10**7, "native"),
    "ratio-1e7-train-compile": lambda: ratio_training(10**7, "compile"),
}


def kernels(name: str) -> None:
    call = CASES[name]()
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.device_time for e in events)
    print(f"== {name}: {len(events)} device events, {total:.1f} us")
    for e in events:
        print(f"   {e.device_time:9.1f} us  {e.name[:150]}")


def ncu(name: str) -> None:
    call = CASES[name]()
    call()
    call()
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_push("profile")
    call()
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()


if __name__ == "__main__":
    mode, names = sys.argv[1], sys.argv[2:]
    for case in names:
        (kernels if mode == "kernels" else ncu)(case)
