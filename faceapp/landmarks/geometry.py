"""Crop geometry of the landmark network, torch-free (inference runs on ONNX Runtime in the
installers): the 2x3 matrix of a face box's crop, applying and inverting affine maps, and the
OpenCV warp. Matrices map source pixels to crop pixels (pixel centres at integer coordinates,
as in ``cv2.warpAffine``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Where the crop sits around an MTCNN box: a square of CROP_MARGIN x the box's mean side,
# centred CROP_SHIFT_Y box heights below the box centre (MTCNN's box starts at the brows and
# ends at the mouth/chin; the 68 points reach below it).
CROP_MARGIN = 1.40
CROP_SHIFT_Y = 0.12


def crop_matrix(
    box, size: int, *, margin: float = CROP_MARGIN, shift_y: float = CROP_SHIFT_Y
) -> np.ndarray:
    """The 2x3 matrix mapping image pixels into the ``size`` x ``size`` crop of a face box
    ``(x1, y1, x2, y2)`` (no rotation)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {box}")
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift_y * h
    side = margin * (w + h) / 2
    s = size / side
    c = (size - 1) / 2
    return np.array([[s, 0.0, c - s * cx], [0.0, s, c - s * cy]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (or a stack ``(..., 2, 3)``)."""
    m = np.asarray(m, dtype=np.float64)
    a = m[..., :2]
    inv = np.linalg.inv(a)
    t = -(inv @ m[..., 2:])
    return np.concatenate([inv, t], axis=-1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points ``(..., K, 2)`` through 2x3 matrices ``(..., 2, 3)``."""
    m = np.asarray(m, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def crop_image(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Warp an RGB image into the crop. Outside the image is black (as in training). A crop that
    shrinks the face by more than 2x first downsizes the image with area averaging, so the
    crop is not aliased."""
    m = np.asarray(m, dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.5:
        f = min(1.0, 2 * scale)
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        # small pixel u = fx * x + (fx - 1) / 2 for pixel centres
        fx, fy = nw / w, nh / h
        down = np.array([[fx, 0, (fx - 1) / 2], [0, fy, (fy - 1) / 2]])
        m = m @ np.vstack([invert_affine(down), [0, 0, 1]])
        image = small
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )
