"""Reliability: fuzzed bad input in a child process, threads, memory, run-to-run
determinism, float16 range, meta tensors; on the GPU also streams, a second
device, two-process DDP and more than 2^31 elements. docs/RELIABILITY.md
records what ran where."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

import torchops

from accuracy import assert_bitwise_equal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
from models import example_inputs, make_models  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("TORCHOPS_FUZZ_EXAMPLES", "300"))


def boxes(n, device, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    xy = [torch.rand(n, generator=gen) * 10 for _ in range(4)]
    wh = [torch.rand(n, generator=gen) * 4 + 0.5 for _ in range(4)]
    out = [xy[0], xy[1], wh[0], wh[1], xy[2], xy[3], wh[2], wh[3]]
    return [t.to(device=device, dtype=dtype).requires_grad_() for t in out]


def lstm_inputs(batch, hidden, device, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(batch, 4 * hidden), (batch, 4 * hidden), (batch, hidden), (4 * hidden,), (4 * hidden,)]
    return [torch.randn(s, generator=gen).to(device=device, dtype=dtype).requires_grad_() for s in shapes]


def iou_step(inputs, backend="native"):
    out = torchops.ratio_iou(*inputs, backend=backend)
    grads = torch.autograd.grad(out, inputs, torch.ones_like(out))
    return [out.detach(), *grads]


def lstm_step(inputs, backend="native"):
    hy, cy = torchops.lstm_cell(*inputs, backend=backend)
    grads = torch.autograd.grad((hy, cy), inputs, (torch.ones_like(hy), torch.full_like(cy, 0.5)))
    return [hy.detach(), cy.detach(), *grads]


# --- bad input never crashes ---------------------------------------------------------------

def test_fuzzed_bad_input_in_a_child_process(device, tmp_path, report):
    """Malformed calls of every function, backend and op (tests/fuzz_calls.py),
    in a child process: a crash fails this test instead of the run."""
    last_case = tmp_path / "last_case.txt"
    done = subprocess.run(
        [sys.executable, str(HERE / "fuzz_calls.py"), "--examples", str(FUZZ_EXAMPLES), "--device", device,
         "--log", str(last_case)],
        capture_output=True, text=True, timeout=1800)
    crashed = done.returncode < 0 or done.returncode > 1
    context = f"last case: {last_case.read_text() if last_case.exists() else '?'}"
    assert done.returncode == 0, (
        f"{'child process crashed' if crashed else 'a fuzzed call misbehaved'} (exit {done.returncode}); "
        f"{context}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("fuzz on"), done.stdout
    report(summary)


def test_meta_tensors_give_shapes_and_dtypes(report):
    iou = torchops.ratio_iou(*[torch.empty(3, 1, device="meta")] * 4, *[torch.empty(5, device="meta")] * 4,
                             backend="native")
    assert iou.shape == (3, 5) and iou.device.type == "meta"
    hy, cy = torchops.lstm_cell(torch.empty(2, 8, device="meta"), torch.empty(2, 8, device="meta"),
                                torch.empty(2, 2, device="meta"), backend="native")
    assert hy.shape == cy.shape == (2, 2) and hy.device.type == "meta"


# --- float16 range ---------------------------------------------------------------------------

def test_float16_overflow_is_computed_in_float32(device):
    """Documented difference: eager float16 overflows in the box areas (300 * 300
    > 65504) and returns NaN; native computes in float32 and rounds the IoU."""
    big = [torch.tensor([0.0, 0.0, 300.0, 300.0], dtype=torch.float16, device=device)[i] for i in range(4)]
    eager = torchops.ratio_iou(*big, *big, backend="eager")
    native = torchops.ratio_iou(*big, *big, backend="native")
    assert eager.isnan().item()
    assert native.item() == 1.0 and native.dtype == torch.float16


def test_float16_underflow_is_computed_in_float32(device):
    """Tiny boxes: eager float16's areas (1e-4 squared) underflow to 0 and the IoU
    is 0 / 0; native keeps the areas in float32 and gets the IoU of the boxes."""
    tiny = [torch.tensor(v, dtype=torch.float16, device=device) for v in (0.0, 0.0, 1e-4, 1e-4)]
    shifted = [torch.tensor(v, dtype=torch.float16, device=device) for v in (5e-5, 0.0, 1e-4, 1e-4)]
    eager = torchops.ratio_iou(*tiny, *shifted, eps=0.0, backend="eager")
    native = torchops.ratio_iou(*tiny, *shifted, eps=0.0, backend="native")
    exact = torchops.ratio_iou(*[t.double() for t in tiny], *[t.double() for t in shifted], eps=0.0, backend="eager")
    assert eager.isnan().item()
    torch.testing.assert_close(native.double(), exact, rtol=2e-3, atol=0)


# --- threads ---------------------------------------------------------------------------------

def test_eight_threads_get_the_right_answers(device, report):
    """8 Python threads run both ops forward and backward at once (CPU kernels
    with at::parallel_for inside); each result equals the one-thread result."""
    jobs = [(iou_step, boxes(50_000, device, seed)) for seed in range(4)]
    jobs += [(lstm_step, lstm_inputs(64, 256, device, seed)) for seed in range(4)]
    expected = [step(inputs) for step, inputs in jobs]
    failures, mismatches = [], []

    def worker(t):
        try:
            for r in range(10):
                step, inputs = jobs[(t + r) % len(jobs)]
                got = step(inputs)
                for g, e in zip(got, expected[(t + r) % len(jobs)]):
                    if not torch.equal(g, e):
                        mismatches.append((t, r))
        except Exception as exc:  # reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and not mismatches, (failures, mismatches)
    report(f"threads ({device}): 8 threads x 10 forward+backward calls, all bitwise equal to one thread's")


# --- memory ----------------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory, so RSS grows by design")
def test_ten_thousand_calls_leave_memory_flat(device, report):
    iou_inputs, cell_inputs = boxes(256, device), lstm_inputs(8, 32, device)

    def calls(n):
        for _ in range(n):
            iou_step(iou_inputs)
            lstm_step(cell_inputs)

    calls(1000)  # warm-up: allocator caches, lazy initialisation
    if device == "cuda":
        torch.cuda.synchronize()
        before_gpu = torch.cuda.memory_allocated()
    before = rss_bytes()
    calls(10_000)
    growth = rss_bytes() - before
    line = f"memory ({device}): 10,000 forward+backward calls of each op: CPU RSS grew {growth / 2**20:.2f} MiB"
    if device == "cuda":
        torch.cuda.synchronize()
        gpu_growth = torch.cuda.memory_allocated() - before_gpu
        line += f", torch.cuda.memory_allocated grew {gpu_growth} bytes"
        assert gpu_growth == 0
    report(line)
    # a leak of even 100 bytes per call would add 2 MiB over these 20,000 calls
    assert growth < 2 * 2**20, line


# --- determinism ------------------------------------------------------------------------------

def test_results_are_bitwise_deterministic(device):
    """Same inputs, same bits, forward and backward, including the bias
    gradient (a reduction over the batch), over sizes that split across threads."""
    for step, inputs in ((iou_step, boxes(1_000_003, device)), (lstm_step, lstm_inputs(1024, 512, device))):
        first = step(inputs)
        for _ in range(3):
            for g, e in zip(step(inputs), first):
                assert_bitwise_equal(g, e, step.__name__)


# --- CUDA: streams, devices, DDP, sizes -----------------------------------------------------

@pytest.mark.cuda
def test_kernels_run_on_the_current_stream():
    """The side stream is busy (a sleep) while it also writes the inputs: a
    kernel launched on any other stream would read them before they exist."""
    reference_iou = iou_step(boxes(1 << 20, "cuda"))
    reference_cell = lstm_step(lstm_inputs(512, 256, "cuda"))
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)
        got_iou = iou_step(boxes(1 << 20, "cuda"))
        got_cell = lstm_step(lstm_inputs(512, 256, "cuda"))
    side.synchronize()
    for got, expected in ((got_iou, reference_iou), (got_cell, reference_cell)):
        for g, e in zip(got, expected):
            assert_bitwise_equal(g, e, "on a side stream")


two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")


@pytest.mark.cuda
@two_gpus
def test_inputs_on_the_second_gpu():
    """Inputs on cuda:1 while cuda:0 is current: computed on cuda:1, right answers."""
    assert torch.cuda.current_device() == 0
    for step, make in ((iou_step, lambda d: boxes(1 << 20, d)), (lstm_step, lambda d: lstm_inputs(512, 256, d))):
        expected = step(make("cuda:0"))
        got = step(make("cuda:1"))
        for g, e in zip(got, expected):
            assert g.device == torch.device("cuda:1")
            assert_bitwise_equal(g.to("cuda:0"), e, f"{step.__name__} on cuda:1")
    assert torch.cuda.current_device() == 0


def _ddp_worker(rank, world, init_file, result_file):
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # no NVLink multicast on shared machines
    torch.distributed.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    params = _train_step(f"cuda:{rank}", rank, world)
    if rank == 0:
        torch.save([p.cpu() for p in params], result_file)
    torch.distributed.destroy_process_group()


def _train_step(device, rank=0, world=1):
    """One SGD step of both example models on this rank's share of a batch."""
    models = make_models(device)
    inputs = example_inputs(device)
    pred, target = inputs["box_matcher"]
    (sequence,) = inputs["sequence_model"]
    share = slice(rank * pred.shape[0] // world, (rank + 1) * pred.shape[0] // world)
    seq_share = slice(rank * sequence.shape[1] // world, (rank + 1) * sequence.shape[1] // world)
    if world > 1:
        models = {k: torch.nn.parallel.DistributedDataParallel(m, device_ids=[rank]) for k, m in models.items()}
    params = [p for m in models.values() for p in m.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.1)
    with torchops.use_backend("native"):
        loss = models["box_matcher"](pred[share], target[share])[0]
        loss = loss + models["sequence_model"](sequence[:, seq_share]).square().mean()
    loss.backward()
    optimizer.step()
    return [p.detach() for p in params]


@pytest.mark.cuda
@two_gpus
def test_two_process_ddp_matches_one_process(tmp_path):
    """DistributedDataParallel over 2 GPUs, each half of the batch (64 boxes, a
    sequence batch of 4), gives the parameters of one process on the whole batch."""
    import torch.multiprocessing as mp

    result = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(result)), nprocs=2, join=True)
    got = torch.load(result)
    expected = _train_step("cuda:0")
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e.cpu(), rtol=1e-5, atol=1e-6)


def _free_gpu_bytes() -> int:
    return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else 0


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.skipif(_free_gpu_bytes() < 60 * 2**30, reason="needs 60 GiB of free GPU memory")
def test_ratio_iou_beyond_2_to_the_31(report):
    """2^31 + 7 outputs: float16 contiguous inputs (the vectorized path) and
    float32 expanded views (the general path); the far end against eager."""
    n = 2**31 + 7
    tail = slice(n - 4096, n)
    gen = torch.Generator(device="cuda").manual_seed(0)
    inputs = [torch.rand(n, generator=gen, device="cuda", dtype=torch.float16) * 4 for _ in range(8)]
    out = torchops.ratio_iou(*inputs, backend="native")
    expected = torchops.ratio_iou(*[t[tail].float() for t in inputs], backend="eager").half()
    assert_bitwise_equal(out[tail], expected, "float16 contiguous, last 4096")
    del inputs, out
    rows, cols = 2**16, 2**15 + 1  # rows * cols > 2^31, from small broadcast tensors
    x = torch.rand(rows, 1, generator=gen, device="cuda") * 10
    y = torch.rand(1, cols, generator=gen, device="cuda") * 10
    w = torch.full((1, 1), 3.0, device="cuda")
    out = torchops.ratio_iou(x, y, w, w, y, x, w, w, backend="native")
    assert out.shape == (rows, cols) and out.numel() > 2**31
    xs, ys = x[-8:], y[:, -8:]
    ref = torchops.ratio_iou(xs, ys, w, w, ys, xs, w, w, backend="eager")
    assert_bitwise_equal(out[-8:, -8:], ref, "float32 broadcast, last 8x8")
    report(f"ratio_iou on cuda: {n} elements (float16, contiguous) and {out.numel()} (float32, broadcast)")


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.skipif(_free_gpu_bytes() < 40 * 2**30, reason="needs 40 GiB of free GPU memory")
def test_lstm_cell_beyond_2_to_the_31(report):
    """B * 4H = 2^31 + 4096 gate elements (float16), forward and backward; the
    last rows against eager in float32 (native computes float16 in float32)."""
    batch, hidden = 2**19 + 1, 1024
    gen = torch.Generator(device="cuda").manual_seed(0)
    ig = torch.randn(batch, 4 * hidden, generator=gen, device="cuda", dtype=torch.float16).requires_grad_()
    hg = torch.randn(batch, 4 * hidden, generator=gen, device="cuda", dtype=torch.float16).requires_grad_()
    cx = torch.randn(batch, hidden, generator=gen, device="cuda", dtype=torch.float16).requires_grad_()
    hy, cy = torchops.lstm_cell(ig, hg, cx, backend="native")
    grad_ig, grad_cx = torch.autograd.grad(hy, (ig, cx), torch.ones_like(hy))
    rows = slice(batch - 4, batch)
    small = [t[rows].detach().float().requires_grad_() for t in (ig, hg, cx)]
    ref_hy, ref_cy = torchops.lstm_cell(*small, backend="eager")
    ref_grad_ig, ref_grad_cx = torch.autograd.grad(ref_hy, (small[0], small[2]), torch.ones_like(ref_hy))
    for got, ref, what in ((hy, ref_hy, "hy"), (cy, ref_cy, "cy"), (grad_ig, ref_grad_ig, "grad gates"),
                           (grad_cx, ref_grad_cx, "grad cx")):
        torch.testing.assert_close(got[rows].float(), ref.detach().half().float(), rtol=2e-3, atol=2e-3, msg=what)
    report(f"lstm_cell on cuda: B * 4H = {batch * 4 * hidden} (float16), forward and backward")


# --- copy-on-write inputs stay shared ------------------------------------------------

@pytest.mark.parametrize("op", ["ratio_iou", "ratio_iou_training", "lstm_cell", "lstm_cell_training"])
def test_inputs_are_read_without_materialising_copy_on_write(op, device):
    """Kernels read inputs through const_data_ptr: a copy-on-write input (a lazy
    clone) stays shared after the forward and the backward."""
    torch.manual_seed(0)
    if op.startswith("ratio_iou"):
        base = [torch.rand(1000, device=device) for _ in range(8)]
    else:
        base = [torch.randn(5, 4 * 37, device=device), torch.randn(5, 4 * 37, device=device),
                torch.randn(5, 37, device=device), torch.randn(4 * 37, device=device),
                torch.randn(4 * 37, device=device)]
    inputs = [torch._lazy_clone(t) for t in base]
    training = op.endswith("_training")
    if training:
        inputs = [t.requires_grad_() for t in inputs]
    assert all(torch._C._is_cow_tensor(t) for t in inputs)
    if op.startswith("ratio_iou"):
        out = torchops.ratio_iou(*inputs, backend="native").sum()
    else:
        out = sum(t.sum() for t in torchops.lstm_cell(*inputs, backend="native"))
    if training:
        out.backward()
    assert all(torch._C._is_cow_tensor(t) for t in inputs), "an input was materialised"
