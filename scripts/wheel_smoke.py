"""Smoke test of an installed torchops wheel (scripts/wheel_check.sh runs it in a
fresh environment, outside the source tree, with no compiler on PATH): the
wheel's own library loads, both ops run on every backend and in a scripted
model, and a library built for another torch is refused, with the reason, and
never crashes the process."""

import json
import shutil
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

import torch

import torchops
from torchops.iou import ratio_iou_eager
from torchops.lstm import lstm_cell_eager

assert shutil.which("c++") is None and shutil.which("gcc") is None, "a compiler is on PATH"
package = Path(torchops.__file__).parent
assert "site-packages" in str(package), f"torchops comes from {package}, not the installed wheel"
print("requires:", metadata.requires("torchops"))

status = torchops.available_backends()
for name, s in status.items():
    print(f"{name}: {s.available} ({s.reason})")
assert status["native"].available, status["native"].reason
assert Path(torchops.library_path()).parent == package, "the wheel's library was not the one loaded"
assert torchops.cpu_capability() == torch.backends.cpu.get_cpu_capability()

gen = torch.Generator().manual_seed(0)
boxes = [torch.rand(1000, generator=gen) for _ in range(8)]
gates = [torch.randn(8, 4 * 32, generator=gen), torch.randn(8, 4 * 32, generator=gen), torch.randn(8, 32, generator=gen),
         torch.randn(4 * 32, generator=gen), torch.randn(4 * 32, generator=gen)]
want_iou = ratio_iou_eager(*boxes)
want_hy, want_cy = lstm_cell_eager(*gates)
for backend in ("eager", "script", "native", "auto"):
    assert torch.equal(torchops.ratio_iou(*boxes, backend=backend), want_iou), backend
    hy, cy = torchops.lstm_cell(*gates, backend=backend)
    assert torch.allclose(hy, want_hy, atol=1e-6) and torch.allclose(cy, want_cy, atol=1e-6), backend


class Model(torch.nn.Module):
    def forward(self, x1, y1, w1, h1, x2, y2, w2, h2, ig, hg, cx, b_ih, b_hh):
        iou = torch.ops.super_iou.ratio_iou(x1, y1, w1, h1, x2, y2, w2, h2, 1e-5)
        hy, cy = torch.ops.super_lstm.lstm_cell(ig, hg, cx, b_ih, b_hh)
        return iou, hy, cy


scripted = torch.jit.script(Model())
iou, hy, cy = scripted(*boxes, *gates)
assert torch.equal(iou, want_iou) and torch.allclose(hy, want_hy, atol=1e-6)
print("both ops on every backend and in a scripted model: ok")

# A library built for another torch: pretend this one was, in a child process.
info_path = package / "_C.build.json"
info = json.loads(info_path.read_text())
original = info_path.read_text()
try:
    info_path.write_text(json.dumps({**info, "torch": "2.0.0"}))
    child = subprocess.run([sys.executable, "-W", "always::RuntimeWarning", "-c", """
import torch, torchops
x = [torch.rand(10) for _ in range(8)]
torchops.ratio_iou(*x); torchops.ratio_iou(*x)   # auto falls back to eager: one warning
print("native:", torchops.available_backends()["native"])
"""], capture_output=True, text=True)
finally:
    info_path.write_text(original)
print(child.stdout + child.stderr)
assert child.returncode == 0, "the process did not survive a library built for another torch"
assert "built for torch 2.0.0" in child.stdout and "no C++ compiler" in child.stdout, child.stdout
assert child.stderr.count("RuntimeWarning") == 1, child.stderr
print("a library built for another torch: refused, said why, warned once: ok")
