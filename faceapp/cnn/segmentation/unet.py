"""U-Net (Ronneberger et al., 2015) for semantic segmentation: a class for every pixel.

Contracting path: blocks of two 3x3 "same" convolutions with ReLU, each followed by a 2x2
max pool, halving height and width and doubling the channels. Expanding path: a 2x2 stride-2
transposed convolution doubles height and width and halves the channels; the result is
concatenated with the contracting block of the same size (the *skip connection*, which
brings back the fine spatial detail lost by pooling) and goes through two 3x3 convolutions.
A 1x1 convolution turns the last feature map into per-class scores: (N, num_classes, H, W).

The original paper uses "valid" convolutions and crops the skip connections; like the
course's assignment, this one uses "same" convolutions so that the output has the input's
size (which must be divisible by 2^depth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DoubleConv", "UNet", "pixel_loss", "pixel_accuracy", "majority_baseline"]


class DoubleConv(nn.Module):
    """(3x3 same convolution -> [batch norm] -> ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNet(nn.Module):
    """U-Net with ``depth`` poolings; channels ``base_channels * 2^level``.

    ``forward_features`` returns the last expanding-path feature map (N, base_channels, H, W)
    and ``forward_head`` the 1x1 convolution's per-pixel logits (N, num_classes, H, W).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.depth = depth
        self.num_classes = num_classes
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList()
        channels = in_channels
        for width in widths[:-1]:
            self.encoder.append(DoubleConv(channels, width, batch_norm=batch_norm))
            channels = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], batch_norm=batch_norm)
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.upsamplers.append(nn.ConvTranspose2d(width * 2, width, kernel_size=2, stride=2))
            self.decoder.append(DoubleConv(width * 2, width, batch_norm=batch_norm))  # skip + upsampled
        self.head = nn.Conv2d(base_channels, num_classes, kernel_size=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.depth
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"height and width must be divisible by {factor}, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.upsamplers, self.decoder, reversed(skips)):
            x = block(torch.cat((skip, up(x)), dim=1))
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> per-pixel class logits (N, num_classes, H, W)."""
        return self.forward_head(self.forward_features(x))


def pixel_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-pixel softmax cross-entropy, averaged over all pixels: logits (N, K, H, W), masks (N, H, W)."""
    return F.cross_entropy(logits, masks)


def pixel_accuracy(logits: torch.Tensor, masks: torch.Tensor) -> float:
    """Fraction of pixels whose most likely class is the true class."""
    return float((logits.argmax(dim=1) == masks).float().mean())


def majority_baseline(masks: torch.Tensor) -> float:
    """Pixel accuracy of always predicting the most frequent class (the bar a model must beat)."""
    counts = torch.bincount(masks.flatten())
    return float(counts.max() / masks.numel())
