"""The landmark network: the face ResNet's early layers + a small decoder + heatmap soft-argmax.

Architecture (why, and the alternatives we weighed, are in the model card
``resources/models/landmarks_v1.md``):

- **backbone** = the stem, stage 1 (32 ch, 1/4 of the input), stage 2 (64 ch, 1/8) and stage 3
  (128 ch, 1/16) of :class:`~faceapp.embed.dlib_resnet.DlibResNet`, initialised from the shipped
  dlib face-recognition weights (transfer learning: these layers already respond to eyes, brows,
  lips and face edges); stages 4-5 and the embedding head are dropped (they pool the spatial
  detail away and would cost 14 MB);
- **head** = a two-step upsampling decoder with skip connections (stage 3 -> 1/8 with stage 2 ->
  1/4 with stage 1) ending in 68 heatmaps at 1/4 of the input;
- **soft-argmax** (integral regression): each heatmap is turned into a probability map by a
  softmax and the point is its expected position, so the output is sub-pixel and the whole
  network trains on the coordinate error itself.

``forward_features(x)`` returns the three backbone maps, ``forward_head(features)`` the heatmap
logits, ``forward(x)`` the ``(N, 68, 2)`` points in input-crop pixels (pixel centres at integer
coordinates). Input: ``(N, 3, S, S)`` RGB normalised like the face ResNet,
``(pixel - MEAN_RGB) / 256`` (:func:`faceapp.embed.dlib_resnet.normalize_chips`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceapp.embed.dlib_resnet import DlibResNet
from faceapp.landmarks.points import NUM_POINTS

__all__ = ["LandmarkNet", "landmark_net", "soft_argmax", "STRIDE", "OFFSET"]

# A cell j of the 1/4 grid (after the 7x7/2 convolution and the 3x3/2 max pool, both unpadded)
# is centred on input pixel STRIDE * j + OFFSET.
STRIDE = 4.0
OFFSET = 5.0


def soft_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, K, H, W)`` logits -> (expected (x, y) in grid cells ``(N, K, 2)``, probabilities)."""
    n, k, h, w = logits.shape
    prob = F.softmax(logits.reshape(n, k, h * w).float(), dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device)
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device)
    x = (prob.sum(dim=2) * xs).sum(dim=-1)
    y = (prob.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1), prob


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LandmarkNet(nn.Module):
    """Face crop -> 68 points (see the module docstring)."""

    def __init__(self, *, num_points: int = NUM_POINTS, width: int = 64) -> None:
        super().__init__()
        base = DlibResNet()
        self.conv1 = base.conv1
        self.affine1 = base.affine1
        self.stage1 = nn.Sequential(*base.blocks[0:3])
        self.stage2 = nn.Sequential(*base.blocks[3:7])
        self.stage3 = nn.Sequential(*base.blocks[7:10])
        self.up2 = nn.Sequential(_conv_bn(128 + 64, width * 3 // 2), _conv_bn(width * 3 // 2, width * 3 // 2))
        self.up1 = nn.Sequential(_conv_bn(width * 3 // 2 + 32, width), _conv_bn(width, width))
        self.heatmaps = nn.Conv2d(width, num_points, 1)
        self.num_points = num_points

    @property
    def backbone(self) -> list[nn.Module]:
        """The modules initialised from the face ResNet (frozen in the first training phase)."""
        return [self.conv1, self.affine1, self.stage1, self.stage2, self.stage3]

    @property
    def head(self) -> list[nn.Module]:
        return [self.up2, self.up1, self.heatmaps]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised ``(N, 3, S, S)`` crops -> [stage 1 (1/4), stage 2 (1/8), stage 3 (1/16)]."""
        x = F.relu(self.affine1(self.conv1(x)))
        x = F.max_pool2d(x, 3, stride=2)
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        return [s1, s2, s3]

    def forward_head(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Backbone maps -> ``(N, 68, H/4, W/4)`` heatmap logits."""
        s1, s2, s3 = features
        # Unpadded strided convolutions make the sizes odd; resample to the finer map's size.
        y = F.interpolate(s3, size=s2.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up2(torch.cat([y, s2], dim=1))
        y = F.interpolate(y, size=s1.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up1(torch.cat([y, s1], dim=1))
        return self.heatmaps(y)

    def forward_points(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(points ``(N, 68, 2)`` in crop pixels, heatmap probabilities ``(N, 68, h, w)``)."""
        grid, prob = soft_argmax(self.forward_head(self.forward_features(x)))
        return grid * STRIDE + OFFSET, prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 3, S, S)`` crops -> ``(N, 68, 2)`` points in crop pixels."""
        return self.forward_points(x)[0]


def landmark_net(*, backbone_state: dict | None = None, state: dict | None = None, width: int = 64) -> LandmarkNet:
    """Build :class:`LandmarkNet`. ``backbone_state``: a face-ResNet state dict to start the
    backbone from (training); ``state``: a complete LandmarkNet state dict (inference). Returned
    in eval mode, float32."""
    net = LandmarkNet(width=width)
    if backbone_state is not None:
        ours = net.state_dict()
        mapping = {"conv1.": "conv1.", "affine1.": "affine1."}
        for i in range(10):
            stage, j = (1, i) if i < 3 else (2, i - 3) if i < 7 else (3, i - 7)
            mapping[f"blocks.{i}."] = f"stage{stage}.{j}."
        taken = {}
        for key, value in backbone_state.items():
            for src, dst in mapping.items():
                if key.startswith(src):
                    taken[dst + key[len(src):]] = value
        missing = [k for k in taken if k not in ours]
        if missing:
            raise ValueError(f"face-ResNet weights do not fit the landmark backbone: {missing[:3]}")
        net.load_state_dict(taken, strict=False)
    if state is not None:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.float().eval()
