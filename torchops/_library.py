"""Loads the op library (torchops/_C*.so) into this process.

`import torchops` loads the library that pip built (or that the wheel ships)
once its build info says it was built against this torch: the library uses
torch's C++ ABI, and one built for another torch may not load, or worse. Where
there is none, or it cannot be loaded, the first use of the native backend
rebuilds it from the C++ sources the package ships, in a child process, into
torch's extension directory, where a C++ compiler is found. Where that fails
too, the native backend reports itself unavailable with the reason
(available_backends()), import still succeeds, and the first call that falls
back to another backend says so, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import torch

from torchops import _build

_PACKAGE_DIR = Path(__file__).resolve().parent
_lock = threading.Lock()
_state: dict = {"path": None, "error": None, "tried_packaged": False, "tried_build": False, "warned": False}


def built_library_path() -> Path | None:
    """The library built by pip install (or setup.py build_ext --inplace), if any."""
    for pattern in (f"{_build.LIBRARY_NAME}*.so", f"{_build.LIBRARY_NAME}*.pyd"):
        found = sorted(_PACKAGE_DIR.glob(pattern))
        if found:
            return found[0]
    return None


def _read_build_info(path: Path) -> dict | None:
    try:
        return json.loads((path.parent / _build.BUILD_INFO_NAME).read_text())
    except (OSError, ValueError):
        return None


def _check_build_info(path: Path) -> None:
    """Raises where the library at `path` was built for another torch."""
    info = _read_build_info(path)
    if info is None:
        return  # built before build info existed: loading it is the only test
    built_for = str(info.get("torch"))
    if _build.public_version(built_for) != _build.public_version(torch.__version__):
        raise RuntimeError(
            f"{path} was built for torch {built_for}, but this process runs torch {torch.__version__} "
            f"(the library is bound to the C++ ABI of the torch it was built against)")
    if info.get("cuda_kernels") and torch.version.cuda is None:
        raise RuntimeError(
            f"{path} has CUDA kernels (built for torch {built_for}), but this torch ({torch.__version__}) has no CUDA")


def _load(path: Path) -> None:
    _check_build_info(path)
    torch.ops.load_library(str(path))
    _state["path"] = str(path)
    _state["error"] = None


def _build_directory() -> Path:
    from torch.utils.cpp_extension import get_default_build_root

    return Path(get_default_build_root()) / f"torchops-torch{torch.__version__}"


def _up_to_date(library: Path) -> bool:
    """Whether a library built on first use before is newer than every source."""
    if not library.is_file() or _read_build_info(library) is None:
        return False
    built = library.stat().st_mtime
    files = [*_build.CSRC.rglob("*"), Path(_build.__file__)]
    return all(f.stat().st_mtime <= built for f in files if f.is_file())


def _build_now() -> None:
    """Build the library for this torch from the package's sources and load it."""
    if not _build.CSRC.is_dir():
        raise RuntimeError(f"the C++ sources are not here ({_build.CSRC}); reinstall torchops")
    missing = _build.compiler_missing()
    if missing is not None:
        raise RuntimeError(f"{missing} to build it from the sources this package ships")
    from torch.utils.file_baton import FileBaton

    directory = _build_directory()
    directory.mkdir(parents=True, exist_ok=True)

    def library() -> Path | None:
        found = sorted((directory / "lib" / "torchops").glob(f"{_build.LIBRARY_NAME}*.so"))
        return found[0] if found else None

    log = directory / "build.log"
    baton = FileBaton(str(directory / "lock"))  # one build at a time, across processes
    if baton.try_acquire():
        try:
            if library() is None or not _up_to_date(library()):
                with open(log, "w") as out:
                    done = subprocess.run([sys.executable, _build.__file__, str(directory)],
                                          stdout=out, stderr=subprocess.STDOUT, check=False)
                if done.returncode != 0:
                    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                    raise RuntimeError(f"building it failed (log: {log}): " + " | ".join(tail))
        finally:
            baton.release()
    else:
        baton.wait()
    if library() is None:
        raise RuntimeError(f"building it gave no library (log: {log})")
    _load(library())


def ensure_loaded(build: bool = True) -> bool:
    """Load the library once; with build=True, (re)build it first where none
    could be loaded. Returns whether it is loaded. Never raises: the reason is
    kept for load_error()."""
    with _lock:
        if _state["path"] is not None:
            return True
        path = built_library_path()
        if path is not None and not _state["tried_packaged"]:
            _state["tried_packaged"] = True
            try:
                _load(path)
            except Exception as exc:  # a failed load must not break import
                _state["error"] = f"{type(exc).__name__}: {exc}".strip()
        if _state["path"] is None and build and not _state["tried_build"]:
            _state["tried_build"] = True
            failed = _state["error"]  # why the packaged library did not load, if there is one
            try:
                if os.environ.get("TORCHOPS_NO_BUILD") == "1":
                    raise RuntimeError("TORCHOPS_NO_BUILD=1 forbids building it now")
                _build_now()
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}".strip()
                _state["error"] = f"{failed}; and not rebuilt: {why}" if failed else f"it is not built, and {why}"
        elif _state["path"] is None and _state["error"] is None:
            _state["error"] = "the op library is not built (pip install --no-build-isolation .)"
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


def warn_fallback(op: str, backend: str) -> None:
    """Says once per process that `op` runs `backend` because the library did
    not load (not where it loaded but has no kernel for a device: that is how
    it was built, and available_backends() says so)."""
    if _state["warned"] or _state["path"] is not None or _state["error"] is None:
        return
    _state["warned"] = True
    warnings.warn(
        f"torchops: the native backend is not available, so {op} and the other ops run the "
        f"{backend!r} backend instead (said once; torchops.available_backends() repeats why): {_state['error']}",
        RuntimeWarning,
        stacklevel=5,  # the caller of torchops.ratio_iou / lstm_cell
    )


def has_kernel(op: str, device_type: str) -> bool:
    """Whether the loaded library has a kernel of `op` (e.g. 'super_iou::ratio_iou')
    for the device type ('cpu', 'cuda')."""
    if _state["path"] is None:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta"}.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(op, key)


def op_caller(qualname: str):
    """What calls the default overload of a loaded op (e.g. 'super_iou::ratio_iou')
    fastest: its builtin, without OpOverload.__call__'s Python frame (the same
    dispatcher call, so modes, subclasses and autograd see it as ever)."""
    namespace, name = qualname.split("::")
    overload = getattr(getattr(torch.ops, namespace), name).default
    return getattr(overload, "_op", overload)


def cpu_capability() -> str | None:
    """The CPU capability the loaded library's kernels run at, or None."""
    if not ensure_loaded(build=True):
        return None
    return torch.ops.torchops._cpu_capability()
