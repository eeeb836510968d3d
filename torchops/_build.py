"""Sources and compiler flags of the op library, shared by setup.py and the
on-first-use build (torchops._library). Plain Python: importing it loads no
extension."""

from __future__ import annotations

import os
import platform
from pathlib import Path

LIBRARY_NAME = "_C"
CSRC = Path(__file__).resolve().parent.parent / "csrc"


def cuda_requested() -> bool | None:
    """TORCHOPS_CUDA=1 forces the CUDA kernels, 0 skips them, unset: automatic."""
    value = os.environ.get("TORCHOPS_CUDA", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def should_build_cuda() -> tuple[bool, str]:
    """Whether to compile the CUDA kernels here, and why."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME

    requested = cuda_requested()
    if requested is False:
        return False, "TORCHOPS_CUDA=0"
    if torch.version.cuda is None:
        if requested:
            raise RuntimeError("TORCHOPS_CUDA=1, but the installed torch has no CUDA support")
        return False, "the installed torch has no CUDA support"
    if CUDA_HOME is None:
        if requested:
            raise RuntimeError("TORCHOPS_CUDA=1, but no CUDA toolkit (nvcc) was found; set CUDA_HOME")
        return False, "no CUDA toolkit (nvcc) found"
    return True, "torch has CUDA and nvcc was found"


def sources(with_cuda: bool, root: Path = CSRC) -> list[str]:
    files = sorted(str(p) for p in root.rglob("*.cpp"))
    if with_cuda:
        files += sorted(str(p) for p in root.rglob("*.cu"))
    return files


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_isa_flags() -> list[str]:
    """AVX2 kernels when the build machine has AVX2+FMA+F16C (the library is
    built where it runs); TORCHOPS_CPU_ISA=default builds portable x86-64 code."""
    choice = os.environ.get("TORCHOPS_CPU_ISA", "auto").strip().lower()
    if platform.machine() not in ("x86_64", "AMD64") or choice == "default":
        return []
    if choice == "avx2" or {"avx2", "fma", "f16c"} <= _cpu_flags():
        return ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return []


def sanitizer_flags() -> list[str]:
    """TORCHOPS_SANITIZE=address,undefined builds the CPU code with those
    sanitizers (run Python with the sanitizer runtime in LD_PRELOAD)."""
    value = os.environ.get("TORCHOPS_SANITIZE", "").strip()
    return [f"-fsanitize={value}", "-fno-omit-frame-pointer", "-g"] if value else []


def cxx_flags() -> list[str]:
    # -ffp-contract=off: no fused multiply-adds the eager reference would not
    # do, so float32/float64 results match it to the bit.
    return ["-O3", "-ffp-contract=off", f"-I{CSRC}", *cpu_isa_flags(), *sanitizer_flags()]


def torch_library_rpath() -> list[str]:
    """The library finds torch's own libraries (libc10, libtorch_cpu, libc10_cuda,
    ...) where a C++ program loads it without Python having loaded torch first:
    next to an installed torchops ($ORIGIN/../torch/lib) and where the torch it
    was built against keeps them."""
    from torch.utils.cpp_extension import library_paths

    return [f"-Wl,-rpath,{path}" for path in ["$ORIGIN/../torch/lib", *library_paths()]]


def link_flags() -> list[str]:
    return [*torch_library_rpath(), *sanitizer_flags()]


def nvcc_flags() -> list[str]:
    return [
        "-O3",
        "--fmad=false",  # same reason as -ffp-contract=off
        "--expt-relaxed-constexpr",
        "--extended-lambda",
        "-lineinfo",
        f"-I{CSRC}",
    ]


def define_macros(with_cuda: bool) -> list[tuple[str, str | None]]:
    return [("TORCHOPS_WITH_CUDA", None)] if with_cuda else []
