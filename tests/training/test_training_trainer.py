"""The training loop: configuration errors, checkpoint + resume, and a tiny real run on LFW."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceapp.training.augment import AugmentConfig
from faceapp.training.data import ChipSet
from faceapp.training.trainer import TrainConfig, Trainer


def _synthetic(ids: int = 8, per: int = 4, size: int = 24, seed: int = 0) -> ChipSet:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (ids, 1, size, size, 3))
    chips = np.clip(base + rng.normal(0, 25, (ids, per, size, size, 3)), 0, 255).astype(np.uint8)
    return ChipSet(chips.reshape(-1, size, size, 3), np.repeat(np.arange(ids), per), [f"p{i}" for i in range(ids)])


def _cfg(**kw) -> TrainConfig:
    base = dict(arch="compact_cnn", width=4, epochs=3, p=3, k=2, lr=3e-3, device="cpu", patience=0, seed=1)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("field, value, allowed", [
    ("miner", "hardest", "batch-hard, semi-hard, batch-all"),
    ("loss", "contrastive", "triplet, soft-triplet, siamese"),
    ("arch", "vgg", "dlib_resnet, compact_cnn"),
])
def test_unknown_choices_name_the_allowed_ones(field, value, allowed):
    with pytest.raises(ValueError, match=allowed):
        _cfg(**{field: value})


def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    torch.set_num_threads(1)
    data = _synthetic()
    straight = Trainer(_cfg(epochs=3), tmp_path / "a", progress=False)
    straight.fit(data)
    calls = iter(range(100))
    first = Trainer(_cfg(epochs=3), tmp_path / "b", progress=False, is_cancelled=lambda: next(calls) >= 2)
    first.fit(data)  # interrupted before its third epoch
    resumed = Trainer(_cfg(epochs=3), tmp_path / "b", progress=False)
    resumed.resume(tmp_path / "b" / "last.pt")
    hist = resumed.fit(data)
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2, 3]
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k


def test_history_logs_every_step_and_epoch(tmp_path):
    data = _synthetic()
    val = _synthetic(ids=3, seed=5)
    h = Trainer(_cfg(epochs=2, miner="semi-hard"), tmp_path, progress=False).fit(data, val)
    assert [e["epoch"] for e in h["epochs"]] == [0, 1, 2]  # epoch 0 = the initial weights
    steps_per_epoch = 8 // 3
    assert len(h["steps"]) == 2 * steps_per_epoch
    assert {"loss", "active", "d_pos", "d_neg", "lr"} <= set(h["steps"][0])
    assert json.loads((tmp_path / "history.json").read_text())["best_epoch"] == h["best_epoch"]
    assert (tmp_path / "best_model.pt").is_file() and (tmp_path / "curves.png").is_file()


@pytest.mark.datasets
def test_tiny_training_run_on_lfw_lowers_the_loss_and_raises_pair_accuracy(lfw_dir, engine, tmp_path):
    """Six LFW DevTrain people, six photos each, through the real detector and alignment;
    a small CNN trained from scratch for a few seconds must fit them."""
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.training.data import build_chip_set, lfw_identities
    from faceapp.training.evaluate import embed_chips, verification_metrics

    torch.set_num_threads(2)
    people = read_lfw_people(lfw_dir, "devtrain")
    names = [n for n in sorted(people) if people[n] >= 6][:6]
    ids = [i for i in lfw_identities(lfw_dir, "devtrain", min_images=6, max_images=6) if i.name in names]
    chips = build_chip_set(ids, engine)
    assert len(chips) == 36 and chips.chips.shape[1:] == (150, 150, 3)
    cfg = TrainConfig(arch="compact_cnn", width=8, epochs=12, p=6, k=4, lr=3e-3, device="cpu", seed=0,
                      miner="batch-all", augment=AugmentConfig.none(), patience=0, warmup_epochs=0.5,
                      steps_per_epoch=2)
    trainer = Trainer(cfg, tmp_path, progress=False)

    def accuracy() -> float:
        emb = embed_chips(trainer.model, chips.chips, mean=cfg.mean, scale=cfg.scale)
        return verification_metrics(emb, chips.labels)["accuracy"]

    before = accuracy()
    hist = trainer.fit(chips)
    losses = [e["loss"] for e in hist["epochs"]]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:2])
    after = accuracy()
    assert after > before + 0.1 and after > 0.85
