"""lstm_cell benchmark: eager, TorchScript, torch.compile, PyTorch's fused
cell (aten::_thnn_fused_lstm_cell, CUDA only) and native, forward and
forward+backward over (batch, hidden), float32; plus the whole cell module
(matmuls included): torch.nn.LSTMCell against torchops.nn.LSTMCell."""

from __future__ import annotations

import math

import torch

import torchops
from torchops import _backends
from torchops.lstm import lstm_cell_eager

from benchmarks.harness import CACHE_BYTES, Report, fresh_compile, measure

CPU_SIZES = [(64, 256), (256, 512), (1024, 1024)]
CUDA_SIZES = [(64, 512), (256, 1024), (4096, 1024), (16384, 2048)]
# per batch row, in units of H float32 values: forward reads both gate tensors
# (8H) and cx, writes hy and cy; in training it also writes the activated
# gates (4H), which the backward reads with cx, grad_hy and grad_cy, writing
# the gate gradient (4H) and cx's. (A backward that recomputes the gates
# instead reads 8H + 3H and writes 5H: the same 27H in all.)
FORWARD_H = 8 + 1 + 2
TRAINING_H = (FORWARD_H + 4) + (4 + 1 + 2) + (4 + 1)


def aten_fused(ig, hg, cx, b_ih, b_hh):
    hy, cy, _workspace = torch.ops.aten._thnn_fused_lstm_cell(ig, hg, cx, b_ih, b_hh)
    return hy, cy


def make_inputs(batch, hidden, device, seed, requires_grad):
    gen = torch.Generator(device=device).manual_seed(seed)
    shapes = [(batch, 4 * hidden), (batch, 4 * hidden), (batch, hidden), (4 * hidden,), (4 * hidden,)]
    return [torch.randn(s, generator=gen, device=device).requires_grad_(requires_grad) for s in shapes]


def implementations(device):
    impls = {
        "eager": lstm_cell_eager,
        "script": _backends.scripted(lstm_cell_eager),
        "compile": fresh_compile(lstm_cell_eager),
    }
    if device == "cuda":
        impls["aten fused"] = aten_fused
    impls["native"] = lambda *a: torchops.lstm_cell(*a, backend="native")
    return impls


def bench(report: Report, device: str, sizes, budget_s: float) -> None:
    for batch, hidden in sizes:
        label = f"({batch}, {hidden})"
        per_set = batch * hidden * FORWARD_H * 4
        sets = max(1, min(32, math.ceil(2 * CACHE_BYTES / per_set)))
        grads = [torch.randn(batch, hidden, device=device) for _ in range(2)]
        for mode in ("forward", "forward+backward"):
            training = mode != "forward"
            input_sets = [make_inputs(batch, hidden, device, s, training) for s in range(sets)]

            def run(fn, inputs, training=training):
                out = fn(*inputs)
                return (out, torch.autograd.grad(out, inputs, grads)) if training else out

            bytes_moved = batch * hidden * 4 * (TRAINING_H if training else FORWARD_H)
            measure(report, label, mode, implementations(device), input_sets, run, bytes_moved, device,
                    budget_s, tolerance=1e-3)
            del input_sets
        bench_module(report, device, batch, hidden, budget_s)


def bench_module(report, device, batch, hidden, budget_s):
    """One training step of the cell module, input size = hidden."""
    torch.manual_seed(0)
    reference = torch.nn.LSTMCell(hidden, hidden, device=device)
    fused = torchops.nn.LSTMCell(hidden, hidden, device=device, backend="native")
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(batch, hidden, device=device)
    state = (torch.randn(batch, hidden, device=device), torch.randn(batch, hidden, device=device))
    impls = {"torch.nn.LSTMCell": reference, "torchops.nn.LSTMCell": fused}

    def run(module, _):
        hy, cy = module(x, state)
        return (hy, cy), torch.autograd.grad((hy, cy), list(module.parameters()), (state[0], state[1]))

    measure(report, f"({batch}, {hidden})", "module fwd+bwd", impls, [None], run, 0, device, budget_s,
            tolerance=1e-3)


def check_bars(report: Report, device: str) -> None:
    t = report.time_of

    def ratio(a, b):
        return None if a is None or b is None else a / b

    if device == "cuda":
        big, small = "(16384, 2048)", "(64, 512)"
        report.bar(f"forward {big}: native / compile", ratio(t(big, "native", "forward"), t(big, "compile", "forward")), 1.05)
        report.bar(f"forward+backward {big}: native / aten fused", ratio(t(big, "native", "forward+backward"), t(big, "aten fused", "forward+backward")), 0.999)
        report.bar(f"forward+backward {small}: aten fused / native", ratio(t(small, "aten fused", "forward+backward"), t(small, "native", "forward+backward")), 3, higher_is_better=True)
    else:
        for batch, hidden in CPU_SIZES:
            size = f"({batch}, {hidden})"
            for mode in ("forward", "forward+backward"):
                for peer in ("eager", "compile"):
                    report.bar(f"{mode} {size}: native / {peer}", ratio(t(size, "native", mode), t(size, peer, mode)), 0.999)
            report.bar(f"module {size}: torchops / torch", ratio(t(size, "torchops.nn.LSTMCell", "module fwd+bwd"), t(size, "torch.nn.LSTMCell", "module fwd+bwd")), 1.0)
