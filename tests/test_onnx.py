"""ONNX: models using torchops ops export with torch.onnx.export (dynamo) and
torchops.onnx's translations, and run in onnxruntime with PyTorch's outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import torchops.onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from models import example_inputs, make_models  # noqa: E402


@pytest.mark.parametrize("name", ["box_matcher", "sequence_model"])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    model, inputs = make_models()[name], example_inputs()[name]
    model.eval()
    program = torch.onnx.export(model, inputs, dynamo=True,
                                custom_translation_table=torchops.onnx.custom_translation_table())
    path = tmp_path / f"{name}.onnx"
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})
    with torch.no_grad():
        expected = model(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=1e-6)
