"""EfficientNet (Tan and Le, 2019): MobileNet v2 blocks, scaled in depth, width and resolution together.

Which of depth d, width w and resolution r to grow for more (or less) compute? Compound
scaling grows all three with one coefficient phi:

    d = alpha^phi,  w = beta^phi,  r = gamma^phi,  with alpha * beta^2 * gamma^2 ~ 2

so each step of phi roughly doubles the FLOPs; the paper's grid search gave alpha = 1.2,
beta = 1.1, gamma = 1.15 (:func:`compound_scaling`). The published B1-B7 round these by
hand (:data:`EFFICIENTNET_PARAMS`).

Blocks are MBConv: MobileNet v2's expansion -> depthwise -> projection with SiLU ("swish"),
squeeze-and-excitation after the depthwise step, and stochastic depth on the skip path.
EfficientNet-B0 has 5,288,548 parameters (torchvision's ``efficientnet_b0`` has the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register
from faceapp.cnn.nets.mobilenet import make_divisible

__all__ = [
    "CompoundScaling",
    "compound_scaling",
    "EFFICIENTNET_PARAMS",
    "SqueezeExcitation",
    "MBConv",
    "EfficientNet",
    "efficientnet",
]


@dataclass(frozen=True)
class CompoundScaling:
    """Multipliers for one phi: depth (layers), width (channels) and input resolution (pixels)."""

    depth: float
    width: float
    resolution: int


def compound_scaling(
    phi: float, *, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15, base_resolution: int = 224
) -> CompoundScaling:
    """d = alpha^phi, w = beta^phi, r = base_resolution * gamma^phi (rounded to a pixel)."""
    return CompoundScaling(depth=alpha**phi, width=beta**phi, resolution=round(base_resolution * gamma**phi))


#: The published variants: (width multiplier, depth multiplier, resolution, dropout).
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}

#: B0's stages: expansion, kernel, stride, input channels, output channels, layers.
B0_STAGES: list[tuple[int, int, int, int, int, int]] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


class SqueezeExcitation(nn.Module):
    """Channel attention: global average -> 1x1 (squeeze) -> SiLU -> 1x1 (excite) -> sigmoid -> scale."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero the whole residual branch for a random fraction p of the examples."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


def _conv_bn_silu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1, activation: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01),
    ]
    if activation:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: expansion -> depthwise -> squeeze-excitation -> projection (+ skip)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        *,
        se_ratio: float = 0.25,
        stochastic_depth_prob: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.stochastic_depth_prob = stochastic_depth_prob
        self.expand = _conv_bn_silu(in_channels, hidden, 1) if hidden != in_channels else nn.Identity()
        self.depthwise = _conv_bn_silu(hidden, hidden, kernel_size, stride, groups=hidden)
        self.se = SqueezeExcitation(hidden, max(1, int(in_channels * se_ratio)))
        self.project = _conv_bn_silu(hidden, out_channels, 1, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.use_residual:
            return x + _drop_path(out, self.stochastic_depth_prob, self.training)
        return out


class EfficientNet(Network):
    """EfficientNet with width and depth multipliers (B0 at 1.0 and 1.0).

    ``resolution`` records the input size the variant is meant for (the third scaling axis);
    the network itself accepts any size, thanks to global pooling.
    """

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        resolution: int = 224,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
        stochastic_depth_prob: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.resolution = resolution
        stem_channels = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [_conv_bn_silu(in_channels, stem_channels, 3, stride=2)]
        repeats = [int(math.ceil(n * depth_mult)) for *_, n in B0_STAGES]
        total, block_id = sum(repeats), 0
        channels = stem_channels
        for (expand, kernel, stride, _, out, _), n in zip(B0_STAGES, repeats):
            out = make_divisible(out * width_mult)
            stage: list[nn.Module] = []
            for i in range(n):
                stage.append(
                    MBConv(
                        channels,
                        out,
                        kernel,
                        stride if i == 0 else 1,
                        expand,
                        stochastic_depth_prob=stochastic_depth_prob * block_id / total,
                    )
                )
                channels, block_id = out, block_id + 1
            layers.append(nn.Sequential(*stage))
        last_channels = 4 * channels
        layers.append(_conv_bn_silu(channels, last_channels, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        self.num_features = last_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, r, r) -> (N, 1280 w, r / 32, r / 32)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


def efficientnet(
    *,
    phi: float = 0.0,
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float = 0.2,
    alpha: float = 1.2,
    beta: float = 1.1,
    gamma: float = 1.15,
) -> EfficientNet:
    """EfficientNet scaled from B0 by compound scaling with coefficient ``phi`` (phi = 0 is B0)."""
    scaling = compound_scaling(phi, alpha=alpha, beta=beta, gamma=gamma)
    return EfficientNet(
        width_mult=scaling.width,
        depth_mult=scaling.depth,
        resolution=scaling.resolution,
        num_classes=num_classes,
        in_channels=in_channels,
        dropout=dropout,
    )


def _published(name: str):
    width, depth, resolution, dropout = EFFICIENTNET_PARAMS[name]

    def builder(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = dropout) -> EfficientNet:
        return EfficientNet(
            width_mult=width,
            depth_mult=depth,
            resolution=resolution,
            num_classes=num_classes,
            in_channels=in_channels,
            dropout=dropout,
        )

    builder.__name__ = name
    builder.__doc__ = f"{name}: width x{width}, depth x{depth}, {resolution}x{resolution} inputs."
    return builder


for _name in EFFICIENTNET_PARAMS:
    register(_name)(_published(_name))
