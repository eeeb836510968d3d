"""lstm_cell's own claims, beside the conformance suite (test_conformance.py:
values and gradients of every backend against eager, NaN/inf, gradcheck,
opcheck of its three ops, empty inputs, mixed dtypes, autocast, TorchScript,
compile, export): the workspace written only when training, the bias
gradient's determinism and its CUDA sum; and torchops.nn.LSTMCell, a drop-in
for torch.nn.LSTMCell (its errors, autocast, scripting)."""

from __future__ import annotations

import pytest
import torch

import torchops

OP = torch.ops.super_lstm.lstm_cell
BACKWARD_OP = torch.ops.super_lstm._lstm_cell_backward


class OpsCalled(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ops that reach the kernels (below autograd)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("requires_grad", [True, False])
def test_workspace_only_when_training(requires_grad, device):
    """Training's forward writes the activated gates and autograd keeps only
    them and cx (5BH values) for the backward, not the 8BH gate inputs;
    inference writes no workspace."""
    inputs = [t.to(device).requires_grad_(requires_grad) for t in good()]
    saved = []
    with OpsCalled() as calls, torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        hy, cy = OP(*inputs)
    if not requires_grad:
        assert calls.names == ["super_lstm.lstm_cell"] and not saved
        return
    assert calls.names == ["super_lstm._lstm_cell_forward"]
    assert sorted(t.numel() for t in saved) == [6, 24]  # cx [3, 2] and the workspace [3, 8]
    workspace = next(t for t in saved if t.numel() == 24)
    gates = sum(inputs[:2]) + inputs[3] + inputs[4]
    i, f, g, o = gates.detach().chunk(4, 1)
    expected = torch.cat([i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()], 1)
    torch.testing.assert_close(workspace, expected)
    with OpsCalled() as calls:
        torch.autograd.grad((hy.sum() + cy.sum()), inputs)
    assert "super_lstm._lstm_cell_backward" in calls.names


def test_bias_gradient_is_deterministic(device):
    gen = torch.Generator().manual_seed(4)
    inputs = [torch.randn(s, generator=gen).to(device).requires_grad_() for s in [(512, 64), (512, 64), (512, 16), (64,), (64,)]]
    results = []
    for _ in range(3):
        hy, cy = OP(*inputs)
        results.append(torch.autograd.grad((hy.sum() + cy.sum()), inputs[3])[0])
    assert all(torch.equal(results[0], r) for r in results[1:])


@pytest.mark.cuda
@pytest.mark.parametrize("batch, hidden, dtype", [(4096, 512, torch.float32), (16384, 1024, torch.float32),
                                                  (4096, 1023, torch.float32), (8192, 512, torch.float16)])
def test_cuda_bias_gradient_summed_in_the_kernel(batch, hidden, dtype):
    """The CUDA backward sums the bias gradient over row groups of up to 16
    rows in registers (sizes here take 2 to 16 rows per thread, vectorized or
    not): it must equal the batch sum of the gate gradient it returns, and
    give the same bits every run."""
    gen = torch.Generator(device="cuda").manual_seed(5)
    cx = torch.randn(batch, hidden, device="cuda", generator=gen, dtype=dtype)
    workspace = torch.rand(batch, 4 * hidden, device="cuda", generator=gen, dtype=dtype)
    grad_hy, grad_cy = torch.randn_like(cx), torch.randn_like(cx)
    grad_gates, _, grad_bias = BACKWARD_OP(grad_hy, grad_cy, cx, workspace, True)
    expected = grad_gates.cpu().double().sum(0).cuda()  # (ATen's CUDA sum of this size trips initcheck)
    tolerance = {"rtol": 1e-5, "atol": 1e-5 * batch ** 0.5} if dtype == torch.float32 else {"rtol": 2e-3, "atol": 1e-2}
    torch.testing.assert_close(grad_bias.double(), expected, **tolerance)
    assert grad_bias.dtype == dtype
    again = BACKWARD_OP(grad_hy, grad_cy, cx, workspace, True)
    assert torch.equal(again[2], grad_bias) and torch.equal(again[0], grad_gates)


def good(device="cpu"):
    return [torch.randn(3, 8, device=device), torch.randn(3, 8, device=device), torch.randn(3, 2, device=device),
            torch.randn(8, device=device), torch.randn(8, device=device)]


# --- the module under autocast: PyTorch's policy for aten::lstm_cell on each device --

def autocast_dtypes(device):
    return [torch.bfloat16] if device == "cpu" else [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("backend", ["eager", "script", "native", "auto"])
def test_module_under_autocast_matches_torch(backend, device):
    """torch.nn.LSTMCell under autocast: float32 hy/cy on the CPU (aten::lstm_cell
    is on no CPU autocast list), the autocast dtype on CUDA. Ours must return the
    same dtypes, values within that dtype's rounding, and gradients."""
    for dtype in autocast_dtypes(device):
        torch.manual_seed(0)
        ref = torch.nn.LSTMCell(16, 12, device=device)
        cell = torchops.nn.LSTMCell(16, 12, device=device, backend=backend)
        cell.load_state_dict(ref.state_dict())
        x = torch.randn(5, 16, device=device)
        state = (torch.randn(5, 12, device=device), torch.randn(5, 12, device=device))
        with torch.autocast(device, dtype=dtype):
            expected, got = ref(x, state), cell(x, state)
        for e, g in zip(expected, got):
            assert g.dtype == e.dtype, (backend, dtype, g.dtype, e.dtype)
            torch.testing.assert_close(g.float(), e.float(), rtol=0.05, atol=0.05)
        grads = torch.autograd.grad(sum(t.float().sum() for t in got), list(cell.parameters()))
        ref_grads = torch.autograd.grad(sum(t.float().sum() for t in expected), list(ref.parameters()))
        for g, e in zip(grads, ref_grads):
            assert g.dtype == e.dtype
            torch.testing.assert_close(g, e, rtol=0.05, atol=0.1)


def test_compiled_module_under_cpu_autocast():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(8, 6)
    cell = torchops.nn.LSTMCell(8, 6)
    cell.load_state_dict(ref.state_dict())
    compiled = torch.compile(cell, fullgraph=True)
    x, state = torch.randn(3, 8), (torch.randn(3, 6), torch.randn(3, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = ref(x, state), compiled(x, state)
    for e, g in zip(expected, got):
        assert g.dtype == e.dtype == torch.float32
        torch.testing.assert_close(g, e, rtol=0.05, atol=0.05)


# --- the module's errors are torch.nn.LSTMCell's ------------------------------------

MODULE_BAD_INPUTS = {
    "input of another size": lambda: (torch.randn(3, 7), None),
    "unbatched input of another size": lambda: (torch.randn(7), None),
    "3-d input": lambda: (torch.randn(1, 3, 8), None),
    "0-d input": lambda: (torch.tensor(1.0), None),
    "one hidden state": lambda: (torch.randn(3, 8), (torch.randn(3, 4),)),
    "one unbatched hidden state": lambda: (torch.randn(8), (torch.randn(4),)),
    "three hidden states": lambda: (torch.randn(3, 8), (torch.randn(3, 4),) * 3),
    "h batch": lambda: (torch.randn(3, 8), (torch.randn(2, 4), torch.randn(3, 4))),
    "c batch": lambda: (torch.randn(3, 8), (torch.randn(3, 4), torch.randn(2, 4))),
    "h hidden size": lambda: (torch.randn(3, 8), (torch.randn(3, 5), torch.randn(3, 4))),
    "c hidden size": lambda: (torch.randn(3, 8), (torch.randn(3, 4), torch.randn(3, 5))),
    "batched input, unbatched state": lambda: (torch.randn(3, 8), (torch.randn(4), torch.randn(4))),
    "unbatched input, batched state": lambda: (torch.randn(8), (torch.randn(1, 4), torch.randn(1, 4))),
    "3-d state": lambda: (torch.randn(3, 8), (torch.randn(1, 3, 4), torch.randn(3, 4))),
    "float64 input": lambda: (torch.randn(3, 8, dtype=torch.float64), None),
    "int64 input": lambda: (torch.ones(3, 8, dtype=torch.int64), None),
    "state not a tuple": lambda: (torch.randn(3, 8), torch.randn(3, 4)),
}


@pytest.mark.parametrize("case", list(MODULE_BAD_INPUTS))
@pytest.mark.parametrize("backend", ["eager", "native"])
def test_module_rejects_bad_input_like_torch(case, backend):
    torch.manual_seed(0)
    ref, cell = torch.nn.LSTMCell(8, 4), torchops.nn.LSTMCell(8, 4, backend=backend)
    args = MODULE_BAD_INPUTS[case]()
    with pytest.raises(Exception) as expected:
        ref(*args)
    with pytest.raises(Exception) as got:
        cell(*args)
    assert type(got.value) is type(expected.value)
    assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]


# --- the module -------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("backend", ["eager", "script", "native"])
def test_module_is_a_drop_in(bias, backend, device):
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(6, 5, bias=bias, device=device, dtype=torch.float64)
    cell = torchops.nn.LSTMCell(6, 5, bias=bias, device=device, dtype=torch.float64, backend=backend)
    assert list(cell.state_dict()) == list(ref.state_dict())
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(4, 6, device=device, dtype=torch.float64)
    h = torch.randn(4, 5, device=device, dtype=torch.float64)
    c = torch.randn(4, 5, device=device, dtype=torch.float64)
    for args in ((x, (h, c)), (x,), (x[0], (h[0], c[0]))):
        expected, got = ref(*args), cell(*args)
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e)
    loss_ref = sum(t.sum() for t in ref(x, (h, c)))
    loss = sum(t.sum() for t in cell(x, (h, c)))
    g_ref = torch.autograd.grad(loss_ref, list(ref.parameters()))
    g = torch.autograd.grad(loss, list(cell.parameters()))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)


def test_module_initialisation_matches_torch():
    torch.manual_seed(7)
    ref = torch.nn.LSTMCell(4, 3)
    torch.manual_seed(7)
    cell = torchops.nn.LSTMCell(4, 3)
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), cell.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


@pytest.mark.parametrize("mode", ["script", "trace"])
def test_module_scripted_and_traced_round_trip(mode, device, tmp_path):
    cell = torchops.nn.LSTMCell(6, 5, device=device)
    x = torch.randn(4, 6, device=device)
    state = (torch.randn(4, 5, device=device), torch.randn(4, 5, device=device))
    compiled = torch.jit.script(cell) if mode == "script" else torch.jit.trace(cell, (x, state))
    assert "super_lstm::lstm_cell" in str(compiled.graph)
    torch.jit.save(compiled, str(tmp_path / "cell.pt"))
    loaded = torch.jit.load(str(tmp_path / "cell.pt"), map_location=device)
    for e, g in zip(cell(x, state), loaded(x, state)):
        torch.testing.assert_close(g, e, rtol=0, atol=0)
