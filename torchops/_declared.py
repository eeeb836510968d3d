"""The Python twin of the op layer (csrc/common/declared.h).

`Pointwise` mirrors `declared::Op`: from an op's tensor and scalar argument
names it makes the checks (the same errors as the C++ ones), from which
torchops._fake makes the fake kernels of the op and its backward op. `declare` turns an op's eager
reference, checks and autocast policy into its eager, script and native
backends, registers them for backend selection (torchops._registry) and makes
TorchScript compile calls of the public function to the op.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from torchops import _backends, _checks, _library, _registry


def _check_expandable(op: str, name: str, t, shape) -> None:
    """As at::is_expandable_to (check_expandable_to in csrc/common/checks.cpp)."""
    try:
        fits = torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: expected {name} of shape {list(shape)} (or one that broadcasts to it), "
                         f"but got {list(t.shape)}")


@dataclass(frozen=True)
class Pointwise:
    """A declared::Op: tensors `arg_names` that broadcast together, then the
    scalars (checked by `check_scalars(op, *scalars)`), one output."""

    qualname: str  # "super_iou::ratio_iou"
    arg_names: tuple[str, ...]
    check_scalars: Callable
    scalar_defaults: tuple = ()  # of the last scalars, as in the schema

    def scalars(self, args: Sequence) -> tuple:
        """The scalars of a call's `args`, defaults filled in."""
        given = tuple(args[len(self.arg_names):])
        missing = len(self.scalar_defaults) - len(given)
        return given + self.scalar_defaults[len(self.scalar_defaults) - missing:] if missing > 0 else given

    @property
    def name(self) -> str:
        return self.qualname.split("::")[1]

    @property
    def backward_qualname(self) -> str:
        namespace, name = self.qualname.split("::")
        return f"{namespace}::_{name}_backward"

    def check(self, op: str, tensors: Sequence, scalars: Sequence) -> tuple[torch.Size, torch.dtype]:
        """The op's checks (declared::Op::prepare); the broadcast shape and promoted dtype."""
        self.check_scalars(op, *scalars)
        for name, t in zip(self.arg_names, tensors):
            _checks.check_floating(op, name, t)
        _checks.check_same_device(op, self.arg_names, tensors)
        return _checks.broadcast_shape(op, self.arg_names, tensors), _checks.promoted_dtype(tensors)

    def check_backward(self, grad, tensors: Sequence, scalars: Sequence) -> tuple[torch.Size, torch.dtype]:
        """The backward op's checks (declared::Op::prepare_backward)."""
        op = self.name + "_backward"
        shape, dtype = self.check(op, tensors, scalars)
        _checks.check_floating(op, "grad", grad)
        _checks.check_same_device(op, (self.arg_names[0], "grad"), (tensors[0], grad))
        _check_expandable(op, "grad", grad, shape)
        return shape, dtype

    def check_call(self, args: Sequence) -> None:
        """A public call's checks: a missing tensor is named before the op sees None."""
        n = len(self.arg_names)
        for name, t in zip(self.arg_names, args[:n]):
            _checks.check_is_tensor(self.name, name, t)
        self.check(self.name, args[:n], self.scalars(args))


def autocast_float32(device: torch.device, args: tuple) -> tuple:
    """Autocast policy: float16/bfloat16 tensors run in float32 (as the ops on
    PyTorch's float32 list; declared::Autocast::kFloat32)."""
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype in (torch.float16, torch.bfloat16) else a
                 for a in args)


# name -> Declared, every op made by declare (torchops.onnx reads it)
DECLARED: dict[str, "Declared"] = {}


@dataclass
class Declared:
    """What `declare` made for one op."""

    name: str
    qualname: str
    eager: Callable
    check: Callable  # check(args): readable errors for a bad call
    autocast: Callable  # autocast(device, args) -> args, under autocast
    precheck: Callable | None  # precheck(args), before the op: what its schema would accept wrongly
    # the argument whose precheck passes when it is a float (skipped then); None: always run it
    precheck_unless_float: int | None
    normalize: Callable | None  # normalize(args) -> args for the Python backends
    n_params: int
    defaults: tuple  # of the last positional parameters

    def _full(self, args: tuple) -> tuple:
        missing = self.n_params - len(args)
        return args + self.defaults[len(self.defaults) - missing:] if 0 < missing <= len(self.defaults) else args

    def run_python(self, compute: Callable, args: tuple):
        """`compute(*args)` after the checks, under the op's autocast policy: the
        eager and script backends, and any implementation in Python that wants
        the same behaviour."""
        self.check(args)
        if self.normalize is not None:
            args = self.normalize(args)
        device = args[0].device
        if _checks.autocast_enabled(device):
            args = self.autocast(device, args)
            with torch.autocast(device.type, enabled=False):
                return compute(*args)
        return compute(*args)

    def eager_backend(self, *args):
        return self.run_python(self.eager, self._full(args))

    def script_backend(self, *args):
        return self.run_python(_backends.python_implementation("script", self.eager), self._full(args))

    def native_backend(self, *args):
        """The op checks its arguments itself (and handles autocast); the
        Python checks run only where it fails, for their clearer words about
        Python types."""
        return self._native_call(self.overload(), args)

    def _native_call(self, op: Callable, args: tuple):
        args = self._full(args)
        if self.precheck is not None:
            self.precheck(args)
        try:
            return op(*args)
        except (TypeError, RuntimeError):
            self.check(args)
            raise

    def overload(self) -> torch._ops.OpOverload:
        namespace, name = self.qualname.split("::")
        return getattr(getattr(torch.ops, namespace), name).default

    def make_native_eager(self) -> Callable:
        """native_backend outside torch.compile and torch.export, with the op
        looked up once: _native_call in one frame, the precheck skipped where
        it passes anyway (a float where the schema takes one)."""
        op = _library.op_caller(self.qualname)
        n_params, full, check = self.n_params, self._full, self.check
        precheck, unless_float = self.precheck, self.precheck_unless_float

        def native(*args):
            if len(args) != n_params:
                args = full(args)
            if precheck is not None and (unless_float is None or type(args[unless_float]) is not float):
                precheck(args)
            try:
                return op(*args)
            except (TypeError, RuntimeError):
                check(args)
                raise

        return native


def declare(name: str, qualname: str, public: Callable, eager: Callable, check: Callable, *,
            autocast: Callable, precheck: Callable | None = None, precheck_unless_float: int | None = None,
            normalize: Callable | None = None) -> Declared:
    """Op `name` (its public function `public`, running registered op
    `qualname` natively), defined by `eager`. `precheck(args)` runs before
    the op (for what its schema would accept wrongly), except where argument
    `precheck_unless_float` is a float."""
    params = [p for p in inspect.signature(public).parameters.values()
              if p.kind is p.POSITIONAL_OR_KEYWORD]
    defaults = tuple(p.default for p in params if p.default is not p.empty)
    op = Declared(name, qualname, eager, check, autocast, precheck, precheck_unless_float, normalize, len(params),
                  defaults)
    DECLARED[name] = op
    _registry.declare_op(name, qualname, public)
    _registry.register_builtin(name, {"eager": op.eager_backend, "script": op.script_backend,
                                      "native": op.native_backend},
                               make_eager={"native": op.make_native_eager})
    # In torch.jit.script-ed code, calls of `public` compile to the op itself
    # (TorchScript cannot take the keyword-only backend argument), which is
    # what a saved model and C++ programs then run.
    _backends.script_as_op(public, qualname)
    return op
