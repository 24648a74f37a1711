"""Boxes: format conversions, intersection over union and non-max suppression.

Boxes are torch tensors (..., 4). The *corner* format is (x1, y1, x2, y2): upper-left and
lower-right corners, x to the right and y down, as in torchvision. The *centre* format is
the course's (b_x, b_y, b_h, b_w): centre, then height, then width. Areas are
(x2 - x1) * (y2 - y1), continuous coordinates (no "+1").
"""

from __future__ import annotations

import torch

__all__ = ["center_to_corners", "corners_to_center", "box_area", "iou", "nms", "batched_nms"]


def center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(b_x, b_y, b_h, b_w) -> (x1, y1, x2, y2)."""
    bx, by, bh, bw = boxes.unbind(-1)
    return torch.stack((bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2), dim=-1)


def corners_to_center(boxes: torch.Tensor) -> torch.Tensor:
    """(x1, y1, x2, y2) -> (b_x, b_y, b_h, b_w)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, y2 - y1, x2 - x1), dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of corner-format boxes (..., 4) -> (...)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair: (N, 4) and (M, 4) corner boxes -> (N, M).

    The intersection is the box from the larger upper-left to the smaller lower-right corner,
    with zero area when they do not overlap. IoU >= 0.5 usually counts as a correct
    localisation. Equal to ``torchvision.ops.box_iou``.
    """
    upper_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    lower_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (lower_right - upper_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-max suppression: indices of the kept boxes, highest score first.

    Repeatedly keep the highest-scoring remaining box and discard every remaining box whose
    IoU with it is greater than ``iou_threshold``. Equal to ``torchvision.ops.nms``.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps = iou(boxes[order], boxes[order]) > iou_threshold
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Non-max suppression within each class separately; kept indices, highest score first.

    A car never suppresses a pedestrian. Equal to ``torchvision.ops.batched_nms``.
    """
    keep = [torch.nonzero(classes == c).flatten() for c in torch.unique(classes)]
    keep = [idx[nms(boxes[idx], scores[idx], iou_threshold)] for idx in keep]
    if not keep:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    kept = torch.cat(keep)
    return kept[torch.argsort(scores[kept], descending=True, stable=True)]
