"""The PyTorch port of OpenCV Zoo's SFace reproduces ``cv2.FaceRecognizerSF.feature`` (stored by
scripts/convert_sface.py --verify --write-reference; neither OpenCV's model file nor dataset
images are in the repository)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceapp.embed import network
from faceapp.embed.sface import (
    ALIGN_CROP_TEMPLATE,
    EMBEDDING_DIM,
    INPUT_SIZE,
    NUM_FEATURES,
    SFaceNet,
    normalize_chips,
    sface,
)
from script_module import load_script

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "resources" / "models" / "sface_v1.pt"
SPEC = ROOT / "resources" / "models" / "sface_v1.json"
REFERENCE = Path(__file__).with_name("data") / "sface_reference.npz"

needs_weights = pytest.mark.skipif(not WEIGHTS.exists(), reason=f"weights file {WEIGHTS} is missing")


def reference_chips() -> dict[str, np.ndarray]:
    """Same chips as scripts/convert_sface.py:reference_chips (regenerated, not stored)."""
    chips = {f"noise_seed{s}": np.random.default_rng(s).integers(0, 256, (112, 112, 3), dtype=np.uint8) for s in range(3)}
    yy, xx = np.mgrid[0:112, 0:112]
    chips["gradient"] = np.stack([xx * 255 // 111, yy * 255 // 111, 255 - (xx + yy) * 255 // 222], axis=-1).astype(np.uint8)
    return chips


@pytest.fixture(scope="module")
def model() -> SFaceNet:
    return sface(weights_path=WEIGHTS)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as ref:
        return {k: ref[k] for k in ref.files}


def _raw(model: SFaceNet, chips_rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.forward_head(model.forward_features(normalize_chips(chips_rgb))).numpy()


def test_architecture_parameter_shapes() -> None:
    net = SFaceNet()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["features.conv_1.conv.weight"] == (32, 3, 3, 3)
    assert shapes["features.conv_2_dw.conv.weight"] == (32, 1, 3, 3)  # depthwise
    assert shapes["features.conv_14.conv.weight"] == (1024, 1024, 1, 1)
    assert shapes["features.conv_7.prelu.weight"] == (512,)
    assert shapes["fc.weight"] == (EMBEDDING_DIM, NUM_FEATURES)
    assert shapes["fc.bias"] == (EMBEDDING_DIM,)
    assert shapes["fc_bn.running_var"] == (EMBEDDING_DIM,)
    assert not any(k.endswith("conv.bias") for k in shapes)  # convolutions without bias
    assert len([k for k in shapes if k.endswith(".conv.weight")]) == 27
    assert sum(p.numel() for p in net.parameters()) == 9_642_880


def test_features_and_head_shapes() -> None:
    net = SFaceNet().eval()
    with torch.no_grad():
        f = net.forward_features(torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE))
        assert f.shape == (2, NUM_FEATURES)
        assert net.forward_head(f).shape == (2, EMBEDDING_DIM)
    with pytest.raises(ValueError, match="112x112"):
        net.forward_features(torch.zeros(1, 3, 150, 150))


def test_normalize_chips_is_the_graph_input() -> None:
    chip = np.zeros((4, 4, 3), np.uint8)
    chip[..., 0] = 255
    x = normalize_chips(chip)
    assert x.shape == (1, 3, 4, 4)
    assert x[0, 0, 0, 0].item() == (255 - 127.5) * 0.0078125  # R channel first: the blob is RGB
    assert x[0, 2, 3, 3].item() == -127.5 * 0.0078125


def test_blocked_dequantize_matches_onnx_definition() -> None:
    dequantize = load_script("convert_sface").dequantize
    q = np.array([[1, 2, 3, -4, 5], [-128, 0, 127, 10, -10]], np.int8)
    scale = np.array([[0.5, 2.0], [0.25, 1.0]], np.float32)  # blocks of 3 along axis 1: [0:3], [3:5]
    zp = np.array([[1, -2], [0, 10]], np.int8)
    expected = np.array(
        [[0.0, 0.5, 1.0, -4.0, 14.0], [-32.0, 0.0, 31.75, 0.0, -20.0]], np.float32
    )
    np.testing.assert_array_equal(dequantize(q, scale, zp, axis=1, block_size=3), expected)
    # per axis and per tensor
    np.testing.assert_array_equal(
        dequantize(q[:, :2], np.array([2.0, 1.0], np.float32), np.array([0, 1], np.int8), axis=0, block_size=0),
        np.array([[2.0, 4.0], [-129.0, -1.0]], np.float32),
    )
    np.testing.assert_array_equal(dequantize(q[:1, :2], np.array(0.5, np.float32), None, 1, 0), [[0.5, 1.0]])


def test_template_is_opencv_align_crop_points() -> None:
    spec = json.loads(SPEC.read_text())
    np.testing.assert_array_equal(np.asarray(spec["template"], np.float64), np.asarray(ALIGN_CROP_TEMPLATE))
    t = np.asarray(ALIGN_CROP_TEMPLATE)
    assert t[0, 0] < t[1, 0] and t[3, 0] < t[4, 0]  # image-left eye / mouth corner first, like MTCNN's points
    assert spec["input_size"] == INPUT_SIZE and spec["embedding_dim"] == EMBEDDING_DIM
    assert spec["architecture"] == "sface" and spec["model_id"] == "sface-v1"
    assert spec["normalization"] == {"mean": [127.5, 127.5, 127.5], "scale": 128.0, "channel_order": "RGB"}


@needs_weights
def test_spec_checksum_matches_weights() -> None:
    spec = json.loads(SPEC.read_text())
    assert spec["file"] == WEIGHTS.name
    assert spec["sha256"] == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    for name in ("card", ):
        assert (SPEC.parent / spec[name]).is_file()
    for name in ("sface_v1_LICENSE.md", "sface_v1_NOTICE.md"):
        assert (SPEC.parent / name).is_file()


@needs_weights
def test_raw_output_equals_opencv_features_on_synthetic_chips(model: SFaceNet, reference: dict[str, np.ndarray]) -> None:
    chips = reference_chips()
    names = [str(n) for n in reference["names"]]
    assert names == list(chips)
    for name, digest in zip(names, reference["chip_sha256"], strict=True):
        assert hashlib.sha256(chips[name].tobytes()).hexdigest() == digest, f"chip {name} is not regenerated identically"
    raw = _raw(model, np.stack(list(chips.values())))
    assert raw.shape == (len(chips), EMBEDDING_DIM)
    np.testing.assert_allclose(raw, reference["features"], rtol=0, atol=1e-4)


@needs_weights
def test_raw_output_equals_opencv_features_on_lfw_chips(model: SFaceNet, reference: dict[str, np.ndarray], lfw_dir: Path) -> None:
    """Chips recomputed from the LFW files (YuNet's points fitted onto the template, stored as a
    2x3 matrix), encoded by cv2.FaceRecognizerSF.feature at conversion time."""
    files = [str(f) for f in reference["lfw_files"]]
    assert len(files) >= 8
    chips = []
    for rel, m, digest in zip(files, reference["lfw_matrices"], reference["lfw_chip_sha256"], strict=True):
        img = cv2.imread(str(lfw_dir / "images" / rel))
        assert img is not None, rel
        chip = cv2.warpAffine(img, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)[..., ::-1].copy()
        assert hashlib.sha256(chip.tobytes()).hexdigest() == str(digest), f"chip of {rel} is not recomputed identically"
        chips.append(chip)
    raw = _raw(model, np.stack(chips))
    np.testing.assert_allclose(raw, reference["lfw_features"], rtol=0, atol=1e-4)
    # faces, not noise: the first images of different people are far apart on the unit sphere
    e = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert np.all(np.abs(np.linalg.norm(e, axis=1) - 1) < 1e-5)
    cos = e @ e.T
    assert cos[np.triu_indices(len(e), 1)].max() < 0.6


@needs_weights
def test_embedder_loads_sface_through_its_spec(reference: dict[str, np.ndarray], monkeypatch) -> None:
    from faceapp import runtime
    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec

    assert "sface" in network.architectures()
    spec = load_spec("sface-v1")
    if not runtime.torch_available():
        pytest.skip("torch is not installed (the ONNX path is tested below)")
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")  # on a CPU auto would run the ONNX export
    emb = Embedder(spec, device="cpu")
    assert emb.backend == "torch"
    chips = list(reference_chips().values())
    out = emb.embed(chips)
    assert out.shape == (len(chips), EMBEDDING_DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    ref = reference["features"] / np.linalg.norm(reference["features"], axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="112x112x3"):
        emb.embed([np.zeros((150, 150, 3), np.uint8)])


@needs_weights
def test_onnx_export_runs_like_torch(tmp_path, monkeypatch, reference: dict[str, np.ndarray]) -> None:
    """The installers' path: faceapp.runtime.export -> sface_v1.onnx -> the embedder on ONNX Runtime."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from faceapp import runtime
    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec
    from faceapp.runtime.export import export_embedder

    path = export_embedder("sface-v1", tmp_path)
    assert path.name == "sface_v1.onnx"
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    emb = Embedder(load_spec("sface-v1"), device="cpu", batch_size=3)
    assert emb.backend == "onnx"
    out = emb.embed(list(reference_chips().values()))
    ref = reference["features"] / np.linalg.norm(reference["features"], axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
