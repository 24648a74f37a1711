"""OpenCV Zoo's SFace face recogniser (``face_recognition_sface_2021dec``) in PyTorch.

SFace (Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition",
IEEE TIP 2021; weights from OpenCV Zoo, Apache-2.0) maps a 112x112 face chip, aligned by
OpenCV's ``FaceRecognizerSF.alignCrop`` onto the 5-point ArcFace template, to a 128-d vector
compared by cosine similarity. This module is the network of the ONNX file (an MXNet export):
:mod:`scripts.convert_sface` reads the file, dequantizes its block-quantized weights and fills
this module's state dict, checked against ``cv2.FaceRecognizerSF.feature``.

Input (what ``FaceRecognizerSF.feature`` does): OpenCV's ``blobFromImage(chip, 1, 112x112,
swapRB=true)`` turns its BGR chip into an **RGB** blob, and the graph's first nodes compute
``(x - 127.5) * 0.0078125``. So the network takes RGB chips, ``(pixel - 127.5) / 128``, NCHW,
which is what faceapp's aligned chips (RGB) and the spec's normalisation give.
:func:`normalize_chips` does exactly that.

Layers (MobileFaceNet-like; every convolution without bias, then batch norm, then PReLU with
one slope per channel; spatial size for a 112x112 chip in brackets):

- ``conv_1``: 3x3 stride 1, 32 filters [112];
- 13 depthwise-separable pairs ``conv_k_dw`` (3x3 depthwise, stride 1 or 2) + ``conv_k``
  (1x1 pointwise), k = 2..14, channels 32 -> 64 -> 128 [56] -> 128 -> 256 [28] -> 256 -> 512 [14]
  -> 512 x5 -> 512 [7] -> 1024 -> 1024 (strides 2 in conv_3_dw, conv_5_dw, conv_7_dw, conv_13_dw);
- ``bn1``: batch norm over the (1024, 7, 7) map (eps 2e-5), then dropout (identity at
  inference), flattened to 50,176 -- :meth:`SFaceNet.forward_features` ends here;
- ``fc``: fully connected 50,176 -> 128 with bias, then ``fc_bn``: batch norm over the 128
  outputs (eps 2e-5) -- :meth:`SFaceNet.forward_head`. That raw 128-d vector is what
  ``FaceRecognizerSF.feature`` returns; ``forward`` scales it to unit length (OpenCV's
  ``match`` normalises it too before the cosine / L2 distance).

The batch norms are kept as layers (not folded) so that the network can be fine-tuned as it
was trained; in eval mode they are the fixed affine maps of the ONNX graph.
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
    "MEAN",
    "SCALE",
    "LAYERS",
    "ALIGN_CROP_TEMPLATE",
    "SFaceNet",
    "sface",
    "normalize_chips",
]

INPUT_SIZE = 112
EMBEDDING_DIM = 128
MEAN = (127.5, 127.5, 127.5)
SCALE = 128.0  # the graph multiplies by 0.0078125 = 1 / 128
BN_EPS = 1e-3  # the convolution blocks' batch norms
HEAD_BN_EPS = 2e-5  # bn1 and fc_bn

# OpenCV's FaceRecognizerSF::alignCrop reference points (opencv/modules/objdetect/src/
# face_recognize.cpp): left eye, right eye, nose tip, left and right mouth corner, as seen in
# the image, in 112x112 chip pixels (the ArcFace template).
ALIGN_CROP_TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

# (name, in channels, out channels, kernel, stride, groups) from the input up.
LAYERS: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("conv_1", 3, 32, 3, 1, 1),
    ("conv_2_dw", 32, 32, 3, 1, 32),
    ("conv_2", 32, 64, 1, 1, 1),
    ("conv_3_dw", 64, 64, 3, 2, 64),
    ("conv_3", 64, 128, 1, 1, 1),
    ("conv_4_dw", 128, 128, 3, 1, 128),
    ("conv_4", 128, 128, 1, 1, 1),
    ("conv_5_dw", 128, 128, 3, 2, 128),
    ("conv_5", 128, 256, 1, 1, 1),
    ("conv_6_dw", 256, 256, 3, 1, 256),
    ("conv_6", 256, 256, 1, 1, 1),
    ("conv_7_dw", 256, 256, 3, 2, 256),
    ("conv_7", 256, 512, 1, 1, 1),
    *(
        item
        for k in range(8, 13)
        for item in ((f"conv_{k}_dw", 512, 512, 3, 1, 512), (f"conv_{k}", 512, 512, 1, 1, 1))
    ),
    ("conv_13_dw", 512, 512, 3, 2, 512),
    ("conv_13", 512, 1024, 1, 1, 1),
    ("conv_14_dw", 1024, 1024, 3, 1, 1024),
    ("conv_14", 1024, 1024, 1, 1, 1),
)
FEATURE_SHAPE = (1024, 7, 7)
NUM_FEATURES = 1024 * 7 * 7


def normalize_chips(chips: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB chips ``(H, W, 3)`` or ``(N, H, W, 3)``, 0..255 -> float32 ``(N, 3, H, W)`` of
    ``(pixel - 127.5) / 128`` (the input of :class:`SFaceNet`)."""
    t = chips if isinstance(chips, torch.Tensor) else torch.from_numpy(np.asarray(chips))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB chips, got shape {tuple(t.shape)}")
    t = t.to(torch.float32).permute(0, 3, 1, 2)
    return ((t - MEAN[0]) / SCALE).contiguous()


class ConvBlock(nn.Module):
    """Convolution (no bias) -> batch norm (eps 1e-3) -> PReLU (one slope per channel)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.prelu = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class SFaceNet(nn.Module):
    """SFace: 112x112 RGB chip -> 128-d encoding (see the module docstring)."""

    def __init__(self, dropout: float = 0.4) -> None:
        super().__init__()
        self.features = nn.Sequential()
        for name, cin, cout, kernel, stride, groups in LAYERS:
            self.features.add_module(name, ConvBlock(cin, cout, kernel, stride, groups))
        self.bn1 = nn.BatchNorm2d(FEATURE_SHAPE[0], eps=HEAD_BN_EPS)
        self.num_features = NUM_FEATURES
        self.dropout = nn.Dropout(dropout)  # the graph's Dropout(0.4) before the fc: training only
        self.fc = nn.Linear(NUM_FEATURES, EMBEDDING_DIM, bias=True)
        self.fc_bn = nn.BatchNorm1d(EMBEDDING_DIM, eps=HEAD_BN_EPS)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 112, 112)`` normalised chips -> ``(N, 50176)`` (bn1 of the 1024x7x7 map, flattened)."""
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"SFace takes {INPUT_SIZE}x{INPUT_SIZE} chips (got {tuple(x.shape[-2:])})")
        return torch.flatten(self.bn1(self.features(x)), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, 50176)`` features -> ``(N, 128)`` raw encodings (``FaceRecognizerSF.feature``)."""
        return self.fc_bn(self.fc(self.dropout(features)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 112, 112)`` normalised chips -> ``(N, 128)`` unit-length encodings."""
        return F.normalize(self.forward_head(self.forward_features(x)), dim=1)


def sface(*, weights_path: str | Path | None = None, map_location: str | torch.device = "cpu") -> SFaceNet:
    """Build :class:`SFaceNet` in eval mode, loading a converted state dict from ``weights_path``
    if given (checksums are checked by the weights spec, not here)."""
    model = SFaceNet()
    if weights_path is not None:
        state = torch.load(Path(weights_path), map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    return model.eval()
