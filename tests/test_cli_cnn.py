"""The course tools driven through the CLI with the face network as backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from faceapp.cli.main import main


def test_style_transfer_writes_an_image_and_a_falling_loss_plot(tmp_path, capsys):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(content)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = (250, 200, 0)
    Image.fromarray(stripes).save(style)
    out = tmp_path / "g.png"
    code = main(["cnn", "style", str(content), str(style), "-o", str(out), "--steps", "6", "--size", "64", "--device", "cpu", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and out.is_file() and (tmp_path / "g-loss.png").is_file()
    assert Image.open(out).size == (64, 64)
    assert result["steps"] == 6


@pytest.mark.datasets
def test_top_patches_of_a_face_network_unit(tmp_path, capsys, lfw_dir):
    out = tmp_path / "patches.png"
    folder = lfw_dir / "images" / "George_W_Bush"
    code = main(["cnn", "patches", str(folder), "-o", str(out), "--images", "12", "--layer", "blocks.3", "--unit", "1", "--device", "cpu", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and out.is_file()
    acts = result["top_activations"]
    assert len(acts) == 9 and acts == sorted(acts, reverse=True)
