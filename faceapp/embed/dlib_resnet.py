"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network is the ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``: a 29-layer ResNet
(Davis King, 2017; weights released under CC0) that maps a 150x150 RGB face chip to a 128-d
vector in which two chips of the same person lie within Euclidean distance 0.6 of each other.

Input normalisation (dlib's ``input_rgb_image_sized<150>``): the chip is RGB, channel order
R, G, B, and each value becomes ``(pixel - mean) / 256`` with mean = (122.782, 117.001, 104.298)
(the means stored in the model file). :func:`normalize_chips` does exactly that; the network
itself takes the already normalised ``(N, 3, 150, 150)`` float tensor.

Layers, from the input (``k`` = channels, spatial size for a 150x150 chip in brackets):

- stem: conv 7x7 stride 2 no padding, 32 filters, with bias [72] -> affine -> ReLU ->
  max pool 3x3 stride 2 no padding [35];
- stage 1: 3 residual blocks of 32 [35];
- stage 2: 1 down block + 3 blocks of 64 [17];
- stage 3: 1 down block + 2 blocks of 128 [8];
- stage 4: 1 down block + 2 blocks of 256 [4];
- stage 5: 1 down block of 256 [2];
- global average pool -> 256 -> fully connected 128, no bias (the raw descriptor).

A residual block (dlib's ``ares``) is ``relu(x + affine(conv3x3(relu(affine(conv3x3(x))))))``
with stride-1 convolutions padded by 1. A down block (``ares_down``) has a stride-2 first
convolution with *no* padding (dlib pads a strided convolution by 0), and its shortcut is a
2x2/2 average pool of ``x``. The two branches of a down block may differ in shape: dlib's
``add_prev`` then adds them into a tensor of the larger size of each dimension, the missing
channels/rows/columns of either operand counting as zeros (the operands are aligned at
channel 0, row 0, column 0). That happens for channels in every down block (the shortcut has
half the channels) and for space in stages 4 and 5 (8x8 -> branch 3x3, shortcut 4x4;
4x4 -> branch 1x1, shortcut 2x2). :func:`_add_zero_padded` reproduces it.

"affine" is dlib's inference form of batch norm: ``y = gamma[c] * x + beta[c]`` per channel
(stored here as ``weight`` and ``bias``). dlib's convolutions are cross-correlations, like
PyTorch's, so the filters are used as stored.

``forward_head(forward_features(x))`` is dlib's output exactly (what
``face_recognition_model_v1.compute_face_descriptor`` returns); ``forward`` additionally scales
it to unit length so that distances are comparable with the other embedders of this package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "INPUT_SIZE",
    "EMBEDDING_DIM",
    "MEAN_RGB",
    "SCALE",
    "DlibResNet",
    "dlib_resnet",
    "normalize_chips",
]

INPUT_SIZE = 150
EMBEDDING_DIM = 128
MEAN_RGB = (122.782, 117.001, 104.298)
SCALE = 256.0


def normalize_chips(chips: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Turn RGB uint8 chips into the network's input, exactly as dlib's input layer does.

    ``chips``: ``(H, W, 3)`` or ``(N, H, W, 3)`` RGB values in 0..255 (uint8 or float).
    Returns a float32 ``(N, 3, H, W)`` tensor of ``(pixel - mean) / 256``.
    """
    t = chips if isinstance(chips, torch.Tensor) else torch.from_numpy(np.asarray(chips))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB chips, got shape {tuple(t.shape)}")
    t = t.to(torch.float32).permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN_RGB, dtype=torch.float32, device=t.device).view(1, 3, 1, 1)
    return ((t - mean) / SCALE).contiguous()


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` where a missing channel, row or column of either operand counts as 0 (dlib's add_prev)."""
    if a.shape == b.shape:
        return a + b
    c = max(a.shape[1], b.shape[1])
    h = max(a.shape[2], b.shape[2])
    w = max(a.shape[3], b.shape[3])

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Affine(nn.Module):
    """Per-channel ``weight * x + bias`` (dlib's ``affine`` layer in conv mode)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` (``down=False``) or ``ares_down`` (``down=True``) block."""

    def __init__(self, in_channels: int, out_channels: int, *, down: bool) -> None:
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding)
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.affine2 = Affine(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.affine1(self.conv1(x)))
        y = self.affine2(self.conv2(y))
        shortcut = F.avg_pool2d(x, 2, stride=2) if self.down else x
        return F.relu(_add_zero_padded(y, shortcut))


# (channels, number of blocks, first block is a down block) from the input to the output.
_STAGES: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False),
    (64, 4, True),
    (128, 3, True),
    (256, 3, True),
    (256, 1, True),
)


class DlibResNet(nn.Module):
    """dlib's 29-layer face ResNet: 150x150 RGB chip -> 128-d descriptor (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine1 = Affine(32)
        blocks: list[ResidualBlock] = []
        channels = 32
        for out_channels, count, first_down in _STAGES:
            for i in range(count):
                blocks.append(ResidualBlock(channels, out_channels, down=first_down and i == 0))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.num_features = channels
        self.fc = nn.Linear(channels, EMBEDDING_DIM, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 150, 150)`` normalised chips -> ``(N, 256)`` globally average-pooled features."""
        x = F.relu(self.affine1(self.conv1(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.blocks(x)
        return x.mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, 256)`` features -> ``(N, 128)`` raw descriptors (dlib's output, not unit length)."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 150, 150)`` normalised chips -> ``(N, 128)`` unit-length embeddings."""
        return F.normalize(self.forward_head(self.forward_features(x)), dim=1)


def dlib_resnet(
    *, weights_path: str | Path | None = None, map_location: str | torch.device = "cpu"
) -> DlibResNet:
    """Build :class:`DlibResNet`, loading a converted state dict from ``weights_path`` if given.

    The model is returned in eval mode. Checksums are checked by the weights spec, not here.
    """
    model = DlibResNet()
    if weights_path is not None:
        state = torch.load(Path(weights_path), map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    return model.eval()
