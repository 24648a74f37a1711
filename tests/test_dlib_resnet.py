"""The PyTorch port of dlib's face ResNet reproduces dlib's descriptors (stored by the converter)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.embed.dlib_resnet import (
    EMBEDDING_DIM,
    INPUT_SIZE,
    MEAN_RGB,
    DlibResNet,
    _add_zero_padded,
    dlib_resnet,
    normalize_chips,
)

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "resources" / "models" / "dlib_resnet_v1.pt"
SPEC = ROOT / "resources" / "models" / "dlib_resnet_v1.json"
REFERENCE = Path(__file__).with_name("data") / "dlib_reference.npz"

needs_weights = pytest.mark.skipif(not WEIGHTS.exists(), reason=f"weights file {WEIGHTS} is missing")


def reference_chips() -> dict[str, np.ndarray]:
    """Same chips as scripts/convert_dlib_model.py:reference_chips (regenerated, not stored)."""
    chips = {f"noise_seed{s}": np.random.default_rng(s).integers(0, 256, (150, 150, 3), dtype=np.uint8) for s in range(4)}
    yy, xx = np.mgrid[0:150, 0:150]
    chips["gradient"] = np.stack(
        [xx * 255 // 149, yy * 255 // 149, 255 - (xx + yy) * 255 // 298], axis=-1
    ).astype(np.uint8)
    return chips


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    return dlib_resnet(weights_path=WEIGHTS)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as ref:
        return {k: ref[k] for k in ref.files}


def test_architecture_parameter_shapes() -> None:
    net = DlibResNet()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert len(shapes) == 117  # conv1 w+b, affine1 w+b, 14 blocks x 8, fc weight
    assert shapes["conv1.weight"] == (32, 3, 7, 7)
    assert shapes["blocks.0.conv1.weight"] == (32, 32, 3, 3)
    assert shapes["blocks.3.conv1.weight"] == (64, 32, 3, 3)  # first down block
    assert shapes["blocks.13.conv2.weight"] == (256, 256, 3, 3)
    assert shapes["fc.weight"] == (EMBEDDING_DIM, 256)
    assert "fc.bias" not in shapes
    # stem 4_800 + stages 55_872 + 278_016 + 813_312 + 3_248_640 + 1_181_184 + fc 32_768
    assert sum(p.numel() for p in net.parameters()) == 5_614_592


def test_features_and_head_shapes() -> None:
    net = DlibResNet().eval()
    with torch.no_grad():
        f = net.forward_features(torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE))
        assert f.shape == (2, 256)
        assert net.forward_head(f).shape == (2, EMBEDDING_DIM)


def test_add_zero_padded_matches_dlib_add_prev() -> None:
    a = torch.ones(1, 2, 1, 1)  # branch: 2 channels, 1x1
    b = torch.full((1, 1, 2, 2), 10.0)  # shortcut: 1 channel, 2x2
    out = _add_zero_padded(a, b)
    expected = torch.tensor([[[[11.0, 10.0], [10.0, 10.0]], [[1.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(out, expected)


def test_normalize_chips_is_dlib_input_layer() -> None:
    chip = np.zeros((4, 4, 3), np.uint8)
    chip[..., 0] = 255
    x = normalize_chips(chip)
    assert x.shape == (1, 3, 4, 4)
    assert x[0, 0, 0, 0].item() == pytest.approx((255 - MEAN_RGB[0]) / 256)
    assert x[0, 2, 3, 3].item() == pytest.approx(-MEAN_RGB[2] / 256)


@needs_weights
def test_spec_checksum_matches_weights() -> None:
    spec = json.loads(SPEC.read_text())
    assert spec["file"] == WEIGHTS.name
    assert spec["sha256"] == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    assert spec["normalization"]["mean"] == list(MEAN_RGB)
    assert np.asarray(spec["template"], dtype=float).shape == (5, 2)


@needs_weights
def test_raw_output_equals_dlib_descriptors(model: DlibResNet, reference: dict[str, np.ndarray]) -> None:
    chips = reference_chips()
    names = [str(n) for n in reference["names"]]
    assert names == list(chips)
    for name, digest in zip(names, reference["chip_sha256"]):
        assert hashlib.sha256(chips[name].tobytes()).hexdigest() == digest, f"chip {name} is not regenerated identically"
    with torch.no_grad():
        raw = model.forward_head(model.forward_features(normalize_chips(np.stack(list(chips.values())))))
    np.testing.assert_allclose(raw.numpy(), reference["descriptors"], rtol=0, atol=1e-4)


@needs_weights
def test_forward_is_unit_length_and_parallel_to_raw(model: DlibResNet) -> None:
    x = normalize_chips(np.stack(list(reference_chips().values())[:3]))
    with torch.no_grad():
        emb = model(x)
        raw = model.forward_head(model.forward_features(x))
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(emb, raw / raw.norm(dim=1, keepdim=True))
