"""A synthetic segmentation data set: discs, squares and triangles on a noisy background.

Every image has one to three shapes of random size, position and colour (colour does not
give the class away: only the shape does), drawn in order so that later shapes cover earlier
ones, on a darker noisy background. The mask holds each pixel's class index.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SHAPE_CLASSES", "synthetic_shapes"]

#: Class index -> name.
SHAPE_CLASSES = ("background", "disc", "square", "triangle")


def _shape_mask(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    half = rng.uniform(size * 0.15, size * 0.3)
    cx, cy = rng.uniform(half, size - half, size=2)
    if kind == 1:  # disc
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= half**2
    if kind == 2:  # axis-aligned square
        return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    # upright triangle: apex at the top, base at the bottom
    top, bottom = cy - half, cy + half
    t = np.clip((yy - top) / (bottom - top), 0, None)
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= t * half)


def synthetic_shapes(
    n: int, *, size: int = 32, max_shapes: int = 3, noise: float = 0.05, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (n, 3, size, size) in [0, 1] and their masks (n, size, size), class indices
    into :data:`SHAPE_CLASSES`. The same seed gives the same data."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        image = np.broadcast_to(rng.uniform(0.0, 0.3, size=3), (size, size, 3)).copy()
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.integers(1, len(SHAPE_CLASSES)))
            region = _shape_mask(kind, size, rng)
            image[region] = rng.uniform(0.45, 1.0, size=3)
            masks[i][region] = kind
        images[i] = np.clip(image + rng.normal(0.0, noise, size=image.shape), 0.0, 1.0)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(masks)
