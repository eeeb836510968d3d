"""Test inputs of every op, shared by torchops' tests (hypothesis draws the
parameters) and check_implementation (a seeded generator draws them): shapes,
layouts (contiguous, broadcast, strided, 0-d, empty), dtypes and value
families (ties, degenerate and huge boxes, NaN/inf). Values are drawn from a
seeded torch.Generator, so a case is reproduced from its parameters."""

from __future__ import annotations

import torch

# --- ratio_iou: eight tensors of paired boxes (x, y, w, h) -----------------------------

BOX_NAMES = ("x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
RATIO_LAYOUTS = ("same", "broadcast", "strided", "zero_dim", "empty")
RATIO_VALUES = ("random", "integers", "identical", "disjoint", "degenerate", "huge", "tiny", "special")


def ratio_iou_values(kind: str, shape, dtype, gen: torch.Generator) -> list[torch.Tensor]:
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


def ratio_iou_layout(t: torch.Tensor, layout: str, index: int, gen: torch.Generator) -> torch.Tensor:
    """Input `index` of the eight in `layout`."""
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


def ratio_iou_case(kind: str, layout: str, shape, dtype, seed: int):
    """(eight float64 boxes, description) of one case."""
    shape = list(shape) + ([0] if layout == "empty" else [])
    gen = torch.Generator().manual_seed(seed)
    vals = ratio_iou_values(kind, shape, dtype, gen)
    boxes = [ratio_iou_layout(v, layout, i, gen) for i, v in enumerate(vals)]
    return boxes, f"{kind}/{layout}/{list(shape)}/{dtype}/seed={seed}"


def to(tensors, dtype, device, requires_grad=False):
    """The float64 tensors in `dtype` on `device`, keeping their strides (None stays None)."""
    out = []
    for b in tensors:
        if b is None:
            out.append(None)
            continue
        t = torch.empty_strided(b.shape, b.stride(), dtype=dtype, device=device)
        t.copy_(b)
        out.append(t.requires_grad_(requires_grad))
    return out


# --- the box family: [..., 4] boxes --------------------------------------------------------

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
BOX_LAYOUTS = ("contiguous", "rows of 85", "broadcast")
SPECIAL_BOXES = [
    [0.0, 0.0, 0.0, 0.0],  # zero box
    [1.0, 1.0, 1.0, 3.0],  # zero width
    [1.0, 1.0, 4.0, 1.0],  # zero height
    [0.0, 0.0, 1.0, 1.0],
    [0.25, 0.25, 0.75, 0.75],  # nested in the one above
    [5.0, 5.0, 6.0, 7.0],  # disjoint from the ones above
    [1e6, 1e6, 3e6, 2e6],  # huge
    [1.0, 0.0, 2.0, 1.0],  # touching [0, 0, 1, 1]
]


def valid_boxes(n, *, generator=None, dtype=torch.float64, scale=10.0):
    """xyxy boxes of positive size, shape [*n, 4]."""
    xy = torch.rand(*n, 2, generator=generator, dtype=torch.float64) * scale
    wh = torch.rand(*n, 2, generator=generator, dtype=torch.float64) * scale + 0.1
    return torch.cat([xy, xy + wh], -1).to(dtype)


def box_convert(boxes, in_fmt, out_fmt):
    from torchops.boxes import box_convert as convert

    return convert(boxes, in_fmt, out_fmt)


def box_pair(dtype, fmt, n, batch, layout, specials, nonfinite, seed, device="cpu"):
    """Two box tensors [*batch, n, 4] in `fmt` (float64 values made, then cast
    to `dtype` on `device`): random boxes, with SPECIAL_BOXES (indices
    `specials`) and the `nonfinite` values placed among them, in `layout`."""
    gen = torch.Generator().manual_seed(seed)
    b1, b2 = valid_boxes((*batch, n), generator=gen), valid_boxes((*batch, n), generator=gen)
    for k, s in enumerate(specials):
        if n:
            b1[..., k % n, :] = torch.tensor(SPECIAL_BOXES[s], dtype=torch.float64)
            b2[..., (k * 3) % n, :] = torch.tensor(SPECIAL_BOXES[(s + k) % len(SPECIAL_BOXES)], dtype=torch.float64)
    if specials and n:
        b2[..., 0, :] = b1[..., 0, :]  # identical boxes: max/min ties
    for k, value in enumerate(nonfinite):
        if n:
            b1.view(-1)[(k * 7) % b1.numel()] = value
    b1, b2 = box_convert(b1, "xyxy", fmt), box_convert(b2, "xyxy", fmt)
    if layout == "rows of 85":  # the first four columns of a YOLO-style prediction tensor
        wide = torch.randn(*b1.shape[:-1], 85, dtype=torch.float64, generator=gen)
        wide[..., :4] = b1
        b1 = wide[..., :4]
    elif layout == "broadcast" and n:
        b2 = b2[..., :1, :]
    return b1.to(device=device, dtype=dtype), b2.to(device=device, dtype=dtype)


# --- lstm_cell: gates, cell state, biases ---------------------------------------------------

LSTM_NAMES = ("input_gates", "hidden_gates", "cx", "b_ih", "b_hh")
LSTM_BIASES = ("both", "none", "ih", "hh")
LSTM_LAYOUTS = ("contiguous", "slices", "unbatched")
LSTM_SPECIALS = (float("nan"), float("inf"), -float("inf"), 100.0, -100.0)


def lstm_inputs(batch, hidden, dtype, biases, layout, scale, seed, device="cpu", specials=(), requires_grad=True):
    """(input_gates, hidden_gates, cx, b_ih, b_hh) in `dtype` on `device`
    (absent biases are None), with the `specials` values placed at random."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale

    if layout == "slices":  # both gate tensors are slices of one [B, 8H] matmul output
        both = r(batch, 8 * hidden)
        ig, hg = both[:, : 4 * hidden], both[:, 4 * hidden :]
    else:
        ig, hg = r(batch, 4 * hidden), r(batch, 4 * hidden)
    cx = r(batch, hidden)
    b_ih = r(4 * hidden) if biases in ("both", "ih") else None
    b_hh = r(4 * hidden) if biases in ("both", "hh") else None
    if layout == "unbatched":
        ig, hg, cx = ig[0] if batch else r(4 * hidden), hg[0] if batch else r(4 * hidden), cx[0] if batch else r(hidden)
    tensors = [ig, hg, cx, b_ih, b_hh]
    present = [t for t in tensors if t is not None and t.numel()]
    for value in specials if present else ():  # each at a random place of a random input
        t = present[int(torch.randint(0, len(present), (1,), generator=gen))]
        flat = torch.randint(0, t.numel(), (), generator=gen)
        t[tuple(torch.unravel_index(flat, t.shape))] = value
    return to(tensors, dtype, device, requires_grad=requires_grad)
