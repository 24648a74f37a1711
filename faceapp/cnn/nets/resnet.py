"""ResNet-50 (He et al., 2015) built from the course's identity and convolutional blocks.

A residual block adds its input back before the last activation, a[l+2] = g(z[l+2] + a[l]),
so learning the identity is easy and very deep networks train. The course's two blocks:

* :class:`IdentityBlock`: input and output have the same shape; the shortcut is the input;
* :class:`ConvolutionalBlock`: the shapes differ (more channels, stride s); the shortcut is a
  1x1 convolution with stride s and batch norm.

Each main path is 1x1 (F1) -> f x f "same" (F2) -> 1x1 (F3), with batch norm after every
convolution and ReLU after the first two and after the addition. ResNet-50:

    CONV 7x7 s2, 64 -> BN -> ReLU -> MAX-POOL 3x3 s2
    stage 2: conv block [64, 64, 256] s=1 + 2 identity blocks
    stage 3: conv block [128, 128, 512] s=2 + 3 identity blocks
    stage 4: conv block [256, 256, 1024] s=2 + 5 identity blocks
    stage 5: conv block [512, 512, 2048] s=2 + 2 identity blocks
    AVG-POOL -> FC

25,557,032 parameters ("about 25.6M"). As in the paper and the course, the stride sits on
the first 1x1 convolution (torchvision's "v1.5" moves it to the 3x3; the count is the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register

__all__ = ["IdentityBlock", "ConvolutionalBlock", "ResNet50", "resnet50"]


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class _Bottleneck(nn.Module):
    """The main path shared by both blocks: 1x1 (stride s) -> f x f same -> 1x1."""

    def __init__(self, in_channels: int, filters: Sequence[int], f: int, stride: int) -> None:
        super().__init__()
        F1, F2, F3 = filters
        self.conv1 = _conv_bn(in_channels, F1, 1, stride)
        self.conv2 = _conv_bn(F1, F2, f)
        self.conv3 = _conv_bn(F2, F3, 1)
        self.relu = nn.ReLU(inplace=True)

    def main_path(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)


class IdentityBlock(_Bottleneck):
    """Residual block whose shortcut is the input itself: a = ReLU(main_path(x) + x).

    ``filters = (F1, F2, F3)`` with ``F3 == in_channels``; ``f`` is the middle filter size.
    """

    def __init__(self, in_channels: int, filters: Sequence[int], f: int = 3) -> None:
        if filters[2] != in_channels:
            raise ValueError(f"an identity block must output its {in_channels} input channels, got F3={filters[2]}")
        super().__init__(in_channels, filters, f, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.main_path(x) + x)


class ConvolutionalBlock(_Bottleneck):
    """Residual block whose shortcut is CONV 1x1 (stride s) + BN, for a change of shape."""

    def __init__(self, in_channels: int, filters: Sequence[int], f: int = 3, stride: int = 2) -> None:
        super().__init__(in_channels, filters, f, stride)
        self.shortcut = _conv_bn(in_channels, filters[2], 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.main_path(x) + self.shortcut(x))


def _stage(in_channels: int, filters: Sequence[int], blocks: int, stride: int) -> nn.Sequential:
    layers: list[nn.Module] = [ConvolutionalBlock(in_channels, filters, 3, stride)]
    layers += [IdentityBlock(filters[2], filters, 3) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50(Network):
    """ResNet-50 for 224x224 inputs (any size from 32x32 works thanks to global pooling)."""

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.stage2 = _stage(64, (64, 64, 256), blocks=3, stride=1)
        self.stage3 = _stage(256, (128, 128, 512), blocks=4, stride=2)
        self.stage4 = _stage(512, (256, 256, 1024), blocks=6, stride=2)
        self.stage5 = _stage(1024, (512, 512, 2048), blocks=3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> (N, 2048, 7, 7)."""
        x = self.stem(x)
        return self.stage5(self.stage4(self.stage3(self.stage2(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(features), 1))


@register("resnet50")
def resnet50(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet50:
    """ResNet-50: 16 bottleneck blocks in four stages, 25,557,032 parameters by default."""
    return ResNet50(num_classes=num_classes, in_channels=in_channels)
