"""Classification with localisation, and landmark detection: target vectors and their loss.

The course's target for one object in an image, with classes 1 pedestrian, 2 car,
3 motorcycle (background is p_c = 0)::

    y = [p_c, b_x, b_y, b_h, b_w, c_1, c_2, c_3]

b_x, b_y is the box centre and b_h, b_w its height and width, as fractions of the image
((0, 0) is the upper-left corner, (1, 1) the lower-right). When there is no object
(p_c = 0) the other entries are "don't care": they are stored as 0 and the loss ignores them:

    L(y_hat, y) = sum_i (y_hat_i - y_i)^2   if y_1 = p_c = 1
                = (y_hat_1 - y_1)^2         if y_1 = 0

Landmarks are [p, l_1x, l_1y, ..., l_Kx, l_Ky], the same loss; the landmark order must be
the same in every image (which is why mirroring must swap left and right landmarks, see
:func:`faceapp.cnn.augment.mirror`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "PC",
    "BX",
    "BY",
    "BH",
    "BW",
    "CLASSES",
    "localization_target",
    "localization_loss",
    "landmark_target",
    "landmark_loss",
    "decode_landmarks",
]

#: Positions in the course's target vector.
PC, BX, BY, BH, BW = 0, 1, 2, 3, 4
CLASSES = slice(5, None)


def localization_target(box: Sequence[float] | None, class_index: int | None, num_classes: int) -> torch.Tensor:
    """The target vector (5 + num_classes,) for one image.

    ``box`` is (b_x, b_y, b_h, b_w) as fractions of the image and ``class_index`` is 0-based
    (0 for c_1); ``box=None`` means no object: p_c = 0 and the rest 0 ("don't care").
    """
    y = torch.zeros(5 + num_classes)
    if box is None:
        return y
    if class_index is None or not 0 <= class_index < num_classes:
        raise ValueError(f"class_index must be in [0, {num_classes}), got {class_index}")
    y[PC] = 1.0
    y[BX : BW + 1] = torch.as_tensor(box, dtype=y.dtype)
    y[5 + class_index] = 1.0
    return y


def _masked_squared_error(y_hat: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    if y_hat.shape != y.shape:
        raise ValueError(f"prediction {tuple(y_hat.shape)} and target {tuple(y.shape)} differ in shape")
    squared = (y_hat - y) ** 2
    present = y[..., :1]  # p_c: 1 keeps every term, 0 keeps only the first
    mask = torch.cat((torch.ones_like(present), present.expand_as(squared[..., 1:])), dim=-1)
    per_example = (squared * mask).sum(dim=-1)
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ValueError(f"unknown reduction {reduction!r}; use 'mean', 'sum' or 'none'")


def localization_loss(y_hat: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Squared error on every entry when there is an object, on p_c alone when there is none.

    ``y_hat`` and ``y`` are (..., 5 + C); the per-example losses are averaged ("mean", the
    cost J), summed ("sum") or returned ("none").
    """
    return _masked_squared_error(y_hat, y, reduction)


def landmark_target(
    landmarks: torch.Tensor | Sequence[Sequence[float]] | None,
    image_shape: tuple[int, int],
    num_landmarks: int | None = None,
) -> torch.Tensor:
    """[p, l_1x, l_1y, ..., l_Kx, l_Ky] from (K, 2) pixel coordinates (x, y) in an image (H, W).

    Coordinates become fractions of the width and height. ``landmarks=None`` (no face) gives
    p = 0 and zeros, which needs ``num_landmarks``.
    """
    height, width = image_shape
    if landmarks is None:
        if num_landmarks is None:
            raise ValueError("num_landmarks is needed when there are no landmarks")
        return torch.zeros(1 + 2 * num_landmarks)
    points = torch.as_tensor(landmarks, dtype=torch.float32)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"landmarks must be (K, 2) pixel coordinates, got shape {tuple(points.shape)}")
    scaled = points / torch.tensor([width, height], dtype=points.dtype, device=points.device)
    return torch.cat((torch.ones(1, dtype=points.dtype, device=points.device), scaled.reshape(-1)))


def decode_landmarks(y: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """(K, 2) pixel coordinates from a landmark vector (the inverse of :func:`landmark_target`)."""
    height, width = image_shape
    return y[1:].reshape(-1, 2) * torch.tensor([width, height], dtype=y.dtype, device=y.device)


def landmark_loss(y_hat: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Squared error on p and all landmarks when there is a face, on p alone when there is none."""
    return _masked_squared_error(y_hat, y, reduction)
