"""A torchops plug-in: backend "demo" with its own ratio_iou (plain PyTorch
ops, written differently from torchops' eager reference) and a CPU-only
paired_box_iou that wraps an existing kernel (a vendor library's in real
life; here torchops' native op). torchops calls register() the first time a
call names a backend it does not know, or available_backends() runs."""

import torch

import torchops

LOADED = []  # the tests check when torchops loaded this plug-in


def ratio_iou(x1, y1, w1, h1, x2, y2, w2, h2, eps=1e-5):
    left, right = torch.maximum(x1, x2), torch.minimum(x1 + w1, x2 + w2)
    top, bottom = torch.maximum(y1, y2), torch.minimum(y1 + h1, y2 + h2)
    inter = (right - left).clamp(min=0) * (bottom - top).clamp(min=0)
    return inter / (w1 * h1 + w2 * h2 - inter).clamp(min=eps)


def paired_box_iou(boxes1, boxes2, *, fmt="xyxy"):
    return torch.ops.super_iou.paired_box_iou(boxes1, boxes2, 0.0, fmt)


def register():
    LOADED.append("demo")
    torchops.register_implementation("ratio_iou", "demo", ratio_iou)
    torchops.register_implementation("paired_box_iou", "demo", paired_box_iou, devices=("cpu",))
