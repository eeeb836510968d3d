"""Issue 13's bar: the triton backend within 1.10x of native (device time:
the call captured in a CUDA graph and replayed), forward and
forward+backward, at sizes where the op moves at least 64 MB. GPU only:

    python scripts/triton_vs_native.py     (scripts/device_run.sh plug-bench)
"""

from __future__ import annotations

import statistics

import torch

import torchops
import torchops.ops as ops

BAR = 1.10


def device_time_us(fn, reps: int = 20) -> float:
    """Median time of one replay of `fn` captured in a CUDA graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return statistics.median(times)


def cases():
    for n in (2_000_000, 10_000_000, 100_000_000):  # 36 bytes per box pair forward
        boxes = [torch.rand(n, device="cuda") * 4 for _ in range(8)]
        yield f"ratio_iou n={n:.0e}", lambda b, boxes=boxes: torchops.ratio_iou(*boxes, backend=b), boxes
    for batch, hidden in ((4096, 1024), (16384, 2048)):  # 44 bytes per unit forward
        gates = [torch.randn(batch, 4 * hidden, device="cuda") for _ in range(2)]
        state = [torch.randn(batch, hidden, device="cuda"), torch.randn(4 * hidden, device="cuda"),
                 torch.randn(4 * hidden, device="cuda")]
        inputs = [*gates, *state]
        yield (f"lstm_cell ({batch}, {hidden})",
               lambda b, inputs=inputs: torchops.lstm_cell(*inputs, backend=b), inputs)
    for name in ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"):
        for n in (2_000_000, 20_000_000):  # 36 bytes per pair forward
            xy = torch.rand(2, n, 2, device="cuda") * 10
            pairs = [torch.cat([xy[i], xy[i] + torch.rand(n, 2, device="cuda") + 0.1], -1) for i in range(2)]
            yield (f"{name} n={n:.0e}", lambda b, pairs=pairs, name=name: getattr(ops, name)(*pairs, backend=b),
                   pairs)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; device time per call, CUDA graph replay")
    print("| case | pass | native us | triton us | triton/native | within 1.10x |")
    print("|---|---|---|---|---|---|")
    for label, call, inputs in cases():
        for mode in ("forward", "forward+backward"):
            grad_inputs = [t.requires_grad_(mode != "forward") for t in inputs]
            times = {}
            for backend in ("native", "triton"):
                if mode == "forward":
                    def fn(backend=backend):
                        with torch.no_grad():
                            call(backend)
                else:
                    def fn(backend=backend):
                        out = call(backend)
                        out = out if isinstance(out, tuple) else (out,)
                        torch.autograd.grad([o.sum() for o in out], grad_inputs)
                times[backend] = device_time_us(fn)
            ratio = times["triton"] / times["native"]
            print(f"| {label} | {mode} | {times['native']:.1f} | {times['triton']:.1f} | {ratio:.3f} | "
                  f"{'yes' if ratio <= BAR else '**no**'} |", flush=True)
        for t in inputs:
            t.requires_grad_(False)


if __name__ == "__main__":
    main()
