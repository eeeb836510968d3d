"""ratio_iou's own claims, beside the conformance suite (test_conformance.py:
values and gradients of every backend against eager, gradcheck, opcheck,
empty inputs, mixed dtypes, autocast, TorchScript, compile, export): the
script backend's documented limit at overflow, the native kernels' vector
paths giving eager's bits; and backend selection (backend=, use_backend,
set_backend, auto), seen through ratio_iou."""

from __future__ import annotations

import pytest
import torch

import torchops

from accuracy import assert_bitwise_equal
from torchops.testing._inputs import BOX_NAMES as NAMES


def run(boxes, backend, grad_out=None, eps=1e-5):
    """Output and the gradients of all eight inputs for upstream `grad_out`."""
    out = torchops.ratio_iou(*boxes, eps, backend=backend)
    if grad_out is None:
        return out, None
    grads = torch.autograd.grad(out, boxes, grad_out, allow_unused=True)
    return out, grads


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


# --- backend selection ----------------------------------------------------------------

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
