"""Builds torchops' op library (torchops/_C*.so): one shared object with the
CPU kernels (one copy per CPU capability, picked at run time), and the CUDA
kernels when torch has CUDA and nvcc is found (TORCHOPS_CUDA=1/0 forces or
skips them). It links libtorch only, not Python, so C++ programs can load it too.

It is built against the torch installed in this environment, and a wheel of
it requires exactly that torch version (the library uses torch's C++ ABI):

    pip install --no-build-isolation .
    bash scripts/build_wheel.sh          # a stripped, portable wheel in dist/
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent

try:
    import torch
except ImportError:
    # pip's build isolation: a fresh environment without the user's torch. Building
    # against a torch pip would fetch for it (not the one that will run the library)
    # gives a library that does not load, so stop here.
    sys.exit(
        "torchops: torch is not importable in this build environment. torchops is built against "
        "the torch you run: install torch first, then build without build isolation:\n"
        "    pip install --no-build-isolation .\n"
        "(with pip's default build isolation the build cannot see the installed torch)."
    )

# torchops/_build.py holds the sources, flags and build steps, shared with the build on first use.
_spec = importlib.util.spec_from_file_location("torchops_build", ROOT / "torchops" / "_build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

with_cuda, why = build.should_build_cuda()
print(f"torchops: building the CUDA kernels: {with_cuda} ({why}); CPU kernels for "
      f"{', '.join(build.cpu_capabilities())}; against torch {torch.__version__}")

# A wheel goes to other machines: stripped, no paths of this one.
portable = "bdist_wheel" in sys.argv

setup(
    packages=[*find_packages(include=["torchops", "torchops.*"]), "torchops._csrc"],
    # The C++/CUDA sources ship inside the package, so that a library that does not
    # load (another torch) can be rebuilt on first use where a compiler is found.
    package_dir={"torchops._csrc": "csrc"},
    package_data={"torchops._csrc": ["**/*.h", "**/*.cuh", "**/*.cpp", "**/*.cu"]},
    ext_modules=[build.extension(with_cuda, portable, root=ROOT / "csrc", relative_to=ROOT)],
    # Objects kept per torch version (ninja rebuilds what changed).
    cmdclass={"build_ext": build.build_ext_class(build_temp=ROOT / "build" / f"temp-torch{torch.__version__}")},
    install_requires=[f"torch=={build.public_version(torch.__version__)}", "numpy"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
