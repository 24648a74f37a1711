"""VGG-16 and VGG-19 (Simonyan and Zisserman, 2015).

"CONV = 3x3 filter, s = 1, same; MAX-POOL = 2x2, s = 2", doubling the channels 64 -> 128
-> 256 -> 512 while halving height and width, then FC 4096, FC 4096, softmax 1000.
VGG-16 has 138,357,544 parameters ("138M"); VGG-19 adds three convolutions (143,667,240).

The module layout (``features``, ``avgpool``, ``classifier`` with the same indices) is
torchvision's, so a torchvision VGG state dict loads into these networks unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register

__all__ = ["VGG", "VGG_CONFIGS", "vgg16", "vgg19"]

#: Channels of each 3x3 convolution, "M" for a 2x2 max pool.
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(Network):
    """A VGG network from a configuration list; 224x224 inputs give a 7x7x512 feature map."""

    def __init__(
        self,
        config: list[int | str],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        hidden_features: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, hidden_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, hidden_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> (N, 512, 7, 7)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


@register("vgg16")
def vgg16(*, num_classes: int = 1000, in_channels: int = 3, hidden_features: int = 4096, dropout: float = 0.5) -> VGG:
    """VGG-16: 13 convolutions and 3 fully connected layers, 138,357,544 parameters by default."""
    return VGG(
        VGG_CONFIGS["vgg16"],
        num_classes=num_classes,
        in_channels=in_channels,
        hidden_features=hidden_features,
        dropout=dropout,
    )


@register("vgg19")
def vgg19(*, num_classes: int = 1000, in_channels: int = 3, hidden_features: int = 4096, dropout: float = 0.5) -> VGG:
    """VGG-19: 16 convolutions and 3 fully connected layers, 143,667,240 parameters by default."""
    return VGG(
        VGG_CONFIGS["vgg19"],
        num_classes=num_classes,
        in_channels=in_channels,
        hidden_features=hidden_features,
        dropout=dropout,
    )
