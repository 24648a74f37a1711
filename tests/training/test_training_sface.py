"""SFace fine-tuned end to end by the training system: stages frozen, pretrained batch-norm
statistics kept, its own input normalisation, and the CLI's checks on chips and export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceapp.cli import train as train_cli
from faceapp.embed import network
from faceapp.embed.sface import LAYERS, SFaceNet
from faceapp.training.data import ChipSet
from faceapp.training.evaluate import embed_chips, verification_metrics
from faceapp.training.networks import SFACE_STAGES, freeze_sface_stages
from faceapp.training.trainer import DLIB_MEAN, TrainConfig, Trainer

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
SFACE_WEIGHTS = MODELS / "sface_v1.pt"


def _chips(ids: int, per: int, size: int = 112, seed: int = 0) -> ChipSet:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (ids, 1, size, size, 3))
    chips = np.clip(base + rng.normal(0, 25, (ids, per, size, size, 3)), 0, 255).astype(np.uint8)
    return ChipSet(chips.reshape(-1, size, size, 3), np.repeat(np.arange(ids), per), [f"p{i}" for i in range(ids)])


def test_the_stages_cover_every_layer_once_in_order():
    assert [n for stage in SFACE_STAGES for n in stage] == [name for name, *_ in LAYERS]


@pytest.mark.parametrize("stages, frozen_layers", [
    (-1, set()),
    (0, {"conv_1", "conv_2_dw", "conv_2"}),
    (1, {"conv_1", "conv_2_dw", "conv_2", "conv_3_dw", "conv_3", "conv_4_dw", "conv_4"}),
    (4, {name for name, *_ in LAYERS}),
])
def test_freezing_stages_freezes_exactly_their_layers(stages, frozen_layers):
    model = SFaceNet()
    names = freeze_sface_stages(model, stages)
    assert {n.split(".")[1] for n in names} == frozen_layers
    for name, p in model.named_parameters():
        layer = name.split(".")[1] if name.startswith("features.") else None
        assert p.requires_grad == (layer not in frozen_layers), name
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith(("bn1.", "fc.", "fc_bn.")))


def test_there_is_no_stage_five():
    with pytest.raises(ValueError, match="stages 0..4"):
        freeze_sface_stages(SFaceNet(), 5)


def test_each_architecture_gets_its_own_normalisation_and_batch_norm_mode():
    sface = TrainConfig(arch="sface", init=str(SFACE_WEIGHTS))
    assert (sface.mean, sface.scale, sface.bn) == ((127.5, 127.5, 127.5), 128.0, "frozen")
    scratch = TrainConfig(arch="compact_cnn")
    assert (scratch.mean, scratch.scale, scratch.bn) == (DLIB_MEAN, 256.0, "train")
    assert TrainConfig(arch="sface", bn="train").bn == "train"
    with pytest.raises(ValueError, match="train, frozen"):
        TrainConfig(arch="sface", bn="renorm")
    again = TrainConfig.from_dict(sface.to_dict())
    assert (again.mean, again.scale, again.bn) == (sface.mean, sface.scale, sface.bn)


def test_fine_tuning_keeps_the_pretrained_statistics_and_frozen_stages(tmp_path):
    torch.set_num_threads(1)
    init = torch.load(SFACE_WEIGHTS, map_location="cpu", weights_only=True)
    cfg = TrainConfig(arch="sface", init=str(SFACE_WEIGHTS), freeze_stages=3, epochs=1, p=3, k=2, lr=1e-3,
                      device="cpu", patience=0, seed=0, eval_before=True)
    trainer = Trainer(cfg, tmp_path, progress=False)
    val = _chips(3, 2, seed=4)
    hist = trainer.fit(_chips(6, 2), val)
    assert [e["epoch"] for e in hist["epochs"]] == [0, 1]
    after = trainer.model.state_dict()
    for k, v in init.items():
        layer = k.split(".")[1] if k.startswith("features.") else None
        kept = ("running_" in k or "num_batches" in k or layer in {n for st in SFACE_STAGES[:4] for n in st})
        if kept:
            assert torch.equal(after[k], v.float() if v.is_floating_point() else v), k
    moved = [k for k in init if k.startswith(("features.conv_13.", "fc.")) and not torch.equal(after[k], init[k])]
    assert moved, "the trainable stage and head did not change"
    # epoch 0 is the shipped network itself, with its own input normalisation
    shipped = network.build("sface")
    shipped.load_state_dict(init)
    expected = verification_metrics(embed_chips(shipped, val.chips, mean=(127.5,) * 3, scale=128.0), val.labels, seed=0)
    assert hist["epochs"][0]["val_accuracy"] == pytest.approx(expected["accuracy"])
    assert hist["epochs"][0]["val_distance_same_mean"] == pytest.approx(expected["distance_same_mean"], abs=1e-6)
    best = torch.load(tmp_path / "best_model.pt", map_location="cpu", weights_only=True)
    network.build("sface").load_state_dict(best)  # what `faceapp train export --arch sface` ships


def test_batch_norms_stay_in_eval_mode_across_epochs(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig(arch="sface", init=str(SFACE_WEIGHTS), freeze_stages=4, epochs=2, p=3, k=2,
                      device="cpu", patience=0, seed=0)
    trainer = Trainer(cfg, tmp_path, progress=False)
    seen: list[bool] = []
    orig = trainer.model.forward_features

    def spy(x):
        if torch.is_grad_enabled():
            seen.append(any(m.training for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)))
            seen.append(trainer.model.dropout.training)
        return orig(x)

    trainer.model.forward_features = spy
    trainer.fit(_chips(6, 2), _chips(3, 2, seed=4))  # validation in between puts every layer back in training
    assert seen and seen[0::2] == [False] * (len(seen) // 2)  # batch norms: eval in every training step
    assert all(seen[1::2])  # dropout still trains


def _cache(tmp_path: Path, size: int) -> str:
    cs = _chips(4, 2, size=size)
    path = tmp_path / f"chips{size}.npz"
    cs.save(path)
    return str(path)


def test_fit_refuses_chips_of_another_size_with_the_command_that_makes_the_right_ones(tmp_path, capsys):
    rc = train_cli.main(["fit", "--data", _cache(tmp_path, 150), "--out", str(tmp_path / "run"), "--arch", "sface",
                         "--epochs", "1", "--quiet"])
    assert rc == 2
    assert "--model sface-v1" in capsys.readouterr().err


def test_export_refuses_a_template_of_another_normalisation_and_keeps_sface_border(tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    weights = tmp_path / "w.pt"
    torch.save(torch.load(SFACE_WEIGHTS, map_location="cpu", weights_only=True), weights)
    args = ["export", "--weights", str(weights), "--arch", "sface", "--model-id", "sface-ft-test",
            "--file-stem", "sface_ft_test", "--models-dir", str(out)]
    for name in ("sface_v1.json", "sface_v1.pt", "dlib_resnet_v1.json", "dlib_resnet_v1.pt"):
        (out / name).symlink_to(MODELS / name)
    assert train_cli.main([*args, "--template-from", "dlib-resnet-v1"]) == 2
    assert "pick the model whose cache it was trained on" in capsys.readouterr().err
    assert train_cli.main([*args, "--template-from", "sface-v1"]) == 0
    spec = json.loads((out / "sface_ft_test.json").read_text())
    assert (spec["architecture"], spec["input_size"], spec["border"]) == ("sface", 112, "black")
    assert spec["normalization"]["scale"] == 128.0
