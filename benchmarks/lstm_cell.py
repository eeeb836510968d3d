"""lstm_cell over (batch, hidden), float32, both biases: the plain function,
under torch.jit.script and torch.compile, ATen's fused pointwise cell
(aten::_thnn_fused_lstm_cell, what torch.nn.LSTMCell runs on CUDA; ATen has
none for the CPU) and torchops native/triton, forward and forward+backward.

The second suite, nn.LSTMCell, is the whole cell module (matmuls included):
torch.nn.LSTMCell (torch._VF.lstm_cell) against torchops.nn.LSTMCell, with
gradients of the inputs, the state and the parameters."""

from __future__ import annotations

import torch

import torchops
from torchops.lstm import lstm_cell_eager

from benchmarks.harness import (
    FORWARD, MODES, Case, Settings, compiled, scripted, torchops_backend_reason, torchops_impls,
)

OP = "lstm_cell"
MODULE_OP = "nn.LSTMCell"
X_LABEL = "batch x hidden"
SIZES = {
    "cpu": [(64, 256), (64, 512), (256, 512), (256, 1024), (1024, 1024)],
    "cuda": [(64, 512), (256, 1024), (1024, 1024), (4096, 1024), (16384, 2048)],
}
QUICK = {"cpu": [(64, 256)], "cuda": [(4096, 1024)]}  # a graph of one input set
DRY = [(4, 32)]
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


def make_inputs(batch: int, hidden: int, device: str, seed: int, requires_grad: bool) -> list[torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(seed)
    shapes = [(batch, 4 * hidden), (batch, 4 * hidden), (batch, hidden), (4 * hidden,), (4 * hidden,)]
    return [torch.randn(s, generator=gen, device=device).requires_grad_(requires_grad) for s in shapes]


def torchops_fn(backend: str):
    return lambda *inputs: torchops.lstm_cell(*inputs, backend=backend)


def cases(settings: Settings) -> list[Case]:
    device = settings.device
    out = []
    for batch, hidden in settings.sizes(SIZES, QUICK, DRY):
        for mode in MODES:
            impls = {
                "eager": lstm_cell_eager,
                "script": scripted(lstm_cell_eager),
                "compile": compiled(lstm_cell_eager, settings),
                "aten fused": aten_fused if device == "cuda" else "ATen has no fused CPU cell",
                **torchops_impls(torchops_fn, device),
            }
            out.append(Case(
                OP, f"({batch}, {hidden})", batch * hidden, mode, impls,
                make_inputs=lambda seed, rg, b=batch, h=hidden: make_inputs(b, h, device, seed, rg),
                input_bytes=batch * hidden * 9 * 4,
                bytes_moved=batch * hidden * 4 * (FORWARD_H if mode == FORWARD else TRAINING_H),
                tolerance=1e-3,
            ))
    return out


def module_cases(settings: Settings) -> list[Case]:
    """One step of the cell module, input size = hidden."""
    device = settings.device
    out = []
    for batch, hidden in settings.sizes(SIZES, QUICK, DRY):
        for mode in MODES:
            torch.manual_seed(0)
            modules = {"torch.nn.LSTMCell": torch.nn.LSTMCell(hidden, hidden, device=device)}
            reason = torchops_backend_reason("native", device)
            if reason is None:
                fused = torchops.nn.LSTMCell(hidden, hidden, device=device, backend="native")
                fused.load_state_dict(modules["torch.nn.LSTMCell"].state_dict())
                modules["torchops.nn.LSTMCell"] = fused
            impls = {name: (lambda x, h, c, m=m: m(x, (h, c))) for name, m in modules.items()}
            if reason is not None:
                impls["torchops.nn.LSTMCell"] = reason

            def make(seed, rg, b=batch, h=hidden):
                gen = torch.Generator(device=device).manual_seed(seed)
                return [torch.randn(b, h, generator=gen, device=device).requires_grad_(rg) for _ in range(3)]

            out.append(Case(
                MODULE_OP, f"({batch}, {hidden})", batch * hidden, mode, impls, make_inputs=make,
                input_bytes=batch * hidden * 3 * 4, tolerance=1e-3,
                grad_targets=lambda name, inputs, modules=modules: inputs + list(modules[name].parameters()),
            ))
    return out
