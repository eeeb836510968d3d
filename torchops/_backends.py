"""Which implementation runs: "eager", "script", "native", "triton", "auto",
or the name of a backend another package registered (torchops._registry).

The process-wide choice comes from set_backend (or the TORCHOPS_BACKEND
environment variable); `with use_backend(...)` overrides it in the calling
thread or async task only (a context variable), and backend=... overrides
both for one call. Each public function asks implementation() for the
function that runs the call: one dict lookup, keyed by (op, backend, device
type), once the first call of that kind has resolved it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import warnings
from typing import Callable, Iterator, NamedTuple

import torch

from torchops import _library, _registry
from torchops import triton as _triton_backend

BACKENDS = (*_registry.BUILTIN, "auto")
_lock = threading.Lock()
_process_wide = os.environ.get("TORCHOPS_BACKEND", "auto")
# use_backend's override (None: none), local to the thread or async task.
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("torchops_backend", default=None)
# The same override mirrored per thread, for code that torch.compile traces:
# Dynamo cannot read a ContextVar (it raises Unsupported), but it reads and
# guards on a threading.local. So compiled code sees the override of its
# thread; async tasks that share a thread and run compiled code inside
# different use_backend blocks see the one entered last.
_thread = threading.local()


class BackendStatus(NamedTuple):
    available: bool
    reason: str


def _validate(name: str) -> str:
    if name in BACKENDS:
        return name
    if isinstance(name, str) and not _registry.known(name):
        _registry.load_entry_points()  # a plug-in's name: its package registers it on first use
    if isinstance(name, str) and _registry.known(name):
        return name
    choices = ", ".join(map(repr, [*BACKENDS, *(b for b in _registry.backends() if b not in BACKENDS)]))
    broken = "".join(f"; {why}" for why in _registry.plugin_errors.values())
    raise ValueError(f"torchops: backend must be one of {choices}, but got {name!r}{broken}")


# A plug-in's name is checked at its first use (loading plug-ins at import would
# make `import torchops` import them).
if _process_wide in BACKENDS:
    _validate(_process_wide)


def set_backend(name: str) -> None:
    """Choose the backend for every torchops call in this process (threads
    inside a use_backend block keep theirs until it ends)."""
    global _process_wide
    with _lock:
        _process_wide = _validate(name)


def get_backend() -> str:
    """The backend a call without backend=... uses in this thread or task."""
    if torch.compiler.is_compiling():
        override = getattr(_thread, "backend", None)
    else:
        override = _override.get()
    return _process_wide if override is None else override


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Use `name` inside the with-block in this thread or async task, then
    restore its previous choice. Other threads and tasks are not affected."""
    _validate(name)
    # inside code that torch.compile traces only the mirror is set (Dynamo
    # cannot trace ContextVar.set)
    token = None if torch.compiler.is_compiling() else _override.set(name)
    previous = getattr(_thread, "backend", None)
    _thread.backend = name
    try:
        yield
    finally:
        if token is not None:
            _override.reset(token)
            # the mirror follows the context variable: with interleaved async
            # tasks, restoring `previous` could leave another task's choice behind
            _thread.backend = _override.get()
        else:
            _thread.backend = previous


def _cpu_has_llvm() -> bool:
    try:
        return bool(torch._C._llvm_enabled())
    except AttributeError:
        return False


def available_backends() -> dict[str, BackendStatus]:
    """What works here, and for what does not, why: torchops' own backends,
    then those of plug-ins (and the plug-ins that failed to load)."""
    _registry.load_entry_points()
    loaded = _library.ensure_loaded(build=True)
    status = {"eager": BackendStatus(True, "plain PyTorch ops; the reference")}
    script_note = "TorchScript; fused by NNC on CUDA"
    if not _cpu_has_llvm():
        script_note += ", not fused on the CPU (this torch build has no LLVM), where it runs like eager"
    status["script"] = BackendStatus(True, script_note)
    if loaded:
        cuda = _library.has_kernel("super_iou::ratio_iou", "cuda")
        devices = "CPU and CUDA" if cuda else "CPU only (the library was built without CUDA kernels)"
        capability = _library.cpu_capability()
        status["native"] = BackendStatus(
            True, f"hand-written kernels for {devices}; CPU kernels for {capability} (torchops.cpu_capability(): "
            f"ATen's, set by ATEN_CPU_CAPABILITY); {_library.library_path()}")
    else:
        status["native"] = BackendStatus(False, f"the op library could not be loaded: {_library.load_error()}")
    status["triton"] = BackendStatus(*_triton_backend.status())
    status["auto"] = BackendStatus(
        True, "native where it has a kernel for the device; else on CUDA triton (where importable), else "
        "script; else eager. Under torch.compile what measured faster there (AUTO_UNDER_COMPILE), under "
        f"torch.export native. {_auto_on_cuda_here()}")
    for name in _registry.backends():
        if name not in status:
            ops = _registry.implementations(name)
            listed = ", ".join(f"{op} ({'any device' if impl.devices is None else '/'.join(sorted(impl.devices))})"
                               for op, impl in ops.items())
            status[name] = BackendStatus(True, f"{_registry.origin(name)}: {listed}")
    for name, why in _registry.plugin_errors.items():
        status.setdefault(name, BackendStatus(False, why))
    return status


def _auto_on_cuda_here() -> str:
    if not torch.cuda.is_available():
        return "No CUDA device here."
    if _has_native("super_iou::ratio_iou", "cuda"):
        return "On CUDA here: native (the library has CUDA kernels)."
    why_not_triton = _triton_backend.unavailable("cuda")
    if why_not_triton is None:
        return "On CUDA here: triton for the ops it implements (the library has no CUDA kernels), script for the others."
    return f"On CUDA here: script (the library has no CUDA kernels; triton: {why_not_triton})."


_native_kernels: dict[tuple[str, str], bool] = {}


def _has_native(op: str, device_type: str) -> bool:
    key = (op, device_type)
    found = _native_kernels.get(key)
    if found is None:
        found = _library.ensure_loaded(build=True) and _library.has_kernel(op, device_type)
        if _library.library_path() is not None:  # cache only once the library is settled
            _native_kernels[key] = found
    return found


_is_compiling = torch.compiler.is_compiling  # (one global lookup per call, not three)
_resolved = _registry.resolved  # (the same dict: the registry clears it, never replaces it)


def implementation(op: str, backend: str | None, tensor) -> Callable:
    """The function that runs public op `op` (e.g. "ratio_iou") for a call
    with backend=`backend` whose first tensor argument is `tensor`."""
    if _is_compiling():
        # Dynamo reads the choice (and guards on it); the choice itself is made
        # once, outside the graph, and is a constant of the compiled code.
        # torch.export (non-strict, its default) runs this code outside Dynamo;
        # inside Dynamo it is torch.compile. (torch.compiler.is_exporting()
        # cannot tell: torch 2.11 returns True under every Dynamo trace.)
        name = get_backend() if backend is None else backend
        exporting = not torch.compiler.is_dynamo_compiling()
        concrete = _choose_while_compiling(op, name, _device_type(tensor), exporting)
        return _registry.implementations(concrete)[op].fn
    name = backend if backend is not None else (_override.get() or _process_wide)
    try:
        # (is_cuda and is_cpu cost a fraction of device.type)
        return _resolved[op, name, "cuda" if tensor.is_cuda else "cpu" if tensor.is_cpu else tensor.device.type]
    except (KeyError, TypeError, AttributeError):  # the first call of its kind, or not a tensor
        device_type = _device_type(tensor)
        # "auto" prefers the op itself; a traced model then records the op,
        # not a frozen copy of its math
        fn = _registry.function(_choose(op, name, device_type, auto_prefers="native"), op, device_type, eager=True)
        _resolved[op, name, device_type] = fn
        return fn


def _device_type(tensor) -> str:
    # not a tensor: any device will do, the implementation's checks reject it
    return tensor.device.type if isinstance(tensor, torch.Tensor) else "cpu"


# Under torch.compile, "auto" is what benchmarks/compiled_models.py measured
# faster for a training step (forward+backward) of a model that uses the op:
# "native" keeps our kernel as one opaque call, "eager" lets Inductor fuse the
# op's math with its neighbours (benchmarks/results/compiled_models-*.md).
# Measured 2026-11-22, compile+native / compile+eager, first with the earlier
# kernels: ratio_iou 1.38-1.71 on the CPU and 1.47-1.54 on an H200 (the loss
# reduction fuses into the IoU math); lstm_cell 1.05-1.19 on the CPU, 0.83-1.00
# on the H200 (the gates come from matmuls, little to fuse). With the faster
# kernels of session 3 (lstm workspace, occupancy-sized CUDA grids) these are
# ties or near: ratio_iou 0.94-1.24 CPU, 0.96-1.05 H200; lstm_cell 0.99-1.04
# CPU, 1.00-1.01 H200; the table is kept. Under torch.export (and tracing) "auto" is
# always "native", so the exported program keeps the op; strict export
# (torch.export.export(..., strict=True)) runs Dynamo and so follows this
# table: pass backend="native" there to keep the op. Where "native" has no
# kernel for the device, CUDA falls back to triton, then script.
AUTO_UNDER_COMPILE = {
    ("super_iou::ratio_iou", "cpu"): "eager",
    ("super_iou::ratio_iou", "cuda"): "eager",
    ("super_lstm::lstm_cell", "cpu"): "eager",
    ("super_lstm::lstm_cell", "cuda"): "native",
}


# (It returns the backend's name: Dynamo cannot take a function as an assumed
# constant, so the compiled code reads the function from the registry.)
@torch.compiler.assume_constant_result
def _choose_while_compiling(op: str, name: str, device_type: str, exporting: bool) -> str:
    native_op = _registry.OPS[op].native_op
    prefers = "native" if exporting else AUTO_UNDER_COMPILE.get((native_op, device_type), "native")
    concrete = _choose(op, name, device_type, auto_prefers=prefers)
    _registry.function(concrete, op, device_type)  # raises where it has no implementation for the call
    return concrete


def _choose(op: str, name: str, device_type: str, auto_prefers: str) -> str:
    """The backend that runs `op` on `device_type` for the choice `name`: the
    backend itself, or for "auto" the one it picks (auto_prefers: "native" or
    "eager"); raises where it cannot run here."""
    if name == "auto":
        name = _auto(op, device_type, auto_prefers)
    elif name == "native":
        if not _has_native(_registry.OPS[op].native_op, device_type):
            why = _library.load_error() or f"the op library has no {device_type} kernel for {_registry.OPS[op].native_op}"
            raise RuntimeError(f"torchops: the native backend is not available for {device_type}: {why}")
    elif name == "triton":
        why = _triton_backend.unavailable(device_type)
        if why is not None:
            raise RuntimeError(f"torchops: the triton backend is not available for {device_type}: {why}")
    else:
        _validate(name)
    return name


def _auto(op: str, device_type: str, prefers: str) -> str:
    if prefers == "native" and _has_native(_registry.OPS[op].native_op, device_type):
        return "native"
    if prefers == "eager":
        return "eager"
    if device_type != "cuda":
        fallback = "eager"
    elif _triton_backend.unavailable(device_type) is None and op in _registry.implementations("triton"):
        fallback = "triton"
    else:
        fallback = "script"
    _library.warn_fallback(op, fallback)  # once, where the library did not load
    return fallback


def python_implementation(impl: str, eager_fn: Callable) -> Callable:
    """The function that runs backend `impl` ("eager" or "script") of an op
    defined by `eager_fn`. Under torch.compile both are the Python source:
    Dynamo traces a TorchScript function's source anyway."""
    if impl == "script" and not torch.compiler.is_compiling():
        return scripted(eager_fn)
    return eager_fn


_scripted: dict[Callable, Callable] = {}
_warned_deprecation = False


def scripted(fn: Callable) -> Callable:
    """torch.jit.script(fn), compiled once. Where torch deprecates TorchScript,
    says once, in our words, what to use instead of torch's own warning."""
    global _warned_deprecation
    compiled = _scripted.get(fn)
    if compiled is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = torch.jit.script(fn)
        deprecated = any(issubclass(w.category, (DeprecationWarning, FutureWarning)) for w in caught)
        if deprecated and not _warned_deprecation:
            _warned_deprecation = True
            warnings.warn(
                "torchops: the 'script' backend uses TorchScript, which this torch deprecates; "
                "use backend='native' (or 'auto'), which also works under torch.compile and torch.export",
                DeprecationWarning,
                stacklevel=5,  # the user's call of torchops.ratio_iou / lstm_cell
            )
        _scripted[fn] = compiled
    return compiled


def script_as_op(fn: Callable, op: str) -> None:
    """Make TorchScript compile calls of the Python function `fn` to the
    registered op `op` (as it does for torch.* functions and aten ops). Uses
    TorchScript's own table (private); where that is gone, scripting code that
    calls `fn` fails at script time, and importing torchops still works."""
    try:
        from torch.jit import _builtins

        _builtins._register_builtin(fn, op)
    except (ImportError, AttributeError):
        pass
