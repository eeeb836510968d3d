"""Deployment routes, through the public API with both op families: TorchScript
(script, trace, save, load), a C++ program (TorchScript models, 8 threads,
AOTInductor packages), torch.compile (fullgraph, dynamic, CUDA graphs),
torch.export and AOTInductor. The models are examples/models.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchops
from torchops import _backends

from accuracy import assert_bitwise_equal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from models import example_inputs, make_models  # noqa: E402

sys.path.insert(0, str(ROOT / "examples" / "cpp"))
from save_models import save_models  # noqa: E402

MODELS = ["box_matcher", "sequence_model", "detection_head"]
# the op a traced, compiled or exported model's graph holds ...
OPS = {"box_matcher": "super_iou::ratio_iou", "sequence_model": "super_lstm::lstm_cell",
       "detection_head": "super_iou::_complete_box_iou_loss"}
# ... and the op a scripted one calls (the public loss op, reduction included)
SCRIPTED_OPS = {**OPS, "detection_head": "super_iou::complete_box_iou_loss"}
BACKENDS = ["eager", "script", "native", "auto"]


def outputs_and_grads(model, inputs):
    """Every output, then the gradients of sum(out^2) w.r.t. the inputs and parameters."""
    inputs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out = model(*inputs)
    outs = list(out) if isinstance(out, tuple) else [out]
    loss = sum(o.square().sum() for o in outs)
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(loss, [i for i in inputs if i.requires_grad] + params)
    return [o.detach() for o in outs] + list(grads)


def reference(name, device):
    """The eager backend, not compiled: what every route must reproduce."""
    model, inputs = make_models(device)[name], example_inputs(device)[name]
    with torchops.use_backend("eager"):
        return outputs_and_grads(model, inputs)


def assert_all_close(got, expected, what, **tol):
    assert len(got) == len(expected), what
    for i, (g, e) in enumerate(zip(got, expected)):
        torch.testing.assert_close(g, e, msg=lambda m: f"{what}, tensor {i}: {m}", **tol)


def graph_ops(graph) -> set[str]:
    return {str(node.target) for node in graph.nodes if node.op == "call_function"}


# --- TorchScript --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["script", "trace"])
@pytest.mark.parametrize("name", MODELS)
def test_torchscript_model_calls_the_op_and_round_trips(name, mode, device, tmp_path):
    model, inputs = make_models(device)[name], example_inputs(device)[name]
    compiled = torch.jit.script(model) if mode == "script" else torch.jit.trace(model, inputs, check_trace=False)
    # the saved model calls the op, not a frozen copy of the eager math
    assert (SCRIPTED_OPS if mode == "script" else OPS)[name] in str(compiled.inlined_graph)
    torch.jit.save(compiled, str(tmp_path / "model.pt"))
    loaded = torch.jit.load(str(tmp_path / "model.pt"), map_location=device)
    expected = outputs_and_grads(model, inputs)
    for got in (outputs_and_grads(compiled, inputs), outputs_and_grads(loaded, inputs)):
        for g, e in zip(got, expected):
            assert_bitwise_equal(g, e, f"{name} {mode}")


def test_scripted_functions_compile_to_the_ops():
    def detect(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torchops.ratio_iou(p[0], p[1], p[2], p[3], t[0], t[1], t[2], t[3], 1e-4)

    def cell(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torchops.lstm_cell(a, b, c)

    assert "super_iou::ratio_iou" in str(torch.jit.script(detect).graph)
    assert "super_lstm::lstm_cell" in str(torch.jit.script(cell).graph)
    p, t = torch.rand(4, 10), torch.rand(4, 10)
    assert_bitwise_equal(torch.jit.script(detect)(p, t), detect(p, t), "scripted ratio_iou")


# --- C++ ----------------------------------------------------------------------------------

def cmake_prefix_path() -> str:
    import torch.utils

    return torch.utils.cmake_prefix_path


@pytest.fixture(scope="session")
def cpp_demo(tmp_path_factory) -> Path:
    """examples/cpp built with CMake against this torch and this op library."""
    def tool(name):  # the virtual environment's own first (pip installs cmake and ninja there)
        return shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)

    cmake, ninja = tool("cmake"), tool("ninja")
    if cmake is None:
        pytest.fail("cmake is needed to build examples/cpp (scripts/setup.sh installs it)")
    build = tmp_path_factory.mktemp("cpp_build")
    library = torchops.library_path()
    assert library is not None, torchops.available_backends()["native"].reason
    configure = [cmake, "-S", str(ROOT / "examples" / "cpp"), "-B", str(build),
                 f"-DCMAKE_PREFIX_PATH={cmake_prefix_path()}", f"-DTORCHOPS_LIBRARY={library}",
                 "-DCMAKE_BUILD_TYPE=Release"]
    if ninja:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    for command in (configure, [cmake, "--build", str(build), "--parallel"]):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return build / "torchops_demo"


def test_cpp_program_matches_python(cpp_demo, device, tmp_path):
    """The C++ example runs the scripted models forward and backward (also from
    8 threads at once) and their AOTInductor packages; its numbers equal
    Python's (bitwise, but for the layers Inductor generates code for)."""
    model_dir = save_models(tmp_path / "models", device)
    results_file = tmp_path / "results.pt"
    done = subprocess.run([str(cpp_demo), str(model_dir), str(results_file), device],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "threads 8 x 10 runs: 0 mismatches, 0 failures" in done.stdout
    got = torch.load(results_file, weights_only=False)

    models, inputs = make_models(device), example_inputs(device)
    pred, target = inputs["box_matcher"]
    loss, iou, grad_pred, grad_weight = outputs_and_grads(models["box_matcher"], (pred, target))[:4]
    # outputs_and_grads differentiates sum(out^2); the C++ program the loss itself
    p = pred.clone().requires_grad_()
    loss, iou = models["box_matcher"](p, target)
    grad_pred, grad_weight = torch.autograd.grad(loss, [p, models["box_matcher"].refine.weight])
    expected = {"box_matcher.loss": loss, "box_matcher.iou": iou, "box_matcher.grad_pred": grad_pred,
                "box_matcher.grad_refine_weight": grad_weight,
                "box_matcher.aoti.0": loss, "box_matcher.aoti.1": iou}
    (sequence,) = inputs["sequence_model"]
    s = sequence.clone().requires_grad_()
    out = models["sequence_model"](s)
    grad_sequence, grad_weight_ih = torch.autograd.grad(out.square().sum(), [s, models["sequence_model"].cell.weight_ih])
    expected.update({"sequence_model.out": out, "sequence_model.grad_sequence": grad_sequence,
                     "sequence_model.grad_weight_ih": grad_weight_ih, "sequence_model.aoti.0": out})
    features, gt_boxes = inputs["detection_head"]
    f = features.clone().requires_grad_()
    loss, cost = models["detection_head"](f, gt_boxes)
    grad_features, grad_conv = torch.autograd.grad(loss, [f, models["detection_head"].conv.weight])
    expected.update({"detection_head.loss": loss, "detection_head.cost": cost,
                     "detection_head.grad_features": grad_features, "detection_head.grad_conv_weight": grad_conv,
                     "detection_head.aoti.0": loss, "detection_head.aoti.1": cost})
    assert set(got) == set(expected)
    for key, value in expected.items():
        if ".aoti." in key:  # Inductor's code for the layers around the op, not bitwise
            torch.testing.assert_close(got[key], value.detach().cpu(), msg=key)
        else:
            assert_bitwise_equal(got[key], value.detach().cpu(), key)


# --- torch.compile -------------------------------------------------------------------------

@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_compile_fullgraph_matches_eager(name, backend, dynamic, device):
    torch._dynamo.reset()
    model, inputs = make_models(device)[name], example_inputs(device)[name]
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)  # a graph break raises
    with torchops.use_backend(backend):
        got = outputs_and_grads(compiled, inputs)
    assert_all_close(got, reference(name, device), f"{name} compiled with backend {backend}")


@pytest.mark.parametrize("name", MODELS)
def test_auto_under_compile_follows_the_measured_rule(name, device):
    """What "auto" puts in the compiled graph: the op itself, or its math for
    Inductor to fuse, as torchops._backends.AUTO_UNDER_COMPILE says."""
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append(gm.graph)
        return gm.forward

    torch._dynamo.reset()
    model, inputs = make_models(device)[name], example_inputs(device)[name]
    with torchops.use_backend("auto"):
        torch.compile(model, fullgraph=True, backend=recording_backend)(*inputs)
    op = OPS[name]
    keeps_op = any(op.replace("::", ".") in target for g in graphs for target in graph_ops(g))
    assert keeps_op == (_backends.AUTO_UNDER_COMPILE.get((op, device), "native") == "native")


@pytest.mark.cuda
@pytest.mark.parametrize("name", MODELS)
def test_compile_reduce_overhead_cuda_graphs(name):
    torch._dynamo.reset()
    model, inputs = make_models("cuda")[name], example_inputs("cuda")[name]
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    with torchops.use_backend("native"):
        for _ in range(3):  # warm-up, record, replay
            got = outputs_and_grads(compiled, inputs)
    assert_all_close(got, reference(name, "cuda"), f"{name} under reduce-overhead")


@pytest.mark.cuda
@pytest.mark.parametrize("name", MODELS)
def test_manual_cuda_graph_capture(name):
    """Forward and backward captured in a torch.cuda.graph and replayed on new
    inputs: the kernels run on the capturing stream."""
    model, inputs = make_models("cuda")[name], example_inputs("cuda")[name]
    static = [t.clone() for t in inputs]
    with torchops.use_backend("native"):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up outside the capture, as CUDA graphs need
            outputs_and_grads(model, static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = outputs_and_grads(model, static)
        fresh = example_inputs("cuda", seed=7)[name]
        for s, f in zip(static, fresh):
            s.copy_(f)
        graph.replay()
        torch.cuda.synchronize()
        expected = outputs_and_grads(model, fresh)
    for g, e in zip(captured, expected):
        assert_bitwise_equal(g, e, f"{name} replayed")


# --- torch.export and AOTInductor -------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_export_keeps_the_op_and_round_trips(name, device, tmp_path):
    model, inputs = make_models(device)[name], example_inputs(device)[name]
    program = torch.export.export(model, inputs)
    assert OPS[name].replace("::", ".") + ".default" in graph_ops(program.graph)
    torch.export.save(program, tmp_path / "model.pt2")
    loaded = torch.export.load(tmp_path / "model.pt2")
    expected = model(*inputs)
    for got in (program.module()(*inputs), loaded.module()(*inputs)):
        for g, e in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(expected)):
            assert_bitwise_equal(g, e, f"{name} exported")


def test_export_with_a_dynamic_batch(device):
    model, (pred, target) = make_models(device)["box_matcher"], example_inputs(device)["box_matcher"]
    boxes = torch.export.Dim("boxes")
    program = torch.export.export(model, (pred, target), dynamic_shapes=({0: boxes}, {0: boxes}))
    few = (pred[:10], target[:10])
    for g, e in zip(program.module()(*few), model(*few)):
        assert_bitwise_equal(g, e, "exported box_matcher on 10 boxes")


AOTI_RUNNER = """
import sys, torch, torchops
package, inputs, outputs = sys.argv[1:4]
loaded = torch._inductor.aoti_load_package(package)
torch.save(loaded(*torch.load(inputs)), outputs)
"""

AOTI_CONTROL = """
import sys, torch
class Plain(torch.nn.Module):
    def forward(self, x):
        return (x * 2).sin()
program = torch.export.export(Plain(), (torch.rand(8, device=sys.argv[2]),))
path = torch._inductor.aoti_compile_and_package(program, package_path=sys.argv[1])
torch._inductor.aoti_load_package(path)(torch.ones(8, device=sys.argv[2]))
"""


@pytest.mark.parametrize("name", MODELS)
def test_aoti_package_runs_from_python(name, device, tmp_path):
    """The package runs in a fresh Python process with the op library loaded.
    In a child process: torch 2.11's own loader was seen to segfault there on a
    model without torchops (docs/RELIABILITY.md); then a control model tells."""
    model, inputs = make_models(device)[name], example_inputs(device)[name]
    program = torch.export.export(model, inputs)
    path = torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / f"{name}.pt2"))
    torch.save(inputs, tmp_path / "inputs.pt")
    done = subprocess.run([sys.executable, "-c", AOTI_RUNNER, path, str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt")], capture_output=True, text=True, timeout=600)
    if done.returncode < 0:  # killed by a signal: is it torch's loader or us?
        control = subprocess.run([sys.executable, "-c", AOTI_CONTROL, str(tmp_path / "plain.pt2"), device],
                                 capture_output=True, text=True, timeout=600)
        if control.returncode < 0:
            pytest.xfail(f"torch {torch.__version__}'s aoti_load_package crashes here on a model without "
                         f"torchops too (signal {-control.returncode})")
    assert done.returncode == 0, done.stderr[-4000:]
    expected = torch.utils._pytree.tree_leaves(model(*inputs))
    got = torch.utils._pytree.tree_leaves(torch.load(tmp_path / "outputs.pt"))
    assert_all_close(got, [e.detach() for e in expected], f"{name} AOTInductor")


# --- quality ------------------------------------------------------------------------------

def test_import_prints_no_warnings():
    done = subprocess.run([sys.executable, "-W", "always", "-c", "import torchops, torchops.nn"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "always"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "", done.stdout + done.stderr


SCRIPT_BACKEND_TWICE = """
import warnings, torch, torchops
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    boxes = [torch.rand(4) for _ in range(8)]
    for _ in range(3):
        torchops.ratio_iou(*boxes, backend="script")
        torchops.lstm_cell(torch.rand(2, 8), torch.rand(2, 8), torch.rand(2, 2), backend="script")
for w in caught:
    print(w.category.__name__, "|", str(w.message).splitlines()[0])
"""


def test_script_backend_warns_at_most_once_in_our_words():
    done = subprocess.run([sys.executable, "-c", SCRIPT_BACKEND_TWICE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) <= 1, lines  # none where torch does not deprecate TorchScript
    for line in lines:
        assert "torchops: the 'script' backend uses TorchScript" in line and "backend='native'" in line
