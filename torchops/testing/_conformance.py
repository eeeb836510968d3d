"""check_implementation: torchops' conformance suite as a function.

An implementation conforms when, for every case, it returns what the eager
reference returns, at least as accurately (against eager run in float64 on
the same inputs): same shape, dtype and device; NaN where eager is NaN in
every precision, no NaN or inf where eager has a number; values and the
gradients of every input no further from the float64 reference than a few
units in the last place (of the dtype, at the tensor's magnitude) plus twice
eager's own error. The cases cover random shapes, all four float dtypes,
broadcast, strided and 0-d inputs, empty inputs, ties, degenerate boxes and
NaN/inf, drawn from a seed; the inputs are the ones torchops' own tests use
(torchops/testing/_inputs.py).
"""

from __future__ import annotations

import math
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


# --- the cases of each op ------------------------------------------------------------------

def _pick(gen: torch.Generator, options):
    return options[int(torch.randint(0, len(options), (), generator=gen))]


def _ratio_iou_cases(count: int, gen: torch.Generator) -> Iterator[Case]:
    kinds, layouts, dtypes = _inputs.RATIO_VALUES, _inputs.RATIO_LAYOUTS, _inputs.DTYPES
    for i in range(count):
        # periods 8, 5 and 4: the first 40 cases are 40 different combinations
        kind, layout, dtype = kinds[i % len(kinds)], layouts[i % len(layouts)], dtypes[i % len(dtypes)]
        shape = [int(torch.randint(1, 7, (), generator=gen)) for _ in range(int(torch.randint(1, 4, (), generator=gen)))]
        if i % 9 == 8:
            shape = [int(torch.randint(30, 300, (), generator=gen))]  # vector bodies with tails
        seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
        eps = _pick(gen, [1e-5] * 4 + [0.0, 1e-3])
        boxes, description = _inputs.ratio_iou_case(kind, layout, shape, dtype, seed)
        # edge: values whose intermediate terms overflow, underflow (in float16
        # already eps**2 at degenerate boxes and ties) or divide by zero (eps 0)
        edge = kind in ("huge", "tiny", "special") or (dtype == torch.float16 and kind in ("degenerate", "integers")) \
            or eps == 0.0
        yield Case(f"{description}, eps={eps:g}", boxes, dtype, (eps,), edge=edge, term_scale=_ratio_iou_term_scale)


def _ratio_iou_term_scale(boxes64, grad_outputs) -> float:
    """|g| (w1 + h1 + w2 + h2) / union: the gradient sums terms of this size
    that cancel for equal boxes, so rounding follows them, not the result."""
    x1, y1, w1, h1, x2, y2, w2, h2 = (b.detach().double().cpu() for b in boxes64)
    union = (w1 * h1 + w2 * h2).abs().clamp(min=1e-5)
    terms = grad_outputs[0].double().cpu().abs() * (w1.abs() + h1.abs() + w2.abs() + h2.abs()) / union
    finite = terms[torch.isfinite(terms)]
    return finite.max().item() if finite.numel() else 0.0


def _lstm_cell_cases(count: int, gen: torch.Generator) -> Iterator[Case]:
    dtypes, biases, layouts = _inputs.DTYPES, _inputs.LSTM_BIASES, _inputs.LSTM_LAYOUTS
    for i in range(count):
        dtype, bias, layout = dtypes[i % 4], biases[(i // 4) % 4], layouts[i % 3]
        batch = _pick(gen, [0, 1, 2, 3, 5, 8])
        hidden = _pick(gen, [1, 2, 3, 4, 7, 8, 16]) if i % 2 else int(torch.randint(17, 300, (), generator=gen))
        scale = _pick(gen, [0.5, 3.0, 20.0])
        specials = [_pick(gen, _inputs.LSTM_SPECIALS) for _ in range(int(torch.randint(1, 6, (), generator=gen)))] \
            if i % 5 == 4 else []
        seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
        tensors = _inputs.lstm_inputs(batch, hidden, torch.float64, bias, layout, scale, seed,
                                      specials=specials, requires_grad=False)
        description = (f"batch={batch} hidden={hidden} {dtype} biases={bias} layout={layout} scale={scale} "
                       f"seed={seed}" + (f" specials={specials}" if specials else ""))
        yield Case(description, tensors, dtype, edge=bool(specials), ulps=16.0)


# the arguments after the two box tensors, by signature
_BOX_SIGNATURES = {
    "box_iou": "fmt", "generalized_box_iou": "fmt", "paired_box_iou": "fmt", "paired_generalized_box_iou": "fmt",
    "distance_box_iou": "eps", "complete_box_iou": "eps", "paired_distance_box_iou": "eps",
    "paired_complete_box_iou": "eps",
    "generalized_box_iou_loss": "loss", "distance_box_iou_loss": "loss", "complete_box_iou_loss": "loss",
}


def _box_cases(op: str, count: int, gen: torch.Generator) -> Iterator[Case]:
    signature = _BOX_SIGNATURES[op]
    pairwise = not op.startswith("paired_") and not op.endswith("_loss")
    formats, layouts, dtypes = _inputs.BOX_FORMATS, _inputs.BOX_LAYOUTS, _inputs.DTYPES
    for i in range(count):
        dtype, fmt, layout = dtypes[i % 4], formats[i % 3], layouts[(i // 3) % 3]
        n = int(torch.randint(0, 4, (), generator=gen)) if i % 4 == 3 else int(torch.randint(4, 41, (), generator=gen))
        batch = _pick(gen, [(), (2,), (1,)])
        specials = [int(torch.randint(0, len(_inputs.SPECIAL_BOXES), (), generator=gen))
                    for _ in range(int(torch.randint(0, 7, (), generator=gen)))]
        nonfinite = [_pick(gen, [math.nan, math.inf, -math.inf]) for _ in range(2)] if i % 6 == 5 else []
        seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
        b1, b2 = _inputs.box_pair(torch.float64, fmt, n, batch, layout, specials, nonfinite, seed)
        if pairwise:
            b1, b2 = b1.reshape(-1, 4)[:12], b2.reshape(-1, 4)[:9]
        description = (f"{dtype} fmt={fmt} n={n} batch={list(batch)} layout={layout} special boxes={specials}"
                       + (f" nonfinite={nonfinite}" if nonfinite else "") + f" seed={seed}")
        args: tuple = ()
        if signature == "eps":
            args = (_pick(gen, [1e-7, 1e-7, 0.0, 1e-3]),)
        elif signature == "loss":
            args = (_pick(gen, ["none", "none", "mean", "sum"]), _pick(gen, [1e-7, 1e-7, 0.0, 1e-3]))
        if args:
            description += f", {', '.join(map(repr, args))}"
        # edge: NaN/inf, and the huge special box, which overflows float16 (inf)
        edge = bool(nonfinite) or (dtype == torch.float16 and _HUGE_BOX in specials)
        yield Case(description, [b1, b2], dtype, args, {"fmt": fmt}, edge=edge, ulps=16.0)


_HUGE_BOX = next(i for i, b in enumerate(_inputs.SPECIAL_BOXES) if max(b) > 65504)


def _cases(op: str, count: int, seed: int) -> Iterator[Case]:
    gen = torch.Generator().manual_seed(seed)
    if op == "ratio_iou":
        return _ratio_iou_cases(count, gen)
    if op == "lstm_cell":
        return _lstm_cell_cases(count, gen)
    return _box_cases(op, count, gen)


# --- one case ------------------------------------------------------------------------------

def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _call(public: Callable, backend: str, case: Case, dtype, device, requires_grad: bool):
    tensors = _inputs.to(case.tensors, dtype, device, requires_grad=requires_grad)
    out = public(*tensors, *case.args, backend=backend, **case.kwargs)
    return tensors, _as_tuple(out)


def _gradients(outputs, tensors, grad_outputs) -> list:
    wrt = [t for t in tensors if t is not None]
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [None] * len(wrt)
    return list(torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True))


def _compare(actual, eager, reference, what: str, ulps: float, scale: float = 0.0) -> None:
    """assert_as_accurate_as_eager, with the tolerance floor at least `ulps`
    times eager's largest error in this tensor (and the case's term scale):
    where sums cancel (gradients of equal boxes), rounding errors follow the
    size of the terms, which eager's own error shows, not that of the (near
    zero) result."""
    if eager.numel():
        e = (eager.double().cpu() - reference.double().cpu()).abs()
        finite = e[torch.isfinite(e)]
        scale = max(scale, finite.max().item() / ULP[eager.dtype] if finite.numel() else 0.0)
    assert_as_accurate_as_eager(actual, eager, reference.to(actual.device), what, ulps=ulps, slack=2.0, scale=scale)


def _check_case(public, backend, case: Case, device, gradients: bool) -> None:
    wanted_grad = gradients
    try:
        eager_in, eager_out = _call(public, "eager", case, case.dtype, device, wanted_grad)
        ref_in, ref_out = _call(public, "eager", case, torch.float64, device, wanted_grad)
    except (TypeError, ValueError, RuntimeError):
        return  # not a valid call of the op (the case generator's business, not the implementation's)
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
    for label, g, e, r in zip(outputs, got_out, eager_out, ref_out):
        if not isinstance(g, torch.Tensor):
            raise AssertionError(f"{label}: returned {type(g).__name__}, not a tensor")
        if g.device != e.device:
            raise AssertionError(f"{label}: on {g.device}, eager's on {e.device}")
        _compare(g.detach(), e.detach(), r.detach(), f"{label}", case.ulps)
    if not gradients:
        return
    gen = torch.Generator().manual_seed(1)
    grad_outputs = [torch.randn(e.shape, generator=gen, dtype=torch.float64).to(e.dtype).to(device) for e in eager_out]
    if any(e.requires_grad and not g.requires_grad for g, e in zip(got_out, eager_out)):
        raise AssertionError("its output has no gradient (requires_grad is False) where eager's has one; "
                             "pass gradients=False to check a forward-only implementation")
    eager_grads = _gradients(eager_out, eager_in, grad_outputs)
    ref_grads = _gradients(ref_out, ref_in, [g.double() for g in grad_outputs])
    got_grads = _gradients(got_out, got_in, grad_outputs)
    present = [(n, t) for n, t in zip(_names(public), got_in) if t is not None]
    term_scale = case.term_scale(ref_in, grad_outputs) if case.term_scale is not None else 0.0
    for (name, t), g, e, r in zip(present, got_grads, eager_grads, ref_grads):
        zeros = torch.zeros_like(t)
        g = zeros if g is None else g
        e = zeros if e is None else e
        r = zeros.double() if r is None else r
        if g.shape != t.shape or g.dtype != t.dtype:
            raise AssertionError(f"gradient of {name}: {g.dtype}{list(g.shape)}, its input is {t.dtype}{list(t.shape)}")
        # a broadcast input's gradient sums many terms: more rounding
        reduction = max(1, max((o.numel() for o in eager_out), default=1) // max(t.numel(), 1))
        _compare(g, e, r, f"gradient of {name}", case.ulps * reduction, term_scale)


def _names(public) -> tuple[str, ...]:
    name = public.__name__
    if name == "ratio_iou":
        return _inputs.BOX_NAMES
    if name == "lstm_cell":
        return _inputs.LSTM_NAMES
    return ("boxes1", "boxes2")


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
