"""Which implementations of each op exist, by backend.

A backend is a name with implementations of some ops. torchops' own backends
(eager, script, native, triton) are registered here exactly as a third party's
are (torchops.register_implementation); packages can also ship them through
the "torchops.backends" entry-point group, loaded on first use (the first call
with a backend name not known yet, or available_backends()), never at
`import torchops`. Which backend runs a call is chosen in torchops._backends.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, NamedTuple

import torch

ENTRY_POINT_GROUP = "torchops.backends"
# Names a third party cannot register under: torchops' own backends and "auto".
BUILTIN = ("eager", "script", "native", "triton")
RESERVED = (*BUILTIN, "auto")


class OpInfo(NamedTuple):
    """One public op (torchops.<name> or torchops.ops.<name>)."""

    name: str  # the public function's name, e.g. "ratio_iou"
    native_op: str  # the registered op whose kernels the native backend runs, e.g. "super_iou::ratio_iou"
    public: Callable  # the public function


class Implementation(NamedTuple):
    fn: Callable  # takes the public function's arguments, without backend=
    devices: frozenset[str] | None  # device types it runs on; None: any
    # Makes the same function for calls outside torch.compile and torch.export,
    # free to take shortcuts that Dynamo should not trace (None: fn is used).
    # Called when a call first resolves to it (the op library is loaded then).
    make_eager: Callable[[], Callable] | None = None


OPS: dict[str, OpInfo] = {}
# backend name -> op name -> implementation
_implementations: dict[str, dict[str, Implementation]] = {}
# Where each third-party backend came from (for available_backends()).
_origins: dict[str, str] = {}
# Built-in backends whose implementations register themselves when first
# needed (the triton backend imports triton only then): name -> loader.
_lazy: dict[str, Callable[[], None]] = {}
# Entry points that failed to load: name -> why.
plugin_errors: dict[str, str] = {}
_lock = threading.RLock()
_entry_points_loaded = False
_loading_entry_point: str | None = None  # the plug-in being loaded, for _origins

# (op, requested backend, device type) -> the function that runs it: filled by
# torchops._backends on a call's first lookup, cleared on every registration.
resolved: dict[tuple[str, str, str], Callable] = {}


def declare_op(name: str, native_op: str, public: Callable) -> None:
    OPS[name] = OpInfo(name, native_op, public)


def _device_types(devices) -> frozenset[str] | None:
    if devices is None:
        return None
    if isinstance(devices, (str, torch.device)):
        devices = (devices,)
    return frozenset(torch.device(d).type for d in devices)


# (backend, op) -> what Implementation.make_eager made
_made_eager: dict[tuple[str, str], Callable] = {}


def _register(op: str, backend: str, fn: Callable, devices, make_eager: Callable | None = None) -> None:
    with _lock:
        _implementations.setdefault(backend, {})[op] = Implementation(fn, _device_types(devices), make_eager)
        _made_eager.pop((backend, op), None)
        resolved.clear()


def register_builtin(
    op: str, implementations: dict[str, Callable], devices=None, make_eager: dict[str, Callable] | None = None
) -> None:
    """torchops' own implementations of `op` (backend name -> function);
    `make_eager`: for some backends, what makes the function for calls outside
    torch.compile and torch.export (see Implementation.make_eager)."""
    for backend, fn in implementations.items():
        _register(op, backend, fn, devices, (make_eager or {}).get(backend))


def register_lazy_builtin(backend: str, load: Callable[[], None]) -> None:
    """A built-in backend whose `load()` registers its implementations, called
    the first time a call or available_backends() needs them."""
    _lazy[backend] = load


def register_implementation(
    op: str, backend: str, fn: Callable, *, devices: Iterable[str] | None = ("cpu", "cuda")
) -> Callable:
    """Make `fn` the implementation of torchops' op `op` in backend `backend`.

    `op` is the public function's name ("ratio_iou", "lstm_cell",
    "complete_box_iou_loss", ...); `fn` takes the arguments that function
    takes, without ``backend``, and returns what it returns (with gradients,
    if the op is to be trained through). `devices` are the device types it
    runs on (None: any). Afterwards ``backend=<backend>`` on the public
    function, set_backend and use_backend route calls of `op` to `fn`.
    Registering the same op and backend again replaces the implementation.
    Check it with torchops.testing.check_implementation(op, backend).
    Returns `fn`.
    """
    if op not in OPS:
        raise ValueError(f"torchops.register_implementation: unknown op {op!r}; the ops are {', '.join(sorted(OPS))}")
    if not isinstance(backend, str) or not backend.isidentifier():
        raise ValueError(f"torchops.register_implementation: backend must be a name like 'mylib', but got {backend!r}")
    if backend in RESERVED:
        raise ValueError(f"torchops.register_implementation: {backend!r} is one of torchops' own backends "
                         f"({', '.join(RESERVED)}); choose another name")
    if not callable(fn):
        raise TypeError(f"torchops.register_implementation: fn must be callable, but got {type(fn).__name__}")
    _register(op, backend, fn, devices)
    with _lock:
        _origins.setdefault(backend, _origin_of(fn))
    return fn


def _origin_of(fn: Callable) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return _loading_entry_point or f"registered from {module}"


def load_entry_points() -> None:
    """Load the plug-ins of the "torchops.backends" entry-point group, once.
    Each entry point names a function, called with no arguments, that calls
    torchops.register_implementation (or a module that does so when
    imported). One that fails is recorded in plugin_errors, not raised."""
    global _entry_points_loaded, _loading_entry_point
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True  # before loading: a plug-in may call available_backends()
        from importlib.metadata import entry_points

        try:
            found = list(entry_points(group=ENTRY_POINT_GROUP))
        except Exception as exc:  # a broken installation's metadata
            plugin_errors["(entry points)"] = f"listing the {ENTRY_POINT_GROUP!r} entry points failed: {exc!r}"
            return
        for ep in found:
            _loading_entry_point = f"plug-in {ep.name} = {ep.value}"
            try:
                loaded = ep.load()
                if callable(loaded):
                    loaded()
            except Exception as exc:  # a broken plug-in must not break torchops
                plugin_errors[ep.name] = f"plug-in {ep.name} = {ep.value} failed to load: {type(exc).__name__}: {exc}"
            finally:
                _loading_entry_point = None


def load_lazy(backend: str) -> str | None:
    """Register the implementations of a lazily loaded built-in backend now;
    returns why that failed (None: it did not, or there was nothing to load)."""
    with _lock:
        load = _lazy.pop(backend, None)
        if load is None:
            return plugin_errors.get(backend)
        try:
            load()
        except Exception as exc:
            plugin_errors[backend] = f"{type(exc).__name__}: {exc}"
            return plugin_errors[backend]
    return None


def known(backend: str) -> bool:
    return backend in _implementations or backend in _lazy


def backends() -> list[str]:
    return list(_implementations)


def implementations(backend: str) -> dict[str, Implementation]:
    return _implementations.get(backend, {})


def origin(backend: str) -> str:
    return _origins.get(backend, "torchops")


def function(backend: str, op: str, device_type: str, eager: bool = False) -> Callable:
    """The function of `backend` for `op` on `device_type`, or a clear error;
    eager=True: the one for calls outside torch.compile and torch.export."""
    impl = _implementations.get(backend, {}).get(op)
    if impl is None:
        has = sorted(_implementations.get(backend, {}))
        raise RuntimeError(
            f"torchops: backend {backend!r} has no implementation of {op}"
            + (f" (it implements {', '.join(has)})" if has else "")
        )
    if impl.devices is not None and device_type not in impl.devices:
        raise RuntimeError(
            f"torchops: backend {backend!r} implements {op} for {', '.join(sorted(impl.devices))}, "
            f"not for {device_type} tensors"
        )
    if not eager or impl.make_eager is None:
        return impl.fn
    made = _made_eager.get((backend, op))
    if made is None:
        made = _made_eager[backend, op] = impl.make_eager()
    return made
