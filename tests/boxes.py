"""Random paired boxes for the ratio_iou tests: shapes, layouts (contiguous,
broadcast, strided, 0-d, empty) and value families (ties, degenerate, huge,
tiny, NaN/inf) chosen by hypothesis, values drawn from a seeded generator."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

NAMES = ("x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
LAYOUTS = ("same", "broadcast", "strided", "zero_dim", "empty")
VALUES = ("random", "integers", "identical", "disjoint", "degenerate", "huge", "tiny", "special")

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3)


def _values(kind: str, shape, dtype, gen: torch.Generator):
    """Eight float64 tensors of `shape` (before layout changes)."""
    def rand(lo, hi):
        return torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo

    if kind == "integers":  # many exact ties at max/min/clamp
        vals = [torch.randint(-3, 4, shape, generator=gen).double() for _ in range(8)]
        for i in (2, 3, 6, 7):
            vals[i] = vals[i].abs()
        return vals
    big = {torch.float16: 300.0, torch.bfloat16: 1e20, torch.float32: 1e20, torch.float64: 1e160}[dtype]
    scale = {"huge": big, "tiny": 1e-4}.get(kind, 10.0)
    x1, y1, x2, y2 = (rand(-scale, scale) for _ in range(4))
    w1, h1, w2, h2 = (rand(0, scale / 2) for _ in range(4))
    if kind == "identical":
        x2, y2, w2, h2 = x1.clone(), y1.clone(), w1.clone(), h1.clone()
    elif kind == "disjoint":
        x2 = x1 + w1 + rand(0, scale)
    elif kind == "degenerate":
        w1 = torch.where(rand(0, 1) < 0.5, torch.zeros_like(w1), w1)
        h2 = torch.where(rand(0, 1) < 0.5, torch.zeros_like(h2), h2)
        w2 = -w2 * (rand(0, 1) < 0.3)  # negative widths too
    vals = [x1, y1, w1, h1, x2, y2, w2, h2]
    if kind == "special":
        specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0], dtype=torch.float64)
        for v in vals:
            mask = rand(0, 1) < 0.15
            pick = torch.randint(0, 4, shape, generator=gen)
            v[mask] = specials[pick][mask]
    return vals


def _layout(t: torch.Tensor, layout: str, index: int, gen: torch.Generator) -> torch.Tensor:
    if layout == "broadcast" and torch.rand((), generator=gen) < 0.5:
        # keep a random subset of dims as size 1 (expanded by the op)
        keep = [bool(torch.rand((), generator=gen) < 0.5) for _ in range(t.dim())]
        index_ = tuple(slice(None) if k else slice(0, 1) for k in keep)
        t = t[index_]
        if torch.rand((), generator=gen) < 0.3 and t.dim() > 1 and t.shape[0] == 1:
            t = t[0]  # and drop a leading dim
        return t.contiguous()
    if layout == "strided":
        wide = torch.stack([t, t], dim=-1).flatten(-2)  # every other element is t
        t = wide[..., ::2]
        if t.dim() >= 2 and index % 2:
            t = t.transpose(0, 1).contiguous().transpose(0, 1)
        return t
    if layout == "zero_dim" and index % 3 == 0:
        return t.reshape(-1)[0].clone()
    return t


@st.composite
def box_cases(draw, dtypes=DTYPES):
    """(boxes as float64 tensors, dtype, description)"""
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    kind = draw(st.sampled_from(VALUES))
    shape = draw(shapes)
    if layout == "empty":
        shape = shape + [0]
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    vals = _values(kind, shape, dtype, gen)
    boxes = [_layout(v, layout, i, gen) for i, v in enumerate(vals)]
    return boxes, dtype, f"{kind}/{layout}/{list(shape)}/{dtype}/seed={seed}"


def to(boxes, dtype, device, requires_grad=False):
    """The float64 boxes in `dtype` on `device`, keeping their strides."""
    out = []
    for b in boxes:
        t = torch.empty_strided(b.shape, b.stride(), dtype=dtype, device=device)
        t.copy_(b)
        out.append(t.requires_grad_(requires_grad))
    return out
