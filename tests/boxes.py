"""Random paired boxes for the ratio_iou tests: shapes, layouts (contiguous,
broadcast, strided, 0-d, empty) and value families (ties, degenerate, huge,
tiny, NaN/inf) chosen by hypothesis; the boxes themselves are made by
torchops.testing (shared with check_implementation)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from torchops.testing._inputs import BOX_NAMES as NAMES, DTYPES, RATIO_LAYOUTS as LAYOUTS  # noqa: F401
from torchops.testing._inputs import RATIO_VALUES as VALUES, ratio_iou_case, to  # noqa: F401

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3)


@st.composite
def box_cases(draw, dtypes=DTYPES):
    """(boxes as float64 tensors, dtype, description)"""
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    kind = draw(st.sampled_from(VALUES))
    shape = draw(shapes)
    seed = draw(st.integers(0, 2**31 - 1))
    boxes, description = ratio_iou_case(kind, layout, shape, dtype, seed)
    return boxes, dtype, description
