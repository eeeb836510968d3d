"""The triton backend's kernels. Each follows the formula header of the
native kernels operation by operation (csrc/super_iou/ratio_iou_math.h,
box_iou_math.h, csrc/super_lstm/lstm_cell_math.h), in float32 (float64 for
float64 inputs): NaN-propagating max/min, clamp that keeps NaN, the guarded
denominators and autograd's tie rules, so values and gradients equal the
eager reference's, finite at degenerate boxes.

Division is IEEE (div_rn: Triton's plain float32 division is approximate),
exp/tanh/atan are libdevice's. The box losses' backward, as the native one
(box_pair_terms with_reciprocals), takes the correctly rounded reciprocal of
each denominator (rcp.rn) and multiplies by it. Constants that float32 cannot hold exactly are
made in the compute dtype (tl.full), since Triton makes a Python float
literal a float32; for the same reason eps arrives as two float32 arguments
(hi + lo). eps is a run-time argument (not specialized).

What makes them fast (scripts/triton_sass.py counts it): sizes and strides
are specialized as Triton does by default (divisible by 16 or not), so that
masked loads and stores of contiguous rows are 16-byte vector accesses (a
size the compiler cannot see divisible makes every mask per element, and so
every access 4 bytes wide); NaN-propagating max/min are one instruction
(tl.maximum/minimum with PropagateNan.ALL: max.NaN/min.NaN on sm_80+, same
values as the compare-and-select chains but for the sign of a zero); a
quotient whose numerator is often 0 (a disjoint pair's intersection) divides
1 instead and picks the zero after (_div_zero_fast: IEEE division takes its
slow path for a zero numerator); every value the backward needs twice is
computed once (one atan per box in CIoU, as the native kernels do); and each
program loads everything in the layout it computes in (no layout conversion
through shared memory).
"""

from __future__ import annotations

import numpy as np
import triton
import triton.language as tl

from torchops.triton import interpreting

if interpreting():
    # Triton's interpreter (TRITON_INTERPRET=1, how these kernels are tested
    # on a machine without a GPU) has no libdevice: numpy's functions there.
    from triton.runtime.interpreter import TensorHandle

    class _NumpyMath:
        @staticmethod
        def _apply(x, f):
            return tl.tensor(TensorHandle(f(x.handle.data), x.handle.dtype.scalar), x.type)

        def exp(self, x):
            return self._apply(x, np.exp)

        def tanh(self, x):
            return self._apply(x, np.tanh)

        def atan(self, x):
            return self._apply(x, np.arctan)

        @staticmethod
        def mul_rn(a, b):
            return a * b

        @staticmethod
        def rcp_rn(x):
            return 1.0 / x

    libdevice = _NumpyMath()
else:
    from triton.language.extra import libdevice

# CIoU's aspect weight 4 / pi^2 (a constexpr: jit code reads no other globals).
# Inductor copies a kernel's constexpr globals into its generated code as
# `tl.constexpr(<repr>)`, so each must be a literal whose repr evaluates (not inf).
ASPECT_WEIGHT = tl.constexpr(0.40528473456935108578)
_INTERPRETING = tl.constexpr(interpreting())


# --- building blocks (csrc/common/elementwise.h) ------------------------------------------

@triton.jit
def _div(a, b, FP64: tl.constexpr):
    if FP64:
        return a / b
    else:
        return tl.math.div_rn(a, b)


@triton.jit
def _rcp(x, FP64: tl.constexpr):
    """1 / x, correctly rounded (rcp.rn: cheaper than a division)."""
    if FP64:
        return 1.0 / x
    else:
        return libdevice.rcp_rn(x)


@triton.jit
def _opaque(x, FP64: tl.constexpr):
    """x, through a register move the compiler cannot see into (it keeps the
    caller's choice of x: see _div_zero_fast)."""
    if _INTERPRETING:
        return x
    elif FP64:
        return tl.inline_asm_elementwise("mov.b64 $0, $1;", "=l,l", [x], dtype=tl.float64, is_pure=True, pack=1)
    else:
        return tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _div_zero_fast(a, b, FP64: tl.constexpr):
    """a / b (IEEE, the same value and sign), where a is often 0: IEEE
    division takes its slow path (a call, divergent in the warp) for a zero
    numerator, so a zero a divides 1 instead and the quotient 0 / b is picked
    after: +-0 (by the signs) where b is nonzero, NaN where b is 0 or NaN
    (there q = 1 / b is inf or NaN, and 0 * q is NaN)."""
    zero = a == 0.0
    q = _div(_opaque(tl.where(zero, 1.0, a), FP64), b, FP64)
    zero_over_b = tl.where((b > 0.0) | (b < 0.0), tl.where(b < 0.0, -a, a), a * q)
    return tl.where(zero, zero_over_b, q)


@triton.jit
def _mul(a, b):
    """a * b rounded on its own: never fused with an addition into an FMA
    (eager rounds every product; a fused one can turn an overflow into a
    finite number or the reverse, and NaN where eager has 0)."""
    return libdevice.mul_rn(a, b)


@triton.jit
def _max_nan(a, b):
    """torch.maximum: NaN if either is NaN (max.NaN on sm_80+)."""
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _min_nan(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _clamp_min(x, lo):
    return tl.where(x < lo, lo, x)


@triton.jit
def _clamp_min_backward(x, lo, grad):
    return tl.where(x >= lo, grad, 0.0)


@triton.jit
def _max_backward(a, b, grad):
    half = grad * 0.5
    return (tl.where(a == b, half, tl.where(a < b, 0.0, grad)),
            tl.where(a == b, half, tl.where(a > b, 0.0, grad)))


@triton.jit
def _min_backward(a, b, grad):
    half = grad * 0.5
    return (tl.where(a == b, half, tl.where(a > b, 0.0, grad)),
            tl.where(a == b, half, tl.where(a < b, 0.0, grad)))


@triton.jit
def _sigmoid(x, FP64: tl.constexpr):
    return _div(tl.full(x.shape, 1.0, x.dtype), 1.0 + libdevice.exp(-x), FP64)


@triton.jit
def _scalar(hi, lo, FP64: tl.constexpr):
    """A float passed as two float32 kernel arguments (Triton passes Python
    floats as float32): hi alone in float32, hi + lo in float64 (to 2^-48)."""
    if FP64:
        return tl.cast(hi, tl.float64) + tl.cast(lo, tl.float64)
    else:
        return tl.cast(hi, tl.float32)


@triton.jit
def _guarded(d):
    return tl.where(d == 0.0, 1.0, d)


# --- ratio_iou ------------------------------------------------------------------------------

@triton.jit
def ratio_iou_forward(x1p, y1p, w1p, h1p, x2p, y2p, w2p, h2p, outp, n, eps_hi, eps_lo, FP64: tl.constexpr,
                      BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    cdt = tl.float64 if FP64 else tl.float32
    x1 = tl.load(x1p + offs, mask=mask).to(cdt)
    y1 = tl.load(y1p + offs, mask=mask).to(cdt)
    w1 = tl.load(w1p + offs, mask=mask).to(cdt)
    h1 = tl.load(h1p + offs, mask=mask).to(cdt)
    x2 = tl.load(x2p + offs, mask=mask).to(cdt)
    y2 = tl.load(y2p + offs, mask=mask).to(cdt)
    w2 = tl.load(w2p + offs, mask=mask).to(cdt)
    h2 = tl.load(h2p + offs, mask=mask).to(cdt)
    eps = _scalar(eps_hi, eps_lo, FP64)
    if not FP64:  # as eager's clamp sees it: rounded to the input dtype
        eps = eps.to(x1p.dtype.element_ty).to(tl.float32)
    inter_x = _max_nan(x1, x2)
    inter_y = _max_nan(y1, y2)
    inter_w = _clamp_min(_min_nan(x1 + w1, x2 + w2) - inter_x, 0.0)
    inter_h = _clamp_min(_min_nan(y1 + h1, y2 + h2) - inter_y, 0.0)
    inter = _mul(inter_w, inter_h)
    union = _mul(w1, h1) + _mul(w2, h2) - inter
    iou = _div_zero_fast(inter, _clamp_min(union, eps), FP64)
    tl.store(outp + offs, iou.to(outp.dtype.element_ty), mask=mask)


@triton.jit
def ratio_iou_backward(gp, x1p, y1p, w1p, h1p, x2p, y2p, w2p, h2p,
                       gx1p, gy1p, gw1p, gh1p, gx2p, gy2p, gw2p, gh2p, n,
                       eps_hi, eps_lo, FP64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    cdt = tl.float64 if FP64 else tl.float32
    grad = tl.load(gp + offs, mask=mask).to(cdt)
    x1 = tl.load(x1p + offs, mask=mask).to(cdt)
    y1 = tl.load(y1p + offs, mask=mask).to(cdt)
    w1 = tl.load(w1p + offs, mask=mask).to(cdt)
    h1 = tl.load(h1p + offs, mask=mask).to(cdt)
    x2 = tl.load(x2p + offs, mask=mask).to(cdt)
    y2 = tl.load(y2p + offs, mask=mask).to(cdt)
    w2 = tl.load(w2p + offs, mask=mask).to(cdt)
    h2 = tl.load(h2p + offs, mask=mask).to(cdt)
    eps = _scalar(eps_hi, eps_lo, FP64)
    if not FP64:  # as eager's clamp sees it: rounded to the input dtype
        eps = eps.to(x1p.dtype.element_ty).to(tl.float32)
    # the forward, keeping what the backward needs
    right1 = x1 + w1
    right2 = x2 + w2
    bottom1 = y1 + h1
    bottom2 = y2 + h2
    inter_x = _max_nan(x1, x2)
    inter_y = _max_nan(y1, y2)
    raw_w = _min_nan(right1, right2) - inter_x
    raw_h = _min_nan(bottom1, bottom2) - inter_y
    inter_w = _clamp_min(raw_w, 0.0)
    inter_h = _clamp_min(raw_h, 0.0)
    inter = _mul(inter_w, inter_h)
    union = _mul(w1, h1) + _mul(w2, h2) - inter
    clamped = _clamp_min(union, eps)
    # iou = inter / clamped, as autograd's div backward writes it
    g_clamped = _mul(-grad, _div_zero_fast(_div_zero_fast(inter, clamped, FP64), clamped, FP64))
    g_union = _clamp_min_backward(union, eps, g_clamped)
    g_inter = _div(grad, clamped, FP64) + -g_union
    g_raw_w = _clamp_min_backward(raw_w, 0.0, _mul(g_inter, inter_h))
    g_raw_h = _clamp_min_backward(raw_h, 0.0, _mul(g_inter, inter_w))
    g_right1, g_right2 = _min_backward(right1, right2, g_raw_w)
    g_bottom1, g_bottom2 = _min_backward(bottom1, bottom2, g_raw_h)
    g_left1, g_left2 = _max_backward(x1, x2, -g_raw_w)
    g_top1, g_top2 = _max_backward(y1, y2, -g_raw_h)
    odt = gx1p.dtype.element_ty
    tl.store(gx1p + offs, (g_right1 + g_left1).to(odt), mask=mask)
    tl.store(gx2p + offs, (g_right2 + g_left2).to(odt), mask=mask)
    tl.store(gy1p + offs, (g_bottom1 + g_top1).to(odt), mask=mask)
    tl.store(gy2p + offs, (g_bottom2 + g_top2).to(odt), mask=mask)
    tl.store(gw1p + offs, (g_right1 + _mul(g_union, h1)).to(odt), mask=mask)
    tl.store(gh1p + offs, (g_bottom1 + _mul(g_union, w1)).to(odt), mask=mask)
    tl.store(gw2p + offs, (g_right2 + _mul(g_union, h2)).to(odt), mask=mask)
    tl.store(gh2p + offs, (g_bottom2 + _mul(g_union, w2)).to(odt), mask=mask)


# --- lstm_cell ------------------------------------------------------------------------------
# A program takes BLOCK_B rows and BLOCK_H hidden units: for each gate the
# units are contiguous in memory (gate k of unit j is column k * H + j).

@triton.jit
def _lstm_pre_activations(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, gate: tl.constexpr,
                          HAS_BIH: tl.constexpr, HAS_BHH: tl.constexpr, cdt: tl.constexpr):
    col = gate * H + cols
    pre = (tl.load(igp + rows[:, None] * s_ig + col[None, :], mask=mask).to(cdt)
           + tl.load(hgp + rows[:, None] * s_hg + col[None, :], mask=mask).to(cdt))
    # a bias as a [BLOCK_B, BLOCK_H] tile of stride 0 along the rows: loaded in
    # the gates' layout (its rows are cache hits), where a [BLOCK_H] load would
    # be converted to that layout through shared memory
    bias = rows[:, None] * 0 + col[None, :]
    if HAS_BIH:
        pre = pre + tl.load(bihp + bias, mask=mask).to(cdt)
    if HAS_BHH:
        pre = pre + tl.load(bhhp + bias, mask=mask).to(cdt)
    return pre


@triton.jit
def _lstm_gates(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H,
                HAS_BIH: tl.constexpr, HAS_BHH: tl.constexpr, FP64: tl.constexpr):
    cdt = tl.float64 if FP64 else tl.float32
    i = _sigmoid(_lstm_pre_activations(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, 0,
                                       HAS_BIH, HAS_BHH, cdt), FP64)
    f = _sigmoid(_lstm_pre_activations(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, 1,
                                       HAS_BIH, HAS_BHH, cdt), FP64)
    g = libdevice.tanh(_lstm_pre_activations(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, 2,
                                             HAS_BIH, HAS_BHH, cdt))
    o = _sigmoid(_lstm_pre_activations(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, 3,
                                       HAS_BIH, HAS_BHH, cdt), FP64)
    return i, f, g, o


@triton.jit(do_not_specialize=["B"])
def lstm_cell_forward(igp, hgp, cxp, bihp, bhhp, hyp, cyp, B, H, s_ig, s_hg, s_cx,
                      HAS_BIH: tl.constexpr, HAS_BHH: tl.constexpr, FP64: tl.constexpr,
                      BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)
    mask = (rows < B)[:, None] & (cols < H)[None, :]
    cdt = tl.float64 if FP64 else tl.float32
    i, f, g, o = _lstm_gates(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, HAS_BIH, HAS_BHH, FP64)
    cx = tl.load(cxp + rows[:, None] * s_cx + cols[None, :], mask=mask).to(cdt)
    cy = f * cx + i * g
    hy = o * libdevice.tanh(cy)
    out = rows[:, None] * H + cols[None, :]
    tl.store(hyp + out, hy.to(hyp.dtype.element_ty), mask=mask)
    tl.store(cyp + out, cy.to(cyp.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["B"])
def lstm_cell_backward(ghyp, gcyp, igp, hgp, cxp, bihp, bhhp, ggatesp, gcxp, gbiasp, B, H, s_ig, s_hg, s_cx,
                       HAS_BIH: tl.constexpr, HAS_BHH: tl.constexpr, FP64: tl.constexpr,
                       BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """The gates are recomputed from the inputs (no workspace to write and
    read). With a bias, each program also writes its rows' sum of the gate
    gradients to row program_id(0) of gbiasp; the caller sums those rows
    (a fixed order: deterministic)."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)
    mask = (rows < B)[:, None] & (cols < H)[None, :]
    cdt = tl.float64 if FP64 else tl.float32
    i, f, g, o = _lstm_gates(igp, hgp, bihp, bhhp, rows, cols, mask, s_ig, s_hg, H, HAS_BIH, HAS_BHH, FP64)
    cx = tl.load(cxp + rows[:, None] * s_cx + cols[None, :], mask=mask).to(cdt)
    state = rows[:, None] * H + cols[None, :]
    grad_hy = tl.load(ghyp + state, mask=mask).to(cdt)
    grad_cy = tl.load(gcyp + state, mask=mask).to(cdt)
    tanh_cy = libdevice.tanh(f * cx + i * g)
    # hy = o * tanh(cy); cy also leaves the cell (lstm_cell_gates_backward)
    grad_cell = grad_cy + (grad_hy * o) * (1.0 - tanh_cy * tanh_cy)
    g_i = (grad_cell * g) * (1.0 - i) * i
    g_f = (grad_cell * cx) * (1.0 - f) * f
    g_g = (grad_cell * i) * (1.0 - g * g)
    g_o = (grad_hy * tanh_cy) * (1.0 - o) * o
    tl.store(gcxp + state, (grad_cell * f).to(gcxp.dtype.element_ty), mask=mask)
    gates = rows[:, None] * (4 * H) + cols[None, :]
    odt = ggatesp.dtype.element_ty
    tl.store(ggatesp + gates, g_i.to(odt), mask=mask)
    tl.store(ggatesp + gates + H, g_f.to(odt), mask=mask)
    tl.store(ggatesp + gates + 2 * H, g_g.to(odt), mask=mask)
    tl.store(ggatesp + gates + 3 * H, g_o.to(odt), mask=mask)
    if HAS_BIH or HAS_BHH:
        partial = gbiasp + tl.program_id(0).to(tl.int64) * (4 * H) + cols
        cmask = cols < H
        tl.store(partial, tl.sum(tl.where(mask, g_i, 0.0), axis=0), mask=cmask)
        tl.store(partial + H, tl.sum(tl.where(mask, g_f, 0.0), axis=0), mask=cmask)
        tl.store(partial + 2 * H, tl.sum(tl.where(mask, g_g, 0.0), axis=0), mask=cmask)
        tl.store(partial + 3 * H, tl.sum(tl.where(mask, g_o, 0.0), axis=0), mask=cmask)


# --- the box losses (box_iou_math.h, loss convention) ---------------------------------------
# Boxes are [n, 4] rows, loaded as [BLOCK, 4] tiles and split into columns.

@triton.jit
def _columns(tile, BLOCK: tl.constexpr):
    """p0, p1, p2, p3 of a [BLOCK, 4] tile."""
    even, odd = tl.split(tl.reshape(tile, (BLOCK, 2, 2)))  # even: p0, p2; odd: p1, p3
    p0, p2 = tl.split(even)
    p1, p3 = tl.split(odd)
    return p0, p1, p2, p3


@triton.jit
def _tile(p0, p1, p2, p3, BLOCK: tl.constexpr):
    """The [BLOCK, 4] tile of four columns (_columns backwards)."""
    return tl.reshape(tl.join(tl.join(p0, p2), tl.join(p1, p3)), (BLOCK, 4))


@triton.jit
def _geometry(p0, p1, p2, p3, FMT: tl.constexpr):
    """x1, y1, x2, y2, w, h, xc, yc of boxes read in FMT (0 xyxy, 1 xywh, 2 cxcywh)."""
    if FMT == 0:
        x1 = p0
        y1 = p1
        x2 = p2
        y2 = p3
        w = x2 - x1
        h = y2 - y1
        xc = (x1 + x2) * 0.5
        yc = (y1 + y2) * 0.5
    elif FMT == 1:
        x1 = p0
        y1 = p1
        w = p2
        h = p3
        x2 = x1 + w
        y2 = y1 + h
        xc = (x1 + x2) * 0.5
        yc = (y1 + y2) * 0.5
    else:
        xc = p0
        yc = p1
        w = p2
        h = p3
        x1 = xc - 0.5 * w
        y1 = yc - 0.5 * h
        x2 = xc + 0.5 * w
        y2 = yc + 0.5 * h
    return x1, y1, x2, y2, w, h, xc, yc


@triton.jit
def _geometry_backward(gx1, gy1, gx2, gy2, gw, gh, gxc, gyc, FMT: tl.constexpr):
    """Gradients of p0..p3 from those of the geometry."""
    if FMT == 0:
        return gx1 - gw + gxc * 0.5, gy1 - gh + gyc * 0.5, gx2 + gw + gxc * 0.5, gy2 + gh + gyc * 0.5
    elif FMT == 1:
        gx2b = gx2 + gxc * 0.5
        gy2b = gy2 + gyc * 0.5
        return gx1 + gxc * 0.5 + gx2b, gy1 + gyc * 0.5 + gy2b, gw + gx2b, gh + gy2b
    else:
        return gxc + gx1 + gx2, gyc + gy1 + gy2, gw + (gx2 - gx1) * 0.5, gh + (gy2 - gy1) * 0.5


@triton.jit
def _aspect_angle(w, h, FP64: tl.constexpr):
    """(w / h with 0 / 0 replaced by 0, atan of it): atan(w / h), and where
    h == 0 its limit (+-pi/2 from w / 0 = +-inf, 0 for w == 0); one atan."""
    ratio = tl.where((w == 0.0) & (h == 0.0), 0.0, _div(w, h, FP64))
    return ratio, libdevice.atan(ratio)


@triton.jit
def _aspect_angle_backward(w, h, ratio, h_rcp, grad, FP64: tl.constexpr):
    """From the ratio w * (1 / h) (0 for 0 / 0) and 1 / h: as the native
    aspect_angle_backward, where h == 0 the ratio is w / 1 and 1 / h is 1."""
    guarded_rcp = tl.where(h == 0.0, 1.0, h_rcp)
    q = tl.where(h == 0.0, w, ratio)
    gq = _div(tl.where(h == 0.0, 0.0, grad), 1.0 + q * q, FP64)
    return gq * guarded_rcp, tl.where(h == 0.0, 0.0, -gq * (q * guarded_rcp))


@triton.jit
def _load_boxes(b1p, b2p, offs, mask, cdt: tl.constexpr, BLOCK: tl.constexpr):
    k = tl.arange(0, 4)
    m = mask[:, None] & (k < 4)[None, :]
    a = tl.load(b1p + offs[:, None] * 4 + k[None, :], mask=m).to(cdt)
    b = tl.load(b2p + offs[:, None] * 4 + k[None, :], mask=m).to(cdt)
    a0, a1, a2, a3 = _columns(a, BLOCK)
    b0, b1, b2, b3 = _columns(b, BLOCK)
    return a0, a1, a2, a3, b0, b1, b2, b3


@triton.jit
def box_loss_forward(b1p, b2p, outp, n, eps_hi, eps_lo, alpha_hi, alpha_lo, KIND: tl.constexpr,
                     FMT: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    """1 - GIoU (KIND 1), 1 - DIoU (2) or 1 - CIoU (3) of each pair of rows."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    cdt = tl.float64 if FP64 else tl.float32
    eps = _scalar(eps_hi, eps_lo, FP64)
    a0, a1, a2, a3, b0, b1, b2, b3 = _load_boxes(b1p, b2p, offs, mask, cdt, BLOCK)
    ax1, ay1, ax2, ay2, aw, ah, axc, ayc = _geometry(a0, a1, a2, a3, FMT)
    bx1, by1, bx2, by2, bw, bh, bxc, byc = _geometry(b0, b1, b2, b3, FMT)
    iw = _min_nan(ax2, bx2) - _max_nan(ax1, bx1)
    ih = _min_nan(ay2, by2) - _max_nan(ay1, by1)
    inter = tl.where((iw > 0.0) & (ih > 0.0), iw * ih, 0.0)
    union = aw * ah + bw * bh - inter
    iou = _div_zero_fast(inter, _guarded(union + eps), FP64)
    ew = _max_nan(ax2, bx2) - _min_nan(ax1, bx1)
    eh = _max_nan(ay2, by2) - _min_nan(ay1, by1)
    if KIND == 1:
        area = ew * eh
        value = 1.0 - (iou - _div(area - union, _guarded(area + eps), FP64))
    else:
        dx = axc - bxc
        dy = ayc - byc
        value = 1.0 - iou + _div(dx * dx + dy * dy, _guarded(ew * ew + eh * eh + eps), FP64)
        if KIND == 3:
            _ra, angle_a = _aspect_angle(aw, ah, FP64)
            _rb, angle_b = _aspect_angle(bw, bh, FP64)
            d = angle_a - angle_b
            v = tl.full([], ASPECT_WEIGHT, cdt) * (d * d)
            alpha = _div(v, _guarded(1.0 - iou + v + _scalar(alpha_hi, alpha_lo, FP64)), FP64)
            value = value + alpha * v
    tl.store(outp + offs, value.to(outp.dtype.element_ty), mask=mask)


@triton.jit
def box_loss_backward(gp, b1p, b2p, g1p, g2p, n, eps_hi, eps_lo, alpha_hi, alpha_lo, KIND: tl.constexpr,
                      FMT: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    """Gradients of both boxes' four numbers (box_pair_backward, loss=true)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    cdt = tl.float64 if FP64 else tl.float32
    eps = _scalar(eps_hi, eps_lo, FP64)
    grad = tl.load(gp + offs, mask=mask).to(cdt)
    a0, a1, a2, a3, b0, b1, b2, b3 = _load_boxes(b1p, b2p, offs, mask, cdt, BLOCK)
    ax1, ay1, ax2, ay2, aw, ah, axc, ayc = _geometry(a0, a1, a2, a3, FMT)
    bx1, by1, bx2, by2, bw, bh, bxc, byc = _geometry(b0, b1, b2, b3, FMT)
    # the forward's terms
    iw = _min_nan(ax2, bx2) - _max_nan(ax1, bx1)
    ih = _min_nan(ay2, by2) - _max_nan(ay1, by1)
    both = (iw > 0.0) & (ih > 0.0)
    inter = tl.where(both, iw * ih, 0.0)
    union = aw * ah + bw * bh - inter
    # as the native backward (box_pair_terms with_reciprocals): 1 / each
    # denominator, the quotients and derivatives as products with it
    union_rcp = _rcp(_guarded(union + eps), FP64)
    iou = inter * union_rcp
    ew = _max_nan(ax2, bx2) - _min_nan(ax1, bx1)
    eh = _max_nan(ay2, by2) - _min_nan(ay1, by1)
    zero = tl.zeros_like(grad)
    gax1 = zero
    gay1 = zero
    gax2 = zero
    gay2 = zero
    gaw = zero
    gah = zero
    gaxc = zero
    gayc = zero
    gbx1 = zero
    gby1 = zero
    gbx2 = zero
    gby2 = zero
    gbw = zero
    gbh = zero
    gbxc = zero
    gbyc = zero
    # loss = 1 - iou + penalty
    g_iou = -grad
    g_penalty = grad
    g_union = zero
    if KIND == 1:
        # penalty = (C - U) / guarded(C + eps)
        area = ew * eh
        area_rcp = _rcp(_guarded(area + eps), FP64)
        g_quotient = g_penalty * area_rcp
        g_den = tl.where(area + eps == 0.0, 0.0, -g_penalty * (((area - union) * area_rcp) * area_rcp))
        g_area = g_quotient + g_den
        g_union = g_union - g_quotient
        g_w = g_area * eh
        g_h = g_area * ew
    else:
        # rho2 / guarded(cw^2 + ch^2 + eps)
        c2 = ew * ew + eh * eh + eps
        diagonal2_rcp = _rcp(_guarded(c2), FP64)
        dx = axc - bxc
        dy = ayc - byc
        rho2 = dx * dx + dy * dy
        g_rho2 = g_penalty * diagonal2_rcp
        g_c2 = tl.where(c2 == 0.0, 0.0, -g_penalty * ((rho2 * diagonal2_rcp) * diagonal2_rcp))
        g_dx = g_rho2 * (2.0 * dx)
        g_dy = g_rho2 * (2.0 * dy)
        gaxc = gaxc + g_dx
        gbxc = gbxc - g_dx
        gayc = gayc + g_dy
        gbyc = gbyc - g_dy
        g_w = g_c2 * (2.0 * ew)
        g_h = g_c2 * (2.0 * eh)
    # the enclosing box: max of the right/bottom sides, min of the left/top
    ga, gb = _max_backward(ax2, bx2, g_w)
    gax2 = gax2 + ga
    gbx2 = gbx2 + gb
    ga, gb = _min_backward(ax1, bx1, -g_w)
    gax1 = gax1 + ga
    gbx1 = gbx1 + gb
    ga, gb = _max_backward(ay2, by2, g_h)
    gay2 = gay2 + ga
    gby2 = gby2 + gb
    ga, gb = _min_backward(ay1, by1, -g_h)
    gay1 = gay1 + ga
    gby1 = gby1 + gb
    if KIND == 3:
        # + alpha v, alpha constant; v = k (angle_a - angle_b)^2
        ha_rcp = _rcp(ah, FP64)
        hb_rcp = _rcp(bh, FP64)
        ratio_a = tl.where((aw == 0.0) & (ah == 0.0), 0.0, aw * ha_rcp)
        ratio_b = tl.where((bw == 0.0) & (bh == 0.0), 0.0, bw * hb_rcp)
        angle_a = libdevice.atan(ratio_a)
        angle_b = libdevice.atan(ratio_b)
        d = angle_a - angle_b
        v = tl.full([], ASPECT_WEIGHT, cdt) * (d * d)
        alpha = _div(v, _guarded(1.0 - iou + v + _scalar(alpha_hi, alpha_lo, FP64)), FP64)
        g_d = g_penalty * alpha * (tl.full([], ASPECT_WEIGHT, cdt) * (2.0 * d))
        gw_a, gh_a = _aspect_angle_backward(aw, ah, ratio_a, ha_rcp, g_d, FP64)
        gw_b, gh_b = _aspect_angle_backward(bw, bh, ratio_b, hb_rcp, -g_d, FP64)
        gaw = gaw + gw_a
        gah = gah + gh_a
        gbw = gbw + gw_b
        gbh = gbh + gh_b
    # iou = inter / guarded(U + eps)
    g_inter = g_iou * union_rcp
    g_union = g_union + tl.where(union + eps == 0.0, 0.0, -g_iou * (iou * union_rcp))
    # U = wa ha + wb hb - inter
    gaw = gaw + g_union * ah
    gah = gah + g_union * aw
    gbw = gbw + g_union * bh
    gbh = gbh + g_union * bw
    g_inter = g_inter - g_union
    # the where's mask first, then the product's derivative (as autograd)
    g_product = tl.where(both, g_inter, 0.0)
    g_iw = g_product * ih
    g_ih = g_product * iw
    ga, gb = _min_backward(ax2, bx2, g_iw)
    gax2 = gax2 + ga
    gbx2 = gbx2 + gb
    ga, gb = _max_backward(ax1, bx1, -g_iw)
    gax1 = gax1 + ga
    gbx1 = gbx1 + gb
    ga, gb = _min_backward(ay2, by2, g_ih)
    gay2 = gay2 + ga
    gby2 = gby2 + gb
    ga, gb = _max_backward(ay1, by1, -g_ih)
    gay1 = gay1 + ga
    gby1 = gby1 + gb
    p0, p1, p2, p3 = _geometry_backward(gax1, gay1, gax2, gay2, gaw, gah, gaxc, gayc, FMT)
    q0, q1, q2, q3 = _geometry_backward(gbx1, gby1, gbx2, gby2, gbw, gbh, gbxc, gbyc, FMT)
    k = tl.arange(0, 4)
    m = mask[:, None] & (k < 4)[None, :]
    rows = offs[:, None] * 4 + k[None, :]
    tl.store(g1p + rows, _tile(p0, p1, p2, p3, BLOCK).to(g1p.dtype.element_ty), mask=m)
    tl.store(g2p + rows, _tile(q0, q1, q2, q3, BLOCK).to(g2p.dtype.element_ty), mask=m)
