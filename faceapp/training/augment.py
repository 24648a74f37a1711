"""Batched, on-device data augmentation for aligned face chips (torch; CPU and CUDA alike).

One call augments a whole batch ``(B, 3, H, W)`` of float RGB values in 0..255 where it lies,
with one random draw per image from a seeded ``torch.Generator``:

- geometry, as a single affine warp per image (``affine_grid`` + bilinear ``grid_sample``,
  borders replicated like the aligner's ``BORDER_REPLICATE``): mirroring (probability
  ``flip``), a random crop resized back to full size (zoom in by ``1/scale`` with scale drawn in
  ``crop_scale``, and a shift of up to ``max_shift`` of the side), and a small rotation
  (uniform in +-``max_rotation`` degrees);
- colour: brightness, contrast and saturation factors (uniform in ``1 +- value``), a per-channel
  colour shift (uniform in +-``color_shift`` levels), and AlexNet's PCA colour augmentation
  (Krizhevsky et al. 2012): ``+ sum_i alpha_i * lambda_i * v_i`` with ``alpha_i ~ N(0, pca_std)``
  and ``(lambda_i, v_i)`` the eigenvalues/vectors of the RGB covariance of the training chips
  (:func:`rgb_pca`), so colours change along the directions in which faces' colours vary.

The course toolkit ``faceapp.cnn.augment`` does the same operations one NumPy image at a time
(with keypoints); for training, per-batch warps on the GPU are what keeps the GPU busy, so the
operations are written again here in torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["AugmentConfig", "BatchAugmenter", "rgb_pca"]


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5  # probability of mirroring
    crop_scale: tuple[float, float] = (0.85, 1.0)  # side of the random crop, fraction of the chip
    max_shift: float = 0.05  # crop centre shift, fraction of the side
    max_rotation: float = 8.0  # degrees
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    color_shift: float = 8.0  # levels of 0..255 per channel
    pca_std: float = 0.1  # AlexNet: 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(0.0, (1.0, 1.0), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def rgb_pca(chips: np.ndarray, *, max_pixels: int = 2_000_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (3,) and eigenvectors (3, 3, columns) of the RGB covariance of ``chips``
    (N, H, W, 3) uint8, in 0..255 units; a seeded sample of at most ``max_pixels`` pixels."""
    px = np.asarray(chips).reshape(-1, 3)
    if len(px) > max_pixels:
        px = px[np.random.default_rng(seed).choice(len(px), max_pixels, replace=False)]
    cov = np.cov(px.astype(np.float64), rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    return np.sqrt(np.clip(vals, 0, None)).astype(np.float32), vecs.astype(np.float32)


class BatchAugmenter:
    """Random augmentation of (B, 3, H, W) float batches in 0..255 (see the module docstring).

    ``pca``: the ``(eigenvalues, eigenvectors)`` of :func:`rgb_pca` (eigenvalues as standard
    deviations in 0..255 units); without it the PCA colour step is skipped.
    """

    def __init__(self, config: AugmentConfig | None = None, *, pca: tuple[np.ndarray, np.ndarray] | None = None,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.config = config or AugmentConfig()
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.pca = None
        if pca is not None:
            self.pca = (torch.as_tensor(pca[0], dtype=torch.float32, device=self.device),
                        torch.as_tensor(pca[1], dtype=torch.float32, device=self.device))

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.generator, device=self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        b = x.shape[0]
        x = x.float()
        # geometry: output pixel (normalised coords) -> input coords
        flip = torch.where(torch.rand(b, generator=self.generator, device=self.device) < c.flip, -1.0, 1.0)
        scale = self._u(b, *c.crop_scale)
        ang = self._u(b, -c.max_rotation, c.max_rotation) * (math.pi / 180.0)
        tx = self._u(b, -c.max_shift, c.max_shift) * 2.0
        ty = self._u(b, -c.max_shift, c.max_shift) * 2.0
        if (c.flip > 0) or c.crop_scale != (1.0, 1.0) or c.max_rotation > 0 or c.max_shift > 0:
            cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
            theta = torch.stack([
                torch.stack([cos * flip, -sin, tx], 1),
                torch.stack([sin * flip, cos, ty], 1),
            ], 1)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        # colour
        if c.brightness > 0:
            x = x * self._u(b, 1 - c.brightness, 1 + c.brightness).view(b, 1, 1, 1)
        if c.contrast > 0:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * self._u(b, 1 - c.contrast, 1 + c.contrast).view(b, 1, 1, 1) + mean
        if c.saturation > 0:
            gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
            x = (x - gray) * self._u(b, 1 - c.saturation, 1 + c.saturation).view(b, 1, 1, 1) + gray
        if c.color_shift > 0:
            x = x + self._u(b * 3, -c.color_shift, c.color_shift).view(b, 3, 1, 1)
        if self.pca is not None and c.pca_std > 0:
            vals, vecs = self.pca
            alpha = torch.randn(b, 3, generator=self.generator, device=self.device) * c.pca_std
            shift = (alpha * vals) @ vecs.T  # (B, 3): sum_i alpha_i lambda_i v_i
            x = x + shift.view(b, 3, 1, 1)
        return x.clamp(0.0, 255.0)
