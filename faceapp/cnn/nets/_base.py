"""What every network in :mod:`faceapp.cnn.nets` shares: features and head, parameter counts."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Network", "count_parameters"]


class Network(nn.Module):
    """A classifier split into a convolutional trunk and a head (timm's convention).

    ``forward_features(x)`` maps images (N, C, H, W) to the trunk's last feature map;
    ``forward_head(features)`` pools and classifies it into logits (N, num_classes);
    ``forward(x) = forward_head(forward_features(x))``. Transfer learning freezes the trunk
    and replaces the head's last layer (see :mod:`faceapp.cnn.transfer`).
    """

    num_classes: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define forward_features (the convolutional trunk)")

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define forward_head (pooling and classifier)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; batch-norm running statistics are buffers, not counted).

    Works on modules built on the ``meta`` device, so the count of a 138M-parameter network
    needs no memory: ``with torch.device("meta"): count_parameters(build("vgg16"))``.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
