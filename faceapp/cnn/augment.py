"""Data augmentation (course week 2): geometric distortions and colour changes, keypoints kept consistent.

Every function takes an image as a NumPy array (H, W, C) or (H, W), uint8 in [0, 255] or float
in [0, 1], and optional keypoints (N, 2) as (x, y) pixel coordinates (x to the right, y down,
pixel centres at integers), and returns :class:`Augmented` (image, keypoints): the image has
the input's dtype, and the keypoints are moved exactly as the image content under them (an
empty (0, 2) array when none were given).

Common ones: :func:`mirror` (with a left/right swap map for landmarks) and
:func:`random_crop`. Less common, smaller gains: :func:`rotate`, :func:`shear`,
:func:`local_warp`. Colour: :func:`color_shift` (e.g. +20 R, -20 G, +20 B) and
:func:`pca_color` (AlexNet's PCA colour augmentation: shifts along the principal components
of the pixels' colours, so an image with a lot of red and blue and little green changes red
and blue much more than green). :class:`Augmenter` chains them with random parameters, to
run in the data-loading workers while the model trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "Augmented",
    "FIVE_POINT_FLIP",
    "flip_map_from_pairs",
    "visible",
    "mirror",
    "random_crop",
    "affine",
    "rotate",
    "shear",
    "local_warp",
    "color_shift",
    "rgb_pca",
    "pca_color",
    "Augmenter",
]

#: Swap map for five face landmarks ordered (left eye, right eye, nose, left mouth corner,
#: right mouth corner): after mirroring, the left eye is where the right eye was.
FIVE_POINT_FLIP: tuple[int, ...] = (1, 0, 2, 4, 3)


class Augmented(NamedTuple):
    """An augmented image and its keypoints (N, 2), (x, y) pixels, float64."""

    image: np.ndarray
    keypoints: np.ndarray


def flip_map_from_pairs(num_keypoints: int, pairs: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """A mirror swap map from (left, right) index pairs; unpaired keypoints (nose, chin) map to themselves."""
    mapping = list(range(num_keypoints))
    for a, b in pairs:
        mapping[a], mapping[b] = b, a
    return tuple(mapping)


def visible(keypoints: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which keypoints (N, 2) lie inside an image of ``shape`` (H, W, ...): a boolean (N,) mask."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    height, width = shape[:2]
    return (
        (keypoints[:, 0] >= -0.5)
        & (keypoints[:, 0] < width - 0.5)
        & (keypoints[:, 1] >= -0.5)
        & (keypoints[:, 1] < height - 0.5)
    )


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if image.dtype != np.uint8 and image.dtype.kind != "f":
        raise ValueError(f"expected a uint8 or float image, got dtype {image.dtype}")
    return image


def _keypoints(keypoints: np.ndarray | Sequence[Sequence[float]] | None) -> np.ndarray:
    if keypoints is None:
        return np.zeros((0, 2))
    points = np.array(keypoints, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"keypoints must be (N, 2) (x, y) pixel coordinates, got shape {points.shape}")
    return points


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return values.astype(dtype, copy=False)


def _value_range(image: np.ndarray) -> float:
    return 255.0 if image.dtype == np.uint8 else 1.0


def mirror(
    image: np.ndarray, keypoints: np.ndarray | None = None, *, flip_indices: Sequence[int] | None = None
) -> Augmented:
    """Flip left-right: x -> W - 1 - x.

    ``flip_indices[i]`` is the keypoint that becomes keypoint i, so that "left eye" still
    means the left eye in the mirrored image (see :data:`FIVE_POINT_FLIP`). Without it the
    keypoints keep their order.
    """
    image = _check_image(image)
    points = _keypoints(keypoints)
    flipped = np.ascontiguousarray(image[:, ::-1])
    points = points.copy()
    points[:, 0] = image.shape[1] - 1 - points[:, 0]
    if flip_indices is not None:
        if sorted(flip_indices) != list(range(len(points))):
            raise ValueError(f"flip_indices must be a permutation of range({len(points)}), got {tuple(flip_indices)}")
        points = points[list(flip_indices)]
    return Augmented(flipped, points)


def random_crop(
    image: np.ndarray, size: tuple[int, int], keypoints: np.ndarray | None = None, *, rng: np.random.Generator
) -> Augmented:
    """A random (height, width) = ``size`` window of the image; keypoints move with it (and may leave it)."""
    image = _check_image(image)
    height, width = size
    if not (0 < height <= image.shape[0] and 0 < width <= image.shape[1]):
        raise ValueError(f"crop {size} does not fit in an image of {image.shape[:2]}")
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    return Augmented(image[top : top + height, left : left + width].copy(), _keypoints(keypoints) - [left, top])


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, fill: float) -> np.ndarray:
    """Sample ``image`` at float coordinates; ``fill`` outside. Returns float64 of shape xs.shape (+ C)."""
    height, width = image.shape[:2]
    pixels = image.astype(np.float64).reshape(height, width, -1)
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    out = np.zeros((*xs.shape, pixels.shape[2]))
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yi, xi = y0 + dy, x0 + dx
            inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
            values = np.where(inside[..., None], pixels[yi.clip(0, height - 1), xi.clip(0, width - 1)], fill)
            out += wy * wx * values
    return out.reshape(*xs.shape, *image.shape[2:])


def affine(image: np.ndarray, matrix: np.ndarray, keypoints: np.ndarray | None = None, *, fill: float = 0) -> Augmented:
    """Apply the 2x3 ``matrix`` that maps input (x, y, 1) to output (x', y'); same image size.

    Each output pixel is sampled (bilinearly) from the inverse-mapped input position, so no
    holes appear; ``fill`` is used where that position is outside the image.
    """
    image = _check_image(image)
    forward = np.vstack([np.asarray(matrix, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    warped = _to_dtype(_bilinear(image, src_x, src_y, fill), image.dtype)
    points = _keypoints(keypoints)
    moved = points @ forward[:2, :2].T + forward[:2, 2]
    return Augmented(warped, moved)


def _centre(image: np.ndarray, center: tuple[float, float] | None) -> tuple[float, float]:
    if center is not None:
        return float(center[0]), float(center[1])
    return (image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2


def rotate(
    image: np.ndarray,
    angle: float,
    keypoints: np.ndarray | None = None,
    *,
    center: tuple[float, float] | None = None,
    fill: float = 0,
) -> Augmented:
    """Rotate the content by ``angle`` degrees counter-clockwise (as seen on screen) about ``center`` (x, y).

    The default centre is the middle of the image; the size is kept and corners are filled.
    """
    cx, cy = _centre(_check_image(image), center)
    a = np.deg2rad(angle)
    c, s = np.cos(a), np.sin(a)
    # y points down, so counter-clockwise on screen is x' = c dx + s dy, y' = -s dx + c dy.
    matrix = np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy]])
    return affine(image, matrix, keypoints, fill=fill)


def shear(
    image: np.ndarray,
    shear_x: float = 0.0,
    shear_y: float = 0.0,
    keypoints: np.ndarray | None = None,
    *,
    center: tuple[float, float] | None = None,
    fill: float = 0,
) -> Augmented:
    """Shear about ``center``: x' = x + shear_x (y - c_y), y' = y + shear_y (x - c_x)."""
    cx, cy = _centre(_check_image(image), center)
    matrix = np.array([[1.0, shear_x, -shear_x * cy], [shear_y, 1.0, -shear_y * cx]])
    return affine(image, matrix, keypoints, fill=fill)


def _upsample(control: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear interpolation of a (g + 1, g + 1, 2) control grid spread over an (H, W) image."""
    g = control.shape[0] - 1
    rows = np.linspace(0, g, height)
    cols = np.linspace(0, g, width)
    r0, c0 = np.minimum(rows.astype(int), g - 1), np.minimum(cols.astype(int), g - 1)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    top = control[r0][:, c0] * (1 - fc) + control[r0][:, c0 + 1] * fc
    bottom = control[r0 + 1][:, c0] * (1 - fc) + control[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def local_warp(
    image: np.ndarray,
    keypoints: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    strength: float = 0.3,
    grid: int = 4,
    fill: float = 0,
) -> Augmented:
    """A smooth random deformation: the image is bent locally, not moved as a whole.

    Random displacements, uniform in [-strength, strength] grid cells, are drawn on a
    (grid + 1) x (grid + 1) lattice and interpolated to a displacement d(p) per pixel; the
    output at p is the input at p + d(p). Keypoints move to the q with q + d(q) = k (found
    by fixed-point iteration, which converges because strength < 0.5 keeps the map invertible).
    """
    image = _check_image(image)
    if not 0 <= strength < 0.5:
        raise ValueError(f"strength must be in [0, 0.5) to keep the warp invertible, got {strength}")
    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")
    height, width = image.shape[:2]
    cell = np.array([(width - 1) / grid, (height - 1) / grid])
    control = rng.uniform(-strength, strength, size=(grid + 1, grid + 1, 2)) * cell  # (dx, dy)
    displacement = _upsample(control, height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    warped = _to_dtype(_bilinear(image, xs + displacement[..., 0], ys + displacement[..., 1], fill), image.dtype)

    points = _keypoints(keypoints)
    moved = points.copy()
    for _ in range(50):
        # Beyond the border the field is continued by its border values.
        x = np.clip(moved[:, 0], 0, width - 1)
        y = np.clip(moved[:, 1], 0, height - 1)
        moved = points - _bilinear(displacement, x, y, 0.0)
    return Augmented(warped, moved)


def color_shift(image: np.ndarray, shifts: Sequence[float], keypoints: np.ndarray | None = None) -> Augmented:
    """Add one offset per channel (in the image's units, e.g. (+20, -20, +20) for uint8) and clip."""
    image = _check_image(image)
    if image.ndim != 3 or len(shifts) != image.shape[2]:
        raise ValueError(f"need one shift per channel of an (H, W, C) image; got {len(shifts)} for shape {image.shape}")
    shifted = np.clip(image.astype(np.float64) + np.asarray(shifts, dtype=np.float64), 0, _value_range(image))
    return Augmented(_to_dtype(shifted, image.dtype), _keypoints(keypoints))


def rgb_pca(images: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of the RGB values of one or more images, in [0, 1] units.

    Returns eigenvalues (3,), largest first, and eigenvectors as the columns of a (3, 3) array.
    AlexNet computed them once over the whole training set.
    """
    arrays = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    pixels = np.concatenate([_check_image(a).reshape(-1, 3) / _value_range(a) for a in arrays])
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
    order = np.argsort(eigenvalues)[::-1]
    return np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]


def pca_color(
    image: np.ndarray,
    keypoints: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    std: float = 0.1,
    eigenvalues: np.ndarray | None = None,
    eigenvectors: np.ndarray | None = None,
) -> Augmented:
    """AlexNet's PCA colour augmentation: add [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T to every pixel.

    p_i and l_i are the eigenvectors and eigenvalues of the RGB covariance (this image's
    unless given, e.g. from :func:`rgb_pca` over the training set), a_i ~ N(0, std), drawn
    once per image. The shift is largest along the colours the image varies most in.
    """
    image = _check_image(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"PCA colour augmentation needs an (H, W, 3) image, got shape {image.shape}")
    if eigenvalues is None or eigenvectors is None:
        eigenvalues, eigenvectors = rgb_pca(image)
    alphas = rng.normal(0.0, std, size=3)
    delta = np.asarray(eigenvectors) @ (alphas * np.asarray(eigenvalues))
    return color_shift(image, delta * _value_range(image), keypoints)


@dataclass(frozen=True)
class Augmenter:
    """Random augmentation for training: each call draws new parameters from ``rng``.

    Order: mirror, rotation + shear (one affine map), local warp, crop, colour shift, PCA
    colour. Set a probability or magnitude to 0 to switch a step off.
    """

    # Probability of a left-right flip.
    mirror_probability: float = 0.5
    # Keypoint swap map for mirroring (see FIVE_POINT_FLIP); None keeps the order.
    flip_indices: tuple[int, ...] | None = None
    # Rotation angle drawn uniformly in [-max_rotation, max_rotation] degrees.
    max_rotation: float = 10.0
    # Shear factors drawn uniformly in [-max_shear, max_shear] (0.1 = 10 % per unit of height).
    max_shear: float = 0.05
    # Probability and strength (grid cells, < 0.5) of a local warp.
    warp_probability: float = 0.0
    warp_strength: float = 0.2
    # (height, width) of a random crop; None keeps the whole image.
    crop_size: tuple[int, int] | None = None
    # Per-channel colour offsets drawn uniformly in [-max_color_shift, max_color_shift] of the value range.
    max_color_shift: float = 0.05
    # Standard deviation of AlexNet's PCA colour weights; 0 switches it off.
    pca_std: float = 0.1

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray | None = None, *, rng: np.random.Generator
    ) -> Augmented:
        out = Augmented(_check_image(image), _keypoints(keypoints))
        if rng.random() < self.mirror_probability:
            out = mirror(*out, flip_indices=self.flip_indices)
        if self.max_rotation or self.max_shear:
            out = self._rotate_and_shear(out, rng)
        if self.warp_probability and rng.random() < self.warp_probability:
            out = local_warp(*out, rng=rng, strength=self.warp_strength)
        if self.crop_size is not None:
            out = random_crop(out.image, self.crop_size, out.keypoints, rng=rng)
        if out.image.ndim == 3 and out.image.shape[2] == 3:
            if self.max_color_shift:
                shifts = rng.uniform(-self.max_color_shift, self.max_color_shift, size=3) * _value_range(out.image)
                out = color_shift(out.image, shifts, out.keypoints)
            if self.pca_std:
                out = pca_color(*out, rng=rng, std=self.pca_std)
        return out

    def _rotate_and_shear(self, out: Augmented, rng: np.random.Generator) -> Augmented:
        angle = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation))
        shx, shy = rng.uniform(-self.max_shear, self.max_shear, size=2)
        cx, cy = _centre(out.image, None)
        c, s = np.cos(angle), np.sin(angle)
        linear = np.array([[c, s], [-s, c]]) @ np.array([[1.0, shx], [shy, 1.0]])
        translation = np.array([cx, cy]) - linear @ np.array([cx, cy])
        return affine(out.image, np.column_stack([linear, translation]), out.keypoints)
