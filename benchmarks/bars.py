"""The bars the issues set, as data, and how a run is judged against them.

A bar compares one measured figure (op, size, mode, implementation, figure)
with another one, with the bandwidth limit or with a fixed number:

- "ratio":      subject / against <= threshold   (e.g. native / fastest peer <= 1.03)
- "speedup":    against / subject >= threshold   (e.g. torchvision / native >= 5)
- "bandwidth":  limit / subject >= threshold     (the fraction of the measured bandwidth)
- "difference": subject - against <= threshold   (microseconds)

`against` is an implementation, a tuple of them (the fastest by median), PEERS
(every implementation measured in that case but torchops' own native/triton),
or FLOOR (the run's autograd floor). A bar without sizes applies to every
measured size that moves at least min_bytes.

The verdict is judged on the medians and checked at both ends of the spread
(min-max of the repeats): where the two ends disagree the verdict is "within
spread" (the median's verdict shown beside it), so noise does not flip a bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from benchmarks.harness import FORWARD, MODES, TRAINING, Row, Stats

PEERS = "peers"
FLOOR = "autograd floor"
OURS = ("native", "triton")
MB64 = 64 << 20


@dataclass(frozen=True)
class Bar:
    issue: int
    device: str                     # "cpu" or "cuda"
    op: str
    impl: str                       # the subject
    kind: str                       # ratio | speedup | bandwidth | difference
    threshold: float
    against: str | tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    sizes: tuple[str, ...] | None = None  # None: every measured size moving >= min_bytes
    min_bytes: int = 0
    figure: str | None = None       # None: the row's main figure (device/stream on the GPU, wall on the CPU)
    threads: int | None = None      # the CPU threads the bar is set for
    note: str = ""

    def describe(self, size: str, mode: str) -> str:
        against = " / ".join(self.against) if isinstance(self.against, tuple) else self.against
        if self.against == PEERS:
            against = "fastest peer"
        figure = self.figure or ("device time" if self.device == "cuda" else "wall time")
        what = f"{self.op} {mode} {size}, {figure}"
        if self.kind == "ratio":
            return f"{what}: {self.impl} / {against} <= {self.threshold:g}"
        if self.kind == "speedup":
            return f"{what}: {against} / {self.impl} >= {self.threshold:g}"
        if self.kind == "bandwidth":
            return f"{what}: {self.impl} at >= {100 * self.threshold:g}% of the measured bandwidth"
        return f"{what}: {self.impl} - {against} <= {self.threshold:g} us"


def _bars() -> list[Bar]:
    bars: list[Bar] = []
    add = bars.append
    losses = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
    # issue 14: GPU device time against the fastest peer, large and small sizes
    for op in ("ratio_iou", "lstm_cell", *losses, "box_iou"):
        modes = (FORWARD,) if op == "box_iou" else MODES
        for mode in modes:
            add(Bar(14, "cuda", op, "native", "ratio", 1.03 if mode == FORWARD else 1.05, PEERS, (mode,),
                    min_bytes=MB64, note="wherever the op moves at least 64 MB"))
    for op, small in (("ratio_iou", "1e5"), ("lstm_cell", "(64, 512)"), *((loss, "1e5") for loss in losses)):
        add(Bar(14, "cuda", op, "native", "ratio", 1.0, PEERS, sizes=(small,), note="small size"))
    # issue 14: GPU call latency at the small sizes
    for op, small in (("ratio_iou", "1e5"), ("lstm_cell", "(64, 512)")):
        add(Bar(14, "cuda", op, "native", "ratio", 2.0, FLOOR, (TRAINING,), (small,), figure="latency"))
        add(Bar(14, "cuda", op, "native", "speedup", 2.0, "compile", (TRAINING,), (small,), figure="latency"))
    # issue 14: host time per call at a tiny size (benchmarks/host_overhead.py)
    for device in ("cpu", "cuda"):
        for op in ("ratio_iou", "lstm_cell", "complete_box_iou_loss", "box_iou"):
            add(Bar(14, device, "host_overhead", f"{op} public", "ratio", 2.0, "x * 2 (autograd floor)",
                    (TRAINING,), threads=1 if device == "cpu" else None,
                    figure=None if device == "cpu" else "latency",  # a host figure: no device time there
                    note="native op forward+backward at a tiny size against the autograd floor"))
    for op in ("ratio_iou", "lstm_cell", "complete_box_iou_loss", "box_iou"):
        add(Bar(14, "cpu", "host_overhead", f"{op} public", "difference", 1.0, f"{op} torch.ops", (FORWARD,),
                threads=1, note="the public wrapper over calling torch.ops directly"))
    # issue 11: box ops on the GPU
    add(Bar(11, "cuda", "complete_box_iou_loss", "native", "speedup", 5.0, "torchvision", (TRAINING,), ("1e6", "1e7")))
    add(Bar(11, "cuda", "complete_box_iou_loss", "native", "ratio", 1.0, "compile(torchvision)", (TRAINING,),
            ("1e6", "1e7")))
    add(Bar(11, "cuda", "complete_box_iou_loss", "native", "bandwidth", 0.85, None, (TRAINING,), ("1e7",)))
    add(Bar(11, "cuda", "box_iou", "native", "bandwidth", 0.85, None, (FORWARD,), ("4000x4000",),
            note="write bandwidth of the N x M output"))
    add(Bar(11, "cuda", "box_iou", "native", "speedup", 5.0, "torchvision", (FORWARD,), ("4000x4000",)))
    # issue 11: box ops on the CPU (2 threads)
    for loss in losses:
        add(Bar(11, "cpu", loss, "native", "ratio", 1.0, "compile(torchvision)", MODES, ("1e5", "1e6"), threads=2))
        add(Bar(11, "cpu", loss, "native", "speedup", 10.0, "torchvision", (TRAINING,), ("1e6",), threads=2))
    add(Bar(11, "cpu", "box_iou", "native", "ratio", 1.0, "compile(torchvision)", (FORWARD,), threads=2))
    add(Bar(11, "cpu", "box_iou", "native", "speedup", 3.0, "torchvision", (FORWARD,), threads=2))
    # issue 12: CPU kernels against torch.compile (2 threads)
    add(Bar(12, "cpu", "lstm_cell", "native", "ratio", 1.0, "compile", MODES,
            ("(64, 256)", "(256, 512)", "(1024, 1024)"), threads=2))
    add(Bar(12, "cpu", "ratio_iou", "native", "ratio", 1.0, "compile", MODES, ("1e5", "1e6", "1e7"), threads=2))
    add(Bar(12, "cpu", "nn.LSTMCell", "torchops.nn.LSTMCell", "ratio", 1.0, "torch.nn.LSTMCell", (TRAINING,),
            threads=2))
    # issue 13: the triton backend against native on the GPU
    for op in ("ratio_iou", "lstm_cell", *losses):
        add(Bar(13, "cuda", op, "triton", "ratio", 1.10, "native", MODES, min_bytes=MB64,
                note="wherever the op moves at least 64 MB"))
    return bars


BARS = _bars()


@dataclass
class Verdict:
    bar: Bar
    size: str
    mode: str
    text: str                  # "met", "not met", "within spread (median: met)", "not measured (...)"
    value: float | None = None
    best: float | None = None  # the value at the favourable end of the spread
    worst: float | None = None
    note: str = ""

    @property
    def claim(self) -> str:
        return self.bar.describe(self.size, self.mode)

    def to_dict(self) -> dict:
        return {"issue": self.bar.issue, "claim": self.claim, "verdict": self.text, "value": self.value,
                "best": self.best, "worst": self.worst, "shown": format_value(self), "note": self.note}


def _figure(row: Row, bar: Bar) -> tuple[Stats | None, str]:
    """The figure a bar reads from a row, and a note where it had to fall back."""
    if bar.figure is not None:
        return row.figures.get(bar.figure), ""
    main = row.main_figure()
    if main is None:
        return None, ""
    note = f"{row.impl}: stream time (not capturable)" if main == "stream" else ""
    return row.figures[main], note


def _passes(kind: str, value: float, threshold: float) -> bool:
    return value >= threshold if kind in ("speedup", "bandwidth") else value <= threshold


def judge_values(kind: str, threshold: float, subject: Stats, against: Stats | None = None,
                 limit_us: float | None = None) -> tuple[str, float, float, float]:
    """(verdict, median value, best value, worst value) of one comparison."""
    s, s_lo, s_hi = subject.median, subject.lo, subject.hi
    if kind == "bandwidth":
        value, best, worst = limit_us / s, limit_us / s_lo, limit_us / s_hi
    else:
        a, a_lo, a_hi = against.median, against.lo, against.hi
        if kind == "ratio":
            value, best, worst = s / a, s_lo / a_hi, s_hi / a_lo
        elif kind == "speedup":
            value, best, worst = a / s, a_hi / s_lo, a_lo / s_hi
        else:  # difference
            value, best, worst = s - a, s_lo - a_hi, s_hi - a_lo
    at_median = "met" if _passes(kind, value, threshold) else "not met"
    if _passes(kind, best, threshold) != _passes(kind, worst, threshold):
        return f"within spread (median: {at_median})", value, best, worst
    return at_median, value, best, worst


def _why_missing(rows: Sequence[Row], op: str, size: str, mode: str, impl: str) -> str:
    for r in rows:
        if r.op == op and r.size == size and r.mode == mode and r.impl == impl and r.not_measured:
            return f"{impl}: {r.not_measured}"
    return f"{impl} not measured at {size} {mode}"


def judge(bar: Bar, rows: Sequence[Row], floor: Stats | None = None, threads: int | None = None) -> list[Verdict]:
    """The verdicts of one bar over the rows of a run (one per size and mode it covers)."""
    mine = [r for r in rows if r.op == bar.op and r.mode in bar.modes]
    if bar.sizes is not None:
        checks = [(s, m) for s in bar.sizes for m in bar.modes]
    else:
        checks = sorted({(r.size, r.mode) for r in mine if (r.bytes_moved or 0) >= bar.min_bytes},
                        key=lambda sm: (_x_of(mine, sm[0]), sm[1]))
        if not checks:
            return [Verdict(bar, "(sizes moving >= 64 MB)" if bar.min_bytes else "(any size)", "/".join(bar.modes),
                            "not measured (no such size in this run)")]
    verdicts = []
    for size, mode in checks:
        verdicts.append(_judge_one(bar, [r for r in mine if r.size == size and r.mode == mode], size, mode,
                                   floor, threads))
    return verdicts


def _x_of(rows: Sequence[Row], size: str) -> float:
    return next((r.x for r in rows if r.size == size), 0.0)


def _judge_one(bar: Bar, case_rows: Sequence[Row], size: str, mode: str, floor: Stats | None,
               threads: int | None) -> Verdict:
    def missing(why: str) -> Verdict:
        return Verdict(bar, size, mode, f"not measured ({why})")

    if not case_rows:
        return missing(f"{bar.op} {size} {mode} not in this run")
    by_impl = {r.impl: r for r in case_rows}
    subject_row = by_impl.get(bar.impl)
    if subject_row is None or subject_row.not_measured:
        return missing(_why_missing(case_rows, bar.op, size, mode, bar.impl))
    subject, note = _figure(subject_row, bar)
    if subject is None:
        return missing(f"{bar.impl} has no {bar.figure} figure")
    notes = [note] if note else []
    against, limit = None, None
    if bar.kind == "bandwidth":
        limit = subject_row.limit_us
        if limit is None:
            return missing("no bandwidth limit for this op")
    elif bar.against == FLOOR:
        if floor is None:
            return missing("autograd floor not measured")
        against = floor
    else:
        names = [r.impl for r in case_rows if r.impl not in OURS and r.impl != bar.impl] if bar.against == PEERS \
            else list(bar.against) if isinstance(bar.against, tuple) else [bar.against]
        candidates = []
        for name in names:
            row = by_impl.get(name)
            if row is None or row.not_measured:
                continue
            stats, n = _figure(row, bar)
            if stats is not None:
                candidates.append((stats.median, name, stats, n))
        if not candidates:
            return missing(_why_missing(case_rows, bar.op, size, mode, names[0]) if names else "no peer measured")
        _, name, against, n = min(candidates, key=lambda c: c[0])
        if len(names) > 1:
            notes.append(f"fastest peer: {name}")
        if n:
            notes.append(n)
    text, value, best, worst = judge_values(bar.kind, bar.threshold, subject, against, limit)
    threads = subject_row.threads or threads  # a case may run at its own thread count
    if bar.threads is not None and threads is not None and threads != bar.threads:
        notes.append(f"judged at {threads} threads; the bar is set for {bar.threads}")
    return Verdict(bar, size, mode, text, value, best, worst, "; ".join(notes))


def bars_for(device: str, ops: Iterable[str]) -> list[Bar]:
    ops = set(ops)
    return [b for b in BARS if b.device == device and b.op in ops]


def format_value(v: Verdict) -> str:
    if v.value is None:
        return "-"
    if v.bar.kind == "bandwidth":
        return f"{100 * v.value:.0f}% [{100 * v.worst:.0f}-{100 * v.best:.0f}%]"
    if v.bar.kind == "difference":
        return f"{v.value:+.2f} us [{v.best:+.2f} to {v.worst:+.2f}]"
    lo, hi = sorted((v.best, v.worst))
    return f"{v.value:.3f} [{lo:.3f}-{hi:.3f}]"
