"""torchvision.ops' axis-aligned box functions, fused: `import torchops.ops as ops`
in place of `torchvision.ops` gives the same names, signatures, defaults and
results (where torchvision's are finite), plus keyword-only ``fmt=`` ("xyxy",
"xywh", "cxcywh", read directly) and ``backend=`` on every box function, and
paired (matched-pair) forms that do not build N x N matrices.
See torchops/boxes.py for the semantics."""

from torchops.boxes import (  # noqa: F401
    box_convert,
    box_iou,
    complete_box_iou,
    complete_box_iou_loss,
    distance_box_iou,
    distance_box_iou_loss,
    generalized_box_iou,
    generalized_box_iou_loss,
    paired_box_iou,
    paired_complete_box_iou,
    paired_distance_box_iou,
    paired_generalized_box_iou,
)

__all__ = [
    "box_convert", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou",
    "paired_box_iou", "paired_generalized_box_iou", "paired_distance_box_iou", "paired_complete_box_iou",
    "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss",
]
