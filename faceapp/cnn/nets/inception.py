"""The Inception module and GoogLeNet (Szegedy et al., 2014, "Going deeper with convolutions").

Instead of choosing a filter size, an Inception module applies 1x1, 3x3 and 5x5 convolutions
and a 3x3 max pool side by side ("same" sizes) and stacks their outputs along the channels.
1x1 "bottleneck" convolutions before the 3x3 and 5x5 (and after the pool) keep the cost
down: for 28x28x192 -> 5x5 same -> 28x28x32, 120M multiplications become 2.4M + 10.0M with a
16-channel bottleneck (see :mod:`faceapp.cnn.nets.cost`).

GoogLeNet stacks nine modules (3a-5b) with two auxiliary classifiers ("side branches") on
4a and 4d that predict the label from the middle of the network; their losses, weighted 0.3,
are added during training. This is the paper's network: convolutions with biases, ReLU,
optional local response normalisation, true 5x5 branches. (torchvision's GoogLeNet adds
batch norm and uses 3x3 in the "5x5" branch, hence its 6.6M instead of about 7.0M.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from faceapp.cnn.nets._base import Network
from faceapp.cnn.nets._registry import register

__all__ = [
    "InceptionModule",
    "InceptionAux",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "GOOGLENET_MODULES",
    "googlenet",
    "googlenet_loss",
]


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
        nn.ReLU(inplace=True),
    )


class InceptionModule(nn.Module):
    """One Inception module: four "same" branches concatenated along the channels.

    Args:
        in_channels: channels of the input.
        ch1x1: filters of the 1x1 branch.
        ch3x3red, ch3x3: bottleneck (1x1) and 3x3 filters of the second branch.
        ch5x5red, ch5x5: bottleneck (1x1) and 5x5 filters of the third branch.
        pool_proj: 1x1 filters after the 3x3 / stride-1 max pool.

    Output channels: ch1x1 + ch3x3 + ch5x5 + pool_proj; height and width are kept.
    """

    def __init__(
        self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = _conv_relu(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(_conv_relu(in_channels, ch3x3red, 1), _conv_relu(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(_conv_relu(in_channels, ch5x5red, 1), _conv_relu(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv_relu(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: AVG-POOL 5x5 s3 (to 4x4) -> CONV 1x1, 128 -> FC 1024 -> dropout 0.7 -> FC."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))  # = 5x5 / stride 3 on the 14x14 maps of a 224 input
        self.conv = _conv_relu(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


#: The paper's Table 1: (name, in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
GOOGLENET_MODULES: list[tuple[str, int, int, int, int, int, int, int]] = [
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]


class GoogLeNetOutputs(NamedTuple):
    """What GoogLeNet returns while training with auxiliary classifiers: three sets of logits."""

    logits: torch.Tensor
    aux1: torch.Tensor  # from inception 4a
    aux2: torch.Tensor  # from inception 4d


class GoogLeNet(Network):
    """GoogLeNet (Inception v1) for 224x224 inputs.

    In training mode with ``aux_logits=True``, ``forward`` returns :class:`GoogLeNetOutputs`;
    otherwise (and always in eval mode) it returns the main logits only.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        dropout: float = 0.4,
        local_response_norm: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.aux_logits = aux_logits

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75) if local_response_norm else nn.Identity()

        self.stem = nn.Sequential(
            _conv_relu(in_channels, 64, 7, stride=2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            lrn(),
            _conv_relu(64, 64, 1),
            _conv_relu(64, 192, 3),
            lrn(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        modules = {name: InceptionModule(*args) for name, *args in GOOGLENET_MODULES}
        self.stage3 = nn.Sequential(
            modules["inception3a"], modules["inception3b"], nn.MaxPool2d(3, stride=2, ceil_mode=True)
        )
        self.stage4a = modules["inception4a"]
        self.stage4bcd = nn.Sequential(modules["inception4b"], modules["inception4c"], modules["inception4d"])
        self.stage4e = nn.Sequential(modules["inception4e"], nn.MaxPool2d(3, stride=2, ceil_mode=True))
        self.stage5 = nn.Sequential(modules["inception5a"], modules["inception5b"])
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> (N, 1024, 7, 7)."""
        x = self.stage4a(self.stage3(self.stem(x)))
        return self.stage5(self.stage4e(self.stage4bcd(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:  # type: ignore[override]
        if not (self.training and self.aux_logits):
            return self.forward_head(self.forward_features(x))
        x4a = self.stage4a(self.stage3(self.stem(x)))
        x4d = self.stage4bcd(x4a)
        logits = self.forward_head(self.stage5(self.stage4e(x4d)))
        assert self.aux1 is not None and self.aux2 is not None
        return GoogLeNetOutputs(logits, self.aux1(x4a), self.aux2(x4d))


def googlenet_loss(
    outputs: torch.Tensor | GoogLeNetOutputs, target: torch.Tensor, *, aux_weight: float = 0.3
) -> torch.Tensor:
    """Cross-entropy of the main logits plus ``aux_weight`` times that of each auxiliary classifier."""
    if isinstance(outputs, GoogLeNetOutputs):
        return F.cross_entropy(outputs.logits, target) + aux_weight * (
            F.cross_entropy(outputs.aux1, target) + F.cross_entropy(outputs.aux2, target)
        )
    return F.cross_entropy(outputs, target)


@register("googlenet")
def googlenet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = True,
    dropout: float = 0.4,
    local_response_norm: bool = True,
) -> GoogLeNet:
    """GoogLeNet with (by default) its two auxiliary classifiers."""
    return GoogLeNet(
        num_classes=num_classes,
        in_channels=in_channels,
        aux_logits=aux_logits,
        dropout=dropout,
        local_response_norm=local_response_norm,
    )
