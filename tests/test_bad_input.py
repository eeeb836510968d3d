"""One table of bad inputs, each run through every path that can see it: the
public function with each backend (eager, script, native), the op under
FakeTensorMode (the fake kernel torch.compile and torch.export use) and on the
meta device. Every path must reject it with the same exception class and a
message naming the argument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import torchops

BACKENDS = ("eager", "script", "native")
OPS = {
    "ratio_iou": torch.ops.super_iou.ratio_iou.default,
    "ratio_iou_backward": torch.ops.super_iou._ratio_iou_backward.default,
    "lstm_cell": torch.ops.super_lstm.lstm_cell.default,
    "lstm_cell_forward": torch.ops.super_lstm._lstm_cell_forward.default,
    "lstm_cell_backward": torch.ops.super_lstm._lstm_cell_backward.default,
}
PUBLIC = {"ratio_iou": torchops.ratio_iou, "lstm_cell": torchops.lstm_cell}


@dataclass
class Case:
    name: str
    op: str  # a key of OPS
    args: Callable[[], list]  # builds the arguments (CPU tensors)
    error: type
    message: str  # a regex the message must match on every path
    op_level: bool = True  # False: about Python argument types, which only the public function sees
    second_device: str | None = None  # one argument is moved there (mixed devices)


def boxes(**changed):
    names = ("x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2")
    values = {n: torch.rand(4) for n in names}
    values.update(changed)
    return [values[n] for n in names]


def lstm(batch=3, hidden=2, **changed):
    values = {
        "input_gates": torch.randn(batch, 4 * hidden),
        "hidden_gates": torch.randn(batch, 4 * hidden),
        "cx": torch.randn(batch, hidden),
        "b_ih": torch.randn(4 * hidden),
        "b_hh": torch.randn(4 * hidden),
    }
    values.update(changed)
    return [values[n] for n in ("input_gates", "hidden_gates", "cx", "b_ih", "b_hh")]


def lstm_backward(**changed):
    cx = torch.randn(3, 2)
    values = {"grad_hy": torch.randn(3, 2), "grad_cy": torch.randn(3, 2), "cx": cx, "workspace": torch.rand(3, 8)}
    values.update(changed)
    return [values[n] for n in ("grad_hy", "grad_cy", "cx", "workspace")] + [True]


INT = torch.ones(4, dtype=torch.int64)
CASES = [
    # ratio_iou
    Case("int64 box", "ratio_iou", lambda: boxes(w1=INT), TypeError,
         r"ratio_iou: expected w1 to be a float16, bfloat16, float32 or float64 tensor, but got torch\.int64"),
    Case("bool box", "ratio_iou", lambda: boxes(x2=INT.bool()), TypeError, r"expected x2 .* but got torch\.bool"),
    Case("complex box", "ratio_iou", lambda: boxes(h2=torch.ones(4, dtype=torch.complex64)), TypeError,
         r"expected h2 .* but got torch\.complex64"),
    Case("shapes do not broadcast", "ratio_iou", lambda: boxes(w2=torch.rand(3)), ValueError,
         r"ratio_iou: the shape of w2 \[3\] does not broadcast with \[4\]"),
    Case("negative eps", "ratio_iou", lambda: boxes() + [-1.0], ValueError,
         "ratio_iou: expected eps to be a non-negative number, but got -1"),
    Case("nan eps", "ratio_iou", lambda: boxes() + [float("nan")], ValueError,
         "ratio_iou: expected eps to be a non-negative number, but got nan"),
    Case("bool eps", "ratio_iou", lambda: boxes() + [True], TypeError, "expected eps to be a number, but got bool",
         op_level=False),
    Case("tensor eps", "ratio_iou", lambda: boxes() + [torch.tensor(1e-5)], TypeError,
         r"expected eps to be a number, but got a tensor \(pass float\(eps\)\)", op_level=False),
    Case("None box", "ratio_iou", lambda: boxes(y1=None), TypeError, "expected y1 to be a tensor, but got None",
         op_level=False),
    Case("list box", "ratio_iou", lambda: boxes(y1=[1.0]), TypeError, "expected y1 to be a tensor, but got list",
         op_level=False),
    Case("mixed devices", "ratio_iou", lambda: boxes(), RuntimeError, "ratio_iou: expected all tensors on one device",
         second_device="x2"),
    # ratio_iou's backward op
    Case("backward: grad of another shape", "ratio_iou_backward", lambda: [torch.rand(3)] + boxes() + [1e-5],
         ValueError, r"ratio_iou_backward: expected grad of shape \[4\] \(or one that broadcasts to it\), but got \[3\]"),
    Case("backward: int64 grad", "ratio_iou_backward", lambda: [INT] + boxes() + [1e-5], TypeError,
         r"ratio_iou_backward: expected grad to be a float16, bfloat16, float32 or float64 tensor, but got torch\.int64"),
    Case("backward: int64 box", "ratio_iou_backward", lambda: [torch.rand(4)] + boxes(h1=INT) + [1e-5], TypeError,
         "expected h1 to be a float16"),
    # lstm_cell and its training forward
    *[
        Case(f"{op}: {name}", op, build, error, message)
        for op in ("lstm_cell", "lstm_cell_forward")
        for name, build, error, message in [
            ("width not a multiple of 4", lambda: lstm(input_gates=torch.randn(3, 7)), ValueError,
             "expected the last dimension of input_gates to be 4 \\* hidden_size, but got 7, which is not a multiple of 4"),
            ("3-d gates", lambda: lstm(input_gates=torch.randn(2, 3, 8)), ValueError,
             r"expected input_gates of shape \[B, 4H\] or \[4H\], but got \[2, 3, 8\]"),
            ("hidden_gates of another shape", lambda: lstm(hidden_gates=torch.randn(3, 12)), ValueError,
             r"expected hidden_gates of the shape of input_gates \[3, 8\], but got \[3, 12\]"),
            ("cx of another shape", lambda: lstm(cx=torch.randn(3, 3)), ValueError,
             r"expected cx of shape \[3, 2\] \(input_gates is \[3, 8\]\), but got \[3, 3\]"),
            ("b_ih of another shape", lambda: lstm(b_ih=torch.randn(7)), ValueError,
             r"expected b_ih of shape \[8\] \(4 \* hidden_size\), but got \[7\]"),
            ("2-d b_hh", lambda: lstm(b_hh=torch.randn(2, 8)), ValueError, r"expected b_hh of shape \[8\]"),
            ("int64 gates", lambda: lstm(input_gates=torch.ones(3, 8, dtype=torch.int64)), TypeError,
             r"expected input_gates to be a float16, bfloat16, float32 or float64 tensor, but got torch\.int64"),
            ("int32 bias", lambda: lstm(b_hh=torch.ones(8, dtype=torch.int32)), TypeError,
             r"expected b_hh to be a float16, .* but got torch\.int32"),
        ]
    ],
    Case("lstm_cell: None cx", "lstm_cell", lambda: lstm(cx=None), TypeError, "expected cx to be a tensor, but got None",
         op_level=False),
    Case("lstm_cell: mixed devices", "lstm_cell", lambda: lstm(), RuntimeError,
         "lstm_cell: expected all tensors on one device", second_device="cx"),
    # lstm_cell's backward op
    Case("backward: workspace of another shape", "lstm_cell_backward", lambda: lstm_backward(workspace=torch.rand(3, 6)),
         ValueError, r"lstm_cell_backward: expected workspace of shape \[3, 8\] \(cx is \[3, 2\]\), but got \[3, 6\]"),
    Case("backward: 3-d cx", "lstm_cell_backward", lambda: lstm_backward(cx=torch.rand(2, 3, 2)), ValueError,
         r"expected cx of shape \[B, H\] or \[H\], but got \[2, 3, 2\]"),
    Case("backward: grad_hy of another shape", "lstm_cell_backward", lambda: lstm_backward(grad_hy=torch.rand(3, 3)),
         ValueError, r"expected grad_hy of the shape of cx \[3, 2\], but got \[3, 3\]"),
    Case("backward: int32 grad_cy", "lstm_cell_backward",
         lambda: lstm_backward(grad_cy=torch.ones(3, 2, dtype=torch.int32)), TypeError,
         r"expected grad_cy to be a float16, .* but got torch\.int32"),
    Case("backward: int64 workspace", "lstm_cell_backward",
         lambda: lstm_backward(workspace=torch.ones(3, 8, dtype=torch.int64)), TypeError,
         r"expected workspace to be a float16, .* but got torch\.int64"),
]


def paths(case: Case) -> list[str]:
    public = [f"public-{b}" for b in BACKENDS] if case.op in PUBLIC else []
    if not case.op_level:
        return public
    return public + ["op-cpu", "fake", "meta"] + (["public-meta-eager"] if case.op in PUBLIC else [])


def move(args: list, device: str) -> list:
    return [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]


def run(case: Case, path: str) -> None:
    args = case.args()
    if case.second_device is not None:
        names = {"ratio_iou": ("x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2"),
                 "lstm_cell": ("input_gates", "hidden_gates", "cx", "b_ih", "b_hh")}[case.op]
        i = names.index(case.second_device)
        other = "cuda" if torch.cuda.is_available() else "meta"
        args[i] = args[i].to(other)
        if path in ("meta", "public-meta-eager"):
            pytest.skip("every tensor is on the meta device on this path")
    if path.startswith("public-") and path != "public-meta-eager":
        PUBLIC[case.op](*args, backend=path.removeprefix("public-"))
    elif path == "public-meta-eager":
        PUBLIC[case.op](*move(args, "meta"), backend="eager")
    elif path == "op-cpu":
        OPS[case.op](*args)
    elif path == "meta":
        OPS[case.op](*move(args, "meta"))
    elif path == "fake":
        with FakeTensorMode(allow_non_fake_inputs=False) as mode:
            fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
            OPS[case.op](*fake)


@pytest.mark.parametrize(
    "case, path",
    [pytest.param(c, p, id=f"{c.name}-{p}") for c in CASES for p in paths(c)],
)
def test_every_path_gives_the_same_verdict(case, path):
    with pytest.raises(case.error, match=case.message):
        run(case, path)


def test_the_table_covers_every_op_and_path():
    covered = {(c.op, p) for c in CASES for p in paths(c)}
    for op in OPS:
        for path in ("op-cpu", "fake", "meta"):
            assert (op, path) in covered, (op, path)
