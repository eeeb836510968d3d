"""torchvision.ops' box functions, for comparisons in tests and benchmarks.

Where `import torchvision` works (a torchvision built for the installed
torch), these are its functions. Where it does not (the CPU torch wheels:
torchvision's wheel needs CUDA torch's libraries for its C extension), the box
functions are pure Python, so their source files are executed on their own,
with the few torchvision helpers they import replaced by stand-ins (usage
logging: nothing; the rotated-box op: unavailable).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
import types
from functools import lru_cache
from pathlib import Path

import torch

NAMES = (
    "box_convert", "box_area", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou",
    "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss",
)
# The source files, in the order their imports need them.
_FILES = ("_box_convert", "_utils", "boxes", "giou_loss", "diou_loss", "ciou_loss")
# Imports of torchvision itself, one statement each (parenthesised ones span lines).
_TORCHVISION_IMPORT = re.compile(r"^(from \.{1,2}\S* import \([^)]*\)|from \.{1,2}\S* import .*|"
                                 r"from torchvision\S* import .*|import torchvision.*)$", re.M)


def _assert_has_ops():
    raise RuntimeError("torchvision's C++ ops are not loaded here (only its pure-Python box functions)")


# The module the source files run in. It is registered in sys.modules because
# torch.compile (Dynamo) looks a function's globals up there by its
# __module__ and raises ModuleNotFoundError for a name it cannot find.
_MODULE_NAME = "torchops.testing._torchvision_boxes"


def _load_from_source(ops_dir: Path) -> types.SimpleNamespace:
    module = types.ModuleType(_MODULE_NAME, "torchvision.ops' box functions, run from their source files")
    module.__dict__.update({
        "torchvision": types.SimpleNamespace(_is_tracing=torch.jit.is_tracing),
        "_assert_has_ops": _assert_has_ops, "_log_api_usage_once": lambda obj: None,
    })
    sys.modules[_MODULE_NAME] = module
    for name in _FILES:
        source = _TORCHVISION_IMPORT.sub("", (ops_dir / f"{name}.py").read_text())
        exec(compile(source, str(ops_dir / f"{name}.py"), "exec"), module.__dict__)  # noqa: S102
    return types.SimpleNamespace(**{n: getattr(module, n) for n in NAMES})


@lru_cache(maxsize=None)
def torchvision_box_ops() -> types.SimpleNamespace | None:
    """A namespace with torchvision.ops' box functions (NAMES) and `version`,
    `source` ("import" or "source files"); None where torchvision is not
    installed."""
    try:
        import torchvision
        import torchvision.ops as ops

        found = types.SimpleNamespace(**{n: getattr(ops, n) for n in NAMES})
        found.version, found.source = torchvision.__version__, "import"
        return found
    except Exception:  # noqa: BLE001  (a torchvision for another torch fails in many ways)
        pass
    spec = importlib.util.find_spec("torchvision")  # finds the package without running it
    if spec is None or spec.origin is None:
        return None
    found = _load_from_source(Path(spec.origin).parent / "ops")
    found.version, found.source = importlib.metadata.version("torchvision"), "source files"
    return found
