"""Experiment (GPU machine): device time of the triton lstm_cell kernels under
block shapes other than torchops.triton.ops.LAUNCH's, against native, CUDA-graph
replay. LAUNCH is read at each call, so each config is set before its capture.

    python3 scripts/exp_triton_lstm_launch.py [--budget-s 90]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import torchops
from torchops.triton import ops as tops

CONFIGS = [  # (BLOCK_B, BLOCK_H, num_warps); the first is LAUNCH's today
    (32, 32, 8), (1, 1024, 4), (2, 512, 4), (4, 256, 4), (8, 128, 4), (16, 64, 4),
    (4, 512, 8), (8, 256, 8), (16, 128, 8), (2, 1024, 8), (8, 64, 4), (4, 128, 4),
]


def graph_us(fn, calls=20, replays=10, rounds=5):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(replays):
            graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / (replays * calls))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=90)
    args = parser.parse_args()
    t0 = time.time()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    saved = {k: dict(v) for k, v in tops.LAUNCH.items()}
    for batch, hidden in ((4096, 1024), (16384, 2048)):
        t_size = time.time()
        gen = torch.Generator(device="cuda").manual_seed(0)
        ig = torch.randn(batch, 4 * hidden, device="cuda", generator=gen)
        hg = torch.randn(batch, 4 * hidden, device="cuda", generator=gen)
        cx = torch.randn(batch, hidden, device="cuda", generator=gen)
        bias = torch.randn(4 * hidden, device="cuda", generator=gen)
        ghy, gcy = torch.randn_like(cx), torch.randn_like(cx)
        fwd_native = graph_us(lambda: torch.ops.super_lstm.lstm_cell(ig, hg, cx, bias, bias))
        bwd_native = graph_us(lambda: torch.autograd.grad(
            torchops.lstm_cell(ig.requires_grad_(), hg, cx, bias, bias, backend="native"), ig, (ghy, gcy)))
        ig.requires_grad_(False)
        print(f"({batch}, {hidden}) native forward {fwd_native:8.2f} us, forward+backward (public) {bwd_native:8.2f} us",
              flush=True)
        want_f = tops.lstm_cell_op(ig, hg, cx, bias, bias)
        want_b = tops.lstm_cell_backward_op(ghy, gcy, ig, hg, cx, bias, bias)
        for bb, bh, warps in CONFIGS:
            if time.time() - t_size > args.budget_s / 2:
                print("budget spent, stopping", flush=True)
                break
            cfg = {"BLOCK_B": bb, "BLOCK_H": bh, "num_warps": warps}
            tops.LAUNCH["lstm_cell_forward"] = cfg
            tops.LAUNCH["lstm_cell_backward"] = cfg
            try:
                got_f = tops.lstm_cell_op(ig, hg, cx, bias, bias)
                got_b = tops.lstm_cell_backward_op(ghy, gcy, ig, hg, cx, bias, bias)
                same = all(torch.equal(g, w) for g, w in zip(got_f, want_f)) and all(
                    torch.equal(g, w) for g, w in zip(got_b[:2], want_b[:2]))
                bias_diff = (got_b[2] - want_b[2]).abs().max().item()
                f = graph_us(lambda: tops.lstm_cell_op(ig, hg, cx, bias, bias))
                b = graph_us(lambda: tops.lstm_cell_backward_op(ghy, gcy, ig, hg, cx, bias, bias))
                print(f"  {cfg}: forward {f:8.2f} us ({f / fwd_native:.3f} native), backward op {b:8.2f} us,"
                      f" fwd+bwd ops {(f + b):8.2f} ({(f + b) / bwd_native:.3f} native public), same bits {same},"
                      f" bias max diff {bias_diff:.2e}  [{time.time() - t0:.0f} s]", flush=True)
            except Exception as e:  # noqa: BLE001
                print(f"  {cfg}: failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
        tops.LAUNCH.update({k: dict(v) for k, v in saved.items()})
        del ig, hg, cx, ghy, gcy
        torch.cuda.empty_cache()
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
