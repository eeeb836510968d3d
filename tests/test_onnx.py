"""ONNX: models using torchops ops export (torchops.onnx.export, or
torch.onnx.export with torchops.onnx's translations) and run in onnxruntime
with PyTorch's outputs."""

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


@pytest.mark.parametrize("route, name", [
    ("translations", "box_matcher"), ("translations", "sequence_model"),
    ("decompositions", "box_matcher"), ("decompositions", "sequence_model"), ("decompositions", "detection_head"),
])
def test_onnx_export_runs_in_onnxruntime(route, name, tmp_path):
    model, inputs = make_models()[name], example_inputs()[name]
    model.eval()
    if route == "translations":
        program = torch.onnx.export(model, inputs, dynamo=True,
                                    custom_translation_table=torchops.onnx.custom_translation_table())
    else:
        program = torchops.onnx.export(model, inputs)
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


def test_every_op_an_exported_graph_can_hold_has_a_decomposition():
    """Every op of the library but the composite ones (they decompose on their
    own), the backward ops and lstm_cell's forward-with-workspace (both called
    only from inside the ops' autograd)."""
    torchops.available_backends()  # loads the library
    names = {n for n in torch._C._dispatch_get_all_op_names() if n.startswith(("super_iou::", "super_lstm::"))}
    held = {n for n in names if not n.endswith("_backward") and n != "super_lstm::_lstm_cell_forward"
            and not torch._C._dispatch_has_kernel_for_dispatch_key(n, "CompositeImplicitAutograd")}
    assert len(held) == 9, sorted(held)  # ratio_iou, lstm_cell, 4 paired metrics, 3 losses
    assert {str(o).removesuffix(".default").replace(".", "::") for o in torchops.onnx.decompositions()} == held
