"""The cost functions of neural style transfer (Gatys et al., 2015), as in the course.

Activations are torch feature maps (1, n_C, n_H, n_W) or (n_C, n_H, n_W) of one image.

* content: J_content(C, G) = 1 / (4 n_H n_W n_C) * sum (a(C) - a(G))^2 (the programming
  assignment's normalisation; the lecture writes 1/2 ||a(C) - a(G)||^2, the same up to a
  constant that alpha absorbs);
* style matrix (Gram matrix): G_kk' = sum_ij a_ijk a_ijk', how correlated channels k and k' are;
* per-layer style: J_style^[l](S, G) = 1 / (2 n_H n_W n_C)^2 * sum_kk' (G^(S)_kk' - G^(G)_kk')^2;
* style over layers: J_style(S, G) = sum_l lambda^[l] J_style^[l](S, G);
* total: J(G) = alpha J_content(C, G) + beta J_style(S, G).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["content_cost", "gram_matrix", "layer_style_cost", "style_cost", "total_cost"]


def _single(a: torch.Tensor) -> torch.Tensor:
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"expected the activations of one image, got a batch of {a.shape[0]}")
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"expected a feature map (n_C, n_H, n_W), got shape {tuple(a.shape)}")
    return a


def content_cost(a_C: torch.Tensor, a_G: torch.Tensor) -> torch.Tensor:
    """1 / (4 n_H n_W n_C) * sum of (a_C - a_G)^2 over the layer's activations."""
    a_C, a_G = _single(a_C), _single(a_G)
    if a_C.shape != a_G.shape:
        raise ValueError(f"content {tuple(a_C.shape)} and generated {tuple(a_G.shape)} activations differ in shape")
    return ((a_C - a_G) ** 2).sum() / (4 * a_C.numel())


def gram_matrix(A: torch.Tensor) -> torch.Tensor:
    """The style matrix A A^T (n_C, n_C).

    ``A`` is the unrolled activations (n_C, n_H * n_W), as in the course, or a feature map
    (n_C, n_H, n_W) / (1, n_C, n_H, n_W), which is unrolled first.
    """
    if A.ndim != 2:
        A = _single(A).flatten(1)
    return A @ A.T


def layer_style_cost(a_S: torch.Tensor, a_G: torch.Tensor) -> torch.Tensor:
    """1 / (2 n_H n_W n_C)^2 * sum of (Gram(a_S) - Gram(a_G))^2 for one layer."""
    a_S, a_G = _single(a_S), _single(a_G)
    if a_S.shape != a_G.shape:
        raise ValueError(f"style {tuple(a_S.shape)} and generated {tuple(a_G.shape)} activations differ in shape")
    return ((gram_matrix(a_S) - gram_matrix(a_G)) ** 2).sum() / (2 * a_S.numel()) ** 2


def style_cost(
    style_activations: Mapping[str, torch.Tensor],
    generated_activations: Mapping[str, torch.Tensor],
    weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """sum over layers of lambda^[l] J_style^[l]; equal weights 1 / L when ``weights`` is None."""
    layers = list(weights) if weights is not None else list(style_activations)
    if not layers:
        raise ValueError("no style layers")
    lambdas = weights if weights is not None else {name: 1.0 / len(layers) for name in layers}
    return sum(
        lambdas[name] * layer_style_cost(style_activations[name], generated_activations[name]) for name in layers
    )  # type: ignore[return-value]


def total_cost(J_content: torch.Tensor, J_style: torch.Tensor, alpha: float = 10.0, beta: float = 40.0) -> torch.Tensor:
    """J(G) = alpha J_content + beta J_style (the assignment's alpha = 10, beta = 40)."""
    return alpha * J_content + beta * J_style
