"""The conformance suite: every registered op (torchops._registry.OPS:
ratio_iou, lstm_cell and the box family) through every backend, driven by
the declarations and the registry; what each op adds is its inputs and
claims (torchops/testing/_ops.py).

- hypothesis cases (shapes incl. empty and batch dims, broadcast, strided and
  0-d inputs, four dtypes, ties, degenerate and huge values, NaN/inf) through
  native, script and any other registered backend, values and gradients
  against eager: the case check of torchops.testing.check_implementation,
  and the op's claims beyond it (bitwise equality with eager);
- float64 gradcheck of every backend, the double-backward error;
- opcheck of every op of its declaration (the op, a training forward, the
  backward op);
- empty inputs, mixed dtypes, autocast, large broadcast or strided inputs
  read without copies;
- TorchScript (script and trace, save, load), torch.compile(fullgraph=True)
  and torch.export.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools

import pytest
import torch
from hypothesis import given, strategies as st
from torch.jit import _builtins

import torchops
from torchops import _declared, _registry
from torchops.testing import _conformance
from torchops.testing._accuracy import assert_bitwise_equal
from torchops.testing import _ops

OPS = sorted(_registry.OPS)
BACKENDS = ("native", "script", "triton")  # besides eager: torchops' own, where they run
BUILTIN = ("eager", "script", "native")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# TorchScript's autodiff has its own formulas at overflow and division by zero
# (test_ratio_iou.py: test_script_autodiff_differs_from_eager_at_overflow)
EDGE_GRADIENTS = {"script": False}


def public(op):
    return _registry.OPS[op].public


def skip_unless_runs(op: str, backend: str, device: str) -> None:
    if device not in _conformance._devices_for(op, backend):
        pytest.skip(f"backend {backend!r} does not run {op} on {device} here")


# --- moving and calling samples ---------------------------------------------------------------

def move(t, dtype, device, requires_grad=False):
    """`t` in `dtype` on `device` with its sizes and strides (zero strides
    too): the same view of a copy of its storage."""
    if not isinstance(t, torch.Tensor):
        return t
    storage = torch.empty(0, dtype=t.dtype).set_(t.untyped_storage())
    moved = storage.to(dtype=dtype, device=device).as_strided(t.shape, t.stride(), t.storage_offset())
    return moved.detach().requires_grad_(requires_grad)


def moved(sample, dtype, device, requires_grad=False, dtypes_kept=False) -> tuple:
    """The sample's arguments in `dtype` (each tensor's own, dtypes_kept) on `device`."""
    return tuple(move(a, a.dtype if dtypes_kept and isinstance(a, torch.Tensor) else dtype, device, requires_grad)
                 for a in sample.args)


def tensors_of(args) -> list:
    return [a for a in args if isinstance(a, torch.Tensor)]


def rebuild(args, tensors) -> tuple:
    """`args` with its tensors replaced by `tensors`, in order."""
    it = iter(tensors)
    return tuple(next(it) if isinstance(a, torch.Tensor) else a for a in args)


def outputs(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def gradients(out, inputs, seed=0, create_graph=False) -> list:
    """Gradients of sum(output * weights) with respect to the tensors `inputs`."""
    gen = torch.Generator().manual_seed(seed)
    outs = [o for o in outputs(out) if o.requires_grad]
    weights = [torch.rand(o.shape, generator=gen, dtype=torch.float64).to(o.device, o.dtype) for o in outs]
    return list(torch.autograd.grad(outs, inputs, weights, allow_unused=True, create_graph=create_graph))


def assert_like_eager(got, expected, what, **tolerance):
    for i, (g, e) in enumerate(zip(outputs(got), outputs(expected))):
        assert g.dtype == e.dtype and g.shape == e.shape, f"{what}, output {i}: {g.dtype}{list(g.shape)}, " \
                                                          f"eager {e.dtype}{list(e.shape)}"
        torch.testing.assert_close(g, e, equal_nan=True, msg=lambda m: f"{what}, output {i}: {m}", **tolerance)


# --- hypothesis: every backend against eager --------------------------------------------------

class HypothesisDraw:
    """A Draw (torchops/testing/_ops.py) from hypothesis: the case space that
    check_implementation draws from a seed, here searched and shrunk."""

    def __init__(self, data, edge: bool):
        self.data, self.edge = data, edge

    def cycle(self, options, period: int = 1):
        return self.data.draw(st.sampled_from(options))

    def choice(self, options):
        return self.data.draw(st.sampled_from(options))

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi - 1))


def check_case(op: str, backend: str, case, device) -> None:
    spec = _ops.spec(op)
    with_gradients = EDGE_GRADIENTS.get(backend, True) or not case.edge
    where = f"{op} {backend} on {device}, {case.description}"
    try:
        compared = _conformance._check_case(public(op), backend, case, device, with_gradients)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    assert compared is not None, f"{where}: eager rejects the case"
    if backend == "native" and case.dtype in spec.native_bitwise:
        for what, got, eager, _ in compared.outputs:
            assert_bitwise_equal(got, eager, f"{where}: {what}")
        for what, got, eager, _, broadcast in compared.gradients or ():
            if not broadcast:  # (a broadcast input's gradient is a sum, in another order)
                assert_bitwise_equal(got, eager, f"{where}: {what}")


@pytest.mark.parametrize("values", ["any", "edge"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", OPS)
def test_matches_eager(op, backend, values, device):
    """Values and gradients as accurate as eager's, NaN where eager's is NaN
    (values="edge": only cases of NaN/inf, huge, tiny or degenerate values)."""
    skip_unless_runs(op, backend, device)

    @given(data=st.data())
    def run(data):
        check_case(op, backend, _ops.spec(op).case(HypothesisDraw(data, edge=values == "edge")), device)

    run()


# --- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BUILTIN)
@pytest.mark.parametrize("op", OPS)
def test_gradcheck_float64(op, backend, device):
    spec = _ops.spec(op)
    if not spec.finite_differences:
        pytest.skip(f"{op} has a stop-gradient term: finite differences see what it depends on, autograd does not")
    for sample in spec.samples():
        args = moved(sample, torch.float64, device, requires_grad=True)
        fn = lambda *t: public(op)(*rebuild(args, t), backend=backend, **sample.kwargs)  # noqa: E731
        assert torch.autograd.gradcheck(fn, tensors_of(args), eps=1e-6, atol=1e-7), f"{op} {backend} {sample.label}"


@pytest.mark.parametrize("op", OPS)
def test_double_backward_is_a_clear_error(op, device):
    sample = _ops.spec(op).samples()[0]
    args = moved(sample, torch.float64, device, requires_grad=True)
    out = public(op)(*args, backend="native", **sample.kwargs)
    grads = [g for g in gradients(out, tensors_of(args), create_graph=True) if g is not None and g.requires_grad]
    assert grads, "no gradient to differentiate"
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(sum(g.sum() for g in grads), tensors_of(args))


# --- opcheck of every op of the declaration ------------------------------------------------------

def schema_args(overload, fn, args, kwargs) -> tuple:
    """The public function's call as the op's positional arguments (by name)."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    # (an argument the function does not have takes the schema's default: the
    # eps of paired_box_iou, which IoU does not read)
    return tuple(bound.arguments[a.name] if a.name in bound.arguments else a.default_value
                 for a in overload._schema.arguments)


def overload(qualname: str):
    namespace, name = qualname.split("::")
    packet = getattr(getattr(torch.ops, namespace), name, None)
    return None if packet is None else packet.default


def declared_calls(op: str, sample) -> list:
    """The other ops of `op`: the one its native backend computes the values
    with, where that is another (the paired op of a pairwise function, the
    unreduced loss), called with the public call's arguments of its names;
    the other ops of the declaration of its scripted op, called as its
    autograd calls them. (overload, arguments) for each."""
    qualname = _builtins._find_builtin(public(op))
    decl = _declared.DECLARED[op].decl if op in _declared.DECLARED else None
    forward = overload(qualname)
    args = schema_args(forward, public(op), sample.args, sample.kwargs)
    calls = []
    native = overload(_registry.OPS[op].native_op)
    if native is not forward:
        native_args = schema_args(native, public(op), sample.args, sample.kwargs)
        try:
            with torch.no_grad():
                native(*native_args)
            calls.append((native, native_args))
        except ValueError:  # arguments it does not pair (pairwise [N, 4] x [M, 4])
            pass
    if decl is not None and decl.workspace is not None:
        training = overload(decl.training_qualname)
        calls.append((training, args))
        inputs, optional, _ = decl.split(args)
        with torch.no_grad():
            out = training(*args)
        saved = [inputs[i].detach() for i in decl.workspace.saved_args] + [out[-1]]
        grads = [torch.randn_like(o) for o in out[:-1]]
        # its scalars: flags of which optional inputs were given, each way
        for flags in itertools.product((False, True), repeat=len(decl.workspace.scalar_names)):
            calls.append((overload(decl.backward_qualname), (*grads, *saved, *flags)))
        return calls
    # the plain forms (declared::Op and the box family's ops): _<name>_backward(grad, <the op's arguments>)
    namespace, name = qualname.split("::")
    backward = overload(f"{namespace}::_{name.lstrip('_')}_backward")
    if backward is not None and [a.name for a in backward._schema.arguments] == \
            ["grad", *(a.name for a in forward._schema.arguments)]:
        with torch.no_grad():
            out = forward(*args)
        calls.append((backward, (torch.randn_like(out), *(a.detach() if isinstance(a, torch.Tensor) else a
                                                            for a in args))))
    return calls


def layouts(samples) -> list:
    """The samples that differ in what opcheck checks: the shapes, strides
    and dtypes of their tensors and their other positional arguments (not
    their values, nor the box format, a keyword argument)."""
    seen, kept = set(), []
    for sample in samples:
        key = tuple((tuple(a.shape), a.stride(), a.dtype) if isinstance(a, torch.Tensor) else a for a in sample.args)
        if key not in seen:
            seen.add(key)
            kept.append(sample)
    return kept


@pytest.mark.parametrize("op", OPS)
def test_opcheck(op, device):
    """Schema, fake kernels, autograd registration and AOT dispatch (static
    and dynamic shapes) of the op that scripted code calls, on every layout
    of the well-conditioned calls and an empty one, with and without
    gradients, and of the other ops of its declaration (a training forward,
    the backward op)."""
    spec = _ops.spec(op)
    forward = overload(_builtins._find_builtin(public(op)))
    for sample in layouts(spec.samples() + spec.empty()[:1]):
        for requires_grad in (True, False):
            args = schema_args(forward, public(op), moved(sample, torch.float32, device, requires_grad),
                               sample.kwargs)
            torch.library.opcheck(forward, args)
        on_device = _ops.Sample(sample.label, moved(sample, torch.float32, device), sample.kwargs)
        for other, other_args in declared_calls(op, on_device):
            torch.library.opcheck(other, other_args)


# --- shapes and dtypes ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_empty_and_zero_dim_inputs(op, dtype, device):
    for sample in _ops.spec(op).empty():
        args = moved(sample, dtype, device, requires_grad=True)
        expected = public(op)(*args, backend="eager", **sample.kwargs)
        for backend in ("script", "native"):
            where = f"{op} {backend} {sample.label} {dtype}"
            got = public(op)(*args, backend=backend, **sample.kwargs)
            assert_like_eager(got, expected, where)
            for t, g in zip(tensors_of(args), gradients(got, tensors_of(args))):
                assert g is None or (g.shape == t.shape and g.dtype == t.dtype), where


@pytest.mark.parametrize("backend", BUILTIN)
@pytest.mark.parametrize("op", OPS)
def test_mixed_dtypes_promote_like_eager(op, backend, device):
    sample = _ops.spec(op).mixed()
    args = moved(sample, None, device, requires_grad=True, dtypes_kept=True)
    got = public(op)(*args, backend=backend, **sample.kwargs)
    expected = public(op)(*[a.detach().double() if isinstance(a, torch.Tensor) else a for a in args],
                          backend="eager", **sample.kwargs)
    for g in outputs(got):
        assert g.dtype == sample.dtype, f"{op} {backend}: {g.dtype}, expected {sample.dtype}"
    assert_like_eager(tuple(g.double() for g in outputs(got)), expected, f"{op} {backend}", rtol=0.02, atol=0.02)
    for t, g in zip(tensors_of(args), gradients(got, tensors_of(args))):
        assert g is None or g.dtype == t.dtype, f"{op} {backend}: a {t.dtype} input's gradient is {g.dtype}"


def autocast_dtypes(device):
    return [torch.bfloat16] if device == "cpu" else [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("backend", BUILTIN)
@pytest.mark.parametrize("op", OPS)
def test_autocast_policy(op, backend, device):
    """The op's autocast policy (its declaration's; the box family is on no
    autocast list and computes half types in float32), the same in every
    backend, with eager's values."""
    spec = _ops.spec(op)
    for dtype in autocast_dtypes(device):
        sample = spec.autocast_sample(dtype)
        args = moved(sample, None, device, dtypes_kept=True)
        with torch.autocast(device, dtype=dtype):
            got = public(op)(*args, backend=backend, **sample.kwargs)
            expected = public(op)(*args, backend="eager", **sample.kwargs)
        for g in outputs(got):
            assert g.dtype == spec.autocast_dtype(device, dtype), (op, backend, dtype, g.dtype)
        assert_like_eager(got, expected, f"{op} {backend} {dtype}", rtol=0.05, atol=0.05)


@pytest.mark.parametrize("op", OPS)
def test_large_broadcast_or_strided_inputs_are_read_in_place(op, device):
    """No copy of a broadcast or strided input (rows of a wider tensor, expanded columns)."""
    sample = _ops.spec(op).large()
    args = moved(sample, torch.float32, device)
    public(op)(*args, backend="native", **sample.kwargs)  # warm up
    with torch.profiler.profile() as prof:
        got = public(op)(*args, backend="native", **sample.kwargs)
    names = {e.name for e in prof.events()}
    assert not names & {"aten::copy_", "aten::contiguous", "aten::clone", "aten::expand"}, names
    expected = public(op)(*args, backend="eager", **sample.kwargs)
    if torch.float32 in _ops.spec(op).native_bitwise:
        for g, e in zip(outputs(got), outputs(expected)):
            assert_bitwise_equal(g, e, op)
    assert_like_eager(got, expected, op)


# --- TorchScript, torch.compile, torch.export -----------------------------------------------------

def caller(op: str, sample, path):
    """A module whose forward calls op's public function with the sample's
    tensors (its other arguments as constants), written from the function's
    signature to a file, for TorchScript to read."""
    fn = public(op)
    bound = inspect.signature(fn).bind(*sample.args, **sample.kwargs)
    params, call = [], []
    for name, value in bound.arguments.items():
        if isinstance(value, torch.Tensor):
            params.append(f"{name}: Tensor")
            call.append(f"{name}={name}")
        else:
            call.append(f"{name}={value!r}")
    path.write_text(
        "import torch\nfrom torch import Tensor\n"
        f"from {fn.__module__} import {fn.__name__} as fn\n\n\n"
        "class Caller(torch.nn.Module):\n"
        f"    def forward(self, {', '.join(params)}):\n"
        f"        return fn({', '.join(call)})\n")
    spec = importlib.util.spec_from_file_location(f"caller_{op}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Caller()


def outputs_and_gradients(model, args) -> list:
    args = [a.detach().requires_grad_() for a in args]
    out = model(*args)
    return [o.detach() for o in outputs(out)] + [g for g in gradients(out, args) if g is not None]


@pytest.mark.parametrize("mode", ["script", "trace"])
@pytest.mark.parametrize("op", OPS)
def test_torchscript_round_trip(op, mode, device, tmp_path):
    """Scripted code calls the op of the public function's name (traced code
    the op its native backend runs); saved and loaded, it gives the native
    backend's bits, values and gradients."""
    sample = _ops.spec(op).samples()[0]
    model = caller(op, sample, tmp_path / "caller.py")
    args = tensors_of(moved(sample, torch.float32, device))
    with torchops.use_backend("native"):
        compiled = torch.jit.script(model) if mode == "script" else torch.jit.trace(model, tuple(args))
        expected = outputs_and_gradients(model, args)
    # traced: the op that the native backend calls outside torch.compile, that
    # of the public function's name or the one computing its values
    holds = {_builtins._find_builtin(public(op))} | ({_registry.OPS[op].native_op} if mode == "trace" else set())
    assert any(name in str(compiled.inlined_graph) for name in holds), compiled.inlined_graph
    torch.jit.save(compiled, str(tmp_path / "model.pt"))
    loaded = torch.jit.load(str(tmp_path / "model.pt"), map_location=device)
    for got in (outputs_and_gradients(compiled, args), outputs_and_gradients(loaded, args)):
        for g, e in zip(got, expected, strict=True):
            assert_bitwise_equal(g, e, f"{op} {mode}")


@pytest.mark.parametrize("backend", ["native", "eager"])
@pytest.mark.parametrize("op", OPS)
def test_compile_fullgraph(op, backend, device):
    """torch.compile(fullgraph=True) (a graph break raises) through the fake
    kernels and AOT autograd, forward and backward: one graph calling the
    op on every well-conditioned call (the eager backend's on the first: its
    compiled math is Inductor's business)."""
    torch._dynamo.reset()
    samples = _ops.spec(op).samples()[:None if backend == "native" else 1]
    args = [tensors_of(moved(sample, torch.float32, device)) for sample in samples]
    sizes = [len(a) for a in args]

    def model(*tensors):
        out, start = (), 0
        for sample, size in zip(samples, sizes):
            call = rebuild(sample.args, tensors[start:start + size])
            out += outputs(public(op)(*call, backend=backend, **sample.kwargs))
            start += size
        return out

    flat = [t for a in args for t in a]
    got = outputs_and_gradients(torch.compile(model, fullgraph=True, backend="aot_eager"), flat)
    expected = outputs_and_gradients(model, flat)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        torch.testing.assert_close(g, e, msg=lambda m: f"{op} {backend}, tensor {i}: {m}")


@pytest.mark.parametrize("op", OPS)
def test_export_keeps_the_op(op, device, tmp_path):
    sample = _ops.spec(op).samples()[0]
    model = caller(op, sample, tmp_path / "caller.py")
    args = tuple(tensors_of(moved(sample, torch.float32, device)))
    program = torch.export.export(model, args)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert _registry.OPS[op].native_op.replace("::", ".") + ".default" in targets, targets
    with torchops.use_backend("native"):
        expected = model(*args)
    for g, e in zip(outputs(program.module()(*args)), outputs(expected), strict=True):
        assert_bitwise_equal(g, e, f"{op} exported")
