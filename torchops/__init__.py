"""torchops: fused PyTorch operators in three interchangeable implementations.

    from torchops import ratio_iou
    iou = ratio_iou(x1, y1, w1, h1, x2, y2, w2, h2)          # backend="auto"

TorchScript, traced models, torch.compile, torch.export and C++ see the ops as
torch.ops.super_iou.* and torch.ops.super_lstm.*.
"""

from __future__ import annotations

from torchops import _library
from torchops._registry import register_implementation
from torchops._backends import (
    BackendStatus,
    available_backends,
    get_backend,
    set_backend,
    use_backend,
)

# Load the op library if it was built; never fails (see available_backends()).
_library.ensure_loaded(build=False)

from torchops.iou import ratio_iou, ratio_iou_eager  # noqa: E402
from torchops.lstm import lstm_cell, lstm_cell_eager  # noqa: E402
from torchops import nn, ops  # noqa: E402

__version__ = "0.1.0"


def cpu_capability() -> str | None:
    """The CPU capability torchops' CPU kernels run at: "DEFAULT", "AVX2" or
    "AVX512" on x86-64, spelled as torch.backends.cpu.get_cpu_capability(),
    which it follows (set ATEN_CPU_CAPABILITY=default|avx2|avx512 before
    starting Python to choose). None where the op library cannot be loaded."""
    return _library.cpu_capability()


def library_path() -> str | None:
    """The op library's file, for C++ programs to link or dlopen (built now if
    it was not); None where it cannot be loaded (available_backends() says why)."""
    _library.ensure_loaded(build=True)
    return _library.library_path()


__all__ = [
    "BackendStatus",
    "available_backends",
    "cpu_capability",
    "get_backend",
    "library_path",
    "lstm_cell",
    "lstm_cell_eager",
    "nn",
    "ops",
    "ratio_iou",
    "ratio_iou_eager",
    "register_implementation",
    "set_backend",
    "use_backend",
]
