"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012) as drawn in the course, on one GPU.

227x227x3 -> CONV 11x11 s4, 96 -> 55x55x96 -> MAX-POOL 3x3 s2 -> 27x27x96
-> CONV 5x5 same, 256 -> 27x27x256 -> MAX-POOL 3x3 s2 -> 13x13x256
-> CONV 3x3 same, 384 -> CONV 3x3 same, 384 -> CONV 3x3 same, 256 -> 13x13x256
-> MAX-POOL 3x3 s2 -> 6x6x256 = 9216 -> FC 4096 -> FC 4096 -> softmax 1000.

62,378,344 parameters ("about 60 million"; the paper's two-GPU version, whose layers 2, 4
and 5 only see half of the channels, has 60,965,224). ReLU throughout; local response
normalisation, which the course notes "is not much effective", is optional.
"""

from __future__ import annotations

import torch
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register

__all__ = ["AlexNet", "alexnet"]


class AlexNet(Network):
    """AlexNet for 227x227 inputs; ``hidden_features`` is the width of the two FC layers."""

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        hidden_features: int = 4096,
        dropout: float = 0.5,
        local_response_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0) if local_response_norm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            lrn(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            lrn(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))  # identity at 227x227; lets other sizes through
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, hidden_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, hidden_features),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_features, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 227, 227) -> (N, 256, 6, 6)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


@register("alexnet")
def alexnet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    hidden_features: int = 4096,
    dropout: float = 0.5,
    local_response_norm: bool = False,
) -> AlexNet:
    """The course's single-GPU AlexNet (62,378,344 parameters with the defaults)."""
    return AlexNet(
        num_classes=num_classes,
        in_channels=in_channels,
        hidden_features=hidden_features,
        dropout=dropout,
        local_response_norm=local_response_norm,
    )
