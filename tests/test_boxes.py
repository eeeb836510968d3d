"""The box IoU family's own claims, beside the conformance suite
(test_conformance.py, over every public function: values and gradients of
every backend against eager, gradcheck, opcheck, empty inputs, mixed dtypes,
autocast, TorchScript, compile, export): finite values and gradients at
degenerate boxes, torchvision.ops' values and gradients, its dtype rules,
paired = the diagonal of pairwise, the CPU's pairwise loop and the pairwise
kernels against eager, and a detection-style model under Inductor."""

from __future__ import annotations

import pytest
import torch

import torchops
import torchops.ops as ops
from torchops import boxes as box_module
from torchops.testing._inputs import SPECIAL_BOXES, valid_boxes
from torchops.testing._torchvision import torchvision_box_ops

TV = torchvision_box_ops()
PAIRWISE = ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")
PAIRED = ("paired_box_iou", "paired_generalized_box_iou", "paired_distance_box_iou", "paired_complete_box_iou")
LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
FUNCTIONS = PAIRWISE + PAIRED + LOSSES
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}


def call(name, b1, b2, backend, fmt="xyxy", **kw):
    return getattr(ops, name)(b1, b2, fmt=fmt, backend=backend, **kw)


def in_format(xyxy, fmt):
    return ops.box_convert(xyxy, "xyxy", fmt)


def assert_same_values(got, expected, dtype, where):
    assert got.dtype == expected.dtype, where
    assert got.shape == expected.shape, where
    assert torch.equal(got.isnan(), expected.isnan()), f"{where}: NaN at other places"
    finite = expected.isfinite()
    assert torch.equal(got.isfinite(), finite), f"{where}: inf at other places"
    torch.testing.assert_close(got[finite].double(), expected[finite].double(), rtol=TOLERANCE[dtype],
                               atol=TOLERANCE[dtype], msg=where)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("backend", ["eager", "native", "script"])
def test_degenerate_boxes_give_finite_values_and_gradients(name, backend, device):
    special = torch.tensor(SPECIAL_BOXES, dtype=torch.float64, device=device)
    b1 = special.repeat_interleave(len(SPECIAL_BOXES), 0).requires_grad_()
    b2 = special.repeat(len(SPECIAL_BOXES), 1).requires_grad_()
    if name in PAIRWISE:
        b1, b2 = special.clone().requires_grad_(), special.clone().requires_grad_()
    out = call(name, b1, b2, backend)
    grads = torch.autograd.grad(out.sum(), [b1, b2])
    assert out.isfinite().all(), (name, backend, out)
    assert all(g.isfinite().all() for g in grads), (name, backend)


# --- against torchvision.ops ----------------------------------------------------------

def torchvision_value(name, b1, b2, fmt):
    if name in PAIRED:  # the diagonal of the pairwise function
        return torch.diagonal(torchvision_value(name.removeprefix("paired_"), b1, b2, fmt), dim1=-2, dim2=-1)
    if name == "box_iou":
        return TV.box_iou(b1, b2, fmt=fmt)
    b1, b2 = TV.box_convert(b1, fmt, "xyxy"), TV.box_convert(b2, fmt, "xyxy")
    return getattr(TV, name)(b1, b2)


@pytest.mark.skipif(TV is None, reason="torchvision is not installed")
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("fmt", box_module.FORMATS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_matches_torchvision(name, fmt, dtype, device):
    gen = torch.Generator().manual_seed(7)
    n = 33
    xyxy1, xyxy2 = valid_boxes((n,), generator=gen), valid_boxes((n,), generator=gen)
    xyxy2[:5] = xyxy1[:5] + 0.01  # overlapping pairs
    b1 = in_format(xyxy1, fmt).to(device=device, dtype=dtype)
    b2 = in_format(xyxy2, fmt).to(device=device, dtype=dtype)
    for backend in ("eager", "native", "script"):
        o1, o2 = b1.clone().requires_grad_(), b2.clone().requires_grad_()
        t1, t2 = b1.clone().requires_grad_(), b2.clone().requires_grad_()
        got = call(name, o1, o2, backend, fmt)
        expected = torchvision_value(name, t1, t2, fmt)
        where = f"{name} {fmt} {dtype} {backend}"
        assert got.dtype == expected.dtype, where
        tol = 1e-9 if dtype == torch.float64 else 1e-4 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol, msg=where)
        weights = torch.rand(got.shape, generator=gen, dtype=torch.float64).to(device=device, dtype=got.dtype)
        grads = torch.autograd.grad((got * weights).sum(), [o1, o2])
        expected_grads = torch.autograd.grad((expected * weights).sum(), [t1, t2])
        for g, e in zip(grads, expected_grads):
            torch.testing.assert_close(g, e, rtol=tol * 10, atol=tol * 10, msg=where + " grad")


@pytest.mark.skipif(TV is None, reason="torchvision is not installed")
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", box_module.REDUCTIONS)
@pytest.mark.parametrize("backend", ["eager", "native"])
def test_loss_reductions_match_torchvision(name, reduction, backend):
    b1, b2 = valid_boxes((17,)), valid_boxes((17,))
    got = getattr(ops, name)(b1, b2, reduction, 1e-6, backend=backend)
    torch.testing.assert_close(got, getattr(TV, name)(b1, b2, reduction=reduction, eps=1e-6))
    empty = torch.zeros(0, 4)
    got, expected = getattr(ops, name)(empty, empty, reduction, backend=backend), getattr(TV, name)(empty, empty, reduction)
    assert torch.equal(got, expected) or (got.isnan().all() and expected.isnan().all())


@pytest.mark.skipif(TV is None, reason="torchvision is not installed")
@pytest.mark.parametrize("in_fmt", box_module.FORMATS)
@pytest.mark.parametrize("out_fmt", box_module.FORMATS)
def test_box_convert_matches_torchvision(in_fmt, out_fmt):
    b = in_format(valid_boxes((2, 9)), in_fmt).float()
    assert torch.equal(ops.box_convert(b, in_fmt, out_fmt), TV.box_convert(b, in_fmt, out_fmt))


# --- shapes, dtypes, layouts -------------------------------------------------------------

@pytest.mark.parametrize("backend", ["eager", "native"])
def test_shapes_and_dtypes(backend, device):
    b1, b2 = valid_boxes((2, 5), dtype=torch.float16).to(device), valid_boxes((2, 3), dtype=torch.float16).to(device)
    assert ops.box_iou(b1, b2, backend=backend).shape == (2, 5, 3)
    assert ops.box_iou(b1, b2, backend=backend).dtype == torch.float32  # as torchvision's _upcast
    assert ops.paired_box_iou(b1, b1, backend=backend).shape == (2, 5)
    assert ops.complete_box_iou_loss(b1[0, :3], b2[0], backend=backend).dtype == torch.float32
    assert ops.box_iou(torch.zeros(0, 4, device=device), b2[0], backend=backend).shape == (0, 3)
    ints = torch.tensor([[0, 0, 2, 2], [1, 1, 3, 3]], device=device)
    torch.testing.assert_close(ops.box_iou(ints, ints, backend=backend)[0, 1], torch.tensor(1 / 7, device=device))


def test_paired_equals_the_diagonal_of_pairwise(device):
    b1, b2 = valid_boxes((20,)).to(device), valid_boxes((20,)).to(device)
    for pairwise in PAIRWISE:
        diagonal = torch.diagonal(getattr(ops, pairwise)(b1, b2, backend="native"))
        assert torch.equal(getattr(ops, "paired_" + pairwise)(b1, b2, backend="native"), diagonal), pairwise


# --- the CPU's pairwise loop ----------------------------------------------------------------
# [..., N, 1, 4] x [..., 1, M, 4] (the pairwise functions' views, and the same
# views given to a loss) have their own CPU forward loop; every other layout
# takes the row views. Both are compared with eager, and with each other.

PAIRWISE_SHAPES = [  # (boxes1, boxes2): M around every vector width (4, 8, 16 lanes)
    ((5, 4), (37, 4)), ((3, 4), (1, 4)), ((1, 4), (3, 4)), ((1, 4), (1, 4)), ((7, 4), (16, 4)),
    ((7, 4), (8, 4)), ((2, 4), (65, 4)), ((2, 5, 4), (2, 19, 4)), ((1, 5, 4), (3, 19, 4)),
    ((3, 5, 4), (1, 19, 4)), ((0, 4), (9, 4)), ((9, 4), (0, 4)), ((2, 0, 4), (2, 5, 4)),
]
PAIRWISE_LAYOUTS = ("contiguous", "rows of 85", "column-major", "one box expanded")


def pairwise_boxes(shape, fmt, layout, dtype, gen):
    """Boxes of `shape` in `fmt` and `layout`: random ones, SPECIAL_BOXES and NaN/inf numbers among them."""
    b = valid_boxes(shape[:-1], generator=gen)
    rows = b.view(-1, 4)
    for k in range(min(len(rows), len(SPECIAL_BOXES))):
        rows[int(torch.randint(0, len(rows), (), generator=gen))] = torch.tensor(SPECIAL_BOXES[k], dtype=b.dtype)
    for value in (float("nan"), float("inf"), -float("inf")) if len(rows) > 2 else ():
        rows.view(-1)[int(torch.randint(0, rows.numel(), (), generator=gen))] = value
    b = in_format(b, fmt).to(dtype)
    if layout == "rows of 85":
        wide = torch.full((*shape[:-1], 85), float("nan"), dtype=dtype)
        wide[..., 3:7] = b
        return wide[..., 3:7]
    if layout == "column-major":
        return b.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "one box expanded" and shape[-2] > 0:  # row stride 0
        return b[..., :1, :].expand(shape)
    return b


def pairwise_call(name, b1, b2, backend, fmt):
    if name in PAIRWISE:
        return call(name, b1, b2, backend, fmt)
    return call(name, b1.unsqueeze(-2), b2.unsqueeze(-3), backend, fmt)  # a loss over the same views


def row_view_path(name, b1, b2, fmt):
    """The native op over materialized [..., N, M, 4] copies of the views: a
    layout the pairwise loop does not take."""
    op = box_module.BOX_OPS[box_module._OP_OF[name]]
    a, b = b1.unsqueeze(-2), b2.unsqueeze(-3)
    shape = torch.broadcast_shapes(a.shape, b.shape)
    eps = 1e-7 if name in LOSSES or name in ("distance_box_iou", "complete_box_iou") else 0.0
    return getattr(torch.ops.super_iou, op.name)(a.expand(shape).contiguous(), b.expand(shape).contiguous(), eps, fmt)


def assert_pairwise_matches(name, b1, b2, fmt, where):
    got = pairwise_call(name, b1, b2, "native", fmt)
    assert_same_values(got, pairwise_call(name, b1, b2, "eager", fmt), b1.dtype, where + " vs eager")
    rows = row_view_path(name, b1, b2, fmt)
    if "complete" in name:  # atan: vector and scalar code differ in the last bits, at other columns in the two loops
        assert_same_values(got, rows, b1.dtype, where + " vs row views")
    else:  # the same operations in both loops
        torch.testing.assert_close(got, rows, rtol=0, atol=0, equal_nan=True, msg=where + " vs row views")


@pytest.mark.parametrize("name", PAIRWISE + LOSSES)
@pytest.mark.parametrize("fmt", box_module.FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", PAIRWISE_LAYOUTS)
def test_pairwise_loop_agrees_with_eager_and_row_views(name, fmt, dtype, layout):
    gen = torch.Generator().manual_seed(3)
    for shape1, shape2 in PAIRWISE_SHAPES:
        b1 = pairwise_boxes(shape1, fmt, layout, dtype, gen)
        b2 = pairwise_boxes(shape2, fmt, layout, dtype, gen)
        assert_pairwise_matches(name, b1, b2, fmt, f"{name} {fmt} {dtype} {layout} {shape1} x {shape2}")


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_loop_threads(name):
    """Outputs large enough to be split over threads (by rows, by stretches of
    one long row, over many batches): right with 1 and 2 threads, and the same
    bits with both."""
    gen = torch.Generator().manual_seed(5)
    before = torch.get_num_threads()
    try:
        for shape1, shape2 in [((300, 4), (301, 4)), ((3, 4), (20001, 4)), ((1, 4), (9000, 4)),
                               ((40, 7, 4), (40, 9, 4)), ((1, 70, 4), (6, 500, 4))]:
            b1 = pairwise_boxes(shape1, "xyxy", "contiguous", torch.float32, gen)
            b2 = pairwise_boxes(shape2, "xyxy", "rows of 85", torch.float32, gen)
            outs = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                assert_pairwise_matches(name, b1, b2, "xyxy", f"{name} {threads} threads {shape1} x {shape2}")
                outs.append(pairwise_call(name, b1, b2, "native", "xyxy"))
            torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0, equal_nan=True)
    finally:
        torch.set_num_threads(before)


# --- a detection-style model under Inductor (test_conformance.py compiles each op with aot_eager) --

class Matcher(torch.nn.Module):
    def forward(self, pred, target):
        cost = ops.generalized_box_iou(pred, target)
        loss = ops.complete_box_iou_loss(pred[: target.shape[0]], target, "mean")
        return cost, loss, ops.paired_distance_box_iou(pred[:2], target[:2], 1e-7, fmt="xyxy")


@pytest.mark.parametrize("backend", ["native", "eager"])
def test_compile_fullgraph(backend):
    def step(pred, target):
        with torchops.use_backend(backend):
            cost, loss, paired = Matcher()(pred, target)
        return cost.sum() + loss + paired.sum()

    compiled = torch.compile(step, fullgraph=True)
    pred, target = valid_boxes((6,)).float().requires_grad_(), valid_boxes((4,)).float()
    got = compiled(pred, target)
    got.backward()
    expected = step(pred.detach().requires_grad_(), target)
    torch.testing.assert_close(got, expected)


# --- the pairwise kernels (detail::pairwise_layout): tiles, tails, strides ----------------

def _strided_rows(boxes):
    """The same boxes as the first four columns of wider rows (a [N, 85] prediction)."""
    wide = torch.full((*boxes.shape[:-1], 85), float("nan"), dtype=boxes.dtype, device=boxes.device)
    wide[..., :4] = boxes
    return wide[..., :4]


@pytest.mark.parametrize("name", ["box_iou", "complete_box_iou"])
def test_pairwise_many_rows_per_block_match_eager(name, device):
    """Enough rows that the CUDA kernel's blocks take several rows per thread
    (its shared-memory tile of rows fills, and the last tile is partial)."""
    gen = torch.Generator().manual_seed(7)
    b1 = valid_boxes((4001,), generator=gen).to(device=device, dtype=torch.float32)
    b2 = valid_boxes((520,), generator=gen).to(device=device, dtype=torch.float32)
    for rows in (b1, _strided_rows(b1)):
        got = getattr(ops, name)(rows, b2, backend="native")
        expected = getattr(ops, name)(rows, b2, backend="eager")
        assert_same_values(got, expected, torch.float32, name)


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("shape", [
    ((1,), (1,)), ((5,), (3,)), ((37,), (130,)), ((64,), (128,)), ((300,), (257,)), ((3, 20,), (3, 9)),
    ((1, 20), (4, 16)), ((4, 7), (1, 12)), ((0,), (5,)), ((6,), (0,))])
@pytest.mark.parametrize("layout", ["contiguous", "strided rows"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_pairwise_layouts_match_eager(name, shape, layout, dtype, device):
    """Every shape class of the pairwise path (one element, scalar column tails,
    whole vectors, several tiles, batched, broadcast batch, empty) and strided
    rows, in every format, against the eager reference."""
    gen = torch.Generator().manual_seed(sum(map(sum, shape)) + len(layout))
    for fmt in box_module.FORMATS:
        b1 = in_format(valid_boxes(shape[0], generator=gen), fmt).to(device=device, dtype=dtype)
        b2 = in_format(valid_boxes(shape[1], generator=gen), fmt).to(device=device, dtype=dtype)
        if b1.shape[:-2] == b2.shape[:-2] and b1.numel() and b2.numel():
            b2[..., :1, :] = b1[..., :1, :]  # identical boxes too
        if layout == "strided rows":
            b1, b2 = _strided_rows(b1), _strided_rows(b2)
        got = getattr(ops, name)(b1, b2, fmt=fmt, backend="native")
        expected = getattr(ops, name)(b1, b2, fmt=fmt, backend="eager")
        assert_same_values(got, expected, dtype, f"{name} {shape} {layout} {fmt}")


def _iou_kernel_boxes(kind, shape, gen):
    """xyxy float64 boxes [*shape, 4] for the CUDA box_iou kernel's two loops:
    "in range" (its fast loop), "normalized" (coordinates in [0, 1], a few
    below its 2^-16 bound), "mixed" (in-range boxes with degenerate, inverted,
    huge and NaN/inf boxes placed in some tiles only)."""
    b = valid_boxes(shape, generator=gen, scale=1.0 if kind == "normalized" else 10.0)
    rows = b.view(-1, 4)
    if kind == "normalized" and len(rows) > 3:
        rows[1, :2] = torch.tensor([1e-6, 3e-7], dtype=b.dtype)
        rows[len(rows) // 2] = torch.tensor([0.0, 0.0, 2.0**-17, 0.5], dtype=b.dtype)
    if kind == "mixed" and len(rows) > 8:
        specials = SPECIAL_BOXES + [[3.0, 3.0, 1.0, 1.0], [2.0, 1.0, 1.0, 5.0], [2.0**20, 1.0, 2.0**21, 2.0]]
        for k, box in enumerate(specials):
            rows[int(torch.randint(0, len(rows), (), generator=gen))] = torch.tensor(box, dtype=b.dtype)
        for value in (float("nan"), float("inf"), -float("inf")):
            rows.view(-1)[int(torch.randint(0, rows.numel(), (), generator=gen))] = value
    return b


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("fmt", box_module.FORMATS)
def test_box_iou_cuda_kernel_bitwise_equals_eager(dtype, fmt):
    """The CUDA box_iou kernel (pairwise_iou_kernel: a fast loop for tiles of
    in-range boxes, with its own division, and the general loop) gives the
    bits of the eager reference on the GPU (IEEE division; zeros may differ in
    sign), over tile and chunk tails (128 columns and 256 rows per tile), rows
    split over blocks, batches, broadcast batches and strided rows."""
    if not torchops._library.has_kernel("super_iou::paired_box_iou", "cuda"):
        pytest.skip("the CUDA kernels are not built")
    gen = torch.Generator().manual_seed(11)
    shapes = [((4001,), (130,)), ((300,), (257,)), ((37,), (5,)), ((1,), (1,)), ((9,), (1000,)),
              ((3, 20), (3, 9)), ((1, 70), (4, 131))]
    for kind in ("in range", "normalized", "mixed"):
        for shape1, shape2 in shapes:
            xyxy1, xyxy2 = _iou_kernel_boxes(kind, shape1, gen), _iou_kernel_boxes(kind, shape2, gen)
            b1 = in_format(xyxy1, fmt).to(device="cuda", dtype=dtype)
            b2 = in_format(xyxy2, fmt).to(device="cuda", dtype=dtype)
            for layout in ("contiguous", "strided rows"):
                r1, r2 = (b1, b2) if layout == "contiguous" else (_strided_rows(b1), _strided_rows(b2))
                got = ops.box_iou(r1, r2, fmt=fmt, backend="native")
                expected = ops.box_iou(r1, r2, fmt=fmt, backend="eager")
                torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True,
                                           msg=f"{kind} {shape1} x {shape2} {layout}")
