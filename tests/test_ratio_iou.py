"""ratio_iou: the three backends agree in values and gradients; the native op
passes gradcheck and opcheck, rejects bad input clearly, and survives
scripting, tracing, saving and loading."""

from __future__ import annotations

import io
import math

import pytest
import torch
from hypothesis import given, strategies as st

import torchops

from torchops.iou import ratio_iou_eager

from accuracy import assert_as_accurate_as_eager, assert_bitwise_equal
from boxes import NAMES, box_cases, to

OP = torch.ops.super_iou.ratio_iou


def run(boxes, backend, grad_out=None, eps=1e-5):
    """Output and the gradients of all eight inputs for upstream `grad_out`."""
    out = torchops.ratio_iou(*boxes, eps, backend=backend)
    if grad_out is None:
        return out, None
    grads = torch.autograd.grad(out, boxes, grad_out, allow_unused=True)
    return out, grads


# TorchScript differentiates with its own formulas (symbolic_script.cpp): div's
# backward is -g*a/(b*b), which overflows where eager's -g*((a/b)/b) does not,
# and clamp's multiplies by a mask, so inf*0 gives NaN where eager gives 0.
# Its gradients therefore match eager only where no intermediate overflows or
# underflows: test_script_autodiff_differs_from_eager_at_overflow pins that.
SCRIPT_GRAD_UNSAFE_KINDS = {"huge", "tiny", "special"}
SCRIPT_GRAD_UNSAFE_FLOAT16 = {"degenerate", "integers"}  # eps**2 underflows float16


def script_gradients_comparable(what: str, dtype) -> bool:
    kind = what.split("/")[0]
    if kind in SCRIPT_GRAD_UNSAFE_KINDS:
        return False
    return not (dtype == torch.float16 and kind in SCRIPT_GRAD_UNSAFE_FLOAT16)


def gradient_term_scale(boxes64, grad_out) -> float:
    """The size of the terms that the gradient sums add up (|g| (w + h) / union):
    the sums cancel for equal boxes, so rounding differences scale with the
    terms, not with the (zero) result."""
    x1, y1, w1, h1, x2, y2, w2, h2 = (b.detach().double().cpu() for b in boxes64)
    union = (w1 * h1 + w2 * h2).abs().clamp(min=1e-5)
    terms = grad_out.double().cpu().abs() * (w1.abs() + h1.abs() + w2.abs() + h2.abs()) / union
    finite = terms[torch.isfinite(terms)]
    return finite.max().item() if finite.numel() else 0.0


def compare_backend(case, backend, device):
    boxes64, dtype, what = case
    boxes = to(boxes64, dtype, device, requires_grad=True)
    eager_out = torchops.ratio_iou(*boxes, backend="eager")
    gen = torch.Generator().manual_seed(0)
    grad_out = torch.randn(eager_out.shape, generator=gen, dtype=torch.float64).to(eager_out.dtype).to(device)
    eager_out, eager_grads = run(boxes, "eager", grad_out)
    out, grads = run(boxes, backend, grad_out)
    ref_boxes = [b.detach().double().requires_grad_() for b in boxes]
    ref_out, ref_grads = run(ref_boxes, "eager", grad_out.double())

    assert out.shape == eager_out.shape and out.dtype == eager_out.dtype, what
    exact = dtype in (torch.float32, torch.float64) and backend == "native"
    if exact:  # same operations in the same order: the same bits
        assert_bitwise_equal(out, eager_out, f"{backend} forward {what}")
    else:
        assert_as_accurate_as_eager(out, eager_out, ref_out, f"{backend} forward {what}")
    if backend == "script" and not script_gradients_comparable(what, dtype):
        return
    term_scale = gradient_term_scale(ref_boxes, grad_out)
    for name, b, g, ge, gr in zip(NAMES, boxes, grads, eager_grads, ref_grads):
        label = f"{backend} grad {name} {what}"
        assert g.shape == b.shape and g.dtype == b.dtype, label
        reduced = b.numel() < out.numel()  # a broadcast input: the sum order may differ
        if exact and not reduced:
            assert_bitwise_equal(g, ge, label)
        else:
            reduction = max(1, out.numel() // max(b.numel(), 1))
            assert_as_accurate_as_eager(g, ge, gr, label, ulps=8 * reduction, scale=term_scale)


@given(case=box_cases())
def test_native_matches_eager(case, device):
    compare_backend(case, "native", device)


@given(case=box_cases())
def test_script_matches_eager(case, device):
    compare_backend(case, "script", device)


def test_script_autodiff_differs_from_eager_at_overflow():
    """The documented limit of the script backend: at a float16 union of
    degenerate boxes (clamped to eps, eps**2 underflows) TorchScript's autodiff
    gives NaN gradients where eager autograd (and native) give 0."""
    vals = [9.4e-05, 4.2e-05, 3.2e-05, 4.0e-05, -8.1e-06, 8.4e-05, 8.9e-06, 1.8e-05]
    boxes = [torch.tensor([v], dtype=torch.float16, requires_grad=True) for v in vals]
    grads = {}
    for backend in ("eager", "native", "script", "script"):  # script: autodiff from the 2nd call
        out = torchops.ratio_iou(*boxes, backend=backend)
        grads[backend] = torch.autograd.grad(out, boxes, torch.ones_like(out))
    assert all(bool((g == 0).all()) for g in grads["eager"])
    assert all(bool((g == 0).all()) for g in grads["native"])
    assert all(bool(g.isnan().all()) for g in grads["script"])


def well_conditioned_boxes(n, dtype, device, seed=0):
    """Boxes without ties or degenerate cases, where gradients are smooth."""
    gen = torch.Generator().manual_seed(seed)
    xy = [torch.rand(n, generator=gen, dtype=torch.float64) * 4 for _ in range(4)]
    wh = [torch.rand(n, generator=gen, dtype=torch.float64) * 3 + 1 for _ in range(4)]
    vals = [xy[0], xy[1], wh[0], wh[1], xy[2], xy[3], wh[2], wh[3]]
    return [v.to(dtype=dtype, device=device).requires_grad_() for v in vals]


@pytest.mark.parametrize("backend", ["native", "script", "eager"])
def test_gradcheck_float64(backend, device):
    boxes = well_conditioned_boxes(12, torch.float64, device)
    fn = lambda *b: torchops.ratio_iou(*b, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(fn, boxes, eps=1e-6, atol=1e-7)


def test_gradcheck_broadcast_float64(device):
    boxes = well_conditioned_boxes(12, torch.float64, device)
    boxes = [b.detach().reshape(3, 4) for b in boxes]
    boxes[0] = boxes[0][:1]        # [1, 4]
    boxes[5] = boxes[5][:, :1]     # [3, 1]
    boxes[7] = boxes[7][0, 0]      # 0-d
    boxes = [b.clone().requires_grad_() for b in boxes]
    assert torch.autograd.gradcheck(lambda *b: OP(*b, 1e-5), boxes, eps=1e-6, atol=1e-7)


def test_double_backward_is_a_clear_error(device):
    boxes = well_conditioned_boxes(5, torch.float64, device)
    out = OP(*boxes, 1e-5)
    grads = torch.autograd.grad(out.sum(), boxes, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(sum(g.sum() for g in grads), boxes)


def opcheck_samples(device):
    gen = torch.Generator().manual_seed(1)
    def r(*shape):
        return (torch.rand(*shape, generator=gen) * 4).to(device).requires_grad_()
    yield [r(10) for _ in range(8)]
    yield [r(3, 1), r(1, 4), r(4), r(3, 4), r(3, 4), r(1), r(3, 4), r(())]
    yield [r(4, 3).t() for _ in range(8)]
    yield [r(2, 0) for _ in range(8)]


def test_opcheck(device):
    for boxes in opcheck_samples(device):
        torch.library.opcheck(OP, (*boxes, 1e-5))
        torch.library.opcheck(OP, (*[b.detach() for b in boxes], 0.5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vector_path_and_tail_match_eager_bitwise(dtype, device):
    """Enough elements for the CUDA kernels' vector accesses (they take over
    from single-element ones only once every SM gets work, so the small
    hypothesis cases do not reach them), and a tail of a partial vector;
    disjoint pairs (zero intersections) among them."""
    n = 2**20 + 3
    gen = torch.Generator().manual_seed(0)
    boxes = []
    for k in range(8):
        lo, hi = (0.0, 10.0) if k % 4 < 2 else (0.0, 4.0)
        boxes.append((torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo) + lo)
                     .to(device=device, dtype=dtype).requires_grad_())
    grad_out = torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    out, grads = run(boxes, "native", grad_out)
    eager_out, eager_grads = run(boxes, "eager", grad_out)
    assert bool((eager_out == 0).any()) and bool((eager_out > 0).any())
    assert_bitwise_equal(out, eager_out, "forward")
    for name, g, ge in zip(NAMES, grads, eager_grads):
        assert_bitwise_equal(g, ge, f"grad {name}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_empty_and_zero_dim(dtype, device):
    for shape in [(0,), (3, 0), ()]:
        boxes = [torch.ones(shape, dtype=dtype, device=device, requires_grad=True) for _ in range(8)]
        for backend in ("eager", "script", "native"):
            out = torchops.ratio_iou(*boxes, backend=backend)
            assert out.shape == shape and out.dtype == dtype
            grads = torch.autograd.grad(out.sum(), boxes)
            assert all(g.shape == shape for g in grads)
    one = torch.ones((), dtype=dtype, device=device)
    assert torchops.ratio_iou(*[one] * 8, backend="native").item() == 1.0


def test_mixed_dtypes_promote_like_eager(device):
    boxes = [b.detach() for b in well_conditioned_boxes(6, torch.float32, device)]
    boxes[3] = boxes[3].double()
    boxes[5] = boxes[5].half()
    boxes[6] = boxes[6][0].double()  # a 0-d float64 does not promote the result
    out = torchops.ratio_iou(*boxes, backend="native")
    expected = torchops.ratio_iou(*boxes, backend="eager")
    assert out.dtype == expected.dtype == torch.float64
    torch.testing.assert_close(out, expected)


def test_expanded_inputs_are_not_copied(device):
    """Broadcast inputs are read in place: no copy/contiguous kernel runs."""
    base = well_conditioned_boxes(1, torch.float32, device)
    boxes = [b.detach().expand(1000, 1000) for b in base]
    boxes[0] = torch.rand(1000, 1, device=device).expand(1000, 1000)
    OP(*boxes, 1e-5)  # warm up
    with torch.profiler.profile() as prof:
        out = OP(*boxes, 1e-5)
    names = {e.name for e in prof.events()}
    assert not names & {"aten::copy_", "aten::contiguous", "aten::clone", "aten::expand"}, names
    torch.testing.assert_close(out, ratio_iou_eager(*boxes), rtol=0, atol=0)


# --- backends and autocast ------------------------------------------------------------

def good_boxes(device="cpu"):
    return [torch.rand(4, device=device) for _ in range(8)]


def test_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        torchops.ratio_iou(*good_boxes(), backend="fast")


def test_use_backend_is_per_thread():
    """Two threads inside use_backend blocks see their own choice, and the
    process is back on its own choice afterwards, whatever the interleaving."""
    import threading

    barrier = threading.Barrier(2)
    seen: dict[str, list[str]] = {"eager": [], "script": []}

    def worker(name):
        with torchops.use_backend(name):
            for _ in range(50):
                barrier.wait()  # both threads are inside their blocks now
                seen[name].append(torchops.get_backend())

    threads = [threading.Thread(target=worker, args=(n,)) for n in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"eager": ["eager"] * 50, "script": ["script"] * 50}
    assert torchops.get_backend() == "auto"


def test_use_backend_is_per_async_task():
    """Two asyncio tasks in one thread, each inside its own use_backend block,
    interleaved at every await: each sees its own choice (a context variable)."""
    import asyncio

    async def task(name, seen):
        with torchops.use_backend(name):
            for _ in range(20):
                await asyncio.sleep(0)  # let the other task run inside its block
                seen.append(torchops.get_backend())

    async def main():
        seen = {"eager": [], "native": []}
        await asyncio.gather(*(task(name, seen[name]) for name in seen))
        return seen

    assert asyncio.run(main()) == {"eager": ["eager"] * 20, "native": ["native"] * 20}
    assert torchops.get_backend() == "auto"
    # and the per-thread mirror that compiled code reads is not left behind
    # (the two blocks ended in another order than they began)
    from torchops import _backends

    assert getattr(_backends._thread, "backend", None) is None


def test_set_backend_is_process_wide_and_use_backend_wins_in_its_thread():
    import threading

    seen = {}
    inside, release = threading.Event(), threading.Event()

    def worker():
        with torchops.use_backend("script"):
            inside.set()
            release.wait()
            seen["worker"] = torchops.get_backend()
        seen["worker after"] = torchops.get_backend()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait()
    try:
        torchops.set_backend("eager")  # while the worker is inside its block
        seen["main"] = torchops.get_backend()
        release.set()
        thread.join()
    finally:
        torchops.set_backend("auto")
    assert seen == {"main": "eager", "worker": "script", "worker after": "eager"}


def test_use_backend_is_seen_by_compiled_code():
    """torch.compile guards on the thread's choice: a new choice recompiles,
    a choice seen before reuses its graph."""
    graphs = []

    def record(gm, example_inputs):
        graphs.append("super_iou.ratio_iou" in str(gm.graph))
        return gm.forward

    @torch.compile(fullgraph=True, backend=record)
    def f(x):
        return torchops.ratio_iou(x, x, x, x, x, x, x, x)

    x = torch.rand(4)
    for name in ("eager", "native", "eager"):
        with torchops.use_backend(name):
            f(x)
    assert graphs == [False, True]


def test_backend_selection():
    status = torchops.available_backends()
    assert {"eager", "script", "native", "triton", "auto"} <= set(status)
    assert status["native"].available, status["native"].reason
    assert torchops.get_backend() == "auto"
    with torchops.use_backend("eager"):
        assert torchops.get_backend() == "eager"
        with torchops.use_backend("script"):
            assert torchops.get_backend() == "script"
        assert torchops.get_backend() == "eager"
    assert torchops.get_backend() == "auto"
    torchops.set_backend("native")
    try:
        assert torchops.get_backend() == "native"
    finally:
        torchops.set_backend("auto")


def test_backend_is_used():
    """The process-wide choice really picks the implementation."""
    import torchops.iou as iou
    from torchops import _backends, _registry

    calls = []
    torchops.register_implementation("ratio_iou", "recorder", lambda *a: calls.append(a) or iou.ratio_iou_eager(*a))
    boxes = good_boxes()
    with torchops.use_backend("recorder"):
        torchops.ratio_iou(*boxes)
    with torchops.use_backend("eager"):
        torchops.ratio_iou(*boxes)
    torchops.set_backend("recorder")
    try:
        torchops.ratio_iou(*boxes)
    finally:
        torchops.set_backend("auto")
    assert len(calls) == 2
    # auto: native on the CPU (outside torch.compile, its eager form)
    native = _registry.function("native", "ratio_iou", "cpu", eager=True)
    assert _backends.implementation("ratio_iou", None, boxes[0]) is native


@pytest.mark.parametrize("backend", ["eager", "script", "native"])
def test_autocast_runs_in_float32(backend, device):
    dtype = torch.bfloat16 if device == "cpu" else torch.float16
    boxes = [b.detach().to(dtype) for b in well_conditioned_boxes(8, torch.float32, device)]
    with torch.autocast(device, dtype=dtype):
        out = torchops.ratio_iou(*boxes, backend=backend)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ratio_iou_eager(*[b.float() for b in boxes]))


# --- TorchScript: script, trace, save, load ------------------------------------------------

class IouLoss(torch.nn.Module):
    """A detection-style loss: 1 - IoU of predicted and target boxes."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = pred.unbind(-1), target.unbind(-1)
        iou = torch.ops.super_iou.ratio_iou(p[0], p[1], p[2], p[3], t[0], t[1], t[2], t[3], 1e-5)
        return (1 - iou).mean()


@pytest.mark.parametrize("mode", ["script", "trace"])
def test_scripted_and_traced_model_round_trip(mode, device, tmp_path):
    gen = torch.Generator().manual_seed(3)
    pred = (torch.rand(16, 4, generator=gen) * 5).to(device)
    target = (torch.rand(16, 4, generator=gen) * 5).to(device)
    model = IouLoss()
    compiled = torch.jit.script(model) if mode == "script" else torch.jit.trace(model, (pred, target))
    assert "super_iou::ratio_iou" in str(compiled.graph)
    path = tmp_path / "model.pt"
    torch.jit.save(compiled, str(path))
    loaded = torch.jit.load(str(path), map_location=device)
    p = pred.clone().requires_grad_()
    expected = model(p, target)
    (g_expected,) = torch.autograd.grad(expected, p)
    p2 = pred.clone().requires_grad_()
    got = loaded(p2, target)
    (g_got,) = torch.autograd.grad(got, p2)
    assert_bitwise_equal(got, expected, "loss")
    assert_bitwise_equal(g_got, g_expected, "grad")
