"""One PNG per suite: time per call against size, log-log, one line per
implementation, a panel per mode, with the bandwidth limit as a dashed line.
GPU: device time above, call latency below. Re-render from the JSON files with

    python -m benchmarks.plots benchmarks/results/<folder>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.harness import Row

FIGURE_TITLES = {"device": "device time (CUDA graph)", "latency": "call latency (host included)", "wall": "wall time"}


def plot_suite(result: dict, path: Path) -> str | None:
    """Writes the plot; returns None, or why there is none."""
    rows = [Row.from_dict(r) for r in result["rows"] if r["figures"]]
    if len({r.size for r in rows}) < 1 or all(r.x <= 1 for r in rows):
        return "no sizes to plot against"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (python -m benchmarks.plots renders it later from the JSON)"
    cuda = result["env"]["device"] == "cuda"
    figures = ["device", "latency"] if cuda else ["wall"]
    modes = list(dict.fromkeys(r.mode for r in rows))
    fig, axes = plt.subplots(len(figures), len(modes), figsize=(6 * len(modes), 4.2 * len(figures)), squeeze=False)
    impls = list(dict.fromkeys(r.impl for r in rows))
    colours = {name: f"C{i}" for i, name in enumerate(impls)}
    for i, figure in enumerate(figures):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            for impl in impls:
                points = []
                for r in rows:
                    if r.impl != impl or r.mode != mode:
                        continue
                    stats = r.figures.get(figure) or (r.figures.get("stream") if figure == "device" else None)
                    if stats is not None:
                        stream = figure == "device" and "stream" in r.figures
                        points.append((r.x, stats.median, stats.lo, stats.hi, stream))
                if not points:
                    continue
                points.sort()
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                errors = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
                label = impl + (" (stream time: not capturable)" if any(p[4] for p in points) else "")
                ax.errorbar(xs, ys, yerr=errors, marker="o", markersize=3, capsize=2, label=label,
                            color=colours[impl], linestyle="--" if any(p[4] for p in points) else "-")
            if figure in ("device", "wall"):
                limits = sorted({(r.x, r.limit_us) for r in rows if r.mode == mode and r.limit_us})
                if limits:
                    kind = next(r.bandwidth for r in rows if r.mode == mode and r.limit_us)
                    ax.plot([p[0] for p in limits], [p[1] for p in limits], "k:", marker="x", linewidth=1.5,
                            label=f"{kind}-bandwidth limit")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(result.get("x_label", "size"))
            ax.set_ylabel("us per call")
            ax.set_title(f"{result['suite']} {mode}: {FIGURE_TITLES[figure]}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    env = result["env"]
    where = env.get("gpu") or f"{env['cpu_model']}, {env['threads']} threads"
    fig.suptitle(f"{result['suite']}: {where}, torch {env['torch']}, {env['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main(argv: list[str]) -> int:
    for folder in argv or ["benchmarks/results/latest"]:
        for path in sorted(Path(folder).glob("*.json")):
            result = json.loads(path.read_text())
            if "rows" in result:
                why = plot_suite(result, path.with_suffix(".png"))
                print(path.with_suffix(".png"), why or "written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
