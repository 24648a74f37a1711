"""scripts/eval_finetune_val.py: a run's validation identities, its start against its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from faceapp.cli import train as train_cli
from faceapp.training.data import ChipSet
from script_module import load_script


def _cache(path: Path, ids: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (ids, 1, 150, 150, 3))
    chips = np.clip(base + rng.normal(0, 25, (ids, 3, 150, 150, 3)), 0, 255).astype(np.uint8)
    ChipSet(chips.reshape(-1, 150, 150, 3), np.repeat(np.arange(ids), 3), [f"p{i}" for i in range(ids)]).save(path)
    return str(path)


def test_it_scores_the_runs_own_validation_people_and_refuses_a_changed_cache(tmp_path, capsys):
    torch.set_num_threads(1)
    data = _cache(tmp_path / "chips.npz", 8)
    run = tmp_path / "run"
    start = tmp_path / "start.pt"
    assert train_cli.main(["fit", "--data", data, "--out", str(run), "--arch", "compact_cnn", "--width", "8",
                           "--epochs", "1", "--p", "3", "--k", "2", "--val-fraction", "0.5", "--device", "cpu",
                           "--quiet"]) == 0
    torch.save(torch.load(run / "best_model.pt", weights_only=True), start)
    out = tmp_path / "val.json"
    mod = load_script("eval_finetune_val")
    # the run was trained from scratch: the weights to compare with must be named
    assert mod.main(["--run", str(run)]) == 2
    assert "--init" in capsys.readouterr().err
    assert mod.main(["--run", str(run), "--init", str(start), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    split = json.loads((run / "split.json").read_text())
    assert report["validation_identities"] == len(split["val_identities"]) == 4
    rows = report["figures"]
    assert set(rows) == {"start", "start + flip", "fine-tuned", "fine-tuned + flip"}
    assert rows["start"] == rows["fine-tuned"]  # the same weights score the same pairs alike
    assert report["genuine_pairs"] == 4 * 3 and report["impostor_pairs"] == 12 * 11 // 2 - 12
    # the caches changed since the run: its validation people are not what they give now
    _cache(tmp_path / "chips.npz", 10, seed=1)
    assert mod.main(["--run", str(run), "--init", str(start)]) == 2
    assert "validation identities" in capsys.readouterr().err


def test_fit_can_validate_on_another_caches_people_and_the_script_follows(tmp_path, capsys):
    torch.set_num_threads(1)
    data = _cache(tmp_path / "train.npz", 6)
    other = _cache(tmp_path / "other.npz", 4, seed=3)
    run = tmp_path / "run"
    common = ["--arch", "compact_cnn", "--width", "8", "--epochs", "1", "--p", "3", "--k", "2", "--device", "cpu",
              "--quiet"]
    # a cache cannot be both: that would validate on the people trained on
    assert train_cli.main(["fit", "--data", data, "--val-data", data, "--out", str(run), *common]) == 2
    assert "both training and validation" in capsys.readouterr().err
    assert train_cli.main(["fit", "--data", data, "--val-data", other, "--out", str(run), *common]) == 0
    split = json.loads((run / "split.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert split["val_data"] == [other] and split["val_fraction"] == 0.0
    assert len(split["train_identities"]) == 6  # all of --data trains
    assert split["val_identities"] == [f"other/p{i}" for i in range(4)]
    assert (history["val_images"], history["train_images"]) == (12, 18)
    start = tmp_path / "start.pt"
    torch.save(torch.load(run / "best_model.pt", weights_only=True), start)
    out = tmp_path / "val.json"
    assert load_script("eval_finetune_val").main(["--run", str(run), "--init", str(start), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["validation_identities"] == 4
