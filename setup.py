"""Builds torchops' op library (torchops/_C*.so): one shared object with the
CPU kernels, and the CUDA kernels when torch has CUDA and nvcc is found
(TORCHOPS_CUDA=1/0 forces or skips them). It links libtorch only, not
Python, so C++ programs can load it too.

    pip install --no-build-isolation .
"""

import importlib.util
from pathlib import Path

from setuptools import find_packages, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

ROOT = Path(__file__).resolve().parent

# torchops/_build.py holds the sources and flags, shared with the build on first use.
_spec = importlib.util.spec_from_file_location("torchops_build", ROOT / "torchops" / "_build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

with_cuda, why = build.should_build_cuda()
print(f"torchops: building the CUDA kernels: {with_cuda} ({why})")

extension_type = CUDAExtension if with_cuda else CppExtension
extra_compile_args = {"cxx": build.cxx_flags()}
if with_cuda:
    extra_compile_args["nvcc"] = build.nvcc_flags()

setup(
    packages=find_packages(include=["torchops", "torchops.*"]),
    ext_modules=[
        extension_type(
            name=f"torchops.{build.LIBRARY_NAME}",
            sources=[str(Path(s).relative_to(ROOT)) for s in build.sources(with_cuda)],
            include_dirs=[str(ROOT / "csrc")],
            define_macros=build.define_macros(with_cuda),
            extra_compile_args=extra_compile_args,
            extra_link_args=build.link_flags(),
            py_limited_api=True,  # no libtorch_python, no Python.h: loadable from C++
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
