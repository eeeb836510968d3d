"""Argument checks in Python, for the eager/script backends and the fake
kernels. They raise the same errors as the C++ checks (csrc/common/checks.cpp),
naming the argument, and work on fake tensors with symbolic shapes."""

from __future__ import annotations

from typing import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_is_tensor(op: str, name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        got = "None" if t is None else type(t).__name__
        raise TypeError(f"{op}: expected {name} to be a tensor, but got {got}")


def check_floating(op: str, name: str, t) -> None:
    check_is_tensor(op, name, t)
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: expected {name} to be a float16, bfloat16, float32 or float64 tensor, "
            f"but got {t.dtype}"
        )


def check_same_device(op: str, names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    for name, t in zip(names[1:], tensors[1:]):
        if t.device != tensors[0].device:
            raise RuntimeError(
                f"{op}: expected all tensors on one device, but {names[0]} is on "
                f"{tensors[0].device} and {name} is on {t.device}"
            )


def broadcast_shape(op: str, names: Sequence[str], tensors: Sequence[torch.Tensor]) -> torch.Size:
    shape = tensors[0].shape
    for i in range(1, len(tensors)):
        try:
            shape = torch.broadcast_shapes(shape, tensors[i].shape)
        except RuntimeError:
            raise ValueError(
                f"{op}: the shape of {names[i]} {list(tensors[i].shape)} does not broadcast with "
                f"{list(shape)}, the broadcast shape of {names[0]}..{names[i - 1]}"
            ) from None
    return shape


def check_eps(op: str, eps) -> None:
    # the op schema takes a float: a tensor would be read on the host (a sync),
    # and True would pass as 1.0
    if isinstance(eps, torch.Tensor):
        raise TypeError(f"{op}: expected eps to be a number, but got a tensor (pass float(eps))")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool):
        raise TypeError(f"{op}: expected eps to be a number, but got {type(eps).__name__}")
    # eps != eps is the NaN test that also works on Dynamo's symbolic floats
    if eps != eps or eps < 0:
        raise ValueError(f"{op}: expected eps to be a non-negative number, but got {eps:g}")


def autocast_enabled(device: torch.device) -> bool:
    """torch.is_autocast_enabled for the device, False where autocast has no
    notion of that device (meta tensors, say)."""
    return device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type)


def promoted_dtype(tensors: Sequence[torch.Tensor]) -> torch.dtype:
    """torch.result_type over many floating tensors: 0-d tensors count only
    when no tensor has dimensions."""
    dims = [t.dtype for t in tensors if t.dim() > 0] or [t.dtype for t in tensors]
    dtype = dims[0]
    for d in dims[1:]:
        dtype = torch.promote_types(dtype, d)
    return dtype
