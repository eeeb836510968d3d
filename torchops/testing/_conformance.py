"""check_implementation: torchops' conformance suite as a function.

An implementation conforms when, for every case, it returns what the eager
reference returns, at least as accurately (against eager run in float64 on
the same inputs, the case's tensors as rounded to its dtype): same shape,
dtype and device; NaN where eager is NaN in every precision, no NaN or inf
where eager has a number; values and the gradients of every input no further
from the float64 reference than a few units in the last place (of the dtype,
at the tensor's magnitude, or at the size of the rounding errors that its
conditioning gives: the terms a gradient sums, eager's error in float32) plus
twice eager's own error. The cases cover random shapes, all four float
dtypes, broadcast, strided and 0-d inputs, empty inputs, ties, degenerate
boxes and NaN/inf, drawn from a seed by each op's case builder
(torchops/testing/_ops.py), which tests/test_conformance.py drives from
hypothesis; the inputs are the ones torchops' own tests use
(torchops/testing/_inputs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from torchops.testing import _inputs
from torchops.testing._accuracy import ULP, assert_as_accurate_as_eager

MAX_REPORTED = 8  # failures listed in the report (all are counted)


@dataclass
class Case:
    """One call: the float64 tensors (None: an absent optional input), the
    dtype they are cast to, and the other arguments."""

    description: str
    tensors: list
    dtype: torch.dtype
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    edge: bool = False  # NaN, inf, huge or tiny values (see edge_gradients)
    ulps: float = 8.0
    # the size of the terms that each gradient sums (from the float64 inputs
    # and upstream gradients), where it can exceed the gradient itself
    term_scale: Callable | None = None


# --- the cases of each op (torchops/testing/_ops.py), from a seed -------------------------

class SeededDraw:
    """The choices of case `index`, from a seeded torch.Generator (a Draw)."""

    edge = False

    def __init__(self, gen: torch.Generator, index: int):
        self.gen, self.index = gen, index

    def cycle(self, options, period: int = 1):
        return options[(self.index // period) % len(options)]

    def choice(self, options):
        return options[int(torch.randint(0, len(options), (), generator=self.gen))]

    def integer(self, lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi, (), generator=self.gen))


def _cases(op: str, count: int, seed: int) -> Iterator[Case]:
    from torchops.testing._ops import spec

    gen = torch.Generator().manual_seed(seed)
    return (spec(op).case(SeededDraw(gen, i)) for i in range(count))


# --- one case ------------------------------------------------------------------------------

def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _call(public: Callable, backend: str, case: Case, dtype, device, requires_grad: bool):
    """The case in `dtype`: float32 and float64 runs of eager take the inputs
    rounded to the case's dtype, the numbers every backend is given."""
    tensors = case.tensors if dtype == case.dtype else _inputs.to(case.tensors, case.dtype, "cpu")
    tensors = _inputs.to(tensors, dtype, device, requires_grad=requires_grad)
    out = public(*tensors, *case.args, backend=backend, **case.kwargs)
    return tensors, _as_tuple(out)


def _gradients(outputs, tensors, grad_outputs) -> list:
    wrt = [t for t in tensors if t is not None]
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [None] * len(wrt)
    return list(torch.autograd.grad([o for o, _ in pairs], wrt, [g.to(o.dtype) for o, g in pairs], allow_unused=True))


def _largest_finite(t) -> float:
    finite = t[torch.isfinite(t)]
    return finite.max().item() if finite.numel() else 0.0


def _compare(actual, eager, reference, what: str, ulps: float, scale: float = 0.0, float32=None) -> None:
    """assert_as_accurate_as_eager, with the tolerance floor at least `ulps`
    times the rounding error that this tensor's conditioning gives: eager's
    largest error in it, the case's term scale, and that of eager run in
    float32 (`float32`), scaled to the dtype's precision where that is
    float64 (whose eager is the reference itself). Where sums cancel
    (gradients of equal boxes, saturated gates), rounding errors follow the
    size of the terms, which these errors show, not that of the (near zero)
    result. Where eager is infinite in both precisions, any non-finite result
    passes (the sign of a sum of infinities depends on its order)."""
    if eager.numel():
        ref = reference.double().cpu()
        scale = max(scale, _largest_finite((eager.double().cpu() - ref).abs()) / ULP[eager.dtype])
        if float32 is not None:
            error32 = _largest_finite((float32.double().cpu() - ref).abs())
            scale = max(scale, error32 / ULP[torch.float32] if eager.dtype == torch.float64 else
                        error32 / ULP[eager.dtype])
    assert_as_accurate_as_eager(actual, eager, reference.to(actual.device), what, ulps=ulps, slack=2.0, scale=scale,
                                infinite_may_be_nonfinite=True)


@dataclass
class Compared:
    """What a case compared: (what, got, eager, float64 reference) of each
    output, and of each gradient (None where gradients were not compared)
    with whether its input was broadcast (its gradient a sum)."""

    outputs: list
    gradients: list | None = None


def _check_case(public, backend, case: Case, device, gradients: bool) -> Compared | None:
    """Raises AssertionError where `backend` differs from eager in case `case`;
    what it compared (None: not a valid call of the op)."""
    wanted_grad = gradients
    try:
        eager_in, eager_out = _call(public, "eager", case, case.dtype, device, wanted_grad)
        ref_in, ref_out = _call(public, "eager", case, torch.float64, device, wanted_grad)
        f32_in, f32_out = (eager_in, eager_out) if case.dtype == torch.float32 else \
            _call(public, "eager", case, torch.float32, device, wanted_grad)
    except (TypeError, ValueError, RuntimeError):
        return None  # not a valid call of the op (the case generator's business, not the implementation's)
    snapshot = [None if t is None else t.detach().clone() for t in _inputs.to(case.tensors, case.dtype, device)]
    try:
        got_in, got_out = _call(public, backend, case, case.dtype, device, wanted_grad)
    except Exception as exc:
        raise AssertionError(f"raised {type(exc).__name__}: {exc} (eager returned)") from None
    for name, before, after in zip(_names(public), snapshot, got_in):
        if before is not None and not torch.equal(before.nan_to_num(), after.detach().nan_to_num()):
            raise AssertionError(f"modified its input {name}")
    if len(got_out) != len(eager_out):
        raise AssertionError(f"returned {len(got_out)} tensors, eager {len(eager_out)}")
    outputs = ("output",) if len(eager_out) == 1 else tuple(f"output {i}" for i in range(len(eager_out)))
    compared = Compared([])
    for label, g, e, r, e32 in zip(outputs, got_out, eager_out, ref_out, f32_out):
        if not isinstance(g, torch.Tensor):
            raise AssertionError(f"{label}: returned {type(g).__name__}, not a tensor")
        if g.device != e.device:
            raise AssertionError(f"{label}: on {g.device}, eager's on {e.device}")
        _compare(g.detach(), e.detach(), r.detach(), f"{label}", case.ulps, float32=e32.detach())
        compared.outputs.append((label, g.detach(), e.detach(), r.detach()))
    if not gradients:
        return compared
    gen = torch.Generator().manual_seed(1)
    grad_outputs = [torch.randn(e.shape, generator=gen, dtype=torch.float64).to(e.dtype).to(device) for e in eager_out]
    if any(e.requires_grad and not g.requires_grad for g, e in zip(got_out, eager_out)):
        raise AssertionError("its output has no gradient (requires_grad is False) where eager's has one; "
                             "pass gradients=False to check a forward-only implementation")
    eager_grads = _gradients(eager_out, eager_in, grad_outputs)
    ref_grads = _gradients(ref_out, ref_in, grad_outputs)
    f32_grads = eager_grads if case.dtype == torch.float32 else _gradients(f32_out, f32_in, grad_outputs)
    got_grads = _gradients(got_out, got_in, grad_outputs)
    present = [(n, t) for n, t in zip(_names(public), got_in) if t is not None]
    term_scale = case.term_scale(ref_in, grad_outputs) if case.term_scale is not None else 0.0
    compared.gradients = []
    for (name, t), g, e, r, e32 in zip(present, got_grads, eager_grads, ref_grads, f32_grads):
        zeros = torch.zeros_like(t)
        g = zeros if g is None else g
        e = zeros if e is None else e
        r = zeros.double() if r is None else r
        e32 = zeros.float() if e32 is None else e32
        if g.shape != t.shape or g.dtype != t.dtype:
            raise AssertionError(f"gradient of {name}: {g.dtype}{list(g.shape)}, its input is {t.dtype}{list(t.shape)}")
        # a broadcast input's gradient sums many terms: more rounding
        reduction = max(1, max((o.numel() for o in eager_out), default=1) // max(t.numel(), 1))
        _compare(g, e, r, f"gradient of {name}", case.ulps * reduction, term_scale, float32=e32)
        broadcast = any(o.numel() > t.numel() for o in eager_out)
        compared.gradients.append((f"gradient of {name}", g, e, r, broadcast))
    return compared


def _names(public) -> tuple[str, ...]:
    from torchops.testing._ops import spec

    return spec(public.__name__).names


# --- the public function -----------------------------------------------------------------------

def _devices_for(op: str, backend: str) -> list[str]:
    from torchops import _backends, _registry

    here = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    usable = []
    for device_type in here:
        try:
            concrete = _backends._choose(op, backend, device_type, auto_prefers="native")
            _registry.function(concrete, op, device_type)
        except RuntimeError:
            continue
        usable.append(device_type)
    return usable


def check_implementation(
    op: str,
    backend: str,
    *,
    devices=None,
    cases: int = 60,
    seed: int = 0,
    gradients: bool = True,
    edge_gradients: bool = True,
) -> str:
    """Check that backend `backend`'s implementation of torchops' op `op` (the
    public function's name, e.g. "ratio_iou") computes what the eager
    reference computes, in values and gradients.

    Runs `cases` cases (drawn from `seed`) on each of `devices` (default:
    every device type here that the backend runs `op` on) through the public
    function with ``backend=backend``, and compares with ``backend="eager"``
    and with eager in float64. Raises AssertionError with a report of what
    differs (reproducible from the case descriptions); returns a one-line
    summary otherwise. ``gradients=False`` checks values only (a forward-only
    implementation); ``edge_gradients=False`` leaves out the gradients of the
    cases with NaN, inf, huge or tiny values (TorchScript's autodiff, which the
    script backend uses, computes those with other formulas than eager's).
    """
    from torchops import _registry
    from torchops._backends import _validate

    if op not in _registry.OPS:
        raise ValueError(f"check_implementation: unknown op {op!r}; the ops are {', '.join(sorted(_registry.OPS))}")
    _validate(backend)
    public = _registry.OPS[op].public
    device_types = _devices_for(op, backend) if devices is None else [torch.device(d).type for d in devices]
    if not device_types:
        raise RuntimeError(f"check_implementation: backend {backend!r} cannot run {op} on any device here "
                           f"(torchops.available_backends() says why)")
    failures: list[str] = []
    checked = 0
    for device in device_types:
        for index, case in enumerate(_cases(op, cases, seed)):
            with_grads = gradients and (edge_gradients or not case.edge)
            try:
                _check_case(public, backend, case, device, with_grads)
            except AssertionError as exc:
                failures.append(f"case {index} on {device} ({case.description}):\n    {exc}")
            checked += 1
    title = f"check_implementation({op!r}, {backend!r})"
    if failures:
        listed = "\n  ".join(failures[:MAX_REPORTED])
        more = f"\n  ... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
        raise AssertionError(f"{title}: {len(failures)} of {checked} cases differ from eager:\n  {listed}{more}")
    return f"{title}: {checked} cases on {', '.join(device_types)} agree with eager"
