"""Plugging in: register_implementation, plug-ins found through the
"torchops.backends" entry-point group (tests/plugin_pkg, installed into a
temporary directory), and check_implementation, which accepts every built-in
backend and rejects implementations that are wrong in one value, one NaN or
one input's gradient."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import torch

import torchops
import torchops.ops
from torchops import _backends, _registry
from torchops.testing import check_implementation

PLUGIN = Path(__file__).resolve().parent / "plugin_pkg"

# the demo's and the docs' ratio_iou run on both devices where there is a GPU
RATIO_IOU_CASES = "120 cases on cpu, cuda" if torch.cuda.is_available() else "60 cases on cpu"


@pytest.fixture
def registry():
    """Registrations made by a test are undone after it."""
    saved = {backend: dict(ops) for backend, ops in _registry._implementations.items()}
    origins = dict(_registry._origins)
    yield _registry
    _registry._implementations.clear()
    _registry._implementations.update(saved)
    _registry._origins.clear()
    _registry._origins.update(origins)
    _registry.resolved.clear()


def boxes(n=5, device="cpu"):
    gen = torch.Generator().manual_seed(0)
    return [(torch.rand(n, generator=gen) * 4).to(device) for _ in range(8)]


# --- register_implementation ------------------------------------------------------------

def test_a_registered_backend_is_selected_every_way(registry):
    calls = []

    def mine(*args):
        calls.append(len(args))
        return torchops.ratio_iou_eager(*args)

    torchops.register_implementation("ratio_iou", "mine", mine)
    b = boxes()
    expected = torchops.ratio_iou(*b, backend="eager")
    torch.testing.assert_close(torchops.ratio_iou(*b, backend="mine"), expected)
    with torchops.use_backend("mine"):
        torchops.ratio_iou(*b)
    torchops.set_backend("mine")
    try:
        torchops.ratio_iou(*b, 1e-5)
    finally:
        torchops.set_backend("auto")
    torchops.ratio_iou(*b)  # auto: not a plug-in
    assert calls == [9, 9, 9]
    assert torchops.available_backends()["mine"].available


def test_missing_op_or_device_is_a_clear_error(registry):
    torchops.register_implementation("ratio_iou", "cpuonly", torchops.ratio_iou_eager, devices=("cpu",))
    gates = torch.randn(2, 8), torch.randn(2, 8), torch.randn(2, 2)
    with pytest.raises(RuntimeError, match="backend 'cpuonly' has no implementation of lstm_cell "
                                           r"\(it implements ratio_iou\)"):
        torchops.lstm_cell(*gates, backend="cpuonly")
    with pytest.raises(RuntimeError, match="backend 'cpuonly' implements ratio_iou for cpu, not for meta tensors"):
        torchops.ratio_iou(*boxes(device="meta"), backend="cpuonly")
    with pytest.raises(ValueError, match="backend must be one of .*'cpuonly'.*but got 'nonesuch'"):
        torchops.ratio_iou(*boxes(), backend="nonesuch")


def test_registration_is_checked(registry):
    with pytest.raises(ValueError, match="unknown op 'ratio_io'"):
        torchops.register_implementation("ratio_io", "mine", torchops.ratio_iou_eager)
    with pytest.raises(ValueError, match="'native' is one of torchops' own backends"):
        torchops.register_implementation("ratio_iou", "native", torchops.ratio_iou_eager)
    with pytest.raises(ValueError, match="backend must be a name"):
        torchops.register_implementation("ratio_iou", "my backend", torchops.ratio_iou_eager)
    with pytest.raises(TypeError, match="fn must be callable"):
        torchops.register_implementation("ratio_iou", "mine", None)


def test_registering_again_replaces(registry):
    b = boxes()
    torchops.register_implementation("ratio_iou", "mine", lambda *a: torch.zeros(5))
    assert bool((torchops.ratio_iou(*b, backend="mine") == 0).all())
    torchops.register_implementation("ratio_iou", "mine", lambda *a: torch.ones(5))
    assert bool((torchops.ratio_iou(*b, backend="mine") == 1).all())


def test_a_registered_backend_under_compile_fullgraph(registry):
    """Dynamo traces the public function into the plug-in's implementation."""
    seen = []

    def mine(boxes1, boxes2, reduction="none", eps=1e-7, *, fmt="xyxy"):
        seen.append(fmt)
        return torchops.ops.generalized_box_iou_loss(boxes1, boxes2, reduction, eps, fmt=fmt, backend="eager")

    torchops.register_implementation("generalized_box_iou_loss", "mine", mine)
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.5, 0.0, 2.0, 2.5], [1.0, 2.0, 3.0, 3.0]])

    def step(p, t):
        return torchops.ops.generalized_box_iou_loss(p, t, "sum", backend="mine")

    got = torch.compile(step, fullgraph=True, backend="eager")(pred, target)
    expected = torchops.ops.generalized_box_iou_loss(pred, target, "sum", backend="eager")
    torch.testing.assert_close(got, expected)
    assert seen and set(seen) == {"xyxy"}


# --- check_implementation ------------------------------------------------------------------

BUILTIN_EDGE_GRADIENTS = {"eager": True, "native": True, "script": False}


@pytest.mark.parametrize("backend", ["eager", "native", "script"])
@pytest.mark.parametrize("op", sorted(_registry.OPS))
def test_check_implementation_accepts_the_builtin_backends(op, backend):
    # script: TorchScript's autodiff has its own formulas at overflow and
    # division by zero (test_ratio_iou.py: test_script_autodiff_differs_...)
    print(check_implementation(op, backend, edge_gradients=BUILTIN_EDGE_GRADIENTS[backend]))


def _eager(op):
    public = _registry.OPS[op].public
    return lambda *args, **kwargs: public(*args, backend="eager", **kwargs)


def _map_outputs(out, f):
    return tuple(map(f, out)) if isinstance(out, tuple) else f(out)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient times `factor`."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def off_by_1e3(op):
    eager = _eager(op)
    return lambda *args, **kwargs: _map_outputs(eager(*args, **kwargs), lambda t: t * (1 + 1e-3))


def nan_to_number(op):
    eager = _eager(op)
    return lambda *args, **kwargs: _map_outputs(eager(*args, **kwargs), torch.nan_to_num)


def wrong_gradient(op, index):
    eager = _eager(op)

    def fn(*args, **kwargs):
        args = list(args)
        if args[index] is None:  # an absent bias: nothing to get wrong in this case
            return eager(*args, **kwargs)
        args[index] = _ScaleGradient.apply(args[index], 1 + 1e-3)
        return eager(*args, **kwargs)

    return fn


WRONG = [("ratio_iou", i) for i in range(8)] + [("lstm_cell", i) for i in range(5)] + [
    (op, i) for op in ("complete_box_iou_loss", "box_iou", "paired_distance_box_iou") for i in range(2)]


@pytest.mark.parametrize("op", ["ratio_iou", "lstm_cell", "complete_box_iou_loss", "box_iou"])
@pytest.mark.parametrize("wrong", [off_by_1e3, nan_to_number])
def test_check_implementation_rejects_wrong_values(op, wrong, registry):
    torchops.register_implementation(op, "wrong", wrong(op))
    with pytest.raises(AssertionError, match=rf"check_implementation\('{op}', 'wrong'\): \d+ of \d+ cases differ"):
        check_implementation(op, "wrong", cases=40)


@pytest.mark.parametrize("op, index", WRONG)
def test_check_implementation_rejects_a_wrong_gradient_of_any_input(op, index, registry):
    torchops.register_implementation(op, "wrong", wrong_gradient(op, index))
    with pytest.raises(AssertionError, match="gradient of"):
        check_implementation(op, "wrong", cases=40)


def test_check_implementation_report_is_readable(registry):
    torchops.register_implementation("ratio_iou", "wrong", wrong_gradient("ratio_iou", 3))
    with pytest.raises(AssertionError) as info:
        check_implementation("ratio_iou", "wrong", cases=20)
    report = str(info.value)
    assert "gradient of h1" in report and "float64 reference" in report and "seed=" in report, report


def test_check_implementation_rejects_what_does_not_run(registry):
    def no_gradient(*args):
        return torchops.ratio_iou_eager(*(a.detach() for a in args[:8]), *args[8:])

    torchops.register_implementation("ratio_iou", "nograd", no_gradient)
    with pytest.raises(AssertionError, match="no gradient"):
        check_implementation("ratio_iou", "nograd", cases=10)
    assert "agree with eager" in check_implementation("ratio_iou", "nograd", cases=10, gradients=False)

    torchops.register_implementation("ratio_iou", "raises", lambda *a: torch.ops.aten.nonesuch(a[0]))
    with pytest.raises(AssertionError, match="raised AttributeError"):
        check_implementation("ratio_iou", "raises", cases=5)

    def in_place(x1, *rest):
        out = torchops.ratio_iou_eager(x1, *rest)
        x1.data.add_(1)
        return out

    torchops.register_implementation("ratio_iou", "inplace", in_place)
    with pytest.raises(AssertionError, match="modified its input x1"):
        check_implementation("ratio_iou", "inplace", cases=5, gradients=False)


# --- plug-ins through the entry-point group ------------------------------------------------

def install(tmp_path: Path) -> Path:
    """tests/plugin_pkg as pip would install it: the package and its
    dist-info (entry points from its pyproject.toml) in one directory."""
    site = tmp_path / "site"
    shutil.copytree(PLUGIN / "torchops_demo_plugin", site / "torchops_demo_plugin")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    dist = site / "torchops_demo_plugin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = ["[torchops.backends]"] + [f"{k} = {v}" for k, v in project["entry-points"]["torchops.backends"].items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


def run_python(site: Path, code: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_plugin_is_found_on_first_use_selected_and_checked(tmp_path):
    out = run_python(install(tmp_path), """
        import sys, warnings
        import torch, torchops
        from torchops import _backends
        from torchops.testing import check_implementation

        # import torchops and calls with its own backends load no plug-in
        x = [torch.rand(6) * 3 for _ in range(8)]
        torchops.ratio_iou(*x)
        torchops.ratio_iou(*x, backend="eager")
        assert "torchops_demo_plugin" not in sys.modules, "loaded at import"

        got = torchops.ratio_iou(*x, backend="demo")  # the first use loads the plug-ins
        import torchops_demo_plugin as demo
        assert demo.LOADED == ["demo"], demo.LOADED
        torch.testing.assert_close(got, torchops.ratio_iou(*x, backend="eager"))
        assert _backends.implementation("ratio_iou", "demo", x[0]) is demo.ratio_iou
        with torchops.use_backend("demo"):
            assert _backends.implementation("ratio_iou", None, x[0]) is demo.ratio_iou
        torchops.set_backend("demo")
        assert _backends.implementation("ratio_iou", None, x[0]) is demo.ratio_iou
        torchops.set_backend("auto")

        status = torchops.available_backends()
        assert status["demo"].available, status["demo"]
        assert "plug-in demo = torchops_demo_plugin:register" in status["demo"].reason, status["demo"]
        assert "ratio_iou (cpu/cuda)" in status["demo"].reason and "paired_box_iou (cpu)" in status["demo"].reason
        broken = status["broken"]
        assert not broken.available and "failed to load: ImportError: this plug-in needs" in broken.reason, broken

        print(check_implementation("ratio_iou", "demo"))
        print(check_implementation("paired_box_iou", "demo"))
        try:
            torchops.lstm_cell(torch.randn(1, 4), torch.randn(1, 4), torch.randn(1, 1), backend="demo")
        except RuntimeError as exc:
            print("error:", exc)
        try:
            torchops.ratio_iou(*x, backend="broken")
        except ValueError as exc:
            print("error:", exc)
        print("torchops still works:", torchops.ratio_iou(*x, backend="native").shape)
    """)
    assert f"check_implementation('ratio_iou', 'demo'): {RATIO_IOU_CASES} agree with eager" in out, out
    assert "check_implementation('paired_box_iou', 'demo'): 60 cases on cpu agree with eager" in out, out
    assert "error: torchops: backend 'demo' has no implementation of lstm_cell" in out, out
    assert "but got 'broken'; plug-in broken = torchops_demo_plugin.broken:register failed to load" in out, out
    assert "torchops still works: torch.Size([6])" in out, out


def test_available_backends_loads_the_plugins(tmp_path):
    out = run_python(install(tmp_path), """
        import sys, torchops
        assert "torchops_demo_plugin" not in sys.modules
        status = torchops.available_backends()
        print(sorted(status), status["broken"].available)
    """)
    assert "'broken', 'demo'" in out and out.strip().endswith("False"), out


def test_the_example_in_plugging_in_md_runs(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "PLUGGING_IN.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    out = run_python(tmp_path, example + "\nprint('backend now', torchops.get_backend())\n")
    assert f"check_implementation('ratio_iou', 'mylib'): {RATIO_IOU_CASES} agree with eager" in out, out
    assert "backend now mylib" in out, out


# --- what auto picks ---------------------------------------------------------------------

@pytest.mark.parametrize("native, triton, expected", [
    (True, True, {"ratio_iou": "native", "lstm_cell": "native", "box_iou": "native"}),
    (False, True, {"ratio_iou": "triton", "lstm_cell": "triton", "complete_box_iou_loss": "triton",
                   "box_iou": "script"}),
    (False, False, {"ratio_iou": "script", "lstm_cell": "script", "complete_box_iou_loss": "script"}),
])
def test_auto_on_cuda_native_then_triton_then_script(native, triton, expected, monkeypatch):
    """The rule, with what this machine has replaced by the case's."""
    from torchops import triton as triton_backend

    monkeypatch.setattr(_backends, "_has_native", lambda op, device_type: native)
    monkeypatch.setattr(triton_backend, "unavailable", lambda device_type: None if triton else "not here")
    monkeypatch.setattr(triton_backend, "status", lambda: (triton, "as the case says"))
    monkeypatch.setattr(_registry, "_implementations", {**_registry._implementations, "triton": {
        op: _registry.Implementation(lambda *a: None, frozenset({"cuda"})) for op in triton_backend.OPS}})
    for op, backend in expected.items():
        assert _backends._auto(op, "cuda", "native") == backend, op
        assert _backends._auto(op, "cpu", "native") == ("native" if native else "eager"), op
    if torch.cuda.is_available():
        return
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    reason = torchops.available_backends()["auto"].reason
    assert "On CUDA here: " + ("native" if native else "triton" if triton else "script") in reason, reason
