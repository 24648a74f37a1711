"""Sliding windows, and their convolutional implementation (Sermanet et al., 2014, OverFeat).

Sliding windows: crop every window of the image and run a classifier trained on closely
cropped images on each crop. Correct, but every crop is a separate forward pass.

The convolutional implementation turns the classifier's fully connected layers into
convolutions (an FC layer on a 5x5x16 volume with 400 units is a 5x5 convolution with 400
filters; the next FC layers are 1x1 convolutions). Run on the whole image, the network then
computes every window at once, sharing the overlapping work: on a 16x16x3 image, the
course's 14x14 classifier gives a 2x2x4 output, one prediction per window at stride 2 (the
pooling stride); on 28x28x3 it gives 8x8x4. :class:`WindowClassifier` is that example.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WindowClassifier", "fc_to_conv", "sliding_windows", "sliding_window_scores"]


def fc_to_conv(linear: nn.Linear, in_shape: tuple[int, int, int]) -> nn.Conv2d:
    """A convolution that computes ``linear`` on a (C, h, w) volume flattened in torch's order.

    The filter size is h x w; on a larger input it slides, giving the FC layer's output at
    every position. Use ``in_shape=(C, 1, 1)`` for FC layers after the first (1x1 convolutions).
    """
    channels, height, width = in_shape
    if channels * height * width != linear.in_features:
        raise ValueError(f"{linear.in_features} inputs cannot be a {in_shape} volume")
    conv = nn.Conv2d(channels, linear.out_features, kernel_size=(height, width), bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, channels, height, width))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv.to(linear.weight.device, linear.weight.dtype)


class WindowClassifier(nn.Module):
    """The course's window classifier: 14x14x3 -> CONV 5x5, 16 -> MAX-POOL 2x2 -> FC 400 -> FC 400 -> FC 4.

    ``forward`` takes crops (N, C, window, window) and returns logits (N, num_classes).
    :meth:`convolutional` returns the equivalent fully convolutional network.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        window: int = 14,
        num_classes: int = 4,
        conv_channels: int = 16,
        kernel_size: int = 5,
        hidden: int = 400,
    ) -> None:
        super().__init__()
        self.window = window
        self.trunk = nn.Sequential(nn.Conv2d(in_channels, conv_channels, kernel_size), nn.ReLU(), nn.MaxPool2d(2))
        side = (window - kernel_size + 1) // 2
        if side < 1:
            raise ValueError(f"a {window}x{window} window is too small for a {kernel_size}x{kernel_size} filter")
        self.trunk_shape = (conv_channels, side, side)
        self.fc1 = nn.Linear(conv_channels * side * side, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    @property
    def stride(self) -> int:
        """Distance in pixels between neighbouring windows of the convolutional version (the pooling stride)."""
        return 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.trunk(x), 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    def convolutional(self) -> nn.Sequential:
        """The same classifier with its FC layers as convolutions: (N, C, H, W) -> (N, classes, rows, cols)."""
        hidden = self.fc1.out_features
        return nn.Sequential(
            self.trunk,
            fc_to_conv(self.fc1, self.trunk_shape),
            nn.ReLU(),
            fc_to_conv(self.fc2, (hidden, 1, 1)),
            nn.ReLU(),
            fc_to_conv(self.fc3, (hidden, 1, 1)),
        )


def sliding_windows(image: torch.Tensor, window: int, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Every window x window crop of ``image`` (C, H, W) at ``stride``, row by row.

    Returns the crops (rows * cols, C, window, window) and the grid shape (rows, cols), with
    rows = floor((H - window) / stride) + 1.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {tuple(image.shape)}")
    patches = image.unfold(1, window, stride).unfold(2, window, stride)  # (C, rows, cols, window, window)
    rows, cols = patches.shape[1:3]
    return patches.permute(1, 2, 0, 3, 4).reshape(rows * cols, image.shape[0], window, window), (rows, cols)


@torch.no_grad()
def sliding_window_scores(
    classifier: nn.Module, image: torch.Tensor, window: int, stride: int, batch_size: int = 256
) -> torch.Tensor:
    """Run ``classifier`` on every crop separately: scores (rows, cols, num_classes)."""
    crops, (rows, cols) = sliding_windows(image, window, stride)
    scores = torch.cat([classifier(batch) for batch in crops.split(batch_size)])
    return scores.reshape(rows, cols, -1)
