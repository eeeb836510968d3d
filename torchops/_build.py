"""Sources, compiler flags and the build of the op library, shared by setup.py
and the on-first-use build (torchops._library). Importing this file imports
neither torch nor setuptools. Run as a script (python _build.py DIR) it builds
the library into DIR: that is how the first use builds it, in a child process.

CPU kernels for every x86-64 CPU, as ATen builds its own: the kernel files
(csrc/*/cpu/*.cpp) are compiled once per capability ATen knows (DEFAULT, AVX2,
AVX512), each with the flags torch's cmake uses for it and in its own inline
namespace CPU_CAPABILITY; DispatchStub picks one copy at run time from
at::get_cpu_capability() (ATEN_CPU_CAPABILITY overrides it). Everything else
(registration, static initialisers, checks, autograd, autocast) is compiled
for baseline x86-64 only, so the library loads on any x86-64 CPU.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

LIBRARY_NAME = "_C"
# Beside the library: the torch it was built against (torchops._library checks
# it before loading the library into a process that runs another torch).
BUILD_INFO_NAME = f"{LIBRARY_NAME}.build.json"


def _find_csrc() -> Path:
    here = Path(__file__).resolve().parent
    # installed from a wheel: torchops/_csrc; a source checkout: csrc/ beside torchops/
    for candidate in (here / "_csrc", here.parent / "csrc"):
        if candidate.is_dir():
            return candidate
    return here.parent / "csrc"


CSRC = _find_csrc()

# ATen's CPU capabilities on x86-64, with the flags torch's cmake
# (cmake/Codegen.cmake) compiles ATen's kernel files with for each.
X86_64_CAPABILITIES = {
    "DEFAULT": [],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
}
# GCC's generic tuning splits unaligned 256-bit loads and stores in two; torch
# turns that off for its AVX2 kernels (clang has no such flags).
GCC_AVX2_FLAGS = ["-mno-avx256-split-unaligned-load", "-mno-avx256-split-unaligned-store"]


def _is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def _compiler_is_gcc() -> bool:
    compiler = os.environ.get("CXX", "c++")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return False
    return "clang" not in version.lower()


def cpu_capabilities() -> dict[str, list[str]]:
    """Capability name -> the -m flags its copy of the kernels is compiled with.
    Elsewhere than x86-64, one DEFAULT copy (torch's other capabilities there,
    e.g. SVE256 on aarch64, are not built yet)."""
    if not _is_x86_64():
        return {"DEFAULT": []}
    capabilities = {name: list(flags) for name, flags in X86_64_CAPABILITIES.items()}
    if _compiler_is_gcc():
        capabilities["AVX2"] += GCC_AVX2_FLAGS
    return capabilities


def capability_flags(name: str) -> list[str]:
    """What one copy of the kernel files is compiled with, as in ATen."""
    return [f"-DCPU_CAPABILITY={name}", f"-DCPU_CAPABILITY_{name}", *cpu_capabilities()[name]]


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


def kernel_sources(root: Path = CSRC) -> list[str]:
    """The files compiled once per CPU capability."""
    return sorted(str(p) for p in root.glob("*/cpu/*.cpp"))


def sources(with_cuda: bool, root: Path = CSRC) -> list[str]:
    """Everything else: compiled once, for baseline x86-64 (and CUDA)."""
    kernels = set(kernel_sources(root))
    files = sorted(str(p) for p in root.rglob("*.cpp") if str(p) not in kernels)
    if with_cuda:
        files += sorted(str(p) for p in root.rglob("*.cu"))
    return files


def sanitizer_flags() -> list[str]:
    """TORCHOPS_SANITIZE=address,undefined builds the CPU code with those
    sanitizers (run Python with the sanitizer runtime in LD_PRELOAD)."""
    value = os.environ.get("TORCHOPS_SANITIZE", "").strip()
    return [f"-fsanitize={value}", "-fno-omit-frame-pointer", "-g"] if value else []


def path_map_flags() -> list[str]:
    """Source paths as the library records them (__FILE__ in TORCH_CHECK's
    messages): relative to the source tree and to torch's headers, never this
    machine's (GCC checks the last map first)."""
    from torch.utils.cpp_extension import include_paths

    return [f"-ffile-prefix-map={CSRC.parent}/=", f"-ffile-prefix-map={include_paths()[0]}/=torch/include/"]


def cxx_flags() -> list[str]:
    # -ffp-contract=off: no fused multiply-adds the eager reference would not
    # do (-mfma would allow them), so float32/float64 results match it to the
    # bit at every capability. -g0: no debug info (Python's own flags have -g).
    return ["-O3", "-ffp-contract=off", "-g0", f"-I{CSRC}", *path_map_flags(), *sanitizer_flags()]


def define_macros(with_cuda: bool) -> list[tuple[str, str | None]]:
    macros = [("TORCHOPS_WITH_CUDA", None)] if with_cuda else []
    if _is_x86_64():
        # What torch itself is built with on x86-64: DispatchStub's layout and
        # the functions it calls in libtorch_cpu depend on them (every file).
        macros += [("HAVE_AVX2_CPU_DEFINITION", None), ("HAVE_AVX512_CPU_DEFINITION", None)]
    return macros


def link_flags(portable: bool) -> list[str]:
    """portable (a wheel): stripped, and torch's libraries found only beside
    the installed package ($ORIGIN/../torch/lib). Otherwise (built where it
    runs) also where the torch it was built against keeps them, so a C++
    program can load it without Python having loaded torch first."""
    rpaths = ["$ORIGIN/../torch/lib"]
    if not portable:
        from torch.utils.cpp_extension import library_paths

        rpaths += library_paths()
    strip = ["-s"] if portable and not sanitizer_flags() else []
    return [*(f"-Wl,-rpath,{path}" for path in rpaths), *strip, *sanitizer_flags()]


def nvcc_flags() -> list[str]:
    return [
        "-O3",
        "--fmad=false",  # same reason as -ffp-contract=off
        "--expt-relaxed-constexpr",
        "--extended-lambda",
        "-lineinfo",
        f"-I{CSRC}",
        *(f"-Xcompiler={flag}" for flag in path_map_flags()),
    ]


def build_info(with_cuda: bool) -> dict:
    import torch

    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_kernels": with_cuda,
        "cpu_capabilities": list(cpu_capabilities()),
    }


# A wheel's GPUs: Ampere (sm_80, sm_86), Ada (sm_89), Hopper (sm_90), and PTX
# that newer GPUs compile when the library loads.
WHEEL_CUDA_ARCHS = "8.0;8.6;8.9;9.0+PTX"


def set_cuda_arch_list(portable: bool) -> None:
    """TORCH_CUDA_ARCH_LIST, unless it is set: a wheel's GPUs for a wheel, and
    where no GPU is visible (torch would take the list from the visible GPUs,
    and with none it fails)."""
    import torch

    if "TORCH_CUDA_ARCH_LIST" not in os.environ and (portable or torch.cuda.device_count() == 0):
        os.environ["TORCH_CUDA_ARCH_LIST"] = WHEEL_CUDA_ARCHS


def public_version(version: str) -> str:
    """'2.13.0+cpu' -> '2.13.0': what a wheel's requirement pins (torch==2.13.0
    accepts any local build of it)."""
    return version.split("+", 1)[0]


def extension(with_cuda: bool, portable: bool, root: Path = CSRC, relative_to: Path | None = None):
    """The op library as a setuptools Extension (sources relative to
    `relative_to` where given, as setup.py wants them)."""
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    def paths(files: list[str]) -> list[str]:
        return [str(Path(f).relative_to(relative_to)) if relative_to else f for f in files]

    extra_compile_args = {"cxx": cxx_flags()}
    if with_cuda:
        extra_compile_args["nvcc"] = nvcc_flags()
        set_cuda_arch_list(portable)
    ext = (CUDAExtension if with_cuda else CppExtension)(
        name=f"torchops.{LIBRARY_NAME}",
        sources=paths(sources(with_cuda, root)),
        include_dirs=[str(root)],
        define_macros=define_macros(with_cuda),
        extra_compile_args=extra_compile_args,
        extra_link_args=link_flags(portable),
        py_limited_api=True,  # no libtorch_python, no Python.h: loadable from C++
    )
    ext.cpu_kernel_sources = paths(kernel_sources(root))
    ext.build_info = build_info(with_cuda)
    return ext


def build_ext_class(build_temp: Path | None = None):
    """torch's BuildExtension, which also compiles the CPU kernel files once per
    capability, each copy with its own flags, into objects linked after every
    baseline object: the linker keeps the first copy of an inline function that
    several objects define, and it must be a baseline one (torch's NOTE
    [ Linking AVX and non-AVX files ]). Writes the build info beside the library.
    build_temp: where the objects go whatever the command (editable installs
    use a fresh one each time): a wheel built after an editable install then
    only links."""
    from torch.utils.cpp_extension import BuildExtension

    class BuildExt(BuildExtension):
        def finalize_options(self) -> None:
            super().finalize_options()
            if build_temp is not None:
                self.build_temp = str(build_temp)

        def build_extension(self, ext) -> None:
            kernels = getattr(ext, "cpu_kernel_sources", [])
            objects = []
            for name in cpu_capabilities():
                args = {key: [*flags, *capability_flags(name)] if key == "cxx" else list(flags)
                        for key, flags in ext.extra_compile_args.items()}
                objects += self.compiler.compile(
                    kernels, output_dir=os.path.join(self.build_temp, name), macros=ext.define_macros,
                    include_dirs=ext.include_dirs, debug=self.debug, extra_postargs=args, depends=ext.depends)
            ext.extra_objects = objects  # linked after the baseline objects
            super().build_extension(ext)
            self._write_build_info(ext, Path(self.get_ext_fullpath(ext.name)).parent)

        def copy_extensions_to_source(self) -> None:
            super().copy_extensions_to_source()
            build_py = self.get_finalized_command("build_py")
            for ext in self.extensions:
                inplace_file, _ = self._get_inplace_equivalent(build_py, ext)
                self._write_build_info(ext, Path(inplace_file).parent)

        @staticmethod
        def _write_build_info(ext, directory: Path) -> None:
            info = getattr(ext, "build_info", None)
            if info is not None:
                (directory / BUILD_INFO_NAME).write_text(json.dumps(info, indent=1) + "\n")

    return BuildExt


def build(directory: Path) -> Path:
    """Builds the library for the torch of this interpreter into `directory`
    (the first-use build) and returns its path."""
    from setuptools import Distribution

    with_cuda, _ = should_build_cuda()
    ext = extension(with_cuda, portable=False)
    dist = Distribution({"name": "torchops", "ext_modules": [ext], "cmdclass": {"build_ext": build_ext_class()}})
    command = dist.get_command_obj("build_ext")
    command.build_temp = str(directory / "temp")
    command.build_lib = str(directory / "lib")
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath(ext.name))


def compiler_missing() -> str | None:
    """Why the library cannot be built here (no C++ compiler), or None."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler}) on PATH"
    return None


if __name__ == "__main__":
    print(build(Path(sys.argv[1]).resolve()))
