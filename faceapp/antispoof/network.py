"""MiniFASNet, the single-frame face anti-spoofing network of Minivision's Silent-Face-Anti-Spoofing,
rebuilt from its published description and the tensor shapes of its weights.

A MobileFaceNet-style body on an 80x80 BGR crop (pixel values 0..255, not rescaled):

- ``conv1``: 3x3 stride-2 convolution, batch norm, PReLU (80 -> 40);
- ``conv2_dw``: 3x3 depthwise convolution, batch norm, PReLU;
- ``conv_23``, ``conv_34``, ``conv_45``: downsampling *depthwise blocks* (40 -> 20 -> 10 -> 5);
- ``conv_3``, ``conv_4``, ``conv_5``: stages of residual depthwise blocks between them;
- ``conv_6_sep``: 1x1 convolution to 512 channels (batch norm, PReLU);
- ``conv_6_dw``: a 5x5 depthwise convolution over the whole 5x5 map, batch norm, no activation;
- ``linear`` (512 -> 128, no bias), ``bn`` (1-d batch norm): the 128-d feature;
- ``prob`` (128 -> 3, no bias): the class logits; class 1 is a live face, 0 and 2 are attacks.

A *depthwise block* is an inverted bottleneck: 1x1 convolution to an expansion width (batch norm,
PReLU), 3x3 depthwise convolution at that width (batch norm, PReLU; stride 2 in the downsampling
blocks), 1x1 projection back (batch norm, no activation). In a residual stage its input is added
to its output. In MiniFASNetV1SE the last block of each stage also carries squeeze-and-excitation
before the addition: global average pool, 1x1 convolution to a quarter of the channels (batch norm,
ReLU), 1x1 convolution back (batch norm, sigmoid), and the block's output is scaled by that gate.

The widths (the pruned channel counts of each released model) are not written here: they are read
from the weights (:meth:`MiniFASNetShape.from_state_dict`), so one class builds both MiniFASNetV2
and MiniFASNetV1SE. Module names follow the weights' keys so that a state dict loads strictly. The
Fourier-spectrum auxiliary head the original trains with is not part of the released weights and
is not needed for inference.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from faceapp.errors import WeightsError

STAGES = ("conv_3", "conv_4", "conv_5")
TRANSITIONS = ("conv_23", "conv_34", "conv_45")
NUM_CLASSES = 3
LIVE_CLASS = 1


class ConvBNAct(nn.Module):
    """Convolution (no bias), batch norm, then PReLU (``act=True``) or nothing."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class SqueezeExcite(nn.Module):
    """Channel gate: mean over the map -> 1x1 conv (c/r) -> BN -> ReLU -> 1x1 conv (c) -> BN -> sigmoid."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(reduced)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(dim=(2, 3), keepdim=True)
        g = torch.relu(self.bn1(self.fc1(g)))
        g = torch.sigmoid(self.bn2(self.fc2(g)))
        return x * g


class DepthwiseBlock(nn.Module):
    """1x1 expand -> 3x3 depthwise (``stride``) -> 1x1 project; plus the input when ``residual``."""

    def __init__(self, c_in: int, expand: int, c_out: int, *, stride: int = 1, residual: bool = False,
                 se_reduced: int | None = None) -> None:
        super().__init__()
        if residual and (stride != 1 or c_in != c_out):
            raise ValueError("a residual block keeps its size and width")
        self.residual = residual
        self.conv = ConvBNAct(c_in, expand)
        self.conv_dw = ConvBNAct(expand, expand, kernel=3, stride=stride, padding=1, groups=expand)
        self.project = ConvBNAct(expand, c_out, act=False)
        self.se_module = SqueezeExcite(c_out, se_reduced) if se_reduced else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class ResidualStage(nn.Module):
    def __init__(self, channels: int, blocks: tuple[tuple[int, int | None], ...]) -> None:
        super().__init__()
        self.model = nn.Sequential(*(
            DepthwiseBlock(channels, expand, channels, residual=True, se_reduced=se) for expand, se in blocks
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class MiniFASNetShape:
    """The widths of one released MiniFASNet (read from its weights).

    ``transitions[i]`` = (expansion, output channels) of downsampling block i; ``stages[i]`` = one
    (expansion, squeeze-excitation width or None) per residual block of stage i."""

    stem: int
    transitions: tuple[tuple[int, int], ...]
    stages: tuple[tuple[tuple[int, int | None], ...], ...]
    sep: int = 512
    final_kernel: int = 5
    embedding: int = 128
    classes: int = NUM_CLASSES

    @property
    def input_size(self) -> int:
        """The crop side the final depthwise convolution fits exactly (four stride-2 steps)."""
        return self.final_kernel * 16

    @property
    def has_se(self) -> bool:
        return any(se for stage in self.stages for _, se in stage)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> MiniFASNetShape:
        """Widths from a state dict's tensor shapes (keys without a ``module.`` prefix)."""
        try:
            stem = int(state["conv1.conv.weight"].shape[0])
            transitions = tuple(
                (int(state[f"{t}.conv.conv.weight"].shape[0]), int(state[f"{t}.project.conv.weight"].shape[0]))
                for t in TRANSITIONS
            )
            stages = []
            for s in STAGES:
                n = 1 + max(int(m.group(1)) for k in state if (m := re.match(rf"{s}\.model\.(\d+)\.", k)))
                blocks = []
                for i in range(n):
                    se_key = f"{s}.model.{i}.se_module.fc1.weight"
                    se = int(state[se_key].shape[0]) if se_key in state else None
                    blocks.append((int(state[f"{s}.model.{i}.conv.conv.weight"].shape[0]), se))
                stages.append(tuple(blocks))
            sep = int(state["conv_6_sep.conv.weight"].shape[0])
            final_kernel = int(state["conv_6_dw.conv.weight"].shape[-1])
            embedding, sep_in = (int(v) for v in state["linear.weight"].shape)
            classes = int(state["prob.weight"].shape[0])
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise WeightsError(f"these weights are not a MiniFASNet state dict ({exc!r} missing or malformed)") from None
        if sep_in != sep:
            raise WeightsError(f"MiniFASNet weights disagree: linear takes {sep_in} features, conv_6 gives {sep}")
        return cls(stem, transitions, tuple(stages), sep, final_kernel, embedding, classes)


class MiniFASNet(nn.Module):
    """MiniFASNetV2 / V1SE (see the module docstring). Input (N, 3, 80, 80) float BGR 0..255;
    ``forward`` gives the (N, 3) class logits, ``forward_features`` the 128-d feature."""

    def __init__(self, shape: MiniFASNetShape) -> None:
        super().__init__()
        self.shape = shape
        s = shape
        self.conv1 = ConvBNAct(3, s.stem, kernel=3, stride=2, padding=1)
        self.conv2_dw = ConvBNAct(s.stem, s.stem, kernel=3, padding=1, groups=s.stem)
        c = s.stem
        for name, stage_name, (expand, out), blocks in zip(TRANSITIONS, STAGES, s.transitions, s.stages, strict=True):
            setattr(self, name, DepthwiseBlock(c, expand, out, stride=2))
            setattr(self, stage_name, ResidualStage(out, blocks))
            c = out
        self.conv_6_sep = ConvBNAct(c, s.sep)
        self.conv_6_dw = ConvBNAct(s.sep, s.sep, kernel=s.final_kernel, groups=s.sep, act=False)
        self.linear = nn.Linear(s.sep, s.embedding, bias=False)
        self.bn = nn.BatchNorm1d(s.embedding)
        self.drop = nn.Dropout(0.2)  # training only
        self.prob = nn.Linear(s.embedding, s.classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        x = self.conv_4(self.conv_34(x))
        x = self.conv_5(self.conv_45(x))
        x = self.conv_6_dw(self.conv_6_sep(x))
        return self.bn(self.linear(torch.flatten(x, 1)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.prob(self.drop(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """The state dict with ``prefix`` (left by ``nn.DataParallel``) removed from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def minifasnet_from_state_dict(state: Mapping[str, torch.Tensor]) -> MiniFASNet:
    """A MiniFASNet shaped by ``state`` with ``state`` loaded strictly, in eval mode."""
    state = strip_prefix(state)
    net = MiniFASNet(MiniFASNetShape.from_state_dict(state))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"MiniFASNet weights do not fit the rebuilt network: {str(exc).splitlines()[0]}") from None
    return net.eval()


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm):
    """``weight``/``bias`` of a layer followed by eval-mode ``bn``, as one layer's (out-channels first)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    b = (bias if bias is not None else torch.zeros_like(bn.running_mean)) - bn.running_mean
    return w, b * scale + bn.bias


def _fused_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, groups=conv.groups, bias=True)
    w, b = _fold(conv.weight, conv.bias, bn)
    out.weight.data.copy_(w)
    out.bias.data.copy_(b)
    return out


@torch.no_grad()
def fuse_batch_norms(net: MiniFASNet) -> MiniFASNet:
    """An inference copy of ``net`` with every batch norm folded into the layer before it (same
    outputs to float rounding, about a third less time on a CPU). Its state dict no longer fits
    the released weights' layout; keep the original for saving."""
    fused = copy.deepcopy(net).eval()
    for module in fused.modules():
        if isinstance(module, ConvBNAct) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv, module.bn = _fused_conv(module.conv, module.bn), nn.Identity()
        elif isinstance(module, SqueezeExcite) and isinstance(module.bn1, nn.BatchNorm2d):
            module.fc1, module.bn1 = _fused_conv(module.fc1, module.bn1), nn.Identity()
            module.fc2, module.bn2 = _fused_conv(module.fc2, module.bn2), nn.Identity()
    linear = nn.Linear(fused.linear.in_features, fused.linear.out_features, bias=True)
    w, b = _fold(fused.linear.weight, fused.linear.bias, fused.bn)
    linear.weight.data.copy_(w)
    linear.bias.data.copy_(b)
    fused.linear, fused.bn = linear, nn.Identity()
    return fused.eval()
