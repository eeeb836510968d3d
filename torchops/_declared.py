"""The Python twin of the op layer (csrc/common/declared.h).

`Op` mirrors `declared::Op`, in its plain and its workspace form: from an
op's argument names, scalar checks and shape rules it makes the checks (the
same errors as the C++ ones), from which torchops._fake makes the fake kernels
of every op of the declaration (the op, the workspace form's training
forward, the backward op). `declare` turns an op's declaration, eager
reference and autocast policy into its eager, script and native backends,
registers them for backend selection (torchops._registry), gives it its fake
kernels and makes TorchScript compile calls of the public function to the op.
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


def _check_given(op: str, names, tensors, optional_names=(), optional=()) -> list:
    """Every tensor given floating (the optional ones where not None) and all
    on one device, in the order of declared::Op's checks; the tensors given."""
    for name, t in zip(names, tensors):
        _checks.check_floating(op, name, t)
    given_names, given = list(names), list(tensors)
    for name, t in zip(optional_names, optional):
        if t is not None:
            _checks.check_floating(op, name, t)
            given_names.append(name)
            given.append(t)
    _checks.check_same_device(op, given_names, given)
    return given


def _no_scalars(op: str) -> None:
    pass


@dataclass(frozen=True)
class Workspace:
    """The workspace form's backward (declared::Op's Decl::Workspace): a
    training forward `_<name>_forward` also returns a workspace, and the
    backward op `_<name>_backward(<output grads>, <saved inputs>, Tensor
    workspace, <scalars>)` reads it instead of every input."""

    saved_args: tuple[int, ...]  # kSavedArgs: the inputs the backward takes besides the workspace
    scalar_names: tuple[str, ...]  # kScalarArgs' names
    shape: Callable  # shape(Shape) -> the workspace's shape
    # check(op, grads, saved) -> Shape: the checks of Workspace::prepare, after
    # the layer's (every saved tensor and given gradient floating, one device)
    check: Callable
    # result_shapes(Shape, *scalars) -> the shapes of the backward's results,
    # which are in the promoted dtype of the saved tensors
    result_shapes: Callable


@dataclass(frozen=True)
class Op:
    """A declared::Op (csrc/common/declared.h). The plain form: tensors
    `arg_names` that broadcast together, then the scalars (checked by
    `check_scalars(op, *scalars)`), one output of the broadcast shape and
    promoted dtype, and a backward op with one gradient per input. The
    workspace form adds optional inputs, several outputs, its own shape rules
    and a `Workspace`. From it: the checks (the same errors as the C++ ones)
    and, in torchops._fake, the fake kernels of every op of the declaration."""

    qualname: str  # "super_iou::ratio_iou"
    arg_names: tuple[str, ...]
    scalar_names: tuple[str, ...] = ()  # kScalarArgs' names
    check_scalars: Callable = _no_scalars
    scalar_defaults: tuple = ()  # of the last scalars, as in the schema
    optional_names: tuple[str, ...] = ()  # kOptionalArgs: `Tensor? x=None` after the tensors
    output_names: tuple[str, ...] = ()  # kOutputNames; () is one output
    # check_shapes(op, inputs, optional) -> Shape: Decl::check_shapes (None: the inputs broadcast)
    check_shapes: Callable | None = None
    # output_shapes(Shape) -> the shape of each output (None: the broadcast shape)
    output_shapes: Callable | None = None
    workspace: Workspace | None = None

    def scalars(self, args: Sequence) -> tuple:
        """The scalars of a call's `args`, defaults filled in."""
        given = tuple(args[len(self.arg_names) + len(self.optional_names):])
        missing = len(self.scalar_defaults) - len(given)
        return given + self.scalar_defaults[len(self.scalar_defaults) - missing:] if missing > 0 else given

    def split(self, args: Sequence) -> tuple[tuple, tuple, tuple]:
        """A forward call's (inputs, optional inputs, scalars)."""
        n, m = len(self.arg_names), len(self.optional_names)
        optional = tuple(args[n:n + m]) + (None,) * max(0, m - len(args[n:n + m]))
        return tuple(args[:n]), optional, self.scalars(args)

    @property
    def name(self) -> str:
        return self.qualname.split("::")[1]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The forward schema's parameters, in order."""
        return (*self.arg_names, *self.optional_names, *self.scalar_names)

    def _qualname_of(self, suffix: str) -> str:
        namespace, name = self.qualname.split("::")
        return f"{namespace}::_{name}_{suffix}"

    @property
    def training_qualname(self) -> str | None:
        """The workspace form's training forward (None for the plain form)."""
        return self._qualname_of("forward") if self.workspace is not None else None

    @property
    def backward_qualname(self) -> str:
        return self._qualname_of("backward")

    @property
    def output_count(self) -> int:
        return max(1, len(self.output_names))

    def check(self, op: str, tensors: Sequence, scalars: Sequence, optional: Sequence = ()) -> tuple:
        """The op's checks (declared::Op::prepare): its Shape (the broadcast
        shape in the plain form) and the promoted dtype."""
        self.check_scalars(op, *scalars)
        dtype = _checks.promoted_dtype(_check_given(op, self.arg_names, tensors, self.optional_names, optional))
        if self.check_shapes is not None:
            return self.check_shapes(op, tuple(tensors), tuple(optional)), dtype
        return _checks.broadcast_shape(op, self.arg_names, tensors), dtype

    def outputs(self, shape) -> list:
        """The shape of each output of a call of Shape `shape`."""
        return list(self.output_shapes(shape)) if self.output_shapes is not None else [shape]

    def check_backward(self, grad, tensors: Sequence, scalars: Sequence) -> tuple[torch.Size, torch.dtype]:
        """The plain backward op's checks (declared::Op::prepare_backward)."""
        op = self.name + "_backward"
        shape, dtype = self.check(op, tensors, scalars)
        _checks.check_floating(op, "grad", grad)
        _checks.check_same_device(op, (self.arg_names[0], "grad"), (tensors[0], grad))
        _check_expandable(op, "grad", grad, shape)
        return shape, dtype

    @property
    def saved_names(self) -> tuple[str, ...]:
        """The workspace backward's saved tensors (kSavedArgs inputs, then the workspace)."""
        return (*(self.arg_names[i] for i in self.workspace.saved_args), "workspace")

    @property
    def grad_names(self) -> tuple[str, ...]:
        return tuple(f"grad_{name}" for name in self.output_names) if self.output_names else ("grad",)

    def check_workspace_backward(self, grads: Sequence, saved: Sequence) -> tuple:
        """The workspace backward op's checks (declared::Op's
        prepare_workspace_backward, then Workspace::prepare): its Shape and the
        dtype of its results."""
        op = self.name + "_backward"
        _check_given(op, self.saved_names, saved, self.grad_names, grads)
        return self.workspace.check(op, tuple(grads), tuple(saved)), _checks.promoted_dtype(saved)

    def check_call(self, args: Sequence) -> None:
        """A public call's checks: a missing tensor is named before the op sees None."""
        inputs, optional, scalars = self.split(args)
        for name, t in zip(self.arg_names, inputs):
            _checks.check_is_tensor(self.name, name, t)
        self.check(self.name, inputs, scalars, optional)


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
    decl: Op
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

    @property
    def qualname(self) -> str:
        return self.decl.qualname

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


def declare(name: str, public: Callable, eager: Callable, decl: Op, *,
            autocast: Callable, precheck: Callable | None = None, precheck_unless_float: int | None = None,
            normalize: Callable | None = None) -> Declared:
    """Op `name` (its public function `public`, running the registered op of
    declaration `decl` natively), defined by `eager`. `precheck(args)` runs
    before the op (for what its schema would accept wrongly), except where
    argument `precheck_unless_float` is a float."""
    params = [p for p in inspect.signature(public).parameters.values()
              if p.kind is p.POSITIONAL_OR_KEYWORD]
    defaults = tuple(p.default for p in params if p.default is not p.empty)
    op = Declared(name, decl, eager, decl.check_call, autocast, precheck, precheck_unless_float, normalize,
                  len(params), defaults)
    DECLARED[name] = op
    _registry.declare_op(name, decl.qualname, public)
    _registry.register_builtin(name, {"eager": op.eager_backend, "script": op.script_backend,
                                      "native": op.native_backend},
                               make_eager={"native": op.make_native_eager})
    # In torch.jit.script-ed code, calls of `public` compile to the op itself
    # (TorchScript cannot take the keyword-only backend argument), which is
    # what a saved model and C++ programs then run.
    _backends.script_as_op(public, decl.qualname)
    if _library.library_path() is not None:  # declared after the library was loaded
        from torchops import _fake

        _fake.register_declared(decl)
    return op
