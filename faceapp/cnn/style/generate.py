"""The style-transfer optimisation: gradient descent on the generated image's pixels.

1. Start G from the content image plus uniform noise (the assignment's choice; pure noise
   works too but takes longer).
2. Repeat: J(G) = alpha J_content(C, G) + beta J_style(S, G) with activations of a fixed,
   pretrained network; G := G - lr dJ/dG (Adam); keep pixels in [0, 1].

Any convolutional network works as the backbone: pass the ``nn.Module`` and the names of the
layers to use (``dict(backbone.named_modules())`` keys). The backbone is frozen while the
generator runs and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceapp.cnn.style.cost import content_cost, style_cost, total_cost
from faceapp.cnn.style.features import FeatureExtractor

__all__ = ["StyleProgress", "image_to_tensor", "tensor_to_image", "run_style_transfer"]


@dataclass(frozen=True)
class StyleProgress:
    """The state after one gradient step; ``image`` is a CPU copy of G, (3, H, W) in [0, 1]."""

    step: int
    total: float
    content: float
    style: float
    image: torch.Tensor


def image_to_tensor(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """An image as a float32 tensor (3, H, W) in [0, 1].

    Accepts tensors (3, H, W) or (1, 3, H, W) in [0, 1], and NumPy (H, W, 3) arrays: uint8 in
    [0, 255] or floats in [0, 1].
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) array, got shape {image.shape}")
        scale = 255.0 if image.dtype == np.uint8 else 1.0
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / scale).permute(2, 0, 1).contiguous()
    tensor = image.detach().float()
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(image.shape)}")
    return tensor


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    array = image_to_tensor(tensor).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (array * 255.0 + 0.5).astype(np.uint8)


def run_style_transfer(
    content: torch.Tensor | np.ndarray,
    style: torch.Tensor | np.ndarray,
    backbone: nn.Module,
    layers: Sequence[str],
    *,
    content_layer: str | None = None,
    style_weights: Mapping[str, float] | None = None,
    alpha: float = 10.0,
    beta: float = 40.0,
    steps: int = 200,
    lr: float = 0.01,
    noise: float = 0.25,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> Iterator[StyleProgress]:
    """Generate an image with the content of ``content`` and the style of ``style``.

    Args:
        content, style: images (see :func:`image_to_tensor`); the style image is resized to
            the content image's size.
        backbone: any network; it is put in eval mode and frozen while this runs.
        layers: the style layers (names in ``backbone.named_modules()``).
        content_layer: the content layer; the last style layer by default.
        style_weights: lambda per style layer; equal weights summing to 1 by default.
        alpha, beta: weights of the content and style costs.
        steps, lr: number of Adam steps on the pixels and their learning rate.
        noise: G starts as content + uniform noise in [-noise, noise], clipped to [0, 1].
        normalize: applied to images before the backbone (e.g. ``imagenet_normalize``).
        device: where to compute; the backbone's device by default.
        is_cancelled: checked before every step; stops the generator when it returns True.

    Yields:
        A :class:`StyleProgress` after every step.
    """
    if not layers:
        raise ValueError("at least one style layer is needed")
    content_layer = content_layer if content_layer is not None else layers[-1]
    if style_weights is not None and set(style_weights) != set(layers):
        raise ValueError(f"style_weights must name exactly the style layers {list(layers)}")
    if device is None:
        parameter = next(backbone.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    normalize = normalize if normalize is not None else (lambda x: x)

    C = image_to_tensor(content).to(device)[None]
    S = image_to_tensor(style).to(device)[None]
    if S.shape[-2:] != C.shape[-2:]:
        S = F.interpolate(S, size=C.shape[-2:], mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    G = (C + (torch.rand(C.shape, generator=generator) * 2 - 1).to(device) * noise).clamp(0, 1).requires_grad_()

    was_training = backbone.training
    requires_grad = [p.requires_grad for p in backbone.parameters()]
    backbone.eval().requires_grad_(False)
    extractor = FeatureExtractor(backbone, [*layers, content_layer])
    try:
        with torch.no_grad():
            a_C = extractor(normalize(C))[content_layer]
            style_activations = extractor(normalize(S))
            style_activations = {name: style_activations[name] for name in layers}
        weights = style_weights if style_weights is not None else {name: 1.0 / len(layers) for name in layers}
        optimizer = torch.optim.Adam([G], lr=lr)
        for step in range(1, steps + 1):
            if is_cancelled is not None and is_cancelled():
                return
            activations = extractor(normalize(G))
            J_content = content_cost(a_C, activations[content_layer])
            J_style = style_cost(style_activations, activations, weights)
            J = total_cost(J_content, J_style, alpha, beta)
            optimizer.zero_grad(set_to_none=True)
            J.backward()
            optimizer.step()
            with torch.no_grad():
                G.clamp_(0, 1)
            yield StyleProgress(step, J.item(), J_content.item(), J_style.item(), G.detach()[0].cpu().clone())
    finally:
        extractor.close()
        for parameter, flag in zip(backbone.parameters(), requires_grad):
            parameter.requires_grad_(flag)
        backbone.train(was_training)
