"""The benchmark harness's logic (benchmarks/): interleaving, statistics, bar
verdicts, where results go, and a --dry-run of every suite on the CPU. No
timing is asserted anywhere: only what the harness does with the numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import bars, harness, report, run
from benchmarks.harness import FORWARD, TRAINING, Case, Row, Settings, Stats

ROOT = Path(__file__).resolve().parent.parent


# --- interleaving and statistics ----------------------------------------------------------

def test_interleave_is_round_robin_with_rotation():
    calls = []

    def sampler(name):
        return lambda: calls.append(name) or {"wall": float(len(calls))}

    out = harness.interleave({n: sampler(n) for n in "abc"}, repeats=4)
    assert calls == list("abc" "bca" "cab" "abc")  # never one implementation's repeats back to back
    assert {n: len(out[n]["wall"].samples) for n in "abc"} == {"a": 4, "b": 4, "c": 4}
    assert out["a"]["wall"].samples == [1.0, 6.0, 8.0, 10.0]


def test_stats_median_spread_and_round_trip():
    s = Stats([5.0, 1.0, 3.0, 4.0, 2.0])
    assert (s.median, s.lo, s.hi) == (3.0, 1.0, 5.0)
    assert s.iqr == (2.0, 4.0)
    assert Stats.from_dict(s.to_dict()).samples == s.samples
    assert Stats([7.0]).iqr == (7.0, 7.0)


def test_progress_line_counts_and_estimates():
    p = harness.Progress(4)
    assert p.line("x").startswith("[1/4 0:00 elapsed, ~? total] x")
    p.finish()
    assert p.line("y").startswith("[2/4 ")


# --- verdicts -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind, threshold, subject, against, verdict", [
    ("ratio", 1.0, [9, 9.5, 10], [10, 10.5, 11], "met"),                  # 0.95 at the median, <= 1 at both ends
    ("ratio", 1.0, [12, 12.5, 13], [10, 10.5, 11], "not met"),
    ("ratio", 1.0, [9, 10.2, 12], [10, 10.5, 11], "within spread (median: met)"),
    ("ratio", 1.0, [9, 11, 12], [10, 10.5, 11], "within spread (median: not met)"),
    ("speedup", 5.0, [10, 10, 10], [60, 61, 62], "met"),
    ("speedup", 5.0, [10, 10, 10], [40, 41, 42], "not met"),
    ("speedup", 5.0, [9, 10, 11], [48, 52, 56], "within spread (median: met)"),
    ("difference", 1.0, [5.5, 5.6, 5.7], [5.0, 5.0, 5.1], "met"),
    ("difference", 1.0, [8.0, 8.6, 9.0], [5.0, 5.7, 6.0], "not met"),
    ("difference", 1.0, [5.0, 6.5, 8.0], [5.0, 5.7, 6.0], "within spread (median: met)"),
])
def test_judge_values(kind, threshold, subject, against, verdict):
    text, value, best, worst = bars.judge_values(kind, threshold, Stats(subject), Stats(against))
    assert text == verdict
    assert min(best, worst) <= value <= max(best, worst)


def test_judge_bandwidth_fraction():
    assert bars.judge_values("bandwidth", 0.85, Stats([100, 103, 105]), limit_us=90)[0] == "met"  # 86-90%
    assert bars.judge_values("bandwidth", 0.85, Stats([100, 110, 120]), limit_us=90)[0].startswith("within")
    assert bars.judge_values("bandwidth", 0.85, Stats([120, 125, 130]), limit_us=90)[0] == "not met"


def _row(impl, us, size="1e6", mode=FORWARD, op="ratio_iou", figure="device", bytes_moved=100 << 20, **kw):
    return Row(op, size, 1e6, mode, impl, figures={figure: Stats(list(us))}, bytes_moved=bytes_moved, **kw)


def test_judge_fastest_peer_missing_and_fallbacks():
    bar = bars.Bar(14, "cuda", "ratio_iou", "native", "ratio", 1.03, bars.PEERS, (FORWARD,), min_bytes=bars.MB64)
    rows = [_row("eager", [50, 51, 52]), _row("compile", [10, 10.1, 10.2]), _row("native", [10, 10.1, 10.2]),
            _row("triton", [1, 1, 1]),  # ours: never a peer
            _row("eager", [5, 5, 5], size="1e3", bytes_moved=36_000),
            _row("native", [9, 9, 9], size="1e3", bytes_moved=36_000)]
    (verdict,) = bars.judge(bar, rows)  # 1e3 moves < 64 MB: not judged
    assert verdict.size == "1e6" and verdict.text == "met" and "fastest peer: compile" in verdict.note

    bar = bars.Bar(13, "cuda", "ratio_iou", "triton", "ratio", 1.1, "native", (FORWARD,), ("1e8",))
    missing = [Row("ratio_iou", "1e8", 1e8, FORWARD, "triton", not_measured="torchops has no 'triton' backend")]
    assert bars.judge(bar, missing)[0].text == "not measured (triton: torchops has no 'triton' backend)"
    assert bars.judge(bar, [])[0].text == "not measured (ratio_iou 1e8 forward not in this run)"

    # a peer that could not be captured is judged on its stream time, and the note says so
    bar = bars.Bar(11, "cuda", "ratio_iou", "native", "speedup", 5.0, "torchvision", (FORWARD,), ("1e6",))
    rows = [_row("native", [10, 10, 10]), _row("torchvision", [80, 80, 80], figure="stream")]
    (verdict,) = bars.judge(bar, rows)
    assert verdict.text == "met" and "stream time" in verdict.note

    # the autograd floor and the thread count the bar is set for
    bar = bars.Bar(14, "cpu", "host_overhead", "x public", "ratio", 2.0, bars.FLOOR, (TRAINING,), threads=1)
    rows = [_row("x public", [30, 30, 30], op="host_overhead", size="tiny", mode=TRAINING, figure="wall", threads=2)]
    assert bars.judge(bar, rows)[0].text == "not measured (autograd floor not measured)"
    (verdict,) = bars.judge(bar, rows, floor=Stats([20, 20, 20]))
    assert verdict.text == "met" and "judged at 2 threads" in verdict.note


def test_every_bar_names_a_suite_and_implementations_it_measures():
    settings = Settings("cpu", dry_run=True)
    impls_of: dict[str, set] = {}
    for suite in run.SUITES.values():
        for case in suite.cases(settings):
            found = case.impls() if callable(case.impls) else case.impls
            impls_of.setdefault(case.op, set()).update(found)
    impls_of["lstm_cell"].add("aten fused")  # CUDA only
    for op in ("ratio_iou", "lstm_cell", *run.boxes.LOSSES):
        impls_of[op].add("triton")  # CUDA only, where torchops has it
    for bar in bars.BARS:
        assert bar.op in impls_of, bar
        named = [bar.impl] + (list(bar.against) if isinstance(bar.against, tuple) else
                              [bar.against] if bar.against not in (None, bars.PEERS, bars.FLOOR) else [])
        assert set(named) <= impls_of[bar.op], (bar, named)
        assert bar.describe("1e6", FORWARD)


# --- one case, with stand-in implementations ------------------------------------------------

def test_run_case_reports_every_implementation():
    def make(seed, requires_grad):
        gen = torch.Generator().manual_seed(seed)
        return [torch.rand(64, generator=gen).requires_grad_(requires_grad) for _ in range(2)]

    def boom(a, b):
        raise ValueError("no kernel for this")

    impls = {"ref": lambda a, b: a * b, "same": lambda a, b: b * a, "wrong": lambda a, b: a * b + 1,
             "broken": boom, "absent": "not built here"}
    settings = Settings("cpu", repeats=3, sample_s=0.0005)
    for mode in (FORWARD, TRAINING):
        case = Case("toy", "64", 64, mode, impls, make_inputs=make, input_bytes=512, bytes_moved=64 * 12)
        rows = {r.impl: r for r in harness.run_case(case, settings, {"copy": 10.0, "write": 10.0}, log=lambda _: None)}
        assert list(rows) == list(impls)
        assert rows["ref"].correct == "reference" and rows["same"].correct == "ok"
        assert rows["wrong"].correct.startswith("differs")
        assert rows["broken"].not_measured.startswith("failed: ValueError: no kernel for this")
        assert rows["absent"].not_measured == "not built here" and not rows["absent"].figures
        for name in ("ref", "same", "wrong"):
            assert len(rows[name].figures["wall"].samples) == 3
            assert rows[name].first_call_s is not None and rows[name].pct_of_bandwidth() > 0
        assert rows["ref"].limit_us == pytest.approx(64 * 12 / 10e3)


def test_input_sets_cover_twice_the_cache():
    case = Case("toy", "s", 1, FORWARD, {}, make_inputs=lambda s, r: [], input_bytes=4 << 20)
    assert harness.input_sets(case, Settings("cpu")) == 32
    case.input_bytes = 48 << 20
    assert harness.input_sets(case, Settings("cpu")) == 3
    assert harness.input_sets(case, Settings("cpu", dry_run=True)) == 1


def test_peak_memory_on_the_cpu_counts_intermediates():
    x = torch.rand(1 << 18)  # 1 MiB
    peak, note = harness.peak_bytes(lambda: (x * 2 + 1).sum(), "cpu")
    assert peak is not None and peak >= 2 << 20, note  # x * 2 and the sum's input, alive together


# --- where results go, which suites run ------------------------------------------------------

def test_output_folder_and_suite_choice(monkeypatch):
    monkeypatch.delenv("BENCH_OPS", raising=False)
    tag = harness.device_tag("cpu")
    args = run.parse(["--device", "cpu"])
    assert run.output_dir(args) == run.RESULTS / "latest" / tag
    assert args.suites == [n for n, s in run.SUITES.items() if s.default]
    assert run.output_dir(run.parse(["--device", "cpu", "--record"])) == run.RESULTS / tag
    monkeypatch.setenv("BENCH_OPS", "ratio_iou,boxes")
    assert run.parse(["--device", "cpu"]).suites == ["ratio_iou", *run.boxes.LOSSES, "box_iou"]
    assert run.parse(["--device", "cpu", "--ops", "lstm"]).suites == ["lstm_cell", "nn.LSTMCell"]
    with pytest.raises(SystemExit):
        run.parse(["--device", "cpu", "--ops", "no_such_op"])


def test_latest_results_are_not_tracked():
    ignored = subprocess.run(["git", "check-ignore", "-q", "benchmarks/results/latest/cpu-x/ratio_iou.json"],
                             cwd=ROOT, capture_output=True)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0


def test_source_loaded_torchvision_functions_have_an_importable_module():
    from torchops.testing._torchvision import torchvision_box_ops

    tv = torchvision_box_ops()
    if tv is None:
        pytest.skip("torchvision is not installed")
    assert tv.box_iou.__module__ in sys.modules  # torch.compile looks globals up there


def test_dry_run_of_every_suite_writes_results(tmp_path):
    """The whole benchmark end to end on the CPU, at tiny sizes, 1 repeat;
    torch.compile with aot_eager (Dynamo and AOT autograd, no C++ code
    generation) keeps it to seconds."""
    out = tmp_path / "results"
    env = {**os.environ, "BENCH_OPS": "all,compiled_models", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--dry-run", "--device", "cpu", "--out", str(out),
                           "--compile-backend", "aot_eager"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "elapsed" in proc.stdout and "Bars (cpu" in proc.stdout
    for name in run.SUITES:
        data = json.loads((out / f"{name}.json").read_text())
        assert data["env"]["cpu_model"] and data["env"]["aten_cpu_capability"] and data["env"]["git_commit"]
        assert data["bandwidth_gbs"]["copy"] > 0
        rows = [Row.from_dict(r) for r in data["rows"]]
        measured = [r for r in rows if r.figures]
        assert measured, name
        assert all(len(r.figures["wall"].samples) == 1 for r in measured)
        assert not [r for r in rows if (r.not_measured or "").startswith(("failed", "the case failed"))], name
        assert all(r.correct in ("", "ok", "reference") for r in rows), [(r.impl, r.correct) for r in rows]
        markdown = (out / f"{name}.md").read_text()
        assert "| size | mode | impl |" in markdown
        if data.get("plot"):
            assert (out / data["plot"]).stat().st_size > 0
    assert (out / "summary.md").read_text().startswith("# Benchmark results")
    before = (out / "ratio_iou.md").read_text()
    assert report.main([str(out)]) == 0  # rewritten from the JSON alone, as after unpacking GPU results
    assert (out / "ratio_iou.md").read_text() == before
