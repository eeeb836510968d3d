"""TEMPORARY experiment (GPU machine): ratio_iou native under launch-grid variants of
csrc/common/cuda_elementwise.cuh (TORCHOPS_EXP_GRID, read at each launch, so each CUDA
graph captures its own variant) against torch.compile and triton, device time of CUDA-graph
replays over rotating input sets (so that small sizes are not served from L2).

    python3 scripts/exp_elementwise_grid.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch

import torchops
from torchops.iou import ratio_iou_eager

VARIANTS = {"stride (current)": "", "oneshot": "o", "oneshot+vec": "ov", "stride+vec": "v"}


def graph_us(make_call, sets, calls=20, replays=10, rounds=5):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    fns = [make_call(s) for s in sets]
    with torch.cuda.stream(side):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            fns[i % len(fns)]()
    graph.replay()
    torch.cuda.synchronize()
    out = []
    for _ in range(rounds):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(replays):
            graph.replay()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b) * 1e3 / (replays * calls))
    return out


def main():
    t0 = time.time()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    compiled = torch.compile(ratio_iou_eager)
    impls = {"compile": compiled}
    try:
        import torchops.triton  # noqa: F401
        impls["triton"] = lambda *b: torchops.ratio_iou(*b, backend="triton")
    except Exception as e:  # noqa: BLE001
        print("no triton:", e)
    native = lambda *b: torchops.ratio_iou(*b, backend="native")  # noqa: E731
    for n in (100_000, 1_000_000, 10_000_000, 100_000_000):
        nsets = max(1, min(20, (256 << 20) // (n * 4 * 17)))
        gen = torch.Generator(device="cuda").manual_seed(n)
        sets = [[(torch.rand(n, device="cuda", generator=gen) * 10 + 1).requires_grad_() for _ in range(8)]
                for _ in range(nsets)]
        grads = [torch.ones(n, device="cuda") for _ in range(nsets)]
        for mode in ("fwd", "fwd+bwd"):
            def maker(fn):
                def make(i):
                    boxes = sets[i]
                    if mode == "fwd":
                        return lambda: fn(*[b.detach() for b in boxes])
                    return lambda: torch.autograd.grad(fn(*boxes), boxes, grads[i])
                return make
            ref = None
            for name, fn in impls.items():
                t = statistics.median(graph_us(maker(fn), range(nsets)))
                ref = t if name == "compile" else ref
                print(f"{n:.0e} {mode:8s} {name:18s} {t:9.2f} us", flush=True)
            for name, env in VARIANTS.items():
                os.environ["TORCHOPS_EXP_GRID"] = env
                t = statistics.median(graph_us(maker(native), range(nsets)))
                print(f"{n:.0e} {mode:8s} native {name:11s} {t:9.2f} us  native/compile {t / ref:.3f}", flush=True)
            os.environ["TORCHOPS_EXP_GRID"] = ""
        del sets, grads
        torch.cuda.empty_cache()
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
