"""YOLO (Redmon et al.): grid and anchor-box targets, decoding, score filtering, per-class NMS.

The image is divided into an S x S grid. Each object belongs to the one cell that contains
its centre and, within that cell, to the anchor box whose shape has the highest IoU with
its own. Each (cell, anchor) slot holds the course's vector

    [p_c, b_x, b_y, b_h, b_w, c_1, ..., c_C]

where b_x, b_y in [0, 1) locate the centre inside the cell and b_h, b_w are the box size in
cell units (they may exceed 1). The target of an image is (S, S, A, 5 + C): 3x3x2x8 in the
lecture, 19x19x5x85 for 80 COCO classes and 5 anchors in the assignment.

Anchors are (w, h) pairs in cell units, the format of YOLOv2's anchor files.

At test time, :func:`yolo_head` turns the network's raw outputs into the same units
(sigmoid for p_c, b_x, b_y; anchor x exp for b_h, b_w; softmax for the classes), and
:func:`yolo_eval` keeps boxes whose score p_c x c_i is at least a threshold (0.6) and runs
non-max suppression per class (IoU 0.5).

The algorithm cannot represent two objects whose centres fall in the same cell and best
match the same anchor: the second one is dropped with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from faceapp.cnn.detection.boxes import batched_nms, center_to_corners, corners_to_center

__all__ = ["Detection", "encode_targets", "anchor_iou", "yolo_head", "cells_to_boxes", "filter_boxes", "yolo_eval"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    """One detected object: corner box (x1, y1, x2, y2), score p_c x c_i, 0-based class index.

    The box is in fractions of the image, or in pixels when ``yolo_eval`` got ``image_size``.
    """

    box: tuple[float, float, float, float]
    score: float
    class_index: int


def _anchors(anchors: torch.Tensor | Sequence[Sequence[float]] | None) -> torch.Tensor:
    if anchors is None:
        return torch.ones(1, 2)
    anchors = torch.as_tensor(anchors, dtype=torch.float32)
    if anchors.ndim != 2 or anchors.shape[1] != 2:
        raise ValueError(f"anchors must be (A, 2) (w, h) pairs, got shape {tuple(anchors.shape)}")
    return anchors


def anchor_iou(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """IoU of box shapes (K, 2) with anchor shapes (A, 2), both (w, h) and centred together: (K, A)."""
    inter = torch.minimum(wh[:, None, 0], anchors[None, :, 0]) * torch.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def encode_targets(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    *,
    grid_size: int,
    num_classes: int,
    anchors: torch.Tensor | Sequence[Sequence[float]] | None = None,
) -> torch.Tensor:
    """The training target (S, S, A, 5 + C) for one image, on the CPU (build it in the data loader).

    Args:
        boxes: (K, 4) corner boxes (x1, y1, x2, y2) as fractions of the image.
        labels: (K,) 0-based class indices.
        grid_size: S.
        num_classes: C.
        anchors: (A, 2) anchor (w, h) in cell units; ``None`` is one slot per cell (A = 1).
    """
    anchors = _anchors(anchors)
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4).cpu()  # targets are built on the CPU
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1).cpu()
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
        raise ValueError(f"labels must be in [0, {num_classes})")
    y = torch.zeros(grid_size, grid_size, len(anchors), 5 + num_classes)
    centre = corners_to_center(boxes) * grid_size  # b_x, b_y, b_h, b_w in cell units
    best_anchor = (
        anchor_iou(centre[:, [3, 2]], anchors).argmax(dim=1) if len(boxes) else torch.empty(0, dtype=torch.long)
    )
    for k in range(len(boxes)):
        bx, by, bh, bw = centre[k].tolist()
        col, row = min(int(bx), grid_size - 1), min(int(by), grid_size - 1)
        a = int(best_anchor[k])
        if y[row, col, a, 0] == 1:
            logger.warning("object %d dropped: cell (%d, %d) anchor %d already holds an object", k, row, col, a)
            continue
        y[row, col, a, :5] = torch.tensor([1.0, bx - col, by - row, bh, bw])
        y[row, col, a, 5 + int(labels[k])] = 1.0
    return y


def yolo_head(raw: torch.Tensor, anchors: torch.Tensor | Sequence[Sequence[float]] | None = None) -> torch.Tensor:
    """Raw network outputs (..., S, S, A, 5 + C) -> the target's units (same shape).

    p_c = sigmoid(t_o), b_x = sigmoid(t_x), b_y = sigmoid(t_y), b_h = anchor_h exp(t_h),
    b_w = anchor_w exp(t_w), classes = softmax(t_classes).
    """
    anchors = _anchors(anchors).to(raw.device, raw.dtype)
    if raw.shape[-2] != len(anchors):
        raise ValueError(f"output has {raw.shape[-2]} boxes per cell but {len(anchors)} anchors were given")
    return torch.cat(
        (
            torch.sigmoid(raw[..., :3]),
            anchors[:, 1:2] * torch.exp(raw[..., 3:4]),
            anchors[:, 0:1] * torch.exp(raw[..., 4:5]),
            torch.softmax(raw[..., 5:], dim=-1),
        ),
        dim=-1,
    )


def cells_to_boxes(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a target-format volume (..., S, S, A, 5 + C) into image-level parts.

    Returns corner boxes (..., S, S, A, 4) as fractions of the image, confidences p_c
    (..., S, S, A) and class probabilities (..., S, S, A, C).
    """
    grid_h, grid_w = y.shape[-4], y.shape[-3]
    rows = torch.arange(grid_h, dtype=y.dtype, device=y.device).reshape(grid_h, 1, 1)
    cols = torch.arange(grid_w, dtype=y.dtype, device=y.device).reshape(1, grid_w, 1)
    centre = torch.stack(
        ((y[..., 1] + cols) / grid_w, (y[..., 2] + rows) / grid_h, y[..., 3] / grid_h, y[..., 4] / grid_w), dim=-1
    )
    return center_to_corners(centre), y[..., 0], y[..., 5:]


def filter_boxes(
    boxes: torch.Tensor, confidence: torch.Tensor, class_probs: torch.Tensor, threshold: float = 0.6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the boxes whose best class score p_c x c_i is at least ``threshold``.

    Inputs share leading dimensions (boxes (..., 4), confidence (...), class_probs (..., C)).
    Returns flat (K, 4) boxes, (K,) scores and (K,) class indices.
    """
    box_scores = confidence[..., None] * class_probs
    scores, classes = box_scores.max(dim=-1)
    mask = scores >= threshold
    return boxes[mask], scores[mask], classes[mask]


def yolo_eval(
    y: torch.Tensor,
    *,
    score_threshold: float = 0.6,
    iou_threshold: float = 0.5,
    max_boxes: int = 10,
    image_size: tuple[int, int] | None = None,
) -> list[Detection]:
    """Detections from one image's (S, S, A, 5 + C) volume in target units (see :func:`yolo_head`).

    Score filtering, then non-max suppression within each class, then at most ``max_boxes``
    detections, best first. ``image_size=(height, width)`` scales boxes to pixels. Returns
    ``[]`` when nothing passes.
    """
    if y.ndim != 4:
        raise ValueError(f"expected one image's (S, S, A, 5 + C) volume, got shape {tuple(y.shape)}")
    boxes, scores, classes = filter_boxes(*cells_to_boxes(y), threshold=score_threshold)
    keep = batched_nms(boxes, scores, classes, iou_threshold)[:max_boxes]
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    if image_size is not None:
        height, width = image_size
        boxes = boxes * torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return [
        Detection(box=tuple(float(v) for v in box), score=float(score), class_index=int(c))  # type: ignore[arg-type]
        for box, score, c in zip(boxes.tolist(), scores.tolist(), classes.tolist())
    ]
