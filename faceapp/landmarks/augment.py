"""Face crops and keypoint-consistent augmentation for the landmark network.

Every crop is an affine warp of the source image given by a 2x3 matrix ``M`` that maps source
pixels to crop pixels (pixel centres at integer coordinates, as in ``cv2.warpAffine``); the
points go through the same ``M``, so image and points never disagree. Augmentation draws a
random ``M`` around the face box's crop (rotation, scale, translation, and a left-right mirror,
which also swaps the point labels by :data:`~faceapp.landmarks.points.MIRROR`), then changes the
pixels only (brightness, contrast, saturation, grey, blur, noise, a random occluding patch).

Batched in torch so the same code runs on the CPU or a GPU; :func:`crop_matrix` and
:func:`crop_image` (OpenCV, in :mod:`faceapp.landmarks.geometry`) are what inference uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from faceapp.landmarks.geometry import (  # noqa: F401  (re-exported: the crop geometry lives there)
    CROP_MARGIN,
    CROP_SHIFT_Y,
    apply_affine,
    crop_image,
    crop_matrix,
    invert_affine,
)
from faceapp.landmarks.points import MIRROR

@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random changes (each drawn uniformly per sample)."""

    rotate_deg: float = 25.0  # in-plane rotation, +-
    scale: float = 0.12  # crop size x (1 +- scale): MTCNN boxes vary about that much
    shift: float = 0.07  # crop centre moved by up to this fraction of the crop side
    mirror: float = 0.5  # probability of a left-right flip (labels swapped)
    brightness: float = 0.35  # pixel values x (1 +- brightness)
    contrast: float = 0.35
    saturation: float = 0.4
    grey: float = 0.1  # probability of a grey image
    blur: float = 0.25  # probability of a Gaussian blur, sigma 0.5-2.5 crop pixels
    noise: float = 0.25  # probability of Gaussian noise, sigma 2-12 (0..255 scale)
    occlude: float = 0.25  # probability of a random patch (10-35% of the side) of flat colour


def random_matrices(
    base: torch.Tensor, size: int, config: AugmentConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop matrices around ``base`` ``(N, 2, 3)`` (each :func:`crop_matrix` of a box).
    Returns the matrices and a bool ``(N,)`` of which ones mirror."""
    n = base.shape[0]
    dev, dt = base.device, base.dtype

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device="cpu", dtype=torch.float64).to(dev, dt) * (hi - lo) + lo

    angle = u(-config.rotate_deg, config.rotate_deg) * (math.pi / 180)
    scale = u(1 - config.scale, 1 + config.scale)
    tx, ty = u(-config.shift, config.shift) * size, u(-config.shift, config.shift) * size
    flip = torch.rand(n, generator=generator).to(dev) < config.mirror
    c = (size - 1) / 2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    sx = torch.where(flip, -torch.ones_like(cos), torch.ones_like(cos))
    # crop' = T(c + t) . R(angle) S(scale) . Flip . T(-c) . crop
    a = torch.zeros(n, 3, 3, device=dev, dtype=dt)
    a[:, 0, 0], a[:, 0, 1] = cos * sx, -sin
    a[:, 1, 0], a[:, 1, 1] = sin * sx, cos
    a[:, 0, 2] = c + tx - (cos * sx * c - sin * c)
    a[:, 1, 2] = c + ty - (sin * sx * c + cos * c)
    a[:, 2, 2] = 1
    b = torch.cat([base, torch.tensor([0, 0, 1], device=dev, dtype=dt).expand(n, 1, 3)], dim=1)
    return (a @ b)[:, :2], flip


def warp_batch(images: torch.Tensor, matrices: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, 3, H, W)`` float images through ``(N, 2, 3)`` image->crop matrices -> ``(N, 3, size, size)``.
    Bilinear, black outside the image; the same sampling as :func:`crop_image` with OpenCV."""
    n, _, h, w = images.shape
    m = matrices.to(torch.float64)
    full = torch.cat([m, torch.tensor([0, 0, 1], dtype=m.dtype, device=m.device).expand(n, 1, 3)], dim=1)
    inv = torch.linalg.inv(full)[:, :2]  # crop -> image pixels
    # grid_sample (align_corners=True) wants normalised coords: -1 = pixel 0, +1 = pixel W-1;
    # compose: crop normalised -> crop pixels -> image pixels -> image normalised.
    to_px = torch.tensor([[(size - 1) / 2, 0, (size - 1) / 2], [0, (size - 1) / 2, (size - 1) / 2], [0, 0, 1]],
                         dtype=m.dtype, device=m.device)
    to_norm = torch.tensor([[2 / (w - 1), 0, -1], [0, 2 / (h - 1), -1], [0, 0, 1]], dtype=m.dtype, device=m.device)
    inv_full = torch.cat([inv, torch.tensor([0, 0, 1], dtype=m.dtype, device=m.device).expand(n, 1, 3)], dim=1)
    theta = (to_norm @ inv_full @ to_px)[:, :2].to(images.dtype)
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def warp_points(points: torch.Tensor, matrices: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, 68, 2)`` image points -> crop points; mirrored samples get their labels swapped."""
    out = points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]
    if flip is not None and bool(flip.any()):
        perm = torch.as_tensor(np.array(MIRROR), device=points.device)
        out = torch.where(flip[:, None, None], out[:, perm], out)
    return out


def photometric(crops: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random pixel changes of ``(N, 3, S, S)`` float crops in 0..255 (returned clamped to 0..255)."""
    n, _, s, _ = crops.shape
    dev = crops.device

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return (torch.rand(n, *shape, generator=generator) * (hi - lo) + lo).to(dev)

    def p(prob: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) < prob).to(dev)[:, None, None, None]

    x = crops
    grey = x.mean(dim=1, keepdim=True)
    sat = u(1 - config.saturation, 1 + config.saturation, 1, 1, 1)
    x = grey + (x - grey) * sat
    x = torch.where(p(config.grey), x.mean(dim=1, keepdim=True).expand_as(x), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(1 - config.contrast, 1 + config.contrast, 1, 1, 1) + mean
    x = x * u(1 - config.brightness, 1 + config.brightness, 1, 1, 1)
    # blur: one sigma per batch, applied to the chosen samples
    sigma = float(torch.rand(1, generator=generator)) * 2.0 + 0.5
    radius = int(math.ceil(2.5 * sigma))
    k = torch.exp(-((torch.arange(-radius, radius + 1, dtype=x.dtype) / sigma) ** 2) / 2)
    k = (k / k.sum()).to(dev)
    blurred = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    blurred = F.conv2d(F.pad(blurred, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    x = torch.where(p(config.blur), blurred, x)
    noise = torch.randn(x.shape, device=dev, dtype=x.dtype) * u(2.0, 12.0, 1, 1, 1)  # torch's seeded global RNG
    x = torch.where(p(config.noise), x + noise, x)
    # occluding patch
    side = u(0.10, 0.35, 1, 1) * s
    cx, cy = u(0, 1, 1, 1) * s, u(0, 1, 1, 1) * s
    ys = torch.arange(s, device=dev, dtype=x.dtype).view(1, s, 1)
    xs = torch.arange(s, device=dev, dtype=x.dtype).view(1, 1, s)
    inside = ((xs - cx).abs() < side / 2) & ((ys - cy).abs() < side / 2)
    colour = u(0, 255, 3, 1, 1)
    x = torch.where(p(config.occlude) & inside[:, None], colour, x)
    return x.clamp(0, 255)
