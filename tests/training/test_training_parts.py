"""Augmentation, networks, checkpoint shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceapp.training.augment import AugmentConfig, BatchAugmenter, rgb_pca
from faceapp.training.checkpoints import load_shards, save_shards
from faceapp.training.networks import CompactFaceNet, freeze_dlib_stages

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _batch(device="cpu"):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(2, 3, 16, 16, generator=g) * 200 + 20).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_no_augmentation_leaves_the_batch_unchanged(device):
    x = _batch(device)
    assert torch.allclose(BatchAugmenter(AugmentConfig.none(), device=device)(x), x, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_mirroring_alone_flips_left_right(device):
    x = _batch(device)
    cfg = AugmentConfig(**{**AugmentConfig.none().to_dict(), "flip": 1.0})
    assert torch.allclose(BatchAugmenter(cfg, device=device)(x), x.flip(-1), atol=1e-3)


def test_pca_colour_adds_one_colour_per_image_along_the_principal_axes():
    vals = np.array([30.0, 0.0, 0.0], np.float32)  # only the first axis varies
    vecs = np.eye(3, dtype=np.float32)[:, [1, 0, 2]]  # ... and it is the green channel
    cfg = AugmentConfig(**{**AugmentConfig.none().to_dict(), "pca_std": 0.1})
    x = _batch()
    d = BatchAugmenter(cfg, pca=(vals, vecs), seed=1)(x) - x
    assert torch.allclose(d[:, [0, 2]], torch.zeros_like(d[:, [0, 2]]), atol=1e-4)  # red, blue untouched
    g = d[:, 1].flatten(1)
    assert torch.allclose(g, g[:, :1].expand_as(g), atol=1e-4) and g.abs().max() > 0  # one shift per image


def test_rgb_pca_finds_the_dominant_colour_direction():
    rng = np.random.default_rng(0)
    t = rng.normal(0, 40, 5000)
    px = np.stack([128 + t, 128 + t, np.full_like(t, 128)], 1) + rng.normal(0, 1, (5000, 3))
    vals, vecs = rgb_pca(px.clip(0, 255).astype(np.uint8).reshape(1, 50, 100, 3))
    top = vecs[:, np.argmax(vals)]
    assert abs(abs(top @ np.array([1, 1, 0]) / np.sqrt(2)) - 1) < 0.01


def test_augmentation_is_reproducible_for_a_seed():
    x = _batch()
    assert torch.equal(BatchAugmenter(seed=3)(x), BatchAugmenter(seed=3)(x))
    assert not torch.equal(BatchAugmenter(seed=3)(x), BatchAugmenter(seed=4)(x))


def test_compact_net_gives_unit_embeddings_and_exposes_features_and_head():
    m = CompactFaceNet(width=4).eval()
    x = torch.randn(2, 3, 150, 150)
    feats = m.forward_features(x)
    assert feats.shape == (2, 32)
    assert torch.allclose(m(x), torch.nn.functional.normalize(m.forward_head(feats), dim=1))
    assert torch.allclose(m(x).norm(dim=1), torch.ones(2))


def test_compact_net_is_registered_for_weights_specs():
    from faceapp.embed import network

    assert "compact_cnn" in network.architectures()
    assert isinstance(network.build("compact_cnn"), CompactFaceNet)


def test_freezing_dlib_stages_freezes_stem_and_early_blocks_only():
    from faceapp.embed.dlib_resnet import DlibResNet

    m = DlibResNet()
    frozen = freeze_dlib_stages(m, 2)
    assert "conv1.weight" in frozen and "blocks.6.conv2.weight" in frozen  # stage 2 ends at block 6
    assert not m.conv1.weight.requires_grad
    assert m.blocks[7].conv1.weight.requires_grad and m.fc.weight.requires_grad
    assert not m.blocks[6].conv1.weight.requires_grad


def test_shards_round_trip_bit_for_bit_under_the_size_limit(tmp_path):
    state = {f"w{i}": torch.randn(100, 100) for i in range(5)}  # 40 kB each
    paths = save_shards(state, tmp_path, "m", max_bytes=100_000)
    assert len(paths) == 3 and all(p.stat().st_size < 110_000 for p in paths)
    back = load_shards(tmp_path, "m")
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_cli_shard_then_merge_gives_the_state_dict_back(tmp_path):
    from faceapp.cli.main import main

    state = {"a": torch.randn(300, 100), "b": torch.randn(300, 100)}  # 120 kB each
    torch.save(state, tmp_path / "w.pt")
    assert main(["train", "shard", str(tmp_path / "w.pt"), "--out", str(tmp_path / "s"), "--max-mb", "0.15"]) == 0
    assert len(list((tmp_path / "s").glob("model-*.pt"))) == 2
    assert main(["train", "merge", str(tmp_path / "s"), "--out", str(tmp_path / "back.pt")]) == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert all(torch.equal(back[k], state[k]) for k in state)
