"""Loads the op library (torchops/_C*.so) into this process.

`import torchops` loads a library built by `pip install`; where none was
built, the first use of the native backend builds one with ninja
(torch.utils.cpp_extension.load). If that fails too, the native backend
reports itself unavailable with the reason, and import still succeeds.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

from torchops import _build

_PACKAGE_DIR = Path(__file__).resolve().parent
_lock = threading.Lock()
_state: dict = {"path": None, "error": None, "tried_build": False}


def built_library_path() -> Path | None:
    """The library built by pip install (or setup.py build_ext --inplace), if any."""
    for pattern in (f"{_build.LIBRARY_NAME}*.so", f"{_build.LIBRARY_NAME}*.pyd"):
        found = sorted(_PACKAGE_DIR.glob(pattern))
        if found:
            return found[0]
    return None


def _load(path: Path) -> None:
    torch.ops.load_library(str(path))
    _state["path"] = str(path)
    _state["error"] = None


def _build_now() -> None:
    """Build the library with ninja for this torch and load it."""
    from torch.utils.cpp_extension import get_default_build_root, load

    if not _build.CSRC.is_dir():
        raise RuntimeError(f"the C++ sources are not here ({_build.CSRC}); reinstall torchops")
    with_cuda, _ = _build.should_build_cuda()
    build_directory = Path(get_default_build_root()) / "torchops_C"
    build_directory.mkdir(parents=True, exist_ok=True)
    load(
        name="torchops_C",
        sources=_build.sources(with_cuda),
        extra_cflags=_build.cxx_flags() + [f"-D{m}" for m, _ in _build.define_macros(with_cuda)],
        extra_cuda_cflags=_build.nvcc_flags(),
        extra_ldflags=_build.link_flags(),
        extra_include_paths=[str(_build.CSRC)],
        build_directory=str(build_directory),
        is_python_module=False,
        verbose=os.environ.get("TORCHOPS_VERBOSE_BUILD") == "1",
    )
    _state["path"] = str(build_directory / "torchops_C.so")
    _state["error"] = None


def ensure_loaded(build: bool = True) -> bool:
    """Load the library once; with build=True, build it first if it is missing.
    Returns whether it is loaded. Never raises: the reason is kept for
    load_error()."""
    with _lock:
        if _state["path"] is not None:
            return True
        path = built_library_path()
        try:
            if path is not None:
                _load(path)
            elif build and not _state["tried_build"]:
                _state["tried_build"] = True
                if os.environ.get("TORCHOPS_NO_BUILD") == "1":
                    raise RuntimeError("it is not built, and TORCHOPS_NO_BUILD=1 forbids building it now")
                _build_now()
            elif _state["error"] is None:
                _state["error"] = "the op library is not built (pip install --no-build-isolation .)"
        except Exception as exc:  # a failed load or build must not break import
            _state["error"] = f"{type(exc).__name__}: {exc}".strip()
            return False
    if _state["path"] is not None:
        from torchops import _fake  # noqa: F401  (registers the fake kernels)
        return True
    return False


def library_path() -> str | None:
    """The op library loaded into this process (for C++ programs to link or
    dlopen), or None where it could not be loaded."""
    return _state["path"]


def load_error() -> str | None:
    return _state["error"]


def has_kernel(op: str, device_type: str) -> bool:
    """Whether the loaded library has a kernel of `op` (e.g. 'super_iou::ratio_iou')
    for the device type ('cpu', 'cuda')."""
    if _state["path"] is None:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta"}.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(op, key)
