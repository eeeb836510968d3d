"""How every figure in benchmarks/results is measured.

A *case* is one op at one size in one mode ("forward", or "forward+backward":
the forward, then torch.autograd.grad of its outputs with a fixed random
upstream gradient). Every implementation of a case is timed on the same inputs,
in microseconds per call:

- device (GPU): the call captured in a CUDA graph and replayed, CUDA events
  around the replays. The graph holds one call per input set (the sets rotate so
  that small sizes are not timed out of the L2 cache, see `input_sets`), so a
  replay is many calls and no launch gap is timed. An implementation that cannot
  be captured (it synchronizes with the host, or capture fails) is reported with
  the reason, and its *stream time* is taken instead: CUDA events around
  back-to-back calls, an upper bound of its device time (idle gaps while the host
  prepares the next kernel are counted).
- latency (GPU): what a user's Python loop pays per call, host included: wall
  time of k back-to-back calls and one synchronize, divided by k.
- wall (CPU): the same loop's wall time per call. CPU runs keep freed memory
  in the process (`keep_freed_memory`): glibc's default returns it to the OS by
  heuristics that depend on the exact sequence of allocation sizes, so one
  implementation could pay page faults on every call and another none.

Implementations are interleaved: each repeat takes one sample of every
implementation, in an order rotated by one each repeat, so a machine that slows
down or speeds up during a case affects all of them alike. Each figure is the
median of the repeats with its min-max spread. The first call (compilation,
TorchScript's profiling runs) is timed apart and reported as "first call".
"""

from __future__ import annotations

import ctypes
import datetime
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

FORWARD = "forward"
TRAINING = "forward+backward"
MODES = (FORWARD, TRAINING)
# Inputs rotate among sets of at least 2 x CACHE_BYTES in all: more than the
# L2 of an H100/H200 (50/60 MB) and the L3 of the CPU machines.
CACHE_BYTES = 64 << 20
MAX_SETS = 128  # a graph of up to 128 calls on the GPU; sets of small sizes are small
FLOOR_ELEMENTS = 1000  # the autograd floor: forward+backward of x * 2 on this many elements
REPO = Path(__file__).resolve().parent.parent


# --- statistics ---------------------------------------------------------------------------

@dataclass
class Stats:
    """Samples of one figure (microseconds), one per repeat."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def lo(self) -> float:
        return min(self.samples)

    @property
    def hi(self) -> float:
        return max(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        if len(self.samples) < 2:
            return self.lo, self.hi
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q1, q3

    def to_dict(self) -> dict:
        q1, q3 = self.iqr
        return {"median": self.median, "min": self.lo, "max": self.hi, "q1": q1, "q3": q3,
                "samples": list(self.samples)}

    @classmethod
    def from_dict(cls, d: dict) -> "Stats":
        return cls(list(d["samples"]))


def interleave(samplers: dict[str, Callable[[], dict[str, float]]], repeats: int) -> dict[str, dict[str, Stats]]:
    """Runs every sampler once per repeat, round-robin, the order rotated by one
    each repeat. A sampler returns {figure: microseconds}; the result is
    {name: {figure: Stats}}."""
    names = list(samplers)
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for r in range(repeats):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            for figure, us in samplers[name]().items():
                samples[name].setdefault(figure, []).append(us)
    return {n: {f: Stats(s) for f, s in figs.items()} for n, figs in samples.items()}


# --- what a case is -----------------------------------------------------------------------

@dataclass
class Case:
    """One op at one size in one mode, and the implementations to time on it.

    impls: name -> callable taking the input set's tensors (or, where
    make_inputs is None, a zero-argument step that does all the work itself),
    or a string saying why that implementation is not measured here; or a
    function returning that dict, called when the case runs.
    make_inputs(seed, requires_grad) -> list of tensors (one input set)."""

    op: str
    size: str
    x: float                      # the size as a number, for the plots
    mode: str
    impls: dict[str, Callable | str] | Callable[[], dict[str, Callable | str]]
    make_inputs: Callable[[int, bool], list] | None
    input_bytes: int = 0          # of one input set: how many sets rotate
    bytes_moved: int | None = None  # the fewest bytes the op must move (None: not meaningful)
    bandwidth: str = "copy"       # which measured bandwidth bounds it: "copy" or "write"
    reference: str | None = None  # the implementation others are checked against (default: the first)
    tolerance: float = 1e-4       # relative to the reference's largest value
    measure_memory: bool = False  # also the peak memory of one call
    device_time: bool = True      # on the GPU, also the CUDA-graph figure
    threads: int | None = None    # CPU threads for this case (None: as the run)
    grad_targets: Callable[[str, list], list] | None = None  # what to differentiate (default: inputs needing grad)


@dataclass
class Row:
    """One implementation's result in one case."""

    op: str
    size: str
    x: float
    mode: str
    impl: str
    figures: dict[str, Stats] = field(default_factory=dict)
    not_measured: str | None = None   # why there are no figures
    device_note: str | None = None    # e.g. why there is no CUDA-graph figure
    first_call_s: float | None = None
    bytes_moved: int | None = None
    limit_us: float | None = None     # bytes_moved at the measured bandwidth
    bandwidth: str = "copy"           # which one: "copy" or "write"
    peak_bytes: int | None = None
    memory_note: str | None = None
    correct: str = ""
    threads: int | None = None

    def main_figure(self) -> str | None:
        """The figure the bandwidth limit and most bars read."""
        for name in ("device", "stream", "wall"):
            if name in self.figures:
                return name
        return None

    def pct_of_bandwidth(self) -> float | None:
        main = self.main_figure()
        if self.limit_us is None or main is None:
            return None
        return 100 * self.limit_us / self.figures[main].median

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "figures"}
        d["figures"] = {k: v.to_dict() for k, v in self.figures.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Row":
        d = dict(d)
        figures = {k: Stats.from_dict(v) for k, v in d.pop("figures").items()}
        return cls(**d, figures=figures)


@dataclass
class Settings:
    device: str
    repeats: int = 5
    sample_s: float = 0.1         # time per sample of one figure
    quick: bool = False           # fewer sizes (GPU path check)
    dry_run: bool = False         # tiny sizes, one repeat (tests)
    compile_backend: str = "inductor"
    max_sets: int = MAX_SETS

    def sizes(self, full: dict, quick: dict, dry: list) -> list:
        """A suite's sizes for this run: full/quick are per device, dry for all."""
        return dry if self.dry_run else (quick if self.quick else full)[self.device]


# --- the peers, as users write them -------------------------------------------------------

def scripted(fn: Callable) -> Callable:
    """torch.jit.script(fn); TorchScript's deprecation warning silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(fn)


def compiled(fn: Callable, settings: Settings) -> Callable:
    """torch.compile(fn), as users write it. The harness resets Dynamo before
    each case, so each case's shapes are compiled afresh (static) and no
    recompile limit turns a later size eager. A shape that changes within a
    case (torchvision's losses index with a boolean mask, whose size differs
    per input set) is made dynamic by the second call, as for users."""
    return torch.compile(fn, backend=settings.compile_backend)


def torchops_backend_reason(backend: str, device: str) -> str | None:
    """None where torchops' `backend` can run on `device`, else why not."""
    import torchops

    status = torchops.available_backends().get(backend)
    if status is None:
        return f"torchops has no '{backend}' backend"
    if not status.available:
        return f"torchops' {backend} backend is not available: {status.reason}"
    if backend == "native" and device == "cuda" and "CPU only" in status.reason:
        return "torchops was built without CUDA kernels"
    return None


def torchops_impls(make: Callable[[str], Callable], device: str,
                   backends: Sequence[str] = ("native", "triton")) -> dict[str, Callable | str]:
    """{backend: make(backend)} for torchops' backends, or why one cannot run
    here; triton only on CUDA (it has no CPU kernels)."""
    return {b: torchops_backend_reason(b, device) or make(b)
            for b in backends if b != "triton" or device == "cuda"}


# --- clocks -------------------------------------------------------------------------------

def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def loop_us(call: Callable[[int], object], calls: int, device: str) -> float:
    """Wall microseconds per call of `calls` back-to-back calls (and one synchronize)."""
    sync(device)
    t0 = time.perf_counter()
    for i in range(calls):
        call(i)
    sync(device)
    return (time.perf_counter() - t0) * 1e6 / calls


def stream_us(call: Callable[[int], object], calls: int) -> float:
    """CUDA-event microseconds per call of back-to-back calls."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(calls):
        call(i)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e3 / calls


def replay_us(graph, replays: int, calls_per_replay: int) -> float:
    """CUDA-event microseconds per captured call over `replays` graph replays."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e3 / (replays * calls_per_replay)


def count_for(us_per_call: float, sample_s: float, most: int = 100_000) -> int:
    """How many calls make one sample of about sample_s seconds."""
    return max(1, min(most, int(sample_s * 1e6 / max(us_per_call, 1e-3))))


# --- CUDA graphs --------------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


def host_sync_reason(call: Callable[[], object]) -> str | None:
    """Why `call` cannot be captured because it synchronizes with the host
    (torch's sync debug mode raises at the synchronizing op), or None."""
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        call()
        return None
    except RuntimeError as e:
        return "synchronizes with the host (" + _first_line(e) + ")"
    finally:
        torch.cuda.set_sync_debug_mode(previous)
        torch.cuda.synchronize()


def capture(calls: Sequence[Callable[[], object]]):
    """A CUDA graph of calls[0](), calls[1](), ... and their outputs (detached),
    or (None, reason) where capture fails. Warmed up on a side stream first (as
    torch.cuda.graphs asks: lazy initialisation, autograd's stream set-up);
    inputs are the callers' static tensors; the backward runs through
    torch.autograd.grad, so no .grad accumulates between replays. The caller
    must hold no autograd graph over these inputs (see _detached)."""
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for call in calls:
                call()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # captures on its own side stream
            outputs = [_detached(call()) for call in calls]
        graph.replay()
        torch.cuda.synchronize()
        return graph, outputs
    except Exception as e:  # noqa: BLE001  (every capture failure is a finding, not a crash)
        try:
            torch.cuda.synchronize()
        except Exception:  # noqa: BLE001
            pass
        return None, "capture failed (" + _first_line(e) + ")"


# --- memory -------------------------------------------------------------------------------

def peak_bytes(call: Callable[[], object], device: str) -> tuple[int | None, str | None]:
    """Memory one call allocates at its peak, above what was allocated before
    (its output included). GPU: the caching allocator's peak. CPU: the running
    sum of the allocations and frees torch.profiler records, at its highest
    (an op's own allocations are counted at its start, so a peak inside one op
    is missed)."""
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del out
        return peak, None
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = call()
        del out
        # each event's self memory (allocated minus freed, children apart), in
        # the order the events began: the running sum at op boundaries
        running = peak = 0
        for e in sorted(prof.events(), key=lambda e: e.time_range.start):
            running += e.self_cpu_memory_usage
            peak = max(peak, running)
        return peak, "CPU: torch.profiler's memory records summed in time order, at op granularity"
    except Exception as e:  # noqa: BLE001
        return None, "not measured (" + _first_line(e) + ")"


# --- one case -----------------------------------------------------------------------------

def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out] if isinstance(out, torch.Tensor) else []


def _detached(out) -> list:
    """A call's output tensors without their autograd graph. A kept forward
    output keeps its graph alive, and with it the inputs' AccumulateGrad nodes
    and the stream they were made on: a later capture of a backward into those
    inputs then synchronises with that (default) stream, and the capture fails
    ("operation failed due to a previous error during capture")."""
    return [t.detach() for t in _flatten(out)]


def _max_rel_diff(got: list, want: list) -> float:
    worst = 0.0
    for a, b in zip(got, want):
        if a is None or b is None or a.numel() == 0:
            continue
        scale = b.detach().double().abs().max().item() or 1.0
        worst = max(worst, (a.detach().double() - b.detach().double()).abs().max().item() / scale)
    return worst


def input_sets(case: Case, settings: Settings) -> int:
    if case.make_inputs is None or settings.dry_run:
        return 1
    if case.input_bytes <= 0:
        return 1
    return max(1, min(settings.max_sets, math.ceil(2 * CACHE_BYTES / case.input_bytes)))


class _Impl:
    """One implementation's step over the case's input sets."""

    def __init__(self, name: str, fn: Callable, case: Case, sets: list, grads: list | None):
        self.name, self.fn, self.case, self.sets, self.grads = name, fn, case, sets, grads
        self.second_call_us = 0.0
        self.turn = 0  # the next input set: the rotation goes on from one sample to the next

    def next(self, _i: int = 0):
        self.turn += 1
        return self.step(self.turn - 1)

    def step(self, i: int):
        if self.case.make_inputs is None:
            return self.fn()
        inputs = self.sets[i % len(self.sets)]
        out = self.fn(*inputs)
        if self.case.mode == FORWARD:
            return out
        targets = self.case.grad_targets(self.name, inputs) if self.case.grad_targets else \
            [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
        outs = _flatten(out)
        if self.grads is None:  # the upstream gradient: random, shaped like the outputs
            self.grads = [torch.rand_like(o) for o in outs]
        return outs, torch.autograd.grad(outs, targets, self.grads)


def run_case(case: Case, settings: Settings, bandwidth_gbs: dict[str, float], log=print) -> list[Row]:
    """Times every implementation of `case`; one Row each."""
    device = settings.device
    previous_threads = torch.get_num_threads()
    if case.threads is not None and device == "cpu":
        torch.set_num_threads(case.threads)
    try:
        return _run_case(case, settings, bandwidth_gbs, log)
    finally:
        torch.set_num_threads(previous_threads)


def _run_case(case: Case, settings: Settings, bandwidth_gbs: dict[str, float], log) -> list[Row]:
    device = settings.device
    training = case.mode == TRAINING
    n_sets = input_sets(case, settings)
    sets = [case.make_inputs(seed, training) for seed in range(n_sets)] if case.make_inputs else [None]
    limit = None
    if case.bytes_moved:
        limit = case.bytes_moved / (bandwidth_gbs[case.bandwidth] * 1e3)  # bytes / (GB/s) in us
    rows: dict[str, Row] = {}
    impls: dict[str, _Impl] = {}
    grads = None
    reference_out = None
    all_impls = case.impls() if callable(case.impls) else case.impls
    reference = case.reference or next((n for n, f in all_impls.items() if not isinstance(f, str)), None)
    order = ([reference] if reference else []) + [n for n in all_impls if n != reference]
    for name in order:
        fn = all_impls[name]
        row = Row(case.op, case.size, case.x, case.mode, name, bytes_moved=case.bytes_moved, limit_us=limit,
                  bandwidth=case.bandwidth,
                  threads=torch.get_num_threads() if device == "cpu" else None)
        rows[name] = row
        if isinstance(fn, str):
            row.not_measured = fn
            continue
        impl = _Impl(name, fn, case, sets, grads)  # the first one's upstream gradient serves all
        try:
            sync(device)
            t0 = time.perf_counter()
            out = impl.step(0)
            sync(device)
            row.first_call_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            # TorchScript optimises after its profiling run; torch.compile makes
            # what differs between input sets dynamic now, not while timing
            out = impl.step(1 % len(sets))
            sync(device)
            impl.second_call_us = (time.perf_counter() - t0) * 1e6
            if len(sets) > 1:
                out = impl.step(0)
        except Exception as e:  # noqa: BLE001  (a failing implementation is reported, the run goes on)
            row.not_measured = "failed: " + _first_line(e)
            log(f"    {name}: failed: {type(e).__name__}: {str(e)[:3000]}")  # the whole story, in the log
            continue
        if case.make_inputs is not None:
            flat = _detached(out)
            if reference_out is None:
                reference_out = flat
                row.correct = "reference"
            else:
                diff = _max_rel_diff(flat, reference_out)
                row.correct = "ok" if diff <= case.tolerance else f"differs: {diff:.2g} relative"
        del out
        impls[name] = impl
        grads = impl.grads
    if not impls:
        return [rows[n] for n in all_impls]

    samplers = {}
    for name, impl in impls.items():
        try:
            samplers[name] = _sampler(impl, rows[name], case, settings, reference_out)
        except Exception as e:  # noqa: BLE001
            rows[name].not_measured = "failed while setting up its timing: " + _first_line(e)
            log(f"    {name}: {rows[name].not_measured}")
    figures = interleave(samplers, settings.repeats)
    for name, figs in figures.items():
        rows[name].figures = figs
    if case.measure_memory:
        for name, impl in impls.items():
            rows[name].peak_bytes, rows[name].memory_note = peak_bytes(lambda impl=impl: impl.step(0), device)
    return [rows[n] for n in all_impls]  # in the case's order


def _sampler(impl: _Impl, row: Row, case: Case, settings: Settings,
             reference_out: list | None) -> Callable[[], dict[str, float]]:
    """Sets up the figures of one implementation (CUDA graph, calls per
    sample) and returns the function that takes one sample of each. A graph's
    replayed output is checked against the reference, as the eager call was."""
    device = settings.device
    n_sets = len(impl.sets)
    # calibration: a few calls over the rotating sets, at most ~0.2 s of them
    per_call = impl.second_call_us
    if n_sets > 1:
        per_call = loop_us(impl.next, min(n_sets, count_for(per_call, 0.2)), device)
    calls = count_for(per_call, settings.sample_s)

    if device != "cuda":
        return lambda: {"wall": loop_us(impl.next, calls, device)}

    figures: dict[str, Callable[[], float]] = {"latency": lambda: loop_us(impl.next, calls, device)}
    if case.device_time:
        reason = host_sync_reason(lambda: impl.step(0))
        graph = None
        if reason is None:
            graph, outputs = capture([lambda i=i: impl.step(i) for i in range(n_sets)])
            if graph is None:
                reason = outputs
        if graph is not None:
            impl.graph, impl.graph_outputs = graph, outputs  # keep the graph's static outputs alive
            if reference_out is not None:
                diff = _max_rel_diff(outputs[0], reference_out)
                if diff > case.tolerance:
                    row.correct = f"CUDA graph replay differs: {diff:.2g} relative"
            per_replay = replay_us(graph, 1, 1)
            replays = count_for(per_replay, settings.sample_s, most=10_000)
            figures["device"] = lambda: replay_us(graph, replays, n_sets)
        else:
            row.device_note = "not capturable: " + reason + "; stream time of back-to-back calls instead"
            figures["stream"] = lambda: stream_us(impl.next, calls)
    return lambda: {name: f() for name, f in figures.items()}


# --- the allocator ------------------------------------------------------------------------

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_malloc_setting = "default"


def keep_freed_memory() -> str:
    """Makes glibc's malloc keep freed memory for reuse instead of returning it
    to the OS, for the rest of the process; returns what the allocator now
    does, as the result files record it.

    By default glibc serves large blocks with mmap and trims the top of its
    heap by heuristics (a threshold that follows the largest block freed so
    far): whether a block freed by one call comes back to the next call or is
    unmapped, so that its pages fault in again (zeroed by the kernel), depends
    on the exact sizes and order of the tensors each implementation allocates
    and frees. Measured on the CPU machine, 2 threads: lstm_cell
    forward+backward at (1024, 1024) paid 0 to 5600 page faults per call
    (up to ~8 ms of kernel time, more than the kernel itself) depending on the
    implementation and the repeat. With mmap off and no trimming, every
    implementation reuses its memory in steady state, as it does under jemalloc
    or tcmalloc (what PyTorch's CPU performance guide recommends); first calls
    still fault in."""
    global _malloc_setting
    if _malloc_setting != "default":
        return _malloc_setting
    if not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"):
        return _malloc_setting
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return _malloc_setting
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1):
        _malloc_setting = "glibc, freed memory kept (mmap off, no trimming)"
    return _malloc_setting


# --- what the run measures once -----------------------------------------------------------

def measure_bandwidth(device: str, dry_run: bool = False) -> dict[str, float]:
    """GB/s of a device-to-device copy (bytes read + written) and of a fill
    (bytes written), each the median of 5 samples."""
    n = (1 << 20) if dry_run else (1 << 28) if device == "cuda" else (1 << 25)  # float32: 1 GiB / 128 MiB
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    nbytes = src.numel() * src.element_size()
    result = {}
    kinds = (("copy", lambda i: dst.copy_(src), 2 * nbytes), ("write", lambda i: dst.fill_(1.5), nbytes))
    for name, op, moved in kinds:
        op(0)
        per = loop_us(op, 3, device)
        calls = count_for(per, 0.05)
        timer = (lambda: stream_us(op, calls)) if device == "cuda" else (lambda: loop_us(op, calls, device))
        result[name] = moved / (Stats([timer() for _ in range(5)]).median * 1e3)
    return result


def autograd_floor(device: str, repeats: int, sample_s: float) -> Stats:
    """Call latency of forward+backward of x * 2 on FLOOR_ELEMENTS elements:
    what the autograd engine alone costs a training call."""
    x = torch.rand(FLOOR_ELEMENTS, device=device, requires_grad=True)
    g = torch.rand(FLOOR_ELEMENTS, device=device)

    def step(i):
        return torch.autograd.grad(x * 2, x, g)

    for _ in range(5):
        step(0)
    calls = count_for(loop_us(step, 10, device), sample_s)
    floor = Stats([loop_us(step, calls, device) for _ in range(repeats)])
    return floor


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    for name in (package, f"pytorch-{package}"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _git_commit() -> str:
    if os.environ.get("BENCH_GIT_COMMIT"):  # where the tree travels without .git
        return os.environ["BENCH_GIT_COMMIT"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown (no git metadata)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"


def _gpu_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str) -> dict:
    """What a result depends on, recorded in every result file."""
    import torchops
    from torchops.testing._torchvision import torchvision_box_ops

    capability = getattr(torchops, "cpu_capability", None)
    tv = torchvision_box_ops()
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _git_commit(),
        "device": device,
        "cpu_model": _cpu_model(),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torchops_cpu_capability": capability() if callable(capability) else "n/a (torchops.cpu_capability absent)",
        "threads": torch.get_num_threads(),
        "malloc": _malloc_setting,
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "torchvision": f"{tv.version} ({tv.source})" if tv else None,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        env.update({
            "gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "sms": props.multi_processor_count, "driver": _gpu_driver(), "cuda": torch.version.cuda,
        })
    return env


def device_tag(device: str) -> str:
    """The results folder of a device: cuda-h200, cpu-avx512, ..."""
    if device == "cuda":
        name = torch.cuda.get_device_name().lower()
        for model in ("h200", "h100", "a100", "l40s", "l4", "a10g"):
            if model in name:
                return f"cuda-{model}"
        return "cuda-gpu"
    return "cpu-" + torch.backends.cpu.get_cpu_capability().lower()


def fmt_size(n: int) -> str:
    exp = len(str(n)) - 1
    return f"1e{exp}" if n == 10**exp else str(n)


class Progress:
    """Progress lines: case i of n, time elapsed and the estimated total."""

    def __init__(self, total: int, stream=sys.stdout):
        self.total, self.done, self.start, self.stream = total, 0, time.perf_counter(), stream

    @staticmethod
    def _clock(seconds: float) -> str:
        return f"{int(seconds // 60):d}:{int(seconds % 60):02d}"

    def line(self, what: str) -> str:
        elapsed = time.perf_counter() - self.start
        estimate = elapsed / self.done * self.total if self.done else float("nan")
        total = self._clock(estimate) if self.done else "?"
        return f"[{self.done + 1}/{self.total} {self._clock(elapsed)} elapsed, ~{total} total] {what}"

    def step(self, what: str) -> None:
        print(self.line(what), file=self.stream, flush=True)

    def finish(self) -> None:
        self.done += 1
