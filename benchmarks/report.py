"""Result files: per suite <suite>.json (everything), <suite>.md (tables and
bars) and <suite>.png (benchmarks/plots.py); per folder summary.md, the bars
of every suite recorded there."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import plots
from benchmarks.harness import Row, Stats

TIME_FIGURES = (("device", "device us"), ("stream", "device us"), ("latency", "call latency us"), ("wall", "wall us"))


def cell(stats: Stats | None, marker: str = "") -> str:
    if stats is None:
        return "-"
    return f"{stats.median:.1f}{marker} [{stats.lo:.1f}-{stats.hi:.1f}]"


def environment_lines(env: dict, bandwidth: dict, floor: dict | None, load_end: str | None = None) -> list[str]:
    cpu = (f"CPU {env['cpu_model']}, ATen CPU capability {env['aten_cpu_capability']}, torchops CPU capability "
           f"{env['torchops_cpu_capability']}, {env['threads']} threads"
           + (f", malloc: {env['malloc']}" if env.get("malloc") else ""))
    lines = [f"- GPU {env['gpu']} (driver {env.get('driver') or 'unknown'}, CUDA {env.get('cuda')}, "
             f"{env.get('sms')} SMs); host {cpu}" if env["device"] == "cuda" else f"- {cpu}"]
    lines += [
        f"- torch {env['torch']}, triton {env.get('triton') or 'not installed'}, torchvision "
        f"{env.get('torchvision') or 'not installed'}, Python {env['python']}",
        f"- {env['date']}, commit {env['git_commit']}, load average {env['load_average']} at the start"
        + (f", {load_end} at the end" if load_end else ""),
        f"- measured bandwidth: copy {bandwidth['copy']:.1f} GB/s (bytes read + written), write "
        f"{bandwidth['write']:.1f} GB/s (fill)",
    ]
    if floor:
        lines.append(f"- autograd floor (call latency of x * 2 forward+backward, 1000 elements): "
                     f"{cell(Stats.from_dict(floor))} us")
    return lines


def suite_markdown(result: dict) -> str:
    rows = [Row.from_dict(r) for r in result["rows"]]
    env, cuda = result["env"], result["env"]["device"] == "cuda"
    settings = result["settings"]
    out = [
        f"# {result['suite']} on {env['device']}",
        "",
        *environment_lines(env, result["bandwidth_gbs"], result.get("autograd_floor_us"),
                           result.get("load_average_end")),
        f"- method: median microseconds per call [min-max] of {settings['repeats']} interleaved repeats "
        "(benchmarks/harness.py). " + (
            "device: CUDA-graph replays timed with CUDA events; call latency: wall time of back-to-back calls, "
            "host included." if cuda else "wall: wall time per call of back-to-back calls.")
        + " % of bw: the fewest bytes the op must move at the measured bandwidth, over the time.",
        "",
    ]
    threads = sorted({r.threads for r in rows if r.threads})
    if threads and threads != [env["threads"]]:
        ran = ", ".join(map(str, threads))
        out.insert(-1, f"- this suite's cases ran at {ran} thread(s), not the run's {env['threads']}")
    figures = ["device", "latency"] if cuda else ["wall"]
    has_memory = any(r.peak_bytes is not None for r in rows)
    header = ["size", "mode", "impl"] + [
        {"device": "device us", "latency": "call latency us", "wall": "wall us"}[f] for f in figures
    ] + ["% of bw", "first call s"] + (["peak MB"] if has_memory else []) + ["correct"]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 4) + "---|"]
    footnotes = []
    previous = None
    for r in rows:
        if (r.size, r.mode) != previous and r.limit_us is not None:
            bandwidth = r.bandwidth
            limit = [f"{r.limit_us:.1f}"] + ["-"] * (len(figures) - 1)
            out.append(f"| {r.size} | {r.mode} | *{bandwidth}-bandwidth limit ({r.bytes_moved / 1e6:.1f} MB)* | "
                       + " | ".join(limit) + " | 100% | - |" + (" - |" if has_memory else "") + " - |")
        previous = (r.size, r.mode)
        if r.not_measured:
            out.append(f"| {r.size} | {r.mode} | {r.impl} | not measured: {r.not_measured} |"
                       + " |" * (len(header) - 4))
            continue
        cells = []
        for f in figures:
            if f == "device" and "stream" in r.figures:
                footnotes.append(f"{r.impl} at {r.size} {r.mode}: {r.device_note}")
                cells.append(cell(r.figures["stream"], "*"))
            else:
                cells.append(cell(r.figures.get(f)))
        pct = r.pct_of_bandwidth()
        cells.append("-" if pct is None else f"{pct:.0f}%")
        cells.append("-" if r.first_call_s is None else f"{r.first_call_s:.2f}")
        if has_memory:
            cells.append("-" if r.peak_bytes is None else f"{r.peak_bytes / 2**20:.1f}")
        cells.append(r.correct or "-")
        out.append(f"| {r.size} | {r.mode} | {r.impl} | " + " | ".join(cells) + " |")
    if footnotes:
        out += ["", "\\* not capturable in a CUDA graph; its stream time (CUDA events around back-to-back calls, an "
                "upper bound of the device time) is shown instead:"] + [f"- {n}" for n in dict.fromkeys(footnotes)]
    if has_memory:
        notes = {r.memory_note for r in rows if r.memory_note}
        how = "; ".join(sorted(notes)) if notes else "torch.cuda.max_memory_allocated"
        out += ["", f"peak MB: memory one call allocates at its peak above what was allocated before, output "
                f"included ({how})."]
    if result.get("plot"):
        out += ["", f"![{result['suite']}]({result['plot']})"]
    elif result.get("plot_note"):
        out += ["", f"No plot: {result['plot_note']}."]
    if result["bars"]:
        out += ["", "## Bars", ""] + bars_table(result["bars"])
    if result.get("notes"):
        out += [""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(out) + "\n"


def bars_table(verdicts: list[dict]) -> list[str]:
    lines = ["| issue | bar | measured [spread] | verdict | note |", "|---|---|---|---|---|"]
    for v in verdicts:
        verdict = v["verdict"] if v["verdict"] == "met" else f"**{v['verdict']}**"
        lines.append(f"| {v['issue']} | {v['claim']} | {v['shown']} | {verdict} | {v['note']} |")
    return lines


def write_suite(result: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / result["suite"]
    png = stem.with_name(stem.name + ".png")
    plot_note = plots.plot_suite(result, png)
    result["plot"], result["plot_note"] = (png.name, None) if plot_note is None else (None, plot_note)
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    md_path.write_text(suite_markdown(result))
    return [p for p in (json_path, md_path, png) if p.exists()]


def write_summary(directory: Path) -> Path:
    """summary.md: the environment and the bars of every suite result in `directory`."""
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if "suite" in data and "rows" in data:
            results.append(data)
    out = [f"# Benchmark results in {directory.name}", ""]
    if not results:
        out.append("No results here yet.")
    tally: dict[str, int] = {}
    for data in results:
        out += [f"## {data['suite']} ({data['env']['date']}, commit {data['env']['git_commit']})", ""]
        out += environment_lines(data["env"], data["bandwidth_gbs"], data.get("autograd_floor_us"),
                                 data.get("load_average_end"))
        out += ["", f"Tables: [{data['suite']}.md]({data['suite']}.md)", ""]
        if data["bars"]:
            out += bars_table(data["bars"]) + [""]
        for v in data["bars"]:
            key = v["verdict"].split(" (")[0]
            tally[key] = tally.get(key, 0) + 1
    if tally:
        out.insert(2, "Bars: " + ", ".join(f"{n} {k}" for k, n in sorted(tally.items())) + ".\n")
    path = directory / "summary.md"
    path.write_text("\n".join(out) + "\n")
    return path


def main(argv: list[str]) -> int:
    """python -m benchmarks.report FOLDER...: rewrites each suite's .md and .png
    and the folder's summary.md from the JSON files (e.g. after unpacking
    results of several device calls into one folder)."""
    for folder in map(Path, argv or ["benchmarks/results/latest"]):
        for path in sorted(folder.glob("*.json")):
            result = json.loads(path.read_text())
            if "rows" in result:
                write_suite(result, folder)
        print(write_summary(folder))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
