"""A VGG-16 backbone for style transfer, from a weights file the user already has.

Nothing is downloaded. ``load_vgg16_features(path)`` builds torchvision's ``vgg16`` layout,
loads the state dict with ``torch.load(path, map_location=device, weights_only=True)`` after
an optional SHA-256 check, and returns the convolutional part (``features``), frozen, in
eval mode, with in-place ReLUs turned off. The file may hold the whole network's state dict
(torchvision's ``vgg16-397923af.pth``: keys ``features.0.weight``, ...) or only the features
(keys ``0.weight``, ...).

Layer names in the returned ``nn.Sequential`` are indices: conv1_1 is "0" and relu1_1 "1".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "VGG16_LAYERS",
    "VGG16_STYLE_LAYERS",
    "VGG16_CONTENT_LAYER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "imagenet_normalize",
    "load_vgg16_features",
]


def _vgg16_layer_names() -> dict[str, str]:
    names, index = {}, 0
    for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
        for conv in range(1, convs + 1):
            names[f"conv{block}_{conv}"] = str(index)
            names[f"relu{block}_{conv}"] = str(index + 1)
            index += 2
        names[f"pool{block}"] = str(index)
        index += 1
    return names


#: Readable names of VGG-16's feature layers -> their index in ``vgg16().features``.
VGG16_LAYERS: dict[str, str] = _vgg16_layer_names()

#: Gatys et al.'s style layers relu1_1 ... relu5_1 (weights 0.2 each in the assignment).
VGG16_STYLE_LAYERS: tuple[str, ...] = tuple(VGG16_LAYERS[f"relu{b}_1"] for b in range(1, 6))
#: Gatys et al.'s content layer, relu4_2.
VGG16_CONTENT_LAYER: str = VGG16_LAYERS["relu4_2"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) in [0, 1] -> ImageNet-normalised input for torchvision's pretrained VGG."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).reshape(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).reshape(3, 1, 1)
    return (x - mean) / std


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_vgg16_features(
    weights_path: str | Path, *, sha256: str | None = None, device: str | torch.device = "cpu"
) -> nn.Sequential:
    """VGG-16's convolutional layers with the weights in ``weights_path`` (frozen, eval mode).

    Raises ``FileNotFoundError`` when the file is missing and ``ValueError`` when its checksum
    differs from ``sha256`` (a prefix is enough) or it is not a VGG-16 state dict.
    """
    import torchvision

    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no VGG-16 weights at {path}")
    if sha256 is not None:
        actual = _sha256(path)
        if not actual.startswith(sha256.lower()):
            raise ValueError(f"{path} has SHA-256 {actual}, expected {sha256}")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    if any(key.startswith("features.") for key in state):
        state = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    with torch.device("meta"):  # the 124M classifier parameters are never allocated
        features = torchvision.models.vgg16(weights=None).features
    try:
        features.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise ValueError(f"{path} is not a VGG-16 state dict: {error}") from None
    for module in features.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return features.requires_grad_(False).eval()
