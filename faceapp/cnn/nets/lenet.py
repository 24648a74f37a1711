"""LeNet-5 as in the course's "neural network example" (LeCun et al., 1998, adapted).

    Input              (32, 32, 3)      0
    CONV1 (f=5, s=1)   (28, 28, 6)    456
    POOL1              (14, 14, 6)      0
    CONV2 (f=5, s=1)   (10, 10, 16) 2,416
    POOL2              (5, 5, 16)       0
    FC3                (120,)      48,120
    FC4                (84,)       10,164
    Softmax            (10,)          850

62,006 parameters ("about 60,000"). The original used sigmoid/tanh and average pooling;
the course's modern reading uses ReLU and max pooling. Both are options.
"""

from __future__ import annotations

import torch
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register

__all__ = ["LeNet5", "lenet5"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
_POOLS = {"max": nn.MaxPool2d, "average": nn.AvgPool2d}


class LeNet5(Network):
    """CONV - POOL - CONV - POOL - FC - FC - FC(softmax) on 32x32 images; logits out."""

    def __init__(
        self, *, num_classes: int = 10, in_channels: int = 3, activation: str = "relu", pool: str = "max"
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}")
        if pool not in _POOLS:
            raise ValueError(f"unknown pooling {pool!r}; use one of {sorted(_POOLS)}")
        act, pool_layer = _ACTIVATIONS[activation], _POOLS[pool]
        self.num_classes = num_classes
        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(in_channels, 6, kernel_size=5))
        self.features.add_module("act1", act())
        self.features.add_module("pool1", pool_layer(kernel_size=2, stride=2))
        self.features.add_module("conv2", nn.Conv2d(6, 16, kernel_size=5))
        self.features.add_module("act2", act())
        self.features.add_module("pool2", pool_layer(kernel_size=2, stride=2))
        self.head = nn.Sequential()
        self.head.add_module("flatten", nn.Flatten())
        self.head.add_module("fc3", nn.Linear(16 * 5 * 5, 120))
        self.head.add_module("act3", act())
        self.head.add_module("fc4", nn.Linear(120, 84))
        self.head.add_module("act4", act())
        self.head.add_module("output", nn.Linear(84, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 32, 32) -> (N, 16, 5, 5)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 16, 5, 5) -> logits (N, num_classes); softmax belongs to the loss."""
        return self.head(features)


@register("lenet5")
def lenet5(*, num_classes: int = 10, in_channels: int = 3, activation: str = "relu", pool: str = "max") -> LeNet5:
    """LeNet-5 for 32x32 inputs; ``activation`` "relu"/"tanh"/"sigmoid", ``pool`` "max"/"average"."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, activation=activation, pool=pool)
