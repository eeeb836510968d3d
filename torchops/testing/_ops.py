"""What the conformance suite needs of each op beyond its declaration: its
inputs and the claims it makes beyond "as accurate as eager".

An op's inputs are
  - its conformance cases: `case(draw)` makes one from a `Draw`, which
    check_implementation drives from a seeded generator and
    tests/test_conformance.py from hypothesis (the same case space);
  - a few fixed calls (`Sample`s, float64 on the CPU, cast and moved by the
    tests): well-conditioned ones (smooth: gradcheck, opcheck, TorchScript,
    compile, export), empty ones, one of mixed dtypes, one of large broadcast
    or strided inputs (read without copies).
Everything else (backends, ops, schemas, autocast, fake kernels) the tests
read from the declarations and the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import torch

from torchops.testing import _inputs
from torchops.testing._conformance import Case


class Draw(Protocol):
    """Where a case builder's choices come from."""

    edge: bool  # draw only cases of NaN/inf, huge/tiny or degenerate values

    def cycle(self, options: Sequence, period: int = 1):
        """One of `options`; a seeded draw takes them in turn (case i gets
        options[(i // period) % len(options)]), so that the first cases cover
        their combinations."""

    def choice(self, options: Sequence):
        """One of `options`."""

    def integer(self, lo: int, hi: int) -> int:
        """lo <= n < hi."""


@dataclass
class Sample:
    """A call of the public function: float64 CPU tensors (None: an absent
    optional input) and other arguments, positional and by keyword."""

    label: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    dtype: torch.dtype | None = None  # what it returns, where that is the point of the sample


@dataclass
class OpSpec:
    names: tuple[str, ...]  # the tensor arguments, in order
    case: Callable[[Draw], Case]
    samples: Callable[[], list[Sample]]  # well-conditioned calls
    empty: Callable[[], list[Sample]]  # calls with empty (and 0-d) tensors
    mixed: Callable[[], Sample]  # mixed dtypes, which promote as in eager
    large: Callable[[], Sample]  # broadcast or strided inputs the native kernels read in place
    # the dtype it returns under autocast (device type, autocast dtype) where
    # the tensor arguments `autocast_inputs` (None: all) come from autocast's
    # matmuls (in its dtype) and the others are float32
    autocast_dtype: Callable[[str, torch.dtype], torch.dtype]
    autocast_inputs: tuple | None = None
    finite_differences: bool = True  # False: a stop-gradient term, which gradcheck cannot see
    native_bitwise: tuple = ()  # dtypes in which native returns eager's bits (values, unreduced gradients)


    def autocast_sample(self, dtype: torch.dtype) -> Sample:
        """The first well-conditioned call, its `autocast_inputs` in `dtype`, the other tensors float32."""
        sample = self.samples()[0]
        tensors = [i for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor)]
        low = {tensors[i] for i in (self.autocast_inputs if self.autocast_inputs is not None else range(len(tensors)))}
        args = tuple(a.to(dtype if i in low else torch.float32) if i in tensors else a for i, a in enumerate(sample.args))
        return Sample(f"{sample.label}, autocast {dtype}", args, sample.kwargs)


def _rand(gen, *shape, lo=0.0, hi=1.0):
    return torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo


# --- ratio_iou: eight tensors of paired boxes ------------------------------------------------

RATIO_EDGE_VALUES = ("huge", "tiny", "special", "degenerate")


def _ratio_iou_case(draw: Draw) -> Case:
    # periods 8, 5 and 4: the first 40 seeded cases are 40 different combinations
    kind = draw.cycle(RATIO_EDGE_VALUES if draw.edge else _inputs.RATIO_VALUES)
    layout, dtype = draw.cycle(_inputs.RATIO_LAYOUTS), draw.cycle(_inputs.DTYPES)
    shape = [draw.integer(1, 7) for _ in range(draw.integer(1, 4))]
    if draw.cycle([False] * 8 + [True]):
        shape = [draw.integer(30, 300)]  # vector bodies with tails
    seed = draw.integer(0, 2**31 - 1)
    eps = draw.choice([1e-5] * 4 + [0.0, 1e-3])
    boxes, description = _inputs.ratio_iou_case(kind, layout, shape, dtype, seed)
    # edge: values whose intermediate terms overflow, underflow (in float16
    # already eps**2 at degenerate boxes and ties) or divide by zero (eps 0)
    edge = kind in ("huge", "tiny", "special") or (dtype == torch.float16 and kind in ("degenerate", "integers")) \
        or eps == 0.0
    return Case(f"{description}, eps={eps:g}", boxes, dtype, (eps,), edge=edge, term_scale=_ratio_iou_term_scale)


def _ratio_iou_term_scale(boxes64, grad_outputs) -> float:
    """|g| (w1 + h1 + w2 + h2) / union: the gradient sums terms of this size
    that cancel for equal boxes, so rounding follows them, not the result."""
    x1, y1, w1, h1, x2, y2, w2, h2 = (b.detach().double().cpu() for b in boxes64)
    union = (w1 * h1 + w2 * h2).abs().clamp(min=1e-5)
    terms = grad_outputs[0].double().cpu().abs() * (w1.abs() + h1.abs() + w2.abs() + h2.abs()) / union
    finite = terms[torch.isfinite(terms)]
    return finite.max().item() if finite.numel() else 0.0


def _smooth_boxes(gen, shape) -> list[torch.Tensor]:
    """x, y, w, h of two boxes without ties or degenerate sizes, where the IoU is smooth."""
    xy = [_rand(gen, *shape, hi=4.0) for _ in range(4)]
    wh = [_rand(gen, *shape, lo=1.0, hi=4.0) for _ in range(4)]
    return [xy[0], xy[1], wh[0], wh[1], xy[2], xy[3], wh[2], wh[3]]


def _ratio_iou_samples() -> list[Sample]:
    gen = torch.Generator().manual_seed(0)
    broadcast = [b.reshape(3, 4) for b in _smooth_boxes(gen, (12,))]
    broadcast[0], broadcast[5], broadcast[7] = broadcast[0][:1], broadcast[5][:, :1], broadcast[7][0, 0]
    return [
        Sample("contiguous", (*_smooth_boxes(gen, (12,)), 1e-5)),
        Sample("broadcast and 0-d", (*broadcast, 1e-5)),
        Sample("transposed", (*(b.t() for b in _smooth_boxes(gen, (4, 3))), 0.5)),
    ]


def _ratio_iou_empty() -> list[Sample]:
    return [Sample(f"{list(shape)}", (*(torch.ones(shape, dtype=torch.float64) for _ in range(8)), 1e-5))
            for shape in [(3, 0), (0,), (2, 0, 1), ()]]


def _ratio_iou_mixed() -> Sample:
    boxes = _smooth_boxes(torch.Generator().manual_seed(1), (6,))
    # float32, with a float64, a float16 and a 0-d float64 (which does not promote the result)
    dtypes = [torch.float32] * 8
    dtypes[3], dtypes[5] = torch.float64, torch.float16
    boxes = [b.to(d) for b, d in zip(boxes, dtypes)]
    boxes[6] = boxes[6][0]
    return Sample("float32, float64, float16 and a 0-d float64", (*boxes, 1e-5), dtype=torch.float64)


def _ratio_iou_large() -> Sample:
    gen = torch.Generator().manual_seed(2)
    boxes = [b.expand(1000, 1000) for b in _smooth_boxes(gen, (1,))]
    boxes[0] = _rand(gen, 1000, 1, hi=4.0).expand(1000, 1000)
    return Sample("expanded [1000, 1000]", (*boxes, 1e-5))


# --- lstm_cell: gates, cell state, biases ----------------------------------------------------

def _lstm_cell_case(draw: Draw) -> Case:
    dtype, bias = draw.cycle(_inputs.DTYPES), draw.cycle(_inputs.LSTM_BIASES, period=4)
    layout = draw.cycle(_inputs.LSTM_LAYOUTS)
    batch = draw.choice([0, 1, 2, 3, 5, 8])
    # scalar tails only (H < the vector width) and vector bodies with tails
    hidden = draw.choice([1, 2, 3, 4, 7, 8, 16]) if draw.cycle([False, True]) else draw.integer(17, 300)
    scale = draw.choice([0.5, 3.0, 20.0])
    if draw.edge:  # NaN, inf and saturating values, in vector bodies and scalar tails
        specials = [draw.choice(_inputs.LSTM_SPECIALS) for _ in range(draw.integer(1, 13))]
    elif draw.cycle([False] * 4 + [True]):
        specials = [draw.choice(_inputs.LSTM_SPECIALS) for _ in range(draw.integer(1, 6))]
    else:
        specials = []
    seed = draw.integer(0, 2**31 - 1)
    tensors = _inputs.lstm_inputs(batch, hidden, torch.float64, bias, layout, scale, seed,
                                  specials=specials, requires_grad=False)
    description = (f"batch={batch} hidden={hidden} {dtype} biases={bias} layout={layout} scale={scale} "
                   f"seed={seed}" + (f" specials={specials}" if specials else ""))
    return Case(description, tensors, dtype, edge=bool(specials), ulps=16.0)


def _lstm(biases="both", layout="contiguous", batch=3, hidden=2, seed=0) -> tuple:
    return tuple(_inputs.lstm_inputs(batch, hidden, torch.float64, biases, layout, 1.0, seed, requires_grad=False))


def _lstm_cell_samples() -> list[Sample]:
    return [Sample("biases", _lstm()), Sample("no biases", _lstm("none", seed=1)),
            Sample("unbatched, b_ih only", _lstm("ih", "unbatched", seed=2)),
            Sample("gates sliced from one tensor", _lstm(layout="slices", seed=3))]


def _lstm_cell_mixed() -> Sample:
    ig, hg, cx, b_ih, b_hh = _lstm(seed=4)
    # bfloat16 gates with a float32 cell state (what CPU autocast hands over), a float64 bias
    return Sample("bfloat16 gates, float32 cx, float64 b_ih", (ig.bfloat16(), hg.bfloat16(), cx.float(), b_ih, b_hh.float()),
                  dtype=torch.float64)


# --- the box family: [..., 4] boxes ------------------------------------------------------------

def _box_signature(op: str) -> str:
    """What a box function takes after its two box tensors: "loss" (reduction,
    eps), "eps" or "fmt" (fmt only, by keyword, as every one of them)."""
    import inspect

    from torchops.boxes import PUBLIC

    params = inspect.signature(PUBLIC[op]).parameters
    return "loss" if "reduction" in params else "eps" if "eps" in params else "fmt"


def _pairwise(op: str) -> bool:
    return not op.startswith("paired_") and not op.endswith("_loss")


def _box_case(op: str, draw: Draw) -> Case:
    signature = _box_signature(op)
    dtype, fmt = draw.cycle(_inputs.DTYPES), draw.cycle(_inputs.BOX_FORMATS)
    layout = draw.cycle(_inputs.BOX_LAYOUTS, period=3)
    n = draw.integer(0, 4) if draw.cycle([False, False, False, True]) else draw.integer(4, 41)
    batch = draw.choice([(), (2,), (1,)])
    specials = [draw.integer(0, len(_inputs.SPECIAL_BOXES)) for _ in range(draw.integer(0, 7))]
    if draw.edge:
        nonfinite = [draw.choice([math.nan, math.inf, -math.inf]) for _ in range(draw.integer(1, 3))]
        n = max(n, 1)
    elif draw.cycle([False] * 5 + [True]):
        nonfinite = [draw.choice([math.nan, math.inf, -math.inf]) for _ in range(2)]
    else:
        nonfinite = []
    seed = draw.integer(0, 2**31 - 1)
    b1, b2 = _inputs.box_pair(torch.float64, fmt, n, batch, layout, specials, nonfinite, seed)
    if _pairwise(op):
        b1, b2 = b1.reshape(-1, 4)[:12], b2.reshape(-1, 4)[:9]
    description = (f"{dtype} fmt={fmt} n={n} batch={list(batch)} layout={layout} special boxes={specials}"
                   + (f" nonfinite={nonfinite}" if nonfinite else "") + f" seed={seed}")
    args: tuple = ()
    if signature == "eps":
        args = (draw.choice([1e-7, 1e-7, 0.0, 1e-3]),)
    elif signature == "loss":
        args = (draw.choice(["none", "none", "mean", "sum"]), draw.choice([1e-7, 1e-7, 0.0, 1e-3]))
    if args:
        description += f", {', '.join(map(repr, args))}"
    # edge: NaN/inf, and boxes that overflow float16 (the huge special box)
    edge = bool(nonfinite) or (dtype == torch.float16 and any(bool((b.abs() > 65504).any()) for b in (b1, b2)))
    return Case(description, [b1, b2], dtype, args, {"fmt": fmt}, edge=edge, ulps=16.0,
                term_scale=lambda boxes, grads: _box_term_scale(op, fmt, boxes, grads))


def _box_term_scale(op: str, fmt: str, boxes, grad_outputs) -> float:
    """|g| times the side lengths over the smallest denominator of each pair
    (union, enclosing area, enclosing diagonal squared): the size of the terms
    that a box gradient sums, which cancel for equal, nested or huge boxes."""
    from torchops.boxes import _geometry

    b1, b2 = (b.detach().double().cpu() for b in boxes)
    if _pairwise(op):
        b1, b2 = b1.unsqueeze(-2), b2.unsqueeze(-3)
    ax1, ay1, ax2, ay2, aw, ah = _geometry(b1, fmt)[:6]
    bx1, by1, bx2, by2, bw, bh = _geometry(b2, fmt)[:6]
    ew, eh = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1), torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    sides = aw.abs() + ah.abs() + bw.abs() + bh.abs() + ew.abs() + eh.abs()
    denominators = torch.stack(torch.broadcast_tensors((aw * ah).abs() + (bw * bh).abs(), (ew * eh).abs(),
                                                       ew * ew + eh * eh))
    smallest = torch.where(denominators > 0, denominators, torch.full_like(denominators, math.inf)).amin(0)
    terms = sides / torch.where(torch.isinf(smallest), torch.ones_like(smallest), smallest)
    g = grad_outputs[0].double().cpu().abs()
    g = g.max().item() if g.numel() else 0.0
    finite = terms[torch.isfinite(terms)]
    return g * finite.max().item() if finite.numel() else 0.0


def _box_args(op: str, reduction: str = "none", eps: float = 1e-7) -> tuple:
    signature = _box_signature(op)
    return (eps,) if signature == "eps" else (reduction, eps) if signature == "loss" else ()


def _box_samples(op: str) -> list[Sample]:
    gen = torch.Generator().manual_seed(0)
    samples = []
    for fmt in _inputs.BOX_FORMATS:
        b1, b2 = _inputs.valid_boxes((4,), generator=gen), _inputs.valid_boxes((4,), generator=gen)
        b2[0] = b1[0] + 0.05  # one overlapping pair
        b1, b2 = _inputs.box_convert(b1, "xyxy", fmt), _inputs.box_convert(b2, "xyxy", fmt)
        samples.append(Sample(fmt, (b1, b2, *_box_args(op, "mean")), {"fmt": fmt}))
    b1, b2 = _inputs.valid_boxes((3, 5), generator=gen), _inputs.valid_boxes((5,), generator=gen)
    samples.append(Sample("broadcast batch", (b1, b2, *_box_args(op)), {"fmt": "xywh"}))
    wide = _rand(gen, 6, 85)
    wide[:, :4] = _inputs.valid_boxes((6,), generator=gen)
    samples.append(Sample("rows of 85", (wide[:, :4], _inputs.valid_boxes((6,), generator=gen),
                                         *_box_args(op, "sum"))))
    return samples


def _box_empty(op: str) -> list[Sample]:
    some = _inputs.valid_boxes((3,))
    pairs = [(torch.zeros(0, 4, dtype=torch.float64), some), (some, torch.zeros(0, 4, dtype=torch.float64)),
             (torch.zeros(2, 0, 4, dtype=torch.float64), torch.zeros(2, 0, 4, dtype=torch.float64))] \
        if _pairwise(op) else [(torch.zeros(0, 4, dtype=torch.float64),) * 2,
                               (torch.zeros(2, 0, 4, dtype=torch.float64), torch.zeros(0, 4, dtype=torch.float64))]
    reductions = ("none", "mean", "sum") if _box_signature(op) == "loss" else ("none",)
    return [Sample(f"{list(b1.shape)} x {list(b2.shape)} {r}", (b1, b2, *_box_args(op, r)))
            for b1, b2 in pairs for r in reductions]


def _box_mixed(op: str) -> Sample:
    gen = torch.Generator().manual_seed(5)
    b1, b2 = _inputs.valid_boxes((5,), generator=gen).half(), _inputs.valid_boxes((5,), generator=gen)
    return Sample("float16 and float64", (b1, b2, *_box_args(op)), dtype=torch.float64)


def _box_large(op: str) -> Sample:
    """The first four columns of a [N, 85] prediction tensor."""
    gen = torch.Generator().manual_seed(6)
    wide = _rand(gen, 1000, 85)
    wide[:, :4] = _inputs.valid_boxes((1000,), generator=gen)
    b2 = _inputs.valid_boxes((30 if _pairwise(op) else 1000,), generator=gen)
    return Sample("rows of 85", (wide[:, :4], b2, *_box_args(op)))


# --- every op ------------------------------------------------------------------------------------

def _box_spec(op: str) -> OpSpec:
    return OpSpec(
        ("boxes1", "boxes2"), lambda draw: _box_case(op, draw), lambda: _box_samples(op), lambda: _box_empty(op),
        lambda: _box_mixed(op), lambda: _box_large(op),
        # not on an autocast list: half boxes are computed in float32 and
        # returned as float32 (torchvision's _upcast)
        autocast_dtype=lambda device, dtype: torch.float32,
        # CIoU's alpha is stop-gradient (as in torchvision)
        finite_differences="complete" not in op,
    )


SPECS: dict[str, OpSpec] = {
    "ratio_iou": OpSpec(
        _inputs.BOX_NAMES, _ratio_iou_case, _ratio_iou_samples, _ratio_iou_empty, _ratio_iou_mixed, _ratio_iou_large,
        autocast_dtype=lambda device, dtype: torch.float32,  # runs in float32 under autocast
        # the native kernels do eager's operations in eager's order
        native_bitwise=(torch.float32, torch.float64),
    ),
    "lstm_cell": OpSpec(
        _inputs.LSTM_NAMES, _lstm_cell_case, _lstm_cell_samples,
        lambda: [Sample("batch 0", _lstm(batch=0)), Sample("batch 0, no biases", _lstm("none", batch=0))],
        _lstm_cell_mixed, lambda: Sample("gates sliced from one tensor", _lstm(layout="slices", batch=1000, hidden=64)),
        # PyTorch's policy for aten::lstm_cell: the autocast dtype on CUDA; on
        # the CPU nothing is cast (lower-precision gates with a float32 cx give float32)
        autocast_dtype=lambda device, dtype: dtype if device == "cuda" else torch.float32, autocast_inputs=(0, 1),
    ),
}


def spec(op: str) -> OpSpec:
    """The inputs and claims of op `op` (a box function's from the family's)."""
    from torchops.boxes import PUBLIC

    if op not in SPECS and op in PUBLIC:
        SPECS[op] = _box_spec(op)
    return SPECS[op]
