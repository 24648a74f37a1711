"""Head-only transfer learning (faceapp.training.head) and flip test-time augmentation in specs,
the embedder (torch) and the ONNX embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faceapp.embed import network
from faceapp.embed.weights import WeightsSpec
from faceapp.errors import WeightsError
from faceapp.training.head import HeadConfig, HeadTrainer, backbone_features, head_embeddings

ROOT = Path(__file__).resolve().parents[2]


class HalvesNet(nn.Module):
    """features = (mean of the left half, mean of the right half) of channel 0; head = 2x2 linear.
    Mirroring a chip swaps its two features, so every result can be worked out by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(2))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[3] // 2
        return torch.stack([x[:, 0, :, :w].mean((1, 2)), x[:, 0, :, w:].mean((1, 2))], 1)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward_head(self.forward_features(x)), dim=1)


network.register("halves_test")(lambda **kw: HalvesNet())


def _chip(left: int, right: int, size: int = 8) -> np.ndarray:
    chip = np.zeros((size, size, 3), np.uint8)
    chip[:, : size // 2, 0] = left
    chip[:, size // 2 :, 0] = right
    return chip


def _spec_file(tmp_path: Path, **extra) -> Path:
    weights = tmp_path / "halves.pt"
    torch.save(HalvesNet().state_dict(), weights)
    from faceapp.embed.weights import sha256_of

    data = {"model_id": "halves", "file": weights.name, "sha256": sha256_of(weights), "architecture": "halves_test",
            "embedding_dim": 2, "input_size": 8, "normalization": {"mean": [0, 0, 0], "scale": 1.0},
            "template": [[0, 0]] * 5, "threshold": 0.5, **extra}
    path = tmp_path / "halves.json"
    path.write_text(json.dumps(data))
    return path


def test_backbone_features_hold_chip_mirror_and_augmented_views():
    chips = np.stack([_chip(3, 4), _chip(10, 2), _chip(0, 7)])
    f = backbone_features(HalvesNet(), chips, mean=(0, 0, 0), scale=1.0, augmented=2, batch_size=2)
    assert f.shape == (3, 4, 2) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, 0], [[3, 4], [10, 2], [0, 7]], atol=1e-5)
    np.testing.assert_allclose(f[:, 1], [[4, 3], [2, 10], [7, 0]], atol=1e-5)  # mirrored: halves swapped
    assert not np.allclose(f[:, 2], f[:, 0]) and not np.allclose(f[:, 2], f[:, 3])  # random views differ
    plain = backbone_features(HalvesNet(), chips, mean=(1, 1, 1), scale=2.0)
    assert plain.shape == (3, 2, 2)
    np.testing.assert_allclose(plain[0, 0], [1.0, 1.5], atol=1e-5)  # (pixel - mean) / scale


def test_head_embeddings_with_flip_are_the_normalised_mean_of_both_views():
    f = np.array([[[3.0, 4.0], [4.0, 3.0]]], np.float32)
    np.testing.assert_allclose(head_embeddings(np.eye(2), f, flip_tta=False), [[0.6, 0.8]], atol=1e-6)
    np.testing.assert_allclose(head_embeddings(np.eye(2), f, flip_tta=True), [[2 ** -0.5, 2 ** -0.5]], atol=1e-6)


@pytest.mark.parametrize("flip, expected", [(False, [0.6, 0.8]), (True, [2 ** -0.5, 2 ** -0.5])])
def test_embedder_applies_flip_tta_of_the_spec(tmp_path, flip, expected):
    from faceapp.embed.embedder import Embedder

    spec = WeightsSpec.from_json(_spec_file(tmp_path, flip_tta=flip))
    assert spec.flip_tta is flip
    emb = Embedder(spec, device="cpu").embed([_chip(3, 4)])  # e = (0.6, 0.8), mirrored (0.8, 0.6)
    np.testing.assert_allclose(emb, [expected], atol=1e-6)


def test_onnx_embedder_applies_flip_tta_too():
    from faceapp.runtime.onnx_embedder import OnnxEmbedNet

    class Session:  # what ONNX Runtime would compute for HalvesNet
        def run(self, _outputs, feeds):
            return [HalvesNet()(torch.from_numpy(feeds["input"].copy())).detach().numpy()]

    net = OnnxEmbedNet.__new__(OnnxEmbedNet)
    net.session, net.input_name = Session(), "input"
    x = _chip(3, 4).astype(np.float32).transpose(2, 0, 1)[None]
    net.flip_tta = False
    np.testing.assert_allclose(net(x), [[0.6, 0.8]], atol=1e-6)
    net.flip_tta = True
    np.testing.assert_allclose(net(x), [[2 ** -0.5, 2 ** -0.5]], atol=1e-6)


def test_spec_flip_tta_defaults_off_and_must_be_a_boolean(tmp_path):
    assert WeightsSpec.from_json(_spec_file(tmp_path)).flip_tta is False
    spec = WeightsSpec.from_json(_spec_file(tmp_path, flip_tta=True))
    assert spec.flip_tta is True and "flip_tta" not in spec.extra
    with pytest.raises(WeightsError, match="flip_tta"):
        WeightsSpec.from_json(_spec_file(tmp_path, flip_tta="yes"))


def test_export_writes_flip_tta_and_the_spec_loads_back(tmp_path):
    from faceapp.cli.train import main

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "resources" / "models" / "dlib_resnet_v1.json", models)
    rc = main(["export", "--weights", str(ROOT / "resources" / "models" / "dlib_resnet_v1.pt"), "--arch", "dlib_resnet",
               "--model-id", "dlib-flip-test", "--file-stem", "dlib_flip_test", "--flip-tta", "--models-dir", str(models)])
    assert rc == 0
    spec = WeightsSpec.from_json(models / "dlib_flip_test.json")
    assert spec.model_id == "dlib-flip-test" and spec.flip_tta is True
    spec.check_file()


def test_head_config_rejects_unknown_choices():
    with pytest.raises(ValueError, match="batch-hard"):
        HeadConfig(miner="hardest")
    with pytest.raises(ValueError, match="acc\\+tar2"):
        HeadConfig(monitor="auc")


@pytest.mark.datasets
def test_head_training_on_lfw_people_lowers_the_loss_and_the_pull_holds_the_head(lfw_dir, engine):
    """Six LFW DevTrain people through the real detector, alignment and dlib's frozen backbone;
    a rank-2 random head trained on their features must fit them, and a strong pull towards the
    initial head must keep it nearer that head."""
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.training.data import build_chip_set, lfw_identities
    from faceapp.training.evaluate import verification_metrics

    torch.set_num_threads(2)
    people = read_lfw_people(lfw_dir, "devtrain")
    names = [n for n in sorted(people) if people[n] >= 6][:6]
    ids = [i for i in lfw_identities(lfw_dir, "devtrain", min_images=6, max_images=6) if i.name in names]
    chips = build_chip_set(ids, engine)
    spec = engine.spec
    from faceapp.embed import network

    backbone = network.build(spec.architecture)  # training needs the torch network (inference may run ONNX)
    backbone.load_state_dict(spec.load_state_dict(map_location="cpu"))
    feats = backbone_features(backbone.eval(), chips.chips, mean=spec.mean, scale=spec.scale, augmented=1)
    assert feats.shape == (36, 3, 256)
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(128, 2, generator=g) @ torch.randn(2, 256, generator=g) * 0.05  # rank 2: a poor start
    cfg = HeadConfig(epochs=30, p=6, k=4, steps_per_epoch=4, lr=3e-3, margin=0.2, miner="batch-all",
                     warmup_epochs=0.5, patience=0, seed=0)

    def acc(w) -> float:
        return verification_metrics(head_embeddings(w, feats, flip_tta=True), chips.labels)["accuracy"]

    trainer = HeadTrainer(cfg, w0)
    hist = trainer.fit(feats, chips.labels, feats, chips.labels)
    losses = [e["loss"] for e in hist["epochs"] if e["epoch"] > 0]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:2])
    assert hist["epochs"][0]["epoch"] == 0 and hist["best_epoch"] > 0
    assert acc(trainer.best_weight) > acc(w0) + 0.05
    held = HeadTrainer(HeadConfig(**{**cfg.to_dict(), "pull": 10.0}), w0)
    held.fit(feats, chips.labels)
    assert (held.best_weight - w0).norm() < 0.5 * (trainer.weight.detach() - w0).norm()


def test_train_head_cli_caches_features_and_changes_only_the_head(tmp_path):
    """`faceapp train head` on a tiny synthetic chip cache: features of chip + mirror + one
    augmented copy are cached (and reused on a rerun), and the saved model is dlib's state dict
    with a new ``fc.weight`` only."""
    from faceapp.cli.train import main
    from faceapp.training.data import ChipSet

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (6, 1, 150, 150, 3))
    chips = np.clip(base + rng.normal(0, 20, (6, 3, 150, 150, 3)), 0, 255).astype(np.uint8).reshape(-1, 150, 150, 3)
    cache = ChipSet(chips, np.repeat(np.arange(6), 3), [f"p{i}" for i in range(6)]).save(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    args = ["head", "--data", str(cache), "--out", str(out), "--augmented", "1", "--epochs", "3", "--p", "2",
            "--k", "2", "--lr", "1e-2", "--margin", "0.3", "--val-fraction", "0.34", "--patience", "0"]
    assert main(args) == 0
    z = np.load(out / "features.npz")
    assert z["train"].shape == (12, 3, 256) and z["val"].shape == (6, 2, 256)  # 4 + 2 identities of 3 chips
    assert len(np.unique(z["train_labels"])) == 4 and not set(z["train_labels"]) & set(z["val_labels"])
    hist = json.loads((out / "history.json").read_text())
    assert hist["command"].startswith("faceapp train head --data") and [e["epoch"] for e in hist["epochs"]] == [0, 1, 2, 3]
    assert hist["epochs"][-1]["weight_change"] > 0  # the head did train
    new = torch.load(out / "best_model.pt", weights_only=True)
    old = torch.load(ROOT / "resources" / "models" / "dlib_resnet_v1.pt", weights_only=True)
    assert set(new) == set(old)
    assert all(torch.equal(new[k], old[k].float()) for k in old if k != "fc.weight")
    mtime = (out / "features.npz").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "features.npz").stat().st_mtime_ns == mtime  # reused, not recomputed
