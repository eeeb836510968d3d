import os

import pytest
import torch

import torchops
from torchops import _library

# Hypothesis: a fixed number of examples per test, no deadline (the first
# call of a backend compiles), reproducible in CI.
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("TORCHOPS_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci")


def native_cuda_available() -> bool:
    return torch.cuda.is_available() and _library.has_kernel("super_iou::ratio_iou", "cuda")


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda skip without a GPU (and say so)."""
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("device") == "cuda" and not torch.cuda.is_available():
            item.add_marker(skip)


def pytest_report_header(config):
    status = torchops.available_backends()
    lines = [f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"]
    lines += [f"torchops backend {k}: {v.available} ({v.reason})" for k, v in status.items()]
    return lines


# Figures a test wants in the run's summary (fuzz case counts, memory growth):
# report(line) appends, and pytest prints them at the end.
REPORT_LINES: list[str] = []


@pytest.fixture
def report():
    return REPORT_LINES.append


def pytest_terminal_summary(terminalreporter):
    if REPORT_LINES:
        terminalreporter.section("torchops figures")
        for line in REPORT_LINES:
            terminalreporter.write_line(line)
