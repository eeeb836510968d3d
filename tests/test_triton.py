"""The triton backend: conformance with eager (check_implementation),
torch.compile(fullgraph=True), torch.export keeping its ops, opcheck of its
ops. On CUDA where triton is importable; on the CPU under Triton's
interpreter (TRITON_INTERPRET=1 and triton installed), slowly."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import torchops
import torchops.ops as ops
from torchops import triton as triton_backend
from torchops.testing import check_implementation

HAS_TRITON = importlib.util.find_spec("triton") is not None
if torch.cuda.is_available() and HAS_TRITON:
    DEVICE = "cuda"
elif triton_backend.interpreting() and HAS_TRITON:
    DEVICE = "cpu"
else:
    DEVICE = None
needs_device = pytest.mark.skipif(
    DEVICE is None, reason="needs a CUDA device and triton (or TRITON_INTERPRET=1 with triton installed)")
# Under the interpreter, wrap_triton leaves kernels unwrapped, so tracing
# (fake tensors: torch.compile, torch.export, opcheck) would run them.
traced = pytest.mark.skipif(DEVICE != "cuda", reason="tracing triton ops needs CUDA (not Triton's interpreter)")


@needs_device
@pytest.mark.parametrize("op", triton_backend.OPS)
def test_conforms(op):
    print(check_implementation(op, "triton", devices=[DEVICE]))


@needs_device
def test_available_and_what_auto_picks():
    status = torchops.available_backends()
    assert status["triton"].available, status["triton"].reason
    if DEVICE == "cuda":
        assert "On CUDA here:" in status["auto"].reason


def _boxes(n=64):
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, generator=gen) * 10
    wh = torch.rand(n, 2, generator=gen) * 5 + 0.1
    return torch.cat([xy, xy + wh], -1).to(DEVICE)


class DetectionLoss(torch.nn.Module):
    def forward(self, pred, target, gates, cx):
        p, t = pred.unbind(-1), target.unbind(-1)
        iou = torchops.ratio_iou(p[0], p[1], p[2], p[3], t[0], t[1], t[2], t[3], backend="triton")
        giou = ops.generalized_box_iou_loss(pred, target, "mean", backend="triton")
        diou = ops.distance_box_iou_loss(pred, target, "sum", backend="triton")
        ciou = ops.complete_box_iou_loss(pred, target, backend="triton")
        hy, cy = torchops.lstm_cell(gates, gates * 0.5, cx, backend="triton")
        return (1 - iou).mean() + giou + diou + ciou.sum() + hy.sum() + cy.mean()


def _inputs():
    gen = torch.Generator().manual_seed(1)
    pred = _boxes().requires_grad_()
    target = _boxes().flip(0)
    gates = torch.randn(8, 64, generator=gen).to(DEVICE).requires_grad_()
    cx = torch.randn(8, 16, generator=gen).to(DEVICE).requires_grad_()
    return pred, target, gates, cx


def _value_and_grads(fn, inputs):
    out = fn(*inputs)
    grads = torch.autograd.grad(out, [inputs[0], inputs[2], inputs[3]])
    return out, grads


@traced
@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    # Inductor compiles the Triton kernels for the GPU; on the CPU (interpreter) aot_eager runs them
    compiled = torch.compile(DetectionLoss(), fullgraph=True, dynamic=dynamic,
                             backend="inductor" if DEVICE == "cuda" else "aot_eager")
    inputs = _inputs()
    got, got_grads = _value_and_grads(compiled, inputs)
    expected, expected_grads = _value_and_grads(DetectionLoss(), inputs)
    torch.testing.assert_close(got, expected)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e)


@traced
def test_compile_traces_into_the_op():
    graphs = []

    def record(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm.forward

    torch._dynamo.reset()
    torch.compile(DetectionLoss(), fullgraph=True, backend=record)(*_inputs())
    assert any("torchops_triton.ratio_iou" in g and "torchops_triton.lstm_cell" in g for g in graphs), graphs


@traced
def test_export_keeps_the_ops():
    inputs = [t.detach() for t in _inputs()]
    program = torch.export.export(DetectionLoss(), tuple(inputs))
    text = str(program.graph)
    for op in ("torchops_triton.ratio_iou", "torchops_triton.box_iou_loss", "torchops_triton.lstm_cell"):
        assert op in text, text
    torch.testing.assert_close(program.module()(*inputs), DetectionLoss()(*inputs))


@traced
def test_opcheck():
    from torchops.triton import ops as triton_ops

    pred, target, gates, cx = _inputs()
    boxes = [t.detach().requires_grad_() for t in (*pred.unbind(-1), *target.unbind(-1))]
    torch.library.opcheck(triton_ops.ratio_iou_op, (*boxes, 1e-5))
    torch.library.opcheck(triton_ops.box_iou_loss_op, (pred, target, "ciou", 1e-7, "xywh"))
    bias = torch.randn(64, device=DEVICE, requires_grad=True)
    torch.library.opcheck(triton_ops.lstm_cell_op, (gates, gates.detach() * 2, cx, bias, None))


@pytest.mark.skipif(not HAS_TRITON, reason="needs triton (no GPU needed: compiles for sm_90)")
@pytest.mark.parametrize("fp64", [False, True])
def test_every_kernel_variant_compiles_for_the_gpu(fp64):
    """Triton's frontend rejects what its interpreter runs (a non-constexpr
    global, say): compile each kernel for an H100/H200 without one."""
    if triton_backend.interpreting():
        pytest.skip("kernels are interpreted here")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from torchops.triton import kernels
    from torchops.triton.ops import LAUNCH

    t = "*fp64" if fp64 else "*fp32"

    def compile_(fn, constants, **types):
        launch = LAUNCH[fn.__name__]
        constants = {**constants, **{k: v for k, v in launch.items() if k.isupper()}}
        options = {k: v for k, v in launch.items() if not k.isupper()}
        signature = {n: "constexpr" if n in constants else types.get(n, t) for n in fn.arg_names}
        triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constants), target=GPUTarget("cuda", 90, 32),
                       options=options)

    ints = dict(n="i64", B="i32", H="i32", s_ig="i32", s_hg="i32", s_cx="i32",
                eps_hi="fp32", eps_lo="fp32", alpha_hi="fp32", alpha_lo="fp32")
    compile_(kernels.ratio_iou_forward, {"FP64": fp64, "BLOCK": 1024}, **ints)
    compile_(kernels.ratio_iou_backward, {"FP64": fp64, "BLOCK": 1024}, **ints)
    for bias in (False, True):
        lstm = {"HAS_BIH": bias, "HAS_BHH": bias, "FP64": fp64, "BLOCK_B": 32, "BLOCK_H": 32}
        compile_(kernels.lstm_cell_forward, lstm, **ints)
        compile_(kernels.lstm_cell_backward, lstm, **ints)
    for kind in (1, 2, 3):
        for fmt in (0, 1, 2):
            box = {"KIND": kind, "FMT": fmt, "FP64": fp64, "BLOCK": 256}
            compile_(kernels.box_loss_forward, box, **ints)
            compile_(kernels.box_loss_backward, box, **ints)


@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
def test_kernel_globals_survive_inductors_copy():
    """Inductor writes a user kernel's constexpr globals into its generated
    module as `tl.constexpr(<repr of the value>)`: a value whose repr does not
    evaluate (inf, nan) fails torch.compile with a NameError there."""
    import math

    import triton.language as tl

    from torchops.triton import kernels

    constants = {name: v.value for name, v in vars(kernels).items() if isinstance(v, tl.constexpr)}
    assert "ASPECT_WEIGHT" in constants
    for name, value in constants.items():
        assert not (isinstance(value, float) and not math.isfinite(value)), f"{name} = {value!r}"
        assert eval(repr(value), {}) == value, f"{name} = {value!r} does not survive repr()"
