"""The CPU kernels at every capability ATen knows on this machine, and on a CPU
without AVX.

The kernel files are compiled once per capability (DEFAULT, AVX2, AVX512) and
ATen's DispatchStub picks one copy from torch's own capability, which
ATEN_CPU_CAPABILITY overrides. The choice is made once per process, so each
capability runs in a child process. (CI also runs the kernel tests whole at
ATEN_CPU_CAPABILITY=default: scripts/test.sh.)
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchops
from torchops import _library

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = ["DEFAULT", "AVX2", "AVX512"]  # ATen's on x86-64, in order

pytestmark = pytest.mark.skipif(
    torchops.cpu_capability() is None, reason=f"the op library is not loaded: {_library.load_error()}")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@functools.lru_cache(maxsize=None)
def best_capability() -> str:
    """What this CPU supports at best, as torch sees it without ATEN_CPU_CAPABILITY
    (this process may run under it)."""
    done = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        env=child_env(), capture_output=True, text=True, check=True)
    return done.stdout.strip()


def supported() -> list[str]:
    best = best_capability()
    return CAPABILITIES[: CAPABILITIES.index(best) + 1] if best in CAPABILITIES else [best]


# Run in the child: both ops (and the box family) against eager, forward and
# backward, at the capability the child was started with. ratio_iou's
# float32/float64 results must equal eager's bit for bit at every capability
# (no FMA contraction in either); the others within a few ulps.
CHECK = r"""
import json, sys
block_numpy = len(sys.argv) > 1 and sys.argv[1] == "no-numpy"
if block_numpy:  # numpy's own wheels need more than a pre-AVX CPU has
    sys.modules["numpy"] = None
import torch, torchops
from torchops.iou import ratio_iou_eager
from torchops.lstm import lstm_cell_eager

def same(a, b):
    return bool(((a == b) | (a.isnan() & b.isnan())).all())

def boxes(n, dtype, gen):
    out = [torch.rand(n, generator=gen, dtype=torch.float64) * 4 for _ in range(8)]
    out[0][:7] = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, 1.0, 1.0, 2.0], dtype=torch.float64)
    out[4][:7] = out[0][:7]  # ties, NaN and inf on both sides
    return [t.to(dtype) for t in out]

result = {"torch": torch.backends.cpu.get_cpu_capability(), "ours": torchops.cpu_capability(),
          "reason": torchops.available_backends()["native"].reason, "failures": []}
gen = torch.Generator().manual_seed(0)
n = 1000 + 13 if block_numpy else 4096 + 13  # a vector body and a scalar tail
for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
    xs = [b.requires_grad_() for b in boxes(n, dtype, gen)]
    out = torchops.ratio_iou(*xs, backend="native")
    ref = ratio_iou_eager(*xs)
    g = torch.autograd.grad(out, xs, torch.ones_like(out))
    gr = torch.autograd.grad(ref, xs, torch.ones_like(ref))
    if dtype in (torch.float32, torch.float64):
        ok = same(out, ref) and all(same(a, b) for a, b in zip(g, gr))
    else:  # float math inside, one rounding: as eager's in float32, rounded (within an ulp)
        ref = ratio_iou_eager(*[x.detach().float() for x in xs]).to(dtype)
        ulp = 2.0**-7 if dtype == torch.bfloat16 else 2.0**-10
        ok = torch.allclose(out.float(), ref.float(), atol=ulp, rtol=ulp, equal_nan=True)
    if not ok:
        result["failures"].append(f"ratio_iou {dtype}")
for dtype in (torch.float32, torch.float64):
    B, H = 5, 37 if block_numpy else 133
    args = [torch.randn(B, 4 * H, generator=gen, dtype=dtype), torch.randn(B, 4 * H, generator=gen, dtype=dtype),
            torch.randn(B, H, generator=gen, dtype=dtype), torch.randn(4 * H, generator=gen, dtype=dtype),
            torch.randn(4 * H, generator=gen, dtype=dtype)]
    args = [a.requires_grad_() for a in args]
    hy, cy = torchops.lstm_cell(*args, backend="native")
    ehy, ecy = lstm_cell_eager(*args)
    g = torch.autograd.grad((hy.sum() + cy.sum()), args)
    eg = torch.autograd.grad((ehy.sum() + ecy.sum()), args)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    if not (torch.allclose(hy, ehy, **tol) and torch.allclose(cy, ecy, **tol)
            and all(torch.allclose(a, b, **tol) for a, b in zip(g, eg))):
        result["failures"].append(f"lstm_cell {dtype}")
b1 = torch.rand(n, 4, generator=gen, dtype=torch.float64)
b2 = torch.rand(n, 4, generator=gen, dtype=torch.float64)
b1[:, 2:] += b1[:, :2]
b2[:, 2:] += b2[:, :2]
for name in ("paired_box_iou", "paired_generalized_box_iou", "paired_distance_box_iou", "paired_complete_box_iou"):
    fn = getattr(torchops.ops, name)
    a, b = b1.clone().requires_grad_(), b2.clone().requires_grad_()
    got = fn(a, b, backend="native")
    want = fn(a, b, backend="eager")
    ga = torch.autograd.grad(got.sum(), (a, b))
    gw = torch.autograd.grad(want.sum(), (a, b))
    if not (torch.allclose(got, want, atol=1e-12) and all(torch.allclose(x, y, atol=1e-12) for x, y in zip(ga, gw))):
        result["failures"].append(name)
print(json.dumps(result))
"""


def run_check(prefix: list[str], env: dict[str, str], *args: str, timeout: float = 600) -> dict:
    done = subprocess.run([*prefix, sys.executable, "-c", CHECK, *args], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"the child exited with {done.returncode}:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_each_capability_runs_its_own_kernels_and_matches_eager(capability):
    if capability not in supported():
        pytest.skip(f"this CPU's best capability is {best_capability()}")
    result = run_check([], child_env(ATEN_CPU_CAPABILITY=capability.lower()))
    assert result["torch"] == capability
    assert result["ours"] == capability, result
    assert f"CPU kernels for {capability}" in result["reason"], result["reason"]
    assert result["failures"] == [], result


def test_without_aten_cpu_capability_the_best_one_runs():
    result = run_check([], child_env())
    assert result["ours"] == result["torch"] == best_capability()


def qemu_reason() -> str | None:
    if shutil.which("qemu-x86_64") is None:
        return "qemu-x86_64 is not installed (Debian: apt-get install qemu-user; scripts/setup.sh tries)"
    if best_capability() not in CAPABILITIES:
        return "not an x86-64 machine"
    return None


@pytest.mark.slow
@pytest.mark.skipif(qemu_reason() is not None, reason=str(qemu_reason()))
def test_loads_and_runs_on_a_cpu_without_avx():
    """Westmere (2010): SSE4.2, no AVX. The library must load (its static
    initialisers are baseline code) and run the DEFAULT kernels. numpy is kept
    out: its wheels need AVX (they die the same way), and torch runs without it."""
    result = run_check(["qemu-x86_64", "-cpu", "Westmere"], child_env(), "no-numpy", timeout=1800)
    assert result["torch"] == "DEFAULT"
    assert result["ours"] == "DEFAULT", result
    assert result["failures"] == [], result


# An instruction of AVX or later: VEX/EVEX-encoded mnemonics (v...), AVX-512 mask
# registers and instructions, or ymm/zmm registers.
AVX_INSTRUCTION = re.compile(r"^\s+[0-9a-f]+:\s+(v(?!err|erw|mcall|mlaunch|mresume|mxo)[a-z0-9]+|k[a-z]+[bwdq]\s+%k)|%[yz]mm|%k[0-7]")


def functions_with_avx(library: str) -> dict[str, str]:
    """Function name (demangled) -> the first AVX instruction in it."""
    listing = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", library],
                             capture_output=True, text=True, check=True).stdout
    found: dict[str, str] = {}
    current = None
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            current = header.group(1)
        elif current is not None and current not in found and AVX_INSTRUCTION.search(line):
            found[current] = line.strip()
    return found


def global_functions(library: str) -> set[str]:
    """Functions the dynamic linker may bind other code to (global or weak)."""
    table = subprocess.run(["objdump", "-t", "-C", library], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in table.splitlines():
        m = re.match(r"^[0-9a-f]+ (.{7}) \S+\s+[0-9a-f]+\s+(?:\.hidden\s+)?(.+)$", line)
        if m and "F" in m.group(1) and (m.group(1)[0] in "gu" or m.group(1)[1] == "w"):
            names.add(m.group(2).strip())
    return names


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_code_outside_the_capability_copies_has_no_avx():
    """AVX code only in the AVX2/AVX512 copies: none in the DEFAULT copy, in a
    static initialiser, or in a function other code may bind to (an inline
    function defined by a baseline and an AVX object: the linker keeps one copy)."""
    library = torchops.library_path()
    if "no symbols" in subprocess.run(["objdump", "-t", library], capture_output=True, text=True).stdout:
        pytest.skip(f"{library} is stripped (a wheel's library): nothing to tell functions apart by")
    avx = functions_with_avx(library)
    assert any("AVX512::" in f for f in avx) and any("AVX2::" in f for f in avx), "no AVX kernels found at all"
    exported = global_functions(library)

    def allowed(name: str) -> bool:
        return "AVX2::" in name or "AVX512::" in name

    bad = {f: i for f, i in avx.items()
           if not allowed(f) and (f in exported or "DEFAULT::" in f or f.startswith("_GLOBAL__sub_I"))}
    assert not bad, "AVX instructions in baseline code:\n" + "\n".join(f"{f}: {i}" for f, i in sorted(bad.items())[:20])
