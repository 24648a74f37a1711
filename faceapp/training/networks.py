"""Networks trained here, and transfer-learning helpers for the converted dlib ResNet.

:class:`CompactFaceNet` (architecture ``compact_cnn``) is a small CNN trained from scratch: it
takes the same 150x150 aligned chip and normalisation as dlib's ResNet (so the same chips,
template and detection caches serve both), halves it with a 2x2 average pool (an anti-aliased
downscale, identical at training and inference), then five 3x3 conv/BN/ReLU layers (32, 64,
128, 256, 256 channels at 38, 38, 19, 9, 9 pixels) with max-pooling between, global average
pooling and a 128-d linear head: about 1.0 M parameters and 0.13 GFLOPs per chip.

Like every embedder of the package it exposes ``forward_features`` / ``forward_head`` and
``forward(x) = F.normalize(head(features(x)))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CompactFaceNet", "compact_cnn", "DLIB_STAGE_BLOCKS", "freeze_dlib_stages", "param_groups"]


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CompactFaceNet(nn.Module):
    """150x150 normalised chip -> 128-d unit embedding (see the module docstring)."""

    def __init__(self, *, embedding_dim: int = 128, width: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        w = int(width)
        self.features = nn.Sequential(
            _conv_bn(3, w, stride=2),  # 75 -> 38
            _conv_bn(w, 2 * w),
            nn.MaxPool2d(2),  # 19
            _conv_bn(2 * w, 4 * w),
            nn.MaxPool2d(2),  # 9
            _conv_bn(4 * w, 8 * w),
            _conv_bn(8 * w, 8 * w),
        )
        self.num_features = 8 * w
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, embedding_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 150, 150)`` -> ``(N, 8 * width)`` pooled features."""
        x = F.avg_pool2d(x, 2)
        return self.features(x).mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward_head(self.forward_features(x)), dim=1)


def compact_cnn(**kwargs) -> CompactFaceNet:
    return CompactFaceNet(**kwargs)


#: dlib ResNet: how many residual blocks each stage has (stage 0 is the stem conv).
DLIB_STAGE_BLOCKS = (3, 4, 3, 3, 1)


def freeze_dlib_stages(model: nn.Module, stages: int) -> list[str]:
    """Freeze the stem and the first ``stages`` residual stages of a DlibResNet (0 = only the
    stem when ``stages`` >= 0; -1 = nothing). Returns the names of the frozen parameters."""
    frozen: list[str] = []
    if stages < 0:
        return frozen
    n_blocks = sum(DLIB_STAGE_BLOCKS[:stages])
    for name, p in model.named_parameters():
        is_stem = name.startswith(("conv1.", "affine1."))
        is_early = name.startswith("blocks.") and int(name.split(".")[1]) < n_blocks
        if is_stem or is_early:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


#: SFace: its stages, each ending where the next strided depthwise convolution starts (stage 0,
#: the stem: conv_1 and the first separable pair at 112x112; then 56, 28, 14 and 7 pixels).
SFACE_STAGES = (
    ("conv_1", "conv_2_dw", "conv_2"),
    ("conv_3_dw", "conv_3", "conv_4_dw", "conv_4"),
    ("conv_5_dw", "conv_5", "conv_6_dw", "conv_6"),
    ("conv_7_dw", "conv_7", *(f"conv_{k}{s}" for k in range(8, 13) for s in ("_dw", ""))),
    ("conv_13_dw", "conv_13", "conv_14_dw", "conv_14"),
)


def freeze_sface_stages(model: nn.Module, stages: int) -> list[str]:
    """Freeze SFace's stem and its first ``stages`` stages (:data:`SFACE_STAGES`; 0 = only the
    stem, -1 = nothing, 4 = every convolution: only bn1, fc and fc_bn train). Returns the names
    of the frozen parameters."""
    frozen: list[str] = []
    if stages < 0:
        return frozen
    if stages >= len(SFACE_STAGES):
        raise ValueError(f"SFace has stages 0..{len(SFACE_STAGES) - 1} (got {stages})")
    layers = {name for stage in SFACE_STAGES[: stages + 1] for name in stage}
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] == "features" and parts[1] in layers:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def param_groups(model: nn.Module, lr: float, *, backbone_lr_mult: float = 1.0, weight_decay: float = 0.0) -> list[dict]:
    """Trainable parameters in two groups: the head (``fc.``) at ``lr`` and the rest of the
    trainable backbone at ``lr * backbone_lr_mult`` (transfer learning: a lower rate where the
    pretrained features are)."""
    head, body = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if name.startswith("fc.") else body).append(p)
    groups = []
    if body:
        groups.append({"params": body, "lr": lr * backbone_lr_mult, "weight_decay": weight_decay, "name": "backbone"})
    if head:
        groups.append({"params": head, "lr": lr, "weight_decay": weight_decay, "name": "head"})
    return groups
