"""MobileNet v1 (Howard et al., 2017) and v2 (Sandler et al., 2018), for low compute.

v1 replaces normal convolutions by *depthwise separable* ones: a depthwise f x f convolution
(one filter per channel) then a pointwise 1 x 1 convolution that mixes channels. The cost
ratio to a normal convolution is 1/n_c' + 1/f^2, about 1/9 for 3x3 filters and many output
channels (:mod:`faceapp.cnn.nets.cost` has the notes' 2,160 vs 672 example).

v2's *bottleneck* block adds an expansion first and a residual connection:
expansion (1x1, n -> t n, ReLU6) -> depthwise (3x3, ReLU6) -> projection (1x1, t n -> n',
linear), with the skip connection when the stride is 1 and n == n'. Memory between blocks
stays small (n channels) while the block computes on the rich t n channels.

Parameter counts (1000 classes): v1 4,231,976 (the paper's 4.2M), v2 3,504,872 (3.4M plus
the classifier; equal to torchvision's ``mobilenet_v2``).
"""

from __future__ import annotations

import torch
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register

__all__ = [
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "MobileNetV1",
    "MobileNetV2",
    "make_divisible",
    "mobilenet_v1",
    "mobilenet_v2",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never more than 10% down."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 (stride s) + BN + ReLU, then pointwise 1x1 + BN + ReLU (MobileNet v1)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = _conv_bn_act(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = _conv_bn_act(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


#: MobileNet v1 body: (output channels, stride) of the 13 depthwise separable layers.
MOBILENET_V1_LAYERS: list[tuple[int, int]] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


class MobileNetV1(Network):
    """MobileNet v1: CONV 3x3 s2, 32, then 13 depthwise separable layers, AVG-POOL, FC.

    ``width_mult`` is the paper's width multiplier alpha (thinner layers, cost ~ alpha^2).
    """

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.001
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        channels = max(8, int(32 * width_mult))
        layers: list[nn.Module] = [_conv_bn_act(in_channels, channels, 3, stride=2)]
        for out, stride in MOBILENET_V1_LAYERS:
            out = max(8, int(out * width_mult))
            layers.append(DepthwiseSeparableConv(channels, out, stride))
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> (N, 1024, 7, 7)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))


class InvertedResidual(nn.Module):
    """MobileNet v2 bottleneck: expansion -> depthwise -> projection, plus a skip when shapes match.

    Attributes ``expand`` (absent when ``expand_ratio == 1``), ``depthwise`` and ``project``
    are the three steps; ``use_residual`` says whether the input is added back.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = _conv_bn_act(in_channels, hidden, 1, activation=nn.ReLU6) if expand_ratio != 1 else nn.Identity()
        self.depthwise = _conv_bn_act(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6)
        self.project = _conv_bn_act(hidden, out_channels, 1, activation=None)  # linear bottleneck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


#: MobileNet v2 body: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_SETTINGS: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2(Network):
    """MobileNet v2: CONV 3x3 s2, 32, 17 bottleneck blocks, CONV 1x1 1280, AVG-POOL, FC."""

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        channels = make_divisible(32 * width_mult)
        last_channels = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [_conv_bn_act(in_channels, channels, 3, stride=2, activation=nn.ReLU6)]
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(_conv_bn_act(channels, last_channels, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        self.num_features = last_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> (N, 1280, 7, 7)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


@register("mobilenet_v1")
def mobilenet_v1(
    *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.001
) -> MobileNetV1:
    """MobileNet v1 with width multiplier ``width_mult`` (4,231,976 parameters at 1.0)."""
    return MobileNetV1(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, dropout=dropout)


@register("mobilenet_v2")
def mobilenet_v2(
    *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
) -> MobileNetV2:
    """MobileNet v2 with width multiplier ``width_mult`` (3,504,872 parameters at 1.0)."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, dropout=dropout)
