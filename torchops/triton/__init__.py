"""The triton backend: ratio_iou, lstm_cell and the paired box losses as
Triton kernels, forward and backward, for CUDA tensors.

Each op is a torch.library.triton_op (namespace torchops_triton), so
torch.compile traces into its kernels and torch.export keeps it as one op;
gradients come from register_autograd. A Triton kernel needs no CUDA toolkit
when torchops is installed (the triton wheel carries its compiler), which
makes this the fused GPU path of a torchops built without nvcc.

This module does not import triton: torchops/triton/ops.py does, the first
time a call or available_backends() needs the backend on a CUDA device. Under
Triton's interpreter (TRITON_INTERPRET=1) the kernels also run on CPU
tensors, slowly: that is how they are tested without a GPU.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from torchops import _registry

OPS = ("ratio_iou", "lstm_cell", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def devices() -> tuple[str, ...]:
    return ("cuda", "cpu") if interpreting() else ("cuda",)


def unavailable(device_type: str) -> str | None:
    """Why the triton backend cannot run on `device_type` tensors here, or
    None where it can (then its kernels are registered: triton is imported)."""
    if device_type not in devices():
        return (f"it runs on CUDA tensors, not {device_type} ones "
                "(CPU tensors only under Triton's interpreter, TRITON_INTERPRET=1)")
    if device_type == "cuda" and not torch.cuda.is_available():
        return "no CUDA device here"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install triton)"
    return _registry.load_lazy("triton")


def status() -> tuple[bool, str]:
    """(available, why) for available_backends()."""
    device_type = "cuda" if torch.cuda.is_available() or not interpreting() else "cpu"
    why = unavailable(device_type)
    if why is not None:
        return False, f"{why}; it has Triton kernels for {', '.join(OPS)}"
    import triton

    where = "CUDA" if device_type == "cuda" else "CPU tensors under Triton's interpreter (TRITON_INTERPRET=1)"
    return True, f"Triton {triton.__version__} kernels for {', '.join(OPS)} on {where}"


def _load() -> None:
    from torchops.triton import ops  # noqa: F401  (imports triton, registers the ops and implementations)


_registry.register_lazy_builtin("triton", _load)
