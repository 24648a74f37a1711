"""scripts/train_fused.py's flip views (--flip): each backbone's mirrored chip, and flip TTA
as the embedder's ``flip_tta`` defines it (normalise(e(chip) + e(mirror)))."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.embed.fused import CANVAS_SIZE, FusedNet

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_fused.py"


@pytest.fixture(scope="module")
def tf():
    spec = importlib.util.spec_from_file_location("train_fused", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("train_fused", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def net() -> FusedNet:
    torch.manual_seed(0)
    return FusedNet(load_backbones=False).eval()  # random backbones: only the plumbing is tested


def _canvases(n: int) -> torch.Tensor:
    g = np.random.default_rng(1)
    return torch.as_tensor(g.integers(0, 256, (n, 3, CANVAS_SIZE, CANVAS_SIZE)).astype(np.float32))


def test_flip_view_is_each_backbone_on_its_mirrored_chip(tf, net) -> None:
    x = _canvases(3)
    with torch.inference_mode():
        plain = tf.forward_views(net, x, False)
        both = tf.forward_views(net, x, True)
        xd, xs = net.branch_chips(x)
        ed = net.dlib((xd.flip(3) - net.mean_dlib) / net.scale_dlib)
        es = net.sface((xs.flip(3) - net.mean_sface) / net.scale_sface)
        canvas_mirror = net.forward_features(x.flip(3))
    assert plain.shape == (3, 1, 256) and both.shape == (3, 2, 256)
    np.testing.assert_allclose(both[:, 0].numpy(), net.forward_features(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(plain[:, 0].numpy(), both[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(both[:, 1].numpy(), torch.cat([ed, es], 1).numpy(), atol=1e-5)
    # not the mirrored canvas: the branches' crops are not centred on the canvas
    assert not np.allclose(both[:, 1].numpy(), canvas_mirror.numpy(), atol=1e-4)


def test_flip_tta_embedding_is_normalised_sum_of_unit_encodings(tf) -> None:
    g = np.random.default_rng(2)
    f = g.normal(size=(5, 2, 256)).astype(np.float32)
    w = g.normal(size=(128, 256)).astype(np.float32)

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    np.testing.assert_allclose(tf._embed(f, "sface"), unit(f[:, 0, 128:]), atol=1e-6)
    np.testing.assert_allclose(tf._embed(f, "dlib", tta=True), unit(unit(f[:, 0, :128]) + unit(f[:, 1, :128])), atol=1e-6)
    np.testing.assert_allclose(tf._embed(f, "head", w, tta=True), unit(unit(f[:, 0] @ w.T) + unit(f[:, 1] @ w.T)), atol=1e-5)


def test_variants_and_tests(tf) -> None:
    assert [v[0] for v in tf._variants(False)] == ["dlib", "sface", "concat", "head"]
    names = [v[0] for v in tf._variants(True)]
    assert names == ["dlib", "dlib+flip", "sface", "sface+flip", "concat", "concat+flip",
                     "head", "head+flip", "head-flipaug", "head-flipaug+flip"]
    out = {"sface": {}, "head+flip": {}}
    tf._head_tests(out, {"sface": np.array([True, False, False]), "head+flip": np.array([True, True, True])})
    assert out["head+flip"]["mcnemar_vs_sface"] == {"only_head": 2, "only_other": 0, "p": 0.5}
    assert out["sface"] == {}
