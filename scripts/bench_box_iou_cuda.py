"""Device time of the CUDA box_iou kernel against the GPU's write bandwidth (GPU machine).

    python3 scripts/bench_box_iou_cuda.py              # 4000x4000 and 20000x2000, float32 and float16
    python3 scripts/bench_box_iou_cuda.py --sizes 4000x4000 --calls 50 --replays 20

Each case is captured as `--calls` back-to-back calls in one CUDA graph and replayed
`--replays` times between CUDA events (`--repeats` rounds, median and min/max reported), so
host overhead is not in the figure. The references, timed the same way on a buffer of the
output's size: `fill_` (write only: the bar, since box_iou writes N*M floats and reads almost
nothing) and `copy_` (read + write, bytes counted both ways). Box sets: "overlapping" (corners
in [0, 10], sides in [1, 5]: most pairs intersect, as in scripts/profile_gpu.py) and "spread"
(corners in [0, 1000]: most pairs disjoint). Each result is first checked against the eager
reference (same bits expected, NaN where NaN).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import torchops.ops as ops

BAR = 0.85  # issue 11: box_iou at >= 85% of the GPU's write bandwidth for its output


def boxes(n: int, kind: str, seed: int, dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator(device="cuda").manual_seed(seed)
    scale, side = (10.0, (1.0, 4.0)) if kind == "overlapping" else (1000.0, (1.0, 20.0))
    corner = torch.rand(n, 2, generator=gen, device="cuda") * scale
    size = torch.rand(n, 2, generator=gen, device="cuda") * side[1] + side[0]
    return torch.cat([corner, corner + size], dim=1).to(dtype)


def graph_time_us(fn, calls: int, replays: int, repeats: int) -> list[float]:
    """Per-call device time of fn (microseconds), one figure per repeat."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up: lazy initialisation, allocator
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / (replays * calls))
    return times


def summary(times: list[float]) -> tuple[float, str]:
    median = statistics.median(times)
    return median, f"{median:8.2f} us (min {min(times):.2f}, max {max(times):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["4000x4000", "20000x2000"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    parser.add_argument("--kinds", nargs="+", default=["overlapping", "spread"])
    parser.add_argument("--calls", type=int, default=20, help="calls captured in one graph")
    parser.add_argument("--replays", type=int, default=10, help="graph replays per timed round")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median reported)")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with the eager reference")
    args = parser.parse_args()

    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}, {props.multi_processor_count} SMs, torch {torch.__version__} (CUDA {torch.version.cuda})")
    print(f"graph of {args.calls} calls x {args.replays} replays, median of {args.repeats} rounds\n")

    references: dict[int, float] = {}
    for size in args.sizes:
        n, m = (int(v) for v in size.split("x"))
        out_bytes = n * m * 4  # float32 output for every input dtype
        if out_bytes not in references:
            buf = torch.empty(n * m, device="cuda")
            src = torch.empty_like(buf).normal_()
            fill_us, fill_text = summary(graph_time_us(lambda: buf.fill_(1.0), args.calls, args.replays, args.repeats))
            copy_us, copy_text = summary(graph_time_us(lambda: buf.copy_(src), args.calls, args.replays, args.repeats))
            fill_bw, copy_bw = out_bytes / fill_us / 1e3, 2 * out_bytes / copy_us / 1e3
            references[out_bytes] = fill_bw
            print(f"{out_bytes / 1e6:.0f} MB  fill_ {fill_text}  {fill_bw:7.0f} GB/s write")
            print(f"{out_bytes / 1e6:.0f} MB  copy_ {copy_text}  {copy_bw:7.0f} GB/s read+write")
            del buf, src
        fill_bw = references[out_bytes]
        for dtype_name in args.dtypes:
            dtype = getattr(torch, dtype_name)
            for kind in args.kinds:
                a, b = boxes(n, kind, 0, dtype), boxes(m, kind, 1, dtype)
                check = ""
                if not args.no_check:
                    got = ops.box_iou(a, b, backend="native")
                    expected = ops.box_iou(a, b, backend="eager")
                    same = (got == expected) | (got.isnan() & expected.isnan())
                    bad = int((~same).sum())
                    check = "  same bits as eager" if bad == 0 else f"  {bad} ELEMENTS DIFFER FROM EAGER"
                    del got, expected, same
                us, text = summary(graph_time_us(lambda: ops.box_iou(a, b, backend="native"),
                                                 args.calls, args.replays, args.repeats))
                bw = out_bytes / us / 1e3
                share = bw / fill_bw
                verdict = "meets" if share >= BAR else "below"
                print(f"box_iou {size:>10} {dtype_name:8} {kind:11} {text}  {bw:7.0f} GB/s  "
                      f"{100 * share:5.1f}% of fill_ ({verdict} the {100 * BAR:.0f}% bar, "
                      f"<= {out_bytes / (BAR * fill_bw) / 1e3:.1f} us){check}")
        print()


if __name__ == "__main__":
    main()
