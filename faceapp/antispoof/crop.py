"""The anti-spoofing crop: the face box scaled about its centre, kept inside the image, resized.

MiniFASNet sees more than the face: each released model was trained on crops ``scale`` times the
detector's box (2.7x and 4.0x), where a print's edge, fingers or a screen's bezel and moiré show.
As in the original, the scale is first lowered when such a crop would not fit the image at all
(at most (image side - 1) / box side), and a crop running over an edge is slid back inside rather
than padded; its corners are then truncated to whole pixels and the region, both corners
included, is resized to the network's square input (so a non-square box is squashed, as in
training).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceapp.types import BBox


@dataclass(frozen=True)
class CropBox:
    """Integer pixel corners, both inclusive: rows y1..y2 and columns x1..x2 of the image."""

    x1: int
    y1: int
    x2: int
    y2: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x1, self.y1, self.x2, self.y2


def crop_box(image_size: tuple[int, int], bbox: BBox, scale: float) -> CropBox:
    """The crop for face box ``bbox`` at ``scale`` in an image of ``image_size`` = (width, height)."""
    width, height = image_size
    bw, bh = float(bbox.width), float(bbox.height)
    if bw <= 0 or bh <= 0 or width < 2 or height < 2:
        raise ValueError(f"no crop for box {bbox} in a {width}x{height} image")
    scale = min(float(scale), (height - 1) / bh, (width - 1) / bw)
    cx, cy = bbox.x1 + bw / 2.0, bbox.y1 + bh / 2.0
    half_w, half_h = bw * scale / 2.0, bh * scale / 2.0
    x1, x2 = cx - half_w, cx + half_w
    y1, y2 = cy - half_h, cy + half_h
    if x1 < 0:  # slide right
        x2, x1 = x2 - x1, 0.0
    if y1 < 0:
        y2, y1 = y2 - y1, 0.0
    if x2 > width - 1:  # slide left
        x1, x2 = x1 - (x2 - (width - 1)), float(width - 1)
    if y2 > height - 1:
        y1, y2 = y1 - (y2 - (height - 1)), float(height - 1)
    return CropBox(int(x1), int(y1), int(x2), int(y2))


def crop_face(image: np.ndarray, bbox: BBox, scale: float, size: int = 80) -> tuple[np.ndarray, CropBox]:
    """The (size, size, 3) crop of ``image`` (H, W, 3, any channel order, kept) and its box."""
    h, w = image.shape[:2]
    box = crop_box((w, h), bbox, scale)
    region = image[max(box.y1, 0): box.y2 + 1, max(box.x1, 0): box.x2 + 1]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR), box
